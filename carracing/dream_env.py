"""CarRacing dreamed by M: a gymnasium env, and a gymnasium VectorEnv of many dreams stepped as
one numpy batch, whose frames come from M's samples, seen through V (gym_envs.py registers both).

M predicts the next z from [z, action] and its LSTM state; sampling its mixture at a
temperature gives the next z. The CarRacing M models no reward and no ending, so the dream
only runs (reward 0) until max_steps: it is for looking at what M learned, e.g. with
dream_model.py. Observation: [z, h], as the controller sees in the real environment.
"""

import gymnasium as gym
import numpy as np
from gymnasium.logger import warn
from gymnasium.vector import AutoresetMode

from estool.batched import BatchedVectorEnv
from runtime import MDNRNN, VAE, WeightsError, load_initial_z, sample_mdn

TEMPERATURE, MAX_STEPS = 1.0, 1000


def initial_z(mu, logvar, batch, rng):
    """Sample batch starting z's (batch, z) float32 from random real first frames: mu, logvar (N, z)."""
    pick = rng.integers(len(mu), size=batch)
    return (mu[pick] + np.exp(logvar[pick] / 2) * rng.standard_normal((batch, mu.shape[1]))).astype(np.float32)


def dream_step(rnn, z, action, state, temperature, rng):
    """One step of the dream for a batch, one matrix product per layer of M for all rows:
    z (B, z), action (B, 3), state (c, h) each (B, units) -> next z (B, z) float32, new state."""
    state = rnn.step(z, action, state)
    return sample_mdn(*rnn.mixture(state[1]), temperature, rng), state


class _Dream:
    """What the single and the vector dream share: M, the first frames, V when rendering, the
    spaces of one dream (observation [z, h] (z + units,) float32, action [steer, gas, brake])."""

    metadata = {'render_modes': ['rgb_array'], 'render_fps': 50}

    def _load(self, vae_path, rnn_path, initial_z_path, temperature, render_mode):
        if render_mode is not None and render_mode not in self.metadata['render_modes']:
            raise ValueError("render_mode %r: expected None or 'rgb_array' (for a window: gym.make("
                             "'WorldModels/CarRacingDream-v0', render_mode='human'))" % (render_mode,))
        self.rnn = MDNRNN.load(rnn_path)
        self.init_mu, self.init_logvar = load_initial_z(initial_z_path)
        self.vae = VAE.load(vae_path) if render_mode else None   # only pictures need V
        for path, size in ((vae_path, self.vae and self.vae.z_size), (initial_z_path, self.init_mu.shape[1])):
            if size is not None and size != self.rnn.z_size:
                raise WeightsError('%s: z size %d, but %s has %d' % (path, size, rnn_path, self.rnn.z_size))
        self.temperature = temperature
        self.render_mode = render_mode
        n = self.rnn.z_size + self.rnn.units
        return (gym.spaces.Box(-np.inf, np.inf, (n,), dtype=np.float32),
                gym.spaces.Box(np.array([-1, 0, 0], np.float32), np.ones(3, np.float32)))


class CarRacingDreamEnv(_Dream, gym.Env):
    """One dream at a time. render() (render_mode 'rgb_array'): V's decoding of the current z,
    (64, 64, 3) uint8."""

    def __init__(self, vae_path='vae/vae.json', rnn_path='rnn/rnn.json',
                 initial_z_path='initial_z/initial_z.json', temperature=TEMPERATURE, max_steps=MAX_STEPS,
                 render_mode=None):
        self.observation_space, self.action_space = self._load(vae_path, rnn_path, initial_z_path, temperature,
                                                               render_mode)
        self.max_steps = max_steps

    def _obs(self):
        return np.concatenate([self.z[0], self.state[1][0]])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.z = initial_z(self.init_mu, self.init_logvar, 1, self.np_random)
        self.state = self.rnn.initial_state(1)
        self.steps = 0
        return self._obs(), {}

    def step(self, action):
        self.z, self.state = dream_step(self.rnn, self.z, np.asarray(action, np.float32).reshape(1, 3), self.state,
                                        self.temperature, self.np_random)
        self.steps += 1
        return self._obs(), 0.0, False, self.steps >= self.max_steps, {}

    def render(self):
        """V's decoding of the current z: (64, 64, 3) uint8."""
        if self.render_mode is None:
            warn('render() without a render_mode: make the env with render_mode="rgb_array"')
            return None
        return (self.vae.decode(self.z)[0] * 255).astype(np.uint8)


class CarRacingDreamVectorEnv(_Dream, BatchedVectorEnv):
    """num_envs dreams stepped as one batch: one matrix product per layer of M for all of them
    (dream_step), each env drawing from its own generator.

    Env i of a vector reset with seed s dreams what CarRacingDreamEnv dreams after
    reset(seed=s + i), as gymnasium's SyncVectorEnv seeds its envs, with the same actions, up to
    the rounding of batched products. Observations (num_envs, z + units) float32, actions
    (num_envs, 3), rewards 0, episodes truncated at max_steps; autoreset: BatchedVectorEnv.
    render() (render_mode 'rgb_array'): V's decoding of every env's z, (num_envs, 64, 64, 3) uint8.
    """

    def __init__(self, num_envs=1, vae_path='vae/vae.json', rnn_path='rnn/rnn.json',
                 initial_z_path='initial_z/initial_z.json', temperature=TEMPERATURE, max_steps=MAX_STEPS,
                 render_mode=None, autoreset_mode=AutoresetMode.NEXT_STEP):
        spaces = self._load(vae_path, rnn_path, initial_z_path, temperature, render_mode)
        BatchedVectorEnv.__init__(self, num_envs, *spaces, max_steps, render_mode, autoreset_mode)
        self.z = np.zeros((self.num_envs, self.rnn.z_size), np.float32)
        self.c, self.h = self.rnn.initial_state(self.num_envs)

    def _start(self, rows, rng):
        self.z[rows] = initial_z(self.init_mu, self.init_logvar, len(rows), rng)
        self.c[rows], self.h[rows] = 0.0, 0.0

    def _advance(self, rows, actions, rng):
        n = len(actions)
        z, (c, h) = dream_step(self.rnn, self.z[rows], np.asarray(actions, np.float32).reshape(n, 3),
                               (self.c[rows], self.h[rows]), self.temperature, rng)
        self.z[rows], self.c[rows], self.h[rows] = z, c, h
        return np.zeros(n), np.zeros(n, bool)

    def _observe(self):
        return np.concatenate([self.z, self.h], axis=1)

    def _render(self):
        return (self.vae.decode(self.z) * 255).astype(np.uint8)
