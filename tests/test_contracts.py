"""What carracing/ and doomrnn/ promise alike, checked once for both folders.

runtime.py, vae_train.py, vae_eval.py and series.py are copied into each experiment folder (each folder
stands alone); these tests hold the copies to the same contracts, so a fix made in one copy
and not the other fails here: the 2018 weights layout, one-line errors for missing or
malformed weights, numpy V and M equal to Keras through the JSON files, corrupt records
skipped, interrupted training and encoding resumed, and shipped logs that agree with themselves.
"""

import json
import os
import shutil

import numpy as np
import pytest

from conftest import CAR, DOOM, UNITS, Z, folder_modules, run_script

SPEC = {
    'carracing': dict(dir=CAR, pipeline='car_pipeline', modules=['runtime', 'vae.vae', 'rnn.rnn'],
                      episodes=3, vae_steps=4, rnn_steps=6, seq_len=20, action_size=3,
                      log='log/carracing.cma.16.32', best_gen=170),
    'doomrnn': dict(dir=DOOM, pipeline='doom_pipeline', modules=['runtime', 'vae', 'rnn'],
                    episodes=4, vae_steps=6, rnn_steps=10, seq_len=40, action_size=1,
                    log='log/doomrnn.cma.16.64', best_gen=75),
}
FOLDERS = sorted(SPEC)


@pytest.fixture(scope='module', params=FOLDERS)
def folder(request):
    """-> (name, spec, modules namespace, (pipeline folder, stdout of each stage))"""
    name = request.param
    spec = SPEC[name]
    d, out = request.getfixturevalue(spec['pipeline'])[:2]
    for mods in folder_modules(spec['dir'], spec['modules']):
        yield name, spec, mods, (d, out)


def load(path):
    with open(path) as f:
        return json.load(f)


def vae_layout(rt, z):
    """[(name, shape)] of vae.json, whichever way the folder's vae_shapes lists them."""
    layout = []
    for entry in rt.vae_shapes(z):
        if len(entry) == 3:                     # (layer, kernel shape, bias shape)
            layout += [(entry[0] + '.kernel', entry[1]), (entry[0] + '.bias', entry[2])]
        else:
            layout.append(entry)
    return layout


# ---------------------------------------------------------------- the 2018 layout

def test_weights_files_have_the_2018_layout(folder):
    name, spec, m, (d, out) = folder
    rt = m.runtime
    vae = rt.load_json_weights(str(d / 'tf_vae' / 'vae.json'), 'test')
    assert [a.shape for a in vae] == [s for _, s in vae_layout(rt, Z)] and len(vae) == 22
    assert vae[8].shape == (1024, Z) and vae[14].shape == (5, 5, 128, 1024) and vae[20].shape == (6, 6, 3, 32)
    raw = load(d / 'tf_vae' / 'vae.json')
    assert isinstance(raw[0][0][0][0][0], int)           # stored as round(x * 10000)
    rnn = rt.load_json_weights(str(d / 'tf_rnn' / 'rnn.json'), 'test')
    assert [a.shape for a in rnn] == [s for _, s in rt.rnn_shapes(Z, UNITS)]
    assert rt.MDNRNN(rnn).z_size == Z and rt.MDNRNN(rnn).units == UNITS
    mu, logvar = rt.load_initial_z(str(d / 'tf_initial_z' / 'initial_z.json'))
    assert mu.shape == (spec['episodes'], Z) and logvar.shape == mu.shape
    with np.load(d / 'series' / 'series.npz') as s:
        n = int(s['lengths'].sum())
        assert len(s['lengths']) == spec['episodes'] and s['mu'].shape == (n, Z) and s['mu'].dtype == np.float16
        assert s['action'].shape == (n, spec['action_size'])
    assert 'epoch 1 ' in out['vae'] and load(d / 'tf_vae' / 'args.json')['z_size'] == Z
    assert 'step %d ' % spec['rnn_steps'] in out['rnn']


