"""Read Excel workbooks (xlsx, xlsm, BIFF xls) with python-calamine, error cells included.

calamine returns ``''`` for an error cell (``#N/A``, ``#DIV/0!``), exactly as for an empty one
(``LIBRARIES.md``). A ``#N/A`` that became a blank would be a silently lost value, so for xlsx/xlsm
the worksheet XML parts are scanned for cells of type ``e`` — and for cells holding a formula
without its result, which calamine reads as blanks too — and each becomes an entry of
:attr:`RawTable.errors` with its row, column and cell reference (xlsb, ods and xls workbooks are
scanned by :mod:`trialkit.importers.sheetscan`). The scan is bounded (the
uncompressed size is checked in the zip directory first), streams the part in blocks, and never
parses XML with entities: a cheap byte search finds candidate cells, and only the cell tags are
looked at. The workbook's date system (1900 or 1904) is read from ``workbookPr``.

Each sheet's header is its first non-empty row; the index of ``values`` is the spreadsheet row
number the site sees.
"""

from __future__ import annotations

import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trialkit.findings import Severity
from trialkit.importers.detect import UNCALCULATED_PREFIX, FileRead, RawTable
from trialkit.importers.header import cell_text, find_header, header_names, is_blank, offset_finding
from trialkit.importers.limits import (
    Limits,
    TextRuns,
    column_letters,
    file_size_finding,
    limit_finding,
    long_string_cell,
    longest_text_run,
    preflight_ooxml,
)
from trialkit.importers.sheetscan import (
    ScanError,
    ScanLimit,
    SheetScan,
    XlsEncrypted,
    XlsScan,
    check_errors,
    check_extent,
    scan_ods,
    scan_xls,
    scan_xlsb_sheet,
    xlsb_sheets,
)

# Module defaults kept for callers that import them; the enforced values come from ``Limits``.
MAX_FILE_BYTES = Limits().max_file_bytes
MAX_PART_BYTES = Limits().max_uncompressed_bytes
MAX_CELLS = Limits().max_cells

STAMP_SHEET = "_trialkit"

# Tag patterns never cross a "<" ([^<>], not [^>]): in XML a tag holds none, and a crafted part of
# tag starts without their ">" would otherwise make every attempt scan to the end (quadratic: a
# 1 MB workbook hung the scan).
_ERROR_TAG = re.compile(rb"<(?:\w+:)?c\s[^<>]*?\bt\s*=\s*[\"']e[\"'][^<>]*>")
_REF = re.compile(rb"\br\s*=\s*[\"']([A-Z]+)(\d+)[\"']")
_VALUE = re.compile(rb"<(?:\w+:)?v>([^<]*)</(?:\w+:)?v>")
#: A cell that holds a formula and no result: no cached value (``<v>``), or an empty one where the
#: result is not text (``t="str"`` with ``<v></v>`` is a formula that gave ""). calamine reads a blank;
#: a workbook written by a program (openpyxl, a site system's export) and never opened and saved in
#: Excel or LibreOffice has them: the value is unknown, not missing.
_UNCALCULATED = re.compile(rb"<(?:\w+:)?c\s([^<>]*?)(?<!/)>\s*<(?:\w+:)?f\b[^<>]*?(?:/>|>([^<]*)</(?:\w+:)?f>)"
                           rb"\s*(<(?:\w+:)?v\s*/>|<(?:\w+:)?v>\s*</(?:\w+:)?v>)?\s*</(?:\w+:)?c>")
_TEXT_RESULT = re.compile(rb"\bt\s*=\s*[\"']str[\"']")

_SHEET_TAG = re.compile(rb"<(?:\w+:)?sheet\s[^<>]*>")
_REL_TAG = re.compile(rb"<(?:\w+:)?Relationship\s[^<>]*>")
_ATTR = re.compile(rb"([\w:]+)\s*=\s*[\"']([^\"']*)[\"']")


