"""The optimiser base class: parameter groups, ``zero_grad`` and ``state_dict`` (PyTorch's
layout, so a checkpoint can hold it and training resumes exactly)."""
import copy
import numbers

import numpy as np

from ..tensor import Tensor


class Optimizer:
    """Holds ``param_groups`` (dicts with a ``"params"`` list and the hyper-parameters, filled
    from ``defaults``) and per-parameter ``state`` (dicts of arrays and step counts).

    ``params`` is an iterable of tensors that require grad, or of dicts (one parameter group
    each, overriding the defaults). Subclasses implement ``step()``, updating ``p.data`` in
    place from ``p.grad`` (parameters whose grad is None are skipped).
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}
        self.param_groups = []
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of tensors or of "
                            "dicts, got a single Tensor")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group):
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{type(self).__name__}: a parameter group must be a dict with a "
                            "'params' entry")
        group = dict(group)
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__} can only optimise Tensors, got "
                                f"{type(p).__name__}")
            if not p.requires_grad or p.dtype.kind != "f":
                raise ValueError(f"{type(self).__name__}: parameter of shape {p.shape} does not "
                                 "require grad (is it a leaf floating-point tensor?)")
        known = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or known & {id(p) for p in params}:
            raise ValueError(f"{type(self).__name__}: a parameter appears more than once")
        group["params"] = params
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self._check_hyperparameters(group)
        self.param_groups.append(group)

    def _check_hyperparameters(self, group):
        """Subclasses validate a group's values here (raise ValueError naming the argument)."""

    @staticmethod
    def _check_non_negative(group, name, optimizer):
        value = group[name]
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value >= 0:
            raise ValueError(f"{optimizer}: {name} must be a non-negative number, got {value!r}")

    def zero_grad(self, set_to_none=True):
        """Forget the gradients (None, the default, or zero-filled arrays)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad[...] = 0

    def step(self):
        raise NotImplementedError

    def _params_with_grad(self):
        """(group, parameter, its state dict) for every parameter that has a gradient."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    if p.grad.shape != p.shape:
                        raise ValueError(f"{type(self).__name__}: gradient of shape "
                                         f"{p.grad.shape} for a parameter of shape {p.shape}")
                    yield group, p, self.state.setdefault(p, {})

    # -- state ------------------------------------------------------------------------------------
    def state_dict(self):
        """``{"state": {index: {name: array copy or number}}, "param_groups": [{hyper-parameters,
        "params": [indices]}]}``, parameters numbered in group order (PyTorch's layout). Plain
        data only, so ``minigrad.save`` can write it."""
        index, groups = {}, []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            packed["params"] = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                packed["params"].append(index[id(p)])
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if self.state.get(p):
                    state[index[id(p)]] = {k: (np.array(v, copy=True) if isinstance(v, np.ndarray)
                                               else v) for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore hyper-parameters and per-parameter state saved by ``state_dict`` (possibly
        through ``minigrad.save``/``load``). The groups must hold as many parameters as when
        saved; state arrays must match the parameters' shapes. Checked before anything changes."""
        try:
            saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        except (KeyError, TypeError):
            raise ValueError(f"{type(self).__name__}.load_state_dict: expected a dict with "
                             "'state' and 'param_groups'") from None
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{type(self).__name__}.load_state_dict: the checkpoint has "
                             f"{len(saved_groups)} parameter groups, the optimiser "
                             f"{len(self.param_groups)}")
        by_index = {}
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{type(self).__name__}.load_state_dict: parameter group {i} "
                                 f"has {len(saved['params'])} parameters in the checkpoint, "
                                 f"{len(group['params'])} in the optimiser")
            by_index.update(zip((int(k) for k in saved["params"]), group["params"]))
        new_state = {}
        for key, entries in saved_state.items():
            p = by_index.get(int(key))
            if p is None:
                raise ValueError(f"{type(self).__name__}.load_state_dict: state for unknown "
                                 f"parameter index {key}")
            new_state[p] = {}
            for name, value in entries.items():
                if isinstance(value, np.ndarray):
                    if value.shape == p.shape:          # a buffer like the momentum
                        value = np.array(value, dtype=p.dtype, copy=True)
                    elif value.ndim == 0:               # a step count stored as an array
                        value = value.item()
                    else:
                        raise ValueError(f"{type(self).__name__}.load_state_dict: state "
                                         f"{name!r} of parameter {key} has shape {value.shape}, "
                                         f"the parameter {p.shape}")
                new_state[p][name] = value
        for saved, group in zip(saved_groups, self.param_groups):
            for name, value in saved.items():
                if name != "params":
                    group[name] = tuple(value) if isinstance(group.get(name), tuple) else value
        self.state = new_state

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines) + "\n)"
