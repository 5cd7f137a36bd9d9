"""nn.Inception: shape, gradients of the whole block, a numpy reference, PyTorch."""
import numpy as np
import pytest

import minigrad
from minigrad import nn

from helpers import reference as R

TINY = dict(in_channels=2, ch1x1=1, ch3x3red=1, ch3x3=2, ch5x5red=1, ch5x5=1, pool_proj=1)


def _block(norm=None, seed=0, **sizes):
    minigrad.manual_seed(seed)
    block = nn.Inception(**(sizes or TINY), norm=norm)
    rng = np.random.default_rng(seed)
    for name, p in block.named_parameters():    # non-trivial BN affine parameters too
        if name.endswith("bn.weight"):
            p.data[:] = rng.uniform(0.5, 1.5, p.shape)
        elif name.endswith("bn.bias"):
            p.data[:] = rng.uniform(-0.5, 0.5, p.shape)
    return block


def _x(shape, seed=1, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("hw", [(5, 5), (4, 7), (1, 1)])
def test_output_channels_and_unchanged_spatial_size(hw):
    block = nn.Inception(3, 4, 2, 5, 1, 3, 2)
    assert block.out_channels == 14
    y = block(minigrad.tensor(_x((2, 3) + hw, dtype=np.float32)))
    assert y.shape == (2, 14) + hw and y.dtype == np.float32


@pytest.mark.parametrize("norm", [None, "batch"])
def test_gradcheck_whole_block(norm):
    block = _block(norm).double()
    params = list(block.parameters())
    x = minigrad.tensor(_x((2, 2, 3, 3)), requires_grad=True)
    assert minigrad.gradcheck(lambda x, *ps: block(x), [x] + params)


def _unit_ref(unit, x, pad=0):
    """conv (stride 1) → BatchNorm in training mode (batch statistics) if any → ReLU."""
    y = R.conv2d(x, unit.conv.weight.data, None if unit.conv.bias is None
                 else unit.conv.bias.data, padding=pad)
    if unit.bn is not None:
        y = R.batch_norm(y, unit.bn.weight.data, unit.bn.bias.data)
    return np.maximum(y, 0)


def _pool_ref(x):
    """The pooling branch's 3×3 max pool, stride 1, padding 1."""
    return R.max_pool2d(x, (3, 3), (1, 1), (1, 1), (1, 1), False)[0]


@pytest.mark.parametrize("norm", [None, "batch"])
def test_forward_matches_a_numpy_reference(norm):
    block = _block(norm, in_channels=3, ch1x1=2, ch3x3red=2, ch3x3=3, ch5x5red=2, ch5x5=2,
                   pool_proj=2).double()
    x = _x((2, 3, 6, 5))
    expected = np.concatenate([
        _unit_ref(block.branch1, x),
        _unit_ref(block.branch2[1], _unit_ref(block.branch2[0], x), pad=1),
        _unit_ref(block.branch3[1], _unit_ref(block.branch3[0], x), pad=2),
        _unit_ref(block.branch4, _pool_ref(x)),
    ], axis=1)
    np.testing.assert_allclose(block(minigrad.tensor(x)).data, expected, rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("norm", [None, "batch"])
def test_matches_torch(norm):
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    sizes = dict(in_channels=3, ch1x1=2, ch3x3red=2, ch3x3=3, ch5x5red=2, ch5x5=2, pool_proj=2)
    block = _block(norm, **sizes)

    def unit(cin, cout, k, pad):
        layers = [tnn.Conv2d(cin, cout, k, padding=pad, bias=norm is None)]
        layers += [tnn.BatchNorm2d(cout)] if norm else []
        return tnn.Sequential(*layers, tnn.ReLU())

    b1 = unit(3, 2, 1, 0)
    b2 = tnn.Sequential(unit(3, 2, 1, 0), unit(2, 3, 3, 1))
    b3 = tnn.Sequential(unit(3, 2, 1, 0), unit(2, 2, 5, 2))
    b4 = tnn.Sequential(tnn.MaxPool2d(3, 1, 1), unit(3, 2, 1, 0))
    theirs = tnn.ModuleList([b1, b2, b3, b4])
    mine = [p.data for p in block.parameters()]
    assert len(mine) == len(list(theirs.parameters()))
    with torch.no_grad():
        for ours, tp in zip(mine, theirs.parameters()):
            tp.copy_(torch.from_numpy(ours))
    x = _x((2, 3, 6, 6), dtype=np.float32)
    expected = torch.cat([b(torch.from_numpy(x)) for b in theirs], 1).detach().numpy()
    np.testing.assert_allclose(block(minigrad.tensor(x)).data, expected, rtol=1e-4, atol=1e-5)


def test_state_dict_round_trip_in_eval_mode(tmp_path):
    block = _block("batch")
    x = minigrad.tensor(_x((2, 2, 4, 4), dtype=np.float32))
    block(x)                                   # update running statistics once
    block.eval()
    expected = block(x).data
    assert "branch2.1.bn.running_var" in block.state_dict()
    minigrad.save(block.state_dict(), tmp_path / "inception.npz")
    twin = _block("batch", seed=5).eval()
    twin.load_state_dict(minigrad.load(tmp_path / "inception.npz"))
    np.testing.assert_array_equal(twin(x).data, expected)


def test_bad_arguments():
    with pytest.raises(ValueError, match="norm"):
        nn.Inception(**TINY, norm="layer")
    with pytest.raises(ValueError, match="ch5x5red"):
        nn.Inception(**dict(TINY, ch5x5red=0))
    with pytest.raises(ValueError, match=r"\(N, 2, H, W\)"):
        nn.Inception(**TINY)(minigrad.tensor(np.zeros((1, 3, 4, 4), np.float32)))
