"""Argument checks done in Python, before anything reaches C: a wrong type
raises TypeError, a value out of range ValueError."""

import math
import numbers

INT_MAX = 2**31 - 1


def integer(value, name, lo=1, hi=INT_MAX):
    """An int in [lo, hi] (bool is not accepted)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError("%s must be an int, not %s" % (name, type(value).__name__))
    value = int(value)
    if value < lo or value > hi:
        if hi == INT_MAX:
            raise ValueError("%s must be >= %d, got %d" % (name, lo, value))
        raise ValueError("%s must be in [%d, %d], got %d" % (name, lo, hi, value))
    return value


def real(value, name, lo=None, hi=None, lo_open=False, hi_open=False):
    """A finite real number within the given bounds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError("%s must be a number, not %s" % (name, type(value).__name__))
    value = float(value)
    if not math.isfinite(value):
        raise ValueError("%s must be finite, got %r" % (name, value))
    bad = ((lo is not None and (value < lo or (lo_open and value == lo)))
           or (hi is not None and (value > hi or (hi_open and value == hi))))
    if bad:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        raise ValueError("%s must be in %s%s, %s%s, got %r" % (name, left, "-inf" if lo is None else lo,
                                                               "inf" if hi is None else hi, right, value))
    return value


def boolean(value, name):
    if not isinstance(value, (bool, numbers.Integral)):
        raise TypeError("%s must be a bool, not %s" % (name, type(value).__name__))
    return bool(value)


def shape(value, name):
    """A sample shape: an int or a sequence of positive ints."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, (tuple, list)):
        raise TypeError("%s must be a tuple of ints, not %s" % (name, type(value).__name__))
    if not value:
        raise ValueError("%s must have at least one dimension" % name)
    return tuple(integer(d, "%s[%d]" % (name, i)) for i, d in enumerate(value))


def pair(value, name, lo=1, same=False):
    """An int, or a pair of ints (equal ones when `same`), as torch accepts for kernels and strides."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError("%s must be an int or a pair of ints, got %r" % (name, value))
        a, b = (integer(v, name, lo) for v in value)
        if same and a != b:
            raise ValueError("%s must be the same in both directions here, got %r" % (name, tuple(value)))
        return a, b
    v = integer(value, name, lo)
    return v, v


def choice(value, name, options):
    if not isinstance(value, str):
        raise TypeError("%s must be a str, not %s" % (name, type(value).__name__))
    if value not in options:
        raise ValueError("%s must be one of %s, got %r" % (name, ", ".join(repr(o) for o in options), value))
    return value
