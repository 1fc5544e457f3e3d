"""doomrnn/: every stage through its script at toy size, plus numeric checks of V, M and C."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import norm

from conftest import DOOM, ROOT, Z, UNITS, folder_modules, run_script

REFERENCE = os.path.join(ROOT, '..', 'shared', 'reference-2018', 'doomrnn')
MODULES = ['runtime', 'env', 'vae', 'rnn', 'doomrnn', 'doomreal', 'records', 'vae_train', 'series', 'rnn_train', 'rnn_eval',
           'train']


@pytest.fixture(scope='module')
def doom():
    """doomrnn's modules imported in-process (the folder's scripts import each other by name)."""
    yield from folder_modules(DOOM, MODULES)


@pytest.fixture(scope='module')
def pipeline(doom_pipeline):
    return doom_pipeline


def load(path):
    with open(path) as f:
        return json.load(f)


# ---------------------------------------------------------------- the real game

def test_process_frame_keeps_the_top_five_sixths(doom):
    screen = np.zeros((240, 320, 3), np.uint8)
    screen[200:] = 255                      # the bottom sixth: must not reach the 64x64 frame
    frame = doom.env.process_frame(screen)
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8 and frame.max() == 0
    screen[199] = 255
    assert doom.env.process_frame(screen)[-1].max() > 0


def test_action_thresholds(doom):
    assert doom.env.action_to_buttons(-0.5) == [1, 0]
    assert doom.env.action_to_buttons(0.3) == [0, 0]
    assert doom.env.action_to_buttons(np.array([0.34])) == [0, 1]


def test_random_policy_survives_like_the_papers(doom):
    """Uniformly random action each step: the paper's random policy survives 210 +/- 108."""
    env = doom.env.DoomTakeCoverEnv()
    rng = np.random.default_rng(0)
    lengths = []
    for episode in range(20):
        obs, _ = env.reset(seed=episode)
        assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
        steps, done = 0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(rng.uniform(-1, 1, 1))
            assert reward == 1.0
            steps += 1
            done = terminated or truncated
        lengths.append(steps)
    env.close()
    assert 150 <= np.mean(lengths) <= 300, lengths


def test_episode_is_capped(doom):
    env = doom.env.DoomTakeCoverEnv(max_steps=15)
    env.reset(seed=1)
    results = [env.step(np.zeros(1))[2:4] for _ in range(15)]
    env.close()
    assert results[-1] == (False, True) and not any(t for t, _ in results)


# ---------------------------------------------------------------- the pipeline's scripts

def test_extract_writes_episodes_of_the_random_policy(pipeline, doom):
    d, out = pipeline
    files = sorted(os.listdir(d / 'record'))
    npz = [f for f in files if f.endswith('.npz')]
    assert npz == ['0.npz', '1.npz', '2.npz', '3.npz'] and 'kept 4' in out['extract']
    with np.load(d / 'record' / '0.npz') as e:
        obs, action = e['obs'], e['action']
    assert obs.dtype == np.uint8 and obs.shape[1:] == (64, 64, 3) and 30 <= len(obs) <= 120
    assert action.dtype == np.float16 and action.shape == (len(obs), 1)
    from records import count_frames         # reads the .npy header only
    assert count_frames(str(d / 'record' / '0.npz')) == len(obs)
    assert np.all(np.abs(action) <= 1)
    # A random action is held for 1-10 steps.
    changes = np.flatnonzero(np.diff(action[:, 0]) != 0)
    runs = np.diff(np.concatenate([[-1], changes, [len(action) - 1]]))
    assert runs.max() <= 10 and len(np.unique(action)) > 3


def test_extract_drops_short_episodes_and_resumes(tmp_path):
    out = run_script(['extract.py', '--episodes', '2', '--max_frames', '50', '--min_frames', '1000',
                      '--record_dir', str(tmp_path)], DOOM).stdout
    assert 'kept 0, dropped 2' in out
    run_script(['extract.py', '--episodes', '1', '--max_frames', '40', '--min_frames', '10',
                '--record_dir', str(tmp_path)], DOOM)
    out = run_script(['extract.py', '--episodes', '2', '--max_frames', '40', '--min_frames', '10',
                      '--record_dir', str(tmp_path)], DOOM).stdout
    assert 'kept 1' in out and 'skipped 1 already on disk' in out


def test_series_encodes_every_episode(pipeline):
    d, out = pipeline
    with np.load(d / 'series' / 'series.npz') as s:
        mu, logvar, action, lengths = s['mu'], s['logvar'], s['action'], s['lengths']
    assert mu.dtype == np.float16 and mu.shape == (lengths.sum(), Z) and logvar.shape == mu.shape
    assert action.shape == (lengths.sum(), 1) and len(lengths) == 4
    assert np.isfinite(mu.astype(np.float32)).all()


