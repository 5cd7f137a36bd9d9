"""Plain numpy references for convolution, pooling and batch norm: forward values and
vector-Jacobian products (the gradient that an upstream gradient ``gy`` sends back).

Written for obviousness, not speed: every output element is computed from its window, every
gradient by sending each output's upstream gradient back to the cells it read. Window positions
are enumerated by brute force (``window_starts``), not by the output-size formula minigrad uses,
so the two are independent. Geometry arguments are (h, w) pairs unless a function says
otherwise; results are float64, except fractional max pooling, which works in the input's
precision as PyTorch does.
"""
import itertools
import math

import numpy as np


def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


# -- window geometry ------------------------------------------------------------------------------

def window_starts(size, kernel, stride, padding, dilation, ceil_mode):
    """Starts (in unpadded coordinates, may be negative) of every window along one axis, by
    enumeration: a window is kept while its last tap lies inside the padded input
    [−padding, size + padding), or with ceil_mode while it overhangs the padded input by less
    than one stride and starts inside the input or its left padding (PyTorch drops a window
    starting in the right padding)."""
    starts = []
    for o in itertools.count():
        start = o * stride - padding
        overhang = start + dilation * (kernel - 1) - (size + padding - 1)
        if overhang <= 0 or (ceil_mode and overhang < stride and start < size):
            starts.append(start)
        else:
            return starts


def _clipped_windows(size, kernel, stride, ceil_mode):
    """[start, end) of every window along an axis without padding or dilation; ceil_mode's
    overhanging last window is clipped at the end of the input."""
    return [(start, min(start + kernel, size))
            for start in window_starts(size, kernel, stride, 0, 1, ceil_mode)]


