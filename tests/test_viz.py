"""minigrad.viz: the DOT text of small autograd graphs, node by node and edge by edge (no
Graphviz needed), and render's behaviour with and without Graphviz's ``dot``."""
import re
import shutil

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, viz


def parse(dot):
    """({node id: label lines}, [(source, target, edge label or None)]) in text order, after
    checking that every edge's nodes are declared before it (data-flow order)."""
    nodes, edges = {}, []
    for line in dot.splitlines():
        node = re.match(r'\s+(\w+) \[label="(.*?)"', line)
        edge = re.match(r'\s+(\w+) -> (\w+)(?: \[label="(.*)"\])?;', line)
        if node:
            nodes[node[1]] = node[2].split("\\n")
        elif edge:
            assert edge[1] in nodes and edge[2] in nodes, f"edge before its nodes: {line}"
            edges.append((edge[1], edge[2], edge[3]))
    return nodes, edges


def test_matmul_then_sum():
    w = mg.tensor(np.ones((3, 2)), requires_grad=True)
    x = mg.tensor(np.ones((4, 3)))
    dot = viz.to_dot((x @ w).sum(), params={"w": w})
    assert dot.startswith("digraph autograd {") and dot.rstrip().endswith("}")
    nodes, edges = parse(dot)
    assert nodes == {"leaf0": ["(4, 3)"], "leaf1": ["w", "(3, 2)"], "op0": ["MatMul", "(4, 2)"],
                     "op1": ["Sum", "()"]}
    assert edges == [("leaf0", "op0", None), ("leaf1", "op0", None), ("op0", "op1", None)]
    # leaves that need a gradient are coloured, the others grey; the result is bold
    assert re.search(r'leaf1 .*fillcolor="#cfe2f3"', dot)
    assert re.search(r'leaf0 .*fillcolor="#eeeeee"', dot)
    assert re.search(r"op1 .*penwidth=2", dot)


def test_a_tensor_used_twice_is_one_node_with_two_edges():
    x = mg.tensor(np.ones(3), requires_grad=True)
    y = x * x + x
    nodes, edges = parse(viz.to_dot(y, params={"x": x}))
    assert nodes == {"leaf0": ["x", "(3,)"], "op0": ["Mul", "(3,)"], "op1": ["Add", "(3,)"]}
    assert edges == [("leaf0", "op0", None), ("leaf0", "op0", None), ("op0", "op1", None),
                     ("leaf0", "op1", None)]


def test_an_op_with_several_outputs_labels_its_edges():
    x = mg.tensor(np.ones((2, 5)), requires_grad=True)
    a, b = mg.split(x, [2, 3], axis=1)
    nodes, edges = parse(viz.to_dot(mg.cat([b, a], axis=1)))
    assert nodes["op0"] == ["Split", "(2, 2) (2, 3)"]
    assert nodes["op1"] == ["Concat", "(2, 5)"]
    assert edges == [("leaf0", "op0", None), ("op0", "op1", "1"), ("op0", "op1", "0")]


def test_ops_come_after_the_ops_that_feed_them():
    x = mg.tensor(np.ones((2, 3)), requires_grad=True)
    h = x.exp()
    y = (h * h.sum(axis=1, keepdims=True)).log() - h
    nodes, edges = parse(viz.to_dot(y))
    order = list(nodes)
    for source, target, _ in edges:
        assert order.index(source) < order.index(target)
    assert [nodes[n][0] for n in order if n.startswith("op")] == ["Exp", "Sum", "Mul", "Log",
                                                                   "Sub"]


def test_an_inception_block():
    block = nn.Inception(8, 4, 3, 6, 2, 5, 7, norm="batch")
    x = mg.tensor(np.zeros((1, 8, 6, 6), np.float32), requires_grad=True)
    nodes, edges = parse(viz.to_dot(block(x), params={"x": x, **dict(block.named_parameters())}))
    ops = [label[0] for node, label in nodes.items() if node.startswith("op")]
    # the three 1×1 convs of x as one: their weights joined (Concat), the output split
    assert sorted(ops) == sorted(["Conv2d"] * 4 + ["BatchNorm"] * 6 + ["ReLU"] * 6 +
                                 ["MaxPool2d", "Concat", "Concat", "Split"])
    leaves = {label[0] for node, label in nodes.items() if node.startswith("leaf")}
    assert leaves == {"x"} | {name for name, _ in block.named_parameters()}
    assert nodes[f"op{len(ops) - 1}"] == ["Concat", "(1, 22, 6, 6)"]
    # conv, weight cat, bn, relu, split, pool, cat inputs
    assert len(edges) == 4 * 2 + 3 + 6 * 3 + 6 + 1 + 1 + 4


def test_ops_on_tensors_without_gradient_are_not_in_the_graph():
    w = mg.tensor(np.ones(3), requires_grad=True)
    x = mg.tensor(np.ones(3))
    nodes, edges = parse(viz.to_dot(x.exp() * w, params={"w": w}))
    assert nodes == {"leaf0": ["(3,)"], "leaf1": ["w", "(3,)"], "op0": ["Mul", "(3,)"]}


def test_a_leaf_alone():
    x = mg.tensor(np.ones((2, 2)))
    assert parse(viz.to_dot(x, params={"x": x})) == ({"leaf0": ["x", "(2, 2)"]}, [])


def test_a_freed_graph_is_an_error_and_retain_graph_keeps_it():
    x = mg.tensor(np.ones(3), requires_grad=True)
    y = (x * 2.0).sum()
    y.backward(retain_graph=True)
    assert len(parse(viz.to_dot(y))[0]) == 4
    y.backward()
    with pytest.raises(ValueError, match="retain_graph=True"):
        viz.to_dot(y)


def test_to_dot_takes_a_tensor():
    with pytest.raises(TypeError, match="to_dot: tensor must be a Tensor, got ndarray"):
        viz.to_dot(np.ones(3))


def test_render_without_graphviz_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    x = mg.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        viz.render(x * 2.0, tmp_path / "g.svg")
    assert not (tmp_path / "g.svg").exists()


@pytest.mark.skipif(shutil.which("dot") is None,
                    reason="Graphviz's dot is not installed (apt-get install graphviz)")
def test_render_writes_the_picture(tmp_path):
    x = mg.tensor(np.ones(3), requires_grad=True)
    path = tmp_path / "g.svg"
    assert viz.render((x * 2.0).sum(), path, params={"x": x}) == path
    svg = path.read_text()
    assert "<svg" in svg and "Mul" in svg and ">x<" in svg
    with pytest.raises(RuntimeError, match="dot -Tnonsense failed"):
        viz.render(x * 2.0, tmp_path / "g.bad", format="nonsense")
