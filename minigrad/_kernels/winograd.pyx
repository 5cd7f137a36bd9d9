# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Winograd F(m×m, 3×3), m = 2 or 4: the tile transforms of a 3×3, stride-1 convolution and
their adjoints; a dilated one as the stride-1 convolutions of its interleaved sub-grids.

An output tile of m×m positions needs an α×α patch d of the (padded) input, α = m + 2. For
m = 2, with

    Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]
    G  = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]
    Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]

(m = 4: the 6×6, 6×3 and 4×6 matrices in ``winograd_1d.h``), the tile is
Y = Aᵀ [ Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B) ] A: α² products per tile and channel pair instead of
9·m². Summed over channels, each of the α² points ξ is one matrix product,
M[ξ] (O, T) = U[ξ] (O, C) · V[ξ] (C, T), over the T tiles of a batch. This module moves data
between NCHW planes and those ξ-major matrices, and transforms the filters (U = G g Gᵀ, and
its adjoint for the weight gradient); the products are ``team_matmul``'s
(``minigrad/ops/conv_winograd.py``), except in ``forward_by_image`` and ``backward_by_image``,
which take each image through its transforms and the products of ``gemm_tile.h`` on one
thread.

Dilation (dh, dw), with dh and dw dividing the planes' sides and the padding: output
(p + dh·r, q + dw·j) reads only input rows ≡ p (mod dh) and columns ≡ q (mod dw), so the
outputs and inputs of each sub-grid (p, q), (H / dh) × (W / dw) cells padded by (top / dh,
left / dw), make a stride-1 convolution of their own with the same filters: a "lane plane"
with its own tile grid, all of one shape. Without dilation a lane plane is a plane.

Layout: ``V[ξ, c, t]`` with ξ = α·k + l (patch row k, column l). The ξ planes may lie further
apart than C·T entries: callers pad them so that the α² entries of a tile do not fall on the
same cache sets. Tile (ty, tx) starts at input cell (m·ty − top, m·tx − left) and writes
outputs (m·ty, m·tx) … (m·ty + m − 1, m·tx + m − 1) of its lane plane. Cells outside the
input read as zero; outputs past (Ho, Wo) are dropped. The tile index t depends on the path:

- by rows (undilated, rows of at least ``LANES_BELOW`` tiles): t = b·Th·Tw + ty·Tw + tx for
  image b. A plane is worked on a row of tiles at a time, with the input's columns split by
  their remainder mod m in the thread's scratch: patch column l of tile tx is then entry
  tx + l div m of split row l mod m, and every loop runs over consecutive tiles with
  contiguous loads and stores, which the compiler vectorises. The 2×2 transforms are written
  out here; the 4×4 ones are the 1-D transforms of ``winograd_1d.h``, applied to the rows,
  then the columns.
- in lanes (shorter rows, and every dilated convolution): the chunk's lane planes λ = b·dh·dw
  + p·dw + q go in groups of GROUP; t = g·GROUP·Th·Tw + (ty·Tw + tx)·n + λ − g·GROUP for
  group g of n lane planes (n = GROUP but in the last). A group's planes of one channel are
  interleaved in the thread's scratch, cell after cell, and every 1-D transform
  (``winograd_1d.h``, both tile sizes) runs along the lanes: a vector wide however few tiles
  a row has (``_lane_group``).

Every loop is split over (image or group, channel) pairs with ``prange``; a pair belongs to one
thread and its tiles are visited in a fixed order, so results do not depend on the thread
count.
"""
from cython.parallel cimport prange, threadid
from cython cimport floating
from libc.string cimport memcpy, memset

from ._gemm_tile cimport GEMM_NR, GEMM_TILE, GEMM_WORK, gemm as _gemm, gemm_packed as _gemm_packed
from ._parallel cimport team_size

# Tile entries below which a loop runs on one thread (see im2col.pyx).
cdef Py_ssize_t PARALLEL_MIN = 1 << 15

cdef enum:
    GROUP = 16      # lane planes transformed together (a float32 vector)

cdef extern from "transpose16.h" nogil:
    enum: TRANSPOSE_PLANES "MINIGRAD_TRANSPOSE_PLANES"
    void planes_to_cells "minigrad_planes_to_cells" (const float* plane, Py_ssize_t plane_step,
                                                     int count, Py_ssize_t rows,
                                                     Py_ssize_t cols, float* cells,
                                                     Py_ssize_t row_step)
    void cells_to_planes "minigrad_cells_to_planes" (const float* cells, Py_ssize_t row_step,
                                                     float* plane, Py_ssize_t plane_step,
                                                     int count, Py_ssize_t rows,
                                                     Py_ssize_t cols, float shift, int add)

cdef extern from "winograd_1d.h" nogil:
    void w2_bt_f "minigrad_w2_bt_f" (const float*, Py_ssize_t, float*, Py_ssize_t, Py_ssize_t)
    void w2_bt_d "minigrad_w2_bt_d" (const double*, Py_ssize_t, double*, Py_ssize_t, Py_ssize_t)
    void w2_b_f "minigrad_w2_b_f" (const float*, Py_ssize_t, float*, Py_ssize_t, Py_ssize_t,
                                   int)
    void w2_b_d "minigrad_w2_b_d" (const double*, Py_ssize_t, double*, Py_ssize_t, Py_ssize_t,
                                   int)
    void w2_at_f "minigrad_w2_at_f" (const float*, Py_ssize_t, float*, Py_ssize_t, Py_ssize_t)
    void w2_at_d "minigrad_w2_at_d" (const double*, Py_ssize_t, double*, Py_ssize_t, Py_ssize_t)
    void w2_a_f "minigrad_w2_a_f" (const float*, Py_ssize_t, float*, Py_ssize_t, Py_ssize_t)
    void w2_a_d "minigrad_w2_a_d" (const double*, Py_ssize_t, double*, Py_ssize_t, Py_ssize_t)
    void w4_bt_f "minigrad_w4_bt_f" (const float*, const float*, const float*, const float*,
                                     const float*, const float*, float*, float*, float*,
                                     float*, float*, float*, Py_ssize_t)
    void w4_bt_d "minigrad_w4_bt_d" (const double*, const double*, const double*, const double*,
                                     const double*, const double*, double*, double*, double*,
                                     double*, double*, double*, Py_ssize_t)
    void w4_b_f "minigrad_w4_b_f" (const float*, const float*, const float*, const float*,
                                   const float*, const float*, float*, float*, float*, float*,
                                   float*, float*, Py_ssize_t, int)
    void w4_b_d "minigrad_w4_b_d" (const double*, const double*, const double*, const double*,
                                   const double*, const double*, double*, double*, double*,
                                   double*, double*, double*, Py_ssize_t, int)
    void w4_at_f "minigrad_w4_at_f" (const float*, const float*, const float*, const float*,
                                     const float*, const float*, float*, float*, float*,
                                     float*, Py_ssize_t)
    void w4_at_d "minigrad_w4_at_d" (const double*, const double*, const double*, const double*,
                                     const double*, const double*, double*, double*, double*,
                                     double*, Py_ssize_t)
    void w4_a_f "minigrad_w4_a_f" (const float*, const float*, const float*, const float*,
                                   float*, float*, float*, float*, float*, float*, Py_ssize_t)
    void w4_a_d "minigrad_w4_a_d" (const double*, const double*, const double*, const double*,
                                   double*, double*, double*, double*, double*, double*,
                                   Py_ssize_t)
    void w2_split_f "minigrad_w2_split_f" (const float*, float*, float*, Py_ssize_t)
    void w2_split_d "minigrad_w2_split_d" (const double*, double*, double*, Py_ssize_t)
    void w2_join_f "minigrad_w2_join_f" (const float*, const float*, float*, Py_ssize_t, float)
    void w2_join_d "minigrad_w2_join_d" (const double*, const double*, double*, Py_ssize_t,
                                         double)
    void w4_split_f "minigrad_w4_split_f" (const float*, float*, float*, float*, float*,
                                           Py_ssize_t)
    void w4_split_d "minigrad_w4_split_d" (const double*, double*, double*, double*, double*,
                                           Py_ssize_t)
    void w4_join_f "minigrad_w4_join_f" (const float*, const float*, const float*, const float*,
                                         float*, Py_ssize_t, float)
    void w4_join_d "minigrad_w4_join_d" (const double*, const double*, const double*,
                                         const double*, double*, Py_ssize_t, double)

#: The tile sizes m of F(m×m, 3×3) the kernels implement.
TILE_SIZES = (2, 4)
#: Lane planes per group in lanes (``_lane_group``).
LANE_GROUP = GROUP


cdef inline void _bt4(const floating* i, Py_ssize_t i_step, const floating* i4,
                      const floating* i5, floating* o, Py_ssize_t o_step,
                      Py_ssize_t n) noexcept nogil:
    """o[k·o_step + j] = Σ_r Bᵀ[k, r] · row_r[j] for F(4, 3), rows i + r·i_step (r < 4), i4,
    i5."""
    if floating is float:
        w4_bt_f(i, i + i_step, i + 2 * i_step, i + 3 * i_step, i4, i5, o, o + o_step,
                o + 2 * o_step, o + 3 * o_step, o + 4 * o_step, o + 5 * o_step, n)
    else:
        w4_bt_d(i, i + i_step, i + 2 * i_step, i + 3 * i_step, i4, i5, o, o + o_step,
                o + 2 * o_step, o + 3 * o_step, o + 4 * o_step, o + 5 * o_step, n)


cdef inline void _b4(const floating* i, Py_ssize_t i_step, floating* o, Py_ssize_t o_step,
                     Py_ssize_t n, int accumulate) noexcept nogil:
    """o[r·o_step + j] (+)= Σ_k Bᵀ[k, r] · i[k·i_step + j], the adjoint of ``_bt4``."""
    if floating is float:
        w4_b_f(i, i + i_step, i + 2 * i_step, i + 3 * i_step, i + 4 * i_step, i + 5 * i_step,
               o, o + o_step, o + 2 * o_step, o + 3 * o_step, o + 4 * o_step, o + 5 * o_step,
               n, accumulate)
    else:
        w4_b_d(i, i + i_step, i + 2 * i_step, i + 3 * i_step, i + 4 * i_step, i + 5 * i_step,
               o, o + o_step, o + 2 * o_step, o + 3 * o_step, o + 4 * o_step, o + 5 * o_step,
               n, accumulate)


cdef inline void _at4(const floating* i, Py_ssize_t i_step, floating* o, Py_ssize_t o_step,
                      Py_ssize_t n) noexcept nogil:
    """o[k·o_step + j] = Σ_l Aᵀ[k, l] · i[l·i_step + j] for F(4, 3) (6 rows in, 4 out)."""
    if floating is float:
        w4_at_f(i, i + i_step, i + 2 * i_step, i + 3 * i_step, i + 4 * i_step, i + 5 * i_step,
                o, o + o_step, o + 2 * o_step, o + 3 * o_step, n)
    else:
        w4_at_d(i, i + i_step, i + 2 * i_step, i + 3 * i_step, i + 4 * i_step, i + 5 * i_step,
                o, o + o_step, o + 2 * o_step, o + 3 * o_step, n)


cdef inline void _a4(const floating* i, Py_ssize_t i_step, floating* o, Py_ssize_t o_step,
                     Py_ssize_t n) noexcept nogil:
    """o[l·o_step + j] = Σ_k Aᵀ[k, l] · i[k·i_step + j], the adjoint of ``_at4`` (4 in, 6 out)."""
    if floating is float:
        w4_a_f(i, i + i_step, i + 2 * i_step, i + 3 * i_step, o, o + o_step, o + 2 * o_step,
               o + 3 * o_step, o + 4 * o_step, o + 5 * o_step, n)
    else:
        w4_a_d(i, i + i_step, i + 2 * i_step, i + 3 * i_step, o, o + o_step, o + 2 * o_step,
               o + 3 * o_step, o + 4 * o_step, o + 5 * o_step, n)


cdef inline void _bt(Py_ssize_t m, const floating* i, Py_ssize_t i_step, floating* o,
                     Py_ssize_t o_step, Py_ssize_t n) noexcept nogil:
    """o[k·o_step + j] = Σ_r Bᵀ[k, r] · i[r·i_step + j] for F(m, 3), m = 2 or 4."""
    if m == 4:
        _bt4(i, i_step, i + 4 * i_step, i + 5 * i_step, o, o_step, n)
    elif floating is float:
        w2_bt_f(i, i_step, o, o_step, n)
    else:
        w2_bt_d(i, i_step, o, o_step, n)


cdef inline void _b(Py_ssize_t m, const floating* i, Py_ssize_t i_step, floating* o,
                    Py_ssize_t o_step, Py_ssize_t n, int accumulate) noexcept nogil:
    """The adjoint of ``_bt``: o[r·o_step + j] (+)= Σ_k Bᵀ[k, r] · i[k·i_step + j]."""
    if m == 4:
        _b4(i, i_step, o, o_step, n, accumulate)
    elif floating is float:
        w2_b_f(i, i_step, o, o_step, n, accumulate)
    else:
        w2_b_d(i, i_step, o, o_step, n, accumulate)


cdef inline void _at(Py_ssize_t m, const floating* i, Py_ssize_t i_step, floating* o,
                     Py_ssize_t o_step, Py_ssize_t n) noexcept nogil:
    """o[k·o_step + j] = Σ_l Aᵀ[k, l] · i[l·i_step + j] (m + 2 rows in, m out)."""
    if m == 4:
        _at4(i, i_step, o, o_step, n)
    elif floating is float:
        w2_at_f(i, i_step, o, o_step, n)
    else:
        w2_at_d(i, i_step, o, o_step, n)


cdef inline void _a(Py_ssize_t m, const floating* i, Py_ssize_t i_step, floating* o,
                    Py_ssize_t o_step, Py_ssize_t n) noexcept nogil:
    """The adjoint of ``_at``: o[l·o_step + j] = Σ_k Aᵀ[k, l] · i[k·i_step + j]."""
    if m == 4:
        _a4(i, i_step, o, o_step, n)
    elif floating is float:
        w2_a_f(i, i_step, o, o_step, n)
    else:
        w2_a_d(i, i_step, o, o_step, n)


cdef inline void _split(Py_ssize_t m, const floating* row, floating* p, Py_ssize_t p_step,
                        Py_ssize_t n) noexcept nogil:
    """p[k·p_step + j] = row[m·j + k] for k < m (2 or 4), j < n."""
    if m == 2:
        if floating is float:
            w2_split_f(row, p, p + p_step, n)
        else:
            w2_split_d(row, p, p + p_step, n)
    elif floating is float:
        w4_split_f(row, p, p + p_step, p + 2 * p_step, p + 3 * p_step, n)
    else:
        w4_split_d(row, p, p + p_step, p + 2 * p_step, p + 3 * p_step, n)


cdef inline void _join(Py_ssize_t m, const floating* p, Py_ssize_t p_step, floating* row,
                       Py_ssize_t n, floating shift) noexcept nogil:
    """row[m·j + k] = p[k·p_step + j] + shift for k < m (2 or 4), j < n."""
    if m == 2:
        if floating is float:
            w2_join_f(p, p + p_step, row, n, shift)
        else:
            w2_join_d(p, p + p_step, row, n, shift)
    elif floating is float:
        w4_join_f(p, p + p_step, p + 2 * p_step, p + 3 * p_step, row, n, shift)
    else:
        w4_join_d(p, p + p_step, p + 2 * p_step, p + 3 * p_step, row, n, shift)


cdef inline void _split_row(Py_ssize_t m, const floating* row, Py_ssize_t width, floating* p,
                            Py_ssize_t p_step, Py_ssize_t n, floating* padded) noexcept nogil:
    """``_split`` of an output row of ``width`` ≤ m·n cells, the missing ones 0 (read from
    ``padded``, m·n cells whose tail past ``width`` is 0, when the row is short)."""
    if width != m * n:
        memcpy(padded, row, width * sizeof(floating))
        row = padded
    _split(m, row, p, p_step, n)


cdef inline void _join_row(Py_ssize_t m, const floating* p, Py_ssize_t p_step, Py_ssize_t n,
                           floating shift, floating* row, Py_ssize_t width,
                           floating* joined) noexcept nogil:
    """``_join`` into an output row of ``width`` ≤ m·n cells (through ``joined``, m·n cells,
    when the row is short)."""
    if width == m * n:
        _join(m, p, p_step, row, n, shift)
    else:
        _join(m, p, p_step, joined, n, shift)
        memcpy(row, joined, width * sizeof(floating))


cdef inline void _split_plane(const floating* src, Py_ssize_t height, Py_ssize_t width,
                              Py_ssize_t top, Py_ssize_t left, Py_ssize_t m, Py_ssize_t rows,
                              Py_ssize_t half, floating* split,
                              floating* padded) noexcept nogil:
    """split[p, R, j] = padded[R, m·j + p] for p < m, R < rows, j < half, where padded[R, C] =
    src[R − top, C − left] inside the plane and 0 outside; ``padded`` holds one such row
    (m·half cells)."""
    cdef Py_ssize_t R, r
    memset(split, 0, m * rows * half * sizeof(floating))
    memset(padded, 0, m * half * sizeof(floating))
    for R in range(rows):
        r = R - top
        if r < 0 or r >= height:
            continue
        memcpy(padded + left, src + r * width, width * sizeof(floating))
        _split(m, padded, split + R * half, rows * half, half)


cdef inline void _join_plane(const floating* split, Py_ssize_t m, Py_ssize_t rows,
                             Py_ssize_t half, Py_ssize_t top, Py_ssize_t left,
                             Py_ssize_t height, Py_ssize_t width, floating* plane,
                             floating* padded, bint add) noexcept nogil:
    """The adjoint of ``_split_plane``'s layout: plane[r, c] (+)= split[(c + left) mod m,
    r + top, (c + left) div m] for the plane's cells (``padded``: one row of m·half cells)."""
    cdef Py_ssize_t R, c
    cdef floating* row
    for R in range(top, top + height):
        _join(m, split + R * half, rows * half, padded, half, 0)
        row = plane + (R - top) * width
        if add:
            for c in range(width):
                row[c] += padded[left + c]
        else:
            memcpy(row, padded + left, width * sizeof(floating))


