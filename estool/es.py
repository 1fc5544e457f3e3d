"""Evolution strategies behind one ask/tell interface.

Every optimizer here maximises rewards:

    solutions = es.ask()            # (popsize, num_params)
    es.tell(rewards)                # (popsize,), one reward per row of solutions
    best_params, best_reward, curr_best_reward, sigma = es.result()

`CMAES` wraps pycma; `SimpleGA`, `OpenES` and `PEPG` are written here. Each owns a
`np.random.Generator` built from its `seed`, so runs are reproducible and never touch
numpy's global generator. Every object pickles, which is how training checkpoints.

Weight decay: an L2 penalty `weight_decay * mean(params**2)` is subtracted from each
reward before the update, so large weights are penalised. (The 2018 copies of es.py
added it with the sign reversed for CMA-ES, rewarding large weights; this repo uses the
corrected sign for every optimizer.)
"""

import numpy as np


def centered_ranks(x):
    """Ranks of x scaled to [-0.5, 0.5]: (n,) -> (n,). Makes updates invariant to reward scale."""
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[np.argsort(x)] = np.arange(len(x))
    if len(x) > 1:
        ranks /= len(x) - 1
    return ranks - 0.5


def l2_penalty(weight_decay, solutions):
    """(popsize, n) -> (popsize,): the amount subtracted from each reward."""
    return weight_decay * np.mean(np.square(solutions), axis=1)


class Adam:
    """Adam that climbs: step() moves params along +grad (Kingma & Ba, 2015)."""

    def __init__(self, num_params, learning_rate, beta1=0.99, beta2=0.999, eps=1e-8):
        self.learning_rate = learning_rate
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m = np.zeros(num_params)
        self.v = np.zeros(num_params)
        self.t = 0

    def step(self, params, grad):
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1 - self.beta2) * grad * grad
        m_hat = self.m / (1 - self.beta1 ** self.t)
        v_hat = self.v / (1 - self.beta2 ** self.t)
        return params + self.learning_rate * m_hat / (np.sqrt(v_hat) + self.eps)


class _BestTracker:
    """Shared bookkeeping: the best raw reward seen and the params that got it."""

    def _init_best(self, num_params):
        self.best_reward = -np.inf
        self.curr_best_reward = -np.inf
        self.best_mu = np.zeros(num_params)

    def _track_best(self, solutions, rewards):
        i = int(np.argmax(rewards))
        self.curr_best_reward = float(rewards[i])
        if self.curr_best_reward > self.best_reward:
            self.best_reward = self.curr_best_reward
            self.best_mu = np.array(solutions[i], dtype=np.float64)

    def best_param(self):
        return self.best_mu

    def result(self):
        """(best_params, best_reward, curr_best_reward, sigma)."""
        return self.best_mu, self.best_reward, self.curr_best_reward, self.sigma


class _GeneratorRandn:
    """pycma's `randn(lam, N)` option, drawn from our own Generator (picklable)."""

    def __init__(self, rng):
        self.rng = rng

    def __call__(self, *shape):
        return self.rng.standard_normal(shape)


