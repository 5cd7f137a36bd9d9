"""The thread count of the OpenMP kernels: one setting for the whole process.

Each op reads the count once per call (``get_num_threads()``), sizes any per-thread buffer by it
and passes it to its kernel, which runs its parallel loops with that many threads (or one, for
work too small to share). The setting is process-wide, as PyTorch's ``torch.set_num_threads``:
every Python thread's kernels use it, and changing it between a forward and its backward is safe.
It starts at OpenMP's default (``OMP_NUM_THREADS``, else the number of cores).
"""
import operator

from ._kernels import openmp as _openmp

#: The largest count accepted: each thread may own a scratch plane, and a count beyond this is
#: almost certainly a mistake.
MAX_THREADS = 256

_num_threads = max(1, min(_openmp.default_num_threads(), MAX_THREADS))


def set_num_threads(n):
    """Run the kernels on ``n`` threads (1 ≤ n ≤ ``MAX_THREADS``), in every Python thread.

    Example::

        minigrad.set_num_threads(1)    # deterministic single-core timing
    """
    global _num_threads
    try:
        if isinstance(n, bool):
            raise TypeError
        count = operator.index(n)
    except TypeError:
        raise TypeError(f"set_num_threads: n must be an int, got {n!r}") from None
    if not 1 <= count <= MAX_THREADS:
        raise ValueError(f"set_num_threads: n must be between 1 and {MAX_THREADS}, got {count}")
    _num_threads = count


def get_num_threads():
    """The thread count the kernels run with (see ``set_num_threads``)."""
    return _num_threads
