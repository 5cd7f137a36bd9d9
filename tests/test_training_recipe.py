"""The training loop's recipe options (examples/training.py): label smoothing and test-time
flips and shifts. The evaluation is checked against the logits computed by hand."""
import os
import subprocess
import sys

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.data import ArrayDataset, DataLoader
from helpers.dataset_files import real_data_root

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
sys.path.insert(0, EXAMPLES)

import training  # noqa: E402


def small_model():
    mg.manual_seed(3)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.GlobalAvgPool2d(),
                         nn.Linear(4, 5))


def test_evaluate_with_flips_averages_the_mirror_logits():
    rng = np.random.default_rng(0)
    images = rng.standard_normal((40, 3, 6, 6)).astype(np.float32)
    labels = rng.integers(0, 5, 40)
    model = small_model()
    loader = DataLoader(ArrayDataset(images, labels), 16)
    accuracy, loss, augmented = training.evaluate(model, loader, flip=True)
    assert (accuracy, loss) == training.evaluate(model, loader)
    model.eval()
    with mg.no_grad():
        plain = model(mg.tensor(images)).data
        mirrored = model(mg.tensor(np.ascontiguousarray(images[..., ::-1]))).data
    assert accuracy == np.mean(plain.argmax(1) == labels)
    assert augmented == {"test_acc_flip": np.mean((plain + mirrored).argmax(1) == labels)}
    # the model is not mirror-symmetric, so the two accuracies are computed differently
    assert not np.allclose(plain, mirrored)


def reflected_shift(images, dy, dx):
    """``images`` moved by (dy, dx), written out pixel by pixel: output row y reads input row
    y - dy, reflected back into the image at the border (numpy's "reflect": no edge repeat)."""
    height, width = images.shape[-2:]

    def reflect(i, n):
        return -i if i < 0 else 2 * (n - 1) - i if i >= n else i

    out = np.empty_like(images)
    for y in range(height):
        for x in range(width):
            out[..., y, x] = images[..., reflect(y - dy, height), reflect(x - dx, width)]
    return out


@pytest.mark.parametrize("flip", [False, True])
def test_evaluate_with_shifts_sums_the_moved_views(flip):
    rng = np.random.default_rng(1)
    images = rng.standard_normal((200, 3, 7, 7)).astype(np.float32)
    # linear in the pixels, so that moving the image moves its logits
    mg.manual_seed(4)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 7 * 7, 5, bias=False))
    model.eval()
    with mg.no_grad():
        views = [images] + ([images[..., ::-1]] if flip else [])
        views += [reflected_shift(v, d, d) for v in list(views) for d in (2, -2)]
        logits = [model(mg.tensor(np.ascontiguousarray(v))).data for v in views]
    # Labelled with the summed views' predictions: only that exact sum scores 1.
    labels = sum(logits).argmax(1)
    for left_out in range(len(logits)):
        assert np.mean((sum(logits) - logits[left_out]).argmax(1) == labels) < 1
    loader = DataLoader(ArrayDataset(images, labels), 16)
    accuracy, loss, augmented = training.evaluate(model, loader, flip=flip, shift=2)
    assert augmented["test_acc_shift"] == 1.0
    assert ("test_acc_flip" in augmented) == flip
    assert accuracy == np.mean(logits[0].argmax(1) == labels) < 1


def test_label_smoothing_reaches_the_loss(monkeypatch, tmp_path):
    seen = []
    real = training.F.cross_entropy

    def spy(logits, target, label_smoothing=0.0, **kwargs):
        seen.append(label_smoothing)
        return real(logits, target, label_smoothing=label_smoothing, **kwargs)

    monkeypatch.setattr(training.F, "cross_entropy", spy)
    import inception_cifar
    root = real_data_root("cifar10")
    results = inception_cifar.run(["--data-dir", root, "--limit", "64", "--test-limit", "40",
                                   "--epochs", "1", "--batch-size", "32", "--width", "0.125",
                                   "--out", str(tmp_path),
                                   "--no-progress", "--label-smoothing", "0.3", "--no-figures"])
    assert seen[0] == 0.3                   # the training loss
    assert results["test_flip"] is True     # flips and shifts on by default for CIFAR-10
    assert results["test_shift"] == 1
    history = results["history"][-1]
    assert results["test_accuracy"] == history["test_acc_shift"]
    assert results["test_accuracy_flip"] == history["test_acc_flip"]
    assert results["test_accuracy_no_flip"] == history["test_acc"]


@pytest.mark.parametrize("value", ["-0.1", "1.5", "x"])
def test_bad_label_smoothing_is_a_usage_error(value):
    script = os.path.join(EXAMPLES, "inception_cifar.py")
    done = subprocess.run([sys.executable, script, "--label-smoothing", value],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "--label-smoothing" in done.stderr and "from 0 to 1" in done.stderr


def test_test_limit_spreads_over_a_file_sorted_by_class():
    # CIFAR-10's test batch is sorted by class: its first images are one or two classes.
    labels = np.repeat(np.arange(10), 50)
    images = np.arange(500, dtype=np.float32).reshape(500, 1, 1, 1)
    data = ArrayDataset(images, labels)
    first = training.subset(data, 100)
    spread = training.subset(data, 100, spread=True)
    assert set(first.labels) == {0, 1} and list(first.images.ravel()) == list(range(100))
    assert np.bincount(spread.labels).tolist() == [10] * 10
    assert list(spread.images.ravel()) == list(range(0, 500, 5))
    assert training.subset(data, None) is data and training.subset(data, 500) is data
