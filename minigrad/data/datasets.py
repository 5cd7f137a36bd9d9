"""Datasets held in memory as uint8 images (N×C×H×W) and int64 labels: MNIST, Fashion-MNIST
(IDX files) and CIFAR-10 (binary version).

Layout under the data root ``root`` (default ``$MINIGRAD_DATA``, else ``~/.cache/minigrad``)::

    root/mnist/          train-images-idx3-ubyte  train-labels-idx1-ubyte    (each raw or .gz)
                         t10k-images-idx3-ubyte   t10k-labels-idx1-ubyte
    root/fashion-mnist/  the same four file names
    root/cifar10/        data_batch_1.bin ... data_batch_5.bin, test_batch.bin (each raw or .gz),
                         or the same in cifar10/cifar-10-batches-bin/ (the official tarball
                         extracted in place), or the official cifar-10-binary.tar.gz itself

Missing files are downloaded (``download=True``, see ``minigrad.data.download``). Every file is
validated on load -- IDX magic numbers, dimensions and sizes, CIFAR record size and count, label
range -- and a malformed one raises ``DatasetError`` naming the file and the fault. Parsing is
``np.frombuffer`` on the decompressed bytes, without any per-image Python. The datasets' image
arrays are read-only (MNIST's share the decompressed bytes without a copy).
"""
import gzip
import math
import os
import struct
import tarfile
import zlib

import numpy as np

from .download import Resource, download_resources, missing_files_message

DATA_ENV = "MINIGRAD_DATA"

IDX_IMAGES_MAGIC = 0x00000803   # 2051: unsigned bytes, 3 dimensions (count, rows, cols)
IDX_LABELS_MAGIC = 0x00000801   # 2049: unsigned bytes, 1 dimension (count)
_IDX_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

CIFAR_IMAGE_SHAPE = (3, 32, 32)
CIFAR_RECORD_BYTES = 1 + math.prod(CIFAR_IMAGE_SHAPE)   # label byte + R, G, B planes


class DatasetError(ValueError):
    """A dataset file exists but is malformed (bad magic number, truncated, wrong counts...)."""


def default_root():
    """``$MINIGRAD_DATA`` if set, else ``~/.cache/minigrad``."""
    return os.environ.get(DATA_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "minigrad")


def read_maybe_gzip(path):
    """The bytes of ``path``, decompressed when its name ends in ``.gz``."""
    with open(path, "rb") as stream:
        data = stream.read()
    if not path.endswith(".gz"):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{path}: not a valid gzip file ({exc})") from None


def parse_idx(data, source="<bytes>", magic=None):
    """The array stored in IDX bytes ``data``.

    IDX: a big-endian 32-bit magic ``0x0000TTDD`` (``TT`` element type, ``DD`` number of
    dimensions), ``DD`` big-endian 32-bit sizes, then the elements in row-major order. With
    ``magic`` given, any other magic number is refused. ``source`` names the file in errors.
    Returns an array of shape (size_1, ..., size_DD), read-only, no copy for byte data.
    """
    if len(data) < 4:
        raise DatasetError(f"{source}: {len(data)} bytes, too short for an IDX header")
    found = int.from_bytes(data[:4], "big")
    if magic is not None and found != magic:
        raise DatasetError(f"{source}: bad magic number {found} (0x{found:08x}), expected "
                           f"{magic} (0x{magic:08x}); not the IDX file expected here")
    type_code, ndim = data[2], data[3]
    if data[:2] != b"\0\0" or type_code not in _IDX_DTYPES or ndim == 0:
        raise DatasetError(f"{source}: bad magic number 0x{found:08x}, not an IDX file")
    header_bytes = 4 + 4 * ndim
    if len(data) < header_bytes:
        raise DatasetError(f"{source}: truncated IDX header ({len(data)} of {header_bytes} bytes)")
    shape = struct.unpack(f">{ndim}I", data[4:header_bytes])
    dtype = _IDX_DTYPES[type_code]
    expected = math.prod(shape) * dtype.itemsize
    held = len(data) - header_bytes
    if held != expected:
        fault = "truncated" if held < expected else "trailing bytes"
        raise DatasetError(f"{source}: {fault}: the header announces shape {shape} "
                           f"({expected} bytes of data) but the file holds {held}")
    array = np.frombuffer(data, dtype, offset=header_bytes).reshape(shape)
    return array if dtype.byteorder in "=|" else array.astype(dtype.newbyteorder("="))


