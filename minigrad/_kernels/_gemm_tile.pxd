# cython: language_level=3
"""The float32 matrix product of ``gemm_tile.h`` (AVX-512 only: ``GEMM_TILE`` is 0 without),
for the kernels that run products on their own threads (team_gemm.pyx, winograd.pyx)."""


cdef extern from "gemm_tile.h" nogil:
    enum: GEMM_TILE "MINIGRAD_GEMM_TILE"
    # floats of the work buffer each call takes
    enum: GEMM_WORK "MINIGRAD_GEMM_WORK"
    void gemm "minigrad_gemm" (const float* a, Py_ssize_t sa_i, Py_ssize_t sa_l,
                               const float* b, Py_ssize_t sb_l, Py_ssize_t sb_j, float* c,
                               Py_ssize_t ldc, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                               int accumulate, float* work)
    # B already in panels of GEMM_NR columns (gemm_tile.h): written so by the caller
    enum: GEMM_NR "MINIGRAD_GEMM_NR"
    void gemm_packed "minigrad_gemm_packed" (const float* a, Py_ssize_t sa_i, Py_ssize_t sa_l,
                                             const float* b, float* c, Py_ssize_t ldc,
                                             Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                                             int accumulate)
