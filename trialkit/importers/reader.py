"""The importer entry point: detect each file, read it, map its sheets or dataset to forms, normalise.

- :func:`read_file` / :func:`read_table` read any supported file into raw tables (used by
  ``trialkit inspect`` for files that are not trialkit forms);
- :func:`import_files` turns uploads into :class:`~trialkit.importers.base.FormData` per form with
  lineage, and an :class:`~trialkit.importers.base.ImportResult` whose report holds every finding
  and input file, and whose ``files`` list says what each file held.

Nothing here raises for a bad file: every problem becomes a ``file`` finding naming the file and the
remedy. What is not imported is still looked at for direct identifiers (:mod:`trialkit.privacy`):
unknown columns, sheets of no form (hidden ones too), notes above a header and cell comments; an
identifier found is masked in every finding (``ImportResult.secrets``). Example::

    >>> from trialkit.study import load_study
    >>> result = import_files(["site01.xlsx"], load_study(), site="01")  # doctest: +SKIP
    >>> result.forms["DM"].data  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trialkit.findings import Category, Finding, InputFile, Severity
from trialkit.importers.base import FormData, ImportResult
from trialkit.importers.detect import (
    CALAMINE_FORMATS,
    DATASET_FORMATS,
    WORKBOOK_FORMATS,
    Detected,
    FileRead,
    RawTable,
    detect,
    error_cell,
)
from trialkit.importers.exports import RunPlan, TablePlan, plan_run
from trialkit.importers.header import header_key, known_headers
from trialkit.importers.limits import Limits, file_size_finding
from trialkit.importers.mapping import finish as finish_mapped
from trialkit.importers.mapping import relocate
from trialkit.importers.normalise import Context, match_columns, normalise_table, to_text
from trialkit.importers.regular import regular_file_refusal
from trialkit.importers.sdtm import adam_evidence
from trialkit.importers.template_rows import is_template_title, template_block_rows
from trialkit.privacy import (
    COMMENT,
    VALUE,
    ValueHits,
    column_finding,
    mask_date,
    mask_identifiers,
    scan_values,
    text_finding,
    value_hits,
)

KNOWN_SHEETS = {"_trialkit", "_codelists", "instructions"}


def read_file(path: str | Path, *, catalog: Path | None = None, limits: Limits | None = None,
              known: frozenset[str] | None = None) -> FileRead:
    """Detect and read one file; never raises for a bad file (problems are findings).

    ``limits`` (default :meth:`Limits.from_env`) bound what a file may be; a file over a limit is
    refused with one ``file`` finding before its reader parses it. ``known`` (the study's variable
    names and labels as :func:`~trialkit.importers.header.header_key`) helps find a header row that
    sits below note rows.
    """
    path = Path(path)
    refused = regular_file_refusal(path)
    if refused is not None:
        return refused
    limits = limits or Limits.from_env()
    try:
        found = detect(path)
        too_large = file_size_finding(path, limits)
    except OSError as exc:
        result = FileRead(path=str(path), format="unreadable")
        result.fail("IMP-FILE-IO", f"{path}: cannot be opened ({exc.strerror or exc}); check the path and "
                    "permissions")
        return result
    if too_large is not None:
        result = FileRead(path=str(path), format=found.format)
        result.findings.append(too_large)
        return result
    try:
        return _read_detected(path, found, catalog, limits, known)
    except Exception as exc:  # a reader bug must not become a traceback for the data manager
        result = FileRead(path=str(path), format=found.format)
        result.fail("IMP-FILE-UNREADABLE", f"{path}: could not be read ({type(exc).__name__}: {exc}); "
                    "re-save or export the file again and upload it; report this to the trialkit team "
                    "if it persists")
        return result


def read_table(path: str | Path) -> list[RawTable]:
    """The raw tables (sheets or the dataset) of one file; see :func:`read_file` for findings."""
    return read_file(path).tables


def _read_detected(path: Path, found: Detected, catalog: Path | None, limits: Limits,
                   known: frozenset[str] | None = None) -> FileRead:
    fmt = found.format
    if fmt == "xls" and found.detail in ("BIFF2", "BIFF3", "BIFF4"):
        result = FileRead(path=str(path), format=fmt, extra={"biff": found.detail})
        version = {"BIFF2": "Excel 2.x", "BIFF3": "Excel 3.0", "BIFF4": "Excel 4.0"}[found.detail]
        result.fail("IMP-XLS-OLD", f"{path}: an {version} worksheet ({found.detail}), an .xls format from before "
                    "Excel 95 that trialkit does not read; open it in Excel or LibreOffice, save it as .xlsx "
                    "and upload that")
        return result
    if fmt in CALAMINE_FORMATS:
        from trialkit.importers.excel import read_excel

        if fmt == "xls" and found.detail == "BIFF5":
            read = read_excel(path, fmt, limits=limits, known=known, biff="BIFF5")
            read.extra["biff"] = "BIFF5"
            return read
        return read_excel(path, fmt, strict=found.strict, limits=limits, known=known)
    if fmt == "spreadsheetml":
        from trialkit.importers.spreadsheetml import read_spreadsheetml

        return read_spreadsheetml(path, limits=limits, known=known)
    if fmt in DATASET_FORMATS or fmt == "sas7bcat":
        from trialkit.importers.stats import read_dataset

        return read_dataset(path, fmt, catalog=catalog)
    if fmt == "csv":
        from trialkit.importers.csvfile import read_csv

        return read_csv(path, limits=limits, known=known)
    if fmt == "odm":
        from trialkit.importers.odm import read_odm

        return read_odm(path, limits=limits, version=found.detail)
    result = FileRead(path=str(path), format=fmt)
    messages = {
        "empty": ("IMP-FILE-EMPTY", "the file is empty (0 bytes); upload the filled file again"),
        "encrypted": ("IMP-FILE-PASSWORD", "password protected: remove the password in Excel (File > Info > "
                      "Protect Workbook) and upload again"),
        "html": ("IMP-FILE-HTML", "is an HTML (web) page, not a data file"
                 + (f" (title: {found.detail!r})" if found.detail else "")
                 + "; it was probably saved from a browser error page: download the real file and upload it"),
        "xml": ("IMP-FILE-FORMAT", "is an XML file that is neither a SpreadsheetML workbook nor CDISC ODM "
                "clinical data; export the data as xlsx, CSV or ODM 1.3"),
        "zip": ("IMP-FILE-FORMAT", f"is a zip archive but not an Excel workbook ({found.detail}); upload the "
                "workbook itself (.xlsx)"),
        "ole2": ("IMP-FILE-FORMAT", f"is an Office file but not an Excel workbook ({found.detail}); upload "
                 "the workbook itself"),
        "binary": ("IMP-FILE-FORMAT", "is not a format trialkit reads (xlsx, xlsm, xlsb, ods, xls, "
                   "SpreadsheetML, sas7bdat, xpt, sav, zsav, por, dta, csv, CDISC ODM); export the data in one "
                   "of these"),
    }
    code, message = messages.get(fmt, ("IMP-FILE-FORMAT", "is not a format trialkit reads"))
    result.fail(code, f"{path}: {message}")
    return result


# ------------------------------------------------------------------------------------------------
# Mapping tables to forms


def _form_key(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.casefold())


def match_sheet(name: str, study: Any) -> str | None:
    """The form a sheet is for: its name is the form code or the form label (any case)."""
    key = _form_key(name)
    for code, form in study.forms.items():
        if key == _form_key(code) or key == _form_key(form.label):
            return code
    return None


def match_dataset(table: RawTable, path: Path, study: Any) -> str | None:
    """The form a dataset/CSV is for: its dataset name or file stem, or one unambiguous stem token."""
    for name in (table.name, path.stem):
        code = match_sheet(name, study) if name else None
        if code:
            return code
    # Only the first or last word of the stem counts (``site08_lb`` → LB), so that a word in the
    # middle of a name (``all_rand_normal``) does not claim a form.
    words = [t for t in re.split(r"[^0-9a-z]+", path.stem.casefold()) if t]
    tokens = {words[0], words[-1]} if words else set()
    hits = {code for code in study.forms if code.casefold() in tokens}
    return hits.pop() if len(hits) == 1 else None


def _stamp_findings(read: FileRead, study: Any) -> list[Finding]:
    if read.format not in CALAMINE_FORMATS or not read.tables:
        return []  # not a workbook, or one that could not be read (its own finding says why)
    if read.stamp is None:
        return [Finding(code="IMP-TEMPLATE-STAMP", severity=Severity.WARNING, category=Category.STRUCTURE,
                        message=f"{read.path}: no trialkit version stamp (sheet _trialkit): not a trialkit "
                                "template; use the current upload template", file=read.path)]
    ours = study.version_stamp.split("|")
    theirs = read.stamp.split("|")
    if theirs[0] != ours[0]:
        return [Finding(code="IMP-TEMPLATE-STUDY", severity=Severity.ERROR, category=Category.STRUCTURE,
                        message=f"{read.path}: the template is for study {theirs[0]!r}, not {ours[0]!r}; "
                                "upload this study's template", value=read.stamp, expected=study.version_stamp,
                        file=read.path)]
    # Current = same study and schema hash; the protocol version in the stamp does not matter, so a
    # template issued under an earlier version whose forms did not change stays valid.
    if study.stamp_status(read.stamp) == "outdated":
        return [Finding(code="IMP-TEMPLATE-OUTDATED", severity=Severity.WARNING, category=Category.STRUCTURE,
                        message=f"{read.path}: outdated template ({read.stamp}; current "
                                f"{study.version_stamp}); copy the data into the current template",
                        value=read.stamp, expected=study.version_stamp, file=read.path)]
    return []


def _template_site(read: FileRead, study: Any, site_id: str | None, findings: list[Finding]) -> str | None:
    """The site a blank SITEID is filled in with: the site of a site template of this study, unless
    the upload is made as another site (then a warning, and nothing is filled in)."""
    if not read.stamp_site or read.stamp is None or study.stamp_status(read.stamp) == "other-study":
        return None
    try:
        stamped = study.site(read.stamp_site).id
    except KeyError:
        return None
    if site_id is not None and stamped != site_id:
        findings.append(Finding(
            code="IMP-TEMPLATE-SITE", severity=Severity.WARNING, category=Category.STRUCTURE, file=read.path,
            value=stamped, expected=site_id,
            message=f"{read.path}: the template was made for site {stamped} but is uploaded as site {site_id}, "
                    f"so a blank SITEID is not filled in; check that this is site {site_id}'s upload, and type "
                    f"the site in SITEID or copy the data into site {site_id}'s own template"))
        return None
    return stamped


def _skip_template_block(table: RawTable, form: Any, study: Any, mapping: dict[str, str], info: dict[str, Any],
                         findings: list[Finding]) -> None:
    """Take the template's label and hint rows out of the table, and its title row out of the notes."""
    block = template_block_rows(table, form, study, mapping)
    if block:
        table.values = table.values.drop(index=block)
        info["template_rows"] = block
        info["rows"] = table.rows
    if table.notes and is_template_title(table.notes, form, study):
        table.notes = []
        findings[:] = [f for f in findings if not (f.code == "IMP-HEADER-OFFSET" and f.sheet == table.name)]


