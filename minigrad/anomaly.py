"""Anomaly detection: ``with minigrad.detect_anomaly():`` turns the first NaN or Inf produced by an
op, in the forward or the backward pass, into an error naming the op and the line of user code
that created it.

Outside the context nothing is checked and nothing is recorded, so it costs nothing.
"""
import contextlib
import os
import traceback

import numpy as np

from ._autograd_state import state as _state

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class AnomalyError(RuntimeError):
    """A NaN or Inf appeared in a forward or backward pass under detect_anomaly()."""


def _user_frame():
    """The innermost stack frame outside minigrad: where the user created the op."""
    for frame in reversed(traceback.extract_stack()):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR + os.sep):
            return f"{frame.filename}:{frame.lineno} in {frame.name}: {frame.line}"
    return "<unknown>"


def _bad(array):
    return array is not None and array.dtype.kind == "f" and not np.isfinite(array).all()


def _check_forward(fn, outputs):
    fn._anomaly_origin = _user_frame()
    for i, y in enumerate(outputs):
        if _bad(y.data):
            raise AnomalyError(f"{type(fn).__name__} produced NaN or Inf in its forward output "
                               f"{i}; the op was created at {fn._anomaly_origin}")


def _check_backward(fn, grad_inputs):
    for i, g in enumerate(grad_inputs):
        if g is not None and _bad(np.asarray(g)):
            origin = getattr(fn, "_anomaly_origin", "<created outside detect_anomaly()>")
            raise AnomalyError(f"{type(fn).__name__}.backward produced NaN or Inf in the "
                               f"gradient of its input {i}; the op was created at {origin}")


@contextlib.contextmanager
def detect_anomaly():
    previous = (_state.anomaly_forward,
                _state.anomaly_backward)
    _state.anomaly_forward, _state.anomaly_backward = _check_forward, _check_backward
    try:
        yield
    finally:
        _state.anomaly_forward, _state.anomaly_backward = previous
