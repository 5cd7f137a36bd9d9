"""Losses: cross_entropy, nll_loss and mse_loss, with PyTorch's values, arguments and reductions.

``reduction`` is 'mean', 'sum', or 'none' (the per-element losses: shape (N, d1, ...) for the
classification losses, () for an unbatched (C,) input, the input's shape for mse_loss).

The classification losses take scores (N, C), (N, C, d1, ...) or an unbatched (C,) and
integer class targets (N,), (N, d1, ...) or (), with PyTorch's optional arguments: ``weight``
(C,) scales each element's loss by the weight of its target class, and a target equal to
``ignore_index`` contributes nothing. Their 'mean' divides by the total weight of the targets
that count (Σ weight[target] over non-ignored targets; their number without ``weight``), so a
mean over no target is NaN, as in PyTorch. ``cross_entropy`` also takes a target of class
probabilities: a float tensor of the scores' shape (then 'mean' divides by the number of
elements N·d1·…, and ``ignore_index`` does not apply). ``weight`` is a constant: it gets no
gradient, as in PyTorch.
"""
import numbers

import numpy as np

from .._validate import check_float
from ..function import Function
from ..tensor import as_tensor, float_input
from .activation import log_softmax_array

REDUCTIONS = ("mean", "sum", "none")
#: PyTorch's default ``ignore_index``: a target of -100 is ignored unless told otherwise.
IGNORE_INDEX = -100


def _reduce(losses, reduction, total=None):
    """Sum, 'none', or the mean: the sum divided by ``total`` (default: the element count).
    A mean over nothing (total 0) is NaN, as in PyTorch (without numpy's warning)."""
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    total = losses.size if total is None else total
    return losses.sum() / total if total else np.array(np.nan, losses.dtype)


def _per_element_grad(gy, shape, dtype, reduction, total=None):
    """d(reduced loss)/d(each element's loss) · upstream gradient, broadcastable to ``shape``
    (``total`` as in ``_reduce``; nothing is counted when it is 0, so the gradient is 0)."""
    gy = np.asarray(gy, dtype=dtype)
    if reduction == "mean":
        total = int(np.prod(shape)) if total is None else total
        return np.broadcast_to(gy / total if total else np.zeros_like(gy), shape)
    return np.broadcast_to(gy, shape)


def _picked(scores, target):
    """scores[n, target[n, ...], ...]: the class axis (1) indexed by the target."""
    return np.take_along_axis(scores, np.expand_dims(target, 1), axis=1).squeeze(1)


def _one_hot_like(scores, target):
    one_hot = np.zeros_like(scores)
    np.put_along_axis(one_hot, np.expand_dims(target, 1), 1, axis=1)
    return one_hot


def _on_classes(vector, ndim):
    """A (C,) vector shaped to broadcast along the class axis 1 of an ndim-D array."""
    return vector.reshape((1, -1) + (1,) * (ndim - 2))


class _Targets:
    """Class-index targets as the ops use them: ``index`` (N, d1, ...) with ignored entries set
    to class 0 (any valid index: they are masked), ``keep`` the mask of targets that count
    (None: all), ``weight`` the (C,) class weights (None: all 1), and ``element_weight`` each
    element's weight[target]·keep (None when every element weighs 1, the plain case)."""

    def __init__(self, index, keep, weight, dtype):
        self.index, self.keep, self.weight = index, keep, weight
        element = None if weight is None else weight[index]
        if keep is not None:
            keep = self.keep = keep.astype(dtype)
            element = keep if element is None else element * keep
        self.element_weight = element
        self.total = None if element is None else element.sum()


