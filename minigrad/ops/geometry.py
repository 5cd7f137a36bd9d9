"""Sliding-window geometry shared by convolution and every pooling kind.

Written once so conv and pooling agree with each other and with PyTorch: output sizes, padding
resolution and its bounds, adaptive bins, the first in-bounds cell of a window, and fractional
pooling's intervals. The argument checks they use (``pair``, ``check_min``, ...) are in
``minigrad._validate``.
"""
import numbers

import numpy as np

from .._validate import check_min, pair


def window_output_size(size, kernel, stride, padding, dilation=1, ceil_mode=False,
                       padding_end=None):
    """Number of window positions along one axis, PyTorch's rule:

        out = floor((size + 2·padding − dilation·(kernel − 1) − 1) / stride) + 1

    (ceil instead of floor with ``ceil_mode``, dropping a last window that would start in the
    right padding, i.e. beyond ``size + padding``). With ``padding_end`` the padding is
    asymmetric: ``padding`` before the data, ``padding_end`` after it (``2·padding`` becomes
    ``padding + padding_end``).
    """
    if padding_end is None:
        padding_end = padding
    span = size + padding + padding_end - dilation * (kernel - 1) - 1
    if ceil_mode:
        # ceil(span / stride), floored like PyTorch's div_rtn: with ceil_mode a window may
        # overhang the padded input by less than one stride, even when span < 0
        out = (span + stride - 1) // stride + 1
        if out > 0 and (out - 1) * stride >= size + padding:
            out -= 1
    else:
        out = span // stride + 1
    return max(out, 0)


def same_padding(kernel, dilation=1):
    """(before, after) padding that keeps the size of a stride-1 window op along one axis:
    the total ``dilation·(kernel − 1)`` split as PyTorch's ``padding='same'`` does it, the odd
    extra element going after the data."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def resolve_padding(padding, kernel, stride, dilation, op_name):
    """((top, bottom), (left, right)) from an int, a pair of ints, ``'valid'`` (no padding) or
    ``'same'`` (output size = input size; stride 1 only, as in PyTorch). ``kernel``, ``stride``
    and ``dilation`` are (h, w) pairs already validated."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"{op_name}: padding='same' is not supported for strided "
                                 f"convolutions (stride {stride}); use stride 1 or an explicit "
                                 "padding")
            return same_padding(kernel[0], dilation[0]), same_padding(kernel[1], dilation[1])
        raise ValueError(f"{op_name}: padding must be 'valid', 'same', an int or a pair of "
                         f"ints, got {padding!r}")
    padding = pair(padding, "padding", op_name)
    check_min(padding, 0, "padding", op_name)
    return (padding[0], padding[0]), (padding[1], padding[1])


def fractional_intervals(samples, size, out, kernel, overlapping=True):
    """Pseudo-random pooling regions of fractional max pooling (Graham, 2014) along one axis.

    ``samples``: array (P,) of u in [0, 1), one per plane; its dtype (the input's) is the
    arithmetic precision, as in PyTorch. Region starts, PyTorch's sequence:

        alpha = (size − kernel) / (out − 1)
        start_i = int((i + u)·alpha) − int(u·alpha)   for i < out − 1,   start_(out−1) = size − kernel

    so start_0 = 0 and every start lies in [0, size − kernel]. Returns int64 arrays
    (start, end), each (P, out): ``end = start + kernel`` when ``overlapping`` (PyTorch's
    regions), else the next region's start (the last ends at ``size``): disjoint regions that
    tile the axis, non-empty because ``out ≤ size − kernel + 1`` makes alpha ≥ 1.
    """
    samples = np.asarray(samples)
    dtype = samples.dtype.type
    start = np.empty((samples.shape[0], out), dtype=np.int64)
    if out > 1:
        alpha = dtype(size - kernel) / dtype(out - 1)
        steps = np.arange(out - 1, dtype=dtype)[None, :] + samples[:, None]
        start[:, :-1] = ((steps * alpha).astype(np.int64)
                         - (samples * alpha).astype(np.int64)[:, None])
    start[:, -1] = size - kernel
    if overlapping:
        end = start + kernel
    else:
        end = np.empty_like(start)
        end[:, :-1] = start[:, 1:]
        end[:, -1] = size
    return start, end


