"""The world of a data-parallel job: the processes ``mpiexec`` started, this one's rank among them,
and collectives on numpy arrays (MPI through mpi4py, the optional extra ``distributed``).

``init()`` joins the world. Under ``mpiexec -n P`` it is P processes; started alone (``python
train.py``) it is this process only, so one script runs both ways, and without mpi4py installed
too. Nothing here imports mpi4py before ``init()`` runs (``import minigrad`` never loads MPI).

Faults end the whole job, never hang it: once a world of several processes is joined, an
uncaught exception on any rank prints its traceback and calls ``MPI_Abort``, which makes
``mpiexec`` kill every rank and exit non-zero. A rank killed by a signal is noticed by
``mpiexec`` itself (MPICH's Hydra ends the job at once; see docs/distributed.md). Without the
hook, the other ranks would wait forever in their next collective for the rank that died.
"""
import os
import sys
import time

import numpy as np

#: Environment variables in which MPI launchers tell a process the size of its world (MPICH's
#: and Intel MPI's Hydra, Slurm's PMI; Open MPI). Read only to give a clear error when mpi4py is
#: missing under a launcher; with mpi4py, MPI itself says.
_LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")

_OPS = ("sum", "mean", "max")
#: How long a failing rank waits after printing its traceback before it aborts the job.
ABORT_GRACE_SECONDS = 0.5


class _World:
    """This process's place in the job: ``comm`` is the mpi4py communicator of all ranks (None
    in a world of one without mpi4py), ``mpi`` the ``mpi4py.MPI`` module."""

    def __init__(self, comm=None, mpi=None):
        self.comm, self.mpi = comm, mpi
        self.rank = comm.Get_rank() if comm is not None else 0
        self.size = comm.Get_size() if comm is not None else 1
        self.local_size = None       # ranks on this machine, found when first asked


_world = None


def init():
    """Join the job's world of processes; calling it again does nothing.

    Under ``mpiexec`` this initialises MPI (importing mpi4py) and, when there are several
    ranks, installs the excepthook that aborts the job on an uncaught exception. Started
    without a launcher, the world is this process alone (``rank() == 0``,
    ``world_size() == 1``); every collective then returns its input.

    Raises:
        ImportError: started by an MPI launcher as one of several processes, but mpi4py is not
            installed (each process would otherwise train alone, unknowingly).

    Example::

        from minigrad import distributed as dist
        dist.init()
        print(f"rank {dist.rank()} of {dist.world_size()}")
    """
    global _world
    if _world is not None:
        return
    try:
        from mpi4py import MPI
    except ImportError:
        launched = max(int(os.environ.get(name, "1") or 1) for name in _LAUNCHER_SIZE_VARIABLES)
        if launched > 1:
            raise ImportError(
                f"minigrad.distributed: this process is one of {launched} started by an MPI "
                "launcher, but mpi4py is not installed; install the extra: "
                "pip install 'minigrad[distributed]'") from None
        _world = _World()
        return
    _world = _World(MPI.COMM_WORLD, MPI)
    if _world.size > 1:
        _abort_on_uncaught_exception(_world)


def _abort_on_uncaught_exception(world):
    """Make an uncaught exception on this rank end every rank (see the module docstring)."""
    previous = sys.excepthook

    def excepthook(kind, value, traceback):
        previous(kind, value, traceback)    # the traceback first: it says what went wrong
        sys.stderr.write(f"minigrad.distributed: uncaught {kind.__name__} on rank "
                         f"{world.rank} of {world.size}; aborting all ranks (MPI_Abort)\n")
        sys.stderr.flush()
        # MPI_Abort tears down the launcher's output forwarding at once: give it a moment to
        # pass on the traceback, or the user may see only its first lines
        time.sleep(ABORT_GRACE_SECONDS)
        world.comm.Abort(1)

    sys.excepthook = excepthook


def _joined():
    init()
    return _world


def rank():
    """This process's rank, 0 … ``world_size() - 1`` (joins the world first if needed)."""
    return _joined().rank


def world_size():
    """The number of processes in the job (1 when started without ``mpiexec``)."""
    return _joined().size


def communicator():
    """The mpi4py communicator of all ranks, or None in a world of one without mpi4py. For the
    modules of this package, which issue their own (nonblocking) collectives."""
    return _joined().comm


def mpi_module():
    """The ``mpi4py.MPI`` module (its constants and request functions), or None in a world of
    one without mpi4py."""
    return _joined().mpi


def local_world_size():
    """How many ranks of the job run on this machine (they share its cores)."""
    world = _joined()
    if world.comm is None or world.size == 1:
        return 1
    if world.local_size is None:     # a collective: every rank asks the first time
        world.local_size = world.comm.Split_type(world.mpi.COMM_TYPE_SHARED).Get_size()
    return world.local_size


def broadcast(value, root=0):
    """Rank ``root``'s ``value`` (any picklable Python object: a checkpoint's dict, a flag), on
    every rank. For occasional state, not for gradients.

    Example::

        state = dist.broadcast(minigrad.load(path) if dist.rank() == 0 else None)
    """
    world = _joined()
    if world.comm is None or world.size == 1:
        return value
    return world.comm.bcast(value, root=root)


def barrier():
    """Wait until every rank has called ``barrier()``."""
    world = _joined()
    if world.comm is not None:
        world.comm.Barrier()


def all_reduce(array, op="sum"):
    """Combine ``array`` element-wise over all ranks; every rank gets the result.

    Meant for metrics (a loss sum, a count of correct predictions); gradients are averaged by
    ``DistributedDataParallel``.

    Args:
        array: a number or a numeric array (any shape; the same shape and dtype on every rank).
        op: ``"sum"``, ``"mean"`` (the sum divided by ``world_size()``; floating point) or
            ``"max"``.

    Returns:
        a new array of ``array``'s shape (a Python number for a number); the input is
        unchanged.

    Example::

        correct = dist.all_reduce(int((predictions == labels).sum()))    # over all shards
    """
    if op not in _OPS:
        raise ValueError(f"all_reduce: op must be one of {', '.join(map(repr, _OPS))}, got "
                         f"{op!r}")
    number = not isinstance(array, np.ndarray)
    values = np.asarray(array)
    if values.dtype.kind == "b":
        values = values.astype(np.int64)
    if values.dtype.kind not in "iuf":
        raise TypeError(f"all_reduce: array must be numeric, got dtype {values.dtype}")
    result = np.array(values, order="C")      # a copy: MPI writes the result into it
    world = _joined()
    if world.comm is not None and world.size > 1:
        world.comm.Allreduce(world.mpi.IN_PLACE, result,
                             op=world.mpi.MAX if op == "max" else world.mpi.SUM)
    if op == "mean":
        result = result / world.size
    return result.item() if number else result
