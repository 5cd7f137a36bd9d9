"""minigrad.data: IDX and CIFAR-10 parsers on small generated files, the real datasets (when
MINIGRAD_DATA is available), DataLoader, and the batch transforms against per-image loops."""
import os

import numpy as np
import pytest

from minigrad.data import (CIFAR10, MNIST, ArrayDataset, Compose, DataLoader, DatasetError,
                           FashionMNIST, Normalize, RandomCrop, RandomHorizontalFlip)
from minigrad.data.datasets import parse_idx

from helpers.dataset_files import (MNIST_TEST_COUNTS, MNIST_TRAIN_COUNTS, TRAIN_BATCHES,
                                   TinyCIFAR10, check_cifar, cifar_batch_bytes, idx_bytes,
                                   make_cifar_batches, make_mnist, real_data_root, write,
                                   write_cifar_tarball)

# -- IDX ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("type_code", [0x08, 0x0B, 0x0D])
def test_parse_idx_round_trip(type_code):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(np.float32 if type_code == 0x0D else
                                                       np.int16 if type_code == 0x0B else np.uint8)
    parsed = parse_idx(idx_bytes(array, type_code))
    assert parsed.shape == (2, 3, 4)
    np.testing.assert_array_equal(parsed, array)


@pytest.mark.parametrize("compress", [True, False])
def test_mnist_reads_generated_idx(tmp_path, compress):
    images, labels = make_mnist(tmp_path / "mnist", compress=compress)
    test_images, test_labels = make_mnist(tmp_path / "mnist", n=3, seed=1, compress=compress,
                                          train=False)
    train, test = MNIST(tmp_path, download=False), MNIST(str(tmp_path), train=False,
                                                         download=False)
    assert train.images.dtype == np.uint8 and train.images.shape == (7, 1, 5, 4)
    assert train.labels.dtype == np.int64 and len(train) == 7 and len(test) == 3
    np.testing.assert_array_equal(train.images[:, 0], images)
    np.testing.assert_array_equal(train.labels, labels)
    np.testing.assert_array_equal(test.images[:, 0], test_images)
    np.testing.assert_array_equal(test.labels, test_labels)
    image, label = train[2]
    assert image.shape == (1, 5, 4) and label == labels[2]
    assert len(train.classes) == 10


def test_fashion_mnist_reads_its_own_folder(tmp_path):
    images, labels = make_mnist(tmp_path / "fashion-mnist", seed=3)
    dataset = FashionMNIST(tmp_path, download=False)
    np.testing.assert_array_equal(dataset.images[:, 0], images)
    np.testing.assert_array_equal(dataset.labels, labels)
    assert dataset.classes[9] == "Ankle boot"
    with pytest.raises(FileNotFoundError, match="mnist"):
        MNIST(tmp_path, download=False)


def test_mnist_root_defaults_to_environment(tmp_path, monkeypatch):
    make_mnist(tmp_path / "mnist")
    monkeypatch.setenv("MINIGRAD_DATA", str(tmp_path))
    assert len(MNIST(download=False)) == 7


def test_idx_bad_magic_names_file_and_numbers(tmp_path):
    make_mnist(tmp_path / "mnist", compress=False)
    folder = tmp_path / "mnist"
    os.replace(folder / "train-labels-idx1-ubyte", folder / "train-images-idx3-ubyte")
    make_mnist(tmp_path / "other", compress=False)
    os.replace(tmp_path / "other" / "train-labels-idx1-ubyte", folder / "train-labels-idx1-ubyte")
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte: bad magic number 2049.*2051"):
        MNIST(tmp_path, download=False)
    with pytest.raises(DatasetError, match="not an IDX file"):
        parse_idx(b"PK\x03\x04" + bytes(20), "archive.zip")


@pytest.mark.parametrize("cut, fault", [(-3, "truncated"), (5, "trailing bytes")])
def test_idx_size_mismatch(tmp_path, cut, fault):
    make_mnist(tmp_path / "mnist", compress=False)
    path = tmp_path / "mnist" / "train-images-idx3-ubyte"
    data = path.read_bytes()
    path.write_bytes(data[:cut] if cut < 0 else data + bytes(cut))
    expected = f"train-images-idx3-ubyte: {fault}.*shape \\(7, 5, 4\\)"
    with pytest.raises(DatasetError, match=expected):
        MNIST(tmp_path, download=False)
    with pytest.raises(DatasetError, match="truncated IDX header"):
        parse_idx(bytes([0, 0, 8, 3, 0, 0]))


