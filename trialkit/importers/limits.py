"""Limits on what an upload may be, and the pre-flight checks that enforce them before any parser runs.

Uploads come from outside, and a spreadsheet can be a weapon: a 1 MB xlsx can inflate to gigabytes
of XML (zip bomb), an XML part can declare entities that expand exponentially ("billion laughs") or
point at local files (external entities), a sheet can claim a million columns, a cell can hold
100 MB of text. Each is refused *quickly* — in bounded time and memory, before python-calamine or
the XML parser sees the file — with ONE ``file``-category error finding that names the file, the
limit (with the environment variable that sets it), the measured value and the remedy.

:class:`Limits` holds the limits (documented in ``docs/limits.md``); :meth:`Limits.from_env` reads
``TRIALKIT_MAX_*`` overrides. The checks:

- :func:`file_size_finding` — any file, from ``stat`` alone;
- :func:`preflight_ooxml` — xlsx/xlsm, from the zip directory and a bounded head of each part:
  member count, uncompressed total, per-member compression ratio, ``<!DOCTYPE``/``<!ENTITY`` in any
  XML part, and each worksheet's ``<dimension ref=...>`` claim (rows, columns, cells);
- :func:`xml_prolog_problem` — the same DOCTYPE/ENTITY scan for one XML head (SpreadsheetML);
- :func:`longest_line` / :func:`longest_text_run` — byte-level bounds (numpy, no Python per byte)
  that say whether a line or a text node can exceed a limit at all, so the per-cell check only runs
  when it can find something.

Example::

    >>> Limits().max_columns
    16384
    >>> Limits(max_rows=10).describe("max_rows")
    'TRIALKIT_MAX_ROWS = 10'
"""

from __future__ import annotations

import dataclasses
import os
import re
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from trialkit.errors import UsageError
from trialkit.findings import Category, Finding, Severity

ENV_PREFIX = "TRIALKIT_"
MiB = 1024 * 1024
_SUFFIXES = {"k": 1024, "kb": 1024, "m": MiB, "mb": MiB, "g": 1024 * MiB, "gb": 1024 * MiB}
# Parts that are never XML: their heads are not scanned for DOCTYPE (saves time on images).
_BINARY_EXTENSIONS = (".bin", ".png", ".jpg", ".jpeg", ".gif", ".emf", ".wmf", ".tif", ".tiff", ".bmp",
                      ".svg.gz", ".wdp", ".jfif", ".ico")
_DIMENSION = re.compile(rb"<(?:\w+:)?dimension\s+ref\s*=\s*[\"']\$?([A-Za-z]*)\$?(\d*)"
                        rb"(?::\$?([A-Za-z]*)\$?(\d*))?[\"']")
_ROOT_START = re.compile(rb"<[A-Za-z_]")
_DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


