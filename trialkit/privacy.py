"""Direct identifiers: refuse an upload that carries one, and never repeat the identifier.

The synopsis ("Blinding and privacy"): no names, initials, hospital numbers, addresses or full dates
of birth are collected (birth is year and month); an upload that carries such a column is refused.
:func:`identifier_findings` looks at an :class:`~trialkit.importers.base.ImportResult` and returns
one ``privacy`` **error** per problem, so :meth:`~trialkit.ledger.Workspace.submit` rejects the
upload and nothing with an identifier becomes current data:

- ``PRIVACY-COLUMN`` — a column whose header (or dataset label) looks like a direct identifier —
  names, surnames, initials, date of birth, address, phone, e-mail, contact details, hospital,
  insurance and national identity numbers — in the languages of the sites (English, Italian,
  French, German, Dutch, Spanish), compared ignoring case and accents and whose it is ("Child's
  name", "Nom de l'enfant", "Parent contact"); every table the importer saw counts, hidden sheets
  and sheets that matched no form included (the raw file is archived as sent);
- ``PRIVACY-VALUE`` — a value that is an identifier whatever its header: an e-mail address, a phone
  number, a full date next to a birth word, ``SURNAME, Firstname``, a US social security number, an
  Italian codice fiscale, a French NIR, a Dutch BSN, a Spanish DNI/NIE, an NHS number or a Canadian
  SIN (each with its check digits). The importer looks at every value outside the CRF (unknown
  columns, sheets of no form, notes above a header: :func:`scan_values`, one finding per column)
  and at CRF values that are not what their variable takes (SUBJID text, a value that is no code,
  number or date); free text (``AETERM``, every ``char`` variable without a codelist) is checked
  here cell by cell. Outside the CRF a column of person-shaped values under a blank or person
  header ("Patient", "Contact") is a column of names, and in a form with a birth variable a column
  of dates a year or more before each record's own dates is one of birth dates;
- ``PRIVACY-COMMENT`` — a cell comment (xlsx) holding any of the above, or a name after a word that
  says whose it is ("Mother: Maria Rossi");
- ``PRIVACY-BIRTH-DATE`` — a variable declared ``birth=True`` (a birth year and month) typed
  with a day (``2012-05-17``, ``17/05/2012``, an Excel date cell, an Excel serial number), judged on
  the value as typed, before any normalisation.

The identifier itself is never shown: the finding's ``value`` is masked (``j***@***.com``,
``R***, M***``, ``2012-05-**``), and :func:`mask_identifiers` masks the same text in every other
finding of the run (a duplicate-key message quoting ``AETERM``, a format error quoting a birth variable).

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
from dataclasses import dataclass, field, replace
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
        "medical record number", "medical records number", "record number", "patient number hospital",
        "numero cartella clinica", "cartella clinica", "numero di cartella",
        "numero de dossier", "dossier medical", "numero dossier", "numero ipp", "ipp",
        "krankenhausnummer", "fallnummer", "patientennummer", "aktennummer",
        "ziekenhuisnummer", "patientnummer", "dossiernummer",
        "historia clinica", "numero de historia clinica", "nhc",
    ],
    "national or insurance number": [
        # en (GB, US, CA)
        "social security number", "social security no", "social security", "ssn", "national insurance number",
        "ni number", "national id", "national identity number", "national id number", "id card number",
        "passport number", "nhs number", "nhs no", "nhs", "chi number", "health card number", "health card",
        "health insurance number", "insurance number", "ohip", "ohip number", "sin", "social insurance number",
        "medicare number",
        # it
        "codice fiscale", "tessera sanitaria", "numero tessera sanitaria", "codice sanitario",
        "carta d identita", "numero carta d identita",
        # fr (FR, CA)
        "numero de securite sociale", "securite sociale", "nir", "numero insee", "carte vitale",
        "numero d assurance maladie", "assurance maladie", "nas", "numero d assurance sociale", "ramq",
        "carte d identite",
        # de
        "versichertennummer", "krankenversicherungsnummer", "sozialversicherungsnummer",
        "rentenversicherungsnummer", "versicherungsnummer", "krankenkasse", "personalausweisnummer",
        "steuer id", "steueridentifikationsnummer",
        # nl
        "bsn", "burgerservicenummer", "sofinummer", "verzekeringsnummer", "zorgverzekeringsnummer", "polisnummer",
        # es
        "dni", "nie", "nif", "numero de la seguridad social", "seguridad social", "nuss", "tarjeta sanitaria",
        "tarjeta sanitaria individual", "cip", "numero de afiliacion",
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
    "contact details": [
        "contact", "contacts", "contact details", "contact info", "contact information", "emergency contact",
        "contatto", "contatti", "recapito", "recapiti", "coordonnees", "kontakt", "kontaktdaten",
        "contactgegevens", "contacto", "datos de contacto",
    ],
    "date of birth": [
        "date of birth", "dob", "d o b", "birth date", "birthdate", "birthday", "date birth", "born", "birth",
        "brthdat", "brthdtc", "brthdt", "birthdat", "birthdtc",
        "data di nascita", "data nascita", "nato", "nata", "nato il", "date de naissance", "ne le", "nee le",
        "geburtsdatum", "geburtstag", "geboren", "geboren am", "geboortedatum", "geboren op",
        "fecha de nacimiento", "fecha nacimiento", "nacido", "nacida",
    ],
}
# Words that qualify an identifier without changing what it is ("Patient's name", "Nom du patient").
_FILLER = {"patient", "patients", "subject", "participant", "the", "of", "s", "du", "de", "del", "della",
           "des", "der", "het", "van", "la", "le", "el", "il", "l", "d", "paziente", "patienten", "paciente", "pt",
           # whose identifier: the child's, the mother's, a parent's (the sites' languages)
           "child", "children", "kid", "enfant", "bambino", "bambina", "kind", "nino", "nina", "mother", "father",
           "mere", "pere", "madre", "padre", "mutter", "vater", "moeder", "vader", "parent", "parents",
           "genitore", "genitori", "ouder", "ouders", "eltern", "guardian", "tuteur", "tutore", "tutor"}
# Single words that are too common inside harmless headers ("Site name", "Via", "Mobile phase")
# count only when they are the whole header (fillers aside).
_WEAK = {"name", "names", "nom", "naam", "nombre", "nome", "via", "cap", "rue", "tel", "zip", "mail", "mobil",
         "mobile", "portable", "correo", "residenza", "nhs", "ipp", "bsn", "nhc", "plz", "calle", "mrn",
         "record number", "domicilio", "wohnort", "woonplaats", "strasse", "straat", "adres", "adresse",
         "address", "street", "telefon", "telefono", "telefoon", "handy", "celular", "movil", "mobiel",
         "ssn", "sin", "nir", "nas", "dni", "nie", "nif", "cip", "nuss", "ohip", "ramq", "health card",
         "contact", "contacts", "contatto", "contatti", "recapito", "recapiti", "kontakt", "contacto",
         "born", "birth", "nato", "nata", "geboren", "nacido", "nacida", "krankenkasse", "polisnummer"}


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
    kind = None
    for candidate in (folded, " ".join(core), "".join(core)):
        if candidate in _EXACT:
            kind = _EXACT[candidate]
            break
    if kind is None:
        for phrase, phrase_kind in _PHRASES:
            size = len(phrase)
            if any(tuple(words[i:i + size]) == phrase for i in range(len(words) - size + 1)):
                kind = phrase_kind
                break
    if kind == "date of birth" and set(words) & _YEAR_MONTH:
        return None  # "Birth year", "DOB_YR", "Anno di nascita": year (and month) only is collected
    return kind


_YEAR_MONTH = {"year", "years", "yr", "yrs", "yy", "yyyy", "month", "months", "mon", "mm", "ym", "yyyymm", "age",
               "anno", "annee", "jahr", "jaar", "ano", "mese", "mois", "monat", "maand", "mes"}


# ------------------------------------------------------------------------------------------------
# Values

# An address starts where its local part does (the look-behind) and is at most 254 characters: without
# both, a cell of 32,000 characters without a valid address took 3-5 s (every start scanned to the end).
_EMAIL = re.compile(r"(?<![\w.+'-])[\w.+'-]{1,254}@[\w-]{1,253}(?:\.[\w-]{1,253})+", re.UNICODE)
# At most 42 characters between the first and last digit (a phone_shaped number has at most 15
# digits): unbounded, "1/.1/.1/." over a cell made every digit scan to the end (4 s a cell).
_PHONE = re.compile(r"(?<![\w/-])(?:\+|00)?\(?\d[\d ()./-]{6,42}\d(?![\w/])")
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


# ------------------------------------------------------------------------------------------------
# Identifier numbers and their check digits

_CF_ODD = dict(zip("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                   [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8,
                    12, 14, 16, 10, 22, 25, 24, 23], strict=True))
_CF_EVEN = {**{str(d): d for d in range(10)}, **{chr(65 + i): i for i in range(26)}}
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def codice_fiscale_valid(text: str) -> bool:
    """An Italian codice fiscale whose 16th character is the check character of the first 15.

    >>> codice_fiscale_valid("RSSMRA80A01H501U")
    True
    """
    code = re.sub(r"\s", "", text).upper()
    if not re.fullmatch(r"[A-Z]{6}[0-9LMNPQRSTUV]{2}[A-EHLMPR-T][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]", code):
        return False
    total = sum(_CF_ODD[c] if i % 2 == 0 else _CF_EVEN[c] for i, c in enumerate(code[:15]))
    return chr(65 + total % 26) == code[15]


def nir_valid(text: str) -> bool:
    """A French NIR (numéro de sécurité sociale): 13 characters and a key = 97 - (number mod 97).

    >>> nir_valid("1 84 12 76 451 089 46")
    True
    """
    code = re.sub(r"\s", "", text).upper()
    if not re.fullmatch(r"[12]\d{2}(?:0[1-9]|1[0-2]|[2-9]\d)(?:\d{2}|2[AB])\d{6}\d{2}", code):
        return False
    number = code[:13].replace("2A", "19").replace("2B", "18")
    return 97 - int(number) % 97 == int(code[13:])


def bsn_valid(text: str) -> bool:
    """A Dutch burgerservicenummer: 9 digits passing the 11-check (9a+8b+...+2h-1i divisible by 11).

    >>> bsn_valid("111222333")
    True
    """
    digits = re.sub(r"\D", "", text)
    if len(digits) not in (8, 9) or not int(digits):
        return False
    digits = digits.zfill(9)
    total = sum(int(c) * w for c, w in zip(digits[:8], range(9, 1, -1), strict=True)) - int(digits[8])
    return total % 11 == 0


def dni_valid(text: str) -> bool:
    """A Spanish DNI (8 digits) or NIE (X/Y/Z and 7 digits) with its check letter.

    >>> dni_valid("12345678Z"), dni_valid("X1234567L")
    (True, True)
    """
    code = re.sub(r"[\s-]", "", text).upper()
    match = re.fullmatch(r"([XYZ]\d{7}|\d{8})([A-Z])", code)
    if not match:
        return False
    number = match.group(1)
    if number[0] in "XYZ":
        number = str("XYZ".index(number[0])) + number[1:]
    return _DNI_LETTERS[int(number) % 23] == match.group(2)


def nhs_valid(text: str) -> bool:
    """An NHS number: 10 digits whose last is the modulus-11 check digit of the first nine.

    >>> nhs_valid("943 476 5919")
    True
    """
    digits = re.sub(r"\D", "", text)
    if len(digits) != 10:
        return False
    remainder = 11 - sum(int(c) * w for c, w in zip(digits[:9], range(10, 1, -1), strict=True)) % 11
    check = 0 if remainder == 11 else remainder
    return check != 10 and check == int(digits[9])


def sin_valid(text: str) -> bool:
    """A Canadian social insurance number: 9 digits passing the Luhn check."""
    digits = re.sub(r"\D", "", text)
    if len(digits) != 9 or digits[0] in "08":
        return False
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


# (kind, pattern, check): numbers recognised in any text; a formatted number or one with a check
# character is specific enough on its own.
_ID_PATTERNS: list[tuple[str, re.Pattern[str], Any]] = [
    ("US social security number", re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])"),
     None),
    ("Italian codice fiscale", re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{6}[0-9LMNPQRSTUVlmnpqrstuv]{2}[A-Za-z]"
                                          r"[0-9LMNPQRSTUVlmnpqrstuv]{2}[A-Za-z][0-9LMNPQRSTUVlmnpqrstuv]{3}[A-Za-z]"
                                          r"(?![A-Za-z0-9])"), codice_fiscale_valid),
    ("French NIR", re.compile(r"(?<![\w])[12] ?\d{2} ?\d{2} ?(?:\d{2}|2[ABab]) ?\d{3} ?\d{3} ?\d{2}(?![\w])"),
     nir_valid),
    ("Spanish DNI/NIE", re.compile(r"(?<![A-Za-z0-9])(?:\d{8}|[XYZxyz]-?\d{7})-?[A-Za-z](?![A-Za-z0-9])"), dni_valid),
    ("NHS number", re.compile(r"(?<![\w-])\d{3}[ -]\d{3}[ -]\d{4}(?![\w-])"), nhs_valid),
    ("Canadian SIN", re.compile(r"(?<![\w-])\d{3}[ -]\d{3}[ -]\d{3}(?![\w-])"), sin_valid),
]
# A bare number after the name of its kind ("BSN 111222333", "NHS no. 9434765919").
_NAMED_NUMBER = re.compile(r"(?i:\b(bsn|burgerservicenummer|nhs(?:\s*(?:no|number))?|ssn|sin|nas|nir)\b)\W{0,4}"
                           r"(\d[\d ]{7,13}\d)")
_NAMED_CHECK = {"bsn": ("Dutch BSN", bsn_valid), "burgerservicenummer": ("Dutch BSN", bsn_valid),
                "nhs": ("NHS number", nhs_valid), "ssn": ("US social security number", lambda d: len(
                    re.sub(r"\D", "", d)) == 9), "sin": ("Canadian SIN", sin_valid), "nas": ("Canadian SIN", sin_valid),
                "nir": ("French NIR", nir_valid)}
# Bare numbers that are an identifier only when most of a column passes their check.
BARE_NUMBERS: list[tuple[str, int, Any]] = [("Dutch BSN", 9, bsn_valid), ("NHS number", 10, nhs_valid)]

# A person's name: two to four words, each capitalised or in capitals ("Mario Rossi", "ROSSI Mario").
_NAME_WORD = r"(?:[A-ZÀ-Þ][a-zß-ÿ]+(?:['’-][A-ZÀ-Þa-zß-ÿ]+)*|[A-ZÀ-Þ]{2,}(?:['’-][A-ZÀ-Þ]+)*)"
_PERSON = re.compile(rf"^\s*{_NAME_WORD}(?:,?\s+{_NAME_WORD}){{1,3}}\s*$")
# A name after a word that says whose it is ("Mother: Maria Rossi"; in a comment also "called mother
# Maria Rossi"): the colon is needed in notes and columns, where "Lab Test Name" is a header.
_LABEL_WORDS = (r"(?i:\b(?:name|nome|nom|naam|nombre|vorname|nachname|cognome|prenom|apellidos?|patient|paziente|"
                r"paciente|patiente|enfant|child|bambin[oa]|kind|ni[ñn][oa]|mother|m[èe]re|madre|mutter|moeder|father|"
                r"p[èe]re|padre|vater|vader|parent|genitore|ouder|guardian|tutore|signora|signor)\b)")
_PERSON_NAME = "(" + _NAME_WORD + r"(?:,?\s+" + _NAME_WORD + r"){1,2})"
_LABELLED_NAME = re.compile(_LABEL_WORDS + r"\s*[:=]\s*" + _PERSON_NAME)
_LOOSE_NAME = re.compile(_LABEL_WORDS + r"\s*[:=-]?\s*" + _PERSON_NAME)
# Words that look like names in a CRF but are not: clinical terms, visits, units, codes.
_NOT_NAMES = {"visit", "screening", "baseline", "week", "day", "month", "year", "unscheduled", "end", "study",
              "site", "placebo", "sodium", "yes", "no",
              "not", "done", "unknown", "male", "female", "none", "normal", "abnormal", "positive", "negative",
              "active", "treatment", "drug", "dose", "withdrawn", "completed", "ongoing", "resolved", "related",
              "unrelated", "serious", "reported", "recovered", "fatal", "child", "adult", "other", "subject",
              "subjects", "event", "events", "count", "total", "number", "summary", "group", "arm", "level", "test",
              "result", "results", "value", "values", "date", "time", "type", "class", "code", "name", "score",
              "rate", "data", "check", "list", "table", "sheet", "form", "page", "high", "low", "mean", "median",
              "minimum", "maximum", "standard", "unit", "units", "sample", "specimen", "lab", "vital", "signs",
              "adverse", "medical", "history", "concomitant", "medication", "blood", "serum", "urine", "plasma",
              "body", "weight", "height", "temperature", "pressure", "information", "characteristic",
              "identifier", "description", "comment", "comments", "note", "notes", "of", "and", "the"}


def phone_shaped(text: str) -> bool:
    """A number written the way phone numbers are: international (``+39 ...``, ``0039...``), with an
    area code in parentheses, in groups of 2-5 digits separated by spaces or dots
    (``06 12 34 56 78``, ``333 123 4567``), ``555-123-4567``, ``06-12345678``, or 10-11 digits from
    a leading 0 or an Italian mobile 3. Not a decimal (``2.764297274``), a subject id
    (``01-701-1015``) or a timestamp (``1625593500``)."""
    text = text.strip()
    digits = re.sub(r"\D", "", text)
    groups = re.findall(r"\d+", text)
    if text.startswith(("+", "00")):
        return 8 <= len(digits) <= 15 and all(len(g) <= 11 for g in groups)
    if not 9 <= len(digits) <= 13:
        return False
    if "(" in text:
        return bool(re.fullmatch(r"\(\d{2,5}\)\s?\d[\d .-]*\d", text))
    if len(groups) == 1:
        return len(digits) in (10, 11) and digits[0] in "03"
    separators = set(re.sub(r"[\d]", "", text))
    if separators <= {"-"}:
        return [len(g) for g in groups] == [3, 3, 4] or (len(groups) == 2 and groups[0].startswith("0")
                                                          and 2 <= len(groups[0]) <= 4)
    if len(groups) == 2:
        return groups[0].startswith("0") and 2 <= len(groups[0]) <= 5
    return len(groups[0]) <= 5 and all(2 <= len(g) <= 5 for g in groups[1:])


def mask_id(text: str) -> str:
    """Every letter and digit starred but the last two: ``RSSMRA80A01H501U`` → ``**************1U``."""
    keep = 2
    out = []
    seen = 0
    for ch in reversed(text):
        if ch.isalnum() and seen >= keep:
            out.append("*")
        else:
            out.append(ch)
        seen += ch.isalnum()
    return "".join(reversed(out))


def looks_like_name(text: str) -> bool:
    """A value shaped like a person's name (2-4 capitalised words, no digits, no CRF words)."""
    if not _PERSON.match(text):
        return False
    words = {w.casefold() for w in re.findall(r"[^\W\d_]+", text)}
    return not (words & (_CLINICAL | _NOT_NAMES))


