"""The pooling study (examples/pooling_study.py, issue #16): every downsampling variant builds,
halves the maps (or, atrous, keeps them and dilates), evaluates deterministically, and trains in
a tiny study that writes its JSON and chart; bad options are usage errors (status 2).

The study runs use a few hundred real MNIST images and skip without data
(helpers.dataset_files.real_data_root)."""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import minigrad as mg
from helpers.dataset_files import real_data_root

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
sys.path.insert(0, EXAMPLES)
import pooling_study  # noqa: E402

SCRIPT = os.path.join(EXAMPLES, "pooling_study.py")
# 128 images in 4 batches of 32, a 4-channel network, 200 test images: seconds for all variants.
TINY = ["--limit", "128", "--batch-size", "32", "--epochs", "1", "--seeds", "1",
        "--test-limit", "200", "--width", "4", "--no-progress"]


def stage_shapes(model, x):
    """The output shape of every layer of the Sequential ``model`` for input ``x``."""
    shapes = []
    for layer in model:
        x = layer(x)
        shapes.append(tuple(x.shape))
    return shapes


@pytest.mark.parametrize("variant", pooling_study.VARIANTS)
def test_each_variant_downsamples_as_described(variant):
    mg.manual_seed(0)
    model = pooling_study.build_model(variant, in_channels=1, width=4)
    model.eval()
    with mg.no_grad():
        shapes = stage_shapes(model, mg.tensor(np.random.default_rng(0).random(
            (2, 1, 28, 28), dtype=np.float32)))
    assert shapes[-1] == (2, 10)
    before_classifier = shapes[-3]              # the last conv-BN-ReLU, before the 1×1 conv
    expected = (28, 28) if variant == "atrous" else (7, 7)
    assert before_classifier == (2, 16) + expected, shapes
    layers = list(model)
    if variant == "atrous":
        dilations = [m.dilation for m in layers if isinstance(m, mg.nn.Conv2d)]
        assert [tuple(np.broadcast_to(d, 2)) for d in dilations] == \
            [(1, 1), (1, 1), (2, 2), (2, 2), (4, 4), (1, 1)], dilations


@pytest.mark.parametrize("variant", ["stochastic", "fractional"])
def test_random_poolings_are_random_in_training_and_fixed_in_evaluation(variant):
    layer = pooling_study.pooling_layer(variant, 3)
    x = mg.tensor(np.random.default_rng(1).random((2, 3, 14, 14), dtype=np.float32))
    mg.manual_seed(0)
    first, second = layer(x).data, layer(x).data
    assert not np.array_equal(first, second)
    layer.eval()
    np.testing.assert_array_equal(layer(x).data, layer(x).data)


def test_learned_pooling_parameters_have_no_weight_decay():
    class Args:
        lr, weight_decay = 0.1, 0.5
    model = pooling_study.build_model("mixed", width=4)
    optimizer, _ = pooling_study.make_optimizer(model, Args, total_steps=10)
    alphas = {id(p) for p in pooling_study.pooling_parameters(model)}
    assert len(alphas) == 2
    decayed = {id(p) for g in optimizer.param_groups if g["weight_decay"] for p in g["params"]}
    assert not alphas & decayed
    assert decayed                               # the convolution weights are decayed


