"""Numeric checks of estool.es: every optimizer climbs, CMAES is pycma, seeds reproduce."""

import pickle

import cma
import numpy as np
import pytest

from estool.es import (CMAES, OPTIMIZERS, PEPG, OpenES, SimpleGA, _GeneratorRandn,
                       centered_ranks, l2_penalty, make_optimizer)


def sphere(x):
    return np.sum(x * x, axis=1)


def rastrigin(x):
    return 10 * x.shape[1] + np.sum(x * x - 10 * np.cos(2 * np.pi * x), axis=1)


def build(name, n, x0, seed=0):
    """Each optimizer with settings that suit a smooth 20-D / rugged 10-D test function."""
    popsize = 32
    if name == 'CMAES':
        return CMAES(n, sigma_init=0.5, popsize=popsize, weight_decay=0, seed=seed, x0=x0)
    if name == 'OpenES':
        return OpenES(n, sigma_init=0.5, learning_rate=0.1, learning_rate_decay=0.99,
                      popsize=popsize, antithetic=True, weight_decay=0, seed=seed, x0=x0)
    if name == 'PEPG':
        return PEPG(n, sigma_init=0.5, learning_rate=0.1, learning_rate_decay=0.99,
                    popsize=popsize, weight_decay=0, seed=seed, x0=x0)
    return SimpleGA(n, sigma_init=0.5, popsize=popsize, weight_decay=0, seed=seed, x0=x0)


def optimise(es, f, generations):
    for _ in range(generations):
        es.tell(-f(es.ask()))
    return f(es.current_param()[None])[0], -es.result()[1]


@pytest.mark.parametrize('name', ['CMAES', 'OpenES', 'PEPG', 'SimpleGA'])
def test_every_optimizer_improves_sphere_20d(name):
    x0 = np.full(20, 3.0)
    start = sphere(x0[None])[0]  # 180
    at_mean, best = optimise(build(name, 20, x0), sphere, 300)
    assert best < 0.02 * start, (name, best)
    assert at_mean < 0.05 * start, (name, at_mean)


@pytest.mark.parametrize('name', ['CMAES', 'OpenES', 'PEPG', 'SimpleGA'])
def test_every_optimizer_improves_rastrigin_10d(name):
    x0 = np.full(10, 3.0)
    start = rastrigin(x0[None])[0]  # 90: x0 sits in a local optimum
    es = build(name, 10, x0)
    _, best = optimise(es, rastrigin, 300)
    assert best < 0.6 * start, (name, best)
    # On a rugged function the value at the mean jumps about; its distance to the
    # global optimum at 0 is the steadier sign of progress.
    assert np.linalg.norm(es.current_param()) < 0.6 * np.linalg.norm(x0), name


def test_cmaes_matches_pycma_on_a_seeded_run():
    n, popsize, sigma, seed = 12, 16, 0.3, 42
    x0 = np.linspace(-1, 1, n)
    ours = CMAES(n, sigma_init=sigma, popsize=popsize, weight_decay=0, seed=seed, x0=x0)
    theirs = cma.CMAEvolutionStrategy(x0, sigma, {
        'popsize': popsize, 'seed': np.nan, 'verbose': -9,
        'randn': _GeneratorRandn(np.random.default_rng(seed))})
    for _ in range(30):
        a = ours.ask()
        b = np.array(theirs.ask())
        np.testing.assert_array_equal(a, b)
        ours.tell(-sphere(a))           # we maximise rewards ...
        theirs.tell(list(b), sphere(b).tolist())  # ... pycma minimises costs
        np.testing.assert_array_equal(ours.current_param(), theirs.mean)
    assert ours.result()[3] == pytest.approx(theirs.sigma)
    assert ours.result()[1] == pytest.approx(-theirs.result.fbest)


def test_cmaes_leaves_numpy_global_generator_alone():
    np.random.seed(5)
    before = np.random.get_state()[1].copy()
    es = CMAES(8, popsize=10, seed=3)
    es.tell(-sphere(es.ask()))
    np.testing.assert_array_equal(np.random.get_state()[1], before)


@pytest.mark.parametrize('opt', OPTIMIZERS)
def test_same_seed_same_run_and_pickle_resumes_exactly(opt):
    def run(es, gens):
        out = []
        for _ in range(gens):
            x = es.ask()
            out.append(x)
            es.tell(-rastrigin(x))
        return np.array(out)

    a = make_optimizer(opt, 6, 8, sigma_init=0.5, seed=7)
    b = make_optimizer(opt, 6, 8, sigma_init=0.5, seed=7)
    np.testing.assert_array_equal(run(a, 5), run(b, 5))
    c = pickle.loads(pickle.dumps(a))  # what train.py --resume does
    np.testing.assert_array_equal(run(a, 5), run(c, 5))
    d = make_optimizer(opt, 6, 8, sigma_init=0.5, seed=8)
    assert not np.array_equal(run(d, 1)[0], run(make_optimizer(opt, 6, 8, sigma_init=0.5, seed=7), 1)[0])


def test_antithetic_pairs_are_exact_negatives():
    mu = np.linspace(-2, 2, 9)
    for es in (OpenES(9, popsize=10, antithetic=True, seed=1, x0=mu), PEPG(9, popsize=10, seed=1, x0=mu)):
        x = es.ask()
        # The perturbations are exact negatives; the solutions mu +/- eps are, up to rounding.
        np.testing.assert_array_equal(es.epsilon[:5], -es.epsilon[5:])
        assert np.all(es.epsilon != 0)
        np.testing.assert_allclose(x[:5] - mu, -(x[5:] - mu), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match='even popsize'):
        PEPG(3, popsize=7)


def test_weight_decay_penalises_large_weights():
    solutions = np.array([[0.0, 0.0], [3.0, 4.0]])
    np.testing.assert_allclose(l2_penalty(0.1, solutions), [0.0, 0.1 * 12.5])
    # Two candidates with equal raw reward: after the penalty the GA must prefer the small one.
    ga = SimpleGA(2, popsize=2, elite_ratio=0.5, weight_decay=0.1, seed=0)
    ga.ask()
    ga.solutions = solutions
    ga.tell(np.array([1.0, 1.0]))
    np.testing.assert_array_equal(ga.current_param(), [0.0, 0.0])


def test_interface_result_set_mu_and_ranks():
    np.testing.assert_allclose(centered_ranks(np.array([10.0, -1.0, 3.0])), [0.5, -0.5, 0.0])
    for opt in OPTIMIZERS:
        es = make_optimizer(opt, 4, 6, seed=1)
        x = es.ask()
        assert x.shape == (6, 4)
        rewards = -sphere(x)
        es.tell(rewards)
        best_params, best_reward, curr_best, sigma = es.result()
        assert best_reward == pytest.approx(rewards.max()) and curr_best == pytest.approx(rewards.max())
        np.testing.assert_array_equal(best_params, x[np.argmax(rewards)])
        np.testing.assert_array_equal(es.best_param(), best_params)
        assert sigma > 0 and es.rms_stdev() > 0
        es.set_mu(np.full(4, 0.25))
        np.testing.assert_allclose(es.current_param(), np.full(4, 0.25))
    with pytest.raises(ValueError, match='unknown optimizer'):
        make_optimizer('sgd', 3, 4)
