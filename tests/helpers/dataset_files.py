"""Dataset files for the data and download tests: small MNIST and CIFAR-10 files generated in
the official formats (written here independently of minigrad.data), and the real datasets
under MINIGRAD_DATA with their known label counts."""
import gzip
import io
import os
import struct
import tarfile

import numpy as np
import pytest

from minigrad.data import CIFAR10

# -- generated files ------------------------------------------------------------------------------


def idx_bytes(array, type_code=0x08):
    """IDX encoding: magic (0, 0, type code, number of dimensions), big-endian sizes, big-endian
    data."""
    big_endian = {0x08: ">u1", 0x0B: ">i2", 0x0D: ">f4"}[type_code]
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(big_endian).tobytes()


def write(path, data, compress):
    """Writes ``data`` to ``path`` (gzip-compressed to ``path``.gz with ``compress``); returns
    the path written."""
    path = str(path) + (".gz" if compress else "")
    with open(path, "wb") as stream:
        stream.write(gzip.compress(data) if compress else data)
    return path


def make_mnist(folder, n=7, size=(5, 4), seed=0, compress=True, train=True):
    """Random uint8 images and labels written as the MNIST train (or t10k) IDX pair in
    ``folder``; returns (images, labels)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n,) + size, dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    prefix = "train" if train else "t10k"
    os.makedirs(folder, exist_ok=True)
    write(os.path.join(folder, f"{prefix}-images-idx3-ubyte"), idx_bytes(images), compress)
    write(os.path.join(folder, f"{prefix}-labels-idx1-ubyte"), idx_bytes(labels), compress)
    return images, labels


def cifar_batch_bytes(images, labels):
    """CIFAR-10 binary records: label byte, then the R, G, B planes (row-major), per image."""
    records = bytearray()
    for image, label in zip(images, labels):
        records.append(int(label))
        for channel in image:
            records += channel.tobytes()
    return bytes(records)


def make_cifar_batches(names, records=3, seed=0):
    """{batch file name: (uint8 images (records, 3, 32, 32), uint8 labels)}, random."""
    rng = np.random.default_rng(seed)
    batches = {}
    for name in names:
        images = rng.integers(0, 256, (records, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 10, records, dtype=np.uint8)
        batches[name] = (images, labels)
    return batches


TRAIN_BATCHES = [f"data_batch_{i}.bin" for i in range(1, 6)]


class TinyCIFAR10(CIFAR10):
    """CIFAR10 expecting 3 records per batch file, the size make_cifar_batches writes."""
    records_per_batch = 3


def write_cifar_tarball(path, batches, skip=()):
    """The official archive layout: cifar-10-batches-bin/<name> for each batch not in skip."""
    with tarfile.open(path, "w:gz") as tar:
        for name, (images, labels) in batches.items():
            if name in skip:
                continue
            data = cifar_batch_bytes(images, labels)
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def check_cifar(dataset, batches, names):
    """Asserts that ``dataset`` holds the images and labels of ``batches[name]`` for ``names``,
    in that order, as uint8 (N, 3, 32, 32) images and int64 labels."""
    images = np.concatenate([batches[name][0] for name in names])
    labels = np.concatenate([batches[name][1] for name in names])
    assert dataset.images.shape == (len(labels), 3, 32, 32) and dataset.images.dtype == np.uint8
    assert dataset.labels.dtype == np.int64
    np.testing.assert_array_equal(dataset.images, images)
    np.testing.assert_array_equal(dataset.labels, labels)


# -- the real datasets ----------------------------------------------------------------------------

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def real_data_root(dataset):
    """MINIGRAD_DATA, when it holds the folder ``dataset``; skips the calling test otherwise."""
    root = os.environ.get("MINIGRAD_DATA")
    if not root:
        pytest.skip("MINIGRAD_DATA is not set (point it at a folder holding mnist/ and "
                    "cifar10/)")
    if not os.path.isdir(os.path.join(root, dataset)):
        pytest.skip(f"no {dataset}/ folder in MINIGRAD_DATA={root}")
    return root
