"""Replay a trained controller in the real game (doomreal) or in M's dream (doomrnn).

    python model.py doomreal norender log/doomrnn.cma.16.64.best.json      # 100 real episodes
    python model.py doomrnn norender log/doomrnn.cma.16.64.best.json 0     # 100 dream episodes, seed 0
    python model.py doomreal render log/doomrnn.cma.16.64.best.json        # one episode in a window

norender prints each episode's score (time steps survived) and `average_reward X stdev Y`;
episode i uses seed + i, so the same command gives the same scores.
"""

import os

# One episode at a time means small matrix products: BLAS threads only add overhead.
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')

import argparse  # noqa: E402

import numpy as np

from doomrnn import MAX_STEPS, MODELS, TEMPERATURE, DoomCoverRNNEnv, dream_rollouts, load_world
from runtime import Controller, exit_on_weights_error, load_params


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('world', choices=['doomreal', 'doomrnn'], help='the real game or the dream')
    p.add_argument('mode', choices=['render', 'norender'], help='one episode in a window, or scores only')
    p.add_argument('params_file', help='controller log: log/<name>.best.json ([params, reward]), log/<name>.json, '
                                       'or log/<name>.log.json with --gen')
    p.add_argument('seed', nargs='?', type=int, default=0, help='seed of the first episode (default: %(default)s)')
    p.add_argument('--episodes', type=int, default=100, help='episodes in norender mode (default: %(default)s)')
    p.add_argument('--models', default=MODELS, help='folder with vae.json, rnn.json, initial_z.json (default: %(default)s)')
    p.add_argument('--temperature', type=float, default=TEMPERATURE, help='dream temperature (default: %(default)s)')
    p.add_argument('--max_steps', type=int, default=MAX_STEPS, help='episode cap (default: %(default)s)')
    p.add_argument('--gen', type=int,
                   help='with a .log.json: replay the mean that train.py evaluated at this generation')
    args = p.parse_intermixed_args()   # `... log.json --gen 50 0` as well as `... 0 --gen 50`

    episodes = 1 if args.mode == 'render' else args.episodes
    if args.world == 'doomreal':
        from doomreal import Agent, run_episode, window_shower
        from env import DoomTakeCoverEnv
        agent = exit_on_weights_error(Agent.load, args.models)
        agent.controller.set_params(
            exit_on_weights_error(load_params, args.params_file, agent.controller.num_params, args.gen))
        env = DoomTakeCoverEnv(max_steps=args.max_steps)
        show = window_shower(agent) if args.mode == 'render' else None
        scores = []
        for i in range(episodes):
            scores.append(run_episode(agent, env, args.seed + i, show))
            print('episode %d score %d' % (i, scores[-1]), flush=True)
        env.close()
    else:
        rnn, init_mu, init_logvar = exit_on_weights_error(load_world, args.models)
        params = exit_on_weights_error(load_params, args.params_file, Controller(rnn.z_size, rnn.units).num_params,
                                       args.gen)
        scores = []
        for i in range(episodes):  # one episode per seed, so scores do not depend on batching
            if args.mode == 'render':
                steps = exit_on_weights_error(play_with_controller, args, params)
            else:
                steps = dream_rollouts(rnn, init_mu, init_logvar, params[None], np.random.default_rng(args.seed + i),
                                       args.temperature, args.max_steps)[0]
            scores.append(int(steps))
            print('episode %d score %d' % (i, scores[-1]), flush=True)
    print('average_reward %.2f stdev %.2f' % (np.mean(scores), np.std(scores)))


def play_with_controller(args, params):
    """One dream episode driven by the controller, shown through V's decoder."""
    import pygame
    env = DoomCoverRNNEnv(args.models, args.temperature, render_mode='human', max_steps=args.max_steps)
    controller = Controller(env.rnn.z_size, env.rnn.units)
    controller.set_params(params)
    obs, _ = env.reset(seed=args.seed)
    pygame.display.init()
    window = pygame.display.set_mode((512, 512))
    clock = pygame.time.Clock()
    z = env.rnn.z_size
    steps = 0
    while True:
        pygame.event.pump()
        action = controller.act(obs[None, :z], obs[None, z:z + env.rnn.units], obs[None, z + env.rnn.units:])
        obs, _, terminated, truncated, _ = env.step(action)
        steps += 1
        frame = pygame.surfarray.make_surface(np.transpose(env.render(), (1, 0, 2)))
        window.blit(pygame.transform.scale(frame, (512, 512)), (0, 0))
        pygame.display.flip()
        clock.tick(35)
        if terminated or truncated:
            pygame.quit()
            return steps


if __name__ == '__main__':
    main()
