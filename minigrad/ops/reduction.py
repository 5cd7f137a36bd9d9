"""Reductions: sum, mean and max over an axis (or several, or all) with keepdims."""
import builtins

import numpy as np

from .._validate import alias, check_axis, flag
from ..function import Function


def normalize_axes(axis, ndim, op_name, of="a tensor"):
    """Sorted tuple of non-negative axes for ``axis``: an int, a sequence of ints, or None
    (all). As in PyTorch, a 0-d tensor accepts axis 0 or -1 (there is nothing to reduce)."""
    if axis is None:
        return tuple(range(ndim))
    single = isinstance(axis, (int, np.integer)) and not isinstance(axis, (bool, np.bool_))
    if not single and not isinstance(axis, (tuple, list)):
        raise TypeError(f"{op_name}: axis must be an int, a tuple of ints or None, got {axis!r}")
    axes = [check_axis(a, builtins.max(ndim, 1), op_name, "axis", of)
            for a in ((axis,) if single else axis)]
    if len(set(axes)) != len(axes):
        raise ValueError(f"{op_name}: repeated axis in {axis}")
    return tuple(sorted(axes)) if ndim else ()


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


def _reduce(op_cls, name, x, axis, keepdims, dim, keepdim):
    axes = normalize_axes(alias(axis, dim, "axis", "dim", name), x.ndim, name)
    keepdims = alias(keepdims, keepdim, "keepdims", "keepdim", name)
    if op_cls is Max and any(x.shape[a] == 0 for a in axes):
        raise ValueError(f"max: cannot reduce an empty axis of a tensor of shape {x.shape}")
    return op_cls(axes, False if keepdims is None else flag(keepdims, "keepdims", name))(x)


# ``axis`` and ``keepdims`` (default False) are numpy's names; PyTorch's ``dim`` and
# ``keepdim`` are accepted too, one of each pair at a time.
def sum(x, axis=None, keepdims=None, *, dim=None, keepdim=None):
    """Σ over ``axis`` (an int, a tuple of ints, or None: all)."""
    return _reduce(Sum, "sum", x, axis, keepdims, dim, keepdim)


def mean(x, axis=None, keepdims=None, *, dim=None, keepdim=None):
    """Mean over ``axis`` (an int, a tuple of ints, or None: all); NaN over no element."""
    return _reduce(Mean, "mean", x, axis, keepdims, dim, keepdim)


def max(x, axis=None, keepdims=None, *, dim=None, keepdim=None):
    """Maximum over ``axis`` (torch.amax: the values only; ties share the gradient)."""
    return _reduce(Max, "max", x, axis, keepdims, dim, keepdim)
