"""Scans of xlsb, ods and xls workbooks before calamine reads them: error cells and used ranges.

python-calamine returns ``""`` for an Excel error cell in every format (its ``#N/A`` is a blank),
and it allocates a sheet as one rectangle from A1 to its last cell. So, as for xlsx
(:mod:`trialkit.importers.excel`), the sheet parts are read here first, in bounded blocks, for

- the **error cells** (row, column, reference, ``#DIV/0!`` …), reported instead of silent blanks;
- the **extent** of the cells that hold something (rows × columns, counting ODS repeats), refused
  before calamine allocates a rectangle of billions of cells.

xlsb (MS-XLSB) parts are sequences of records — a type (1-2 bytes of 7 bits) and a size (1-4 bytes
of 7 bits), then the data. A cell record starts with its column (4 bytes); its row is the last
``BrtRowHdr``. ``BrtCellError`` (0x03) and ``BrtFmlaError`` (0x0B) carry the error code at byte 8.

ods ``content.xml`` is scanned with a tag pattern (no XML parser, no entities): ``table:table``,
``table:table-row`` (``number-rows-repeated``) and ``table:table-cell`` (``number-columns-repeated``,
``office:value-type``, ``calcext:value-type="error"`` with the error text in ``text:p``).

xls (BIFF8, and BIFF5) workbook streams are sequences of records (type and size, 2 bytes each): the
globals list the sheets (``BOUNDSHEET``: offset and name) and the date system; a sheet's
``BOOLERR`` records holding an error and its ``FORMULA`` records whose cached result is an error
are its error cells (:func:`scan_xls`; the compound file around the stream is read with olefile).

The xlsb and ods scans raise :class:`ScanLimit` when a part inflates past the byte budget or a sheet's extent is
over a limit, and :class:`ScanError` for a part that is not what it claims.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field

from trialkit.importers.limits import Limits, column_letters

MiB = 1024 * 1024
XLSB_ERRORS = {0x00: "#NULL!", 0x07: "#DIV/0!", 0x0F: "#VALUE!", 0x17: "#REF!", 0x1D: "#NAME?", 0x24: "#NUM!",
               0x2A: "#N/A", 0x2B: "#GETTING_DATA"}
_XLSB_VALUE_CELLS = {0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B}
EXCEL_LAST_ROW = 1_048_576


class ScanError(Exception):
    """A part that cannot be scanned (damaged, or not the structure its name claims)."""


class ScanLimit(Exception):
    """A part or a sheet over a limit: ``args`` = (limit field, measured value, what)."""


@dataclass
class SheetScan:
    """What a scan found in one sheet: error cells ``(row, column index, ref, text)`` (1-based rows,
    0-based columns) and the extent of the cells holding something (rows, columns from A1)."""

    errors: list[tuple[int, int, str, str]] = field(default_factory=list)
    rows: int = 0
    columns: int = 0


def check_errors(name: str, count: int, limit: int | None) -> None:
    """Raise :class:`ScanLimit` when a sheet holds more error cells than ``limit`` (None: no limit)."""
    if limit is not None and count > limit:
        raise ScanLimit("max_error_cells", count, f"sheet {name!r} holds more than {limit:,} Excel error cells "
                        "(or formulas never calculated)")


def check_extent(name: str, scan: SheetScan, limits: Limits) -> None:
    """Raise :class:`ScanLimit` when a sheet's used range is over ``max_rows``/``max_columns``/``max_cells``."""
    if scan.columns > limits.max_columns:
        raise ScanLimit("max_columns", scan.columns, f"sheet {name!r} has a cell in column "
                        f"{column_letters(scan.columns - 1)} ({scan.columns:,} columns)")
    if scan.rows > limits.max_rows:
        raise ScanLimit("max_rows", scan.rows, f"sheet {name!r} has a cell in row {scan.rows:,}")
    cells = scan.rows * scan.columns
    if cells > limits.max_cells:
        raise ScanLimit("max_cells", cells, f"sheet {name!r} spans {scan.rows:,} rows x {scan.columns:,} "
                        f"columns = {cells:,} cells from A1 to {column_letters(scan.columns - 1)}{scan.rows}")


def _blocks(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: list[int]) -> Iterator[bytes]:
    """The inflated part in 8 MiB blocks, counted against ``budget`` (a one-item list of bytes left)."""
    with archive.open(info) as stream:
        while True:
            block = stream.read(8 * MiB)
            if not block:
                return
            budget[0] -= len(block)
            if budget[0] < 0:
                raise ScanLimit("max_uncompressed_bytes", info.file_size,
                                f"part {info.filename} inflates past the uncompressed limit")
            yield block