def _value_hits(text: str, *, labelled_names: bool = False, loose: bool = False) -> list[tuple[str, str, str]]:
    """``(kind, identifier, mask)`` for every identifier found in a free-text value.

    ``labelled_names`` also finds a name after a word that says whose it is and a colon ("Mother:
    Maria Rossi"), ``loose`` without the colon ("called mother Maria Rossi", for cell comments);
    used outside the CRF, not for CRF free text, where "Patient Reported Outcome" must stay a term.
    """
    hits: list[tuple[str, str, str]] = []
    for match in _EMAIL.finditer(text):
        hits.append(("e-mail address", match.group(0), mask_email(match.group(0))))
    scrubbed = _EMAIL.sub(" ", text)
    for match in _BIRTH_DATE.finditer(scrubbed):
        date = re.search(_DATE, match.group(0))
        if date:
            hits.append(("full date of birth", date.group(0), mask_date(date.group(0))))
    for kind, pattern, check in _ID_PATTERNS:
        for match in pattern.finditer(scrubbed):
            if check is None or check(match.group(0)):
                hits.append((kind, match.group(0), mask_id(match.group(0))))
    for match in _NAMED_NUMBER.finditer(scrubbed):
        key = re.sub(r"\W.*", "", match.group(1).casefold())
        kind, check = _NAMED_CHECK[key]
        if check(match.group(2)):
            hits.append((kind, match.group(2), mask_id(match.group(2))))
    numbers = {identifier for kind, identifier, _ in hits if kind not in ("e-mail address", "full date of birth")}
    scrubbed = _DATE_TIME.sub(" ", scrubbed)  # dates and times are not phone numbers
    for match in _PHONE.finditer(scrubbed):
        candidate = match.group(0).strip(" ./-")
        if candidate in numbers or re.fullmatch(_DATE + r"(?:[ T]\d{1,2}[:.]\d{2}(?::\d{2})?)?", candidate):
            continue  # an identity number found above, or a date (and time)
        if phone_shaped(candidate):
            hits.append(("phone number", candidate, mask_phone(candidate)))
    pair = _NAME_PAIR.match(text)
    if pair and not ({pair.group(1).casefold(), pair.group(2).casefold()} & _CLINICAL):
        hits.append(("name (Surname, Firstname)", text.strip(), mask_name(text.strip())))
    for match in _TITLE_NAME.finditer(text):
        if match.group(1).casefold() not in _CLINICAL:
            hits.append(("name", match.group(0), mask_name(match.group(0))))
    if labelled_names or loose:
        for match in (_LOOSE_NAME if loose else _LABELLED_NAME).finditer(text):
            name = match.group(1)
            if looks_like_name(name):
                hits.append(("name", name, mask_name(name)))
    return hits


