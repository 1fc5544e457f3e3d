"""Cart-pole swing-up as a gymnasium environment.

The pole starts hanging down; the agent pushes the cart (action in [-1, 1] -> force up to
10 N) to swing the pole up and balance it while keeping the cart near the centre.
Reward per step = (1 + cos theta) / 2 * cos(pi/2 * x / x_limit), so 1000 steps upright
at the centre score 1000. The episode ends early if the cart leaves the track.

Dynamics: a cart of mass M with friction b carrying a uniform rod of mass m and length L,
theta = 0 upright. From the Lagrangian of that system:
    x''     = (4F - 4b x' + 2 m L theta'^2 sin(theta) - 3 m g sin(theta) cos(theta))
              / (4 (M + m) - 3 m cos^2(theta))
    theta'' = 3 / (2L) * (g sin(theta) - cos(theta) x'')
integrated with semi-implicit Euler at dt = 0.01 s.

Registered on import as WorldModels/CartPoleSwingUp-v0:

    import gymnasium as gym, estool.cartpole_swingup
    env = gym.make('WorldModels/CartPoleSwingUp-v0', render_mode='rgb_array', max_steps=500)
"""

import math

import gymnasium as gym
import numpy as np
from gymnasium import spaces

ENV_ID = 'WorldModels/CartPoleSwingUp-v0'


class CartPoleSwingUpEnv(gym.Env):
    metadata = {'render_modes': ['human', 'rgb_array'], 'render_fps': 50}

    gravity = 9.82
    cart_mass = 0.5
    pole_mass = 0.5
    pole_length = 0.6
    friction = 0.1
    force_mag = 10.0
    dt = 0.01
    x_limit = 2.4
    max_steps = 1000

    def __init__(self, render_mode=None, max_steps=1000):
        """Observation [x, x', cos theta, sin theta, theta'] float32, action (1,) in [-1, 1];
        episodes truncated after max_steps steps. render(): (300, 600, 3) uint8 in rgb_array mode."""
        self.max_steps = max_steps
        high = np.array([np.inf] * 5, dtype=np.float32)
        self.observation_space = spaces.Box(-high, high, dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.render_mode = render_mode
        self.state = None
        self.steps = 0
        self._screen = None
        self._clock = None

    def _obs(self):
        x, x_dot, theta, theta_dot = self.state
        return np.array([x, x_dot, math.cos(theta), math.sin(theta), theta_dot], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        x, x_dot, theta, theta_dot = self.np_random.normal(0.0, 0.2, size=4)
        self.state = [float(x), float(x_dot), math.pi + float(theta), float(theta_dot)]
        self.steps = 0
        if self.render_mode == 'human':
            self.render()
        return self._obs(), {}

    def step(self, action):
        force = self.force_mag * float(np.clip(np.asarray(action, dtype=np.float64).reshape(-1)[0], -1, 1))
        x, x_dot, theta, theta_dot = self.state
        m, big_m, length, g, b = self.pole_mass, self.cart_mass, self.pole_length, self.gravity, self.friction
        s, c = math.sin(theta), math.cos(theta)
        x_acc = (4 * force - 4 * b * x_dot + 2 * m * length * theta_dot ** 2 * s - 3 * m * g * s * c) / (
            4 * (big_m + m) - 3 * m * c * c)
        theta_acc = 1.5 / length * (g * s - c * x_acc)
        x_dot += x_acc * self.dt
        theta_dot += theta_acc * self.dt
        x += x_dot * self.dt
        theta += theta_dot * self.dt
        self.state = [x, x_dot, theta, theta_dot]
        self.steps += 1

        terminated = abs(x) > self.x_limit
        reward = 0.0 if terminated else (
            (1.0 + math.cos(theta)) / 2.0 * math.cos(math.pi / 2 * x / self.x_limit))
        truncated = self.steps >= self.max_steps
        if self.render_mode == 'human':
            self.render()
        return self._obs(), reward, terminated, truncated, {}

    def render(self):
        import pygame

        width, height, scale = 600, 300, 600 / (2 * self.x_limit + 1.0)
        if self._screen is None:
            pygame.display.init()
            if self.render_mode == 'human':
                pygame.display.set_caption('cart-pole swing-up')
                self._screen = pygame.display.set_mode((width, height))
            else:
                self._screen = pygame.Surface((width, height))
            self._clock = pygame.time.Clock()
        x, _, theta, _ = self.state
        surf = self._screen
        surf.fill((255, 255, 255))
        track_y = height // 2 + 40
        pygame.draw.line(surf, (0, 0, 0), (0, track_y), (width, track_y), 1)
        cart_x = width / 2 + x * scale
        pygame.draw.rect(surf, (60, 60, 200), pygame.Rect(cart_x - 30, track_y - 15, 60, 30))
        tip = (cart_x + math.sin(theta) * self.pole_length * scale * 1.5,
               track_y - math.cos(theta) * self.pole_length * scale * 1.5)
        pygame.draw.line(surf, (200, 120, 40), (cart_x, track_y), tip, 6)
        pygame.draw.circle(surf, (0, 0, 0), (int(cart_x), track_y), 4)
        if self.render_mode == 'human':
            pygame.event.pump()
            pygame.display.flip()
            self._clock.tick(self.metadata['render_fps'])
            return None
        return np.transpose(pygame.surfarray.array3d(surf), (1, 0, 2)).copy()

    def close(self):
        if self._screen is not None:
            import pygame
            pygame.display.quit()
            pygame.quit()
            self._screen = None


if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point=CartPoleSwingUpEnv, max_episode_steps=None)