def test_tiny_study_of_every_variant_writes_its_table_json_and_chart(tmp_path, capsys):
    root = real_data_root("mnist")
    variants = pooling_study.VARIANTS
    out = str(tmp_path / "study")
    results = pooling_study.run([*TINY, "--data-dir", root, "--out", out,
                                 "--variants", ",".join(variants)])
    printed = capsys.readouterr().out
    saved = json.load(open(os.path.join(out, "pooling_study.json")))
    chart = os.path.join(out, "pooling_study.png")
    if importlib.util.find_spec("matplotlib") is not None:      # the chart needs matplotlib
        assert os.path.getsize(chart) > 0
    else:
        assert not os.path.exists(chart)
    assert [row["variant"] for row in saved["variants"]] == list(variants)
    assert len(saved["runs"]) == len(variants)
    assert saved["settings"]["train_images"] == 128 and saved["settings"]["test_images"] == 200
    rows = {row["variant"]: row for row in saved["variants"]}
    for variant, row in rows.items():
        assert row["runs"] == 1 and row["diverged"] == 0, row
        assert 0.0 <= row["test_accuracy_mean"] <= 1.0
        assert row["test_accuracy_std"] is None                 # one seed: no spread
        assert row["training_seconds_mean"] > 0 and row["parameters"] > 0
        assert variant in printed
    # the costs the table reports follow the architectures
    assert rows["atrous"]["macs"] > 3 * rows["max"]["macs"]
    assert rows["atrous"]["parameters"] == rows["max"]["parameters"]
    assert rows["strided"]["parameters"] > rows["max"]["parameters"]
    assert rows["mixed"]["parameters"] == rows["max"]["parameters"] + 2     # one α per layer
    if "tree" in rows:                           # its learned leaf and gate filters
        assert rows["tree"]["parameters"] > rows["gated"]["parameters"]
    # the learned pooling parameters were trained: mixed's α moved from 0.5
    mixed = next(r for r in saved["runs"] if r["variant"] == "mixed")
    assert len(mixed["learned_pooling"]) == 2
    assert any(abs(alpha[0] - 0.5) > 1e-6 for alpha in mixed["learned_pooling"])
    assert results["json"] == os.path.join(out, "pooling_study.json")


def test_seeds_are_aggregated_and_paired(tmp_path):
    root = real_data_root("mnist")
    out = str(tmp_path)
    args = [*TINY, "--data-dir", root, "--out", out, "--variants", "max,avg", "--seeds", "2"]
    results = pooling_study.run(args)
    runs = [(r["variant"], r["seed"]) for r in results["runs"]]
    assert runs == [("max", 0), ("max", 1), ("avg", 0), ("avg", 1)]
    row = results["variants"][0]
    accuracies = [r["test_accuracy"] for r in results["runs"][:2]]
    assert row["test_accuracy_mean"] == pytest.approx(np.mean(accuracies))
    assert row["test_accuracy_std"] == pytest.approx(np.std(accuracies, ddof=1))
    # a seed's run is reproducible: the same seed gives the same accuracy again
    again = pooling_study.run([*TINY, "--data-dir", root, "--out", str(tmp_path / "again"),
                               "--variants", "max", "--seeds", "1"])
    assert again["runs"][0]["test_accuracy"] == results["runs"][0]["test_accuracy"]
    assert again["runs"][0]["train_loss"] == results["runs"][0]["train_loss"]


@pytest.mark.parametrize("option, value", [
    ("--variants", "max,median"), ("--variants", ","), ("--dataset", "svhn"), ("--seeds", "0"),
    ("--epochs", "0"), ("--limit", "-1"), ("--test-limit", "0"), ("--width", "0"),
    ("--lr", "0"), ("--weight-decay", "nan"), ("--threads", "0"), ("--batch-size", "1.5")])
def test_bad_option_is_a_usage_error(tmp_path, capsys, option, value):
    with pytest.raises(SystemExit) as exit_info:
        pooling_study.parse_args([option, value, "--data-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and f"argument {option}" in err and repr(value) in err, err


def test_limit_below_one_batch_is_a_usage_error_on_the_command_line(tmp_path):
    # As a user runs it: status 2, the usage line, no traceback, before any data is read.
    result = subprocess.run([sys.executable, SCRIPT, "--limit", "32", "--data-dir",
                             str(tmp_path / "empty")], capture_output=True, text=True,
                            timeout=120, env={**os.environ,
                                              "MINIGRAD_MIRROR": "http://127.0.0.1:9/"})
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "usage:" in result.stderr and "Traceback" not in result.stderr
    assert "--limit 32" in result.stderr and "--batch-size 64" in result.stderr
