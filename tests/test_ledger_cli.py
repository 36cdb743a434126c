"""The ledger commands through the CLI: init, submit, queries, log — output, files and exit codes.

``submit`` runs the real importer and validator on small CSV uploads of the fake study (site A1);
the multi-site query workbooks use the bundled study with a ledger filled from literal reports.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from trialkit.cli import cli
from trialkit.findings import Finding, Report
from trialkit.ledger import ENV_WORKSPACE, init_workspace, open_workspace
from trialkit.study import ENV_STUDY

FAKE_STUDY = Path(__file__).resolve().parent / "fake_study"

PET_TWO_ERRORS = "PETID,COLOUR\nP1,R\nP2,X\nP3,\n"  # X not in codelist; P3 colour missing
PET_ONE_FIXED = "PETID,COLOUR\nP1,R\nP2,G\nP3,Z\n"  # X fixed, P3 now Z (new), empty gone
PET_CLEAN = "PETID,COLOUR\nP1,R\nP2,G\n"
MEAL_CLEAN = "PETID,MEALDAT,GRAMS\nP1,2025-01-02,60\n"


@pytest.fixture
def fake_env(tmp_path, monkeypatch):
    """A fake-study workspace, found through the environment; returns (workspace, upload folder)."""
    monkeypatch.setenv(ENV_STUDY, str(FAKE_STUDY))
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "ws")])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv(ENV_WORKSPACE, str(tmp_path / "ws"))
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    return open_workspace(tmp_path / "ws"), uploads


def write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


# -- init -----------------------------------------------------------------------------------------


def test_init_creates_a_workspace_and_prints_its_path(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_STUDY, str(FAKE_STUDY))
    result = run("init", str(tmp_path / "ws"))
    assert result.exit_code == 0
    assert result.stdout == f"{(tmp_path / 'ws').resolve()}\n"
    assert "Created a FAKE-01 workspace" in result.stderr
    assert open_workspace(tmp_path / "ws").study_id == "FAKE-01"
    again = run("init", str(tmp_path / "ws"))
    assert again.exit_code == 2
    assert "already a trialkit workspace" in again.stderr


def test_missing_workspace_exits_3_with_the_remedy(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_WORKSPACE, raising=False)
    monkeypatch.chdir(tmp_path)
    result = run("log")
    assert result.exit_code == 3
    assert "no trialkit workspace found" in result.stderr and "trialkit init DIR" in result.stderr


# -- submit ---------------------------------------------------------------------------------------


def test_submit_fix_and_resubmit_tells_the_history_truthfully(fake_env):
    ws, uploads = fake_env
    pet = write(uploads, "PET.csv", PET_TWO_ERRORS)
    meal = write(uploads, "MEAL.csv", MEAL_CLEAN)

    first = run("submit", pet, meal, "--site", "A1", "--note", "March upload", "--operator", "dm.anna")
    assert first.exit_code == 1
    assert first.stdout == (
        "submission 1: site A1, rejected\n"
        "why: rejected: 2 error(s) that are not protocol deviations (CODELIST, REQUIRED) block acceptance\n"
        "findings: 2 error(s), 0 warning(s), 0 info; data cut 2025-01-02 (latest date in the upload)\n"
        "queries: 2 new, 0 still open, 0 resolved, 0 reopened\n"
        "changes: MEAL 1 added, 0 removed, 0 changed; PET 3 added, 0 removed, 0 changed\n"
    )
    assert "Submission 1 rejected: 2 blocking error(s)" in first.stderr

    duplicate = run("submit", pet, meal, "--site", "A1")
    assert duplicate.exit_code == 1
    assert duplicate.stdout.startswith("submission 1: site A1, rejected (duplicate: already submitted")
    assert len(ws.log()) == 1

    write(uploads, "PET.csv", PET_ONE_FIXED)
    second = run("submit", pet, meal, "--site", "A1", "-q")
    assert second.exit_code == 1
    assert second.stdout.splitlines()[3] == "queries: 1 new, 0 still open, 2 resolved, 0 reopened"
    assert second.stderr == ""

    write(uploads, "PET.csv", PET_CLEAN)
    third = run("submit", pet, meal, "--site", "A1", "-f", "json")
    assert third.exit_code == 0
    data = json.loads(third.stdout)
    assert (data["id"], data["status"], data["current"], data["duplicate"]) == (3, "accepted", True, False)
    assert data["queries"]["resolved"] and not data["queries"]["new"]

    listing = run("queries", "-f", "json")
    assert listing.exit_code == 0
    assert json.loads(listing.stdout) == json.loads(json.dumps(ws.queries()))
    assert {q["status"] for q in ws.queries()} == {"resolved"} and len(ws.queries()) == 3

    log = run("log", "-f", "json")
    assert log.exit_code == 0
    assert json.loads(log.stdout) == json.loads(json.dumps({"submissions": ws.log(), "audit": ws.audit()}))
    assert [(s["id"], s["status"], s["current"]) for s in ws.log()] == [
        (1, "rejected", False), (2, "rejected", False), (3, "accepted", True)]
    assert [a["action"] for a in ws.audit()] == [
        "workspace-created", "submitted", "duplicate-ignored", "submitted", "submitted"]
    assert ws.log()[0]["operator"] == "dm.anna" and ws.log()[0]["note"] == "March upload"

    text = run("log")
    assert text.exit_code == 0
    lines = text.stdout.splitlines()
    assert lines[0] == "Site A1"
    assert lines[3].startswith(" * #3") and "accepted" in lines[3]
    assert "duplicate-ignored site A1 submission 1" in text.stdout


def test_warnings_hold_then_accept_warnings_makes_current(fake_env):
    ws, uploads = fake_env
    files = [write(uploads, "PET.csv", PET_CLEAN), write(uploads, "MEAL.csv", MEAL_CLEAN),
             write(uploads, "notes.csv", "A,B\n1,2\n")]  # matches no form: a warning
    held = run("submit", *files, "--site", "A1")
    assert held.exit_code == 1
    assert held.stdout.startswith("submission 1: site A1, held\n")
    assert "--accept-warnings" in held.stderr
    assert ws.current_submissions() == {}
    accepted = run("submit", *files, "--site", "A1", "--accept-warnings")
    assert accepted.exit_code == 0
    assert accepted.stdout.startswith("submission 1: site A1, accepted-with-warnings\n")
    assert ws.current_submissions()["A1"].id == 1
    assert len(ws.log()) == 1


def test_archived_upload_is_byte_identical(fake_env):
    ws, uploads = fake_env
    pet = write(uploads, "PET.csv", PET_CLEAN)
    assert run("submit", pet, "--site", "A1", "-q").exit_code in (0, 1)
    stored = ws.log()[0]["files"][0]
    assert (ws.path / stored["archive_path"]).read_bytes() == Path(pet).read_bytes()


@pytest.mark.parametrize("site", ["../x", "ZZ"])
def test_submit_refuses_a_site_the_study_does_not_have(fake_env, site):
    ws, uploads = fake_env
    result = run("submit", write(uploads, "PET.csv", PET_CLEAN), "--site", site)
    assert result.exit_code == 2
    assert "unknown site" in result.stderr
    assert ws.log() == []


def test_submit_of_a_missing_file_is_a_usage_error(fake_env, tmp_path):
    result = run("submit", str(tmp_path / "nope.csv"), "--site", "A1")
    assert result.exit_code == 2


def test_submit_refuses_another_studys_workspace(tmp_path, monkeypatch):
    init_workspace(tmp_path / "ws", study_id="ANK-SJIA-01")
    monkeypatch.setenv(ENV_STUDY, str(FAKE_STUDY))
    pet = write(tmp_path, "PET.csv", PET_CLEAN)
    result = run("submit", pet, "--site", "A1", "--workspace", str(tmp_path / "ws"))
    assert result.exit_code == 2
    assert "is for study ANK-SJIA-01, not FAKE-01" in result.stderr


# -- queries: listing, workbooks and answers ------------------------------------------------------


def _finding(qid: str, site: str) -> Finding:
    return Finding(code="RANGE", severity="error", category="range", message=f"=bad {qid}", site=site,
                   subject=f"{site}-001", form="VS", visit="W4", variable="WEIGHT", value="900",
                   query_id=qid)


@pytest.fixture
def two_sites(tmp_path, monkeypatch):
    """A bundled-study workspace with open queries at sites 01 and 02."""
    monkeypatch.delenv(ENV_STUDY, raising=False)
    ws = init_workspace(tmp_path / "ws", study_id="ANK-SJIA-01")
    monkeypatch.setenv(ENV_WORKSPACE, str(ws.path))
    when = datetime(2025, 3, 1, tzinfo=UTC)
    for site, qids in (("01", ["Q-A1", "Q-A2"]), ("02", ["Q-B1"])):
        upload = tmp_path / f"site{site}.csv"
        upload.write_text(site)
        report = Report(findings=[_finding(q, site) for q in qids], study_id="ANK-SJIA-01", site=site)
        ws.submit([upload], site, report, now=when)
    return ws


def test_queries_text_and_csv(two_sites):
    text = run("queries", "--site", "1")
    assert text.exit_code == 0
    lines = text.stdout.splitlines()
    assert lines[0].split()[:4] == ["QUERY", "ID", "SITE", "STATUS"]
    assert [line.split()[0] for line in lines[1:]] == ["Q-A1", "Q-A2"]
    assert "3 queries" not in text.stderr and "2 queries (2 open)" in text.stderr
    table = run("queries", "-f", "csv", "--status", "open")
    assert table.exit_code == 0
    rows = table.stdout.splitlines()
    assert rows[0] == ("query_id,site,status,age_days,severity,code,subject,form,visit,variable,value,message,response,"
                       "site_comment,status_by,status_reason")
    assert len(rows) == 4
    assert ",'=bad Q-A1," in rows[1]  # formula-like text neutralised
    assert run("queries", "--status", "resolved").stdout == "No queries.\n"


def test_query_workbooks_one_per_site_and_answers_read_back(two_sites, tmp_path):
    result = run("queries", "-o", str(tmp_path / "q.xlsx"), "-q")
    assert result.exit_code == 0
    books = {}
    for site in ("01", "02"):
        path = tmp_path / f"q_site{site}.xlsx"
        assert path.is_file()
        sheet = openpyxl.load_workbook(path)["Queries"]
        header = [c.value for c in sheet[2]]  # a title above, the labels in the site's language below
        assert sheet.cell(3, header.index("QUERY_ID") + 1).value == "Query"
        ids = [row[header.index("QUERY_ID")] for row in sheet.iter_rows(min_row=4, values_only=True)]
        books[site] = (path, header, sorted(ids))
    assert books["01"][2] == ["Q-A1", "Q-A2"] and books["02"][2] == ["Q-B1"]  # a site sees only its own

    path, header, _ = books["01"]
    book = openpyxl.load_workbook(path)
    sheet = book["Queries"]
    column = {name: header.index(name) + 1 for name in ("QUERY_ID", "SITE_RESPONSE", "RESPONDED_BY",
                                                        "RESPONSE_DATE")}
    for row in range(4, sheet.max_row + 1):
        if sheet.cell(row, column["QUERY_ID"]).value == "Q-A1":
            sheet.cell(row, column["SITE_RESPONSE"]).value = "Typo: weight is 90 kg"
            sheet.cell(row, column["RESPONDED_BY"]).value = "Dr Rossi"
            sheet.cell(row, column["RESPONSE_DATE"]).value = datetime(2025, 3, 5)
    # A row smuggled in with another site's query id is refused, not stored.
    sheet.cell(sheet.max_row + 1, column["QUERY_ID"]).value = "Q-B1"
    sheet.cell(sheet.max_row, column["SITE_RESPONSE"]).value = "answering for site 02"
    book.save(path)

    answers = run("queries", "--answers", str(path), "--operator", "dm.anna")
    assert answers.exit_code == 1
    assert answers.stdout == (
        "site 01: 1 answer(s) stored (1 now answered), 1 refused, 1 row(s) without an answer\n"
        "refused Q-B1: belongs to site 02, not 01\n"
    )
    by_id = {q["query_id"]: q for q in two_sites.queries()}
    assert (by_id["Q-A1"]["response"], by_id["Q-A1"]["responded_by"], by_id["Q-A1"]["response_date"]) == (
        "Typo: weight is 90 kg", "Dr Rossi", "2025-03-05")
    assert by_id["Q-B1"]["response"] is None
    assert two_sites.audit()[-1]["action"] == "answers-recorded"
    assert two_sites.audit()[-1]["operator"] == "dm.anna"


def test_log_for_one_site(two_sites):
    result = run("log", "--site", "02", "-f", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert [s["site"] for s in data["submissions"]] == ["02"]
    assert {a["site"] for a in data["audit"]} == {"02"}
