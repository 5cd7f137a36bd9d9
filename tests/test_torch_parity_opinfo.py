"""PyTorch's own test samples through minigrad: every OpInfo entry of PyTorch's operator
database (``torch.testing._internal.common_methods_invocations.op_db``) whose op minigrad
shares is run sample by sample, float64, through minigrad's function of the same meaning
(``SHARED`` maps the OpInfo name to it); the forward result, the gradient of every input that
requires one, and the in-place updates of the inputs (batch_norm's running statistics) must
equal PyTorch's (relative 1e-6).

A sample may instead be refused on purpose: ``REFUSED`` lists each kind with the reason and
the words its error message must contain. Anything else that raises, and any sample a
``REFUSED`` rule expects to be refused that runs, fails. OpInfo names that minigrad also uses
for another meaning are in ``NOT_SHARED`` with the reason.

Skips without torch (CI installs none) and without ``expecttest``, which PyTorch's test
package imports.
"""
import functools

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: the OpInfo parity "
                            "tests compare against it")
pytest.importorskip("expecttest", reason="PyTorch's OpInfo database (torch.testing._internal) "
                    "imports expecttest: pip install expecttest")
from torch.testing._internal.common_methods_invocations import op_db  # noqa: E402

import minigrad  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402
from minigrad.ops import arithmetic, math as math_ops  # noqa: E402

RTOL, ATOL = 1e-6, 1e-10


def _method(name):
    """The Tensor method ``name`` as a function of (input, *args, **kwargs)."""
    return lambda x, *args, **kwargs: getattr(x, name)(*args, **kwargs)


#: The ops of issue 14 (their samples must match at least 97 %, the rest refused on purpose).
ISSUE_OPS = {
    "nn.functional.conv2d": F.conv2d, "nn.functional.max_pool2d": F.max_pool2d,
    "nn.functional.avg_pool2d": F.avg_pool2d,
    "nn.functional.adaptive_avg_pool2d": F.adaptive_avg_pool2d,
    "nn.functional.adaptive_max_pool2d": F.adaptive_max_pool2d,
    "nn.functional.relu": F.relu, "nn.functional.leaky_relu": F.leaky_relu,
    "nn.functional.elu": F.elu, "nn.functional.selu": F.selu, "nn.functional.silu": F.silu,
    "nn.functional.gelu": F.gelu, "nn.functional.prelu": F.prelu, "sigmoid": F.sigmoid,
    "tanh": F.tanh, "softmax": F.softmax, "log_softmax": F.log_softmax,
    "nn.functional.linear": F.linear, "nn.functional.cross_entropy": F.cross_entropy,
    "nn.functional.nll_loss": F.nll_loss, "nn.functional.mse_loss": F.mse_loss,
    "nn.functional.batch_norm": F.batch_norm, "cat": minigrad.cat, "stack": minigrad.stack,
    "sum": _method("sum"), "mean": _method("mean"),
}

#: OpInfo name ("name/variant") → minigrad's function of the same meaning.
SHARED = dict(ISSUE_OPS, **{
    "softmax/with_dtype": F.softmax, "log_softmax/with_dtype": F.log_softmax,
    "nn.functional.batch_norm/without_cudnn": F.batch_norm,
    "amax": _method("max"), "max/reduction_no_dim": _method("max"),
    "split": minigrad.split, "split/list_args": minigrad.split,
    "reshape": _method("reshape"), "permute": _method("permute"),
    "flatten": _method("flatten"), "__getitem__": _method("__getitem__"),
    "add": arithmetic.add, "sub": arithmetic.sub, "mul": arithmetic.mul,
    "div/no_rounding_mode": arithmetic.div, "neg": arithmetic.neg, "pow": arithmetic.pow,
    "matmul": arithmetic.matmul, "abs": math_ops.abs, "exp": math_ops.exp,
    "log": math_ops.log, "sqrt": math_ops.sqrt, "clamp": math_ops.clip,
})

