"""Faults and bad input, continued: a resume never mixes two runs, and every bad path, file
or flag is one line before any work. The shared checks run on both experiment folders; real
environments and real TensorFlow at toy sizes (the pipelines of conftest.py)."""

import fcntl
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import CAR, DOOM, ROOT, folder_modules, run_script

ESTOOL = os.path.join(ROOT, 'estool')
TRAIN = ['train.py', 'cartpole_swingup', '-n', '2', '-t', '2', '-e', '1']
NAME = 'cartpole_swingup.cma.1.4'
CAR_BEST = os.path.join(CAR, 'log', 'carracing.cma.16.32.best.json')
DOOM_BEST = os.path.join(DOOM, 'log', 'doomrnn.cma.16.64.best.json')


def read(path):
    with open(path) as f:
        return json.load(f)


def one_line_error(proc):
    """The stderr of a refused start: one line, no traceback."""
    err = proc.stderr.strip()
    assert proc.returncode != 0 and 'Traceback' not in err, err[-3000:]
    assert len(err.splitlines()) == 1, err[-3000:]
    return err


def argparse_error(proc, flag):
    """argparse's refusal of one flag: exit 2, its last line names the flag."""
    err = proc.stderr.strip()
    assert proc.returncode == 2 and 'Traceback' not in err, err[-3000:]
    last = err.splitlines()[-1]
    assert 'error: argument %s' % flag in last, last
    return last


def parser_error(proc):
    """A parser.error() refusal: exit 2, one line after the usage -> its text after 'error: '."""
    err = proc.stderr.strip()
    assert proc.returncode == 2 and 'Traceback' not in err, err[-3000:]
    return err.splitlines()[-1].split(': error: ', 1)[1]


@pytest.fixture(params=['carracing', 'doomrnn'])
def pipe(request):
    """One experiment's toy pipeline -> dict(name, dir (the folder), d (its outputs), series args)."""
    if request.param == 'carracing':
        d = request.getfixturevalue('car_pipeline')[0]
        return dict(name='carracing', dir=CAR, d=d, seq_len='20', units='16')
    d = request.getfixturevalue('doom_pipeline')[0]
    return dict(name='doomrnn', dir=DOOM, d=d, seq_len='40', units='16')


def series_args(p, out, record_dir=None, vae=None):
    return ['series.py', '--record_dir', str(record_dir or p['d'] / 'record'),
            '--vae', str(vae or p['d'] / 'tf_vae' / 'vae.json'), '--out', str(out)]


def vae_arrays(runtime, z, seed=0):
    """Random arrays of a vae.json of z, in the folder's layout (carracing lists (name, shape),
    doomrnn (layer, kernel shape, bias shape))."""
    rng = np.random.default_rng(seed)
    shapes = [s for entry in runtime.vae_shapes(z) for s in entry[1:]]
    return [rng.uniform(-0.1, 0.1, shape) for shape in shapes]


def other_vae(p, path, z_change=0):
    """A V of this folder's layout, random, of the pipeline's z (+ z_change) -> path."""
    for m in folder_modules(p['dir'], ['runtime']):
        z = m.runtime.VAE.load(str(p['d'] / 'tf_vae' / 'vae.json')).z_size + z_change
        m.runtime.save_json_weights(str(path), vae_arrays(m.runtime, z, seed=z))
    return path


def stopped_series(p, tmp_path):
    """A series run stopped after its first two episodes' parts -> (out, its parts folder's files)."""
    out = tmp_path / 'series' / 'series.npz'
    (tmp_path / 'series' / 'series.npz.tmp').mkdir(parents=True)    # the final write fails
    run_script(series_args(p, out) + ['--max_files', '2', '--checkpoint_every', '1'], p['dir'], check=False)
    (tmp_path / 'series' / 'series.npz.tmp').rmdir()
    parts = str(out) + '.parts'
    assert [n for n in os.listdir(parts) if n.startswith('part-')] and not out.exists()
    return out, {n: os.path.getsize(os.path.join(parts, n)) for n in os.listdir(parts)}


# ---------------------------------------------------------------- 1: a resume never mixes two runs

