"""The per-site query workbook: one row per finding, with room for the site's answer, in its language.

:func:`write_query_workbook` writes an xlsx (openpyxl) with

- ``Summary``: study, protocol version, schema hash, site, data cut, generated time, counts by
  severity, category and form, the checks that did not run (skipped or error — a check that did
  not run must not look like a pass) and how to answer; it prints on one page;
- ``Queries``: a title row, the machine header of column codes (:data:`QUERY_COLUMNS`, English like
  the template's variable codes) and a label row in the site's language under it, then one row per
  finding of that site — query id, site, subject, form, visit, variable, value, message, severity,
  category, rule/code, protocol reference, deviation class, file, sheet, row — and the answer
  columns: ``SITE_RESPONSE`` (a dropdown of :data:`RESPONSE_VALUES`; other text is still
  accepted), ``SITE_COMMENT``, ``RESPONDED_BY``, ``RESPONSE_DATE`` (a date) for the site, and
  ``DM_ACTION`` (``close``/``reopen``) with ``DM_REASON`` for the data manager. Only the answer
  cells are unlocked. Wrapped text with row heights computed to fit it (LibreOffice does not grow
  rows written by openpyxl), a fill colour per severity, a filter on the label row, frozen panes;
  it prints landscape, one page wide, with the three header rows repeated; the print area ends
  with the site's answer columns (:data:`LAST_PRINTED`), the columns after it show on screen only.

Only the site's findings go in (``finding.site == site``); findings without a site only when no
site is given. A site never sees the data manager's folders: file names are shown without their
path, in the FILE column and in the messages. Every text cell that a spreadsheet would read as a
formula (``=``, ``+``, ``-``, ``@``, tab, carriage return first) is written as a plain string, never
as a formula. The language is the site's (``[[sites]] language``), English without a study.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path, PureWindowsPath
from typing import TYPE_CHECKING, Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill, Protection
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from trialkit.findings import Finding, Report, Severity, Status
from trialkit.i18n import text as t
from trialkit.sheetlayout import line_height, print_setup, wrapped_lines

if TYPE_CHECKING:  # pragma: no cover
    from trialkit.study import Study

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_ILLEGAL = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")

QUERIES_SHEET = "Queries"
SUMMARY_SHEET = "Summary"
TITLE_ROW = 1
#: The row of the machine header (column codes); a reader finds it by its ``QUERY_ID`` cell.
HEADER_ROW = 2
#: The row of the column labels in the site's language (not a query: its QUERY_ID cell is a label).
LABEL_ROW = 3
FIRST_QUERY_ROW = 4

# (header, Finding attribute or None for an answer column, width). What a site needs on paper comes
# first — the record, what to check and the room for the answer — and is what prints; the columns
# after RESPONSE_DATE (site, category, reference, deviation class, the data manager's) only show on
# screen. A reader finds each column by its code, never by its position.
QUERY_COLUMNS: list[tuple[str, str | None, int]] = [
    ("QUERY_ID", "query_id", 13),
    ("SUBJECT", "subject", 9),
    ("FORM", "form", 7),
    ("VISIT", "visit", 7),
    ("VARIABLE", "variable", 10),
    ("VALUE", "value", 11),
    ("MESSAGE", "message", 46),
    ("SEVERITY", "severity", 8),
    ("CODE", "code", 9),
    ("FILE", "file", 14),
    ("SHEET", "sheet", 7),
    ("ROW", "row", 5),
    ("SITE_RESPONSE", None, 18),
    ("SITE_COMMENT", None, 24),
    ("RESPONDED_BY", None, 12),
    ("RESPONSE_DATE", None, 11),
    ("SITE", "site", 6),
    ("CATEGORY", "category", 10),
    ("REFERENCE", "reference", 22),
    ("DEVIATION_CLASS", "deviation_class", 10),
    ("DM_ACTION", None, 10),
    ("DM_REASON", None, 22),
]
#: The last column on paper (the print area ends here).
LAST_PRINTED = "RESPONSE_DATE"
#: The answers a site chooses from (other text is accepted too, as in version-1 workbooks).
RESPONSE_VALUES = ("corrected in a new upload", "confirmed as is", "other")
#: What the data manager does with an answered query.
DM_ACTIONS = ("close", "reopen")
#: The data manager's columns.
DM_COLUMNS = ("DM_ACTION", "DM_REASON")
#: Rows given dropdowns beyond the last query, for rows a site adds by hand.
SPARE_ROWS = 20

DATA_SIZE = 10
DATE_FORMAT = "yyyy-mm-dd"
CODE_SIZE = 8
TITLE_SIZE = 13

SEVERITY_FILL = {
    Severity.ERROR: PatternFill("solid", start_color="FFC7CE", end_color="FFC7CE"),
    Severity.WARNING: PatternFill("solid", start_color="FFE699", end_color="FFE699"),
    Severity.INFO: PatternFill("solid", start_color="E7E6E6", end_color="E7E6E6"),
}
HEADER_FILL = PatternFill("solid", start_color="1F4E78", end_color="1F4E78")
HEADER_FONT = Font(bold=True, color="FFFFFF")
CODE_FILL = PatternFill("solid", start_color="D9E1F2", end_color="D9E1F2")
CODE_FONT = Font(size=CODE_SIZE, color="404040")
ANSWER_FILL = PatternFill("solid", start_color="FFFFFF", end_color="FFFFFF")
DATA_FONT = Font(size=DATA_SIZE)
TITLE_FONT = Font(bold=True, size=TITLE_SIZE)
WRAP_TOP = Alignment(wrap_text=True, vertical="top")
UNLOCKED = Protection(locked=False)

# Paths as a message may quote them: absolute POSIX (two parts at least) or Windows, or ~/...
_PATH = re.compile(r"(?:(?<=^)|(?<=[\s'\"(\[=:]))(?:~?/|[A-Za-z]:[\\/]|\\\\)(?:[^\s'\"<>|/\\]+[/\\])+"
                   r"(?P<name>[^\s'\"<>|/\\]+)")


def site_findings(report: Report, site: str | None) -> list[Finding]:
    """The findings a site may see: its own; all of them (including site-less ones) when ``site`` is
    None."""
    if site is None:
        return list(report.findings)
    return [f for f in report.findings if f.site == site]


def safe_text(value: Any) -> Any:
    """A value for a spreadsheet cell or CSV field: text that would start a formula gets a leading
    ``'``; characters a workbook cannot hold are dropped. Non-text values pass through."""
    if not isinstance(value, str):
        return value
    value = _ILLEGAL.sub("", value)
    if value.startswith(FORMULA_START):
        value = "'" + value
    # A bare CR is a row break to Excel but not to csv.writer's quoting: make it a quoted LF.
    return value.replace("\r\n", "\n").replace("\r", "\n")