def read_excel(path: str | Path, fmt: str, *, strict: bool = False, limits: Limits | None = None,
               known: frozenset[str] | None = None, biff: str | None = None) -> FileRead:
    """Read every sheet of a workbook; problems become ``file`` findings on the result.

    xlsx/xlsm/xlsb/ods first pass :func:`~trialkit.importers.limits.preflight_ooxml` (zip bomb,
    entities, dimension claims) and a streaming scan of their sheet parts (error cells, the extent of
    the used cells: :mod:`trialkit.importers.sheetscan`); a refusal is one ``file`` error and
    calamine never opens the file. calamine is told the format found by content, whatever the file
    is named.
    """
    import python_calamine as pc

    limits = limits or Limits.from_env()
    result = FileRead(path=str(path), format=fmt)
    too_large = file_size_finding(path, limits)
    if too_large is not None:
        result.findings.append(too_large)
        return result
    if fmt in ("xlsx", "xlsm", "xlsb", "ods"):
        checked = preflight_ooxml(path, limits)
        result.findings.extend(checked)
        if any(f.severity == Severity.ERROR for f in checked):
            return result
    if strict:
        result.fail("IMP-STRICT-OOXML", f"{path}: a Strict Open XML workbook; read with calamine (openpyxl "
                    "and several other tools cannot read it). Save as a normal .xlsx to be safe.",
                    severity=Severity.INFO)
    error_cells: dict[str, list[tuple[int, int, str, str]]] = {}
    runs: dict[str, int] = {}  # longest text run per sheet (and "" for shared strings)
    comments: dict[str, list[tuple[str, str]]] = {}  # cell comments per sheet (xlsx)
    try:
        if fmt in ("xlsx", "xlsm"):
            result.date_system, error_cells = _scan_ooxml(Path(path), limits, runs, comments)
        elif fmt in ("xlsb", "ods"):
            result.date_system, error_cells = _scan_package(Path(path), fmt, limits, result)
        elif fmt == "xls":
            try:
                xls = _scan_xls(Path(path), biff, limits)
            except _Unverified as exc:
                if biff != "BIFF5":
                    raise
                result.fail("IMP-XLS-OLD", _biff5_message(path, exc.args[1]))
                return result
            if xls is None:
                result.fail("IMP-FILE-PASSWORD", _PASSWORD_MESSAGE.format(path=path))
                return result
            result.date_system = xls.date_system
    except _TooLarge as exc:
        result.findings.append(limit_finding(
            path, "IMP-LIMIT-UNCOMPRESSED", limits, "max_uncompressed_bytes", exc.args[1],
            str(exc.args[0]), "Check that this is the intended workbook; open it in Excel, save it "
            "again and upload the new file."))
        return result
    except _Unverified as exc:
        result.fail("IMP-ERRORS-UNVERIFIED", exc.args[0])
        return result
    except ScanLimit as exc:
        limit, measured, what = exc.args
        result.findings.append(limit_finding(path, _LIMIT_CODES[limit], limits, limit, measured, what,
                                             _remedy(limit)))
        return result
    except (zipfile.BadZipFile, OSError, KeyError) as exc:
        result.fail("IMP-FILE-CORRUPT", f"{path}: the workbook package is damaged ({exc}); open it in "
                    "Excel, save it again and upload the new file")
        return result
    try:
        workbook = open_workbook(Path(path), fmt)
    except pc.PasswordError:
        result.fail("IMP-FILE-PASSWORD", _PASSWORD_MESSAGE.format(path=path))
        return result
    except CALAMINE_FAILURES as exc:  # calamine raises several error types (and panics) for damaged files
        if isinstance(exc, _INTERRUPTS):
            raise
        if biff == "BIFF5":
            result.fail("IMP-XLS-OLD", _biff5_message(path, f"{type(exc).__name__}: {exc}"))
            return result
        result.fail("IMP-FILE-CORRUPT", f"{path}: the {_FORMAT_NAMES.get(fmt, fmt)} workbook cannot be read "
                    f"({type(exc).__name__}: {exc}); open it in Excel or LibreOffice, save it again as .xlsx "
                    "and upload the new file")
        return result
    if fmt == "xls":
        error_cells = _xls_errors(xls, [meta.name for meta in workbook.sheets_metadata])
    with workbook:
        cells = 0
        for meta in workbook.sheets_metadata:
            visibility = {"Visible": "visible", "Hidden": "hidden", "VeryHidden": "veryHidden"}.get(
                str(meta.visible).rsplit(".", 1)[-1], "visible")
            sheet_type = str(meta.typ).rsplit(".", 1)[-1].lower()
            if meta.name == STAMP_SHEET:
                result.stamp, result.stamp_site = _read_stamp(workbook, meta.name)
            try:
                sheet = workbook.get_sheet_by_name(meta.name)
                end = sheet.end
                if end is not None and _over(SheetScan(rows=end[0] + 1, columns=end[1] + 1), limits):
                    # calamine holds the cells; rows of Python lists from A1 would be far larger.
                    check_extent(meta.name, SheetScan(rows=end[0] + 1, columns=end[1] + 1), limits)
                rows = sheet.to_python(skip_empty_area=False)
                del sheet  # calamine's cells (about as large again as the rows) go before the frames are made
            except ScanLimit as exc:
                limit, measured, what = exc.args
                result.findings.append(limit_finding(path, _LIMIT_CODES[limit], limits, limit, measured, what,
                                                     _EXTENT_REMEDY, sheet=meta.name))
                result.tables.clear()
                return result
            except CALAMINE_FAILURES as exc:
                if isinstance(exc, _INTERRUPTS):
                    raise
                if sheet_type != "worksheet":
                    rows = []
                else:
                    result.fail("IMP-SHEET-UNREADABLE", f"{path}: sheet {meta.name!r} cannot be read "
                                f"({type(exc).__name__}: {exc}); re-save the workbook in Excel",
                                sheet=meta.name)
                    continue
            refusal = _shape_finding(path, meta.name, rows, limits)
            cells += max((len(r) for r in rows[:1]), default=0) * len(rows)
            if refusal is None and cells > limits.max_cells:
                refusal = limit_finding(path, "IMP-LIMIT-CELLS", limits, "max_cells", cells,
                                        f"the workbook holds {cells:,} cells", "Split the upload.",
                                        sheet=meta.name)
            if refusal is None and max(runs.get(meta.name, 0), runs.get("", 0)) > limits.max_string_length:
                refusal = _long_string_finding(path, meta.name, rows, limits)
            if refusal is not None:
                result.findings.append(refusal)
                result.tables.clear()
                return result
            table = rows_to_table(meta.name, rows, error_cells.get(meta.name, []), known=known)
            if table.notes and table.header_row is not None:
                result.findings.append(offset_finding(str(path), meta.name, table.header_row, len(table.notes)))
            table.visibility = visibility
            table.sheet_type = sheet_type
            table.comments = comments.get(meta.name, [])
            result.tables.append(table)
    return result


