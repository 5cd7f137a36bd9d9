"""conv2d / nn.Conv2d: gradients, the plain-loop reference (helpers.reference, forward and
backward), chunking and workspace reuse, argument validation, and PyTorch (when installed)."""
import math

import numpy as np
import pytest

import minigrad
import minigrad.nn.functional as F
from minigrad.ops import conv as conv_module

from helpers import reference as R
from helpers.conv import forced_winograd

RNG = np.random.default_rng(1234)


# -- the configuration grid -----------------------------------------------------------------------
# (x shape, weight shape, stride, padding, dilation, groups, bias)
GRID = [
    ((2, 3, 5, 6), (4, 3, 3, 3), 1, 0, 1, 1, True),            # plain, 'valid' by number
    ((1, 2, 6, 5), (3, 2, 3, 3), 1, 1, 1, 1, False),           # pad 1, no bias
    ((2, 2, 7, 7), (2, 2, 3, 3), 2, 1, 1, 1, True),            # stride 2
    ((1, 2, 8, 7), (2, 2, 3, 2), 3, 2, 1, 1, True),            # stride 3, pad 2, last window cut
    ((1, 2, 7, 8), (3, 2, 2, 3), (2, 1), (1, 2), 1, 1, True),  # non-square kernel/stride/pad
    ((1, 2, 9, 9), (2, 2, 3, 3), 1, 2, 2, 1, True),            # dilation 2
    ((1, 2, 10, 9), (2, 2, 3, 2), (1, 2), 0, (3, 2), 1, False),  # dilation 3, mixed
    ((1, 2, 6, 7), (2, 2, 3, 3), 1, "same", 1, 1, True),       # 'same'
    ((1, 2, 6, 7), (2, 2, 2, 4), 1, "same", 1, 1, True),       # 'same', even kernel: odd split
    ((1, 2, 8, 7), (2, 2, 3, 2), 1, "same", (2, 3), 1, False),  # 'same' with dilation
    ((1, 2, 5, 6), (2, 2, 2, 3), 1, "valid", 1, 1, True),      # 'valid'
    ((2, 4, 5, 5), (4, 2, 3, 3), 1, 1, 1, 2, True),            # groups 2
    ((1, 4, 7, 6), (6, 2, 3, 2), 2, (1, 0), 2, 2, False),      # groups 2, strided, dilated
    ((2, 3, 5, 6), (3, 1, 3, 3), 1, 1, 1, 3, True),            # depthwise
    ((1, 3, 6, 6), (6, 1, 3, 3), 2, 1, 1, 3, True),            # depthwise, multiplier 2
    ((2, 3, 4, 5), (4, 3, 1, 1), 1, 0, 1, 1, True),            # 1x1: the matmul path
    ((3, 12, 2, 2), (10, 12, 1, 1), 1, 0, 1, 1, False),        # 1x1, small map: one weight GEMM
    ((2, 4, 3, 4), (6, 2, 1, 1), 1, 0, 1, 2, False),           # grouped 1x1
    ((1, 3, 7, 6), (2, 3, 1, 1), 2, 1, 1, 1, True),            # 1x1 strided and padded
    ((1, 1, 4, 4), (1, 1, 4, 4), 1, 0, 1, 1, True),            # kernel = input: one window
    ((1, 1, 2, 3), (2, 1, 3, 3), 1, 1, 1, 1, True),            # padding larger than the data
]
GRID_IDS = [f"x{c[0]}-w{c[1]}-s{c[2]}-p{c[3]}-d{c[4]}-g{c[5]}-b{int(c[6])}" for c in GRID]


def _arrays(config, dtype):
    x_shape, w_shape, *_, with_bias = config
    x = RNG.standard_normal(x_shape).astype(dtype)
    w = RNG.standard_normal(w_shape).astype(dtype)
    b = RNG.standard_normal(w_shape[0]).astype(dtype) if with_bias else None
    return x, w, b