def test_rnn_train_init_starts_from_the_given_weights(pipeline, tmp_path):
    d, _ = pipeline
    common = ['rnn_train.py', '--series', str(d / 'series' / 'series.npz'), '--initial_z_dir', str(tmp_path / 'z'),
              '--seq_len', '40', '--batch_size', '4', '--steps', '0', '--init', str(d / 'tf_rnn' / 'rnn.json')]
    out = run_script(common + ['--out_dir', str(tmp_path / 'tf_rnn'), '--units', str(UNITS)], DOOM).stdout
    assert 'initialised from' in out
    assert load(tmp_path / 'tf_rnn' / 'rnn.json') == load(d / 'tf_rnn' / 'rnn.json')   # 0 steps: the same M
    bad = run_script(common + ['--out_dir', str(tmp_path / 'other'), '--units', str(UNITS + 1)], DOOM, check=False)
    assert bad.returncode != 0 and 'does not match z %d, --units %d' % (Z, UNITS + 1) in bad.stderr
    assert 'Traceback' not in bad.stderr


def test_rnn_train_scores_heldout_series_as_rnn_eval_does(pipeline, tmp_path):
    """--heldout: every --heldout_every steps and at the end, the figures rnn_eval.py gives for
    the rnn.json of that step, on the step's line and in out_dir/heldout.json, which a resumed
    run extends; a held-out file that is also trained on, or of another z, is refused."""
    d, _ = pipeline
    series = str(d / 'series' / 'series.npz')
    with np.load(series) as s:
        first = int(s['lengths'][0])
        held = tmp_path / 'held.npz'      # the first episode alone: a file of its own
        np.savez(held, mu=s['mu'][:first], logvar=s['logvar'][:first], action=s['action'][:first],
                 lengths=s['lengths'][:1])
    out_dir = tmp_path / 'tf_rnn'
    common = ['rnn_train.py', '--series', series, '--out_dir', str(out_dir), '--initial_z_dir', str(tmp_path / 'z'),
              '--units', str(UNITS), '--seq_len', '40', '--batch_size', '4', '--checkpoint_every', '3',
              '--heldout', str(held), '--heldout_every', '2']
    out = run_script(common + ['--steps', '4'], DOOM).stdout
    assert [e['step'] for e in load(out_dir / 'heldout.json')] == [2, 4]
    assert 'held-out %s: z ' % held in out
    figures = tmp_path / 'eval.json'
    run_script(['rnn_eval.py', '--rnn', str(out_dir / 'rnn.json'), '--series', str(held), '--out', str(figures)], DOOM)
    expected = {k: v for k, v in load(figures).items() if k not in ('rnn', 'series')}
    assert load(out_dir / 'heldout.json')[-1][str(held)] == expected
    step4 = load(out_dir / 'heldout.json')[1]
    run_script(common + ['--steps', '6', '--resume'], DOOM)
    log = load(out_dir / 'heldout.json')
    assert [e['step'] for e in log] == [2, 4, 6] and log[1] == step4
    assert log[2][str(held)] != step4[str(held)]          # M moved on
    proc = run_script(common[:-4] + ['--heldout', series, '--steps', '1', '--out_dir', str(tmp_path / 'o')],
                      DOOM, check=False)
    assert proc.returncode != 0 and 'is also in --series' in proc.stderr and 'Traceback' not in proc.stderr
    other = tmp_path / 'other_z.npz'
    with np.load(held) as s:
        np.savez(other, mu=s['mu'][:, :-1], logvar=s['logvar'][:, :-1], action=s['action'], lengths=s['lengths'])
    proc = run_script(common[:-4] + ['--heldout', str(other), '--steps', '1', '--out_dir', str(tmp_path / 'o')],
                      DOOM, check=False)
    assert proc.returncode != 0 and "series of different V's" in proc.stderr and 'Traceback' not in proc.stderr
    assert not (tmp_path / 'o').exists()


def test_iterative_training_extracts_with_the_agent_and_trains_on_both_series(pipeline, doom, tmp_path):
    d, _ = pipeline
    params = tmp_path / 'c.json'
    params.write_text(json.dumps([[0.0] * Z + [0.0] * (2 * UNITS)]))     # C = 0: action 0 every step
    out = run_script(['extract.py', '--params', str(params), '--noise', '0', '--models', str(d / 'tf_models'),
                      '--episodes', '2', '--seed', '7', '--max_frames', '50', '--min_frames', '10',
                      '--record_dir', str(tmp_path / 'record')], DOOM).stdout
    assert 'kept 2' in out
    with np.load(tmp_path / 'record' / '7.npz') as e:
        assert e['obs'].shape == (50, 64, 64, 3) and np.all(e['action'] == 0)   # the agent's actions, not random
    run_script(['series.py', '--record_dir', str(tmp_path / 'record'), '--vae', str(d / 'tf_vae' / 'vae.json'),
                '--out', str(tmp_path / 'iter.npz')], DOOM)
    out = run_script(['rnn_train.py', '--series', str(d / 'series' / 'series.npz'), str(tmp_path / 'iter.npz'),
                      '--out_dir', str(tmp_path / 'tf_rnn'), '--initial_z_dir', str(tmp_path / 'z'),
                      '--units', str(UNITS), '--seq_len', '40', '--batch_size', '4', '--steps', '2'], DOOM).stdout
    assert 'step 2 ' in out
    mu, _ = doom.runtime.load_initial_z(str(tmp_path / "z" / "initial_z.json"))
    assert len(mu) == 4 + 2                       # episode starts of both files


