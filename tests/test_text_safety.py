"""Hostile names and links: only regular files are read, and user text never forges output.

Issue 11 found a symbolic link to ``/etc/passwd`` followed, archived and made site 02's current
data; a newline in an upload's file name forging lines in ``trialkit log``; and a freeze label over
255 bytes giving a traceback — with the freeze then recorded for good.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from trialkit.cli import cli
from trialkit.importers.reader import import_files
from trialkit.ledger import open_workspace
from trialkit.safefiles import NOT_REGULAR_CODE

from .site_data import subjects, workbook

CUT = "2024-04-12"


def run(*args: str, expect: int | None = None):
    result = CliRunner().invoke(cli, list(args))
    if expect is not None:
        assert result.exit_code == expect, (args, result.output, result.exception)
    return result


@pytest.fixture
def ws(tmp_path):
    run("init", str(tmp_path / "ws"), "-q", expect=0)
    return tmp_path / "ws"


def archived_files(ws: Path) -> list[Path]:
    return [p for p in (ws / "archive").rglob("*") if p.is_file()]


# ------------------------------------------------------------------------------------------------
# Only regular files


@pytest.mark.parametrize("target", ["/etc/passwd", "/etc/shadow"])
def test_a_link_to_a_system_file_is_refused_and_nothing_is_archived(ws, tmp_path, target):
    link = tmp_path / "site02.csv"
    link.symlink_to(target)
    result = run("submit", str(link), "--site", "02", "--workspace", str(ws), "--accept-warnings")
    assert result.exit_code == 2, result.output
    assert "symbolic link" in result.stderr and "regular file" in result.stderr
    assert archived_files(ws) == [] and open_workspace(ws).log() == []
    assert "root:" not in result.output


def test_validate_and_inspect_report_a_link_as_a_file_finding(tmp_path, study):
    link = tmp_path / "site02.csv"
    link.symlink_to("/etc/passwd")
    result = run("validate", str(link), "--site", "02", "-f", "json")
    assert result.exit_code == 1
    findings = json.loads(result.stdout)["findings"]
    assert [(f["code"], f["category"], f["severity"]) for f in findings] == [(NOT_REGULAR_CODE, "file", "error")]
    assert "symbolic link" in findings[0]["message"] and "root:" not in result.stdout
    inspected = run("inspect", str(link), "-f", "json")
    assert inspected.exit_code == 1
    assert [f["code"] for f in json.loads(inspected.stdout)["findings"]] == [NOT_REGULAR_CODE]


def test_a_fifo_a_device_and_a_folder_are_refused_without_blocking(tmp_path, study):
    fifo = tmp_path / "upload.csv"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.xlsx"
    folder.mkdir()
    results = {}

    def read() -> None:
        results["import"] = import_files([fifo, Path("/dev/zero"), folder], study)

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "reading a FIFO blocked"
    findings = results["import"].report.findings
    assert [(f.code, Path(f.file).name) for f in findings] == [
        (NOT_REGULAR_CODE, "upload.csv"), (NOT_REGULAR_CODE, "zero"), (NOT_REGULAR_CODE, "folder.xlsx")]
    assert ["FIFO" in findings[0].message, "device" in findings[1].message,
            "folder" in findings[2].message] == [True, True, True]


def test_submit_refuses_a_fifo_before_archiving_anything(ws, tmp_path):
    fifo = tmp_path / "upload.csv"
    os.mkfifo(fifo)
    result = run("submit", str(fifo), "--site", "01", "--workspace", str(ws))
    assert result.exit_code == 2 and "FIFO" in result.stderr
    assert archived_files(ws) == []


# ------------------------------------------------------------------------------------------------
# User text in the log and the report


def test_a_newline_in_a_file_name_cannot_forge_a_log_line(ws, tmp_path, study):
    name = "site01.xlsx\n  999  2025-01-01T00:00:00Z  attacker  freeze"
    upload = workbook(study, tmp_path / name, subjects("01", [1]))
    run("submit", str(upload), "--site", "01", "--workspace", str(ws), "--accept-warnings", "--data-cut", CUT,
        "--note", "line one\nline two", "--operator", "dm\x1b[31m", "-q", expect=0)
    text = run("log", "--workspace", str(ws), expect=0).stdout
    assert not [line for line in text.splitlines() if line.lstrip().startswith("999")]
    assert "site01.xlsx\\n  999" in text and "line one\\nline two" in text
    assert "\x1b" not in text and "dm\\x1b[31m" in text
    # The JSON form keeps the name exactly as recorded.
    data = json.loads(run("log", "--workspace", str(ws), "-f", "json", expect=0).stdout)
    assert data["submissions"][0]["files"][0]["original_name"] == name


def test_the_report_escapes_file_names(ws, tmp_path, study):
    name = "<img src=x onerror=alert(1)>\n.xlsx"  # a file name cannot hold '/'; this needs none
    upload = workbook(study, tmp_path / name, subjects("01", [1]))
    run("submit", str(upload), "--site", "01", "--workspace", str(ws), "--accept-warnings", "--data-cut", CUT,
        "-q", expect=0)
    out = tmp_path / "report.html"
    run("report", "--workspace", str(ws), "-o", str(out), "-q", expect=0)
    html = out.read_text(encoding="utf-8")
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;\\n.xlsx" in html


# ------------------------------------------------------------------------------------------------
# Long labels and paths


@pytest.mark.parametrize("label", ["x" * 300, "é" * 200, "a/b", "../up", "", ".hidden"])
def test_a_bad_freeze_label_is_a_usage_error_and_nothing_is_recorded(ws, tmp_path, study, label):
    upload = workbook(study, tmp_path / "site01.xlsx", subjects("01", [1]))
    run("submit", str(upload), "--site", "01", "--workspace", str(ws), "--accept-warnings", "--data-cut", CUT,
        "-q", expect=0)
    before = open_workspace(ws).audit()
    result = run("freeze", "--label", label, "--workspace", str(ws))
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "freeze label" in result.stderr
    assert open_workspace(ws).audit() == before
    assert run("pool", "--workspace", str(ws), "--freeze", label, "-q").exit_code == 2


def test_a_long_note_and_operator_are_kept_whole(ws, tmp_path, study):
    upload = workbook(study, tmp_path / "site01.xlsx", subjects("01", [1]))
    note = "n" * 5000
    run("submit", str(upload), "--site", "01", "--workspace", str(ws), "--accept-warnings", "--data-cut", CUT,
        "--note", note, "--operator", "o" * 300, "-q", expect=0)
    assert open_workspace(ws).log()[0]["note"] == note
