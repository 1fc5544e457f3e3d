"""estool's train.py / model.py / plots / notebooks, run through the scripts as a user would."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT, run_script

ESTOOL = os.path.join(ROOT, 'estool')
NAME = 'cartpole_swingup.cma.1.4'  # game.opt.num_episode.popsize for -n 2 -t 2 -e 1
NUM_PARAMS = 66                    # 5-5-5-1 tanh network
TRAIN = ['train.py', 'cartpole_swingup', '-n', '2', '-t', '2', '-e', '1', '--sigma_init', '1.0', '--seed', '3']


def read(path):
    with open(path) as f:
        return json.load(f)


def is_rounded(values, decimals=4):
    values = np.asarray(values, dtype=np.float64)
    return np.allclose(values, np.round(values, decimals), rtol=0, atol=1e-9)


@pytest.fixture(scope='module')
def mpi_run(tmp_path_factory):
    """A 2-worker run started under mpiexec directly, 3 generations, evaluating every 2."""
    log_dir = tmp_path_factory.mktemp('mpi') / 'log'
    mpiexec = os.path.join(os.path.dirname(sys.executable), 'mpiexec')
    proc = subprocess.run([mpiexec, '-n', '3', sys.executable] + TRAIN +
                          ['--max_gen', '3', '--eval_steps', '2', '--log_dir', str(log_dir)],
                          cwd=ESTOOL, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return log_dir, proc.stdout


def test_mpi_run_writes_all_five_logs_in_the_2018_layout(mpi_run):
    log_dir, stdout = mpi_run
    prefix = str(log_dir / NAME)

    current = read(prefix + '.json')
    assert len(current) == 1 and len(current[0]) == NUM_PARAMS and is_rounded(current[0])

    hist = read(prefix + '.hist.json')
    assert [row[0] for row in hist] == [1, 2, 3]
    for gen, seconds, avg, lo, hi, std, rms, mean_steps, max_steps in hist:
        assert lo <= avg <= hi and std >= 0 and rms > 0 and 1 <= mean_steps <= max_steps <= 1001

    best_params, best_reward = read(prefix + '.best.json')
    assert len(best_params) == NUM_PARAMS and is_rounded(best_params)

    hist_best = read(prefix + '.hist_best.json')
    assert [row[0] for row in hist_best] == [2, 3]  # every 2 generations, and at the last one
    for row in hist_best:
        assert len(row) == 10 and row[2::2] == ['improvement', 'curr', 'prev', 'best']
    assert hist_best[-1][9] == pytest.approx(best_reward)
    assert best_reward == pytest.approx(max(row[5] for row in hist_best))

    eval_log = read(prefix + '.log.json')
    assert [row[0] for row in eval_log] == [2, 3]
    assert all(len(row[2]) == NUM_PARAMS for row in eval_log)

    assert read(prefix + '.args.json')['num_worker'] == 2
    assert 'gen 3 ' in stdout and 'eval gen 2 ' in stdout


def test_relaunch_and_resume_continue_the_same_run(tmp_path):
    """2 generations, then --resume to 4, must equal a straight 4-generation run."""
    straight, split = tmp_path / 'straight', tmp_path / 'split'
    run_script(TRAIN + ['--max_gen', '4', '--eval_steps', '2', '--log_dir', str(straight)], ESTOOL)
    run_script(TRAIN + ['--max_gen', '2', '--eval_steps', '2', '--log_dir', str(split)], ESTOOL)
    out = run_script(TRAIN + ['--max_gen', '4', '--eval_steps', '2', '--resume', '--log_dir', str(split)],
                     ESTOOL).stdout
    assert 'resumed' in out and 'gen 3 ' in out and 'gen 1 ' not in out
    a, b = read(straight / (NAME + '.hist.json')), read(split / (NAME + '.hist.json'))
    assert [r[0] for r in b] == [1, 2, 3, 4]
    drop_seconds = lambda rows: [r[:1] + r[2:] for r in rows]  # noqa: E731
    assert drop_seconds(a) == drop_seconds(b)
    assert read(straight / (NAME + '.best.json')) == read(split / (NAME + '.best.json'))


def test_stop_at_ends_the_run_at_the_evaluation_that_reaches_it(tmp_path):
    """--stop_at: a run stops at the first evaluation scoring that much, and a --resume of it too."""
    hist = lambda: [r[0] for r in read(tmp_path / (NAME + '.hist.json'))]  # noqa: E731
    flags = ['--eval_steps', '2', '--log_dir', str(tmp_path)]
    out = run_script(TRAIN + ['--max_gen', '6', '--stop_at=-1e9'] + flags, ESTOOL).stdout
    assert hist() == [1, 2] and [r[0] for r in read(tmp_path / (NAME + '.hist_best.json'))] == [2]
    assert 'stop after generation 2' in out
    out = run_script(TRAIN + ['--max_gen', '6', '--stop_at=-1e9', '--resume'] + flags, ESTOOL).stdout
    assert hist() == [1, 2] and 'stop after generation 2' in out
    # out of reach: the run goes on to --max_gen
    out = run_script(TRAIN + ['--max_gen', '4', '--stop_at', '1e9', '--resume'] + flags, ESTOOL).stdout
    assert hist() == [1, 2, 3, 4] and 'stop after' not in out
    proc = run_script(TRAIN + ['--stop_at', 'nan'] + flags, ESTOOL, check=False)
    assert proc.returncode == 2 and 'finite' in proc.stderr and 'Traceback' not in proc.stderr


@pytest.mark.parametrize('opt', ['pepg', 'ses', 'openes', 'ga'])
def test_every_optimizer_trains_with_the_optional_flags(tmp_path, opt):
    run_script(TRAIN + ['-o', opt, '--antithetic', '--common_seeds', '--cap_time', '--retrain', '--max_gen', '3',
                        '--eval_steps', '1', '--log_dir', str(tmp_path)], ESTOOL)
    name = 'cartpole_swingup.%s.1.4' % opt
    hist = read(tmp_path / (name + '.hist.json'))
    assert [r[0] for r in hist] == [1, 2, 3]
    # --cap_time: episodes after the first generation are capped at 2 * (mean length + 1).
    for prev, row in zip(hist, hist[1:]):
        assert row[8] <= 2 * int(prev[7]) + 1
    evals = read(tmp_path / (name + '.hist_best.json'))
    assert [r[0] for r in evals] == [1, 2, 3]
    best = read(tmp_path / (name + '.best.json'))
    assert best[1] == pytest.approx(max(r[5] for r in evals))


@pytest.mark.parametrize('antithetic', [False, True])
def test_common_seeds_give_every_solution_the_same_episodes(antithetic, tmp_path):
    import argparse
    from estool import fanout
    parser = fanout.add_es_arguments(argparse.ArgumentParser(), num_worker=2, num_worker_trial=4, num_episode=3)
    flags = ['--log_dir', str(tmp_path)] + (['--antithetic'] if antithetic else [])
    shared = fanout.Master(None, parser.parse_args(flags + ['--common_seeds']), 'game', 5)
    rng = np.random.default_rng(0)
    first, second = shared.train_seeds(rng), shared.train_seeds(rng)
    assert first.shape == (8, 3) and (first == first[0]).all() and (second == second[0]).all()
    assert len(set(first[0])) == 3 and not set(first[0]) & set(second[0])   # new episodes each generation
    independent = fanout.Master(None, parser.parse_args(flags), 'game', 5).train_seeds(np.random.default_rng(0))
    assert len({tuple(row) for row in independent}) == (4 if antithetic else 8)


def test_resume_from_logs_alone_continues_the_run(tmp_path):
    """A fresh checkout has the committed logs but no .es.pkl: --resume restarts from them."""
    run_script(TRAIN + ['--max_gen', '2', '--eval_steps', '2', '--log_dir', str(tmp_path)], ESTOOL)
    before = {ext: read(tmp_path / (NAME + ext)) for ext in ('.hist.json', '.hist_best.json', '.json', '.log.json')}
    os.remove(tmp_path / (NAME + '.es.pkl'))
    out = run_script(TRAIN + ['--max_gen', '4', '--eval_steps', '2', '--resume', '--log_dir', str(tmp_path)],
                     ESTOOL).stdout
    assert 'from its logs at generation 2' in out and 'gen 3 ' in out and 'gen 1 ' not in out
    hist = read(tmp_path / (NAME + '.hist.json'))
    assert [r[0] for r in hist] == [1, 2, 3, 4] and hist[:2] == before['.hist.json']
    assert hist[2][1] >= hist[1][1]                          # seconds keep counting
    assert hist[2][6] == pytest.approx(hist[1][6], rel=0.2)  # restarted at the logged step size
    evals = read(tmp_path / (NAME + '.hist_best.json'))
    assert [r[0] for r in evals] == [2, 4] and evals[0] == before['.hist_best.json'][0]
    assert evals[1][7] == pytest.approx(evals[0][5])         # "prev" is the logged best
    assert [r[0] for r in read(tmp_path / (NAME + '.log.json'))] == [2, 4]
    best = read(tmp_path / (NAME + '.best.json'))
    assert best[1] == pytest.approx(max(r[5] for r in evals))
    assert os.path.exists(tmp_path / (NAME + '.es.pkl'))     # and a full checkpoint again


def test_resume_from_logs_checks_the_param_count(tmp_path):
    run_script(TRAIN + ['--max_gen', '1', '--log_dir', str(tmp_path)], ESTOOL)
    os.remove(tmp_path / (NAME + '.es.pkl'))
    with open(tmp_path / (NAME + '.json'), 'w') as f:
        json.dump([[0.0] * (NUM_PARAMS + 1)], f)
    proc = run_script(TRAIN + ['--max_gen', '2', '--resume', '--log_dir', str(tmp_path)], ESTOOL, check=False)
    assert proc.returncode != 0 and 'holds %d params' % (NUM_PARAMS + 1) in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_init_starts_the_mean_at_the_given_params(tmp_path):
    """--init: a new run, or a restart from the logs alone, searches around the given params."""
    import argparse
    from estool import fanout
    init = np.round(np.linspace(-1, 1, NUM_PARAMS), 4)
    with open(tmp_path / 'start.best.json', 'w') as f:
        json.dump([init.tolist(), 123.0], f)
    parser = fanout.add_es_arguments(argparse.ArgumentParser(), num_worker=2, num_worker_trial=2, num_episode=1)
    args = parser.parse_args(['--init', str(tmp_path / 'start.best.json'), '--log_dir', str(tmp_path)])
    master = fanout.Master(None, args, 'game', NUM_PARAMS)
    assert np.array_equal(master.new_state()['es'].current_param(), init)

    prefix = str(tmp_path / 'game.cma.1.4')
    with open(prefix + '.hist.json', 'w') as f:
        json.dump([[7, 60, 1.0, 0.0, 2.0, 0.5, 0.03, 100.0, 101]], f)
    with open(prefix + '.json', 'w') as f:
        json.dump([[0.0] * NUM_PARAMS], f)
    state = master.state_from_logs()
    assert state['gen'] == 7 and np.array_equal(state['es'].current_param(), init)
    assert state['es'].rms_stdev() == pytest.approx(0.03, rel=1e-3)


@pytest.mark.parametrize('content, words', [(None, 'cannot read params'), ([[0.5] * 3], 'holds 3 params')])
def test_bad_init_is_one_line(tmp_path, content, words):
    path = tmp_path / 'start.json'
    if content is not None:
        with open(path, 'w') as f:
            json.dump(content, f)
    proc = run_script(TRAIN + ['--max_gen', '1', '--init', str(path), '--log_dir', str(tmp_path)], ESTOOL,
                      check=False)
    err = proc.stderr.strip()
    assert proc.returncode != 0 and len(err.splitlines()) == 1 and 'Traceback' not in err
    assert err.startswith('--init: ') and str(path) in err and words in err


def test_init_refuses_a_full_checkpoint(tmp_path):
    run_script(TRAIN + ['--max_gen', '1', '--log_dir', str(tmp_path)], ESTOOL)
    proc = run_script(TRAIN + ['--max_gen', '2', '--resume', '--init', str(tmp_path / (NAME + '.json')),
                               '--log_dir', str(tmp_path)], ESTOOL, check=False)
    assert proc.returncode != 0 and '.es.pkl' in proc.stderr and 'Traceback' not in proc.stderr


def test_resume_keeps_the_first_starts_init_in_args_json(tmp_path):
    start = tmp_path / 'start.json'
    with open(start, 'w') as f:
        json.dump([[0.1] * NUM_PARAMS], f)
    run_script(TRAIN + ['--max_gen', '1', '--init', str(start), '--log_dir', str(tmp_path)], ESTOOL)
    run_script(TRAIN + ['--max_gen', '2', '--resume', '--log_dir', str(tmp_path)], ESTOOL)
    flags = read(tmp_path / (NAME + '.args.json'))
    assert flags['init'] == str(start) and flags['resume'] and flags['max_gen'] == 2


def test_resume_without_checkpoint_is_one_line(tmp_path):
    proc = run_script(TRAIN + ['--max_gen', '1', '--resume', '--log_dir', str(tmp_path)], ESTOOL, check=False)
    assert proc.returncode != 0
    assert 'no checkpoint' in proc.stderr and 'Traceback' not in proc.stderr


def worker_pids(log_dir):
    """PIDs of MPI ranks >= 1 of the run writing to log_dir."""
    pids = []
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                cmd = f.read().split(b'\0')
            with open('/proc/%s/environ' % pid, 'rb') as f:
                env = dict(kv.split(b'=', 1) for kv in f.read().split(b'\0') if b'=' in kv)
        except OSError:
            continue
        if str(log_dir).encode() in cmd and env.get(b'PMI_RANK', b'0') != b'0':
            pids.append(int(pid))
    return pids


def test_killed_worker_stops_the_run_and_keeps_logs(tmp_path):
    proc = subprocess.Popen([sys.executable] + TRAIN + ['--eval_steps', '1000', '--log_dir', str(tmp_path)],
                            cwd=ESTOOL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    hist_path = tmp_path / (NAME + '.hist.json')
    deadline = time.time() + 120
    while time.time() < deadline and not (hist_path.exists() and len(read(hist_path)) >= 3):
        time.sleep(0.2)
    pids = worker_pids(tmp_path)
    assert pids, 'no worker process found'
    os.kill(pids[0], signal.SIGKILL)
    killed_at = time.time()
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail('run still going 60 s after a worker was killed')
    assert time.time() - killed_at < 60
    assert proc.returncode != 0
    assert 'a rank crashed or was killed' in err
    rows = read(hist_path)  # still valid JSON, generations in order
    assert len(rows) >= 3 and [r[0] for r in rows] == list(range(1, len(rows) + 1))
    assert len(read(tmp_path / (NAME + '.json'))[0]) == NUM_PARAMS


def test_model_replays_best_params(mpi_run):
    log_dir, _ = mpi_run
    out = run_script(['model.py', 'cartpole_swingup', str(log_dir / (NAME + '.best.json')), 'norender',
                      '0', '--episodes', '3'], ESTOOL).stdout
    lines = out.strip().splitlines()
    rewards = [float(line.split()[3]) for line in lines if line.startswith('episode')]
    assert len(rewards) == 3
    summary = lines[-1].split()
    assert summary[0] == 'average_reward' and summary[2] == 'stdev'
    assert float(summary[1]) == pytest.approx(np.mean(rewards), abs=0.01)
    assert float(summary[3]) == pytest.approx(np.std(rewards), abs=0.01)
    # Same seed, same scores.
    again = run_script(['model.py', 'cartpole_swingup', str(log_dir / (NAME + '.best.json')), 'norender',
                        '0', '--episodes', '3'], ESTOOL).stdout
    assert again == out
    # render: one episode drawn with pygame (dummy video driver in tests).
    out = run_script(['model.py', 'cartpole_swingup', str(log_dir / (NAME + '.json')), 'render',
                      '--max_len', '30'], ESTOOL).stdout
    assert 'episode 0 ' in out and 'steps 30' in out or 'average_reward' in out



SHIPPED = os.path.join('log', 'cartpole_swingup.cma.1.16')   # the trained run estool/README's commands use


def test_shipped_cartpole_log_replays_and_plots(tmp_path):
    out = run_script(['model.py', 'cartpole_swingup', SHIPPED + '.best.json', 'norender', '--episodes', '20'],
                     ESTOOL).stdout
    summary = out.strip().splitlines()[-1].split()
    assert summary[0] == 'average_reward' and float(summary[1]) > 400      # swings up; a random policy scores < 50
    png = tmp_path / 'progress.png'
    out = run_script(['plot_training_progress.py', SHIPPED, '-o', str(png)], ESTOOL).stdout
    assert '600 generations, 24 evaluations, best eval 860.2742' in out and png.stat().st_size > 10000


def test_model_runs_the_box2d_task(tmp_path):
    params = tmp_path / 'zeros.json'
    params.write_text(json.dumps([[0.0] * (24 * 40 + 40 + 40 * 40 + 40 + 40 * 4 + 4)]))
    out = run_script(['model.py', 'bipedal_walker', str(params), 'norender', '--episodes', '1',
                      '--max_len', '50'], ESTOOL).stdout
    assert 'episode 0 ' in out and 'average_reward' in out


@pytest.mark.parametrize('content,words', [
    (None, 'no such file'),
    ('{not json', 'malformed'),
    ('[[1.0, 2.0, 3.0], 5]', 'holds 3 numbers'),
])
def test_bad_params_file_is_one_line_naming_file_and_size(tmp_path, content, words):
    path = tmp_path / 'params.json'
    if content is not None:
        path.write_text(content)
    proc = run_script(['model.py', 'cartpole_swingup', str(path), 'norender'], ESTOOL, check=False)
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and 'Traceback' not in err
    assert str(path) in err and words in err and '66 numbers' in err


def test_help_explains_every_flag():
    train = run_script(['train.py', '--help'], ESTOOL).stdout
    for flag in ['-o', '-n', '-t', '-e', '--eval_steps', '--antithetic', '--common_seeds', '--cap_time', '--retrain',
                 '--seed_start', '--sigma_init', '--sigma_decay', '--max_gen', '--stop_at', '--resume', '--init',
                 '--log_dir']:
        assert flag in train, flag
    model = run_script(['model.py', '--help'], ESTOOL).stdout
    for word in ['game', 'params_file', 'render', 'norender', 'seed', '--episodes', '--max_len']:
        assert word in model, word


def test_bad_flags_are_one_line(tmp_path):
    proc = run_script(TRAIN[:2] + ['-o', 'pepg', '-n', '1', '-t', '3', '--log_dir', str(tmp_path)], ESTOOL,
                      check=False)
    assert proc.returncode == 2 and 'even popsize' in proc.stderr and 'Traceback' not in proc.stderr


def test_plot_script_writes_png(mpi_run, tmp_path):
    log_dir, _ = mpi_run
    png = tmp_path / 'progress.png'
    out = run_script(['plot_training_progress.py', str(log_dir / (NAME + '.hist.json')), '-o', str(png)],
                     ESTOOL).stdout
    assert png.stat().st_size > 10000 and png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert '3 generations, 2 evaluations' in out
    proc = run_script(['plot_training_progress.py', str(tmp_path / 'nothing')], ESTOOL, check=False)
    assert proc.returncode != 0 and 'no such file' in proc.stderr and 'Traceback' not in proc.stderr


def test_episodes_axis_counts_generations_and_evaluations(tmp_path):
    """x = episodes spent: popsize x num_episode for each generation and each evaluation before it."""
    sys.path.insert(0, ESTOOL)
    try:
        from plot_training_progress import episodes_spent
    finally:
        sys.path.remove(ESTOOL)
    hist = [{'gen': g} for g in range(1, 21)]
    evals = [{'gen': 10}, {'gen': 20}]
    gens_x, evals_x = episodes_spent('log/x.cma.2.24', hist, evals)
    assert gens_x[9] == 480 and evals_x == [528, 1056] and gens_x[10] == 576 and gens_x[19] == 1008
    png = tmp_path / 'p.png'
    out = run_script(['plot_training_progress.py', SHIPPED, '--x', 'episodes', '--reference', SHIPPED,
                      '-o', str(png)], ESTOOL).stdout
    assert 'wrote' in out and png.stat().st_size > 10000
    bad = tmp_path / 'noscale'
    shutil.copy(os.path.join(ESTOOL, SHIPPED + '.hist.json'), str(bad) + '.hist.json')
    proc = run_script(['plot_training_progress.py', str(bad), '--x', 'episodes'], ESTOOL, check=False)
    assert proc.returncode != 0 and '.<num_episode>.<popsize>' in proc.stderr and 'Traceback' not in proc.stderr


def test_after_draws_the_run_that_was_continued_first(tmp_path):
    """--after: the continued run's generations and episodes are counted on from the first run's end."""
    def write_run(name, gens, eval_gens):
        json.dump([[g, 10 * g, float(g), 0.0, 2.0 * g, 1.0, 0.1, 100.0, 200] for g in gens],
                  open(tmp_path / (name + '.hist.json'), 'w'))
        json.dump([[g, 10 * g, 'improvement', 0.0, 'curr', 5.0 * g, 'prev', 0.0, 'best', 5.0 * g] for g in eval_gens],
                  open(tmp_path / (name + '.hist_best.json'), 'w'))
    write_run('x.cma.2.4', [1, 2, 3, 4], [2, 4])     # 8 episodes a generation and an evaluation
    write_run('x.cma.4.4', [1, 2, 3], [2])            # 16
    sys.path.insert(0, ESTOOL)
    try:
        from plot_training_progress import chained_history, plot_progress
    finally:
        sys.path.remove(ESTOOL)
    first, second = str(tmp_path / 'x.cma.2.4'), str(tmp_path / 'x.cma.4.4')
    hist, evals, hist_x, eval_x, joints = chained_history([first, second], 'generation')
    assert hist_x == [1, 2, 3, 4, 5, 6, 7] and eval_x == [2, 4, 6] and joints == [4]
    hist, evals, hist_x, eval_x, joints = chained_history([first, second], 'episodes')
    # the first run ends at 4 x 8 + 2 x 8 = 48 episodes; the second adds 16 a generation and its evaluation
    assert joints == [48] and hist_x == [8, 16, 32, 40, 64, 80, 112] and eval_x == [24, 48, 96]
    assert [e['run'] for e in evals] == [0, 0, 1]
    fig = plot_progress(second, x='episodes', after=[first])
    best_lines = [l for l in fig.axes[0].get_lines() if l.get_color() == 'tab:red']
    # each run's best evaluation stands until the run's end: the second's from 96 to 112
    assert [list(l.get_xdata()) for l in best_lines] == [[24, 48], [96, 112]]
    assert [list(l.get_ydata()) for l in best_lines] == [[10.0, 20.0], [10.0, 10.0]]
    png = tmp_path / 'p.png'
    out = run_script(['plot_training_progress.py', second, '--after', first, '--x', 'episodes', '-o', str(png)],
                     ESTOOL).stdout
    assert '3 generations, 1 evaluations' in out and png.stat().st_size > 10000
    proc = run_script(['plot_training_progress.py', second, '--after', str(tmp_path / 'none')], ESTOOL, check=False)
    assert proc.returncode != 0 and 'no such file' in proc.stderr and 'Traceback' not in proc.stderr


def test_per_episode_rewards_are_logged_and_their_spread_tabled(tmp_path):
    """<prefix>.rewards.json holds each solution's reward on each of its episodes; the fitness
    that hist.json logs is their row mean, and --spread tables them."""
    out = run_script(TRAIN[:-4] + ['-e', '3', '--common_seeds', '--max_gen', '3', '--eval_steps', '100',
                                   '--log_dir', str(tmp_path)], ESTOOL).stdout
    name = 'cartpole_swingup.cma.3.4'
    rows = read(tmp_path / (name + '.rewards.json'))
    hist = read(tmp_path / (name + '.hist.json'))
    assert [r[0] for r in rows] == [1, 2, 3]
    for (gen, rewards), h in zip(rows, hist):
        r = np.array(rewards)
        assert r.shape == (4, 3)
        assert abs(r.mean(axis=1).mean() - h[2]) < 0.02 and abs(r.mean(axis=1).max() - h[4]) < 0.02
    out = run_script(['plot_training_progress.py', str(tmp_path / name), '--spread', '2', '-o', str(tmp_path / 'p.png')],
                     ESTOOL).stdout
    table = out.splitlines()[-3:]
    assert table[0].startswith('generations') and 'track std' in table[0]
    assert table[1].split()[0] == '1-2' and table[2].split()[0] == '3-3'

    sys.path.insert(0, ESTOOL)
    try:
        from plot_training_progress import generation_spread
    finally:
        sys.path.remove(ESTOOL)
    solution, track = np.array([0.0, 10.0, 20.0, 30.0]), np.array([0.0, 100.0, 300.0])
    fit_std, track_std, noise = generation_spread(solution[:, None] + track[None, :], common=True)
    assert abs(fit_std - solution.std()) < 1e-9 and abs(track_std - track.std()) < 1e-9 and noise < 1e-9
    _, _, noise = generation_spread(solution[:, None] + track[None, :], common=False)
    assert abs(noise - track.std(ddof=1) / np.sqrt(3)) < 1e-9    # episodes not shared: their spread is noise