# ------------------------------------------------------------------------------------------------
# xlsb


def _records(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: list[int]) -> Iterator[tuple[int, bytes]]:
    """``(record type, data)`` of an xlsb part, streamed."""
    buffer = b""
    position = 0
    for block in _blocks(archive, info, budget):
        buffer = buffer[position:] + block
        position = 0
        end = len(buffer)
        while True:
            start = position
            if start >= end:
                break
            first = buffer[start]
            if first & 0x80:
                if start + 1 >= end:
                    break
                typ = (first & 0x7F) | ((buffer[start + 1] & 0x7F) << 7)
                cursor = start + 2
            else:
                typ, cursor = first, start + 1
            size = 0
            for shift in range(4):
                if cursor >= end:
                    size = -1
                    break
                byte = buffer[cursor]
                cursor += 1
                size |= (byte & 0x7F) << (7 * shift)
                if not byte & 0x80:
                    break
            if size < 0 or cursor + size > end:
                position = start
                break
            yield typ, buffer[cursor:cursor + size]
            position = cursor + size
    if position < len(buffer):
        raise ScanError(f"part {info.filename} ends inside a record")


def _wide_string(data: bytes, offset: int) -> tuple[str, int]:
    """An XLWideString at ``offset``: (text, offset after it)."""
    if offset + 4 > len(data):
        raise ScanError("a string runs past its record")
    count = int.from_bytes(data[offset:offset + 4], "little")
    if count == 0xFFFFFFFF:
        return "", offset + 4
    end = offset + 4 + 2 * count
    if end > len(data):
        raise ScanError("a string runs past its record")
    return data[offset + 4:end].decode("utf-16-le", "replace"), end


def xlsb_sheets(archive: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo],
                budget: list[int]) -> tuple[int, list[tuple[str, str]]]:
    """The date system and ``(sheet name, part name)`` of an xlsb workbook, from ``xl/workbook.bin``."""
    lower = {name.lower(): name for name in infos}
    book = lower.get("xl/workbook.bin")
    if book is None:
        raise ScanError("no xl/workbook.bin")
    targets: dict[str, str] = {}
    rels = lower.get("xl/_rels/workbook.bin.rels")
    if rels is not None:
        text = archive.read(infos[rels])[:4 * MiB]
        for tag in re.findall(rb"<(?:\w+:)?Relationship\s[^>]*>", text):
            attrs = dict(re.findall(rb"([\w:]+)\s*=\s*[\"']([^\"']*)[\"']", tag))
            if b"Id" in attrs and b"Target" in attrs:
                target = attrs[b"Target"].decode("utf-8", "replace").replace("\\", "/").lstrip("/")
                targets[attrs[b"Id"].decode()] = target if target.startswith("xl/") else "xl/" + target
    date_system = 1900
    sheets: list[tuple[str, str]] = []
    for typ, data in _records(archive, infos[book], budget):
        if typ == 0x0099 and data:  # BrtWbProp
            date_system = 1904 if data[0] & 1 else 1900
        elif typ == 0x009C:  # BrtBundleSh: hsState, iTabID, strRelID, strName
            relid, offset = _wide_string(data, 8)
            name, _ = _wide_string(data, offset)
            part = targets.get(relid)
            if part is not None and part.lower() in lower:
                sheets.append((name, lower[part.lower()]))
        elif typ == 0x0090:  # BrtEndBundleShs
            break
    return date_system, sheets


def scan_xlsb_sheet(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: list[int],
                    max_errors: int | None = None, sheet: str | None = None) -> SheetScan:
    """Error cells and extent of one xlsb worksheet part (see the module docstring); more than
    ``max_errors`` error cells raise :class:`ScanLimit` naming ``sheet`` (else the part)."""
    scan = SheetScan()
    row = 0
    for typ, data in _records(archive, info, budget):
        if typ == 0x0000:  # BrtRowHdr
            if len(data) < 4:
                raise ScanError("a row header record is too short")
            row = int.from_bytes(data[:4], "little")
            if row >= EXCEL_LAST_ROW:
                # calamine stops reading here without a word: every later row would be lost.
                raise ScanLimit("max_rows", row + 1, f"part {info.filename} has a row {row + 1:,} beyond "
                                f"Excel's last row ({EXCEL_LAST_ROW:,})")
        elif typ in _XLSB_VALUE_CELLS:
            if len(data) < 8:
                raise ScanError("a cell record is too short")
            column = int.from_bytes(data[:4], "little")
            scan.rows = max(scan.rows, row + 1)
            scan.columns = max(scan.columns, column + 1)
            if typ in (0x03, 0x0B) and len(data) > 8:
                ref = f"{column_letters(column)}{row + 1}"
                scan.errors.append((row + 1, column, ref, XLSB_ERRORS.get(data[8], "#ERROR")))
                check_errors(sheet or info.filename, len(scan.errors), max_errors)
        elif typ == 0x0092:  # BrtEndSheetData
            break
    return scan