def test_train_in_the_dream_and_replay(pipeline):
    d, _ = pipeline
    models, log = str(d / 'tf_models'), str(d / 'log')
    out = run_script(['train.py', '--models', models, '-n', '2', '-t', '2', '-e', '2', '--max_gen', '2',
                      '--eval_steps', '1', '--log_dir', log], DOOM).stdout
    assert 'gen 2 ' in out
    prefix = os.path.join(log, 'doomrnn.cma.2.4')
    for suffix in ('.json', '.hist.json', '.best.json', '.hist_best.json', '.log.json'):
        assert os.path.exists(prefix + suffix), suffix
    params, reward = load(prefix + '.best.json')
    assert len(params) == Z + 2 * UNITS
    for world in ('doomrnn', 'doomreal'):
        out = run_script(['model.py', world, 'norender', prefix + '.best.json', '0', '--episodes', '2',
                          '--models', models], DOOM).stdout
        scores = [int(line.split()[-1]) for line in out.splitlines() if line.startswith('episode')]
        assert len(scores) == 2 and all(1 <= s <= 2100 for s in scores)
        assert out.splitlines()[-1] == 'average_reward %.2f stdev %.2f' % (np.mean(scores), np.std(scores))
        again = run_script(['model.py', world, 'norender', prefix + '.best.json', '0', '--episodes', '2',
                            '--models', models, '--jobs', '2'], DOOM).stdout
        assert again == out                  # same seed, same scores, also two at a time in two processes
    for world in ('doomrnn', 'doomreal'):
        out = run_script(['model.py', world, 'render', prefix + '.best.json', '--models', models,
                          '--max_steps', '20'], DOOM).stdout
        assert 'episode 0 score' in out


def test_train_shares_each_solutions_episodes_among_several_ms(doom, pipeline, tmp_path):
    """--models A B: episode j of each solution is dreamed by M number j % 2. Two copies of
    the toy M, one whose done logit is always +1000 (dies at once) and one always -1000
    (never dies), make the split visible in the episode lengths."""
    d, _ = pipeline
    worlds = []
    for name, logit in (('immortal', -1000), ('deadly', 1000)):
        shutil.copytree(d / 'tf_models', tmp_path / name)
        arrays = load(tmp_path / name / 'rnn.json')
        arrays[3][0] = logit * 10000                     # output bias 0 is the done logit (stored x SCALE)
        with open(tmp_path / name / 'rnn.json', 'w') as f:
            json.dump(arrays, f)
        worlds.append(str(tmp_path / name))
    evaluate = doom.train.make_evaluator(worlds, 1.25)()
    params = np.zeros((3, Z + 2 * UNITS))
    rewards, steps = evaluate(params, np.arange(12).reshape(3, 4), True, 30)
    assert steps.shape == (3, 4)
    assert (steps[:, 0::2] == 30).all() and (steps[:, 1::2] == 1).all()
    assert (rewards == steps).all()
    out = run_script(['train.py', '--models'] + worlds + ['-n', '2', '-t', '2', '-e', '2', '--max_gen', '1',
                      '--eval_steps', '1', '--log_dir', str(tmp_path / 'log')], DOOM).stdout
    assert 'gen 1 ' in out
    assert load(tmp_path / 'log' / 'doomrnn.cma.2.4.args.json')['models'] == worlds


def test_train_resume_continues_the_same_run(pipeline, tmp_path):
    """1 generation, then --resume to 2, equals a straight 2-generation run (same ES state, same dreams)."""
    d, _ = pipeline
    base = ['train.py', '--models', str(d / 'tf_models'), '-n', '2', '-t', '2', '-e', '2', '--eval_steps', '1']
    run_script(base + ['--max_gen', '2', '--log_dir', str(tmp_path / 'straight')], DOOM)
    run_script(base + ['--max_gen', '1', '--log_dir', str(tmp_path / 'split')], DOOM)
    out = run_script(base + ['--max_gen', '2', '--resume', '--log_dir', str(tmp_path / 'split')], DOOM).stdout
    assert 'resumed' in out
    rows = [load(tmp_path / run / 'doomrnn.cma.2.4.hist.json') for run in ('straight', 'split')]
    assert [r[:1] + r[2:] for r in rows[0]] == [r[:1] + r[2:] for r in rows[1]]
    assert load(tmp_path / 'straight' / 'doomrnn.cma.2.4.json') == load(tmp_path / 'split' / 'doomrnn.cma.2.4.json')


