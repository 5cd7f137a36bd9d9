"""Alternative pooling kinds (NCHW): Lp, stochastic, fractional max, spatial pyramid, and the
generalized (mixed, gated and tree) pooling of Lee, Gallagher & Tu (2016).

Lp, stochastic and fractional max pooling are ops with Cython kernels of their own
(minigrad/_kernels/pooling.pyx), tree pooling too (minigrad/_kernels/tree_pool.pyx); spatial
pyramid, mixed and gated pooling are compositions of kernel-backed ops (adaptive/max/average
pooling, convolution, sigmoid, cat). Each takes an unbatched (C, H, W) input too
(``shape.batch_of_one``).
"""
import numbers

import numpy as np

from .._kernels import pooling as _kernels
from .._kernels import tree_pool as _tree_kernels
from .._validate import check_min, flag, pair, real_number
from ..function import Function
from ..random import resolve_rng
from ..tensor import Tensor, as_tensor
from ..threads import get_num_threads
from .activation import sigmoid
from .conv import conv2d
from .geometry import fractional_intervals
from .pooling import (_grad, _input, _planes, adaptive_avg_pool2d, adaptive_max_pool2d,
                      avg_pool2d, max_pool2d)
from .pooling import _window as _pool_window
from .shape import batch_of_one, cat


def _window(x, kernel_size, stride, op_name, ceil_mode=False):
    """(kernel, stride, (OH, OW)) of unpadded windows; ValueError naming the argument."""
    kernel, stride, _, _, out = _pool_window(x, kernel_size, stride, 0, 1, ceil_mode, op_name)
    return kernel, stride, out


def _generator(seed, op_name):
    """numpy Generator for ``seed``: None (minigrad's global generator), a non-negative int or a
    numpy.random.Generator (drawn from, so successive calls differ)."""
    if not (seed is None or isinstance(seed, np.random.Generator) or (
            isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0)):
        raise TypeError(f"{op_name}: seed must be None, a non-negative int or a "
                        f"numpy.random.Generator, got {seed!r}")
    return resolve_rng(seed, op_name)


# -- Lp pooling ----------------------------------------------------------------------------------

class WindowPool2d(Function):
    """A reduction over each unpadded sliding window (clipped at the edge by ceil_mode) with a
    kernel of its own, no index kept:

    * ``kind = LP_POOL``: y = (c·Σ|x|^p)^(1/p) with c = kernel area / window area (1 unless
      clipped); dy/dx = c·sign(x)·(|x|/y)^(p−1), 0 where x = 0 or y = 0;
    * ``kind = WEIGHTED_AVERAGE`` (stochastic pooling's evaluation): y = Σa²/Σa;
      dy/da_j = (2·a_j − y)/Σa, 0 for an all-zero window.
    """

    def __init__(self, kind, kernel, stride, out_size, p=1.0):
        self.kind, self.kernel, self.stride, self.out_size, self.p = (kind, kernel, stride,
                                                                      out_size, p)

    def forward(self, x):
        y = np.empty(x.shape[:2] + self.out_size, dtype=x.dtype)
        _kernels.window_pool_forward(_planes(x), _planes(y), self.kind, *self.kernel,
                                     *self.stride, self.p, get_num_threads())
        self.save_for_backward(x, y)
        return y

    def backward(self, gy):
        x, y = self.saved_tensors
        gx = np.empty_like(x)
        _kernels.window_pool_backward(_planes(x), _planes(y), _planes(_grad(gy, x.dtype)),
                                      _planes(gx), self.kind, *self.kernel, *self.stride, self.p,
                                      get_num_threads())
        return gx


