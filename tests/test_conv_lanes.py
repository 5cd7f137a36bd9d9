"""The direct convolution's lane tile (output channels in the vector lanes,
``_kernels.conv_lanes`` via ``conv_direct.DirectPlan.lanes``): the shapes that take it against
the plain-loop reference, the rule that picks it, and the kernel's own guards."""
import numpy as np
import pytest

import minigrad
from minigrad._kernels import direct_conv as kernels
from minigrad.ops import conv as conv_module
from minigrad.ops import conv_direct

from helpers import reference as R
from helpers.conv import forced_winograd, on_threads

RNG = np.random.default_rng(7)

pytestmark = pytest.mark.skipif(not kernels.LANE_TILE,
                                reason="the lane tile is built with AVX-512 only")


@pytest.fixture(autouse=True)
def no_winograd(monkeypatch):
    """Winograd would take some of these 3×3 shapes, the channel-blocked tile some strided
    ones; the lane tile is what is tested (on rows a whole number of 16 wide too, which it
    takes where the compiler tunes for Zen)."""
    forced_winograd(monkeypatch, None)
    monkeypatch.setattr(conv_direct, "LANE_WIDE_ROWS", True)
    monkeypatch.setattr(conv_direct, "LANE_ONE_VECTOR_ROWS", False)
    monkeypatch.setattr(conv_direct, "LANE_FEW_CHANNELS", None)
    monkeypatch.setattr(conv_direct, "BLOCKED", None)
    conv_module._layout.cache_clear()
    yield
    conv_module._layout.cache_clear()


# (x shape, weight shape, padding, dilation): rows of 14 and 8 (one per tile) and of 7 (two rows
# per tile; on an odd number of rows the last tile has one), one to three blocks of output
# channels, 'same' 5×5, dilation, rows padded unevenly, padding wider than the map (rows
# whose taps mostly read padding, which the tile skips). With a multiple of 32 input channels
# the input gradient runs on the lane tile too.
CASES = [
    ((2, 16, 14, 14), (32, 16, 3, 3), 1, 1),
    ((3, 24, 7, 7), (64, 24, 3, 3), 1, 1),
    ((2, 16, 7, 7), (96, 16, 3, 3), 1, 1),
    ((2, 16, 14, 14), (32, 16, 5, 5), 2, 1),
    ((1, 16, 14, 14), (32, 16, 3, 3), 2, 2),
    ((2, 17, 9, 14), (32, 17, 3, 3), 1, 1),            # 9 rows of 14
    ((2, 16, 6, 7), (32, 16, 3, 3), (0, 1), 1),        # 4 rows of 7, rows unpadded
    ((1, 16, 5, 7), (32, 16, 1, 3), (0, 1), 1),        # 5 rows of 7: the last tile has one
    ((2, 16, 1, 7), (32, 16, 3, 3), 1, 1),             # one row of 7
    ((2, 16, 3, 7), (32, 16, 7, 3), (3, 1), 1),        # most taps on padding rows
    ((2, 16, 2, 7), (32, 16, 5, 3), (4, 1), 1),        # rows of padding only, top and bottom
    ((2, 32, 14, 14), (16, 32, 3, 3), 1, 1),           # the input gradient only
    ((2, 32, 7, 7), (32, 32, 3, 3), 1, 1),             # both
    ((2, 64, 7, 7), (32, 64, 5, 5), 2, 1),
    ((1, 32, 14, 14), (32, 32, 3, 3), 2, 2),
    ((2, 32, 5, 7), (16, 32, 3, 3), 1, 1),             # 5 rows of 7
    ((2, 32, 3, 14), (32, 32, 5, 3), (3, 1), (2, 1)),  # dilated rows, mostly padding
    ((2, 16, 8, 8), (32, 16, 3, 3), 1, 1),             # rows of 8
    ((2, 32, 8, 8), (64, 32, 5, 5), 2, 1),
    ((1, 32, 3, 8), (32, 32, 3, 3), (2, 1), 1),
    ((2, 16, 4, 28), (32, 16, 3, 3), 1, 1),            # rows of 28: two tiles of 14
    ((2, 32, 6, 16), (64, 32, 5, 5), 2, 1),            # rows of 16: two tiles of 8
    ((1, 32, 5, 32), (32, 32, 3, 3), 2, 2),            # dilated, rows of 32: four tiles of 8
    ((2, 16, 3, 20), (32, 16, 3, 5), (1, 8), 1),       # 32 wide from 20: tiles on padding
    ((2, 16, 7, 7), (48, 16, 3, 3), 1, 1),             # one vector: three blocks of 16
    ((2, 32, 8, 8), (16, 32, 5, 5), 2, 1),             # one vector, two rows of 8
    ((2, 16, 5, 14), (16, 16, 3, 3), 1, 1),            # one vector, the last tile one row
    ((2, 32, 4, 4), (32, 32, 3, 3), 1, 1),             # two rows of 4, both passes
    ((3, 16, 5, 4), (32, 16, 5, 5), 2, 1),             # 5×5 on 4 wide, the last tile one row
    ((2, 32, 4, 4), (16, 32, 3, 3), 1, 1),             # one vector, two rows of 4
]


