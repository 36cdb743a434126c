"""Nothing a site sent is lost by a later upload: per-form currency, removals held, record diffs.

Each test reproduces a way trialkit lost data before (issue 11) through the real CLI:

- an upload of one form (site 05's ``ae.csv``) replaced *all* of the site's current data;
- a junk ``x,y`` CSV accepted with ``--accept-warnings`` wiped a site the same way;
- an XPT cut to half on an 80-byte boundary reads as half the rows: as a re-upload it halved the
  site's labs in the pool without a word;
- an upload that leaves out records (a subject, a visit) replaced them silently.

And what replaces it: the site's current data per form, ``LEDGER-REMOVED-RECORDS`` holding an upload
until ``--accept-removals``, ``trialkit diff`` and submit's one-line summary of the changes, and the
migration of a ledger written by ledger schema 1.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner

from trialkit.cli import cli
from trialkit.diff import diff_site
from trialkit.importers.reader import import_files
from trialkit.ledger import LEDGER_FILE, open_workspace
from trialkit.validate import validate

from .site_data import subjects, truncate_on_record_boundary, workbook, xpt

CUT = "2024-04-12"


def run(*args: str, expect: int | tuple[int, ...] | None = 0):
    result = CliRunner().invoke(cli, list(args))
    if expect is not None:
        codes = (expect,) if isinstance(expect, int) else expect
        assert result.exit_code in codes, (args, result.output, result.exception)
    return result


def submit(ws: Path, *files: Path, site: str, flags: tuple[str, ...] = ("--accept-warnings",), expect=0,
           fmt: str = "json"):
    result = run("submit", *map(str, files), "--site", site, "--workspace", str(ws), "--data-cut", CUT,
                 "-f", fmt, *flags, expect=expect)
    return json.loads(result.stdout) if fmt == "json" else result


def pooled(ws: Path, out: Path, expect: int = 0) -> Path:
    run("pool", "--workspace", str(ws), "-o", str(out), "-q", expect=expect)
    return out


def subjects_in(out: Path, form: str, site: str | None = None) -> list[str]:
    frame = pd.read_parquet(out / f"{form.lower()}.parquet")
    if site is not None:
        frame = frame[frame["SITEID"] == site]
    return sorted(frame["SUBJID"].unique())


@pytest.fixture
def trial(tmp_path, study):
    """Sites 01 (01-001, 01-002) and 02 (02-001) accepted; returns (workspace, folder, ids)."""
    ws = tmp_path / "ws"
    run("init", str(ws), "-q")
    ids = {}
    ids["01"] = submit(ws, workbook(study, tmp_path / "site01.xlsx", subjects("01", [1, 2])), site="01")["id"]
    ids["02"] = submit(ws, workbook(study, tmp_path / "site02.xlsx", subjects("02", [1])), site="02")["id"]
    return ws, tmp_path, ids


# ------------------------------------------------------------------------------------------------
# Per-form currency


def test_an_upload_of_one_form_replaces_only_that_form(trial, study):
    ws, folder, ids = trial
    records = subjects("01", [1, 2], forms=["AE"])
    records["AE"][0]["AETOXGR"] = 2  # a corrected grade
    ae_only = workbook(study, folder / "site01-ae.xlsx", records)
    sub = submit(ws, ae_only, site="01")
    assert sub["status"] == "accepted-with-warnings" and sub["current_forms"] == ["AE"]
    out = pooled(ws, folder / "pooled")
    # Site 01's demographics, labs and analysis population are still there.
    for form in ("DM", "LB", "VS", "ADSL"):
        assert subjects_in(out, form) == ["01-001", "01-002", "02-001"], form
    ae = pd.read_parquet(out / "ae.parquet")
    assert sorted(ae[ae["SITEID"] == "01"]["AETOXGR"].tolist()) == [1, 2, 3, 3]
    manifest = json.loads((out / "manifest.json").read_text())
    site01 = manifest["forms"]["01"]
    assert site01["AE"]["submission"] == sub["id"] and site01["DM"]["submission"] == ids["01"]
    assert site01["AE"]["rows"] == 4 and site01["AE"]["files"] == ["site01-ae.xlsx"]
    assert open_workspace(ws).current_forms("01")["01"] == {
        **dict.fromkeys(open_workspace(ws).submission(ids["01"]).forms, ids["01"]), "AE": sub["id"]}


def test_an_upload_in_which_no_form_is_recognised_is_rejected_whatever_the_flags(trial):
    ws, folder, ids = trial
    junk = folder / "notes.csv"
    junk.write_text("x,y\n1,2\n")
    sub = submit(ws, junk, site="02", flags=("--accept-warnings", "--accept-removals"), expect=1)
    assert sub["status"] == "rejected" and sub["current"] is False
    codes = [f["code"] for f in open_workspace(ws).submission(sub["id"]).report.to_dict()["findings"]]
    assert "NO-FORM" in codes  # the validation says so once (the ledger adds LEDGER-NO-FORM only otherwise)
    assert open_workspace(ws).current_submissions()["02"].id == ids["02"]
    assert subjects_in(pooled(ws, folder / "pooled"), "DM", "02") == ["02-001"]


def test_an_upload_that_leaves_out_a_subject_is_held_until_removals_are_accepted(trial, study):
    ws, folder, ids = trial
    partial = workbook(study, folder / "site01-v2.xlsx", subjects("01", [1]))
    held = submit(ws, partial, site="01", fmt="text", expect=1)
    assert held.stdout.startswith("submission 3: site 01, held\n")
    assert "--accept-removals" in held.stderr and "records" in held.stderr
    sub = open_workspace(ws).submission(3)
    removals = {f.form: f for f in sub.removals}
    assert set(removals) == set(sub.forms) - {"DS"}  # every form that had 01-002's records
    assert removals["DM"].value == "1" and "01-002" in removals["DM"].message
    assert removals["LB"].value == "10" and removals["LB"].evidence["subjects"] == ["01-002"]
    assert "01-002 · SCR · ESR" in removals["LB"].message
    # --accept-warnings alone does not accept removals: nothing new is recorded.
    again = submit(ws, partial, site="01", expect=1)
    assert (again["id"], again["status"], again["duplicate"]) == (3, "held", True)
    assert open_workspace(ws).current_forms("01")["01"]["DM"] == ids["01"]
    # The data manager accepts the removal, and the audit log says who.
    accepted = submit(ws, partial, site="01", flags=("--accept-warnings", "--accept-removals", "--operator",
                                                     "dm.bob"))
    assert (accepted["id"], accepted["status"], accepted["action"]) == (3, "accepted-with-warnings",
                                                                         "removals-accepted")
    line = open_workspace(ws).audit()[-1]
    assert (line["action"], line["operator"], line["detail"]["removals"]["DM"]) == ("removals-accepted",
                                                                                    "dm.bob", 1)
    assert subjects_in(pooled(ws, folder / "pooled"), "DM", "01") == ["01-001"]


def test_accepting_removals_at_once_is_recorded_with_the_operator(trial, study):
    ws, folder, ids = trial
    partial = workbook(study, folder / "site01-v2.xlsx", subjects("01", [1], forms=["DM", "VS"]))
    sub = submit(ws, partial, site="01", flags=("--accept-warnings", "--accept-removals", "--operator", "dm.eve"))
    assert sub["status"] == "accepted-with-warnings" and sub["acknowledged_by"] == "dm.eve"
    line = open_workspace(ws).audit()[-1]
    assert line["detail"]["removals"] == {"DM": 1, "VS": 5} and line["detail"]["removals_accepted"] is True
    assert line["operator"] == "dm.eve"
    # Forms the upload does not hold keep both subjects.
    out = pooled(ws, folder / "pooled")
    assert subjects_in(out, "DM", "01") == ["01-001"] and subjects_in(out, "LB", "01") == ["01-001", "01-002"]


def test_a_truncated_xpt_reupload_is_held_and_the_pool_keeps_every_lab(tmp_path, study):
    ws = tmp_path / "ws"
    run("init", str(ws), "-q")
    records = subjects("07", [1, 2, 3])
    lab = xpt(study, tmp_path / "sas", "LB", records.pop("LB"))
    first = submit(ws, workbook(study, tmp_path / "site07.xlsx", records), lab, site="07")
    assert first["status"] == "accepted-with-warnings"
    out = pooled(ws, tmp_path / "pooled")
    assert len(pd.read_parquet(out / "lb.parquet")) == 30
    # Cut on an 80-byte record boundary inside the data (with 30 rows the header is a third of the file).
    half = truncate_on_record_boundary(lab, tmp_path / "lb.xpt", fraction=0.75)
    assert half.stat().st_size % 80 == 0 and half.stat().st_size < lab.stat().st_size
    read_back = import_files([half], study, site="07")
    assert 0 < len(read_back.forms["LB"]) < 30  # the format itself cannot tell: it reads as fewer rows
    held = submit(ws, half, site="07", expect=1)
    assert held["status"] == "held" and held["current"] is False
    finding = open_workspace(ws).submission(held["id"]).removals[0]
    assert finding.form == "LB" and int(finding.value) == 30 - len(read_back.forms["LB"])
    assert len(pd.read_parquet(pooled(ws, tmp_path / "pooled") / "lb.parquet")) == 30


def test_queries_of_forms_an_upload_does_not_hold_stay_open(trial, study):
    ws, folder, ids = trial
    bad = subjects("01", [1, 2])
    bad["VS"][0]["WEIGHT"] = 900  # an error: a query on VS
    submit(ws, workbook(study, folder / "site01-bad.xlsx", bad), site="01", expect=1)
    open_vs = [q for q in open_workspace(ws).queries(site="01", status="open") if q["form"] == "VS"]
    assert open_vs
    ae_only = workbook(study, folder / "site01-ae.xlsx", subjects("01", [1, 2], forms=["AE"]))
    sub = submit(ws, ae_only, site="01")
    assert sub["queries"]["resolved"] == []
    still = {q["query_id"] for q in open_workspace(ws).queries(site="01", status="open")}
    assert {q["query_id"] for q in open_vs} <= still


# ------------------------------------------------------------------------------------------------
# What changed: submit's summary and trialkit diff


def test_submit_prints_a_one_line_summary_of_its_changes(trial, study):
    ws, folder, ids = trial
    changed = subjects("01", [1, 2, 3], forms=["DM", "VS"])
    changed["VS"][1]["WEIGHT"] = 31
    text = submit(ws, workbook(study, folder / "site01-v2.xlsx", changed), site="01", fmt="text")
    lines = text.stdout.splitlines()
    assert lines[-1] == "changes: DM 1 added, 0 removed, 0 changed; VS 5 added, 0 removed, 1 changed"
    sub = json.loads(run("log", "--workspace", str(ws), "-f", "json").stdout)["submissions"][-1]
    assert sub["forms"]["VS"] == {"rows": 15, "subjects": 3}


def test_diff_names_added_removed_and_changed_records_with_old_and_new_values(trial, study, tmp_path):
    ws, folder, ids = trial
    changed = subjects("01", [1, 3], forms=["DM", "VS"])  # 01-002 gone, 01-003 new
    changed["VS"][1]["WEIGHT"] = 31  # 01-001 at D1
    changed["DM"][0]["SEX"] = "M"
    submit(ws, workbook(study, folder / "site01-v2.xlsx", changed), site="01", expect=1)  # held: removals
    result = run("diff", "--site", "01", "--workspace", str(ws), "-f", "json")
    data = json.loads(result.stdout)
    assert data == diff_site(open_workspace(ws), study, "01").to_dict()  # -f json is the library's result
    assert (data["site"], data["b"]["submission"]) == ("01", 3)
    assert data["a"]["forms"] == {"DM": ids["01"], "VS": ids["01"]}
    assert data["forms"]["DM"] == {"added": 1, "removed": 1, "changed": 1, "unchanged": 0}
    assert data["forms"]["VS"] == {"added": 5, "removed": 5, "changed": 1, "unchanged": 4}
    cells = [c for c in data["changes"] if c["change"] == "changed"]
    assert {(c["form"], c["key"], c["variable"], c["old"], c["new"]) for c in cells} == {
        ("DM", "01-001", "SEX", "F", "M"), ("VS", "01-001 · D1", "WEIGHT", "30.0", "31.0")}
    removed = sorted(c["key"] for c in data["changes"] if c["change"] == "removed")
    assert removed[0] == "01-002" and len(removed) == 6
    # The same as text, CSV and a workbook, between two named submissions.
    text = run("diff", "--site", "01", str(ids["01"]), "3", "--workspace", str(ws)).stdout
    assert "VS: 5 added, 5 removed, 1 changed, 4 unchanged" in text
    assert "changed  VS  01-001 · D1  WEIGHT: 30.0 → 31.0" in text
    rows = list(csv.DictReader(io.StringIO(run("diff", "--site", "01", "--workspace", str(ws), "-f", "csv").stdout)))
    assert {r["variable"]: (r["old"], r["new"]) for r in rows if r["change"] == "changed"} == {
        "SEX": ("F", "M"), "WEIGHT": ("30.0", "31.0")}
    book = tmp_path / "diff.xlsx"
    run("diff", "--site", "01", "--workspace", str(ws), "-f", "xlsx", "-o", str(book), "-q")
    sheet = openpyxl.load_workbook(book)["Changes"]
    values = list(sheet.iter_rows(values_only=True))
    assert values[0][:7] == ("FORM", "CHANGE", "KEY", "SUBJECT", "VARIABLE", "OLD", "NEW")
    assert ("VS", "changed", "01-001 · D1", "01-001", "WEIGHT", "30.0", "31.0") in [v[:7] for v in values]


def test_diff_of_an_unknown_submission_or_another_sites_is_a_usage_error(trial):
    ws, _, ids = trial
    assert run("diff", "--site", "01", "99", str(ids["01"]), "--workspace", str(ws), expect=2).exit_code == 2
    other = run("diff", "--site", "01", str(ids["02"]), str(ids["01"]), "--workspace", str(ws), expect=2)
    assert "site 02" in other.stderr
    assert run("diff", "--site", "01", "--workspace", str(ws), "-f", "xlsx", expect=2).exit_code == 2


# ------------------------------------------------------------------------------------------------
# A ledger written by ledger schema 1

V1_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE submissions (
    id INTEGER PRIMARY KEY, site TEXT NOT NULL, submitted_at TEXT NOT NULL, operator TEXT NOT NULL,
    note TEXT, status TEXT NOT NULL
        CHECK (status IN ('accepted', 'accepted-with-warnings', 'held', 'rejected')),
    study_id TEXT, study_version TEXT, schema_hash TEXT, template_stamp TEXT, trialkit_version TEXT,
    data_cut TEXT, n_error INTEGER NOT NULL, n_warning INTEGER NOT NULL, n_info INTEGER NOT NULL,
    content_key TEXT NOT NULL, report_json TEXT NOT NULL, superseded_by INTEGER REFERENCES submissions(id),
    acknowledged_by TEXT, acknowledged_at TEXT);
CREATE TABLE submission_files (
    submission_id INTEGER NOT NULL REFERENCES submissions(id), sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    original_name TEXT NOT NULL, format TEXT, archive_path TEXT NOT NULL, PRIMARY KEY (submission_id, sha256));
CREATE TABLE current (site TEXT PRIMARY KEY, submission_id INTEGER NOT NULL REFERENCES submissions(id),
    since TEXT NOT NULL);
CREATE TABLE queries (
    site TEXT NOT NULL, query_id TEXT NOT NULL, status TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
    first_submission INTEGER NOT NULL, last_seen_submission INTEGER NOT NULL, resolved_submission INTEGER,
    opened_at TEXT NOT NULL, resolved_at TEXT, severity TEXT NOT NULL, code TEXT NOT NULL, category TEXT,
    subject TEXT, form TEXT, visit TEXT, variable TEXT, value TEXT, message TEXT NOT NULL,
    finding_json TEXT NOT NULL, response TEXT, responded_by TEXT, response_date TEXT,
    response_recorded_at TEXT, response_recorded_by TEXT, PRIMARY KEY (site, query_id));
CREATE TABLE audit (seq INTEGER PRIMARY KEY, at TEXT NOT NULL, operator TEXT NOT NULL, action TEXT NOT NULL,
    site TEXT, submission_id INTEGER REFERENCES submissions(id), detail TEXT NOT NULL);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: audit rows cannot be updated'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: audit rows cannot be deleted'); END;
"""


