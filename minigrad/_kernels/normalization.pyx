# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Per-channel passes of batch normalisation over x viewed as (N, C, L), and the per-channel
sums of a convolution's bias gradient.

Each pass is parallel over the channels (``prange``): a channel's N runs of L values are read
by one thread, so its sums are formed in a fixed order (the result does not depend on the
thread count) and a channel's data stays in that core's cache between the two passes of a
forward or a backward. Below ``PARALLEL_MIN`` values (a batch of one small image) one thread
does it all: starting the team would cost more than the pass. Sums are accumulated in double,
four at a time for instruction-level parallelism, or on runs of 4·LANES or more in LANES lanes
that vectorise (the bias gradient and the moments; the backward's sums, which read two
tensors, run at memory speed either way). The Python wrapper
(``minigrad/ops/normalization.py``) checks the shapes.
"""
from cython.parallel cimport prange
from cython cimport floating
from libc.math cimport sqrt

from ._parallel cimport team_size

cdef Py_ssize_t PARALLEL_MIN = 1 << 15


cdef inline double _dot(const floating* a, const floating* b, Py_ssize_t length,
                        double shift_a, double shift_b) noexcept nogil:
    """Σ (a[i] − shift_a) · (b[i] − shift_b)."""
    cdef double s0 = 0, s1 = 0, s2 = 0, s3 = 0
    cdef Py_ssize_t i = 0
    while i + 4 <= length:
        s0 += (a[i] - shift_a) * (b[i] - shift_b)
        s1 += (a[i + 1] - shift_a) * (b[i + 1] - shift_b)
        s2 += (a[i + 2] - shift_a) * (b[i + 2] - shift_b)
        s3 += (a[i + 3] - shift_a) * (b[i + 3] - shift_b)
        i += 4
    while i < length:
        s0 += (a[i] - shift_a) * (b[i] - shift_b)
        i += 1
    return (s0 + s1) + (s2 + s3)


cdef inline double _sum(const floating* a, Py_ssize_t length) noexcept nogil:
    cdef double s0 = 0, s1 = 0, s2 = 0, s3 = 0
    cdef Py_ssize_t i = 0
    while i + 4 <= length:
        s0 += a[i]
        s1 += a[i + 1]
        s2 += a[i + 2]
        s3 += a[i + 3]
        i += 4
    while i < length:
        s0 += a[i]
        i += 1
    return (s0 + s1) + (s2 + s3)


cdef inline void _sum_and_dot(const floating* a, const floating* b, Py_ssize_t length,
                              double shift_b, double* total, double* dot) noexcept nogil:
    """total += Σ a[i] and dot += Σ a[i] · (b[i] − shift_b) in one pass over the row, each
    summed in the same order as ``_sum`` and ``_dot`` (so the results are theirs, bitwise)."""
    cdef double s0 = 0, s1 = 0, s2 = 0, s3 = 0, t0 = 0, t1 = 0, t2 = 0, t3 = 0
    cdef Py_ssize_t i = 0
    while i + 4 <= length:
        s0 += a[i]
        s1 += a[i + 1]
        s2 += a[i + 2]
        s3 += a[i + 3]
        t0 += a[i] * (b[i] - shift_b)
        t1 += a[i + 1] * (b[i + 1] - shift_b)
        t2 += a[i + 2] * (b[i + 2] - shift_b)
        t3 += a[i + 3] * (b[i + 3] - shift_b)
        i += 4
    while i < length:
        s0 += a[i]
        t0 += a[i] * (b[i] - shift_b)
        i += 1
    total[0] = total[0] + ((s0 + s1) + (s2 + s3))
    dot[0] = dot[0] + ((t0 + t1) + (t2 + t3))


cdef bint _same(Py_ssize_t* a, Py_ssize_t* b):
    return a[0] == b[0] and a[1] == b[1] and a[2] == b[2]


def moments(const floating[:, :, ::1] x, double[::1] mean, double[::1] var, int num_threads):
    """mean[c] = Σ x[:, c, :] / M and var[c] = Σ (x[:, c, :] − mean[c])² / M, M = N·L
    (two passes: the second over centred values, so no cancellation)."""
    cdef Py_ssize_t n_images = x.shape[0], channels = x.shape[1], length = x.shape[2]
    cdef Py_ssize_t c, n
    cdef double count = n_images * length, m, s
    if mean.shape[0] != channels or var.shape[0] != channels or count == 0:
        raise ValueError(f"moments: need {channels} channels and values, got mean "
                         f"{mean.shape[0]}, var {var.shape[0]}, {count:.0f} values")
    cdef int nt = team_size(n_images * channels * length, PARALLEL_MIN, num_threads)
    for c in prange(channels, nogil=True, schedule="static", num_threads=nt):
        s = 0
        for n in range(n_images):
            s = s + _run_sum(&x[n, c, 0], length)
        m = s / count
        s = 0
        for n in range(n_images):
            s = s + _run_dot(&x[n, c, 0], &x[n, c, 0], length, m, m)
        mean[c] = m
        var[c] = s / count


cdef enum:
    LANES = 16      # independent double sums of ``_lane_sum``, a vector's worth per add


cdef inline double _fold(double* lanes) noexcept nogil:
    """The ``LANES`` lanes' total, pairwise: halves added until one is left."""
    cdef Py_ssize_t k, half = LANES // 2
    while half > 0:
        for k in range(half):
            lanes[k] = lanes[k] + lanes[k + half]
        half = half // 2
    return lanes[0]


