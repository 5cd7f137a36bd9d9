"""Winograd F(2×2, 3×3) and F(4×4, 3×3) convolution (minigrad/ops/conv_winograd.py): forward
and both gradients against the plain-loop reference and by finite differences, float32
rounding, chunked batches, stale workspace buffers, the choice rules and the kernels' argument
checks."""
import numpy as np
import pytest

import minigrad
import minigrad.nn.functional as F
from minigrad._kernels import winograd as kernels
from minigrad.ops import conv as conv_module
from minigrad.ops import conv_strided_winograd, conv_winograd
from minigrad.ops import workspace as workspace_module
from minigrad.ops.workspace import workspace

from helpers import reference as R
from helpers.conv import forced_winograd

RNG = np.random.default_rng(7)
needs_by_image = pytest.mark.skipif(not kernels.BY_IMAGE,
                                    reason="the image-by-image forward needs AVX-512")

# (x shape, out channels, padding): outputs that fill the last tile row and column and ones
# that leave 1 to 3 of them out, outputs of one cell, padding 0 to 2, tiles that read only
# padding
SHAPES = [
    ((2, 3, 6, 6), 4, 1),
    ((1, 2, 7, 5), 3, 1),
    ((2, 4, 5, 8), 5, 0),
    ((1, 2, 3, 3), 2, 0),
    ((2, 3, 4, 7), 2, 2),
    ((1, 1, 1, 2), 3, 1),
    ((3, 5, 9, 4), 6, 1),
    ((2, 3, 10, 11), 3, 1),
    # planes of one 4×4 tile, and more than one group of 16 lane planes
    ((18, 3, 4, 4), 5, 1),
    ((17, 2, 6, 6), 3, 0),
    ((3, 2, 2, 3), 2, 1),
    ((18, 2, 6, 9), 3, 1),
    # rows of 8+ tiles, worked by rows rather than in lanes (both tile sizes)
    ((2, 3, 5, 34), 4, 1),
    ((1, 2, 9, 33), 3, 0),
]


@pytest.fixture(autouse=True, params=[2, 4], ids=["F2", "F4"])
def tile(request, monkeypatch):
    """Every test with F(2×2, 3×3) and with F(4×4, 3×3) wherever Winograd can run."""
    forced_winograd(monkeypatch, request.param)
    return request.param


def _layout_of(x, w, padding):
    return conv_module._layout(x.shape, w.shape, (1, 1), ((padding, padding),) * 2, (1, 1), 1,
                               x.itemsize, True, conv_winograd.USE_WINOGRAD,
                               conv_strided_winograd.USE, conv_module.CHUNK_BYTES)


def _run(x, w, b, padding, gy=None):
    tensors = [minigrad.tensor(a, requires_grad=True) for a in (x, w, b)]
    y = F.conv2d(*tensors, padding=padding)
    if gy is None:
        gy = RNG.standard_normal(y.shape).astype(x.dtype)
    y.backward(gy)
    return (y.data,) + tuple(t.grad for t in tensors), gy


@pytest.mark.parametrize("x_shape, out_channels, padding", SHAPES)
def test_matches_reference_float64(x_shape, out_channels, padding, tile):
    x = RNG.standard_normal(x_shape)
    w = RNG.standard_normal((out_channels, x_shape[1], 3, 3))
    b = RNG.standard_normal(out_channels)
    plan = _layout_of(x, w, padding)["winograd"]
    assert plan.tile == tile
    (y, gx, gw, gb), gy = _run(x, w, b, padding)
    np.testing.assert_allclose(y, R.conv2d(x, w, b, padding=padding), rtol=0, atol=1e-12)
    ex, ew, eb = R.conv2d_vjp(x, w, gy, padding=padding)
    np.testing.assert_allclose(gx, ex, rtol=0, atol=1e-12)
    np.testing.assert_allclose(gw, ew, rtol=0, atol=1e-12)
    np.testing.assert_allclose(gb, eb, rtol=0, atol=1e-12)


# float32 forwards by rows (rows of 8+ tiles, undilated) that run image by image: both tile
# sizes, a 5×5 kernel's four blocks, outputs that leave part of the last tiles out, no padding,
# one image and more images than threads
BY_IMAGE = [
    ((3, 3, 5, 34), 4, 3, 1, True),
    ((1, 2, 9, 33), 3, 3, 0, False),
    ((2, 5, 12, 40), 6, 5, 2, True),
    ((5, 2, 7, 35), 3, 3, 1, True),
]


@needs_by_image
@pytest.mark.parametrize("x_shape, out_channels, size, padding, bias", BY_IMAGE)
@pytest.mark.parametrize("need_x", [True, False])
def test_by_image_matches_reference(monkeypatch, x_shape, out_channels, size, padding, bias,
                                    need_x, tile):
    """The image-by-image passes against the float64 reference (float32 tolerance) and the
    chunked passes they replace, bitwise the same for any thread count; without the input's
    gradient (a first layer) too."""
    _check_against_chunked(monkeypatch, "BY_IMAGE", ("forward_by_image", "backward_by_image"),
                           x_shape, out_channels, size, padding, 1, bias, need_x)