def test_series_resume_with_another_v_is_refused(pipe, tmp_path):
    out, parts = stopped_series(pipe, tmp_path)
    for z_change in (0, 1):     # the same z (the series would silently mix) and another z (a crash at the end)
        vae = other_vae(pipe, tmp_path / ('v%d.json' % z_change), z_change)
        err = one_line_error(run_script(series_args(pipe, out, vae=vae) + ['--resume'], pipe['dir'], check=False))
        assert err.startswith('series.py: --resume: %s.parts was encoded with other settings (--vae: %s (sha256'
                              % (out, pipe['d'] / 'tf_vae' / 'vae.json')) and str(vae) in err, err
        assert ('z size of --vae' in err) == bool(z_change), err
    err = one_line_error(run_script(series_args(pipe, out) + ['--resume', '--batch_size', '7'], pipe['dir'],
                                    check=False))
    assert '--batch_size: 200 then, 7 now' in err
    assert not out.exists() and {n: os.path.getsize(os.path.join(str(out) + '.parts', n))
                                 for n in os.listdir(str(out) + '.parts')} == parts
    # the V it began with (moved elsewhere: compared by content) finishes the run
    moved = tmp_path / 'moved_vae.json'
    shutil.copy(pipe['d'] / 'tf_vae' / 'vae.json', moved)
    run_script(series_args(pipe, out, vae=moved) + ['--resume'], pipe['dir'])
    with np.load(out) as resumed, np.load(pipe['d'] / 'series' / 'series.npz') as whole:
        assert all(np.array_equal(resumed[k], whole[k]) for k in ('mu', 'logvar', 'action', 'lengths'))


def test_training_resume_with_other_settings_is_refused_and_one_with_nothing_to_do_writes_nothing(pipe, tmp_path):
    d = pipe['d']
    for stage in ('tf_vae', 'tf_rnn'):
        shutil.copytree(d / stage, tmp_path / stage)
    vae = ['vae_train.py', '--record_dir', str(d / 'record'), '--out_dir', str(tmp_path / 'tf_vae'), '--z_size', '8',
           '--batch_size', '20', '--resume']
    err = one_line_error(run_script(vae + ['--epochs', '9', '--batch_size', '10'], pipe['dir'], check=False))
    assert err == ('vae_train.py: --resume: the checkpoint in %s was made with other settings (--batch_size: 20 then, '
                   '10 now); resume with those, or start again without --resume' % (tmp_path / 'tf_vae'))
    fewer = tmp_path / 'record'
    shutil.copytree(d / 'record', fewer)
    os.remove(sorted(fewer.glob('*.npz'))[-1])
    err = one_line_error(run_script([a if a != str(d / 'record') else str(fewer) for a in vae] + ['--epochs', '9'],
                                    pipe['dir'], check=False))
    assert 'record files: ' in err and ' then, ' in err
    series = str(d / 'series' / 'series.npz')
    rnn = ['rnn_train.py', '--series', series, '--out_dir', str(tmp_path / 'tf_rnn'), '--initial_z_dir',
           str(tmp_path / 'z'), '--units', pipe['units'], '--seq_len', pipe['seq_len'], '--batch_size', '4', '--resume']
    err = one_line_error(run_script(rnn + ['--steps', '50', '--seed', '1', '--learning_rate', '0.01'], pipe['dir'],
                                    check=False))
    assert '--learning_rate: 0.001 then, 0.01 now; --seed: 0 then, 1 now' in err
    other = tmp_path / 'other.npz'
    with np.load(series) as s:
        np.savez(other, **dict(s, mu=s['mu'] + np.float16(0.5)))
    err = one_line_error(run_script([a if a != series else str(other) for a in rnn] + ['--steps', '50'], pipe['dir'],
                                    check=False))
    assert '--series: %s (sha256' % series in err and str(other) in err
    # already at its last step: says so, writes nothing (no rnn.json, args.json or initial_z.json)
    steps = read(tmp_path / 'tf_rnn' / 'ckpt_state.json')['step']
    before = {n: os.path.getmtime(tmp_path / 'tf_rnn' / n) for n in os.listdir(tmp_path / 'tf_rnn')}
    out = run_script(rnn + ['--steps', str(steps)], pipe['dir']).stdout
    assert out.strip() == 'nothing to do: the checkpoint in %s is already at step %d of --steps %d' % (
        tmp_path / 'tf_rnn', steps, steps)
    assert {n: os.path.getmtime(tmp_path / 'tf_rnn' / n) for n in os.listdir(tmp_path / 'tf_rnn')} == before
    assert not os.path.exists(tmp_path / 'z')


