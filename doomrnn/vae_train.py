"""Train V (the ConvVAE) on the frames in record/ and write tf_vae/vae.json.

    python vae_train.py                       # paper: z 64, batch 100, Adam 1e-4, 10 epochs
    python vae_train.py --epochs 1 --max_files 100 --z_size 16     # scaled down

Frames are streamed from record/*.npz a few files at a time through a shuffle buffer, so
memory does not grow with the number of episodes. A checkpoint (weights, optimizer state,
position in the epoch) is written every --checkpoint_every steps and at each epoch's end;
--resume continues from it. Unreadable record files are skipped with a warning and counted.
"""

import argparse
import contextlib
import hashlib
import json
import os
import sys

import numpy as np
from tqdm import tqdm

import tf_cpu  # noqa: F401  (before keras: oneDNN on every x86-64 CPU)
from estool.argtypes import (input_dir, input_file, nonnegative_float, nonnegative_int, output_dir, positive_float,
                             positive_int)
from estool.atomic import WriteFailed, exit_on_write_failure, write_atomic
from estool.resume import differences
from records import count_frames, load_obs, record_files
from vae_eval import describe, heldout_losses


def files_digest(files):
    """A short digest of the files' names and sizes: another set of episodes, even of the same
    number and length, gives another one (the contents are not read)."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(('%s %d\n' % (os.path.basename(path), os.path.getsize(path))).encode())
    return 'names and sizes %s' % digest.hexdigest()[:12]


def frame_batches(files, batch_size, rng, buffer_files, bad):
    """Yield (batch_size, 64, 64, 3) uint8 batches in shuffled order; drops the last partial batch."""
    order = rng.permutation(len(files))
    buffer = np.empty((0, 64, 64, 3), np.uint8)
    for start in range(0, len(order), buffer_files):
        chunk = [load_obs(files[i]) for i in order[start:start + buffer_files]]
        bad.update(files[i] for i, obs in zip(order[start:start + buffer_files], chunk) if obs is None)
        buffer = np.concatenate([buffer] + [obs for obs in chunk if obs is not None])
        buffer = buffer[rng.permutation(len(buffer))]
        full = len(buffer) // batch_size * batch_size
        for b in range(0, full, batch_size):
            yield buffer[b:b + batch_size]
        buffer = buffer[full:]


LEGACY_FILES = ['ckpt.weights.h5', 'ckpt_optimizer.npz']   # checkpoints written before the files had tags


def save_checkpoint(model, out_dir, state):
    """Weights, optimizer variables, the noise generator's state and the counters, as a whole.

    The weights and optimizer files get names of their own, and ckpt_state.json, replaced
    last, names them: a kill at any moment leaves the previous checkpoint or this one, never
    the weights of one step with the optimizer of another. Files no longer named go after."""
    tag = 'ckpt-%d-%s' % (state['step'], os.urandom(4).hex())
    files = [tag + '.weights.h5', tag + '_optimizer.npz']
    state = dict(state, files=files)
    seed_generator = getattr(model, 'seed_generator', None)
    if seed_generator is not None:
        # save_weights leaves it out; without it a resumed run draws other VAE noise
        state['seed_state'] = np.asarray(seed_generator.state).tolist()
    try:
        try:
            model.save_weights(os.path.join(out_dir, files[0]))
        except OSError as e:   # h5py's, whose errno may be unset: still one line naming the file
            raise WriteFailed(os.path.join(out_dir, files[0]), e) from e
        write_atomic(os.path.join(out_dir, files[1]), 'wb',
                     lambda f: np.savez(f, *[np.asarray(v) for v in model.optimizer.variables]))
        write_atomic(os.path.join(out_dir, 'ckpt_state.json'), 'w', lambda f: json.dump(state, f), fsync=True)
    except WriteFailed:
        # A write that failed (a full disk) leaves no file of this checkpoint: ckpt_state.json
        # still names the previous one. (A kill leaves them to the next save, which removes them.)
        for name in files:
            with contextlib.suppress(OSError):
                os.remove(os.path.join(out_dir, name))
        raise
    for name in os.listdir(out_dir):
        if (name.startswith('ckpt-') or name in LEGACY_FILES) and name not in files:
            os.remove(os.path.join(out_dir, name))


def check_resume(script, out_dir, run):
    """--resume: the counters of out_dir's checkpoint (ckpt_state.json), read before the model is
    built. A one-line exit if there is none, or if it was made with settings other than `run`
    (those that decide the weights): going on with other ones would save weights that no
    straight run gives, under the first run's name."""
    state = read_checkpoint_state(out_dir)
    try:
        int(state['step'])
    except Exception as e:   # torn or not ours
        unreadable(out_dir, e)
    changes = differences(state.get('run', {}), run)
    if changes:
        sys.exit('%s: --resume: the checkpoint in %s was made with other settings (%s); resume with those, '
                 'or start again without --resume' % (script, out_dir, '; '.join(changes)))
    return state


