"""``trialkit inspect`` through click's CliRunner: exit codes, JSON, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from trialkit.cli import cli

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def _run(*args):
    result = CliRunner().invoke(cli, ["inspect", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def _corpus(name):
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"corpus file {name} not found")
    return str(path)


@pytest.mark.parametrize("name", ["pyreadstat__basic__sample.sav", "cdisc-pilot__sdtm__ts.xpt",
                                  "phuse-scripts__output__AE_Severity.xls", "calamine__tests__any_sheets.xlsx"])
def test_readable_files_exit_0(name):
    result = _run(_corpus(name))
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("name,code", [
    ("python-calamine__data__password.xlsx", "IMP-FILE-PASSWORD"),
    ("sas7bdat-parser-rs__pandas__corrupt.sas7bdat", "IMP-FILE-CORRUPT"),
    ("cdisc-pilot__reference-ranges__lab1_0_1refrangesampledata.xpt", "IMP-FILE-HTML"),
    ("python-calamine__data__empty_file.xlsx", "IMP-FILE-EMPTY"),
    ("calamine__tests__errors.xlsx", "IMP-EXCEL-ERROR"),
])
def test_bad_files_exit_1_with_finding(name, code):
    result = _run(_corpus(name))
    assert result.exit_code == 1
    assert code in result.output


def test_json_is_parseable_and_describes_the_dataset():
    result = _run("-f", "json", _corpus("cdisc-pilot__sdtm__ts.xpt"))
    assert result.exit_code == 0
    data = json.loads(result.output)
    (facts,) = data["files"]
    assert (facts["format"], facts["encoding"]) == ("xpt5", "cp1252")
    (table,) = facts["tables"]
    assert (table["name"], table["rows"], table["n_columns"]) == ("TS", 33, 6)
    assert table["columns"][0] == {"name": "STUDYID", "label": "Study Identifier", "type": "text"}
    assert [f["code"] for f in data["findings"]] == ["IMP-ENCODING-CP1252", "IMP-NO-FORM"]


def test_json_several_files_form_mapping():
    result = _run("-f", "json", _corpus("phuse-scripts__FDA__dm.sas7bdat"), _corpus("pyreadstat__basic__sample.dta"))
    data = json.loads(result.output)
    assert [t["form"] for f in data["files"] for t in f["tables"]] == [None, None]
    assert data["files"][0]["tables"][0]["role"] == "SDTM domain DM of study ABC"  # not this study's export


def test_missing_file_is_usage_error():
    result = CliRunner().invoke(cli, ["inspect", "/nonexistent/file.xlsx"])
    assert result.exit_code == 2


def test_unknown_site_is_usage_error(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("A,B\n1,2\n")
    result = CliRunner().invoke(cli, ["inspect", "--site", "99", str(path)])
    assert result.exit_code == 2


def test_text_output_lists_columns(tmp_path):
    path = tmp_path / "site07_dm.csv"
    path.write_text("SITEID,SUBJID,ICDAT,BRTHYM,SEX\n07,07-001,2024-01-01,2010-01,F\n")
    result = _run(str(path))
    assert result.exit_code == 0
    assert "form DM" in result.output and "SUBJID" in result.output and "format csv" in result.output


def test_help_lists_inspect():
    result = CliRunner().invoke(cli, ["--help"])
    assert "inspect" in result.output
