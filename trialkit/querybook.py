"""The per-site query workbook: one row per finding, with room for the site's answer.

:func:`write_query_workbook` writes an xlsx (openpyxl) with

- ``Summary``: study, site, data cut, generated time, counts by severity, category and form, and the
  checks that did not run (skipped or error) — a check that did not run must not look like a pass;
- ``Queries``: one row per finding of that site — query id, site, subject, form, visit, variable,
  value, message, severity, category, rule/code, protocol reference, deviation class, file, sheet,
  row — and the empty, unlocked columns ``SITE_RESPONSE``, ``SITE_COMMENT``, ``RESPONDED_BY``,
  ``RESPONSE_DATE`` (the site's answer) and ``DM_ACTION``, ``DM_REASON`` (the data manager's close or
  reopen, read back by ``trialkit queries --answers``).
  Frozen header, autofilter, a fill colour per severity.

Only the site's findings go in (``finding.site == site``); findings without a site only when no
site is given. Every text cell that a spreadsheet would read as a formula (``=``, ``+``, ``-``,
``@``, tab, carriage return first) is written as a plain string, never as a formula.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill, Protection
from openpyxl.utils import get_column_letter

from trialkit.findings import Finding, Report, Severity, Status

if TYPE_CHECKING:  # pragma: no cover
    from trialkit.study import Study

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_ILLEGAL = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")

# (header, Finding attribute or None for a response column, width)
QUERY_COLUMNS: list[tuple[str, str | None, int]] = [
    ("QUERY_ID", "query_id", 14),
    ("SITE", "site", 6),
    ("SUBJECT", "subject", 10),
    ("FORM", "form", 7),
    ("VISIT", "visit", 7),
    ("VARIABLE", "variable", 14),
    ("VALUE", "value", 16),
    ("MESSAGE", "message", 80),
    ("SEVERITY", "severity", 9),
    ("CATEGORY", "category", 13),
    ("CODE", "code", 15),
    ("REFERENCE", "reference", 36),
    ("DEVIATION_CLASS", "deviation_class", 10),
    ("FILE", "file", 24),
    ("SHEET", "sheet", 10),
    ("ROW", "row", 6),
    ("SITE_RESPONSE", None, 50),
    ("SITE_COMMENT", None, 40),
    ("RESPONDED_BY", None, 16),
    ("RESPONSE_DATE", None, 14),
    ("DM_ACTION", None, 10),  # the data manager: close or reopen (with DM_REASON), read back by --answers
    ("DM_REASON", None, 40),
]

SEVERITY_FILL = {
    Severity.ERROR: PatternFill("solid", start_color="FFC7CE", end_color="FFC7CE"),
    Severity.WARNING: PatternFill("solid", start_color="FFE699", end_color="FFE699"),
    Severity.INFO: PatternFill("solid", start_color="E7E6E6", end_color="E7E6E6"),
}
HEADER_FILL = PatternFill("solid", start_color="1F4E78", end_color="1F4E78")
HEADER_FONT = Font(bold=True, color="FFFFFF")


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
) -> Path:
    """Write the query workbook of ``site`` (all findings when None) to ``path``; return the path.

    ``generated_at`` (default: now, UTC) is the time shown on the summary and stored as the
    workbook's creation time; pass it to get the same workbook twice.

    Example::

        >>> import tempfile, pathlib
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "queries.xlsx"
        >>> write_query_workbook(Report(), out, site="01").name
        'queries.xlsx'
    """
    path = Path(path)
    generated = generated_at or dt.datetime.now(dt.UTC).replace(microsecond=0)
    findings = site_findings(report, site)

    workbook = Workbook()
    workbook.properties.creator = "trialkit"
    naive = generated.replace(tzinfo=None)
    workbook.properties.created = naive
    workbook.properties.modified = naive
    summary = workbook.active
    summary.title = "Summary"
    _write_summary(summary, report, findings, site, study, generated)
    _write_queries(workbook.create_sheet("Queries"), findings)
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
    return path


def _write_summary(
    sheet: Any,
    report: Report,
    findings: list[Finding],
    site: str | None,
    study: Study | None,
    generated: dt.datetime,
) -> None:
    site_label = site or "all sites"
    if study is not None and site is not None and site in study.sites:
        info = study.sites[site]
        site_label = f"{site} ({info.city}, {info.country})"
    title = study.title if study is not None else ""
    rows: list[tuple[Any, Any]] = [
        ("Query workbook", f"{report.study_id or ''} {title}".strip()),
        ("Study", report.study_id),
        ("Protocol version", report.study_version),
        ("Schema hash", report.schema_hash),
        ("Site", site_label),
        ("Data cut", report.data_cut),
        ("Generated", generated.isoformat()),
        ("trialkit", report.trialkit_version),
        ("Queries", len(findings)),
    ]
    if report.truncated:
        rows.append(("Left out (--max-findings)", report.truncated))
    if study is not None and study.contact:
        rows.append(("Contact", study.contact))
    rows.append(("How to answer", "Answer each query in SITE_RESPONSE (and SITE_COMMENT), RESPONDED_BY and "
                                  "RESPONSE_DATE on the Queries sheet; do not change the other columns. "
                                  "DM_ACTION and DM_REASON are for the data manager."))
    for label, value in rows:
        sheet.append([None, None])
        _set_text(sheet.cell(sheet.max_row, 1), label)
        _set_text(sheet.cell(sheet.max_row, 2), value)
        sheet.cell(sheet.max_row, 1).font = Font(bold=True)

    def table(title: str, counts: Iterable[tuple[str, int]], fills: bool = False) -> None:
        sheet.append([])
        sheet.append([None, None])
        _set_text(sheet.cell(sheet.max_row, 1), title)
        _set_text(sheet.cell(sheet.max_row, 2), "count")
        for cell in sheet[sheet.max_row]:
            cell.font = HEADER_FONT
            cell.fill = HEADER_FILL
        for name, count in counts:
            sheet.append([None, count])
            _set_text(sheet.cell(sheet.max_row, 1), name)
            if fills and name in Severity._value2member_map_:
                sheet.cell(sheet.max_row, 1).fill = SEVERITY_FILL[Severity(name)]

    severity = Counter(f.severity.value for f in findings)
    table("Severity", [(s.value, severity.get(s.value, 0)) for s in Severity], fills=True)
    table("Category", sorted(Counter(f.category.value for f in findings).items()))
    table("Form", sorted(Counter(f.form or "-" for f in findings).items()))
    not_run = [c for c in report.checks if c.status in (Status.SKIPPED, Status.ERROR)]
    if not_run:
        sheet.append([])
        sheet.append([None, None, None])
        for column, text in enumerate(("Checks that did not run", "status", "reason"), start=1):
            _set_text(sheet.cell(sheet.max_row, column), text)
            sheet.cell(sheet.max_row, column).font = HEADER_FONT
            sheet.cell(sheet.max_row, column).fill = HEADER_FILL
        for check in not_run:
            sheet.append([None, None, None])
            _set_text(sheet.cell(sheet.max_row, 1), f"{check.id} {check.title}")
            _set_text(sheet.cell(sheet.max_row, 2), check.status.value)
            _set_text(sheet.cell(sheet.max_row, 3), check.reason)
    sheet.column_dimensions["A"].width = 34
    sheet.column_dimensions["B"].width = 60
    sheet.column_dimensions["C"].width = 60


def _cell_value(finding: Finding, attribute: str) -> Any:
    value = getattr(finding, attribute)
    return getattr(value, "value", value)


def _write_queries(sheet: Any, findings: list[Finding]) -> None:
    headers = [name for name, _, _ in QUERY_COLUMNS]
    sheet.append(headers)
    for cell in sheet[1]:
        cell.font = HEADER_FONT
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(vertical="center")
    wrap = Alignment(wrap_text=True, vertical="top")
    top = Alignment(vertical="top")
    unlocked = Protection(locked=False)
    message_column = headers.index("MESSAGE") + 1
    for row_number, finding in enumerate(findings, start=2):
        fill = SEVERITY_FILL.get(finding.severity)
        for column, (_, attribute, _) in enumerate(QUERY_COLUMNS, start=1):
            cell = sheet.cell(row_number, column)
            if attribute is None:
                cell.protection = unlocked
                continue
            _set_text(cell, _cell_value(finding, attribute))
            cell.alignment = wrap if column == message_column else top
            if fill is not None:
                cell.fill = fill
    for column, (_, _, width) in enumerate(QUERY_COLUMNS, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = width
    last = get_column_letter(len(QUERY_COLUMNS))
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{last}{max(1, len(findings) + 1)}"
    # Lock what trialkit wrote; the response columns stay editable, filtering and sorting allowed.
    sheet.protection.sheet = True
    sheet.protection.autoFilter = False
    sheet.protection.sort = False
    sheet.protection.formatColumns = False
    sheet.protection.formatRows = False
