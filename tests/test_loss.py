"""Losses: gradients, forward against numpy reference loops, PyTorch parity, errors."""
import math

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F

REDUCTIONS = ["mean", "sum", "none"]


def leaf(array, dtype=np.float64):
    return mg.tensor(np.asarray(array, dtype=dtype), requires_grad=True, dtype=dtype)


def class_problem(shape=(4, 5), seed=0):
    """Logits of ``shape`` (N, C, d1...) and integer targets (N, d1...)."""
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal(shape)
    target = rng.integers(0, shape[1], size=shape[:1] + shape[2:])
    return logits, target


def reduce_reference(losses, reduction):
    if reduction == "none":
        return losses
    return losses.sum() / (losses.size if reduction == "mean" else 1)


def cross_entropy_reference(logits, target, eps, reduction):
    """Per element: (1 − ε)·(−log p[target]) + ε/C · Σ_c −log p[c], by explicit loops."""
    n_classes = logits.shape[1]
    losses = np.empty(target.shape)
    for index in np.ndindex(*target.shape):
        row = [logits[(index[0], c) + index[1:]] for c in range(n_classes)]
        log_total = math.log(sum(math.exp(v) for v in row))
        log_p = [v - log_total for v in row]
        losses[index] = (1 - eps) * -log_p[target[index]] + eps / n_classes * -sum(log_p)
    return reduce_reference(losses, reduction)


# -- cross_entropy ---------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 2, 2)])
@pytest.mark.parametrize("eps", [0.0, 0.3])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_forward_and_gradcheck(shape, eps, reduction):
    logits, target = class_problem(shape)
    loss = F.cross_entropy(mg.tensor(logits), target, label_smoothing=eps, reduction=reduction)
    np.testing.assert_allclose(loss.data, cross_entropy_reference(logits, target, eps, reduction),
                               rtol=1e-12)
    assert mg.gradcheck(
        lambda t: F.cross_entropy(t, target, label_smoothing=eps, reduction=reduction),
        [leaf(logits)])


def test_cross_entropy_is_stable_for_huge_logits():
    logits = leaf([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = F.cross_entropy(logits, np.array([0, 2]), reduction="none")
        loss.sum().backward()
    np.testing.assert_allclose(loss.data, [0, math.log(2)], atol=1e-6)
    np.testing.assert_allclose(logits.grad, [[0, 0, 0], [0, 0.5, -0.5]], atol=1e-6)


# -- nll_loss, mse_loss ----------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 2)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_forward_and_gradcheck(shape, reduction):
    log_probs, target = class_problem(shape, seed=1)
    losses = np.empty(target.shape)
    for index in np.ndindex(*target.shape):
        losses[index] = -log_probs[(index[0], target[index]) + index[1:]]
    loss = F.nll_loss(mg.tensor(log_probs), target, reduction=reduction)
    np.testing.assert_allclose(loss.data, reduce_reference(losses, reduction))
    assert mg.gradcheck(lambda t: F.nll_loss(t, target, reduction=reduction), [leaf(log_probs)])


def test_cross_entropy_equals_nll_of_log_softmax():
    logits, target = class_problem((3, 4, 2), seed=2)
    x = mg.tensor(logits)
    np.testing.assert_allclose(F.cross_entropy(x, target).data,
                               F.nll_loss(F.log_softmax(x, axis=1), target).data, rtol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_forward_and_gradcheck_both_inputs(reduction):
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 3, 2))
    losses = np.empty(a.shape)
    for index in np.ndindex(*a.shape):
        losses[index] = (a[index] - b[index]) ** 2
    loss = F.mse_loss(mg.tensor(a), mg.tensor(b), reduction=reduction)
    np.testing.assert_allclose(loss.data, reduce_reference(losses, reduction))
    assert mg.gradcheck(lambda x, y: F.mse_loss(x, y, reduction=reduction), [leaf(a), leaf(b)])


def test_mse_loss_casts_a_constant_target_to_the_input_dtype():
    x = leaf([1.0, 2.0], np.float32)
    loss = F.mse_loss(x, np.array([0.0, 0.0]))   # float64 numpy target
    loss.backward()
    assert loss.dtype == np.float32 and x.grad.dtype == np.float32
    np.testing.assert_allclose(loss.data, 2.5)


# -- float32, modules ------------------------------------------------------------------------

@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_float32_preserved(reduction):
    logits, target = class_problem((3, 4))
    for fn in (lambda t: F.cross_entropy(t, target, 0.1, reduction),
               lambda t: F.nll_loss(t, target, reduction),
               lambda t: F.mse_loss(t, np.zeros((3, 4), np.float32), reduction)):
        x = leaf(logits, np.float32)
        loss = fn(x)
        loss.backward(np.ones(loss.shape, np.float32))
        assert loss.dtype == np.float32 and x.grad.dtype == np.float32


def test_loss_modules_apply_their_function():
    logits, target = class_problem((3, 4), seed=4)
    x = mg.tensor(logits.astype(np.float32))
    np.testing.assert_allclose(nn.CrossEntropyLoss(label_smoothing=0.1, reduction="sum")(
        x, target).data, F.cross_entropy(x, target, 0.1, "sum").data)
    np.testing.assert_allclose(nn.NLLLoss("none")(x, target).data,
                               F.nll_loss(x, target, "none").data)
    np.testing.assert_allclose(nn.MSELoss()(x, x * 2).data, F.mse_loss(x, x * 2).data)


# -- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("fn", [F.cross_entropy, F.nll_loss], ids=["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("target, error, words", [
    (np.array([0, 1, 5]), ValueError, ["target", "5"]),
    (np.array([0, -1, 2]), ValueError, ["target", "-1"]),
    (np.array([0.0, 1.0, 2.0]), (TypeError, ValueError), ["target", "float64"]),
    (np.array([True, False, True]), TypeError, ["target"]),
    (np.array([0, 1]), ValueError, ["target", r"\(2,\)", r"\(3, 5\)"]),
    (np.array([[0, 1, 2]]), ValueError, ["target", r"\(1, 3\)"]),
])
def test_bad_targets_are_refused_by_name(fn, target, error, words):
    scores = mg.tensor(np.zeros((3, 5), np.float32))
    with pytest.raises(error) as info:
        fn(scores, target)
    for word in words:
        assert info.match(word)


