"""CarRacing-v3 for the world model, and the one frame function every stage uses.

Frames: the top 84 of 96 rows (the bottom 12 hold the dashboard), resized to 64x64x3 uint8.
Actions: [steer in [-1, 1], gas in [0, 1], brake in [0, 1]].

    python env.py          # keyboard play: arrows steer, up accelerates, down brakes; Esc quits
"""

import argparse
import dataclasses
import math

import gymnasium as gym
import numpy as np
import pygame
from gymnasium.envs.box2d import car_racing
from pygame import gfxdraw
from PIL import Image

from estool.argtypes import positive_int, random_seed

MAX_STEPS = 1000
CROP_ROWS = 84       # rows of the 96x96 observation above the dashboard: what the agent sees
KEPT_ROWS = car_racing.WINDOW_H * CROP_ROWS // car_racing.STATE_H   # window rows they are scaled from
STEP_PENALTY = 0.1   # CarRacing-v3 takes this from the reward at every step


def process_frame(obs):
    """(96, 96, 3) uint8 CarRacing observation -> (64, 64, 3) uint8."""
    img = Image.fromarray(np.ascontiguousarray(obs[:CROP_ROWS]))
    return np.asarray(img.resize((64, 64), Image.BILINEAR), dtype=np.uint8)


class FastRoadCarRacing(car_racing.CarRacing):
    """gymnasium's CarRacing-v3 with the same observations and rewards, for less work per step.

    Two changes, both pixel-identical where it matters (tests/test_carracing.py drives this env
    and the stock one side by side and compares the processed frames and the rewards):
    - the road and grass: every frame the stock `_render_road` rotates, scales and culls about
      800 polygons one pygame Vector2 at a time in Python. This does the same float64 arithmetic
      on all vertices at once and makes the same gfxdraw calls, with the same coordinates and
      colours, in the same order.
    - the state frame (`state_pixels`, what `step` returns): the stock env draws the dashboard
      and the score text, flips the whole 1000x800 surface and smooth-scales it to 96x96. The
      agent sees only the top 84 rows of those 96, which come from the top 700 rows of the
      flipped surface, and the dashboard lies below them. This scales just those 700 rows (the
      same smoothscale, the same source rows: the same pixels), narrows them before flipping, and
      leaves the 12 dashboard rows black. The background is one fill when the field covers the
      window (all but the edges of the playfield). Windows (`human`) and `rgb_array` frames are
      the stock ones.

    canvas: a pygame Surface of the window's size to draw the state frames on. Envs stepped in
    turn by one process (a rollout worker's batch) can share one, which keeps the drawing in
    the CPU's cache; by default each env has its own.
    """

    def __init__(self, *args, canvas=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.canvas = canvas if canvas is not None else pygame.Surface((car_racing.WINDOW_W, car_racing.WINDOW_H))

    def _render_road(self, zoom, translation, angle):
        field = car_racing.PLAYFIELD
        corners = [(field, field), (field, -field), (-field, -field), (-field, field)]
        if self._covers_surface(corners, zoom, translation, angle):
            # what the polygon would paint, as one memset; rows that never reach a state frame are left
            top = self.surf.get_height() - KEPT_ROWS if self.surf is getattr(self, 'canvas', None) else 0
            self.surf.fill([int(c) for c in self.bg_color], (0, top, self.surf.get_width(), self.surf.get_height() - top))
        else:
            self.surf.fill((0, 0, 0))
            self._draw_colored_polygon(self.surf, corners, self.bg_color, zoom, translation, angle, clip=False)
        if getattr(self, '_road_source', None) is not self.road_poly:
            self._road_source = self.road_poly
            self._vertices = np.concatenate([GRASS_SQUARES, np.array(
                [[tuple(p) for p in poly] for poly, _ in self.road_poly], dtype=np.float64).reshape(-1, 4, 2)])
        vertices = self._vertices
        # cos and sin as pygame's rotate_rad takes them, right-angle special cases included
        cos, sin = pygame.math.Vector2(1.0, 0.0).rotate_rad(angle)
        x, y = vertices[..., 0], vertices[..., 1]
        px = (cos * x - sin * y) * zoom + translation[0]
        py = (sin * x + cos * y) * zoom + translation[1]
        margin = car_racing.MAX_SHAPE_DIM
        inside = ((px >= -margin) & (px <= car_racing.WINDOW_W + margin)
                  & (py >= -margin) & (py <= car_racing.WINDOW_H + margin))
        for i in np.flatnonzero(inside.any(axis=1)):
            poly = list(zip(px[i].tolist(), py[i].tolist()))
            if i < len(GRASS_SQUARES):
                color = self.grass_color
            else:   # read each frame: a tile's colour changes when the car first drives over it
                color = [int(c) for c in self.road_poly[i - len(GRASS_SQUARES)][1]]
            gfxdraw.aapolygon(self.surf, poly, color)
            gfxdraw.filled_polygon(self.surf, poly, color)

    def _covers_surface(self, corners, zoom, translation, angle, margin=2.0):
        """True if the field polygon, placed as `_draw_colored_polygon` places it, contains the
        whole surface with `margin` pixels to spare: its antialiased edges then fall outside, and
        filling it paints every pixel once with its colour."""
        poly = [pygame.math.Vector2(c).rotate_rad(angle) for c in corners]
        poly = [(c[0] * zoom + translation[0], c[1] * zoom + translation[1]) for c in poly]
        w, h = self.surf.get_size()
        sides = set()
        for (x0, y0), (x1, y1) in zip(poly, poly[1:] + poly[:1]):
            length = math.hypot(x1 - x0, y1 - y0)
            for px, py in ((0, 0), (w - 1, 0), (w - 1, h - 1), (0, h - 1)):
                dist = ((x1 - x0) * (py - y0) - (y1 - y0) * (px - x0)) / length   # signed distance to the edge
                if abs(dist) < margin:
                    return False
                sides.add(dist > 0)
        return len(sides) == 1

    def _render(self, mode):
        if mode != 'state_pixels' or 't' not in self.__dict__:
            return super()._render(mode)
        w, h = car_racing.WINDOW_W, car_racing.WINDOW_H
        self.surf = self.canvas   # reused as it is: `_render_road` paints every pixel first
        angle = -self.car.hull.angle
        # The stock camera: zoom in during the first second, the car a quarter up the window
        zoom = 0.1 * car_racing.SCALE * max(1 - self.t, 0) + car_racing.ZOOM * car_racing.SCALE * min(self.t, 1)
        scroll = pygame.math.Vector2((-self.car.hull.position[0] * zoom, -self.car.hull.position[1] * zoom))
        trans = scroll.rotate_rad(angle)
        trans = (w / 2 + trans[0], h / 4 + trans[1])
        self._render_road(zoom, trans, angle)
        self.car.draw(self.surf, zoom, trans, angle, False)
        # Unflipped rows h - KEPT_ROWS.. are the flipped surface's top KEPT_ROWS rows. smoothscale
        # shrinks the width first, row by row, then the height: shrinking the width before the
        # flip gives the same pixels and leaves a tenth of the surface to flip.
        kept = self.surf.subsurface((0, h - KEPT_ROWS, w, KEPT_ROWS))
        narrow = pygame.transform.flip(pygame.transform.smoothscale(kept, (car_racing.STATE_W, KEPT_ROWS)), False, True)
        state = np.zeros((car_racing.STATE_H, car_racing.STATE_W, 3), np.uint8)
        scaled = pygame.transform.smoothscale(narrow, (car_racing.STATE_W, CROP_ROWS))
        state[:CROP_ROWS] = pygame.surfarray.pixels3d(scaled).transpose(1, 0, 2)
        return state


def _grass_squares():
    """The 20 x 20 grass squares CarRacing draws each frame, in its order: (400, 4, 2)."""
    d = car_racing.GRASS_DIM
    return np.array([[(d * x + d, d * y + 0), (d * x + 0, d * y + 0), (d * x + 0, d * y + d), (d * x + d, d * y + d)]
                     for x in range(-20, 20, 2) for y in range(-20, 20, 2)], dtype=np.float64)


GRASS_SQUARES = _grass_squares()


def make_car_racing(render_mode=None, fast_render=True, canvas=None):
    """CarRacing-v3 with its registered settings and wrappers; fast_render swaps in FastRoadCarRacing
    (drawing on `canvas` if given)."""
    spec, kwargs = gym.spec('CarRacing-v3'), {}
    if fast_render:
        spec, kwargs = dataclasses.replace(spec, entry_point=FastRoadCarRacing), {'canvas': canvas}
    return gym.make(spec, render_mode=render_mode, max_episode_steps=None, disable_env_checker=True, **kwargs)


class CarRacingEnv(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """CarRacing-v3 returning processed 64x64 frames: observation (64, 64, 3) uint8, action
    [steer, gas, brake]; render() is the inner env's (render_mode 'rgb_array': the stock
    (400, 600, 3) picture). gym_envs.py registers it as WorldModels/CarRacing-v0.

    full_episode=True (extraction) ignores the env's own ending (all tiles visited, or off
    the playfield) and always runs max_steps steps, so every record has the same length.
    canvas: see FastRoadCarRacing. env: wrap this CarRacing-v3 env instead of making one
    (render_mode, fast_render and canvas are then its own); gymnasium passes it when it
    rebuilds the wrapper from a spec (check_env, EnvSpec.make).
    """

    def __init__(self, render_mode=None, full_episode=False, max_steps=MAX_STEPS, fast_render=True, canvas=None,
                 env=None):
        # Only this wrapper's own arguments: a spec rebuilds the inner env from its own kwargs
        # (render_mode, canvas) and entry point (fast_render), then wraps it with these.
        gym.utils.RecordConstructorArgs.__init__(self, full_episode=full_episode, max_steps=max_steps)
        if env is not None and (render_mode is not None or not fast_render or canvas is not None):
            raise ValueError('CarRacingEnv(env=...): render_mode, fast_render and canvas are the given env\'s own')
        super().__init__(env if env is not None else make_car_racing(render_mode, fast_render, canvas))
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
    p.add_argument('--max_steps', type=positive_int, default=MAX_STEPS, help='episode length (default: %(default)s)')
    p.add_argument('--seed', type=random_seed, default=None, help='track seed (default: a random track)')
    args = p.parse_args()
    play(args.max_steps, args.seed)


if __name__ == '__main__':
    main()
