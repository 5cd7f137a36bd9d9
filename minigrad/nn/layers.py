"""Basic layers: Linear, Dropout, BatchNorm1d, BatchNorm2d, Identity, Flatten (PyTorch's names
and defaults)."""
import math
import numbers

import numpy as np

from .._validate import alias, positive_int, probability
from ..ops import layers as L
from ..ops import normalization as N
from ..ops import shape as S
from . import init
from .module import Module, Parameter


class Identity(Module):
    """Returns its input unchanged (a placeholder, e.g. for an optional layer)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Flatten(Module):
    """Flattens axes ``start_axis..end_axis`` into one: (N, C, H, W) → (N, C·H·W) by default."""

    def __init__(self, start_axis=None, end_axis=None, *, start_dim=None, end_dim=None):
        super().__init__()
        start_axis = alias(start_axis, start_dim, "start_axis", "start_dim", "Flatten")
        end_axis = alias(end_axis, end_dim, "end_axis", "end_dim", "Flatten")
        self.start_axis = 1 if start_axis is None else start_axis
        self.end_axis = -1 if end_axis is None else end_axis

    def forward(self, x):
        return S.flatten(x, self.start_axis, self.end_axis)

    def extra_repr(self):
        return f"start_axis={self.start_axis}, end_axis={self.end_axis}"


class Linear(Module):
    """y = x · Wᵀ + b: (*, in_features) → (*, out_features).

    Initialised as PyTorch: W ~ U(−1/√in, 1/√in) (kaiming_uniform_ with a = √5) and
    b ~ U(−1/√in, 1/√in), from the global generator (``minigrad.manual_seed``)."""

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32):
        super().__init__()
        self.in_features = positive_int(in_features, "in_features", "Linear")
        self.out_features = positive_int(out_features, "out_features", "Linear")
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dtype=dtype))
        self.bias = Parameter(np.empty(self.out_features, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return L.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Dropout(Module):
    """Inverted dropout with probability ``p`` in training; identity in eval mode. Masks come
    from the global generator (``minigrad.manual_seed``)."""

    def __init__(self, p=0.5):
        super().__init__()
        self.p = probability(p, "p", "Dropout")

    def forward(self, x):
        return L.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class _BatchNorm(Module):
    """Batch normalisation per channel (axis 1; see ``minigrad.ops.normalization``), the body
    of BatchNorm1d and BatchNorm2d, which differ only in the input they accept.

    Training mode normalises with the batch statistics and updates ``running_mean`` and
    ``running_var`` with ``momentum`` (None: a cumulative average over the
    ``num_batches_tracked`` batches seen); eval mode normalises with the running statistics.
    ``affine`` adds the learned γ (``weight``, ones) and β (``bias``, zeros). The three buffers
    are part of the state_dict, under PyTorch's names."""

    #: accepted input dimensionalities, and how an error message describes them
    input_ndims, input_text = (), ""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=np.float32):
        super().__init__()
        name = type(self).__name__
        self.num_features = positive_int(num_features, "num_features", name)
        if not isinstance(eps, numbers.Real) or not eps > 0:
            raise ValueError(f"{name}: eps must be a positive number, got {eps!r}")
        if momentum is not None and (not isinstance(momentum, numbers.Real)
                                     or not 0.0 <= momentum <= 1.0):
            raise ValueError(f"{name}: momentum must be None or in [0, 1], got {momentum!r}")
        self.eps, self.momentum = float(eps), momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        c = self.num_features
        self.weight = Parameter(np.ones(c, dtype=dtype)) if affine else None
        self.bias = Parameter(np.zeros(c, dtype=dtype)) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(c, dtype=dtype))
            self.register_buffer("running_var", np.ones(c, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def forward(self, x):
        self._check_input(x)
        momentum = self._momentum_now()
        # Batch statistics in training, and always when there are no running ones (then the
        # running buffers are None and nothing is updated).
        y = N.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                         self.training or not self.track_running_stats, momentum, self.eps)
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
        return y

    def _check_input(self, x):
        name = type(self).__name__
        if x.ndim not in self.input_ndims:
            raise ValueError(f"{name}: expected {self.input_text}, got shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{name}: input has {x.shape[1]} channels but the layer was built "
                             f"for num_features={self.num_features}")

    def _momentum_now(self):
        """The momentum of this step's running-statistics update (momentum=None: a cumulative
        average over the batches seen)."""
        if self.momentum is None:
            if self.training and self.track_running_stats:
                return 1.0 / (int(self.num_batches_tracked) + 1)
            return 0.0
        return self.momentum

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) features or (N, C, L) sequences per channel C: the
    statistics span N (and L). PyTorch's arguments, parameters and buffers (see
    ``_BatchNorm``)."""

    input_ndims, input_text = (2, 3), "a 2-D (N, C) or 3-D (N, C, L) input"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) images per channel C: the statistics span N, H and
    W. PyTorch's arguments, parameters and buffers (see ``_BatchNorm``)."""

    input_ndims, input_text = (4,), "a 4-D input (N, C, H, W)"