def value_hits(text: str, *, labelled_names: bool = False, loose: bool = False) -> list[tuple[str, str, str]]:
    """``(kind, identifier, mask)`` of every identifier in one text (see :func:`_value_hits`).

    >>> [kind for kind, _, _ in value_hits("write to mario.rossi@example.com")]
    ['e-mail address']
    """
    return _value_hits(text, labelled_names=labelled_names, loose=loose)


# ------------------------------------------------------------------------------------------------
# Columns, notes and comments scanned while importing (every sheet, hidden ones too)

VALUE_CHECK = "identifier-value"
COMMENT = "PRIVACY-COMMENT"
# Cheap pre-filter on the distinct values of a CRF column: only a value that matches can hold an
# identifier that _value_hits finds without the help of a header.
_MAYBE = re.compile(r"@|\d[\d \-./()]{7,}\d|[A-Za-z]{6}[0-9LMNPQRSTUVlmnpqrstuv]{2}|\d{8}-?[A-Za-z]|"
                    r"[XYZxyz]-?\d{7}|,\s*[A-ZÀ-Þ]|\b(?:Mr|Mrs|Ms|Miss|Dr|Sig|Mme|Mlle|Herr|Frau|Dhr|Mevr|Sr|Sra)\b|"
                    r"(?i:born|birth|dob|nat[oa]|nascita|n[ée]e|naissance|geb|nacid|\bbsn\b|\bnhs\b|\bssn\b|\bsin\b|"
                    r"\bnas\b|\bnir\b)")
