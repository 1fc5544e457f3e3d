"""CarRacing-v3 for the world model, and the one frame function every stage uses.

Frames: the top 84 of 96 rows (the bottom 12 hold the dashboard), resized to 64x64x3 uint8.
Actions: [steer in [-1, 1], gas in [0, 1], brake in [0, 1]].

    python env.py          # keyboard play: arrows steer, up accelerates, down brakes; Esc quits
"""

import argparse

import gymnasium as gym
import numpy as np
from PIL import Image

MAX_STEPS = 1000
STEP_PENALTY = 0.1   # CarRacing-v3 takes this from the reward at every step


def process_frame(obs):
    """(96, 96, 3) uint8 CarRacing observation -> (64, 64, 3) uint8."""
    img = Image.fromarray(np.ascontiguousarray(obs[:84]))
    return np.asarray(img.resize((64, 64), Image.BILINEAR), dtype=np.uint8)


class CarRacingEnv(gym.Wrapper):
    """CarRacing-v3 returning processed 64x64 frames.

    full_episode=True (extraction) ignores the env's own ending (all tiles visited, or off
    the playfield) and always runs max_steps steps, so every record has the same length.
    """

    def __init__(self, render_mode=None, full_episode=False, max_steps=MAX_STEPS):
        super().__init__(gym.make('CarRacing-v3', render_mode=render_mode, max_episode_steps=None,
                                  disable_env_checker=True))
        self.full_episode = full_episode
        self.max_steps = max_steps
        self.observation_space = gym.spaces.Box(0, 255, (64, 64, 3), dtype=np.uint8)
        self.steps = 0

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.steps = 0
        return process_frame(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(np.asarray(action, dtype=np.float64))
        self.steps += 1
        if self.full_episode:
            terminated = False
        truncated = truncated or self.steps >= self.max_steps
        return process_frame(obs), reward, terminated, truncated, info


def play(max_steps=MAX_STEPS, seed=None, events=None, fps=50):
    """Drive with the arrow keys in a pygame window; prints the score as it goes.
    events: optional callable(step) -> pygame events to post (for tests).
    Returns (total_reward, steps, actions (steps, 3))."""
    import pygame
    env = CarRacingEnv(render_mode='human', max_steps=max_steps)
    env.reset(seed=seed)
    keys = {pygame.K_LEFT: 'left', pygame.K_RIGHT: 'right', pygame.K_UP: 'up', pygame.K_DOWN: 'down'}
    held, actions, total, steps, done = set(), [], 0.0, 0, False
    while not done:
        for e in (events(steps) if events else []):
            pygame.event.post(e)
        for e in pygame.event.get():
            if e.type == pygame.QUIT or (e.type == pygame.KEYDOWN and e.key == pygame.K_ESCAPE):
                done = True
            elif e.type in (pygame.KEYDOWN, pygame.KEYUP) and e.key in keys:
                # Key state from events, not key.get_pressed(), so posted events drive it too.
                (held.add if e.type == pygame.KEYDOWN else held.discard)(keys[e.key])
        steer = ('right' in held) - ('left' in held)
        action = np.array([steer, 1.0 if 'up' in held else 0.0, 0.8 if 'down' in held else 0.0])
        _, reward, terminated, truncated, _ = env.step(action)
        actions.append(action)
        total += reward
        steps += 1
        if steps % 200 == 0 or terminated or truncated:
            print('step %d total_reward %+0.2f' % (steps, total), flush=True)
        done = done or terminated or truncated
    env.close()
    print('score %.2f after %d steps' % (total, steps))
    return total, steps, np.array(actions)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--max_steps', type=int, default=MAX_STEPS, help='episode length (default: %(default)s)')
    p.add_argument('--seed', type=int, default=None, help='track seed (default: a random track)')
    args = p.parse_args()
    play(args.max_steps, args.seed)


if __name__ == '__main__':
    main()
