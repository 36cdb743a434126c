"""The catalogue of finding codes: every code the engine emits, defined once.

Each :class:`Code` has a title, a severity, a category, what it means and what to do about it.
A study adds its own codes — its data checks and protocol deviations, which are its rule ids with
their titles (:func:`study_codes`). ``trialkit codes`` lists both (``-f json``, ``-f md``);
``docs/codes.md`` is generated from :func:`render_markdown` with the bundled study, and a test keeps
it current. Another test scans ``trialkit/`` for code literals and fails when one is not here, so a
new code cannot be emitted without being documented.

Severities: ``error`` (the upload cannot be accepted as it is), ``warning`` (accepted only when the
data manager acknowledges it), ``info`` (a recorded fact, e.g. a normalisation), ``varies`` (set by
the limit or the situation; the message says which).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["CATALOGUE", "Code", "catalogue", "render_markdown", "study_codes"]


@dataclass(frozen=True)
class Code:
    """One finding code of the engine."""

    code: str
    title: str
    severity: str
    category: str
    description: str
    remedy: str
    stage: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


def _c(code: str, title: str, severity: str, category: str, stage: str, description: str, remedy: str) -> Code:
    return Code(code=code, title=title, severity=severity, category=category, description=description,
                remedy=remedy, stage=stage)


_ENGINE = (
    # -- reading files ---------------------------------------------------------------------------
    _c("IMP-FILE-IO", "File cannot be opened", "error", "file", "import",
       "The operating system refused to open the file (missing, a folder, no permission).",
       "Check the path and the file's permissions."),
    _c("IMP-FILE-EMPTY", "Empty file", "error", "file", "import",
       "The file has no bytes, or a text file holds no text.",
       "Upload the filled file again."),
    _c("IMP-FILE-UNREADABLE", "File could not be read", "error", "file", "import",
       "A reader failed on the file for a reason trialkit does not recognise.",
       "Re-save or export the file again and upload it; report it to the trialkit team if it persists."),
    _c("IMP-FILE-CORRUPT", "Damaged workbook package", "error", "file", "import",
       "The xlsx zip package is damaged or truncated.",
       "Open the workbook in Excel, save it again and upload the new file."),
    _c("IMP-FILE-PASSWORD", "Password-protected file", "error", "file", "import",
       "The workbook is encrypted with a password; nothing in it can be read.",
       "Remove the password in Excel (File > Info > Protect Workbook) and upload again."),
    _c("IMP-FILE-HTML", "HTML page, not a data file", "error", "file", "import",
       "The file is a web page (often a browser error page saved under the data file's name).",
       "Download the real file and upload it."),
    _c("IMP-FILE-FORMAT", "Not a supported data file", "error", "file", "import",
       "The content is not one of the supported formats (xlsx/xlsm, xls, SpreadsheetML, sas7bdat, XPT, "
       "sav/zsav, dta, CSV/text), whatever the file name says.",
       "Export the data as xlsx, CSV or one of the supported statistical formats."),
    _c("IMP-FILE-ENCODING", "Text cannot be decoded", "error", "file", "import",
       "The bytes of a text file or dataset are not valid in any encoding trialkit tries.",
       "Export the file as UTF-8 and upload again."),
    _c("IMP-FILE-CHARSET", "Unsupported SAS character set", "error", "file", "import",
       "The sas7bdat dataset uses a character set the SAS reader does not support.",
       "Re-save it in SAS with ENCODING=UTF8, or export it as XPT or CSV."),
    _c("IMP-FILE-TOO-LARGE", "Dataset too large", "error", "file", "import",
       "A statistical dataset is larger than trialkit accepts.",
       "Split the dataset (e.g. by form or by visit) and upload the parts together."),
    _c("IMP-ENCODING-CP1252", "Text read as Windows-1252", "warning", "file", "import",
       "The text is not UTF-8 and was read as Windows-1252 (cp1252); accents may be wrong if that guess is.",
       "Check accented text in the findings; export as UTF-8 next time."),
    _c("IMP-STRICT-OOXML", "Strict Open XML workbook", "info", "file", "import",
       "The workbook is saved as Strict Open XML, which several tools cannot read; trialkit read it.",
       "Save as a normal .xlsx to be safe."),
    _c("IMP-DATES-RAW", "Dates read as raw numbers", "warning", "file", "import",
       "A date or datetime in a SAS, SPSS or Stata file is outside the range trialkit can represent.",
       "Correct the out-of-range date in the source system and export again."),
    _c("IMP-SAS-CATALOG", "SAS formats applied", "info", "file", "import",
       "Value formats were applied to a sas7bdat dataset from the catalogue of the same name.",
       "None."),
    _c("IMP-SAS-CATALOG-ONLY", "SAS format catalogue, not data", "info", "file", "import",
       "A .sas7bcat file holds value formats only; it is applied to the sas7bdat of the same name.",
       "Upload it together with its dataset."),
    _c("IMP-ZIP-PATH", "Suspicious part name in a workbook", "warning", "file", "import",
       "The workbook package names a part with an absolute path or '..'; trialkit never extracts parts.",
       "Re-save the workbook in Excel."),
    _c("IMP-XML-DOCTYPE", "XML declarations in a workbook", "error", "file", "import",
       "An XML part declares a DOCTYPE or entities, which Excel never writes (an XML-bomb pattern).",
       "Open the workbook in Excel, save it as a new .xlsx and upload that."),
    # -- limits (docs/limits.md) -------------------------------------------------------------------
    _c("IMP-LIMIT-FILE-SIZE", "File larger than the limit", "error", "file", "import",
       "The file is larger than TRIALKIT_MAX_FILE_BYTES.",
       "Split the upload into smaller files (e.g. one per form), or raise the limit (docs/limits.md)."),
    _c("IMP-LIMIT-ZIP-MEMBERS", "Too many parts in a workbook", "error", "file", "import",
       "The workbook package holds more parts than TRIALKIT_MAX_ZIP_MEMBERS.",
       "Check that this is the intended file."),
    _c("IMP-LIMIT-UNCOMPRESSED", "Workbook inflates beyond the limit", "error", "file", "import",
       "The workbook's XML inflates to more than TRIALKIT_MAX_UNCOMPRESSED_BYTES (a zip bomb, or far more "
       "data than one upload holds).",
       "Split the upload, or raise the limit (docs/limits.md)."),
    _c("IMP-LIMIT-COMPRESSION", "Suspicious compression ratio", "error", "file", "import",
       "A workbook part inflates far more than real data does, the signature of a zip bomb.",
       "Re-save the workbook in Excel and upload it again."),
    _c("IMP-LIMIT-ROWS", "Too many rows", "error", "file", "import",
       "A sheet or file has, or claims to have, more rows than TRIALKIT_MAX_ROWS.",
       "Delete the empty formatted rows at the bottom of the sheet, or split the upload."),
    _c("IMP-LIMIT-COLUMNS", "Too many columns", "error", "file", "import",
       "A sheet has, or claims to have, more columns than TRIALKIT_MAX_COLUMNS.",
       "Delete the empty formatted columns at the right of the sheet."),
    _c("IMP-LIMIT-CELLS", "Too many cells", "error", "file", "import",
       "A sheet claims more cells than TRIALKIT_MAX_CELLS.",
       "Delete the empty formatted rows and columns, save and upload again."),
    _c("IMP-LIMIT-STRING", "Text cell too long", "error", "file", "import",
       "A cell holds more characters than TRIALKIT_MAX_STRING_LENGTH; a CRF field is never this long.",
       "Shorten the text in the cell."),
    _c("IMP-LIMIT-LINE", "Text line too long", "error", "file", "import",
       "A line of a CSV/text file is longer than TRIALKIT_MAX_LINE_BYTES.",
       "Check that the file is a CSV export of the form."),
    # -- sheets, columns, template ---------------------------------------------------------------
    _c("IMP-NO-SHEETS", "No form sheet in the workbook", "error", "file", "import",
       "A trialkit template arrived with no sheet named after a form.",
       "Keep the sheet names of the template."),
    _c("IMP-NO-FORM", "Sheet or dataset matches no form", "warning", "structure", "import",
       "A sheet or dataset could not be matched to a form of the study by its name; it was not read.",
       "Rename it to the form code (e.g. DM), or give --form for a single dataset."),
    _c("IMP-SHEET-HIDDEN", "Hidden sheet read", "info", "structure", "import",
       "A sheet is hidden or very hidden; it was read like any other.",
       "Unhide it if it should not be part of the upload, and remove it."),
    _c("IMP-SHEET-UNREADABLE", "Sheet cannot be read", "error", "file", "import",
       "One sheet of the workbook could not be read.",
       "Re-save the workbook in Excel and upload again."),
    _c("IMP-EXCEL-ERROR", "Excel error cell", "error", "type", "import",
       "A cell holds an Excel error (#N/A, #VALUE!, #REF! …): a formula failed, and the value is lost.",
       "Type the value itself in the cell."),
    _c("IMP-TEMPLATE-STAMP", "Not a trialkit template", "warning", "structure", "import",
       "The workbook has no trialkit version stamp (sheet _trialkit).",
       "Use the current upload template (trialkit template --site SS)."),
    _c("IMP-TEMPLATE-STUDY", "Template of another study", "error", "structure", "import",
       "The workbook's stamp names another study.",
       "Upload this study's template."),
    _c("IMP-TEMPLATE-OUTDATED", "Outdated template", "warning", "structure", "import",
       "The stamp's schema hash differs from the study's: the forms changed since the template was issued. "
       "A template of an earlier protocol version whose forms did not change is current.",
       "Copy the data into the current template."),
    _c("IMP-COLUMN-MISSING", "Form column missing", "varies", "structure", "import",
       "A variable of the form has no column (an error when the variable is required).",
       "Add the column, or use the current template."),
    _c("IMP-COLUMN-UNKNOWN", "Column not in the form", "warning", "structure", "import",
       "A column is not a variable of the form; its values are not imported.",
       "Rename it to the variable name or remove it."),
    _c("IMP-COLUMN-DUPLICATE", "Second column for a variable", "error", "structure", "import",
       "Two columns map to the same variable; only the first is read.",
       "Remove the duplicate column."),
    _c("IMP-COLUMN-DERIVED", "Column derived by trialkit", "warning", "structure", "import",
       "The column is derived by trialkit on import (e.g. a result in the standard unit); uploaded values "
       "are ignored.",
       "Remove the column from the upload."),
    _c("IMP-HEADER-NAME", "Column matched by its name", "info", "structure", "import",
       "A header was matched to a variable ignoring case, spaces and punctuation.",
       "None; use the template's header to be exact."),
    _c("IMP-HEADER-LABEL", "Column matched by its label", "info", "structure", "import",
       "A header was matched to a variable by the variable's label.",
       "None; use the template's header to be exact."),
    # -- values ----------------------------------------------------------------------------------
    _c("IMP-TYPE", "Value of the wrong type", "error", "type", "import",
       "A value cannot be read as the variable's type (a number, a date in the site's date order, a partial "
       "date, Y/N).",
       "Correct the value in the file."),
    _c("IMP-NORMALISED", "Values normalised", "info", "normalisation", "import",
       "Values were converted the study's way (site date order, decimal comma, unit conversion, synonym, "
       "missing-value code, trimmed text); the typed value is kept.",
       "None; the finding records the conversion."),
    _c("IMP-USER-MISSING", "Special missing values", "warning", "normalisation", "import",
       "A dataset holds user-defined or special missing values; they were read as missing.",
       "Give the reason with a missing-value code (ND, NK, NA) where the study needs one."),
    _c("IMP-UNIT-UNKNOWN", "Unknown unit", "error", "codelist", "import",
       "A unit is not one the study accepts for the variable or test.",
       "Use the standard unit or one of its declared alternatives."),
    _c("IMP-UNIT-SITE", "Unit the site does not use", "warning", "normalisation", "import",
       "Values are in a unit system the site does not use (e.g. US units at an SI site); converted.",
       "Check those values and their unit."),
    # -- privacy ---------------------------------------------------------------------------------
    _c("PRIVACY-COLUMN", "Identifier column", "error", "privacy", "import",
       "A column looks like a direct identifier (name, initials, full birth date, hospital number, e-mail, "
       "phone); the upload is refused before anything is archived.",
       "Remove the column and upload again."),
    _c("PRIVACY-VALUE", "Identifier in the data", "error", "privacy", "import",
       "A value looks like a direct identifier (an e-mail, a phone number, a name in free text); it is shown "
       "masked and the upload is refused before anything is archived.",
       "Remove the identifier from the cell and upload again."),
    _c("PRIVACY-BIRTH-DATE", "Full date of birth", "error", "privacy", "import",
       "A birth date collected as year and month holds a day: a full birth date identifies a person.",
       "Type the year and month only (YYYY-MM)."),
    # -- form checks (pandera) -------------------------------------------------------------------
    _c("REQUIRED", "Required value missing", "error", "required", "validate",
       "A required (or conditionally required) value is empty.",
       "Enter the value, or a missing-value code (ND, NK, NA) with the reason."),
    _c("CODELIST", "Value not in the codelist", "error", "codelist", "validate",
       "A coded value is not one of the codelist's codes (or their accepted synonyms).",
       "Choose a value from the dropdown of the template."),
    _c("RANGE", "Value out of range", "error", "range", "validate",
       "A number is outside the variable's declared range (after unit conversion).",
       "Check the value and its unit."),
    _c("DECIMALS", "Too many decimals", "error", "range", "validate",
       "A number has more decimals than the variable allows.",
       "Round as the CRF says, or check the decimal mark."),
    _c("FORMAT", "Wrong format", "error", "type", "validate",
       "A text value does not have the required shape (a partial date, the study's subject number).",
       "Type the value in the format the message names."),
    _c("TYPE", "Wrong data type", "error", "type", "validate",
       "A column holds the wrong data type after import.",
       "Correct the column's values."),
    _c("DUPLICATE-KEY", "Duplicate record", "error", "key", "validate",
       "Two records share the form's keys (e.g. the same subject and visit).",
       "Keep one record and correct or delete the other."),
    _c("DUPLICATE-VALUE", "Duplicate value", "error", "key", "validate",
       "A value that must be unique is used in more than one record.",
       "Correct the duplicated value."),
    _c("STRUCTURE", "Column missing for the form checks", "error", "structure", "validate",
       "A column the form checks need is not in the data.",
       "Add the column (use the current template)."),
    _c("WRONG-SITE", "Record of another site", "error", "privacy", "validate",
       "A record belongs to another site than the one uploading; it is left out (a site sees only its own "
       "data).",
       "Remove the record from this site's upload."),
)

#: Every engine code by its code.
CATALOGUE: dict[str, Code] = {c.code: c for c in _ENGINE}


def study_codes(study: Any) -> list[dict[str, Any]]:
    """The study's own codes: its rules (data checks and protocol deviations) with their titles."""
    rows = []
    for rule in study.rules:
        rows.append({
            "code": rule.id,
            "title": rule.title,
            "severity": rule.severity.value,
            "category": rule.category.value,
            "deviation_class": rule.deviation_class,
            "reference": rule.reference,
            "forms": list(rule.forms),
        })
    return rows


