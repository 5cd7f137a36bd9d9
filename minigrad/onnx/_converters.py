"""One converter per minigrad op: the ONNX nodes that compute what the op computed.

A converter takes the graph being built (``_graph.Graph``) and the ``OpCall`` of the op (its
``fn``, input ``Value``s, traced outputs and calling arguments) and returns one
``(value name, dims)`` per output of the op. Ops with an ONNX operator of the same meaning map
to it (Conv, MaxPool, Gemm, Softmax, ...); the others are written as compositions of standard
operators (gelu before opset 20, silu, maxout, Lp pooling, adaptive pooling with uneven bins,
batch norm with batch statistics). ``NO_ONNX_FORM`` lists the ops that have no deterministic
form, with the reason the error message gives.
"""
import numpy as np

from .._kernels import pooling as _pool_kernels
from .._validate import pair
from ..ops import activation as A
from ..ops import arithmetic, conv, layers, normalization, pooling, pooling_extra, reduction
from ..ops import math as math_ops
from ..ops import shape as S
from ..ops.geometry import adaptive_bins, window_output_size
from ._graph import ExportError, broadcast, is_static, size, static

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min

#: op class -> converter
CONVERTERS = {}

#: op class -> (the op's name as users call it, why it has no ONNX form)
NO_ONNX_FORM = {
    pooling_extra.StochasticPool2dSample: (
        "stochastic_pool2d in training mode",
        "it samples one cell per window at random; put the model in eval mode, where it is "
        "the deterministic probability-weighted average (export does that)"),
    pooling_extra.FractionalMaxPool2d: (
        "fractional_max_pool2d",
        "its pooling regions are drawn at random per plane and depend on the input size, and "
        "ONNX has no such pooling"),
    layers.Dropout: (
        "dropout in training mode",
        "it zeroes elements at random; export runs the model in eval mode, where nn.Dropout is "
        "the identity: call F.dropout with training=self.training"),
}

#: ops whose calling frame's arguments the converters read: the pooling op objects keep the
#: window as their kernels run it (trimmed to the input, ceil_mode applied), not as it was asked
#: for, and an exported model must apply the window asked for to inputs of other sizes
ARGUMENTS_OF = (pooling.MaxPool2d, pooling.AvgPool2d, pooling.AdaptiveAvgPool2d,
                pooling.AdaptiveMaxPool2d, pooling_extra.WindowPool2d)


def converts(*classes):
    def register(convert):
        for cls in classes:
            CONVERTERS[cls] = convert
        return convert
    return register


def converter_for(fn):
    """The converter of the op ``fn`` (its class or the nearest base class with one), or
    None."""
    for cls in type(fn).__mro__:
        if cls in CONVERTERS:
            return CONVERTERS[cls]
    return None


def _channel_shape(count, ndim):
    """Broadcast shape of a one-value or one-per-channel (axis 1) parameter for ndim-D input."""
    return (1, count) + (1,) * (ndim - 2) if count > 1 else (1,) * ndim


def _channel_constant(g, value, ndim):
    """The per-channel parameter ``value`` reshaped to broadcast against an ndim-D input."""
    shape = _channel_shape(int(np.prod(value.shape)), ndim)
    if value.const:
        return g.constant(value.array.reshape(shape), value.label or "channel_parameter")
    return g.node("Reshape", [g.use(value), g.ints(shape)])


def _fixed_axis(value, axis, op, what):
    """ExportError unless dimension ``axis`` of ``value`` has a fixed size (a weight fixes it)."""
    if not is_static(value.dims[axis]):
        raise ExportError(
            f"{op.where}: {what} (size {value.shape[axis]} here) varies with the input's "
            "batch or spatial size in the exported model, but the op needs it fixed; export "
            "with dynamic_size=False (and dynamic_batch=False if the batch is reshaped into it)")


# -- elementwise ---------------------------------------------------------------------------------

def _unary(onnx_op):
    def convert(g, op):
        x = op.inputs[0]
        return [(g.node(onnx_op, [g.use(x)]), x.dims)]
    return convert