@batch_of_one
def lp_pool2d(x, p, kernel_size, stride=None, ceil_mode=False):
    """Power-average pooling: y = (c · Σ |x|^p)^(1/p) over each kernel_size window (no
    padding), c = kH·kW / (number of cells of the window inside the input).

    c = 1 for every full window; only the clipped last windows of ``ceil_mode`` have c > 1,
    which scales them as PyTorch does (it computes (avg_pool2d(x^p) · kH·kW)^(1/p), and
    avg_pool2d divides a clipped window by the cells inside). Gradient:
    dy/dx_i = c · sign(x_i) · (|x_i| / y)^(p−1); an all-zero window outputs 0 with gradient 0.
    p = 1 is sum pooling, p = 2 the Euclidean norm, and large p tends to max pooling of |x|.

    Equals PyTorch's ``lp_pool2d`` (whose argument is called ``norm_type``) for non-negative
    input. Negative input: minigrad takes |x|, PyTorch raises x itself to p (its
    sign(s)·relu(|s|) step on the average s leaves s unchanged), which agrees for even integer
    p but gives the signed sum for p = 1 and NaN for a non-integer p or a negative sum with
    odd p.

    Output size per axis: floor((in − kernel) / stride) + 1 (ceil with ``ceil_mode``, as
    max_pool2d); ``stride`` defaults to ``kernel_size``.
    """
    op = "lp_pool2d"
    x = _input(x, op)
    exponent = real_number(p, "p", op)
    if not exponent > 0:
        raise ValueError(f"{op}: p must be a positive finite number, got {p!r}")
    ceil_mode = flag(ceil_mode, "ceil_mode", op)
    kernel, stride, out = _window(x, kernel_size, stride, op, ceil_mode)
    return WindowPool2d(_kernels.LP_POOL, kernel, stride, out, exponent)(x)


# -- stochastic pooling --------------------------------------------------------------------------

class StochasticPool2dSample(Function):
    """Training mode: each window outputs one of its cells, drawn with probability a_i/Σa from
    the uniform ``draws`` (one per window); the gradient goes to that cell."""

    def __init__(self, kernel, stride, draws):
        self.kernel, self.stride, self.draws = kernel, stride, draws

    def forward(self, x):
        y = np.empty(self.draws.shape, dtype=x.dtype)
        index = np.empty(self.draws.shape, dtype=np.int32)
        _kernels.stochastic_pool_train_forward(_planes(x), _planes(self.draws), _planes(y),
                                               _planes(index), *self.kernel, *self.stride,
                                               get_num_threads())
        self.input_meta = x.shape, x.dtype
        self.save_for_backward(y, index)
        return y

    def backward(self, gy):
        y, index = self.saved_tensors
        gx = np.empty(*self.input_meta)
        _kernels.stochastic_pool_train_backward(_planes(y), _planes(index),
                                                _planes(_grad(gy, y.dtype)), _planes(gx),
                                                get_num_threads())
        return gx


@batch_of_one
def stochastic_pool2d(x, kernel_size, stride=None, training=True, seed=None):
    """Stochastic pooling (Zeiler & Fergus, 2013) of a non-negative input (e.g. after ReLU).

    Each window's cells a_i get probabilities a_i/Σa. In training one cell is sampled per
    window and output (the gradient goes to it); in evaluation the output is the
    probability-weighted average Σa_i²/Σa_i. An all-zero window outputs 0 with gradient 0.
    The uniform draws (one per window) come from numpy's Generator: ``seed`` is None (minigrad's
    global generator), an int (the same draws on every call) or a numpy.random.Generator; the
    result does not depend on the number of threads.

    Output size per axis: floor((in − kernel) / stride) + 1; ``stride`` defaults to
    ``kernel_size``. Negative or NaN/inf input raises ValueError.
    """
    op = "stochastic_pool2d"
    x = _input(x, op, max_type=True)
    training = flag(training, "training", op)
    kernel, stride, out = _window(x, kernel_size, stride, op)
    rng = _generator(seed, op)
    # One pass each: min catches negatives and NaN (NaN fails >= 0), max catches +inf.
    if x.size and not (x.data.min() >= 0 and np.isfinite(x.data.max())):
        raise ValueError(f"{op}: input must be non-negative and finite (probabilities are "
                         f"a_i / sum(a)), got values in [{x.data.min()}, {x.data.max()}]")
    if not training:
        return WindowPool2d(_kernels.WEIGHTED_AVERAGE, kernel, stride, out)(x)
    draws = rng.random(x.shape[:2] + out)
    return StochasticPool2dSample(kernel, stride, draws)(x)


# -- fractional max pooling ----------------------------------------------------------------------