def v1_workspace(folder: Path, study, upload: Path) -> Path:
    """A workspace as ledger schema 1 wrote it: one accepted submission current for site 01."""
    import hashlib

    ws = folder / "ws"
    digest = hashlib.sha256(upload.read_bytes()).hexdigest()
    archived = ws / "archive" / "sha256" / digest[:2] / f"{digest}.xlsx"
    archived.parent.mkdir(parents=True)
    archived.write_bytes(upload.read_bytes())
    archived.chmod(0o444)
    (ws / "trialkit-workspace.toml").write_text('[workspace]\nformat = 1\nstudy_id = "ANK-SJIA-01"\n')
    report = validate(study, import_files([upload], study, site="01"), site="01")
    with sqlite3.connect(ws / LEDGER_FILE) as connection:
        connection.executescript(V1_SCHEMA)
        connection.execute("INSERT INTO schema_version VALUES (1)")
        connection.execute(
            "INSERT INTO audit (at, operator, action, detail) VALUES ('2025-01-01T00:00:00Z', 'dm', "
            "'workspace-created', '{\"study_id\": \"ANK-SJIA-01\"}')")
        connection.execute(
            "INSERT INTO submissions (id, site, submitted_at, operator, status, study_id, n_error, n_warning, "
            "n_info, content_key, report_json) VALUES (1, '01', '2025-01-02T00:00:00Z', 'dm', "
            "'accepted-with-warnings', 'ANK-SJIA-01', 0, 1, 0, ?, ?)",
            (hashlib.sha256(digest.encode()).hexdigest(), report.to_json(None)))
        connection.execute(
            "INSERT INTO submission_files VALUES (1, ?, ?, ?, 'xlsx', ?)",
            (digest, upload.stat().st_size, upload.name, archived.relative_to(ws).as_posix()))
        connection.execute("INSERT INTO current VALUES ('01', 1, '2025-01-02T00:00:00Z')")
        connection.execute(
            "INSERT INTO audit (at, operator, action, site, submission_id, detail) VALUES "
            "('2025-01-02T00:00:00Z', 'dm', 'submitted', '01', 1, '{\"status\": \"accepted-with-warnings\"}')")
    return ws


