# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Kernels of the alternative pooling kinds: Lp, stochastic (training and evaluation) and
fractional max pooling, forward and backward.

Conventions (the same as pooling.pyx, so these can be appended there):

* Arrays are C-contiguous stacks of planes: input (P, H, W), output (P, OH, OW), P = N·C.
* Every kernel runs ``prange`` over the planes with the GIL released; one iteration owns one
  whole plane. A forward writes only that plane's outputs and a backward accumulates only into
  that plane's input gradient, so there are no atomics and the result does not depend on the
  number of threads.
* Window geometry is computed and validated in Python (``minigrad.ops.geometry``); the kernels
  trust it (boundscheck is off). Regular windows start at ``o·stride`` and are clipped at the
  bottom/right edge (the last window of ``ceil_mode``); there is no padding.
* Max-type outputs store the flat index ``h·W + w`` (int32; the wrapper checks that H·W fits)
  of the chosen cell in its plane; it is always a cell of the window (never −1). Their backward
  is pooling.pyx's ``max_pool_backward``.
* Sums are accumulated in double for float32 input too.
* A backward kernel zeroes its gradient plane itself, right before accumulating into it.
"""
from cython.parallel cimport prange
from cython cimport floating
from libc.math cimport pow, fabs, isnan, sqrt, INFINITY
from libc.stdint cimport int64_t
from libc.string cimport memset
cimport openmp

# Below this many input elements the OpenMP start-up costs more than the work (the same rule as
# pooling.pyx; drop this copy when the two files are merged).
cdef Py_ssize_t PARALLEL_MIN = 1 << 14


cdef inline int _num_threads(Py_ssize_t work) noexcept nogil:
    return 1 if work < PARALLEL_MIN else openmp.omp_get_max_threads()


cdef inline Py_ssize_t _min(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    return a if a < b else b


# ---------------------------------------------------------------------------------------------
# Sliding-window reductions without an index: Lp pooling and stochastic pooling's evaluation
# (the probability-weighted average). One plane loop serves both; ``kind`` picks the formula.
# ---------------------------------------------------------------------------------------------

cdef enum:
    _LP_POOL = 0            # y = (Σ|x|^p)^(1/p)
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
    """dy/dx_i = sign(x_i)·(|x_i|/y)^(p−1); 0 where x_i = 0 or the window is all zero."""
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


cdef void _window_forward_plane(int kind, const floating* x, floating* y, Py_ssize_t H,
                                Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t kh,
                                Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                                double p) noexcept nogil:
    cdef Py_ssize_t oh, ow, h0, h1, w0, w1
    for oh in range(OH):
        h0 = oh * sh
        h1 = _min(h0 + kh, H)
        for ow in range(OW):
            w0 = ow * sw
            w1 = _min(w0 + kw, W)
            if kind == _LP_POOL:
                y[oh * OW + ow] = <floating>_lp_window(x, W, h0, h1, w0, w1, p)
            else:
                y[oh * OW + ow] = <floating>_weighted_window(x, W, h0, h1, w0, w1)


cdef void _window_backward_plane(int kind, const floating* x, const floating* y,
                                 const floating* gy, floating* gx, Py_ssize_t H, Py_ssize_t W,
                                 Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t kh, Py_ssize_t kw,
                                 Py_ssize_t sh, Py_ssize_t sw, double p) noexcept nogil:
    cdef Py_ssize_t oh, ow, h0, h1, w0, w1, o
    memset(gx, 0, H * W * sizeof(floating))
    for oh in range(OH):
        h0 = oh * sh
        h1 = _min(h0 + kh, H)
        for ow in range(OW):
            w0 = ow * sw
            w1 = _min(w0 + kw, W)
            o = oh * OW + ow
            if kind == _LP_POOL:
                _lp_window_backward(x, gx, W, h0, h1, w0, w1, y[o], gy[o], p)
            else:
                _weighted_window_backward(x, gx, W, h0, h1, w0, w1, y[o], gy[o])


def window_pool_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y, int kind,
                        Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                        double p=1.0):
    """y[i, oh, ow] = the ``kind`` reduction (LP_POOL with exponent p, or WEIGHTED_AVERAGE) of
    x[i] over rows [oh·sh, oh·sh + kh) and columns [ow·sw, ow·sw + kw), clipped to the plane."""
    cdef Py_ssize_t i, P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t OH = y.shape[1], OW = y.shape[2]
    cdef int nt = _num_threads(P * H * W)
    with nogil:
        for i in prange(P, schedule='static', num_threads=nt):
            _window_forward_plane(kind, &x[i, 0, 0], &y[i, 0, 0], H, W, OH, OW, kh, kw, sh, sw,
                                  p)


def window_pool_backward(const floating[:, :, ::1] x, const floating[:, :, ::1] y,
                         const floating[:, :, ::1] gy, floating[:, :, ::1] gx, int kind,
                         Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                         double p=1.0):
    """gx = the gradient of window_pool_forward (the same arguments) for the output gradient gy."""
    cdef Py_ssize_t i, P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t OH = y.shape[1], OW = y.shape[2]
    cdef int nt = _num_threads(P * H * W)
    with nogil:
        for i in prange(P, schedule='static', num_threads=nt):
            _window_backward_plane(kind, &x[i, 0, 0], &y[i, 0, 0], &gy[i, 0, 0], &gx[i, 0, 0],
                                   H, W, OH, OW, kh, kw, sh, sw, p)


# ---------------------------------------------------------------------------------------------
# Stochastic pooling's training mode: one sampled cell per window (non-negative input)
# ---------------------------------------------------------------------------------------------

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
                                  Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw):
    """y = the sampled cell's value (0 for an all-zero window); index = its flat position."""
    cdef Py_ssize_t i, oh, ow, h0, w0, k
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t OH = y.shape[1], OW = y.shape[2]
    cdef int nt = _num_threads(P * H * W)
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
                                   const floating[:, :, ::1] gy, floating[:, :, ::1] gx):
    """The gradient goes to the sampled cell; none from an all-zero window (y = 0)."""
    cdef Py_ssize_t i, P = gx.shape[0], HW = gx.shape[1] * gx.shape[2]
    cdef Py_ssize_t n_out = gy.shape[1] * gy.shape[2]
    cdef int nt = _num_threads(P * HW)
    with nogil:
        for i in prange(P, schedule='static', num_threads=nt):
            _sampled_backward_plane(&y[i, 0, 0], &index[i, 0, 0], &gy[i, 0, 0], &gx[i, 0, 0],
                                    n_out, HW)



# ---------------------------------------------------------------------------------------------
# Max over per-plane rectangular regions (fractional max pooling)
# ---------------------------------------------------------------------------------------------

def region_max_forward(const floating[:, :, ::1] x,
                       const int64_t[:, ::1] row_start, const int64_t[:, ::1] row_end,
                       const int64_t[:, ::1] col_start, const int64_t[:, ::1] col_end,
                       floating[:, :, ::1] y, int[:, :, ::1] index):
    """y[i, oh, ow] = max of x[i] over rows [row_start[i, oh], row_end[i, oh]) and columns
    [col_start[i, ow], col_end[i, ow]) (non-empty, inside the plane). The first maximum in
    row-major order wins ties; a NaN wins over numbers (the last NaN, as in PyTorch); an all −∞
    region reports its first cell."""
    cdef Py_ssize_t i, oh, ow, h, w, best_index
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t OH = y.shape[1], OW = y.shape[2]
    cdef floating v, best
    cdef int nt = _num_threads(P * H * W)
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

