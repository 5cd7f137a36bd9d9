"""minigrad.summary: per-layer output shapes, parameters and multiply-adds equal hand-computed
formulas (convolution with groups, dilation and stride; linear; batch norm; an Inception
block), the example networks' totals equal the sum of their parameters' sizes, and the pass
leaves the model as it was."""
import os
import re
import sys

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.summary import Row, Summary

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
sys.path.insert(0, EXAMPLES)


def conv_output(size, kernel, stride, padding, dilation):
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


@pytest.mark.parametrize("cin, cout, kernel, stride, padding, dilation, groups, bias", [
    (3, 8, 3, 1, 1, 1, 1, True),
    (4, 6, 5, 2, 2, 1, 1, False),
    (6, 9, 3, 1, 2, 2, 3, True),
    (8, 8, 3, 2, 1, 1, 8, False),            # depthwise
    (4, 10, 1, 1, 0, 1, 2, True),
])
def test_conv_counts(cin, cout, kernel, stride, padding, dilation, groups, bias):
    model = nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding, dilation, groups, bias))
    s = mg.summary(model, (2, cin, 13, 11))
    ho, wo = (conv_output(n, kernel, stride, padding, dilation) for n in (13, 11))
    params = cout * (cin // groups) * kernel * kernel + (cout if bias else 0)
    macs = cout * ho * wo * (cin // groups) * kernel * kernel     # per sample
    assert s.rows == [Row("0", "Conv2d", 1, (2, cout, ho, wo), params, params, macs)]
    assert (s.total_params, s.trainable_params, s.total_macs) == (params, params, macs)


def test_linear_counts_for_two_and_three_dimensional_input():
    s = mg.summary(nn.Sequential(nn.Linear(20, 7)), (4, 20))
    assert (s.total_params, s.total_macs) == (20 * 7 + 7, 20 * 7)
    s = mg.summary(nn.Sequential(nn.Linear(20, 7, bias=False)), (4, 5, 20))
    assert (s.total_params, s.total_macs) == (20 * 7, 5 * 20 * 7)
    assert s.rows[0].output_shape == (4, 5, 7)


def test_batch_norm_counts_weight_and_bias_but_not_its_statistics():
    s = mg.summary(nn.Sequential(nn.BatchNorm2d(6)), (3, 6, 5, 4))
    assert (s.total_params, s.total_macs) == (2 * 6, 6 * 5 * 4)     # one multiply-add per value
    s = mg.summary(nn.Sequential(nn.BatchNorm2d(6, affine=False)), (3, 6, 5, 4))
    assert (s.total_params, s.total_macs) == (0, 6 * 5 * 4)


def test_inception_block():
    cin, c1, c3r, c3, c5r, c5, pool = 10, 4, 3, 6, 2, 5, 7
    h, w = 9, 8
    block = nn.Inception(cin, c1, c3r, c3, c5r, c5, pool, norm="batch")
    s = mg.summary(nn.Sequential(block), (2, cin, h, w))
    convs = [(cin, c1, 1), (cin, c3r, 1), (c3r, c3, 3), (cin, c5r, 1), (c5r, c5, 5),
             (cin, pool, 1)]
    norms = [cout for _, cout, _ in convs]
    params = sum(i * o * k * k for i, o, k in convs) + sum(2 * c for c in norms)
    macs = h * w * (sum(i * o * k * k for i, o, k in convs) + sum(norms))
    assert (s.total_params, s.total_macs) == (params, macs)
    assert s.macs_by_op == {"Conv2d": h * w * sum(i * o * k * k for i, o, k in convs),
                            "BatchNorm": h * w * sum(norms)}
    by_name = {row.name: row for row in s.rows}
    assert by_name["0"].output_shape == (2, c1 + c3 + c5 + pool, h, w)
    # the branches' 3×3 conv runs as a module (inside branch2's second ConvNormReLU); the
    # three 1×1 convs of the input run as one functional conv of the block's
    assert by_name["0.branch2.1.conv"] == Row("0.branch2.1.conv", "Conv2d", 3, (2, c3, h, w),
                                              c3r * c3 * 9, c3r * c3 * 9, h * w * c3r * c3 * 9)
    assert by_name["0.branch2.0.bn"].output_shape == (2, c3r, h, w)
    assert "0.branch2.0.conv" not in by_name
    # a module's numbers are those of everything it ran: its children's and its own ops
    children = [r for r in s.rows if r.depth == 2]
    assert by_name["0"].macs == sum(r.macs for r in children) + h * w * cin * (c1 + c3r + c5r)


@pytest.mark.parametrize("example, shape", [("fcn_mnist", (1, 1, 28, 28)),
                                            ("inception_cifar", (2, 3, 32, 32))])
def test_example_totals_equal_the_sum_of_their_parameters(example, shape):
    module = __import__(example)
    model = module.build_model()
    s = mg.summary(model, shape)
    assert s.total_params == s.trainable_params == sum(p.size for p in model.parameters())
    assert s.param_bytes == sum(p.data.nbytes for p in model.parameters())
    assert s.output_shape == (shape[0], 10)
    # the model's children's rows add up to the totals
    children = [r for r in s.rows if r.depth == 1]
    assert sum(r.params for r in children) == s.total_params
    assert sum(r.macs for r in children) == s.total_macs


class TwoHeads(nn.Module):
    """A user-written module: a shared layer called twice, a functional op, a frozen layer."""

    def __init__(self):
        super().__init__()
        self.shared = nn.Linear(4, 4)
        self.frozen = nn.Linear(4, 3).requires_grad_(False)

    def forward(self, x):
        h = self.shared(self.shared(x))
        return self.frozen(h) @ mg.tensor(np.ones((3, 2), np.float32))


def test_a_user_module_calls_rows_functional_ops_and_frozen_parameters():
    s = mg.summary(TwoHeads(), (5, 4))
    assert [(r.name, r.type, r.output_shape) for r in s.rows] == [
        ("shared", "Linear", (5, 4)), ("shared", "Linear", (5, 4)), ("frozen", "Linear", (5, 3))]
    assert s.total_params == 20 + 15 and s.trainable_params == 20
    assert s.total_macs == 16 + 16 + 12 + 3 * 2        # the matmul in forward counts too
    assert s.rows[2].trainable_params == 0


def test_the_pass_changes_nothing_in_the_model():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Dropout(0.5))
    model[1].eval()
    state = {k: v.copy() for k, v in model.state_dict().items()}
    mg.summary(model, (4, 1, 6, 6))
    assert [m.training for m in model.modules()] == [True, True, False, True]
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, state[key])
    assert all(p.grad is None for p in model.parameters())