# Headers under which a column of person-shaped values is a column of names.
_PERSON_WORDS = {"patient", "patients", "paziente", "paciente", "patiente", "patienten", "child", "enfant",
                 "bambino", "bambina", "kind", "nino", "nina", "mother", "father", "mere", "pere", "madre", "padre",
                 "mutter", "vater", "moeder", "vader", "parent", "parents", "genitore", "ouder", "guardian",
                 "contact", "contatto", "kontakt", "contacto", "caregiver", "famiglia", "famille", "familie",
                 "familia"}
_ID_WORDS = {"id", "ids", "number", "no", "nr", "num", "numero", "nummer", "code", "codice", "identifier", "ref"}


@dataclass
class ValueHits:
    """Identifiers found in a column's distinct values: kinds, ``(identifier, mask)`` pairs, how many
    distinct values hold one, and the position (in the values given) of the first."""

    kinds: list[str]
    secrets: list[tuple[str, str]]
    count: int
    first: int
    example: str
    positions: list[int] = field(default_factory=list)


def scan_values(texts: pd.Series, *, header: str | None = None, blank_header: bool = False,
                crf: bool = False) -> ValueHits | None:
    """Identifiers among distinct cell texts; None when there are none.

    ``crf`` is a CRF column (its type says what belongs there): only values shaped like an e-mail, a
    phone, an identity number or a birth note are looked at. Outside the CRF (unknown columns, sheets
    of no form) a column of person-shaped values under a blank or person header ("Patient",
    "Contact") is a column of names, and a column of bare 9- or 10-digit numbers that mostly pass the
    Dutch BSN or NHS check is one of those numbers.
    """
    values = texts[texts.str.strip().ne("")]
    if values.empty:
        return None
    kinds: list[str] = []
    secrets: list[tuple[str, str]] = []
    hit_positions: list[int] = []
    examples: list[str] = []
    candidates = values[values.str.contains(_MAYBE)] if crf else values
    words = set(_fold(header or "").split())
    person_column = not crf and bool(blank_header or words & _PERSON_WORDS)
    for position, text in candidates.items():
        hits = _value_hits(text, labelled_names=not crf)
        if not crf and not words & _PERSON_WORDS:
            # "Hyperhidrosis, Vomiting" is shaped like "ROSSI, Mario": outside a column headed by a
            # person a lone name shape is too weak (the column rule below counts names).
            hits = [hit for hit in hits if not hit[0].startswith("name")]
        if hits:
            hit_positions.append(int(position))
            masked = text
            for kind, identifier, mask in hits:
                masked = masked.replace(identifier, mask)
                secrets.append((identifier, mask))
                if kind not in kinds:
                    kinds.append(kind)
            examples.append(masked)
    if not crf:
        if person_column:
            shaped = values[values.map(looks_like_name)]
            if len(shaped) and 2 * len(shaped) >= len(values):
                if "name" not in kinds:
                    kinds.append("name")
                for position, text in shaped.items():
                    secrets.append((text.strip(), mask_name(text.strip())))
                    hit_positions.append(int(position))
                    examples.append(mask_name(text.strip()))
        digits = values.str.replace(r"[\s.]", "", regex=True)
        for kind, length, check in BARE_NUMBERS:
            bare = digits[digits.str.fullmatch(rf"\d{{{length}}}")]
            if bare.empty:
                continue
            passing = bare[bare.map(check)]
            share = len(passing) / len(values)
            if len(passing) and share >= 0.8 and (len(passing) >= 2 or blank_header or words & _ID_WORDS):
                kinds.append(kind)
                for position in passing.index:
                    secrets.append((values[position].strip(), mask_id(values[position].strip())))
                    hit_positions.append(int(position))
                    examples.append(mask_id(values[position].strip()))
    if not hit_positions:
        return None
    order = sorted(range(len(hit_positions)), key=lambda i: hit_positions[i])
    return ValueHits(kinds=kinds, secrets=secrets, count=len(set(hit_positions)), first=hit_positions[order[0]],
                     example=examples[order[0]], positions=sorted(set(hit_positions)))


