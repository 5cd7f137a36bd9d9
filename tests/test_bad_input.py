"""Bad arguments raise ValueError/TypeError/IndexError whose message names the argument as it is
spelled in the op's signature, never OverflowError, MemoryError or numpy's unnamed errors.

One explicit case per finding of the bad-input fuzzer (tests/helpers/fuzz_bad_input.py), so a
regression is pinned on its op without running the fuzzer.
"""
import numpy as np
import pytest

import minigrad
import minigrad.nn.functional as F

HUGE = 10 ** 400        # too large for a float
X4 = np.zeros((2, 3, 4, 4), np.float32)
RAGGED = [[1.0, 2.0], [3.0]]


def _t(shape=(2, 3), dtype=np.float32):
    return minigrad.tensor(np.arange(np.prod(shape), dtype=dtype).reshape(shape))


def _read_only(shape):
    a = np.ones(shape, np.float32)
    a.flags.writeable = False
    return a


CASES = {
    # as_tensor(..., name=, op_name=): which argument could not become a tensor
    "relu x None": (lambda: F.relu(None), TypeError, r"relu: x must be array-like"),
    "relu x ragged": (lambda: F.relu(RAGGED), ValueError, r"relu: x must be array-like"),
    "relu x strings": (lambda: F.relu(np.array(["a"])), TypeError, r"relu: x must be array-like"),
    "prelu weight": (lambda: F.prelu(X4, object()), TypeError, r"prelu: weight must be"),
    "swish beta": (lambda: F.swish(X4, RAGGED), ValueError, r"swish: beta must be"),
    "softmax x 1-D": (lambda: F.softmax(np.zeros(3, np.float32), 1), ValueError,
                      r"softmax: axis 1 is out of range for x of shape \(3,\)"),
    "leaky_relu negative_slope huge": (lambda: F.leaky_relu(X4, HUGE), ValueError,
                                       r"leaky_relu: negative_slope is too large"),
    "elu alpha huge": (lambda: F.elu(X4, HUGE), ValueError, r"elu: alpha is too large"),
    "linear input": (lambda: F.linear(None, np.zeros((3, 2), np.float32)), TypeError,
                     r"linear: input must be array-like"),
    "linear weight": (lambda: F.linear(np.zeros((4, 2), np.float32), RAGGED), ValueError,
                      r"linear: weight must be array-like"),
    "linear bias": (lambda: F.linear(np.zeros((4, 2), np.float32), np.zeros((3, 2), np.float32),
                                     np.zeros(3, object)), TypeError, r"linear: bias must be"),
    "dropout mask": (lambda: F.dropout(X4, mask=RAGGED), ValueError, r"dropout: mask must be"),
    "dropout training": (lambda: F.dropout(X4, training=np.array([True, False])), TypeError,
                         r"dropout: training must be a bool"),
    "cross_entropy logits": (lambda: F.cross_entropy(None, np.zeros(4, np.int64)), TypeError,
                             r"cross_entropy: logits must be array-like"),
    "cross_entropy logits int": (lambda: F.cross_entropy(np.zeros((4, 5), np.int64),
                                                         np.zeros(4, np.int64)), TypeError,
                                 r"cross_entropy: logits must be float32 or float64"),
    "cross_entropy 0 classes": (lambda: F.cross_entropy(np.zeros((4, 0), np.float32),
                                                        np.ones(4, np.int64)), ValueError,
                                r"0 classes of logits of shape \(4, 0\)"),
    "cross_entropy target": (lambda: F.cross_entropy(np.zeros((4, 5), np.float32), [[1], [2, 3]]),
                             ValueError, r"cross_entropy: target must be array-like"),
    "nll_loss input": (lambda: F.nll_loss(RAGGED, np.zeros(2, np.int64)), ValueError,
                       r"nll_loss: input must be array-like"),
    "mse_loss target": (lambda: F.mse_loss(np.zeros(3, np.float32), object()), TypeError,
                        r"mse_loss: target must be array-like"),
    "batch_norm input": (lambda: F.batch_norm(RAGGED, None, None, training=True), ValueError,
                         r"batch_norm: input must be array-like"),
    "batch_norm read-only running_mean": (
        lambda: F.batch_norm(X4, _read_only(3), np.ones(3, np.float32), training=True),
        ValueError, r"batch_norm: running_mean is read-only"),
    "batch_norm read-only running_var": (
        lambda: F.batch_norm(X4, np.zeros(3, np.float32), minigrad.tensor(_read_only(3)),
                             training=True), ValueError, r"batch_norm: running_var is read-only"),
    "batch_norm training": (lambda: F.batch_norm(X4, None, None, training=np.array([1, 0])),
                            TypeError, r"batch_norm: training must be a bool"),
    "batch_norm eps huge": (lambda: F.batch_norm(X4, None, None, training=True, eps=HUGE),
                            ValueError, r"batch_norm: eps is too large"),
    # Tensor construction and methods
    "tensor data ragged": (lambda: minigrad.tensor(RAGGED), ValueError, r"cannot make a tensor"),
    "tensor data huge int": (lambda: minigrad.tensor(HUGE), ValueError, r"64-bit"),
    "tensor data None with dtype": (lambda: minigrad.tensor(None, dtype=np.float32), TypeError,
                                    r"None"),
    "tensor dtype": (lambda: minigrad.tensor(1.0, dtype="bogus"), TypeError,
                     r"tensor: dtype must be a numpy dtype"),
    "tensor requires_grad": (lambda: minigrad.tensor(1.0, requires_grad=np.array([1, 0])),
                             TypeError, r"tensor: requires_grad must be a bool"),
    "requires_grad_ flag": (lambda: _t().requires_grad_("False"), TypeError,
                            r"requires_grad_: flag must be a bool"),
    "astype dtype": (lambda: _t().astype("mean"), TypeError, r"astype: dtype must be"),
    "item of many": (lambda: _t().item(), ValueError, r"item: .* tensor of shape \(2, 3\)"),
    "backward grad": (lambda: (minigrad.tensor(np.ones(2), requires_grad=True) * 2).backward(
        RAGGED), ValueError, r"backward: grad must be array-like"),
    "getitem 2**63": (lambda: _t()[2 ** 63], IndexError, r"index 9223372036854775808"),
    "pow exponent huge": (lambda: _t() ** HUGE, ValueError, r"pow: exponent is too large"),
    "clip max huge": (lambda: _t().clip(max=HUGE), ValueError, r"clip: max is too large"),
    "clip min array": (lambda: _t().clip(min=np.array([0.0, 1.0])), TypeError,
                       r"clip: min must be a real number"),
    "add other None": (lambda: _t() + None, TypeError, r"add: other must be array-like"),
    "radd other object": (lambda: object() + _t(), TypeError, r"add: other must be array-like"),
    "mul other huge": (lambda: _t() * HUGE, ValueError, r"mul: other must be array-like"),
    "matmul other": (lambda: _t() @ None, TypeError, r"matmul: other must be array-like"),
    "lt other string": (lambda: _t() < "a", TypeError, r"lt: other must be array-like"),
    "ge complex": (lambda: _t() >= np.ones(3, np.complex64), TypeError, r"ge: complex"),
    "neg bool": (lambda: -minigrad.tensor(np.array([True])), TypeError, r"neg: .*bool tensor"),
    "sum axis float": (lambda: _t().sum(axis=1.0), TypeError, r"sum: axis must be an int"),
    "sum keepdims array": (lambda: _t().sum(keepdims=np.array([True, False])), TypeError,
                           r"sum: keepdims must be a bool"),
    "max axis out of range": (lambda: _t().max(axis=2 ** 63), ValueError,
                              r"max: axis 9223372036854775808 is out of range"),
    # shape ops
    "reshape shape None": (lambda: _t().reshape(None), TypeError, r"reshape: shape must be ints"),
    "reshape shape inf": (lambda: _t().reshape(float("inf")), TypeError, r"reshape: shape"),
    "transpose axes": (lambda: _t().transpose("3"), TypeError, r"transpose: axes must be ints"),
    "flatten end_axis": (lambda: _t().flatten(0, 4), ValueError,
                         r"flatten: end_axis 4 is out of range for a tensor of shape \(2, 3\)"),
    "flatten start_axis str": (lambda: _t().flatten("0"), TypeError,
                                r"flatten: start_axis must be an int"),
    "cat axis": (lambda: minigrad.cat([_t(), _t()], axis="1"), TypeError,
                 r"cat: axis must be an int"),
    "cat tensors iterator": (lambda: minigrad.cat(iter([_t()])), TypeError,
                             r"cat: tensors must be a list or tuple"),
    "stack tensors item": (lambda: minigrad.stack([_t(), None]), TypeError,
                           r"stack: tensors\[1\] must be array-like"),
    "stack axis": (lambda: minigrad.stack([_t(), _t()], axis=[1]), TypeError,
                   r"stack: axis must be an int"),
    "split x": (lambda: minigrad.split(None, 1), TypeError, r"split: x must be array-like"),
    "split x 0-d": (lambda: minigrad.split(np.float32(1), 1), ValueError,
                    r"split: axis 0 is out of range for x of shape \(\)"),
    "split sections": (lambda: minigrad.split(_t(), [None]), TypeError,
                       r"split: split_size_or_sections"),
    "split sections floats": (lambda: minigrad.split(_t(), [1.5, 1.5]), TypeError,
                              r"split: split_size_or_sections"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_argument_raises_a_named_error(name):
    call, error, message = CASES[name]
    with pytest.raises(error, match=message):
        call()


def test_read_only_running_stats_are_refused_before_anything_runs():
    mean, var = _read_only(3), np.ones(3, np.float32)
    with pytest.raises(ValueError, match="running_mean"):
        F.batch_norm(X4, mean, var, training=True)
    assert (var == 1).all()              # nothing was half-updated
    # evaluation only reads the running statistics: read-only buffers are fine there
    y = F.batch_norm(X4 + 1, _read_only(3), _read_only(3), training=False)
    np.testing.assert_allclose(y.data, 0.0, atol=1e-6)   # (1 - 1) / sqrt(1 + eps)


def test_valid_edge_arguments_still_work():
    scalar = minigrad.tensor(np.float32(2.0), requires_grad=True)
    for axis in (0, -1, None):               # PyTorch: a 0-d tensor accepts axis 0 and -1
        assert scalar.sum(axis=axis).item() == 2.0
        assert scalar.max(axis=axis, keepdims=True).shape == ()
    y = F.gelu(scalar, approximate="tanh")   # 0-d through the tanh approximation
    y.backward()
    assert y.shape == () and scalar.grad.shape == ()
    ints = minigrad.tensor(np.array([1, 5, 9]))
    assert ints.clip(2, 6).dtype == ints.dtype           # integer bounds keep the dtype
    assert _t().clip(max=float("inf")).data.max() == 5.0
    assert (_t() ** 2).data[1, 2] == 25.0
    assert _t().reshape(np.array([3, 2])).shape == (3, 2)
    assert _t().transpose(np.int64(1), np.int64(0)).shape == (3, 2)
    assert [p.shape[1] for p in minigrad.split(_t(), np.array([1, 2]), axis=1)] == [1, 2]
    assert (minigrad.tensor([1.0, 2.0]) < 2).data.tolist() == [True, False]
    assert minigrad.tensor(np.float16(1.0)).dtype == np.float32
    assert minigrad.tensor(1.0, dtype=np.float16).dtype == np.float16