def test_idx_image_and_label_counts_must_agree(tmp_path):
    make_mnist(tmp_path / "mnist", n=7)
    make_mnist(tmp_path / "other", n=6)
    os.replace(tmp_path / "other" / "train-labels-idx1-ubyte.gz",
               tmp_path / "mnist" / "train-labels-idx1-ubyte.gz")
    with pytest.raises(DatasetError, match="7 images but .*train-labels.* holds 6 labels"):
        MNIST(tmp_path, download=False)


def test_idx_label_out_of_range(tmp_path):
    folder = tmp_path / "mnist"
    make_mnist(folder)
    write(folder / "train-labels-idx1-ubyte", idx_bytes(np.array([1, 2, 3, 12, 0, 0, 0],
                                                                 np.uint8)), True)
    with pytest.raises(DatasetError, match="label 12 of record 3 is outside 0..9"):
        MNIST(tmp_path, download=False)


def test_corrupt_gzip_is_refused(tmp_path):
    folder = tmp_path / "mnist"
    make_mnist(folder)
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz: not a valid gzip file"):
        MNIST(tmp_path, download=False)


def test_missing_files_message_names_files_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        MNIST(tmp_path, train=False, download=False)
    message = str(info.value)
    assert "t10k-images-idx3-ubyte.gz" in message and "t10k-labels-idx1-ubyte.gz" in message
    assert str(tmp_path / "mnist") in message and "MINIGRAD_DATA" in message
    with pytest.raises(FileNotFoundError, match="cifar-10-binary.tar.gz.*" +
                       str(tmp_path / "cifar10")):
        CIFAR10(tmp_path, download=False)


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="train"):
        MNIST(tmp_path, train="yes", download=False)
    with pytest.raises(TypeError, match="root"):
        CIFAR10(42, download=False)
    with pytest.raises(TypeError, match="download"):
        CIFAR10(tmp_path, download=None)


# -- CIFAR-10 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("subfolder", ["", "cifar-10-batches-bin"])
def test_cifar_reads_batch_files(tmp_path, compress, subfolder):
    batches = make_cifar_batches(TRAIN_BATCHES + ["test_batch.bin"])
    folder = tmp_path / "cifar10" / subfolder
    folder.mkdir(parents=True)
    for name, (images, labels) in batches.items():
        write(folder / name, cifar_batch_bytes(images, labels), compress)
    check_cifar(TinyCIFAR10(tmp_path, download=False), batches, TRAIN_BATCHES)
    check_cifar(TinyCIFAR10(tmp_path, train=False, download=False), batches, ["test_batch.bin"])
    assert not TinyCIFAR10(tmp_path, download=False).images.flags.writeable


def test_cifar_reads_official_tarball(tmp_path):
    batches = make_cifar_batches(TRAIN_BATCHES + ["test_batch.bin"], seed=2)
    (tmp_path / "cifar10").mkdir()
    write_cifar_tarball(tmp_path / "cifar10" / "cifar-10-binary.tar.gz", batches)
    check_cifar(TinyCIFAR10(tmp_path, download=False), batches, TRAIN_BATCHES)
    check_cifar(TinyCIFAR10(tmp_path, train=False, download=False), batches, ["test_batch.bin"])


def test_cifar_tarball_faults(tmp_path):
    batches = make_cifar_batches(TRAIN_BATCHES + ["test_batch.bin"])
    archive = tmp_path / "cifar10" / "cifar-10-binary.tar.gz"
    archive.parent.mkdir()
    write_cifar_tarball(archive, batches, skip=["data_batch_4.bin"])
    with pytest.raises(DatasetError, match="has no member data_batch_4.bin"):
        TinyCIFAR10(tmp_path, download=False)
    archive.write_bytes(archive.read_bytes()[:3000])
    with pytest.raises(DatasetError, match="not a valid .tar.gz archive"):
        TinyCIFAR10(tmp_path, train=False, download=False)


@pytest.mark.parametrize("fault, message", [
    ("truncate", "9218 bytes is not a whole number of 3073-byte CIFAR-10 records"),
    ("count", "holds 2 records, expected 3"),
    ("label", "label 10 of record 1 is outside 0..9"),
])
def test_cifar_batch_faults(tmp_path, fault, message):
    (images, labels), = make_cifar_batches(["test_batch.bin"]).values()
    if fault == "label":
        labels[1] = 10
    data = cifar_batch_bytes(images, labels)
    data = {"truncate": data[:-1], "count": data[:2 * 3073]}.get(fault, data)
    (tmp_path / "cifar10").mkdir()
    write(tmp_path / "cifar10" / "test_batch.bin", data, compress=False)
    with pytest.raises(DatasetError, match=f"test_batch.bin: {message}"):
        TinyCIFAR10(tmp_path, train=False, download=False)


