"""Linear, Dropout, BatchNorm2d, Identity, Flatten, their functional forms, and nn.init."""
import math

import numpy as np
import pytest

import minigrad
import minigrad.nn.functional as F
from minigrad import nn
from minigrad.nn import init

from helpers import reference as R


def _t(array, grad=False):
    return minigrad.tensor(array, requires_grad=grad)


def _rand(*shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# -- Linear ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("x_shape", [(4, 3), (2, 2, 3), (3,)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_gradcheck(x_shape, with_bias):
    x = _t(_rand(*x_shape), True)
    w = _t(_rand(5, 3, seed=1), True)
    b = _t(_rand(5, seed=2), True) if with_bias else None
    inputs = [x, w] + ([b] if with_bias else [])
    assert minigrad.gradcheck(lambda *t: F.linear(*t), inputs)


def test_linear_forward_matches_a_loop():
    x, w, b = _rand(4, 3), _rand(5, 3, seed=1), _rand(5, seed=2)
    expected = np.empty((4, 5))
    for n in range(4):
        for o in range(5):
            expected[n, o] = sum(x[n, i] * w[o, i] for i in range(3)) + b[o]
    np.testing.assert_allclose(F.linear(x, w, b).data, expected, rtol=1e-12)


def test_linear_module_init_is_pytorchs_and_reproducible():
    minigrad.manual_seed(7)
    layer = nn.Linear(400, 50)
    bound = 1 / math.sqrt(400)      # kaiming_uniform_(a=√5) reduces to 1/√fan_in
    for p in (layer.weight, layer.bias):
        assert p.dtype == np.float32 and np.abs(p.data).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.95 * bound
    minigrad.manual_seed(7)
    np.testing.assert_array_equal(nn.Linear(400, 50).weight.data, layer.weight.data)
    assert nn.Linear(3, 2, bias=False).bias is None
    out = layer(_t(np.ones((2, 400), dtype=np.float32)))
    assert out.shape == (2, 50) and out.dtype == np.float32


def test_linear_bad_inputs_name_the_argument():
    w = _t(np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"input.*\(4, 2\).*in_features = 3"):
        F.linear(np.zeros((4, 2)), w)
    with pytest.raises(ValueError, match="weight must be 2-D"):
        F.linear(np.zeros((4, 3)), np.zeros(3))
    with pytest.raises(ValueError, match=r"bias must have shape \(5,\)"):
        F.linear(np.zeros((4, 3)), w, np.zeros(4))
    with pytest.raises(TypeError, match="share a dtype"):
        F.linear(np.zeros((4, 3), dtype=np.float32), w)
    with pytest.raises(TypeError, match="input must be float32 or float64"):
        F.linear(np.zeros((4, 3), dtype=np.int64), w)
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(0, 3)


# -- Dropout ---------------------------------------------------------------------------------------
def test_dropout_gradcheck_with_a_fixed_seed():
    x = _t(_rand(4, 5), True)
    assert minigrad.gradcheck(lambda t: F.dropout(t, 0.3, rng=11), [x])


def test_dropout_with_explicit_mask_matches_numpy():
    x = _rand(3, 4)
    keep = np.random.default_rng(3).random((3, 4)) > 0.5
    xt = _t(x, True)
    y = F.dropout(xt, 0.25, mask=keep)
    np.testing.assert_allclose(y.data, np.where(keep, x / 0.75, 0.0), rtol=1e-15)
    y.backward(np.ones((3, 4)))
    np.testing.assert_allclose(xt.grad, np.where(keep, 1 / 0.75, 0.0), rtol=1e-15)


def test_dropout_statistics_and_scaling():
    x = np.ones((200, 500), dtype=np.float32)
    y = F.dropout(x, 0.3, rng=np.random.default_rng(0)).data
    assert y.dtype == np.float32
    assert set(np.unique(y)) == {np.float32(0), np.float32(1 / 0.7)}
    assert abs((y == 0).mean() - 0.3) < 0.01


def test_dropout_identity_cases_and_p_one():
    x = _t(_rand(2, 3))
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0).data, 0)
    layer = nn.Dropout(0.5)
    assert layer.eval()(x) is x
    assert not np.array_equal(layer.train()(x).data, x.data)


def test_dropout_module_is_reproducible_with_manual_seed():
    x = _t(np.ones((8, 8), dtype=np.float32))
    minigrad.manual_seed(3)
    first = nn.Dropout(0.5)(x).data
    minigrad.manual_seed(3)
    np.testing.assert_array_equal(nn.Dropout(0.5)(x).data, first)


