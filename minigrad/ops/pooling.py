"""Max, average, global and adaptive pooling (NCHW), PyTorch's semantics; each also takes an
unbatched (C, H, W) input (``shape.batch_of_one``).

The loops are Cython kernels (minigrad/_kernels/pooling.pyx) running without the GIL, parallel
over the N·C planes. Max-type pools keep the flat argmax ``h·W + w`` of every output (int32)
for the backward pass, which sends each output's gradient to that one cell (winner takes all,
summed where windows overlap). The indices are only computed when a gradient or
``return_indices`` needs them.
"""
import functools

import numpy as np

from .._kernels import pooling as _kernels
from .._validate import Spec, check_input_4d, check_max, check_min, flag, pair, plain
from ..function import Function
from ..tensor import Tensor, as_tensor
from ..threads import get_num_threads
from .geometry import (adaptive_bins, adaptive_output_shape, check_padded_plane,
                       check_pool_padding, first_in_bounds, sliding_output_shape)
from .shape import batch_of_one

_INT32_MAX = np.iinfo(np.int32).max


def _planes(a):
    """(N, C, H, W) → (N·C, H, W), a view of a contiguous array."""
    return a.reshape((-1,) + a.shape[-2:])


def _grad(gy, like):
    return np.ascontiguousarray(gy, dtype=like)


class _ArgmaxPool(Function):
    """Base of the max-type pools: the forward fills values and (when needed) the argmax, the
    backward scatters the output gradient to the argmax cells."""

    return_indices = False

    def forward(self, x):
        out_hw = self.output_hw(x.shape)
        y = np.empty(x.shape[:2] + out_hw, x.dtype)
        keep_index = self.needs_input_grad[0] or self.return_indices
        idx = np.empty(y.shape, np.int32) if keep_index else None
        self.kernel(_planes(x), _planes(y), None if idx is None else _planes(idx))
        self.input_shape, self.dtype = x.shape, x.dtype
        if self.return_indices:
            self.indices = idx
        if self.needs_input_grad[0]:
            self.save_for_backward(idx)
        return self.shape_output(y)

    def shape_output(self, y):
        return y

    def backward(self, gy):
        (idx,) = self.saved_tensors
        gx = np.empty(self.input_shape, self.dtype)
        _kernels.max_pool_backward(_planes(_grad(gy, self.dtype).reshape(idx.shape)),
                                   _planes(idx), _planes(gx), get_num_threads())
        return gx


