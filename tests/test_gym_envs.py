"""Every environment of the repo as a registered gymnasium id: gymnasium's own env checker and
RecordVideo on each, and both dreams as VectorEnvs (gym.make_vec) that step like gymnasium's
SyncVectorEnv over the single env: the same trajectories, episode ends and autoresets.

The dreams run a toy M (16 LSTM units, the shipped V's z, so rgb_array frames come from the
shipped V) made here, whose restart logit ends TakeCover dreams after a few steps; the real
games are the real CarRacing-v3 and vizdoom.
"""

import os
import re
import subprocess
import sys
import warnings

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from conftest import CAR, DOOM, ROOT, folder_modules

SPEC = {
    'carracing': dict(dir=CAR, modules=['runtime', 'env', 'dream_env', 'gym_envs'], z=32,
                      real='WorldModels/CarRacing-v0', dream='WorldModels/CarRacingDream-v0',
                      real_class=('env', 'CarRacingEnv'), vector_class=('dream_env', 'CarRacingDreamVectorEnv')),
    'doomrnn': dict(dir=DOOM, modules=['runtime', 'env', 'doomrnn', 'gym_envs'], z=64,
                    real='WorldModels/TakeCover-v0', dream='WorldModels/TakeCoverDream-v0',
                    real_class=('env', 'DoomTakeCoverEnv'), vector_class=('doomrnn', 'DoomCoverRNNVectorEnv')),
}
FOLDERS = sorted(SPEC)
TOY_UNITS = 16
MAX_STEPS = 15   # toy TakeCover dreams: about 60% end before this, the rest are truncated here
# What check_env warns about in every env here, none of it a fault: gym.make's own wrappers
# around the env, and the dreams' unbounded z (samples of Gaussian mixtures).
EXPECTED_WARNINGS = ('is different from the unwrapped version', 'space minimum value is -infinity',
                     'space maximum value is infinity')


def toy_dream(name, rt, d):
    """A toy M (z of the shipped V, 16 units) and first frames in folder d, next to the shipped
    V -> the dream's keyword arguments for gym.make."""
    rng = np.random.default_rng(0)
    z = SPEC[name]['z']
    arrays = [rng.standard_normal(shape) * (0.3 if len(shape) == 2 else 0.1) for _, shape in rt.rnn_shapes(z, TOY_UNITS)]
    first = [rng.standard_normal((10, z)), rng.standard_normal((10, z)) * 0.1 - 1]
    if name == 'doomrnn':
        arrays[3][0] = -2.0       # the restart logit: M "dies" after about 10 steps
        arrays[2][:, 0] *= 5
        rt.save_json_weights(str(d / 'rnn.json'), arrays)
        rt.save_json_weights(str(d / 'initial_z.json'), first)
        # models_dir as a dict of the three files (runtime.world_paths): the shipped V, the toy M
        return {'models_dir': rt.world_paths(str(d), vae=os.path.join(DOOM, 'tf_models', 'vae.json'))}
    rt.save_json_weights(str(d / 'rnn.json'), arrays)
    rt.save_json_weights(str(d / 'initial_z.json'), first)
    return {'rnn_path': str(d / 'rnn.json'), 'initial_z_path': str(d / 'initial_z.json'),
            'vae_path': os.path.join(CAR, 'vae', 'vae.json')}


@pytest.fixture(scope='module', params=FOLDERS)
def exp(request, tmp_path_factory):
    """-> (folder name, SPEC entry, its modules (gym_envs imported: the ids registered), the
    toy dream's keyword arguments)"""
    name = request.param
    for mods in folder_modules(SPEC[name]['dir'], SPEC[name]['modules']):
        yield name, SPEC[name], mods, toy_dream(name, mods.runtime, tmp_path_factory.mktemp(name + '-toy'))


def make(exp, kind, **kwargs):
    name, spec, mods, toy = exp
    return gym.make(spec[kind], **(dict(toy, **kwargs) if kind == 'dream' else kwargs))


