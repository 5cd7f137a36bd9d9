"""Plain numpy reference loops for convolution and pooling, forward and vector-Jacobian product.

Written for obviousness, not speed: every output element is computed by looping over its
window, every gradient by sending each output's upstream gradient back to the cells it read.
The window positions are enumerated by brute force (which starts have a window that fits),
not by the output-size formula minigrad uses, so the two are independent. All arguments are
(h, w) pairs; arrays are float64 in, float64 out.

The alternative pooling kinds (Lp, stochastic, fractional, pyramid, mixed, gated) have their
reference loops in tests/test_pooling_extra.py; tests import them from there.
"""
import itertools

import numpy as np


def window_starts(size, kernel, stride, padding, dilation, ceil_mode):
    """Starts (in unpadded coordinates, may be negative) of every window along one axis.

    floor mode: the windows at multiples of the stride (in the padded input) whose taps all lie
    in the padded input [−padding, size + padding). ceil mode: also a last window running past
    the padded end, if it covers the padded input's leftover cells (it starts less than one
    stride after the last full window) and starts inside the input (PyTorch drops one starting
    in the right padding).
    """
    extent = dilation * (kernel - 1) + 1
    starts = []
    o = 0
    while o * stride + extent <= size + 2 * padding:
        starts.append(o * stride - padding)
        o += 1
    leftover = starts and starts[-1] + padding + extent < size + 2 * padding
    if ceil_mode and leftover and o * stride - padding < size:
        starts.append(o * stride - padding)
    return starts


