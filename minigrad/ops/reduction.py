"""Reductions: sum, mean and max over an axis (or several, or all) with keepdims."""
import builtins

import numpy as np

from ..function import Function


def normalize_axes(axis, ndim, op_name):
    """Tuple of non-negative axes for ``axis`` (None = all); ValueError when out of range."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or not -ndim <= a < builtins.max(ndim, 1):
            raise ValueError(f"{op_name}: axis {axis} is out of range for a tensor with "
                             f"{ndim} dimensions")
        out.append(int(a) % builtins.max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{op_name}: repeated axis in {axis}")
    return tuple(sorted(out))


def _expand(gy, shape, axes, keepdims):
    """Reinsert the reduced axes into ``gy`` so it broadcasts against the input."""
    if not keepdims:
        for a in axes:
            gy = np.expand_dims(gy, a)
    return gy


class Sum(Function):
    def __init__(self, axes, keepdims):
        self.axes, self.keepdims = axes, keepdims

    def forward(self, x):
        self.shape = x.shape
        return np.sum(x, axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy):
        gy = _expand(gy, self.shape, self.axes, self.keepdims)
        return np.broadcast_to(gy, self.shape).copy()


class Mean(Function):
    def __init__(self, axes, keepdims):
        self.axes, self.keepdims = axes, keepdims

    def forward(self, x):
        self.shape = x.shape
        self.count = int(np.prod([x.shape[a] for a in self.axes]))
        return np.mean(x, axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy):
        gy = _expand(gy, self.shape, self.axes, self.keepdims) / self.count
        return np.broadcast_to(gy, self.shape).astype(gy.dtype, copy=True)


class Max(Function):
    """Maximum; on ties the gradient is shared equally among the maxima (like torch.amax)."""

    def __init__(self, axes, keepdims):
        self.axes, self.keepdims = axes, keepdims

    def forward(self, x):
        y = np.max(x, axis=self.axes, keepdims=True)
        self.save_for_backward(x, y)
        return y if self.keepdims else np.squeeze(y, axis=self.axes)

    def backward(self, gy):
        x, y = self.saved_tensors
        gy = _expand(gy, x.shape, self.axes, self.keepdims)
        winners = (x == y)
        count = winners.sum(axis=self.axes, keepdims=True)
        return (winners * (gy / count)).astype(x.dtype, copy=False)


def _reduce(op_cls, name, x, axis, keepdims):
    axes = normalize_axes(axis, x.ndim, name)
    if op_cls is Max and any(x.shape[a] == 0 for a in axes):
        raise ValueError(f"max: cannot reduce an empty axis of a tensor of shape {x.shape}")
    return op_cls(axes, bool(keepdims))(x)


def sum(x, axis=None, keepdims=False):
    return _reduce(Sum, "sum", x, axis, keepdims)


def mean(x, axis=None, keepdims=False):
    return _reduce(Mean, "mean", x, axis, keepdims)


def max(x, axis=None, keepdims=False):
    return _reduce(Max, "max", x, axis, keepdims)
