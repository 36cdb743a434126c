"""Build filled upload workbooks from literal records, as a site would send them (test helper)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from openpyxl import Workbook


def write_upload(study: Any, path: Path, records: dict[str, list[dict[str, Any]]],
                 *, site: str | None = None, subject: str | None = None) -> Path:
    """One sheet per form (header = the form's site variables), values typed as Excel values.

    ``site``/``subject`` rewrite SITEID and SUBJID so one literal subject can stand for another.
    """
    book = Workbook()
    book.remove(book.active)
    for code, rows in records.items():
        form = study.form(code)
        names = [v.name for v in form.site_variables]
        sheet = book.create_sheet(code)
        sheet.append(names)
        for row in rows:
            values = dict(row)
            if site is not None:
                values["SITEID"] = site
            if subject is not None:
                values["SUBJID"] = subject
            line = []
            for name in names:
                value = values.get(name)
                if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
                    value = dt.datetime(value.year, value.month, value.day)
                line.append(value)
            sheet.append(line)
            for cell in sheet[sheet.max_row]:
                if isinstance(cell.value, dt.datetime):
                    cell.number_format = "yyyy-mm-dd"
    book.save(path)
    return path