def _hyper(config):
    return dict(zip(("stride", "padding", "dilation", "groups"), config[2:6]))


@pytest.fixture(params=["winograd2", "winograd4", "direct", "im2col"])
def algorithm(request, monkeypatch):
    """Run a test with Winograd F(2×2, 3×3) and F(4×4, 3×3) wherever they can run (3×3,
    stride 1: whatever the channels and the batch), then with the direct kernels where they
    apply, then with im2col everywhere (the grid's stride-1 cases take the direct path by
    default)."""
    forced_winograd(monkeypatch, int(request.param[-1]) if "winograd" in request.param
                    else None)
    monkeypatch.setattr(conv_module, "USE_DIRECT", request.param == "direct")
    return request.param


@pytest.mark.parametrize("config", GRID, ids=GRID_IDS)
def test_gradcheck(config, algorithm):
    x, w, b = _arrays(config, np.float64)
    inputs = [minigrad.tensor(a, requires_grad=True) for a in (x, w, b) if a is not None]
    hyper = _hyper(config)

    assert minigrad.gradcheck(lambda *tensors: F.conv2d(*tensors, **hyper), inputs)


@pytest.mark.parametrize("config", GRID, ids=GRID_IDS)
def test_forward_and_backward_match_reference_float64(config, algorithm):
    x, w, b = _arrays(config, np.float64)
    hyper = _hyper(config)
    tx, tw = minigrad.tensor(x, requires_grad=True), minigrad.tensor(w, requires_grad=True)
    tb = None if b is None else minigrad.tensor(b, requires_grad=True)
    y = F.conv2d(tx, tw, tb, **hyper)
    expected = R.conv2d(x, w, b, **hyper)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.data, expected, rtol=0, atol=1e-10)
    gy = RNG.standard_normal(y.shape)
    y.backward(gy)
    gx, gw, gb = R.conv2d_vjp(x, w, gy, **hyper)
    np.testing.assert_allclose(tx.grad, gx, rtol=0, atol=1e-10)
    np.testing.assert_allclose(tw.grad, gw, rtol=0, atol=1e-10)
    if b is not None:
        np.testing.assert_allclose(tb.grad, gb, rtol=0, atol=1e-10)


