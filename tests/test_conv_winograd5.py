"""The 5×5 forward by Winograd F(4×4, 5×5) (minigrad/ops/conv_winograd5.py): its matrices, the
forward against the float64 reference and PyTorch, float32 rounding, thread counts, the rule
that gives it a layer (the backward keeping its own algorithm) and the kernel's argument
checks."""
from fractions import Fraction

import numpy as np
import pytest

import minigrad
import minigrad.nn.functional as F
from minigrad._kernels import winograd as kernels
from minigrad.ops import conv as conv_module
from minigrad.ops import conv_strided_winograd, conv_winograd, conv_winograd5

from helpers import reference as R

RNG = np.random.default_rng(11)
needs_kernel = pytest.mark.skipif(not kernels.FORWARD5,
                                  reason="F(4×4, 5×5) runs on the AVX-512 products")

# the 1-D Bᵀ and Aᵀ of winograd_1d.h, written out here from their comment
BT = np.array([[1, 0, -21 / 4, 0, 21 / 4, 0, -1, 0], [0, 1, 1, -17 / 4, -17 / 4, 1, 1, 0],
               [0, -1, 1, 17 / 4, -17 / 4, -1, 1, 0], [0, 1 / 2, 1 / 4, -5 / 2, -5 / 4, 2, 1, 0],
               [0, -1 / 2, 1 / 4, 5 / 2, -5 / 4, -2, 1, 0], [0, 2, 4, -5 / 2, -5, 1 / 2, 1, 0],
               [0, -2, 4, 5 / 2, -5, -1 / 2, 1, 0], [0, -1, 0, 21 / 4, 0, -21 / 4, 0, 1]])
AT = np.array([[1, 1, 1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 1 / 2, -1 / 2, 0],
               [0, 1, 1, 4, 4, 1 / 4, 1 / 4, 0], [0, 1, -1, 8, -8, 1 / 8, -1 / 8, 1]])


def _forward(x, w, b, padding):
    with minigrad.no_grad():
        return F.conv2d(minigrad.tensor(x), minigrad.tensor(w),
                        None if b is None else minigrad.tensor(b), padding=padding).data


def _layout(x, w, padding):
    padding = tuple((p, p) for p in padding)
    return conv_module._layout(x.shape, w.shape, (1, 1), padding, (1, 1), 1, x.itemsize, True,
                               conv_winograd.USE_WINOGRAD, conv_strided_winograd.USE,
                               conv_module.CHUNK_BYTES)


@pytest.fixture
def anywhere(monkeypatch):
    """The rule's bounds lifted, so that small shapes take F(4×4, 5×5)."""
    for name, value in (("MIN_IMAGES", 1), ("MIN_CHANNELS", 1), ("MIN_OUT_CHANNELS", 1),
                        ("MIN_POSITIONS", 1), ("MIN_TILE_USE", 0), ("GRAD_WEIGHT_MIN_DEPTH", 0)):
        monkeypatch.setattr(conv_winograd5, name, value)
    conv_module._layout.cache_clear()
    yield
    conv_module._layout.cache_clear()


def test_matrices_compute_a_5_tap_correlation():
    """Aᵀ [(G g) ⊙ (Bᵀ d)] is the 4 outputs of a 5-tap correlation, in exact arithmetic's
    float64 rounding, and nested in 2-D the 4×4 block of a 5×5 one."""
    d, g = RNG.standard_normal(8), RNG.standard_normal(5)
    expected = np.array([d[i:i + 5] @ g for i in range(4)])
    np.testing.assert_allclose(AT @ ((conv_winograd5.G @ g) * (BT @ d)), expected, atol=1e-12)
    d, g = RNG.standard_normal((8, 8)), RNG.standard_normal((5, 5))
    u = conv_winograd5.G @ g @ conv_winograd5.G.T
    y = AT @ (u * (BT @ d @ BT.T)) @ AT.T
    expected = np.array([[np.sum(d[i:i + 5, j:j + 5] * g) for j in range(4)] for i in range(4)])
    np.testing.assert_allclose(y, expected, atol=1e-11)
    # G's entries are the fractions its comment gives (a typo in one would pass the sums
    # above only by luck)
    assert Fraction(conv_winograd5.G[3, 0]).limit_denominator(100) == Fraction(1, 90)


# (x shape, out channels, padding): two lane groups and a short last one, a last group of
# one image, odd tile counts (the last panel half empty), outputs that leave tile rows and
# columns partly outside, padding from 0 to 4 and unequal along the axes, planes narrower and
# wider than 16
SHAPES = [
    ((17, 3, 8, 8), 5, (2, 2)),
    ((33, 2, 12, 12), 3, (2, 2)),
    ((5, 4, 9, 11), 6, (1, 3)),
    ((16, 3, 13, 20), 4, (0, 0)),
    ((2, 2, 5, 37), 3, (4, 3)),
    ((3, 1, 1, 2), 2, (2, 2)),
]