def test_train_resume_with_another_world_or_objective_is_refused(pipe, tmp_path):
    d, log = pipe['d'], str(tmp_path / 'log')
    if pipe['name'] == 'carracing':
        base = ['train.py', '--vae', str(d / 'tf_vae' / 'vae.json'), '--rnn', str(d / 'tf_rnn' / 'rnn.json'),
                '--max_steps', '10']
        swapped = tmp_path / 'rnn.json'
        world, flag = ['--rnn', str(swapped)], '--rnn'
        source = d / 'tf_rnn' / 'rnn.json'
    else:
        swapped = tmp_path / 'models'
        shutil.copytree(d / 'tf_models', swapped)
        base = ['train.py', '--models', str(d / 'tf_models')]
        world, flag = ['--models', str(swapped)], '--models'
        source = swapped / 'rnn.json'
    base += ['-n', '1', '-t', '2', '-e', '1', '--eval_steps', '1', '--log_dir', log]
    run_script(base + ['--max_gen', '1'], pipe['dir'])
    arrays = read(source)
    arrays[-1][0] += 1                            # another M of the same shape
    with open(swapped, 'w') if pipe['name'] == 'carracing' else open(source, 'w') as f:
        json.dump(arrays, f)
    prefix = os.path.join(log, '%s.cma.1.2' % pipe['name'])
    before = {n: os.path.getmtime(os.path.join(log, n)) for n in os.listdir(log)}
    err = one_line_error(run_script(base + ['--max_gen', '2', '--resume'] + world, pipe['dir'], check=False))
    assert err.startswith('--resume: the run in %s.* was made with other settings (%s: ' % (prefix, flag)), err
    changed = ['--max_steps', '11'] if pipe['name'] == 'carracing' else ['--temperature', '1.0']
    err = one_line_error(run_script(base + ['--max_gen', '2', '--resume', '--weight_decay', '0'] + changed,
                                    pipe['dir'], check=False))
    assert '--weight_decay: 0.005 then, 0.0 now' in err and changed[0] + ': ' in err
    assert {n: os.path.getmtime(os.path.join(log, n)) for n in os.listdir(log)} == before
    out = run_script(base + ['--max_gen', '2', '--resume', '--eval_steps', '2'], pipe['dir']).stdout
    assert 'gen 2 ' in out                        # a flag that only steers the search may change


def test_estool_train_resume_with_another_seed_or_objective_is_refused(tmp_path):
    log = str(tmp_path)
    run_script(TRAIN + ['--max_gen', '1', '--log_dir', log], ESTOOL)
    before = {n: os.path.getmtime(os.path.join(log, n)) for n in os.listdir(log)}
    err = one_line_error(run_script(TRAIN + ['--max_gen', '2', '--resume', '--log_dir', log, '--seed', '1',
                                             '--antithetic'], ESTOOL, check=False))
    assert err == ('--resume: the run in %s.* was made with other settings (--seed: 0 then, 1 now; --antithetic: '
                   'False then, True now); resume with those, or start another run (--restart or another --log_dir)'
                   % os.path.join(log, NAME)), err
    assert {n: os.path.getmtime(os.path.join(log, n)) for n in os.listdir(log)} == before


def test_extract_rerun_with_another_policy_is_refused(pipe, tmp_path):
    record = str(tmp_path / 'record')
    base = ['extract.py', '--seed', '3', '--record_dir', record, '--max_frames', '8']
    if pipe['name'] == 'doomrnn':
        base += ['--min_frames', '1']
    run_script(base + ['--episodes', '1'], pipe['dir'])
    changed = ['--min_frames', '5'] if pipe['name'] == 'doomrnn' else ['--params', CAR_BEST]
    err = one_line_error(run_script(base + ['--episodes', '2'] + changed, pipe['dir'], check=False))
    assert err.startswith('extract.py: %s already holds episodes of seeds 3-3 made with other settings (%s: '
                          % (record, changed[0])), err
    assert sorted(os.listdir(record)) == ['3.npz', 'extract_args.3.json']
    run_script(base + ['--episodes', '1', '--seed', '5'] + changed, pipe['dir'])    # other seeds: fine
    out = run_script(base + ['--episodes', '2'], pipe['dir']).stdout              # the same policy resumes
    assert 'skipped 1 already on disk' in out and os.path.exists(os.path.join(record, '4.npz'))
    # and seeds 3-5 now mix two policies: a run over all of them is refused, naming seed 5's
    err = one_line_error(run_script(base + ['--episodes', '3'], pipe['dir'], check=False))
    assert 'seeds 5-5 made with other settings (%s: ' % changed[0] in err, err