def file_name(path: str | None) -> str | None:
    """A file's name without its folders, whichever system wrote the path (``C:\\x\\a.xlsx`` → ``a.xlsx``)."""
    if not path:
        return path
    return PureWindowsPath(str(path)).name or str(path)


def without_paths(text: str | None, paths: Iterable[str] = ()) -> str | None:
    """``text`` with every file path in it reduced to the file's name: the ``paths`` known to be in
    it (relative ones too), then anything that looks like an absolute path."""
    if not text:
        return text
    for path in sorted({p for p in paths if p}, key=len, reverse=True):
        name = file_name(path)
        if name and name != path:
            text = text.replace(path, name)
    return _PATH.sub(lambda match: match.group("name"), text)


def _set_text(cell: Any, value: Any) -> None:
    """Write a value; text is always stored as a string, so it can never become a formula."""
    if isinstance(value, str):
        cell.value = _ILLEGAL.sub("", value)
        cell.data_type = "s"
    else:
        cell.value = value


def write_query_workbook(
    report: Report,
    path: str | Path,
    *,
    site: str | None = None,
    study: Study | None = None,
    generated_at: dt.datetime | None = None,
    language: str | None = None,
) -> Path:
    """Write the query workbook of ``site`` (all findings when None) to ``path``; return the path.

    ``generated_at`` (default: now, UTC) is the time shown on the summary and stored as the
    workbook's creation time; pass it to get the same workbook twice. ``language`` (default: the
    site's, from ``study``; English without one) chooses the words of headings and labels.

    Example::

        >>> import tempfile, pathlib
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "queries.xlsx"
        >>> write_query_workbook(Report(), out, site="01").name
        'queries.xlsx'
    """
    path = Path(path)
    generated = generated_at or dt.datetime.now(dt.UTC).replace(microsecond=0)
    findings = site_findings(report, site)
    if language is None:
        language = study.language_of(site) if study is not None else "en"

    workbook = Workbook()
    workbook.properties.creator = "trialkit"
    workbook.properties.language = language
    naive = generated.replace(tzinfo=None)
    workbook.properties.created = naive
    workbook.properties.modified = naive
    summary = workbook.active
    summary.title = SUMMARY_SHEET
    _write_summary(summary, report, findings, site, study, generated, language)
    _write_queries(workbook.create_sheet(QUERIES_SHEET), report, findings, site, study, language)
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
    return path


