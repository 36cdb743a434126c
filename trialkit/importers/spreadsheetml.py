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
        root = SafeET.parse(str(path)).getroot()
    except DefusedXmlException as exc:
        result.findings.append(_doctype_finding(path, limits, f"declares a DTD or entities ({type(exc).__name__})"))
        return result
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
                    if len(text) > limits.max_string_length:
                        ref = f"{name}!{_ref(col - 1, row_number)}"
                        result.findings.append(limit_finding(
                            path, "IMP-LIMIT-STRING", limits, "max_string_length", len(text),
                            f"cell {ref} holds {len(text):,} characters of text",
                            f"Shorten the text in {ref} (a CRF field is never this long).", sheet=name))
                        result.tables.clear()
                        return result
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
            shape = None
            if len(values) > limits.max_columns:
                shape = ("IMP-LIMIT-COLUMNS", "max_columns", len(values), f"row {row_number} of sheet "
                         f"{name!r} has {len(values):,} columns")
            elif len(rows) > limits.max_rows:
                shape = ("IMP-LIMIT-ROWS", "max_rows", len(rows), f"sheet {name!r} has more than "
                         f"{limits.max_rows:,} rows")
            elif cells > limits.max_cells:
                shape = ("IMP-LIMIT-CELLS", "max_cells", cells, f"the file holds more than {limits.max_cells:,} cells")
            if shape is not None:
                result.findings.append(limit_finding(path, shape[0], limits, shape[1], shape[2], shape[3],
                                                     "Split the upload.", sheet=name))
                result.tables.clear()
                return result
        raw = rows_to_table(name, rows, errors, known=known)
        if raw.notes and raw.header_row is not None:
            result.findings.append(offset_finding(str(path), name, raw.header_row, len(raw.notes)))
        options = next((c for c in sheet if _local(c.tag) == "WorksheetOptions"), None)
        if options is not None:
            visible = next((c for c in options if _local(c.tag) == "Visible"), None)
            if visible is not None and (visible.text or "").strip() in ("SheetHidden", "SheetVeryHidden"):
                raw.visibility = "hidden" if visible.text.strip() == "SheetHidden" else "veryHidden"
        result.tables.append(raw)
    if not result.tables:
        result.fail("IMP-NO-SHEETS", f"{path}: SpreadsheetML file without worksheets; upload the workbook itself")
    return result


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
