"""Elementwise math: exp, log, sqrt, abs, clip, and dtype casts."""
import numpy as np

from ..function import Function
from .._validate import real_number


class Exp(Function):
    def forward(self, x):
        y = np.exp(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return gy * y


class Log(Function):
    def forward(self, x):
        self.save_for_backward(x)
        return np.log(x)

    def backward(self, gy):
        (x,) = self.saved_tensors
        return gy / x


class Sqrt(Function):
    def forward(self, x):
        y = np.sqrt(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return gy / (2 * y)


class Abs(Function):
    """|x|; the subgradient at 0 is 0 (as np.sign gives)."""

    def forward(self, x):
        self.save_for_backward(x)
        return np.abs(x)

    def backward(self, gy):
        (x,) = self.saved_tensors
        return gy * np.sign(x)


class Clip(Function):
    """Clamp to [low, high]; the gradient passes only where the input was inside."""

    def __init__(self, low, high):
        self.low, self.high = low, high

    def forward(self, x):
        self.save_for_backward(x)
        return np.clip(x, self.low, self.high)

    def backward(self, gy):
        (x,) = self.saved_tensors
        inside = np.ones(x.shape, dtype=bool)
        if self.low is not None:
            inside &= x >= self.low
        if self.high is not None:
            inside &= x <= self.high
        return np.where(inside, gy, 0).astype(gy.dtype, copy=False)


class Cast(Function):
    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, x):
        self.input_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy):
        return gy.astype(self.input_dtype)


def exp(x):
    return Exp()(x)


def log(x):
    return Log()(x)


def sqrt(x):
    return Sqrt()(x)


def abs(x):
    return Abs()(x)


def clip(x, min=None, max=None):
    """Clamp ``x`` to [min, max] (either bound may be None, not both; ±inf allowed)."""
    if min is None and max is None:
        raise ValueError("clip: at least one of min and max must be given")
    for bound, name in ((min, "min"), (max, "max")):
        if bound is not None:
            real_number(bound, name, "clip", finite=False)
    if min is not None and max is not None and min > max:
        raise ValueError(f"clip: min ({min}) must not exceed max ({max})")
    return Clip(min, max)(x)
