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

MAX_CSV_BYTES = 200 * 1024 * 1024
DELIMITERS = ",;\t|"


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


def read_csv(path: str | Path) -> FileRead:
    """Read a delimited text file into one :class:`RawTable` of text cells."""
    path = Path(path)
    result = FileRead(path=str(path), format="csv")
    size = path.stat().st_size
    if size > MAX_CSV_BYTES:
        result.fail("IMP-FILE-TOO-LARGE", f"{path}: {size} bytes is more than trialkit accepts; split the file")
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
    frame.index = pd.RangeIndex(2, len(frame) + 2)
    blank = (frame == "").all(axis=1)
    frame = frame[~blank]
    columns = [str(c) for c in frame.columns]
    result.tables.append(RawTable(name=path.stem, kind="dataset", columns=columns, values=frame,
                                  labels=[None] * len(columns), types=["text"] * len(columns),
                                  header_row=1))
    return result
