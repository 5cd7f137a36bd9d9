"""What the distributed tests run twice, under ``mpiexec -n 2`` (each rank with its half of every
batch; tests/helpers/mpi_worker.py) and in the test process alone with the whole batch
(tests/test_distributed.py), then compare: small float64 networks, their batches and a few
optimiser steps; and the launcher that starts the worker."""
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np

import minigrad
import minigrad.nn.functional as F
from minigrad import nn, optim

#: images per global batch, optimiser steps per run, ranks of the MPI runs
BATCH, STEPS, RANKS = 8, 5, 2
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mpi_worker.py")


def build(kind):
    """A float64 net, the same weights on every call. ``kind``: "plain" (conv, ReLU, max pool,
    linear), "bn_eval" (conv, BatchNorm2d in eval mode with non-trivial running statistics,
    ReLU, global average pool, linear), "bn_train" (the same in training mode), "sync_bn" (that
    one with SyncBatchNorm), "unused" (plain plus a linear layer forward never calls)."""
    minigrad.manual_seed(0)
    if kind in ("plain", "unused"):
        net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Flatten(), nn.Linear(4 * 4 * 4, 5))
        return (_WithSpare(net) if kind == "unused" else net).double()
    norm = nn.SyncBatchNorm(4) if kind == "sync_bn" else nn.BatchNorm2d(4)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), norm, nn.ReLU(), nn.GlobalAvgPool2d(),
                        nn.Linear(4, 5)).double()
    rng = np.random.default_rng(2)
    norm.weight.data[...] = rng.uniform(0.5, 1.5, 4)
    norm.bias.data[...] = rng.normal(size=4)
    if kind == "bn_eval":
        norm.running_mean[...] = rng.normal(size=4)
        norm.running_var[...] = rng.uniform(0.5, 2.0, 4)
        net.eval()
    return net


class _WithSpare(nn.Module):
    """``net`` and a linear layer that forward never calls."""

    def __init__(self, net):
        super().__init__()
        self.net, self.spare = net, nn.Linear(2, 2)

    def forward(self, x):
        return self.net(x)


def batches():
    """STEPS batches (images (BATCH, 3, 8, 8) float64, labels (BATCH,) int64)."""
    rng = np.random.default_rng(1)
    return [(rng.normal(size=(BATCH, 3, 8, 8)), rng.integers(0, 5, BATCH))
            for _ in range(STEPS)]


def half(rank):
    """The part of each global batch rank ``rank`` of RANKS trains on."""
    size = BATCH // RANKS
    return slice(rank * size, (rank + 1) * size)


def optimizer(name, params):
    if name == "sgd":
        return optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-3)
    return optim.Adam(params, lr=0.01)


def loss_of(model, images, labels, part=slice(None)):
    return F.cross_entropy(model(minigrad.tensor(images[part])), minigrad.tensor(labels[part]))


def train(net, model, opt, part=slice(None)):
    """STEPS steps of ``model`` (``net`` itself or a wrapper around it) on ``part`` of every
    batch. Returns {"grad.<name>": the first step's gradient, "param.<name>": the final
    parameters}."""
    result = {}
    for step, (images, labels) in enumerate(batches()):
        opt.zero_grad()
        loss_of(model, images, labels, part).backward()
        if step == 0:
            result.update({f"grad.{n}": p.grad.copy() for n, p in net.named_parameters()})
        opt.step()
    result.update({f"param.{n}": p.data.copy() for n, p in net.named_parameters()})
    return result


def accumulate(net, model, part=slice(None), no_sync=None):
    """Gradients of the first two batches' losses summed (backward twice, the first inside
    ``no_sync`` when given). Returns {"grad.<name>": gradient}."""
    (images0, labels0), (images1, labels1) = batches()[:2]
    with no_sync() if no_sync is not None else _nothing():
        loss_of(model, images0, labels0, part).backward()
    loss_of(model, images1, labels1, part).backward()
    return {f"grad.{n}": p.grad.copy() for n, p in net.named_parameters()}


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False


# -- the launcher ------------------------------------------------------------------------------
def mpiexec():
    """The mpiexec of this Python environment (the mpich wheel puts it next to python), or of
    the PATH; None when there is none or mpi4py is missing."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return here if os.access(here, os.X_OK) else shutil.which("mpiexec")


def run_worker(case, out_dir, ranks=RANKS, timeout=60):
    """Run ``mpi_worker.py case out_dir`` on ``ranks`` processes: see :func:`run_mpi`."""
    return run_mpi([WORKER, case, str(out_dir)], ranks, timeout)


def run_mpi(argv, ranks=RANKS, timeout=60):
    """Run ``python *argv`` on ``ranks`` processes under mpiexec. Returns (exit code, stdout +
    stderr, seconds). A job still running after ``timeout`` seconds is killed (with its whole
    process group) and reported as exit code None: a hang."""
    command = [mpiexec(), "-n", str(ranks), sys.executable, *map(str, argv)]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
        code = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        code = None
    return code, output, time.perf_counter() - start
