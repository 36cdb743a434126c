"""Outputs never destroy inputs: every command's ``-o`` is checked by one guard (trialkit.outputs).

Issue 11 found ``trialkit pool --workspace ws -o ws`` deleting ``ledger.sqlite`` and the whole raw
archive (the output set replaces its folder whole), ``-o ws/archive`` deleting the archive, and
``report -o ws/ledger.sqlite`` overwriting the ledger with HTML, exit 0. Each case here must now be
refused with exit code 2 and a message naming the path and what it would have destroyed, and the
workspace must be byte for byte what it was.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from trialkit.cli import cli
from trialkit.outputs import MARKER, OutputRefused, check_output_file, check_output_folder

from .site_data import subjects, workbook

CUT = "2024-04-12"


def run(*args: str, expect: int | None = None):
    result = CliRunner().invoke(cli, list(args))
    if expect is not None:
        assert result.exit_code == expect, (args, result.output, result.exception)
    return result


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its sha256 (the ledger's WAL files left out: reads touch them)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


@pytest.fixture(scope="module")
def trial(tmp_path_factory, study):
    root = tmp_path_factory.mktemp("outputs")
    ws = root / "ws"
    run("init", str(ws), "-q", expect=0)
    upload = workbook(study, root / "site01.xlsx", subjects("01", [1]))
    run("submit", str(upload), "--site", "01", "--workspace", str(ws), "--accept-warnings", "--data-cut", CUT,
        "-q", expect=0)
    run("pool", "--workspace", str(ws), "-q", expect=0)  # ws/pooled: trialkit's own output folder
    return root


def refused(trial: Path, *args: str, says: str) -> str:
    ws = trial / "ws"
    before = snapshot(ws)
    result = run(*args)
    assert result.exit_code == 2, (args, result.output)
    assert says in result.stderr, result.stderr
    assert snapshot(ws) == before
    assert (ws / "ledger.sqlite").read_bytes()[:16] == b"SQLite format 3\x00"
    return result.stderr


@pytest.mark.parametrize(("target", "says"), [
    ("ws", "is the workspace"),
    ("ws/archive", "the raw-upload archive"),
    ("ws/archive/sha256", "the raw-upload archive"),
    (".", "holds the workspace"),
    ("ws/ledger.sqlite", "is a file"),  # click's own check comes first here
])
def test_pool_refuses_an_output_folder_that_would_destroy_the_workspace(trial, target, says):
    out = trial / target
    message = refused(trial, "pool", "--workspace", str(trial / "ws"), "-o", str(out), says=says)
    assert str(out.resolve()) in message or str(out) in message


def test_pool_refuses_a_folder_trialkit_did_not_create(trial):
    theirs = trial / "thesis"
    theirs.mkdir()
    (theirs / "chapter1.docx").write_text("years of work")
    refused(trial, "pool", "--workspace", str(trial / "ws"), "-o", str(theirs), says="trialkit did not create")
    assert (theirs / "chapter1.docx").read_text() == "years of work"


def test_pool_writes_into_a_new_or_empty_folder_and_replaces_its_own_output(trial):
    empty = trial / "empty"
    empty.mkdir()
    run("pool", "--workspace", str(trial / "ws"), "-o", str(empty), "-q", expect=0)
    assert (empty / MARKER).is_file() and (empty / "manifest.json").is_file()
    run("pool", "--workspace", str(trial / "ws"), "-o", str(empty), "-q", expect=0)  # its own: replaced
    run("pool", "--workspace", str(trial / "ws"), "-q", expect=0)  # the default ws/pooled again


@pytest.mark.parametrize(("args", "says"), [
    (("report", "-o", "ws/ledger.sqlite"), "the ledger"),
    (("report", "-o", "site01.xlsx"), "not a file trialkit wrote"),
    (("report", "-o", "ws/report.html"), "inside the workspace"),
    (("report", "-o", "ws/pooled/adsl.csv"), "inside the workspace"),
    (("report", "-o", "ws"), "is a directory"),  # click's own check
    (("queries", "-o", "ws/archive/q.xlsx"), "the raw-upload archive"),
    (("queries", "--site", "01", "-o", "site01.xlsx"), "not a file trialkit wrote"),
    (("template", "-o", "site01.xlsx"), "not a file trialkit wrote"),
    (("template", "-o", "ws/trialkit-workspace.toml"), "the workspace settings"),
    (("dictionary", "-f", "xlsx", "-o", "ws/ledger.sqlite"), "the ledger"),
    (("dictionary", "-f", "csv", "-o", "ws"), "is the workspace"),
    (("dictionary", "-f", "md", "-o", "site01.xlsx"), "not a file trialkit wrote"),
    (("validate", "site01.xlsx", "-f", "xlsx", "-o", "site01.xlsx"), "not a file trialkit wrote"),
    (("validate", "site01.xlsx", "-f", "json", "-o", "ws/ledger.sqlite"), "the ledger"),
    (("diff", "--site", "01", "-f", "xlsx", "-o", "ws/ledger.sqlite"), "the ledger"),
])
def test_every_output_option_refuses_to_destroy_an_input(trial, args, says, monkeypatch):
    monkeypatch.chdir(trial)
    monkeypatch.setenv("TRIALKIT_WORKSPACE", str(trial / "ws"))
    upload = trial / "site01.xlsx"
    before = upload.read_bytes()
    refused(trial, *args, says=says)
    assert upload.read_bytes() == before


def test_demo_refuses_a_workspace_and_a_folder_holding_one(trial):
    refused(trial, "demo", str(trial / "ws"), says="is the workspace")
    refused(trial, "demo", str(trial / "ws" / "demo"), says="inside the workspace")


def test_a_link_to_the_ledger_is_refused(trial):
    link = trial / "innocent.html"
    link.symlink_to(trial / "ws" / "ledger.sqlite")
    refused(trial, "report", "--workspace", str(trial / "ws"), "-o", str(link), says="the ledger")


def test_trialkits_own_files_are_replaced(trial, monkeypatch):
    monkeypatch.chdir(trial)
    for args in (("report", "--workspace", "ws", "-o", "r.html", "-q"),
                 ("template", "-o", "t.xlsx", "-q"),
                 ("dictionary", "-f", "xlsx", "-o", "d.xlsx", "-q"),
                 ("queries", "--workspace", "ws", "--site", "01", "-o", "q.xlsx", "-q")):
        run(*args, expect=0)
        run(*args, expect=0)  # the second run replaces the first run's file


def test_an_over_long_path_is_a_usage_error_not_a_traceback(trial):
    long_name = "x" * 300
    for args in (("pool", "--workspace", str(trial / "ws"), "-o", str(trial / long_name)),
                 ("report", "--workspace", str(trial / "ws"), "-o", str(trial / f"{long_name}.html")),
                 ("report", "--workspace", str(trial / "ws"), "--pooled", str(trial / long_name),
                  "-o", str(trial / "r.html")),
                 ("log", "--workspace", str(trial / long_name)),
                 ("init", str(trial / long_name)),
                 ("dictionary", "-f", "csv", "-o", str(trial / long_name)),
                 ("diff", "--site", "01", "--workspace", str(trial / "ws"), "-f", "csv", "-o",
                  str(trial / f"{long_name}.csv"))):
        result = run(*args)
        assert result.exit_code == 2, result.output
        assert "too long" in result.stderr and result.exception is None or isinstance(result.exception, SystemExit)


def test_the_guard_as_a_library(trial):
    ws = trial / "ws"
    with pytest.raises(OutputRefused, match="is the workspace"):
        check_output_folder(ws, workspace=ws)
    with pytest.raises(OutputRefused, match="holds the workspace"):
        check_output_folder(trial)  # found without being told where the workspace is
    assert check_output_folder(ws / "pooled-lock", workspace=ws) == (ws / "pooled-lock").resolve()
    assert check_output_file(trial / "new.html", kind="html") == (trial / "new.html").resolve()
    folder = trial / "a-folder"
    folder.mkdir(exist_ok=True)
    with pytest.raises(OutputRefused, match="is a folder"):
        check_output_file(folder, kind="html")
    fifo = trial / "pipe"
    if not fifo.exists():
        os.mkfifo(fifo)
    with pytest.raises(OutputRefused, match="not a regular file"):
        check_output_file(fifo, kind="csv")
