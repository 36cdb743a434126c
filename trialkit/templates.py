"""Site upload workbooks: one sheet per form, generated from the study definition.

:func:`write_template` writes the workbook a site fills in and uploads:

- ``Instructions`` — how to fill it in, the missing-value codes, the date and number conventions
  (the site's own with ``site=``), the contact line, the version stamp and a table of the forms;
- one sheet per form (named by the form code, in study order) whose row 1 holds the site variables
  in CRF order — bold, coloured, frozen and protected, each with a note giving the label, type,
  unit and rules — above an unlocked entry area with data validation: a dropdown for every
  codelist (fed by a workbook name ``CL_<codelist>`` over the hidden sheet ``_codelists``), date,
  whole-number and decimal validation with the declared range, text format for ids, codes and
  partial dates so leading zeros survive;
- ``_codelists`` (hidden) — one column per codelist: its name in row 1, its codes below;
- ``_trialkit`` (hidden) — ``key``/``value`` rows; ``B2`` holds :attr:`Study.version_stamp`
  (also reachable as the workbook name ``TRIALKIT_VERSION``) so an importer can tell an outdated
  template from a current one.

Validation in Excel only guards typing: every validation here is a *warning*, so a site can still
type a missing-value code (``ND``, ``NK``, ``NA``) where a number, date or code is expected, and
the importer checks everything again.

The output is deterministic: fixed document dates and zip timestamps, so regenerating an unchanged
study gives the same bytes with the same openpyxl. :func:`template_contents` reads a workbook back
into plain data for comparing a committed template with a fresh one.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill, Protection
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.utils.datetime import to_excel
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.writer.excel import ExcelWriter

from trialkit import __version__
from trialkit.study import Form, Site, Study, Variable

INSTRUCTIONS_SHEET = "Instructions"
CODELIST_SHEET = "_codelists"
STAMP_SHEET = "_trialkit"
STAMP_CELL = "B2"
STAMP_NAME = "TRIALKIT_VERSION"
CODELIST_NAME_PREFIX = "CL_"

# Rows of the empty entry area under the header. Forms with several records per subject and visit
# (or per day) get the long area; a study can override per form in study.toml
# ([templates] entry_rows = { FORM = N }).
ENTRY_ROWS = 500
ENTRY_ROWS_LONG = 3000

# Date validation bounds: wide enough for any date a study collects as a full date (a birth date or
# a diagnosis date included), narrow enough to catch a typed year such as 0202.
DATE_MIN = dt.date(1900, 1, 1)
DATE_MAX = dt.date(2099, 12, 31)
# Open-ended numeric validation (a number is all that is asked).
NUMBER_LIMIT = 1_000_000_000

# Fixed document dates so that a regenerated workbook does not drift.
FIXED_TIMESTAMP = dt.datetime(2000, 1, 1, 0, 0, 0)

# Excel's limits on validation messages; longer texts make Excel "repair" the file.
PROMPT_TITLE_MAX = 32
PROMPT_MAX = 255
ERROR_TITLE_MAX = 32
ERROR_MAX = 225

TEXT_FORMAT = "@"
INSTRUCTION_CHARS_PER_LINE = 95  # column B is 90 characters wide
DATE_FORMAT = "yyyy-mm-dd"
TEXT_TYPES = ("char", "pdate", "yn")

HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="FFDDEBF7")  # light blue: optional
REQUIRED_FILL = PatternFill("solid", fgColor="FFFCE4D6")  # light orange: required (or conditional)
HEADER_ALIGNMENT = Alignment(horizontal="center", vertical="center")
LOCKED = Protection(locked=True)
UNLOCKED = Protection(locked=False)
TITLE_FONT = Font(bold=True, size=14)
SECTION_FONT = Font(bold=True, size=12)
WRAP = Alignment(wrap_text=True, vertical="top")


def codelist_defined_name(codelist: str) -> str:
    """The workbook name of a codelist's range in ``_codelists``, e.g. ``CL_SEX``."""
    return f"{CODELIST_NAME_PREFIX}{codelist}"


