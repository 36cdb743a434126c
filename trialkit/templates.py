"""Site upload workbooks: one sheet per form, generated from the study definition, in the site's language.

:func:`write_template` writes the workbook a site fills in, prints and uploads:

- ``Instructions`` — how to fill it in, the missing-value codes, the date and number conventions
  (the site's own with ``site=``), the contact line, the version stamp and a table of the forms;
- one sheet per form (named by the form code, in study order) with a header block of four rows:

  1. the **title**: form code, label and what one record is (``DM — Demographics: one row per subject``);
  2. the **variable codes** in CRF order — the machine header the importer keys on — bold, coloured
     (orange required, blue optional), each with a note giving the label, type, unit, rules and codes;
  3. the **labels** in the site's language;
  4. the **hints**: required or conditional, the type with range and unit, the allowed codes;

  frozen below the block and protected, above an unlocked entry area with data validation: a
  dropdown for every codelist (fed by a workbook name ``CL_<codelist>`` over the hidden sheet
  ``_codelists``), date, whole-number and decimal validation with the declared range, text format
  for ids, codes and partial dates so leading zeros survive. Every sheet prints landscape, one page
  wide, with the header block repeated, over a print area of the header block and
  :data:`PRINT_ENTRY_ROWS` entry rows (validation reaches further);
- ``_codelists`` (hidden) — one column per codelist: its name in row 1, its codes below;
- ``_trialkit`` (hidden) — ``key``/``value`` rows; ``B2`` holds :attr:`Study.version_stamp`
  (also reachable as the workbook name ``TRIALKIT_VERSION``) so an importer can tell an outdated
  template from a current one; the ``site`` row holds the site of a site template, whose blank
  SITEID the importer fills in (rule ``siteid-from-template``); ``layout`` and ``language`` say
  how the sheets were laid out.

The site's language (``[[sites]] language``) chooses the words: the engine's from
:mod:`trialkit.i18n`, the study's (labels, form names) from its ``translations/`` folder, English
where a string has no translation. Codes, variable names and values stay as they are. The layout of
version 1.0 (codes in row 1, SITEID pre-filled down the entry area) is still read by the importer.

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
from trialkit.i18n import text as t
from trialkit.sheetlayout import line_height, print_setup, wrapped_lines
from trialkit.sitetexts import hint, note, sheet_title, type_text, values_text
from trialkit.study import Form, Site, Study, Variable

INSTRUCTIONS_SHEET = "Instructions"
CODELIST_SHEET = "_codelists"
STAMP_SHEET = "_trialkit"
STAMP_CELL = "B2"
STAMP_NAME = "TRIALKIT_VERSION"
CODELIST_NAME_PREFIX = "CL_"

#: The layout of the form sheets written here. Layout 1 (trialkit's version-1.0 templates) had the
#: codes in row 1, no title, label or hint row, and SITEID pre-filled down a site template.
LAYOUT = "2"
TITLE_ROW = 1
CODE_ROW = 2
LABEL_ROW = 3
HINT_ROW = 4
#: The first row a site types a record in.
FIRST_ENTRY_ROW = 5
#: Entry rows inside each form sheet's print area (data validation reaches :func:`entry_rows`).
PRINT_ENTRY_ROWS = 20

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
DATE_FORMAT = "yyyy-mm-dd"
TEXT_TYPES = ("char", "pdate", "yn")

# Column widths (Excel units, about one digit of the default font). Labels wrap in their column:
# the fewest lines per label that keep a sheet within WIDTH_BUDGET, so that a sheet printed one
# page wide stays readable; a wide form (a questionnaire) gets taller label rows instead.
WIDTH_BUDGET = 170
MAX_LABEL_LINES = 9
MIN_WIDTH = 7
UPRIGHT_WIDTH = 5  # a column whose header cells are turned upright
UPRIGHT = Alignment(horizontal="center", vertical="bottom", wrap_text=True, text_rotation=90)
MAX_WIDTH = 40
INSTRUCTION_LABEL_WIDTH = 24
INSTRUCTION_TEXT_WIDTH = 92

CODE_SIZE = 11
LABEL_SIZE = 10
HINT_SIZE = 8
TITLE_SIZE = 13

HEADER_FONT = Font(bold=True)
CODE_FONT = Font(bold=True, size=CODE_SIZE)
LABEL_FONT = Font(bold=True, size=LABEL_SIZE, color="FF1F1F1F")
HINT_FONT = Font(italic=True, size=HINT_SIZE, color="FF404040")
HEADER_FILL = PatternFill("solid", fgColor="FFDDEBF7")  # light blue: optional
REQUIRED_FILL = PatternFill("solid", fgColor="FFFCE4D6")  # light orange: required (or conditional)
HINT_FILL = PatternFill("solid", fgColor="FFF2F2F2")  # light grey: the hint row
HEADER_ALIGNMENT = Alignment(horizontal="center", vertical="center")
BLOCK_ALIGNMENT = Alignment(horizontal="center", vertical="top", wrap_text=True)
TITLE_ALIGNMENT = Alignment(horizontal="left", vertical="center", wrap_text=True)
LOCKED = Protection(locked=True)
UNLOCKED = Protection(locked=False)
TITLE_FONT = Font(bold=True, size=TITLE_SIZE)
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


def template_language(study: Study, site: Site | None = None, language: str | None = None) -> str:
    """The language a template is written in: ``language``, else the site's, else English."""
    if language is not None:
        return language
    return site.language if site is not None else "en"