def test_a_schema_1_ledger_is_migrated_on_open_and_keeps_its_current_data(tmp_path, study):
    first = workbook(study, tmp_path / "site01.xlsx", subjects("01", [1, 2]))
    ws_path = v1_workspace(tmp_path, study, first)
    ws = open_workspace(ws_path)
    with sqlite3.connect(ws_path / LEDGER_FILE) as connection:
        assert connection.execute("SELECT version FROM schema_version").fetchall() == [(3,)]
        assert connection.execute("SELECT name FROM sqlite_master WHERE name = 'current'").fetchall() == []
    forms = ws.current_forms()["01"]
    assert set(forms) == set(study.forms) and set(forms.values()) == {1}
    migrated = ws.audit()[-1]
    assert migrated["action"] == "ledger-migrated" and migrated["detail"]["current_forms"]["01"] == forms
    assert (ws_path / "archive" / "sha256").stat().st_mode & 0o777 == 0o555
    assert run("verify", "--workspace", str(ws_path)).exit_code == 0
    assert open_workspace(ws_path).audit()[-1]["action"] == "ledger-migrated"  # migrated once
    # The pool re-imports it; a partial re-upload is compared with it by re-reading the archive.
    assert subjects_in(pooled(ws_path, tmp_path / "pooled"), "DM") == ["01-001", "01-002"]
    partial = workbook(study, tmp_path / "site01-v2.xlsx", subjects("01", [1], forms=["DM"]))
    held = submit(ws_path, partial, site="01", expect=1)
    assert held["status"] == "held"
    assert open_workspace(ws_path).submission(held["id"]).removals[0].value == "1"
