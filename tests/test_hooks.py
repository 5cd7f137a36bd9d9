"""nn.Module forward hooks: register_forward_pre_hook / register_forward_hook (PyTorch's
semantics), their removable handles, and the FLOP count of examples/training.py built on them."""
import copy
import os
import pickle
import sys

import numpy as np
import pytest

import minigrad
from minigrad import nn
from minigrad.nn.module import RemovableHandle

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
sys.path.insert(0, EXAMPLES)


class Affine(nn.Module):
    """y = x * scale + shift, with ``shift`` a keyword-only argument of forward."""

    def __init__(self, scale):
        super().__init__()
        self.scale = nn.Parameter(np.array(scale, dtype=np.float32))
        self.calls = []

    def forward(self, x, shift=0.0):
        self.calls.append((x.data.copy(), shift))
        return x * self.scale + shift


def _x(*values):
    return minigrad.tensor(np.array(values, dtype=np.float32))


def double_output(module, args, output):
    """A module-level hook (so a module holding it can be pickled)."""
    return output * 2.0


def _all_hooks(model):
    return [h for m in model.modules() for h in (*m._forward_pre_hooks.values(),
                                                  *m._forward_hooks.values())]


def test_hooks_run_in_registration_order_around_forward():
    m = Affine(3.0)
    log = []
    m.register_forward_pre_hook(lambda mod, args: log.append(("pre1", mod, args)))
    m.register_forward_pre_hook(lambda mod, args: log.append(("pre2", len(mod.calls))))
    m.register_forward_hook(lambda mod, args, out: log.append(("post1", len(mod.calls),
                                                               out.data.tolist())))
    m.register_forward_hook(lambda mod, args, out: log.append(("post2", args)))
    x = _x(1.0, 2.0)
    y = m(x)
    assert [entry[0] for entry in log] == ["pre1", "pre2", "post1", "post2"]
    assert log[0][1] is m and log[0][2] == (x,)        # the module and the args tuple
    assert log[1][1] == 0                              # pre-hooks run before forward
    assert log[2][1:] == (1, [3.0, 6.0])               # forward hooks after, with its output
    assert log[3][1] == (x,)
    np.testing.assert_array_equal(y.data, [3.0, 6.0])  # hooks returning None change nothing


def test_pre_hook_replaces_args_and_a_non_tuple_is_wrapped():
    m = Affine(2.0)
    seen = []
    m.register_forward_pre_hook(lambda mod, args: _x(10.0))            # not a tuple: wrapped
    m.register_forward_pre_hook(lambda mod, args: seen.append(args))   # sees the replacement
    m.register_forward_pre_hook(lambda mod, args: (args[0] + 1.0,))    # a tuple: used as is
    y = m(_x(1.0), shift=0.5)                                          # kwargs pass through
    assert len(seen[0]) == 1 and seen[0][0].data.tolist() == [10.0]
    np.testing.assert_array_equal(m.calls[-1][0], [11.0])
    assert m.calls[-1][1] == 0.5
    np.testing.assert_array_equal(y.data, [22.5])


def test_forward_hook_replaces_output_and_receives_the_replaced_args():
    m = Affine(2.0)
    seen = []
    m.register_forward_pre_hook(lambda mod, args: (args[0] * 0.0 + 5.0,))
    m.register_forward_hook(lambda mod, args, out: seen.append(args[0].data.tolist()))
    m.register_forward_hook(double_output)
    m.register_forward_hook(lambda mod, args, out: out + 1.0)          # sees the doubled output
    y = m(_x(1.0))
    assert seen == [[5.0]]
    np.testing.assert_array_equal(y.data, [21.0])                      # (5 * 2) * 2 + 1


def test_replaced_output_is_differentiated_through():
    m = Affine(2.0)
    m.register_forward_hook(double_output)
    m(_x(1.0, 3.0)).sum().backward()
    np.testing.assert_allclose(m.scale.grad, 2.0 * (1.0 + 3.0))


