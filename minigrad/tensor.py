"""The Tensor: a numpy array plus the link to the op that made it, and the backward graph walk.

The bottom of minigrad's layers: this module imports no op and not ``Function``.
``minigrad.function`` builds on it (an op call makes Tensors), and ``minigrad.ops`` binds the
operators and the methods that run an op (``+``, ``sum``, ``reshape``, ``astype``, ...) onto
Tensor when it is imported (which ``import minigrad`` does).
"""
import numbers
import sys
from collections import OrderedDict

import numpy as np

from ._autograd_state import state as _state
from .hooks import RemovableHandle
from ._validate import as_dtype, check_float
from ._validate import flag as check_flag   # requires_grad_ has an argument named flag

_FLOAT_TYPES = (np.float32, np.float64)
_NUMERIC_KINDS = "biufc"   # bool, signed/unsigned int, float, complex


def _as_array(data, dtype=None):
    """numpy array for ``data``: Python floats and lists become float32 (the default), numpy
    float32/float64 arrays keep their dtype, other floats become float32, integers stay integers.
    TypeError/ValueError for data that is not numeric (None, strings, objects, ragged lists)."""
    if isinstance(data, Tensor):
        data = data.data
    if data is None:                   # np.asarray(None, float32) would be NaN
        raise TypeError("cannot make a tensor from None")
    if dtype is not None:
        dtype = as_dtype(dtype, "tensor")
    try:
        array = np.asarray(data, dtype=dtype)   # keeps 0-d arrays 0-d
    except (ValueError, OverflowError) as e:   # ragged lists, text, numbers too large for dtype
        raise ValueError(f"cannot make a tensor from {_short_repr(data)}: {e}") from None
    except TypeError as e:             # e.g. an arbitrary object with a numeric dtype=
        raise TypeError(f"cannot make a tensor from data of type {type(data).__name__}: "
                        f"{e}") from None
    if array.dtype.kind == "O" and isinstance(data, numbers.Number):
        raise ValueError(f"cannot make a tensor from {_short_repr(data)}: too large for a 64-bit "
                         "number")
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(f"cannot make a tensor from data of type {type(data).__name__} "
                        f"(dtype {array.dtype}): a tensor holds numbers or bools")
    if dtype is None and array.dtype.kind == "f" and (
            array.dtype not in _FLOAT_TYPES or not isinstance(data, (np.ndarray, np.generic))):
        # float16/longdouble, and Python floats / lists of floats: the float32 default
        array = array.astype(np.float32)
    return np.asarray(array, order="C")


def _short_repr(value):
    text = repr(value) if not isinstance(value, np.ndarray) else f"an array of shape {value.shape}"
    return text if len(text) <= 40 else text[:37] + "..."


