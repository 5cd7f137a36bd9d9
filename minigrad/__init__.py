"""minigrad: a small, fast, readable autograd framework for convolutional networks."""
from . import runtime  # noqa: F401  (first: it sets up OpenBLAS, OpenMP and the heap)
from . import nn  # noqa: F401
from .anomaly import AnomalyError, detect_anomaly  # noqa: F401
from .function import Function, enable_grad, is_grad_enabled, no_grad  # noqa: F401
from .gradcheck import gradcheck  # noqa: F401
from . import onnx, viz  # noqa: F401  (the onnx package is imported by onnx.export only)
from . import optim  # noqa: F401
from .random import manual_seed  # noqa: F401
from .serialization import load, save  # noqa: F401
from .summary import summary  # noqa: F401
from .ops.shape import cat, split, stack  # noqa: F401
from .tensor import Tensor, tensor  # noqa: F401
from .threads import get_num_threads, set_num_threads  # noqa: F401

__version__ = "0.1.0"
