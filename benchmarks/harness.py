"""Benchmark harness: timing, peak memory, machine roofs (GEMM, memory copy), BLAS/thread info,
table printers.

Used by ``benchmarks/run.py``; the suites are the ``benchmarks/cases_<suite>.py`` modules (see
``run.py`` for the case interface). minigrad runs in this process, PyTorch in a process of its
own (``TorchProcess``, ``torch_side.py``) so that each runs with its own OpenMP and heap settings.
The two take turns in blocks of runs (``time_alternating``), so that a burst of load from other
processes affects both alike; each block starts with untimed runs that outlast the other side's
spinning OpenMP workers, so that neither times the other's spin-down.

Peak memory (``step_memory``) is measured in a fresh process per side and case
(``memory_child``, started by ``run_json_child``), never in the timing processes: a process's
peak resident set only grows, so it needs a process of its own.
"""
import ctypes
import datetime
import gc
import importlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REDUCE = {"median": statistics.median, "min": min}
#: The environment variables that set an OpenMP runtime's threads and waiting (printed per side).
OMP_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")

# Each block of timed runs starts with untimed runs lasting at least this long: the other side's
# OpenMP workers spin for a few milliseconds after its last call (libgomp's default 300,000
# rounds) and would steal a core from the first timed runs. Waiting for them without running
# (sleeping) is worse on this VM: an idle vCPU wakes slowly, and the first op after a sleep
# pays for it.
WARM_SECONDS = 0.02


def time_calls(fn, repeat=10, warmup=2, warm_seconds=0.0):
    """Seconds of each of ``repeat`` calls of ``fn``, after untimed calls: at least ``warmup`` of
    them and, if ``warm_seconds`` > 0, at least one and as many as last ``warm_seconds``."""
    start = time.perf_counter()
    calls = 0
    while calls < warmup or (warm_seconds > 0 and (
            calls == 0 or time.perf_counter() - start < warm_seconds)):
        fn()
        calls += 1
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return seconds


