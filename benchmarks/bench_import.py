"""Benchmark: trialkit's import of a 100,000-row × 20-column upload sheet vs python-calamine's bare read.

Run from the repository root::

    /work/venv/bin/python benchmarks/bench_import.py [--rows 100000] [--keep DIR]

It writes one CHAQ upload sheet (20 columns: SITEID, SUBJID, VISIT, QSDAT, QSVER and 15 CHAQ items,
with text dates in the site's order, codelist synonyms and ND codes sprinkled in) with openpyxl in
write-only mode, then times in the same run:

1. ``CalamineWorkbook.from_path(p).get_sheet_by_name("CHAQ").to_python()`` (the bare read);
2. ``trialkit.importers.reader.import_files([p], study, site="01")`` — detection, the error-cell
   scan, the read, header matching, type conversion, normalisation log and lineage.

It prints both times, the ratio (target ≤ 1.5×) and the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep the workbook in")
    args = parser.parse_args()
    from python_calamine import CalamineWorkbook

    from trialkit.importers.reader import import_files
    from trialkit.study import load_study

    study = load_study()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        path = folder / "bench-chaq-upload.xlsx"
        if not path.exists():
            started = time.perf_counter()
            build(path, args.rows)
            print(f"built {path.name}: {args.rows} rows x 20 columns in {time.perf_counter() - started:.1f} s",
                  file=sys.stderr)
        started = time.perf_counter()
        rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("CHAQ").to_python()
        bare = time.perf_counter() - started
        del rows
        started = time.perf_counter()
        result = import_files([path], study, site="01")
        ours = time.perf_counter() - started
        form = result.forms["CHAQ"]
        assert len(form.data) == args.rows, len(form.data)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"calamine bare read : {bare:.2f} s")
        print(f"trialkit import    : {ours:.2f} s  ({len(form.data)} records, {len(form.changes)} changes logged, "
              f"{len(result.report.findings)} findings)")
        print(f"ratio              : {ours / bare:.2f}x  (target <= 1.5x)")
        print(f"peak memory (RSS)  : {peak_mb:.0f} MB  (target < 1024 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