# ---------------------------------------------------------------- 2: bad records and series files

def test_series_skips_and_counts_a_record_of_no_frames(pipe, tmp_path):
    record = tmp_path / 'record'
    shutil.copytree(pipe['d'] / 'record', record)
    with np.load(record / '0.npz') as e:
        np.savez_compressed(record / '9.npz', obs=e['obs'][:0], action=e['action'][:0])
    out = run_script(series_args(pipe, tmp_path / 'series.npz', record_dir=record), pipe['dir']).stdout
    assert 'skipped 1 unreadable record files: %s' % (record / '9.npz') in out
    with np.load(tmp_path / 'series.npz') as s, np.load(pipe['d'] / 'series' / 'series.npz') as whole:
        assert np.array_equal(s['lengths'], whole['lengths'])


def bad_series(kind, good, path, other_width):
    """Write a series.npz that rnn_train.py cannot use -> the words its refusal must hold."""
    data = good.read_bytes()
    with np.load(good) as g:
        s = dict(g)
    if kind == 'truncated':
        path.write_bytes(data[:len(data) // 2])
        return 'is not a series.py file'
    if kind == 'empty':
        path.write_bytes(b'')
        return 'is not a series.py file'
    if kind == 'no lengths':
        np.savez(path, **{k: v for k, v in s.items() if k != 'lengths'})
        return 'no lengths in it'
    if kind == 'lengths overrun':
        np.savez(path, **dict(s, lengths=s['lengths'] + 7))
        return 'lengths add up to %d frames but mu holds %d' % (s['lengths'].sum() + 7 * len(s['lengths']), len(s['mu']))
    if kind == 'other action width':
        np.savez(path, **dict(s, action=np.zeros((len(s['mu']), other_width), np.float16)))
        return 'action has shape (%d, %d)' % (len(s['mu']), other_width)
    mu = s['mu'].copy()
    mu[3, 1] = np.nan
    np.savez(path, **dict(s, mu=mu))
    return 'mu holds nan or inf'


@pytest.mark.parametrize('kind', ['truncated', 'empty', 'no lengths', 'lengths overrun', 'other action width', 'nan'])
def test_rnn_train_refuses_a_bad_series_in_one_line_before_writing(pipe, tmp_path, kind):
    path = tmp_path / 'series.npz'
    words = bad_series(kind, pipe['d'] / 'series' / 'series.npz', path, 1 if pipe['name'] == 'carracing' else 3)
    args = ['rnn_train.py', '--series', str(path), '--out_dir', str(tmp_path / 'r'), '--initial_z_dir',
            str(tmp_path / 'z'), '--units', '8', '--seq_len', pipe['seq_len'], '--batch_size', '4', '--steps', '2']
    err = one_line_error(run_script(args, pipe['dir'], check=False))
    assert err.startswith('rnn_train.py: %s' % path) and words in err, err
    assert sorted(os.listdir(tmp_path)) == ['series.npz']


# ---------------------------------------------------------------- 3: bad logs on --resume from the logs

def test_bad_logs_on_resume_from_logs_are_one_line_naming_the_file(tmp_path):
    run_script(TRAIN + ['--max_gen', '1', '--log_dir', str(tmp_path)], ESTOOL)
    os.remove(tmp_path / (NAME + '.es.pkl'))
    for ext, text in (('.hist.json', '[[1, 0, 1.5'), ('.hist.json', ''), ('.best.json', '[[0.1, 0.2'),
                      ('.best.json', '{"params": 1}')):
        path = tmp_path / (NAME + ext)
        good = path.read_text()
        path.write_text(text)
        err = one_line_error(run_script(TRAIN + ['--max_gen', '2', '--resume', '--log_dir', str(tmp_path)], ESTOOL,
                                        check=False))
        assert err.startswith('--resume: %s is not ' % path), err
        path.write_text(good)
    assert 'gen 2 ' in run_script(TRAIN + ['--max_gen', '2', '--resume', '--log_dir', str(tmp_path)], ESTOOL).stdout


# ---------------------------------------------------------------- 4: a full disk under --log_dir

def fill(folder, spare_pages):
    """Fill the file system of folder with 4 KB files, then free spare_pages of them."""
    os.makedirs(folder)
    n = 0
    while True:
        try:
            with open(os.path.join(folder, str(n)), 'wb') as f:
                f.write(b'x' * 4096)
        except OSError:
            if os.path.exists(os.path.join(folder, str(n))):
                os.remove(os.path.join(folder, str(n)))
            break
        n += 1
    for i in range(n - spare_pages, n):
        os.remove(os.path.join(folder, str(i)))


def test_a_full_disk_ends_the_run_in_one_line_and_keeps_the_logs_whole(tmp_path):
    disk, log = tmp_path / 'disk', tmp_path / 'disk' / 'log'
    disk.mkdir()
    mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', str(disk)],
                             capture_output=True).returncode == 0
    try:
        run_script(TRAIN + ['--max_gen', '2', '--log_dir', str(log)], ESTOOL)
        if mounted:
            fill(str(disk / 'filler'), 10)   # room for the JSON logs of a generation, not for .es.pkl (~100 KB)
        else:
            # no tmpfs here (not root): /dev/full answers every write with ENOSPC
            os.symlink('/dev/full', str(log / (NAME + '.es.pkl.tmp')))
        proc = run_script(TRAIN + ['--max_gen', '4', '--resume', '--log_dir', str(log)], ESTOOL, check=False)
        err = one_line_error(proc)
        assert err.startswith('train.py: the disk is full (No space left on device while writing %s' % (
            log / (NAME + '.es.pkl'))), err
        assert not [n for n in os.listdir(log) if n.endswith('.tmp')]
        for name in os.listdir(log):
            if name.endswith('.json'):
                read(log / name)                  # every log whole
        with open(log / (NAME + '.es.pkl'), 'rb') as f:
            assert pickle.load(f)['gen'] == 2
    finally:
        if mounted:
            subprocess.run(['umount', str(disk)])


def disk_full_at(tmp):
    """Make the temporary file of one write a link to /dev/full, which answers every write
    with ENOSPC: that write finds the disk full (no mount, no root needed) -> tmp."""
    os.symlink('/dev/full', str(tmp))
    return tmp


def refused_for_a_full_disk(args, p, tmp):
    """Run a stage whose write to tmp finds the disk full: one line naming the file (the last:
    TensorFlow logs its start to stderr before), no traceback, and the temporary file gone."""
    proc = run_script(args, p['dir'], check=False)
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    err = proc.stderr.strip().splitlines()[-1]
    assert err.startswith('%s: the disk is full (No space left on device while writing %s); once it can be '
                          'written, ' % (args[0], str(tmp)[:-len('.tmp')])), err
    assert not os.path.lexists(str(tmp))
    return err


def test_a_full_disk_stops_every_stage_in_one_line_and_a_rerun_goes_on(pipe, tmp_path):
    d = pipe['d']
    # extract.py: the episodes before stay; a rerun skips them and writes the rest
    record = tmp_path / 'record'
    record.mkdir()
    extract = ['extract.py', '--seed', '3', '--episodes', '2', '--record_dir', str(record), '--max_frames', '8']
    if pipe['name'] == 'doomrnn':
        extract += ['--min_frames', '1']
    refused_for_a_full_disk(extract, pipe, disk_full_at(record / '4.npz.tmp'))
    assert sorted(n for n in os.listdir(record) if n.endswith('.npz')) == ['3.npz']
    assert 'skipped 1 already on disk' in run_script(extract, pipe['dir']).stdout
    # series.py: the final write; --resume then finishes from the parts
    out = tmp_path / 'series' / 'series.npz'
    out.parent.mkdir()
    series = series_args(pipe, out) + ['--checkpoint_every', '1']
    refused_for_a_full_disk(series, pipe, disk_full_at(str(out) + '.tmp'))
    assert not out.exists() and os.path.isdir(str(out) + '.parts')
    run_script(series + ['--resume'], pipe['dir'])
    with np.load(out) as resumed, np.load(d / 'series' / 'series.npz') as whole:
        assert all(np.array_equal(resumed[k], whole[k]) for k in ('mu', 'logvar', 'action', 'lengths'))
    # vae_train.py: a checkpoint cut off leaves none of its files (ckpt_state.json is written last)
    v = tmp_path / 'v'
    v.mkdir()
    refused_for_a_full_disk(['vae_train.py', '--record_dir', str(d / 'record'), '--out_dir', str(v), '--z_size', '8',
                             '--batch_size', '20', '--epochs', '1', '--max_steps', '1'], pipe,
                            disk_full_at(v / 'ckpt_state.json.tmp'))
    assert sorted(os.listdir(v)) == ['args.json']
    # rnn_train.py: rnn.json after the last checkpoint; --resume writes it, training nothing more
    r = tmp_path / 'r'
    r.mkdir()
    rnn = ['rnn_train.py', '--series', str(d / 'series' / 'series.npz'), '--out_dir', str(r), '--initial_z_dir',
           str(tmp_path / 'z'), '--units', '8', '--seq_len', pipe['seq_len'], '--batch_size', '4', '--steps', '2']
    refused_for_a_full_disk(rnn, pipe, disk_full_at(r / 'rnn.json.tmp'))
    assert read(r / 'ckpt_state.json')['step'] == 2 and not (r / 'rnn.json').exists()
    resumed = run_script(rnn + ['--resume'], pipe['dir']).stdout
    assert 'resumed at step 2' in resumed and 'wrote %s' % (r / 'rnn.json') in resumed and (r / 'rnn.json').exists()


# ---------------------------------------------------------------- 5: a folder where a file is expected (and back)

def test_every_path_argument_is_checked_before_the_work(tmp_path):
    folder = tmp_path / 'folder.json'
    folder.mkdir()
    afile = tmp_path / 'file'
    afile.write_text('x')
    car_d = tmp_path / 'car'
    car_vae = str(ROOT) + '/carracing/vae/vae.json'
    cases = [
        (CAR, ['model.py', 'norender', str(folder)], 'params_file'),
        (CAR, ['dream_model.py', str(folder)], 'params_file'),
        (CAR, ['series.py', '--vae', str(folder)], '--vae'),
        (CAR, ['series.py', '--vae', car_vae, '--out', str(folder)], '--out'),
        (CAR, ['vae_train.py', '--out_dir', str(afile)], '--out_dir'),
        (CAR, ['rnn_train.py', '--initial_z_dir', str(afile / 'z')], '--initial_z_dir'),
        (CAR, ['extract.py', '--record_dir', str(afile)], '--record_dir'),
        (CAR, ['train.py', '--vae', str(folder)], '--vae'),
        (DOOM, ['model.py', 'doomrnn', 'norender', str(folder)], 'params_file'),
        (DOOM, ['doomreal.py', DOOM_BEST, '--models', str(afile)], '--models'),
        (DOOM, ['series.py', '--vae', str(folder)], '--vae'),
        (DOOM, ['rnn_train.py', '--series', str(folder)], '--series'),
        (DOOM, ['vae_eval.py', '--out', str(folder)], '--out'),
        (ESTOOL, ['model.py', 'cartpole_swingup', str(folder), 'norender'], 'params_file'),
        (ESTOOL, ['plot_training_progress.py', 'log/cartpole_swingup.cma.1.16', '-o', str(folder)], '-o/--output'),
    ]
    for cwd, args, flag in cases:
        last = argparse_error(run_script(args, cwd, check=False), flag)
        assert str(tmp_path) in last and ('is a folder, not a file' in last or 'is a file, not a folder' in last), last
    assert sorted(os.listdir(tmp_path)) == ['file', 'folder.json'] and not os.listdir(folder) and not car_d.exists()
    # a folder inside --models where a weights file belongs: the loader's one line
    models = tmp_path / 'models'
    shutil.copytree(os.path.join(DOOM, 'tf_models'), models)
    os.remove(models / 'vae.json')
    (models / 'vae.json').mkdir()
    err = one_line_error(run_script(['model.py', 'doomreal', 'norender', DOOM_BEST, '--models', str(models)], DOOM,
                                    check=False))
    assert err.startswith('%s is a folder, not a weights file' % (models / 'vae.json')), err


# ---------------------------------------------------------------- 6: the same flag gets the same check everywhere

@pytest.mark.parametrize('folder, args, flag', [
    (CAR, ['model.py', 'norender', CAR_BEST, '-5'], 'seed'),
    (DOOM, ['model.py', 'doomreal', 'norender', DOOM_BEST, '-5'], 'seed'),
    (ESTOOL, ['model.py', 'cartpole_swingup', 'x.json', 'norender', '-5'], 'seed'),
    (CAR, ['dream_model.py', CAR_BEST, '--seed', '-1'], '--seed'),
    (DOOM, ['doomreal.py', DOOM_BEST, '--seed', '-1'], '--seed'),
    (CAR, ['extract.py', '--seed', '-1'], '--seed'),
    (DOOM, ['extract.py', '--seed', '-1'], '--seed'),
    (ESTOOL, TRAIN + ['--seed', '-1'], '--seed'),
    (CAR, ['model.py', 'norender', CAR_BEST, '--max_steps', '0'], '--max_steps'),
    (DOOM, ['doomreal.py', DOOM_BEST, '--max_steps', '0'], '--max_steps'),
    (CAR, ['dream_model.py', CAR_BEST, '--steps', '0'], '--steps'),
    (CAR, ['extract.py', '--noise', 'nan'], '--noise'),
    (DOOM, ['extract.py', '--noise', 'nan'], '--noise'),
    (DOOM, ['extract.py', '--min_frames', '-1'], '--min_frames'),
    (CAR, ['model.py', 'render', CAR_BEST, '--scale', '1e6', '--save', 'never.gif'], '--scale'),
    (DOOM, ['model.py', 'doomrnn', 'render', DOOM_BEST, '--scale', '1e6', '--save', 'never.gif'], '--scale'),
    (CAR, ['dream_model.py', CAR_BEST, '--every', '0', '--save', 'never.gif'], '--every'),
])
def test_a_flag_gets_the_same_check_in_every_script(folder, args, flag):
    argparse_error(run_script(args, folder, check=False), flag)
    assert not os.path.exists(os.path.join(folder, 'never.gif'))


# ---------------------------------------------------------------- 7: recordings

def test_a_recording_that_cannot_be_made_is_refused_before_the_episode(tmp_path):
    (tmp_path / 'x.gif').mkdir()
    for folder, args in ((CAR, ['model.py', 'render', CAR_BEST]), (DOOM, ['model.py', 'doomrnn', 'render', DOOM_BEST])):
        last = parser_error(run_script(args + ['--save', str(tmp_path / 'x.gif'), '--overwrite'], folder,
                                       check=False))
        assert last == '%s is a folder, not a file; --save wants a file name' % (tmp_path / 'x.gif')
        env = dict(os.environ, IMAGEIO_FFMPEG_EXE=str(tmp_path / 'nonexistent'))
        proc = subprocess.run([sys.executable] + args + ['--save', str(tmp_path / 'x.mp4')], cwd=folder, env=env,
                              capture_output=True, text=True, timeout=300)
        last = parser_error(proc)
        assert last.startswith('cannot write an MP4: ffmpeg %s (IMAGEIO_FFMPEG_EXE) does not run'
                               % (tmp_path / 'nonexistent')), last
    assert sorted(os.listdir(tmp_path)) == ['x.gif'] and not os.listdir(tmp_path / 'x.gif')


@pytest.mark.parametrize('folder, args', [
    (CAR, ['model.py', 'render', CAR_BEST, '0']),
    (DOOM, ['model.py', 'doomreal', 'render', DOOM_BEST, '0']),
])
@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGHUP])
def test_a_stopped_mp4_recording_leaves_no_file(folder, args, sig, tmp_path):
    # (the signal's default action in the child: a test run under nohup would have it ignored)
    proc = subprocess.Popen([sys.executable] + args + ['--max_steps', '2000', '--save', str(tmp_path / 'r.mp4')],
                            cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(sig, signal.SIG_DFL))
    try:
        deadline = time.time() + 120
        while not os.listdir(tmp_path) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        time.sleep(0.5)                           # ffmpeg is writing the hidden part file
        assert os.listdir(tmp_path) and proc.poll() is None, 'the recording did not start'
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and 'Traceback' not in err, err[-3000:]
    last = err.strip().splitlines()[-1]          # (numpy's warnings may come before it)
    assert last.startswith('interrupted after') and last.endswith('; nothing saved'), err[-3000:]
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- 8: messages that are true

