"""``trialkit verify`` and the pool's refusal: the archive, the audit chain and the current data agree.

Issue 11 found that an archived file replaced in place was pooled without a check (the manifest still
quoted the original sha256); that with ``DROP TRIGGER`` the audit log could be edited, and that
``UPDATE current SET submission_id=<a rejected one>`` worked with no trigger touched — and nothing
noticed. And a re-import from the archive that failed (a limit, a corrupted file) simply left the
form out of the pool: ADSL with 0 rows, exit 0. Each is reproduced here; ``verify`` names the
problem (exit 1) and ``pool`` refuses (exit 3) leaving the previous output complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from trialkit.cli import cli
from trialkit.ledger import LEDGER_FILE, open_workspace
from trialkit.verify import verify

from .site_data import subjects, workbook

CUT = "2024-04-12"


def run(*args: str, expect: int | None = None, env: dict[str, str] | None = None):
    result = CliRunner().invoke(cli, list(args), env=env)
    if expect is not None:
        assert result.exit_code == expect, (args, result.output, result.exception)
    return result


def tree(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory, study):
    """Sites 01 and 02 accepted, a rejected upload of site 01, a freeze and a complete pool."""
    tmp_path = tmp_path_factory.mktemp("verify")
    ws = tmp_path / "ws"
    run("init", str(ws), "-q", expect=0)
    for site in ("01", "02"):
        upload = workbook(study, tmp_path / f"site{site}.xlsx", subjects(site, [1, 2]))
        run("submit", str(upload), "--site", site, "--workspace", str(ws), "--accept-warnings", "--data-cut", CUT,
            "-q", expect=0)
    bad = subjects("01", [1, 2])
    bad["VS"][0]["WEIGHT"] = 900
    run("submit", str(workbook(study, tmp_path / "site01-bad.xlsx", bad)), "--site", "01", "--workspace", str(ws),
        "--data-cut", CUT, "-q", expect=1)
    run("freeze", "--label", "lock", "--workspace", str(ws), expect=0)
    run("pool", "--workspace", str(ws), "-o", str(tmp_path / "pooled"), "-q", expect=0)
    return tmp_path


@pytest.fixture
def trial(built, tmp_path):
    """A fresh copy of the built workspace and its pooled output for each test to damage."""
    for name in ("ws", "pooled", "site01.xlsx", "site02.xlsx"):
        source = built / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, symlinks=True)
        else:
            shutil.copy2(source, tmp_path / name)
    return tmp_path


def problems(trial: Path) -> list[dict]:
    result = run("verify", "--workspace", str(trial / "ws"), "-f", "json")
    data = json.loads(result.stdout)
    assert result.exit_code == (1 if data["problems"] else 0)
    return data["problems"]


def pool_refuses(trial: Path, says: str, *extra: str) -> None:
    before = tree(trial / "pooled")
    result = run("pool", "--workspace", str(trial / "ws"), "-o", str(trial / "pooled"), "-q", *extra)
    assert result.exit_code == 3, result.output
    assert says in result.stderr, result.stderr
    assert tree(trial / "pooled") == before


def ledger(trial: Path) -> sqlite3.Connection:
    return sqlite3.connect(trial / "ws" / LEDGER_FILE, isolation_level=None)


def test_an_intact_workspace_verifies(trial):
    result = run("verify", "--workspace", str(trial / "ws"), expect=0)
    assert "intact" in result.stdout
    data = json.loads(run("verify", "--workspace", str(trial / "ws"), "-f", "json", expect=0).stdout)
    assert data["problems"] == [] and data["checked"]["archive_files"] == 3
    assert data["checked"]["audit_lines"] == len(open_workspace(trial / "ws").audit())
    assert data == verify(open_workspace(trial / "ws")).to_dict()


def test_archive_files_and_folders_are_read_only(trial):
    archive = trial / "ws" / "archive"
    for path in archive.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o555 if path.is_dir() else 0o444), (path, oct(mode))
    assert stat.S_IMODE(archive.stat().st_mode) == 0o555


def test_an_archived_file_replaced_in_place_is_found_and_not_pooled(trial):
    archived = next(p for p in (trial / "ws" / "archive").rglob("*") if p.is_file())
    archived.parent.chmod(0o755)
    archived.chmod(0o644)
    archived.write_bytes(archived.read_bytes()[:-10] + b"0123456789")
    found = problems(trial)
    assert [p["code"] for p in found] == ["VERIFY-ARCHIVE-CHANGED", "VERIFY-ARCHIVE-WRITABLE"]
    assert archived.name in found[0]["message"]
    data = json.loads(run("verify", "--workspace", str(trial / "ws"), "-f", "json").stdout)
    assert [w["code"] for w in data["warnings"]] == ["VERIFY-ARCHIVE-FOLDER-WRITABLE"]
    pool_refuses(trial, "VERIFY-ARCHIVE-CHANGED")
    pool_refuses(trial, "VERIFY-ARCHIVE-CHANGED", "--freeze", "lock")


def test_a_missing_archive_file_is_found(trial):
    archived = next(p for p in (trial / "ws" / "archive").rglob("*") if p.is_file())
    archived.parent.chmod(0o755)
    archived.unlink()
    archived.parent.chmod(0o555)
    assert [p["code"] for p in problems(trial)] == ["VERIFY-ARCHIVE-MISSING"]


def test_an_audit_line_edited_around_the_trigger_breaks_the_chain(trial):
    with ledger(trial) as connection:
        connection.execute("DROP TRIGGER audit_no_update")
        connection.execute("UPDATE audit SET operator = 'someone.else' WHERE seq = 2")
    found = problems(trial)
    assert [p["code"] for p in found] == ["VERIFY-AUDIT-CHAIN"]
    assert "line 2" in found[0]["message"]
    pool_refuses(trial, "VERIFY-AUDIT-CHAIN")


def test_a_deleted_audit_line_breaks_the_chain(trial):
    with ledger(trial) as connection:
        connection.execute("DROP TRIGGER audit_no_delete")
        connection.execute("DELETE FROM audit WHERE seq = 3")
    codes = [p["code"] for p in problems(trial)]
    assert "VERIFY-AUDIT-GAP" in codes and "VERIFY-AUDIT-CHAIN" in codes


def test_reordered_audit_lines_break_the_chain(trial):
    with ledger(trial) as connection:
        connection.execute("DROP TRIGGER audit_no_update")
        rows = connection.execute("SELECT seq, detail, chain FROM audit WHERE seq IN (2, 3) ORDER BY seq").fetchall()
        connection.execute("UPDATE audit SET detail = ?, chain = ? WHERE seq = 2", rows[1][1:])
        connection.execute("UPDATE audit SET detail = ?, chain = ? WHERE seq = 3", rows[0][1:])
    assert "VERIFY-AUDIT-CHAIN" in [p["code"] for p in problems(trial)]


def test_a_current_pointer_moved_to_a_rejected_submission_is_found(trial):
    with ledger(trial) as connection:  # no trigger needs touching for this one
        connection.execute("UPDATE current_forms SET submission_id = 3 WHERE site = '01' AND form = 'VS'")
    found = problems(trial)
    assert {p["code"] for p in found} == {"VERIFY-POINTER"}
    assert any("rejected" in p["message"] and "VS" in p["message"] for p in found)
    pool_refuses(trial, "VERIFY-POINTER")


def test_a_status_changed_behind_the_audit_log_is_found(trial):
    with ledger(trial) as connection:
        connection.execute("UPDATE submissions SET status = 'accepted' WHERE id = 3")
    found = problems(trial)
    assert [p["code"] for p in found] == ["VERIFY-STATUS"]
    assert "submission 3" in found[0]["message"]


def test_a_freeze_that_disagrees_with_the_audit_log_is_found(trial):
    with ledger(trial) as connection:
        connection.execute("DROP TRIGGER audit_no_update")
        seq, detail = connection.execute("SELECT seq, detail FROM audit WHERE action = 'freeze'").fetchone()
        changed = json.loads(detail)
        changed["forms"]["01"]["VS"] = 3
        connection.execute("UPDATE audit SET detail = ? WHERE seq = ?", (json.dumps(changed, sort_keys=True), seq))
    codes = {p["code"] for p in problems(trial)}
    assert codes == {"VERIFY-AUDIT-CHAIN", "VERIFY-FREEZE"}


def test_a_reimport_with_an_error_stops_the_pool_naming_site_submission_form_and_file(trial):
    before = tree(trial / "pooled")
    result = run("pool", "--workspace", str(trial / "ws"), "-o", str(trial / "pooled"), "-q",
                 env={"TRIALKIT_MAX_ROWS": "5"})
    assert result.exit_code == 3, result.output
    assert "site 01" in result.stderr and "submission 1" in result.stderr and "site01.xlsx" in result.stderr
    assert "IMP-LIMIT-ROWS" in result.stderr
    assert tree(trial / "pooled") == before


def test_a_reimport_with_other_row_counts_than_accepted_stops_the_pool(trial):
    with ledger(trial) as connection:
        connection.execute("DROP TRIGGER submission_forms_no_update")
        connection.execute("UPDATE submission_forms SET n_rows = 11 WHERE submission_id = 2 AND form = 'LB'")
    pool_refuses(trial, "site 02, submission 2, form LB (site02.xlsx): 20 rows re-imported, 11 accepted")


def test_the_freeze_rebuilds_exactly_or_says_why_not(trial):
    out = trial / "frozen"
    run("pool", "--workspace", str(trial / "ws"), "--freeze", "lock", "-o", str(out), "-q", expect=0)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["freeze"] == "lock" and manifest["forms"]["01"]["VS"]["submission"] == 1
    # A freeze rebuilt after one of its files was corrupted: refused, with the reason.
    archived = Path(trial / "ws" / open_workspace(trial / "ws").submission(2).files[0].archive_path)
    archived.parent.chmod(0o755)
    os.chmod(archived, 0o644)
    archived.write_bytes(b"PK\x03\x04 not a workbook any more")
    result = run("pool", "--workspace", str(trial / "ws"), "--freeze", "lock", "-o", str(out), "-q")
    assert result.exit_code == 3 and "VERIFY-ARCHIVE-CHANGED" in result.stderr
    assert json.loads((out / "manifest.json").read_text()) == manifest


def test_a_study_amendment_verifies_and_a_changed_definition_copy_is_found(trial, study):
    from trialkit.study.binding import current_binding, resolve_study

    amended = trial / "amended-study"
    shutil.copytree(study.path, amended, ignore=shutil.ignore_patterns("__pycache__"))
    toml = amended / "study.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + "\n# another definition of the same study\n", encoding="utf-8")
    ws = open_workspace(trial / "ws")
    resolve_study(ws, amended, operator="dm")
    assert ws.audit()[-1]["action"] == "study-amended"
    data = json.loads(run("verify", "--workspace", str(trial / "ws"), "-f", "json", expect=0).stdout)
    assert data["checked"]["study_definitions"] == 2 and data["warnings"] == []
    # the workspace's copy of the amended definition edited behind trialkit's back
    copy = trial / "ws" / current_binding(ws)["copy"]
    (copy / "study.toml").chmod(0o644)
    (copy / "study.toml").write_text(toml.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    found = problems(trial)
    assert [p["code"] for p in found] == ["VERIFY-STUDY"]
    assert current_binding(ws)["copy"] in found[0]["message"]
    pool_refuses(trial, "VERIFY-STUDY")


def test_a_missing_definition_copy_is_a_warning(trial):
    from trialkit.study.binding import current_binding

    copy = trial / "ws" / current_binding(open_workspace(trial / "ws"))["copy"]
    for path in copy.rglob("*"):
        if path.is_dir():
            path.chmod(0o755)
    copy.chmod(0o755)
    shutil.rmtree(copy)
    data = json.loads(run("verify", "--workspace", str(trial / "ws"), "-f", "json", expect=0).stdout)
    assert [w["code"] for w in data["warnings"]] == ["VERIFY-STUDY-COPY-MISSING"]


def test_a_ledger_restored_from_an_older_backup_is_noticed(trial, study):
    """Restoring ledger.sqlite from a backup taken before the last submission loses that submission
    from the ledger while its upload stays in the archive: verify names the file (a warning: a submit
    killed between archiving and recording leaves the same trace)."""
    ws = trial / "ws"
    backup = trial / "ledger-backup.sqlite"
    shutil.copy2(ws / LEDGER_FILE, backup)
    later = subjects("02", [1, 2, 3])
    upload = workbook(study, trial / "site02-later.xlsx", later)
    run("submit", str(upload), "--site", "02", "--workspace", str(ws), "--accept-warnings", "--data-cut", CUT, "-q",
        expect=0)
    data = json.loads(run("verify", "--workspace", str(ws), "-f", "json", expect=0).stdout)
    assert [w["code"] for w in data["warnings"]] == []
    shutil.copy2(backup, ws / LEDGER_FILE)  # the restore
    data = json.loads(run("verify", "--workspace", str(ws), "-f", "json", expect=0).stdout)
    digest = hashlib.sha256(upload.read_bytes()).hexdigest()
    (warning,) = data["warnings"]
    assert warning["code"] == "VERIFY-ARCHIVE-UNRECORDED" and digest in warning["path"]
    assert "restored from an older backup" in warning["message"]
    text = run("verify", "--workspace", str(ws)).stdout
    assert "VERIFY-ARCHIVE-UNRECORDED" in text