# Strided forwards on the lane tile (x shape, weight shape, padding, dilation, stride): outputs
# 16, 14, 8, 7 and 4 wide, odd heights (taps with a row fewer inside), dilated, 7×7, stride
# (2, 1).
# Their input gradients keep the phase planes' position tiles.
STRIDED = [
    ((2, 16, 32, 32), (32, 16, 3, 3), 1, 1, 2),
    ((2, 16, 28, 28), (32, 16, 3, 3), 1, 1, 2),
    ((2, 16, 15, 15), (64, 16, 3, 3), 1, 1, 2),
    ((2, 16, 14, 13), (32, 16, 5, 5), 2, 1, 2),
    ((1, 16, 31, 31), (32, 16, 3, 3), 2, 2, 2),
    ((2, 16, 16, 16), (32, 16, 7, 7), 3, 1, 2),
    ((2, 16, 15, 14), (32, 16, 3, 3), 1, 1, (2, 1)),
    ((1, 16, 23, 21), (32, 16, 3, 3), (0, 2), 1, 3),
    ((2, 32, 8, 8), (64, 32, 3, 3), 1, 1, 2),          # 4 wide: two rows of 4
    ((2, 16, 7, 7), (32, 16, 3, 3), 1, 1, 2),
]


def _uses_lanes(case, one_vector_rows=False, few_channels=None):
    """(forward, input gradient) on the lane tile, by the rule (with ``one_vector_rows`` and
    ``few_channels``, those of ``LANE_ONE_VECTOR_ROWS`` and ``LANE_FEW_CHANNELS``)."""
    (_, channels, height, width), (out_channels, _, kh, kw), padding, dilation = case[:4]
    stride = np.broadcast_to(case[4] if len(case) > 4 else 1, 2)
    pads = np.broadcast_to(padding, 2)
    dilation = np.broadcast_to(dilation, 2)
    out_width = (width + 2 * pads[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1

    def rule(summed, produced, width):
        # two vectors of 32 output channels on any whole number of tiles, one of 16 on one
        # (on several with LANE_ONE_VECTOR_ROWS)
        tile = kernels.lane_tile_width(width)
        enough = summed >= 16 or (few_channels is not None and summed >= few_channels
                                  and summed * kh * kw >= conv_direct.LANE_MIN_SUMS)
        return enough and (tile > 0 if produced % 32 == 0 else
                           produced % 16 == 0 and tile > 0
                           and (tile == width or one_vector_rows))
    return (rule(channels, out_channels, out_width),
            rule(out_channels, channels, width) and stride.max() == 1)


def _widths(case):
    """The case's input and output widths."""
    (_, _, _, width), (_, _, _, kw), padding, dilation = case[0], case[1], case[2], case[3]
    stride = np.broadcast_to(case[4] if len(case) > 4 else 1, 2)
    pads, dilation = np.broadcast_to(padding, 2), np.broadcast_to(dilation, 2)
    return width, (width + 2 * pads[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1


def test_rows_of_8_take_one_vector_from_enough_images():
    images = conv_direct.LANE_ONE_VECTOR_MIN_IMAGES
    assert conv_direct.lane_vectors(64, 8, images) == 1
    assert conv_direct.lane_vectors(64, 8, images - 1) == 2
    assert conv_direct.lane_vectors(64, 14, images) == 2
    assert conv_direct.lane_vectors(64, 16, images) == 2     # tiles of 8, rows of 16
    weight = np.zeros((64, 32, 3, 3), np.float32)
    packed, tap_major = conv_direct._pack_lanes(weight, 1, 8, images)
    assert tap_major and packed.shape[2] == kernels.lane_block(4, 1)
    plan = conv_direct.DirectPlan((images, 32, 8, 8), weight.shape, ((1, 1), (1, 1)), (1, 1))
    assert plan.lanes and plan.input_lanes
    x = RNG.standard_normal((images, 32, 8, 8)).astype(np.float32)
    weight = RNG.standard_normal(weight.shape).astype(np.float32)
    expected = R.conv2d(x.astype(np.float64), weight.astype(np.float64), None, padding=1)
    np.testing.assert_allclose(plan.forward(x, weight, None), expected, rtol=1e-4,
                               atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize("case", [c for c in CASES + STRIDED if 8 in _widths(c)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_vector_on_rows_of_8_matches_reference(case, dtype, monkeypatch):
    """Every case with rows of 8 again, each batch taking one vector per tile there."""
    monkeypatch.setattr(conv_direct, "LANE_ONE_VECTOR_MIN_IMAGES", 1)
    conv_module._layout.cache_clear()
    test_lane_tile_matches_reference(case, dtype, True)


# The Zen rules, each case with LANE_ONE_VECTOR_ROWS and LANE_FEW_CHANNELS on.
# One vector of output channels (16, 48) on rows of several tiles, two rows each (forward, or
# the input gradient, which produces 16 channels): rows of 28 and 56 (tiles of 14), 16 and 32
# (tiles of 8), a strided forward to 16 wide, 5×5 'same', the last tile one row.
ONE_VECTOR_ROWS = [
    ((2, 16, 4, 28), (16, 16, 3, 3), 1, 1),
    ((2, 16, 5, 16), (16, 16, 5, 5), 2, 1),
    ((2, 32, 3, 32), (48, 32, 3, 3), 1, 1),
    ((2, 32, 6, 28), (16, 32, 3, 3), 1, 1),
    ((1, 16, 3, 56), (16, 16, 3, 3), 1, 1),
    ((2, 16, 32, 32), (16, 16, 3, 3), 1, 1, 2),
]
# Fewer than 16 channels summed, with enough taps for LANE_MIN_SUMS: the forward (8 → 16 5×5
# on 16 wide, the inception branch's; 8 → 32 on 7 wide; 12 → 32 on 8 wide), the input
# gradient (8 output channels summed into 32), a kernel of 7×3 taps.
FEW_CHANNELS = [
    ((2, 8, 16, 16), (16, 8, 5, 5), 2, 1),
    ((2, 8, 7, 7), (32, 8, 5, 5), 2, 1),
    ((2, 12, 8, 8), (32, 12, 5, 5), 2, 1),
    ((2, 32, 14, 14), (8, 32, 5, 5), 2, 1),
    ((2, 8, 5, 14), (16, 8, 7, 3), (3, 1), 1),
]


@pytest.mark.parametrize("case", ONE_VECTOR_ROWS + FEW_CHANNELS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_zen_rules_match_reference(case, dtype, monkeypatch):
    monkeypatch.setattr(conv_direct, "LANE_ONE_VECTOR_ROWS", True)
    monkeypatch.setattr(conv_direct, "LANE_FEW_CHANNELS", 8)
    conv_module._layout.cache_clear()
    assert any(_uses_lanes(case, True, 8))
    test_lane_tile_matches_reference(case, dtype, True)


def test_few_channels_rule(monkeypatch):
    """Under LANE_MIN_CHANNELS, the lane tile only with LANE_FEW_CHANNELS and, per output, at
    least LANE_MIN_SUMS products (channels × taps)."""
    for few in (None, 8):
        monkeypatch.setattr(conv_direct, "LANE_FEW_CHANNELS", few)
        for channels, kernel, lanes in ((8, 5, True), (8, 3, False), (6, 5, False),
                                        (12, 5, True), (16, 3, True)):
            plan = conv_direct.DirectPlan((2, channels, 14, 14), (32, channels, kernel, kernel),
                                          ((kernel // 2,) * 2,) * 2, (1, 1))
            assert plan.lanes is (lanes and (few is not None or channels >= 16))


def test_one_vector_rows_rule(monkeypatch):
    """With one vector of output channels, rows of several tiles take the lane tile only with
    LANE_ONE_VECTOR_ROWS (the forward; the input gradient by the same rule)."""
    for setting in (False, True):
        monkeypatch.setattr(conv_direct, "LANE_ONE_VECTOR_ROWS", setting)
        for width, several in ((28, True), (16, True), (14, False), (8, False)):
            plan = conv_direct.DirectPlan((2, 16, 6, width), (16, 16, 3, 3), ((1, 1), (1, 1)),
                                          (1, 1))
            assert plan.lanes is (setting or not several)
            assert plan.input_lanes is (setting or not several)


def test_wide_rows_go_to_the_position_tiles_unless_the_lane_tile_wins(monkeypatch):
    """Rows a whole number of 16 wide take the position tiles where LANE_WIDE_ROWS is off."""
    monkeypatch.setattr(conv_direct, "LANE_WIDE_ROWS", False)
    for width, lanes in ((32, False), (16, False), (28, True), (8, True), (24, True)):
        plan = conv_direct.DirectPlan((2, 32, 6, width), (64, 32, 3, 3), ((1, 1), (1, 1)),
                                      (1, 1))
        assert (plan.lanes, plan.input_lanes) == (lanes, lanes)


def _conv(case, dtype, bias=True):
    x_shape, w_shape, padding, dilation = case[:4]
    hyper = dict(padding=padding, dilation=dilation, stride=case[4] if len(case) > 4 else 1)
    x = minigrad.tensor(RNG.standard_normal(x_shape).astype(dtype), requires_grad=True)
    w = minigrad.tensor(RNG.standard_normal(w_shape).astype(dtype), requires_grad=True)
    b = minigrad.tensor(RNG.standard_normal(w_shape[0]).astype(dtype), requires_grad=True) \
        if bias else None
    y = minigrad.nn.functional.conv2d(x, w, b, **hyper)
    return x, w, b, y, hyper


@pytest.mark.parametrize("case", CASES + STRIDED)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias", [True, False])
def test_lane_tile_matches_reference(case, dtype, bias):
    x, w, b, y, hyper = _conv(case, dtype, bias)
    op = y._creator
    assert op.direct is not None
    backward = op.direct_backward
    assert (op.direct.lanes, backward is not None and backward.input_lanes) == _uses_lanes(
        case, conv_direct.LANE_ONE_VECTOR_ROWS, conv_direct.LANE_FEW_CHANNELS)
    expected = R.conv2d(x.data.astype(np.float64), w.data.astype(np.float64),
                        None if b is None else b.data.astype(np.float64), **hyper)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    assert y.dtype == dtype
    np.testing.assert_allclose(y.data, expected, rtol=tol, atol=tol * np.abs(expected).max())
    # the backward still runs its own kernels, from the forward's saved inputs
    gy = RNG.standard_normal(y.shape).astype(dtype)
    y.backward(gy)
    grads = R.conv2d_vjp(x.data.astype(np.float64), w.data.astype(np.float64),
                         gy.astype(np.float64), **hyper)
    for got, want in zip((x.grad, w.grad), grads):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


# 1×1 convolutions (x shape, weight shape, the forward's and the input gradient's rows): planes
# of 64, 32, 49 and 14 positions as rows of 8, 8, 7 and 14; 25 positions make no rows
POINTWISE = [
    ((1, 16, 8, 8), (32, 16, 1, 1), 8, None),         # input gradient of 16: BLAS
    ((1, 32, 4, 8), (64, 32, 1, 1), 8, 8),
    ((1, 64, 7, 7), (32, 64, 1, 1), 7, 7),
    ((1, 32, 2, 7), (96, 32, 1, 1), 14, 14),
    ((1, 32, 5, 5), (32, 32, 1, 1), None, None),       # BLAS
    ((2, 32, 4, 8), (64, 32, 1, 1), None, None),       # a batch: BLAS per image
]


@pytest.mark.parametrize("case", POINTWISE)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pointwise_on_the_lane_tile_matches_reference(case, dtype):
    x_shape, w_shape, row, input_row = case
    x = minigrad.tensor(RNG.standard_normal(x_shape).astype(dtype), requires_grad=True)
    w = minigrad.tensor(RNG.standard_normal(w_shape).astype(dtype), requires_grad=True)
    b = minigrad.tensor(RNG.standard_normal(w_shape[0]).astype(dtype), requires_grad=True)
    y = minigrad.nn.functional.conv2d(x, w, b)
    op = y._creator
    assert (op.pointwise_row, op.pointwise_input_row) == (row, input_row)
    x64, w64 = x.data.astype(np.float64), w.data.astype(np.float64)
    expected = R.conv2d(x64, w64, b.data.astype(np.float64))
    tol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(y.data, expected, rtol=tol, atol=tol * np.abs(expected).max())
    gy = RNG.standard_normal(y.shape).astype(dtype)
    y.backward(gy)
    for got, want in zip((x.grad, w.grad), R.conv2d_vjp(x64, w64, gy.astype(np.float64))):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


def _plan(case):
    x_shape, w_shape, padding, dilation = case[:4]
    pads = np.broadcast_to(padding, 2)
    return conv_direct.DirectPlan(x_shape, w_shape, tuple((int(p), int(p)) for p in pads),
                                  tuple(int(d) for d in np.broadcast_to(dilation, 2)),
                                  tuple(int(s) for s in np.broadcast_to(
                                      case[4] if len(case) > 4 else 1, 2)))


@pytest.mark.parametrize("case", [c for c in CASES + STRIDED if _uses_lanes(c)[0]])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lane_tile_reads_x_in_place_as_it_reads_the_grid(case, dtype):
    """A forward with no grid kept for the weight gradient reads x itself where the tile
    skips every product of padding (``DirectPlan.in_place``): the same sums in the same order
    as on the grid, so the same bits."""
    plan = _plan(case)
    assert plan.lanes
    x = RNG.standard_normal(case[0]).astype(dtype)
    w = RNG.standard_normal(case[1]).astype(dtype)
    b = RNG.standard_normal(case[1][0]).astype(dtype)
    in_place = plan.forward(x, w, b)
    np.testing.assert_array_equal(in_place, plan.forward(x, w, b, plan._x_grid(x, True)))
    hyper = dict(padding=case[2], dilation=case[3], stride=case[4] if len(case) > 4 else 1)
    expected = R.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                        **hyper)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(in_place, expected, rtol=tol, atol=tol * np.abs(expected).max())


@pytest.mark.parametrize("case, in_place", [
    (((2, 16, 14, 14), (32, 16, 3, 3), 1, 1), True),
    (((2, 32, 4, 4), (32, 32, 3, 3), 1, 1), True),
    (((1, 16, 14, 14), (32, 16, 3, 3), 2, 2), True),     # dilated: two padding columns a side
    (((2, 16, 14, 14), (32, 16, 5, 5), 2, 1), True),
    (((2, 16, 14, 14), (32, 16, 7, 7), 3, 1), False),    # three padding columns a side
    (((2, 16, 4, 4), (32, 16, 5, 5), 2, 1), True),       # two rows of 4
    (((2, 16, 4, 2), (32, 16, 3, 1), 1, 1), False),      # padding on both sides of a tile
    (((2, 16, 6, 7), (32, 16, 3, 3), (0, 1), 1), True),
    (((2, 16, 32, 32), (32, 16, 3, 3), 1, 1, 2), True),  # cells two apart
    (((2, 32, 8, 8), (64, 32, 3, 3), 1, 1, 2), True),
    (((2, 16, 15, 15), (64, 16, 3, 3), 1, 1, 2), False),  # taps with a row fewer inside
    (((1, 16, 23, 21), (32, 16, 3, 3), (0, 2), 1, 3), False),  # cells three apart
])
def test_in_place_rule(case, in_place):
    plan = _plan(case)
    assert plan.lanes and (plan.in_place is not None) is in_place


@pytest.mark.parametrize("case", [c for c in CASES if _uses_lanes(c)[1]])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_input_gradient_reads_gy_in_place_as_it_reads_its_grid(case, dtype):
    """The lane tile's input gradient reads the output gradient itself where it skips every
    product outside it (``DirectPlan.input_in_place``): the same bits as from gy's grid."""
    plan = _plan(case)
    w = RNG.standard_normal(case[1]).astype(dtype)
    gy = RNG.standard_normal((plan.n, plan.out_channels, plan.out_h, plan.out_w)).astype(dtype)
    assert plan.input_in_place is not None
    in_place = plan.grad_input(gy, w)
    plan.__dict__["input_in_place"] = None           # the grid
    np.testing.assert_array_equal(in_place, plan.grad_input(gy, w))


@pytest.mark.parametrize("case, in_place", [
    (((2, 32, 14, 14), (16, 32, 3, 3), 1, 1), True),
    (((2, 32, 8, 8), (64, 32, 5, 5), 2, 1), True),
    (((2, 32, 14, 14), (16, 32, 7, 7), 3, 1), False),    # three columns of gy's padding
])
def test_input_in_place_rule(case, in_place):
    plan = _plan(case)
    assert plan.input_lanes and (plan.input_in_place is not None) is in_place


def test_conv_lanes_in_place_checks_the_cells_it_reads():
    """In place, reads past a plane's ends are errors: a 7×7 'same' kernel's third padding
    column is not skipped, so its first tap would read before the first plane."""
    x = RNG.standard_normal((2, 16, 14, 14)).astype(np.float32)
    plan = _plan(((2, 16, 14, 14), (32, 16, 7, 7), 3, 1))
    offsets, inside = plan.lane_reads
    shifts = np.ascontiguousarray((plan.tap_offsets[:, 0] - 3) * 14 + plan.tap_offsets[:, 1] - 3)
    packed, tap_major = conv_direct._pack_lanes(np.ones((32, 16, 7, 7), np.float32), 1, 14)
    assert not tap_major                                  # rows of 14: one-row tiles
    y = np.empty((2, 32, 14, 14), np.float32)
    with pytest.raises(ValueError, match="outside a grid plane"):
        kernels.conv_lanes(x.reshape(2, 16, -1), packed, shifts, offsets, inside, y,
                           np.empty(0, np.float32), 14, 0, 1)
    with pytest.raises(ValueError, match="step must be 1 or 2"):
        kernels.conv_lanes(x.reshape(2, 16, -1), packed, shifts, offsets, inside, y,
                           np.empty(0, np.float32), 14, 0, 1, 3)
    # one-row tiles read weights packed channel by channel, two-row tiles tap by tap
    with pytest.raises(ValueError, match="packed channel by channel"):
        kernels.conv_lanes(x.reshape(2, 16, -1), packed, shifts, offsets, inside, y,
                           np.empty(0, np.float32), 14, 0, 1, 1, True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows, block", [(32, 32), (16, 16), (20, 32), (32, 16)])
def test_pack_weight_tap_by_tap(dtype, rows, block):
    """packed[b, t·C + c, j] = weight[b·B + j, c, t] (zeros past the last row), by the
    register transposes (float32, contiguous) and by the plain loop (float64, a view)."""
    weight = RNG.standard_normal((rows, 5, 9)).astype(dtype)
    packed = np.full((-(-rows // block), 45, block), np.nan, dtype)
    kernels.pack_weight(weight, packed, 2, True)
    padded = np.zeros((packed.shape[0] * block, 5, 9), dtype)
    padded[:rows] = weight
    expected = padded.reshape(-1, block, 5, 9).transpose(0, 3, 2, 1).reshape(packed.shape)
    np.testing.assert_array_equal(packed, expected)
    kernels.pack_weight(weight.transpose(0, 2, 1).copy().transpose(0, 2, 1), packed, 1, True)
    np.testing.assert_array_equal(packed, expected)


def test_lane_tile_gives_the_position_tiles_results(monkeypatch):
    """The same sums as the position tiles (one chunk of channels), in the same order: with a
    3×1 kernel no tap is moved to a list that skips a column, and the skipped rows' products
    are zeros."""
    case = ((4, 16, 14, 14), (32, 16, 3, 1), (1, 0), 1)
    results = []
    for lanes in (16, None):
        monkeypatch.setattr(conv_direct, "LANE_MIN_CHANNELS", lanes)
        conv_module._layout.cache_clear()
        rng = np.random.default_rng(3)
        x = rng.standard_normal(case[0]).astype(np.float32)
        w = rng.standard_normal(case[1]).astype(np.float32)
        y = minigrad.nn.functional.conv2d(minigrad.tensor(x, requires_grad=True),
                                          minigrad.tensor(w), padding=case[2])
        assert y._creator.direct.lanes is (lanes is not None)
        results.append(y.data)
    np.testing.assert_array_equal(*results)


def test_lane_tile_results_do_not_depend_on_the_thread_count():
    x = minigrad.tensor(RNG.standard_normal((5, 16, 7, 7)).astype(np.float32),
                        requires_grad=True)
    w = minigrad.tensor(RNG.standard_normal((64, 16, 3, 3)).astype(np.float32))

    def forward():
        y = minigrad.nn.functional.conv2d(x, w, padding=1)
        assert y._creator.direct.lanes
        return y.data

    results = on_threads(forward)
    for other in results[1:]:
        np.testing.assert_array_equal(results[0], other)


@pytest.mark.parametrize("x_shape, w_shape, stride, groups, lanes", [
    ((2, 16, 14, 14), (32, 16, 3, 3), 1, 1, True),
    ((2, 16, 7, 7), (64, 16, 3, 3), 1, 1, True),
    ((2, 8, 14, 14), (32, 8, 3, 3), 1, 1, False),      # under LANE_MIN_CHANNELS
    ((2, 16, 14, 14), (40, 16, 3, 3), 1, 1, False),    # not a whole number of blocks
    ((2, 16, 14, 14), (48, 16, 3, 3), 1, 1, True),     # one vector: three blocks of 16
    ((2, 16, 28, 28), (16, 16, 3, 3), 1, 1, False),    # one vector: rows of one tile only
    ((2, 16, 28, 28), (32, 16, 3, 3), 1, 1, True),     # rows of 28: two tiles of 14
    ((2, 16, 30, 30), (32, 16, 3, 3), 1, 1, False),    # rows of 30: no whole tiles
    ((2, 16, 8, 8), (32, 16, 3, 3), 1, 1, True),       # rows of 8
    ((2, 16, 9, 9), (32, 16, 3, 3), 1, 1, False),
    ((2, 16, 4, 4), (32, 16, 3, 3), 1, 1, True),       # two rows of 4
    ((2, 16, 8, 8), (64, 16, 3, 3), 2, 1, True),       # strided to 4 wide
    ((2, 16, 4, 12), (32, 16, 3, 3), 1, 1, False),     # rows of 12: no whole tiles
    ((2, 16, 28, 28), (32, 16, 3, 3), 2, 1, True),     # 14 wide, strided: the forward
    ((2, 32, 14, 14), (64, 16, 3, 3), 1, 2, False),    # grouped
    ((2, 16, 1, 7), (32, 16, 1, 3), 1, 1, True),       # one row of 7: a tile of one row
    ((2, 16, 14, 14), (32, 16, 9, 9), 1, 1, False),    # more taps than a tile's lists hold
])
def test_lane_tile_rule(x_shape, w_shape, stride, groups, lanes):
    padding = ((w_shape[2] // 2,) * 2, (w_shape[3] // 2,) * 2)
    plan = conv_direct.DirectPlan(x_shape, w_shape, padding, (1, 1), (stride, stride), groups)
    assert plan.lanes is lanes
    # the input gradient: the same rule on the input's width, the channels' roles swapped
    # (stride 1 only)
    lanes = lanes and stride == 1
    n, channels, height, width = x_shape
    swapped = conv_direct.DirectPlan((n, w_shape[0] * groups, height, width),
                                     (channels, w_shape[0], *w_shape[2:]), padding, (1, 1),
                                     (stride, stride), groups)
    assert swapped.input_lanes is lanes


def test_conv_lanes_kernel_checks_its_arguments():
    x = RNG.standard_normal((2, 16, 14, 14)).astype(np.float32)
    w = RNG.standard_normal((32, 16, 3, 3)).astype(np.float32)
    plan = conv_direct.DirectPlan(x.shape, w.shape, ((1, 1), (1, 1)), (1, 1))
    grid = plan._x_grid(x, forward=True).copy()
    packed, _ = conv_direct._pack_lanes(w, 1, 14)
    y = np.empty((2, 32, 14, 14), np.float32)

    def conv(grid=grid, packed=packed, shifts=plan.forward_shifts, offsets=plan.tap_offsets,
             y=y, bias=np.empty(0, np.float32), inside=(1, 15, 1, 15)):
        kernels.conv_lanes(grid, packed, shifts, offsets, inside, y, bias, plan.forward_width,
                           0, 2)

    conv()
    np.testing.assert_allclose(y, R.conv2d(x, w, None, padding=1), rtol=1e-4, atol=1e-3)
    # the last read: the farthest cell of x a tap reads (the tile skips those of padding)
    starts, ends = plan.tap_inside
    reads = 1 + max(r * plan.forward_width + col + plan.forward_shifts[t]
                    for t in range(plan.taps)
                    for r in range(max(starts[t, 0], 0), min(ends[t, 0], plan.out_h))
                    for col in range(max(starts[t, 1], 0), min(ends[t, 1], plan.out_w)))
    conv(grid=grid[:, :, :reads].copy())
    with pytest.raises(ValueError, match="outside"):
        conv(grid=grid[:, :, :reads - 1].copy())
    with pytest.raises(ValueError, match="4 or 7 wide or a multiple of 14 or 8"):
        conv(y=np.empty((2, 32, 14, 9), np.float32))
    with pytest.raises(ValueError, match="inconsistent"):
        conv(shifts=plan.forward_shifts[:-1])
    with pytest.raises(ValueError, match="inconsistent"):
        conv(offsets=plan.tap_offsets[:-1])
    with pytest.raises(ValueError, match="inside"):
        conv(inside=(1, 15, 1))
    many = np.zeros(kernels.LANE_TAPS + 1, np.intp)
    with pytest.raises(ValueError, match="at most"):
        conv(packed=np.zeros((1, 16 * many.size, 32), np.float32), shifts=many,
             offsets=np.zeros((many.size, 2), np.intp))
    with pytest.raises(ValueError, match="inconsistent"):
        conv(bias=np.ones(3, np.float32))
    with pytest.raises(ValueError, match="inconsistent"):
        conv(y=np.empty((2, 64, 14, 14), np.float32))      # more outputs than blocks
    with pytest.raises(ValueError, match="inconsistent"):
        conv(packed=np.ascontiguousarray(packed[:, :, :16]))


def test_lane_block_counts_vectors_of_channels():
    assert kernels.lane_block(4) == kernels.lane_block(4, 2) == 32
    assert kernels.lane_block(4, 1) == 16 and kernels.lane_block(8, 1) == 8
    with pytest.raises(ValueError, match="vectors must be 1 or 2"):
        kernels.lane_block(4, 3)
    assert conv_direct.lane_vectors(64) == 2 and conv_direct.lane_vectors(48) == 1

