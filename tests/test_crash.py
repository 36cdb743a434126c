"""Crash safety: ``trialkit submit`` and ``trialkit pool`` killed with SIGKILL at random points.

One module-scoped workspace holds two accepted sites (01 and 07) and a complete pooled output.
Each case starts the real CLI in a subprocess (``python -m trialkit ...``), kills it after a seeded
random delay between 0.05 s and a little more than the command's measured duration, and proves
what a power cut or an ``kill -9`` must leave behind:

- the ledger opens, ``PRAGMA integrity_check`` is ``ok`` and no foreign key dangles;
- the audit trail is intact: ``seq`` runs 1..N without a gap, every submission has exactly one
  ``submitted`` line and every ``submitted`` line names a recorded submission;
- the last complete state: sites 01 and 07 still have their accepted submissions as current, and
  every archived file of every recorded submission hashes to its sha256; a killed submit either
  recorded one complete submission (files, audit line, status, current pointer) or nothing;
- a killed pool leaves the previous pooled output complete — every file of its manifest present
  with the right sha256 and byte-identical to the reference build — and the next pool succeeds;
- ``trialkit verify`` finds nothing wrong after any kill (archive hashes, audit chain, statuses and
  per-form current-data pointers against the audit log);
- a killed ``--unblind`` pool leaves no arm anywhere in the workspace (its staging folder is beside
  its output, outside the workspace), and the next unblinded pool removes its leftovers.

The delays are seeded, so a failure names the seed that reproduces it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from trialkit.export import _recover
from trialkit.ledger import CURRENT_STATUSES, LEDGER_FILE, open_workspace
from trialkit.verify import verify

from .test_deviations import clean_subject
from .upload_builder import write_upload

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")

SUBMIT_SEEDS = list(range(5))
POOL_SEEDS = list(range(4))
UNBLIND_SEEDS = list(range(3))
POOL_FORMATS = "parquet,csv,xpt"
DATA_CUT = "2024-04-12"


# ------------------------------------------------------------------------------------------------
# Helpers shared with the concurrency and blinding tests


def cli_env() -> dict[str, str]:
    """The environment for a CLI subprocess: no workspace or study picked up from the caller."""
    env = {k: v for k, v in os.environ.items() if k not in ("TRIALKIT_WORKSPACE", "TRIALKIT_STUDY")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def cli(*args: str) -> list[str]:
    """The argv of ``trialkit ARGS`` run by this interpreter."""
    return [sys.executable, "-m", "trialkit", *args]


def run_cli(*args: str, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
    """Run ``trialkit ARGS`` to the end; assert its exit code when ``expect`` is given."""
    done = subprocess.run(cli(*args), capture_output=True, text=True, env=cli_env(), timeout=300)
    if expect is not None:
        assert done.returncode == expect, (args, done.stdout, done.stderr)
    return done


def site_upload(study: Any, folder: Path, site: str, *, number: int = 1, weight: float = 30,
                name: str | None = None) -> Path:
    """A valid upload of one clean subject ``SS-00n`` of ``site``; ``weight`` varies the bytes."""
    records = copy.deepcopy(clean_subject())
    records["RAND"][0]["RANDNO"] = f"R{site}{number:02d}"
    for row in records["VS"]:
        row["WEIGHT"] = weight
    path = folder / (name or f"site{site}-{number:03d}-{weight:g}.xlsx")
    return write_upload(study, path, records, site=site, subject=f"{site}-{number:03d}")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_hashes(folder: Path) -> dict[str, str]:
    return {p.name: sha256_of(p) for p in sorted(folder.iterdir()) if p.is_file()}


def assert_ledger_sound(ws_path: Path) -> dict[str, Any]:
    """Everything a crash must not break in the ledger and archive; returns a snapshot of it."""
    ws = open_workspace(ws_path)  # opens: schema version readable, no exception
    assert ws.integrity_check() == "ok"
    with sqlite3.connect(ws_path / LEDGER_FILE) as connection:
        assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
        files_per_submission = dict(connection.execute(
            "SELECT s.id, count(f.sha256) FROM submissions s "
            "LEFT JOIN submission_files f ON f.submission_id = s.id GROUP BY s.id"
        ).fetchall())
        orphan_current = connection.execute(
            "SELECT c.site FROM current_forms c LEFT JOIN submissions s ON s.id = c.submission_id "
            "WHERE s.id IS NULL OR s.site != c.site OR s.status NOT IN (?, ?)", CURRENT_STATUSES,
        ).fetchall()
    assert orphan_current == []
    audit = ws.audit()
    assert [a["seq"] for a in audit] == list(range(1, len(audit) + 1)), "audit sequence has a gap"
    assert audit[0]["action"] == "workspace-created"
    submitted = [a["submission_id"] for a in audit if a["action"] == "submitted"]
    log = ws.log()
    assert sorted(submitted) == [s["id"] for s in log], "a submission without its audit line (or vice versa)"
    current = ws.current_submissions()
    for entry in log:
        assert files_per_submission[entry["id"]] >= 1, f"submission {entry['id']} has no files"
        for item in entry["files"]:
            archived = ws_path / item["archive_path"]
            assert archived.is_file(), archived
            assert archived.stat().st_size == item["size"]
            assert sha256_of(archived) == item["sha256"], archived
    # The site's current data is its latest accepted submission: a half-done supersession is impossible.
    for site in {e["site"] for e in log}:
        accepted = [e["id"] for e in log if e["site"] == site and e["status"] in CURRENT_STATUSES]
        assert (current[site].id if site in current else None) == (max(accepted) if accepted else None)
    checked = verify(ws)
    assert checked.problems == [], checked.problems
    return {"submissions": [e["id"] for e in log], "audit": len(audit),
            "current": {site: sub.id for site, sub in current.items()}}


def assert_output_complete(folder: Path) -> dict[str, Any]:
    """A pooled output folder is whole: exactly the manifest's files, each with its sha256 and size."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    present = {p.name for p in folder.iterdir()}
    assert present == set(manifest["files"]) | {"manifest.json"}, sorted(present ^ set(manifest["files"]))
    for name, entry in manifest["files"].items():
        assert (folder / name).stat().st_size == entry["size"], name
        assert sha256_of(folder / name) == entry["sha256"], name
    return manifest