class CrossEntropy(Function):
    """Class-index targets. With p = softmax(logits) over the class axis 1, C classes,
    smoothing ε (PyTorch's formula), class weights v (1 without ``weight``) and each element's
    weight w = v[target] (0 when ignored; k = 0 or 1 says whether it counts), the loss of an
    element is

        (1 − ε)·w·(−log p[target]) + ε/C · k · Σ_c v_c·(−log p[c]),

    and its gradient with respect to the logits is
    p·((1 − ε)·w + ε/C·k·Σv) − (1 − ε)·w·onehot(target) − ε/C·k·v
    (in the plain case, w = k = v = 1: p − (1 − ε)·onehot(target) − ε/C).

    Memory: log p (the logits' size) is kept for backward; the gradient is one more such
    array. Deterministic (numpy reductions in a fixed order)."""

    def __init__(self, label_smoothing, reduction, targets):
        self.label_smoothing, self.reduction, self.targets = label_smoothing, reduction, targets

    def forward(self, logits, target):
        log_p = log_softmax_array(logits, axis=1)
        t = self.targets
        losses = -_picked(log_p, t.index)
        eps = self.label_smoothing
        if t.element_weight is not None:
            losses *= t.element_weight
        if eps:
            losses *= 1 - eps
            if t.weight is None:
                smooth = log_p.mean(axis=1)
            else:
                smooth = (log_p * _on_classes(t.weight, log_p.ndim)).mean(axis=1)
            if t.keep is not None:
                smooth *= t.keep
            losses -= eps * smooth
        self.save_for_backward(log_p)
        return _reduce(losses, self.reduction, t.total)

    def backward(self, gy):
        (log_p,) = self.saved_tensors
        t, eps, classes = self.targets, self.label_smoothing, log_p.shape[1]
        g = np.expand_dims(_per_element_grad(gy, t.index.shape, log_p.dtype, self.reduction,
                                             t.total), 1)
        gx = np.exp(log_p)
        if t.element_weight is None:      # the plain case: no weight, none ignored
            gx -= (1 - eps) * _one_hot_like(log_p, t.index)
            if eps:
                gx -= eps / classes
        else:
            w = np.expand_dims(t.element_weight if t.element_weight is not None
                               else np.ones(t.index.shape, log_p.dtype), 1)
            k = 1.0 if t.keep is None else np.expand_dims(t.keep, 1)
            v = np.ones(classes, log_p.dtype) if t.weight is None else t.weight
            gx *= (1 - eps) * w + (eps / classes) * k * v.sum()
            gx -= (1 - eps) * w * _one_hot_like(log_p, t.index)
            if eps:
                gx -= (eps / classes) * k * _on_classes(v, log_p.ndim)
        gx *= g
        return gx, None


class CrossEntropyProbs(Function):
    """Targets of class probabilities q (the logits' shape). With p = softmax(logits) over the
    class axis 1, smoothing ε, q' = (1 − ε)·q + ε/C and class weights v (1 without ``weight``),
    the loss of an element is −Σ_c v_c·q'_c·log p_c; its gradient is p·Σ_c v_c·q'_c − v·q'
    with respect to the logits and −(1 − ε)·v·log p with respect to q. 'mean' divides by the
    number of elements N·d1·… whatever the weights (PyTorch's rule for this target kind).

    Memory: log p and v·q' (each the logits' size) are kept for backward. Deterministic."""

    def __init__(self, label_smoothing, reduction, weight):
        self.label_smoothing, self.reduction, self.weight = label_smoothing, reduction, weight

    def forward(self, logits, target):
        log_p = log_softmax_array(logits, axis=1)
        eps, classes = self.label_smoothing, logits.shape[1]
        weighted = target * (1 - eps) + eps / classes if eps else target.copy()
        if self.weight is not None:
            weighted *= _on_classes(self.weight, logits.ndim)
        losses = -(weighted * log_p).sum(axis=1)
        self.save_for_backward(log_p, weighted)
        return _reduce(losses, self.reduction)

    def backward(self, gy):
        log_p, weighted = self.saved_tensors
        shape = log_p.shape[:1] + log_p.shape[2:]
        g = np.expand_dims(_per_element_grad(gy, shape, log_p.dtype, self.reduction), 1)
        gx = gt = None
        if self.needs_input_grad[0]:
            gx = np.exp(log_p)
            gx *= weighted.sum(axis=1, keepdims=True)
            gx -= weighted
            gx *= g
        if self.needs_input_grad[1]:
            gt = -(1 - self.label_smoothing) * log_p * g
            if self.weight is not None:
                gt *= _on_classes(self.weight, log_p.ndim)
        return gx, gt


