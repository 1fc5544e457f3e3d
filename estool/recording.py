"""Pictures of episodes: show them in a window, write them to a GIF or an MP4, or return them.

An experiment's render command makes one picture (H, W, 3) uint8 per step and hands the
iterable to `output()`, which keeps every k-th (`--every`), scales it (`--scale`), shows it
in a pygame window and/or streams it to `--save PATH`. `pictures()` is the part that a
notebook calls to get the same frames as an array.

GIFs are written by Pillow, MP4s (H.264) by the ffmpeg binary that the imageio-ffmpeg wheel
brings, through imageio. With --save alone no window opens and pygame's display is never
initialised, so a recording needs no display or X server.
"""

import contextlib
import io
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import threading

import numpy as np
from PIL import Image

from estool.argtypes import float_range, positive_int

FORMATS = ('.gif', '.mp4')
MAX_SCALE = 16   # the largest picture (the real game's 800 x 240) then has 12,800 columns
# Signals that end a process by default: during a recording they raise instead, so that the
# temporary file goes (SIGKILL cannot be caught; SIGINT raises KeyboardInterrupt already).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ('SIGTERM', 'SIGHUP', 'SIGQUIT') if hasattr(signal, name))
NO_WINDOW_DRIVERS = ('dummy', 'offscreen')   # SDL video drivers that draw nowhere


class Stopped(KeyboardInterrupt):
    """A stop signal arrived while a recording was written (handled as Ctrl-C is)."""


def add_recording_arguments(parser, scale, scale_default_help=None):
    """Add --save, --show, --every, --scale and --overwrite to a render command's parser.
    scale: the default --scale (None: the command sets it, as scale_default_help says)."""
    g = parser.add_argument_group('pictures (render mode)')
    g.add_argument('--save', metavar='PATH',
                   help='write the pictures to PATH, a .gif or .mp4 file chosen by its extension, instead of '
                        'opening a window (no display needed)')
    g.add_argument('--show', action='store_true', help='with --save: open the window as well')
    g.add_argument('--every', type=positive_int, default=1, metavar='K',
                   help="keep one step's picture in K; the file plays at the env's frame rate / K, so still "
                        'in real time (default: %(default)s)')
    g.add_argument('--scale', type=float_range(0.0, MAX_SCALE, low_open=True), default=scale,
                   help='size of the window and of the saved pictures relative to the native picture, '
                        'above 0 and at most %g (default: %s)' % (MAX_SCALE, scale_default_help or '%(default)s'))
    g.add_argument('--overwrite', action='store_true', help='replace the --save file if it exists')


def check_arguments(parser, args, window=True):
    """One-line errors for bad recording flags, and for a recording or a window that could not
    be made, before any episode runs. window=False: the command opens none whatever the flags
    (dream_model.py --no_window)."""
    if args.every < 1:
        parser.error('--every must be at least 1')
    if not 0 < args.scale <= MAX_SCALE:
        parser.error('--scale must be above 0 and at most %g' % MAX_SCALE)
    if args.show and not args.save:
        parser.error('--show goes with --save (without --save the window opens anyway)')
    if args.save:
        try:
            check_save_path(args.save, args.overwrite)
        except ValueError as e:
            parser.error(str(e))
    if window and (args.show or not args.save):
        check_window()


def check_window():
    """Exit in one line unless a window can be opened. Without a display SDL falls back by
    itself to a driver that draws nowhere, and the episode would play to no one and exit 0;
    a driver named in SDL_VIDEODRIVER (the tests' dummy) is the user's choice and is kept."""
    import pygame
    try:
        with _c_stderr_silenced():   # SDL prints its own complaints (XDG_RUNTIME_DIR, ...) there
            pygame.display.init()
        driver = pygame.display.get_driver()
    except pygame.error as e:
        sys.exit('cannot open a window (%s); --save PATH records without a display' % e)
    finally:
        pygame.display.quit()
    if driver in NO_WINDOW_DRIVERS and not os.environ.get('SDL_VIDEODRIVER'):
        sys.exit('cannot open a window: no display (SDL found only its %r driver, which shows nothing); '
                 '--save PATH records without one' % driver)


class _c_stderr_silenced:
    """File descriptor 2 to /dev/null for a while (what C libraries write there), then back."""

    def __enter__(self):
        sys.stderr.flush()
        self.saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)

    def __exit__(self, *exc):
        os.dup2(self.saved, 2)
        os.close(self.saved)
        return False


