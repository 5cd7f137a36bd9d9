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

Sliding windows (max and average pooling) are computed "tap by tap": for one output row, each
kernel offset (i, j) updates the whole row, ``y[o] = max(y[o], row[o·sw + j·dw])``. Unless the
windows lie inside the input with stride 1 (or a 2×2/stride-2 fast path applies), each plane is
first copied into a per-thread buffer whose border holds the padding value (−∞ for max, 0 for
sums; filled once per call) and whose rows are split into ``sw`` phases (columns c ≡ r mod sw
stored together), so every tap reads ``row[o·sw + c]`` as a contiguous run: branch-free loops of
fixed trip count that the compiler vectorises without bounds checks or strided loads. The
row-major tap order keeps PyTorch's tie rule and summation order.
"""
from cython.parallel cimport parallel, prange, threadid
from cython cimport floating
from libc.math cimport INFINITY
from libc.string cimport memcpy, memset
cimport openmp

# Below this many input elements the OpenMP start-up costs more than the work.
cdef Py_ssize_t PARALLEL_MIN = 1 << 14


cdef inline int _num_threads(Py_ssize_t work) noexcept nogil:
    return 1 if work < PARALLEL_MIN else openmp.omp_get_max_threads()


def max_threads():
    """The most threads a kernel uses: how many scratch planes to allocate."""
    return openmp.omp_get_max_threads()


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


def _check_layout(bint buffered, int sw, bint fast_2x2):
    if not (buffered or sw == 1 or fast_2x2):
        raise ValueError("pooling kernel: a stride > 1 needs the phase-split scratch plane")


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


cdef inline void _copy_plane(floating* plane, floating* buf, Py_ssize_t H, Py_ssize_t W,
                             Window* w, bint into_buffer) noexcept nogil:
    """Copy the H×W plane into the interior of the phase-split buffer (or back out of it).
    Only the interior is ever written, so the border keeps its padding value."""
    cdef Py_ssize_t ih, r, q, q0, q1, sw = w.sw
    cdef floating* row
    cdef floating* cell
    for ih in range(H):
        row = buf + (ih + w.ph) * w.pitch
        if sw == 1:
            if into_buffer:
                memcpy(row + w.pw, plane + ih * W, W * sizeof(floating))
            else:
                memcpy(plane + ih * W, row + w.pw, W * sizeof(floating))
            continue
        for r in range(sw):
            # this phase's padded columns q·sw + r that fall inside [pw, pw + W)
            q0 = (w.pw - r + sw - 1) // sw if w.pw > r else 0
            q1 = (w.pw + W - 1 - r) // sw + 1 if w.pw + W - 1 >= r else 0
            cell = plane + ih * W + r - w.pw
            if into_buffer:
                for q in range(q0, q1):
                    row[r * w.Lq + q] = cell[q * sw]
            else:
                for q in range(q0, q1):
                    cell[q * sw] = row[r * w.Lq + q]


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
    cdef const floating* xr
    for ow in range(OW):
        y[ow] = -INFINITY
    if idx != NULL:
        # the index starts at the window's first in-bounds cell, as in PyTorch (never -1)
        for ow in range(OW):
            idx[ow] = <int>(first_row * W + first_col[ow])
    for i in range(w.kh):
        ih = oh * w.sh + i * w.dh - w.ph
        if ih < 0 or ih >= H:       # a padding row: all −∞, changes nothing
            continue
        for j in range(w.kw):
            xr = plane + (ih + w.ph) * w.pitch + _col(w, j * w.dw)
            iw0 = j * w.dw - w.pw   # input column of output 0's tap (a padding cell is never taken)
            _max_tap(xr, y, idx, <int>(ih * W + iw0), OW, w.sw)


cdef inline void _max_2x2_row(const floating* r0, floating* y, int* idx,
                              Py_ssize_t W, Py_ssize_t OW, Py_ssize_t ih) noexcept nogil:
    """Fast path: kernel 2, stride 2, no padding or dilation, windows inside the input."""
    cdef const floating* r1 = r0 + W
    cdef Py_ssize_t ow, c
    cdef floating m, v
    cdef int k
    cdef bint take
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


def max_pool_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y, int[:, :, ::1] idx,
                     int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
                     Py_ssize_t Hp, Py_ssize_t Lq, floating[:, ::1] scratch,
                     const Py_ssize_t[::1] first_row, const Py_ssize_t[::1] first_col):
    """y[p, oh, ow] = max over the window (−∞ padding); idx (or None) gets the flat argmax.

    The padded plane holds every window: Hp rows of sw phases of Lq cells; scratch is
    (max_threads(), Hp·sw·Lq), or (max_threads(), 0) to read the input directly (windows inside
    it, stride 1 or the 2×2 fast path; then Hp, Lq = H, W).
    first_row[oh] / first_col[ow]: the window's first in-bounds row / column."""
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t OH = y.shape[1], OW = y.shape[2], p, oh
    cdef bint with_index = idx is not None
    cdef bint fast_2x2 = (kh == 2 and kw == 2 and sh == 2 and sw == 2 and dh == 1 and dw == 1
                          and scratch.shape[1] == 0)
    cdef Window w = _window(kh, kw, sh, sw, ph, pw, dh, dw, Hp, Lq, scratch.shape[1] > 0)
    cdef const floating* plane
    cdef floating* buf
    cdef int* ip
    cdef int nt = _num_threads(P * H * W)
    _check_layout(scratch.shape[1] > 0, sw, fast_2x2)
    with nogil, parallel(num_threads=nt):
        buf = _thread_plane(scratch, -INFINITY)
        for p in prange(P, schedule='static'):
            plane = _read_plane(&x[p, 0, 0], buf, H, W, &w)
            for oh in range(OH):
                ip = &idx[p, oh, 0] if with_index else NULL
                if fast_2x2:
                    _max_2x2_row(plane + 2 * oh * W, &y[p, oh, 0], ip, W, OW, 2 * oh)
                else:
                    _max_row(plane, &y[p, oh, 0], ip, H, W, OW, oh, &w, first_row[oh],
                             &first_col[0])


