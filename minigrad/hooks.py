"""The handle a hook registration returns (``Module.register_forward_hook``,
``Tensor.register_post_accumulate_grad_hook``, ...): a module of its own, in the bottom layer, so
that tensors and modules share it."""
import itertools
import weakref


class RemovableHandle:
    """What registering a hook returns: ``remove()`` unregisters the hook (calling it again does
    nothing), and so does leaving a ``with`` block over the handle. It holds its hook table
    weakly, so it keeps no module or tensor alive.

    Args:
        hooks: the table (an ``OrderedDict`` of id → hook) the hook was put into under
            ``handle.id``.

    Example::

        with model.register_forward_hook(record):
            model(x)          # record runs; after the block it is gone
    """

    _ids = itertools.count()

    def __init__(self, hooks):
        self.id = next(RemovableHandle._ids)
        self._hooks = weakref.ref(hooks)

    def remove(self):
        hooks = self._hooks()
        if hooks is not None:
            hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.remove()

    def __repr__(self):
        return f"RemovableHandle(id={self.id})"
