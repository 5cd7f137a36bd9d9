# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Per-channel passes of batch normalisation over x viewed as (N, C, L), and the per-channel
sums of a convolution's bias gradient.

Each pass reads the batch in memory order, which the hardware prefetcher follows: a
channel's values are N runs of L, which on small maps (L = 49 on 7×7) are a few cache lines
each, a stride apart, and a pass over one channel at a time waited on every line. The
element-wise passes split the N·C runs evenly over the threads. The sums split the batch
into at most ``IMAGE_CHUNKS`` chunks of whole images, fixed by N alone: each chunk, on one
thread, sums every channel's runs into ``LANES`` double lanes per channel (lane k takes the
values at i ≡ k mod LANES of each run, so the adds vectorise), folds them, and the chunks'
partial sums are added in order: the result does not depend on the thread count. Below
``PARALLEL_MIN`` values (a batch of one small image) one thread does it all: starting the
team would cost more than the pass. The Python wrapper (``minigrad/ops/normalization.py``)
checks the shapes.
"""
from cython.parallel cimport prange
from cython cimport floating
from libc.math cimport sqrt
from libc.string cimport memset

import numpy as np

from ._parallel cimport team_size

cdef Py_ssize_t PARALLEL_MIN = 1 << 15


cdef extern from "lane_sums.h" nogil:
    enum: LANES "MINIGRAD_LANE_SUMS"    # double sums per channel: two 512-bit vectors' worth
    void _add_f "minigrad_lanes_add_f" (double* lanes, const float* a, Py_ssize_t length)
    void _add_d "minigrad_lanes_add_d" (double* lanes, const double* a, Py_ssize_t length)
    void _products_f "minigrad_lanes_products_f" (double* lanes, const float* a,
                                                   const float* b, Py_ssize_t length,
                                                   double shift_a, double shift_b)
    void _products_d "minigrad_lanes_products_d" (double* lanes, const double* a,
                                                   const double* b, Py_ssize_t length,
                                                   double shift_a, double shift_b)
    void _both_f "minigrad_lanes_both_f" (double* sums, double* dots, const float* a,
                                           const float* b, Py_ssize_t length, double shift_b)
    void _both_d "minigrad_lanes_both_d" (double* sums, double* dots, const double* a,
                                           const double* b, Py_ssize_t length, double shift_b)

cdef enum:
    IMAGE_CHUNKS = 8    # at most this many partial sums per channel


cdef inline double _fold(double* lanes) noexcept nogil:
    """The ``LANES`` lanes' total, pairwise: halves added until one is left."""
    cdef Py_ssize_t k, half = LANES // 2
    while half > 0:
        for k in range(half):
            lanes[k] = lanes[k] + lanes[k + half]
        half = half // 2
    return lanes[0]


cdef inline void _add(double* lanes, const floating* a, Py_ssize_t length) noexcept nogil:
    """lanes[i mod LANES] += a[i] for one run (its tail in the first lanes)."""
    if floating is float:
        _add_f(lanes, a, length)
    else:
        _add_d(lanes, a, length)


cdef inline void _add_products(double* lanes, const floating* a, const floating* b,
                               Py_ssize_t length, double shift_a, double shift_b) noexcept nogil:
    """lanes[i mod LANES] += (a[i] − shift_a) · (b[i] − shift_b), as ``_add``."""
    if floating is float:
        _products_f(lanes, a, b, length, shift_a, shift_b)
    else:
        _products_d(lanes, a, b, length, shift_a, shift_b)


cdef inline void _add_both(double* sums, double* dots, const floating* a, const floating* b,
                           Py_ssize_t length, double shift_b) noexcept nogil:
    """``_add`` of a into ``sums`` and ``_add_products`` of a and b − shift_b into ``dots``,
    in one pass over the run."""
    if floating is float:
        _both_f(sums, dots, a, b, length, shift_b)
    else:
        _both_d(sums, dots, a, b, length, shift_b)


