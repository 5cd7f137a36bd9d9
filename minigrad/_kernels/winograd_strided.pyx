# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Winograd for a 3×3, stride-2 convolution: the tile transforms and their adjoints.

Along one axis, output r reads padded cells 2r, 2r + 1 and 2r + 2:

    y[r] = w1·E[r] + (w0·O[r] + w2·O[r + 1]),   E[u] = P[2u + 1],  O[u] = P[2u]

a 1-tap filter on the odd cells and a 2-tap one on the even cells. The 1-tap part needs no
transform (one multiply per output); the 2-tap part is Winograd's F(m, 2): m outputs from
m + 1 cells O[m·t … m·t + m] with α = m + 1 multiplies, V = Bᵀ d, U = G g, y = Aᵀ (U ⊙ V).
A 2-D output is the sum of four classes, one per pair of axis kinds (E or O for the rows, E
or O for the columns): EE is a 1×1 convolution of the (odd, odd) cells, EO and OE apply F(m, 2)
along one axis, OO along both (α² points per m×m tile). Per output and channel pair that is
1 + 2·α/m + α²/m² multiplies (5.06 for m = 4) instead of 9.

Each axis kind cuts its axis into units: E into one unit per output row (or column), whose
one point is input cell 2u + 1; O into tiles of m outputs, whose α points are Bᵀ of cells
2m·t, 2m·t + 2, …, 2m·t + 2m. A class's unit pair (ur, uc) has points_r × points_c points ξ,
and summed over channels each point is one matrix product over the batch's unit pairs,
M[ξ] (O, T) = U[ξ] (O, C) · V[ξ] (C, T) (``minigrad/ops/conv_strided_winograd.py``). The
four classes' matrices lie one after another in one buffer: class k's block is
(points_k, rows, units_r·units_c·B) for B images, unit pair (ur, uc) of image b at column
(ur·units_c + uc)·B + b: the images side by side. EE's one point takes M planes, unit row ur
in plane ur mod M, so that each has as many columns as a point of EO or OE and the three
classes' products make one stack of one shape.

