"""Collect episodes of CarRacing into record/<seed>.npz.

    python extract.py --episodes 200 --seed 0        # one worker; extract.bash fans out
    python extract.py --params log/carracing.cma.16.32.best.json --seed 1100000 --record_dir record_agent

The default policy is the paper's random one: the full agent (V, M and C) with random
weights, drawn afresh for each episode; the weights' scale is drawn per episode too, so
episodes range from steady half-throttle driving to jerky steering. With --params, the
episodes are driven by a trained agent (V and M from --vae/--rnn, C from the params file)
with N(0, --noise^2) added to each action: the paper's iterative training, which shows V the
road and the curves that a random policy, off the road within a few hundred frames, rarely
sees. Episodes run the full --max_frames (the env's own ending is ignored). Each is saved as
record/<seed>.npz with obs (T, 64, 64, 3) uint8 (the frame seen before each action) and
action (T, 3) float16 (the action the env was given). Seeds already on disk are skipped, so
a rerun resumes. No window and no X server are needed.
"""

import os

# One episode at a time means small matrix products: BLAS threads only add overhead.
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')

import argparse  # noqa: E402
import json

import numpy as np
from tqdm import tqdm

from estool.argtypes import positive_int

from env import MAX_STEPS, CarRacingEnv
from runtime import MDNRNN, VAE, Controller, exit_on_weights_error, load_params

ACTION_LOW, ACTION_HIGH = np.array([-1.0, 0.0, 0.0]), np.array([1.0, 1.0, 1.0])


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


def agent_episode(env, agent, seed, max_frames, noise):
    """The trained agent with Gaussian action noise -> obs (T, 64, 64, 3) uint8, action (T, 3) float32."""
    rng = np.random.default_rng([seed, 1])   # the noise has its own stream: V's sampling stays the replay's
    agent.reset(np.random.default_rng(seed))
    obs, _ = env.reset(seed=seed)
    frames, actions = [], []
    for _ in range(max_frames):
        action = agent.act(obs) + noise * rng.standard_normal(3)
        action = np.clip(action, ACTION_LOW, ACTION_HIGH).astype(np.float32)
        frames.append(obs)
        actions.append(action)
        obs, _, terminated, truncated, _ = env.step(action)
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
    p.add_argument('--episodes', type=positive_int, default=200, help='episodes to extract (default: %(default)s)')
    p.add_argument('--seed', type=int, default=0, help='episode i uses seed + i (default: %(default)s)')
    p.add_argument('--max_frames', type=positive_int, default=MAX_STEPS, help='frames per episode (default: %(default)s)')
    p.add_argument('--record_dir', default='record', help='output folder (default: %(default)s)')
    p.add_argument('--params', help='drive with this controller (log/*.best.json or log/*.json) instead of at random')
    p.add_argument('--noise', type=float, default=0.1,
                   help='with --params: std of the Gaussian noise added to each action (default: %(default)s)')
    p.add_argument('--vae', default='vae/vae.json', help='with --params: V weights (default: %(default)s)')
    p.add_argument('--rnn', default='rnn/rnn.json', help='with --params: M weights (default: %(default)s)')
    args = p.parse_args()
    if args.episodes < 1 or args.max_frames < 1:
        p.error('--episodes and --max_frames must be at least 1')
    if not (args.noise >= 0):
        p.error('--noise must be a number >= 0')
    agent = None
    if args.params:
        from model import Agent
        agent = exit_on_weights_error(Agent.load, args.vae, args.rnn)
        agent.controller.set_params(exit_on_weights_error(load_params, args.params, agent.controller.num_params))

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
        if agent is None:
            save_episode(path, *random_agent_episode(env, seed, args.max_frames))
        else:
            save_episode(path, *agent_episode(env, agent, seed, args.max_frames, args.noise))
        kept += 1
    env.close()
    print('extract: wrote %d episodes, skipped %d already on disk -> %s/' % (kept, skipped, args.record_dir))


if __name__ == '__main__':
    main()
