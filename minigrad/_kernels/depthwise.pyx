# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Depthwise convolution (groups = in channels = out channels): a per-plane stencil, no GEMM.

Each output plane reads only its own input plane and its own kh×kw filter, so there is no
matrix product to hand to BLAS: im2col would copy kh·kw times the input to multiply it by a
1-row matrix. Instead each plane is first copied, zero-padded, into a small per-thread buffer
that stays in the core's cache (``_Layout``): split into its stride phases, so that every tap
(i, j) reads the buffer at one constant offset from the output's flat position
p = oh·pw + ow, as in ``direct_conv.pyx``:

    y[n, c, oh, ow] = bias[c] + Σ_t weight[c, t] · buffer[offset[t] + p].

A block of ``BLOCK`` consecutive positions is summed in registers over all the taps and
stored once (positions with ow ≥ OW, the padding columns, are computed and dropped). The input
gradient is the same stencil with the filter flipped, on the output gradient spread onto the
input's grid (zeros between the cells of a strided convolution); the weight gradient is one dot
product per tap between the output gradient, laid out on the same flat positions with zeros in
the padding columns, and the input's buffer at the tap's offset. A non-finite input cell that no
output reads can still meet a zero there and make its filter's gradient NaN.

Parallel over the N·C planes (forward and input gradient: each thread owns whole planes) and
over the C channels (weight gradient: each thread owns whole filters, summing images in order),
so every result is bitwise the same for any number of threads. Sums run in tap order per output;
the weight gradient sums each plane's products in ``BLOCK`` lanes in the input's precision and
adds the planes in double. The Python wrapper (``minigrad/ops/conv.py``) validates the
geometry; ``_check`` guards the unchecked loops here.
"""
from cython.parallel cimport parallel, prange
from cython cimport floating
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset

from ._parallel cimport check_threads


cdef extern from *:
    """
    /* An empty statement the optimiser must keep: the loop that holds it is not vectorised. */
    #define MINIGRAD_SCALAR_LOOP() __asm__ volatile ("")
    """
    void _scalar_loop "MINIGRAD_SCALAR_LOOP" () noexcept nogil
    void _prefetch "__builtin_prefetch" (const void* address) noexcept nogil


cdef enum:
    BLOCK = 32      # output positions summed in registers at a time (GCC scalarises 16 or fewer)

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


cdef struct _Layout:
    # the zero-padded copy of one plane, split into sy·sx phases of ph rows of pw cells
    Py_ssize_t sy, sx, ph, pw, phase, size     # phase: cells per phase (with slack); size: all
    Py_ssize_t top, left                       # where cell (0, 0) of the source lands
    Py_ssize_t src_h, src_w, src_sy, src_sx    # the source plane and its spacing on the grid


cdef _Layout _layout(Py_ssize_t src_h, Py_ssize_t src_w, Py_ssize_t src_sy, Py_ssize_t src_sx,
                     Py_ssize_t top, Py_ssize_t left, Py_ssize_t sy, Py_ssize_t sx,
                     Py_ssize_t out_h, Py_ssize_t out_w, Py_ssize_t reach_h,
                     Py_ssize_t reach_w) noexcept nogil:
    """The buffer for outputs out_h × out_w computed with stride (sy, sx) over a grid where
    source cell (r, q) sits at (top + r·src_sy, left + q·src_sx); taps reach reach_h rows and
    reach_w columns beyond an output's first cell. Each phase holds ph × pw cells plus a
    slack of BLOCK + pw zeros, which the last block's overhang reads."""
    cdef _Layout L
    L.sy, L.sx, L.top, L.left = sy, sx, top, left
    L.src_h, L.src_w, L.src_sy, L.src_sx = src_h, src_w, src_sy, src_sx
    L.ph = out_h + reach_h // sy
    L.pw = out_w + reach_w // sx
    L.phase = L.ph * L.pw + BLOCK + L.pw
    L.size = sy * sx * L.phase
    return L


