"""examples/fcn_mnist.py reads any image size (issue #16 parts 2 and 4): training on canvases,
the canvas accuracies in the results, the dense prediction without global pooling, and the
figures (examples/figures.py); --no-figures writes none, bad options are usage errors.

The runs train a 4-channel network for one epoch on 128 real images (skipped without data)."""
import json
import os
import sys
from types import SimpleNamespace

import numpy as np
import pytest

import minigrad as mg
from helpers.dataset_files import real_data_root

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
sys.path.insert(0, EXAMPLES)

import fcn_mnist  # noqa: E402
import figures  # noqa: E402

FIGURES = ("fcn_mnist_filters.png", "fcn_mnist_features.png", "fcn_mnist_dense.png")
TINY = ["--limit", "128", "--test-limit", "100", "--batch-size", "32", "--width", "4",
        "--epochs", "1", "--no-progress", "--threads", "1"]


def pngs(folder):
    return sorted(name for name in os.listdir(folder) if name.endswith(".png"))


def test_canvas_accuracies_and_figures(tmp_path):
    pytest.importorskip("matplotlib")
    out = str(tmp_path)
    results = fcn_mnist.run(TINY + ["--data-dir", real_data_root("mnist"), "--out", out,
                                    "--canvas", "36,44", "--train-canvas", "44"])
    saved = json.load(open(os.path.join(out, "fcn_mnist_results.json")))
    for key in ("canvas_36_accuracy", "canvas_44_accuracy"):
        assert 0.0 <= saved[key] <= 1.0 and saved[key] == results[key]
    assert "canvas_40_accuracy" not in saved
    assert pngs(out) == sorted(FIGURES + ("fcn_mnist_curves.png",))
    for name in FIGURES:
        assert os.path.getsize(os.path.join(out, name)) > 1000, name
        assert saved[name[len("fcn_mnist_"):-len(".png")] + "_png"] == os.path.join(out, name)

    # --figures-only: the same figures again from the checkpoint, without training
    for name in FIGURES:
        os.remove(os.path.join(out, name))
    again = fcn_mnist.run(TINY + ["--data-dir", real_data_root("mnist"), "--out", out,
                                  "--figures-only"])
    assert sorted(os.path.basename(p) for p in again.values()) == sorted(FIGURES)
    assert pngs(out) == sorted(FIGURES + ("fcn_mnist_curves.png",))


def test_no_figures_writes_none(tmp_path):
    out = str(tmp_path)
    results = fcn_mnist.run(TINY + ["--data-dir", real_data_root("mnist"), "--out", out,
                                    "--canvas", "0", "--no-figures"])
    assert pngs(out) in ([], ["fcn_mnist_curves.png"])     # the curves need matplotlib only
    assert not any(key.startswith("canvas_") or key.endswith("_png") for key in results)


@pytest.mark.parametrize("option, value", [
    ("--canvas", "20"), ("--canvas", "40,20"), ("--canvas", "40,x"), ("--canvas", "40,"),
    ("--canvas", ""), ("--train-canvas", "27"), ("--canvas-fraction", "1.5"),
    ("--freeze-bn", "-0.1"), ("--freeze-lr-scale", "2"), ("--shift", "-1")])