def checked(env):
    """check_env(env) -> the warnings gymnasium gave, other than EXPECTED_WARNINGS."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        check_env(env)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    return [m for m in messages if not any(e in m for e in EXPECTED_WARNINGS)]


def assert_video(path, frames, shape):
    """The MP4 RecordVideo wrote: `frames` pictures of `shape` (moviepy's timing of the last frame
    can drop it from the file)."""
    video = np.stack(imageio.mimread(str(path), format='FFMPEG'))
    assert len(video) in (frames - 1, frames) and video.shape[1:] == shape
    assert video.std() > 1                                 # pictures, not a blank file


def headless():
    env = {k: v for k, v in os.environ.items() if k not in ('DISPLAY', 'WAYLAND_DISPLAY')}
    env['SDL_VIDEODRIVER'] = 'dummy'
    return env


# ---------------------------------------------------------------- the single envs

@pytest.mark.parametrize('kind', ['real', 'dream'])
def test_every_id_passes_check_env_render_included(exp, kind):
    """check_env on the env as gym.make returns it, with render_mode='rgb_array': it remakes the
    env from its spec for each render mode (so the keyword arguments must pass through) and checks
    each render."""
    name, spec, mods, toy = exp
    env = make(exp, kind, render_mode='rgb_array', max_steps=MAX_STEPS)
    assert env.spec.id == spec[kind] and env.spec.namespace == 'WorldModels' and env.spec.version == 0
    assert checked(env) == []
    env.reset(seed=0)
    picture = env.render()
    assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3
    env.close()


def test_the_real_env_built_directly_passes_check_env(exp):
    """CarRacingEnv and DoomTakeCoverEnv built without gym.make: the CarRacing wrapper must
    record its arguments, or check_env cannot remake it for the other render modes."""
    name, spec, mods, toy = exp
    module, cls = spec['real_class']
    env = getattr(getattr(mods, module), cls)(render_mode='rgb_array', max_steps=MAX_STEPS)
    check_env(env)
    env.close()


@pytest.mark.parametrize('kind', ['real', 'dream'])
def test_record_video_records_an_episode_headless(exp, kind, tmp_path):
    env = gym.wrappers.RecordVideo(make(exp, kind, render_mode='rgb_array', max_steps=10), str(tmp_path),
                                   episode_trigger=lambda episode: episode == 0, disable_logger=True)
    env.reset(seed=1)
    picture = env.render()
    env.action_space.seed(1)
    steps, done = 0, False
    while not done:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        steps, done = steps + 1, terminated or truncated
    assert steps <= 10 and len(env.recorded_frames) == steps + 1   # the reset's picture, then one a step
    env.close()
    assert_video(tmp_path / 'rl-video-episode-0.mp4', steps + 1, picture.shape)


# ---------------------------------------------------------------- the dreams as VectorEnvs

@pytest.mark.parametrize('mode', [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_vector_dream_steps_like_sync_vector_env_over_the_single_env(exp, mode):
    """make_vec gives the batched VectorEnv; gymnasium's SyncVectorEnv over the single env (which
    seeds env i with seed + i) is the reference: the same observations (to rounding: batched
    products), rewards, episode ends and autoresets, step by step through several episodes."""
    name, spec, mods, toy = exp
    n = 6
    vec = gym.make_vec(spec['dream'], num_envs=n, autoreset_mode=mode, max_steps=MAX_STEPS, **toy)
    module, cls = spec['vector_class']
    assert type(vec) is getattr(getattr(mods, module), cls)
    assert vec.metadata['autoreset_mode'] == mode
    sync = gym.make_vec(spec['dream'], num_envs=n, vectorization_mode='sync', vector_kwargs={'autoreset_mode': mode},
                        max_steps=MAX_STEPS, **toy)
    obs, _ = vec.reset(seed=7)
    want, _ = sync.reset(seed=7)
    assert np.array_equal(obs, want)
    sync.action_space.seed(3)
    ends = np.zeros(2, int)
    for t in range(3 * MAX_STEPS):
        actions = sync.action_space.sample()
        got, want = vec.step(actions), sync.step(actions)
        assert got[0].shape == want[0].shape and got[0].dtype == want[0].dtype == np.float32
        assert np.allclose(got[0], want[0], atol=1e-4), t
        for k in (1, 2, 3):   # rewards, terminations, truncations
            assert got[k].dtype == want[k].dtype and np.array_equal(got[k], want[k]), (t, k)
        if mode == AutoresetMode.SAME_STEP and (want[2] | want[3]).any():
            assert np.array_equal(got[4]['_final_obs'], want[4]['_final_obs'])
            for i in np.flatnonzero(want[4]['_final_obs']):
                assert np.allclose(got[4]['final_obs'][i], want[4]['final_obs'][i], atol=1e-4)
        else:
            assert got[4] == want[4] == {}
        ends += got[2].sum(), got[3].sum()
    if name == 'doomrnn':
        assert ends[0] >= 3 and ends[1] >= 3, ends        # M's deaths and the step limit
    else:
        assert ends[0] == 0 and ends[1] >= 3 * n - n, ends  # CarRacing's M never ends a dream
    vec.close()
    sync.close()


def test_vector_dream_autoresets_at_the_next_step(exp):
    """NEXT_STEP: the step after an episode ends starts a new one in that env (reward 0, neither
    terminated nor truncated, M's state zero again), ignoring its action; the others step on."""
    name, spec, mods, toy = exp
    z, n = spec['z'], 4
    vec = gym.make_vec(spec['dream'], num_envs=n, max_steps=4, **toy)
    vec.reset(seed=0)
    vec.action_space.seed(0)
    pending, restarts = np.zeros(n, bool), 0
    for t in range(12):
        obs, rewards, terminated, truncated, _ = vec.step(vec.action_space.sample())
        fresh = (obs[:, z:] == 0).all(axis=1)        # M's state zero: a first observation
        assert np.array_equal(fresh, pending), t
        assert not (terminated[pending] | truncated[pending]).any() and (rewards[pending] == 0).all()
        assert (rewards[~pending] == (1.0 if name == 'doomrnn' else 0.0)).all()
        restarts += pending.sum()
        pending = terminated | truncated
    assert restarts >= n


def test_vector_dream_spaces_seeds_and_pictures(exp):
    name, spec, mods, toy = exp
    n = 3
    vec = gym.make_vec(spec['dream'], num_envs=n, render_mode='rgb_array', max_steps=MAX_STEPS, **toy)
    single = make(exp, 'dream', max_steps=MAX_STEPS)
    assert vec.single_observation_space == single.observation_space
    assert vec.single_action_space == single.action_space
    assert vec.observation_space == batch_space(single.observation_space, n)
    assert vec.action_space == batch_space(single.action_space, n)
    assert vec.observation_space.shape == (n,) + single.observation_space.shape
    assert vec.action_space.shape == (n,) + single.action_space.shape

    obs, info = vec.reset(seed=11)
    assert info == {} and obs in vec.observation_space
    for i in range(n):   # env i of a vector seeded 11 is the single env seeded 11 + i
        assert np.array_equal(obs[i], single.reset(seed=11 + i)[0])
    pictures = vec.render()
    assert pictures.shape == (n, 64, 64, 3) and pictures.dtype == np.uint8

    again, _ = vec.reset(seed=[11, 12, 13])
    assert np.array_equal(again, obs)
    going, _ = vec.reset()               # no seed: each env's generator goes on
    assert not np.array_equal(going, obs)
    vec.reset(seed=11)
    mask = np.array([False, True, False])
    vec.step(np.zeros(vec.action_space.shape, np.float32))
    stepped = vec.step(np.zeros(vec.action_space.shape, np.float32))[0]
    part, _ = vec.reset(seed=[None, 12, None], options={'reset_mask': mask})
    assert np.array_equal(part[1], obs[1]) and np.array_equal(part[[0, 2]], stepped[[0, 2]])
    with pytest.raises(ValueError, match='shape'):
        vec.step(np.zeros((n + 1,) + single.action_space.shape, np.float32))
    vec.close()


def test_vector_dream_without_autoreset_waits_for_a_masked_reset(exp):
    name, spec, mods, toy = exp
    vec = gym.make_vec(spec['dream'], num_envs=2, autoreset_mode=AutoresetMode.DISABLED, max_steps=2, **toy)
    vec.reset(seed=0)
    actions = np.zeros(vec.action_space.shape, np.float32)
    for _ in range(2):
        ended = np.logical_or(*vec.step(actions)[2:4])
    assert ended.all()
    with pytest.raises(RuntimeError, match='reset'):
        vec.step(actions)
    vec.reset(options={'reset_mask': ended})
    assert not np.logical_or(*vec.step(actions)[2:4]).any()


# ---------------------------------------------------------------- as a user runs them

def test_the_ids_from_inside_each_folder_after_one_import(exp):
    """From inside the folder, the way every script runs: one import, then gym.make and make_vec
    with the shipped weights; and the 'module:id' form in a process that imported nothing."""
    name, spec, mods, toy = exp
    code = ('import gymnasium as gym\n'
            'import gym_envs\n'
            'for env_id in (%r, %r):\n'
            '    env = gym.make(env_id, max_steps=5)\n'
            '    obs, _ = env.reset(seed=0)\n'
            '    print(env_id, obs.shape, obs.dtype, env.step(env.action_space.sample())[1])\n'
            'vec = gym.make_vec(%r, num_envs=3, max_steps=5)\n'
            'print(type(vec).__name__, vec.reset(seed=0)[0].shape)\n' % (spec['real'], spec['dream'], spec['dream']))
    out = subprocess.run([sys.executable, '-c', code], cwd=spec['dir'], env=headless(), capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    units = 256 if name == 'carracing' else 2 * 512
    assert lines[0].startswith(spec['real'] + ' (64, 64, 3) uint8')
    assert lines[1].startswith('%s (%d,) float32' % (spec['dream'], spec['z'] + units))
    assert lines[2] == '%s (3, %d)' % (spec['vector_class'][1], spec['z'] + units)
    bare = subprocess.run([sys.executable, '-c', 'import gymnasium as gym; '
                           'print(gym.make("gym_envs:%s").observation_space.shape)' % spec['real']],
                          cwd=spec['dir'], env=headless(), capture_output=True, text=True, timeout=300)
    assert bare.returncode == 0 and bare.stdout.strip() == '(64, 64, 3)', bare.stderr[-3000:]


def test_cartpole_swingup_id():
    import estool.cartpole_swingup  # noqa: F401  (registers the id)
    env = gym.make('WorldModels/CartPoleSwingUp-v0', render_mode='rgb_array', max_steps=MAX_STEPS)
    assert checked(env) == []
    env.close()
    env = gym.make('WorldModels/CartPoleSwingUp-v0', max_steps=7)
    env.reset(seed=0)
    ends = [env.step(np.zeros(1, np.float32))[3] for _ in range(7)]
    assert ends == [False] * 6 + [True]


def test_cartpole_swingup_record_video(tmp_path):
    import estool.cartpole_swingup  # noqa: F401
    env = gym.wrappers.RecordVideo(gym.make('WorldModels/CartPoleSwingUp-v0', render_mode='rgb_array', max_steps=10),
                                   str(tmp_path), episode_trigger=lambda episode: episode == 0, disable_logger=True)
    env.reset(seed=0)
    while not any(env.step(np.ones(1, np.float32))[2:4]):
        pass
    assert len(env.recorded_frames) == 11
    env.close()
    assert_video(tmp_path / 'rl-video-episode-0.mp4', 11, (300, 600, 3))


README_MARK = '<!-- tests/test_gym_envs.py runs the next block with smaller numbers -->'


@pytest.mark.parametrize('folder, small', [(DOOM, '4, 1, 2, 1'), (CAR, '4, 4, 20, 2, 1')], ids=['doomrnn', 'carracing'])
def test_the_readme_example_trains_in_the_dream_and_scores_in_the_real_game(folder, small):
    """The README's example as a reader runs it (pasted into python in the folder, the shipped
    weights), with its first line of numbers (population, episodes, generations, ...) made small."""
    with open(os.path.join(folder, 'README.md')) as f:
        block = f.read().split(README_MARK)[1].split('```python\n', 1)[1].split('```', 1)[0]
    numbers = re.search(r'^([A-Z_]+(?:, [A-Z_]+)*) = \d+(?:, \d+)*$', block, re.M)
    code = block.replace(numbers.group(0), '%s = %s' % (numbers.group(1), small))
    out = subprocess.run([sys.executable, '-'], input=code, cwd=folder, env=headless(), capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith('generation ') and lines[-1].startswith('real game: '), lines
