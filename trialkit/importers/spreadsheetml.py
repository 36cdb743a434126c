"""Read SpreadsheetML 2003 (XML saved as ``.xls``, e.g. SAS ODS tagsets.ExcelXP output).

Neither calamine nor xlrd reads these files. The format is plain XML —
``Workbook/Worksheet/Table/Row/Cell/Data`` — parsed here with :mod:`defusedxml` (no DTDs, no
entity expansion). ``ss:Index`` on a row or cell skips to that (1-based) position; ``ss:Type``
says whether ``Data`` is a ``String``, ``Number``, ``DateTime``, ``Boolean`` or ``Error``
(error cells are reported, never read as blank). Merged cells (``ss:MergeAcross``) occupy the
cells to their right.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from defusedxml import ElementTree as SafeET

from trialkit.importers.detect import FileRead
from trialkit.importers.excel import MAX_CELLS, MAX_FILE_BYTES, rows_to_table

SS = "urn:schemas-microsoft-com:office:spreadsheet"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _attr(element: Any, name: str) -> str | None:
    return element.get(f"{{{SS}}}{name}", element.get(name))


def read_spreadsheetml(path: str | Path) -> FileRead:
    """Read every worksheet of a SpreadsheetML 2003 file into raw tables."""
    result = FileRead(path=str(path), format="spreadsheetml", encoding="utf-8")
    size = Path(path).stat().st_size
    if size > MAX_FILE_BYTES:
        result.fail("IMP-FILE-TOO-LARGE", f"{path}: {size} bytes is more than trialkit accepts; split the upload")
        return result
    try:
        root = SafeET.parse(str(path)).getroot()
    except Exception as exc:  # defusedxml raises its own errors for DTDs and entities
        result.fail("IMP-FILE-CORRUPT", f"{path}: SpreadsheetML XML that cannot be parsed "
                    f"({type(exc).__name__}: {exc}); open it in Excel and save it as .xlsx")
        return result
    cells = 0
    for sheet in root:
        if _local(sheet.tag) != "Worksheet":
            continue
        name = _attr(sheet, "Name") or f"Sheet{len(result.tables) + 1}"
        rows: list[list[Any]] = []
        errors: list[tuple[int, int, str, str]] = []
        table = next((c for c in sheet if _local(c.tag) == "Table"), None)
        row_number = 0
        for row in table if table is not None else []:
            if _local(row.tag) != "Row":
                continue
            index = _attr(row, "Index")
            row_number = int(index) if index else row_number + 1
            while len(rows) < row_number - 1:
                rows.append([])
            values: list[Any] = []
            col = 0
            for cell in row:
                if _local(cell.tag) != "Cell":
                    continue
                cindex = _attr(cell, "Index")
                col = int(cindex) if cindex else col + 1
                while len(values) < col - 1:
                    values.append("")
                data = next((d for d in cell if _local(d.tag) == "Data"), None)
                value: Any = ""
                if data is not None:
                    kind = _attr(data, "Type") or "String"
                    text = "".join(data.itertext())
                    value = _convert(kind, text)
                    if kind == "Error":
                        errors.append((row_number, col - 1, _ref(col - 1, row_number), text))
                        value = ""
                values.append(value)
                across = _attr(cell, "MergeAcross")
                if across and across.isdigit():
                    values.extend([""] * int(across))
                    col += int(across)
            rows.append(values)
            cells += len(values)
            if cells > MAX_CELLS:
                result.fail("IMP-FILE-TOO-LARGE", f"{path}: more than {MAX_CELLS} cells; split the upload")
                return result
        raw = rows_to_table(name, rows, errors)
        options = next((c for c in sheet if _local(c.tag) == "WorksheetOptions"), None)
        if options is not None:
            visible = next((c for c in options if _local(c.tag) == "Visible"), None)
            if visible is not None and (visible.text or "").strip() in ("SheetHidden", "SheetVeryHidden"):
                raw.visibility = "hidden" if visible.text.strip() == "SheetHidden" else "veryHidden"
        result.tables.append(raw)
    if not result.tables:
        result.fail("IMP-NO-SHEETS", f"{path}: SpreadsheetML file without worksheets; upload the workbook itself")
    return result


def _convert(kind: str, text: str) -> Any:
    if kind == "Number":
        try:
            return float(text)
        except ValueError:
            return text
    if kind == "DateTime":
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            return text
        return moment.date() if moment.time() == dt.time(0) else moment
    if kind == "Boolean":
        return text.strip() in ("1", "true", "TRUE")
    return text


def _ref(col: int, row: int) -> str:
    letters = ""
    col += 1
    while col:
        col, rem = divmod(col - 1, 26)
        letters = chr(65 + rem) + letters
    return f"{letters}{row}"
