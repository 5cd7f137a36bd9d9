"""The Inception block of GoogLeNet (Szegedy et al., 2014, "Going deeper with convolutions",
Table 1)."""
from .._validate import positive_int
from ..ops.activation import relu
from ..ops.conv import conv2d
from ..ops.pooling import max_pool2d
from ..ops.shape import cat, split
from .conv import Conv2d
from .layers import BatchNorm2d
from .module import Module, Sequential

_NORMS = (None, "batch")


class ConvNormReLU(Module):
    """conv(kernel_size, padding) → BatchNorm2d (when ``norm='batch'``) → ReLU. With batch norm
    the convolution has no bias (BatchNorm's β takes its place)."""

    def __init__(self, in_channels, out_channels, kernel_size, padding=0, norm=None):
        super().__init__()
        self.conv = Conv2d(in_channels, out_channels, kernel_size, padding=padding,
                           bias=norm is None)
        self.bn = BatchNorm2d(out_channels) if norm == "batch" else None

    def forward(self, x):
        return self.norm_relu(self.conv(x))

    def norm_relu(self, x):
        """The layers after the convolution."""
        if self.bn is not None:
            x = self.bn(x)
        return relu(x)


class Inception(Module):
    """Four parallel branches over an input (N, in_channels, H, W), concatenated on channels:

    1. 1×1 conv → ch1x1 channels;
    2. 1×1 conv → ch3x3red, then 3×3 conv (padding 1) → ch3x3;
    3. 1×1 conv → ch5x5red, then 5×5 conv (padding 2) → ch5x5;
    4. 3×3 max pool (stride 1, padding 1), then 1×1 conv → pool_proj;

    every conv followed by ReLU (``norm='batch'``: BatchNorm2d, then ReLU). Output
    (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W): the spatial size is unchanged. GoogLeNet's
    inception (3a), for example, is ``Inception(192, 64, 96, 128, 16, 32, 32)``.

    The three 1×1 convolutions of the input (branch 1 and the reductions of branches 2 and 3)
    run as one, their weights stacked, and its output is split among the branches: the same
    sums, but one larger product per image, which BLAS runs faster than three small ones, and
    in backward one product for the input's gradient instead of three to add up. The
    parameters stay each branch's own; those three ``Conv2d`` modules are not called, so
    their forward hooks do not run (``minigrad.summary`` counts the joined convolution in the
    block's row).
    """

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj,
                 norm=None):
        super().__init__()
        sizes = dict(in_channels=in_channels, ch1x1=ch1x1, ch3x3red=ch3x3red, ch3x3=ch3x3,
                     ch5x5red=ch5x5red, ch5x5=ch5x5, pool_proj=pool_proj)
        for name, value in sizes.items():
            positive_int(value, name, "Inception")
        if norm not in _NORMS:
            raise ValueError(f"Inception: norm must be None or 'batch', got {norm!r}")
        self.in_channels, self.norm = in_channels, norm
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj
        self.branch1 = ConvNormReLU(in_channels, ch1x1, 1, norm=norm)
        self.branch2 = Sequential(ConvNormReLU(in_channels, ch3x3red, 1, norm=norm),
                                  ConvNormReLU(ch3x3red, ch3x3, 3, padding=1, norm=norm))
        self.branch3 = Sequential(ConvNormReLU(in_channels, ch5x5red, 1, norm=norm),
                                  ConvNormReLU(ch5x5red, ch5x5, 5, padding=2, norm=norm))
        self.branch4 = ConvNormReLU(in_channels, pool_proj, 1, norm=norm)

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"Inception: expected input (N, {self.in_channels}, H, W), got "
                             f"shape {x.shape}")
        pooled = max_pool2d(x, kernel_size=3, stride=1, padding=1)
        first = [self.branch1, self.branch2[0], self.branch3[0]]
        convs = [m.conv for m in first]
        reduced = conv2d(x, cat([c.weight for c in convs]),
                         None if self.norm else cat([c.bias for c in convs]))
        y1, y2, y3 = (m.norm_relu(part) for m, part in
                      zip(first, split(reduced, [c.out_channels for c in convs], axis=1)))
        return cat([y1, self.branch2[1](y2), self.branch3[1](y3), self.branch4(pooled)],
                   axis=1)

    def extra_repr(self):
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"norm={self.norm!r}")