def test_dropout_bad_arguments():
    x = _t(np.ones((2, 2)))
    for p in (-0.1, 1.5, "a"):
        with pytest.raises(ValueError, match="p must be a probability"):
            F.dropout(x, p)
    with pytest.raises(ValueError, match="p must be a probability"):
        nn.Dropout(2)
    with pytest.raises(ValueError, match="mask"):
        F.dropout(x, 0.5, mask=np.ones((2, 3), dtype=bool))
    with pytest.raises(TypeError, match="rng"):
        F.dropout(x, 0.5, rng="seed")


# -- BatchNorm -------------------------------------------------------------------------------------
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine_grad", [True, False])
def test_batch_norm_gradcheck_all_inputs(training, affine_grad):
    x = _t(_rand(3, 2, 3, 2) * 2 + 1, True)
    gamma = _t(_rand(2, seed=1), affine_grad)
    beta = _t(_rand(2, seed=2), affine_grad)
    running_mean, running_var = np.array([0.3, -0.2]), np.array([1.5, 0.7])

    def fn(x, g, b):   # copies: the training-mode update must not drift between evaluations
        return F.batch_norm(x, running_mean.copy(), running_var.copy(), g, b, training=training)

    assert minigrad.gradcheck(fn, [x, gamma, beta])


def test_batch_norm_module_gradcheck_training_float64():
    bn = nn.BatchNorm2d(3).double()
    bn.weight.data[:] = [0.5, 1.5, -1.0]
    bn.bias.data[:] = [0.1, 0.0, -0.3]
    x = _t(_rand(2, 3, 2, 3), True)
    assert minigrad.gradcheck(lambda x, w, b: bn(x), [x, bn.weight, bn.bias])


def test_batch_norm_forward_and_running_stats_match_numpy():
    bn = nn.BatchNorm2d(3, momentum=0.2)
    gamma, beta = np.array([1.0, 2.0, 0.5], np.float32), np.array([0.0, -1.0, 0.3], np.float32)
    bn.weight.data[:], bn.bias.data[:] = gamma, beta
    mean, var = np.zeros(3), np.ones(3)
    for seed in range(3):
        x = _rand(4, 3, 2, 5, seed=seed, dtype=np.float32) * 3 + seed
        y = bn(_t(x)).data
        assert y.dtype == np.float32
        np.testing.assert_allclose(y, R.batch_norm(x, gamma, beta), rtol=1e-4, atol=1e-5)
        batch_mean = x.mean(axis=(0, 2, 3))
        unbiased_var = x.var(axis=(0, 2, 3), ddof=1)
        mean = 0.8 * mean + 0.2 * batch_mean
        var = 0.8 * var + 0.2 * unbiased_var
    np.testing.assert_allclose(bn.running_mean, mean, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var, var, rtol=1e-5)
    assert bn.num_batches_tracked == 3 and bn.num_batches_tracked.dtype == np.int64
    bn.eval()
    x = _rand(2, 3, 2, 2, seed=9, dtype=np.float32)
    np.testing.assert_allclose(bn(_t(x)).data, R.batch_norm(x, gamma, beta, mean, var),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.running_mean, mean, rtol=1e-5)     # eval does not update


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_inference_kernel_matches_the_recorded_path(dtype):
    # Without a graph, eval mode runs one kernel that also makes the per-channel scale; with
    # one, numpy makes it and the affine kernel applies it: both round the same.
    bn = nn.BatchNorm2d(5)
    if dtype == np.float64:
        bn = bn.double()
    rng = np.random.default_rng(3)
    bn.weight.data[:] = rng.standard_normal(5)
    bn.bias.data[:] = rng.standard_normal(5)
    bn.running_mean[:] = rng.standard_normal(5)
    bn.running_var[:] = rng.uniform(0.1, 3.0, 5)
    bn.eval()
    x = (rng.standard_normal((4, 5, 40, 41)) * 2 + 1).astype(dtype)   # 2 threads' worth
    recorded = bn(_t(x)).data                   # the parameters require grad: a graph
    expected = R.batch_norm(x, bn.weight.data, bn.bias.data, bn.running_mean, bn.running_var)
    before = minigrad.get_num_threads()
    for threads in (1, 2):
        minigrad.set_num_threads(threads)
        try:
            with minigrad.no_grad():
                y = bn(_t(x)).data
        finally:
            minigrad.set_num_threads(before)
        assert y.dtype == dtype
        np.testing.assert_array_equal(y, recorded)
        np.testing.assert_allclose(y, expected, rtol=1e-5 if dtype == np.float32 else 1e-12,
                                   atol=1e-5 if dtype == np.float32 else 1e-12)


