"""Time a CarRacing rollout worker's step, piece by piece, and the training of V and M, in one run.

    python bench.py                      # every part, about 7 minutes on 2 cores
    python bench.py --part rollout       # the rollout rows only, about 2 minutes on one core
    python bench.py --part vector        # the dream as a VectorEnv, about 15 s on one core
    python bench.py --part rollout --batch 32 --steps 300
    python bench.py --part train         # V and M training steps per backend
    python bench.py --row m:jax          # one training row: v or m, on tf-onednn, tf or jax

Prints, side by side:
- env: gymnasium's stock CarRacing-v3 and this repo's (env.FastRoadCarRacing) stepped in turn
  with the same actions on the same tracks, ms per step and their ratio;
- agent (V encode + C + M step, numpy): ms per episode-step at batch 1 (model.py's replay)
  and at the batches a train.py worker steps (rollout_batch);
- a worker end to end (env + agent, model.rollout_batch with the shipped agent): episode-steps
  per second on one core;
- the floor: V's encoder FLOPs per frame at this core's measured float32 matrix-product rate;
- the dream as a VectorEnv: gym.make_vec('WorldModels/CarRacingDream-v0', num_envs=N) at 1, 64
  and 512 envs against the single env (gym.make) stepped in a Python loop, shipped M, random
  actions, env-steps per second on one core (estool/vectorbench.py).

Times are CPU seconds of this process (time.process_time), one thread, so other work on the
machine disturbs them less than wall-clock times; ratios are what to compare across machines.

Training, at the paper's sizes: V (z 32) images per second at batch 100, and M (LSTM 256, 5
mixtures) seconds per step of 100 sequences of 1,000 frames, with the optimizers vae_train.py
and rnn_train.py use, on random inputs. Each row runs on TensorFlow with oneDNN on
(tf-onednn, what vae_train.py and rnn_train.py get through tf_cpu.py), with it off (tf), and on
JAX (jax) when JAX is installed, each in a process of its own, using every core; wall-clock
seconds after warm-up steps. Each row gives its FLOPs per step (forward products x 3) and its
fraction of this CPU's float32 matmul rate, timed in the same run.
"""

import os

# One thread: the figures are per core, as a rollout worker runs.
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')

import pin_cpu  # noqa: E402,F401  (the kernels train.py and model.py run)
import argparse  # noqa: E402
import sys
import time

import numpy as np
import pygame
from gymnasium.envs.box2d import car_racing

from env import CarRacingEnv
from estool import trainbench, vectorbench
from estool.argtypes import input_file, positive_int
from model import Agent, rollout_batch
from runtime import DEC_FILTERS, DEC_KERNELS, ENC_FILTERS, ENC_KERNEL, exit_on_weights_error, load_params

SHIPPED = 'log/carracing.cma.16.32.best.json'   # the shipped controller (run 2's best.json)
V_Z, V_BATCH = 32, 100                                            # the paper's V
M_Z, M_UNITS, M_MIXTURES, M_SEQ, M_BATCH = 32, 256, 5, 1000, 100   # the paper's M


def cpu_ms(fn, repeat):
    """CPU milliseconds per call of fn(), over `repeat` calls."""
    start = time.process_time()
    for _ in range(repeat):
        fn()
    return 1000.0 * (time.process_time() - start) / repeat


def bench_env(steps, seeds):
    """Stock and fast env, one step of each in turn, same actions -> ms per step of each."""
    envs = {'stock': CarRacingEnv(fast_render=False), 'fast': CarRacingEnv()}
    seconds = dict.fromkeys(envs, 0.0)
    rng = np.random.default_rng(0)
    for seed in seeds:
        for env in envs.values():
            env.reset(seed=seed)
        for t in range(steps):
            # on the road first (tiles change colour when visited), then anywhere
            action = np.array([0.0, 0.5, 0.0]) if t < 60 else np.array([rng.uniform(-1, 1), rng.uniform(0, 1), 0.0])
            for name, env in envs.items():
                start = time.process_time()
                env.step(action)
                seconds[name] += time.process_time() - start
    return {name: 1000.0 * s / (steps * len(seeds)) for name, s in seconds.items()}


