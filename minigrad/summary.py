"""Model summary: one row per module call (output shape, parameters, multiply-adds) and the
totals, as Keras' ``model.summary()`` and torchinfo print them.

The numbers come from running the model once on a zero input, not from reading its code: a
forward hook on every module records its output, and the op recorder of ``Function.__call__``
attributes each op's multiply-adds to the modules it ran in (``minigrad._trace``). So a
user-written ``Module`` is summarised as well as ``Sequential``, and functional calls inside a
forward (``F.conv2d``, ``x @ w``) are counted.
"""
import math
from collections import namedtuple

import numpy as np

from ._trace import eval_mode, trace
from .ops.arithmetic import MatMul
from .ops.conv import Conv2d
from .ops.layers import Linear
from .ops.normalization import BatchNorm
from .ops.pooling_extra import TreePool2d
from .tensor import Tensor

#: One module call of the summary. ``name`` is the qualified name (as in
#: ``model.named_modules()``), ``depth`` 1 for the model's children; ``params`` and
#: ``trainable_params`` count the module's parameters with those of its sub-modules (each shared
#: parameter once), ``macs`` the multiply-adds per sample of every op run inside the call.
Row = namedtuple("Row", ["name", "type", "depth", "output_shape", "params", "trainable_params",
                         "macs"])


def op_macs(fn, inputs, outputs):
    """Multiply-adds of one op call (whole batch): convolution out·(C/groups)·kh·kw, linear
    out·in_features, matmul out·K, batch norm one per element (the scale-and-shift), tree
    pooling out·(filters)·kh·kw (each leaf and gate is a learned filter); other ops
    (activations, pooling, additions) count 0, as in torchinfo and fvcore."""
    out = outputs[0].size
    if isinstance(fn, Conv2d):
        weight = inputs[1]
        return out * (weight.size // weight.shape[0])
    if isinstance(fn, Linear):
        return out * inputs[1].shape[1]
    if isinstance(fn, MatMul):
        return out * inputs[0].shape[-1]
    if isinstance(fn, BatchNorm):
        return out
    if isinstance(fn, TreePool2d):
        leaves, gates = inputs[1], inputs[2]
        return out * (leaves.size + gates.size)
    return 0


def _shape(output):
    if isinstance(output, Tensor):
        return tuple(output.shape)
    if isinstance(output, (tuple, list)):
        return tuple(_shape(y) for y in output)
    return None


def _count(module):
    params = list(module.parameters())
    return (sum(p.size for p in params), sum(p.size for p in params if p.requires_grad),
            sum(p.data.nbytes for p in params))


class Summary:
    """What ``summary`` returns; ``str()`` is the table.

    Attributes:
        rows: list of ``Row``, one per module call below the model, in call order.
        total_params, trainable_params: parameter counts of the model (each shared parameter
            once); ``param_bytes`` their memory.
        total_macs: multiply-adds per sample of the whole forward pass.
        macs_by_op: the same split by op type, e.g. ``{"Conv2d": ..., "BatchNorm": ...}``
            (op types that count none left out).
        activation_bytes: memory of every op output of one forward pass at ``input_shape``
            (what a training step keeps for backward, at most).
        input_shape, output_shape, dtype: of the pass that was run.
    """

    def __init__(self, model, rows, macs_by_op, activation_bytes, input_shape, output_shape,
                 dtype):
        self.model_type = type(model).__name__
        self.rows, self.macs_by_op = rows, macs_by_op
        self.total_macs = sum(macs_by_op.values())
        self.total_params, self.trainable_params, self.param_bytes = _count(model)
        self.activation_bytes = activation_bytes
        self.input_shape, self.output_shape, self.dtype = input_shape, output_shape, dtype

    def table(self, max_depth=None):
        """The table as text; ``max_depth`` hides the rows nested deeper (1: the model's
        children only). The totals always cover the whole model."""
        header = ("Module", "Type", "Output shape", "Params", "Mult-adds")
        lines = [header]
        for row in self.rows:
            if max_depth is None or row.depth <= max_depth:
                lines.append(("  " * (row.depth - 1) + row.name, row.type,
                              str(row.output_shape), f"{row.params:,}", f"{row.macs:,}"))
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        aligns = ("<", "<", "<", ">", ">")
        text = ["  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(line, aligns, widths)).rstrip()
                for line in lines]
        rule = "-" * max(len(t) for t in text)
        non_trainable = self.total_params - self.trainable_params
        input_bytes = math.prod(self.input_shape) * np.dtype(self.dtype).itemsize
        return "\n".join(
            [f"{self.model_type} summary", rule, text[0], rule, *text[1:], rule,
             f"Parameters: {self.total_params:,} ({self.trainable_params:,} trainable, "
             f"{non_trainable:,} frozen), {_size(self.param_bytes)}",
             f"Multiply-adds per sample: {self.total_macs:,} ({self.total_macs / 1e6:.2f} M)",
             f"Input {self.input_shape} {np.dtype(self.dtype).name}: "
             f"{_size(input_bytes)}; output {self.output_shape}",
             f"Activations of one forward pass: {_size(self.activation_bytes)}"])

    def __str__(self):
        return self.table()

    __repr__ = __str__


def _size(count):
    """A byte count in the largest binary unit that keeps it at least 1."""
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if count >= scale:
            return f"{count / scale:.2f} {unit}"
    return f"{count} B"


def summary(model, input_shape, dtype=np.float32):
    """Per-layer table and totals of ``model`` for inputs of ``input_shape``.

    Runs ``model`` once in evaluation mode on zeros of ``input_shape`` under ``no_grad``
    (the modules' training flags are restored afterwards, and nothing in the model changes).

    Args:
        model: a ``minigrad.nn.Module`` taking one tensor.
        input_shape: the input's shape, batch dimension included, e.g. ``(1, 3, 32, 32)``;
            the multiply-adds are reported per sample (divided by ``input_shape[0]``).
        dtype: the input's dtype (the model's parameters should have it).

    Returns:
        a ``Summary``: ``print()`` it for the table; ``rows``, ``total_params``,
        ``trainable_params``, ``total_macs`` and ``macs_by_op`` give the numbers.

    Example::

        >>> model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.GlobalAvgPool2d(),
        ...                       nn.Linear(8, 10))
        >>> s = minigrad.summary(model, (1, 1, 28, 28))
        >>> s.total_params, s.total_macs        # 8·9 + 8 + 8·10 + 10; 26·26·8·9 + 8·10
        (170, 48752)
    """
    input_shape = tuple(int(n) for n in input_shape)
    batch = input_shape[0] if input_shape else 1
    x = Tensor(np.zeros(input_shape, dtype))
    with eval_mode(model):
        record = trace(model, x)
    macs = [0] * len(record.modules)
    by_op = {}
    activation_bytes = 0
    for op in record.ops:
        count = op_macs(op.fn, op.inputs, op.outputs)
        for call in op.calls:
            macs[call] += count
        if count:
            name = type(op.fn).__name__
            by_op[name] = by_op.get(name, 0) + count
        activation_bytes += sum(y.data.nbytes for y in op.outputs)
    rows = []
    for call, total in zip(record.modules, macs):
        if call.depth == 0:
            continue
        params, trainable, _ = _count(call.module)
        rows.append(Row(call.name, type(call.module).__name__, call.depth, _shape(call.output),
                        params, trainable, total // batch))
    return Summary(model, rows, {name: count // batch for name, count in by_op.items()},
                   activation_bytes, input_shape,
                   _shape(record.output), dtype)
