"""Benchmark harness: timing, machine roofs (GEMM, memory copy), BLAS/thread info, table printer.

Used by ``benchmarks/run.py``; the suites are the ``benchmarks/cases_<suite>.py`` modules (see
``run.py`` for the case interface). Timings are medians of repeated runs after a warm-up, and
minigrad and PyTorch are timed interleaved (one minigrad run, one torch run, ...) so that a
burst of load from other processes affects both alike.
"""
import os
import platform
import statistics
import time

import numpy as np


def _run_once(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_interleaved(fns, repeat=10, warmup=2, stat="median"):
    """Seconds per call of each callable in ``fns`` (None entries give None), calling them in
    turn ``warmup`` times untimed, then ``repeat`` times timed; ``stat`` "median" (default) or
    "min" (the least disturbed run, for a machine shared with other work)."""
    reduce = {"median": statistics.median, "min": min}[stat]
    live = [fn for fn in fns if fn is not None]
    for _ in range(warmup):
        for fn in live:
            fn()
    samples = {id(fn): [] for fn in live}
    for _ in range(repeat):
        for fn in live:
            samples[id(fn)].append(_run_once(fn))
    return [None if fn is None else reduce(samples[id(fn)]) for fn in fns]


def gemm_roof(n=1536, repeat=5, stat="median"):
    """float32 GFLOP/s of numpy's matmul on an n×n×n product (this process, current threads):
    the ceiling for any im2col + GEMM convolution."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), np.float32)
    (seconds,) = time_interleaved([lambda: np.matmul(a, b, out=c)], repeat, 1, stat)
    return 2.0 * n ** 3 / seconds / 1e9


def copy_bandwidth(nbytes=64 << 20, repeat=5, stat="median"):
    """GB/s of numpy copying a large float32 array (bytes read + bytes written)."""
    src = np.ones(nbytes // 4, np.float32)
    dst = np.empty_like(src)
    (seconds,) = time_interleaved([lambda: np.copyto(dst, src)], repeat, 1, stat)
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
        print(f"{row['name']:<{width}}{row['pass']:<10}{_cell(mg and mg * 1e3, '12.2f')}"
              f"{_cell(pt and pt * 1e3, '10.2f')}{_cell(pt and mg / pt, '7.2f')}"
              f"{_cell(gflops, '9.1f')}{_cell(gflops and 100 * gflops / roof, '8.0f')}"
              f"{_cell(gbytes, '7.1f')}")
