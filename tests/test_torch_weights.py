"""Weights move between PyTorch and minigrad both ways, as the README shows:

    model.load_state_dict(torch_model.state_dict())
    torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})

for every module with parameters or buffers, and for both example networks against their
PyTorch twins (benchmarks/torch_twin.py): the same keys and shapes, and the same outputs in
eval mode after each transfer. The learned pooling modules have no PyTorch counterpart; their
state goes through torch tensors and back. Skips without torch.
"""
import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: these tests move "
                            "weights to and from it")

import minigrad  # noqa: E402
from minigrad import nn  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
sys.path.insert(0, os.path.join(ROOT, "examples"))
import fcn_mnist  # noqa: E402
import inception_cifar  # noqa: E402
from torch_twin import to_torch  # noqa: E402


def _randomize_minigrad(model, seed):
    """Every parameter and float buffer drawn at random (variances positive), so that a
    transfer that skipped or swapped an entry shows in the outputs."""
    rng = np.random.default_rng(seed)
    state = model.state_dict()
    for key, value in state.items():
        if value.dtype.kind == "f":
            drawn = rng.uniform(0.5, 1.5, value.shape) if key.endswith("running_var") \
                else rng.standard_normal(value.shape)
            state[key] = drawn.astype(value.dtype)
        else:
            state[key] = np.full(value.shape, 7, value.dtype)     # num_batches_tracked
    model.load_state_dict(state)


def _randomize_torch(model, seed):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if value.is_floating_point():
                drawn = torch.rand(value.shape, generator=generator) + 0.5 \
                    if key.endswith("running_var") else torch.randn(value.shape,
                                                                    generator=generator)
                value.copy_(drawn)
            else:
                value.fill_(7)


def _outputs_agree(model, twin, input_shape, seed, rtol=1e-4, atol=1e-5):
    x = np.random.default_rng(seed).standard_normal(input_shape).astype(np.float32)
    model.eval()
    twin.eval()
    with minigrad.no_grad():
        mine = model(minigrad.tensor(x)).data
    with torch.no_grad():
        theirs = twin(torch.from_numpy(x)).numpy()
    # float32 sums in other orders: an output that cancels to a small value keeps an error
    # of the size of the others', so the tolerance is scaled to the largest output too
    np.testing.assert_allclose(mine, theirs, rtol=rtol,
                               atol=max(atol, rtol * float(np.abs(theirs).max())))


def _both_ways(make_model, make_twin, input_shape):
    """torch → minigrad, then minigrad → torch, each with fresh random weights."""
    model, twin = make_model(), make_twin()
    assert list(model.state_dict()) == list(twin.state_dict())
    _randomize_torch(twin, 1)
    model.load_state_dict(twin.state_dict())
    _outputs_agree(model, twin, input_shape, 2)
    for key, value in twin.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[key], value.numpy())

    model, twin = make_model(), make_twin()
    _randomize_minigrad(model, 3)
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    _outputs_agree(model, twin, input_shape, 4)


MODULES = {
    "Linear": (lambda: nn.Linear(5, 3), lambda: torch.nn.Linear(5, 3), (4, 5)),
    "Linear no bias": (lambda: nn.Linear(5, 3, bias=False),
                       lambda: torch.nn.Linear(5, 3, bias=False), (4, 5)),
    "Conv2d": (lambda: nn.Conv2d(3, 4, 3, padding=1, groups=1),
               lambda: torch.nn.Conv2d(3, 4, 3, padding=1), (2, 3, 6, 6)),
    "Conv2d grouped": (lambda: nn.Conv2d(4, 6, 3, stride=2, groups=2, bias=False),
                       lambda: torch.nn.Conv2d(4, 6, 3, stride=2, groups=2, bias=False),
                       (2, 4, 7, 7)),
    "BatchNorm1d (N, C)": (lambda: nn.BatchNorm1d(4), lambda: torch.nn.BatchNorm1d(4), (6, 4)),
    "BatchNorm1d (N, C, L)": (lambda: nn.BatchNorm1d(4), lambda: torch.nn.BatchNorm1d(4),
                              (6, 4, 5)),
    "BatchNorm2d": (lambda: nn.BatchNorm2d(3), lambda: torch.nn.BatchNorm2d(3), (2, 3, 4, 4)),
    "BatchNorm2d no affine": (lambda: nn.BatchNorm2d(3, affine=False),
                              lambda: torch.nn.BatchNorm2d(3, affine=False), (2, 3, 4, 4)),
    "PReLU": (lambda: nn.PReLU(), lambda: torch.nn.PReLU(), (2, 3, 4)),
    "PReLU per channel": (lambda: nn.PReLU(3), lambda: torch.nn.PReLU(3), (2, 3, 4)),
}


@pytest.mark.parametrize("name", MODULES)
def test_a_module_loads_pytorch_weights_and_pytorch_loads_its(name):
    make_model, make_twin, input_shape = MODULES[name]
    _both_ways(make_model, make_twin, input_shape)


@pytest.mark.parametrize("norm", [None, "batch"])
def test_inception_and_its_twin(norm):
    def make_model():
        return nn.Inception(3, 2, 2, 3, 2, 2, 2, norm=norm)
    _both_ways(make_model, lambda: to_torch(make_model(), torch), (2, 3, 6, 6))


@pytest.mark.parametrize("example, input_shape", [(fcn_mnist, (3, 1, 28, 28)),
                                                  (inception_cifar, (2, 3, 32, 32))])
def test_example_networks_and_their_pytorch_twins(example, input_shape):
    minigrad.manual_seed(0)
    _both_ways(example.build_model, lambda: to_torch(example.build_model(), torch),
               input_shape)


def test_the_twin_of_a_trained_model_computes_what_it_computes():
    """After training steps (running statistics moved, num_batches_tracked counted), the twin
    built from the model gives its eval outputs, and loads back into a fresh model."""
    minigrad.manual_seed(1)
    model = fcn_mnist.build_model(width=4)
    rng = np.random.default_rng(5)
    for _ in range(2):
        model(minigrad.tensor(rng.standard_normal((8, 1, 28, 28)).astype(np.float32)))
    twin = to_torch(model, torch)
    _outputs_agree(model, twin, (3, 1, 28, 28), 6)
    fresh = fcn_mnist.build_model(width=4)
    fresh.load_state_dict(twin.state_dict())
    assert int(fresh.state_dict()["1.num_batches_tracked"]) == 2
    _outputs_agree(fresh, twin, (3, 1, 28, 28), 7)


@pytest.mark.parametrize("make", [lambda: nn.MixedPool2d(2, num_channels=3),
                                  lambda: nn.GatedPool2d(2),
                                  lambda: nn.CrossEntropyLoss(weight=np.ones(3, np.float32))])
def test_modules_without_a_pytorch_twin_round_trip_through_torch_tensors(make):
    model = make()
    _randomize_minigrad(model, 8)
    as_torch = {k: torch.from_numpy(v) for k, v in model.state_dict().items()}
    fresh = make()
    fresh.load_state_dict(as_torch)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[key], value)


def test_pytorch_weights_of_the_wrong_shape_are_refused_naming_the_key():
    with pytest.raises(ValueError, match="'weight'.*shape"):
        nn.Linear(5, 3).load_state_dict(torch.nn.Linear(4, 3).state_dict())
