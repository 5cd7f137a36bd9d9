"""Argument checks shared by the tensor, the ops and the layers.

Each takes the argument's ``name`` and the ``op_name`` of the function or layer being called,
and raises TypeError (wrong kind of value) or ValueError (right kind, wrong value) with a
message naming both: "conv2d: stride must be positive, got (0, 1)". The checks depend on numpy
alone, so every layer of minigrad, the Tensor included, can use them. Converting an argument to
a tensor (``as_tensor``, ``float_input``) lives with the Tensor in ``minigrad.tensor``; window
geometry (output sizes, padding resolution) in ``minigrad.ops.geometry``.
"""
import math
import numbers
from typing import NamedTuple

import numpy as np


def flag(value, name, op_name):
    """``value`` as a bool; TypeError naming ``name`` unless it is a bool (or numpy bool)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op_name}: {name} must be a bool, got {value!r}")
    return bool(value)


def real_number(value, name, op_name, finite=True):
    """``value`` as a Python float; TypeError naming ``name`` unless it is a real number (bools
    excluded), ValueError when it is too large for a float or, with ``finite``, inf or NaN."""
    if type(value) is float:        # the common case, without the slower ABC checks below
        number = value
    elif not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op_name}: {name} must be a real number, got {value!r}")
    else:
        try:
            number = float(value)
        except OverflowError:
            raise ValueError(f"{op_name}: {name} is too large for a float, got "
                             f"{str(value)[:20]}... ({len(str(value))} digits)") from None
    if finite and not math.isfinite(number):
        raise ValueError(f"{op_name}: {name} must be finite, got {value!r}")
    return number


def positive_int(value, name, op_name):
    """``value`` as a Python int; ValueError naming ``name`` unless it is an integer >= 1
    (bools excluded)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{op_name}: {name} must be a positive integer, got {value!r}")
    return int(value)


def probability(value, name, op_name):
    """``value`` as a Python float; ValueError naming ``name`` unless it is a real number in
    [0, 1] (bools excluded)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{op_name}: {name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def as_dtype(dtype, op_name, name="dtype"):
    """``np.dtype(dtype)``; TypeError naming the argument when numpy does not know it."""
    try:
        return np.dtype(dtype)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{op_name}: {name} must be a numpy dtype such as np.float32, got "
                        f"{dtype!r} ({e})") from None


def pair(value, name, op_name):
    """(h, w) from an int, a pair of ints or a one-int tuple (PyTorch accepts ``padding=(1,)``
    for 1); TypeError naming ``name`` otherwise."""
    # the common cases first, without the slower ABC checks below
    if type(value) is int:
        return value, value
    if type(value) is tuple and len(value) == 2 and type(value[0]) is type(value[1]) is int:
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) in (1, 2) and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value):
        return int(value[0]), int(value[-1])
    raise TypeError(f"{op_name}: {name} must be an int or a pair of ints, got {value!r}")


def alias(value, torch_value, name, torch_name, op_name):
    """One argument that minigrad calls ``name`` and PyTorch ``torch_name`` (``axis``/``dim``,
    ``keepdims``/``keepdim``): whichever was given (None: neither); TypeError when both were."""
    if torch_value is None:
        return value
    if value is not None:
        raise TypeError(f"{op_name}: give {name} or {torch_name}, not both (got {name}={value!r}, "
                        f"{torch_name}={torch_value!r})")
    return torch_value


def check_min(values, minimum, name, op_name):
    """ValueError naming ``name`` when a value is below ``minimum`` ("positive" for 1)."""
    if min(values, default=minimum) < minimum:
        relation = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{op_name}: {name} must be {relation}, got {values}")


def check_max(values, maximum, name, op_name):
    """ValueError naming ``name`` when a value exceeds ``maximum`` (e.g. the kernels' C int)."""
    if max(values, default=maximum) > maximum:
        raise ValueError(f"{op_name}: {name} must be at most {maximum}, got {values}")


def check_axis(axis, ndim, op_name, name="axis", of="a tensor"):
    """``axis`` in [-ndim, ndim) as a non-negative int; TypeError/ValueError naming ``name`` and
    describing the tensor it indexes (``of``) otherwise."""
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, (bool, np.bool_)):
        raise TypeError(f"{op_name}: {name} must be an int, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op_name}: {name} {axis} is out of range for {of} with {ndim} "
                         "dimensions")
    return int(axis) % ndim


def check_float(x, op_name, name):
    """TypeError naming ``name`` unless the tensor or array ``x`` is float32 or float64 (the
    dtypes the kernels are compiled for)."""
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{op_name}: {name} must be float32 or float64, got dtype {x.dtype}")


def check_input_4d(x, op_name, name="input"):
    """ValueError/TypeError naming ``name`` unless ``x`` is a 4-D (N, C, H, W) float32 or
    float64 tensor (the ops' public wrappers take an unbatched (C, H, W) too, see
    ``minigrad.ops.shape.batch_of_one``)."""
    if x.ndim != 4:
        raise ValueError(f"{op_name}: {name} must be 3-D (C, H, W) or 4-D (N, C, H, W), got shape "
                         f"{x.shape}")
    check_float(x, op_name, name)


# -- cached checks ---------------------------------------------------------------------------------
# A network calls its ops with the same few argument sets at every step, so the ops with the
# most checks (conv2d, max_pool2d) cache them, keyed by the tensors' specs and the arguments.

class Spec(NamedTuple):
    """A tensor argument as the checks see it: its shape and dtype (hashable, a cache key)."""
    shape: tuple
    dtype: np.dtype

    @property
    def ndim(self):
        return len(self.shape)


def plain(value):
    """Whether an argument can key a checks' cache: an int, a string or a tuple of ints. Not a
    bool or a float, which compare equal to an int (the cache would confuse 1, 1.0 and True,
    which the checks tell apart)."""
    kind = type(value)
    if kind is int or kind is str:
        return True
    if kind is not tuple:
        return False
    for v in value:
        if type(v) is not int:
            return False
    return True

