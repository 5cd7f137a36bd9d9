"""Activations: gradients, forward against numpy references, PyTorch parity, kernels, errors."""
import math

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F
from minigrad._kernels import activation as kernels

SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def away_from_kinks(shape, seed=0, dtype=np.float64):
    """Random values with |x| >= 0.1, so finite differences never straddle a kink at 0."""
    rng = np.random.default_rng(seed)
    magnitude = 0.1 + rng.random(shape) * 2
    return (np.where(rng.random(shape) < 0.5, -1, 1) * magnitude).astype(dtype)


def leaf(array, dtype=np.float64):
    return mg.tensor(np.asarray(array, dtype=dtype), requires_grad=True, dtype=dtype)


def _sigmoid(v):
    return 1 / (1 + math.exp(-v))


# name -> (minigrad function of x, scalar reference of one element)
ELEMENTWISE = {
    "relu": (F.relu, lambda v: v if v > 0 else 0.0),
    "leaky_relu": (F.leaky_relu, lambda v: v if v > 0 else 0.01 * v),
    "leaky_relu_0.2": (lambda x: F.leaky_relu(x, negative_slope=0.2),
                       lambda v: v if v > 0 else 0.2 * v),
    "elu": (F.elu, lambda v: v if v > 0 else math.expm1(v)),
    "elu_0.5": (lambda x: F.elu(x, alpha=0.5), lambda v: v if v > 0 else 0.5 * math.expm1(v)),
    "selu": (F.selu, lambda v: SELU_SCALE * (v if v > 0 else SELU_ALPHA * math.expm1(v))),
    "gelu": (F.gelu, lambda v: 0.5 * v * (1 + math.erf(v / math.sqrt(2)))),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"),
                  lambda v: 0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi)
                                                     * (v + 0.044715 * v ** 3)))),
    "silu": (F.silu, lambda v: v * _sigmoid(v)),
    "sigmoid": (F.sigmoid, _sigmoid),
    "tanh": (F.tanh, math.tanh),
}


def reference(scalar_fn, x):
    return np.array([scalar_fn(float(v)) for v in x.reshape(-1)]).reshape(x.shape)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_gradcheck(name):
    fn, _ = ELEMENTWISE[name]
    assert mg.gradcheck(fn, [leaf(away_from_kinks((2, 3, 4)))])


@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_elementwise_forward_matches_reference(name, dtype):
    fn, scalar_fn = ELEMENTWISE[name]
    x = np.random.default_rng(1).standard_normal((3, 5, 7)) * 3
    y = fn(mg.tensor(x.astype(dtype)))
    assert y.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y.data, reference(scalar_fn, x.astype(dtype)), rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("threads", [1, 2])
