"""ONNX export: ``minigrad.onnx.export(model, example_input, path)`` writes a trained model as an
ONNX file, which ONNX Runtime, OpenCV, TensorRT and the other runtimes read.

How it works: the model runs once in eval mode on the example input, and the op recorder of
``Function.__call__`` (where autograd records its graph) sees every op it runs, with its inputs
and outputs (``minigrad._trace``). So any ``Module`` whose forward calls minigrad ops exports,
not only ``Sequential``. Each op becomes the ONNX nodes that compute the same thing
(``minigrad.onnx._converters``); parameters, buffers and anything computed from them alone
become initializers. Sizes that may vary (the batch; the height and width with
``dynamic_size``) stay symbolic through reshapes (``minigrad.onnx._graph``).

Needs the ``onnx`` package (``pip install 'minigrad[onnx]'``, which also installs
onnxruntime to run the file); minigrad itself does not import it.
"""
import os

import numpy as np

from .._trace import eval_mode, trace
from ..nn.module import Module
from ..tensor import Tensor
from ._converters import ARGUMENTS_OF, NO_ONNX_FORM, converter_for, output_size_matches
from ._graph import ExportError, Graph, Value, is_static, static

__all__ = ["export", "ExportError", "MIN_OPSET"]

#: The oldest opset written: Softmax over one axis, Split/Squeeze/Unsqueeze with their sizes
#: and axes as inputs, and Clip's bounds as inputs date from opset 13.
MIN_OPSET = 13

_INSTALL = "pip install 'minigrad[onnx]' (or pip install onnx onnxruntime)"


class _Op:
    """What a converter sees of one op: ``fn``, the input ``Value``s, the traced ``outputs``,
    the calling function's ``arguments`` (for ``ARGUMENTS_OF`` ops), ``where`` (for error
    messages) and ``names`` (id of a buffer array → its name in the model)."""

    def __init__(self, call, inputs, where, names):
        self.fn, self.inputs, self.outputs = call.fn, inputs, call.outputs
        self.arguments, self.where, self.names = call.arguments, where, names

    def out_shape(self, k=0):
        return tuple(self.outputs[k].shape)


def _where(record, call):
    """ "MaxPool2d (op) in module 'features.3' (MaxPool2d)" for error messages."""
    op_name = NO_ONNX_FORM.get(type(call.fn), (type(call.fn).__name__,))[0]
    name, kind = record.module_name(call), record.module_type(call)
    module = f"module '{name}' ({kind})" if name else f"the model's own forward ({kind})"
    return f"{op_name} in {module}"


def _input_dims(x, dynamic_batch, dynamic_size, g):
    """Dimensions of the graph input: the batch (axis 0) and, with ``dynamic_size``, the axes
    after the channels symbolic, the others fixed."""
    names = {0: "batch", 2: "height", 3: "width"} if x.ndim == 4 else {0: "batch"}
    dims = []
    for axis, n in enumerate(x.shape):
        symbolic = (axis == 0 and dynamic_batch) or (axis >= 2 and dynamic_size)
        dims.append((g.sym(names.get(axis, f"dim{axis}"), n, ("input", axis)),) if symbolic
                    else static(n))
    return dims


def _value_info(helper, name, dims, dtype):
    shape = []
    for d in dims:
        if is_static(d):
            shape.append(int(np.prod(d)) if d else 1)
        else:
            shape.append(d[0].name if len(d) == 1 and d[0].source[0] == "input" else None)
    return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(dtype), shape)


