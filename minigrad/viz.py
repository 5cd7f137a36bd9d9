"""Pictures of the autograd graph: the ops a tensor was computed by, as backward walks them.

``to_dot`` writes the graph in Graphviz's DOT language (text, no dependency); ``render`` runs
Graphviz's ``dot`` program on it to write an SVG, PNG or PDF file. Op nodes are boxes labelled
with the op's name and output shape; leaves are ellipses labelled with their name (from
``params``) or their shape, blue when they require a gradient; the edges follow the data, from
the leaves to the tensor.

Example::

    y = model(x)
    minigrad.viz.render(y, "graph.svg", params=dict(model.named_parameters()))
"""
import os
import shutil
import subprocess

from .tensor import Tensor

INSTALL_HINT = ("Graphviz's `dot` program is needed to draw the graph: install Graphviz "
                "(Debian/Ubuntu: `sudo apt-get install graphviz`, macOS: `brew install graphviz`, "
                "conda: `conda install graphviz`), or write `to_dot(tensor)` to a .dot file and "
                "render it elsewhere (e.g. an online Graphviz viewer)")


def _ops_in_order(tensor):
    """The ops of the graph ending in ``tensor``, every op after the ops that feed it
    (depth first from the inputs, inputs visited in argument order)."""
    order, done, stack = [], set(), [(tensor._creator, False)]
    while stack:
        fn, expanded = stack.pop()
        if fn in done:
            continue
        if expanded:
            done.add(fn)
            order.append(fn)
            continue
        if not fn.inputs:
            raise ValueError(
                f"the graph was freed below {type(fn).__name__}: backward() without "
                "retain_graph=True releases it; draw the graph before calling backward(), or "
                "call backward(retain_graph=True)")
        stack.append((fn, True))
        for x in reversed(fn.inputs):
            if x._creator is not None and x._creator not in done:
                stack.append((x._creator, False))
    return order


def _shape_text(shape):
    return str(tuple(int(n) for n in shape))


def _label(*lines):
    """A quoted DOT label of several lines."""
    escaped = (line.replace("\\", "\\\\").replace('"', '\\"') for line in lines)
    return '"' + "\\n".join(escaped) + '"'


def to_dot(tensor, params=None):
    """Graphviz DOT text of the autograd graph that computed ``tensor``.

    One node per op (its class name and output shape; several shapes for an op with several
    outputs), one per leaf tensor the ops read (named from ``params`` when it is one of its
    values, else by its shape; blue when it requires a gradient), one edge per op input, from
    the node that made it; an edge from an op with several outputs is labelled with the output's
    index. Nodes and edges are listed in data-flow order: a node before the ops that read it.
    It is the graph autograd recorded: an op none of whose inputs requires a gradient is not
    in it (its result is a leaf), so give the input ``requires_grad=True`` to see the ops that
    read only the input. The graph must still be there: draw it before ``backward()`` frees it
    (or pass ``retain_graph=True`` to backward).

    Args:
        tensor: the Tensor whose graph to draw (a leaf gives a graph of one node).
        params: optional mapping of names to tensors (e.g. ``dict(model.named_parameters())``,
            plus ``{"x": x}`` for the input) to label leaves.

    Returns:
        str, the DOT text (``digraph autograd { ... }``).

    Example::

        >>> w = minigrad.tensor(np.ones((3, 2)), requires_grad=True)
        >>> x = minigrad.tensor(np.ones((4, 3)))
        >>> print(minigrad.viz.to_dot((x @ w).sum(), params={"w": w}))   # doctest: +SKIP
        digraph autograd {
          ...
          leaf0 [label="(4, 3)", shape=ellipse, style=filled, fillcolor="#eeeeee"];
          leaf1 [label="w\\n(3, 2)", shape=ellipse, style=filled, fillcolor="#cfe2f3"];
          op0 [label="MatMul\\n(4, 2)"];
          leaf0 -> op0;
          leaf1 -> op0;
          op1 [label="Sum\\n()", penwidth=2];
          op0 -> op1;
        }
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dot: tensor must be a Tensor, got {type(tensor).__name__}")
    names = {id(t): name for name, t in (params or {}).items()}
    lines = ["digraph autograd {", "  rankdir=TB;",
             '  node [shape=box, fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=8];']
    leaves = {}

    def leaf(t):
        if id(t) not in leaves:
            node = leaves[id(t)] = f"leaf{len(leaves)}"
            label = _label(names[id(t)], _shape_text(t.shape)) if id(t) in names \
                else _label(_shape_text(t.shape))
            color = "#cfe2f3" if t.requires_grad else "#eeeeee"
            lines.append(f"  {node} [label={label}, shape=ellipse, style=filled, "
                         f'fillcolor="{color}"];')
        return leaves[id(t)]

    if tensor._creator is None:
        leaf(tensor)
        return "\n".join(lines + ["}"]) + "\n"
    ops = _ops_in_order(tensor)
    node_of = {fn: f"op{i}" for i, fn in enumerate(ops)}
    for fn in ops:
        sources = [(leaf(x), None) if x._creator is None else
                   (node_of[x._creator], x._output_index
                    if len(x._creator.output_meta) > 1 else None) for x in fn.inputs]
        shapes = " ".join(_shape_text(shape) for shape, _ in fn.output_meta)
        bold = ", penwidth=2" if fn is tensor._creator else ""
        lines.append(f"  {node_of[fn]} [label={_label(type(fn).__name__, shapes)}{bold}];")
        for source, index in sources:
            label = "" if index is None else f" [label={_label(str(index))}]"
            lines.append(f"  {source} -> {node_of[fn]}{label};")
    return "\n".join(lines + ["}"]) + "\n"


def render(tensor, path, format="svg", params=None):
    """Draw the autograd graph of ``tensor`` (see ``to_dot``) into the file ``path`` with
    Graphviz's ``dot`` program.

    Args:
        tensor: the Tensor whose graph to draw.
        path: the file to write.
        format: any output format of ``dot``: ``"svg"``, ``"png"``, ``"pdf"``, ...
        params: optional mapping of names to tensors to label leaves (see ``to_dot``).

    Returns:
        ``path``.

    Raises:
        RuntimeError: when ``dot`` is not installed (the message says how to install it), or
            when it fails.

    Example::

        y = block(x)
        minigrad.viz.render(y, "inception.svg", params=dict(block.named_parameters()))
    """
    text = to_dot(tensor, params)
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError(f"render: {INSTALL_HINT}")
    result = subprocess.run([dot, f"-T{format}", "-o", os.fspath(path)], input=text,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"render: dot -T{format} failed: {result.stderr.strip()}")
    return path
