# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Elementwise activation kernels on flat contiguous arrays.

Each kernel takes 1-D C-contiguous memoryviews of equal length (the wrapper in
``minigrad/ops/activation.py`` flattens with ``reshape(-1)``, a view for contiguous input, and
checks lengths and dtypes). Every loop is one ``prange`` whose thread count drops to 1 below
``PARALLEL_MIN`` elements, where starting threads costs more than it saves.

Only the kernels that beat numpy are here: the branchy relu/leaky_relu passes and the fused
arithmetic of the backward passes. Forward passes built on exp/tanh stay in numpy, whose SIMD
exp/tanh loops beat scalar libm calls by far; the exact gelu is the exception, as numpy has no
erf.
"""
from cython.parallel cimport prange
from cython cimport floating
from libc.math cimport exp, erf

from ._parallel cimport team_size

cdef extern from "<math.h>" nogil:
    float expf(float)
    float erff(float)

# Below this many elements the thread start-up costs more than it saves.
cdef Py_ssize_t PARALLEL_MIN = 1 << 15

cdef double INV_SQRT2 = 0.70710678118654752440       # 1 / sqrt(2)
cdef double INV_SQRT_2PI = 0.39894228040143267794    # 1 / sqrt(2 pi)
cdef double SQRT_2_OVER_PI = 0.79788456080286535588  # sqrt(2 / pi)
cdef double GELU_TANH_CUBIC = 0.044715             # must match ops/activation.py


cdef inline floating _exp(floating v) noexcept nogil:
    if floating is float:
        return expf(v)
    else:
        return exp(v)


cdef inline floating _erf(floating v) noexcept nogil:
    if floating is float:
        return erff(v)
    else:
        return erf(v)


# -- relu, leaky_relu ------------------------------------------------------------------------

def relu_forward(const floating[::1] x, floating[::1] y, int num_threads):
    """y = max(x, 0); NaN propagates (x > 0 is false for NaN, so y = x*0 would lose it)."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating v
    cdef int nt = team_size(n, PARALLEL_MIN, num_threads)
    # No parallel region on one thread: opening one costs a visible share of the loop at batch 1.
    if nt == 1:
        with nogil:
            for i in range(n):
                v = x[i]
                y[i] = v if not (v <= 0) else 0
        return
    for i in prange(n, nogil=True, schedule='static', num_threads=nt):
        v = x[i]
        y[i] = v if not (v <= 0) else 0


def relu_backward(const floating[::1] y, const floating[::1] gy, floating[::1] gx, int num_threads):
    """gx = gy where the output is positive, else 0 (the subgradient at 0 is 0, as in PyTorch)."""
    cdef Py_ssize_t i, n = y.shape[0]
    cdef int nt = team_size(n, PARALLEL_MIN, num_threads)
    for i in prange(n, nogil=True, schedule='static', num_threads=nt):
        gx[i] = gy[i] if y[i] > 0 else 0


def leaky_relu_forward(const floating[::1] x, double slope, floating[::1] y, int num_threads):
    """y = x if x > 0 else slope·x."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating v, s = <floating>slope
    cdef int nt = team_size(n, PARALLEL_MIN, num_threads)
    for i in prange(n, nogil=True, schedule='static', num_threads=nt):
        v = x[i]
        y[i] = v if v > 0 else s * v


def leaky_relu_backward(const floating[::1] x, const floating[::1] gy, double slope,
                        floating[::1] gx, int num_threads):
    """gx = gy if x > 0 else slope·gy (slope at 0, as in PyTorch)."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating s = <floating>slope
    cdef int nt = team_size(n, PARALLEL_MIN, num_threads)
    for i in prange(n, nogil=True, schedule='static', num_threads=nt):
        gx[i] = gy[i] if x[i] > 0 else s * gy[i]


# -- elu / selu ------------------------------------------------------------------------------