def kill_after(argv: list[str], delay: float) -> int | None:
    """Start ``argv``; SIGKILL it after ``delay`` seconds. Its exit code if it finished first, else None."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=cli_env())
    try:
        return process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        process.kill()  # SIGKILL on POSIX: no cleanup handler, no finally block runs
        process.wait()
        return None


def delays(seeds: list[int], typical: float, salt: int) -> dict[int, float]:
    """One delay per seed in [0.05 s, 1.1 × typical]; every third seed aims at the last 30 %, where
    the ledger transaction or the output swap happens."""
    chosen = {}
    for seed in seeds:
        rng = random.Random(salt * 1000 + seed)
        low = 0.7 * typical if seed % 3 == 2 else 0.05
        chosen[seed] = round(rng.uniform(low, 1.1 * typical), 3)
    return chosen


# ------------------------------------------------------------------------------------------------
# The workspace


@dataclass
class Scene:
    root: Path
    ws: Path
    baseline: dict[str, int]  # site -> accepted submission id prepared before any kill
    submit_seconds: float
    uploads: list[tuple[str, Path, bool]] = field(default_factory=list)  # (site, file, accept)
    pool_seconds: float = 0.0
    reference: dict[str, str] = field(default_factory=dict)
    unblind_seconds: float = 0.0


@pytest.fixture(scope="module")
def scene(tmp_path_factory, study) -> Scene:
    root = tmp_path_factory.mktemp("crash")
    ws = root / "ws"
    run_cli("init", str(ws), "-q")
    baseline, durations = {}, []
    for site in ("01", "07"):
        path = site_upload(study, root, site)
        started = time.perf_counter()
        done = run_cli("submit", str(path), "--site", site, "--workspace", str(ws), "--accept-warnings",
                       "--data-cut", DATA_CUT, "-f", "json", "-q")
        durations.append(time.perf_counter() - started)
        baseline[site] = json.loads(done.stdout)["id"]
    scene = Scene(root, ws, baseline, max(durations))
    # What the killed submits send: new data for site 02 (accepted: becomes current if it completes),
    # corrected data for site 01 without --accept-warnings (held: site 01's current must not move),
    # and the same bytes twice (the second is a duplicate if the first completed).
    site02: dict[int, Path] = {}
    for index in range(len(SUBMIT_SEEDS)):
        if index % 3 == 1:
            scene.uploads.append(("01", site_upload(study, root, "01", weight=31 + index), False))
        else:
            weight = 30 + index // 2
            if weight not in site02:  # the same Path, so the same bytes (openpyxl stamps the time)
                site02[weight] = site_upload(study, root, "02", weight=weight)
            scene.uploads.append(("02", site02[weight], True))
    return scene


def submit_args(scene: Scene, site: str, path: Path, accept: bool) -> list[str]:
    return ["submit", str(path), "--site", site, "--workspace", str(scene.ws), "--data-cut", DATA_CUT,
            "-q", *(["--accept-warnings"] if accept else [])]


@pytest.mark.parametrize("seed", SUBMIT_SEEDS)
def test_killed_submit_leaves_the_last_complete_state(scene, seed):
    site, path, accept = scene.uploads[seed]
    delay = delays(SUBMIT_SEEDS, scene.submit_seconds, salt=1)[seed]
    before = assert_ledger_sound(scene.ws)
    code = kill_after(cli(*submit_args(scene, site, path, accept)), delay)
    after = assert_ledger_sound(scene.ws)
    # The earlier accepted submissions are still current (site 01's new data is only ever held).
    for baseline_site, submission_id in scene.baseline.items():
        assert after["current"][baseline_site] == submission_id
    new = [i for i in after["submissions"] if i not in before["submissions"]]
    assert len(new) <= 1, f"seed {seed} (killed after {delay} s): {new}"
    if code is not None:  # it finished before the kill: recorded or recognised as a duplicate
        assert code in (0, 1), f"seed {seed}: exit code {code}"
    if new:
        recorded = open_workspace(scene.ws).submission(new[0])
        assert recorded.site == site and recorded.files
        assert recorded.status == ("accepted-with-warnings" if accept else "held")
        assert recorded.is_current == accept


def test_submit_after_the_kills_records_normally(scene, study):
    path = site_upload(study, scene.root, "02", weight=29)
    before = assert_ledger_sound(scene.ws)
    done = run_cli(*submit_args(scene, "02", path, True), "-f", "json")
    recorded = json.loads(done.stdout)
    after = assert_ledger_sound(scene.ws)
    assert recorded["current"] and after["current"]["02"] == recorded["id"]
    assert after["submissions"] == [*before["submissions"], recorded["id"]]
    assert after["current"]["01"] == scene.baseline["01"] and after["current"]["07"] == scene.baseline["07"]


# ------------------------------------------------------------------------------------------------
# Pool


def pool_args(scene: Scene) -> list[str]:
    return ["pool", "--workspace", str(scene.ws), "-o", str(scene.root / "pooled"), "-f", POOL_FORMATS, "-q"]


@pytest.fixture(scope="module")
def pooled(scene) -> Path:
    """The complete reference output, built once the ledger no longer changes."""
    out = scene.root / "pooled"
    started = time.perf_counter()
    run_cli(*pool_args(scene))
    scene.pool_seconds = time.perf_counter() - started
    assert_output_complete(out)
    scene.reference = tree_hashes(out)
    return out


@pytest.mark.parametrize("seed", POOL_SEEDS)
def test_killed_pool_leaves_the_previous_output_complete(scene, pooled, seed):
    delay = delays(POOL_SEEDS, scene.pool_seconds, salt=2)[seed]
    before = assert_ledger_sound(scene.ws)
    code = kill_after(cli(*pool_args(scene)), delay)
    assert code in (None, 0), f"seed {seed}: exit code {code}"
    if not pooled.exists():
        # Killed between the two renames of the swap: the next run restores the previous set first.
        _recover(pooled)
    manifest = assert_output_complete(pooled)
    assert manifest["unblinded"] is False
    # Same inputs, so whether the old set survived or the new one was swapped in, the bytes are equal.
    assert tree_hashes(pooled) == scene.reference, f"seed {seed} (killed after {delay} s)"
    after = assert_ledger_sound(scene.ws)
    assert after["submissions"] == before["submissions"] and after["current"] == before["current"]


def test_pool_after_the_kills_succeeds_and_rebuilds_identically(scene, pooled):
    # A run killed while deleting the set it replaced leaves that DIR.old-* behind; a good run
    # removes the set it replaces itself.
    left_before = set(scene.root.glob("pooled.old-*"))
    run_cli(*pool_args(scene))
    assert_output_complete(pooled)
    assert tree_hashes(pooled) == scene.reference
    assert set(scene.root.glob("pooled.old-*")) <= left_before
    assert [a["action"] for a in open_workspace(scene.ws).audit()][-1] == "pool"


def test_recovery_picks_a_complete_previous_set_after_two_crashes(scene, pooled, tmp_path):
    """Run B swapped its set in and died while deleting the one before (a half-deleted ``DIR.old-b``
    that still holds its manifest, newest mtime); run C renamed DIR away and died before moving its
    staging folder in. Recovery must bring back run B's complete set, not the half-deleted one."""
    out = tmp_path / "pooled"
    complete = tmp_path / "pooled.old-cccc"
    shutil.copytree(pooled, complete)
    partial = tmp_path / "pooled.old-bbbb"
    shutil.copytree(pooled, partial)
    for name in sorted(p.name for p in partial.iterdir() if p.suffix == ".parquet"):
        (partial / name).unlink()  # rmtree got this far
    stamp = time.time()
    os.utime(complete, (stamp - 60, stamp - 60))
    os.utime(partial, (stamp, stamp))
    _recover(out)
    assert_output_complete(out)
    assert tree_hashes(out) == scene.reference


