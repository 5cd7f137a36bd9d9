"""nn.Module: registration, traversal, modes, state_dict / load_state_dict, Sequential."""
import numpy as np
import pytest

import minigrad
from minigrad import nn
from minigrad.nn import Parameter


class Block(nn.Module):
    """A parameter, a buffer and a sub-module, to exercise every registry."""

    def __init__(self):
        super().__init__()
        self.scale = Parameter(np.full(3, 2.0, dtype=np.float32))
        self.register_buffer("count", np.zeros((), dtype=np.int64))
        self.inner = nn.Linear(3, 2)

    def forward(self, x):
        return self.inner(x * self.scale)


def _model():
    minigrad.manual_seed(0)
    return nn.Sequential(Block(), nn.ReLU(), nn.Linear(2, 4))


def test_registration_order_and_dotted_names():
    model = _model()
    assert [n for n, _ in model.named_parameters()] == [
        "0.scale", "0.inner.weight", "0.inner.bias", "2.weight", "2.bias"]
    assert [n for n, _ in model.named_buffers()] == ["0.count"]
    assert [n for n, _ in model.named_modules()] == ["", "0", "0.inner", "1", "2"]
    assert [type(m).__name__ for m in model.children()] == ["Block", "ReLU", "Linear"]
    assert list(model.state_dict()) == ["0.scale", "0.count", "0.inner.weight", "0.inner.bias",
                                        "2.weight", "2.bias"]


def test_plain_attributes_are_not_registered_and_reassignment_moves_registry():
    block = Block()
    block.note = np.zeros(2)
    assert "note" not in dict(block.named_buffers())
    block.inner = Parameter(np.zeros(1))        # a module name becomes a parameter
    assert "inner" not in block._modules and "inner" in block._parameters
    del block.inner
    assert "inner" not in dict(block.named_parameters()) and not hasattr(block, "inner")


def test_assigning_to_a_buffer_updates_it_and_plain_tensor_on_parameter_is_refused():
    block = Block()
    block.count = np.array(5, dtype=np.int64)
    assert block.state_dict()["count"] == 5
    with pytest.raises(TypeError, match="scale"):
        block.scale = minigrad.tensor(np.zeros(3, dtype=np.float32))
    with pytest.raises(KeyError, match="scale"):
        block.register_buffer("scale", np.zeros(3))
    with pytest.raises(TypeError, match="weird"):
        block.register_parameter("weird", np.zeros(3))


def test_init_must_be_called_first():
    class Broken(nn.Module):
        def __init__(self):
            self.w = Parameter(np.zeros(1))

    with pytest.raises(RuntimeError, match="Module.__init__"):
        Broken()


def test_shared_parameters_and_modules_are_listed_once_but_named_twice_in_state_dict():
    shared = nn.Linear(2, 2)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(model.parameters())) == 2
    assert [n for n, _ in model.named_modules()] == ["", "0", "1"]
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    model.load_state_dict(model.state_dict())     # both names expected, both present


def test_train_eval_propagate_and_zero_grad():
    model = _model()
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    out = model(minigrad.tensor(np.ones((2, 3), dtype=np.float32))).sum()
    out.backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_requires_grad_apply_and_to_double():
    model = _model()
    model.requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())
    visited = []
    model.apply(lambda m: visited.append(type(m).__name__))
    assert visited[-1] == "Sequential" and visited.index("Linear") < visited.index("Block")
    weight = model[2].weight
    model.double()
    assert model[2].weight is weight and weight.dtype == np.float64
    assert model[0].count.dtype == np.int64          # integer buffers keep their dtype
    with pytest.raises(TypeError, match="dtype"):
        model.to(np.int32)


def test_state_dict_is_a_snapshot():
    model = _model()
    state = model.state_dict()
    before = state["2.weight"].copy()
    model[2].weight.data += 1
    np.testing.assert_array_equal(state["2.weight"], before)


def test_round_trip_restores_identical_outputs():
    x = minigrad.tensor(np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32))
    source = _model()
    expected = source(x).data
    minigrad.manual_seed(123)                    # a differently initialised twin
    target = nn.Sequential(Block(), nn.ReLU(), nn.Linear(2, 4))
    assert not np.array_equal(target(x).data, expected)
    state = source.state_dict()
    state["0.count"] = np.array(7)
    result = target.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    np.testing.assert_array_equal(target(x).data, expected)
    assert int(target[0].count) == 7


def test_strict_load_names_missing_and_unexpected_keys():
    model = _model()
    state = model.state_dict()
    del state["2.bias"]
    state["2.extra"] = np.zeros(1)
    with pytest.raises(KeyError, match=r"2\.bias.*2\.extra"):
        model.load_state_dict(state)


def test_non_strict_load_reports_and_loads_the_rest():
    model = _model()
    state = {k: v + 1 if v.dtype.kind == "f" else v for k, v in model.state_dict().items()}
    del state["2.bias"]
    state["stray"] = np.zeros(1)
    old_bias = model[2].bias.data.copy()
    result = model.load_state_dict(state, strict=False)
    assert result.missing_keys == ["2.bias"] and result.unexpected_keys == ["stray"]
    np.testing.assert_array_equal(model[2].weight.data, state["2.weight"])
    np.testing.assert_array_equal(model[2].bias.data, old_bias)


@pytest.mark.parametrize("strict", [True, False])
def test_wrong_shape_is_refused_by_name_and_nothing_changes(strict):
    model = _model()
    before = model.state_dict()
    state = {k: v + 1 if v.dtype.kind == "f" else v for k, v in before.items()}
    state["0.inner.weight"] = np.zeros((3, 2), dtype=np.float32)
    with pytest.raises(ValueError, match=r"0\.inner\.weight.*\(3, 2\).*\(2, 3\)"):
        model.load_state_dict(state, strict=strict)
    for key, value in model.state_dict().items():       # not even the valid entries loaded
        np.testing.assert_array_equal(value, before[key])


def test_wrong_dtype_and_non_mapping_are_refused():
    model = _model()
    state = model.state_dict()
    state["0.count"] = np.array(1.5)                   # float into an int64 buffer
    with pytest.raises(TypeError, match="0.count"):
        model.load_state_dict(state)
    with pytest.raises(TypeError, match="mapping"):
        model.load_state_dict([("0.scale", np.zeros(3))])


def test_load_accepts_tensors_and_casts_float64():
    layer = nn.Linear(2, 2)
    weight = np.arange(4, dtype=np.float64).reshape(2, 2)
    layer.load_state_dict({"weight": minigrad.tensor(weight), "bias": np.ones(2)})
    assert layer.weight.dtype == np.float32
    np.testing.assert_array_equal(layer.weight.data, weight)


def test_sequential_indexing_iteration_append_and_repr():
    model = _model()
    assert len(model) == 3 and model[-1] is model[2]
    head = model[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is model[0]
    assert [type(m).__name__ for m in model] == ["Block", "ReLU", "Linear"]
    model.append(nn.Identity())
    assert len(model) == 4 and isinstance(model[3], nn.Identity)
    text = repr(model)
    assert "(2): Linear(in_features=2, out_features=4, bias=True)" in text
    assert "(inner): Linear" in text


def test_forward_must_be_defined():
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(1)