# ------------------------------------------------------------------------------------------------
# ods

# [^<>], not [^>]: a tag never holds "<", and crafted tag starts without ">" stay linear to scan.
_ODS_TAG = re.compile(rb"<(/?)(?:[\w.-]+:)?(table-row|table-cell|covered-table-cell|table)(?=[\s/>])([^<>]*?)(/?)>")
_ODS_ATTR = re.compile(rb"([\w.:-]+)\s*=\s*[\"']([^\"']*)[\"']")
_TEXT = re.compile(rb"<[^<>]*>")
_CELL_END = re.compile(rb"</(?:[\w.-]+:)?(?:covered-)?table-cell>")
_ODS_END = re.compile(rb"</(?:[\w.-]+:)?document-content>\s*$")


def _attrs(raw: bytes) -> dict[bytes, bytes]:
    """Attributes by local name; ``value-type`` keeps ``error`` when any namespace says so."""
    out: dict[bytes, bytes] = {}
    for qualified, value in _ODS_ATTR.findall(raw):
        local = qualified.rsplit(b":", 1)[-1]
        if local == b"value-type" and out.get(local) == b"error":
            continue
        out[local] = value
    return out


def _repeat(attrs: dict[bytes, bytes], name: bytes) -> int:
    value = attrs.get(name)
    if value is None:
        return 1
    try:
        return max(1, int(value))
    except ValueError:
        return 1