class FractionalMaxPool2d(Function):
    """Max over per-plane regions rows [row_start, row_end) × columns [col_start, col_end);
    the gradient goes to the (first) maximum of each region."""

    def __init__(self, rows, cols):
        self.rows, self.cols = rows, cols

    def forward(self, x):
        n, c = x.shape[:2]
        shape = (n, c, self.rows[0].shape[1], self.cols[0].shape[1])
        y = np.empty(shape, dtype=x.dtype)
        index = np.empty(shape, dtype=np.int32)
        _kernels.region_max_forward(_planes(x), *self.rows, *self.cols, _planes(y),
                                    _planes(index), get_num_threads())
        self.input_meta = x.shape, x.dtype
        self.save_for_backward(index)
        return y

    def backward(self, gy):
        (index,) = self.saved_tensors
        gx = np.empty(*self.input_meta)
        _kernels.max_pool_backward(_planes(_grad(gy, gx.dtype)), _planes(index), _planes(gx),
                                   get_num_threads())
        return gx


def _fractional_output_size(x, kernel, output_size, output_ratio, op):
    if (output_size is None) == (output_ratio is None):
        raise ValueError(f"{op}: give exactly one of output_size and output_ratio, got "
                         f"output_size={output_size!r}, output_ratio={output_ratio!r}")
    if output_size is not None:
        out = pair(output_size, "output_size", op)
        name = "output_size"
    else:
        ratio = (output_ratio, output_ratio) if isinstance(output_ratio, numbers.Real) \
            else tuple(output_ratio) if isinstance(output_ratio, (tuple, list)) else None
        if ratio is None or len(ratio) != 2 or not all(
                isinstance(r, numbers.Real) and 0 < r < 1 for r in ratio):
            raise ValueError(f"{op}: output_ratio must be a number or a pair of numbers in "
                             f"(0, 1), got {output_ratio!r}")
        out = tuple(int(n * r) for n, r in zip(x.shape[2:], ratio))   # PyTorch's rounding
        name = f"output_ratio {output_ratio!r} (output size {out})"
    for axis, n, k, o in zip(("height", "width"), x.shape[2:], kernel, out):
        if not 1 <= o <= n - k + 1:
            raise ValueError(
                f"{op}: {name} gives {o} rows/columns along the {axis} but must be between 1 "
                f"and input size − kernel_size + 1 = {n} − {k} + 1 for input shape {x.shape} "
                f"and kernel_size {kernel}")
    return out


def _fractional_samples(x, random_samples, seed, op):
    """(N, C, 2) samples u in [0, 1) in the input's dtype: [..., 0] for the width, [..., 1] for
    the height (PyTorch's order)."""
    shape = x.shape[:2] + (2,)
    if random_samples is None:
        return _generator(seed, op).random(shape, dtype=x.dtype)
    if seed is not None:
        raise ValueError(f"{op}: give random_samples or seed, not both")
    samples = random_samples.data if isinstance(random_samples, Tensor) else random_samples
    samples = np.asarray(samples)
    if samples.shape != shape or samples.dtype.kind != "f":
        raise ValueError(f"{op}: random_samples must be a float array of shape (N, C, 2) = "
                         f"{shape} for input shape {x.shape}, got shape {samples.shape} and "
                         f"dtype {samples.dtype}")
    samples = samples.astype(x.dtype)
    if samples.size and not (samples.min() >= 0 and samples.max() < 1):
        raise ValueError(f"{op}: random_samples must lie in [0, 1), got values in "
                         f"[{samples.min()}, {samples.max()}]")
    return samples