@needs_kernel
@pytest.mark.parametrize("x_shape, out_channels, padding", SHAPES)
@pytest.mark.parametrize("bias", [True, False])
def test_forward_matches_reference(anywhere, x_shape, out_channels, padding, bias):
    """Against the float64 plain-loop reference, within float32's rounding of sums of 25·C
    products (F(4, 5)'s error is about one and a half times the 3×3 blocks')."""
    x = RNG.standard_normal(x_shape).astype(np.float32)
    w = RNG.standard_normal((out_channels, x_shape[1], 5, 5)).astype(np.float32)
    b = RNG.standard_normal(out_channels).astype(np.float32) if bias else None
    assert isinstance(_layout(x, w, padding)["winograd"], conv_winograd5.Winograd5Plan)
    y = _forward(x, w, b, padding)
    exact = R.conv2d(x.astype(np.float64), w.astype(np.float64),
                     None if b is None else b.astype(np.float64), padding=padding)
    assert y.dtype == np.float32 and y.shape == exact.shape
    assert np.abs(y - exact).max() <= 4e-6 * np.abs(exact).max() * np.sqrt(25 * x_shape[1])


@needs_kernel
@pytest.mark.parametrize("x_shape, out_channels, padding", SHAPES)
def test_gradients_match_reference(anywhere, x_shape, out_channels, padding):
    """The input gradient as the forward of gy by the turned filters (``Conv2d.backward``),
    padded by 4 − p, and the weight gradient Gᵀ [Σ (A dY Aᵀ) ⊙ V] G, against the float64
    reference."""
    x = RNG.standard_normal(x_shape).astype(np.float32)
    w = RNG.standard_normal((out_channels, x_shape[1], 5, 5)).astype(np.float32)
    b = RNG.standard_normal(out_channels).astype(np.float32)
    layout = _layout(x, w, padding)
    assert isinstance(layout["winograd5_grad_input"], conv_winograd5.Winograd5Plan)
    assert isinstance(layout["winograd5_grad_weight"], conv_winograd5.Winograd5Plan)
    tensors = [minigrad.tensor(a, requires_grad=True) for a in (x, w, b)]
    y = F.conv2d(*tensors, padding=padding)
    gy = RNG.standard_normal(y.shape).astype(np.float32)
    y.backward(minigrad.tensor(gy))
    exact = R.conv2d_vjp(x, w, gy.astype(np.float64), padding=padding)
    for actual, expected, depth in zip((t.grad for t in tensors), exact,
                                       (25 * out_channels, np.prod(gy.shape[2:]) * len(x), 1)):
        assert actual.dtype == np.float32 and actual.shape == expected.shape
        assert np.abs(actual - expected).max() <= 4e-6 * np.abs(expected).max() * np.sqrt(depth)


@needs_kernel
def test_output_blocks_and_thread_counts(anywhere, monkeypatch):
    """Output channels in several blocks (``OUT_BLOCK``) give the one-block result, and every
    thread count the same bits: each group is one thread's, and the weight gradient's shares
    are fixed by the batch."""
    x = RNG.standard_normal((40, 6, 10, 10)).astype(np.float32)
    w = RNG.standard_normal((21, 6, 5, 5)).astype(np.float32)
    b = RNG.standard_normal(21).astype(np.float32)
    plan = conv_winograd5.Winograd5Plan(x.shape, w.shape, ((2, 2), (2, 2)))
    gy = RNG.standard_normal((40, 21, 10, 10)).astype(np.float32)
    before = minigrad.get_num_threads()
    try:
        minigrad.set_num_threads(1)
        single = _forward(x, w, b, 2)
        single_gw = plan.grad_weight(x, gy)
        monkeypatch.setattr(conv_winograd5, "OUT_BLOCK", 8)
        for threads in (2, 3):
            minigrad.set_num_threads(threads)
            np.testing.assert_array_equal(_forward(x, w, b, 2), single)
            np.testing.assert_array_equal(plan.grad_weight(x, gy), single_gw)
    finally:
        minigrad.set_num_threads(before)


