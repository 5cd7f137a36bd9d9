"""Layer ops: ``linear`` (one fused affine map) and inverted ``dropout``."""
import numpy as np

from .._validate import flag, probability
from ..function import Function
from ..random import resolve_rng
from ..tensor import as_tensor, float_input


class Linear(Function):
    """y = x · Wᵀ + b for x of shape (*, in), W of shape (out, in), b of shape (out,);
    y has shape (*, out). Backward: gx = gy · W, gW = gyᵀ · x and gb = Σ gy over the leading
    axes (these two summed over all leading axes at once, as one matrix product)."""

    def forward(self, x, weight, *bias):
        self.save_for_backward(x, weight)
        y = x @ weight.T
        if bias:
            y += bias[0]
        return y

    def backward(self, gy):
        x, weight = self.saved_tensors
        gx = gy @ weight if self.needs_input_grad[0] else None
        gy_rows = gy.reshape(-1, gy.shape[-1])
        gw = gy_rows.T @ x.reshape(-1, x.shape[-1]) if self.needs_input_grad[1] else None
        if len(self.needs_input_grad) == 2:
            return gx, gw
        gb = gy_rows.sum(axis=0) if self.needs_input_grad[2] else None
        return gx, gw, gb


class Dropout(Function):
    """y = x · m where m = keep / (1 − p) (inverted dropout: E[y] = x); gx = gy · m."""

    def __init__(self, scaled_mask):
        self.scaled_mask = scaled_mask

    def forward(self, x):
        return x * self.scaled_mask

    def backward(self, gy):
        return gy * self.scaled_mask


def linear(input, weight, bias=None):
    """y = input · weightᵀ + bias; input (*, in), weight (out, in), bias (out,) → (*, out)."""
    input = float_input(input, "linear", "input")
    weight = float_input(weight, "linear", "weight")
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape "
                         f"{weight.shape}")
    if input.ndim < 1 or input.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input of shape {input.shape} does not match weight of shape "
                         f"{weight.shape} (input's last axis must be in_features = "
                         f"{weight.shape[1]})")
    tensors = [input, weight]
    if bias is not None:
        bias = float_input(bias, "linear", "bias")
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"linear: bias must have shape ({weight.shape[0]},) to match weight "
                             f"of shape {weight.shape}, got {bias.shape}")
        tensors.append(bias)
    if len({t.dtype for t in tensors}) != 1:
        raise TypeError(f"linear: input, weight and bias must share a dtype, got "
                        f"{[str(t.dtype) for t in tensors]}")
    return Linear()(*tensors)


def dropout(input, p=0.5, training=True, rng=None, mask=None):
    """Inverted dropout: in training, zero each element with probability ``p`` and scale the
    survivors by 1 / (1 − p); identity (the input itself) when not training or p = 0.

    ``rng``: a ``numpy.random.Generator``, or an integer seed (the same seed gives the same mask
    on every call, which gradcheck needs), else the global generator (``minigrad.manual_seed``).
    ``mask``: an explicit boolean array of the kept elements, shape of ``input`` (overrides rng).
    """
    input = float_input(input, "dropout", "input")
    p = probability(p, "p", "dropout")
    if not flag(training, "training", "dropout") or p == 0.0:
        return input
    if mask is not None:
        keep = as_tensor(mask, name="mask", op_name="dropout").data
        if keep.dtype != np.bool_ or keep.shape != input.shape:
            raise ValueError(f"dropout: mask must be a boolean array of the input's shape "
                             f"{input.shape}, got dtype {keep.dtype} and shape {keep.shape}")
    else:
        keep = resolve_rng(rng, "dropout").random(input.shape, dtype=input.dtype) >= p
    # p = 1 drops everything (scale 0 rather than 1/0).
    scale = input.dtype.type(0.0 if p == 1.0 else 1.0 / (1.0 - p))
    scaled_mask = keep.astype(input.dtype)
    scaled_mask *= scale
    return Dropout(scaled_mask)(input)
