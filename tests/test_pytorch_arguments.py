"""What PyTorch users write every day (issue 14), without torch: unbatched (C, H, W) images,
class weights, ignore_index, class-probability targets, K-dimensional and unbatched losses,
BatchNorm1d, ``dim=``/``keepdim=`` beside ``axis``/``keepdims``, one-int tuples, empty batches.
Each new argument is gradchecked (float64) and checked against a numpy loop, and its bad
values are refused naming the argument. (tests/test_torch_parity_opinfo.py compares the same
cases with PyTorch when it is installed.)"""
import math

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn as nn
import minigrad.nn.functional as F

REDUCTIONS = ["mean", "sum", "none"]


def leaf(array):
    return mg.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


# -- unbatched (C, H, W) images ----------------------------------------------------------------

UNBATCHED = [
    ("conv2d", lambda x: F.conv2d(x, mg.tensor(rand(4, 3, 3, 2, seed=1)), stride=(2, 1),
                                  padding=(1,))),
    ("max_pool2d", lambda x: F.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True)),
    ("avg_pool2d", lambda x: F.avg_pool2d(x, (2, 3), stride=(), padding=(1,))),
    ("adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, (3, None))),
    ("adaptive_max_pool2d", lambda x: F.adaptive_max_pool2d(x, 4)),
    ("lp_pool2d", lambda x: F.lp_pool2d(x, 2, 2)),
    ("global_avg_pool2d", lambda x: F.global_avg_pool2d(x)),
    ("spatial_pyramid_pool2d", lambda x: F.spatial_pyramid_pool2d(x, (1, 2))),
    ("mixed_pool2d", lambda x: F.mixed_pool2d(x, 0.3, 2)),
]


@pytest.mark.parametrize("name, op", UNBATCHED, ids=[u[0] for u in UNBATCHED])
def test_an_unbatched_image_is_a_batch_of_one(name, op):
    image = rand(3, 7, 6, seed=2)
    y = op(mg.tensor(image))
    expected = op(mg.tensor(image[None]))
    assert y.shape == expected.shape[1:]
    np.testing.assert_array_equal(y.data, expected.data[0])
    assert mg.gradcheck(op, [leaf(image)])


def test_unbatched_max_pool_indices_and_conv_weight_gradient():
    image = rand(2, 5, 5, seed=3)
    y, idx = F.max_pool2d(mg.tensor(image), 2, return_indices=True)
    y4, idx4 = F.max_pool2d(mg.tensor(image[None]), 2, return_indices=True)
    assert idx.shape == (2, 2, 2) and idx.dtype == np.int64
    np.testing.assert_array_equal(idx.data, idx4.data[0])
    assert mg.gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=1),
                        [leaf(image), leaf(rand(3, 2, 3, 3, seed=4)), leaf(rand(3, seed=5))])


def test_modules_take_unbatched_images():
    image = mg.tensor(rand(3, 8, 8, seed=6).astype(np.float32))
    for module in (nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(2), nn.AvgPool2d(2),
                   nn.AdaptiveAvgPool2d(2), nn.AdaptiveMaxPool2d(2), nn.LPPool2d(2, 2),
                   nn.FractionalMaxPool2d(2, output_size=5).eval()):
        batched = module(mg.tensor(image.data[None]))
        np.testing.assert_allclose(module(image).data, batched.data[0], rtol=1e-6)


def test_one_int_tuples_and_empty_stride_mean_what_pytorch_means():
    x = mg.tensor(rand(1, 2, 6, 6, seed=7))
    np.testing.assert_array_equal(F.avg_pool2d(x, (3,), (), (1,)).data,
                                  F.avg_pool2d(x, 3, None, 1).data)
    w = mg.tensor(rand(2, 2, 3, 3, seed=8))
    np.testing.assert_array_equal(F.conv2d(x, w, stride=(2,), dilation=(1,)).data,
                                  F.conv2d(x, w, stride=2).data)
    with pytest.raises(TypeError, match="stride"):
        F.conv2d(x, w, stride=(1, 1, 1))


# -- losses: weight, ignore_index, probabilities, K-dim, unbatched ---------------------------------