def test_table_text():
    model = nn.Sequential(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()), nn.GlobalAvgPool2d(),
                          nn.Linear(4, 10))
    s = mg.summary(model, (1, 1, 28, 28))
    assert isinstance(s, Summary)
    text = str(s)
    lines = text.splitlines()
    assert lines[2].split() == ["Module", "Type", "Output", "shape", "Params", "Mult-adds"]
    assert re.search(r"^  0\.0 +Conv2d +\(1, 4, 26, 26\) +40 +24,336$", text, re.M)
    assert f"Parameters: {s.total_params:,} ({s.trainable_params:,} trainable, 0 frozen)" in text
    assert f"Multiply-adds per sample: {s.total_macs:,}" in text
    assert "Activations of one forward pass:" in text
    shallow = s.table(max_depth=1)
    assert not re.search(r"^ +0\.0 ", shallow, re.M) and "GlobalAvgPool2d" in shallow
    assert repr(s) == text


def test_activation_memory_counts_every_op_output():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
    s = mg.summary(model, (2, 1, 10, 10))
    assert s.activation_bytes == 2 * (2 * 4 * 8 * 8 * 4)             # conv and relu outputs
    assert mg.summary(model.double(), (2, 1, 10, 10), dtype=np.float64).activation_bytes == \
        2 * s.activation_bytes


@pytest.mark.parametrize("depth", [2, 3])
def test_tree_pooling_counts_every_filter(depth):
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.TreePool2d(2, depth=depth))
    leaves = 2 ** (depth - 1)
    # conv: 4 maps of 8×8, 9 taps each; tree: 4 maps of 4×4, (2L − 1) filters of 2×2
    assert mg.summary(model, (1, 1, 10, 10)).total_macs == 4 * 64 * 9 + 4 * 16 * (2 * leaves - 1) * 4
