"""Time the dream: batched rollouts of the shipped M against the LSTM's matrix product alone.

    python bench.py                      # about a minute on one core
    python bench.py --steps 200

Prints dream episode-steps per second on one core at batch 1, 64 and 512 (train.py's workers
step all of their episodes as one batch: -t 32 -e 16 is 512), with the shipped M and the
shipped controller, next to the floor: the time of the product [z, a, restart, h] @ kernel
alone at batch 512, which every dream step must pay. Times are CPU seconds of this process
(time.process_time), one thread.
"""

import os

# One thread: the figures are per core, as a rollout worker runs.
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')

import argparse  # noqa: E402
import time

import numpy as np

from doomrnn import MODELS, dream_rollouts, load_world
from runtime import Controller, exit_on_weights_error, load_params

SHIPPED = 'log/doomrnn.cma.16.64.log.json'   # with --gen 50: the shipped controller


def dream_us_per_step(world, params, batch, steps, rng):
    """Dream episodes of `batch` copies of the controller until `steps` episode-steps are done
    -> CPU microseconds per episode-step."""
    rnn, init_mu, init_logvar = world
    weights = np.repeat(params[None], batch, axis=0)
    done, seconds = 0, 0.0
    while done < steps:
        start = time.process_time()
        episode_steps = dream_rollouts(rnn, init_mu, init_logvar, weights, rng, max_len=max(1, steps // batch))
        seconds += time.process_time() - start
        done += int(episode_steps.sum())
    return 1e6 * seconds / done


def matmul_us_per_row(rnn, batch, repeat=50):
    """The LSTM's product alone, into a reused array -> CPU microseconds per row."""
    x = np.random.default_rng(0).standard_normal((batch, rnn.kernel.shape[0])).astype(np.float32)
    out = np.empty((batch, rnn.kernel.shape[1]), np.float32)
    np.matmul(x, rnn.kernel, out=out)
    start = time.process_time()
    for _ in range(repeat):
        np.matmul(x, rnn.kernel, out=out)
    return 1e6 * (time.process_time() - start) / repeat / batch


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--models', default=MODELS, help='folder with rnn.json and initial_z.json (default: %(default)s)')
    p.add_argument('--params', default=SHIPPED, help='controller (default: %(default)s)')
    p.add_argument('--gen', type=int, default=50,
                   help='with a .log.json: the mean evaluated at this generation; -1 for other files (default: %(default)s)')
    p.add_argument('--steps', type=int, default=30000,
                   help='episode-steps timed at each batch size (default: %(default)s)')
    p.add_argument('--seed', type=int, default=0, help='seed of the dreams (default: %(default)s)')
    args = p.parse_args()
    if args.steps < 1:
        p.error('--steps must be at least 1')
    world = exit_on_weights_error(load_world, args.models)
    rnn = world[0]
    params = exit_on_weights_error(load_params, args.params, Controller(rnn.z_size, rnn.units).num_params,
                                  None if args.gen < 0 else args.gen)
    rng = np.random.default_rng(args.seed)

    print('M: z %d, LSTM %d units, %d mixtures; one core' % (rnn.z_size, rnn.units, rnn.num_mixture))
    results = {}
    for batch in (1, 64, 512):
        us = dream_us_per_step(world, params, batch, args.steps if batch > 1 else args.steps // 10, rng)
        results[batch] = us
        print('dream batch %-4d %8.0f episode-steps/s per core  (%6.2f us per episode-step)' % (batch, 1e6 / us, us))
    floor = matmul_us_per_row(rnn, 512)
    print('floor: LSTM product [z, a, restart, h] @ kernel (%d x %d) at batch 512: %.2f us per row'
          % (rnn.kernel.shape[0], rnn.kernel.shape[1], floor))
    print('dream at batch 512 = %.2f x the floor' % (results[512] / floor))


if __name__ == '__main__':
    main()