for _cls, _onnx_op in ((arithmetic.Neg, "Neg"), (math_ops.Exp, "Exp"), (math_ops.Log, "Log"),
                       (math_ops.Sqrt, "Sqrt"), (math_ops.Abs, "Abs"), (A.ReLU, "Relu"),
                       (A.Sigmoid, "Sigmoid"), (A.Tanh, "Tanh")):
    CONVERTERS[_cls] = _unary(_onnx_op)


def _binary(onnx_op):
    def convert(g, op):
        a, b = op.inputs
        return [(g.node(onnx_op, [g.use(a), g.use(b)]),
                 broadcast([a.dims, b.dims], op.out_shape()))]
    return convert


for _cls, _onnx_op in ((arithmetic.Add, "Add"), (arithmetic.Sub, "Sub"),
                       (arithmetic.Mul, "Mul"), (arithmetic.Div, "Div")):
    CONVERTERS[_cls] = _binary(_onnx_op)


@converts(arithmetic.Pow)
def _pow(g, op):
    x = op.inputs[0]
    return [(g.node("Pow", [g.use(x), g.scalar(op.fn.exponent, x.dtype)]), x.dims)]


@converts(arithmetic.MatMul)
def _matmul(g, op):
    a, b = op.inputs
    # numpy's (and ONNX's) rule: a 1-D operand is a row (a) or a column (b) that is dropped
    ad = a.dims if a.ndim > 1 else [()] + list(a.dims)
    bd = b.dims if b.ndim > 1 else list(b.dims) + [()]
    batch_ndim = max(len(ad), len(bd)) - 2
    dims = broadcast([ad[:-2], bd[:-2]], op.out_shape()[:batch_ndim])
    dims += ([ad[-2]] if a.ndim > 1 else []) + ([bd[-1]] if b.ndim > 1 else [])
    return [(g.node("MatMul", [g.use(a), g.use(b)]), dims)]


@converts(math_ops.Clip)
def _clip(g, op):
    x, fn = op.inputs[0], op.fn
    bounds = [None if v is None else g.scalar(v, x.dtype) for v in (fn.low, fn.high)]
    return [(g.node("Clip", [g.use(x), *bounds]), x.dims)]


@converts(math_ops.Cast)
def _cast(g, op):
    x = op.inputs[0]
    to = g.helper.np_dtype_to_tensor_dtype(np.dtype(op.fn.dtype))
    return [(g.node("Cast", [g.use(x)], to=to), x.dims)]


# -- activations ---------------------------------------------------------------------------------

@converts(A.LeakyReLU)
def _leaky_relu(g, op):
    x = op.inputs[0]
    return [(g.node("LeakyRelu", [g.use(x)], alpha=op.fn.slope), x.dims)]


@converts(A.PReLU)
def _prelu(g, op):
    x, weight = op.inputs
    return [(g.node("PRelu", [g.use(x), _channel_constant(g, weight, x.ndim)]), x.dims)]


@converts(A.ELU)
def _elu(g, op):
    x, fn = op.inputs[0], op.fn
    if fn.scale == 1.0:
        return [(g.node("Elu", [g.use(x)], alpha=fn.alpha), x.dims)]
    if (fn.alpha, fn.scale) == (A.SELU_ALPHA, A.SELU_SCALE):
        return [(g.node("Selu", [g.use(x)], alpha=fn.alpha, gamma=fn.scale), x.dims)]
    y = g.node("Elu", [g.use(x)], alpha=fn.alpha)
    return [(g.node("Mul", [y, g.scalar(fn.scale, x.dtype)]), x.dims)]


@converts(A.GELU)
def _gelu(g, op):
    x, approximate = op.inputs[0], op.fn.approximate
    name = g.use(x)
    if g.opset >= 20:
        return [(g.node("Gelu", [name], approximate=approximate), x.dims)]

    def c(number):
        return g.scalar(number, x.dtype)

    if approximate == "none":      # x/2 · (1 + erf(x/√2))
        inner = g.node("Erf", [g.node("Mul", [name, c(1 / np.sqrt(2))])])
    else:                          # x/2 · (1 + tanh(√(2/π)·(x + 0.044715·x³)))
        cube = g.node("Mul", [g.node("Mul", [name, name]), name])
        poly = g.node("Add", [name, g.node("Mul", [cube, c(A.GELU_TANH_CUBIC)])])
        inner = g.node("Tanh", [g.node("Mul", [poly, c(A.SQRT_2_OVER_PI)])])
    half_x = g.node("Mul", [name, c(0.5)])
    return [(g.node("Mul", [half_x, g.node("Add", [inner, c(1.0)])]), x.dims)]