Every pass works on a group of up to GROUP images of one channel at a time, their planes
interleaved cell by cell in the thread's scratch (``scratch_length``; 16×16 transposes in
registers, ``transpose16.h``), so that every step of the transforms is a vector operation
across the group's images (``winograd_strided.h``), and each point's values for the group are
one contiguous store (or load) of the tile matrices. The (channel, group) pairs are split
over the threads with ``prange``; a pair belongs to one thread, so results do not depend on
the thread count.
"""
from cython.parallel cimport prange, threadid
from cython cimport floating
from libc.string cimport memcpy, memset

from ._parallel cimport team_size

cdef extern from "transpose16.h" nogil:
    void transpose16 "minigrad_transpose16" (const float** src, float** dst)

# Plane entries below which a pass runs on one thread (see im2col.pyx).
cdef Py_ssize_t PARALLEL_MIN = 1 << 15

cdef enum:
    M = 4               # outputs per tile along an O axis
    ALPHA = M + 1       # its points: F(4, 2)
    CLASSES = 4         # EE, EO, OE, OO
    GROUP = 16          # images transformed together (a float32 vector)

cdef enum Pass:
    INPUT, OUTPUT, OUTPUT_GRAD, INPUT_GRAD


#: images transformed together (chunks of the batch hold whole groups of them)
LANES = GROUP


def class_columns(Py_ssize_t tiles_h, Py_ssize_t tiles_w):
    """(points, columns per image) of each class EE, EO, OE, OO on a tiles_h × tiles_w grid
    of M×M output tiles."""
    cdef Py_ssize_t kr, kc
    result = []
    for kr in range(2):
        for kc in range(2):
            result.append(((ALPHA if kr else 1) * (ALPHA if kc else 1),
                           (tiles_h if kr else M * tiles_h) * (tiles_w if kc else M * tiles_w)))
    return result


def scratch_length(Py_ssize_t tiles_h, Py_ssize_t tiles_w):
    """Entries of scratch each thread needs: a group's interleaved padded cells (2M·Th + 1) ×
    (2M·Tw + 1) (reused for its M·Th × M·Tw outputs), the α·Th row points of its O rows and
    one row."""
    return (2 * M * tiles_h + 1 + ALPHA * tiles_h + 1) * (2 * M * tiles_w + 1) * GROUP


cdef struct Layout:
    # class k's block starts at offset[k]; its ξ planes are xi_stride[k] apart, each holding
    # its rows (channels) one after another, columns[k] apart
    Py_ssize_t offset[CLASSES]
    Py_ssize_t xi_stride[CLASSES]
    Py_ssize_t columns[CLASSES]


cdef Layout _layout(Py_ssize_t n_images, Py_ssize_t rows, Py_ssize_t tiles_h,
                    Py_ssize_t tiles_w) noexcept nogil:
    """EE's one point counts as M planes (``EE_SLICES`` in conv_strided_winograd.py): unit row
    ur goes to plane ur mod M, so that each plane has as many columns as EO's and OE's."""
    cdef Layout lay
    cdef Py_ssize_t k, units_r, units_c, points, offset = 0
    for k in range(CLASSES):
        units_r = tiles_h if k >= 2 else M * tiles_h
        units_c = tiles_w if k % 2 else M * tiles_w
        points = (ALPHA if k >= 2 else 1) * (ALPHA if k % 2 else 1)
        if k == 0:
            units_r, points = tiles_h, M
        lay.offset[k] = offset
        lay.columns[k] = n_images * units_r * units_c
        lay.xi_stride[k] = rows * lay.columns[k]
        offset += points * lay.xi_stride[k]
    return lay


cdef extern from "winograd_strided.h" nogil:
    void cols_in_f "minigrad_s2_cols_in_f" (const float*, float*, float*, Py_ssize_t,
                                            Py_ssize_t, Py_ssize_t, const float*, Py_ssize_t)
    void cols_in_d "minigrad_s2_cols_in_d" (const double*, double*, double*, Py_ssize_t,
                                            Py_ssize_t, Py_ssize_t, const double*, Py_ssize_t)
    void cols_in_grad_f "minigrad_s2_cols_in_grad_f" (float*, const float*, const float*,
                                                      Py_ssize_t, Py_ssize_t, Py_ssize_t,
                                                      const float*, Py_ssize_t)
    void cols_in_grad_d "minigrad_s2_cols_in_grad_d" (double*, const double*, const double*,
                                                      Py_ssize_t, Py_ssize_t, Py_ssize_t,
                                                      const double*, Py_ssize_t)
    void cols_out_f "minigrad_s2_cols_out_f" (float*, const float*, const float*, Py_ssize_t,
                                              Py_ssize_t, Py_ssize_t, const float*, Py_ssize_t)
    void cols_out_d "minigrad_s2_cols_out_d" (double*, const double*, const double*,
                                              Py_ssize_t, Py_ssize_t, Py_ssize_t,
                                              const double*, Py_ssize_t)
    void cols_out_grad_f "minigrad_s2_cols_out_grad_f" (const float*, float*, float*,
                                                        Py_ssize_t, Py_ssize_t, Py_ssize_t,
                                                        const float*, Py_ssize_t)
    void cols_out_grad_d "minigrad_s2_cols_out_grad_d" (const double*, double*, double*,
                                                        Py_ssize_t, Py_ssize_t, Py_ssize_t,
                                                        const double*, Py_ssize_t)
    void filters_f "minigrad_s2_filters_f" (const float*, Py_ssize_t, float*, Py_ssize_t,
                                            const float*, int)
    void filters_d "minigrad_s2_filters_d" (const double*, Py_ssize_t, double*, Py_ssize_t,
                                            const double*, int)
    void filters_grad_f "minigrad_s2_filters_grad_f" (const float*, Py_ssize_t, Py_ssize_t,
                                                      float*, const float*, int)
    void filters_grad_d "minigrad_s2_filters_grad_d" (const double*, Py_ssize_t, Py_ssize_t,
                                                      double*, const double*, int)
    void rows_f "minigrad_s2_rows_f" (const float*, Py_ssize_t, float*, Py_ssize_t, Py_ssize_t,
                                      const float*, int, int, int, int)
    void rows_d "minigrad_s2_rows_d" (const double*, Py_ssize_t, double*, Py_ssize_t,
                                      Py_ssize_t, const double*, int, int, int, int)


# The transforms of one row of GROUP-lane cells (winograd_strided.h has what each computes).

cdef inline void _columns_in(const floating* row, floating* e_out, floating* o_out,
                             Py_ssize_t unit, Py_ssize_t o_xi, Py_ssize_t tiles_w,
                             const floating* bt, Py_ssize_t n) noexcept nogil:
    if floating is float:
        cols_in_f(row, e_out, o_out, unit, o_xi, tiles_w, bt, n)
    else:
        cols_in_d(row, e_out, o_out, unit, o_xi, tiles_w, bt, n)


cdef inline void _columns_in_grad(floating* row, const floating* e_in, const floating* o_in,
                                  Py_ssize_t unit, Py_ssize_t o_xi, Py_ssize_t tiles_w,
                                  const floating* bt, Py_ssize_t n) noexcept nogil:
    if floating is float:
        cols_in_grad_f(row, e_in, o_in, unit, o_xi, tiles_w, bt, n)
    else:
        cols_in_grad_d(row, e_in, o_in, unit, o_xi, tiles_w, bt, n)


cdef inline void _columns_out(floating* row, const floating* e_in, const floating* o_in,
                              Py_ssize_t unit, Py_ssize_t o_xi, Py_ssize_t tiles_w,
                              const floating* at, Py_ssize_t n) noexcept nogil:
    if floating is float:
        cols_out_f(row, e_in, o_in, unit, o_xi, tiles_w, at, n)
    else:
        cols_out_d(row, e_in, o_in, unit, o_xi, tiles_w, at, n)


cdef inline void _columns_out_grad(const floating* row, floating* e_out, floating* o_out,
                                   Py_ssize_t unit, Py_ssize_t o_xi, Py_ssize_t tiles_w,
                                   const floating* at, Py_ssize_t n) noexcept nogil:
    if floating is float:
        cols_out_grad_f(row, e_out, o_out, unit, o_xi, tiles_w, at, n)
    else:
        cols_out_grad_d(row, e_out, o_out, unit, o_xi, tiles_w, at, n)


cdef inline void _rows(const floating* src, Py_ssize_t src_step, floating* dst,
                       Py_ssize_t dst_step, Py_ssize_t cells, const floating* mat,
                       int m_out, int m_in, bint transpose, bint add) noexcept nogil:
    """dst row i (+)= Σ_k mat[i, k]·src row k (rows of ``cells`` GROUP-lane cells)."""
    if floating is float:
        rows_f(src, src_step, dst, dst_step, cells, mat, m_out, m_in, transpose, add)
    else:
        rows_d(src, src_step, dst, dst_step, cells, mat, m_out, m_in, transpose, add)


cdef void _lanes(floating* planes, Py_ssize_t plane_step, Py_ssize_t n, Py_ssize_t height,
                 Py_ssize_t width, Py_ssize_t h, Py_ssize_t w, floating* grid,
                 Py_ssize_t grid_h, Py_ssize_t grid_w, Py_ssize_t y0, Py_ssize_t x0,
                 bint to_grid) noexcept nogil:
    """Plane l's cell (i, j) ↔ lane l of grid cell (y0 + i, x0 + j), for i < h, j < w.
    ``to_grid``: into the grid, every other grid cell and lane 0; else into the planes, their
    cells past (h, w) 0. A whole group of whole float32 planes goes 16 cells at a time (a
    16×16 transpose), the rest lane by lane."""
    cdef Py_ssize_t i, j, l, k, first = 0, cells = height * width
    cdef floating* cell
    cdef float* plane_rows[GROUP]
    cdef float* grid_cells[GROUP]
    if to_grid:
        for i in range(grid_h):
            for j in range(grid_w):
                if n < GROUP or not (y0 <= i < y0 + h and x0 <= j < x0 + w):
                    memset(grid + (i * grid_w + j) * GROUP, 0, GROUP * sizeof(floating))
    if floating is float:
        if n == GROUP and h == height and w == width:
            i = j = 0
            while first + GROUP <= cells:
                for k in range(GROUP):
                    plane_rows[k] = planes + k * plane_step + first
                    grid_cells[k] = grid + ((y0 + i) * grid_w + x0 + j) * GROUP
                    j += 1
                    if j == width:
                        i, j = i + 1, 0
                if to_grid:
                    transpose16(<const float**>plane_rows, grid_cells)
                else:
                    transpose16(<const float**>grid_cells, plane_rows)
                first += GROUP
    for k in range(first, cells):
        i, j = k // width, k % width
        cell = grid + ((y0 + i) * grid_w + x0 + j) * GROUP
        for l in range(n):
            if to_grid:
                if i < h and j < w:
                    cell[l] = planes[l * plane_step + k]
            else:
                planes[l * plane_step + k] = cell[l] if i < h and j < w else 0


cdef void _group(Pass kind, floating* planes, Py_ssize_t plane_step, Py_ssize_t n,
                 Py_ssize_t height, Py_ssize_t width, Py_ssize_t top, Py_ssize_t left,
                 floating* tiles, const Layout* lay, Py_ssize_t row, Py_ssize_t first,
                 Py_ssize_t n_images, Py_ssize_t tiles_h, Py_ssize_t tiles_w,
                 const floating* bt, const floating* at, floating shift,
                 floating* scratch) noexcept nogil:
    """One pass over the planes of n images (``plane_step`` apart, from ``planes``), from
    image ``first`` of the chunk, of channel (tile row) ``row``: the input (or its gradient)
    on its padded grid, the output (+ ``shift``) or its gradient on the M·Th × M·Tw grid of
    whole tiles, interleaved in ``scratch``. The row transforms work on whole rows of the
    grid, the column transforms on one row at a time: INPUT, rows then columns; OUTPUT,
    columns then rows; the gradients, their adjoints in the reverse order."""
    cdef bint inputs = kind == INPUT or kind == INPUT_GRAD
    cdef Py_ssize_t grid_h = 2 * M * tiles_h + 1 if inputs else M * tiles_h
    cdef Py_ssize_t grid_w = 2 * M * tiles_w + 1 if inputs else M * tiles_w
    cdef Py_ssize_t y0 = top if inputs else 0, x0 = left if inputs else 0
    cdef Py_ssize_t h = min(height, grid_h - y0), w = min(width, grid_w - x0)
    cdef Py_ssize_t span = grid_w * GROUP                       # one grid row
    cdef Py_ssize_t i, j, l, t, p, ur, units, k_r, e_cls, o_cls, e_at, o_at
    cdef floating* points = scratch + grid_h * span             # the O rows' row points
    cdef floating* line = points + ALPHA * tiles_h * (2 * M * tiles_w + 1) * GROUP
    cdef floating* src
    if kind == INPUT or kind == OUTPUT_GRAD:
        _lanes(planes, plane_step, n, height, width, h, w, scratch, grid_h, grid_w, y0, x0,
               True)
    if kind == INPUT:
        for t in range(tiles_h):        # α points per tile from even cell rows 2(M·t + k)
            _rows(scratch + 2 * M * t * span, 2 * span, points + ALPHA * t * span, span,
                  grid_w, bt, ALPHA, M + 1, False, False)
    elif kind == OUTPUT_GRAD:
        for t in range(tiles_h):
            _rows(scratch + M * t * span, span, points + ALPHA * t * span, span, grid_w, at,
                  ALPHA, M, True, False)
    elif kind == OUTPUT:
        # each output starts from its channel's bias
        for l in range(GROUP):
            line[l] = shift
        for i in range(grid_h * grid_w):
            memcpy(scratch + i * GROUP, line, GROUP * sizeof(floating))
    for k_r in range(2):
        units = tiles_h if k_r else M * tiles_h
        e_cls, o_cls = 2 * k_r, 2 * k_r + 1
        for ur in range(units):
            for p in range(ALPHA if k_r else 1):
                # this row point's first column in each of its two classes: unit (ur, 0) of
                # the group's first image, in the channel's row
                if k_r:
                    e_at = (lay.offset[e_cls] + p * lay.xi_stride[e_cls]
                            + row * lay.columns[e_cls] + ur * M * tiles_w * n_images + first)
                else:       # EE's plane ur mod M
                    e_at = (lay.offset[e_cls] + ur % M * lay.xi_stride[e_cls]
                            + row * lay.columns[e_cls] + ur // M * M * tiles_w * n_images
                            + first)
                o_at = (lay.offset[o_cls] + p * ALPHA * lay.xi_stride[o_cls]
                        + row * lay.columns[o_cls] + ur * tiles_w * n_images + first)
                if k_r:
                    src = points + (ALPHA * ur + p) * span
                elif inputs:
                    src = scratch + (2 * ur + 1) * span
                else:
                    src = scratch + ur * span
                if kind == INPUT:
                    _columns_in(src, tiles + e_at, tiles + o_at, n_images,
                                lay.xi_stride[o_cls], tiles_w, bt, n)
                elif kind == OUTPUT_GRAD:
                    _columns_out_grad(src, tiles + e_at, tiles + o_at, n_images,
                                      lay.xi_stride[o_cls], tiles_w, at, n)
                elif kind == OUTPUT:
                    _columns_out(line, tiles + e_at, tiles + o_at, n_images,
                                 lay.xi_stride[o_cls], tiles_w, at, n)
                    if k_r:
                        for j in range(span):
                            src[j] = line[j]
                    else:
                        for j in range(span):
                            src[j] += line[j]
                else:
                    _columns_in_grad(src, tiles + e_at, tiles + o_at, n_images,
                                     lay.xi_stride[o_cls], tiles_w, bt, n)
    if kind == OUTPUT:
        for t in range(tiles_h):
            _rows(points + ALPHA * t * span, span, scratch + M * t * span, span, grid_w, at, M,
                  ALPHA, False, True)
    elif kind == INPUT_GRAD:
        # the odd cell rows were written whole above; the even ones sum their tiles' rows
        for i in range(0, grid_h, 2):
            memset(scratch + i * span, 0, span * sizeof(floating))
        for t in range(tiles_h):
            _rows(points + ALPHA * t * span, span, scratch + 2 * M * t * span, 2 * span,
                  grid_w, bt, M + 1, ALPHA, True, True)
    if kind == OUTPUT or kind == INPUT_GRAD:
        # cells outside the grid's reach are read by no output: their gradient is zero
        _lanes(planes, plane_step, n, height, width, h, w, scratch, grid_h, grid_w, y0, x0,
               False)


cdef void _over_groups(Pass kind, floating* planes, Py_ssize_t n_images, Py_ssize_t channels,
                       Py_ssize_t height, Py_ssize_t width, Py_ssize_t top, Py_ssize_t left,
                       floating* tiles, Py_ssize_t tiles_h, Py_ssize_t tiles_w,
                       const double* bt, const double* at, const floating* bias,
                       floating* scratch, Py_ssize_t scratch_stride, int nt) noexcept nogil:
    cdef Py_ssize_t pair, i, g, c, groups = (n_images + GROUP - 1) // GROUP
    cdef floating bt_[ALPHA * ALPHA]
    cdef floating at_[M * ALPHA]
    cdef Layout lay = _layout(n_images, channels, tiles_h, tiles_w)
    for i in range(ALPHA * ALPHA):
        bt_[i] = <floating>bt[i] if bt != NULL else 0
    for i in range(M * ALPHA):
        at_[i] = <floating>at[i] if at != NULL else 0
    # channel-major: one channel's groups write neighbouring columns of the tile matrices
    for pair in prange(groups * channels, schedule='static', num_threads=nt):
        c = pair // groups
        g = pair % groups
        _group(kind, planes + (g * GROUP * channels + c) * height * width,
               channels * height * width, min(GROUP, n_images - g * GROUP), height, width,
               top, left, tiles, &lay, c, g * GROUP, n_images, tiles_h, tiles_w, bt_, at_,
               bias[c] if bias != NULL else 0, scratch + threadid() * scratch_stride)


def _checked_team(str op, planes_shape, Py_ssize_t tiles_length, scratch_shape,
                  bt_shape, at_shape, Py_ssize_t tiles_h, Py_ssize_t tiles_w, bint outputs,
                  int num_threads, Py_ssize_t top=0, Py_ssize_t left=0):
    """The team size a kernel runs with, after the checks that guard its unchecked loops: the
    transforms' shapes, a non-negative grid and padding, a tile buffer of exactly the four
    classes' matrices, scratch of ``scratch_length`` for each thread, and on output planes
    the grid that covers them."""
    cdef int nt = team_size(planes_shape[0] * planes_shape[1] * planes_shape[2]
                            * planes_shape[3], PARALLEL_MIN, num_threads)
    if tuple(bt_shape[:2]) != (ALPHA, ALPHA) or tuple(at_shape[:2]) != (M, ALPHA):
        raise ValueError(f"winograd_strided.{op}: bt must be {ALPHA}×{ALPHA} and at "
                         f"{M}×{ALPHA}, got {tuple(bt_shape[:2])} and {tuple(at_shape[:2])}")
    if min(tiles_h, tiles_w, top, left) < 0:
        raise ValueError(f"winograd_strided.{op}: the tile grid and the padding must be "
                         f"non-negative, got {tiles_h}×{tiles_w} tiles, padding ({top}, {left})")
    expected = planes_shape[0] * planes_shape[1] * sum(
        points * columns for points, columns in class_columns(tiles_h, tiles_w))
    if tiles_length != expected:
        raise ValueError(f"winograd_strided.{op}: tiles must have {expected} entries for planes "
                         f"of shape {tuple(planes_shape[:4])} and a {tiles_h}×{tiles_w} grid, "
                         f"got {tiles_length}")
    needed = (nt, scratch_length(tiles_h, tiles_w))
    if scratch_shape[0] < needed[0] or scratch_shape[1] < needed[1]:
        raise ValueError(f"winograd_strided.{op}: scratch must be at least {needed} for {nt} "
                         f"threads, got {tuple(scratch_shape[:2])}")
    cover = (-(-planes_shape[2] // M), -(-planes_shape[3] // M))
    if outputs and (tiles_h, tiles_w) != cover:
        raise ValueError(f"winograd_strided.{op}: outputs of {planes_shape[2]}×"
                         f"{planes_shape[3]} need a {cover[0]}×{cover[1]} tile grid, got "
                         f"{tiles_h}×{tiles_w}")
    return nt


def input_tiles(const floating[:, :, :, ::1] x, floating[::1] tiles, const double[:, ::1] bt,
                Py_ssize_t top, Py_ssize_t left, Py_ssize_t tiles_h, Py_ssize_t tiles_w,
                floating[:, ::1] scratch, int num_threads):
    """The four classes' points V of x (B, C, H, W) padded by (top, left) (and by zeros to
    the grid's reach) into ``tiles`` (the classes' (points, C, columns) blocks, flat)."""
    cdef int nt = _checked_team("input_tiles", x.shape, tiles.shape[0], scratch.shape,
                                bt.shape, (M, ALPHA), tiles_h, tiles_w, False, num_threads,
                                top, left)
    if tiles.shape[0] > 0:
        _over_groups(INPUT, <floating*>&x[0, 0, 0, 0], x.shape[0], x.shape[1], x.shape[2],
                     x.shape[3], top, left, &tiles[0], tiles_h, tiles_w, &bt[0, 0], NULL, NULL,
                     &scratch[0, 0], scratch.shape[1], nt)


def input_grad(const floating[::1] tiles, floating[:, :, :, ::1] gx, const double[:, ::1] bt,
               Py_ssize_t top, Py_ssize_t left, Py_ssize_t tiles_h, Py_ssize_t tiles_w,
               floating[:, ::1] scratch, int num_threads):
    """gx (B, C, H, W) = the adjoint of ``input_tiles`` applied to the points' gradients."""
    cdef int nt = _checked_team("input_grad", gx.shape, tiles.shape[0], scratch.shape,
                                bt.shape, (M, ALPHA), tiles_h, tiles_w, False, num_threads,
                                top, left)
    if tiles.shape[0] > 0:
        _over_groups(INPUT_GRAD, &gx[0, 0, 0, 0], gx.shape[0], gx.shape[1], gx.shape[2],
                     gx.shape[3], top, left, <floating*>&tiles[0], tiles_h, tiles_w, &bt[0, 0],
                     NULL, NULL, &scratch[0, 0], scratch.shape[1], nt)


