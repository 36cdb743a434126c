"""Benchmark: trialkit's import of a 100,000-row × 20-column upload sheet vs python-calamine's bare read.

Run from the repository root::

    /work/venv/bin/python benchmarks/bench_import.py [--rows 100000] [--repeat 3] [--keep DIR]

It writes one CHAQ upload sheet (20 columns: SITEID, SUBJID, VISIT, QSDAT, QSVER and 15 CHAQ items,
with text dates in the site's order, codelist synonyms and ND codes sprinkled in) with openpyxl in
write-only mode, then times, each in a fresh subprocess and alternating the two sides ``--repeat``
times:

1. ``calamine``: ``CalamineWorkbook.from_path(p).get_sheet_by_name("CHAQ").to_python()`` — the bare
   read, exactly one ``to_python()`` call;
2. ``trialkit``: ``trialkit.importers.reader.import_files([p], study, site="01")`` — detection, the
   package checks and error-cell scan, the read, header matching, type conversion, normalisation log
   and lineage.

Imports (and loading the study definition) happen before the clock starts in both children. Each
child reports its wall time and its peak resident memory (``VmHWM``, which includes the
interpreter and the imported libraries; not ``ru_maxrss``, which a child inherits from this
process). The table gives best and median per side, the ratio of the medians (the target: ≤ 1.3×,
issue 18) and of the bests, and the peak memory (target < 1 GB). The machine's load average is
printed too: on a busy machine both sides slow down, but not equally, so rerun before trusting a
ratio.

Two ``FLOOR {json}`` lines say what any import that keeps trialkit's guarantees costs at least,
against the same targets: calamine's read plus trialkit's safety scan of the sheet XML (timed apart
in the trialkit child), and the peak memory of trialkit's imports and study before the read plus
calamine's own growth for the sheet.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 1.3
TARGET_MB = 1024


def build(path: Path, rows: int) -> None:
    """Write the upload sheet once (openpyxl write-only mode)."""
    from openpyxl import Workbook

    from trialkit.study import load_study

    study = load_study()
    items = [v.name for v in study.forms["CHAQ"].variables if v.type == "int"][:15]
    header = ["SITEID", "SUBJID", "VISIT", "QSDAT", "QSVER", *items]
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("CHAQ")
    sheet.append(header)
    visits = ["SCR", "D1", "W1", "W2", "W4", "screening"]
    for i in range(rows):
        day = 1 + i % 28
        month = 1 + i % 12
        values = [(i + j) % 4 for j in range(15)]
        if i % 97 == 0:
            values[3] = "ND"
        sheet.append(["01", f"01-{i % 1000:03d}", visits[i % len(visits)], f"{day:02d}/{month:02d}/2024",
                      "CHAQ" if i % 5 else "chaq", *values])
    workbook.save(path)


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB: ``VmHWM`` on Linux (``ru_maxrss`` keeps the parent's
    peak across fork and exec, so a child of a large parent would report the parent's)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(side: str, path: Path, rows: int) -> int:
    """Time one side once in this process; print a JSON line with seconds, peak RSS and facts."""
    facts: dict[str, object] = {}
    if side == "calamine":
        from python_calamine import CalamineWorkbook

        facts["start_mb"] = peak_rss_mb()
        started = time.perf_counter()
        cells = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("CHAQ").to_python()
        seconds = time.perf_counter() - started
        facts["rows"] = len(cells) - 1
    else:
        from trialkit.importers.reader import import_files
        from trialkit.study import load_study

        study = load_study()
        facts["start_mb"] = peak_rss_mb()
        started = time.perf_counter()
        result = import_files([path], study, site="01")
        seconds = time.perf_counter() - started
        from trialkit.importers.excel import _scan_ooxml

        scan_started = time.perf_counter()  # the safety scan alone, again (part of the import above)
        _scan_ooxml(path, None, {}, {})
        facts["scan_seconds"] = time.perf_counter() - scan_started
        form = result.forms["CHAQ"]
        if len(form.data) != rows:
            raise SystemExit(f"trialkit imported {len(form.data)} records, expected {rows}")
        facts.update(rows=len(form.data), changes=len(form.changes), findings=len(result.report.findings))
    peak_mb = peak_rss_mb()
    print(json.dumps({"side": side, "seconds": seconds, "peak_mb": peak_mb, **facts}))
    return 0


def run_child(side: str, path: Path, rows: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", side, "--rows", str(rows), "--path", str(path)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="data rows in the sheet (default 100000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per side, alternating (default 3)")
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep (and reuse) the workbook in")
    parser.add_argument("--child", choices=["calamine", "trialkit"], help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.path, args.rows)

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        path = folder / f"bench-chaq-upload-{args.rows}.xlsx"
        if not path.exists():
            started = time.perf_counter()
            build(path, args.rows)
            print(f"built {path.name}: {args.rows} rows x 20 columns in {time.perf_counter() - started:.1f} s",
                  file=sys.stderr)
        path.read_bytes()  # both sides read from the page cache
        runs: dict[str, list[dict]] = {"calamine": [], "trialkit": []}
        for i in range(args.repeat):
            order = ("calamine", "trialkit") if i % 2 == 0 else ("trialkit", "calamine")
            for side in order:
                runs[side].append(run_child(side, path, args.rows))
                print(f"  run {i + 1} {side:8s} {runs[side][-1]['seconds']:.2f} s", file=sys.stderr)

    def times(side: str) -> list[float]:
        return [r["seconds"] for r in runs[side]]

    best = {side: min(times(side)) for side in runs}
    median = {side: statistics.median(times(side)) for side in runs}
    peak = {side: max(r["peak_mb"] for r in runs[side]) for side in runs}
    facts = runs["trialkit"][-1]
    ratio_median = median["trialkit"] / median["calamine"]
    ratio_best = best["trialkit"] / best["calamine"]
    print(f"{args.rows} rows x 20 columns, {args.repeat} alternating runs per side, each in a fresh process; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"trialkit: {facts['rows']} records, {facts['changes']} changes logged, {facts['findings']} findings")
    print(f"{'side':<10}{'best s':>9}{'median s':>10}{'peak RSS MB':>13}")
    for side in ("calamine", "trialkit"):
        print(f"{side:<10}{best[side]:>9.2f}{median[side]:>10.2f}{peak[side]:>13.0f}")
    # What no import can skip, against the same targets: calamine's read plus the safety scan of the
    # sheet XML (error cells, far cells), and the memory of trialkit's imports (pandas, pyarrow,
    # pandera, the study) plus what calamine itself takes for the sheet.
    start = {side: statistics.median(r["start_mb"] for r in runs[side]) for side in runs}
    scan = statistics.median(r["scan_seconds"] for r in runs["trialkit"])
    floors = [
        {"stage": "import: calamine's read + trialkit's safety scan of the sheet XML alone (error cells, far "
                  "cells; measured apart)", "trialkit": median["calamine"] + scan, "baseline": median["calamine"],
         "target": TARGET_RATIO},
        {"stage": "import, peak RSS: trialkit's imports and study before the read + calamine's own growth for "
                  "the sheet", "trialkit": start["trialkit"] + peak["calamine"] - start["calamine"],
         "baseline": peak["calamine"], "target": 1.5, "unit": "MB"},
    ]
    for floor in floors:
        print("FLOOR " + json.dumps(floor))
    verdict = "met" if ratio_median <= TARGET_RATIO else "NOT met"
    print(f"ratio of medians {ratio_median:.2f}x, of bests {ratio_best:.2f}x (target <= {TARGET_RATIO}x: {verdict}); "
          f"trialkit peak {peak['trialkit']:.0f} MB (target < {TARGET_MB} MB: "
          f"{'met' if peak['trialkit'] < TARGET_MB else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