# ---------------------------------------------------------------- one-line errors

def malformed_vae(good):
    """vae.json contents that are wrong in shape or nesting, each of them."""
    flat = [np.asarray(a).ravel().tolist() for a in good]
    return {
        'empty list': [],
        'one array too few': good[:-1],
        'enc_fc_mu flattened': good[:8] + [flat[8]] + good[9:],
        'every array flat': flat,
        'numbers instead of arrays': list(range(22)),
        'z sizes disagree': good[:10] + [np.asarray(good[10])[:, :-1].tolist()] + good[11:],
    }


def malformed_rnn(good):
    flat = [np.asarray(a).ravel().tolist() for a in good]
    return {
        'empty list': [],
        'every array flat': flat,
        'numbers instead of arrays': [1, 2, 3, 4],
        'second array one short': good[:1] + [good[1][:-1]] + good[2:],
    }


def test_malformed_weights_raise_weights_error_naming_the_file(folder, tmp_path):
    name, spec, m, (d, _) = folder
    rt = m.runtime
    for kind, cls, bad in [('vae', rt.VAE, malformed_vae(load(d / 'tf_vae' / 'vae.json'))),
                           ('rnn', rt.MDNRNN, malformed_rnn(load(d / 'tf_rnn' / 'rnn.json')))]:
        for case, content in bad.items():
            path = tmp_path / ('%s.json' % kind)
            path.write_text(json.dumps(content))
            with pytest.raises(rt.WeightsError) as e:
                cls.load(str(path))
            assert str(path) in str(e.value) and '\n' not in str(e.value), (kind, case)


def test_scripts_stop_in_one_line_on_bad_weights(folder, tmp_path):
    name, spec, m, (d, _) = folder
    bad = tmp_path / 'vae.json'
    vae = load(d / 'tf_vae' / 'vae.json')
    bad.write_text(json.dumps(vae[:8] + [np.asarray(vae[8]).ravel().tolist()] + vae[9:]))
    for args, words in [(['series.py', '--vae', str(bad)], str(bad) + ': '),
                        (['series.py', '--vae', str(tmp_path / 'nowhere.json')], 'no such file (made by vae_train.py')]:
        proc = run_script(args + ['--record_dir', str(d / 'record'), '--out', str(tmp_path / 's.npz')],
                          spec['dir'], check=False)
        assert proc.returncode != 0 and 'Traceback' not in proc.stderr, proc.stderr
        assert words in proc.stderr.strip().splitlines()[-1]


# ---------------------------------------------------------------- numpy = Keras

