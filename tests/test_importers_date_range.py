"""A date beyond what a timestamp holds is one finding on its cell; every other date stays a date.

Generated here: an xlsx with date cells and serials past 2261 and past the year 9999, and SAS
transport, SPSS (sav, por) and Stata files whose date columns hold one value in the year ~199,000
(pyreadstat refuses the whole file with ``OverflowError`` when it converts dates).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyreadstat
import pytest
from openpyxl import Workbook

from trialkit.importers.reader import import_files, read_file

DAY = 86400
SPSS_EPOCH_SECONDS = (dt.date(1960, 1, 1) - dt.date(1582, 10, 14)).days * DAY  # SPSS counts from 1582-10-14


def _errors(result):
    return sorted((f.code, f.row, f.variable) for f in result.report.findings if f.severity == "error")


def test_date_after_2261_is_one_finding_on_its_cell_and_the_sheet_still_imports(tmp_path, study):
    book = Workbook()
    sheet = book.active
    sheet.title = "DM"
    sheet.append(["SITEID", "SUBJID", "ICDAT", "BRTHYM", "SEX"])
    sheet.append(["01", "01-001", dt.datetime(2263, 1, 1), "2012-05", "F"])
    sheet.append(["01", "01-002", "2263-01-01", "2012-05", "F"])
    sheet.append(["01", "01-003", dt.datetime(2024, 1, 5), "2012-05", "M"])
    sheet.append(["01", "01-004", 3_000_000, "2012-05", "M"])  # a date serial past the year 9999
    sheet.cell(5, 3).number_format = "yyyy-mm-dd"
    sheet.append(["01", "01-005", 150_000, "2012-05", "M"])  # a plain number: the date 2310-09-07
    book.save(tmp_path / "far-future-dates.xlsx")
    result = import_files([tmp_path / "far-future-dates.xlsx"], study, site="01")
    dm = result.forms["DM"]
    assert list(dm.data["SUBJID"]) == ["01-001", "01-002", "01-003", "01-004", "01-005"]
    assert dm.data["ICDAT"].isna().tolist() == [True, True, False, True, True]
    assert _errors(result) == [("IMP-DATE-RANGE", 2, "ICDAT"), ("IMP-DATE-RANGE", 3, "ICDAT"),
                               ("IMP-DATE-RANGE", 5, "ICDAT"), ("IMP-DATE-RANGE", 6, "ICDAT")]
    messages = {f.row: f.message for f in result.report.findings if f.code == "IMP-DATE-RANGE"}
    assert "2263-01-01" in messages[2] and "1678" in messages[2] and "2261" in messages[2]
    assert "3000000" in messages[5]


def _dates_frame(unit: int) -> pd.DataFrame:
    """DM with ICDAT (one value in the year ~199,000) and a second, valid date column."""
    return pd.DataFrame({
        "SITEID": ["01", "01", "01"], "SUBJID": ["01-001", "01-002", "01-003"],
        "ICDAT": [23000.0 * unit, 72_000_000.0 * unit, 23100.0 * unit],
        "BRTHYM": ["2012-05", "2011-07", "2013-01"], "SEX": ["F", "M", "F"],
        "RFSTDAT": [23010.0 * unit, 23011.0 * unit, None],
    })


SAS_FORMATS = {"ICDAT": "DATE9.", "RFSTDAT": "DATE9."}
SPSS_FORMATS = {"ICDAT": "DATE11", "RFSTDAT": "DATE11"}


@pytest.mark.parametrize("name,write,unit,offset", [
    ("dm.xpt", lambda f, p: pyreadstat.write_xport(f, p, variable_format=SAS_FORMATS, file_format_version=5), 1, 0),
    ("dm.sav", lambda f, p: pyreadstat.write_sav(f, p, variable_format=SPSS_FORMATS), DAY, SPSS_EPOCH_SECONDS),
    ("dm.por", lambda f, p: pyreadstat.write_por(f, p, variable_format=SPSS_FORMATS), DAY, SPSS_EPOCH_SECONDS),
    ("dm.dta", lambda f, p: pyreadstat.write_dta(f, p, variable_format={"ICDAT": "%td", "RFSTDAT": "%td"}), 1, 0),
])
def test_out_of_range_dataset_date_is_one_finding_and_other_dates_stay_dates(tmp_path, study, name, write, unit,
                                                                             offset):
    frame = _dates_frame(unit)
    for column in ("ICDAT", "RFSTDAT"):
        frame[column] = frame[column] + offset  # SAS and Stata count days from 1960-01-01
    path = tmp_path / name
    write(frame, str(path))
    read = read_file(path)
    assert not [f for f in read.findings if f.code == "IMP-DATES-RAW"]
    (table,) = read.tables
    other = table.values["RFSTDAT"].tolist()
    assert other[:2] == [dt.date(2022, 12, 31), dt.date(2023, 1, 1)]
    result = import_files([path], study, site="01")
    dm = result.forms["DM"]
    assert dm.data["ICDAT"].tolist()[0] == pd.Timestamp("2022-12-21")
    assert dm.data["ICDAT"].isna().tolist() == [False, True, False]
    assert dm.data["SUBJID"].tolist() == ["01-001", "01-002", "01-003"]
    (finding,) = [f for f in result.report.findings if f.severity == "error"]
    assert (finding.code, finding.row, finding.variable) == ("IMP-DATE-RANGE", 2, "ICDAT")
    assert "199" in finding.value and finding.subject == "01-002"


def test_out_of_range_date_in_a_column_that_is_not_imported_is_still_named(tmp_path, study):
    frame = _dates_frame(1)
    frame["RFSTDAT"] = [23010.0, 80_000_000.0, None]
    path = tmp_path / "dm.xpt"
    pyreadstat.write_xport(frame, str(path), variable_format=SAS_FORMATS, file_format_version=5)
    result = import_files([path], study, site="01")
    found = sorted((f.row, f.variable) for f in result.report.findings if f.code == "IMP-DATE-RANGE")
    assert found == [(2, "ICDAT"), (2, "RFSTDAT")]
