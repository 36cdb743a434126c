"""Direct identifiers are refused before they reach the ledger, and never echoed back.

Each identifier header kind in EN/IT/FR/DE/NL/ES, identifiers in free text (masked), BRTHYM with a
day (checked as typed), a clean upload, and a submission with a privacy finding that the ledger
rejects and never makes current.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from openpyxl import Workbook

from tests.upload_builder import write_upload
from trialkit.findings import Category, Severity
from trialkit.importers.reader import import_files
from trialkit.ledger import PrivacyRefused, init_workspace
from trialkit.privacy import header_kind, mask_email
from trialkit.validate import validate

DM = {"SITEID": "01", "SUBJID": "01-001", "ICDAT": dt.date(2024, 1, 2), "BRTHYM": "2012-04", "SEX": "F"}
AE = {"SITEID": "01", "SUBJID": "01-001", "AETERM": "Rash", "AESTDAT": dt.date(2024, 2, 1),
      "AEENDAT": dt.date(2024, 2, 3), "AEONGO": "N", "AESER": "N", "AETOXGR": 1}

HEADERS = {
    "name": ["Patient name", "Nome", "Cognome", "Prénom", "Nom de famille", "Vorname", "Nachname", "Naam",
             "Achternaam", "Nombre", "Apellidos", "FIRST_NAME", "Surname"],
    "initials": ["Initials", "Iniziali", "Initiales", "Initialen", "Iniciales"],
    "hospital number": ["Hospital number", "MRN", "Medical record", "Cartella clinica",
                        "Numéro de dossier", "Krankenhausnummer", "Ziekenhuisnummer", "Historia clínica"],
    "address": ["Address", "Street", "Postcode", "ZIP code", "Indirizzo", "Adresse", "Straße", "Postleitzahl",
                "Straat", "Dirección", "Código postal"],
    "e-mail": ["E-mail", "Email address", "Courriel", "Posta elettronica", "Correo electrónico"],
    "phone": ["Phone", "Telephone", "Mobile", "Telefono", "Téléphone", "Telefonnummer", "Telefoon", "Teléfono"],
    "national or insurance number": ["NHS number", "Codice fiscale", "Burgerservicenummer", "DNI", "SSN"],
    "date of birth": ["Date of birth", "DOB", "Birth date", "Data di nascita", "Date de naissance",
                      "Geburtsdatum", "Geboortedatum", "Fecha de nacimiento", "date_of_birth"],
}


def _privacy(report):
    return [f for f in report.findings if f.category == Category.PRIVACY]


def _dm_with_extra(tmp_path, study, header, value="x"):
    book = Workbook()
    sheet = book.active
    sheet.title = "DM"
    names = ["SITEID", "SUBJID", "ICDAT", "BRTHYM", "SEX", header]
    sheet.append(names)
    sheet.append(["01", "01-001", dt.datetime(2024, 1, 2), "2012-04", "F", value])
    path = tmp_path / "site01.xlsx"
    book.save(path)
    return path


@pytest.mark.parametrize("kind,header", [(k, h) for k, hs in HEADERS.items() for h in hs])
def test_identifier_column_is_refused(tmp_path, study, kind, header):
    path = _dm_with_extra(tmp_path, study, header, value="Mario Rossi")
    report = validate(study, import_files([path], study, site="01"), site="01")
    found = [f for f in _privacy(report) if f.code == "PRIVACY-COLUMN"]
    assert len(found) == 1, [f.message for f in report.findings]
    finding = found[0]
    assert finding.severity == Severity.ERROR and finding.evidence == {"kind": kind}
    assert finding.sheet == "DM" and finding.site == "01"
    assert "Mario" not in json.dumps(report.to_dict())  # the cell values are never shown


@pytest.mark.parametrize("header", ["Birth year and month", "Reported term", "Site name", "Comments",
                                    "Kit number", "Visit", "Mobile phase"])
def test_harmless_headers_are_not_identifiers(header):
    assert header_kind(header) is None


def test_identifier_column_in_a_sheet_that_matches_no_form(tmp_path, study):
    book = Workbook()
    book.active.title = "DM"
    book.active.append(list(DM))
    book.active.append(["01", "01-001", dt.datetime(2024, 1, 2), "2012-04", "F"])
    extra = book.create_sheet("Contacts")
    extra.append(["SUBJID", "Telefono"])
    extra.append(["01-001", "+39 02 1234 5678"])
    path = tmp_path / "site01.xlsx"
    book.save(path)
    report = validate(study, import_files([path], study, site="01"), site="01")
    assert [(f.code, f.sheet) for f in _privacy(report)] == [("PRIVACY-COLUMN", "Contacts")]


def test_identifier_column_in_a_csv(tmp_path, study):
    path = tmp_path / "dm.csv"
    path.write_text("SITEID,SUBJID,ICDAT,BRTHYM,SEX,Geburtsdatum\n01,01-001,2024-01-02,2012-04,F,17.05.2012\n")
    report = validate(study, import_files([path], study, site="01"), site="01")
    assert [f.evidence["kind"] for f in _privacy(report)] == ["date of birth"]
    assert "17.05.2012" not in report.to_json()


@pytest.mark.parametrize("term,secret,masked", [
    ("Rash, patient e-mail john.smith@example.com", "john.smith@example.com", "j***@***.com"),
    ("Headache; call mother on +39 02 1234 5678", "1234 5678", "***78"),
    ("Fever, mobile 06 12 34 56 78", "06 12 34 56 78", "***78"),
    ("ROSSI, Mario", "ROSSI", "R***, M***"),
    ("Rash (born 17/05/2012)", "17/05/2012", "**/**/****"),
])
def test_identifier_in_free_text_is_refused_and_masked(tmp_path, study, term, secret, masked):
    path = write_upload(study, tmp_path / "site01.xlsx", {"DM": [DM], "AE": [dict(AE, AETERM=term)]})
    report = validate(study, import_files([path], study, site="01"), site="01")
    found = [f for f in _privacy(report) if f.code == "PRIVACY-VALUE"]
    assert len(found) == 1
    finding = found[0]
    assert finding.severity == Severity.ERROR and finding.variable == "AETERM" and finding.row == 2
    assert masked in finding.value
    # Never echoed, in any finding, field or output of the run.
    text = report.to_json()
    assert secret not in text
    from trialkit.commands.validate import render_csv, render_text

    assert secret not in render_csv(report) and secret not in render_text(report)


def test_identifier_in_kit_number_is_refused(tmp_path, study):
    rand = {"SITEID": "01", "SUBJID": "01-001", "RANDNO": "R001", "RANDDAT": dt.date(2024, 1, 10),
            "STRATUM": "CHILD", "KITNO": "a.b@example.org"}
    path = write_upload(study, tmp_path / "site01.xlsx", {"DM": [DM], "RAND": [rand]})
    report = validate(study, import_files([path], study, site="01"), site="01")
    assert [(f.code, f.variable, f.value) for f in _privacy(report)] == [("PRIVACY-VALUE", "KITNO", "a***@***.org")]


def test_ordinary_adverse_event_terms_pass(tmp_path, study):
    terms = ["Rash", "Rash, Fever", "Injection site reaction", "Fever 39.5 C on 2024-02-01 12:30",
             "Upper respiratory tract infection", "MAS"]
    rows = [dict(AE, AETERM=t, AESTDAT=dt.date(2024, 2, i + 1), AEENDAT=dt.date(2024, 2, i + 2))
            for i, t in enumerate(terms)]
    path = write_upload(study, tmp_path / "site01.xlsx", {"DM": [DM], "AE": rows})
    report = validate(study, import_files([path], study, site="01"), site="01")
    assert _privacy(report) == []


@pytest.mark.parametrize("typed", ["2012-05-17", dt.datetime(2012, 5, 17), "17/05/2012", 41046])
def test_birth_date_with_a_day_is_refused(tmp_path, study, typed):
    path = write_upload(study, tmp_path / "site01.xlsx", {"DM": [dict(DM, BRTHYM=typed)]})
    report = validate(study, import_files([path], study, site="01"), site="01")
    found = [f for f in _privacy(report) if f.code == "PRIVACY-BIRTH-DATE"]
    assert len(found) == 1 and found[0].severity == Severity.ERROR and found[0].variable == "BRTHYM"
    text = report.to_json()
    for secret in ("2012-05-17", "17/05/2012", "41046"):
        assert secret not in text


def test_birth_date_from_an_excel_date_cell_is_refused_even_when_normalised(tmp_path, study):
    """A date cell on day 1 is normalised to 2012-05 by the importer; the value as typed had a day."""
    path = write_upload(study, tmp_path / "site01.xlsx", {"DM": [dict(DM, BRTHYM=dt.datetime(2012, 5, 1))]})
    imported = import_files([path], study, site="01")
    assert imported.forms["DM"].data["BRTHYM"].tolist() == ["2012-05"]
    report = validate(study, imported, site="01")
    assert [f.code for f in _privacy(report)] == ["PRIVACY-BIRTH-DATE"]
    assert [f.value for f in _privacy(report)] == ["2012-05-**"]


def test_clean_upload_has_no_privacy_finding(tmp_path, study):
    path = write_upload(study, tmp_path / "site01.xlsx", {"DM": [DM], "AE": [AE]})
    report = validate(study, import_files([path], study, site="01"), site="01")
    assert _privacy(report) == []


def test_submission_with_an_identifier_is_refused_before_the_ledger(tmp_path, study):
    ws = init_workspace(tmp_path / "ws", study_id=study.id)
    clean = write_upload(study, tmp_path / "clean.xlsx", {"DM": [DM]})
    clean_report = validate(study, import_files([clean], study, site="01"), site="01")
    assert not clean_report.fails_at("error"), [f.message for f in clean_report.findings if f.severity == "error"]
    first = ws.submit([clean], "01", clean_report, operator="dm", study=study, accept_warnings=True)
    assert first.status in ("accepted", "accepted-with-warnings")

    hostile = write_upload(study, tmp_path / "hostile.xlsx",
                           {"DM": [DM], "AE": [dict(AE, AETERM="Rash, write to j.smith@example.com")]})
    report = validate(study, import_files([hostile], study, site="01"), site="01")
    with pytest.raises(PrivacyRefused, match="PRIVACY-VALUE"):
        ws.submit([hostile], "01", report, operator="dm", study=study, accept_warnings=True)
    # Nothing reached the ledger or the archive: no submission row, no archived bytes, no query.
    assert [s["id"] for s in ws.log()] == [first.id]
    assert ws.current_submissions()["01"].id == first.id
    archived = b"".join(p.read_bytes() for p in (ws.path / "archive").rglob("*") if p.is_file())
    assert hostile.read_bytes() not in archived
    assert all("j.smith" not in json.dumps(q, default=str) for q in ws.queries(site="01", status="all"))
    refused = [e for e in ws.audit() if e["action"] == "refused-privacy"]
    assert len(refused) == 1 and refused[0]["detail"]["codes"] == ["PRIVACY-VALUE"]
    assert "j.smith" not in json.dumps(ws.audit())


def test_mask_email():
    assert mask_email("john.smith@example.com") == "j***@***.com"
