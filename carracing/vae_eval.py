"""Score V on episodes it was not trained on: reconstruction loss and KL per frame.

    python vae_eval.py --vae vae/vae.json --record_dir record_heldout
    python vae_eval.py --vae tf_vae/vae.json --record_dir record_heldout --out log/vae_heldout.json

Each frame is encoded to (mu, logvar) and decoded from z = mu, so the figure is
deterministic. Reconstruction loss is vae_train.py's: squared error summed over the
64x64x3 image in [0, 1]. KL is KL(q(z|x) || N(0, I)) before vae_train.py's floor.
Means are over frames; the +/- is the standard error over episodes.
"""

import argparse
import json
import os
import sys

import numpy as np
from tqdm import tqdm

from estool.atomic import exit_on_write_failure, write_atomic
from estool.argtypes import input_dir, input_file, nonnegative_int, output_file, positive_int
from records import load_obs, record_files


def frame_losses(vae, obs, batch_size=200):
    """obs (T, 64, 64, 3) uint8 -> r_loss (T,), kl (T,) float64 of the numpy V."""
    r_loss, kl = [], []
    for b in range(0, len(obs), batch_size):
        frames = obs[b:b + batch_size]
        mu, logvar = vae.encode_mu_logvar(frames)
        with np.errstate(over='ignore'):   # exp overflow in the sigmoid gives its limit, 0
            y = vae.decode(mu)
        r_loss.append(np.sum(np.square(frames.astype(np.float32) / 255.0 - y), axis=(1, 2, 3), dtype=np.float64))
        kl.append(-0.5 * np.sum(1.0 + logvar - np.square(mu) - np.exp(logvar), axis=1, dtype=np.float64))
    return np.concatenate(r_loss), np.concatenate(kl)


def heldout_losses(vae, files, batch_size=200, progress=True):
    """-> {'episodes', 'frames', 'r_loss', 'r_loss_se', 'kl', 'kl_se'} over the readable files."""
    per_episode = []
    frames = 0
    for path in tqdm(files, desc='held-out', unit='episode', leave=False, disable=None if progress else True):
        obs = load_obs(path)
        if obs is None or len(obs) == 0:   # unreadable, or an episode of no frames: nothing to score
            continue
        r, k = frame_losses(vae, obs, batch_size)
        per_episode.append((r.sum(), k.sum(), len(r)))
        frames += len(r)
    if not per_episode:
        return None
    r_sum, kl_sum, n = (np.array(c, dtype=np.float64) for c in zip(*per_episode))

    def mean_se(total):
        per = total / n
        se = float(per.std(ddof=1) / np.sqrt(len(per))) if len(per) > 1 else float('nan')
        return round(float(total.sum() / n.sum()), 3), round(se, 3)
    r_mean, r_se = mean_se(r_sum)
    kl_mean, kl_se = mean_se(kl_sum)
    return {'episodes': len(per_episode), 'frames': frames, 'r_loss': r_mean, 'r_loss_se': r_se,
            'kl': kl_mean, 'kl_se': kl_se}


def describe(result):
    return 'r_loss %.2f +/- %.2f  kl %.2f +/- %.2f  (%d frames of %d episodes)' % (
        result['r_loss'], result['r_loss_se'], result['kl'], result['kl_se'], result['frames'], result['episodes'])


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split('\n\n', 1)[1])
    p.add_argument('--vae', type=input_file, default='vae/vae.json', help='V weights from vae_train.py (default: %(default)s)')
    p.add_argument('--record_dir', type=input_dir, default='record_heldout',
                   help='episodes from extract.py that V was not trained on (default: %(default)s)')
    p.add_argument('--max_files', type=nonnegative_int, default=0, help='use only the first N record files; 0 = all (default: %(default)s)')
    p.add_argument('--batch_size', type=positive_int, default=200, help='frames encoded at once (default: %(default)s)')
    p.add_argument('--out', type=output_file, default='', help='also write the figures to this JSON file (default: print only)')
    args = p.parse_args()
    files = record_files('vae_eval.py', args.record_dir, args.max_files)
    from runtime import VAE, exit_on_weights_error
    vae = exit_on_weights_error(VAE.load, args.vae)
    result = heldout_losses(vae, files, args.batch_size)
    if result is None:
        sys.exit('vae_eval.py: none of the %d files in %s is readable' % (len(files), args.record_dir))
    print('%s: %s' % (args.vae, describe(result)))
    if args.out:   # whole or not at all: a kill or a full disk leaves no half JSON
        with exit_on_write_failure('vae_eval.py', 'the figures above are the result'):
            write_atomic(args.out, 'w', lambda f: json.dump(dict(result, vae=args.vae, record_dir=args.record_dir), f, indent=1))


if __name__ == '__main__':
    main()
