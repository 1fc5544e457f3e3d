"""Train the controller C with CMA-ES inside M's dream (at doomrnn.TEMPERATURE), over MPI.

    python train.py                                    # paper: -o cma -n 64 -t 1 -e 16, until Ctrl-C
    python train.py -n 2 -t 32 -e 16 --max_gen 200     # 2-core machine, popsize 64
    python train.py --models tf_models m_later          # each solution's 16 episodes: 8 in each M

Needs tf_models/{rnn,initial_z}.json (from rnn_train.py; see README.md). Logs go to
log/doomrnn.<opt>.<num_episode>.<popsize>.*; each worker steps the e dream episodes of each
solution together as one numpy batch. Evaluate the result in the real game with
`python model.py doomreal norender log/doomrnn.cma.16.64.best.json`.
"""

import argparse

import numpy as np

from estool import fanout
from estool.argtypes import input_dir, input_file, positive_float
from estool.resume import file_record
from doomrnn import MAX_STEPS, MODELS, TEMPERATURE, GroupedRNG, dream_rollouts, load_world
from runtime import Controller, exit_on_weights_error, world_paths


def make_evaluator(worlds_paths, temperature):
    """worlds_paths: a world_paths dict (or folder) per M."""
    def build():
        worlds = [load_world(d) for d in worlds_paths]

        def evaluate(params, seeds, train_mode, max_len):
            """All k * e dream episodes of a job as one batch per M."""
            k, e = seeds.shape
            # One generator per solution, seeded by its episode seeds: a solution dreams the
            # same episodes whichever worker runs it and however -n and -t split the population.
            rngs = [np.random.default_rng(np.random.SeedSequence([int(x) for x in seeds[s]])) for s in range(k)]
            weights = np.repeat(np.asarray(params, np.float32), e, axis=0)           # (k*e, n), solution-major
            # Episode j of each solution is dreamed by M number j % len(worlds), so every
            # solution meets each M equally often and cannot win by exploiting one M's flaws.
            world_of = np.tile(np.arange(e) % len(worlds), k)                         # (k*e,)
            limit = MAX_STEPS if max_len <= 0 else max_len
            steps = np.zeros(k * e, np.int64)
            for i, (rnn, init_mu, init_logvar) in enumerate(worlds):
                rows = world_of == i
                if rows.any():
                    rng = GroupedRNG(rngs, rows.reshape(k, e).sum(axis=1))
                    steps[rows] = dream_rollouts(rnn, init_mu, init_logvar, weights[rows], rng, temperature, limit)
            steps = steps.reshape(k, e)
            return steps.astype(np.float64), steps
        return evaluate
    return build


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--models', nargs='+', type=input_dir, default=[MODELS],
                   help='folder(s) with rnn.json and initial_z.json; with several, the episodes of each '
                        'solution are shared out among their M\'s (default: %(default)s)')
    p.add_argument('--rnn', type=input_file, help="M's weights in place of --models/rnn.json (with one --models)")
    p.add_argument('--initial_z', type=input_file,
                   help="the dream's starting z's in place of --models/initial_z.json (with one --models)")
    p.add_argument('--temperature', type=positive_float, default=TEMPERATURE, help='dream temperature (default: %(default)s)')
    fanout.add_es_arguments(p, num_worker=64, num_worker_trial=1, num_episode=16, eval_steps=25, sigma_init=0.1)
    args = p.parse_args()
    fanout.check_es_arguments(p, args)
    if len(args.models) > 1 and (args.rnn or args.initial_z):
        p.error('--rnn and --initial_z replace the files of one --models folder, not of %d' % len(args.models))
    paths = [world_paths(d, rnn=args.rnn, initial_z=args.initial_z) for d in args.models]
    # Fail here, in one line, not in 64 workers.
    worlds = [exit_on_weights_error(load_world, d) for d in paths]
    sizes = {(rnn.z_size, rnn.units) for rnn, _, _ in worlds}
    if len(sizes) > 1:
        p.error('--models: the M\'s differ in size (z, units): %s' % sorted(sizes))
    num_params = Controller(*sizes.pop()).num_params
    # A --resume keeps the dream: the M's and their first frames (by content), and the temperature.
    dreams = [file_record(d[name]) for d in paths for name in ('rnn', 'initial_z')]
    fanout.run(args, 'doomrnn', num_params, make_evaluator(paths, args.temperature),
               same_flags=('temperature',), inputs={'models': dreams})


if __name__ == '__main__':
    main()