def write_template(study: Study, path: str | Path, site: str | None = None,
                   language: str | None = None) -> Path:
    """Write the site upload workbook of ``study`` to ``path`` and return the path.

    ``site`` (a site id such as ``"04"``) stamps the workbook with the site — the importer fills
    a blank SITEID with it — states that site's date, decimal and unit conventions and writes in
    the site's language; without it the workbook is generic. ``language`` (one of
    :data:`trialkit.i18n.LANGUAGES`) overrides the language. Raises ``KeyError`` (naming the known
    sites) for an unknown site.

    Example::

        >>> from trialkit.study import load_study
        >>> write_template(load_study(), "t.xlsx", site="04")  # doctest: +SKIP
        PosixPath('t.xlsx')
    """
    chosen = study.site(site) if site is not None else None
    wb = build_template(study, chosen, language=language)
    out = Path(path)
    save_deterministic(wb, out)
    return out


def build_template(study: Study, site: Site | None = None, language: str | None = None) -> Workbook:
    """The upload workbook as an openpyxl ``Workbook`` (not yet saved)."""
    language = template_language(study, site, language)
    wb = Workbook()
    instructions = wb.active
    instructions.title = INSTRUCTIONS_SHEET
    codelist_ranges = _write_codelists(wb, study)
    for form in study.forms.values():
        _write_form_sheet(wb, study, form, codelist_ranges, site, language)
    _write_stamp(wb, study, site, language)
    _write_instructions(instructions, study, site, language)
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
    props.language = language
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