cdef inline void _chunk_sums(const floating[:, :, ::1] a, const floating[:, :, ::1] b,
                             const double* shift, Py_ssize_t first, Py_ssize_t end,
                             double* lanes, double* dot_lanes, double* sums,
                             double* dots) noexcept nogil:
    """One chunk's partial sums over images [first, end), per channel c: with ``dots`` NULL,
    sums[c] = Σ a (``shift`` NULL) or Σ (a − shift[c])² (b is a); else sums[c] = Σ a and
    dots[c] = Σ a · (b − shift[c]). ``lanes`` and ``dot_lanes``: C·LANES doubles each."""
    cdef Py_ssize_t channels = a.shape[1], length = a.shape[2], n, c
    memset(lanes, 0, channels * LANES * sizeof(double))
    if dots != NULL:
        memset(dot_lanes, 0, channels * LANES * sizeof(double))
    for n in range(first, end):
        for c in range(channels):
            if dots != NULL:
                _add_both(lanes + c * LANES, dot_lanes + c * LANES, &a[n, c, 0], &b[n, c, 0],
                          length, shift[c])
            elif shift != NULL:
                _add_products(lanes + c * LANES, &a[n, c, 0], &a[n, c, 0], length, shift[c],
                              shift[c])
            else:
                _add(lanes + c * LANES, &a[n, c, 0], length)
    for c in range(channels):
        sums[c] = _fold(lanes + c * LANES)
        if dots != NULL:
            dots[c] = _fold(dot_lanes + c * LANES)


cdef bint _same(Py_ssize_t* a, Py_ssize_t* b):
    return a[0] == b[0] and a[1] == b[1] and a[2] == b[2]