def entry_rows(study: Study, form: Form) -> int:
    """How many empty rows a form's sheet offers (and validates) under its header."""
    override = study.param("templates", "entry_rows") or {}
    if form.code in override:
        return int(override[form.code])
    date_keys = [k for k in form.keys if form.variable(k).type == "date"]
    if len(form.keys) >= 3 or date_keys:
        return ENTRY_ROWS_LONG
    return ENTRY_ROWS


def write_template(study: Study, path: str | Path, site: str | None = None) -> Path:
    """Write the site upload workbook of ``study`` to ``path`` and return the path.

    ``site`` (a site id such as ``"04"``) pre-fills ``SITEID`` in every sheet's entry area and
    states that site's date, decimal and unit conventions; without it the workbook is generic.
    Raises ``KeyError`` (naming the known sites) for an unknown site.

    Example::

        >>> from trialkit.study import load_study
        >>> write_template(load_study(), "t.xlsx", site="04")  # doctest: +SKIP
        PosixPath('t.xlsx')
    """
    chosen = study.site(site) if site is not None else None
    wb = build_template(study, chosen)
    out = Path(path)
    save_deterministic(wb, out)
    return out


def build_template(study: Study, site: Site | None = None) -> Workbook:
    """The upload workbook as an openpyxl ``Workbook`` (not yet saved)."""
    wb = Workbook()
    instructions = wb.active
    instructions.title = INSTRUCTIONS_SHEET
    codelist_ranges = _write_codelists(wb, study)
    for form in study.forms.values():
        _write_form_sheet(wb, study, form, codelist_ranges, site)
    _write_stamp(wb, study, site)
    _write_instructions(instructions, study, site)
    # The hidden sheets go last, after the forms.
    codelist_sheet = wb[CODELIST_SHEET]
    wb.move_sheet(codelist_sheet, offset=len(wb.sheetnames) - 2 - wb.index(codelist_sheet))
    for name, ref in codelist_ranges.items():
        wb.defined_names[codelist_defined_name(name)] = DefinedName(
            codelist_defined_name(name), attr_text=ref
        )
    wb.defined_names[STAMP_NAME] = DefinedName(
        STAMP_NAME, attr_text=f"{quote_sheetname(STAMP_SHEET)}!$B$2"
    )
    wb.active = 0
    props = wb.properties
    props.title = f"{study.id} upload template" + (f" — site {site.id}" if site else "")
    props.subject = study.version_stamp
    props.creator = f"trialkit {__version__}"
    props.lastModifiedBy = props.creator
    props.description = "Generated by `trialkit template`; do not edit the structure."
    props.created = FIXED_TIMESTAMP
    props.modified = FIXED_TIMESTAMP
    return wb


