"""Names typed by users cannot write outside the workspace or the chosen output (path traversal).

Site ids, sheet (form) names, upload file names and query ids are all attacker-controlled text.
Each test records every file under a sandbox folder before and after, and asserts that nothing was
created outside the workspace and the output the user chose.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from openpyxl import Workbook

from tests.upload_builder import write_upload
from trialkit.cli import cli
from trialkit.errors import UsageError
from trialkit.importers.reader import import_files
from trialkit.ledger import init_workspace
from trialkit.validate import validate

DM = {"SITEID": "01", "SUBJID": "01-001", "ICDAT": dt.date(2024, 1, 2), "BRTHYM": "2012-04", "SEX": "F"}


def _files(root: Path) -> set[Path]:
    return {Path(folder, name) for folder, _, names in os.walk(root) for name in names}


@pytest.fixture
def sandbox(tmp_path):
    """``tmp_path/sandbox/a/b`` is where the user works; ``../../`` from there is still inside tmp_path."""
    work = tmp_path / "sandbox" / "a" / "b"
    work.mkdir(parents=True)
    return work


def _outside(tmp_path: Path, before: set[Path], *allowed: Path) -> list[Path]:
    new = _files(tmp_path) - before
    return sorted(p for p in new if not any(p == a or a in p.parents for a in allowed))


@pytest.mark.parametrize("site", ["../../x", "..", "01/../../x", "/etc", "01\\..\\x", "01\x00"])
def test_site_id_cannot_name_a_path(tmp_path, sandbox, study, site):
    ws = init_workspace(sandbox / "ws", study_id=study.id)
    upload = write_upload(study, sandbox / "site01.xlsx", {"DM": [DM]})
    before = _files(tmp_path)
    with pytest.raises(UsageError):
        ws.check_site(site)
    with pytest.raises(UsageError):
        ws.submit([upload], site, validate(study, import_files([upload], study)))
    result = CliRunner().invoke(cli, ["submit", str(upload), "--site", site, "--workspace", str(ws.path)])
    assert result.exit_code == 2, result.output
    assert _files(tmp_path) == before
    assert ws.log() == []


def test_sheet_named_like_a_path_writes_nothing_outside(tmp_path, sandbox, study):
    book = Workbook()
    sheet = book.active
    sheet.title = "DM"
    sheet.append(list(DM))
    sheet.append(["01", "01-001", dt.datetime(2024, 1, 2), "2012-04", "F"])
    book.create_sheet("etc").append(["x"])
    path = sandbox / "site01.xlsx"
    book.save(path)
    # openpyxl refuses '/' in a sheet title; a crafted workbook has it anyway.
    import zipfile

    with zipfile.ZipFile(path) as archive:
        parts = {i.filename: archive.read(i) for i in archive.infolist()}
    parts["xl/workbook.xml"] = parts["xl/workbook.xml"].replace(b'name="etc"', b'name="../../etc"')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    ws = init_workspace(sandbox / "ws", study_id=study.id)
    before = _files(tmp_path)
    imported = import_files([path], study, site="01", form=None)
    assert "../../etc" in [t["name"] for f in imported.files for t in f["tables"]]
    out = sandbox / "report.xlsx"
    result = CliRunner().invoke(cli, ["validate", str(path), "--site", "01", "-f", "xlsx", "-o", str(out)])
    assert result.exit_code in (0, 1), result.output
    result = CliRunner().invoke(cli, ["submit", str(path), "--site", "01", "--workspace", str(ws.path),
                                      "--accept-warnings"])
    assert result.exit_code in (0, 1), result.output
    assert _outside(tmp_path, before, ws.path, out) == []
    assert not (tmp_path / "sandbox" / "etc").exists() and not (tmp_path / "etc").exists()


def test_upload_named_like_a_path_is_archived_by_content(tmp_path, sandbox, study):
    (sandbox / "x").mkdir()
    ws = init_workspace(sandbox / "ws", study_id=study.id)
    real = write_upload(study, sandbox / "evil.xlsx", {"DM": [DM]})
    traversing = sandbox / "x" / ".." / ".." / "b" / "evil.xlsx"  # the same file, named through '..'
    assert traversing.resolve() == real.resolve()
    before = _files(tmp_path)
    report = validate(study, import_files([traversing], study, site="01"), site="01")
    submission = ws.submit([traversing], "01", report, accept_warnings=True)
    assert [f.original_name for f in submission.files] == ["evil.xlsx"]
    archived = ws.path / submission.files[0].archive_path
    assert archived.parent.parent == ws.path / "archive" / "sha256"
    assert _outside(tmp_path, before, ws.path) == []


def test_pool_reimport_keeps_a_crafted_original_name_in_its_scratch_folder(tmp_path, sandbox, study):
    """The ledger's original_name is only ever used as a bare file name (``Path(name).name``)."""
    from trialkit.pool import import_submission

    ws = init_workspace(sandbox / "ws", study_id=study.id)
    upload = write_upload(study, sandbox / "site01.xlsx", {"DM": [DM]})
    report = validate(study, import_files([upload], study, site="01"), site="01")
    real = ws.submit([upload], "01", report, accept_warnings=True)
    crafted = SimpleNamespace(id=real.id, site="01", files=[
        SimpleNamespace(sha256=real.files[0].sha256, original_name="../../../evil.xlsx"),
        SimpleNamespace(sha256=real.files[0].sha256, original_name="/tmp/abs-evil.xlsx"),
    ])
    before = _files(tmp_path)
    forms = import_submission(ws, crafted, study)
    assert len(forms["DM"]) == 2
    assert _outside(tmp_path, before) == []
    assert not Path("/tmp/abs-evil.xlsx").exists()


