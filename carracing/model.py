"""Replay a trained controller in CarRacing-v3 with V and M (numpy).

    python model.py norender log/carracing.cma.16.64.best.json       # 100 random tracks
    python model.py norender log/carracing.cma.16.64.best.json 0 --episodes 10 --jobs 2
    python model.py norender log/carracing.cma.16.64.log.json --gen 300   # a logged evaluation's mean
    python model.py render log/carracing.cma.16.64.best.json         # one track in a window

norender prints each episode's score and `average_reward X stdev Y`; episode i uses track
seed + i, so the same command gives the same scores, also when --jobs N drives N tracks at a
time. --profile adds the time per step spent in the environment and in the agent (V + M + C).
"""

import os

# One episode at a time means small matrix products: BLAS threads only add overhead.
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')

import pin_cpu  # noqa: E402,F401  (before numpy: the same kernels, so the same scores, on every CPU)
import argparse  # noqa: E402
import multiprocessing
import signal
import sys
import time

import numpy as np

from env import MAX_STEPS, STEP_PENALTY, CarRacingEnv
from runtime import MDNRNN, VAE, Controller, WeightsError, exit_on_weights_error, load_params


class Agent:
    """V + M + C in numpy: act(frame) -> action (3,), and M's state moves on."""

    def __init__(self, vae, rnn):
        if vae.z_size != rnn.z_size:
            raise WeightsError('vae.json has z size %d but rnn.json %d' % (vae.z_size, rnn.z_size))
        self.vae, self.rnn = vae, rnn
        self.controller = Controller(rnn.z_size, rnn.units)

    @classmethod
    def load(cls, vae_path='vae/vae.json', rnn_path='rnn/rnn.json'):
        return cls(VAE.load(vae_path), MDNRNN.load(rnn_path))

    def reset(self, rng):
        self.rng = rng
        self.state = self.rnn.initial_state(1)

    def act(self, frame):
        z = self.vae.encode(frame[None], self.rng)
        action = self.controller.act(z, self.state[1])
        self.state = self.rnn.step(z, action, self.state)
        return action[0]


def rollout(agent, env, seed, max_steps=MAX_STEPS, timing=None, stall_steps=0):
    """One episode on track `seed` -> (total_reward, steps). timing: dict that collects seconds.

    stall_steps > 0 ends the episode after that many steps in a row without a new track tile
    and adds the time penalty (-0.1 a step) of the steps left: the score the full episode
    would give if no tile followed, without spending the env's time to find that out.
    """
    frame, _ = env.reset(seed=int(seed))
    agent.reset(np.random.default_rng(int(seed)))
    total, steps, stalled = 0.0, 0, 0
    t_agent = t_env = 0.0
    while steps < max_steps:
        t0 = time.perf_counter()
        action = agent.act(frame)
        t1 = time.perf_counter()
        frame, reward, terminated, truncated, _ = env.step(action)
        t_env += time.perf_counter() - t1
        t_agent += t1 - t0
        total += reward
        steps += 1
        if terminated or truncated:
            break
        stalled = stalled + 1 if reward < 0 else 0
        if stall_steps and stalled >= stall_steps:
            total -= STEP_PENALTY * (max_steps - steps)
            break
    if timing is not None:
        timing['agent'] = timing.get('agent', 0.0) + t_agent
        timing['env'] = timing.get('env', 0.0) + t_env
        timing['steps'] = timing.get('steps', 0) + steps
    return total, steps


class EpisodeRunner:
    """Drives episodes of one controller; built once in each process of a --jobs pool."""

    def __init__(self, args):
        self.agent = exit_on_weights_error(Agent.load, args.vae, args.rnn)
        self.agent.controller.set_params(
            exit_on_weights_error(load_params, args.params_file, self.agent.controller.num_params, args.gen))
        self.env = CarRacingEnv(render_mode='human' if args.mode == 'render' else None, max_steps=args.max_steps)
        self.max_steps = args.max_steps

    def __call__(self, seed):
        """-> (score, steps, timing dict)"""
        timing = {}
        score, steps = rollout(self.agent, self.env, seed, self.max_steps, timing)
        return score, steps, timing


def _start_runner(args):
    global _runner   # one per pool process: the weights are parsed once, not once per episode
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the parent's to handle
    _runner = EpisodeRunner(args)


def _run_episode(seed):
    return _runner(seed)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('mode', choices=['render', 'norender'], help='one episode in a window, or scores only')
    p.add_argument('params_file', help='controller log: log/<name>.best.json ([params, reward]), log/<name>.json, '
                                       'or log/<name>.log.json with --gen')
    p.add_argument('seed', nargs='?', type=int, default=0, help='track seed of the first episode (default: %(default)s)')
    p.add_argument('--episodes', type=int, default=100, help='episodes in norender mode (default: %(default)s)')
    p.add_argument('--vae', default='vae/vae.json', help='V weights (default: %(default)s)')
    p.add_argument('--rnn', default='rnn/rnn.json', help='M weights (default: %(default)s)')
    p.add_argument('--max_steps', type=int, default=MAX_STEPS, help='steps per episode (default: %(default)s)')
    p.add_argument('--gen', type=int,
                   help='with a .log.json: replay the mean that train.py evaluated at this generation')
    p.add_argument('--jobs', type=int, default=1,
                   help='norender: episodes run side by side in this many processes (default: %(default)s)')
    p.add_argument('--profile', action='store_true', help='print ms per step in the env and in the agent')
    args = p.parse_intermixed_args()   # `... log.json --gen 140 0` as well as `... 0 --gen 140`
    if args.episodes < 1 or args.jobs < 1:
        p.error('--episodes and --jobs must be at least 1')

    runner = EpisodeRunner(args)   # in this process too: bad weights fail here, in one line
    seeds = [args.seed + i for i in range(1 if args.mode == 'render' else args.episodes)]
    jobs = min(args.jobs, len(seeds))
    pool = multiprocessing.Pool(jobs, _start_runner, (args,)) if jobs > 1 else None
    scores, timing = [], {}
    try:
        for i, (score, steps, t) in enumerate(pool.imap(_run_episode, seeds) if pool else map(runner, seeds)):
            scores.append(score)
            for k, v in t.items():
                timing[k] = timing.get(k, 0) + v
            print('episode %d score %.2f steps %d' % (i, score, steps), flush=True)
    except KeyboardInterrupt:
        if scores:
            print('interrupted: the figures below are for the first %d episodes' % len(scores))
    finally:
        if pool:
            pool.terminate()
        runner.env.close()
    if not scores:
        sys.exit('interrupted before the first episode ended')
    if args.profile:
        print('per step: env %.2f ms, agent %.2f ms (%d steps)' % (
            1000 * timing['env'] / timing['steps'], 1000 * timing['agent'] / timing['steps'], timing['steps']))
    print('average_reward %.2f stdev %.2f' % (np.mean(scores), np.std(scores)))


if __name__ == '__main__':
    main()