@batch_of_one
def fractional_max_pool2d(x, kernel_size, output_size=None, output_ratio=None,
                          overlapping=True, random_samples=None, seed=None):
    """Fractional max pooling (Graham, 2014): max over pseudo-random regions, a different
    sequence for each plane, which shrinks the map by a non-integer factor.

    Per plane and axis the region starts follow PyTorch's sequence (see
    ``geometry.fractional_intervals``), driven by ``random_samples`` (N, C, 2) in [0, 1):
    sample 0 drives the width, sample 1 the height. ``overlapping=True`` (PyTorch's op) pools
    kernel_size windows at those starts, and with the same samples returns exactly what
    ``torch.nn.functional.fractional_max_pool2d(..., _random_samples=...)`` returns;
    the windows cover the input when ceil((in − kernel)/(out − 1)) ≤ kernel (the starts are
    at most that far apart).
    ``overlapping=False`` is Graham's disjoint variant: each region runs from its start to the
    next region's start (the last to the input's edge), so the regions tile the input.
    Without ``random_samples`` they are drawn from ``seed`` (None: minigrad's global generator,
    an int, or a numpy.random.Generator).

    Output size: ``output_size``, or int(in · output_ratio) per axis; it must satisfy
    1 ≤ out ≤ in − kernel + 1.
    """
    op = "fractional_max_pool2d"
    x = _input(x, op, max_type=True)
    kernel = pair(kernel_size, "kernel_size", op)
    check_min(kernel, 1, "kernel_size", op)
    overlapping = flag(overlapping, "overlapping", op)
    out = _fractional_output_size(x, kernel, output_size, output_ratio, op)
    samples = _fractional_samples(x, random_samples, seed, op).reshape(-1, 2)
    rows = fractional_intervals(samples[:, 1], x.shape[2], out[0], kernel[0], overlapping)
    cols = fractional_intervals(samples[:, 0], x.shape[3], out[1], kernel[1], overlapping)
    return FractionalMaxPool2d(rows, cols)(x)


# -- compositions: spatial pyramid, mixed and gated pooling --------------------------------------

@batch_of_one
def spatial_pyramid_pool2d(x, levels=(1, 2, 4), mode="max"):
    """Spatial pyramid pooling (He et al., 2014): for each level l, adaptive max (or average,
    ``mode='avg'``) pooling to an l × l grid, flattened per sample and concatenated in level
    order: (N, C, H, W) → (N, C·Σ l²), the same length for every input size ≥ the largest level.
    """
    op = "spatial_pyramid_pool2d"
    x = _input(x, op, max_type=True)
    if isinstance(levels, numbers.Integral):
        levels = (levels,)
    if not isinstance(levels, (tuple, list)) or not levels or not all(
            isinstance(l, numbers.Integral) and not isinstance(l, bool) for l in levels):
        raise TypeError(f"{op}: levels must be a non-empty sequence of ints, got {levels!r}")
    check_min(tuple(levels), 1, "levels", op)
    if max(levels) > min(x.shape[2:]):
        raise ValueError(f"{op}: pyramid level {max(levels)} in levels {tuple(levels)} is "
                         f"larger than the input's spatial size {x.shape[2:]} (shape {x.shape})")
    pools = {"max": adaptive_max_pool2d, "avg": adaptive_avg_pool2d}
    if mode not in pools:
        raise ValueError(f"{op}: mode must be 'max' or 'avg', got {mode!r}")
    return cat([pools[mode](x, int(l)).flatten(1) for l in levels], axis=1)


def _mix(x, coefficient, kernel, stride, padding):
    """coefficient·max_pool + (1 − coefficient)·avg_pool, written avg + c·(max − avg)."""
    average = avg_pool2d(x, kernel, stride, padding)
    return average + coefficient * (max_pool2d(x, kernel, stride, padding) - average)


def _learned(value, x, name, op):
    value = as_tensor(value, like=x, name=name, op_name=op)
    if value.dtype.kind != "f":
        raise TypeError(f"{op}: {name} must be a floating-point tensor, got dtype {value.dtype}")
    return value if value.dtype == x.dtype else value.astype(x.dtype)