# -- the real datasets (skipped without MINIGRAD_DATA) -----------------------------------------

def test_real_mnist():
    root = real_data_root("mnist")
    train, test = MNIST(root, download=False), MNIST(root, train=False, download=False)
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert np.bincount(train.labels).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(test.labels).tolist() == MNIST_TEST_COUNTS
    assert abs(train.images.mean() / 255 - 0.130660) < 1e-5


def test_real_cifar10():
    root = real_data_root("cifar10")
    train, test = CIFAR10(root, download=False), CIFAR10(root, train=False, download=False)
    assert train.images.shape == (50000, 3, 32, 32) and test.images.shape == (10000, 3, 32, 32)
    assert np.bincount(train.labels).tolist() == [5000] * 10
    assert np.bincount(test.labels).tolist() == [1000] * 10
    assert np.all(np.diff(test.labels) >= 0)    # the test batch is ordered by class
    mean = test.images.mean(axis=(0, 2, 3)) / 255
    np.testing.assert_allclose(mean, [0.4941, 0.4851, 0.4504], atol=6e-5)


# -- DataLoader --------------------------------------------------------------------------------


def small_dataset(n=10, channels=2, seed=0):
    rng = np.random.default_rng(seed)
    return ArrayDataset(rng.integers(0, 256, (n, channels, 4, 3), dtype=np.uint8),
                        rng.integers(0, 5, n))


@pytest.mark.parametrize("drop_last, sizes", [(False, [4, 4, 2]), (True, [4, 4])])
def test_loader_batches_in_order(drop_last, sizes):
    dataset = small_dataset()
    loader = DataLoader(dataset, batch_size=4, drop_last=drop_last)
    batches = list(loader)
    assert len(loader) == len(sizes) and [len(x) for x, _ in batches] == sizes
    for k, (x, y) in enumerate(batches):
        assert x.dtype == np.float32 and x.shape[1:] == (2, 4, 3) and y.dtype == np.int64
        np.testing.assert_array_equal(x, dataset.images[4 * k:4 * k + len(x)] / np.float32(255))
        np.testing.assert_array_equal(y, dataset.labels[4 * k:4 * k + len(x)])
    assert batches[0][0].max() <= 1.0 and batches[0][0].min() >= 0.0


def test_loader_shuffle_is_seeded_and_new_each_epoch():
    dataset = ArrayDataset(np.arange(50, dtype=np.float32).reshape(50, 1, 1, 1), np.arange(50))

    def epochs(loader, count=3):
        return [np.concatenate([y for _, y in loader]) for _ in range(count)]

    first = epochs(DataLoader(dataset, batch_size=8, shuffle=True, seed=7))
    again = epochs(DataLoader(dataset, batch_size=8, shuffle=True, seed=7))
    other = epochs(DataLoader(dataset, batch_size=8, shuffle=True, seed=8))
    for order, repeat in zip(first, again):
        np.testing.assert_array_equal(order, repeat)
        assert sorted(order.tolist()) == list(range(50))
    assert not np.array_equal(first[0], first[1])
    assert not np.array_equal(first[0], other[0])
    # float datasets pass through unscaled, and the images follow their labels
    x, y = next(iter(DataLoader(dataset, batch_size=8, shuffle=True, seed=7)))
    np.testing.assert_array_equal(x[:, 0, 0, 0], y.astype(np.float32))


def test_loader_applies_transforms_reproducibly():
    dataset = small_dataset(n=12, channels=3)

    def run(seed):
        transform = Compose([RandomCrop(3, padding=1), RandomHorizontalFlip()])
        loader = DataLoader(dataset, batch_size=5, shuffle=True, seed=seed, transform=transform)
        return [x for _ in range(2) for x, _ in loader]

    first, again, other = run(1), run(1), run(2)
    assert first[0].shape == (5, 3, 3, 3)
    for x, repeat in zip(first, again):
        np.testing.assert_array_equal(x, repeat)
    assert any(not np.array_equal(x, y) for x, y in zip(first, other))
    plain = DataLoader(dataset, batch_size=12, transform=lambda x: x * 2)
    np.testing.assert_array_equal(next(iter(plain))[0], dataset.images / np.float32(255) * 2)


