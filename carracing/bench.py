"""Time a CarRacing rollout worker's step, piece by piece, in one run.

    python bench.py                      # about 2 minutes on one core
    python bench.py --batch 32 --steps 300

Prints, side by side:
- env: gymnasium's stock CarRacing-v3 and this repo's (env.FastRoadCarRacing) stepped in turn
  with the same actions on the same tracks, ms per step and their ratio;
- agent (V encode + C + M step, numpy): ms per episode-step at batch 1 (model.py's replay)
  and at the batches a train.py worker steps (rollout_batch);
- a worker end to end (env + agent, model.rollout_batch with the shipped agent): episode-steps
  per second on one core;
- the floor: V's encoder FLOPs per frame at this core's measured float32 matrix-product rate.

Times are CPU seconds of this process (time.process_time), one thread, so other work on the
machine disturbs them less than wall-clock times; ratios are what to compare across machines.
"""

import os

# One thread: the figures are per core, as a rollout worker runs.
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')

import pin_cpu  # noqa: E402,F401  (the kernels train.py and model.py run)
import argparse  # noqa: E402
import time

import numpy as np
import pygame
from gymnasium.envs.box2d import car_racing

from env import CarRacingEnv
from model import Agent, rollout_batch
from runtime import ENC_FILTERS, ENC_KERNEL, exit_on_weights_error, load_params

SHIPPED = 'log/carracing.cma.16.32.best.json'   # the shipped controller (run 2's best.json)


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


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--params', default=SHIPPED, help='controller for the end-to-end run (default: %(default)s)')
    p.add_argument('--gen', type=int, default=-1,
                   help='with a .log.json: the mean evaluated at this generation; -1 for other files (default: %(default)s)')
    p.add_argument('--steps', type=int, default=300, help='env steps per track in the env comparison (default: %(default)s)')
    p.add_argument('--batch', type=int, default=16,
                   help="a worker's batch (solutions per worker x tracks per solution) for the end-to-end run "
                        '(default: %(default)s)')
    p.add_argument('--worker_steps', type=int, default=200,
                   help='steps of each episode in the end-to-end run (default: %(default)s)')
    args = p.parse_args()
    if args.steps < 1 or args.batch < 1 or args.worker_steps < 1:
        p.error('--steps, --batch and --worker_steps must be at least 1')

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


if __name__ == '__main__':
    main()