@converts(A.SiLU)
def _silu(g, op):
    x = op.inputs[0]
    name = g.use(x)
    return [(g.node("Mul", [name, g.node("Sigmoid", [name])]), x.dims)]


@converts(A.Swish)
def _swish(g, op):
    x, beta = op.inputs
    name = g.use(x)
    z = g.node("Mul", [name, _channel_constant(g, beta, x.ndim)])
    return [(g.node("Mul", [name, g.node("Sigmoid", [z])]), x.dims)]


@converts(A.Softmax, A.LogSoftmax)
def _softmax(g, op):
    x = op.inputs[0]
    onnx_op = "Softmax" if isinstance(op.fn, A.Softmax) else "LogSoftmax"
    return [(g.node(onnx_op, [g.use(x)], axis=op.fn.axis), x.dims)]


@converts(A.Maxout)
def _maxout(g, op):
    x, pieces, axis = op.inputs[0], op.fn.pieces, op.fn.axis
    _fixed_axis(x, axis, op, f"the channel axis {axis}")
    groups = x.shape[axis] // pieces
    grouped = x.dims[:axis] + [static(groups), static(pieces)] + x.dims[axis + 1:]
    y = g.reduce("ReduceMax", g.reshape(g.use(x), grouped), [axis + 1], keepdims=False)
    return [(y, x.dims[:axis] + [static(groups)] + x.dims[axis + 1:])]


# -- layers --------------------------------------------------------------------------------------

@converts(conv.Conv2d)
def _conv2d(g, op):
    x, weight = op.inputs[:2]
    fn = op.fn
    _fixed_axis(x, 1, op, "the input's channel axis")
    (top, bottom), (left, right) = fn.padding
    y = g.node("Conv", [g.use(v) for v in op.inputs], kernel_shape=list(weight.shape[2:]),
               strides=list(fn.stride), pads=[top, left, bottom, right],
               dilations=list(fn.dilation), group=fn.groups)
    return [(y, _spatial_dims(g, x, y, op.out_shape()))]


def _spatial_dims(g, x, y, out_shape):
    """Dimensions of an (N, C, H, W) → (N, C', H', W') op's output ``y``: the batch passes
    through, the channels are fixed, each spatial size follows the input's."""
    return [x.dims[0], static(out_shape[1])] + [
        g.derived(x.dims[axis], y, axis, out_shape[axis], ("height", "width")[axis - 2])
        for axis in (2, 3)]


@converts(layers.Linear)
def _linear(g, op):
    x, weight = op.inputs[:2]
    bias = op.inputs[2] if len(op.inputs) == 3 else None
    _fixed_axis(x, -1, op, "the input's last axis (in_features)")
    dims = list(x.dims[:-1]) + [static(weight.shape[0])]
    if x.ndim == 2:
        inputs = [g.use(x), g.use(weight)] + ([g.use(bias)] if bias is not None else [])
        return [(g.node("Gemm", inputs, transB=1), dims)]
    if weight.const:
        transposed = g.constant(np.ascontiguousarray(weight.array.T),
                                f"{weight.label or 'weight'}_transposed")
    else:
        transposed = g.node("Transpose", [g.use(weight)], perm=[1, 0])
    y = g.node("MatMul", [g.use(x), transposed])
    if bias is not None:
        y = g.node("Add", [y, g.use(bias)])
    return [(y, dims)]


