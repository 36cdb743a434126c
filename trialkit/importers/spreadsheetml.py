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

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from trialkit.importers.detect import FileRead
from trialkit.importers.excel import rows_to_table
from trialkit.importers.header import offset_finding
from trialkit.importers.limits import Limits, file_size_finding, limit_finding, xml_prolog_problem

SS = "urn:schemas-microsoft-com:office:spreadsheet"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _attr(element: Any, name: str) -> str | None:
    return element.get(f"{{{SS}}}{name}", element.get(name))


def read_spreadsheetml(path: str | Path, *, limits: Limits | None = None,
                       known: frozenset[str] | None = None) -> FileRead:
    """Read every worksheet of a SpreadsheetML 2003 file into raw tables.

    A DOCTYPE/ENTITY declaration (entity bombs, external entities) is refused with one ``file``
    finding before parsing; defusedxml would refuse it too, and its refusal is a finding as well.
    """
    limits = limits or Limits.from_env()
    result = FileRead(path=str(path), format="spreadsheetml", encoding="utf-8")
    too_large = file_size_finding(path, limits)
    if too_large is not None:
        result.findings.append(too_large)
        return result
    with open(path, "rb") as handle:
        head = handle.read(limits.xml_head_bytes)
        complete = not handle.read(1)
    problem = xml_prolog_problem(head, limits, complete=complete)
    if problem:
        result.findings.append(_doctype_finding(path, limits, problem))
        return result
    try:
        _read_sheets(path, limits, known, result)
    except _Refused as exc:
        code, limit, measured, what, sheet = exc.args
        remedy = ("Shorten the text (a CRF field is never this long)." if code == "IMP-LIMIT-STRING" else
                  "A row or cell index far beyond the data makes the sheet that large: open the file in Excel, "
                  "delete what is after the data, save it as .xlsx and upload that.")
        result.tables.clear()
        result.findings.append(limit_finding(path, code, limits, limit, measured, what, remedy, sheet=sheet))
        return result
    except DefusedXmlException as exc:
        result.tables.clear()
        result.findings.append(_doctype_finding(path, limits, f"declares a DTD or entities ({type(exc).__name__})"))
        return result
    except Exception as exc:  # a damaged file: the parser stops where the XML breaks
        result.tables.clear()
        result.fail("IMP-FILE-CORRUPT", f"{path}: SpreadsheetML XML that cannot be parsed "
                    f"({type(exc).__name__}: {exc}); open it in Excel and save it as .xlsx")
        return result
    if not result.tables and not any(f.severity == "error" for f in result.findings):
        result.fail("IMP-NO-SHEETS", f"{path}: SpreadsheetML file without worksheets; upload the workbook itself")
    return result


class _Refused(Exception):
    """A sheet over a limit: ``args`` = (code, limit field, measured, what, sheet)."""


def _read_sheets(path: str | Path, limits: Limits, known: frozenset[str] | None, result: FileRead) -> None:
    """Stream the worksheets into ``result.tables`` (events, one row at a time, each freed once read).

    ``ss:Index`` and ``ss:MergeAcross`` are checked against the limits *before* the rows or cells
    they skip to are made: a 430-byte file claiming row 400,000,000 costs nothing.
    """
    cells = 0
    name = ""
    rows: list[list[Any]] = []
    errors: list[tuple[int, int, str, str]] = []
    row_number = 0
    width = 0
    visibility = "visible"
    table_element = None
    for event, element in SafeET.iterparse(str(path), events=("start", "end")):
        tag = _local(element.tag)
        if event == "start":
            if tag == "Worksheet":
                name = _attr(element, "Name") or f"Sheet{len(result.tables) + 1}"
                rows, errors, row_number, width, visibility = [], [], 0, 0, "visible"
            elif tag == "Table":
                table_element = element
            continue
        if tag == "Row":
            index = _attr(element, "Index")
            row_number = _number(index, row_number + 1)
            if row_number > limits.max_rows:
                raise _Refused("IMP-LIMIT-ROWS", "max_rows", row_number, f"sheet {name!r} has a row numbered "
                               f"{row_number:,} (ss:Index)", name)
            values = _row_values(element, name, row_number, limits, errors)
            width = max(width, len(values))
            if row_number * width > limits.max_cells:
                raise _Refused("IMP-LIMIT-CELLS", "max_cells", row_number * width, f"sheet {name!r} spans "
                               f"{row_number:,} rows x {width:,} columns", name)
            cells += len(values)
            if cells > limits.max_cells:
                raise _Refused("IMP-LIMIT-CELLS", "max_cells", cells, f"the file holds more than "
                               f"{limits.max_cells:,} cells", name)
            while len(rows) < row_number - 1:
                rows.append([])
            rows.append(values)
            if table_element is not None:
                table_element.clear()  # the row is read: free it (and any before it)
            else:
                element.clear()
        elif tag == "Visible" and (element.text or "").strip() in ("SheetHidden", "SheetVeryHidden"):
            visibility = "hidden" if element.text.strip() == "SheetHidden" else "veryHidden"
        elif tag == "Worksheet":
            raw = rows_to_table(name, rows, errors, known=known)
            raw.visibility = visibility
            if raw.notes and raw.header_row is not None:
                result.findings.append(offset_finding(str(path), name, raw.header_row, len(raw.notes)))
            result.tables.append(raw)
            table_element = None
            element.clear()


def _number(text: str | None, default: int) -> int:
    if text is None:
        return default
    try:
        return int(text.strip())
    except ValueError:
        return default


def _row_values(row: Any, sheet: str, row_number: int, limits: Limits,
                errors: list[tuple[int, int, str, str]]) -> list[Any]:
    """The cells of one ``Row`` element, placed by ``ss:Index`` and widened by ``ss:MergeAcross``."""
    values: list[Any] = []
    col = 0
    for cell in row:
        if _local(cell.tag) != "Cell":
            continue
        col = _number(_attr(cell, "Index"), col + 1)
        across = _attr(cell, "MergeAcross")
        span = _number(across, 0) if across and across.strip().isdigit() else 0
        if col + span > limits.max_columns:
            raise _Refused("IMP-LIMIT-COLUMNS", "max_columns", col + span, f"row {row_number} of sheet "
                           f"{sheet!r} has a cell in column {col + span:,} (ss:Index / ss:MergeAcross)", sheet)
        while len(values) < col - 1:
            values.append("")
        data = next((d for d in cell if _local(d.tag) == "Data"), None)
        value: Any = ""
        if data is not None:
            kind = _attr(data, "Type") or "String"
            text = "".join(data.itertext())
            if len(text) > limits.max_string_length:
                ref = f"{sheet}!{_ref(col - 1, row_number)}"
                raise _Refused("IMP-LIMIT-STRING", "max_string_length", len(text),
                               f"cell {ref} holds {len(text):,} characters of text", sheet)
            value = _convert(kind, text)
            if kind == "Error":
                errors.append((row_number, col - 1, _ref(col - 1, row_number), text))
                value = ""
        values.append(value)
        if span:
            values.extend([""] * span)
            col += span
    return values


def _doctype_finding(path: str | Path, limits: Limits, problem: str) -> Any:
    return limit_finding(path, "IMP-XML-DOCTYPE", limits, "max_entity_declarations", problem.split(" (")[0],
                         f"the SpreadsheetML file {problem}; Excel never writes these",
                         "Refused for safety: open it in Excel, save it as .xlsx and upload that.")


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
