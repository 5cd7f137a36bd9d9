"""Batch normalisation with statistics over the global batch: every rank's part of it.

The op is ``ops.normalization.BatchNorm`` with the two places where it sums over the batch
widened to all ranks (its formulas are in that module):

* forward: each rank computes its part's per-channel count n_r, mean m_r and biased variance
  v_r; one ``Allgather`` gives every rank all of them, and every rank combines them in rank
  order (Chan et al.'s parallel variance: μ = Σ n_r m_r / N, σ² = Σ n_r (v_r + (m_r − μ)²) / N),
  so all ranks hold the same bits and no E[x²] − E[x]² cancellation creeps in;
* backward: the input gradient needs Σ gy and Σ gy·(x − μ) over the global batch; a second
  ``Allgather`` of each rank's sums, added in rank order.

γ's and β's gradients stay this rank's own sums: ``DistributedDataParallel`` averages them with
the other parameters. Since each rank's loss is the mean over its own part, the input gradient
is the gradient of the sum of the ranks' losses; averaging parameter gradients over the ranks
then gives exactly the single-process gradient of the mean loss over the global batch.
"""
import numpy as np

from ..ops import normalization as N
from . import world


class SyncBatchNorm(N.BatchNorm):
    """``BatchNorm`` (batch statistics) whose statistics span the global batch. Inputs x, γ, β;
    every rank must call it, in the same order (it communicates)."""

    def __init__(self, eps, comm):
        super().__init__(True, eps)
        self.comm = comm

    def batch_moments(self, xr, threads):
        mean, var, count = super().batch_moments(xr, threads)
        if count == 0:                  # a rank without images contributes nothing
            mean[...] = var[...] = 0.0
        mine = np.concatenate([[float(count)], mean, var])
        every = self._allgather(mine)
        counts, means, variances = every[:, 0], every[:, 1:1 + len(mean)], every[:, 1 + len(mean):]
        total = counts.sum()
        if total <= 1:
            raise ValueError(f"SyncBatchNorm: training needs more than one value per channel "
                             f"over all ranks, got {int(total)}")
        global_mean = (counts[:, None] * means).sum(axis=0) / total
        global_var = (counts[:, None] * (variances + (means - global_mean) ** 2)).sum(axis=0) \
            / total
        return global_mean, global_var, int(total)

    def batch_sums(self, sum_gy, sum_gy_xc):
        every = self._allgather(np.concatenate([sum_gy, sum_gy_xc]))
        total = every.sum(axis=0)
        return total[:len(sum_gy)], total[len(sum_gy):]

    def _allgather(self, values):
        """(ranks, len(values)) array of every rank's ``values`` (float64), in rank order."""
        every = np.empty((self.comm.Get_size(), len(values)))
        self.comm.Allgather(np.ascontiguousarray(values, dtype=np.float64), every)
        return every


def sync_batch_norm(input, running_mean, running_var, weight, bias, momentum, eps):
    """Training-mode ``batch_norm`` over the global batch (see the module docstring): input
    (N_r, C, *) is this rank's part; ``running_mean``/``running_var`` (C,) arrays (or None)
    are updated in place from the global statistics, the same on every rank; ``weight`` and
    ``bias`` are (C,) tensors (γ, β; 1 and 0 when None). Output: this rank's part, the shape
    of ``input``.

    Example::

        y = sync_batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, 0.1, 1e-5)
    """
    channels = input.shape[1]
    weight = N._affine_tensor(weight, "weight", channels, input.dtype, 1.0)
    bias = N._affine_tensor(bias, "bias", channels, input.dtype, 0.0)
    op = SyncBatchNorm(eps, world.communicator())
    y = op(input, weight, bias)
    if running_mean is not None:
        N.update_running_stats(running_mean, running_var, op, momentum)
    return y