class CMAES(_BestTracker):
    """CMA-ES (Hansen, 2016) through pycma's CMAEvolutionStrategy."""

    def __init__(self, num_params, sigma_init=0.10, popsize=255, weight_decay=0.01,
                 seed=1, x0=None):
        import cma

        self.num_params = num_params
        self.popsize = popsize
        self.weight_decay = weight_decay
        self.rng = np.random.default_rng(seed)
        x0 = np.zeros(num_params) if x0 is None else np.asarray(x0, dtype=np.float64)
        # pycma's own `seed` option only reseeds numpy's global generator, and only while
        # `randn` is np.random.randn. We give it a randn drawn from this optimizer's
        # Generator instead and seed=nan ("do nothing"), so the run is reproducible from
        # `seed`, survives pickling, and leaves the global generator alone.
        self.es = cma.CMAEvolutionStrategy(x0, sigma_init, {
            'popsize': popsize, 'seed': np.nan, 'randn': _GeneratorRandn(self.rng),
            'verbose': -9})
        self._init_best(num_params)
        self.solutions = None

    @property
    def sigma(self):
        return float(self.es.sigma)

    def rms_stdev(self):
        return float(np.sqrt(np.mean(np.square(self.es.result.stds))))

    def ask(self):
        self.solutions = np.array(self.es.ask())
        return self.solutions

    def tell(self, rewards):
        rewards = np.asarray(rewards, dtype=np.float64)
        assert rewards.shape == (self.popsize,), 'one reward per solution'
        self._track_best(self.solutions, rewards)
        fitness = rewards - l2_penalty(self.weight_decay, self.solutions)
        self.es.tell(list(self.solutions), (-fitness).tolist())  # pycma minimises

    def current_param(self):
        return np.array(self.es.mean, dtype=np.float64)

    def set_mu(self, mu):
        self.es.mean = np.array(mu, dtype=np.float64)


class SimpleGA(_BestTracker):
    """Truncation-selection GA: children of two random elites (uniform crossover) plus noise."""

    def __init__(self, num_params, sigma_init=0.1, sigma_decay=0.999, sigma_limit=0.01,
                 popsize=256, elite_ratio=0.1, forget_best=False, weight_decay=0.01,
                 seed=1, x0=None):
        self.num_params = num_params
        self.popsize = popsize
        self.sigma = sigma_init
        self.sigma_decay, self.sigma_limit = sigma_decay, sigma_limit
        self.elite_size = max(1, int(popsize * elite_ratio))
        # forget_best: elites compete only within their own generation, which helps when
        # rewards are noisy and a lucky elite would otherwise survive for ever.
        self.forget_best = forget_best
        self.weight_decay = weight_decay
        self.rng = np.random.default_rng(seed)
        x0 = np.zeros(num_params) if x0 is None else np.asarray(x0, dtype=np.float64)
        self.elite_params = np.tile(x0, (self.elite_size, 1))
        self.elite_rewards = np.full(self.elite_size, -np.inf)
        self.first_generation = True
        self._init_best(num_params)
        self.best_mu = x0.copy()
        self.solutions = None

    def rms_stdev(self):
        return float(self.sigma)

    def ask(self):
        parents_a = self.elite_params[self.rng.integers(self.elite_size, size=self.popsize)]
        parents_b = self.elite_params[self.rng.integers(self.elite_size, size=self.popsize)]
        take_b = self.rng.random((self.popsize, self.num_params)) < 0.5
        children = np.where(take_b, parents_b, parents_a)
        noise = self.rng.standard_normal((self.popsize, self.num_params)) * self.sigma
        self.solutions = children + noise
        return self.solutions

    def tell(self, rewards):
        rewards = np.asarray(rewards, dtype=np.float64)
        assert rewards.shape == (self.popsize,), 'one reward per solution'
        self._track_best(self.solutions, rewards)
        fitness = rewards - l2_penalty(self.weight_decay, self.solutions)
        candidates, scores = self.solutions, fitness
        if not (self.forget_best or self.first_generation):
            candidates = np.concatenate([candidates, self.elite_params])
            scores = np.concatenate([scores, self.elite_rewards])
        keep = np.argsort(scores)[::-1][:self.elite_size]
        self.elite_params, self.elite_rewards = candidates[keep], scores[keep]
        self.first_generation = False
        if self.sigma > self.sigma_limit:
            self.sigma *= self.sigma_decay

    def current_param(self):
        return self.elite_params[0].copy()

    def set_mu(self, mu):
        self.elite_params[0] = np.asarray(mu, dtype=np.float64)


