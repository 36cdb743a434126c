"""No injection out: site-typed text that a spreadsheet would run as a formula is neutralised in every
CSV and xlsx output — validate ``-f csv`` / ``-f xlsx``, ``trialkit queries`` (``-o`` workbooks and
``-f csv``), the pooled CSV exports and the template's pre-filled cells.

The hostile values arrive as *text* cells in the upload (``=HYPERLINK(...)``, ``+1+1``, ``@SUM(A1)``,
``-2+3``, a leading tab). Each output is read back: with the csv module (the field starts with ``'``)
and with openpyxl (the cell is a string, ``data_type == 's'``, never a formula).
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import io
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from trialkit.cli import cli

from .test_deviations import clean_subject
from .upload_builder import write_upload

HOSTILE = ['=HYPERLINK("http://x","y")', "+1+1", "@SUM(A1)", "-2+3", "\t=1", "\r=1"]
UPLOADED = HOSTILE[:5]  # xlsx stores a CR in a cell as LF, so "\r=1" cannot arrive as typed
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _as_text_cells(path: Path) -> Path:
    """Make every formula-looking cell a text cell, as a site's text would be (openpyxl would write
    ``=...`` as a formula otherwise); also add an unknown column headed by a hostile text."""
    book = openpyxl.load_workbook(path)
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and cell.value.startswith(FORMULA_START):
                    cell.data_type = "s"
    ae = book["AE"]
    column = ae.max_column + 1
    ae.cell(1, column, HOSTILE[0]).data_type = "s"
    book.save(path)
    return path


def _upload(study, folder: Path, site: str = "01", subject: str = "01-001", outcome: str = "RECOVERED") -> Path:
    records = copy.deepcopy(clean_subject())
    day1 = records["RAND"][0]["RANDDAT"]
    base = {"SITEID": site, "SUBJID": subject}
    records["AE"] = [
        dict(base, AETERM=term, AESTDAT=day1 + dt.timedelta(days=i + 2), AEENDAT=day1 + dt.timedelta(days=i + 3),
             AEONGO="N", AESER="N", AETOXGR=1, AEOUT=outcome)
        for i, term in enumerate(UPLOADED)
    ]
    records["RAND"][0]["KITNO"] = "@SUM(A1)"
    for row in records["EX"]:
        row["KITNO"] = "=1+2" if row["KITNO"] == "K001" else "-2+3"
    path = write_upload(study, folder / f"site{site}.xlsx", records, site=site, subject=subject)
    return _as_text_cells(path)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _assert_csv_safe(text: str, expect: list[str]) -> None:
    """No field would start a formula (plain negative numbers aside); each expected value is there
    with its leading ``'`` (a CR inside a value written as a quoted line feed)."""
    fields = [field for row in csv.reader(io.StringIO(text, newline="")) for field in row]
    live = [f for f in fields if f.startswith(FORMULA_START) and not _is_number(f)]
    assert not live, live
    for value in expect:
        assert "'" + value.replace("\r", "\n") in fields, (value, fields[:40])


def _assert_xlsx_safe(path: Path, expect: list[str]) -> None:
    book = openpyxl.load_workbook(path)
    seen = set()
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert cell.data_type == "s"
                    seen.add(cell.value.lstrip("'"))
    for value in expect:
        assert value.replace("\r", "\n") in seen, value  # xlsx stores a CR in text as LF


def _invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture()
def upload(tmp_path, study):
    return _upload(study, tmp_path)


def test_upload_really_carries_the_hostile_text(upload, study):
    from trialkit.importers.reader import import_files

    imported = import_files([upload], study, site="01")
    assert imported.forms["AE"].raw["AETERM"].tolist() == UPLOADED
    assert imported.forms["RAND"].raw["KITNO"].tolist() == ["@SUM(A1)"]


