"""Streaming scans of xlsb and ods workbooks before calamine reads them: error cells and used ranges.

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

Both raise :class:`ScanLimit` when a part inflates past the byte budget or a sheet's extent is
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


def scan_xlsb_sheet(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: list[int]) -> SheetScan:
    """Error cells and extent of one xlsb worksheet part (see the module docstring)."""
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
        elif typ == 0x0092:  # BrtEndSheetData
            break
    return scan


# ------------------------------------------------------------------------------------------------
# ods

_ODS_TAG = re.compile(rb"<(/?)(?:[\w.-]+:)?(table-row|table-cell|covered-table-cell|table)(?=[\s/>])([^>]*?)(/?)>")
_ODS_ATTR = re.compile(rb"([\w.:-]+)\s*=\s*[\"']([^\"']*)[\"']")
_TEXT = re.compile(rb"<[^>]*>")
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
                    close = _CELL_END.search(work, match.end())
                    text = _TEXT.sub(b"", work[match.end():close.start() if close else match.end()]).strip()
                    shown = text.decode("utf-8", "replace")[:40] or "#ERROR"
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