def adaptive_max_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y, int[:, :, ::1] idx,
                         const Py_ssize_t[::1] h_start, const Py_ssize_t[::1] h_end,
                         const Py_ssize_t[::1] w_start, const Py_ssize_t[::1] w_end):
    """y[p, oh, ow] = max of x[p, h_start[oh]:h_end[oh], w_start[ow]:w_end[ow]]; idx = argmax."""
    cdef Py_ssize_t P = x.shape[0], W = x.shape[2]
    cdef Py_ssize_t OH = y.shape[1], OW = y.shape[2], p, oh, ow, ih, iw, k
    cdef const floating* xp
    cdef floating m, v
    cdef bint take
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
                            take = (v > m) | (v != v)
                            m = v if take else m
                            k = ih * W + iw if take else k
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

def avg_pool_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y,
                     int kh, int kw, int sh, int sw, int ph, int pw,
                     Py_ssize_t Hp, Py_ssize_t Lq, floating[:, ::1] scratch,
                     const floating[:, ::1] divisor):
    """y[p, oh, ow] = (Σ of the window's cells, padding 0) / divisor[oh, ow], summed in
    row-major window order (PyTorch's). Hp, Lq, scratch as in max_pool_forward."""
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t OH = y.shape[1], OW = y.shape[2], p, oh, ow, i, j, ih, c
    cdef bint fast_2x2 = (kh == 2 and kw == 2 and sh == 2 and sw == 2 and scratch.shape[1] == 0)
    cdef Window w = _window(kh, kw, sh, sw, ph, pw, 1, 1, Hp, Lq, scratch.shape[1] > 0)
    cdef floating* yr
    cdef const floating* xr
    cdef const floating* r1
    cdef const floating* dr
    cdef const floating* plane
    cdef floating* buf
    cdef int nt = _num_threads(P * H * W)
    _check_layout(scratch.shape[1] > 0, sw, fast_2x2)
    with nogil, parallel(num_threads=nt):
        buf = _thread_plane(scratch, 0)
        for p in prange(P, schedule='static'):
            plane = _read_plane(&x[p, 0, 0], buf, H, W, &w)
            for oh in range(OH):
                yr = &y[p, oh, 0]
                dr = &divisor[oh, 0]
                if fast_2x2:
                    xr = plane + 2 * oh * W
                    r1 = xr + W
                    for ow in range(OW):
                        c = 2 * ow
                        yr[ow] = (xr[c] + xr[c + 1] + r1[c] + r1[c + 1]) / dr[ow]
                    continue
                for ow in range(OW):
                    yr[ow] = 0
                for i in range(kh):
                    ih = oh * sh + i - ph
                    if ih < 0 or ih >= H:
                        continue
                    for j in range(kw):
                        xr = plane + (ih + ph) * w.pitch + _col(&w, j)
                        for ow in range(OW):
                            yr[ow] += xr[ow]
                for ow in range(OW):
                    yr[ow] = yr[ow] / dr[ow]


def avg_pool_backward(const floating[:, :, ::1] gy, floating[:, :, ::1] gx,
                      int kh, int kw, int sh, int sw, int ph, int pw,
                      Py_ssize_t Hp, Py_ssize_t Lq, floating[:, ::1] scratch,
                      const floating[:, ::1] divisor):
    """gx[cell] = Σ over the windows containing the cell of gy / divisor. The shares go to a
    zeroed plane (the phase-split buffer, then copied out, or gx itself), scratch as in the
    forward."""
    cdef Py_ssize_t P = gx.shape[0], H = gx.shape[1], W = gx.shape[2]
    cdef Py_ssize_t OH = gy.shape[1], OW = gy.shape[2], p, oh, ow, i, j, ih, c
    cdef bint fast_2x2 = (kh == 2 and kw == 2 and sh == 2 and sw == 2 and scratch.shape[1] == 0)
    cdef Window w = _window(kh, kw, sh, sw, ph, pw, 1, 1, Hp, Lq, scratch.shape[1] > 0)
    cdef floating* gr
    cdef floating* r1
    cdef floating* plane
    cdef floating* buf
    cdef floating share
    cdef const floating* gyr
    cdef const floating* dr
    cdef int nt = _num_threads(P * H * W)
    _check_layout(scratch.shape[1] > 0, sw, fast_2x2)
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
                    gr = plane + 2 * oh * W
                    r1 = gr + W
                    for ow in range(OW):
                        c = 2 * ow
                        share = gyr[ow] / dr[ow]
                        gr[c] = share
                        gr[c + 1] = share
                        r1[c] = share
                        r1[c + 1] = share
                    continue
                for i in range(kh):
                    ih = oh * sh + i - ph
                    if ih < 0 or ih >= H:
                        continue
                    for j in range(kw):
                        gr = plane + (ih + ph) * w.pitch + _col(&w, j)
                        for ow in range(OW):
                            gr[ow] += gyr[ow] / dr[ow]
            if buf != NULL:
                _copy_plane(&gx[p, 0, 0], buf, H, W, &w, False)


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
    # pairwise (tree) reduction of the lanes: log2(LANES) short vector steps
    k = LANES // 2
    while k > 0:
        for i in range(k):
            acc[i] += acc[i + k]
        k //= 2
    s = acc[0]
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