def _check_against_chunked(monkeypatch, switch, names, x_shape, out_channels, size, padding,
                           dilation, bias, need_x):
    """The passes ``conv_winograd.<switch>`` turns on (both kernels ``names`` run) against
    the float64 reference within float32's tolerance and against the chunked passes, bitwise
    the same on 1, 2 and 3 threads."""
    calls = []
    for name in names:
        monkeypatch.setattr(kernels, name, lambda *args, kernel=getattr(kernels, name):
                            calls.append(kernel) or kernel(*args))
    x = RNG.standard_normal(x_shape).astype(np.float32)
    w = RNG.standard_normal((out_channels, x_shape[1], size, size)).astype(np.float32)
    b = RNG.standard_normal(out_channels).astype(np.float32) if bias else None
    reach = dilation * (size - 1)
    gy = RNG.standard_normal((x_shape[0], out_channels, x_shape[2] + 2 * padding - reach,
                              x_shape[3] + 2 * padding - reach)).astype(np.float32)

    def passes(threads, on=True):
        monkeypatch.setattr(conv_winograd, switch, on)
        before = minigrad.get_num_threads()
        minigrad.set_num_threads(threads)
        try:
            xt, wt = minigrad.tensor(x, requires_grad=need_x), minigrad.tensor(w, requires_grad=True)
            y = F.conv2d(xt, wt, None if b is None else minigrad.tensor(b), padding=padding,
                         dilation=dilation)
            y.backward(gy)
            return y.data, (xt.grad if need_x else None), wt.grad
        finally:
            minigrad.set_num_threads(before)

    results = passes(2)
    assert len(calls) == 2, f"the passes of {switch} did not run"
    wide = [a.astype(np.float64) for a in (x, w, gy)]
    exact = ((R.conv2d(wide[0], wide[1], None if b is None else b.astype(np.float64),
                       padding=padding, dilation=dilation),)
             + tuple(R.conv2d_vjp(*wide, padding=padding, dilation=dilation)[:2]))
    chunked = passes(2, False)
    for actual, expected, other in zip(results, exact, chunked):
        if actual is None:
            continue
        # float32's unit roundoff times the magnitude of the sums, against either
        bound = 2e-6 * np.abs(expected).max() * np.sqrt(w[0].size * x_shape[0])
        assert np.abs(actual - expected).max() <= bound
        assert np.abs(actual - other).max() <= 2 * bound
    for threads in (1, 3):
        for actual, expected in zip(passes(threads), results):
            if actual is not None:
                np.testing.assert_array_equal(actual, expected)


# float32 forwards in lanes that run lane group by lane group: small maps (rows of 2 to 7
# tiles), a dilation, a 5×5 kernel's blocks, a last group of fewer than 16 lanes, output
# channels in more than one block, one group and more groups than threads
BY_GROUP = [
    ((20, 3, 9, 9), 5, 3, 1, 1, True),
    ((3, 2, 12, 8), 70, 3, 2, 2, False),
    ((17, 4, 10, 10), 6, 5, 2, 1, True),
    ((40, 2, 6, 7), 3, 3, 1, 1, False),
]


@needs_by_image
@pytest.mark.parametrize("x_shape, out_channels, size, padding, dilation, bias", BY_GROUP)
@pytest.mark.parametrize("need_x", [True, False])
def test_by_group_matches_reference(monkeypatch, x_shape, out_channels, size, padding,
                                    dilation, bias, need_x, tile):
    """The group-by-group passes against the float64 reference (float32 tolerance) and the
    chunked passes they replace, bitwise the same for any thread count; without the input's
    gradient (a first layer) too."""
    monkeypatch.setattr(conv_winograd, "GROUP_MIN_USE", 0)
    monkeypatch.setattr(conv_winograd, "GROUP_MIN_COLUMNS", 0)
    monkeypatch.setattr(conv_winograd, "GROUP_OUT_BLOCK", 32)
    monkeypatch.setattr(conv_winograd, "GROUP_BACKWARD_MAX_FILTERS", np.inf)
    conv_module._layout.cache_clear()
    try:
        _check_against_chunked(monkeypatch, "BY_GROUP", ("forward_by_group", "backward_by_group"),
                               x_shape, out_channels, size, padding, dilation, bias, need_x)
    finally:
        conv_module._layout.cache_clear()


def test_by_group_rule():
    """Group by group only with products of at least GROUP_MIN_COLUMNS columns and lanes for
    at least GROUP_MIN_USE of the threads: a batch of one group stays chunked on two
    threads, and planes of one tile do too."""
    def plan(n, size):
        return conv_winograd.WinogradPlan((n, 32, size, size), (32, 32, 3, 3), ((1, 1), (1, 1)),
                                          4, 4)
    expected = kernels.BY_IMAGE and conv_winograd.BY_GROUP
    assert plan(64, 8)._by_group(np.float32, 2) == expected
    assert not plan(64, 8)._by_group(np.float64, 2)
    assert not plan(16, 8)._by_group(np.float32, 2)
    assert plan(16, 8)._by_group(np.float32, 1) == expected
    assert not plan(64, 4)._by_group(np.float32, 2)
    assert not plan(64, 32)._by_group(np.float32, 2)      # by rows: image by image