def _bad_date_findings(table: RawTable, path: Path, imported: set[str], form: str | None = None) -> list[Finding]:
    """Dates a dataset holds outside 1678-2261 in columns that are not imported (the normaliser
    reports those of imported columns, with the subject)."""
    return [Finding(code="IMP-DATE-RANGE", severity=Severity.ERROR, category=Category.TYPE,
                    message=f"{column} (not imported): {text!r} is outside the dates trialkit can hold "
                            "(1678-01-01 to 2261-12-31); check the year and correct the value in the file",
                    variable=column, value=text, file=str(path), sheet=table.name, row=row, form=form)
            for row, column, text in table.bad_dates if column not in imported]


def import_files(paths: list[str | Path], study: Any, *, site: str | None = None,
                 form: str | None = None, limits: Limits | None = None, mapping: str | None = None,
                 mappings: dict[str, Any] | None = None, file_mappings: dict[str, str] | None = None
                 ) -> ImportResult:
    """Import uploads into forms (see the module docstring); never raises for a bad file.

    ``limits`` bound file sizes, zip inflation, sheet shapes and cell lengths (default
    :meth:`Limits.from_env`, i.e. the ``TRIALKIT_MAX_*`` environment variables; ``docs/limits.md``).
    Site systems' exports (SDTM, REDCap, ODM, or a table a mapping spec recognises) are read through
    a mapping (:mod:`trialkit.importers.exports`): ``mappings`` are the specs available (default: the
    study's), ``mapping`` one chosen for every file (``--mapping``), ``file_mappings`` one per file's
    sha256 (a re-import reads a submission as it was read).
    """
    limits = limits or Limits.from_env()
    result = ImportResult()
    report = result.report
    report.study_id, report.study_version, report.schema_hash = study.id, study.protocol_version, study.schema_hash
    report.site = site
    site_id = study.site(site).id if site is not None else None
    form_code = study.form(form).code if form is not None else None
    paths = [Path(p) for p in paths]
    catalogs = {p.resolve() for p in paths if p.suffix.lower() == ".sas7bcat"}
    parts: dict[str, list[FormData]] = {}
    known = known_headers(study)
    if mappings:  # a workspace's specs name the columns of the exports they read
        known = known | {header_key(c) for spec in mappings.values() for c in spec.source_columns()}
    secrets: dict[str, str] = {}  # identifiers found (→ their masks), never shown in any finding
    reads = []
    for path in paths:
        read = read_file(path, limits=limits, known=known)
        try:
            input_file = InputFile.from_path(path, format=read.format)
        except OSError:
            input_file = InputFile(path=str(path), sha256="", size=0, format=read.format)
        reads.append((path, read, input_file))
    run = _plan(reads, study, site_id, mapping, mappings, file_mappings)
    for path, read, input_file in reads:
        report.inputs.append(input_file)
        findings: list[Finding] = list(read.findings)
        findings.extend(_stamp_findings(read, study))
        facts: dict[str, Any] = {"path": str(path), "format": read.format, "encoding": read.encoding,
                                 "sha256": input_file.sha256, "size": input_file.size, "tables": []}
        facts.update({k: v for k, v in read.extra.items() if isinstance(v, (str, int, list))})
        workbook = read.format in WORKBOOK_FORMATS
        if workbook:
            facts["date_system"] = read.date_system
            facts["stamp"] = read.stamp
            if read.stamp_site:
                facts["stamp_site"] = read.stamp_site
        template_site = _template_site(read, study, site_id, findings)
        data_tables = []
        for position, table in enumerate(read.tables):
            info = {"name": table.name, "kind": table.kind, "hidden": table.hidden,
                    "visibility": table.visibility, "rows": table.rows, "n_columns": len(table.columns),
                    "columns": [{"name": c, "label": lab, "type": t} for c, lab, t in
                                zip(table.columns, table.labels or [None] * len(table.columns),
                                    table.types or [""] * len(table.columns), strict=False)],
                    "form": None}
            facts["tables"].append(info)
            if workbook and table.name.casefold() in KNOWN_SHEETS:
                info["role"] = "template"
                # The template's own sheets have a title above their first table: not a finding.
                findings[:] = [f for f in findings if not (f.code == "IMP-HEADER-OFFSET" and f.sheet == table.name)]
                continue
            if table.hidden:
                findings.append(Finding(code="IMP-SHEET-HIDDEN", severity=Severity.INFO,
                                        category=Category.STRUCTURE, sheet=table.name, file=str(path),
                                        message=f"sheet {table.name!r} is {table.visibility}; it was read like "
                                                "the others"))
            if table.sheet_type != "worksheet":
                info["role"] = table.sheet_type
                continue
            planned = run.get(path, position)
            if planned is not None:
                _read_mapped(planned, info, table, path, read, input_file, study, site_id, findings, secrets,
                             parts, result)
                continue
            code = match_sheet(table.name, study) if workbook else match_dataset(table, path, study)
            data_tables.append((table, code, info))
        if workbook and form_code and len(data_tables) == 1 and data_tables[0][1] is None:
            data_tables[0] = (data_tables[0][0], form_code, data_tables[0][2])
        elif not workbook and form_code:
            data_tables = [(t, form_code, i) for t, _, i in data_tables]
        for table, code, info in data_tables:
            info["form"] = code
            if code is None:
                if table.rows or table.columns:
                    findings.append(_no_form_finding(table, path, study, "sheet" if workbook else "dataset"))
                for row, column, ref, text in table.errors:
                    problem, what, remedy = error_cell(text)
                    findings.append(Finding(
                        code=problem, severity=Severity.ERROR, category=Category.TYPE,
                        message=f"cell {ref} {what}; {remedy}", value=text, file=str(path), sheet=table.name,
                        row=row, variable=column))
                findings.extend(_bad_date_findings(table, path, set()))
                findings.extend(_identifier_findings(table, path, list(table.columns), None, secrets))
                continue
            mapping, _, _ = match_columns(table.columns, study.forms[code])
            info["matched_columns"] = len(mapping)
            if workbook:
                _skip_template_block(table, study.forms[code], study, mapping, info, findings)
            ctx = Context(file=str(path), sha256=input_file.sha256, sheet=table.name,
                          date_system=read.date_system, site=site_id, template_site=template_site)
            form_data = _normalise_or_refuse(table, study, code, ctx, path, findings,
                                             f"sheet {table.name!r} could not be converted", "(dates, numbers) ")
            if form_data is None:
                continue
            findings.extend(ctx.findings)
            for row, column, ref, text in table.errors:
                if column not in mapping:
                    problem, what, _ = error_cell(text)
                    findings.append(Finding(
                        code=problem, severity=Severity.ERROR, category=Category.TYPE,
                        message=f"cell {ref} (column {column!r}, not imported) {what}",
                        value=text, file=str(path), sheet=table.name, row=row, form=code))
            findings.extend(_bad_date_findings(table, path, set(mapping), code))
            unknown = [column for column in table.columns if column not in mapping]
            findings.extend(_identifier_findings(table, path, unknown, code, secrets))
            findings.extend(_birth_date_columns(table, path, unknown, study.forms[code], form_data, secrets))
            secrets.update(ctx.secrets)
            parts.setdefault(code, []).append(form_data)
        if workbook and read.tables and not any(c for _, c, _ in data_tables) and read.stamp is not None:
            findings.append(Finding(code="IMP-NO-SHEETS", severity=Severity.ERROR, category=Category.FILE,
                                    file=str(path), message=f"{path}: a template with no recognisable form "
                                    "sheet; keep the sheet names of the template"))
        if path.resolve() in catalogs and read.format == "sas7bcat":
            facts["role"] = "format catalogue"
        for finding in findings:
            if finding.site is None and site_id is not None:
                finding.site = site_id
        facts["findings"] = len(findings)
        result.files.append(facts)
        report.extend(findings)
    for code, pieces in parts.items():
        result.forms[code] = FormData.concat(pieces)
    if result.sources:  # findings on mapped cells point at the site's own file, row and column
        relocate(report.findings, result.sources)
    if secrets:  # an identifier quoted by any other finding is shown masked there too
        result.secrets.update(secrets)
        report.findings[:] = mask_identifiers(report.findings, [], secrets=secrets)
    return result


