"""The world-model agent in the real game: V encodes each frame, M's state steps along, C acts.

    python doomreal.py log/doomrnn.cma.16.64.best.json      # one episode in a window
    python doomreal.py log/doomrnn.cma.16.64.best.json --save episode.mp4   # to a file, no window

model.py doomreal runs the same agent over many episodes.
"""

import os

# One episode at a time means small matrix products: BLAS threads only add overhead.
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')

import argparse  # noqa: E402
import sys

import numpy as np

from env import MAX_STEPS, DoomTakeCoverEnv
from estool import recording
from estool.argtypes import input_file, positive_int, random_seed
from runtime import (MDNRNN, MODELS, VAE, Controller, WeightsError, add_world_arguments, args_world,
                     exit_on_weights_error, load_params, world_paths)


FPS = 35            # the game's tics per second: one step is one tic
PICTURE_SCALE = 1   # the window: 800 x 240


class Agent:
    """V + M + C in numpy. act(frame) -> action in [-1, 1], and M's state moves on."""

    def __init__(self, vae, rnn):
        if vae.z_size != rnn.z_size:
            raise WeightsError('V has z size %d but M %d' % (vae.z_size, rnn.z_size))
        self.vae, self.rnn = vae, rnn
        self.controller = Controller(rnn.z_size, rnn.units)

    @classmethod
    def load(cls, models_dir=MODELS):
        """models_dir: a folder with vae.json and rnn.json, or a world_paths dict."""
        paths = world_paths(models_dir)
        vae_path, rnn_path = paths['vae'], paths['rnn']
        vae, rnn = VAE.load(vae_path), MDNRNN.load(rnn_path)
        if vae.z_size != rnn.z_size:
            raise WeightsError('%s has z size %d but %s has %d: V and M of different runs?'
                               % (vae_path, vae.z_size, rnn_path, rnn.z_size))
        return cls(vae, rnn)

    def reset(self, rng):
        self.rng = rng
        self.state = self.rnn.initial_state(1)
        self.restart = np.ones((1, 1), np.float32)

    def act(self, frame):
        """frame (64, 64, 3) uint8 -> action (1,); also returns z for display."""
        z = self.vae.encode(frame[None], self.rng)
        action = self.controller.act(z, *self.state)
        self.state = self.rnn.lstm(z, action, self.restart, self.state)
        self.restart[:] = 0
        return action[0], z


def episode_steps(agent, env, seed, stats=None):
    """Drive one real-game episode, yielding (screen, frame, z) before each action: the game
    screen, the 64x64 frame V encoded and its z. stats (a dict) receives 'steps' as it goes."""
    frame, _ = env.reset(seed=seed)
    agent.reset(np.random.default_rng(seed))
    steps = 0
    if stats is not None:
        stats['steps'] = steps
    while True:
        action, z = agent.act(frame)
        yield env.screen, frame, z
        frame, _, terminated, truncated, _ = env.step(action)
        steps += 1
        if stats is not None:
            stats['steps'] = steps
        if terminated or truncated:
            return


def run_episode(agent, env, seed):
    """One real-game episode -> steps survived (the episode render and --save show)."""
    stats = {}
    for _ in episode_steps(agent, env, seed, stats):
        pass
    return stats['steps']


def picture(agent, screen, frame, z):
    """Game screen, the 64x64 crop V sees and V's reconstruction, side by side at the screen's
    height: (240, 800, 3) uint8 for the 320x240 screen."""
    recon = (agent.vae.decode(z)[0] * 255).astype(np.uint8)
    return recording.side_by_side([screen, frame, recon], screen.shape[0])


def episode_pictures(agent, env, seed, stats=None):
    """One episode's pictures (a generator), the same episode run_episode plays."""
    for screen, frame, z in episode_steps(agent, env, seed, stats):
        yield picture(agent, screen, frame, z)


def replay_pictures(params_file, seed=0, max_steps=MAX_STEPS, every=1, scale=1.0, models_dir=MODELS, gen=None):
    """One episode's pictures for a notebook, as `model.py doomreal render --save` writes them
    (run from doomrnn/). -> (pictures (n, H, W, 3) uint8, steps survived). Show with
    `IPython.display.Image(data=recording.gif_bytes(pictures, FPS / every))`."""
    agent = Agent.load(models_dir)
    agent.controller.set_params(load_params(params_file, agent.controller.num_params, gen))
    env = DoomTakeCoverEnv(max_steps=max_steps)
    stats = {}
    try:
        frames = np.stack(list(recording.pictures(episode_pictures(agent, env, seed, stats), every, scale)))
    finally:
        env.close()
    return frames, stats['steps']


def render(agent, env, seed, args):
    """One episode's pictures to a window and/or to args.save -> steps survived."""
    stats = {}
    try:
        recording.output(episode_pictures(agent, env, seed, stats), args, FPS,
                         'TakeCover: game | 64x64 input | V reconstruction')
    except KeyboardInterrupt:
        sys.exit('interrupted after %d steps%s' % (stats['steps'], '; nothing saved' if args.save else ''))
    return stats['steps']


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('params_file', type=input_file, help='controller log: log/<name>.best.json or log/<name>.json')
    add_world_arguments(p, ('vae', 'rnn'))
    p.add_argument('--seed', type=random_seed, default=0, help='episode seed (default: %(default)s)')
    p.add_argument('--max_steps', type=positive_int, default=MAX_STEPS, help='episode cap (default: %(default)s)')
    recording.add_recording_arguments(p, PICTURE_SCALE)
    args = p.parse_args()
    recording.check_arguments(p, args)
    agent = exit_on_weights_error(Agent.load, args_world(args))
    agent.controller.set_params(exit_on_weights_error(load_params, args.params_file, agent.controller.num_params))
    env = DoomTakeCoverEnv(max_steps=args.max_steps)
    try:
        steps = render(agent, env, args.seed, args)
    finally:
        env.close()
    print('survived %d steps' % steps)


if __name__ == '__main__':
    main()
