"""The benchmark harness (benchmarks/): runs end to end and splits its runs as documented.
No timing is asserted, only that every case is measured and reported."""
import os
import subprocess
import sys

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
