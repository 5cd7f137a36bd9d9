"""Activation functions: relu, leaky_relu, prelu, elu, selu, gelu, silu, swish, sigmoid, tanh,
softmax, log_softmax and maxout.

Which elementwise passes are Cython kernels (minigrad/_kernels/activation.pyx): the backward
passes of relu, leaky_relu, elu/selu, sigmoid, tanh, silu/swish and gelu, and the forward passes
of relu, leaky_relu and exact gelu (numpy has no erf), because one threaded loop beats a chain of
numpy temporaries. The forward passes built on exp or tanh (sigmoid, tanh, elu, silu, gelu's
tanh approximation) stay in numpy, because its vectorised exp/tanh beats a scalar libm call per
element by more than the kernels' threads recover.
"""
import numpy as np

from .._kernels import activation as _kernels
from .._validate import alias, as_dtype, check_axis, check_float, real_number
from ..function import Function
from ..tensor import float_input
from ..threads import get_num_threads
from .arithmetic import unbroadcast

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
GELU_TANH_CUBIC = 0.044715     # must match the kernel's constant
SQRT_2_OVER_PI = float(np.sqrt(2 / np.pi))


def _flat(a):
    return a.reshape(-1)


def _kernel(kernel, arrays, params=()):
    """Run an elementwise kernel ``kernel(*arrays, *params, out, num_threads)`` over flat views;
    ``out`` is a new array shaped and typed like ``arrays[0]`` (the others are cast to its
    dtype)."""
    first = arrays[0]
    out = np.empty_like(first)
    if len(arrays) == 1:      # the forward passes: one contiguous input (Function.__call__)
        kernel(_flat(first), *params, _flat(out), get_num_threads())
        return out
    flat = [_flat(np.ascontiguousarray(a, dtype=first.dtype)) for a in arrays]
    kernel(*flat, *params, _flat(out), get_num_threads())
    return out


def _sigmoid(x):
    """1 / (1 + e^-x) in numpy; e^-x may overflow to inf for very negative x, giving the
    correct limit 0."""
    with np.errstate(over="ignore"):
        y = np.negative(x, out=np.empty_like(x))    # out=: an array even for 0-d x
        np.exp(y, out=y)
        y += 1
        return np.reciprocal(y, out=y)


def _channel_shape(weight_size, ndim):
    """Broadcast shape of a one-per-channel (axis 1) parameter against an ndim-D input."""
    return (1, weight_size) + (1,) * (ndim - 2) if weight_size > 1 else (1,) * ndim


# -- ops -------------------------------------------------------------------------------------

class ReLU(Function):
    """y = max(x, 0); dy/dx = 1 where x > 0, else 0."""

    def forward(self, x):
        y = _kernel(_kernels.relu_forward, (x,))
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return _kernel(_kernels.relu_backward, (y, gy))


class LeakyReLU(Function):
    """y = x if x > 0 else slope·x; dy/dx = 1 or slope."""

    def __init__(self, slope):
        self.slope = float(slope)

    def forward(self, x):
        self.save_for_backward(x)
        return _kernel(_kernels.leaky_relu_forward, (x,), (self.slope,))

    def backward(self, gy):
        (x,) = self.saved_tensors
        return _kernel(_kernels.leaky_relu_backward, (x, gy), (self.slope,))


class PReLU(Function):
    """y = x if x > 0 else w·x with w one value or one per channel (axis 1);
    dy/dx = 1 or w, dy/dw = 0 or x (summed over every axis but the channels)."""

    def forward(self, x, weight):
        w = weight.reshape(_channel_shape(weight.size, x.ndim))
        positive = x > 0
        self.save_for_backward(x, w, positive)
        self.weight_shape = weight.shape
        return np.where(positive, x, w * x)

    def backward(self, gy):
        x, w, positive = self.saved_tensors
        gx = gw = None
        if self.needs_input_grad[0]:
            gx = np.where(positive, gy, w * gy)
        if self.needs_input_grad[1]:
            gw = unbroadcast(np.where(positive, 0, gy * x), w.shape).reshape(self.weight_shape)
        return gx, gw


class ELU(Function):
    """y = scale · (x if x > 0 else alpha·(e^x − 1)) (elu: scale 1; selu: its two constants);
    dy/dx = scale if x > 0 else y + scale·alpha."""

    def __init__(self, alpha, scale=1.0):
        self.alpha, self.scale = float(alpha), float(scale)

    def forward(self, x):
        negative_part = np.minimum(x, 0, out=np.empty_like(x))   # an array even for 0-d x
        np.expm1(negative_part, out=negative_part)
        negative_part *= self.alpha
        y = np.maximum(x, 0)
        y += negative_part
        if self.scale != 1.0:
            y *= self.scale
        self.save_for_backward(x, y)
        return y

    def backward(self, gy):
        x, y = self.saved_tensors
        return _kernel(_kernels.elu_backward, (x, y, gy), (self.alpha, self.scale))


