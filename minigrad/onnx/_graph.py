"""The ONNX graph being built by ``minigrad.onnx.export``, and the dimensions that stay symbolic.

Values. Each tensor of the traced pass becomes a ``Value``: the name of an ONNX value (a node
output, the graph input, or an initializer made on first use) and its ``dims``.

Dimensions. A dimension is a tuple of factors whose product is its size: ints (> 1) and ``Sym``
objects, sizes known only when the exported model runs (the batch, the height and width, and
every size computed from them, such as a convolution's output height). ``()`` is a dimension of
size 1. Keeping the factors lets a reshape be exported for any batch size: flattening
(N, C, H, W) to (N, C·H·W) gives the dimensions ``(N,)`` and ``(C, H, W)``, and the target shape
is computed from the input's runtime shape where it must be. Each Sym remembers a value and axis
where it is a whole dimension (its ``source``), from which the running model reads it.

The ops of minigrad.onnx._converters build on this: ``node`` adds a node, ``use`` names a
value (making a constant an initializer), ``reshape`` and ``shape_tensor`` turn dimensions into
the int64 shape tensors ONNX ops take.
"""
import math

import numpy as np


class ExportError(ValueError):
    """A model (or an op in it) that cannot be written as ONNX; the message names the op and
    the module it runs in."""


class Sym:
    """A dimension size known when the exported model runs: ``name`` (e.g. "batch"), ``value``
    (its size in the traced pass) and ``source`` (ONNX value name, axis) holding it."""

    __slots__ = ("name", "value", "source")

    def __init__(self, name, value, source):
        self.name, self.value, self.source = name, value, source

    def __repr__(self):
        return f"Sym({self.name}={self.value})"


def static(n):
    """The dimension of a fixed size ``n``."""
    return () if n == 1 else (int(n),)


def size(dim):
    """The size of a dimension in the traced pass."""
    return math.prod(a.value if isinstance(a, Sym) else a for a in dim)


def is_static(dim):
    return not any(isinstance(a, Sym) for a in dim)


def broadcast(dims_list, out_shape):
    """Dimensions of an elementwise op's output: numpy broadcasting of the inputs' ``dims``
    (right-aligned); per axis, the input dimension of the output's size, a symbolic one first
    (a batch of 1 broadcast against a constant of size 1 stays the batch)."""
    out = []
    ndim = len(out_shape)
    for axis, n in enumerate(out_shape):
        candidates = []
        for dims in dims_list:
            k = axis - (ndim - len(dims))
            if k >= 0 and size(dims[k]) == n:
                candidates.append(dims[k])
        symbolic = [d for d in candidates if not is_static(d)]
        out.append(symbolic[0] if symbolic else static(n))
    return out


def match_reshape(in_dims, target):
    """Dimensions of ``reshape(x, target)`` for x with dimensions ``in_dims``: the factors of
    x, in order, grouped to the target sizes (a fixed factor may be split; a symbolic one
    cannot). None when the target cannot be written in them (e.g. a symbolic size split in
    two)."""
    atoms = [a for d in in_dims for a in d]
    out, i = [], 0
    for t in target:
        if t < 1:
            return None
        taken, prod = [], 1
        while prod != t:
            if i == len(atoms) or t % prod:
                return None
            a, need = atoms[i], t // prod
            value = a.value if isinstance(a, Sym) else a
            if isinstance(a, Sym) or value <= need:
                if need % value:
                    return None
                taken.append(a)
                prod *= value
                i += 1
            else:                  # a fixed factor larger than needed: split it
                if value % need:
                    return None
                taken.append(need)
                prod *= need
                atoms[i] = value // need
        # a symbolic size that is 1 in the traced pass (a batch of 1) joins the dimension
        # before it rather than being dropped
        while i < len(atoms) and isinstance(atoms[i], Sym) and atoms[i].value == 1:
            taken.append(atoms[i])
            i += 1
        out.append(tuple(taken))
    if i != len(atoms):
        if not out:
            return None
        out[-1] = out[-1] + tuple(atoms[i:])
    return out


