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
import re
import sys

import numpy as np
from tqdm import tqdm

from estool.argtypes import input_file, nonnegative_float, output_dir, positive_int, random_seed
from estool.atomic import exit_on_write_failure, write_atomic
from estool.resume import differences, file_record, read_record, write_record

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
    write_atomic(path, 'wb', lambda f: np.savez_compressed(f, obs=obs, action=action.astype(np.float16)))


def check_same_episodes(args, run, flags):
    """A rerun resumes (episodes on disk are skipped), so the episodes it adds must be made as
    those of the earlier runs whose seeds it shares: else record_dir would hold some episodes
    of one policy under the seeds of another. One line, before anything is written, naming what
    differs; an earlier record of an older version (no 'run') is compared by its flags."""
    if not os.path.isdir(args.record_dir):
        return
    names = set(os.listdir(args.record_dir))
    for name in sorted(names):
        match = re.fullmatch(r'extract_args\.(\d+)\.json', name)
        if not match:
            continue
        try:
            recorded = read_record(os.path.join(args.record_dir, name))
            first, count = int(recorded['seed']), int(recorded['episodes'])
        except (ValueError, KeyError, TypeError) as e:
            sys.exit('extract.py: %s is unreadable (%s); move it away to extract into %s' % (
                os.path.join(args.record_dir, name), e, args.record_dir))
        shared = range(max(first, args.seed), min(first + count, args.seed + args.episodes))
        if not any('%d.npz' % seed in names for seed in shared):
            continue
        if 'run' in recorded:
            changes = differences(recorded['run'], run)
        else:
            changes = differences(recorded, {key: getattr(args, key) for key in flags})
        if changes:
            sys.exit('extract.py: %s already holds episodes of seeds %d-%d made with other settings (%s); '
                     'extract into another --record_dir or other seeds, or with those settings'
                     % (args.record_dir, shared[0], shared[-1], '; '.join(changes)))


def write_extract_record(args, run):
    """record_dir/extract_args.<seed>.json: the flags and what decides the episodes (run); a
    rerun of the same first seed keeps the larger range, which check_same_episodes reads."""
    path = os.path.join(args.record_dir, 'extract_args.%d.json' % args.seed)
    flags = dict(vars(args), run=run)
    try:
        flags['episodes'] = max(args.episodes, int((read_record(path) or {}).get('episodes', 0)))
    except (ValueError, TypeError):
        pass   # checked by check_same_episodes; replaced here
    write_record(path, flags)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--episodes', type=positive_int, default=200, help='episodes to extract (default: %(default)s)')
    p.add_argument('--seed', type=random_seed, default=0, help='episode i uses seed + i (default: %(default)s)')
    p.add_argument('--max_frames', type=positive_int, default=MAX_STEPS, help='frames per episode (default: %(default)s)')
    p.add_argument('--record_dir', type=output_dir, default='record',
                   help='output folder; a rerun adds the episodes not yet in it, and is refused if the settings '
                        'that made its episodes of the same seeds differ (default: %(default)s)')
    p.add_argument('--params', type=input_file,
                   help='drive with this controller (log/*.best.json or log/*.json) instead of at random')
    p.add_argument('--noise', type=nonnegative_float, default=0.1,
                   help='with --params: std of the Gaussian noise added to each action (default: %(default)s)')
    p.add_argument('--vae', type=input_file, default='vae/vae.json', help='with --params: V weights (default: %(default)s)')
    p.add_argument('--rnn', type=input_file, default='rnn/rnn.json', help='with --params: M weights (default: %(default)s)')
    args = p.parse_args()
    # What decides the episodes: the policy (and its files, by content) and their length.
    run = {'max_frames': args.max_frames, 'params': file_record(args.params) if args.params else None}
    flags = ['max_frames', 'params']
    if args.params:
        run.update(noise=args.noise, vae=file_record(args.vae), rnn=file_record(args.rnn))
        flags += ['noise', 'vae', 'rnn']
    check_same_episodes(args, run, flags)
    agent = None
    if args.params:
        from model import Agent
        agent = exit_on_weights_error(Agent.load, args.vae, args.rnn)
        agent.controller.set_params(exit_on_weights_error(load_params, args.params, agent.controller.num_params))

    os.makedirs(args.record_dir, exist_ok=True)
    write_extract_record(args, run)
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
    # a full disk: the episodes already written are whole, and a rerun skips them
    with exit_on_write_failure('extract.py', 'once it can be written, run it again: it keeps and skips the '
                                             'episodes on disk'):
        main()
