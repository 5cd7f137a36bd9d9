# cython: language_level=3
"""How many threads a kernel's parallel loop runs with.

Every parallel kernel takes ``num_threads`` from its Python wrapper, which reads the
process-wide setting (``minigrad.threads``) once per call and sizes any per-thread buffer by
that same number. Kernels never ask OpenMP for its own count: that is per calling thread, and
it could differ from the count the buffers were sized for.
"""


cdef inline int team_size(Py_ssize_t work, Py_ssize_t parallel_min, int num_threads) except -1:
    """``num_threads``, or 1 when ``work`` (elements) is below ``parallel_min``, where starting
    the team costs more than it saves. ValueError for a count below 1."""
    if num_threads < 1:
        raise ValueError(f"num_threads must be a positive int, got {num_threads}")
    return 1 if work < parallel_min else num_threads


cdef inline int check_threads(int num_threads) except -1:
    """``num_threads`` itself; ValueError for a count below 1."""
    return team_size(0, 0, num_threads)