class NLLLoss(Function):
    """Each element's loss is −w·log_probs[n, target[n, ...], ...] with w its weight
    (``weight[target]``, 0 when ignored; 1 in the plain case); its gradient is −w at the
    target class and 0 elsewhere. Memory: the targets; deterministic."""

    def __init__(self, reduction, targets):
        self.reduction, self.targets = reduction, targets

    def forward(self, log_probs, target):
        self.shape, self.dtype = log_probs.shape, log_probs.dtype
        t = self.targets
        losses = -_picked(log_probs, t.index)
        if t.element_weight is not None:
            losses *= t.element_weight
        return _reduce(losses, self.reduction, t.total)

    def backward(self, gy):
        t = self.targets
        g = _per_element_grad(gy, t.index.shape, self.dtype, self.reduction, t.total)
        if t.element_weight is not None:
            g = g * t.element_weight
        gx = np.zeros(self.shape, self.dtype)
        np.put_along_axis(gx, np.expand_dims(t.index, 1), -np.expand_dims(g, 1), axis=1)
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


def _scores(scores, op_name, name):
    """The scores as a float tensor of at least 1 dimension: (C,) (unbatched), (N, C) or
    (N, C, d1, ...)."""
    scores = float_input(scores, op_name, name)
    if scores.ndim < 1:
        raise ValueError(f"{op_name}: {name} must be (C,), (N, C) or (N, C, d1, ...), got shape "
                         f"{scores.shape}")
    return scores


def _class_weight(weight, scores, op_name, name):
    """``weight`` as a (C,) numpy array in the scores' dtype, or None."""
    if weight is None:
        return None
    classes = scores.shape[1]
    weight = as_tensor(weight, name="weight", op_name=op_name)
    if weight.requires_grad:
        raise TypeError(f"{op_name}: weight gets no gradient (as in PyTorch); pass a constant "
                        "(weight.detach())")
    check_float(weight, op_name, "weight")
    if weight.shape != (classes,):
        raise ValueError(f"{op_name}: weight must hold one value per class, shape ({classes},) "
                         f"for {name} of shape {scores.shape}, got shape {weight.shape}")
    return weight.data.astype(scores.dtype, copy=False)


def _class_targets(scores, target, weight, ignore_index, op_name, name):
    """Validate integer class targets (N, d1, ...) against scores (N, C, d1, ...): every value
    is a class in [0, C) or ``ignore_index``. Returns a ``_Targets``."""
    if scores.ndim < 2:
        raise ValueError(f"{op_name}: {name} must be (C,), (N, C) or (N, C, d1, ...), got shape "
                         f"{scores.shape}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op_name}: target must hold integer class indices, got dtype "
                        f"{target.dtype}")
    expected = scores.shape[:1] + scores.shape[2:]
    if target.shape != expected:
        raise ValueError(f"{op_name}: target has shape {target.shape} but {name} of shape "
                         f"{scores.shape} needs target shape {expected}")
    if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index,
                                                                     numbers.Integral):
        raise TypeError(f"{op_name}: ignore_index must be an int, got {ignore_index!r}")
    classes, index, keep = scores.shape[1], target.data, None
    # the plain case (every target a class, none ignored) costs the one min/max pass
    if index.size and (index.min() < 0 or index.max() >= classes
                       or 0 <= ignore_index < classes):
        ignored = index == ignore_index
        bad = ~ignored & ((index < 0) | (index >= classes))
        if bad.any():
            raise ValueError(f"{op_name}: target holds class index {index[bad].flat[0]}, outside "
                             f"[0, {classes}) for the {classes} classes of {name} of shape "
                             f"{scores.shape}, and not ignore_index ({ignore_index})")
        if ignored.any():
            keep, index = ~ignored, np.where(ignored, 0, index)
    return _Targets(index, keep, _class_weight(weight, scores, op_name, name), scores.dtype)


