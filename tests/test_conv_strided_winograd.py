"""3×3 stride-2 convolution by F(4, 2) on the stride phases (minigrad/ops/
conv_strided_winograd.py): forward and both gradients against the plain-loop reference and by
finite differences, float32 rounding, partial lane groups and chunked batches, the filter
transform's adjoint, thread-count independence of the kernels, the choice rule and the
kernels' argument checks."""
import numpy as np
import pytest

import minigrad
import minigrad.nn.functional as F
from minigrad._kernels import winograd_strided as kernels
from minigrad.ops import conv_strided_winograd as strided

from helpers import reference as R

RNG = np.random.default_rng(11)

# (x shape, out channels, padding): outputs filling their last 4×4 tile and ones leaving 1–3
# of it out, odd sides, padding 0–2 and unequal, rows and columns the grid's reach leaves
# out, partial lane groups (batch below, between and above whole groups of 16)
SHAPES = [
    ((2, 3, 8, 8), 4, 1),
    ((1, 2, 9, 7), 3, 1),
    ((3, 4, 10, 13), 2, 0),
    ((2, 2, 5, 5), 3, 2),
    ((1, 3, 16, 16), 2, (1, 0)),
    ((2, 2, 11, 6), 5, (0, 2)),
    ((17, 3, 8, 8), 4, 1),
    ((33, 2, 6, 9), 3, 1),
    ((16, 4, 17, 15), 3, 1),
]


@pytest.fixture(autouse=True)
def always(monkeypatch):
    """Every convolution this path can compute runs on it."""
    monkeypatch.setattr(strided, "USE", "always")


def _run(x, w, b, padding, gy=None):
    tensors = [minigrad.tensor(a, requires_grad=True) for a in (x, w, b)]
    y = F.conv2d(*tensors, stride=2, padding=padding)
    assert isinstance(y._creator.winograd, strided.StridedWinogradPlan)
    if gy is None:
        gy = RNG.standard_normal(y.shape).astype(x.dtype)
    y.backward(gy)
    return (y.data,) + tuple(t.grad for t in tensors), gy


@pytest.mark.parametrize("x_shape, out_channels, padding", SHAPES)
def test_matches_reference_float64(x_shape, out_channels, padding):
    x = RNG.standard_normal(x_shape)
    w = RNG.standard_normal((out_channels, x_shape[1], 3, 3))
    b = RNG.standard_normal(out_channels)
    (y, gx, gw, gb), gy = _run(x, w, b, padding)
    hyper = {"stride": 2, "padding": padding}
    np.testing.assert_allclose(y, R.conv2d(x, w, b, **hyper), rtol=0, atol=1e-12)
    for actual, expected in zip((gx, gw, gb), R.conv2d_vjp(x, w, gy, **hyper)):
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("top, bottom, left, right", [(1, 0, 2, 1), (0, 2, 0, 0), (2, 2, 1, 0)])
def test_unequal_padding_on_the_plan(top, bottom, left, right):
    """Padding per side (conv2d pads both sides alike except for 'same'), on the plan."""
    x = RNG.standard_normal((18, 3, 9, 8))
    w = RNG.standard_normal((4, 3, 3, 3))
    b = RNG.standard_normal(4)
    plan = strided.StridedWinogradPlan(x.shape, w.shape, ((top, bottom), (left, right)), 8)
    padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    y = plan.forward(x, plan.transform_weight(w), b)
    np.testing.assert_allclose(y, R.conv2d(padded, w, b, stride=2), rtol=0, atol=1e-12)
    gy = RNG.standard_normal(y.shape)
    gx, gw = plan.backward(x, plan.transform_weight(w), gy, True, True)
    ex, ew, _ = R.conv2d_vjp(padded, w, gy, stride=2)
    np.testing.assert_allclose(gx, ex[:, :, top:top + 9, left:left + 8], rtol=0, atol=1e-12)
    np.testing.assert_allclose(gw, ew, rtol=0, atol=1e-12)


