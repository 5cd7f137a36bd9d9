"""Layers (``minigrad.nn``) and the functional API (``minigrad.nn.functional``)."""
from . import functional  # noqa: F401
from .activation import (ELU, GELU, SELU, LeakyReLU, LogSoftmax, Maxout, PReLU,  # noqa: F401
                         ReLU, Sigmoid, SiLU, Softmax, Swish, Tanh)
from .conv import Conv2d  # noqa: F401
from . import init  # noqa: F401
from .layers import BatchNorm1d, BatchNorm2d, Dropout, Flatten, Identity, Linear  # noqa: F401
from .inception import Inception  # noqa: F401
from .loss import CrossEntropyLoss, MSELoss, NLLLoss  # noqa: F401
from .module import Module, Parameter, Sequential  # noqa: F401
from .sync_batchnorm import SyncBatchNorm  # noqa: F401
from .pooling import (AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d,  # noqa: F401
                      GlobalAvgPool2d, GlobalMaxPool2d, MaxPool2d)
from .pooling_extra import (FractionalMaxPool2d, GatedPool2d, LPPool2d,  # noqa: F401
                           MixedPool2d, SpatialPyramidPool2d, StochasticPool2d,
                           TreePool2d)
