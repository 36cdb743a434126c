"""What a data manager waits for: the demo, validating a site upload, and pooling after one new upload.

Run from the repository root::

    python benchmarks/bench_interactive.py [--quick] [--pairs N] [--keep DIR]

1. ``trialkit demo DIR`` once, whole process: its wall time against the 60 s target (and its CPU,
   children included).
2. ``trialkit validate uploads/site01/site01_v1.xlsx --site 01 -f json`` (the demo's first site
   upload: a filled template of every form) against the *floor*: a script that imports pandas,
   pandera and python-calamine and reads every sheet of the same workbook into DataFrames. Both are
   whole processes, run in N pairs (alternating, so that load hits both sides alike); the medians of
   CPU (user + system of the child) and of wall time are compared. Target ≤ 1.5×.
3. Incremental pool: one site sends a new upload (its current workbook saved again, so its files
   and sha256 differ), then ``trialkit pool`` (the re-import cache holds every other site) against
   ``trialkit pool --no-cache`` (every site re-imported) of the same workspace, N pairs, CPU and
   wall medians. Target ≤ 0.3×. The two outputs must be byte-identical (else the benchmark fails).

Two more children give the *floors* of the last two targets, printed as ``FLOOR {json}`` lines with
the same targets: for validate, the floor script plus loading the study and running each form's
pandera schema on the forms trialkit imported from the upload (pickled beforehand: no normalisation,
no rules); for the incremental pool, start-up plus deriving the one site's analysis datasets plus
writing every dataset (what a pool would still do if every other site's re-import and derivation
were cached and free).

Every child runs as a user's Python does, with bytecode caching on (``PYTHONDONTWRITEBYTECODE`` is
removed from the children's environment: an editable install would otherwise compile trialkit's
and the study's modules from source in every process, about 0.1 s that an installed package never
pays), and the validate pairs start after one unmeasured run of each side.

Prints a table and one ``RESULT {json}`` line per measurement for ``run_all.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VALIDATE_TARGET = 1.5
INCREMENTAL_TARGET = 0.3
DEMO_TARGET_SECONDS = 60.0
POOL_FORMATS = "parquet,csv,xpt"

FLOOR = """
import sys
import pandas as pd
import pandera  # noqa: F401
from python_calamine import CalamineWorkbook

book = CalamineWorkbook.from_path(sys.argv[1])
frames = {name: pd.DataFrame(book.get_sheet_by_name(name).to_python()) for name in book.sheet_names}
print(sum(len(f) for f in frames.values()))
"""


#: The validate floor that keeps pandera: the floor's read, then loading the study and running each
#: form's pandera schema (lazy) on the forms trialkit imported from the same upload (pickled by the
#: benchmark) — no normalisation, no rules, no findings.
PANDERA_FLOOR = FLOOR + """
import pickle
import pandera.pandas as pa
from trialkit.study import load_study

study = load_study()
with open(sys.argv[2], "rb") as handle:
    forms = pickle.load(handle)
for code, frame in forms.items():
    schema = study.form(code).schema
    schema = schema.remove_columns([c for c in schema.columns if c not in frame.columns])
    try:
        schema.validate(frame.set_axis(pd.RangeIndex(len(frame))), lazy=True)
    except pa.errors.SchemaErrors:
        pass
"""

#: The incremental pool's floor: what a pool would still do with every other site's re-import AND
#: analysis derivation cached — start-up, deriving the one site's analysis datasets (with the
#: study-wide cut), writing every dataset (the arguments trialkit's own pool passed, pickled).
POOL_FLOOR = """
import pickle
import sys
from trialkit.export import write_output_set
from trialkit.study import load_study
from trialkit.study.plugins import derive_datasets

study = load_study()
with open(sys.argv[1], "rb") as handle:
    job = pickle.load(handle)
