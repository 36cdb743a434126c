"""Sheets whose table does not start in row 1, or that carry formatting beyond their data.

Defect-named workbooks generated here: an export title and a "printed by" line above the header, a
sheet that matches no form with a note above its header, cells formatted (fill, number format,
empty text) around the table, and a formatted-but-empty row inside it.
"""

from __future__ import annotations

import datetime as dt

from openpyxl import Workbook
from openpyxl.styles import PatternFill

from trialkit.findings import Severity
from trialkit.importers.reader import import_files, read_file

DM_HEAD = ["SITEID", "SUBJID", "ICDAT", "BRTHYM", "SEX"]
FILL = PatternFill("solid", fgColor="FFFF00")


def _codes(findings, code):
    return [f for f in findings if f.code == code]


def test_header_below_note_rows_is_found_by_content(tmp_path, study):
    book = Workbook()
    sheet = book.active
    sheet.title = "DM"
    sheet["A1"] = "ANK-SJIA-01 — Demographics export"
    sheet["A2"] = "Printed by the site coordinator on 2024-03-01"
    sheet["C2"] = "page 1"
    for column, name in enumerate(DM_HEAD, start=1):
        sheet.cell(4, column, name)
    sheet.append(["01", "01-001", dt.datetime(2024, 1, 2), "2012-05", "F"])
    sheet.append(["01", "01-002", dt.datetime(2024, 1, 3), "2011-07", "M"])
    path = tmp_path / "header-below-notes.xlsx"
    book.save(path)
    result = import_files([path], study, site="01")
    dm = result.forms["DM"]
    assert dm.data["SUBJID"].tolist() == ["01-001", "01-002"]
    assert dm.data["SEX"].tolist() == ["F", "M"]
    assert dm.lineage["ROW"].tolist() == [5, 6]
    (note,) = _codes(result.report.findings, "IMP-HEADER-OFFSET")
    assert note.severity == Severity.INFO and note.row == 4 and note.evidence["skipped"] == 2
    assert "row 4" in note.message and "2 row(s)" in note.message
    assert [f.code for f in result.report.findings if f.severity != Severity.INFO and f.code != "IMP-TEMPLATE-STAMP"] == []


def test_unknown_table_header_below_a_title(tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.title = "Listing"
    sheet["A1"] = "Listing 16.2.1 — all subjects"
    sheet.append([])
    sheet.append(["Subject", "Arm", "Age"])
    sheet.append(["1001", "Placebo", 34])
    sheet.append(["1002", "Active", 41])
    path = tmp_path / "listing-with-title.xlsx"
    book.save(path)
    (table,) = read_file(path).tables
    assert table.header_row == 3 and table.columns == ["Subject", "Arm", "Age"]
    assert table.values["Subject"].tolist() == ["1001", "1002"]


def test_a_sheet_whose_header_is_in_row_1_is_unchanged(tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.title = "Data"
    sheet.append(["Year", 2019, 2020])  # a header with numbers is still the header
    sheet.append(["cases", 3, 4])
    path = tmp_path / "numeric-header.xlsx"
    book.save(path)
    (table,) = read_file(path).tables
    assert table.header_row == 1 and table.columns == ["Year", "2019", "2020"]


def test_formatted_but_empty_cells_are_no_columns_and_no_rows(tmp_path, study):
    book = Workbook()
    sheet = book.active
    sheet.title = "DM"
    sheet.append(DM_HEAD)
    sheet.append(["01", "01-001", dt.datetime(2024, 1, 2), "2012-05", "F"])
    sheet.append(["01", "01-002", dt.datetime(2024, 1, 3), "2011-07", "M"])
    for row in range(1, 30):  # a filled band right of the table, and formatted cells below it
        sheet.cell(row, 8).fill = FILL
        sheet.cell(row, 9).number_format = "yyyy-mm-dd"
    sheet.cell(1, 7).value = ""  # an empty text cell extends the used range
    sheet.cell(3, 10).value = " "
    sheet.cell(12, 2).fill = FILL
    sheet.cell(40, 3).value = ""
    path = tmp_path / "formatted-empty-cells.xlsx"
    book.save(path)
    result = import_files([path], study, site="01")
    assert result.forms["DM"].data["SUBJID"].tolist() == ["01-001", "01-002"]
    info = result.files[0]["tables"][0]
    assert [c["name"] for c in info["columns"]] == DM_HEAD
    assert [f.code for f in result.report.findings if f.severity != Severity.INFO and f.code != "IMP-TEMPLATE-STAMP"] == []


def test_an_empty_row_inside_the_table_is_no_record(tmp_path, study):
    book = Workbook()
    sheet = book.active
    sheet.title = "DM"
    sheet.append(DM_HEAD)
    sheet.append(["01", "01-001", dt.datetime(2024, 1, 2), "2012-05", "F"])
    sheet.append([])
    sheet.append(["01", "01-002", dt.datetime(2024, 1, 3), "2011-07", "M"])
    sheet.cell(3, 1).fill = FILL
    path = tmp_path / "empty-row-inside.xlsx"
    book.save(path)
    result = import_files([path], study, site="01")
    dm = result.forms["DM"]
    assert dm.lineage["ROW"].tolist() == [2, 4]
    assert [f.code for f in result.report.findings if f.severity != Severity.INFO and f.code != "IMP-TEMPLATE-STAMP"] == []
