# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The forward direct convolution on a channel-blocked grid (float32, AVX-512 only).

The grid layout. The input's padded planes in their stride phases, as on the planar grid of
``direct_conv.pyx`` (same ``grid_width``, phase length and tap shifts), but in blocks of 16
channels whose values sit side by side: cell q of block b holds channels 16·b … 16·b + 15 of
grid position q, 16 consecutive floats (a cache line). Tap t of output (r, col) reads cell
r·grid_width + col + shift[t] of every block.

The tile (``block_tile.h``) is 8 outputs of a row × 32 output channels, 16 accumulators:
each input channel of a block loads two weight vectors and broadcasts the 8 outputs' inputs,
so a tap reads 8 whole cells, one line each, and the next of the block's 16 channels reads
the same lines again. The planar grid's position tile reads each tap's 16-position vectors
across two lines and jumps by a plane per channel; on the stride-2 layers, whose planes its
tiles read only a few rows of at a time, its loads waited on the cache (docs/algorithms.md
has the measurements). Rows whose width is not a multiple of 8 end in a tile that overlaps
the one before it (it computes some outputs twice, with the same sums).

Two tiles make a unit of 16 outputs: their 16 × 32 sums are transposed in registers
(``transpose16.h``) and stored as rows of the output planes. Each unit belongs to one thread,
which computes all its sums, so the results do not depend on the thread count.
"""
from cython.parallel cimport prange
from libc.string cimport memset

from ._parallel cimport check_threads

cdef extern from "block_tile.h" nogil:
    enum:
        BUILT "MINIGRAD_BLOCK_TILE"
        CHANNELS "MINIGRAD_BLOCK_CHANNELS"
        POSITIONS "MINIGRAD_BLOCK_POSITIONS"
        OUT "MINIGRAD_BLOCK_OUT"
    void _block_sums "minigrad_block_sums" (const float* x, Py_ssize_t block_length,
                                            const float* weight, const Py_ssize_t* shifts,
                                            Py_ssize_t blocks, Py_ssize_t taps, float* result)

cdef extern from "transpose16.h" nogil:
    void _transpose16 "minigrad_transpose16" (const float** src, float** dst)

cdef enum:
    # the taps whose shifts ``conv`` keeps in a local array
    TAPS_HELD = 64

#: Whether this build has the tile (AVX-512); without it ``conv`` raises.
TILE = bool(BUILT)
#: Input channels per block (cell), output channels per tile, outputs per tile.
BLOCK_CHANNELS = CHANNELS
BLOCK_OUT = OUT
BLOCK_POSITIONS = POSITIONS
#: The most taps ``conv`` takes.
MAX_TAPS = TAPS_HELD


def embed(const float[:, :, :, ::1] src, float[:, :, ::1] grid, Py_ssize_t top,
          Py_ssize_t left, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t phase_length,
          Py_ssize_t grid_width, int num_threads):
    """src (N, C, H, W), C a multiple of 16, onto grid (N, C / 16, L·16): padded cell
    (R, C') = (r + top, col + left) goes to phase p = (R mod sh)·sw + C' mod sw, position
    q = p·phase_length + (R div sh)·grid_width + C' div sw, whose 16 floats are the block's
    channels. Every other value is 0. (With stride 1 the rows may share their padding gap:
    grid_width ≥ W + left.) 16 columns at a time by a register transpose."""
    cdef Py_ssize_t n_images = src.shape[0], channels = src.shape[1]
    cdef Py_ssize_t rows = src.shape[2], width = src.shape[3]
    cdef Py_ssize_t blocks = channels // CHANNELS, cells = grid.shape[2] // CHANNELS
    cdef Py_ssize_t item, n, b
    if (channels % CHANNELS or grid.shape[0] != n_images or grid.shape[1] != blocks
            or grid.shape[2] % CHANNELS or sh < 1 or sw < 1 or top < 0 or left < 0
            or grid_width < 1 or phase_length < 0
            or (rows and width and (sh * sw - 1) * phase_length
                + ((rows - 1 + top) // sh) * grid_width + (width - 1 + left) // sw >= cells)
            or (width and (width - 1 + left) // sw >= grid_width)):
        raise ValueError(f"block_conv.embed: grid ({grid.shape[0]}, {grid.shape[1]}, "
                         f"{grid.shape[2]}) ({sh}×{sw} phases {phase_length} cells apart, "
                         f"rows {grid_width} wide, padding {top}, {left}) cannot hold input "
                         f"({n_images}, {channels}, {rows}, {width}) in blocks of {CHANNELS}")
    cdef int nt = check_threads(num_threads)
    for item in prange(n_images * blocks, nogil=True, schedule="static", num_threads=nt):
        n = item // blocks
        b = item % blocks
        _embed_block(&src[n, b * CHANNELS, 0, 0], rows, width, &grid[n, b, 0],
                     grid.shape[2], top, left, sh, sw, phase_length, grid_width)


cdef void _embed_block(const float* src, Py_ssize_t rows, Py_ssize_t width, float* block,
                       Py_ssize_t length, Py_ssize_t top, Py_ssize_t left, Py_ssize_t sh,
                       Py_ssize_t sw, Py_ssize_t phase_length,
                       Py_ssize_t grid_width) noexcept nogil:
    """``embed`` for one block: the 16 planes at ``src`` onto ``block`` (``length`` floats)."""
    cdef const float* srcs[16]
    cdef float* dsts[16]
    cdef Py_ssize_t r, R, C, col0, i, j, q, plane = rows * width
    memset(block, 0, length * sizeof(float))
    for r in range(rows):
        R = r + top
        for col0 in range(0, width - width % 16, 16):
            for i in range(16):
                srcs[i] = src + i * plane + r * width + col0
                C = col0 + i + left
                dsts[i] = block + ((((R % sh) * sw + C % sw) * phase_length
                                    + (R // sh) * grid_width + C // sw) * CHANNELS)
            _transpose16(srcs, dsts)
        for j in range(width - width % 16, width):
            C = j + left
            q = ((R % sh) * sw + C % sw) * phase_length + (R // sh) * grid_width + C // sw
            for i in range(CHANNELS):
                block[q * CHANNELS + i] = src[i * plane + r * width + j]


def pack(const float[:, :, ::1] weight, float[:, ::1] packed):
    """weight (O, C, T), O a multiple of 32 and C of 16, as packed (O / 32, C·T·32):
    packed[o // 32, ((c // 16)·T + t)·512 + (c % 16)·32 + o % 32] = weight[o, c, t], the
    order in which the tile reads it."""
    cdef Py_ssize_t out_channels = weight.shape[0], channels = weight.shape[1]
    cdef Py_ssize_t taps = weight.shape[2], o, c, t
    if (out_channels % OUT or channels % CHANNELS or packed.shape[0] != out_channels // OUT
            or packed.shape[1] != channels * taps * OUT):
        raise ValueError(f"block_conv.pack: weight ({out_channels}, {channels}, {taps}) does "
                         f"not pack into ({packed.shape[0]}, {packed.shape[1]})")
    with nogil:
        for o in range(out_channels):
            for c in range(channels):
                for t in range(taps):
                    packed[o // OUT, ((c // CHANNELS) * taps + t) * CHANNELS * OUT
                           + (c % CHANNELS) * OUT + o % OUT] = weight[o, c, t]


cdef void _unit(const float* grid, Py_ssize_t block_length, Py_ssize_t blocks,
               const float* packed, const Py_ssize_t* cell_shifts, Py_ssize_t taps,
               Py_ssize_t unit, Py_ssize_t halves, Py_ssize_t halves_per_row,
               Py_ssize_t grid_width, float* out, Py_ssize_t out_w, Py_ssize_t plane_stride,
               const float* bias) noexcept nogil:
    """Unit ``unit`` of one image and block of 32 output channels: tiles 2·unit and
    2·unit + 1 (the last tile again if there is none), row by row (a row's last tile ends at
    its last output), their sums transposed and stored as rows of the 32 planes at ``out``
    (plus ``bias`` unless NULL)."""
    cdef float sums[2 * POSITIONS * OUT]
    cdef float rows_of[OUT * 2 * POSITIONS]
    cdef const float* srcs[16]
    cdef float* dsts[16]
    cdef Py_ssize_t row[2]
    cdef Py_ssize_t col[2]
    cdef Py_ssize_t k, p, o, half
    cdef float* dst
    cdef float offset
    for k in range(2):
        half = min(2 * unit + k, halves - 1)
        row[k] = half // halves_per_row
        col[k] = min((half % halves_per_row) * POSITIONS, out_w - POSITIONS)
        _block_sums(grid + (row[k] * grid_width + col[k]) * CHANNELS, block_length, packed,
                    cell_shifts, blocks, taps, &sums[k * POSITIONS * OUT])
    # sums[p][o] (16 positions) → rows_of[o][p], 16 output channels at a time
    for k in range(2):
        for p in range(16):
            srcs[p] = &sums[p * OUT + k * 16]
            dsts[p] = &rows_of[(k * 16 + p) * 2 * POSITIONS]
        _transpose16(srcs, dsts)
    for o in range(OUT):
        offset = bias[o] if bias != NULL else 0
        for k in range(2 if 2 * unit + 1 < halves else 1):
            dst = out + o * plane_stride + row[k] * out_w + col[k]
            for p in range(POSITIONS):
                dst[p] = rows_of[o * 2 * POSITIONS + k * POSITIONS + p] + offset


def conv(const float[:, :, ::1] grid, const float[:, ::1] packed,
         const Py_ssize_t[::1] shifts, float[:, :, :, ::1] out, const float[::1] bias,
         Py_ssize_t grid_width, int num_threads):
    """out[n, o, r, col] = bias[o] + Σ_c Σ_t W[o, c, t] · (channel c at grid position
    r·grid_width + col + shifts[t]) for the grid of ``embed`` (N, C / 16, L·16) and W packed
    by ``pack``. ``bias`` may be empty. Outputs at least 8 wide (``BLOCK_POSITIONS``) and at
    most ``grid_width``."""
    cdef Py_ssize_t n_images = out.shape[0], out_channels = out.shape[1]
    cdef Py_ssize_t out_h = out.shape[2], out_w = out.shape[3], taps = shifts.shape[0]
    cdef Py_ssize_t blocks = grid.shape[1], cells = grid.shape[2] // CHANNELS
    cdef Py_ssize_t out_blocks = out_channels // OUT, t, low = 0, high = 0
    cdef bint has_bias = bias.shape[0] > 0
    if not BUILT:
        raise RuntimeError("block_conv.conv: this build has no AVX-512 tile")
    if (out_channels % OUT or grid.shape[0] != n_images or grid.shape[2] % CHANNELS
            or taps == 0 or packed.shape[0] != out_blocks
            or packed.shape[1] != blocks * taps * CHANNELS * OUT
            or (has_bias and bias.shape[0] != out_channels)
            or out_w < POSITIONS or out_w > grid_width or out_h < 1):
        raise ValueError(f"block_conv.conv: inconsistent shapes grid ({grid.shape[0]}, "
                         f"{blocks}, {grid.shape[2]}), packed ({packed.shape[0]}, "
                         f"{packed.shape[1]}), {taps} shifts, out ({n_images}, {out_channels}, "
                         f"{out_h}, {out_w}), bias ({bias.shape[0]},), rows {grid_width} wide")
    for t in range(taps):
        low = min(low, shifts[t])
        high = max(high, shifts[t])
    if low < 0 or (out_h - 1) * grid_width + out_w - 1 + high >= cells:
        raise ValueError(f"block_conv.conv: shifts from {low} to {high} read outside the "
                         f"grid's {cells} cells for a {out_h}×{out_w} output on rows "
                         f"{grid_width} wide")
    cdef int nt = check_threads(num_threads)
    cdef Py_ssize_t halves_per_row = (out_w + POSITIONS - 1) // POSITIONS
    cdef Py_ssize_t halves = out_h * halves_per_row, units = (halves + 1) // 2
    cdef Py_ssize_t item, n, ob, unit
    cdef Py_ssize_t block_length = grid.shape[2]
    cdef Py_ssize_t cell_shifts[TAPS_HELD]
    if taps > TAPS_HELD:
        raise ValueError(f"block_conv.conv: at most {TAPS_HELD} taps, got {taps}")
    for t in range(taps):
        cell_shifts[t] = shifts[t] * CHANNELS
    for item in prange(n_images * out_blocks * units, nogil=True, schedule="static",
                       num_threads=nt):
        n = item // (out_blocks * units)
        ob = (item // units) % out_blocks
        unit = item % units
        _unit(&grid[n, 0, 0], block_length, blocks, &packed[ob, 0], cell_shifts, taps, unit,
              halves, halves_per_row, grid_width, &out[n, ob * OUT, 0, 0], out_w,
              out_h * out_w, &bias[ob * OUT] if has_bias else NULL)