def adaptive_bins(size, out):
    """Bin i covers [floor(i·size/out), ceil((i + 1)·size/out)), in integer arithmetic."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


# -- convolution ----------------------------------------------------------------------------------

def _conv_padding(padding, kernel, dilation):
    """((top, bottom), (left, right)) for an int, an (h, w) pair, "valid" or "same" (total
    d·(k − 1) per axis, the odd cell at the bottom/right)."""
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        return tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
                     for k, d in zip(kernel, dilation))
    return tuple((p, p) for p in _pair(padding))


def _conv_windows(x, weight, stride, padding, dilation):
    """(x zero-padded, (top, left) padding, output (h, w), {(i, j): np.ix_ index of the window
    of output position (i, j) in the padded plane})."""
    (sh, sw), (dh, dw) = _pair(stride), _pair(dilation)
    kh, kw = weight.shape[2:]
    (top, bottom), (left, right) = _conv_padding(padding, (kh, kw), (dh, dw))
    x_pad = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    rows = window_starts(x_pad.shape[2], kh, sh, 0, dh, False)
    cols = window_starts(x_pad.shape[3], kw, sw, 0, dw, False)
    windows = {(i, j): np.ix_(r + dh * np.arange(kh), c + dw * np.arange(kw))
               for (i, r), (j, c) in itertools.product(enumerate(rows), enumerate(cols))}
    return x_pad, (top, left), (len(rows), len(cols)), windows


def _conv_taps(n, weight_shape, groups, windows):
    """(b, o, (i, j), index) per output y[b, o, i, j]: x_pad[b][index] are the cells it reads,
    the input channels of o's group in the window of (i, j), shaped like weight[o]."""
    out_channels, group_channels = weight_shape[:2]
    per_group = out_channels // groups
    for b, o in itertools.product(range(n), range(out_channels)):
        first = (o // per_group) * group_channels
        for (i, j), (rows, cols) in windows.items():
            yield b, o, (i, j), (slice(first, first + group_channels), rows, cols)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """y[n, o, i, j] = bias[o] + Σ_{c, a, b} w[o, c, a, b] · x[n, g·C/G + c, i·sh − top + a·dh,
    j·sw − left + b·dw] (zero outside x), g the group of o. stride and dilation are ints or
    pairs; padding an int, a pair, "valid" or "same"."""
    x, weight = np.asarray(x, np.float64), np.asarray(weight, np.float64)
    x_pad, _, out_hw, windows = _conv_windows(x, weight, stride, padding, dilation)
    y = np.zeros((x.shape[0], weight.shape[0]) + out_hw)
    for b, o, (i, j), index in _conv_taps(x.shape[0], weight.shape, groups, windows):
        y[b, o, i, j] = np.sum(x_pad[b][index] * weight[o]) + (0 if bias is None else bias[o])
    return y


def conv2d_vjp(x, weight, gy, stride=1, padding=0, dilation=1, groups=1):
    """(gx, gw, gbias): each output's upstream gradient sent back over its window, to the input
    cells (times the weights) and to the weights (times the input cells)."""
    x, weight = np.asarray(x, np.float64), np.asarray(weight, np.float64)
    x_pad, (top, left), _, windows = _conv_windows(x, weight, stride, padding, dilation)
    gx_pad, gw = np.zeros(x_pad.shape), np.zeros(weight.shape)
    for b, o, (i, j), index in _conv_taps(x.shape[0], weight.shape, groups, windows):
        gx_pad[b][index] += gy[b, o, i, j] * weight[o]
        gw[o] += gy[b, o, i, j] * x_pad[b][index]
    gx = gx_pad[:, :, top:top + x.shape[2], left:left + x.shape[3]]
    return gx, gw, np.asarray(gy, np.float64).sum(axis=(0, 2, 3))


# -- max, average, adaptive and global pooling ----------------------------------------------------

def _pool_windows(shape, kernel, stride, padding, dilation, ceil_mode):
    rows = window_starts(shape[2], kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    cols = window_starts(shape[3], kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    return rows, cols


def _taps(start, kernel, dilation, size):
    return [start + a * dilation for a in range(kernel) if 0 <= start + a * dilation < size]


def max_pool2d(x, kernel, stride, padding, dilation, ceil_mode):
    """(y, argmax) by PyTorch's rule: scan the window's in-bounds taps row-major from the first
    one, taking a value greater than the best so far or NaN; argmax is the flat index h·W + w
    of the value taken in its plane. A window whose taps all fall in the padding (possible with
    dilation) gives −inf and index −1."""
    rows, cols = _pool_windows(x.shape, kernel, stride, padding, dilation, ceil_mode)
    y = np.zeros(x.shape[:2] + (len(rows), len(cols)))
    argmax = np.zeros(y.shape, np.int64)
    for b, c, (i, r), (j, s) in itertools.product(range(x.shape[0]), range(x.shape[1]),
                                                  enumerate(rows), enumerate(cols)):
        best, where = -np.inf, -1
        for h in _taps(r, kernel[0], dilation[0], x.shape[2]):
            for w in _taps(s, kernel[1], dilation[1], x.shape[3]):
                value = x[b, c, h, w]
                if where == -1 or value > best or np.isnan(value):
                    best, where = value, h * x.shape[3] + w
        y[b, c, i, j], argmax[b, c, i, j] = best, where
    return y, argmax


def scatter_to_argmax(input_shape, argmax, gy):
    """VJP of any max-type pool: each output's gradient goes to its argmax cell (flat index in
    its plane)."""
    gx = np.zeros(input_shape)
    for b, c, i, j in np.ndindex(gy.shape):
        gx[b, c].flat[argmax[b, c, i, j]] += gy[b, c, i, j]
    return gx


def _avg_windows(shape, kernel, stride, padding, ceil_mode, count_include_pad,
                 divisor_override):
    """{(i, j): (row start, col start, divisor)} per output position, and the grid shape."""
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
    """Sum of the window's in-bounds cells / divisor. The divisor (PyTorch's rules):
    divisor_override if given, else the window's cells inside the padded input (without the
    ceil_mode overhang) with count_include_pad, or inside the input without."""
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
    """gx: each output's gradient / its divisor, added to each in-bounds cell of its window."""
    windows, _ = _avg_windows(input_shape, kernel, stride, padding, ceil_mode,
                              count_include_pad, divisor_override)
    gx = np.zeros(input_shape)
    for (i, j), (r, s, divisor) in windows.items():
        for h in _taps(r, kernel[0], 1, input_shape[2]):
            for w in _taps(s, kernel[1], 1, input_shape[3]):
                gx[:, :, h, w] += gy[:, :, i, j] / divisor
    return gx


def adaptive_pool2d(x, output_size, reduce):
    """reduce ∈ {"max", "avg"}: (y, argmax or None) over the adaptive bins of each axis; the
    max is the bin's first maximum in row-major order, argmax its flat index in the plane. A
    global pool is the (1, 1) case."""
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


def adaptive_pool2d_vjp(input_shape, gy, reduce, argmax=None):
    """gx of adaptive_pool2d: "avg" spreads each output's gradient evenly over its bin, "max"
    sends it to the argmax adaptive_pool2d returned."""
    if reduce == "max":
        return scatter_to_argmax(input_shape, argmax, gy)
    rows = adaptive_bins(input_shape[2], gy.shape[2])
    cols = adaptive_bins(input_shape[3], gy.shape[3])
    gx = np.zeros(input_shape)
    for (i, (h0, h1)), (j, (w0, w1)) in itertools.product(enumerate(rows), enumerate(cols)):
        gx[:, :, h0:h1, w0:w1] += gy[:, :, i:i + 1, j:j + 1] / ((h1 - h0) * (w1 - w0))
    return gx


# -- alternative pooling: Lp, stochastic, fractional max, spatial pyramid, mixed, gated ----------
# Windows without padding or dilation; kernel and stride are (h, w) pairs.

def window_loop(x, kernel, stride, ceil_mode, reduce_window):
    """(out, row windows, column windows): out[n, c, i, j] = reduce_window(the window's array),
    a window being [start, end) per axis (ceil_mode's last one clipped at the input's end)."""
    rows = _clipped_windows(x.shape[2], kernel[0], stride[0], ceil_mode)
    cols = _clipped_windows(x.shape[3], kernel[1], stride[1], ceil_mode)
    out = np.zeros(x.shape[:2] + (len(rows), len(cols)))
    for n, c, (i, (h0, h1)), (j, (w0, w1)) in itertools.product(
            range(x.shape[0]), range(x.shape[1]), enumerate(rows), enumerate(cols)):
        out[n, c, i, j] = reduce_window(x[n, c, h0:h1, w0:w1])
    return out, rows, cols


def grad_loop(x, gy, rows, cols, window_grad):
    """gx: Σ over the windows (from window_loop) of window_grad(window, its upstream gradient),
    the gradient of that output with respect to the window's cells."""
    gx = np.zeros_like(x)
    for n, c, (i, (h0, h1)), (j, (w0, w1)) in itertools.product(
            range(x.shape[0]), range(x.shape[1]), enumerate(rows), enumerate(cols)):
        gx[n, c, h0:h1, w0:w1] += window_grad(x[n, c, h0:h1, w0:w1], gy[n, c, i, j])
    return gx


def lp_pool2d(x, p, kernel, stride, ceil_mode, gy):
    """(y, gx): y = (c·Σ|x|^p)^(1/p) per window, c = kernel area / cells of the window inside
    the input (> 1 only for ceil_mode's clipped windows, PyTorch's scaling); gx for the
    upstream gradient gy by the chain rule (0 for an all-zero window)."""
    area = kernel[0] * kernel[1]

    def window_sum(w):
        return area / w.size * np.sum(np.abs(w) ** p)

    def value(w):
        return window_sum(w) ** (1 / p)

    def grad(w, g):
        s = window_sum(w)
        if s == 0:
            return np.zeros_like(w)
        # d s^(1/p)/dw = (1/p)·s^(1/p − 1) · c·p·|w|^(p−1)·sign(w)
        return g * s ** (1 / p - 1) * area / w.size * np.abs(w) ** (p - 1) * np.sign(w)

    out, rows, cols = window_loop(x, kernel, stride, ceil_mode, value)
    return out, grad_loop(x, gy, rows, cols, grad)


def stochastic_pool2d_train(x, draws, kernel, stride):
    """(y, index) of training-mode stochastic pooling for one uniform draw per window: the cell
    k with the first cumulative sum above draw·(window sum), i.e. cell k with probability
    x_k / Σx; y is its value and index its flat index in the plane. An all-zero window gives its
    first cell and y = 0."""
    out, rows, cols = window_loop(x, kernel, stride, False, np.sum)
    index = np.zeros(out.shape, np.int64)
    for n, c, i, j in np.ndindex(out.shape):
        (h0, h1), (w0, w1) = rows[i], cols[j]
        window = x[n, c, h0:h1, w0:w1]
        cumulative = np.cumsum(window.ravel())
        chosen = np.flatnonzero(draws[n, c, i, j] * cumulative[-1] < cumulative)
        k = chosen[0] if chosen.size else 0
        dh, dw = divmod(k, w1 - w0)
        index[n, c, i, j] = (h0 + dh) * x.shape[3] + w0 + dw
        out[n, c, i, j] = window.ravel()[k] if cumulative[-1] > 0 else 0
    return out, index


def stochastic_pool2d_eval(x, kernel, stride, gy):
    """(y, gx) of evaluation-mode stochastic pooling: the probability-weighted average
    y = Σx² / Σx per window (0 for an all-zero window) and, for the upstream gradient gy,
    ∂y/∂x_k = (2·x_k − y) / Σx."""
    def value(w):
        return np.sum(w * w) / np.sum(w) if np.sum(w) > 0 else 0.0

    def grad(w, g):
        total = np.sum(w)
        return np.zeros_like(w) if total == 0 else g * (2 * w - value(w)) / total

    out, rows, cols = window_loop(x, kernel, stride, False, value)
    return out, grad_loop(x, gy, rows, cols, grad)


def _fractional_starts(u, size, out, kernel, dtype):
    """PyTorch's interval starts along one axis for the sample u, element by element in the
    input's precision: ⌊(i + u)·α⌋ − ⌊u·α⌋, α = (size − kernel) / (out − 1); the last interval
    ends at the input's end."""
    starts = []
    alpha = dtype(size - kernel) / dtype(out - 1) if out > 1 else None
    for i in range(out - 1):
        starts.append(int(dtype((dtype(i) + u) * alpha)) - int(dtype(u * alpha)))
    return starts + [size - kernel]


def fractional_max_pool2d(x, kernel, out, samples, overlapping):
    """(y, index): the first maximum (row-major) of each fractional region and its flat index
    in the plane, y in x's dtype. samples[n, c] = (u for the columns, u for the rows); regions
    are [start, start + kernel) when overlapping, else [start, next start)."""
    y = np.zeros(x.shape[:2] + out, x.dtype)
    index = np.zeros(y.shape, np.int64)
    for n, c in np.ndindex(x.shape[:2]):
        regions = []
        for axis, u in ((0, samples[n, c, 1]), (1, samples[n, c, 0])):
            size = x.shape[2 + axis]
            starts = _fractional_starts(u, size, out[axis], kernel[axis], x.dtype.type)
            ends = ([s + kernel[axis] for s in starts] if overlapping
                    else starts[1:] + [size])
            regions.append(list(zip(starts, ends)))
        for (i, (h0, h1)), (j, (w0, w1)) in itertools.product(enumerate(regions[0]),
                                                              enumerate(regions[1])):
            window = x[n, c, h0:h1, w0:w1]
            k = int(np.argmax(window))
            dh, dw = divmod(k, w1 - w0)
            y[n, c, i, j] = window.ravel()[k]
            index[n, c, i, j] = (h0 + dh) * x.shape[3] + w0 + dw
    return y, index


def spatial_pyramid_pool2d(x, levels, reduce_window):
    """(N, C·Σ level²): for each level, reduce_window (np.max or np.mean with an axis
    argument) over a level × level grid of adaptive bins, flattened channel-major, the levels
    one after another."""
    pieces = []
    for level in levels:
        out = np.zeros(x.shape[:2] + (level, level))
        for (i, (h0, h1)), (j, (w0, w1)) in itertools.product(
                enumerate(adaptive_bins(x.shape[2], level)),
                enumerate(adaptive_bins(x.shape[3], level))):
            out[:, :, i, j] = reduce_window(x[:, :, h0:h1, w0:w1], axis=(2, 3))
        pieces.append(out.reshape(x.shape[0], -1))
    return np.concatenate(pieces, axis=1)


def mixed_pool2d(x, alpha, kernel, stride):
    """(y, max − mean): y = α·max + (1 − α)·mean per window (α broadcast against the output);
    max − mean is ∂y/∂α."""
    maxima, _, _ = window_loop(x, kernel, stride, False, np.max)
    means, _, _ = window_loop(x, kernel, stride, False, np.mean)
    return alpha * maxima + (1 - alpha) * means, maxima - means


def gated_pool2d(x, weight, kernel, stride):
    """y = g·max + (1 − g)·mean per window, the gate g = sigmoid(Σ weight · window)."""
    def value(window):
        gate = 1 / (1 + np.exp(-np.sum(weight * window)))
        return gate * window.max() + (1 - gate) * window.mean()

    return window_loop(x, kernel, stride, False, value)[0]


# -- batch norm -----------------------------------------------------------------------------------

def batch_norm(x, gamma, beta, mean=None, var=None, eps=1e-5):
    """y[:, c] = (x[:, c] − mean_c) / √(var_c + eps) · gamma_c + beta_c, channel by channel,
    with the batch statistics (biased variance) unless mean and var are given."""
    x = np.asarray(x, np.float64)
    y = np.empty_like(x)
    for c in range(x.shape[1]):
        values = x[:, c]
        m = values.mean() if mean is None else mean[c]
        v = ((values - values.mean()) ** 2).mean() if var is None else var[c]
        y[:, c] = (values - m) / math.sqrt(v + eps) * gamma[c] + beta[c]
    return y


# -- tree pooling ---------------------------------------------------------------------------------

def tree_pool2d(x, leaves, gates, kernel, stride, gy=None):
    """Tree pooling in float64, written as the paper's recursion over nodes (heap order: gate m
    has children 2m + 1 and 2m + 2, nodes G … 2G are the leaves): a leaf's response is
    ⟨v, x_R⟩, a gate's σ(⟨ω, x_R⟩)·left + (1 − σ(⟨ω, x_R⟩))·right. Returns y, or with ``gy``
    (y, gx, g_leaves, g_gates), the gradients by the chain rule through the same recursion."""
    x = np.asarray(x, np.float64)
    leaves, gates = np.asarray(leaves, np.float64), np.asarray(gates, np.float64)
    (kh, kw), (sh, sw) = kernel, stride
    windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    windows = windows[:, :, ::sh, ::sw]                     # (N, C, OH, OW, kh, kw)
    n_gates = len(gates)
    filters = np.concatenate([gates, leaves])

    def dot(node):
        return np.einsum("nchwij,ij->nchw", windows, filters[node])

    def response(node):
        if node >= n_gates:
            return dot(node)
        s = 1 / (1 + np.exp(-dot(node)))
        return s * response(2 * node + 1) + (1 - s) * response(2 * node + 2)

    y = response(0)
    if gy is None:
        return y
    gy = np.asarray(gy, np.float64)
    g_filters = np.zeros_like(filters)
    gx_windows = np.zeros(windows.shape)

    def descend(node, g):
        """g: the gradient of node's response; adds node's filter and window gradients."""
        if node >= n_gates:
            g_dot = g
        else:
            s = 1 / (1 + np.exp(-dot(node)))
            left, right = response(2 * node + 1), response(2 * node + 2)
            g_dot = g * (left - right) * s * (1 - s)
            descend(2 * node + 1, g * s)
            descend(2 * node + 2, g * (1 - s))
        g_filters[node] += np.einsum("nchwij,nchw->ij", windows, g_dot)
        gx_windows[...] += g_dot[..., None, None] * filters[node]

    descend(0, gy)
    gx = np.zeros_like(x)
    oh, ow = y.shape[2:]
    for i in range(oh):
        for j in range(ow):
            gx[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += gx_windows[:, :, i, j]
    return y, gx, g_filters[n_gates:], g_filters[:n_gates]