#: OpInfo names minigrad uses with another meaning, or ops it has that cannot be compared.
NOT_SHARED = {
    "transpose": "minigrad's Tensor.transpose is numpy's (a permutation of every axis); "
                 "PyTorch's swaps two axes (minigrad: permute)",
    "max/reduction_with_dim": "PyTorch returns (values, indices); minigrad's max returns the "
                              "values, as torch.amax (compared as 'amax')",
    "nn.functional.dropout": "random masks: minigrad's generator is not PyTorch's",
}


def _is_tensor(value):
    return isinstance(value, torch.Tensor) and value.is_floating_point() and value.ndim > 0


#: Samples refused on purpose: (OpInfo name, which samples, words of the error, why).
REFUSED = [
    ("cat", lambda s: len({t.ndim for t in s.input}) > 1, "same number",
     "PyTorch's legacy rule lets a 1-D empty tensor join tensors of any shape; minigrad joins "
     "tensors of equal dimensionality"),
    ("nn.functional.batch_norm", lambda s: s.input.ndim < 2, r"\(N, C, \*\)",
     "a 1-D input has no channel axis (PyTorch returns an empty result for this (0,) input)"),
    ("nn.functional.batch_norm/without_cudnn", lambda s: s.input.ndim < 2, r"\(N, C, \*\)",
     "as nn.functional.batch_norm"),
    ("add", lambda s: "alpha" in s.kwargs, "alpha", "alpha= is not supported: write a + alpha·b"),
    ("sub", lambda s: "alpha" in s.kwargs, "alpha", "alpha= is not supported: write a − alpha·b"),
    ("clamp", lambda s: any(isinstance(a, torch.Tensor) for a in s.args), "real number",
     "clip takes number bounds, not tensors"),
    ("pow", lambda s: any(isinstance(a, torch.Tensor) for a in s.args), "real number",
     "the exponent is a number, not a tensor"),
]


def _refusal(name, sample):
    for op_name, applies, words, _ in REFUSED:
        if op_name == name and applies(sample):
            return words
    return None


def _entries():
    """{OpInfo name: entry} for the shared ops, with the names op_db has."""
    entries = {}
    for op in op_db:
        name = op.name + (f"/{op.variant_test_name}" if op.variant_test_name else "")
        if name in SHARED:
            entries[name] = op
    return entries


ENTRIES = _entries()
DTYPES = {torch.float64: np.float64, torch.float32: np.float32}


@pytest.fixture(scope="module", autouse=True)
def one_thread_each():
    """Threads on these tiny tensors cost milliseconds per call (PyTorch's and minigrad's
    share one OpenMP runtime and wait on each other's spinning workers); one thread each keeps
    the module fast. The threaded kernels are compared with PyTorch in the op test files."""
    threads = torch.get_num_threads(), minigrad.get_num_threads()
    torch.set_num_threads(1)
    minigrad.set_num_threads(1)
    yield
    torch.set_num_threads(threads[0])
    minigrad.set_num_threads(threads[1])


@functools.lru_cache(maxsize=None)
def _samples(name):
    """The OpInfo samples of ``name``, made once per session (each test only reads them; a
    comparison copies every tensor before PyTorch's op updates one in place)."""
    return tuple(ENTRIES[name].sample_inputs("cpu", torch.float64, requires_grad=True))


def _to_minigrad(value, pairs):
    """The sample's value with every torch tensor copied into a minigrad tensor (recording
    (torch tensor, minigrad tensor) pairs) and torch dtypes as numpy's."""
    if isinstance(value, torch.Tensor):
        converted = minigrad.Tensor(value.detach().numpy().copy(),
                                    requires_grad=value.requires_grad)
        pairs.append((value, converted))
        return converted
    if isinstance(value, (list, tuple)):
        return type(value)(_to_minigrad(v, pairs) for v in value)
    return DTYPES.get(value, value) if isinstance(value, torch.dtype) else value


def _flat(outputs):
    if isinstance(outputs, (list, tuple)):
        return [y for x in outputs for y in _flat(x)]
    return [outputs]


def _close(mine, theirs, what):
    mine = np.asarray(mine.data if isinstance(mine, minigrad.Tensor) else mine)
    theirs = theirs.detach().numpy()
    assert mine.shape == theirs.shape, f"{what}: shape {mine.shape}, PyTorch {theirs.shape}"
    np.testing.assert_allclose(mine, theirs, rtol=RTOL, atol=ATOL, err_msg=what)


