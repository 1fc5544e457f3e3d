"""Replay a trained controller in the real game (doomreal) or in M's dream (doomrnn).

    python model.py doomreal norender log/doomrnn.cma.16.64.best.json      # 100 real episodes
    python model.py doomreal norender log/doomrnn.cma.16.64.best.json 1000 --episodes 1000 --jobs 2
    python model.py doomrnn norender log/doomrnn.cma.16.64.best.json 0     # 100 dream episodes, seed 0
    python model.py doomreal render log/doomrnn.cma.16.64.best.json        # one episode in a window
    python model.py doomrnn render log/doomrnn.cma.16.64.best.json 0 --save dream.gif --every 3 --scale 4

norender prints each episode's score (time steps survived) and `average_reward X stdev Y`;
episode i uses seed + i, so the same command gives the same scores, also when --jobs N plays
N episodes at a time in N processes.

render shows each step's picture: in the real game the game screen, the 64x64 crop V encodes
and V's reconstruction side by side; in the dream V's decoding of the z that M dreamed.
--save writes them to a GIF or MP4 instead (no window, no display needed). In a notebook,
doomreal.replay_pictures(...) and model.dream_pictures(...) return them as arrays.
"""

import os

# One episode at a time means small matrix products: BLAS threads only add overhead.
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')

import argparse  # noqa: E402
import multiprocessing  # noqa: E402
import multiprocessing.util  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

import numpy as np

from doomrnn import MAX_STEPS, MODELS, TEMPERATURE, DoomCoverRNNEnv, dream_rollouts, load_world
from estool import recording
from estool.argtypes import input_file, nonnegative_int, positive_float, positive_int, random_seed
from runtime import Controller, add_world_arguments, args_world, exit_on_weights_error, load_params

FPS = 35   # the game's tics per second; the dream steps one tic at a time too
DREAM_SCALE = 8   # the dream window: 512 x 512


def interrupted(scores):
    """Ctrl-C: the figures that follow are for the episodes that finished."""
    if not scores:
        sys.exit('interrupted before the first episode ended')
    print('interrupted: the figures below are for the first %d episodes' % len(scores))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('world', choices=['doomreal', 'doomrnn'], help='the real game or the dream')
    p.add_argument('mode', choices=['render', 'norender'], help='one episode in a window, or scores only')
    p.add_argument('params_file', type=input_file, help='controller log: log/<name>.best.json ([params, reward]), log/<name>.json, '
                                       'or log/<name>.log.json with --gen')
    # the default is spelled out: parse_intermixed_args hides positional defaults while it parses
    # the options, so %(default)s in this help made -h fail
    p.add_argument('seed', nargs='?', type=random_seed, default=0, help='seed of the first episode (default: 0)')
    p.add_argument('--episodes', type=positive_int, default=100, help='episodes in norender mode (default: %(default)s)')
    add_world_arguments(p)
    p.add_argument('--temperature', type=positive_float, default=TEMPERATURE, help='dream temperature (default: %(default)s)')
    p.add_argument('--max_steps', type=positive_int, default=MAX_STEPS, help='episode cap (default: %(default)s)')
    p.add_argument('--gen', type=nonnegative_int,
                   help='with a .log.json: replay the mean that train.py evaluated at this generation')
    p.add_argument('--jobs', type=positive_int, default=1,
                   help='norender: episodes played side by side in this many processes (default: %(default)s)')
    recording.add_recording_arguments(p, None, '1 in doomreal, %d in doomrnn' % DREAM_SCALE)
    args = p.parse_intermixed_args()   # `... log.json --gen 50 0` as well as `... 0 --gen 50`
    if args.scale is None:
        args.scale = 1.0 if args.world == 'doomreal' else DREAM_SCALE
    if args.mode == 'render':
        recording.check_arguments(p, args)
    elif args.save:
        p.error('--save records render mode (model.py %s render ... --save PATH)' % args.world)

    replayer = Replayer(args)   # bad weights fail here, in one line
    if args.mode == 'render':
        if args.world == 'doomreal':
            from doomreal import render
            try:
                score = render(replayer.agent, replayer.env(), args.seed, args)
            finally:
                replayer.close()
        else:
            score = exit_on_weights_error(play_with_controller, args, replayer.params)
        print('episode 0 score %d' % score, flush=True)
        print('average_reward %.2f stdev %.2f' % (score, 0.0))
        return

    seeds = [args.seed + i for i in range(args.episodes)]
    jobs = min(args.jobs, len(seeds))
    pool = multiprocessing.Pool(jobs, _start_replayer, (args,)) if jobs > 1 else None
    scores = []
    try:
        for i, score in enumerate(pool.imap(_replay, seeds) if pool else map(replayer, seeds)):
            scores.append(score)
            print('episode %d score %d' % (i, score), flush=True)
        if pool:   # each process closes its game as it exits; a game left running would hold stdout open
            pool.close()
            pool.join()
    except KeyboardInterrupt:
        if pool:
            pool.terminate()
        interrupted(scores)
    finally:
        replayer.close()
    print('average_reward %.2f stdev %.2f' % (np.mean(scores), np.std(scores)))


