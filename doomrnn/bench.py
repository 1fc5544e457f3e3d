"""Time the dream (batched rollouts of the shipped M) and the training of V and M, each
against its floor.

    python bench.py                      # every part, about 6 minutes on 2 cores
    python bench.py --part dream         # the dream only, about a minute on one core
    python bench.py --part vector        # the dream as a VectorEnv, about 15 s on one core
    python bench.py --part train         # V and M training steps per backend
    python bench.py --row m:jax          # one training row: v or m, on tf-onednn, tf or jax

Dream: episode-steps per second on one core at batch 1, 64 and 512 (train.py's workers step
all of their episodes as one batch: -t 32 -e 16 is 512), with the shipped M and the shipped
controller, next to the floor: the time of the product [z, a, restart, h] @ kernel alone at
batch 512, which every dream step must pay. Times are CPU seconds of this process
(time.process_time), one thread.

VectorEnv: gym.make_vec('WorldModels/TakeCoverDream-v0', num_envs=N) at 1, 64 and 512 envs
against the single env (gym.make) stepped in a Python loop, shipped M, random actions:
env-steps per second on one core (estool/vectorbench.py).

Training, at the paper's sizes: V (z 64) images per second at batch 100, and M (LSTM 512, 5
mixtures) seconds per step of 100 sequences of 500 steps, with the optimizers vae_train.py
and rnn_train.py use, on random inputs. Each row runs on TensorFlow with oneDNN on
(tf-onednn, what vae_train.py and rnn_train.py get through tf_cpu.py), with it off (tf), and on
JAX (jax) when JAX is installed, each in a process of its own, using every core; wall-clock
seconds after warm-up steps. Each row gives its FLOPs per step (forward products x 3) and its
fraction of this CPU's float32 matmul rate, timed in the same run.
"""

import os

# One thread: the figures are per core, as a rollout worker runs.
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')

import argparse  # noqa: E402
import sys
import time

import numpy as np

from doomrnn import MODELS, dream_rollouts, load_world
from estool import trainbench, vectorbench
from estool.argtypes import input_dir, input_file, positive_int, random_seed
from runtime import DEC_FILTERS, DEC_KERNELS, ENC_FILTERS, ENC_KERNEL, Controller, exit_on_weights_error, load_params

SHIPPED = 'log/doomrnn.cma.16.64.log.json'   # with --gen 50: the shipped controller
V_Z, V_BATCH = 64, 100                                           # the paper's V
M_Z, M_UNITS, M_MIXTURES, M_SEQ, M_BATCH = 64, 512, 5, 500, 100   # the paper's M


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


def vae_train_flops(z_size, batch):
    """FLOPs of one V training step on `batch` frames: the forward products x 3."""
    return trainbench.conv_vae_train_flops(z_size, batch, ENC_FILTERS, ENC_KERNEL, DEC_FILTERS, DEC_KERNELS)


def m_train_flops():
    return trainbench.lstm_train_flops(M_BATCH, M_SEQ, M_Z + 2, M_UNITS, 1 + M_Z * 3 * M_MIXTURES)


def train_row(name, v_steps, m_steps):
    """One training row in this process -> seconds per step. name: v:BACKEND or m:BACKEND."""
    kind, backend = name.split(':')
    # Keras and TensorFlow are not imported yet: the row's backend can still be chosen.
    os.environ.update(trainbench.BACKENDS[backend])
    import keras
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    if kind == 'v':
        from vae import build_vae
        model = build_vae(V_Z)
        model.compile(optimizer=keras.optimizers.Adam(1e-4))
        x = rng.random((V_BATCH, 64, 64, 3), dtype=np.float32)
        return trainbench.seconds_per_step(lambda: model.train_on_batch(x), 2, v_steps)
    from rnn import build_rnn, make_loss
    model = build_rnn(M_Z, M_UNITS, M_MIXTURES)
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, 1, 0.99999)
    model.compile(optimizer=keras.optimizers.Adam(schedule, clipvalue=1.0), loss=make_loss(M_Z, M_MIXTURES, 10.0))
    x = rng.standard_normal((M_BATCH, M_SEQ, M_Z + 2)).astype(np.float32)
    done = (rng.random((M_BATCH, M_SEQ)) < 0.005).astype(np.float32)   # an episode end every ~200 steps
    x[..., -2], x[..., -1] = rng.uniform(-1, 1, (M_BATCH, M_SEQ)), np.roll(done, 1, axis=1)
    y = np.concatenate([rng.standard_normal((M_BATCH, M_SEQ, M_Z)).astype(np.float32),
                        done[..., None], 1 - done[..., None]], axis=-1)
    return trainbench.seconds_per_step(lambda: model.train_on_batch(x, y), 1, m_steps)