def test_numpy_v_and_m_match_keras_through_the_json_layout(folder, tmp_path):
    from keras import ops
    name, spec, m, _ = folder
    rt = m.runtime
    vae = m.vae.build_vae(Z, seed=1)
    rt.save_json_weights(str(tmp_path / 'vae.json'), vae.export_arrays())
    arrays = rt.load_json_weights(str(tmp_path / 'vae.json'), 'test')
    for a, b in zip(arrays, vae.export_arrays()):
        assert np.abs(a - b).max() <= 0.5 / rt.SCALE + 1e-7     # rounding to 4 decimals only
    vae.import_arrays(arrays)
    frames = np.random.default_rng(0).integers(0, 256, (70, 64, 64, 3)).astype(np.uint8)
    mu, logvar = (ops.convert_to_numpy(t) for t in vae.encode(frames.astype(np.float32) / 255))
    np_mu, np_logvar = rt.VAE(arrays).encode_mu_logvar(frames)
    assert np.abs(mu - np_mu).max() < 1e-4 and np.abs(logvar - np_logvar).max() < 1e-4
    assert np.abs(ops.convert_to_numpy(vae.decode(mu)) - rt.VAE(arrays).decode(np_mu)).max() < 1e-4

    rnn = m.rnn.build_rnn(Z, UNITS)
    rt.save_json_weights(str(tmp_path / 'rnn.json'), rnn.export_arrays())
    arrays = rt.load_json_weights(str(tmp_path / 'rnn.json'), 'test')
    rnn.import_arrays(arrays)
    doom = name == 'doomrnn'
    inputs = spec['action_size'] + (1 if doom else 0)          # action (+ restart flag in Doom)
    x = np.random.default_rng(1).standard_normal((3, 12, Z + inputs)).astype(np.float32)
    if doom:
        x[..., -1] = 0
        x[1, 5, -1] = 1                                          # a restart inside a sequence
    y, h_last, c_last = (ops.convert_to_numpy(t) for t in rnn(x, return_state=True))
    numpy_rnn = rt.MDNRNN(arrays)
    state = numpy_rnn.initial_state(3)
    for t in range(12):
        if doom:
            logmix, mean, logstd, done, state = numpy_rnn.step(x[:, t, :Z], x[:, t, Z:Z + 1], x[:, t, Z + 1:], state)
            assert np.abs(done - y[:, t, 0]).max() < 1e-4
            params = y[:, t, 1:].reshape(3, Z, 15)
        else:
            state = numpy_rnn.step(x[:, t, :Z], x[:, t, Z:], state)
            logmix, mean, logstd = numpy_rnn.mixture(state[1])
            params = y[:, t].reshape(3, Z, 15)
        ref = params[..., :5] - np.log(np.exp(params[..., :5]).sum(-1, keepdims=True))
        assert np.abs(logmix - ref).max() < 1e-4 and np.abs(mean - params[..., 5:10]).max() < 1e-4
        assert np.abs(logstd - params[..., 10:]).max() < 1e-4
    assert np.abs(state[1] - h_last).max() < 1e-4 and np.abs(state[0] - c_last).max() < 1e-4


def test_vae_eval_scores_frames_as_the_keras_v_does(folder, tmp_path):
    """vae_eval.py's reconstruction loss (decoded from z = mu) and KL, per frame, are the
    Keras V's on the same frames through the same vae.json."""
    from keras import ops
    name, spec, m, (d, _) = folder
    vae_json = d / 'tf_vae' / 'vae.json'
    run_script(['vae_eval.py', '--vae', str(vae_json), '--record_dir', str(d / 'record'),
                '--out', str(tmp_path / 'heldout.json')], spec['dir'])
    got = load(tmp_path / 'heldout.json')
    vae = m.vae.build_vae(Z)
    vae.import_arrays(m.runtime.load_json_weights(str(vae_json), 'test'))
    frames = np.concatenate([np.load(f)['obs'] for f in sorted((d / 'record').glob('*.npz'))])
    x = frames.astype(np.float32) / 255
    mu, logvar = (ops.convert_to_numpy(t) for t in vae.encode(x))
    r_loss = ((x - ops.convert_to_numpy(vae.decode(mu))) ** 2).sum(axis=(1, 2, 3))
    kl = -0.5 * (1 + logvar - mu ** 2 - np.exp(logvar)).sum(axis=1)
    assert got['episodes'] == spec['episodes'] and got['frames'] == len(frames)
    assert abs(got['r_loss'] - r_loss.mean()) < 1e-3 * r_loss.mean() + 2e-3
    assert abs(got['kl'] - kl.mean()) < 1e-3 * kl.mean() + 2e-3


# ---------------------------------------------------------------- records and resume

