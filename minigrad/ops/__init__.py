"""Differentiable ops, one module per family; each op is a ``Function`` subclass (forward and
backward on numpy arrays) plus the functional wrapper users call.

Importing this package also gives ``Tensor`` its operators and the methods that run an op
(``x + y``, ``x < y``, ``x[i]``, ``x.sum()``, ``x.reshape(...)``, ``x.astype(...)``, ...), bound
below in this one place: ``minigrad.tensor`` imports no op, so every op module can import it
without a cycle. ``import minigrad`` imports this package.
"""
import types

import numpy as np

from .._validate import as_dtype
from ..tensor import Tensor, as_tensor
from . import arithmetic, reduction
from . import math as math_ops
from . import shape as shape_ops


class _TensorMethods:
    """Tensor's operators and op-running methods, written as a class body and copied onto
    Tensor below (each is an op class in minigrad.ops)."""

    def __add__(self, other):
        return arithmetic.add(self, self._operand(other, "add"))

    def __radd__(self, other):
        return arithmetic.add(self._operand(other, "add"), self)

    def __sub__(self, other):
        return arithmetic.sub(self, self._operand(other, "sub"))

    def __rsub__(self, other):
        return arithmetic.sub(self._operand(other, "sub"), self)

    def __mul__(self, other):
        return arithmetic.mul(self, self._operand(other, "mul"))

    def __rmul__(self, other):
        return arithmetic.mul(self._operand(other, "mul"), self)

    def __truediv__(self, other):
        return arithmetic.div(self, self._operand(other, "div"))

    def __rtruediv__(self, other):
        return arithmetic.div(self._operand(other, "div"), self)

    def __neg__(self):
        return arithmetic.neg(self)

    def __pow__(self, exponent):
        return arithmetic.pow(self, exponent)

    def __matmul__(self, other):
        return arithmetic.matmul(self, self._operand(other, "matmul"))

    def __rmatmul__(self, other):
        return arithmetic.matmul(self._operand(other, "matmul"), self)

    def _operand(self, other, op_name):
        """The other operand of a binary operator as a tensor (a Python number takes this
        tensor's float dtype); errors name it ``other``."""
        return as_tensor(other, like=self, name="other", op_name=op_name)

    def __getitem__(self, index):
        return shape_ops.getitem(self, index)

    # Comparisons give plain boolean tensors, outside the graph.
    def __lt__(self, other):
        return self._compare(np.less, other, "lt")

    def __le__(self, other):
        return self._compare(np.less_equal, other, "le")

    def __gt__(self, other):
        return self._compare(np.greater, other, "gt")

    def __ge__(self, other):
        return self._compare(np.greater_equal, other, "ge")

    def _compare(self, ufunc, other, op_name):
        other = self._operand(other, op_name)
        arithmetic.broadcast_shape(op_name, self, other)
        if self.dtype.kind == "c" or other.dtype.kind == "c":
            raise TypeError(f"{op_name}: complex tensors are not ordered (tensor dtype "
                            f"{self.dtype}, other dtype {other.dtype})")
        return Tensor(ufunc(self.data, other.data))

    # -- methods -----------------------------------------------------------------------------
    def astype(self, dtype):
        return math_ops.Cast(as_dtype(dtype, "astype"))(self)

    def exp(self):
        return math_ops.exp(self)

    def log(self):
        return math_ops.log(self)

    def sqrt(self):
        return math_ops.sqrt(self)

    def abs(self):
        return math_ops.abs(self)

    def clip(self, min=None, max=None):
        return math_ops.clip(self, min, max)

    # PyTorch's names dim/keepdim (and start_dim/end_dim) are accepted beside axis/keepdims
    def sum(self, axis=None, keepdims=None, *, dim=None, keepdim=None):
        return reduction.sum(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def mean(self, axis=None, keepdims=None, *, dim=None, keepdim=None):
        return reduction.mean(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def max(self, axis=None, keepdims=None, *, dim=None, keepdim=None):
        return reduction.max(self, axis, keepdims, dim=dim, keepdim=keepdim)

    def reshape(self, *shape):
        return shape_ops.reshape(self, *shape)

    def transpose(self, *axes):
        return shape_ops.transpose(self, *axes)

    def permute(self, *axes):
        return shape_ops.transpose(self, *axes)

    def flatten(self, start_axis=None, end_axis=None, *, start_dim=None, end_dim=None):
        return shape_ops.flatten(self, start_axis, end_axis, start_dim=start_dim,
                                 end_dim=end_dim)

    @property
    def T(self):
        return shape_ops.transpose(self)


def _bind_tensor_methods():
    for name, member in vars(_TensorMethods).items():
        if isinstance(member, (types.FunctionType, property)):
            assert name not in vars(Tensor), f"Tensor.{name} is defined twice"
            if isinstance(member, types.FunctionType):
                member.__qualname__ = f"Tensor.{name}"     # as tracebacks and reprs show it
            setattr(Tensor, name, member)


_bind_tensor_methods()