def _write_form_sheet(wb: Workbook, study: Study, form: Form, codelist_ranges: dict[str, str],
                      site: Site | None, language: str) -> Worksheet:
    ws = wb.create_sheet(form.code)
    texts = study.texts(language)
    variables = form.site_variables
    labels = [texts.label(form, var) for var in variables]
    hints = [hint(study, var, language, site) for var in variables]
    widths, upright = column_layout(study, variables, labels, hints)
    last_entry = FIRST_ENTRY_ROW + entry_rows(study, form) - 1
    last_letter = get_column_letter(len(variables))

    title = sheet_title(study, form, language)
    title_cell = ws.cell(row=TITLE_ROW, column=1, value=title)
    title_cell.font = TITLE_FONT
    title_cell.alignment = TITLE_ALIGNMENT
    title_cell.protection = LOCKED
    if len(variables) > 1:
        ws.merge_cells(start_row=TITLE_ROW, start_column=1, end_row=TITLE_ROW, end_column=len(variables))
    ws.row_dimensions[TITLE_ROW].height = line_height(TITLE_SIZE) * wrapped_lines(
        title, sum(widths), TITLE_SIZE) + 6

    heights = {CODE_ROW: 20.0, LABEL_ROW: line_height(LABEL_SIZE) + 4, HINT_ROW: line_height(HINT_SIZE) + 4}
    for col, (var, label, hint_text, width, turned) in enumerate(
            zip(variables, labels, hints, widths, upright, strict=True), start=1):
        letter = get_column_letter(col)
        fill = REQUIRED_FILL if (var.required or var.required_if) else HEADER_FILL
        code = ws.cell(row=CODE_ROW, column=col, value=var.name)
        code.font = CODE_FONT
        code.fill = fill
        code.alignment = HEADER_ALIGNMENT
        code.protection = LOCKED
        code.number_format = TEXT_FORMAT
        note_text = note(study, form, var, language)
        comment = Comment(note_text, f"trialkit {__version__}")
        comment.width = 320
        comment.height = min(400, 40 + 15 * (note_text.count("\n") + 1 + len(note_text) // 45))
        code.comment = comment

        label_cell = ws.cell(row=LABEL_ROW, column=col, value=label)
        label_cell.font = LABEL_FONT
        label_cell.fill = fill
        label_cell.alignment = BLOCK_ALIGNMENT
        label_cell.protection = LOCKED
        label_cell.number_format = TEXT_FORMAT

        hint_cell = ws.cell(row=HINT_ROW, column=col, value=hint_text)
        hint_cell.font = HINT_FONT
        hint_cell.fill = HINT_FILL
        hint_cell.alignment = BLOCK_ALIGNMENT
        hint_cell.protection = LOCKED
        hint_cell.number_format = TEXT_FORMAT
        if turned:
            code.alignment = label_cell.alignment = hint_cell.alignment = UPRIGHT
            heights[CODE_ROW] = max(heights[CODE_ROW], upright_height(var.name, width, CODE_SIZE, glyph=0.82))
            heights[LABEL_ROW] = max(heights[LABEL_ROW], upright_height(label, width, LABEL_SIZE, glyph=0.75))
            heights[HINT_ROW] = max(heights[HINT_ROW], upright_height(hint_text, width, HINT_SIZE))
        else:
            heights[LABEL_ROW] = max(heights[LABEL_ROW],
                                     line_height(LABEL_SIZE) * wrapped_lines(label, width, LABEL_SIZE) + 4)
            heights[HINT_ROW] = max(heights[HINT_ROW],
                                    line_height(HINT_SIZE) * wrapped_lines(hint_text, width, HINT_SIZE) + 4)

        # The entry area: the whole column below the header block is unlocked and formatted through
        # the column style, so it holds also beyond the validated rows.
        dim = ws.column_dimensions[letter]
        dim.width = width
        dim.protection = UNLOCKED
        number_format = _number_format(var)
        if number_format:
            dim.number_format = number_format

        validation = _validation(study, form, var, codelist_ranges, language)
        if validation is not None:
            ws.add_data_validation(validation)
            validation.add(f"{letter}{FIRST_ENTRY_ROW}:{letter}{last_entry}")

    for row, height in heights.items():
        ws.row_dimensions[row].height = min(409.0, height)
    ws.freeze_panes = f"A{FIRST_ENTRY_ROW}"
    protection = ws.protection
    protection.sheet = True
    # Sites may resize columns, insert/delete/sort rows (all data cells are unlocked), but not
    # add, delete or rename columns: the header block is locked.
    protection.formatColumns = False
    protection.formatRows = False
    protection.insertRows = False
    protection.deleteRows = False
    protection.sort = False
    ws.print_options.gridLines = True
    # One page per sheet: one page wide, and one tall for the print area of the header block and
    # PRINT_ENTRY_ROWS rows (a tall header block of upright labels must not push rows to a 2nd page).
    print_setup(ws, last_column=last_letter, last_row=FIRST_ENTRY_ROW + PRINT_ENTRY_ROWS - 1,
                title_rows=f"{TITLE_ROW}:{HINT_ROW}", fit_height=1, footer=study.id)
    return ws


def column_layout(study: Study, variables: list[Variable], labels: list[str],
                  hints: list[str]) -> tuple[list[float], list[bool]]:
    """Each column's width, and whether its header cells are turned upright.

    The code, the values typed and the hint's words fit on one line; the label wraps over as few
    lines as keep the sheet within :data:`WIDTH_BUDGET`. A sheet still wider (a questionnaire of
    many short items) turns the header cells of its short-valued columns upright, so those columns
    need only the width of their values.
    """
    base = []
    for var, label, hint_text in zip(variables, labels, hints, strict=True):
        width = len(var.name) * 1.15 + 3  # bold code
        if var.type in ("date", "pdate"):
            width = max(width, 12)
        if var.codelist and var.codelist in study.codelists:
            width = max(width, min(24, max(len(c) for c in study.codelists[var.codelist].codes) + 4))
        elif var.type == "char":
            width = max(width, 16)
        longest_hint = max((len(w) for w in hint_text.split()), default=0) * HINT_SIZE / 11 + 2
        longest_label = max((len(w) for w in label.split()), default=0) * LABEL_SIZE / 11 + 2
        base.append(max(MIN_WIDTH, width, longest_hint, longest_label))
    widths = base
    for lines in range(2, MAX_LABEL_LINES + 1):
        widths = [max(b, _width_for(label, lines, LABEL_SIZE)) for b, label in zip(base, labels, strict=True)]
        if sum(widths) <= WIDTH_BUDGET:
            return [float(min(MAX_WIDTH, round(w))) for w in widths], [False] * len(widths)
    upright = [_short_values(study, var) for var in variables]
    if not any(upright):
        return [float(min(MAX_WIDTH, round(w))) for w in widths], [False] * len(widths)
    compact = [float(UPRIGHT_WIDTH) if turn else float(min(MAX_WIDTH, round(w)))
               for turn, w in zip(upright, widths, strict=True)]
    return compact, upright


def _short_values(study: Study, var: Variable) -> bool:
    """True when every value of the variable is a few characters (a score, Y/N, a short code)."""
    if var.codelist and var.codelist in study.codelists:
        return max((len(c) for c in study.codelists[var.codelist].codes), default=0) <= 4
    if var.type == "yn":
        return True
    if var.type in ("int", "num") and var.min is not None and var.max is not None:
        return max(len(_num_text(var.min)), len(_num_text(var.max))) <= 3 and var.decimals in (None, 0, 1)
    return False


def upright_height(text: str, width: float, size: float, glyph: float = 0.62) -> float:
    """The row height in points that a text turned upright needs in a column ``width`` wide
    (``glyph``: a character's width as a share of the font size; bold capitals need about 0.8)."""
    column_points = width * 5.25 + 4
    lines = max(1, int(column_points // line_height(size)))
    char_points = size * glyph
    for chars in range(4, 200):
        if wrapped_lines(text, chars * size / 11 + 1, size) <= lines:
            return round(chars * char_points + 10, 1)
    return 409.0


def _width_for(text: str, lines: int, size: float) -> float:
    """The narrowest width at which ``text`` wraps into at most ``lines`` lines."""
    for width in range(MIN_WIDTH, MAX_WIDTH + 1):
        if wrapped_lines(text, width, size) <= lines:
            return float(width)
    return float(MAX_WIDTH)


def _write_stamp(wb: Workbook, study: Study, site: Site | None, language: str) -> Worksheet:
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
        ("layout", LAYOUT),
        ("language", language),
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


def _units_text(site: Site, language: str) -> str:
    return f" {t('tpl.or', language)} ".join(site.units)


def instruction_lines(study: Study, site: Site | None = None, language: str | None = None) -> list[tuple[str, str]]:
    """The Instructions sheet as ``(label, text)`` rows; a label starting with ``#`` is a heading."""
    lang = template_language(study, site, language)
    texts = study.texts(lang)
    codes = study.missing_codes
    code_list = ", ".join(codes) or "-"
    unit_vars = list(dict.fromkeys(v.unit_var for f in study.forms.values() for v in f.variables if v.unit_var))
    example = t("tpl.units.example", lang, vars=", ".join(unit_vars[:3])) if unit_vars else ""
    lines: list[tuple[str, str]] = [
        ("#title", t("tpl.title", lang, study=study.id)),
        (t("tpl.study", lang), f"{study.id}: {texts.title()}"),
        (t("tpl.protocol_version", lang), study.protocol_version),
        (t("tpl.template_version", lang), study.version_stamp),
        (t("tpl.site", lang), f"{site.id} — {site.city} ({site.country})" if site else t("tpl.all_sites", lang)),
        ("", ""),
        ("#" + t("tpl.h.fill", lang), ""),
        (t("tpl.rows", lang), t("tpl.rows.text", lang, row=FIRST_ENTRY_ROW)),
        (t("tpl.sheets", lang), t("tpl.sheets.text", lang)),
        (t("tpl.columns", lang), t("tpl.columns.text", lang)),
        (t("tpl.labels", lang), t("tpl.labels.text", lang)),
        (t("tpl.lists", lang), t("tpl.lists.text", lang)),
        (t("tpl.checks", lang), t("tpl.checks.text", lang)),
    ]
    if site is not None and any("SITEID" in f.variable_names for f in study.forms.values()):
        lines.append(("SITEID", t("tpl.siteid.text", lang, var="SITEID", site=site.id)))
    lines += [
        (t("tpl.printing", lang), t("tpl.printing.text", lang)),
        ("", ""),
        ("#" + t("tpl.h.missing", lang), ""),
        *[(code, t("tpl.missing.code", lang, meaning=texts.missing(code), code=code)) for code in codes],
        (t("tpl.use", lang), t("tpl.use.text", lang, codes=code_list)),
        ("", ""),
        ("#" + t("tpl.h.dates", lang), ""),
        (t("tpl.full_dates", lang), t("tpl.full_dates.text", lang)),
    ]
    if site is not None:
        lines.append((t("tpl.your_site", lang), t("tpl.your_site.text", lang, site=site.id,
                                                      pattern=site.date_format_hint, example=_example_date(site))))
    lines += [
        (t("tpl.partial_dates", lang), t("tpl.partial_dates.text", lang)),
        ("", ""),
        ("#" + t("tpl.h.numbers", lang), ""),
    ]
    if site is not None:
        mark = t("tpl.comma" if site.decimal_mark == "," else "tpl.point", lang)
        lines.append((t("tpl.decimal", lang), t("tpl.decimal.site", lang, site=site.id, mark=mark)))
        lines.append((t("tpl.units", lang), t("tpl.units.site", lang, site=site.id, units=_units_text(site, lang))
                      + " " + t("tpl.units.say", lang, example=example)))
    else:
        lines.append((t("tpl.decimal", lang), t("tpl.decimal.generic", lang)))
        every = "; ".join(f"{s.id} {'/'.join(s.units)}" for s in study.sites.values())
        lines.append((t("tpl.units", lang), t("tpl.units.say", lang, example=example) + " "
                      + t("tpl.units.all", lang, list=every)))
        lines.append(("", ""))
        lines.append(("#" + t("tpl.h.conventions", lang), ""))
        for s in study.sites.values():
            mark = t("tpl.comma_word" if s.decimal_mark == "," else "tpl.point_word", lang)
            lines.append((f"{t('tpl.site', lang)} {s.id}", t("tpl.convention", lang, city=s.city, country=s.country,
                                                             pattern=s.date_format_hint, mark=mark,
                                                             units=_units_text(s, lang))))
    lines += [
        ("", ""),
        ("#" + t("tpl.h.contact", lang), ""),
        (t("tpl.h.contact", lang), texts.contact()),
        (t("tpl.stamp", lang), t("tpl.stamp.text", lang, stamp=study.version_stamp)),
        ("", ""),
        ("#" + t("tpl.h.forms", lang), ""),
    ]
    return lines


def _write_instructions(ws: Worksheet, study: Study, site: Site | None, language: str) -> None:
    texts = study.texts(language)
    row = 0
    for label, value in instruction_lines(study, site, language):
        row += 1
        if label == "#title":
            ws.cell(row=row, column=1, value=value).font = TITLE_FONT
            ws.row_dimensions[row].height = line_height(TITLE_SIZE) + 4
            continue
        if label.startswith("#"):
            ws.cell(row=row, column=1, value=label[1:]).font = SECTION_FONT
            ws.row_dimensions[row].height = line_height(12) + 2
            continue
        if not label and not value:
            ws.row_dimensions[row].height = 8
            continue
        ws.cell(row=row, column=1, value=label).font = HEADER_FONT
        ws.cell(row=row, column=1).alignment = WRAP
        ws.cell(row=row, column=2, value=value).alignment = WRAP
        # Readers do not all grow rows for wrapped text: give each row its height.
        lines = max(wrapped_lines(value, INSTRUCTION_TEXT_WIDTH), wrapped_lines(label, INSTRUCTION_LABEL_WIDTH))
        ws.row_dimensions[row].height = line_height(11) * lines + 2
    # The forms table.
    row += 1
    heads = (t("tpl.t.sheet", language), f"{t('tpl.t.label', language)} — {t('tpl.t.record', language)}",
             t("tpl.t.columns", language))
    for col, title in enumerate(heads, start=1):
        cell = ws.cell(row=row, column=col, value=title)
        cell.font = HEADER_FONT
        cell.fill = HEADER_FILL
        cell.alignment = WRAP
    for form in study.forms.values():
        row += 1
        described = f"{texts.form_label(form)} — {texts.form_structure(form)}"
        ws.cell(row=row, column=1, value=form.code).alignment = WRAP
        ws.cell(row=row, column=2, value=described).alignment = WRAP
        ws.cell(row=row, column=3, value=len(form.site_variables)).alignment = WRAP
        ws.row_dimensions[row].height = line_height(11) * wrapped_lines(described, INSTRUCTION_TEXT_WIDTH) + 2
    ws.column_dimensions["A"].width = INSTRUCTION_LABEL_WIDTH
    ws.column_dimensions["B"].width = INSTRUCTION_TEXT_WIDTH
    ws.column_dimensions["C"].width = 12
    print_setup(ws, last_column="C", last_row=row, footer=study.id)


# ------------------------------------------------------------------------------------------------
# Columns


def _number_format(var: Variable) -> str | None:
    if var.type in TEXT_TYPES:
        return TEXT_FORMAT
    if var.type == "date":
        return DATE_FORMAT
    return None


def _validation(study: Study, form: Form, var: Variable, codelist_ranges: dict[str, str],
                language: str) -> DataValidation | None:
    missing = "/".join(study.missing_codes) or "-"
    what = type_text(var, language)
    if var.codelist and var.codelist in codelist_ranges:
        dv = DataValidation(type="list", formula1=codelist_defined_name(var.codelist), allow_blank=True)
        prompt_what = t("dv.list", language)
        what = values_text(study, var, language) or what
    elif var.type == "date":
        dv = DataValidation(
            type="date",
            operator="between",
            formula1=str(int(to_excel(DATE_MIN))),
            formula2=str(int(to_excel(DATE_MAX))),
            allow_blank=True,
        )
        prompt_what = f"{what} ({DATE_MIN.year}-{DATE_MAX.year})"
    elif var.type in ("int", "num"):
        kind = "whole" if var.type == "int" else "decimal"
        lo, hi = var.min, var.max
        if lo is not None and hi is not None:
            dv = DataValidation(type=kind, operator="between", formula1=_num_text(lo),
                                formula2=_num_text(hi), allow_blank=True)
        elif lo is not None:
            dv = DataValidation(type=kind, operator="greaterThanOrEqual", formula1=_num_text(lo),
                                allow_blank=True)
        elif hi is not None:
            dv = DataValidation(type=kind, operator="lessThanOrEqual", formula1=_num_text(hi),
                                allow_blank=True)
        else:
            dv = DataValidation(type=kind, operator="between", formula1=_num_text(-NUMBER_LIMIT),
                                formula2=_num_text(NUMBER_LIMIT), allow_blank=True)
        prompt_what = what
    elif var.type == "pdate":
        dv = DataValidation(type="textLength", operator="between", formula1="4", formula2="10",
                            allow_blank=True)
        prompt_what = what
    else:
        return None
    label = study.texts(language).label(form, var)
    dv.showErrorMessage = True
    dv.errorStyle = "warning"
    dv.showInputMessage = True
    dv.promptTitle = _clip(f"{var.name}: {label}", PROMPT_TITLE_MAX)
    dv.prompt = _clip(t("dv.prompt", language, what=prompt_what, missing=missing), PROMPT_MAX)
    dv.errorTitle = _clip(t("dv.error_title", language, var=var.name), ERROR_TITLE_MAX)
    dv.error = _clip(t("dv.error", language, what=what, missing=missing), ERROR_MAX)
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

    Holds the sheet names and states, every form sheet's header block (title, codes, labels,
    hints), header notes, data validations, frozen pane, protection flag, print set-up, column
    formats and locks, all values of ``Instructions``, ``_codelists`` and ``_trialkit``, the
    workbook's defined names and document properties — everything a site or the importer sees,
    but not the zip bytes.
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
        header = [c.value for c in ws[CODE_ROW] if c.value is not None]
        columns = {}
        for col, name in enumerate(header, start=1):
            letter = get_column_letter(col)
            dim = ws.column_dimensions[letter]
            cell = ws.cell(row=CODE_ROW, column=col)
            columns[name] = {
                "label": ws.cell(row=LABEL_ROW, column=col).value,
                "hint": ws.cell(row=HINT_ROW, column=col).value,
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
            {(c.column, c.value) for row in ws.iter_rows(min_row=FIRST_ENTRY_ROW) for c in row
             if c.value is not None}
        )
        contents["forms"][ws.title] = {
            "title": ws.cell(row=TITLE_ROW, column=1).value,
            "header": header,
            "columns": columns,
            "validations": validations,
            "freeze_panes": ws.freeze_panes,
            "protected": bool(ws.protection.sheet),
            "print_area": ws.print_area,
            "print_titles": ws.print_title_rows,
            "fit_to_width": (bool(ws.sheet_properties.pageSetUpPr.fitToPage), ws.page_setup.fitToWidth,
                             ws.page_setup.orientation),
            "max_row": ws.max_row,
            "prefilled": prefilled,
        }
    wb.close()
    return contents