class Value:
    """A tensor of the exported graph: ``name`` (None for a constant not yet used by a node),
    ``dims``, ``dtype``, ``array``, its numpy value in the traced pass (kept for constants;
    None for values computed from the input) and ``label``, a constant's name in the model
    (e.g. "features.0.weight") for its initializer."""

    __slots__ = ("name", "dims", "dtype", "array", "label")

    def __init__(self, name, dims, dtype, array=None, label=None):
        self.name, self.dims, self.dtype = name, list(dims), np.dtype(dtype)
        self.array, self.label = array, label

    @property
    def const(self):
        return self.array is not None

    @property
    def shape(self):
        return tuple(size(d) for d in self.dims)

    @property
    def ndim(self):
        return len(self.dims)


class Graph:
    """Nodes and initializers of the model being written (see the module docstring).

    ``opset`` is the ONNX opset the nodes follow; ``onnx`` the imported onnx package (imported
    by ``export`` only, so that ``import minigrad`` needs no onnx)."""

    def __init__(self, onnx, opset):
        self.onnx, self.helper, self.opset = onnx, onnx.helper, opset
        self.nodes, self.initializers = [], []
        self._names = set()
        self._constants = {}          # id(array) -> initializer name, for shared parameters
        self._sizes = {}              # id(Sym) -> name of its runtime size (1-D int64)
        self.syms = []
        self.scope = ""               # the module the current op runs in, for node names

    # -- names --------------------------------------------------------------------------------
    def fresh(self, hint):
        """A value or node name not used yet, from ``hint``."""
        name, k = hint, 1
        while name in self._names:
            k += 1
            name = f"{hint}_{k}"
        self._names.add(name)
        return name

    def use(self, value):
        """The ONNX name of ``value``: a constant becomes an initializer on first use."""
        if value.name is None:
            value.name = self.constant(value.array, value.label or "const")
        return value.name

    def constant(self, array, hint="const"):
        """Name of an initializer holding ``array`` (one per array object: a parameter used
        twice is stored once)."""
        key = id(array)
        if key not in self._constants:
            name = self.fresh(hint)
            self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
            # keep the array alive so its id is not reused by another one
            self._constants[key] = (name, array)
        return self._constants[key][0]

    def scalar(self, number, dtype):
        """An initializer holding the scalar ``number`` in ``dtype``."""
        return self.constant(np.asarray(number, dtype=dtype), "scalar")

    def ints(self, values):
        """A 1-D int64 initializer (shapes, axes, split sizes, slice bounds)."""
        return self.constant(np.asarray(values, dtype=np.int64), "ints")

    # -- nodes --------------------------------------------------------------------------------
    def node(self, op_type, inputs, outputs=1, **attributes):
        """Add a node; returns its output name (or the list of them when ``outputs`` > 1).
        An input given as None is an omitted optional input."""
        names = [self.fresh(f"{self.scope}/{op_type}" if self.scope else op_type)
                 for _ in range(outputs)]
        node_name = self.fresh(f"{self.scope}/{op_type}_node" if self.scope else
                               f"{op_type}_node")
        self.nodes.append(self.helper.make_node(
            op_type, ["" if i is None else i for i in inputs], names, name=node_name,
            **{k: v for k, v in attributes.items() if v is not None}))
        return names[0] if outputs == 1 else names

    def reduce(self, op_type, x, axes, keepdims):
        """ReduceSum/ReduceMean/ReduceMax over ``axes``: their axes are an input from opset 18
        (ReduceSum: 13), an attribute before."""
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.node(op_type, [x, self.ints(axes)], keepdims=int(keepdims))
        return self.node(op_type, [x], axes=list(axes), keepdims=int(keepdims))

    def squeeze(self, x, axes):
        return self.node("Squeeze", [x, self.ints(axes)])

    def unsqueeze(self, x, axes):
        return self.node("Unsqueeze", [x, self.ints(axes)])

    # -- symbolic sizes -----------------------------------------------------------------------
    def sym(self, name, value, source):
        """A new symbolic size (see ``Sym``)."""
        s = Sym(name, value, source)
        self.syms.append(s)
        return s

    def derived(self, in_dim, out_name, axis, out_size, hint="dim"):
        """The dimension ``axis`` of the node output ``out_name`` (size ``out_size`` in the
        traced pass), computed from the input dimension ``in_dim``: fixed when that is fixed,
        else a new symbolic size read from the output itself."""
        if is_static(in_dim):
            return static(out_size)
        return (self.sym(hint, out_size, (out_name, axis)),)

    def runtime_size(self, sym):
        """Name of a 1-D int64 tensor [size of ``sym``] in the running model."""
        if id(sym) not in self._sizes:
            source, axis = sym.source
            shape = self.node("Shape", [source])
            self._sizes[id(sym)] = self.node("Gather", [shape, self.ints([axis])], axis=0)
        return self._sizes[id(sym)]

    def shape_tensor(self, dims, allow_infer=False):
        """Name of a 1-D int64 tensor holding the sizes of ``dims`` in the running model:
        a constant when they are fixed (or, with ``allow_infer``, when one alone is symbolic:
        it becomes -1, which Reshape infers), else computed from the symbolic sizes' sources."""
        symbolic = [k for k, d in enumerate(dims) if not is_static(d)]
        if not symbolic or (allow_infer and len(symbolic) == 1):
            return self.ints([-1 if k in symbolic else size(d) for k, d in enumerate(dims)])
        parts = []
        for d in dims:
            fixed = math.prod(a for a in d if not isinstance(a, Sym))
            part = None
            for a in d:
                if isinstance(a, Sym):
                    n = self.runtime_size(a)
                    part = n if part is None else self.node("Mul", [part, n])
            if part is None:
                part = self.ints([fixed])
            elif fixed != 1:
                part = self.node("Mul", [part, self.ints([fixed])])
            parts.append(part)
        return self.node("Concat", parts, axis=0)

    def reshape(self, x, dims):
        """Reshape the value named ``x`` to ``dims``; returns the output's name."""
        return self.node("Reshape", [x, self.shape_tensor(dims, allow_infer=True)])

    def reshape_value(self, x, target, where):
        """Dimensions for reshaping the Value ``x`` to the traced ``target`` shape, or
        ExportError naming ``where`` when its symbolic sizes cannot be kept."""
        if all(is_static(d) for d in x.dims):
            return [static(n) for n in target]
        dims = match_reshape(x.dims, target)
        if dims is None:
            names = sorted({a.name for d in x.dims for a in d if isinstance(a, Sym)})
            raise ExportError(
                f"{where}: the reshape of a tensor of shape {x.shape} to {tuple(target)} "
                f"splits or reorders sizes that vary with the input ({', '.join(names)}), "
                "which the exported model cannot compute; export with dynamic_batch=False "
                "and dynamic_size=False (fixed sizes), or keep the batch axis in place")
        return dims

    # -- renaming -----------------------------------------------------------------------------
    def rename(self, old, new):
        """Rename the value ``old`` to ``new`` everywhere (the graph output's name)."""
        for node in self.nodes:
            for names in (node.input, node.output):
                for k, name in enumerate(names):
                    if name == old:
                        names[k] = new
        for s in self.syms:
            if s.source[0] == old:
                s.source = (new, s.source[1])
        self._names.add(new)

    def prune(self, output):
        """Drop the nodes and initializers the output does not depend on (ops a forward ran
        for nothing, and constants only they used)."""
        needed, kept = {output}, []
        for node in reversed(self.nodes):
            if any(name in needed for name in node.output):
                kept.append(node)
                needed.update(name for name in node.input if name)
        self.nodes = kept[::-1]
        self.initializers = [t for t in self.initializers if t.name in needed]