@needs_kernel
def test_matches_torch_where_the_rules_choose_it():
    """The inception 5×5 branch's shape (8→16 on 16×16, batch 64) by the default rules, in
    float32 against PyTorch; its gradients from the backward's own algorithm."""
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((64, 8, 16, 16)).astype(np.float32)
    w = (RNG.standard_normal((16, 8, 5, 5)) * 0.1).astype(np.float32)
    b = RNG.standard_normal(16).astype(np.float32)
    conv_module._layout.cache_clear()
    layout = _layout(x, w, (2, 2))
    assert isinstance(layout["winograd"], conv_winograd5.Winograd5Plan)
    assert not isinstance(layout["winograd_backward"], conv_winograd5.Winograd5Plan)
    assert isinstance(layout["winograd5_grad_input"], conv_winograd5.Winograd5Plan)
    tensors = [minigrad.tensor(a, requires_grad=True) for a in (x, w, b)]
    y = F.conv2d(*tensors, padding=2)
    gy = RNG.standard_normal(y.shape).astype(np.float32)
    y.backward(minigrad.tensor(gy))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, padding=2)
    ty.backward(torch.tensor(gy))
    for mine, theirs in zip((y.data, *(t.grad for t in tensors)),
                            (ty.detach(), tx.grad, tw.grad, tb.grad)):
        theirs = theirs.numpy()
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-5 * np.abs(theirs).max())


@needs_kernel
def test_all_passes_match_torch_where_the_rules_choose_them():
    """32→64 on 16×16, batch 64: the forward and both gradients on F(4×4, 5×5) by the
    default rules, in float32 against PyTorch (the weight gradient sums 16,384 products a
    weight: its bound grows with that depth)."""
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((64, 32, 16, 16)).astype(np.float32)
    w = (RNG.standard_normal((64, 32, 5, 5)) * 0.05).astype(np.float32)
    conv_module._layout.cache_clear()
    layout = _layout(x, w, (2, 2))
    for key in ("winograd", "winograd5_grad_input", "winograd5_grad_weight"):
        assert isinstance(layout[key], conv_winograd5.Winograd5Plan)
    tensors = [minigrad.tensor(a, requires_grad=True) for a in (x, w)]
    y = F.conv2d(*tensors, padding=2)
    gy = RNG.standard_normal(y.shape).astype(np.float32)
    y.backward(minigrad.tensor(gy))
    tx, tw = (torch.tensor(a, requires_grad=True) for a in (x, w))
    ty = torch.nn.functional.conv2d(tx, tw, padding=2)
    ty.backward(torch.tensor(gy))
    for mine, theirs, depth in zip((y.data, *(t.grad for t in tensors)),
                                   (ty.detach(), tx.grad, tw.grad), (800, 1600, 16384)):
        theirs = theirs.numpy()
        assert np.abs(mine - theirs).max() <= 4e-6 * np.abs(theirs).max() * np.sqrt(depth)


def test_rule():
    """F(4×4, 5×5) for float32 5×5 stride-1 ungrouped layers within the measured bounds."""
    def takes(kernel=(5, 5), stride=(1, 1), dilation=(1, 1), groups=1, channels=8,
              out_channels=16, n=64, size=16, itemsize=4):
        return conv_winograd5.takes(kernel, stride, dilation, groups, channels, out_channels, n,
                                    size, size, itemsize)
    assert takes() == kernels.FORWARD5
    assert not takes(kernel=(3, 3)) and not takes(kernel=(5, 3))
    assert not takes(stride=(2, 2)) and not takes(dilation=(2, 2)) and not takes(groups=2)
    assert not takes(itemsize=8)
    assert not takes(n=conv_winograd5.MIN_IMAGES - 1)
    assert not takes(channels=conv_winograd5.MIN_CHANNELS - 1)
    assert not takes(out_channels=conv_winograd5.MIN_OUT_CHANNELS - 1)
    assert not takes(size=7)            # 49 outputs, four tiles
    assert not takes(size=10)           # nine tiles for 100 outputs
    assert takes(size=8) == takes(size=32) == kernels.FORWARD5
    assert conv_winograd5.takes_grad_weight(16, 32) and conv_winograd5.takes_grad_weight(32, 64)
    assert not conv_winograd5.takes_grad_weight(8, 16) and not conv_winograd5.takes_grad_weight(4, 16)


def test_rule_off_for_forced_algorithms(monkeypatch):
    """A forced algorithm (the tests' and the benchmarks' switches) keeps its forward."""
    x = np.zeros((64, 8, 16, 16), np.float32)
    w = np.zeros((16, 8, 5, 5), np.float32)
    monkeypatch.setattr(conv_winograd, "USE_WINOGRAD", False)
    conv_module._layout.cache_clear()
    try:
        assert not isinstance(_layout(x, w, (2, 2))["winograd"],
                              conv_winograd5.Winograd5Plan)
    finally:
        conv_module._layout.cache_clear()


