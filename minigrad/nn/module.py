"""Modules: objects that own parameters and buffers and compute ``forward``, as in PyTorch."""
from collections import OrderedDict

import numpy as np

from ..tensor import Tensor


class Parameter(Tensor):
    """A tensor a Module registers as learnable (requires_grad=True)."""

    __slots__ = ()

    def __init__(self, data, requires_grad=True, dtype=None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)


class Module:
    """Base class of layers. Assigning a Parameter, a Module or (via ``register_buffer``) a
    buffer array to an attribute registers it, in assignment order."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call Module.__init__() before assigning "
                               "attributes")
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name, array):
        """Non-learnable state saved in the state_dict (e.g. BatchNorm running statistics)."""
        self._buffers[name] = None if array is None else np.asarray(array)
        object.__setattr__(self, name, self._buffers[name])

    def _set_buffer(self, name, array):
        self._buffers[name] = array
        object.__setattr__(self, name, array)

    # -- running ------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def train(self, mode=True):
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    # -- traversal ----------------------------------------------------------------------------
    def children(self):
        return iter(self._modules.values())

    def named_children(self):
        return iter(self._modules.items())

    def named_modules(self, prefix=""):
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop(0)
            yield name, module
            stack[0:0] = [((f"{name}.{n}" if name else n), m) for n, m in module._modules.items()]

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_parameters(self):
        seen = set()
        for prefix, module in self.named_modules():
            for name, p in module._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{prefix}.{name}" if prefix else name), p

    def parameters(self):
        return (p for _, p in self.named_parameters())

    def named_buffers(self):
        for prefix, module in self.named_modules():
            for name, b in module._buffers.items():
                if b is not None:
                    yield (f"{prefix}.{name}" if prefix else name), b

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    # -- state ------------------------------------------------------------------------------
    def state_dict(self):
        """Name → numpy array (a copy) for every parameter and buffer."""
        state = OrderedDict((n, p.data.copy()) for n, p in self.named_parameters())
        state.update((n, np.array(b, copy=True)) for n, b in self.named_buffers())
        return state

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays into parameters and buffers by name. With ``strict`` a missing or
        unexpected entry raises KeyError naming it; a wrongly shaped entry always raises
        ValueError naming it. Returns (missing_keys, unexpected_keys)."""
        targets = OrderedDict()
        for prefix, module in self.named_modules():
            for name in module._parameters:
                targets[f"{prefix}.{name}" if prefix else name] = (module, name, "param")
            for name, b in module._buffers.items():
                if b is not None:
                    targets[f"{prefix}.{name}" if prefix else name] = (module, name, "buffer")
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys "
                           f"{unexpected}")
        for key, (module, name, kind) in targets.items():
            if key not in state_dict:
                continue
            value = np.asarray(state_dict[key].data if isinstance(state_dict[key], Tensor)
                               else state_dict[key])
            current = (module._parameters[name].data if kind == "param"
                       else module._buffers[name])
            if value.shape != current.shape:
                raise ValueError(f"load_state_dict: {key} has shape {value.shape} in the "
                                 f"checkpoint but {current.shape} in the model")
            if kind == "param":
                module._parameters[name].data = np.ascontiguousarray(value, dtype=current.dtype)
            else:
                module._set_buffer(name, np.array(value, dtype=current.dtype, copy=True))
        return missing, unexpected

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        return lines[0] + ")" if len(lines) == 1 else "\n".join(lines) + "\n)"

    def extra_repr(self):
        return ""


class Sequential(Module):
    """Modules applied one after another."""

    def __init__(self, *modules):
        super().__init__()
        for i, m in enumerate(modules):
            setattr(self, str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, i):
        return list(self._modules.values())[i]

    def __len__(self):
        return len(self._modules)
