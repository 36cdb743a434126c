"""Write the workbook formats no Python library writes: xlsb, ods and Excel 5.0/95 (test helper).

Each writer produces the smallest file the format's specification allows with the parts calamine
reads: cells are text (``str``), numbers (``float``) or Excel errors (:class:`Err`).

- :func:`write_xlsb` — MS-XLSB: a zip of binary record streams (``xl/workbook.bin``, one
  ``xl/worksheets/sheetN.bin`` per sheet); an :class:`Err` is a ``BrtCellError`` record, or a
  ``BrtFmlaError`` with ``formula=True``.
- :func:`write_ods` — OpenDocument: ``mimetype`` first and stored, ``content.xml`` with
  ``table:table``/``table-row``/``table-cell``; an :class:`Err` is the ``calcext:value-type="error"``
  cell LibreOffice writes for a failed formula. ``extra_rows`` appends raw row XML (repeats).
- :func:`biff5_stream` / :func:`biff8_stream` and :func:`write_cfb` — an OLE2 compound file holding a
  BIFF5 ``Book`` stream (Excel 5.0/95) or a BIFF8 ``Workbook`` stream (Excel 97-2003); an
  :class:`Err` is a ``BOOLERR`` record, or a ``FORMULA`` record whose cached result is the error with
  ``formula=True``.
"""

from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

ERROR_CODES = {"#NULL!": 0x00, "#DIV/0!": 0x07, "#VALUE!": 0x0F, "#REF!": 0x17, "#NAME?": 0x1D, "#NUM!": 0x24,
               "#N/A": 0x2A}


@dataclass(frozen=True)
class Err:
    """An Excel error cell (``Err("#N/A")``); ``formula`` for an error that is a formula's result."""

    text: str
    formula: bool = False


# ------------------------------------------------------------------------------------------------
# xlsb


def _record(typ: int, data: bytes = b"") -> bytes:
    head = bytes([typ]) if typ < 0x80 else bytes([(typ & 0x7F) | 0x80, typ >> 7])
    size, length = len(data), bytearray()
    while True:
        byte = size & 0x7F
        size >>= 7
        length.append(byte | (0x80 if size else 0))
        if not size:
            break
    return head + bytes(length) + data


def _wide(text: str) -> bytes:
    return struct.pack("<I", len(text)) + text.encode("utf-16-le")


def _xlsb_sheet(rows: list[list[object]], row_numbers: list[int] | None = None) -> bytes:
    width = max((len(r) for r in rows), default=1)
    numbers = row_numbers or list(range(len(rows)))
    out = [_record(0x81), _record(0x94, struct.pack("<IIII", 0, max(numbers, default=0), 0, max(width - 1, 0))),
           _record(0x91)]
    for number, row in zip(numbers, rows, strict=True):
        out.append(_record(0x00, struct.pack("<IIHHBI", number, 0, 0x12C, 0, 0, 0)[:17].ljust(17, b"\0")))
        for column, value in enumerate(row):
            cell = struct.pack("<II", column, 0)
            if value is None or value == "":
                continue
            if isinstance(value, Err):
                code = ERROR_CODES[value.text]
                if value.formula:  # value, grbitFlags, an empty formula (cce = 0, cb = 0)
                    out.append(_record(0x0B, cell + bytes([code]) + b"\0\0" + struct.pack("<II", 0, 0)))
                else:
                    out.append(_record(0x03, cell + bytes([code])))
            elif isinstance(value, (int, float)):
                out.append(_record(0x05, cell + struct.pack("<d", float(value))))
            else:
                out.append(_record(0x06, cell + _wide(str(value))))
    out += [_record(0x92), _record(0x82)]
    return b"".join(out)


def write_xlsb(path: Path, sheets: dict[str, list[list[object]]], *, hidden: set[str] = frozenset(),
               row_numbers: dict[str, list[int]] | None = None) -> Path:
    """An xlsb workbook: one sheet per entry, row 1 = the first list (0-based ``row_numbers`` optional)."""
    book = [_record(0x83), _record(0x99, struct.pack("<I", 0) + struct.pack("<I", 0) + _wide("")), _record(0x8F)]
    rels = []
    for i, name in enumerate(sheets, start=1):
        state = 1 if name in hidden else 0
        book.append(_record(0x9C, struct.pack("<II", state, i) + _wide(f"rId{i}") + _wide(name)))
        rels.append(f'<Relationship Id="rId{i}" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                    f'relationships/worksheet" Target="worksheets/sheet{i}.bin"/>')
    book += [_record(0x90), _record(0x9D, b"\0" * 26), _record(0x84)]
    types = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
             '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
             '<Default Extension="bin" ContentType="application/vnd.ms-excel.sheet.binary.macroEnabled.main"/>'
             '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
             '<Default Extension="xml" ContentType="application/xml"/>'
             + "".join(f'<Override PartName="/xl/worksheets/sheet{i}.bin" '
                       'ContentType="application/vnd.ms-excel.worksheet"/>' for i in range(1, len(sheets) + 1))
             + "</Types>")
    root_rels = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                 '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                 '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
                 'relationships/officeDocument" Target="xl/workbook.bin"/></Relationships>')
    book_rels = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                 '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                 + "".join(rels) + "</Relationships>")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", types)
        archive.writestr("_rels/.rels", root_rels)
        archive.writestr("xl/workbook.bin", b"".join(book))
        archive.writestr("xl/_rels/workbook.bin.rels", book_rels)
        for i, (name, rows) in enumerate(sheets.items(), start=1):
            archive.writestr(f"xl/worksheets/sheet{i}.bin", _xlsb_sheet(rows, (row_numbers or {}).get(name)))
    return path