def save_deterministic(wb: Workbook, path: Path) -> None:
    """Save ``wb`` to ``path`` with fixed document dates and zip timestamps.

    ``openpyxl.Workbook.save`` stamps the current time into the properties and the zip entries;
    writing through ``ExcelWriter`` into memory and repacking keeps the bytes stable.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        ExcelWriter(wb, archive).save()
    buffer.seek(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_TIMESTAMP.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            target.writestr(fixed, source.read(info.filename))


# ------------------------------------------------------------------------------------------------
# Sheets


def _write_codelists(wb: Workbook, study: Study) -> dict[str, str]:
    """The hidden codelist sheet; returns codelist name -> absolute range of its codes."""
    ws = wb.create_sheet(CODELIST_SHEET)
    ws.sheet_state = "hidden"
    ranges: dict[str, str] = {}
    for col, (name, codelist) in enumerate(study.codelists.items(), start=1):
        letter = get_column_letter(col)
        ws.cell(row=1, column=col, value=name).font = HEADER_FONT
        codes = codelist.codes
        for row, code in enumerate(codes, start=2):
            ws.cell(row=row, column=col, value=code).number_format = TEXT_FORMAT
        last = max(len(codes), 1) + 1
        ranges[name] = f"{quote_sheetname(CODELIST_SHEET)}!${letter}$2:${letter}${last}"
        ws.column_dimensions[letter].width = min(40, max(10, *(len(c) + 2 for c in codes or [""])))
    return ranges


def _write_form_sheet(
    wb: Workbook, study: Study, form: Form, codelist_ranges: dict[str, str], site: Site | None
) -> Worksheet:
    ws = wb.create_sheet(form.code)
    rows = entry_rows(study, form)
    last_row = rows + 1
    for col, var in enumerate(form.site_variables, start=1):
        letter = get_column_letter(col)
        header = ws.cell(row=1, column=col, value=var.name)
        header.font = HEADER_FONT
        header.fill = REQUIRED_FILL if (var.required or var.required_if) else HEADER_FILL
        header.alignment = HEADER_ALIGNMENT
        header.protection = LOCKED
        header.number_format = TEXT_FORMAT
        note = _header_note(study, var)
        comment = Comment(note, f"trialkit {__version__}")
        comment.width = 320
        comment.height = min(400, 40 + 15 * (note.count("\n") + 1 + len(note) // 45))
        header.comment = comment

        # The entry area: the whole column below the header is unlocked and formatted through
        # the column style, so it holds also beyond the validated rows.
        dim = ws.column_dimensions[letter]
        dim.width = _column_width(study, var)
        dim.protection = UNLOCKED
        number_format = _number_format(var)
        if number_format:
            dim.number_format = number_format

        validation = _validation(study, var, codelist_ranges)
        if validation is not None:
            ws.add_data_validation(validation)
            validation.add(f"{letter}2:{letter}{last_row}")

        if site is not None and var.name == "SITEID":
            for row in range(2, last_row + 1):
                cell = ws.cell(row=row, column=col, value=site.id)
                cell.number_format = TEXT_FORMAT
                cell.protection = UNLOCKED

    ws.freeze_panes = "A2"
    ws.row_dimensions[1].height = 20
    protection = ws.protection
    protection.sheet = True
    # Sites may resize columns, insert/delete/sort rows (all data cells are unlocked), but not
    # add, delete or rename columns: the header is locked.
    protection.formatColumns = False
    protection.formatRows = False
    protection.insertRows = False
    protection.deleteRows = False
    protection.sort = False
    ws.page_setup.orientation = "landscape"
    ws.print_options.gridLines = True
    return ws


def _write_stamp(wb: Workbook, study: Study, site: Site | None) -> Worksheet:
    ws = wb.create_sheet(STAMP_SHEET)
    ws.sheet_state = "hidden"
    rows = [
        ("key", "value"),
        ("version", study.version_stamp),
        ("study_id", study.id),
        ("protocol_version", study.protocol_version),
        ("schema_hash", study.schema_hash),
        ("site", site.id if site else ""),
        ("generated_by", f"trialkit {__version__}"),
    ]
    for row, (key, value) in enumerate(rows, start=1):
        ws.cell(row=row, column=1, value=key)
        cell = ws.cell(row=row, column=2, value=value)
        cell.number_format = TEXT_FORMAT
    ws["A1"].font = HEADER_FONT
    ws["B1"].font = HEADER_FONT
    ws.column_dimensions["A"].width = 18
    ws.column_dimensions["B"].width = 40
    return ws


def instruction_lines(study: Study, site: Site | None = None) -> list[tuple[str, str]]:
    """The Instructions sheet as ``(label, text)`` rows; a label starting with ``#`` is a heading."""
    codes = study.missing_codes
    code_list = ", ".join(codes) or "none"
    unit_vars = list(dict.fromkeys(v.unit_var for f in study.forms.values() for v in f.variables if v.unit_var))
    example = f" (e.g. {', '.join(unit_vars[:3])})" if unit_vars else ""
    lines: list[tuple[str, str]] = [
        ("#title", f"{study.id} — site upload workbook"),
        ("Study", f"{study.id}: {study.title}"),
        ("Protocol version", study.protocol_version),
        ("Template version", study.version_stamp),
        ("Site", f"{site.id} — {site.city} ({site.country})" if site else "all sites (generic workbook)"),
        ("", ""),
        ("#How to fill in", ""),
        ("Rows", "Enter one row per record, starting in row 2 of the form's sheet; each sheet's "
                 "title row says what one record is (see the table of forms below)."),
        ("Sheets and headers", "Do not rename, move or delete sheets, and do not change the header "
                               "cells in row 1; the header row is protected."),
        ("Columns", "Do not add, remove or reorder columns. Leave a sheet empty if you have "
                    "nothing to report on that form."),
        ("Header notes", "Point at a header cell to read the variable's label, type, unit and rules. "
                         "Orange headers are required (always, or under a condition stated in the "
                         "note); blue headers are optional."),
        ("Lists", "Columns with a list offer a dropdown: choose the code from the list."),
        ("Checks", "Excel warns when a value is outside the list or range; choose Yes/OK only to "
                   "keep a missing-value code. Every value is checked again on upload."),
        ("", ""),
        ("#Missing values", ""),
        *[(code, f"{meaning} — type {code} instead of a value" ) for code, meaning in codes.items()],
        ("Use", f"Type {code_list} in any field where the value is missing, with the reason; "
                "never leave a required field blank and never type 0 or a dash for a missing value."),
        ("", ""),
        ("#Dates", ""),
        ("Full dates", "Type dates as real Excel dates (they are shown as YYYY-MM-DD) or as text "
                       "in ISO form YYYY-MM-DD, e.g. 2024-03-05."),
    ]
    if site is not None:
        lines.append(
            ("Your site", f"Site {site.id} types dates as {site.date_format_hint} when typed as "
                          f"text, e.g. {_example_date(site)}; ISO YYYY-MM-DD is always accepted.")
        )
    lines += [
        ("Partial dates", "Columns marked 'pdate' are text: type YYYY, YYYY-MM or YYYY-MM-DD "
                          "(e.g. 2019, 2019-04, 2019-04-17) as the note allows; never invent a "
                          "missing day or month."),
        ("", ""),
        ("#Numbers and units", ""),
    ]
    if site is not None:
        mark = "comma (12,5)" if site.decimal_mark == "," else "point (12.5)"
        lines.append(("Decimal mark", f"Site {site.id} writes decimals with a {mark}; numbers "
                                      "typed as numbers in Excel are always fine."))
        lines.append(("Units", f"Units site {site.id} may use: {' or '.join(site.units)}. Say "
                               f"which unit you used in the unit column next to the value{example}."))
    else:
        lines.append(("Decimal mark", "Type numbers as numbers; your Excel's decimal mark "
                                      "(comma or point) is fine. Text numbers are read with "
                                      "your site's decimal mark."))
        lines.append(("Units", f"Say which unit you used in the unit column next to the value{example}. "
                               "Units each site may use: "
                               + "; ".join(f"{s.id} {'/'.join(s.units)}" for s in study.sites.values())
                               + "."))
    if site is None:
        lines.append(("", ""))
        lines.append(("#Site conventions (dates and numbers typed as text)", ""))
        for s in study.sites.values():
            mark = "comma" if s.decimal_mark == "," else "point"
            lines.append((f"Site {s.id}", f"{s.city} ({s.country}): dates {s.date_format_hint}, "
                                          f"decimal {mark}, units {' or '.join(s.units)}"))
    lines += [
        ("", ""),
        ("#Contact", ""),
        ("Contact", study.contact),
        ("Version stamp", f"{study.version_stamp} (do not edit; it tells the importer which "
                          "version of the forms this workbook follows)"),
        ("", ""),
        ("#Forms", ""),
    ]
    return lines