def test_gradcheck():
    inputs = [minigrad.tensor(RNG.standard_normal(shape), requires_grad=True)
              for shape in ((2, 2, 7, 9), (3, 2, 3, 3), (3,))]
    assert minigrad.gradcheck(lambda *t: F.conv2d(*t, stride=2, padding=1), inputs)


def test_float32_rounding_stays_within_the_conv_tolerances():
    """Against the float64 reference, float32 results are off by a few units in the last place
    of the largest terms: F(4, 2)'s transforms scale by up to 8/3 (the same bound as the
    stride-1 Winograd's)."""
    x = RNG.standard_normal((16, 64, 8, 8)).astype(np.float32)
    w = RNG.standard_normal((32, 64, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(32).astype(np.float32)
    (y, gx, gw, _), gy = _run(x, w, b, 1)
    wide = [a.astype(np.float64) for a in (x, w, gy)]
    hyper = {"stride": 2, "padding": 1}
    expected = (R.conv2d(wide[0], wide[1], b.astype(np.float64), **hyper),) + tuple(
        R.conv2d_vjp(*wide, **hyper)[:2])
    for actual, exact in zip((y, gx, gw), expected):
        assert actual.dtype == np.float32
        # float32's unit roundoff times the magnitude of the sums
        assert np.abs(actual - exact).max() <= 2e-6 * np.abs(exact).max() * np.sqrt(64 * 9)


def test_float32_matches_torch_where_the_rule_chooses_it(monkeypatch):
    """A layer whose backward the rule gives to this path (128 → 256 channels on 8×8, the
    benchmark's conv3x3_s2_128to256), its forward here too by ``ONE_TILE_FORWARD``, in
    float32 against PyTorch's own convolution."""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(strided, "USE", True)
    monkeypatch.setattr(strided, "ONE_TILE_FORWARD", True)
    x = RNG.standard_normal((16, 128, 8, 8)).astype(np.float32)
    w = (RNG.standard_normal((256, 128, 3, 3)) * 0.05).astype(np.float32)
    b = RNG.standard_normal(256).astype(np.float32)
    (y, gx, gw, gb), gy = _run(x, w, b, 1)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride=2, padding=1)
    ty.backward(torch.tensor(gy))
    for mine, theirs in zip((y, gx, gw, gb), (ty.detach(), tx.grad, tw.grad, tb.grad)):
        theirs = theirs.numpy()
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-5 * np.abs(theirs).max())


