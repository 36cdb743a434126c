"""The submissions ledger: statuses, duplicates, query tracking, answers, archive and audit log.

The ledger is tested with literal reports (no importer or validator involved), so every expected
status and query transition is spelled out here.
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import stat
from datetime import UTC, date, datetime
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from trialkit.errors import TrialkitError, UsageError
from trialkit.findings import Category, Finding, InputFile, Report
from trialkit.importers.base import FormData
from trialkit.ledger import (
    ENV_WORKSPACE,
    LEDGER_FILE,
    WORKSPACE_FILE,
    Submission,
    Workspace,
    init_workspace,
    open_workspace,
)
from trialkit.records import SubmissionRecords, form_records

DAY1 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
DAY8 = datetime(2025, 3, 8, 9, 0, tzinfo=UTC)
DAY15 = datetime(2025, 3, 15, 9, 0, tzinfo=UTC)


def finding(qid: str, severity: str = "error", *, site: str = "01", form: str = "VS",
            category: str = "range", subject: str = "01-001") -> Finding:
    return Finding(
        code="RANGE", severity=severity, category=category, message=f"problem {qid}", site=site,
        subject=subject, form=form, visit="W4", variable="WEIGHT", value="900", query_id=qid,
    )


def report(*findings: Finding, site: str = "01", paths: tuple[Path, ...] = ()) -> Report:
    return Report(
        findings=list(findings), study_id="ANK-SJIA-01", study_version="2.0", schema_hash="abc123",
        site=site, data_cut="2025-02-28", inputs=[InputFile.from_path(p, "csv") for p in paths],
    )


def recs(**forms: list[dict[str, object]]) -> SubmissionRecords:
    """Literal records of what an upload holds (default: one VS record of 01-001 at W4)."""
    forms = forms or {"VS": [{"SUBJID": "01-001", "VISIT": "W4", "WEIGHT": 20}]}
    result = {}
    for code, rows in forms.items():
        frame = pd.DataFrame(rows)
        keys = tuple(k for k in ("SUBJID", "VISIT") if k in frame.columns)
        data = FormData(code, frame, frame.astype(str), frame.map(lambda _: pd.NA), frame)
        result[code] = form_records(data, keys)
    return SubmissionRecords(result)


def submit(ws: Workspace, paths: list[Path], site: str, rep: Report, **kwargs: object) -> Submission:
    """``ws.submit`` with literal records (one VS record unless ``records`` is given)."""
    kwargs.setdefault("records", recs())
    return ws.submit(paths, site, rep, **kwargs)


def upload(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def ws(tmp_path):
    return init_workspace(tmp_path / "ws", study_id="ANK-SJIA-01")


@pytest.fixture
def files(tmp_path) -> Path:
    folder = tmp_path / "uploads"
    folder.mkdir()
    return folder


# -- workspace ------------------------------------------------------------------------------------


def test_init_creates_ledger_archive_and_settings(tmp_path):
    ws = init_workspace(tmp_path / "new" / "ws", study_id="ANK-SJIA-01")
    assert (ws.path / LEDGER_FILE).is_file()
    assert (ws.path / "archive" / "sha256").is_dir()
    assert 'study_id = "ANK-SJIA-01"' in (ws.path / WORKSPACE_FILE).read_text()
    assert ws.study_id == "ANK-SJIA-01"
    with sqlite3.connect(ws.path / LEDGER_FILE) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("SELECT version FROM schema_version").fetchall() == [(3,)]
    assert [a["action"] for a in ws.audit()] == ["workspace-created"]
    assert ws.log() == [] and ws.queries() == [] and ws.current_submissions() == {}


def test_init_refuses_an_existing_workspace(ws):
    with pytest.raises(UsageError, match="already a trialkit workspace"):
        init_workspace(ws.path)


def test_open_workspace_from_argument_env_and_parent_folder(ws, tmp_path, monkeypatch):
    assert open_workspace(ws.path).path == ws.path
    monkeypatch.setenv(ENV_WORKSPACE, str(ws.path))
    assert open_workspace().path == ws.path
    monkeypatch.delenv(ENV_WORKSPACE)
    inner = ws.path / "reports" / "2025"
    inner.mkdir(parents=True)
    monkeypatch.chdir(inner)
    assert open_workspace().path.resolve() == ws.path.resolve()


def test_missing_workspace_names_where_it_looked_and_the_remedy(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_WORKSPACE, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TrialkitError, match=r"no trialkit workspace found in .*trialkit init DIR"):
        open_workspace()
    with pytest.raises(TrialkitError, match=r"nowhere.*not a trialkit workspace.*trialkit init DIR"):
        open_workspace(tmp_path / "nowhere")


# -- submitting -----------------------------------------------------------------------------------


def test_clean_submission_is_accepted_and_current(ws, files):
    path = upload(files, "site01.csv", "SUBJID,WEIGHT\n01-001,20\n")
    sub = submit(ws, [path], "01", report(paths=(path,)), operator="dm.anna", note="first", now=DAY1)
    assert (sub.id, sub.status, sub.is_current, sub.duplicate) == (1, "accepted", True, False)
    assert sub.counts == {"error": 0, "warning": 0, "info": 0}
    assert (sub.operator, sub.note, sub.submitted_at) == ("dm.anna", "first", "2025-03-01T09:00:00Z")
    assert (sub.study_id, sub.study_version, sub.schema_hash, sub.data_cut) == (
        "ANK-SJIA-01", "2.0", "abc123", "2025-02-28")
    assert [(f.original_name, f.size, f.format) for f in sub.files] == [("site01.csv", 24, "csv")]
    assert ws.current_submissions()["01"].id == 1
    assert sub.report.to_dict() == report(paths=(path,)).to_dict()


def test_operator_defaults_to_the_os_user(ws, files, monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "osuser")
    path = upload(files, "a.csv", "x\n")
    assert submit(ws, [path], "01", report(), now=DAY1).operator == "osuser"


def test_archived_file_is_byte_identical_and_read_only(ws, files):
    data = "SUBJID;WEIGHT\r\n01-001;20,5\r\n\xe9".encode("latin-1")
    path = files / "Site 01 upload.CSV"
    path.write_bytes(data)
    sub = submit(ws, [path], "01", report(), now=DAY1)
    archived = ws.path / sub.files[0].archive_path
    assert archived == ws.archive_path(sub.files[0].sha256)
    assert archived.read_bytes() == data
    assert archived.name == sub.files[0].sha256 + ".csv"
    assert archived.parent.name == sub.files[0].sha256[:2]
    assert stat.S_IMODE(archived.stat().st_mode) == 0o444
    assert not [p for p in archived.parent.iterdir() if p.name.startswith(".incoming")]


def test_submission_with_an_error_is_rejected_and_current_unchanged(ws, files):
    good = upload(files, "good.csv", "ok\n")
    bad = upload(files, "bad.csv", "bad\n")
    submit(ws, [good], "01", report(), now=DAY1)
    sub = submit(ws, [bad], "01", report(finding("Q-1")), now=DAY8)
    assert (sub.id, sub.status, sub.is_current) == (2, "rejected", False)
    assert sub.counts["error"] == 1
    assert ws.current_submissions()["01"].id == 1
    assert [(s["id"], s["status"], s["current"]) for s in ws.log("01")] == [
        (1, "accepted", True), (2, "rejected", False)]


def test_protocol_deviations_do_not_block_acceptance_but_stay_queries(ws, files):
    # A major deviation (error) in otherwise correct data: accepted and current, and still a query.
    data = upload(files, "site01.csv", "ok\n")
    sub = submit(ws, [data], "01", report(finding("Q-PD", category="deviation")), now=DAY1)
    assert (sub.status, sub.is_current, sub.counts["error"]) == ("accepted", True, 1)
    assert [q["query_id"] for q in ws.queries(site="01", status="open")] == ["Q-PD"]
    # The same deviation next to a real data error: the data error rejects.
    both = upload(files, "site01-v2.csv", "ok2\n")
    sub = submit(ws, [both], "01", report(finding("Q-PD", category="deviation"), finding("Q-2")), now=DAY8)
    assert sub.status == "rejected"


def test_warnings_hold_a_submission_until_acknowledged(ws, files):
    path = upload(files, "warn.csv", "w\n")
    held = submit(ws, [path], "01", report(finding("Q-W", "warning")), now=DAY1)
    assert (held.status, held.is_current) == ("held", False)
    assert ws.current_submissions() == {}
    again = submit(ws, [path], "01", report(finding("Q-W", "warning")), now=DAY8,
                      accept_warnings=True, operator="dm.bob")
    assert (again.id, again.status, again.is_current, again.action) == (
        1, "accepted-with-warnings", True, "warnings-accepted")
    assert (again.acknowledged_by, again.acknowledged_at) == ("dm.bob", "2025-03-08T09:00:00Z")
    assert len(ws.log()) == 1
    assert ws.audit()[-1]["action"] == "warnings-accepted"


def test_acknowledged_warnings_on_first_submission(ws, files):
    path = upload(files, "warn.csv", "w\n")
    sub = submit(ws, [path], "01", report(finding("Q-W", "warning"), finding("I", "info")),
                    accept_warnings=True, now=DAY1)
    assert (sub.status, sub.is_current, sub.counts) == (
        "accepted-with-warnings", True, {"error": 0, "warning": 1, "info": 1})


def test_same_bytes_twice_are_recognised_not_duplicated(ws, files):
    first = upload(files, "a.csv", "same bytes\n")
    sub = submit(ws, [first], "01", report(), now=DAY1)
    renamed = upload(files, "a_copy.csv", "same bytes\n")
    again = submit(ws, [renamed], "01", report(), now=DAY8, operator="dm.bob")
    assert (again.id, again.duplicate, again.action, again.status) == (
        sub.id, True, "duplicate-ignored", "accepted")
    assert len(ws.log()) == 1
    last = ws.audit()[-1]
    assert (last["action"], last["submission_id"], last["operator"]) == (
        "duplicate-ignored", 1, "dm.bob")
    # The same bytes from another site are that site's submission, not a duplicate.
    other = submit(ws, [first], "02", report(site="02"), now=DAY8)
    assert (other.id, other.duplicate) == (2, False)


def test_new_accepted_submission_supersedes_the_previous(ws, files):
    one = submit(ws, [upload(files, "1.csv", "1\n")], "01", report(), now=DAY1)
    two = submit(ws, [upload(files, "2.csv", "2\n")], "01", report(), now=DAY8)
    log = ws.log("01")
    assert [(s["id"], s["superseded_by"], s["current"]) for s in log] == [
        (one.id, two.id, False), (two.id, None, True)]
    assert ws.audit()[-1]["detail"]["supersedes"] == {"VS": one.id}


def test_file_changed_since_validation_is_refused(ws, files):
    path = upload(files, "a.csv", "before\n")
    validated = report(paths=(path,))
    path.write_text("after\n")
    with pytest.raises(TrialkitError, match="changed since it was validated"):
        submit(ws, [path], "01", validated)
    assert ws.log() == []


@pytest.mark.parametrize("site", ["../x", "01/../../etc", "", "a b", ".."])
def test_site_that_is_not_an_id_is_refused(ws, files, site):
    path = upload(files, "a.csv", "x\n")
    with pytest.raises(UsageError):
        submit(ws, [path], site, report())
    assert ws.log() == []
    assert list((ws.path / "archive" / "sha256").iterdir()) == []


def test_site_is_checked_against_the_study(ws, files, study):
    path = upload(files, "a.csv", "x\n")
    with pytest.raises(UsageError, match="unknown site '99'"):
        submit(ws, [path], "99", report(), study=study)
    assert submit(ws, [path], "1", report(), study=study).site == "01"


def test_report_of_another_study_is_refused(ws, files):
    path = upload(files, "a.csv", "x\n")
    other = report()
    other.study_id = "FAKE-01"
    with pytest.raises(UsageError, match="this workspace is for study ANK-SJIA-01"):
        submit(ws, [path], "01", other)


# -- query tracking -------------------------------------------------------------------------------


def test_resubmission_resolves_fixed_queries_keeps_others_and_opens_new(ws, files):
    first = submit(ws, [upload(files, "1.csv", "1\n")], "01",
                      report(finding("Q-A"), finding("Q-B", "warning"), finding("Q-I", "info")),
                      now=DAY1)
    assert (first.queries.new, first.queries.resolved) == (("Q-A", "Q-B"), ())
    second = submit(ws, [upload(files, "2.csv", "2\n")], "01",
                       report(finding("Q-B", "warning"), finding("Q-C")), now=DAY8)
    assert second.queries.new == ("Q-C",)
    assert second.queries.still_open == ("Q-B",)
    assert second.queries.resolved == ("Q-A",)
    by_id = {q["query_id"]: q for q in ws.queries(today=date(2025, 3, 20))}
    assert set(by_id) == {"Q-A", "Q-B", "Q-C"}  # info findings are not queries
    assert (by_id["Q-A"]["status"], by_id["Q-A"]["resolved_submission"],
            by_id["Q-A"]["resolved_at"], by_id["Q-A"]["age_days"]) == (
        "resolved", 2, "2025-03-08T09:00:00Z", 7)
    assert (by_id["Q-B"]["status"], by_id["Q-B"]["first_submission"],
            by_id["Q-B"]["last_seen_submission"], by_id["Q-B"]["age_days"]) == ("open", 1, 2, 19)
    assert (by_id["Q-C"]["status"], by_id["Q-C"]["age_days"]) == ("open", 12)
    assert [q["query_id"] for q in ws.queries(status="open")] == ["Q-B", "Q-C"]
    assert [q["query_id"] for q in ws.queries(status="resolved")] == ["Q-A"]
    # The problem comes back: the same query is reopened, not duplicated.
    third = submit(ws, [upload(files, "3.csv", "3\n")], "01",
                      report(finding("Q-A"), finding("Q-B", "warning"), finding("Q-C")), now=DAY15)
    assert third.queries.reopened == ("Q-A",)
    assert len(ws.queries()) == 3


def test_queries_are_per_site(ws, files):
    submit(ws, [upload(files, "1.csv", "1\n")], "01", report(finding("Q-A")), now=DAY1)
    submit(ws, [upload(files, "2.csv", "2\n")], "02", report(finding("Q-B", site="02"), site="02"),
              now=DAY1)
    submit(ws, [upload(files, "3.csv", "3\n")], "02", report(site="02"), now=DAY8)
    assert [(q["site"], q["query_id"], q["status"]) for q in ws.queries()] == [
        ("01", "Q-A", "open"), ("02", "Q-B", "resolved")]
    assert [q["query_id"] for q in ws.queries(site="01")] == ["Q-A"]


def test_file_error_does_not_resolve_queries(ws, files):
    submit(ws, [upload(files, "1.csv", "1\n")], "01", report(finding("Q-A"), finding("Q-B")), now=DAY1)
    unreadable = Finding(code="FILE_UNREADABLE", severity="error", category=Category.FILE,
                         message="cannot read", site="01")
    sub = submit(ws, [upload(files, "2.csv", "2\n")], "01", report(unreadable), now=DAY8)
    assert sub.queries.resolved == () and sub.queries.tracked is False
    assert {q["status"] for q in ws.queries()} == {"open"}


def test_structure_error_in_one_form_resolves_only_other_forms(ws, files):
    submit(ws, [upload(files, "1.csv", "1\n")], "01",
              report(finding("Q-VS", form="VS"), finding("Q-AE", form="AE")), now=DAY1)
    missing_sheet = finding("Q-STRUCT", form="AE", category="structure")
    sub = submit(ws, [upload(files, "2.csv", "2\n")], "01", report(missing_sheet), now=DAY8)
    assert sub.queries.resolved == ("Q-VS",)
    assert {q["query_id"]: q["status"] for q in ws.queries()}["Q-AE"] == "open"


def test_duplicate_does_not_touch_queries(ws, files):
    path = upload(files, "1.csv", "1\n")
    submit(ws, [path], "01", report(finding("Q-A")), now=DAY1)
    again = submit(ws, [path], "01", report(), now=DAY8)
    assert again.duplicate
    assert ws.queries()[0]["status"] == "open"


# -- answers --------------------------------------------------------------------------------------


def answered_workbook(path: Path, rows: list[list[object]]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Queries"
    sheet.append(["QUERY ID", "SUBJID", "MESSAGE", "SITE_RESPONSE", "RESPONDED_BY", "RESPONSE_DATE"])
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def test_answers_are_read_back_and_other_sites_queries_refused(ws, files, tmp_path):
    submit(ws, [upload(files, "1.csv", "1\n")], "01", report(finding("Q-A"), finding("Q-B")), now=DAY1)
    submit(ws, [upload(files, "2.csv", "2\n")], "02", report(finding("Q-Z", site="02"), site="02"),
              now=DAY1)
    book = answered_workbook(tmp_path / "answers.xlsx", [
        ["Q-A", "01-001", "problem", "Weight was 90 kg, typo corrected", "Dr Rossi", datetime(2025, 3, 10)],
        ["Q-B", "01-001", "problem", None, None, None],
        ["Q-Z", "02-001", "problem", "not ours", "Dr Rossi", "2025-03-10"],
        ["Q-NOPE", "01-009", "problem", "??", "Dr Rossi", "2025-03-10"],
    ])
    result = ws.record_answers(book, "dm.anna", now=DAY15)
    assert result.site == "01"
    assert result.stored == ("Q-A",)
    assert result.refused == (("Q-Z", "belongs to site 02, not 01"), ("Q-NOPE", "unknown query id"))
    assert result.blank == 1
    by_id = {(q["site"], q["query_id"]): q for q in ws.queries()}
    answered = by_id[("01", "Q-A")]
    assert (answered["response"], answered["responded_by"], answered["response_date"],
            answered["response_recorded_by"]) == (
        "Weight was 90 kg, typo corrected", "Dr Rossi", "2025-03-10", "dm.anna")
    assert by_id[("02", "Q-Z")]["response"] is None
    audit = ws.audit()[-1]
    assert (audit["action"], audit["site"], audit["detail"]["stored"]) == (
        "answers-recorded", "01", ["Q-A"])


def test_answers_with_explicit_site(ws, files, tmp_path):
    submit(ws, [upload(files, "1.csv", "1\n")], "01", report(finding("Q-A")), now=DAY1)
    book = answered_workbook(tmp_path / "a.xlsx", [["Q-A", "", "", "fixed", "X", "2025-03-02"]])
    result = ws.record_answers(book, "dm", site="02")
    assert result.stored == () and result.refused == (("Q-A", "belongs to site 01, not 02"),)


def test_workbook_without_queries_sheet_is_a_clear_error(ws, tmp_path):
    book = openpyxl.Workbook()
    book.active.title = "Other"
    book.save(tmp_path / "x.xlsx")
    with pytest.raises(TrialkitError, match="has no 'Queries' sheet"):
        ws.record_answers(tmp_path / "x.xlsx", "dm")


# -- audit log and integrity ----------------------------------------------------------------------


def test_audit_log_cannot_be_updated_or_deleted(ws, files):
    submit(ws, [upload(files, "1.csv", "1\n")], "01", report(), now=DAY1)
    with sqlite3.connect(ws.path / LEDGER_FILE) as connection:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            connection.execute("UPDATE audit SET operator = 'someone else'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            connection.execute("DELETE FROM audit")
        with pytest.raises(sqlite3.IntegrityError, match="cannot be changed"):
            connection.execute("UPDATE submissions SET report_json = '{}'")
        with pytest.raises(sqlite3.IntegrityError, match="cannot be deleted"):
            connection.execute("DELETE FROM submissions")
    assert [a["action"] for a in ws.audit()] == ["workspace-created", "submitted"]
    assert ws.audit()[-1]["detail"]["status"] == "accepted"


def _submit_in_process(workspace: str, site: str, folder: str) -> int:
    from trialkit.ledger import open_workspace as reopen

    path = Path(folder) / f"site{site}.csv"
    path.write_text(f"data of site {site}\n" * 1000)
    findings = [finding(f"Q-{site}", site=site)] if site == "02" else []
    return reopen(workspace).submit([path], site, report(*findings, site=site), records=recs()).id


def test_concurrent_submissions_from_four_processes(ws, files):
    sites = ["01", "02", "03", "04"]
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        ids = pool.starmap(_submit_in_process, [(str(ws.path), s, str(files)) for s in sites])
    assert sorted(ids) == [1, 2, 3, 4]
    log = ws.log()
    assert sorted(s["site"] for s in log) == sites
    assert {s["site"]: s["status"] for s in log}["02"] == "rejected"
    assert sorted(ws.current_submissions()) == ["01", "03", "04"]
    assert ws.integrity_check() == "ok"
    assert [a["seq"] for a in ws.audit()] == [1, 2, 3, 4, 5]


def test_orphaned_archive_file_is_harmless(ws, files, monkeypatch):
    path = upload(files, "a.csv", "x\n")

    def crash(*args, **kwargs):
        raise RuntimeError("power cut")

    monkeypatch.setattr("trialkit.lifecycle.track_queries", crash)
    with pytest.raises(RuntimeError):
        submit(ws, [path], "01", report(finding("Q-A")))
    assert ws.log() == [] and ws.queries() == []
    assert [a["action"] for a in ws.audit()] == ["workspace-created"]
    monkeypatch.undo()
    sub = submit(ws, [path], "01", report())  # the orphan is reused, not a problem
    assert os.path.exists(ws.path / sub.files[0].archive_path)


def test_held_submission_cannot_be_accepted_after_newer_data(ws, files):
    old = upload(files, "old.csv", "old\n")
    submit(ws, [old], "01", report(finding("Q-W", "warning")), now=DAY1)
    submit(ws, [upload(files, "new.csv", "new\n")], "01", report(), now=DAY8)
    with pytest.raises(UsageError, match="has sent newer data since"):
        submit(ws, [old], "01", report(finding("Q-W", "warning")), accept_warnings=True, now=DAY15)
    assert ws.current_submissions()["01"].id == 2
    assert [s["status"] for s in ws.log()] == ["held", "accepted"]


# -- per-form currency, removals and the audit chain (issue 11) -----------------------------------


VS_TWO = {"VS": [{"SUBJID": "01-001", "VISIT": "W4", "WEIGHT": 20}, {"SUBJID": "01-002", "VISIT": "W4", "WEIGHT": 21}]}


def test_no_recognised_form_is_rejected_whatever_is_acknowledged(ws, files):
    path = upload(files, "notes.csv", "x,y\n1,2\n")
    sub = submit(ws, [path], "01", report(finding("W", "warning")), records=SubmissionRecords(),
                 accept_warnings=True, accept_removals=True, now=DAY1)
    assert (sub.status, sub.is_current, sub.counts["error"]) == ("rejected", False, 1)
    assert [f.code for f in sub.report.findings if f.severity.value == "error"] == ["LEDGER-NO-FORM"]
    assert ws.current_forms() == {}


def test_records_that_disappear_hold_the_submission_until_removals_are_accepted(ws, files):
    submit(ws, [upload(files, "1.csv", "1\n")], "01", report(), records=recs(**VS_TWO), now=DAY1)
    only_one = recs(VS=[VS_TWO["VS"][0]])
    path = upload(files, "2.csv", "2\n")
    held = submit(ws, [path], "01", report(), records=only_one, now=DAY8)
    assert (held.status, held.is_current) == ("held", False)
    (removal,) = held.removals
    assert (removal.code, removal.form, removal.value, removal.evidence["keys"]) == (
        "LEDGER-REMOVED-RECORDS", "VS", "1", ['["01-002","W4",1]'])
    assert removal.evidence["subjects"] == ["01-002"] and "01-002 · W4" in removal.message
    assert held.changes["VS"] == {"added": 0, "removed": 1, "changed": 0, "unchanged": 1, "against": 1}
    # accept_warnings is not accept_removals
    again = submit(ws, [path], "01", report(), records=only_one, accept_warnings=True, now=DAY8)
    assert (again.duplicate, again.status) == (True, "held")
    accepted = submit(ws, [path], "01", report(), records=only_one, accept_removals=True, operator="dm.bob",
                      now=DAY15)
    assert (accepted.id, accepted.status, accepted.action, accepted.acknowledged_by) == (
        2, "accepted-with-warnings", "removals-accepted", "dm.bob")
    assert ws.current_forms() == {"01": {"VS": 2}}
    assert ws.audit()[-1]["detail"]["removals"] == {"VS": 1}


def test_a_changed_record_is_no_removal(ws, files):
    submit(ws, [upload(files, "1.csv", "1\n")], "01", report(), records=recs(**VS_TWO), now=DAY1)
    changed = recs(VS=[VS_TWO["VS"][0], dict(VS_TWO["VS"][1], WEIGHT=22)])
    sub = submit(ws, [upload(files, "2.csv", "2\n")], "01", report(), records=changed, now=DAY8)
    assert (sub.status, sub.changes["VS"]["changed"], sub.removals) == ("accepted", 1, [])


def test_an_upload_moves_only_the_pointers_of_the_forms_it_holds(ws, files):
    one = submit(ws, [upload(files, "1.csv", "1\n")], "01", report(),
                 records=recs(DM=[{"SUBJID": "01-001", "SEX": "F"}], **VS_TWO), now=DAY1)
    two = submit(ws, [upload(files, "2.csv", "2\n")], "01", report(),
                 records=recs(AE=[{"SUBJID": "01-001", "AETERM": "Rash"}]), now=DAY8)
    assert ws.current_forms() == {"01": {"AE": two.id, "DM": one.id, "VS": one.id}}
    log = {s["id"]: s for s in ws.log()}
    assert (log[1]["current"], log[1]["current_forms"], log[1]["superseded_by"]) == (True, ["DM", "VS"], None)
    assert ws.current_submissions()["01"].id == two.id  # the site's latest current submission
    three = submit(ws, [upload(files, "3.csv", "3\n")], "01", report(),
                   records=recs(DM=[{"SUBJID": "01-001", "SEX": "M"}], **VS_TWO), now=DAY15)
    assert ws.submission(one.id).superseded_by == three.id and not ws.submission(one.id).is_current


def test_queries_of_forms_a_submission_does_not_hold_are_not_resolved(ws, files):
    submit(ws, [upload(files, "1.csv", "1\n")], "01", report(finding("Q-VS", form="VS")), now=DAY1)
    ae_only = recs(AE=[{"SUBJID": "01-001", "AETERM": "Rash"}])
    sub = submit(ws, [upload(files, "2.csv", "2\n")], "01", report(), records=ae_only, now=DAY8)
    assert sub.queries.resolved == ()
    vs_again = submit(ws, [upload(files, "3.csv", "3\n")], "01", report(), now=DAY15)
    assert vs_again.queries.resolved == ("Q-VS",)


def test_every_audit_line_is_chained_to_the_one_before(ws, files):
    from trialkit.ledger import AUDIT_GENESIS, chain_hash

    submit(ws, [upload(files, "1.csv", "1\n")], "01", report(), now=DAY1)
    ws.record_event("pool", detail={"out": "x"})
    with sqlite3.connect(ws.path / LEDGER_FILE) as connection:
        connection.row_factory = sqlite3.Row
        lines = connection.execute("SELECT * FROM audit ORDER BY seq").fetchall()
    previous = AUDIT_GENESIS
    for line in lines:
        assert line["chain"] == chain_hash(previous, line)
        previous = line["chain"]
    assert len({line["chain"] for line in lines}) == len(lines) == 3


def test_a_file_goes_into_an_existing_read_only_archive_folder(ws, files):
    import hashlib

    path = upload(files, "a.csv", "first\n")
    prefix = hashlib.sha256(path.read_bytes()).hexdigest()[:2]
    folder = ws.path / "archive" / "sha256" / prefix
    folder.parent.chmod(0o755)
    folder.mkdir()
    folder.chmod(0o555)
    folder.parent.chmod(0o555)
    sub = submit(ws, [path], "01", report(), now=DAY1)
    archived = ws.path / sub.files[0].archive_path
    assert archived.parent == folder and archived.read_bytes() == b"first\n"
    assert [stat.S_IMODE(p.stat().st_mode) for p in (folder.parent, folder, archived)] == [0o555, 0o555, 0o444]


@pytest.mark.parametrize("label", ["x" * 101, "a b", "../x", "", ".hidden", "é"])
def test_a_freeze_label_that_cannot_name_a_folder_is_refused_before_anything_is_recorded(ws, files, label):
    submit(ws, [upload(files, "1.csv", "1\n")], "01", report(), now=DAY1)
    before = ws.audit()
    with pytest.raises(UsageError, match="freeze label"):
        ws.freeze(label)
    assert ws.audit() == before


def test_the_freeze_keeps_each_sites_forms(ws, files):
    submit(ws, [upload(files, "1.csv", "1\n")], "01", report(), records=recs(**VS_TWO), now=DAY1)
    submit(ws, [upload(files, "2.csv", "2\n")], "01", report(), records=recs(AE=[{"SUBJID": "01-001"}]), now=DAY8)
    frozen = ws.freeze("lock")
    assert frozen["forms"] == {"01": {"AE": 2, "VS": 1}} and frozen["submissions"] == {"01": 2}
    submit(ws, [upload(files, "3.csv", "3\n")], "01", report(), records=recs(**VS_TWO, AE=[{"SUBJID": "01-001"}]),
           now=DAY15)
    assert ws.frozen_forms("lock") == {"01": {"AE": 2, "VS": 1}}