def _compare(name, sample, rng):
    """Run one sample through both; AssertionError on any difference."""
    pairs = []
    args = _to_minigrad(sample.args, pairs)
    kwargs = {k: _to_minigrad(v, pairs) for k, v in sample.kwargs.items()}
    x = _to_minigrad(sample.input, pairs)
    theirs = _flat(ENTRIES[name].op(sample.input, *sample.args, **sample.kwargs))
    mine = _flat(SHARED[name](x, *args, **kwargs))
    assert len(mine) == len(theirs), f"{len(mine)} outputs, PyTorch {len(theirs)}"
    for i, (m, t) in enumerate(zip(mine, theirs)):
        _close(m, t, f"output {i}")
    for t, m in pairs:                  # in-place updates (running statistics)
        _close(m, t, "input after the call")
    leaves = [(t, m) for t, m in pairs if t.requires_grad]
    outputs = [(m, t) for m, t in zip(mine, theirs)
               if isinstance(t, torch.Tensor) and t.requires_grad]
    if not leaves or not outputs:
        return
    cotangents = [rng.standard_normal(tuple(t.shape)) for _, t in outputs]
    expected = torch.autograd.grad([t for _, t in outputs], [t for t, _ in leaves],
                                   [torch.from_numpy(c) for c in cotangents], allow_unused=True)
    total = sum((m * minigrad.Tensor(c)).sum() for (m, _), c in zip(outputs, cotangents))
    total.backward()
    for i, ((t, m), g) in enumerate(zip(leaves, expected)):
        grad = m.grad if m.grad is not None else np.zeros(m.shape)
        _close(grad, g if g is not None else torch.zeros(m.shape, dtype=torch.float64),
               f"gradient of input {i}")


def _describe(sample):
    def short(v):
        if isinstance(v, torch.Tensor):
            return f"tensor{tuple(v.shape)}"
        if isinstance(v, (list, tuple)):
            return type(v)(short(x) for x in v)
        return v
    return f"input {short(sample.input)}, args {short(sample.args)}, kwargs " \
           f"{ {k: short(v) for k, v in sample.kwargs.items()} }"


@pytest.mark.parametrize("name", sorted(SHARED))
def test_opinfo_samples_match_pytorch_or_are_refused_on_purpose(name):
    assert name in ENTRIES, f"PyTorch's op_db has no OpInfo {name!r} any more"
    rng = np.random.default_rng(0)
    problems = []
    for sample in _samples(name):
        words = _refusal(name, sample)
        try:
            if words is None:
                _compare(name, sample, rng)
            else:
                with pytest.raises((TypeError, ValueError), match=words):
                    _compare(name, sample, rng)
        except (AssertionError, pytest.fail.Exception, TypeError, ValueError) as e:
            problems.append(f"{_describe(sample)}: {type(e).__name__}: {str(e)[:300]}")
    assert not problems, f"{len(problems)} samples of {name}:\n" + "\n".join(problems[:10])


def test_at_least_97_percent_of_the_issue_ops_samples_match():
    total = refused = 0
    for name in ISSUE_OPS:
        for sample in _samples(name):
            total += 1
            refused += _refusal(name, sample) is not None
    assert total > 1500, f"only {total} OpInfo samples: has op_db changed?"
    assert refused <= 0.03 * total, f"{refused} of {total} samples refused"


def test_every_refusal_rule_and_exclusion_is_used():
    """A rule that no sample needs any more (PyTorch changed its samples, or minigrad learnt
    the case) is removed, so the list stays the list of what is unsupported."""
    for op_name, applies, _, reason in REFUSED:
        assert any(applies(s) for s in _samples(op_name)), f"unused rule for {op_name}: {reason}"
    names = {op.name + (f"/{op.variant_test_name}" if op.variant_test_name else "")
             for op in op_db}
    assert set(NOT_SHARED) <= names
    assert not set(NOT_SHARED) & set(SHARED)
