"""Replay a trained controller in CarRacing-v3 with V and M (numpy).

    python model.py norender log/carracing.cma.16.64.best.json       # 100 random tracks
    python model.py norender log/carracing.cma.16.64.best.json 0 --episodes 10 --jobs 2
    python model.py norender log/carracing.cma.16.64.log.json --gen 300   # a logged evaluation's mean
    python model.py render log/carracing.cma.16.64.best.json         # one track in a window
    python model.py render log/carracing.cma.16.64.best.json 0 --save track0.gif --every 2 --scale 2

norender prints each episode's score and `average_reward X stdev Y`; episode i uses track
seed + i, so the same command gives the same scores, also when --jobs N drives N tracks at a
time. --profile adds the time per step spent in the environment and in the agent (V + M + C).

render shows, for each step, the 96x96 game frame the env returns, the 64x64 crop V encodes
and V's reconstruction of it, side by side; --save writes those pictures to a GIF or MP4
(no window, no display needed) and the episode's score is the one norender gives for that
seed. In a notebook, `replay_pictures(...)` returns them as an array.
"""

import os

# One episode at a time means small matrix products: BLAS threads only add overhead.
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')

import pin_cpu  # noqa: E402,F401  (before numpy: the same kernels, so the same scores, on every CPU)
import argparse  # noqa: E402
import multiprocessing
import signal
import sys
import time

import numpy as np

from env import MAX_STEPS, STEP_PENALTY, CarRacingEnv
from estool import recording
from estool.argtypes import input_file, nonnegative_int, positive_int, random_seed
from runtime import ACTION_SIZE, MDNRNN, VAE, Controller, WeightsError, exit_on_weights_error, load_params


class Agent:
    """V + M + C in numpy: act(frame) -> action (3,), and M's state moves on."""

    def __init__(self, vae, rnn):
        if vae.z_size != rnn.z_size:
            raise WeightsError('V has z size %d but M %d' % (vae.z_size, rnn.z_size))
        self.vae, self.rnn = vae, rnn
        self.controller = Controller(rnn.z_size, rnn.units)

    @classmethod
    def load(cls, vae_path='vae/vae.json', rnn_path='rnn/rnn.json'):
        vae, rnn = VAE.load(vae_path), MDNRNN.load(rnn_path)
        if vae.z_size != rnn.z_size:
            raise WeightsError('%s has z size %d but %s has %d: V and M of different runs?'
                               % (vae_path, vae.z_size, rnn_path, rnn.z_size))
        return cls(vae, rnn)

    def reset(self, rng):
        self.rng = rng
        self.state = self.rnn.initial_state(1)

    def act(self, frame):
        z = self.vae.encode(frame[None], self.rng)
        self.z = z   # kept for pictures: encoding again would draw from rng and change the episode
        action = self.controller.act(z, self.state[1])
        self.state = self.rnn.step(z, action, self.state)
        return action[0]


def rollout(agent, env, seed, max_steps=MAX_STEPS, timing=None, stall_steps=0):
    """One episode on track `seed` -> (total_reward, steps). timing: dict that collects seconds.

    stall_steps > 0 ends the episode after that many steps in a row without a new track tile
    and adds the time penalty (-0.1 a step) of the steps left: the score the full episode
    would give if no tile followed, without spending the env's time to find that out.
    """
    frame, _ = env.reset(seed=int(seed))
    agent.reset(np.random.default_rng(int(seed)))
    total, steps, stalled = 0.0, 0, 0
    t_agent = t_env = 0.0
    while steps < max_steps:
        t0 = time.perf_counter()
        action = agent.act(frame)
        t1 = time.perf_counter()
        frame, reward, terminated, truncated, _ = env.step(action)
        t_env += time.perf_counter() - t1
        t_agent += t1 - t0
        total += reward
        steps += 1
        if terminated or truncated:
            break
        stalled = stalled + 1 if reward < 0 else 0
        if stall_steps and stalled >= stall_steps:
            total -= STEP_PENALTY * (max_steps - steps)
            break
    if timing is not None:
        timing['agent'] = timing.get('agent', 0.0) + t_agent
        timing['env'] = timing.get('env', 0.0) + t_env
        timing['steps'] = timing.get('steps', 0) + steps
    return total, steps