def test_elementwise_large_input_uses_threads_and_matches_float64(name, threads):
    # 40000 elements exceeds the kernels' parallel threshold (2**15)
    fn, _ = ELEMENTWISE[name]
    x64 = np.random.default_rng(2).standard_normal((4, 10000)) * 4
    previous = mg.get_num_threads()
    mg.set_num_threads(threads)
    try:
        x32 = leaf(x64, np.float32)
        y32 = fn(x32)
        y32.backward(np.ones(y32.shape, np.float32))
        x = leaf(x64)
        y = fn(x)
        y.backward(np.ones(y.shape))
    finally:
        mg.set_num_threads(previous)
    assert y32.dtype == np.float32 and x32.grad.dtype == np.float32
    np.testing.assert_allclose(y32.data, y.data, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(x32.grad, x.grad, rtol=1e-4, atol=1e-5)


def test_relu_and_leaky_relu_keep_nan():
    x = mg.tensor(np.array([np.nan, -1.0, 1.0], np.float32))
    assert np.isnan(F.relu(x).data[0]) and np.isnan(F.leaky_relu(x).data[0])


def test_sigmoid_extremes_do_not_warn_or_break():
    x = mg.tensor(np.array([-1e4, -100.0, 0.0, 100.0, 1e4], np.float32))
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = F.sigmoid(x).data
    np.testing.assert_array_equal(y, [0, 0, 0.5, 1, 1])


# -- prelu and swish: parameter gradients --------------------------------------------------

@pytest.mark.parametrize("fn", [F.prelu, F.swish], ids=["prelu", "swish"])
@pytest.mark.parametrize("weight", [[0.3], [0.1, -0.4, 0.7], 0.25],
                         ids=["shared", "per_channel", "scalar"])
def test_prelu_swish_gradcheck_input_and_parameter(fn, weight):
    x = leaf(away_from_kinks((2, 3, 2, 2)))
    w = leaf(weight)
    assert mg.gradcheck(fn, [x, w])


def test_prelu_forward_matches_reference():
    x = away_from_kinks((2, 3, 4), seed=3)
    w = np.array([0.1, 0.2, 0.3])
    y = F.prelu(mg.tensor(x), mg.tensor(w)).data
    expected = np.empty_like(x)
    for n, c, i in np.ndindex(*x.shape):
        expected[n, c, i] = x[n, c, i] if x[n, c, i] > 0 else w[c] * x[n, c, i]
    np.testing.assert_allclose(y, expected)


def test_swish_forward_matches_reference_and_beta_one_is_silu():
    x = np.random.default_rng(4).standard_normal((2, 3, 4))
    beta = np.array([0.5, 1.0, 2.0])
    y = F.swish(mg.tensor(x), mg.tensor(beta)).data
    expected = np.empty_like(x)
    for n, c, i in np.ndindex(*x.shape):
        expected[n, c, i] = x[n, c, i] * _sigmoid(beta[c] * x[n, c, i])
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    np.testing.assert_allclose(F.swish(mg.tensor(x), 1.0).data, F.silu(mg.tensor(x)).data)


def test_prelu_and_swish_modules_learn_their_parameter():
    x = mg.tensor(away_from_kinks((2, 3, 2, 2), dtype=np.float32))
    for module, name in [(nn.PReLU(3), "weight"), (nn.Swish(3, init=1.5), "beta")]:
        params = dict(module.named_parameters())
        assert list(params) == [name] and params[name].shape == (3,)
        assert params[name].dtype == np.float32
        module(x).sum().backward()
        assert params[name].grad.shape == (3,) and np.all(params[name].grad != 0)
    np.testing.assert_array_equal(nn.PReLU().weight.data, [0.25])


# -- softmax, log_softmax --------------------------------------------------------------------

@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax], ids=["softmax", "log_softmax"])
def test_softmax_gradcheck(fn, axis):
    assert mg.gradcheck(lambda t: fn(t, axis), [leaf(np.random.default_rng(5).standard_normal(
        (3, 4, 2)))])


def test_softmax_and_log_softmax_match_reference():
    x = np.random.default_rng(6).standard_normal((3, 5))
    soft = F.softmax(mg.tensor(x), axis=1).data
    log_soft = F.log_softmax(mg.tensor(x), axis=1).data
    for n in range(3):
        total = sum(math.exp(v) for v in x[n])
        for c in range(5):
            assert soft[n, c] == pytest.approx(math.exp(x[n, c]) / total, rel=1e-12)
            assert log_soft[n, c] == pytest.approx(x[n, c] - math.log(total), rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_softmax_stable_for_huge_logits(dtype):
    x = leaf([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = F.log_softmax(x, axis=1)
        y.backward(np.ones(y.shape, dtype))
        soft = F.softmax(x, axis=1).data
    assert y.dtype == dtype
    np.testing.assert_allclose(y.data[0], [0, -2e4, -1e4], rtol=1e-6)
    np.testing.assert_allclose(y.data[1], [-math.log(3)] * 3, rtol=1e-6)
    np.testing.assert_allclose(x.grad[0], [-2, 1, 1], atol=1e-6)
    np.testing.assert_allclose(soft[0], [1, 0, 0])


# -- maxout ----------------------------------------------------------------------------------

def test_maxout_forward_matches_reference_and_gradcheck():
    x = np.random.default_rng(7).permutation(2 * 6 * 3).reshape(2, 6, 3) / 7.0  # tie-free
    y = F.maxout(mg.tensor(x), pieces=3).data
    assert y.shape == (2, 2, 3)
    for n, g, i in np.ndindex(*y.shape):
        assert y[n, g, i] == max(x[n, 3 * g + k, i] for k in range(3))
    assert mg.gradcheck(lambda t: F.maxout(t, 3), [leaf(x)])
    assert mg.gradcheck(lambda t: F.maxout(t, 2, axis=-1), [leaf(x[:, :, :2])])


def test_maxout_gradient_goes_to_first_maximum_on_ties():
    x = leaf([[1.0, 5.0, 5.0, 2.0, 3.0, 3.0]])      # groups (1, 5, 5) and (2, 3, 3)
    F.maxout(x, 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 1, 0, 0, 1, 0]])


def test_maxout_module():
    m = nn.Maxout(2)
    y = m(mg.tensor(np.arange(8, dtype=np.float32).reshape(1, 4, 2)))
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.data, [[[2, 3], [6, 7]]])


