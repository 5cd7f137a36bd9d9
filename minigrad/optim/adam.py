"""Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019), PyTorch's update rules."""
import math
import numbers

import numpy as np

from .optimizer import Optimizer


class Adam(Optimizer):
    """For each parameter p with gradient g, at step t = 1, 2, ...:

        g ← g + weight_decay · p              (Adam: L2 penalty in the gradient)
        p ← p · (1 − lr · weight_decay)       (AdamW instead: decoupled decay)
        m ← β₁ · m + (1 − β₁) · g
        v ← β₂ · v + (1 − β₂) · g²
        p ← p − lr / (1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + eps)

    Per-parameter state: ``"step"`` (t), ``"exp_avg"`` (m), ``"exp_avg_sq"`` (v).
    """

    _decoupled_weight_decay = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay))

    def _check_hyperparameters(self, group):
        name = type(self).__name__
        for key in ("lr", "eps", "weight_decay"):
            self._check_non_negative(group, key, name)
        betas = group["betas"]
        if len(betas) != 2 or not all(isinstance(b, numbers.Real) and 0.0 <= b < 1.0
                                      for b in betas):
            raise ValueError(f"{name}: betas must be two numbers in [0, 1), got {betas!r}")
        group["betas"] = tuple(float(b) for b in betas)

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group, p, state in self._params_with_grad():
            lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
            beta1, beta2 = group["betas"]
            if not state:
                state["step"] = 0
                state["exp_avg"] = np.zeros_like(p.data)
                state["exp_avg_sq"] = np.zeros_like(p.data)
            state["step"] += 1
            t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
            grad = p.grad
            if weight_decay != 0:
                if self._decoupled_weight_decay:
                    p.data *= 1 - lr * weight_decay
                else:
                    grad = np.multiply(p.data, weight_decay, out=np.empty_like(p.data))
                    grad += p.grad
            scratch = np.subtract(grad, m, out=np.empty_like(m))   # m ← m + (1 − β₁)(g − m)
            scratch *= 1 - beta1
            m += scratch
            np.multiply(grad, grad, out=scratch)                # v ← β₂ v + (1 − β₂) g²
            scratch *= 1 - beta2
            v *= beta2
            v += scratch
            step_size = lr / (1 - beta1 ** t)
            np.sqrt(v, out=scratch)                             # denominator, in place
            scratch /= math.sqrt(1 - beta2 ** t)
            scratch += eps
            np.divide(m, scratch, out=scratch)
            scratch *= step_size
            p.data -= scratch
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay (default 0.01): p ← p · (1 − lr · weight_decay) before
    the Adam update, instead of adding weight_decay · p to the gradient."""

    _decoupled_weight_decay = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)
