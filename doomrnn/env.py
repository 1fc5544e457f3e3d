"""VizDoom TakeCover as a gymnasium environment, and the one frame function every stage uses.

Action: one float in [-1, 1]; below -1/3 moves left, above 1/3 moves right, else no button.
One game tic per step, reward 1 per tic alive, episodes capped at 2100 steps (the bundled
take_cover.cfg has no timeout). Observation: the 64x64x3 uint8 frame from process_frame.
render() (render_mode 'rgb_array'): the game screen, (240, 320, 3) uint8; gym_envs.py registers
the env, and gym.make(..., render_mode='human') shows those screens in a pygame window.

    python env.py             # play the real game with the arrow keys
"""

import argparse
import os
import shutil
import tempfile

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from PIL import Image

from estool.argtypes import positive_int

MAX_STEPS = 2100
FRAME_SIZE = 64


def process_frame(screen):
    """(H, W, 3) uint8 game screen -> (64, 64, 3) uint8: keep the top 5/6 (the bottom is the
    status bar area; the 2018 code kept rows 0-400 of 480), then resize."""
    rows = screen.shape[0] * 5 // 6
    img = Image.fromarray(np.ascontiguousarray(screen[:rows]))
    return np.asarray(img.resize((FRAME_SIZE, FRAME_SIZE), Image.BILINEAR), dtype=np.uint8)


def action_to_buttons(action):
    """float in [-1, 1] -> [MOVE_LEFT, MOVE_RIGHT]."""
    a = float(np.asarray(action).reshape(-1)[0])
    return [int(a < -1 / 3), int(a > 1 / 3)]


class DoomTakeCoverEnv(gym.Env):
    # No 'human' mode of its own: vizdoom's window needs a display (without one the engine
    # crashes), while gym.make(..., render_mode='human') wraps the rgb_array pictures in
    # gymnasium's pygame window, which also runs headless (SDL_VIDEODRIVER=dummy).
    metadata = {'render_modes': ['rgb_array'], 'render_fps': 35}

    def __init__(self, render_mode=None, max_steps=MAX_STEPS):
        import vizdoom
        if render_mode is not None and render_mode not in self.metadata['render_modes']:
            raise ValueError("render_mode %r: expected None or 'rgb_array' (for a window: "
                             "gym.make('WorldModels/TakeCover-v0', render_mode='human'))" % (render_mode,))
        self.render_mode = render_mode
        self.max_steps = max_steps
        self.observation_space = spaces.Box(0, 255, (FRAME_SIZE, FRAME_SIZE, 3), dtype=np.uint8)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        game = vizdoom.DoomGame()
        game.load_config(os.path.join(vizdoom.scenarios_path, 'take_cover.cfg'))
        game.set_screen_format(vizdoom.ScreenFormat.RGB24)
        game.set_window_visible(False)
        game.set_sound_enabled(False)
        # The engine writes _vizdoom.ini and a _vizdoom/ folder into its working folder and
        # crashes (SIGSEGV) where it cannot: give it a private temporary folder, so replays
        # and extraction run from a read-only checkout and leave nothing behind.
        self.work_dir = tempfile.mkdtemp(prefix='vizdoom-')
        game.set_doom_config_path(os.path.join(self.work_dir, '_vizdoom.ini'))
        cwd = os.getcwd()
        os.chdir(self.work_dir)
        try:
            game.init()
        finally:
            os.chdir(cwd)
        self.game = game
        self.screen = None
        self.steps = 0

    def _observe(self):
        state = self.game.get_state()
        if state is not None:  # None once the player is dead: keep the last frame
            self.screen = state.screen_buffer
        return process_frame(self.screen)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        # vizdoom takes an unsigned 32-bit seed; draw it from gymnasium's seeded generator.
        self.game.set_seed(int(self.np_random.integers(2 ** 31 - 1)))
        self.game.new_episode()
        self.steps = 0
        return self._observe(), {}

    def step(self, action):
        self.game.make_action(action_to_buttons(action), 1)
        self.steps += 1
        terminated = self.game.is_episode_finished()
        truncated = not terminated and self.steps >= self.max_steps
        return self._observe(), 1.0, terminated, truncated, {}

    def render(self):
        """The game screen after the last reset or step: (240, 320, 3) uint8."""
        if self.render_mode is None:
            gym.logger.warn('render() without a render_mode: make the env with render_mode="rgb_array"')
            return None
        return self.screen

    def close(self):
        self.game.close()
        shutil.rmtree(self.work_dir, ignore_errors=True)


def keyboard_loop(env, frame_of, caption, scale, fps, events=None):
    """Drive env with the arrow keys (left/right; Esc quits) in a pygame window showing
    frame_of(env) scaled up. events: optional callable(step) -> pygame events to post (tests).
    Returns (steps, the action taken at each step)."""
    import pygame
    pygame.display.init()
    h, w = frame_of(env).shape[:2]
    window = pygame.display.set_mode((w * scale, h * scale))
    pygame.display.set_caption(caption)
    clock = pygame.time.Clock()
    held, actions, done = {}, [], False
    while not done:
        for e in (events(len(actions)) if events else []):
            pygame.event.post(e)
        for e in pygame.event.get():
            if e.type == pygame.QUIT or (e.type == pygame.KEYDOWN and e.key == pygame.K_ESCAPE):
                done = True
            elif e.type in (pygame.KEYDOWN, pygame.KEYUP):
                held[e.key] = e.type == pygame.KEYDOWN   # key state from events, so tests can post them
        action = -1.0 if held.get(pygame.K_LEFT) else 1.0 if held.get(pygame.K_RIGHT) else 0.0
        actions.append(action)
        _, _, terminated, truncated, _ = env.step(np.array([action]))
        done = done or terminated or truncated
        frame = pygame.surfarray.make_surface(np.transpose(frame_of(env), (1, 0, 2)))
        window.blit(pygame.transform.scale(frame, (w * scale, h * scale)), (0, 0))
        pygame.display.flip()
        clock.tick(fps)
    pygame.quit()
    return len(actions), actions


def play(max_steps=MAX_STEPS, fps=35, scale=2, events=None):
    """Keyboard play of the real game. Returns (steps survived, the action at each step)."""
    env = DoomTakeCoverEnv(max_steps=max_steps)
    env.reset(seed=0)
    steps, actions = keyboard_loop(env, lambda e: e.screen, 'TakeCover (real game): arrows move, Esc quits',
                                   scale, fps, events)
    env.close()
    print('survived %d steps' % steps)
    return steps, actions


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--max_steps', type=positive_int, default=MAX_STEPS, help='episode cap (default: %(default)s)')
    p.add_argument('--fps', type=positive_int, default=35, help='game speed in frames per second (default: %(default)s)')
    args = p.parse_args()
    play(args.max_steps, args.fps)


if __name__ == '__main__':
    main()