def rows_to_table(name: str, rows: list[list[Any]], errors: list[tuple[int, int, str, str]] = (),
                  first_row: int = 1, known: frozenset[str] | None = None) -> RawTable:
    """Turn a sheet's rows (row 0 = spreadsheet row ``first_row``) into a :class:`RawTable`.

    The header row is found by content (:func:`~trialkit.importers.header.find_header`, with the
    study's variable names and labels in ``known``); the non-empty rows above it are kept as
    ``notes``. Trailing rows without a value are dropped, and columns without a header and without a
    value (formatting only) are no columns; the index is the spreadsheet row number. ``errors`` are
    ``(row, column_index, ref, text)`` with 1-based spreadsheet rows and 0-based columns.
    """
    error_rows = {row for row, _, _, _ in errors}
    header_pos = find_header(rows, known, forced={row - first_row for row in error_rows})
    if header_pos is None:
        return RawTable(name=name, kind="sheet", columns=[], values=pd.DataFrame(index=pd.Index([], dtype="int64")),
                        header_row=None)
    header_row = header_pos + first_row
    notes = [(pos + first_row, [cell_text(v) for v in row if not is_blank(v)])
             for pos, row in enumerate(rows[:header_pos])]
    notes = [(row, cells) for row, cells in notes if cells]
    width = max(map(len, rows[header_pos:]))
    header = list(rows[header_pos]) + [""] * (width - len(rows[header_pos]))
    columns, blank = header_names(header)
    body = rows[header_pos + 1:]
    # Trailing rows that are completely empty are not records (calamine pads to the used range);
    # empty rows inside the table are kept here (row counts as other readers see them) and are no
    # records of a form (the normaliser drops them).
    end = len(body)
    while end and body[end - 1].count("") + body[end - 1].count(None) == len(body[end - 1]) and \
            (header_row + end) not in error_rows:
        end -= 1
    body = body[:end]
    index = pd.RangeIndex(header_row + 1, header_row + 1 + len(body))
    if body and min(map(len, body)) != width:
        body = [list(r) + [""] * (width - len(r)) for r in body]
    frame = pd.DataFrame(body, columns=range(width), index=index, dtype=object) if body else \
        pd.DataFrame({i: pd.Series([], dtype=object) for i in range(width)}, index=index)
    frame.columns = columns
    named_errors = [(row, columns[col] if col < len(columns) else column_letters(col), ref, text)
                    for row, col, ref, text in errors]
    # A column with a blank header and no value anywhere is formatting, not a column.
    error_columns = {column for _, column, _, _ in named_errors}
    empty = [c for c in columns if c in blank and c not in error_columns
             and all(is_blank(v) for v in frame[c].to_numpy())]
    if empty:
        frame = frame.drop(columns=empty)
        columns = [c for c in columns if c not in empty]
        blank = blank - set(empty)
    return RawTable(name=name, kind="sheet", columns=columns, values=frame,
                    labels=[None] * len(columns), types=[_infer_type(frame.iloc[:, i]) for i in range(len(columns))],
                    header_row=header_row, errors=named_errors, blank_columns=blank, notes=notes)


def _infer_type(column: pd.Series) -> str:
    """A short description of a column's cells: text, number, date, datetime, mixed, empty."""
    values = column.to_numpy()
    # One C pass over the cells; empty cells ("") make a number or date column "mixed", and only
    # then are the distinct values judged without them.
    inferred = pd.api.types.infer_dtype(values, skipna=True) if len(values) else "empty"
    if inferred == "string":
        return "empty" if np.count_nonzero(values == "") == len(values) else "text"
    if inferred.startswith("mixed"):
        distinct = [v for v in pd.unique(values) if not (isinstance(v, str) and v == "")]
        inferred = pd.api.types.infer_dtype(distinct, skipna=True) if distinct else "empty"
    return {"string": "text", "floating": "number", "integer": "number", "mixed-integer-float": "number",
            "date": "date", "datetime": "datetime", "datetime64": "datetime", "boolean": "boolean",
            "empty": "empty", "time": "time", "timedelta": "time"}.get(inferred, "mixed")


def _col_index(letters: bytes) -> int:
    number = 0
    for ch in letters:
        number = number * 26 + (ch - 64)
    return number - 1


