"""Loss modules: thin wrappers over ``minigrad.ops.loss`` (PyTorch's names and arguments).

As in PyTorch, a class ``weight`` given to CrossEntropyLoss or NLLLoss is a buffer: it is part
of the state_dict (and left out of it when None)."""
from ..ops import loss as L
from .module import Module


class _Reduced(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


class _ClassLoss(_Reduced):
    """A classification loss with PyTorch's ``weight`` (a buffer) and ``ignore_index``."""

    def __init__(self, reduction="mean", weight=None, ignore_index=L.IGNORE_INDEX):
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index

    def extra_repr(self):
        text = super().extra_repr()
        if self.ignore_index != L.IGNORE_INDEX:
            text += f", ignore_index={self.ignore_index}"
        return text + (", weight=..." if self.weight is not None else "")


class CrossEntropyLoss(_ClassLoss):
    def __init__(self, label_smoothing=0.0, reduction="mean", *, weight=None,
                 ignore_index=L.IGNORE_INDEX):
        super().__init__(reduction, weight, ignore_index)
        self.label_smoothing = label_smoothing

    def forward(self, logits, target):
        return L.cross_entropy(logits, target, self.label_smoothing, self.reduction,
                               weight=self.weight, ignore_index=self.ignore_index)

    def extra_repr(self):
        return f"label_smoothing={self.label_smoothing}, {super().extra_repr()}"


class NLLLoss(_ClassLoss):
    def __init__(self, reduction="mean", *, weight=None, ignore_index=L.IGNORE_INDEX):
        super().__init__(reduction, weight, ignore_index)

    def forward(self, log_probs, target):
        return L.nll_loss(log_probs, target, self.reduction, weight=self.weight,
                          ignore_index=self.ignore_index)


class MSELoss(_Reduced):
    def forward(self, input, target):
        return L.mse_loss(input, target, self.reduction)