def column_finding(hits: ValueHits, *, column: str, row: int | None, cells: int, file: str | None,
                   sheet: str | None, form: str | None, in_form: bool) -> Finding:
    """The one privacy error for a column holding identifiers (its first row named, shown masked)."""
    where = f"column {column!r}" + (f" of sheet {sheet!r}" if sheet else "")
    return Finding(
        code=VALUE, severity=Severity.ERROR, category=Category.PRIVACY,
        message=(f"{where} holds what looks like a direct identifier ({', '.join(hits.kinds)}) in {cells} cell(s), "
                 f"first in row {row} (shown masked: {hits.example!r}); "
                 + ("correct those cells" if in_form else "delete the column (not just hide it)")
                 + " and upload again: trialkit collects no names, contact details, identity or insurance "
                 "numbers, or birth dates"),
        form=form, variable=column[:60], value=hits.example, file=file, sheet=sheet, row=row,
        check=VALUE_CHECK, reference=REFERENCE, evidence={"kinds": hits.kinds, "column": column[:60], "cells": cells},
        query_id=query_id(VALUE, None, sheet, [_fold(column)], column[:60]))


def text_finding(hits: list[tuple[str, str, str]], text: str, *, code: str, where: str, file: str | None,
                 sheet: str | None, row: int | None, remedy: str) -> Finding:
    """A privacy error for one piece of text (a note row, a cell comment), shown masked."""
    masked = text
    for _, identifier, mask in hits:
        masked = masked.replace(identifier, mask)
    kinds = sorted({kind for kind, _, _ in hits})
    return Finding(
        code=code, severity=Severity.ERROR, category=Category.PRIVACY,
        message=(f"{where} holds what looks like a direct identifier ({', '.join(kinds)}); shown masked: "
                 f"{masked[:200]!r}. {remedy} and upload again: trialkit collects no names, contact details, "
                 "identity numbers or birth dates"),
        value=masked[:200], file=file, sheet=sheet, row=row, check=VALUE_CHECK, reference=REFERENCE,
        evidence={"kinds": kinds}, query_id=query_id(code, None, sheet, [where], None))


