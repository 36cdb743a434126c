"""Benchmark: trialkit's form validation of a 1,000,000-row FEVER diary against bare pandera.

Builds one FEVER FormData (1,000 subjects × 1,000 diary days) with 1 % bad cells — half an
out-of-range FVTEMP, half an FVROUTE outside its codelist — then, in the same run, times

1. a bare pandera lazy validation of the same frame (``FEVER.to_schema().validate(df, lazy=True)``
   catching ``SchemaErrors``), and
2. :func:`trialkit.validate.validate_form` to a finished list of ``Finding`` objects, sorted into a
   ``Report``,

and prints both times and their ratio (target ≤ 2×). The whole-upload :func:`trialkit.validate.validate`
(form checks plus every rule) is timed as well, for information.

Run: ``python benchmarks/bench_validate.py [ROWS]``.
"""

from __future__ import annotations

import datetime as dt
import sys
import time

import numpy as np
import pandas as pd
import pandera.pandas as pa

from trialkit.findings import Report
from trialkit.importers.base import FormData, ImportResult
from trialkit.study import load_study
from trialkit.validate import _sort_key, validate, validate_form

REPEAT = 3
ROUTES = np.array(["AXILLARY", "ORAL", "TYMPANIC", "RECTAL"], dtype=object)


def build_fever(rows: int, bad_share: float = 0.01, seed: int = 20240301) -> tuple[FormData, int]:
    """A FEVER FormData with ``rows`` records and ``bad_share`` of them carrying one bad cell."""
    rng = np.random.default_rng(seed)
    days = 1000
    subjects = max(1, rows // days)
    subject_ids = np.array([f"{1 + (s % 8):02d}-{s // 8:03d}" for s in range(subjects)], dtype=object)
    subject_of_row = np.repeat(np.arange(subjects), days)[:rows]
    day_of_row = np.tile(np.arange(days), subjects)[:rows]
    temps = np.round(rng.normal(37.2, 0.6, rows), 1).clip(35.0, 41.0)
    routes = ROUTES[rng.integers(0, 4, rows)].copy()
    bad = rng.choice(rows, size=int(rows * bad_share), replace=False)
    half = len(bad) // 2
    temps[bad[:half]] = 45.5  # out of range 34.0–43.0
    routes[bad[half:]] = "ARMPIT"  # not in codelist FVROUTE
    site_ids = np.array([s[:2] for s in subject_ids], dtype=object)[subject_of_row]
    dates = pd.Timestamp("2021-01-01") + pd.to_timedelta(day_of_row, unit="D")
    index = pd.RangeIndex(rows)
    data = pd.DataFrame(
        {
            "SITEID": pd.array(site_ids, dtype="str"),
            "SUBJID": pd.array(subject_ids[subject_of_row], dtype="str"),
            "FVDAT": pd.DatetimeIndex(dates).as_unit("us"),
            "FVTEMP": temps,
            "FVTEMPU": pd.array(np.full(rows, "C", dtype=object), dtype="str"),
            "FVROUTE": pd.array(routes, dtype="str"),
            "FVANTIP": pd.array(np.where(temps >= 38.0, "Y", "N").astype(object), dtype="str"),
        },
        index=index,
    )
    raw = pd.DataFrame(
        {
            "SITEID": data["SITEID"],
            "SUBJID": data["SUBJID"],
            "FVDAT": pd.Series(pd.DatetimeIndex(dates).strftime("%d/%m/%Y"), index=index, dtype="str"),
            "FVTEMP": pd.Series(np.char.replace(temps.astype(str), ".", ","), index=index, dtype="str"),
            "FVTEMPU": data["FVTEMPU"],
            "FVROUTE": data["FVROUTE"],
            "FVANTIP": data["FVANTIP"],
        },
        index=index,
    )
    reasons = pd.DataFrame({c: pd.Series(pd.NA, index=index, dtype="str") for c in data.columns})
    lineage = pd.DataFrame(
        {
            "FILE": "diary.xlsx",
            "SHA256": "0" * 64,
            "SHEET": "FEVER",
            "ROW": np.arange(2, rows + 2),
        },
        index=index,
    )
    return FormData("FEVER", data, raw, reasons, lineage), len(bad)


def main(rows: int = 1_000_000) -> None:
    study = load_study()
    form = study.form("FEVER")
    form_data, bad_cells = build_fever(rows)
    schema = form.model.to_schema()
    print(f"FEVER diary: {rows:,} rows, {bad_cells:,} bad cells")

    # warm-up (imports, regex compilation) on a small slice, so neither side pays it
    small = FormData("FEVER", *(getattr(form_data, a).iloc[:1000] for a in ("data", "raw", "reasons", "lineage")))
    validate_form(study, small)

    def bare_pandera() -> int:
        try:
            schema.validate(form_data.data, lazy=True)
        except pa.errors.SchemaErrors as exc:
            return len(exc.failure_cases)
        return 0

    def trialkit_report() -> Report:
        findings, runs = validate_form(study, form_data)
        findings.sort(key=_sort_key)
        return Report(findings=findings, checks=runs, study_id=study.id)

    # Alternate the two, REPEAT times each, and keep each one's best time (less noise, same run).
    bare_times, our_times = [], []
    for _ in range(REPEAT):
        start = time.perf_counter()
        failures = bare_pandera()
        bare_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        report = trialkit_report()
        our_times.append(time.perf_counter() - start)
    bare, ours = min(bare_times), min(our_times)
    print(f"bare pandera lazy validation : {bare:6.2f} s  ({failures:,} failure rows; "
          f"runs {', '.join(f'{t:.2f}' for t in bare_times)})")
    print(f"trialkit validate_form→Report: {ours:6.2f} s  ({len(report.findings):,} findings; "
          f"runs {', '.join(f'{t:.2f}' for t in our_times)})")
    print(f"ratio (best of {REPEAT})            : {ours / bare:6.2f}× (target ≤ 2×)")

    start = time.perf_counter()
    full = validate(study, ImportResult(forms={"FEVER": form_data}), today=dt.date(2025, 1, 1))
    whole = time.perf_counter() - start
    print(f"(whole validate() with rules : {whole:6.2f} s, {len(full.findings):,} findings, "
          f"{whole / bare:.2f}× bare pandera)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