def bench_training(v_steps, m_steps):
    """Every training row, each in its own process, against the matmul rate of this CPU."""
    rows = {'v': ('V  z %d, batch %d' % (V_Z, V_BATCH), vae_train_flops(V_Z, V_BATCH)),
            'm': ('M  LSTM %d, seq %d, batch %d' % (M_UNITS, M_SEQ, M_BATCH), m_train_flops())}
    trainbench.report(__file__, rows, V_BATCH, v_steps, m_steps)


def bench_vector(models_dir, steps, seed):
    """The dream as a VectorEnv at 1, 64 and 512 envs against the single env in a loop."""
    import gym_envs
    exit_on_weights_error(vectorbench.report, gym_envs.TAKE_COVER_DREAM, steps, seed, models_dir=models_dir)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--models', type=input_dir, default=MODELS, help='folder with rnn.json and initial_z.json (default: %(default)s)')
    p.add_argument('--params', type=input_file, default=SHIPPED, help='controller (default: %(default)s)')
    p.add_argument('--gen', type=int, default=50,
                   help='with a .log.json: the mean evaluated at this generation; -1 for other files (default: %(default)s)')
    p.add_argument('--steps', type=positive_int, default=30000,
                   help='episode-steps timed at each batch size (default: %(default)s)')
    p.add_argument('--seed', type=random_seed, default=0, help='seed of the dreams (default: %(default)s)')
    p.add_argument('--vector_steps', type=positive_int, default=20000,
                   help='env-steps timed at each VectorEnv size (a tenth for the single env and for 1 env) '
                        '(default: %(default)s)')
    p.add_argument('--part', choices=('all', 'dream', 'vector', 'train'), default='all',
                   help='the dream rows, the VectorEnv rows, the training rows or all (default: %(default)s)')
    p.add_argument('--v_steps', type=positive_int, default=10, help='timed V training steps per row (default: %(default)s)')
    p.add_argument('--m_steps', type=positive_int, default=3, help='timed M training steps per row (default: %(default)s)')
    p.add_argument('--row', metavar='NAME',
                   help='run one training row here and print it: v or m, a colon and a backend (%s), e.g. m:jax; '
                        'or peak, the matmul rate' % ', '.join(trainbench.BACKENDS))
    args = p.parse_args()
    if args.steps < 1 or args.vector_steps < 1 or args.v_steps < 1 or args.m_steps < 1:
        p.error('--steps, --vector_steps, --v_steps and --m_steps must be at least 1')
    if args.row == 'peak':
        trainbench.print_row('peak', None, {'gflops': trainbench.matmul_gflops()})
        return
    if args.row:
        kind, _, backend = args.row.partition(':')
        if kind not in ('v', 'm') or backend not in trainbench.BACKENDS:
            p.error('--row %s: expected v or m, a colon and one of %s (e.g. m:jax), or peak'
                    % (args.row, ', '.join(trainbench.BACKENDS)))
        if backend not in trainbench.backends():
            sys.exit('bench.py: --row %s: JAX is not installed (pip install jax)' % args.row)
        trainbench.print_row(args.row, train_row(args.row, args.v_steps, args.m_steps))
        return
    if args.part == 'train':
        bench_training(args.v_steps, args.m_steps)
        return
    if args.part == 'vector':
        bench_vector(args.models, args.vector_steps, args.seed)
        return
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
    if args.part == 'all':
        print()
        bench_vector(args.models, args.vector_steps, args.seed)
        print()
        bench_training(args.v_steps, args.m_steps)


if __name__ == '__main__':
    main()
