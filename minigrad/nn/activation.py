"""Activation modules: thin wrappers over ``minigrad.ops.activation`` (PyTorch's names)."""
import numbers

import numpy as np

from .._validate import alias
from ..ops import activation as A
from .module import Module, Parameter


class ReLU(Module):
    def forward(self, x):
        return A.relu(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return A.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


def _slope_parameter(num_parameters, init, module_name):
    """A learnable float32 vector of ``num_parameters`` copies of ``init`` (one per channel)."""
    if not isinstance(num_parameters, numbers.Integral) or isinstance(num_parameters, bool) \
            or num_parameters < 1:
        raise ValueError(f"{module_name}: num_parameters must be a positive int, got "
                         f"{num_parameters!r}")
    if not isinstance(init, numbers.Real) or isinstance(init, bool):
        raise TypeError(f"{module_name}: init must be a real number, got {init!r}")
    return Parameter(np.full(int(num_parameters), init, dtype=np.float32))


class PReLU(Module):
    """Leaky relu whose slope ``weight`` is learned: one value shared by every channel
    (``num_parameters=1``) or one per channel (``num_parameters=C``), initialised to ``init``."""

    def __init__(self, num_parameters=1, init=0.25):
        super().__init__()
        self.weight = _slope_parameter(num_parameters, init, "PReLU")

    def forward(self, x):
        return A.prelu(x, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.weight.size}"


class ELU(Module):
    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        return A.elu(x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class SELU(Module):
    def forward(self, x):
        return A.selu(x)


class GELU(Module):
    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        return A.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    def forward(self, x):
        return A.silu(x)


class Swish(Module):
    """x·sigmoid(β·x) with learned ``beta`` (one shared value or one per channel), initialised
    to ``init`` (1.0 starts as silu)."""

    def __init__(self, num_parameters=1, init=1.0):
        super().__init__()
        self.beta = _slope_parameter(num_parameters, init, "Swish")

    def forward(self, x):
        return A.swish(x, self.beta)

    def extra_repr(self):
        return f"num_parameters={self.beta.size}"


class Sigmoid(Module):
    def forward(self, x):
        return A.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return A.tanh(x)


class _AlongAxis(Module):
    """Holds the axis to normalise over: ``axis``, or PyTorch's name ``dim``."""

    def __init__(self, axis=None, *, dim=None):
        super().__init__()
        self.axis = alias(axis, dim, "axis", "dim", type(self).__name__)
        if self.axis is None:
            raise TypeError(f"{type(self).__name__}: the axis to normalise over is required "
                            "(axis= or dim=)")

    def extra_repr(self):
        return f"axis={self.axis}"


class Softmax(_AlongAxis):
    def forward(self, x):
        return A.softmax(x, self.axis)


class LogSoftmax(_AlongAxis):
    def forward(self, x):
        return A.log_softmax(x, self.axis)


class Maxout(Module):
    """Max over groups of ``pieces`` consecutive channels along ``axis`` (default 1)."""

    def __init__(self, pieces, axis=1):
        super().__init__()
        self.pieces, self.axis = pieces, axis

    def forward(self, x):
        return A.maxout(x, self.pieces, self.axis)

    def extra_repr(self):
        return f"pieces={self.pieces}, axis={self.axis}"
