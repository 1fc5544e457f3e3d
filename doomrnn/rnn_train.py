"""Train M (the MDN-RNN) on series/series.npz; write tf_rnn/rnn.json and tf_initial_z/initial_z.json.

    python rnn_train.py                      # paper: LSTM 512, 5 mixtures, seq 500, batch 100
    python rnn_train.py --steps 200 --units 64 --seq_len 100 --batch_size 16     # scaled down

Each step samples batch_size windows of seq_len steps from the episodes laid end to end, with
z drawn afresh from each frame's (mu, logvar). Inputs are [z_t, a_t, restart_t] (restart_t = 1
on an episode's first frame: the LSTM state is zeroed there); targets are z_{t+1} (masked on
an episode's last frame, which has no successor) and done_t = 1 on that last frame, unless
the episode reached --time_limit: the game stopped it alive, so M is not taught a death there.
Adam 1e-3 decayed by 0.99999 per step, gradients clipped to [-1, 1]. Checkpoints every
--checkpoint_every steps; --resume continues from the last one. --init starts from an
existing rnn.json, to fine-tune M on a retrained V's series instead of starting from scratch.
--heldout scores M on series of episodes it does not train on (rnn_eval.py's figures: z term,
restart term, when the dream would end) every --heldout_every steps and at the end, printed on
the step's line and kept in out_dir/heldout.json, to see whether more steps still help.

    python rnn_train.py --series series/series.npz --heldout series/series_heldout.npz
"""

import argparse
import json
import os
import sys

import numpy as np
from tqdm import tqdm

import tf_cpu  # noqa: F401  (before keras: oneDNN on every x86-64 CPU)
from estool.argtypes import (float_range, input_file, int_at_least, nonnegative_float, nonnegative_int, output_dir,
                             positive_float, positive_int)
from estool.atomic import exit_on_write_failure, write_atomic
from estool.resume import file_record
from env import MAX_STEPS
from records import read_series
from vae_train import check_resume, load_checkpoint, save_checkpoint, stop_if_diverged


def load_series(paths, time_limit=0):
    """One or more series.py files, their episodes laid end to end -> mu, logvar (N, z),
    action (N, a), restart (N, 1), done (N,) the restart target, last (N,) 1 on every episode's
    last frame, starts (E,). done is last except on episodes of time_limit frames or more
    (time_limit 0: none), which the time limit ended, not a death."""
    parts = []
    for path in paths:
        mu, logvar, action, lengths = read_series('rnn_train.py', path)
        if parts and mu.shape[1] != parts[0][0].shape[1]:
            sys.exit('rnn_train.py: %s has z %d, %s z %d: series of different V\'s' % (
                path, mu.shape[1], paths[0], parts[0][0].shape[1]))
        parts.append([mu.astype(np.float32), logvar.astype(np.float32), action.astype(np.float32),
                      lengths.astype(np.int64)])
    mu, logvar, action, lengths = (np.concatenate(arrays) for arrays in zip(*parts))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    restart = np.zeros((len(mu), 1), np.float32)
    restart[starts] = 1.0
    last = np.zeros(len(mu), np.float32)
    last[starts + lengths - 1] = 1.0
    done = last.copy()
    if time_limit:
        done[(starts + lengths - 1)[lengths >= time_limit]] = 0.0
    return mu, logvar, action, restart, done, last, starts


def sample_batch(series, batch_size, seq_len, rng):
    """-> x (B, T, z+a+1) inputs, y (B, T, z+2) = [z_next, done, z_mask]."""
    mu, logvar, action, restart, done, last, _ = series
    s = rng.integers(0, len(mu) - seq_len, size=batch_size)[:, None] + np.arange(seq_len)   # (B, T)
    z = mu[s] + np.exp(logvar[s] / 2.0) * rng.standard_normal(mu[s].shape).astype(np.float32)
    z_next = mu[s + 1] + np.exp(logvar[s + 1] / 2.0) * rng.standard_normal(mu[s].shape).astype(np.float32)
    d, end = done[s][..., None], last[s][..., None]
    x = np.concatenate([z, action[s], restart[s]], axis=-1)
    y = np.concatenate([z_next * (1 - end), d, 1 - end], axis=-1)
    return x, y