class _OdsState:
    """Where the scan of ``content.xml`` is: table, row (0-based) and its repeat, column."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.scans: dict[str, SheetScan] = {}
        self.current: SheetScan | None = None
        self.name = ""
        self.row = 0
        self.row_repeat = 1
        self.column = 0

    def feed(self, work: bytes) -> None:
        for match in _ODS_TAG.finditer(work):
            closing, kind, raw, empty = match.groups()
            if kind == b"table":
                if closing:
                    if self.current is not None:
                        check_extent(self.name, self.current, self.limits)
                    self.current = None
                else:
                    self.name = _attrs(raw).get(b"name", b"").decode("utf-8", "replace")
                    self.current = self.scans.setdefault(self.name, SheetScan())
                    self.row = 0
                continue
            if self.current is None:
                continue
            if kind == b"table-row":
                if closing:
                    self.row += self.row_repeat
                    continue
                self.row_repeat = _repeat(_attrs(raw), b"number-rows-repeated")
                self.column = 0
                if empty:
                    self.row += self.row_repeat
                continue
            if closing:
                continue
            attrs = _attrs(raw)
            repeat = _repeat(attrs, b"number-columns-repeated")
            if b"value-type" in attrs:
                scan = self.current
                scan.rows = max(scan.rows, self.row + self.row_repeat)
                scan.columns = max(scan.columns, self.column + repeat)
                if scan.columns > self.limits.max_columns or scan.rows > self.limits.max_rows or \
                        scan.rows * scan.columns > self.limits.max_cells:
                    check_extent(self.name, scan, self.limits)
                if attrs[b"value-type"] == b"error" and not empty:
                    close = _CELL_END.search(work, match.end(), match.end() + 65536)  # linear, as the tags
                    text = _TEXT.sub(b"", work[match.end():close.start() if close else match.end()]).strip()
                    shown = text.decode("utf-8", "replace")[:40] or "#ERROR"
                    check_errors(self.name, len(scan.errors) + self.row_repeat * repeat, self.limits.max_error_cells)
                    for extra_row in range(min(self.row_repeat, 100)):
                        for extra_col in range(min(repeat, 100)):
                            row, col = self.row + extra_row + 1, self.column + extra_col
                            scan.errors.append((row, col, f"{column_letters(col)}{row}", shown))
            self.column += repeat


def scan_ods(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: list[int],
             limits: Limits) -> dict[str, SheetScan]:
    """Error cells and extent of every table of an ods ``content.xml``; checks each against ``limits``."""
    state = _OdsState(limits)
    checker = _WellFormed(info.filename)
    tail = b""
    for block in _blocks(archive, info, budget):
        checker.feed(block)
        data = tail + block
        # Work on whole rows where possible: the text of an error cell follows its tag.
        cut = data.rfind(b"<table:table-row")
        if cut <= 0:
            cut = data.rfind(b"<")
        if cut <= 0:
            tail = data
            if len(tail) > 64 * MiB:
                raise ScanError("content.xml holds a single element of more than 64 MiB")
            continue
        state.feed(data[:cut])
        tail = data[cut:]
    state.feed(tail)
    if not _ODS_END.search(tail[-4096:]):
        # A document cut short: calamine's reader never returns from some of these (a 791-byte
        # file cut inside a table hung it), so it must not see one.
        raise ScanError("content.xml ends before its closing tag (the file is cut short)")
    checker.close()
    return state.scans


class _WellFormed:
    """A streaming well-formedness check (expat) of an XML part. calamine's ods reader never returns
    from some malformed documents (a table closed by a misspelt tag, ``</tyble:table>``), so it must
    only see well-formed ones. A document type declaration is refused outright (the package
    preflight refuses entities already)."""

    def __init__(self, name: str) -> None:
        from xml.parsers import expat

        self.name = name
        self.error = expat.ExpatError
        self.parser = expat.ParserCreate()
        self.parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self.parser.StartDoctypeDeclHandler = self._doctype

    def _doctype(self, *args: object) -> None:
        raise ScanError(f"{self.name} declares a document type")

    def feed(self, block: bytes) -> None:
        try:
            self.parser.Parse(block, False)
        except self.error as exc:
            raise ScanError(f"{self.name} is not well-formed XML ({exc})") from None

    def close(self) -> None:
        self.feed(b"")
        try:
            self.parser.Parse(b"", True)
        except self.error as exc:
            raise ScanError(f"{self.name} is not well-formed XML ({exc})") from None


# ------------------------------------------------------------------------------------------------
# xls (BIFF8, and BIFF5 of Excel 5.0/95)

_BIFF_BOF, _BIFF_EOF, _BIFF_BOUNDSHEET, _BIFF_DATEMODE, _BIFF_FILEPASS = 0x0809, 0x000A, 0x0085, 0x0022, 0x002F
_BIFF_BOOLERR, _BIFF_FORMULA, _BIFF_DIMENSIONS = 0x0205, 0x0006, 0x0200
#: Records of one cell each with its row and column in their first 4 bytes (NUMBER, LABEL, LABELSST,
#: RK, RSTRING, BLANK, BOOLERR, FORMULA), and those of a run of cells in a row (MULRK, MULBLANK:
#: row, first column, ..., last column in their last 2 bytes).
_BIFF_CELLS = {0x0203, 0x0204, 0x00FD, 0x027E, 0x00D6, 0x0201, 0x0205, 0x0006}
_BIFF_CELL_RUNS = {0x00BD, 0x00BE}


class XlsEncrypted(Exception):
    """An xls workbook whose records are encrypted (a ``FILEPASS`` record): password protected."""


@dataclass
class XlsSheet(SheetScan):
    """One sheet of an xls: its error cells, the extent of its cells (rows × columns from A1) and
    what its DIMENSIONS record claims (``claimed_rows`` × ``claimed_columns``: calamine reserves
    that many cells before reading any)."""

    claimed_rows: int = 0
    claimed_columns: int = 0


@dataclass
class XlsScan:
    """What :func:`scan_xls` found: the date system and, per sheet in workbook order, its name and
    its scan (:class:`XlsSheet`)."""

    date_system: int = 1900
    sheets: list[tuple[str, XlsSheet]] = field(default_factory=list)


def _claim(data: bytes, biff8: bool) -> tuple[int, int]:
    """Rows and columns a DIMENSIONS record spans (first to last + 1); ScanError when it is impossible."""
    if biff8 and len(data) >= 12:
        first_row, end_row = int.from_bytes(data[0:4], "little"), int.from_bytes(data[4:8], "little")
        first_col, end_col = int.from_bytes(data[8:10], "little"), int.from_bytes(data[10:12], "little")
    elif len(data) >= 8:
        first_row, end_row = int.from_bytes(data[0:2], "little"), int.from_bytes(data[2:4], "little")
        first_col, end_col = int.from_bytes(data[4:6], "little"), int.from_bytes(data[6:8], "little")
    else:
        raise ScanError("a DIMENSIONS record is too short")
    if end_row < first_row or end_col < first_col:
        raise ScanError(f"the DIMENSIONS record claims rows {first_row}-{end_row}, columns {first_col}-{end_col}")
    return end_row - first_row, end_col - first_col


def _biff_records(stream: bytes, start: int) -> Iterator[tuple[int, bytes]]:
    """``(record type, data)`` from ``start`` to the end of the substream that starts there (its BOF
    to the matching EOF, charts embedded in a sheet being substreams of their own)."""
    position, depth, end = start, 0, len(stream)
    while position + 4 <= end:
        typ = stream[position] | stream[position + 1] << 8
        size = stream[position + 2] | stream[position + 3] << 8
        data = stream[position + 4:position + 4 + size]
        if len(data) < size:
            raise ScanError(f"a record at byte {position} runs past the end of the workbook stream")
        position += 4 + size
        if typ == _BIFF_BOF:
            depth += 1
        elif depth == 0:
            raise ScanError(f"no BOF record at byte {start}")
        yield typ, data
        if typ == _BIFF_EOF:
            depth -= 1
            if depth == 0:
                return
    raise ScanError("the workbook stream ends inside a sheet (no EOF record)")


def _sheet_name(data: bytes, biff8: bool) -> str:
    """The name of a BOUNDSHEET record (BIFF8: ShortXLUnicodeString; BIFF5: bytes in the code page)."""
    if len(data) < 7:
        raise ScanError("a sheet record is too short")
    count = data[6]
    if not biff8:
        return data[7:7 + count].decode("cp1252", "replace")
    if len(data) < 8:
        raise ScanError("a sheet record is too short")
    if data[7] & 1:
        return data[8:8 + 2 * count].decode("utf-16-le", "replace")
    return data[8:8 + count].decode("latin-1")


def scan_xls(stream: bytes, *, biff8: bool = True, max_errors: int | None = None) -> XlsScan:
    """The error cells of every sheet of an xls workbook stream (the ``Workbook`` stream of the
    compound file; ``Book`` for BIFF5) — ``BOOLERR`` records holding an error and ``FORMULA``
    records whose cached result is one — with the extent of its cells and its DIMENSIONS claim. Raises :class:`XlsEncrypted` for an encrypted workbook and
    :class:`ScanError` for a stream that is not a sequence of BIFF records.
    """
    scan = XlsScan()
    sheets: list[tuple[int, str]] = []
    for typ, data in _biff_records(stream, 0):
        if typ == _BIFF_FILEPASS:
            raise XlsEncrypted
        if typ == _BIFF_DATEMODE and len(data) >= 2 and data[0] == 1:
            scan.date_system = 1904
        elif typ == _BIFF_BOUNDSHEET:
            if len(data) < 4:
                raise ScanError("a sheet record is too short")
            sheets.append((int.from_bytes(data[:4], "little"), _sheet_name(data, biff8)))
    for offset, name in sheets:
        found = XlsSheet()
        if offset >= len(stream):
            raise ScanError(f"sheet {name!r} starts past the end of the workbook stream")
        depth = 0
        for typ, data in _biff_records(stream, offset):
            depth += typ == _BIFF_BOF
            depth -= typ == _BIFF_EOF
            if depth != 1:
                continue  # a chart embedded in the sheet
            if typ == _BIFF_DIMENSIONS:
                rows, columns = _claim(data, biff8)
                found.claimed_rows, found.claimed_columns = max(found.claimed_rows, rows), max(found.claimed_columns,
                                                                                              columns)
                continue
            if (typ in _BIFF_CELLS or typ in _BIFF_CELL_RUNS) and len(data) >= 6:
                last = int.from_bytes(data[-2:] if typ in _BIFF_CELL_RUNS else data[2:4], "little")
                found.rows = max(found.rows, int.from_bytes(data[:2], "little") + 1)
                found.columns = max(found.columns, last + 1)
            if typ == _BIFF_BOOLERR and len(data) >= 8 and data[7] == 1:
                code = data[6]
            elif typ == _BIFF_FORMULA and len(data) >= 14 and data[12:14] == b"\xff\xff" and data[6] == 2:
                code = data[8]  # the cached result is an error (FormulaValue: type 2, code in byte 2)
            else:
                continue
            row, column = int.from_bytes(data[:2], "little"), int.from_bytes(data[2:4], "little")
            found.errors.append((row + 1, column, f"{column_letters(column)}{row + 1}",
                                 XLSB_ERRORS.get(code, "#ERROR")))
            check_errors(name, len(found.errors), max_errors)
        scan.sheets.append((name, found))
    return scan