def test_batch_norm_cumulative_average_when_momentum_is_none():
    bn = nn.BatchNorm2d(2, momentum=None)
    batches = [_rand(3, 2, 2, 2, seed=s, dtype=np.float32) for s in range(3)]
    for x in batches:
        bn(_t(x))
    expected = np.mean([x.mean(axis=(0, 2, 3)) for x in batches], axis=0)
    np.testing.assert_allclose(bn.running_mean, expected, rtol=1e-5, atol=1e-7)


def test_batch_norm_without_running_stats_or_affine():
    bn = nn.BatchNorm2d(2, affine=False, track_running_stats=False)
    assert list(bn.state_dict()) == [] and list(bn.parameters()) == []
    x = _rand(3, 2, 2, 2, seed=4)
    bn.eval()                          # still batch statistics: there are no running ones
    np.testing.assert_allclose(bn(_t(x)).data, R.batch_norm(x, np.ones(2), np.zeros(2)),
                               rtol=1e-10)


def test_batch_norm_state_dict_has_the_buffers():
    bn = nn.BatchNorm2d(4)
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var",
                                     "num_batches_tracked"]
    bn(_t(_rand(2, 4, 3, 3, dtype=np.float32)))
    twin = nn.BatchNorm2d(4)
    twin.load_state_dict(bn.state_dict())
    np.testing.assert_array_equal(twin.running_var, bn.running_var)
    assert twin.num_batches_tracked == 1


def test_batch_norm_bad_inputs():
    bn = nn.BatchNorm2d(3)
    with pytest.raises(ValueError, match="4-D"):
        bn(_t(np.zeros((2, 3, 4), np.float32)))
    with pytest.raises(ValueError, match="num_features=3"):
        bn(_t(np.zeros((2, 4, 2, 2), np.float32)))
    with pytest.raises(ValueError, match="more than one value per channel"):
        bn(_t(np.zeros((1, 3, 1, 1), np.float32)))
    assert bn.num_batches_tracked == 0          # a refused batch is not counted
    x = np.zeros((2, 3, 2, 2))
    with pytest.raises(ValueError, match="running_mean"):
        F.batch_norm(x, np.zeros(4), np.ones(3), training=True)
    with pytest.raises(ValueError, match="needed when not training"):
        F.batch_norm(x, None, None)
    with pytest.raises(TypeError, match="weight"):
        F.batch_norm(x, None, None, np.ones(3, np.float32), training=True)
    with pytest.raises(ValueError, match="eps"):
        F.batch_norm(x, None, None, training=True, eps=0)
    with pytest.raises(ValueError, match="momentum"):
        nn.BatchNorm2d(3, momentum=2)


def test_batch_norm_matches_torch():
    torch = pytest.importorskip("torch")
    mine, theirs = nn.BatchNorm2d(3, momentum=0.3), torch.nn.BatchNorm2d(3, momentum=0.3)
    gamma, beta = _rand(3, seed=5, dtype=np.float32), _rand(3, seed=6, dtype=np.float32)
    mine.weight.data[:], mine.bias.data[:] = gamma, beta
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(gamma))
        theirs.bias.copy_(torch.from_numpy(beta))
    for seed in range(2):
        x = _rand(4, 3, 5, 5, seed=seed, dtype=np.float32) * 2 + 1
        gy = _rand(4, 3, 5, 5, seed=10 + seed, dtype=np.float32)
        xt, tx = _t(x, True), torch.tensor(x, requires_grad=True)
        mine.zero_grad()
        theirs.zero_grad()
        y, ty = mine(xt), theirs(tx)
        y.backward(gy)
        ty.backward(torch.from_numpy(gy))
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(xt.grad, tx.grad.numpy(), rtol=1e-3, atol=1e-5)
        np.testing.assert_allclose(mine.weight.grad, theirs.weight.grad.numpy(), rtol=1e-4,
                                   atol=1e-5)
        np.testing.assert_allclose(mine.bias.grad, theirs.bias.grad.numpy(), rtol=1e-5)
    for name, value in theirs.state_dict().items():
        np.testing.assert_allclose(mine.state_dict()[name], value.numpy(), rtol=1e-5)
    mine.eval()
    theirs.eval()
    x = _rand(2, 3, 4, 4, seed=7, dtype=np.float32)
    np.testing.assert_allclose(mine(_t(x)).data, theirs(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)


# -- Identity, Flatten -----------------------------------------------------------------------------
def test_identity_and_flatten():
    x = _t(_rand(2, 3, 4, 5), True)
    assert nn.Identity(3, unused=True)(x) is x
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0, 1)(x).shape == (6, 4, 5)
    assert minigrad.gradcheck(lambda t: nn.Flatten(1, 2)(t), [x])
    with pytest.raises(ValueError, match="axis"):
        nn.Flatten(1, 7)(x)