def _plan(reads: list[tuple[Path, FileRead, InputFile]], study: Any, site: str | None, mapping: str | None,
          mappings: dict[str, Any] | None, file_mappings: dict[str, str] | None) -> RunPlan:
    """Which tables are read through a mapping (:func:`~trialkit.importers.exports.plan_run`)."""
    explicit: dict[str, str] = {}
    for path, _, input_file in reads:
        chosen = mapping or (file_mappings or {}).get(input_file.sha256)
        if chosen is not None:
            explicit[str(path)] = chosen

    def named(table: RawTable, path: Path, read: FileRead) -> bool:
        workbook = read.format in WORKBOOK_FORMATS
        return (match_sheet(table.name, study) if workbook else match_dataset(table, path, study)) is not None

    return plan_run([(p, r) for p, r, _ in reads], study, site=site, mappings=mappings, explicit=explicit,
                    matches_form=named)


def _read_mapped(planned: TablePlan, info: dict[str, Any], table: RawTable, path: Path, read: FileRead,
                 input_file: InputFile, study: Any, site_id: str | None, findings: list[Finding],
                 secrets: dict[str, str], parts: dict[str, list[FormData]], result: ImportResult) -> None:
    """A table read through a mapping: its forms normalised, its unread columns looked at for
    identifiers, its facts for ``inspect`` (the columns it was read into, by name)."""
    info.update(planned.info())
    source = planned.table or table
    if source is not table:  # SDTM: the parent with its SUPP-- columns
        known = {c["name"] for c in info["columns"]}
        info["columns"].extend({"name": c, "label": lab, "type": "text"}
                               for c, lab in zip(source.columns, source.labels or [None] * len(source.columns),
                                                 strict=False) if c not in known)
    for column in info["columns"]:
        if column["name"] in planned.read_into:
            column["read_into"] = planned.read_into[column["name"]]
    if planned.chosen is not None and planned.mapping is not None:
        forms = ", ".join(a.form for a in planned.outputs if a.table is not None) or "no form"
        spec = next((a for a in planned.outputs), None)
        findings.append(Finding(
            code="MAP-SPEC", severity=Severity.INFO, category=Category.STRUCTURE, file=str(path), sheet=table.name,
            value=planned.mapping, form=spec.form if spec else None,
            message=f"{Path(path).name}: {table.name!r} read as form {forms} through mapping {planned.mapping} "
                    f"({planned.chosen})",
            evidence={"mapping": planned.mapping, "chosen": planned.chosen, "file_sha256": input_file.sha256}))
    findings.extend(planned.findings)
    unread = [c for c in planned.unread if c in source.values.columns]
    findings.extend(_identifier_findings(source, path, unread, None, secrets))
    findings.extend(_bad_date_findings(source, path, set(source.columns) - set(unread)))
    for row, column, ref, text in source.errors:
        if column in unread:
            problem, what, _ = error_cell(text)
            findings.append(Finding(
                code=problem, severity=Severity.ERROR, category=Category.TYPE,
                message=f"cell {ref} (column {column!r}, not imported) {what}",
                value=text, file=str(path), sheet=source.name, row=row))
    for applied in planned.outputs:
        if applied.table is None:
            continue
        code = applied.form
        ctx = Context(file=str(path), sha256=input_file.sha256, sheet=applied.table.name,
                      date_system=read.date_system, site=site_id)
        form_data = _normalise_or_refuse(applied.table, study, code, ctx, path, findings,
                                         f"{table.name!r} could not be converted through mapping {applied.mapping}",
                                         "", sheet=table.name)
        if form_data is None:
            continue
        finish_mapped(form_data, applied, ctx.findings, study)
        findings.extend(ctx.findings)
        findings.extend(_birth_date_columns(source, path, unread, study.forms[code], form_data, secrets))
        secrets.update(ctx.secrets)
        parts.setdefault(code, []).append(form_data)
        if applied.sources is not None:
            result.sources.append(applied.sources)


