"""Time a dream as a gymnasium VectorEnv (gym.make_vec) against its single env (gym.make)
stepped in a Python loop: the rows `bench.py --part vector` prints in both experiment folders.

Rates are env-steps (transitions an RL library receives: num_envs per VectorEnv step) per CPU
second of this process (time.process_time), with random actions drawn before the clock starts,
episode ends included (the single env is reset, the VectorEnv autoresets).
"""

import time

import gymnasium as gym

SIZES = (1, 64, 512)


def single_loop_rate(env, steps, seed=0):
    """Step one env `steps` times in a Python loop, resetting it at each episode's end
    -> env-steps per CPU second."""
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(min(steps, 1000))]
    env.reset(seed=seed)
    start = time.process_time()
    for t in range(steps):
        _, _, terminated, truncated, _ = env.step(actions[t % len(actions)])
        if terminated or truncated:
            env.reset()
    return steps / (time.process_time() - start)


def vector_rate(vec, steps, seed=0):
    """Step a VectorEnv until at least `steps` env-steps are done (and at least 3 steps of
    the vector) -> env-steps per CPU second."""
    calls = max(3, -(-steps // vec.num_envs))
    vec.action_space.seed(seed)
    actions = [vec.action_space.sample() for _ in range(min(calls, 50))]
    vec.reset(seed=seed)
    vec.step(actions[0])   # not timed: the first step allocates what later steps reuse
    start = time.process_time()
    for t in range(calls):
        vec.step(actions[t % len(actions)])
    return calls * vec.num_envs / (time.process_time() - start)


def report(env_id, steps, seed=0, sizes=SIZES, **kwargs):
    """Print the single env's loop and the VectorEnv at each of `sizes` envs, all made with
    kwargs -> {'loop': rate, num_envs: rate, ...} in env-steps per CPU second. The loop and
    num_envs 1 step steps // 10 times: one env at a time is slow, and steadier than a batch."""
    env = gym.make(env_id, **kwargs)
    rates = {'loop': single_loop_rate(env, max(100, steps // 10), seed)}
    env.close()
    print('%s as a VectorEnv against its single env, one core, random actions' % env_id)
    print('single env (gym.make), Python loop      %9.0f env-steps/s' % rates['loop'], flush=True)
    for n in sizes:
        vec = gym.make_vec(env_id, num_envs=n, **kwargs)
        rates[n] = vector_rate(vec, steps if n > 1 else max(100, steps // 10), seed)
        vec.close()
        print('VectorEnv (gym.make_vec) num_envs %-4d  %9.0f env-steps/s  %6.1f x the loop'
              % (n, rates[n], rates[n] / rates['loop']), flush=True)
    return rates