def _read_stamp(workbook: Any, sheet: str) -> tuple[str | None, str | None]:
    """The version stamp (``B2``) and the site (the ``site`` row) of a template's ``_trialkit`` sheet."""
    try:
        rows = workbook.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
    except CALAMINE_FAILURES as exc:
        if isinstance(exc, _INTERRUPTS):
            raise
        return None, None
    stamp = None
    if len(rows) > 1 and len(rows[1]) > 1 and str(rows[1][1]).strip():
        stamp = str(rows[1][1]).strip()
    site = next((cell_text(row[1]).strip() for row in rows[1:20]
                 if len(row) > 1 and str(row[0]).strip() == "site"), "")
    return stamp, site or None


def _shape_finding(path: str | Path, sheet: str, rows: list[list[Any]], limits: Limits) -> Any:
    """A refusal when a sheet as read has more rows or columns than the limits allow."""
    if len(rows) > limits.max_rows:
        return limit_finding(path, "IMP-LIMIT-ROWS", limits, "max_rows", len(rows),
                             f"sheet {sheet!r} has {len(rows):,} rows", "Split the upload.", sheet=sheet)
    width = max((len(r) for r in rows[:1]), default=0)
    if width > limits.max_columns:
        return limit_finding(path, "IMP-LIMIT-COLUMNS", limits, "max_columns", width,
                             f"sheet {sheet!r} has {width:,} columns", "Delete the unused columns.", sheet=sheet)
    return None


def _long_string_finding(path: str | Path, sheet: str, rows: list[list[Any]], limits: Limits) -> Any:
    """A refusal naming the first cell whose text is longer than ``max_string_length``."""
    found = long_string_cell(rows, limits.max_string_length)
    if found is None:
        return None
    ref, length = found
    return limit_finding(path, "IMP-LIMIT-STRING", limits, "max_string_length", length,
                         f"cell {sheet}!{ref} holds {length:,} characters of text",
                         f"Shorten the text in {sheet}!{ref} (a CRF field is never this long).", sheet=sheet)


# What calamine raises for a damaged file: its errors, and — a Rust panic on a malformed part (an
# index out of bounds in an xlsb record) — pyo3's PanicException, which derives from BaseException.
# Only the interrupts a user or the system sends are let through.
CALAMINE_FAILURES: tuple[type[BaseException], ...] = (BaseException,)
_INTERRUPTS = (KeyboardInterrupt, SystemExit, GeneratorExit)


_FORMAT_NAMES = {"xlsx": "Excel (xlsx)", "xlsm": "Excel (xlsm)", "xlsb": "Excel binary (xlsb)",
                 "ods": "OpenDocument (ods)", "xls": "Excel 97-2003 (xls)"}
_EXTENSIONS = {"xlsx": ".xlsx", "xlsm": ".xlsm", "xlsb": ".xlsb", "ods": ".ods", "xls": ".xls"}
_LIMIT_CODES = {"max_columns": "IMP-LIMIT-COLUMNS", "max_rows": "IMP-LIMIT-ROWS", "max_cells": "IMP-LIMIT-CELLS",
                "max_uncompressed_bytes": "IMP-LIMIT-UNCOMPRESSED", "max_error_cells": "IMP-LIMIT-ERROR-CELLS"}
_EXTENT_REMEDY = ("A cell far beyond the data makes the sheet that large: delete the unused rows and columns "
                  "after the data (select them, Delete), save and upload again.")
_ERRORS_REMEDY = ("Fix the formulas that fail (or paste their values instead of the formulas), save in Excel "
                  "and upload again.")


def _remedy(limit: str) -> str:
    return _ERRORS_REMEDY if limit == "max_error_cells" else _EXTENT_REMEDY


def open_workbook(path: Path, fmt: str) -> Any:
    """A python-calamine workbook read as ``fmt`` (found by content), whatever ``path`` is named.

    calamine picks its reader by the file extension; a file whose name says otherwise is opened
    through a symbolic link with the right extension in a private temporary folder.
    """
    import python_calamine as pc

    extension = _EXTENSIONS.get(fmt)
    if extension is None or path.suffix == extension:
        return pc.CalamineWorkbook.from_path(str(path))
    with tempfile.TemporaryDirectory(prefix="trialkit-") as folder:
        link = Path(folder) / f"upload{extension}"
        try:
            os.symlink(path.resolve(), link)
        except OSError:  # no symbolic links here: calamine tries each reader on the bytes
            with open(path, "rb") as handle:
                return pc.CalamineWorkbook.from_filelike(handle)
        return pc.CalamineWorkbook.from_path(str(link))