class MaxPool2d(_ArgmaxPool):
    """y[n, c, oh, ow] = max over i < kh, j < kw of x[n, c, oh·sh − ph + i·dh, ow·sw − pw + j·dw]
    (cells outside the input count as −∞); output (N, C, OH, OW) with
    OH = floor((H + 2·ph − dh·(kh − 1) − 1) / sh) + 1 (ceil with ``ceil_mode``, dropping a last
    window that would start in the right padding), likewise OW."""

    def __init__(self, plan, out_hw, return_indices, first_cells):
        self.plan = plan                 # the window as the kernel runs it: see _sliding_plan
        self.out_hw, self.return_indices = out_hw, return_indices
        self.first_cells = first_cells   # per axis, each window's first input cell

    def output_hw(self, shape):
        return self.out_hw

    def kernel(self, x, y, idx):
        threads = get_num_threads()
        kernel, stride, padding, dilation, Hp, Lq, width = self.plan
        if width:               # a buffered plane, pooled from its phase planes
            phase_rows = -(-Hp // stride[0]) * stride[0]
            width = (phase_rows * stride[1] * Lq + (kernel[1] - 1) * dilation[1] // stride[1]
                     + _kernels.PHASE_SLACK)
        _kernels.max_pool_forward(x, y, idx, *kernel, *stride, *padding, *dilation, Hp, Lq,
                                  np.empty((threads, width), x.dtype), *self.first_cells,
                                  threads)


class AdaptiveMaxPool2d(_ArgmaxPool):
    """y[n, c, i, j] = max of x[n, c, h_start[i]:h_end[i], w_start[j]:w_end[j]] with the bins of
    ``geometry.adaptive_bins``; output (N, C, OH, OW) = ``output_size``."""

    def __init__(self, out_hw, return_indices):
        self.out_hw, self.return_indices = out_hw, return_indices

    def output_hw(self, shape):
        return self.out_hw

    def kernel(self, x, y, idx):
        if idx is None:  # this kernel always records the argmax
            idx = np.empty(y.shape, np.int32)
        _kernels.adaptive_max_forward(x, y, idx, *_bins(x.shape, y.shape), get_num_threads())


class GlobalMaxPool2d(AdaptiveMaxPool2d):
    """y[n, c] = max over h, w of x[n, c, h, w]; output (N, C), or (N, C, 1, 1) with keepdims."""

    def __init__(self, keepdims):
        super().__init__((1, 1), False)
        self.keepdims = keepdims

    def shape_output(self, y):
        return y if self.keepdims else y.reshape(y.shape[:2])


class AvgPool2d(Function):
    """y[n, c, oh, ow] = Σ_{i<kh, j<kw} x[n, c, oh·sh − ph + i, ow·sw − pw + j] / divisor
    (padding cells add 0). The divisor is ``divisor_override`` if given; else the window's cells
    inside the padded input (``count_include_pad``: a ceil_mode window hanging over the right
    padding does not count the overhang) or inside the input (``count_include_pad=False``).
    Output size as for max pooling with dilation 1."""

    def __init__(self, kernel, stride, padding, plan, out_hw, count_include_pad,
                 divisor_override):
        self.kernel_size, self.stride, self.padding = kernel, stride, padding
        self.plan, self.out_hw = plan, out_hw
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, x):
        window = (self.kernel_size, self.stride, self.padding)
        if self.divisor_override is not None:
            divisor = np.full(self.out_hw, self.divisor_override, x.dtype)
        else:
            divisor = np.outer(*(_avg_counts(*axis, self.count_include_pad)
                                 for axis in zip(x.shape[2:], self.out_hw, *window)))
            divisor = divisor.astype(x.dtype)
        self.divisor = divisor
        y = np.empty(x.shape[:2] + self.out_hw, x.dtype)
        _kernels.avg_pool_forward(_planes(x), _planes(y), *self._args(x.dtype))
        self.input_shape, self.dtype = x.shape, x.dtype
        return y

    def backward(self, gy):
        gx = np.empty(self.input_shape, self.dtype)
        _kernels.avg_pool_backward(_planes(_grad(gy, self.dtype)), _planes(gx),
                                   *self._args(self.dtype))
        return gx

    def _args(self, dtype):
        """The kernels' arguments after the arrays, with scratch planes for the thread count of
        this call: the backward may run with another count than the forward."""
        threads = get_num_threads()
        # no dilation argument: the plan's is (1, 1)
        kh, kw, sh, sw, ph, pw, _, _, Hp, Lq, scratch = _plan_args(self.plan, dtype, threads)
        return kh, kw, sh, sw, ph, pw, Hp, Lq, scratch, self.divisor, threads


