"""The direct convolution's channel-blocked forward (``_blocks.conv`` via
``conv_direct.DirectPlan.blocked``): the shapes that take it against the plain-loop reference,
the rule that picks it, its thread independence and the kernels' own guards."""
import numpy as np
import pytest

import minigrad
from minigrad._kernels import block_conv as kernels
from minigrad.ops import conv as conv_module
from minigrad.ops import conv_direct

from helpers import reference as R
from helpers.conv import check_float32_conv, forced_winograd, on_threads

RNG = np.random.default_rng(11)

pytestmark = pytest.mark.skipif(not kernels.TILE,
                                reason="the channel-blocked tile is built with AVX-512 only")


@pytest.fixture(autouse=True)
def blocked_only(monkeypatch):
    """Winograd (stride 1), the strided Winograd forward and the lane tile in place would take
    some of these shapes; "always" lets the tile take stride-1 ones too."""
    forced_winograd(monkeypatch, None)
    monkeypatch.setattr(conv_module.conv_strided_winograd, "USE", False)
    monkeypatch.setattr(conv_direct, "BLOCKED", "always")
    monkeypatch.setattr(conv_direct, "LANE_OVER_BLOCKS_MAX_SPAN", 0)
    conv_module._layout.cache_clear()
    yield
    conv_module._layout.cache_clear()


# (x shape, weight shape, stride, padding, dilation): rows of 16 (two tiles), of 8 (one), of
# 9, 13 and 20 (a last tile overlapping the one before it), an odd number of tiles per image
# (a unit of one tile), several blocks of input and output channels, uneven padding, 5×5 and
# dilated kernels, strides of 2, 3 and (2, 1), stride 1.
CASES = [
    ((2, 32, 32, 32), (64, 32, 3, 3), 2, 1, 1),
    ((3, 16, 16, 16), (32, 16, 3, 3), 2, 1, 1),
    ((2, 16, 18, 18), (32, 16, 3, 3), 2, 1, 1),          # rows of 9
    ((1, 48, 25, 26), (96, 48, 3, 3), 2, 1, 1),          # 13 × 13
    ((2, 16, 15, 40), (32, 16, 3, 3), 2, (0, 1), 1),     # 7 rows of 20, unpadded rows
    ((2, 16, 19, 19), (32, 16, 5, 5), 2, 2, 1),
    ((2, 16, 20, 20), (32, 16, 3, 3), 2, 2, 2),          # dilated and strided
    ((1, 32, 26, 26), (32, 32, 3, 3), 3, 1, 1),          # stride 3: 9 phases
    ((2, 16, 9, 17), (32, 16, 3, 3), (2, 1), 1, 1),      # rows of 17, stride (2, 1)
    ((2, 16, 8, 8), (32, 16, 5, 5), 1, 2, 1),            # stride 1: rows of 8
    ((2, 32, 10, 12), (64, 32, 3, 3), 1, 2, 2),          # stride 1, dilated, wide padding
    ((1, 16, 16, 16), (32, 16, 3, 3), 2, 0, 1),          # no padding: 7 × 7 is under 8 wide
]


def _conv(case, bias):
    x_shape, w_shape, stride, padding, dilation = case
    hyper = dict(stride=stride, padding=padding, dilation=dilation)
    x = minigrad.tensor(RNG.standard_normal(x_shape).astype(np.float32), requires_grad=True)
    w = minigrad.tensor(RNG.standard_normal(w_shape).astype(np.float32), requires_grad=True)
    b = minigrad.tensor(RNG.standard_normal(w_shape[0]).astype(np.float32),
                        requires_grad=True) if bias else None
    return x, w, b, minigrad.nn.functional.conv2d(x, w, b, **hyper), hyper


def _blocked_on(monkeypatch, layout):
    """The blocked forward on a grid of the batch, image by image on cells, or image by image
    on zero-padded planes wherever the stride along the rows is 2 (any channel count)."""
    by_image, planar = {"batch": (1 << 30, None), "cells": (0, None),
                        "planes": (0, 1 << 30)}[layout]
    monkeypatch.setattr(conv_direct, "BLOCKED_BY_IMAGE", by_image)
    monkeypatch.setattr(conv_direct, "BLOCKED_PLANAR_CHANNELS", planar)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("layout", ["batch", "cells", "planes"])