def _log_softmax(row):
    top = max(row)
    log_total = top + math.log(sum(math.exp(v - top) for v in row))
    return [v - log_total for v in row]


def class_loss_reference(scores, target, weight, ignore_index, eps, reduction, log_probs):
    """Loops over every element (N, d1, ...): PyTorch's weighted, ignoring, smoothed loss."""
    classes = scores.shape[1]
    v = np.ones(classes) if weight is None else weight
    losses, total = np.zeros(target.shape), 0.0
    for index in np.ndindex(*target.shape):
        t = target[index]
        if t == ignore_index:
            continue
        row = [scores[(index[0], c) + index[1:]] for c in range(classes)]
        logp = row if log_probs else _log_softmax(row)
        losses[index] = (1 - eps) * -v[t] * logp[t] + eps / classes * -sum(
            v[c] * logp[c] for c in range(classes))
        total += v[t]
    if reduction == "none":
        return losses
    return losses.sum() / (total if reduction == "mean" else 1)


def class_problem(shape, seed):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, shape[1], size=shape[:1] + shape[2:])
    target.flat[::3] = 1            # class 1 is ignored in some cases: make it frequent
    return rng.standard_normal(shape), target, rng.uniform(0.2, 2.0, shape[1])


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2, 2)])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [-100, 1])
@pytest.mark.parametrize("eps", [0.0, 0.2])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_weight_and_ignore_index(shape, weighted, ignore_index, eps, reduction):
    logits, target, weight = class_problem(shape, seed=10)
    weight = weight if weighted else None

    def loss(t):
        return F.cross_entropy(t, target, eps, reduction, weight=weight,
                               ignore_index=ignore_index)
    expected = class_loss_reference(logits, target, weight, ignore_index, eps, reduction, False)
    np.testing.assert_allclose(loss(mg.tensor(logits)).data, expected, rtol=1e-12, atol=1e-14)
    assert mg.gradcheck(loss, [leaf(logits)])


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2, 2)])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [-100, 1])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss_weight_and_ignore_index(shape, weighted, ignore_index, reduction):
    log_probs, target, weight = class_problem(shape, seed=11)
    weight = weight if weighted else None

    def loss(t):
        return F.nll_loss(t, target, reduction, weight=weight, ignore_index=ignore_index)
    expected = class_loss_reference(log_probs, target, weight, ignore_index, 0.0, reduction,
                                    True)
    np.testing.assert_allclose(loss(mg.tensor(log_probs)).data, expected, rtol=1e-12,
                               atol=1e-14)
    assert mg.gradcheck(loss, [leaf(log_probs)])


def test_a_default_ignore_index_target_is_ignored_and_all_ignored_is_nan():
    logits, target, _ = class_problem((4, 3), seed=12)
    target[0] = -100
    full = F.cross_entropy(mg.tensor(logits[1:]), target[1:]).data
    np.testing.assert_allclose(F.cross_entropy(mg.tensor(logits), target).data, full)
    x = leaf(logits)
    loss = F.nll_loss(x, np.full(4, 2), ignore_index=2)
    loss.backward()
    assert np.isnan(loss.data) and not x.grad.any()       # PyTorch: 0/0, no gradient


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2, 2)])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("eps", [0.0, 0.2])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_with_class_probabilities(shape, weighted, eps, reduction):
    rng = np.random.default_rng(13)
    logits = rng.standard_normal(shape)
    probs = rng.uniform(size=shape)
    probs /= probs.sum(axis=1, keepdims=True)
    weight = rng.uniform(0.2, 2.0, shape[1]) if weighted else None
    classes = shape[1]
    losses = np.zeros(shape[:1] + shape[2:])
    for index in np.ndindex(*losses.shape):
        row = [logits[(index[0], c) + index[1:]] for c in range(classes)]
        q = [(1 - eps) * probs[(index[0], c) + index[1:]] + eps / classes
             for c in range(classes)]
        v = np.ones(classes) if weight is None else weight
        losses[index] = -sum(v[c] * q[c] * lp for c, lp in enumerate(_log_softmax(row)))
    expected = {"none": losses, "sum": losses.sum(), "mean": losses.mean()}[reduction]

    def loss(t, q):
        return F.cross_entropy(t, q, eps, reduction, weight=weight)
    np.testing.assert_allclose(loss(mg.tensor(logits), mg.tensor(probs)).data, expected,
                               rtol=1e-12)
    assert mg.gradcheck(loss, [leaf(logits), leaf(probs)])   # the target gets a gradient too


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_unbatched_class_losses(reduction):
    logits, target = rand(5, seed=14), np.int64(3)
    weight = np.linspace(0.5, 1.5, 5)
    for fn, t in ((F.cross_entropy, target), (F.nll_loss, target),
                  (F.cross_entropy, np.full(5, 0.2))):
        y = fn(mg.tensor(logits), t, reduction=reduction, weight=weight)
        batched = fn(mg.tensor(logits[None]), np.asarray(t)[None], reduction=reduction,
                     weight=weight)
        assert y.shape == ()
        np.testing.assert_allclose(y.data, batched.data.reshape(()), rtol=1e-12)
        assert mg.gradcheck(lambda x: fn(x, t, reduction=reduction, weight=weight),
                            [leaf(logits)])


