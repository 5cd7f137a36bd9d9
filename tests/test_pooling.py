"""Max, average, global and adaptive pooling: window geometry against brute-force enumeration,
forward and backward against plain numpy loops (helpers.reference), gradcheck, the tie and NaN
rules, PyTorch parity, thread determinism and argument validation."""
from fractions import Fraction

import numpy as np
import pytest

import minigrad
import minigrad.nn as nn
import minigrad.nn.functional as F
from minigrad.ops.geometry import adaptive_bins, first_in_bounds, window_output_size

from helpers import reference as R

rng = np.random.default_rng(0)


def tensor64(a, requires_grad=True):
    return minigrad.tensor(np.asarray(a, np.float64), requires_grad=requires_grad)


def tie_free(*shape):
    """Distinct values (a shuffled range) so finite differences never cross a tie."""
    return np.random.default_rng(1).permutation(int(np.prod(shape))).reshape(shape) * 0.1


# -- geometry against brute-force enumeration ------------------------------------------------------

GEOMETRY_CASES = [(size, k, s, p, d, c)
                  for size in range(1, 10) for k in range(1, 5) for s in range(1, 4)
                  for p in range(0, k // 2 + 1) for d in (1, 2) for c in (False, True)]


def test_window_output_size_matches_enumeration():
    for size, k, s, p, d, c in GEOMETRY_CASES:
        assert window_output_size(size, k, s, p, d, c) == len(
            R.window_starts(size, k, s, p, d, c)), (size, k, s, p, d, c)


def test_first_in_bounds_finds_each_window_s_first_input_cell():
    """Without dilation every window holds an input cell; a dilated window can step over the
    whole input, which first_in_bounds reports as a position >= size."""
    for size, k, s, p, d, c in GEOMETRY_CASES:
        starts = R.window_starts(size, k, s, p, d, c)
        first = first_in_bounds(size, len(starts), s, p, d)
        for o, start in enumerate(starts):
            inside = [start + t * d for t in range(k) if 0 <= start + t * d < size]
            assert inside or d > 1, (size, k, s, p, d, c, o)
            assert first[o] == (inside[0] if inside else first[o]) and (
                bool(inside) == (first[o] < size)), (size, k, s, p, d, c, o)


@pytest.mark.parametrize("size", range(1, 12))
def test_adaptive_bins_match_definition_and_cover_the_axis(size):
    for out in range(1, 14):
        start, end = adaptive_bins(size, out)
        for i in range(out):
            assert start[i] == int(Fraction(i * size, out).__floor__())
            assert end[i] == int(Fraction((i + 1) * size, out).__ceil__())
            assert end[i] > start[i]
        covered = set().union(*(range(a, b) for a, b in zip(start, end)))
        assert covered == set(range(size))


def run(fn, x, gy=None):
    """(output, input gradient for upstream gy) through minigrad."""
    t = minigrad.tensor(x, requires_grad=True)
    y = fn(t)
    y = y[0] if isinstance(y, tuple) else y
    gy = rng.standard_normal(y.shape).astype(x.dtype) if gy is None else gy
    y.backward(gy)
    return y.data, t.grad, gy


MAX_CASES = [  # kernel, stride, padding, dilation, ceil_mode, input HxW
    ((1, 1), (1, 1), (0, 0), (1, 1), False, (5, 4)),
    ((2, 2), (2, 2), (0, 0), (1, 1), False, (6, 8)),
    ((2, 2), (2, 2), (0, 0), (1, 1), False, (7, 5)),     # odd sizes: last row/column unused
    ((2, 2), (2, 2), (1, 1), (1, 1), True, (7, 5)),
    ((3, 3), (2, 2), (1, 1), (1, 1), False, (9, 7)),
    ((3, 3), (1, 1), (1, 1), (1, 1), False, (6, 5)),     # overlapping windows
    ((3, 3), (2, 2), (0, 0), (1, 1), True, (8, 6)),      # ceil_mode overhang
    ((5, 5), (1, 1), (2, 2), (1, 1), False, (7, 6)),
    ((5, 5), (3, 3), (2, 2), (1, 1), True, (8, 10)),
    ((3, 3), (1, 1), (1, 1), (2, 2), False, (7, 7)),     # dilation
    ((2, 3), (1, 2), (1, 1), (2, 1), True, (6, 7)),      # non-square everything
]


@pytest.mark.parametrize("kernel,stride,padding,dilation,ceil_mode,hw", MAX_CASES)
def test_max_pool_matches_reference_loops(kernel, stride, padding, dilation, ceil_mode, hw):
    x = rng.standard_normal((2, 3) + hw)
    x[0, 0, :2, :2] = 0.5                                  # some ties
    y, gx, gy = run(lambda t: F.max_pool2d(t, kernel, stride, padding, dilation, ceil_mode), x)
    y_ref, idx_ref = R.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_allclose(gx, R.scatter_to_argmax(x.shape, idx_ref, gy), rtol=1e-12,
                               atol=1e-12)
    _, idx = F.max_pool2d(minigrad.tensor(x), kernel, stride, padding, dilation, ceil_mode,
                          return_indices=True)
    np.testing.assert_array_equal(idx.data, idx_ref)


@pytest.mark.parametrize("kernel,stride,padding,dilation,ceil_mode,hw", MAX_CASES)
def test_max_pool_gradcheck(kernel, stride, padding, dilation, ceil_mode, hw):
    x = tensor64(tie_free(1, 2, *hw))
    assert minigrad.gradcheck(
        lambda t: F.max_pool2d(t, kernel, stride, padding, dilation, ceil_mode), [x])


AVG_CASES = [  # kernel, stride, padding, ceil_mode, count_include_pad, divisor_override, HxW
    ((1, 1), None, (0, 0), False, True, None, (4, 5)),
    ((2, 2), None, (0, 0), False, True, None, (6, 8)),
    ((2, 2), (2, 2), (0, 0), False, True, None, (7, 5)),
    ((2, 2), (2, 2), (1, 1), True, True, None, (7, 5)),
    ((3, 3), (2, 2), (1, 1), True, True, None, (8, 6)),    # overhang beyond the padding
    ((3, 3), (2, 2), (1, 1), True, False, None, (8, 6)),
    ((3, 3), (1, 1), (1, 1), False, False, None, (5, 6)),
    ((3, 3), (1, 1), (1, 1), False, True, None, (5, 6)),
    ((5, 5), (3, 3), (2, 2), True, True, None, (9, 7)),
    ((5, 5), (2, 2), (2, 2), False, False, None, (7, 8)),
    ((3, 2), (2, 3), (1, 1), True, True, None, (7, 8)),
    ((3, 3), (2, 2), (1, 1), True, True, 5, (7, 6)),       # divisor_override
    ((2, 2), (2, 2), (0, 0), False, False, -3, (4, 4)),
]


@pytest.mark.parametrize("kernel,stride,padding,ceil_mode,count_pad,divisor,hw", AVG_CASES)
def test_avg_pool_matches_reference_loops(kernel, stride, padding, ceil_mode, count_pad,
                                          divisor, hw):
    x = rng.standard_normal((2, 3) + hw)
    y, gx, gy = run(lambda t: F.avg_pool2d(t, kernel, stride, padding, ceil_mode, count_pad,
                                           divisor), x)
    args = (kernel, stride or kernel, padding, ceil_mode, count_pad, divisor)
    y_ref, gx_ref = R.avg_pool2d(x, *args), R.avg_pool2d_vjp(x.shape, gy, *args)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gx, gx_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel,stride,padding,ceil_mode,count_pad,divisor,hw", AVG_CASES)
def test_avg_pool_gradcheck(kernel, stride, padding, ceil_mode, count_pad, divisor, hw):
    x = tensor64(rng.standard_normal((1, 2) + hw))
    assert minigrad.gradcheck(
        lambda t: F.avg_pool2d(t, kernel, stride, padding, ceil_mode, count_pad, divisor), [x])


ADAPTIVE_SIZES = [((7, 5), (3, 2)), ((10, 7), (4, 3)), ((5, 5), (5, 5)), ((4, 6), (1, 1)),
                  ((3, 4), (5, 7)), ((6, 9), (None, 4))]


@pytest.mark.parametrize("hw,out", ADAPTIVE_SIZES)
@pytest.mark.parametrize("reduce", ["avg", "max"])
def test_adaptive_pool_matches_reference_and_gradcheck(hw, out, reduce):
    fn = F.adaptive_avg_pool2d if reduce == "avg" else F.adaptive_max_pool2d
    out_hw = tuple(n if o is None else o for o, n in zip(out, hw))
    x = tie_free(2, 3, *hw)
    y, gx, gy = run(lambda t: fn(t, out), x)
    y_ref, argmax = R.adaptive_pool2d(x, out_hw, reduce)
    gx_ref = R.adaptive_pool2d_vjp(x.shape, gy, reduce, argmax)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gx, gx_ref, rtol=1e-12, atol=1e-12)
    assert minigrad.gradcheck(lambda t: fn(t, out), [tensor64(x[:1])])


@pytest.mark.parametrize("hw", [(1, 1), (7, 5), (1, 9)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pools(hw, keepdims):
    x = tie_free(2, 3, *hw)
    shape = (2, 3, 1, 1) if keepdims else (2, 3)
    y, gx, gy = run(lambda t: F.global_avg_pool2d(t, keepdims), x)
    assert y.shape == shape
    np.testing.assert_allclose(y.reshape(2, 3), x.mean(axis=(2, 3)), rtol=1e-12)
    np.testing.assert_allclose(gx, np.broadcast_to(gy.reshape(2, 3, 1, 1) / (hw[0] * hw[1]),
                                                   x.shape), rtol=1e-12)
    y, gx, gy = run(lambda t: F.global_max_pool2d(t, keepdims), x)
    assert y.shape == shape
    np.testing.assert_array_equal(y.reshape(2, 3), x.max(axis=(2, 3)))
    np.testing.assert_array_equal(gx, (x == x.max(axis=(2, 3), keepdims=True))
                                  * gy.reshape(2, 3, 1, 1))
    for fn in (F.global_avg_pool2d, F.global_max_pool2d):
        assert minigrad.gradcheck(lambda t: fn(t, keepdims), [tensor64(x)])


def test_global_avg_pool_large_planes_float32():
    x = rng.standard_normal((2, 3, 37, 29)).astype(np.float32)   # not a multiple of the lanes
    y = F.global_avg_pool2d(minigrad.tensor(x))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data, x.astype(np.float64).mean(axis=(2, 3)), rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("planes", [1, 15, 16, 37, 263])  # the kernel sums blocks of 16 planes
@pytest.mark.parametrize("hw", [(1, 1), (3, 3), (3, 5), (4, 4), (1, 17), (8, 8), (7, 10),
                                (15, 17)])   # plane sizes around the kernel's 16 lanes and 256
def test_global_avg_pool_any_number_of_planes_and_threads(planes, hw):
    """Every plane's mean, whether it falls in a full block, a partial last block (recomputed
    as the last whole block) or fewer planes than a block, bitwise the same for 1 and 2 threads
    (263 planes of 8×8 are enough work for the kernel to use the threads)."""
    x = rng.standard_normal((1, planes) + hw)
    previous = minigrad.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            minigrad.set_num_threads(threads)
            results.append(F.global_avg_pool2d(tensor64(x, False)).data)
    finally:
        minigrad.set_num_threads(previous)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_allclose(results[0], x.mean(axis=(2, 3)), rtol=1e-12, atol=1e-15)


# -- exact tie and NaN rules ------------------------------------------------------------------------

def test_max_pool_ties_go_to_first_cell_in_row_major_order_and_add_up():
    x = minigrad.tensor(np.zeros((1, 1, 3, 3)), requires_grad=True)
    y, idx = F.max_pool2d(x, 2, stride=1, return_indices=True)
    np.testing.assert_array_equal(idx.data[0, 0], [[0, 1], [3, 4]])
    y.backward(np.ones(y.shape))
    np.testing.assert_array_equal(x.grad[0, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])
    # with padding, −∞ padding never wins: the first in-bounds cell does
    x = minigrad.tensor(np.full((1, 1, 2, 2), -np.inf), requires_grad=True)
    y, idx = F.max_pool2d(x, 3, stride=1, padding=1, return_indices=True)
    assert np.all(np.isneginf(y.data))
    np.testing.assert_array_equal(idx.data[0, 0], [[0, 0], [0, 0]])
    # a later equal value does not win; a later greater one does
    x = minigrad.tensor(np.array([[[[2.0, 2.0], [3.0, 3.0]]]]), requires_grad=True)
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    assert idx.data.item() == 2
    assert idx.dtype == np.int64 and not idx.requires_grad


def test_max_pool_dilated_window_without_input_cell_gives_minus_inf_and_a_valid_index():
    x = minigrad.tensor(np.array([[[[0.05, 0.55]], [[0.3, 0.2]]]]), requires_grad=True)
    # taps at columns −1 and 2 of a 2-wide input: only padding
    y, idx = F.max_pool2d(x, (1, 2), 1, (0, 1), (1, 3), return_indices=True)
    np.testing.assert_array_equal(y.data.ravel(), [-np.inf, -np.inf])
    np.testing.assert_array_equal(idx.data.ravel(), [1, 1])     # clamped into the plane
    y.backward(np.ones(y.shape))        # no write outside the plane
    np.testing.assert_array_equal(x.grad.ravel(), [0, 1, 0, 1])


def test_max_pool_nan_wins_and_propagates():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 0, 1] = np.nan
    x[0, 0, 1, 0] = np.nan
    t = minigrad.tensor(x, requires_grad=True)
    y, idx = F.max_pool2d(t, 2, return_indices=True)
    assert np.isnan(y.data[0, 0, 0, 0]) and idx.data[0, 0, 0, 0] == 4   # the last NaN
    np.testing.assert_array_equal(y.data[0, 0].ravel()[1:], [7, 13, 15])
    y.backward(np.ones(y.shape))
    assert t.grad[0, 0, 1, 0] == 1 and t.grad[0, 0, 0, 1] == 0


PHASE_PLANES = [(3, 1, 1, 1, False, (4, 4)), (3, 2, 1, 1, False, (8, 8)),
                (3, 2, 1, 1, True, (7, 9)), ((2, 4), (3, 1), (1, 2), (2, 1), True, (7, 9)),
                (3, (1, 2), 1, (2, 1), False, (6, 11)), (2, 2, 1, 1, False, (5, 5)),
                # rows of whole vectors, of vectors and a part, and shorter than a vector
                (3, 1, 1, 1, False, (3, 16)), (3, 1, 1, 1, False, (4, 21)),
                (3, 2, 1, 1, False, (5, 37)), (5, 1, 2, 1, False, (3, 7))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel,stride,padding,dilation,ceil_mode,hw", PHASE_PLANES)
def test_phase_plane_max_pool_matches_reference(kernel, stride, padding, dilation, ceil_mode,
                                                hw, dtype):
    """Padded planes are pooled from their stride phases a vector of outputs at a time, the
    last vector of a row overlapping the one before it (or on a buffer when the row is shorter
    than one): values, indices (ties, NaN, −∞) and the gradient as the reference loops."""
    x = rng.standard_normal((2, 3) + hw).astype(dtype)
    x[0, 1, 1:3, 1:3] = 0.25
    x[1, 0] = -np.inf
    x[rng.random(x.shape) < 0.1] = np.nan
    xm = minigrad.tensor(x, requires_grad=True)
    y, idx = F.max_pool2d(xm, kernel, stride, padding, dilation, ceil_mode, return_indices=True)
    pair = lambda v: v if isinstance(v, tuple) else (v, v)
    expected, argmax = R.max_pool2d(x, *map(pair, (kernel, stride, padding, dilation)),
                                    ceil_mode)
    np.testing.assert_array_equal(y.data, expected.astype(dtype))
    np.testing.assert_array_equal(idx.data, argmax)
    gy = np.arange(y.size, dtype=dtype).reshape(y.shape)
    y.backward(gy)
    np.testing.assert_array_equal(xm.grad, R.scatter_to_argmax(x.shape, argmax, gy))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
# at least two output rows: with one, the stride along H is dropped and the phase planes run
@pytest.mark.parametrize("hw", [(4, 2), (4, 9), (8, 8), (6, 14), (4, 16), (4, 17), (4, 28),
                                (4, 32), (6, 35), (4, 66), (5, 100)])
def test_two_by_two_max_pool_rows_match_reference(hw, dtype):
    """The 2×2, stride-2 windows read in place, a vector of outputs at a time with the last
    one masked: rows of 1 to 50 outputs (an odd width drops its last column), with ties, NaN
    and −∞: values, indices and the gradient as the reference loops."""
    x = rng.standard_normal((2, 3) + hw).astype(dtype)
    x[0, 1, :2, :4] = 0.25
    x[1, 0, :, : hw[1] // 2] = -np.inf
    x[rng.random(x.shape) < 0.1] = np.nan
    xm = minigrad.tensor(x, requires_grad=True)
    y, idx = F.max_pool2d(xm, 2, return_indices=True)
    expected, argmax = R.max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    np.testing.assert_array_equal(y.data, expected.astype(dtype))
    np.testing.assert_array_equal(idx.data, argmax)
    gy = np.arange(y.size, dtype=dtype).reshape(y.shape)
    y.backward(gy)
    np.testing.assert_array_equal(xm.grad, R.scatter_to_argmax(x.shape, argmax, gy))


# -- PyTorch parity -----------------------------------------------------------------------------------

PARITY_MAX = [(k, s, p, d, c, hw)
              for k, s, p, d, c, hw in [(2, 2, 0, 1, False, (8, 8)), (2, 2, 0, 1, True, (7, 7)),
                                        (3, 2, 1, 1, True, (6, 6)), (3, 2, 1, 1, True, (7, 7)),
                                        (3, 3, 1, 1, True, (5, 8)), (3, 2, 0, 1, True, (5, 4)),
                                        (2, 3, 1, 1, True, (4, 4)), (3, 1, 1, 1, False, (5, 6)),
                                        (3, 2, 1, 2, True, (9, 9)), (4, 3, 2, 1, True, (6, 5)),
                                        ((2, 4), (3, 1), (1, 2), (2, 1), True, (7, 9))]]


@pytest.mark.parametrize("kernel,stride,padding,dilation,ceil_mode,hw", PARITY_MAX)
@pytest.mark.parametrize("with_nan", [False, True])
def test_max_pool_matches_torch(kernel, stride, padding, dilation, ceil_mode, hw, with_nan):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3) + hw).astype(np.float32)
    x[0, 1, 1:3, 1:3] = 0.25
    if with_nan:
        x[rng.random(x.shape) < 0.1] = np.nan
    xt = torch.tensor(x, requires_grad=True)
    yt, it = torch.nn.functional.max_pool2d(xt, kernel, stride, padding, dilation, ceil_mode,
                                            return_indices=True)
    gy = rng.standard_normal(yt.shape).astype(np.float32)
    yt.backward(torch.tensor(gy))
    xm = minigrad.tensor(x, requires_grad=True)
    ym, im = F.max_pool2d(xm, kernel, stride, padding, dilation, ceil_mode, return_indices=True)
    ym.backward(gy)
    np.testing.assert_array_equal(ym.data, yt.detach().numpy())
    np.testing.assert_array_equal(im.data, it.numpy())
    np.testing.assert_allclose(xm.grad, xt.grad.numpy(), rtol=1e-6, atol=1e-6)


PARITY_AVG = [(2, 2, 0, False, True, None, (8, 8)), (3, 2, 1, True, True, None, (6, 6)),
              (3, 2, 1, True, False, None, (6, 6)), (3, 2, 1, True, True, None, (7, 8)),
              (3, 3, 1, True, True, None, (5, 8)), (2, 3, 1, True, False, None, (4, 4)),
              (5, 2, 2, True, True, None, (8, 7)), (3, 1, 1, False, False, 4, (5, 6)),
              ((3, 2), (1, 3), (1, 1), True, True, None, (6, 7))]


@pytest.mark.parametrize("kernel,stride,padding,ceil_mode,count_pad,divisor,hw", PARITY_AVG)
def test_avg_pool_matches_torch(kernel, stride, padding, ceil_mode, count_pad, divisor, hw):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3) + hw).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.avg_pool2d(xt, kernel, stride, padding, ceil_mode, count_pad,
                                        divisor)
    gy = rng.standard_normal(yt.shape).astype(np.float32)
    yt.backward(torch.tensor(gy))
    ym, gx, _ = run(lambda t: F.avg_pool2d(t, kernel, stride, padding, ceil_mode, count_pad,
                                           divisor), x, gy)
    np.testing.assert_allclose(ym, yt.detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("hw,out", [((7, 5), (3, 2)), ((10, 7), (4, 3)), ((3, 4), (5, 7)),
                                    ((6, 9), (None, 4)), ((8, 8), 1)])
def test_adaptive_pools_match_torch(hw, out):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3) + hw).astype(np.float32)
    x[0, 0, 0, :] = np.nan
    for ours, theirs in [(F.adaptive_avg_pool2d, torch.nn.functional.adaptive_avg_pool2d),
                         (lambda t, o: F.adaptive_max_pool2d(t, o, True),
                          lambda t, o: torch.nn.functional.adaptive_max_pool2d(t, o, True))]:
        xt = torch.tensor(x, requires_grad=True)
        yt = theirs(xt, out)
        ym = ours(minigrad.tensor(x), out)
        if isinstance(yt, tuple):
            np.testing.assert_array_equal(ym[1].data, yt[1].numpy())
            yt, ym = yt[0], ym[0]
        np.testing.assert_allclose(ym.data, yt.detach().numpy(), rtol=1e-6, atol=1e-6)
        gy = rng.standard_normal(yt.shape).astype(np.float32)
        yt.backward(torch.tensor(gy))
        ym, gx, _ = run(lambda t: ours(t, out), x, gy)
        np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-6, atol=1e-6)