# -- nn.init ---------------------------------------------------------------------------------------
def test_fans_and_gains():
    w = np.empty((8, 3, 5, 5))
    assert init._calculate_fan_in_and_fan_out(w, "t") == (75, 200)
    assert init.calculate_gain("relu") == math.sqrt(2)
    assert init.calculate_gain("leaky_relu") == math.sqrt(2 / (1 + 0.01 ** 2))
    assert init.calculate_gain("leaky_relu", 0) == math.sqrt(2)
    assert init.calculate_gain("tanh") == 5 / 3 and init.calculate_gain("conv2d") == 1
    with pytest.raises(ValueError, match="nonlinearity"):
        init.calculate_gain("softplus")
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.kaiming_uniform_(np.empty(4))
    with pytest.raises(ValueError, match="mode"):
        init.kaiming_normal_(np.empty((2, 2)), mode="fan_avg")
    with pytest.raises(TypeError, match="floating-point"):
        init.zeros_(np.empty(3, dtype=np.int32))


def test_gains_match_torch():
    torch = pytest.importorskip("torch")
    for name, param in [("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2),
                        ("tanh", None), ("selu", None), ("sigmoid", None)]:
        assert init.calculate_gain(name, param) == pytest.approx(
            torch.nn.init.calculate_gain(name, param))


@pytest.mark.parametrize("fn, mode, expected_std", [
    (init.kaiming_uniform_, "fan_in", math.sqrt(2 / 200)),
    (init.kaiming_uniform_, "fan_out", math.sqrt(2 / 400)),
    (init.kaiming_normal_, "fan_in", math.sqrt(2 / 200)),
])
def test_kaiming_scale(fn, mode, expected_std):
    w = minigrad.nn.Parameter(np.empty((400, 200), dtype=np.float32))
    assert fn(w, mode=mode, rng=0) is w and w.dtype == np.float32
    assert abs(w.data.std() / expected_std - 1) < 0.02
    if fn is init.kaiming_uniform_:
        assert np.abs(w.data).max() <= math.sqrt(3) * expected_std


def test_xavier_and_simple_fillers():
    w = np.empty((300, 100))
    init.xavier_uniform_(w, gain=2.0, rng=1)
    bound = 2.0 * math.sqrt(6 / 400)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    init.xavier_normal_(w, rng=1)
    assert abs(w.std() / math.sqrt(2 / 400) - 1) < 0.02
    init.normal_(w, 3.0, 0.5, rng=2)
    assert abs(w.mean() - 3.0) < 0.01 and abs(w.std() - 0.5) < 0.01
    init.uniform_(w, -1, 2, rng=2)
    assert w.min() >= -1 and w.max() <= 2 and abs(w.mean() - 0.5) < 0.02
    init.zeros_(w)
    assert not w.any()
    init.ones_(w)
    assert (w == 1).all()
    with pytest.raises(ValueError, match="a .* must not exceed b"):
        init.uniform_(w, 2, 1)


def test_init_reproducible_from_seed_or_global_rng():
    a, b = np.empty((5, 4)), np.empty((5, 4))
    init.kaiming_normal_(a, rng=3)
    init.kaiming_normal_(b, rng=3)
    np.testing.assert_array_equal(a, b)
    minigrad.manual_seed(5)
    init.kaiming_uniform_(a)
    minigrad.manual_seed(5)
    init.kaiming_uniform_(b)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="seed"):
        minigrad.manual_seed(-1)


def test_batch_norm_float32_matches_float64_on_offset_data_and_any_thread_count():
    """The Cython passes centre before squaring (no cancellation for a mean far from 0) and
    give the same bits on 1 and 2 threads (each channel is summed by one thread)."""
    x64 = _rand(8, 5, 6, 7, seed=3) * 0.5 + 100.0
    gy64 = _rand(8, 5, 6, 7, seed=4)
    gamma, beta = _rand(5, seed=5), _rand(5, seed=6)

    def run(dtype):
        x = _t(x64.astype(dtype), True)
        g, b = _t(gamma.astype(dtype), True), _t(beta.astype(dtype), True)
        y = F.batch_norm(x, None, None, g, b, training=True)
        y.backward(gy64.astype(dtype))
        return [a.astype(np.float64) for a in (y.data, x.grad, g.grad, b.grad)]

    exact = run(np.float64)
    np.testing.assert_allclose(exact[0], R.batch_norm(x64, gamma, beta), rtol=1e-9, atol=1e-9)
    before = minigrad.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            minigrad.set_num_threads(threads)
            results.append(run(np.float32))
    finally:
        minigrad.set_num_threads(before)
    for one, two, want in zip(*results, exact):
        np.testing.assert_array_equal(one, two)
        np.testing.assert_allclose(one, want, rtol=1e-3, atol=1e-3 * np.abs(want).max())
