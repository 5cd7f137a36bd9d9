# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Direct convolution on flat planes: no unrolled windows, no BLAS.

The grid layout. Each (image, channel) plane is stored flat in rows of a fixed width ``Wg``,
zeros in the padding, with some zero slack at both ends. With stride 1, Wg is the input width
plus one gap of max(left, right) padding zeros, which is the right padding of one row and the
left padding of the next (``conv_direct.DirectPlan``); with a stride, the padded width. A tap
(i, j) of a stride-1 kernel with dilation (dh, dw) is then one constant shift of the flat
position, ``shift[t] = i·dh·Wg + j·dw``, and a convolution is a 1-D correlation along it:

    out[n, o, p] = Σ_c Σ_t weight[o, c, t] · grid[n, c, start + p + shift[t]],
    p = row·Wg + col,  row < Ho,  col < Wg.

Positions with ``col ≥ Wo`` that a tile's run crosses are computed but never stored; a run
never starts on one (``conv_direct.position_runs``), so on rows a whole number of runs wide
the padding columns cost nothing. The same
kernel computes the input gradient: the output gradient laid out on the input's grid,
correlated with the flipped, transposed weight (negative shifts). A strided convolution runs
on the plane split into its stride phases (``embed_phases``), where each tap is again one
constant shift (``minigrad/ops/conv_direct.py``). On small maps the batch's planes of a channel
may be stacked into one tall plane (``conv``'s ``period``), so that the tiles' runs go on from
one image into the next.

Register tiling. A tile is ``OB`` output channels × ``XB`` positions held in accumulators
(``tile_sizes.h``: 8 × 48 floats in 24 of AVX-512's 32 registers, 4 × 24 in 12 of AVX2's 16),
the positions in three runs of ``XB / 3`` consecutive ones (a float32 vector each), which may
start anywhere: an 8×8 output on rows 10 wide (5×5 'same') is eight runs, three tiles, where
24 consecutive positions per tile took four. Each step loads ``XB`` grid values once and
broadcasts ``OB`` weights, so the loop is compute-bound (near the GEMM roof: benchmark cases
conv5x5 and conv3x3_s1); its sums are written with GCC vector types (``conv_tile.h``). The
weight is packed as (O/OB blocks, C·T, OB) so one step reads ``OB`` contiguous weights; a
block of a channel count that is not a multiple of ``OB`` is padded with zero weights and its
extra rows are not stored.

The lane tile (``conv_lanes``, ``lane_tile.h``, AVX-512 only) turns that around for outputs
4 or 7 wide or a whole number of 14 or 8, where runs of a vector lose lanes to the row ends:
output channels in the lanes (two vectors: 32 float32 or 16 float64 channels; or one, for
layers of 16 on rows of one tile), positions in registers, 14 or 8 outputs of a row or two
rows of 7 or of 4 per tile (two rows of any with one vector), so every lane is an output.
Each step loads the weight vectors and broadcasts the tile's grid values; the tile's sums
are transposed into the output planes as they are stored. A tile skips the taps its rows
would read from padding rows, and each row's first or last one or two columns where a tap
reads the padding columns (on 7×7 with 3×3, together a sixth of the products). Where that is
all the padding a forward reads, it reads x itself (cells one or two apart: stride 1 or 2)
instead of a grid; else a strided forward runs on its interleaved phase rows. The input
gradient of a stride-1 convolution on inputs of such widths runs on it too (``conv_lanes``
with a ``start``, as ``conv``).

The weight gradient, ``grad_w[o, c, t] = Σ_n Σ_p gy[n, o, p] · grid[n, c, p + shift[t]]``, is
a sum over positions per (o, c, t). It runs on a position-major copy of the output gradient
so that its tile has the forward tile's pattern: ``TG`` taps × ``GO`` output channels of
accumulators, each step broadcasting ``TG`` grid values and loading ``GO`` contiguous gradient
values. With AVX-512 the tile is 9 × 32, and it skips the taps that read padding at each
output (tap masks by row and by column, ``DirectPlan.grad_masks``; on 7×7 with 3×3 a sixth
of the products). With AVX2 it is 2 input channels × 3 taps × 16 (``PAIRS``): a 3 × 32
tile's accumulators leave no registers for its gradient vectors, which it then reloads in
every FMA, while the pair tile keeps its two in registers and shares them between six rows.
The tiles, and the narrower ones a layer may use when they pad its output channels less (16
wide with AVX-512, 24 with AVX2), are written with GCC vector types (``grad_tiles.h``; GCC
fully unrolls constant loops of up to 16 iterations before it vectorises, which left the
16-wide tile of an earlier Cython loop scalar). A work item (an image
chunk, a block of output channels) copies one image's gradient block position-major into its
thread's scratch, where every input channel's tiles then read it from the core's cache: the
copy never goes to memory.

All loops are ``nogil`` with ``prange``; every thread writes only its own outputs (no atomics),
so results do not depend on the thread count. The Python wrapper (``minigrad/ops/conv.py``)
validates shapes; ``check_reads`` guards the unchecked reads here.
"""
from cython.parallel cimport prange, threadid
from cython cimport floating
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from ._parallel cimport check_threads, team_size

cdef extern from "embed_rows.h" nogil:
    void _embed_rows_f "minigrad_embed_rows_f" (float* dst, const float* src, Py_ssize_t rows,
                                                Py_ssize_t width, Py_ssize_t src_row,
                                                Py_ssize_t gap)
    void _embed_rows_d "minigrad_embed_rows_d" (double* dst, const double* src,
                                                Py_ssize_t rows, Py_ssize_t width,
                                                Py_ssize_t src_row, Py_ssize_t gap)

# The tile sizes: compile-time constants (they size the register tiles' C arrays) that depend on
# the target's vector registers (tile_sizes.h), exported to Python below under their long names.
cdef extern from "tile_sizes.h":
    # Below this many multiply-adds a convolution runs on one thread: waking the team (its
    # threads asleep after the Python code between two kernels) costs more than it saves,
    # which decides batch-1 latency. Results are the same for any thread count.
    Py_ssize_t PARALLEL_MIN_MACS "MINIGRAD_PARALLEL_MIN_MACS"
    enum:
        OB "MINIGRAD_OB"    # output channels per register tile (the weight packing's block size)
        XB "MINIGRAD_XB"    # positions per register tile in the forward / input-gradient kernel
        RUNS "MINIGRAD_RUNS"    # ... in this many runs of consecutive positions
        RUN "MINIGRAD_RUN"      # of this length each
        GO "MINIGRAD_GO"    # output channels per register tile of the weight-gradient kernel
        TG "MINIGRAD_TG"    # taps per register tile of the weight-gradient kernel
        PAIRS "MINIGRAD_GRAD_PAIRS"  # 1: the GO-wide weight-gradient tile takes two channels
        G16 "MINIGRAD_GO_16"    # the other weight-gradient tiles' widths (0: none)
        G24 "MINIGRAD_GO_24"

cdef enum:
    BAND = 24           # tiles per work item of ``conv``, which sum one chunk of channels each

OUT_BLOCK = OB
POSITION_BLOCK = XB
POSITION_RUN = RUN
POSITION_RUNS = RUNS
GRAD_OUT_BLOCK = GO
#: The weight gradient's tile widths (output channels), widest first.
GRAD_TILE_WIDTHS = tuple(w for w in (GO, G24, G16) if w)
TAP_BLOCK = TG
BAND_TILES = BAND


cdef tuple _dims(Py_ssize_t* shape, int ndim):
    return tuple([shape[i] for i in range(ndim)])


cdef int _check_planes(str name, Py_ssize_t* shape, Py_ssize_t* strides, int ndim,
                       Py_ssize_t itemsize) except -1:
    """ValueError unless every axis after the first is C-contiguous: the kernels index images
    through the memoryview, but walk channels and positions by pointer arithmetic. The first
    axis (and so a slice of channels, a group) may have any stride."""
    cdef Py_ssize_t expected = itemsize
    cdef int axis
    for axis in range(ndim - 1, 0, -1):
        if shape[axis] > 1 and strides[axis] != expected:
            raise ValueError(f"{name}: its axes after the first must be C-contiguous, got "
                             f"shape {_dims(shape, ndim)} and strides {_dims(strides, ndim)}")
        expected *= shape[axis]
    return 0


def embed(const floating[:, :, :, :] src, floating[:, :, :] grid, Py_ssize_t grid_width,
          Py_ssize_t start, int num_threads):
    """grid[n, c, start + r·grid_width + col] = src[n, c, r, col]; every other cell is 0.
    Each row of src and each plane of grid must be contiguous; the other axes may have any
    stride (the stacked layout's planes lie channel by channel, image after image). Runs on
    ``num_threads`` threads, image by image: the caller passes the team of the kernel that
    reads the grid (``team``), whose threads then find their images in their own core's cache
    (a thread reading what another core wrote waits for it line by line)."""
    cdef Py_ssize_t channels = src.shape[1]
    cdef Py_ssize_t rows = src.shape[2], width = src.shape[3], length = grid.shape[2]
    cdef Py_ssize_t plane, n, c, end
    if ((width > 1 and src.strides[3] != sizeof(floating))
            or (length > 1 and grid.strides[2] != sizeof(floating))):
        raise ValueError(f"embed: the rows of src (strides {_dims(src.strides, 4)}) and the "
                         f"planes of grid (strides {_dims(grid.strides, 3)}) must be contiguous")
    if (grid.shape[0] != src.shape[0] or grid.shape[1] < channels or width > grid_width
            or start < 0 or (rows and start + (rows - 1) * grid_width + width > length)):
        raise ValueError(f"embed: grid {_dims(grid.shape, 3)} (row width {grid_width}, start "
                         f"{start}) cannot hold planes {_dims(src.shape, 4)}")
    cdef int nt = check_threads(num_threads)
    for plane in prange(src.shape[0] * grid.shape[1], nogil=True, schedule="static",
                        num_threads=nt):
        n = plane // grid.shape[1]
        c = plane % grid.shape[1]
        if c >= channels or rows == 0:
            memset(&grid[n, c, 0], 0, length * sizeof(floating))
            continue
        # each cell written once: the rows, and zeros only around them
        memset(&grid[n, c, 0], 0, start * sizeof(floating))
        if floating is float:
            _embed_rows_f(&grid[n, c, start], &src[n, c, 0, 0], rows, width,
                          src.strides[2] // sizeof(floating), grid_width - width)
        else:
            _embed_rows_d(&grid[n, c, start], &src[n, c, 0, 0], rows, width,
                          src.strides[2] // sizeof(floating), grid_width - width)
        end = start + (rows - 1) * grid_width + width
        memset(&grid[n, c, end], 0, (length - end) * sizeof(floating))


def embed_phases(const floating[:, :, :, ::1] src, floating[:, :, ::1] grid, Py_ssize_t top,
                 Py_ssize_t left, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t phase_h,
                 Py_ssize_t phase_w, Py_ssize_t phase_stride, Py_ssize_t row_stride,
                 int num_threads):
    """The strided layout: each plane padded by (top, left) and split into its sh·sw stride
    phases of phase_h × phase_w cells: padded cell (R, C) = (r + top, col + left) of
    src[n, c, r, col] goes to phase p = (R mod sh)·sw + C mod sw, cell (R div sh, C div sw),
    at p·phase_stride + (R div sh)·row_stride + C div sw. Either the phases are whole planes
    one after the other (phase_stride ≥ phase_h·row_stride, row_stride ≥ phase_w) or their
    rows are interleaved (row_stride ≥ sh·sw·phase_stride, phase_stride ≥ phase_w: row i of
    every phase, then row i + 1 of every phase). Every other cell is 0. Runs on
    ``num_threads`` threads, as ``embed``."""
    cdef Py_ssize_t channels = src.shape[1], rows = src.shape[2], width = src.shape[3]
    cdef Py_ssize_t length = grid.shape[2], phases = sh * sw
    cdef Py_ssize_t plane, n, c, r, R, b, col0, k, count
    cdef floating* dst
    cdef floating* odd
    cdef const floating* row
    cdef bint planes = phase_stride >= phase_h * row_stride and row_stride >= phase_w
    cdef bint interleaved = row_stride >= phases * phase_stride and phase_stride >= phase_w
    if (grid.shape[0] != src.shape[0] or grid.shape[1] != channels or sh < 1 or sw < 1
            or top < 0 or left < 0 or phase_h < 1 or phase_w < 1 or not (planes or interleaved)
            or (phases - 1) * phase_stride + (phase_h - 1) * row_stride + phase_w > length
            or (rows and (rows - 1 + top) // sh >= phase_h)
            or (width and (width - 1 + left) // sw >= phase_w)):
        raise ValueError(f"embed_phases: grid {_dims(grid.shape, 3)} ({sh}×{sw} phases of "
                         f"{phase_h}×{phase_w}, {phase_stride} apart, rows {row_stride} apart, "
                         f"padding {top}, {left}) cannot hold planes {_dims(src.shape, 4)}")
    cdef int nt = check_threads(num_threads)
    for plane in prange(src.shape[0] * channels, nogil=True, schedule="static",
                        num_threads=nt):
        n = plane // channels
        c = plane % channels
        memset(&grid[n, c, 0], 0, length * sizeof(floating))
        for r in range(rows):
            R = r + top
            row = &src[n, c, r, 0]
            if sw == 2:
                # one pass over the row: column col goes to phase (col + left) mod 2, cell
                # (col + left) div 2, so even columns fill one phase's run, odd ones the other's
                dst = &grid[n, c, ((R % sh) * 2 + left % 2) * phase_stride
                            + (R // sh) * row_stride + left // 2]
                odd = &grid[n, c, ((R % sh) * 2 + (left + 1) % 2) * phase_stride
                            + (R // sh) * row_stride + (left + 1) // 2]
                for k in range(width // 2):
                    dst[k] = row[2 * k]
                    odd[k] = row[2 * k + 1]
                if width % 2:
                    dst[width // 2] = row[width - 1]
                continue
            for b in range(sw):
                # the columns col ≡ b − left (mod sw) land on one contiguous run of phase b
                col0 = ((b - left) % sw + sw) % sw
                count = (width - col0 + sw - 1) // sw if col0 < width else 0
                dst = &grid[n, c, ((R % sh) * sw + b) * phase_stride + (R // sh) * row_stride
                            + (col0 + left) // sw]
                for k in range(count):
                    dst[k] = row[col0 + k * sw]


cdef extern from "conv_tile.h" nogil:
    void _conv_sums_f "minigrad_conv_sums_f" (
        const float* run_0, const float* run_1, const float* run_2, Py_ssize_t grid_length,
        const float* weight, const Py_ssize_t* shifts, Py_ssize_t channels, Py_ssize_t taps,
        Py_ssize_t first_tap, Py_ssize_t last_tap, float* result)
    void _conv_sums_d "minigrad_conv_sums_d" (
        const double* run_0, const double* run_1, const double* run_2, Py_ssize_t grid_length,
        const double* weight, const Py_ssize_t* shifts, Py_ssize_t channels, Py_ssize_t taps,
        Py_ssize_t first_tap, Py_ssize_t last_tap, double* result)
    void _conv_sums_stored_f "minigrad_conv_sums_stored_f" (
        const float* run_0, const float* run_1, const float* run_2, Py_ssize_t grid_length,
        const float* weight, const Py_ssize_t* shifts, Py_ssize_t channels, Py_ssize_t taps,
        Py_ssize_t first_tap, Py_ssize_t last_tap, float* out, Py_ssize_t out_rows,
        Py_ssize_t plane_stride, const float* bias, const Py_ssize_t* dst, const int* first,
        const int* count)
    void _conv_sums_stored_d "minigrad_conv_sums_stored_d" (
        const double* run_0, const double* run_1, const double* run_2, Py_ssize_t grid_length,
        const double* weight, const Py_ssize_t* shifts, Py_ssize_t channels, Py_ssize_t taps,
        Py_ssize_t first_tap, Py_ssize_t last_tap, double* out, Py_ssize_t out_rows,
        Py_ssize_t plane_stride, const double* bias, const Py_ssize_t* dst, const int* first,
        const int* count)
    enum:
        DIRECT_STORES "MINIGRAD_DIRECT_STORES"
    void _segment_f "minigrad_segment_f" (float* dst, const float* src, Py_ssize_t n,
                                          float offset)
    void _segment_d "minigrad_segment_d" (double* dst, const double* src, Py_ssize_t n,
                                          double offset)


cdef inline void _segment(floating* dst, const floating* src, Py_ssize_t n,
                          floating offset) noexcept nogil:
    """dst[i] = src[i] + offset for i < n (``conv_tile.h``)."""
    if floating is float:
        _segment_f(dst, src, n, offset)
    else:
        _segment_d(dst, src, n, offset)


cdef inline Py_ssize_t _row_offset(Py_ssize_t r, Py_ssize_t out_h, Py_ssize_t period,
                                   Py_ssize_t images, Py_ssize_t image_stride,
                                   Py_ssize_t row_stride) noexcept nogil:
    """Where output row r of the runs starts in out, or -1 where r is no output row: row r
    itself below out_h, or with ``period`` > 0 row r mod period of image r div period."""
    if period == 0:
        return r * row_stride if r < out_h else -1
    if r // period >= images or r % period >= out_h:
        return -1
    return (r // period) * image_stride + (r % period) * row_stride


cdef struct TilePlan:
    # what a tile of ``conv`` does besides its sums, the same for every image and block
    Py_ssize_t runs[2 * RUNS]       # each run's (row, column)
    Py_ssize_t n_runs
    Py_ssize_t at[RUNS]             # each run's first position (the last run again past n_runs)
    Py_ssize_t first_tap, last_tap  # the taps it sums
    bint direct                     # whether the segments below hold all its stores
    Py_ssize_t seg_dst[2 * RUNS]    # run s's segments 2s, 2s + 1: where in out each starts,
    int seg_first[2 * RUNS]         # its first position in the run
    int seg_count[2 * RUNS]         # and its length (0: none)


cdef void _tile_plan(TilePlan* plan, const Py_ssize_t* spread, Py_ssize_t run_step,
                     Py_ssize_t n_runs, Py_ssize_t taps, Py_ssize_t grid_width,
                     Py_ssize_t out_h, Py_ssize_t out_w, Py_ssize_t row_stride,
                     Py_ssize_t col_stride, Py_ssize_t period, Py_ssize_t images,
                     Py_ssize_t image_stride, const Py_ssize_t* spans) noexcept nogil:
    """``plan`` for a tile of ``n_runs`` (1 to RUNS) runs, run s starting at row spread[2s·
    run_step], column spread[2s·run_step + 1]; ``conv``'s geometry (``_conv_tile``). With
    ``spans``, it sums only the taps of the union of its rows' spans: row r's taps
    spans[2r] <= t < spans[2r + 1] (an empty span where the row stores nothing). Its stores
    go straight from the registers (``direct``) where each run crosses at most one row end
    among the outputs and out's cells are one element apart."""
    cdef Py_ssize_t s, r, col, x, step, valid, at_row, pair
    cdef int j
    plan.n_runs = n_runs
    for s in range(n_runs):
        plan.runs[2 * s] = spread[2 * s * run_step]
        plan.runs[2 * s + 1] = spread[2 * s * run_step + 1]
    for s in range(RUNS):
        pair = 2 * min(s, n_runs - 1)
        plan.at[s] = plan.runs[pair] * grid_width + plan.runs[pair + 1]
    plan.first_tap, plan.last_tap = 0, taps
    if spans != NULL:
        # the union of the spans of the rows the runs cross
        plan.first_tap, plan.last_tap = taps, 0
        for s in range(n_runs):
            # x: where row r starts among the run's positions
            r, x = plan.runs[2 * s], -plan.runs[2 * s + 1]
            while x < RUN:
                plan.first_tap = min(plan.first_tap, spans[2 * r])
                plan.last_tap = max(plan.last_tap, spans[2 * r + 1])
                x, r = x + grid_width, r + 1
        if plan.first_tap > plan.last_tap:
            plan.first_tap = plan.last_tap
    plan.direct = DIRECT_STORES and col_stride == 1
    for j in range(2 * RUNS):
        plan.seg_count[j] = 0
    for s in range(n_runs if plan.direct else 0):
        r, col, x, j = plan.runs[2 * s], plan.runs[2 * s + 1], 0, 2 * s
        while x < RUN:
            step = min(grid_width - col, RUN - x)
            valid = min(out_w - col, step)
            at_row = _row_offset(r, out_h, period, images, image_stride, row_stride)
            if valid > 0 and at_row >= 0:
                if j == 2 * s + 2:
                    plan.direct = False     # a third row: rows narrower than a run
                    return
                plan.seg_dst[j] = at_row + col
                plan.seg_first[j], plan.seg_count[j] = <int>x, <int>valid
                j = j + 1
            x = x + step
            col = col + step
            if col == grid_width:
                col = 0
                r = r + 1


cdef inline void _conv_tile(const floating* grid, Py_ssize_t grid_length,
                            const floating* weight, const Py_ssize_t* shifts,
                            Py_ssize_t channels, Py_ssize_t taps, floating* out,
                            Py_ssize_t out_rows, const floating* bias, TilePlan* plan,
                            Py_ssize_t grid_width, Py_ssize_t out_h, Py_ssize_t out_w,
                            Py_ssize_t plane_stride, Py_ssize_t row_stride,
                            Py_ssize_t col_stride, bint accumulate, Py_ssize_t period,
                            Py_ssize_t images, Py_ssize_t image_stride) noexcept nogil:
    """One tile (``plan``, ``_tile_plan``: its runs of RUN positions, run s at position a_s
    = row·grid_width + column) of ``out_rows`` (<= OB) output planes:

    tile[o][s·RUN + x] = Σ_c Σ_t weight[(c·taps + t)·OB + o] · grid[c·grid_length + shifts[t]
    + a_s + x], over the plan's taps, then position p = r·grid_width + col goes to
    out[o·plane_stride + r·row_stride + col·col_stride] (plus bias[o] unless ``bias`` is
    NULL; added to what is there if ``accumulate``) when r < out_h and col < out_w; with
    ``period`` > 0, row r is row r mod period of image r div period (``_row_offset``). A tile
    of fewer runs computes its last run again in the missing ones and does not store them."""
    cdef floating result[OB * XB]
    cdef Py_ssize_t t, o, x, s, r, col, step, valid, end, at_row, next_row
    cdef const Py_ssize_t* at = plan.at
    cdef const Py_ssize_t* runs = plan.runs
    cdef Py_ssize_t n_runs = plan.n_runs, first_tap = plan.first_tap
    cdef Py_ssize_t last_tap = plan.last_tap
    cdef floating* dst
    cdef floating offset
    if plan.direct and not accumulate:
        if floating is float:
            _conv_sums_stored_f(grid + at[0], grid + at[1], grid + at[2], grid_length, weight,
                                shifts, channels, taps, first_tap, last_tap, out, out_rows,
                                plane_stride, bias, plan.seg_dst, plan.seg_first,
                                plan.seg_count)
        else:
            _conv_sums_stored_d(grid + at[0], grid + at[1], grid + at[2], grid_length, weight,
                                shifts, channels, taps, first_tap, last_tap, out, out_rows,
                                plane_stride, bias, plan.seg_dst, plan.seg_first,
                                plan.seg_count)
        return
    if floating is float:
        _conv_sums_f(grid + at[0], grid + at[1], grid + at[2], grid_length, weight, shifts,
                     channels, taps, first_tap, last_tap, result)
    else:
        _conv_sums_d(grid + at[0], grid + at[1], grid + at[2], grid_length, weight, shifts,
                     channels, taps, first_tap, last_tap, result)
    # store each run row segment by row segment: positions [x, x + step) lie on one grid row
    for s in range(n_runs):
        r = runs[2 * s]
        col = runs[2 * s + 1]
        x = s * RUN
        end = x + RUN
        at_row = _row_offset(r, out_h, period, images, image_stride, row_stride)
        if col + RUN <= out_w and at_row >= 0 and col_stride == 1 and not accumulate:
            # the common case, a run inside one output row: a loop of constant length
            for o in range(out_rows):
                offset = bias[o] if bias != NULL else 0
                dst = out + o * plane_stride + at_row + col
                for t in range(RUN):
                    dst[t] = result[o * XB + x + t] + offset
            continue
        step = grid_width - col
        next_row = -1
        if (col_stride == 1 and not accumulate and col < out_w and step < RUN
                and at_row >= 0 and RUN - step <= out_w):
            next_row = _row_offset(r + 1, out_h, period, images, image_stride, row_stride)
        if next_row >= 0:
            # a run that ends in the next output row: the rest of row r, then the start of
            # row r + 1 (the padding columns between them skipped)
            valid = out_w - col
            for o in range(out_rows):
                offset = bias[o] if bias != NULL else 0
                _segment(out + o * plane_stride + at_row + col, &result[o * XB + x], valid,
                         offset)
                _segment(out + o * plane_stride + next_row, &result[o * XB + x + step],
                         RUN - step, offset)
            continue
        while x < end:
            step = min(grid_width - col, end - x)
            valid = min(out_w - col, step)
            at_row = _row_offset(r, out_h, period, images, image_stride, row_stride)
            for o in range(out_rows if at_row >= 0 else 0):
                offset = bias[o] if bias != NULL else 0
                dst = out + o * plane_stride + at_row + col * col_stride
                if accumulate:
                    for t in range(valid):
                        dst[t * col_stride] += result[o * XB + x + t] + offset
                elif col_stride == 1:
                    _segment(dst, &result[o * XB + x], valid, offset)
                else:
                    for t in range(valid):
                        dst[t * col_stride] = result[o * XB + x + t] + offset
            x = x + step
            col = col + step
            if col == grid_width:
                col = 0
                r = r + 1


# weights of fewer elements are packed (and weight-gradient partials of fewer totalled) on
# one thread: a pass over memory this small does not pay for the team
cdef Py_ssize_t PACK_PARALLEL_MIN = 1 << 16


cdef extern from "transpose16.h" nogil:
    void _transpose16 "minigrad_transpose16" (const float** src, float** dst)


cdef inline Py_ssize_t _packed_row(Py_ssize_t column, Py_ssize_t taps, Py_ssize_t channels,
                                   bint tap_major) noexcept nogil:
    """The row of a packed block that weight column c·T + t goes to: itself, or t·C + c."""
    return (column % taps) * channels + column // taps if tap_major else column


cdef void _pack_group16(const float* weight, Py_ssize_t rows, Py_ssize_t columns,
                        Py_ssize_t group, float* packed, Py_ssize_t block, Py_ssize_t taps,
                        bint tap_major) noexcept nogil:
    """``pack_weight`` for rows 16·group … 16·group + 15 of a C-contiguous float32 weight
    (R, columns = C·T) into blocks of 16 or 32 rows: 16 columns at a time by a register
    transpose, each of whose rows (one column's 16 weights) is 16 consecutive entries of a
    block; the rest of the columns one by one."""
    cdef float zeros[16]
    cdef const float* src[16]
    cdef float* dst[16]
    cdef Py_ssize_t i, j, c0, row
    cdef Py_ssize_t full = columns - columns % 16
    cdef Py_ssize_t b = group * 16 // block, lane = group * 16 % block
    memset(zeros, 0, sizeof(zeros))
    for c0 in range(0, full, 16):
        for i in range(16):
            row = group * 16 + i
            src[i] = weight + row * columns + c0 if row < rows else zeros
            dst[i] = packed + (b * columns + _packed_row(c0 + i, taps, columns // taps,
                                                         tap_major)) * block + lane
        _transpose16(src, dst)
    for i in range(16):
        row = group * 16 + i
        for j in range(full, columns):
            packed[(b * columns + _packed_row(j, taps, columns // taps, tap_major)) * block
                   + lane + i] = weight[row * columns + j] if row < rows else 0


def pack_weight(const floating[:, :, :] weight, floating[:, :, ::1] packed,
                int num_threads=1, bint tap_major=False):
    """packed[b, c·T + t, o] = weight[b·B + o, c, t] (with ``tap_major``, packed[b, t·C + c,
    o]: the two-row lane tiles read a tap's weights channel after channel), zero for rows
    b·B + o past the last: the (R, C, T) weight (any strides) as (ceil(R/B), C·T, B) blocks
    of B = packed.shape[2] rows: OB for ``conv``, ``lane_block`` for ``conv_lanes``. A block
    per work item, its channels a few at a time so that the rows they fill stay in cache
    while each weight row is read along."""
    cdef Py_ssize_t rows = weight.shape[0], channels = weight.shape[1], taps = weight.shape[2]
    cdef Py_ssize_t block = packed.shape[2], b
    if (block < 1 or packed.shape[0] != (rows + block - 1) // block
            or packed.shape[1] != channels * taps):
        raise ValueError(f"pack_weight: inconsistent shapes weight {_dims(weight.shape, 3)}, "
                         f"packed {_dims(packed.shape, 3)}")
    # channels per pass: about 16 KB of packed rows
    cdef Py_ssize_t per_pass = max(1, 4096 // max(1, taps * block))
    cdef int nt = team_size(rows * channels * taps, PACK_PARALLEL_MIN, num_threads)
    cdef Py_ssize_t groups = (packed.shape[0] * block + 15) // 16, g
    if (floating is float and block in (16, 32) and rows > 0 and channels * taps > 0
            and weight.strides[2] == sizeof(float)
            and weight.strides[1] == taps * sizeof(float)
            and weight.strides[0] == channels * taps * sizeof(float)):
        # C-contiguous float32 rows into blocks a whole number of 16 rows: by 16×16 register
        # transposes (on one thread without a parallel region, which costs as much as a small
        # layer's packing)
        if nt == 1:
            with nogil:
                for g in range(groups):
                    _pack_group16(<const float*>&weight[0, 0, 0], rows, channels * taps, g,
                                  <float*>&packed[0, 0, 0], block, taps, tap_major)
            return
        for g in prange(groups, nogil=True, schedule="static", num_threads=nt):
            _pack_group16(<const float*>&weight[0, 0, 0], rows, channels * taps, g,
                          <float*>&packed[0, 0, 0], block, taps, tap_major)
        return
    if nt == 1:
        with nogil:
            for b in range(packed.shape[0]):
                _pack_block(weight, packed, b, per_pass, tap_major)
        return
    for b in prange(packed.shape[0], nogil=True, schedule="static", num_threads=nt):
        _pack_block(weight, packed, b, per_pass, tap_major)


cdef inline void _pack_block(const floating[:, :, :] weight, floating[:, :, ::1] packed,
                             Py_ssize_t b, Py_ssize_t per_pass, bint tap_major) noexcept nogil:
    """``pack_weight``'s block b, ``per_pass`` channels at a time."""
    cdef Py_ssize_t rows = weight.shape[0], channels = weight.shape[1], taps = weight.shape[2]
    cdef Py_ssize_t block = packed.shape[2], c, c0, k, t, o, row
    for k in range((channels + per_pass - 1) // per_pass):
        c0 = k * per_pass
        for o in range(block):
            row = b * block + o
            for c in range(c0, min(channels, c0 + per_pass)):
                for t in range(taps):
                    packed[b, _packed_row(c * taps + t, taps, channels, tap_major), o] = \
                        weight[row, c, t] if row < rows else 0


def conv(const floating[:, :, :] grid, const floating[:, :, ::1] packed_weight,
         const Py_ssize_t[::1] shifts, floating[:, :, :, :] out, const floating[::1] bias,
         Py_ssize_t grid_width, Py_ssize_t start, const Py_ssize_t[:, ::1] runs,
         Py_ssize_t channel_chunk, int num_threads, Py_ssize_t period=0,
         const Py_ssize_t[:, ::1] row_taps=None, bint interleave=False):
    """out[n, o, r, col] = bias[o] + Σ_c Σ_t W[o, c, t] · grid[n, c, start + r·grid_width + col
    + shifts[t]] for r < Ho, col < Wo, with W packed as (blocks, C·T, OB) (``conv_direct._pack``).

    With ``period`` > 0 the grid holds one tall plane per channel (grid.shape[0] == 1) in
    which the N images' planes are stacked ``period`` rows apart: row r of the runs is then
    row r mod period of image r div period, and the rows from Ho to ``period`` of each image
    are computed but not stored.

    ``bias`` may be empty (no bias). ``out`` may be a strided view (positive strides: the input
    gradient of a strided convolution writes one phase's cells of x's gradient in place).

    ``runs`` (n, 2) lists the (row, column) where each run of POSITION_RUN consecutive
    positions that the tiles compute starts (RUNS runs per tile), increasing without overlap;
    together they must cover every output position r·grid_width + col
    (``conv_direct.position_runs``), and ``check_reads`` must hold for the grid's length up
    to the end of the last run.

    ``row_taps`` (Ho, 2), if given, limits output row r's sums to taps row_taps[r, 0] <= t <
    row_taps[r, 1] (in the image's rows, with ``period``): the caller's promise that the
    others read only zeros there (whole padding rows). A tile sums the union of its rows'
    ranges. With ``interleave`` (``period`` > 0, the runs a whole number R per image), the
    tiles take the runs of RUNS images at a time, run i of each (the same row, when each
    run is a row, so that the union skips as much as each), and those of the last images
    that do not fill a group in order.

    The channels are summed ``channel_chunk`` at a time over a band of BAND tiles, each chunk
    added to the band's output: the rows a tile reads for all its channels (and their
    weights) must stay in L1 for the next tile, which reads them again one tile further on.
    The order of the sums depends only on the shapes, not on the thread count."""
    cdef Py_ssize_t n_images = out.shape[0], out_channels = out.shape[1]
    cdef Py_ssize_t out_h = out.shape[2], out_w = out.shape[3]
    cdef Py_ssize_t grid_images = 1 if period else n_images
    cdef Py_ssize_t grid_length = grid.shape[2], taps = shifts.shape[0]
    cdef Py_ssize_t blocks = packed_weight.shape[0]
    cdef Py_ssize_t channels = packed_weight.shape[1] // taps if taps else 0
    cdef Py_ssize_t n_runs = runs.shape[0], i
    cdef Py_ssize_t tiles = (n_runs + RUNS - 1) // RUNS
    cdef bint has_bias = bias.shape[0] > 0
    cdef Py_ssize_t item, n, b, tile, run_step
    if period < 0 or (period and period < out_h):
        raise ValueError(f"conv: planes of {out_h} rows cannot be stacked {period} rows apart")
    if (grid.shape[0] != grid_images or taps == 0 or packed_weight.shape[1] != channels * taps
            or grid.shape[1] < channels or packed_weight.shape[2] != OB or blocks * OB < out_channels
            or (has_bias and bias.shape[0] != out_channels) or n_runs == 0):
        raise ValueError(f"conv: inconsistent shapes grid {_dims(grid.shape, 3)}, packed "
                         f"weight {_dims(packed_weight.shape, 3)}, {taps} shifts, out "
                         f"{_dims(out.shape, 4)}, bias {_dims(bias.shape, 1)}, {n_runs} runs")
    _check_planes("conv: grid", grid.shape, grid.strides, 3, sizeof(floating))
    cdef int axis
    for axis in range(1, 4):
        if out.shape[axis] > 1 and (out.strides[axis] <= 0 or out.strides[axis] % sizeof(floating)):
            raise ValueError(f"conv: out must have positive strides in whole elements, got "
                             f"strides {_dims(out.strides, 4)}")
    cdef Py_ssize_t plane_stride = out.strides[1] // sizeof(floating)
    cdef Py_ssize_t row_stride = out.strides[2] // sizeof(floating)
    cdef Py_ssize_t col_stride = out.strides[3] // sizeof(floating)
    if grid_width < 1:
        raise ValueError(f"conv: grid_width must be positive, got {grid_width}")
    if out_w > grid_width:
        raise ValueError(f"conv: output width {out_w} exceeds the grid width {grid_width}")
    cdef Py_ssize_t image_stride = out.strides[0] // sizeof(floating)
    if period and n_images > 1 and (out.strides[0] <= 0 or out.strides[0] % sizeof(floating)):
        raise ValueError(f"conv: out must have positive strides in whole elements, got "
                         f"strides {_dims(out.strides, 4)}")
    cdef Py_ssize_t covered = 0, p, first, last = 0
    if runs.shape[1] != 2:
        raise ValueError(f"conv: runs must be (row, column) pairs, got shape "
                         f"{_dims(runs.shape, 2)}")
    cdef Py_ssize_t r, col, step
    for i in range(n_runs):
        first = runs[i, 0] * grid_width + runs[i, 1]
        if (runs[i, 0] < 0 or runs[i, 1] < 0 or runs[i, 1] >= grid_width
                or (i > 0 and first < last + RUN)):
            raise ValueError(f"conv: runs must start in the grid's rows, each at least {RUN} "
                             f"positions after the one before, got ({runs[i, 0]}, "
                             f"{runs[i, 1]}) on rows {grid_width} wide after position "
                             f"{last if i else None}")
        last = first
        # the run's outputs, one row segment at a time
        r, col, p = runs[i, 0], runs[i, 1], 0
        while p < RUN:
            step = min(grid_width - col, RUN - p)
            if _row_offset(r, out_h, period, n_images, 0, 0) >= 0:
                covered += max(0, min(out_w - col, step))
            p, col, r = p + step, 0, r + 1
    if covered != out_h * out_w * (n_images if period else 1):
        raise ValueError(f"conv: the runs cover {covered} of the "
                         f"{n_images if period else 1}×{out_h}×{out_w} outputs")
    # the runs increase: the last one reads furthest
    _check_reads(grid_length, start, last + RUN, &shifts[0], taps)
    if channel_chunk < 1:
        raise ValueError(f"conv: channel_chunk must be positive, got {channel_chunk}")
    cdef Py_ssize_t* spans = NULL
    cdef Py_ssize_t span_rows, k
    if row_taps is not None:
        if row_taps.shape[0] != out_h or row_taps.shape[1] != 2:
            raise ValueError(f"conv: row_taps must be ({out_h}, 2), got "
                             f"{_dims(row_taps.shape, 2)}")
        for i in range(out_h):
            if not 0 <= row_taps[i, 0] <= row_taps[i, 1] <= taps:
                raise ValueError(f"conv: row_taps[{i}] = ({row_taps[i, 0]}, "
                                 f"{row_taps[i, 1]}) is no range of {taps} taps")
    # interleaved: `groups` tiles of RUNS images, R runs each, then the rest's runs in order
    cdef Py_ssize_t per_image = 0, groups = 0, rest = 0
    if interleave:
        if period == 0 or n_runs % n_images:
            raise ValueError(f"conv: interleave needs stacked images (period > 0) and a "
                             f"whole number of runs per image, got period {period} and "
                             f"{n_runs} runs for {n_images} images")
        per_image = n_runs // n_images
        groups = n_images // RUNS
        rest = groups * RUNS * per_image
        tiles = groups * per_image + (n_runs - rest + RUNS - 1) // RUNS
    cdef Py_ssize_t count
    cdef int nt = team_size(grid_images * blocks * tiles * XB * OB * channels * taps,
                            PARALLEL_MIN_MACS, num_threads)
    cdef Py_ssize_t bands = (tiles + BAND - 1) // BAND, band_tiles = BAND, band, c0
    if period:
        # One tall plane: bands of equal size, a whole number per thread, taken band by band
        # (all blocks of one, then the next), so that each thread reads its own share of the
        # images (which it embedded) and all finish together.
        bands = (bands + nt - 1) // nt * nt
        band_tiles = (tiles + bands - 1) // bands
        bands = (tiles + band_tiles - 1) // band_tiles
    if row_taps is not None:
        # each row the runs cross (the last run, furthest, ends in the last): its image
        # row's span where it stores outputs, else an empty one
        span_rows = (last + RUN - 1) // grid_width + 1
        spans = <Py_ssize_t*>malloc(2 * span_rows * sizeof(Py_ssize_t))
        if spans == NULL:
            raise MemoryError()
        for r in range(span_rows):
            spans[2 * r], spans[2 * r + 1] = taps, 0
        for n in range(n_images if period else 1):
            for k in range(out_h):
                r = n * period + k
                if r < span_rows:
                    spans[2 * r] = row_taps[k, 0]
                    spans[2 * r + 1] = row_taps[k, 1]
    # each tile's runs, taps and stores, worked out once rather than for every image and block
    cdef TilePlan* plans = <TilePlan*>malloc(tiles * sizeof(TilePlan))
    if plans == NULL:
        free(spans)
        raise MemoryError()
    for tile in range(tiles):
        if tile < groups * per_image:
            # run (tile mod R) of images RUNS·g to RUNS·g + RUNS − 1: R runs apart
            i = (tile // per_image) * RUNS * per_image + tile % per_image
            count, run_step = RUNS, per_image
        else:
            i = rest + (tile - groups * per_image) * RUNS
            count, run_step = min(RUNS, n_runs - i), 1
        _tile_plan(&plans[tile], &runs[i, 0], run_step, count, taps, grid_width, out_h, out_w,
                   row_stride, col_stride, period, n_images, image_stride, spans)
    for item in prange(grid_images * blocks * bands, nogil=True, schedule="static",
                       num_threads=nt):
        n = item // (blocks * bands)
        if period:
            band = (item // blocks) % bands
            b = item % blocks
        else:
            b = (item // bands) % blocks
            band = item % bands
        c0 = 0
        while c0 < channels:
            for tile in range(band * band_tiles, min(tiles, (band + 1) * band_tiles)):
                _conv_tile(&grid[n, c0, start], grid_length,
                           &packed_weight[b, c0 * taps, 0], &shifts[0],
                           min(channel_chunk, channels - c0), taps, &out[n, b * OB, 0, 0],
                           min(OB, out_channels - b * OB),
                           &bias[b * OB] if has_bias and c0 == 0 else NULL, &plans[tile],
                           grid_width, out_h, out_w, plane_stride, row_stride, col_stride,
                           c0 > 0, period, n_images, image_stride)
            c0 = c0 + channel_chunk
    free(spans)
    free(plans)


cdef extern from "lane_tile.h" nogil:
    enum:
        LANES_BUILT "MINIGRAD_LANES"
        LANE_MAX_TAPS "MINIGRAD_LANE_MAX_TAPS"
        LANE_LISTS "MINIGRAD_LANE_LISTS"
        LANE_COLUMN_KINDS "MINIGRAD_LANE_COLUMN_KINDS"
        ZEN_TUNED "MINIGRAD_ZEN"
    void _lanes_f "minigrad_lanes_f" (
        int width, int vectors, int step, const float* grid, Py_ssize_t grid_length,
        Py_ssize_t grid_width, const float* weight, const Py_ssize_t* shifts,
        Py_ssize_t channels, Py_ssize_t taps, const int* taps_of, const int* counts,
        float* result)
    void _lanes_d "minigrad_lanes_d" (
        int width, int vectors, int step, const double* grid, Py_ssize_t grid_length,
        Py_ssize_t grid_width, const double* weight, const Py_ssize_t* shifts,
        Py_ssize_t channels, Py_ssize_t taps, const int* taps_of, const int* counts,
        double* result)

cdef extern from "lane_store.h" nogil:
    bint _lane_store_f "minigrad_lane_store_f" (
        int width, int vectors, int rows, const float* result, float* out,
        Py_ssize_t plane_stride, Py_ssize_t row_stride, const float* bias)

cdef enum:
    LANE_POSITIONS = 14     # outputs per lane tile: one row of 14 (or 8), or two rows of 7
    LANE_BYTES = 128        # output channels per lane tile: two 64-byte vectors of them
    LANE_RESULT = 448       # LANE_POSITIONS · LANE_BYTES / 4: a tile's sums in float32

#: Whether the lane tile (``lane_tile.h``, output channels in the vector lanes) is built: with
#: AVX-512 only.
LANE_TILE = bool(LANES_BUILT)
#: The output widths the lane tile takes (rows of 7 and of 4 take two rows per tile).
LANE_WIDTHS = (4, 7, 8, LANE_POSITIONS)
#: The most taps a kernel may have on the lane tile.
LANE_TAPS = LANE_MAX_TAPS
#: Whether the kernels were compiled for AMD's Zen (GCC's znver tuning, which -march=native
#: picks there): some rules were measured both on Zen 4 and on an Intel Xeon, whose two
#: 512-bit FMAs a cycle favour the direct kernels (docs/algorithms.md).
ZEN = bool(ZEN_TUNED)


def team(Py_ssize_t macs, int num_threads):
    """The threads a convolution of ``macs`` multiply-adds runs on: ``num_threads``, or 1 below
    ``PARALLEL_MIN_MACS``. Its grids are embedded by the same team."""
    return team_size(macs, PARALLEL_MIN_MACS, num_threads)


def lane_tile_width(out_width):
    """The tile width the lane tile takes outputs ``out_width`` wide in: 7 or 4 (two rows of
    them) for 7 or 4, else 14 or 8 where the row is a whole number of such tiles (14 first:
    more positions per weight load), else 0 (not on the lane tile)."""
    if out_width in (4, 7):
        return out_width
    if out_width > 0 and out_width % LANE_POSITIONS == 0:
        return LANE_POSITIONS
    if out_width > 0 and out_width % 8 == 0:
        return 8
    return 0


def lane_tile_rows(out_width, vectors):
    """The rows of a lane tile on outputs ``out_width`` wide with ``vectors`` vectors of
    output channels: two (on rows 7 or 4 wide, or with one vector), else one. A two-row tile
    reads its weights packed tap by tap (``pack_weight``'s ``tap_major``)."""
    return 2 if vectors == 1 or lane_tile_width(out_width) in (4, 7) else 1


def lane_block(itemsize, vectors=2):
    """Output channels per lane tile (and per block of its packed weight) for elements of
    ``itemsize`` bytes, with ``vectors`` (1 or 2) vectors of them: 32 float32 or 16 float64
    with two, half that with one."""
    if vectors not in (1, 2):
        raise ValueError(f"lane_block: vectors must be 1 or 2, got {vectors!r}")
    return LANE_BYTES // 2 * vectors // itemsize


cdef inline int _lane_columns(Py_ssize_t before, Py_ssize_t after,
                              Py_ssize_t width) noexcept nogil:
    """The kind of columns a tap reads in a lane tile ``width`` wide with ``before`` of its
    first columns and ``after`` of its last outside the plane (lane_tile.h's lists): none
    (−1, the tap is skipped), every one (0), all but the first (1) or the last (2), all but
    the first two (3) or the last two (4). Columns past those it skips read padding zeros of
    a grid."""
    if before >= width or after >= width:
        return -1
    if before >= 2:
        return 3
    if before == 1:
        return 1
    if after >= 2:
        return 4
    return 2 if after == 1 else 0


cdef enum:
    # one tile's tap lists (lane_tile.h): LANE_LISTS lists of up to LANE_MAX_TAPS taps, then
    # their LANE_LISTS counts
    LANE_LISTS_SIZE = LANE_LISTS * LANE_MAX_TAPS + LANE_LISTS


cdef void _lane_lists(const Py_ssize_t* offsets, Py_ssize_t taps, Py_ssize_t first_row,
                      Py_ssize_t last_row, Py_ssize_t first_col, Py_ssize_t last_col,
                      int width, bint two_rows, Py_ssize_t rows, int* lists) noexcept nogil:
    """A lane tile's tap lists (``lane_tile.h``; ``LANE_LISTS_SIZE`` ints): the tile, its
    bounds relative to its first output as ``_lane_tile`` takes them, is ``width`` wide with
    ``rows`` rows (of two with ``two_rows``); tap t goes in the list of the rows and columns
    it reads inside the plane, or in none. Each list holds its taps in order."""
    cdef int* counts = lists + LANE_LISTS * LANE_MAX_TAPS
    cdef Py_ssize_t j, t, list_, dr, dc
    cdef int columns
    cdef bint reads_first, reads_second
    for j in range(LANE_LISTS):
        counts[j] = 0
    for t in range(taps):
        dr, dc = offsets[2 * t], offsets[2 * t + 1]
        reads_first = first_row <= dr < last_row
        reads_second = two_rows and rows == 2 and first_row <= dr + 1 < last_row
        # which columns of [first_col - dc, last_col - dc) inside [0, width) it reads
        columns = _lane_columns(first_col - dc, dc + width - last_col, width)
        if not (reads_first or reads_second) or columns < 0:
            continue
        # every row, the first only, the second only
        list_ = 0 if reads_first == reads_second or not two_rows else (1 if reads_first else 2)
        list_ = list_ * LANE_COLUMN_KINDS + columns
        lists[list_ * LANE_MAX_TAPS + counts[list_]] = <int>t
        counts[list_] += 1


cdef inline Py_ssize_t _lane_class(Py_ssize_t index, Py_ssize_t low,
                                   Py_ssize_t high) noexcept nogil:
    """The class of tile row (or column) ``index`` where those from ``low`` to ``high`` (none
    if high < low) share one; every other has its own."""
    if high < low or index <= low:
        return index
    return low if index <= high else index - (high - low)


cdef inline Py_ssize_t _lane_classes(Py_ssize_t count, Py_ssize_t low,
                                     Py_ssize_t high) noexcept nogil:
    """How many classes ``count`` tile rows (or columns) fall in (``_lane_class``)."""
    return _lane_class(count - 1, low, high) + 1


cdef inline Py_ssize_t _lane_member(Py_ssize_t klass, Py_ssize_t low,
                                    Py_ssize_t high) noexcept nogil:
    """A tile row (or column) of class ``klass`` (``_lane_class``)."""
    return klass if high < low or klass <= low else klass + (high - low)


cdef void _lane_inner(const Py_ssize_t* offsets, Py_ssize_t taps, Py_ssize_t first,
                      Py_ssize_t last, Py_ssize_t count, Py_ssize_t size, Py_ssize_t outputs,
                      bint rows, Py_ssize_t* low, Py_ssize_t* high) noexcept nogil:
    """[low, high]: the tile rows (``rows``; else columns) of ``size`` outputs, of ``count``
    in all over ``outputs`` outputs, where every tap reads inside [first, last) from each of
    the tile's ``size`` rows (or columns): no padding in reach. They are contiguous."""
    cdef Py_ssize_t i, t, at, d
    cdef bint inner
    low[0], high[0] = 0, -1
    for i in range(count):
        at = i * size
        inner = at + size <= outputs
        for t in range(taps):
            d = offsets[2 * t] if rows else offsets[2 * t + 1]
            if not (first <= at + d and at + d + size <= last):
                inner = False
                break
        if inner:
            if high[0] < low[0]:
                low[0] = i
            high[0] = i


cdef int* _lane_class_lists(const Py_ssize_t* offsets, Py_ssize_t taps, Py_ssize_t first_row,
                            Py_ssize_t last_row, Py_ssize_t first_col, Py_ssize_t last_col,
                            Py_ssize_t out_h, Py_ssize_t out_w, int width,
                            Py_ssize_t tile_rows, Py_ssize_t* bounds) except NULL:
    """The tap lists of every class of lane tiles, in a new array (free it): row class ·
    column classes + column class, ``LANE_LISTS_SIZE`` ints each; ``bounds`` gets the tile
    rows and the tile columns that read no padding (low row, high row, low column, high
    column), each range one class (``_lane_class``). A tile's lists depend only on where its
    rows and its columns lie against the padding, so those of one such tile serve all."""
    cdef Py_ssize_t row_tiles = (out_h + tile_rows - 1) // tile_rows, col_tiles = out_w // width
    cdef Py_ssize_t row_classes, col_classes, i, j, r, col
    # a row tile inside reads both rows of every tap's window: its lists are those of a row
    # tile of tile_rows rows whose taps read from all of them
    _lane_inner(offsets, taps, first_row, last_row, row_tiles, tile_rows, out_h, True,
                &bounds[0], &bounds[1])
    _lane_inner(offsets, taps, first_col, last_col, col_tiles, width, out_w, False,
                &bounds[2], &bounds[3])
    row_classes = _lane_classes(row_tiles, bounds[0], bounds[1])
    col_classes = _lane_classes(col_tiles, bounds[2], bounds[3])
    cdef int* lists = <int*>malloc(row_classes * col_classes * LANE_LISTS_SIZE * sizeof(int))
    if lists == NULL:
        raise MemoryError()
    for i in range(row_classes):
        r = _lane_member(i, bounds[0], bounds[1]) * tile_rows
        for j in range(col_classes):
            col = _lane_member(j, bounds[2], bounds[3]) * width
            _lane_lists(offsets, taps, first_row - r, last_row - r, first_col - col,
                        last_col - col, width, tile_rows == 2, min(tile_rows, out_h - r),
                        lists + (i * col_classes + j) * LANE_LISTS_SIZE)
    return lists


cdef inline void _lane_tile(const floating* grid, Py_ssize_t grid_length,
                            Py_ssize_t grid_width, const floating* weight,
                            const Py_ssize_t* shifts, const int* lists, Py_ssize_t channels,
                            Py_ssize_t taps, int width, int vectors, int step,
                            Py_ssize_t tile_rows, Py_ssize_t rows, floating* out,
                            Py_ssize_t out_rows, Py_ssize_t plane_stride,
                            Py_ssize_t row_stride, const floating* bias) noexcept nogil:
    """One lane tile whose first output sits at grid position 0 and at out[0]: ``width``
    outputs (14, 8, 7 or 4) of ``rows`` rows (at most ``tile_rows``, 1 or 2), of ``out_rows``
    (at most the block of ``vectors`` vectors) output planes, plus bias[j] unless ``bias``
    is NULL; its cells ``step`` (1 or 2) apart along a row of the grid. It sums the taps of
    its ``lists`` (``_lane_lists``), skipping the products they would take from padding
    rows and from a row's first or last one or two columns."""
    cdef floating result[LANE_RESULT]
    cdef const int* taps_of = lists
    cdef const int* counts = lists + LANE_LISTS * LANE_MAX_TAPS
    cdef Py_ssize_t block = LANE_BYTES // 2 * vectors // sizeof(floating), j, p
    cdef bint two_rows = tile_rows == 2
    cdef floating offset
    cdef floating* dst
    if floating is float:
        _lanes_f(width, vectors, step, grid, grid_length, grid_width, weight, shifts, channels,
                 taps, taps_of, counts, result)
        # whole tiles of 16 vectors of sums: a vector at a time
        if (out_rows == block and rows == tile_rows
                and _lane_store_f(width, vectors, rows, result, out, plane_stride, row_stride,
                                  bias)):
            return
    else:
        _lanes_d(width, vectors, step, grid, grid_length, grid_width, weight, shifts, channels,
                 taps, taps_of, counts, result)
    for j in range(out_rows):
        offset = bias[j] if bias != NULL else 0
        dst = out + j * plane_stride
        for p in range(width):
            dst[p] = result[p * block + j] + offset
        if two_rows and rows == 2:
            for p in range(width):
                dst[row_stride + p] = result[(width + p) * block + j] + offset


def conv_lanes(const floating[:, :, :] grid, const floating[:, :, ::1] packed_weight,
               const Py_ssize_t[::1] shifts, const Py_ssize_t[:, ::1] offsets, tuple inside,
               floating[:, :, :, ::1] out, const floating[::1] bias, Py_ssize_t grid_width,
               Py_ssize_t start, int num_threads, int step=1, bint tap_major=False):
    """``conv`` with the lane tile, for outputs 4 or 7 wide or a whole number of 14 or 8
    (``lane_tile_width``): out[n, o, r, col] = bias[o] +
    Σ_c Σ_t W[o, c, t] · grid[n, c, start + r·grid_width + col·step + shifts[t]], W packed as
    (blocks, C·T, B): packed[b, c·T + t, j] = W[b·B + j, c, t], zero past the last output
    channel, B = ``lane_block(itemsize, vectors)`` (two vectors, or one); for two-row tiles
    (``lane_tile_rows``) packed tap by tap instead, packed[b, t·C + c, j] (``tap_major``,
    which the caller states). With ``inside`` =
    (first_row, last_row, first_col, last_col) and tap t's (row, column) offsets (T, 2), the
    grid holds zeros wherever tap t at output (r, col) reads outside first_row ≤ r +
    offsets[t, 0] < last_row, first_col ≤ col + offsets[t, 1] < last_col (its padding), so
    those products are skipped: those of whole rows, and of a row's first or last one or two
    columns.
    Where those are all the products outside, ``grid`` may be the input itself, its planes
    flat (``conv_direct.DirectPlan.in_place``): cells ``step`` apart (1 or 2: a stride of
    2), rows ``grid_width`` apart, negative shifts. Only the cells the tiles read must lie
    in the planes (``check_lane_reads``).

    A tile is 14 or 8 outputs of one row or, on 7- or 4-wide outputs or with one vector of
    output channels, two rows (on an odd number of rows the last tile has one), times one
    block of output channels, summed over all channels in registers. Work items are (image,
    block, tile row, tile column), each written by one thread: the result does not depend on
    the thread count."""
    cdef Py_ssize_t n_images = out.shape[0], out_channels = out.shape[1]
    cdef Py_ssize_t out_h = out.shape[2], out_w = out.shape[3]
    cdef Py_ssize_t taps = shifts.shape[0], grid_length = grid.shape[2]
    cdef Py_ssize_t block = packed_weight.shape[2], blocks = packed_weight.shape[0]
    cdef Py_ssize_t channels = packed_weight.shape[1] // taps if taps else 0
    cdef bint has_bias = bias.shape[0] > 0
    # one vector of output channels: two rows of any width; two vectors: two rows of 7 or 4
    cdef int vectors = 1 if block * sizeof(floating) * 2 == LANE_BYTES else 2
    cdef int tile_width = lane_tile_width(out_w)
    cdef Py_ssize_t tile_rows = lane_tile_rows(out_w, vectors)
    cdef Py_ssize_t first_row, last_row, first_col, last_col
    if not LANES_BUILT:
        raise RuntimeError("conv_lanes: the lane tile is built with AVX-512 only")
    if tile_width == 0:
        raise ValueError(f"conv_lanes: outputs must be 4 or 7 wide or a multiple of 14 or 8 "
                         f"wide, got {out_w}")
    if taps > LANE_MAX_TAPS:
        raise ValueError(f"conv_lanes: at most {LANE_MAX_TAPS} taps, got {taps}")
    if step not in (1, 2):
        raise ValueError(f"conv_lanes: step must be 1 or 2, got {step}")
    if len(inside) != 4:
        raise ValueError(f"conv_lanes: inside must be (first_row, last_row, first_col, "
                         f"last_col), got {inside!r}")
    first_row, last_row, first_col, last_col = inside
    if (grid.shape[0] != n_images or taps == 0 or packed_weight.shape[1] != channels * taps
            or offsets.shape[0] != taps or offsets.shape[1] != 2
            or grid.shape[1] < channels or block * sizeof(floating) * 2 != vectors * LANE_BYTES
            or blocks * block < out_channels or out_w > grid_width
            or (has_bias and bias.shape[0] != out_channels)):
        raise ValueError(f"conv_lanes: inconsistent shapes grid {_dims(grid.shape, 3)} (rows "
                         f"{grid_width} wide), packed weight {_dims(packed_weight.shape, 3)}, "
                         f"{taps} shifts, offsets {_dims(offsets.shape, 2)}, out "
                         f"{_dims(out.shape, 4)}, bias {_dims(bias.shape, 1)}")
    if taps > 1 and tap_major != (tile_rows == 2):
        raise ValueError(f"conv_lanes: tiles of {tile_rows} row(s) read weights packed "
                         f"{'tap' if tile_rows == 2 else 'channel'} by "
                         f"{'tap' if tile_rows == 2 else 'channel'}, got tap_major={tap_major}")
    _check_planes("conv_lanes: grid", grid.shape, grid.strides, 3, sizeof(floating))
    _check_lane_reads(grid_length, start, grid_width, step, out_h, out_w, tile_width,
                      &shifts[0], taps, &offsets[0, 0], first_row, last_row, first_col,
                      last_col)
    cdef Py_ssize_t plane_stride = out.strides[1] // sizeof(floating)
    cdef Py_ssize_t row_stride = out.strides[2] // sizeof(floating)
    cdef Py_ssize_t row_tiles = (out_h + tile_rows - 1) // tile_rows
    cdef Py_ssize_t col_tiles = out_w // tile_width, tiles = row_tiles * col_tiles
    cdef Py_ssize_t item, n, b, r, col, klass
    cdef int nt = team_size(n_images * blocks * tiles * LANE_POSITIONS * block * channels
                            * taps, PARALLEL_MIN_MACS, num_threads)
    # the tiles' tap lists, worked out once per class of tiles rather than in every tile
    cdef Py_ssize_t bounds[4]
    cdef int* lists = _lane_class_lists(&offsets[0, 0], taps, first_row, last_row, first_col,
                                        last_col, out_h, out_w, tile_width, tile_rows, bounds)
    cdef Py_ssize_t col_classes = _lane_classes(col_tiles, bounds[2], bounds[3])
    for item in prange(n_images * blocks * tiles, nogil=True, schedule="static",
                       num_threads=nt):
        n = item // (blocks * tiles)
        b = (item // tiles) % blocks
        r = (item % tiles) // col_tiles
        col = item % col_tiles
        klass = (_lane_class(r, bounds[0], bounds[1]) * col_classes
                 + _lane_class(col, bounds[2], bounds[3]))
        r = r * tile_rows
        col = col * tile_width
        _lane_tile(&grid[n, 0, start + r * grid_width + col * step], grid_length,
                   grid_width, &packed_weight[b, 0, 0], &shifts[0],
                   lists + klass * LANE_LISTS_SIZE, channels, taps, tile_width, vectors, step,
                   tile_rows, min(tile_rows, out_h - r), &out[n, b * block, r, col],
                   min(block, out_channels - b * block), plane_stride, row_stride,
                   &bias[b * block] if has_bias else NULL)
    free(lists)


cdef extern from "grad_tiles.h" nogil:
    void _grad_tile_main_f "minigrad_grad_tile_main_f" (
        int masked, const float* gy_t, Py_ssize_t gy_stride, const float* row,
        Py_ssize_t row_channel, const Py_ssize_t* shifts, Py_ssize_t count, Py_ssize_t cols,
        Py_ssize_t grid_width, const int* row_masks, const int* col_masks, float* tile,
        Py_ssize_t tile_channel, Py_ssize_t tap_stride)
    void _grad_tile_main_d "minigrad_grad_tile_main_d" (
        int masked, const double* gy_t, Py_ssize_t gy_stride, const double* row,
        Py_ssize_t row_channel, const Py_ssize_t* shifts, Py_ssize_t count, Py_ssize_t cols,
        Py_ssize_t grid_width, const int* row_masks, const int* col_masks, double* tile,
        Py_ssize_t tile_channel, Py_ssize_t tap_stride)
    void _grad_tile_narrow_f "minigrad_grad_tile_narrow_f" (
        Py_ssize_t width, const float* gy_t, Py_ssize_t gy_stride, const float* row,
        const Py_ssize_t* shifts, Py_ssize_t count, Py_ssize_t cols, Py_ssize_t grid_width,
        const int* row_masks, const int* col_masks, float* tile, Py_ssize_t tap_stride)
    void _grad_tile_narrow_d "minigrad_grad_tile_narrow_d" (
        Py_ssize_t width, const double* gy_t, Py_ssize_t gy_stride, const double* row,
        const Py_ssize_t* shifts, Py_ssize_t count, Py_ssize_t cols, Py_ssize_t grid_width,
        const int* row_masks, const int* col_masks, double* tile, Py_ssize_t tap_stride)
    # 1 where the 16 × 8 position-major copy is a register transpose (AVX-512)
    enum: POSITION_MAJOR "MINIGRAD_POSITION_MAJOR"
    void _position_major "minigrad_position_major_16x8" (const float* src, Py_ssize_t stride,
                                                         float* dst, Py_ssize_t width)


cdef inline void _grad_image(const floating* gy_t, Py_ssize_t gy_stride, const floating* rows,
                             Py_ssize_t row_channel, Py_ssize_t channels,
                             const Py_ssize_t* shifts, Py_ssize_t groups, Py_ssize_t count,
                             Py_ssize_t cols, Py_ssize_t grid_width, const int* row_masks,
                             const int* col_masks, floating* out, Py_ssize_t out_channel,
                             Py_ssize_t out_tap, Py_ssize_t width, bint masked) noexcept nogil:
    """out[c·out_channel + t·out_tap + o] += Σ_p rows[c·row_channel + shifts[t] + p] ·
    gy_t[p·gy_stride + o] for ``channels`` input channels c, groups·TG taps t and ``width``
    output channels o (GO, or a narrower tile's G24 or G16), over the positions p < count in
    the output's columns (p mod grid_width < cols) and the taps the masks keep there
    (``weight_grad``; the main tile only where ``masked``): one image's share. The tiles are
    C with GCC vector types (``grad_tiles.h``): the main one (GO wide; with AVX2 two channels
    at a time), and a narrower one for the narrower widths and, with AVX2, an odd last
    channel."""
    cdef Py_ssize_t n_rows = (count + grid_width - 1) // grid_width
    # the main tile takes two channels with AVX2 (PAIRS), one with AVX-512
    cdef Py_ssize_t c = 0, g, step = 2 if PAIRS else 1
    cdef bint main
    cdef const int* rm
    cdef const int* cm
    cdef floating* tile
    cdef const floating* row
    while c < channels:
        main = width == GO and c + step <= channels
        for g in range(groups):
            rm, cm = row_masks + g * n_rows, col_masks + g * cols
            row, tile = rows + c * row_channel, out + c * out_channel + g * TG * out_tap
            if main:
                if floating is float:
                    _grad_tile_main_f(masked, gy_t, gy_stride, row, row_channel,
                                      shifts + g * TG, count, cols, grid_width, rm, cm, tile,
                                      out_channel, out_tap)
                else:
                    _grad_tile_main_d(masked, gy_t, gy_stride, row, row_channel,
                                      shifts + g * TG, count, cols, grid_width, rm, cm, tile,
                                      out_channel, out_tap)
            elif floating is float:
                _grad_tile_narrow_f(width, gy_t, gy_stride, row, shifts + g * TG, count, cols,
                                    grid_width, rm, cm, tile, out_tap)
            else:
                _grad_tile_narrow_d(width, gy_t, gy_stride, row, shifts + g * TG, count, cols,
                                    grid_width, rm, cm, tile, out_tap)
        c = c + (step if main else 1)


def weight_grad(const floating[:, :, :, :] gy, const floating[:, :, :] grid,
                const Py_ssize_t[::1] shifts, const int[:, ::1] row_masks,
                const int[:, ::1] col_masks, Py_ssize_t count, Py_ssize_t grid_width,
                floating[:, :, :, ::1] partials, floating[:, :, ::1] scratch, Py_ssize_t width,
                int num_threads, bint masked=True):
    """partials[k, c, t, o] = Σ_{n in chunk k} Σ_p grid[n, c, p + shifts[t]] ·
    gy[n, o, p div grid_width, p mod grid_width] over the positions p < count in the output's
    columns (p mod grid_width < Wo; the padding columns are skipped); 0 where o ≥ O.
    ``row_masks`` (T / TG, Ho) and ``col_masks`` (T / TG, Wo): bit b of [g, r] and of
    [g, col] set where tap g·TG + b at output row r, column col reads inside the input; the
    products of the other taps there are zeros (or belong to dropped padding taps), and the
    AVX-512 tile skips them (unless ``masked`` is false: then it computes them all): the
    caller vouches for that.

    ``gy`` (N, O, Ho, Wo), any strides, with Ho = ceil(count / grid_width); ``partials``
    (chunks, C, T, O'), O' = O rounded up to the tile ``width`` (one of ``GRAD_TILE_WIDTHS``);
    ``scratch`` (at least num_threads, count, width), any contents. Chunk k holds images
    [k·q, (k+1)·q) with q = ceil(N / chunks): the split depends only on the shapes, so the sum
    is the same on any number of threads. The number of shifts is a multiple of TG (pad
    with 0).

    A work item is an image chunk and a block of ``width`` output channels. For each image it
    copies the block's gradient position-major into its thread's scratch (the tiles load
    ``width`` channels of one position at a time), where it stays in the core's cache while
    every input channel's tiles read it, and then adds that image's sums."""
    cdef Py_ssize_t n_images = grid.shape[0], channels = grid.shape[1]
    cdef Py_ssize_t grid_length = grid.shape[2], out_channels = gy.shape[1]
    cdef Py_ssize_t rows = gy.shape[2], cols = gy.shape[3], padded = partials.shape[3]
    cdef Py_ssize_t taps = shifts.shape[0], chunks = partials.shape[0]
    cdef Py_ssize_t per_chunk, item, k, b, n, o, r, col, i, step, valid, c, t
    cdef Py_ssize_t blocks, groups = taps // TG
    cdef floating* local
    cdef floating* dst
    if width not in GRAD_TILE_WIDTHS:
        raise ValueError(f"weight_grad: width must be one of {GRAD_TILE_WIDTHS}, got {width}")
    cdef int nt = check_threads(num_threads)
    if (gy.shape[0] != n_images or padded % width or padded < out_channels
            or padded - out_channels >= width or taps % TG or taps == 0
            or _dims(partials.shape, 4)[1:3] != (channels, taps) or chunks < 1
            or count <= 0 or cols > grid_width or rows != -(-count // grid_width)
            or scratch.shape[0] < nt or scratch.shape[1] < count or scratch.shape[2] != width
            or _dims(row_masks.shape, 2) != (taps // TG, rows)
            or _dims(col_masks.shape, 2) != (taps // TG, cols)):
        raise ValueError(f"weight_grad: inconsistent shapes gy {_dims(gy.shape, 4)} (count "
                         f"{count}, grid width {grid_width}), grid {_dims(grid.shape, 3)}, "
                         f"{taps} shifts, masks {_dims(row_masks.shape, 2)} and "
                         f"{_dims(col_masks.shape, 2)}, partials {_dims(partials.shape, 4)}, "
                         f"scratch {_dims(scratch.shape, 3)} for {nt} threads")
    _check_reads(grid_length, 0, count, &shifts[0], taps)
    _check_planes("weight_grad: grid", grid.shape, grid.strides, 3, sizeof(floating))
    per_chunk = (n_images + chunks - 1) // chunks
    blocks = padded // width
    # gy's rows contiguous: the transpose loads runs of 8 positions, channels this far apart
    cdef bint unit_rows = cols == 1 or gy.strides[3] == sizeof(floating)
    cdef Py_ssize_t channel_step = gy.strides[1] // sizeof(floating)
    # each item writes only its own partial sums, whatever thread runs it
    for item in prange(chunks * blocks, nogil=True, schedule="static", num_threads=nt):
        k = item // blocks
        b = item % blocks
        valid = min(width, out_channels - b * width)
        local = &scratch[threadid(), 0, 0]
        for c in range(channels):
            for t in range(taps):
                memset(&partials[k, c, t, b * width], 0, width * sizeof(floating))
        for n in range(k * per_chunk, min(n_images, (k + 1) * per_chunk)):
            # the gradient position-major in the output's columns (the tiles read no other
            # positions), zeros past the valid channels
            for r in range(rows):
                if valid < width:
                    memset(local + r * grid_width * width, 0,
                           min(cols, count - r * grid_width) * width * sizeof(floating))
                # blocks of 8 positions: each channel's read is one short run, the writes one
                # contiguous 8·width block; whole blocks of 16 channels by the register
                # transpose where there is one
                for col in range(0, cols, 8):
                    step = min(8, cols - col)
                    dst = local + (r * grid_width + col) * width
                    o = 0
                    if floating is float and POSITION_MAJOR and step == 8 and unit_rows:
                        while o + 16 <= valid:
                            _position_major(&gy[n, b * width + o, r, col], channel_step,
                                            dst + o, width)
                            o = o + 16
                    for o in range(o, valid):
                        for i in range(step):
                            dst[i * width + o] = gy[n, b * width + o, r, col + i]
            _grad_image(local, width, &grid[n, 0, 0], grid_length, channels, &shifts[0],
                        groups, count, cols, grid_width, &row_masks[0, 0], &col_masks[0, 0],
                        &partials[k, 0, 0, b * width], taps * padded, padded, width, masked)


def sum_partials(floating[:, :, :, ::1] partials, floating[:, :, ::1] out, int num_threads):
    """out[o, c, t] = Σ_k partials[k, c, t, o] for out (O, C, T) and ``weight_grad``'s
    partials (chunks, C, T', O'), T' ≥ T, O' ≥ O: the chunks' sums totalled in chunk order
    (each by one thread, so the total does not depend on the thread count) and laid out as the
    weight. The total is formed in partials[0], which it overwrites."""
    cdef Py_ssize_t chunks = partials.shape[0], channels = out.shape[1], taps = out.shape[2]
    cdef Py_ssize_t outs = out.shape[0], padded = partials.shape[3], c, t, k, o
    if (chunks < 1 or partials.shape[1] != channels or partials.shape[2] < taps
            or padded < outs):
        raise ValueError(f"sum_partials: inconsistent shapes partials "
                         f"{_dims(partials.shape, 4)}, out {_dims(out.shape, 3)}")
    cdef int nt = team_size(chunks * channels * taps * padded, PACK_PARALLEL_MIN, num_threads)
    for c in prange(channels, nogil=True, schedule="static", num_threads=nt):
        for t in range(taps):
            for k in range(1, chunks):
                for o in range(outs):
                    partials[0, c, t, o] = partials[0, c, t, o] + partials[k, c, t, o]
            for o in range(outs):
                out[o, c, t] = partials[0, c, t, o]


def check_lane_reads(Py_ssize_t length, Py_ssize_t start, Py_ssize_t grid_width,
                     Py_ssize_t step, Py_ssize_t out_h, Py_ssize_t out_w, Py_ssize_t tile_width,
                     const Py_ssize_t[::1] shifts, const Py_ssize_t[:, ::1] offsets,
                     tuple inside):
    """Raise unless every cell ``conv_lanes`` reads lies in [0, length): tap t's, at
    start + shifts[t] + r·grid_width + col·step, for the rows r < out_h inside (first_row ≤
    r + offsets[t, 0] < last_row) and, in each tile of ``tile_width`` columns, its columns
    but the first or last ones that ``_lane_tile`` skips (and none of a tile it skips)."""
    cdef Py_ssize_t first_row, last_row, first_col, last_col
    first_row, last_row, first_col, last_col = inside
    if offsets.shape[0] != shifts.shape[0] or offsets.shape[1] != 2:
        raise ValueError(f"check_lane_reads: offsets must be ({shifts.shape[0]}, 2), got "
                         f"{_dims(offsets.shape, 2)}")
    _check_lane_reads(length, start, grid_width, step, out_h, out_w, tile_width, &shifts[0],
                      shifts.shape[0], &offsets[0, 0], first_row, last_row, first_col, last_col)


cdef int _check_lane_reads(Py_ssize_t length, Py_ssize_t start, Py_ssize_t grid_width,
                           Py_ssize_t step, Py_ssize_t out_h, Py_ssize_t out_w,
                           Py_ssize_t tile_width, const Py_ssize_t* shifts, Py_ssize_t taps,
                           const Py_ssize_t* offsets, Py_ssize_t first_row, Py_ssize_t last_row,
                           Py_ssize_t first_col, Py_ssize_t last_col) except -1:
    """``check_lane_reads`` on C arrays of ``taps`` shifts and (row, column) offsets: the
    kernels' own check (a Python call costs as much as a small layer's tiles at batch 1)."""
    cdef Py_ssize_t t, dr, dc, col, low_row, high_row, low_col, high_col, a, b, low, high
    cdef int kind
    if taps == 0 or out_h <= 0 or out_w <= 0 or tile_width <= 0:
        raise ValueError("conv: no taps or no positions to compute")
    for t in range(taps):
        dr, dc = offsets[2 * t], offsets[2 * t + 1]
        low_row, high_row = max(0, first_row - dr), min(out_h, last_row - dr) - 1
        low_col, high_col = out_w, -1
        col = 0
        while col < out_w:
            kind = _lane_columns(first_col - dc - col, col + dc + tile_width - last_col,
                                 tile_width)
            if kind >= 0:
                a = col + (2 if kind == 3 else (1 if kind == 1 else 0))
                b = col + tile_width - 1 - (2 if kind == 4 else (1 if kind == 2 else 0))
                low_col, high_col = min(low_col, a), max(high_col, b)
            col = col + tile_width
        if low_row > high_row or low_col > high_col:
            continue
        low = start + shifts[t] + low_row * grid_width + low_col * step
        high = start + shifts[t] + high_row * grid_width + high_col * step
        if low < 0 or high >= length:
            raise ValueError(f"conv_lanes: tap {t} reads [{low}, {high}] outside a grid plane "
                             f"of length {length}")
    return 0


def check_reads(Py_ssize_t length, Py_ssize_t start, Py_ssize_t count, const Py_ssize_t[::1] shifts):
    """Raise unless every read start + p + shift (0 <= p < count) lies in [0, length)."""
    _check_reads(length, start, count, &shifts[0], shifts.shape[0])


cdef int _check_reads(Py_ssize_t length, Py_ssize_t start, Py_ssize_t count,
                      const Py_ssize_t* shifts, Py_ssize_t taps) except -1:
    """``check_reads`` on a C array of ``taps`` shifts (the kernels' own check: a Python
    call costs a visible share of a small layer at batch 1)."""
    cdef Py_ssize_t t, low, high
    if taps == 0 or count <= 0:
        raise ValueError("conv: no taps or no positions to compute")
    low = high = shifts[0]
    for t in range(taps):
        low = min(low, shifts[t])
        high = max(high, shifts[t])
    if start + low < 0 or start + count + high > length:
        raise ValueError(f"conv: reads [{start + low}, {start + count + high}) fall outside "
                         f"a grid plane of length {length}")
    return 0
