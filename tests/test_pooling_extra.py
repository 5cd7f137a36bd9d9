"""Alternative pooling: Lp, stochastic, fractional max, spatial pyramid, mixed and gated.

Each kind is checked against a plain numpy loop over its windows (helpers.reference, forward
and backward), with gradcheck in float64, and on bad arguments (ValueError naming the argument).
"""
import numpy as np
import pytest

import minigrad
import minigrad.nn.functional as F
from minigrad import nn

from helpers import reference as R

RNG = np.random.default_rng(1234)


def t64(a, grad=True):
    return minigrad.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def distinct(shape, low=0.1, high=2.0, sign=False):
    """Values with no ties (max-type gradchecks) and away from 0 (Lp with p < 1)."""
    values = np.linspace(low, high, int(np.prod(shape)))
    RNG.shuffle(values)
    if sign:
        values *= RNG.choice([-1.0, 1.0], size=values.shape)
    return values.reshape(shape)


# -- Lp pooling ----------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [1, 2, 3.5, 0.7])
@pytest.mark.parametrize("kernel,stride,ceil_mode", [
    (1, None, False), (2, None, False), (3, 1, False), (3, 2, True), ((2, 3), (1, 2), True)])
def test_lp_pool_matches_reference_and_gradcheck(p, kernel, stride, ceil_mode):
    x = distinct((2, 2, 7, 6), sign=True)
    y = F.lp_pool2d(t64(x, grad=False), p, kernel, stride, ceil_mode)
    k = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    s = k if stride is None else (stride if isinstance(stride, tuple) else (stride, stride))
    gy = RNG.standard_normal(y.shape)
    expected, expected_grad = R.lp_pool2d(x, p, k, s, ceil_mode, gy)
    np.testing.assert_allclose(y.data, expected, rtol=1e-12)
    xt = t64(x)
    F.lp_pool2d(xt, p, kernel, stride, ceil_mode).backward(gy)
    np.testing.assert_allclose(xt.grad, expected_grad, rtol=1e-10, atol=1e-12)
    minigrad.gradcheck(lambda a: F.lp_pool2d(a, p, kernel, stride, ceil_mode),
                       [t64(x[:1, :1, :5, :5])])


def test_lp_pool_zero_window_gradient_is_zero_and_float32_stays():
    x = np.zeros((1, 1, 4, 4), np.float32)
    x[0, 0, :2, :2] = [[3, 0], [-4, 0]]
    xt = minigrad.tensor(x, requires_grad=True)
    y = F.lp_pool2d(xt, 2, 2)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data[0, 0], [[5, 0], [0, 0]])
    y.sum().backward()
    assert np.isfinite(xt.grad).all()
    np.testing.assert_allclose(xt.grad[0, 0, :2, :2], [[0.6, 0], [-0.8, 0]], rtol=1e-6)
    assert not xt.grad[0, 0, 2:].any() and not xt.grad[0, 0, :, 2:].any()


def test_lp_pool_large_p_tends_to_max_without_overflow():
    for low, high in [(1.0, 50.0), (1e-3, 1e-1)]:   # Σx^p overflows, then underflows
        x = distinct((1, 2, 4, 4), low=low, high=high)
        y = F.lp_pool2d(t64(x, grad=False), 500, 2)
        expected, _, _ = R.window_loop(x, (2, 2), (2, 2), False, np.max)
        assert np.isfinite(y.data).all()
        np.testing.assert_allclose(y.data, expected, rtol=1e-2)


def test_lp_pool_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.abs(RNG.standard_normal((2, 3, 7, 8)))
    for p, kernel, stride in [(1, 2, None), (2, 3, 1), (3.5, (2, 3), (2, 1))]:
        ours = F.lp_pool2d(t64(x, grad=False), p, kernel, stride).data
        theirs = torch.nn.functional.lp_pool2d(torch.from_numpy(x), p, kernel, stride).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


