"""Tree pooling (Lee, Gallagher & Tu, 2016): ``F.tree_pool2d`` and ``nn.TreePool2d``.

Checked against the numpy recursion of tests/helpers/reference.py (forward and the
vector-Jacobian product, float32 and float64, depths 2 and 3), by gradcheck in float64 for the
input and both filter stacks, for bitwise equality across thread counts, on bad arguments, and
by a hypothesis fuzz test like tests/test_fuzz_kernels.py's.
"""
import numpy as np
import pytest

import minigrad
import minigrad.nn.functional as F
from minigrad import nn
from minigrad._kernels import tree_pool as kernels

from helpers import reference as R

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, strategies as st  # noqa: E402

TOLERANCE = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}
LEAVES = {2: 2, 3: 4}


@pytest.fixture(autouse=True)
def _restore_thread_count():
    before = minigrad.get_num_threads()
    yield
    minigrad.set_num_threads(before)


def _weights(rng, depth, kernel, dtype=np.float64):
    leaves = LEAVES[depth]
    return (rng.standard_normal((leaves,) + kernel).astype(dtype),
            rng.standard_normal((leaves - 1,) + kernel).astype(dtype))


def _tensors(*arrays):
    return [minigrad.tensor(a, requires_grad=True) for a in arrays]


CASES = [  # (shape, kernel, stride)
    ((2, 3, 8, 8), (2, 2), (2, 2)),      # the usual 2×2/2, disjoint windows
    ((2, 3, 9, 10), (3, 3), (2, 2)),     # overlapping windows, leftover row and column
    ((1, 2, 7, 9), (3, 2), (1, 2)),      # rectangular kernel, stride 1 along the height
    ((1, 1, 8, 8), (2, 3), (3, 1)),      # stride larger than the kernel: uncovered cells
    ((2, 1, 5, 4), (5, 4), (1, 1)),      # one window covering the whole plane
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("depth", [2, 3])
@pytest.mark.parametrize("shape,kernel,stride", CASES)
def test_forward_and_backward_match_reference(shape, kernel, stride, depth, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    leaves, gates = _weights(rng, depth, kernel, dtype)
    xt, lt, gt = _tensors(x, leaves, gates)
    y = F.tree_pool2d(xt, lt, gt, kernel, stride)
    gy = rng.standard_normal(y.shape)
    expected, gx, g_leaves, g_gates = R.tree_pool2d(x, leaves, gates, kernel, stride, gy)
    assert y.shape == expected.shape and y.dtype == dtype
    np.testing.assert_allclose(y.data, expected, **TOLERANCE[dtype])
    y.backward(gy.astype(dtype))
    for got, want, name in [(xt.grad, gx, "x"), (lt.grad, g_leaves, "leaf_weight"),
                            (gt.grad, g_gates, "gate_weight")]:
        assert got.dtype == dtype, name
        np.testing.assert_allclose(got, want, err_msg=name, **TOLERANCE[dtype])


def test_stride_defaults_to_kernel_and_unbatched_input_works():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 9, 8))
    leaves, gates = _weights(rng, 2, (3, 2))
    y = F.tree_pool2d(x, leaves, gates, (3, 2))
    assert y.shape == (3, 3, 4)
    np.testing.assert_allclose(y.data, R.tree_pool2d(x[None], leaves, gates, (3, 2), (3, 2))[0],
                               rtol=1e-12)