@converts(normalization.BatchNorm)
def _batch_norm(g, op):
    x, weight, bias = op.inputs
    fn = op.fn
    _fixed_axis(x, 1, op, "the channel axis")
    if not fn.use_batch_stats:
        stats = [g.constant(np.asarray(s).astype(x.dtype, copy=False),
                            op.names.get(id(s), hint))
                 for s, hint in ((fn.mean, "running_mean"), (fn.var, "running_var"))]
        y = g.node("BatchNormalization", [g.use(x), g.use(weight), g.use(bias), *stats],
                   epsilon=fn.eps)
        return [(y, x.dims)]
    # Batch statistics (a BatchNorm2d without running statistics): the same formula in
    # standard ops, y = (x − mean) / √(var + eps) · γ + β with the biased variance.
    axes = [0] + list(range(2, x.ndim))
    name = g.use(x)
    centred = g.node("Sub", [name, g.reduce("ReduceMean", name, axes, keepdims=True)])
    var = g.reduce("ReduceMean", g.node("Mul", [centred, centred]), axes, keepdims=True)
    std = g.node("Sqrt", [g.node("Add", [var, g.scalar(fn.eps, x.dtype)])])
    scaled = g.node("Mul", [g.node("Div", [centred, std]), _channel_constant(g, weight, x.ndim)])
    return [(g.node("Add", [scaled, _channel_constant(g, bias, x.ndim)]), x.dims)]


# -- shapes --------------------------------------------------------------------------------------

@converts(S.Reshape)
def _reshape(g, op):
    x = op.inputs[0]
    dims = g.reshape_value(x, op.fn.shape, op.where)
    return [(g.reshape(g.use(x), dims), dims)]


@converts(S.Transpose)
def _transpose(g, op):
    x, axes = op.inputs[0], list(op.fn.axes)
    return [(g.node("Transpose", [g.use(x)], perm=axes), [x.dims[a] for a in axes])]


@converts(S.Concat)
def _concat(g, op):
    axis = op.fn.axis
    y = g.node("Concat", [g.use(v) for v in op.inputs], axis=axis)
    dims = list(op.inputs[0].dims)
    if all(is_static(v.dims[axis]) for v in op.inputs):
        dims[axis] = static(op.out_shape()[axis])
    else:
        dims[axis] = (g.sym("concat", op.out_shape()[axis], (y, axis)),)
    return [(y, dims)]


@converts(S.Stack)
def _stack(g, op):
    axis = op.fn.axis
    parts = [g.unsqueeze(g.use(v), [axis]) for v in op.inputs]
    dims = broadcast([v.dims for v in op.inputs], op.inputs[0].shape)
    return [(g.node("Concat", parts, axis=axis),
             dims[:axis] + [static(len(op.inputs))] + dims[axis:])]


@converts(S.Split)
def _split(g, op):
    x, sizes, axis = op.inputs[0], list(op.fn.sizes), op.fn.axis
    _fixed_axis(x, axis, op, f"the split axis {axis}")
    names = g.node("Split", [g.use(x), g.ints(sizes)], outputs=len(sizes), axis=axis)
    names = [names] if len(sizes) == 1 else names
    return [(name, x.dims[:axis] + [static(n)] + x.dims[axis + 1:])
            for name, n in zip(names, sizes)]


