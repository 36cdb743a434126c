"""Benchmark: trialkit's pooled-dataset writers against the plain writers on the same frame, per format.

Run from the repository root::

    python benchmarks/bench_writers.py [--quick] [--rows N] [--sites 50]

The frame is the stacked FEVER diary of ``--sites`` sites (built as in ``bench_pool.py``; 1,000,000
rows by default, 200,000 with ``--quick``). For each format, in one process, alternating sides
(best of 2 each):

==========  ===========================================================================
format      plain writer (baseline)
==========  ===========================================================================
parquet     ``frame.to_parquet`` (pyarrow)
csv         ``frame.to_csv(index=False)``
xpt         ``pyreadstat.write_xport`` (text columns as object)
sav         ``pyreadstat.write_sav``
dta         ``pyreadstat.write_dta``
datasetjson ``frame.to_json(orient="values", date_format="iso")`` (no plain Dataset-JSON writer exists)
==========  ===========================================================================

trialkit: :func:`trialkit.export.make_dataset` with the study's labels and
:func:`trialkit.export.write_output_set` with that one format — checks, typed columns, labels and
value labels, codebooks, ``manifest.json`` with every sha256 and the atomic folder swap. Target ≤ 1.3×.
Prints a table and one ``RESULT {json}`` line per format.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pool import build  # noqa: E402

TARGET = 1.3
FORMATS = ("parquet", "csv", "xpt", "sav", "dta", "datasetjson")


def plain(frame: pd.DataFrame, readstat_frame: pd.DataFrame, fmt: str, folder: Path) -> None:
    import pyreadstat

    if fmt == "parquet":
        frame.to_parquet(folder / "fever.parquet")
    elif fmt == "csv":
        frame.to_csv(folder / "fever.csv", index=False)
    elif fmt == "xpt":
        pyreadstat.write_xport(readstat_frame, str(folder / "fever.xpt"), table_name="FEVER", file_format_version=5)
    elif fmt == "sav":
        pyreadstat.write_sav(readstat_frame, str(folder / "fever.sav"))
    elif fmt == "dta":
        pyreadstat.write_dta(readstat_frame, str(folder / "fever.dta"))
    else:
        (folder / "fever.json").write_text(frame.to_json(orient="values", date_format="iso"), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200,000 rows instead of 1,000,000")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--formats", default=",".join(FORMATS))
    args = parser.parse_args()
    rows = args.rows or (200_000 if args.quick else 1_000_000)

    from trialkit.export import make_dataset, write_output_set
    from trialkit.pool import form_labels, form_value_labels
    from trialkit.study import load_study

    study = load_study()
    frame = pd.concat(list(build(rows, args.sites).values()), ignore_index=True)
    readstat_frame = frame.astype({c: object for c in frame.columns if frame[c].dtype == "str"})
    scratch = Path(tempfile.mkdtemp(prefix="trialkit-writers-"))
    results = []
    try:
        for fmt in args.formats.split(","):
            ours, base = [], []
            for attempt in range(2):
                folder = scratch / f"plain-{fmt}-{attempt}"
                folder.mkdir()
                started = time.perf_counter()
                plain(frame, readstat_frame, fmt, folder)
                base.append(time.perf_counter() - started)
                started = time.perf_counter()
                dataset = make_dataset(frame, labels=form_labels(study, "FEVER", frame.columns),
                                       value_labels=form_value_labels(study, "FEVER", frame.columns),
                                       dataset_label=study.form("FEVER").export_label)
                write_output_set({"fever": dataset}, scratch / f"trialkit-{fmt}-{attempt}", [fmt])
                ours.append(time.perf_counter() - started)
                shutil.rmtree(folder)
                shutil.rmtree(scratch / f"trialkit-{fmt}-{attempt}")
            results.append({"stage": f"pool writer {fmt}: {args.sites} sites, {rows:,}-row diary vs plain writer",
                            "trialkit": min(ours), "baseline": min(base), "target": TARGET,
                            "ratio": min(ours) / min(base)})
            item = results[-1]
            print(f"{fmt:<12} trialkit {item['trialkit']:7.2f} s  plain {item['baseline']:7.2f} s  "
                  f"{item['ratio']:5.2f}x (target <= {TARGET:g}x) {'met' if item['ratio'] <= TARGET else 'NOT MET'}",
                  file=sys.stderr)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for item in results:
        print("RESULT " + json.dumps(item))
    return 0


if __name__ == "__main__":
    sys.exit(main())
