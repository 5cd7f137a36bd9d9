"""Modules of the alternative pooling kinds (see minigrad.ops.pooling_extra for the math)."""
import numbers

import numpy as np

from .._validate import pair
from ..ops import pooling_extra as P
from ..random import resolve_rng
from .module import Module, Parameter


def _seeded(seed, layer):
    """A private generator for an int seed (each forward continues its stream, so a run is
    reproducible but successive forwards differ); None uses minigrad's global generator."""
    if seed is None:
        return None
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise TypeError(f"{layer}: seed must be None or a non-negative int, got {seed!r}")
    return np.random.default_rng(int(seed))


class LPPool2d(Module):
    """Power-average pooling, ``lp_pool2d`` (PyTorch calls ``p`` ``norm_type``)."""

    def __init__(self, p, kernel_size, stride=None, ceil_mode=False):
        super().__init__()
        self.p, self.kernel_size, self.stride, self.ceil_mode = p, kernel_size, stride, ceil_mode

    def forward(self, x):
        return P.lp_pool2d(x, self.p, self.kernel_size, self.stride, self.ceil_mode)

    def extra_repr(self):
        return (f"p={self.p}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"ceil_mode={self.ceil_mode}")


class StochasticPool2d(Module):
    """Stochastic pooling: samples one cell per window in training mode, outputs the
    probability-weighted average in eval mode (``stochastic_pool2d``)."""

    def __init__(self, kernel_size, stride=None, seed=None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride
        self.rng = _seeded(seed, "StochasticPool2d")

    def forward(self, x):
        return P.stochastic_pool2d(x, self.kernel_size, self.stride, training=self.training,
                                   seed=self.rng)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class FractionalMaxPool2d(Module):
    """Fractional max pooling (``fractional_max_pool2d``): new random regions at every forward
    in training mode. In eval mode the regions are fixed (every sample u = 0.5), so evaluation
    is deterministic; Graham's test-time averaging over several region draws can be done with
    the functional form and different seeds."""

    def __init__(self, kernel_size, output_size=None, output_ratio=None, overlapping=True,
                 seed=None):
        super().__init__()
        self.kernel_size, self.output_size, self.output_ratio = (kernel_size, output_size,
                                                                 output_ratio)
        self.overlapping = overlapping
        self.rng = _seeded(seed, "FractionalMaxPool2d")

    def forward(self, x):
        samples = seed = None
        if self.training:
            seed = self.rng
        else:
            batch = tuple(x.shape[:-3]) or (1,)      # an unbatched (C, H, W) is a batch of one
            samples = np.full(batch + (x.shape[-3], 2), 0.5, dtype=x.dtype)
        return P.fractional_max_pool2d(x, self.kernel_size, self.output_size, self.output_ratio,
                                       self.overlapping, random_samples=samples, seed=seed)

    def extra_repr(self):
        size = (f"output_size={self.output_size}" if self.output_size is not None
                else f"output_ratio={self.output_ratio}")
        return f"kernel_size={self.kernel_size}, {size}, overlapping={self.overlapping}"


class SpatialPyramidPool2d(Module):
    """(N, C, H, W) → (N, C·Σ l²) for any input size (``spatial_pyramid_pool2d``)."""

    def __init__(self, levels=(1, 2, 4), mode="max"):
        super().__init__()
        self.levels, self.mode = tuple(levels), mode

    def forward(self, x):
        return P.spatial_pyramid_pool2d(x, self.levels, self.mode)

    def extra_repr(self):
        return f"levels={self.levels}, mode={self.mode!r}"


class MixedPool2d(Module):
    """α·max + (1 − α)·avg pooling with a learned α (``mixed_pool2d``), initialised to 0.5:
    one α for the layer, or one per channel when ``num_channels`` is given."""

    def __init__(self, kernel_size, stride=None, padding=0, num_channels=None,
                 dtype=np.float32):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        if num_channels is not None and (not isinstance(num_channels, numbers.Integral)
                                         or isinstance(num_channels, bool) or num_channels < 1):
            raise ValueError(f"MixedPool2d: num_channels must be None or a positive int, got "
                             f"{num_channels!r}")
        shape = () if num_channels is None else (int(num_channels),)
        self.alpha = Parameter(np.full(shape, 0.5, dtype=dtype))

    def forward(self, x):
        return P.mixed_pool2d(x, self.alpha, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"alpha_shape={self.alpha.shape}")


class GatedPool2d(Module):
    """Gated max-average pooling (``gated_pool2d``) with a learned kernel-sized gate weight,
    shared by all channels. It starts at zero: every gate is sigmoid(0) = 0.5 (an even mix, as
    MixedPool2d's α) and the weight's gradient, which depends on the input, moves it from
    there."""

    def __init__(self, kernel_size, stride=None, dtype=np.float32):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride
        self.gate_weight = Parameter(np.zeros(pair(kernel_size, "kernel_size", "GatedPool2d"),
                                              dtype=dtype))

    def forward(self, x):
        return P.gated_pool2d(x, self.gate_weight, self.kernel_size, self.stride)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class TreePool2d(Module):
    """Tree pooling (``tree_pool2d``) with learned leaf filters ``leaf_weight`` (L, kH, kW) and
    gate masks ``gate_weight`` (L − 1, kH, kW), shared by all channels; L = 2 for ``depth=2``
    (the paper's level-2 tree, the default), 4 for ``depth=3``.

    The paper prescribes no initialisation. Each leaf starts as the average filter 1/(kH·kW)
    plus Gaussian noise of standard deviation 0.1/(kH·kW), so the leaves differ (identical
    leaves would give the gates no gradient); the gates start as Gaussian noise of standard
    deviation 0.01, so every gate is close to sigmoid(0) = 0.5, an even mix, as GatedPool2d.
    ``rng``: None (minigrad's global generator), an int seed or a numpy Generator.

    Example::

        >>> pool = nn.TreePool2d(2)                     # depth 2: 2 leaves, 1 gate, 2×2/2
        >>> pool(minigrad.tensor(np.random.randn(8, 16, 32, 32).astype(np.float32))).shape
        (8, 16, 16, 16)
        >>> [p.shape for p in pool.parameters()]
        [(2, 2, 2), (1, 2, 2)]
    """

    def __init__(self, kernel_size, stride=None, depth=2, dtype=np.float32, rng=None):
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride
        if (not isinstance(depth, numbers.Integral) or isinstance(depth, bool)
                or depth not in P.TREE_LEAVES):
            raise ValueError(f"TreePool2d: depth must be 2 or 3, got {depth!r}")
        self.depth = int(depth)
        kernel = pair(kernel_size, "kernel_size", "TreePool2d")
        if min(kernel) < 1:
            raise ValueError(f"TreePool2d: kernel_size must be positive, got {kernel_size!r}")
        leaves, area = P.TREE_LEAVES[self.depth], kernel[0] * kernel[1]
        generator = resolve_rng(rng, "TreePool2d")
        self.leaf_weight = Parameter((1.0 / area + generator.normal(
            0.0, 0.1 / area, (leaves,) + kernel)).astype(dtype))
        self.gate_weight = Parameter(generator.normal(
            0.0, 0.01, (leaves - 1,) + kernel).astype(dtype))

    def forward(self, x):
        return P.tree_pool2d(x, self.leaf_weight, self.gate_weight, self.kernel_size, self.stride)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, depth={self.depth}"
