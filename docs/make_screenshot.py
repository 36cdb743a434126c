"""Regenerate ``docs/report.png``: the HTML data-quality report rendered by headless Chromium.

Usage (from the repository root, with trialkit installed and Chromium on PATH)::

    python docs/make_screenshot.py                 # writes docs/report.png (and keeps nothing else)
    python docs/make_screenshot.py --keep DIR      # also keeps the workspace and report.html in DIR

When ``trialkit demo`` exists, the bundled study's synthetic 9-site demo is used. Otherwise a small synthetic
workspace is built from the literal subject of the test suite (``tests/test_deviations.py``): four
sites, a dozen subjects randomized over five months, an accepted, an accepted-with-warnings, a held
and a rejected upload, a few protocol deviations and missing visits, responders and non-responders.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WINDOW = "1280,1800"


def _run(*args: str, ok: tuple[int, ...] = (0,)) -> None:
    from click.testing import CliRunner

    from trialkit.cli import cli

    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    if result.exit_code not in ok:
        raise SystemExit(f"trialkit {' '.join(args)} failed ({result.exit_code}):\n{result.output}")


def _shift(value: Any, days: int) -> Any:
    return value + dt.timedelta(days=days) if isinstance(value, dt.date) else value


def _subject(subject: str, offset: int, *, responder: bool, late_w1: bool = False, missing_w2: bool = False,
             high_dose: bool = False) -> dict[str, list[dict[str, Any]]]:
    """The test suite's clean subject, moved ``offset`` days later and varied."""
    sys.path.insert(0, str(ROOT))
    from tests.test_deviations import CHAQ_ITEMS, clean_subject

    records = copy.deepcopy(clean_subject())
    for rows in records.values():
        for row in rows:
            row["SUBJID"] = subject
            for key, value in list(row.items()):
                row[key] = _shift(value, offset)
    records["RAND"][0].update(RANDNO=f"R{subject.replace('-', '')}", KITNO=f"K{subject.replace('-', '')}")
    if responder:  # a clear improvement at W4: ACR Pedi 30 and acute-phase reactants normal
        for row in records["CORE"]:
            if row["VISIT"] == "W4":
                row.update(PHGA=1.0, PAGA=1.0)
        for row in records["CHAQ"]:
            if row["VISIT"] == "W4":
                row.update(dict.fromkeys(CHAQ_ITEMS, 0), PAINVAS=1.0)
        for row in records["LB"]:
            if row["VISIT"] == "W4":
                row.update(LBORRES=3 if row["LBTESTCD"] == "CRP" else 10)
                row.update(LBSTRESN=row["LBORRES"])
    if late_w1:  # PD-07 (minor): W1 on day 12, window 6-10
        for form, date_var in (("VS", "VSDAT"), ("LB", "LBDAT")):
            for row in records[form]:
                if row["VISIT"] == "W1":
                    row[date_var] = _shift(row[date_var], 4)
    if missing_w2:
        for form in ("CORE", "CHAQ"):
            records[form] = [r for r in records[form] if r["VISIT"] != "W2"]
    if high_dose:  # PD-05 (major): 90 mg/day for 30 kg
        records["EX"][0]["EXDOSE"] = 90
    return records


def _upload(study: Any, folder: Path, site: str, name: str, subjects: list[dict[str, list[dict[str, Any]]]]) -> Path:
    sys.path.insert(0, str(ROOT))
    from tests.upload_builder import write_upload

    merged: dict[str, list[dict[str, Any]]] = {}
    for records in subjects:
        for form, rows in records.items():
            merged.setdefault(form, []).extend(rows)
    return write_upload(study, folder / name, merged, site=site)


def build_small_workspace(folder: Path) -> Path:
    """The synthetic four-site workspace of the module docstring; returns the workspace folder."""
    from trialkit.study import load_study

    study = load_study()
    ws = folder / "ws"
    _run("init", str(ws))
    plan = [
        # site, file, subjects (id, offset, responder, variations), accept warnings, data cut
        ("01", "Milano_upload.xlsx", [("01-001", -40, True, {}), ("01-002", -20, False, {}),
                                      ("01-003", 0, True, {}), ("01-004", 14, True, {})], True, "2024-05-01"),
        ("03", "Paris export 2024-05.xlsx", [("03-001", -10, True, {"late_w1": True}),
                                             ("03-002", 7, False, {"missing_w2": True}),
                                             ("03-003", 25, True, {})], True, "2024-05-10"),
        ("07", "london_v1.xlsx", [("07-001", 30, True, {}), ("07-002", 45, False, {})], True, "2024-06-12"),
        ("07", "london_v2 (R&D corrected).xlsx", [("07-001", 30, True, {}), ("07-002", 45, False, {}),
                                                  ("07-003", 60, True, {"high_dose": True})], False, "2024-06-12"),
        ("08", "cincinnati.xlsx", [("08-001", 50, True, {"late_w1": True}), ("08-002", 62, True, {})], False,
         "2024-06-20"),
    ]
    for site, name, subjects, accept, cut in plan:
        records = [_subject(s, offset, responder=r, **extra) for s, offset, r, extra in subjects]
        path = _upload(study, folder, site, name, records)
        _run("submit", str(path), "--site", site, "--workspace", str(ws), "--data-cut", cut, "-q",
             *(["--accept-warnings"] if accept else []), ok=(0, 1))
    _run("pool", "--workspace", str(ws), "-q")
    return ws


def build_workspace(folder: Path) -> Path:
    """``trialkit demo`` when it exists, else :func:`build_small_workspace`."""
    from trialkit.cli import COMMANDS

    if "demo" in COMMANDS:
        target = folder / "demo"
        _run("demo", str(target), "-q")
        for candidate in (target / "workspace", target / "ws", target):
            if (candidate / "ledger.sqlite").is_file():
                return candidate
    return build_small_workspace(folder)


def screenshot(html_path: Path, png_path: Path) -> None:
    """Render ``html_path`` with headless Chromium at 1280×1800."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("Chromium is not installed: apt-get install chromium")
    with tempfile.TemporaryDirectory(prefix="trialkit-chromium-") as profile:
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
             f"--user-data-dir={profile}", f"--window-size={WINDOW}", f"--screenshot={png_path}",
             html_path.resolve().as_uri()],
            check=True, capture_output=True, timeout=180,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "report.png")
    parser.add_argument("--keep", type=Path, default=None, help="keep the workspace and report.html here")
    args = parser.parse_args()

    from trialkit.ledger import open_workspace
    from trialkit.report import write_report
    from trialkit.study import load_study

    with tempfile.TemporaryDirectory(prefix="trialkit-screenshot-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        ws = build_workspace(folder)
        demo_report = ws.parent / "report.html"
        if demo_report.is_file():  # the demo's own report, dated on the demo's fixed "today"
            html_path = demo_report
        else:
            html_path = write_report(open_workspace(ws), load_study(), folder / "report.html")
        screenshot(html_path, args.output)
    print(args.output)


if __name__ == "__main__":
    main()
