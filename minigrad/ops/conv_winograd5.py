"""5×5 stride-1 convolutions by Winograd F(4×4, 5×5): the forward and both gradients.

F(4, 5) computes 4 outputs of a 5-tap correlation from 8 inputs with 8 multiplies, at the
points 0, ±1, ±2, ±½ and ∞ (F(6, 3)'s): y = Aᵀ [(G g) ⊙ (Bᵀ d)]. Nested in 2-D, each 4×4
block of outputs comes from its 8×8 input patch: V = Bᵀ d B per patch and input channel, U =
G g Gᵀ per filter, and for each of the 64 points one matrix product M = U · V over the
channels, then Y = Aᵀ M A. That is 64 multiplies per 16 outputs and channel pair instead of
400 (and of the 144 of F(4×4, 3×3) on a 5×5 kernel's four 3×3 blocks, ``conv_winograd``),
with transforms of 64 points per patch instead of four of 36.

Its points reach ±2 and ±½, and the sums rescale them by up to 8 and 21/4: float32's error is
about one and a half times that of the four blocks (measured in the tests; within the float32
tolerances of the convolution tests). The pass runs in lanes of 16 images
(``minigrad/_kernels/winograd.pyx``: ``forward5_by_group``), float32 with AVX-512 only. The
input gradient is the forward of gy by the filters turned by 180° with their channels
swapped (``conv.Conv2d.backward``); the weight gradient, Gᵀ [Σ (A dY Aᵀ) ⊙ V] G over the
tiles, runs where the products are deep enough (``takes_grad_weight``,
``grad5_weight_by_group``); otherwise those passes keep the rules' other algorithms.

Extra memory (per thread, reused by later calls): one lane group's V (64 points × C × 16
tiles' lanes) and its products for ``OUT_BLOCK`` output channels, the group's interleaved
cells; and U (64 × O × C) while the pass runs. The weight gradient: a group's V and dM and a
512 KiB panel per thread, and ``SUM_SHARES`` partial sums of 64 × O × C.
"""

import numpy as np

from .._kernels import winograd as _kernels
from ..threads import get_num_threads
from .workspace import absent, aligned_empty, workspace

#: G (8 × 5) of F(4, 5): U = G g Gᵀ. Its first row is negated against Toom-Cook's, as is Bᵀ's
#: first row (``winograd_1d.h``), so that both read 1 where they pick a single value.
G = np.array([[1, 0, 0, 0, 0],
              [-2 / 9, -2 / 9, -2 / 9, -2 / 9, -2 / 9],
              [-2 / 9, 2 / 9, -2 / 9, 2 / 9, -2 / 9],
              [1 / 90, 1 / 45, 2 / 45, 4 / 45, 8 / 45],
              [1 / 90, -1 / 45, 2 / 45, -4 / 45, 8 / 45],
              [32 / 45, 16 / 45, 8 / 45, 4 / 45, 2 / 45],
              [32 / 45, -16 / 45, 8 / 45, -4 / 45, 2 / 45],
              [0, 0, 0, 0, 1]])
#: Whether 5×5 forwards may take F(4×4, 5×5) (``takes``).
USE = True
#: Output channels per pass over one group's V: their products stay in the core's L2.
OUT_BLOCK = 64
#: Entries between the products' points (as ``conv_winograd.PLANE_GAP``).
PLANE_GAP = 16
#: The weight gradient sums the tiles in this many partials (as ``conv_winograd.SUM_SHARES``).
SUM_SHARES = 8
#: The rule's bounds, measured against the other algorithms on two threads (docs/algorithms.md):
#: a lane group holds 16 images and goes to one thread, so a batch of fewer than two groups
#: leaves lanes or a thread idle; maps of fewer outputs than 8×8 (7×7: four tiles, a quarter
#: of them padding) and tiles that drop more outputs than a 7×7 grid's lost.
MIN_IMAGES = 32
MIN_CHANNELS = 4
MIN_OUT_CHANNELS = 8
MIN_POSITIONS = 64
MIN_TILE_USE = 0.75
#: ... and the weight gradient's (``takes_grad_weight``): 8→16 and 4→16 were slower on it,
#: 16→32 as fast on 32×32 and faster on smaller maps.
GRAD_WEIGHT_MIN_DEPTH = 10


