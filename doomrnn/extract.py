"""Collect episodes of the real game into record/<seed>.npz.

    python extract.py --episodes 200 --seed 0        # one worker; extract.bash fans out
    python extract.py --params log/doomrnn.cma.16.64.json --record_dir record_iter1 --seed 100000

The default policy is the paper's: a uniformly random action held for a random 1-10 steps.
With --params, the episodes are played by the world-model agent (V and M from --models, C from
the params file, perturbed per episode by N(0, --noise^2)): the paper's iterative training,
which shows M the states a controller trained in the dream actually reaches.
Episodes shorter than --min_frames are dropped. Each kept episode is saved as
record/<seed>.npz with obs (T, 64, 64, 3) uint8 (the frame seen before each action) and
action (T, 1) float16. Seeds already on disk are skipped, so a rerun resumes.
"""

import os

# One episode at a time means small matrix products: BLAS threads only add overhead.
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')

import argparse  # noqa: E402
import json

import numpy as np
from tqdm import tqdm

from estool.argtypes import positive_int

from env import MAX_STEPS, DoomTakeCoverEnv


def random_policy(seed):
    """The paper's policy: a uniform action in [-1, 1] held for 1-10 steps. -> policy(obs)."""
    rng = np.random.default_rng(seed)
    held = {'action': 0.0, 'steps': 0}

    def policy(obs):
        if held['steps'] == 0:
            held['action'], held['steps'] = rng.uniform(-1.0, 1.0), int(rng.integers(1, 11))
        held['steps'] -= 1
        return np.array([held['action']])
    return policy


def agent_policy(agent, params, seed):
    """The world-model agent with controller params; M's state starts afresh. -> policy(obs)."""
    agent.controller.set_params(params)
    agent.reset(np.random.default_rng(seed))
    return lambda obs: agent.act(obs)[0]


def record_episode(env, policy, seed, max_frames):
    """-> obs (T, 64, 64, 3) uint8, action (T, 1) float32."""
    obs, _ = env.reset(seed=seed)
    frames, actions = [], []
    for _ in range(max_frames):
        action = policy(obs)
        frames.append(obs)
        actions.append(action)
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            break
    return np.stack(frames), np.asarray(actions, dtype=np.float32)


def save_episode(path, obs, action):
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        np.savez_compressed(f, obs=obs, action=action.astype(np.float16))
    os.replace(tmp, path)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--episodes', type=positive_int, default=200, help='episodes to attempt (default: %(default)s)')
    p.add_argument('--seed', type=int, default=0, help='episode i uses seed + i (default: %(default)s)')
    p.add_argument('--max_frames', type=positive_int, default=MAX_STEPS, help='cap on steps per episode (default: %(default)s)')
    p.add_argument('--min_frames', type=int, default=100, help='drop episodes shorter than this (default: %(default)s)')
    p.add_argument('--record_dir', default='record', help='output folder (default: %(default)s)')
    p.add_argument('--params', help='play with this controller (log/*.json or *.best.json) instead of at random')
    p.add_argument('--noise', type=float, default=0.1,
                   help='with --params: std of the per-episode perturbation of C (default: %(default)s)')
    p.add_argument('--models', default='tf_models', help='with --params: folder with vae.json, rnn.json (default: %(default)s)')
    args = p.parse_args()
    agent = None
    if args.params:
        from doomreal import Agent
        from runtime import exit_on_weights_error, load_params
        agent = exit_on_weights_error(Agent.load, args.models)
        agent.controller.set_params(exit_on_weights_error(load_params, args.params, agent.controller.num_params))
        mean_params = agent.controller.weight.ravel().copy()

    os.makedirs(args.record_dir, exist_ok=True)
    with open(os.path.join(args.record_dir, 'extract_args.%d.json' % args.seed), 'w') as f:
        json.dump(vars(args), f)
    env = DoomTakeCoverEnv(max_steps=args.max_frames)
    kept = dropped = skipped = 0
    for seed in tqdm(range(args.seed, args.seed + args.episodes), desc='extract', unit='episode', disable=None):
        path = os.path.join(args.record_dir, '%d.npz' % seed)
        if os.path.exists(path):
            skipped += 1
            continue
        if agent is None:
            policy = random_policy(seed)
        else:
            noise = np.random.default_rng([seed, 1]).standard_normal(mean_params.shape) * args.noise
            policy = agent_policy(agent, mean_params + noise, seed)
        obs, action = record_episode(env, policy, seed, args.max_frames)
        if len(obs) < args.min_frames:
            dropped += 1
            continue
        save_episode(path, obs, action)
        kept += 1
    env.close()
    print('extract: kept %d, dropped %d shorter than %d frames, skipped %d already on disk -> %s/'
          % (kept, dropped, args.min_frames, skipped, args.record_dir))


if __name__ == '__main__':
    main()
