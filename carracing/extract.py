"""Collect episodes of the paper's random policy into record/<seed>.npz.

    python extract.py --episodes 200 --seed 0        # one worker; extract.bash fans out

The policy is the full agent (V, M and C) with random weights, drawn afresh for each
episode; the weights' scale is drawn per episode too, so episodes range from steady
half-throttle driving to jerky steering. Episodes run the full --max_frames (the env's own
ending is ignored). Each is saved as record/<seed>.npz with obs (T, 64, 64, 3) uint8 (the
frame seen before each action) and action (T, 3) float16. Seeds already on disk are skipped,
so a rerun resumes. No window and no X server are needed.
"""

import os

# One episode at a time means small matrix products: BLAS threads only add overhead.
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')

import argparse  # noqa: E402
import json

import numpy as np
from tqdm import tqdm

from env import MAX_STEPS, CarRacingEnv
from runtime import MDNRNN, VAE, Controller


def random_agent_episode(env, seed, max_frames, z_size=32, units=256):
    """-> obs (T, 64, 64, 3) uint8, action (T, 3) float32."""
    rng = np.random.default_rng(seed)
    vae, rnn = VAE.random(z_size, rng), MDNRNN.random(z_size, units, rng)
    controller = Controller(z_size, units)
    controller.set_params(rng.standard_normal(controller.num_params) * rng.uniform(0, 0.1))
    obs, _ = env.reset(seed=seed)
    state = rnn.initial_state(1)
    frames, actions = [], []
    for _ in range(max_frames):
        z = vae.encode(obs[None], rng)
        action = controller.act(z, state[1])
        state = rnn.step(z, action, state)
        frames.append(obs)
        actions.append(action[0])
        obs, _, terminated, truncated, _ = env.step(action[0])
        if terminated or truncated:
            break
    return np.stack(frames), np.asarray(actions, np.float32)


def save_episode(path, obs, action):
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        np.savez_compressed(f, obs=obs, action=action.astype(np.float16))
    os.replace(tmp, path)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--episodes', type=int, default=200, help='episodes to extract (default: %(default)s)')
    p.add_argument('--seed', type=int, default=0, help='episode i uses seed + i (default: %(default)s)')
    p.add_argument('--max_frames', type=int, default=MAX_STEPS, help='frames per episode (default: %(default)s)')
    p.add_argument('--record_dir', default='record', help='output folder (default: %(default)s)')
    args = p.parse_args()

    os.makedirs(args.record_dir, exist_ok=True)
    with open(os.path.join(args.record_dir, 'extract_args.%d.json' % args.seed), 'w') as f:
        json.dump(vars(args), f)
    env = CarRacingEnv(full_episode=True, max_steps=args.max_frames)
    kept = skipped = 0
    for seed in tqdm(range(args.seed, args.seed + args.episodes), desc='extract', unit='episode', disable=None):
        path = os.path.join(args.record_dir, '%d.npz' % seed)
        if os.path.exists(path):
            skipped += 1
            continue
        save_episode(path, *random_agent_episode(env, seed, args.max_frames))
        kept += 1
    env.close()
    print('extract: wrote %d episodes, skipped %d already on disk -> %s/' % (kept, skipped, args.record_dir))


if __name__ == '__main__':
    main()