def test_validate_csv_neutralises(upload, tmp_path):
    out = tmp_path / "report.csv"
    result = _invoke("validate", str(upload), "--site", "01", "-f", "csv", "-o", str(out), "--fail-on", "never")
    assert result.exit_code == 0, result.output
    _assert_csv_safe(out.read_text(encoding="utf-8"), [HOSTILE[0]])


def test_validate_xlsx_query_workbook_writes_text_cells(upload, tmp_path):
    out = tmp_path / "queries.xlsx"
    result = _invoke("validate", str(upload), "--site", "01", "-f", "xlsx", "-o", str(out), "--fail-on", "never")
    assert result.exit_code == 0, result.output
    _assert_xlsx_safe(out, [HOSTILE[0]])


def test_validate_outputs_of_findings_quoting_each_hostile_value(tmp_path):
    """Every hostile value as a finding's value, through the csv and xlsx renderers."""
    from trialkit.commands.validate import render_csv
    from trialkit.findings import Finding, Report
    from trialkit.querybook import write_query_workbook

    report = Report(findings=[Finding(code="X", severity="warning", category="type", message=v, value=v,
                                      site="01", variable="AETERM") for v in HOSTILE])
    _assert_csv_safe(render_csv(report), HOSTILE)
    out = write_query_workbook(report, tmp_path / "q.xlsx", site="01")
    _assert_xlsx_safe(out, HOSTILE)


@pytest.fixture()
def workspace(tmp_path, study, upload):
    ws = tmp_path / "ws"
    assert _invoke("init", str(ws)).exit_code == 0
    (tmp_path / "07").mkdir()
    # Site 07 also types a hostile code: a codelist error, so a query quoting the value as typed.
    other = _upload(study, tmp_path / "07", "07", "07-001", outcome=HOSTILE[0])
    for site, path in (("01", upload), ("07", other)):
        result = _invoke("submit", str(path), "--site", site, "--workspace", str(ws), "--accept-warnings",
                         "--data-cut", "2024-04-12", "-q")
        assert result.exit_code in (0, 1), result.output
    return ws


def test_queries_outputs_neutralise(workspace, tmp_path):
    result = _invoke("queries", "--workspace", str(workspace), "-f", "csv")
    assert result.exit_code == 0, result.output
    _assert_csv_safe(result.stdout, [HOSTILE[0]])
    out = tmp_path / "q.xlsx"
    result = _invoke("queries", "--workspace", str(workspace), "--site", "07", "-o", str(out), "-q")
    assert result.exit_code == 0, result.output
    _assert_xlsx_safe(out, [HOSTILE[0]])


def test_pooled_csv_exports_neutralise(workspace, tmp_path):
    out = tmp_path / "pooled"
    result = _invoke("pool", "--workspace", str(workspace), "-o", str(out), "-f", "csv", "-q")
    assert result.exit_code == 0, result.output
    ae = (out / "ae.csv").read_text(encoding="utf-8")
    _assert_csv_safe(ae, [v.strip() for v in UPLOADED])  # AETERM is stored trimmed
    rand = (out / "rand.csv").read_text(encoding="utf-8")
    _assert_csv_safe(rand, ["@SUM(A1)"])
    for path in out.glob("*.csv"):
        _assert_csv_safe(path.read_text(encoding="utf-8"), [])


def test_template_prefilled_cells_are_text(tmp_path, study):
    from trialkit.templates import write_template

    site = next(iter(study.sites))
    path = write_template(study, tmp_path / "template.xlsx", site=site)
    book = openpyxl.load_workbook(path)
    prefilled = 0
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if cell.value == site and cell.row > 1:
                    prefilled += 1
                    assert cell.data_type == "s"
    assert prefilled > 0


def test_queries_csv_and_export_helpers_agree():
    from trialkit.commands.queries import _neutralise
    from trialkit.export import neutralise_formula
    from trialkit.querybook import safe_text

    for value in HOSTILE:
        assert safe_text(value).startswith("'") and neutralise_formula(value).startswith("'")
        assert str(_neutralise(value)).startswith("'"), value
