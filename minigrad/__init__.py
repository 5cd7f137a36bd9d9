"""minigrad: a small, fast, readable autograd framework for convolutional networks."""
import os as _os

# numpy's OpenBLAS worker threads spin for 2^28 cycles (~0.1 s) after each GEMM before sleeping,
# stealing the cores the OpenMP kernels that follow need (measured: a 3x3 conv 57 ms instead of
# 21 ms on 2 cores). 2^16 cycles is ample between back-to-back GEMMs. OpenBLAS reads this when it
# loads, so it takes effect when minigrad is imported before numpy (or set it in the shell).
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "16")
from . import allocator as _allocator  # noqa: E402

_allocator.tune()      # reuse freed activation buffers instead of re-faulting pages
from . import nn  # noqa: F401
from .anomaly import AnomalyError, detect_anomaly  # noqa: F401
from .function import Function, enable_grad, is_grad_enabled, no_grad  # noqa: F401
from .gradcheck import gradcheck  # noqa: F401
from . import optim  # noqa: F401
from .random import manual_seed  # noqa: F401
from .serialization import load, save  # noqa: F401
from .ops.shape import cat, split, stack  # noqa: F401
from .tensor import Tensor, tensor  # noqa: F401
from .threads import get_num_threads, set_num_threads  # noqa: F401

__version__ = "0.1.0"
