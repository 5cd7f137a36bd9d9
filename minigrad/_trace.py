"""One forward pass of a model, watched: every op it runs and every module call it makes.

The tools that describe a model (``minigrad.summary``, ``minigrad.onnx.export``) learn what it
computes by running it, not by reading its code, so any ``Module`` whose forward calls minigrad
ops is covered. Two kinds of hooks see the pass:

* the op recorder of ``Function.__call__`` (``_state.op_recorder``, the place where autograd
  records its graph) sees each op with its input and output tensors, whether or not a graph is
  built;
* a forward pre-hook and a forward hook on every sub-module keep the stack of running modules,
  so each op knows the modules it ran in (for error messages, node names and per-layer counts).

Example::

    record = trace(model, minigrad.tensor(np.zeros((1, 3, 32, 32), np.float32)))
    for op in record.ops:
        print(record.module_name(op), type(op.fn).__name__, [y.shape for y in op.outputs])
"""
import contextlib

from ._autograd_state import state as _state
from .function import no_grad


class OpCall:
    """One op of the pass: ``fn`` (the ``Function`` instance), its ``inputs`` and ``outputs``
    (tuples of Tensors), ``calls`` (indices into ``Trace.modules`` of the module calls running,
    outermost first) and ``arguments`` (the calling frame's local variables for the op classes
    asked for, else None)."""

    __slots__ = ("fn", "inputs", "outputs", "calls", "arguments")

    def __init__(self, fn, inputs, outputs, calls, arguments):
        self.fn, self.inputs, self.outputs = fn, inputs, outputs
        self.calls, self.arguments = calls, arguments


class ModuleCall:
    """One call of a module: its qualified ``name`` ("" for the model itself), the ``module``,
    its ``depth`` (0 for the model), its ``parent`` (index of the enclosing call, None for the
    model) and, once it returned, its ``output``."""

    __slots__ = ("name", "module", "depth", "parent", "output")

    def __init__(self, name, module, depth, parent):
        self.name, self.module, self.depth, self.parent = name, module, depth, parent
        self.output = None


class Trace:
    """What ``trace`` saw: ``ops`` (OpCall, in execution order), ``modules`` (ModuleCall, in the
    order the calls started), ``input`` and ``output`` (the model's)."""

    def __init__(self):
        self.ops, self.modules = [], []
        self.input = self.output = None

    def module_name(self, op):
        """Qualified name of the innermost module ``op`` ran in ("" for the model itself)."""
        return self.modules[op.calls[-1]].name if op.calls else ""

    def module_type(self, op):
        return type(self.modules[op.calls[-1]].module).__name__ if op.calls else ""


@contextlib.contextmanager
def _recording(recorder):
    """Install ``recorder`` as this thread's op recorder for the duration of the block (the
    previous one, if any, comes back afterwards)."""
    previous = _state.op_recorder
    _state.op_recorder = recorder
    try:
        yield
    finally:
        _state.op_recorder = previous


@contextlib.contextmanager
def eval_mode(model):
    """``model`` in evaluation mode for the block; each module's own training flag is restored
    afterwards (a model may have been partly in eval mode, e.g. frozen BatchNorm layers)."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in flags:
            object.__setattr__(m, "training", training)


def trace(model, input, arguments_of=()):
    """Run ``model(input)`` once, without building a graph, and return the ``Trace`` of it.

    Args:
        model: a ``minigrad.nn.Module`` (left in the mode it is in: callers choose it).
        input: a Tensor.
        arguments_of: Function subclasses whose calling frame's local variables are kept in
            ``OpCall.arguments`` (the exporter reads pooling arguments the op objects do not
            keep, e.g. ``ceil_mode``); a snapshot taken when the op runs.

    Returns:
        a ``Trace``.
    """
    record = Trace()
    record.input = input
    names = {id(m): name for name, m in model.named_modules()}
    stack = []

    def enter(module, args):
        parent = stack[-1] if stack else None
        record.modules.append(ModuleCall(names.get(id(module), "?"), module, len(stack), parent))
        stack.append(len(record.modules) - 1)

    def leave(module, args, output):
        record.modules[stack.pop()].output = output

    def on_op(fn, inputs, outputs, frame):
        arguments = dict(frame.f_locals) if isinstance(fn, arguments_of) else None
        record.ops.append(OpCall(fn, inputs, outputs, tuple(stack), arguments))

    handles = []
    try:
        for m in model.modules():
            handles.append(m.register_forward_pre_hook(enter))
            handles.append(m.register_forward_hook(leave))
        with no_grad(), _recording(on_op):
            record.output = model(input)
    finally:
        for handle in handles:
            handle.remove()
    return record
