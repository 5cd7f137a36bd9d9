"""detect_anomaly(): the first NaN/Inf in forward or backward names the op and the user's line."""
import numpy as np
import pytest

import minigrad as mg


def test_forward_nan_names_op_and_line():
    x = mg.tensor([-1.0, 4.0], requires_grad=True)
    with mg.detect_anomaly():
        with pytest.raises(mg.AnomalyError, match=r"Log .*forward.*test_anomaly.py:\d+") as err:
            x.log()   # log(-1) = NaN
    assert "x.log()" in str(err.value)


def test_backward_inf_names_op():
    x = mg.tensor([0.0, 4.0], requires_grad=True)
    with mg.detect_anomaly():
        y = x.sqrt()          # finite forward, infinite gradient at 0
        with pytest.raises(mg.AnomalyError, match=r"Sqrt\.backward.*y = x.sqrt\(\)"):
            y.sum().backward()


def test_nothing_is_checked_outside_the_context():
    x = mg.tensor([-1.0], requires_grad=True)
    with np.errstate(invalid="ignore"):
        y = x.log()
    assert np.isnan(y.data).all()
    assert not hasattr(y._creator, "_anomaly_origin")


def test_finite_computation_passes_under_anomaly_mode():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with mg.detect_anomaly():
        (x.exp() * x).sum().backward()
    np.testing.assert_allclose(x.grad, np.exp([1.0, 2.0]) * (1 + np.array([1.0, 2.0])),
                               rtol=1e-6)


def test_conv_and_pool_ops_are_named_forward_and_backward():
    import minigrad.nn.functional as F
    from minigrad.ops import pooling as P
    x = mg.tensor(np.ones((1, 1, 4, 4)), requires_grad=True)
    w = mg.tensor(np.full((1, 1, 3, 3), np.inf), requires_grad=True)
    with mg.detect_anomaly():
        with pytest.raises(mg.AnomalyError, match=r"Conv2d produced NaN or Inf.*F.conv2d"):
            F.conv2d(x, w)
    x2 = mg.tensor(np.arange(16.0).reshape(1, 1, 4, 4), requires_grad=True)
    with mg.detect_anomaly():
        y = P.max_pool2d(x2, 2)                    # finite forward
        with pytest.raises(mg.AnomalyError, match=r"MaxPool2d\.backward.*P\.max_pool2d"):
            y.backward(np.full(y.shape, np.inf))   # an infinite upstream gradient
