"""Losses: cross_entropy, nll_loss and mse_loss, with PyTorch's values and reductions.

``reduction`` is 'mean' (average over every loss element), 'sum', or 'none' (the per-element
losses: shape (N, d1, ...) for the classification losses, the input's shape for mse_loss).
"""
import numpy as np

from ..function import Function
from ..tensor import as_tensor, float_input
from .activation import log_softmax_array

REDUCTIONS = ("mean", "sum", "none")


def _reduce(losses, reduction):
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    # The mean of no elements is NaN, as in PyTorch (without numpy's warning).
    return losses.sum() / losses.size if losses.size else np.array(np.nan, losses.dtype)


def _per_element_grad(gy, shape, dtype, reduction):
    """d(reduced loss)/d(each element's loss) · upstream gradient, broadcastable to ``shape``."""
    gy = np.asarray(gy, dtype=dtype)
    if reduction == "mean":
        return np.broadcast_to(gy / max(int(np.prod(shape)), 1), shape)
    return np.broadcast_to(gy, shape)


def _picked(scores, target):
    """scores[n, target[n, ...], ...]: the class axis (1) indexed by the target."""
    return np.take_along_axis(scores, np.expand_dims(target, 1), axis=1).squeeze(1)


def _one_hot_like(scores, target):
    one_hot = np.zeros_like(scores)
    np.put_along_axis(one_hot, np.expand_dims(target, 1), 1, axis=1)
    return one_hot


class CrossEntropy(Function):
    """With p = softmax(logits) over the class axis 1, C classes and smoothing ε (PyTorch's
    formula), each element's loss is

        (1 − ε)·(−log p[target]) + ε/C · Σ_c (−log p[c]),

    and its gradient with respect to the logits is p − (1 − ε)·onehot(target) − ε/C."""

    def __init__(self, label_smoothing, reduction):
        self.label_smoothing, self.reduction = label_smoothing, reduction

    def forward(self, logits, target):
        log_p = log_softmax_array(logits, axis=1)
        losses = -_picked(log_p, target)
        eps = self.label_smoothing
        if eps:
            losses *= 1 - eps
            losses -= eps * log_p.mean(axis=1)
        self.save_for_backward(log_p, target)
        return _reduce(losses, self.reduction)

    def backward(self, gy):
        log_p, target = self.saved_tensors
        eps, classes = self.label_smoothing, log_p.shape[1]
        g = np.expand_dims(_per_element_grad(gy, target.shape, log_p.dtype, self.reduction), 1)
        gx = np.exp(log_p)
        gx -= (1 - eps) * _one_hot_like(log_p, target)
        if eps:
            gx -= eps / classes
        gx *= g
        return gx, None


class NLLLoss(Function):
    """Each element's loss is −log_probs[n, target[n, ...], ...]; its gradient is −1 at the
    target class and 0 elsewhere."""

    def __init__(self, reduction):
        self.reduction = reduction

    def forward(self, log_probs, target):
        self.save_for_backward(target)
        self.shape, self.dtype = log_probs.shape, log_probs.dtype
        return _reduce(-_picked(log_probs, target), self.reduction)

    def backward(self, gy):
        (target,) = self.saved_tensors
        g = _per_element_grad(gy, target.shape, self.dtype, self.reduction)
        gx = np.zeros(self.shape, self.dtype)
        np.put_along_axis(gx, np.expand_dims(target, 1), -np.expand_dims(g, 1), axis=1)
        return gx, None


class MSELoss(Function):
    """Each element's loss is (input − target)²; d/dinput = 2·(input − target) = −d/dtarget."""

    def __init__(self, reduction):
        self.reduction = reduction

    def forward(self, x, target):
        diff = x - target
        self.save_for_backward(diff)
        return _reduce(diff * diff, self.reduction)

    def backward(self, gy):
        (diff,) = self.saved_tensors
        g = 2 * diff * _per_element_grad(gy, diff.shape, diff.dtype, self.reduction)
        return (g if self.needs_input_grad[0] else None,
                -g if self.needs_input_grad[1] else None)


# -- functional wrappers: validate, then apply -----------------------------------------------

def _check_reduction(reduction, op_name):
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op_name}: reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _class_target(scores, target, op_name):
    """Validate integer class targets of shape (N, d1, ...) against scores (N, C, d1, ...)."""
    scores_name = "input" if op_name == "nll_loss" else "logits"
    if scores.ndim < 2:
        raise ValueError(f"{op_name}: {scores_name} must be (N, C) or (N, C, d1, ...), got shape "
                         f"{scores.shape}")
    target = as_tensor(target, name="target", op_name=op_name)
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op_name}: target must hold integer class indices, got dtype "
                        f"{target.dtype}")
    expected = scores.shape[:1] + scores.shape[2:]
    if target.shape != expected:
        raise ValueError(f"{op_name}: target has shape {target.shape} but {scores_name} of shape "
                         f"{scores.shape} needs target shape {expected}")
    classes = scores.shape[1]
    if target.size and (target.data.min() < 0 or target.data.max() >= classes):
        bad = target.data[(target.data < 0) | (target.data >= classes)].flat[0]
        raise ValueError(f"{op_name}: target holds class index {bad}, outside [0, {classes}) for "
                         f"the {classes} classes of {scores_name} of shape {scores.shape}")
    return target


def cross_entropy(logits, target, label_smoothing=0.0, reduction="mean"):
    """Softmax cross-entropy of ``logits`` (N, C) or (N, C, d1, ...) against integer class
    indices ``target`` (N,) or (N, d1, ...), computed stably through log-sum-exp."""
    logits = float_input(logits, "cross_entropy", "logits")
    target = _class_target(logits, target, "cross_entropy")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float)) \
            or not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be a number in [0, 1], got "
                         f"{label_smoothing!r}")
    _check_reduction(reduction, "cross_entropy")
    return CrossEntropy(float(label_smoothing), reduction)(logits, target)


def nll_loss(input, target, reduction="mean"):
    """Negative log-likelihood of log-probabilities ``input`` (N, C) or (N, C, d1, ...) at the
    integer classes ``target`` (N,) or (N, d1, ...)."""
    input = float_input(input, "nll_loss", "input")
    target = _class_target(input, target, "nll_loss")
    _check_reduction(reduction, "nll_loss")
    return NLLLoss(reduction)(input, target)


def mse_loss(input, target, reduction="mean"):
    """Squared error (input − target)², both of the same shape."""
    input = float_input(input, "mse_loss", "input")
    target = float_input(target, "mse_loss", "target", like=input)
    if input.shape != target.shape:
        raise ValueError(f"mse_loss: input shape {input.shape} and target shape {target.shape} "
                         "must be equal")
    if target.dtype != input.dtype:
        if target.requires_grad:
            raise TypeError(f"mse_loss: target has dtype {target.dtype} but input has dtype "
                            f"{input.dtype}")
        target = as_tensor(target.data.astype(input.dtype))
    _check_reduction(reduction, "mse_loss")
    return MSELoss(reduction)(input, target)
