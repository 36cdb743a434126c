"""Format detection by content (magic bytes), never by file name, and the shapes readers return.

Sites rename files, save HTML error pages as ``.xpt`` and encrypted workbooks as ``.xlsx``. So the
format is decided from the first bytes (and, for zip containers, from the package parts):

==================  ==========================================================================
format              how it is recognised
==================  ==========================================================================
``empty``           0 bytes
``xlsx``/``xlsm``   a zip with ``[Content_Types].xml`` naming a workbook part (``strict`` flag
                    when the workbook uses the ISO 29500 Strict namespaces)
``xlsb``            a zip whose workbook part is binary (``xl/workbook.bin``)
``ods``             a zip whose ``mimetype`` is an OpenDocument spreadsheet (LibreOffice)
``zip``             any other zip
``xls``             an OLE2 compound file with a ``Workbook`` stream (BIFF8) or only a ``Book``
                    stream (Excel 5.0/95, BIFF5: ``detail`` says so); or a bare BIFF2/3/4
                    worksheet (Excel 2.x-4.0, ``detail`` ``BIFF4`` etc.), which trialkit does not read
``encrypted``       an OLE2 file with ``EncryptionInfo``/``EncryptedPackage`` streams
                    (a password-protected OOXML workbook)
``ole2``            any other OLE2 file (Word, MSG, ...)
``spreadsheetml``   XML with the ``urn:schemas-microsoft-com:office:spreadsheet`` namespace
``odm``             XML with the CDISC ODM namespace (``detail``: ``1.3`` or ``2.0``)
``xpt5``/``xpt8``   SAS transport ``LIBRARY HEADER RECORD`` (v5) / ``LIBV8`` (v8)
``sas7bdat``        the 32-byte sas7bdat magic; ``sas7bcat`` the catalogue magic
``sav``/``zsav``    ``$FL2`` / ``$FL3``
``por``             SPSS portable: ``SPSSPORT`` after the 200-byte splash and 256-byte
                    character table (lines of 80 characters)
``dta``             ``<stata_dta>`` (117+) or a first byte 0x66-0x73 with a byte order byte
``html``            ``<html`` / ``<!DOCTYPE`` (also after a BOM and blanks)
``xml``             other XML
``csv``             anything else that is text (a stray NUL byte included: the reader names it)
``binary``          anything else
==================  ==========================================================================

:class:`RawTable` and :class:`FileRead` are what every reader in this package returns.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from trialkit.findings import Category, Finding, Severity

SAS7BDAT_MAGIC = bytes(
    [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
     0xC2, 0xEA, 0x81, 0x60, 0xB3, 0x14, 0x11, 0xCF, 0xBD, 0x92, 0x08, 0x00,
     0x09, 0xC7, 0x31, 0x8C, 0x18, 0x1F, 0x10, 0x11]
)
SAS7BCAT_MAGIC = bytes(
    [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
     0xC2, 0xEA, 0x81, 0x63, 0xB3, 0x14, 0x11, 0xCF, 0xBD, 0x92, 0x08, 0x00,
     0x09, 0xC7, 0x31, 0x8C, 0x18, 0x1F, 0x10, 0x11]
)
OLE2_MAGIC = bytes([0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1])
ZIP_MAGIC = b"PK\x03\x04"
SPREADSHEETML_NS = b"urn:schemas-microsoft-com:office:spreadsheet"
STRICT_NS = b"purl.oclc.org/ooxml/spreadsheetml/main"
ODM_NAMESPACES = {"1.3": "http://www.cdisc.org/ns/odm/v1.3", "2.0": "http://www.cdisc.org/ns/odm/v2.0"}

# Formats whose content is a table trialkit can read.
READABLE = {"xlsx", "xlsm", "xlsb", "ods", "xls", "spreadsheetml", "xpt5", "xpt8", "sas7bdat", "sav", "zsav",
            "por", "dta", "csv", "odm"}
WORKBOOK_FORMATS = {"xlsx", "xlsm", "xlsb", "ods", "xls", "spreadsheetml"}
CALAMINE_FORMATS = {"xlsx", "xlsm", "xlsb", "ods", "xls"}  # read through python-calamine
DATASET_FORMATS = {"xpt5", "xpt8", "sas7bdat", "sav", "zsav", "por", "dta"}
ODS_MIMETYPE = b"application/vnd.oasis.opendocument.spreadsheet"
# A bare BIFF worksheet (no OLE2 container) starts with its BOF record: id, then length.
_BIFF_BOF = {b"\x09\x00": "BIFF2", b"\x09\x02": "BIFF3", b"\x09\x04": "BIFF4"}


@dataclass
class Detected:
    """What a file is: ``format`` (see the module table) and a few facts found on the way."""

    format: str
    strict: bool = False  # Strict OOXML workbook
    detail: str = ""  # e.g. the HTML title, the OLE2 streams seen


#: The text of an error cell that holds a formula never calculated (``"=NA()"``; ``"="`` alone when the
#: cell shares another cell's formula): see :func:`error_cell`.
UNCALCULATED_PREFIX = "="


def error_cell(text: str) -> tuple[str, str, str]:
    """``(finding code, what the cell holds, remedy)`` for an entry of :attr:`RawTable.errors`.

    An Excel error (``#N/A``, ``#DIV/0!``) is ``IMP-EXCEL-ERROR``: a formula failed. A text starting
    with ``=`` is a formula with no result stored (``IMP-FORMULA-UNCALCULATED``): the workbook was
    written by a program and never saved by Excel or LibreOffice, so its value is unknown — not missing.

    >>> error_cell("#N/A")[:2]
    ('IMP-EXCEL-ERROR', 'holds the Excel error #N/A: a formula failed')
    >>> error_cell("=B2*2")[0]
    'IMP-FORMULA-UNCALCULATED'
    """
    if text.startswith(UNCALCULATED_PREFIX):
        formula = f" {text}" if len(text) > len(UNCALCULATED_PREFIX) else ""
        return ("IMP-FORMULA-UNCALCULATED",
                f"holds a formula{formula} whose result was never calculated (the workbook was written by a "
                "program and not saved in Excel or LibreOffice), so its value is unknown",
                "open the workbook in Excel or LibreOffice, save it and upload it again, or type the value itself")
    return "IMP-EXCEL-ERROR", f"holds the Excel error {text}: a formula failed", "type the value itself"


@dataclass
class RawTable:
    """One sheet or dataset as read, before it is matched to a form.

    ``values`` holds the cells as the reader gave them (``str``, ``float``, ``int``, ``bool``,
    ``date``/``datetime``, or "" for an empty cell) with the header names as columns and, as index,
    the row number the site sees (spreadsheet row; 1-based record number for a dataset; line number
    for CSV). ``labels`` and ``types`` run parallel to ``columns``. ``errors`` lists Excel error
    cells as ``(row, column_name, cell_ref, error_text)`` (and formulas never calculated, whose text
    starts with ``=``: :func:`error_cell`). ``blank_columns`` names the columns whose
    header cell was blank (named by their column letter); ``notes`` holds the non-empty rows above
    the header that were not read as data (``(row, cell texts)``), so that a privacy check still
    sees them.
    """

    name: str
    kind: str  # "sheet" or "dataset"
    columns: list[str]
    values: pd.DataFrame
    labels: list[str | None] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    visibility: str = "visible"  # visible / hidden / veryHidden
    sheet_type: str = "worksheet"  # worksheet / chartsheet / ...
    header_row: int | None = None
    errors: list[tuple[int, str, str, str]] = field(default_factory=list)
    value_labels: dict[str, dict[Any, str]] = field(default_factory=dict)
    blank_columns: set[str] = field(default_factory=set)
    notes: list[tuple[int, list[str]]] = field(default_factory=list)
    bad_dates: list[tuple[int, str, str]] = field(default_factory=list)  # (record, column, date as text)
    comments: list[tuple[str, str]] = field(default_factory=list)  # cell comments: (cell ref, text)
    # Per column, the line of the file each cell is on, when a row is not one line (ODM XML).
    cells: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        """Number of data rows (the header excluded)."""
        return len(self.values)

    @property
    def hidden(self) -> bool:
        """True for a hidden or very hidden sheet."""
        return self.visibility != "visible"


@dataclass
class FileRead:
    """Everything read from one file: format, encoding, tables, file-level findings."""

    path: str
    format: str
    tables: list[RawTable] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    encoding: str | None = None
    date_system: int = 1900  # Excel workbooks: 1900 or 1904
    stamp: str | None = None  # the template version stamp, when a trialkit template
    stamp_site: str | None = None  # the site a site template was made for (its ``_trialkit`` site row)
    extra: dict[str, Any] = field(default_factory=dict)

    def fail(self, code: str, message: str, severity: Severity = Severity.ERROR, **kw: Any) -> None:
        """Record a file-level finding naming this file."""
        self.findings.append(
            Finding(code=code, severity=severity, category=kw.pop("category", Category.FILE),
                    message=message, file=self.path, **kw)
        )


def detect(path: str | Path) -> Detected:
    """Detect the format of ``path`` from its content (see the module docstring)."""
    path = Path(path)
    with open(path, "rb") as handle:
        head = handle.read(8192)
    if not head:
        return Detected("empty")
    if head.startswith(ZIP_MAGIC) or head.startswith(b"PK\x05\x06"):
        return _detect_zip(path)
    if head.startswith(OLE2_MAGIC):
        return _detect_ole2(path)
    if head.startswith(SAS7BDAT_MAGIC):
        return Detected("sas7bdat")
    if head.startswith(SAS7BCAT_MAGIC):
        return Detected("sas7bcat")
    if head.startswith(b"HEADER RECORD*******LIBV8") or b"LIBV8 HEADER RECORD" in head[:80]:
        return Detected("xpt8")
    if head.startswith(b"HEADER RECORD*******LIBRARY HEADER RECORD") or (
        head.startswith(b"HEADER RECORD") and b"SAS" in head[80:160]
    ):
        return Detected("xpt5")
    if head[:4] == b"$FL2":
        return Detected("sav")
    if head[:4] == b"$FL3":
        return Detected("zsav")
    if head.startswith(b"<stata_dta>"):
        return Detected("dta")
    if head[:2] in _BIFF_BOF and int.from_bytes(head[2:4], "little") in (4, 6, 8) and len(head) >= 8:
        return Detected("xls", detail=_BIFF_BOF[head[:2]])
    if b"SPSSPORT" in head[:1200] and head[:1200].replace(b"\r\n", b"").replace(b"\n", b"")[456:464] == b"SPSSPORT":
        return Detected("por")
    if len(head) > 4 and head[0] in range(0x66, 0x74) and head[1] in (1, 2) and head[2] == 1:
        return Detected("dta")  # Stata 102-115: version byte, byte order (1 MSF / 2 LSF), filetype 1
    text_head = _text_prefix(head)
    lowered = text_head.lstrip().lower()
    if lowered.startswith("<!doctype html") or lowered.startswith("<html") or (
        lowered.startswith("<") and "<html" in lowered[:1024]
    ):
        title = ""
        if "<title>" in lowered:
            start = lowered.index("<title>") + 7
            end = lowered.find("</title>", start)
            title = text_head.lstrip()[start:end if end > 0 else start + 80].strip()
        return Detected("html", detail=title)
    if lowered.startswith("<?xml") or lowered.startswith("<"):
        if SPREADSHEETML_NS in head or SPREADSHEETML_NS.decode() in text_head:
            return Detected("spreadsheetml")
        for version, namespace in ODM_NAMESPACES.items():
            if namespace in text_head:
                return Detected("odm", detail=version)
        return Detected("xml")
    if _looks_textual(head):
        return Detected("csv")
    return Detected("binary")


def _text_prefix(head: bytes) -> str:
    """The start of the file as text, whatever its BOM (UTF-8, UTF-16)."""
    if head.startswith(b"\xff\xfe") or head.startswith(b"\xfe\xff"):
        return head.decode("utf-16", errors="replace")
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    return head.decode("latin-1")


def _looks_textual(head: bytes) -> bool:
    """Text (any 8-bit or UTF-16 encoding with a BOM), not binary."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    # A few NUL bytes in otherwise plain text is a damaged text file (the CSV reader names the
    # line); many are binary data (or UTF-16 without a BOM, which no site sends).
    nuls = head.count(b"\x00")
    if nuls > max(1, len(head) // 100):
        return False
    control = sum(1 for byte in head if byte < 9 or 13 < byte < 32) - nuls
    return control <= len(head) // 100


def _detect_zip(path: Path) -> Detected:
    try:
        with zipfile.ZipFile(path) as archive:
            names = {name.replace("\\", "/").lstrip("/"): name for name in archive.namelist()}
            if "mimetype" in names:
                with archive.open(names["mimetype"]) as stream:
                    if stream.read(200).strip().startswith(ODS_MIMETYPE):
                        return Detected("ods")
            if "[Content_Types].xml" not in names:
                return Detected("zip", detail="no [Content_Types].xml")
            # Bounded reads: a part may be a zip bomb (checked later, from the directory).
            with archive.open(names["[Content_Types].xml"]) as stream:
                types = stream.read(200_000)
            if any(n.lower() == "xl/workbook.bin" for n in names):
                return Detected("xlsb")
            workbook_name = next((n for n in names if n.lower() == "xl/workbook.xml"), None)
            strict = False
            if workbook_name is not None:
                with archive.open(names[workbook_name]) as stream:
                    strict = STRICT_NS in stream.read(4096)
    except (zipfile.BadZipFile, OSError, KeyError, EOFError, ValueError, NotImplementedError, RuntimeError,
            zlib.error) as exc:  # damaged or encrypted parts
        return Detected("zip", detail=f"broken zip: {exc}")
    if b"macroEnabled" in types:
        return Detected("xlsm", strict=strict)
    if b"spreadsheetml" in types or workbook_name is not None:
        return Detected("xlsx", strict=strict)
    if b"wordprocessingml" in types:
        return Detected("zip", detail="a Word document")
    return Detected("zip", detail="an Office package that is not a workbook")


def _detect_ole2(path: Path) -> Detected:
    """Tell BIFF workbooks from encrypted OOXML by the stream names in the compound file."""
    with open(path, "rb") as handle:
        data = handle.read(4 << 20)
    # Directory entries store names as UTF-16LE; searching the bytes is enough to tell them apart.
    def has(name: str) -> bool:
        return name.encode("utf-16-le") in data

    if has("EncryptedPackage") or has("EncryptionInfo"):
        return Detected("encrypted", detail="EncryptionInfo/EncryptedPackage streams")
    if has("Workbook"):
        return Detected("xls")
    if has("Book"):  # Excel 5.0/95 names its stream "Book" (a substring of "Workbook", so checked second)
        return Detected("xls", detail="BIFF5")
    return Detected("ole2", detail="an OLE2 file without a workbook stream")
