"""Thread control for the OpenMP kernels (default: all cores)."""
from ._kernels import openmp as _openmp


def set_num_threads(n):
    """Use ``n`` OpenMP threads in the Cython kernels."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive int, got {n!r}")
    _openmp.set_num_threads(n)


def get_num_threads():
    return _openmp.get_num_threads()
