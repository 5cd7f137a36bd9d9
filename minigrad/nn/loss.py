"""Loss modules: thin wrappers over ``minigrad.ops.loss`` (PyTorch's names and arguments)."""
from ..ops import loss as L
from .module import Module


class CrossEntropyLoss(Module):
    def __init__(self, label_smoothing=0.0, reduction="mean"):
        super().__init__()
        self.label_smoothing, self.reduction = label_smoothing, reduction

    def forward(self, logits, target):
        return L.cross_entropy(logits, target, self.label_smoothing, self.reduction)

    def extra_repr(self):
        return f"label_smoothing={self.label_smoothing}, reduction={self.reduction!r}"


class _Reduced(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


class NLLLoss(_Reduced):
    def forward(self, log_probs, target):
        return L.nll_loss(log_probs, target, self.reduction)


class MSELoss(_Reduced):
    def forward(self, input, target):
        return L.mse_loss(input, target, self.reduction)