class Tensor:
    """An n-dimensional array with reverse-mode automatic differentiation.

    ``data`` is a C-contiguous numpy array (float32 by default, float64 for gradient checks);
    ``grad`` is filled by ``backward()`` on tensors that require it.
    """

    __slots__ = ("data", "grad", "_requires_grad", "_creator", "_output_index", "_grad_hooks",
                 "__weakref__")
    __array_priority__ = 1000   # make ``ndarray op Tensor`` call Tensor's reflected operator

    def __init__(self, data, requires_grad=False, dtype=None):
        self.data = _as_array(data, dtype)
        self.grad = None
        self._creator = None
        self._requires_grad = self._grad_flag(requires_grad, "requires_grad", "tensor")
        self._output_index = 0
        self._grad_hooks = None

    @classmethod
    def _from_op(cls, data, creator, index):
        out = cls.__new__(cls)
        out.data = data if data.flags.c_contiguous else np.ascontiguousarray(data)
        out.grad = None
        out._requires_grad = creator is not None
        out._creator = creator
        out._output_index = index
        out._grad_hooks = None
        return out

    # -- basic attributes --------------------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    is_leaf = property(lambda self: self._creator is None)

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        grad = ", requires_grad=True" if self.requires_grad else ""
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        return f"tensor({body}, dtype={self.dtype}{grad})"

    def numpy(self):
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item: only a one-element tensor converts to a Python scalar, got "
                             f"a tensor of shape {self.shape}")
        return self.data.item()

    def detach(self):
        """A new leaf sharing this tensor's data, outside the graph."""
        return Tensor._from_op(self.data, None, 0)

    @property
    def requires_grad(self):
        """Whether backward computes a gradient for this tensor (``.grad`` for a leaf)."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        self._set_requires_grad(value, "requires_grad")

    def requires_grad_(self, flag=True):
        """Set ``requires_grad`` in place and return the tensor. Only a leaf's flag can change
        (as in PyTorch): an op's output requires grad because its inputs do; use ``detach()``
        to take it out of the graph."""
        self._set_requires_grad(flag, "requires_grad_")
        return self

    def _set_requires_grad(self, value, op_name):
        value = self._grad_flag(value, "flag" if op_name == "requires_grad_" else "value",
                                op_name)
        if self._creator is not None and value != self._requires_grad:
            raise RuntimeError(
                f"{op_name}: only a leaf tensor's requires_grad can change; this tensor is the "
                f"output of {type(self._creator).__name__}. Use .detach() for a copy outside "
                "the graph")
        self._requires_grad = value

    def _grad_flag(self, value, name, op_name):
        """``value`` (the argument ``name``) as a bool; only a float tensor may require grad."""
        value = check_flag(value, name, op_name)
        if value and self.data.dtype.kind != "f":
            raise TypeError(f"{op_name}: only a floating-point tensor can require grad, got a "
                            f"tensor of dtype {self.data.dtype}")
        return value

    def zero_grad(self):
        self.grad = None

    # -- backward ----------------------------------------------------------------------------
    def backward(self, grad=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) · grad into the ``.grad`` of every leaf that requires it.

        The graph is walked in reverse topological order without recursion. Unless
        ``retain_graph`` is true, each op's saved buffers are freed once it has run backward.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad "
                               "(no input of the computation had requires_grad=True)")
        grad = self._initial_grad(grad)
        if self._creator is None:
            self._accumulate(grad)
            self._run_grad_hooks()
            return
        order = _topological_order(self._creator)
        # How many gradients each hooked leaf still receives: its hooks run after the last.
        hooked = _hooked_leaf_uses(order) if _leaf_hooks_registered else None
        pending = {self._creator: [None] * len(self._creator.output_meta)}
        pending[self._creator][self._output_index] = grad
        backward_hook = _state.anomaly_backward
        for fn in order:
            # every op in ``order`` feeds an input that needed a gradient, so it has one pending
            grad_outputs = [g if g is not None else np.zeros(shape, dtype)
                            for g, (shape, dtype) in zip(pending.pop(fn), fn.output_meta)]
            grad_inputs = fn.backward(*grad_outputs)
            if not isinstance(grad_inputs, tuple):
                grad_inputs = (grad_inputs,)
            if len(grad_inputs) != len(fn.inputs):
                raise RuntimeError(f"{type(fn).__name__}.backward returned {len(grad_inputs)} "
                                   f"gradients for {len(fn.inputs)} inputs")
            if backward_hook is not None:
                backward_hook(fn, grad_inputs)
            for i, (x, gx, needed) in enumerate(zip(fn.inputs, grad_inputs,
                                                    fn.needs_input_grad)):
                if not needed:
                    continue
                if gx is None:
                    raise RuntimeError(f"{type(fn).__name__}.backward returned None for input "
                                       f"{i} (shape {x.shape}), which needs a gradient")
                gx = np.asarray(gx)
                if gx.shape != x.shape:
                    raise RuntimeError(f"{type(fn).__name__}.backward returned a gradient of "
                                       f"shape {gx.shape} for an input of shape {x.shape}")
                if x._creator is None:
                    owned = sys.getrefcount(gx) <= _UNSHARED_REFS   # before gx is an argument
                    x._accumulate(gx, owned)
                    if hooked and x in hooked:
                        hooked[x] -= 1
                        if not hooked[x]:
                            x._run_grad_hooks()
                else:
                    slots = pending.setdefault(x._creator, [None] * len(x._creator.output_meta))
                    i = x._output_index
                    slots[i] = gx if slots[i] is None else slots[i] + gx
            if not retain_graph:
                fn.release()
                fn.inputs = ()

    def _initial_grad(self, grad):
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() without a gradient needs a single-element "
                                   f"output, got shape {self.shape}; pass grad=")
            return np.ones_like(self.data)
        grad = as_tensor(grad, name="grad", op_name="backward").data
        if grad.dtype.kind != "f":
            raise TypeError(f"backward: grad must be a floating-point array, got dtype "
                            f"{grad.dtype}")
        if grad.shape != self.shape:
            raise ValueError(f"backward: grad has shape {grad.shape} but the tensor has shape "
                             f"{self.shape}")
        return grad.astype(self.dtype, copy=False)

    def _accumulate(self, gx, owned=False):
        """Add gx to ``.grad``. A first gradient is kept as it is only when ``owned`` (no one
        else references it, and it is no view, or all of an array no one else references:
        ``_whole_view``); otherwise it is copied, since ops may hand the same array to
        several inputs (Add) or pass the caller's gradient through."""
        if not self.requires_grad:
            return
        owned = owned and gx.dtype == self.dtype and (gx.base is None or _whole_view(gx))
        gx = gx.astype(self.dtype, copy=False)
        if self.grad is None:
            self.grad = gx if owned else np.array(gx, copy=True)
        else:
            self.grad = self.grad + gx      # out of place: the old array may be shared

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(tensor)`` on this leaf each time a ``backward()`` has finished
        accumulating into its ``.grad`` (PyTorch's name and semantics): once per backward that
        reaches it, after its last gradient, however many ops use the leaf. The hook may read
        or replace ``.grad``; what it returns is ignored. Hooks run in registration order and
        are not part of a state_dict.

        Args:
            hook: a callable ``hook(tensor) -> None``.

        Returns:
            a ``RemovableHandle``; its ``remove()`` unregisters the hook.

        Example::

            w = minigrad.tensor([1.0, 2.0], requires_grad=True)
            w.register_post_accumulate_grad_hook(lambda t: print(t.grad))
            ((w * w).sum() + w.sum()).backward()     # prints [3. 5.] once
        """
        global _leaf_hooks_registered
        if self._creator is not None:
            raise RuntimeError("register_post_accumulate_grad_hook: only a leaf tensor "
                               "accumulates a gradient; this one is the output of "
                               f"{type(self._creator).__name__}")
        if not callable(hook):
            raise TypeError(f"register_post_accumulate_grad_hook: hook must be callable, got "
                            f"{type(hook).__name__}")
        if self._grad_hooks is None:
            self._grad_hooks = OrderedDict()
        handle = RemovableHandle(self._grad_hooks)
        self._grad_hooks[handle.id] = hook
        _leaf_hooks_registered = True
        return handle

    def _run_grad_hooks(self):
        if self._grad_hooks:
            for hook in tuple(self._grad_hooks.values()):   # a hook may remove itself
                hook(self)

    # Operators and methods that run an op (``+``, ``sum``, ``reshape``, ``astype``, ...) are
    # bound onto Tensor by minigrad.ops, so that this module imports no op.
    __hash__ = object.__hash__

def tensor(data, requires_grad=False, dtype=None):
    """Make a tensor (float32 by default; numpy float64 data stays float64)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def as_tensor(x, like=None, name=None, op_name=None):
    """``x`` itself if it is a Tensor, else a constant tensor; a Python number takes the dtype of
    ``like`` so that ``float32_tensor * 2`` stays float32.

    ``name`` and ``op_name`` (the argument's name in the signature of the op being called) make
    a failed conversion say which argument it was: "conv2d: weight must be array-like ...".
    """
    if isinstance(x, Tensor):
        return x
    try:
        if isinstance(x, numbers.Number) and like is not None and like.dtype.kind == "f":
            return Tensor(x, dtype=like.dtype)
        return Tensor(x)
    except (TypeError, ValueError) as e:
        if name is None:
            raise
        raise type(e)(f"{op_name}: {name} must be array-like (a tensor, a numpy array, a number "
                      f"or a nested list of numbers): {e}") from None


def float_input(x, op_name, name="x", like=None):
    """``x`` as a tensor (a Python number takes ``like``'s dtype); TypeError/ValueError naming
    ``name`` unless it converts to a float32 or float64 tensor."""
    x = as_tensor(x, like=like, name=name, op_name=op_name)
    check_float(x, op_name, name)
    return x


#: Whether any leaf ever had a post-accumulate hook: until then backward skips counting the
#: gradients each leaf receives.
_leaf_hooks_registered = False


def _hooked_leaf_uses(order):
    """{leaf with hooks: number of gradients it receives from the ops in ``order``}."""
    uses = {}
    for fn in order:
        for x, needed in zip(fn.inputs, fn.needs_input_grad):
            if needed and x._creator is None and x._grad_hooks:
                uses[x] = uses.get(x, 0) + 1
    return uses


def _unshared_refs():
    """sys.getrefcount of a gradient array that only Tensor.backward's loop references, measured
    with the loop's own pattern (the gradient tuple, enumerate's and zip's reused result tuples,
    the loop variable, the call's argument), so the count is right for this Python version."""
    grads = (np.empty(1),)
    for _, (_, gx, _) in enumerate(zip((None,), grads, (True,))):
        gx = np.asarray(gx)
        count = sys.getrefcount(gx)
        return count


def _whole_view(a):
    """Whether ``a`` is all of an array that nothing else references (a reshaped new array,
    such as a convolution's weight gradient), which a leaf may keep like the array itself."""
    base = a.base
    return (type(base) is np.ndarray and base.base is None and base.nbytes == a.nbytes
            and a.flags.c_contiguous and base.flags.c_contiguous
            and sys.getrefcount(base) <= _VIEW_REFS)


def _view_refs():
    """sys.getrefcount in ``_whole_view`` of the base of a view that alone references it."""
    base = np.empty(2)
    view = base.reshape(1, 2)
    del base
    base = view.base
    return sys.getrefcount(base)


_VIEW_REFS = _view_refs()


#: A leaf may keep a first gradient with no more references than this (PyTorch's AccumulateGrad
#: steals an unshared gradient the same way), saving a copy of each parameter's gradient per
#: backward pass.
_UNSHARED_REFS = _unshared_refs()


def _topological_order(root):
    """Ops reachable from ``root`` through inputs that needed a gradient when the op ran, each
    after every op that consumes its outputs (iterative). An input that did not need one (a
    constant, a detached tensor) is not followed: its creator gets no gradient."""
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        fn, expanded = stack.pop()
        if expanded:
            order.append(fn)
            continue
        if fn in visited:
            continue
        if getattr(fn, "_released", False):
            raise RuntimeError(
                f"trying to backward through the graph a second time ({type(fn).__name__}'s "
                "saved buffers were freed by the first backward); pass retain_graph=True to "
                "the first backward() to keep them")
        visited.add(fn)
        stack.append((fn, True))
        for x, needed in zip(fn.inputs, fn.needs_input_grad):
            if needed and x._creator is not None and x._creator not in visited:
                stack.append((x._creator, False))
    order.reverse()
    return order

