"""Finite-difference gradient checking (used by every gradient test).

For a random upstream gradient ``v``, the analytic gradient of ``<v, fn(*inputs)>`` with respect
to every input that requires grad is compared, element by element, with the central difference

    (<v, fn(x + eps·e_i)> − <v, fn(x − eps·e_i)>) / (2·eps).
"""
import numpy as np

from .function import no_grad
from .tensor import Tensor


def _outputs(result):
    return result if isinstance(result, (tuple, list)) else (result,)


def _dot(vs, outputs):
    return sum(float(np.sum(v * y.data)) for v, y in zip(vs, outputs))


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Check ``fn``'s analytic gradients against central finite differences.

    ``inputs``: a tensor or a sequence of tensors (float64 for those that require grad; others,
    like integer targets, are passed through). Raises ``AssertionError`` naming the input, the
    element index and both values at the first mismatch beyond ``atol + rtol·|numeric|``;
    returns True otherwise.
    """
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    checked = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} must be float64 for finite differences to be "
                            f"accurate, got {inputs[i].dtype}")

    rng = np.random.default_rng(seed)
    outputs = _outputs(fn(*inputs))
    vs = [rng.standard_normal(y.shape) for y in outputs]

    saved_grads = [inputs[i].grad for i in checked]
    for i in checked:
        inputs[i].grad = None
    total = None
    for v, y in zip(vs, outputs):
        if y.requires_grad:
            term = (y * Tensor(v.astype(y.dtype))).sum()
            total = term if total is None else total + term
    if total is None:
        raise ValueError("gradcheck: no output of fn depends on an input that requires grad")
    total.backward()
    analytic = {i: (inputs[i].grad if inputs[i].grad is not None
                    else np.zeros(inputs[i].shape)) for i in checked}
    for i, g in zip(checked, saved_grads):
        inputs[i].grad = g

    with no_grad():
        for i in checked:
            x = inputs[i].data
            flat = x.reshape(-1)       # a view: perturbations write through to the input
            for k in range(flat.size):
                original = flat[k]
                flat[k] = original + eps
                plus = _dot(vs, _outputs(fn(*inputs)))
                flat[k] = original - eps
                minus = _dot(vs, _outputs(fn(*inputs)))
                flat[k] = original
                numeric = (plus - minus) / (2 * eps)
                a = analytic[i].reshape(-1)[k]
                if not abs(a - numeric) <= atol + rtol * abs(numeric):
                    index = np.unravel_index(k, x.shape)
                    raise AssertionError(
                        f"gradcheck: gradient mismatch for input {i} (shape {x.shape}) at "
                        f"element {tuple(int(j) for j in index)}: analytic {a!r}, "
                        f"numeric {numeric!r}")
    return True
