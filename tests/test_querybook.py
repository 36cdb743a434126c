"""The per-site query workbook: only the site's rows, its layout (title, codes, labels in the site's
language), answer dropdowns, wrapped rows that fit, print set-up, no paths, no formula injection."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import pytest
from openpyxl import load_workbook
from python_calamine import CalamineWorkbook

from trialkit.findings import Finding, Report
from trialkit.querybook import (
    FIRST_QUERY_ROW,
    HEADER_ROW,
    LABEL_ROW,
    LAST_PRINTED,
    QUERY_COLUMNS,
    RESPONSE_VALUES,
    file_name,
    safe_text,
    without_paths,
    write_query_workbook,
)

GENERATED = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
HEADERS = [name for name, _, _ in QUERY_COLUMNS]
LONG = ("25 of 82 planned daily doses missed (30.5 %) in the period from 2024-02-01 (Part B); the limit is "
        "20 %; check the dosing diary and correct EXMISS in the file")


def finding(site, subject, value="300", severity="error", row=5, **kw):
    kw.setdefault("message", f"WEIGHT = {value} is out")
    kw.setdefault("file", "up.xlsx")
    return Finding(code="RANGE", severity=severity, category="range", site=site, subject=subject, form="VS",
                   visit="W4", variable="WEIGHT", value=value, sheet="VS", row=row,
                   reference="Synopsis: VS form", query_id=f"Q-{subject}", **kw)


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


def cell(sheet, row, name):
    return sheet.cell(row, HEADERS.index(name) + 1)


def test_only_the_sites_rows_under_a_title_codes_and_labels(tmp_path, report, study):
    path = write_query_workbook(report, tmp_path / "q.xlsx", site="01", study=study, generated_at=GENERATED)
    sheet = load_workbook(path)["Queries"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "Query del centro 01 (Milan, IT) — ANK-SJIA-01"  # Milan reads Italian
    assert list(rows[HEADER_ROW - 1]) == HEADERS
    labels = dict(zip(HEADERS, rows[LABEL_ROW - 1], strict=True))
    assert (labels["QUERY_ID"], labels["SUBJECT"], labels["MESSAGE"], labels["SITE_RESPONSE"]) == (
        "Query", "Soggetto", "Cosa verificare", "Risposta del centro")
    queries = rows[FIRST_QUERY_ROW - 1:]
    assert [r[HEADERS.index("SUBJECT")] for r in queries] == ["01-001", "01-002"]
    assert {r[HEADERS.index("SITE")] for r in queries} == {"01"}
    for name in ("SITE_RESPONSE", "SITE_COMMENT", "RESPONDED_BY", "RESPONSE_DATE", "DM_ACTION", "DM_REASON"):
        assert queries[0][HEADERS.index(name)] is None  # the answer columns are empty
    assert queries[0][HEADERS.index("ROW")] == 5


def test_english_without_a_study_and_on_request(tmp_path, report, study):
    for path in (write_query_workbook(report, tmp_path / "a.xlsx", site="01", generated_at=GENERATED),
                 write_query_workbook(report, tmp_path / "b.xlsx", site="01", study=study, language="en",
                                      generated_at=GENERATED)):
        sheet = load_workbook(path)["Queries"]
        assert cell(sheet, LABEL_ROW, "MESSAGE").value == "What to check"
    german = write_query_workbook(report, tmp_path / "c.xlsx", site="04", study=study, generated_at=GENERATED)
    assert cell(load_workbook(german)["Queries"], LABEL_ROW, "SITE_RESPONSE").value == "Antwort des Zentrums"


def test_no_site_means_everything(tmp_path, report):
    path = write_query_workbook(report, tmp_path / "q.xlsx", generated_at=GENERATED)
    sheet = load_workbook(path)["Queries"]
    assert sheet.max_row == FIRST_QUERY_ROW - 1 + 4
    assert sheet["A1"].value == "Queries — ANK-SJIA-01"


def test_frozen_panes_filter_fill_and_unlocked_answers(tmp_path, report):
    path = write_query_workbook(report, tmp_path / "q.xlsx", site="01", generated_at=GENERATED)
    sheet = load_workbook(path)["Queries"]
    assert sheet.freeze_panes == f"B{FIRST_QUERY_ROW}"
    assert sheet.auto_filter.ref == f"A{LABEL_ROW}:V{FIRST_QUERY_ROW + 1}"
    assert sheet["A4"].fill.start_color.rgb.endswith("FFC7CE")  # error
    assert sheet["A5"].fill.start_color.rgb.endswith("FFE699")  # warning
    assert sheet.protection.sheet is True
    for name, attribute, _ in QUERY_COLUMNS:
        assert cell(sheet, FIRST_QUERY_ROW, name).protection.locked is (attribute is not None), name
        assert cell(sheet, HEADER_ROW, name).protection.locked is True
        assert cell(sheet, LABEL_ROW, name).protection.locked is True
    letter = cell(sheet, HEADER_ROW, "SITE_COMMENT").column_letter
    assert sheet.column_dimensions[letter].protection.locked is False  # rows a site adds, too


def test_answer_columns_offer_the_agreed_lists(tmp_path, report):
    path = write_query_workbook(report, tmp_path / "q.xlsx", site="01", generated_at=GENERATED)
    sheet = load_workbook(path)["Queries"]
    by_column = {str(dv.sqref).split(":")[0].rstrip("0123456789"): dv for dv in sheet.data_validations.dataValidation}
    response = by_column[cell(sheet, HEADER_ROW, "SITE_RESPONSE").column_letter]
    assert response.type == "list" and response.formula1 == '"' + ",".join(RESPONSE_VALUES) + '"'
    assert RESPONSE_VALUES == ("corrected in a new upload", "confirmed as is", "other")
    assert not response.showErrorMessage  # free text is still accepted
    action = by_column[cell(sheet, HEADER_ROW, "DM_ACTION").column_letter]
    assert action.type == "list" and action.formula1 == '"close,reopen"'
    date = by_column[cell(sheet, HEADER_ROW, "RESPONSE_DATE").column_letter]
    assert date.type == "date" and str(date.sqref).startswith(f"{cell(sheet, HEADER_ROW, 'RESPONSE_DATE').column_letter}4")
    assert str(response.sqref).endswith(str(FIRST_QUERY_ROW + 1 + 20))  # room for rows a site adds


def test_wrapped_rows_get_a_height_that_fits(tmp_path, study):
    report = Report(study_id="ANK-SJIA-01", findings=[
        finding("01", "01-001", message="short"), finding("01", "01-002", message=LONG)])
    path = write_query_workbook(report, tmp_path / "q.xlsx", site="01", study=study, generated_at=GENERATED)
    sheet = load_workbook(path)["Queries"]
    short, long = (sheet.row_dimensions[r].height for r in (FIRST_QUERY_ROW, FIRST_QUERY_ROW + 1))
    assert cell(sheet, FIRST_QUERY_ROW + 1, "MESSAGE").alignment.wrap_text
    width = sheet.column_dimensions[cell(sheet, HEADER_ROW, "MESSAGE").column_letter].width
    lines = -(-len(LONG) // width)  # at least this many lines at one character per unit of width
    assert long >= lines * 13 > short


def test_print_setup(tmp_path, report, study):
    book = load_workbook(write_query_workbook(report, tmp_path / "q.xlsx", site="01", study=study,
                                              generated_at=GENERATED))
    queries, summary = book["Queries"], book["Summary"]
    assert queries.page_setup.orientation == "landscape"
    assert queries.sheet_properties.pageSetUpPr.fitToPage and queries.page_setup.fitToWidth == 1
    assert queries.print_title_rows == "$1:$3"
    last = cell(queries, HEADER_ROW, LAST_PRINTED).column_letter
    assert queries.print_area == f"'Queries'!$A$1:${last}${FIRST_QUERY_ROW + 1}"
    assert HEADERS.index("DM_ACTION") > HEADERS.index(LAST_PRINTED)  # the data manager's columns are off paper
    assert (summary.page_setup.fitToWidth, summary.page_setup.fitToHeight) == (1, 1)


def test_file_names_without_the_data_managers_path(tmp_path):
    local = "/home/dm/trialkit-demo/uploads/site06/site06_v2.xlsx"
    windows = r"C:\Users\dm\Desktop\uploads\site06_v3.xlsx"
    report = Report(study_id="X", findings=[
        finding("06", "06-001", file=local, message=f"{local}: sheet 'VS' has no column HR"),
        finding("06", "06-002", file=windows, message=f"cannot read {windows} (damaged); upload it again"),
        finding("06", "06-003", file="uploads/site06/site06_v4.xlsx",
                message="uploads/site06/site06_v4.xlsx: empty sheet"),
    ])
    path = write_query_workbook(report, tmp_path / "q.xlsx", site="06", generated_at=GENERATED)
    sheet = load_workbook(path)["Queries"]
    files = [cell(sheet, r, "FILE").value for r in range(FIRST_QUERY_ROW, FIRST_QUERY_ROW + 3)]
    assert files == ["site06_v2.xlsx", "site06_v3.xlsx", "site06_v4.xlsx"]
    messages = [cell(sheet, r, "MESSAGE").value for r in range(FIRST_QUERY_ROW, FIRST_QUERY_ROW + 3)]
    assert messages == ["site06_v2.xlsx: sheet 'VS' has no column HR",
                        "cannot read site06_v3.xlsx (damaged); upload it again", "site06_v4.xlsx: empty sheet"]
    text = "".join(zipfile.ZipFile(path).read(n).decode("utf-8", "replace") for n in zipfile.ZipFile(path).namelist())
    assert "/home/dm" not in text and "Users" not in text and "uploads/" not in text


def test_path_helpers():
    assert file_name("/a/b/c.xlsx") == "c.xlsx" and file_name(r"D:\x\y.csv") == "y.csv" and file_name(None) is None
    assert without_paths("see /tmp/x/y/z.csv and ~/d/e.xlsx") == "see z.csv and e.xlsx"
    # Units and ratios are not paths.
    assert without_paths("HR 30-220 /min; 10^9/L; mg/kg/day") == "HR 30-220 /min; 10^9/L; mg/kg/day"


def test_formula_injection_is_neutralised(tmp_path, report):
    path = write_query_workbook(report, tmp_path / "q.xlsx", site="01", generated_at=GENERATED)
    sheet = load_workbook(path)["Queries"]
    value = cell(sheet, FIRST_QUERY_ROW + 1, "VALUE")
    assert value.data_type == "s"
    assert value.value == '=HYPERLINK("http://evil","x")'
    calamine = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Queries").to_python()
    assert calamine[FIRST_QUERY_ROW][HEADERS.index("VALUE")] == '=HYPERLINK("http://evil","x")'
    xml = zipfile.ZipFile(path).read("xl/worksheets/sheet2.xml").decode()
    assert "<f>" not in xml


def test_safe_text():
    assert safe_text("=1+1") == "'=1+1"
    assert safe_text("-2") == "'-2"
    assert safe_text("@SUM(A1)") == "'@SUM(A1)"
    assert safe_text("\tx") == "'\tx"
    assert safe_text("ok") == "ok"
    assert safe_text(5) == 5


def _cells(path: Path) -> dict[str, list[tuple]]:
    book = load_workbook(path)
    return {name: list(book[name].iter_rows(values_only=True)) for name in book.sheetnames}


def test_summary_and_determinism(tmp_path, report, study):
    first = write_query_workbook(report, tmp_path / "a.xlsx", site="01", study=study, generated_at=GENERATED,
                                 language="en")
    second = write_query_workbook(report, tmp_path / "b.xlsx", site="01", study=study, generated_at=GENERATED,
                                  language="en")
    assert _cells(first) == _cells(second)
    summary = {r[0]: r[1] for r in _cells(first)["Summary"] if r and r[0]}
    assert summary["Study"] == "ANK-SJIA-01"
    assert (summary["Protocol version"], summary["Schema hash"]) == ("1.0", "abc")
    assert summary["Site"] == "01 (Milan, IT)"
    assert summary["Data cut"] == "2024-12-31"
    assert summary["Generated"] == "2025-01-02T03:04:05+00:00"
    assert summary["Queries"] == 2
    assert summary["error"] == 1 and summary["warning"] == 1 and summary["info"] == 0
    assert summary["VS"] == 2
    assert "SITE_RESPONSE" in summary["How to answer"]


def test_summary_in_the_sites_language_says_what_is_unknown(tmp_path, study):
    path = write_query_workbook(Report(study_id="ANK-SJIA-01", findings=[finding("03", "03-001")]),
                                tmp_path / "q.xlsx", site="03", study=study, generated_at=GENERATED)
    summary = {r[0]: r[1] for r in _cells(path)["Summary"] if r and r[0]}
    assert summary["Centre"] == "03 (Paris, FR)"
    assert summary["Date de gel des données"] == "non disponible"
    assert summary["Contact"] == study.texts("fr").contact() != study.contact


def test_ledger_workbook_summary_is_filled_from_the_ledger(tmp_path, study):
    from trialkit.ledger import init_workspace

    ws = init_workspace(tmp_path / "ws", study_id=study.id)
    upload = tmp_path / "site01.csv"
    upload.write_text("01")
    ws.submit([upload], "01", Report(findings=[finding("01", "01-001")], study_id=study.id,
                                     study_version="1.1", schema_hash=study.schema_hash, site="01",
                                     data_cut="2025-02-28"))
    report = ws.queries_report("01")
    assert (report.study_version, report.schema_hash, report.data_cut) == ("1.1", study.schema_hash, "2025-02-28")
    path = write_query_workbook(report, tmp_path / "q.xlsx", site="01", study=study, language="en",
                                generated_at=GENERATED)
    summary = {r[0]: r[1] for r in _cells(path)["Summary"] if r and r[0]}
    assert (summary["Protocol version"], summary["Schema hash"], summary["Data cut"]) == (
        "1.1", study.schema_hash, "2025-02-28")
    assert "None" not in {str(v) for v in summary.values()}