def catalogue(study: Any | None = None) -> dict[str, Any]:
    """The catalogue as data: ``{"engine": [...], "study": {"id", "protocol_version", "codes": [...]}}``."""
    data: dict[str, Any] = {"engine": [c.to_dict() for c in _ENGINE]}
    if study is not None:
        data["study"] = {"id": study.id, "protocol_version": study.protocol_version, "codes": study_codes(study)}
    return data


def _md(text: Any) -> str:
    return str("" if text is None else text).replace("|", "\\|").replace("\n", " ")


def render_markdown(study: Any | None = None) -> str:
    """The catalogue as Markdown (``docs/codes.md``)."""
    lines = [
        "# Finding codes",
        "",
        "Generated by `trialkit codes -f md -o docs/codes.md` from `trialkit/codes.py`"
        + (" and the bundled study" if study is not None else "") + "; do not edit by hand.",
        "",
        "Every finding names its code. The engine's codes are the same for every study; a study adds its "
        "own data checks and protocol deviations (its rule ids).",
        "",
        "## Engine codes",
        "",
        "| code | title | severity | category | stage | what it means | what to do |",
        "|---|---|---|---|---|---|---|",
    ]
    for code in _ENGINE:
        lines.append(f"| `{code.code}` | {_md(code.title)} | {code.severity} | {code.category} | {code.stage} | "
                     f"{_md(code.description)} | {_md(code.remedy)} |")
    if study is not None:
        lines += [
            "",
            f"## Study codes — {study.id} (protocol version {study.protocol_version})",
            "",
            "| code | title | severity | category | class | forms | reference |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in study_codes(study):
            lines.append(f"| `{row['code']}` | {_md(row['title'])} | {row['severity']} | {row['category']} | "
                         f"{_md(row['deviation_class'] or '')} | {_md(', '.join(row['forms']))} | {_md(row['reference'])} |")
    return "\n".join(lines) + "\n"