def test_loss_modules_hold_weight_as_a_buffer_and_ignore_index():
    weight = np.array([1.0, 2.0, 0.5], np.float32)
    module = nn.CrossEntropyLoss(weight=weight, ignore_index=0, label_smoothing=0.1)
    assert list(module.state_dict()) == ["weight"]
    logits, target = rand(4, 3, seed=15).astype(np.float32), np.array([0, 1, 2, 1])
    np.testing.assert_allclose(
        module(mg.tensor(logits), target).data,
        F.cross_entropy(mg.tensor(logits), target, 0.1, weight=weight, ignore_index=0).data)
    assert "ignore_index=0" in repr(module)
    assert list(nn.NLLLoss().state_dict()) == []


@pytest.mark.parametrize("call, error, words", [
    (lambda x, t: F.cross_entropy(x, t, weight=np.ones(4)), ValueError,
     ["weight", r"\(3,\)", r"\(4,\)"]),
    (lambda x, t: F.nll_loss(x, t, weight=np.ones((3, 1))), ValueError, ["weight", r"\(3, 1\)"]),
    (lambda x, t: F.nll_loss(x, t, weight=np.ones(3, np.int64)), TypeError, ["weight", "int64"]),
    (lambda x, t: F.cross_entropy(x, t, weight=leaf(np.ones(3))), TypeError,
     ["weight", "gradient"]),
    (lambda x, t: F.cross_entropy(x, np.array([0, 3, 1, 1])), ValueError,
     ["target", "3", r"\[0, 3\)", "ignore_index"]),
    (lambda x, t: F.nll_loss(x, np.array([0, -1, 1, 1]), ignore_index=-2), ValueError,
     ["target", "-1", r"ignore_index \(-2\)"]),
    (lambda x, t: F.nll_loss(x, t, ignore_index=1.5), TypeError, ["ignore_index"]),
    (lambda x, t: F.cross_entropy(x, np.zeros((4, 2))), ValueError,
     ["target", "probabilities", r"\(4, 3\)", r"\(4, 2\)"]),
    (lambda x, t: F.cross_entropy(x, np.zeros((4, 3), np.float32)), TypeError,
     ["target", "float32"]),
    (lambda x, t: F.cross_entropy(x[0], t), ValueError, ["logits", r"\(3,\)", r"\(4,\)"]),
    (lambda x, t: F.nll_loss(x[0], np.zeros(3, np.int64)), ValueError, ["input", "0-d"]),
])
def test_bad_loss_arguments_are_refused_by_name(call, error, words):
    with pytest.raises(error) as info:
        call(mg.tensor(rand(4, 3, seed=16)), np.array([0, 1, 2, 1]))
    for word in words:
        assert info.match(word)


# -- BatchNorm1d, batch_norm on (N, C) and (N, C, L) ------------------------------------------------

