"""argparse types that reject out-of-range numbers with argparse's own one-line error.

    p.add_argument('--batch_size', type=positive_int, ...)
    p.add_argument('--sigma_init', type=positive_float, ...)

A bad value then stops the script before it loads data or starts MPI, instead of a
traceback (batch 0, seq_len 1) or a run that silently computes nan (sigma nan, episodes 0).
"""

import argparse
import math


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