# ------------------------------------------------------------------------------------------------
# ods

_ODS_NS = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
           'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
           'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
           'xmlns:calcext="urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0" '
           'xmlns:of="urn:oasis:names:tc:opendocument:xmlns:of:1.2"')


def _ods_cell(value: object) -> str:
    if value is None or value == "":
        return "<table:table-cell/>"
    if isinstance(value, Err):
        return (f'<table:table-cell table:formula="of:=1/0" office:value-type="string" office:string-value="" '
                f'calcext:value-type="error"><text:p>{escape(value.text)}</text:p></table:table-cell>')
    if isinstance(value, (int, float)):
        return (f'<table:table-cell office:value-type="float" office:value="{value}" calcext:value-type="float">'
                f"<text:p>{value}</text:p></table:table-cell>")
    return (f'<table:table-cell office:value-type="string" calcext:value-type="string"><text:p>{escape(str(value))}'
            "</text:p></table:table-cell>")


def write_ods(path: Path, sheets: dict[str, list[list[object]]], *, extra_rows: dict[str, str] | None = None) -> Path:
    """An ods workbook (LibreOffice's format); every row is padded with a repeated empty cell."""
    tables = []
    for name, rows in sheets.items():
        body = "".join("<table:table-row>" + "".join(_ods_cell(v) for v in row)
                       + '<table:table-cell table:number-columns-repeated="1000"/></table:table-row>' for row in rows)
        body += (extra_rows or {}).get(name, '<table:table-row table:number-rows-repeated="1048000">'
                                              '<table:table-cell table:number-columns-repeated="1024"/>'
                                              "</table:table-row>")
        tables.append(f'<table:table table:name="{escape(name)}">'
                      '<table:table-column table:number-columns-repeated="1024"/>' + body + "</table:table>")
    content = (f'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-content {_ODS_NS} office:version="1.3">'
               "<office:body><office:spreadsheet>" + "".join(tables)
               + "</office:spreadsheet></office:body></office:document-content>")
    manifest = ('<?xml version="1.0" encoding="UTF-8"?>\n<manifest:manifest '
                'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3">'
                '<manifest:file-entry manifest:full-path="/" manifest:version="1.3" '
                'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
                '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
                "</manifest:manifest>")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet",
                         compress_type=zipfile.ZIP_STORED)
        archive.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("META-INF/manifest.xml", manifest, compress_type=zipfile.ZIP_DEFLATED)
    return path


# ------------------------------------------------------------------------------------------------
# BIFF5 in an OLE2 compound file


def _biff(typ: int, data: bytes = b"") -> bytes:
    return struct.pack("<HH", typ, len(data)) + data


def biff5_stream(name: str, rows: list[list[object]]) -> bytes:
    """A BIFF5 workbook stream: globals (BOF, CODEPAGE, BOUNDSHEET, EOF) and one worksheet."""
    def globals_part(sheet_offset: int) -> bytes:
        encoded = name.encode("cp1252")
        return (_biff(0x0809, struct.pack("<HHHH", 0x0500, 0x0005, 0x0DBB, 0x07CC)) + _biff(0x0042, struct.pack("<H", 1252))
                + _biff(0x0085, struct.pack("<IHB", sheet_offset, 0, len(encoded)) + encoded) + _biff(0x000A))

    head = len(globals_part(0))
    sheet = [_biff(0x0809, struct.pack("<HHHH", 0x0500, 0x0010, 0x0DBB, 0x07CC)),
             _biff(0x0200, struct.pack("<HHHHH", 0, len(rows), 0, max(len(r) for r in rows), 0))]
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if isinstance(value, (int, float)):
                sheet.append(_biff(0x0203, struct.pack("<HHHd", r, c, 0x0F, float(value))))
            elif value not in (None, ""):
                text = str(value).encode("cp1252")
                sheet.append(_biff(0x0204, struct.pack("<HHHH", r, c, 0x0F, len(text)) + text))
    sheet.append(_biff(0x000A))
    return globals_part(head) + b"".join(sheet)


