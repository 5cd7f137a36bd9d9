"""SyncBatchNorm: BatchNorm2d whose training statistics span the global batch of a data-parallel
job (every rank's part), so that per-rank batches too small for good statistics still
normalise as the whole batch would. The op and its gradient: ``minigrad.distributed.
sync_batchnorm``."""
from ..distributed import sync_batchnorm as SB
from ..distributed import world
from .layers import BatchNorm2d


class SyncBatchNorm(BatchNorm2d):
    """``BatchNorm2d`` (same arguments, parameters, buffers and state_dict) that, in training
    mode in a world of several ranks, normalises with the mean and variance of the global
    batch and updates the running statistics from them, identically on every rank. In eval
    mode, or in a world of one, it is exactly ``BatchNorm2d``.

    In training every rank must run it, the same number of times in the same order: each
    forward and backward exchanges per-channel statistics (two vectors of C values per rank).

    Example::

        model = nn.SyncBatchNorm.convert_sync_batchnorm(build_model())
        model = distributed.DistributedDataParallel(model)
    """

    def forward(self, x):
        if not self.training or world.world_size() == 1:
            return super().forward(x)
        self._check_input(x)
        y = SB.sync_batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                               self._momentum_now(), self.eps)
        if self.track_running_stats:
            self.num_batches_tracked += 1
        return y

    @classmethod
    def convert_sync_batchnorm(cls, module):
        """Replace every ``BatchNorm2d`` in ``module`` (itself included) by a SyncBatchNorm
        that shares its parameters and buffers, in place; returns the converted module.

        Args:
            module: an ``nn.Module``.

        Returns:
            ``module`` with its BatchNorm2d children swapped (or a new SyncBatchNorm, if
            ``module`` itself is a BatchNorm2d).

        Example::

            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        """
        if isinstance(module, BatchNorm2d) and not isinstance(module, cls):
            return cls._from(module)
        for parent in list(module.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, BatchNorm2d) and not isinstance(child, cls):
                    # In place in the child table, keeping the order Sequential runs them in.
                    synced = cls._from(child)
                    parent._modules[name] = synced
                    object.__setattr__(parent, name, synced)
        return module

    @classmethod
    def _from(cls, bn):
        synced = cls.__new__(cls)
        # The same Parameters, buffers, settings and hook tables (the hooks' handles still
        # remove them); the BatchNorm2d is dropped from the model.
        synced.__dict__.update(bn.__dict__)
        return synced
