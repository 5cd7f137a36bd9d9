"""Compiled Cython kernels.

Conventions (as in scikit-learn): each ``.pyx`` holds typed-memoryview kernels over the fused
type ``floating`` (float32/float64), compiled with bounds and wraparound checks off, their loops in
``nogil`` blocks with ``prange`` where they parallelise. Kernels trust their arguments: every
shape and value is validated by the thin Python wrapper in ``minigrad/ops`` before a kernel is
entered.
"""
import os as _os

# OpenMP workers spin for milliseconds after each parallel loop by default; on a small machine
# they steal the cores numpy's BLAS threads need for the GEMM that follows (measured: convs 6-26x
# slower). Passive waiting costs a few microseconds per parallel region instead. Set before any
# kernel loads libgomp; an explicit OMP_WAIT_POLICY in the environment wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

