"""Score M on episodes it was not trained on: the z term and the restart term of its loss apart,
and how well its restart logit knows when an episode ends.

    python rnn_eval.py --rnn tf_models/rnn.json --series series/series_heldout.npz
    python rnn_eval.py --rnn tf_rnn/rnn.json --series series/series_heldout.npz --out log/rnn_heldout.json

Each held-out episode (a series.py file of episodes no M trained on, encoded by the V this M
reads) is run through M from its first frame, as the dream runs it, with z drawn once per frame
from the frame's (mu, logvar) by --seed, so the figures are deterministic. Terms, as
rnn_train.py's loss defines them:
- z: the negative log-likelihood of z_{t+1} under M's mixtures, per z dimension, over the steps
  that have a next frame (rnn_train.py's z term);
- restart: the binary cross-entropy of the restart logit against "frame t is the episode's
  last", unweighted over all steps, and weighted --done_weight times on last frames as in
  rnn_train.py (z + weighted restart = rnn_train.py's loss); the last frame of an episode that
  reached --time_limit is no end (the game stopped it alive), as in rnn_train.py;
- calibration: the dream ends at the first step whose logit is > 0. Of the episodes, the
  fraction M would end more than --near steps before their real end, within --near steps of
  it, and never (for an episode the time limit stopped, never is on time); and the mean
  restart probability on last frames and on the others.
Means are over steps; the +/- is the standard error over episodes.
"""

import argparse
import json
import sys

import numpy as np
from tqdm import tqdm

from env import MAX_STEPS
from estool.atomic import exit_on_write_failure, write_atomic
from estool.argtypes import input_file, nonnegative_float, nonnegative_int, output_file, positive_int
from records import read_series

LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


def episode_terms(rnn, z, action, lengths, ended):
    """M over a batch of B episodes from their first frames, padded to the longest.

    z (B, T, z) and action (B, T, 1) float32 (rows past an episode's length are ignored),
    lengths (B,), ended (B,) bool: its last frame is a death (not the time limit) -> per episode (B,): z NLL summed over dimensions and steps with a next frame,
    restart BCE summed over all steps, BCE of the last frame, the first step whose logit is > 0
    (-1 if none), logit on the last frame, and the sum of restart probabilities over the other
    frames.
    """
    b, t_max, _ = z.shape
    state = rnn.initial_state(b)
    restart = np.zeros((b, 1), np.float32)
    z_nll, bce_sum, bce_last = np.zeros(b), np.zeros(b), np.zeros(b)
    first_fire, last_logit, p_other = np.full(b, -1), np.zeros(b), np.zeros(b)
    for t in range(t_max):
        restart[:] = 1.0 if t == 0 else 0.0
        state = rnn.lstm(z[:, t], action[:, t], restart, state)
        logmix, mean, logstd, logit = rnn.head(state[1])
        logit = logit.astype(np.float64)
        live = t < lengths                              # (B,) the episode has a frame t
        last = t == lengths - 1
        if t + 1 < t_max:
            x = z[:, t + 1, :, None]
            log_normal = -0.5 * np.square((x - mean) / np.exp(logstd)) - logstd - LOG_SQRT_2PI
            nll = -logsumexp(logmix + log_normal, axis=2)[..., 0]          # (B, z)
            z_nll += np.where(live & ~last, nll.sum(axis=1), 0.0)
        done = (last & ended).astype(np.float64)
        bce = np.maximum(logit, 0) - logit * done + np.log1p(np.exp(-np.abs(logit)))
        bce_sum += np.where(live, bce, 0.0)
        bce_last += np.where(last, bce, 0.0)
        other = live & ~last
        first_fire = np.where(live & (first_fire < 0) & (logit > 0), t, first_fire)
        last_logit = np.where(last, logit, last_logit)
        p_other += np.where(other, 1.0 / (1.0 + np.exp(-logit)), 0.0)
    return z_nll, bce_sum, bce_last, first_fire, last_logit, p_other


