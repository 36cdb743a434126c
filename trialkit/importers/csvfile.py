"""Read delimited text (CSV/TXT): encoding and delimiter detected, every cell kept as text.

Encoding: a BOM decides (UTF-8, UTF-16); otherwise UTF-8 strictly, then Windows-1252 (recorded as an
info finding). Bytes that are neither — cp1252 leaves 0x81, 0x8D, 0x8F, 0x90 and 0x9D undefined —
give a ``file`` finding naming the encoding problem and the byte position. The delimiter is sniffed
among ``,`` ``;`` tab and ``|``. Cells are read as ``str`` with ``keep_default_na=False`` so that the
text ``NA`` stays ``NA`` (a missing-value code) and ``001`` keeps its zeros. The index is the line
number the site sees (header = line 1), blank lines keep their numbers and are not records.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from trialkit.findings import Severity
from trialkit.importers.detect import FileRead, RawTable
from trialkit.importers.limits import Limits, file_size_finding, limit_finding, longest_line_in_file

MAX_CSV_BYTES = Limits().max_file_bytes  # the default; the enforced value comes from ``Limits``
DELIMITERS = ",;\t|"


def column_ref(index: int) -> str:
    """Spreadsheet column letters of a 0-based column index (as the site sees the CSV in Excel)."""
    from trialkit.importers.limits import column_letters

    return column_letters(index)


def decode_bytes(data: bytes) -> tuple[str | None, str | None, str | None]:
    """``(text, encoding, problem)``: the decoded text and encoding, or None and what went wrong."""
    if data.startswith(b"\xef\xbb\xbf"):
        encodings = ["utf-8-sig"]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encodings = ["utf-16"]
    else:
        encodings = ["utf-8", "cp1252"]
    problem = None
    for encoding in encodings:
        try:
            return data.decode(encoding), encoding, None
        except UnicodeDecodeError as exc:
            problem = (f"byte 0x{data[exc.start]:02X} at position {exc.start} is not valid {encoding} "
                       f"({exc.reason})")
    return None, None, problem


def sniff_delimiter(text: str) -> str:
    """The delimiter of a delimited text: ``csv.Sniffer`` first, then the most frequent in line 1."""
    sample = "\n".join(text.splitlines()[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        first = text.splitlines()[0] if text else ""
        counts = {d: first.count(d) for d in DELIMITERS}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


def read_csv(path: str | Path, *, limits: Limits | None = None) -> FileRead:
    """Read a delimited text file into one :class:`RawTable` of text cells.

    Refused with one ``file`` finding (see :mod:`trialkit.importers.limits`): a file over
    ``max_file_bytes``, a line over ``max_line_bytes``, more than ``max_rows`` lines or
    ``max_columns`` fields, a cell over ``max_string_length`` characters.
    """
    path = Path(path)
    limits = limits or Limits.from_env()
    result = FileRead(path=str(path), format="csv")
    too_large = file_size_finding(path, limits)
    if too_large is not None:
        result.findings.append(too_large)
        return result
    widest, lines = longest_line_in_file(path)  # streamed: a refused file is never loaded whole
    if widest > limits.max_line_bytes:
        result.findings.append(limit_finding(path, "IMP-LIMIT-LINE", limits, "max_line_bytes", widest,
                                             f"a line is {widest:,} bytes long", "Check that this is a "
                                             "CSV export of the form; a record line is never this long."))
        return result
    if lines > limits.max_rows:
        result.findings.append(limit_finding(path, "IMP-LIMIT-ROWS", limits, "max_rows", lines,
                                             f"the file has {lines:,} lines", "Split the upload."))
        return result
    data = path.read_bytes()
    text, encoding, problem = decode_bytes(data)
    if text is None:
        result.fail("IMP-FILE-ENCODING", f"{path}: the text cannot be decoded: {problem}. It is neither "
                    "UTF-8 nor Windows-1252; save it from Excel as 'CSV UTF-8' and upload again")
        return result
    result.encoding = {"utf-8-sig": "utf-8 (BOM)"}.get(encoding, encoding)
    if encoding == "cp1252":
        result.fail("IMP-ENCODING-CP1252", f"{path}: not UTF-8; read as Windows-1252 (cp1252)",
                    severity=Severity.INFO)
    if not text.strip():
        result.fail("IMP-FILE-EMPTY", f"{path}: the file holds no text; upload the filled file")
        return result
    delimiter = sniff_delimiter(text)
    result.extra["delimiter"] = delimiter
    try:
        frame = pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False,
                            na_filter=False, skip_blank_lines=False, quotechar='"', engine="c")
    except (pd.errors.ParserError, ValueError) as exc:
        result.fail("IMP-FILE-CORRUPT", f"{path}: not a consistent delimited table with delimiter "
                    f"{delimiter!r} ({exc}); check the row named and that every row has as many fields "
                    "as the header")
        return result
    if len(frame.columns) > limits.max_columns:
        result.findings.append(limit_finding(path, "IMP-LIMIT-COLUMNS", limits, "max_columns",
                                             len(frame.columns), f"the header has {len(frame.columns):,} "
                                             "fields", "Delete the unused columns."))
        return result
    frame.index = pd.RangeIndex(2, len(frame) + 2)
    if widest > limits.max_string_length:  # only then can a cell be too long
        for position, column in enumerate(frame.columns):
            lengths = frame[column].str.len()
            if len(lengths) and lengths.max() > limits.max_string_length:
                row = int(lengths.idxmax())
                ref = f"{column_ref(position)}{row}"
                result.findings.append(limit_finding(
                    path, "IMP-LIMIT-STRING", limits, "max_string_length", int(lengths.max()),
                    f"cell {ref} (line {row}, column {str(column)[:40]!r}) holds {int(lengths.max()):,} "
                    "characters of text", f"Shorten the text in line {row}."))
                return result
    blank = (frame == "").all(axis=1)
    frame = frame[~blank]
    columns = [str(c) for c in frame.columns]
    result.tables.append(RawTable(name=path.stem, kind="dataset", columns=columns, values=frame,
                                  labels=[None] * len(columns), types=["text"] * len(columns),
                                  header_row=1))
    return result