def rollout_batch(agent, envs, params, seeds, max_steps=MAX_STEPS, stall_steps=0):
    """Episodes of several controllers in lockstep: one V encode, one C product and one M step
    for all live episodes a step; an episode leaves the batch when it ends.

    params (B, num_params): the controller of each episode; seeds (B,): its track; envs: at
    least B CarRacingEnv. -> rewards (B,), steps (B,). Episode b follows `rollout` with
    params[b] and seeds[b]: the same track, the same V noise (its own generator seeded by the
    track), the same stall rule.
    """
    vae, rnn, controller = agent.vae, agent.rnn, agent.controller
    batch = len(seeds)
    params = np.asarray(params, np.float32).reshape(batch, controller.num_params)
    bias = params[:, :ACTION_SIZE]
    weight = params[:, ACTION_SIZE:].reshape(batch, controller.input_size, ACTION_SIZE)
    rngs = [np.random.default_rng(int(seed)) for seed in seeds]
    frames = np.stack([envs[b].reset(seed=int(seeds[b]))[0] for b in range(batch)])
    c, h = rnn.initial_state(batch)
    totals, steps, stalled = np.zeros(batch), np.zeros(batch, np.int64), np.zeros(batch, np.int64)
    live = np.arange(batch)
    while len(live):
        mu, logvar = vae.encode_mu_logvar(frames[live])
        eps = np.concatenate([rngs[b].standard_normal((1, vae.z_size)).astype(np.float32) for b in live])
        z = mu + np.exp(logvar / 2.0) * eps
        action = controller.act_batch(z, h, weight[live], bias[live])
        c, h = rnn.step(z, action, (c, h))
        going = np.ones(len(live), bool)
        for i, b in enumerate(live):
            frames[b], reward, terminated, truncated, _ = envs[b].step(action[i])
            totals[b] += reward
            steps[b] += 1
            stalled[b] = stalled[b] + 1 if reward < 0 else 0
            if terminated or truncated or steps[b] >= max_steps:
                going[i] = False
            elif stall_steps and stalled[b] >= stall_steps:
                totals[b] -= STEP_PENALTY * (max_steps - steps[b])
                going[i] = False
        live, c, h = live[going], c[going], h[going]
    return totals, steps


FPS = 50   # CarRacing-v3's frame rate (its metadata['render_fps'])
PICTURE_SCALE = 3   # the window: 864 x 288


def episode_pictures(agent, env, seed, max_steps=MAX_STEPS, stats=None):
    """Drive one episode on track `seed` as rollout does (same actions, same score), yielding
    each step's picture before its action: the 96x96 game frame, the 64x64 crop V sees and V's
    reconstruction, side by side at 96 rows -> (96, 288, 3) uint8.
    stats (a dict) receives 'score' and 'steps' so far, after each step."""
    frame, _ = env.reset(seed=int(seed))
    agent.reset(np.random.default_rng(int(seed)))
    total, steps = 0.0, 0
    if stats is not None:
        stats.update(score=total, steps=steps)
    while steps < max_steps:
        action = agent.act(frame)
        recon = (agent.vae.decode(agent.z)[0] * 255).astype(np.uint8)
        yield recording.side_by_side([env.unwrapped.state, frame, recon], 96)
        frame, reward, terminated, truncated, _ = env.step(action)
        total += reward
        steps += 1
        if stats is not None:
            stats.update(score=total, steps=steps)
        if terminated or truncated:
            break


def replay_pictures(params_file, seed=0, max_steps=MAX_STEPS, every=1, scale=1.0, gen=None,
                    vae='vae/vae.json', rnn='rnn/rnn.json'):
    """One episode's pictures for a notebook, as `render --save` writes them (run from carracing/).
    -> (pictures (n, H, W, 3) uint8, score, steps). Show with
    `IPython.display.Image(data=recording.gif_bytes(pictures, FPS / every))`."""
    agent = Agent.load(vae, rnn)
    agent.controller.set_params(load_params(params_file, agent.controller.num_params, gen))
    env = CarRacingEnv(max_steps=max_steps, fast_render=False)   # the stock state frame, dashboard and all
    stats = {}
    try:
        frames = np.stack(list(recording.pictures(episode_pictures(agent, env, seed, max_steps, stats),
                                                  every, scale)))
    finally:
        env.close()
    return frames, stats['score'], stats['steps']


def render_main(args):
    """render mode: one episode's pictures to a window and/or to --save."""
    agent = exit_on_weights_error(Agent.load, args.vae, args.rnn)
    agent.controller.set_params(
        exit_on_weights_error(load_params, args.params_file, agent.controller.num_params, args.gen))
    # no 'human' mode: the window shows our pictures; the stock env: the game frame with its dashboard
    env = CarRacingEnv(max_steps=args.max_steps, fast_render=False)
    stats = {}
    try:
        recording.output(episode_pictures(agent, env, args.seed, args.max_steps, stats), args, FPS,
                         'CarRacing: game | 64x64 input | V reconstruction')
    except KeyboardInterrupt:
        sys.exit('interrupted after %d steps (score so far %.2f)%s' % (
            stats['steps'], stats['score'], '; nothing saved' if args.save else ''))
    finally:
        env.close()
    print('episode 0 score %.2f steps %d' % (stats['score'], stats['steps']), flush=True)
    print('average_reward %.2f stdev %.2f' % (stats['score'], 0.0))


