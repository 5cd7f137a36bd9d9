"""PyTorch's side of the benchmark, in a process of its own (started by ``harness.TorchProcess``).

Why a separate process: in one process minigrad's kernels and torch share one libgomp (the first
``libgomp.so.1`` loaded serves both) and one heap, so torch would run under minigrad's OpenMP
spin settings, not with its own defaults, which are faster for torch (cases gap and
inception_cifar_step). Here torch is imported before minigrad, so its OpenMP runtime reads the
environment the user started the benchmark with (minigrad's settings never enter it). The heap is a separate choice
(``--torch-heap``): "tuned" (default) gives torch minigrad's glibc settings too (a process-wide
setting any torch user can make; without it torch re-faults its fresh multi-megabyte outputs
and is slower, e.g. in case conv3x3_s1), "default" leaves glibc's.

Protocol (one JSON object per line): first this process writes a header
``{"torch": version, "threads": n, "env": {...}, "heap": heap}`` (or ``{"torch": null}`` when torch is not
installed); then for each request ``{"suite": s, "case": i, "pass": "forward"|"train",
"warmup": w, "repeat": r, "warm_seconds": s}`` read from stdin it writes ``{"seconds": [r timings]}``.

``torch_side.py THREADS HEAP memory SUITE CASE STEPS`` instead measures the peak memory of case
number CASE's ``torch_train`` (``harness.memory_child``: this process builds the suite's cases,
keeps that one callable, runs it 1 + STEPS times) and prints that as its one JSON line. minigrad
is imported here only because the suite builds the torch twin from the minigrad model.
"""
import importlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    try:
        import torch
    except ImportError:
        print(json.dumps({"torch": None}), flush=True)
        return
    threads, heap = int(sys.argv[1]), sys.argv[2]
    torch.set_num_threads(threads)
    if heap == "default":
        os.environ["MINIGRAD_MALLOC_TUNING"] = "0"   # importing minigrad leaves the heap alone
    sys.path.insert(0, HERE)
    sys.path.insert(1, os.path.dirname(HERE))
    import harness

    if sys.argv[3:4] == ["memory"]:
        suite, case, steps = sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
        print(json.dumps(harness.memory_child(suite, case, steps, torch)), flush=True)
        return
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(),
                      "env": {k: os.environ.get(k, "unset") for k in harness.OMP_SETTINGS},
                      "heap": heap}), flush=True)
    suites = {}
    for line in sys.stdin:
        request = json.loads(line)
        suite = request["suite"]
        if suite not in suites:
            suites[suite] = importlib.import_module(f"cases_{suite}").cases(torch)
        fn = suites[suite][request["case"]][f"torch_{request['pass']}"]
        seconds = harness.time_calls(fn, request["repeat"], request["warmup"],
                                     request["warm_seconds"])
        print(json.dumps({"seconds": seconds}), flush=True)


if __name__ == "__main__":
    main()