class OpenES(_BestTracker):
    """OpenAI-ES (Salimans et al., 2017): Gaussian perturbations, rank-shaped rewards, Adam."""

    def __init__(self, num_params, sigma_init=0.1, sigma_decay=0.999, sigma_limit=0.01,
                 learning_rate=0.01, learning_rate_decay=0.9999, learning_rate_limit=0.001,
                 popsize=256, antithetic=False, weight_decay=0.01, rank_fitness=True,
                 seed=1, x0=None):
        if antithetic and popsize % 2:
            raise ValueError('antithetic sampling needs an even popsize, got %d' % popsize)
        self.num_params = num_params
        self.popsize = popsize
        self.sigma = sigma_init
        self.sigma_decay, self.sigma_limit = sigma_decay, sigma_limit
        self.learning_rate_decay, self.learning_rate_limit = learning_rate_decay, learning_rate_limit
        self.antithetic = antithetic
        self.weight_decay = weight_decay
        self.rank_fitness = rank_fitness
        self.rng = np.random.default_rng(seed)
        self.mu = np.zeros(num_params) if x0 is None else np.array(x0, dtype=np.float64)
        self.optimizer = Adam(num_params, learning_rate)
        self._init_best(num_params)
        self.epsilon = None

    def rms_stdev(self):
        return float(self.sigma)

    def ask(self):
        if self.antithetic:
            half = self.rng.standard_normal((self.popsize // 2, self.num_params))
            self.epsilon = np.concatenate([half, -half])
        else:
            self.epsilon = self.rng.standard_normal((self.popsize, self.num_params))
        return self.mu + self.sigma * self.epsilon

    def tell(self, rewards):
        rewards = np.asarray(rewards, dtype=np.float64)
        assert rewards.shape == (self.popsize,), 'one reward per solution'
        solutions = self.mu + self.sigma * self.epsilon
        self._track_best(solutions, rewards)
        fitness = rewards - l2_penalty(self.weight_decay, solutions)
        if self.rank_fitness:
            fitness = centered_ranks(fitness)
        else:
            fitness = (fitness - fitness.mean()) / (fitness.std() + 1e-12)
        grad = self.epsilon.T @ fitness / (self.popsize * self.sigma)
        self.mu = self.optimizer.step(self.mu, grad)
        if self.sigma > self.sigma_limit:
            self.sigma *= self.sigma_decay
        if self.optimizer.learning_rate > self.learning_rate_limit:
            self.optimizer.learning_rate *= self.learning_rate_decay

    def current_param(self):
        return self.mu.copy()

    def set_mu(self, mu):
        self.mu = np.array(mu, dtype=np.float64)


class PEPG(_BestTracker):
    """PEPG (Sehnke et al., 2010): symmetric sampling with a per-parameter sigma that adapts.

    The population is [mu + eps; mu - eps]; the mean moves along the reward difference of
    each pair (or to the mean of the elites when elite_ratio > 0) and each sigma_i grows or
    shrinks with how the pair's average reward compares to the baseline.
    """

    def __init__(self, num_params, sigma_init=0.10, sigma_alpha=0.20, sigma_decay=0.999,
                 sigma_limit=0.01, sigma_max_change=0.2, learning_rate=0.01,
                 learning_rate_decay=0.9999, learning_rate_limit=0.01, elite_ratio=0,
                 popsize=256, weight_decay=0.01, rank_fitness=True, seed=1, x0=None):
        if popsize % 2:
            raise ValueError('PEPG samples symmetric pairs and needs an even popsize, got %d' % popsize)
        self.num_params = num_params
        self.popsize = popsize
        self.batch_size = popsize // 2
        self.sigma_vec = np.full(num_params, float(sigma_init))
        self.sigma_alpha = sigma_alpha
        self.sigma_decay, self.sigma_limit = sigma_decay, sigma_limit
        self.sigma_max_change = sigma_max_change
        self.learning_rate_decay, self.learning_rate_limit = learning_rate_decay, learning_rate_limit
        self.elite_size = int(popsize * elite_ratio)
        self.weight_decay = weight_decay
        self.rank_fitness = rank_fitness
        self.rng = np.random.default_rng(seed)
        self.mu = np.zeros(num_params) if x0 is None else np.array(x0, dtype=np.float64)
        self.optimizer = Adam(num_params, learning_rate)
        self._init_best(num_params)
        self.epsilon = None

    @property
    def sigma(self):
        return float(np.mean(self.sigma_vec))

    def rms_stdev(self):
        return float(np.sqrt(np.mean(np.square(self.sigma_vec))))

    def ask(self):
        half = self.rng.standard_normal((self.batch_size, self.num_params)) * self.sigma_vec
        self.epsilon = np.concatenate([half, -half])
        return self.mu + self.epsilon

    def tell(self, rewards):
        rewards = np.asarray(rewards, dtype=np.float64)
        assert rewards.shape == (self.popsize,), 'one reward per solution'
        solutions = self.mu + self.epsilon
        self._track_best(solutions, rewards)
        fitness = rewards - l2_penalty(self.weight_decay, solutions)
        if self.rank_fitness:
            fitness = centered_ranks(fitness)
        eps = self.epsilon[:self.batch_size]
        plus, minus = fitness[:self.batch_size], fitness[self.batch_size:]

        if self.elite_size > 0:
            elites = np.argsort(fitness)[::-1][:self.elite_size]
            self.mu = solutions[elites].mean(axis=0)
        else:
            grad = eps.T @ ((plus - minus) / 2.0) / self.batch_size
            self.mu = self.optimizer.step(self.mu, grad)
            if self.optimizer.learning_rate > self.learning_rate_limit:
                self.optimizer.learning_rate *= self.learning_rate_decay

        # Sigma moves toward perturbations whose pair did better than the baseline.
        spread = fitness.std()
        if self.sigma_alpha > 0 and spread > 0:
            baseline = fitness.mean()
            s = (eps * eps - self.sigma_vec ** 2) / self.sigma_vec
            pair_advantage = (plus + minus) / 2.0 - baseline
            delta = s.T @ pair_advantage / (self.batch_size * spread)
            change = np.clip(self.sigma_alpha * delta, -self.sigma_max_change * self.sigma_vec,
                             self.sigma_max_change * self.sigma_vec)
            self.sigma_vec = self.sigma_vec + change
        if self.sigma_decay < 1:
            shrink = self.sigma_vec > self.sigma_limit
            self.sigma_vec[shrink] *= self.sigma_decay

    def current_param(self):
        return self.mu.copy()

    def set_mu(self, mu):
        self.mu = np.array(mu, dtype=np.float64)


OPTIMIZERS = ('cma', 'pepg', 'ses', 'openes', 'ga')


def make_optimizer(name, num_params, popsize, sigma_init=0.1, sigma_decay=0.999,
                   antithetic=False, weight_decay=0.005, seed=1, x0=None):
    """The optimizers behind train.py's `-o` flag, with the 2018 estool settings."""
    common = dict(popsize=popsize, weight_decay=weight_decay, seed=seed, x0=x0)
    if name == 'cma':
        return CMAES(num_params, sigma_init=sigma_init, **common)
    if name == 'pepg':
        return PEPG(num_params, sigma_init=sigma_init, sigma_decay=sigma_decay, sigma_alpha=0.2,
                    sigma_limit=0.02, elite_ratio=0, learning_rate=0.01,
                    learning_rate_decay=1.0, learning_rate_limit=0.01, **common)
    if name == 'ses':
        return PEPG(num_params, sigma_init=sigma_init, sigma_decay=sigma_decay, sigma_alpha=0.2,
                    sigma_limit=0.02, elite_ratio=0.1, **common)
    if name == 'openes':
        return OpenES(num_params, sigma_init=sigma_init, sigma_decay=sigma_decay,
                      sigma_limit=0.02, learning_rate=0.01, learning_rate_decay=1.0,
                      learning_rate_limit=0.01, antithetic=antithetic, **common)
    if name == 'ga':
        return SimpleGA(num_params, sigma_init=sigma_init, sigma_decay=sigma_decay,
                        sigma_limit=0.02, elite_ratio=0.1, forget_best=False, **common)
    raise ValueError('unknown optimizer %r (choose from %s)' % (name, ', '.join(OPTIMIZERS)))
