"""carracing/: every stage through its script at toy size, plus numeric checks of V, M and C."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from conftest import CAR, ROOT, Z, UNITS, CAR_FRAMES as FRAMES, folder_modules, run_script

REFERENCE = os.path.join(ROOT, '..', 'shared', 'reference-2018', 'carracing')
MODULES = ['runtime', 'env', 'vae.vae', 'rnn.rnn', 'model', 'dream_env']


@pytest.fixture(scope='module')
def car():
    """carracing's modules imported in-process (its scripts import each other by name)."""
    yield from folder_modules(CAR, MODULES)


@pytest.fixture(scope='module')
def pipeline(car_pipeline):
    return car_pipeline


def load(path):
    with open(path) as f:
        return json.load(f)


def random_params(path, n, scale=0.1, seed=0):
    with open(path, 'w') as f:
        json.dump([np.round(np.random.default_rng(seed).standard_normal(n) * scale, 4).tolist(), 0.0], f)
    return str(path)


# ---------------------------------------------------------------- environment

def test_process_frame_crops_the_dashboard(car):
    obs = np.zeros((96, 96, 3), np.uint8)
    obs[84:] = 255                                    # dashboard rows: cropped away
    frame = car.env.process_frame(obs)
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8 and frame.max() == 0
    obs[83] = 255
    assert car.env.process_frame(obs)[-1].max() > 0


def test_fast_env_gives_the_stock_frames_and_rewards(car):
    """FastRoadCarRacing: the same processed frames and rewards as gymnasium's CarRacing-v3, step
    by step, on road and grass, with the zoom-in of the first second and tiles changing colour."""
    stock, fast = car.env.CarRacingEnv(fast_render=False), car.env.CarRacingEnv()
    assert type(stock.unwrapped).__name__ == 'CarRacing' and isinstance(fast.unwrapped, car.env.FastRoadCarRacing)
    rng = np.random.default_rng(0)
    for seed in (0, 5):
        a, _ = stock.reset(seed=seed)
        b, _ = fast.reset(seed=seed)
        assert np.array_equal(a, b)
        new_tiles = 0
        for t in range(300):
            # straight ahead on the road first (tiles change colour when visited), then anywhere
            action = np.array([0.0, 0.5, 0.0]) if t < 60 else np.array([rng.uniform(-1, 1), rng.uniform(0, 1), 0.0])
            want, got = stock.step(action), fast.step(action)
            assert np.array_equal(want[0], got[0]), (seed, t)
            assert want[1:4] == got[1:4], (seed, t)
            new_tiles += got[1] > 0
        assert new_tiles > 10   # it did drive over new tiles
    stock.close()
    fast.close()


def test_fast_env_window_keeps_its_dashboard(car):
    """Only the state frames skip the dashboard: rgb_array (and the window) draw the stock picture."""
    stock = car.env.make_car_racing('rgb_array', fast_render=False)
    fast = car.env.make_car_racing('rgb_array')
    stock.reset(seed=2)
    fast.reset(seed=2)
    for _ in range(70):
        state, *_ = fast.step(np.array([0.0, 1.0, 0.0]))
        stock.step(np.array([0.0, 1.0, 0.0]))
    picture = fast.render()
    assert np.array_equal(picture, stock.render())
    assert picture[-40:].max() > 0 and state[84:].max() == 0   # speed bar drawn there; state rows left black
    stock.close()
    fast.close()


def test_full_episode_mode_runs_to_the_end(car):
    env = car.env.CarRacingEnv(full_episode=True, max_steps=30)
    frame, _ = env.reset(seed=3)
    assert frame.shape == (64, 64, 3)
    ends = [env.step(np.array([1.0, 1.0, 0.0]))[2:4] for _ in range(30)]
    env.close()
    assert ends[-1] == (False, True) and not any(t or u for t, u in ends[:-1])


