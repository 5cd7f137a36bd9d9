"""Weight initialisers (``minigrad.nn.init``), PyTorch's formulas and names.

Each fills ``tensor`` (a Tensor/Parameter or a numpy array) in place, keeps its dtype, and returns
it. Random ones draw from ``rng`` (a ``numpy.random.Generator`` or an integer seed), else from the
global generator that ``minigrad.manual_seed`` seeds.

Fans follow PyTorch: for a weight of shape (out, in, *kernel), ``fan_in = in · prod(kernel)`` and
``fan_out = out · prod(kernel)``.
"""
import math
import numbers

import numpy as np

from ..random import resolve_rng
from ..tensor import Tensor

_UNIT_GAIN = ("linear", "identity", "sigmoid", "conv1d", "conv2d", "conv3d",
              "conv_transpose1d", "conv_transpose2d", "conv_transpose3d")


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity: 1 for linear/conv/sigmoid, 5/3 for tanh,
    √2 for relu, √(2 / (1 + slope²)) for leaky_relu (slope ``param``, default 0.01), 3/4 for
    selu."""
    if nonlinearity in _UNIT_GAIN:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, numbers.Real) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ValueError(f"calculate_gain: negative slope {param!r} is not a number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _array(tensor, fn_name):
    array = tensor.data if isinstance(tensor, Tensor) else tensor
    if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
        raise TypeError(f"{fn_name}: tensor must be a floating-point Tensor or numpy array, got "
                        f"{type(tensor).__name__}")
    return array


def _calculate_fan_in_and_fan_out(array, fn_name):
    if array.ndim < 2:
        raise ValueError(f"{fn_name}: fan in and fan out need a tensor with at least 2 "
                         f"dimensions, got shape {array.shape}")
    receptive_field = int(np.prod(array.shape[2:]))
    return array.shape[1] * receptive_field, array.shape[0] * receptive_field


def _fan(array, mode, fn_name):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{fn_name}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(array, fn_name)
    return fan_in if mode == "fan_in" else fan_out


def _fill_uniform(tensor, low, high, rng, fn_name):
    array = _array(tensor, fn_name)
    array[...] = resolve_rng(rng, fn_name).uniform(low, high, size=array.shape)
    return tensor


def _fill_normal(tensor, mean, std, rng, fn_name):
    array = _array(tensor, fn_name)
    array[...] = resolve_rng(rng, fn_name).normal(mean, std, size=array.shape)
    return tensor


def uniform_(tensor, a=0.0, b=1.0, rng=None):
    """Fill with U(a, b)."""
    if not a <= b:
        raise ValueError(f"uniform_: a ({a}) must not exceed b ({b})")
    return _fill_uniform(tensor, a, b, rng, "uniform_")


def normal_(tensor, mean=0.0, std=1.0, rng=None):
    """Fill with N(mean, std²)."""
    if std < 0:
        raise ValueError(f"normal_: std must be non-negative, got {std}")
    return _fill_normal(tensor, mean, std, rng, "normal_")


def constant_(tensor, val):
    _array(tensor, "constant_")[...] = val
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def _kaiming_std(tensor, a, mode, nonlinearity, fn_name):
    """gain / √fan, or None for an empty tensor (nothing to fill)."""
    array = _array(tensor, fn_name)
    fan = _fan(array, mode, fn_name)
    return None if array.size == 0 else calculate_gain(nonlinearity, a) / math.sqrt(fan)


def _xavier_std(tensor, gain, fn_name):
    """gain · √(2 / (fan_in + fan_out)), or None for an empty tensor."""
    array = _array(tensor, fn_name)
    fan_in, fan_out = _calculate_fan_in_and_fan_out(array, fn_name)
    return None if array.size == 0 else gain * math.sqrt(2.0 / (fan_in + fan_out))


def _fill_with_std(tensor, std, uniform, rng, fn_name):
    """N(0, std²), or U(−√3·std, √3·std), which has the same standard deviation."""
    if std is None:
        return tensor
    if uniform:
        return _fill_uniform(tensor, -math.sqrt(3.0) * std, math.sqrt(3.0) * std, rng, fn_name)
    return _fill_normal(tensor, 0.0, std, rng, fn_name)


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", rng=None):
    """He et al. (2015) uniform: U(−bound, bound) with bound = gain · √(3 / fan), gain from
    ``calculate_gain(nonlinearity, a)``."""
    std = _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_uniform_")
    return _fill_with_std(tensor, std, True, rng, "kaiming_uniform_")


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", rng=None):
    """He et al. (2015) normal: N(0, std²) with std = gain / √fan."""
    std = _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_normal_")
    return _fill_with_std(tensor, std, False, rng, "kaiming_normal_")


def xavier_uniform_(tensor, gain=1.0, rng=None):
    """Glorot & Bengio (2010) uniform: U(−a, a) with a = gain · √(6 / (fan_in + fan_out))."""
    std = _xavier_std(tensor, gain, "xavier_uniform_")
    return _fill_with_std(tensor, std, True, rng, "xavier_uniform_")


def xavier_normal_(tensor, gain=1.0, rng=None):
    """Glorot & Bengio (2010) normal: N(0, std²) with std = gain · √(2 / (fan_in + fan_out))."""
    std = _xavier_std(tensor, gain, "xavier_normal_")
    return _fill_with_std(tensor, std, False, rng, "xavier_normal_")