class Replayer:
    """Plays norender episodes of one controller in the real game or the dream: replayer(seed)
    -> steps survived. Built once in each process of a --jobs pool; the game starts at the
    first episode, so the one built to check the weights starts none."""

    def __init__(self, args):
        self.world, self.max_steps, self.temperature = args.world, args.max_steps, args.temperature
        self._env = None
        if args.world == 'doomreal':
            from doomreal import Agent
            self.agent = exit_on_weights_error(Agent.load, args_world(args))
            self.agent.controller.set_params(
                exit_on_weights_error(load_params, args.params_file, self.agent.controller.num_params, args.gen))
        else:
            self.rnn, self.init_mu, self.init_logvar = exit_on_weights_error(load_world, args_world(args))
            self.params = exit_on_weights_error(load_params, args.params_file,
                                                Controller(self.rnn.z_size, self.rnn.units).num_params, args.gen)

    def env(self):
        if self._env is None:
            from env import DoomTakeCoverEnv
            self._env = DoomTakeCoverEnv(max_steps=self.max_steps)
        return self._env

    def __call__(self, seed):
        if self.world == 'doomreal':
            from doomreal import run_episode
            return int(run_episode(self.agent, self.env(), seed))
        # one episode per seed, so scores do not depend on batching or on --jobs
        return int(dream_rollouts(self.rnn, self.init_mu, self.init_logvar, self.params[None],
                                  np.random.default_rng(seed), self.temperature, self.max_steps)[0])

    def close(self):
        if self._env is not None:
            self._env.close()


def _start_replayer(args):
    global _replayer   # one per pool process: the weights are parsed and the game started once
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the parent's to handle
    _replayer = Replayer(args)
    # the game runs in a process of its own: close it when this one ends, also when terminated
    multiprocessing.util.Finalize(_replayer, _replayer.close, exitpriority=0)
    signal.signal(signal.SIGTERM, _closed_on_sigterm)


def _closed_on_sigterm(signum, frame):
    _replayer.close()
    os._exit(0)


def _replay(seed):
    return _replayer(seed)


def dream_steps(env, controller, seed, stats=None):
    """Drive one dream episode with the controller, yielding V's decoding of each dreamed z
    (64, 64, 3) uint8, after each step. stats (a dict) receives 'steps' as it goes."""
    obs, _ = env.reset(seed=seed)
    z, units = env.rnn.z_size, env.rnn.units
    if stats is not None:
        stats['steps'] = 0
    while True:
        action = controller.act(obs[None, :z], obs[None, z:z + units], obs[None, z + units:])
        obs, _, terminated, truncated, _ = env.step(action)
        if stats is not None:
            stats['steps'] = env.steps
        yield env.render()
        if terminated or truncated:
            return


def _dream_env(models, params, temperature, max_steps):
    env = DoomCoverRNNEnv(models, temperature, render_mode='rgb_array', max_steps=max_steps)
    controller = Controller(env.rnn.z_size, env.rnn.units)
    controller.set_params(params)
    return env, controller


def dream_pictures(params_file, seed=0, temperature=TEMPERATURE, max_steps=MAX_STEPS, every=1, scale=1.0,
                   models_dir=MODELS):
    """One dream episode's pictures for a notebook, as `model.py doomrnn render --save` writes
    them (run from doomrnn/). -> (pictures (n, H, W, 3) uint8, steps survived)."""
    rnn = load_world(models_dir)[0]
    env, controller = _dream_env(models_dir, load_params(params_file, Controller(rnn.z_size, rnn.units).num_params),
                                 temperature, max_steps)
    stats = {}
    frames = np.stack(list(recording.pictures(dream_steps(env, controller, seed, stats), every, scale)))
    return frames, stats['steps']


def play_with_controller(args, params):
    """One dream episode driven by the controller, shown through V's decoder (window and/or
    --save) -> steps survived."""
    import sys
    env, controller = _dream_env(args_world(args), params, args.temperature, args.max_steps)
    stats = {}
    try:
        recording.output(dream_steps(env, controller, args.seed, stats), args, FPS,
                         'TakeCover, dreamed by M at temperature %.2f' % args.temperature)
    except KeyboardInterrupt:
        sys.exit('interrupted after %d steps%s' % (stats['steps'], '; nothing saved' if args.save else ''))
    return stats['steps']


if __name__ == '__main__':
    main()
