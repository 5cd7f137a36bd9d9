"""Compiled Cython kernels.

Conventions (as in scikit-learn): each ``.pyx`` holds typed-memoryview kernels over the fused
type ``floating`` (float32/float64), compiled with bounds and wraparound checks off, their loops in
``nogil`` blocks with ``prange`` where they parallelise. Kernels trust their arguments: every
shape and value is validated by the thin Python wrapper in ``minigrad/ops`` before a kernel is
entered.
"""
import os as _os

# After a parallel loop, libgomp's workers spin before they sleep: by default 300,000 rounds
# (several hundred microseconds), during which they steal the cores numpy's BLAS threads need for
# the GEMM that follows (measured: convs 6-26x slower). Sleeping at once (OMP_WAIT_POLICY=PASSIVE)
# costs a futex wake-up of 60-80 us at the next parallel loop on this VM (a 4 MiB read: 28 us
# with spinning workers, 106 us with sleeping ones). A short spin bridges back-to-back kernels.
# Training steps measured (batch 64, 2 cores; OMP_WAIT_POLICY=ACTIVE with GOMP_SPINCOUNT=n):
#   rounds:          passive   300    1,000   10,000   100,000
#   MNIST FCN (ms):  33.5      29.4   27.3    27.5     34.9
#   inception (ms):  367       372    382     470-496  -
# 300 rounds helps the kernel-heavy network and costs the GEMM-heavy one nothing measurable. The
# count takes effect with OMP_WAIT_POLICY=ACTIVE (with the policy unset libgomp throttles it).
# Set before any kernel loads libgomp; explicit OMP_WAIT_POLICY / GOMP_SPINCOUNT settings in the
# environment win.
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["OMP_WAIT_POLICY"] = "ACTIVE"
    _os.environ["GOMP_SPINCOUNT"] = "300"
