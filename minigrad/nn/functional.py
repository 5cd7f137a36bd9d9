"""The functional API (``import minigrad.nn.functional as F``), PyTorch's names and arguments.

Each function validates its arguments and applies the op class from ``minigrad.ops``.
"""
from ..ops.activation import (elu, gelu, leaky_relu, log_softmax, maxout,  # noqa: F401
                              prelu, relu, selu, sigmoid, silu, softmax, swish, tanh)
from ..ops.conv import conv2d  # noqa: F401
from ..ops.layers import dropout, linear  # noqa: F401
from ..ops.loss import cross_entropy, mse_loss, nll_loss  # noqa: F401
from ..ops.normalization import batch_norm  # noqa: F401
from ..ops.pooling import (adaptive_avg_pool2d, adaptive_max_pool2d,  # noqa: F401
                           avg_pool2d, global_avg_pool2d, global_max_pool2d, max_pool2d)
from ..ops.pooling_extra import (fractional_max_pool2d, gated_pool2d,  # noqa: F401
                                 lp_pool2d, mixed_pool2d, spatial_pyramid_pool2d,
                                 stochastic_pool2d, tree_pool2d)
