"""The compiled kernels are the ones running, and thread control works."""
import numpy as np
import pytest

import minigrad as mg
from minigrad._kernels import activation as activation_kernels
import minigrad.nn.functional as F


def test_relu_kernel_is_compiled_cython():
    assert activation_kernels.__file__.endswith((".so", ".pyd"))
    assert type(activation_kernels.relu_forward).__name__ in (
        "cython_function_or_method", "fused_cython_function")


def test_relu_runs_through_the_kernel(monkeypatch):
    calls = []
    original = activation_kernels.relu_forward

    def spy(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(activation_kernels, "relu_forward", spy)
    F.relu(mg.tensor(np.array([-1.0, 2.0], np.float32)))
    assert calls


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [7, 1 << 16])      # serial and prange paths
def test_relu_kernel_matches_numpy(dtype, size):
    x = np.random.default_rng(0).standard_normal(size).astype(dtype)
    x[3] = np.nan
    t = mg.tensor(x, requires_grad=True)
    y = F.relu(t)
    expected = np.where(x > 0, x, 0)
    expected[3] = np.nan
    np.testing.assert_array_equal(y.data, expected)
    g = np.random.default_rng(1).standard_normal(size).astype(dtype)
    y.backward(g)
    np.testing.assert_array_equal(t.grad, np.where(x > 0, g, 0))


def test_relu_gradcheck():
    x = mg.tensor(np.random.default_rng(2).standard_normal((2, 3, 4, 4)), requires_grad=True,
                  dtype=np.float64)
    x.data[np.abs(x.data) < 1e-3] = 0.5     # keep away from the kink
    assert mg.gradcheck(F.relu, [x])


def test_set_num_threads_round_trip():
    before = mg.get_num_threads()
    try:
        mg.set_num_threads(1)
        assert mg.get_num_threads() == 1
    finally:
        mg.set_num_threads(before)
    with pytest.raises(ValueError, match="n must be"):
        mg.set_num_threads(0)


@pytest.mark.parametrize("shape", [(3, 5, 7), (2, 4, 64), (4, 3, 20000), (0, 3, 9), (2, 0, 5),
                                   (2, 3, 0)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_channel_sums_match_numpy_for_any_thread_count(shape, dtype):
    """A bias's gradient: short runs (``_sum``), long ones in lanes with a tail, empty ones."""
    from minigrad._kernels import normalization
    x = np.random.default_rng(5).standard_normal(shape).astype(dtype)
    results = []
    for threads in (1, 2, 3):
        sums = np.full(shape[1], np.nan)
        normalization.channel_sums(x, sums, threads)
        results.append(sums)
    np.testing.assert_allclose(results[0], x.astype(np.float64).sum(axis=(0, 2)), rtol=1e-12,
                               atol=1e-12)
    for other in results[1:]:
        np.testing.assert_array_equal(results[0], other)
    with pytest.raises(ValueError, match="channel_sums: need"):
        normalization.channel_sums(x, np.empty(shape[1] + 1), 1)