@converts(S.GetItem)
def _getitem(g, op):
    """Indexing with ints, slices, None and ``...``, or one integer/boolean 1-D array (the other
    items full slices): Slice, then Gather, Squeeze and Unsqueeze."""
    x = op.inputs[0]
    items = op.fn.index if isinstance(op.fn.index, tuple) else (op.fn.index,)
    items = _expand_ellipsis(items, x.ndim, op)
    arrays = [k for k, it in enumerate(items) if isinstance(it, (np.ndarray, list))]
    if len(arrays) > 1 or (arrays and any(
            not (isinstance(it, (np.ndarray, list)) or it == slice(None)) for it in items)):
        raise ExportError(f"{op.where}: indexing with {op.fn.index!r} is not exported: use "
                          "ints, slices, None and ..., or one 1-D index array with full slices")
    name, dims = g.use(x), list(x.dims)
    starts, ends, steps, axes, squeeze, unsqueeze, gather = [], [], [], [], [], [], None
    axis, out_axis = 0, 0
    for it in items:
        if it is None:
            unsqueeze.append(out_axis)
            out_axis += 1
            continue
        if isinstance(it, (np.ndarray, list)):
            index = np.asarray(it)
            if index.dtype == np.bool_:
                index = np.nonzero(index)[0]
            gather = (axis, index.astype(np.int64))
        elif isinstance(it, slice):
            if it != slice(None) and it != slice(None, None, 1):
                step = 1 if it.step is None else int(it.step)
                starts.append((0 if step > 0 else INT64_MAX) if it.start is None
                              else int(it.start))
                ends.append((INT64_MAX if step > 0 else INT64_MIN) if it.stop is None
                            else int(it.stop))
                steps.append(step)
                axes.append(axis)
        else:                                          # an int: a slice of one, squeezed
            i = int(it)
            starts.append(i)
            ends.append(i + 1 if i != -1 else INT64_MAX)
            steps.append(1)
            axes.append(axis)
            squeeze.append(axis)
        out_axis += 0 if isinstance(it, (int, np.integer)) else 1
        axis += 1
    if axes:
        name = g.node("Slice", [name, g.ints(starts), g.ints(ends), g.ints(axes), g.ints(steps)])
        for k, start, end, step in zip(axes, starts, ends, steps):
            n = len(range(*slice(start, end, step).indices(x.shape[k])))
            dims[k] = g.derived(dims[k], name, k, n, "slice")
    if gather is not None:
        k, index = gather
        name = g.node("Gather", [name, g.ints(index)], axis=k)
        dims[k] = static(len(index))
    if squeeze:
        name = g.squeeze(name, squeeze)
        dims = [d for k, d in enumerate(dims) if k not in squeeze]
    if unsqueeze:
        name = g.unsqueeze(name, unsqueeze)
        for k in unsqueeze:
            dims.insert(k, ())
    return [(name, dims)]


def _expand_ellipsis(items, ndim, op):
    """``items`` with ``...`` replaced by full slices and missing trailing axes added."""
    consumed = sum(1 for it in items if it is not None and it is not Ellipsis)
    ellipses = sum(1 for it in items if it is Ellipsis)
    if ellipses > 1:
        raise ExportError(f"{op.where}: an index with more than one '...'")
    out = []
    for it in items:
        if it is Ellipsis:
            out += [slice(None)] * (ndim - consumed)
        else:
            out.append(it)
    if not ellipses:
        out += [slice(None)] * (ndim - consumed)
    return out


# -- reductions ----------------------------------------------------------------------------------

@converts(reduction.Sum, reduction.Mean, reduction.Max)
def _reduce(g, op):
    x, axes, keepdims = op.inputs[0], list(op.fn.axes), op.fn.keepdims
    onnx_op = {reduction.Sum: "ReduceSum", reduction.Mean: "ReduceMean",
               reduction.Max: "ReduceMax"}[type(op.fn)]
    if not axes:                                    # a 0-d input: nothing to reduce
        return [(g.node("Identity", [g.use(x)]), x.dims)]
    y = g.reduce(onnx_op, g.use(x), axes, keepdims)
    if keepdims:
        return [(y, [() if k in axes else d for k, d in enumerate(x.dims)])]
    return [(y, [d for k, d in enumerate(x.dims) if k not in axes])]


# -- pooling -------------------------------------------------------------------------------------

def _window(op, x, asked, kept):
    """The pooling window (kernel, stride, padding, dilation, ceil_mode) to export.

    ``asked`` is the window as the functional call asked for it (from its arguments), or None
    when they could not be read; ``kept`` the op object's own (kernel, stride, padding,
    dilation), with ceil_mode unknown. The first candidate that gives the traced output size is
    used. Only the asked-for window is right for every input size, so a dynamic-size export
    without it is refused."""
    candidates = [(asked, True)] if asked is not None else []
    candidates += [(kept + (ceil,), False) for ceil in (False, True)]
    out = op.out_shape()[2:]
    for window, exact in candidates:
        kernel, stride, padding, dilation, ceil_mode = window
        sizes = tuple(window_output_size(n, k, s, p, d, ceil_mode) for n, k, s, p, d in
                      zip(x.shape[2:], kernel, stride, padding, dilation))
        if sizes == tuple(out):
            if not exact and not all(is_static(d) for d in x.dims[2:]):
                break
            return window
    raise ExportError(f"{op.where}: cannot tell the window the op was called with (its "
                      "arguments could not be read); export with dynamic_size=False")