def output_tiles(const floating[::1] tiles, floating[:, :, :, ::1] y, const double[:, ::1] at,
                 const floating[::1] bias, Py_ssize_t tiles_h, Py_ssize_t tiles_w,
                 floating[:, ::1] scratch, int num_threads):
    """y[b, o] = bias[o] + the four classes' a_r M a_cᵀ summed, for the products M
    (``tiles``, flat) and y (B, O, Ho, Wo). An empty bias adds nothing."""
    cdef int nt = _checked_team("output_tiles", y.shape, tiles.shape[0], scratch.shape,
                                (ALPHA, ALPHA), at.shape, tiles_h, tiles_w, True, num_threads)
    if bias.shape[0] not in (0, y.shape[1]):
        raise ValueError(f"winograd_strided.output_tiles: bias must have {y.shape[1]} entries "
                         f"or none, got {bias.shape[0]}")
    if tiles.shape[0] > 0:
        _over_groups(OUTPUT, &y[0, 0, 0, 0], y.shape[0], y.shape[1], y.shape[2], y.shape[3],
                     0, 0, <floating*>&tiles[0], tiles_h, tiles_w, NULL, &at[0, 0],
                     &bias[0] if bias.shape[0] > 0 else NULL, &scratch[0, 0],
                     scratch.shape[1], nt)


def output_grad(const floating[:, :, :, ::1] gy, floating[::1] tiles, const double[:, ::1] at,
                Py_ssize_t tiles_h, Py_ssize_t tiles_w, floating[:, ::1] scratch,
                int num_threads):
    """The products' gradients (``tiles``, flat) for gy (B, O, Ho, Wo): the adjoint of
    ``output_tiles``."""
    cdef int nt = _checked_team("output_grad", gy.shape, tiles.shape[0], scratch.shape,
                                (ALPHA, ALPHA), at.shape, tiles_h, tiles_w, True, num_threads)
    if tiles.shape[0] > 0:
        _over_groups(OUTPUT_GRAD, <floating*>&gy[0, 0, 0, 0], gy.shape[0], gy.shape[1],
                     gy.shape[2], gy.shape[3], 0, 0, &tiles[0], tiles_h, tiles_w, NULL,
                     &at[0, 0], NULL, &scratch[0, 0], scratch.shape[1], nt)


cdef enum:
    FILTER_POINTS_MAX = 64      # rows of a filter transform (39 for F(4, 2) with EE's slices)


def _checked_filters(str op, t_shape, Py_ssize_t filters, u_shape, u_strides,
                     Py_ssize_t itemsize, int num_threads):
    if t_shape[1] != 9 or not 0 < t_shape[0] <= FILTER_POINTS_MAX:
        raise ValueError(f"winograd_strided.{op}: the transform must be (points ≤ "
                         f"{FILTER_POINTS_MAX}, 9), got {tuple(t_shape[:2])}")
    if tuple(u_shape[:2]) != (t_shape[0], filters):
        raise ValueError(f"winograd_strided.{op}: the points must be ({t_shape[0]}, {filters}) "
                         f"for {filters} filters, got {tuple(u_shape[:2])}")
    if u_shape[1] > 1 and u_strides[1] != itemsize:
        raise ValueError(f"winograd_strided.{op}: each point's row must be contiguous, got "
                         f"strides {tuple(u_strides[:2])}")
    return team_size(filters * t_shape[0], PARALLEL_MIN, num_threads)


def filter_points(const double[:, ::1] t, const floating[:, ::1] weight, floating[:, :] u,
                  int num_threads):
    """u[ξ, f] = Σ_k t[ξ, k]·weight[f, k] for the filters (F, 9) and the transform t (P, 9)."""
    cdef int nt = _checked_filters("filter_points", t.shape, weight.shape[0], u.shape,
                                   u.strides, sizeof(floating), num_threads)
    if weight.shape[1] != 9:
        raise ValueError(f"winograd_strided.filter_points: filters must have 9 taps, got "
                         f"{weight.shape[1]}")
    cdef Py_ssize_t block, i, f = weight.shape[0], points = t.shape[0]
    cdef floating t_[FILTER_POINTS_MAX * 9]
    for i in range(points * 9):
        t_[i] = <floating>t[i // 9, i % 9]
    if f == 0:
        return
    for block in prange((f + GROUP - 1) // GROUP, schedule='static', nogil=True,
                        num_threads=nt):
        if floating is float:
            filters_f(&weight[block * GROUP, 0], min(GROUP, f - block * GROUP),
                      &u[0, block * GROUP], u.strides[0] // sizeof(floating), t_, points)
        else:
            filters_d(&weight[block * GROUP, 0], min(GROUP, f - block * GROUP),
                      &u[0, block * GROUP], u.strides[0] // sizeof(floating), t_, points)


def filter_grad(const double[:, ::1] t, const floating[:, :] grad_u,
                floating[:, ::1] grad_weight, int num_threads):
    """grad_weight[f, k] = Σ_ξ t[ξ, k]·grad_u[ξ, f]: the adjoint of ``filter_points``."""
    cdef int nt = _checked_filters("filter_grad", t.shape, grad_weight.shape[0],
                                   grad_u.shape, grad_u.strides, sizeof(floating), num_threads)
    if grad_weight.shape[1] != 9:
        raise ValueError(f"winograd_strided.filter_grad: filters must have 9 taps, got "
                         f"{grad_weight.shape[1]}")
    cdef Py_ssize_t block, i, f = grad_weight.shape[0], points = t.shape[0]
    cdef floating t_[FILTER_POINTS_MAX * 9]
    for i in range(points * 9):
        t_[i] = <floating>t[i // 9, i % 9]
    if f == 0:
        return
    for block in prange((f + GROUP - 1) // GROUP, schedule='static', nogil=True,
                        num_threads=nt):
        if floating is float:
            filters_grad_f(&grad_u[0, block * GROUP], grad_u.strides[0] // sizeof(floating),
                           min(GROUP, f - block * GROUP), &grad_weight[block * GROUP, 0],
                           t_, points)
        else:
            filters_grad_d(&grad_u[0, block * GROUP], grad_u.strides[0] // sizeof(floating),
                           min(GROUP, f - block * GROUP), &grad_weight[block * GROUP, 0],
                           t_, points)
