"""Watch a trained controller drive inside M's dream, shown through V's decoder.

    python dream_model.py log/carracing.cma.16.64.best.json
    python dream_model.py log/carracing.cma.16.64.best.json --temperature 1.15 --steps 500
    python dream_model.py log/carracing.cma.16.64.best.json --steps 300 --save dream.gif --every 2 --scale 3

Needs vae/vae.json, rnn/rnn.json and initial_z/initial_z.json. Each step's picture is V's
decoding of the z that M dreamed (64x64, shown 8 times larger). --save writes the pictures to
a GIF or MP4 instead of opening a window (no display needed); --no_window runs the same loop
without a window or a file. Both print statistics of the dreamed frames and actions. In a
notebook, `dream_pictures(...)` returns the pictures as an array.
"""

import os

# One episode at a time means small matrix products: BLAS threads only add overhead.
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')

import argparse  # noqa: E402
import sys

import numpy as np

from estool.argtypes import input_file, nonnegative_int, positive_float, positive_int, random_seed
from dream_env import CarRacingDreamEnv
from estool import recording
from runtime import Controller, exit_on_weights_error, load_params

FPS = CarRacingDreamEnv.metadata['render_fps']
PICTURE_SCALE = 8   # the window: 512 x 512


def dream_steps(env, controller, seed, steps, actions=None):
    """Drive the dream for `steps` steps, yielding V's decoding of each dreamed z (64, 64, 3)
    uint8 after the step; each action is appended to `actions` (a list), if given."""
    obs, _ = env.reset(seed=seed)
    z_size = env.rnn.z_size
    for _ in range(steps):
        action = controller.act(obs[None, :z_size], obs[None, z_size:])[0]
        obs, _, _, truncated, _ = env.step(action)
        if actions is not None:
            actions.append(action)
        yield env.render()
        if truncated:
            return


def make_dream(params_file, vae='vae/vae.json', rnn='rnn/rnn.json', initial_z='initial_z/initial_z.json',
               temperature=1.0, steps=1000, gen=None):
    """-> (CarRacingDreamEnv, Controller with the params of params_file, or with gen, of that
    generation's evaluated mean in a .log.json); raises WeightsError."""
    env = CarRacingDreamEnv(vae, rnn, initial_z, temperature, steps, render_mode='rgb_array')
    controller = Controller(env.rnn.z_size, env.rnn.units)
    controller.set_params(load_params(params_file, controller.num_params, gen))
    return env, controller


def dream_pictures(params_file, seed=0, temperature=1.0, steps=1000, every=1, scale=1.0, **paths):
    """The pictures `dream_model.py --save` writes, as an array (n, H, W, 3) uint8, for a
    notebook (run from carracing/; paths: vae, rnn, initial_z). Show with
    `IPython.display.Image(data=recording.gif_bytes(pictures, FPS / every))`."""
    env, controller = make_dream(params_file, temperature=temperature, steps=steps, **paths)
    return np.stack(list(recording.pictures(dream_steps(env, controller, seed, steps), every, scale)))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('params_file', type=input_file, help='controller log: log/<name>.best.json, log/<name>.json, '
                                       'or log/<name>.log.json with --gen')
    p.add_argument('--gen', type=nonnegative_int,
                   help='with a .log.json: drive with the mean that train.py evaluated at this generation')
    p.add_argument('--vae', type=input_file, default='vae/vae.json', help='V weights (default: %(default)s)')
    p.add_argument('--rnn', type=input_file, default='rnn/rnn.json', help='M weights (default: %(default)s)')
    p.add_argument('--initial_z', type=input_file, default='initial_z/initial_z.json', help='starting z (default: %(default)s)')
    p.add_argument('--temperature', type=positive_float, default=1.0, help='sampling temperature of M (default: %(default)s)')
    p.add_argument('--steps', type=positive_int, default=1000, help='dream steps (default: %(default)s)')
    p.add_argument('--seed', type=random_seed, default=0, help='dream seed (default: %(default)s)')
    p.add_argument('--no_window', action='store_true', help='no window and no file: print statistics only')
    recording.add_recording_arguments(p, PICTURE_SCALE)
    args = p.parse_intermixed_args()
    if args.no_window and args.save:
        p.error('--no_window and --save: --save alone opens no window')
    recording.check_arguments(p, args, window=not args.no_window)

    env, controller = exit_on_weights_error(make_dream, args.params_file, args.vae, args.rnn, args.initial_z,
                                            args.temperature, args.steps, args.gen)
    actions, brightness = [], []

    def pictures():
        for frame in dream_steps(env, controller, args.seed, args.steps, actions):
            brightness.append(frame.mean())
            yield frame

    try:
        if args.no_window:
            for _ in pictures():
                pass
        else:
            recording.output(pictures(), args, FPS, 'CarRacing, dreamed by M (temperature %.2f)' % args.temperature)
    except KeyboardInterrupt:
        sys.exit('interrupted after %d steps%s' % (len(actions), '; nothing saved' if args.save else ''))
    actions = np.array(actions)
    print('dreamed %d steps; mean action steer %.3f gas %.3f brake %.3f; mean frame brightness %.1f' % (
        len(actions), *actions.mean(0), np.mean(brightness)))


if __name__ == '__main__':
    main()
