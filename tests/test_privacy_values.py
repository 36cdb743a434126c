"""Identifiers never reach the archive: by header in the sites' languages, by value under any header, in
every sheet (hidden ones too), in notes above a header and in cell comments.

Generated uploads: each carries one identifier where the first round let it through (a name under
"Child's name" or "Patient" or a blank header, an e-mail under "Contact", a phone under "Parent
contact", national and insurance numbers with valid check digits, names in a hidden sheet and in a
cell comment, a full birth date in DM). Numbers whose check digits fail, and ordinary CRF values,
raise nothing; the demo's uploads and the shared corpus raise nothing they should not.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import zipfile

import pytest
from openpyxl import Workbook
from openpyxl.comments import Comment

from tests.upload_builder import write_upload
from trialkit.findings import Category, Report, Severity
from trialkit.importers.reader import import_files
from trialkit.ledger import PrivacyRefused, init_workspace
from trialkit.privacy import (
    bsn_valid,
    codice_fiscale_valid,
    dni_valid,
    header_kind,
    nhs_valid,
    nir_valid,
)
from trialkit.validate import validate

DM = {"SITEID": "01", "SUBJID": "01-001", "ICDAT": dt.date(2024, 1, 2), "BRTHYM": "2012-04", "SEX": "F"}
DM_HEAD = ["SITEID", "SUBJID", "ICDAT", "BRTHYM", "SEX"]
NIR = "1841276451089" + "46"  # the key is 97 - (number mod 97)


def _privacy(report):
    return [f for f in report.findings if f.category == Category.PRIVACY]


def _dm_with(tmp_path, header, values, name="site01.xlsx"):
    book = Workbook()
    sheet = book.active
    sheet.title = "DM"
    sheet.append([*DM_HEAD, header])
    for i, value in enumerate(values):
        sheet.append(["01", f"01-{i + 1:03d}", dt.datetime(2024, 1, 2), "2012-04", "F", value])
    path = tmp_path / name
    book.save(path)
    return path


def _report(path, study):
    return validate(study, import_files([path], study, site="01"), site="01")


@pytest.mark.parametrize("header,kind", [
    ("Child's name", "name"), ("Mother's name", "name"), ("Nom de l'enfant", "name"), ("Naam van het kind", "name"),
    ("BRTHDAT", "date of birth"), ("BRTHDTC", "date of birth"), ("Born", "date of birth"),
    ("Date de naissance", "date of birth"), ("Fecha de nacimiento", "date of birth"),
    ("Contact", "contact details"), ("Parent contact", "contact details"), ("Contatto genitore", "contact details"),
    ("Codice fiscale", "national or insurance number"), ("Tessera sanitaria", "national or insurance number"),
    ("Numéro de sécurité sociale", "national or insurance number"), ("NIR", "national or insurance number"),
    ("Versichertennummer", "national or insurance number"), ("Burgerservicenummer", "national or insurance number"),
    ("DNI", "national or insurance number"), ("Tarjeta sanitaria", "national or insurance number"),
    ("NHS number", "national or insurance number"), ("Social security number", "national or insurance number"),
    ("SSN", "national or insurance number"), ("Health card number", "national or insurance number"),
    ("Numéro d'assurance maladie", "national or insurance number"), ("SIN", "national or insurance number"),
    ("Indirizzo", "address"), ("Code postal", "address"), ("Home address", "address"),
])
def test_identifier_headers_in_the_sites_languages(header, kind):
    assert header_kind(header) == kind


@pytest.mark.parametrize("header", ["Birth year and month", "Site name", "Kit number", "Visit", "Mobile phase",
                                    "Contact with a sick person", "Sinus rhythm", "Diagnosis date", "Patient number",
                                    "Dose", "Nierfunctie", "Comments"])
def test_harmless_headers_stay_harmless(header):
    assert header_kind(header) is None


@pytest.mark.parametrize("header,values,kind", [
    ("Patient", ["Mario Rossi", "Giulia Bianchi"], "name"),
    ("", ["ROSSI Mario", "BIANCHI Giulia"], "name"),
    ("Notes", ["write to mario.rossi@example.com"], "e-mail address"),
    ("Remarks", ["Parent: +39 333 123 4567"], "phone number"),
    ("Ref", ["123-45-6789"], "US social security number"),
    ("Ref", ["RSSMRA80A01H501U"], "Italian codice fiscale"),
    ("Ref", ["1 84 12 76 451 089 46"], "French NIR"),
    ("Ref", ["12345678Z"], "Spanish DNI/NIE"),
    ("Ref", ["X1234567L"], "Spanish DNI/NIE"),
    ("Ref", ["943 476 5919"], "NHS number"),
    ("ID", ["111222333", "111222345"], "Dutch BSN"),
])
def test_identifiers_found_by_value_under_any_header(tmp_path, study, header, values, kind):
    report = _report(_dm_with(tmp_path, header, values), study)
    found = _privacy(report)
    assert found and all(f.severity == Severity.ERROR for f in found)
    kinds = {k for f in found for k in (f.evidence or {}).get("kinds", [(f.evidence or {}).get("kind")])}
    assert kind in kinds, [(f.code, f.message, f.evidence) for f in found]
    text = report.to_json()
    for value in values:
        assert value not in text  # never echoed, masked everywhere


@pytest.mark.parametrize("value", ["111222334", "12345678A", "RSSMRA80A01H501A", "01-001", "K-100023", "R001",
                                   "2024-01-02", "Placebo", "Methotrexate Sodium"])
def test_numbers_whose_check_digits_fail_and_crf_values_raise_nothing(tmp_path, study, value):
    report = _report(_dm_with(tmp_path, "Ref", [value]), study)
    assert _privacy(report) == [], [(f.message, f.evidence) for f in _privacy(report)]


def test_large_numbers_in_crf_number_columns_are_no_phone(tmp_path, study):
    book = Workbook()
    sheet = book.active
    sheet.title = "LB"
    sheet.append(["SITEID", "SUBJID", "VISIT", "LBDAT", "LBTESTCD", "LBORRES", "LBORRESU", "LBNRLO", "LBNRHI"])
    sheet.append(["01", "01-001", "SCR", "2024-01-02", "WBC", 7100000000, "x10^9/L", 4000000000, 11000000000])
    sheet.append(["01", "01-001", "W4", "2024-02-02", "WBC", "7100000000", "x10^9/L", "4000000000", "11000000000"])
    book.save(tmp_path / "lb.xlsx")
    assert _privacy(_report(tmp_path / "lb.xlsx", study)) == []


def test_check_digits():
    assert codice_fiscale_valid("RSSMRA80A01H501U") and not codice_fiscale_valid("RSSMRA80A01H501A")
    assert nir_valid(NIR) and not nir_valid(NIR[:-1] + "7")
    assert bsn_valid("111222333") and not bsn_valid("111222334")
    assert dni_valid("12345678Z") and dni_valid("X1234567L") and not dni_valid("12345678A")
    assert nhs_valid("9434765919") and not nhs_valid("9434765918")


def test_names_in_a_hidden_sheet_are_found(tmp_path, study):
    book = Workbook()
    book.active.title = "DM"
    book.active.append(DM_HEAD)
    book.active.append(["01", "01-001", dt.datetime(2024, 1, 2), "2012-04", "F"])
    lookup = book.create_sheet("Lookup")
    lookup.append(["Subject", "Patient"])
    lookup.append(["01-001", "Mario Rossi"])
    lookup.append(["01-002", "Giulia Bianchi"])
    lookup.sheet_state = "hidden"
    book.save(tmp_path / "hidden-names.xlsx")
    found = _privacy(_report(tmp_path / "hidden-names.xlsx", study))
    assert [(f.sheet, f.evidence.get("kinds")) for f in found] == [("Lookup", ["name"])]


def test_identifiers_in_a_cell_comment_are_found(tmp_path, study):
    book = Workbook()
    sheet = book.active
    sheet.title = "DM"
    sheet.append(DM_HEAD)
    sheet.append(["01", "01-001", dt.datetime(2024, 1, 2), "2012-04", "F"])
    sheet["B2"].comment = Comment("Mother: Maria Rossi, call +39 333 123 4567", "coordinator")
    book.save(tmp_path / "comment.xlsx")
    report = _report(tmp_path / "comment.xlsx", study)
    (finding,) = _privacy(report)
    assert finding.code == "PRIVACY-COMMENT" and finding.sheet == "DM" and "B2" in finding.message
    assert set(finding.evidence["kinds"]) >= {"name", "phone number"}
    assert "Rossi" not in report.to_json() and "123 4567" not in report.to_json()


def test_identifier_in_a_note_above_the_header_is_found(tmp_path, study):
    book = Workbook()
    sheet = book.active
    sheet.title = "DM"
    sheet["A1"] = "Export for patient ROSSI, Mario (mario.rossi@example.com)"
    sheet.append([])
    sheet.append(DM_HEAD)
    sheet.append(["01", "01-001", dt.datetime(2024, 1, 2), "2012-04", "F"])
    book.save(tmp_path / "note.xlsx")
    found = _privacy(_report(tmp_path / "note.xlsx", study))
    assert len(found) == 1 and found[0].row == 1 and "e-mail address" in found[0].evidence["kinds"]


def test_full_birth_date_in_dm_under_a_blank_header_is_found(tmp_path, study):
    path = _dm_with(tmp_path, "", [dt.datetime(2012, 5, 17), dt.datetime(2011, 7, 3)])
    report = _report(path, study)
    found = _privacy(report)
    assert len(found) == 1 and "full date of birth" in found[0].evidence["kinds"]
    assert "2012-05-17" not in report.to_json()


def test_a_visit_date_column_in_dm_is_not_a_birth_date(tmp_path, study):
    path = _dm_with(tmp_path, "Screening visit", [dt.datetime(2023, 12, 20), dt.datetime(2023, 12, 22)])
    assert _privacy(_report(path, study)) == []


def test_birth_variables_come_from_the_study_definition(study):
    birth = [(form.code, v.name) for form in study.forms.values() for v in form.variables if v.birth]
    assert birth == [("DM", "BRTHYM")]


def test_refused_upload_audit_records_hash_and_size_but_not_the_file_name(tmp_path, study):
    ws = init_workspace(tmp_path / "ws", study_id=study.id)
    path = write_upload(study, tmp_path / "ROSSI Mario 2012-05-17.xlsx", {"DM": [dict(DM, BRTHYM="2012-05-17")]})
    report = validate(study, import_files([path], study, site="01"), site="01")
    with pytest.raises(PrivacyRefused):
        ws.submit([path], "01", report, operator="dm", study=study)
    (line,) = [e for e in ws.audit() if e["action"] == "refused-privacy"]
    files = line["detail"]["files"]
    assert files == [{"sha256": report.inputs[0].sha256, "size": path.stat().st_size}]
    assert "ROSSI" not in json.dumps(ws.audit()) and "Mario" not in json.dumps(ws.audit())
    assert not any(p.is_file() for p in (ws.path / "archive").rglob("*"))


def test_the_demo_uploads_raise_no_privacy_finding(demo_run):
    """The demo submitted every upload (a workbook, or a folder of datasets) through the same import
    and validation as ``trialkit validate``; the report the ledger keeps with each holds no privacy
    finding, so the identifier checks do not fire on realistic (synthetic) trial data."""
    folder, _ = demo_run
    ledger = sqlite3.connect(f"file:{folder / 'workspace' / 'ledger.sqlite'}?mode=ro", uri=True)
    try:
        reports = {sha256: report for sha256, report in ledger.execute(
            "SELECT f.sha256, s.report_json FROM submission_files f JOIN submissions s ON s.id = f.submission_id")}
    finally:
        ledger.close()
    uploads = sorted(p for p in (folder / "uploads").rglob("*") if p.is_file())
    assert len(uploads) >= 20
    for path in uploads:
        report = reports.get(hashlib.sha256(path.read_bytes()).hexdigest())
        assert report is not None, f"{path} was never submitted"
        privacy = [f for f in Report.from_dict(json.loads(report)).findings if f.category == Category.PRIVACY]
        assert privacy == [], (path.name, [(f.file, f.message) for f in privacy])


def test_the_corpus_raises_privacy_findings_only_for_birth_dates(corpus, study):
    found = {}
    for path in sorted(p for p in corpus.iterdir() if p.is_file() and p.name != "MANIFEST.md"):
        report = validate(study, import_files([path], study))
        kinds = sorted({(f.evidence or {}).get("kind") or ",".join((f.evidence or {}).get("kinds", []))
                        for f in _privacy(report)})
        if kinds:
            found[path.name] = kinds
    # Two CDISC datasets carry BRTHDT/BRTHDTC columns (full dates of birth): refused, rightly. Nothing
    # else of the 40 files (subject ids, lab results, timestamps, MedDRA terms) looks like an identifier.
    assert found == {"phuse-scripts__FDA__dm.sas7bdat": ["date of birth"],
                     "xportr__extdata__adsl.sas7bdat": ["date of birth"]}, found


def test_xlsx_comment_parts_are_read_within_the_zip_limits(tmp_path, study):
    book = Workbook()
    sheet = book.active
    sheet.title = "DM"
    sheet.append(DM_HEAD)
    sheet["A2"].comment = Comment("fine", "x")
    path = tmp_path / "comment-bomb.xlsx"
    book.save(path)
    with zipfile.ZipFile(path) as archive:
        parts = {i.filename: archive.read(i) for i in archive.infolist()}
    name = next(n for n in parts if n.startswith("xl/comments"))
    parts[name] = parts[name].replace(b"fine", b"x" * (40 * 1024 * 1024))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for part, data in parts.items():
            archive.writestr(part, data)
    result = import_files([path], study, site="01")
    assert [f.code for f in result.report.findings if f.category == Category.FILE] == ["IMP-LIMIT-COMPRESSION"]


@pytest.mark.parametrize("text", ["a." * 16_383 + "@", "1-" * 16_383 + "x", "name: " + "A" * 32_000, "1/." * 10_922])
def test_a_longest_cell_of_a_crafted_shape_is_scanned_in_linear_time(text):
    """Each of these 32,767-character cells took 3-5 s on this machine (the e-mail pattern, and the
    phone pattern for the last, scanned from every start to the end); now they take milliseconds."""
    import time

    from trialkit.privacy import value_hits

    started = time.perf_counter()
    value_hits(text, labelled_names=True)
    assert time.perf_counter() - started < 1.0
    assert [kind for kind, _, _ in value_hits("call +39 02 1234 5678 or mario.rossi@example.com")] == [
        "e-mail address", "phone number"]