def test_crafted_query_ids_in_an_answers_workbook_write_nothing(tmp_path, sandbox, study):
    ws = init_workspace(sandbox / "ws", study_id=study.id)
    upload = write_upload(study, sandbox / "site01.xlsx", {"DM": [dict(DM, SEX="Q")]})
    report = validate(study, import_files([upload], study, site="01"), site="01")
    ws.submit([upload], "01", report, accept_warnings=True)
    known = ws.queries(site="01", status="all")[0]["query_id"]
    book = Workbook()
    sheet = book.active
    sheet.title = "Queries"
    sheet.append(["QUERY_ID", "SITE_RESPONSE", "RESPONDED_BY", "RESPONSE_DATE"])
    crafted = ["../../etc/passwd", "/tmp/evil", "Q-1' OR '1'='1", known + "/../x"]
    for qid in crafted:
        sheet.append([qid, "answer", "site", "2025-01-01"])
    sheet.append([known, "corrected", "site", "2025-01-01"])
    answers = sandbox / "answers.xlsx"
    book.save(answers)
    before = _files(tmp_path)
    result = ws.record_answers(answers, "dm", site="01")
    assert result.stored == (known,)
    assert sorted(q for q, _ in result.refused) == sorted(crafted)
    assert _outside(tmp_path, before, ws.path) == []
    rows = {q["query_id"] for q in ws.queries(site="01", status="all")}
    assert rows == {known}


def test_query_workbooks_stay_next_to_the_chosen_output(tmp_path, sandbox, study):
    ws = init_workspace(sandbox / "ws", study_id=study.id)
    upload = write_upload(study, sandbox / "site01.xlsx", {"DM": [dict(DM, SEX="Q")]})
    report = validate(study, import_files([upload], study, site="01"), site="01")
    ws.submit([upload], "01", report, accept_warnings=True)
    out_dir = sandbox / "out"
    out_dir.mkdir()
    before = _files(tmp_path)
    result = CliRunner().invoke(cli, ["queries", "--workspace", str(ws.path), "-o", str(out_dir / "q.xlsx"), "-q"])
    assert result.exit_code == 0, result.output
    new = _files(tmp_path) - before
    assert new and all(p.parent == out_dir for p in new if ws.path not in p.parents)