def agent_step_ms(agent, frames, batch, repeat):
    """V encode + C + M step for `batch` episodes (rollout_batch's agent part) -> ms per episode-step."""
    rnn, vae, controller = agent.rnn, agent.vae, agent.controller
    weight = np.repeat(controller.weight[None], batch, axis=0)
    bias = np.repeat(controller.bias[None], batch, axis=0)
    rngs = [np.random.default_rng(i) for i in range(batch)]
    x = frames[np.arange(batch) % len(frames)]
    state = rnn.initial_state(batch)

    def step():
        mu, logvar = vae.encode_mu_logvar(x)
        eps = np.concatenate([r.standard_normal((1, vae.z_size)).astype(np.float32) for r in rngs])
        z = mu + np.exp(logvar / 2.0) * eps
        rnn.step(z, controller.act_batch(z, state[1], weight, bias), state)

    if batch == 1:   # model.py's path
        agent.reset(np.random.default_rng(0))
        return cpu_ms(lambda: agent.act(x[0]), repeat)
    return cpu_ms(step, repeat) / batch


def encoder_flops(z_size):
    """Multiply-adds x 2 of V's encoder for one 64x64x3 frame."""
    flops, size, channels = 0, 64, 3
    for filters in ENC_FILTERS:
        size = (size - ENC_KERNEL) // 2 + 1
        flops += 2 * size * size * ENC_KERNEL * ENC_KERNEL * channels * filters
        channels = filters
    return flops + 2 * 2 * size * size * channels * z_size


def gemm_gflops():
    """This core's float32 matrix-product rate on a product shaped like V's largest layer."""
    a = np.random.default_rng(0).standard_normal((1024, 1024)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((1024, 256)).astype(np.float32)
    ms = cpu_ms(lambda: a @ b, 50)
    return 2 * 1024 * 1024 * 256 / ms / 1e6


def vae_train_flops(z_size, batch):
    """FLOPs of one V training step on `batch` frames: the forward products x 3."""
    return trainbench.conv_vae_train_flops(z_size, batch, ENC_FILTERS, ENC_KERNEL, DEC_FILTERS, DEC_KERNELS)


def m_train_flops():
    # inputs [z, a] of the first seq_len - 1 frames, targets the next z (rnn_train.sample_batch)
    return trainbench.lstm_train_flops(M_BATCH, M_SEQ - 1, M_Z + 3, M_UNITS, M_Z * 3 * M_MIXTURES)


def train_row(name, v_steps, m_steps):
    """One training row in this process -> seconds per step. name: v:BACKEND or m:BACKEND."""
    kind, backend = name.split(':')
    # Keras and TensorFlow are not imported yet: the row's backend can still be chosen.
    os.environ.update(trainbench.BACKENDS[backend])
    import keras
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    if kind == 'v':
        from vae.vae import build_vae
        model = build_vae(V_Z)
        model.compile(optimizer=keras.optimizers.Adam(1e-4))
        x = rng.random((V_BATCH, 64, 64, 3), dtype=np.float32)
        return trainbench.seconds_per_step(lambda: model.train_on_batch(x), 2, v_steps)
    from rnn.rnn import build_rnn, make_loss
    model = build_rnn(M_Z, M_UNITS, M_MIXTURES)
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, 1, 0.99999)
    model.compile(optimizer=keras.optimizers.Adam(schedule, clipvalue=1.0), loss=make_loss(M_Z, M_MIXTURES))
    x = np.concatenate([rng.standard_normal((M_BATCH, M_SEQ - 1, M_Z)),
                        rng.uniform(-1, 1, (M_BATCH, M_SEQ - 1, 3))], axis=-1).astype(np.float32)
    y = rng.standard_normal((M_BATCH, M_SEQ - 1, M_Z)).astype(np.float32)
    return trainbench.seconds_per_step(lambda: model.train_on_batch(x, y), 1, m_steps)


def bench_training(v_steps, m_steps):
    """Every training row, each in its own process, against the matmul rate of this CPU."""
    rows = {'v': ('V  z %d, batch %d' % (V_Z, V_BATCH), vae_train_flops(V_Z, V_BATCH)),
            'm': ('M  LSTM %d, seq %d, batch %d' % (M_UNITS, M_SEQ, M_BATCH), m_train_flops())}
    trainbench.report(__file__, rows, V_BATCH, v_steps, m_steps)