derive_datasets(study, job["site_forms"], deviations=job["deviations"], data_cut=job["cut"])
write_output_set(job["datasets"], sys.argv[2], job["formats"], **job["options"])
"""

#: The children's environment: bytecode caching on, as in a user's shell.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(command: list[str], *, ok: tuple[int, ...] = (0,)) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one whole child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False,
                          env=CHILD_ENV)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(command)} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def trialkit(*args: str) -> list[str]:
    return [sys.executable, "-m", "trialkit", *args]


def tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def medians(pairs: list[tuple[tuple[float, float], tuple[float, float]]]) -> dict[str, float]:
    ours = [p[0] for p in pairs]
    base = [p[1] for p in pairs]
    return {"wall": statistics.median(w for w, _ in ours), "cpu": statistics.median(c for _, c in ours),
            "base_wall": statistics.median(w for w, _ in base), "base_cpu": statistics.median(c for _, c in base)}


def result(stage: str, m: dict[str, float], target: float) -> dict[str, object]:
    return {"stage": stage, "trialkit": m["cpu"], "baseline": m["base_cpu"], "target": target,
            "wall": m["wall"], "baseline_wall": m["base_wall"],
            "wall_ratio": m["wall"] / m["base_wall"], "ratio": m["cpu"] / m["base_cpu"], "clock": "cpu"}


def imported_forms(upload: Path, path: Path) -> None:
    """Pickle the typed forms trialkit imports from ``upload`` (for the pandera floor)."""
    from trialkit.importers.reader import import_files
    from trialkit.study import load_study

    result = import_files([upload], load_study(), site="01")
    with open(path, "wb") as handle:
        pickle.dump({code: form.data for code, form in result.forms.items()}, handle)


def pool_job(workspace: Path, site: str, out: Path, path: Path) -> None:
    """Pool once in this process, keeping what the incremental pool's floor needs: the arguments of
    the write, and ``site``'s forms with the deviations and the study-wide cut the derivation used."""
    import trialkit.export
    import trialkit.pool
    from trialkit.ledger import open_workspace
    from trialkit.study import load_study

    seen: dict[str, object] = {}
    real_write, real_stack = trialkit.export.write_output_set, trialkit.pool.stack_forms

    def write(datasets, directory, formats, **options):
        seen.update(datasets=datasets, formats=formats, options=options)
        return real_write(datasets, directory, formats, **options)

    def stack(per_site):
        seen["site_forms"] = real_stack({site: per_site[site]})
        return real_stack(per_site)

    trialkit.export.write_output_set, trialkit.pool.stack_forms = write, stack
    try:
        study = load_study()
        space = open_workspace(workspace)
        trialkit.pool.pool(space, study, out, formats=POOL_FORMATS.split(","))
        from trialkit.deviationlog import log_frame

        forms = real_stack(trialkit.pool.assemble(space, study, space.current_forms(), cache=True)[0])
        analysis = study.plugin("analysis")
        cut = space.data_cut_date() or analysis.effective_data_cut(analysis.apply_data_cut(forms, None), None)
        seen.update(deviations=log_frame(space.deviation_log()), cut=cut)
    finally:
        trialkit.export.write_output_set, trialkit.pool.stack_forms = real_write, real_stack
    with open(path, "wb") as handle:
        pickle.dump(seen, handle)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 pairs instead of 5")
    parser.add_argument("--pairs", type=int, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="run the demo here and keep it")
    args = parser.parse_args()
    pairs = args.pairs or (3 if args.quick else 5)
    scratch = Path(tempfile.mkdtemp(prefix="trialkit-bench-"))
    folder = args.keep or scratch / "demo"
    results, floors = [], []
    try:
        print(f"trialkit demo {folder}", file=sys.stderr)
        wall, cpu = timed(trialkit("demo", str(folder), "-q"))
        results.append({"stage": "demo (whole process, wall)", "trialkit": wall, "baseline": None,
                        "target_seconds": DEMO_TARGET_SECONDS, "cpu": cpu, "clock": "wall"})

        upload = folder / "uploads" / "site01" / "site01_v1.xlsx"
        floor = scratch / "floor.py"
        floor.write_text(FLOOR, encoding="utf-8")
        pandera_floor = scratch / "pandera_floor.py"
        pandera_floor.write_text(PANDERA_FLOOR, encoding="utf-8")
        imported_forms(upload, scratch / "forms.pickle")
        measured, bounds = [], []
        timed(trialkit("validate", str(upload), "--site", "01", "-f", "json"), ok=(0, 1))  # warm-up, not measured
        timed([sys.executable, str(floor), str(upload)])
        timed([sys.executable, str(pandera_floor), str(upload), str(scratch / "forms.pickle")])
        for _ in range(pairs):
            ours = timed(trialkit("validate", str(upload), "--site", "01", "-f", "json"), ok=(0, 1))
            base = timed([sys.executable, str(floor), str(upload)])
            bound = timed([sys.executable, str(pandera_floor), str(upload), str(scratch / "forms.pickle")])
            measured.append((ours, base))
            bounds.append((bound, base))
        results.append(result(f"validate {upload.name} --site 01 -f json vs read-every-sheet floor (whole "
                              f"process, medians of {pairs})", medians(measured), VALIDATE_TARGET))
        floors.append(result("validate: the read-every-sheet floor + loading the study + pandera on the "
                             "forms trialkit imported (no normalisation, no rules)", medians(bounds),
                             VALIDATE_TARGET))

        workspace = folder / "workspace"
        current = sorted((folder / "uploads" / "site02").glob("*.xlsx"))[-1]
        measured, bounds = [], []
        for number in range(pairs):
            # one site sends a new upload: the same records in a file saved again (new sha256)
            from openpyxl import load_workbook

            book = load_workbook(current)
            book.properties.title = f"resent {number}"
            again = scratch / f"site02_resent_{number}.xlsx"
            book.save(again)
            timed(trialkit("submit", str(again), "--site", "02", "--workspace", str(workspace),
                           "--accept-warnings", "-q"))
            ours = timed(trialkit("pool", "--workspace", str(workspace), "-o", str(scratch / "inc"),
                                  "-f", POOL_FORMATS, "-q"))
            base = timed(trialkit("pool", "--workspace", str(workspace), "-o", str(scratch / "full"),
                                  "-f", POOL_FORMATS, "--no-cache", "-q"))
            if tree(scratch / "inc") != tree(scratch / "full"):
                raise SystemExit("the incremental pool differs from the full pool")
            if number == 0:
                pool_job(workspace, "02", scratch / "job-pool", scratch / "pool.pickle")
                pool_floor = scratch / "pool_floor.py"
                pool_floor.write_text(POOL_FLOOR, encoding="utf-8")
            bound = timed([sys.executable, str(pool_floor), str(scratch / "pool.pickle"), str(scratch / "floor")])
            measured.append((ours, base))
            bounds.append((bound, base))
        results.append(result(f"pool after one site's new upload vs full pool --no-cache (8-site demo, "
                              f"{POOL_FORMATS}, medians of {pairs})", medians(measured), INCREMENTAL_TARGET))
        floors.append(result("incremental pool: start-up + deriving the one site's analysis datasets + writing "
                             "every dataset (every other site's re-import and derivation taken as free)",
                             medians(bounds), INCREMENTAL_TARGET))
    finally:
        if args.keep is None:
            subprocess.run([sys.executable, "-c", "import sys; from trialkit.ledger import unlock_archive; "
                            "unlock_archive(sys.argv[1])", str(folder / "workspace")], check=False)
            shutil.rmtree(scratch, ignore_errors=True)

    print(f"{'measurement':<100} {'trialkit':>9} {'baseline':>9} {'ratio':>7} {'target':>7}")
    for item in results:
        if item["baseline"] is None:
            met = item["trialkit"] <= item["target_seconds"]
            print(f"{item['stage']:<100} {item['trialkit']:>8.1f}s {'':>9} {'':>7} {'≤ 60 s':>7} "
                  f"{'met' if met else 'NOT MET'} (CPU {item['cpu']:.1f} s)")
        else:
            met = item["ratio"] <= item["target"] and item["wall_ratio"] <= item["target"]
            print(f"{item['stage']:<100} {item['trialkit']:>8.2f}s {item['baseline']:>8.2f}s "
                  f"{item['ratio']:>6.2f}x {item['target']:>6g}x {'met' if met else 'NOT MET'} "
                  f"(wall {item['wall']:.2f} s / {item['baseline_wall']:.2f} s = {item['wall_ratio']:.2f}x)")
    for item in floors:
        print(f"floor: {item['stage']}: {item['trialkit']:.2f} s CPU / {item['baseline']:.2f} s = {item['ratio']:.2f}x "
              f"(wall {item['wall_ratio']:.2f}x; target {item['target']:g}x)")
    for item in results:
        print("RESULT " + json.dumps(item))
    for item in floors:
        print("FLOOR " + json.dumps(item))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
