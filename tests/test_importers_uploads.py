"""Defect-named uploads generated here (never copied from the corpus), one per normalisation rule."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from openpyxl import Workbook

from trialkit.importers.reader import import_files, read_file
from trialkit.study import load_study

STUDY = load_study()


def write_upload(path: Path, sheets: dict[str, list[list[Any]]], *, stamp: str | None = None,
                 errors: dict[str, list[str]] | None = None) -> Path:
    """An xlsx with one sheet per form (row 1 = header), an optional ``_trialkit`` stamp sheet and
    Excel error cells (``errors`` = sheet → cell refs holding ``#N/A``)."""
    workbook = Workbook()
    workbook.remove(workbook.active)
    if stamp is not None:
        info = workbook.create_sheet("Instructions")
        info["A1"] = "Fill one sheet per form."
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
        for ref in (errors or {}).get(name, []):
            sheet[ref] = "#N/A"  # openpyxl infers the error type 'e' from the text
            assert sheet[ref].data_type == "e"
    if stamp is not None:
        meta = workbook.create_sheet("_trialkit")
        meta["A1"], meta["B1"] = "key", "value"
        meta["A2"], meta["B2"] = "version", stamp
        meta.sheet_state = "hidden"
    workbook.save(path)
    return path
DM_HEAD = ["SITEID", "SUBJID", "ICDAT", "BRTHYM", "SEX"]
LB_HEAD = ["SITEID", "SUBJID", "VISIT", "LBDAT", "LBTESTCD", "LBORRES", "LBORRESU", "LBNRLO", "LBNRHI", "LBSTAT"]
VS_HEAD = ["SITEID", "SUBJID", "VISIT", "VSDAT", "WEIGHT", "WEIGHTU", "HEIGHT", "HEIGHTU", "TEMP", "TEMPU",
           "SYSBP", "DIABP", "HR"]


def _codes(result, code):
    return [f for f in result.report.findings if f.code == code]


def _changes(form, variable, rule):
    log = form.changes
    return log[(log["variable"] == variable) & (log["rule"] == rule)]


def test_italian_dates_decimal_commas(tmp_path):
    path = write_upload(tmp_path / "italian-dates-decimal-commas.xlsx", {
        "VS": [VS_HEAD, ["01", "01-001", "SCR", "03/02/2024", "12,5", "kg", "140", "cm", "37,2", "C", 100, 60, 90]],
    }, stamp=STUDY.version_stamp)
    result = import_files([path], STUDY)
    vs = result.forms["VS"]
    assert vs.data.loc[0, "VSDAT"] == pd.Timestamp("2024-02-03")
    assert vs.data.loc[0, "WEIGHT"] == 12.5 and vs.data.loc[0, "TEMP"] == 37.2
    assert vs.raw.loc[0, "WEIGHT"] == "12,5"
    assert _changes(vs, "VSDAT", "date:DMY")["original"].tolist() == ["03/02/2024"]
    info = [f for f in _codes(result, "IMP-NORMALISED") if f.variable == "WEIGHT"]
    assert len(info) == 1 and info[0].evidence == {"rule": "decimal-comma", "count": 1}
    assert vs.lineage.loc[0, "ROW"] == 2 and vs.lineage.loc[0, "SHEET"] == "VS"


def test_us_dates_lb_units(tmp_path):
    path = write_upload(tmp_path / "us-dates-lb-units.xlsx", {
        "LB": [LB_HEAD, ["08", "08-001", "SCR", "02/03/2024", "WBC", 7.1, "x10^9/L", 4, 11, ""],
               ["08", "08-001", "SCR", "02/03/2024", "FERRITIN", 100, "µg/L", 10, 200, ""],
               ["08", "08-001", "SCR", "02/03/2024", "CREAT", 88.42, "umol/l", "", "", ""],
               ["08", "08-001", "SCR", "02/03/2024", "HGB", 12, "furlongs", "", "", ""]],
        "VS": [VS_HEAD, ["08", "08-001", "SCR", "02/03/2024", 150, "lb", 60, "in", 98.6, "F", 100, 60, 90]],
    }, stamp=STUDY.version_stamp)
    result = import_files([path], STUDY)
    lb = result.forms["LB"]
    assert lb.data.loc[0, "LBDAT"] == pd.Timestamp("2024-02-03")  # month/day/year at site 08
    assert lb.data["LBSTRESU"].tolist()[:3] == ["10^9/L", "ng/mL", "mg/dL"]
    assert lb.data.loc[2, "LBSTRESN"] == pytest.approx(1.0)
    assert lb.data.loc[0, "LBORRESU"] == "x10^9/L"  # as reported
    unknown = _codes(result, "IMP-UNIT-UNKNOWN")
    assert [(f.value, f.row) for f in unknown] == [("furlongs", 5)]
    assert pd.isna(lb.data.loc[3, "LBSTRESN"])
    vs = result.forms["VS"]
    assert vs.data.loc[0, "WEIGHT"] == pytest.approx(68.0388555)
    assert vs.data.loc[0, "HEIGHT"] == pytest.approx(152.4)
    assert vs.data.loc[0, "TEMP"] == pytest.approx(37.0)
    assert vs.data.loc[0, ["WEIGHTU", "HEIGHTU", "TEMPU"]].tolist() == ["kg", "cm", "C"]
    assert vs.raw.loc[0, "WEIGHTU"] == "lb"
    assert _changes(vs, "WEIGHT", "unit:lb->kg")["original"].tolist() == ["150 lb"]
    assert _changes(vs, "TEMPU", "unit:F->C")["original"].tolist() == ["F"]


def test_crp_mg_dl_converted_original_kept(tmp_path):
    path = write_upload(tmp_path / "crp-mg-dl.xlsx", {
        "LB": [LB_HEAD, ["07", "07-001", "SCR", "2024-02-03", "CRP", 1.2, "mg/dL", 0, 0.5, ""]]})
    lb = import_files([path], STUDY).forms["LB"]
    assert lb.data.loc[0, "LBSTRESN"] == 12.0
    assert lb.data.loc[0, "LBSTRESU"] == "mg/L"
    assert lb.data.loc[0, "LBSTNRHI"] == 5.0
    assert (lb.data.loc[0, "LBORRES"], lb.data.loc[0, "LBORRESU"]) == (1.2, "mg/dL")
    change = _changes(lb, "LBSTRESN", "unit:mg/dL->mg/L")
    assert change[["original", "value"]].values.tolist() == [["1.2 mg/dL", "12.0"]]


def test_nd_codes_kept_as_reasons(tmp_path):
    path = write_upload(tmp_path / "nd-codes.xlsx", {
        "VS": [VS_HEAD, ["07", "07-001", "SCR", "2024-02-03", "ND", "kg", " nk ", "cm", "NA", "C", 100, 60, 90]],
        "LB": [LB_HEAD, ["07", "07-001", "SCR", "2024-02-03", "ESR", "", "", "", "", "ND"]]})
    result = import_files([path], STUDY)
    vs = result.forms["VS"]
    assert vs.reasons.loc[0, ["WEIGHT", "HEIGHT", "TEMP"]].tolist() == ["ND", "NK", "NA"]
    assert vs.data.loc[0, ["WEIGHT", "HEIGHT", "TEMP"]].isna().all()
    assert vs.raw.loc[0, "WEIGHT"] == "ND"
    lb = result.forms["LB"]
    assert lb.data.loc[0, "LBSTAT"] == "ND"  # a codelist value, not a missing code
    assert pd.isna(lb.reasons.loc[0, "LBSTAT"])


def test_na_error_cell(tmp_path):
    path = write_upload(tmp_path / "na-error-cell.xlsx", {
        "LB": [LB_HEAD, ["07", "07-001", "SCR", "2024-02-03", "CRP", 3, "mg/L", 0, 5, ""],
               ["07", "07-001", "SCR", "2024-02-03", "ESR", 10, "mm/h", 0, 20, ""]]}, errors={"LB": ["F3"]})
    import python_calamine

    rows = python_calamine.CalamineWorkbook.from_path(str(path)).get_sheet_by_name("LB").to_python()
    assert rows[2][5] == ""  # calamine alone would lose it
    result = import_files([path], STUDY)
    (finding,) = _codes(result, "IMP-EXCEL-ERROR")
    assert (finding.sheet, finding.row, finding.variable, finding.value) == ("LB", 3, "LBORRES", "#N/A")
    assert "cell F3" in finding.message and finding.subject == "07-001"
    lb = result.forms["LB"]
    assert pd.isna(lb.data.loc[1, "LBORRES"]) and lb.raw.loc[1, "LBORRES"] == "#N/A"


def test_leading_zero_ids(tmp_path):
    path = write_upload(tmp_path / "leading-zero-ids.xlsx", {
        "RAND": [["SITEID", "SUBJID", "RANDNO", "RANDDAT", "STRATUM", "KITNO"],
                 ["07", "07-001", "0012", "2024-02-03", "PEDI", "000345"]]})
    rand = import_files([path], STUDY).forms["RAND"]
    assert rand.data.loc[0, "RANDNO"] == "0012" and rand.data.loc[0, "KITNO"] == "000345"
    assert rand.data.loc[0, "SITEID"] == "07"


def test_sex_synonyms(tmp_path):
    path = write_upload(tmp_path / "sex-synonyms.xlsx", {
        "DM": [DM_HEAD, ["07", "07-001", "2024-01-01", "2010-01", "Male"],
               ["07", "07-002", "2024-01-01", "2010-01", "m"],
               ["07", "07-003", "2024-01-01", "2010-01", 1],
               ["07", "07-004", "2024-01-01", "2010-01", "Femmina"],
               ["07", "07-005", "2024-01-01", "2010-01", "X"]]})
    result = import_files([path], STUDY)
    dm = result.forms["DM"]
    assert dm.data["SEX"].tolist() == ["M", "M", "M", "F", "X"]  # X is left to the codelist check
    assert len(_changes(dm, "SEX", "synonym")) == 4
    (info,) = [f for f in _codes(result, "IMP-NORMALISED") if f.variable == "SEX"]
    assert info.evidence["count"] == 4 and "'Male' → 'M'" in info.message


def test_unknown_and_missing_column(tmp_path):
    path = write_upload(tmp_path / "unknown-column.xlsx", {
        "DM": [["SITEID", "SUBJID", "ICDAT", "SEX", "NICKNAME"], ["07", "07-001", "2024-01-01", "F", "Bob"]]})
    result = import_files([path], STUDY)
    (unknown,) = _codes(result, "IMP-COLUMN-UNKNOWN")
    assert unknown.value == "NICKNAME" and unknown.category.value == "structure"
    (missing,) = _codes(result, "IMP-COLUMN-MISSING")
    assert missing.variable == "BRTHYM" and missing.severity.value == "error"
    assert result.forms["DM"].data["BRTHYM"].isna().all()


def test_header_by_label(tmp_path):
    path = write_upload(tmp_path / "header-by-label.xlsx", {
        "Demographics": [["Site identifier", "subjid", "Informed consent date", "Birth year and month", "Sex"],
                         ["07", "07-001", "2024-01-01", "2010-01", "F"]]})
    result = import_files([path], STUDY)
    assert result.files[0]["tables"][0]["form"] == "DM"
    dm = result.forms["DM"]
    assert dm.data.loc[0, "ICDAT"] == pd.Timestamp("2024-01-01") and dm.data.loc[0, "SEX"] == "F"
    assert {f.variable for f in _codes(result, "IMP-HEADER-LABEL")} == {"SITEID", "ICDAT", "BRTHYM"}
    assert {f.variable for f in _codes(result, "IMP-HEADER-NAME")} == {"SUBJID", "SEX"}


def test_windows_1252_csv(tmp_path):
    path = tmp_path / "windows-1252.csv"
    path.write_bytes("SITEID,SUBJID,AETERM\n07,07-001,Caf\u00e9 \u2019rash\u2019\n".encode("cp1252"))
    read = read_file(path)
    assert read.encoding == "cp1252"
    assert [f.code for f in read.findings] == ["IMP-ENCODING-CP1252"]
    assert read.tables[0].values["AETERM"].iloc[0] == "Caf\u00e9 \u2019rash\u2019"


def test_semicolon_csv_keeps_na_and_zeros(tmp_path):
    path = tmp_path / "site08_lb.csv"
    path.write_text("SITEID;SUBJID;VISIT;LBDAT;LBTESTCD;LBORRES;LBORRESU;LBNRLO;LBNRHI;LBSTAT\n"
                    "08;08-001;SCR;02/03/2024;CRP;1.5;mg/L;0;5;\n\n"
                    "08;08-002;SCR;02/04/2024;CRP;NA;;;;\n", encoding="utf-8")
    read = read_file(path)
    assert read.extra["delimiter"] == ";"
    values = read.tables[0].values
    assert values["SITEID"].tolist() == ["08", "08"] and values["LBORRES"].tolist() == ["1.5", "NA"]
    assert values.index.tolist() == [2, 4]  # line numbers; the blank line is not a record
    result = import_files([path], STUDY)
    lb = result.forms["LB"]  # matched by the stem word "lb"
    assert lb.lineage["ROW"].tolist() == [2, 4]
    assert lb.reasons.loc[1, "LBORRES"] == "NA" and lb.data.loc[0, "LBDAT"] == pd.Timestamp("2024-02-03")


def test_undecodable_csv(tmp_path):
    path = tmp_path / "undecodable.csv"
    path.write_bytes(b"SUBJID;AETERM\n07-001;\x81\x8d\n")
    (finding,) = read_file(path).findings
    assert finding.code == "IMP-FILE-ENCODING" and "0x81" in finding.message
    assert finding.category.value == "file"


def test_html_as_xlsx(tmp_path):
    path = tmp_path / "html-as-xlsx.xlsx"
    path.write_text("<!DOCTYPE html><html><head><title>Session expired</title></head></html>")
    (finding,) = read_file(path).findings
    assert finding.code == "IMP-FILE-HTML" and "Session expired" in finding.message


def test_outdated_template_and_other_study(tmp_path):
    study_id, version, _ = STUDY.version_stamp.split("|")
    old = write_upload(tmp_path / "outdated-template.xlsx", {"DM": [DM_HEAD]},
                       stamp=f"{study_id}|{version}|000000000000")
    result = import_files([old], STUDY)
    (outdated,) = _codes(result, "IMP-TEMPLATE-OUTDATED")
    assert outdated.severity.value == "warning" and "outdated template" in outdated.message
    other = write_upload(tmp_path / "other-study.xlsx", {"DM": [DM_HEAD]}, stamp="OTHER-01|1.0|abc")
    assert _codes(import_files([other], STUDY), "IMP-TEMPLATE-STUDY")[0].severity.value == "error"
    plain = write_upload(tmp_path / "no-stamp.xlsx", {"DM": [DM_HEAD]})
    assert _codes(import_files([plain], STUDY), "IMP-TEMPLATE-STAMP")[0].severity.value == "warning"
    current = write_upload(tmp_path / "current.xlsx", {"DM": [DM_HEAD]}, stamp=STUDY.version_stamp)
    assert not [f for f in import_files([current], STUDY).report.findings if f.code.startswith("IMP-TEMPLATE")]


def test_text_date_without_site_is_a_type_error(tmp_path):
    path = write_upload(tmp_path / "no-site-dates.xlsx", {
        "DM": [["SUBJID", "ICDAT", "BRTHYM", "SEX"], ["07-001", "03/02/2024", "2010-01", "F"]]})
    result = import_files([path], STUDY)
    (error,) = _codes(result, "IMP-TYPE")
    assert error.variable == "ICDAT" and error.value == "03/02/2024" and "--site" in error.message
    result = import_files([path], STUDY, site="08")
    assert result.forms["DM"].data.loc[0, "ICDAT"] == pd.Timestamp("2024-03-02")


def test_unconvertible_value_type_error(tmp_path):
    path = write_upload(tmp_path / "bad-number.xlsx", {
        "VS": [VS_HEAD, ["07", "07-001", "SCR", "2024-02-03", "heavy", "kg", 140, "cm", 37, "C", 100.5, 60, 90]]})
    result = import_files([path], STUDY)
    errors = {(f.variable, f.value, f.expected) for f in _codes(result, "IMP-TYPE")}
    assert errors == {("WEIGHT", "heavy", "a number"), ("SYSBP", "100.5", "a whole number")}
    vs = result.forms["VS"]
    assert pd.isna(vs.data.loc[0, "WEIGHT"]) and vs.raw.loc[0, "WEIGHT"] == "heavy"


def test_excel_serial_in_date_column_1900(tmp_path):
    path = write_upload(tmp_path / "serial-date.xlsx", {
        "DM": [DM_HEAD, ["07", "07-001", 45325, "2010-01", "F"], ["07", "07-002", dt.date(2024, 2, 3), 2010, "F"]]})
    result = import_files([path], STUDY)
    dm = result.forms["DM"]
    assert dm.data["ICDAT"].tolist() == [pd.Timestamp("2024-02-03")] * 2
    assert len(_changes(dm, "ICDAT", "excel-serial-1900")) == 1
    assert dm.data.loc[1, "BRTHYM"] == "2010"


def test_same_form_from_two_files_concatenated(tmp_path):
    one = write_upload(tmp_path / "a.xlsx", {"DM": [DM_HEAD, ["07", "07-001", "2024-01-01", "2010-01", "F"]]})
    two = write_upload(tmp_path / "b.xlsx", {"DM": [DM_HEAD, ["07", "07-002", "2024-01-01", "2010-01", "Male"]]})
    result = import_files([one, two], STUDY)
    dm = result.forms["DM"]
    assert dm.data["SUBJID"].tolist() == ["07-001", "07-002"]
    assert dm.lineage["FILE"].tolist() == [str(one), str(two)]
    assert _changes(dm, "SEX", "synonym")["index"].tolist() == [1]
    assert [i.format for i in result.report.inputs] == ["xlsx", "xlsx"]
    assert len(result.report.inputs[0].sha256) == 64


def test_done_when_filled_template(tmp_path):
    """The issue's scenario: Italian dates, decimal commas, ND codes, CRP in mg/dL and an #N/A cell."""
    path = write_upload(tmp_path / "filled-template-site01.xlsx", {
        "DM": [DM_HEAD, ["01", "01-001", "03/02/2024", "2010-3", "Maschio"]],
        "VS": [VS_HEAD, ["01", "01-001", "SCR", "03/02/2024", "32,5", "kg", "ND", "cm", "37,8", "C", 110, 70, 95]],
        "LB": [LB_HEAD, ["01", "01-001", "SCR", "03/02/2024", "CRP", "1,2", "mg/dL", "0", "0,5", ""],
               ["01", "01-001", "SCR", "03/02/2024", "ESR", "", "", "", "", "ND"],
               ["01", "01-001", "SCR", "03/02/2024", "HGB", "", "g/dL", "12", "16", ""]],
    }, stamp=STUDY.version_stamp, errors={"LB": ["F4"]})
    result = import_files([path], STUDY, site="01")
    dm, vs, lb = result.forms["DM"], result.forms["VS"], result.forms["LB"]
    assert dm.data.loc[0, "ICDAT"] == pd.Timestamp("2024-02-03")
    assert dm.data.loc[0, "BRTHYM"] == "2010-03" and dm.data.loc[0, "SEX"] == "M"
    assert vs.data.loc[0, "WEIGHT"] == 32.5 and vs.data.loc[0, "TEMP"] == 37.8
    assert vs.reasons.loc[0, "HEIGHT"] == "ND" and pd.isna(vs.data.loc[0, "HEIGHT"])
    assert lb.data.loc[0, "LBSTRESN"] == 12.0 and lb.data.loc[0, "LBSTRESU"] == "mg/L"
    assert lb.data.loc[0, "LBORRES"] == 1.2 and lb.raw.loc[0, "LBORRES"] == "1,2"
    assert lb.data.loc[1, "LBSTAT"] == "ND"
    (excel_error,) = _codes(result, "IMP-EXCEL-ERROR")
    assert (excel_error.sheet, excel_error.row, excel_error.variable) == ("LB", 4, "LBORRES")
    rules = {(f.variable, f.check) for f in _codes(result, "IMP-NORMALISED")}
    assert {("ICDAT", "date:DMY"), ("WEIGHT", "decimal-comma"), ("HEIGHT", "missing-code"),
            ("LBSTRESN", "unit:mg/dL->mg/L"), ("BRTHYM", "pdate-pad"), ("SEX", "synonym")} <= rules
    assert not _codes(result, "IMP-TEMPLATE-OUTDATED") and not _codes(result, "IMP-TYPE")
    assert {f.site for f in result.report.findings} == {"01"}
    assert result.report.worst().value == "error"


def test_a_sheet_the_normaliser_cannot_convert_is_refused_and_the_others_still_read(tmp_path, study, monkeypatch):
    """A bug in the normaliser must not lose the run: only that sheet is refused, with a finding."""
    from trialkit.importers import reader

    from .site_data import subjects, workbook

    path = workbook(study, tmp_path / "site01.xlsx", subjects("01", [1, 2]))
    real = reader.normalise_table

    def broken_on_vs(table, form, *args, **kwargs):
        if form.code == "VS":
            raise ValueError("simulated normaliser bug")
        return real(table, form, *args, **kwargs)

    monkeypatch.setattr(reader, "normalise_table", broken_on_vs)
    result = reader.import_files([path], study, site="01")
    refused = [f for f in result.report.findings if f.code == "IMP-SHEET-UNREADABLE"]
    assert [(f.form, f.sheet, f.severity.value) for f in refused] == [("VS", "VS", "error")]
    assert "sheet 'VS' could not be converted (ValueError: simulated normaliser bug)" in refused[0].message
    assert "VS" not in result.forms and {"DM", "AE"} <= set(result.forms)
