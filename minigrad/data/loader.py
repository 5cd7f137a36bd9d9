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
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None,
                 transform=None):
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
        shuffle_seed, augment_seed = np.random.SeedSequence(seed).spawn(2)
        self._shuffle_rng = np.random.default_rng(shuffle_seed)
        self._augment_rng = np.random.default_rng(augment_seed)

    def __len__(self):
        count, batch = len(self.dataset), self.batch_size
        return count // batch if self.drop_last else -(-count // batch)

    def __iter__(self):
        count = len(self.dataset)
        order = self._shuffle_rng.permutation(count) if self.shuffle else np.arange(count)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            images, labels = self.dataset[order[start:start + self.batch_size]]
            yield self._prepare(images), np.asarray(labels, dtype=np.int64)

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