cdef enum:
    # rows of fewer tiles leave the row-wise loops' vectors mostly empty: those go in lanes
    LANES_BELOW = 8


cdef inline bint _in_lanes(Py_ssize_t tiles_w, Py_ssize_t dh, Py_ssize_t dw) noexcept nogil:
    """Whether a pass works on groups of lane planes (``_lane_group``) rather than on planes
    row of tiles by row of tiles: where a row holds too few tiles to fill a vector, and for
    every dilated convolution."""
    return tiles_w < LANES_BELOW or dh * dw > 1


def in_lanes(Py_ssize_t tiles_w, Py_ssize_t dh=1, Py_ssize_t dw=1):
    """Whether the passes on a grid ``tiles_w`` tiles wide, dilation (dh, dw), run in lanes
    (``_lane_group``)."""
    return _in_lanes(tiles_w, dh, dw)


def scratch_length(Py_ssize_t m, Py_ssize_t tiles_h, Py_ssize_t tiles_w, Py_ssize_t dh=1,
                   Py_ssize_t dw=1, Py_ssize_t reach=0):
    """Entries of scratch each thread needs for F(m×m, 3×3) on a tile grid of tiles_h ×
    tiles_w (per sub-grid of the dilation (dh, dw)): in lanes, a group's interleaved padded
    cells, ``reach`` more along each axis for the blocks of a larger kernel (its largest
    block offset, in cells), and a partial transform; by rows, one padded plane split by
    column remainder mod m and the partial transforms of a row of tiles."""
    cdef Py_ssize_t half = tiles_w + 1
    if _in_lanes(tiles_w, dh, dw):
        return ((m * tiles_h + 2 + reach) * (m * tiles_w + 2 + reach) + (m + 2) ** 2) * GROUP
    if m == 2:
        return 2 * (2 * tiles_h + 2) * half + 18 * half
    return 4 * (4 * tiles_h + 2) * half + 28 * half + 6 * tiles_w


