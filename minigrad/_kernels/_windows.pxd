# cython: language_level=3
"""Window bounds shared by the convolution kernels: which outputs of a strided, padded, dilated
tap read a cell inside the input."""


cdef inline Py_ssize_t first_inside(Py_ssize_t offset, Py_ssize_t stride,
                                    Py_ssize_t out_size) noexcept nogil:
    """Smallest o >= 0 with o·stride + offset >= 0 (capped at out_size)."""
    cdef Py_ssize_t o
    if offset >= 0:
        return 0
    o = (-offset + stride - 1) // stride
    return o if o < out_size else out_size


cdef inline Py_ssize_t end_inside(Py_ssize_t offset, Py_ssize_t stride, Py_ssize_t size,
                                  Py_ssize_t out_size) noexcept nogil:
    """Smallest o with o·stride + offset >= size (capped to [0, out_size])."""
    cdef Py_ssize_t o
    if offset >= size:
        return 0
    o = (size - offset + stride - 1) // stride
    return o if o < out_size else out_size