def logsumexp(x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    return m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


def heldout_losses(rnn, mu, logvar, action, lengths, seed=0, done_weight=10.0, near=10, batch=100, progress=True,
                   time_limit=0):
    """The held-out figures (see the module's docstring) of M over a series' episodes.

    mu, logvar (N, z), action (N, 1), lengths (E,) as series.py writes them -> dict of floats."""
    if mu.shape[1] != rnn.z_size:
        raise ValueError('the series has z %d, M reads z %d (a series of another V?)' % (mu.shape[1], rnn.z_size))
    rng = np.random.default_rng(seed)
    z_all = (mu + np.exp(logvar / 2.0) * rng.standard_normal(mu.shape)).astype(np.float32)
    action = action.astype(np.float32)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    ended = (lengths < time_limit) if time_limit else np.ones(len(lengths), bool)   # by a death
    order = np.argsort(lengths, kind='stable')      # batches of like lengths pad little
    terms = []
    for first in tqdm(range(0, len(order), batch), desc='held-out', unit='batch', leave=False,
                      disable=None if progress else True):
        picked = order[first:first + batch]
        n, t_max = len(picked), int(lengths[picked].max())
        z = np.zeros((n, t_max, rnn.z_size), np.float32)
        a = np.zeros((n, t_max, action.shape[1]), np.float32)
        for row, e in enumerate(picked):
            z[row, :lengths[e]] = z_all[starts[e]:starts[e] + lengths[e]]
            a[row, :lengths[e]] = action[starts[e]:starts[e] + lengths[e]]
        with np.errstate(over='ignore'):   # exp of a very negative logit: its limit, 0
            terms.append((picked,) + episode_terms(rnn, z, a, lengths[picked], ended[picked]))
    picked = np.concatenate([t[0] for t in terms])
    z_nll, bce_sum, bce_last, first_fire, last_logit, p_other = (
        np.concatenate([t[i] for t in terms])[np.argsort(picked)] for i in range(1, 7))
    steps = lengths.astype(np.float64)
    z_steps = (steps - 1) * rnn.z_size

    def mean_se(total, count):
        per = total / np.maximum(count, 1)
        se = float(per.std(ddof=1) / np.sqrt(len(per))) if len(per) > 1 else float('nan')
        return round(float(total.sum() / count.sum()), 4), round(se, 4)
    z_mean, z_se = mean_se(z_nll, z_steps)
    r_mean, r_se = mean_se(bce_sum, steps)
    # rnn_train.py's weighting: last frames count done_weight times
    w_last = np.where(ended, done_weight, 1.0)
    weighted = (bce_sum - bce_last + w_last * bce_last).sum() / (steps.sum() - len(steps) + w_last.sum())
    return {'episodes': len(lengths), 'frames': int(steps.sum()), 'seed': seed,
            'z_nll': z_mean, 'z_nll_se': z_se, 'restart_bce': r_mean, 'restart_bce_se': r_se,
            'restart_bce_weighted': round(float(weighted), 4), 'done_weight': done_weight,
            'time_limit': time_limit, 'stopped_by_time_limit': int((~ended).sum()),
            'loss': round(z_mean + float(weighted), 4),
            'near': near, 'ends_early': round(float(np.mean((first_fire >= 0) & (first_fire < lengths - 1 - near))), 4),
            'ends_near': round(float(np.mean(first_fire >= lengths - 1 - near)), 4),
            'ends_never': round(float(np.mean(first_fire < 0)), 4),
            'p_restart_last': round(float(np.mean(1.0 / (1.0 + np.exp(-last_logit[ended])))) if ended.any() else float('nan'), 4),
            'p_restart_other': round(float(p_other.sum() / (steps - 1).sum()), 6)}


def describe(result):
    return ('z %.4f +/- %.4f  restart %.4f +/- %.4f (weighted %.4f)  loss %.4f  ends: early %.1f%%, within %d steps '
            '%.1f%%, never %.1f%%  p(restart) %.3f on last frames, %.5f on others  (%d frames of %d episodes)' % (
                result['z_nll'], result['z_nll_se'], result['restart_bce'], result['restart_bce_se'],
                result['restart_bce_weighted'], result['loss'], 100 * result['ends_early'], result['near'],
                100 * result['ends_near'], 100 * result['ends_never'], result['p_restart_last'],
                result['p_restart_other'], result['frames'], result['episodes']))


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split('\n\n', 1)[1])
    p.add_argument('--rnn', type=input_file, default='tf_models/rnn.json', help='M weights from rnn_train.py (default: %(default)s)')
    p.add_argument('--series', type=input_file, default='series/series_heldout.npz',
                   help="series.py's z of episodes M was not trained on, by M's own V (default: %(default)s)")
    p.add_argument('--seed', type=nonnegative_int, default=0, help='seed of the z drawn from each (mu, logvar) (default: %(default)s)')
    p.add_argument('--done_weight', type=nonnegative_float, default=10.0,
                   help="rnn_train.py's weight of last frames in the restart term (default: %(default)s)")
    p.add_argument('--time_limit', type=nonnegative_int, default=MAX_STEPS,
                   help="rnn_train.py's --time_limit: an episode this long ended alive, so its last frame is no "
                        "restart target (0: every last frame is one; default: %(default)s)")
    p.add_argument('--near', type=nonnegative_int, default=10,
                   help='steps before the real end within which an end counts as on time (default: %(default)s)')
    p.add_argument('--batch', type=positive_int, default=100, help='episodes run at once (default: %(default)s)')
    p.add_argument('--out', type=output_file, default='', help='also write the figures to this JSON file (default: print only)')
    args = p.parse_args()
    mu, logvar, action, lengths = read_series('rnn_eval.py', args.series)
    from runtime import MDNRNN, exit_on_weights_error
    rnn = exit_on_weights_error(MDNRNN.load, args.rnn)
    try:
        result = heldout_losses(rnn, mu.astype(np.float32), logvar.astype(np.float32), action, lengths.astype(np.int64),
                                args.seed, args.done_weight, args.near, args.batch, time_limit=args.time_limit)
    except ValueError as e:
        sys.exit('rnn_eval.py: %s: %s' % (args.series, e))
    print('%s on %s: %s' % (args.rnn, args.series, describe(result)))
    if args.out:   # whole or not at all: a kill or a full disk leaves no half JSON
        with exit_on_write_failure('rnn_eval.py', 'the figures above are the result'):
            write_atomic(args.out, 'w', lambda f: json.dump(dict(result, rnn=args.rnn, series=args.series), f, indent=1))


if __name__ == '__main__':
    main()
