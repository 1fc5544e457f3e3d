"""Train V (the ConvVAE) on the frames in record/ and write tf_vae/vae.json.

    python vae_train.py                       # paper: z 64, batch 100, Adam 1e-4, 10 epochs
    python vae_train.py --epochs 1 --max_files 100 --z_size 16     # scaled down

Frames are streamed from record/*.npz a few files at a time through a shuffle buffer, so
memory does not grow with the number of episodes. A checkpoint (weights, optimizer state,
position in the epoch) is written every --checkpoint_every steps and at each epoch's end;
--resume continues from it. Unreadable record files are skipped with a warning and counted.
"""

import argparse
import glob
import json
import os
import sys
import warnings
import zipfile

import numpy as np
from tqdm import tqdm


def count_frames(path):
    """Frames in a record file from the .npy header alone (no decompression of the data)."""
    with zipfile.ZipFile(path) as z, z.open('obs.npy') as f:
        major, _ = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape = read_header(f)[0]
    return shape[0]


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


def save_checkpoint(model, out_dir, state):
    """Weights, optimizer variables and counters; each file replaced atomically."""
    model.save_weights(os.path.join(out_dir, 'ckpt.tmp.weights.h5'))
    os.replace(os.path.join(out_dir, 'ckpt.tmp.weights.h5'), os.path.join(out_dir, 'ckpt.weights.h5'))
    with open(os.path.join(out_dir, 'ckpt_optimizer.tmp'), 'wb') as f:
        np.savez(f, *[np.asarray(v) for v in model.optimizer.variables])
    os.replace(os.path.join(out_dir, 'ckpt_optimizer.tmp'), os.path.join(out_dir, 'ckpt_optimizer.npz'))
    with open(os.path.join(out_dir, 'ckpt_state.tmp'), 'w') as f:
        json.dump(state, f)
    os.replace(os.path.join(out_dir, 'ckpt_state.tmp'), os.path.join(out_dir, 'ckpt_state.json'))


def load_checkpoint(model, out_dir):
    path = os.path.join(out_dir, 'ckpt_state.json')
    if not os.path.exists(path):
        sys.exit('--resume: no checkpoint %s (start once without --resume)' % path)
    model.load_weights(os.path.join(out_dir, 'ckpt.weights.h5'))
    model.optimizer.build(model.trainable_variables)
    with np.load(os.path.join(out_dir, 'ckpt_optimizer.npz')) as saved:
        for i, var in enumerate(model.optimizer.variables):
            var.assign(saved['arr_%d' % i])
    with open(path) as f:
        return json.load(f)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--record_dir', default='record', help='episodes from extract.py (default: %(default)s)')
    p.add_argument('--out_dir', default='tf_vae', help='where vae.json and checkpoints go (default: %(default)s)')
    p.add_argument('--z_size', type=int, default=64, help='latent size (default: %(default)s)')
    p.add_argument('--batch_size', type=int, default=100, help='frames per batch (default: %(default)s)')
    p.add_argument('--learning_rate', type=float, default=1e-4, help='Adam learning rate (default: %(default)s)')
    p.add_argument('--kl_tolerance', type=float, default=0.5, help='KL floor per z dimension (default: %(default)s)')
    p.add_argument('--epochs', type=int, default=10, help='passes over record/ (default: %(default)s)')
    p.add_argument('--max_steps', type=int, default=0, help='stop after this many steps in all; 0 = no cap (default: %(default)s)')
    p.add_argument('--max_files', type=int, default=0, help='use only the first N record files; 0 = all (default: %(default)s)')
    p.add_argument('--buffer_files', type=int, default=10, help='record files mixed in the shuffle buffer (default: %(default)s)')
    p.add_argument('--checkpoint_every', type=int, default=500, help='steps between checkpoints (default: %(default)s)')
    p.add_argument('--seed', type=int, default=0, help='run seed (default: %(default)s)')
    p.add_argument('--resume', action='store_true', help='continue from out_dir/ckpt_*')
    args = p.parse_args()

    files = sorted(glob.glob(os.path.join(args.record_dir, '*.npz')))
    if args.max_files:
        files = files[:args.max_files]
    if not files:
        sys.exit('vae_train.py: no %s/*.npz episodes (make them with extract.py or extract.bash)' % args.record_dir)
    os.makedirs(args.out_dir, exist_ok=True)

    import keras
    from runtime import save_json_weights
    from vae import build_vae
    keras.utils.set_random_seed(args.seed)
    model = build_vae(args.z_size, args.kl_tolerance, args.seed)
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate))
    state = {'epoch': 0, 'step_in_epoch': 0, 'step': 0}
    if args.resume:
        state = load_checkpoint(model, args.out_dir)
        print('resumed at epoch %d step %d' % (state['epoch'] + 1, state['step_in_epoch']), flush=True)
    with open(os.path.join(args.out_dir, 'args.json'), 'w') as f:
        json.dump(vars(args), f, indent=1)

    frames_per_epoch = 0
    for path in files:
        try:
            frames_per_epoch += count_frames(path)
        except Exception:
            pass  # counted as bad when the epoch reaches it
    steps_per_epoch = frames_per_epoch // args.batch_size
    bad = set()
    done = False
    for epoch in range(state['epoch'], args.epochs):
        # The epoch's order depends only on (seed, epoch), so a resumed epoch replays it.
        rng = np.random.default_rng([args.seed, epoch])
        losses = []
        batches = frame_batches(files, args.batch_size, rng, args.buffer_files, bad)
        bar = tqdm(batches, total=steps_per_epoch, desc='epoch %d' % (epoch + 1), unit='batch', disable=None)
        for i, batch in enumerate(bar):
            if i < state['step_in_epoch']:
                continue
            loss = float(model.train_on_batch(batch.astype(np.float32) / 255.0))
            losses.append(loss)
            state.update(step_in_epoch=i + 1, step=state['step'] + 1)
            bar.set_postfix(loss='%.1f' % loss)
            if state['step'] % args.checkpoint_every == 0:
                save_checkpoint(model, args.out_dir, state)
                save_json_weights(os.path.join(args.out_dir, 'vae.json'), model.export_arrays())
            if args.max_steps and state['step'] >= args.max_steps:
                done = True
                break
        bar.close()
        if not done:
            state.update(epoch=epoch + 1, step_in_epoch=0)
        save_checkpoint(model, args.out_dir, state)
        save_json_weights(os.path.join(args.out_dir, 'vae.json'), model.export_arrays())
        print('epoch %d  steps %d  loss %.2f' % (epoch + 1, state['step'], np.mean(losses) if losses else float('nan')),
              flush=True)
        if done:
            break
    if bad:
        print('skipped %d unreadable record files: %s' % (len(bad), ', '.join(sorted(bad)[:5])))
    print('wrote %s' % os.path.join(args.out_dir, 'vae.json'))


if __name__ == '__main__':
    main()