def check_save_path(path, overwrite=False):
    """Raise ValueError (one line) unless path can take a new recording: a known extension, a
    folder that takes files, not a folder itself, an existing file only with overwrite, and for
    an MP4 an ffmpeg that runs."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise ValueError('%s: unknown extension %r (use %s)' % (path, ext, ' or '.join(FORMATS)))
    folder = os.path.dirname(path) or '.'
    if not os.path.isdir(folder):
        raise ValueError('%s: no folder %s' % (path, folder))
    if os.path.isdir(path):
        raise ValueError('%s is a folder, not a file; --save wants a file name' % path)
    if os.path.exists(path) and not overwrite:
        raise ValueError('%s exists (--overwrite replaces it)' % path)
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise ValueError('%s: cannot write in %s (%s)' % (path, folder, e.strerror or e))
    if ext == '.mp4':
        check_ffmpeg()


def check_ffmpeg():
    """Raise ValueError (one line) unless the ffmpeg that writes MP4s runs."""
    import imageio_ffmpeg
    try:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
        subprocess.run([exe, '-version'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                       timeout=30)
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        source = ' (IMAGEIO_FFMPEG_EXE)' if os.environ.get('IMAGEIO_FFMPEG_EXE') else ''
        raise ValueError('cannot write an MP4: ffmpeg %s%s does not run (%s); a .gif needs no ffmpeg'
                         % (os.environ.get('IMAGEIO_FFMPEG_EXE') or 'of imageio-ffmpeg', source,
                            str(e).splitlines()[0] if str(e) else type(e).__name__))


def side_by_side(images, height):
    """Images (h, w, 3) uint8 scaled to `height` rows (nearest neighbour, aspect kept: the
    pixels a model sees stay visible as pixels), left to right -> (height, W, 3) uint8."""
    row = []
    for img in images:
        h, w = img.shape[:2]
        size = (max(1, round(w * height / h)), height)
        row.append(np.asarray(Image.fromarray(img).resize(size, Image.NEAREST)) if (w, h) != size else img)
    return np.concatenate(row, axis=1)


def scale_picture(picture, scale):
    """Resize by `scale` to even sides (H.264's 4:2:0 chroma needs them). Upscaling repeats
    pixels; downscaling averages them (a box filter), which also keeps GIF palettes small."""
    h, w = picture.shape[:2]
    size = (max(2, 2 * round(w * scale / 2)), max(2, 2 * round(h * scale / 2)))
    if size == (w, h):
        return picture
    method = Image.NEAREST if scale >= 1 else Image.BOX
    return np.asarray(Image.fromarray(picture).resize(size, method))


def pictures(frames, every=1, scale=1.0):
    """The pictures a render command shows and saves: every k-th of `frames`, scaled (a generator)."""
    for picture in itertools.islice(frames, 0, None, every):
        yield scale_picture(np.asarray(picture, dtype=np.uint8), scale)


class Window:
    """A pygame window that shows pictures at a fixed frame rate; opened on the first one."""

    def __init__(self, caption, fps):
        self.caption, self.fps = caption, fps
        self.window = None

    def show(self, picture):
        import pygame
        if self.window is None:
            try:
                pygame.display.init()
                self.window = pygame.display.set_mode(picture.shape[1::-1])
            except pygame.error as e:
                sys.exit('cannot open a window (%s); --save PATH records without a display' % e)
            pygame.display.set_caption(self.caption)
            self.clock = pygame.time.Clock()
        pygame.event.pump()   # a window that does not read its events is marked as not responding
        pygame.surfarray.blit_array(self.window, np.ascontiguousarray(np.transpose(picture, (1, 0, 2))))
        pygame.display.flip()
        self.clock.tick(self.fps)

    def close(self):
        if self.window is not None:
            import pygame
            pygame.display.quit()
            self.window = None


def gif_durations(n, fps):
    """Per-frame GIF delays in ms. GIF counts in 1/100 s, so 35 fps (28.6 ms) cannot be one
    delay: each frame gets the difference of the rounded times, and the total stays right."""
    ends = np.round(np.arange(n + 1) * 100.0 / fps).astype(int) * 10
    return np.diff(ends).tolist()


class GifWriter:
    """Collects pictures and writes one looping GIF on close (the format wants all frames at once).

    One 256-colour palette for the whole GIF, taken from up to PALETTE_SAMPLES pictures spread
    over it, and no dithering: a part of the picture that does not change keeps its colour
    indices, so Pillow stores only the changed rectangle of each frame and nothing flickers.
    Per-frame palettes made the CarRacing GIFs about 1.4 times as large."""

    PALETTE_SAMPLES = 32

    def __init__(self, target, fps):
        self.target, self.fps, self.frames = target, fps, []

    def append(self, picture):
        self.frames.append(np.asarray(picture, dtype=np.uint8))

    def abort(self):
        self.frames = []

    def close(self):
        if not self.frames:
            raise ValueError('no pictures to write')
        step = max(1, len(self.frames) // self.PALETTE_SAMPLES)
        palette = Image.fromarray(np.concatenate(self.frames[::step], axis=0)).quantize(
            256, method=Image.Quantize.MEDIANCUT)
        images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in self.frames]
        # Pillow merges a frame identical to the one before into it (a longer delay), so the
        # playing time stays right even where the file holds fewer frames than pictures.
        images[0].save(self.target, format='GIF', save_all=True, append_images=images[1:], loop=0,
                       duration=gif_durations(len(images), self.fps))


class Mp4Writer:
    """Streams pictures into ffmpeg (H.264, yuv420p: plays in browsers and notebooks)."""

    def __init__(self, path, fps):
        import imageio.v2 as imageio
        # macro_block_size=2: sides are already even (scale_picture); the default 16 would
        # make ffmpeg rescale the pictures.
        self.writer = imageio.get_writer(path, format='FFMPEG', mode='I', fps=fps, codec='libx264',
                                         pixelformat='yuv420p', macro_block_size=2,
                                         ffmpeg_log_level='error')

    def append(self, picture):
        self.writer.append_data(picture)

    def close(self):
        self.writer.close()

    def abort(self):
        """Stop ffmpeg (it would go on writing the file that is about to be removed)."""
        try:
            self.writer.close()
        except Exception:
            pass


def write(path, frames, fps, overwrite=False, on_picture=None):
    """Write pictures (an iterable of (H, W, 3) uint8) to path (.gif or .mp4) at fps -> count.

    The file appears only once complete (a temporary file is renamed), so an interrupted or
    failed recording leaves nothing behind; an existing file is kept unless overwrite.
    on_picture(picture) is called for each picture as it is written (e.g. Window.show)."""
    check_save_path(path, overwrite)
    ext = os.path.splitext(path)[1].lower()
    tmp = os.path.join(os.path.dirname(path) or '.', '.%s.part%s' % (os.path.basename(path), ext))
    count = 0
    with stop_signals_raise() as stop:
        writer = GifWriter(tmp, fps) if ext == '.gif' else Mp4Writer(tmp, fps)
        try:
            for picture in frames:
                with stop.deferred():   # not halfway through a picture in ffmpeg's pipe
                    writer.append(picture)
                if on_picture:
                    on_picture(picture)
                count += 1
            writer.close()
            if count == 0:
                raise ValueError('no pictures to write')
            check_save_path(path, overwrite)   # made while the episode ran?
            os.replace(tmp, path)
        except BaseException:
            writer.abort()
            raise
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    return count


class stop_signals_raise:
    """While a recording is written, a stop signal (STOP_SIGNALS) raises Stopped instead of
    ending the process at once, so the temporary file is removed; the previous handlers come
    back afterwards. Outside the main thread (where Python cannot set handlers) it does nothing.

    Inside `deferred()` the signal waits for the block's end: a picture cut off halfway
    through ffmpeg's pipe makes ffmpeg print errors about a short frame."""

    def __enter__(self):
        self.previous, self.pending, self.holding = {}, None, False
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                if signal.getsignal(signum) is signal.SIG_DFL:   # a handler of the caller's stays
                    self.previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def _on_signal(self, signum, frame):
        if self.holding:
            self.pending = signum
        else:
            self._raise(signum)

    @staticmethod
    def _raise(signum):
        raise Stopped('stopped by %s' % signal.Signals(signum).name)

    @contextlib.contextmanager
    def deferred(self):
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
        if self.pending is not None:
            self._raise(self.pending)

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        return False


def gif_bytes(frames, fps):
    """A looping GIF of frames, as bytes: `IPython.display.Image(data=gif_bytes(frames, 50))`."""
    out = io.BytesIO()
    writer = GifWriter(out, fps)
    for picture in frames:
        writer.append(np.asarray(picture, dtype=np.uint8))
    writer.close()
    return out.getvalue()


def output(frames, args, fps, caption):
    """Run a render command's pictures: every k-th, scaled, to the window and/or to --save.

    frames: the native pictures, one per step (the generator drives the episode). Returns the
    number of pictures shown or saved."""
    shown = pictures(frames, args.every, args.scale)
    window = Window(caption, fps / args.every) if args.show or not args.save else None
    try:
        if args.save:
            count = write(args.save, shown, fps / args.every, args.overwrite, window.show if window else None)
            print('wrote %d pictures to %s' % (count, args.save), file=sys.stderr)
            return count
        count = 0
        for picture in shown:
            window.show(picture)
            count += 1
        return count
    finally:
        if window:
            window.close()