def _site_label(site: str | None, study: Study | None, language: str) -> str:
    if site is None:
        return t("qb.s.all_sites", language)
    if study is not None and site in study.sites:
        info = study.sites[site]
        return f"{site} ({info.city}, {info.country})"
    return site


def _write_summary(
    sheet: Any,
    report: Report,
    findings: list[Finding],
    site: str | None,
    study: Study | None,
    generated: dt.datetime,
    language: str,
) -> None:
    texts = study.texts(language) if study is not None else None
    title = texts.title() if texts is not None else ""
    unknown = t("qb.s.not_available", language)
    label_width, value_width = 30, 62
    rows: list[tuple[Any, Any]] = [
        (t("qb.s.workbook", language), f"{report.study_id or ''} {title}".strip()),
        (t("qb.s.study", language), report.study_id or (study.id if study is not None else unknown)),
        (t("qb.s.protocol_version", language), report.study_version or unknown),
        (t("qb.s.schema_hash", language), report.schema_hash or unknown),
        (t("qb.s.site", language), _site_label(site, study, language)),
        (t("qb.s.data_cut", language), report.data_cut or unknown),
        (t("qb.s.generated", language), generated.isoformat()),
        ("trialkit", report.trialkit_version),
        (t("qb.s.queries", language), len(findings)),
    ]
    if report.truncated:
        rows.append((t("qb.s.left_out", language), report.truncated))
    if texts is not None and texts.contact():
        rows.append((t("qb.s.contact", language), texts.contact()))
    rows.append((t("qb.s.how", language), t("qb.s.how.text", language, response="SITE_RESPONSE",
                                             comment="SITE_COMMENT", by="RESPONDED_BY", date="RESPONSE_DATE")))
    for label, value in rows:
        sheet.append([None, None])
        row = sheet.max_row
        _set_text(sheet.cell(row, 1), label)
        _set_text(sheet.cell(row, 2), value)
        sheet.cell(row, 1).font = Font(bold=True)
        sheet.cell(row, 1).alignment = WRAP_TOP
        sheet.cell(row, 2).alignment = Alignment(wrap_text=True, vertical="top", horizontal="left")
        lines = max(wrapped_lines(str(label), label_width), wrapped_lines(str(value), value_width))
        sheet.row_dimensions[row].height = line_height(11) * lines + 2
    sheet.cell(1, 2).font = Font(bold=True, size=12)

    def table(title: str, counts: Iterable[tuple[str, int]], fills: bool = False) -> None:
        sheet.append([])
        sheet.append([None, None])
        _set_text(sheet.cell(sheet.max_row, 1), title)
        _set_text(sheet.cell(sheet.max_row, 2), t("qb.s.count", language))
        for cell in sheet[sheet.max_row]:
            cell.font = HEADER_FONT
            cell.fill = HEADER_FILL
        for name, count in counts:
            sheet.append([None, count])
            _set_text(sheet.cell(sheet.max_row, 1), name)
            sheet.cell(sheet.max_row, 2).alignment = Alignment(horizontal="left")
            if fills and name in Severity._value2member_map_:
                sheet.cell(sheet.max_row, 1).fill = SEVERITY_FILL[Severity(name)]

    severity = Counter(f.severity.value for f in findings)
    table(t("qb.s.severity", language), [(s.value, severity.get(s.value, 0)) for s in Severity], fills=True)
    table(t("qb.s.category", language), sorted(Counter(f.category.value for f in findings).items()))
    table(t("qb.s.form", language), sorted(Counter(f.form or "-" for f in findings).items()))
    not_run = [c for c in report.checks if c.status in (Status.SKIPPED, Status.ERROR)]
    if not_run:
        sheet.append([])
        sheet.append([None, None])
        heading = (t("qb.s.not_run", language), t("qb.s.status", language) + " · " + t("qb.s.reason", language))
        for column, value in enumerate(heading, start=1):
            _set_text(sheet.cell(sheet.max_row, column), value)
            sheet.cell(sheet.max_row, column).font = HEADER_FONT
            sheet.cell(sheet.max_row, column).fill = HEADER_FILL
        for check in not_run:
            sheet.append([None, None])
            row = sheet.max_row
            name = f"{check.id} {check.title}"
            reason = f"{check.status.value}: {without_paths(check.reason, _known_paths(report)) or ''}"
            _set_text(sheet.cell(row, 1), name)
            _set_text(sheet.cell(row, 2), reason)
            sheet.cell(row, 1).alignment = WRAP_TOP
            sheet.cell(row, 2).alignment = WRAP_TOP
            lines = max(wrapped_lines(name, label_width), wrapped_lines(reason, value_width))
            sheet.row_dimensions[row].height = line_height(11) * lines + 2
    sheet.column_dimensions["A"].width = label_width
    sheet.column_dimensions["B"].width = value_width
    _print_setup(sheet, last_column="B", last_row=sheet.max_row, orientation="portrait", fit_height=1)