def _identifier_findings(table: RawTable, path: Path, columns: list[str], form: str | None,
                         secrets: dict[str, str]) -> list[Finding]:
    """Privacy errors for the columns of a table that are not imported (every value looked at), its
    note rows above the header and its cell comments (:mod:`trialkit.privacy`)."""
    out: list[Finding] = []
    for column in columns:
        text = to_text(table.values[column])
        codes, uniques = pd.factorize(text)
        hits = scan_values(pd.Series(uniques, dtype="object"), header=column,
                           blank_header=column in table.blank_columns)
        if hits is None:
            continue
        first = int(np.argmax(codes == hits.first))
        cells = int(np.isin(codes, hits.positions).sum())
        out.append(column_finding(hits, column=column, row=int(table.values.index[first]), cells=cells,
                                  file=str(path), sheet=table.name, form=form, in_form=False))
        secrets.update(dict(hits.secrets))
    for row, cells in table.notes:
        text = " ".join(cells)
        found = value_hits(text, labelled_names=True)
        if found:
            out.append(text_finding(found, text, code=VALUE, where=f"the note in row {row} of {table.name!r}, above "
                                    "the header,", file=str(path), sheet=table.name, row=row,
                                    remedy="Delete the note"))
            secrets.update({identifier: mask for _, identifier, mask in found})
    for ref, text in table.comments:
        found = value_hits(text, loose=True)
        if found:
            out.append(text_finding(found, text, code=COMMENT, where=f"the comment on cell {ref} of sheet "
                                    f"{table.name!r}", file=str(path), sheet=table.name,
                                    row=_ref_row(ref), remedy="Delete the comment"))
            secrets.update({identifier: mask for _, identifier, mask in found})
    return out