def _asked(op, kept, kernel_and_stride=False):
    """The window the functional call asked for, or None when its arguments cannot be read:
    ``kept`` (the op object's kernel, stride, padding, dilation) with the caller's
    ``ceil_mode``, and with ``kernel_and_stride`` also its ``kernel_size`` and ``stride`` (max
    pooling keeps them trimmed to the input)."""
    args = op.arguments or {}
    kernel, stride, padding, dilation = kept
    try:
        if kernel_and_stride:
            kernel = pair(args["kernel_size"], "kernel_size", "export")
            stride = kernel if args["stride"] is None else pair(args["stride"], "stride",
                                                                "export")
        return kernel, stride, padding, dilation, bool(args["ceil_mode"])
    except (KeyError, TypeError, ValueError):
        return None


def _pool(g, name, x, onnx_op, window, count_include_pad=False, full_divisor=False):
    """MaxPool or AveragePool of the value ``name`` (sizes those of the Value ``x``) with
    PyTorch's windows; returns the output's name.

    ``ceil_mode`` is not handed to ONNX: runtimes disagree on its last window (ONNX Runtime
    before 1.30 keeps windows PyTorch drops and counts their overhang in averages, and
    onnx's shape inference still does), so the exported file says it without it. The end
    padding grows so that floor mode has at least PyTorch's windows (by stride − 1, at most
    to the window's extent − 1: ONNX Runtime wants each pad smaller than the kernel, and a
    larger one goes to an explicit Pad), and a Slice keeps PyTorch's count,
    min(ceil((size + 2·padding − extent) / stride) + 1, (size + padding − 1) // stride + 1):
    the ceil count without a last window starting in the right padding. The overhang is never
    counted: an average with ``count_include_pad`` pads its input explicitly (those zeros are
    cells) and counts only cells. ``full_divisor`` divides every window by the kernel area
    (a sum, up to that factor)."""
    kernel, stride, padding, dilation, ceil_mode = window
    ceil = ceil_mode and stride != (1, 1)
    begin = list(padding)
    attributes = dict(kernel_shape=list(kernel), strides=list(stride))
    if onnx_op == "MaxPool":
        attributes["dilations"] = list(dilation)
    elif full_divisor:
        attributes["count_include_pad"] = 1
    elif ceil:
        if count_include_pad and any(padding):
            name = g.node("Pad", [name, g.ints([0, 0, *padding, 0, 0, *padding])])
            begin = [0, 0]
        attributes["count_include_pad"] = 0
    else:
        attributes["count_include_pad"] = int(count_include_pad)
    if not ceil:
        return g.node(onnx_op, [name], pads=begin * 2, **attributes)
    extent = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    end = [min(b + s - 1, e - 1) for b, s, e in zip(begin, stride, extent)]
    if any(e >= k for e, k in zip(end, kernel)):     # a dilated max pool only
        low = g.scalar(-np.inf, x.dtype)
        name = g.node("Pad", [name, g.ints([0, 0, 0, 0, 0, 0, *end]), low])
        end = [0, 0]
    y = g.node(onnx_op, [name], pads=begin + end, **attributes)
    ends, needed = [], False
    for axis, n, b, e, k, s, p, d, ex in zip((2, 3), x.shape[2:], begin, end, kernel, stride,
                                             padding, dilation, extent):
        dim = x.dims[axis]
        if is_static(dim):
            count = window_output_size(n, k, s, p, d, ceil_mode=True)
            inner = n + 2 * (p - b)                   # after an explicit Pad
            needed |= count != window_output_size(inner, k, s, b, d, padding_end=e)
            ends.append(g.ints([count]))
            continue
        needed = True
        size_now = g.shape_tensor([dim])
        raw = g.node("Div", [g.node("Add", [size_now, g.ints([2 * p - ex + s - 1])]),
                             g.ints([s])])
        keep = g.node("Div", [g.node("Add", [size_now, g.ints([p - 1])]), g.ints([s])])
        ends.append(g.node("Add", [g.node("Min", [raw, keep]), g.ints([1])]))
    if not needed:
        return y
    return g.node("Slice", [y, g.ints([0, 0]), g.node("Concat", ends, axis=0), g.ints([2, 3])])


