"""The importer reads both template layouts: version 1.0 (codes in row 1, SITEID pre-filled) and the
current one (title, codes, labels and hints in the site's language; SITEID filled in from the stamp).

``tests/data/ANK-SJIA-01_upload_template_site01_v1.0.xlsx`` is Milan's template exactly as trialkit's
version-1.0 generator wrote it (``trialkit template --site 01`` before the layout changed): a site may
still hold and fill it.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from trialkit.demo import write_xlsx
from trialkit.importers.reader import import_files
from trialkit.templates import (
    CODE_ROW,
    FIRST_ENTRY_ROW,
    HINT_ROW,
    LABEL_ROW,
    build_template,
    save_deterministic,
)
from trialkit.validate import validate

VERSION_1_0 = Path(__file__).resolve().parent / "data" / "ANK-SJIA-01_upload_template_site01_v1.0.xlsx"

RECORDS = {
    "DM": [{"SITEID": "01", "SUBJID": "01-001", "ICDAT": dt.date(2024, 3, 5), "BRTHYM": "2014-07", "SEX": "F"},
           {"SITEID": "01", "SUBJID": "01-002", "ICDAT": dt.date(2024, 3, 9), "BRTHYM": "2011-11", "SEX": "M"}],
    "VS": [{"SITEID": "01", "SUBJID": "01-001", "VISIT": "SCR", "VSDAT": dt.date(2024, 3, 5), "WEIGHT": 31.5,
            "WEIGHTU": "kg", "HEIGHT": 138.0, "HEIGHTU": "cm", "TEMP": 36.8, "TEMPU": "C", "SYSBP": 104,
            "DIABP": 66, "HR": 88},
           {"SITEID": "01", "SUBJID": "01-002", "VISIT": "SCR", "VSDAT": dt.date(2024, 3, 9), "WEIGHT": 40.25,
            "WEIGHTU": "kg", "HEIGHT": 151.0, "HEIGHTU": "cm", "TEMP": 37.9, "TEMPU": "C"}],
    "AE": [{"SITEID": "01", "SUBJID": "01-001", "AETERM": "Injection site erythema", "AESTDAT": dt.date(2024, 3, 20),
            "AEONGO": "Y", "AETOXGR": 1, "AESER": "N", "AEREL": "RELATED", "AEACN": "DOSE NOT CHANGED",
            "AEOUT": "RECOVERING", "AESI": "INJECTION SITE REACTION"}],
}


def _comparable(result):
    return {code: (form.data.reset_index(drop=True), form.raw.reset_index(drop=True))
            for code, form in result.forms.items() if len(form.data)}


def _fill_version_1_0(study, path: Path, records, *, blank_siteid: bool = False) -> Path:
    """Milan's version-1.0 template filled from row 2 the site's way, its pre-filled SITEID kept."""
    from trialkit.demo import typed_cell

    shutil.copy(VERSION_1_0, path)
    book = load_workbook(path)
    site = study.site("01")
    for code, rows in records.items():
        sheet = book[code]
        names = [c.value for c in sheet[1]]
        assert names == [v.name for v in study.forms[code].site_variables]  # the layout it was made with
        for r, row in enumerate(rows, start=2):
            for c, var in enumerate(study.forms[code].site_variables, start=1):
                value = typed_cell(var, row.get(var.name), site, form=code)
                if var.name == "SITEID":
                    value = None if blank_siteid else sheet.cell(row=r, column=c).value
                if value is not None or var.name == "SITEID":
                    sheet.cell(row=r, column=c).value = value
    book.save(path)
    return path


def test_the_version_1_0_fixture_is_the_old_layout():
    book = load_workbook(VERSION_1_0)
    try:
        dm = book["DM"]
        assert dm["A1"].value == "SITEID" and dm["A2"].value == "01" and dm.max_row > 400  # pre-filled
        stamp = {r[0]: r[1] for r in book["_trialkit"].iter_rows(values_only=True)}
        assert stamp["site"] == "01" and "layout" not in stamp
    finally:
        book.close()


def test_a_version_1_0_template_imports_with_no_loss(tmp_path, study):
    old = import_files([_fill_version_1_0(study, tmp_path / "v1.xlsx", RECORDS)], study, site="01")
    new = import_files([write_xlsx(study, "01", RECORDS, tmp_path / "v2.xlsx")], study, site="01")
    before, after = _comparable(old), _comparable(new)
    assert set(before) == set(after) == set(RECORDS)
    for code in RECORDS:
        assert len(before[code][0]) == len(RECORDS[code])  # the 500-3,000 pre-filled rows are no records
        assert before[code][0].equals(after[code][0]), code
        assert before[code][1].equals(after[code][1]), code
    assert [f.code for f in old.report.findings if f.severity.value != "info"] == []
    rows = {t["name"]: t for t in old.files[0]["tables"]}
    assert "template_rows" not in rows["DM"] and old.forms["DM"].lineage["ROW"].tolist() == [2, 3]
    assert new.forms["DM"].lineage["ROW"].tolist() == [FIRST_ENTRY_ROW, FIRST_ENTRY_ROW + 1]
    assert validate(study, old, site="01").counts() == validate(study, new, site="01").counts()


@pytest.mark.parametrize("site", ["01", "03", "04", "05", "06", "09"])
def test_label_and_hint_rows_are_no_records_in_any_language(tmp_path, study, site):
    records = {code: [{**row, "SITEID": site, "SUBJID": site + row["SUBJID"][2:]} for row in rows]
               for code, rows in RECORDS.items()}
    result = import_files([write_xlsx(study, site, records, tmp_path / "up.xlsx")], study, site=site)
    assert {code: len(form.data) for code, form in result.forms.items() if len(form.data)} == {
        code: len(rows) for code, rows in records.items()}
    tables = {t["name"]: t for t in result.files[0]["tables"]}
    assert tables["DM"]["template_rows"] == [LABEL_ROW, HINT_ROW] and tables["DM"]["rows"] == 2
    assert tables["MH"]["rows"] == 0  # an empty form sheet holds no record
    codes = {f.code for f in result.report.findings}
    assert "IMP-HEADER-OFFSET" not in codes  # the title row is the template's, not a note
    assert not {f.code for f in validate(study, result, site=site).findings
                if f.category.value in ("type", "codelist", "required", "structure")}


def test_label_rows_of_a_sheet_copied_without_the_stamp_are_skipped(tmp_path, study):
    """A site copies the Italian header block and its rows into a workbook of its own."""
    template = build_template(study, study.site("01"))
    source = template["DM"]
    book = Workbook()
    sheet = book.active
    sheet.title = "DM"
    for row in range(1, HINT_ROW + 1):
        for col in range(1, 6):
            sheet.cell(row=row, column=col, value=source.cell(row=row, column=col).value)
    sheet.append(["01", "01-001", "05/03/2024", "2014-07", "F"])
    book.save(tmp_path / "copy.xlsx")
    result = import_files([tmp_path / "copy.xlsx"], study, site="01")
    assert len(result.forms["DM"].data) == 1
    assert result.forms["DM"].lineage["ROW"].tolist() == [HINT_ROW + 1]
    assert "IMP-TEMPLATE-STAMP" in {f.code for f in result.report.findings}


def test_a_record_under_the_header_is_never_taken_for_a_label_row(tmp_path, study):
    """Only a row whose cells are mostly labels or hints is skipped: a record whose SEX is typed as
    the word 'Sex' (its column's label) is a record with a codelist error."""
    book = Workbook()
    sheet = book.active
    sheet.title = "DM"
    sheet.append([v.name for v in study.forms["DM"].site_variables])
    sheet.append(["01", "01-001", "05/03/2024", "2014-07", "Sex"])
    sheet.append(["Codice del centro", "Codice del soggetto (SS-NNN)", "05/03/2024", "2014-07", "F"])
    book.save(tmp_path / "plain.xlsx")
    result = import_files([tmp_path / "plain.xlsx"], study, site="01")
    assert result.forms["DM"].lineage["ROW"].tolist() == [2, 3]
    assert "template_rows" not in result.files[0]["tables"][0]


def _template_with_blank_siteid(study, path: Path, site: str | None) -> Path:
    book = build_template(study, study.site(site) if site else None)
    sheet = book["DM"]
    for col, value in enumerate([None, "01-001", dt.datetime(2024, 3, 5), "2014-07", "F"], start=1):
        sheet.cell(row=FIRST_ENTRY_ROW, column=col, value=value)
    for col, value in enumerate(["ND", "01-002", dt.datetime(2024, 3, 9), "2011-11", "M"], start=1):
        sheet.cell(row=FIRST_ENTRY_ROW + 1, column=col, value=value)
    save_deterministic(book, path)
    return path


def test_a_blank_siteid_is_filled_in_from_the_site_templates_stamp(tmp_path, study):
    result = import_files([_template_with_blank_siteid(study, tmp_path / "t.xlsx", "01")], study, site="01")
    dm = result.forms["DM"]
    assert dm.data["SITEID"].tolist()[0] == "01"
    assert dm.raw["SITEID"].tolist()[0] == ""  # the upload is shown as typed
    assert dm.reasons["SITEID"].tolist()[1] == "ND"  # a missing-value code is the site's answer: kept
    changes = dm.changes[dm.changes["rule"] == "siteid-from-template"]
    assert changes[["variable", "original", "value"]].values.tolist() == [["SITEID", "", "01"]]
    note = [f for f in result.report.findings if f.check == "siteid-from-template"]
    assert len(note) == 1 and note[0].code == "IMP-NORMALISED" and note[0].row == FIRST_ENTRY_ROW
    assert result.files[0]["stamp_site"] == "01"
    problems = [f for f in validate(study, result, site="01").findings
                if f.variable == "SITEID" and f.severity.value != "info"]
    assert problems == []  # the blank one was filled in; the ND row has its reason


def test_a_blank_siteid_without_a_site_stamp_stays_an_error(tmp_path, study):
    result = import_files([_template_with_blank_siteid(study, tmp_path / "t.xlsx", None)], study, site="01")
    assert result.forms["DM"].data["SITEID"].isna().tolist()[0]
    assert not any(f.check == "siteid-from-template" for f in result.report.findings)
    errors = [f for f in validate(study, result, site="01").findings
              if f.variable == "SITEID" and f.severity.value != "info"]
    assert [(f.code, f.severity.value, f.row) for f in errors] == [("REQUIRED", "error", FIRST_ENTRY_ROW)]


def test_another_sites_template_fills_nothing_and_says_so(tmp_path, study):
    result = import_files([_template_with_blank_siteid(study, tmp_path / "t.xlsx", "01")], study, site="02")
    warning = [f for f in result.report.findings if f.code == "IMP-TEMPLATE-SITE"]
    assert len(warning) == 1 and warning[0].severity.value == "warning"
    assert "made for site 01 but is uploaded as site 02" in warning[0].message
    assert result.forms["DM"].data["SITEID"].isna().tolist()[0]


def test_a_version_1_0_template_with_siteid_cleared_is_filled_in_too(tmp_path, study):
    records = {"DM": RECORDS["DM"]}
    result = import_files([_fill_version_1_0(study, tmp_path / "v1.xlsx", records, blank_siteid=True)], study,
                          site="01")
    assert result.forms["DM"].data["SITEID"].tolist() == ["01", "01"]
    assert len(result.forms["DM"].changes.query("rule == 'siteid-from-template'")) == 2


def test_codes_stay_the_machine_header(study):
    book = build_template(study, study.site("05"))
    assert [c.value for c in book["DM"][CODE_ROW]] == ["SITEID", "SUBJID", "ICDAT", "BRTHYM", "SEX"]
    assert book["DM"].cell(row=LABEL_ROW, column=3).value == "Datum van geïnformeerde toestemming"