def test_chunks_and_stale_workspace(monkeypatch):
    """A batch split in chunks of whole lane groups, and workspace buffers left by a larger
    call, give the same results as one chunk."""
    x = RNG.standard_normal((40, 3, 8, 8)).astype(np.float32)
    w = RNG.standard_normal((5, 3, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(5).astype(np.float32)
    gy = RNG.standard_normal((40, 5, 4, 4)).astype(np.float32)
    whole, _ = _run(x, w, b, 1, gy)
    monkeypatch.setattr(strided, "CHUNK_BYTES", 1)
    plan = strided.StridedWinogradPlan(x.shape, w.shape, ((1, 1), (1, 1)), 4)
    assert plan.chunk == kernels.LANES
    F.conv2d(RNG.standard_normal((64, 3, 16, 16)).astype(np.float32), w, stride=2)
    chunked, _ = _run(x, w, b, 1, gy)
    for a, b_ in zip(whole, chunked):
        np.testing.assert_allclose(a, b_, rtol=1e-5, atol=1e-5)


def test_filter_transform_is_adjoint():
    """<filter_points(w), g> = <w, filter_grad(g)>, and the points are G_r g G_cᵀ."""
    t = strided._T
    w = RNG.standard_normal((7, 9))
    g = RNG.standard_normal((len(t), 7))
    u = np.empty((len(t), 7))
    kernels.filter_points(t, w, u, 2)
    np.testing.assert_allclose(u, t @ w.T, rtol=0, atol=1e-13)
    gw = np.empty((7, 9))
    kernels.filter_grad(t, g, gw, 2)
    assert np.isclose((u * g).sum(), (w * gw).sum(), rtol=1e-12)


def test_kernels_do_not_depend_on_thread_count():
    x = RNG.standard_normal((20, 3, 9, 9)).astype(np.float32)
    plan = strided.StridedWinogradPlan(x.shape, (4, 3, 3, 3), ((1, 1), (1, 1)), 4)
    length = sum(p * c for p, c in plan.classes) * x.shape[1] * x.shape[0]
    results = []
    for threads in (1, 2, 3):
        v = np.zeros(length, np.float32)
        scratch = np.zeros((threads, plan.scratch_length), np.float32)
        kernels.input_tiles(x, v, strided._BT, 1, 1, plan.tiles_h, plan.tiles_w, scratch,
                            threads)
        gx = np.empty_like(x)
        kernels.input_grad(v, gx, strided._BT, 1, 1, plan.tiles_h, plan.tiles_w, scratch,
                           threads)
        results.append((v, gx))
    for v, gx in results[1:]:
        assert np.array_equal(v, results[0][0]) and np.array_equal(gx, results[0][1])


def test_rules(monkeypatch):
    """Forward and backward by their own depth bars; neither below a lane group of images,
    on poorly covered outputs, or off 3×3 stride 2 (undilated, ungrouped)."""
    monkeypatch.setattr(strided, "USE", True)
    monkeypatch.setattr(strided, "ONE_TILE_FORWARD", True)
    base = dict(kernel=(3, 3), stride=(2, 2), dilation=(1, 1), groups=1, channels=128,
                out_channels=256, n=64, out_h=4, out_w=4)
    assert strided.passes(**base) == (True, True)
    # a forward of one tile per image only with ONE_TILE_FORWARD (off by default)
    monkeypatch.setattr(strided, "ONE_TILE_FORWARD", False)
    assert strided.passes(**base) == (False, True)
    assert strided.passes(**{**base, "out_h": 8, "out_w": 8}) == (True, True)
    assert strided.passes(**{**base, "out_h": 8, "out_w": 4}) == (True, True)
    monkeypatch.setattr(strided, "ONE_TILE_FORWARD", True)
    assert strided.passes(**{**base, "channels": 32, "out_channels": 64}) == (False, True)
    assert strided.passes(**{**base, "channels": 16, "out_channels": 32}) == (False, False)
    # a higher forward bar where the direct forward would run on the channel-blocked grid:
    # 64 → 128 is 43 deep, 128 → 128 64
    deeper = {**base, "channels": 64, "out_channels": 128, "out_h": 16, "out_w": 16}
    assert strided.passes(**deeper) == (True, True)
    assert strided.passes(blocked=True, **deeper) == (False, True)
    assert strided.passes(blocked=True, **{**deeper, "channels": 128}) == (True, True)
    for change in ({"n": 8}, {"out_h": 3, "out_w": 3}, {"out_h": 7, "out_w": 7},
                   {"out_h": 2, "out_w": 2}):
        assert strided.passes(**{**base, **change}) == (False, False)
    for change in ({"stride": (1, 1)}, {"stride": (2, 1)}, {"kernel": (5, 5)},
                   {"dilation": (2, 2)}, {"groups": 2}):
        assert strided.passes(**{**base, **change}) == (False, False)
        assert strided.passes(mode="always", **{**base, **change}) == (False, False)
    assert strided.passes(mode=False, **base) == (False, False)
    assert strided.passes(mode="always", **{**base, "n": 1}) == (True, True)


def test_layer_takes_each_pass_by_its_rule(monkeypatch):
    """A deep layer runs both passes here; a 32 → 64 one only its backward (its forward
    stays on the direct kernels), with the same results as the direct path."""
    monkeypatch.setattr(strided, "USE", True)
    monkeypatch.setattr(strided, "ONE_TILE_FORWARD", True)
    deep = F.conv2d(minigrad.tensor(np.zeros((16, 128, 8, 8), np.float32), requires_grad=True),
                    np.zeros((256, 128, 3, 3), np.float32), stride=2, padding=1)._creator
    assert isinstance(deep.winograd, strided.StridedWinogradPlan)
    assert deep.winograd_backward is deep.winograd
    x = RNG.standard_normal((16, 32, 8, 8))
    w = RNG.standard_normal((64, 32, 3, 3))
    tensors = [minigrad.tensor(a, requires_grad=True) for a in (x, w)]
    y = F.conv2d(*tensors, stride=2, padding=1)
    assert y._creator.winograd is None and y._creator.direct is not None
    assert isinstance(y._creator.winograd_backward, strided.StridedWinogradPlan)
    gy = RNG.standard_normal(y.shape)
    y.backward(gy)
    np.testing.assert_allclose(y.data, R.conv2d(x, w, stride=2, padding=1), rtol=0, atol=1e-12)
    ex, ew, _ = R.conv2d_vjp(x, w, gy, stride=2, padding=1)
    np.testing.assert_allclose(tensors[0].grad, ex, rtol=0, atol=1e-12)
    np.testing.assert_allclose(tensors[1].grad, ew, rtol=0, atol=1e-12)


def _buffers(n=2, c=3, h=8, w=8, threads=1):
    x = np.zeros((n, c, h, w), np.float32)
    plan = strided.StridedWinogradPlan(x.shape, (c, c, 3, 3), ((1, 1), (1, 1)), 4)
    length = sum(p * k for p, k in plan.classes) * c * n
    return x, plan, np.zeros(length, np.float32), np.zeros((threads, plan.scratch_length),
                                                           np.float32)


@pytest.mark.parametrize("call, message", [
    (lambda x, p, v, s: kernels.input_tiles(x, v[:-1], strided._BT, 1, 1, 1, 1, s, 1),
     "tiles must have"),
    (lambda x, p, v, s: kernels.input_tiles(x, v, strided._BT, -1, 1, 1, 1, s, 1),
     "non-negative"),
    (lambda x, p, v, s: kernels.input_tiles(x, v, strided._BT[:4], 1, 1, 1, 1, s, 1),
     "bt must be"),
    (lambda x, p, v, s: kernels.input_tiles(x, v, strided._BT, 1, 1, 1, 1, s[:, :-1], 1),
     "scratch must be"),
    (lambda x, p, v, s: kernels.input_tiles(x, v, strided._BT, 1, 1, 1, 1, s, 0),
     "num_threads"),
    (lambda x, p, v, s: kernels.output_tiles(v, np.zeros((2, 3, 8, 8), np.float32),
                                             strided._AT, np.zeros(3, np.float32), 1, 1, s, 1),
     "tile grid"),
    (lambda x, p, v, s: kernels.output_tiles(v, np.zeros((2, 3, 4, 4), np.float32),
                                             strided._AT, np.zeros(2, np.float32), 1, 1, s, 1),
     "bias must have"),
    (lambda x, p, v, s: kernels.output_grad(np.zeros((2, 3, 4, 4), np.float32), v,
                                            np.ascontiguousarray(strided._AT[:, :4]), 1, 1, s, 1),
     "at 4×5"),
    (lambda x, p, v, s: kernels.filter_points(strided._T, np.zeros((4, 8), np.float32),
                                              np.zeros((39, 4), np.float32), 1), "9 taps"),
    (lambda x, p, v, s: kernels.filter_grad(strided._T, np.zeros((39, 5), np.float32),
                                            np.zeros((4, 9), np.float32), 1), "must be (39, 4)"),
])
def test_kernels_check_their_arguments(call, message):
    x, plan, v, scratch = _buffers()
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(x, plan, v, scratch)
