"""Replay a trained estool policy: a small tanh network on a gymnasium task.

    python model.py cartpole_swingup log/cartpole_swingup.cma.1.16.best.json norender
    python model.py cartpole_swingup log/cartpole_swingup.cma.1.16.best.json render

norender runs --episodes episodes (100 by default) and prints each reward and
`average_reward X stdev Y`; render shows one episode in a window.
"""

import argparse
import json
import os
import sys

import numpy as np

from estool.argtypes import input_file, int_at_least, positive_int, random_seed
from estool.config import GAMES


class Model:
    """Feed-forward policy: tanh hidden layers, then the game's output activation.

    Parameters are one flat vector, layer by layer, each layer's weight matrix
    (in, out) row-major followed by its bias (out,).
    """

    def __init__(self, game):
        self.game = game
        sizes = [game.input_size, *game.layers, game.output_size]
        self.shapes = list(zip(sizes[:-1], sizes[1:]))
        self.num_params = sum(i * o + o for i, o in self.shapes)
        self.weights, self.biases = [], []

    def set_params(self, params):
        params = np.asarray(params, dtype=np.float64)
        assert params.shape == (self.num_params,), params.shape
        self.weights, self.biases = [], []
        at = 0
        for i, o in self.shapes:
            self.weights.append(params[at:at + i * o].reshape(i, o))
            at += i * o
            self.biases.append(params[at:at + o])
            at += o

    def act(self, obs):
        """obs (input_size,) or (batch, input_size) -> action (..., output_size)."""
        h = np.asarray(obs, dtype=np.float64)
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w + b
            if k < last or self.game.output_activation == 'tanh':
                h = np.tanh(h)
        return h


def make_env(game, render_mode=None):
    import gymnasium as gym
    import estool.cartpole_swingup  # noqa: F401  (registers WorldModels/CartPoleSwingUp-v0)
    return gym.make(game.env_id, render_mode=render_mode)


def load_params(path, num_params):
    """First entry of a log JSON ([params] or [params, reward]); exits with one line if unusable."""
    expected = 'a JSON list whose first entry holds %d numbers ([params] or [params, reward])' % num_params
    if not os.path.exists(path):
        sys.exit('%s: no such file (expected %s; train.py writes log/*.json)' % (path, expected))
    if os.path.isdir(path):
        sys.exit('%s is a folder, not a params file (expected %s)' % (path, expected))
    try:
        with open(path) as f:
            data = json.load(f)
        params = np.asarray(data[0], dtype=np.float64)
    except OSError as e:
        sys.exit('%s: cannot read it (%s)' % (path, e.strerror or e))
    except (ValueError, TypeError, IndexError, KeyError) as e:
        sys.exit('%s: malformed params file (%s); expected %s' % (path, type(e).__name__, expected))
    if params.shape != (num_params,):
        sys.exit('%s: holds %s numbers%s; expected %s' % (
            path, params.size, '' if params.ndim == 1 else ' of shape %s' % (params.shape,), expected))
    if not np.all(np.isfinite(params)) or np.abs(params).max() > 1e6:
        sys.exit('%s: holds nan, inf or values beyond 1e6 (a diverged run?); expected %s' % (path, expected))
    return params


def simulate(model, env, seed, max_len=-1):
    """One episode -> (total_reward, steps)."""
    obs, _ = env.reset(seed=int(seed))
    max_len = model.game.max_steps if max_len is None or max_len <= 0 else max_len
    total, steps = 0.0, 0
    for steps in range(1, max_len + 1):
        obs, reward, terminated, truncated, _ = env.step(model.act(obs))
        total += reward
        if terminated or truncated:
            break
    return total, steps


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('game', choices=sorted(GAMES), metavar='game', help='task from config.py: %(choices)s')
    p.add_argument('params_file', type=input_file, help='log/<name>.json ([params]) or log/<name>.best.json ([params, reward])')
    p.add_argument('mode', nargs='?', choices=['render', 'norender'], default='render',
                   help='render: one episode in a window; norender: --episodes episodes, scores only (default: %(default)s)')
    p.add_argument('seed', nargs='?', type=random_seed, default=0, help='seed of the first episode; episode i uses seed+i (default: %(default)s)')
    p.add_argument('--episodes', type=positive_int, default=100, help='episodes in norender mode (default: %(default)s)')
    p.add_argument('--max_len', type=int_at_least(-1), default=-1, help='cap on steps per episode; -1 = the task\'s own limit (default: %(default)s)')
    args = p.parse_args()

    game = GAMES[args.game]
    model = Model(game)
    model.set_params(load_params(args.params_file, model.num_params))
    render = args.mode == 'render'
    if render:
        from estool.recording import check_window
        check_window()   # before the episode: without a display it would play to no one
    env = make_env(game, render_mode='human' if render else None)
    rewards = []
    try:
        for i in range(1 if render else args.episodes):
            reward, steps = simulate(model, env, args.seed + i, args.max_len)
            rewards.append(reward)
            print('episode %d reward %.2f steps %d' % (i, reward, steps), flush=True)
    except KeyboardInterrupt:
        if not rewards:
            sys.exit('interrupted before the first episode ended')
        print('interrupted: the figures below are for the first %d episodes' % len(rewards))
    finally:
        env.close()
    print('average_reward %.2f stdev %.2f' % (np.mean(rewards), np.std(rewards)))


if __name__ == '__main__':
    main()