def test_world_files_under_other_names_replace_those_of_models(pipeline, tmp_path):
    """--vae, --rnn and --initial_z (a world model kept as *_run1.json beside the shipped one)
    replace the files of --models: here a folder whose M dies at once and which has no V, while
    the M of the flags never dies, so a flag that was not read shows in the scores or as a
    missing file."""
    d, _ = pipeline
    models = d / 'tf_models'
    kept, other = tmp_path / 'kept', tmp_path / 'other'
    kept.mkdir()
    shutil.copytree(models, other)
    os.remove(other / 'vae.json')
    for folder, name, logit in ((kept, 'rnn_run1.json', -1000), (other, 'rnn.json', 1000)):
        arrays = load(models / 'rnn.json')
        arrays[3][0] = logit * 10000                     # output bias 0 is the done logit (stored x SCALE)
        with open(folder / name, 'w') as f:
            json.dump(arrays, f)
    for name in ('vae', 'initial_z'):
        shutil.copy(models / (name + '.json'), kept / (name + '_run1.json'))
    params = tmp_path / 'c.json'
    params.write_text(json.dumps([np.random.default_rng(0).normal(0, 0.1, Z + 2 * UNITS).tolist()]))
    files = ['--vae', str(kept / 'vae_run1.json'), '--rnn', str(kept / 'rnn_run1.json'),
             '--initial_z', str(kept / 'initial_z_run1.json')]
    dream = ['model.py', 'doomrnn', 'norender', str(params), '0', '--episodes', '2', '--max_steps', '60']
    assert run_script(dream + ['--models', str(other)], DOOM).stdout.splitlines()[-1] == 'average_reward 1.00 stdev 0.00'
    assert run_script(dream + ['--models', str(other)] + files, DOOM).stdout.splitlines()[-1] == \
        'average_reward 60.00 stdev 0.00'
    # the game does not read M's done logit: the same episodes as the folder the files came from
    game = ['model.py', 'doomreal', 'norender', str(params), '0', '--episodes', '2', '--max_steps', '30']
    assert run_script(game + ['--models', str(other)] + files, DOOM).stdout == \
        run_script(game + ['--models', str(models)], DOOM).stdout
    out = run_script(['extract.py', '--params', str(params), '--models', str(other), '--episodes', '1', '--max_frames',
                      '20', '--min_frames', '1', '--record_dir', str(tmp_path / 'record')] + files[:4], DOOM).stdout
    assert 'kept 1' in out
    out = run_script(['train.py', '--models', str(other)] + files[2:] + ['-n', '1', '-t', '2', '-e', '2', '--max_gen',
                     '1', '--eval_steps', '1', '--log_dir', str(tmp_path / 'log')], DOOM).stdout
    line = next(line for line in out.splitlines() if line.startswith('gen 1 '))
    assert float(line.split('  min ')[1].split()[0]) == 2100   # every dream in the M that never dies
    both = run_script(['train.py', '--models', str(models), str(other), '--rnn', str(kept / 'rnn_run1.json'),
                       '-n', '1'], DOOM, check=False)
    assert both.returncode != 0 and 'not of 2' in both.stderr and 'Traceback' not in both.stderr