def conv2d(x, weight, bias, stride, padding, dilation, groups):
    """y[n, o, i, j] = bias[o] + Σ_{c, a, b} w[o, c, a, b] · x[n, g·C/G + c, i·sh − ph + a·dh,
    j·sw − pw + b·dw] (zero outside x), g the group of o."""
    n, channels, height, width = x.shape
    out_channels, group_channels, kh, kw = weight.shape
    rows = window_starts(height, kh, stride[0], padding[0], dilation[0], False)
    cols = window_starts(width, kw, stride[1], padding[1], dilation[1], False)
    y = np.zeros((n, out_channels, len(rows), len(cols)))
    per_group = out_channels // groups
    for b, o, (i, r), (j, c) in itertools.product(range(n), range(out_channels),
                                                  enumerate(rows), enumerate(cols)):
        first = (o // per_group) * group_channels
        total = 0.0 if bias is None else bias[o]
        for ci, a, e in itertools.product(range(group_channels), range(kh), range(kw)):
            h, w = r + a * dilation[0], c + e * dilation[1]
            if 0 <= h < height and 0 <= w < width:
                total += weight[o, ci, a, e] * x[b, first + ci, h, w]
        y[b, o, i, j] = total
    return y


def conv2d_vjp(x, weight, gy, stride, padding, dilation, groups):
    """(gx, gw, gbias) = the upstream gradient gy sent back through conv2d's sums."""
    n, channels, height, width = x.shape
    out_channels, group_channels, kh, kw = weight.shape
    rows = window_starts(height, kh, stride[0], padding[0], dilation[0], False)
    cols = window_starts(width, kw, stride[1], padding[1], dilation[1], False)
    gx, gw = np.zeros(x.shape), np.zeros(weight.shape)
    per_group = out_channels // groups
    for b, o, (i, r), (j, c) in itertools.product(range(n), range(out_channels),
                                                  enumerate(rows), enumerate(cols)):
        first = (o // per_group) * group_channels
        for ci, a, e in itertools.product(range(group_channels), range(kh), range(kw)):
            h, w = r + a * dilation[0], c + e * dilation[1]
            if 0 <= h < height and 0 <= w < width:
                gx[b, first + ci, h, w] += weight[o, ci, a, e] * gy[b, o, i, j]
                gw[o, ci, a, e] += x[b, first + ci, h, w] * gy[b, o, i, j]
    return gx, gw, gy.sum(axis=(0, 2, 3))


def _pool_windows(shape, kernel, stride, padding, dilation, ceil_mode):
    rows = window_starts(shape[2], kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    cols = window_starts(shape[3], kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    return rows, cols


def _taps(start, kernel, dilation, size):
    return [start + a * dilation for a in range(kernel) if 0 <= start + a * dilation < size]


def max_pool2d(x, kernel, stride, padding, dilation, ceil_mode):
    """(y, argmax): the largest in-bounds tap of each window (the first one, in row-major tap
    order, on ties) and its flat index h·W + w in the plane; a window whose taps all fall in
    the padding (possible with dilation) gives −inf and index −1."""
    rows, cols = _pool_windows(x.shape, kernel, stride, padding, dilation, ceil_mode)
    y = np.zeros(x.shape[:2] + (len(rows), len(cols)))
    argmax = np.zeros(y.shape, np.int64)
    for b, c, (i, r), (j, s) in itertools.product(range(x.shape[0]), range(x.shape[1]),
                                                  enumerate(rows), enumerate(cols)):
        best, where = -np.inf, -1
        for h in _taps(r, kernel[0], dilation[0], x.shape[2]):
            for w in _taps(s, kernel[1], dilation[1], x.shape[3]):
                if where == -1 or x[b, c, h, w] > best:
                    best, where = x[b, c, h, w], h * x.shape[3] + w
        y[b, c, i, j], argmax[b, c, i, j] = best, where
    return y, argmax


def scatter_to_argmax(input_shape, argmax, gy):
    """VJP of any max-type pool: each output's gradient goes to its argmax cell."""
    gx = np.zeros(input_shape)
    for b, c, i, j in np.ndindex(gy.shape):
        gx[b, c].flat[argmax[b, c, i, j]] += gy[b, c, i, j]
    return gx


def _avg_windows(shape, kernel, stride, padding, ceil_mode, count_include_pad,
                 divisor_override):
    """[(row start, col start, divisor)] per output position, and the grid shape."""
    rows, cols = _pool_windows(shape, kernel, stride, padding, (1, 1), ceil_mode)

    def counted(start, k, p, size):
        lo, hi = (max(start, -p), min(start + k, size + p)) if count_include_pad else (
            max(start, 0), min(start + k, size))
        return hi - lo

    windows = {}
    for (i, r), (j, s) in itertools.product(enumerate(rows), enumerate(cols)):
        divisor = divisor_override or (counted(r, kernel[0], padding[0], shape[2]) *
                                       counted(s, kernel[1], padding[1], shape[3]))
        windows[i, j] = (r, s, divisor)
    return windows, (len(rows), len(cols))


def avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """Sum of the window's in-bounds cells / divisor (PyTorch's divisor rules)."""
    windows, grid = _avg_windows(x.shape, kernel, stride, padding, ceil_mode,
                                 count_include_pad, divisor_override)
    y = np.zeros(x.shape[:2] + grid)
    for (i, j), (r, s, divisor) in windows.items():
        for h in _taps(r, kernel[0], 1, x.shape[2]):
            for w in _taps(s, kernel[1], 1, x.shape[3]):
                y[:, :, i, j] += x[:, :, h, w] / divisor
    return y


def avg_pool2d_vjp(input_shape, gy, kernel, stride, padding, ceil_mode, count_include_pad,
                   divisor_override):
    windows, _ = _avg_windows(input_shape, kernel, stride, padding, ceil_mode,
                              count_include_pad, divisor_override)
    gx = np.zeros(input_shape)
    for (i, j), (r, s, divisor) in windows.items():
        for h in _taps(r, kernel[0], 1, input_shape[2]):
            for w in _taps(s, kernel[1], 1, input_shape[3]):
                gx[:, :, h, w] += gy[:, :, i, j] / divisor
    return gx


def adaptive_bins(size, out):
    """Bin i covers [floor(i·size/out), ceil((i + 1)·size/out)), computed with fractions."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def adaptive_pool2d(x, output_size, reduce):
    """reduce ∈ {'max', 'avg'}: (y, argmax or None) over the adaptive bins."""
    rows, cols = adaptive_bins(x.shape[2], output_size[0]), adaptive_bins(x.shape[3],
                                                                         output_size[1])
    y = np.zeros(x.shape[:2] + tuple(output_size))
    argmax = np.zeros(y.shape, np.int64)
    for b, c, (i, (h0, h1)), (j, (w0, w1)) in itertools.product(
            range(x.shape[0]), range(x.shape[1]), enumerate(rows), enumerate(cols)):
        window = x[b, c, h0:h1, w0:w1]
        if reduce == "avg":
            y[b, c, i, j] = window.mean()
        else:
            k = int(np.argmax(window))
            y[b, c, i, j] = window.flat[k]
            argmax[b, c, i, j] = (h0 + k // (w1 - w0)) * x.shape[3] + w0 + k % (w1 - w0)
    return y, (argmax if reduce == "max" else None)


def adaptive_avg_pool2d_vjp(input_shape, gy):
    rows = adaptive_bins(input_shape[2], gy.shape[2])
    cols = adaptive_bins(input_shape[3], gy.shape[3])
    gx = np.zeros(input_shape)
    for (i, (h0, h1)), (j, (w0, w1)) in itertools.product(enumerate(rows), enumerate(cols)):
        gx[:, :, h0:h1, w0:w1] += gy[:, :, i:i + 1, j:j + 1] / ((h1 - h0) * (w1 - w0))
    return gx
