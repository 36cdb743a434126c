"""The catalogue of finding codes: every code the engine emits, defined once.

Each :class:`Code` has a title, a severity, a category, what it means and what to do about it.
A study adds its own codes — its data checks and protocol deviations, which are its rule ids with
their titles (:func:`study_codes`). ``trialkit codes`` lists both (``-f json``, ``-f md``);
``docs/codes.md`` is generated from :func:`render_markdown` with the bundled study, and a test keeps
it current. Another test scans ``trialkit/`` for code literals and fails when one is not here, so a
new code cannot be emitted without being documented.

Severities: ``error`` (the upload cannot be accepted as it is), ``warning`` (accepted only when the
data manager acknowledges it), ``info`` (a recorded fact, e.g. a normalisation), ``varies`` (set by
the limit or the situation; the message says which). The ``VERIFY-*`` codes are the problems
``trialkit verify`` reports about a workspace (error: it does not verify, and ``pool`` refuses).
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
       "The content is not one of the supported formats (xlsx/xlsm, xlsb, ods, xls, SpreadsheetML, sas7bdat, "
       "XPT, sav/zsav, por, dta, CSV/text), whatever the file name says.",
       "Export the data as xlsx, CSV or one of the supported statistical formats."),
    _c("IMP-FILE-NOT-REGULAR", "Not a regular file", "error", "file", "import",
       "The upload is a symbolic link, a folder, a device, a FIFO or a socket. trialkit reads only regular "
       "files and never follows a link; nothing of it is read or archived.",
       "Send the data file itself (not a link, folder, device or pipe)."),
    _c("IMP-XLS-OLD", "Excel workbook older than Excel 97", "error", "file", "import",
       "An .xls in a format from before Excel 97 (Excel 2.x-4.0 worksheets, or an Excel 5.0/95 workbook that "
       "cannot be read).",
       "Open it in Excel or LibreOffice, save it as .xlsx and upload that."),
    _c("IMP-ERRORS-UNVERIFIED", "Sheets could not be checked", "error", "file", "import",
       "The sheets of an xlsb, ods or xls workbook could not be scanned (their structure is damaged): neither "
       "their size nor their Excel error cells (#N/A, #DIV/0!) can be verified, and a damaged or crafted "
       "sheet can make the reader claim all memory, so the file is not read.",
       "Open it in Excel or LibreOffice, save it as .xlsx and upload that instead."),
    _c("IMP-CSV-NUL", "NUL byte in a text file", "error", "file", "import",
       "A line of a CSV/text file holds a NUL byte (character code 0): the file was damaged by an "
       "interrupted copy or transfer, or is not a text export. The finding names the line.",
       "Export the file again from the site's system and upload the new file."),
    _c("IMP-CSV-EXTRA-FIELD", "More fields than the header", "error", "structure", "import",
       "A CSV line has more non-empty fields than the header (usually a value holding the delimiter "
       "without quotes); the extra values are not read and every other column stays in place. An empty "
       "trailing field (a trailing delimiter) is dropped quietly.",
       "Check the line the finding names (quote a value that holds the delimiter) and export it again."),
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
    _c("IMP-SAS-CATALOG", "SAS formats applied", "info", "file", "import",
       "Value formats were applied to a sas7bdat dataset from the catalogue of the same name.",
       "None."),
    _c("IMP-SAS-CATALOG-ONLY", "SAS format catalogue, not data", "info", "file", "import",
       "A .sas7bcat file holds value formats only; it is applied to the sas7bdat of the same name.",
       "Upload it together with its dataset."),
    _c("IMP-ZIP-PATH", "Suspicious part name in a workbook", "warning", "file", "import",
       "The workbook package names a part with an absolute path or '..'; trialkit never extracts parts.",
       "Re-save the workbook in Excel."),
    _c("IMP-XML-DOCTYPE", "XML declarations in a workbook or ODM file", "error", "file", "import",
       "An XML part of a workbook, or an ODM file, declares a DOCTYPE or entities, which Excel and EDC "
       "systems never write (an XML-bomb or external-entity pattern); refused before parsing.",
       "Open the workbook in Excel and save it as a new .xlsx, or export the ODM file again."),
    # -- limits (docs/limits.md) -------------------------------------------------------------------
    _c("IMP-LIMIT-FILE-SIZE", "File larger than the limit", "error", "file", "import",
       "The file is larger than TRIALKIT_MAX_FILE_BYTES.",
       "Split the upload into smaller files (e.g. one per form), or raise the limit (docs/limits.md)."),
    _c("IMP-LIMIT-ZIP-MEMBERS", "Too many parts in a workbook", "error", "file", "import",
       "The workbook package holds more parts than TRIALKIT_MAX_ZIP_MEMBERS.",
       "Check that this is the intended file."),
    _c("IMP-LIMIT-UNCOMPRESSED", "Workbook inflates beyond the limit", "error", "file", "import",
       "An xlsx/xlsm/xlsb/ods workbook inflates to more than TRIALKIT_MAX_UNCOMPRESSED_BYTES (a zip bomb, "
       "or far more data than one upload holds); also measured while inflating, when the directory lies.",
       "Split the upload, or raise the limit (docs/limits.md)."),
    _c("IMP-LIMIT-COMPRESSION", "Suspicious compression ratio", "error", "file", "import",
       "A workbook part inflates far more than real data does, the signature of a zip bomb.",
       "Re-save the workbook in Excel and upload it again."),
    _c("IMP-LIMIT-ROWS", "Too many rows", "error", "file", "import",
       "A sheet or file has, or claims to have, more rows than TRIALKIT_MAX_ROWS (a cell in a far row, a "
       "SpreadsheetML ss:Index), checked before a reader allocates them.",
       "Delete the empty formatted rows at the bottom of the sheet, or split the upload."),
    _c("IMP-LIMIT-COLUMNS", "Too many columns", "error", "file", "import",
       "A sheet or CSV header has, or claims to have, more columns than TRIALKIT_MAX_COLUMNS (a cell past "
       "column XFD, an ss:Index or ss:MergeAcross claim).",
       "Delete the empty formatted columns at the right of the sheet."),
    _c("IMP-LIMIT-CELLS", "Too many cells", "error", "file", "import",
       "A sheet spans more cells from A1 to its farthest cell than TRIALKIT_MAX_CELLS (one stray far cell "
       "such as XFD5000, a dimension claim, ODS repeats); refused before a reader allocates the sheet, "
       "naming the farthest cell.",
       "Delete the empty formatted rows and columns, save and upload again."),
    _c("IMP-LIMIT-ERROR-CELLS", "Too many error cells", "error", "file", "import",
       "A sheet holds more Excel error cells (#N/A, #DIV/0!) or formulas never calculated than "
       "TRIALKIT_MAX_ERROR_CELLS: each would be a finding (a crafted ods repeats one error cell over "
       "millions); refused before it is read.",
       "Fix the formulas that fail (or paste their values instead), save in Excel and upload again."),
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
    _c("IMP-FORMULA-UNCALCULATED", "Formula never calculated", "error", "type", "import",
       "A cell holds a formula but no result: the workbook was written by a program and never saved in "
       "Excel or LibreOffice, so the value is unknown (a reader would see a blank).",
       "Open the workbook in Excel or LibreOffice, save it and upload it again, or type the value itself."),
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
    _c("IMP-TEMPLATE-SITE", "Template of another site", "warning", "structure", "import",
       "The workbook is a site template (trialkit template --site SS) made for another site than the one "
       "it is uploaded as, so a blank SITEID is not filled in from the template (rule siteid-from-template).",
       "Check that the upload is this site's; type the site in SITEID or copy the data into the site's own "
       "template."),
    _c("IMP-COLUMN-MISSING", "Form column missing", "varies", "structure", "import",
       "A variable of the form has no column (an error when the variable is required); one finding for "
       "the column, with the number of rows, not one per row.",
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
    _c("IMP-HEADER-OFFSET", "Header below note rows", "info", "structure", "import",
       "The table's header row was found by its content below rows or lines of notes (an export title, "
       "'printed by ...', a # comment); the notes were not read as data.",
       "None; the finding names the header row."),
    # -- values ----------------------------------------------------------------------------------
    _c("IMP-TYPE", "Value of the wrong type", "error", "type", "import",
       "A value cannot be read as the variable's type (a number, a date in the site's date order, a partial "
       "date, Y/N).",
       "Correct the value in the file."),
    _c("IMP-DATE-RANGE", "Date out of range", "error", "type", "import",
       "A date or datetime (SAS, SPSS, Stata, Excel) is outside the dates trialkit can hold (1678-01-01 to "
       "2261-12-31); the finding names the cell, and every other value of the column stays a date.",
       "Check the year and correct the value in the file."),
    _c("IMP-NORMALISED", "Values normalised", "info", "normalisation", "import",
       "Values were converted the study's way (site date order, decimal comma, unit conversion, synonym, "
       "missing-value code, trimmed text, a blank SITEID filled in from a site template's stamp: rule "
       "siteid-from-template); the typed value is kept.",
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
    # -- site systems' exports: mapping specs, SDTM, REDCap, ODM ---------------------------------
    _c("MAP-SPEC", "Read through a mapping spec", "info", "structure", "import",
       "A table of a site system's export was read through a mapping spec (mappings/NAME.toml): chosen with "
       "--mapping, recognised by its [recognise] columns, or the site's default ([[sites]] mappings); a "
       "re-import from the archive reads it through the same spec.",
       "None; the finding names the spec and the form."),
    _c("MAP-SDTM", "SDTM domain recognised", "info", "structure", "import",
       "A dataset with STUDYID, DOMAIN and USUBJID is an SDTM domain: it is read as the form the study's SDTM "
       "map names (its mapping specs with sdtm_domain), a SUPP-- dataset's qualifiers as columns of its parent.",
       "None; the finding names the domain, the form and the mapping."),
    _c("MAP-SDTM-STUDY", "SDTM export of another study", "error", "structure", "import",
       "The SDTM dataset's STUDYID is not this study's; nothing of it is imported (one finding, not one per "
       "record).",
       "Send this study's export; if it is this study under another code, read it with --mapping NAME."),
    _c("MAP-SDTM-DOMAIN", "SDTM domain the study does not collect", "warning", "structure", "import",
       "The study's SDTM map reads no form from this domain; nothing of it is imported.",
       "Leave the domain out of the upload, or add a mapping spec with sdtm_domain for it."),
    _c("MAP-SUPP-UNMATCHED", "SUPP-- records without a parent record", "warning", "structure", "import",
       "Supplemental qualifier records (SUPP--) match no record of their parent domain in the upload (by "
       "USUBJID and IDVAR/IDVARVAL), or repeat one; one finding per QNAM with the count, values not imported.",
       "Send the parent domain together with its SUPP-- dataset, with matching keys."),
    _c("MAP-AMBIGUOUS", "Several mappings recognise a table", "error", "structure", "import",
       "More than one mapping spec's [recognise] columns are all in the table; nothing of it is imported.",
       "Choose one with --mapping NAME, or make the specs' [recognise] columns tell the exports apart."),
    _c("MAP-COLUMN-UNMAPPED", "Column not read by the mapping", "warning", "structure", "import",
       "A column of a site system's export holds values but its mapping spec neither reads nor ignores it; "
       "one finding per column with the number of values, which are not imported.",
       "Map the column to a variable in the spec, or list it under ignore if the study does not collect it."),
    _c("MAP-SOURCE-MISSING", "Column the mapping needs is missing", "varies", "structure", "import",
       "The export lacks a column the mapping spec needs: a pivot's test or value column (error: nothing is "
       "imported), or a filter's column (warning: every row is read). A variable whose column is missing is "
       "IMP-COLUMN-MISSING, naming the column.",
       "Export the column, or correct the spec."),
    _c("MAP-FILTERED", "Rows left out by a mapping's filter", "info", "structure", "import",
       "Rows whose filter column does not hold one of the spec's values (e.g. DS protocol milestones) are not "
       "read; the finding gives the count and the values seen.",
       "None, when those rows are not the form's records."),
    _c("MAP-PIVOT-TEST", "Test the mapping does not read", "warning", "structure", "import",
       "A long export (one row per test) holds a test that the spec's [pivot.tests] does not list; one "
       "finding per test with the count, values not imported.",
       "Add the test to [pivot.tests] if the form collects it; otherwise leave it out of the export."),
    _c("MAP-PIVOT-DUPLICATE", "Test repeated within a record", "error", "record", "import",
       "A long export holds the same test twice for one record (subject and visit); the first value is read.",
       "Keep one row per test and record (correct or remove the repeat)."),
    _c("MAP-PIVOT-CONFLICT", "Rows of one record disagree", "error", "record", "import",
       "In a long export the rows of one record hold different values for a column read once per record "
       "(e.g. the visit date); the first row's value is read.",
       "Make the rows of the record agree."),
    _c("MAP-UNIT", "Unit the variable does not take", "error", "codelist", "import",
       "A long export gives a result in a unit that is neither the variable's unit nor one the spec accepts; "
       "the number is read as if in the variable's unit.",
       "Convert the values, or list the unit in [pivot.tests] when it is the same unit written otherwise."),
    _c("MAP-VALUE", "Values converted by a mapping", "info", "normalisation", "import",
       "A mapping spec recoded values, read dates (ISO 8601 or a pattern), split or joined a date and a time, "
       "set a constant or a default; the value as sent stays in the raw data and the change log.",
       "None; the finding records the conversion."),
    _c("MAP-REDCAP", "REDCap export recognised", "info", "structure", "import",
       "A CSV with REDCap's record-id field and redcap_event_name / redcap_repeat_instrument columns, raw or "
       "with labels, is read back through the study's REDCap project (trialkit redcap dictionary).",
       "None; the finding names the instruments read."),
    _c("MAP-REDCAP-EVENT", "Unknown REDCap event or instrument", "error", "structure", "import",
       "Rows of a REDCap export name an event or a repeating instrument that the study's REDCap project does "
       "not have; one finding per name with the count, rows not imported.",
       "Export from the project built from `trialkit redcap dictionary` (its events and instruments)."),
    _c("MAP-ODM", "CDISC ODM clinical data read", "info", "structure", "import",
       "An ODM 1.3 file's ClinicalData was read: each ItemGroupData a record of the form its OIDs name.",
       "None; the finding names the forms read."),
    _c("MAP-ODM-OID", "ODM OID the study does not know", "warning", "structure", "import",
       "An ItemGroupOID, ItemOID or StudyEventOID of the ClinicalData is none the study declares or derives "
       "([odm] in study.toml; IT.FORM.VAR ...); one finding per OID with the count, values not imported.",
       "Declare the OID in [odm] of study.toml, or export with the study's OIDs (trialkit odm metadata)."),
    _c("MAP-ODM-STUDY", "ODM data of another study", "error", "structure", "import",
       "The ClinicalData's StudyOID is not this study's; nothing of it is imported.",
       "Send this study's export, or declare the study's OID as [odm] study_oid."),
    _c("MAP-ODM-REMOVE", "ODM transactions that remove data", "warning", "structure", "import",
       "ItemGroupData with TransactionType=\"Remove\" are not applied: trialkit reads snapshots of a site's "
       "current data; one finding per item group with the count.",
       "Send a snapshot export (FileType=\"Snapshot\") of the site's current data."),
    _c("IMP-ODM-XML", "Not readable ODM XML", "varies", "file", "import",
       "The ODM file is not well-formed XML (error; the finding names the line), or holds no ClinicalData "
       "(warning: study metadata only).",
       "Export the ODM file's clinical data again from the site's system."),
    # -- privacy ---------------------------------------------------------------------------------
    _c("PRIVACY-COLUMN", "Identifier column", "error", "privacy", "import",
       "A column's header (in the languages of the sites, hidden sheets included) names a direct identifier: "
       "name, surname, initials, date of birth, address, phone, e-mail, hospital, insurance or national id "
       "number; the upload is refused before anything is archived.",
       "Remove the column and upload again."),
    _c("PRIVACY-VALUE", "Identifier in the data", "error", "privacy", "import",
       "A value is a direct identifier under any header: an e-mail, a phone number, a full birth date, a name, "
       "a national id (US SSN, codice fiscale, NIR, BSN, DNI/NIE, NHS number, SIN, with their check digits); "
       "it is shown masked and the upload is refused before anything is archived.",
       "Remove the identifier from the cell and upload again."),
    _c("PRIVACY-COMMENT", "Identifier in a cell comment", "error", "privacy", "import",
       "A cell comment of the workbook holds a direct identifier, or a name after a word that says whose it "
       "is ('Mother: ...'); the upload is refused before anything is archived.",
       "Delete the comment and upload again."),
    _c("PRIVACY-BIRTH-DATE", "Full date of birth", "error", "privacy", "import",
       "A variable the study declares part of the date of birth (var(..., birth=True)) holds a day: a full "
       "birth date identifies a person.",
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
       "data), and `submit` refuses the upload before anything is archived. When no record at all is the "
       "site's, one SITE-MISMATCH finding replaces these.",
       "Remove the record from this site's upload."),
    _c("NO-FORM", "No form of the study recognised", "error", "structure", "validate",
       "No sheet, dataset or file of the upload was recognised as a form of the study: nothing was validated "
       "and no rule ran (not given when an import error already says why: an unreadable file, another study's "
       "export). `validate` exits 1 whatever --fail-on says, so nothing-validated never looks clean.",
       "Name the sheets or files by their form (e.g. DM, VS), pass --form CODE, or send the study's upload "
       "workbook; trialkit inspect FILE shows what was read."),
    # -- diagnoses (one finding for one cause: trialkit/diagnose.py) -----------------------------
    _c("SITE-MISMATCH", "Every record is another site's", "error", "structure", "validate",
       "No record of the upload is the site named with --site, and some are another site's: one finding "
       "(\"every record is site 03; did you mean --site 03?\") instead of one per record, and nothing of the "
       "upload is validated. `submit` refuses it before anything is archived (exit code 2).",
       "Give the right --site (the one the message names)."),
    _c("SITE-CONVENTIONS", "Typed in another site's conventions", "error", "type", "validate",
       "Three or more numbers typed with a decimal comma at a site whose decimal mark is a point, or dates that "
       "cannot be read in the site's date order but all read in another: the file was typed in another site's "
       "conventions. One finding with the count and the first cells (all in its evidence) replaces their "
       "IMP-TYPE errors; with dates in the wrong order, no rule runs (its findings would be consequences of "
       "misread dates), and dates that read both ways may have been read wrong.",
       "Check --site (the message names the sites that type that way); otherwise ask the site to send the "
       "file in its own conventions (or dates as YYYY-MM-DD)."),
    # -- the ledger (trialkit submit) --------------------------------------------------------------
    _c("LEDGER-NO-FORM", "No form recognised", "error", "ledger", "submit",
       "No sheet, dataset or file of the upload was recognised as a form of the study; the submission is "
       "rejected whatever flags are given, so it can never replace the site's data.",
       "Upload the study's template or datasets named after the forms (trialkit inspect FILE shows what "
       "was recognised)."),
    _c("LEDGER-REMOVED-RECORDS", "Upload removes records", "warning", "ledger", "submit",
       "The upload holds a form without some of the records (rows, subjects, visits) that are the site's "
       "current data for it (e.g. a truncated file); one finding per form, with the count and the keys. "
       "The submission is held.",
       "Check the upload is complete (trialkit diff --site SS); when the removal is intended, submit the "
       "same files again with --accept-removals (recorded with the operator)."),
    # -- verify (trialkit verify; pool runs it first) --------------------------------------------
    _c("VERIFY-ARCHIVE-MISSING", "Archived upload missing", "error", "verify", "verify",
       "A file of the raw-upload archive recorded in the ledger is gone.",
       "Restore the workspace's archive from backup."),
    _c("VERIFY-ARCHIVE-CHANGED", "Archived upload changed", "error", "verify", "verify",
       "An archived upload's sha256 or size is not what the ledger recorded when it was received.",
       "Restore the file from backup."),
    _c("VERIFY-ARCHIVE-WRITABLE", "Archived file writable", "error", "verify", "verify",
       "An archived file has a write permission (archived files are 0444): someone changed its permissions.",
       "Check the file against its sha256 and make it read-only again (chmod 0444)."),
    _c("VERIFY-ARCHIVE-FOLDER-WRITABLE", "Archive folder writable", "warning", "verify", "verify",
       "An archive folder is writable (they are 0555); an interrupted submit leaves this, and the next "
       "submit makes it read-only again.",
       "None if a submit was interrupted; otherwise check who changed the permissions."),
    _c("VERIFY-ARCHIVE-UNRECORDED", "Archived upload no submission records", "warning", "verify", "verify",
       "An upload is in the archive but no submission in the ledger records it: a submit was killed between "
       "archiving the file and recording it, or ledger.sqlite was restored from an older backup and has lost "
       "the submissions received since.",
       "Submit the file again if a submit was interrupted; otherwise restore the ledger that goes with this "
       "archive."),
    _c("VERIFY-AUDIT-GAP", "Audit line missing", "error", "verify", "verify",
       "The audit lines are not numbered 1..N: a line was deleted.",
       "Restore the ledger from backup."),
    _c("VERIFY-AUDIT-CHAIN", "Audit chain broken", "error", "verify", "verify",
       "An audit line does not match its chain hash (the hash of the line before and its own content): it, "
       "or a line before it, was edited, deleted or moved; every later line is unverified.",
       "Restore the ledger from backup."),
    _c("VERIFY-STATUS", "Status not in the audit log", "error", "verify", "verify",
       "A submission's status in the ledger is not the one the audit log gave it.",
       "Restore the ledger from backup."),
    _c("VERIFY-POINTER", "Current data not in the audit log", "error", "verify", "verify",
       "A site's current data for a form points to a submission other than the one the audit log made "
       "current, or to one that is not accepted.",
       "Restore the ledger from backup."),
    _c("VERIFY-FREEZE", "Freeze not in the audit log", "error", "verify", "verify",
       "A freeze names other data than the audit log had made current when it was recorded, or a "
       "submission that was not accepted.",
       "Restore the ledger from backup."),
    _c("VERIFY-QUERY", "Query state not in the audit log", "error", "verify", "verify",
       "A query's state (open, answered, closed, resolved) is not the one its audited transitions gave it "
       "(submissions, answers read back, the data manager's close and reopen), or the ledger holds a query no "
       "audit line opened, or lacks one that an audit line opened.",
       "Restore the ledger from backup."),
    _c("VERIFY-DEVIATION", "Deviation status not in the audit log", "error", "verify", "verify",
       "An entry of the deviation log is not in the status (open, confirmed, resolved, dismissed) its audited "
       "transitions gave it, or has no audit line that detected it, or an audited entry is missing.",
       "Restore the ledger from backup."),
    _c("VERIFY-LEDGER", "Ledger database damaged", "error", "verify", "verify",
       "SQLite's own integrity or foreign-key check fails on ledger.sqlite.",
       "Restore the ledger from backup."),
    _c("VERIFY-STUDY", "Study definition history changed", "error", "verify", "verify",
       "The study definitions the workspace was bound to (at init, and by each study-amended line) do not "
       "follow one another, or the workspace's copy of one of them (studies/) no longer has its recorded hash.",
       "Restore the ledger or the copy from backup (or copy the definition again from the study folder)."),
    _c("VERIFY-STUDY-COPY-MISSING", "Copy of a study definition missing", "warning", "verify", "verify",
       "The workspace's copy of a study definition it was bound to is gone; commands load the definition "
       "from its original folder and keep the copy again.",
       "None while the original study folder is there; otherwise restore the copy from backup."),
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