def check_pool_padding(padding, kernel, op_name):
    """PyTorch's pooling rule: ``padding ≤ kernel_size // 2`` on each axis (the kernel size itself,
    not its dilated extent), so every window holds at least one input cell."""
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        raise ValueError(f"{op_name}: padding {padding} must be at most half of kernel_size "
                         f"{kernel}")


def sliding_output_shape(input_shape, kernel, stride, padding, dilation, ceil_mode, op_name):
    """(OH, OW) of a sliding-window op on an (N, C, H, W) input (``window_output_size`` per
    axis); ValueError naming the input when a window does not fit."""
    out = tuple(window_output_size(n, k, s, p, d, ceil_mode)
                for n, k, s, p, d in zip(input_shape[2:], kernel, stride, padding, dilation))
    if min(out) < 1:
        raise ValueError(f"{op_name}: input of shape {tuple(input_shape)} is too small for "
                         f"kernel_size {kernel} with padding {padding} and dilation {dilation}: "
                         f"output size would be {out}")
    return out


def adaptive_output_shape(output_size, input_shape, op_name):
    """(OH, OW) from an int or a pair whose entries may be None (keep the input's size)."""
    if output_size is None or isinstance(output_size, numbers.Integral):
        output_size = (output_size, output_size)
    if not isinstance(output_size, (tuple, list)) or len(output_size) != 2:
        raise TypeError(f"{op_name}: output_size must be an int, None or a pair, got "
                        f"{output_size!r}")
    out = tuple(n if o is None else o for o, n in zip(output_size, input_shape[2:]))
    out = pair(out, "output_size", op_name)
    check_min(out, 1, "output_size", op_name)
    return out


def adaptive_bins(size, out):
    """Bins of adaptive pooling along one axis (PyTorch's): bin i covers
    [floor(i·size / out), ceil((i + 1)·size / out)), so bins cover the axis, each is non-empty,
    and neighbours overlap by at most one cell when ``out`` does not divide ``size``.
    Returns (start, end) as intp arrays of length ``out``."""
    i = np.arange(out, dtype=np.intp)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)
    return start, end


def first_in_bounds(size, out, stride, padding, dilation=1):
    """Per output o, the first cell of its window inside [0, size) along one axis: the window
    starts at o·stride − padding and steps by ``dilation``. intp array of length ``out``."""
    start = np.arange(out, dtype=np.intp) * stride - padding
    skipped = np.where(start < 0, (-start + dilation - 1) // dilation, 0)
    return start + skipped * dilation


#: Bound for the integer geometry (stride, dilation, padding) handed to the C kernels.
C_INT_MAX = int(np.iinfo(np.int32).max)

# A padded plane may hold this many times the input plane's cells, or this many cells, whichever
# is more: padding up to the input's own size stays far below, absurd padding is refused before
# it allocates an absurd output.
PADDED_PLANE_GROWTH = 64
PADDED_PLANE_FLOOR = 1 << 22


def check_padded_plane(size_hw, padding, op_name):
    """ValueError naming ``padding`` when the padded plane ((top, bottom), (left, right)) around
    an input plane of ``size_hw`` would exceed max(PADDED_PLANE_GROWTH·H·W, PADDED_PLANE_FLOOR)
    cells."""
    (top, bottom), (left, right) = padding
    height, width = size_hw
    cells = (height + top + bottom) * (width + left + right)
    if cells > max(PADDED_PLANE_GROWTH * height * width, PADDED_PLANE_FLOOR):
        raise ValueError(f"{op_name}: padding {padding} is too large for an input of spatial "
                         f"size {height}×{width}: the padded plane would hold {cells} cells")