cdef Py_ssize_t _per_chunk(Py_ssize_t n_images):
    """Images per chunk of the sums: the batch in at most ``IMAGE_CHUNKS`` even chunks."""
    return max(1, (n_images + IMAGE_CHUNKS - 1) // IMAGE_CHUNKS)


def _batch_sums(const floating[:, :, ::1] a, const floating[:, :, ::1] b, shift,
                double[::1] sums, double[::1] dots, int num_threads):
    """sums[c] (and dots[c]) over the whole batch for ``_chunk_sums``'s three kinds (``shift``
    None or a (C,) float64 array; ``dots`` empty for none): the chunks' partial sums, added in
    chunk order."""
    cdef Py_ssize_t n_images = a.shape[0], channels = a.shape[1], length = a.shape[2]
    cdef Py_ssize_t per = _per_chunk(n_images), chunks = (n_images + per - 1) // per, k, c
    cdef bint two = dots.shape[0] > 0
    if (not _same(a.shape, b.shape) or sums.shape[0] != channels
            or (two and dots.shape[0] != channels)
            or (shift is not None and len(shift) != channels)):
        raise ValueError(f"_batch_sums: inconsistent shapes for {channels} channels")
    cdef double[:, :, ::1] partial = np.zeros((2, chunks, channels))
    cdef double[:, :, ::1] lanes = np.empty((2, chunks, max(1, channels) * LANES))
    cdef const double[::1] shifts = shift if shift is not None else np.zeros(1)
    cdef const double* at = &shifts[0] if shift is not None else NULL
    cdef int nt = team_size(n_images * channels * length, PARALLEL_MIN, num_threads)
    if channels > 0:
        for k in prange(chunks, nogil=True, schedule="static", num_threads=nt):
            _chunk_sums(a, b, at, k * per, min(n_images, (k + 1) * per), &lanes[0, k, 0],
                        &lanes[1, k, 0], &partial[0, k, 0],
                        &partial[1, k, 0] if two else NULL)
    for c in range(channels):
        sums[c] = 0
        if two:
            dots[c] = 0
        for k in range(chunks):
            sums[c] = sums[c] + partial[0, k, c]
            if two:
                dots[c] = dots[c] + partial[1, k, c]


def moments(const floating[:, :, ::1] x, double[::1] mean, double[::1] var, int num_threads):
    """mean[c] = Σ x[:, c, :] / M and var[c] = Σ (x[:, c, :] − mean[c])² / M, M = N·L
    (two passes: the second over centred values, so no cancellation)."""
    cdef Py_ssize_t channels = x.shape[1], c
    cdef double count = x.shape[0] * x.shape[2]
    if mean.shape[0] != channels or var.shape[0] != channels or count == 0:
        raise ValueError(f"moments: need {channels} channels and values, got mean "
                         f"{mean.shape[0]}, var {var.shape[0]}, {count:.0f} values")
    _batch_sums(x, x, None, mean, np.empty(0), num_threads)
    for c in range(channels):
        mean[c] = mean[c] / count
    _batch_sums(x, x, np.asarray(mean), var, np.empty(0), num_threads)
    for c in range(channels):
        var[c] = var[c] / count


def channel_sums(const floating[:, :, ::1] x, double[::1] out, int num_threads):
    """out[c] = Σ x[:, c, :] (a bias's gradient)."""
    if out.shape[0] != x.shape[1]:
        raise ValueError(f"channel_sums: need {x.shape[1]} sums, got {out.shape[0]}")
    _batch_sums(x, x, None, out, np.empty(0), num_threads)


def grad_sums(const floating[:, :, ::1] gy, const floating[:, :, ::1] x,
              const double[::1] mean, double[::1] sum_gy, double[::1] sum_gy_xc, int num_threads):
    """sum_gy[c] = Σ gy[:, c, :] and sum_gy_xc[c] = Σ gy[:, c, :] · (x[:, c, :] − mean[c])."""
    cdef Py_ssize_t channels = x.shape[1]
    if not _same(gy.shape, x.shape):
        raise ValueError("grad_sums: gy and x must have the same shape")
    if mean.shape[0] != channels or sum_gy.shape[0] != channels or sum_gy_xc.shape[0] != channels:
        raise ValueError(f"grad_sums: per-channel arrays must have {channels} entries")
    _batch_sums(gy, x, np.asarray(mean), sum_gy, sum_gy_xc, num_threads)


def affine(const floating[:, :, ::1] x, const floating[::1] scale, const floating[::1] center,
           const floating[::1] shift, const floating[:, :, ::1] other,
           const floating[::1] other_scale, floating[:, :, ::1] out, int num_threads):
    """out[:, c, :] = scale[c] · (x[:, c, :] − center[c]) + shift[c]
                      (+ other_scale[c] · other[:, c, :] unless ``other`` is empty).

    The normalisation y = γ/σ · (x − μ) + β, and the input gradient
    gx = k · (x − μ) + t + γ/σ · gy."""
    cdef Py_ssize_t n_images = x.shape[0], channels = x.shape[1], length = x.shape[2]
    cdef Py_ssize_t c, n, i
    cdef bint two = other.shape[0] > 0
    cdef floating s, m, t, so
    if not _same(x.shape, out.shape) or (two and not _same(x.shape, other.shape)):
        raise ValueError("affine: x, other and out must have the same shape")
    if (scale.shape[0] != channels or center.shape[0] != channels or shift.shape[0] != channels
            or (two and other_scale.shape[0] != channels)):
        raise ValueError(f"affine: per-channel arrays must have {channels} entries")
    cdef int nt = team_size(n_images * channels * length, PARALLEL_MIN, num_threads)
    cdef Py_ssize_t row
    for row in prange(n_images * channels, nogil=True, schedule="static", num_threads=nt):
        n = row // channels
        c = row % channels
        s = scale[c]
        m = center[c]
        t = shift[c]
        if two:
            so = other_scale[c]
            for i in range(length):
                out[n, c, i] = s * (x[n, c, i] - m) + t + so * other[n, c, i]
        else:
            for i in range(length):
                out[n, c, i] = s * (x[n, c, i] - m) + t


def normalize(const floating[:, :, ::1] x, const floating[::1] mean, const floating[::1] var,
              const floating[::1] weight, const floating[::1] bias, double eps,
              floating[:, :, ::1] out, int num_threads):
    """out[:, c, :] = γ_c / √(var_c + eps) · (x[:, c, :] − mean_c) + β_c with fixed statistics
    (inference), the per-channel scale made here in double and rounded to the data type as
    the two-step path (the statistics' arrays, then ``affine``) does."""
    cdef Py_ssize_t n_images = x.shape[0], channels = x.shape[1], length = x.shape[2]
    cdef Py_ssize_t c
    if not _same(x.shape, out.shape):
        raise ValueError("normalize: x and out must have the same shape")
    if (mean.shape[0] != channels or var.shape[0] != channels or weight.shape[0] != channels
            or bias.shape[0] != channels):
        raise ValueError(f"normalize: per-channel arrays must have {channels} entries")
    cdef int nt = team_size(n_images * channels * length, PARALLEL_MIN, num_threads)
    cdef Py_ssize_t row
    # No parallel region on one thread: at batch 1 opening one costs a visible share of the pass.
    if nt == 1:
        with nogil:
            for row in range(n_images * channels):
                _normalize_row(x, mean, var, weight, bias, eps, out, row // channels,
                               row % channels)
        return
    for row in prange(n_images * channels, nogil=True, schedule="static", num_threads=nt):
        _normalize_row(x, mean, var, weight, bias, eps, out, row // channels, row % channels)


cdef inline void _normalize_row(
        const floating[:, :, ::1] x, const floating[::1] mean, const floating[::1] var,
        const floating[::1] weight, const floating[::1] bias, double eps,
        floating[:, :, ::1] out, Py_ssize_t n, Py_ssize_t c) noexcept nogil:
    cdef floating s = <floating>(<double>weight[c] * (1.0 / sqrt(<double>var[c] + eps)))
    cdef floating m = mean[c], t = bias[c]
    cdef Py_ssize_t i
    for i in range(x.shape[2]):
        out[n, c, i] = s * (x[n, c, i] - m) + t