cdef inline double _lane_sum(const floating* a, Py_ssize_t length) noexcept nogil:
    """Σ a[i] in ``LANES`` double lanes (lane k: i ≡ k mod LANES, in order, the tail in lane
    0), then ``_fold``: independent sums that vectorise, where ``_sum``'s four wait on each
    other."""
    cdef double lanes[LANES]
    cdef Py_ssize_t i, k, block
    for k in range(LANES):
        lanes[k] = 0
    for block in range(length // LANES):
        for k in range(LANES):
            lanes[k] = lanes[k] + a[block * LANES + k]
    for i in range(length // LANES * LANES, length):
        lanes[0] = lanes[0] + a[i]
    return _fold(lanes)


cdef inline double _lane_dot(const floating* a, const floating* b, Py_ssize_t length,
                             double shift_a, double shift_b) noexcept nogil:
    """``_dot`` in ``LANES`` double lanes, as ``_lane_sum`` sums."""
    cdef double lanes[LANES]
    cdef Py_ssize_t i, k, block
    for k in range(LANES):
        lanes[k] = 0
    for block in range(length // LANES):
        for k in range(LANES):
            lanes[k] = lanes[k] + ((a[block * LANES + k] - shift_a)
                                   * (b[block * LANES + k] - shift_b))
    for i in range(length // LANES * LANES, length):
        lanes[0] = lanes[0] + (a[i] - shift_a) * (b[i] - shift_b)
    return _fold(lanes)


cdef inline double _run_sum(const floating* a, Py_ssize_t length) noexcept nogil:
    """Σ a[i] for one run: ``_lane_sum`` from 4·LANES values, ``_sum`` below (on short runs
    the lanes' final adds outweigh their sums)."""
    return _lane_sum(a, length) if length >= 4 * LANES else _sum(a, length)


cdef inline double _run_dot(const floating* a, const floating* b, Py_ssize_t length,
                            double shift_a, double shift_b) noexcept nogil:
    """``_dot`` for one run, in lanes from 4·LANES values as ``_run_sum``."""
    return (_lane_dot(a, b, length, shift_a, shift_b) if length >= 4 * LANES
            else _dot(a, b, length, shift_a, shift_b))


def channel_sums(const floating[:, :, ::1] x, double[::1] out, int num_threads):
    """out[c] = Σ x[:, c, :] (a bias's gradient), each run of L summed by ``_run_sum`` and
    the runs added in order."""
    cdef Py_ssize_t n_images = x.shape[0], channels = x.shape[1], length = x.shape[2]
    cdef Py_ssize_t c, n
    cdef double s
    if out.shape[0] != channels:
        raise ValueError(f"channel_sums: need {channels} sums, got {out.shape[0]}")
    cdef int nt = team_size(n_images * channels * length, PARALLEL_MIN, num_threads)
    for c in prange(channels, nogil=True, schedule="static", num_threads=nt):
        s = 0
        for n in range(n_images):
            s = s + _run_sum(&x[n, c, 0], length)
        out[c] = s


def grad_sums(const floating[:, :, ::1] gy, const floating[:, :, ::1] x,
              const double[::1] mean, double[::1] sum_gy, double[::1] sum_gy_xc, int num_threads):
    """sum_gy[c] = Σ gy[:, c, :] and sum_gy_xc[c] = Σ gy[:, c, :] · (x[:, c, :] − mean[c])."""
    cdef Py_ssize_t n_images = x.shape[0], channels = x.shape[1], length = x.shape[2]
    cdef Py_ssize_t c, n
    cdef double s, t
    if not _same(gy.shape, x.shape):
        raise ValueError("grad_sums: gy and x must have the same shape")
    if mean.shape[0] != channels or sum_gy.shape[0] != channels or sum_gy_xc.shape[0] != channels:
        raise ValueError(f"grad_sums: per-channel arrays must have {channels} entries")
    cdef int nt = team_size(n_images * channels * length, PARALLEL_MIN, num_threads)
    for c in prange(channels, nogil=True, schedule="static", num_threads=nt):
        s = 0
        t = 0
        for n in range(n_images):
            _sum_and_dot(&gy[n, c, 0], &x[n, c, 0], length, mean[c], &s, &t)
        sum_gy[c] = s
        sum_gy_xc[c] = t


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
    for c in prange(channels, nogil=True, schedule="static", num_threads=nt):
        s = scale[c]
        m = center[c]
        t = shift[c]
        if two:
            so = other_scale[c]
            for n in range(n_images):
                for i in range(length):
                    out[n, c, i] = s * (x[n, c, i] - m) + t + so * other[n, c, i]
        else:
            for n in range(n_images):
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
    # No parallel region on one thread: at batch 1 opening one costs a visible share of the pass.
    if nt == 1:
        with nogil:
            for c in range(channels):
                _normalize_channel(x, mean, var, weight, bias, eps, out, c)
        return
    for c in prange(channels, nogil=True, schedule="static", num_threads=nt):
        _normalize_channel(x, mean, var, weight, bias, eps, out, c)


cdef inline void _normalize_channel(
        const floating[:, :, ::1] x, const floating[::1] mean, const floating[::1] var,
        const floating[::1] weight, const floating[::1] bias, double eps,
        floating[:, :, ::1] out, Py_ssize_t c) noexcept nogil:
    cdef floating s = <floating>(<double>weight[c] * (1.0 / sqrt(<double>var[c] + eps)))
    cdef floating m = mean[c], t = bias[c]
    cdef Py_ssize_t n, i
    for n in range(x.shape[0]):
        for i in range(x.shape[2]):
            out[n, c, i] = s * (x[n, c, i] - m) + t
