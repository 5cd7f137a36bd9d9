"""The row tile (``_rows.conv`` via ``conv_direct.DirectPlan.rows``): the stride-1 float32
forward of layers whose outputs sum few products, against the plain-loop reference; the rule
that picks it, its thread independence and the kernel's own guards."""
import numpy as np
import pytest

import minigrad
from minigrad._kernels import row_conv as kernels
from minigrad.ops import conv as conv_module
from minigrad.ops import conv_direct

from helpers import reference as R
from helpers.conv import check_float32_conv, forced_winograd, on_threads

RNG = np.random.default_rng(12)

pytestmark = pytest.mark.skipif(not kernels.TILE,
                                reason="the row tile is built with AVX-512 only")


@pytest.fixture(autouse=True)
def fresh_layouts(monkeypatch):
    forced_winograd(monkeypatch, None)
    conv_module._layout.cache_clear()
    yield
    conv_module._layout.cache_clear()


# (x shape, weight shape, padding, dilation): rows of 28 (a tile and a partial one), 32, 40
# (two tiles), 70 (three), 16 and 9 (two rows a tile, an odd number of rows), a single
# column, no padding, uneven padding, a 5×5 kernel, dilation, padding wider than the kernel
# reaches, and three channels.
CASES = [
    ((3, 1, 28, 28), (16, 1, 3, 3), 1, 1),
    ((2, 3, 32, 32), (64, 3, 3, 3), 1, 1),
    ((2, 1, 5, 40), (8, 1, 3, 3), 1, 1),
    ((1, 1, 6, 70), (8, 1, 3, 3), 0, 1),
    ((2, 3, 16, 16), (16, 3, 3, 3), 1, 1),
    ((2, 1, 7, 9), (8, 1, 3, 3), (2, 0), 1),
    ((2, 1, 9, 1), (8, 1, 3, 3), 1, 1),
    ((1, 1, 12, 50), (8, 1, 5, 5), 2, 1),
    ((2, 3, 12, 12), (16, 3, 3, 3), 2, 2),
    ((2, 2, 17, 17), (24, 2, 3, 3), 3, 1),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("bias", [True, False])
def test_row_forward_matches_reference(case, bias):
    x_shape, w_shape, padding, dilation = case
    hyper = dict(padding=padding, dilation=dilation)
    x = minigrad.tensor(RNG.standard_normal(x_shape).astype(np.float32), requires_grad=True)
    w = minigrad.tensor(RNG.standard_normal(w_shape).astype(np.float32), requires_grad=True)
    b = minigrad.tensor(RNG.standard_normal(w_shape[0]).astype(np.float32),
                        requires_grad=True) if bias else None
    y = minigrad.nn.functional.conv2d(x, w, b, **hyper)
    assert y._creator.direct is not None and y._creator.direct.rows
    # the backward's kernels read the grid the forward kept, as on the position tiles
    check_float32_conv(x, w, b, y, RNG, **hyper)


def test_row_results_do_not_depend_on_the_thread_count():
    x = minigrad.tensor(RNG.standard_normal((5, 3, 20, 36)).astype(np.float32))
    w = minigrad.tensor(RNG.standard_normal((16, 3, 3, 3)).astype(np.float32))
    b = minigrad.tensor(RNG.standard_normal(16).astype(np.float32))

    def forward():
        with minigrad.no_grad():
            return minigrad.nn.functional.conv2d(x, w, b, padding=1).data

    results = on_threads(forward)
    for other in results[1:]:
        np.testing.assert_array_equal(results[0], other)


@pytest.mark.parametrize("x_shape, w_shape, stride, groups, rows", [
    ((2, 1, 28, 28), (16, 1, 3, 3), 1, 1, True),
    ((2, 3, 32, 32), (64, 3, 3, 3), 1, 1, True),         # 27 products an output
    ((2, 1, 32, 32), (16, 1, 5, 5), 1, 1, True),         # 25
    ((2, 4, 32, 32), (16, 4, 3, 3), 1, 1, False),        # 36
    ((2, 1, 32, 32), (12, 1, 3, 3), 1, 1, False),        # outputs not a multiple of 8
    ((2, 3, 32, 32), (64, 3, 3, 3), 2, 1, False),        # strided
    ((2, 2, 32, 32), (16, 1, 3, 3), 1, 2, False),        # grouped
    ((2, 1, 40, 40), (8, 1, 1, 17), 1, 1, False),        # kernel rows wider than 16
])
def test_row_rule(x_shape, w_shape, stride, groups, rows):
    padding = ((w_shape[2] // 2,) * 2, (w_shape[3] // 2,) * 2)
    plan = conv_direct.DirectPlan(x_shape, w_shape, padding, (1, 1), (stride, stride), groups)
    assert plan.rows is rows


def test_row_rule_off_and_float64(monkeypatch):
    """None keeps the position tiles; float64 takes them anyway, with the same results."""
    x = RNG.standard_normal((2, 1, 12, 12))
    w = RNG.standard_normal((8, 1, 3, 3))
    monkeypatch.setattr(conv_direct, "ROW_TILE_MAX_SUMS", None)
    plan = conv_direct.DirectPlan(x.shape, w.shape, ((1, 1), (1, 1)), (1, 1))
    assert not plan.rows
    y = minigrad.nn.functional.conv2d(minigrad.tensor(x), minigrad.tensor(w), padding=1)
    np.testing.assert_allclose(y.data, R.conv2d(x, w, padding=1), rtol=1e-12, atol=1e-12)


def test_row_kernel_checks_its_arguments():
    x = RNG.standard_normal((2, 3, 10, 10)).astype(np.float32)
    w = RNG.standard_normal((16, 3, 3, 3)).astype(np.float32)
    y = np.empty((2, 16, 10, 10), np.float32)
    bias = np.empty(0, np.float32)
    kernels.conv(x, w, bias, y, 1, 1, 1, 1, 2)
    np.testing.assert_allclose(y, R.conv2d(x, w, padding=1), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="inconsistent shapes"):       # channels
        kernels.conv(x[:, :2].copy(), w, bias, y, 1, 1, 1, 1, 2)
    with pytest.raises(ValueError, match="inconsistent shapes"):       # images
        kernels.conv(x[:1].copy(), w, bias, y, 1, 1, 1, 1, 2)
    with pytest.raises(ValueError, match="inconsistent shapes"):       # not a multiple of 8
        kernels.conv(x, w[:12].copy(), bias, y[:, :12].copy(), 1, 1, 1, 1, 2)
    with pytest.raises(ValueError, match="inconsistent shapes"):
        kernels.conv(x, w, np.zeros(8, np.float32), y, 1, 1, 1, 1, 2)
    with pytest.raises(ValueError, match="inconsistent shapes"):       # rows wider than 16
        kernels.conv(x, np.zeros((16, 3, 1, 17), np.float32), bias, y, 0, 8, 1, 1, 2)
    with pytest.raises(ValueError, match="dilation"):
        kernels.conv(x, w, bias, y, 1, 1, 0, 1, 2)
    with pytest.raises(ValueError, match="padding"):
        kernels.conv(x, w, bias, y, -1, 1, 1, 1, 2)
    with pytest.raises(ValueError, match="num_threads"):
        kernels.conv(x, w, bias, y, 1, 1, 1, 1, 0)
    # any output size reads inside x: outputs past its reach are the bias alone
    wide = np.full((2, 16, 14, 40), np.nan, np.float32)
    kernels.conv(x, w, np.arange(16, dtype=np.float32), wide, 1, 1, 1, 1, 2)
    np.testing.assert_allclose(wide[:, :, :10, :10],
                               R.conv2d(x, w, np.arange(16.0), padding=1), rtol=1e-4,
                               atol=1e-4)
    np.testing.assert_array_equal(wide[:, :, 13, 20], np.broadcast_to(np.arange(16.0), (2, 16)))