@pytest.mark.parametrize("config", GRID[::3], ids=GRID_IDS[::3])
def test_float32_matches_reference(config, algorithm):
    x, w, b = _arrays(config, np.float32)
    hyper = _hyper(config)
    tx = minigrad.tensor(x, requires_grad=True)
    y = F.conv2d(tx, w, b, **hyper)
    assert y.dtype == np.float32
    expected = R.conv2d(x.astype(np.float64), w.astype(np.float64),
                        None if b is None else b.astype(np.float64), **hyper)
    np.testing.assert_allclose(y.data, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    gy = RNG.standard_normal(y.shape).astype(np.float32)
    y.backward(gy)
    assert tx.grad.dtype == np.float32
    gx, _, _ = R.conv2d_vjp(x.astype(np.float64), w.astype(np.float64),
                            gy.astype(np.float64), **hyper)
    np.testing.assert_allclose(tx.grad, gx, rtol=1e-4, atol=1e-4 * np.abs(gx).max())


@pytest.mark.parametrize("chunk_bytes", [1, 700])
@pytest.mark.parametrize("config", [GRID[3], GRID[12], GRID[15]], ids=["s3", "g2", "1x1"])
def test_chunked_batches_match_reference(monkeypatch, chunk_bytes, config):
    """A tiny CHUNK_BYTES forces one image (or a few) per chunk, as a large batch would."""
    monkeypatch.setattr(conv_module, "CHUNK_BYTES", chunk_bytes)
    x_shape = (5,) + config[0][1:]
    x = RNG.standard_normal(x_shape)
    w = RNG.standard_normal(config[1])
    b = RNG.standard_normal(config[1][0])
    hyper = _hyper(config)
    tx, tw, tb = (minigrad.tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.conv2d(tx, tw, tb, **hyper)
    np.testing.assert_allclose(y.data, R.conv2d(x, w, b, **hyper), atol=1e-10)
    gy = RNG.standard_normal(y.shape)
    y.backward(gy)
    for got, expected in zip((tx.grad, tw.grad, tb.grad), R.conv2d_vjp(x, w, gy, **hyper)):
        np.testing.assert_allclose(got, expected, atol=1e-10)


def test_workspace_reused_across_shapes_and_dtypes():
    """Scratch buffers survive calls: a smaller call after a larger one, and a dtype change,
    must still give exact results (no stale columns)."""
    conv_module.release_workspace()
    for x_shape, w_shape, dtype in [((2, 3, 9, 9), (4, 3, 3, 3), np.float64),
                                    ((1, 2, 4, 5), (3, 2, 2, 2), np.float64),
                                    ((2, 3, 6, 6), (2, 3, 3, 3), np.float32),
                                    ((2, 3, 9, 9), (4, 3, 3, 3), np.float64)]:
        x = RNG.standard_normal(x_shape).astype(dtype)
        w = RNG.standard_normal(w_shape).astype(dtype)
        y = F.conv2d(x, w, padding=1)
        expected = R.conv2d(x.astype(np.float64), w.astype(np.float64), padding=1)
        tol = 1e-10 if dtype == np.float64 else 1e-4
        np.testing.assert_allclose(y.data, expected, rtol=tol, atol=tol)


def test_workspace_views_follow_their_buffer():
    """A view is handed out again for the same name, shape and dtype, and never once its
    buffer has been replaced by a larger one."""
    from minigrad.ops.workspace import _Workspace
    ws = _Workspace()
    small = ws.get("t", (4,), np.float32)
    assert ws.get("t", (4,), np.float32) is small
    assert ws.get("t", (2, 2), np.float32).shape == (2, 2)
    large = ws.get("t", (1000,), np.float64)                    # the buffer grows
    again = ws.get("t", (4,), np.float32)
    assert np.shares_memory(again, large) and not np.shares_memory(again, small)
    ws.clear()
    assert not ws.buffers and not ws.views


def test_only_needed_gradients_are_computed():
    x, w, b = (RNG.standard_normal(s) for s in ((2, 2, 5, 5), (3, 2, 3, 3), (3,)))
    op = conv_module.Conv2d((1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    tx = minigrad.tensor(x)
    tw, tb = minigrad.tensor(w, requires_grad=True), minigrad.tensor(b)
    y = op(tx, tw, tb)
    assert op.needs_input_grad == (False, True, False)
    gx, gw, gb = op.backward(np.ones(y.shape))
    assert gx is None and gb is None
    np.testing.assert_allclose(gw, R.conv2d_vjp(x, w, np.ones(y.shape), padding=1)[1],
                               atol=1e-10)


def test_no_grad_saves_nothing():
    with minigrad.no_grad():
        y = F.conv2d(minigrad.tensor(RNG.standard_normal((1, 2, 4, 4)), requires_grad=True),
                     RNG.standard_normal((2, 2, 3, 3)))
    assert not y.requires_grad and y._creator is None


def test_same_padding_keeps_size_and_empty_batch():
    for kernel, dilation in [((3, 3), 1), ((2, 4), 1), ((5, 2), (2, 3))]:
        y = F.conv2d(np.zeros((1, 2, 7, 6)), np.zeros((3, 2) + kernel), padding="same",
                     dilation=dilation)
        assert y.shape == (1, 3, 7, 6)
    y = F.conv2d(np.zeros((0, 2, 5, 5), np.float32), np.zeros((3, 2, 3, 3), np.float32))
    assert y.shape == (0, 3, 3, 3) and y.dtype == np.float32


# -- bad input ------------------------------------------------------------------------------------
X = np.zeros((2, 4, 6, 6))
W = np.zeros((6, 4, 3, 3))


@pytest.mark.parametrize("kwargs, exception, words", [
    (dict(x=np.zeros((6, 6))), ValueError, ["x", "(6, 6)"]),
    (dict(weight=np.zeros((6, 4, 3))), ValueError, ["weight", "(6, 4, 3)"]),
    (dict(weight=np.zeros((6, 3, 3, 3))), ValueError, ["channel", "(2, 4, 6, 6)", "(6, 3, 3, 3)"]),
    (dict(weight=np.zeros((6, 2, 3, 3)), groups=3), ValueError, ["groups", "(2, 4, 6, 6)"]),
    (dict(weight=np.zeros((5, 2, 3, 3)), groups=2), ValueError, ["groups", "(5, 2, 3, 3)"]),
    (dict(groups=0), ValueError, ["groups"]),
    (dict(weight=np.zeros((6, 4, 7, 3))), ValueError, ["kernel", "(2, 4, 6, 6)", "(6, 4, 7, 3)"]),
    (dict(dilation=3), ValueError, ["kernel", "dilation", "(2, 4, 6, 6)"]),
    (dict(stride=0), ValueError, ["stride"]),
    (dict(stride=(1, -2)), ValueError, ["stride"]),
    (dict(dilation=(0, 1)), ValueError, ["dilation"]),
    (dict(padding=-1), ValueError, ["padding"]),
    (dict(padding="full"), ValueError, ["padding"]),
    (dict(padding="same", stride=2), ValueError, ["same", "stride"]),
    (dict(padding=1.5), TypeError, ["padding"]),
    (dict(stride=(1, 2, 3)), TypeError, ["stride"]),
    (dict(bias=np.zeros(5)), ValueError, ["bias", "(5,)"]),
    (dict(bias=np.zeros(6, np.float32)), TypeError, ["bias", "float32"]),
    (dict(weight=np.zeros((6, 4, 3, 3), np.float32)), TypeError, ["weight", "float32"]),
    (dict(x=np.zeros((2, 4, 6, 6), np.int64)), TypeError, ["x", "int64"]),
    (dict(weight=np.zeros((0, 4, 3, 3))), ValueError, ["weight", "(0, 4, 3, 3)"]),
    (dict(x=None), TypeError, ["x"]),
    (dict(weight=[[1, 2], [3]]), ValueError, ["weight"]),
    (dict(bias="abc"), TypeError, ["bias"]),
    (dict(stride=2 ** 70), ValueError, ["stride"]),
    (dict(weight=np.zeros((6, 4, 1, 1)), dilation=(1, 2 ** 40)), ValueError, ["dilation"]),
    (dict(padding=(1, 2 ** 31)), ValueError, ["padding"]),
    (dict(padding=5000), ValueError, ["padding", "6×6"]),
])
def test_bad_input_raises_naming_the_argument(kwargs, exception, words):
    args = dict(x=X, weight=W, bias=None)
    args.update(kwargs)
    with pytest.raises(exception) as info:
        F.conv2d(**args)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize("name, good, bad, exception", [
    ("stride", 1, True, TypeError), ("stride", 1, 1.0, TypeError),
    ("stride", (1, 1), (1.0, 1), TypeError), ("dilation", 1, True, TypeError),
    ("padding", 1, 1.0, TypeError), ("padding", (1, 1), (True, 1), TypeError),
    ("groups", 1, True, ValueError), ("groups", 1, 1.0, ValueError),
])
def test_cached_checks_still_refuse_look_alike_arguments(name, good, bad, exception):
    """conv2d caches its checks per argument set; 1, True and 1.0 compare equal and hash alike,
    so a cached good value must not let its bad look-alike through."""
    x, w = minigrad.tensor(X), minigrad.tensor(W)
    expected = F.conv2d(x, w, **{name: good}).data
    with pytest.raises(exception, match=name):
        F.conv2d(x, w, **{name: bad})
    # a list is not cached, but is checked and accepted as a pair
    if isinstance(good, tuple):
        np.testing.assert_array_equal(F.conv2d(x, w, **{name: list(good)}).data, expected)


# -- the layer ------------------------------------------------------------------------------------
def test_conv2d_layer_initialisation_and_forward():
    minigrad.manual_seed(0)     # the "max > bound / 2" check below fails for ~1 % of draws
    layer = minigrad.nn.Conv2d(4, 6, (3, 2), stride=2, padding=1, groups=2)
    assert layer.weight.shape == (6, 2, 3, 2) and layer.bias.shape == (6,)
    assert layer.weight.dtype == np.float32 and layer.weight.requires_grad
    assert isinstance(layer.weight, minigrad.nn.Parameter)
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    bound = 1 / math.sqrt(2 * 3 * 2)          # 1/√fan_in for both, as PyTorch
    for p in (layer.weight, layer.bias):
        assert np.abs(p.data).max() <= bound and np.abs(p.data).max() > 0.5 * bound
    x = RNG.standard_normal((2, 4, 7, 5)).astype(np.float32)
    y = layer(minigrad.tensor(x))
    expected = R.conv2d(x, layer.weight.data, layer.bias.data, 2, 1, 1, 2)
    np.testing.assert_allclose(y.data, expected, rtol=1e-5, atol=1e-5)
    y.sum().backward()
    assert layer.weight.grad.shape == layer.weight.shape and layer.bias.grad.shape == (6,)
    assert "groups=2" in repr(layer)


def test_conv2d_layer_without_bias_and_same_padding():
    layer = minigrad.nn.Conv2d(3, 2, 4, padding="same", dilation=2, bias=False)
    assert layer.bias is None and [n for n, _ in layer.named_parameters()] == ["weight"]
    assert layer(minigrad.tensor(np.zeros((1, 3, 9, 8), np.float32))).shape == (1, 2, 9, 8)


@pytest.mark.parametrize("kwargs, words", [
    (dict(in_channels=0), ["in_channels"]),
    (dict(groups=4), ["groups"]),
    (dict(kernel_size=0), ["kernel_size"]),
    (dict(stride=0), ["stride"]),
    (dict(padding="same", stride=2), ["same"]),
    (dict(padding=-1), ["padding"]),
])
def test_conv2d_layer_rejects_bad_arguments(kwargs, words):
    args = dict(in_channels=6, out_channels=3, kernel_size=3)
    args.update(kwargs)
    with pytest.raises(ValueError) as info:
        minigrad.nn.Conv2d(**args)
    for word in words:
        assert word in str(info.value)


# -- PyTorch --------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("config", GRID, ids=GRID_IDS)
def test_matches_torch(config, algorithm):
    torch = pytest.importorskip("torch")
    x, w, b = _arrays(config, np.float64)
    hyper = _hyper(config)
    tensors = [minigrad.tensor(a, requires_grad=True) for a in (x, w, b) if a is not None]
    y = F.conv2d(*tensors, **hyper)
    torch_tensors = [torch.tensor(a, requires_grad=True) for a in (x, w, b) if a is not None]
    y_torch = torch.nn.functional.conv2d(*torch_tensors, **hyper)
    np.testing.assert_allclose(y.data, y_torch.detach().numpy(), rtol=0, atol=1e-10)
    gy = RNG.standard_normal(y.shape)
    y.backward(gy)
    y_torch.backward(torch.tensor(gy))
    for mine, theirs in zip(tensors, torch_tensors):
        np.testing.assert_allclose(mine.grad, theirs.grad.numpy(), rtol=0, atol=1e-10)


# -- depthwise: the stencil kernels (groups = in channels = out channels) ----------------------

DEPTHWISE_GEOMETRIES = [  # (channels, H, W, kernel, stride, padding, dilation)
    (3, 9, 11, 3, 1, 1, 1), (4, 8, 8, 3, 2, 1, 1), (2, 10, 7, 5, 2, 3, 2),
    (3, 5, 6, (2, 3), (3, 1), (0, 2), (1, 2)), (2, 4, 6, 1, 1, 0, 1), (2, 6, 6, 3, 1, "same", 2),
]


@pytest.mark.parametrize("geometry", DEPTHWISE_GEOMETRIES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_matches_the_reference(geometry, dtype):
    channels, height, width, kernel, stride, padding, dilation = geometry
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    rng = np.random.default_rng(3)
    xv = rng.standard_normal((2, channels, height, width))
    wv = rng.standard_normal((channels, 1, kh, kw))
    bv = rng.standard_normal(channels)
    x = minigrad.tensor(xv.astype(dtype), requires_grad=True)
    w = minigrad.tensor(wv.astype(dtype), requires_grad=True)
    b = minigrad.tensor(bv.astype(dtype), requires_grad=True)
    y = F.conv2d(x, w, b, stride, padding, dilation, groups=channels)
    expected = R.conv2d(xv, wv, bv, stride, padding, dilation, channels)
    tolerance = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-11)
    np.testing.assert_allclose(y.data, expected, **tolerance)
    gy = rng.standard_normal(y.shape)
    y.backward(gy.astype(dtype))
    gx, gw, gb = R.conv2d_vjp(xv, wv, gy, stride, padding, dilation, channels)
    np.testing.assert_allclose(x.grad, gx, **tolerance)
    np.testing.assert_allclose(w.grad, gw, **tolerance)
    np.testing.assert_allclose(b.grad, gb, **tolerance)


@pytest.mark.parametrize("geometry", DEPTHWISE_GEOMETRIES[:4])
def test_depthwise_gradcheck(geometry):
    channels, height, width, kernel, stride, padding, dilation = geometry
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    rng = np.random.default_rng(4)
    inputs = [minigrad.tensor(a, requires_grad=True, dtype=np.float64) for a in (
        rng.standard_normal((1, channels, height, width)),
        rng.standard_normal((channels, 1, kh, kw)), rng.standard_normal(channels))]
    assert minigrad.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation,
                                                      groups=channels), inputs)


@pytest.mark.parametrize("shape, dtype", [((64, 8, 32, 32), np.float32),
                                          ((3, 5, 40, 41), np.float64), ((2, 3), np.float32)])
def test_aligned_empty_starts_large_arrays_on_a_cache_line(shape, dtype):
    from minigrad.ops import workspace as workspace_module
    for _ in range(4):          # the heap's offsets differ from one allocation to the next
        a = workspace_module.aligned_empty(shape, dtype)
        assert a.shape == shape and a.dtype == dtype and a.flags.c_contiguous
        if a.nbytes >= workspace_module.ALIGNED_MIN_BYTES:
            assert a.ctypes.data % workspace_module.CACHE_LINE == 0
        a[...] = 1          # writeable, and all of it inside its buffer


@pytest.mark.parametrize("stride, dilation", [(1, 1), (2, 1), (1, 2)])
def test_large_outputs_start_on_a_cache_line(stride, dilation):
    """The kernels store whole vectors into them (workspace.aligned_empty); the input
    gradient owns its memory, so the engine keeps it without a copy."""
    from minigrad.ops import workspace as workspace_module
    x = minigrad.tensor(RNG.standard_normal((16, 16, 32, 32)).astype(np.float32),
                        requires_grad=True)
    w = minigrad.tensor(RNG.standard_normal((32, 16, 3, 3)).astype(np.float32),
                        requires_grad=True)
    for _ in range(3):
        y = F.conv2d(x, w, stride=stride, padding=dilation, dilation=dilation)
        assert y.data.ctypes.data % workspace_module.CACHE_LINE == 0
        assert y._creator.backward(np.ones(y.shape, np.float32))[0].base is None
