"""Benchmark: pooling 50 sites' FEVER diaries (10,000,000 rows in total) vs a plain pandas concat + Parquet write.

Run from the repository root::

    /work/venv/bin/python benchmarks/bench_pool.py [--quick] [--rows N] [--sites 50]

The typed per-site frames are generated directly (as the importers return them: pandas ``str``
columns, ``datetime64[ns]`` dates, float temperatures; 1,000 diary days per subject), because the
stage measured is pooling — stacking, typing and writing — not importing. Each side runs in its own
subprocess, so each one's peak resident memory is its own:

1. baseline: ``pd.concat(frames, ignore_index=True).to_parquet(path)`` (pyarrow, its defaults);
2. trialkit: :func:`trialkit.pool.stack_forms`, :func:`trialkit.export.make_dataset` with the
   study's labels and value labels, and :func:`trialkit.export.write_output_set` with
   ``["parquet"]`` — fixed row groups, zstd, typed columns, labels in the schema, the codebooks
   (xlsx, md), the sha256 of every file in ``manifest.json`` and the staging-folder swap.

A third subprocess only builds the frames, so the table shows how much of each peak is the input.
It prints both times, the ratio (target ≤ 2×), the peak RSS of each side and the size of the
Parquet written (trialkit: zstd, fixed 65,536-row groups, dictionaries and statistics, for
byte-identical rebuilds; pandas: its snappy defaults). ``--quick`` pools 1,000,000 rows.
Generation is never timed.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

DAYS = 1000  # diary days per subject
ROUTES = np.array(["AXILLARY", "ORAL", "TYMPANIC", "RECTAL"], dtype=object)
TARGET = 2.0


def build_site(site: str, rows: int, seed: int) -> pd.DataFrame:
    """One site's typed FEVER records (``rows`` of them), as the importer types them."""
    rng = np.random.default_rng(seed)
    subjects = max(1, -(-rows // DAYS))
    subject_ids = np.array([f"{site}-{s:03d}" for s in range(1, subjects + 1)], dtype=object)
    subject_of_row = np.repeat(np.arange(subjects), DAYS)[:rows]
    day_of_row = np.tile(np.arange(DAYS), subjects)[:rows]
    temps = np.round(rng.normal(37.2, 0.6, rows), 1).clip(35.0, 41.0)
    temps[rng.random(rows) < 0.01] = np.nan
    dates = pd.DatetimeIndex(pd.Timestamp("2021-01-01") + pd.to_timedelta(day_of_row, unit="D")).as_unit("ns")
    return pd.DataFrame({
        "SITEID": pd.array(np.full(rows, site, dtype=object), dtype="str"),
        "SUBJID": pd.array(subject_ids[subject_of_row], dtype="str"),
        "FVDAT": dates,
        "FVTEMP": temps,
        "FVTEMPU": pd.array(np.full(rows, "C", dtype=object), dtype="str"),
        "FVROUTE": pd.array(ROUTES[rng.integers(0, 4, rows)], dtype="str"),
        "FVANTIP": pd.array(np.where(temps >= 38.0, "Y", "N").astype(object), dtype="str"),
    })


def build(rows: int, sites: int) -> dict[str, pd.DataFrame]:
    """``sites`` frames (site ids 01, 02, …) holding ``rows`` records between them."""
    per_site, extra = divmod(rows, sites)
    return {f"{i:02d}": build_site(f"{i:02d}", per_site + (1 if i <= extra else 0), seed=i)
            for i in range(1, sites + 1)}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def run_side(side: str, rows: int, sites: int, out: Path) -> dict[str, float]:
    """Build the frames, then time one side's pooling; returns seconds and peak RSS (MB)."""
    frames = build(rows, sites)
    if side == "trialkit":  # imports and the study definition are loaded before the clock starts
        from trialkit.export import make_dataset, write_output_set
        from trialkit.importers.base import FormData
        from trialkit.pool import form_labels, form_value_labels, stack_forms
        from trialkit.study import load_study

        study = load_study()
    inputs_mb = peak_mb()
    started = time.perf_counter()
    if side == "baseline":
        pooled = pd.concat(list(frames.values()), ignore_index=True)
        pooled.to_parquet(out / "fever.parquet")
        n = len(pooled)
    elif side == "trialkit":
        empty = pd.DataFrame()
        per_site = {site: {"FEVER": FormData("FEVER", frame, empty, empty, empty)} for site, frame in frames.items()}
        forms = stack_forms(per_site)
        frame = forms["FEVER"]
        dataset = make_dataset(frame, labels=form_labels(study, "FEVER", frame.columns),
                               value_labels=form_value_labels(study, "FEVER", frame.columns),
                               dataset_label=study.form("FEVER").export_label)
        manifest = write_output_set({"fever": dataset}, out / "pooled", ["parquet"])
        n = manifest["datasets"]["fever"]["rows"]
    else:  # inputs only
        n = sum(len(f) for f in frames.values())
    seconds = time.perf_counter() - started
    assert n == rows, (n, rows)
    written = sum(p.stat().st_size for p in out.rglob("*.parquet"))
    return {"seconds": seconds, "peak_mb": peak_mb(), "inputs_mb": inputs_mb, "rows": n, "parquet_mb": written / 2**20}


def measure(side: str, rows: int, sites: int) -> dict[str, float]:
    """Run one side in a fresh interpreter (so peak RSS is that side's alone)."""
    with tempfile.TemporaryDirectory(prefix=f"bench-pool-{side}-") as scratch:
        done = subprocess.run(
            [sys.executable, __file__, "--side", side, "--rows", str(rows), "--sites", str(sites), "--out", scratch],
            capture_output=True, text=True, check=False,
        )
    if done.returncode != 0:
        raise SystemExit(f"the {side} side failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000,000 rows instead of 10,000,000")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--side", choices=["baseline", "trialkit", "inputs"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    rows = args.rows or (1_000_000 if args.quick else 10_000_000)
    if args.side:
        print(json.dumps(run_side(args.side, rows, args.sites, args.out)))
        return 0
    print(f"pooling {args.sites} sites, {rows:,} FEVER diary rows in total", file=sys.stderr)
    inputs = measure("inputs", rows, args.sites)
    base = measure("baseline", rows, args.sites)
    ours = measure("trialkit", rows, args.sites)
    ratio = ours["seconds"] / base["seconds"]
    print(f"{'side':<44} {'seconds':>8} {'peak RSS':>10} {'Parquet':>9}")
    print(f"{'frames only (input of both sides)':<44} {'':>8} {inputs['peak_mb']:>7.0f} MB")
    for name, side in (("baseline: pd.concat + to_parquet", base), ("trialkit: stack_forms + write_output_set", ours)):
        print(f"{name:<44} {side['seconds']:>8.2f} {side['peak_mb']:>7.0f} MB {side['parquet_mb']:>6.1f} MB")
    print(f"ratio: {ratio:.2f}x (target <= {TARGET:g}x); peak RSS "
          f"{ours['peak_mb'] / base['peak_mb']:.2f}x the baseline's")
    print("RESULT " + json.dumps({"stage": f"pool {args.sites} sites, {rows:,}-row diary", "trialkit": ours["seconds"],
                                  "baseline": base["seconds"], "ratio": ratio, "target": TARGET,
                                  "trialkit_peak_mb": ours["peak_mb"], "baseline_peak_mb": base["peak_mb"],
                                  "inputs_peak_mb": inputs["peak_mb"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