@needs_kernel
def test_kernel_checks_its_arguments():
    x = np.zeros((3, 2, 8, 8), np.float32)
    y = np.zeros((3, 4, 8, 8), np.float32)
    u = np.zeros((64, 4, 2), np.float32)
    bias = np.empty(0, np.float32)
    scratch = np.zeros((2, kernels.scratch5_length(2, 2)), np.float32)
    work = np.zeros((2, kernels.by_group5_length(2, 4, 2, 2, 16)), np.float32)
    kernels.forward5_by_group(x, u, y, bias, 2, 2, 4, 16, scratch, work, 2)
    with pytest.raises(ValueError, match="do not match"):
        kernels.forward5_by_group(x, np.zeros((64, 3, 2), np.float32), y, bias, 2, 2, 4, 16,
                                  scratch, work, 2)
    with pytest.raises(ValueError, match="do not match"):
        kernels.forward5_by_group(x, u[:63], y, bias, 2, 2, 4, 16, scratch, work, 2)
    with pytest.raises(ValueError, match="do not match"):
        kernels.forward5_by_group(x, u, y, np.ones(3, np.float32), 2, 2, 4, 16, scratch, work, 2)
    with pytest.raises(ValueError, match="do not match"):
        kernels.forward5_by_group(x, u, y[:2], bias, 2, 2, 4, 16, scratch, work, 2)
    with pytest.raises(ValueError, match="padding"):
        kernels.forward5_by_group(x, u, y, bias, -1, 2, 4, 16, scratch, work, 2)
    with pytest.raises(ValueError, match="reach"):
        # outputs of 3×3 (one tile) reach 8×8 cells: not an 8×8 input padded by 2
        kernels.forward5_by_group(x, u, np.zeros((3, 4, 3, 3), np.float32), bias, 2, 2, 4, 16,
                                  scratch, work, 2)
    with pytest.raises(ValueError, match="scratch must be at least"):
        kernels.forward5_by_group(x, u, y, bias, 2, 2, 4, 16,
                                  np.zeros((2, scratch.shape[1] - 1), np.float32), work, 2)
    with pytest.raises(ValueError, match="work must be at least"):
        kernels.forward5_by_group(x, u, y, bias, 2, 2, 4, 16, scratch,
                                  np.zeros((2, work.shape[1] - 1), np.float32), 2)
    with pytest.raises(ValueError, match="num_threads"):
        kernels.forward5_by_group(x, u, y, bias, 2, 2, 4, 16, scratch, work, 0)


@needs_kernel
def test_weight_gradient_kernel_checks_its_arguments():
    x = np.zeros((3, 2, 8, 8), np.float32)
    gy = np.zeros((3, 4, 8, 8), np.float32)
    grad_u = np.zeros((1, 64, 4, 2), np.float32)
    scratch = np.zeros((2, kernels.scratch5_length(2, 2)), np.float32)
    work = np.zeros((2, kernels.grad5_weight_length(2, 4, 2, 2, 16)), np.float32)
    kernels.grad5_weight_by_group(x, gy, grad_u, 2, 2, 16, scratch, work, 2)
    # shares: at least one, and no more than the batch's lane groups (one here)
    for bad in (np.zeros((1, 64, 3, 2), np.float32), np.zeros((1, 63, 4, 2), np.float32),
                np.zeros((0, 64, 4, 2), np.float32), np.zeros((2, 64, 4, 2), np.float32)):
        with pytest.raises(ValueError, match="do not match"):
            kernels.grad5_weight_by_group(x, gy, bad, 2, 2, 16, scratch, work, 2)
    with pytest.raises(ValueError, match="do not match"):
        kernels.grad5_weight_by_group(x, gy[:2], grad_u, 2, 2, 16, scratch, work, 2)
    with pytest.raises(ValueError, match="padding"):
        kernels.grad5_weight_by_group(x, gy, grad_u, 2, -1, 16, scratch, work, 2)
    with pytest.raises(ValueError, match="reach"):
        kernels.grad5_weight_by_group(x, np.zeros((3, 4, 3, 3), np.float32), grad_u, 2, 2, 16,
                                      scratch, work, 2)
    with pytest.raises(ValueError, match="scratch must be at least"):
        kernels.grad5_weight_by_group(x, gy, grad_u, 2, 2, 16,
                                      np.zeros((1, scratch.shape[1] - 1), np.float32), work, 2)
    with pytest.raises(ValueError, match="work must be at least"):
        kernels.grad5_weight_by_group(x, gy, grad_u, 2, 2, 16, scratch,
                                      np.zeros((1, work.shape[1] - 1), np.float32), 2)
    with pytest.raises(ValueError, match="num_threads"):
        kernels.grad5_weight_by_group(x, gy, grad_u, 2, 2, 16, scratch, work, 0)