def parse_cifar_batch(data, source="<bytes>", records=None):
    """Images (n×3×32×32 uint8 view) and labels (n uint8) of CIFAR-10 binary batch bytes.

    A record is 3,073 bytes: the label (0..9), then the 1,024 red, 1,024 green and 1,024 blue
    values of a 32×32 image, row-major. ``records``, if given, is the required record count.
    """
    if len(data) % CIFAR_RECORD_BYTES:
        raise DatasetError(f"{source}: {len(data)} bytes is not a whole number of "
                           f"{CIFAR_RECORD_BYTES}-byte CIFAR-10 records (truncated or not a "
                           "CIFAR-10 binary batch)")
    count = len(data) // CIFAR_RECORD_BYTES
    if records is not None and count != records:
        raise DatasetError(f"{source}: holds {count} records, expected {records}")
    table = np.frombuffer(data, np.uint8).reshape(count, CIFAR_RECORD_BYTES)
    labels = table[:, 0]
    _check_labels(labels, 10, source)
    return table[:, 1:].reshape((count,) + CIFAR_IMAGE_SHAPE), labels


def _check_labels(labels, num_classes, source):
    bad = np.flatnonzero(labels >= num_classes)
    if bad.size:
        raise DatasetError(f"{source}: label {labels[bad[0]]} of record {bad[0]} is outside "
                           f"0..{num_classes - 1}")


def _resolve_root(root):
    if root is None:
        return default_root()
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a path (str or os.PathLike) or None, got "
                        f"{type(root).__name__}")
    return os.path.expanduser(os.fspath(root))


def _check_flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _locate(folders, name):
    """Path of ``name`` (raw, else ``name.gz``) in the first of ``folders`` holding it, or None."""
    for folder in folders:
        for candidate in (name, name + ".gz"):
            path = os.path.join(folder, candidate)
            if os.path.isfile(path):
                return path
    return None


class ArrayDataset:
    """Images (N×C×H×W, uint8 0..255 or floating point) and int64 labels held in memory.

    ``dataset[i]`` is ``(image C×H×W, label)``; ``dataset[index_array]`` is
    ``(images, labels)`` -- the vectorised form ``DataLoader`` uses.
    """

    def __init__(self, images, labels, classes=None):
        images, labels = np.asarray(images), np.asarray(labels)
        if images.ndim != 4:
            raise ValueError(f"images must be N×C×H×W (4-D), got shape {images.shape}")
        if images.dtype != np.uint8 and images.dtype.kind != "f":
            raise TypeError(f"images must be uint8 or floating point, got dtype {images.dtype}")
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise TypeError(f"labels must be a 1-D integer array, got dtype {labels.dtype} "
                            f"shape {labels.shape}")
        if len(labels) != len(images):
            raise ValueError(f"images and labels differ in length: {len(images)} images, "
                             f"{len(labels)} labels")
        self.images = images
        self.labels = labels.astype(np.int64, copy=False)
        self.classes = list(classes) if classes is not None else None

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index], self.labels[index]

    def __repr__(self):
        return f"{type(self).__name__}({len(self)} images of shape {self.images.shape[1:]})"


class MNIST(ArrayDataset):
    """MNIST handwritten digits: 60,000 training or 10,000 test images, 1×28×28 uint8 (0 is
    background), labels 0..9. Files: IDX, in ``root/mnist/`` (see the module docstring)."""

    dataset = "mnist"       # folder under the data root, key of download.MIRRORS
    title = "MNIST"
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five",
               "6 - six", "7 - seven", "8 - eight", "9 - nine"]
    files = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
    # The originally distributed .gz files (md5 as published by the dataset's mirrors) and the
    # md5 of their decompressed IDX content (which also accepts re-compressed copies).
    resources = {r.filename: r for r in [
        Resource("train-images-idx3-ubyte.gz", "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873",
                 "md5:6bbc9ace898e44ae57da46a324031adb"),
        Resource("train-labels-idx1-ubyte.gz", "md5:d53e105ee54ea40749a09fcbcd1e9432",
                 "md5:a25bea736e30d166cdddb491f175f624"),
        Resource("t10k-images-idx3-ubyte.gz", "md5:9fb629c4189551a2d022fa330f9573f3",
                 "md5:2646ac647ad5339dbf082846283269ea"),
        Resource("t10k-labels-idx1-ubyte.gz", "md5:ec29112dd5afa0611ce80d1b7f02629c",
                 "md5:27ae3e4e09519cfbb04c329615203637"),
    ]}

    def __init__(self, root=None, train=True, download=True, progress=True):
        self.root = _resolve_root(root)
        self.train = _check_flag("train", train)
        self.folder = os.path.join(self.root, self.dataset)
        image_path, label_path = self._obtain(self.files[self.train],
                                              _check_flag("download", download), progress)
        images = parse_idx(read_maybe_gzip(image_path), image_path, IDX_IMAGES_MAGIC)
        labels = parse_idx(read_maybe_gzip(label_path), label_path, IDX_LABELS_MAGIC)
        if len(images) != len(labels):
            raise DatasetError(f"{image_path} holds {len(images)} images but {label_path} "
                               f"holds {len(labels)} labels")
        _check_labels(labels, len(self.classes), label_path)
        super().__init__(images[:, None], labels, self.classes)

    def _obtain(self, names, download, progress):
        """Paths of the files ``names`` (raw or .gz), downloading the missing ones."""
        paths = [_locate([self.folder], name) for name in names]
        missing = [name + ".gz" for name, path in zip(names, paths) if path is None]
        if missing:
            note = "uncompressed copies (without .gz) work too"
            if not download:
                raise FileNotFoundError(missing_files_message(
                    self.title, self.dataset, self.folder, missing, note))
            download_resources([self.resources[name] for name in missing], self.folder,
                               self.dataset, self.title, progress, note)
            paths = [_locate([self.folder], name) for name in names]
        return paths

    def __repr__(self):
        split = "train" if self.train else "test"
        return f"{type(self).__name__}({split}, {len(self)} images, root={self.root!r})"


