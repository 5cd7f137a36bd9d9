"""Determinism: the same seed gives bit-identical training; pooling is bit-identical whatever
the number of threads; convolution agrees across thread counts to BLAS rounding."""
import numpy as np
import pytest

import minigrad
import minigrad.nn.functional as F

from helpers.training import batches, make_run, train


@pytest.fixture
def threads():
    """Restores the thread count the test changes."""
    before = minigrad.get_num_threads()
    yield minigrad.set_num_threads
    minigrad.set_num_threads(before)


def test_same_seed_gives_bit_identical_losses():
    first = train(*make_run(seed=3), batches(8))
    second = train(*make_run(seed=3), batches(8))
    assert first == second                       # exact float equality, step by step
    other = train(*make_run(seed=4), batches(8))
    assert other != first                        # the seed does matter


POOLS = [
    ("max_pool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("max_pool2d", dict(kernel_size=2)),
    ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ("adaptive_avg_pool2d", dict(output_size=(5, 3))),
    ("adaptive_max_pool2d", dict(output_size=4)),
    ("global_avg_pool2d", dict()),
    ("global_max_pool2d", dict()),
    ("lp_pool2d", dict(p=2.0, kernel_size=2)),
    ("stochastic_pool2d", dict(kernel_size=2, seed=5)),
    ("fractional_max_pool2d", dict(kernel_size=2, output_size=9, seed=5)),
]


@pytest.mark.parametrize("name,kwargs", POOLS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(POOLS)])
def test_pooling_is_bit_identical_with_one_and_two_threads(name, kwargs, threads):
    # big enough (8·16 planes of 24×24) that the kernels do use several threads
    x = np.abs(np.random.default_rng(0).standard_normal((8, 16, 24, 24))).astype(np.float32)
    results = []
    for n in (1, 2):
        threads(n)
        t = minigrad.tensor(x, requires_grad=True)
        y = getattr(F, name)(t, **kwargs)
        y.backward(np.random.default_rng(1).standard_normal(y.shape).astype(np.float32))
        results.append((y.data.copy(), t.grad.copy()))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


@pytest.mark.parametrize("stride", [1, 2])
def test_conv2d_across_thread_counts(threads, stride):
    """Stride 1 runs the direct kernels, in which each thread owns whole output tiles: bitwise
    the same for any thread count. Stride 2 is im2col (exact copies) + BLAS matrix products;
    BLAS may split and order its sums differently with another thread count, so the results
    agree only to rounding: in float32 a sum of K = C·kh·kw = 72 products changes by at most a
    few ulps of its terms' magnitudes, far inside rtol = 1e-5, atol = 1e-5 (≈ 100 ulps at 1.0);
    a wrong window or missing term would be off by O(0.1)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 8, 20, 20)).astype(np.float32)
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    gy = rng.standard_normal((8, 16, 20 // stride, 20 // stride)).astype(np.float32)
    results = []
    for n in (1, 2):
        threads(n)
        xt, wt = minigrad.tensor(x, requires_grad=True), minigrad.tensor(w, requires_grad=True)
        y = F.conv2d(xt, wt, stride=stride, padding=1)
        y.backward(gy)
        results.append((y.data.copy(), xt.grad.copy(), wt.grad.copy()))
    for a, b in zip(*results):
        if stride == 1:
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
