"""The benchmark harness (benchmarks/): runs end to end and splits its runs as documented.
No timing is asserted, only that every case is measured and reported, and that the peak-memory
table of the train suite has its figures."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import harness  # noqa: E402


def test_time_alternating_takes_every_run_in_alternating_blocks():
    calls = []

    def mg_fn():
        calls.append("mg")

    def torch_fn(repeat, warmup, warm_seconds):
        assert warm_seconds == harness.WARM_SECONDS
        calls.append(("torch", repeat, warmup))
        return [float(len(calls))] * repeat

    mg, pt = harness.time_alternating(mg_fn, torch_fn, repeat=5, warmup=1, stat="min", blocks=4)
    torch_blocks = [c for c in calls if c != "mg"]
    assert [(r, w) for _, r, w in torch_blocks] == [(2, 1), (1, 0), (1, 0), (1, 0)]
    assert pt == 1.0 and mg >= 0.0                  # min over torch's first block's values
    # each block: torch's runs, then minigrad's: untimed ones for WARM_SECONDS, then the timed
    assert calls[0][0] == "torch"
    torch_at = [i for i, c in enumerate(calls) if c != "mg"] + [len(calls)]
    mg_per_block = [b - a - 1 for a, b in zip(torch_at, torch_at[1:])]
    assert all(runs >= timed + 1 for runs, timed in zip(mg_per_block, (2, 1, 1, 1)))


def test_time_alternating_without_torch():
    mg, pt = harness.time_alternating(lambda: None, None, repeat=3, warmup=0)
    assert pt is None and mg >= 0.0


def test_run_script_reports_every_case_and_saves_the_report(tmp_path):
    saved = tmp_path / "RESULTS.md"
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "run.py"),
                          "--suite", "pool", "--repeat", "1", "--warmup", "0",
                          "--save", str(saved)],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    report = saved.read_text()
    assert report.startswith("# Benchmark results") and "--suite pool" in report
    assert "== pool ==" in report and "gap" in report and "written to" not in report
    rows = [line.split() for line in out.stdout.splitlines()
            if line.split()[:1] and line.split()[0] in
            ("maxpool2_s2", "maxpool3_s2_p1", "maxpool3_s1_p1", "avgpool2_s2", "gap")]
    assert len(rows) == 10
    assert {row[1] for row in rows} == {"forward", "fwd+bwd"}
    torch_measured = "torch not installed" not in out.stdout
    for row in rows:
        assert float(row[2]) > 0
        assert (row[3] != "-") == torch_measured


def test_run_script_rejects_an_unknown_suite():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "run.py"),
                          "--suite", "nope"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode != 0 and "unknown suite" in out.stderr


def _run(*args, env=None, timeout=300):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "run.py"), *args],
                         capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _rows(stdout, names):
    """The table rows (split into cells) of the cases ``names``, in the timing tables."""
    return [line.split() for line in stdout.splitlines()
            if line.split()[:1] and line.split()[0] in names
            and line.split()[1] in ("forward", "fwd+bwd")]


def _without_torch(tmp_path):
    """An environment in which ``import torch`` fails (as on CI, where torch is not installed)."""
    package = tmp_path / "hidden" / "torch"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('torch hidden by the test')\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(tmp_path / "hidden")] + [p for p in [os.environ.get("PYTHONPATH")] if p])}


def _check_conv_rows(stdout, names):
    rows = _rows(stdout, names)
    assert sorted((row[0], row[1]) for row in rows) == sorted(
        (name, p) for name in names for p in ("forward", "fwd+bwd"))
    torch_measured = "torch not installed" not in stdout
    for row in rows:
        assert float(row[2]) > 0 and (row[3] != "-") == torch_measured
    return torch_measured


def test_conv_suite_reports_every_case_forward_and_backward(tmp_path):
    """minigrad's side of every case (torch hidden: its side of the whole suite takes long)."""
    import cases_conv
    stdout = _run("--suite", "conv", "--repeat", "1", "--warmup", "0",
                  env=_without_torch(tmp_path))
    assert not _check_conv_rows(stdout, cases_conv.SHAPES)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed")
def test_conv_suite_torch_side_runs_grouped_and_first_layer_cases():
    """torch's side gets groups, no bias and no input gradient as minigrad's does."""
    names = ("dw3x3_s2", "grouped3x3_g4", "fcn_first")
    stdout = _run("--suite", "conv", "--cases", ",".join(names), "--repeat", "1",
                  "--warmup", "0")
    assert _check_conv_rows(stdout, names)