def test_blocked_forward_matches_reference(monkeypatch, case, bias, layout):
    """Image by image (``conv_by_image``, ``conv_planar_by_image``) or on a grid of the
    batch."""
    _blocked_on(monkeypatch, layout)
    x, w, b, y, hyper = _conv(case, bias)
    op = y._creator
    assert op.direct is not None
    assert op.direct.blocked is (y.shape[3] >= kernels.BLOCK_POSITIONS)
    assert (op.direct.planar is not None) is (layout == "planes"
                                              and op.direct.stride[1] == 2)
    # the backward runs its own kernels, from the forward's saved inputs
    check_float32_conv(x, w, b, y, RNG, **hyper)


def test_float64_keeps_the_planar_kernels():
    x = minigrad.tensor(RNG.standard_normal((2, 16, 16, 16)), requires_grad=True)
    w = minigrad.tensor(RNG.standard_normal((32, 16, 3, 3)))
    y = minigrad.nn.functional.conv2d(x, w, stride=2, padding=1)
    assert y._creator.direct.blocked
    expected = R.conv2d(x.data, w.data, stride=2, padding=1)
    np.testing.assert_allclose(y.data, expected, rtol=1e-10, atol=1e-10)


def test_blocked_results_do_not_depend_on_the_thread_count_or_the_grid(monkeypatch):
    """The same sums in the same order on 1, 2 and 3 threads, image by image or not, on cells
    or planes."""
    x = minigrad.tensor(RNG.standard_normal((5, 32, 18, 22)).astype(np.float32),
                        requires_grad=True)
    w = minigrad.tensor(RNG.standard_normal((64, 32, 3, 3)).astype(np.float32))
    b = minigrad.tensor(RNG.standard_normal(64).astype(np.float32))

    def forward():
        y = minigrad.nn.functional.conv2d(x, w, b, stride=2, padding=1)
        assert y._creator.direct.blocked
        return y.data

    results = []
    for layout in ("batch", "cells", "planes"):
        _blocked_on(monkeypatch, layout)
        conv_module._layout.cache_clear()
        results += on_threads(forward)
    for other in results[1:]:
        np.testing.assert_array_equal(results[0], other)