@dataclass(frozen=True)
class Limits:
    """What an upload may be. Every field can be set with the environment variable
    ``TRIALKIT_`` + the field name in upper case (``TRIALKIT_MAX_FILE_BYTES=300MB``).

    The defaults are far above any real site upload (a full trial is a few MB) and far below what
    would hurt the machine.
    """

    max_file_bytes: int = 200 * MiB  # size on disk of any uploaded file
    max_uncompressed_bytes: int = 500 * MiB  # sum of the uncompressed parts of one xlsx/xlsm
    max_compression_ratio: float = 200.0  # uncompressed/compressed of one zip member ...
    ratio_min_member_bytes: int = 1 * MiB  # ... counted only for members larger than this
    max_zip_members: int = 10_000  # parts in one xlsx/xlsm (a real workbook has tens)
    # rows x columns of one sheet from A1 to its farthest cell (claimed, scanned or read): calamine
    # holds each cell in 32 bytes and Python's rows add more, so 10 million keeps a read under 1 GB
    max_cells: int = 10_000_000
    max_columns: int = 16_384  # Excel's own limit (column XFD)
    max_rows: int = 2_000_000  # rows of one sheet or CSV (Excel's own limit is 1,048,576)
    max_string_length: int = 32_767  # characters in one cell (Excel's own limit)
    # Excel error cells (#N/A …) and formulas never calculated in one sheet: each is a finding, and a
    # crafted ods repeats one error cell over millions (a 1.7 KB file took 6 GB and 81 s)
    max_error_cells: int = 10_000
    max_line_bytes: int = 1 * MiB  # one line of a CSV/text file
    max_entity_declarations: int = 0  # DOCTYPE/ENTITY declarations allowed in an XML part
    xml_head_bytes: int = 64 * 1024  # how much of each XML part is scanned for a DOCTYPE

    @classmethod
    def from_env(cls, environ: Any = None) -> Limits:
        """The defaults, overridden by ``TRIALKIT_MAX_*`` environment variables.

        Sizes accept a ``k``/``M``/``G`` suffix (binary units) and ``_`` separators. A value that is
        not a number raises :class:`~trialkit.errors.UsageError` naming the variable.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for item in fields(cls):
            name = env_name(item.name)
            text = environ.get(name)
            if text is None or not str(text).strip():
                continue
            values[item.name] = _parse_number(name, str(text), float if item.type in ("float", float) else int)
        return cls(**values)

    def replace(self, **changes: Any) -> Limits:
        """A copy with some limits changed."""
        return dataclasses.replace(self, **changes)

    def describe(self, name: str) -> str:
        """``TRIALKIT_MAX_ROWS = 2000000``: the limit with the variable that sets it."""
        value = getattr(self, name)
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        return f"{env_name(name)} = {shown}"


def env_name(field_name: str) -> str:
    """The environment variable of a limit: ``max_rows`` → ``TRIALKIT_MAX_ROWS``."""
    return ENV_PREFIX + field_name.upper()


def _parse_number(name: str, text: str, kind: type) -> int | float:
    cleaned = text.strip().replace("_", "").lower()
    factor = 1
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if cleaned.endswith(suffix):
            cleaned, factor = cleaned[: -len(suffix)].strip(), _SUFFIXES[suffix]
            break
    try:
        number = float(cleaned) * factor
    except ValueError:
        raise UsageError(f"environment variable {name}={text!r} is not a number; unset it or give e.g. "
                         f"{name}=500MB") from None
    if number < 0:
        raise UsageError(f"environment variable {name}={text!r} is negative; give a limit >= 0")
    return kind(number) if kind is float else int(number)


def limit_finding(path: str | Path, code: str, limits: Limits, limit: str, measured: Any, what: str,
                  remedy: str, **where: Any) -> Finding:
    """The one ``file`` error that refuses an upload for exceeding ``limit`` (a :class:`Limits` field)."""
    return Finding(
        code=code, severity=Severity.ERROR, category=Category.FILE, file=str(path),
        message=f"{path}: {what} — over the limit {limits.describe(limit)}; refused before reading. {remedy}",
        value=str(measured), expected=f"<= {getattr(limits, limit)}", check=env_name(limit),
        evidence={"limit": env_name(limit), "max": getattr(limits, limit), "measured": measured},
        **where,
    )


def file_size_finding(path: str | Path, limits: Limits) -> Finding | None:
    """Refuse a file larger than ``max_file_bytes`` (from ``stat``; nothing is read)."""
    size = Path(path).stat().st_size
    if size <= limits.max_file_bytes:
        return None
    return limit_finding(path, "IMP-LIMIT-FILE-SIZE", limits, "max_file_bytes", size,
                         f"the file is {size:,} bytes", "Split the upload into smaller files (e.g. one per "
                         "form) and upload them together.")


def xml_prolog_problem(head: bytes, limits: Limits, complete: bool) -> str | None:
    """What is wrong with the start of an XML document, or None.

    A DOCTYPE (and with it any ENTITY declaration) must come before the root element, so scanning
    up to the root start tag is enough. ``complete`` says ``head`` is the whole part; when it is not
    and no root element starts within it, the prolog is suspiciously long and refused too.
    """
    text = head
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(head) > 1 and head[1:2] == b"\x00"):
        try:  # UTF-16 XML: bring it to bytes a regex can read
            text = head.decode("utf-16" if head[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-16-le",
                               errors="ignore").encode("utf-8", "ignore")
        except LookupError:  # pragma: no cover
            text = head
    root = _ROOT_START.search(text)
    prolog = text[: root.start()] if root else text
    declarations = len(_DOCTYPE.findall(prolog))
    if declarations > limits.max_entity_declarations:
        kinds = sorted({m.decode().upper() for m in _DOCTYPE.findall(prolog)})
        return f"declares {' and '.join(kinds)} ({declarations} declaration(s)): entity expansion or external entities"
    if root is None and not complete:
        return f"no root element in its first {len(head):,} bytes (an oversized prolog)"
    return None


def _read_head(archive: zipfile.ZipFile, info: zipfile.ZipInfo, size: int) -> bytes:
    """Up to ``size`` decompressed bytes of a member: bounded, whatever the member claims."""
    with archive.open(info) as stream:
        return stream.read(size)


def _column_number(letters: bytes) -> int:
    number = 0
    for ch in letters.upper():
        number = number * 26 + (ch - 64)
    return number


def dimension_claim(head: bytes) -> tuple[int, int, str] | None:
    """``(rows, columns, ref)`` claimed by a worksheet's ``<dimension ref="A1:XFD1048576"/>``."""
    match = _DIMENSION.search(head)
    if not match:
        return None
    col1, row1, col2, row2 = (g or b"" for g in match.groups())
    col2, row2 = col2 or col1, row2 or row1
    first_col = _column_number(col1) if col1 else 1
    last_col = _column_number(col2) if col2 else first_col
    first_row = int(row1) if row1 else 1
    last_row = int(row2) if row2 else first_row
    if len(row2) > 12 or len(col2) > 8:  # absurd numbers: clamp before arithmetic
        return (10**12, 10**12, match.group(0).decode("latin-1")[:80])
    rows = abs(last_row - first_row) + 1
    cols = abs(last_col - first_col) + 1
    ref = match.group(0).decode("latin-1").split("=", 1)[-1].strip("\"' ")
    return rows, cols, ref


