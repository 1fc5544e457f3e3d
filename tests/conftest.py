import importlib
import os
import platform
import shutil
import subprocess
import sys
import types

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# No screen in CI: pygame draws to a dummy driver, matplotlib to files.
os.environ.setdefault('SDL_VIDEODRIVER', 'dummy')
os.environ.setdefault('SDL_AUDIODRIVER', 'dummy')
os.environ.setdefault('MPLBACKEND', 'Agg')
# Tests that build V or M in-process get the kernels the scripts get (tf_cpu.py in each folder).
if platform.machine().lower() in ('x86_64', 'amd64'):
    os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')


def run_script(args, cwd, timeout=300, check=True):
    """Run `python <args>` in cwd like a user would; returns the CompletedProcess."""
    proc = subprocess.run([sys.executable] + list(args), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError('%s exited %d\nstdout:\n%s\nstderr:\n%s' % (
            ' '.join(args), proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:]))
    return proc


def folder_modules(folder, names):
    """Import an experiment folder's scripts in-process, by the names they use for each other
    ('runtime', 'vae.vae', ...), and yield them as a namespace (attribute = last name part).

    Both experiment folders have modules called runtime, env, vae, ...: whatever was loaded
    from elsewhere under those names is dropped first, and this folder's modules after."""
    def drop(inside):
        for name, module in list(sys.modules.items()):
            path = os.path.abspath(getattr(module, '__file__', None) or '')
            if name.split('.')[0] in tops or (inside and path.startswith(folder + os.sep)):
                del sys.modules[name]

    tops = {name.split('.')[0] for name in names}
    saved_path = sys.path[:]
    drop(inside=False)
    sys.path.insert(0, folder)
    try:
        yield types.SimpleNamespace(**{n.split('.')[-1]: importlib.import_module(n) for n in names})
    finally:
        sys.path[:] = saved_path
        drop(inside=True)


@pytest.fixture(scope='session')
def root():
    return ROOT


# ---------------------------------------------------------------- toy pipelines, shared by the test modules

CAR = os.path.join(ROOT, 'carracing')
DOOM = os.path.join(ROOT, 'doomrnn')
Z, UNITS = 8, 16      # toy sizes of V and M in both pipelines
CAR_FRAMES = 40


@pytest.fixture(scope='session')
def car_pipeline(tmp_path_factory):
    """carracing: extract -> vae_train -> series -> rnn_train at toy size, through the scripts.
    -> (folder, {stage: stdout}, {'vae', 'rnn', 'initial_z': path})"""
    d = tmp_path_factory.mktemp('car')
    out = {}
    out['extract'] = run_script(['extract.py', '--episodes', '3', '--seed', '0', '--max_frames', str(CAR_FRAMES),
                                 '--record_dir', str(d / 'record')], CAR).stdout
    out['vae'] = run_script(['vae_train.py', '--record_dir', str(d / 'record'), '--out_dir', str(d / 'tf_vae'),
                             '--z_size', str(Z), '--batch_size', '20', '--epochs', '1', '--max_steps', '4',
                             '--checkpoint_every', '2'], CAR).stdout
    out['series'] = run_script(['series.py', '--record_dir', str(d / 'record'), '--vae', str(d / 'tf_vae' / 'vae.json'),
                                '--out', str(d / 'series' / 'series.npz')], CAR).stdout
    out['rnn'] = run_script(['rnn_train.py', '--series', str(d / 'series' / 'series.npz'), '--out_dir', str(d / 'tf_rnn'),
                             '--initial_z_dir', str(d / 'tf_initial_z'), '--units', str(UNITS), '--seq_len', '20',
                             '--batch_size', '4', '--steps', '6', '--checkpoint_every', '3'], CAR).stdout
    models = {'vae': str(d / 'tf_vae' / 'vae.json'), 'rnn': str(d / 'tf_rnn' / 'rnn.json'),
              'initial_z': str(d / 'tf_initial_z' / 'initial_z.json')}
    return d, out, models


@pytest.fixture(scope='session')
def doom_pipeline(tmp_path_factory):
    """doomrnn: extract -> vae_train -> series -> rnn_train at toy size, through the scripts; the
    three weights files also copied to tf_models/. -> (folder, {stage: stdout})"""
    d = tmp_path_factory.mktemp('doom')
    out = {}
    out['extract'] = run_script(['extract.py', '--episodes', '4', '--seed', '0', '--max_frames', '120',
                                 '--min_frames', '30', '--record_dir', str(d / 'record')], DOOM).stdout
    out['vae'] = run_script(['vae_train.py', '--record_dir', str(d / 'record'), '--out_dir', str(d / 'tf_vae'),
                             '--z_size', str(Z), '--batch_size', '20', '--epochs', '2', '--max_steps', '6',
                             '--checkpoint_every', '3'], DOOM).stdout
    out['series'] = run_script(['series.py', '--record_dir', str(d / 'record'), '--vae', str(d / 'tf_vae' / 'vae.json'),
                                '--out', str(d / 'series' / 'series.npz')], DOOM).stdout
    out['rnn'] = run_script(['rnn_train.py', '--series', str(d / 'series' / 'series.npz'), '--out_dir',
                             str(d / 'tf_rnn'), '--initial_z_dir', str(d / 'tf_initial_z'), '--units', str(UNITS),
                             '--seq_len', '40', '--batch_size', '4', '--steps', '10', '--checkpoint_every', '5'],
                            DOOM).stdout
    models = d / 'tf_models'
    models.mkdir()
    for src in ('tf_vae/vae.json', 'tf_rnn/rnn.json', 'tf_initial_z/initial_z.json'):
        shutil.copy(d / src, models)
    return d, out


# ---------------------------------------------------------------- notebooks

def execute_notebook(path, parameters=None, cwd=None):
    """Run a notebook (in cwd, default its own folder); parameters, if given, replace its
    'parameters' cell, as papermill would."""
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(path, as_version=4)
    if parameters is not None:
        cells = [c for c in nb.cells if 'parameters' in c.metadata.get('tags', [])]
        assert len(cells) == 1
        cells[0].source = parameters
    NotebookClient(nb, timeout=600, kernel_name='python3',
                   resources={'metadata': {'path': cwd or os.path.dirname(path)}}).execute()
    return nb


def outputs_text(nb):
    return '\n'.join(o.get('text', '') for c in nb.cells if c.cell_type == 'code' for o in c.outputs)
