"""The examples' command line, as a user runs it (issue #19): bad values are usage errors
(status 2, the usage line, the option named, no traceback) before any data is read; --limit
must hold one full batch; --resume with a larger --epochs continues the run; importing minigrad
from a source tree whose kernels are not built says so and how to fix it.

Each example runs in a subprocess. The runs that train use a few hundred real images and skip
without data (helpers.dataset_files.real_data_root)."""
import json
import os
import shutil
import subprocess
import sys

import pytest

import minigrad
from helpers.dataset_files import real_data_root

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(REPO, "examples")
FCN = os.path.join(EXAMPLES, "fcn_mnist.py")
INCEPTION = os.path.join(EXAMPLES, "inception_cifar.py")
TIMEOUT = 120
# A tiny fcn_mnist run: 128 images in 4 batches of 32, a 4-channel network, no canvas test, no
# figures.
TINY = ["--limit", "128", "--test-limit", "100", "--batch-size", "32", "--width", "4",
        "--canvas", "0", "--no-figures", "--no-progress", "--threads", "1"]


def run(script, *args, cwd=None, env=None):
    return subprocess.run([sys.executable, script, *args], capture_output=True, text=True,
                          timeout=TIMEOUT, cwd=cwd, env={**os.environ, **(env or {})})


def no_data(tmp_path):
    """--data-dir of an empty folder, downloads pointed at a closed port: a run that got as far
    as reading data would fail, but not with a usage error."""
    return ["--data-dir", str(tmp_path / "empty")], {"MINIGRAD_MIRROR": "http://127.0.0.1:9/"}


def assert_ran(result):
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)


def assert_usage_error(result, *names):
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "usage:" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for name in names:
        assert name in result.stderr, (name, result.stderr)


# -- bad values: refused by the parser, before any data is read ---------------------------------

@pytest.mark.parametrize("script", [FCN, INCEPTION], ids=["fcn_mnist", "inception_cifar"])
@pytest.mark.parametrize("option, value", [
    ("--limit", "-5"), ("--epochs", "0"), ("--batch-size", "0"), ("--lr", "-1"),
    ("--weight-decay", "nan"), ("--test-limit", "0"), ("--threads", "0"), ("--seed", "-1"),
    ("--stop-after", "0"), ("--epochs", "1.5"), ("--width", "0")])
def test_bad_value_is_a_usage_error(tmp_path, script, option, value):
    data, env = no_data(tmp_path)
    result = run(script, option, value, *data, env=env)
    assert_usage_error(result, f"argument {option}", repr(value))


def test_fcn_mnist_canvas_smaller_than_a_digit_is_a_usage_error(tmp_path):
    data, env = no_data(tmp_path)
    assert_usage_error(run(FCN, "--canvas", "20", *data, env=env), "argument --canvas", "28")


def test_limit_below_one_batch_is_a_usage_error(tmp_path):
    data, env = no_data(tmp_path)
    result = run(FCN, "--limit", "64", *data, env=env)       # the default batch is 128
    assert_usage_error(result, "--limit 64", "--batch-size 128")


def test_resume_without_a_checkpoint_is_a_usage_error(tmp_path):
    data, env = no_data(tmp_path)
    result = run(FCN, "--resume", "--out", str(tmp_path / "run"), *data, env=env)
    assert_usage_error(result, "--resume", os.path.join(str(tmp_path / "run"), "fcn_mnist.npz"))


def test_dataset_smaller_than_a_batch_is_a_usage_error():
    root = real_data_root("mnist")
    result = run(FCN, "--batch-size", "70000", "--data-dir", root)   # 60,000 training images
    assert_usage_error(result, "--batch-size 70000", "60000 training images")


# -- --resume ------------------------------------------------------------------------------------

def checkpoint_schedule(out):
    return minigrad.load(os.path.join(out, "fcn_mnist.npz"))["scheduler"]


def test_resume_with_more_epochs_continues_on_the_longer_schedule(tmp_path):
    root = real_data_root("mnist")
    out, straight = str(tmp_path / "resumed"), str(tmp_path / "straight")
    common = [*TINY, "--data-dir", root]
    assert_ran(run(FCN, *common, "--epochs", "1", "--out", out))
    result = run(FCN, *common, "--epochs", "2", "--out", out, "--resume")
    assert_ran(result)
    assert "schedule rebuilt for 8 steps and fast-forwarded to step 4" in result.stdout
    assert "epoch 2: train loss" in result.stdout
    assert json.load(open(os.path.join(out, "fcn_mnist_results.json")))["epochs"] == 2
    # The rebuilt schedule ends where an uninterrupted 2-epoch run's does.
    assert_ran(run(FCN, *common, "--epochs", "2", "--out", straight))
    resumed, uninterrupted = checkpoint_schedule(out), checkpoint_schedule(straight)
    for key in ("total_steps", "last_epoch", "_last_lr"):
        assert resumed[key] == uninterrupted[key], key
    # Nothing left to train: refused.
    again = run(FCN, *common, "--epochs", "2", "--out", out, "--resume")
    assert_usage_error(again, "--resume", "already trained 2 epochs")
    # A checkpoint of another network: refused, not a traceback.
    other = run(FCN, *common, "--epochs", "3", "--out", out, "--resume", "--width", "8")
    assert_usage_error(other, "--resume", "does not fit this model")


# -- importing an unbuilt source tree ------------------------------------------------------------

def copy_sources(tmp_path, keep_built=()):
    """minigrad's package in tmp_path without compiled modules (except those of ``keep_built``)."""
    package = os.path.dirname(os.path.abspath(minigrad.__file__))
    shutil.copytree(package, tmp_path / "minigrad",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    for name in os.listdir(os.path.join(package, "_kernels")):
        if name.split(".")[0] in keep_built and name.endswith((".so", ".pyd")):
            shutil.copy(os.path.join(package, "_kernels", name), tmp_path / "minigrad" / "_kernels")


def import_from(folder):
    return subprocess.run([sys.executable, "-c", "import minigrad"], capture_output=True,
                          text=True, timeout=TIMEOUT, cwd=folder)


def test_importing_an_unbuilt_source_tree_says_what_to_do(tmp_path):
    copy_sources(tmp_path)
    result = import_from(tmp_path)
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: minigrad: the compiled kernels"), last
    assert "missing in this source tree" in last and str(tmp_path) in last
    assert "pip install -e ." in last and "run Python from another folder" in last


def test_importing_a_tree_with_one_kernel_unbuilt_names_it(tmp_path):
    kernels = os.path.join(os.path.dirname(minigrad.__file__), "_kernels")
    sources = sorted(name[:-4] for name in os.listdir(kernels) if name.endswith(".pyx"))
    copy_sources(tmp_path, keep_built=[name for name in sources if name != "pooling"])
    last = import_from(tmp_path).stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: minigrad: the compiled kernels (pooling) are missing"), \
        last