@needs_by_image
def test_forward_by_group_checks_its_arguments(tile):
    x = np.zeros((16, 3, 8, 8), np.float32)
    t_h = t_w = -(-8 // tile)
    u = np.zeros(((tile + 2) ** 2, 5, 3), np.float32)
    y = np.zeros((16, 5, 8, 8), np.float32)
    blocks = np.zeros((1, 2), np.intp)
    scratch = np.zeros((2, kernels.scratch_length(tile, t_h, t_w)), np.float32)
    work = np.zeros((2, kernels.by_group_length(tile, 3, 4, t_h, t_w, 16)), np.float32)
    bias = np.empty(0, np.float32)
    args = (blocks, 1, 1, t_h, t_w, 1, 1, 4, 16)
    kernels.forward_by_group(tile, x, u, y, bias, *args, scratch, work, 2)
    with pytest.raises(ValueError, match="work must be at least"):
        kernels.forward_by_group(tile, x, u, y, bias, *args, scratch,
                                 np.zeros((2, work.shape[1] - 1), np.float32), 2)
    with pytest.raises(ValueError, match="do not match"):
        kernels.forward_by_group(tile, x, u[:, :4], y, bias, *args, scratch, work, 2)
    with pytest.raises(ValueError, match="do not match"):
        kernels.forward_by_group(tile, x, u, y, np.ones(4, np.float32), *args, scratch, work, 2)
    with pytest.raises(ValueError, match="do not match"):
        kernels.forward_by_group(tile, x, u, y, bias, blocks, 1, 1, t_h, t_w, 1, 1, 0, 16,
                                 scratch, work, 2)
    with pytest.raises(ValueError, match="beyond the padding"):
        kernels.forward_by_group(tile, x, u, y, bias, np.array([[2, 0]], np.intp),
                                 *args[1:], scratch, work, 2)
    wide = 8 * tile
    with pytest.raises(ValueError, match="do not run in lanes"):
        kernels.forward_by_group(tile, np.zeros((16, 3, 8, wide), np.float32), u,
                                 np.zeros((16, 5, 8, wide), np.float32), bias, blocks, 1, 1,
                                 t_h, 8, 1, 1, 4, 16, scratch, work, 2)
    with pytest.raises(ValueError, match="scratch must be at least"):
        kernels.forward_by_group(tile, x, u, y, bias, *args,
                                 np.zeros((2, scratch.shape[1] - 1), np.float32), work, 2)
    with pytest.raises(ValueError, match="tile grid, got"):
        kernels.forward_by_group(tile, x, u, y, bias, blocks, 1, 1, t_h + 1, t_w, 1, 1, 4, 16,
                                 np.zeros((2, kernels.scratch_length(tile, t_h + 1, t_w)),
                                          np.float32), work, 2)
    with pytest.raises(ValueError, match="dilation must be positive and divide"):
        kernels.forward_by_group(tile, x, u, y, bias, blocks, 1, 1, t_h, t_w, 3, 3, 4, 16,
                                 scratch, work, 2)
    # a 5×5 kernel's four blocks share one span of cells two further along each axis
    five = np.array([[0, 0], [0, 2], [2, 0], [2, 2]], np.intp)
    u5 = np.zeros(((tile + 2) ** 2, 5, 12), np.float32)
    y5 = np.zeros((16, 5, 8, 8), np.float32)
    work5 = np.zeros((2, kernels.by_group_length(tile, 12, 4, t_h, t_w, 16)), np.float32)
    wide5 = np.zeros((2, kernels.scratch_length(tile, t_h, t_w, reach=2)), np.float32)
    kernels.forward_by_group(tile, x, u5, y5, bias, five, 2, 2, t_h, t_w, 1, 1, 4, 16, wide5,
                             work5, 2)
    with pytest.raises(ValueError, match="blocks reaching 2 cells"):
        kernels.forward_by_group(tile, x, u5, y5, bias, five, 2, 2, t_h, t_w, 1, 1, 4, 16,
                                 scratch, work5, 2)
    with pytest.raises(ValueError, match="not in whole cells"):
        kernels.forward_by_group(tile, x, u5, y5, bias, np.array([[0, 0], [0, 2], [2, 0],
                                                                  [2, 1]], np.intp), 2, 2, t_h,
                                 -(-4 // tile), 1, 2, 4, 16, wide5, work5, 2)

@needs_by_image
def test_forward_by_image_checks_its_arguments(tile):
    x = np.zeros((2, 3, 4, 34), np.float32)
    t_h, t_w = -(-4 // tile), -(-34 // tile)
    u = np.zeros(((tile + 2) ** 2, 5, 3), np.float32)
    y = np.zeros((2, 5, 4, 34), np.float32)
    blocks = np.zeros((1, 2), np.intp)
    scratch = np.zeros((2, kernels.scratch_length(tile, t_h, t_w)), np.float32)
    work = np.zeros((2, kernels.by_image_length(tile, 3, 5, t_h, t_w, 16)), np.float32)
    bias = np.empty(0, np.float32)
    kernels.forward_by_image(tile, x, u, y, bias, blocks, 1, 1, t_h, t_w, 16, scratch, work, 2)
    with pytest.raises(ValueError, match="work must be at least"):
        kernels.forward_by_image(tile, x, u, y, bias, blocks, 1, 1, t_h, t_w, 16, scratch,
                                 np.zeros((2, work.shape[1] - 1), np.float32), 2)
    with pytest.raises(ValueError, match="do not match"):
        kernels.forward_by_image(tile, x, u[:, :4], y, bias, blocks, 1, 1, t_h, t_w, 16,
                                 scratch, work, 2)
    with pytest.raises(ValueError, match="do not match"):
        kernels.forward_by_image(tile, x, u, y, np.ones(4, np.float32), blocks, 1, 1, t_h, t_w,
                                 16, scratch, work, 2)
    with pytest.raises(ValueError, match="beyond the padding"):
        kernels.forward_by_image(tile, x, u, y, bias, np.array([[2, 0]], np.intp), 1, 1, t_h,
                                 t_w, 16, scratch, work, 2)
    with pytest.raises(ValueError, match="run in lanes"):
        kernels.forward_by_image(tile, np.zeros((2, 3, 4, 8), np.float32), u,
                                 np.zeros((2, 5, 4, 8), np.float32), bias, blocks, 1, 1, t_h,
                                 -(-8 // tile), 16, scratch, work, 2)
    with pytest.raises(ValueError, match="scratch must be at least"):
        kernels.forward_by_image(tile, x, u, y, bias, blocks, 1, 1, t_h, t_w, 16,
                                 np.zeros((2, scratch.shape[1] - 1), np.float32), work, 2)
    with pytest.raises(ValueError, match="tile grid, got"):
        kernels.forward_by_image(tile, x, u, y, bias, blocks, 1, 1, t_h + 1, t_w, 16,
                                 np.zeros((2, kernels.scratch_length(tile, t_h + 1, t_w)),
                                          np.float32), work, 2)


def test_shapes_take_both_paths(tile):
    """SHAPES run rows of tiles both in lanes and by rows."""
    widths = {-(-(width + 2 * padding - 2) // tile) for (_, _, _, width), _, padding in SHAPES}
    assert {kernels.in_lanes(w) for w in widths} == {True, False}


# (x shape, out channels, padding, dilation): sub-grids of partly used tiles, unequal
# dilations, no padding, more than one group of 16 lane planes
DILATED = [
    ((2, 3, 8, 8), 4, 2, 2),
    ((1, 2, 6, 9), 3, (2, 3), (2, 3)),
    ((3, 2, 4, 9), 2, (2, 0), (2, 3)),
    ((2, 3, 12, 12), 5, 3, 3),
    ((2, 2, 8, 4), 3, (2, 0), (2, 1)),
    ((5, 2, 10, 10), 3, 2, 2),
    ((2, 2, 40, 36), 2, 4, 4),
]


@pytest.mark.parametrize("x_shape, out_channels, padding, dilation", DILATED)
def test_dilated_matches_reference_float64(x_shape, out_channels, padding, dilation, tile):
    x = RNG.standard_normal(x_shape)
    w = RNG.standard_normal((out_channels, x_shape[1], 3, 3))
    b = RNG.standard_normal(out_channels)
    tensors = [minigrad.tensor(a, requires_grad=True) for a in (x, w, b)]
    y = F.conv2d(*tensors, padding=padding, dilation=dilation)
    assert y._creator.winograd.tile == tile
    hyper = {"padding": padding, "dilation": dilation}
    np.testing.assert_allclose(y.data, R.conv2d(x, w, b, **hyper), rtol=0, atol=1e-12)
    gy = RNG.standard_normal(y.shape)
    y.backward(gy)
    for actual, expected in zip((t.grad for t in tensors), R.conv2d_vjp(x, w, gy, **hyper)):
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-12)


def test_dilated_gradcheck():
    inputs = [minigrad.tensor(RNG.standard_normal(shape), requires_grad=True)
              for shape in ((2, 2, 6, 6), (3, 2, 3, 3), (3,))]
    assert minigrad.gradcheck(lambda *t: F.conv2d(*t, padding=2, dilation=2), inputs)


@pytest.mark.parametrize("x_shape, padding, dilation", [
    ((1, 2, 7, 8), 2, 2),       # the height is odd
    ((1, 2, 8, 8), 1, 2),       # the padding is odd
    ((1, 2, 8, 6), (2, 3), 2),
])
def test_dilation_that_does_not_divide_takes_another_path(x_shape, padding, dilation):
    x = RNG.standard_normal(x_shape)
    w = RNG.standard_normal((2, 2, 3, 3))
    y = F.conv2d(minigrad.tensor(x, requires_grad=True), w, padding=padding,
                 dilation=dilation)
    assert y._creator.winograd is None
    np.testing.assert_allclose(y.data, R.conv2d(x, w, padding=padding, dilation=dilation),
                               rtol=0, atol=1e-12)


# (x shape, out channels, kernel size, padding): 5×5 and 7×7 cut into 3×3 blocks, in lanes
# and by rows, padding beyond k − 3 and unequal
LARGER = [
    ((2, 3, 8, 8), 4, 5, 2),
    ((1, 2, 6, 9), 3, 5, (2, 3)),
    ((3, 2, 7, 5), 2, 7, 4),
    ((18, 2, 9, 34), 3, 5, 2),
    ((2, 2, 5, 5), 3, 9, 6),
]


@pytest.mark.parametrize("x_shape, out_channels, size, padding", LARGER)
def test_larger_kernels_match_reference_float64(x_shape, out_channels, size, padding, tile):
    x = RNG.standard_normal(x_shape)
    w = RNG.standard_normal((out_channels, x_shape[1], size, size))
    b = RNG.standard_normal(out_channels)
    tensors = [minigrad.tensor(a, requires_grad=True) for a in (x, w, b)]
    y = F.conv2d(*tensors, padding=padding)
    assert y._creator.winograd.tile == tile
    np.testing.assert_allclose(y.data, R.conv2d(x, w, b, padding=padding), rtol=0, atol=1e-12)
    gy = RNG.standard_normal(y.shape)
    y.backward(gy)
    for actual, expected in zip((t.grad for t in tensors),
                                R.conv2d_vjp(x, w, gy, padding=padding)):
        # the gradients sum up to hundreds of products into values of up to a few hundred
        np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-12)


def test_larger_kernel_gradcheck():
    inputs = [minigrad.tensor(RNG.standard_normal(shape), requires_grad=True)
              for shape in ((2, 2, 5, 6), (3, 2, 5, 5), (3,))]
    assert minigrad.gradcheck(lambda *t: F.conv2d(*t, padding=2), inputs)


def test_larger_kernels_only_odd_square_undilated_and_padded_enough():
    base = dict(stride=(1, 1), dilation=(1, 1), groups=1, channels=64, out_channels=64, n=64,
                out_h=16, out_w=16, height=16, width=16)
    for mode in (True, 4):
        assert conv_winograd.tile_size((5, 5), mode=mode, padding=((2, 2), (2, 2)),
                                       **base) == 4
        for kernel, padding in (((5, 5), ((1, 2), (2, 2))), ((5, 5), ((2, 2), (2, 1))),
                                ((4, 4), ((2, 2), (2, 2))), ((5, 3), ((2, 2), (1, 1))),
                                ((7, 7), ((3, 3), (4, 4)))):
            assert conv_winograd.tile_size(kernel, mode=mode, padding=padding, **base) is None
        assert conv_winograd.tile_size((5, 5), mode=mode, padding=((4, 4), (4, 4)),
                                       **dict(base, dilation=(2, 2))) is None


@pytest.mark.parametrize("x_shape, out_channels, padding", SHAPES[:3])
def test_gradcheck(x_shape, out_channels, padding):
    inputs = [minigrad.tensor(RNG.standard_normal(shape), requires_grad=True)
              for shape in (x_shape, (out_channels, x_shape[1], 3, 3), (out_channels,))]
    assert minigrad.gradcheck(lambda *t: F.conv2d(*t, padding=padding), inputs)


def test_float32_rounding_stays_within_the_conv_tolerances():
    """Against the float64 reference, float32 results are off by a few units in the last place
    of the largest terms: F(2×2)'s transforms only add, subtract and halve; F(4×4)'s scale by
    up to 8 and 1/24, which costs a few more bits (still inside the bound)."""
    x = RNG.standard_normal((4, 64, 8, 8)).astype(np.float32)
    w = RNG.standard_normal((32, 64, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(32).astype(np.float32)
    (y, gx, gw, _), gy = _run(x, w, b, 1)
    wide = [a.astype(np.float64) for a in (x, w, gy)]
    expected = (R.conv2d(wide[0], wide[1], b.astype(np.float64), padding=1),) + tuple(
        R.conv2d_vjp(*wide, padding=1)[:2])
    for actual, exact in zip((y, gx, gw), expected):
        assert actual.dtype == np.float32
        # float32's unit roundoff times the magnitude of the sums
        assert np.abs(actual - exact).max() <= 2e-6 * np.abs(exact).max() * np.sqrt(64 * 9)


def test_float32_matches_torch_where_the_rules_choose_it(monkeypatch, tile):
    """A layer the speed rules give to F(4×4, 3×3) (128 channels on 8×8; with the tile
    fixture's forcing off), in float32 against PyTorch's own convolution."""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(conv_winograd, "USE_WINOGRAD", True)
    x = RNG.standard_normal((8, 128, 8, 8)).astype(np.float32)
    w = (RNG.standard_normal((128, 128, 3, 3)) * 0.05).astype(np.float32)
    b = RNG.standard_normal(128).astype(np.float32)
    assert _layout_of(x, w, 1)["winograd"].tile == 4
    (y, gx, gw, gb), gy = _run(x, w, b, 1)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, padding=1)
    ty.backward(torch.tensor(gy))
    for mine, theirs in zip((y, gx, gw, gb), (ty.detach(), tx.grad, tw.grad, tb.grad)):
        theirs = theirs.numpy()
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-5 * np.abs(theirs).max())


@pytest.mark.parametrize("chunk_bytes, x_shape, chunk", [
    (1, (5, 3, 6, 40), 1), (90_000, (5, 3, 6, 40), None),
    # in lanes: whole groups of 16 lane planes, at least one
    (1, (37, 3, 6, 7), 16), (1, (37, 3, 6, 8), 16)])
def test_chunked_batches_match_one_chunk(monkeypatch, chunk_bytes, x_shape, chunk):
    x = RNG.standard_normal(x_shape)
    w = RNG.standard_normal((4, 3, 3, 3))
    b = RNG.standard_normal(4)
    whole, gy = _run(x, w, b, 1)
    monkeypatch.setattr(conv_winograd, "CHUNK_BYTES", chunk_bytes)
    conv_module._layout.cache_clear()
    plan = _layout_of(x, w, 1)["winograd"]
    assert plan.chunk < x.shape[0] and (chunk is None or plan.chunk == chunk)
    for actual, expected in zip(_run(x, w, b, 1, gy)[0], whole):
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-12)
    conv_module._layout.cache_clear()


def test_chunks_hold_at_least_the_transformed_filters(monkeypatch):
    """Every chunk reads all of U: a chunk bound smaller than U gives way to U's size."""
    monkeypatch.setattr(conv_winograd, "CHUNK_BYTES", 1)
    plan = conv_winograd.WinogradPlan((64, 256, 4, 32), (256, 256, 3, 3), ((1, 1), (1, 1)),
                                      4, 4)
    filter_bytes = plan.points * 256 * 256 * 4
    per_image = plan.points * (256 + 256) * plan.per_image * 4
    assert plan.chunk == filter_bytes // per_image > 1


def test_products_by_points_match_reference(tile):
    """Where U outweighs a chunk's V and M the products are split by points, on the team."""
    x = RNG.standard_normal((4, 64, 8, 8))
    w = RNG.standard_normal((64, 64, 3, 3))
    b = RNG.standard_normal(64)
    plan = _layout_of(x, w, 1)["winograd"]
    assert plan.by_points or tile == 2
    (y, gx, gw, gb), gy = _run(x, w, b, 1)
    np.testing.assert_allclose(y, R.conv2d(x, w, b, padding=1), rtol=0, atol=1e-10)
    ex, ew, eb = R.conv2d_vjp(x, w, gy, padding=1)
    np.testing.assert_allclose(gx, ex, rtol=0, atol=1e-10)
    np.testing.assert_allclose(gw, ew, rtol=0, atol=1e-10)


def test_chunk_budget_is_a_cache_size():
    budget = workspace_module.chunk_budget()
    assert 64 << 10 <= budget <= workspace_module.NEAR_L3_BUDGET


def test_stale_workspace_contents_do_not_leak():
    """The tile matrices and the scratch are reused from call to call: every entry a call
    reads must be one it wrote. NaN in all of them before a call must not reach the results."""
    for x_shape in ((2, 3, 7, 5), (18, 3, 4, 3)):       # (and planes of one tile)
        x = RNG.standard_normal(x_shape).astype(np.float32)
        w = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32)
        b = RNG.standard_normal(4).astype(np.float32)
        first, gy = _run(x, w, b, 1)
        for name in ("winograd_v", "winograd_m", "winograd_scratch"):
            workspace.buffers[name].view(np.float32)[:] = np.nan
        for actual, expected in zip(_run(x, w, b, 1, gy)[0], first):
            np.testing.assert_array_equal(actual, expected)


def test_empty_batch():
    x = np.zeros((0, 3, 5, 5))
    (y, gx, gw, gb), _ = _run(x, RNG.standard_normal((2, 3, 3, 3)), np.ones(2), 1)
    assert y.shape == (0, 2, 5, 5) and gx.shape == x.shape
    np.testing.assert_array_equal(gw, 0)
    np.testing.assert_array_equal(gb, 0)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_thread_counts_agree(threads):
    """The transforms give every plane to one thread; the products are BLAS's, which may
    order its sums differently with another thread count: equal to rounding."""
    x = RNG.standard_normal((4, 16, 8, 8)).astype(np.float32)
    w = RNG.standard_normal((16, 16, 3, 3)).astype(np.float32)
    b = RNG.standard_normal(16).astype(np.float32)
    before = minigrad.get_num_threads()
    try:
        minigrad.set_num_threads(1)
        single, gy = _run(x, w, b, 1)
        minigrad.set_num_threads(threads)
        for actual, expected in zip(_run(x, w, b, 1, gy)[0], single):
            np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)
    finally:
        minigrad.set_num_threads(before)


@pytest.mark.parametrize("n, channels, size, out_channels, chosen", [
    (64, 128, 8, 128, 4),         # conv3x3_128_8x8: small map, many channels
    (64, 256, 4, 256, 4),         # conv3x3_256_4x4
    (64, 192, 16, 256, 4),        # larger map, deep and wide product
    (64, 128, 14, 256, 4),        # 4×4 tiles drop a quarter of 14×14: still faster
    (64, 64, 7, 256, 4),          # and of 7×7
    (64, 128, 6, 128, 2),         # 6×6: 4×4 tiles would drop 28 of 64 outputs
    (64, 32, 32, 64, 4),          # conv3x3_s1: a shallow product, a batch of many tiles
    (64, 32, 14, 32, 4),          # the MNIST FCN's middle layer
    (64, 48, 8, 64, 4),           # 48 channels on a small map
    (64, 16, 32, 32, None),       # too few channels
    (64, 32, 8, 16, None),
    (1, 32, 32, 64, None),        # shallow, at batch 1: too few tiles for the filter transform
    (4, 128, 8, 128, None),       # deep, but 16 tiles
    (8, 128, 8, 128, 4),          # 32
    (64, 32, 3, 32, None),        # 3×3 outputs: either tile drops 7 of 16
])
def test_choice_rules(monkeypatch, n, channels, size, out_channels, chosen):
    monkeypatch.setattr(conv_winograd, "USE_WINOGRAD", True)
    x = np.zeros((n, channels, size, size), np.float32)
    w = np.zeros((out_channels, channels, 3, 3), np.float32)
    plan = _layout_of(x, w, 1)["winograd"]
    assert (None if plan is None else plan.tile) == chosen


def test_only_3x3_stride_1_ungrouped():
    for kernel, stride, dilation, groups in [
            ((3, 3), (2, 2), (1, 1), 1), ((5, 5), (1, 1), (1, 1), 1),
            ((3, 3), (1, 1), (1, 1), 2), ((3, 1), (1, 1), (1, 1), 1)]:
        for mode in (True, 2, 4):
            assert conv_winograd.tile_size(kernel, stride, dilation, groups, 256, 256, 64, 8, 8,
                                           mode) is None


def test_dilated_only_where_the_dilation_divides_the_input_and_padding():
    args = ((3, 3), (1, 1), (2, 2), 1, 256, 256, 64, 16, 16)
    for mode in (True, 2, 4):
        assert conv_winograd.tile_size(*args, mode, 16, 16, ((2, 2), (2, 2))) is not None
        assert conv_winograd.tile_size(*args, mode, 16, 16, ((1, 1), (2, 2))) is None
        assert conv_winograd.tile_size(*args, mode, 15, 16, ((2, 2), (2, 2))) is None
        assert conv_winograd.tile_size(*args, mode) is None       # no shape given


# -- the kernels' own checks -----------------------------------------------------------------

def _buffers(m, n=2, channels=3, size=6, threads=2):
    """Input planes of size×size, outputs of the same size (padding 1), its tile matrix and
    scratch."""
    x = np.zeros((n, channels, size, size), np.float32)
    tiles = -(-size // m)
    v = np.zeros(((m + 2) ** 2, channels, n * tiles * tiles), np.float32)
    scratch = np.zeros((threads, kernels.scratch_length(m, tiles, tiles)), np.float32)
    return x, v, scratch, tiles


def test_kernels_reject_a_tile_matrix_of_the_wrong_shape(tile):
    x, v, scratch, t = _buffers(tile)
    with pytest.raises(ValueError, match="tiles must have shape"):
        kernels.input_tiles(tile, x, v[:, :, 1:], 1, 1, t, t, scratch, 2)
    with pytest.raises(ValueError, match="tiles must have shape"):
        kernels.output_tiles(tile, v[:, :2], x, np.empty(0, np.float32), t, t, scratch, 2)
    with pytest.raises(ValueError, match="tiles must have shape"):
        kernels.output_grad(6 - tile, x, v, t, t, scratch, 2)     # the other tile size


def test_kernels_reject_an_unknown_tile_size(tile):
    x, v, scratch, t = _buffers(tile)
    with pytest.raises(ValueError, match="tile size must be one of"):
        kernels.input_tiles(3, x, v, 1, 1, t, t, scratch, 2)


def test_kernels_reject_too_little_scratch(tile):
    x, v, scratch, t = _buffers(tile)
    with pytest.raises(ValueError, match="scratch must be at least"):
        kernels.input_tiles(tile, x, v, 1, 1, t, t,
                            np.zeros((1, scratch.shape[1] - 1), np.float32), 1)
    with pytest.raises(ValueError, match="scratch must be at least"):
        kernels.input_grad(tile, v, x, 1, 1, t, t,
                           np.zeros((2, scratch.shape[1] - 1), np.float32), 2)


def test_kernels_reject_a_grid_that_does_not_fit_the_planes(tile):
    x, v, scratch, t = _buffers(tile)
    with pytest.raises(ValueError, match="tile grid, got"):
        kernels.output_grad(tile, np.zeros((2, 3, 6 + tile, 6), np.float32), v, t, t, scratch,
                            2)
    with pytest.raises(ValueError, match="padded cells"):
        kernels.input_grad(tile, v, x, 5, 0, t, t, scratch, 2)
    with pytest.raises(ValueError, match="non-negative"):
        kernels.input_tiles(tile, x, v, -1, 0, t, t, scratch, 2)


def test_kernels_reject_a_dilation_that_does_not_divide_the_planes(tile):
    x, v, scratch, t = _buffers(tile)
    for dilation, top in (((4, 1), 0), ((2, 2), 1), ((0, 1), 0)):
        with pytest.raises(ValueError, match="dilation must be positive and divide"):
            kernels.input_tiles(tile, x, v, top, 0, t, t, scratch, 2, *dilation)
    # a dilation of 2 has four sub-grids of 3×3, each with its own tile grid
    grid = -(-3 // tile)
    lanes = np.zeros(v.shape[:2] + (2 * 4 * grid * grid,), np.float32)
    kernels.output_tiles(tile, lanes, x, np.empty(0, np.float32), grid, grid,
                         np.zeros((2, kernels.scratch_length(tile, grid, grid, 2, 2)),
                                  np.float32), 2, 2, 2)
    with pytest.raises(ValueError, match="tiles must have shape"):
        kernels.output_tiles(tile, lanes[:, :, 1:], x, np.empty(0, np.float32), grid, grid,
                             scratch, 2, 2, 2)
    with pytest.raises(ValueError, match="scratch must be at least"):
        kernels.input_grad(tile, lanes, x, 2, 2, grid, grid,
                           np.zeros((2, kernels.scratch_length(tile, grid, grid, 2, 2) - 1),
                                    np.float32), 2, 2, 2)


def test_kernels_reject_a_strided_last_axis_and_a_bad_bias(tile):
    x, v, scratch, t = _buffers(tile)
    wide = np.zeros(v.shape[:2] + (2 * v.shape[2],), np.float32)[:, :, ::2]
    with pytest.raises(ValueError, match="contiguous along its last axis"):
        kernels.input_tiles(tile, x, wide, 1, 1, t, t, scratch, 2)
    with pytest.raises(ValueError, match="bias must have 3 entries"):
        kernels.output_tiles(tile, v, x, np.ones(2, np.float32), t, t, scratch, 2)
    with pytest.raises(ValueError, match="num_threads"):
        kernels.output_tiles(tile, v, x, np.ones(3, np.float32), t, t, scratch, 0)


@needs_by_image
def test_backward_by_image_checks_its_arguments(tile):
    x = np.zeros((2, 3, 4, 34), np.float32)
    t_h, t_w = -(-4 // tile), -(-34 // tile)
    u = np.zeros(((tile + 2) ** 2, 5, 3), np.float32)
    gy = np.zeros((2, 5, 4, 34), np.float32)
    gx = np.zeros_like(x)
    shares = np.zeros((2, (tile + 2) ** 2, 5, 3), np.float32)
    blocks = np.zeros((1, 2), np.intp)
    scratch = np.zeros((2, kernels.scratch_length(tile, t_h, t_w)), np.float32)
    work = np.zeros((2, kernels.by_image_length(tile, 3, 5, t_h, t_w, 16)), np.float32)
    args = (blocks, 1, 1, t_h, t_w, 16, scratch, work, 2)
    kernels.backward_by_image(tile, x, u, gy, gx, shares, *args)
    with pytest.raises(ValueError, match="do not match"):
        kernels.backward_by_image(tile, x, u, gy, gx, np.zeros((3,) + shares.shape[1:],
                                                               np.float32), *args)
    with pytest.raises(ValueError, match="do not match"):
        kernels.backward_by_image(tile, x, u[:, :4], gy, gx, shares, *args)
    with pytest.raises(ValueError, match="do not match"):
        kernels.backward_by_image(tile, x, u, gy, gx[:, :2], shares, *args)
    with pytest.raises(ValueError, match="work must be at least"):
        kernels.backward_by_image(tile, x, u, gy, gx, shares, blocks, 1, 1, t_h, t_w, 16,
                                  scratch, np.zeros((2, work.shape[1] - 1), np.float32), 2)
    with pytest.raises(ValueError, match="beyond the padding"):
        kernels.backward_by_image(tile, x, u, gy, gx, shares, np.array([[0, 2]], np.intp),
                                  *args[1:])



@needs_by_image
def test_backward_by_group_checks_its_arguments(tile):
    x = np.zeros((20, 3, 8, 8), np.float32)
    t_h = t_w = -(-8 // tile)
    u = np.zeros(((tile + 2) ** 2, 5, 3), np.float32)
    gy = np.zeros((20, 5, 8, 8), np.float32)
    gx = np.zeros_like(x)
    shares = np.zeros((2, (tile + 2) ** 2, 5, 3), np.float32)
    blocks = np.zeros((1, 2), np.intp)
    scratch = np.zeros((2, kernels.scratch_length(tile, t_h, t_w)), np.float32)
    work = np.zeros((2, kernels.by_group_length(tile, 3, 5, t_h, t_w, 16)), np.float32)
    args = (blocks, 1, 1, t_h, t_w, 1, 1, 16, scratch, work, 2)
    kernels.backward_by_group(tile, x, u, gy, gx, shares, *args)
    with pytest.raises(ValueError, match="do not match"):      # more shares than groups
        kernels.backward_by_group(tile, x, u, gy, gx, np.zeros((3,) + shares.shape[1:],
                                                               np.float32), *args)
    with pytest.raises(ValueError, match="do not match"):
        kernels.backward_by_group(tile, x, u[:, :4], gy, gx, shares, *args)
    with pytest.raises(ValueError, match="do not match"):
        kernels.backward_by_group(tile, x, u, gy, gx[:, :2], shares, *args)
    with pytest.raises(ValueError, match="work must be at least"):
        kernels.backward_by_group(tile, x, u, gy, gx, shares, *args[:-2],
                                  np.zeros((2, work.shape[1] - 1), np.float32), 2)
    with pytest.raises(ValueError, match="beyond the padding"):
        kernels.backward_by_group(tile, x, u, gy, gx, shares, np.array([[0, 2]], np.intp),
                                  *args[1:])
    with pytest.raises(ValueError, match="do not run in lanes"):
        wide = 8 * tile
        kernels.backward_by_group(tile, np.zeros((20, 3, 8, wide), np.float32), u,
                                  np.zeros((20, 5, 8, wide), np.float32),
                                  np.zeros((20, 3, 8, wide), np.float32), shares, blocks, 1,
                                  1, t_h, 8, 1, 1, 16, scratch, work, 2)

@pytest.mark.parametrize("shape", [(3, 5), (17, 33), (1, 1)])
def test_filter_kernels_match_the_transform_and_its_adjoint(tile, shape):
    """U = G g Gᵀ per filter (blocks of 16 filters and a partial one), in ξ planes with a gap;
    the gradient kernel is its adjoint: <U(g), e> = <g, Uᵀ(e)>."""
    g_matrix = conv_winograd._G[tile]
    points = (tile + 2) ** 2
    weight = RNG.standard_normal(shape + (3, 3))
    planes = np.full((points, shape[0] * shape[1] + 3), np.nan)[:, :-3].reshape(
        (points,) + shape)
    kernels.filter_tiles(g_matrix, weight.reshape(-1, 9), planes, 2)
    expected = np.einsum("ki,lj,ocij->kloc", g_matrix, g_matrix,
                         weight).reshape((points,) + shape)
    np.testing.assert_allclose(planes, expected, rtol=0, atol=1e-12)
    grad_u = RNG.standard_normal((points,) + shape)
    grad_weight = np.full(shape + (3, 3), np.nan)
    kernels.filter_grad(g_matrix, grad_u, grad_weight.reshape(-1, 9), 3)
    np.testing.assert_allclose(np.vdot(grad_weight, weight), np.vdot(grad_u, expected),
                               rtol=1e-12)


def test_filter_kernels_check_their_arguments(tile):
    g_matrix = conv_winograd._G[tile]
    points = (tile + 2) ** 2
    weight = np.ones((6, 9))
    with pytest.raises(ValueError, match="G must be 4×3 or 6×3"):
        kernels.filter_tiles(np.ones((5, 3)), weight, np.empty((25, 2, 3)), 1)
    with pytest.raises(ValueError, match="do not match"):
        kernels.filter_tiles(g_matrix, weight, np.empty((points, 3, 3)), 1)
    with pytest.raises(ValueError, match="contiguous"):
        kernels.filter_grad(g_matrix, np.empty((points, 2, 6))[:, :, ::2], weight, 1)


def test_weight_gradient_alone_matches_reference(tile):
    """x without a gradient (a first layer, a frozen input): the backward skips the filters'
    transform, which only the input gradient reads."""
    x = RNG.standard_normal((2, 3, 6, 7))
    w = minigrad.tensor(RNG.standard_normal((4, 3, 3, 3)), requires_grad=True)
    y = F.conv2d(minigrad.tensor(x), w, padding=1)
    gy = RNG.standard_normal(y.shape)
    y.backward(gy)
    expected = R.conv2d_vjp(x, w.data, gy, padding=1)[1]
    np.testing.assert_allclose(w.grad, expected, rtol=0, atol=1e-12)