# -- threads, dtypes, modules ---------------------------------------------------------------------------

POOLS = [lambda t: F.max_pool2d(t, 3, 2, 1), lambda t: F.max_pool2d(t, 3, 1, 1),
         lambda t: F.max_pool2d(t, 2), lambda t: F.avg_pool2d(t, 3, 2, 1, ceil_mode=True),
         lambda t: F.avg_pool2d(t, 2), lambda t: F.adaptive_avg_pool2d(t, (5, 3)),
         lambda t: F.adaptive_max_pool2d(t, (5, 3)), lambda t: F.global_avg_pool2d(t),
         lambda t: F.global_max_pool2d(t)]


@pytest.mark.parametrize("pool", POOLS)
def test_bitwise_identical_for_one_and_two_threads(pool):
    x = rng.standard_normal((4, 8, 31, 33)).astype(np.float32)   # above the parallel threshold
    previous = minigrad.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            minigrad.set_num_threads(threads)
            y, gx, _ = run(pool, x, np.ones(pool(minigrad.tensor(x)).shape, np.float32))
            results.append((y, gx))
    finally:
        minigrad.set_num_threads(previous)
    for a, b in zip(*results):
        assert a.dtype == np.float32 and a.tobytes() == b.tobytes()


def test_modules_match_functional():
    x = minigrad.tensor(rng.standard_normal((2, 3, 9, 8)).astype(np.float32))
    pairs = [(nn.MaxPool2d(3, 2, 1, ceil_mode=True), F.max_pool2d(x, 3, 2, 1, ceil_mode=True)),
             (nn.AvgPool2d(3, 2, 1, count_include_pad=False),
              F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)),
             (nn.GlobalAvgPool2d(keepdims=True), F.global_avg_pool2d(x, True)),
             (nn.GlobalMaxPool2d(), F.global_max_pool2d(x)),
             (nn.AdaptiveAvgPool2d((4, None)), F.adaptive_avg_pool2d(x, (4, None))),
             (nn.AdaptiveMaxPool2d(3), F.adaptive_max_pool2d(x, 3))]
    for module, expected in pairs:
        np.testing.assert_array_equal(module(x).data, expected.data)
    y, idx = nn.MaxPool2d(2, return_indices=True)(x)
    assert idx.shape == y.shape == (2, 3, 4, 4)


