"""Watch a trained controller drive inside M's dream, shown through V's decoder.

    python dream_model.py log/carracing.cma.16.64.best.json
    python dream_model.py log/carracing.cma.16.64.best.json --temperature 1.15 --steps 500

Needs vae/vae.json, rnn/rnn.json and initial_z/initial_z.json. --no_window runs the same
loop without a window and prints statistics of the dreamed frames and actions.
"""

import os

# One episode at a time means small matrix products: BLAS threads only add overhead.
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')

import argparse  # noqa: E402

import numpy as np

from estool.argtypes import positive_float
from dream_env import CarRacingDreamEnv
from runtime import Controller, exit_on_weights_error, load_params


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('params_file', help='controller log: log/<name>.best.json or log/<name>.json')
    p.add_argument('--vae', default='vae/vae.json', help='V weights (default: %(default)s)')
    p.add_argument('--rnn', default='rnn/rnn.json', help='M weights (default: %(default)s)')
    p.add_argument('--initial_z', default='initial_z/initial_z.json', help='starting z (default: %(default)s)')
    p.add_argument('--temperature', type=positive_float, default=1.0, help='sampling temperature of M (default: %(default)s)')
    p.add_argument('--steps', type=int, default=1000, help='dream steps (default: %(default)s)')
    p.add_argument('--seed', type=int, default=0, help='dream seed (default: %(default)s)')
    p.add_argument('--no_window', action='store_true', help='no window: print statistics only')
    args = p.parse_args()

    env = exit_on_weights_error(CarRacingDreamEnv, args.vae, args.rnn, args.initial_z, args.temperature, args.steps)
    controller = Controller(env.rnn.z_size, env.rnn.units)
    controller.set_params(exit_on_weights_error(load_params, args.params_file, controller.num_params))
    obs, _ = env.reset(seed=args.seed)
    window = None
    if not args.no_window:
        import pygame
        pygame.display.init()
        window = pygame.display.set_mode((512, 512))
        pygame.display.set_caption('CarRacing, dreamed by M (temperature %.2f)' % args.temperature)
        clock = pygame.time.Clock()
    z_size = env.rnn.z_size
    actions, brightness = [], []
    for step in range(args.steps):
        action = controller.act(obs[None, :z_size], obs[None, z_size:])[0]
        obs, _, _, truncated, _ = env.step(action)
        frame = env.render()
        actions.append(action)
        brightness.append(frame.mean())
        if window is not None:
            pygame.event.pump()
            surf = pygame.surfarray.make_surface(np.transpose(frame, (1, 0, 2)))
            window.blit(pygame.transform.scale(surf, (512, 512)), (0, 0))
            pygame.display.flip()
            clock.tick(50)
        if truncated:
            break
    actions = np.array(actions)
    print('dreamed %d steps; mean action steer %.3f gas %.3f brake %.3f; mean frame brightness %.1f' % (
        len(actions), *actions.mean(0), np.mean(brightness)))


if __name__ == '__main__':
    main()
