# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Pooling kernels: max, average, adaptive average/max and global average, forward and backward.

Every array is viewed as planes: input ``x[P, H, W]`` and output ``y[P, OH, OW]`` with
P = N·C, C-contiguous. Each kernel runs without the GIL and splits the planes over the OpenMP
threads (``prange``), so one thread owns whole planes: the backward passes scatter into their own
planes without atomics, and every result is bitwise the same for any number of threads.

Max-type forwards store, per output, the flat index ``h·W + w`` of the winning input cell
(int32; the wrapper checks that H·W fits). The rule is PyTorch's: start from −∞ at the first
in-bounds cell of the window, then visit the window in row-major order and take a value when it is
greater than the current maximum (so the first of equal values wins) or when it is NaN (so NaN wins
and propagates). Indices are therefore never −1.

The sliding-window kernels are written "tap by tap": for one output row, each kernel offset
(i, j) updates the whole output row in a loop over ``ow`` whose valid range is computed once, so
the inner loops are branch-free over contiguous (or strided) memory and the compiler vectorises
them; the row-major tap order keeps PyTorch's tie rule and summation order.
"""
from cython.parallel cimport parallel, prange
from cython cimport floating
from libc.math cimport INFINITY
from libc.stdlib cimport free, malloc
from libc.string cimport memset
cimport openmp

# Below this many input elements the OpenMP start-up costs more than the work.
cdef Py_ssize_t PARALLEL_MIN = 1 << 14


cdef inline int _num_threads(Py_ssize_t work) noexcept nogil:
    return 1 if work < PARALLEL_MIN else openmp.omp_get_max_threads()


cdef inline Py_ssize_t _ceil_div(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """ceil(a / b) for b > 0 and any sign of a."""
    if a >= 0:
        return (a + b - 1) // b
    return -((-a) // b)


cdef inline void _tap_range(Py_ssize_t offset, Py_ssize_t stride, Py_ssize_t size,
                            Py_ssize_t n_out, Py_ssize_t* lo, Py_ssize_t* hi) noexcept nogil:
    """Outputs o in [lo, hi) whose tap o·stride + offset lies inside [0, size)."""
    cdef Py_ssize_t a = _ceil_div(-offset, stride), b
    if a < 0:
        a = 0
    if size - 1 - offset < 0:
        b = 0
    else:
        b = (size - 1 - offset) // stride + 1
    if b > n_out:
        b = n_out
    lo[0] = a
    hi[0] = b if b > a else a


# ----------------------------------------------------------------------------------------------
# max pooling
# ----------------------------------------------------------------------------------------------

cdef inline void _max_row(const floating* x, floating* y, int* idx,
                          Py_ssize_t H, Py_ssize_t W, Py_ssize_t OW, Py_ssize_t oh,
                          Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                          Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw) noexcept nogil:
    """One output row of max pooling over the plane ``x`` (idx may be NULL: values only)."""
    cdef Py_ssize_t ih0 = oh * sh - ph, ih_first, ih, i, j, ow, off, lo, hi, iw0, base
    cdef const floating* xr
    cdef floating v
    ih_first = ih0 + _ceil_div(-ih0, dh) * dh if ih0 < 0 else ih0
    for ow in range(OW):
        y[ow] = -INFINITY
    if idx != NULL:
        # the index starts at the first in-bounds cell, as in PyTorch (never -1)
        for ow in range(OW):
            iw0 = ow * sw - pw
            if iw0 < 0:
                iw0 = iw0 + _ceil_div(-iw0, dw) * dw
            idx[ow] = <int>(ih_first * W + iw0)
    for i in range(kh):
        ih = ih0 + i * dh
        if ih < 0 or ih >= H:
            continue
        xr = x + ih * W
        for j in range(kw):
            off = j * dw - pw
            _tap_range(off, sw, W, OW, &lo, &hi)
            if idx == NULL:
                for ow in range(lo, hi):
                    v = xr[ow * sw + off]
                    if v > y[ow] or v != v:
                        y[ow] = v
            else:
                base = ih * W + off
                for ow in range(lo, hi):
                    v = xr[ow * sw + off]
                    if v > y[ow] or v != v:
                        y[ow] = v
                        idx[ow] = <int>(base + ow * sw)


cdef inline void _max_2x2_row(const floating* r0, floating* y, int* idx,
                              Py_ssize_t W, Py_ssize_t OW, Py_ssize_t ih) noexcept nogil:
    """Fast path: kernel 2, stride 2, no padding or dilation; every window fully inside."""
    cdef const floating* r1 = r0 + W
    cdef Py_ssize_t ow, w
    cdef floating m, v
    cdef int k
    if idx == NULL:
        for ow in range(OW):
            w = 2 * ow
            m = r0[w]
            v = r0[w + 1]
            if v > m or v != v:
                m = v
            v = r1[w]
            if v > m or v != v:
                m = v
            v = r1[w + 1]
            if v > m or v != v:
                m = v
            y[ow] = m
    else:
        for ow in range(OW):
            w = 2 * ow
            m = r0[w]
            k = <int>(ih * W + w)
            v = r0[w + 1]
            if v > m or v != v:
                m = v
                k = <int>(ih * W + w + 1)
            v = r1[w]
            if v > m or v != v:
                m = v
                k = <int>((ih + 1) * W + w)
            v = r1[w + 1]
            if v > m or v != v:
                m = v
                k = <int>((ih + 1) * W + w + 1)
            y[ow] = m
            idx[ow] = k


def max_pool_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y, int[:, :, ::1] idx,
                     int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw):
    """y[p, oh, ow] = max over the window (−∞ padding); idx (or None) gets the flat argmax."""
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t OH = y.shape[1], OW = y.shape[2], p, oh
    cdef bint with_index = idx is not None
    cdef bint fast_2x2 = (kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0 and pw == 0
                          and 2 * OH <= H and 2 * OW <= W)
    cdef int* ip
    cdef int nt = _num_threads(P * H * W)
    with nogil:
        for p in prange(P, schedule='static', num_threads=nt):
            for oh in range(OH):
                ip = &idx[p, oh, 0] if with_index else NULL
                if fast_2x2:
                    _max_2x2_row(&x[p, 2 * oh, 0], &y[p, oh, 0], ip, W, OW, 2 * oh)
                else:
                    _max_row(&x[p, 0, 0], &y[p, oh, 0], ip, H, W, OW, oh,
                             kh, kw, sh, sw, ph, pw, dh, dw)


def adaptive_max_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y, int[:, :, ::1] idx,
                         const Py_ssize_t[::1] h_start, const Py_ssize_t[::1] h_end,
                         const Py_ssize_t[::1] w_start, const Py_ssize_t[::1] w_end):
    """y[p, oh, ow] = max of x[p, h_start[oh]:h_end[oh], w_start[ow]:w_end[ow]]; idx = argmax."""
    cdef Py_ssize_t P = x.shape[0], W = x.shape[2]
    cdef Py_ssize_t OH = y.shape[1], OW = y.shape[2], p, oh, ow, ih, iw, k
    cdef const floating* xp
    cdef floating m, v
    cdef int nt = _num_threads(P * x.shape[1] * W)
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
                            if v > m or v != v:
                                m = v
                                k = ih * W + iw
                    y[p, oh, ow] = m
                    idx[p, oh, ow] = <int>k


def max_pool_backward(const floating[:, :, ::1] gy, const int[:, :, ::1] idx,
                      floating[:, :, ::1] gx):
    """gx[p] = 0, then gx[p].flat[idx[p, o]] += gy[p, o] for every output o (winner takes all;
    shared by max, adaptive max and global max pooling)."""
    cdef Py_ssize_t P = gx.shape[0], HW = gx.shape[1] * gx.shape[2]
    cdef Py_ssize_t n_out = gy.shape[1] * gy.shape[2], p, o
    cdef floating* gp
    cdef const floating* gyp
    cdef const int* ip
    cdef int nt = _num_threads(P * HW)
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

cdef inline Py_ssize_t _avg_count(Py_ssize_t start, Py_ssize_t k, Py_ssize_t size,
                                  Py_ssize_t pad, bint count_include_pad) noexcept nogil:
    """Cells counted along one axis for the window starting at ``start`` (PyTorch's rule: with
    count_include_pad the padding counts but the ceil_mode overhang beyond it does not)."""
    cdef Py_ssize_t end = start + k
    if end > size + pad:
        end = size + pad
    if not count_include_pad:
        if start < 0:
            start = 0
        if end > size:
            end = size
    return end - start


cdef inline void _avg_divisors(floating* div, Py_ssize_t OW, Py_ssize_t oh,
                               Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                               Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
                               bint count_include_pad, Py_ssize_t divisor_override) noexcept nogil:
    """div[ow] = the divisor of output (oh, ow)."""
    cdef Py_ssize_t ow, rows
    if divisor_override != 0:
        for ow in range(OW):
            div[ow] = <floating>divisor_override
        return
    rows = _avg_count(oh * sh - ph, kh, H, ph, count_include_pad)
    for ow in range(OW):
        div[ow] = <floating>(rows * _avg_count(ow * sw - pw, kw, W, pw, count_include_pad))


cdef inline void _avg_row(const floating* x, floating* y, floating* div,
                          Py_ssize_t H, Py_ssize_t W, Py_ssize_t OW, Py_ssize_t oh,
                          Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                          Py_ssize_t ph, Py_ssize_t pw, bint count_include_pad,
                          Py_ssize_t divisor_override) noexcept nogil:
    cdef Py_ssize_t ih0 = oh * sh - ph, ih, i, j, ow, off, lo, hi
    cdef const floating* xr
    for ow in range(OW):
        y[ow] = 0
    for i in range(kh):
        ih = ih0 + i
        if ih < 0 or ih >= H:
            continue
        xr = x + ih * W
        for j in range(kw):
            off = j - pw
            _tap_range(off, sw, W, OW, &lo, &hi)
            for ow in range(lo, hi):
                y[ow] += xr[ow * sw + off]
    _avg_divisors(div, OW, oh, H, W, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override)
    for ow in range(OW):
        y[ow] = y[ow] / div[ow]


def avg_pool_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y,
                     int kh, int kw, int sh, int sw, int ph, int pw,
                     bint count_include_pad, Py_ssize_t divisor_override):
    """y = window sum / divisor (divisor_override if non-zero, else the counted cells)."""
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t OH = y.shape[1], OW = y.shape[2], p, oh
    cdef floating* div
    cdef int nt = _num_threads(P * H * W)
    with nogil, parallel(num_threads=nt):
        div = <floating*>malloc(OW * sizeof(floating))
        for p in prange(P, schedule='static'):
            for oh in range(OH):
                _avg_row(&x[p, 0, 0], &y[p, oh, 0], div, H, W, OW, oh, kh, kw, sh, sw, ph, pw,
                         count_include_pad, divisor_override)
        free(div)


def avg_pool_backward(const floating[:, :, ::1] gy, floating[:, :, ::1] gx,
                      int kh, int kw, int sh, int sw, int ph, int pw,
                      bint count_include_pad, Py_ssize_t divisor_override):
    """gx[cell] = Σ over the windows containing the cell of gy / divisor."""
    cdef Py_ssize_t P = gx.shape[0], H = gx.shape[1], W = gx.shape[2]
    cdef Py_ssize_t OH = gy.shape[1], OW = gy.shape[2], p, oh, ow, i, j, ih, off, lo, hi
    cdef floating* share
    cdef floating* gr
    cdef const floating* gyr
    cdef int nt = _num_threads(P * H * W)
    with nogil, parallel(num_threads=nt):
        share = <floating*>malloc(OW * sizeof(floating))
        for p in prange(P, schedule='static'):
            memset(&gx[p, 0, 0], 0, H * W * sizeof(floating))
            for oh in range(OH):
                _avg_divisors(share, OW, oh, H, W, kh, kw, sh, sw, ph, pw, count_include_pad,
                              divisor_override)
                gyr = &gy[p, oh, 0]
                for ow in range(OW):
                    share[ow] = gyr[ow] / share[ow]
                for i in range(kh):
                    ih = oh * sh - ph + i
                    if ih < 0 or ih >= H:
                        continue
                    gr = &gx[p, ih, 0]
                    for j in range(kw):
                        off = j - pw
                        _tap_range(off, sw, W, OW, &lo, &hi)
                        for ow in range(lo, hi):
                            gr[ow * sw + off] += share[ow]
        free(share)


def adaptive_avg_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y,
                         const Py_ssize_t[::1] h_start, const Py_ssize_t[::1] h_end,
                         const Py_ssize_t[::1] w_start, const Py_ssize_t[::1] w_end):
    """y[p, oh, ow] = mean of x[p, h_start[oh]:h_end[oh], w_start[ow]:w_end[ow]]."""
    cdef Py_ssize_t P = x.shape[0], W = x.shape[2]
    cdef Py_ssize_t OH = y.shape[1], OW = y.shape[2], p, oh, ow, ih, iw
    cdef const floating* xp
    cdef floating s
    cdef int nt = _num_threads(P * x.shape[1] * W)
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
                          const Py_ssize_t[::1] w_start, const Py_ssize_t[::1] w_end):
    """gx[cell] = Σ over the bins containing the cell of gy / bin area."""
    cdef Py_ssize_t P = gx.shape[0], H = gx.shape[1], W = gx.shape[2]
    cdef Py_ssize_t OH = gy.shape[1], OW = gy.shape[2], p, oh, ow, ih, iw
    cdef floating* gp
    cdef floating g
    cdef int nt = _num_threads(P * H * W)
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
    LANES = 16


cdef inline floating _plane_sum(const floating* x, Py_ssize_t n) noexcept nogil:
    """Sum with LANES independent accumulators, so the loop vectorises without reassociation."""
    cdef floating acc[LANES]
    cdef floating s = 0
    cdef Py_ssize_t i, k, n_main = n - n % LANES
    for k in range(LANES):
        acc[k] = 0
    for i in range(n_main // LANES):
        for k in range(LANES):
            acc[k] += x[i * LANES + k]
    for k in range(LANES):
        s += acc[k]
    for i in range(n_main, n):
        s += x[i]
    return s


def global_avg_forward(const floating[:, ::1] x, floating[::1] y):
    """y[p] = mean of x[p, :] (x is (planes, H·W))."""
    cdef Py_ssize_t P = x.shape[0], n = x.shape[1], p
    cdef int nt = _num_threads(P * n)
    with nogil:
        for p in prange(P, schedule='static', num_threads=nt):
            y[p] = _plane_sum(&x[p, 0], n) / n


def global_avg_backward(const floating[::1] gy, floating[:, ::1] gx):
    """gx[p, :] = gy[p] / (H·W)."""
    cdef Py_ssize_t P = gx.shape[0], n = gx.shape[1], p, i
    cdef floating g
    cdef floating* gp
    cdef int nt = _num_threads(P * n)
    with nogil:
        for p in prange(P, schedule='static', num_threads=nt):
            g = gy[p] / n
            gp = &gx[p, 0]
            for i in range(n):
                gp[i] = g