# -- bad input -----------------------------------------------------------------------------------------

def _rows_of_windows(x, reduce, rows):
    """reduce over x[..., r:r + 3, :] for each r < rows: (N, C, rows, 1)."""
    return np.stack([reduce(x[:, :, r:r + 3, :], axis=(2, 3)) for r in range(rows)], 2)[..., None]


@pytest.mark.parametrize("pool,reduce", [("max", np.max), ("avg", np.mean)])
@pytest.mark.parametrize("huge,expected", [
    # one window per axis, rows and columns [-1, 2): 4 input cells of 9 (count_include_pad)
    (dict(kernel_size=3, stride=2 ** 31 - 1, padding=1),
     lambda x, reduce: reduce(np.pad(x, ((0, 0), (0, 0), (1, 0), (1, 0)))[:, :, :3, :3]
                              if reduce is np.mean else x[:, :, :2, :2], axis=(2, 3),
                              keepdims=True)),
    # one window far wider than the input: the whole plane
    (dict(kernel_size=2 ** 30, stride=2 ** 31 - 1),
     lambda x, reduce: reduce(x, axis=(2, 3), keepdims=True)),
    # a (3, huge) kernel: 4 windows of 3 rows × all the columns
    (dict(kernel_size=(3, 2 ** 30), stride=(1, 2 ** 31 - 1)),
     lambda x, reduce: _rows_of_windows(x, reduce, 4)),
    # taps 0, 2^30, 2^31 apart: only the first tap is in the input
    (dict(kernel_size=3, stride=2 ** 31 - 1, dilation=2 ** 30),
     lambda x, reduce: x[:, :, :1, :1]),
])
def test_huge_window_arguments_cost_no_memory(pool, reduce, huge, expected):
    """A huge stride, kernel or dilation that passes validation (ceil_mode keeps one window) runs
    as the window trimmed to the input, not with a padded plane sized by the arguments (that
    used to allocate ~112 GiB), and gives PyTorch's result (here by hand)."""
    if pool == "avg" and "dilation" in huge:
        return
    x = rng.standard_normal((2, 3, 6, 5))
    y = getattr(F, f"{pool}_pool2d")(tensor64(x, False), ceil_mode=True, **huge)
    np.testing.assert_allclose(y.data, expected(x, reduce), rtol=1e-12)