def test_keyboard_play_in_the_dream_and_the_game(pipeline):
    """Post arrow-key events into the pygame loops (dummy video driver)."""
    d, _ = pipeline
    code = '''
import pygame, doomrnn, env
def keys(step):
    if step == 0:
        return [pygame.event.Event(pygame.KEYDOWN, key=pygame.K_LEFT)]
    if step == 10:
        return [pygame.event.Event(pygame.KEYUP, key=pygame.K_LEFT), pygame.event.Event(pygame.KEYDOWN, key=pygame.K_RIGHT)]
    if step == 25:
        return [pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE)]
    return []
steps, actions = doomrnn.play(%r, fps=1000, max_steps=40, events=keys)
print('dream', steps, *actions)
steps, actions = env.play(max_steps=40, fps=1000, events=keys)
print('real', steps, *actions)
''' % str(d / 'tf_models')
    out = subprocess.run([sys.executable, '-c', code], cwd=DOOM, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    runs = {line.split()[0]: line.split()[1:] for line in out.stdout.splitlines() if line.split()[0] in ('dream', 'real')}
    steps, actions = int(runs['real'][0]), [float(a) for a in runs['real'][1:]]
    assert steps == 26 and actions == [-1.0] * 10 + [1.0] * 16        # left held, then right, then Esc
    steps, actions = int(runs['dream'][0]), [float(a) for a in runs['dream'][1:]]
    assert 1 <= steps <= 26 and actions == ([-1.0] * 10 + [1.0] * 16)[:steps]


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize('args,words', [
    (['series.py', '--vae', 'nowhere/vae.json'], 'nowhere/vae.json: no such file (made by vae_train.py'),
    (['rnn_train.py', '--series', 'nowhere/series.npz'], 'no nowhere/series.npz (make it with series.py)'),
    (['vae_train.py', '--record_dir', 'nowhere'], 'no nowhere/*.npz episodes (make them with extract.py'),
    (['train.py', '--models', 'nowhere', '-n', '2'], 'nowhere/rnn.json: no such file (made by rnn_train.py'),
    (['model.py', 'doomrnn', 'norender', 'nowhere.json', '--models', 'nowhere'], 'nowhere/rnn.json: no such file'),
])
def test_missing_inputs_are_one_line(args, words):
    proc = run_script(args, DOOM, check=False)
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr
    assert words in proc.stderr.strip().splitlines()[-1]


def test_mismatched_weights_name_file_and_shape(pipeline, tmp_path):
    d, _ = pipeline
    params = tmp_path / 'short.json'
    params.write_text(json.dumps([[0.1] * 5, 1.0]))
    proc = run_script(['model.py', 'doomrnn', 'norender', str(params), '--models', str(d / 'tf_models')], DOOM,
                      check=False)
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr
    assert '%s: 5 params, expected %d' % (params, Z + 2 * UNITS) in proc.stderr
    bad = tmp_path / 'models'
    shutil.copytree(d / 'tf_models', bad)
    arrays = json.loads((bad / 'rnn.json').read_text())
    arrays[1] = arrays[1][:-1]
    (bad / 'rnn.json').write_text(json.dumps(arrays))
    proc = run_script(['train.py', '--models', str(bad), '-n', '2'], DOOM, check=False)
    assert 'rnn.json: lstm_bias has shape (%d,), expected (%d,)' % (4 * UNITS - 1, 4 * UNITS) in proc.stderr


# ---------------------------------------------------------------- numerics

def test_restart_zeroes_the_lstm_state(doom):
    rt = doom.runtime
    rng = np.random.default_rng(2)
    m = rt.MDNRNN([a.astype(np.float32) for a in (rng.standard_normal((Z + 2 + UNITS, 4 * UNITS)),
                   rng.standard_normal(4 * UNITS), rng.standard_normal((UNITS, 1 + 15 * Z)),
                   rng.standard_normal(1 + 15 * Z))])
    z, a = rng.standard_normal((1, Z)).astype(np.float32), np.zeros((1, 1), np.float32)
    fresh = m.step(z, a, np.ones((1, 1), np.float32), m.initial_state(1))[4]
    used = (rng.standard_normal((1, UNITS)).astype(np.float32),) * 2
    after_restart = m.step(z, a, np.ones((1, 1), np.float32), used)[4]
    np.testing.assert_allclose(after_restart[1], fresh[1])
    assert np.abs(m.step(z, a, np.zeros((1, 1), np.float32), used)[4][1] - fresh[1]).max() > 1e-3


def test_mdn_loss_matches_scipy(doom):
    """The z term of M's loss is the mixture negative log-likelihood, checked with scipy."""
    from keras import ops
    rng = np.random.default_rng(3)
    b, t = 2, 3
    y_pred = rng.standard_normal((b, t, 1 + Z * 15)).astype(np.float32) * 0.5
    z_next = rng.standard_normal((b, t, Z)).astype(np.float32)
    done = np.zeros((b, t, 1), np.float32)
    y_true = np.concatenate([z_next, done, 1 - done], -1)
    loss = float(ops.convert_to_numpy(doom.rnn.make_loss(Z, done_weight=10.0)(y_true, y_pred)))
    p = y_pred[..., 1:].reshape(b, t, Z, 15)
    weights = np.exp(p[..., :5]) / np.exp(p[..., :5]).sum(-1, keepdims=True)
    density = (weights * norm.pdf(z_next[..., None], loc=p[..., 5:10], scale=np.exp(p[..., 10:]))).sum(-1)
    z_nll = -np.log(density).mean()
    logit = y_pred[..., 0]
    bce = np.log1p(np.exp(logit)).mean()              # done = 0 everywhere: -log(1 - sigmoid)
    assert loss == pytest.approx(z_nll + bce, rel=1e-4)


def test_rnn_eval_terms_are_rnn_trains_loss_on_whole_episodes(doom):
    """rnn_eval.py's z and weighted restart terms, on episodes of one length run from their first
    frame, add up to rnn_train.py's Keras loss on the same sequences; its calibration counts
    follow the logits."""
    from keras import ops
    rng = np.random.default_rng(5)
    model = doom.rnn.build_rnn(Z, UNITS)
    m = doom.runtime.MDNRNN(model.export_arrays())
    e, t = 3, 25
    lengths = np.full(e, t)
    mu = rng.standard_normal((e * t, Z)).astype(np.float32)
    logvar = np.full((e * t, Z), -40.0, np.float32)      # z = mu to float32 precision
    action = rng.uniform(-1, 1, (e * t, 1)).astype(np.float32)
    result = doom.rnn_eval.heldout_losses(m, mu, logvar, action, lengths, done_weight=10.0, progress=False)
    z = mu.reshape(e, t, Z)
    restart = np.zeros((e, t, 1), np.float32)
    restart[:, 0] = 1.0
    x = np.concatenate([z, action.reshape(e, t, 1), restart], -1)
    done = np.zeros((e, t, 1), np.float32)
    done[:, -1] = 1.0
    z_next = np.concatenate([z[:, 1:], np.zeros((e, 1, Z), np.float32)], 1)
    y = np.concatenate([z_next, done, 1 - done], -1)
    y_pred = model(x)
    keras_loss = float(ops.convert_to_numpy(doom.rnn.make_loss(Z, done_weight=10.0)(y, y_pred)))
    assert result['loss'] == pytest.approx(keras_loss, abs=2e-4)
    assert result['episodes'] == e and result['frames'] == e * t
    logit = ops.convert_to_numpy(y_pred)[..., 0]
    fire = [np.flatnonzero(row > 0) for row in logit]
    early = np.mean([len(f) > 0 and f[0] < t - 1 - 10 for f in fire])
    never = np.mean([len(f) == 0 for f in fire])
    assert (result['ends_early'], result['ends_never']) == (pytest.approx(early, abs=1e-4), pytest.approx(never, abs=1e-4))
    assert result['ends_early'] + result['ends_near'] + result['ends_never'] == pytest.approx(1.0)


def test_episodes_the_time_limit_stopped_teach_no_death(doom, tmp_path):
    """An episode of --time_limit frames ended alive: rnn_train.py gives its last frame restart
    target 0 (its z target still masked, as it has no successor), and rnn_eval.py scores it so;
    with --time_limit 0 every last frame is a death, as in the 2018 code."""
    from keras import ops
    rng = np.random.default_rng(6)
    lengths = np.array([7, 12, 5])
    n = int(lengths.sum())
    path = tmp_path / 'series.npz'
    mu = rng.standard_normal((n, Z)).astype(np.float32)
    np.savez(path, mu=mu, logvar=np.full((n, Z), -40.0, np.float32),
             action=rng.uniform(-1, 1, (n, 1)).astype(np.float32), lengths=lengths)
    ends = np.cumsum(lengths) - 1
    _, _, _, _, done, last, _ = doom.rnn_train.load_series([str(path)], time_limit=12)
    assert np.flatnonzero(last).tolist() == ends.tolist()
    assert np.flatnonzero(done).tolist() == [ends[0], ends[2]]        # the 12-frame episode hit the limit
    _, _, _, _, done0, _, _ = doom.rnn_train.load_series([str(path)], time_limit=0)
    assert np.array_equal(done0, last)
    x, y = doom.rnn_train.sample_batch(doom.rnn_train.load_series([str(path)], 12), 50, 4, np.random.default_rng(0))
    frame = np.abs(x[..., None, :Z] - mu).sum(-1).argmin(-1)          # which frame each input z is
    assert np.array_equal(y[..., Z], done[frame]) and np.array_equal(y[..., Z + 1], 1 - last[frame])
    assert (frame == ends[1]).any()
    # rnn_eval: the 12-frame episode's last frame counts as alive
    model = doom.rnn.build_rnn(Z, UNITS)
    m = doom.runtime.MDNRNN(model.export_arrays())
    e, t = 3, 20
    ep = np.full(e, t)
    mu = rng.standard_normal((e * t, Z)).astype(np.float32)
    action = rng.uniform(-1, 1, (e * t, 1)).astype(np.float32)
    logvar = np.full((e * t, Z), -40.0, np.float32)
    z = mu.reshape(e, t, Z)
    restart = np.zeros((e, t, 1), np.float32)
    restart[:, 0] = 1.0
    y_pred = model(np.concatenate([z, action.reshape(e, t, 1), restart], -1))
    z_next = np.concatenate([z[:, 1:], np.zeros((e, 1, Z), np.float32)], 1)
    mask = np.ones((e, t, 1), np.float32)
    mask[:, -1] = 0.0
    for limit, done_last in [(t, 0.0), (0, 1.0)]:
        done = (1 - mask) * done_last
        y = np.concatenate([z_next, done, mask], -1)
        keras_loss = float(ops.convert_to_numpy(doom.rnn.make_loss(Z, done_weight=10.0)(y, y_pred)))
        result = doom.rnn_eval.heldout_losses(m, mu, logvar, action, ep, done_weight=10.0, progress=False,
                                              time_limit=limit)
        assert result['loss'] == pytest.approx(keras_loss, abs=2e-4), limit
        assert result['stopped_by_time_limit'] == (e if limit else 0)


def test_rnn_eval_scores_the_pipelines_m(pipeline, tmp_path):
    d, _ = pipeline
    out = tmp_path / 'heldout.json'
    stdout = run_script(['rnn_eval.py', '--rnn', str(d / 'tf_rnn' / 'rnn.json'), '--series',
                         str(d / 'series' / 'series.npz'), '--out', str(out)], DOOM).stdout
    result = load(out)
    assert 'z %.4f' % result['z_nll'] in stdout and result['episodes'] == 4
    assert np.isfinite(result['loss']) and 0 < result['p_restart_other'] < 1
    torn = tmp_path / 'torn.npz'
    torn.write_bytes((d / 'series' / 'series.npz').read_bytes()[:1000])
    bad = run_script(['rnn_eval.py', '--rnn', str(d / 'tf_rnn' / 'rnn.json'), '--series', str(torn)], DOOM, check=False)
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1 and 'torn.npz' in bad.stderr


def test_dream_check_puts_dream_and_game_side_by_side(pipeline, tmp_path):
    """dream_check.py scores the same controllers in the game and in the dream; do-nothing's
    dream episodes are model.py's replay of all-zero params."""
    d, _ = pipeline
    zeros = tmp_path / 'zeros.json'
    models = d / 'tf_models'
    num_params = Z + 2 * UNITS   # C's weights on [z, c, h], no bias
    zeros.write_text(json.dumps([[0.0] * num_params, 0.0]))
    out = tmp_path / 'check.json'
    stdout = run_script(['dream_check.py', '--models', str(models), '--episodes', '2', '--max_steps', '60',
                         '--params', str(zeros), '--temperature', '1.0', '--out', str(out)], DOOM).stdout
    scores = load(out)['scores']
    assert list(scores) == ['nothing', 'linear', str(zeros)]
    assert scores['nothing'] == scores[str(zeros)]          # the same controller, the same episodes
    assert all(1 <= s <= 60 for row in scores.values() for world in row.values() for s in world)
    assert 'nothing | ' in stdout
    replay = run_script(['model.py', 'doomrnn', 'norender', str(zeros), '2000', '--episodes', '2', '--max_steps', '60',
                         '--models', str(models), '--temperature', '1.0'], DOOM).stdout
    assert 'average_reward %.2f' % np.mean(scores['nothing']['dream 1.00']) in replay
    bad = run_script(['dream_check.py', '--models', str(models), '--params', str(tmp_path / 'none.json')], DOOM, check=False)
    assert bad.returncode != 0 and 'none.json is not a file' in bad.stderr.strip().splitlines()[-1]


def test_vae_kl_term(doom):
    from keras import ops
    rng = np.random.default_rng(4)
    x = rng.random((3, 64, 64, 3)).astype(np.float32)
    y = rng.random((3, 64, 64, 3)).astype(np.float32)
    mu = rng.standard_normal((3, Z)).astype(np.float32) * 3
    logvar = rng.standard_normal((3, Z)).astype(np.float32)
    kl = 0.5 * (mu ** 2 + np.exp(logvar) - 1 - logvar).sum(1)       # KL(N(mu, sigma) || N(0, 1))
    r = ((x - y) ** 2).sum((1, 2, 3))
    for kl_min in (0.0, 1e6):                                           # unclipped, then all clipped
        got = float(ops.convert_to_numpy(doom.vae.vae_loss(x, y, mu, logvar, kl_min)))
        assert got == pytest.approx(np.mean(r + np.maximum(kl, kl_min)), rel=1e-5)


def test_mdn_sampling_follows_the_mixture_and_temperature(doom):
    rt = doom.runtime
    rng = np.random.default_rng(5)
    n = 20000
    logmix = np.log(np.tile([0.2, 0.8], (n, 1, 1)))
    mean = np.tile([-3.0, 3.0], (n, 1, 1))
    logstd = np.log(np.tile([0.1, 0.1], (n, 1, 1)))
    z = rt.sample_mdn(logmix, mean, logstd, 1.0, rng)[:, 0]
    assert abs((z > 0).mean() - 0.8) < 0.02
    assert abs(z[z > 0].std() - 0.1) < 0.01
    hot = rt.sample_mdn(logmix, mean, logstd, 4.0, rng)[:, 0]
    assert abs(hot[hot > 0].std() - 0.2) < 0.02                    # std * sqrt(temperature)
    flat = 0.2 ** 0.25 / (0.2 ** 0.25 + 0.8 ** 0.25)                # weights ** (1 / temperature)
    assert abs((hot < 0).mean() - flat) < 0.02


def test_dream_ends_on_the_restart_logit(doom):
    rt, dream = doom.runtime, doom.doomrnn
    rng = np.random.default_rng(6)
    arrays = [rng.standard_normal((Z + 2 + UNITS, 4 * UNITS)).astype(np.float32) * 0.1,
              np.zeros(4 * UNITS, np.float32), np.zeros((UNITS, 1 + 15 * Z), np.float32),
              np.zeros(1 + 15 * Z, np.float32)]
    init = (np.zeros((3, Z), np.float32), np.zeros((3, Z), np.float32))
    weights = rng.standard_normal((4, Z + 2 * UNITS))
    arrays[3][0] = 5.0                                               # M says "dead" at once
    steps = dream.dream_rollouts(rt.MDNRNN(arrays), *init, weights, rng)
    assert list(steps) == [1, 1, 1, 1]
    arrays[3][0] = -5.0                                              # M never ends the episode
    steps = dream.dream_rollouts(rt.MDNRNN(arrays), *init, weights, rng, max_len=30)
    assert list(steps) == [30, 30, 30, 30]


# ---------------------------------------------------------------- the 2018 files

@pytest.mark.skipif(not os.path.isdir(REFERENCE), reason='../shared/reference-2018 not present')
def test_reference_2018_files_load_unchanged(doom):
    rt = doom.runtime
    mu, logvar = rt.load_initial_z(os.path.join(REFERENCE, 'tf_models', 'initial_z.json'))
    assert mu.shape == (1000, 64) and logvar.shape == (1000, 64)
    controller = rt.Controller(64, 512)
    assert controller.num_params == 1088
    params = rt.load_params(os.path.join(REFERENCE, 'log', 'doomrnn.cma.16.64.best.json'), 1088)
    controller.set_params(params)
    action = controller.act(mu[:2], np.zeros((2, 512), np.float32), np.zeros((2, 512), np.float32))
    assert action.shape == (2, 1) and np.all(np.abs(action) <= 1)
    hist = load(os.path.join(REFERENCE, 'log', 'doomrnn.cma.16.64.hist.json'))
    assert all(len(row) == 9 for row in hist)
    hist_best = load(os.path.join(REFERENCE, 'log', 'doomrnn.cma.16.64.hist_best.json'))
    assert all(row[2::2] == ['improvement', 'curr', 'prev', 'best'] for row in hist_best)


# ---------------------------------------------------------------- the shipped agent

# The shipped controller: generation 50's mean, picked on validation seeds (README's replay command).
SHIPPED, SHIPPED_GEN = os.path.join(DOOM, 'log', 'doomrnn.cma.16.64.log.json'), 50


def test_dream_sampling_skips_the_log_softmax_and_keeps_the_draws(doom):
    """MDNRNN.sample (the dream's path) draws what sample_mdn draws from the normalised head,
    with the same generator: the log-softmax changes the weights only by rounding."""
    rnn, _, _ = doom.doomrnn.load_world(os.path.join(DOOM, 'tf_models'))
    h = np.tanh(np.random.default_rng(0).standard_normal((2000, rnn.units))).astype(np.float32)
    z, done = rnn.sample(h, 1.25, np.random.default_rng(1))
    logmix, mean, logstd, want_done = rnn.head(h)
    want = doom.runtime.sample_mdn(logmix, mean, logstd, 1.25, np.random.default_rng(1))
    assert z.shape == want.shape == (2000, rnn.z_size) and z.dtype == np.float32
    assert np.allclose(done, want_done, atol=1e-5)
    assert np.mean(np.isclose(z, want, atol=1e-4)) > 0.999
    assert np.abs(z - z.mean(axis=0)).mean() > 0.1           # draws, not the means


def test_a_workers_batch_dreams_each_solutions_own_episodes(doom):
    """train.py steps all solutions of a job as one batch; GroupedRNG gives each solution the
    draws of its own generator, so its dream episodes are those it would dream alone."""
    rnn, mu, logvar = doom.doomrnn.load_world(os.path.join(DOOM, 'tf_models'))
    rng = np.random.default_rng(0)
    weights = np.repeat(rng.standard_normal((3, 64 + 2 * 512)).astype(np.float32) * 0.05, 4, axis=0)   # 3 solutions x 4

    def generators():
        return [np.random.default_rng(s) for s in (7, 8, 9)]
    together = doom.doomrnn.dream_rollouts(rnn, mu, logvar, weights, doom.doomrnn.GroupedRNG(generators(), [4, 4, 4]),
                                              max_len=150)
    alone = np.concatenate([doom.doomrnn.dream_rollouts(rnn, mu, logvar, weights[4 * s:4 * s + 4], g, max_len=150)
                            for s, g in enumerate(generators())])
    assert np.array_equal(together, alone) and len(set(together.tolist())) > 1
    draws = doom.doomrnn.GroupedRNG(generators(), [2, 0, 3]).standard_normal((5, 4))
    assert np.array_equal(draws[2:], np.random.default_rng(9).standard_normal((3, 4)))


def test_shipped_agent_has_the_paper_sizes_and_dreams(doom):
    models = os.path.join(DOOM, 'tf_models')
    vae = doom.runtime.VAE.load(os.path.join(models, 'vae.json'))
    rnn, init_mu, init_logvar = doom.doomrnn.load_world(models)
    assert (vae.z_size, rnn.z_size, rnn.units, rnn.num_mixture) == (64, 64, 512, 5)
    assert init_mu.shape == init_logvar.shape and init_mu.shape[1] == 64 and len(init_mu) >= 100
    controller = doom.runtime.Controller(64, 512)
    params = doom.runtime.load_params(SHIPPED, controller.num_params, SHIPPED_GEN)
    assert params.shape == (64 + 2 * 512,) and np.isfinite(params).all() and np.abs(params).max() > 0
    controller.set_params(params)

    env = doom.doomrnn.DoomCoverRNNEnv(models)
    obs, _ = env.reset(seed=0)
    for _ in range(100):
        action = controller.act(*np.split(obs[None], [64, 64 + 512], axis=1))
        obs, reward, terminated, truncated, _ = env.step(action[0])
        assert reward == 1.0 and obs.shape == (64 + 2 * 512,)
        if terminated or truncated:
            obs, _ = env.reset()