def preflight_ooxml(path: str | Path, limits: Limits) -> list[Finding]:
    """Check an xlsx/xlsm package before any parser reads it; refusals first, notes after.

    Reads only the zip directory and at most ``xml_head_bytes`` of each XML part, so a bomb costs
    milliseconds. Returns at most one error (the first limit exceeded) plus warnings about member
    names that would escape a folder if the package were ever extracted (trialkit never extracts;
    calamine reads backslash names fine, so backslashes are not reported).
    """
    path = Path(path)
    notes: list[Finding] = []
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return [Finding(code="IMP-FILE-CORRUPT", severity=Severity.ERROR, category=Category.FILE, file=str(path),
                        message=f"{path}: the workbook package is damaged ({exc}); open it in Excel, save "
                                "it again and upload the new file")]
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_zip_members:
            return [limit_finding(path, "IMP-LIMIT-ZIP-MEMBERS", limits, "max_zip_members", len(infos),
                                  f"the workbook package holds {len(infos):,} parts",
                                  "A real workbook has tens of parts: check that this is the intended file.")]
        total = sum(info.file_size for info in infos)
        if total > limits.max_uncompressed_bytes:
            return [limit_finding(path, "IMP-LIMIT-UNCOMPRESSED", limits, "max_uncompressed_bytes", total,
                                  f"the workbook inflates to {total:,} bytes of XML (a zip bomb, or far "
                                  "more data than one upload holds)",
                                  "Check that this is the intended workbook; split a genuinely large one "
                                  "into several uploads.")]
        for info in infos:
            if info.file_size > limits.ratio_min_member_bytes:
                ratio = info.file_size / max(info.compress_size, 1)
                if ratio > limits.max_compression_ratio:
                    return [limit_finding(
                        path, "IMP-LIMIT-COMPRESSION", limits, "max_compression_ratio", round(ratio, 1),
                        f"part {info.filename!r} inflates {ratio:,.0f}:1 ({info.compress_size:,} → "
                        f"{info.file_size:,} bytes), the signature of a zip bomb",
                        "Open the workbook in Excel, save it again and upload the new file; a workbook "
                        "written by Excel never compresses this much.")]
        for info in infos:
            name = info.filename
            plain = name.replace("\\", "/")
            if plain.startswith("/") or re.match(r"^[A-Za-z]:", plain) or ".." in plain.split("/"):
                notes.append(Finding(
                    code="IMP-ZIP-PATH", severity=Severity.WARNING, category=Category.FILE, file=str(path),
                    value=name[:200], message=f"{path}: the package has a part named {name[:200]!r} "
                    "(absolute or with '..'); trialkit never extracts parts, but re-save the workbook in "
                    "Excel before sharing it"))
        for info in infos:
            lowered = info.filename.lower()
            if info.is_dir() or lowered.endswith(_BINARY_EXTENSIONS) or info.file_size == 0:
                continue
            try:
                head = _read_head(archive, info, limits.xml_head_bytes)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError, RuntimeError,
                    Exception) as exc:  # zlib.error and friends: damaged part
                return [Finding(code="IMP-FILE-CORRUPT", severity=Severity.ERROR, category=Category.FILE,
                                file=str(path), message=f"{path}: part {info.filename!r} cannot be read "
                                f"({type(exc).__name__}: {exc}); open the workbook in Excel, save it again "
                                "and upload the new file")]
            stripped = head.lstrip(b"\xef\xbb\xbf\xff\xfe \t\r\n")
            if not stripped.startswith(b"<") and not stripped.startswith(b"<\x00"):
                continue  # not XML
            problem = xml_prolog_problem(head, limits, complete=info.file_size <= len(head))
            if problem:
                return [limit_finding(
                    path, "IMP-XML-DOCTYPE", limits, "max_entity_declarations", problem.split(" (")[0],
                    f"XML part {info.filename!r} {problem}; Excel never writes these",
                    "Refused for safety: open the workbook in Excel, save it as a new .xlsx and upload "
                    "that.")]
            if "worksheets/" in lowered.replace("\\", "/"):
                claim = dimension_claim(head)
                if claim is None:
                    continue
                rows, cols, ref = claim
                sheet = info.filename
                if cols > limits.max_columns:
                    return [limit_finding(path, "IMP-LIMIT-COLUMNS", limits, "max_columns", cols,
                                          f"part {sheet!r} claims {cols:,} columns (dimension {ref})",
                                          _DIMENSION_REMEDY)]
                if rows > limits.max_rows:
                    return [limit_finding(path, "IMP-LIMIT-ROWS", limits, "max_rows", rows,
                                          f"part {sheet!r} claims {rows:,} rows (dimension {ref})",
                                          _DIMENSION_REMEDY)]
                if rows * cols > limits.max_cells:
                    return [limit_finding(path, "IMP-LIMIT-CELLS", limits, "max_cells", rows * cols,
                                          f"part {sheet!r} claims {rows:,} x {cols:,} = {rows * cols:,} "
                                          f"cells (dimension {ref})", _DIMENSION_REMEDY)]
    return notes


