"""The per-site query workbook: only the site's rows, frozen header, filter, no formula injection."""

from __future__ import annotations

import datetime as dt

import pytest
from openpyxl import load_workbook
from python_calamine import CalamineWorkbook

from trialkit.findings import Finding, Report
from trialkit.querybook import QUERY_COLUMNS, safe_text, write_query_workbook

GENERATED = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def finding(site, subject, value="300", severity="error", row=5, **kw):
    return Finding(code="RANGE", severity=severity, category="range", message=f"WEIGHT = {value} is out",
                   site=site, subject=subject, form="VS", visit="W4", variable="WEIGHT", value=value,
                   file="up.xlsx", sheet="VS", row=row, reference="Synopsis: VS form",
                   query_id=f"Q-{subject}", **kw)


@pytest.fixture()
def report():
    return Report(
        findings=[
            finding("01", "01-001"),
            finding("03", "03-001", value="99"),
            finding("01", "01-002", value='=HYPERLINK("http://evil","x")', severity="warning", row=7),
            finding(None, None, value="-1", severity="info", row=None),
        ],
        study_id="ANK-SJIA-01", study_version="1.0", schema_hash="abc", site=None, data_cut="2024-12-31",
    )


def test_only_the_sites_rows(tmp_path, report, study):
    path = write_query_workbook(report, tmp_path / "q.xlsx", site="01", study=study,
                                generated_at=GENERATED)
    sheet = load_workbook(path)["Queries"]
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == [name for name, _, _ in QUERY_COLUMNS]
    assert [r[2] for r in rows[1:]] == ["01-001", "01-002"]
    assert {r[1] for r in rows[1:]} == {"01"}
    assert rows[1][-6:] == (None,) * 6  # the answer columns (site, then data manager) are empty
    assert rows[1][15] == 5  # ROW


def test_no_site_means_everything(tmp_path, report):
    path = write_query_workbook(report, tmp_path / "q.xlsx", generated_at=GENERATED)
    rows = list(load_workbook(path)["Queries"].iter_rows(values_only=True))
    assert len(rows) == 5


def test_frozen_header_filter_fill_and_unlocked_answers(tmp_path, report):
    path = write_query_workbook(report, tmp_path / "q.xlsx", site="01", generated_at=GENERATED)
    sheet = load_workbook(path)["Queries"]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:V3"
    assert sheet["A2"].fill.start_color.rgb.endswith("FFC7CE")  # error
    assert sheet["A3"].fill.start_color.rgb.endswith("FFE699")  # warning
    assert sheet.protection.sheet is True
    assert sheet["Q2"].protection.locked is False  # SITE_RESPONSE
    assert sheet["H2"].protection.locked is True


def test_formula_injection_is_neutralised(tmp_path, report):
    path = write_query_workbook(report, tmp_path / "q.xlsx", site="01", generated_at=GENERATED)
    sheet = load_workbook(path)["Queries"]
    cell = sheet["G3"]
    assert cell.data_type == "s"
    assert cell.value == '=HYPERLINK("http://evil","x")'
    calamine = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Queries").to_python()
    assert calamine[2][6] == '=HYPERLINK("http://evil","x")'
    with open(path, "rb") as handle:
        import zipfile

        xml = zipfile.ZipFile(handle).read("xl/worksheets/sheet2.xml").decode()
    assert "<f>" not in xml


def test_safe_text():
    assert safe_text("=1+1") == "'=1+1"
    assert safe_text("-2") == "'-2"
    assert safe_text("@SUM(A1)") == "'@SUM(A1)"
    assert safe_text("\tx") == "'\tx"
    assert safe_text("ok") == "ok"
    assert safe_text(5) == 5


def test_summary_and_determinism(tmp_path, report, study):
    first = write_query_workbook(report, tmp_path / "a.xlsx", site="01", study=study,
                                 generated_at=GENERATED)
    second = write_query_workbook(report, tmp_path / "b.xlsx", site="01", study=study,
                                  generated_at=GENERATED)

    def cells(path):
        book = load_workbook(path)
        return {name: list(book[name].iter_rows(values_only=True)) for name in book.sheetnames}

    assert cells(first) == cells(second)
    summary = {r[0]: r[1] for r in cells(first)["Summary"] if r and r[0]}
    assert summary["Study"] == "ANK-SJIA-01"
    assert summary["Site"] == "01 (Milan, IT)"
    assert summary["Data cut"] == "2024-12-31"
    assert summary["Generated"] == "2025-01-02T03:04:05+00:00"
    assert summary["Queries"] == 2
    assert summary["error"] == 1 and summary["warning"] == 1 and summary["info"] == 0
    assert summary["VS"] == 2