@batch_of_one
def mixed_pool2d(x, alpha, kernel_size, stride=None, padding=0):
    """Mixed max-average pooling (Lee, Gallagher & Tu, 2016):
    y = α·max_pool2d(x) + (1 − α)·avg_pool2d(x), with the windows of max_pool2d/avg_pool2d
    (padding counted in the average, as avg_pool2d's default).

    ``alpha``: a tensor holding one mixing proportion (shape () or (1,)) or one per channel
    (shape (C,)); its gradient is computed (it is meant to be learned; the paper's range is
    [0, 1], not enforced). Output size: max_pool2d's.
    """
    op = "mixed_pool2d"
    x = _input(x, op, max_type=True)
    kernel, stride, padding, _, _ = _pool_window(x, kernel_size, stride, padding, 1, False, op)
    alpha = _learned(alpha, x, "alpha", op)
    if alpha.shape not in ((), (1,), (x.shape[1],)):
        raise ValueError(f"{op}: alpha must have shape () or (1,) (one proportion) or (C,) = "
                         f"({x.shape[1]},) (one per channel) for input shape {x.shape}, got "
                         f"shape {alpha.shape}")
    return _mix(x, alpha.reshape(1, -1, 1, 1), kernel, stride, padding)


@batch_of_one
def gated_pool2d(x, gate_weight, kernel_size, stride=None):
    """Gated max-average pooling (Lee, Gallagher & Tu, 2016), the "responsive" variant: each
    window R gets its own mixing proportion g = sigmoid(⟨w, x_R⟩) and outputs
    g·max(x_R) + (1 − g)·mean(x_R).

    ``gate_weight`` w: (kH, kW), the kernel's shape, shared by all channels (one gating mask
    per layer, as in the paper); the gate is a stride-``stride`` convolution of every channel
    with w. No padding. Output size per axis: floor((in − kernel) / stride) + 1.
    """
    op = "gated_pool2d"
    x = _input(x, op, max_type=True)
    kernel, stride, out = _window(x, kernel_size, stride, op)
    gate_weight = _learned(gate_weight, x, "gate_weight", op)
    if gate_weight.shape != kernel:
        raise ValueError(f"{op}: gate_weight must have the shape of kernel_size {kernel}, got "
                         f"shape {gate_weight.shape}")
    n, c, h, w = x.shape
    gate = conv2d(x.reshape(n * c, 1, h, w), gate_weight.reshape(1, 1, *kernel), stride=stride)
    return _mix(x, sigmoid(gate.reshape(n, c, *out)), kernel, stride, 0)


# -- tree pooling --------------------------------------------------------------------------------

#: tree depth -> number of leaves (a depth-d tree has 2^(d−1) leaves and one gate fewer)
TREE_LEAVES = {2: 2, 3: 4}


class TreePool2d(Function):
    """Tree pooling over unpadded windows: the inputs are x (N, C, H, W), the leaf filters
    (L, kH, kW) and the gate filters (L − 1, kH, kW); see ``tree_pool2d`` for the math. The
    backward recomputes every window's dot products and gates from x and the filters instead
    of keeping them (which would take 2L − 1 values per output, more than x itself for
    2×2 windows). Each thread gets a scratch row of doubles: the dot products and gates of
    one output row in the forward, those plus the plane's input gradient in the backward."""

    def __init__(self, kernel, stride, out_size):
        self.kernel, self.stride, self.out_size = kernel, stride, out_size

    def forward(self, x, leaf_weight, gate_weight):
        # one stack in the kernels' heap order: the gates (root first), then the leaves
        filters = np.concatenate([gate_weight, leaf_weight]).reshape(
            len(gate_weight) + len(leaf_weight), -1)
        y = np.empty(x.shape[:2] + self.out_size, dtype=x.dtype)
        threads = get_num_threads()
        scratch = np.empty((threads, _tree_kernels.forward_scratch(len(filters), y.shape[3])))
        _tree_kernels.forward(_planes(x), filters, _planes(y), scratch, *self.kernel,
                              *self.stride, threads)
        self.gates = len(gate_weight)
        self.save_for_backward(x, filters)
        return y

    def backward(self, gy):
        x, filters = self.saved_tensors
        gx = np.empty_like(x)
        planes = x.shape[0] * x.shape[1]
        partial = np.empty((planes, filters.size))
        gfilters = np.empty_like(filters)
        threads = get_num_threads()
        scratch = np.empty((threads, _tree_kernels.backward_scratch(
            len(filters), self.out_size[1], *x.shape[2:])))
        _tree_kernels.backward(_planes(x), filters, _planes(_grad(gy, x.dtype)), _planes(gx),
                               partial, gfilters, scratch, *self.kernel, *self.stride, threads)
        gfilters = gfilters.reshape((-1,) + self.kernel)
        return gx, gfilters[self.gates:], gfilters[:self.gates]


