"""Compiled Cython kernels.

Conventions (as in scikit-learn): each ``.pyx`` holds typed-memoryview kernels over the fused
type ``floating`` (float32/float64), compiled with bounds and wraparound checks off, their loops in
``nogil`` blocks with ``prange`` where they parallelise. Kernels trust their arguments: every
shape and value is validated by the thin Python wrapper in ``minigrad/ops`` before a kernel is
entered, including the thread count every parallel kernel takes as ``num_threads``
(``_parallel.pxd``). The OpenMP runtime's settings are applied in ``minigrad/runtime.py``.
"""
