"""Batch normalisation as one op with an analytic backward (fused numpy, no graph of small ops).

For x of shape (N, C, *) every channel c is normalised over the M = N · prod(*) values it has:

    x̂ = (x − μ_c) / √(σ²_c + eps),    y = γ_c · x̂ + β_c

In training μ and σ² are the batch mean and biased variance, and the running statistics are
updated in place as in PyTorch: running_mean ← (1 − m) · running_mean + m · μ and
running_var ← (1 − m) · running_var + m · σ² · M / (M − 1) (the unbiased variance). Otherwise the
running statistics take the place of μ and σ².
"""
import numbers

import numpy as np

from ..function import Function
from ..tensor import Tensor, as_tensor
from .activation import float_input
from .geometry import flag, real_number

_FLOATS = (np.float32, np.float64)


def _per_channel(v):
    """(C,) → (1, C, 1): broadcasts against the (N, C, L) view of the input."""
    return v.reshape(1, -1, 1)


class BatchNorm(Function):
    """Inputs x, γ, β. With batch statistics the gradient is

        gx = γ / √(σ² + eps) · (gy − mean(gy) − x̂ · mean(gy · x̂)),

    means per channel; gγ = Σ gy · x̂ and gβ = Σ gy in both modes. With fixed (running)
    statistics x ↦ y is affine, so gx = gy · γ / √(σ² + eps)."""

    def __init__(self, use_batch_stats, eps, mean=None, var=None):
        self.use_batch_stats, self.eps = use_batch_stats, eps
        self.mean, self.var = mean, var     # the running statistics when not use_batch_stats
        self.batch_mean = self.batch_var = None

    def forward(self, x, weight, bias):
        n, c = x.shape[:2]
        xr = x.reshape(n, c, int(np.prod(x.shape[2:])))
        if not self.use_batch_stats:
            return self._forward_fixed_stats(xr, weight, bias).reshape(x.shape)
        count = xr.shape[0] * xr.shape[2]
        mean = xr.sum(axis=(0, 2)) / count
        x_hat = xr - _per_channel(mean)
        var = np.einsum("ncl,ncl->c", x_hat, x_hat) / count
        self.batch_mean, self.batch_var = mean, var
        inv_std = self._inv_std(var, x.dtype)
        x_hat *= _per_channel(inv_std)
        y = x_hat * _per_channel(weight)
        y += _per_channel(bias)
        if any(self.needs_input_grad):
            self.save_for_backward(x_hat, inv_std, weight)
        return y.reshape(x.shape)

    def _inv_std(self, var, dtype):
        return (1.0 / np.sqrt(var + dtype.type(self.eps))).astype(dtype, copy=False)

    def _forward_fixed_stats(self, xr, weight, bias):
        """y = x · s + (β − μ · s) with s = γ / √(σ² + eps): one multiply and one add."""
        mean = self.mean.astype(xr.dtype)
        inv_std = self._inv_std(self.var.astype(xr.dtype), xr.dtype)
        scale = weight * inv_std
        y = xr * _per_channel(scale)
        y += _per_channel(bias - mean * scale)
        if any(self.needs_input_grad):
            # x̂ only serves γ's gradient: backward recomputes it from x and μ.
            self.save_for_backward(xr, inv_std, weight, mean)
        return y

    def backward(self, gy):
        saved = self.saved_tensors
        inv_std, weight = saved[1], saved[2]
        shape = gy.shape
        gy = gy.reshape(saved[0].shape)
        sum_gy = gy.sum(axis=(0, 2))
        need_gx, need_gw, need_gb = self.needs_input_grad
        x_hat = sum_gy_xhat = None
        if self.use_batch_stats or need_gw:
            x_hat = (saved[0] if self.use_batch_stats
                     else (saved[0] - _per_channel(saved[3])) * _per_channel(inv_std))
            sum_gy_xhat = np.einsum("ncl,ncl->c", gy, x_hat)
        gx = None
        if need_gx:
            if self.use_batch_stats:
                count = gy.shape[0] * gy.shape[2]
                gx = gy - _per_channel(sum_gy / count)
                gx -= x_hat * _per_channel(sum_gy_xhat / count)
                gx *= _per_channel(weight * inv_std)
            else:
                gx = gy * _per_channel(weight * inv_std)
            gx = gx.reshape(shape)
        return gx, sum_gy_xhat if need_gw else None, sum_gy if need_gb else None