def unreadable(out_dir, e):
    sys.exit('--resume: the checkpoint in %s is unreadable (%s: %s); start again without --resume'
             % (out_dir, type(e).__name__, str(e).splitlines()[0] if str(e) else ''))


def read_checkpoint_state(out_dir):
    """out_dir/ckpt_state.json -> dict, or a one-line exit if it is missing or torn."""
    path = os.path.join(out_dir, 'ckpt_state.json')
    if not os.path.exists(path):
        sys.exit('--resume: no checkpoint %s (start once without --resume)' % path)
    try:
        with open(path) as f:
            return json.load(f)
    except Exception as e:
        unreadable(out_dir, e)


def load_checkpoint(model, out_dir):
    state = read_checkpoint_state(out_dir)
    try:
        weights, optimizer = state.pop('files', LEGACY_FILES)
        # built first, so that load_weights finds the optimizer variables the file holds
        model.optimizer.build(model.trainable_variables)
        model.load_weights(os.path.join(out_dir, weights))
        with np.load(os.path.join(out_dir, optimizer)) as saved:
            if len(saved.files) != len(model.optimizer.variables):
                raise ValueError('%d optimizer arrays, this model has %d' % (len(saved.files), len(model.optimizer.variables)))
            for i, var in enumerate(model.optimizer.variables):
                var.assign(saved['arr_%d' % i])
        seed_state = state.pop('seed_state', None)
        if seed_state is not None:
            model.seed_generator.state.assign(np.asarray(seed_state, dtype=model.seed_generator.state.dtype))
        int(state['step'])
    except Exception as e:   # truncated or from another model: say so in one line
        unreadable(out_dir, e)
    return state


