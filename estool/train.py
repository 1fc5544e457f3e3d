"""Train an estool policy on a gymnasium task with an evolution strategy over MPI.

    python train.py cartpole_swingup -n 8 -t 4 -e 1 --sigma_init 1.0

Relaunches itself under `mpiexec -n num_worker+1`; runs until Ctrl-C (or --max_gen).
Logs go to log/<game>.<optimizer>.<num_episode>.<popsize>.*; replay the best with
`python model.py <game> log/<name>.best.json norender`.
"""

import argparse

import numpy as np

from estool import fanout
from estool.config import GAMES
from estool.model import Model, make_env, simulate


def make_evaluator(game_name):
    def build():
        game = GAMES[game_name]
        model = Model(game)
        env = make_env(game)

        def evaluate(params, seeds, train_mode, max_len):
            rewards = np.zeros(seeds.shape)
            steps = np.zeros(seeds.shape)
            for i in range(len(params)):
                model.set_params(params[i])
                for j, seed in enumerate(seeds[i]):
                    rewards[i, j], steps[i, j] = simulate(model, env, seed, max_len)
            return rewards, steps
        return evaluate
    return build


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('game', choices=sorted(GAMES), metavar='game', help='task from config.py: %(choices)s')
    fanout.add_es_arguments(parser, num_worker=8, num_worker_trial=4, num_episode=1)
    args = parser.parse_args()
    fanout.check_es_arguments(parser, args)
    num_params = Model(GAMES[args.game]).num_params
    fanout.run(args, args.game, num_params, make_evaluator(args.game))


if __name__ == '__main__':
    main()
