"""Check M's dream against the real game before C is trained in it: the same controllers, their
survival in each, side by side.

    python dream_check.py                                             # tf_models, tau 1.15, 100 each
    python dream_check.py --models tf_models --temperature 1.15 1.25 \\
        --params log/doomrnn.cma.16.64.log.json:50 --episodes 40

Controllers: `nothing` (all weights 0: the action is always 0, the player stands still),
`linear` (each episode its own random linear controller, weights N(0, 0.1^2), as run 1's checks
used), and each --params file (a .best.json, .json, or FILE.log.json:GEN for the mean train.py
evaluated at generation GEN). A dream that a controller survives far longer than the game is
one C can exploit (a wall M never kills at): retrain M with that controller's episodes first.

Episode i of a controller uses seed --seed + i in the game and in the dream (seeds of the
validation range by default, never the test seeds 0 and 1000). Prints one row per controller:
real game mean +/- standard deviation, then the dream's at each temperature.
"""

import os

# One episode at a time means small matrix products: BLAS threads only add overhead.
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from doomrnn import MAX_STEPS, dream_rollouts, load_world  # noqa: E402
from estool.atomic import exit_on_write_failure, write_atomic  # noqa: E402
from estool.argtypes import output_file, positive_float, positive_int, random_seed  # noqa: E402
from runtime import (WORLD_FILES, Controller, WeightsError, add_world_arguments, args_world,  # noqa: E402
                     exit_on_weights_error, load_params)

LINEAR_SIGMA = 0.1


def controller_spec(text):
    """'nothing', 'linear', FILE or FILE.log.json:GEN -> (label, file or None, gen or None)."""
    if text in ('nothing', 'linear'):
        return text, None, None
    path, gen = text, None
    if ':' in text and text.rsplit(':', 1)[1].isdigit():
        path, gen = text.rsplit(':', 1)[0], int(text.rsplit(':', 1)[1])
    if not os.path.isfile(path):
        raise argparse.ArgumentTypeError('%s is not a file (a params log from train.py)' % path)
    return text, path, gen


def episode_weights(spec, num_params, seed, episodes):
    """(episodes, num_params) float32: the controller of each episode."""
    label, path, gen = spec
    if label == 'nothing':
        return np.zeros((episodes, num_params), np.float32)
    if label == 'linear':
        rngs = [np.random.default_rng([seed, i, 7]) for i in range(episodes)]
        return np.stack([LINEAR_SIGMA * rng.standard_normal(num_params) for rng in rngs]).astype(np.float32)
    params = load_params(path, num_params, gen)
    return np.repeat(np.asarray(params, np.float32)[None], episodes, axis=0)


def real_scores(agent, env, weights, seed, label):
    from doomreal import run_episode
    scores = []
    for i in tqdm(range(len(weights)), desc='%s, game' % label, unit='episode', leave=False, disable=None):
        agent.controller.set_params(weights[i])
        scores.append(run_episode(agent, env, seed + i))
    return np.array(scores)


def dream_scores(world, weights, seed, temperature, max_steps):
    rnn, init_mu, init_logvar = world
    # one episode per seed, as model.py doomrnn norender runs them: the same scores as its replay
    return np.array([dream_rollouts(rnn, init_mu, init_logvar, weights[i:i + 1], np.random.default_rng(seed + i),
                                    temperature, max_steps)[0] for i in range(len(weights))])


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split('\n\n', 1)[1])
    add_world_arguments(p)
    p.add_argument('--params', nargs='*', type=controller_spec, default=[],
                   help='controllers besides nothing and linear: FILE or FILE.log.json:GEN (default: none)')
    p.add_argument('--temperature', nargs='+', type=positive_float, default=[1.15],
                   help='dream temperature(s) (default: %(default)s)')
    p.add_argument('--episodes', type=positive_int, default=100, help='episodes of each controller in each world (default: %(default)s)')
    p.add_argument('--seed', type=random_seed, default=2000, help='seed of episode 0 (default: %(default)s)')
    p.add_argument('--max_steps', type=positive_int, default=MAX_STEPS, help='episode cap (default: %(default)s)')
    p.add_argument('--no_game', action='store_true', help='the dream only (the game takes most of the time)')
    p.add_argument('--out', type=output_file, default='', help='also write the scores to this JSON file (default: print only)')
    args = p.parse_args()

    paths = args_world(args)
    world = exit_on_weights_error(load_world, paths)
    num_params = Controller(world[0].z_size, world[0].units).num_params
    specs = [controller_spec('nothing'), controller_spec('linear')] + args.params
    try:
        weights = {spec[0]: episode_weights(spec, num_params, args.seed, args.episodes) for spec in specs}
    except WeightsError as e:
        sys.exit('dream_check.py: %s' % e)
    agent = env = None
    if not args.no_game:
        from doomreal import Agent
        from env import DoomTakeCoverEnv
        agent = exit_on_weights_error(Agent.load, paths)
        env = DoomTakeCoverEnv(max_steps=args.max_steps)

    header = ['controller'] + ([] if args.no_game else ['game']) + ['dream %.2f' % t for t in args.temperature]
    print('%d episodes each, seeds %d-%d, %s' % (args.episodes, args.seed, args.seed + args.episodes - 1,
                                                 ', '.join(paths[name] for name in WORLD_FILES)))
    print(' | '.join(header))
    results = {}
    for label, w in weights.items():
        row = {}
        if env is not None:
            row['game'] = real_scores(agent, env, w, args.seed, label)
        for t in args.temperature:
            row['dream %.2f' % t] = dream_scores(world, w, args.seed, t, args.max_steps)
        print(' | '.join([label] + ['%.1f +/- %.1f' % (s.mean(), s.std()) for s in row.values()]), flush=True)
        results[label] = {k: s.tolist() for k, s in row.items()}
    if env is not None:
        env.close()
    if args.out:   # whole or not at all: a kill or a full disk leaves no half JSON
        with exit_on_write_failure('dream_check.py', 'the figures above are the result'):
            record = {'args': {k: v for k, v in vars(args).items() if k != 'params'},
                      'params': [s[0] for s in args.params], 'scores': results}
            write_atomic(args.out, 'w', lambda f: json.dump(record, f, indent=1))


if __name__ == '__main__':
    main()
