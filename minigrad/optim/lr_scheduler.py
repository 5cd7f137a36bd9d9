"""Learning-rate schedules (``minigrad.optim.lr_scheduler``), the same sequences as PyTorch's.

Build the scheduler after the optimiser and call ``scheduler.step()`` after each
``optimizer.step()`` (once per epoch for StepLR/CosineAnnealingLR, once per batch for
OneCycleLR). Construction sets the initial learning rate (epoch 0). ``state_dict()`` is plain
data, so ``minigrad.save`` can store it next to the model and the optimiser.
"""
import math
import numbers

from .._validate import positive_int
from .optimizer import Optimizer


class LRScheduler:
    """Base class: ``get_lr()`` gives the learning rate of every parameter group at
    ``last_epoch``; ``step()`` advances ``last_epoch`` and writes them into the groups."""

    def __init__(self, optimizer, last_epoch=-1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: optimizer must be a minigrad Optimizer, "
                            f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(f"{type(self).__name__}: param_groups[{i}] has no 'initial_lr'; "
                               "resuming with last_epoch != -1 needs a scheduler-initialised "
                               "optimiser")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self.step()

    def get_lr(self):
        raise NotImplementedError

    def get_last_lr(self):
        """The learning rates set by the last ``step()``, one per parameter group."""
        return list(self._last_lr)

    def step(self):
        self._step_count += 1
        self.last_epoch += 1
        lrs = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _current_lrs(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self):
        """Every attribute but the optimiser (plain numbers, lists and strings)."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict):
        self.__dict__.update({k: v for k, v in state_dict.items() if k != "optimizer"})


def _per_group(value, name, optimizer, scheduler):
    """One value per parameter group from a number or a list of them."""
    groups = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != groups:
            raise ValueError(f"{scheduler}: expected {groups} values of {name}, got "
                             f"{len(value)}")
        return list(value)
    return [value] * groups


class StepLR(LRScheduler):
    """lr = initial_lr · gamma^⌊epoch / step_size⌋ (applied as a decay every step_size
    epochs, like PyTorch, so it composes with changes made to the groups' lr)."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self.step_size = positive_int(step_size, "step_size", "StepLR")
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (initial_lr − eta_min) · (1 + cos(π · epoch / T_max)) / 2, computed
    recursively from the previous lr as PyTorch does (the same floating-point sequence)."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self.T_max = positive_int(T_max, "T_max", "CosineAnnealingLR")
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        epoch, T, low = self.last_epoch, self.T_max, self.eta_min
        if epoch == 0:
            return self._current_lrs()
        if self._step_count == 1 and epoch > 0:     # resumed with last_epoch: closed form
            return [low + (base - low) * (1 + math.cos(epoch * math.pi / T)) / 2
                    for base in self.base_lrs]
        if (epoch - 1 - T) % (2 * T) == 0:          # restarting from the minimum
            return [lr + (base - low) * (1 - math.cos(math.pi / T)) / 2
                    for base, lr in zip(self.base_lrs, self._current_lrs())]
        ratio = (1 + math.cos(math.pi * epoch / T)) / (1 + math.cos(math.pi * (epoch - 1) / T))
        return [ratio * (lr - low) + low for lr in self._current_lrs()]


class OneCycleLR(LRScheduler):
    """Smith & Topin's 1cycle policy, stepped once per batch for ``total_steps`` steps (or
    ``epochs · steps_per_epoch``). The lr rises from max_lr / div_factor to max_lr over the first
    ``pct_start`` of the steps, then falls to initial_lr / final_div_factor (``three_phase``:
    back to initial_lr first, then to the minimum), annealing by cosine or linearly. With
    ``cycle_momentum`` the momentum (SGD) or β₁ (Adam) moves inversely between
    ``max_momentum`` and ``base_momentum``."""

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start=0.3, anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85,
                 max_momentum=0.95, div_factor=25.0, final_div_factor=1e4, three_phase=False,
                 last_epoch=-1):
        name = "OneCycleLR"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name}: optimizer must be a minigrad Optimizer, got "
                            f"{type(optimizer).__name__}")
        if total_steps is not None:
            self.total_steps = positive_int(total_steps, "total_steps", name)
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (positive_int(epochs, "epochs", name)
                                * positive_int(steps_per_epoch, "steps_per_epoch", name))
        else:
            raise ValueError(f"{name}: give total_steps, or epochs and steps_per_epoch")
        if not isinstance(pct_start, numbers.Real) or not 0.0 <= pct_start <= 1.0:
            raise ValueError(f"{name}: pct_start must be a number in [0, 1], got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"{name}: anneal_strategy must be 'cos' or 'linear', got "
                             f"{anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        phase_ends = ([float(pct_start * self.total_steps) - 1,
                       float(2 * pct_start * self.total_steps) - 2, self.total_steps - 1]
                      if three_phase else
                      [float(pct_start * self.total_steps) - 1, self.total_steps - 1])
        # (end step, lr from, lr to, momentum from, momentum to), by group keys.
        shapes = ([("initial_lr", "max_lr", "max_momentum", "base_momentum"),
                   ("max_lr", "initial_lr", "base_momentum", "max_momentum"),
                   ("initial_lr", "min_lr", "max_momentum", "max_momentum")]
                  if three_phase else
                  [("initial_lr", "max_lr", "max_momentum", "base_momentum"),
                   ("max_lr", "min_lr", "base_momentum", "max_momentum")])
        self.phases = [[end, *keys] for end, keys in zip(phase_ends, shapes)]
        if last_epoch == -1:
            for group, peak in zip(optimizer.param_groups,
                                   _per_group(max_lr, "max_lr", optimizer, name)):
                group["initial_lr"] = peak / div_factor
                group["max_lr"] = peak
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = bool(cycle_momentum)
        self.use_beta1 = "betas" in optimizer.defaults
        if self.cycle_momentum:
            if "momentum" not in optimizer.defaults and not self.use_beta1:
                raise ValueError(f"{name}: cycle_momentum needs an optimiser with momentum or "
                                 "betas")
            if last_epoch == -1:
                for group, high, low in zip(
                        optimizer.param_groups,
                        _per_group(max_momentum, "max_momentum", optimizer, name),
                        _per_group(base_momentum, "base_momentum", optimizer, name)):
                    self._set_momentum(group, high)
                    group["max_momentum"], group["base_momentum"] = high, low
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group, value):
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self):
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {step} times but total_steps is "
                             f"{self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, (end_step, lr_from, lr_to, m_from, m_to) in enumerate(self.phases):
                if step <= end_step or i == len(self.phases) - 1:
                    # A phase shorter than one step (tiny runs) is already complete; PyTorch
                    # divides by zero here.
                    span = end_step - start_step
                    pct = (step - start_step) / span if span > 0 else 1.0
                    lrs.append(self._anneal(group[lr_from], group[lr_to], pct))
                    if self.cycle_momentum:
                        self._set_momentum(group, self._anneal(group[m_from], group[m_to], pct))
                    break
                start_step = end_step
        return lrs