def _scan_package(path: Path, fmt: str, limits: Limits, result: FileRead,
                  ) -> tuple[int, dict[str, list[tuple[int, int, str, str]]]]:
    """Date system and error cells of an xlsb or ods workbook; sheets over a limit raise ScanLimit.

    A part that cannot be scanned raises ``_Unverified``: the workbook is refused (its size is
    unknown, and calamine reads an error cell as blank in every format), asking for an xlsx.
    """
    budget = [limits.max_uncompressed_bytes]
    errors: dict[str, list[tuple[int, int, str, str]]] = {}
    date_system = 1900
    with zipfile.ZipFile(path) as archive:
        infos = {info.filename.replace("\\", "/").lstrip("/"): info for info in archive.infolist()}
        try:
            if fmt == "xlsb":
                date_system, sheets = xlsb_sheets(archive, infos, budget)
                for name, part in sheets:
                    scan = scan_xlsb_sheet(archive, infos[part], budget, limits.max_error_cells, name)
                    check_extent(name, scan, limits)
                    if scan.errors:
                        errors[name] = scan.errors
            else:
                content = next((infos[n] for n in infos if n.lower() == "content.xml"), None)
                if content is None:
                    raise ScanError("no content.xml")
                for name, scan in scan_ods(archive, content, budget, limits).items():
                    check_extent(name, scan, limits)
                    if scan.errors:
                        errors[name] = scan.errors
        except ScanError as exc:
            # Unchecked, a sheet's size is unknown: calamine allocates it as one rectangle, and a crafted
            # one aborts the process (an allocation failure is no exception). So it is not read.
            raise _Unverified(f"{path}: the {_FORMAT_NAMES[fmt]} workbook's sheets are damaged ({exc}), so "
                              "neither their size nor their Excel error cells (#N/A, #DIV/0!) can be checked, "
                              "and the file is not read: open it in Excel or LibreOffice, save it as .xlsx "
                              "and upload that instead") from None
    return date_system, errors


_PASSWORD_MESSAGE = ("{path}: password protected: remove the password in Excel (File > Info > Protect Workbook) "
                     "and upload again")


def _biff5_message(path: str | Path, detail: str) -> str:
    return (f"{path}: an Excel 5.0/95 workbook (BIFF5), an .xls format from before Excel 97, that cannot be read "
            f"({detail}); open it in Excel or LibreOffice, save it as .xlsx and upload that")


def _scan_xls(path: Path, biff: str | None, limits: Limits) -> XlsScan | None:
    """The error cells of an xls workbook (None when it is encrypted); ``_Unverified`` when its
    compound file or workbook stream cannot be read, as for a damaged xlsb or ods."""
    import olefile

    stream_name = "Book" if biff == "BIFF5" else "Workbook"
    try:
        with olefile.OleFileIO(str(path)) as ole:
            if not ole.exists(stream_name):
                raise ScanError(f"no {stream_name} stream")
            stream = ole.openstream(stream_name).read()
        scan = scan_xls(stream, biff8=biff != "BIFF5", max_errors=limits.max_error_cells)
    except XlsEncrypted:
        return None
    except ScanLimit:
        raise
    except Exception as exc:  # a damaged or crafted compound file: olefile raises many kinds
        detail = str(exc) if isinstance(exc, ScanError) else f"{type(exc).__name__}: {exc}"
        raise _Unverified(f"{path}: the Excel 97-2003 (xls) workbook is damaged ({detail}), so its Excel error "
                          "cells (#N/A, #DIV/0!) cannot be checked and the file is not read: open it in Excel or "
                          "LibreOffice, save it as .xlsx and upload that instead", detail) from None
    for name, sheet in scan.sheets:
        # calamine reserves the cells a DIMENSIONS record claims, then allocates the sheet from A1 to
        # its farthest cell: a crafted record or cell makes it claim all memory (an abort, no error)
        rows, columns = sheet.claimed_rows, sheet.claimed_columns
        for limit, measured in (("max_columns", columns), ("max_rows", rows), ("max_cells", rows * columns)):
            if measured > getattr(limits, limit):
                raise ScanLimit(limit, measured, f"sheet {name!r} declares {rows:,} rows x {columns:,} columns = "
                                f"{rows * columns:,} cells (its DIMENSIONS record)")
        check_extent(name, sheet, limits)
    return scan


def _xls_errors(scan: XlsScan, names: list[str]) -> dict[str, list[tuple[int, int, str, str]]]:
    """The scanned error cells keyed by calamine's sheet names (the workbook's order; by name when
    calamine lists another number of sheets)."""
    errors: dict[str, list[tuple[int, int, str, str]]] = {}
    for position, (name, found) in enumerate(scan.sheets):
        if not found.errors:
            continue
        key = names[position] if len(names) == len(scan.sheets) else name
        errors[key] = found.errors
    return errors


class _Unverified(Exception):
    """An xlsb or ods workbook whose sheets could not be scanned (the message says what to do)."""


class _TooLarge(Exception):
    pass


