"""The op base class: one ``Function`` subclass per differentiable operation.

A subclass implements

* ``forward(self, *arrays)``: numpy arrays in, a numpy array (or a tuple of them) out; it keeps
  what the backward pass needs with ``self.save_for_backward(...)`` or plain attributes;
* ``backward(self, *grad_outputs)``: one gradient array per output in, one gradient per input
  out (``None`` for an input that needs none; ``self.needs_input_grad[i]`` says which do).

Hyper-parameters (stride, axis, ...) go to ``__init__``. Calling the instance on tensors runs the
forward pass and, when gradients are enabled and some input requires them, records the node in
the graph:

    class Exp(Function):
        def forward(self, x):
            y = np.exp(x)
            self.save_for_backward(y)
            return y

        def backward(self, gy):
            (y,) = self.saved_tensors
            return gy * y

    y = Exp()(x)
"""
import contextlib
import sys

import numpy as np

from ._autograd_state import state as _state
from .tensor import Tensor, as_tensor


def is_grad_enabled():
    return _state.grad_enabled


@contextlib.contextmanager
def _grad_mode(enabled):
    previous = is_grad_enabled()
    _state.grad_enabled = enabled
    try:
        yield
    finally:
        _state.grad_enabled = previous


def no_grad():
    """Context manager: ops inside build no graph and save nothing for backward."""
    return _grad_mode(False)


def enable_grad():
    return _grad_mode(True)


class Function:
    """Base class of every op (see the module docstring)."""

    #: filled in by ``__call__``: which inputs need a gradient
    needs_input_grad = ()

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, *grad_outputs):
        raise NotImplementedError

    # -- saved buffers ---------------------------------------------------------------------------
    def save_for_backward(self, *arrays):
        self._saved = arrays

    @property
    def saved_tensors(self):
        saved = getattr(self, "_saved", None)
        if saved is None:
            raise RuntimeError(
                f"{type(self).__name__}: its saved buffers were already freed by a previous "
                "backward(); call backward(retain_graph=True) the first time to backpropagate "
                "through the graph twice")
        return saved

    def release(self):
        """Drop the buffers kept for backward (called after backward unless retain_graph)."""
        self._saved = None
        self._released = True

    # -- graph recording -------------------------------------------------------------------------
    def __call__(self, *inputs):
        # Plain loops and one pass: at batch 1 this call's own cost is a visible share of a
        # small op's time.
        inputs = tuple([x if isinstance(x, Tensor) else as_tensor(x) for x in inputs])
        state = _state
        record = False
        arrays = []
        for x in inputs:
            record = record or x._requires_grad
            # ``Tensor.data`` is C-contiguous unless a user assigned a view to it; kernels
            # need it.
            a = x.data
            arrays.append(a if a.flags.c_contiguous else
                          np.ascontiguousarray(a).reshape(a.shape))
        record = record and state.grad_enabled
        # Ops may test this to skip saving; without a graph nothing will call backward.
        self.needs_input_grad = (tuple([x._requires_grad for x in inputs]) if record
                                 else (False,) * len(inputs))
        outputs = self.forward(*arrays)
        single = not isinstance(outputs, tuple)
        creator = self if record else None
        if single:
            results = (Tensor._from_op(outputs if type(outputs) is np.ndarray
                                       else np.asarray(outputs), creator, 0),)
        else:
            results = tuple([Tensor._from_op(np.asarray(y), creator, i)
                             for i, y in enumerate(outputs)])
        if record:
            self.inputs = inputs
            self.output_meta = tuple([(y.shape, y.dtype) for y in results])
            self._released = False
        else:
            self._saved = None
        if state.anomaly_forward is not None:
            state.anomaly_forward(self, results)
        if state.op_recorder is not None:
            # the frame that called the op: the functional wrapper, whose arguments say how
            # it was set up
            state.op_recorder(self, inputs, results, sys._getframe(1))
        return results[0] if single else results

    def __repr__(self):
        return f"<{type(self).__name__}>"