def _channel_vector(value, name, channels, dtype=None):
    """The (C,) numpy array of a per-channel argument (a Tensor or an array); ``dtype``, when
    given, is required."""
    array = value.data if isinstance(value, Tensor) else value
    if not isinstance(array, np.ndarray) or array.dtype not in _FLOATS:
        raise TypeError(f"batch_norm: {name} must be a float32/float64 array or tensor, got "
                        f"{type(value).__name__}")
    if dtype is not None and array.dtype != dtype:
        raise TypeError(f"batch_norm: {name} must have the input's dtype {dtype}, got "
                        f"{array.dtype}")
    if array.shape != (channels,):
        raise ValueError(f"batch_norm: {name} must have shape ({channels},) for an input with "
                         f"{channels} channels, got {array.shape}")
    return array


def _affine_tensor(value, name, channels, dtype, fill):
    """γ or β as a tensor (the constant ``fill`` when None)."""
    if value is None:
        return Tensor(np.full(channels, fill, dtype=dtype))
    _channel_vector(value, name, channels, dtype)
    return as_tensor(value, name=name, op_name="batch_norm")


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """PyTorch's ``F.batch_norm`` for input (N, C, *): batch statistics when ``training`` (and
    then ``running_mean``/``running_var``, if given, are updated in place with ``momentum``),
    else the running statistics. ``weight``/``bias`` (C,) are γ and β (1 and 0 when None).
    Output shape = input shape."""
    input = float_input(input, "batch_norm", "input")
    if input.ndim < 2:
        raise ValueError(f"batch_norm: input must have shape (N, C, *), got {input.shape}")
    channels = input.shape[1]
    if running_mean is not None:
        running_mean = _channel_vector(running_mean, "running_mean", channels)
    if running_var is not None:
        running_var = _channel_vector(running_var, "running_var", channels)
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm: running_mean and running_var must both be given or both "
                         "be None")
    training = flag(training, "training", "batch_norm")
    if not training and running_mean is None:
        raise ValueError("batch_norm: running_mean and running_var are needed when not "
                         "training")
    if training:
        # the running statistics are updated in place: fail before computing anything
        for buffer, name in ((running_mean, "running_mean"), (running_var, "running_var")):
            if buffer is not None and not buffer.flags.writeable:
                raise ValueError(f"batch_norm: {name} is read-only, but training updates it in "
                                 "place; pass a writeable array (or running_mean=running_var="
                                 "None to use batch statistics only)")
    eps = real_number(eps, "eps", "batch_norm")
    if not eps > 0:
        raise ValueError(f"batch_norm: eps must be a positive number, got {eps!r}")
    if not isinstance(momentum, numbers.Real) or not 0.0 <= momentum <= 1.0:
        raise ValueError(f"batch_norm: momentum must be a number in [0, 1], got {momentum!r}")
    count = input.size // max(channels, 1)
    if training and count <= 1:
        raise ValueError(f"batch_norm: training needs more than one value per channel, got "
                         f"input of shape {input.shape}")
    weight = _affine_tensor(weight, "weight", channels, input.dtype, 1.0)
    bias = _affine_tensor(bias, "bias", channels, input.dtype, 0.0)
    op = BatchNorm(training, eps, running_mean, running_var)
    y = op(input, weight, bias)
    if training and running_mean is not None:
        running_mean *= 1.0 - momentum
        running_mean += momentum * op.batch_mean
        running_var *= 1.0 - momentum
        running_var += (momentum * count / (count - 1)) * op.batch_var
    return y
