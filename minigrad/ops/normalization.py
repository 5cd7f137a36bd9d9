"""Batch normalisation as one op with an analytic backward (fused numpy, no graph of small ops).

For x of shape (N, C, *) every channel c is normalised over the M = N · prod(*) values it has:

    x̂ = (x − μ_c) / √(σ²_c + eps),    y = γ_c · x̂ + β_c

In training μ and σ² are the batch mean and biased variance, and the running statistics are
updated in place as in PyTorch: running_mean ← (1 − m) · running_mean + m · μ and
running_var ← (1 − m) · running_var + m · σ² · M / (M − 1) (the unbiased variance). Otherwise the
running statistics take the place of μ and σ².
"""
import math

import numpy as np

from .._kernels import normalization as _kernels
from .._validate import flag, real_number
from ..function import Function
from ..tensor import Tensor, as_tensor, float_input
from ..threads import get_num_threads
from .workspace import absent

_FLOATS = (np.float32, np.float64)


class BatchNorm(Function):
    """Inputs x, γ, β. With batch statistics the gradient is

        gx = γ / √(σ² + eps) · (gy − mean(gy) − x̂ · mean(gy · x̂)),

    means per channel; gγ = Σ gy · x̂ and gβ = Σ gy in both modes. With fixed (running)
    statistics x ↦ y is affine, so gx = gy · γ / √(σ² + eps).

    The passes are the Cython kernels of ``minigrad/_kernels/normalization.pyx`` (the batch
    read in memory order, sums in double): the forward reads x twice (moments) and writes y
    once; x̂ is never stored — backward recomputes it from x, μ and 1/σ inside its two
    passes. Kernels rather than numpy expressions because these fused passes read x fewer
    times and make no temporaries (train suite: fcn_mnist_step)."""

    def __init__(self, use_batch_stats, eps, mean=None, var=None):
        self.use_batch_stats, self.eps = use_batch_stats, eps
        self.mean, self.var = mean, var     # the running statistics when not use_batch_stats
        self.batch_mean = self.batch_var = None

    def forward(self, x, weight, bias):
        n, c = x.shape[:2]
        threads = get_num_threads()
        xr = np.ascontiguousarray(x).reshape(n, c, math.prod(x.shape[2:]))   # N may be 0
        if self.use_batch_stats:
            mean, var, self.count = self.batch_moments(xr, threads)
            self.batch_mean, self.batch_var = mean.astype(x.dtype), var.astype(x.dtype)
        else:
            mean, var = self.mean, self.var
            if not any(self.needs_input_grad) and mean.dtype == var.dtype == x.dtype:
                # inference: one kernel, which also makes the per-channel scale (batch 1: the
                # separate numpy steps cost more than the pass)
                y = np.empty_like(xr)
                _kernels.normalize(xr, mean, var, weight, bias, self.eps, y, threads)
                return y.reshape(x.shape)
            mean = mean.astype(np.float64)
        inv_std = 1.0 / np.sqrt(np.add(var, self.eps, dtype=np.float64))
        scale = (weight * inv_std).astype(x.dtype)
        y = np.empty_like(xr)
        _kernels.affine(xr, scale, mean.astype(x.dtype), bias, absent(x.dtype, 3), absent(x.dtype),
                        y, threads)
        if any(self.needs_input_grad):
            self.save_for_backward(xr, mean, inv_std, scale)
        return y.reshape(x.shape)

    def backward(self, gy):
        xr, mean, inv_std, scale = self.saved_tensors
        threads = get_num_threads()
        dtype = xr.dtype
        shape = gy.shape
        gy = np.ascontiguousarray(gy, dtype=dtype).reshape(xr.shape)
        channels = xr.shape[1]
        need_gx, need_gw, need_gb = self.needs_input_grad
        gx = sum_gy = grad_weight = None
        if self.use_batch_stats or need_gw or need_gb:    # fixed statistics: gx needs no sums
            sum_gy, sum_gy_xc = np.empty(channels), np.empty(channels)
            _kernels.grad_sums(gy, xr, mean, sum_gy, sum_gy_xc, threads)
            grad_weight = sum_gy_xc * inv_std                 # Σ gy · x̂
        if need_gx:
            gx = np.empty_like(gy)
            if self.use_batch_stats:
                total_gy, total_gy_xc = self.batch_sums(sum_gy, sum_gy_xc)
                # gx = s·gy − s·mean(gy) − s/σ · mean(gy·x̂) · (x − μ),  s = γ/σ
                slope = -scale * inv_std * (total_gy_xc * inv_std) / self.count
                shift = -scale * total_gy / self.count
                _kernels.affine(xr, slope.astype(dtype), mean.astype(dtype),
                                shift.astype(dtype), gy, scale, gx, threads)
            else:
                zeros = np.zeros(channels, dtype)
                _kernels.affine(gy, scale, zeros, zeros, absent(dtype, 3), absent(dtype), gx,
                                threads)
            gx = gx.reshape(shape)
        return (gx, grad_weight.astype(dtype) if need_gw else None,
                sum_gy.astype(dtype) if need_gb else None)

    # The batch the statistics span: this call's input here; SyncBatchNorm (in
    # minigrad.distributed) overrides these two to span every rank's part of the global batch.
    def batch_moments(self, xr, threads):
        """Per-channel mean and biased variance (float64, shape (C,)) of ``xr`` (N, C, L), and
        the number of values per channel they are over."""
        mean, var = np.empty(xr.shape[1]), np.empty(xr.shape[1])
        _kernels.moments(xr, mean, var, threads)
        return mean, var, xr.shape[0] * xr.shape[2]

    def batch_sums(self, sum_gy, sum_gy_xc):
        """The per-channel sums Σ gy and Σ gy·(x − μ) (float64, (C,)) over the batch the
        statistics span, from this input's own sums."""
        return sum_gy, sum_gy_xc


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
    """PyTorch's ``F.batch_norm`` for input (N, C, *) — (N, C), (N, C, L), (N, C, H, W), ...:
    batch statistics when ``training`` (and then ``running_mean``/``running_var``, if given,
    are updated in place with ``momentum``, any real number as in PyTorch), else the running
    statistics. ``weight``/``bias`` (C,) are γ and β (1 and 0 when None). Output shape = input
    shape. An empty batch (N = 0) gives an empty output and leaves the running statistics
    unchanged, as in PyTorch."""
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
    momentum = real_number(momentum, "momentum", "batch_norm")
    count = input.size // max(channels, 1)
    if training and count == 1:
        raise ValueError(f"batch_norm: training needs more than one value per channel, got "
                         f"input of shape {input.shape}")
    weight = _affine_tensor(weight, "weight", channels, input.dtype, 1.0)
    bias = _affine_tensor(bias, "bias", channels, input.dtype, 0.0)
    if count == 0:
        # no statistics to take: normalise nothing with fixed ones, update nothing
        training, running_mean, running_var = False, np.zeros(channels), np.ones(channels)
    op = BatchNorm(training, eps, running_mean, running_var)
    y = op(input, weight, bias)
    if training and running_mean is not None:
        update_running_stats(running_mean, running_var, op, momentum)
    return y


def update_running_stats(running_mean, running_var, op, momentum):
    """After ``op`` (a BatchNorm that used batch statistics) ran: running ← (1 − momentum) ·
    running + momentum · batch statistic, in place, the variance made unbiased over the
    ``op.count`` values per channel the statistics span."""
    running_mean *= 1.0 - momentum
    running_mean += momentum * op.batch_mean
    running_var *= 1.0 - momentum
    running_var += (momentum * op.count / (op.count - 1)) * op.batch_var