_DIMENSION_REMEDY = ("Delete the unused rows and columns after the data (select them, Delete), save in "
                     "Excel and upload again.")


def longest_line(data: bytes) -> int:
    """The longest line of ``data`` in bytes (``\\n`` separated; numpy, no Python loop per byte)."""
    if not data:
        return 0
    breaks = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 0x0A)
    if not len(breaks):
        return len(data)
    edges = np.concatenate(([-1], breaks, [len(data)]))
    return int(np.max(np.diff(edges)) - 1)


def longest_line_in_file(path: str | Path, block_size: int = 4 * MiB) -> tuple[int, int]:
    """``(longest line in bytes, number of line breaks)`` of a file, streamed in blocks."""
    longest = current = breaks = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(block_size), b""):
            positions = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 0x0A)
            if not len(positions):
                current += len(block)
                longest = max(longest, current)
                continue
            breaks += len(positions)
            inner = int(np.max(np.diff(positions))) - 1 if len(positions) > 1 else 0
            longest = max(longest, current + int(positions[0]), inner)
            current = len(block) - int(positions[-1]) - 1
    return max(longest, current), breaks


class TextRuns:
    """The longest run of bytes without ``<`` seen across blocks of one XML stream.

    Any cell text in OOXML is a run between tags, and its escaped form is never shorter than the
    text, so a part whose longest run is within ``max_string_length`` cannot hold a longer cell.
    """

    def __init__(self) -> None:
        self.longest = 0
        self._open = 0  # length of the run still open at the end of the last block

    def feed(self, block: bytes) -> None:
        """Account for the next block of the stream."""
        if not block:
            return
        tags = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 0x3C)
        if not len(tags):
            self._open += len(block)
            self.longest = max(self.longest, self._open)
            return
        first = self._open + int(tags[0])
        inner = int(np.max(np.diff(tags))) - 1 if len(tags) > 1 else 0
        self.longest = max(self.longest, first, inner)
        self._open = len(block) - int(tags[-1]) - 1


def longest_text_run(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> int:
    """The longest text run of one part (see :class:`TextRuns`), reading at most ``cap`` bytes."""
    runs = TextRuns()
    read = 0
    with archive.open(info) as stream:
        while read < cap:
            block = stream.read(min(8 * MiB, cap - read))
            if not block:
                break
            read += len(block)
            runs.feed(block)
    return runs.longest


def long_string_cell(rows: list[list[Any]], limit: int, first_row: int = 1) -> tuple[str, int] | None:
    """``(cell ref, length)`` of the first text cell longer than ``limit`` in a sheet's rows."""
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if type(value) is str and len(value) > limit:
                return f"{column_letters(c)}{r + first_row}", len(value)
    return None


def column_letters(index: int) -> str:
    """Spreadsheet column letters of a 0-based column index (0 → ``A``)."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters
