# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Pooling kernels, forward and backward: max, average, adaptive average/max and global average
pooling, and the alternative kinds: Lp, stochastic (training and evaluation) and fractional max.

Every array is viewed as planes: input ``x[P, H, W]`` and output ``y[P, OH, OW]`` with
P = N·C, C-contiguous. Each kernel runs without the GIL and splits the planes over the OpenMP
threads (``prange``), so one thread owns whole planes: the backward passes scatter into their own
planes without atomics, and every result is bitwise the same for any number of threads. Window
geometry is computed and validated in Python (``minigrad.ops.geometry``); the kernels trust it
(boundscheck is off).

Max-type forwards store, per output, the flat index ``h·W + w`` of the winning input cell
(int32; the wrapper checks that H·W fits). The rule is PyTorch's: start from −∞ at the first
in-bounds cell of the window, then visit the window in row-major order and take a value when it is
greater than the current maximum (so the first of equal values wins) or when it is NaN (so NaN wins
and propagates). Indices are therefore never −1. Every max-type backward is ``max_pool_backward``.

Sliding windows (max and average pooling) are computed "tap by tap": for one output row, each
kernel offset (i, j) updates the whole row, ``y[o] = max(y[o], row[o·sw + j·dw])`` (padded max
pooling folds the taps of a vector of outputs in registers instead: ``_max_rows``). Unless the
windows lie inside the input with stride 1 (or a 2×2/stride-2 fast path applies), each plane is
first copied into a per-thread buffer whose border holds the padding value (−∞ for max, 0 for
sums; filled once per call) and whose rows are split into ``sw`` phases (columns c ≡ r mod sw
stored together), so every tap reads ``row[o·sw + c]`` as a contiguous run: branch-free loops of
fixed trip count that the compiler vectorises without bounds checks or strided loads. The
row-major tap order keeps PyTorch's tie rule and summation order.

The alternative kinds visit each window directly (unpadded windows starting at ``o·stride``,
clipped at the bottom/right edge by ceil_mode) and sum in double for float32 input too.
"""
from cython.parallel cimport parallel, prange, threadid
from cython cimport floating
from libc.math cimport INFINITY, fabs, isnan, pow, sqrt
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

from ._parallel cimport team_size

# Below this many input elements the OpenMP start-up costs more than the work.
cdef Py_ssize_t PARALLEL_MIN = 1 << 14


cdef inline Py_ssize_t _min(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return a if a < b else b


cdef struct Window:
    # kernel, stride, padding (top / left), dilation; the plane as read: Hp rows of ``pitch``
    # cells, each row ``sw`` phases of ``Lq`` cells (one phase of W cells when unbuffered)
    Py_ssize_t kh, kw, sh, sw, ph, pw, dh, dw, Hp, Lq, pitch


cdef inline Window _window(int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
                           Py_ssize_t Hp, Py_ssize_t Lq, bint buffered) noexcept nogil:
    cdef Window w
    w.kh, w.kw, w.sh, w.sw, w.ph, w.pw, w.dh, w.dw, w.Hp = kh, kw, sh, sw, ph, pw, dh, dw, Hp
    w.Lq = Lq
    w.pitch = sw * Lq if buffered else Lq
    return w


cdef inline Py_ssize_t _col(Window* w, Py_ssize_t c) noexcept nogil:
    """Position in a buffered row of padded column c (phase c mod sw, slot c div sw)."""
    return (c % w.sw) * w.Lq + c // w.sw


cdef bint _fast_2x2(int kh, int kw, int sh, int sw, int dh, int dw,
                    Py_ssize_t scratch_width) except -1:
    """Whether the 2×2/stride-2 fast path reads the input in place; ValueError for any other
    stride > 1 without the phase-split scratch plane."""
    cdef bint fast = (kh == 2 and kw == 2 and sh == 2 and sw == 2 and dh == 1 and dw == 1
                      and scratch_width == 0)
    if not (scratch_width > 0 or sw == 1 or fast):
        raise ValueError("pooling kernel: a stride > 1 needs the phase-split scratch plane")
    return fast


cdef inline floating* _window_row(const floating* plane, Window* w, Py_ssize_t H,
                                  Py_ssize_t oh, Py_ssize_t i) noexcept nogil:
    """The (padded) row that kernel row i of output row oh reads; NULL for a padding row, which
    changes no sum or maximum."""
    cdef Py_ssize_t ih = oh * w.sh + i * w.dh - w.ph
    if ih < 0 or ih >= H:
        return NULL
    return <floating*>plane + (ih + w.ph) * w.pitch


cdef int _scratch_team(floating[:, ::1] scratch, Py_ssize_t work, int num_threads) except -1:
    """The team size of a kernel that gives each thread a padded plane of ``scratch``: ValueError
    unless there is a plane for every thread (a width of 0 means no planes are used)."""
    cdef int nt = team_size(work, PARALLEL_MIN, num_threads)
    if scratch.shape[1] > 0 and scratch.shape[0] < nt:
        raise ValueError(f"pooling kernel: scratch has {scratch.shape[0]} planes for a team of "
                         f"{nt} threads")
    return nt


cdef inline floating* _thread_plane(floating[:, ::1] scratch, floating fill) noexcept nogil:
    """This thread's padded-plane buffer with every cell set to ``fill`` (NULL when the caller
    passed no scratch: the windows never leave the input)."""
    cdef floating* buf
    cdef Py_ssize_t k
    if scratch.shape[1] == 0:
        return NULL
    buf = &scratch[threadid(), 0]
    for k in range(scratch.shape[1]):
        buf[k] = fill
    return buf


cdef inline void _copy_row(floating* plane_row, floating* buf_row, Py_ssize_t W, Py_ssize_t pw,
                           Py_ssize_t sw, Py_ssize_t phase_stride,
                           bint into_buffer) noexcept nogil:
    """Copy one input row into its padded buffer row, split into sw phases ``phase_stride``
    cells apart (padded column q·sw + r at r·phase_stride + q), or back out of it."""
    cdef Py_ssize_t r, q, q0, q1
    cdef floating* cell
    if sw == 1:
        if into_buffer:
            memcpy(buf_row + pw, plane_row, W * sizeof(floating))
        else:
            memcpy(plane_row, buf_row + pw, W * sizeof(floating))
        return
    for r in range(sw):
        # this phase's padded columns q·sw + r that fall inside [pw, pw + W)
        q0 = (pw - r + sw - 1) // sw if pw > r else 0
        q1 = (pw + W - 1 - r) // sw + 1 if pw + W - 1 >= r else 0
        cell = plane_row + r - pw
        if into_buffer:
            for q in range(q0, q1):
                buf_row[r * phase_stride + q] = cell[q * sw]
        else:
            for q in range(q0, q1):
                cell[q * sw] = buf_row[r * phase_stride + q]


cdef inline void _copy_plane(floating* plane, floating* buf, Py_ssize_t H, Py_ssize_t W,
                             Window* w, bint into_buffer) noexcept nogil:
    """Copy the H×W plane into the interior of the phase-split buffer (or back out of it).
    Only the interior is ever written, so the border keeps its padding value."""
    cdef Py_ssize_t ih
    for ih in range(H):
        _copy_row(plane + ih * W, buf + (ih + w.ph) * w.pitch, W, w.pw, w.sw, w.Lq,
                  into_buffer)


cdef inline const floating* _read_plane(const floating* x, floating* buf, Py_ssize_t H,
                                        Py_ssize_t W, Window* w) noexcept nogil:
    """The plane as the window loops read it: ``x`` itself, or its copy into the buffer."""
    if buf == NULL:
        return x
    _copy_plane(<floating*>x, buf, H, W, w, True)
    return buf


# ----------------------------------------------------------------------------------------------
# max pooling
# ----------------------------------------------------------------------------------------------

cdef inline void _max_tap(const floating* xr, floating* y, int* idx, int base,
                          Py_ssize_t n, Py_ssize_t sw) noexcept nogil:
    """One kernel tap over an output row: y[o] = max(y[o], xr[o]) for o < n, that cell being
    the plane's flat cell base + o·sw (idx NULL: values only).

    The stores are unconditional stores of a selected value, so the loop is branch-free and
    vectorises (a data-dependent branch would mispredict on every other element)."""
    cdef Py_ssize_t o
    cdef floating v, m
    cdef bint take
    if idx == NULL:
        for o in range(n):
            v = xr[o]
            m = y[o]
            y[o] = v if (v > m) | (v != v) else m
    else:
        for o in range(n):
            v = xr[o]
            m = y[o]
            take = (v > m) | (v != v)
            y[o] = v if take else m
            idx[o] = <int>(base + o * sw) if take else idx[o]


cdef inline void _max_row(const floating* plane, floating* y, int* idx, Py_ssize_t H,
                          Py_ssize_t W, Py_ssize_t OW, Py_ssize_t oh, Window* w,
                          Py_ssize_t first_row, const Py_ssize_t* first_col) noexcept nogil:
    """One output row of max pooling over the (padded) plane."""
    cdef Py_ssize_t i, j, ow, ih, iw0
    cdef const floating* row
    for ow in range(OW):
        y[ow] = -INFINITY
    if idx != NULL:
        # the index starts at the window's first in-bounds cell, as in PyTorch (never -1)
        for ow in range(OW):
            idx[ow] = <int>(first_row * W + first_col[ow])
    for i in range(w.kh):
        row = _window_row(plane, w, H, oh, i)
        if row == NULL:
            continue
        ih = oh * w.sh + i * w.dh - w.ph
        for j in range(w.kw):
            iw0 = j * w.dw - w.pw   # input column of output 0's tap (a padding cell is never taken)
            _max_tap(row + _col(w, j * w.dw), y, idx, <int>(ih * W + iw0), OW, w.sw)


cdef inline void _max_2x2_row(const floating* r0, floating* y, int* idx,
                              Py_ssize_t W, Py_ssize_t OW, Py_ssize_t ih) noexcept nogil:
    """Fast path: kernel 2, stride 2, no padding or dilation, windows inside the input."""
    cdef const floating* r1 = r0 + W
    cdef Py_ssize_t ow, c
    cdef floating m, v
    cdef int k
    cdef bint take
    if MAX_2X2:
        if floating is float:
            _max_2x2_f(r0, r1, OW, <int>(ih * W), <int>W, y, idx)
        else:
            _max_2x2_d(r0, r1, OW, <int>(ih * W), <int>W, y, idx)
        return
    if idx == NULL:
        for ow in range(OW):
            c = 2 * ow
            m = r0[c]
            v = r0[c + 1]
            m = v if (v > m) | (v != v) else m
            v = r1[c]
            m = v if (v > m) | (v != v) else m
            v = r1[c + 1]
            m = v if (v > m) | (v != v) else m
            y[ow] = m
    else:
        for ow in range(OW):
            c = 2 * ow
            m = r0[c]
            k = <int>(ih * W + c)
            v = r0[c + 1]
            take = (v > m) | (v != v)
            m = v if take else m
            k = <int>(ih * W + c + 1) if take else k
            v = r1[c]
            take = (v > m) | (v != v)
            m = v if take else m
            k = <int>((ih + 1) * W + c) if take else k
            v = r1[c + 1]
            take = (v > m) | (v != v)
            m = v if take else m
            k = <int>((ih + 1) * W + c + 1) if take else k
            y[ow] = m
            idx[ow] = k


cdef inline void _copy_phases(const floating* x, floating* buf, Py_ssize_t H, Py_ssize_t W,
                              Window* w, Py_ssize_t Hq) noexcept nogil:
    """Copy the H×W plane into the interior of its sh·sw phase planes: padded cell (R, C) goes
    to phase plane (R mod sh, C mod sw), cell (R div sh, C div sw), each phase plane Hq×Lq.
    Only the interior is written, so the border keeps its −∞."""
    cdef Py_ssize_t ih, R
    for ih in range(H):
        R = ih + w.ph
        _copy_row(<floating*>x + ih * W, buf + ((R % w.sh) * w.sw * Hq + R // w.sh) * w.Lq,
                  W, w.pw, w.sw, Hq * w.Lq, True)


cdef extern from "max_row.h" nogil:
    enum: MAX_ROW_SLACK "MINIGRAD_MAX_ROW_SLACK"
    # 1 where the 2×2 rows are vector code (AVX-512)
    enum: MAX_2X2 "MINIGRAD_MAX_2X2"
    void _max_2x2_f "minigrad_max_2x2_f" (const float* r0, const float* r1, Py_ssize_t count,
                                          int corner, int W, float* y, int* idx)
    void _max_2x2_d "minigrad_max_2x2_d" (const double* r0, const double* r1,
                                          Py_ssize_t count, int corner, int W, double* y,
                                          int* idx)
    void _max_row_f "minigrad_max_row_f" (
        const float* src, const Py_ssize_t* shifts, const int* offsets, Py_ssize_t taps,
        Py_ssize_t count, int corner, int sw, float* y, int* idx)
    void _max_row_d "minigrad_max_row_d" (
        const double* src, const Py_ssize_t* shifts, const int* offsets, Py_ssize_t taps,
        Py_ssize_t count, int corner, int sw, double* y, int* idx)


#: Cells the phase-plane path of ``max_pool_forward`` reads past the phase planes.
PHASE_SLACK = MAX_ROW_SLACK


cdef inline void _max_rows(const floating* planes, floating* y, int* idx, Py_ssize_t W,
                           Py_ssize_t OH, Py_ssize_t OW, Window* w, const Py_ssize_t* shifts,
                           const int* offsets, Py_ssize_t taps, const Py_ssize_t* first_row,
                           const Py_ssize_t* first_col) noexcept nogil:
    """Max pooling of a whole plane from its phase planes (``_copy_phases``), row by row: tap
    t of output (oh, ow) reads ``planes[shifts[t] + oh·Lq + ow]``, one constant shift per tap
    (phase plane ((i·dh) mod sh, (j·dw) mod sw), cell shift ((i·dh) div sh)·Lq + (j·dw) div
    sw), so each output row is one branch-free vector loop over the taps (``max_row.h``).
    The winning tap's cell is the window's corner oh·sh·W + ow·sw plus offsets[t] =
    (i·dh − ph)·W + j·dw − pw; before any cell beats −∞ the index is the window's first
    in-bounds cell."""
    cdef Py_ssize_t oh, ow
    cdef int* row_idx
    for oh in range(OH):
        row_idx = NULL
        if idx != NULL:
            row_idx = idx + oh * OW
            for ow in range(OW):
                row_idx[ow] = <int>(first_row[oh] * W + first_col[ow])
        if floating is float:
            _max_row_f(planes + oh * w.Lq, shifts, offsets, taps, OW, <int>(oh * w.sh * W),
                       <int>w.sw, y + oh * OW, row_idx)
        else:
            _max_row_d(planes + oh * w.Lq, shifts, offsets, taps, OW, <int>(oh * w.sh * W),
                       <int>w.sw, y + oh * OW, row_idx)


def max_pool_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y, int[:, :, ::1] idx,
                     int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
                     Py_ssize_t Hp, Py_ssize_t Lq, floating[:, ::1] scratch,
                     const Py_ssize_t[::1] first_row, const Py_ssize_t[::1] first_col,
                     int num_threads):
    """y[p, oh, ow] = max over the window (−∞ padding); idx (or None) gets the flat argmax.

    The padded plane holds every window: Hp rows of Lq·sw cells. scratch is (num_threads, 0)
    to read the input directly, row by row (windows inside it, stride 1 or the 2×2 fast path;
    then Hp, Lq = H, W). Otherwise each plane is copied into its sh·sw phase planes
    (``_copy_phases``) and pooled whole (``_max_rows``): scratch rows of sh·sw·Hq·Lq +
    ((kw − 1)·dw) div sw + ``PHASE_SLACK`` cells, Hq = ceil(Hp / sh) (the phase planes, the
    overreach of the dropped columns' taps and that of a vector on rows shorter than one).
    first_row[oh] / first_col[ow]: the window's first in-bounds row / column."""
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t OH = y.shape[1], OW = y.shape[2], p, oh
    cdef bint with_index = idx is not None
    cdef bint fast_2x2 = _fast_2x2(kh, kw, sh, sw, dh, dw, scratch.shape[1])
    cdef Window w = _window(kh, kw, sh, sw, ph, pw, dh, dw, Hp, Lq, scratch.shape[1] > 0)
    cdef Py_ssize_t Hq = (Hp + sh - 1) // sh
    cdef Py_ssize_t phase_cells = sh * sw * Hq * Lq + (kw - 1) * dw // sw
    cdef Py_ssize_t taps = kh * kw, i, j, t
    cdef bint phase_planes = scratch.shape[1] > 0
    cdef const floating* plane
    cdef floating* buf
    cdef int* ip
    if phase_planes and (scratch.shape[1] < phase_cells + MAX_ROW_SLACK or OW > Lq or taps < 1):
        raise ValueError(f"max_pool_forward: scratch rows of {scratch.shape[1]} cells do not "
                         f"fit the phase planes of a {Hp}×{Lq} plane, stride ({sh}, {sw}), "
                         f"{OW} output columns")
    cdef int nt = _scratch_team(scratch, P * H * W, num_threads)
    # per tap: its shift in the phase planes and its cell's offset from the window's corner
    cdef Py_ssize_t* shifts = NULL
    cdef int* offsets = NULL
    if phase_planes:
        shifts = <Py_ssize_t*>malloc(taps * sizeof(Py_ssize_t))
        offsets = <int*>malloc(taps * sizeof(int))
        if shifts == NULL or offsets == NULL:
            free(shifts)
            free(offsets)
            raise MemoryError()
        for i in range(kh):          # row-major tap order: PyTorch's tie rule
            for j in range(kw):
                t = i * kw + j
                shifts[t] = ((((i * dh) % sh) * sw + (j * dw) % sw) * Hq + (i * dh) // sh) * Lq \
                    + (j * dw) // sw
                offsets[t] = <int>((i * dh - ph) * W + j * dw - pw)
    try:
        with nogil, parallel(num_threads=nt):
            buf = _thread_plane(scratch, -INFINITY)
            for p in prange(P, schedule='static'):
                if phase_planes:
                    _copy_phases(&x[p, 0, 0], buf, H, W, &w, Hq)
                    _max_rows(buf, &y[p, 0, 0], &idx[p, 0, 0] if with_index else NULL, W, OH,
                              OW, &w, shifts, offsets, taps, &first_row[0], &first_col[0])
                    continue
                plane = _read_plane(&x[p, 0, 0], buf, H, W, &w)
                for oh in range(OH):
                    ip = &idx[p, oh, 0] if with_index else NULL
                    if fast_2x2:
                        _max_2x2_row(plane + 2 * oh * W, &y[p, oh, 0], ip, W, OW, 2 * oh)
                    else:
                        _max_row(plane, &y[p, oh, 0], ip, H, W, OW, oh, &w, first_row[oh],
                                 &first_col[0])
    finally:
        free(shifts)
        free(offsets)


def adaptive_max_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y, int[:, :, ::1] idx,
                         const Py_ssize_t[::1] h_start, const Py_ssize_t[::1] h_end,
                         const Py_ssize_t[::1] w_start, const Py_ssize_t[::1] w_end,
                         int num_threads):
    """y[p, oh, ow] = max of x[p, h_start[oh]:h_end[oh], w_start[ow]:w_end[ow]]; idx = argmax."""
    cdef Py_ssize_t P = x.shape[0], W = x.shape[2]
    cdef Py_ssize_t OH = y.shape[1], OW = y.shape[2], p, oh, ow, ih, iw, k
    cdef const floating* xp
    cdef floating m, v
    cdef bint take
    cdef int nt = team_size(P * x.shape[1] * W, PARALLEL_MIN, num_threads)
    with nogil:
        for p in prange(P, schedule='static', num_threads=nt):
            xp = &x[p, 0, 0]
            for oh in range(OH):
                for ow in range(OW):
                    m = -INFINITY
                    k = h_start[oh] * W + w_start[ow]
                    for ih in range(h_start[oh], h_end[oh]):
                        for iw in range(w_start[ow], w_end[ow]):
                            v = xp[ih * W + iw]
                            take = (v > m) | (v != v)
                            m = v if take else m
                            k = ih * W + iw if take else k
                    y[p, oh, ow] = m
                    idx[p, oh, ow] = <int>k


def max_pool_backward(const floating[:, :, ::1] gy, const int[:, :, ::1] idx,
                      floating[:, :, ::1] gx, int num_threads):
    """gx[p] = 0, then gx[p].flat[idx[p, o]] += gy[p, o] for every output o (winner takes all;
    shared by max, adaptive max and global max pooling)."""
    cdef Py_ssize_t P = gx.shape[0], HW = gx.shape[1] * gx.shape[2]
    cdef Py_ssize_t n_out = gy.shape[1] * gy.shape[2], p, o
    cdef floating* gp
    cdef const floating* gyp
    cdef const int* ip
    cdef int nt = team_size(P * HW, PARALLEL_MIN, num_threads)
    with nogil:
        for p in prange(P, schedule='static', num_threads=nt):
            gp = &gx[p, 0, 0]
            gyp = &gy[p, 0, 0]
            ip = &idx[p, 0, 0]
            # zeroing the plane right before the scatter keeps it in cache: no separate pass
            memset(gp, 0, HW * sizeof(floating))
            for o in range(n_out):
                gp[ip[o]] += gyp[o]


# ----------------------------------------------------------------------------------------------
# average pooling
# ----------------------------------------------------------------------------------------------

cdef inline void _avg_2x2_row(const floating* r0, floating* y, const floating* divisor,
                              Py_ssize_t W, Py_ssize_t OW) noexcept nogil:
    """Fast path: kernel 2, stride 2, no padding, windows inside the input (rows r0, r0 + W)."""
    cdef const floating* r1 = r0 + W
    cdef Py_ssize_t ow, c
    for ow in range(OW):
        c = 2 * ow
        y[ow] = (r0[c] + r0[c + 1] + r1[c] + r1[c + 1]) / divisor[ow]


cdef inline void _avg_2x2_row_backward(const floating* gy, const floating* divisor, floating* g0,
                                       Py_ssize_t W, Py_ssize_t OW) noexcept nogil:
    """The fast path's backward: each output's share written to its 2×2 cells (rows g0, g0 + W)."""
    cdef floating* g1 = g0 + W
    cdef Py_ssize_t ow, c
    cdef floating share
    for ow in range(OW):
        c = 2 * ow
        share = gy[ow] / divisor[ow]
        g0[c] = share
        g0[c + 1] = share
        g1[c] = share
        g1[c + 1] = share


def avg_pool_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y,
                     int kh, int kw, int sh, int sw, int ph, int pw,
                     Py_ssize_t Hp, Py_ssize_t Lq, floating[:, ::1] scratch,
                     const floating[:, ::1] divisor, int num_threads):
    """y[p, oh, ow] = (Σ of the window's cells, padding 0) / divisor[oh, ow], summed in
    row-major window order (PyTorch's). Hp, Lq, scratch as in max_pool_forward."""
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t OH = y.shape[1], OW = y.shape[2], p, oh, ow, i, j
    cdef bint fast_2x2 = _fast_2x2(kh, kw, sh, sw, 1, 1, scratch.shape[1])
    cdef Window w = _window(kh, kw, sh, sw, ph, pw, 1, 1, Hp, Lq, scratch.shape[1] > 0)
    cdef floating* yr
    cdef const floating* xr
    cdef const floating* tap
    cdef const floating* dr
    cdef const floating* plane
    cdef floating* buf
    cdef int nt = _scratch_team(scratch, P * H * W, num_threads)
    with nogil, parallel(num_threads=nt):
        buf = _thread_plane(scratch, 0)
        for p in prange(P, schedule='static'):
            plane = _read_plane(&x[p, 0, 0], buf, H, W, &w)
            for oh in range(OH):
                yr = &y[p, oh, 0]
                dr = &divisor[oh, 0]
                if fast_2x2:
                    _avg_2x2_row(plane + 2 * oh * W, yr, dr, W, OW)
                    continue
                for ow in range(OW):
                    yr[ow] = 0
                for i in range(kh):
                    xr = _window_row(plane, &w, H, oh, i)
                    for j in range(kw if xr != NULL else 0):
                        tap = xr + _col(&w, j)
                        for ow in range(OW):
                            yr[ow] += tap[ow]
                for ow in range(OW):
                    yr[ow] = yr[ow] / dr[ow]


def avg_pool_backward(const floating[:, :, ::1] gy, floating[:, :, ::1] gx,
                      int kh, int kw, int sh, int sw, int ph, int pw,
                      Py_ssize_t Hp, Py_ssize_t Lq, floating[:, ::1] scratch,
                      const floating[:, ::1] divisor, int num_threads):
    """gx[cell] = Σ over the windows containing the cell of gy / divisor. The shares go to a
    zeroed plane (the phase-split buffer, then copied out, or gx itself), scratch as in the
    forward."""
    cdef Py_ssize_t P = gx.shape[0], H = gx.shape[1], W = gx.shape[2]
    cdef Py_ssize_t OH = gy.shape[1], OW = gy.shape[2], p, oh, ow, i, j
    cdef bint fast_2x2 = _fast_2x2(kh, kw, sh, sw, 1, 1, scratch.shape[1])
    cdef Window w = _window(kh, kw, sh, sw, ph, pw, 1, 1, Hp, Lq, scratch.shape[1] > 0)
    cdef floating* gr
    cdef floating* shares
    cdef floating* plane
    cdef floating* buf
    cdef const floating* gyr
    cdef const floating* dr
    cdef int nt = _scratch_team(scratch, P * H * W, num_threads)
    with nogil, parallel(num_threads=nt):
        buf = _thread_plane(scratch, 0)
        for p in prange(P, schedule='static'):
            plane = buf if buf != NULL else &gx[p, 0, 0]
            # zeroed right before the scatter, the plane stays in cache: no separate pass
            # (the 2×2 fast path writes every cell unless H or W is odd)
            if not (fast_2x2 and 2 * OH == H and 2 * OW == W):
                memset(plane, 0, w.Hp * w.pitch * sizeof(floating))
            for oh in range(OH):
                gyr = &gy[p, oh, 0]
                dr = &divisor[oh, 0]
                if fast_2x2:
                    _avg_2x2_row_backward(gyr, dr, plane + 2 * oh * W, W, OW)
                    continue
                for i in range(kh):
                    gr = _window_row(plane, &w, H, oh, i)
                    for j in range(kw if gr != NULL else 0):
                        shares = gr + _col(&w, j)
                        for ow in range(OW):
                            shares[ow] += gyr[ow] / dr[ow]
            if buf != NULL:
                _copy_plane(&gx[p, 0, 0], buf, H, W, &w, False)


def adaptive_avg_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y,
                         const Py_ssize_t[::1] h_start, const Py_ssize_t[::1] h_end,
                         const Py_ssize_t[::1] w_start, const Py_ssize_t[::1] w_end,
                         int num_threads):
    """y[p, oh, ow] = mean of x[p, h_start[oh]:h_end[oh], w_start[ow]:w_end[ow]]."""
    cdef Py_ssize_t P = x.shape[0], W = x.shape[2]
    cdef Py_ssize_t OH = y.shape[1], OW = y.shape[2], p, oh, ow, ih, iw
    cdef const floating* xp
    cdef floating s
    cdef int nt = team_size(P * x.shape[1] * W, PARALLEL_MIN, num_threads)
    with nogil:
        for p in prange(P, schedule='static', num_threads=nt):
            xp = &x[p, 0, 0]
            for oh in range(OH):
                for ow in range(OW):
                    s = 0
                    for ih in range(h_start[oh], h_end[oh]):
                        for iw in range(w_start[ow], w_end[ow]):
                            s = s + xp[ih * W + iw]
                    y[p, oh, ow] = s / ((h_end[oh] - h_start[oh]) * (w_end[ow] - w_start[ow]))


def adaptive_avg_backward(const floating[:, :, ::1] gy, floating[:, :, ::1] gx,
                          const Py_ssize_t[::1] h_start, const Py_ssize_t[::1] h_end,
                          const Py_ssize_t[::1] w_start, const Py_ssize_t[::1] w_end,
                          int num_threads):
    """gx[cell] = Σ over the bins containing the cell of gy / bin area."""
    cdef Py_ssize_t P = gx.shape[0], H = gx.shape[1], W = gx.shape[2]
    cdef Py_ssize_t OH = gy.shape[1], OW = gy.shape[2], p, oh, ow, ih, iw
    cdef floating* gp
    cdef floating g
    cdef int nt = team_size(P * H * W, PARALLEL_MIN, num_threads)
    with nogil:
        for p in prange(P, schedule='static', num_threads=nt):
            gp = &gx[p, 0, 0]
            memset(gp, 0, H * W * sizeof(floating))
            for oh in range(OH):
                for ow in range(OW):
                    g = gy[p, oh, ow] / ((h_end[oh] - h_start[oh]) * (w_end[ow] - w_start[ow]))
                    for ih in range(h_start[oh], h_end[oh]):
                        for iw in range(w_start[ow], w_end[ow]):
                            gp[ih * W + iw] += g


# ----------------------------------------------------------------------------------------------
# global average pooling (a plain per-plane mean: no window bookkeeping)
# ----------------------------------------------------------------------------------------------

cdef enum:
    # A large plane is summed on its own in PLANE_LANES lanes (several independent vector chains).
    # Planes under SMALL_PLANE cells go BLOCK at a time: each is summed in LANES lanes (one
    # vector), folded to 4 lanes, and the BLOCK × 4 partial sums are added in one vectorised
    # pass, so no plane pays a full horizontal reduction of its own (benchmark case gap).
    PLANE_LANES = 16
    SMALL_PLANE = 256
    LANES = 16
    HALF_LANES = 8
    BLOCK = 16


cdef inline floating _plane_sum(const floating* x, Py_ssize_t n) noexcept nogil:
    """Σ x[:n] in PLANE_LANES lanes (lane l adds cells l, l + PLANE_LANES, …), the lanes reduced
    pairwise, then the n mod PLANE_LANES last cells."""
    cdef floating acc[PLANE_LANES]
    cdef floating s
    cdef Py_ssize_t i, l, n_main = n - n % PLANE_LANES
    for l in range(PLANE_LANES):
        acc[l] = 0
    for i in range(n_main // PLANE_LANES):
        for l in range(PLANE_LANES):
            acc[l] += x[i * PLANE_LANES + l]
    l = PLANE_LANES // 2
    while l > 0:
        for i in range(l):
            acc[i] += acc[i + l]
        l //= 2
    s = acc[0]
    for i in range(n_main, n):
        s += x[i]
    return s


cdef inline void _block_means(const floating* x, Py_ssize_t n, floating* y) noexcept nogil:
    """y[k] = mean of x[k·n : (k + 1)·n] for the BLOCK planes k < BLOCK. Plane k: lane l adds
    cells l, l + LANES, … (the loops have constant trip counts, so the lanes are one vector
    register); the 16 lanes fold to 4 (l + 8, then l + 4) into quarter[k], then the n mod LANES
    last cells add to quarter[k][0]; finally y[k] = ((q0 + q2) + (q1 + q3)) / n for all k in one
    pass. Needs n >= LANES (the first chunk initialises the lanes: with a conditional there the
    compiler no longer folds in vector registers)."""
    cdef floating acc[LANES]
    cdef floating half[HALF_LANES]
    cdef floating quarter[BLOCK * 4]
    cdef const floating* row
    cdef Py_ssize_t i, k, l, n_main = n - n % LANES
    for k in range(BLOCK):
        row = x + k * n
        for l in range(LANES):
            acc[l] = row[l]
        for i in range(LANES, n_main, 16):      # 16 = LANES (a literal step: a plain loop)
            for l in range(LANES):
                acc[l] += row[i + l]
        for l in range(HALF_LANES):
            half[l] = acc[l] + acc[l + HALF_LANES]
        for l in range(4):
            quarter[4 * k + l] = half[l] + half[l + 4]
    if n_main < n:      # a separate loop keeps the one above free of the tail's scalar code
        for k in range(BLOCK):
            for i in range(n_main, n):
                quarter[4 * k] += x[k * n + i]
    for k in range(BLOCK):
        y[k] = ((quarter[4 * k] + quarter[4 * k + 2])
                + (quarter[4 * k + 1] + quarter[4 * k + 3])) / n


def global_avg_forward(const floating[:, ::1] x, floating[::1] y, int num_threads):
    """y[p] = mean of x[p, :] (x is (planes, H·W)). Planes of LANES to SMALL_PLANE cells go
    BLOCK at a time (larger and tinier ones one by one): a last partial block is done as the
    last BLOCK planes (recomputing a few, to the same values), and fewer than BLOCK planes are
    copied into a zero-padded block. Each plane's summation order
    depends only on H·W: the same for any number of planes or threads."""
    cdef Py_ssize_t P = x.shape[0], n = x.shape[1], b, p
    cdef int nt = team_size(P * n, PARALLEL_MIN, num_threads)
    cdef floating padded[BLOCK * SMALL_PLANE]
    cdef floating means[BLOCK]
    if P == 0:
        return
    with nogil:
        if n >= SMALL_PLANE or n < LANES:
            for p in prange(P, schedule='static', num_threads=nt):
                y[p] = _plane_sum(&x[p, 0], n) / n
        elif P < BLOCK:
            memset(padded, 0, BLOCK * n * sizeof(floating))
            memcpy(padded, &x[0, 0], P * n * sizeof(floating))
            _block_means(padded, n, means)
            memcpy(&y[0], means, P * sizeof(floating))
        else:
            for b in prange(P // BLOCK, schedule='static', num_threads=nt):
                _block_means(&x[b * BLOCK, 0], n, &y[b * BLOCK])
            if P % BLOCK:
                _block_means(&x[P - BLOCK, 0], n, &y[P - BLOCK])


def global_avg_backward(const floating[::1] gy, floating[:, ::1] gx, int num_threads):
    """gx[p, :] = gy[p] / (H·W)."""
    cdef Py_ssize_t P = gx.shape[0], n = gx.shape[1], p, i
    cdef floating g
    cdef floating* gp
    cdef int nt = team_size(P * n, PARALLEL_MIN, num_threads)
    with nogil:
        for p in prange(P, schedule='static', num_threads=nt):
            g = gy[p] / n
            gp = &gx[p, 0]
            for i in range(n):
                gp[i] = g


# ----------------------------------------------------------------------------------------------
# Sliding-window reductions without an index: Lp pooling and stochastic pooling's evaluation
# (the probability-weighted average). One plane loop serves both; ``kind`` picks the formula.
# ----------------------------------------------------------------------------------------------

cdef enum:
    _LP_POOL = 0            # y = (c·Σ|x|^p)^(1/p), c = kernel area / window area
    _WEIGHTED_AVERAGE = 1   # y = Σa²/Σa (non-negative input)

# the ``kind`` argument of window_pool_forward / window_pool_backward
LP_POOL = _LP_POOL
WEIGHTED_AVERAGE = _WEIGHTED_AVERAGE


# Below this a sum of powers may have lost precision to underflow (DBL_MIN is ~2.2e-308).
cdef double LP_SAFE_MIN = 1e-280


cdef inline double _lp_term(double ratio, double p) noexcept nogil:
    """ratio^p with the common exponents (0 in the gradient of p = 1, 1 and 2) done exactly."""
    if p == 0.0:
        return 1.0
    if p == 1.0:
        return ratio
    if p == 2.0:
        return ratio * ratio
    return pow(ratio, p)


cdef inline double _lp_root(double s, double p) noexcept nogil:
    if p == 1.0:
        return s
    if p == 2.0:
        return sqrt(s)
    return pow(s, 1.0 / p)


cdef double _lp_window(const floating* x, Py_ssize_t W, Py_ssize_t h0, Py_ssize_t h1,
                       Py_ssize_t w0, Py_ssize_t w1, double p) noexcept nogil:
    """(Σ|x|^p)^(1/p), summed in double. When the plain sum overflows or underflows (a large p)
    it is recomputed as m·(Σ(|x|/m)^p)^(1/p), m = max|x|. NaN propagates; an all-zero window
    gives 0."""
    cdef Py_ssize_t h, w
    cdef double a, m = 0.0, s = 0.0
    for h in range(h0, h1):
        for w in range(w0, w1):
            a = fabs(x[h * W + w])
            if isnan(a):
                return a
            if a > m:
                m = a
            s += _lp_term(a, p)
    if m == 0.0 or m == INFINITY:
        return m
    if s < INFINITY and s > LP_SAFE_MIN:
        return _lp_root(s, p)
    s = 0.0
    for h in range(h0, h1):
        for w in range(w0, w1):
            s += _lp_term(fabs(x[h * W + w]) / m, p)
    return m * _lp_root(s, p)


cdef void _lp_window_backward(const floating* x, floating* gx, Py_ssize_t W, Py_ssize_t h0,
                              Py_ssize_t h1, Py_ssize_t w0, Py_ssize_t w1, double out,
                              double g, double p) noexcept nogil:
    """dy/dx_i = sign(x_i)·(|x_i|/y)^(p−1) for y = (Σ|x|^p)^(1/p); 0 where x_i = 0 or the window
    is all zero. For y = (c·Σ|x|^p)^(1/p) (a clipped window) it is c times that: pass g·c."""
    cdef Py_ssize_t h, w
    cdef double v
    if out == 0.0:
        return
    for h in range(h0, h1):
        for w in range(w0, w1):
            v = x[h * W + w]
            if v > 0.0:
                gx[h * W + w] += <floating>(g * _lp_term(v / out, p - 1.0))
            elif v < 0.0:
                gx[h * W + w] -= <floating>(g * _lp_term(-v / out, p - 1.0))
            elif isnan(v):
                gx[h * W + w] += <floating>v


cdef double _window_sum(const floating* x, Py_ssize_t W, Py_ssize_t h0, Py_ssize_t h1,
                        Py_ssize_t w0, Py_ssize_t w1) noexcept nogil:
    cdef Py_ssize_t h, w
    cdef double total = 0.0
    for h in range(h0, h1):
        for w in range(w0, w1):
            total += x[h * W + w]
    return total


cdef double _weighted_window(const floating* x, Py_ssize_t W, Py_ssize_t h0, Py_ssize_t h1,
                             Py_ssize_t w0, Py_ssize_t w1) noexcept nogil:
    """Σa²/Σa, 0 for an all-zero window."""
    cdef Py_ssize_t h, w
    cdef double a, squares = 0.0, total = _window_sum(x, W, h0, h1, w0, w1)
    if total == 0.0:
        return 0.0
    for h in range(h0, h1):
        for w in range(w0, w1):
            a = x[h * W + w]
            squares += a * a
    return squares / total


cdef void _weighted_window_backward(const floating* x, floating* gx, Py_ssize_t W,
                                    Py_ssize_t h0, Py_ssize_t h1, Py_ssize_t w0, Py_ssize_t w1,
                                    double out, double g) noexcept nogil:
    """d(Σa²/Σa)/da_j = (2·a_j − y)/Σa; 0 for an all-zero window."""
    cdef Py_ssize_t h, w
    cdef double scale, total = _window_sum(x, W, h0, h1, w0, w1)
    if total == 0.0:
        return
    scale = g / total
    for h in range(h0, h1):
        for w in range(w0, w1):
            gx[h * W + w] += <floating>(scale * (2.0 * x[h * W + w] - out))


cdef void _window_plane(int kind, bint backward, const floating* x, const floating* y,
                       const floating* gy, floating* gx, floating* y_out, Py_ssize_t H,
                       Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t kh, Py_ssize_t kw,
                       Py_ssize_t sh, Py_ssize_t sw, double p) noexcept nogil:
    """One plane of window_pool_forward (writes y_out) or, with ``backward``, of
    window_pool_backward (zeroes gx, then accumulates every window's gradient into it).

    An Lp window clipped by the plane's edge (ceil_mode) is scaled as PyTorch's lp_pool2d
    (avg_pool2d of x^p, whose divisor counts only the cells inside, times kernel area):
    y = (c·Σ|x|^p)^(1/p), c = kh·kw / window area, computed as c^(1/p)·(Σ|x|^p)^(1/p) so the
    sum's overflow/underflow guard still applies; dy/dx_i = c·sign(x_i)·(|x_i|/y)^(p−1)."""
    cdef Py_ssize_t oh, ow, h0, h1, w0, w1, o
    cdef double area_ratio, value
    if backward:
        memset(gx, 0, H * W * sizeof(floating))
    for oh in range(OH):
        h0 = oh * sh
        h1 = _min(h0 + kh, H)
        for ow in range(OW):
            w0 = ow * sw
            w1 = _min(w0 + kw, W)
            o = oh * OW + ow
            # exactly 1 for a full window: no extra rounding there
            area_ratio = <double>(kh * kw) / <double>((h1 - h0) * (w1 - w0))
            if backward and kind == _LP_POOL:
                _lp_window_backward(x, gx, W, h0, h1, w0, w1, y[o], gy[o] * area_ratio, p)
            elif backward:
                _weighted_window_backward(x, gx, W, h0, h1, w0, w1, y[o], gy[o])
            elif kind == _LP_POOL:
                value = _lp_window(x, W, h0, h1, w0, w1, p)
                if area_ratio != 1.0:
                    value *= _lp_root(area_ratio, p)
                y_out[o] = <floating>value
            else:
                y_out[o] = <floating>_weighted_window(x, W, h0, h1, w0, w1)


def window_pool_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y, int kind,
                        Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                        double p, int num_threads):
    """y[i, oh, ow] = the ``kind`` reduction (LP_POOL with exponent p, or WEIGHTED_AVERAGE) of
    x[i] over rows [oh·sh, oh·sh + kh) and columns [ow·sw, ow·sw + kw), clipped to the plane
    (a clipped Lp window is scaled as PyTorch's: see _window_plane)."""
    cdef Py_ssize_t i, P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t OH = y.shape[1], OW = y.shape[2]
    cdef int nt = team_size(P * H * W, PARALLEL_MIN, num_threads)
    with nogil:
        for i in prange(P, schedule='static', num_threads=nt):
            _window_plane(kind, False, &x[i, 0, 0], NULL, NULL, NULL, &y[i, 0, 0], H, W, OH, OW,
                          kh, kw, sh, sw, p)


def window_pool_backward(const floating[:, :, ::1] x, const floating[:, :, ::1] y,
                         const floating[:, :, ::1] gy, floating[:, :, ::1] gx, int kind,
                         Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                         double p, int num_threads):
    """gx = the gradient of window_pool_forward (the same arguments) for the output gradient gy."""
    cdef Py_ssize_t i, P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t OH = y.shape[1], OW = y.shape[2]
    cdef int nt = team_size(P * H * W, PARALLEL_MIN, num_threads)
    with nogil:
        for i in prange(P, schedule='static', num_threads=nt):
            _window_plane(kind, True, &x[i, 0, 0], &y[i, 0, 0], &gy[i, 0, 0], &gx[i, 0, 0], NULL,
                          H, W, OH, OW, kh, kw, sh, sw, p)


# ----------------------------------------------------------------------------------------------
# Stochastic pooling's training mode: one sampled cell per window (non-negative input)
# ----------------------------------------------------------------------------------------------

cdef Py_ssize_t _sample_window(const floating* x, Py_ssize_t W, Py_ssize_t h0, Py_ssize_t h1,
                               Py_ssize_t w0, Py_ssize_t w1, double u) noexcept nogil:
    """Flat index of the cell picked with probability a_i/Σa by inverting the cumulative sum
    at u·Σa (u uniform in [0, 1)): the first cell whose cumulative sum exceeds it. A zero cell
    never exceeds it, so it is never picked unless the whole window is zero (then the first
    cell is returned; the caller outputs 0)."""
    cdef Py_ssize_t h, w, last_positive = h0 * W + w0
    cdef double a, total = 0.0, cumulative = 0.0, target
    for h in range(h0, h1):
        for w in range(w0, w1):
            total += x[h * W + w]
    target = u * total
    for h in range(h0, h1):
        for w in range(w0, w1):
            a = x[h * W + w]
            if a > 0.0:
                cumulative += a
                last_positive = h * W + w
                if target < cumulative:
                    return last_positive
    # Reached only if u·Σa rounded up to Σa (u within an ulp of 1), or the window is all zero.
    return last_positive


def stochastic_pool_train_forward(const floating[:, :, ::1] x, const double[:, :, ::1] u,
                                  floating[:, :, ::1] y, int[:, :, ::1] index,
                                  Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                                  int num_threads):
    """y = the sampled cell's value (0 for an all-zero window); index = its flat position."""
    cdef Py_ssize_t i, oh, ow, h0, w0, k
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t OH = y.shape[1], OW = y.shape[2]
    cdef int nt = team_size(P * H * W, PARALLEL_MIN, num_threads)
    with nogil:
        for i in prange(P, schedule='static', num_threads=nt):
            for oh in range(OH):
                h0 = oh * sh
                for ow in range(OW):
                    w0 = ow * sw
                    k = _sample_window(&x[i, 0, 0], W, h0, _min(h0 + kh, H), w0,
                                       _min(w0 + kw, W), u[i, oh, ow])
                    index[i, oh, ow] = k
                    y[i, oh, ow] = x[i, k // W, k % W]


cdef void _sampled_backward_plane(const floating* y, const int* index, const floating* gy,
                                  floating* gx, Py_ssize_t n_out, Py_ssize_t HW) noexcept nogil:
    cdef Py_ssize_t o
    memset(gx, 0, HW * sizeof(floating))
    for o in range(n_out):
        if y[o] != 0:
            gx[index[o]] += gy[o]


def stochastic_pool_train_backward(const floating[:, :, ::1] y, const int[:, :, ::1] index,
                                   const floating[:, :, ::1] gy, floating[:, :, ::1] gx,
                                   int num_threads):
    """The gradient goes to the sampled cell; none from an all-zero window (y = 0)."""
    cdef Py_ssize_t i, P = gx.shape[0], HW = gx.shape[1] * gx.shape[2]
    cdef Py_ssize_t n_out = gy.shape[1] * gy.shape[2]
    cdef int nt = team_size(P * HW, PARALLEL_MIN, num_threads)
    with nogil:
        for i in prange(P, schedule='static', num_threads=nt):
            _sampled_backward_plane(&y[i, 0, 0], &index[i, 0, 0], &gy[i, 0, 0], &gx[i, 0, 0],
                                    n_out, HW)



# ----------------------------------------------------------------------------------------------
# Max over per-plane rectangular regions (fractional max pooling)
# ----------------------------------------------------------------------------------------------

def region_max_forward(const floating[:, :, ::1] x,
                       const int64_t[:, ::1] row_start, const int64_t[:, ::1] row_end,
                       const int64_t[:, ::1] col_start, const int64_t[:, ::1] col_end,
                       floating[:, :, ::1] y, int[:, :, ::1] index, int num_threads):
    """y[i, oh, ow] = max of x[i] over rows [row_start[i, oh], row_end[i, oh]) and columns
    [col_start[i, ow], col_end[i, ow]) (non-empty, inside the plane). The first maximum in
    row-major order wins ties; a NaN wins over numbers (the last NaN, as in PyTorch); an all −∞
    region reports its first cell."""
    cdef Py_ssize_t i, oh, ow, h, w, best_index
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t OH = y.shape[1], OW = y.shape[2]
    cdef floating v, best
    cdef int nt = team_size(P * H * W, PARALLEL_MIN, num_threads)
    with nogil:
        for i in prange(P, schedule='static', num_threads=nt):
            for oh in range(OH):
                for ow in range(OW):
                    best = -INFINITY
                    best_index = row_start[i, oh] * W + col_start[i, ow]
                    for h in range(row_start[i, oh], row_end[i, oh]):
                        for w in range(col_start[i, ow], col_end[i, ow]):
                            v = x[i, h, w]
                            if v > best or isnan(v):
                                best = v
                                best_index = h * W + w
                    y[i, oh, ow] = best
                    index[i, oh, ow] = best_index

