"""Stride-1 convolution without unrolled windows: the flat-grid kernels of
``minigrad/_kernels/direct_conv.pyx`` (read its docstring for the layout and the tiling).

``Conv2d`` uses this path for ungrouped, stride-1 convolutions with at least ``MIN_TAPS``
kernel taps (3×3, 5×5, dilated, 'same', ...); strided, grouped and 1×1 convolutions keep the
im2col + BLAS path. It is faster than im2col + BLAS for these shapes because it never writes
the unrolled windows, which for a batch are many times the input's size (benchmark cases
conv3x3_s1, conv3x3_d2, conv5x5).

Extra memory (per thread, reused by later calls; ``release_workspace()`` frees it): the input
on its padded grid, ``N·C·(Ho·Wp + reach)`` values (about the input's size); in backward the
output gradient on the same grid (``N·O·(Hp·Wp + reach)``) and position-major
(``N·Ho·Wp·O'``, O' = O rounded up to 32), and weight-gradient partials of at most
``PARTIALS_BYTES``.
"""
import numpy as np

from .._kernels import direct_conv as _kernels
from ..threads import get_num_threads
from .workspace import workspace

#: Kernels with fewer taps go to im2col: the weight-gradient kernel works on groups of
#: ``TAP_BLOCK`` (9) taps, so a 1×2 kernel would waste most of its work.
MIN_TAPS = 3
#: On tiny maps a register tile of ``POSITION_BLOCK`` positions is mostly wasted (a 4×4 output
#: fills a third of one): below this share of useful positions, im2col + BLAS is faster, once
#: there are at least ``GEMM_MIN_OUT`` output channels for the GEMM (benchmark case
#: conv3x3_256_4x4; the inception 5×5 branches on 4×4 maps, with fewer, stay direct).
MIN_TILE_USE = 0.5
GEMM_MIN_OUT = 64
#: Upper bound for the weight-gradient partial sums (one (C, taps, O) block per image chunk).
PARTIALS_BYTES = 4 << 20
#: At most this many image chunks: partial sums are added in a fixed order, so the split
#: depends only on the batch size and results do not depend on the thread count.
MAX_CHUNKS = 16


