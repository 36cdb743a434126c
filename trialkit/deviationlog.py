"""The deviation log as data: a frame for the analysis plug-in, and CSV, text and xlsx exports.

The log itself lives in the ledger (:meth:`trialkit.ledger.Workspace.deviation_log`; states in
:mod:`trialkit.lifecycle`). This module turns its entries into what readers need:

- :func:`log_frame` — the frame the study's ``analysis`` plug-in receives as ``deviations``
  (``SUBJID``, ``SITEID``, ``CODE``, ``class``, ``status`` and the rest): the per-protocol flag comes
  from its *confirmed* major deviations;
- :func:`render_csv`, :func:`render_text` and :func:`write_xlsx` — the log for the statistician and
  the clinical study report (the workbook has the log, and counts by code and by site per status).

Example::

    >>> entries = [{"deviation_id": "Q-0123456789", "site": "01", "code": "PD-12", "class": "major",
    ...             "status": "confirmed", "subject": "01-004"}]
    >>> log_frame(entries)[["SUBJID", "CODE", "class", "status"]].values.tolist()
    [['01-004', 'PD-12', 'major', 'confirmed']]
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from trialkit.lifecycle import DEVIATION_STATES

# The columns of every export, in order (``evidence`` as JSON text).
LOG_COLUMNS = [
    "deviation_id", "site", "code", "class", "severity", "status", "subject", "form", "visit", "variable",
    "value", "message", "evidence", "reference", "first_submission", "first_seen_at", "last_seen_submission",
    "last_seen_at", "resolved_submission", "status_at", "status_by", "status_reason",
]
FRAME_COLUMNS = ["SUBJID", "SITEID", "CODE", "class", "status", "DEVIATION_ID", "FORM", "VISIT", "FIRST_SUBMISSION",
                 "LAST_SUBMISSION"]


def log_frame(entries: Iterable[Mapping[str, Any]]) -> Any:
    """The deviation log as the analysis plug-in's ``deviations`` frame (see the module)."""
    import pandas as pd

    rows = [{
        "SUBJID": e.get("subject"), "SITEID": e.get("site"), "CODE": e.get("code"), "class": e.get("class"),
        "status": e.get("status"), "DEVIATION_ID": e.get("deviation_id"), "FORM": e.get("form"),
        "VISIT": e.get("visit"), "FIRST_SUBMISSION": e.get("first_submission"),
        "LAST_SUBMISSION": e.get("last_seen_submission"),
    } for e in entries]
    return pd.DataFrame(rows, columns=FRAME_COLUMNS)


def _cell(entry: Mapping[str, Any], column: str) -> Any:
    value = entry.get(column)
    if column == "evidence":
        return "" if not value else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return "" if value is None else value


def render_csv(entries: Sequence[Mapping[str, Any]]) -> str:
    """The log as CSV, one row per deviation (text a spreadsheet would run as a formula neutralised)."""
    from trialkit.querybook import safe_text

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(LOG_COLUMNS)
    for entry in entries:
        writer.writerow([safe_text(_cell(entry, c)) for c in LOG_COLUMNS])
    return buffer.getvalue()


def counts(entries: Iterable[Mapping[str, Any]], by: str) -> dict[str, Counter[str]]:
    """``{code or site: Counter(status)}`` (``by`` is ``code`` or ``site``), sorted."""
    result: dict[str, Counter[str]] = {}
    for entry in entries:
        result.setdefault(str(entry.get(by) or "-"), Counter())[str(entry.get("status"))] += 1
    return dict(sorted(result.items()))


def render_text(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """A readable listing: one line per deviation, then counts by status."""
    from trialkit.textsafe import printable

    if not entries:
        return ["No protocol deviation detected."]
    lines = []
    for e in entries:
        where = " · ".join(str(p) for p in (e.get("subject"), e.get("form"), e.get("visit")) if p)
        seen = (f"submission {e.get('first_submission')}" if e.get("first_submission") == e.get("last_seen_submission")
                else f"submissions {e.get('first_submission')}–{e.get('last_seen_submission')}")
        decided = f" — {e.get('status_reason')}" if e.get("status") in ("confirmed", "dismissed") else ""
        lines.append(printable(
            f"{e.get('deviation_id')}  {e.get('site')}  {str(e.get('status')):<9} {e.get('code')} "
            f"{str(e.get('class') or ''):<5} {where}: {e.get('message')} ({seen}){decided}"))
    total = Counter(str(e.get("status")) for e in entries)
    lines.append("")
    lines.append("By status: " + ", ".join(f"{s} {total.get(s, 0)}" for s in DEVIATION_STATES))
    return lines


def write_xlsx(entries: Sequence[Mapping[str, Any]], path: str | Path, *, study_id: str | None = None,
               generated_at: dt.datetime | None = None) -> Path:
    """The log as a workbook: ``Deviations`` (one row per deviation, filter, frozen header), ``By code``
    and ``By site`` (counts per status). Returns the path."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    from trialkit.querybook import HEADER_FILL, HEADER_FONT, _set_text

    path = Path(path)
    generated = (generated_at or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    book = Workbook()
    book.properties.creator = "trialkit"
    book.properties.created = generated.replace(tzinfo=None)
    book.properties.modified = generated.replace(tzinfo=None)
    sheet = book.active
    sheet.title = "Deviations"

    def header(target: Any, names: Sequence[str]) -> None:
        target.append(list(names))
        for cell in target[target.max_row]:
            cell.font = HEADER_FONT
            cell.fill = HEADER_FILL

    header(sheet, LOG_COLUMNS)
    for entry in entries:
        sheet.append([None] * len(LOG_COLUMNS))
        for column, name in enumerate(LOG_COLUMNS, start=1):
            _set_text(sheet.cell(sheet.max_row, column), _cell(entry, name) if name != "evidence" or entry.get(name)
                      else None)
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(LOG_COLUMNS))}{max(1, len(entries) + 1)}"
    widths = {"message": 70, "evidence": 50, "status_reason": 40, "reference": 30}
    for column, name in enumerate(LOG_COLUMNS, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = widths.get(name, 14)
    for title, by in (("By code", "code"), ("By site", "site")):
        table = book.create_sheet(title)
        header(table, [by, *DEVIATION_STATES, "total"])
        for key, found in counts(entries, by).items():
            table.append([None, *(found.get(s, 0) for s in DEVIATION_STATES), sum(found.values())])
            _set_text(table.cell(table.max_row, 1), key)
    about = book.create_sheet("About")
    for label, value in (("Deviation log", study_id or ""), ("Generated", generated.isoformat()),
                         ("Deviations", len(entries)),
                         ("Statuses", "open: detected, not decided; confirmed: a fact of the trial (stays "
                                      "whatever later uploads say; a confirmed major deviation takes the "
                                      "subject out of the per-protocol population); resolved: corrected data "
                                      "no longer shows it; dismissed: not a deviation")):
        about.append([None, None])
        _set_text(about.cell(about.max_row, 1), label)
        _set_text(about.cell(about.max_row, 2), value)
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return path