def takes(kernel, stride, dilation, groups, channels, out_channels, n, out_h, out_w, itemsize):
    """Whether a convolution's forward runs on F(4×4, 5×5): a 5×5 kernel, stride 1,
    undilated, ungrouped, float32 on a build with the AVX-512 products, within the measured
    bounds above."""
    if not (USE and _kernels.FORWARD5 and tuple(kernel) == (5, 5) and tuple(stride) == (1, 1)
            and tuple(dilation) == (1, 1) and groups == 1 and itemsize == 4):
        return False
    tiles = -(-out_h // 4) * -(-out_w // 4)
    return (n >= MIN_IMAGES and channels >= MIN_CHANNELS and out_channels >= MIN_OUT_CHANNELS
            and out_h * out_w >= MIN_POSITIONS and out_h * out_w >= MIN_TILE_USE * 16 * tiles)


def takes_grad_weight(channels, out_channels):
    """Whether a layer that ``takes`` F(4×4, 5×5) computes its weight gradient by it too: where
    its products are deep enough, C·O / (C + O) ≥ ``GRAD_WEIGHT_MIN_DEPTH``, since each tile's
    C + O transforms feed C·O products per point."""
    return channels * out_channels >= GRAD_WEIGHT_MIN_DEPTH * (channels + out_channels)


class Winograd5Plan:
    """The forward of one 5×5 convolution's shape by F(4×4, 5×5) (``takes``)."""

    def __init__(self, x_shape, weight_shape, padding):
        self.n, self.channels, self.height, self.width = x_shape
        self.out_channels = weight_shape[0]
        (self.top, bottom), (self.left, right) = padding
        self.out_h = self.height + self.top + bottom - 4
        self.out_w = self.width + self.left + right - 4
        self.tiles_h, self.tiles_w = -(-self.out_h // 4), -(-self.out_w // 4)

    def transform_weight(self, weight):
        """U (64, O, C) = G g Gᵀ for each filter g (O, C, 5, 5), point 8a + b, float32: two
        products over all the filters at once (a stack of small ones runs one at a time)."""
        g = G.astype(weight.dtype)
        filters = self.out_channels * self.channels
        rows = (weight.reshape(-1, 5) @ g.T).reshape(filters, 5, 8)        # (g Gᵀ)[k, b]
        u = g @ rows.transpose(1, 0, 2).reshape(5, -1)                      # (G g Gᵀ)[a, (oc, b)]
        u = u.reshape(8, self.out_channels, self.channels, 8).transpose(0, 3, 1, 2)
        return np.ascontiguousarray(u).reshape(64, self.out_channels, self.channels)

    def forward(self, x, u, bias):
        """y (N, O, Ho, Wo) = conv(x, g) + bias, for U = ``transform_weight(g)``."""
        y = aligned_empty((self.n, self.out_channels, self.out_h, self.out_w), x.dtype)
        threads = get_num_threads()
        block = min(self.out_channels, OUT_BLOCK)
        scratch = workspace.get("winograd_scratch", (threads, _kernels.scratch5_length(
            self.tiles_h, self.tiles_w)), x.dtype)
        work = workspace.get("winograd_work", (threads, _kernels.by_group5_length(
            self.channels, block, self.tiles_h, self.tiles_w, PLANE_GAP)), x.dtype)
        _kernels.forward5_by_group(x, u, y, absent(x.dtype) if bias is None else bias,
                                   self.top, self.left, block, PLANE_GAP, scratch, work, threads)
        return y

    def grad_weight(self, x, gy):
        """∂L/∂g (O, C, 5, 5) = Gᵀ [Σ (A dY Aᵀ) ⊙ (Bᵀ d B)] G over the batch's tiles, for the
        forward's x and the output gradient gy; the tiles' sums in ``SUM_SHARES`` partials,
        each a fixed share of the lane groups (``_kernels.grad5_weight_by_group``), added in
        order."""
        threads = get_num_threads()
        groups = -(-self.n // _kernels.LANE_GROUP)
        shares = workspace.get("winograd_grad_u", (max(1, min(SUM_SHARES, groups)), 64,
                                                   self.out_channels, self.channels), x.dtype)
        scratch = workspace.get("winograd_scratch", (threads, _kernels.scratch5_length(
            self.tiles_h, self.tiles_w)), x.dtype)
        work = workspace.get("winograd_work", (threads, _kernels.grad5_weight_length(
            self.channels, self.out_channels, self.tiles_h, self.tiles_w, PLANE_GAP)), x.dtype)
        _kernels.grad5_weight_by_group(x, gy, shares, self.top, self.left, PLANE_GAP, scratch,
                                       work, threads)
        grad_u = shares.sum(axis=0).reshape(8, 8, -1)                       # (a, b, (o, c))
        g = G.astype(x.dtype)
        # Gᵀ grad_u G: along a, then along b, as two products over all filters at once
        rows = (g.T @ grad_u.reshape(8, -1)).reshape(5, 8, -1)              # (k, b, (o, c))
        grad = (g.T @ rows.transpose(1, 0, 2).reshape(8, -1)).reshape(5, 5, -1)   # (l, k, oc)
        return np.ascontiguousarray(grad.transpose(2, 1, 0)).reshape(
            self.out_channels, self.channels, 5, 5)