def _scan_ooxml(path: Path, limits: Limits | None = None, runs: dict[str, int] | None = None,
                comments: dict[str, list[tuple[str, str]]] | None = None,
                ) -> tuple[int, dict[str, list[tuple[int, int, str, str]]]]:
    """Date system and the error cells of every worksheet, read from the package parts.

    ``runs`` (when given) receives the longest text run per sheet name and, under ``""``, of the
    shared strings: a cell can only exceed ``max_string_length`` where a run does. ``comments``
    (when given) receives each sheet's cell comments ``(ref, text)``, legacy and threaded, read
    within the same inflation budget.
    """
    limits = limits or Limits.from_env()
    budget = [limits.max_uncompressed_bytes]  # bytes still allowed to be inflated (lying directories)
    with zipfile.ZipFile(path) as archive:
        infos = {info.filename.replace("\\", "/").lstrip("/"): info for info in archive.infolist()}
        for info in infos.values():
            if info.file_size > limits.max_uncompressed_bytes:
                raise _TooLarge(f"part {info.filename} inflates to {info.file_size:,} bytes", info.file_size)
        lower = {name.lower(): name for name in infos}
        wb_name = lower.get("xl/workbook.xml")
        if wb_name is None:
            return 1900, {}
        if runs is not None:
            shared = lower.get("xl/sharedstrings.xml")
            if shared is not None and infos[shared].file_size > limits.max_string_length:
                runs[""] = longest_text_run(archive, infos[shared], limits.max_uncompressed_bytes)
        workbook = archive.read(infos[wb_name])
        date_system = 1904 if re.search(rb"date1904\s*=\s*[\"'](1|true)[\"']", workbook) else 1900
        rels_name = lower.get("xl/_rels/workbook.xml.rels")
        targets: dict[str, str] = {}
        if rels_name:
            for tag in _REL_TAG.findall(archive.read(infos[rels_name])):
                attrs = dict(_ATTR.findall(tag))
                if b"Id" in attrs and b"Target" in attrs:
                    target = attrs[b"Target"].decode("utf-8", "replace").replace("\\", "/")
                    target = target.lstrip("/") if target.startswith("/") else "xl/" + target
                    targets[attrs[b"Id"].decode()] = _normpath(target)
        errors: dict[str, list[tuple[int, int, str, str]]] = {}
        for tag in _SHEET_TAG.findall(workbook):
            attrs = {k.split(b":")[-1] if k != b"r:id" else k: v for k, v in _ATTR.findall(tag)}
            rid = next((v for k, v in _ATTR.findall(tag) if k.endswith(b":id")), None)
            name = attrs.get(b"name")
            if name is None or rid is None:
                continue
            sheet_name = _unescape(name.decode("utf-8", "replace"))
            part = targets.get(rid.decode())
            if part is None or part.lower() not in lower:
                continue
            tracker = TextRuns() if runs is not None else None
            extent = _Extent()
            found = _scan_errors(archive, infos[lower[part.lower()]], tracker, budget, extent,
                                 limits.max_error_cells, sheet_name)
            if extent.exact or _over(extent, limits):
                # The quick bound is over a limit (or cannot be had): count every cell as calamine
                # places it before refusing (or accepting) the sheet.
                exact = _exact_extent(archive, infos[lower[part.lower()]], budget)
                check_extent(sheet_name, exact, limits)
            if tracker is not None:
                runs[sheet_name] = tracker.longest
            if found:
                errors[sheet_name] = found
            if comments is not None:
                notes = _sheet_comments(archive, infos, lower, lower[part.lower()], budget)
                if notes:
                    comments[sheet_name] = notes
        return date_system, errors


# A comment's body runs to its closing tag and never over another comment's tag (linear, as above).
_COMMENT = re.compile(rb"<(?:\w+:)?(?:threadedComment|comment)\s[^<>]*?\bref\s*=\s*[\"']([A-Za-z]+\d+)[\"'][^<>]*>"
                      rb"([^<]*(?:<(?!/?(?:\w+:)?(?:threadedComment|comment)[\s>])[^<]*)*)"
                      rb"</(?:\w+:)?(?:threadedComment|comment)>")
_COMMENT_TEXT = re.compile(rb"<(?:\w+:)?(?:t|text)(?:\s[^<>]*)?>([^<]*)</(?:\w+:)?(?:t|text)>")


def _sheet_comments(archive: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo], lower: dict[str, str], part: str,
                    budget: list[int]) -> list[tuple[str, str]]:
    """``(cell ref, text)`` of the comments (legacy ``xl/comments*.xml`` and threaded) of one sheet."""
    folder, _, name = part.rpartition("/")
    rels = lower.get(f"{folder}/_rels/{name}.rels".lower())
    if rels is None:
        return []
    out: list[tuple[str, str]] = []
    for tag in _REL_TAG.findall(archive.read(infos[rels])[:1 << 20]):
        attrs = dict(_ATTR.findall(tag))
        kind = attrs.get(b"Type", b"").rsplit(b"/", 1)[-1].lower()
        if kind not in (b"comments", b"threadedcomment") or b"Target" not in attrs:
            continue
        target = attrs[b"Target"].decode("utf-8", "replace").replace("\\", "/")
        target = target.lstrip("/") if target.startswith("/") else _normpath(f"{folder}/{target}")
        info = infos.get(lower.get(target.lower(), ""))
        if info is None:
            continue
        budget[0] -= info.file_size
        if budget[0] < 0:
            raise _TooLarge(f"part {info.filename} inflates past the uncompressed limit", info.file_size)
        with archive.open(info) as stream:
            data = stream.read(info.file_size + 1)
        for ref, body in _COMMENT.findall(data):
            text = _unescape(b" ".join(_COMMENT_TEXT.findall(body)).decode("utf-8", "replace"))
            if text.strip():
                out.append((ref.decode(), text))
    return out


