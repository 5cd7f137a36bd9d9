"""The direct stride-1 convolution kernels (minigrad/_kernels/direct_conv.pyx via
minigrad/ops/conv_direct.py): shapes that exercise every tile edge against the plain-loop
reference, the choice of algorithm, and the kernels' own guards."""
import numpy as np
import pytest

import minigrad
from minigrad._kernels import direct_conv as kernels
from minigrad.ops import conv as conv_module
from minigrad.ops import conv_direct

from helpers import reference as R
from helpers.conv import forced_winograd

RNG = np.random.default_rng(99)


@pytest.fixture(autouse=True)
def no_winograd(monkeypatch):
    """These tests are about the direct path and its rules: Winograd, which would take some
    of their 3×3 shapes, is off."""
    forced_winograd(monkeypatch, None)

OB, XB = kernels.OUT_BLOCK, kernels.POSITION_BLOCK
RUN, RUNS = kernels.POSITION_RUN, kernels.POSITION_RUNS
GO, TG = kernels.GRAD_OUT_BLOCK, kernels.TAP_BLOCK

# (x shape, weight shape, padding, dilation): output channels around the register blocks
# (OB, GO: tile_sizes.h), tap counts around TAP_BLOCK, planes of one position, of less than a
# tile and of several tiles with a ragged last one, batches above MAX_CHUNKS (16).
CASES = [
    ((1, 1, 3, 3), (1, 1, 3, 3), 0, 1),             # a single output position
    ((2, 3, 5, 7), (7, 3, 1, 3), 0, 1),             # 3 taps, O < OB
    ((3, 5, 9, 8), (9, 5, 3, 3), 1, 1),             # O = OB + 1
    ((2, 4, 11, 13), (33, 4, 2, 5), (1, 2), 1),     # 10 taps (TG + 1), O = GO + 1
    ((1, 2, 12, 10), (8, 2, 3, 3), 2, 2),           # dilation 2, pad 2
    ((2, 3, 14, 9), (16, 3, 5, 5), 2, (2, 1)),      # 25 taps, mixed dilation
    ((17, 2, 6, 6), (5, 2, 3, 3), 1, 1),            # batch above MAX_CHUNKS
    ((40, 1, 4, 5), (3, 1, 3, 3), 1, 1),            # 40 images in 16 chunks of 3
    ((1, 40, 7, 7), (12, 40, 7, 7), 3, 1),          # 49 taps, many channels
    ((2, 3, 3, 50), (4, 3, 3, 3), 1, 1),            # rows longer than a tile
    ((2, 2, 6, 7), (3, 2, 2, 4), "same", 1),        # asymmetric 'same' padding
    ((2, 3, 8, 8), (20, 3, 3, 3), 1, 1),            # O = 20, 40: the narrower weight-gradient
    ((2, 3, 8, 8), (40, 3, 3, 3), 1, 1),            # tiles (24 with AVX2, else 16)
]


def _tensors(case, dtype):
    x_shape, w_shape, padding, dilation = case
    x = RNG.standard_normal(x_shape).astype(dtype)
    w = RNG.standard_normal(w_shape).astype(dtype)
    b = RNG.standard_normal(w_shape[0]).astype(dtype)
    return x, w, b, dict(padding=padding, dilation=dilation)


def _check_direct_against_reference(x, w, b, hyper, dtype):
    """conv2d on the direct path: output and gradients against the float64 numpy reference."""
    tx, tw, tb = (minigrad.tensor(a, requires_grad=True) for a in (x, w, b))
    y = minigrad.nn.functional.conv2d(tx, tw, tb, **hyper)
    assert y._creator.direct is not None
    x64, w64, b64 = (a.astype(np.float64) for a in (x, w, b))
    expected = R.conv2d(x64, w64, b64, **hyper)
    gy = RNG.standard_normal(y.shape).astype(dtype)
    y.backward(gy)
    expected_grads = R.conv2d_vjp(x64, w64, gy.astype(np.float64), **hyper)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    for got, want in zip((y.data, tx.grad, tw.grad, tb.grad), (expected,) + expected_grads):
        assert got.dtype == dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1.0, np.abs(want).max()))


def _stacking(monkeypatch, on):
    """Stack the batch's planes wherever the stride-1 direct path can (``on``), else never.
    The rule is read when a layout is built, so the cached layouts are dropped."""
    monkeypatch.setattr(conv_direct, "STACK_MAX_TILE_SHARE", 1e9 if on else None)
    conv_module._layout.cache_clear()


@pytest.mark.parametrize("case", CASES + [
    ((3, 2, 5, 6), (4, 2, 3, 3), 3, 1),             # padded past 'same': output taller than x
    ((4, 3, 4, 4), (8, 3, 3, 3), (0, 2), 1),        # rows padded, columns not
])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("stack", [False, True])
def test_direct_path_matches_reference(monkeypatch, case, dtype, stack):
    """Each image's planes apart and, with a batch, the batch's planes stacked."""
    _stacking(monkeypatch, stack)
    x, w, b, hyper = _tensors(case, dtype)
    _check_direct_against_reference(x, w, b, hyper, dtype)
    conv_module._layout.cache_clear()


@pytest.mark.parametrize("x_shape, padding, forward, backward", [
    ((64, 16, 8, 8), 2, True, True),       # the inception 5×5 branch on 8×8
    ((3, 2, 5, 6), 5, True, False),        # output taller than x: its gradient overflows a slot
    ((1, 2, 8, 8), 2, False, False),       # one image: nothing to stack
])
def test_stacked_planes_give_the_separate_planes_results_bit_for_bit(
        monkeypatch, x_shape, padding, forward, backward):
    """The same sums in the same order (the channels in one chunk), only read from and
    written to another layout."""
    x, w, b, _ = _tensors((x_shape, (9, x_shape[1], 5, 5), padding, 1), np.float32)
    pads = ((padding, padding), (padding, padding))
    plans = {}
    for stack in (False, True):
        _stacking(monkeypatch, stack)
        plans[stack] = conv_direct.DirectPlan(x.shape, w.shape, pads, (1, 1))
    assert (plans[True].stack_runs is not None) is forward
    assert (plans[True].stack_input_runs is not None) is backward
    assert plans[False].stack_runs is plans[False].stack_input_runs is None
    y = plans[True].forward(x, w, b)
    np.testing.assert_array_equal(y, plans[False].forward(x, w, b))
    gy = RNG.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_array_equal(plans[True].grad_input(gy, w), plans[False].grad_input(gy, w))


