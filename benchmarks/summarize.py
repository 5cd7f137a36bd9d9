"""Several full benchmark runs in one table: ``python benchmarks/summarize.py run1.md run2.md ...``.

Each file is a report that ``benchmarks/run.py --save FILE`` wrote. For every case and pass the
table gives minigrad's and torch's median time over the runs and the ratio minigrad / torch:
its median and its range (lowest, highest) over the runs, so that one run's noise is visible
as such. Peak memory rows (the train suite) get the same treatment. ``--save FILE`` also writes
the table as Markdown, headed by the runs' file names.
"""
import argparse
import os
import re
import statistics
import sys

# a timing row of harness.print_table: case, pass, minigrad ms, torch ms, ratio, ...
TIMING = re.compile(r"^(\S+)\s+(forward|fwd\+bwd)\s+([\d.]+)\s+([\d.]+|-)\s+([\d.]+|-)")
# a row of harness.print_memory_table: case, minigrad peak, torch peak, ratio, ...
MEMORY = re.compile(r"^(\S+)\s+([\d.]+)\s+([\d.]+|-)\s+([\d.]+|-)\s+[\d.]+")


def parse(path):
    """{(section, case, pass): (minigrad, torch)} of one saved report (ms or MiB)."""
    rows, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.rstrip()
            if line.startswith("== "):
                section = line.strip("= ")
                continue
            if section is None or line.startswith(("case", "---")):
                continue
            timing = TIMING.match(line)
            if timing and "memory" not in section:
                name, pass_name, mg, pt = timing.group(1, 2, 3, 4)
                rows[(section, name, pass_name)] = (float(mg), None if pt == "-" else float(pt))
                continue
            memory = MEMORY.match(line)
            if memory and "memory" in section:
                name, mg, pt = memory.group(1, 2, 3)
                rows[(section, name, "peak MiB")] = (float(mg), None if pt == "-" else float(pt))
    return rows


def headers(paths):
    """The machine and settings lines of the reports (each distinct line once) and each run's
    roofs, for the summary's heading."""
    lines, roofs = [], []
    for path in paths:
        run_roofs = []      # at the start, and (newer reports) at the end
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith(("CPU:", "minigrad ", "torch ", "timing:")) and line not in lines:
                    lines.append(line)
                elif line.startswith("GEMM roof"):
                    run_roofs.append(line)
        roofs.append("; ".join(run_roofs))
    return lines + [f"run {i + 1}: {roof}" for i, roof in enumerate(roofs)]


def summarize(paths):
    runs = [parse(p) for p in paths]
    keys = list(dict.fromkeys(k for run in runs for k in run))
    lines, section = [], None
    width = max([24] + [len(key[1]) + 2 for key in keys])      # the case column
    for key in keys:
        if key[0] != section:
            section = key[0]
            lines += ["", f"== {section} ==",
                      f"{'case':<{width}}{'pass':<10}{'minigrad':>10}{'torch':>10}{'ratio':>7}"
                      f"{'range':>14}{'runs':>6}",
                      "-" * (width + 57)]
        pairs = [run[key] for run in runs if key in run]
        mg = statistics.median(p[0] for p in pairs)
        ratios = [p[0] / p[1] for p in pairs if p[1]]
        pt = statistics.median(p[1] for p in pairs if p[1]) if ratios else None
        ratio = f"{statistics.median(ratios):7.2f}" if ratios else f"{'-':>7}"
        spread = f"{min(ratios):.2f}–{max(ratios):.2f}" if ratios else "-"
        lines.append(f"{key[1]:<{width}}{key[2]:<10}{mg:10.3f}"
                     + (f"{pt:10.3f}" if pt is not None else f"{'-':>10}")
                     + f"{ratio}{spread:>14}{len(pairs):>6}")
    return "\n".join(lines).strip("\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("reports", nargs="+", help="reports written by run.py --save FILE")
    parser.add_argument("--save", default=None, metavar="FILE",
                        help="also write the table to FILE as Markdown")
    args = parser.parse_args()
    table = summarize(args.reports)
    print(table)
    if args.save:
        with open(args.save, "w") as f:
            f.write("# Benchmark results\n\n"
                    f"Medians over {len(args.reports)} full runs of `benchmarks/run.py` "
                    "(times in ms, peak memory in MiB; ratio = minigrad / torch, its median and "
                    "range over the runs), written by `python benchmarks/summarize.py` from "
                    "the runs' reports ("
                    + ", ".join(os.path.basename(r) for r in args.reports)
                    + "), whose machine and settings lines and roofs head the table.\n\n"
                    "```\n" + "\n".join(headers(args.reports)) + f"\n\n{table}\n```\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