def _unbatched(scores, target, op_name, name):
    """An unbatched (C,) input and its target as a batch of one."""
    if scores.ndim != 1:
        return scores, target, False
    if target.shape != (() if target.dtype.kind != "f" else scores.shape):
        raise ValueError(f"{op_name}: unbatched {name} of shape {scores.shape} need a 0-d "
                         f"integer class target or float probabilities of shape "
                         f"{scores.shape}, got a target of shape {target.shape} and dtype "
                         f"{target.dtype}")
    return scores.reshape(1, -1), target.reshape((1,) + target.shape), True


def _loss(op, scores, target, unbatched):
    loss = op(scores, target)
    return loss.reshape(()) if unbatched else loss


def cross_entropy(logits, target, label_smoothing=0.0, reduction="mean", *, weight=None,
                  ignore_index=IGNORE_INDEX):
    """Softmax cross-entropy of ``logits`` (N, C), (N, C, d1, ...) or unbatched (C,), computed
    stably through log-sum-exp, against integer class indices ``target`` (N,), (N, d1, ...)
    or (), or against class probabilities (a float target of the logits' shape); see the module
    docstring for ``weight``, ``ignore_index`` and the reductions, and ``CrossEntropy`` /
    ``CrossEntropyProbs`` for the formulas. ``label_smoothing`` ε in [0, 1] mixes the target
    with the uniform distribution: (1 − ε)·target + ε/C."""
    op = "cross_entropy"
    logits = _scores(logits, op, "logits")
    if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, numbers.Real) \
            or not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be a number in [0, 1], got "
                         f"{label_smoothing!r}")
    _check_reduction(reduction, op)
    target = as_tensor(target, name="target", op_name=op)
    logits, target, unbatched = _unbatched(logits, target, op, "logits")
    if target.dtype.kind == "f":
        if target.shape != logits.shape:
            raise ValueError(f"{op}: a float target holds class probabilities and must have the "
                             f"logits' shape {logits.shape}, got shape {target.shape} and dtype "
                             f"{target.dtype} (class indices must be an integer tensor)")
        if target.dtype != logits.dtype:
            raise TypeError(f"{op}: target probabilities have dtype {target.dtype} but logits "
                            f"have dtype {logits.dtype}")
        probs = CrossEntropyProbs(float(label_smoothing), reduction,
                                  _class_weight(weight, logits, op, "logits"))
        return _loss(probs, logits, target, unbatched)
    targets = _class_targets(logits, target, weight, ignore_index, op, "logits")
    return _loss(CrossEntropy(float(label_smoothing), reduction, targets), logits, target,
                 unbatched)


def nll_loss(input, target, reduction="mean", *, weight=None, ignore_index=IGNORE_INDEX):
    """Negative log-likelihood of log-probabilities ``input`` (N, C), (N, C, d1, ...) or
    unbatched (C,) at the integer classes ``target`` (N,), (N, d1, ...) or (); ``weight``,
    ``ignore_index`` and the reductions as in the module docstring."""
    op = "nll_loss"
    input = _scores(input, op, "input")
    _check_reduction(reduction, op)
    target = as_tensor(target, name="target", op_name=op)
    input, target, unbatched = _unbatched(input, target, op, "input")
    targets = _class_targets(input, target, weight, ignore_index, op, "input")
    return _loss(NLLLoss(reduction, targets), input, target, unbatched)


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