# -- modules --------------------------------------------------------------------------------

@pytest.mark.parametrize("module, fn", [
    (nn.ReLU(), F.relu), (nn.LeakyReLU(0.2), lambda t: F.leaky_relu(t, 0.2)),
    (nn.ELU(0.5), lambda t: F.elu(t, 0.5)), (nn.SELU(), F.selu), (nn.GELU(), F.gelu),
    (nn.GELU("tanh"), lambda t: F.gelu(t, "tanh")), (nn.SiLU(), F.silu),
    (nn.Sigmoid(), F.sigmoid), (nn.Tanh(), F.tanh), (nn.Softmax(1), lambda t: F.softmax(t, 1)),
    (nn.LogSoftmax(0), lambda t: F.log_softmax(t, 0)), (nn.PReLU(), lambda t: F.prelu(t, 0.25)),
    (nn.Swish(), F.silu)])
def test_modules_apply_their_function(module, fn):
    x = mg.tensor(np.random.default_rng(8).standard_normal((2, 3)).astype(np.float32))
    np.testing.assert_allclose(module(x).data, fn(x).data, rtol=1e-6)


# -- compiled kernels ------------------------------------------------------------------------

KERNELS = ["relu_forward", "relu_backward", "leaky_relu_forward", "leaky_relu_backward",
           "elu_backward", "sigmoid_backward", "tanh_backward", "silu_backward", "gelu_forward",
           "gelu_backward", "gelu_tanh_backward"]


@pytest.mark.parametrize("name", KERNELS)
def test_kernels_are_compiled_cython(name):
    assert kernels.__file__.endswith((".so", ".pyd"))
    assert type(getattr(kernels, name)).__name__ in ("cython_function_or_method",
                                                     "fused_cython_function")


@pytest.mark.parametrize("fn, name", [
    (F.leaky_relu, "leaky_relu_forward"), (F.leaky_relu, "leaky_relu_backward"),
    (F.elu, "elu_backward"), (F.selu, "elu_backward"), (F.sigmoid, "sigmoid_backward"),
    (F.tanh, "tanh_backward"), (F.silu, "silu_backward"), (F.gelu, "gelu_forward"),
    (F.gelu, "gelu_backward"), (lambda t: F.gelu(t, "tanh"), "gelu_tanh_backward"),
    (lambda t: F.swish(t, 2.0), "silu_backward")])
def test_ops_run_through_their_kernel(monkeypatch, fn, name):
    calls = []
    original = getattr(kernels, name)

    def spy(*args):
        calls.append(name)
        return original(*args)

    monkeypatch.setattr(kernels, name, spy)
    x = leaf([-1.0, 0.5, 2.0], np.float32)
    fn(x).sum().backward()
    assert calls == [name]


# -- float32 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fn", [
    lambda t: F.prelu(t, mg.tensor(np.float32([0.2, 0.3]))), lambda t: F.swish(t, 1.5),
    lambda t: F.softmax(t, 1), lambda t: F.log_softmax(t, 1), lambda t: F.maxout(t, 2)])
def test_float32_preserved_forward_and_backward(fn):
    x = leaf(away_from_kinks((3, 2)), np.float32)
    y = fn(x)
    y.backward(np.ones(y.shape, np.float32))
    assert y.dtype == np.float32 and x.grad.dtype == np.float32