@pytest.mark.parametrize("x_shape, w_shape, padding, dilation, stack", [
    ((7, 8, 16, 16), (16, 8, 5, 5), 2, 1, True),     # stacked, interleaved, one image left
    ((6, 3, 8, 8), (9, 3, 5, 5), 2, 1, True),        # runs cross rows, interleaved
    ((8, 3, 4, 4), (9, 3, 3, 3), 1, 1, True),        # runs cross images: in order
    ((2, 3, 12, 20), (9, 3, 3, 3), 1, 1, False),     # runs cross rows
    ((2, 2, 10, 9), (5, 2, 3, 3), (3, 1), (2, 1), False),   # dilated, uneven padding
    ((3, 2, 5, 6), (4, 2, 3, 3), 3, 1, True),        # output taller than x
    ((4, 2, 9, 16), (5, 2, 7, 3), (3, 1), 1, True),  # a row with no tap inside
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_skipped_padding_rows_give_the_same_bits(monkeypatch, x_shape, w_shape, padding,
                                                  dilation, stack, dtype):
    """The position tiles skip the taps that read only padding rows (``row_taps``), in
    stacked tiles of one row of several images (``interleave``): products by zero left
    out, so the same bits as every tap."""
    _stacking(monkeypatch, stack)
    x, w, b, _ = _tensors((x_shape, w_shape, padding, dilation), dtype)
    pads = tuple((p, p) for p in np.broadcast_to(padding, 2))
    plan = conv_direct.DirectPlan(x.shape, w.shape, pads, tuple(np.broadcast_to(dilation, 2)))
    assert plan.row_taps is not None
    y = plan.forward(x, w, b)
    gy = RNG.standard_normal(y.shape).astype(dtype)
    gx = plan.grad_input(gy, w)
    plan.row_taps = plan.input_row_taps = None
    plan.interleave = plan.input_interleave = False
    np.testing.assert_array_equal(y, plan.forward(x, w, b))
    np.testing.assert_array_equal(gx, plan.grad_input(gy, w))
    conv_module._layout.cache_clear()


def test_padding_rows_skipped_by_the_rules(monkeypatch):
    # 5×5 'same' on 16×16: rows 0 and 15 skip two kernel rows, 1 and 14 one
    _stacking(monkeypatch, True)
    plan = conv_direct.DirectPlan((64, 8, 16, 16), (16, 8, 5, 5), ((2, 2), (2, 2)), (1, 1))
    np.testing.assert_array_equal(plan.row_taps[[0, 1, 2, 14, 15]],
                                  [[10, 25], [5, 25], [0, 25], [0, 20], [0, 15]])
    # the input gradient's input row r reads output rows r + 2 − i
    np.testing.assert_array_equal(plan.input_row_taps, plan.row_taps[::-1])
    # rows of 16 hold whole runs of either width: each image's runs are its own
    assert plan.stack_runs is not None and plan.interleave and plan.input_interleave
    # no padding rows, nothing to skip
    assert conv_direct.DirectPlan((2, 3, 8, 8), (4, 3, 3, 3), ((0, 0), (1, 1)),
                                  (1, 1)).row_taps is None
    # strided: output row r's kernel row i reads input row 2·r + i − 1; the input gradient
    # of a stride keeps its own kernels
    strided = conv_direct.DirectPlan((2, 3, 8, 8), (4, 3, 3, 3), ((1, 1), (1, 1)), (1, 1),
                                     (2, 2))
    np.testing.assert_array_equal(strided.row_taps, [[3, 9], [0, 9], [0, 9], [0, 9]])
    assert strided.input_row_taps is None
    stem = conv_direct.DirectPlan((2, 3, 64, 64), (64, 3, 7, 7), ((3, 3), (3, 3)), (1, 1),
                                  (2, 2))
    np.testing.assert_array_equal(stem.row_taps[[0, 1, 2, 30, 31]],
                                  [[21, 49], [7, 49], [0, 49], [0, 49], [0, 35]])
    conv_module._layout.cache_clear()


def test_interleaving_needs_each_planes_runs_in_its_own_rows():
    # planes 3 rows apart: two runs each, in their own rows
    assert conv_direct._interleaves(np.array([[0, 0], [1, 0], [3, 0], [4, 0]]), 2, 3)
    # a plane's second run starts in the next plane's rows
    assert not conv_direct._interleaves(np.array([[0, 0], [3, 0], [4, 0], [5, 0]]), 2, 3)
    # not a whole number per plane
    assert not conv_direct._interleaves(np.array([[0, 0], [1, 0], [3, 0]]), 2, 3)


def test_planes_are_stacked_where_that_saves_tiles():
    # 8×8 'same' 5×5 (rows 10 wide): runs go on into the next image; 32×32 3×3 fills its
    # tiles one image at a time
    small = conv_direct.DirectPlan((64, 16, 8, 8), (32, 16, 5, 5), ((2, 2), (2, 2)), (1, 1))
    large = conv_direct.DirectPlan((64, 16, 32, 32), (32, 16, 3, 3), ((1, 1), (1, 1)), (1, 1))
    assert small.stack_runs is not None and small.stack_input_runs is not None
    assert large.stack_runs is None and large.stack_input_runs is None
    strided = conv_direct.DirectPlan((64, 16, 8, 8), (32, 16, 5, 5), ((2, 2), (2, 2)), (1, 1),
                                     (2, 2))
    assert strided.stack_runs is None


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_channels_summed_in_chunks_match_reference(monkeypatch, stride, dtype):
    # planes of at least a band of tiles are summed a chunk of channels at a time; a chunk of
    # 3 splits 7 channels (forward) and 5 (input gradient) unevenly
    monkeypatch.setattr(conv_direct, "CHANNEL_CHUNK", 3)
    side = int(np.sqrt(kernels.BAND_TILES * kernels.POSITION_BLOCK)) * stride + 2
    x, w, b, hyper = _tensors(((1, 7, side, side), (5, 7, 3, 3), 1, 1), dtype)
    hyper["stride"] = stride
    plan = conv_direct.DirectPlan(x.shape, w.shape, ((1, 1), (1, 1)), (1, 1), (stride,) * 2)
    assert conv_direct.channel_chunk(plan.positions) == 3       # a band of tiles or more
    _check_direct_against_reference(x, w, b, hyper, dtype)


STRIDED = [
    ((2, 3, 9, 9), (5, 3, 3, 3), 1, 1, 2),               # odd size: unequal phases
    ((2, 2, 8, 11), (4, 2, 3, 3), 1, 1, (1, 2)),         # stride along the width only
    ((1, 3, 13, 12), (9, 3, 7, 7), 3, 1, 2),             # a 7×7 stem
    ((2, 2, 10, 9), (3, 2, 3, 3), (2, 1), 2, 2),         # dilation and stride
    ((1, 4, 11, 10), (33, 4, 5, 4), (0, 2), 1, (3, 2)),  # stride 3, O = GO + 1
    ((3, 1, 5, 5), (2, 1, 2, 2), 0, 1, 2),               # every tap its own phase
    ((2, 3, 32, 31), (5, 3, 3, 3), 1, 1, 2),             # rows of 16: the phases interleaved
    ((1, 2, 32, 32), (6, 2, 7, 7), 3, 1, 2),             # a 7×7 stem on interleaved rows
]


@pytest.mark.parametrize("case", STRIDED)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("gemm_grad_input", [False, True])
@pytest.mark.parametrize("interleave", [False, True])
def test_strided_direct_path_matches_reference(monkeypatch, case, dtype, gemm_grad_input,
                                               interleave):
    """The input gradient on the stride phases and, on planes up to the rule's size, by
    im2col's product and col2im (the weight gradient the other way round); the forward on
    whole phase planes and, on output rows of the rule's width, on interleaved phase rows
    (each forced both ways here)."""
    monkeypatch.setattr(conv_direct, "GEMM_GRAD_INPUT_MAX_POSITIONS",
                        1 << 30 if gemm_grad_input else -1)
    monkeypatch.setattr(conv_direct, "GEMM_GRAD_INPUT_MIN_CHANNELS", 0)
    # the weight gradient by GEMM exactly when the input gradient is not: each mix once
    monkeypatch.setattr(conv_direct, "GEMM_GRAD_WEIGHT_MIN_CHANNELS",
                        1 << 30 if gemm_grad_input else 1)
    monkeypatch.setattr(conv_direct, "INTERLEAVE_MIN_COLUMNS", 1 if interleave else None)
    conv_module._layout.cache_clear()
    x_shape, w_shape, padding, dilation, stride = case
    x, w, b, hyper = _tensors((x_shape, w_shape, padding, dilation), dtype)
    hyper["stride"] = stride
    _check_direct_against_reference(x, w, b, hyper, dtype)
    conv_module._layout.cache_clear()


def test_interleaved_phase_rows_give_the_planes_results_bit_for_bit(monkeypatch):
    """The same sums in the same order, only read from another layout."""
    x, w, b, hyper = _tensors(((3, 5, 33, 32), (9, 5, 3, 3), 1, 1), np.float32)
    plans = {}
    for interleave in (False, True):
        monkeypatch.setattr(conv_direct, "INTERLEAVE_MIN_COLUMNS", 1 if interleave else None)
        plans[interleave] = conv_direct.DirectPlan(x.shape, w.shape, ((1, 1), (1, 1)), (1, 1),
                                                   (2, 2))
    assert plans[True].interleaved and not plans[False].interleaved
    np.testing.assert_array_equal(plans[True].forward(x, w, b), plans[False].forward(x, w, b))


@pytest.mark.parametrize("channels, stride, by_gemm", [
    (conv_direct.GEMM_GRAD_WEIGHT_MIN_CHANNELS, 2, True),
    (conv_direct.GEMM_GRAD_WEIGHT_MIN_CHANNELS - 1, 2, False),
    (conv_direct.GEMM_GRAD_WEIGHT_MIN_CHANNELS, 1, False),
])
def test_strided_weight_gradient_goes_to_gemm_from_the_rule_channels(channels, stride,
                                                                     by_gemm):
    plan = conv_direct.DirectPlan((2, channels, 16, 16), (8, channels, 3, 3),
                                  ((1, 1), (1, 1)), (1, 1), (stride, stride))
    assert plan.grad_weight_by_gemm is by_gemm


@pytest.mark.parametrize("side, stride, channels, by_gemm", [
    (16, 2, 8, True),       # 8×8 outputs: the rule's size
    (14, 2, 8, True),       # 7×7
    (18, 2, 8, False),      # 9×9
    (16, (1, 2), 8, False),
    (32, 2, 3, True),       # fewer input channels than a tile's block
    (8, 1, 3, False),       # stride 1: the direct input gradient on any plane
])
def test_strided_input_gradient_goes_to_gemm_by_the_rule(side, stride, channels, by_gemm):
    stride = (stride, stride) if isinstance(stride, int) else stride
    plan = conv_direct.DirectPlan((2, channels, side, side), (8, channels, 3, 3),
                                  ((1, 1), (1, 1)), (1, 1), stride)
    assert (plan.out_h * plan.out_w <= conv_direct.GEMM_GRAD_INPUT_MAX_POSITIONS
            or channels < conv_direct.GEMM_GRAD_INPUT_MIN_CHANNELS or not by_gemm)
    assert plan.grad_input_by_gemm is by_gemm


def test_gradcheck_on_the_strided_direct_path():
    x, w, b, hyper = _tensors(((2, 2, 7, 8), (3, 2, 3, 3), 1, 1), np.float64)
    inputs = [minigrad.tensor(a, requires_grad=True) for a in (x, w, b)]
    assert minigrad.gradcheck(
        lambda *t: minigrad.nn.functional.conv2d(*t, stride=2, **hyper), inputs)


def test_gradcheck_on_the_direct_path():
    x, w, b, hyper = _tensors(((2, 3, 5, 6), (9, 3, 3, 2), (1, 2), (2, 1)), np.float64)
    inputs = [minigrad.tensor(a, requires_grad=True) for a in (x, w, b)]
    assert minigrad.gradcheck(
        lambda *t: minigrad.nn.functional.conv2d(*t, **hyper), inputs)


@pytest.mark.parametrize("kernel, stride, groups, direct", [
    ((3, 3), (1, 1), 1, True), ((1, 3), (1, 1), 1, True), ((5, 5), (1, 1), 1, True),
    ((1, 2), (1, 1), 1, False),      # too few taps: im2col
    ((3, 3), (2, 2), 1, True),       # strided: on the stride phases
    ((7, 7), (2, 2), 1, True),
    ((3, 3), (4, 4), 1, False),      # stride beyond the kernel: phases without taps, im2col
    ((3, 3), (1, 1), 2, True),       # grouped: one direct convolution per group
    ((3, 3), (1, 1), 8, False),      # 4 channels per group: im2col
    ((3, 3), (1, 1), 32, False),     # depthwise: the stencil kernels
])
def test_algorithm_choice(kernel, stride, groups, direct):
    assert conv_direct.applies(kernel, stride, groups, channels=32) is direct


GROUPED = [
    ((2, 24, 7, 8), (9, 8, 3, 3), 1, 1, 1, 3),           # 8 channels in, 3 out per group
    ((2, 16, 9, 9), (8, 8, 3, 3), 1, 1, 2, 2),           # grouped and strided
    ((1, 16, 8, 8), (66, 8, 5, 5), 2, 2, 1, 2),          # dilated, 33 out per group (GO + 1)
    ((2, 16, 32, 32), (6, 8, 3, 3), 1, 1, 2, 2),         # strided, interleaved phase rows
]


@pytest.mark.parametrize("case", GROUPED)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("gemm_backward", [False, True])
def test_grouped_direct_path_matches_reference(monkeypatch, case, dtype, gemm_backward):
    """Also with a strided layer's gradients forced to im2col's product, per group (and a
    stride-1 layer's planes stacked)."""
    _stacking(monkeypatch, gemm_backward)
    monkeypatch.setattr(conv_direct, "GEMM_GRAD_INPUT_MAX_POSITIONS",
                        1 << 30 if gemm_backward else -1)
    monkeypatch.setattr(conv_direct, "GEMM_GRAD_INPUT_MIN_CHANNELS", 0)
    monkeypatch.setattr(conv_direct, "GEMM_GRAD_WEIGHT_MIN_CHANNELS",
                        1 if gemm_backward else 1 << 30)
    x_shape, w_shape, padding, dilation, stride, groups = case
    x, w, b, hyper = _tensors((x_shape, w_shape, padding, dilation), dtype)
    hyper.update(stride=stride, groups=groups)
    _check_direct_against_reference(x, w, b, hyper, dtype)
    conv_module._layout.cache_clear()


@pytest.mark.parametrize("padding, dilation, stride, width", [
    (((1, 1), (1, 1)), (1, 1), (1, 1), 11),      # one gap of 1 between rows, not 2
    (((2, 2), (0, 3)), (1, 1), (1, 1), 13),      # the wider of the two sides
    (((2, 2), (2, 2)), (2, 2), (1, 1), 12),      # dilated 'same'
    (((0, 0), (0, 0)), (1, 1), (1, 1), 10),      # valid: no gap
    (((1, 1), (1, 1)), (1, 1), (2, 2), 6),       # strided: each phase of the padded row
])
def test_grid_rows_share_their_padding(padding, dilation, stride, width):
    plan = conv_direct.DirectPlan((2, 3, 10, 10), (4, 3, 3, 3), padding, dilation, stride)
    assert plan.grid_width == width
    x = RNG.standard_normal((2, 3, 10, 10))
    w = RNG.standard_normal((4, 3, 3, 3))
    y = plan.forward(x, w, None)
    pads = (padding[0][0], padding[0][1], padding[1][0], padding[1][1])
    padded = np.pad(x, ((0, 0), (0, 0), pads[:2], pads[2:]))
    np.testing.assert_allclose(y, R.conv2d(padded, w, None, stride=stride, dilation=dilation),
                               rtol=1e-10, atol=1e-10)
    # the gradients read the same grid: each the adjoint of the forward
    gy = RNG.standard_normal(y.shape)
    np.testing.assert_allclose(np.vdot(plan.grad_input(gy, w), x), np.vdot(gy, y), rtol=1e-10)
    np.testing.assert_allclose(np.vdot(plan.grad_weight(x, gy), w), np.vdot(gy, y), rtol=1e-10)


def _tile_use(side, padding):
    """The share of the tiles' positions that a side×side output uses: its rows on the grid,
    side + padding wide (one gap of padding zeros between rows), in runs of RUN positions,
    RUNS runs per tile."""
    runs = conv_direct.position_runs(side, side, side + padding)
    return side * side / (-(-len(runs) // RUNS) * XB)


@pytest.mark.parametrize("rows, cols, width", [
    (8, 8, 10), (8, 8, 9), (16, 16, 17), (7, 7, 8), (4, 4, 6), (14, 14, 15), (3, 5, 5),
    (1, 1, 1), (2, 3, 40), (5, 30, 31)])
def test_position_runs_cover_the_output_and_start_on_it(rows, cols, width):
    runs = conv_direct.position_runs(rows, cols, width)
    assert not runs.flags.writeable and runs.shape == (len(runs), 2)
    covered = np.zeros(rows * width + RUN, bool)
    for row, col in runs:
        assert row < rows and col < cols                            # never in the padding
        start = row * width + col
        assert not covered[start:start + RUN].any()                 # no overlap
        covered[start:start + RUN] = True
    outputs = (np.arange(rows)[:, None] * width + np.arange(cols)).ravel()
    assert covered[outputs].all()
    # each run starts at the first position the runs before it left uncovered
    starts = runs[:, 0] * width + runs[:, 1]
    uncovered = [p for p in outputs if p >= starts[0] + RUN]
    assert len(runs) == 1 or starts[1] == uncovered[0]


@pytest.mark.parametrize("rows, cols, width, planes, period", [
    (8, 8, 10, 5, 10), (4, 4, 5, 7, 5), (7, 7, 8, 3, 9), (1, 3, 3, 4, 1), (5, 6, 6, 3, 7)])
def test_stacked_position_runs_cover_every_plane_and_skip_the_rows_between(
        rows, cols, width, planes, period):
    runs = conv_direct.position_runs(rows, cols, width, planes, period)
    covered = np.zeros(planes * period * width + RUN, bool)
    for row, col in runs:
        assert row % period < rows and col < cols and row < planes * period
        start = row * width + col
        assert not covered[start:start + RUN].any()
        covered[start:start + RUN] = True
    outputs = [(n * period + r) * width + c
               for n in range(planes) for r in range(rows) for c in range(cols)]
    assert covered[outputs].all()
    # fewer runs than one plane at a time, never more
    assert len(runs) <= planes * len(conv_direct.position_runs(rows, cols, width))


def test_position_runs_skip_the_padding_columns():
    # an 8-wide output on rows 10 wide: with 8-position runs (AVX2), one run per row
    runs = conv_direct.position_runs(8, 8, 10)
    if RUN == 8:
        np.testing.assert_array_equal(runs, np.c_[np.arange(8), np.zeros(8, int)])
    assert len(runs) <= -(-80 // RUN)


_USE_4X4 = _tile_use(4, 1)
_LANES = conv_direct._kernels.LANE_TILE
_USE_8X8 = _tile_use(8, 1)


@pytest.mark.parametrize("x_shape, w_shape, padding, forward, backward", [
    ((2, 8, 2, 2), (64, 8, 3, 3), 1, False, False),      # few of the tiles' positions used
    ((2, 8, 3, 3), (64, 8, 5, 5), 2, False, False),      # under half of them, 64 outputs
    ((2, 8, 4, 4), (32, 8, 5, 5), 2, True, True),        # too few output channels for the GEMM
    ((2, 8, 16, 16), (64, 8, 3, 3), 1, True, True),      # most of the tiles used
    # 64 outputs: direct while half of the tiles are used (two thirds of AVX2's 24 positions
    # on 4×4, a third of AVX-512's 48), many input channels or not; with AVX-512 both passes
    # run on the lane tile's two rows of 4 (_LANES)
    ((2, 128, 4, 4), (64, 128, 3, 3), 1, _USE_4X4 >= 0.5 or _LANES, _USE_4X4 >= 0.5 or _LANES),
    ((2, 8, 8, 8), (64, 8, 3, 3), 1, True, True),        # 8/9 (AVX2) or 2/3 (AVX-512) used
    # more outputs: the forward stays direct with few input channels; the backward's bar
    # depends on the tile width (MIN_TILE_USE)
    ((2, 8, 8, 8), (128, 8, 3, 3), 1, True, _USE_8X8 >= conv_direct.MIN_TILE_USE),
    # many channels on a plane of one tile: the forward stays direct from a batch of 32
    ((2, 128, 4, 4), (128, 128, 3, 3), 1, _LANES, _LANES),
    ((32, 128, 4, 4), (128, 128, 3, 3), 1, _USE_4X4 >= 0.5 or _LANES, _LANES),
])
def test_tiny_maps_with_many_channels_go_to_im2col(x_shape, w_shape, padding, forward,
                                                     backward):
    x = minigrad.tensor(RNG.standard_normal(x_shape), requires_grad=True)
    w = minigrad.tensor(RNG.standard_normal(w_shape), requires_grad=True)
    y = minigrad.nn.functional.conv2d(x, w, padding=padding)
    assert (y._creator.direct is not None) is forward
    assert (y._creator.direct_backward is not None) is backward
    np.testing.assert_allclose(y.data, R.conv2d(x.data, w.data, None, padding=padding),
                               rtol=1e-10, atol=1e-10)
    gy = RNG.standard_normal(y.shape)
    y.backward(gy)
    grads = R.conv2d_vjp(x.data, w.data, gy, padding=padding)
    np.testing.assert_allclose(x.grad, grads[0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(w.grad, grads[1], rtol=1e-10, atol=1e-10)


def test_results_do_not_depend_on_the_thread_count():
    x, w, _, hyper = _tensors(((20, 3, 9, 9), (10, 3, 3, 3), 1, 1), np.float32)
    before = minigrad.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            minigrad.set_num_threads(threads)
            tx, tw = minigrad.tensor(x, requires_grad=True), minigrad.tensor(w, requires_grad=True)
            minigrad.nn.functional.conv2d(tx, tw, **hyper).sum().backward()
            results.append((tx.grad.copy(), tw.grad.copy()))
    finally:
        minigrad.set_num_threads(before)
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


def test_switching_the_direct_path_off_gives_the_same_result(monkeypatch):
    x, w, b, _ = _tensors(((3, 4, 8, 8), (6, 4, 3, 3), 1, 1), np.float64)
    geometry = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    direct_op = conv_module.Conv2d(*geometry)
    direct = direct_op(x, w, b)
    monkeypatch.setattr(conv_module, "USE_DIRECT", False)
    unrolled_op = conv_module.Conv2d(*geometry)
    unrolled = unrolled_op(x, w, b)
    assert direct_op.direct is not None and unrolled_op.direct is None
    np.testing.assert_allclose(direct.data, unrolled.data, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, grid_width, start, length", [
    ((2, 3, 5, 5), 7, 8, 60),            # gaps between rows, front and tail
    ((1, 2, 4, 6), 6, 0, 24),            # rows exactly as wide as the grid, no slack
    ((1, 2, 3, 37), 57, 5, 180),         # rows of whole vectors and a rest, gaps of 20
    ((1, 1, 3, 16), 16, 0, 48),          # rows of exactly one float32 vector, no gaps
    ((2, 2, 4, 16), 18, 38, 120),        # whole vectors, gaps of 2: a vector of zeros each
    ((1, 2, 3, 32), 48, 0, 130),         # ... gaps of a whole float32 vector
])
def test_embed_overwrites_every_cell_of_a_reused_buffer(dtype, shape, grid_width, start, length):
    """The workspace hands ``embed`` buffers that hold an earlier call's values: every cell
    must come out as a value or 0, as on a zeroed buffer."""
    x = RNG.standard_normal(shape).astype(dtype)
    n, c, rows, width = shape
    grid = np.full((n, c + 1, length), np.nan, dtype)      # one channel past the planes
    kernels.embed(x, grid, grid_width, start, 2)
    expected = np.zeros_like(grid)
    for r in range(rows):
        expected[:, :c, start + r * grid_width:start + r * grid_width + width] = x[:, :, r]
    np.testing.assert_array_equal(grid, expected)
    # rows apart in the source (a view): the same grid
    wide = np.zeros((n, c, rows, width + 5), dtype)
    wide[..., :width] = x
    grid[...] = np.nan
    kernels.embed(wide[..., :width], grid, grid_width, start, 2)
    np.testing.assert_array_equal(grid, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, top, left, sh, sw", [
    ((2, 3, 7, 9), 1, 1, 2, 2),          # 3×3/2 'same': padding rows and columns in phases
    ((1, 2, 6, 5), 3, 0, 2, 3),          # uneven strides, no left padding
    ((1, 1, 4, 1), 0, 2, 1, 3),          # one column: two of the phases get none
    # two column phases: one pass splits a row into both, for either parity of the width
    # and of the left padding
    ((2, 2, 5, 8), 1, 0, 2, 2),
    ((1, 2, 5, 8), 0, 3, 3, 2),
    ((1, 3, 4, 7), 2, 2, 1, 2),
    ((1, 1, 3, 1), 1, 1, 2, 2),          # one column: the odd phase gets none
])
@pytest.mark.parametrize("interleaved", [False, True])
def test_embed_phases_overwrites_every_cell_of_a_reused_buffer(dtype, shape, top, left, sh,
                                                               sw, interleaved):
    x = RNG.standard_normal(shape).astype(dtype)
    n, c, rows, width = shape
    phase_h, phase_w = -(-(rows + top + 1) // sh), -(-(width + left + 1) // sw)
    # whole phase planes one after another, or row i of every phase, then row i + 1
    phase_stride, row_stride = ((phase_w, sh * sw * phase_w) if interleaved
                                else (phase_h * phase_w, phase_w))
    length = sh * sw * phase_h * phase_w + 5                 # a tail past the phases
    grid = np.full((n, c, length), np.nan, dtype)
    kernels.embed_phases(x, grid, top, left, sh, sw, phase_h, phase_w, phase_stride,
                         row_stride, 2)
    expected = np.zeros_like(grid)
    for r in range(rows):
        for col in range(width):
            R, C = r + top, col + left
            cell = ((R % sh) * sw + C % sw) * phase_stride + (R // sh) * row_stride + C // sw
            expected[:, :, cell] = x[:, :, r, col]
    np.testing.assert_array_equal(grid, expected)


@pytest.mark.parametrize("phase_stride, row_stride, length", [
    (12, 3, 48),        # planes of 4 rows of 3, 12 apart: fits exactly
    (3, 12, 48),        # interleaved rows
    (12, 3, 47),        # one cell short
    (3, 11, 60),        # interleaved rows that overlap the next row's phases
    (11, 3, 60),        # planes that overlap
])
def test_embed_phases_checks_its_layout(phase_stride, row_stride, length):
    x = np.ones((1, 1, 6, 5), np.float32)
    grid = np.zeros((1, 1, length), np.float32)
    fits = length >= 48 and (phase_stride, row_stride) in ((12, 3), (3, 12))
    if fits:
        kernels.embed_phases(x, grid, 1, 1, 2, 2, 4, 3, phase_stride, row_stride, 1)
        assert grid.sum() == 30
    else:
        with pytest.raises(ValueError, match="cannot hold"):
            kernels.embed_phases(x, grid, 1, 1, 2, 2, 4, 3, phase_stride, row_stride, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weight_grad_ignores_stale_scratch_and_partials(dtype):
    """The kernel's scratch and partial sums come from the workspace with an earlier call's
    values (NaN here): the result must be that of the reference."""
    x = RNG.standard_normal((5, 3, 6, 7)).astype(dtype)
    w = RNG.standard_normal((20, 3, 3, 3)).astype(dtype)
    gy = RNG.standard_normal((5, 20, 6, 7)).astype(dtype)
    plan = conv_direct.DirectPlan(x.shape, w.shape, ((1, 1), (1, 1)), (1, 1))
    grid = plan._x_grid(x)
    width = conv_direct.grad_tile_width(20)
    padded = -(-20 // width) * width
    taps = -(-9 // TG) * TG
    shifts = np.zeros(taps, np.intp)
    shifts[:9] = plan.shifts
    partials = np.full((3, 3, taps, padded), np.nan, dtype)
    scratch = np.full((2, plan.positions, width), np.nan, dtype)
    kernels.weight_grad(gy, grid, shifts, *plan.grad_masks, plan.positions, plan.grid_width,
                        partials, scratch, width, 2)
    got = partials.sum(axis=0)[:, :9, :20].transpose(2, 0, 1).reshape(w.shape)
    expected = R.conv2d_vjp(x.astype(np.float64), w.astype(np.float64),
                            gy.astype(np.float64), padding=1)[1]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize("out_channels", [16, 20, 40, 64])
@pytest.mark.parametrize("unit_rows", [True, False])
def test_weight_grad_position_major_copy(out_channels, unit_rows):
    """The copy of the output gradient position-major: whole 16 × 8 blocks by the register
    transpose (AVX-512), the rest (short rows' ends, channels past a multiple of 16, a
    gradient whose rows are not contiguous) one value at a time."""
    x = RNG.standard_normal((3, 2, 11, 19)).astype(np.float32)
    w = RNG.standard_normal((out_channels, 2, 3, 3)).astype(np.float32)
    gy = RNG.standard_normal((3, out_channels, 11, 19)).astype(np.float32)
    if not unit_rows:
        gy = np.asfortranarray(gy)
    plan = conv_direct.DirectPlan(x.shape, w.shape, ((1, 1), (1, 1)), (1, 1))
    width = conv_direct.grad_tile_width(out_channels)
    padded = -(-out_channels // width) * width
    taps = -(-9 // TG) * TG
    shifts = np.zeros(taps, np.intp)
    shifts[:9] = plan.shifts
    masks = [np.zeros((taps // TG,) + m.shape[1:], np.int32) for m in plan.grad_masks]
    for mine, plans in zip(masks, plan.grad_masks):
        mine[:plans.shape[0]] = plans
    partials = np.zeros((2, 2, taps, padded), np.float32)
    scratch = np.zeros((2, plan.positions, width), np.float32)
    kernels.weight_grad(gy, plan._x_grid(x), shifts, *masks, plan.positions, plan.grid_width,
                        partials, scratch, width, 2)
    got = partials.sum(axis=0)[:, :9, :out_channels].transpose(2, 0, 1).reshape(w.shape)
    expected = R.conv2d_vjp(x.astype(np.float64), w.astype(np.float64),
                            gy.astype(np.float64), padding=1)[1]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


@pytest.mark.skipif(kernels.GRAD_OUT_BLOCK != 32, reason="the masked tile is AVX-512's")
@pytest.mark.parametrize("by_rows", [True, False])
def test_weight_grad_skips_the_taps_its_masks_leave_out(by_rows):
    """The AVX-512 tile takes a tap at an output only where both masks set its bit: without
    tap 4 (the centre of 3×3) in row 2's mask, or in column 3's, exactly those products go."""
    x = RNG.standard_normal((2, 3, 5, 6)).astype(np.float32)
    gy = RNG.standard_normal((2, 32, 5, 6)).astype(np.float32)
    plan = conv_direct.DirectPlan(x.shape, (32, 3, 3, 3), ((1, 1), (1, 1)), (1, 1))
    grid = plan._x_grid(x).copy()
    row_masks, col_masks = (m.copy() for m in plan.grad_masks)
    sums = []
    for drop in (False, True):
        if drop:
            (row_masks[0, 2:3] if by_rows else col_masks[0, 3:4])[...] &= ~(1 << 4)
        partials = np.zeros((2, 3, TG, 32), np.float32)
        scratch = np.zeros((2, plan.positions, 32), np.float32)
        kernels.weight_grad(gy, grid, plan.shifts, row_masks, col_masks, plan.positions,
                            plan.grid_width, partials, scratch, 32, 2)
        sums.append(partials.sum(axis=0))                   # (C, taps, O)
    # the centre tap's products in row 2 (or column 3): x there times gy there
    dropped = (np.einsum("ncw,now->co", x[:, :, 2], gy[:, :, 2]) if by_rows
               else np.einsum("nch,noh->co", x[:, :, :, 3], gy[:, :, :, 3]))
    np.testing.assert_allclose(sums[0][:, 4] - sums[1][:, 4], dropped, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(np.delete(sums[0], 4, axis=1), np.delete(sums[1], 4, axis=1))


@pytest.mark.parametrize("max_taps", [None, 9])
@pytest.mark.parametrize("kernel", [5, 7])
def test_weight_gradient_of_larger_kernels_masked_or_not(max_taps, kernel, monkeypatch):
    """5×5 and 7×7 weight gradients with their masks (``MASKED_MAX_TAPS`` None, as where GCC
    tunes for Zen) and without (one tap group), against the reference: a map smaller than the
    kernel's reach, so that many taps read padding."""
    monkeypatch.setattr(conv_direct, "MASKED_MAX_TAPS", max_taps)
    x = RNG.standard_normal((3, 5, 6, 7)).astype(np.float32)
    gy = RNG.standard_normal((3, 32, 6, 7)).astype(np.float32)
    pad = kernel // 2
    plan = conv_direct.DirectPlan(x.shape, (32, 5, kernel, kernel), ((pad, pad), (pad, pad)),
                                  (1, 1))
    got = plan.grad_weight(x, gy).reshape(32, 5, kernel, kernel)
    expected = R.conv2d_vjp(x.astype(np.float64), np.zeros((32, 5, kernel, kernel)),
                            gy.astype(np.float64), padding=pad)[1]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weight_grad_unmasked_takes_every_tap(dtype):
    """With ``masked`` false the tile ignores the masks (the 5×5 and 7×7 layers' choice off
    Zen, ``MASKED_MAX_TAPS``): masks that keep no tap still give the whole gradient, while
    the masked tile then gives zeros (with AVX-512; the AVX2 tiles are unmasked either
    way)."""
    x = RNG.standard_normal((3, 4, 7, 9)).astype(dtype)
    gy = RNG.standard_normal((3, 32, 7, 9)).astype(dtype)
    w_shape = (32, 4, 5, 5)
    plan = conv_direct.DirectPlan(x.shape, w_shape, ((2, 2), (2, 2)), (1, 1))
    taps = -(-25 // TG) * TG
    shifts = np.zeros(taps, np.intp)
    shifts[:25] = plan.shifts
    width = conv_direct.grad_tile_width(32)
    padded = -(-32 // width) * width
    no_taps = [np.zeros_like(m) for m in plan.grad_masks]
    expected = R.conv2d_vjp(x.astype(np.float64), np.zeros(w_shape), gy.astype(np.float64),
                            padding=2)[1]
    for masked in (False, True):
        partials = np.zeros((2, 4, taps, padded), dtype)
        scratch = np.zeros((2, plan.positions, width), dtype)
        kernels.weight_grad(gy, plan._x_grid(x), shifts, *no_taps, plan.positions,
                            plan.grid_width, partials, scratch, width, 2, masked)
        got = partials.sum(axis=0)[:, :25, :32].transpose(2, 0, 1).reshape(w_shape)
        if masked and kernels.GRAD_OUT_BLOCK == 32:
            assert not got.any()
        else:
            np.testing.assert_allclose(got, expected, rtol=1e-4,
                                       atol=1e-4 * np.abs(expected).max())


# -- the kernels refuse inconsistent buffers instead of reading past them -------------------------
def _plan_buffers():
    x = np.ones((2, 3, 5, 5), np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    plan = conv_direct.DirectPlan(x.shape, w.shape, ((1, 1), (1, 1)), (1, 1))
    grid = np.zeros((2, 3, plan.x_length), np.float32)
    kernels.embed(x, grid, plan.grid_width, plan.first_input, 2)
    return x, w, plan, grid


def test_conv_kernel_rejects_a_short_grid():
    x, w, plan, grid = _plan_buffers()
    y = np.empty((2, 4, plan.out_h, plan.out_w), np.float32)

    def conv(grid=grid, shifts=plan.shifts, y=y, bias=np.empty(0, np.float32), runs=plan.runs):
        kernels.conv(grid, conv_direct._pack(w, 1), shifts, y, bias, plan.grid_width, 0, runs,
                     32, 2)

    conv()
    with pytest.raises(ValueError, match="outside"):
        conv(grid=grid[:, :, :-1].copy())
    with pytest.raises(ValueError, match="inconsistent"):
        conv(shifts=plan.shifts[:-1])
    with pytest.raises(ValueError, match="inconsistent"):
        conv(bias=np.ones(3, np.float32))
    with pytest.raises(ValueError, match="positive strides"):
        conv(y=y[:, :, ::-1])
    # the runs: within the grid, increasing without overlap, covering every output
    runs = plan.runs
    with pytest.raises(ValueError, match="inconsistent"):
        conv(runs=runs[:0])
    with pytest.raises(ValueError, match="pairs"):
        conv(runs=np.ascontiguousarray(runs[:, :1]))
    with pytest.raises(ValueError, match="outside"):
        conv(runs=np.vstack([runs, [[grid.shape[2] // plan.grid_width, 0]]]))
    with pytest.raises(ValueError, match="start in the grid"):
        conv(runs=np.vstack([[[-1, 0]], runs[1:]]))
    with pytest.raises(ValueError, match="start in the grid"):
        conv(runs=np.vstack([[[0, plan.grid_width]], runs[1:]]))
    with pytest.raises(ValueError, match="start in the grid"):      # overlapping runs
        conv(runs=np.vstack([runs[:1], runs[:1] + [0, 1], runs[1:]]))
    with pytest.raises(ValueError, match="cover"):
        conv(runs=runs[:-1])


def test_conv_kernel_checks_stacked_planes():
    """With a period the grid holds one tall plane and out the images' planes."""
    x, w, plan, _ = _plan_buffers()
    period = plan.out_h + 1
    runs = conv_direct.position_runs(plan.out_h, plan.out_w, plan.grid_width, 2, period)
    tall = np.zeros((1, 3, 2 * period * plan.grid_width + plan.x_length), np.float32)
    y = np.empty((2, 4, plan.out_h, plan.out_w), np.float32)

    def conv(runs=runs, period=period, grid=tall):
        kernels.conv(grid, conv_direct._pack(w, 1), plan.shifts, y, np.empty(0, np.float32),
                     plan.grid_width, 0, runs, 32, 2, period)

    conv()
    with pytest.raises(ValueError, match="stacked"):
        conv(period=plan.out_h - 1)
    with pytest.raises(ValueError, match="inconsistent"):
        conv(grid=np.zeros((2,) + tall.shape[1:], np.float32))     # two tall planes
    with pytest.raises(ValueError, match="cover"):
        conv(runs=conv_direct.position_runs(plan.out_h, plan.out_w, plan.grid_width))
    with pytest.raises(ValueError, match="contiguous"):
        kernels.embed(x.transpose(0, 1, 3, 2), tall.reshape(3, 1, -1)[:2], plan.grid_width,
                      0, 2)


def test_conv_kernel_checks_row_taps_and_interleave():
    x, w, plan, grid = _plan_buffers()
    y = np.empty((2, 4, plan.out_h, plan.out_w), np.float32)

    def conv(row_taps=None, interleave=False):
        kernels.conv(grid, conv_direct._pack(w, 1), plan.shifts, y, np.empty(0, np.float32),
                     plan.grid_width, 0, plan.runs, 32, 2, 0, row_taps, interleave)

    conv(np.array([[0, 9]] * plan.out_h, np.intp))
    with pytest.raises(ValueError, match="row_taps must be"):
        conv(np.array([[0, 9]] * (plan.out_h - 1), np.intp))
    with pytest.raises(ValueError, match="no range of 9 taps"):
        conv(np.array([[0, 10]] * plan.out_h, np.intp))
    with pytest.raises(ValueError, match="no range of 9 taps"):
        conv(np.array([[5, 4]] * plan.out_h, np.intp))
    with pytest.raises(ValueError, match="interleave needs stacked"):
        conv(interleave=True)


@pytest.mark.parametrize("out_channels", [1, 10, 16, 20, 33, 40, 64, 96, 160])
def test_grad_tile_width_pads_least(out_channels):
    width = conv_direct.grad_tile_width(out_channels)
    padded = -(-out_channels // width) * width
    assert width in kernels.GRAD_TILE_WIDTHS
    assert all(padded <= -(-out_channels // w) * w for w in kernels.GRAD_TILE_WIDTHS)
    if out_channels % GO == 0:
        assert width == GO


def test_embed_and_weight_grad_reject_inconsistent_buffers():
    x, w, plan, grid = _plan_buffers()
    with pytest.raises(ValueError, match="cannot hold"):
        kernels.embed(x, grid[:, :, :10].copy(), plan.grid_width, plan.first_input, 2)
    gy = np.zeros((2, 4, plan.out_h, plan.out_w), np.float32)
    taps = -(-plan.taps // TG) * TG
    shifts = np.zeros(taps, np.intp)
    shifts[:plan.taps] = plan.shifts
    scratch = np.zeros((2, plan.positions, GO), np.float32)

    row_masks, col_masks = plan.grad_masks

    def weight_grad(gy=gy, count=plan.positions, partials=(1, 3, taps, GO), scratch=scratch,
                    width=GO, row_masks=row_masks):
        kernels.weight_grad(gy, grid, shifts, row_masks, col_masks, count, plan.grid_width,
                            np.zeros(partials, np.float32), scratch, width, 2)
    weight_grad()                                          # consistent: no error
    with pytest.raises(ValueError, match="inconsistent"):
        weight_grad(partials=(1, 3, taps, GO + 1))         # padded past one tile
    with pytest.raises(ValueError, match="inconsistent"):
        weight_grad(count=plan.positions + plan.grid_width)    # a row more than gy has
    with pytest.raises(ValueError, match="inconsistent"):
        weight_grad(scratch=scratch[:1])                   # scratch for one thread, two run
    with pytest.raises(ValueError, match="inconsistent"):
        weight_grad(gy=gy[:1])                             # one image, the grid has two
    with pytest.raises(ValueError, match="width"):
        weight_grad(width=8)
    with pytest.raises(ValueError, match="inconsistent"):
        weight_grad(row_masks=row_masks[:, :-1].copy())     # a mask row short


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 3, 9, 8), (16, 5, 16, 32), (7, 40, 27, 96)])
def test_sum_partials_totals_the_chunks_in_order_as_the_weight(dtype, shape):
    """out[o, c, t] = Σ_k partials[k, c, t, o] over the unpadded taps and channels, added in
    chunk order whatever the thread count."""
    chunks, channels, taps, padded = shape
    partials = RNG.standard_normal(shape).astype(dtype)
    outs, used_taps = padded - 3, taps - 2
    total = partials[0].copy()
    for k in range(1, chunks):
        total += partials[k]
    expected = total[:, :used_taps, :outs].transpose(2, 0, 1)
    for threads in (1, 2, 3):
        out = np.full((outs, channels, used_taps), np.nan, dtype)
        kernels.sum_partials(partials.copy(), out, threads)
        np.testing.assert_array_equal(out, expected)


def test_sum_partials_rejects_inconsistent_shapes():
    partials = np.zeros((4, 3, 9, 16), np.float32)
    kernels.sum_partials(partials, np.empty((16, 3, 9), np.float32), 1)   # consistent
    for out_shape in ((17, 3, 9), (16, 2, 9), (16, 3, 10)):
        with pytest.raises(ValueError, match="sum_partials: inconsistent shapes"):
            kernels.sum_partials(partials, np.empty(out_shape, np.float32), 1)
    with pytest.raises(ValueError, match="sum_partials: inconsistent shapes"):
        kernels.sum_partials(partials[:0], np.empty((16, 3, 9), np.float32), 1)


@pytest.mark.parametrize("shape", [(32, 16, 3, 3), (64, 32, 5, 5), (16, 1, 3, 3)])
def test_vector_blocks_of_packed_weights_start_on_a_cache_line(shape):
    """The lane tile's and the channel-blocked tile's packed weights, which they load as
    whole vectors, start on a cache line wherever the heap is: misaligned, every load
    straddles two lines."""
    for _ in range(8):    # allocations land at different heap offsets
        w = RNG.standard_normal(shape).astype(np.float32)
        for block in (16, 32):
            packed = conv_direct._pack(w, 1, block)
            assert packed.ctypes.data % 64 == 0 and packed.flags.c_contiguous
        if shape[0] % 32 == 0 and shape[1] % 16 == 0:
            packed = conv_direct._pack_blocks(w)
            assert packed.ctypes.data % 64 == 0 and packed.flags.c_contiguous
        np.empty(RNG.integers(1, 40), np.float32)   # move the heap along


@pytest.mark.parametrize("rows", [1, OB, OB + 3])
def test_pack_weight_blocks_rows_and_takes_any_strides(rows):
    w = RNG.standard_normal((5, rows, 3, 2))
    for weight in (w.transpose(1, 0, 2, 3), np.ascontiguousarray(w.transpose(1, 0, 2, 3))):
        packed = conv_direct._pack(weight, 1)
        blocks = -(-rows // OB)
        padded = np.zeros((blocks * OB, 5 * 6))
        padded[:rows] = weight.reshape(rows, -1)
        np.testing.assert_array_equal(packed, padded.reshape(blocks, OB, -1).transpose(0, 2, 1))
    with pytest.raises(ValueError, match="inconsistent"):
        kernels.pack_weight(w.reshape(5, rows, 6), np.empty((-(-5 // OB), rows * 6 + 1, OB)))


@pytest.mark.parametrize("block", [OB, 16, 32])
@pytest.mark.parametrize("shape", [(5, 3, 3, 3), (70, 120, 3, 3), (33, 7, 5, 5),
                                   (32, 16, 1, 1), (48, 32, 3, 3)])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_pack_weight_any_block_and_thread_count(block, shape, threads):
    """Blocks of any width (the position tile's, the lane tile's one and two vectors), a
    weight large enough to be packed by the team and in several passes over its channels,
    transposed (the input gradient's) and not (float32 rows into blocks of 16 or 32: by
    register transposes, 16 columns at a time, whole or with the rest one by one)."""
    w = RNG.standard_normal(shape).astype(np.float32)
    for weight in (w, w.transpose(1, 0, 2, 3)):
        rows = weight.shape[0]
        blocks = -(-rows // block)
        packed = np.full((blocks, weight[0].size, block), np.nan, np.float32)
        kernels.pack_weight(weight.reshape(rows, weight.shape[1], -1), packed, threads)
        padded = np.zeros((blocks * block, weight[0].size), np.float32)
        padded[:rows] = weight.reshape(rows, -1)
        np.testing.assert_array_equal(packed, padded.reshape(blocks, block, -1).transpose(0, 2, 1))


def test_a_convolution_and_the_embedding_of_its_grid_share_one_team(monkeypatch):
    """DirectPlan.team: the convolution's threads (one below PARALLEL_MIN_MACS multiply-adds),
    which also embed its grids, so each thread reads the images it wrote."""
    small = conv_direct.DirectPlan((1, 1, 8, 8), (16, 1, 3, 3), ((1, 1), (1, 1)), (1, 1))
    large = conv_direct.DirectPlan((64, 1, 28, 28), (16, 1, 3, 3), ((1, 1), (1, 1)), (1, 1))
    assert small.macs == 16 * 9 * 64 and large.macs == 64 * 16 * 9 * 784
    monkeypatch.setattr(conv_direct, "get_num_threads", lambda: 3)
    assert small.team() == 1 and large.team() == 3
    # the embedding takes the count it is given, validated
    x = RNG.standard_normal((2, 1, 8, 8)).astype(np.float32)
    grid = np.empty((2, 1, small.x_length), np.float32)
    with pytest.raises(ValueError, match="num_threads must be a positive int"):
        kernels.embed(x, grid, small.grid_width, small.first_input, 0)
    with pytest.raises(ValueError, match="num_threads must be a positive int"):
        kernels.team(10, 0)


@pytest.mark.parametrize("x_shape, w_shape, groups", [
    ((3, 16, 8, 8), (32, 16, 5, 5), 1),       # the lane tile
    ((2, 64, 16, 16), (64, 16, 3, 3), 4),     # position tiles, one call per group
])
def test_forward_keeps_its_grid_for_the_weight_gradient(x_shape, w_shape, groups):
    """Training a stride-1 direct convolution embeds x once where the forward reads the weight
    gradient's grid (not stacked): the forward's own grid is kept and the weight gradient read
    from it is bitwise the one from a fresh embedding. (With AVX2 the first shape's forward is
    stacked: nothing is kept.)"""
    x = minigrad.tensor(RNG.standard_normal(x_shape).astype(np.float32), requires_grad=True)
    w = minigrad.tensor(RNG.standard_normal(w_shape).astype(np.float32), requires_grad=True)
    pad = w_shape[2] // 2
    y = minigrad.nn.functional.conv2d(x, w, padding=pad, groups=groups)
    op = y._creator
    plan = op.direct_backward
    assert plan is op.direct
    kept = op.saved_tensors[2]
    assert (kept is not None) is plan.shares_grid
    assert plan.shares_grid or not kernels.LANE_TILE
    if kept is not None:
        np.testing.assert_array_equal(kept, plan._x_grid(x.data))
    gy = RNG.standard_normal(y.shape).astype(np.float32)
    y.backward(minigrad.tensor(gy))
    np.testing.assert_array_equal(w.grad, plan.grad_weight(x.data, gy).reshape(w_shape))
    with minigrad.no_grad():
        y = minigrad.nn.functional.conv2d(x, w, padding=pad, groups=groups)
    assert y._creator is None