@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5)])
def test_batch_norm_1d_gradcheck_and_reference(shape):
    x, gamma, beta = rand(*shape, seed=20), rand(3, seed=21), rand(3, seed=22)
    axes = (0,) if len(shape) == 2 else (0, 2)
    channel = (1, 3) + (1,) * (len(shape) - 2)
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    expected = (x - mean.reshape(channel)) / np.sqrt(var.reshape(channel) + 1e-5) \
        * gamma.reshape(channel) + beta.reshape(channel)
    running_mean, running_var = np.zeros(3), np.ones(3)
    y = F.batch_norm(mg.tensor(x), running_mean, running_var, mg.tensor(gamma),
                     mg.tensor(beta), training=True, momentum=0.5)
    np.testing.assert_allclose(y.data, expected, rtol=1e-10, atol=1e-12)
    count = x.size // 3
    np.testing.assert_allclose(running_var, 0.5 + 0.5 * var * count / (count - 1))
    assert mg.gradcheck(lambda a, g, b: F.batch_norm(a, None, None, g, b, training=True),
                        [leaf(x), leaf(gamma), leaf(beta)])


def test_batch_norm_1d_module_matches_the_functional_and_refuses_images():
    bn = nn.BatchNorm1d(3, momentum=0.3).double()
    x = rand(8, 3, 4, seed=23)
    y = bn(mg.tensor(x))
    np.testing.assert_allclose(y.data, F.batch_norm(mg.tensor(x), None, None,
                                                    training=True).data, atol=1e-12)
    assert int(bn.num_batches_tracked) == 1
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var",
                                     "num_batches_tracked"]
    bn.eval()
    assert bn(mg.tensor(x[:, :, 0])).shape == (8, 3)
    with pytest.raises(ValueError, match=r"BatchNorm1d: expected a 2-D \(N, C\) or 3-D"):
        bn(mg.tensor(rand(2, 3, 4, 4)))
    with pytest.raises(ValueError, match="num_features=3"):
        bn(mg.tensor(rand(2, 4)))
    with pytest.raises(ValueError, match="BatchNorm1d: momentum"):
        nn.BatchNorm1d(3, momentum=2.0)


def test_batch_norm_momentum_is_any_real_number_as_in_pytorch():
    running_mean, running_var = np.zeros(2), np.ones(2)
    x = rand(4, 2, seed=24)
    F.batch_norm(mg.tensor(x), running_mean, running_var, training=True, momentum=-1.0)
    np.testing.assert_allclose(running_mean, 2 * 0 - x.mean(axis=0))
    with pytest.raises(ValueError, match="momentum"):
        F.batch_norm(mg.tensor(x), running_mean, running_var, training=True, momentum=np.inf)


# -- dim=, keepdim=, start_dim= ---------------------------------------------------------------------

def test_pytorch_names_of_axis_arguments():
    x = mg.tensor(rand(2, 3, 4, seed=30))
    assert x.sum(dim=1, keepdim=True).shape == (2, 1, 4)
    np.testing.assert_array_equal(x.mean(dim=(0, 2)).data, x.mean(axis=(0, 2)).data)
    np.testing.assert_array_equal(x.max(dim=-1).data, x.max(axis=-1).data)
    np.testing.assert_array_equal(F.softmax(x, dim=1).data, F.softmax(x, 1).data)
    np.testing.assert_array_equal(F.log_softmax(x, dim=0).data, F.log_softmax(x, axis=0).data)
    assert mg.cat([x, x], dim=2).shape == (2, 3, 8)
    assert mg.stack([x, x], dim=1).shape == (2, 2, 3, 4)
    assert [p.shape for p in mg.split(x, 2, dim=2)] == [(2, 3, 2), (2, 3, 2)]
    assert x.flatten(start_dim=1).shape == (2, 12)
    assert nn.Flatten(start_dim=0, end_dim=1)(x).shape == (6, 4)
    np.testing.assert_array_equal(nn.Softmax(dim=2)(x).data, F.softmax(x, 2).data)
    assert F.softmax(x, 1, dtype=np.float32).dtype == np.float32


