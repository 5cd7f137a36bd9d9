"""Modules: objects that own parameters and buffers and compute ``forward``, as in PyTorch.

Assigning a ``Parameter`` or a ``Module`` to an attribute registers it (in assignment order);
``register_buffer`` registers non-learnable state (BatchNorm's running statistics). The
``state_dict`` names every parameter and buffer by its dotted path (``"block.0.weight"``).
Forward hooks (``register_forward_pre_hook``, ``register_forward_hook``) observe or change a
module's inputs and output without subclassing it; they are not part of the state_dict.
"""
from collections import OrderedDict, namedtuple
from collections.abc import Mapping

import numpy as np

from ..hooks import RemovableHandle
from ..tensor import Tensor


class Parameter(Tensor):
    """A tensor a Module registers as learnable (requires_grad=True)."""

    __slots__ = ()

    def __init__(self, data, requires_grad=True, dtype=None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)


#: what ``load_state_dict`` returns (PyTorch's field names)
IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _join(prefix, name):
    return f"{prefix}.{name}" if prefix else name


def _as_buffer(value, name):
    """A buffer is a numpy array (a Tensor contributes its data) or None."""
    if value is None:
        return None
    array = value.data if isinstance(value, Tensor) else np.asarray(value)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"buffer {name!r} must be a numeric array, got dtype {array.dtype}")
    return array