def _normpath(target: str) -> str:
    parts: list[str] = []
    for piece in target.split("/"):
        if piece == "..":
            if parts:
                parts.pop()
        elif piece not in ("", "."):
            parts.append(piece)
    return "/".join(parts)


def _unescape(text: str) -> str:
    return (text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
            .replace("&apos;", "'").replace("&amp;", "&"))


# A cell whose reference is "narrow" (one letter, at most five digits: "A1" .. "Z99999") needs no look:
# whatever their order, such cells cannot make calamine allocate more than 26 x 99,999 cells. Every
# other cell tag is read: a wide reference exactly; a cell without a reference (calamine then counts
# positions from its row) sends the sheet to the exact count.
_NARROW_COLUMNS, _NARROW_ROWS = 26, 99_999
# A cell tag "<c" that is not followed by ' r="A1".."Z99999"' (nor by more of a longer tag name, as in
# "<col"): a wide or odd reference, attributes in another order, or no reference at all.
_ODD_CELL = re.compile(rb"""<c(?! r="[A-Z]?\d{1,5}"|[^ >/\t\r\n])""")
_PREFIXED = re.compile(rb"<[\w.-]+:(?:worksheet|sheetData)\b")
_REF_TAGS = re.compile(rb"<(/?)(?:\w+:)?(row|c)(?=[\s/>])([^<>]*?)(/?)>")
_REF_ATTR = re.compile(rb"""\sr\s*=\s*["']\s*([A-Za-z]*)(\d*)\s*["']""")
_CELL_CLOSE = re.compile(rb"\s*</(?:\w+:)?c>")


def _ref_number(letters: bytes, digits: bytes) -> tuple[int, int]:
    """(row, column), 1-based, of a reference's letters and digits (absurd lengths clamp high)."""
    column = _col_index(letters.upper()) + 1 if 0 < len(letters) <= 4 else (10**9 if letters else 0)
    row = int(digits) if 0 < len(digits) <= 10 else (10**12 if digits else 0)
    return row, column


@dataclass
class _Extent(SheetScan):
    """A quick upper bound of a sheet's used range; ``exact`` asks for the full count."""

    exact: bool = False


def _odd_tags(data: bytes, extent: _Extent) -> None:
    """Widen ``extent`` with the cells of ``data`` that are not narrow (see :data:`_ODD_CELL`).

    Rows need no look of their own: a row number matters to calamine only for a cell without a
    reference, and such a cell sends the sheet to the exact count.
    """
    if _PREFIXED.search(data, 0, 4096):
        extent.exact = True  # tags with a namespace prefix ("<x:c"): count them all
        return
    for match in _ODD_CELL.finditer(data):
        following = data.find(b"<", match.end())  # the next tag (a tag holds no "<")
        closing = data.find(b">", match.end(), following if following >= 0 else len(data))
        if closing < 0:
            if following >= 0:
                extent.exact = True  # a tag without its ">": count every cell as calamine places it
                return
            continue  # cut by the block end: the next block starts with it again
        ref = _REF_ATTR.search(data, match.end() - 1, closing)
        if ref is None or not (ref.group(1) or ref.group(2)):
            extent.exact = True  # no reference: calamine places it by counting
            return
        if data[closing - 1:closing] == b"/" or _CELL_CLOSE.match(data, closing + 1):
            continue  # empty (formatting only): calamine keeps nothing of it
        row, column = _ref_number(*ref.groups())
        extent.rows = max(extent.rows, row)
        extent.columns = max(extent.columns, column)


def _over(extent: SheetScan, limits: Limits) -> bool:
    return (extent.columns > limits.max_columns or extent.rows > limits.max_rows
            or extent.rows * extent.columns > limits.max_cells)


def _exact_extent(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: list[int]) -> SheetScan:
    """Rows and columns from A1 to the farthest cell that holds something, counting as calamine does
    (a reference when there is one, else the position after the previous cell or row)."""
    extent = SheetScan()
    row = column = 0  # 0-based position of the next cell
    tail = b""
    with archive.open(info) as stream:
        while True:
            block = stream.read(8 << 20)
            budget[0] -= len(block)
            if budget[0] < 0:
                raise _TooLarge(f"part {info.filename} inflates past the uncompressed limit", info.file_size)
            data = tail + block
            cut = data.rfind(b"<") if block else len(data)
            if cut < 0:
                cut = 0
            work, tail = data[:cut], data[cut:]
            for match in _REF_TAGS.finditer(work):
                closing, name, attrs, empty = match.groups()
                if name == b"row":
                    if closing:
                        row, column = row + 1, 0
                        continue
                    ref = _REF_ATTR.search(attrs)
                    if ref is not None and ref.group(2):
                        row = _ref_number(b"", ref.group(2))[0] - 1
                    column = 0
                    if empty:
                        row += 1
                    continue
                if closing:
                    continue
                ref = _REF_ATTR.search(attrs)
                if ref is not None and (ref.group(1) or ref.group(2)):
                    cell_row, cell_column = _ref_number(*ref.groups())
                    at = (cell_row - 1, cell_column - 1)
                else:
                    at = (row, column)
                column = at[1] + 1
                holds = not empty and not work.startswith(b"</", match.end())
                if holds:
                    extent.rows = max(extent.rows, at[0] + 1)
                    extent.columns = max(extent.columns, at[1] + 1)
            if not block:
                break
    return extent