cdef inline Py_ssize_t _offset(_Layout* L, Py_ssize_t dy, Py_ssize_t dx) noexcept nogil:
    """Where a tap dy rows and dx columns from an output's first cell reads, relative to p."""
    return ((dy % L.sy) * L.sx + dx % L.sx) * L.phase + (dy // L.sy) * L.pw + dx // L.sx


cdef inline void _gather(const floating* src, floating* dst, Py_ssize_t count,
                         Py_ssize_t step) noexcept nogil:
    """dst[k] = src[k·step] for k < count (stride 2 spelt out, so that it vectorises)."""
    cdef Py_ssize_t k
    if step == 2:
        for k in range(count):
            dst[k] = src[2 * k]
    else:
        for k in range(count):
            dst[k] = src[k * step]


cdef inline void _spread(const floating* src, floating* dst, Py_ssize_t count,
                         Py_ssize_t step) noexcept nogil:
    """dst[k·step] = src[k] for k < count (stride 2 spelt out, so that it vectorises)."""
    cdef Py_ssize_t k
    if step == 2:
        for k in range(count):
            dst[2 * k] = src[k]
    else:
        for k in range(count):
            dst[k * step] = src[k]


cdef void _fill(_Layout* L, const floating* src, floating* buffer) noexcept nogil:
    """buffer = zeros, then each source cell at its place (cells beyond the buffer dropped).
    Either the source is dense (src_sx = 1: a strided forward splits rows into phases) or the
    buffer has one column phase (sx = 1: the input gradient spreads a strided output). Row
    phases are tracked by counting: a division per row would cost more than its copy."""
    cdef Py_ssize_t r, b, row, a, i, q_lo, q_hi, q0, count, target
    cdef floating* dst
    cdef const floating* line
    memset(buffer, 0, L.size * sizeof(floating))
    # the columns q whose grid column lands inside the buffer: 0 <= left + q·src_sx < sx·pw
    q_lo = 0
    while q_lo < L.src_w and L.left + q_lo * L.src_sx < 0:
        q_lo += 1
    q_hi = q_lo
    while q_hi < L.src_w and L.left + q_hi * L.src_sx < L.sx * L.pw:
        q_hi += 1
    if q_hi <= q_lo:
        return
    for b in range(L.sx):
        if L.sx == 1:
            q0, count, target = q_lo, q_hi - q_lo, L.left + q_lo * L.src_sx
        else:
            # the columns of phase b: left + q ≡ b (mod sx), at (left + q) // sx
            q0 = q_lo + ((b - L.left - q_lo) % L.sx + L.sx) % L.sx
            if q0 >= q_hi:
                continue
            count = (q_hi - q0 + L.sx - 1) // L.sx
            target = b * L.phase + (L.left + q0) // L.sx
        row = L.top                         # = i·sy + a, 0 <= a < sy
        a = (row % L.sy + L.sy) % L.sy
        i = (row - a) // L.sy
        for r in range(L.src_h):
            if 0 <= row < L.sy * L.ph:
                dst = buffer + a * L.sx * L.phase + i * L.pw + target
                line = src + r * L.src_w + q0
                if L.sx == 1 and L.src_sx == 1:
                    memcpy(dst, line, count * sizeof(floating))
                elif L.sx == 1:
                    _spread(line, dst, count, L.src_sx)
                else:
                    _gather(line, dst, count, L.sx)
            row = row + L.src_sy
            a = a + L.src_sy
            while a >= L.sy:
                a = a - L.sy
                i = i + 1


cdef void _to_steps(Py_ssize_t* offsets, Py_ssize_t n) noexcept nogil:
    """offsets[t] -= offsets[t − 1] for t ≥ 1 (in place): the steps ``_stencil`` takes."""
    cdef Py_ssize_t t
    for t in range(n - 1, 0, -1):
        offsets[t] = offsets[t] - offsets[t - 1]


cdef void _stencil(const floating* buffer, const Py_ssize_t* steps, const floating* taps,
                   Py_ssize_t n_taps, floating start, floating* out, Py_ssize_t out_h,
                   Py_ssize_t out_w, Py_ssize_t pw) noexcept nogil:
    """out[oh, ow] = start + Σ_t taps[t] · buffer[offset[t] + oh·pw + ow], block by block,
    where offset[t] = steps[0] + … + steps[t]."""
    cdef floating acc[BLOCK]
    cdef floating result[BLOCK]
    cdef const floating* row
    cdef floating w
    cdef Py_ssize_t block, x, t, k, r = 0, col = 0, step, valid
    for block in range((out_h * pw + BLOCK - 1) // BLOCK):
        for x in range(BLOCK):
            acc[x] = start
        row = buffer + block * BLOCK
        for t in range(n_taps):
            _scalar_loop()
            row = row + steps[t]
            w = taps[t]
            for x in range(BLOCK):
                acc[x] = acc[x] + w * row[x]
        for x in range(BLOCK):      # constant bounds keep ``acc`` in registers above
            result[x] = acc[x]
        # store row segment by row segment, dropping the padding columns; (r, col) walks on
        # to the next block's first position
        x = 0
        while x < BLOCK and r < out_h:
            step = min(pw - col, BLOCK - x)
            valid = min(out_w - col, step)
            for k in range(valid):
                out[r * out_w + col + k] = result[x + k]
            x = x + step
            col = col + step
            if col == pw:
                col = 0
                r = r + 1


cdef Py_ssize_t* _tap_offsets(_Layout* L, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t dh,
                              Py_ssize_t dw, bint flip, Py_ssize_t count) except NULL:
    """A new array (free it) of ``count`` >= kh·kw offsets: tap (i, j)'s at i·kw + j (of
    the flipped filter's tap, (kh−1−i, kw−1−j), if ``flip``), zeros after."""
    cdef Py_ssize_t i, j
    cdef Py_ssize_t* offsets = <Py_ssize_t*>calloc(count, sizeof(Py_ssize_t))
    if offsets == NULL:
        raise MemoryError()
    for i in range(kh):
        for j in range(kw):
            offsets[i * kw + j] = (_offset(L, (kh - 1 - i) * dh, (kw - 1 - j) * dw) if flip
                                   else _offset(L, i * dh, j * dw))
    return offsets


cdef int _planes(_Layout* L, const floating[:, :, :, ::1] src, const floating[:, ::1] weight,
                 const floating* bias, floating[:, :, :, ::1] out, Py_ssize_t kh, Py_ssize_t kw,
                 Py_ssize_t dh, Py_ssize_t dw, bint flip, int num_threads) except -1:
    """Each plane (n, c) of ``out`` = the stencil of channel c's kh×kw filter (flipped if
    ``flip``) over src[n, c] laid out by L (plus bias[c] unless ``bias`` is NULL), parallel
    over the planes."""
    cdef Py_ssize_t plane, c, channels = src.shape[1], taps = kh * kw
    cdef floating* buffer
    cdef Py_ssize_t* steps = _tap_offsets(L, kh, kw, dh, dw, flip, taps)
    _to_steps(steps, taps)
    try:
        with nogil, parallel(num_threads=num_threads):
            buffer = <floating*>malloc(L.size * sizeof(floating))
            if buffer == NULL:
                with gil:
                    raise MemoryError()
            for plane in prange(src.shape[0] * channels, schedule="static"):
                c = plane % channels
                _fill(L, &src[plane // channels, c, 0, 0], buffer)
                _stencil(buffer, steps, &weight[c, 0], taps, bias[c] if bias != NULL else 0,
                         &out[plane // channels, c, 0, 0], out.shape[2], out.shape[3], L.pw)
            free(buffer)
    finally:
        free(steps)
    return 0


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
    if has_bias and bias.shape[0] != channels:
        raise ValueError(f"depthwise: bias has {bias.shape[0]} entries for {channels} channels")
    cdef int nt = check_threads(num_threads)
    if OH == 0 or OW == 0 or x.shape[0] == 0 or channels == 0:
        return
    cdef _Layout L = _layout(H, W, 1, 1, pt, pl, sh, sw, OH, OW, (kh - 1) * dh, (kw - 1) * dw)
    _planes(&L, x, weight, &bias[0] if has_bias else NULL, y, kh, kw, dh, dw, False, nt)


def grad_input(const floating[:, :, :, ::1] gy, const floating[:, ::1] weight,
               floating[:, :, :, ::1] gx,
               Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
               Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw, int num_threads):
    """gx[n, c, h, w] = Σ over the (output, tap) pairs that read x[n, c, h, w] of
    gy[n, c, oh, ow] · weight[c, tap], in tap order: the output gradient placed at
    (oh·sh + (kh−1)·dh − pt, ow·sw + (kw−1)·dw − pl) on a stride-1 grid, correlated with the
    flipped filter."""
    _check(gx.shape, gy.shape, weight.shape, kh, kw, sh, sw, pt, pl, dh, dw)
    cdef Py_ssize_t channels = gx.shape[1], H = gx.shape[2], W = gx.shape[3]
    cdef Py_ssize_t OH = gy.shape[2], OW = gy.shape[3]
    cdef int nt = check_threads(num_threads)
    if H == 0 or W == 0 or gx.shape[0] == 0 or channels == 0:
        return
    if OH == 0 or OW == 0:
        gx[...] = 0
        return
    cdef _Layout L = _layout(OH, OW, sh, sw, (kh - 1) * dh - pt, (kw - 1) * dw - pl, 1, 1,
                             H, W, (kh - 1) * dh, (kw - 1) * dw)
    _planes(&L, gy, weight, NULL, gx, kh, kw, dh, dw, True, nt)


cdef enum:
    DOT_TAPS = 3    # taps per pass of ``_dots``: each output-gradient block loaded once for all


cdef void _dots(const floating* g, const floating* buffer, const Py_ssize_t* offsets,
                Py_ssize_t length, double* totals) noexcept nogil:
    """totals[k] += Σ_{p < length} g[p] · buffer[offsets[k] + p] for k < DOT_TAPS, ``length``
    a multiple of BLOCK: BLOCK lanes per tap in the input's precision (independent sums that
    vectorise), then added in double in lane order."""
    cdef floating lanes[DOT_TAPS][BLOCK]
    cdef double total
    cdef Py_ssize_t p, x, k
    for k in range(DOT_TAPS):
        for x in range(BLOCK):
            lanes[k][x] = 0
    for p in range(length // BLOCK):
        _scalar_loop()
        for k in range(DOT_TAPS):
            for x in range(BLOCK):
                lanes[k][x] = lanes[k][x] + g[p * BLOCK + x] * buffer[offsets[k] + p * BLOCK + x]
    for k in range(DOT_TAPS):
        total = 0
        for x in range(BLOCK):
            total += lanes[k][x]
        totals[k] += total


def grad_weight(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] gy,
                floating[:, ::1] gw,
                Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw, int num_threads):
    """gw[c, i·kw + j] = Σ_n Σ_{oh, ow} gy[n, c, oh, ow] · x[n, c, oh·sh − pt + i·dh,
    ow·sw − pl + j·dw] (inside cells only); each image's plane summed in ``BLOCK`` lanes, the
    images added in double, in order.

    The output gradient is laid out on the forward's flat positions (zeros in the padding
    columns and the last block's overhang), so each tap is one dot product with the input's
    buffer at the tap's offset."""
    _check(x.shape, gy.shape, gw.shape, kh, kw, sh, sw, pt, pl, dh, dw)
    cdef Py_ssize_t n_images = x.shape[0], channels = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t OH = gy.shape[2], OW = gy.shape[3], taps = kh * kw, length
    cdef int nt = check_threads(num_threads)
    if OH == 0 or OW == 0 or n_images == 0:
        gw[...] = 0
        return
    if channels == 0:
        return
    cdef _Layout L = _layout(H, W, 1, 1, pt, pl, sh, sw, OH, OW, (kh - 1) * dh, (kw - 1) * dw)
    length = (OH * L.pw + BLOCK - 1) // BLOCK * BLOCK
    # taps padded to whole passes of ``_dots``; the extra ones read offset 0 and are dropped
    cdef Py_ssize_t padded = (taps + DOT_TAPS - 1) // DOT_TAPS * DOT_TAPS
    cdef Py_ssize_t* offsets = _tap_offsets(&L, kh, kw, dh, dw, False, padded)
    try:
        _weight_sums(&L, x, gy, gw, offsets, taps, padded, length, nt)
    finally:
        free(offsets)


cdef int _weight_sums(_Layout* L, const floating[:, :, :, ::1] x,
                      const floating[:, :, :, ::1] gy, floating[:, ::1] gw,
                      const Py_ssize_t* offsets, Py_ssize_t taps, Py_ssize_t padded,
                      Py_ssize_t length, int nt) except -1:
    """grad_weight's sums, parallel over the channels."""
    cdef Py_ssize_t n_images = x.shape[0], channels = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t OH = gy.shape[2], OW = gy.shape[3], n, c, t, r
    cdef floating* buffer
    cdef floating* flat
    cdef double* totals
    with nogil, parallel(num_threads=nt):
        # per thread: the input's buffer, the output gradient's flat copy, the taps' sums
        buffer = <floating*>malloc((L.size + length) * sizeof(floating))
        totals = <double*>malloc(padded * sizeof(double))
        if buffer == NULL or totals == NULL:
            with gil:
                raise MemoryError()
        flat = buffer + L.size
        for c in prange(channels, schedule="static"):
            for t in range(padded):
                totals[t] = 0
            for n in range(n_images):
                if n + 1 < n_images:
                    # the next image's planes lie a whole image away: no hardware prefetcher
                    # follows that stride, so ask for them while this one is summed
                    for r in range((H * W * sizeof(floating) + 63) // 64):
                        _prefetch(<char*>&x[n + 1, c, 0, 0] + 64 * r)
                    for r in range((OH * OW * sizeof(floating) + 63) // 64):
                        _prefetch(<char*>&gy[n + 1, c, 0, 0] + 64 * r)
                _fill(L, &x[n, c, 0, 0], buffer)
                memset(flat, 0, length * sizeof(floating))
                for r in range(OH):
                    memcpy(flat + r * L.pw, &gy[n, c, r, 0], OW * sizeof(floating))
                for t in range(padded // DOT_TAPS):
                    _dots(flat, buffer, offsets + t * DOT_TAPS, length, totals + t * DOT_TAPS)
            for t in range(taps):
                gw[c, t] = <floating>totals[t]
        free(buffer)
        free(totals)
    return 0