def _write_instructions(ws: Worksheet, study: Study, site: Site | None) -> None:
    row = 0
    for label, text in instruction_lines(study, site):
        row += 1
        if label == "#title":
            ws.cell(row=row, column=1, value=text).font = TITLE_FONT
            continue
        if label.startswith("#"):
            ws.cell(row=row, column=1, value=label[1:]).font = SECTION_FONT
            continue
        if not label and not text:
            continue
        ws.cell(row=row, column=1, value=label).font = HEADER_FONT
        ws.cell(row=row, column=1).alignment = WRAP
        ws.cell(row=row, column=2, value=text).alignment = WRAP
        # Readers do not all grow rows for wrapped text: give each row its height.
        lines = max(1, -(-len(text) // INSTRUCTION_CHARS_PER_LINE))
        ws.row_dimensions[row].height = 15 * lines
    # The forms table.
    row += 1
    for col, title in enumerate(("Sheet (form)", "Label", "One record is", "Columns"), start=1):
        cell = ws.cell(row=row, column=col, value=title)
        cell.font = HEADER_FONT
        cell.fill = HEADER_FILL
    for form in study.forms.values():
        row += 1
        ws.cell(row=row, column=1, value=form.code)
        ws.cell(row=row, column=2, value=form.label).alignment = WRAP
        ws.cell(row=row, column=3, value=form.structure).alignment = WRAP
        ws.cell(row=row, column=4, value=len(form.site_variables))
        if len(form.structure) > 50:
            ws.row_dimensions[row].height = 30
    ws.column_dimensions["A"].width = 22
    ws.column_dimensions["B"].width = 90
    ws.column_dimensions["C"].width = 50
    ws.column_dimensions["D"].width = 10
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True


# ------------------------------------------------------------------------------------------------
# Columns


def _header_note(study: Study, var: Variable) -> str:
    type_text = {
        "char": "text",
        "int": "whole number",
        "num": "decimal number",
        "date": "date (YYYY-MM-DD)",
        "pdate": "partial date (" + ", ".join(var.pdate_formats or ()) + ")",
        "yn": "Y / N",
    }[var.type]
    lines = [f"{var.name}: {var.label}", f"Type: {type_text}"]
    if var.unit:
        lines.append(f"Unit: {var.unit}" + (f" (or as stated in {var.unit_var})" if var.unit_var else ""))
    if var.rule_text:
        lines.append(f"Rules: {var.rule_text}")
    if var.codelist and var.codelist in study.codelists:
        values = study.codelists[var.codelist].values
        if len(values) <= 12:
            lines.append("Codes: " + "; ".join(f"{c} = {d}" if c != d else c for c, d in values))
        else:
            lines.append(f"Codes: choose from the list ({len(values)} codes)")
    if var.description:
        lines.append(var.description)
    lines.append("Missing: " + ", ".join(study.missing_codes))
    return "\n".join(lines)


def _column_width(study: Study, var: Variable) -> float:
    widest = len(var.name) + 4
    if var.type == "date":
        widest = max(widest, 12)
    elif var.type == "pdate":
        widest = max(widest, 12)
    elif var.codelist and var.codelist in study.codelists:
        widest = max([widest, *(len(c) + 4 for c in study.codelists[var.codelist].codes)])
    elif var.type == "char":
        widest = max(widest, 16)
    return float(min(40, max(10, widest)))


def _number_format(var: Variable) -> str | None:
    if var.type in TEXT_TYPES:
        return TEXT_FORMAT
    if var.type == "date":
        return DATE_FORMAT
    return None


def _validation(study: Study, var: Variable, codelist_ranges: dict[str, str]) -> DataValidation | None:
    missing = "/".join(study.missing_codes) or "a missing-value code"
    if var.codelist and var.codelist in codelist_ranges:
        dv = DataValidation(type="list", formula1=codelist_defined_name(var.codelist), allow_blank=True)
        prompt = f"Choose a code from the list. If missing, type {missing}."
        error = f"Not a code of the list {var.codelist}. Keep it only for {missing}."
    elif var.type == "date":
        dv = DataValidation(
            type="date",
            operator="between",
            formula1=str(int(to_excel(DATE_MIN))),
            formula2=str(int(to_excel(DATE_MAX))),
            allow_blank=True,
        )
        prompt = f"A date, YYYY-MM-DD ({DATE_MIN.year}-{DATE_MAX.year}). If missing, type {missing}."
        error = f"Not a date. Keep it only for {missing}."
    elif var.type in ("int", "num"):
        kind = "whole" if var.type == "int" else "decimal"
        noun = "A whole number" if var.type == "int" else "A number"
        lo, hi = var.min, var.max
        if lo is not None and hi is not None:
            dv = DataValidation(type=kind, operator="between", formula1=_num_text(lo),
                                formula2=_num_text(hi), allow_blank=True)
            bounds = f" from {_num_text(lo)} to {_num_text(hi)}"
        elif lo is not None:
            dv = DataValidation(type=kind, operator="greaterThanOrEqual", formula1=_num_text(lo),
                                allow_blank=True)
            bounds = f" of at least {_num_text(lo)}"
        elif hi is not None:
            dv = DataValidation(type=kind, operator="lessThanOrEqual", formula1=_num_text(hi),
                                allow_blank=True)
            bounds = f" of at most {_num_text(hi)}"
        else:
            dv = DataValidation(type=kind, operator="between", formula1=_num_text(-NUMBER_LIMIT),
                                formula2=_num_text(NUMBER_LIMIT), allow_blank=True)
            bounds = ""
        unit = f" {var.unit}" if var.unit else ""
        decimals = f", at most {var.decimals} decimal(s)" if var.decimals is not None else ""
        prompt = f"{noun}{bounds}{unit}{decimals}. If missing, type {missing}."
        error = f"{noun}{bounds}{unit} is expected. Keep it only for {missing}."
    elif var.type == "pdate":
        formats = ", ".join(var.pdate_formats or ())
        dv = DataValidation(type="textLength", operator="between", formula1="4", formula2="10",
                            allow_blank=True)
        prompt = f"A partial date as text: {formats}. If missing, type {missing}."
        error = f"Expected {formats}. Keep it only for {missing}."
    else:
        return None
    dv.showErrorMessage = True
    dv.errorStyle = "warning"
    dv.showInputMessage = True
    dv.promptTitle = _clip(f"{var.name}: {var.label}", PROMPT_TITLE_MAX)
    dv.prompt = _clip(prompt, PROMPT_MAX)
    dv.errorTitle = _clip(f"{var.name}: check the value", ERROR_TITLE_MAX)
    dv.error = _clip(error, ERROR_MAX)
    return dv


def _num_text(value: float | int) -> str:
    """A bound as formula text, without exponent notation (``1e9`` would confuse some readers)."""
    text = format(Decimal(str(value)).normalize(), "f")
    return text


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _example_date(site: Site) -> str:
    parts = {"DD": "05", "MM": "03", "YYYY": "2024"}
    order = ["DD", "MM", "YYYY"] if site.date_order == "DMY" else (
        ["MM", "DD", "YYYY"] if site.date_order == "MDY" else ["YYYY", "MM", "DD"]
    )
    return site.date_sep.join(parts[p] for p in order)


# ------------------------------------------------------------------------------------------------
# Reading back


def template_contents(path: str | Path) -> dict[str, Any]:
    """A workbook's template-relevant contents as plain data, for comparing two templates.

    Holds the sheet names and states, every sheet's header row, header notes, data validations,
    frozen pane, protection flag, column formats and locks, all values of ``Instructions``,
    ``_codelists`` and ``_trialkit``, the workbook's defined names and document properties —
    everything a site or the importer sees, but not the zip bytes.
    """
    wb = load_workbook(path)
    contents: dict[str, Any] = {
        "sheets": [(ws.title, ws.sheet_state) for ws in wb.worksheets],
        "defined_names": {name: dn.attr_text for name, dn in sorted(wb.defined_names.items())},
        "properties": {
            "title": wb.properties.title,
            "subject": wb.properties.subject,
            "creator": wb.properties.creator,
        },
        "values": {},
        "forms": {},
    }
    for ws in wb.worksheets:
        if ws.title in (INSTRUCTIONS_SHEET, CODELIST_SHEET, STAMP_SHEET):
            contents["values"][ws.title] = [
                list(row) for row in ws.iter_rows(values_only=True) if any(v is not None for v in row)
            ]
            continue
        header = [c.value for c in ws[1] if c.value is not None]
        columns = {}
        for col, name in enumerate(header, start=1):
            letter = get_column_letter(col)
            dim = ws.column_dimensions[letter]
            cell = ws.cell(row=1, column=col)
            columns[name] = {
                "note": cell.comment.text if cell.comment else None,
                "header_locked": cell.protection.locked,
                "column_locked": dim.protection.locked if dim.protection else None,
                "column_format": dim.number_format,
                "width": dim.width,
            }
        validations = sorted(
            (
                str(dv.sqref),
                dv.type,
                dv.operator,
                dv.formula1,
                dv.formula2,
                dv.errorStyle,
                bool(dv.showErrorMessage),
                bool(dv.allow_blank),
                dv.promptTitle,
                dv.prompt,
            )
            for dv in ws.data_validations.dataValidation
        )
        prefilled = sorted(
            {(c.column, c.value) for row in ws.iter_rows(min_row=2) for c in row if c.value is not None}
        )
        contents["forms"][ws.title] = {
            "header": header,
            "columns": columns,
            "validations": validations,
            "freeze_panes": ws.freeze_panes,
            "protected": bool(ws.protection.sheet),
            "max_row": ws.max_row,
            "prefilled": prefilled,
        }
    wb.close()
    return contents