# -- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("fn", [f for f, _ in ELEMENTWISE.values()]
                         + [lambda t: F.softmax(t, 0), lambda t: F.maxout(t, 1, 0),
                            lambda t: F.prelu(t, 0.1)])
def test_integer_input_is_refused(fn):
    with pytest.raises(TypeError, match=r": x must be float32 or float64, got dtype int64"):
        fn(mg.tensor(np.array([1, 2, 3])))


@pytest.mark.parametrize("call, error, word", [
    (lambda x: F.leaky_relu(x, "0.1"), TypeError, "negative_slope"),
    (lambda x: F.leaky_relu(x, float("nan")), ValueError, "negative_slope"),
    (lambda x: F.elu(x, alpha=None), TypeError, "alpha"),
    (lambda x: F.gelu(x, approximate="erf"), ValueError, "approximate"),
    (lambda x: F.prelu(x, mg.tensor(np.float32([0.1, 0.2]))), ValueError, "weight"),
    (lambda x: F.prelu(x, mg.tensor(np.float32([[0.1, 0.2, 0.3]]))), ValueError, "weight"),
    (lambda x: F.prelu(x, mg.tensor(np.float64([0.1]))), TypeError, "weight"),
    (lambda x: F.swish(x, mg.tensor(np.float32([1, 2, 3, 4]))), ValueError, "beta"),
    (lambda x: F.softmax(x, 3), ValueError, "axis"),
    (lambda x: F.log_softmax(x, 1.0), TypeError, "axis"),
    (lambda x: F.maxout(x, 2), ValueError, "pieces"),
    (lambda x: F.maxout(x, 0), ValueError, "pieces"),
    (lambda x: F.maxout(x, 1.5), TypeError, "pieces"),
    (lambda x: F.maxout(x, 3, axis=5), ValueError, "axis"),
    (lambda x: nn.PReLU(0), ValueError, "num_parameters"),
])
def test_bad_arguments_are_refused_by_name(call, error, word):
    x = mg.tensor(np.ones((2, 3, 4), np.float32))
    with pytest.raises(error, match=word):
        call(x)


# -- PyTorch parity --------------------------------------------------------------------------

def test_pytorch_parity_forward_and_backward():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    x = np.random.default_rng(9).standard_normal((4, 6, 3, 3)).astype(np.float32) * 3
    w = np.array([0.1, -0.2, 0.3, 0.4, 0.5, 0.6], np.float32)
    pairs = [
        (F.relu, tf.relu), (lambda t: F.leaky_relu(t, 0.1), lambda t: tf.leaky_relu(t, 0.1)),
        (lambda t: F.elu(t, 0.7), lambda t: tf.elu(t, 0.7)), (F.selu, tf.selu),
        (F.gelu, tf.gelu), (lambda t: F.gelu(t, "tanh"), lambda t: tf.gelu(t, approximate="tanh")),
        (F.silu, tf.silu), (F.sigmoid, torch.sigmoid), (F.tanh, torch.tanh),
        (lambda t: F.softmax(t, 1), lambda t: tf.softmax(t, 1)),
        (lambda t: F.log_softmax(t, 2), lambda t: tf.log_softmax(t, 2)),
    ]
    upstream = np.random.default_rng(10).standard_normal(x.shape).astype(np.float32)
    for ours, theirs in pairs:
        xm, xt = leaf(x, np.float32), torch.tensor(x, requires_grad=True)
        ym, yt = ours(xm), theirs(xt)
        ym.backward(upstream)
        yt.backward(torch.tensor(upstream))
        np.testing.assert_allclose(ym.data, yt.detach().numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(xm.grad, xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    # prelu with per-channel weight: both gradients
    xm, wm = leaf(x, np.float32), leaf(w, np.float32)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    F.prelu(xm, wm).backward(upstream)
    tf.prelu(xt, wt).backward(torch.tensor(upstream))
    np.testing.assert_allclose(xm.grad, xt.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(wm.grad, wt.grad.numpy(), rtol=1e-4, atol=1e-4)