def test_loader_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(small_dataset(), batch_size=0)
    with pytest.raises(TypeError, match="transform"):
        DataLoader(small_dataset(), batch_size=2, transform="crop")
    with pytest.raises(TypeError, match="dataset"):
        DataLoader(5, batch_size=2)
    with pytest.raises(ValueError, match="differ in length"):
        ArrayDataset(np.zeros((3, 1, 2, 2), np.uint8), np.zeros(2, np.int64))


# -- transforms vs per-image reference loops ---------------------------------------------------


def batch(n=6, channels=3, height=5, width=7, seed=0):
    return np.random.default_rng(seed).random((n, channels, height, width)).astype(np.float32)


def test_normalize_matches_per_channel_loop():
    x = batch()
    mean, std = [0.1, 0.5, -0.2], [0.3, 2.0, 0.7]
    out = Normalize(mean, std)(x)
    expected = np.empty_like(x)
    for i in range(len(x)):
        for c in range(3):
            expected[i, c] = (x[i, c] - mean[c]) / std[c]
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(Normalize(0.5, 0.25)(x[0]), (x[0] - 0.5) / 0.25, rtol=1e-6)
    with pytest.raises(ValueError, match="mean has 2 values but x has 3 channels"):
        Normalize([0.1, 0.2], [1.0, 1.0])(x)
    with pytest.raises(ValueError, match="std must be > 0"):
        Normalize([0.1], [0.0])
    with pytest.raises(TypeError, match="x must be a floating-point array"):
        Normalize([0.1], [1.0])(np.zeros((1, 1, 2, 2), np.uint8))


@pytest.mark.parametrize("size, padding, mode", [(5, 2, "constant"), ((4, 6), 1, "reflect"),
                                                 ((5, 7), 0, "constant"), (3, (0, 2), "edge")])
def test_random_crop_matches_per_image_loop(size, padding, mode):
    x = batch(n=16)
    out = RandomCrop(size, padding=padding, padding_mode=mode, seed=3)(x)
    h, w = (size, size) if isinstance(size, int) else size
    pad_h, pad_w = (padding, padding) if isinstance(padding, int) else padding
    rng = np.random.default_rng(3)      # the documented draws: rows for all images, then cols
    rows = rng.integers(0, x.shape[2] + 2 * pad_h - h + 1, len(x))
    cols = rng.integers(0, x.shape[3] + 2 * pad_w - w + 1, len(x))
    assert out.shape == (16, 3, h, w) and out.dtype == np.float32
    for i in range(len(x)):
        padded = np.pad(x[i], ((0, 0), (pad_h, pad_h), (pad_w, pad_w)), mode=mode)
        np.testing.assert_array_equal(out[i], padded[:, rows[i]:rows[i] + h, cols[i]:cols[i] + w])
    if pad_h and pad_w:
        assert len(set(zip(rows.tolist(), cols.tolist()))) > 3    # the offsets really vary


def test_random_horizontal_flip_matches_per_image_loop():
    x = batch(n=40)
    out = RandomHorizontalFlip(p=0.3, seed=5)(x)
    flips = np.random.default_rng(5).random(len(x)) < 0.3
    for i in range(len(x)):
        np.testing.assert_array_equal(out[i], x[i, :, :, ::-1] if flips[i] else x[i])
    assert 0 < flips.sum() < len(x)
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1.0)(x), x[..., ::-1])
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0.0)(x), x)


def test_compose_and_rng_handling():
    x = batch(n=8)
    steps = [RandomCrop(4, padding=1), RandomHorizontalFlip(), Normalize([0.5] * 3, [0.2] * 3)]
    composed = Compose(steps)(x, rng=np.random.default_rng(11))
    rng = np.random.default_rng(11)
    sequential = x
    for step in steps:
        sequential = step(sequential, rng=rng)
    np.testing.assert_array_equal(composed, sequential)
    # own seed: reproducible across instances, the input is left untouched
    before = x.copy()
    np.testing.assert_array_equal(RandomCrop(4, 1, seed=2)(x), RandomCrop(4, 1, seed=2)(x))
    np.testing.assert_array_equal(x, before)
    with pytest.raises(ValueError, match="larger than the padded image"):
        RandomCrop(9, padding=1)(x)
    with pytest.raises(ValueError, match="padding"):
        RandomCrop(3, padding=-1)
    with pytest.raises(ValueError, match="x must be N×C×H×W"):
        RandomHorizontalFlip()(x[0, 0])
    with pytest.raises(TypeError, match="Transform instances"):
        Compose([lambda v: v])