def test_handle_remove_is_idempotent_and_removes_only_its_hook():
    m = Affine(1.0)
    log = []
    first = m.register_forward_hook(lambda mod, args, out: log.append("first"))
    m.register_forward_hook(lambda mod, args, out: log.append("second"))
    pre = m.register_forward_pre_hook(lambda mod, args: log.append("pre"))
    assert isinstance(first, RemovableHandle) and first.id != pre.id
    first.remove()
    first.remove()                                   # a second remove does nothing
    pre.remove()
    m(_x(1.0))
    assert log == ["second"]


def test_handle_as_context_manager_removes_on_exit_even_after_an_error():
    m = Affine(1.0)
    with m.register_forward_hook(double_output) as handle:
        assert isinstance(handle, RemovableHandle)
        np.testing.assert_array_equal(m(_x(1.0)).data, [2.0])
    np.testing.assert_array_equal(m(_x(1.0)).data, [1.0])
    with pytest.raises(ZeroDivisionError):
        with m.register_forward_pre_hook(lambda mod, args: 1 / 0):
            m(_x(1.0))
    assert not m._forward_pre_hooks and not m._forward_hooks
    np.testing.assert_array_equal(m(_x(4.0)).data, [4.0])


def test_a_hook_may_remove_itself_while_hooks_run():
    m = Affine(1.0)
    log = []

    def once(mod, args, out):
        log.append("once")
        handle.remove()

    handle = m.register_forward_hook(once)
    m.register_forward_hook(lambda mod, args, out: log.append("always"))
    m(_x(1.0))
    m(_x(1.0))
    assert log == ["once", "always", "always"]


def test_hooks_on_the_submodules_of_a_sequential():
    minigrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = minigrad.tensor(np.ones((5, 3), dtype=np.float32))
    expected = model(x).data
    shapes = []
    handles = [m.register_forward_hook(
        lambda mod, args, out, name=name: shapes.append((name, args[0].shape, out.shape)))
        for name, m in model.named_children()]
    np.testing.assert_array_equal(model(x).data, expected)
    assert shapes == [("0", (5, 3), (5, 4)), ("1", (5, 4), (5, 4)), ("2", (5, 4), (5, 2))]
    # A child's replaced output is what the next child (and the Sequential) receive.
    with model[2].register_forward_hook(double_output):
        np.testing.assert_allclose(model(x).data, 2.0 * expected, rtol=1e-6)
    for h in handles:
        h.remove()
    assert _all_hooks(model) == []
    np.testing.assert_array_equal(model(x).data, expected)


@pytest.mark.parametrize("method", ["register_forward_hook", "register_forward_pre_hook"])
@pytest.mark.parametrize("bad", [None, 3, "hook"])
def test_a_hook_that_is_not_callable_is_refused_by_name(method, bad):
    m = Affine(1.0)
    with pytest.raises(TypeError, match=rf"{method}: hook must be callable"):
        getattr(m, method)(bad)
    assert not m._forward_pre_hooks and not m._forward_hooks


def test_hooks_leave_state_dict_registration_and_loading_alone():
    minigrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm2d(2))
    before = model.state_dict()
    model.register_forward_hook(double_output)
    model[0].register_forward_pre_hook(lambda mod, args: None)
    after = model.state_dict()
    assert list(after) == list(before) == ["0.weight", "0.bias", "1.weight", "1.bias",
                                           "1.running_mean", "1.running_var",
                                           "1.num_batches_tracked"]
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])
    assert [n for n, _ in model.named_modules()] == ["", "0", "1"]
    assert len(list(model.parameters())) == 4
    model.load_state_dict(before)                     # strict: no hook entries expected
    model.extra = nn.Linear(1, 1)                     # __setattr__ still registers modules
    assert "extra" in model._modules


