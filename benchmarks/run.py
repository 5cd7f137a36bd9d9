"""Run the benchmark suites: ``python benchmarks/run.py [--suite conv,pool] [--repeat N]``.

Each suite is a module ``benchmarks/cases_<suite>.py`` with ``cases(torch) -> list[dict]``
(``torch`` is the torch module or None) and optionally ``TITLE`` (its table's heading); each case
dict has

    name            str
    mg_forward      callable: minigrad forward (under minigrad.no_grad())
    mg_train        callable or None (no training row): minigrad forward + backward
    torch_forward   callable or None: the same in torch (under torch.no_grad())
    torch_train     callable or None
    flops           forward FLOPs (2·MACs) or None
    bytes           forward bytes moved (input read + output written) or None
    train_flops     optional: FLOPs of forward + backward, for the train row's GFLOP/s

After the suites in ``MEMORY_SUITES`` (train) comes the peak resident memory of each case's
training pass, each side in a fresh process (``harness.step_memory``; ``--memory-steps``).

Everything runs float32 on all cores. minigrad runs in this process with its runtime settings;
torch runs in a child process with its own defaults (the environment this script was started
with; its heap gets minigrad's glibc settings unless ``--torch-heap default``), and the two take
turns in blocks of runs (median of ``--repeat`` runs after ``--warmup``;
``--stat min`` on a busy machine; see ``harness.py``). The header gives the machine, the thread
pools and two roofs measured in this process: numpy's float32 GEMM and numpy's memory copy.
"""
import argparse
import contextlib
import functools
import glob
import importlib
import io
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
#: where ``--save`` writes the report: the figures that comments and docs refer to
RESULTS = os.path.join(HERE, "RESULTS.md")
sys.path.insert(0, HERE)
sys.path.insert(1, os.path.dirname(HERE))   # run from a checkout without installing

import minigrad  # noqa: E402  (before numpy: see minigrad/runtime.py)

import harness  # noqa: E402

#: suites whose training pass also gets its peak memory measured
MEMORY_SUITES = ("train",)


def available_suites():
    return sorted(os.path.basename(p)[len("cases_"):-len(".py")]
                  for p in glob.glob(os.path.join(HERE, "cases_*.py")))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", default=",".join(available_suites()),
                        help="comma-separated suites (default: every benchmarks/cases_*.py: "
                             "%(default)s)")
    parser.add_argument("--repeat", type=int, default=10, help="timed runs per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first")
    parser.add_argument("--torch-heap", choices=("tuned", "default"), default="tuned",
                        help="torch's glibc heap: minigrad's settings (default) or glibc's own")
    parser.add_argument("--stat", choices=("median", "min"), default="median",
                        help="statistic over the timed runs (min: for a busy machine)")
    parser.add_argument("--cases", default=None, metavar="NAMES",
                        help="comma-separated case names: run only these (of the suites chosen)")
    parser.add_argument("--memory-steps", type=int, default=3, metavar="N",
                        help=f"training steps (after 1 warm-up) per peak-memory measurement of the "
                        f"{', '.join(MEMORY_SUITES)} suite; 0: no memory measurement "
                        "(default %(default)s)")
    parser.add_argument("--memory-child", nargs=3, metavar=("SUITE", "CASE", "STEPS"),
                        help=argparse.SUPPRESS)      # run.py starting itself: one measurement
    parser.add_argument("--save", nargs="?", const=RESULTS, default=None, metavar="FILE",
                        help=f"also write the report to FILE (default {RESULTS}), with the "
                             "date, the commit and the command line")
    args = parser.parse_args()
    args.suite = [s.strip() for s in args.suite.split(",") if s.strip()]
    unknown = sorted(set(args.suite) - set(available_suites()))
    if unknown:
        parser.error(f"unknown suite(s) {unknown}; available: {available_suites()}")
    if args.repeat < 1 or args.warmup < 0 or args.memory_steps < 0:
        parser.error("--repeat must be >= 1, --warmup and --memory-steps >= 0")
    if args.cases is not None:
        args.cases = {c.strip() for c in args.cases.split(",") if c.strip()}
    return args, parser