def export(model, example_input, path, opset=17, dynamic_batch=True, dynamic_size=False):
    """Write ``model`` as an ONNX model with one input ``input`` and one output ``output``.

    The model runs once in eval mode on ``example_input`` (its modules' training flags are
    restored afterwards); every op it runs is written as the ONNX operators that compute the
    same: convolutions (any stride, padding incl. 'same', dilation, groups), batch norm, linear
    layers and matmul, arithmetic, reshapes, transposes, indexing, cat, split, every activation,
    max/average/Lp/global/adaptive pooling and the compositions built on them (mixed, gated and
    spatial pyramid pooling, stochastic pooling in eval mode), tree pooling (as depthwise
    convolutions and sigmoid gates). Dropout is the identity in eval mode and leaves no trace. An op with no deterministic ONNX form (fractional max pooling,
    stochastic pooling or dropout in training mode, an op minigrad's exporter does not know)
    raises ``ExportError`` naming it and the module it runs in.

    Args:
        model: a ``minigrad.nn.Module`` taking one tensor and returning one tensor.
        example_input: a numpy array or Tensor with the input's shape and dtype (float32 for
            ONNX Runtime), e.g. one batch of test images.
        path: the .onnx file to write.
        opset: the ONNX opset version (13 or later; 17 by default, which every current
            runtime reads).
        dynamic_batch: the batch size (axis 0) is symbolic ("batch"): the model accepts any.
        dynamic_size: the sizes after the channel axis (height and width) are symbolic too, for
            a fully convolutional network (with global pooling or spatial pyramid pooling
            before any linear layer) that takes any input size; the model's description says
            so. Ops that fix a size (a linear layer after flattening the spatial map) refuse it.

    Returns:
        ``path``.

    Raises:
        ExportError (a ValueError): an op cannot be written (the message names it).
        ImportError: the onnx package is not installed.

    Example::

        model = fcn_mnist.build_model()                  # examples/fcn_mnist.py
        model.load_state_dict(minigrad.load("runs/fcn_mnist/fcn_mnist.npz")["model"])
        minigrad.onnx.export(model, np.zeros((1, 1, 28, 28), np.float32), "fcn.onnx",
                             dynamic_size=True)

        import onnxruntime
        session = onnxruntime.InferenceSession("fcn.onnx")
        logits = session.run(None, {"input": images})[0]      # images (N, 1, H, W) float32
    """
    try:
        import onnx
    except ImportError as e:
        raise ImportError(f"minigrad.onnx.export needs the onnx package: {_INSTALL}") from e
    if not isinstance(model, Module):
        raise TypeError(f"export: model must be a minigrad.nn.Module, got "
                        f"{type(model).__name__}")
    x = example_input if isinstance(example_input, Tensor) else Tensor(example_input)
    if x.dtype.kind != "f":
        raise TypeError(f"export: example_input must be a floating-point array, got dtype "
                        f"{x.dtype}")
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not (
            MIN_OPSET <= opset <= onnx.defs.onnx_opset_version()):
        raise ValueError(f"export: opset must be an int from {MIN_OPSET} to "
                         f"{onnx.defs.onnx_opset_version()} (the installed onnx's newest), "
                         f"got {opset!r}")
    for name, value in (("dynamic_batch", dynamic_batch), ("dynamic_size", dynamic_size)):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"export: {name} must be a bool, got {value!r}")
    if x.ndim < 1 or (dynamic_size and x.ndim < 3):
        raise ValueError(f"export: example_input of shape {x.shape} has no "
                         f"{'spatial axes for dynamic_size' if x.ndim else 'batch axis'}")

    with eval_mode(model):
        record = trace(model, x, arguments_of=ARGUMENTS_OF)
    if not isinstance(record.output, Tensor):
        raise ExportError(f"export: the model returned a {type(record.output).__name__}; "
                          "exported models return one tensor")
    g = Graph(onnx, int(opset))
    input_dims = _input_dims(x, dynamic_batch, dynamic_size, g)
    output = _convert_ops(g, record, model, Value("input", input_dims, x.dtype))
    g.rename(output.name, "output")
    g.prune("output")
    graph = onnx.helper.make_graph(
        g.nodes, type(model).__name__, [_value_info(onnx.helper, "input", input_dims, x.dtype)],
        [_value_info(onnx.helper, "output", output.dims, output.dtype)],
        initializer=g.initializers)
    proto = onnx.helper.make_model(
        graph, producer_name="minigrad", opset_imports=[onnx.helper.make_opsetid("", opset)],
        ir_version=onnx.helper.find_min_ir_version_for([onnx.helper.make_opsetid("", opset)]))
    proto.doc_string = _description(model, x, dynamic_batch, dynamic_size)
    onnx.helper.set_model_props(proto, {"dynamic_batch": str(bool(dynamic_batch)),
                                        "dynamic_size": str(bool(dynamic_size))})
    onnx.checker.check_model(proto)
    onnx.save(proto, os.fspath(path))
    return path


def _convert_ops(g, record, model, input_value):
    """Add the nodes of every op of ``record`` (a ``Trace``) to ``g``; returns the Value of the
    model's output. Ops on constants alone (parameters, buffers) are computed now, not
    exported: their results are constants."""
    labels = {id(p): name for name, p in model.named_parameters()}
    names = {id(b): name for name, b in model.named_buffers()}
    values = {id(record.input): input_value}
    for call in record.ops:
        inputs = [values.get(id(t)) or Value(None, [static(n) for n in t.shape], t.dtype,
                                             t.data, labels.get(id(t)))
                  for t in call.inputs]
        if all(v.const for v in inputs):
            for t in call.outputs:
                values[id(t)] = Value(None, [static(n) for n in t.shape], t.dtype, t.data)
            continue
        where = _where(record, call)
        if type(call.fn) in NO_ONNX_FORM:
            raise ExportError(f"export: {where} has no ONNX form: "
                              f"{NO_ONNX_FORM[type(call.fn)][1]}")
        convert = converter_for(call.fn)
        if convert is None:
            raise ExportError(f"export: {where} has no ONNX form: minigrad's exporter does not "
                              f"know the op {type(call.fn).__module__}.{type(call.fn).__name__}")
        g.scope = record.module_name(call)
        results = convert(g, _Op(call, inputs, where, names))
        for t, (name, dims) in zip(call.outputs, results):
            if not output_size_matches(dims, t.shape):
                raise ExportError(f"export: internal error converting {where}: shape "
                                  f"{tuple(t.shape)} written as {dims}")
            values[id(t)] = Value(name, dims, t.dtype)
    output = values.get(id(record.output))
    if output is None or output.const:
        raise ExportError("export: the model's output does not depend on its input through "
                          "minigrad ops (did the forward compute with numpy on .data?)")
    if output.name == "input":                   # a model that returns its input
        output = Value(g.node("Identity", ["input"]), output.dims, output.dtype)
    return output


def _description(model, x, dynamic_batch, dynamic_size):
    sizes = []
    if dynamic_batch:
        sizes.append("any batch size")
    if dynamic_size:
        sizes.append("any height and width (a fully convolutional network: every size for "
                     "which its windows fit)")
    accepts = ("It accepts " + " and ".join(sizes) + ".") if sizes else \
        f"It accepts inputs of shape {tuple(x.shape)} only."
    return (f"{type(model).__name__} exported by minigrad from a pass on an input of shape "
            f"{tuple(x.shape)} ({x.dtype}). {accepts}")