@batch_of_one
def tree_pool2d(x, leaf_weight, gate_weight, kernel_size, stride=None):
    """Tree pooling (Lee, Gallagher & Tu, 2016): a binary tree of learned pooling filters
    (leaves) joined by learned gates, applied to every window R of every channel.

    A leaf's response is a dot product with its filter, f_m(x_R) = ⟨v_m, x_R⟩; a gate node's
    response mixes its two children with a gate computed from the window itself,
    f_m(x_R) = σ(⟨ω_m, x_R⟩)·f_left(x_R) + (1 − σ(⟨ω_m, x_R⟩))·f_right(x_R), and the output is
    the root's response. Depth 2 (the paper's level-2 tree): two leaves and one gate,
    y = σ(⟨ω, x_R⟩)·⟨v_1, x_R⟩ + (1 − σ(⟨ω, x_R⟩))·⟨v_2, x_R⟩. Depth 3: four leaves and three
    gates, gate 0 at the root choosing between gate 1 (over leaves 0, 1) and gate 2 (over
    leaves 2, 3). The filters are shared by all channels (one set per layer, as in the paper)
    and all receive gradients.

    Args:
        x: (N, C, H, W) or (C, H, W), float32 or float64.
        leaf_weight: (L, kH, kW) leaf filters v, L = 2 (depth 2) or 4 (depth 3).
        gate_weight: (L − 1, kH, kW) gate masks ω, the root first (heap order).
        kernel_size: int or (kH, kW).
        stride: int or pair; defaults to ``kernel_size``.

    Returns:
        (N, C, OH, OW) (or (C, OH, OW)), OH = floor((H − kH) / sH) + 1, OW likewise; no padding.

    The Cython kernels run in double per window and are parallel over the N·C planes: each
    thread owns whole planes, the filter gradient is summed per plane and the planes' sums are
    added in plane order, so forward and backward are bitwise the same for any thread count.
    Memory: the backward recomputes the forward's dot products and gates (nothing besides x and
    the filters is kept); it takes N·C·(2L − 1)·kH·kW doubles for the per-plane filter
    gradients, and each thread a scratch of H·W + (5L − 3)·OW doubles (its plane's input
    gradient and one output row's responses, gates and node gradients).

    Example::

        >>> x = minigrad.tensor(np.random.randn(8, 16, 32, 32).astype(np.float32))
        >>> leaves = minigrad.tensor(np.full((2, 2, 2), 0.25, np.float32), requires_grad=True)
        >>> gate = minigrad.tensor(np.zeros((1, 2, 2), np.float32), requires_grad=True)
        >>> y = F.tree_pool2d(x, leaves, gate, 2)       # both leaves average: avg_pool2d
        >>> y.shape
        (8, 16, 16, 16)
        >>> y.sum().backward()                          # x.grad, leaves.grad, gate.grad
    """
    op = "tree_pool2d"
    x = _input(x, op)
    kernel, stride, out = _window(x, kernel_size, stride, op)
    leaf_weight = _learned(leaf_weight, x, "leaf_weight", op)
    gate_weight = _learned(gate_weight, x, "gate_weight", op)
    leaves = leaf_weight.shape[0] if leaf_weight.ndim == 3 else None
    if leaf_weight.shape[1:] != kernel or leaves not in TREE_LEAVES.values():
        raise ValueError(f"{op}: leaf_weight must have shape (leaves, kH, kW) with 2 leaves "
                         f"(depth 2) or 4 (depth 3) and (kH, kW) = kernel_size {kernel}, got "
                         f"shape {leaf_weight.shape}")
    if gate_weight.shape != (leaves - 1,) + kernel:
        raise ValueError(f"{op}: gate_weight must have shape (leaves − 1, kH, kW) = "
                         f"{(leaves - 1,) + kernel} for leaf_weight of shape "
                         f"{leaf_weight.shape}, got shape {gate_weight.shape}")
    return TreePool2d(kernel, stride, out)(x, leaf_weight, gate_weight)