def _biff_cells(r: int, c: int, value: object) -> bytes:
    if isinstance(value, Err):
        code = ERROR_CODES[value.text]
        if value.formula:  # FORMULA: cached result type 2 (error), then an NA() token (ptgFunc 0x21, iftab 10)
            result = struct.pack("<BBBBHH", 2, 0, code, 0, 0, 0xFFFF)
            return _biff(0x0006, struct.pack("<HHH", r, c, 0x0F) + result + struct.pack("<HIH", 0, 0, 3)
                         + bytes([0x21, 0x0A, 0x00]))
        return _biff(0x0205, struct.pack("<HHHBB", r, c, 0x0F, code, 1))
    if isinstance(value, (int, float)):
        return _biff(0x0203, struct.pack("<HHHd", r, c, 0x0F, float(value)))
    if value in (None, ""):
        return b""
    text = str(value)
    return _biff(0x0204, struct.pack("<HHHHB", r, c, 0x0F, len(text), 1) + text.encode("utf-16-le"))


def biff8_stream(sheets: dict[str, list[list[object]]], *, date1904: bool = False, encrypted: bool = False,
                 chart_in: str | None = None) -> bytes:
    """A BIFF8 workbook stream: globals (BOF, FILEPASS with ``encrypted``, DATEMODE, one BOUNDSHEET
    per sheet, EOF), then each worksheet (BOF, DIMENSIONS, its cells, EOF). ``chart_in`` names a
    sheet that gets a chart substream (BOF ... EOF) embedded before its cells."""
    def globals_part(offsets: list[int]) -> bytes:
        out = [_biff(0x0809, struct.pack("<HHHHII", 0x0600, 0x0005, 0x0DBB, 0x07CC, 0, 0x0106))]
        if encrypted:
            out.append(_biff(0x002F, b"\x01\x00" + b"\x00" * 52))
        out.append(_biff(0x0022, struct.pack("<H", 1 if date1904 else 0)))
        for offset, name in zip(offsets, sheets, strict=True):
            out.append(_biff(0x0085, struct.pack("<IBBBB", offset, 0, 0, len(name), 1) + name.encode("utf-16-le")))
        out.append(_biff(0x000A))
        return b"".join(out)

    bodies = []
    for name, rows in sheets.items():
        part = [_biff(0x0809, struct.pack("<HHHHII", 0x0600, 0x0010, 0x0DBB, 0x07CC, 0, 0x0106)),
                _biff(0x0200, struct.pack("<IIHHH", 0, len(rows), 0, max((len(r) for r in rows), default=0), 0))]
        if name == chart_in:
            part += [_biff(0x0809, struct.pack("<HHHHII", 0x0600, 0x0020, 0x0DBB, 0x07CC, 0, 0x0106)),
                     _biff(0x000A)]
        part += [_biff_cells(r, c, value) for r, row in enumerate(rows) for c, value in enumerate(row)]
        part.append(_biff(0x000A))
        bodies.append(b"".join(part))
    offsets, position = [], len(globals_part([0] * len(sheets)))
    for body in bodies:
        offsets.append(position)
        position += len(body)
    return globals_part(offsets) + b"".join(bodies)


def write_cfb(path: Path, stream_name: str, data: bytes) -> Path:
    """An OLE2 compound file (version 3, 512-byte sectors) holding one stream of >= 4096 bytes."""
    sector = 512
    data = data.ljust(max(4096, len(data)), b"\0")
    data_sectors = -(-len(data) // sector)
    fat = [0xFFFFFFFD, 0xFFFFFFFE] + [3 + i for i in range(data_sectors - 1)] + [0xFFFFFFFE]
    if len(fat) > sector // 4:
        raise ValueError("stream too large for this helper")
    fat += [0xFFFFFFFF] * (sector // 4 - len(fat))

    def entry(name: str, kind: int, child: int, start: int, size: int) -> bytes:
        encoded = (name + "\0").encode("utf-16-le") if name else b""
        return (encoded.ljust(64, b"\0") + struct.pack("<HBB", len(encoded), kind, 1)
                + struct.pack("<III", 0xFFFFFFFF, 0xFFFFFFFF, child) + b"\0" * 16 + struct.pack("<I", 0)
                + b"\0" * 16 + struct.pack("<IQ", start, size))

    directory = (entry("Root Entry", 5, 1, 0xFFFFFFFE, 0) + entry(stream_name, 2, 0xFFFFFFFF, 2, len(data))
                 + entry("", 0, 0xFFFFFFFF, 0, 0) + entry("", 0, 0xFFFFFFFF, 0, 0))
    header = (bytes.fromhex("D0CF11E0A1B11AE1") + b"\0" * 16 + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
              + b"\0" * 6 + struct.pack("<IIIIIIIII", 0, 1, 1, 0, 0x1000, 0xFFFFFFFE, 0, 0xFFFFFFFE, 0)
              + struct.pack("<I", 0) + struct.pack("<I", 0xFFFFFFFF) * 108)
    assert len(header) == sector
    body = struct.pack(f"<{sector // 4}I", *fat) + directory + data.ljust(data_sectors * sector, b"\0")
    path.write_bytes(header + body)
    return path