def bench_vector(steps, seed=0):
    """The dream (shipped M) as a VectorEnv at 1, 64 and 512 envs against the single env in a loop."""
    import gym_envs
    exit_on_weights_error(vectorbench.report, gym_envs.CAR_RACING_DREAM, steps, seed)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--params', type=input_file, default=SHIPPED, help='controller for the end-to-end run (default: %(default)s)')
    p.add_argument('--gen', type=int, default=-1,
                   help='with a .log.json: the mean evaluated at this generation; -1 for other files (default: %(default)s)')
    p.add_argument('--steps', type=positive_int, default=300, help='env steps per track in the env comparison (default: %(default)s)')
    p.add_argument('--batch', type=positive_int, default=16,
                   help="a worker's batch (solutions per worker x tracks per solution) for the end-to-end run "
                        '(default: %(default)s)')
    p.add_argument('--worker_steps', type=positive_int, default=200,
                   help='steps of each episode in the end-to-end run (default: %(default)s)')
    p.add_argument('--vector_steps', type=positive_int, default=20000,
                   help='env-steps timed at each VectorEnv size (a tenth for the single env and for 1 env) '
                        '(default: %(default)s)')
    p.add_argument('--part', choices=('all', 'rollout', 'vector', 'train'), default='all',
                   help='the rollout rows, the VectorEnv rows, the training rows or all (default: %(default)s)')
    p.add_argument('--v_steps', type=positive_int, default=10, help='timed V training steps per row (default: %(default)s)')
    p.add_argument('--m_steps', type=positive_int, default=3, help='timed M training steps per row (default: %(default)s)')
    p.add_argument('--row', metavar='NAME',
                   help='run one training row here and print it: v or m, a colon and a backend (%s), e.g. m:jax; '
                        'or peak, the matmul rate' % ', '.join(trainbench.BACKENDS))
    args = p.parse_args()
    if (args.steps < 1 or args.batch < 1 or args.worker_steps < 1 or args.vector_steps < 1 or args.v_steps < 1
            or args.m_steps < 1):
        p.error('--steps, --batch, --worker_steps, --vector_steps, --v_steps and --m_steps must be at least 1')
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
        bench_vector(args.vector_steps)
        return

    agent = exit_on_weights_error(Agent.load)
    agent.controller.set_params(exit_on_weights_error(load_params, args.params, agent.controller.num_params,
                                                                  None if args.gen < 0 else args.gen))

    env_ms = bench_env(args.steps, seeds=(0, 5))
    print('env   stock CarRacing-v3        %6.3f ms/step' % env_ms['stock'])
    print('env   this repo (FastRoad)      %6.3f ms/step   ratio %.3f of stock' % (env_ms['fast'], env_ms['fast'] / env_ms['stock']))

    env = CarRacingEnv()
    frame, _ = env.reset(seed=1)
    frames = [frame]
    for _ in range(63):
        frames.append(env.step(np.array([0.0, 0.4, 0.0]))[0])
    frames = np.stack(frames)
    for batch in sorted({1, 8, 16, 32, 128, args.batch}):
        ms = agent_step_ms(agent, frames, batch, max(3, 256 // batch))
        print('agent batch %-4d                %6.3f ms per episode-step' % (batch, ms))

    canvas = pygame.Surface((car_racing.WINDOW_W, car_racing.WINDOW_H))
    envs = [CarRacingEnv(canvas=canvas) for _ in range(args.batch)]
    params = np.repeat(agent.controller.bias[None], args.batch, axis=0)
    params = np.concatenate([params, np.repeat(agent.controller.weight.reshape(1, -1), args.batch, axis=0)], axis=1)
    start = time.process_time()
    _, steps = rollout_batch(agent, envs, params, np.arange(args.batch) + 10 ** 6, args.worker_steps)
    seconds = time.process_time() - start
    print('worker batch %-4d (env + agent) %6.0f episode-steps/s per core (%.3f ms each, %d steps)'
          % (args.batch, steps.sum() / seconds, 1000 * seconds / steps.sum(), steps.sum()))

    flops = encoder_flops(agent.vae.z_size)
    rate = gemm_gflops()
    print('floor V encoder %.1f MFLOP/frame at %.1f GFLOP/s (float32 matmul, this core) = %.3f ms per episode-step'
          % (flops / 1e6, rate, flops / rate / 1e6))
    if args.part == 'all':
        print()
        bench_vector(args.vector_steps)
        print()
        bench_training(args.v_steps, args.m_steps)


if __name__ == '__main__':
    main()