class FashionMNIST(MNIST):
    """Fashion-MNIST (Zalando): 60,000 / 10,000 1×28×28 images of clothes in 10 classes, the
    MNIST file names and IDX format, in ``root/fashion-mnist/``."""

    dataset = "fashion-mnist"
    title = "Fashion-MNIST"
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]
    resources = {r.filename: r for r in [
        Resource("train-images-idx3-ubyte.gz", "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        Resource("train-labels-idx1-ubyte.gz", "md5:25c81989df183df01b3e8a0aad5dffbe"),
        Resource("t10k-images-idx3-ubyte.gz", "md5:bef4ecab320f06d8554ea6380940ec79"),
        Resource("t10k-labels-idx1-ubyte.gz", "md5:bb300cfdad3c16e7a12a480ee83cd310"),
    ]}


class CIFAR10(ArrayDataset):
    """CIFAR-10: 50,000 training or 10,000 test images, 3×32×32 uint8 (RGB planes), labels
    0..9. Files: the binary version, in ``root/cifar10/`` (see the module docstring)."""

    dataset = "cifar10"
    title = "CIFAR-10"
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck"]
    files = {True: tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
             False: ("test_batch.bin",)}
    records_per_batch = 10000     # None accepts any count
    archive = Resource("cifar-10-binary.tar.gz", "md5:c32a1d4ab5d03f1284b67883e8d87530")
    archive_folder = "cifar-10-batches-bin"     # the folder inside the official tarball

    def __init__(self, root=None, train=True, download=True, progress=True):
        self.root = _resolve_root(root)
        self.train = _check_flag("train", train)
        self.folder = os.path.join(self.root, self.dataset)
        batches = [parse_cifar_batch(data, source, self.records_per_batch)
                   for source, data in self._read_batches(self.files[self.train],
                                                          _check_flag("download", download),
                                                          progress)]
        super().__init__(np.concatenate([images for images, _ in batches]),
                         np.concatenate([labels for _, labels in batches]), self.classes)
        self.images.flags.writeable = False     # like MNIST's, which view read-only bytes

    def _read_batches(self, names, download, progress):
        """(source, bytes) of each batch ``names``: from files in the folder, else from the
        official tarball there (downloaded if missing)."""
        folders = [self.folder, os.path.join(self.folder, self.archive_folder)]
        found = {}
        for name in names:
            path = _locate(folders, name)
            if path is not None:
                found[name] = (path, read_maybe_gzip(path))
        missing = [name for name in names if name not in found]
        if missing:
            archive = os.path.join(self.folder, self.archive.filename)
            if not os.path.isfile(archive):
                note = (f"or {', '.join(missing)} (each raw or .gz; the official "
                        f"{self.archive.filename} holds them all)")
                if not download:
                    raise FileNotFoundError(missing_files_message(
                        self.title, self.dataset, self.folder, [self.archive.filename], note))
                download_resources([self.archive], self.folder, self.dataset, self.title,
                                   progress, note)
            found.update(read_tar_members(archive, missing))
        return [found[name] for name in names]

    __repr__ = MNIST.__repr__


def read_tar_members(archive, names):
    """{name: (source, bytes)} of the regular files called ``names`` (in any folder) inside
    the ``.tar.gz`` ``archive``. Nothing is extracted to disk."""
    wanted, found = set(names), {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if base in wanted and base not in found and member.isfile():
                    found[base] = (f"{archive}:{member.name}", tar.extractfile(member).read())
                    if len(found) == len(wanted):
                        break
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{archive}: not a valid .tar.gz archive ({exc})") from None
    absent = sorted(wanted - set(found))
    if absent:
        raise DatasetError(f"{archive}: has no member {', '.join(absent)}")
    return found