# ------------------------------------------------------------------------------------------------
# Unblinded pool: the arm never stays inside the workspace


ARM_BYTES = (b"PLACEBO", b"ANAKINRA")


def unblind_args(scene: Scene) -> list[str]:
    return ["pool", "--workspace", str(scene.ws), "-o", str(scene.root / "unblinded"), "-f", "parquet,csv",
            "--unblind", str(scene.root / "randlist.csv"), "--operator", "unblinded.statistician", "-q"]


def arms_in(folder: Path) -> list[str]:
    """Files under ``folder`` whose bytes name an arm (the unblinded CSV holds them as plain text;
    the ledger and the archived uploads hold no arm) and staging folders of an output set. The
    workspace's copy of the study definition (``studies/``) declares the arms' codes, which assigns
    no subject to any, so it is left out."""
    definitions = folder / "studies"
    found = [str(p) for p in folder.rglob("*") if p.is_file() and definitions not in p.parents
             and any(a in p.read_bytes() for a in ARM_BYTES)]
    found += [str(p) for p in folder.rglob("*.tmp-*")]
    return found


@pytest.fixture(scope="module")
def unblinded(scene, pooled) -> Path:
    """A complete unblinded pool outside the workspace, with a list matching every randomisation."""
    sites = sorted(open_workspace(scene.ws).current_forms())
    arms = {"01": "ANAKINRA", "07": "PLACEBO"}
    (scene.root / "randlist.csv").write_text(
        "RANDNO,ARM\n" + "".join(f"R{site}01,{arms.get(site, 'PLACEBO')}\n" for site in sites))
    started = time.perf_counter()
    run_cli(*unblind_args(scene))
    scene.unblind_seconds = time.perf_counter() - started
    out = scene.root / "unblinded"
    assert json.loads((out / "manifest.json").read_text())["unblinded"] is True
    assert b"PLACEBO" in (out / "adsl.csv").read_bytes()  # positive control: the search sees the arm
    return out


@pytest.mark.parametrize("seed", UNBLIND_SEEDS)
def test_killed_unblinded_pool_leaves_no_arm_in_the_workspace(scene, unblinded, seed):
    delay = delays(UNBLIND_SEEDS, scene.unblind_seconds, salt=3)[seed]
    code = kill_after(cli(*unblind_args(scene)), delay)
    assert code in (None, 0), f"seed {seed}: exit code {code}"
    assert arms_in(scene.ws) == [], f"seed {seed} (killed after {delay} s)"
    if not unblinded.exists():
        _recover(unblinded)
    assert assert_output_complete(unblinded)["unblinded"] is True
    assert_ledger_sound(scene.ws)


def test_unblinded_pool_after_the_kills_removes_its_leftovers(scene, unblinded):
    run_cli(*unblind_args(scene))
    assert assert_output_complete(unblinded)["unblinded"] is True
    assert sorted(p.name for p in scene.root.iterdir() if p.name.startswith("unblinded.")) == []
    assert arms_in(scene.ws) == []