def test_bad_option_is_a_usage_error(tmp_path, capsys, option, value):
    with pytest.raises(SystemExit) as exit_:
        fcn_mnist.run([option, value, "--data-dir", str(tmp_path / "empty")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and f"argument {option}" in err and repr(value) in err, err


def test_figures_only_without_a_checkpoint_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        fcn_mnist.run(["--figures-only", "--out", str(tmp_path / "none"),
                       "--data-dir", real_data_root("mnist")])
    assert exit_.value.code == 2
    assert "--figures-only: no checkpoint" in capsys.readouterr().err


def options(**changes):
    defaults = {"shift": 0, "train_canvas": 64, "canvas_fraction": 0.5}
    return SimpleNamespace(**{**defaults, **changes})


def test_training_transform_mixes_28x28_batches_and_canvases():
    x = np.zeros((4, 1, 28, 28), np.float32)
    transform = fcn_mnist.training_transform(options())
    sides = [transform(x, rng=np.random.default_rng(seed)).shape[2] for seed in range(200)]
    assert set(sides) == set(range(28, 65, 4))
    assert 0.4 < np.mean(np.array(sides) == 28) < 0.75        # half the batches, plus side 28
    off = fcn_mnist.training_transform(options(train_canvas=0))
    assert off(x, rng=np.random.default_rng(0)).shape == x.shape
    odd = fcn_mnist.training_transform(options(train_canvas=50, canvas_fraction=1.0))
    assert max(odd(x, rng=np.random.default_rng(s)).shape[2] for s in range(100)) == 50


def test_dense_prediction_is_the_classifier_before_its_average():
    mg.manual_seed(0)
    model = fcn_mnist.build_model(4)
    image = np.random.default_rng(0).standard_normal((1, 40, 48)).astype(np.float32)
    probabilities = fcn_mnist.dense_predictions(model, image)
    assert probabilities.shape == (10, 10, 12)
    np.testing.assert_allclose(probabilities.sum(axis=0), 1.0, rtol=1e-5)
    assert model.training                                  # its mode restored
    # The global average of the per-location logits is the classifier's output.
    model.eval()
    with mg.no_grad():
        logits = model(mg.tensor(image[None])).data[0]
        dense = model[:-1](mg.tensor(image[None])).data[0]
    np.testing.assert_allclose(dense.mean(axis=(1, 2)), logits, rtol=1e-5, atol=1e-6)


def test_make_page_places_every_digit_in_its_cell():
    images = np.random.default_rng(0).integers(1, 256, (20, 1, 28, 28), dtype=np.uint8)
    test_set = fcn_mnist.ArrayDataset(images, np.arange(20) % 10)
    page, labels, corners = fcn_mnist.make_page(test_set, seed=1)
    assert page.shape == (1, 102, 136) and len(labels) == len(corners) == 12
    assert np.count_nonzero(page) == 12 * 28 * 28          # twelve whole, disjoint digits
    for k, (top, left) in enumerate(corners):
        assert (top // 34, left // 34) == divmod(k, 4)
        assert top % 34 <= 6 and left % 34 <= 6


def test_stage_outputs_and_filter_images():
    mg.manual_seed(0)
    model = fcn_mnist.build_model(4)
    stages = fcn_mnist.stages(model)
    assert [label for label, _ in stages] == ["pool 1", "pool 2", "last 3x3 conv",
                                              "class maps (1x1)"]
    outputs = figures.stage_outputs(model, np.zeros((1, 28, 28), np.float32), stages)
    assert [o.shape for o in outputs] == [(4, 14, 14), (8, 7, 7), (32, 7, 7), (10, 7, 7)]
    assert model.training
    with pytest.raises(ValueError, match="not called"):
        figures.stage_outputs(model, np.zeros((1, 28, 28), np.float32),
                              [("elsewhere", mg.nn.ReLU())])
    rgb = figures.filter_images(np.random.default_rng(0).standard_normal((5, 3, 3, 3)))
    assert rgb.shape == (5, 3, 3, 3) and rgb.min() >= 0.0 and rgb.max() <= 1.0
    assert figures.filter_images(np.ones((5, 2, 3, 3))).shape == (5, 3, 3)


def test_batchnorm_statistics_freeze_after_the_given_steps():
    mg.manual_seed(0)
    model = fcn_mnist.build_model(4, freeze_after=2)
    norm = next(m for m in model.modules() if isinstance(m, mg.nn.BatchNorm2d))
    rng = np.random.default_rng(0)
    batches = [mg.tensor(rng.standard_normal((3, 1, size, size)).astype(np.float32))
               for size in (28, 40, 40)]
    with mg.no_grad():
        model(batches[0])                  # not a training step: no gradients
    assert model.steps[0] == 0
    for batch in batches[:2]:              # steps 1 and 2: batch statistics, running ones updated
        before = norm.running_mean.copy()
        model(batch)
        assert not np.array_equal(norm.running_mean, before)
    before = norm.running_mean.copy()
    trained = model(batches[2]).data       # step 3: frozen, as in eval mode
    np.testing.assert_array_equal(norm.running_mean, before)
    assert model.steps[0] == 3 and all(m.training for m in model.modules())
    model.eval()
    with mg.no_grad():
        np.testing.assert_allclose(model(batches[2]).data, trained, rtol=1e-5, atol=1e-6)
    assert "steps" in model.state_dict()   # saved with the checkpoint: --resume goes on counting


def test_frozen_steps_scale_the_gradient_not_the_output():
    rng = np.random.default_rng(2)
    batch = mg.tensor(rng.standard_normal((3, 1, 32, 32)).astype(np.float32))
    outputs, grads = [], []
    for scale in (1.0, 0.1):
        mg.manual_seed(0)
        model = fcn_mnist.build_model(4, freeze_after=0, frozen_step_scale=scale)
        y = model(batch)                   # step 1: frozen
        (y * y).sum().backward()
        outputs.append(y.data)
        grads.append(np.array(model[0].weight.grad))
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-6, atol=1e-7)   # up to rounding
    np.testing.assert_allclose(grads[1], 0.1 * grads[0], rtol=1e-4, atol=1e-7)
    assert np.abs(grads[0]).max() > 0


def test_calibration_averages_the_batches_before_the_freeze_equally():
    mg.manual_seed(0)
    model = fcn_mnist.build_model(4, freeze_after=4, calibration_steps=2)
    norm = next(m for m in model.modules() if isinstance(m, mg.nn.BatchNorm2d))
    rng = np.random.default_rng(1)
    batches = [mg.tensor((rng.standard_normal((3, 1, size, size)) * scale).astype(np.float32))
               for size, scale in ((28, 1.0), (28, 5.0), (40, 1.0), (64, 3.0), (28, 1.0))]
    means = []
    for batch in batches[:4]:
        model(batch)
        means.append(norm.running_mean.copy())
    # steps 3 and 4 calibrate: the statistics restart at step 3 and average steps 3 and 4
    first = model[0](batches[2]).data.mean(axis=(0, 2, 3))
    second = model[0](batches[3]).data.mean(axis=(0, 2, 3))
    np.testing.assert_allclose(means[2], first, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(means[3], (first + second) / 2, rtol=1e-5, atol=1e-6)
    assert norm.momentum is None
    model(batches[4])                      # step 5: frozen with the calibrated statistics
    np.testing.assert_array_equal(norm.running_mean, means[3])
    assert norm.momentum == 0.1