def test_equal_leaves_make_the_gate_irrelevant_and_average_leaves_give_average_pooling():
    """σ·f + (1 − σ)·f = f whatever the gate: average filters give avg_pool2d, and the gate's
    gradient is exactly zero."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 8, 8))
    leaves = np.full((2, 2, 2), 0.25)       # depth 2: both children are the same dot product
    xt, lt, gt = _tensors(x, leaves, rng.standard_normal((1, 2, 2)))
    y = F.tree_pool2d(xt, lt, gt, 2)
    np.testing.assert_allclose(y.data, F.avg_pool2d(x, 2).data, rtol=1e-12, atol=1e-15)
    y.sum().backward()
    np.testing.assert_array_equal(gt.grad, 0.0)


def test_saturated_gates_pick_one_leaf():
    """A large positive gate response selects the left child, a large negative one the right."""
    rng = np.random.default_rng(3)
    x = np.abs(rng.standard_normal((1, 2, 6, 6))) + 0.5     # positive windows
    leaves = rng.standard_normal((4, 2, 2))
    gates = np.stack([np.full((2, 2), -100.0), np.full((2, 2), 100.0), np.full((2, 2), 100.0)])
    y = F.tree_pool2d(x, leaves, gates, 2)
    # root → right child (gate 2) → its left leaf, leaf 2
    np.testing.assert_allclose(y.data, F.conv2d(x.reshape(2, 1, 6, 6), leaves[2:3, None],
                                                stride=2).data.reshape(1, 2, 3, 3), rtol=1e-12)


@pytest.mark.parametrize("depth", [2, 3])
@pytest.mark.parametrize("kernel,stride", [((2, 2), (2, 2)), ((3, 2), (1, 2)), ((2, 2), (3, 3))])
def test_gradcheck_input_leaves_and_gates(depth, kernel, stride):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 2, 7, 7))
    leaves, gates = _weights(rng, depth, kernel)
    minigrad.gradcheck(lambda a, v, w: F.tree_pool2d(a, v, w, kernel, stride),
                       _tensors(x, leaves, gates))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("depth", [2, 3])
def test_bitwise_identical_for_any_thread_count(depth, dtype):
    # 4·8·32·32 = 32768 input elements: above the kernels' serial cutoff (16384)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 8, 32, 32)).astype(dtype)
    leaves, gates = _weights(rng, depth, (3, 3), dtype)
    gy = rng.standard_normal((4, 8, 15, 15)).astype(dtype)
    results = {}
    for threads in (1, 2, 3, 8):
        minigrad.set_num_threads(threads)
        xt, lt, gt = _tensors(x, leaves, gates)
        y = F.tree_pool2d(xt, lt, gt, 3, 2)
        y.backward(gy)
        results[threads] = [y.data, xt.grad, lt.grad, gt.grad]
    for threads in (2, 3, 8):
        for name, a, b in zip(["y", "x grad", "leaf grad", "gate grad"], results[1],
                              results[threads]):
            np.testing.assert_array_equal(a, b, err_msg=f"{name}, {threads} threads vs 1")


def test_forward_and_backward_thread_counts_may_differ():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 8, 32, 32))
    leaves, gates = _weights(rng, 2, (2, 2))
    grads = []
    for forward, backward in [(1, 1), (3, 2), (2, 8)]:
        minigrad.set_num_threads(forward)
        xt, lt, gt = _tensors(x, leaves, gates)
        y = F.tree_pool2d(xt, lt, gt, 2)
        minigrad.set_num_threads(backward)
        (y * y).sum().backward()
        grads.append([xt.grad, lt.grad, gt.grad])
    for other in grads[1:]:
        for a, b in zip(grads[0], other):
            np.testing.assert_array_equal(a, b)


def test_weights_are_cast_to_the_input_dtype():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    leaves, gates = _weights(rng, 2, (2, 2))            # float64 weights
    lt, gt = _tensors(leaves, gates)
    y = F.tree_pool2d(x, lt, gt, 2)
    assert y.dtype == np.float32
    y.sum().backward()
    assert lt.grad.dtype == np.float64 and gt.grad.dtype == np.float64


@pytest.mark.parametrize("shape", [(0, 3, 8, 8), (2, 0, 8, 8)])
def test_empty_batch_or_channels_give_empty_output_and_zero_filter_gradients(shape):
    pool = nn.TreePool2d(2, depth=3).double()
    x = minigrad.tensor(np.zeros(shape), requires_grad=True)
    y = pool(x)
    assert y.shape == shape[:2] + (4, 4)
    y.sum().backward()
    assert x.grad.shape == shape
    np.testing.assert_array_equal(pool.leaf_weight.grad, 0.0)
    np.testing.assert_array_equal(pool.gate_weight.grad, 0.0)


# -- bad input -----------------------------------------------------------------------------------

X = np.zeros((2, 3, 6, 6), np.float32)
V = np.zeros((2, 2, 2), np.float32)
W = np.zeros((1, 2, 2), np.float32)


@pytest.mark.parametrize("args,error,match", [
    ((X, np.zeros((2, 3, 3), np.float32), W, 2), ValueError,
     r"leaf_weight must have shape .* kernel_size \(2, 2\), got shape \(2, 3, 3\)"),
    ((X, np.zeros((3, 2, 2), np.float32), W, 2), ValueError,
     r"leaf_weight .* got shape \(3, 2, 2\)"),
    ((X, np.zeros((2, 2), np.float32), W, 2), ValueError, r"leaf_weight .* got shape \(2, 2\)"),
    ((X, V, np.zeros((2, 2, 2), np.float32), 2), ValueError,
     r"gate_weight must have shape .* \(1, 2, 2\) for leaf_weight of shape \(2, 2, 2\), got "
     r"shape \(2, 2, 2\)"),
    ((X, np.zeros((4, 2, 2), np.float32), W, 2), ValueError, r"gate_weight .* \(3, 2, 2\)"),
    ((X, V, np.zeros((1, 3, 3), np.float32), 2), ValueError, r"gate_weight"),
    ((X, np.zeros((2, 7, 7), np.float32), np.zeros((1, 7, 7), np.float32), 7), ValueError,
     r"tree_pool2d"),
    ((X, V, W, 2, 0), ValueError, r"stride"),
    ((X, V, W, 2, -1), ValueError, r"stride"),
    ((X, V, W, 2, "a"), TypeError, r"stride"),
    ((X, V, W, 0), ValueError, r"kernel_size"),
    ((X.astype(np.int32), V, W, 2), TypeError, r"float32 or float64"),
    ((X, V.astype(np.int64), W, 2), TypeError, r"leaf_weight must be a floating-point"),
    ((X, V, W.astype(bool), 2), TypeError, r"gate_weight must be a floating-point"),
    ((X[0, 0], V, W, 2), ValueError, r"3-D \(C, H, W\) or 4-D"),
    ((X, "leaves", W, 2), (TypeError, ValueError), r"leaf_weight"),
])
def test_bad_arguments_raise_named_errors(args, error, match):
    with pytest.raises(error, match=match):
        F.tree_pool2d(*args)


def test_kernel_larger_than_input_names_the_sizes():
    with pytest.raises(ValueError, match=r"tree_pool2d:.*kernel"):
        F.tree_pool2d(np.zeros((1, 1, 3, 8)), np.zeros((2, 4, 4)), np.zeros((1, 4, 4)), 4)


def test_kernels_refuse_bad_thread_counts_inconsistent_shapes_and_small_scratch():
    x, filters = np.zeros((2, 6, 6)), np.zeros((3, 4))
    y = np.empty((2, 3, 3))
    scratch = np.empty((4, kernels.backward_scratch(3, 3, 6, 6)))
    with pytest.raises(ValueError, match="num_threads"):
        kernels.forward(x, filters, y, scratch, 2, 2, 2, 2, 0)
    with pytest.raises(ValueError, match="inconsistent shapes"):
        kernels.forward(x, filters, np.empty((2, 4, 3)), scratch, 2, 2, 2, 2, 1)
    with pytest.raises(ValueError, match="inconsistent shapes"):
        kernels.forward(x, np.zeros((2, 4)), y, scratch, 2, 2, 2, 2, 1)
    with pytest.raises(ValueError, match="do not match"):
        kernels.backward(x, filters, y, np.empty((2, 6, 6)), np.empty((2, 5)),
                         np.empty((3, 4)), scratch, 2, 2, 2, 2, 1)
    # a team of 4 (the planes hold more than the serial cutoff) needs 4 scratch rows
    big, big_y = np.zeros((2, 128, 128)), np.empty((2, 64, 64))
    with pytest.raises(ValueError, match="scratch"):
        kernels.forward(big, filters, big_y, np.empty((3, 1000)), 2, 2, 2, 2, 4)
    with pytest.raises(ValueError, match="scratch"):
        kernels.forward(big, filters, big_y, np.empty((4, 10)), 2, 2, 2, 2, 4)
    with pytest.raises(ValueError, match="scratch"):
        kernels.backward(big, filters, big_y, np.empty_like(big), np.empty((2, 12)),
                         np.empty((3, 4)), np.empty((4, kernels.forward_scratch(3, 64))),
                         2, 2, 2, 2, 4)


# -- the module ----------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [2, 3])
def test_module_owns_its_parameters(depth):
    pool = nn.TreePool2d((3, 2), depth=depth, rng=0)
    leaves = LEAVES[depth]
    assert [(name, p.shape) for name, p in pool.named_parameters()] == [
        ("leaf_weight", (leaves, 3, 2)), ("gate_weight", (leaves - 1, 3, 2))]
    assert pool.leaf_weight.dtype == np.float32
    # leaves near the average filter, different from each other; gates near 0
    np.testing.assert_allclose(pool.leaf_weight.data, 1 / 6, atol=0.1)
    assert not np.array_equal(pool.leaf_weight.data[0], pool.leaf_weight.data[1])
    assert np.abs(pool.gate_weight.data).max() < 0.1
    assert pool(np.ones((2, 3, 9, 8), np.float32)).shape == (2, 3, 3, 4)
    assert "depth=" in repr(pool)


def test_module_rejects_a_bad_depth():
    for depth in (1, 4, 2.0, True, [2]):
        with pytest.raises(ValueError, match="depth must be 2 or 3"):
            nn.TreePool2d(2, depth=depth)


def test_module_trains_with_sgd():
    """Regress a target made by a different tree: the loss falls in a few SGD steps and every
    parameter moves."""
    rng = np.random.default_rng(8)
    x = minigrad.tensor(rng.standard_normal((8, 4, 8, 8)).astype(np.float32))
    target_leaves, target_gates = _weights(rng, 2, (2, 2), np.float32)
    target = F.tree_pool2d(x, target_leaves, target_gates, 2).data
    pool = nn.TreePool2d(2, rng=1)
    start = [p.data.copy() for p in pool.parameters()]
    optimizer = minigrad.optim.SGD(pool.parameters(), lr=0.1)
    losses = []
    for _ in range(10):
        optimizer.zero_grad()
        loss = ((pool(x) - target) ** 2).mean()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.data))
    assert losses[-1] < 0.5 * losses[0], losses
    for before, p in zip(start, pool.parameters()):
        assert not np.array_equal(before, p.data)


@pytest.mark.parametrize("depth,kernel,stride,dynamic_size", [
    (2, 2, None, False), (3, (3, 2), (2, 1), False), (2, 3, 2, True)])
def test_onnx_export_matches_minigrad(depth, kernel, stride, dynamic_size, tmp_path):
    """Exported as standard ops (depthwise Conv per filter, Sigmoid, Mul, Add); onnxruntime gives
    minigrad's output, for another batch size, and another image size with dynamic_size."""
    pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    minigrad.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1),
                          nn.TreePool2d(kernel, stride, depth=depth, rng=1))
    rng = np.random.default_rng(9)
    # gates far enough from 0 that the exported gating is really exercised
    model[1].gate_weight.data[...] = rng.standard_normal(model[1].gate_weight.shape)
    minigrad.onnx.export(model, rng.standard_normal((2, 3, 11, 10)).astype(np.float32),
                         tmp_path / "m.onnx", dynamic_size=dynamic_size)
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"),
                                           providers=["CPUExecutionProvider"])
    shapes = [(2, 3, 11, 10), (5, 3, 11, 10)] + ([(1, 3, 16, 13)] if dynamic_size else [])
    for shape in shapes:
        x = rng.standard_normal(shape).astype(np.float32)
        with minigrad.no_grad():
            expected = model(x).data
        got = session.run(None, {"input": x})[0]
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