def stop_if_diverged(script, model, loss, where, out_dir):
    """Exit non-zero on a non-finite loss or weights, before anything of them is saved."""
    from runtime import MAX_ABS_VALUE
    message = None
    if loss is not None:
        message = None if np.isfinite(loss) else 'loss %s' % loss
    else:
        largest = max(float(np.max(np.abs(a))) for a in model.export_arrays())
        if not np.isfinite(largest) or largest > MAX_ABS_VALUE:
            message = 'a weight of %.3g' % largest
    if message:
        state = os.path.join(out_dir, 'ckpt_state.json')
        if os.path.exists(state):
            with open(state) as f:
                kept = 'the last good checkpoint (step %d) is kept in %s' % (json.load(f)['step'], out_dir)
        else:
            kept = 'no checkpoint was written'
        sys.exit('%s: training diverged at %s (%s); nothing of it was saved, %s (try a lower --learning_rate)'
                 % (script, where, message, kept))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--record_dir', type=input_dir, default='record', help='episodes from extract.py (default: %(default)s)')
    p.add_argument('--out_dir', type=output_dir, default='tf_vae', help='where vae.json and checkpoints go (default: %(default)s)')
    p.add_argument('--z_size', type=positive_int, default=64, help='latent size (default: %(default)s)')
    p.add_argument('--batch_size', type=positive_int, default=100, help='frames per batch (default: %(default)s)')
    p.add_argument('--learning_rate', type=positive_float, default=1e-4, help='Adam learning rate (default: %(default)s)')
    p.add_argument('--kl_tolerance', type=nonnegative_float, default=0.5, help='KL floor per z dimension (default: %(default)s)')
    p.add_argument('--epochs', type=positive_int, default=10, help='passes over record/ (default: %(default)s)')
    p.add_argument('--max_steps', type=nonnegative_int, default=0, help='stop after this many steps in all; 0 = no cap (default: %(default)s)')
    p.add_argument('--max_files', type=nonnegative_int, default=0, help='use only the first N record files; 0 = all (default: %(default)s)')
    p.add_argument('--buffer_files', type=positive_int, default=10, help='record files mixed in the shuffle buffer (default: %(default)s)')
    p.add_argument('--checkpoint_every', type=positive_int, default=500, help='steps between checkpoints (default: %(default)s)')
    p.add_argument('--seed', type=nonnegative_int, default=0, help='run seed (default: %(default)s)')
    p.add_argument('--resume', action='store_true',
                   help='continue from out_dir/ckpt_* (refused if the record files, --z_size, --batch_size, '
                        '--learning_rate, --kl_tolerance, --buffer_files or --seed differ from its run)')
    p.add_argument('--init', type=input_file, default='',
                   help='start from the weights of this vae.json (2018 layout), with a fresh optimizer: to go on '
                        'from a V whose checkpoint is not at hand, or to fine-tune one on new episodes; '
                        'not with --resume (default: random weights)')
    p.add_argument('--heldout_dir', type=input_dir, default='',
                   help='episodes not trained on; their loss (vae_eval.py) is printed at each epoch end (default: none)')
    args = p.parse_args()
    if args.init and args.resume:
        p.error('--init and --resume exclude each other: --resume continues from out_dir\'s checkpoint')

    files = record_files('vae_train.py', args.record_dir, args.max_files)
    heldout_files = record_files('vae_train.py: --heldout_dir', args.heldout_dir) if args.heldout_dir else []
    frames_per_epoch = 0
    for path in files:
        try:
            frames_per_epoch += count_frames(path)
        except Exception:
            pass  # counted as bad when the epoch reaches it
    steps_per_epoch = frames_per_epoch // args.batch_size
    if steps_per_epoch == 0:
        sys.exit('vae_train.py: %s holds %d readable frames, fewer than one batch of --batch_size %d'
                 % (args.record_dir, frames_per_epoch, args.batch_size))
    # What decides the weights (--epochs and --max_steps only say how far to go).
    run = {'record files': '%d files, %d frames, %s' % (len(files), frames_per_epoch, files_digest(files)),
           'z_size': args.z_size, 'batch_size': args.batch_size, 'learning_rate': args.learning_rate,
           'kl_tolerance': args.kl_tolerance, 'buffer_files': args.buffer_files, 'seed': args.seed}
    if args.resume:
        saved = check_resume('vae_train.py', args.out_dir, run)
        at_end = ('epoch %d of --epochs %d' % (saved.get('epoch', 0), args.epochs)
                  if saved.get('epoch', 0) >= args.epochs else
                  'step %d of --max_steps %d' % (saved['step'], args.max_steps)
                  if args.max_steps and saved['step'] >= args.max_steps else None)
        # (without its vae.json, lost to a full disk say, the run goes on to write it)
        if at_end and os.path.exists(os.path.join(args.out_dir, 'vae.json')):
            print('nothing to do: the checkpoint in %s is already at %s' % (args.out_dir, at_end))
            return
    os.makedirs(args.out_dir, exist_ok=True)

    import keras
    from runtime import VAE, exit_on_weights_error, load_json_weights, save_json_weights
    from vae import build_vae
    keras.utils.set_random_seed(args.seed)
    model = build_vae(args.z_size, args.kl_tolerance, args.seed)
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
    state = {'epoch': 0, 'step_in_epoch': 0, 'step': 0, 'run': run}
    if args.init:
        arrays = exit_on_weights_error(load_json_weights, args.init, 'vae_train.py')
        init_z = exit_on_weights_error(VAE, arrays, args.init).z_size   # checks every shape
        if init_z != args.z_size:
            sys.exit('vae_train.py: --init %s is a V with z %d, not --z_size %d' % (args.init, init_z, args.z_size))
        model.import_arrays(arrays)
        print('started from the weights of %s' % args.init, flush=True)
    if args.resume:
        state = dict(load_checkpoint(model, args.out_dir), run=run)   # an older checkpoint recorded none
        print('resumed at epoch %d step %d' % (state['epoch'] + 1, state['step_in_epoch']), flush=True)
    write_atomic(os.path.join(args.out_dir, 'args.json'), 'w', lambda f: json.dump(vars(args), f, indent=1))

    bad = set()
    done = False
    wrote = False
    for epoch in range(state['epoch'], args.epochs):
        # The epoch's order depends only on (seed, epoch), so a resumed epoch replays it.
        rng = np.random.default_rng([args.seed, epoch])
        losses = []
        seen = 0
        batches = frame_batches(files, args.batch_size, rng, args.buffer_files, bad)
        bar = tqdm(batches, total=steps_per_epoch, desc='epoch %d' % (epoch + 1), unit='batch', disable=None)
        for i, batch in enumerate(bar):
            seen += 1
            if i < state['step_in_epoch']:
                continue
            if args.max_steps and state['step'] >= args.max_steps:   # resumed at the cap: no step more
                done = True
                break
            loss = float(model.train_on_batch(batch.astype(np.float32) / 255.0))
            where = 'epoch %d step %d' % (epoch + 1, i + 1)
            if not np.isfinite(loss):
                stop_if_diverged('vae_train.py', model, loss, where, args.out_dir)
            losses.append(loss)
            state.update(step_in_epoch=i + 1, step=state['step'] + 1)
            bar.set_postfix(loss='%.1f' % loss)
            if state['step'] % args.checkpoint_every == 0:
                stop_if_diverged('vae_train.py', model, None, where, args.out_dir)
                wrote = True
                save_checkpoint(model, args.out_dir, state)
                save_json_weights(os.path.join(args.out_dir, 'vae.json'), model.export_arrays())
                recent = losses[-args.checkpoint_every:]
                print('epoch %d  step %d of %d  loss %.2f (mean of the last %d steps)'
                      % (epoch + 1, i + 1, steps_per_epoch, np.mean(recent), len(recent)), flush=True)
            if args.max_steps and state['step'] >= args.max_steps:
                done = True
                break
        bar.close()
        if seen == 0:
            sys.exit('vae_train.py: no readable frames in %s (%d unreadable record files); nothing written'
                     % (args.record_dir, len(bad)))
        if not done:
            state.update(epoch=epoch + 1, step_in_epoch=0)
        stop_if_diverged('vae_train.py', model, None, 'the end of epoch %d' % (epoch + 1), args.out_dir)
        wrote = True
        save_checkpoint(model, args.out_dir, state)
        save_json_weights(os.path.join(args.out_dir, 'vae.json'), model.export_arrays())
        heldout = ''
        if args.heldout_dir:
            # scored from the vae.json just written (its weights rounded as stored), as vae_eval.py scores it
            result = heldout_losses(VAE.load(os.path.join(args.out_dir, 'vae.json')), heldout_files)
            heldout = '  held-out %s' % (describe(result) if result else 'unreadable')
        print('epoch %d  steps %d  loss %.2f%s' % (epoch + 1, state['step'], np.mean(losses) if losses else float('nan'),
                                                  heldout), flush=True)
        if done:
            break
    if bad:
        print('skipped %d unreadable record files: %s' % (len(bad), ', '.join(sorted(bad)[:5])))
    if not wrote:   # resumed at the end, its vae.json missing: the checkpoint's weights
        save_json_weights(os.path.join(args.out_dir, 'vae.json'), model.export_arrays())
    print('wrote %s' % os.path.join(args.out_dir, 'vae.json'))


if __name__ == '__main__':
    # a full disk: the last checkpoint written is whole, and --resume goes on from it
    with exit_on_write_failure('vae_train.py', 'once it can be written, rerun with --resume to go on from the '
                                               'last checkpoint (without --resume if it wrote none)'):
        main()
