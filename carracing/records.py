"""Reading extract.py's episodes: record_dir/<seed>.npz with obs (T, 64, 64, 3) uint8, action (T, A).

Shared by vae_train.py, vae_eval.py and series.py.
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