def score_heldout(rnn_json, heldout, args, step, train_loss, scores, log_path):
    """Score rnn.json as just written (its weights rounded as stored, as rnn_eval.py reads
    them) on each held-out series; append the figures to scores and write them to log_path.
    -> the text for the step's line."""
    from rnn_eval import describe, heldout_losses
    from runtime import MDNRNN
    rnn = MDNRNN.load(rnn_json)
    entry, text = {'step': step, 'train_loss': round(train_loss, 4)}, ''
    for path, (mu, logvar, action, lengths) in heldout.items():
        result = heldout_losses(rnn, mu, logvar, action, lengths, done_weight=args.done_weight,
                                time_limit=args.time_limit)
        entry[path] = result
        text += '\n  held-out %s: %s' % (path, describe(result))
    scores.append(entry)
    write_atomic(log_path, 'w', lambda f: json.dump(scores, f, indent=1))
    return text


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--series', nargs='+', type=input_file, default=['series/series.npz'],
                   help='one or more files from series.py, used together (default: %(default)s)')
    p.add_argument('--out_dir', type=output_dir, default='tf_rnn', help='rnn.json and checkpoints (default: %(default)s)')
    p.add_argument('--initial_z_dir', type=output_dir, default='tf_initial_z', help='initial_z.json (default: %(default)s)')
    p.add_argument('--units', type=positive_int, default=512, help='LSTM units (default: %(default)s)')
    p.add_argument('--num_mixture', type=positive_int, default=5, help='Gaussians per z dimension (default: %(default)s)')
    p.add_argument('--seq_len', type=int_at_least(2), default=500, help='steps per training sequence (default: %(default)s)')
    p.add_argument('--batch_size', type=positive_int, default=100, help='sequences per batch (default: %(default)s)')
    p.add_argument('--steps', type=nonnegative_int, default=4000, help='training steps (default: %(default)s)')
    p.add_argument('--learning_rate', type=positive_float, default=1e-3, help='Adam learning rate (default: %(default)s)')
    p.add_argument('--decay_rate', type=float_range(0.0, 1.0, low_open=True), default=0.99999, help='learning-rate decay per step (default: %(default)s)')
    p.add_argument('--grad_clip', type=positive_float, default=1.0, help='clip each gradient value to +/- this (default: %(default)s)')
    p.add_argument('--done_weight', type=nonnegative_float, default=10.0, help='loss weight of restart steps (default: %(default)s)')
    p.add_argument('--time_limit', type=nonnegative_int, default=MAX_STEPS,
                   help="episodes this long were stopped alive by the game's time limit: their last frame is "
                        "no restart target (0: every last frame is one, as the 2018 code; default: %(default)s)")
    p.add_argument('--num_initial_z', type=positive_int, default=1000, help='episode starts kept for the dream (default: %(default)s)')
    p.add_argument('--checkpoint_every', type=positive_int, default=200, help='steps between checkpoints (default: %(default)s)')
    p.add_argument('--heldout', nargs='+', type=input_file, default=[],
                   help="series.py files (by the same V) of episodes not trained on, scored as rnn_eval.py scores "
                        "them every --heldout_every steps and at the end (default: none)")
    p.add_argument('--heldout_every', type=positive_int, default=500,
                   help='steps between held-out scores; each is also a checkpoint (default: %(default)s)')
    p.add_argument('--seed', type=nonnegative_int, default=0, help='run seed (default: %(default)s)')
    p.add_argument('--resume', action='store_true',
                   help='continue from out_dir/ckpt_* (refused if the series file or a flag that decides the '
                        'weights differs from its run; --steps may grow)')
    p.add_argument('--init', type=input_file, default='',
                   help="start from this rnn.json instead of random weights, e.g. to fine-tune M after V "
                        "was trained further (the optimizer and step count start afresh)")
    args = p.parse_args()
    if args.init and args.resume:
        p.error('--init starts a new run; --resume continues one: use one of them')

    series = load_series(args.series, args.time_limit)
    mu, logvar, _, _, _, _, starts = series
    if len(mu) <= args.seq_len:
        sys.exit('rnn_train.py: %s has %d frames, fewer than --seq_len %d + 1' % (' + '.join(args.series), len(mu), args.seq_len))
    z_size = mu.shape[1]
    heldout = {}
    trained_on = {file_record(path)['sha256'] for path in args.series}
    for path in args.heldout:
        h_mu, h_logvar, h_action, h_lengths = read_series('rnn_train.py', path)
        if h_mu.shape[1] != z_size:
            sys.exit("rnn_train.py: --heldout %s has z %d, --series z %d: series of different V's"
                     % (path, h_mu.shape[1], z_size))
        if file_record(path)['sha256'] in trained_on:
            sys.exit('rnn_train.py: --heldout %s is also in --series: its episodes would not be held out' % path)
        heldout[path] = (h_mu.astype(np.float32), h_logvar.astype(np.float32), h_action.astype(np.float32),
                         h_lengths.astype(np.int64))
    # What decides the weights and initial_z.json (--steps only says how far to go).
    run = {'series': [file_record(path) for path in args.series], 'units': args.units, 'num_mixture': args.num_mixture,
           'seq_len': args.seq_len, 'batch_size': args.batch_size, 'learning_rate': args.learning_rate,
           'decay_rate': args.decay_rate, 'grad_clip': args.grad_clip, 'num_initial_z': args.num_initial_z,
           'seed': args.seed, 'done_weight': args.done_weight, 'time_limit': args.time_limit}
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
    from rnn import build_rnn, make_loss
    from runtime import exit_on_weights_error, load_json_weights, save_json_weights
    keras.utils.set_random_seed(args.seed)
    model = build_rnn(z_size, args.units, args.num_mixture)
    schedule = keras.optimizers.schedules.ExponentialDecay(args.learning_rate, 1, args.decay_rate)
    model.compile(optimizer=keras.optimizers.Adam(schedule, clipvalue=args.grad_clip),
                  loss=make_loss(z_size, args.num_mixture, args.done_weight))
    state = {'step': 0, 'run': run}
    if args.init:
        arrays = exit_on_weights_error(load_json_weights, args.init, 'rnn_train.py')
        expected = [tuple(a.shape) for a in model.export_arrays()]
        if [a.shape for a in arrays] != expected:
            sys.exit('rnn_train.py: --init %s does not match z %d, --units %d, --num_mixture %d'
                     % (args.init, z_size, args.units, args.num_mixture))
        model.import_arrays(arrays)
        print('initialised from %s' % args.init, flush=True)
    if args.resume:
        state = dict(load_checkpoint(model, args.out_dir), run=run)   # an older checkpoint recorded none
        print('resumed at step %d' % state['step'], flush=True)
    write_atomic(os.path.join(args.out_dir, 'args.json'), 'w', lambda f: json.dump(vars(args), f, indent=1))

    # The dream starts from real first frames: keep (mu, logvar) of up to num_initial_z episode starts.
    pick = np.random.default_rng([args.seed, 1]).permutation(len(starts))[:args.num_initial_z]
    save_json_weights(os.path.join(args.initial_z_dir, 'initial_z.json'), [mu[starts[pick]], logvar[starts[pick]]])

    rnn_json = os.path.join(args.out_dir, 'rnn.json')
    heldout_log = os.path.join(args.out_dir, 'heldout.json')
    scores = []
    if heldout and os.path.exists(heldout_log) and args.resume:
        try:
            with open(heldout_log) as f:
                scores = [entry for entry in json.load(f) if entry['step'] <= state['step']]
        except (OSError, ValueError, KeyError, TypeError):
            scores = []   # unreadable: started afresh from this step
    losses = []
    bar = tqdm(range(state['step'], args.steps), initial=state['step'], total=args.steps, desc='rnn', disable=None)
    for step in bar:
        # Each step's batch depends only on (seed, step), so a resumed run sees the same data.
        x, y = sample_batch(series, args.batch_size, args.seq_len, np.random.default_rng([args.seed, 2, step]))
        loss = float(model.train_on_batch(x, y))
        if not np.isfinite(loss):
            stop_if_diverged('rnn_train.py', model, loss, 'step %d' % (step + 1), args.out_dir)
        losses.append(loss)
        bar.set_postfix(loss='%.3f' % loss)
        score_now = heldout and ((step + 1) % args.heldout_every == 0 or step + 1 == args.steps)
        if (step + 1) % args.checkpoint_every == 0 or step + 1 == args.steps or score_now:
            stop_if_diverged('rnn_train.py', model, None, 'step %d' % (step + 1), args.out_dir)
            state['step'] = step + 1
            save_checkpoint(model, args.out_dir, state)
            save_json_weights(rnn_json, model.export_arrays())
            line = 'step %d  loss %.4f  lr %.6f' % (step + 1, np.mean(losses), float(schedule(step)))
            if score_now:
                line += score_heldout(rnn_json, heldout, args, step + 1, float(np.mean(losses)), scores, heldout_log)
            print(line, flush=True)
            losses = []
    if state['step'] < args.steps or not os.path.exists(rnn_json):
        save_json_weights(rnn_json, model.export_arrays())
    print('wrote %s and %s' % (rnn_json, os.path.join(args.initial_z_dir, 'initial_z.json')))


if __name__ == '__main__':
    # a full disk: the last checkpoint written is whole, and --resume goes on from it
    with exit_on_write_failure('rnn_train.py', 'once it can be written, rerun with --resume to go on from the '
                                               'last checkpoint (without --resume if it wrote none)'):
        main()
