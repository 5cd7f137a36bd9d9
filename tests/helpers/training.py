"""A tiny conv net training run: conv + BatchNorm + ReLU + max pool + linear, cross-entropy,
SGD with momentum and weight decay, a StepLR schedule, on seeded random batches. Trained by the
determinism, memory and checkpoint tests."""
import numpy as np

import minigrad
import minigrad.nn.functional as F
from minigrad import nn, optim


class TinyConvNet(nn.Module):
    """(N, 1, 8, 8) → conv 3×3 (4 channels) → BatchNorm → ReLU → 2×2 max pool → linear → 3."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.conv(x))), 2)
        return self.fc(x.flatten(1))


def make_run(seed=0, lr=0.1):
    """(model, SGD with momentum, StepLR) initialised from ``seed``."""
    minigrad.manual_seed(seed)
    model = TinyConvNet()
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    return model, opt, optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)


def batches(steps, seed=1, batch=8):
    """``steps`` (x, y) batches for TinyConvNet: float32 N(0, 1) images, labels in 0..2."""
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        yield (rng.standard_normal((batch, 1, 8, 8)).astype(np.float32),
               rng.integers(0, 3, batch))


def train(model, opt, scheduler, data):
    """One SGD step per (x, y) batch; returns the losses as Python floats."""
    losses = []
    model.train()
    for x, y in data:
        opt.zero_grad()
        loss = F.cross_entropy(model(minigrad.tensor(x)), y)
        loss.backward()
        opt.step()
        scheduler.step()
        losses.append(loss.item())
    return losses
