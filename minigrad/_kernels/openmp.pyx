# cython: language_level=3
"""What OpenMP reports about this machine (the kernels take their thread count as an argument)."""
cimport openmp


def default_num_threads():
    """OpenMP's default team size for this thread: OMP_NUM_THREADS, else the number of cores."""
    return openmp.omp_get_max_threads()


def num_procs():
    return openmp.omp_get_num_procs()
