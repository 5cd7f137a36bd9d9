"""Activation functions. Elementwise kernels run in Cython (minigrad/_kernels/activation.pyx)."""
import numpy as np

from .._kernels import activation as _kernels
from ..function import Function
from ..tensor import as_tensor


def _flat(a):
    return a.reshape(-1)


class ReLU(Function):
    """y = max(x, 0); dy/dx = 1 where x > 0, else 0."""

    def forward(self, x):
        y = np.empty_like(x)
        _kernels.relu_forward(_flat(x), _flat(y))
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        gx = np.empty_like(y)
        _kernels.relu_backward(_flat(y), _flat(np.ascontiguousarray(gy, dtype=y.dtype)),
                               _flat(gx))
        return gx


def _float_input(x, op_name):
    x = as_tensor(x)
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{op_name}: input must be float32 or float64, got dtype {x.dtype}")
    return x


def relu(x):
    return ReLU()(_float_input(x, "relu"))
