"""The program tests/test_distributed.py starts under ``mpiexec -n 2``:

    mpiexec -n 2 python tests/helpers/mpi_worker.py CASE OUT_DIR

Each rank runs CASE and saves what it computed to OUT_DIR/rank<r>.npz, for the test to compare
with a single process over the whole batch:

* ``train``: every net of helpers.distributed with SGD and Adam under DistributedDataParallel
  (small buckets, so several); gradient accumulation with ``no_sync``; the DataLoader shard of
  one epoch; the error for a parameter without gradient;
* ``sync_bn``: the SyncBatchNorm net: BatchNorm outputs, input gradients, averaged gradients
  and running statistics of two steps;
* ``mismatch``: rank 1 builds a different net (the job must end with an error);
* ``raise``: rank 1 raises after one step while rank 0 trains on (the job must end);
* ``kill``: rank 1 kills itself with SIGKILL after one step (the job must end).
"""
import os
import signal
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import minigrad  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402
from minigrad import distributed as dist  # noqa: E402
from minigrad import nn  # noqa: E402
from minigrad.data import ArrayDataset, DataLoader  # noqa: E402
from helpers import distributed as D  # noqa: E402

#: Buckets of ~1 KB: the small nets get several, started in order during backward.
BUCKET_MB = 1 / 1024


def train_case(rank):
    saved = {}
    for kind in ("plain", "bn_eval"):
        for name in ("sgd", "adam"):
            net = D.build(kind)
            model = dist.DistributedDataParallel(net, bucket_mb=BUCKET_MB)
            assert len(model._buckets) > 1
            result = D.train(net, model, D.optimizer(name, model.parameters()), D.half(rank))
            saved.update({f"{kind}.{name}.{key}": value for key, value in result.items()})
    net = D.build("plain")
    model = dist.DistributedDataParallel(net, bucket_mb=BUCKET_MB)
    result = D.accumulate(net, model, D.half(rank), model.no_sync)
    saved.update({f"accumulate.{key}": value for key, value in result.items()})

    dataset = ArrayDataset(np.zeros((21, 1, 1, 1), np.uint8), np.arange(21))
    loader = DataLoader(dataset, 4, shuffle=True, seed=[3, 1], shard=(rank, D.RANKS))
    saved["shard"] = np.concatenate([labels for _, labels in loader])

    net = D.build("unused")
    model = dist.DistributedDataParallel(net, bucket_mb=BUCKET_MB)
    images, labels = D.batches()[0]
    D.loss_of(model, images, labels, D.half(rank)).backward()
    try:
        model(minigrad.tensor(images))
    except RuntimeError as e:
        saved["unused_error"] = np.array(str(e))
    return saved


def sync_bn_case(rank):
    net = D.build("sync_bn")
    model = dist.DistributedDataParallel(net)
    norm = net[1]
    outputs = []
    norm.register_forward_hook(lambda module, args, y: outputs.append(y.data.copy()))
    saved = {}
    opt = D.optimizer("sgd", model.parameters())
    for step, (images, labels) in enumerate(D.batches()[:2]):
        x = minigrad.tensor(images[D.half(rank)], requires_grad=True)
        opt.zero_grad()
        F.cross_entropy(model(x), minigrad.tensor(labels[D.half(rank)])).backward()
        saved[f"{step}.output"] = outputs[-1]
        saved[f"{step}.input_grad"] = x.grad
        saved.update({f"{step}.grad.{n}": p.grad.copy() for n, p in net.named_parameters()})
        opt.step()
        saved.update({f"{step}.{n}": b.copy() for n, b in net.named_buffers()})
    return saved


def fault_case(case, rank):
    width = 6 if case == "mismatch" and rank == 1 else 5
    minigrad.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, width)).double()
    model = dist.DistributedDataParallel(net)
    opt = D.optimizer("sgd", model.parameters())
    for step in range(1000):
        images, labels = D.batches()[step % D.STEPS]
        if step == 1 and rank == 1:
            if case == "raise":
                raise RuntimeError("rank 1 fails on purpose")
            if case == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
        opt.zero_grad()
        D.loss_of(model, images, labels, D.half(rank)).backward()
        opt.step()


def main(case, out_dir):
    minigrad.set_num_threads(1)          # two ranks on a two-core machine
    dist.init()
    rank = dist.rank()
    if case in ("mismatch", "raise", "kill"):
        fault_case(case, rank)
        return
    saved = train_case(rank) if case == "train" else sync_bn_case(rank)
    np.savez(os.path.join(out_dir, f"rank{rank}.npz"), **saved)


if __name__ == "__main__":
    main(*sys.argv[1:])
