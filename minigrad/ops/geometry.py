"""Sliding-window geometry shared by convolution and every pooling kind.

Written once so conv and pooling agree with each other and with PyTorch:
argument normalisation (an int or a pair), validation with messages naming the argument, and
output sizes.
"""
import numbers


def pair(value, name, op_name):
    """(h, w) from an int or a pair of ints; TypeError/ValueError naming ``name`` otherwise."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value):
        return int(value[0]), int(value[1])
    raise TypeError(f"{op_name}: {name} must be an int or a pair of ints, got {value!r}")


def check_min(values, minimum, name, op_name):
    if any(v < minimum for v in values):
        relation = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{op_name}: {name} must be {relation}, got {values}")


def window_output_size(size, kernel, stride, padding, dilation=1, ceil_mode=False):
    """Number of window positions along one axis, PyTorch's rule:

        out = floor((size + 2·padding − dilation·(kernel − 1) − 1) / stride) + 1

    (ceil instead of floor with ``ceil_mode``, dropping a last window that would start in the
    right padding, i.e. beyond ``size + padding``).
    """
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if span < 0:
        return 0
    if ceil_mode:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= size + padding:
            out -= 1
    else:
        out = span // stride + 1
    return out


def check_input_4d(x, op_name, name="input"):
    if x.ndim != 4:
        raise ValueError(f"{op_name}: {name} must be 4-D (N, C, H, W), got shape {x.shape}")
    if x.dtype.kind != "f" or x.dtype.itemsize not in (4, 8):
        raise TypeError(f"{op_name}: {name} must be float32 or float64, got dtype {x.dtype}")