class EpisodeRunner:
    """Drives episodes of one controller; built once in each process of a --jobs pool."""

    def __init__(self, args):
        self.agent = exit_on_weights_error(Agent.load, args.vae, args.rnn)
        self.agent.controller.set_params(
            exit_on_weights_error(load_params, args.params_file, self.agent.controller.num_params, args.gen))
        self.env = CarRacingEnv(max_steps=args.max_steps)
        self.max_steps = args.max_steps
        self.envs = []   # --batch: one env per episode driven in lockstep

    def __call__(self, seed):
        """-> (score, steps, timing dict)"""
        timing = {}
        score, steps = rollout(self.agent, self.env, seed, self.max_steps, timing)
        return score, steps, timing

    def lockstep(self, seeds):
        """The episodes of `seeds` driven together, as a train.py worker drives them -> [(score, steps, {})]."""
        while len(self.envs) < len(seeds):
            self.envs.append(CarRacingEnv(max_steps=self.max_steps, canvas=self.env.unwrapped.canvas))
        params = np.repeat(np.concatenate([self.agent.controller.bias, self.agent.controller.weight.ravel()])[None],
                           len(seeds), axis=0)
        scores, steps = rollout_batch(self.agent, self.envs, params, seeds, self.max_steps)
        return [(score, n, {}) for score, n in zip(scores, steps)]


def _start_runner(args):
    global _runner   # one per pool process: the weights are parsed once, not once per episode
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the parent's to handle
    _runner = EpisodeRunner(args)


def _run_episode(seed):
    return _runner(seed)


def _run_lockstep(seeds):
    return _runner.lockstep(seeds)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('mode', choices=['render', 'norender'], help='one episode in a window, or scores only')
    p.add_argument('params_file', type=input_file, help='controller log: log/<name>.best.json ([params, reward]), log/<name>.json, '
                                       'or log/<name>.log.json with --gen')
    # the default is spelled out: parse_intermixed_args hides positional defaults while it parses
    # the options, so %(default)s in this help made -h fail
    p.add_argument('seed', nargs='?', type=random_seed, default=0, help='track seed of the first episode (default: 0)')
    p.add_argument('--episodes', type=positive_int, default=100, help='episodes in norender mode (default: %(default)s)')
    p.add_argument('--vae', type=input_file, default='vae/vae.json', help='V weights (default: %(default)s)')
    p.add_argument('--rnn', type=input_file, default='rnn/rnn.json', help='M weights (default: %(default)s)')
    p.add_argument('--max_steps', type=positive_int, default=MAX_STEPS, help='steps per episode (default: %(default)s)')
    p.add_argument('--gen', type=nonnegative_int,
                   help='with a .log.json: replay the mean that train.py evaluated at this generation')
    p.add_argument('--jobs', type=positive_int, default=1,
                   help='norender: episodes run side by side in this many processes (default: %(default)s)')
    p.add_argument('--batch', type=positive_int, default=1,
                   help='norender: drive this many episodes in lockstep, as train.py\'s workers do (model.rollout_batch); '
                        'scores then differ from the one-at-a-time replay in float rounding (see README) (default: %(default)s)')
    p.add_argument('--profile', action='store_true', help='print ms per step in the env and in the agent')
    recording.add_recording_arguments(p, PICTURE_SCALE)
    args = p.parse_intermixed_args()   # `... log.json --gen 140 0` as well as `... 0 --gen 140`
    if args.mode == 'render':
        recording.check_arguments(p, args)
        return render_main(args)
    if args.save:
        p.error('--save records render mode (model.py render ... --save PATH)')
    if args.batch > 1 and args.profile:
        p.error('--batch and --profile: the lockstep replay does not time the env and the agent apart')

    runner = EpisodeRunner(args)   # in this process too: bad weights fail here, in one line
    seeds = [args.seed + i for i in range(1 if args.mode == 'render' else args.episodes)]
    if args.batch > 1:
        chunks = [seeds[i:i + args.batch] for i in range(0, len(seeds), args.batch)]
        work, run = chunks, (_run_lockstep, runner.lockstep)
    else:
        work, run = seeds, (_run_episode, runner)
    jobs = min(args.jobs, len(work))
    pool = multiprocessing.Pool(jobs, _start_runner, (args,)) if jobs > 1 else None
    results = pool.imap(run[0], work) if pool else map(run[1], work)
    if args.batch > 1:
        results = (episode for chunk in results for episode in chunk)
    scores, timing = [], {}
    try:
        for i, (score, steps, t) in enumerate(results):
            scores.append(score)
            for k, v in t.items():
                timing[k] = timing.get(k, 0) + v
            print('episode %d score %.2f steps %d' % (i, score, steps), flush=True)
    except KeyboardInterrupt:
        if scores:
            print('interrupted: the figures below are for the first %d episodes' % len(scores))
    finally:
        if pool:
            pool.terminate()
        runner.env.close()
    if not scores:
        sys.exit('interrupted before the first episode ended')
    if args.profile:
        print('per step: env %.2f ms, agent %.2f ms (%d steps)' % (
            1000 * timing['env'] / timing['steps'], 1000 * timing['agent'] / timing['steps'], timing['steps']))
    print('average_reward %.2f stdev %.2f' % (np.mean(scores), np.std(scores)))


if __name__ == '__main__':
    main()
