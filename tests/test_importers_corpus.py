"""Every file of the shared corpus: the exact shape and sample values read, or the specific finding."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from trialkit.importers.detect import detect
from trialkit.importers.reader import import_files, read_file

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def _manifest_files() -> list[str]:
    manifest = CORPUS / "MANIFEST.md"
    if not manifest.is_file():
        return []
    return re.findall(r"^\| \d+ \| `([^`]+)`", manifest.read_text(encoding="utf-8"), flags=re.M)


FILES = _manifest_files()

# file -> (format, [(table name, rows, columns)]) for files read to tables, or (format, finding code)
EXPECTED: dict[str, tuple[str, object]] = {
    "pyreadstat__basic__sample.sas7bdat": ("sas7bdat", [("SAMPLE", 5, 7)]),
    "pyreadstat__basic__sample_bincompressed.sas7bdat": ("sas7bdat", [("BINCOMPRESSED", 5, 7)]),
    "sas7bdat-parser-rs__pandas__test2.sas7bdat": ("sas7bdat", [("TEST2", 10, 100)]),
    "sas7bdat-parser-rs__pandas__test13.sas7bdat": ("sas7bdat", [("TEST13", 10, 100)]),
    "parso__sas7bdat__charset_wcyr.sas7bdat": ("sas7bdat", [("CHARSET_WCYR", 150, 5)]),
    "parso__sas7bdat__charset_sjis.sas7bdat": ("sas7bdat", [("CHARSET_SJIS", 150, 5)]),
    "parso__sas7bdat__charset_aara.sas7bdat": ("sas7bdat", "IMP-FILE-CHARSET"),
    "parso__sas7bdat__all_rand_normal_with_deleted.sas7bdat": ("sas7bdat", [("TESTSAMPLE", 36, 8)]),
    "parso__csv__all_rand_normal_with_deleted.csv": ("csv", [("parso__csv__all_rand_normal_with_deleted", 36, 8)]),
    "phuse-scripts__FDA__dm.sas7bdat": ("sas7bdat", [("DM", 162, 27)]),
    "xportr__extdata__adsl.sas7bdat": ("sas7bdat", [("ADSL", 24, 23)]),
    "sas7bdat-parser-rs__pandas__zero_rows.sas7bdat": ("sas7bdat", [("ZERO_ROWS_NO_COMPRESS", 0, 2)]),
    "sas7bdat-parser-rs__pandas__many_columns.sas7bdat": ("sas7bdat", [(None, 3, 392)]),
    "sas7bdat-parser-rs__pandas__corrupt.sas7bdat": ("sas7bdat", "IMP-FILE-CORRUPT"),
    "haven__sas__tagged-na.sas7bdat": ("sas7bdat", [("APPLE", 8, 1)]),
    "haven__sas__tagged-na.sas7bcat": ("sas7bcat", "IMP-SAS-CATALOG-ONLY"),
    "cdisc-pilot__sdtm__dm.xpt": ("xpt5", [("DM", 306, 25)]),
    "cdisc-pilot__datasets__adsl.xpt": ("xpt5", [("ADSL", 254, 48)]),
    "cdisc-pilot__sdtm__ts.xpt": ("xpt5", [("TS", 33, 6)]),
    "phuse-scripts__TDF_SDTM_v1.0__suppds.xpt": ("xpt5", [("SUPPDS", 3, 10)]),
    "pyreadstat__basic__dates_xpt_v8.xpt": ("xpt8", [("DATES", 19, 9)]),
    "submissions-pilot3-adam__adam__adtte.xpt": ("xpt5", [("adtte", 254, 26)]),
    "cdisc-pilot__reference-ranges__lab1_0_1refrangesampledata.xpt": ("html", "IMP-FILE-HTML"),
    "pyreadstat__basic__sample.sav": ("sav", [(None, 5, 7)]),
    "pyreadstat__basic__sample.zsav": ("zsav", [(None, 5, 7)]),
    "pyreadstat__basic__sample_missing.sav": ("sav", [(None, 7, 7)]),
    "pyreadstat__basic__sample.dta": ("dta", [(None, 5, 7)]),
    "phuse-scripts__SENDIG3.1.1excel__PC201708.xlsx": ("xlsx", None),
    "phuse-scripts__output__AE_Severity.xls": ("spreadsheetml", None),
    "phuse-scripts__Templates__Exposure_Template.xls": ("xls", None),
    "calamine__tests__date_1904.xlsx": ("xlsx", [("Sheet1", 2, 2)]),
    "calamine__tests__issue_419.xlsx": ("xlsx", [("Sheet1", 0, 1)]),
    "calamine__tests__strict_iso_paths.xlsx": ("xlsx", [("ml_out", 75, 18)]),
    "python-calamine__data__password.xlsx": ("encrypted", "IMP-FILE-PASSWORD"),
    "calamine__tests__any_sheets.xlsx": ("xlsx", None),
    "calamine__tests__errors.xlsx": ("xlsx", None),
    "openpyxl__data__merge_range.xlsx": ("xlsx", [("Sheet1", 14, 5)]),
    "python-calamine__data__empty_file.xlsx": ("empty", "IMP-FILE-EMPTY"),
    "redcapr__validation-types-1__dictionary.csv": ("csv", [(None, 50, 18)]),
    "redcapr__decimal-comma__dictionay.csv": ("csv", [(None, 5, 18)]),
}

needs_corpus = pytest.mark.skipif(not FILES, reason=f"corpus not found at {CORPUS} (MANIFEST.md missing)")


@needs_corpus
def test_manifest_lists_forty_files_all_expected():
    assert len(FILES) == 40
    assert set(FILES) == set(EXPECTED)


@needs_corpus
@pytest.mark.parametrize("name", FILES or ["-"])
def test_corpus_file_reads_to_table_or_specific_finding(name):
    path = CORPUS / name
    fmt, expected = EXPECTED[name]
    assert detect(path).format == fmt
    read = read_file(path)
    assert read.format == fmt
    if isinstance(expected, str):
        codes = [f.code for f in read.findings]
        assert expected in codes
        assert all(f.category.value == "file" for f in read.findings if f.code == expected)
        assert all(str(path) in f.message for f in read.findings if f.code == expected)
        return
    if expected is None:
        assert read.tables
        return
    shapes = [(t.name, t.rows, len(t.columns)) for t in read.tables]
    for (want_name, rows, cols), (got_name, got_rows, got_cols) in zip(expected, shapes, strict=True):
        assert (got_rows, got_cols) == (rows, cols)
        if want_name:
            assert got_name == want_name
    assert not [f for f in read.findings if f.severity.value == "error"]


def _corpus(name: str) -> Path:
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"corpus file {name} not found")
    return path


def test_deleted_rows_sas7bdat_gives_36_rows_not_37():
    table = read_file(_corpus("parso__sas7bdat__all_rand_normal_with_deleted.sas7bdat")).tables[0]
    assert table.rows == 36
    assert list(table.columns) == [f"x{i}" for i in range(1, 9)]
    assert table.values.index[0] == 1 and table.values.index[-1] == 36
    assert table.values["x2"].iloc[0] == pytest.approx(1.7728319648062687)


def test_suppds_xpt_keeps_all_three_records():
    table = read_file(_corpus("phuse-scripts__TDF_SDTM_v1.0__suppds.xpt")).tables[0]
    assert table.rows == 3
    assert table.values["USUBJID"].iloc[0] == "01-703-1175"
    assert table.labels[0] == "Study Identifier"


def test_xpt_v8_dates_19_by_9():
    table = read_file(_corpus("pyreadstat__basic__dates_xpt_v8.xpt")).tables[0]
    assert (table.rows, len(table.columns)) == (19, 9)
    assert str(table.values["dt"].iloc[0]) == "1959-12-30 23:59:59"
    assert table.types[0] == "datetime"


def test_ts_xpt_read_as_cp1252_with_info_finding():
    read = read_file(_corpus("cdisc-pilot__sdtm__ts.xpt"))
    assert read.encoding == "cp1252"
    info = [f for f in read.findings if f.code == "IMP-ENCODING-CP1252"]
    assert len(info) == 1 and info[0].severity.value == "info"
    assert any("\u2019" in str(v) for v in read.tables[0].values["TSVAL"])  # the curly apostrophe 0x92


def test_unsupported_charset_is_a_clear_file_finding():
    read = read_file(_corpus("parso__sas7bdat__charset_aara.sas7bdat"))
    finding = next(f for f in read.findings if f.code == "IMP-FILE-CHARSET")
    assert finding.severity.value == "error" and "character set" in finding.message
    assert "ENCODING=UTF8" in finding.message
    assert not read.tables


def test_html_posing_as_xpt_named_as_html():
    read = read_file(_corpus("cdisc-pilot__reference-ranges__lab1_0_1refrangesampledata.xpt"))
    finding = next(f for f in read.findings if f.code == "IMP-FILE-HTML")
    assert "404 Not Found" in finding.message


def test_password_and_empty_files():
    pw = read_file(_corpus("python-calamine__data__password.xlsx")).findings[0]
    assert pw.code == "IMP-FILE-PASSWORD" and "remove the password" in pw.message
    empty = read_file(_corpus("python-calamine__data__empty_file.xlsx")).findings[0]
    assert empty.code == "IMP-FILE-EMPTY" and "0 bytes" in empty.message


def test_spreadsheetml_xls_read_to_tables():
    read = read_file(_corpus("phuse-scripts__output__AE_Severity.xls"))
    names = [t.name for t in read.tables]
    assert names[:3] == ["Front Page", "1 AEs by Arm", "2 Serious AEs by Arm"]
    # The real header is row 10, below the export title, run date and a footnote (rows 2-8).
    table = read.tables[1]
    assert table.header_row == 10 and table.rows == 67
    assert table.columns[:3] == ["Body System or Organ Class", "Dictionary-Derived Term", "Placebo"]
    offsets = [f for f in read.findings if f.code == "IMP-HEADER-OFFSET" and f.sheet == "1 AEs by Arm"]
    assert [(f.row, f.evidence["skipped"]) for f in offsets] == [(10, 5)]


def test_errors_xlsx_error_cells_with_positions():
    result = import_files([_corpus("calamine__tests__errors.xlsx")], _study())
    errors = [(f.sheet, f.row, f.value) for f in result.report.findings if f.code == "IMP-EXCEL-ERROR"]
    assert errors == [("Feuil1", 1, "#DIV/0!"), ("Feuil1", 2, "#NAME?"), ("Feuil1", 3, "#VALUE!"),
                      ("Feuil1", 4, "#NULL!"), ("Feuil1", 5, "#REF!"), ("Feuil1", 6, "#NUM!"),
                      ("Feuil1", 7, "#N/A")]
    assert "cell A7" in [f for f in result.report.findings if f.value == "#N/A"][0].message


def test_date_1904_workbook_dates_are_right():
    read = read_file(_corpus("calamine__tests__date_1904.xlsx"))
    assert read.date_system == 1904
    table = read.tables[0]
    assert table.columns == ["2021-01-01", "15"]  # row 1 is data: it becomes the header
    assert table.values.iloc[0, 0] == dt.date(2021, 1, 2)  # 1904 system: not shifted by 4 years
    assert table.values.iloc[0, 1] == 16.0


def test_any_sheets_hidden_reported():
    result = import_files([_corpus("calamine__tests__any_sheets.xlsx")], _study())
    tables = {t["name"]: t for t in result.files[0]["tables"]}
    assert tables["Hidden"]["visibility"] == "hidden" and tables["Hidden"]["hidden"]
    assert tables["VeryHidden"]["visibility"] == "veryHidden"
    assert tables["Chart"].get("role") == "chartsheet"
    assert tables["Visible"]["rows"] == 4
    hidden = {f.sheet for f in result.report.findings if f.code == "IMP-SHEET-HIDDEN"}
    assert hidden == {"Hidden", "VeryHidden"}


def test_strict_ooxml_76_rows_18_columns():
    read = read_file(_corpus("calamine__tests__strict_iso_paths.xlsx"))
    table = read.tables[0]
    assert table.header_row == 1 and table.rows + 1 == 76 and len(table.columns) == 18
    assert table.columns[:2] == ["Item", "Thickness"]
    assert any(f.code == "IMP-STRICT-OOXML" for f in read.findings)


def test_issue_419_without_shared_strings():
    table = read_file(_corpus("calamine__tests__issue_419.xlsx")).tables[0]
    assert table.columns == ["Hello"]


def test_zero_rows_keeps_columns():
    table = read_file(_corpus("sas7bdat-parser-rs__pandas__zero_rows.sas7bdat")).tables[0]
    assert table.rows == 0 and table.columns == ["char_field", "num_field"]


def test_many_columns():
    table = read_file(_corpus("sas7bdat-parser-rs__pandas__many_columns.sas7bdat")).tables[0]
    assert (table.rows, len(table.columns)) == (3, 392)
    assert table.values["DATASRC"].iloc[0] == "a030"


def test_tagged_na_with_catalogue_applied():
    read = read_file(_corpus("haven__sas__tagged-na.sas7bdat"))
    values = list(read.tables[0].values["x"])
    assert values[:5] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert values[5] == "Apple" and values[7] == "Zebra"
    assert read.extra["catalog"].endswith("tagged-na.sas7bcat")


def test_phuse_dm_is_an_sdtm_export_of_another_study():
    result = import_files([_corpus("phuse-scripts__FDA__dm.sas7bdat")], _study())
    table = result.files[0]["tables"][0]
    assert (table["form"], table["role"]) == (None, "SDTM domain DM of study ABC")
    assert [f.code for f in result.report.findings if f.severity.value == "error"] == ["MAP-SDTM-STUDY"]
    # Read through the study's SDTM map on the data manager's say-so (--mapping): 162 records.
    mapped = import_files([_corpus("phuse-scripts__FDA__dm.sas7bdat")], _study(), mapping="sdtm_dm")
    assert len(mapped.forms["DM"]) == 162
    assert list(mapped.forms["DM"].lineage["ROW"][:2]) == [1, 2]
    assert mapped.forms["DM"].raw["BRTHYM"].iloc[0] == "1941-07-03"  # as sent: the privacy check refuses it


def test_sample_sav_user_missing_and_labels():
    table = read_file(_corpus("pyreadstat__basic__sample_missing.sav")).tables[0]
    assert table.labels[0] == "character"
    assert "mynum" in table.value_labels["__missing__"]


def _study():
    from trialkit.study import load_study

    return load_study()