def test_keyboard_play_with_posted_key_events():
    code = '''
import pygame, env
def keys(step):
    if step == 0:
        return [pygame.event.Event(pygame.KEYDOWN, key=pygame.K_UP)]
    if step == 40:
        return [pygame.event.Event(pygame.KEYDOWN, key=pygame.K_LEFT)]
    if step == 60:
        return [pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE)]
    return []
total, steps, actions = env.play(max_steps=200, seed=0, events=keys, fps=1000)
print('gas', total, steps, *actions.ravel())
total, steps, actions = env.play(max_steps=61, seed=0, fps=1000)
print('idle', total, steps)
'''
    out = subprocess.run([sys.executable, '-c', code], cwd=CAR, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    runs = {line.split()[0]: line.split()[1:] for line in out.stdout.splitlines() if line.split()[0] in ('gas', 'idle')}
    total, steps = float(runs['gas'][0]), int(runs['gas'][1])
    actions = np.array(runs['gas'][2:], float).reshape(-1, 3)
    assert steps == 61 and 'step' in out.stdout and 'score' in out.stdout
    assert (actions[:40] == [0, 1, 0]).all() and (actions[40:] == [-1, 1, 0]).all()
    assert total > float(runs['idle'][0]) + 10          # accelerating along the track visits tiles


# ---------------------------------------------------------------- the pipeline's scripts

def test_extract_with_a_trained_agent_and_action_noise(pipeline, tmp_path):
    d, _, models = pipeline
    params = random_params(tmp_path / 'c.json', 3 + 3 * (Z + UNITS), scale=0.5)
    base = ['extract.py', '--params', params, '--vae', models['vae'], '--rnn', models['rnn'], '--episodes', '1',
            '--seed', '7', '--max_frames', '30']
    actions = {}
    for name, noise in (('a', '0'), ('b', '0'), ('noisy', '0.3')):
        out = run_script(base + ['--noise', noise, '--record_dir', str(tmp_path / name)], CAR).stdout
        assert 'wrote 1 episodes' in out
        with np.load(tmp_path / name / '7.npz') as e:
            assert e['obs'].shape == (30, 64, 64, 3)
            actions[name] = e['action'].astype(np.float32)
    assert np.array_equal(actions['a'], actions['b'])                       # the agent itself: deterministic
    noise = actions['noisy'] - actions['a']
    assert np.abs(noise[:3]).max() > 0.01                                    # noise on the first actions
    low, high = np.array([-1, 0, 0]), np.array([1, 1, 1])
    assert np.all(actions['noisy'] >= low) and np.all(actions['noisy'] <= high)
    proc = run_script(base + ['--noise', '-1'], CAR, check=False)
    assert proc.returncode == 2 and 'argument --noise: -1 must be >= 0' in proc.stderr


def test_extract_records_random_agent_episodes(pipeline):
    d, out, _ = pipeline
    assert sorted(f for f in os.listdir(d / 'record') if f.endswith('.npz')) == ['0.npz', '1.npz', '2.npz']
    with np.load(d / 'record' / '1.npz') as e:
        obs, action = e['obs'], e['action']
    assert obs.shape == (FRAMES, 64, 64, 3) and obs.dtype == np.uint8
    assert action.shape == (FRAMES, 3) and action.dtype == np.float16
    assert np.all(np.abs(action[:, 0]) <= 1) and np.all((action[:, 1:] >= 0) & (action[:, 1:] <= 1))
    assert action[:, 0].std() > 0                     # random weights, not a constant action
    out2 = run_script(['extract.py', '--episodes', '3', '--max_frames', str(FRAMES), '--record_dir', str(d / 'record')],
                      CAR).stdout
    assert 'skipped 3 already on disk' in out2


def test_train_two_generations_and_replay(pipeline):
    d, _, models = pipeline
    log = str(d / 'log')
    out = run_script(['train.py', '--vae', models['vae'], '--rnn', models['rnn'], '-n', '2', '-t', '2', '-e', '1',
                      '--max_steps', '25', '--max_gen', '2', '--eval_steps', '1', '--log_dir', log], CAR).stdout
    assert 'gen 2 ' in out
    prefix = os.path.join(log, 'carracing.cma.1.4')
    for suffix in ('.json', '.hist.json', '.best.json', '.hist_best.json', '.log.json'):
        assert os.path.exists(prefix + suffix), suffix
    params, _ = load(prefix + '.best.json')
    assert len(params) == 3 + 3 * (Z + UNITS)
    args = ['model.py', 'norender', prefix + '.best.json', '0', '--episodes', '2', '--vae', models['vae'],
            '--rnn', models['rnn'], '--max_steps', '25', '--profile']
    out = run_script(args, CAR).stdout
    scores = [float(line.split()[3]) for line in out.splitlines() if line.startswith('episode')]
    assert len(scores) == 2 and 'per step: env' in out
    summary = out.splitlines()[-1].split()
    assert summary[0] == 'average_reward' and float(summary[1]) == pytest.approx(np.mean(scores), abs=0.01)
    assert [l for l in run_script(args, CAR).stdout.splitlines() if l.startswith('episode')] == \
        [l for l in out.splitlines() if l.startswith('episode')]          # same seed, same scores
    out = run_script(['model.py', 'render', prefix + '.best.json', '--vae', models['vae'], '--rnn', models['rnn'],
                      '--max_steps', '10'], CAR).stdout
    assert 'episode 0 score' in out
    # any logged evaluation's mean replays with --gen; generation 2's is the best.json here
    # only if it beat generation 1's, so compare with the row itself
    gen2 = [row for row in load(prefix + '.log.json') if row[0] == 2][0][2]
    with open(str(d / 'gen2.json'), 'w') as f:
        json.dump([gen2], f)
    by_gen = run_script(['model.py', 'norender', prefix + '.log.json'] + args[3:] + ['--gen', '2'], CAR).stdout
    by_file = run_script(['model.py', 'norender', str(d / 'gen2.json')] + args[3:], CAR).stdout
    assert by_gen.splitlines()[:2] == by_file.splitlines()[:2] and by_gen.startswith('episode 0 score')
    proc = run_script(['model.py', 'norender', prefix + '.log.json'] + args[3:] + ['--gen', '7'], CAR, check=False)
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr
    assert proc.stderr.strip() == '%s.log.json: no evaluation at generation 7 (logged: 1, 2)' % prefix
    proc = run_script(['model.py', 'norender', prefix + '.log.json'] + args[3:], CAR, check=False)
    assert 'needs a generation (model.py --gen)' in proc.stderr and 'Traceback' not in proc.stderr


def test_dream_model_runs_without_window(pipeline, tmp_path):
    _, _, models = pipeline
    params = random_params(tmp_path / 'c.json', 3 + 3 * (Z + UNITS))
    out = run_script(['dream_model.py', params, '--vae', models['vae'], '--rnn', models['rnn'],
                      '--initial_z', models['initial_z'], '--steps', '30', '--no_window'], CAR).stdout
    assert 'dreamed 30 steps' in out
    out = run_script(['dream_model.py', params, '--vae', models['vae'], '--rnn', models['rnn'],
                      '--initial_z', models['initial_z'], '--steps', '5'], CAR).stdout   # dummy video driver
    assert 'dreamed 5 steps' in out


@pytest.mark.parametrize('args,words', [
    (['series.py', '--vae', 'nowhere/vae.json'], 'nowhere/vae.json: no such file (made by vae_train.py'),
    (['rnn_train.py', '--series', 'nowhere.npz'], 'no nowhere.npz (make it with series.py)'),
    (['vae_train.py', '--record_dir', 'nowhere'], 'no nowhere/*.npz episodes (make them with extract.py'),
    (['train.py', '--vae', 'nowhere/vae.json', '-n', '2'], 'nowhere/vae.json: no such file (made by vae_train.py'),
    (['model.py', 'norender', 'nowhere.json', '--rnn', 'nowhere/rnn.json'], 'no such file'),
])
def test_missing_inputs_are_one_line(args, words):
    proc = run_script(args, CAR, check=False)
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr
    assert words in proc.stderr.strip().splitlines()[-1]


def test_interrupted_replay_reports_the_episodes_it_finished(pipeline, tmp_path):
    _, _, models = pipeline
    params = random_params(tmp_path / 'c.json', 3 + 3 * (Z + UNITS))
    proc = subprocess.Popen([sys.executable, 'model.py', 'norender', params, '0', '--episodes', '60', '--max_steps',
                             '300', '--jobs', '2', '--vae', models['vae'], '--rnn', models['rnn']],
                            cwd=CAR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # a test run in the background inherits an ignored SIGINT, which Python keeps
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    first = proc.stdout.readline()          # blocks until the first episode is over
    proc.send_signal(signal.SIGINT)
    out, err = proc.stdout.read(), proc.stderr.read()   # not communicate(): it skips what readline buffered
    proc.wait(timeout=120)
    lines = [first.strip()] + out.splitlines()
    assert proc.returncode == 0 and 'Traceback' not in err, err
    episodes = [l for l in lines if l.startswith('episode')]
    assert 1 <= len(episodes) < 60 and lines[-2] == 'interrupted: the figures below are for the first %d episodes' \
        % len(episodes)
    scores = [float(l.split()[3]) for l in episodes]     # printed to 2 decimals, hence the tolerance
    summary = lines[-1].split()
    assert summary[0] == 'average_reward' and float(summary[1]) == pytest.approx(np.mean(scores), abs=0.01)


def test_mismatched_params_name_file_and_size(pipeline, tmp_path):
    _, _, models = pipeline
    params = random_params(tmp_path / 'short.json', 10)
    proc = run_script(['model.py', 'norender', params, '--vae', models['vae'], '--rnn', models['rnn']], CAR,
                      check=False)
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr
    assert '%s: 10 params, expected %d' % (params, 3 + 3 * (Z + UNITS)) in proc.stderr


# ---------------------------------------------------------------- numerics

def test_mdn_loss_matches_scipy(car):
    from keras import ops
    from scipy.stats import norm
    rng = np.random.default_rng(3)
    y_pred = rng.standard_normal((2, 4, Z * 15)).astype(np.float32) * 0.5
    z_next = rng.standard_normal((2, 4, Z)).astype(np.float32)
    loss = float(ops.convert_to_numpy(car.rnn.make_loss(Z)(z_next, y_pred)))
    p = y_pred.reshape(2, 4, Z, 15)
    w = np.exp(p[..., :5]) / np.exp(p[..., :5]).sum(-1, keepdims=True)
    density = (w * norm.pdf(z_next[..., None], p[..., 5:10], np.exp(p[..., 10:]))).sum(-1)
    assert loss == pytest.approx(-np.log(density).mean(), rel=1e-4)


def test_controller_layout_and_action_ranges(car):
    c = car.runtime.Controller(32, 256)
    assert c.num_params == 867
    params = np.zeros(867, np.float32)
    params[:3] = [5.0, -5.0, -5.0]            # biases first: steer right, gas ~0, brake clipped to 0
    c.set_params(params)
    a = c.act(np.zeros((1, 32), np.float32), np.zeros((1, 256), np.float32))[0]
    assert a[0] == pytest.approx(np.tanh(5.0), rel=1e-5) and a[1] == pytest.approx(0, abs=1e-4) and a[2] == 0.0
    params[3 + 3 * 40 + 2] = 1.0              # W[40, 2]: input 40 (h[8]) drives the brake
    c.set_params(params)
    h = np.zeros((1, 256), np.float32)
    h[0, 8] = 10.0
    assert c.act(np.zeros((1, 32), np.float32), h)[0, 2] == pytest.approx(np.tanh(5.0), rel=1e-5)


def test_lockstep_rollouts_follow_each_episodes_controller_and_track(car):
    """model.rollout_batch drives episode b with params[b] on track seeds[b], as rollout does (to
    float rounding: the batched products round differently), and ends each on its own."""
    rng = np.random.default_rng(0)
    agent = car.model.Agent(car.runtime.VAE.random(8, rng), car.runtime.MDNRNN.random(8, 16, rng))
    n = agent.controller.num_params
    params = rng.standard_normal((3, n)).astype(np.float32) * 0.3
    params[:, 1] = [2.0, 2.0, -10.0]           # gas bias: the third car never accelerates
    seeds = np.array([4, 9, 4])
    envs = [car.env.CarRacingEnv() for _ in range(3)]
    scores, steps = car.model.rollout_batch(agent, envs, params, seeds, max_steps=120, stall_steps=40)
    for b in range(3):
        agent.controller.set_params(params[b])
        score, length = car.model.rollout(agent, envs[0], seeds[b], max_steps=120, stall_steps=40)
        assert steps[b] == length and scores[b] == pytest.approx(score, abs=0.5), b
    assert steps[2] < steps[0] and scores[0] != scores[2]     # the idle car leaves the batch first
    for env in envs:
        env.close()


def test_stalled_training_episode_ends_early_with_the_same_score(car):
    """A car that never accelerates: cutting its episode short charges exactly the steps left."""
    rng = np.random.default_rng(0)
    agent = car.model.Agent(car.runtime.VAE.random(8, rng), car.runtime.MDNRNN.random(8, 16, rng))
    params = np.zeros(agent.controller.num_params)
    params[1] = -10.0                         # gas bias: tanh -> -1, mapped to gas 0
    agent.controller.set_params(params)
    env = car.env.CarRacingEnv()
    full = car.model.rollout(agent, env, seed=3, max_steps=300)
    cut = car.model.rollout(agent, env, seed=3, max_steps=300, stall_steps=50)
    env.close()
    assert full[1] == 300 and cut[1] < 100
    assert cut[0] == pytest.approx(full[0], abs=1e-6) and full[0] < 0


# ---------------------------------------------------------------- the 2018 files

@pytest.mark.skipif(not os.path.isdir(REFERENCE), reason='../shared/reference-2018 not present')
def test_reference_2018_files_load_unchanged(car):
    rt = car.runtime
    m = rt.MDNRNN.load(os.path.join(REFERENCE, 'rnn', 'rnn.json'))
    assert (m.z_size, m.units, m.num_mixture) == (32, 256, 5)
    mu, logvar = rt.load_initial_z(os.path.join(REFERENCE, 'initial_z', 'initial_z.json'))
    assert mu.shape[1] == 32
    state = m.step(mu[:1], np.array([[0.0, 1.0, 0.0]], np.float32), m.initial_state(1))
    logmix, mean, logstd = m.mixture(state[1])
    assert logmix.shape == (1, 32, 5) and np.allclose(np.exp(logmix).sum(-1), 1, atol=1e-5)
    assert np.isfinite(mean).all() and np.isfinite(logstd).all()
    params = rt.load_params(os.path.join(REFERENCE, 'log', 'carracing.cma.16.64.best.json'), 867)
    c = rt.Controller(32, 256)
    c.set_params(params)
    a = c.act(mu[:1], state[1])
    assert a.shape == (1, 3) and -1 <= a[0, 0] <= 1 and 0 <= a[0, 1] <= 1 and 0 <= a[0, 2] <= 1


# ---------------------------------------------------------------- the shipped agent

# The shipped controller: run 2's best.json, with vae/vae.json, rnn/rnn.json (README's replay command).
SHIPPED = os.path.join(CAR, 'log', 'carracing.cma.16.32.best.json')
# Run 1's controller, generation 140's mean, with the world model it was trained on.
RUN1 = ['log/carracing.cma.2.24.log.json', '--gen', '140', '--vae', 'vae/vae_run1.json', '--rnn', 'rnn/rnn_run1.json']


def test_shipped_agent_has_the_paper_sizes_and_drives_the_real_env(car):
    agent = car.model.Agent.load(os.path.join(CAR, 'vae', 'vae.json'), os.path.join(CAR, 'rnn', 'rnn.json'))
    assert (agent.vae.z_size, agent.rnn.z_size, agent.rnn.units) == (32, 32, 256)
    init_mu, init_logvar = car.runtime.load_initial_z(os.path.join(CAR, 'initial_z', 'initial_z.json'))
    assert init_mu.shape == init_logvar.shape and init_mu.shape[1] == 32 and len(init_mu) >= 100
    params = car.runtime.load_params(SHIPPED, agent.controller.num_params)
    assert params.shape == (867,) and np.isfinite(params).all() and np.abs(params).max() > 0
    agent.controller.set_params(params)
    env = car.env.CarRacingEnv()
    frame, _ = env.reset(seed=0)
    agent.reset(np.random.default_rng(0))
    total, actions = 0.0, []
    for _ in range(50):
        action = agent.act(frame)
        assert action.shape == (3,) and -1 <= action[0] <= 1 and 0 <= action[1] <= 1 and 0 <= action[2] <= 1
        actions.append(action)
        frame, reward, terminated, truncated, _ = env.step(action)
        total += reward
        assert frame.shape == (64, 64, 3) and not (terminated or truncated)
    env.close()
    # in 50 steps (1 s of game time) a trained agent is already driving along the road
    assert np.mean([a[1] for a in actions]) > 0.1 and total > 0, (total, np.mean(actions, axis=0))


def test_pin_cpu_selects_the_avx2_kernels():
    code = ('import os, pin_cpu, numpy\n'
            'from numpy._core._multiarray_umath import __cpu_features__ as f\n'
            'print(os.environ["OPENBLAS_CORETYPE"], f["X86_V4"], f["AVX512_SKX"])')
    env = {k: v for k, v in os.environ.items() if k not in ('OPENBLAS_CORETYPE', 'NPY_DISABLE_CPU_FEATURES')}
    out = subprocess.run([sys.executable, '-c', code], cwd=CAR, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ['Haswell', 'False', 'False'] and 'Warning' not in out.stderr, out


# The README's commands on their first two tracks, as two processes (--jobs 2), and what results.md's
# per-track tables give for them. Run 1's scores on an AVX-512 machine without pin_cpu were 721 and 816.
REPLAYS = {
    'shipped': ([SHIPPED], ['episode 0 score 903.60 steps 964', 'episode 1 score 912.00 steps 880',
                            'average_reward 907.80 stdev 4.20']),
    'run 1': (RUN1, ['episode 0 score 608.46 steps 1000', 'episode 1 score 805.45 steps 1000',
                     'average_reward 706.96 stdev 98.50']),
}


@pytest.mark.parametrize('agent', sorted(REPLAYS))
def test_agents_score_what_results_md_says_on_any_cpu(agent):
    params, expected = REPLAYS[agent]
    out = run_script(['model.py', 'norender'] + params + ['0', '--episodes', '2', '--jobs', '2'], CAR).stdout
    assert out.splitlines() == expected