@converts(pooling.MaxPool2d)
def _max_pool(g, op):
    x, fn = op.inputs[0], op.fn
    kept = tuple(fn.plan[:4])
    window = _window(op, x, _asked(op, kept, kernel_and_stride=True), kept)
    y = _pool(g, g.use(x), x, "MaxPool", window)
    return [(y, _spatial_dims(g, x, y, op.out_shape()))]


@converts(pooling.AvgPool2d)
def _avg_pool(g, op):
    x, fn = op.inputs[0], op.fn
    kept = (fn.kernel_size, fn.stride, fn.padding, (1, 1))
    window = _window(op, x, _asked(op, kept), kept)
    if fn.divisor_override is None:
        y = _pool(g, g.use(x), x, "AveragePool", window, fn.count_include_pad)
        return [(y, _spatial_dims(g, x, y, op.out_shape()))]
    # sum / divisor_override: the average over the whole kernel times kh·kw / divisor
    average = _pool(g, g.use(x), x, "AveragePool", window, full_divisor=True)
    kernel = window[0]
    y = g.node("Mul", [average, g.scalar(kernel[0] * kernel[1] / fn.divisor_override,
                                         x.dtype)])
    return [(y, _spatial_dims(g, x, y, op.out_shape()))]


@converts(pooling_extra.WindowPool2d)
def _window_pool(g, op):
    x, fn = op.inputs[0], op.fn
    name = g.use(x)
    if fn.kind == _pool_kernels.WEIGHTED_AVERAGE:
        # stochastic pooling's evaluation, Σa²/Σa = mean(a²)/mean(a); an all-zero window
        # (mean 0, so mean(a²) = 0) gives 0 / tiny = 0 as minigrad does
        pool = dict(kernel_shape=list(fn.kernel), strides=list(fn.stride))
        squares = g.node("AveragePool", [g.node("Mul", [name, name])], **pool)
        mean = g.node("AveragePool", [name], **pool)
        tiny = g.scalar(np.finfo(x.dtype).tiny, x.dtype)
        y = g.node("Div", [squares, g.node("Max", [mean, tiny])])
        return [(y, _spatial_dims(g, x, y, op.out_shape()))]
    # Lp pooling, (c·Σ|x|^p)^(1/p) with c = kernel area / cells inside: the average over the
    # cells inside times the kernel area
    kept = (tuple(fn.kernel), tuple(fn.stride), (0, 0), (1, 1))
    window = _window(op, x, _asked(op, kept), kept)
    powered = g.node("Abs", [name])
    if fn.p != 1.0:
        powered = g.node("Pow", [powered, g.scalar(fn.p, x.dtype)])
    average = _pool(g, powered, x, "AveragePool", window)
    kernel = window[0]
    y = g.node("Mul", [average, g.scalar(kernel[0] * kernel[1], x.dtype)])
    if fn.p != 1.0:
        y = g.node("Pow", [y, g.scalar(1.0 / fn.p, x.dtype)])
    return [(y, _spatial_dims(g, x, y, op.out_shape()))]


@converts(pooling_extra.TreePool2d)
def _tree_pool(g, op):
    """Tree pooling: each filter's dot products with every window are a depthwise Conv (the
    filter repeated for every channel, group = C), then each gate, children before parents,
    s·left + (1 − s)·right with s = Sigmoid of the gate's dot products."""
    x, leaves, gates = op.inputs
    _fixed_axis(x, 1, op, "the input's channel axis")
    if not (leaves.const and gates.const):
        raise ExportError(f"{op.where}: tree pooling's leaf_weight and gate_weight must be "
                          "fixed (parameters or constants) to be exported")
    channels, fn, name = x.shape[1], op.fn, g.use(x)
    filters = [(gates, m) for m in range(len(gates.array))] + [
        (leaves, m) for m in range(len(leaves.array))]
    responses = []
    for value, m in filters:
        weight = np.ascontiguousarray(np.broadcast_to(
            value.array[m], (channels, 1) + tuple(fn.kernel)), dtype=x.dtype)
        responses.append(g.node("Conv", [name, g.constant(weight, f"{value.label or 'filter'}"
                                                                  f".{m}")],
                                kernel_shape=list(fn.kernel), strides=list(fn.stride),
                                group=channels))
    one = g.scalar(1.0, x.dtype)
    for m in range(len(gates.array) - 1, -1, -1):
        s = g.node("Sigmoid", [responses[m]])
        responses[m] = g.node("Add", [
            g.node("Mul", [s, responses[2 * m + 1]]),
            g.node("Mul", [g.node("Sub", [one, s]), responses[2 * m + 2]])])
    return [(responses[0], _spatial_dims(g, x, responses[0], op.out_shape()))]


