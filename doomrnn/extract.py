"""Collect episodes of the real game into record/<seed>.npz.

    python extract.py --episodes 200 --seed 0        # one worker; extract.bash fans out
    python extract.py --params log/doomrnn.cma.16.64.json --record_dir record_iter1 --seed 100000
    python extract.py --params log/doomrnn.cma.16.64.log.json --gen 50 --record_dir record_agent --seed 500000

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
import re
import sys

import numpy as np
from tqdm import tqdm

from estool.argtypes import input_file, nonnegative_float, nonnegative_int, output_dir, positive_int, random_seed
from estool.atomic import exit_on_write_failure, write_atomic
from estool.resume import differences, file_record, read_record, write_record

from env import MAX_STEPS, DoomTakeCoverEnv
from runtime import add_world_arguments, args_world


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
    p.add_argument('--episodes', type=positive_int, default=200, help='episodes to attempt (default: %(default)s)')
    p.add_argument('--seed', type=random_seed, default=0, help='episode i uses seed + i (default: %(default)s)')
    p.add_argument('--max_frames', type=positive_int, default=MAX_STEPS, help='cap on steps per episode (default: %(default)s)')
    p.add_argument('--min_frames', type=nonnegative_int, default=100, help='drop episodes shorter than this (default: %(default)s)')
    p.add_argument('--record_dir', type=output_dir, default='record',
                   help='output folder; a rerun adds the episodes not yet in it, and is refused if the settings '
                        'that made its episodes of the same seeds differ (default: %(default)s)')
    p.add_argument('--params', type=input_file,
                   help='play with this controller (log/*.json or *.best.json) instead of at random')
    p.add_argument('--gen', type=nonnegative_int,
                   help='with --params PATH.log.json: play the mean that train.py evaluated at this generation')
    p.add_argument('--noise', type=nonnegative_float, default=0.1,
                   help='with --params: std of the per-episode perturbation of C (default: %(default)s)')
    add_world_arguments(p, ('vae', 'rnn'), 'with --params: ')
    args = p.parse_args()
    # What decides the episodes: the policy (and its files, by content) and which are kept.
    run = {'max_frames': args.max_frames, 'min_frames': args.min_frames,
           'params': file_record(args.params) if args.params else None}
    flags = ['max_frames', 'min_frames', 'params']
    if args.params:
        run.update(gen=args.gen, noise=args.noise,
                   models=[file_record(args_world(args)[name]) for name in ('vae', 'rnn')])
        flags += ['gen', 'noise', 'models']
    check_same_episodes(args, run, flags)
    agent = None
    if args.params:
        from doomreal import Agent
        from runtime import exit_on_weights_error, load_params
        agent = exit_on_weights_error(Agent.load, args_world(args))
        agent.controller.set_params(exit_on_weights_error(load_params, args.params, agent.controller.num_params,
                                                               args.gen))
        mean_params = agent.controller.weight.ravel().copy()

    os.makedirs(args.record_dir, exist_ok=True)
    write_extract_record(args, run)
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
    # a full disk: the episodes already written are whole, and a rerun skips them
    with exit_on_write_failure('extract.py', 'once it can be written, run it again: it keeps and skips the '
                                             'episodes on disk'):
        main()
