"""Encode every episode in record/ with V into series/series.npz (numpy only, no TensorFlow).

    python series.py                  # reads tf_vae/vae.json (from vae_train.py)

series.npz holds the episodes end to end: mu, logvar (N, z) float16, action (N, 1)
float16, and lengths (E,) int64, so episode e is rows sum(lengths[:e]) .. + lengths[e].
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

from estool.argtypes import input_dir, input_file, nonnegative_int, output_file, positive_int
from estool.atomic import exit_on_write_failure, write_atomic
from estool.resume import differences, file_record, read_record, write_record
from records import load_obs
from runtime import ACTION_SIZE, VAE, exit_on_weights_error

RUN_RECORD = 'run.json'   # in OUT.parts/: what decides the encodings, for --resume to compare


def load_parts(parts_dir, files):
    """The parts an interrupted run wrote: -> (mu, logvar, action, lengths, bad) lists and the
    number of files they cover, which must be the first of `files` (else a one-line exit)."""
    got = {'mu': [], 'logvar': [], 'action': [], 'lengths': [], 'bad': []}
    names, sizes = [], []
    for name in sorted(os.listdir(parts_dir)):
        if not (name.startswith('part-') and name.endswith('.npz')):
            continue
        with np.load(os.path.join(parts_dir, name)) as part:
            for key in ('mu', 'logvar', 'action'):
                got[key] += np.split(part[key], np.cumsum(part['lengths'])[:-1]) if len(part['lengths']) else []
            got['lengths'] += part['lengths'].tolist()
            got['bad'] += [os.path.join(os.path.dirname(files[0]), b) for b in part['bad'].tolist()]
            names += part['names'].tolist()
            # parts of an older version hold no sizes: their names are all there is to compare
            sizes += part['sizes'].tolist() if 'sizes' in part.files else [None] * len(part['names'])
    now = [os.path.getsize(f) for f in files[:len(names)]]
    if names != [os.path.basename(f) for f in files[:len(names)]] or \
            any(size is not None and size != n for size, n in zip(sizes, now)):
        sys.exit('series.py: --resume: the episodes in %s are not the first of the record files now; '
                 'delete it and start again without --resume' % parts_dir)
    return got, len(names)


def parts_z_size(parts_dir):
    """z size of the episodes in the parts (None if they hold none)."""
    for name in sorted(os.listdir(parts_dir)):
        if name.startswith('part-') and name.endswith('.npz'):
            with np.load(os.path.join(parts_dir, name)) as part:
                if part['mu'].ndim == 2:
                    return int(part['mu'].shape[1])
    return None


def write_part(parts_dir, index, got, names, sizes, bad, first):
    """Episodes got[...][first:] (file names `names` of `sizes` bytes, the unreadable among them
    `bad`) as one part."""
    arrays = {key: np.concatenate(got[key][first:]) if len(got[key]) > first else np.zeros((0,))
              for key in ('mu', 'logvar', 'action')}
    write_atomic(os.path.join(parts_dir, 'part-%05d.npz' % index), 'wb', lambda f: np.savez(
        f, **arrays, lengths=np.array(got['lengths'][first:], dtype=np.int64), names=np.array(names, dtype=str),
        sizes=np.array(sizes, dtype=np.int64), bad=np.array(bad, dtype=str)))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--record_dir', type=input_dir, default='record', help='episodes from extract.py (default: %(default)s)')
    p.add_argument('--vae', type=input_file, default='tf_vae/vae.json', help='V weights from vae_train.py (default: %(default)s)')
    p.add_argument('--out', type=output_file, default='series/series.npz', help='output file (default: %(default)s)')
    p.add_argument('--max_files', type=nonnegative_int, default=0, help='use only the first N record files; 0 = all (default: %(default)s)')
    p.add_argument('--batch_size', type=positive_int, default=200, help='frames encoded at once (default: %(default)s)')
    p.add_argument('--checkpoint_every', type=positive_int, default=100,
                   help='episodes between parts written to OUT.parts/ (default: %(default)s)')
    p.add_argument('--resume', action='store_true',
                   help='continue from the parts in OUT.parts/ of a stopped run (refused if its record files, '
                        'its --vae file or its --batch_size differ from these)')
    args = p.parse_args()

    vae = exit_on_weights_error(VAE.load, args.vae)
    files = sorted(glob.glob(os.path.join(args.record_dir, '*.npz')),
                   key=lambda f: (len(os.path.basename(f)), os.path.basename(f)))
    if args.max_files:
        files = files[:args.max_files]
    if not files:
        sys.exit('series.py: no %s/*.npz episodes (make them with extract.py or extract.bash)' % args.record_dir)

    parts_dir = args.out + '.parts'
    if os.path.exists(parts_dir) and not os.path.isdir(parts_dir):
        sys.exit('series.py: %s is a file; it is where the parts of --out %s go' % (parts_dir, args.out))
    # Everything that decides the encodings: a resume with another V (or other episodes) would
    # write one series.npz whose first episodes come from one V and the rest from another.
    # (The record files are compared by the parts themselves: names and sizes, in load_parts.)
    run = {'vae': file_record(args.vae), 'batch_size': args.batch_size, 'z size of --vae': vae.z_size}
    if args.resume:
        if not os.path.isdir(parts_dir):
            sys.exit('series.py: --resume: no %s (start once without --resume)' % parts_dir)
        try:
            recorded = read_record(os.path.join(parts_dir, RUN_RECORD))
        except ValueError as e:
            sys.exit('series.py: --resume: %s; delete %s to start over' % (e, parts_dir))
        if recorded is None:
            # parts of an older version, which recorded nothing: their z size at least must match
            z_size = parts_z_size(parts_dir)
            recorded = {} if z_size is None else {'z size of --vae': z_size}
        changes = differences(recorded, run)
        if changes:
            sys.exit('series.py: --resume: %s was encoded with other settings (%s); resume with those, '
                     'or delete %s to start over' % (parts_dir, '; '.join(changes), parts_dir))
        got, start = load_parts(parts_dir, files)
        print('resumed after %d of %d record files' % (start, len(files)), flush=True)
    else:
        if os.path.isdir(parts_dir) and os.listdir(parts_dir):
            sys.exit('series.py: %s holds the episodes of a stopped run: add --resume to continue it, '
                     'or delete it to start over' % parts_dir)
        got, start = {'mu': [], 'logvar': [], 'action': [], 'lengths': [], 'bad': []}, 0
    os.makedirs(parts_dir, exist_ok=True)
    if not args.resume:
        write_record(os.path.join(parts_dir, RUN_RECORD), run)
    part = len([n for n in os.listdir(parts_dir) if n.startswith('part-')])
    first, names, sizes, bad = len(got['lengths']), [], [], []
    for path in tqdm(files[start:], desc='series', unit='episode', disable=None):
        names.append(os.path.basename(path))
        sizes.append(os.path.getsize(path))
        obs = load_obs(path)
        if obs is not None and len(obs) == 0:
            warnings.warn('skipping %s (0 frames)' % path)
            obs = None
        action = None
        if obs is not None:
            try:
                with np.load(path) as data:
                    action = data['action'].reshape(len(obs), ACTION_SIZE)
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
            write_part(parts_dir, part, got, names, sizes, bad, first)
            print('series: %d of %d record files encoded' % (len(got['lengths']) + len(got['bad']), len(files)), flush=True)
            part, first, names, sizes, bad = part + 1, len(got['lengths']), [], [], []
    if not got['lengths']:
        shutil.rmtree(parts_dir)
        sys.exit('series.py: no readable episodes in %s' % args.record_dir)

    os.makedirs(os.path.dirname(args.out) or '.', exist_ok=True)
    write_atomic(args.out, 'wb', lambda f: np.savez_compressed(
        f, mu=np.concatenate(got['mu']), logvar=np.concatenate(got['logvar']), action=np.concatenate(got['action']),
        lengths=np.array(got['lengths'], dtype=np.int64)))
    shutil.rmtree(parts_dir)
    write_atomic(os.path.join(os.path.dirname(args.out) or '.', 'args.json'), 'w',
                 lambda f: json.dump(vars(args), f, indent=1))
    if got['bad']:
        print('skipped %d unreadable record files: %s' % (len(got['bad']), ', '.join(got['bad'][:5])))
    print('series: %d episodes, %d frames, z %d -> %s' % (len(got['lengths']), sum(got['lengths']), vae.z_size, args.out))


if __name__ == '__main__':
    # a full disk: the parts written so far are whole, and --resume goes on after them
    with exit_on_write_failure('series.py', 'once it can be written, rerun with --resume: the episodes encoded '
                                            'so far are kept in the .parts folder of --out'):
        main()