def test_conv_cases_have_the_examples_shapes():
    """The first-layer cases are the example networks' own first convolutions."""
    import cases_conv
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    import fcn_mnist
    import inception_cifar

    def conv_case(conv, map_size):
        return {"x_shape": (cases_conv.N, conv.in_channels, map_size, map_size),
                "w_shape": (conv.out_channels, conv.in_channels // conv.groups)
                + tuple(conv.kernel_size),
                "stride": conv.stride[0], "padding": conv.padding[0],
                "dilation": conv.dilation[0], "groups": conv.groups}

    fcn, inception = fcn_mnist.build_model(), inception_cifar.build_model()
    assert conv_case(fcn[0], 28) == cases_conv.SHAPES["fcn_first"]
    assert conv_case(inception[0][0], 32) == cases_conv.SHAPES["inception_first"]
    assert fcn[0].bias is None and inception[0][0].bias is None     # as FIRST_LAYER runs them


def test_infer_suite_reports_batch_one_forward_only():
    stdout = _run("--suite", "infer", "--repeat", "1", "--warmup", "0")
    assert "== infer: batch 1, forward only, ms per image ==" in stdout
    rows = _rows(stdout, ("fcn_mnist_b1", "inception_cifar_b1"))
    assert sorted((row[0], row[1]) for row in rows) == [
        ("fcn_mnist_b1", "forward"), ("inception_cifar_b1", "forward")]
    torch_measured = "torch not installed" not in stdout
    for row in rows:
        assert float(row[2]) > 0 and (row[3] != "-") == torch_measured


def _memory_rows(stdout, names):
    lines = stdout.splitlines()
    table = lines[lines.index("== train: peak resident memory, MiB ==") + 1:]
    return [line.split() for line in table if line.split()[:1] and line.split()[0] in names]


@pytest.mark.parametrize("hide_torch", [False, True], ids=["torch_if_installed", "no_torch"])
def test_train_suite_prints_the_memory_table(tmp_path, hide_torch):
    stdout = _run("--suite", "train", "--cases", "fcn_mnist_step", "--repeat", "1",
                  "--warmup", "0", "--memory-steps", "1",
                  env=_without_torch(tmp_path) if hide_torch else None)
    assert [row[:2] for row in _rows(stdout, ("fcn_mnist_step", "inception_cifar_step"))] == [
        ["fcn_mnist_step", "forward"], ["fcn_mnist_step", "fwd+bwd"]]     # --cases: only it
    assert "1 warm-up + 1 training steps" in stdout
    rows = _memory_rows(stdout, ("fcn_mnist_step", "inception_cifar_step"))
    assert [row[0] for row in rows] == ["fcn_mnist_step"]
    mg_peak, pt_peak, peak_ratio, mg_step, pt_step, step_ratio = rows[0][1:]
    assert float(mg_peak) > float(mg_step) > 0
    if "torch not installed" in stdout:
        assert hide_torch or importlib.util.find_spec("torch") is None
        assert pt_peak == peak_ratio == pt_step == step_ratio == "-"
    else:
        assert float(pt_peak) > float(pt_step) > 0
        assert float(peak_ratio) > 0 and float(step_ratio) > 0


def test_memory_child_of_minigrad_runs_without_torch():
    stdout = _run("--memory-child", "train", "0", "1")
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["torch_imported"] is False
    assert result["peak"] >= result["baseline"] > 0 and result["increase"] > 0


def test_step_memory_sees_a_step_allocation():
    import numpy as np
    result = harness.step_memory(lambda: np.ones(64 << 18, np.float32), steps=1)   # 64 MiB
    assert result["increase"] >= 60 and result["peak"] - result["baseline"] == result["increase"]


def test_run_script_rejects_an_unknown_case():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "run.py"),
                          "--suite", "pool", "--cases", "gap,nope"],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode != 0 and "no case(s) ['nope']" in out.stderr


def test_summarize_gives_the_median_and_range_of_each_ratio_over_runs(tmp_path):
    import summarize

    def report(conv_ms, torch_ms, peak):
        return ("== conv ==\ncase   pass   minigrad ms  torch ms  ratio  GFLOP/s  % roof   GB/s\n"
                "-----\n"
                f"conv3x3_s1   forward   {conv_ms:.3f}   {torch_ms:.3f}   0.00   1.0   1   -\n"
                "conv3x3_s1   fwd+bwd   4.000   -   -   -   -   -\n"
                "\n== train: peak resident memory, MiB ==\ncase  minigrad peak  torch peak\n"
                f"-----\nfcn_mnist_step   {peak:.1f}   200.0   0.50   10.0   20.0   0.50\n")
    paths = []
    for i, (mg, pt, peak) in enumerate([(1.0, 2.0, 100.0), (3.0, 2.0, 120.0), (2.0, 2.0, 90.0)]):
        paths.append(str(tmp_path / f"run{i}.md"))
        with open(paths[-1], "w") as f:
            f.write(report(mg, pt, peak))
    rows = {line.split()[0] + " " + line.split()[1]: line.split()
            for line in summarize.summarize(paths).splitlines()
            if line.startswith(("conv3x3", "fcn_"))}
    assert rows["conv3x3_s1 forward"][2:] == ["2.000", "2.000", "1.00", "0.50–1.50", "3"]
    assert rows["conv3x3_s1 fwd+bwd"][2:] == ["4.000", "-", "-", "-", "3"]   # no torch figure
    assert rows["fcn_mnist_step peak"][3:] == ["100.000", "200.000", "0.50", "0.45–0.60", "3"]


def test_summarize_heads_each_run_with_its_roofs_at_start_and_end(tmp_path):
    import summarize
    paths = []
    for i, roofs in enumerate([("180.0", "150.0"), ("185.0",)]):      # an older report: one
        paths.append(str(tmp_path / f"run{i}.md"))
        with open(paths[-1], "w") as f:
            f.write("CPU: test, 2 cores\n" + "".join(
                f"GEMM roof{' at the end' if j else ''}: {roof} GFLOP/s\n"
                for j, roof in enumerate(roofs)))
    lines = summarize.headers(paths)
    assert lines == ["CPU: test, 2 cores",
                     "run 1: GEMM roof: 180.0 GFLOP/s; GEMM roof at the end: 150.0 GFLOP/s",
                     "run 2: GEMM roof: 185.0 GFLOP/s"]