def _uncalculated(data: bytes) -> list[tuple[int, int, str, str]]:
    """Cells of ``data`` holding a formula without its result: ``(row, column, ref, "=FORMULA")``
    (``"="`` alone for a shared formula's cell, which does not repeat the formula)."""
    found = []
    for match in _UNCALCULATED.finditer(data):
        ref = _REF.search(match.group(1))
        if ref is None or (match.group(3) and _TEXT_RESULT.search(match.group(1))):
            continue
        formula = _unescape((match.group(2) or b"").decode("utf-8", "replace")).strip()
        found.append((int(ref.group(2)), _col_index(ref.group(1)), (ref.group(1) + ref.group(2)).decode(),
                      UNCALCULATED_PREFIX + formula[:200]))
    return found


def _scan_errors(archive: zipfile.ZipFile, info: zipfile.ZipInfo, runs: TextRuns | None = None,
                 budget: list[int] | None = None, extent: _Extent | None = None,
                 max_errors: int | None = None, sheet: str | None = None) -> list[tuple[int, int, str, str]]:
    """Error cells of one worksheet part, streamed in blocks (a cell never spans > 64 KiB).

    ``runs`` tracks the longest text run on the way; ``budget`` (a one-item list) is the number of
    bytes still allowed to inflate, so a part that inflates past what the directory claimed stops.
    ``extent`` (when given) receives a quick upper bound of the sheet's used range: narrow
    references count as 26 columns x 99,999 rows, the others exactly (see :func:`_odd_tags`).
    """
    found: list[tuple[int, int, str, str]] = []
    tail = b""
    quote: bytes | None = None
    formulas = prefixed = False
    with archive.open(info) as stream:
        while True:
            block = stream.read(8 << 20)
            if not block:
                break
            if budget is not None:
                budget[0] -= len(block)
                if budget[0] < 0:
                    raise _TooLarge(f"part {info.filename} inflates past the uncompressed limit", info.file_size)
            if runs is not None and (b"inlineStr" in block or runs.longest or b"<is>" in block):
                runs.feed(block)
            data = tail + block
            if quote is None:  # writers quote every attribute the same way: look for that one only
                quote = b"'" if b"='" in data[:65536] and b'="' not in data[:65536] else b'"'
                prefixed = _PREFIXED.search(data, 0, 4096) is not None
            if extent is not None and not extent.exact:
                _odd_tags(data, extent)
            # Formulas end in "</f>" (a shared formula's other cells are "<f .../>", after it): one
            # search per block finds a sheet with formulas; from then on every block is looked at.
            formulas = formulas or b"</f>" in data or (prefixed and b":f>" in data)
            if formulas:
                found += _uncalculated(data)
                check_errors(sheet or info.filename, len({cell[2] for cell in found}), max_errors)
            if quote + b"e" + quote not in data:
                tail = data[-65536:]
                continue
            last_end = 0
            for match in _ERROR_TAG.finditer(data):
                window = match.end() + 65536  # a cell never spans more (searches stay linear)
                close = data.find(b"</", match.end(), window)
                cell_end = data.find(b"</c>", match.end(), window)
                if cell_end < 0 and close < 0 and window >= len(data):
                    break  # the cell continues in the next block
                ref = _REF.search(match.group(0))
                value = _VALUE.search(data, match.end(), cell_end if cell_end > 0 else min(window, len(data)))
                if ref:
                    row = int(ref.group(2))
                    col = _col_index(ref.group(1))
                    cell = (ref.group(1) + ref.group(2)).decode()
                    text = value.group(1).decode("utf-8", "replace") if value else "#ERROR"
                    found.append((row, col, cell, _unescape(text)))
                last_end = cell_end + 4 if cell_end > 0 else match.end()
            check_errors(sheet or info.filename, len({cell[2] for cell in found}), max_errors)
            tail = data[max(last_end, len(data) - 65536):]
    if extent is not None:  # any narrow cell may sit anywhere up to Z99999
        extent.rows = max(extent.rows, _NARROW_ROWS)
        extent.columns = max(extent.columns, _NARROW_COLUMNS)
    # A block boundary can make a cell appear twice; keep one entry per cell.
    unique = {cell[2]: cell for cell in found}
    return sorted(unique.values())