class Module:
    """Base class of layers (see the module docstring). Subclasses call ``super().__init__()``
    first, then assign their parameters, sub-modules and buffers, and define ``forward``."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setstate__(self, state):
        # A module pickled before forward hooks existed has no hook tables: give it empty ones.
        self.__dict__.update(state)
        for name in ("_forward_pre_hooks", "_forward_hooks"):
            if name not in self.__dict__:
                object.__setattr__(self, name, OrderedDict())

    # -- registration ---------------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call Module.__init__() before assigning "
                               "attributes")
        if isinstance(value, Parameter):
            self._unregister(name)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._unregister(name)
            self._modules[name] = value
        elif name in self._buffers:
            # Assigning to a buffer updates it (as PyTorch does) instead of unregistering it.
            value = self._buffers[name] = _as_buffer(value, name)
        elif name in self._parameters and isinstance(value, Tensor):
            raise TypeError(f"cannot assign a plain Tensor to parameter {name!r} of "
                            f"{type(self).__name__}: wrap it in Parameter (or assign None)")
        else:
            self._unregister(name)
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._unregister(name)
        object.__delattr__(self, name)

    def _unregister(self, name):
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)

    def register_parameter(self, name, param):
        """Register ``param`` (a Parameter, or None for "no such parameter") under ``name``."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, got "
                            f"{type(param).__name__}")
        setattr(self, name, param)

    def add_module(self, name, module):
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module or None, got "
                            f"{type(module).__name__}")
        setattr(self, name, module)

    def register_buffer(self, name, array):
        """Non-learnable state saved in the state_dict (e.g. BatchNorm running statistics).
        ``None`` registers the name without state (left out of the state_dict)."""
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"register_buffer: name must be a non-empty string without '.', got "
                             f"{name!r}")
        if name in self._parameters or name in self._modules:
            raise KeyError(f"register_buffer: {name!r} is already a parameter or sub-module of "
                           f"{type(self).__name__}")
        self._buffers[name] = _as_buffer(array, name)
        object.__setattr__(self, name, self._buffers[name])

    # -- running ------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        if self._forward_pre_hooks or self._forward_hooks:
            return self._call_with_hooks(args, kwargs)
        return self.forward(*args, **kwargs)

    def _call_with_hooks(self, args, kwargs):
        # Iterate over copies, so that a hook may remove itself (or register another) safely.
        for hook in tuple(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        output = self.forward(*args, **kwargs)
        for hook in tuple(self._forward_hooks.values()):
            result = hook(self, args, output)
            if result is not None:
                output = result
        return output

    @staticmethod
    def _add_hook(hooks, hook, method):
        if not callable(hook):
            raise TypeError(f"{method}: hook must be callable, got {type(hook).__name__}")
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        return handle

    def register_forward_pre_hook(self, hook):
        """Call ``hook(module, args)`` before every ``forward`` of this module.

        ``args`` is the tuple of positional arguments (keyword arguments go to ``forward``
        unchanged). If the hook returns something other than None, that replaces ``args`` (a
        value that is not a tuple is wrapped into a 1-tuple), and the next hook sees it. Hooks
        run in registration order; they are not saved in the state_dict.

        Args:
            hook: a callable ``hook(module, args) -> None or new args``.

        Returns:
            a ``RemovableHandle``; its ``remove()`` unregisters the hook.

        Example::

            def clip_input(module, args):
                return args[0].clip(-1.0, 1.0)

            with model.register_forward_pre_hook(clip_input):
                y = model(x)          # model.forward(x.clip(-1.0, 1.0))
        """
        return self._add_hook(self._forward_pre_hooks, hook, "register_forward_pre_hook")

    def register_forward_hook(self, hook):
        """Call ``hook(module, args, output)`` after every ``forward`` of this module.

        ``args`` is the tuple of positional arguments ``forward`` received (after any pre-hook
        replaced them). If the hook returns something other than None, that replaces the output
        (the next hook, and the caller, see it). Hooks run in registration order; they are not
        saved in the state_dict.

        Args:
            hook: a callable ``hook(module, args, output) -> None or new output``.

        Returns:
            a ``RemovableHandle``; its ``remove()`` unregisters the hook.

        Example::

            shapes = []

            def record(module, args, output):
                shapes.append(output.shape)

            handles = [m.register_forward_hook(record) for m in model.children()]
            try:
                model(x)              # shapes: each child's output shape, in call order
            finally:
                for h in handles:
                    h.remove()
        """
        return self._add_hook(self._forward_hooks, hook, "register_forward_hook")

    def train(self, mode=True):
        """Training mode (``mode=True``) or evaluation mode for this module and all below it."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        """Freeze (False) or unfreeze every parameter."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def apply(self, fn):
        """Call ``fn(m)`` on every sub-module, children before parents (as PyTorch), e.g. for
        custom initialisation."""
        for m in reversed(list(self.modules())):
            fn(m)
        return self

    def to(self, dtype):
        """Cast floating-point parameters (and their gradients) and buffers to ``dtype``
        (e.g. float64 for a gradient check); Parameter objects stay the same."""
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"to: dtype must be float32 or float64, got {dtype}")
        for m in self.modules():
            for p in m._parameters.values():
                p.data = np.ascontiguousarray(p.data, dtype=dtype)
                if p.grad is not None:
                    p.grad = p.grad.astype(dtype)
            for name, b in m._buffers.items():
                if b is not None and b.dtype.kind == "f":
                    m._buffers[name] = b.astype(dtype)
                    object.__setattr__(m, name, m._buffers[name])
        return self

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    # -- traversal ----------------------------------------------------------------------------
    def children(self):
        return (m for _, m in self.named_children())

    def named_children(self):
        return ((n, m) for n, m in self._modules.items() if m is not None)

    def named_modules(self, prefix=""):
        """(dotted name, module) for this module and every module below it, depth first in
        registration order; a module reachable twice is listed once."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            stack.extend(reversed([(_join(name, n), m) for n, m in module.named_children()]))

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_parameters(self, prefix=""):
        """(dotted name, parameter) pairs; a parameter shared by several modules is listed
        once."""
        seen = set()
        for module_prefix, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield _join(module_prefix, name), p

    def parameters(self):
        return (p for _, p in self.named_parameters())

    def named_buffers(self, prefix=""):
        for module_prefix, module in self.named_modules(prefix):
            for name, b in module._buffers.items():
                if b is not None:
                    yield _join(module_prefix, name), b

    def buffers(self):
        return (b for _, b in self.named_buffers())

    def zero_grad(self):
        """Forget every parameter's gradient (set it to None, PyTorch's default)."""
        for p in self.parameters():
            p.grad = None

    # -- state ----------------------------------------------------------------------------------
    def _state_entries(self, prefix=""):
        """(key, module, name, is_parameter) for every state_dict entry: per module its
        parameters then its non-None buffers, depth first. Like PyTorch, a shared parameter or
        module appears under each of its names."""
        stack = [(prefix, self)]
        while stack:
            module_prefix, module = stack.pop()
            for name in module._parameters:
                yield _join(module_prefix, name), module, name, True
            for name, b in module._buffers.items():
                if b is not None:
                    yield _join(module_prefix, name), module, name, False
            stack.extend(reversed([(_join(module_prefix, n), m)
                                   for n, m in module.named_children()]))

    @staticmethod
    def _entry_array(module, name, is_parameter):
        return module._parameters[name].data if is_parameter else module._buffers[name]

    def state_dict(self):
        """Ordered name → numpy array for every parameter and buffer. The arrays are copies, so
        the dict is a snapshot that later training steps do not change."""
        return OrderedDict((key, np.array(self._entry_array(m, n, is_p), copy=True))
                           for key, m, n, is_p in self._state_entries())

    def load_state_dict(self, state_dict, strict=True):
        """Copy the arrays of ``state_dict`` into the parameters and buffers of the same name.

        Everything is checked before anything is copied, so a refused checkpoint leaves the
        model unchanged. A missing or unexpected key raises KeyError naming it when ``strict``;
        with ``strict=False`` they are skipped and reported. A wrongly shaped (ValueError) or
        wrongly typed (TypeError) entry always raises, naming the key. Returns
        ``IncompatibleKeys(missing_keys, unexpected_keys)``.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict: expected a mapping of names to arrays, got "
                            f"{type(state_dict).__name__}")
        entries = list(self._state_entries())
        known = {key for key, *_ in entries}
        missing = [key for key, *_ in entries if key not in state_dict]
        unexpected = [key for key in state_dict if key not in known]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict into {type(self).__name__}: missing keys {missing}, "
                           f"unexpected keys {unexpected}")
        copies, mismatched = [], []
        for key, module, name, is_parameter in entries:
            if key not in state_dict:
                continue
            value = state_dict[key]
            value = np.asarray(value.data if isinstance(value, Tensor) else value)
            target = self._entry_array(module, name, is_parameter)
            if value.dtype.kind not in "fiub" or not np.can_cast(value.dtype, target.dtype,
                                                                 "same_kind"):
                raise TypeError(f"load_state_dict: entry {key!r} has dtype {value.dtype}, which "
                                f"cannot be loaded into the model's {target.dtype}")
            if value.shape != target.shape:
                mismatched.append(f"{key!r}: checkpoint shape {value.shape}, model shape "
                                  f"{target.shape}")
            copies.append((target, value))
        if mismatched:
            raise ValueError("load_state_dict: shape mismatch for " + "; ".join(mismatched))
        for target, value in copies:
            np.copyto(target, value, casting="same_kind")
        return IncompatibleKeys(missing, unexpected)

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, m in self.named_children():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child}")
        return lines[0] + ")" if len(lines) == 1 else "\n".join(lines) + "\n)"

    def extra_repr(self):
        return ""


class Sequential(Module):
    """Modules applied one after another; indexable (a slice gives a Sequential)."""

    def __init__(self, *modules):
        super().__init__()
        for i, m in enumerate(modules):
            self.add_module(str(i), m)

    def forward(self, x):
        for m in self._modules.values():     # not children(): two generators per module
            if m is not None:
                x = m(x)
        return x

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def __getitem__(self, index):
        modules = list(self.children())
        if isinstance(index, slice):
            return Sequential(*modules[index])
        return modules[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return self.children()
