"""Convolution layers (PyTorch's names and defaults)."""
import math

import numpy as np

from .._validate import check_min, pair, positive_int
from ..ops.conv import conv2d
from ..ops.geometry import resolve_padding
from . import init
from .module import Module, Parameter


class Conv2d(Module):
    """2-D convolution layer: (N, in_channels, H, W) → (N, out_channels, Ho, Wo), see
    ``minigrad.nn.functional.conv2d`` for the arguments and the output size.

    ``weight`` (out_channels, in_channels/groups, kH, kW) and ``bias`` (out_channels,) are
    initialised as PyTorch: kaiming_uniform_ with a = √5, i.e. U(−1/√fan_in, 1/√fan_in) with
    fan_in = in_channels/groups · kH · kW, for both, from the global generator
    (``minigrad.manual_seed``)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, dtype=np.float32):
        super().__init__()
        self.in_channels = positive_int(in_channels, "in_channels", "Conv2d")
        self.out_channels = positive_int(out_channels, "out_channels", "Conv2d")
        self.groups = positive_int(groups, "groups", "Conv2d")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"Conv2d: groups={self.groups} must divide in_channels="
                             f"{self.in_channels} and out_channels={self.out_channels}")
        self.kernel_size = pair(kernel_size, "kernel_size", "Conv2d")
        self.stride = pair(stride, "stride", "Conv2d")
        self.dilation = pair(dilation, "dilation", "Conv2d")
        for name in ("kernel_size", "stride", "dilation"):
            check_min(getattr(self, name), 1, name, "Conv2d")
        resolve_padding(padding, self.kernel_size, self.stride, self.dilation, "Conv2d")
        self.padding = padding if isinstance(padding, str) else pair(padding, "padding", "Conv2d")
        self.weight = Parameter(np.empty(
            (self.out_channels, self.in_channels // self.groups) + self.kernel_size, dtype=dtype))
        self.bias = Parameter(np.empty(self.out_channels, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * self.kernel_size[0] * self.kernel_size[1]
            bound = 1.0 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                      self.groups)

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding not in ((0, 0), "valid"):
            text += f", padding={self.padding!r}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + ("" if self.bias is not None else ", bias=False")
