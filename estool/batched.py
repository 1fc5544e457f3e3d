"""Episodes stepped as one numpy batch: one random stream per group of rows (GroupedRNG), and the
gymnasium VectorEnv that both experiments' dreams build on (BatchedVectorEnv).

A batched rollout steps B episodes with one matrix product per layer. Each episode (or each
group of episodes, e.g. one solution's) keeps its own np.random.Generator, so a batch gives every
episode the draws it would get alone, whatever else is in the batch.
"""

import numpy as np
from gymnasium.logger import warn
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space


class GroupedRNG:
    """Random draws for a batch whose consecutive rows belong to groups, one generator per
    group: each group gets exactly the numbers its own generator would give for its rows alone,
    whatever the other groups are. A worker dreams the episodes of all its solutions as one
    batch while each solution's episodes stay those of its own generator (so the results do not
    depend on how -n and -t split the population).

    rngs: one np.random.Generator per group; counts: rows of each group, in row order.
    Offers what the dream draws: integers, random, standard_normal; keep(mask) drops rows.
    """

    def __init__(self, rngs, counts):
        self.rngs = list(rngs)
        self.group = np.repeat(np.arange(len(self.rngs)), counts)

    def _draw(self, method, shape, *args, **kwargs):
        counts = np.bincount(self.group, minlength=len(self.rngs))
        parts = [getattr(rng, method)(*args, size=(n,) + tuple(shape[1:]), **kwargs)
                 for rng, n in zip(self.rngs, counts) if n]
        return np.concatenate(parts)

    def integers(self, high, size):
        return self._draw('integers', (size,), high)

    def random(self, shape, dtype=np.float64):
        return self._draw('random', shape, dtype=dtype)

    def standard_normal(self, shape, dtype=np.float64):
        return self._draw('standard_normal', shape, dtype=dtype)

    def keep(self, rows):
        self.group = self.group[rows]