# -- fuzzing against the reference ---------------------------------------------------------------

@st.composite
def _axis(draw):
    """(size, kernel, stride) with at least one window; strides may exceed the input."""
    kernel = draw(st.integers(1, 4))
    return draw(st.integers(kernel, kernel + 6)), kernel, draw(st.integers(1, 5))


@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]),
       depth=st.sampled_from([2, 3]))
def test_fuzz_against_reference(data, dtype, depth):
    minigrad.set_num_threads(data.draw(st.sampled_from([1, 2, 3, 8, 16]), label="forward"))
    backward_threads = data.draw(st.sampled_from([1, 2, 3, 8, 16]), label="backward")
    (height, kh, sh), (width, kw, sw) = data.draw(_axis()), data.draw(_axis())
    n, c = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3))
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1), label="seed"))
    x = rng.standard_normal((n, c, height, width)).astype(dtype)
    leaves, gates = _weights(rng, depth, (kh, kw), dtype)
    if data.draw(st.booleans(), label="transposed input"):     # a non-contiguous view
        x = np.ascontiguousarray(x.swapaxes(-1, -2)).swapaxes(-1, -2)
    xt, lt, gt = _tensors(x, leaves, gates)
    unbatched = n == 1 and data.draw(st.booleans(), label="unbatched")
    y = F.tree_pool2d(xt[0] if unbatched else xt, lt, gt, (kh, kw), (sh, sw))
    gy = rng.standard_normal(y.shape)
    expected, gx, g_leaves, g_gates = R.tree_pool2d(
        x, leaves, gates, (kh, kw), (sh, sw), gy[None] if unbatched else gy)
    np.testing.assert_allclose(y.data, expected[0] if unbatched else expected,
                               **TOLERANCE[dtype])
    minigrad.set_num_threads(backward_threads)
    y.backward(gy.astype(dtype))
    for got, want, name in [(xt.grad, gx, "x"), (lt.grad, g_leaves, "leaf_weight"),
                            (gt.grad, g_gates, "gate_weight")]:
        np.testing.assert_allclose(got, want, err_msg=name, **TOLERANCE[dtype])