def test_a_v_and_m_of_different_z_are_named_by_their_paths(tmp_path):
    small = tmp_path / 'small'
    for m in folder_modules(DOOM, ['runtime']):
        shutil.copytree(os.path.join(DOOM, 'tf_models'), small)
        m.runtime.save_json_weights(str(small / 'vae.json'), vae_arrays(m.runtime, 4))
    err = one_line_error(run_script(['model.py', 'doomreal', 'norender', DOOM_BEST, '--models', str(small)], DOOM,
                                    check=False))
    assert err.startswith('%s has z size 4 but %s has 64' % (small / 'vae.json', small / 'rnn.json')), err
    for m in folder_modules(CAR, ['runtime']):
        m.runtime.save_json_weights(str(tmp_path / 'v.json'), vae_arrays(m.runtime, 4))
    err = one_line_error(run_script(['model.py', 'norender', CAR_BEST, '--vae', str(tmp_path / 'v.json')], CAR,
                                    check=False))
    assert err.startswith('%s has z size 4 but rnn/rnn.json has 32' % (tmp_path / 'v.json')), err


def test_a_plot_is_written_where_its_line_says(tmp_path):
    """matplotlib adds '.png' to a name without an extension: the line named a file that was not there."""
    out = run_script(['plot_training_progress.py', 'log/cartpole_swingup.cma.1.16', '-o', str(tmp_path / 'plain')],
                     ESTOOL).stdout
    assert out.startswith('wrote %s (' % (tmp_path / 'plain')) and os.listdir(tmp_path) == ['plain']
    assert (tmp_path / 'plain').read_bytes().startswith(b'\x89PNG')
    err = one_line_error(run_script(['plot_training_progress.py', 'log/cartpole_swingup.cma.1.16', '-o',
                                     str(tmp_path / 'p.xyz')], ESTOOL, check=False))
    assert err.startswith('plot_training_progress.py: cannot write %s (' % (tmp_path / 'p.xyz')), err