def _cell_value(finding: Finding, attribute: str, paths: set[str]) -> Any:
    value = getattr(finding, attribute)
    value = getattr(value, "value", value)
    if attribute == "file":
        return file_name(value)
    if attribute in ("message", "value", "reference") and isinstance(value, str):
        return without_paths(value, paths)
    return value


def _known_paths(report: Report, findings: Iterable[Finding] = ()) -> set[str]:
    paths = {i.path for i in report.inputs if i.path}
    paths.update(f.file for f in (*report.findings, *findings) if f.file)
    return paths


def _write_queries(sheet: Any, report: Report, findings: list[Finding], site: str | None, study: Study | None,
                   language: str) -> None:
    headers = [name for name, _, _ in QUERY_COLUMNS]
    widths = [width for _, _, width in QUERY_COLUMNS]
    last = get_column_letter(len(QUERY_COLUMNS))
    study_id = report.study_id or (study.id if study is not None else "")
    title = (t("qb.title.site", language, site=_site_label(site, study, language), study=study_id) if site
             else t("qb.title.all", language, study=study_id))
    title_cell = sheet.cell(TITLE_ROW, 1)
    _set_text(title_cell, title)
    title_cell.font = TITLE_FONT
    title_cell.alignment = Alignment(vertical="center")
    sheet.row_dimensions[TITLE_ROW].height = line_height(TITLE_SIZE) + 6
    label_lines = 1
    for column, (name, width) in enumerate(zip(headers, widths, strict=True), start=1):
        code = sheet.cell(HEADER_ROW, column)
        _set_text(code, name)
        code.font = CODE_FONT
        code.fill = CODE_FILL
        code.alignment = Alignment(wrap_text=True, vertical="center")
        label = t(f"qb.c.{name}", language)
        cell = sheet.cell(LABEL_ROW, column)
        _set_text(cell, label)
        cell.font = HEADER_FONT
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        label_lines = max(label_lines, wrapped_lines(label, width))
        sheet.column_dimensions[get_column_letter(column)].width = width
    code_lines = max(wrapped_lines(name, width, CODE_SIZE) for name, width in zip(headers, widths, strict=True))
    sheet.row_dimensions[HEADER_ROW].height = line_height(CODE_SIZE) * code_lines + 2
    sheet.row_dimensions[LABEL_ROW].height = line_height(11) * label_lines + 4

    paths = _known_paths(report, findings)
    for row_number, finding in enumerate(findings, start=FIRST_QUERY_ROW):
        fill = SEVERITY_FILL.get(finding.severity)
        lines = 1
        for column, (name, attribute, width) in enumerate(QUERY_COLUMNS, start=1):
            cell = sheet.cell(row_number, column)
            cell.font = DATA_FONT
            cell.alignment = WRAP_TOP
            if attribute is None:
                cell.protection = UNLOCKED
                if name == "RESPONSE_DATE":
                    cell.number_format = DATE_FORMAT
                continue
            value = _cell_value(finding, attribute, paths)
            _set_text(cell, value)
            if fill is not None:
                cell.fill = fill
            if value is not None:
                lines = max(lines, wrapped_lines(str(value), width, DATA_SIZE))
        sheet.row_dimensions[row_number].height = line_height(DATA_SIZE) * lines + 4
    last_row = FIRST_QUERY_ROW + len(findings) - 1
    _answer_validations(sheet, headers, max(last_row, FIRST_QUERY_ROW) + SPARE_ROWS, language)
    sheet.freeze_panes = f"B{FIRST_QUERY_ROW}"
    sheet.auto_filter.ref = f"A{LABEL_ROW}:{last}{max(LABEL_ROW, last_row)}"
    # Lock what trialkit wrote; the answer columns stay editable, filtering and sorting allowed.
    sheet.protection.sheet = True
    sheet.protection.autoFilter = False
    sheet.protection.sort = False
    sheet.protection.formatColumns = False
    sheet.protection.formatRows = False
    sheet.print_options.gridLines = True  # room to write an answer by hand on paper
    last_printed = get_column_letter(headers.index(LAST_PRINTED) + 1)
    sheet.merge_cells(f"A{TITLE_ROW}:{last_printed}{TITLE_ROW}")
    _print_setup(sheet, last_column=last_printed, last_row=max(LABEL_ROW, last_row),
                 title_rows=f"{TITLE_ROW}:{LABEL_ROW}", footer=study_id)


