"""The world-model agent in the real game: V encodes each frame, M's state steps along, C acts.

    python doomreal.py log/doomrnn.cma.16.64.best.json      # one episode in a window

model.py doomreal runs the same agent over many episodes.
"""

import os

# One episode at a time means small matrix products: BLAS threads only add overhead.
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')

import argparse  # noqa: E402

import numpy as np

from env import MAX_STEPS, DoomTakeCoverEnv
from runtime import MDNRNN, VAE, Controller, WeightsError, exit_on_weights_error, load_params


class Agent:
    """V + M + C in numpy. act(frame) -> action in [-1, 1], and M's state moves on."""

    def __init__(self, vae, rnn):
        if vae.z_size != rnn.z_size:
            raise WeightsError('vae.json has z size %d but rnn.json %d' % (vae.z_size, rnn.z_size))
        self.vae, self.rnn = vae, rnn
        self.controller = Controller(rnn.z_size, rnn.units)

    @classmethod
    def load(cls, models_dir='tf_models'):
        return cls(VAE.load(os.path.join(models_dir, 'vae.json')), MDNRNN.load(os.path.join(models_dir, 'rnn.json')))

    def reset(self, rng):
        self.rng = rng
        self.state = self.rnn.initial_state(1)
        self.restart = np.ones((1, 1), np.float32)

    def act(self, frame):
        """frame (64, 64, 3) uint8 -> action (1,); also returns z for display."""
        z = self.vae.encode(frame[None], self.rng)
        action = self.controller.act(z, *self.state)
        self.state = self.rnn.step(z, action, self.restart, self.state)[4]
        self.restart[:] = 0
        return action[0], z


def run_episode(agent, env, seed, show=None):
    """One real-game episode -> steps survived. show(screen, frame, z) draws, if given."""
    frame, _ = env.reset(seed=seed)
    agent.reset(np.random.default_rng(seed))
    steps = 0
    while True:
        action, z = agent.act(frame)
        if show:
            show(env.screen, frame, z)
        frame, _, terminated, truncated, _ = env.step(action)
        steps += 1
        if terminated or truncated:
            return steps


def window_shower(agent, scale=3):
    """A pygame window: game screen, the 64x64 crop V sees, and V's reconstruction."""
    import pygame
    pygame.display.init()
    state = {}

    def show(screen, frame, z):
        h, w = screen.shape[:2]
        side = h  # crop and reconstruction drawn as h x h squares
        if 'window' not in state:
            state['window'] = pygame.display.set_mode((w + 2 * side, h))
            pygame.display.set_caption('TakeCover: game | 64x64 input | V reconstruction')
            state['clock'] = pygame.time.Clock()
        pygame.event.pump()
        recon = (agent.vae.decode(z)[0] * 255).astype(np.uint8)
        for x, img, size in ((0, screen, (w, h)), (w, frame, (side, side)), (w + side, recon, (side, side))):
            surf = pygame.surfarray.make_surface(np.transpose(img, (1, 0, 2)))
            state['window'].blit(pygame.transform.scale(surf, size), (x, 0))
        pygame.display.flip()
        state['clock'].tick(35)
    return show


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('params_file', help='controller log: log/<name>.best.json or log/<name>.json')
    p.add_argument('--models', default='tf_models', help='folder with vae.json and rnn.json (default: %(default)s)')
    p.add_argument('--seed', type=int, default=0, help='episode seed (default: %(default)s)')
    p.add_argument('--max_steps', type=int, default=MAX_STEPS, help='episode cap (default: %(default)s)')
    args = p.parse_args()
    agent = exit_on_weights_error(Agent.load, args.models)
    agent.controller.set_params(exit_on_weights_error(load_params, args.params_file, agent.controller.num_params))
    env = DoomTakeCoverEnv(max_steps=args.max_steps)
    steps = run_episode(agent, env, args.seed, window_shower(agent))
    env.close()
    print('survived %d steps' % steps)


if __name__ == '__main__':
    main()