def _ref_row(ref: str) -> int | None:
    digits = re.sub(r"\D", "", ref)
    return int(digits) if digits else None


def _birth_date_columns(table: RawTable, path: Path, columns: list[str], form: Any, form_data: FormData,
                        secrets: dict[str, str]) -> list[Finding]:
    """Full dates of birth in a table of a form that has a birth variable (DM in the bundled study):
    a column outside the CRF whose dates lie at least a year before each record's own dates."""
    if not columns or not any(v.birth for v in form.variables) or not len(form_data.data):
        return []
    own = form_data.data.select_dtypes(include=["datetime64[ns]", "datetime64[us]"])
    if own.empty:
        return []
    earliest = own.min(axis=1).set_axis(form_data.lineage["ROW"].to_numpy())
    out: list[Finding] = []
    for column in columns:
        dates = _as_dates(table.values[column])
        present = dates.dropna()
        if present.empty:
            continue
        reference = earliest.reindex(present.index)
        before = (present <= reference - pd.Timedelta(days=365)) & (present.dt.year >= 1900)
        if not before.any() or before.sum() < 0.8 * len(present) or reference.isna().all():
            continue
        text = to_text(table.values[column])
        found = [(str(text.loc[r]), mask_date(str(text.loc[r]))) for r in present.index[before.to_numpy()]]
        hits = ValueHits(kinds=["full date of birth"], secrets=found, count=len(found), first=0,
                         example=found[0][1])
        first_row = int(present.index[before.to_numpy()][0])
        out.append(column_finding(hits, column=column, row=first_row, cells=len(found), file=str(path),
                                  sheet=table.name, form=form.code, in_form=False))
        secrets.update(dict(found))
    return out


