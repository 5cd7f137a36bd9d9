"""DataLoader: batches of float32 images and int64 labels, vectorised, reproducibly shuffled."""
import numbers

import numpy as np

from .transforms import Transform


class DataLoader:
    """Iterate over ``dataset`` in batches of ``batch_size``.

    Each batch is a pair of numpy arrays ``(images, labels)``: ``images`` float32 N×C×H×W --
    uint8 pixels scaled to [0, 1] (floating-point datasets pass through as float32), then
    ``transform`` applied to the whole batch -- and ``labels`` int64 of length N. Wrap them with
    ``minigrad.tensor`` to feed a model.

    ``dataset`` must have ``len()`` and return ``(images, labels)`` arrays for
    ``dataset[index_array]`` (``ArrayDataset``, ``MNIST``, ``CIFAR10`` do): one fancy-indexing
    gather per batch, no per-image Python.

    ``shuffle``: a new permutation each epoch (each ``iter()``), drawn from a generator seeded
    by ``seed``; random transforms draw from a second generator derived from the same seed, so
    a given seed reproduces the whole sequence of epochs, batches and augmentations.
    ``drop_last`` drops a final batch smaller than ``batch_size``. ``transform``: a
    ``minigrad.data.transforms.Transform`` (called with the loader's generator) or any callable
    taking and returning a float32 batch.

    ``shard=(rank, world_size)`` gives each rank of a data-parallel job its disjoint part of
    every epoch: the permutation (the same on every rank for a given seed) is cut into global
    batches of ``batch_size × world_size`` and the rank takes block ``rank`` of ``batch_size``
    from each, so ``world_size`` ranks see together exactly the batches one process with
    ``batch_size × world_size`` sees, and the shards cover the data set. A last global batch
    smaller than that (kept unless ``drop_last``) is split as evenly as possible, and a rank
    may then get no last batch (evaluate with a sum over batches and ``all_reduce``). Every
    rank draws its augmentations from its own generator.

    Example::

        loader = DataLoader(train, 64, shuffle=True, drop_last=True, seed=[seed, epoch],
                            shard=(distributed.rank(), distributed.world_size()))
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None,
                 transform=None, shard=None):
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(f"DataLoader: dataset must support len() and indexing, got "
                            f"{type(dataset).__name__}")
        if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) \
                or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if transform is not None and not callable(transform):
            raise TypeError(f"DataLoader: transform must be callable, got "
                            f"{type(transform).__name__}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.transform = transform
        self.rank, self.world_size = _shard(shard)
        shuffle_seed, augment_seed = np.random.SeedSequence(seed).spawn(2)
        if self.world_size > 1:
            augment_seed = augment_seed.spawn(self.world_size)[self.rank]
        self._shuffle_rng = np.random.default_rng(shuffle_seed)
        self._augment_rng = np.random.default_rng(augment_seed)

    def __len__(self):
        return len(self._blocks(len(self.dataset)))

    def __iter__(self):
        count = len(self.dataset)
        order = self._shuffle_rng.permutation(count) if self.shuffle else np.arange(count)
        for start, stop in self._blocks(count):
            images, labels = self.dataset[order[start:stop]]
            yield self._prepare(images), np.asarray(labels, dtype=np.int64)

    def _blocks(self, count):
        """(start, stop) in the epoch's permutation of each of this rank's batches."""
        batch, ranks = self.batch_size, self.world_size
        step = batch * ranks                    # one global batch
        full = count // step
        blocks = [(g * step + self.rank * batch, g * step + (self.rank + 1) * batch)
                  for g in range(full)]
        rest = count - full * step
        if rest and not self.drop_last:
            # the last global batch: blocks of rest // ranks, the first rest % ranks one larger
            size, extra = divmod(rest, ranks)
            start = full * step + self.rank * size + min(self.rank, extra)
            stop = start + size + (self.rank < extra)
            if stop > start:
                blocks.append((start, stop))
        return blocks

    def _prepare(self, images):
        images = np.asarray(images)
        if images.dtype == np.uint8:
            batch = np.divide(images, np.float32(255), dtype=np.float32)
        else:
            batch = images.astype(np.float32)
        if isinstance(self.transform, Transform):
            return self.transform(batch, rng=self._augment_rng)
        if self.transform is not None:
            return self.transform(batch)
        return batch


def _shard(shard):
    """(rank, world_size) from ``shard`` (None: the whole data set, (0, 1))."""
    if shard is None:
        return 0, 1
    try:
        rank, world_size = shard
    except (TypeError, ValueError):
        raise TypeError(f"DataLoader: shard must be a pair (rank, world_size), got "
                        f"{shard!r}") from None
    for value, name in ((rank, "rank"), (world_size, "world_size")):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise TypeError(f"DataLoader: shard {name} must be an int, got {value!r}")
    if not 0 <= rank < world_size:
        raise ValueError(f"DataLoader: shard must satisfy 0 <= rank < world_size, got "
                         f"{tuple(shard)!r}")
    return int(rank), int(world_size)
