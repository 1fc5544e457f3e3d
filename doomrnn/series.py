"""Encode every episode in record/ with V into series/series.npz (numpy only, no TensorFlow).

    python series.py                  # reads tf_vae/vae.json (from vae_train.py)

series.npz holds the episodes end to end: mu, logvar (N, z) float16, action (N, 1)
float16, and lengths (E,) int64, so episode e is rows sum(lengths[:e]) .. + lengths[e].
Unreadable record files are skipped with a warning and counted.
"""

import argparse
import glob
import json
import os
import sys
import warnings

import numpy as np
from tqdm import tqdm

from estool.argtypes import nonnegative_int, positive_int
from runtime import VAE, exit_on_weights_error
from vae_train import load_obs


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--record_dir', default='record', help='episodes from extract.py (default: %(default)s)')
    p.add_argument('--vae', default='tf_vae/vae.json', help='V weights from vae_train.py (default: %(default)s)')
    p.add_argument('--out', default='series/series.npz', help='output file (default: %(default)s)')
    p.add_argument('--max_files', type=nonnegative_int, default=0, help='use only the first N record files; 0 = all (default: %(default)s)')
    p.add_argument('--batch_size', type=positive_int, default=200, help='frames encoded at once (default: %(default)s)')
    args = p.parse_args()

    vae = exit_on_weights_error(VAE.load, args.vae)
    files = sorted(glob.glob(os.path.join(args.record_dir, '*.npz')),
                   key=lambda f: (len(os.path.basename(f)), os.path.basename(f)))
    if args.max_files:
        files = files[:args.max_files]
    if not files:
        sys.exit('series.py: no %s/*.npz episodes (make them with extract.py or extract.bash)' % args.record_dir)

    mus, logvars, actions, lengths, bad = [], [], [], [], []
    for path in tqdm(files, desc='series', unit='episode', disable=None):
        obs = load_obs(path)
        if obs is None:
            bad.append(path)
            continue
        try:
            with np.load(path) as data:
                action = data['action'].reshape(len(obs), -1)
            if not np.all(np.isfinite(action)):
                raise ValueError('non-finite actions')
        except Exception as e:   # missing, corrupt or short 'action': skip it, as vae_train.py does
            warnings.warn('skipping unreadable %s (%s: %s)' % (path, type(e).__name__, e))
            bad.append(path)
            continue
        parts = [vae.encode_mu_logvar(obs[i:i + args.batch_size]) for i in range(0, len(obs), args.batch_size)]
        mus.append(np.concatenate([m for m, _ in parts]).astype(np.float16))
        logvars.append(np.concatenate([lv for _, lv in parts]).astype(np.float16))
        actions.append(action.astype(np.float16))
        lengths.append(len(obs))
    if not lengths:
        sys.exit('series.py: no readable episodes in %s' % args.record_dir)

    os.makedirs(os.path.dirname(args.out) or '.', exist_ok=True)
    tmp = args.out + '.tmp'
    with open(tmp, 'wb') as f:
        np.savez_compressed(f, mu=np.concatenate(mus), logvar=np.concatenate(logvars),
                            action=np.concatenate(actions), lengths=np.array(lengths, dtype=np.int64))
    os.replace(tmp, args.out)
    with open(os.path.join(os.path.dirname(args.out) or '.', 'args.json'), 'w') as f:
        json.dump(vars(args), f, indent=1)
    if bad:
        print('skipped %d unreadable record files: %s' % (len(bad), ', '.join(bad[:5])))
    print('series: %d episodes, %d frames, z %d -> %s' % (len(lengths), sum(lengths), vae.z_size, args.out))


if __name__ == '__main__':
    main()
