"""DistributedDataParallel: one replica of the model per rank, gradients averaged over the ranks
during ``backward()`` (Horovod's and PyTorch's scheme), so that every rank takes the same
optimiser step.

Gradients travel in flat buckets of about ``bucket_mb`` MB, one in-place allreduce per bucket:
one per parameter would pay MPI's per-message latency a hundred times per step. Parameters are
put into buckets in reverse registration order, the order backward roughly produces their
gradients. A post-accumulate hook on every parameter copies its gradient into its bucket; the
hook that completes a bucket starts that bucket's nonblocking allreduce (``Iallreduce``), so the
transfer overlaps the rest of backward, and the hooks in between call ``Testall`` to let MPI
progress (MPICH moves nonblocking collectives only inside MPI calls). Buckets start in index
order, the same on every rank, as MPI requires of collectives on one communicator. The hook of
the last parameter waits for all buckets and writes the means back into the ``.grad`` arrays: by
the time ``loss.backward()`` returns, every ``.grad`` is the mean over the ranks.
"""
import contextlib
import time

import numpy as np

from ..nn.module import Module
from . import world


class _Bucket:
    """A flat gradient buffer of one dtype and the parameters whose gradients it carries."""

    def __init__(self, params):
        self.params = params
        self.offsets = np.cumsum([0] + [p.size for p in params])
        self.flat = np.empty(int(self.offsets[-1]), dtype=params[0].dtype)
        self.arrived = [False] * len(params)
        self.missing = len(params)     # parameters whose gradient has not arrived yet

    def put(self, index, grad):
        """Copy a parameter's gradient into the buffer; True if it is the first this step (a
        second backward before the allreduce brings the accumulated gradient again)."""
        self.flat[self.offsets[index]:self.offsets[index + 1]] = grad.reshape(-1)
        first, self.arrived[index] = not self.arrived[index], True
        self.missing -= first
        return first

    def clear(self):
        self.arrived = [False] * len(self.params)
        self.missing = len(self.params)

    def write_means(self, ranks):
        """Each parameter's ``.grad`` ← its slice of the summed buffer / ``ranks``, in place
        (a parameter's ``.grad`` array is its own: ``Tensor._accumulate`` copies shared ones)."""
        for index, p in enumerate(self.params):
            part = self.flat[self.offsets[index]:self.offsets[index + 1]]
            np.divide(part.reshape(p.grad.shape), ranks, out=p.grad)


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training: each rank runs it on its own part of the
    global batch, and ``backward()`` leaves the mean gradient over all ranks in every
    parameter's ``.grad``.

    At construction (a collective: every rank must construct it) rank 0's parameters and
    buffers are broadcast to all ranks, after checking that all ranks hold the same
    architecture (parameter and buffer names, shapes, dtypes); a mismatch raises ValueError on
    every rank, naming the first difference. Calling the wrapper runs ``module``. In training
    mode it first broadcasts rank 0's buffers (BatchNorm's running statistics), so every
    replica stays the same model (PyTorch's ``broadcast_buffers``); BatchNorm still normalises
    with each rank's own batch statistics unless converted with
    ``nn.SyncBatchNorm.convert_sync_batchnorm``.

    Every parameter that requires grad must receive a gradient in each backward, on every
    rank (a parameter the loss does not use: set its ``requires_grad`` to False); the next
    call raises RuntimeError naming those that did not. ``state_dict()`` keys carry the prefix
    ``"module."``; save ``ddp.module.state_dict()`` for a checkpoint that a single process
    loads.

    Args:
        module: the ``nn.Module`` to replicate.
        bucket_mb: the size of a gradient bucket in MB (2**20 bytes); smaller buckets start
            communicating earlier in backward, larger ones pay MPI's latency fewer times.
        broadcast_buffers: broadcast rank 0's buffers before each training-mode forward.
        overlap: start each bucket's allreduce as soon as its gradients are complete (True), or
            allreduce all buckets after the last gradient (False; for measuring the overlap).

    Attributes:
        last_wait_seconds: time the last synchronised backward spent waiting for allreduces
            after the last gradient (the communication that overlap did not hide).
        last_comm_seconds: all the time it spent on the gradients: copying them into the
            buckets, starting, progressing and waiting for the allreduces, writing the means.

    Example::

        from minigrad import distributed as dist
        dist.init()
        model = dist.DistributedDataParallel(build_model())
        optimizer = optim.SGD(model.parameters(), lr=0.1)
        for images, labels in DataLoader(train, 64, shuffle=True, seed=epoch,
                                         shard=(dist.rank(), dist.world_size())):
            loss = F.cross_entropy(model(tensor(images)), tensor(labels))
            optimizer.zero_grad()
            loss.backward()          # .grad: the mean over all ranks
            optimizer.step()         # the same step on every rank
    """

    def __init__(self, module, bucket_mb=25, broadcast_buffers=True, overlap=True):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: module must be an nn.Module, got "
                            f"{type(module).__name__}")
        if isinstance(bucket_mb, bool) or not isinstance(bucket_mb, (int, float)) \
                or not bucket_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_mb must be a positive number, "
                             f"got {bucket_mb!r}")
        self.module = module
        self.broadcast_buffers, self.overlap = bool(broadcast_buffers), bool(overlap)
        self.last_wait_seconds = self.last_comm_seconds = 0.0
        comm = world.communicator()
        self._ranks = world.world_size()
        self._mpi = world.mpi_module()
        self._synchronising = True
        if self._ranks == 1:
            return              # a world of one: nothing to broadcast, average or hook
        self._check_same_architecture(comm)
        for _, array in self._state_arrays():
            comm.Bcast(array, root=0)
        # Its own communicator, so that its nonblocking allreduces cannot interleave with the
        # user's collectives (a metric all_reduce, SyncBatchNorm's) on the world's.
        self._comm = comm.Dup()
        params = [p for p in self.module.parameters() if p.requires_grad]
        self._buckets = _buckets(params[::-1], bucket_mb * 2**20)
        self._place = {}           # id(parameter) → (bucket index, index in the bucket)
        for b, bucket in enumerate(self._buckets):
            for i, p in enumerate(bucket.params):
                self._place[id(p)] = (b, i)
                p.register_post_accumulate_grad_hook(self._gradient_ready)
        self._reset()

    # -- construction -----------------------------------------------------------------------
    def _state_arrays(self):
        """(name, array) of every parameter and buffer, in state_dict order."""
        for name, p in self.module.named_parameters():
            yield name, p.data
        yield from self.module.named_buffers()

    def _check_same_architecture(self, comm):
        mine = [(name, tuple(array.shape), str(array.dtype))
                for name, array in self._state_arrays()]
        every = comm.allgather(mine)    # every rank sees every description: all raise alike
        for r, theirs in enumerate(every[1:], start=1):
            if theirs != every[0]:
                raise ValueError(f"DistributedDataParallel: the model on rank {r} differs from "
                                 f"rank 0's: {_first_difference(every[0], theirs, r)}")

    # -- running ------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        if self._ranks > 1:
            self._check_last_backward()
            if self.training and self.broadcast_buffers:
                self._broadcast_buffers()
        return self.module(*args, **kwargs)

    def _broadcast_buffers(self):
        # One broadcast per dtype (a float one and BatchNorm's int64 counters), not per buffer.
        by_dtype = {}
        for _, b in self.module.named_buffers():
            by_dtype.setdefault(b.dtype, []).append(b)
        for buffers in by_dtype.values():
            flat = np.concatenate([b.reshape(-1) for b in buffers])
            self._comm.Bcast(flat, root=0)
            offset = 0
            for b in buffers:
                b[...] = flat[offset:offset + b.size].reshape(b.shape)
                offset += b.size

    @contextlib.contextmanager
    def no_sync(self):
        """Inside the block, backward accumulates gradients locally without communicating;
        the first backward after it averages the accumulated ``.grad`` (gradient accumulation
        over several micro-batches for the price of one allreduce).

        Example::

            with model.no_sync():
                for micro in batches[:-1]:
                    loss_of(model, micro).backward()
            loss_of(model, batches[-1]).backward()    # averages the sum of all micro-batches
        """
        previous, self._synchronising = self._synchronising, False
        try:
            yield
        finally:
            self._synchronising = previous

    # -- gradient averaging ---------------------------------------------------------------
    def _reset(self):
        for bucket in self._buckets:
            bucket.clear()
        self._missing = len(self._place)   # gradients still to arrive this step
        self._requests, self._started = [], 0
        self._comm_seconds = 0.0

    def _gradient_ready(self, p):
        """Post-accumulate hook of every parameter (see the module docstring)."""
        if not self._synchronising:
            return
        start = time.perf_counter()
        b, i = self._place[id(p)]
        self._missing -= self._buckets[b].put(i, p.grad)
        if self.overlap:
            while self._started < len(self._buckets) and not self._buckets[self._started].missing:
                self._requests.append(self._comm.Iallreduce(
                    self._mpi.IN_PLACE, self._buckets[self._started].flat, op=self._mpi.SUM))
                self._started += 1
            if self._requests and self._started < len(self._buckets):
                self._mpi.Request.Testall(self._requests)
        self._comm_seconds += time.perf_counter() - start
        if not self._missing:
            self._finish()

    def _finish(self):
        """All gradients are in: complete the allreduces and write the means."""
        start = time.perf_counter()
        if self.overlap:
            self._mpi.Request.Waitall(self._requests)
        else:
            for bucket in self._buckets:
                self._comm.Allreduce(self._mpi.IN_PLACE, bucket.flat, op=self._mpi.SUM)
        waited = time.perf_counter() - start
        for bucket in self._buckets:
            bucket.write_means(self._ranks)
        self.last_wait_seconds = waited
        self.last_comm_seconds = self._comm_seconds + time.perf_counter() - start
        self._reset()

    def _check_last_backward(self):
        """Raise if the last backward left parameters without a gradient (see the class
        docstring), after completing the allreduces it had started."""
        if self._missing == len(self._place):
            return
        self._mpi.Request.Waitall(self._requests)
        names = {id(p): name for name, p in self.module.named_parameters()}
        waiting = [names[id(p)] for bucket in self._buckets
                   for p, arrived in zip(bucket.params, bucket.arrived) if not arrived]
        self._reset()
        raise RuntimeError(
            f"DistributedDataParallel: the last backward() gave no gradient to "
            f"{', '.join(waiting[:5])}{' …' if len(waiting) > 5 else ''} ({len(waiting)} "
            "parameters), so their gradients were not averaged. Every parameter that requires "
            "grad must get one in each backward, on every rank; set requires_grad=False on "
            "those the loss does not use")

    def extra_repr(self):
        return f"ranks={self._ranks}"


def _buckets(params, capacity_bytes):
    """Consecutive runs of ``params`` of one dtype, each of about ``capacity_bytes`` (at least
    one parameter)."""
    buckets, current, size = [], [], 0
    for p in params:
        if current and (p.dtype != current[0].dtype or size + p.data.nbytes > capacity_bytes):
            buckets.append(_Bucket(current))
            current, size = [], 0
        current.append(p)
        size += p.data.nbytes
    if current:
        buckets.append(_Bucket(current))
    return buckets


def _first_difference(reference, other, rank):
    """A sentence naming the first entry where rank ``rank``'s description differs from rank
    0's (entries are (name, shape, dtype))."""
    for ours, theirs in zip(reference, other):
        if ours != theirs:
            return (f"{ours[0]!r} has shape {ours[1]} and dtype {ours[2]} on rank 0 but "
                    f"{theirs[0]!r} has shape {theirs[1]} and dtype {theirs[2]} on rank {rank}")
    longer, shorter = (reference, other) if len(reference) > len(other) else (other, reference)
    owner = 0 if longer is reference else rank
    return (f"{len(reference)} parameters and buffers on rank 0, {len(other)} on rank {rank} "
            f"(first extra on rank {owner}: {longer[len(shorter)][0]!r})")