def _checked_team(str op, Py_ssize_t m, planes_shape, tiles_shape, tiles_strides,
                  Py_ssize_t itemsize, scratch_shape, Py_ssize_t tiles_h, Py_ssize_t tiles_w,
                  bint outputs, int num_threads, Py_ssize_t top=0, Py_ssize_t left=0,
                  Py_ssize_t dh=1, Py_ssize_t dw=1):
    """The team size a kernel runs with, after the checks that guard its unchecked loops: a
    tile size the kernels implement; with dilation (dh, dw), planes and padding in whole
    sub-grids; the tile matrix must match the planes and the tile grid (one per sub-grid);
    the scratch must hold ``scratch_length`` for each thread of the team; on output planes
    (``outputs``) the grid must be exactly the one that covers a sub-grid, and on input planes
    the padded sub-grid must fit in the grid's reach."""
    cdef int nt = team_size(tiles_shape[0] * tiles_shape[1] * tiles_shape[2], PARALLEL_MIN,
                            num_threads)
    if m not in TILE_SIZES:
        raise ValueError(f"winograd.{op}: the tile size must be one of {TILE_SIZES}, got {m}")
    if min(tiles_h, tiles_w, top, left) < 0:
        raise ValueError(f"winograd.{op}: the tile grid and the padding must be non-negative, "
                         f"got {tiles_h}×{tiles_w} tiles, padding ({top}, {left})")
    height, width = planes_shape[2], planes_shape[3]
    if min(dh, dw) < 1 or height % dh or width % dw or top % dh or left % dw:
        raise ValueError(f"winograd.{op}: the dilation must be positive and divide the planes "
                         f"and the padding, got dilation ({dh}, {dw}) for planes of "
                         f"{height}×{width}, padding ({top}, {left})")
    height, width, top, left = height // dh, width // dw, top // dh, left // dw
    expected = ((m + 2) ** 2, planes_shape[1], planes_shape[0] * dh * dw * tiles_h * tiles_w)
    if tuple(tiles_shape[:3]) != expected:
        raise ValueError(f"winograd.{op}: tiles must have shape {expected} for planes of shape "
                         f"{tuple(planes_shape[:4])} and a {tiles_h}×{tiles_w} grid of {m}×{m} "
                         f"tiles per sub-grid of dilation ({dh}, {dw}), got "
                         f"{tuple(tiles_shape[:3])}")
    if ((tiles_shape[2] > 1 and tiles_strides[2] != itemsize) or tiles_strides[0] % itemsize
            or tiles_strides[0] <= 0):
        raise ValueError(f"winograd.{op}: tiles must be contiguous along its last axis, with "
                         f"positive strides, got strides {tuple(tiles_strides[:3])}")
    needed = (nt, scratch_length(m, tiles_h, tiles_w, dh, dw))
    if scratch_shape[0] < needed[0] or scratch_shape[1] < needed[1]:
        raise ValueError(f"winograd.{op}: scratch must be at least {needed} for {nt} threads, "
                         f"got {tuple(scratch_shape[:2])}")
    cover = (-(-height // m), -(-width // m))
    if outputs and (tiles_h, tiles_w) != cover:
        raise ValueError(f"winograd.{op}: outputs of {height}×{width} need a "
                         f"{cover[0]}×{cover[1]} tile grid, got {tiles_h}×{tiles_w}")
    if not outputs and (height + top > m * tiles_h + 2 or width + left > m * tiles_w + 2):
        raise ValueError(f"winograd.{op}: a {tiles_h}×{tiles_w} tile grid reaches "
                         f"{m * tiles_h + 2}×{m * tiles_w + 2} padded cells, less than "
                         f"{height}×{width} with padding ({top}, {left})")
    return nt


# -- F(2×2, 3×3): the transforms written out ------------------------------------------------------

cdef void _input_plane2(const floating* src, Py_ssize_t height, Py_ssize_t width,
                       Py_ssize_t top, Py_ssize_t left, Py_ssize_t tiles_h, Py_ssize_t tiles_w,
                       floating* dst, Py_ssize_t xi_stride, floating* scratch) noexcept nogil:
    """V[:, t] = Bᵀ d_t B for the tiles of one plane; dst points at V[0, c, first tile]."""
    cdef Py_ssize_t half = tiles_w + 1, rows = 2 * tiles_h + 2
    cdef floating* even = scratch
    cdef floating* odd = scratch + rows * half
    cdef floating* row_e = scratch + 2 * rows * half      # Bᵀ d, 4 rows, even columns
    cdef floating* row_o = row_e + 4 * half
    cdef const floating* e
    cdef const floating* o
    cdef floating* out
    cdef Py_ssize_t ty, tx, j, k
    _split_plane(src, height, width, top, left, 2, rows, half, even, row_o + 4 * half)
    for ty in range(tiles_h):
        e = even + 2 * ty * half
        o = odd + 2 * ty * half
        for j in range(half):
            row_e[j] = e[j] - e[2 * half + j]
            row_e[half + j] = e[half + j] + e[2 * half + j]
            row_e[2 * half + j] = e[2 * half + j] - e[half + j]
            row_e[3 * half + j] = e[half + j] - e[3 * half + j]
            row_o[j] = o[j] - o[2 * half + j]
            row_o[half + j] = o[half + j] + o[2 * half + j]
            row_o[2 * half + j] = o[2 * half + j] - o[half + j]
            row_o[3 * half + j] = o[half + j] - o[3 * half + j]
        for k in range(4):
            e = row_e + k * half
            o = row_o + k * half
            out = dst + 4 * k * xi_stride + ty * tiles_w
            for tx in range(tiles_w):
                out[tx] = e[tx] - e[tx + 1]
                out[xi_stride + tx] = o[tx] + e[tx + 1]
                out[2 * xi_stride + tx] = e[tx + 1] - o[tx]
                out[3 * xi_stride + tx] = o[tx] - o[tx + 1]


cdef void _input_grad_plane2(const floating* src, Py_ssize_t xi_stride, floating* gx,
                            Py_ssize_t height, Py_ssize_t width, Py_ssize_t top, Py_ssize_t left,
                            Py_ssize_t tiles_h, Py_ssize_t tiles_w, floating* scratch,
                            bint add) noexcept nogil:
    """gx (one plane) = Σ_t B e_t Bᵀ added into tile t's patch, the adjoint of
    ``_input_plane``; src points at E[0, c, first tile]."""
    cdef Py_ssize_t half = tiles_w + 1, rows = 2 * tiles_h + 2
    cdef floating* even = scratch
    cdef floating* odd = scratch + rows * half
    cdef floating* dd = scratch + 2 * rows * half        # 16 rows of tiles_w
    cdef const floating* a
    cdef floating* e
    cdef floating* o
    cdef floating a0, a1, a2, a3
    cdef Py_ssize_t ty, tx, k, l, n = tiles_w
    memset(even, 0, 2 * rows * half * sizeof(floating))
    for ty in range(tiles_h):
        # the adjoint of combining columns, per patch row k: dt[k, l]
        for k in range(4):
            a = src + 4 * k * xi_stride + ty * tiles_w
            for tx in range(tiles_w):
                a0 = a[tx]
                a1 = a[xi_stride + tx]
                a2 = a[2 * xi_stride + tx]
                a3 = a[3 * xi_stride + tx]
                dd[(4 * k) * n + tx] = a0
                dd[(4 * k + 1) * n + tx] = a1 - a2 + a3
                dd[(4 * k + 2) * n + tx] = a2 + a1 - a0
                dd[(4 * k + 3) * n + tx] = -a3
        # then of combining rows, added into padded rows 2·ty + k
        for l in range(4):
            for tx in range(tiles_w):
                a0 = dd[l * n + tx]
                a1 = dd[(4 + l) * n + tx]
                a2 = dd[(8 + l) * n + tx]
                a3 = dd[(12 + l) * n + tx]
                dd[l * n + tx] = a0
                dd[(4 + l) * n + tx] = a1 - a2 + a3
                dd[(8 + l) * n + tx] = a2 + a1 - a0
                dd[(12 + l) * n + tx] = -a3
        for k in range(4):
            e = even + (2 * ty + k) * half
            o = odd + (2 * ty + k) * half
            for tx in range(tiles_w):
                e[tx] += dd[4 * k * n + tx]
                o[tx] += dd[(4 * k + 1) * n + tx]
            for tx in range(tiles_w):
                e[tx + 1] += dd[(4 * k + 2) * n + tx]
                o[tx + 1] += dd[(4 * k + 3) * n + tx]
    _join_plane(even, 2, rows, half, top, left, height, width, gx, dd + 16 * half, add)


cdef void _output_plane2(const floating* src, Py_ssize_t xi_stride, floating* y,
                        Py_ssize_t out_h, Py_ssize_t out_w, Py_ssize_t tiles_h,
                        Py_ssize_t tiles_w, floating bias, floating* scratch) noexcept nogil:
    """y (one plane) = bias + Aᵀ m_t A for each tile; src points at M[0, o, first tile]."""
    cdef Py_ssize_t n = tiles_w, ty, tx, l, r
    cdef const floating* m
    cdef floating s0[4]
    cdef floating s1[4]
    for ty in range(tiles_h):
        m = src + ty * tiles_w
        for tx in range(tiles_w):
            for l in range(4):
                s0[l] = m[l * xi_stride + tx] + m[(4 + l) * xi_stride + tx] \
                    + m[(8 + l) * xi_stride + tx]
                s1[l] = m[(4 + l) * xi_stride + tx] - m[(8 + l) * xi_stride + tx] \
                    - m[(12 + l) * xi_stride + tx]
            scratch[tx] = s0[0] + s0[1] + s0[2] + bias
            scratch[n + tx] = s0[1] - s0[2] - s0[3] + bias
            scratch[2 * n + tx] = s1[0] + s1[1] + s1[2] + bias
            scratch[3 * n + tx] = s1[1] - s1[2] - s1[3] + bias
        for r in range(2 * ty, min(2 * ty + 2, out_h)):
            _join_row(2, scratch + 2 * (r - 2 * ty) * n, n, n, 0, y + r * out_w, out_w,
                      scratch + 4 * n)


cdef void _output_grad_plane2(const floating* gy, Py_ssize_t out_h, Py_ssize_t out_w,
                             Py_ssize_t tiles_h, Py_ssize_t tiles_w, floating* dst,
                             Py_ssize_t xi_stride, floating* scratch) noexcept nogil:
    """dM[:, t] = A g_t Aᵀ for the 2×2 output-gradient tiles g_t of one plane (0 past the
    output), the adjoint of ``_output_plane``; dst points at dM[0, o, first tile]."""
    cdef Py_ssize_t n = tiles_w, ty, tx, l, r
    cdef floating* out
    cdef floating u[4]
    cdef floating w[4]
    memset(scratch + 4 * n, 0, 2 * n * sizeof(floating))
    for ty in range(tiles_h):
        # g's two rows, split into even (scratch row 2·k) and odd (2·k + 1) columns
        memset(scratch, 0, 4 * n * sizeof(floating))
        for r in range(2 * ty, min(2 * ty + 2, out_h)):
            _split_row(2, gy + r * out_w, out_w, scratch + 2 * (r - 2 * ty) * n, n, n,
                       scratch + 4 * n)
        out = dst + ty * tiles_w
        for tx in range(tiles_w):
            u[0] = scratch[tx]
            u[1] = scratch[tx] + scratch[n + tx]
            u[2] = scratch[tx] - scratch[n + tx]
            u[3] = -scratch[n + tx]
            w[0] = scratch[2 * n + tx]
            w[1] = scratch[2 * n + tx] + scratch[3 * n + tx]
            w[2] = scratch[2 * n + tx] - scratch[3 * n + tx]
            w[3] = -scratch[3 * n + tx]
            for l in range(4):
                out[l * xi_stride + tx] = u[l]
                out[(4 + l) * xi_stride + tx] = u[l] + w[l]
                out[(8 + l) * xi_stride + tx] = u[l] - w[l]
                out[(12 + l) * xi_stride + tx] = -w[l]


# -- F(4×4, 3×3): the 1-D transforms of winograd_1d.h over rows, then columns ---------------------

cdef void _input_plane4(const floating* src, Py_ssize_t height, Py_ssize_t width,
                        Py_ssize_t top, Py_ssize_t left, Py_ssize_t tiles_h, Py_ssize_t tiles_w,
                        floating* dst, Py_ssize_t xi_stride, floating* scratch) noexcept nogil:
    """F(4, 3): V[:, t] = Bᵀ d_t B for the tiles of one plane; dst points at V[0, c, first
    tile]. Patch column l of tile tx is split row l mod 4 at entry tx + l div 4."""
    cdef Py_ssize_t half = tiles_w + 1, rows = 4 * tiles_h + 2
    cdef floating* split = scratch
    cdef floating* rowsum = scratch + 4 * rows * half    # (Bᵀ d)[k, p, j]: (6, 4, half)
    cdef floating* r0
    cdef Py_ssize_t ty, k, p
    _split_plane(src, height, width, top, left, 4, rows, half, split,
                 rowsum + 24 * half + 6 * tiles_w)
    for ty in range(tiles_h):
        for p in range(4):
            r0 = split + (p * rows + 4 * ty) * half
            _bt4(r0, half, r0 + 4 * half, r0 + 5 * half, rowsum + p * half, 4 * half, half)
        for k in range(6):
            r0 = rowsum + 4 * k * half
            _bt4(r0, half, r0 + 1, r0 + half + 1, dst + 6 * k * xi_stride + ty * tiles_w,
                 xi_stride, tiles_w)


cdef void _input_grad_plane4(const floating* src, Py_ssize_t xi_stride, floating* gx,
                             Py_ssize_t height, Py_ssize_t width, Py_ssize_t top,
                             Py_ssize_t left, Py_ssize_t tiles_h, Py_ssize_t tiles_w,
                             floating* scratch, bint add) noexcept nogil:
    """F(4, 3): gx (one plane) = Σ_t B e_t Bᵀ added into tile t's patch, the adjoint of
    ``_input_plane4``; src points at E[0, c, first tile]."""
    cdef Py_ssize_t half = tiles_w + 1, rows = 4 * tiles_h + 2, n = tiles_w
    cdef floating* split = scratch                       # the gradient, split as the input
    cdef floating* rowsum = scratch + 4 * rows * half    # ∂/∂(Bᵀ d)[k, p, j]: (6, 4, half)
    cdef floating* cols = rowsum + 24 * half             # one patch row's 6 columns: (6, n)
    cdef floating* padded = cols + 6 * n                 # one padded row of the gradient
    cdef floating* r0
    cdef Py_ssize_t ty, tx, k, p
    memset(split, 0, 4 * rows * half * sizeof(floating))
    for ty in range(tiles_h):
        # the adjoint of the columns' transform; patch columns 4 and 5 are entry tx + 1 of
        # split rows 0 and 1
        for k in range(6):
            _b4(src + 6 * k * xi_stride + ty * tiles_w, xi_stride, cols, n, n, 0)
            r0 = rowsum + 4 * k * half
            for p in range(4):
                for tx in range(n):
                    r0[p * half + tx] = cols[p * n + tx]
                r0[p * half + n] = 0
            for tx in range(n):
                r0[tx + 1] += cols[4 * n + tx]
            for tx in range(n):
                r0[half + tx + 1] += cols[5 * n + tx]
        # then of the rows' transform, added into padded rows 4·ty + r
        for p in range(4):
            _b4(rowsum + p * half, 4 * half, split + (p * rows + 4 * ty) * half, half, half, 1)
    _join_plane(split, 4, rows, half, top, left, height, width, gx, padded, add)


cdef void _output_plane4(const floating* src, Py_ssize_t xi_stride, floating* y,
                         Py_ssize_t out_h, Py_ssize_t out_w, Py_ssize_t tiles_h,
                         Py_ssize_t tiles_w, floating bias, floating* scratch) noexcept nogil:
    """F(4, 3): y (one plane) = bias + Aᵀ m_t A for each tile; src points at M[0, o, first
    tile]."""
    cdef Py_ssize_t n = tiles_w
    cdef floating* rowsum = scratch                 # (Aᵀ M)[i, l, tx]: (4, 6, n)
    cdef floating* cols = scratch + 24 * n          # output column j of each tile: (4, n)
    cdef floating* joined = cols + 4 * n            # a row of 4·n outputs, when Wo < 4·n
    cdef Py_ssize_t ty, i, l
    for ty in range(tiles_h):
        for l in range(6):
            _at4(src + l * xi_stride + ty * tiles_w, 6 * xi_stride, rowsum + l * n, 6 * n, n)
        for i in range(min(4, out_h - 4 * ty)):
            _at4(rowsum + 6 * i * n, n, cols, n, n)
            _join_row(4, cols, n, n, bias, y + (4 * ty + i) * out_w, out_w, joined)


cdef void _output_grad_plane4(const floating* gy, Py_ssize_t out_h, Py_ssize_t out_w,
                              Py_ssize_t tiles_h, Py_ssize_t tiles_w, floating* dst,
                              Py_ssize_t xi_stride, floating* scratch) noexcept nogil:
    """F(4, 3): dM[:, t] = A g_t Aᵀ for the 4×4 output-gradient tiles g_t of one plane (0 past
    the output), the adjoint of ``_output_plane4``; dst points at dM[0, o, first tile]."""
    cdef Py_ssize_t n = tiles_w
    cdef floating* cols = scratch                   # g[i, j, tx]: row i, column j of each tile
    cdef floating* rowsum = scratch + 16 * n        # (g A)[i, l, tx]: (4, 6, n)
    cdef floating* padded = rowsum + 24 * n         # a row of g padded to 4·n, when Wo < 4·n
    cdef Py_ssize_t ty, i, l
    memset(padded, 0, 4 * n * sizeof(floating))
    for ty in range(tiles_h):
        memset(cols, 0, 16 * n * sizeof(floating))
        for i in range(min(4, out_h - 4 * ty)):
            _split_row(4, gy + (4 * ty + i) * out_w, out_w, cols + 4 * i * n, n, n, padded)
        for i in range(4):
            _a4(cols + 4 * i * n, n, rowsum + 6 * i * n, n, n)
        for l in range(6):
            _a4(rowsum + l * n, 6 * n, dst + l * xi_stride + ty * tiles_w, 6 * xi_stride, n)


# -- in lanes: a group of lane planes side by side, both tile sizes -------------------------------

cdef enum Pass:
    INPUT_TILES, INPUT_GRAD, OUTPUT_TILES, OUTPUT_GRAD


cdef void _interleave(floating* planes, Py_ssize_t first, Py_ssize_t count,
                      Py_ssize_t channel, Py_ssize_t channels, Py_ssize_t height,
                      Py_ssize_t width, Py_ssize_t dh, Py_ssize_t dw, floating* cells,
                      Py_ssize_t row_step, int way, floating shift) noexcept nogil:
    """Lane λ's plane cell (r, q) (``_lane_group``) ↔ cells[r·row_step + q·GROUP + λ −
    first], for the (H / dh) × (W / dw) cells of each lane plane: ``way`` 0 reads the planes
    into cells, 1 writes cells + shift into the planes, 2 adds cells into them."""
    cdef Py_ssize_t lane, r, q, rows = height // dh, cols = width // dw
    cdef Py_ssize_t image = first // (dh * dw), p = first % (dh * dw) // dw, pq = first % dw
    cdef Py_ssize_t step = channels * height * width
    cdef floating* plane
    cdef floating* row
    cdef floating* cell
    if floating is float:
        if dh * dw == 1 and TRANSPOSE_PLANES:
            # lane planes one image apart, 16 columns of a row at a time by register transposes
            plane = planes + (first * channels + channel) * height * width
            if way == 0:
                planes_to_cells(plane, step, count, rows, cols, cells, row_step)
            else:
                cells_to_planes(cells, row_step, plane, step, count, rows, cols, shift,
                                way == 2)
            return
    if dh * dw == 1:
        # lane planes one image apart (the loops below without the sub-grid bookkeeping, and
        # branches hoisted out of the rows, which on planes of one 4×4 tile cost a fifth)
        plane = planes + (first * channels + channel) * height * width
        if way == 0:
            # lane planes one image apart: each cell's lanes in one strided (vector) load
            for r in range(rows):
                for q in range(cols):
                    cell = cells + r * row_step + q * GROUP
                    row = plane + r * width + q
                    for lane in range(count):
                        cell[lane] = row[lane * step]
        elif way == 1:
            for lane in range(count):
                for r in range(rows):
                    cell = cells + r * row_step + lane
                    row = plane + lane * step + r * width
                    for q in range(cols):
                        row[q] = cell[q * GROUP] + shift
        else:
            for lane in range(count):
                for r in range(rows):
                    cell = cells + r * row_step + lane
                    row = plane + lane * step + r * width
                    for q in range(cols):
                        row[q] += cell[q * GROUP]
        return
    for lane in range(count):
        plane = planes + (image * channels + channel) * height * width + p * width + pq
        # the next lane: the next sub-grid, or the next image's first (no divisions)
        pq += 1
        if pq == dw:
            pq = 0
            p += 1
            if p == dh:
                p = 0
                image += 1
        for r in range(rows):
            row = plane + r * dh * width
            cell = cells + r * row_step + lane
            if way == 0:
                for q in range(cols):
                    cell[q * GROUP] = row[q * dw]
            elif way == 1:
                for q in range(cols):
                    row[q * dw] = cell[q * GROUP] + shift
            else:
                for q in range(cols):
                    row[q * dw] += cell[q * GROUP]


cdef void _lane_cells(floating* planes, Py_ssize_t first, Py_ssize_t count,
                      Py_ssize_t channel, Py_ssize_t channels, Py_ssize_t height,
                      Py_ssize_t width, Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t row0,
                      Py_ssize_t col0, Py_ssize_t span_h, Py_ssize_t span_w,
                      floating* cells) noexcept nogil:
    """``_lane_group``'s lane planes of one channel interleaved into ``cells``, a zeroed span
    of span_h × span_w cells with the plane's (r, q) at (r + row0, q + col0)."""
    memset(cells, 0, span_h * span_w * GROUP * sizeof(floating))
    _interleave(planes, first, count, channel, channels, height, width, dh, dw,
                cells + (row0 * span_w + col0) * GROUP, span_w * GROUP, 0, 0)


cdef void _lane_tiles(Pass kind, Py_ssize_t m, floating* cells, Py_ssize_t row_step,
                      Py_ssize_t tiles_h, Py_ssize_t tiles_w, floating* tiles,
                      Py_ssize_t xi_stride, Py_ssize_t count, Py_ssize_t pair_step,
                      Py_ssize_t half_step, floating* part) noexcept nogil:
    """The transforms of ``_lane_group`` between interleaved cells (tile (ty, tx)'s corner at
    cells + (m·ty·row_step + m·tx·GROUP)) and ``tiles``, tile i's lanes at tiles + (i div
    2)·pair_step + (i mod 2)·half_step (``count`` apart, 2·count and count; or as the
    products' panels take them, ``forward_by_group``); the input gradient is added into the
    cells. ``part`` holds one tile's partial transform."""
    cdef Py_ssize_t alpha = m + 2, ty, tx, k, i
    cdef floating* corner
    cdef floating* entry
    for ty in range(tiles_h):
        for tx in range(tiles_w):
            corner = cells + m * ty * row_step + m * tx * GROUP
            i = ty * tiles_w + tx
            entry = tiles + (i >> 1) * pair_step + (i & 1) * half_step
            if kind == INPUT_TILES:        # Bᵀ down each patch column, then along each row
                for k in range(alpha):
                    _bt(m, corner + k * GROUP, row_step, part + k * GROUP, alpha * GROUP,
                        count)
                for k in range(alpha):
                    _bt(m, part + alpha * k * GROUP, GROUP, entry + alpha * k * xi_stride,
                        xi_stride, count)
            elif kind == INPUT_GRAD:       # the adjoints in reverse, added into the patch
                for k in range(alpha):
                    _b(m, entry + alpha * k * xi_stride, xi_stride, part + alpha * k * GROUP,
                       GROUP, count, 0)
                for k in range(alpha):
                    _b(m, part + k * GROUP, alpha * GROUP, corner + k * GROUP, row_step, count,
                       1)
            elif kind == OUTPUT_TILES:     # Aᵀ down each column of M, then along each row
                for k in range(alpha):
                    _at(m, entry + k * xi_stride, alpha * xi_stride, part + k * GROUP,
                        alpha * GROUP, count)
                for k in range(m):
                    _at(m, part + alpha * k * GROUP, GROUP, corner + k * row_step, GROUP, count)
            else:
                for k in range(m):
                    _a(m, corner + k * row_step, GROUP, part + alpha * k * GROUP, GROUP, count)
                for k in range(alpha):
                    _a(m, part + k * GROUP, alpha * GROUP, entry + k * xi_stride,
                       alpha * xi_stride, count)


cdef void _lane_group(Pass kind, Py_ssize_t m, floating* planes, Py_ssize_t first,
                      Py_ssize_t count, Py_ssize_t channel, Py_ssize_t channels,
                      Py_ssize_t height, Py_ssize_t width, Py_ssize_t dh, Py_ssize_t dw,
                      Py_ssize_t top, Py_ssize_t left, Py_ssize_t tiles_h, Py_ssize_t tiles_w,
                      floating* tiles, Py_ssize_t xi_stride, floating shift, bint add,
                      floating* scratch, Py_ssize_t tile_step=0) noexcept nogil:
    """Any pass of tile size m for ``count`` ≤ GROUP lane planes of one channel, lanes
    ``first`` … ``first + count − 1`` of the chunk: lane λ is sub-grid s = λ mod (dh·dw),
    (s div dw, s mod dw), of image λ div (dh·dw) of ``planes`` (N, C, H, W), a plane of
    (H / dh) × (W / dw) cells (the whole plane without dilation). The lanes' cells are
    interleaved in scratch, a lane's cell after cell, so that every 1-D transform runs along
    the lanes, a vector wide, however few tiles a row holds (``_lane_cells``, ``_lane_tiles``).
    ``tiles`` points at ξ = 0, tile 0, lane 0 of the group: tile i of lane λ is entry
    i·step + λ − first, step ``tile_step`` or (0) ``count``.

    The interleaved cells span the tile grid's reach: (m·Th + 2) × (m·Tw + 2) padded input
    cells, the plane's (r, q) at (r + top / dh, q + left / dw), or m·Th × m·Tw outputs; cells
    off the plane are 0 (and dropped on the way back)."""
    cdef bint outputs = kind == OUTPUT_TILES or kind == OUTPUT_GRAD
    cdef Py_ssize_t span_h = m * tiles_h + (0 if outputs else 2)
    cdef Py_ssize_t span_w = m * tiles_w + (0 if outputs else 2)
    cdef Py_ssize_t row0 = 0 if outputs else top // dh, col0 = 0 if outputs else left // dw
    cdef floating* cells = scratch
    cdef floating* part = scratch + span_h * span_w * GROUP
    cdef Py_ssize_t step = tile_step if tile_step > 0 else count
    if kind == INPUT_TILES or kind == OUTPUT_GRAD:
        _lane_cells(planes, first, count, channel, channels, height, width, dh, dw, row0,
                    col0, span_h, span_w, cells)
    elif kind == INPUT_GRAD:
        memset(cells, 0, span_h * span_w * GROUP * sizeof(floating))
    _lane_tiles(kind, m, cells, span_w * GROUP, tiles_h, tiles_w, tiles, xi_stride, count,
                2 * step, step, part)
    if kind == INPUT_GRAD or kind == OUTPUT_TILES:
        _interleave(planes, first, count, channel, channels, height, width, dh, dw,
                    cells + (row0 * span_w + col0) * GROUP, span_w * GROUP, 1 + add, shift)


# -- the passes: validating wrappers over the planes ----------------------------------------------

cdef void _plane_pass(Pass kind, Py_ssize_t m, floating* plane, Py_ssize_t height,
                      Py_ssize_t width, floating* first, Py_ssize_t xi_stride, floating shift,
                      Py_ssize_t top, Py_ssize_t left, Py_ssize_t tiles_h, Py_ssize_t tiles_w,
                      bint add, floating* buf) noexcept nogil:
    """One pass of tile size m over one plane and its tiles at ``first`` (``add``: the input
    gradient added into the plane)."""
    if kind == INPUT_TILES:
        if m == 2:
            _input_plane2(plane, height, width, top, left, tiles_h, tiles_w, first, xi_stride,
                          buf)
        else:
            _input_plane4(plane, height, width, top, left, tiles_h, tiles_w, first, xi_stride,
                          buf)
    elif kind == INPUT_GRAD:
        if m == 2:
            _input_grad_plane2(first, xi_stride, plane, height, width, top, left, tiles_h,
                               tiles_w, buf, add)
        else:
            _input_grad_plane4(first, xi_stride, plane, height, width, top, left, tiles_h,
                               tiles_w, buf, add)
    elif kind == OUTPUT_TILES:
        if m == 2:
            _output_plane2(first, xi_stride, plane, height, width, tiles_h, tiles_w, shift, buf)
        else:
            _output_plane4(first, xi_stride, plane, height, width, tiles_h, tiles_w, shift, buf)
    elif m == 2:
        _output_grad_plane2(plane, height, width, tiles_h, tiles_w, first, xi_stride, buf)
    else:
        _output_grad_plane4(plane, height, width, tiles_h, tiles_w, first, xi_stride, buf)


cdef void _over_planes(Pass kind, Py_ssize_t m, floating* planes, Py_ssize_t n_images,
                       Py_ssize_t channels, Py_ssize_t height, Py_ssize_t width,
                       floating* tiles, Py_ssize_t channel_stride, Py_ssize_t xi_stride,
                       const floating* bias, Py_ssize_t top, Py_ssize_t left,
                       Py_ssize_t tiles_h, Py_ssize_t tiles_w, Py_ssize_t dh, Py_ssize_t dw,
                       bint add, floating* scratch, Py_ssize_t scratch_stride,
                       int nt) noexcept nogil:
    """One pass of tile size m over the (image, channel) planes of ``planes`` (N, C, H, W,
    C-contiguous), against the tiles of channel c at ``tiles + c·channel_stride``; every
    thread works in its own row of ``scratch``. By rows, image b's tiles start at
    b·Th·Tw. In lanes, the chunk's N·dh·dw lane planes (``_lane_group``) go in groups of
    GROUP, in order, so that each thread takes the images the products' slabs give it
    (``team_matmul.matmul_slabs``); group g's tiles start at g·GROUP·Th·Tw."""
    cdef Py_ssize_t per_grid = tiles_h * tiles_w, lanes = n_images * dh * dw
    cdef Py_ssize_t groups = (lanes + GROUP - 1) // GROUP, g, c, pair
    cdef floating* plane
    cdef floating* first
    cdef floating* buf
    cdef floating shift
    if _in_lanes(tiles_w, dh, dw):
        for pair in prange(groups * channels, schedule='static', num_threads=nt):
            g = pair // channels
            c = pair % channels
            _lane_group(kind, m, planes, g * GROUP, min(GROUP, lanes - g * GROUP), c, channels,
                        height, width, dh, dw, top, left, tiles_h, tiles_w,
                        tiles + c * channel_stride + g * GROUP * per_grid, xi_stride,
                        (bias[c] if bias != NULL else 0), add,
                        scratch + threadid() * scratch_stride)
        return
    for pair in prange(n_images * channels, schedule='static', num_threads=nt):
        plane = planes + pair * height * width
        first = tiles + (pair % channels) * channel_stride + (pair // channels) * per_grid
        buf = scratch + threadid() * scratch_stride
        shift = bias[pair % channels] if bias != NULL else 0
        _plane_pass(kind, m, plane, height, width, first, xi_stride, shift, top, left, tiles_h,
                    tiles_w, add, buf)


def input_tiles(Py_ssize_t m, const floating[:, :, :, ::1] x, floating[:, :, :] tiles,
                Py_ssize_t top, Py_ssize_t left, Py_ssize_t tiles_h, Py_ssize_t tiles_w,
                floating[:, ::1] scratch, int num_threads, Py_ssize_t dh=1, Py_ssize_t dw=1):
    """tiles[ξ, c, t] = (Bᵀ d B)[ξ] for the input patch d of tile t of channel c of x
    (B, C, H, W); tiles (α², C, B·dh·dw·tiles_h·tiles_w), a tile grid per sub-grid of the
    dilation (dh, dw); scratch (threads, ``scratch_length``)."""
    cdef int nt = _checked_team("input_tiles", m, x.shape, tiles.shape, tiles.strides,
                                sizeof(floating), scratch.shape, tiles_h, tiles_w, False,
                                num_threads, top, left, dh, dw)
    if tiles.shape[1] * tiles.shape[2] > 0:
        _over_planes(INPUT_TILES, m, <floating*>&x[0, 0, 0, 0], x.shape[0], x.shape[1],
                     x.shape[2], x.shape[3], &tiles[0, 0, 0], tiles.strides[1] // sizeof(floating),
                     tiles.strides[0] // sizeof(floating), NULL, top, left, tiles_h, tiles_w,
                     dh, dw, False, &scratch[0, 0], scratch.shape[1], nt)


def input_grad(Py_ssize_t m, const floating[:, :, :] tiles, floating[:, :, :, ::1] gx,
               Py_ssize_t top, Py_ssize_t left, Py_ssize_t tiles_h, Py_ssize_t tiles_w,
               floating[:, ::1] scratch, int num_threads, Py_ssize_t dh=1, Py_ssize_t dw=1,
               bint add=False):
    """gx (B, C, H, W) = the adjoint of ``input_tiles`` applied to tiles (α², C,
    B·dh·dw·Th·Tw): every tile's B e Bᵀ added into its patch (cells no tile reads get 0);
    with ``add``, all that added to gx."""
    cdef int nt = _checked_team("input_grad", m, gx.shape, tiles.shape, tiles.strides,
                                sizeof(floating), scratch.shape, tiles_h, tiles_w, False,
                                num_threads, top, left, dh, dw)
    if gx.shape[0] * gx.shape[1] * gx.shape[2] * gx.shape[3] == 0:
        return
    if tiles.shape[2] == 0:     # no tiles: no cell is read
        if not add:
            gx[...] = 0
        return
    _over_planes(INPUT_GRAD, m, &gx[0, 0, 0, 0], gx.shape[0], gx.shape[1], gx.shape[2],
                 gx.shape[3], <floating*>&tiles[0, 0, 0], tiles.strides[1] // sizeof(floating),
                 tiles.strides[0] // sizeof(floating), NULL, top, left, tiles_h, tiles_w,
                 dh, dw, add, &scratch[0, 0], scratch.shape[1], nt)


def output_tiles(Py_ssize_t m, const floating[:, :, :] tiles, floating[:, :, :, ::1] y,
                 const floating[::1] bias, Py_ssize_t tiles_h, Py_ssize_t tiles_w,
                 floating[:, ::1] scratch, int num_threads, Py_ssize_t dh=1, Py_ssize_t dw=1):
    """y[b, o] = bias[o] + Aᵀ M A for each tile M of tiles (α², O, B·dh·dw·Th·Tw); y (B, O,
    Ho, Wo). An empty bias adds nothing."""
    cdef int nt = _checked_team("output_tiles", m, y.shape, tiles.shape, tiles.strides,
                                sizeof(floating), scratch.shape, tiles_h, tiles_w, True,
                                num_threads, 0, 0, dh, dw)
    if bias.shape[0] not in (0, y.shape[1]):
        raise ValueError(f"winograd.output_tiles: bias must have {y.shape[1]} entries or none, "
                         f"got {bias.shape[0]}")
    if y.shape[0] * y.shape[1] * y.shape[2] * y.shape[3] > 0:
        _over_planes(OUTPUT_TILES, m, &y[0, 0, 0, 0], y.shape[0], y.shape[1], y.shape[2],
                     y.shape[3], <floating*>&tiles[0, 0, 0], tiles.strides[1] // sizeof(floating),
                     tiles.strides[0] // sizeof(floating),
                     &bias[0] if bias.shape[0] > 0 else NULL, 0, 0, tiles_h, tiles_w, dh, dw,
                     False, &scratch[0, 0], scratch.shape[1], nt)


def output_grad(Py_ssize_t m, const floating[:, :, :, ::1] gy, floating[:, :, :] tiles,
                Py_ssize_t tiles_h, Py_ssize_t tiles_w, floating[:, ::1] scratch,
                int num_threads, Py_ssize_t dh=1, Py_ssize_t dw=1):
    """tiles[:, o, t] = A g Aᵀ for each m×m tile g of gy (B, O, Ho, Wo), the adjoint of
    ``output_tiles``; tiles (α², O, B·dh·dw·Th·Tw)."""
    cdef int nt = _checked_team("output_grad", m, gy.shape, tiles.shape, tiles.strides,
                                sizeof(floating), scratch.shape, tiles_h, tiles_w, True,
                                num_threads, 0, 0, dh, dw)
    if tiles.shape[1] * tiles.shape[2] > 0:
        _over_planes(OUTPUT_GRAD, m, <floating*>&gy[0, 0, 0, 0], gy.shape[0], gy.shape[1],
                     gy.shape[2], gy.shape[3], &tiles[0, 0, 0],
                     tiles.strides[1] // sizeof(floating), tiles.strides[0] // sizeof(floating),
                     NULL, 0, 0, tiles_h, tiles_w, dh, dw, False, &scratch[0, 0], scratch.shape[1],
                     nt)


# -- the forward image by image ---------------------------------------------------------------------

#: Whether ``forward_by_image`` and ``backward_by_image`` are built (their products need
#: gemm_tile.h: AVX-512).
BY_IMAGE = bool(GEMM_TILE)


def by_image_length(Py_ssize_t m, Py_ssize_t rows, Py_ssize_t out_channels,
                    Py_ssize_t tiles_h, Py_ssize_t tiles_w, Py_ssize_t gap):
    """Entries of ``work`` each thread of ``forward_by_image`` needs: one image's V and M,
    their ξ planes ``gap`` entries apart, and the products' panel."""
    cdef Py_ssize_t tiles = tiles_h * tiles_w
    return (m + 2) ** 2 * ((rows + out_channels) * tiles + 2 * gap) + GEMM_WORK


cdef bint _filters_fit(const float[:, :, :] u, Py_ssize_t points, Py_ssize_t out_channels,
                       Py_ssize_t rows):
    """Whether u holds (α², O, B·C) transformed filters the by-image products can read: unit
    steps along its rows, rows at least a row apart, ξ planes a whole number of floats apart
    and not backwards."""
    return ((u.shape[0], u.shape[1], u.shape[2]) == (points, out_channels, rows)
            and (rows <= 1 or u.strides[2] == sizeof(float))
            and u.strides[1] >= rows * sizeof(float)
            and u.strides[0] % sizeof(float) == 0 and u.strides[0] >= 0)


def _by_image_team(str op, Py_ssize_t m, x_shape, y_shape, const Py_ssize_t[:, ::1] blocks,
                   Py_ssize_t top, Py_ssize_t left, Py_ssize_t tiles_h, Py_ssize_t tiles_w,
                   Py_ssize_t gap, scratch_shape, work_shape, Py_ssize_t units,
                   int num_threads):
    """The team of ``forward_by_image`` or ``backward_by_image`` over ``units`` work items,
    after the checks both need: rows not in lanes, (B ≥ 1, 2) block offsets within the
    padding, each block's input grid and the output grid as ``_checked_team`` has them, and
    ``work`` (``by_image_length``) for every thread."""
    cdef Py_ssize_t n_blocks = blocks.shape[0], i
    cdef Py_ssize_t points = (m + 2) ** 2, tiles = x_shape[0] * tiles_h * tiles_w
    if _in_lanes(tiles_w, 1, 1) or blocks.shape[1] != 2 or n_blocks == 0 or gap < 0:
        raise ValueError(f"winograd.{op}: rows of {tiles_w} tiles run in lanes, or blocks "
                         f"({blocks.shape[0]}, {blocks.shape[1]}) are not (B ≥ 1, 2) offsets, "
                         f"or a negative gap {gap}")
    cdef int nt = _checked_team(op, m, y_shape, (points, y_shape[1], tiles),
                                (4 * tiles, 4 * tiles, 4), 4, scratch_shape, tiles_h, tiles_w,
                                True, num_threads)
    for i in range(n_blocks):
        if top < blocks[i, 0] or left < blocks[i, 1]:
            raise ValueError(f"winograd.{op}: block offset ({blocks[i, 0]}, {blocks[i, 1]}) "
                             f"beyond the padding ({top}, {left})")
        _checked_team(op, m, x_shape, (points, x_shape[1], tiles), (4 * tiles, 4 * tiles, 4),
                      4, scratch_shape, tiles_h, tiles_w, False, num_threads,
                      top - blocks[i, 0], left - blocks[i, 1])
    nt = <int>min(nt, max(units, 1))
    length = by_image_length(m, n_blocks * x_shape[1], y_shape[1], tiles_h, tiles_w, gap)
    if work_shape[0] < nt or work_shape[1] < length:
        raise ValueError(f"winograd.{op}: work must be at least ({nt}, {length}), got "
                         f"({work_shape[0]}, {work_shape[1]})")
    return nt


cdef inline void _image_tiles(Py_ssize_t m, const float[:, :, :, ::1] x, Py_ssize_t n,
                              const Py_ssize_t[:, ::1] blocks, Py_ssize_t top, Py_ssize_t left,
                              Py_ssize_t tiles_h, Py_ssize_t tiles_w, float* v, Py_ssize_t v_xi,
                              float* buf) noexcept nogil:
    """V of image n, both passes': row i·C + c holds the tiles of channel c of x padded by
    (top − blocks[i, 0], left − blocks[i, 1]), its ξ planes ``v_xi`` entries apart."""
    cdef Py_ssize_t channels = x.shape[1], tiles = tiles_h * tiles_w, i, c
    for i in range(blocks.shape[0]):
        for c in range(channels):
            _plane_pass(INPUT_TILES, m, <float*>&x[n, c, 0, 0], x.shape[2], x.shape[3],
                        v + (i * channels + c) * tiles, v_xi, 0, top - blocks[i, 0],
                        left - blocks[i, 1], tiles_h, tiles_w, False, buf)


def forward_by_image(Py_ssize_t m, const float[:, :, :, ::1] x, const float[:, :, :] u,
                     float[:, :, :, ::1] y, const float[::1] bias,
                     const Py_ssize_t[:, ::1] blocks, Py_ssize_t top, Py_ssize_t left,
                     Py_ssize_t tiles_h, Py_ssize_t tiles_w, Py_ssize_t gap,
                     float[:, ::1] scratch, float[:, ::1] work, int num_threads):
    """y[b, o] = bias[o] + Aᵀ (Σ_r U[·, o, r] ⊙ V[·, r, t]) A for every tile t of image b: the
    whole forward pass (``input_tiles``, the α² products, ``output_tiles``) one image at a
    time, each image on one thread, its V and M in that thread's row of ``work``
    (``by_image_length``, ξ planes ``gap`` entries apart), so that they stay in its core's
    cache and the threads never wait for each other. Undilated, by rows only (not
    ``in_lanes``), float32. Rows r = i·C + c of V are channel c of x padded by (top −
    blocks[i, 0], left − blocks[i, 1]) (a larger kernel's 3×3 blocks); u (α², O, B·C) with
    unit steps along its rows. Bitwise the same for any thread count."""
    cdef Py_ssize_t n_images = x.shape[0], channels = x.shape[1], out_channels = y.shape[1]
    cdef Py_ssize_t n_blocks = blocks.shape[0], rows = n_blocks * channels
    cdef Py_ssize_t points = (m + 2) ** 2, tiles = tiles_h * tiles_w
    cdef Py_ssize_t v_xi = rows * tiles + gap, m_xi = out_channels * tiles + gap
    cdef Py_ssize_t lda = u.strides[1] // sizeof(float), xi_u = u.strides[0] // sizeof(float)
    cdef Py_ssize_t n, o, p, t
    cdef float* v
    cdef float* mm
    cdef float* buf
    if not GEMM_TILE:
        raise RuntimeError("winograd.forward_by_image: built with AVX-512 only")
    if (not _filters_fit(u, points, out_channels, rows) or y.shape[0] != n_images
            or bias.shape[0] not in (0, out_channels)):
        raise ValueError(f"winograd.forward_by_image: u ({u.shape[0]}, {u.shape[1]}, "
                         f"{u.shape[2]}) (steps ({u.strides[0]}, {u.strides[1]}, "
                         f"{u.strides[2]}) bytes), bias ({bias.shape[0]},) and out "
                         f"({y.shape[0]}, {y.shape[1]}, {y.shape[2]}, {y.shape[3]}) do not "
                         f"match ({points}, {out_channels}, {rows}) filters for {n_blocks} "
                         f"blocks of {channels} channels")
    cdef int nt = _by_image_team("forward_by_image", m, x.shape, y.shape, blocks, top, left,
                                 tiles_h, tiles_w, gap, scratch.shape, work.shape, n_images,
                                 num_threads)
    if y.shape[0] * y.shape[1] * y.shape[2] * y.shape[3] == 0:
        return
    for n in prange(n_images, nogil=True, schedule="static", num_threads=nt):
        t = threadid()
        v = &work[t, 0]
        mm = v + points * v_xi
        buf = &scratch[t, 0]
        _image_tiles(m, x, n, blocks, top, left, tiles_h, tiles_w, v, v_xi, buf)
        for p in range(points):
            _gemm(&u[0, 0, 0] + p * xi_u, lda, 1, v + p * v_xi, tiles, 1, mm + p * m_xi,
                  tiles, out_channels, tiles, rows, 0, mm + points * m_xi)
        for o in range(out_channels):
            _plane_pass(OUTPUT_TILES, m, &y[n, o, 0, 0], y.shape[2], y.shape[3],
                        mm + o * tiles, m_xi, bias[o] if bias.shape[0] > 0 else 0, 0, 0,
                        tiles_h, tiles_w, False, buf)


cdef inline void _grad_u_products(const float* dm, Py_ssize_t m_xi, float* v,
                                  Py_ssize_t v_xi, float* grad_u, Py_ssize_t points,
                                  Py_ssize_t out_channels, Py_ssize_t rows, Py_ssize_t columns,
                                  bint accumulate) noexcept nogil:
    """grad_u[p] (+)= dM[p] (O × T) · V[p]ᵀ (T × B·C) for the α² points p of one image or lane
    group of T ``columns``; grad_u's points O·B·C apart, the products' panel after V's last
    point."""
    cdef Py_ssize_t p
    for p in range(points):
        _gemm(dm + p * m_xi, columns, 1, v + p * v_xi, 1, columns,
              grad_u + p * out_channels * rows, rows, out_channels, rows, columns, accumulate,
              v + points * v_xi)


cdef inline void _grad_v_products(const float* u, Py_ssize_t xi_u, Py_ssize_t lda,
                                  const float* dm, Py_ssize_t m_xi, float* v, Py_ssize_t v_xi,
                                  Py_ssize_t points, Py_ssize_t out_channels, Py_ssize_t rows,
                                  Py_ssize_t columns) noexcept nogil:
    """∂L/∂V[p] = U[p]ᵀ (B·C × O) · dM[p] (O × T) into V's buffer, for the α² points p of one
    image or lane group of T ``columns``."""
    cdef Py_ssize_t p
    for p in range(points):
        _gemm(u + p * xi_u, 1, lda, dm + p * m_xi, columns, 1, v + p * v_xi, columns, rows,
              columns, out_channels, 0, v + points * v_xi)


cdef int _check_backward(str op, const float[:, :, :, ::1] x, const float[:, :, :] u,
                         const float[:, :, :, ::1] gy, float[:, :, :, :] gx,
                         float[:, :, :, ::1] grad_u, Py_ssize_t points, Py_ssize_t n_blocks,
                         Py_ssize_t units) except -1:
    """ValueError unless the arrays of ``backward_by_image`` or ``backward_by_group`` fit:
    gy for x's images; gx, when not empty, C-contiguous in x's shape, with filters u the
    products can read; grad_u, when not empty, (S, α², O, B·C) with S at most the ``units``
    (images or lane groups) there are to share."""
    cdef Py_ssize_t channels = x.shape[1], out_channels = gy.shape[1]
    cdef Py_ssize_t rows = n_blocks * channels
    cdef bint need_x = gx.shape[0] > 0, need_w = grad_u.shape[0] > 0
    if (gy.shape[0] != x.shape[0]
            or (need_x and ((gx.shape[0], gx.shape[1], gx.shape[2], gx.shape[3])
                            != (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
                            or not gx.is_c_contig()
                            or not _filters_fit(u, points, out_channels, rows)))
            or (need_w and ((grad_u.shape[1], grad_u.shape[2], grad_u.shape[3])
                            != (points, out_channels, rows)
                            or grad_u.shape[0] > max(units, 1)))):
        raise ValueError(f"winograd.{op}: x ({x.shape[0]}, {x.shape[1]}, {x.shape[2]}, "
                         f"{x.shape[3]}), out gradient ({gy.shape[0]}, {gy.shape[1]}, "
                         f"{gy.shape[2]}, {gy.shape[3]}), u ({u.shape[0]}, {u.shape[1]}, "
                         f"{u.shape[2]}), gx ({gx.shape[0]}, {gx.shape[1]}, {gx.shape[2]}, "
                         f"{gx.shape[3]}) and grad_u ({grad_u.shape[0]}, {grad_u.shape[1]}, "
                         f"{grad_u.shape[2]}, {grad_u.shape[3]}) do not match ({points}, "
                         f"{out_channels}, {rows}) filters for {n_blocks} blocks of {channels} "
                         f"channels and {units} images or lane groups to share")
    return 0


def backward_by_image(Py_ssize_t m, const float[:, :, :, ::1] x, const float[:, :, :] u,
                      const float[:, :, :, ::1] gy, float[:, :, :, :] gx,
                      float[:, :, :, ::1] grad_u, const Py_ssize_t[:, ::1] blocks,
                      Py_ssize_t top, Py_ssize_t left, Py_ssize_t tiles_h, Py_ssize_t tiles_w,
                      Py_ssize_t gap, float[:, ::1] scratch, float[:, ::1] work,
                      int num_threads):
    """The backward of ``forward_by_image``, image by image, each image on one thread: dM =
    A gy Aᵀ per tile (``output_grad``); with grad_u (S, α², O, B·C) non-empty, V again and
    grad_u[s] = Σ dM · Vᵀ over the images of share s (image n in share n·S div N: the shares
    are fixed by N, so the sums do not depend on the thread count); with gx non-empty
    (C-contiguous, x's shape), ∂L/∂V = Uᵀ · dM taken back into gx (``input_grad``, the
    blocks' added). ``work`` and ``scratch`` as ``forward_by_image`` (dM in M's place)."""
    cdef Py_ssize_t n_images = x.shape[0], channels = x.shape[1], out_channels = gy.shape[1]
    cdef Py_ssize_t n_blocks = blocks.shape[0], rows = n_blocks * channels
    cdef Py_ssize_t points = (m + 2) ** 2, tiles = tiles_h * tiles_w
    cdef Py_ssize_t v_xi = rows * tiles + gap, m_xi = out_channels * tiles + gap
    cdef bint need_x = gx.shape[0] > 0, need_w = grad_u.shape[0] > 0
    cdef Py_ssize_t shares = grad_u.shape[0] if need_w else max(n_images, 1)
    cdef Py_ssize_t lda = u.strides[1] // sizeof(float) if need_x else 0
    cdef Py_ssize_t xi_u = u.strides[0] // sizeof(float) if need_x else 0
    cdef Py_ssize_t share, first, last, n, i, c, o, p, t
    cdef float* v
    cdef float* dm
    cdef float* buf
    if not GEMM_TILE:
        raise RuntimeError("winograd.backward_by_image: built with AVX-512 only")
    _check_backward("backward_by_image", x, u, gy, gx, grad_u, points, n_blocks, n_images)
    cdef int nt = _by_image_team("backward_by_image", m, x.shape, gy.shape, blocks, top,
                                 left, tiles_h, tiles_w, gap, scratch.shape, work.shape,
                                 shares, num_threads)
    if need_w and n_images == 0:
        grad_u[...] = 0
    if n_images == 0 or not (need_x or need_w):
        return
    for share in prange(shares, nogil=True, schedule="static", num_threads=nt):
        t = threadid()
        dm = &work[t, 0]
        v = dm + points * m_xi
        buf = &scratch[t, 0]
        first = -(-share * n_images // shares)
        last = -(-(share + 1) * n_images // shares)
        for n in range(first, last):
            for o in range(out_channels):
                _plane_pass(OUTPUT_GRAD, m, <float*>&gy[n, o, 0, 0], gy.shape[2], gy.shape[3],
                            dm + o * tiles, m_xi, 0, 0, 0, tiles_h, tiles_w, False, buf)
            if need_w:
                _image_tiles(m, x, n, blocks, top, left, tiles_h, tiles_w, v, v_xi, buf)
                # added to the share's sum after its first image
                _grad_u_products(dm, m_xi, v, v_xi, &grad_u[share, 0, 0, 0], points,
                                 out_channels, rows, tiles, n > first)
            if need_x:
                _grad_v_products(&u[0, 0, 0], xi_u, lda, dm, m_xi, v, v_xi, points,
                                 out_channels, rows, tiles)
                for i in range(n_blocks):
                    for c in range(channels):
                        _plane_pass(INPUT_GRAD, m, &gx[n, c, 0, 0], gx.shape[2], gx.shape[3],
                                    v + (i * channels + c) * tiles, v_xi, 0,
                                    top - blocks[i, 0], left - blocks[i, 1], tiles_h, tiles_w,
                                    i > 0, buf)



# -- the forward group by group (in lanes) -------------------------------------------------------

cdef inline Py_ssize_t _panel_columns(Py_ssize_t per_grid) noexcept nogil:
    """The columns of a lane group's products in ``forward_by_group``: GROUP a tile, whole
    panels of the products' B (GEMM_NR columns), which V is written in."""
    return (GROUP * per_grid + GEMM_NR - 1) // GEMM_NR * GEMM_NR


def by_group_length(Py_ssize_t m, Py_ssize_t rows, Py_ssize_t out_block, Py_ssize_t tiles_h,
                    Py_ssize_t tiles_w, Py_ssize_t gap):
    """Entries of ``work`` each thread of ``forward_by_group`` needs: one lane group's V (in
    the products' panels: ``_panel_columns``), its products for ``out_block`` output
    channels, their ξ planes ``gap`` entries apart, and the products' panel."""
    cdef Py_ssize_t columns = _panel_columns(tiles_h * tiles_w)
    return (m + 2) ** 2 * ((rows + out_block) * columns + 2 * gap) + GEMM_WORK


cdef Py_ssize_t _reach(const Py_ssize_t[:, ::1] blocks, Py_ssize_t dh,
                       Py_ssize_t dw) noexcept nogil:
    """The largest block offset along either axis, in cells of the dilation: how much further
    than one 3×3 block's the interleaved cells of a lane group span."""
    cdef Py_ssize_t reach = 0, i
    for i in range(blocks.shape[0]):
        reach = max(reach, blocks[i, 0] // dh, blocks[i, 1] // dw)
    return reach


def _by_group_team(str op, Py_ssize_t m, x_shape, y_shape, const Py_ssize_t[:, ::1] blocks,
                   Py_ssize_t top, Py_ssize_t left, Py_ssize_t tiles_h, Py_ssize_t tiles_w,
                   Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t gap, Py_ssize_t out_block,
                   scratch_shape, work_shape, Py_ssize_t units, int num_threads):
    """The team of ``forward_by_group`` or ``backward_by_group`` over ``units`` work items,
    after the checks both need: in lanes, (B ≥ 1, 2) block offsets within the padding, each
    block's input grid and the output grid as ``_checked_team`` has them (a tile grid per
    sub-grid of the dilation), and ``work`` (``by_group_length`` for ``out_block`` output
    channels) for every thread."""
    cdef Py_ssize_t n_blocks = blocks.shape[0], i
    cdef Py_ssize_t points = (m + 2) ** 2, tiles = x_shape[0] * dh * dw * tiles_h * tiles_w
    if not _in_lanes(tiles_w, dh, dw) or blocks.shape[1] != 2 or n_blocks == 0 or gap < 0:
        raise ValueError(f"winograd.{op}: rows of {tiles_w} tiles with dilation ({dh}, {dw}) "
                         f"do not run in lanes, or blocks ({blocks.shape[0]}, "
                         f"{blocks.shape[1]}) are not (B ≥ 1, 2) offsets, or a negative gap "
                         f"{gap}")
    cdef int nt = _checked_team(op, m, y_shape, (points, y_shape[1], tiles),
                                (4 * tiles, 4 * tiles, 4), 4, scratch_shape, tiles_h, tiles_w,
                                True, num_threads, 0, 0, dh, dw)
    for i in range(n_blocks):
        if (top < blocks[i, 0] or left < blocks[i, 1] or blocks[i, 0] < 0 or blocks[i, 1] < 0
                or blocks[i, 0] % dh or blocks[i, 1] % dw):
            raise ValueError(f"winograd.{op}: block offset ({blocks[i, 0]}, {blocks[i, 1]}) "
                             f"negative, beyond the padding ({top}, {left}) or not in whole "
                             f"cells of the dilation ({dh}, {dw})")
        _checked_team(op, m, x_shape, (points, x_shape[1], tiles), (4 * tiles, 4 * tiles, 4),
                      4, scratch_shape, tiles_h, tiles_w, False, num_threads,
                      top - blocks[i, 0], left - blocks[i, 1], dh, dw)
    reach = _reach(blocks, dh, dw)
    needed = scratch_length(m, tiles_h, tiles_w, dh, dw, reach)
    if scratch_shape[0] < nt or scratch_shape[1] < needed:
        raise ValueError(f"winograd.{op}: scratch must be at least ({nt}, {needed}) for "
                         f"blocks reaching {reach} cells, got {tuple(scratch_shape[:2])}")
    nt = <int>min(nt, max(units, 1))
    length = by_group_length(m, n_blocks * x_shape[1], out_block, tiles_h, tiles_w, gap)
    if work_shape[0] < nt or work_shape[1] < length:
        raise ValueError(f"winograd.{op}: work must be at least ({nt}, {length}), got "
                         f"({work_shape[0]}, {work_shape[1]})")
    return nt


cdef void _block_tiles(Py_ssize_t m, float* x, Py_ssize_t first, Py_ssize_t count,
                       Py_ssize_t c, Py_ssize_t channels, Py_ssize_t height, Py_ssize_t width,
                       Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t top, Py_ssize_t left,
                       const Py_ssize_t[:, ::1] blocks, Py_ssize_t tiles_h, Py_ssize_t tiles_w,
                       Py_ssize_t span_h, Py_ssize_t span_w, float* v, Py_ssize_t block_stride,
                       Py_ssize_t v_xi, Py_ssize_t pair_step, Py_ssize_t half_step,
                       float* buf) noexcept nogil:
    """V of channel c of a lane group for every block (block i's at v + i·block_stride, its
    tiles as ``_lane_tiles`` places them): the planes interleaved once over the span of the
    blocks' reach, each block's tiles transformed from its offset in it."""
    cdef Py_ssize_t i
    _lane_cells(x, first, count, c, channels, height, width, dh, dw, top // dh, left // dw,
                span_h, span_w, buf)
    for i in range(blocks.shape[0]):
        _lane_tiles(INPUT_TILES, m, buf + (blocks[i, 0] // dh * span_w + blocks[i, 1] // dw)
                    * GROUP, span_w * GROUP, tiles_h, tiles_w, v + i * block_stride, v_xi,
                    count, pair_step, half_step, buf + span_h * span_w * GROUP)


cdef void _block_grad(Py_ssize_t m, float* gx, Py_ssize_t first, Py_ssize_t count,
                      Py_ssize_t c, Py_ssize_t channels, Py_ssize_t height, Py_ssize_t width,
                      Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t top, Py_ssize_t left,
                      const Py_ssize_t[:, ::1] blocks, Py_ssize_t tiles_h, Py_ssize_t tiles_w,
                      Py_ssize_t span_h, Py_ssize_t span_w, const float* dv,
                      Py_ssize_t block_stride, Py_ssize_t v_xi, float* buf) noexcept nogil:
    """The adjoint of ``_block_tiles``: every block's ∂L/∂V of channel c summed into one span
    of cells, then written into gx's planes once."""
    cdef Py_ssize_t i
    memset(buf, 0, span_h * span_w * GROUP * sizeof(float))
    for i in range(blocks.shape[0]):
        _lane_tiles(INPUT_GRAD, m, buf + (blocks[i, 0] // dh * span_w + blocks[i, 1] // dw)
                    * GROUP, span_w * GROUP, tiles_h, tiles_w, <float*>dv + i * block_stride,
                    v_xi, count, 2 * count, count, buf + span_h * span_w * GROUP)
    _interleave(gx, first, count, c, channels, height, width, dh, dw,
                buf + (top // dh * span_w + left // dw) * GROUP, span_w * GROUP, 1, 0)


def forward_by_group(Py_ssize_t m, const float[:, :, :, ::1] x, const float[:, :, :] u,
                     float[:, :, :, ::1] y, const float[::1] bias,
                     const Py_ssize_t[:, ::1] blocks, Py_ssize_t top, Py_ssize_t left,
                     Py_ssize_t tiles_h, Py_ssize_t tiles_w, Py_ssize_t dh, Py_ssize_t dw,
                     Py_ssize_t out_block, Py_ssize_t gap, float[:, ::1] scratch,
                     float[:, ::1] work, int num_threads):
    """``forward_by_image`` for the passes in lanes: the whole forward one lane group
    (``_lane_group``: GROUP planes, images or sub-grids of the dilation) at a time, each group
    on one thread, its V and then its products for ``out_block`` output channels at a time in
    that thread's row of ``work`` (``by_group_length``), so that they stay in its core's cache
    and no thread reads what another wrote. Float32; bitwise the same for any thread
    count."""
    cdef Py_ssize_t n_images = x.shape[0], channels = x.shape[1], out_channels = y.shape[1]
    cdef Py_ssize_t n_blocks = blocks.shape[0], rows = n_blocks * channels
    cdef Py_ssize_t points = (m + 2) ** 2, per_grid = tiles_h * tiles_w
    cdef Py_ssize_t lanes = n_images * dh * dw, groups = (lanes + GROUP - 1) // GROUP
    cdef Py_ssize_t wide = _panel_columns(per_grid)
    cdef Py_ssize_t v_xi = rows * wide + gap, m_xi = out_block * wide + gap
    cdef Py_ssize_t lda = u.strides[1] // sizeof(float), xi_u = u.strides[0] // sizeof(float)
    cdef Py_ssize_t g, count, c, o, o0, block, p, t
    cdef Py_ssize_t reach, span_h, span_w
    cdef float* v
    cdef float* mm
    cdef float* buf
    if not GEMM_TILE:
        raise RuntimeError("winograd.forward_by_group: built with AVX-512 only")
    if (not _filters_fit(u, points, out_channels, rows) or y.shape[0] != n_images
            or bias.shape[0] not in (0, out_channels) or out_block < 1):
        raise ValueError(f"winograd.forward_by_group: u ({u.shape[0]}, {u.shape[1]}, "
                         f"{u.shape[2]}), bias ({bias.shape[0]},), out ({y.shape[0]}, "
                         f"{y.shape[1]}, {y.shape[2]}, {y.shape[3]}) and out_block {out_block} "
                         f"do not match ({points}, {out_channels}, {rows}) filters for "
                         f"{n_blocks} blocks of {channels} channels")
    cdef int nt = _by_group_team("forward_by_group", m, x.shape, y.shape, blocks, top, left,
                                 tiles_h, tiles_w, dh, dw, gap, out_block, scratch.shape,
                                 work.shape, groups, num_threads)
    if y.shape[0] * y.shape[1] * y.shape[2] * y.shape[3] == 0:
        return
    reach = _reach(blocks, dh, dw)
    span_h, span_w = m * tiles_h + 2 + reach, m * tiles_w + 2 + reach
    for g in prange(groups, nogil=True, schedule="static", num_threads=nt):
        t = threadid()
        v = &work[t, 0]
        mm = v + points * v_xi
        buf = &scratch[t, 0]
        count = min(GROUP, lanes - g * GROUP)
        if count < GROUP:
            # the products read every lane of a panel: none left from earlier work
            memset(v, 0, points * v_xi * sizeof(float))
        for c in range(channels):
            _block_tiles(m, <float*>&x[0, 0, 0, 0], g * GROUP, count, c, channels, x.shape[2],
                         x.shape[3], dh, dw, top, left, blocks, tiles_h, tiles_w, span_h,
                         span_w, v + c * GEMM_NR, channels * GEMM_NR, v_xi, rows * GEMM_NR,
                         GROUP, buf)
        o0 = 0
        while o0 < out_channels:
            block = min(out_block, out_channels - o0)
            for p in range(points):
                _gemm_packed(&u[0, 0, 0] + p * xi_u + o0 * lda, lda, 1, v + p * v_xi,
                             mm + p * m_xi, wide, block, wide, rows, 0)
            for o in range(block):
                _lane_group(OUTPUT_TILES, m, &y[0, 0, 0, 0], g * GROUP, count, o0 + o,
                            out_channels, y.shape[2], y.shape[3], dh, dw, 0, 0, tiles_h,
                            tiles_w, mm + o * wide, m_xi,
                            bias[o0 + o] if bias.shape[0] > 0 else 0, False, buf, GROUP)
            o0 = o0 + block


def backward_by_group(Py_ssize_t m, const float[:, :, :, ::1] x, const float[:, :, :] u,
                      const float[:, :, :, ::1] gy, float[:, :, :, :] gx,
                      float[:, :, :, ::1] grad_u, const Py_ssize_t[:, ::1] blocks,
                      Py_ssize_t top, Py_ssize_t left, Py_ssize_t tiles_h, Py_ssize_t tiles_w,
                      Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t gap, float[:, ::1] scratch,
                      float[:, ::1] work, int num_threads):
    """The backward of ``forward_by_group``, as ``backward_by_image`` with lane groups for
    images: per group dM = A gy Aᵀ for every output channel; with grad_u (S, α², O, B·C)
    non-empty, V again and grad_u[s] = Σ dM · Vᵀ over the groups of share s (group g in share
    g·S div groups: fixed by N, so the sums do not depend on the thread count); with gx
    non-empty (C-contiguous, x's shape), ∂L/∂V = Uᵀ · dM taken back into gx. ``work``
    (``by_group_length`` with all O output channels) and ``scratch`` per thread."""
    cdef Py_ssize_t n_images = x.shape[0], channels = x.shape[1], out_channels = gy.shape[1]
    cdef Py_ssize_t n_blocks = blocks.shape[0], rows = n_blocks * channels
    cdef Py_ssize_t points = (m + 2) ** 2, per_grid = tiles_h * tiles_w
    cdef Py_ssize_t lanes = n_images * dh * dw, groups = (lanes + GROUP - 1) // GROUP
    cdef Py_ssize_t wide = GROUP * per_grid
    cdef Py_ssize_t v_xi = rows * wide + gap, m_xi = out_channels * wide + gap
    cdef bint need_x = gx.shape[0] > 0, need_w = grad_u.shape[0] > 0
    cdef Py_ssize_t shares = grad_u.shape[0] if need_w else max(groups, 1)
    cdef Py_ssize_t lda = u.strides[1] // sizeof(float) if need_x else 0
    cdef Py_ssize_t xi_u = u.strides[0] // sizeof(float) if need_x else 0
    cdef Py_ssize_t share, first, last, g, count, columns, c, o, t
    cdef Py_ssize_t reach = _reach(blocks, dh, dw)
    cdef Py_ssize_t span_h = m * tiles_h + 2 + reach, span_w = m * tiles_w + 2 + reach
    cdef float* v
    cdef float* dm
    cdef float* buf
    if not GEMM_TILE:
        raise RuntimeError("winograd.backward_by_group: built with AVX-512 only")
    _check_backward("backward_by_group", x, u, gy, gx, grad_u, points, n_blocks, groups)
    cdef int nt = _by_group_team("backward_by_group", m, x.shape, gy.shape, blocks, top, left,
                                 tiles_h, tiles_w, dh, dw, gap, out_channels, scratch.shape,
                                 work.shape, shares, num_threads)
    if need_w and n_images == 0:
        grad_u[...] = 0
    if n_images == 0 or not (need_x or need_w):
        return
    for share in prange(shares, nogil=True, schedule="static", num_threads=nt):
        t = threadid()
        dm = &work[t, 0]
        v = dm + points * m_xi
        buf = &scratch[t, 0]
        first = -(-share * groups // shares)
        last = -(-(share + 1) * groups // shares)
        for g in range(first, last):
            count = min(GROUP, lanes - g * GROUP)
            columns = count * per_grid
            for o in range(out_channels):
                _lane_group(OUTPUT_GRAD, m, <float*>&gy[0, 0, 0, 0], g * GROUP, count, o,
                            out_channels, gy.shape[2], gy.shape[3], dh, dw, 0, 0, tiles_h,
                            tiles_w, dm + o * columns, m_xi, 0, False, buf)
            if need_w:
                for c in range(channels):
                    _block_tiles(m, <float*>&x[0, 0, 0, 0], g * GROUP, count, c, channels,
                                 x.shape[2], x.shape[3], dh, dw, top, left, blocks, tiles_h,
                                 tiles_w, span_h, span_w, v + c * columns, channels * columns,
                                 v_xi, 2 * count, count, buf)
                # added to the share's sum after its first group
                _grad_u_products(dm, m_xi, v, v_xi, &grad_u[share, 0, 0, 0], points,
                                 out_channels, rows, columns, g > first)
            if need_x:
                _grad_v_products(&u[0, 0, 0], xi_u, lda, dm, m_xi, v, v_xi, points,
                                 out_channels, rows, columns)
                for c in range(channels):
                    _block_grad(m, &gx[0, 0, 0, 0], g * GROUP, count, c, channels, gx.shape[2],
                                gx.shape[3], dh, dw, top, left, blocks, tiles_h, tiles_w,
                                span_h, span_w, v + c * columns, channels * columns, v_xi, buf)

# -- F(4×4, 5×5): a 5×5 kernel in one piece, the forward in lanes -------------------------------

cdef extern from "winograd_1d.h" nogil:
    void w45_bt "minigrad_w45_bt" (const float*, Py_ssize_t, float*, Py_ssize_t)
    void w45_at "minigrad_w45_at" (const float*, Py_ssize_t, float*, Py_ssize_t)
    void w45_a "minigrad_w45_a" (const float*, Py_ssize_t, float*, Py_ssize_t)

cdef enum:
    ALPHA5 = 8      # points along an axis of F(4, 5): 4 outputs + 5 taps − 1

#: Whether ``forward5_by_group`` is built (its products are the AVX-512 ones).
FORWARD5 = bool(GEMM_TILE)


def scratch5_length(Py_ssize_t tiles_h, Py_ssize_t tiles_w):
    """Entries of scratch each thread of ``forward5_by_group`` needs on a tile grid of tiles_h
    × tiles_w: a lane group's interleaved padded cells ((4·Th + 4) × (4·Tw + 4), which also
    hold its outputs) and one tile's partial transform."""
    return ((4 * tiles_h + 4) * (4 * tiles_w + 4) + ALPHA5 * ALPHA5) * GROUP


def by_group5_length(Py_ssize_t channels, Py_ssize_t out_block, Py_ssize_t tiles_h,
                     Py_ssize_t tiles_w, Py_ssize_t gap):
    """Entries of ``work`` each thread of ``forward5_by_group`` needs: one lane group's V (64
    points of C rows, in the products' panels) and its products for ``out_block`` output
    channels, their points ``gap`` entries apart."""
    cdef Py_ssize_t columns = _panel_columns(tiles_h * tiles_w)
    return ALPHA5 * ALPHA5 * ((channels + out_block) * columns + 2 * gap)


cdef void _input5(const float* cells, Py_ssize_t row_step, Py_ssize_t tiles_h,
                  Py_ssize_t tiles_w, float* v, Py_ssize_t v_xi, Py_ssize_t pair_step,
                  float* part) noexcept nogil:
    """V = Bᵀ d B of every tile of one channel of a lane group, all 16 lanes: tile (ty, tx)'s
    8×8 patch from cells + 4·ty·row_step + 4·tx·GROUP, point (a, b) at v + (8a + b)·v_xi,
    tile i at (i div 2)·pair_step + (i mod 2)·GROUP (two tiles' lanes a panel)."""
    cdef Py_ssize_t ty, tx, k, i
    cdef const float* corner
    cdef float* entry
    for ty in range(tiles_h):
        for tx in range(tiles_w):
            corner = cells + 4 * ty * row_step + 4 * tx * GROUP
            i = ty * tiles_w + tx
            entry = v + (i >> 1) * pair_step + (i & 1) * GROUP
            for k in range(ALPHA5):        # Bᵀ down each patch column, then along each row
                w45_bt(corner + k * GROUP, row_step, part + k * GROUP, ALPHA5 * GROUP)
            for k in range(ALPHA5):
                w45_bt(part + ALPHA5 * k * GROUP, GROUP, entry + ALPHA5 * k * v_xi, v_xi)


cdef void _output5(const float* mm, Py_ssize_t m_xi, Py_ssize_t tiles_h, Py_ssize_t tiles_w,
                   float* cells, Py_ssize_t row_step, float* part) noexcept nogil:
    """Y = Aᵀ M A of every tile of one output channel of a lane group: tile i's points at mm +
    i·GROUP + (8a + b)·m_xi, its 4×4 outputs to cells + 4·ty·row_step + 4·tx·GROUP."""
    cdef Py_ssize_t ty, tx, k
    cdef const float* entry
    cdef float* corner
    for ty in range(tiles_h):
        for tx in range(tiles_w):
            corner = cells + 4 * ty * row_step + 4 * tx * GROUP
            entry = mm + (ty * tiles_w + tx) * GROUP
            for k in range(ALPHA5):        # Aᵀ down each column of M, then along each row
                w45_at(entry + k * m_xi, ALPHA5 * m_xi, part + k * GROUP, ALPHA5 * GROUP)
            for k in range(4):
                w45_at(part + ALPHA5 * k * GROUP, GROUP, corner + k * row_step, GROUP)


cdef int _team5(str op, x_shape, Py_ssize_t out_h, Py_ssize_t out_w, Py_ssize_t top,
                Py_ssize_t left, Py_ssize_t units, Py_ssize_t work_length, scratch_shape,
                work_shape, int num_threads) except -1:
    """The team of ``forward5_by_group`` or ``grad5_weight_by_group`` over ``units`` work
    items, after the checks both need: the input padded by (top, left) inside the reach of the
    outputs' 4×4 tiles, and ``scratch`` (``scratch5_length``) and ``work`` (``work_length``)
    for every thread."""
    cdef Py_ssize_t tiles_h = (out_h + 3) // 4, tiles_w = (out_w + 3) // 4
    cdef Py_ssize_t span_h = 4 * tiles_h + 4, span_w = 4 * tiles_w + 4
    height, width = x_shape[2], x_shape[3]
    if min(top, left) < 0 or height + top > span_h or width + left > span_w:
        raise ValueError(f"winograd.{op}: outputs of {out_h}×{out_w} reach {span_h}×{span_w} "
                         f"padded cells, less than the input's {height}×{width} with padding "
                         f"({top}, {left}), or the padding is negative")
    cdef int nt = <int>min(team_size(x_shape[0] * x_shape[1] * tiles_h * tiles_w * GROUP,
                                     PARALLEL_MIN, num_threads), max(units, 1))
    for name, shape, length in (("scratch", scratch_shape, scratch5_length(tiles_h, tiles_w)),
                                ("work", work_shape, work_length)):
        if shape[0] < nt or shape[1] < length:
            raise ValueError(f"winograd.{op}: {name} must be at least ({nt}, {length}), got "
                             f"({shape[0]}, {shape[1]})")
    return nt


def forward5_by_group(const float[:, :, :, ::1] x, const float[:, :, ::1] u,
                      float[:, :, :, ::1] y, const float[::1] bias, Py_ssize_t top,
                      Py_ssize_t left, Py_ssize_t out_block, Py_ssize_t gap,
                      float[:, ::1] scratch, float[:, ::1] work, int num_threads):
    """y = conv(x, g) + bias for a 5×5 kernel, stride 1, by Winograd F(4×4, 5×5): each 4×4
    block of outputs from its 8×8 input patch, 64 multiplies per 16 outputs and channel pair
    instead of 400. u (64, O, C) = G g Gᵀ (point 8a + b), x (N, C, H, W) padded by ``top`` and
    ``left`` (and whatever the output's size leaves below and right), y (N, O, Ho, Wo). As
    ``forward_by_group``: one lane group of 16 images at a time on each thread, its V in the
    products' panels in that thread's row of ``work`` (``by_group5_length``), its products
    for ``out_block`` output channels at a time, the interleaved cells in its row of
    ``scratch`` (``scratch5_length``). Float32, AVX-512; bitwise the same for any thread
    count."""
    cdef Py_ssize_t n_images = x.shape[0], channels = x.shape[1]
    cdef Py_ssize_t height = x.shape[2], width = x.shape[3], out_channels = y.shape[1]
    cdef Py_ssize_t out_h = y.shape[2], out_w = y.shape[3]
    cdef Py_ssize_t tiles_h = (out_h + 3) // 4, tiles_w = (out_w + 3) // 4
    cdef Py_ssize_t per_grid = tiles_h * tiles_w, wide = _panel_columns(per_grid)
    cdef Py_ssize_t groups = (n_images + GROUP - 1) // GROUP, points = ALPHA5 * ALPHA5
    cdef Py_ssize_t span_h = 4 * tiles_h + 4, span_w = 4 * tiles_w + 4
    cdef Py_ssize_t v_xi = channels * wide + gap, m_xi = out_block * wide + gap
    cdef Py_ssize_t lda = u.strides[1] // sizeof(float), xi_u = u.strides[0] // sizeof(float)
    cdef Py_ssize_t g, count, c, o, o0, block, p, t
    cdef float* v
    cdef float* mm
    cdef float* buf
    if not GEMM_TILE:
        raise RuntimeError("winograd.forward5_by_group: built with AVX-512 only")
    if (y.shape[0] != n_images or not _filters_fit(u, points, out_channels, channels)
            or bias.shape[0] not in (0, out_channels) or out_block < 1 or gap < 0):
        raise ValueError(f"winograd.forward5_by_group: u ({u.shape[0]}, {u.shape[1]}, "
                         f"{u.shape[2]}), bias ({bias.shape[0]},), out ({n_images} vs "
                         f"{y.shape[0]} images), out_block {out_block} and gap {gap} do not "
                         f"match ({points}, {out_channels}, {channels}) filters")
    cdef int nt = _team5("forward5_by_group", x.shape, out_h, out_w, top, left, groups,
                         by_group5_length(channels, out_block, tiles_h, tiles_w, gap),
                         scratch.shape, work.shape, num_threads)
    if y.shape[0] * out_channels == 0:
        return
    for g in prange(groups, nogil=True, schedule="static", num_threads=nt):
        t = threadid()
        v = &work[t, 0]
        mm = v + points * v_xi
        buf = &scratch[t, 0]
        count = min(GROUP, n_images - g * GROUP)
        if per_grid % 2:
            # the last panel's second half holds no tile: zeros for the products to read
            for p in range(points):
                for c in range(channels):
                    memset(v + p * v_xi + (per_grid // 2 * channels + c) * GEMM_NR + GROUP, 0,
                           GROUP * sizeof(float))
        # the transforms run on all 16 lanes: past ``count`` the cells are zeros, and so V
        for c in range(channels):
            _lane_cells(<float*>&x[0, 0, 0, 0], g * GROUP, count, c, channels, height, width,
                        1, 1, top, left, span_h, span_w, buf)
            _input5(buf, span_w * GROUP, tiles_h, tiles_w, v + c * GEMM_NR, v_xi,
                    channels * GEMM_NR, buf + span_h * span_w * GROUP)
        o0 = 0
        while o0 < out_channels:
            block = min(out_block, out_channels - o0)
            for p in range(points):
                _gemm_packed(&u[0, 0, 0] + p * xi_u + o0 * lda, lda, 1, v + p * v_xi,
                             mm + p * m_xi, wide, block, per_grid * GROUP, channels, 0)
            for o in range(block):
                _output5(mm + o * wide, m_xi, tiles_h, tiles_w, buf, 4 * tiles_w * GROUP,
                         buf + span_h * span_w * GROUP)
                _interleave(&y[0, 0, 0, 0], g * GROUP, count, o0 + o, out_channels, out_h,
                            out_w, 1, 1, buf, 4 * tiles_w * GROUP, 1,
                            bias[o0 + o] if bias.shape[0] > 0 else 0)
            o0 = o0 + block


cdef void _output_grad5(const float* cells, Py_ssize_t row_step, Py_ssize_t tiles_h,
                        Py_ssize_t tiles_w, float* dm, Py_ssize_t m_xi,
                        float* part) noexcept nogil:
    """dM = A dY Aᵀ, the adjoint of ``_output5``, for every tile of one output channel's
    gradient in a lane group's cells (tile (ty, tx)'s 4×4 block at cells + 4·ty·row_step +
    4·tx·GROUP): point (a, b) of tile i at dm + i·GROUP + (8a + b)·m_xi."""
    cdef Py_ssize_t ty, tx, k
    cdef const float* corner
    cdef float* entry
    for ty in range(tiles_h):
        for tx in range(tiles_w):
            corner = cells + 4 * ty * row_step + 4 * tx * GROUP
            entry = dm + (ty * tiles_w + tx) * GROUP
            for k in range(4):             # A down each column of the block, then along rows
                w45_a(corner + k * GROUP, row_step, part + k * GROUP, 4 * GROUP)
            for k in range(ALPHA5):
                w45_a(part + 4 * k * GROUP, GROUP, entry + ALPHA5 * k * m_xi, m_xi)


def grad5_weight_length(Py_ssize_t channels, Py_ssize_t out_channels, Py_ssize_t tiles_h,
                        Py_ssize_t tiles_w, Py_ssize_t gap):
    """Entries of ``work`` each thread of ``grad5_weight_by_group`` needs: one lane group's dM
    and V (64 points each, 16 lanes a tile, points ``gap`` entries apart) and the products'
    panel after them (``_grad_u_products``)."""
    cdef Py_ssize_t columns = GROUP * tiles_h * tiles_w
    return ALPHA5 * ALPHA5 * ((channels + out_channels) * columns + 2 * gap) + GEMM_WORK


def grad5_weight_by_group(const float[:, :, :, ::1] x, const float[:, :, :, ::1] gy,
                          float[:, :, :, ::1] grad_u, Py_ssize_t top, Py_ssize_t left,
                          Py_ssize_t gap, float[:, ::1] scratch, float[:, ::1] work,
                          int num_threads):
    """The weight gradient of ``forward5_by_group`` before G's adjoint: grad_u[s] (64, O, C)
    = Σ dM · Vᵀ over the lane groups of share s (group g in share g·S div groups, S =
    grad_u's first axis: fixed by N, so the sums do not depend on the thread count), dM = A
    dY Aᵀ of gy's tiles and V = Bᵀ d B of x's patches as the forward has them; ∂L/∂g = Gᵀ
    (Σ_s grad_u[s]) G is the caller's. ``work`` (``grad5_weight_length``) and ``scratch``
    (``scratch5_length``) per thread. Float32, AVX-512."""
    cdef Py_ssize_t n_images = x.shape[0], channels = x.shape[1]
    cdef Py_ssize_t height = x.shape[2], width = x.shape[3], out_channels = gy.shape[1]
    cdef Py_ssize_t out_h = gy.shape[2], out_w = gy.shape[3]
    cdef Py_ssize_t tiles_h = (out_h + 3) // 4, tiles_w = (out_w + 3) // 4
    cdef Py_ssize_t per_grid = tiles_h * tiles_w, wide = GROUP * per_grid
    cdef Py_ssize_t groups = (n_images + GROUP - 1) // GROUP, points = ALPHA5 * ALPHA5
    cdef Py_ssize_t span_h = 4 * tiles_h + 4, span_w = 4 * tiles_w + 4
    cdef Py_ssize_t v_xi = channels * wide + gap, m_xi = out_channels * wide + gap
    cdef Py_ssize_t shares = grad_u.shape[0], share, first, last, g, count, c, o, t
    cdef float* v
    cdef float* dm
    cdef float* buf
    if not GEMM_TILE:
        raise RuntimeError("winograd.grad5_weight_by_group: built with AVX-512 only")
    if (gy.shape[0] != n_images or not 1 <= shares <= max(groups, 1) or gap < 0
            or grad_u.shape[1] != points or grad_u.shape[2] != out_channels
            or grad_u.shape[3] != channels):
        raise ValueError(f"winograd.grad5_weight_by_group: grad_u ({grad_u.shape[0]}, "
                         f"{grad_u.shape[1]}, {grad_u.shape[2]}, {grad_u.shape[3]}), gy "
                         f"({gy.shape[0]} images) and gap {gap} do not match (1 ≤ S ≤ "
                         f"{max(groups, 1)}, {points}, {out_channels}, {channels}) for "
                         f"{n_images} images")
    cdef int nt = _team5("grad5_weight_by_group", x.shape, out_h, out_w, top, left, shares,
                         grad5_weight_length(channels, out_channels, tiles_h, tiles_w, gap),
                         scratch.shape, work.shape, num_threads)
    if n_images == 0:
        grad_u[...] = 0
    if n_images * out_channels * channels == 0:
        return
    for share in prange(shares, nogil=True, schedule="static", num_threads=nt):
        t = threadid()
        dm = &work[t, 0]
        v = dm + points * m_xi
        buf = &scratch[t, 0]
        first = -(-share * groups // shares)
        last = -(-(share + 1) * groups // shares)
        for g in range(first, last):
            count = min(GROUP, n_images - g * GROUP)
            # all 16 lanes transformed: past ``count`` the cells are zeros, and so V and dM
            for o in range(out_channels):
                _lane_cells(<float*>&gy[0, 0, 0, 0], g * GROUP, count, o, out_channels, out_h,
                            out_w, 1, 1, 0, 0, 4 * tiles_h, 4 * tiles_w, buf)
                _output_grad5(buf, 4 * tiles_w * GROUP, tiles_h, tiles_w, dm + o * wide, m_xi,
                              buf + span_h * span_w * GROUP)
            for c in range(channels):
                _lane_cells(<float*>&x[0, 0, 0, 0], g * GROUP, count, c, channels, height,
                            width, 1, 1, top, left, span_h, span_w, buf)
                _input5(buf, span_w * GROUP, tiles_h, tiles_w, v + c * wide, v_xi,
                        2 * GROUP, buf + span_h * span_w * GROUP)
            # added to the share's sum after its first group
            _grad_u_products(dm, m_xi, v, v_xi, &grad_u[share, 0, 0, 0], points, out_channels,
                             channels, wide, g > first)


# -- the filters: U = G g Gᵀ and its adjoint -------------------------------------------------------

cdef enum:
    LANES = 16      # filters (input channels of one output channel) transformed together


cdef inline void _copy_lanes(floating* dst, const floating* src,
                             Py_ssize_t count) noexcept nogil:
    """dst[:count] = src[:count]; a whole block of LANES by a copy of constant size, which
    the compiler makes a vector move instead of a call."""
    if count == LANES:
        memcpy(dst, src, LANES * sizeof(floating))
    else:
        memcpy(dst, src, count * sizeof(floating))


cdef void _filter_block(const double* G, Py_ssize_t alpha, floating* g,
                        floating* u, Py_ssize_t xi_stride, Py_ssize_t count,
                        bint adjoint) noexcept nogil:
    """U = G g Gᵀ for ``count`` ≤ LANES consecutive filters g (9 taps each, contiguous) into
    u[ξ·xi_stride + lane]; with ``adjoint``, g = Gᵀ U G the other way (g written). In lanes:
    the taps gathered into rows of LANES, both 1-D passes along them."""
    cdef floating taps[9][LANES]
    cdef floating half[6][3][LANES]      # (G g)[k, j] forward, (Gᵀ U)[i, l] adjoint: ≤ 6×6
    cdef floating full[6][6][LANES]
    cdef Py_ssize_t i, j, k, l, x
    cdef floating w
    if not adjoint:
        for x in range(count):
            for i in range(9):
                taps[i][x] = g[x * 9 + i]
        for k in range(alpha):
            for j in range(3):
                for x in range(LANES):
                    half[k][j][x] = 0
                for i in range(3):
                    w = <floating>G[k * 3 + i]
                    for x in range(LANES):
                        half[k][j][x] = half[k][j][x] + w * taps[i * 3 + j][x]
        for k in range(alpha):
            for l in range(alpha):
                for x in range(LANES):
                    full[k][l][x] = 0
                for j in range(3):
                    w = <floating>G[l * 3 + j]
                    for x in range(LANES):
                        full[k][l][x] = full[k][l][x] + w * half[k][j][x]
                _copy_lanes(u + (k * alpha + l) * xi_stride, &full[k][l][0], count)
    else:
        for k in range(alpha):
            for l in range(alpha):
                _copy_lanes(&full[k][l][0], u + (k * alpha + l) * xi_stride, count)
        # (U G)[k, j] = Σ_l U[k, l] G[l, j], then g[i, j] = Σ_k G[k, i] (U G)[k, j]
        for k in range(alpha):
            for j in range(3):
                for x in range(LANES):
                    half[k][j][x] = 0
                for l in range(alpha):
                    w = <floating>G[l * 3 + j]
                    for x in range(LANES):
                        half[k][j][x] = half[k][j][x] + w * full[k][l][x]
        for i in range(3):
            for j in range(3):
                for x in range(LANES):
                    taps[i * 3 + j][x] = 0
                for k in range(alpha):
                    w = <floating>G[k * 3 + i]
                    for x in range(LANES):
                        taps[i * 3 + j][x] = taps[i * 3 + j][x] + w * half[k][j][x]
        for x in range(count):
            for i in range(9):
                g[x * 9 + i] = taps[i][x]


cdef void _filters(const double* G, Py_ssize_t alpha, floating* g, floating* u,
                   Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t xi_stride, bint adjoint,
                   int nt) noexcept nogil:
    """Both directions of ``filter_tiles`` / ``filter_grad`` after their checks: u (α², rows,
    cols) with ξ planes ``xi_stride`` apart, g (rows·cols, 9); parallel over blocks of LANES
    filters of one output channel (each written by one thread)."""
    cdef Py_ssize_t blocks = (cols + LANES - 1) // LANES, item, o, c
    for item in prange(rows * blocks, schedule="static", num_threads=nt):
        o = item // blocks
        c = (item % blocks) * LANES
        _filter_block(G, alpha, g + (o * cols + c) * 9, u + o * cols + c, xi_stride,
                      min(LANES, cols - c), adjoint)


def _check_filters(str op, Py_ssize_t alpha, Py_ssize_t g_width, g_shape, u_shape, u_strides,
                   Py_ssize_t itemsize):
    if g_width != 3 or alpha not in (4, 6):
        raise ValueError(f"winograd.{op}: G must be 4×3 or 6×3, got ({alpha}, {g_width})")
    if (u_shape[0] != alpha * alpha or g_shape[0] != u_shape[1] * u_shape[2]
            or g_shape[1] != 9):
        raise ValueError(f"winograd.{op}: filters {tuple(g_shape[:2])} and transformed "
                         f"filters {tuple(u_shape[:3])} do not match a {alpha}×3 G")
    if ((u_shape[2] > 1 and u_strides[2] != itemsize)
            or (u_shape[1] > 1 and u_strides[1] != u_shape[2] * itemsize)):
        raise ValueError(f"winograd.{op}: each ξ plane of the transformed filters must be "
                         f"contiguous, got strides {tuple(u_strides[:3])}")


def filter_tiles(const double[:, ::1] G, const floating[:, ::1] weight, floating[:, :, :] u,
                 int num_threads):
    """u[k·α + l, o, c] = Σ_ij G[k, i] G[l, j] weight[o·C + c, i·3 + j]: U = G g Gᵀ for
    every filter; weight (O·C, 9), u (α², O, C) with contiguous ξ planes (any gap between
    them), G (α, 3)."""
    _check_filters("filter_tiles", G.shape[0], G.shape[1], weight.shape, u.shape, u.strides,
                   sizeof(floating))
    cdef int nt = team_size(u.shape[0] * u.shape[1] * u.shape[2], PARALLEL_MIN, num_threads)
    if weight.shape[0]:
        _filters(&G[0, 0], G.shape[0], <floating*>&weight[0, 0], &u[0, 0, 0], u.shape[1],
                 u.shape[2], u.strides[0] // sizeof(floating), False, nt)


def filter_grad(const double[:, ::1] G, const floating[:, :, :] grad_u,
                floating[:, ::1] grad_weight, int num_threads):
    """grad_weight[o·C + c, i·3 + j] = Σ_kl G[k, i] G[l, j] grad_u[k·α + l, o, c], the adjoint
    of ``filter_tiles``."""
    _check_filters("filter_grad", G.shape[0], G.shape[1], grad_weight.shape, grad_u.shape,
                   grad_u.strides, sizeof(floating))
    cdef int nt = team_size(grad_u.shape[0] * grad_u.shape[1] * grad_u.shape[2], PARALLEL_MIN,
                            num_threads)
    if grad_weight.shape[0]:
        _filters(&G[0, 0], G.shape[0], &grad_weight[0, 0], <floating*>&grad_u[0, 0, 0],
                 grad_u.shape[1], grad_u.shape[2], grad_u.strides[0] // sizeof(floating),
                 True, nt)
