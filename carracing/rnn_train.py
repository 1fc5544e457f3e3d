"""Train M (the MDN-RNN) on series/series.npz; write tf_rnn/rnn.json and tf_initial_z/initial_z.json.

    python rnn_train.py                       # paper: LSTM 256, 5 mixtures, seq 1000, batch 100, 2000 steps
    python rnn_train.py --steps 200 --units 64 --seq_len 100 --batch_size 16     # scaled down

Each step samples batch_size windows of seq_len frames from within single episodes, with z
drawn afresh from each frame's (mu, logvar): inputs [z_t, a_t] for the first seq_len - 1
frames, targets z_{t+1}. Adam 1e-3 decayed by 0.99999 per step, gradients clipped to
[-1, 1]. Checkpoints every --checkpoint_every steps; --resume continues from the last one.
Copy the outputs to rnn/rnn.json and initial_z/initial_z.json (see README.md).
"""

import argparse
import json
import os
import sys

import numpy as np
from tqdm import tqdm

import tf_cpu  # noqa: F401  (before keras: oneDNN on every x86-64 CPU)
from estool.argtypes import (float_range, input_file, int_at_least, nonnegative_int, output_dir, positive_float,
                             positive_int)
from estool.atomic import exit_on_write_failure, write_atomic
from estool.resume import file_record
from records import read_series
from vae_train import check_resume, load_checkpoint, save_checkpoint, stop_if_diverged


def load_series(path):
    """A series.py file -> (mu, logvar, action) float32 and lengths."""
    mu, logvar, action, lengths = read_series('rnn_train.py', path)
    return mu.astype(np.float32), logvar.astype(np.float32), action.astype(np.float32), lengths.astype(np.int64)