def test_a_refused_second_run_names_the_lock_holder(tmp_path):
    """The holder of a lock that has not written its name yet (it has just taken the lock, or
    its disk is full) is still named: the kernel knows it."""
    with open(tmp_path / (NAME + '.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        err = one_line_error(run_script(TRAIN + ['--max_gen', '1', '--log_dir', str(tmp_path)], ESTOOL, check=False))
    assert '(pid, host: %d %s)' % (os.getpid(), os.uname().nodename) in err, err


def test_render_without_a_display_or_save_is_refused_before_the_episode(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ('DISPLAY', 'WAYLAND_DISPLAY', 'SDL_VIDEODRIVER')}

    def run(folder, args):
        return subprocess.run([sys.executable] + args, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    gif = ['--save', str(tmp_path / 'r.gif')]
    for folder, args in ((CAR, ['model.py', 'render', CAR_BEST]), (DOOM, ['model.py', 'doomrnn', 'render', DOOM_BEST]),
                         (ESTOOL, ['model.py', 'cartpole_swingup', 'log/cartpole_swingup.cma.1.16.best.json']),
                         (CAR, ['dream_model.py', CAR_BEST]), (DOOM, ['doomreal.py', DOOM_BEST] + gif + ['--show'])):
        proc = run(folder, args)
        err = one_line_error(proc)
        assert err.startswith('cannot open a window: no display') and '--save PATH' in err, err
        assert 'episode' not in proc.stdout
    assert not os.listdir(tmp_path)
    # what opens no window needs no display
    assert 'dreamed 5 steps' in run(CAR, ['dream_model.py', CAR_BEST, '--steps', '5', '--no_window']).stdout
    assert run(CAR, ['model.py', 'render', CAR_BEST, '--max_steps', '3'] + gif).returncode == 0