def is_free_text(variable: Any) -> bool:
    """A CRF text variable whose values are free text (checked cell by cell at validation)."""
    return (variable.type == "char" and not variable.codelist and not variable.derived
            and variable.name not in ("SITEID", "SUBJID"))


def _birth_day_typed(text: str) -> bool:
    """True when a birth variable's value as typed carries a day (or is an Excel date serial)."""
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
    """Privacy errors for an import: identifier columns, identifiers in free text, birth variables
    with a day (the importer's own privacy findings — values, notes, comments — are in its report).

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
                if _read_into_birth(study, column.get("read_into")):
                    continue  # read through a mapping into a birth variable: its values are checked there
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


def _read_into_birth(study: Any, target: Any) -> bool:
    """True when a mapped source column (``read_into`` ``FORM.VAR``) fills a birth variable (BRTHDTC →
    a year-month variable): a full date there is refused by value (``PRIVACY-BIRTH-DATE``), an
    export holding year and month only is accepted."""
    if not isinstance(target, str) or "." not in target:
        return False
    form, _, name = target.partition(".")
    try:
        return bool(study.forms[form].variable(name).birth)
    except (KeyError, AttributeError):
        return False


def _free_text_variables(form: Any) -> list[str]:
    return [v.name for v in form.variables if is_free_text(v)]


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
        for variable in (v for v in form.variables if v.birth):
            typed_birth = _column(raw, variable.name)
            if typed_birth is None:
                continue
            for index, text in _non_empty(typed_birth):
                if not _birth_day_typed(text):
                    continue
                place = where(index)
                secrets = [(text, mask_date(text))]
                stored = data[variable.name].get(index) if variable.name in data.columns else None
                if isinstance(stored, str) and stored != text and _birth_day_typed(stored):  # 17/05/2012 → 2012-05-17
                    secrets.append((stored, mask_date(stored)))
                shown = "/".join(variable.pdate_formats or ()) or "year and month"
                findings.append(Finding(
                    code=BIRTH_DATE, severity=Severity.ERROR, category=Category.PRIVACY,
                    message=(f"{variable.name} holds a full date of birth (with a day); shown masked. Type the "
                             f"year and month only ({shown}, format the cell as Text so Excel does not turn it "
                             "into a date), and upload again"),
                    variable=variable.name, value=mask_date(text), expected=shown, check="birth-year-month",
                    reference=REFERENCE, evidence={"_secrets": secrets},
                    query_id=query_id(BIRTH_DATE, place.get("subject"), code, [], variable.name),
                    **place,
                ))
    return findings


def _non_empty(column: Any) -> Iterable[tuple[Any, str]]:
    """``(index, text)`` of the cells holding text (the raw frames are text, "" when empty)."""
    values = column.astype(str)
    mask = values.str.strip().ne("") & column.notna()
    yield from values[mask].items()


def mask_identifiers(findings: list[Finding], privacy: list[Finding],
                     secrets: dict[str, str] | None = None) -> list[Finding]:
    """``findings`` with every identifier found by ``privacy`` (and in ``secrets``, identifier →
    mask) replaced by its mask in the message, value, expected text and evidence of every finding
    (the privacy findings' own secrets dropped)."""
    secrets = {k: v for k, v in (secrets or {}).items() if k and len(k) >= 3}
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