@pytest.mark.parametrize("call, word", [
    (lambda x: x.sum(axis=0, dim=0), "axis or dim"),
    (lambda x: x.mean(keepdims=True, keepdim=True), "keepdims or keepdim"),
    (lambda x: mg.cat([x, x], axis=0, dim=0), "axis or dim"),
    (lambda x: F.softmax(x), "axis"),
    (lambda x: nn.LogSoftmax(), "axis"),
    (lambda x: x.flatten(0, start_dim=0), "start_axis or start_dim"),
])
def test_both_names_or_no_axis_is_a_type_error(call, word):
    with pytest.raises(TypeError, match=word):
        call(mg.tensor(rand(2, 3)))


def test_softmax_of_0d_and_of_empty_input():
    for fn, value in ((F.softmax, 1.0), (F.log_softmax, 0.0)):
        x = leaf(2.5)
        y = fn(x, dim=0)
        y.backward()
        assert y.shape == () and y.item() == value and x.grad == 0
        empty = leaf(np.zeros((5, 0, 0)))
        y = fn(empty, -1)
        y.sum().backward()
        assert y.shape == (5, 0, 0) and empty.grad.shape == (5, 0, 0)
    with pytest.raises(ValueError, match="axis 1"):
        F.softmax(leaf(1.0), 1)


# -- an empty batch flows through every layer and back ----------------------------------------------

def _layers():
    return [nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 3, stride=2), nn.Conv2d(3, 4, 1),
            nn.Conv2d(3, 6, 3, groups=3), nn.BatchNorm2d(3), nn.MaxPool2d(2), nn.AvgPool2d(2),
            nn.AdaptiveAvgPool2d(3), nn.AdaptiveMaxPool2d(3), nn.GlobalAvgPool2d(),
            nn.GlobalMaxPool2d(), nn.LPPool2d(2, 2), nn.ReLU(), nn.LeakyReLU(), nn.PReLU(3),
            nn.ELU(), nn.SELU(), nn.GELU(), nn.SiLU(), nn.Swish(3), nn.Sigmoid(), nn.Tanh(),
            nn.Softmax(1), nn.LogSoftmax(1), nn.Maxout(3), nn.Dropout(), nn.Flatten(),
            nn.MixedPool2d(2), nn.GatedPool2d(2), nn.SpatialPyramidPool2d(),
            nn.FractionalMaxPool2d(2, output_size=4), nn.StochasticPool2d(2),
            nn.Inception(3, 2, 2, 2, 2, 2, 2, norm="batch")]


@pytest.mark.parametrize("training", [True, False])
def test_an_empty_batch_flows_through_every_layer_and_back(training):
    for layer in _layers():
        layer.double().train(training)
        x = leaf(np.zeros((0, 3, 8, 8)))
        y = layer(x)
        assert y.shape[0] == 0, type(layer).__name__
        y.sum().backward()
        assert x.grad.shape == x.shape
        for p in layer.parameters():
            assert p.grad is None or not p.grad.any()
    for layer, shape in ((nn.Linear(5, 2), (0, 5)), (nn.BatchNorm1d(5), (0, 5)),
                         (nn.BatchNorm1d(5), (0, 5, 3))):
        layer.double().train(training)
        x = leaf(np.zeros(shape))
        layer(x).sum().backward()
        assert x.grad.shape == shape


def test_an_empty_batch_leaves_running_statistics_alone_and_losses_are_nan():
    bn = nn.BatchNorm2d(3).double()
    bn(mg.tensor(np.zeros((0, 3, 4, 4))))
    np.testing.assert_array_equal(bn.running_mean, 0)
    np.testing.assert_array_equal(bn.running_var, 1)
    for loss in (lambda t: F.cross_entropy(t, np.zeros(0, np.int64)),
                 lambda t: F.nll_loss(t, np.zeros(0, np.int64), weight=np.ones(5)),
                 lambda t: F.cross_entropy(t, np.zeros((0, 5)))):
        x = leaf(np.zeros((0, 5)))
        y = loss(x)
        y.backward()
        assert np.isnan(y.data) and x.grad.shape == (0, 5)