def test_corrupt_records_are_skipped_and_counted(folder, tmp_path):
    name, spec, _, (d, _) = folder
    record = tmp_path / 'record'
    shutil.copytree(d / 'record', record)
    data = (record / '1.npz').read_bytes()
    (record / '1.npz').write_bytes(data[:len(data) // 2])       # a killed write
    (record / '2.npz').write_bytes(b'PK\x03\x04 not really a zip')
    out = run_script(['series.py', '--record_dir', str(record), '--vae', str(d / 'tf_vae' / 'vae.json'),
                      '--out', str(tmp_path / 'series.npz')], spec['dir'])
    assert 'skipped 2 unreadable' in out.stdout and '1.npz' in out.stderr and '2.npz' in out.stderr
    with np.load(tmp_path / 'series.npz') as s:
        assert len(s['lengths']) == spec['episodes'] - 2


def test_a_stopped_series_run_resumes_from_its_parts(folder, tmp_path):
    name, spec, _, (d, _) = folder
    series = tmp_path / 'series' / 'series.npz'
    args = ['series.py', '--record_dir', str(d / 'record'), '--vae', str(d / 'tf_vae' / 'vae.json'), '--out', str(series)]
    # the first two episodes reach their parts, then the final write fails (its temp path is a folder)
    (tmp_path / 'series' / 'series.npz.tmp').mkdir(parents=True)
    stopped = run_script(args + ['--max_files', '2', '--checkpoint_every', '1'], spec['dir'], check=False)
    assert stopped.returncode != 0 and not series.exists() and 'series: 2 of 2 record files encoded' in stopped.stdout
    # the two parts, and run.json: what encoded them, for --resume to compare
    assert sorted(os.listdir(str(series) + '.parts')) == ['part-00000.npz', 'part-00001.npz', 'run.json']
    (tmp_path / 'series' / 'series.npz.tmp').rmdir()
    refused = run_script(args, spec['dir'], check=False)
    assert refused.returncode != 0 and 'add --resume' in refused.stderr.strip().splitlines()[-1]
    other = tmp_path / 'other'
    shutil.copytree(d / 'record', other)
    (other / sorted(os.listdir(other), key=lambda n: (len(n), n))[0]).unlink()
    moved = run_script(['series.py', '--record_dir', str(other)] + args[3:] + ['--resume'], spec['dir'], check=False)
    assert moved.returncode != 0 and 'are not the first of the record files' in moved.stderr.strip().splitlines()[-1]
    out = run_script(args + ['--resume'], spec['dir']).stdout
    assert 'resumed after 2 of %d record files' % spec['episodes'] in out
    assert not os.path.exists(str(series) + '.parts')
    with np.load(series) as resumed, np.load(d / 'series' / 'series.npz') as whole:
        for key in ('mu', 'logvar', 'action', 'lengths'):
            assert np.array_equal(resumed[key], whole[key]), key


def test_vae_and_rnn_training_resume_from_their_checkpoints(folder, tmp_path):
    """V and M go on from the pipeline's checkpoints and write the same bytes as a straight run
    to the same step (oneDNN's kernels on, as tf_cpu.py sets them, keep them deterministic)."""
    name, spec, _, (d, _) = folder
    shutil.copytree(d / 'tf_vae', tmp_path / 'tf_vae')
    assert load(tmp_path / 'tf_vae' / 'ckpt_state.json')['step'] == spec['vae_steps']
    vae = ['vae_train.py', '--record_dir', str(d / 'record'), '--z_size', str(Z), '--batch_size', '20',
           '--epochs', '2', '--max_steps', str(spec['vae_steps'] + 4), '--heldout_dir', str(d / 'record')]
    out = run_script(vae + ['--out_dir', str(tmp_path / 'tf_vae'), '--resume'], spec['dir']).stdout
    assert 'resumed at epoch' in out and load(tmp_path / 'tf_vae' / 'ckpt_state.json')['step'] == spec['vae_steps'] + 4
    run_script(vae + ['--out_dir', str(tmp_path / 'vae_straight')], spec['dir'])
    # (carracing's toy V has 6 steps an epoch: its resume crosses from epoch 1 into epoch 2)
    assert (tmp_path / 'tf_vae' / 'vae.json').read_bytes() == (tmp_path / 'vae_straight' / 'vae.json').read_bytes()
    again = run_script(vae + ['--out_dir', str(tmp_path / 'tf_vae'), '--resume'], spec['dir']).stdout
    assert 'nothing to do' in again and 'wrote' not in again     # it does not claim a write it did not do
    # the epoch line's held-out figures are vae_eval.py's on the vae.json written with it
    held_out = [line.split('held-out ', 1)[1] for line in out.splitlines() if 'held-out ' in line]
    scored = run_script(['vae_eval.py', '--vae', str(tmp_path / 'tf_vae' / 'vae.json'), '--record_dir', str(d / 'record')],
                        spec['dir']).stdout
    assert held_out and scored.strip().endswith(held_out[-1])
    shutil.copytree(d / 'tf_rnn', tmp_path / 'tf_rnn')
    steps = spec['rnn_steps'] + 3
    rnn = ['rnn_train.py', '--series', str(d / 'series' / 'series.npz'), '--units', str(UNITS),
           '--seq_len', str(spec['seq_len']), '--batch_size', '4', '--steps', str(steps)]
    out = run_script(rnn + ['--out_dir', str(tmp_path / 'tf_rnn'), '--initial_z_dir', str(tmp_path / 'z'), '--resume'],
                     spec['dir']).stdout
    assert 'resumed at step %d' % spec['rnn_steps'] in out and 'step %d ' % steps in out
    run_script(rnn + ['--out_dir', str(tmp_path / 'rnn_straight'), '--initial_z_dir', str(tmp_path / 'z_straight')],
               spec['dir'])
    assert (tmp_path / 'tf_rnn' / 'rnn.json').read_bytes() == (tmp_path / 'rnn_straight' / 'rnn.json').read_bytes()


def test_vae_training_starts_from_init_weights(folder, tmp_path):
    """--init loads a vae.json into the model before the first step: with a learning rate too
    small to move a weight, the V written after one step is the one given (random weights
    would differ everywhere). A V of another z, or --init with --resume, stops in one line."""
    name, spec, _, (d, _) = folder
    init = d / 'tf_vae' / 'vae.json'
    args = ['vae_train.py', '--record_dir', str(d / 'record'), '--z_size', str(Z), '--batch_size', '20',
            '--epochs', '1', '--max_steps', '1', '--learning_rate', '1e-12', '--seed', '5']
    out = run_script(args + ['--out_dir', str(tmp_path / 'a'), '--init', str(init)], spec['dir']).stdout
    assert 'started from the weights of %s' % init in out
    assert load(tmp_path / 'a' / 'vae.json') == load(init)
    run_script(args + ['--out_dir', str(tmp_path / 'b')], spec['dir'])
    assert load(tmp_path / 'b' / 'vae.json') != load(init)
    for extra, words in [(['--z_size', str(Z + 1)], 'is a V with z %d, not --z_size %d' % (Z, Z + 1)),
                         (['--resume'], '--init and --resume exclude each other')]:
        proc = run_script(args + ['--out_dir', str(tmp_path / 'c'), '--init', str(init)] + extra, spec['dir'],
                          check=False)
        assert proc.returncode != 0 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
        assert words in proc.stderr.strip().splitlines()[-1]


# ---------------------------------------------------------------- the shipped logs

@pytest.mark.parametrize('name', FOLDERS)
def test_shipped_logs_agree_with_themselves(name):
    """best.json is what train.py wrote: the params and score of the highest evaluation, which
    hist_best.json's running best ends at; any pick made after training is a --gen replay."""
    prefix = os.path.join(SPEC[name]['dir'], SPEC[name]['log'])
    evals = load(prefix + '.log.json')
    hist_best = load(prefix + '.hist_best.json')
    params, reward = load(prefix + '.best.json')
    gen, top, top_params = max(evals, key=lambda row: row[1])
    assert (gen, reward, params) == (SPEC[name]['best_gen'], top, top_params)
    assert [row[0] for row in hist_best] == [row[0] for row in evals]
    assert [row[5] for row in hist_best] == [row[1] for row in evals]
    running = np.maximum.accumulate([row[1] for row in evals])
    assert [row[9] for row in hist_best] == pytest.approx(list(running), abs=1e-4)
    assert [row[7] for row in hist_best[1:]] == pytest.approx(list(running[:-1]), abs=1e-4)
