"""Shape ops: reshape, transpose/permute, flatten, indexing, and cat / stack / split."""
import math

import numpy as np

from .._validate import check_axis
from ..function import Function
from ..tensor import Tensor, as_tensor


class Reshape(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        self.input_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy):
        return gy.reshape(self.input_shape)


class Transpose(Function):
    def __init__(self, axes):
        self.axes = axes

    def forward(self, x):
        return np.ascontiguousarray(np.transpose(x, self.axes))

    def backward(self, gy):
        return np.ascontiguousarray(np.transpose(gy, np.argsort(self.axes)))


class GetItem(Function):
    """Indexing and slicing; advanced (integer-array) indices accumulate repeated positions."""

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.input_shape, self.dtype = x.shape, x.dtype
        return np.array(x[self.index], copy=True)

    def backward(self, gy):
        gx = np.zeros(self.input_shape, self.dtype)
        if _is_basic_index(self.index):
            gx[self.index] = gy
        else:
            np.add.at(gx, self.index, gy)
        return gx


class Concat(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        self.sizes = [x.shape[self.axis] for x in xs]
        return np.concatenate(xs, axis=self.axis)

    def backward(self, gy):
        bounds = np.cumsum(self.sizes)[:-1]
        return tuple(np.ascontiguousarray(g) for g in np.split(gy, bounds, axis=self.axis))


class Stack(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        return np.stack(xs, axis=self.axis)

    def backward(self, gy):
        return tuple(np.ascontiguousarray(np.take(gy, i, axis=self.axis))
                     for i in range(gy.shape[self.axis]))


class Split(Function):
    """Cut along ``axis`` into pieces of the given sizes (several outputs)."""

    def __init__(self, sizes, axis):
        self.sizes, self.axis = sizes, axis

    def forward(self, x):
        bounds = np.cumsum(self.sizes)[:-1]
        return tuple(np.ascontiguousarray(p) for p in np.split(x, bounds, axis=self.axis))

    def backward(self, *gys):
        return np.concatenate(gys, axis=self.axis)


def _is_basic_index(index):
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (slice, int, np.integer))
               for i in items)


def _ints(values, name, op_name):
    """``values`` (a tuple, list or 1-D array of ints) as a tuple of Python ints."""
    if isinstance(values, np.ndarray) and values.ndim == 1:
        values = values.tolist()
    if not isinstance(values, (tuple, list)) or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
            for v in values):
        raise TypeError(f"{op_name}: {name} must be ints, got {values!r}")
    return tuple(int(v) for v in values)


def reshape(x, *shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list, np.ndarray)):
        shape = shape[0]
    shape = _ints(shape, "shape", "reshape")
    known = math.prod(n for n in shape if n != -1)     # exact: no int64 wrap-around
    if shape.count(-1) == 1 and known > 0 and x.size % known == 0:
        shape = tuple(x.size // known if n == -1 else n for n in shape)
    if any(n < 0 for n in shape) or math.prod(shape) != x.size:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} "
                         f"({x.size} elements) into shape {shape}")
    return Reshape(shape)(x)


def transpose(x, *axes):
    if len(axes) == 1 and isinstance(axes[0], (tuple, list, np.ndarray)):
        axes = axes[0]
    axes = _ints(axes, "axes", "transpose") or tuple(reversed(range(x.ndim)))
    if sorted(a % max(x.ndim, 1) for a in axes) != list(range(x.ndim)):
        raise ValueError(f"transpose: axes {axes} are not a permutation of the {x.ndim} axes "
                         f"of a tensor of shape {x.shape}")
    return Transpose(tuple(a % x.ndim for a in axes))(x)


permute = transpose


def flatten(x, start_axis=0, end_axis=-1):
    if x.ndim == 0:
        return reshape(x, 1)
    of = f"a tensor of shape {x.shape}"
    start = check_axis(start_axis, x.ndim, "flatten", "start_axis", of)
    end = check_axis(end_axis, x.ndim, "flatten", "end_axis", of)
    if start > end:
        raise ValueError(f"flatten: start_axis {start_axis} comes after end_axis {end_axis}")
    shape = x.shape[:start] + (-1,) + x.shape[end + 1:]
    if x.size == 0:
        shape = x.shape[:start] + (int(np.prod(x.shape[start:end + 1])),) + x.shape[end + 1:]
    return reshape(x, shape)


def getitem(x, index):
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    try:
        np.broadcast_to(np.empty((), dtype=bool), x.shape)[index]
    except (IndexError, OverflowError) as e:     # OverflowError: an int beyond int64
        raise IndexError(f"index {index!r} is invalid for a tensor of shape {x.shape}: {e}") \
            from None
    return GetItem(index)(x)


def _check_joinable(tensors, op_name):
    if not isinstance(tensors, (tuple, list)):
        raise TypeError(f"{op_name}: tensors must be a list or tuple of tensors, got "
                        f"{type(tensors).__name__}")
    if not tensors:
        raise ValueError(f"{op_name}: tensors must not be empty")
    return [as_tensor(t, name=f"tensors[{i}]", op_name=op_name) for i, t in enumerate(tensors)]


def cat(tensors, axis=1):
    """Concatenate along an existing axis (default 1, the channels of NCHW: the inception
    join). All shapes must agree except along ``axis``."""
    tensors = _check_joinable(tensors, "cat")
    ndim = tensors[0].ndim
    shapes = [t.shape for t in tensors]
    if ndim == 0 or any(t.ndim != ndim for t in tensors):
        raise ValueError(f"cat: all tensors need the same number (>= 1) of dimensions, got "
                         f"shapes {shapes}")
    ax = check_axis(axis, ndim, "cat", of=f"tensors of shape {shapes[0]}")
    if any(s[:ax] + s[ax + 1:] != shapes[0][:ax] + shapes[0][ax + 1:] for s in shapes):
        raise ValueError(f"cat: shapes {shapes} must match except along axis {axis}")
    return Concat(ax)(*tensors)


def stack(tensors, axis=0):
    """Join equally shaped tensors along a new axis."""
    tensors = _check_joinable(tensors, "stack")
    shapes = [t.shape for t in tensors]
    if any(s != shapes[0] for s in shapes):
        raise ValueError(f"stack: all tensors must have the same shape, got {shapes}")
    ax = check_axis(axis, tensors[0].ndim + 1, "stack", of=f"the stack of tensors of shape "
                    f"{shapes[0]}")
    return Stack(ax)(*tensors)


def split(x, split_size_or_sections, axis=1):
    """Split into pieces of ``split_size`` (the last may be smaller) or of the listed sizes,
    as torch.split; returns a tuple of tensors."""
    x = as_tensor(x, name="x", op_name="split")
    ax = check_axis(axis, x.ndim, "split", of=f"x of shape {x.shape}")
    length = x.shape[ax]
    sections = split_size_or_sections
    if isinstance(sections, (int, np.integer)) and not isinstance(sections, (bool, np.bool_)):
        size = int(sections)
        if size <= 0:
            raise ValueError(f"split: split_size must be positive, got {size}")
        sizes = [size] * (length // size) + ([length % size] if length % size else [])
    else:
        sizes = list(_ints(sections, "split_size_or_sections (an int or a list of ints)",
                           "split"))
        if any(s < 0 for s in sizes) or sum(sizes) != length:
            raise ValueError(f"split: sections {sizes} must be non-negative and add up to "
                             f"{length}, the size of axis {axis} of x of shape {x.shape}")
    out = Split(sizes, ax)(x)
    return out if isinstance(out, tuple) else (out,)