@converts(pooling.GlobalAvgPool2d, pooling.GlobalMaxPool2d)
def _global_pool(g, op):
    x = op.inputs[0]
    onnx_op = "GlobalAveragePool" if isinstance(op.fn, pooling.GlobalAvgPool2d) \
        else "GlobalMaxPool"
    y = g.node(onnx_op, [g.use(x)])
    if op.fn.keepdims:
        return [(y, x.dims[:2] + [(), ()])]
    return [(g.node("Flatten", [y], axis=1), x.dims[:2])]


@converts(pooling.AdaptiveAvgPool2d, pooling.AdaptiveMaxPool2d)
def _adaptive_pool(g, op):
    """Adaptive pooling: a global pool for a 1×1 output, one pooling op when the bins are
    even (the input size a multiple of the output size), else per axis a slice and a
    reduction for each bin, with the bins computed from the input size while the model runs
    when that size varies. An axis whose output_size was None keeps its size."""
    x, out = op.inputs[0], op.fn.out_hw
    kind = "max" if isinstance(op.fn, pooling.AdaptiveMaxPool2d) else "avg"
    asked = (op.arguments or {}).get("output_size")
    kept = {axis for axis, o in zip((2, 3), asked if isinstance(asked, (tuple, list))
                                    else (asked, asked)) if o is None}
    name, dims = g.use(x), list(x.dims)
    if out == (1, 1) and not kept:
        y = g.node("GlobalMaxPool" if kind == "max" else "GlobalAveragePool", [name])
        return [(y, dims[:2] + [(), ()])]
    static_sizes = all(is_static(d) for d in dims[2:]) and not kept
    if static_sizes and all(n % o == 0 for n, o in zip(x.shape[2:], out)):
        kernel = [n // o for n, o in zip(x.shape[2:], out)]
        y = g.node("MaxPool" if kind == "max" else "AveragePool", [name], kernel_shape=kernel,
                   strides=kernel)
        return [(y, dims[:2] + [static(o) for o in out])]
    for axis, o in zip((2, 3), out):
        if axis in kept or (is_static(dims[axis]) and x.shape[axis] == o):
            continue
        name = _adaptive_axis(g, name, dims[axis], x.shape[axis], axis, o, kind)
        dims[axis] = static(o)
    return [(name, dims)]


def _adaptive_axis(g, name, dim, n, axis, out, kind):
    """Adaptive pooling of ``name`` along one axis (size ``n`` in the traced pass) to
    ``out`` bins [floor(i·n/out), ceil((i+1)·n/out)), one Slice and reduction per bin."""
    reduce_op = "ReduceMax" if kind == "max" else "ReduceMean"
    parts = []
    if is_static(dim):
        starts, ends = adaptive_bins(n, out)
        bounds = [(g.ints([s]), g.ints([e])) for s, e in zip(starts, ends)]
    else:
        length = g.shape_tensor([dim])
        bounds = []
        for i in range(out):
            start = g.node("Div", [g.node("Mul", [length, g.ints([i])]), g.ints([out])])
            end = g.node("Div", [g.node("Add", [g.node("Mul", [length, g.ints([i + 1])]),
                                                g.ints([out - 1])]), g.ints([out])])
            bounds.append((start, end))
    for start, end in bounds:
        piece = g.node("Slice", [name, start, end, g.ints([axis])])
        parts.append(g.reduce(reduce_op, piece, [axis], keepdims=True))
    return parts[0] if len(parts) == 1 else g.node("Concat", parts, axis=axis)


def output_size_matches(dims, shape):
    """Whether ``dims`` describe ``shape`` (the converters' self-check)."""
    return tuple(size(d) for d in dims) == tuple(shape)
