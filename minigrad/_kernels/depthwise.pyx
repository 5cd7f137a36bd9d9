# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Depthwise convolution (groups = in channels = out channels): a per-plane stencil, no GEMM.

Each output plane reads only its own input plane and its own kh×kw filter, so there is no
matrix product to hand to BLAS: im2col would copy kh·kw times the input to multiply it by a
1-row matrix. Here every tap (i, j) updates a whole output row at once,
``y_row[ow] += w[i, j] · x_row[ow·sw + j·dw − pl]``, over the outputs whose input cell lies
inside the plane (padding cells add nothing), so the inner loop is a branch-free multiply-add
that vectorises for stride 1.

Parallel over the N·C planes (forward and input gradient: each thread owns whole planes) and
over the C channels (weight gradient: each thread owns whole filters, summing images in order),
so every result is bitwise the same for any number of threads. Sums run in tap order per output,
and the weight gradient accumulates in double. The Python wrapper (``minigrad/ops/conv.py``)
validates the geometry; ``_check`` guards the unchecked loops here.
"""
from cython.parallel cimport parallel, prange
from cython cimport floating
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from ._parallel cimport check_threads
from ._windows cimport end_inside, first_inside


def _check(x_shape, y_shape, w_shape, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh,
           Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw):
    """ValueError unless the planes, the filters and the output size agree with the geometry."""
    n, c, h, w = tuple(x_shape[:4])
    if min(kh, kw, sh, sw, dh, dw) < 1 or min(pt, pl) < 0:
        raise ValueError(f"depthwise: kernel, stride and dilation must be positive and padding "
                         f"non-negative, got kernel ({kh}, {kw}), stride ({sh}, {sw}), "
                         f"padding ({pt}, {pl}), dilation ({dh}, {dw})")
    out_h, out_w = y_shape[2], y_shape[3]
    if (tuple(y_shape[:2]) != (n, c) or tuple(w_shape[:2]) != (c, kh * kw)
            or (out_h and (out_h - 1) * sh > h + 2 * pt + kh * dh)
            or (out_w and (out_w - 1) * sw > w + 2 * pl + kw * dw)):
        raise ValueError(f"depthwise: inconsistent shapes x {(n, c, h, w)}, out "
                         f"{tuple(y_shape[:4])}, filters {tuple(w_shape[:2])}")


cdef void _stencil_plane(const floating* a, floating* b, const floating[:, ::1] weight,
                         Py_ssize_t c, Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW,
                         Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                         Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw,
                         bint adjoint) noexcept nogil:
    """One plane, tap by tap. Forward: ``a`` is the H×W input, ``b`` the OH×OW output (already
    holding the bias), b[o] += w[t] · a[cell(o, t)]. Adjoint: ``a`` is the OH×OW output
    gradient, ``b`` the zeroed H×W input gradient, b[cell(o, t)] += w[t] · a[o]."""
    cdef Py_ssize_t i, j, oh, ow, oh_lo, oh_hi, ow_lo, ow_hi, off
    cdef const floating* src
    cdef floating* dst
    cdef floating tap
    for i in range(kh):
        oh_lo = first_inside(i * dh - pt, sh, OH)
        oh_hi = end_inside(i * dh - pt, sh, H, OH)
        for j in range(kw):
            tap = weight[c, i * kw + j]
            off = j * dw - pl
            ow_lo = first_inside(off, sw, OW)
            ow_hi = end_inside(off, sw, W, OW)
            for oh in range(oh_lo, oh_hi):
                if not adjoint:
                    src = a + (oh * sh - pt + i * dh) * W + off
                    dst = b + oh * OW
                    if sw == 1:
                        for ow in range(ow_lo, ow_hi):
                            dst[ow] = dst[ow] + tap * src[ow]
                    else:
                        for ow in range(ow_lo, ow_hi):
                            dst[ow] = dst[ow] + tap * src[ow * sw]
                else:
                    src = a + oh * OW
                    dst = b + (oh * sh - pt + i * dh) * W + off
                    if sw == 1:
                        for ow in range(ow_lo, ow_hi):
                            dst[ow] = dst[ow] + tap * src[ow]
                    else:
                        for ow in range(ow_lo, ow_hi):
                            dst[ow * sw] = dst[ow * sw] + tap * src[ow]


def forward(const floating[:, :, :, ::1] x, const floating[:, ::1] weight,
            const floating[::1] bias, floating[:, :, :, ::1] y,
            Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
            Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw, int num_threads):
    """y[n, c, oh, ow] = bias[c] + Σ_{i<kh, j<kw} weight[c, i·kw + j] ·
    x[n, c, oh·sh − pt + i·dh, ow·sw − pl + j·dw] (cells outside x add nothing); ``bias`` may
    be empty (no bias)."""
    _check(x.shape, y.shape, weight.shape, kh, kw, sh, sw, pt, pl, dh, dw)
    cdef Py_ssize_t channels = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t OH = y.shape[2], OW = y.shape[3]
    cdef bint has_bias = bias.shape[0] > 0
    cdef Py_ssize_t plane, c, o
    cdef floating* dst
    cdef floating start
    if has_bias and bias.shape[0] != channels:
        raise ValueError(f"depthwise: bias has {bias.shape[0]} entries for {channels} channels")
    cdef int nt = check_threads(num_threads)
    for plane in prange(x.shape[0] * channels, nogil=True, schedule="static", num_threads=nt):
        c = plane % channels
        dst = &y[plane // channels, c, 0, 0]
        start = bias[c] if has_bias else 0
        for o in range(OH * OW):
            dst[o] = start
        _stencil_plane(&x[plane // channels, c, 0, 0], dst, weight, c, H, W, OH, OW,
                       kh, kw, sh, sw, pt, pl, dh, dw, False)


def grad_input(const floating[:, :, :, ::1] gy, const floating[:, ::1] weight,
               floating[:, :, :, ::1] gx,
               Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
               Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw, int num_threads):
    """gx[n, c, h, w] = Σ over the (output, tap) pairs that read x[n, c, h, w] of
    gy[n, c, oh, ow] · weight[c, tap]: the forward's taps scattered back, in tap order."""
    _check(gx.shape, gy.shape, weight.shape, kh, kw, sh, sw, pt, pl, dh, dw)
    cdef Py_ssize_t channels = gx.shape[1], H = gx.shape[2], W = gx.shape[3]
    cdef Py_ssize_t OH = gy.shape[2], OW = gy.shape[3]
    cdef Py_ssize_t plane, c
    cdef floating* dst
    cdef int nt = check_threads(num_threads)
    for plane in prange(gx.shape[0] * channels, nogil=True, schedule="static", num_threads=nt):
        c = plane % channels
        dst = &gx[plane // channels, c, 0, 0]
        memset(dst, 0, H * W * sizeof(floating))
        _stencil_plane(&gy[plane // channels, c, 0, 0], dst, weight, c, H, W, OH, OW,
                       kh, kw, sh, sw, pt, pl, dh, dw, True)


cdef enum:
    LANES = 8   # independent partial sums of the weight gradient's dot products


cdef inline double _dot(const floating* g, const floating* row, Py_ssize_t lo, Py_ssize_t hi,
                        Py_ssize_t sw) noexcept nogil:
    """Σ_{lo ≤ o < hi} g[o] · row[o·sw] in double, as LANES partial sums added in a fixed order
    (so the result depends only on the data): one running sum would wait on every add, and
    independent lanes let the compiler vectorise."""
    cdef double lanes[LANES]
    cdef double total = 0
    cdef Py_ssize_t o, l, end = lo + (hi - lo) // LANES * LANES
    for l in range(LANES):
        lanes[l] = 0
    o = lo
    while o < end:
        for l in range(LANES):
            lanes[l] += g[o + l] * row[(o + l) * sw]
        o += LANES
    for l in range(LANES):
        total += lanes[l]
    for o in range(end, hi):
        total += g[o] * row[o * sw]
    return total


def grad_weight(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] gy,
                floating[:, ::1] gw,
                Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw, int num_threads):
    """gw[c, i·kw + j] = Σ_n Σ_{oh, ow} gy[n, c, oh, ow] · x[n, c, oh·sh − pt + i·dh,
    ow·sw − pl + j·dw] (inside cells only), summed in double, images in order.

    One pass over each (image, channel) pair's planes serves every tap: each output-gradient
    row is dotted with the input rows of all the taps while both are in cache. Each tap still
    adds its row products in the order (image, row), so the sums do not depend on the pass."""
    _check(x.shape, gy.shape, gw.shape, kh, kw, sh, sw, pt, pl, dh, dw)
    cdef Py_ssize_t n_images = x.shape[0], channels = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t OH = gy.shape[2], OW = gy.shape[3], taps = kh * kw
    cdef Py_ssize_t n, c, i, j, k, t, oh, ih
    cdef const floating* row
    cdef const floating* g
    cdef double* totals
    cdef Py_ssize_t* ow_lo
    cdef Py_ssize_t* ow_hi
    cdef int nt = check_threads(num_threads)
    with nogil, parallel(num_threads=nt):
        # per thread: the taps' running sums and each tap column's range of inside outputs
        totals = <double*>malloc(taps * sizeof(double))
        ow_lo = <Py_ssize_t*>malloc(2 * kw * sizeof(Py_ssize_t))
        if totals == NULL or ow_lo == NULL:
            with gil:
                raise MemoryError()
        ow_hi = ow_lo + kw
        for k in range(kw):
            ow_lo[k] = first_inside(k * dw - pl, sw, OW)
            ow_hi[k] = end_inside(k * dw - pl, sw, W, OW)
        for c in prange(channels, schedule="static"):
            for t in range(taps):
                totals[t] = 0
            for n in range(n_images):
                for oh in range(OH):
                    g = &gy[n, c, oh, 0]
                    for i in range(kh):
                        ih = oh * sh - pt + i * dh
                        if ih < 0 or ih >= H:
                            continue
                        row = &x[n, c, ih, 0]
                        for j in range(kw):
                            totals[i * kw + j] += _dot(g, row + j * dw - pl, ow_lo[j],
                                                       ow_hi[j], sw)
            for t in range(taps):
                gw[c, t] = <floating>totals[t]
        free(totals)
        free(ow_lo)
