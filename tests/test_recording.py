"""--save: the render commands of both experiments write their pictures to GIF and MP4 files,
with no display (SDL's dummy driver, no DISPLAY), using the shipped agents for a few steps."""

import math
import os
import subprocess
import sys

import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, folder_modules
from estool import recording

CAR = os.path.join(ROOT, 'carracing')
DOOM = os.path.join(ROOT, 'doomrnn')
CAR_PARAMS = 'log/carracing.cma.16.32.best.json'
DOOM_PARAMS = 'log/doomrnn.cma.16.64.best.json'
STEPS = 6


def headless(driver='dummy'):
    env = {k: v for k, v in os.environ.items() if k not in ('DISPLAY', 'WAYLAND_DISPLAY')}
    env['SDL_VIDEODRIVER'] = driver
    return env


def run(args, cwd, driver='dummy', check=True):
    proc = subprocess.run([sys.executable] + args, cwd=cwd, env=headless(driver), capture_output=True, text=True,
                          timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError('%s exited %d\n%s\n%s' % (' '.join(args), proc.returncode, proc.stdout[-3000:],
                                                       proc.stderr[-3000:]))
    return proc


def read_frames(path):
    """All frames of a GIF (RGB) or an MP4 as (n, H, W, 3) uint8."""
    if path.endswith('.gif'):
        with Image.open(path) as im:
            frames = []
            for i in range(im.n_frames):
                im.seek(i)
                frames.append(np.asarray(im.convert('RGB')))
        return np.stack(frames)
    return np.stack(imageio.mimread(path, format='FFMPEG'))


def gif_milliseconds(path):
    with Image.open(path) as im:
        total = 0
        for i in range(im.n_frames):
            im.seek(i)
            total += im.info['duration']
    return total


def check_recording(path, count, shape):
    frames = read_frames(path)
    assert frames.shape == (count,) + shape
    assert any(not np.array_equal(frames[0], f) for f in frames[1:]), 'all frames are equal'
    return frames


# (folder, command, native picture (H, W) at --scale 1, env frame rate)
COMMANDS = {
    'carracing real': (CAR, ['model.py', 'render', CAR_PARAMS, '0', '--max_steps', str(STEPS)], (96, 288), 50),
    'carracing dream': (CAR, ['dream_model.py', CAR_PARAMS, '--seed', '5', '--steps', str(STEPS)], (64, 64), 50),
    'doom real': (DOOM, ['model.py', 'doomreal', 'render', DOOM_PARAMS, '0', '--max_steps', str(STEPS)],
                  (240, 800), 35),
    'doom dream': (DOOM, ['model.py', 'doomrnn', 'render', DOOM_PARAMS, '0', '--max_steps', str(STEPS)], (64, 64), 35),
}


@pytest.mark.parametrize('name', sorted(COMMANDS))
@pytest.mark.parametrize('ext', ['.gif', '.mp4'])
def test_render_saves_one_picture_per_step(name, ext, tmp_path):
    folder, args, (h, w), _ = COMMANDS[name]
    scale = 0.5 if name == 'doom real' else 2   # even sides either way: the pictures are not resized by ffmpeg
    path = str(tmp_path / ('replay' + ext))
    out = run(args + ['--save', path, '--scale', str(scale)], folder)
    assert 'wrote %d pictures to %s' % (STEPS, path) in out.stderr
    check_recording(path, STEPS, (int(h * scale), int(w * scale), 3))
    assert os.listdir(str(tmp_path)) == ['replay' + ext]   # no temporary file left


@pytest.mark.parametrize('name', sorted(COMMANDS))
def test_every_kth_picture_plays_in_real_time_and_twice_gives_the_same_gif(name, tmp_path):
    folder, args, (h, w), fps = COMMANDS[name]
    every = 4
    args = [a if a != str(STEPS) else '10' for a in args] + ['--every', str(every), '--scale', '1']
    first, second = str(tmp_path / 'a.gif'), str(tmp_path / 'b.gif')
    run(args + ['--save', first], folder)
    run(args + ['--save', second], folder)
    count = math.ceil(10 / every)   # steps 0, 4, 8
    check_recording(first, count, (h, w, 3))
    with open(first, 'rb') as a, open(second, 'rb') as b:
        assert a.read() == b.read()   # fixed seeds: the README's commands remake the committed GIFs
    # GIF delays count in 1/100 s; they add up to the episode's time at the env's frame rate
    assert gif_milliseconds(first) == 10 * round(count * every * 100 / fps)


def test_real_game_recording_is_the_episode_norender_scores(tmp_path):
    """The recorded episode is the one model.py norender plays: same seed, same score."""
    path = str(tmp_path / 'r.gif')
    recorded = run(['model.py', 'render', CAR_PARAMS, '3', '--max_steps', '30', '--save', path], CAR).stdout
    scored = run(['model.py', 'norender', CAR_PARAMS, '3', '--max_steps', '30', '--episodes', '1'], CAR).stdout
    assert recorded.splitlines()[0] == scored.splitlines()[0]
    doom_recorded = run(['model.py', 'doomreal', 'render', DOOM_PARAMS, '2', '--max_steps', '40', '--save',
                         str(tmp_path / 'd.mp4')], DOOM).stdout
    doom_scored = run(['model.py', 'doomreal', 'norender', DOOM_PARAMS, '2', '--max_steps', '40', '--episodes', '1'],
                      DOOM).stdout
    assert doom_recorded.splitlines()[0] == doom_scored.splitlines()[0]


def test_save_opens_no_window(tmp_path):
    """With an SDL video driver that does not exist any window would fail: --save needs none."""
    for folder, args, _, _ in COMMANDS.values():
        run(args + ['--save', str(tmp_path / ('%d.gif' % len(os.listdir(str(tmp_path)))))], folder,
            driver='no_such_driver')
    proc = run(COMMANDS['doom dream'][1], DOOM, driver='no_such_driver', check=False)
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr
    assert proc.stderr.strip().startswith('cannot open a window') and '--save' in proc.stderr


def test_show_with_save_also_opens_the_window(tmp_path):
    path = str(tmp_path / 'd.gif')
    run(COMMANDS['carracing dream'][1] + ['--save', path, '--show'], CAR)
    assert read_frames(path).shape[0] == STEPS
    assert run(COMMANDS['carracing dream'][1] + ['--save', str(tmp_path / 'e.gif'), '--show'], CAR,
               driver='no_such_driver', check=False).returncode != 0


def test_bad_flags_are_one_line_and_nothing_is_overwritten(tmp_path):
    existing = tmp_path / 'replay.gif'
    existing.write_bytes(b'keep me')
    folder, args, _, _ = COMMANDS['carracing real']
    for extra, words in (
            (['--save', str(tmp_path / 'replay.avi')], "unknown extension '.avi' (use .gif or .mp4)"),
            (['--save', str(existing)], 'replay.gif exists (--overwrite replaces it)'),
            (['--save', str(tmp_path / 'nowhere' / 'r.gif')], 'no folder'),
            (['--save', str(tmp_path / 'r.gif'), '--every', '0'], 'argument --every: 0 is below the minimum 1'),
            (['--save', str(tmp_path / 'r.gif'), '--scale', '0'], 'argument --scale: 0 must be > 0'),
            (['--show'], '--show goes with --save')):
        proc = run(args + extra, folder, check=False)
        assert proc.returncode == 2 and 'Traceback' not in proc.stderr, extra
        assert words in proc.stderr.strip().splitlines()[-1], proc.stderr
    proc = run(['model.py', 'norender', CAR_PARAMS, '--save', str(tmp_path / 'r.gif')], CAR, check=False)
    assert proc.returncode == 2 and '--save records render mode' in proc.stderr
    proc = run(['model.py', 'doomreal', 'norender', DOOM_PARAMS, '--save', str(tmp_path / 'r.gif')], DOOM, check=False)
    assert proc.returncode == 2 and '--save records render mode' in proc.stderr
    assert existing.read_bytes() == b'keep me'
    run(args + ['--save', str(existing), '--overwrite', '--scale', '1'], folder)
    check_recording(str(existing), STEPS, (96, 288, 3))


def test_notebook_gets_the_pictures_save_writes(tmp_path):
    """replay_pictures / dream_pictures return the arrays that --save encodes; gif_bytes shows them inline."""
    for car in folder_modules(CAR, ['model', 'dream_model']):
        cwd = os.getcwd()
        os.chdir(CAR)
        try:
            frames, score, steps = car.model.replay_pictures(CAR_PARAMS, 0, max_steps=STEPS, scale=1)
            again = car.model.replay_pictures(CAR_PARAMS, 0, max_steps=STEPS, scale=1)[0]
            dream = car.dream_model.dream_pictures(CAR_PARAMS, seed=5, steps=STEPS, every=2, scale=2)
        finally:
            os.chdir(cwd)
    assert frames.shape == (STEPS, 96, 288, 3) and frames.dtype == np.uint8 and steps == STEPS
    assert np.array_equal(frames, again)
    assert dream.shape == (3, 128, 128, 3)
    path = str(tmp_path / 'r.gif')
    run(COMMANDS['carracing real'][1] + ['--save', path, '--scale', '1'], CAR)
    saved = read_frames(path)
    # the GIF holds the same pictures, up to its 256-colour palette
    assert np.abs(saved.astype(int) - frames.astype(int)).mean() < 3
    shown = Image.open(__import__('io').BytesIO(recording.gif_bytes(frames, 50)))
    assert shown.n_frames == STEPS and shown.size == (288, 96)
    for doom in folder_modules(DOOM, ['doomreal', 'model']):
        cwd = os.getcwd()
        os.chdir(DOOM)
        try:
            real, survived = doom.doomreal.replay_pictures(DOOM_PARAMS, 0, max_steps=STEPS, scale=0.5)
            dreamed, dream_steps = doom.model.dream_pictures(DOOM_PARAMS, 0, max_steps=STEPS)
        finally:
            os.chdir(cwd)
    assert real.shape == (STEPS, 120, 400, 3) and survived == STEPS
    assert dreamed.shape == (dream_steps, 64, 64, 3)


def test_gif_delays_keep_the_frame_rate():
    """35 fps is 28.57 ms a frame, which GIF's 1/100 s cannot hold: the delays alternate."""
    delays = recording.gif_durations(35, 35)
    assert sum(delays) == 1000 and set(delays) == {20, 30}
    assert recording.gif_durations(4, 50) == [20] * 4
