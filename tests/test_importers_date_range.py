"""A date beyond what a timestamp holds is a type finding on that cell, never a lost sheet."""

from __future__ import annotations

import datetime as dt

from openpyxl import Workbook

from trialkit.importers.reader import import_files


def test_date_after_2261_is_one_type_finding_and_the_sheet_still_imports(tmp_path, study):
    book = Workbook()
    sheet = book.active
    sheet.title = "DM"
    sheet.append(["SITEID", "SUBJID", "ICDAT", "BRTHYM", "SEX"])
    sheet.append(["01", "01-001", dt.datetime(2263, 1, 1), "2012-05", "F"])
    sheet.append(["01", "01-002", "2263-01-01", "2012-05", "F"])
    sheet.append(["01", "01-003", dt.datetime(2024, 1, 5), "2012-05", "M"])
    book.save(tmp_path / "far-future-dates.xlsx")
    result = import_files([tmp_path / "far-future-dates.xlsx"], study, site="01")
    dm = result.forms["DM"]
    assert list(dm.data["SUBJID"]) == ["01-001", "01-002", "01-003"]
    assert dm.data["ICDAT"].isna().tolist() == [True, True, False]
    bad = [(f.code, f.row, f.variable) for f in result.report.findings if f.severity == "error"]
    assert bad == [("IMP-TYPE", 2, "ICDAT"), ("IMP-TYPE", 3, "ICDAT")]
