"""Smoke tests of the two example networks on a few hundred real images: one short run each
trains (the loss falls) and writes its checkpoint, curves and results. Skipped without data."""
import json
import os
import sys

import numpy as np

from helpers.dataset_files import real_data_root

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
sys.path.insert(0, EXAMPLES)


def check_run(results, out, name, extra_files=()):
    losses = results["step_losses"]
    assert np.mean(losses[-3:]) < np.mean(losses[:3]), losses
    for filename in (f"{name}.npz", f"{name}_results.json", *extra_files):
        assert os.path.getsize(os.path.join(out, filename)) > 0, filename
    saved = json.load(open(os.path.join(out, f"{name}_results.json")))
    assert 0.0 <= saved["test_accuracy"] <= 1.0
    assert saved["epochs"] == 1


def test_fcn_mnist_smoke(tmp_path):
    import fcn_mnist
    root = real_data_root("mnist")
    out = str(tmp_path)
    results = fcn_mnist.run(["--data-dir", root, "--limit", "640", "--test-limit", "200",
                             "--epochs", "1", "--batch-size", "32", "--width", "8",
                             "--lr", "0.05", "--out", out, "--no-progress", "--canvas", "36",
                             "--no-figures"])
    check_run(results, out, "fcn_mnist")
    assert 0.0 <= results["canvas_36_accuracy"] <= 1.0


def test_fcn_mnist_resume_continues_exactly(tmp_path):
    import fcn_mnist
    root = real_data_root("mnist")
    common = ["--data-dir", root, "--limit", "128", "--test-limit", "100", "--batch-size",
              "32", "--width", "4", "--no-progress", "--canvas", "0", "--no-figures"]
    straight = fcn_mnist.run(common + ["--epochs", "2", "--out", str(tmp_path / "straight")])
    interrupted = common + ["--out", str(tmp_path / "interrupted")]
    fcn_mnist.run(interrupted + ["--epochs", "2", "--stop-after", "1"])
    resumed = fcn_mnist.run(interrupted + ["--epochs", "2", "--resume"])
    assert resumed["epochs"] == 2
    # The epoch trained after resuming is, step for step, the uninterrupted run's second epoch.
    np.testing.assert_array_equal(resumed["step_losses"], straight["step_losses"][4:])


def test_inception_cifar_smoke(tmp_path):
    import inception_cifar
    root = real_data_root("cifar10")
    out = str(tmp_path)
    results = inception_cifar.run(["--data-dir", root, "--limit", "384", "--test-limit", "200",
                                   "--epochs", "1", "--batch-size", "32", "--width", "0.25",
                                   "--lr", "0.05", "--out", out, "--no-progress"])
    check_run(results, out, "inception_cifar")