@pytest.mark.parametrize("p", [1, 2, 3.5, 0.7])
@pytest.mark.parametrize("kernel,stride", [(3, 2), ((2, 3), (3, 2)), (3, None)])
def test_lp_pool_ceil_mode_overhanging_windows_match_torch(p, kernel, stride):
    """ceil_mode's last windows overhang the 7 × 8 input (columns only for kernel 3, stride 2;
    rows and columns otherwise): PyTorch scales them by kernel area / cells inside, forward
    and backward."""
    torch = pytest.importorskip("torch")
    x = distinct((2, 2, 7, 8))
    xt = t64(x)
    y = F.lp_pool2d(xt, p, kernel, stride, ceil_mode=True)
    x_torch = torch.from_numpy(x).requires_grad_()
    y_torch = torch.nn.functional.lp_pool2d(x_torch, p, kernel, stride, ceil_mode=True)
    assert y.shape == tuple(y_torch.shape)
    np.testing.assert_allclose(y.data, y_torch.detach().numpy(), rtol=1e-12)
    gy = RNG.standard_normal(y.shape)
    y.backward(gy)
    y_torch.backward(torch.from_numpy(gy))
    np.testing.assert_allclose(xt.grad, x_torch.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("p", [1, 2, 3.5, 0.7])
def test_lp_pool_ceil_mode_overhanging_windows_gradcheck(p):
    # 4 × 6 with kernel 3, stride (3, 2): the last row window holds 1 of 3 rows, the last
    # column window 2 of 3 columns, so the corner window has c = 9 / 2
    x = distinct((1, 2, 4, 6), sign=True)
    y = F.lp_pool2d(t64(x, grad=False), p, 3, (3, 2), ceil_mode=True)
    assert y.shape == (1, 2, 2, 3)
    expected, _ = R.lp_pool2d(x, p, (3, 3), (3, 2), True, np.zeros(y.shape))
    assert expected[0, 0, 1, 2] == pytest.approx(
        (9 / 2 * np.sum(np.abs(x[0, 0, 3:, 4:]) ** p)) ** (1 / p), rel=1e-12)
    np.testing.assert_allclose(y.data, expected, rtol=1e-12)
    minigrad.gradcheck(lambda a: F.lp_pool2d(a, p, 3, (3, 2), ceil_mode=True), [t64(x)])


# -- stochastic pooling --------------------------------------------------------------------------

@pytest.mark.parametrize("kernel,stride", [(1, None), (2, None), (3, 1), ((2, 3), (2, 1))])
def test_stochastic_training_matches_reference(kernel, stride):
    x = distinct((2, 3, 6, 7), low=0.0)
    x[0, 0, :3, :3] = 0   # all-zero windows
    k = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    s = k if stride is None else (stride if isinstance(stride, tuple) else (stride, stride))
    xt = t64(x)
    y = F.stochastic_pool2d(xt, kernel, stride, training=True, seed=7)
    draws = np.random.default_rng(7).random(y.shape)   # the op draws one uniform per window
    expected, index = R.stochastic_pool2d_train(x, draws, k, s)
    np.testing.assert_array_equal(y.data, expected)
    gy = RNG.standard_normal(y.shape)
    y.backward(gy)
    expected_grad = np.zeros_like(x)
    for n, c, i, j in np.ndindex(y.shape):
        if expected[n, c, i, j] != 0:
            expected_grad[n, c].flat[index[n, c, i, j]] += gy[n, c, i, j]
    np.testing.assert_allclose(xt.grad, expected_grad, rtol=1e-12)
    minigrad.gradcheck(lambda a: F.stochastic_pool2d(a, kernel, stride, seed=3),
                       [t64(x[:1, :1] + 0.1)])


def test_stochastic_training_output_is_a_window_value_and_zero_window_gives_zero():
    x = np.abs(RNG.standard_normal((2, 2, 6, 6))).astype(np.float32)
    x[1, 1, 2:4, 2:4] = 0
    xt = minigrad.tensor(x, requires_grad=True)
    y = F.stochastic_pool2d(xt, 2, seed=0)
    assert y.dtype == np.float32 and y.shape == (2, 2, 3, 3)
    for n, c, i, j in np.ndindex(y.shape):
        window = x[n, c, 2 * i:2 * i + 2, 2 * j:2 * j + 2]
        assert y.data[n, c, i, j] in window
        assert y.data[n, c, i, j] > 0 or not window.any()
    assert y.data[1, 1, 1, 1] == 0
    y.sum().backward()
    assert not xt.grad[1, 1, 2:4, 2:4].any()


def test_stochastic_sampling_follows_probabilities_chi_square():
    weights = np.array([[1.0, 2.0], [3.0, 4.0]])
    draws = 20000
    x = np.broadcast_to(weights, (1, draws, 2, 2)).copy()
    xt = t64(x)
    y = F.stochastic_pool2d(xt, 2, seed=2024)
    y.sum().backward()   # the gradient marks the sampled cell of every plane
    counts = xt.grad.reshape(draws, 4).sum(axis=0)
    expected = draws * weights.ravel() / weights.sum()
    chi_square = np.sum((counts - expected) ** 2 / expected)
    assert counts.sum() == draws
    assert chi_square < 16.27   # 3 degrees of freedom, p = 0.001
    np.testing.assert_array_equal(np.sort(np.unique(y.data)), [1, 2, 3, 4])


def test_stochastic_eval_is_weighted_average_with_exact_gradient():
    x = distinct((2, 2, 5, 7), low=0.0)
    x[0, 1, :2, :2] = 0
    for kernel, stride in [(2, None), (3, 1), ((1, 2), (1, 3))]:
        k = kernel if isinstance(kernel, tuple) else (kernel, kernel)
        s = k if stride is None else (stride if isinstance(stride, tuple) else (stride, stride))
        xt = t64(x)
        y = F.stochastic_pool2d(xt, kernel, stride, training=False)
        gy = RNG.standard_normal(y.shape)
        expected, expected_grad = R.stochastic_pool2d_eval(x, k, s, gy)
        np.testing.assert_allclose(y.data, expected, rtol=1e-12)
        y.backward(gy)
        np.testing.assert_allclose(xt.grad, expected_grad, rtol=1e-10, atol=1e-14)
        minigrad.gradcheck(lambda a: F.stochastic_pool2d(a, kernel, stride, training=False),
                           [t64(x[:1, 1:] + 0.1)])


def test_stochastic_seed_reproducible_and_thread_independent():
    x = np.abs(RNG.standard_normal((4, 16, 32, 32)))   # big enough for the threaded path
    first = F.stochastic_pool2d(t64(x, False), 2, seed=11).data
    threads = minigrad.get_num_threads()
    try:
        minigrad.set_num_threads(1)
        again = F.stochastic_pool2d(t64(x, False), 2, seed=11).data
    finally:
        minigrad.set_num_threads(threads)
    np.testing.assert_array_equal(first, again)
    generator = np.random.default_rng(11)
    draws = [F.stochastic_pool2d(t64(x, False), 2, seed=generator).data for _ in range(2)]
    np.testing.assert_array_equal(draws[0], first)
    assert not np.array_equal(draws[0], draws[1])


# -- fractional max pooling ----------------------------------------------------------------------

@pytest.mark.parametrize("overlapping", [True, False])
@pytest.mark.parametrize("kernel,out", [(1, (4, 5)), (2, (5, 4)), (3, (4, 6)), ((2, 3), (1, 3))])
def test_fractional_matches_reference_and_gradcheck(kernel, out, overlapping):
    x = distinct((2, 3, 9, 10))
    k = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    samples = RNG.random((2, 3, 2))
    xt = t64(x)
    y = F.fractional_max_pool2d(xt, kernel, output_size=out, overlapping=overlapping,
                                random_samples=samples)
    expected, index = R.fractional_max_pool2d(x, k, out, samples, overlapping)
    np.testing.assert_array_equal(y.data, expected)
    gy = RNG.standard_normal(y.shape)
    y.backward(gy)
    np.testing.assert_allclose(xt.grad, R.scatter_to_argmax(x.shape, index, gy), rtol=1e-12)
    minigrad.gradcheck(
        lambda a: F.fractional_max_pool2d(a, kernel, output_size=out, overlapping=overlapping,
                                          random_samples=samples[:1, :1]), [t64(x[:1, :1])])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fractional_matches_torch_given_samples(dtype):
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal((3, 4, 17, 13)).astype(dtype)
    samples = RNG.random((3, 4, 2)).astype(dtype)
    for kernel, out in [(2, (8, 6)), (3, (15, 11)), ((2, 3), (9, 4)), (2, (1, 1)), (1, (17, 13))]:
        ours = F.fractional_max_pool2d(minigrad.tensor(x), kernel, output_size=out,
                                       random_samples=samples)
        theirs = torch.nn.functional.fractional_max_pool2d(
            torch.from_numpy(x), kernel, output_size=out,
            _random_samples=torch.from_numpy(samples))
        assert ours.dtype == dtype
        np.testing.assert_array_equal(ours.data, theirs.numpy())
    # output_ratio rounds like PyTorch's
    ours = F.fractional_max_pool2d(minigrad.tensor(x), 2, output_ratio=(0.5, 0.7),
                                   random_samples=samples)
    theirs = torch.nn.functional.fractional_max_pool2d(
        torch.from_numpy(x), 2, output_ratio=(0.5, 0.7),
        _random_samples=torch.from_numpy(samples))
    np.testing.assert_array_equal(ours.data, theirs.numpy())


def test_fractional_output_size_from_ratio():
    x = minigrad.tensor(RNG.standard_normal((2, 3, 25, 16)))
    assert F.fractional_max_pool2d(x, 2, output_ratio=0.5, seed=0).shape == (2, 3, 12, 8)
    assert F.fractional_max_pool2d(x, 3, output_ratio=(0.7, 0.3), seed=0).shape == (2, 3, 17, 4)


@pytest.mark.parametrize("overlapping", [True, False])
def test_fractional_regions_cover_the_input(overlapping):
    from minigrad.ops.geometry import fractional_intervals
    samples = np.random.default_rng(5).random(500)
    # (in, out, kernel) with ceil((in − kernel)/(out − 1)) ≤ kernel: overlapping regions cover too
    for size, out, kernel in [(10, 5, 2), (25, 13, 2), (32, 12, 3), (7, 7, 1), (9, 2, 5)]:
        start, end = fractional_intervals(samples, size, out, kernel, overlapping)
        assert start.shape == end.shape == (500, out)
        assert (start[:, 0] == 0).all() and (end[:, -1] == size).all()
        assert (start >= 0).all() and (end <= size).all() and (end > start).all()
        assert (np.diff(start, axis=1) >= 1).all()
        if overlapping:
            assert (end - start == kernel).all()
            assert (start[:, 1:] <= end[:, :-1]).all()       # no gap between neighbours
        else:
            np.testing.assert_array_equal(start[:, 1:], end[:, :-1])   # tiles: no overlap


def test_fractional_seed_reproducible():
    x = minigrad.tensor(RNG.standard_normal((2, 3, 12, 12)))
    a = F.fractional_max_pool2d(x, 2, output_size=7, seed=3).data
    b = F.fractional_max_pool2d(x, 2, output_size=7, seed=3).data
    np.testing.assert_array_equal(a, b)


# -- spatial pyramid, mixed and gated pooling ----------------------------------------------------

@pytest.mark.parametrize("mode,reduce_window", [("max", np.max), ("avg", np.mean)])
def test_spatial_pyramid_matches_reference_and_gradcheck(mode, reduce_window):
    x = distinct((2, 3, 7, 5))
    y = F.spatial_pyramid_pool2d(t64(x, False), (1, 2, 3), mode)
    np.testing.assert_allclose(y.data, R.spatial_pyramid_pool2d(x, (1, 2, 3), reduce_window),
                               rtol=1e-12)
    minigrad.gradcheck(lambda a: F.spatial_pyramid_pool2d(a, (1, 2, 3), mode),
                       [t64(x[:1, :2])])


def test_spatial_pyramid_length_does_not_depend_on_input_size():
    spp = nn.SpatialPyramidPool2d((1, 2, 4))
    for size in [(4, 4), (9, 7), (16, 13), (33, 40)]:
        x = minigrad.tensor(RNG.standard_normal((2, 5) + size).astype(np.float32))
        y = spp(x)
        assert y.shape == (2, 5 * 21) and y.dtype == np.float32


@pytest.mark.parametrize("alpha_shape", [(), (1,), (3,)])
@pytest.mark.parametrize("kernel,stride", [(1, None), (2, None), (3, 1), ((2, 3), (1, 2))])
def test_mixed_pool_matches_reference_and_gradcheck(alpha_shape, kernel, stride):
    x = distinct((2, 3, 6, 7), sign=True)
    alpha = RNG.random(alpha_shape)
    k = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    s = k if stride is None else (stride if isinstance(stride, tuple) else (stride, stride))
    alpha_t = t64(alpha)
    y = F.mixed_pool2d(t64(x, False), alpha_t, kernel, stride)
    broadcast = np.reshape(alpha, (1, -1, 1, 1))
    expected, difference = R.mixed_pool2d(x, broadcast, k, s)
    np.testing.assert_allclose(y.data, expected, rtol=1e-12)
    gy = RNG.standard_normal(y.shape)
    y.backward(gy)
    alpha_grad = (gy * difference).sum(axis=(0, 2, 3))
    expected_alpha_grad = alpha_grad.sum() if alpha.size == 1 else alpha_grad
    np.testing.assert_allclose(alpha_t.grad, np.reshape(expected_alpha_grad, alpha_shape),
                               rtol=1e-10)
    minigrad.gradcheck(lambda a, b: F.mixed_pool2d(a, b, kernel, stride),
                       [t64(x[:1]), t64(alpha)])


def test_mixed_pool_with_padding_gradcheck():
    x = distinct((1, 2, 5, 5), sign=True)
    minigrad.gradcheck(lambda a, b: F.mixed_pool2d(a, b, 3, 2, padding=1),
                       [t64(x), t64([0.3, 0.8])])


@pytest.mark.parametrize("kernel,stride", [(1, None), (2, None), (3, 1), ((2, 3), (2, 1))])
def test_gated_pool_matches_reference_and_gradcheck(kernel, stride):
    x = distinct((2, 3, 6, 7), sign=True)
    k = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    s = k if stride is None else (stride if isinstance(stride, tuple) else (stride, stride))
    weight = RNG.standard_normal(k)
    y = F.gated_pool2d(t64(x, False), t64(weight, False), kernel, stride)
    np.testing.assert_allclose(y.data, R.gated_pool2d(x, weight, k, s), rtol=1e-12)
    minigrad.gradcheck(lambda a, b: F.gated_pool2d(a, b, kernel, stride),
                       [t64(x[:1, :2]), t64(weight)])


def test_mixed_and_gated_modules_own_their_parameters():
    x = minigrad.tensor(distinct((2, 3, 6, 6)).astype(np.float32))
    mixed, gated = nn.MixedPool2d(2, num_channels=3), nn.GatedPool2d(2)
    assert [name for name, _ in mixed.named_parameters()] == ["alpha"]
    assert [name for name, _ in gated.named_parameters()] == ["gate_weight"]
    np.testing.assert_array_equal(mixed.alpha.data, [0.5, 0.5, 0.5])
    # a zero gate weight gives every gate sigmoid(0) = 0.5: the same as α = 0.5
    np.testing.assert_allclose(gated(x).data, mixed(x).data, rtol=1e-6)
    for module, parameter in [(mixed, mixed.alpha), (gated, gated.gate_weight)]:
        module(x).sum().backward()
        assert parameter.grad is not None and parameter.grad.dtype == np.float32
        assert np.abs(parameter.grad).sum() > 0


def test_stochastic_and_fractional_modules_train_and_eval():
    x = minigrad.tensor(np.abs(RNG.standard_normal((2, 3, 12, 12))).astype(np.float32))
    stochastic = nn.StochasticPool2d(2, seed=0)
    first, second = stochastic(x).data, stochastic(x).data
    assert not np.array_equal(first, second)          # the stream continues between forwards
    np.testing.assert_array_equal(first, nn.StochasticPool2d(2, seed=0)(x).data)
    stochastic.eval()
    np.testing.assert_array_equal(stochastic(x).data,
                                  F.stochastic_pool2d(x, 2, training=False).data)
    fractional = nn.FractionalMaxPool2d(2, output_ratio=0.6, seed=1)
    assert fractional(x).shape == (2, 3, 7, 7)
    assert not np.array_equal(fractional(x).data, fractional(x).data)
    fractional.eval()
    np.testing.assert_array_equal(fractional(x).data, fractional(x).data)


# -- bad arguments -------------------------------------------------------------------------------

X4 = np.abs(RNG.standard_normal((1, 2, 6, 6))).astype(np.float32)


@pytest.mark.parametrize("call,name", [
    (lambda: F.lp_pool2d(X4, 0, 2), "p"),
    (lambda: F.lp_pool2d(X4, -1.5, 2), "p"),
    (lambda: F.lp_pool2d(X4, float("nan"), 2), "p"),
    (lambda: F.lp_pool2d(X4, 10 ** 400, 2), "p"),   # beyond a double: not an OverflowError
    (lambda: F.lp_pool2d(X4, 2, 0), "kernel_size"),
    (lambda: F.lp_pool2d(X4, 2, 7), "kernel_size"),
    (lambda: F.lp_pool2d(X4, 2, 2, stride=0), "stride"),
    (lambda: F.lp_pool2d(X4[0, 0], 2, 2), "input"),
    (lambda: F.stochastic_pool2d(-X4, 2), "non-negative"),
    (lambda: F.stochastic_pool2d(X4 * np.nan, 2), "non-negative"),
    (lambda: F.stochastic_pool2d(X4[0, 0], 2), "input"),
    (lambda: F.stochastic_pool2d(X4, 7), "kernel_size"),
    (lambda: F.fractional_max_pool2d(X4, 2, output_size=0), "output_size"),
    (lambda: F.fractional_max_pool2d(X4, 2, output_size=6), "output_size"),
    (lambda: F.fractional_max_pool2d(X4, 2, output_size=(3, 6)), "output_size"),
    (lambda: F.fractional_max_pool2d(X4, 2, output_ratio=1.0), "output_ratio"),
    (lambda: F.fractional_max_pool2d(X4, 2, output_ratio=0.1), "output_ratio"),
    (lambda: F.fractional_max_pool2d(X4, 2), "output_size"),
    (lambda: F.fractional_max_pool2d(X4, 2, output_size=3, output_ratio=0.5), "output_ratio"),
    (lambda: F.fractional_max_pool2d(X4, 2, 3, random_samples=np.zeros((1, 2))), "random_samples"),
    (lambda: F.fractional_max_pool2d(X4, 2, 3, random_samples=np.ones((1, 2, 2))),
     "random_samples"),
    (lambda: F.fractional_max_pool2d(X4[0, 0], 2, 3), "input"),
    (lambda: F.spatial_pyramid_pool2d(X4, (1, 2, 7)), "levels"),
    (lambda: F.spatial_pyramid_pool2d(X4, (0, 2)), "levels"),
    (lambda: F.spatial_pyramid_pool2d(X4, mode="min"), "mode"),
    (lambda: F.spatial_pyramid_pool2d(X4[0, 0]), "input"),
    (lambda: F.mixed_pool2d(X4, np.ones(3, np.float32), 2), "alpha"),
    (lambda: F.mixed_pool2d(X4, np.ones((1, 2), np.float32), 2), "alpha"),
    (lambda: F.mixed_pool2d(X4, 0.5, 2, padding=2), "padding"),
    (lambda: F.mixed_pool2d(X4[0, 0], 0.5, 2), "input"),
    (lambda: F.gated_pool2d(X4, np.zeros((2, 2), np.float32), 3), "gate_weight"),
    (lambda: F.gated_pool2d(X4, np.zeros((3, 3), np.float32), 7), "kernel_size"),
    (lambda: F.gated_pool2d(X4[0, 0], np.zeros((2, 2), np.float32), 2), "input"),
    (lambda: nn.MixedPool2d(2, num_channels=0), "num_channels"),
])
def test_bad_arguments_raise_value_error_naming_them(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_bad_types_raise_type_error():
    with pytest.raises(TypeError, match="seed"):
        F.stochastic_pool2d(X4, 2, seed="x")
    with pytest.raises(TypeError, match="training"):
        F.stochastic_pool2d(X4, 2, training=None)
    with pytest.raises(TypeError, match="kernel_size"):
        F.lp_pool2d(X4, 2, 1.5)
    with pytest.raises(TypeError, match="alpha"):
        F.mixed_pool2d(X4, "half", 2)
    with pytest.raises(TypeError, match="gate_weight"):
        F.gated_pool2d(X4, None, 2)
    with pytest.raises(TypeError, match="x must be array-like"):
        F.lp_pool2d(None, 2, 2)
