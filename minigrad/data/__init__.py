"""Datasets (MNIST, Fashion-MNIST, CIFAR-10), their verified download, the DataLoader and the
batch transforms. See ``datasets.py`` for the folder layout under ``$MINIGRAD_DATA``."""
from . import transforms  # noqa: F401
from .datasets import (CIFAR10, MNIST, ArrayDataset, DatasetError, FashionMNIST,  # noqa: F401
                       default_root)
from .download import DownloadError  # noqa: F401
from .loader import DataLoader  # noqa: F401
from .transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip  # noqa: F401
