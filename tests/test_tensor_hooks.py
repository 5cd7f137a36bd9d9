"""Tensor.register_post_accumulate_grad_hook (PyTorch's semantics): a leaf's hooks run once per
backward, after its last gradient, whichever ops use it; DistributedDataParallel builds on it."""
import numpy as np
import pytest

import minigrad
from minigrad.hooks import RemovableHandle


def _leaf(*values):
    return minigrad.tensor(np.array(values), requires_grad=True)


def test_hook_runs_once_after_every_use_of_the_leaf_is_accumulated():
    w = _leaf(1.0, 2.0)
    seen = []
    w.register_post_accumulate_grad_hook(lambda t: seen.append((t, t.grad.copy())))
    ((w * w).sum() + (w * 3.0).sum() + w.sum()).backward()      # three ops use w
    assert len(seen) == 1 and seen[0][0] is w
    np.testing.assert_array_equal(seen[0][1], [6.0, 8.0])      # 2w + 3 + 1: all of it


def test_hooks_run_in_order_per_backward_and_remove():
    w, v = _leaf(1.0), _leaf(2.0)
    log = []
    first = w.register_post_accumulate_grad_hook(lambda t: log.append("w1"))
    w.register_post_accumulate_grad_hook(lambda t: log.append("w2"))
    v.register_post_accumulate_grad_hook(lambda t: log.append("v"))
    assert isinstance(first, RemovableHandle)
    (w * v).sum().backward()
    assert sorted(log) == ["v", "w1", "w2"] and log.index("w1") < log.index("w2")
    first.remove()
    log.clear()
    (w * 2.0).sum().backward()                    # v is not reached: its hook does not run
    assert log == ["w2"]
    np.testing.assert_array_equal(w.grad, [4.0])   # accumulated over the two backwards


def test_hook_on_a_leaf_that_is_itself_the_root_and_may_replace_grad():
    w = _leaf(3.0)

    def clip(t):
        t.grad = np.minimum(t.grad, 0.5)

    w.register_post_accumulate_grad_hook(clip)
    w.sum().backward()
    np.testing.assert_array_equal(w.grad, [0.5])


def test_only_a_leaf_takes_a_hook_and_the_hook_must_be_callable():
    w = _leaf(1.0)
    with pytest.raises(RuntimeError, match="only a leaf"):
        (w * 2.0).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(TypeError, match="callable"):
        w.register_post_accumulate_grad_hook(42)
