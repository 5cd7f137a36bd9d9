"""Broadcasting arithmetic: + - * / unary minus, ** with a scalar exponent, and @."""
import numpy as np

from .._validate import real_number
from ..function import Function
from ..tensor import as_tensor


def unbroadcast(grad, shape):
    """Sum ``grad`` over the axes numpy broadcasting added or stretched, back to ``shape``."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1)
    grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def broadcast_shape(op_name, a, b):
    try:
        return np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{op_name}: shapes {a.shape} and {b.shape} cannot be broadcast "
                         "together") from None


class Add(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, gy):
        return unbroadcast(gy, self.shapes[0]), unbroadcast(gy, self.shapes[1])


class Sub(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, gy):
        return unbroadcast(gy, self.shapes[0]), unbroadcast(-gy, self.shapes[1])


class Mul(Function):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a * b

    def backward(self, gy):
        a, b = self.saved_tensors
        ga = unbroadcast(gy * b, a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(gy * a, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a / b

    def backward(self, gy):
        a, b = self.saved_tensors
        ga = unbroadcast(gy / b, a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(-gy * a / (b * b), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Pow(Function):
    """x ** p for a scalar p; d/dx = p · x^(p-1)."""

    def __init__(self, exponent):
        self.exponent = exponent

    def forward(self, x):
        self.save_for_backward(x)
        return np.power(x, self.exponent).astype(x.dtype, copy=False)

    def backward(self, gy):
        (x,) = self.saved_tensors
        p = self.exponent
        return (gy * p * np.power(x, p - 1)).astype(x.dtype, copy=False)


class MatMul(Function):
    """Batched matrix product with numpy's @ semantics (1-D operands included)."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a @ b

    def backward(self, gy):
        a, b = self.saved_tensors
        # Promote 1-D operands to matrices so one formula covers every case.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = gy.reshape(np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
                        + (a2.shape[-2], b2.shape[-1]))
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = g2 @ np.swapaxes(b2, -1, -2)
            ga = unbroadcast(ga, a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            gb = np.swapaxes(a2, -1, -2) @ g2
            gb = unbroadcast(gb, b2.shape).reshape(b.shape)
        return ga, gb


def _operands(a, b, op_name):
    """Both operands as tensors; a Python number takes the other operand's float dtype."""
    a = as_tensor(a, like=b if hasattr(b, "dtype") else None, name="a", op_name=op_name)
    return a, as_tensor(b, like=a, name="b", op_name=op_name)


def _binary(op_cls, name, a, b):
    a, b = _operands(a, b, name)
    broadcast_shape(name, a, b)
    return op_cls()(a, b)


def add(a, b):
    return _binary(Add, "add", a, b)


def sub(a, b):
    return _binary(Sub, "sub", a, b)


def mul(a, b):
    return _binary(Mul, "mul", a, b)


def div(a, b):
    return _binary(Div, "div", a, b)


def neg(x):
    x = as_tensor(x, name="x", op_name="neg")
    if x.dtype == np.bool_:
        raise TypeError("neg: cannot negate a bool tensor (x); use logical not (~ on its numpy "
                        "data) instead")
    return Neg()(x)


def pow(x, exponent):
    real_number(exponent, "exponent", "pow", finite=False)
    return Pow(exponent)(x)


def matmul(a, b):
    a, b = _operands(a, b, "matmul")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must be at least 1-D, got shapes {a.shape} and "
                         f"{b.shape}")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not match (inner "
                         f"dimensions {k_a} != {k_b})")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch dimensions of shapes {a.shape} and {b.shape} cannot "
                         "be broadcast together") from None
    return MatMul()(a, b)
