"""Compiled Cython kernels.

Conventions (as in scikit-learn): each ``.pyx`` holds typed-memoryview kernels over the fused
type ``floating`` (float32/float64), compiled with bounds and wraparound checks off, their loops in
``nogil`` blocks with ``prange`` where they parallelise. Kernels trust their arguments: every
shape and value is validated by the thin Python wrapper in ``minigrad/ops`` before a kernel is
entered.
"""
import os as _os

# After a parallel loop, libgomp's workers spin before they sleep: by default 300,000 rounds
# (milliseconds), during which they steal the cores numpy's BLAS threads need for the GEMM that
# follows (measured: convs 6-26x slower). Sleeping at once (OMP_WAIT_POLICY=PASSIVE) costs a
# futex wake-up of 60-80 us at the next parallel loop on this VM (a 4 MiB read: 28 us with
# spinning workers, 106 us with sleeping ones). A short spin bridges the Python between two ops
# (about 10 us per op). Measured with benchmarks/run.py (torch in its own process), three runs
# each, OMP_WAIT_POLICY=ACTIVE with GOMP_SPINCOUNT=n; batch 64, 2 cores:
#   rounds:                     300               1,000             3,000
#   MNIST FCN step (ms):        29.6, 28.1, 29.7  26.8, 36.2, 29.4  26.8, 25.2, 29.4
#   inception step (ms):        288, 262, 269     257, 250, 279     251, 257, 272
#   global avg pool fwd (us):   120, 60, 110      40, 40, 40        50, 50, 40
# (Earlier, with passive workers: FCN 33.5 ms; 10,000 rounds made inception 30 % slower.)
# The count takes effect with OMP_WAIT_POLICY=ACTIVE (with the policy unset libgomp throttles it).
# Set before any kernel loads libgomp; explicit OMP_WAIT_POLICY / GOMP_SPINCOUNT settings in the
# environment win. libgomp is shared by everything in the process that loads it (torch included).
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["OMP_WAIT_POLICY"] = "ACTIVE"
    _os.environ["GOMP_SPINCOUNT"] = "3000"
