"""Reading extract.py's episodes (record_dir/<seed>.npz: obs (T, 64, 64, 3) uint8, action (T, A))
and series.py's files of their z (mu, logvar (N, z), action (N, A), lengths (E,)).

Shared by vae_train.py, vae_eval.py, series.py, rnn_train.py and rnn_eval.py.
"""

import glob
import os
import sys
import warnings
import zipfile

import numpy as np


def count_frames(path):
    """Frames in a record file from the .npy header alone (no decompression of the data)."""
    with zipfile.ZipFile(path) as z, z.open('obs.npy') as f:
        major, _ = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape = read_header(f)[0]
    return shape[0]


def record_files(script, record_dir, max_files=0):
    """record_dir/*.npz sorted (the first max_files if > 0); exits in one line if there are none."""
    files = sorted(glob.glob(os.path.join(record_dir, '*.npz')))
    if max_files:
        files = files[:max_files]
    if not files:
        sys.exit('%s: no %s/*.npz episodes (make them with extract.py or extract.bash)' % (script, record_dir))
    return files


def load_obs(path):
    """-> obs (T, 64, 64, 3) uint8, or None (with a warning) if the file is unreadable."""
    try:
        with np.load(path) as data:
            obs = data['obs']
        if obs.ndim != 4 or obs.shape[1:] != (64, 64, 3) or obs.dtype != np.uint8:
            raise ValueError('obs has shape %s %s' % (obs.shape, obs.dtype))
        return obs
    except Exception as e:  # truncated zip, bad CRC, missing key: skip, never stop training
        warnings.warn('skipping unreadable %s (%s)' % (path, e))
        return None


SERIES_KEYS = ('mu', 'logvar', 'action', 'lengths')


def read_series(script, path):
    """One series.py file -> [mu, logvar, action, lengths] as saved. Anything else (a folder, an
    empty or truncated file, missing arrays, lengths that do not add up, nan) is a one-line
    exit naming the file, before anything is written."""
    if not os.path.exists(path):
        sys.exit('%s: no %s (make it with series.py)' % (script, path))
    try:
        with np.load(path) as d:
            missing = [k for k in SERIES_KEYS if k not in d.files]
            if missing:
                raise ValueError('no %s in it' % ', '.join(missing))
            arrays = [d[k] for k in SERIES_KEYS]
    except Exception as e:   # a folder, empty, truncated, not an npz: whatever np.load raises
        sys.exit('%s: %s is not a series.py file (%s: %s)'
                 % (script, path, type(e).__name__, str(e).splitlines()[0] if str(e) else ''))
    problem = series_problem(*arrays)
    if problem:
        sys.exit('%s: %s: %s; make it again with series.py' % (script, path, problem))
    return arrays


def series_problem(mu, logvar, action, lengths):
    """Why these arrays are not a usable series, or None."""
    from runtime import ACTION_SIZE
    if any(a.dtype.kind not in 'fiu' for a in (mu, logvar, action, lengths)):
        return 'arrays of type %s' % ', '.join(str(a.dtype) for a in (mu, logvar, action, lengths))
    if mu.ndim != 2 or mu.shape[1] < 1 or logvar.shape != mu.shape:
        return 'mu %s and logvar %s are not both (frames, z)' % (mu.shape, logvar.shape)
    if action.shape != (len(mu), ACTION_SIZE):
        return 'action has shape %s, expected (%d, %d) (a series of the other experiment?)' % (
            action.shape, len(mu), ACTION_SIZE)
    if lengths.ndim != 1 or len(lengths) == 0 or lengths.dtype.kind not in 'iu' or lengths.min() < 1:
        return 'lengths %s %s are not episode lengths' % (lengths.shape, lengths.dtype)
    if lengths.sum() != len(mu):
        return 'lengths add up to %d frames but mu holds %d' % (lengths.sum(), len(mu))
    for name, a in (('mu', mu), ('logvar', logvar), ('action', action)):
        if not np.all(np.isfinite(a)):
            return '%s holds nan or inf (encoded by a diverged V?)' % name
    return None
