# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Elementwise activation kernels on flat contiguous arrays.

Each kernel takes 1-D C-contiguous memoryviews of equal length (the wrapper flattens with
``reshape(-1)``, which is a view for contiguous input).
"""
from cython.parallel cimport prange
from cython cimport floating

# Below this many elements the thread start-up costs more than it saves.
cdef Py_ssize_t PARALLEL_MIN = 1 << 15


def relu_forward(const floating[::1] x, floating[::1] y):
    """y = max(x, 0); NaN propagates (x > 0 is false for NaN, so y = x*0 would lose it)."""
    cdef Py_ssize_t i, n = x.shape[0]
    cdef floating v
    with nogil:
        if n >= PARALLEL_MIN:
            for i in prange(n, schedule='static'):
                v = x[i]
                y[i] = v if not (v <= 0) else 0
        else:
            for i in range(n):
                v = x[i]
                y[i] = v if not (v <= 0) else 0


def relu_backward(const floating[::1] y, const floating[::1] gy, floating[::1] gx):
    """gx = gy where the output is positive, else 0 (the subgradient at 0 is 0, as in PyTorch)."""
    cdef Py_ssize_t i, n = y.shape[0]
    with nogil:
        if n >= PARALLEL_MIN:
            for i in prange(n, schedule='static'):
                gx[i] = gy[i] if y[i] > 0 else 0
        else:
            for i in range(n):
                gx[i] = gy[i] if y[i] > 0 else 0
