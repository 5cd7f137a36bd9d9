"""Stochastic gradient descent with momentum, PyTorch's update rule."""
import numpy as np

from .optimizer import Optimizer


class SGD(Optimizer):
    """For each parameter p with gradient g (PyTorch's rule, step t):

        g ← g + weight_decay · p
        b ← g                                   at the first step with momentum
        b ← momentum · b + (1 − dampening) · g  afterwards
        g ← g + momentum · b  (nesterov)   or   g ← b
        p ← p − lr · g

    The momentum buffer ``b`` is the per-parameter state ``"momentum_buffer"``.
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _check_hyperparameters(self, group):
        for name in ("lr", "momentum", "dampening", "weight_decay"):
            self._check_non_negative(group, name, "SGD")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: nesterov momentum needs momentum > 0 and dampening = 0")

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group, p, state in self._params_with_grad():
            lr, momentum, weight_decay = group["lr"], group["momentum"], group["weight_decay"]
            direction = p.grad
            owned = False           # may `direction` be overwritten (is it our temporary)?
            if weight_decay != 0:
                direction = np.multiply(p.data, weight_decay, out=np.empty_like(p.data))
                direction += p.grad
                owned = True
            if momentum != 0:
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = np.array(direction, dtype=p.dtype, copy=True)
                else:
                    buf *= momentum
                    dampening = group["dampening"]
                    buf += direction if dampening == 0 else (1 - dampening) * direction
                if group["nesterov"]:
                    if not owned:
                        direction = direction.copy()
                    direction += momentum * buf
                    owned = True
                else:
                    direction, owned = buf, False
            if owned:
                direction *= lr
                p.data -= direction
            else:
                p.data -= lr * direction
        return loss
