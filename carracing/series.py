"""Encode every episode in record/ with V into series/series.npz (numpy only, no TensorFlow).

    python series.py                  # reads tf_vae/vae.json (from vae_train.py)

series.npz holds the episodes end to end: mu, logvar (N, z) float16, action (N, 3) float16,
and lengths (E,) int64, so episode e is rows sum(lengths[:e]) .. + lengths[e].
Unreadable record files are skipped with a warning and counted. Every --checkpoint_every
episodes the new ones go to series/series.npz.parts/; after a stop, --resume encodes only the
episodes after those, and the parts are removed once series.npz is written.
"""

import argparse
import glob
import json
import os
import shutil
import sys
import warnings

import numpy as np
from tqdm import tqdm

from estool.argtypes import nonnegative_int, positive_int
from records import load_obs
from runtime import VAE, exit_on_weights_error


def load_parts(parts_dir, files):
    """The parts an interrupted run wrote: -> (mu, logvar, action, lengths, bad) lists and the
    number of files they cover, which must be the first of `files` (else a one-line exit)."""
    got = {'mu': [], 'logvar': [], 'action': [], 'lengths': [], 'bad': []}
    names = []
    for name in sorted(os.listdir(parts_dir)):
        if not (name.startswith('part-') and name.endswith('.npz')):
            continue
        with np.load(os.path.join(parts_dir, name)) as part:
            for key in ('mu', 'logvar', 'action'):
                got[key] += np.split(part[key], np.cumsum(part['lengths'])[:-1]) if len(part['lengths']) else []
            got['lengths'] += part['lengths'].tolist()
            got['bad'] += [os.path.join(os.path.dirname(files[0]), b) for b in part['bad'].tolist()]
            names += part['names'].tolist()
    if names != [os.path.basename(f) for f in files[:len(names)]]:
        sys.exit('series.py: --resume: the episodes in %s are not the first of the record files now; '
                 'delete it and start again without --resume' % parts_dir)
    return got, len(names)


def write_part(parts_dir, index, got, names, bad, first):
    """Episodes got[...][first:] (file names `names`, the unreadable among them `bad`) as one part."""
    tmp = os.path.join(parts_dir, 'part.tmp')
    with open(tmp, 'wb') as f:
        np.savez(f, **{key: np.concatenate(got[key][first:]) if len(got[key]) > first else np.zeros((0,))
                       for key in ('mu', 'logvar', 'action')},
                 lengths=np.array(got['lengths'][first:], dtype=np.int64),
                 names=np.array(names, dtype=str), bad=np.array(bad, dtype=str))
    os.replace(tmp, os.path.join(parts_dir, 'part-%05d.npz' % index))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--record_dir', default='record', help='episodes from extract.py (default: %(default)s)')
    p.add_argument('--vae', default='tf_vae/vae.json', help='V weights from vae_train.py (default: %(default)s)')
    p.add_argument('--out', default='series/series.npz', help='output file (default: %(default)s)')
    p.add_argument('--max_files', type=nonnegative_int, default=0, help='use only the first N record files; 0 = all (default: %(default)s)')
    p.add_argument('--batch_size', type=positive_int, default=200, help='frames encoded at once (default: %(default)s)')
    p.add_argument('--checkpoint_every', type=positive_int, default=100,
                   help='episodes between parts written to OUT.parts/ (default: %(default)s)')
    p.add_argument('--resume', action='store_true', help='continue from the parts in OUT.parts/ of a stopped run')
    args = p.parse_args()

    vae = exit_on_weights_error(VAE.load, args.vae)
    files = sorted(glob.glob(os.path.join(args.record_dir, '*.npz')),
                   key=lambda f: (len(os.path.basename(f)), os.path.basename(f)))
    if args.max_files:
        files = files[:args.max_files]
    if not files:
        sys.exit('series.py: no %s/*.npz episodes (make them with extract.py or extract.bash)' % args.record_dir)

    parts_dir = args.out + '.parts'
    if args.resume:
        if not os.path.isdir(parts_dir):
            sys.exit('series.py: --resume: no %s (start once without --resume)' % parts_dir)
        got, start = load_parts(parts_dir, files)
        print('resumed after %d of %d record files' % (start, len(files)), flush=True)
    else:
        if os.path.isdir(parts_dir) and os.listdir(parts_dir):
            sys.exit('series.py: %s holds the episodes of a stopped run: add --resume to continue it, '
                     'or delete it to start over' % parts_dir)
        got, start = {'mu': [], 'logvar': [], 'action': [], 'lengths': [], 'bad': []}, 0
    os.makedirs(parts_dir, exist_ok=True)
    part = len([n for n in os.listdir(parts_dir) if n.startswith('part-')])
    first, names, bad = len(got['lengths']), [], []
    for path in tqdm(files[start:], desc='series', unit='episode', disable=None):
        names.append(os.path.basename(path))
        obs = load_obs(path)
        action = None
        if obs is not None:
            try:
                with np.load(path) as data:
                    action = data['action'].reshape(len(obs), 3)
                if not np.all(np.isfinite(action)):
                    raise ValueError('non-finite actions')
            except Exception as e:   # missing, corrupt or short 'action': skip it, as vae_train.py does
                warnings.warn('skipping unreadable %s (%s: %s)' % (path, type(e).__name__, e))
                action = None
        if action is None:
            got['bad'].append(path)
            bad.append(os.path.basename(path))
        else:
            parts = [vae.encode_mu_logvar(obs[i:i + args.batch_size]) for i in range(0, len(obs), args.batch_size)]
            got['mu'].append(np.concatenate([m for m, _ in parts]).astype(np.float16))
            got['logvar'].append(np.concatenate([lv for _, lv in parts]).astype(np.float16))
            got['action'].append(action.astype(np.float16))
            got['lengths'].append(len(obs))
        if len(names) == args.checkpoint_every:
            write_part(parts_dir, part, got, names, bad, first)
            print('series: %d of %d record files encoded' % (len(got['lengths']) + len(got['bad']), len(files)), flush=True)
            part, first, names, bad = part + 1, len(got['lengths']), [], []
    if not got['lengths']:
        shutil.rmtree(parts_dir)
        sys.exit('series.py: no readable episodes in %s' % args.record_dir)

    os.makedirs(os.path.dirname(args.out) or '.', exist_ok=True)
    tmp = args.out + '.tmp'
    with open(tmp, 'wb') as f:
        np.savez_compressed(f, mu=np.concatenate(got['mu']), logvar=np.concatenate(got['logvar']),
                            action=np.concatenate(got['action']), lengths=np.array(got['lengths'], dtype=np.int64))
    os.replace(tmp, args.out)
    shutil.rmtree(parts_dir)
    with open(os.path.join(os.path.dirname(args.out) or '.', 'args.json'), 'w') as f:
        json.dump(vars(args), f, indent=1)
    if got['bad']:
        print('skipped %d unreadable record files: %s' % (len(got['bad']), ', '.join(got['bad'][:5])))
    print('series: %d episodes, %d frames, z %d -> %s' % (len(got['lengths']), sum(got['lengths']), vae.z_size, args.out))


if __name__ == '__main__':
    main()
