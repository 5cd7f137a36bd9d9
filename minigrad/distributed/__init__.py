"""Data-parallel training across processes and machines on MPI (the optional extra
``distributed``: ``pip install 'minigrad[distributed]'`` brings mpi4py and MPICH).

Every process (rank) holds a replica of the model and trains on its own shard of each batch;
the gradients are averaged over the ranks during ``backward()``, so every rank takes the same
optimiser step. The same script runs alone (a world of one) or under ``mpiexec``:

    mpiexec -n 2 python train.py                                   # two processes here
    mpiexec -n 64 -f hosts python train.py                         # 64 over several machines

* ``world``: ``init()``, ``rank()``, ``world_size()``, ``local_world_size()``, ``barrier()``,
  ``all_reduce()``, ``broadcast()``;
* ``ddp``: ``DistributedDataParallel`` (gradient averaging in buckets, overlapped with
  backward; ``no_sync()``);
* ``sync_batchnorm``: the op behind ``minigrad.nn.SyncBatchNorm``;
* sharding is ``minigrad.data.DataLoader(..., shard=(rank(), world_size()))``.

See docs/distributed.md for the measurements and the fault behaviour.
"""
from .ddp import DistributedDataParallel  # noqa: F401
from .world import (all_reduce, barrier, broadcast, init, local_world_size, rank,  # noqa: F401
                    world_size)
