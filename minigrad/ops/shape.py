"""Shape ops: reshape, transpose/permute, flatten, indexing, and cat / stack / split; and
``batch_of_one``, which lets the image ops take an unbatched (C, H, W) input."""
import functools
import math

import numpy as np

from .._validate import alias, check_axis
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
    # np.transpose(...).copy(): np.ascontiguousarray would make a 0-d result 1-d
    def __init__(self, axes):
        self.axes = axes

    def forward(self, x):
        return np.transpose(x, self.axes).copy()

    def backward(self, gy):
        return np.transpose(gy, np.argsort(self.axes)).copy()


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


def flatten(x, start_axis=None, end_axis=None, *, start_dim=None, end_dim=None):
    """Merge axes ``start_axis`` (default 0) to ``end_axis`` (default -1) into one; PyTorch's
    names ``start_dim``/``end_dim`` are accepted too."""
    start_axis = alias(start_axis, start_dim, "start_axis", "start_dim", "flatten")
    end_axis = alias(end_axis, end_dim, "end_axis", "end_dim", "flatten")
    start_axis = 0 if start_axis is None else start_axis
    end_axis = -1 if end_axis is None else end_axis
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


def _axis(axis, dim, default, op_name):
    """The axis given as ``axis`` or ``dim`` (not both), ``default`` when neither."""
    axis = alias(axis, dim, "axis", "dim", op_name)
    return default if axis is None else axis


def _check_joinable(tensors, op_name):
    if not isinstance(tensors, (tuple, list)):
        raise TypeError(f"{op_name}: tensors must be a list or tuple of tensors, got "
                        f"{type(tensors).__name__}")
    if not tensors:
        raise ValueError(f"{op_name}: tensors must not be empty")
    return [as_tensor(t, name=f"tensors[{i}]", op_name=op_name) for i, t in enumerate(tensors)]


def cat(tensors, axis=None, *, dim=None):
    """Concatenate along an existing axis, ``axis`` or PyTorch's name ``dim`` (default 0, as
    ``torch.cat``). All shapes must agree except along ``axis``."""
    axis = _axis(axis, dim, 0, "cat")
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


def stack(tensors, axis=None, *, dim=None):
    """Join equally shaped tensors along a new axis, ``axis`` or PyTorch's name ``dim``
    (default 0)."""
    axis = _axis(axis, dim, 0, "stack")
    tensors = _check_joinable(tensors, "stack")
    shapes = [t.shape for t in tensors]
    if any(s != shapes[0] for s in shapes):
        raise ValueError(f"stack: all tensors must have the same shape, got {shapes}")
    ax = check_axis(axis, tensors[0].ndim + 1, "stack", of=f"the stack of tensors of shape "
                    f"{shapes[0]}")
    return Stack(ax)(*tensors)


def split(x, split_size_or_sections, axis=None, *, dim=None):
    """Split along ``axis`` or PyTorch's name ``dim`` (default 0, as ``torch.split``) into
    pieces of ``split_size`` (the last may be smaller) or of the listed sizes; returns a tuple
    of tensors."""
    axis = _axis(axis, dim, 0, "split")
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


def batch_of_one(fn):
    """Let ``fn``, an op on (N, C, H, W) images (conv, pooling), take an unbatched (C, H, W)
    image as PyTorch's do: it runs on that image as a batch of one, and the batch axis is taken
    off every tensor it returns, so (C, H, W) gives (C', H', W') (and pooling's indices
    (C, H', W')). The gradient flows through the two reshapes. A 4-D input costs one ``ndim``
    test."""
    @functools.wraps(fn)
    def call(x, *args, **kwargs):
        if not isinstance(x, Tensor):
            x = as_tensor(x, name="x", op_name=fn.__name__)
        if x.ndim != 3:
            return fn(x, *args, **kwargs)
        out = fn(Reshape((1,) + x.shape)(x), *args, **kwargs)
        if isinstance(out, tuple):
            return tuple(Reshape(y.shape[1:])(y) for y in out)
        return Reshape(out.shape[1:])(out)
    return call
