"""argparse types that reject out-of-range numbers with argparse's own one-line error.

    p.add_argument('--batch_size', type=positive_int, ...)
    p.add_argument('--sigma_init', type=positive_float, ...)

A bad value then stops the script before it loads data or starts MPI, instead of a
traceback (batch 0, seq_len 1) or a run that silently computes nan (sigma nan, episodes 0).

The path types check only what a path is, never its contents (the loaders name what is wrong
inside a file), and create nothing: a folder where a file belongs, a file where a folder
belongs, or an output place that cannot be written stops the script at once, not after an
hour of work when the result is saved.
"""

import argparse
import math
import os


def _number(kind, text):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError('%r is not %s' % (text, 'an integer' if kind is int else 'a number'))
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError('%r is not a finite number' % text)
    return value


def int_at_least(low):
    def check(text):
        value = _number(int, text)
        if value < low:
            raise argparse.ArgumentTypeError('%d is below the minimum %d' % (value, low))
        return value
    check.__name__ = 'integer >= %d' % low   # argparse names the type in its message
    return check


def float_range(low=None, high=None, low_open=False):
    """A finite float in [low, high] (low excluded when low_open)."""
    def check(text):
        value = _number(float, text)
        if low is not None and (value < low or (low_open and value == low)):
            raise argparse.ArgumentTypeError('%g must be %s %g' % (value, '>' if low_open else '>=', low))
        if high is not None and value > high:
            raise argparse.ArgumentTypeError('%g must be <= %g' % (value, high))
        return value
    check.__name__ = 'number'
    return check


positive_int = int_at_least(1)
nonnegative_int = int_at_least(0)
positive_float = float_range(0.0, low_open=True)
nonnegative_float = float_range(0.0)
finite_float = float_range()
random_seed = nonnegative_int   # every seed flag: numpy's generators and the envs take no negative seeds


def input_file(text):
    """A file to read. A missing one is left to the loader, whose message says what makes it."""
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError('%s is a folder, not a file' % text)
    return text


def input_dir(text):
    """A folder to read from (a missing one is left to the script, as for input_file)."""
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError('%s is a file, not a folder' % text)
    return text


def _writable_place(text, folder):
    """Raise ArgumentTypeError (naming text) unless folder exists or can be made: its nearest
    existing ancestor must be a folder we may write in."""
    ancestor = os.path.abspath(folder)
    while not os.path.exists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise argparse.ArgumentTypeError('%s: %s is a file, not a folder' % (text, ancestor))
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError('%s: cannot write in %s' % (text, ancestor))


def output_file(text):
    """A file to write: not a folder, and its folder exists or can be made ('' stays '': none)."""
    if not text:
        return text
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError('%s is a folder, not a file' % text)
    if os.path.exists(text):
        if not os.access(text, os.W_OK):
            raise argparse.ArgumentTypeError('%s: cannot write it' % text)
    else:
        _writable_place(text, os.path.dirname(os.path.abspath(text)))
    return text


def output_dir(text):
    """A folder to write in: not a file, and it exists or can be made."""
    if not text:
        raise argparse.ArgumentTypeError('an empty path is no folder')
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError('%s is a file, not a folder' % text)
    _writable_place(text, text)
    return text