def main():
    args, parser = parse_args()
    cores = os.cpu_count() or 1
    minigrad.set_num_threads(cores)
    if args.memory_child:
        # minigrad's side of a peak-memory measurement, alone in this fresh process
        suite, case, steps = args.memory_child
        print(json.dumps(harness.memory_child(suite, int(case), int(steps))), flush=True)
        return
    if args.cases is not None:
        # each suite's cases are built again when it runs (as without --cases: one at a time)
        names = {case["name"] for suite in args.suite
                 for case in importlib.import_module(f"cases_{suite}").cases(None)}
        if args.cases - names:
            parser.error(f"no case(s) {sorted(args.cases - names)} in suite(s) {args.suite}")
    # minigrad's runtime settings never enter os.environ: the child gets the user's environment
    torch = harness.TorchProcess(cores, dict(os.environ), args.torch_heap)
    report = io.StringIO()
    try:
        with contextlib.redirect_stdout(harness.Tee(sys.stdout, report)):
            run_suites(args, cores, torch if torch.header else None)
    finally:
        torch.close()
    if args.save:
        harness.save_report(args.save, report.getvalue(), sys.argv)
        print(f"\nwritten to {args.save}")


#: A change of the GEMM roof between a run's start and end beyond this share is reported.
ROOF_DRIFT = 0.1


def run_suites(args, cores, torch):
    roof = harness.gemm_roof(stat=args.stat)
    print(f"CPU: {harness.cpu_name()}, {cores} cores")
    applied = {**{name: os.environ.get(name, "unset") for name in harness.OMP_SETTINGS},
               **minigrad.runtime.applied}
    print(f"minigrad {minigrad.__version__}: {minigrad.get_num_threads()} OpenMP threads, "
          + ", ".join(f"{name}={value}" for name, value in applied.items())
          + f", heap {'tuned' if minigrad.runtime.heap_tuned else 'default'}")
    if torch:
        print(f"torch {torch.header['torch']} (own process): {torch.header['threads']} threads, "
              + ", ".join(f"{k}={v}" for k, v in torch.header["env"].items())
              + f", heap {torch.header['heap']}")
    else:
        print("torch not installed: minigrad only")
    for line in harness.blas_info():
        print(f"thread pool (minigrad's process): {line}")
    print(f"GEMM roof (numpy float32 matmul): {roof:.1f} GFLOP/s; "
          f"copy bandwidth (numpy, read+write): {harness.copy_bandwidth(stat=args.stat):.1f} GB/s")
    print(f"timing: {args.stat} of {args.repeat} runs after {args.warmup} warm-up runs, "
          "minigrad and torch in alternating blocks; ratio = minigrad / torch")

    for suite in args.suite:
        module = importlib.import_module(f"cases_{suite}")
        # (index, case): the index is the case's number in its suite, as the torch side and the
        # memory children number them
        selected = [(index, case) for index, case in enumerate(module.cases(None))
                    if args.cases is None or case["name"] in args.cases]
        if not selected:
            continue
        rows = []
        for index, case in selected:
            for pass_name, flops in (("forward", case.get("flops")),
                                     ("train", case.get("train_flops"))):
                if case.get(f"mg_{pass_name}") is None:
                    continue
                torch_fn = (None if torch is None
                            else functools.partial(torch.time, suite, index, pass_name))
                mg, pt = harness.time_alternating(case[f"mg_{pass_name}"], torch_fn,
                                                  args.repeat, args.warmup, args.stat)
                rows.append({"name": case["name"],
                             "pass": "forward" if pass_name == "forward" else "fwd+bwd",
                             "mg": mg, "torch": pt, "flops": flops,
                             "bytes": case.get("bytes") if pass_name == "forward" else None})
        title = getattr(module, "TITLE", suite)
        harness.print_table(title, rows, roof)
        if suite in MEMORY_SUITES and args.memory_steps:
            harness.print_memory_table(title, [
                {"name": case["name"],
                 "mg": harness.run_json_child([sys.executable, os.path.abspath(__file__),
                                               "--memory-child", suite, str(index),
                                               str(args.memory_steps)], dict(os.environ)),
                 "torch": torch and torch.memory(suite, index, args.memory_steps)}
                for index, case in selected], args.memory_steps)
    # The same roof again: a machine shared with other work slows down and speeds up during a
    # run, and the ratios of such a run are less reliable.
    end_roof = harness.gemm_roof(stat=args.stat)
    change = end_roof / roof - 1
    print(f"\nGEMM roof at the end: {end_roof:.1f} GFLOP/s ({change:+.0%} against the start)"
          + ("; the machine's speed changed during the run: other work shares it?"
             if abs(change) > ROOF_DRIFT else ""))


if __name__ == "__main__":
    main()