def _sliding_plan(x, out_hw, kernel, stride, padding, dilation, op_name):
    """The window as the sliding-window kernels run it, and their padded-plane layout:
    (kernel, stride, padding, dilation, Hp, Lq, scratch_width).

    The window is the one given, reduced so that its cost is bounded by the input: kernel taps
    past the input's last cell for every window (they read only padding, which changes no sum
    or maximum) are dropped, and an axis with a single window gets stride 1 (that window starts
    at −padding whatever the stride), so a huge kernel, stride or dilation costs nothing.

    The padded plane holds every window (top/left padding, the input, the bottom/right padding
    and any ceil_mode overhang): Hp rows, each split into ``stride_w`` phases of Lq cells; the
    kernels get one such plane per thread (scratch_width cells). They read the input in place
    (scratch_width 0, Hp, Lq = H, W) when every window lies inside it and the stride is 1 along
    W or the 2×2/stride-2 fast path applies. ValueError naming ``padding`` when the plane
    would still be absurdly large (a padding far beyond the input's size)."""
    H, W = x.shape[-2:]
    # bounds the plane below: the trimmed extent is at most about 2·H + 3·padding per axis
    check_padded_plane((H, W), tuple((p, p) for p in padding), op_name)
    kernel = tuple(min(k, (n - 1 + p) // d + 1)
                   for n, k, p, d in zip((H, W), kernel, padding, dilation))
    stride = tuple(s if o > 1 else 1 for s, o in zip(stride, out_hw))
    extent = [(o - 1) * s + (k - 1) * d + 1
              for o, k, s, d in zip(out_hw, kernel, stride, dilation)]
    fast_2x2 = kernel == (2, 2) and stride == (2, 2) and dilation == (1, 1)
    inside = padding == (0, 0) and extent[0] <= H and extent[1] <= W
    if inside and (stride[1] == 1 or fast_2x2):
        return kernel, stride, padding, dilation, H, W, 0
    Hp, Wp = max(H + padding[0], extent[0]), max(W + padding[1], extent[1])
    Lq = -(-Wp // stride[1])
    return kernel, stride, padding, dilation, Hp, Lq, Hp * stride[1] * Lq


@functools.lru_cache(maxsize=256)
def _first_cells(size_hw, out_hw, stride, padding, dilation):
    """Per axis, each window's first input cell (read-only intp arrays), for validated int
    pairs. A dilated window can step over the whole input: its output is −∞ (as in PyTorch) and
    its index is clamped to the last cell, so that backward never writes outside the plane.
    Cached: a network asks for the same few at every call, and building them costs more than
    a small pooling."""
    cells = tuple(np.minimum(first_in_bounds(n, o, s, p, d), n - 1)
                  for n, o, s, p, d in zip(size_hw, out_hw, stride, padding, dilation))
    for axis in cells:
        axis.flags.writeable = False        # shared by every call with this geometry
    return cells


def _plan_args(plan, dtype, threads):
    """The sliding-window kernels' arguments kh, kw, sh, sw, ph, pw, dh, dw, Hp, Lq, scratch,
    with one scratch plane for each of ``threads`` threads."""
    kernel, stride, padding, dilation, Hp, Lq, width = plan
    scratch = np.empty((threads, width), dtype)
    return (*kernel, *stride, *padding, *dilation, Hp, Lq, scratch)


def _avg_counts(size, out, kernel, stride, padding, count_include_pad):
    """Cells each window counts along one axis, PyTorch's rule: the window clipped to the padded
    input (a ceil_mode overhang beyond the padding never counts), and to the input itself
    without ``count_include_pad``."""
    start = np.arange(out) * stride - padding
    end = np.minimum(start + kernel, size + padding)
    if not count_include_pad:
        start, end = np.maximum(start, 0), np.minimum(end, size)
    return end - start


def _bins(input_shape, output_shape):
    return adaptive_bins(input_shape[-2], output_shape[-2]) + adaptive_bins(input_shape[-1],
                                                                            output_shape[-1])


class AdaptiveAvgPool2d(Function):
    """y[n, c, i, j] = mean of x[n, c, h_start[i]:h_end[i], w_start[j]:w_end[j]] with the bins
    of ``geometry.adaptive_bins``; output (N, C, OH, OW) = ``output_size``."""

    def __init__(self, out_hw):
        self.out_hw = out_hw

    def forward(self, x):
        y = np.empty(x.shape[:2] + self.out_hw, x.dtype)
        self.bins = _bins(x.shape, y.shape)
        _kernels.adaptive_avg_forward(_planes(x), _planes(y), *self.bins, get_num_threads())
        self.input_shape, self.dtype = x.shape, x.dtype
        return y

    def backward(self, gy):
        gy = _grad(gy, self.dtype)
        gx = np.empty(self.input_shape, self.dtype)
        _kernels.adaptive_avg_backward(_planes(gy), _planes(gx), *self.bins, get_num_threads())
        return gx


class GlobalAvgPool2d(Function):
    """y[n, c] = mean over h, w of x[n, c, h, w]; output (N, C), or (N, C, 1, 1) with keepdims."""

    def __init__(self, keepdims):
        self.keepdims = keepdims

    def forward(self, x):
        n, c, h, w = x.shape
        y = np.empty((n, c, 1, 1) if self.keepdims else (n, c), x.dtype)
        _kernels.global_avg_forward(x.reshape(n * c, h * w), y.reshape(-1), get_num_threads())
        self.input_shape, self.dtype = x.shape, x.dtype
        return y

    def backward(self, gy):
        n, c, h, w = self.input_shape
        gx = np.empty(self.input_shape, self.dtype)
        _kernels.global_avg_backward(_grad(gy, self.dtype).reshape(-1), gx.reshape(n * c, h * w),
                                     get_num_threads())
        return gx


# -- functional wrappers: validate everything before a kernel runs ----------------------------------

def _input(x, op_name, max_type=False):
    x = as_tensor(x, name="x", op_name=op_name)
    _check_input(x, op_name, max_type)
    return x


def _check_input(x, op_name, max_type=False):
    check_input_4d(x, op_name)
    if min(x.shape[2:]) < 1:
        raise ValueError(f"{op_name}: input must have a non-empty spatial size, got shape "
                         f"{x.shape}")
    if max_type and x.shape[2] * x.shape[3] > _INT32_MAX:
        raise ValueError(f"{op_name}: input planes of {x.shape[2]}×{x.shape[3]} cells exceed the "
                         "int32 argmax range")


def _window(x, kernel_size, stride, padding, dilation, ceil_mode, op_name):
    """Validated (kernel, stride, padding, dilation, (OH, OW)) pairs."""
    kernel = pair(kernel_size, "kernel_size", op_name)
    check_min(kernel, 1, "kernel_size", op_name)
    # stride=() is PyTorch's spelling of "the default" in its OpInfo samples
    unset = stride is None or isinstance(stride, (tuple, list)) and not stride
    stride = kernel if unset else pair(stride, "stride", op_name)
    check_min(stride, 1, "stride", op_name)
    padding = pair(padding, "padding", op_name)
    check_min(padding, 0, "padding", op_name)
    check_pool_padding(padding, kernel, op_name)
    dilation = pair(dilation, "dilation", op_name)
    check_min(dilation, 1, "dilation", op_name)
    for name, values in (("kernel_size", kernel), ("stride", stride), ("dilation", dilation)):
        check_max(values, _INT32_MAX, name, op_name)     # the kernels take C ints
    out_hw = sliding_output_shape(x.shape, kernel, stride, padding, dilation, ceil_mode, op_name)
    return kernel, stride, padding, dilation, out_hw


def _adaptive_output(output_size, x, op_name):
    out_hw = adaptive_output_shape(output_size, x.shape, op_name)
    if out_hw[0] * out_hw[1] > _INT32_MAX:
        raise ValueError(f"{op_name}: output_size {out_hw} exceeds {_INT32_MAX} cells per plane")
    return out_hw


def _with_indices(fn, y):
    """(y, indices) where indices is a plain int64 tensor of flat h·W + w positions per plane."""
    indices = Tensor(fn.indices.astype(np.int64))
    fn.indices = None
    return y, indices


@functools.lru_cache(maxsize=256)
def _checked_max_pool(x, kernel_size, stride, padding, dilation, ceil_mode):
    """Every check of ``max_pool2d``'s input (a ``Spec``) and window; returns the kernel's plan
    (``_sliding_plan``), the output size and the windows' first cells."""
    op = "max_pool2d"
    _check_input(x, op, max_type=True)
    kernel, stride, padding, dilation, out_hw = _window(x, kernel_size, stride, padding, dilation,
                                                        flag(ceil_mode, "ceil_mode", op), op)
    first_cells = _first_cells(x.shape[2:], out_hw, stride, padding, dilation)
    return _sliding_plan(x, out_hw, kernel, stride, padding, dilation, op), out_hw, first_cells


@batch_of_one
def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """2-D max pooling (see ``MaxPool2d`` for the formula); ``stride`` defaults to
    ``kernel_size``; ``padding ≤ kernel_size // 2``. With ``return_indices`` also returns the
    flat index h·W + w of each maximum within its plane (int64), as PyTorch does."""
    x = as_tensor(x, name="x", op_name="max_pool2d")
    args = (Spec(x.shape, x.dtype), kernel_size, stride, padding, dilation, ceil_mode)
    # cached for plain arguments, as conv2d's (a bool only where a flag goes)
    cached = (plain(kernel_size) and (stride is None or plain(stride)) and plain(padding)
              and plain(dilation) and type(ceil_mode) is bool)
    check = _checked_max_pool if cached else _checked_max_pool.__wrapped__
    plan, out_hw, first_cells = check(*args)
    return_indices = flag(return_indices, "return_indices", "max_pool2d")
    fn = MaxPool2d(plan, out_hw, return_indices, first_cells)
    y = fn(x)
    return _with_indices(fn, y) if return_indices else y


@batch_of_one
def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """2-D average pooling (see ``AvgPool2d`` for the formula and the divisor rules)."""
    x = _input(x, "avg_pool2d")
    kernel, stride, padding, _, out_hw = _window(
        x, kernel_size, stride, padding, 1, flag(ceil_mode, "ceil_mode", "avg_pool2d"),
        "avg_pool2d")
    if divisor_override is not None:
        if not isinstance(divisor_override, (int, np.integer)) or isinstance(divisor_override,
                                                                             bool):
            raise TypeError(f"avg_pool2d: divisor_override must be an int or None, got "
                            f"{divisor_override!r}")
        if divisor_override == 0:
            raise ValueError("avg_pool2d: divisor_override must not be zero")
    count_include_pad = flag(count_include_pad, "count_include_pad", "avg_pool2d")
    plan = _sliding_plan(x, out_hw, kernel, stride, padding, (1, 1), "avg_pool2d")
    return AvgPool2d(kernel, stride, padding, plan, out_hw, count_include_pad,
                     None if divisor_override is None else int(divisor_override))(x)


@batch_of_one
def global_avg_pool2d(x, keepdims=False):
    """Mean over H and W: (N, C, H, W) → (N, C), or (N, C, 1, 1) with ``keepdims``."""
    return GlobalAvgPool2d(flag(keepdims, "keepdims", "global_avg_pool2d"))(
        _input(x, "global_avg_pool2d"))


@batch_of_one
def global_max_pool2d(x, keepdims=False):
    """Max over H and W: (N, C, H, W) → (N, C), or (N, C, 1, 1) with ``keepdims``."""
    return GlobalMaxPool2d(flag(keepdims, "keepdims", "global_max_pool2d"))(
        _input(x, "global_max_pool2d", max_type=True))


@batch_of_one
def adaptive_avg_pool2d(x, output_size):
    """Average over PyTorch's adaptive bins (``geometry.adaptive_bins``); output
    (N, C, *output_size), a None entry keeping the input's size."""
    x = _input(x, "adaptive_avg_pool2d")
    return AdaptiveAvgPool2d(_adaptive_output(output_size, x, "adaptive_avg_pool2d"))(x)


@batch_of_one
def adaptive_max_pool2d(x, output_size, return_indices=False):
    """Max over PyTorch's adaptive bins; output (N, C, *output_size), a None entry keeping the
    input's size; ``return_indices`` as in ``max_pool2d``."""
    x = _input(x, "adaptive_max_pool2d", max_type=True)
    fn = AdaptiveMaxPool2d(_adaptive_output(output_size, x, "adaptive_max_pool2d"),
                           flag(return_indices, "return_indices", "adaptive_max_pool2d"))
    y = fn(x)
    return _with_indices(fn, y) if return_indices else y