def test_a_hooked_module_pickles_deep_copies_and_checkpoints(tmp_path):
    minigrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2))
    x = minigrad.tensor(np.ones((1, 3), dtype=np.float32))
    plain = model(x).data
    handle = model[0].register_forward_hook(double_output)

    # As in PyTorch, pickle and deepcopy keep the hooks (a picklable hook, here) ...
    for clone in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        np.testing.assert_allclose(clone(x).data, 2.0 * plain)
        # ... and the original's handle removes the hook from the original only.
        handle.remove()
        np.testing.assert_allclose(model(x).data, plain)
        np.testing.assert_allclose(clone(x).data, 2.0 * plain)
        handle = model[0].register_forward_hook(double_output)

    # A checkpoint holds the state_dict, which hooks do not change.
    minigrad.save({"model": model.state_dict()}, tmp_path / "hooked.npz")
    fresh = nn.Sequential(nn.Linear(3, 2))
    fresh.load_state_dict(minigrad.load(tmp_path / "hooked.npz")["model"])
    np.testing.assert_array_equal(fresh(x).data, plain)


def test_a_module_pickled_before_hooks_existed_still_runs_and_takes_hooks():
    minigrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 2))
    x = minigrad.tensor(np.ones((1, 3), dtype=np.float32))
    expected = model(x).data
    old = nn.Sequential.__new__(nn.Sequential)    # its state without hook tables, as pickled
    object.__setattr__(old, "__dict__", {k: v for k, v in model.__dict__.items()
                                         if "hooks" not in k})
    restored = pickle.loads(pickle.dumps(old))
    np.testing.assert_array_equal(restored(x).data, expected)
    restored.register_forward_hook(double_output)
    np.testing.assert_allclose(restored(x).data, 2.0 * expected)


def test_forward_flops_counts_a_small_model_by_hand_and_removes_its_hooks():
    from training import forward_flops

    minigrad.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(),      # (2,6,6) -> (4,6,6)
                          nn.Conv2d(4, 3, 3, stride=2, padding=1, bias=False),  # -> (3,3,3)
                          nn.Flatten(), nn.Linear(27, 5))
    # 2 * outputs * multiply-adds per output:
    conv1 = 2 * (4 * 6 * 6) * (2 * 3 * 3)     # 5184
    conv2 = 2 * (3 * 3 * 3) * (4 * 3 * 3)     # 1944
    linear = 2 * 5 * 27                       # 270
    assert forward_flops(model, (1, 2, 6, 6)) == conv1 + conv2 + linear == 7398
    assert forward_flops(model, (3, 2, 6, 6)) == 7398            # per image
    assert _all_hooks(model) == [] and model.training
    with pytest.raises(ValueError, match="in_features"):
        forward_flops(model, (1, 2, 8, 8))     # 3*4*4 features reach Linear(27, 5): fails
    assert _all_hooks(model) == [] and model.training


def test_forward_flops_of_the_fcn_example_by_hand():
    from fcn_mnist import build_model
    from training import forward_flops

    minigrad.manual_seed(0)
    # width 4 on 28x28: 3x3 convs 1->4, 4->4 (28x28), 4->8, 8->8 (14x14), 8->16, 16->32 (7x7),
    # 1x1 32->10
    expected = 2 * (4 * 784 * 9 + 4 * 784 * 36 + 8 * 196 * 36 + 8 * 196 * 72 + 16 * 49 * 72
                    + 32 * 49 * 144 + 10 * 49 * 32)
    assert expected == 1216768
    assert forward_flops(build_model(4), (1, 1, 28, 28)) == expected


def test_forward_flops_counts_convolutions_run_without_a_module():
    from training import forward_flops

    # nn.Inception runs its three 1×1 convolutions of the input as one functional conv
    h, w = 9, 8
    block = nn.Inception(10, 4, 3, 6, 2, 5, 7, norm="batch")
    convs = [(10, 4, 1), (10, 3, 1), (3, 6, 3), (10, 2, 1), (2, 5, 5), (10, 7, 1)]
    expected = 2 * h * w * sum(i * o * k * k for i, o, k in convs)
    assert forward_flops(nn.Sequential(block), (2, 10, h, w)) == expected