class BatchedVectorEnv(VectorEnv):
    """A gymnasium VectorEnv whose num_envs episodes step together as one numpy batch.

    This class keeps gymnasium's rules; a subclass supplies the model through three methods:
        _start(rows, rng)            begin new episodes in `rows` (int array (n,))
        _advance(rows, actions, rng) one step of the episodes in `rows` (a slice(None) for all, or
                                     an int array (n,)); actions (n, ...) are theirs ->
                                     rewards (n,), terminated (n,) bool
        _observe()                   -> observations (num_envs, ...), a new array
        _render()                    -> each env's picture (num_envs, H, W, 3) uint8 (render_mode
                                     'rgb_array')
    In both, rng is a GroupedRNG whose k-th row draws from the generator of env rows[k] (for one
    row, that generator itself: the same draws).

    The rules, as gymnasium's SyncVectorEnv applies them to single envs:
    - seeding: reset(seed=s) gives env i the generator a single env gets from reset(seed=s + i);
      a list seeds each env; None keeps each env's generator going (a fresh one on first use).
    - truncation: an episode is truncated after max_steps steps unless it terminated then.
    - autoreset (metadata['autoreset_mode']): NEXT_STEP (default) resets an env at the step after
      its episode ended, ignoring its action there (reward 0, not terminated, not truncated);
      SAME_STEP resets it at once, the ended episode's observation in infos['final_obs'] (and
      infos['final_info']); DISABLED leaves it to reset(options={'reset_mask': mask}).
    """

    def __init__(self, num_envs, observation_space, action_space, max_steps, render_mode=None,
                 autoreset_mode=AutoresetMode.NEXT_STEP):
        if num_envs < 1:
            raise ValueError('num_envs must be at least 1, got %r' % (num_envs,))
        self.num_envs = int(num_envs)
        self.single_observation_space, self.single_action_space = observation_space, action_space
        self.observation_space = batch_space(observation_space, self.num_envs)
        self.action_space = batch_space(action_space, self.num_envs)
        if render_mode is not None and render_mode not in self.metadata['render_modes']:
            raise ValueError('render_mode %r: expected None or one of %s' % (render_mode, self.metadata['render_modes']))
        self.render_mode = render_mode
        self.autoreset_mode = AutoresetMode(autoreset_mode)
        # per instance: the class's metadata stays as declared
        self.metadata = dict(self.metadata, autoreset_mode=self.autoreset_mode)
        self.max_steps = max_steps
        self._generators = [None] * self.num_envs
        self._every_rng = None
        self._steps = np.zeros(self.num_envs, np.int64)
        self._ended = np.zeros(self.num_envs, bool)   # episode over, reset pending (NEXT_STEP, DISABLED)
        self._all = np.arange(self.num_envs)

    def _rng(self, rows):
        """A GroupedRNG whose k-th row draws from env rows[k]'s generator (rows: a slice(None)
        or an int array). The one for all envs (every step where no episode ends) is kept until
        a reset replaces a generator."""
        if len(self._all[rows]) == 1:   # one env: its own generator gives the same draws, for less
            return self._generators[self._all[rows][0]]
        if isinstance(rows, slice):
            if self._every_rng is None:
                self._every_rng = GroupedRNG(self._generators, np.ones(self.num_envs, np.int64))
            return self._every_rng
        return GroupedRNG([self._generators[i] for i in rows], np.ones(len(rows), np.int64))

    def reset(self, *, seed=None, options=None):
        """Start a new episode in every env (or in options['reset_mask'] (num_envs,) bool) ->
        observations (num_envs, ...), {}."""
        if seed is None:
            seeds = [None] * self.num_envs
        elif isinstance(seed, (int, np.integer)):
            super().reset(seed=int(seed))
            seeds = [int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError('reset(seed=list): %d seeds for num_envs=%d' % (len(seeds), self.num_envs))
        rows = self._all
        if options and 'reset_mask' in options:
            mask = options['reset_mask']
            if not (isinstance(mask, np.ndarray) and mask.dtype == np.bool_ and mask.shape == (self.num_envs,)):
                raise ValueError("options['reset_mask'] must be a bool array of shape (%d,)" % self.num_envs)
            rows = np.flatnonzero(mask)
        for i in rows:
            if seeds[i] is not None or self._generators[i] is None:
                self._generators[i] = seeding.np_random(seeds[i])[0]
                self._every_rng = None
        self._start(rows, self._rng(rows))
        self._steps[rows] = 0
        self._ended[rows] = False
        return self._observe(), {}

    def step(self, actions):
        """actions (num_envs, ...) -> observations (num_envs, ...), rewards (num_envs,) float64,
        terminations, truncations (num_envs,) bool, infos."""
        actions = np.asarray(actions)
        if actions.shape[:1] != (self.num_envs,):
            raise ValueError('actions of shape %s, expected %s' % (actions.shape, self.action_space.shape))
        rewards = np.zeros(self.num_envs)
        terminated = np.zeros(self.num_envs, bool)
        truncated = np.zeros(self.num_envs, bool)
        if self.autoreset_mode == AutoresetMode.DISABLED and self._ended.any():
            raise RuntimeError('envs %s ended their episodes: reset them first (autoreset_mode DISABLED: '
                               "reset(options={'reset_mask': ...}))" % np.flatnonzero(self._ended).tolist())
        restart = np.flatnonzero(self._ended)
        if len(restart):   # NEXT_STEP: these envs start again and skip this step
            self._start(restart, self._rng(restart))
            self._steps[restart] = 0
            rows = np.flatnonzero(~self._ended)
            self._ended[restart] = False
        else:
            rows = slice(None)   # every env steps: no gathering and scattering of the batch
        if len(self._all[rows]):
            r, t = self._advance(rows, actions[rows], self._rng(rows))
            self._steps[rows] += 1
            rewards[rows], terminated[rows] = r, t
            truncated[rows] = ~terminated[rows] & (self._steps[rows] >= self.max_steps)
        ended = terminated | truncated
        observations, infos = self._observe(), {}
        if self.autoreset_mode == AutoresetMode.SAME_STEP and ended.any():
            done = np.flatnonzero(ended)
            for i in done:
                infos = self._add_info(infos, {'final_obs': observations[i], 'final_info': {}}, i)
            self._start(done, self._rng(done))
            self._steps[done] = 0
            observations = self._observe()
        else:
            self._ended = ended
        return observations, rewards, terminated, truncated, infos

    def render(self):
        """With render_mode 'rgb_array': each env's picture, (num_envs, H, W, 3) uint8."""
        if self.render_mode is None:
            warn('render() without a render_mode: make the env with render_mode="rgb_array"')
            return None
        return self._render()

    def _start(self, rows, rng):
        raise NotImplementedError

    def _advance(self, rows, actions, rng):
        raise NotImplementedError

    def _observe(self):
        raise NotImplementedError

    def _render(self):
        raise NotImplementedError