@pytest.mark.parametrize("call, error, word", [
    (lambda x, t: F.cross_entropy(x, t, reduction="avg"), ValueError, "reduction"),
    (lambda x, t: F.nll_loss(x, t, reduction=None), ValueError, "reduction"),
    (lambda x, t: F.cross_entropy(x, t, label_smoothing=1.5), ValueError, "label_smoothing"),
    (lambda x, t: F.cross_entropy(x, t, label_smoothing="0.1"), ValueError, "label_smoothing"),
    (lambda x, t: F.cross_entropy(x[0, 0], t[0]), ValueError, "logits"),
    (lambda x, t: F.cross_entropy(mg.tensor(np.zeros((3, 5), np.int64)), t), TypeError,
     "logits"),
    (lambda x, t: F.mse_loss(x, np.zeros((3, 4))), ValueError, r"\(3, 5\).*\(3, 4\)"),
    (lambda x, t: F.mse_loss(x, np.zeros((3, 5), np.int64)), TypeError, "target"),
    (lambda x, t: F.mse_loss(x, x, reduction="mean "), ValueError, "reduction"),
])
def test_bad_arguments_are_refused_by_name(call, error, word):
    with pytest.raises(error, match=word):
        call(mg.tensor(np.zeros((3, 5), np.float32)), np.array([0, 1, 2]))


# -- PyTorch parity --------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(6, 10), (2, 4, 3, 3)])
@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_pytorch_parity(shape, eps, reduction):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    logits, target = class_problem(shape, seed=5)
    logits = (logits * 5).astype(np.float32)
    rng = np.random.default_rng(6)
    cases = [
        (lambda t: F.cross_entropy(t, target, eps, reduction),
         lambda t: tf.cross_entropy(t, torch.tensor(target), label_smoothing=eps,
                                    reduction=reduction)),
        (lambda t: F.nll_loss(t, target, reduction),
         lambda t: tf.nll_loss(t, torch.tensor(target), reduction=reduction)),
    ]
    other = rng.standard_normal(shape).astype(np.float32)
    cases.append((lambda t: F.mse_loss(t, other, reduction),
                  lambda t: tf.mse_loss(t, torch.tensor(other), reduction=reduction)))
    for ours, theirs in cases:
        xm, xt = leaf(logits, np.float32), torch.tensor(logits, requires_grad=True)
        ym, yt = ours(xm), theirs(xt)
        upstream = rng.standard_normal(ym.shape).astype(np.float32)
        ym.backward(upstream)
        yt.backward(torch.tensor(upstream))
        np.testing.assert_allclose(ym.data, yt.detach().numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(xm.grad, xt.grad.numpy(), rtol=1e-4, atol=1e-6)