class GELU(Function):
    """y = x·Φ(x) = x/2 · (1 + erf(x/√2)) (``approximate='none'``), or PyTorch's
    ``approximate='tanh'``: y = x/2 · (1 + tanh(√(2/π)·(x + 0.044715·x³)))."""

    def __init__(self, approximate):
        self.approximate = approximate

    def forward(self, x):
        if self.approximate == "none":
            self.save_for_backward(x)
            return _kernel(_kernels.gelu_forward, (x,))
        t = np.multiply(x, x, out=np.empty_like(x))   # out=: an array even for 0-d x
        t *= GELU_TANH_CUBIC
        t += 1
        t *= x
        t *= SQRT_2_OVER_PI
        np.tanh(t, out=t)
        self.save_for_backward(x, t)
        y = t + 1
        y *= x
        y *= 0.5
        return y

    def backward(self, gy):
        if self.approximate == "none":
            (x,) = self.saved_tensors
            return _kernel(_kernels.gelu_backward, (x, gy))
        x, t = self.saved_tensors
        return _kernel(_kernels.gelu_tanh_backward, (x, t, gy))


class Sigmoid(Function):
    """y = 1 / (1 + e^-x); dy/dx = y·(1 − y)."""

    def forward(self, x):
        y = _sigmoid(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return _kernel(_kernels.sigmoid_backward, (y, gy))


class Tanh(Function):
    """y = tanh(x); dy/dx = 1 − y²."""

    def forward(self, x):
        y = np.tanh(x)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return _kernel(_kernels.tanh_backward, (y, gy))


class SiLU(Function):
    """y = x·sigmoid(x); with s = sigmoid(x), dy/dx = s·(1 + x·(1 − s))."""

    def forward(self, x):
        s = _sigmoid(x)
        self.save_for_backward(x, s)
        return x * s

    def backward(self, gy):
        x, s = self.saved_tensors
        return _kernel(_kernels.silu_backward, (x, s, gy))


class Swish(Function):
    """y = x·sigmoid(β·x) with β one value or one per channel (axis 1) (Ramachandran et al.,
    2017; silu is β = 1). With z = β·x and s = sigmoid(z):
    dy/dx = s·(1 + z·(1 − s)), dy/dβ = x²·s·(1 − s)."""

    def forward(self, x, beta):
        self.beta_shape = beta.shape
        z = x * beta.reshape(_channel_shape(beta.size, x.ndim))
        s = _sigmoid(z)
        self.save_for_backward(x, z, s)
        return x * s

    def backward(self, gy):
        x, z, s = self.saved_tensors
        gx = gbeta = None
        if self.needs_input_grad[0]:
            # silu's derivative s·(1 + x·(1 − s)) taken at z, times gy
            gx = _kernel(_kernels.silu_backward, (z, s, gy))
        if self.needs_input_grad[1]:
            per_element = gy * x * x * s * (1 - s)
            shape = _channel_shape(int(np.prod(self.beta_shape)), x.ndim)
            gbeta = unbroadcast(per_element, shape).reshape(self.beta_shape)
        return gx, gbeta


class Softmax(Function):
    """y = e^(x − max) / Σ e^(x − max) along ``axis``; dx = y·(dy − Σ dy·y)."""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        if x.size == 0:  # nothing to normalise (numpy's max refuses an empty axis)
            self.save_for_backward(x)
            return x.copy()
        y = x - x.max(axis=self.axis, keepdims=True)
        np.exp(y, out=y)
        y /= y.sum(axis=self.axis, keepdims=True)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        gx = gy * y
        gx -= y * gx.sum(axis=self.axis, keepdims=True)
        return gx


class LogSoftmax(Function):
    """y = x − max − log Σ e^(x − max) along ``axis`` (no overflow for any finite logits);
    dx = dy − e^y · Σ dy."""

    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        y = log_softmax_array(x, self.axis)
        self.save_for_backward(y)
        return y

    def backward(self, gy):
        (y,) = self.saved_tensors
        return gy - np.exp(y) * gy.sum(axis=self.axis, keepdims=True)


def log_softmax_array(x, axis):
    """The stable log-softmax of a numpy array (shared with the cross-entropy loss)."""
    if x.size == 0:      # nothing to normalise (numpy's max refuses an empty axis)
        return x.copy()
    shifted = x - x.max(axis=axis, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    shifted -= log_sum
    return shifted


class Maxout(Function):
    """Maxout (Goodfellow et al., 2013): the channels along ``axis`` are cut into groups of
    ``pieces`` consecutive channels and each group is replaced by its maximum, so C channels
    become C / pieces. The gradient goes to the first maximum of each group on ties."""

    def __init__(self, pieces, axis):
        self.pieces, self.axis = pieces, axis

    def forward(self, x):
        shape = x.shape
        grouped = x.reshape(shape[:self.axis] + (shape[self.axis] // self.pieces, self.pieces)
                            + shape[self.axis + 1:])
        winner = np.expand_dims(np.argmax(grouped, axis=self.axis + 1), self.axis + 1)
        self.winner, self.grouped_shape, self.input_shape = winner, grouped.shape, shape
        return np.take_along_axis(grouped, winner, axis=self.axis + 1).squeeze(self.axis + 1)

    def backward(self, gy):
        gx = np.zeros(self.grouped_shape, dtype=gy.dtype)
        np.put_along_axis(gx, self.winner, np.expand_dims(gy, self.axis + 1), axis=self.axis + 1)
        return gx.reshape(self.input_shape)


# -- functional wrappers: validate, then apply -----------------------------------------------

def _channel_parameter(x, param, name, op_name):
    """Validate a parameter holding one value or one per channel (axis 1) of ``x``; it takes
    ``x``'s dtype when it is a constant (a trainable one must already match)."""
    param = float_input(param, op_name, name, like=x)
    channels = x.shape[1] if x.ndim >= 2 else 1
    if param.ndim > 1 or param.size not in (1, channels):
        raise ValueError(f"{op_name}: {name} must hold 1 value or one per channel "
                         f"({channels} for x of shape {x.shape}), got shape {param.shape}")
    if param.dtype != x.dtype:
        raise TypeError(f"{op_name}: {name} has dtype {param.dtype} but x has dtype "
                        f"{x.dtype}")
    return param


def _single_axis(axis, x, op_name):
    if x.ndim == 0:
        raise ValueError(f"{op_name}: x must be at least 1-D, got shape {x.shape}")
    ax = check_axis(axis, x.ndim, op_name, of=f"x of shape {x.shape}")
    if x.shape[ax] == 0:
        raise ValueError(f"{op_name}: axis {axis} of x of shape {x.shape} is empty")
    return ax


def _normalized(op_cls, op_name, x, axis, dim, dtype):
    """softmax / log_softmax along ``axis`` (or PyTorch's ``dim``; one is required) of ``x``,
    first cast to ``dtype`` when given (PyTorch's argument). A 0-d x is one element along
    axis 0 or -1, as in PyTorch; an empty x gives an empty result."""
    axis = alias(axis, dim, "axis", "dim", op_name)
    if axis is None:
        raise TypeError(f"{op_name}: the axis to normalise over is required (axis= or dim=)")
    x = float_input(x, op_name)
    if dtype is not None:
        x = x.astype(as_dtype(dtype, op_name))
        check_float(x, op_name, "x")
    if x.ndim == 0:
        check_axis(axis, 1, op_name, of="a 0-d x (one element)")
        return op_cls(0)(x.reshape(1)).reshape(())
    return op_cls(check_axis(axis, x.ndim, op_name, of=f"x of shape {x.shape}"))(x)


def relu(x):
    return ReLU()(float_input(x, "relu"))


def leaky_relu(x, negative_slope=0.01):
    return LeakyReLU(real_number(negative_slope, "negative_slope", "leaky_relu"))(
        float_input(x, "leaky_relu"))


def prelu(x, weight):
    """Leaky relu with a learned slope ``weight``: one value, or one per channel (axis 1)."""
    x = float_input(x, "prelu")
    return PReLU()(x, _channel_parameter(x, weight, "weight", "prelu"))


def elu(x, alpha=1.0):
    return ELU(real_number(alpha, "alpha", "elu"))(float_input(x, "elu"))


def selu(x):
    """elu with Klambauer et al.'s (2017) self-normalising alpha and scale."""
    return ELU(SELU_ALPHA, SELU_SCALE)(float_input(x, "selu"))


def gelu(x, approximate="none"):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU(approximate)(float_input(x, "gelu"))


def silu(x):
    """y = x·sigmoid(x)."""
    return SiLU()(float_input(x, "silu"))


def swish(x, beta):
    """y = x·sigmoid(β·x); ``beta`` one value or one per channel (axis 1), differentiable."""
    x = float_input(x, "swish")
    return Swish()(x, _channel_parameter(x, beta, "beta", "swish"))


def sigmoid(x):
    return Sigmoid()(float_input(x, "sigmoid"))


def tanh(x):
    return Tanh()(float_input(x, "tanh"))


def softmax(x, axis=None, *, dim=None, dtype=None):
    """e^x / Σ e^x along ``axis`` (PyTorch: ``dim``); ``dtype`` casts x first."""
    return _normalized(Softmax, "softmax", x, axis, dim, dtype)


def log_softmax(x, axis=None, *, dim=None, dtype=None):
    """x − log Σ e^x along ``axis`` (PyTorch: ``dim``); ``dtype`` casts x first."""
    return _normalized(LogSoftmax, "log_softmax", x, axis, dim, dtype)


def maxout(x, pieces, axis=1):
    """Max over groups of ``pieces`` consecutive channels along ``axis``: the output has
    ``x.shape[axis] // pieces`` channels there, other sizes unchanged."""
    x = float_input(x, "maxout")
    if not isinstance(pieces, (int, np.integer)) or isinstance(pieces, bool):
        raise TypeError(f"maxout: pieces must be an int, got {pieces!r}")
    if pieces < 1:
        raise ValueError(f"maxout: pieces must be positive, got {pieces}")
    ax = _single_axis(axis, x, "maxout")
    if x.shape[ax] % pieces:
        raise ValueError(f"maxout: the {x.shape[ax]} channels along axis {axis} of x of shape "
                         f"{x.shape} are not divisible by pieces={pieces}")
    return Maxout(int(pieces), ax)(x)