def elu_backward(const floating[::1] x, const floating[::1] y, const floating[::1] gy,
                 double alpha, double scale, floating[::1] gx, int num_threads):
    """dy/dx = scale if x > 0 else scale·alpha·e^x = y + scale·alpha (reusing the output)."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating c = <floating>scale, ca = <floating>(scale * alpha)
    cdef int nt = team_size(n, PARALLEL_MIN, num_threads)
    for i in prange(n, nogil=True, schedule='static', num_threads=nt):
        gx[i] = gy[i] * c if x[i] > 0 else gy[i] * (y[i] + ca)


# -- sigmoid, tanh, silu ---------------------------------------------------------------------

def sigmoid_backward(const floating[::1] y, const floating[::1] gy, floating[::1] gx,
                     int num_threads):
    """dy/dx = y·(1 − y)."""
    cdef Py_ssize_t i, n = y.shape[0]
    cdef int nt = team_size(n, PARALLEL_MIN, num_threads)
    for i in prange(n, nogil=True, schedule='static', num_threads=nt):
        gx[i] = gy[i] * y[i] * (1 - y[i])


def tanh_backward(const floating[::1] y, const floating[::1] gy, floating[::1] gx, int num_threads):
    """dy/dx = 1 − y²."""
    cdef Py_ssize_t i, n = y.shape[0]
    cdef int nt = team_size(n, PARALLEL_MIN, num_threads)
    for i in prange(n, nogil=True, schedule='static', num_threads=nt):
        gx[i] = gy[i] * (1 - y[i] * y[i])


def silu_backward(const floating[::1] x, const floating[::1] s, const floating[::1] gy,
                  floating[::1] gx, int num_threads):
    """dy/dx = s·(1 + x·(1 − s)) with s = sigmoid(x) saved by the forward pass."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef int nt = team_size(n, PARALLEL_MIN, num_threads)
    for i in prange(n, nogil=True, schedule='static', num_threads=nt):
        gx[i] = gy[i] * s[i] * (1 + x[i] * (1 - s[i]))


# -- gelu ------------------------------------------------------------------------------------

def gelu_forward(const floating[::1] x, floating[::1] y, int num_threads):
    """y = x·Φ(x) = x/2 · (1 + erf(x/√2)) (exact; numpy has no erf, so no numpy fallback)."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating v, k = <floating>INV_SQRT2
    cdef int nt = team_size(n, PARALLEL_MIN, num_threads)
    for i in prange(n, nogil=True, schedule='static', num_threads=nt):
        v = x[i]
        y[i] = <floating>0.5 * v * (1 + _erf(v * k))


def gelu_backward(const floating[::1] x, const floating[::1] gy, floating[::1] gx, int num_threads):
    """dy/dx = Φ(x) + x·φ(x), φ(x) = e^(−x²/2)/√(2π)."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating v, k = <floating>INV_SQRT2, c = <floating>INV_SQRT_2PI
    cdef int nt = team_size(n, PARALLEL_MIN, num_threads)
    for i in prange(n, nogil=True, schedule='static', num_threads=nt):
        v = x[i]
        gx[i] = gy[i] * (<floating>0.5 * (1 + _erf(v * k)) + v * c * _exp(-<floating>0.5 * v * v))


def gelu_tanh_backward(const floating[::1] x, const floating[::1] t, const floating[::1] gy,
                       floating[::1] gx, int num_threads):
    """PyTorch's approximate='tanh' gelu, y = x/2 · (1 + t), t = tanh(√(2/π)·(x + 0.044715·x³))
    saved by the forward pass: dy/dx = (1 + t)/2 + x/2 · (1 − t²) · √(2/π)·(1 + 3·0.044715·x²)."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating v, k = <floating>SQRT_2_OVER_PI, a3 = <floating>(3 * GELU_TANH_CUBIC)
    cdef int nt = team_size(n, PARALLEL_MIN, num_threads)
    for i in prange(n, nogil=True, schedule='static', num_threads=nt):
        v = x[i]
        gx[i] = gy[i] * (<floating>0.5 * (1 + t[i])
                         + <floating>0.5 * v * (1 - t[i] * t[i]) * k * (1 + a3 * v * v))