X = minigrad.tensor(np.zeros((1, 2, 6, 6), np.float32))


@pytest.mark.parametrize("call,name", [
    (lambda: F.max_pool2d(X, 0), "kernel_size"),
    (lambda: F.max_pool2d(X, (2, -1)), "kernel_size"),
    (lambda: F.max_pool2d(X, 2, stride=0), "stride"),
    (lambda: F.avg_pool2d(X, 2, stride=(1, 0)), "stride"),
    (lambda: F.max_pool2d(X, 3, padding=2), "padding"),
    (lambda: F.avg_pool2d(X, 2, padding=(0, 2)), "padding"),
    (lambda: F.max_pool2d(X, 2, padding=-1), "padding"),
    (lambda: F.max_pool2d(X, 2, dilation=0), "dilation"),
    (lambda: F.max_pool2d(X, 7), "input"),
    (lambda: F.max_pool2d(X, 3, dilation=3), "input"),
    (lambda: F.avg_pool2d(X, 2, divisor_override=0), "divisor_override"),
    (lambda: F.adaptive_avg_pool2d(X, 0), "output_size"),
    (lambda: F.adaptive_max_pool2d(X, (2, -3)), "output_size"),
    (lambda: F.max_pool2d(minigrad.tensor(np.zeros((6, 6), np.float32)), 2), "input"),
    (lambda: F.avg_pool2d(minigrad.tensor(np.zeros((1, 1, 2, 6, 6), np.float32)), 2), "input"),
    (lambda: F.global_avg_pool2d(minigrad.tensor(np.zeros((2, 6), np.float32))), "input"),
    (lambda: F.global_max_pool2d(minigrad.tensor(np.zeros((1, 1, 0, 3), np.float32))), "input"),
    (lambda: F.adaptive_avg_pool2d(minigrad.tensor(np.zeros((6,), np.float32)), 2), "input"),
    (lambda: F.max_pool2d(X, 2, stride=2 ** 31), "stride"),
    (lambda: F.avg_pool2d(X, 2 ** 40, padding=3), "kernel_size"),
    (lambda: F.adaptive_avg_pool2d(X, (2 ** 40, 1)), "output_size"),
    # a padding far beyond the input would need an absurd padded plane
    (lambda: F.avg_pool2d(X, 2 ** 28, stride=1, padding=2 ** 27), "padding"),
    (lambda: F.max_pool2d(X, 2 ** 28, stride=2 ** 20, padding=2 ** 27), "padding"),
])
def test_bad_arguments_raise_value_error_naming_them(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize("call,name", [
    (lambda: F.max_pool2d(minigrad.tensor(np.zeros((1, 1, 4, 4), np.int32)), 2), "input"),
    (lambda: F.avg_pool2d(np.zeros((1, 1, 4, 4), np.complex64), 2), "input"),
    (lambda: F.global_avg_pool2d(minigrad.tensor(np.zeros((1, 1, 4, 4), np.int64))), "input"),
    (lambda: F.max_pool2d(X, 2.5), "kernel_size"),
    (lambda: F.avg_pool2d(X, 2, divisor_override=2.0), "divisor_override"),
    (lambda: F.adaptive_max_pool2d(X, "big"), "output_size"),
    (lambda: F.max_pool2d(X, 2, ceil_mode=np.array([True, False])), "ceil_mode"),
    (lambda: F.max_pool2d(X, 2, return_indices="yes"), "return_indices"),
    (lambda: F.avg_pool2d(X, 2, count_include_pad=None), "count_include_pad"),
    (lambda: F.global_max_pool2d(X, keepdims=1.0), "keepdims"),
    (lambda: F.max_pool2d(None, 2), "x must be array-like"),
    (lambda: F.adaptive_avg_pool2d(object(), 2), "x must be array-like"),
])
def test_bad_types_raise_type_error_naming_them(call, name):
    with pytest.raises(TypeError, match=name):
        call()