class TorchProcess:
    """PyTorch in a child process (``torch_side.py``) started with ``env`` and ``heap`` ("tuned":
    minigrad's glibc settings, or "default"): times the suites' ``torch_forward`` /
    ``torch_train`` callables on request. ``header`` is None when torch is not
    installed there."""

    def __init__(self, threads, env, heap="tuned"):
        self.threads, self.env, self.heap = threads, env, heap
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "torch_side.py"),
                                      str(threads), heap], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env, text=True)
        header = self._read()
        self.header = header if header["torch"] else None

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("benchmarks/torch_side.py exited early (see its error above)")
        return json.loads(line)

    def time(self, suite, case, pass_name, repeat, warmup, warm_seconds):
        self.proc.stdin.write(json.dumps({"suite": suite, "case": case, "pass": pass_name,
                                          "warmup": warmup, "repeat": repeat,
                                          "warm_seconds": warm_seconds}) + "\n")
        self.proc.stdin.flush()
        return self._read()["seconds"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()

    def memory(self, suite, case, steps):
        """``step_memory`` of case number ``case``'s ``torch_train`` in a fresh torch process with
        this one's environment, threads and heap (``torch_side.py ... memory``)."""
        return run_json_child([sys.executable, os.path.join(HERE, "torch_side.py"),
                               str(self.threads), self.heap, "memory", suite, str(case),
                               str(steps)], self.env)


def time_alternating(mg_fn, torch_fn, repeat=10, warmup=2, stat="median", blocks=4):
    """(minigrad seconds, torch seconds) per call: ``stat`` ("median" or "min") over ``repeat``
    timed runs each, taken in ``blocks`` alternating blocks, the first after ``warmup`` untimed
    runs, each after ``WARM_SECONDS`` of them. ``torch_fn(repeat, warmup, warm_seconds)`` returns
    torch's timings (None when torch is absent)."""
    per_block = [repeat // blocks + (i < repeat % blocks) for i in range(min(blocks, repeat))]
    mg, pt = [], []
    for i, runs in enumerate(per_block):
        first = warmup if i == 0 else 0
        if torch_fn is not None:
            pt += torch_fn(runs, first, WARM_SECONDS)
        mg += time_calls(mg_fn, runs, first, WARM_SECONDS)
    reduce = REDUCE[stat]
    return reduce(mg), (reduce(pt) if pt else None)


def _status_mib(field):
    """Field ``field`` (VmRSS, VmHWM) of /proc/self/status in MiB; None where there is none."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024      # kB
    except OSError:
        pass
    return None


def peak_rss_mib():
    """This process's peak resident set (MiB): VmHWM, else getrusage's ru_maxrss."""
    peak = _status_mib("VmHWM")
    if peak is None:
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = maxrss / (1 << 20) if sys.platform == "darwin" else maxrss / 1024
    return peak


def reset_peak_rss():
    """Reset the peak (VmHWM) to the current resident set (Linux: 5 > /proc/self/clear_refs);
    whether it worked (if not, the peak is the process's since it started)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def release_free_heap():
    """Give glibc's free heap pages back to the system (malloc_trim), so that memory freed
    before a measurement is not counted as resident and then reused unseen by it."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def step_memory(step, steps):
    """Peak resident memory (MiB) of ``1 + steps`` calls of ``step`` (one warm-up): ``baseline``,
    the resident set before the first call (after a garbage collection and ``release_free_heap``),
    ``peak`` during the calls and ``increase`` = peak - baseline. Meant for a fresh process that
    has built the model and data and nothing else."""
    gc.collect()
    release_free_heap()
    baseline = _status_mib("VmRSS")
    reset = reset_peak_rss()
    for _ in range(1 + steps):
        step()
    peak = peak_rss_mib()
    if baseline is None:                  # no /proc: the peak is all that is known
        baseline = peak
    return {"baseline": baseline, "peak": peak, "increase": peak - baseline,
            "peak_reset": reset}


def memory_child(suite, case, steps, torch=None):
    """In a fresh process: ``step_memory`` of the training pass of case number ``case`` of
    ``cases_<suite>``, minigrad's (``torch`` None) or torch's. The suite's cases are built as for
    timing, then everything but that one callable is dropped (the other cases, the other side's
    model and data), so the baseline holds this side's model and data. Also says whether torch
    was imported (minigrad's side must run without it)."""
    side = "mg" if torch is None else "torch"
    step = importlib.import_module(f"cases_{suite}").cases(torch)[case][f"{side}_train"]
    result = step_memory(step, steps)
    result["torch_imported"] = "torch" in sys.modules
    return result


def run_json_child(command, env=None):
    """Run ``command`` (a process that prints a JSON object on its last line) and return it."""
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def gemm_roof(n=1536, repeat=5, stat="median"):
    """float32 GFLOP/s of numpy's matmul on an n×n×n product (this process, current threads):
    the ceiling for any im2col + GEMM convolution."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), np.float32)
    seconds = REDUCE[stat](time_calls(lambda: np.matmul(a, b, out=c), repeat, 1))
    return 2.0 * n ** 3 / seconds / 1e9


def copy_bandwidth(nbytes=64 << 20, repeat=5, stat="median"):
    """GB/s of numpy copying a large float32 array (bytes read + bytes written)."""
    src = np.ones(nbytes // 4, np.float32)
    dst = np.empty_like(src)
    seconds = REDUCE[stat](time_calls(lambda: np.copyto(dst, src), repeat, 1))
    return 2.0 * nbytes / seconds / 1e9


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info():
    """One line per thread pool loaded in this process (threadpoolctl), e.g. OpenBLAS's
    library, version, kernel (architecture), threading layer and thread count."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ["threadpoolctl not installed: BLAS details unknown"]
    lines = []
    for pool in threadpool_info():
        lines.append(", ".join(f"{key}={pool.get(key)}" for key in (
            "user_api", "internal_api", "version", "architecture", "threading_layer",
            "num_threads") if pool.get(key) is not None)
            + f" ({os.path.basename(pool.get('filepath', ''))})")
    return lines


def _cell(value, fmt):
    """``value`` formatted with ``fmt`` (e.g. "9.1f"), or a right-aligned "-" of the same width."""
    return format(value, fmt) if value is not None else "-".rjust(int(fmt.split(".")[0]))


def print_table(title, rows, roof):
    """rows: dicts with name, pass, mg, torch (seconds or None), flops, bytes (per call)."""
    width = max([len("case")] + [len(row["name"]) for row in rows]) + 2
    header = (f"{'case':<{width}}{'pass':<10}{'minigrad ms':>12}{'torch ms':>10}{'ratio':>7}"
              f"{'GFLOP/s':>9}{'% roof':>8}{'GB/s':>7}")
    print(f"\n== {title} ==")
    print(header)
    print("-" * len(header))
    for row in rows:
        mg, pt = row["mg"], row["torch"]
        gflops = row["flops"] / mg / 1e9 if row.get("flops") and mg else None
        gbytes = row["bytes"] / mg / 1e9 if row.get("bytes") and mg else None
        print(f"{row['name']:<{width}}{row['pass']:<10}{_cell(mg and mg * 1e3, '12.3f')}"
              f"{_cell(pt and pt * 1e3, '10.3f')}{_cell(pt and mg / pt, '7.2f')}"
              f"{_cell(gflops, '9.1f')}{_cell(gflops and 100 * gflops / roof, '8.0f')}"
              f"{_cell(gbytes, '7.1f')}")


def print_memory_table(title, rows, steps):
    """rows: dicts with name, mg, torch (``step_memory`` results or None)."""
    width = max([len("case")] + [len(row["name"]) for row in rows]) + 2
    header = (f"{'case':<{width}}{'minigrad peak':>14}{'torch peak':>12}{'ratio':>7}"
              f"{'minigrad +step':>16}{'torch +step':>13}{'ratio':>7}")
    print(f"\n== {title}: peak resident memory, MiB ==")
    print(f"each side and case in a fresh process: model and data built, then 1 warm-up + {steps} "
          "training steps;\npeak = peak resident set during the steps, +step = peak - resident "
          "set before them; ratio = minigrad / torch")
    print(header)
    print("-" * len(header))
    for row in rows:
        mg, pt = row["mg"], row["torch"]
        cells = []
        for key, mg_fmt, pt_fmt in (("peak", "14.1f", "12.1f"), ("increase", "16.1f", "13.1f")):
            ratio = mg[key] / pt[key] if pt and pt[key] > 0 else None
            cells += [_cell(mg[key], mg_fmt), _cell(pt and pt[key], pt_fmt), _cell(ratio, "7.2f")]
        print(f"{row['name']:<{width}}" + "".join(cells))
    if not all(r["peak_reset"] for row in rows for r in (row["mg"], row["torch"]) if r):
        print("(the peak could not be reset here: it is the process's peak since it started)")


class Tee:
    """A write-only stream that copies everything to several streams (the terminal and the
    report that ``--save`` writes)."""

    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self):
        for stream in self.streams:
            stream.flush()


def save_report(path, report, argv):
    """Write the benchmark's printed report to ``path`` as Markdown, headed by the date, the
    commit it measured (marked when the tree had uncommitted changes) and the command."""
    def git(*args):
        done = subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    if git("status", "--porcelain", "--untracked-files=no"):
        commit += " + uncommitted changes"
    command = " ".join(["python", "benchmarks/run.py", *argv[1:]])
    with open(path, "w") as f:
        f.write("# Benchmark results\n\n"
                f"Written by `{command}` on {datetime.date.today().isoformat()} at commit "
                f"{commit}. The code's comments name these cases; re-run to refresh.\n\n"
                f"```\n{report.strip()}\n```\n")