def _answer_validations(sheet: Any, headers: list[str], last_row: int, language: str) -> None:
    """Dropdowns and a date check on the answer columns, down to ``last_row``; the cells unlocked."""
    def column(name: str) -> str:
        return get_column_letter(headers.index(name) + 1)

    response = DataValidation(type="list", formula1='"' + ",".join(RESPONSE_VALUES) + '"', allow_blank=True,
                              showErrorMessage=False, showInputMessage=True,
                              promptTitle=t("qb.c.SITE_RESPONSE", language)[:32],
                              prompt=t("qb.dv.response", language, comment="SITE_COMMENT")[:255])
    date = DataValidation(type="date", operator="between", formula1="36526", formula2="73050", allow_blank=True,
                          showErrorMessage=True, errorStyle="warning", showInputMessage=True,
                          promptTitle=t("qb.c.RESPONSE_DATE", language)[:32], prompt=t("qb.dv.date", language))
    action = DataValidation(type="list", formula1='"' + ",".join(DM_ACTIONS) + '"', allow_blank=True,
                            showErrorMessage=True, errorStyle="stop", showInputMessage=True,
                            promptTitle=t("qb.c.DM_ACTION", language)[:32],
                            prompt=t("qb.dv.action", language, reason="DM_REASON")[:255])
    for validation, name in ((response, "SITE_RESPONSE"), (date, "RESPONSE_DATE"), (action, "DM_ACTION")):
        sheet.add_data_validation(validation)
        letter = column(name)
        validation.add(f"{letter}{FIRST_QUERY_ROW}:{letter}{last_row}")
    # The answer columns are unlocked through the column style (also below the last query, for a
    # row a site adds); the header cells above keep their own, locked, style.
    for name, attribute, _ in QUERY_COLUMNS:
        if attribute is None:
            sheet.column_dimensions[column(name)].protection = UNLOCKED
    sheet.column_dimensions[column("RESPONSE_DATE")].number_format = DATE_FORMAT


def _print_setup(sheet: Any, *, last_column: str, last_row: int, title_rows: str | None = None,
                 orientation: str = "landscape", fit_height: int = 0, footer: str = "") -> None:
    print_setup(sheet, last_column=last_column, last_row=last_row, title_rows=title_rows, fit_height=fit_height,
                footer=footer)
    sheet.page_setup.orientation = orientation