@pytest.mark.parametrize("x_shape, w_shape, stride, groups, mode, blocked", [
    ((2, 32, 32, 32), (64, 32, 3, 3), 2, 1, True, True),
    ((2, 32, 32, 32), (64, 32, 3, 3), 1, 1, True, False),       # stride 1: position tiles
    ((2, 32, 32, 32), (64, 32, 3, 3), 1, 1, "always", True),
    ((2, 32, 32, 32), (64, 32, 3, 3), 2, 1, None, False),
    ((2, 24, 32, 32), (64, 24, 3, 3), 2, 1, True, False),       # channels: not whole blocks
    ((2, 32, 32, 32), (48, 32, 3, 3), 2, 1, True, False),       # outputs: not whole tiles
    ((2, 32, 14, 14), (64, 32, 3, 3), 2, 1, True, False),       # 7 wide: under a tile
    ((2, 64, 32, 32), (64, 32, 3, 3), 2, 2, True, False),       # grouped
    ((2, 16, 40, 40), (32, 16, 9, 9), 2, 1, True, False),       # more than 64 taps
    ((2, 32, 28, 28), (64, 32, 3, 3), 2, 1, True, False),       # 14 wide: the lane tile in place
    ((2, 32, 27, 27), (64, 32, 3, 3), 2, 1, True, True),        # 14 wide, not in place
])
def test_blocked_rule(monkeypatch, x_shape, w_shape, stride, groups, mode, blocked):
    monkeypatch.setattr(conv_direct, "BLOCKED", mode)
    padding = ((w_shape[2] // 2,) * 2, (w_shape[3] // 2,) * 2)
    plan = conv_direct.DirectPlan(x_shape, w_shape, padding, (1, 1), (stride, stride), groups)
    assert plan.blocked is blocked


@pytest.mark.parametrize("x_shape, w_shape, blocked", [
    ((2, 32, 32, 32), (64, 32, 3, 3), False),       # rows of 16 × 32 channels: in place
    ((2, 16, 32, 32), (32, 16, 3, 3), False),
    ((2, 64, 16, 16), (128, 64, 3, 3), False),      # rows of 8 × 64 channels
    ((2, 48, 32, 32), (96, 48, 3, 3), True),        # rows of 16 × 48 channels
    ((2, 128, 16, 16), (256, 128, 3, 3), True),
    ((2, 16, 64, 64), (32, 16, 3, 3), True),        # rows of 32
    ((2, 32, 31, 31), (64, 32, 3, 3), True),        # odd: not in place
])
def test_lane_tile_in_place_takes_short_strided_rows(monkeypatch, x_shape, w_shape, blocked):
    """``LANE_OVER_BLOCKS_MAX_SPAN``: output columns × input channels."""
    monkeypatch.setattr(conv_direct, "LANE_OVER_BLOCKS_MAX_SPAN", 512)
    plan = conv_direct.DirectPlan(x_shape, w_shape, ((1, 1), (1, 1)), (1, 1), (2, 2), 1)
    assert plan.blocked is blocked
    assert (plan.in_place is not None) is (x_shape[2] % 2 == 0)


@pytest.mark.parametrize("case", CASES)
def test_embed_writes_every_cell(case):
    """Each input value lands in its cell and every other cell is zeroed, whatever the grid
    held before (NaN here), image by image or for the batch."""
    x_shape, w_shape, stride, padding, dilation = case
    stride, dilation = conv_module.pair(stride, "s", "c"), conv_module.pair(dilation, "d", "c")
    pads = conv_module.resolve_padding(padding, w_shape[2:], stride, dilation, "c")
    plan = conv_direct.DirectPlan(x_shape, w_shape, pads, dilation, stride)
    x = RNG.standard_normal(x_shape).astype(np.float32)
    n, channels, rows, width = x_shape
    (sh, sw), top, left = stride, plan.top, plan.left
    cells = max(sh * sw * plan.phase_length,
                (plan.out_h - 1) * plan.grid_width + plan.out_w + int(plan.shifts.max()))
    expected = np.zeros((n, channels // 16, cells, 16), np.float32)
    R, C = np.arange(rows)[:, None] + top, np.arange(width)[None, :] + left
    q = ((R % sh) * sw + C % sw) * plan.phase_length + (R // sh) * plan.grid_width + C // sw
    expected[:, :, q] = x.reshape(n, channels // 16, 16, rows, width).transpose(0, 1, 3, 4, 2)
    geometry = (top, left, sh, sw, plan.phase_length, plan.grid_width)
    grid = np.full((n, channels // 16, cells * 16), np.nan, np.float32)
    kernels.embed(x, grid, *geometry, 2)
    np.testing.assert_array_equal(grid, expected.reshape(grid.shape))
    if plan.out_w < kernels.BLOCK_POSITIONS:
        return      # no tile fits: the forward takes other kernels
    # one image's grid reused for the next: the padding is zeroed again each time
    scratch = np.full((1, channels // 16, cells * 16), np.nan, np.float32)
    w = RNG.standard_normal(w_shape).astype(np.float32)
    y = np.empty((n, w_shape[0], plan.out_h, plan.out_w), np.float32)
    kernels.conv_by_image(x, scratch, conv_direct._pack_blocks(w), plan.shifts, y,
                          np.empty(0, np.float32), *geometry, 1)
    np.testing.assert_array_equal(scratch[0], expected[-1].reshape(scratch.shape[1:]))


@pytest.mark.parametrize("x_shape, w_shape, stride, planar", [
    ((2, 16, 32, 32), (32, 16, 3, 3), 2, True),
    ((2, 16, 32, 32), (32, 16, 5, 5), 2, True),
    ((2, 16, 32, 32), (32, 16, 3, 3), (1, 2), True),
    ((2, 32, 32, 32), (64, 32, 3, 3), 2, False),        # two blocks
    ((2, 16, 32, 32), (32, 16, 3, 3), 3, False),        # stride 3 along the rows
    ((2, 16, 32, 32), (32, 16, 3, 3), (2, 1), False),
])
def test_planar_rule(x_shape, w_shape, stride, planar):
    stride = conv_module.pair(stride, "s", "c")
    plan = conv_direct.DirectPlan(x_shape, w_shape, ((1, 1), (1, 1)), (1, 1), stride)
    assert (plan.planar is not None) is planar


def _kernel_inputs():
    x = RNG.standard_normal((2, 16, 16, 16)).astype(np.float32)
    w = RNG.standard_normal((32, 16, 3, 3)).astype(np.float32)
    plan = conv_direct.DirectPlan(x.shape, w.shape, ((1, 1), (1, 1)), (1, 1), (2, 2))
    cells = 4 * plan.phase_length
    grid = np.empty((2, 1, cells * 16), np.float32)
    kernels.embed(x, grid, 1, 1, 2, 2, plan.phase_length, plan.grid_width, 1)
    return x, w, plan, grid, conv_direct._pack_blocks(w)


def test_embed_checks_its_arguments_and_the_weight_packs_by_blocks():
    x, w, plan, grid, packed = _kernel_inputs()
    with pytest.raises(ValueError, match="cannot hold input"):
        kernels.embed(x, np.empty((2, 1, 3 * plan.phase_length * 16), np.float32), 1, 1, 2,
                      2, plan.phase_length, plan.grid_width, 1)
    with pytest.raises(ValueError, match="cannot hold input"):
        kernels.embed(x[:, :8].copy(), grid, 1, 1, 2, 2, plan.phase_length, plan.grid_width,
                      1)
    with pytest.raises(ValueError, match="cannot hold input"):
        kernels.embed(x, grid, 1, 1, 2, 2, plan.phase_length, 5, 1)
    with pytest.raises(ValueError, match="num_threads"):
        kernels.embed(x, grid, 1, 1, 2, 2, plan.phase_length, plan.grid_width, 0)
    # the packed weight: block of 32 outputs, block of 16 inputs, tap, input, output
    packed = conv_direct._pack_blocks(w)
    assert packed.shape == (1, 16 * 9 * 32)
    assert packed[0, (0 * 9 + 4) * 512 + 3 * 32 + 5] == w[5, 3, 1, 1]


def test_conv_kernel_checks_its_arguments():
    x, w, plan, grid, packed = _kernel_inputs()
    bias = np.empty(0, np.float32)
    shifts = plan.shifts
    with pytest.raises(ValueError, match="inconsistent shapes"):   # 6 wide: under a tile
        kernels.conv(grid, packed, shifts, np.empty((2, 32, 8, 6), np.float32), bias,
                     plan.grid_width, 1)
    with pytest.raises(ValueError, match="images for"):
        kernels.conv(grid[:1], packed, shifts, np.empty((2, 32, 8, 8), np.float32), bias,
                     plan.grid_width, 1)
    y = np.empty((2, 32, 8, 8), np.float32)
    kernels.conv(grid, packed, shifts, y, bias, plan.grid_width, 1)
    np.testing.assert_allclose(y, R.conv2d(x, w, stride=2, padding=1), rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="inconsistent shapes"):   # wider than the rows
        kernels.conv(grid, packed, shifts, y, bias, 7, 1)
    with pytest.raises(ValueError, match="inconsistent shapes"):
        kernels.conv(grid, packed[:, :-1], shifts, y, bias, plan.grid_width, 1)
    with pytest.raises(ValueError, match="inconsistent shapes"):
        kernels.conv(grid, packed, shifts, y, np.zeros(16, np.float32), plan.grid_width, 1)
    with pytest.raises(ValueError, match="fall outside a grid plane"):
        kernels.conv(grid, packed, shifts + 4 * plan.phase_length, y, bias, plan.grid_width,
                     1)
    with pytest.raises(ValueError, match="fall outside a grid plane"):
        kernels.conv(grid, packed, shifts - shifts.max() - 1, y, bias, plan.grid_width, 1)
    with pytest.raises(ValueError, match="num_threads"):
        kernels.conv(grid, packed, shifts, y, bias, plan.grid_width, 0)


def test_conv_by_image_checks_its_arguments():
    x, w, plan, grid, packed = _kernel_inputs()
    y = np.empty((2, 32, 8, 8), np.float32)
    bias = np.empty(0, np.float32)
    geometry = (1, 1, 2, 2, plan.phase_length, plan.grid_width)
    scratch = np.empty((2,) + grid.shape[1:], np.float32)
    kernels.conv_by_image(x, scratch, packed, plan.shifts, y, bias, *geometry, 2)
    np.testing.assert_allclose(y, R.conv2d(x, w, stride=2, padding=1), rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="cannot hold input"):    # a grid per thread
        kernels.conv_by_image(x, scratch, packed, plan.shifts, y, bias, *geometry, 3)
    with pytest.raises(ValueError, match="images for"):
        kernels.conv_by_image(x[:1], scratch, packed, plan.shifts, y, bias, *geometry, 2)
    with pytest.raises(ValueError, match="inconsistent shapes"):
        kernels.conv_by_image(x, scratch, packed[:, :-1], plan.shifts, y, bias, *geometry, 2)
    with pytest.raises(ValueError, match="fall outside a grid plane"):
        kernels.conv_by_image(x, scratch, packed, plan.shifts + 4 * plan.phase_length, y,
                              bias, *geometry, 2)
    with pytest.raises(ValueError, match="num_threads"):
        kernels.conv_by_image(x, scratch, packed, plan.shifts, y, bias, *geometry, 0)


def test_conv_planar_by_image_checks_its_arguments():
    """Its results against the reference on planes that held NaN before, and its guards."""
    x, w, plan, grid, packed = _kernel_inputs()
    y = np.empty((2, 32, 8, 8), np.float32)
    bias = np.empty(0, np.float32)
    shifts = plan.tap_offsets @ np.array([18, 1], np.intp)
    planes = np.full((2, 16, 18 * 18), np.nan, np.float32)
    kernels.conv_planar_by_image(x, planes, packed, shifts, y, bias, 1, 1, 2, 18, 2)
    np.testing.assert_allclose(y, R.conv2d(x, w, stride=2, padding=1), rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="cannot hold input"):    # planes per thread
        kernels.conv_planar_by_image(x, planes, packed, shifts, y, bias, 1, 1, 2, 18, 3)
    with pytest.raises(ValueError, match="cannot hold input"):    # rows too narrow
        kernels.conv_planar_by_image(x, planes, packed, shifts, y, bias, 1, 3, 2, 18, 2)
    with pytest.raises(ValueError, match="cannot hold input"):    # too few rows
        kernels.conv_planar_by_image(x, planes[:, :, :17 * 18].copy(), packed, shifts, y,
                                     bias, 2, 1, 2, 18, 2)
    with pytest.raises(ValueError, match="cannot hold input"):
        kernels.conv_planar_by_image(x[:, :8].copy(), planes[:, :8].copy(), packed, shifts, y,
                                     bias, 1, 1, 2, 18, 2)
    with pytest.raises(ValueError, match="images for"):
        kernels.conv_planar_by_image(x[:1], planes, packed, shifts, y, bias, 1, 1, 2, 18, 2)
    with pytest.raises(ValueError, match="inconsistent shapes"):
        kernels.conv_planar_by_image(x, planes, packed[:, :-1], shifts, y, bias, 1, 1, 2, 18,
                                     2)
    with pytest.raises(ValueError, match="inconsistent shapes"):  # rows of 12 read 23 > 18
        kernels.conv_planar_by_image(x, planes, packed, shifts,
                                     np.empty((2, 32, 8, 12), np.float32), bias, 1, 1, 1, 18,
                                     2)
    with pytest.raises(ValueError, match="fall outside a grid plane"):
        kernels.conv_planar_by_image(x, planes, packed, shifts + 36, y, bias, 1, 1, 2, 18, 2)
    with pytest.raises(ValueError, match="fall outside a grid plane"):
        kernels.conv_planar_by_image(x, planes, packed, shifts - 1, y, bias, 1, 1, 2, 18, 2)
    with pytest.raises(ValueError, match="num_threads"):
        kernels.conv_planar_by_image(x, planes, packed, shifts, y, bias, 1, 1, 2, 18, 0)
