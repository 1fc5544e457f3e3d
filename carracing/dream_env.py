"""CarRacing dreamed by M: a gymnasium env whose frames come from M's samples, seen through V.

M predicts the next z from [z, action] and its LSTM state; sampling its mixture at a
temperature gives the next z. The CarRacing M models no reward and no ending, so the dream
only runs (reward 0) until max_steps: it is for looking at what M learned, e.g. with
dream_model.py. Observation: [z, h], as the controller sees in the real environment.
"""

import gymnasium as gym
import numpy as np

from runtime import MDNRNN, VAE, WeightsError, load_initial_z, sample_mdn


class CarRacingDreamEnv(gym.Env):
    metadata = {'render_modes': ['rgb_array'], 'render_fps': 50}

    def __init__(self, vae_path='vae/vae.json', rnn_path='rnn/rnn.json',
                 initial_z_path='initial_z/initial_z.json', temperature=1.0, max_steps=1000):
        self.vae, self.rnn = VAE.load(vae_path), MDNRNN.load(rnn_path)
        self.init_mu, self.init_logvar = load_initial_z(initial_z_path)
        for path, size in ((vae_path, self.vae.z_size), (initial_z_path, self.init_mu.shape[1])):
            if size != self.rnn.z_size:
                raise WeightsError('%s: z size %d, but %s has %d' % (path, size, rnn_path, self.rnn.z_size))
        self.temperature, self.max_steps = temperature, max_steps
        n = self.rnn.z_size + self.rnn.units
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (n,), dtype=np.float32)
        self.action_space = gym.spaces.Box(np.array([-1, 0, 0], np.float32), np.ones(3, np.float32))

    def _obs(self):
        return np.concatenate([self.z[0], self.state[1][0]])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        i = self.np_random.integers(len(self.init_mu))
        self.z = (self.init_mu[i] + np.exp(self.init_logvar[i] / 2) *
                  self.np_random.standard_normal(self.rnn.z_size)).astype(np.float32)[None]
        self.state = self.rnn.initial_state(1)
        self.steps = 0
        return self._obs(), {}

    def step(self, action):
        self.state = self.rnn.step(self.z, np.asarray(action, np.float32).reshape(1, 3), self.state)
        self.z = sample_mdn(*self.rnn.mixture(self.state[1]), self.temperature, self.np_random)
        self.steps += 1
        return self._obs(), 0.0, False, self.steps >= self.max_steps, {}

    def render(self):
        """V's decoding of the current z: (64, 64, 3) uint8."""
        return (self.vae.decode(self.z)[0] * 255).astype(np.uint8)