def _round_up(value, multiple):
    return -(-value // multiple) * multiple


def applies(kernel, stride, groups):
    """Whether the direct path handles this convolution."""
    return groups == 1 and tuple(stride) == (1, 1) and kernel[0] * kernel[1] >= MIN_TAPS


def _pack(weight):
    """(O, C, kh, kw) → (O'/OB, C·kh·kw, OB), O' = O rounded up to OUT_BLOCK with zero rows:
    one register tile's weights for one (channel, tap) step are contiguous."""
    block = _kernels.OUT_BLOCK
    out_channels = weight.shape[0]
    rows = _round_up(out_channels, block)
    flat = np.zeros((rows, weight[0].size), weight.dtype)
    flat[:out_channels] = weight.reshape(out_channels, -1)
    return np.ascontiguousarray(flat.reshape(rows // block, block, -1).transpose(0, 2, 1))


class DirectPlan:
    """Grid geometry of one stride-1 convolution: x (N, C, H, W) padded by
    ((top, bottom), (left, right)) to (Hp, Wp), kernel (kh, kw) with dilation (dh, dw),
    output (N, O, Ho, Wo) with Ho = Hp − dh·(kh − 1) (likewise Wo).

    Tap t = i·kw + j reads grid position p + shifts[t], shifts[t] = i·dh·Wp + j·dw, for the
    output at p = r·Wp + col."""

    def __init__(self, x_shape, weight_shape, padding, dilation):
        self.n, self.channels, height, width = x_shape
        self.out_channels, _, kh, kw = weight_shape
        (self.top, bottom), (self.left, right) = padding
        dh, dw = dilation
        self.height, self.width = height, width
        self.grid_width = width + self.left + right
        padded_height = height + self.top + bottom
        self.out_h = padded_height - dh * (kh - 1)
        self.out_w = self.grid_width - dw * (kw - 1)
        self.taps = kh * kw
        self.shifts = np.array([i * dh * self.grid_width + j * dw
                                for i in range(kh) for j in range(kw)], np.intp)
        reach = int(self.shifts[-1])
        self.positions = self.out_h * self.grid_width
        tile = _kernels.POSITION_BLOCK
        # input grid: the forward's tiles read up to a whole tile past the last output
        self.x_length = _round_up(self.positions, tile) + reach
        # output gradient grid: the input gradient at grid position q reads q − shifts[t];
        # ``front`` zeros keep those reads inside the plane
        self.first_input = self.top * self.grid_width + self.left
        self.front = max(0, reach - self.first_input)
        self.gy_length = self.front + max(
            self.first_input + _round_up(height * self.grid_width, tile), self.positions)

    @property
    def tile_use(self):
        """The share of the register tiles' positions that are outputs (the rest: the grid's
        padding columns and the last tile's overhang)."""
        tile = _kernels.POSITION_BLOCK
        return self.out_h * self.out_w / _round_up(self.positions, tile)

    def beats_gemm(self):
        """Whether this plan is expected to be faster than im2col + BLAS (measured rule:
        ``MIN_TILE_USE``)."""
        return self.tile_use >= MIN_TILE_USE or self.out_channels < GEMM_MIN_OUT

    def _x_grid(self, x):
        grid = workspace.get("grid", (self.n, self.channels, self.x_length), x.dtype)
        _kernels.embed(x, grid, self.grid_width, self.first_input, get_num_threads())
        return grid

    def forward(self, x, weight, bias):
        """y = conv(x, weight) + bias, (N, O, Ho, Wo); x C-contiguous."""
        y = np.empty((self.n, self.out_channels, self.out_h, self.out_w), x.dtype)
        no_bias = np.empty(0, x.dtype)
        _kernels.conv(self._x_grid(x), _pack(weight), self.shifts, y,
                      no_bias if bias is None else bias, self.grid_width, 0, get_num_threads())
        return y

    def grad_input(self, gy, weight):
        """∂L/∂x: the output gradient on the input's grid, correlated with the transposed
        weight at the negated shifts; only the positions inside the padding are stored."""
        gy_grid = workspace.get("gy_grid", (self.n, self.out_channels, self.gy_length),
                                gy.dtype)
        _kernels.embed(gy, gy_grid, self.grid_width, self.front, get_num_threads())
        gx = np.empty((self.n, self.channels, self.height, self.width), gy.dtype)
        _kernels.conv(gy_grid, _pack(weight.transpose(1, 0, 2, 3)), -self.shifts, gx,
                      np.empty(0, gy.dtype), self.grid_width, self.front + self.first_input,
                      get_num_threads())
        return gx

    def grad_weight(self, x, gy):
        """∂L/∂weight (O, C, kh, kw): Σ over images and positions of gy · shifted x, summed
        over a fixed split of the batch into chunks."""
        out_block, tap_block = _kernels.GRAD_OUT_BLOCK, _kernels.TAP_BLOCK
        padded_out = _round_up(self.out_channels, out_block)
        padded_taps = _round_up(self.taps, tap_block)
        shifts = np.zeros(padded_taps, np.intp)          # extra taps: computed, discarded
        shifts[:self.taps] = self.shifts
        gy_t = workspace.get("gy_t", (self.n, self.positions, padded_out), gy.dtype)
        _kernels.transpose_embed(gy, gy_t, self.grid_width, get_num_threads())
        block_bytes = self.channels * padded_taps * padded_out * gy.itemsize
        chunks = max(1, min(self.n, MAX_CHUNKS, PARTIALS_BYTES // block_bytes))
        partials = workspace.get("partials", (chunks, self.channels, padded_taps, padded_out),
                                 gy.dtype)
        _kernels.weight_grad(gy_t, self._x_grid(x), shifts, self.positions, partials,
                             get_num_threads())
        total = partials.sum(axis=0)[:, :self.taps, :self.out_channels]   # (C, T, O)
        return np.ascontiguousarray(total.transpose(2, 0, 1)).reshape(
            self.out_channels, self.channels, -1)
