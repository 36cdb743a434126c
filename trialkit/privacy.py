"""Direct identifiers: refuse an upload that carries one, and never repeat the identifier.

The synopsis ("Blinding and privacy"): no names, initials, hospital numbers, addresses or full dates
of birth are collected (birth is year and month); an upload that carries such a column is refused.
:func:`identifier_findings` looks at an :class:`~trialkit.importers.base.ImportResult` and returns
one ``privacy`` **error** per problem, so :meth:`~trialkit.ledger.Workspace.submit` rejects the
upload and nothing with an identifier becomes current data:

- ``PRIVACY-COLUMN`` — a column whose header (or dataset label) looks like a direct identifier, in
  English, Italian, French, German, Dutch or Spanish, compared ignoring case and accents; every
  table the importer saw counts, including unknown columns and sheets that matched no form (the
  raw file is archived as sent);
- ``PRIVACY-VALUE`` — free text (``AETERM`` and every ``char`` variable without a codelist) holding
  an e-mail address, a phone number, a full date next to a birth word, or ``SURNAME, Firstname``;
- ``PRIVACY-BIRTH-DATE`` — ``BRTHYM`` typed with a day (``2012-05-17``, ``17/05/2012``, an Excel
  date cell, an Excel serial number), judged on the value as typed, before any normalisation.

The identifier itself is never shown: the finding's ``value`` is masked (``j***@***.com``,
``R***, M***``, ``2012-05-**``), and :func:`mask_identifiers` masks the same text in every other
finding of the run (a duplicate-key message quoting ``AETERM``, a format error quoting ``BRTHYM``).

Example::

    >>> mask_email("john.smith@example.com")
    'j***@***.com'
    >>> header_kind("Data di nascita"), header_kind("Birth year and month")
    ('date of birth', None)
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import pandas as pd

from trialkit.findings import Category, Finding, Severity, query_id

REFERENCE = "Synopsis: Blinding and privacy"
COLUMN = "PRIVACY-COLUMN"
VALUE = "PRIVACY-VALUE"
BIRTH_DATE = "PRIVACY-BIRTH-DATE"

# Identifier headers by kind; phrases are compared as whole words after normalisation (lower case,
# no accents, punctuation as spaces); multi-word phrases also match written together
# ("firstname", "DATE_OF_BIRTH", "PatientName").
_HEADER_TERMS: dict[str, list[str]] = {
    "name": [
        # en
        "name", "names", "first name", "given name", "forename", "surname", "last name", "family name",
        "full name", "patient name", "name of patient", "subject name", "maiden name",
        # it
        "nome", "cognome", "nome paziente", "nome e cognome", "nome del paziente",
        # fr
        "nom", "prenom", "nom de famille", "nom du patient", "nom patient", "nom prenom",
        # de
        "vorname", "nachname", "familienname", "patientenname", "name des patienten",
        # nl
        "naam", "voornaam", "achternaam", "familienaam", "naam patient", "patientnaam",
        # es
        "nombre", "apellido", "apellidos", "nombre del paciente", "nombre paciente", "nombre y apellidos",
    ],
    "initials": ["initials", "patient initials", "iniziali", "initiales", "initialen", "iniciales",
                 "sigla paziente"],
    "hospital number": [
        "hospital number", "hospital no", "hospital id", "hosp no", "mrn", "medical record",
        "medical record number", "medical records number", "record number", "nhs number", "nhs no", "nhs",
        "chi number", "patient number hospital",
        "numero cartella clinica", "cartella clinica", "numero di cartella", "codice fiscale",
        "numero de dossier", "dossier medical", "numero dossier", "numero ipp", "ipp",
        "krankenhausnummer", "fallnummer", "patientennummer", "aktennummer",
        "ziekenhuisnummer", "patientnummer", "dossiernummer", "bsn",
        "historia clinica", "numero de historia clinica", "nhc",
    ],
    "address": [
        "address", "home address", "street", "street address", "postcode", "post code", "postal code",
        "zip", "zip code", "zipcode", "city of residence",
        "indirizzo", "via", "cap", "codice postale", "residenza",
        "adresse", "rue", "code postal",
        "anschrift", "strasse", "postleitzahl", "plz", "wohnort",
        "adres", "straat", "huisnummer", "woonplaats",
        "direccion", "calle", "codigo postal", "domicilio",
    ],
    "e-mail": ["email", "e mail", "email address", "mail", "courriel", "posta elettronica",
               "correo", "correo electronico", "mailadres"],
    "phone": [
        "phone", "phone number", "telephone", "telephone number", "tel", "tel no", "mobile", "mobile number",
        "cell phone", "cellphone", "telefono", "cellulare", "numero di telefono", "portable", "numero de telephone",
        "telefon", "telefonnummer", "handy", "handynummer", "mobil", "telefoon", "telefoonnummer", "mobiel",
        "movil", "celular", "numero de telefono",
    ],
    "date of birth": [
        "date of birth", "dob", "d o b", "birth date", "birthdate", "birthday", "date birth",
        "data di nascita", "data nascita", "date de naissance", "geburtsdatum", "geburtstag",
        "geboortedatum", "fecha de nacimiento", "fecha nacimiento",
    ],
}
# Words that qualify an identifier without changing what it is ("Patient's name", "Nom du patient").
_FILLER = {"patient", "patients", "subject", "participant", "the", "of", "s", "du", "de", "del", "della",
           "des", "der", "het", "van", "la", "le", "el", "il", "paziente", "patienten", "paciente", "pt"}
# Single words that are too common inside harmless headers ("Site name", "Via", "Mobile phase")
# count only when they are the whole header (fillers aside).
_WEAK = {"name", "names", "nom", "naam", "nombre", "nome", "via", "cap", "rue", "tel", "zip", "mail", "mobil",
         "mobile", "portable", "correo", "residenza", "nhs", "ipp", "bsn", "nhc", "plz", "calle", "mrn",
         "record number", "domicilio", "wohnort", "woonplaats", "strasse", "straat", "adres", "adresse",
         "address", "street", "telefon", "telefono", "telefoon", "handy", "celular", "movil", "mobiel"}


def _fold(text: str) -> str:
    """Lower case, accents removed, every run of non-letters/digits a single space."""
    decomposed = unicodedata.normalize("NFKD", str(text))
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    plain = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", plain)  # camelCase → camel Case
    return re.sub(r"[\W_]+", " ", plain.casefold()).strip()


def _build_index() -> tuple[dict[str, str], list[tuple[tuple[str, ...], str]]]:
    exact: dict[str, str] = {}
    phrases: list[tuple[tuple[str, ...], str]] = []
    for kind, terms in _HEADER_TERMS.items():
        for term in terms:
            folded = _fold(term)
            exact[folded] = kind
            exact[folded.replace(" ", "")] = kind
            if folded not in _WEAK:
                phrases.append((tuple(folded.split()), kind))
                if " " in folded:
                    phrases.append(((folded.replace(" ", ""),), kind))
    return exact, phrases


_EXACT, _PHRASES = _build_index()


def header_kind(header: Any) -> str | None:
    """The kind of direct identifier a column header names (``"name"``, ``"date of birth"`` ...), or
    None. Case, accents, punctuation and qualifiers like "patient" do not matter."""
    folded = _fold(str(header or ""))
    if not folded:
        return None
    words = folded.split()
    core = [w for w in words if w not in _FILLER] or words
    for candidate in (folded, " ".join(core), "".join(core)):
        if candidate in _EXACT:
            return _EXACT[candidate]
    for phrase, kind in _PHRASES:
        size = len(phrase)
        if any(tuple(words[i:i + size]) == phrase for i in range(len(words) - size + 1)):
            return kind
    return None


# ------------------------------------------------------------------------------------------------
# Values

_EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_PHONE = re.compile(r"(?<![\w/-])(?:\+|00)?\(?\d[\d ()./-]{6,}\d(?![\w/])")
_DATE = r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}([-/.])\d{1,2}\1\d{2,4}|\d{1,2}\.? ?[A-Za-zÀ-ÿ]{3,9}\.? \d{4})"
_DATE_TIME = re.compile(_DATE + r"(?:[ T]\d{1,2}[:.]\d{2}(?::\d{2})?)?|\b\d{1,2}:\d{2}(?::\d{2})?\b")
_BIRTH_WORDS = (r"(?:born|birth|dob|d\.o\.b|nat[oa]|nascita|n[ée]e?|naissance|geboren|geb\.|geburt\w*|"
                r"geboortedatum|geboren|nacid[oa]|nacimiento)")
_BIRTH_DATE = re.compile(rf"\b{_BIRTH_WORDS}\W{{0,4}}(?:\w+\W+){{0,3}}?{_DATE}|{_DATE}\W{{0,3}}\(?{_BIRTH_WORDS}\b",
                         re.IGNORECASE)
_NAME_PAIR = re.compile(r"^\s*([A-ZÀ-Þ][A-Za-zÀ-ÿ'’-]+),\s*([A-ZÀ-Þ][a-zß-ÿ'’-]+)\s*$")
_TITLE_NAME = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Dr|Sig|Sig\.ra|Mme|Mlle|M\.|Herr|Frau|Dhr|Mevr|Sr|Sra)\.?\s+"
                         r"([A-ZÀ-Þ][a-zß-ÿ'’-]+)(?:\s+[A-ZÀ-Þ][a-zß-ÿ'’-]+)?")
# Words of adverse-event terms that look like "Xxxx, Yyyy" but are clinical, not names.
_CLINICAL = {
    "rash", "fever", "pain", "headache", "nausea", "vomiting", "cough", "diarrhoea", "diarrhea", "fatigue",
    "infection", "arthralgia", "myalgia", "pyrexia", "anaemia", "anemia", "neutropenia", "urticaria",
    "pruritus", "dizziness", "abdominal", "injection", "site", "reaction", "erythema", "swelling", "oedema",
    "edema", "hepatitis", "pneumonia", "bronchitis", "otitis", "pharyngitis", "conjunctivitis", "flare",
    "macrophage", "activation", "syndrome", "mas", "sjia", "uti", "urti", "covid", "influenza", "varicella",
    "gastroenteritis", "constipation", "epistaxis", "insomnia", "anxiety", "depression", "tonsillitis",
    "sinusitis", "bruising", "laceration", "fracture", "sprain", "thrombocytopenia", "leukopenia",
    "lymphopenia", "eosinophilia", "hypertension", "hypotension", "tachycardia", "mild", "moderate", "severe",
    "left", "right", "acute", "chronic", "viral", "bacterial", "upper", "lower", "respiratory", "tract",
}


def mask_email(text: str) -> str:
    """``john.smith@example.com`` → ``j***@***.com``."""
    local, _, domain = text.partition("@")
    tld = domain.rsplit(".", 1)[-1] if "." in domain else ""
    return f"{local[:1]}***@***" + (f".{tld}" if tld else "")


def mask_phone(text: str) -> str:
    """``+39 02 1234 5678`` → ``+** *** ***78`` (only the last two digits kept)."""
    digits = re.sub(r"\D", "", text)
    return ("+" if text.strip().startswith(("+", "00")) else "") + "*** ***" + digits[-2:]


def mask_name(text: str) -> str:
    """``ROSSI, Mario`` → ``R***, M***`` (initials of each word, nothing else)."""
    return re.sub(r"([^\W\d_])[^\W\d_'’-]*(?:['’-][^\W\d_]+)*", lambda m: m.group(1) + "***", text)


def mask_date(text: str) -> str:
    """Any full date → digits starred: ``17/05/2012`` → ``**/**/****``; ISO keeps year-month:
    ``2012-05-17`` → ``2012-05-**`` (year and month are the allowed part of a birth date)."""
    iso = re.fullmatch(r"(\d{4})([-/.])(\d{1,2})\2(\d{1,2})(.*)", text.strip())
    if iso:
        return f"{iso.group(1)}-{int(iso.group(3)):02d}-**"
    return re.sub(r"\d", "*", text)


def _value_hits(text: str) -> list[tuple[str, str, str]]:
    """``(kind, identifier, mask)`` for every identifier found in a free-text value."""
    hits: list[tuple[str, str, str]] = []
    for match in _EMAIL.finditer(text):
        hits.append(("e-mail address", match.group(0), mask_email(match.group(0))))
    scrubbed = _EMAIL.sub(" ", text)
    for match in _BIRTH_DATE.finditer(scrubbed):
        date = re.search(_DATE, match.group(0))
        if date:
            hits.append(("full date of birth", date.group(0), mask_date(date.group(0))))
    scrubbed = _DATE_TIME.sub(" ", scrubbed)  # dates and times are not phone numbers
    for match in _PHONE.finditer(scrubbed):
        candidate = match.group(0).strip(" ()./-")
        digits = re.sub(r"\D", "", candidate)
        if not 9 <= len(digits) <= 15:
            continue
        if re.fullmatch(_DATE + r"(?:[ T]\d{1,2}[:.]\d{2}(?::\d{2})?)?", candidate):
            continue  # a date (and time), not a phone number
        if not (candidate.startswith(("+", "0", "(")) or len(digits) >= 10):
            continue
        hits.append(("phone number", candidate, mask_phone(candidate)))
    pair = _NAME_PAIR.match(text)
    if pair and not ({pair.group(1).casefold(), pair.group(2).casefold()} & _CLINICAL):
        hits.append(("name (Surname, Firstname)", text.strip(), mask_name(text.strip())))
    for match in _TITLE_NAME.finditer(text):
        if match.group(1).casefold() not in _CLINICAL:
            hits.append(("name", match.group(0), mask_name(match.group(0))))
    return hits


def _birth_day_typed(text: str) -> bool:
    """True when a BRTHYM value as typed carries a day (or is an Excel date serial)."""
    value = text.strip()
    if not value:
        return False
    if re.fullmatch(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?:[ T].*)?", value):
        return True
    if re.fullmatch(r"\d{1,2}[-/. ]\d{1,2}[-/. ]\d{2,4}", value):
        return True
    if re.fullmatch(r"\d{1,2}\.? ?[^\W\d_]{3,9}\.?[ -]\d{2,4}", value):  # 17 May 2012, 17-mai-2012
        return True
    # A number where a year-month belongs: an Excel date serial (a year alone has 4 digits).
    return bool(re.fullmatch(r"\d{5}(?:\.\d+)?", value))


# ------------------------------------------------------------------------------------------------
# The checks


def identifier_findings(study: Any, import_result: Any) -> list[Finding]:
    """Privacy errors for an import: identifier columns, identifiers in free text, BRTHYM with a day.

    Every finding is an ``error`` in category ``privacy`` whose ``value`` is masked (see the module
    docstring); checked on the raw headers and the values as typed.
    """
    findings = _column_findings(study, import_result)
    findings.extend(_value_findings(study, import_result))
    return findings


def _variable_keys(study: Any) -> set[str]:
    keys: set[str] = set()
    for form in study.forms.values():
        for variable in form.variables:
            keys.add(_fold(variable.name).replace(" ", ""))
            keys.add(_fold(variable.label).replace(" ", ""))
    return keys


def _column_findings(study: Any, import_result: Any) -> list[Finding]:
    known = _variable_keys(study)
    findings: list[Finding] = []
    for facts in getattr(import_result, "files", []) or []:
        for table in facts.get("tables", []):
            if table.get("role") == "template":
                continue
            seen: set[str] = set()
            for column in table.get("columns", []):
                for text in (column.get("name"), column.get("label")):
                    if not text or _fold(str(text)).replace(" ", "") in known:
                        continue
                    kind = header_kind(text)
                    if kind is None or column.get("name") in seen:
                        continue
                    seen.add(column.get("name"))
                    where = "sheet" if table.get("kind") == "sheet" else "dataset"
                    findings.append(Finding(
                        code=COLUMN, severity=Severity.ERROR, category=Category.PRIVACY,
                        message=(f"{where} {table.get('name')!r} has a column {str(text)[:60]!r} that looks like a "
                                 f"direct identifier ({kind}); trialkit collects no names, initials, hospital "
                                 "numbers, addresses, contact details or full birth dates: delete the column "
                                 "(not just hide it) and upload again"),
                        form=table.get("form"), variable=str(column.get("name"))[:60], value=str(text)[:60],
                        file=facts.get("path"), sheet=table.get("name"), check="identifier-column",
                        reference=REFERENCE, evidence={"kind": kind},
                        query_id=query_id(COLUMN, None, table.get("name"), [_fold(str(text))], None),
                    ))
    return findings


def _free_text_variables(form: Any) -> list[str]:
    return [v.name for v in form.variables
            if v.type == "char" and not v.codelist and not v.derived and v.name not in ("SITEID", "SUBJID")]


def _column(frame: Any, name: str) -> Any:
    return frame[name] if name in getattr(frame, "columns", ()) else None


def _value_findings(study: Any, import_result: Any) -> list[Finding]:
    findings: list[Finding] = []
    for code, form_data in (getattr(import_result, "forms", {}) or {}).items():
        if code not in study.forms:
            continue
        form = study.forms[code]
        raw, lineage, data = form_data.raw, form_data.lineage, form_data.data
        subjects = _column(data, "SUBJID")
        sites = _column(data, "SITEID")

        def where(index: Any, code: str = code, lineage: Any = lineage, subjects: Any = subjects,
                  sites: Any = sites) -> dict[str, Any]:
            out: dict[str, Any] = {"form": code}
            if index in lineage.index:
                row = lineage.loc[index]
                out.update(file=str(row["FILE"]), sheet=str(row["SHEET"]), row=int(row["ROW"]))
            for key, series in (("subject", subjects), ("site", sites)):
                if series is not None and index in series.index:
                    value = series.loc[index]
                    out[key] = None if pd.isna(value) else str(value)
            return out

        for name in _free_text_variables(form):
            column = _column(raw, name)
            if column is None:
                continue
            for index, text in _non_empty(column):
                hits = _value_hits(text)
                if not hits:
                    continue
                masked = text
                for _, identifier, mask in hits:
                    masked = masked.replace(identifier, mask)
                kinds = sorted({kind for kind, _, _ in hits})
                place = where(index)
                findings.append(Finding(
                    code=VALUE, severity=Severity.ERROR, category=Category.PRIVACY,
                    message=(f"{name} holds what looks like a direct identifier ({', '.join(kinds)}); shown "
                             f"masked. Remove it from the text and upload again: trialkit collects no names, "
                             "contact details or birth dates"),
                    variable=name, value=masked, check="identifier-value", reference=REFERENCE,
                    evidence={"kinds": kinds, "_secrets": [(i, m) for _, i, m in hits]},
                    query_id=query_id(VALUE, place.get("subject"), code, [place.get("row")], name),
                    **place,
                ))
        brth = _column(raw, "BRTHYM")
        if brth is not None:
            for index, text in _non_empty(brth):
                if not _birth_day_typed(text):
                    continue
                place = where(index)
                secrets = [(text, mask_date(text))]
                stored = data["BRTHYM"].get(index) if "BRTHYM" in data.columns else None
                if isinstance(stored, str) and stored != text and _birth_day_typed(stored):  # 17/05/2012 → 2012-05-17
                    secrets.append((stored, mask_date(stored)))
                findings.append(Finding(
                    code=BIRTH_DATE, severity=Severity.ERROR, category=Category.PRIVACY,
                    message=("BRTHYM holds a full date of birth (with a day); shown masked. Type the year and "
                             "month only, as text YYYY-MM (format the cell as Text so Excel does not turn it "
                             "into a date), and upload again"),
                    variable="BRTHYM", value=mask_date(text), expected="YYYY-MM", check="birth-year-month",
                    reference=REFERENCE, evidence={"_secrets": secrets},
                    query_id=query_id(BIRTH_DATE, place.get("subject"), code, [], "BRTHYM"),
                    **place,
                ))
    return findings


def _non_empty(column: Any) -> Iterable[tuple[Any, str]]:
    """``(index, text)`` of the cells holding text (the raw frames are text, "" when empty)."""
    values = column.astype(str)
    mask = values.str.strip().ne("") & column.notna()
    yield from values[mask].items()


def mask_identifiers(findings: list[Finding], privacy: list[Finding]) -> list[Finding]:
    """``findings`` with every identifier found by ``privacy`` replaced by its mask in the message,
    value, expected text and evidence of every finding (the privacy findings' own secrets dropped)."""
    secrets: dict[str, str] = {}
    for finding in privacy:
        for identifier, mask in (finding.evidence or {}).get("_secrets", []):
            if identifier and len(identifier) >= 3:
                secrets[identifier] = mask
    for finding in privacy:
        if finding.evidence and "_secrets" in finding.evidence:
            finding.evidence = {k: v for k, v in finding.evidence.items() if k != "_secrets"}
    if not secrets:
        return findings
    ordered = sorted(secrets, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            return pattern.sub(lambda m: secrets[m.group(0)], value)
        if isinstance(value, dict):
            return {k: scrub(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(scrub(v) for v in value)
        return value

    out = []
    for finding in findings:
        changes = {name: scrub(getattr(finding, name)) for name in ("message", "value", "expected", "evidence")}
        if any(changes[name] is not getattr(finding, name) and changes[name] != getattr(finding, name)
               for name in changes):
            finding = replace(finding, **changes)
        out.append(finding)
    return out
