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
from trialkit.importers.header import find_header, header_names, offset_finding
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


def read_csv(path: str | Path, *, limits: Limits | None = None, known: frozenset[str] | None = None) -> FileRead:
    """Read a delimited text file into one :class:`RawTable` of text cells.

    Refused with one ``file`` finding (see :mod:`trialkit.importers.limits`): a file over
    ``max_file_bytes``, a line over ``max_line_bytes``, more than ``max_rows`` lines or
    ``max_columns`` fields, a cell over ``max_string_length`` characters; a NUL byte (the finding
    names its line). Read with the :mod:`csv` module, every field as text in its own column:

    - ``#`` comment lines and note lines above the header are skipped (the header is found by
      content, :mod:`trialkit.importers.header`; one info finding says how many lines were skipped);
    - a row with more fields than the header keeps its columns in place: an empty trailing field
      (a trailing delimiter) is dropped quietly, a non-empty one is an ``IMP-CSV-EXTRA-FIELD``
      error naming the line; a shorter row is padded with empty fields;
    - a blank header cell is named by its column letter (``B``, ``AA``) as Excel shows it.
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
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        more = text.count("\x00") - 1
        result.fail("IMP-CSV-NUL", f"{path}: line {line} holds a NUL byte (character code 0)"
                    + (f", and the file {more} more" if more else "") + ": the file was damaged (an "
                    "interrupted copy or transfer) or is not a text export; export it again from the site's "
                    "system and upload the new file", row=line)
        return result
    if not text.strip():
        result.fail("IMP-FILE-EMPTY", f"{path}: the file holds no text; upload the filled file")
        return result
    delimiter = sniff_delimiter(_without_comments(text))
    result.extra["delimiter"] = delimiter
    try:
        numbered = _records(text, delimiter)
    except csv.Error as exc:
        result.fail("IMP-FILE-CORRUPT", f"{path}: not a consistent delimited table with delimiter "
                    f"{delimiter!r} ({exc}); check the quotes in the line named")
        return result
    comments = 0
    while comments < len(numbered) and numbered[comments][1][:1] and numbered[comments][1][0].lstrip().startswith("#"):
        comments += 1
    rows = [fields for _, fields in numbered[comments:]]
    header_pos = find_header(rows, known)
    if header_pos is None:
        result.fail("IMP-FILE-EMPTY", f"{path}: the file holds no table, only comments; upload the filled file")
        return result
    header_line = numbered[comments + header_pos][0]
    skipped = comments + sum(1 for fields in rows[:header_pos] if any(f.strip() for f in fields))
    columns, blank = header_names(rows[header_pos])
    width = len(columns)
    if width > limits.max_columns:
        result.findings.append(limit_finding(path, "IMP-LIMIT-COLUMNS", limits, "max_columns", width,
                                             f"the header has {width:,} fields", "Delete the unused columns."))
        return result
    body: list[list[str]] = []
    index: list[int] = []
    for line, fields in numbered[comments + header_pos + 1:]:
        if not any(fields):
            continue  # a blank line keeps its number but is no record
        if len(fields) > width:
            extra = fields[width:]
            if any(f.strip() for f in extra):
                shown = ", ".join(repr(f[:40]) for f in extra if f.strip())
                result.fail("IMP-CSV-EXTRA-FIELD", f"{path}: line {line} has {len(fields)} fields, the header "
                            f"{width}: the extra value(s) {shown} are not read; check the line (a value that "
                            f"holds the delimiter {delimiter!r} must be in double quotes) and export it again",
                            row=line, value=shown, expected=f"{width} fields")
            fields = fields[:width]
        elif len(fields) < width:
            fields = fields + [""] * (width - len(fields))
        body.append(fields)
        index.append(line)
    frame = pd.DataFrame(body, columns=range(width), index=pd.Index(index, dtype="int64"), dtype=object) if body \
        else pd.DataFrame({i: pd.Series([], dtype=object) for i in range(width)}, index=pd.Index([], dtype="int64"))
    frame.columns = columns
    empty = [c for c in columns if c in blank and not frame[c].str.strip().astype(bool).any()]
    if empty:
        frame = frame.drop(columns=empty)
        columns = [c for c in columns if c not in empty]
        blank -= set(empty)
    if widest > limits.max_string_length:  # only then can a cell be too long
        for position, column in enumerate(columns):
            lengths = frame[column].str.len()
            if len(lengths) and lengths.max() > limits.max_string_length:
                row = int(lengths.idxmax())
                ref = f"{column_ref(position)}{row}"
                result.findings.append(limit_finding(
                    path, "IMP-LIMIT-STRING", limits, "max_string_length", int(lengths.max()),
                    f"cell {ref} (line {row}, column {str(column)[:40]!r}) holds {int(lengths.max()):,} "
                    "characters of text", f"Shorten the text in line {row}."))
                return result
    frame = frame.astype("str")
    if skipped:
        result.findings.append(offset_finding(str(path), path.stem, header_line, skipped, unit="line"))
    notes = [(line, [f for f in fields if f.strip()]) for line, fields in numbered[:comments + header_pos]]
    result.tables.append(RawTable(name=path.stem, kind="dataset", columns=columns, values=frame,
                                  labels=[None] * len(columns), types=["text"] * len(columns),
                                  header_row=header_line, blank_columns=blank,
                                  notes=[(line, cells) for line, cells in notes if cells]))
    return result


def _without_comments(text: str) -> str:
    """The text from its first line that is not a ``#`` comment (for sniffing the delimiter)."""
    position = 0
    while text.startswith("#", position) or text[position:position + 1] in (" ", "\t") and \
            text[position:].lstrip(" \t").startswith("#"):
        end = text.find("\n", position)
        if end < 0:
            return text
        position = end + 1
    return text[position:]


def _records(text: str, delimiter: str) -> list[tuple[int, list[str]]]:
    """``(line the record starts on, fields)`` for every record (a quoted field may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"')
    out: list[tuple[int, list[str]]] = []
    previous = 0
    for fields in reader:
        out.append((previous + 1, fields))
        previous = reader.line_num
    return out
