"""The functional API (``import minigrad.nn.functional as F``), PyTorch's names and arguments.

Each function validates its arguments and applies the op class from ``minigrad.ops``.
"""
from ..ops.activation import relu  # noqa: F401
from ..ops.conv import conv2d  # noqa: F401
from ..ops.layers import dropout, linear  # noqa: F401
from ..ops.normalization import batch_norm  # noqa: F401
