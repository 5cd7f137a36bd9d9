"""Backward through the graph's edge cases: flag changes on non-leaves, detached branches,
unused outputs, constant branches, and ops whose backward breaks its contract."""
import numpy as np
import pytest

import minigrad as mg
from minigrad import Function


def _leaf(values=(1.0, 2.0, 3.0)):
    return mg.tensor(np.array(values), requires_grad=True)


def test_a_non_leaf_refuses_to_stop_requiring_grad():
    w = _leaf()
    h = w * 2
    with pytest.raises(RuntimeError, match="only a leaf tensor's requires_grad can change.*Mul"):
        h.requires_grad_(False)
    with pytest.raises(RuntimeError, match="only a leaf tensor's requires_grad can change"):
        h.requires_grad = False
    assert h.requires_grad
    h.requires_grad_(True)          # no change: allowed, as in PyTorch
    (h * w).sum().backward()        # the graph: dL/dw = 2w + 2w
    np.testing.assert_array_equal(w.grad, 4 * w.data)


def test_a_leaf_may_change_its_flag_and_a_detached_copy_is_a_leaf():
    w = _leaf()
    w.requires_grad_(False)
    assert not w.requires_grad
    w.requires_grad = True
    d = (w * 2).detach()
    assert d.is_leaf and not d.requires_grad
    d.requires_grad_(True)
    assert d.requires_grad
    with pytest.raises(TypeError, match="only a floating-point tensor can require grad"):
        mg.tensor(np.arange(3)).requires_grad = True


def test_backward_does_not_enter_a_detached_branch():
    w = _leaf()
    branch = w * 3
    (branch.detach() * w).sum().backward()
    # only the direct use of w counts: dL/dw = 3w (the detached value), not 3w + 3w
    np.testing.assert_array_equal(w.grad, 3 * w.data)


def test_backward_skips_the_creator_of_an_input_that_needed_no_gradient():
    w = _leaf()
    with mg.no_grad():
        constant = w * 5
    other = w * 2                      # a graph node, then used as a constant below
    with mg.no_grad():
        frozen = other + 0
    loss = (w * constant + frozen).sum()
    loss.backward()
    np.testing.assert_array_equal(w.grad, 5 * w.data)


def test_unused_outputs_of_a_multi_output_op_get_zero_gradient():
    x = mg.tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    first, second = mg.split(x, 2, axis=1)
    (first * 3).sum().backward()
    expected = np.zeros((3, 4))
    expected[:, :2] = 3
    np.testing.assert_array_equal(x.grad, expected)
    assert second.grad is None


def test_a_shared_subgraph_is_walked_once_per_backward():
    w = _leaf()
    shared = w * w
    (shared + shared * 2).sum().backward()
    np.testing.assert_array_equal(w.grad, 3 * 2 * w.data)


class _ForgetsAGradient(Function):
    """Returns None for its second input, which needs one."""

    def forward(self, a, b):
        return a * b

    def backward(self, gy):
        return gy, None


class _WrongCount(Function):
    def forward(self, a, b):
        return a + b

    def backward(self, gy):
        return gy


def test_a_backward_returning_none_for_a_needed_gradient_is_named():
    a, b = _leaf(), _leaf()
    y = _ForgetsAGradient()(a, b * 1)
    with pytest.raises(RuntimeError, match=r"_ForgetsAGradient.backward returned None for input "
                                           r"1 \(shape \(3,\)\), which needs a gradient"):
        y.sum().backward()


def test_none_is_fine_for_an_input_that_needs_no_gradient():
    a = _leaf()
    y = _ForgetsAGradient()(a, mg.tensor(np.ones(3)))
    y.sum().backward()
    np.testing.assert_array_equal(a.grad, np.ones(3))


def test_a_backward_returning_too_few_gradients_is_named():
    y = _WrongCount()(_leaf(), _leaf())
    with pytest.raises(RuntimeError, match="_WrongCount.backward returned 1 gradients for 2"):
        y.sum().backward()
