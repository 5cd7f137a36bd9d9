"""Data-parallel training step of the inception example (issue 18): where the time of a step goes
under DistributedDataParallel, and what overlapping the gradient allreduce with backward buys.

    mpiexec -n 2 python benchmarks/distributed.py --threads 1      # 2 processes × 1 thread
    python benchmarks/distributed.py --threads 2                    # 1 process × 2 threads

The global batch (``--batch``, random CIFAR-sized images) is split across the ranks. For each
configuration (bucket size, overlap on or off) it times ``--steps`` training steps after
``--warmup`` and reports per step (medians over the steps, the slowest rank's): the whole
step, forward, backward (which includes the averaging), the time DDP waited for allreduces after
the last gradient (communication the overlap did not hide), and DDP's whole gradient work. It
also times a bare ``Allreduce`` of the model's gradient bytes, the communication to hide.
Rank 0 prints the table; ``--json`` writes it too. Not part of benchmarks/run.py (that harness
compares single processes with PyTorch).
"""
import argparse
import json
import os
import sys
import time

import minigrad  # (before numpy: its OpenBLAS setting applies only then; minigrad/runtime.py)
import minigrad.nn.functional as F
import numpy as np
from minigrad import distributed as dist
from minigrad import optim

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "examples"))

import inception_cifar  # noqa: E402  (from examples/)

#: (bucket_mb, overlap) per configuration: PyTorch's default size (one bucket for this ~1.3 MB
#: model, so nothing to overlap), smaller buckets that can start during backward, and the
#: smallest without overlap for comparison.
CONFIGS = [(25, True), (0.25, True), (0.25, False)]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="global batch (all ranks)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1,
                        help="threads per process (OpenMP kernels and BLAS)")
    parser.add_argument("--json", default=None, help="also write the results here (rank 0)")
    return parser.parse_args(argv)


def time_steps(args, bucket_mb, overlap):
    minigrad.manual_seed(0)
    ranks = dist.world_size()
    local = args.batch // ranks
    rng = np.random.default_rng(dist.rank())
    images = minigrad.tensor(rng.normal(size=(local, 3, 32, 32)).astype(np.float32))
    labels = minigrad.tensor(rng.integers(0, 10, local))
    model = dist.DistributedDataParallel(inception_cifar.build_model(), bucket_mb=bucket_mb,
                                         overlap=overlap)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rows = []
    for step in range(args.warmup + args.steps):
        dist.barrier()
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(images), labels)
        t1 = time.perf_counter()
        opt.zero_grad()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        if step >= args.warmup:
            rows.append([t3 - t0, t1 - t0, t2 - t1, model.last_wait_seconds,
                         model.last_comm_seconds])
    rows = dist.all_reduce(np.array(rows), op="max")
    step, forward, backward, wait, comm = np.median(rows, axis=0)
    buckets = len(getattr(model, "_buckets", ())) or 1
    return {"bucket_mb": bucket_mb, "overlap": overlap, "buckets": buckets,
            "step_s": step, "forward_s": forward, "backward_s": backward, "wait_s": wait,
            "ddp_gradient_work_s": comm, "images_per_s": args.batch / step}


def bare_allreduce(nbytes, repeat=20):
    """Median seconds of one in-place Allreduce of ``nbytes`` of float32."""
    comm = dist.world.communicator()
    if comm is None or dist.world_size() == 1:
        return 0.0
    buffer = np.ones(nbytes // 4, np.float32)
    times = []
    for _ in range(repeat + 3):
        comm.Barrier()
        start = time.perf_counter()
        comm.Allreduce(dist.world.mpi_module().IN_PLACE, buffer)
        times.append(time.perf_counter() - start)
    return float(np.median(dist.all_reduce(np.array(times[3:]), op="max")))


def main(argv=None):
    args = parse_args(argv)
    minigrad.set_num_threads(args.threads)
    minigrad.runtime.set_blas_threads(args.threads)
    dist.init()
    gradient_bytes = sum(p.data.nbytes for p in inception_cifar.build_model().parameters())
    results = {"ranks": dist.world_size(), "threads": args.threads, "batch": args.batch,
               "gradient_bytes": gradient_bytes,
               "bare_allreduce_s": bare_allreduce(gradient_bytes),
               "configs": [time_steps(args, *config)
                           for config in (CONFIGS if dist.world_size() > 1 else CONFIGS[:1])]}
    if dist.rank() == 0:
        print(f"{results['ranks']} process(es) × {args.threads} thread(s), global batch "
              f"{args.batch}, gradients {gradient_bytes / 2**20:.2f} MB, bare allreduce "
              f"{results['bare_allreduce_s'] * 1e3:.2f} ms")
        print("bucket_mb overlap buckets  step_ms  fwd_ms  bwd_ms  wait_ms  ddp_ms  img/s")
        for r in results["configs"]:
            print(f"{r['bucket_mb']:>9} {str(r['overlap']):>7} {r['buckets']:>7} "
                  f"{r['step_s'] * 1e3:8.1f} {r['forward_s'] * 1e3:7.1f} "
                  f"{r['backward_s'] * 1e3:7.1f} {r['wait_s'] * 1e3:8.2f} "
                  f"{r['ddp_gradient_work_s'] * 1e3:7.2f} {r['images_per_s']:6.1f}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
