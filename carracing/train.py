"""Train the controller C with CMA-ES in the real CarRacing-v3, over MPI.

    python train.py                                        # paper: -o cma -n 64 -t 1 -e 16, until Ctrl-C
    python train.py -n 2 -t 8 -e 4 --max_gen 100           # a 2-core machine (popsize 16)

Needs vae/vae.json and rnn/rnn.json (see README.md). Rollout workers run V, M and C in
numpy. Logs go to log/carracing.<opt>.<num_episode>.<popsize>.*; replay the best with
`python model.py norender log/carracing.cma.16.64.best.json`.
"""

import pin_cpu  # noqa: F401  (before numpy: the same kernels, so the same evaluations, on every CPU)
import argparse  # noqa: E402

import numpy as np
import pygame
from gymnasium.envs.box2d import car_racing

from estool import fanout
from estool.argtypes import input_file, nonnegative_int, positive_int
from estool.resume import file_record
from env import MAX_STEPS, CarRacingEnv
from model import Agent, rollout_batch
from runtime import exit_on_weights_error


def make_evaluator(vae_path, rnn_path, max_steps, stall_steps):
    def build():
        agent = Agent.load(vae_path, rnn_path)
        envs = []   # one per episode of a job, kept between jobs
        canvas = pygame.Surface((car_racing.WINDOW_W, car_racing.WINDOW_H))   # shared: see FastRoadCarRacing

        def evaluate(params, seeds, train_mode, max_len):
            """All k * e episodes of a job in lockstep (model.rollout_batch)."""
            k, e = seeds.shape
            cap = max_steps if max_len <= 0 else min(max_len, max_steps)
            while len(envs) < k * e:
                envs.append(CarRacingEnv(canvas=canvas))
            rewards, steps = rollout_batch(agent, envs, np.repeat(params, e, axis=0), seeds.ravel(), cap,
                                           stall_steps=stall_steps if train_mode else 0)
            return rewards.reshape(k, e), steps.reshape(k, e).astype(np.float64)
        return evaluate
    return build


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--vae', type=input_file, default='vae/vae.json', help='V weights (default: %(default)s)')
    p.add_argument('--rnn', type=input_file, default='rnn/rnn.json', help='M weights (default: %(default)s)')
    p.add_argument('--max_steps', type=positive_int, default=MAX_STEPS, help='steps per episode (default: %(default)s)')
    p.add_argument('--stall_steps', type=nonnegative_int, default=0,
                   help='training episodes end after this many steps without a new tile, charged the '
                        'time penalty of the steps left; evaluations always run in full; 0 = off (default: %(default)s)')
    fanout.add_es_arguments(p, num_worker=64, num_worker_trial=1, num_episode=16, eval_steps=25, sigma_init=0.1)
    args = p.parse_args()
    fanout.check_es_arguments(p, args)
    agent = exit_on_weights_error(Agent.load, args.vae, args.rnn)   # fail here, in one line, not in 64 workers
    # A --resume keeps the world model (by content) and the episodes' rules.
    fanout.run(args, 'carracing', agent.controller.num_params,
               make_evaluator(args.vae, args.rnn, args.max_steps, args.stall_steps),
               same_flags=('max_steps', 'stall_steps'),
               inputs={'vae': file_record(args.vae), 'rnn': file_record(args.rnn)})


if __name__ == '__main__':
    main()
