# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""im2col / col2im for 2-D convolution (strided, padded, dilated), and the per-channel bias add.

Layout (one chunk of ``B`` images, ``C`` channels, a ``kh × kw`` kernel, an ``Ho × Wo`` output):

    cols[(c·kh + i)·kw + j, b, oh·Wo + ow]
        = x[b, c, oh·sh − pad_top + i·dh, ow·sw − pad_left + j·dw]

(0 where the index falls in the padding). Row ``(c·kh + i)·kw + j`` matches the weight layout
``(O, C, kh, kw)`` flattened to ``(O, C·kh·kw)``, and ``cols`` viewed as (C·kh·kw, B·Ho·Wo) is
one matrix, so ``weight @ cols`` convolves the whole chunk in one product (output (O, B, Ho·Wo));
the channels of group ``g`` are a contiguous block of rows.

The padding is given as (top, left) only: the bottom/right padding is implied by ``Ho``/``Wo``,
which lets the caller use PyTorch's asymmetric split for ``padding='same'``.

Work is split over (image, channel) pairs with ``prange``: both cores stay busy even for a chunk
of one image, and in col2im each pair owns its own input plane, so there are no write races.
Output rows narrower than ``GATHER_WIDTH`` (``SCATTER_WIDTH`` for col2im) go through a table of
the pixel each tap reads at each output position (``_reads``): one gather per tap and image
plane instead of a loop per output row, whose set-up outweighed the few entries it copied on
small maps (a strided convolution's 8×8 input). Wider rows are copied row by row.

Below ``PARALLEL_MIN`` column entries a loop runs on one thread: there a second thread's
start-up costs more than it saves, and its spin-wait afterwards competes with the BLAS threads
of the product that follows (batch-1 inference).
"""
from cython.parallel cimport prange
from cython cimport floating
from libc.limits cimport INT_MAX
from libc.string cimport memcpy, memset

import numpy as np

from ._parallel cimport team_size
from ._windows cimport end_inside, first_inside

# Column entries below which a loop runs on one thread.
cdef Py_ssize_t PARALLEL_MIN = 1 << 15
#: Output rows narrower than this are unrolled through the table of reads.
GATHER_WIDTH = 16
#: Output rows narrower than this are folded back (col2im) through the table of reads.
SCATTER_WIDTH = 8


def _check_shapes(x_shape, cols_shape, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh,
                  Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t out_h,
                  Py_ssize_t out_w):
    """Guard the unchecked loops: the buffers must have exactly the sizes the geometry implies."""
    if min(kh, kw, sh, sw, dh, dw) < 1 or min(out_h, out_w) < 0:
        raise ValueError(f"im2col: kernel, stride and dilation must be positive and the output "
                         f"size non-negative, got kernel ({kh}, {kw}), stride ({sh}, {sw}), "
                         f"dilation ({dh}, {dw}), output ({out_h}, {out_w})")
    expected = (x_shape[1] * kh * kw, x_shape[0], out_h * out_w)
    if tuple(cols_shape[:3]) != expected:
        raise ValueError(f"im2col: cols must have shape {expected} for an input of shape "
                         f"{tuple(x_shape[:4])}, got {tuple(cols_shape[:3])}")


def _reads(Py_ssize_t height, Py_ssize_t width, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh,
           Py_ssize_t sw, Py_ssize_t pad_top, Py_ssize_t pad_left, Py_ssize_t dh, Py_ssize_t dw,
           Py_ssize_t out_h, Py_ssize_t out_w):
    """(kh·kw, out_h·out_w) intc: the pixel of its input plane, ih·W + iw, that tap (i, j)
    reads at output (oh, ow), or -1 in the padding."""
    if height * width > INT_MAX:
        raise ValueError(f"im2col: planes of at most {INT_MAX} pixels, got {height}×{width}")
    reads = np.full((kh * kw, out_h * out_w), -1, np.intc)
    cdef int[:, ::1] table = reads
    cdef Py_ssize_t i, j, oh, ow, ih, iw
    for i in range(kh):
        for j in range(kw):
            for oh in range(out_h):
                ih = oh * sh - pad_top + i * dh
                if 0 <= ih < height:
                    for ow in range(out_w):
                        iw = ow * sw - pad_left + j * dw
                        if 0 <= iw < width:
                            table[i * kw + j, oh * out_w + ow] = <int>(ih * width + iw)
    return reads


def im2col(const floating[:, :, :, ::1] x, floating[:, :, ::1] cols,
           Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
           Py_ssize_t pad_top, Py_ssize_t pad_left, Py_ssize_t dh, Py_ssize_t dw,
           Py_ssize_t out_h, Py_ssize_t out_w, int num_threads):
    """Unroll the windows of ``x`` (B, C, H, W) into ``cols`` (C·kh·kw, B, out_h·out_w)."""
    _check_shapes(x.shape, cols.shape, kh, kw, sh, sw, dh, dw, out_h, out_w)
    cdef Py_ssize_t n_images = x.shape[0], channels = x.shape[1]
    cdef Py_ssize_t height = x.shape[2], width = x.shape[3]
    cdef Py_ssize_t plane = out_h * out_w
    if n_images == 0 or channels == 0 or plane == 0:
        return
    cdef int nt = team_size(n_images * channels * kh * kw * plane, PARALLEL_MIN, num_threads)
    cdef const int[:, ::1] reads
    if out_w < GATHER_WIDTH:
        reads = _reads(height, width, kh, kw, sh, sw, pad_top, pad_left, dh, dw, out_h, out_w)
        _gather(x, cols, reads, nt)
    else:
        _unroll_rows(x, cols, kh, kw, sh, sw, pad_top, pad_left, dh, dw, out_h, out_w, nt)


cdef void _gather(const floating[:, :, :, ::1] x, floating[:, :, ::1] cols,
                  const int[:, ::1] reads, int nt) noexcept:
    """im2col through the table of reads: cols[c·T + t, b, p] = x[b, c] at pixel
    reads[t, p], 0 where that is -1."""
    cdef Py_ssize_t channels = x.shape[1], taps = reads.shape[0], plane = reads.shape[1]
    cdef Py_ssize_t pair, b, c, t, p
    cdef int at
    cdef const floating* src
    cdef floating* dst
    cdef const int* tap_reads
    with nogil:
        for pair in prange(x.shape[0] * channels, schedule='static', num_threads=nt):
            b = pair // channels
            c = pair % channels
            src = &x[b, c, 0, 0]
            for t in range(taps):
                dst = &cols[c * taps + t, b, 0]
                tap_reads = &reads[t, 0]
                # the padding's reads go to pixel 0 and are replaced by zeros: one masked
                # gather
                for p in range(plane):
                    at = tap_reads[p]
                    dst[p] = src[at if at >= 0 else 0] if at >= 0 else 0


cdef void _unroll_rows(const floating[:, :, :, ::1] x, floating[:, :, ::1] cols,
                       Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                       Py_ssize_t pad_top, Py_ssize_t pad_left, Py_ssize_t dh, Py_ssize_t dw,
                       Py_ssize_t out_h, Py_ssize_t out_w, int nt) noexcept:
    """im2col output row by output row."""
    cdef Py_ssize_t n_images = x.shape[0], channels = x.shape[1]
    cdef Py_ssize_t height = x.shape[2], width = x.shape[3]
    cdef Py_ssize_t pair, b, c, i, j, oh, ow, ih, w_off, ow_lo, ow_hi, oh_lo, oh_hi
    cdef const floating* src
    cdef const floating* src_row
    cdef floating* dst
    cdef floating* dst_row
    with nogil:
        for pair in prange(n_images * channels, schedule='static', num_threads=nt):
            b = pair // channels
            c = pair % channels
            src = &x[b, c, 0, 0]
            for i in range(kh):
                # output rows whose input row oh·sh − pad_top + i·dh lies inside [0, H)
                oh_lo = first_inside(i * dh - pad_top, sh, out_h)
                oh_hi = end_inside(i * dh - pad_top, sh, height, out_h)
                if oh_hi < oh_lo:
                    oh_hi = oh_lo
                for j in range(kw):
                    dst = &cols[(c * kh + i) * kw + j, b, 0]
                    w_off = j * dw - pad_left
                    ow_lo = first_inside(w_off, sw, out_w)
                    ow_hi = end_inside(w_off, sw, width, out_w)
                    if ow_hi < ow_lo:
                        ow_hi = ow_lo
                    if oh_lo > 0:
                        memset(dst, 0, oh_lo * out_w * sizeof(floating))
                    for oh in range(oh_lo, oh_hi):
                        ih = oh * sh - pad_top + i * dh
                        src_row = src + ih * width
                        dst_row = dst + oh * out_w
                        if ow_lo > 0:
                            memset(dst_row, 0, ow_lo * sizeof(floating))
                        if sw == 1:
                            if ow_hi > ow_lo:
                                memcpy(dst_row + ow_lo, src_row + ow_lo + w_off,
                                       (ow_hi - ow_lo) * sizeof(floating))
                        else:
                            for ow in range(ow_lo, ow_hi):
                                dst_row[ow] = src_row[ow * sw + w_off]
                        if ow_hi < out_w:
                            memset(dst_row + ow_hi, 0, (out_w - ow_hi) * sizeof(floating))
                    if oh_hi < out_h:
                        memset(dst + oh_hi * out_w, 0, (out_h - oh_hi) * out_w * sizeof(floating))


def col2im(const floating[:, :, ::1] cols, floating[:, :, :, ::1] x,
           Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
           Py_ssize_t pad_top, Py_ssize_t pad_left, Py_ssize_t dh, Py_ssize_t dw,
           Py_ssize_t out_h, Py_ssize_t out_w, int num_threads):
    """The adjoint of ``im2col``: ``x`` (B, C, H, W) is overwritten with the sum, over every
    window position, of the ``cols`` entries that im2col would have read from that pixel
    (entries that fall in the padding are dropped)."""
    _check_shapes(x.shape, cols.shape, kh, kw, sh, sw, dh, dw, out_h, out_w)
    cdef Py_ssize_t n_images = x.shape[0], channels = x.shape[1]
    cdef Py_ssize_t height = x.shape[2], width = x.shape[3]
    if n_images == 0 or channels == 0 or height * width == 0:
        return
    cdef int nt = team_size(n_images * channels * kh * kw * out_h * out_w, PARALLEL_MIN,
                            num_threads)
    cdef const int[:, ::1] reads
    if out_w < SCATTER_WIDTH:
        reads = _reads(height, width, kh, kw, sh, sw, pad_top, pad_left, dh, dw, out_h, out_w)
        _scatter(cols, x, reads, nt)
    else:
        _fold_rows(cols, x, kh, kw, sh, sw, pad_top, pad_left, dh, dw, out_h, out_w, nt)


cdef void _scatter(const floating[:, :, ::1] cols, floating[:, :, :, ::1] x,
                   const int[:, ::1] reads, int nt) noexcept:
    """col2im through the table of reads: x[b, c] at pixel reads[t, p] += cols[c·T + t, b,
    p], summed over t and p."""
    cdef Py_ssize_t channels = x.shape[1], taps = reads.shape[0], plane = reads.shape[1]
    cdef Py_ssize_t pixels = x.shape[2] * x.shape[3]
    cdef Py_ssize_t pair, b, c, t, p
    cdef int at
    cdef floating* dst
    cdef const floating* src
    cdef const int* tap_reads
    with nogil:
        for pair in prange(x.shape[0] * channels, schedule='static', num_threads=nt):
            b = pair // channels
            c = pair % channels
            dst = &x[b, c, 0, 0]
            memset(dst, 0, pixels * sizeof(floating))
            for t in range(taps):
                src = &cols[c * taps + t, b, 0]
                tap_reads = &reads[t, 0]
                for p in range(plane):
                    at = tap_reads[p]
                    if at >= 0:
                        dst[at] += src[p]


cdef void _fold_rows(const floating[:, :, ::1] cols, floating[:, :, :, ::1] x,
                     Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                     Py_ssize_t pad_top, Py_ssize_t pad_left, Py_ssize_t dh, Py_ssize_t dw,
                     Py_ssize_t out_h, Py_ssize_t out_w, int nt) noexcept:
    """col2im output row by output row."""
    cdef Py_ssize_t n_images = x.shape[0], channels = x.shape[1]
    cdef Py_ssize_t height = x.shape[2], width = x.shape[3]
    cdef Py_ssize_t pair, b, c, i, j, oh, ow, ih, w_off, ow_lo, ow_hi, oh_lo, oh_hi
    cdef floating* dst
    cdef floating* dst_row
    cdef const floating* src
    cdef const floating* src_row
    with nogil:
        for pair in prange(n_images * channels, schedule='static', num_threads=nt):
            b = pair // channels
            c = pair % channels
            dst = &x[b, c, 0, 0]
            memset(dst, 0, height * width * sizeof(floating))
            if out_h * out_w == 0:
                continue
            for i in range(kh):
                oh_lo = first_inside(i * dh - pad_top, sh, out_h)
                oh_hi = end_inside(i * dh - pad_top, sh, height, out_h)
                for j in range(kw):
                    src = &cols[(c * kh + i) * kw + j, b, 0]
                    w_off = j * dw - pad_left
                    ow_lo = first_inside(w_off, sw, out_w)
                    ow_hi = end_inside(w_off, sw, width, out_w)
                    for oh in range(oh_lo, oh_hi):
                        ih = oh * sh - pad_top + i * dh
                        dst_row = dst + ih * width + w_off
                        src_row = src + oh * out_w
                        if sw == 1:
                            for ow in range(ow_lo, ow_hi):
                                dst_row[ow] += src_row[ow]
                        else:
                            for ow in range(ow_lo, ow_hi):
                                dst_row[ow * sw] += src_row[ow]


def add_channel_bias(floating[:, :, ::1] y, const floating[::1] bias, int num_threads):
    """y[b, o, :] += bias[o] for y of shape (B, O, P)."""
    if y.shape[1] != bias.shape[0]:
        raise ValueError(f"add_channel_bias: bias has {bias.shape[0]} entries for "
                         f"{y.shape[1]} channels")
    cdef Py_ssize_t n_images = y.shape[0], channels = y.shape[1], plane = y.shape[2]
    cdef Py_ssize_t pair, p
    cdef floating value
    cdef floating* row
    cdef int nt = team_size(n_images * channels * plane, PARALLEL_MIN, num_threads)
    with nogil:
        for pair in prange(n_images * channels, schedule='static', num_threads=nt):
            row = &y[pair // channels, pair % channels, 0]
            value = bias[pair % channels]
            for p in range(plane):
                row[p] += value
