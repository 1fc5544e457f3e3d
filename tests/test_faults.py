"""Faults and bad input: signals, kills, reruns, bad files and flags, diverged training,
read-only folders, runs under a user's own mpiexec. Real environments, toy sizes."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT, run_script

ESTOOL = os.path.join(ROOT, 'estool')
CAR = os.path.join(ROOT, 'carracing')
DOOM = os.path.join(ROOT, 'doomrnn')
TRAIN = ['train.py', 'cartpole_swingup', '-n', '2', '-t', '2', '-e', '1']
NAME = 'cartpole_swingup.cma.1.4'


def read(path):
    with open(path) as f:
        return json.load(f)


def one_line_error(proc):
    """The stderr of a refused start: one line, no traceback."""
    err = proc.stderr.strip()
    assert proc.returncode != 0 and 'Traceback' not in err, err
    assert len(err.splitlines()) == 1, err
    return err


def run_pids(log_dir):
    """PIDs of every process of a run writing to log_dir except the launcher: mpiexec, its
    proxy and the ranks (those have PMI_RANK or are MPICH's own programs)."""
    pids = []
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                cmd = f.read().split(b'\0')
            with open('/proc/%s/environ' % pid, 'rb') as f:
                env = f.read()
            with open('/proc/%s/stat' % pid) as f:
                zombie = f.read().rsplit(')', 1)[1].split()[0] == 'Z'
        except OSError:
            continue
        mpich = any(os.path.basename(c).startswith((b'mpiexec', b'hydra_pmi_proxy')) for c in cmd[:1])
        if not zombie and str(log_dir).encode() in b' '.join(cmd) and (b'PMI_RANK=' in env or mpich):
            pids.append(int(pid))
    return pids


def wait_for(predicate, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def start_run(log_dir, *extra):
    # Output goes to a file: a pipe nobody reads fills up (~2 KB/s of generation lines) and
    # then blocks mpiexec's writes, and with them its handling of the signal under test.
    with open(os.path.join(str(log_dir), 'run.out'), 'w') as out:
        return subprocess.Popen([sys.executable] + TRAIN + ['--eval_steps', '1000', '--log_dir', str(log_dir)] + list(extra),
                                cwd=ESTOOL, stdout=out, stderr=subprocess.STDOUT, text=True)


def hist_rows(log_dir):
    try:
        return len(read(os.path.join(str(log_dir), NAME + '.hist.json')))
    except (OSError, ValueError):
        return 0


# ---------------------------------------------------------------- 1: no orphaned runs, one writer per prefix

@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_stopping_the_launcher_stops_every_rank_and_frees_the_logs(tmp_path, sig):
    proc = start_run(tmp_path)
    try:
        assert wait_for(lambda: hist_rows(tmp_path) >= 2, 120), 'the run did not start'
        assert len([p for p in run_pids(tmp_path) if p != proc.pid]) >= 3
        # a second run on the same logs is refused while the first is writing them
        second = run_script(TRAIN + ['--resume', '--max_gen', '1', '--log_dir', str(tmp_path)], ESTOOL, check=False)
        assert 'another run' in one_line_error(second)
        proc.send_signal(sig)
        proc.wait(timeout=60)
        assert wait_for(lambda: not run_pids(tmp_path), 30), 'ranks still running: %s' % run_pids(tmp_path)
    finally:
        if proc.poll() is None:
            proc.kill()
    rows = hist_rows(tmp_path)
    time.sleep(1.5)
    assert hist_rows(tmp_path) == rows          # nobody writes the logs any more
    # the dead run left no stuck lock: --resume takes over
    out = run_script(TRAIN + ['--resume', '--max_gen', str(rows + 1), '--log_dir', str(tmp_path)], ESTOOL).stdout
    assert 'gen %d ' % (rows + 1) in out


def test_a_launcher_whose_mpiexec_does_not_stop_kills_it(tmp_path):
    """A stop signal passed on to an mpiexec that cannot act on it (here: frozen by SIGSTOP)
    still ends the launcher and every rank, STOP_GRACE_SECONDS later."""
    proc = start_run(tmp_path)
    try:
        assert wait_for(lambda: hist_rows(tmp_path) >= 2, 120), 'the run did not start'
        mpiexec = [p for p in run_pids(tmp_path) if p != proc.pid and b'mpiexec' in
                   open('/proc/%d/cmdline' % p, 'rb').read().split(b'\0')[0]]
        assert len(mpiexec) == 1
        os.kill(mpiexec[0], signal.SIGSTOP)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        assert wait_for(lambda: not run_pids(tmp_path), 30), 'ranks still running: %s' % run_pids(tmp_path)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM


# ---------------------------------------------------------------- 2: no silent overwrite

def test_rerun_without_resume_refuses_and_restart_starts_over(tmp_path):
    run_script(TRAIN + ['--max_gen', '2', '--log_dir', str(tmp_path)], ESTOOL)
    before = read(tmp_path / (NAME + '.hist.json'))
    err = one_line_error(run_script(TRAIN + ['--max_gen', '1', '--log_dir', str(tmp_path)], ESTOOL, check=False))
    assert '--resume' in err and '--restart' in err and str(tmp_path / NAME) in err
    assert read(tmp_path / (NAME + '.hist.json')) == before
    run_script(TRAIN + ['--max_gen', '1', '--restart', '--log_dir', str(tmp_path)], ESTOOL)
    assert [r[0] for r in read(tmp_path / (NAME + '.hist.json'))] == [1]
    assert [r[0] for r in read(tmp_path / (NAME + '.log.json'))] == [1]   # the old evaluations went too


# ---------------------------------------------------------------- 9: a crashing worker's message

CRASHING_TRAIN = '''
import argparse
from estool import fanout

def make_evaluator():
    def evaluate(params, seeds, train_mode, max_len):
        raise RuntimeError('boom in rank evaluate')
    return evaluate

p = argparse.ArgumentParser()
fanout.add_es_arguments(p, num_worker=2, num_worker_trial=1, num_episode=1)
args = p.parse_args()
fanout.check_es_arguments(p, args)
fanout.run(args, 'crash', 3, make_evaluator)
'''


def test_a_crashing_workers_error_is_printed_by_rank_0(tmp_path):
    (tmp_path / 'crash_train.py').write_text(CRASHING_TRAIN)
    env = dict(os.environ, PYTHONPATH=ROOT)
    for i in range(3):   # the old worker-side message was lost in some runs
        proc = subprocess.run([sys.executable, 'crash_train.py', '--log_dir', str(tmp_path / ('log%d' % i))],
                              cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode != 0
        assert 'crash_train.py: worker ' in proc.stderr and 'failed: RuntimeError: boom in rank evaluate' in proc.stderr, \
            proc.stderr


# ---------------------------------------------------------------- 12: unwritable log dir, corrupt checkpoint

def test_unwritable_log_dir_is_one_line_before_mpi_starts(tmp_path):
    (tmp_path / 'file').write_text('not a folder')
    err = one_line_error(run_script(TRAIN + ['--max_gen', '1', '--log_dir', str(tmp_path / 'file' / 'log')],
                                    ESTOOL, check=False))
    assert err.startswith('--log_dir %s: cannot write' % (tmp_path / 'file' / 'log'))


def test_corrupt_es_pkl_on_resume_is_one_line(tmp_path):
    run_script(TRAIN + ['--max_gen', '1', '--log_dir', str(tmp_path)], ESTOOL)
    (tmp_path / (NAME + '.es.pkl')).write_bytes(b'\x80\x05 truncated')
    proc = run_script(TRAIN + ['--max_gen', '2', '--resume', '--log_dir', str(tmp_path)], ESTOOL, check=False)
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr, proc.stderr
    assert '%s.es.pkl is not a readable checkpoint' % (tmp_path / NAME) in proc.stderr


# ---------------------------------------------------------------- scale past one machine

def test_runs_under_a_user_started_mpiexec_with_a_hostfile(tmp_path):
    """MPICH's `mpiexec -f hostfile`, a host named more than once, as across machines."""
    hostfile = tmp_path / 'hosts'
    hostfile.write_text('localhost\nlocalhost\nlocalhost\n')
    mpiexec = os.path.join(os.path.dirname(sys.executable), 'mpiexec')
    log = str(tmp_path / 'log')

    def mpirun(*extra):
        return subprocess.run([mpiexec, '-f', str(hostfile), '-n', '3', sys.executable, '-u'] + TRAIN +
                              ['--eval_steps', '2', '--log_dir', log] + list(extra), cwd=ESTOOL,
                              capture_output=True, text=True, timeout=180)
    out = mpirun('--max_gen', '2')
    assert out.returncode == 0, out.stderr
    assert 'MPI: 3 ranks on 1 host' in out.stdout and 'gen 2 ' in out.stdout
    assert [r[0] for r in read(os.path.join(log, NAME + '.hist.json'))] == [1, 2]
    again = mpirun('--max_gen', '3')           # the same refusal as under train.py's own relaunch
    assert again.returncode != 0 and 'add --resume to continue it' in again.stderr
    assert [r[0] for r in read(os.path.join(log, NAME + '.hist.json'))] == [1, 2]
    out = mpirun('--max_gen', '3', '--resume')
    assert out.returncode == 0 and 'gen 3 ' in out.stdout, out.stderr


def test_a_user_started_mpiexec_of_the_wrong_size_is_refused_in_one_line(tmp_path):
    mpiexec = os.path.join(os.path.dirname(sys.executable), 'mpiexec')
    out = subprocess.run([mpiexec, '-n', '2', sys.executable, '-u'] + TRAIN + ['--log_dir', str(tmp_path)],
                         cwd=ESTOOL, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert '-n 2 needs 3 MPI processes (mpiexec -n 3), got 2' in out.stderr and 'Traceback' not in out.stderr


# ---------------------------------------------------------------- 10: flags are validated

@pytest.mark.parametrize('folder, args, flag', [
    (ESTOOL, TRAIN + ['--sigma_init', '0'], '--sigma_init'),
    (ESTOOL, TRAIN + ['--sigma_init', '-1'], '--sigma_init'),
    (ESTOOL, TRAIN + ['--sigma_init', 'nan'], '--sigma_init'),
    (ESTOOL, TRAIN + ['--max_gen', '-1'], '--max_gen'),
    (ESTOOL, TRAIN + ['--weight_decay', 'nan'], '--weight_decay'),
    (ESTOOL, ['model.py', 'cartpole_swingup', 'x.json', 'norender', '--episodes', '0'], '--episodes'),
    (CAR, ['vae_train.py', '--batch_size', '0'], '--batch_size'),
    (CAR, ['vae_train.py', '--z_size', '0'], '--z_size'),
    (CAR, ['vae_train.py', '--epochs', '0'], '--epochs'),
    (CAR, ['rnn_train.py', '--batch_size', '0'], '--batch_size'),
    (CAR, ['rnn_train.py', '--seq_len', '1'], '--seq_len'),
    (CAR, ['series.py', '--batch_size', '0'], '--batch_size'),
    (DOOM, ['train.py', '--temperature', '0'], '--temperature'),
    (DOOM, ['model.py', 'doomrnn', 'norender', 'x.json', '--episodes', '0'], '--episodes'),
    (DOOM, ['model.py', 'doomrnn', 'norender', 'x.json', '--temperature', '-1'], '--temperature'),
    (DOOM, ['rnn_train.py', '--learning_rate', 'nan'], '--learning_rate'),
])
def test_out_of_range_flags_are_an_argparse_error(folder, args, flag):
    proc = run_script(args, folder, check=False)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr
    assert 'error: argument %s' % flag in last, last


# ---------------------------------------------------------------- 4 and 11: no NaN run, no NaN loaded

def nan_params(path, n):
    with open(path, 'w') as f:
        json.dump([[float('nan')] * n, 0.0], f)     # Python's json writes NaN
    return str(path)


def test_nan_or_nested_params_are_refused_at_load_by_every_replay(tmp_path):
    doom_best = os.path.join(DOOM, 'log', 'doomrnn.cma.16.64.best.json')
    n_doom, n_car = len(read(doom_best)[0]), 3 + 3 * (32 + 256)
    d, c, e = nan_params(tmp_path / 'd.json', n_doom), nan_params(tmp_path / 'c.json', n_car), \
        nan_params(tmp_path / 'e.json', 66)
    cases = [
        (DOOM, ['model.py', 'doomreal', 'norender', d, '--episodes', '1'], d),   # scored 100 in the real game
        (DOOM, ['model.py', 'doomrnn', 'norender', d, '--episodes', '1'], d),
        (CAR, ['model.py', 'norender', c, '--episodes', '1'], c),                # raised inside gymnasium
        (ESTOOL, ['model.py', 'cartpole_swingup', e, 'norender', '--episodes', '1'], e),
    ]
    for folder, args, path in cases:
        err = one_line_error(run_script(args, folder, check=False))
        assert err.startswith(path + ': ') and 'nan' in err, err
    nested = tmp_path / 'nested.json'
    nested.write_text(json.dumps([[read(doom_best)[0]]]))
    err = one_line_error(run_script(['model.py', 'doomrnn', 'norender', str(nested)], DOOM, check=False))
    assert err == '%s: params of shape (1, %d), expected a flat list of %d' % (nested, n_doom, n_doom)


def test_weights_of_a_diverged_run_are_refused_at_load(tmp_path):
    """A nan saved in the 2018 integer layout became int64-min, loaded as -9.2e14."""
    models = tmp_path / 'models'
    os.makedirs(models)
    for name in ('rnn.json', 'initial_z.json', 'vae.json'):
        data = read(os.path.join(DOOM, 'tf_models', name))
        if name == 'rnn.json':
            data[1][0] = -2 ** 63
        with open(models / name, 'w') as f:
            json.dump(data, f)
    best = os.path.join(DOOM, 'log', 'doomrnn.cma.16.64.best.json')
    for args in (['model.py', 'doomrnn', 'norender', best, '--models', str(models), '--episodes', '1'],
                 ['train.py', '--models', str(models), '-n', '1', '--max_gen', '1', '--log_dir', str(tmp_path / 'log')]):
        err = one_line_error(run_script(args, DOOM, check=False))
        assert err.startswith(str(models / 'rnn.json')) and 'beyond' in err, err
    assert not os.path.exists(tmp_path / 'log')


# ---------------------------------------------------------------- V and M training at toy size

Z = 4


@pytest.fixture(scope='module')
def car_data(tmp_path_factory):
    """Two 40-frame CarRacing episodes, a toy V trained on them and their series."""
    d = tmp_path_factory.mktemp('faults_car')
    run_script(['extract.py', '--episodes', '2', '--seed', '0', '--max_frames', '40', '--record_dir', str(d / 'record')], CAR)
    run_script(['vae_train.py', '--record_dir', str(d / 'record'), '--out_dir', str(d / 'tf_vae'), '--z_size', str(Z),
                '--batch_size', '20', '--epochs', '1', '--max_steps', '1'], CAR)
    run_script(['series.py', '--record_dir', str(d / 'record'), '--vae', str(d / 'tf_vae' / 'vae.json'),
                '--out', str(d / 'series' / 'series.npz')], CAR)
    return d


def vae_args(d, out_dir, *extra):
    return ['vae_train.py', '--record_dir', str(d / 'record'), '--out_dir', str(out_dir), '--z_size', str(Z),
            '--batch_size', '20', '--buffer_files', '1', '--checkpoint_every', '3'] + list(extra)


def test_diverged_training_stops_non_zero_and_saves_nothing(car_data, tmp_path):
    proc = run_script(vae_args(car_data, tmp_path / 'v', '--epochs', '1', '--learning_rate', '1e30',
                               '--checkpoint_every', '1'), CAR, check=False)
    assert proc.returncode != 0 and 'vae_train.py: training diverged at epoch 1' in proc.stderr, proc.stderr[-2000:]
    assert not os.path.exists(tmp_path / 'v' / 'vae.json')
    rnn = ['rnn_train.py', '--series', str(car_data / 'series' / 'series.npz'), '--out_dir', str(tmp_path / 'r'),
           '--initial_z_dir', str(tmp_path / 'z'), '--units', '8', '--seq_len', '20', '--batch_size', '4',
           '--checkpoint_every', '2']
    run_script(rnn + ['--steps', '2'], CAR)
    good = (tmp_path / 'r' / 'rnn.json').read_bytes()
    # A resume refuses another learning rate, except from a checkpoint of an older version,
    # which recorded no settings: made so here, to resume into one that diverges.
    state = read(tmp_path / 'r' / 'ckpt_state.json')
    del state['run']
    with open(tmp_path / 'r' / 'ckpt_state.json', 'w') as f:
        json.dump(state, f)
    proc = run_script(rnn + ['--steps', '6', '--resume', '--learning_rate', '1e30'], CAR, check=False)
    assert proc.returncode != 0 and 'rnn_train.py: training diverged at step' in proc.stderr, proc.stderr[-2000:]
    assert 'the last good checkpoint (step 2) is kept' in proc.stderr
    assert (tmp_path / 'r' / 'rnn.json').read_bytes() == good
    assert read(tmp_path / 'r' / 'ckpt_state.json')['step'] == 2


# ---------------------------------------------------------------- 5: no usable data

def test_vae_train_refuses_records_without_one_batch(car_data, tmp_path):
    err = one_line_error(run_script(vae_args(car_data, tmp_path / 'v', '--batch_size', '1000'), CAR, check=False))
    assert err.startswith('vae_train.py: %s holds 80 readable frames, fewer than one batch' % (car_data / 'record'))
    os.makedirs(tmp_path / 'bad')
    for i in range(2):
        (tmp_path / 'bad' / ('%d.npz' % i)).write_bytes(b'PK\x03\x04 not really a zip')
    err = one_line_error(run_script(['vae_train.py', '--record_dir', str(tmp_path / 'bad'), '--out_dir',
                                     str(tmp_path / 'v')], CAR, check=False))
    assert 'holds 0 readable frames' in err
    assert not os.path.exists(tmp_path / 'v' / 'vae.json')


# ---------------------------------------------------------------- 6: series.py skips bad records

def test_series_skips_and_counts_records_with_a_bad_action(car_data, tmp_path):
    os.makedirs(tmp_path / 'record')
    with np.load(car_data / 'record' / '0.npz') as d:
        obs, action = d['obs'], d['action']
    np.savez(tmp_path / 'record' / '0.npz', obs=obs, action=action)
    np.savez(tmp_path / 'record' / '1.npz', obs=obs)                       # no action
    np.savez(tmp_path / 'record' / '2.npz', obs=obs, action=action[:5])    # short action
    out = run_script(['series.py', '--record_dir', str(tmp_path / 'record'), '--vae',
                      str(car_data / 'tf_vae' / 'vae.json'), '--out', str(tmp_path / 'series.npz')], CAR)
    assert 'skipped 2 unreadable record files' in out.stdout and 'series: 1 episodes, 40 frames' in out.stdout


# ---------------------------------------------------------------- 7: whole checkpoints

def test_a_checkpoint_cut_off_while_written_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    from conftest import folder_modules
    gen = folder_modules(CAR, ['vae_train', 'vae.vae'])
    m = next(gen)
    try:
        import keras
        x = np.random.default_rng(0).random((4, 64, 64, 3)).astype(np.float32)

        def model():
            v = m.vae.build_vae(Z, 0.5, 0)
            v.compile(optimizer=keras.optimizers.Adam(1e-3))
            return v
        v = model()
        v.train_on_batch(x)
        m.vae_train.save_checkpoint(v, str(tmp_path), {'epoch': 0, 'step_in_epoch': 1, 'step': 1})
        step1 = [a.copy() for a in v.export_arrays()]
        v.train_on_batch(x)

        def killed(*args, **kwargs):
            raise KeyboardInterrupt('killed while the optimizer file was written')
        monkeypatch.setattr(np, 'savez', killed)
        with pytest.raises(KeyboardInterrupt):
            m.vae_train.save_checkpoint(v, str(tmp_path), {'epoch': 0, 'step_in_epoch': 2, 'step': 2})
        monkeypatch.undo()
        fresh = model()
        state = m.vae_train.load_checkpoint(fresh, str(tmp_path))
        assert state['step'] == 1
        for a, b in zip(fresh.export_arrays(), step1):
            np.testing.assert_array_equal(a, b)
    finally:
        gen.close()


def test_corrupt_checkpoint_on_resume_is_one_line(car_data, tmp_path):
    out_dir = tmp_path / 'v'
    run_script(vae_args(car_data, out_dir, '--epochs', '1', '--max_steps', '1'), CAR)
    state = read(out_dir / 'ckpt_state.json')
    (out_dir / state['files'][0]).write_bytes(b'not hdf5')
    proc = run_script(vae_args(car_data, out_dir, '--epochs', '1', '--resume'), CAR, check=False)
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith('--resume: the checkpoint in %s is unreadable' % out_dir)


# (8: vae_train's resume is bit-exact, across an epoch's end too: test_contracts.py's resume test)


# ---------------------------------------------------------------- 12: Ctrl-C of a replay prints the partial average

@pytest.mark.parametrize('folder, args', [
    (DOOM, ['model.py', 'doomrnn', 'norender', os.path.join(DOOM, 'log', 'doomrnn.cma.16.64.best.json'),
            '--episodes', '1000']),
    (ESTOOL, ['model.py', 'cartpole_swingup', 'PARAMS', 'norender', '--episodes', '100000']),
])
def test_interrupted_replay_prints_the_average_of_finished_episodes(folder, args, tmp_path):
    params = tmp_path / 'p.json'
    params.write_text(json.dumps([np.round(np.random.default_rng(0).standard_normal(66) * 0.1, 4).tolist()]))
    args = [str(params) if a == 'PARAMS' else a for a in args]
    proc = subprocess.Popen([sys.executable] + args, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    first = proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.wait(timeout=60)
    lines = [first.strip()] + out.splitlines()
    assert proc.returncode == 0 and 'Traceback' not in err, err
    episodes = [l for l in lines if l.startswith('episode')]
    assert lines[-2] == 'interrupted: the figures below are for the first %d episodes' % len(episodes)
    scores = [float(l.split()[3]) for l in episodes]
    summary = lines[-1].split()
    assert summary[0] == 'average_reward' and float(summary[1]) == pytest.approx(np.mean(scores), abs=0.01)


def test_plot_errors_name_the_file(tmp_path):
    (tmp_path / 'x.hist.json').write_text('[[1, 2')
    proc = run_script(['plot_training_progress.py', str(tmp_path / 'x')], ESTOOL, check=False)
    err = one_line_error(proc)
    assert err.startswith('plot_training_progress.py: %s: not a train.py log' % (tmp_path / 'x.hist.json'))
    (tmp_path / 'x.hist.json').write_text('[[1, 0, 1, 1, 1, 0, 0.1, 5, 5]]')
    (tmp_path / 'x.hist_best.json').write_text('[[1, 2, 3]]')
    err = one_line_error(run_script(['plot_training_progress.py', str(tmp_path / 'x')], ESTOOL, check=False))
    assert '%s: not a train.py log' % (tmp_path / 'x.hist_best.json') in err


def test_plot_into_a_closed_pipe_ends_without_a_traceback(tmp_path):
    """`--spread 1 | head`: the reader leaves before the table; the PNG is written, no traceback."""
    proc = subprocess.Popen([sys.executable, os.path.join(ESTOOL, 'plot_training_progress.py'),
                             os.path.join(CAR, 'log', 'carracing.cma.8.32'), '--spread', '1',
                             '-o', str(tmp_path / 'p.png')],
                            cwd=ESTOOL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()    # before the script's first print, which then meets a broken pipe
    _, err = proc.communicate(timeout=300)
    assert 'Traceback' not in err and 'BrokenPipeError' not in err, err[-2000:]
    assert proc.returncode == 1 and (tmp_path / 'p.png').stat().st_size > 0


# ---------------------------------------------------------------- 3: vizdoom from a read-only folder

def test_doom_replay_and_extraction_run_from_a_read_only_folder(tmp_path):
    ro = tmp_path / 'ro'
    os.makedirs(ro)
    os.chmod(ro, 0o555)
    # root ignores permission bits; the immutable attribute binds root too
    immutable = subprocess.run(['chattr', '+i', str(ro)], capture_output=True).returncode == 0
    try:
        with pytest.raises(OSError):
            (ro / 'probe').write_text('x')
        best = os.path.join(DOOM, 'log', 'doomrnn.cma.16.64.best.json')
        proc = subprocess.run([sys.executable, os.path.join(DOOM, 'model.py'), 'doomreal', 'norender', best,
                               '--models', os.path.join(DOOM, 'tf_models'), '--episodes', '2', '--max_steps', '30'],
                              cwd=str(ro), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.splitlines()[-1] == 'average_reward 30.00 stdev 0.00'
        proc = subprocess.run([sys.executable, os.path.join(DOOM, 'extract.py'), '--episodes', '1', '--max_frames', '20',
                               '--min_frames', '1', '--record_dir', str(tmp_path / 'record')],
                              cwd=str(ro), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert os.listdir(tmp_path / 'record') and os.listdir(ro) == []
    finally:
        if immutable:
            subprocess.run(['chattr', '-i', str(ro)])
        os.chmod(ro, 0o755)


# ---------------------------------------------------------------- 12: Doom results do not depend on the -n/-t split

def toy_world(folder, seed=0, z=4, units=8):
    """A random M and initial z's, written in the 2018 layout; episodes end when its
    done logit turns positive, so their lengths depend on the dream's random draws."""
    sys.path.insert(0, DOOM)
    try:
        from runtime import rnn_shapes, save_json_weights
    finally:
        sys.path.remove(DOOM)
    rng = np.random.default_rng(seed)
    arrays = [rng.uniform(-0.5, 0.5, shape) for _, shape in rnn_shapes(z, units)]
    arrays[2][:, 0] *= 6                                  # a done logit that swings with the dream's state,
    arrays[3][0] = -1.0                                   # so episodes last from a few steps to hundreds
    os.makedirs(folder)
    save_json_weights(os.path.join(folder, 'rnn.json'), arrays)
    save_json_weights(os.path.join(folder, 'initial_z.json'), [rng.standard_normal((5, z)), np.zeros((5, z))])
    for name in list(sys.modules):
        if name == 'runtime':
            del sys.modules[name]


def test_doom_training_does_not_depend_on_the_worker_split(tmp_path):
    toy_world(str(tmp_path / 'world'))
    logs = {}
    for n, t in ((2, 2), (4, 1)):
        log = tmp_path / ('log%d' % n)
        run_script(['train.py', '--models', str(tmp_path / 'world'), '-n', str(n), '-t', str(t), '-e', '3',
                    '--max_gen', '2', '--eval_steps', '1', '--log_dir', str(log)], DOOM)
        prefix = str(log / 'doomrnn.cma.3.4')
        logs[n] = ([row[2:] for row in read(prefix + '.hist.json')], read(prefix + '.json'),
                   [row[1] for row in read(prefix + '.log.json')])
    assert logs[2][0][0][3] > 0          # the population's fitness differs: the episodes vary
    assert logs[2] == logs[4]