def sample_batch(series, batch_size, seq_len, rng):
    """-> x (B, T, z+3) = [z_t, a_t], y (B, T, z) = z_{t+1}, with T = seq_len - 1."""
    mu, logvar, action, lengths = series
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    usable = np.flatnonzero(lengths >= seq_len)
    episode = rng.choice(usable, size=batch_size)
    offset = rng.integers(0, lengths[episode] - seq_len + 1)
    s = (starts[episode] + offset)[:, None] + np.arange(seq_len)           # (B, seq_len) frame rows
    z = mu[s] + np.exp(logvar[s] / 2.0) * rng.standard_normal(mu[s].shape).astype(np.float32)
    return np.concatenate([z[:, :-1], action[s[:, :-1]]], axis=-1), z[:, 1:]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--series', type=input_file, default='series/series.npz', help='from series.py (default: %(default)s)')
    p.add_argument('--out_dir', type=output_dir, default='tf_rnn', help='rnn.json and checkpoints (default: %(default)s)')
    p.add_argument('--initial_z_dir', type=output_dir, default='tf_initial_z', help='initial_z.json (default: %(default)s)')
    p.add_argument('--units', type=positive_int, default=256, help='LSTM units (default: %(default)s)')
    p.add_argument('--num_mixture', type=positive_int, default=5, help='Gaussians per z dimension (default: %(default)s)')
    p.add_argument('--seq_len', type=int_at_least(2), default=1000, help='frames per training sequence (default: %(default)s)')
    p.add_argument('--batch_size', type=positive_int, default=100, help='sequences per batch (default: %(default)s)')
    p.add_argument('--steps', type=positive_int, default=2000, help='training steps (default: %(default)s)')
    p.add_argument('--learning_rate', type=positive_float, default=1e-3, help='Adam learning rate (default: %(default)s)')
    p.add_argument('--decay_rate', type=float_range(0.0, 1.0, low_open=True), default=0.99999, help='learning-rate decay per step (default: %(default)s)')
    p.add_argument('--grad_clip', type=positive_float, default=1.0, help='clip each gradient value to +/- this (default: %(default)s)')
    p.add_argument('--num_initial_z', type=positive_int, default=1000, help='episode starts kept for the dream (default: %(default)s)')
    p.add_argument('--checkpoint_every', type=positive_int, default=100, help='steps between checkpoints (default: %(default)s)')
    p.add_argument('--seed', type=nonnegative_int, default=0, help='run seed (default: %(default)s)')
    p.add_argument('--resume', action='store_true',
                   help='continue from out_dir/ckpt_* (refused if the series file or a flag that decides the '
                        'weights differs from its run; --steps may grow)')
    args = p.parse_args()

    series = load_series(args.series)
    mu, logvar, _, lengths = series
    if lengths.max() < args.seq_len:
        sys.exit('rnn_train.py: the longest episode in %s has %d frames, fewer than --seq_len %d'
                 % (args.series, lengths.max(), args.seq_len))
    z_size = mu.shape[1]
    # What decides the weights and initial_z.json (--steps only says how far to go).
    run = {'series': file_record(args.series), 'units': args.units, 'num_mixture': args.num_mixture,
           'seq_len': args.seq_len, 'batch_size': args.batch_size, 'learning_rate': args.learning_rate,
           'decay_rate': args.decay_rate, 'grad_clip': args.grad_clip, 'num_initial_z': args.num_initial_z,
           'seed': args.seed}
    if args.resume:
        saved = check_resume('rnn_train.py', args.out_dir, run)
        # (without its rnn.json, lost to a full disk say, the run goes on to write it)
        if saved['step'] >= args.steps and os.path.exists(os.path.join(args.out_dir, 'rnn.json')):
            print('nothing to do: the checkpoint in %s is already at step %d of --steps %d'
                  % (args.out_dir, saved['step'], args.steps))
            return
    os.makedirs(args.out_dir, exist_ok=True)
    os.makedirs(args.initial_z_dir, exist_ok=True)

    import keras
    from rnn.rnn import build_rnn, make_loss
    from runtime import save_json_weights
    keras.utils.set_random_seed(args.seed)
    model = build_rnn(z_size, args.units, args.num_mixture)
    schedule = keras.optimizers.schedules.ExponentialDecay(args.learning_rate, 1, args.decay_rate)
    model.compile(optimizer=keras.optimizers.Adam(schedule, clipvalue=args.grad_clip),
                  loss=make_loss(z_size, args.num_mixture))
    state = {'step': 0, 'run': run}
    if args.resume:
        state = dict(load_checkpoint(model, args.out_dir), run=run)   # an older checkpoint recorded none
        print('resumed at step %d' % state['step'], flush=True)
    write_atomic(os.path.join(args.out_dir, 'args.json'), 'w', lambda f: json.dump(vars(args), f, indent=1))

    # The dream starts from real first frames: keep (mu, logvar) of up to num_initial_z episode starts.
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    pick = np.random.default_rng([args.seed, 1]).permutation(len(starts))[:args.num_initial_z]
    save_json_weights(os.path.join(args.initial_z_dir, 'initial_z.json'), [mu[starts[pick]], logvar[starts[pick]]])

    rnn_json = os.path.join(args.out_dir, 'rnn.json')
    losses = []
    bar = tqdm(range(state['step'], args.steps), initial=state['step'], total=args.steps, desc='rnn', disable=None)
    for step in bar:
        # Each step's batch depends only on (seed, step), so a resumed run sees the same data.
        x, y = sample_batch(series, args.batch_size, args.seq_len, np.random.default_rng([args.seed, 2, step]))
        losses.append(float(model.train_on_batch(x, y)))
        if not np.isfinite(losses[-1]):
            stop_if_diverged('rnn_train.py', model, losses[-1], 'step %d' % (step + 1), args.out_dir)
        bar.set_postfix(loss='%.3f' % losses[-1])
        if (step + 1) % args.checkpoint_every == 0 or step + 1 == args.steps:
            stop_if_diverged('rnn_train.py', model, None, 'step %d' % (step + 1), args.out_dir)
            state['step'] = step + 1
            save_checkpoint(model, args.out_dir, state)
            save_json_weights(rnn_json, model.export_arrays())
            print('step %d  loss %.4f  lr %.6f' % (step + 1, np.mean(losses), float(schedule(step))), flush=True)
            losses = []
    if not os.path.exists(rnn_json):
        save_json_weights(rnn_json, model.export_arrays())
    print('wrote %s and %s' % (rnn_json, os.path.join(args.initial_z_dir, 'initial_z.json')))


if __name__ == '__main__':
    # a full disk: the last checkpoint written is whole, and --resume goes on from it
    with exit_on_write_failure('rnn_train.py', 'once it can be written, rerun with --resume to go on from the '
                                               'last checkpoint (without --resume if it wrote none)'):
        main()