def _as_dates(values: pd.Series) -> pd.Series:
    """Cells that are full dates (date cells, ISO or day-first text) as timestamps, else NaT."""
    def one(value: Any) -> Any:
        if isinstance(value, (dt.date, dt.datetime, pd.Timestamp)):
            return pd.Timestamp(value) if 1678 <= value.year <= 2261 else pd.NaT
        if isinstance(value, str) and re.fullmatch(r"\s*(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{4})\s*", value):
            return pd.to_datetime(value.strip(), errors="coerce", dayfirst="-" not in value[:5])
        return pd.NaT
    return pd.Series([one(v) for v in values.to_numpy()], index=values.index, dtype="datetime64[ns]")


def _no_form_finding(table: RawTable, path: Path, study: Any, kind: str) -> Finding:
    """``IMP-NO-FORM`` for a sheet or dataset that is no form of the study; one that looks like a CDISC
    ADaM analysis dataset says so (``evidence["adam"]``: its ADaM variables) instead of asking for a
    form name it could never take."""
    adam = adam_evidence(table)
    if adam:
        message = (f"{kind} {table.name!r} looks like a CDISC ADaM analysis dataset ({', '.join(adam[:4])}), "
                   f"not case report form data: analysis datasets are what trialkit pool derives from the sites' "
                   f"forms. Send the site's CRF data instead (the upload workbook, or its system's export of the "
                   f"forms {', '.join(list(study.forms)[:3])} …)")
        return Finding(code="IMP-NO-FORM", severity=Severity.WARNING, category=Category.STRUCTURE, file=str(path),
                       sheet=table.name, message=message, evidence={"adam": adam})
    return Finding(code="IMP-NO-FORM", severity=Severity.WARNING, category=Category.STRUCTURE, file=str(path),
                   sheet=table.name, message=f"{kind} {table.name!r} matches no form of {study.id} (forms: "
                   f"{', '.join(study.forms)}); name it by the form code or pass --form")


def _normalise_or_refuse(table: Any, study: Any, code: str, ctx: Any, path: Path, findings: list[Finding],
                         what: str, values_hint: str, *, sheet: str | None = None) -> Any:
    """The normalised form of ``table``, or None with an ``IMP-SHEET-UNREADABLE`` error in
    ``findings``: a normaliser bug must not lose the run, only the table is refused."""
    try:
        return normalise_table(table, study.forms[code], study, ctx)
    except Exception as exc:
        findings.append(Finding(
            code="IMP-SHEET-UNREADABLE", severity=Severity.ERROR, category=Category.FILE,
            file=str(path), sheet=sheet if sheet is not None else table.name, form=code,
            message=f"{path}: {what} ({type(exc).__name__}: {str(exc)[:200]}); check its values "
                    f"{values_hint}and report this to the trialkit team"))
        return None
