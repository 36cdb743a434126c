"""Run every benchmark and print one Markdown table (also written to ``benchmarks/RESULTS.md``).

Run from the repository root::

    /work/venv/bin/python benchmarks/run_all.py [--quick] [--output benchmarks/RESULTS.md]

Each benchmark runs as its own subprocess of this interpreter and measures trialkit against its
baseline in the same run; this script only collects what they print:

=============  ==============================================  ===================  ==================
stage          full mode                                       ``--quick``          target
=============  ==============================================  ===================  ==================
import         100,000 × 20 upload sheet vs python-calamine     20,000 rows         ≤ 1.3×, peak RSS ≤ 1.5×
validate       1,000,000-row diary vs bare pandera              200,000 rows        ≤ 2×
pool           50 sites, 10,000,000-row diary vs pandas         1,000,000 rows      ≤ 2×
pool writers   each format, 1,000,000-row diary vs its plain    200,000 rows        ≤ 1.3×
               writer (pyarrow, to_csv, pyreadstat, to_json)
demo           ``trialkit demo`` whole process, wall            same                ≤ 60 s
validate       the demo's site01 upload, whole process, vs      3 pairs (not 5)     ≤ 1.5× (CPU and wall
(interactive)  a script reading every sheet with calamine                           medians)
incremental    pool after one site's new upload vs a full       3 pairs (not 5)     ≤ 0.3× (CPU and wall
pool           pool --no-cache of the 8-site demo                                   medians)
start-up       ``trialkit --help`` vs ``import click``          best of 5 (not 10)  ≤ 2×
=============  ==============================================  ===================  ==================

Below it, a second table gives the *floors* the benchmarks print (``FLOOR {json}`` lines): what any
implementation that keeps trialkit's guarantees and parts (calamine, pandera, the safety scans, the
writers) pays at least for a measurement, against the same baseline and target — a target below
its floor cannot be met by making trialkit faster.

The table has one row per measurement: trialkit's time, the baseline's, the ratio, the target,
whether it is met, and the peak resident memory where the benchmark reports it. Where CPU and wall
medians are both measured, the row shows CPU and notes the wall ratio; both must meet the target.
A benchmark that fails or prints something this script cannot read gets a row saying so, and the
script exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass
class Row:
    stage: str
    trialkit: float | None = None
    baseline: float | None = None
    target: float | None = None
    memory: str = ""
    error: str = ""
    target_seconds: float | None = None  # an absolute target (the demo), no baseline
    wall_ratio: float | None = None  # CPU is the main ratio; wall must meet the target too
    memory_ratio: float | None = None
    memory_target: float | None = None

    @property
    def ratio(self) -> float | None:
        return self.trialkit / self.baseline if self.trialkit and self.baseline else None

    @property
    def met(self) -> bool:
        if self.target_seconds is not None:
            return self.trialkit is not None and self.trialkit <= self.target_seconds
        ratio = self.ratio
        ok = ratio is not None and self.target is not None and ratio <= self.target
        if self.wall_ratio is not None:
            ok = ok and self.wall_ratio <= (self.target or 0)
        if self.memory_ratio is not None and self.memory_target is not None:
            ok = ok and self.memory_ratio <= self.memory_target
        return ok

    def cells(self) -> list[str]:
        target = (f"≤ {self.target_seconds:g} s" if self.target_seconds is not None
                  else f"≤ {self.target:g}×" if self.target else "—")
        if self.memory_target is not None:
            target += f", RSS ≤ {self.memory_target:g}×"
        if self.error:
            return [self.stage, "—", "—", "—", target, f"not measured: {self.error}", ""]
        met = "yes" if self.met else "**no**"
        if self.target_seconds is not None:
            return [self.stage, _seconds(self.trialkit), "—", "—", target, met, self.memory]
        ratio = f"{self.ratio:.2f}×"
        if self.wall_ratio is not None:
            ratio += f" (wall {self.wall_ratio:.2f}×)"
        memory = self.memory
        if self.memory_ratio is not None:
            memory += f" ({self.memory_ratio:.2f}×)"
        return [self.stage, _seconds(self.trialkit), _seconds(self.baseline), ratio, target, met, memory]


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


#: The ``FLOOR {json}`` lines of every benchmark run: what any implementation keeping trialkit's
#: guarantees costs at least, against the same target (see :func:`floor_table`).
FLOORS: list[dict] = []


def _run(script: str, args: list[str]) -> tuple[str, str | None]:
    """Run ``benchmarks/<script>``; its stdout, and an error text when it failed."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(HERE / script), *args], capture_output=True, text=True,
                          cwd=HERE.parent, check=False)
    print(f"  {script} {' '.join(args)}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    FLOORS.extend(json.loads(line[len("FLOOR "):]) for line in done.stdout.splitlines() if line.startswith("FLOOR "))
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return done.stdout, f"exit code {done.returncode}: {tail}"
    return done.stdout, None


def _number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    if match is None:
        raise ValueError(f"no match for {pattern!r}")
    return float(match.group(1))


def bench_import(quick: bool) -> Row:
    rows = 20_000 if quick else 100_000
    row = Row(f"import: {rows:,} × 20 upload sheet vs bare python-calamine read", target=1.3, memory_target=1.5)
    out, error = _run("bench_import.py", ["--rows", str(rows)])
    try:
        if error:
            raise ValueError(error)
        if _result_line(out, row):
            return row
        side = r"^{}\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s*$"
        calamine = re.search(side.format("calamine"), out, re.MULTILINE)
        ours = re.search(side.format("trialkit"), out, re.MULTILINE)
        if calamine and ours:  # table of best, median and peak RSS per side, each in its own process
            row.baseline, row.trialkit = float(calamine.group(2)), float(ours.group(2))
            row.stage += " (medians)"
            row.memory = f"{ours.group(3)} MB / {calamine.group(3)} MB"
            row.memory_ratio = float(ours.group(3)) / float(calamine.group(3))
        else:  # one run of each side in this process
            row.baseline = _number(r"calamine bare read\s*:\s*([\d.]+) s", out)
            row.trialkit = _number(r"trialkit import\s*:\s*([\d.]+) s", out)
            peak = _number(r"peak memory \(RSS\)\s*:\s*([\d.]+) MB", out)
            row.memory = f"{peak:.0f} MB (whole process)"
    except ValueError as exc:
        row.error = str(exc)
    return row


def bench_validate(quick: bool) -> Row:
    rows = 200_000 if quick else 1_000_000
    row = Row(f"validate: {rows:,}-row diary vs bare pandera (lazy)", target=2.0)
    out, error = _run("bench_validate.py", [str(rows)])
    try:
        if error:
            raise ValueError(error)
        if _result_line(out, row):
            return row
        row.baseline = _number(r"bare pandera lazy validation\s*:\s*([\d.]+) s", out)
        row.trialkit = _number(r"trialkit validate_form\S*\s*:\s*([\d.]+) s", out)
        row.target = _number(r"target ≤ ([\d.]+)×", out)
    except ValueError as exc:
        row.error = str(exc)
    return row


def _result_line(out: str, row: Row) -> bool:
    """Fill ``row`` from the benchmark's ``RESULT {json}`` line, if it printed one."""
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    if not lines:
        return False
    data = json.loads(lines[-1][len("RESULT "):])
    row.stage, row.trialkit, row.baseline = data.get("stage", row.stage), data["trialkit"], data["baseline"]
    row.target = data.get("target", row.target)
    if "trialkit_peak_mb" in data:
        row.memory = f"{data['trialkit_peak_mb']:.0f} MB / {data['baseline_peak_mb']:.0f} MB"
        if "inputs_peak_mb" in data:
            row.memory += f" (input frames {data['inputs_peak_mb']:.0f} MB)"
    return True


def _from_result_line(script: str, args: list[str], stage: str, target: float) -> Row:
    row = Row(stage, target=target)
    out, error = _run(script, args)
    if error or not _result_line(out, row):
        row.error = error or "no RESULT line"
    return row


def bench_pool(quick: bool) -> Row:
    return _from_result_line("bench_pool.py", ["--quick"] if quick else [], "pool", 2.0)


def _rows_from_results(script: str, args: list[str], stage: str) -> list[Row]:
    """One row per ``RESULT {json}`` line of a benchmark that measures several things."""
    out, error = _run(script, args)
    results = [json.loads(line[len("RESULT "):]) for line in out.splitlines() if line.startswith("RESULT ")]
    if error or not results:
        return [Row(stage, error=error or "no RESULT line")]
    rows = []
    for data in results:
        row = Row(data["stage"], trialkit=data["trialkit"], baseline=data.get("baseline"),
                  target=data.get("target"), target_seconds=data.get("target_seconds"),
                  wall_ratio=data.get("wall_ratio"))
        if data.get("clock") == "cpu":
            row.stage += " — CPU"
        if "cpu" in data and data.get("baseline") is None:
            row.memory = f"CPU {data['cpu']:.0f} s (children included)"
        rows.append(row)
    return rows


def bench_writers(quick: bool) -> list[Row]:
    return _rows_from_results("bench_writers.py", ["--quick"] if quick else [], "pool writers")


def bench_interactive(quick: bool) -> list[Row]:
    return _rows_from_results("bench_interactive.py", ["--quick"] if quick else [], "demo, validate, incremental pool")


def bench_startup(quick: bool) -> Row:
    return _from_result_line("bench_startup.py", ["--quick"] if quick else [], "start-up", 2.0)


def table(rows: list[Row]) -> str:
    header = ["stage", "trialkit", "baseline", "ratio", "target", "met?", "peak RSS (trialkit / baseline)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def floor_table(floors: list[dict]) -> str:
    """The floors: each one's cost, its baseline, the ratio, the target and whether the target leaves room."""
    header = ["floor (what no implementation keeping the guarantees avoids)", "cost", "baseline", "ratio", "target",
              "target reachable?"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    for floor in floors:
        unit = floor.get("unit", "s")
        ratio = floor["trialkit"] / floor["baseline"]

        def show(value: float, unit: str = unit) -> str:
            return f"{value:.0f} MB" if unit == "MB" else _seconds(value)

        cost = show(floor["trialkit"]) + (" CPU" if "wall_ratio" in floor else "")
        reachable = "yes" if ratio <= floor["target"] else "**no**: the floor alone is over it"
        cells = [floor["stage"], cost, show(floor["baseline"]), f"{ratio:.2f}×", f"≤ {floor['target']:g}×", reachable]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs (about a minute in all)")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md", help="Markdown file to write")
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    print(f"running the benchmarks ({mode} mode)", file=sys.stderr)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    rows: list[Row] = []
    for bench in (bench_import, bench_validate, bench_pool, bench_writers, bench_interactive, bench_startup):
        got = bench(args.quick)
        rows.extend(got if isinstance(got, list) else [got])
    elapsed = time.perf_counter() - started
    markdown = table(rows)
    if FLOORS:
        markdown += ("\n\nFloors, measured in the same run (the benchmarks print them as `FLOOR` lines): the part "
                     "of a measurement that any implementation keeping trialkit's guarantees and parts pays, "
                     "against the same baseline and target.\n\n" + floor_table(FLOORS))
    print(markdown)
    from trialkit import __version__

    text = "\n".join([
        "# Benchmark results",
        "",
        f"Produced by `python benchmarks/run_all.py{' --quick' if args.quick else ''}` ({mode} mode, "
        f"{elapsed:.0f} s) on {datetime.now(UTC):%Y-%m-%d}: trialkit {__version__}, Python "
        f"{platform.python_version()}, {platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores. "
        f"Load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end (other work on the "
        "machine slows both sides, not always equally: rerun before trusting a ratio near its target). "
        "Each ratio is trialkit's time over a baseline measured in the same run; times are wall-clock "
        "except where a row says CPU (user + system of the whole process, median of paired runs, with "
        "the wall ratio beside it).",
        "",
        markdown,
        "",
    ])
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    return 1 if any(row.error for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
