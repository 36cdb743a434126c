"""Exports that keep the metadata: Parquet, CSV, SAS transport v5, SPSS, Stata and CDISC
Dataset-JSON v1.1 (JSON and NDJSON), plus codebooks and define.xml.

A dataset to export is a pandas frame plus its metadata: a label for every column (``labels``, or
``frame.attrs["labels"]``), optional value labels (``{"SEX": {"M": "Male", "F": "Female"}}``, or
``frame.attrs["value_labels"]``), a dataset name and a dataset label. Column types are inferred
(:func:`column_types`) and can be pinned with ``types`` / ``frame.attrs["types"]``.

Every file is written to a temporary file in its own directory and moved into place with
:func:`os.replace`, so a reader never sees half a file. :func:`write_output_set` goes one step
further: it writes a whole set into a fresh staging directory and swaps it in, so an interrupted
run leaves the previous complete set (see :func:`write_output_set` for the one short window).

Outputs are byte-identical for identical inputs. pyreadstat stamps the current time into XPT, SAV
and DTA headers and offers no option to set it, so those fields are overwritten after writing with a
value derived from ``created`` (default :data:`DEFAULT_CREATED`); each field sits at a position the
format documents (SAS TS-140 library and member headers; the SPSS system-file header at byte 92;
the Stata 118 ``<timestamp>`` element), and the bytes found there are checked to look like a
timestamp before anything is replaced. The xlsx codebook's zip entries and document properties are
normalised the same way.

Decisions (documented here because they change what a statistician sees):

- **XPT v5 text** is written as UTF-8. Non-ASCII text is allowed when it fits the limits counted in
  **bytes** (labels ≤ 40, values ≤ 200); pass ``xpt_ascii_only=True`` to refuse it, as FDA
  submissions require. Names must be upper case (``A-Z0-9_``, ≤ 8, not starting with a digit); the
  member name is the dataset name in upper case (file ``adsl.xpt``, member ``ADSL``). XPT cannot
  hold value labels: they are in the codebooks.
- **Stata** attaches value labels to integers only. A text-coded column with value labels (``SEX``)
  is kept as text and gains a numeric twin ``SEXN`` coded 1, 2, … in the order of its value labels,
  carrying those labels (the CDISC ``xxN`` convention); a value without a label is missing in the
  twin (the text column still has it). An existing ``SEXN`` column is an error.
- **SPSS** takes text value labels directly.
- **Dates** (``date`` type) are SAS ``DATE9.``, SPSS ``DATE11``, Stata ``%td``, Parquet ``date32``
  and ``YYYY-MM-DD`` in CSV; datetimes are ``DATETIME20.``, ``DATETIME20``, ``%tc``, timestamp(us)
  and ``YYYY-MM-DDTHH:MM:SS``.
- **CSV** is UTF-8 without a byte-order mark, comma-separated, ``\\r\\n`` line ends (RFC 4180),
  ``.`` decimal (no exponent), booleans ``true``/``false``, empty for missing; every text
  cell passes through :func:`neutralise_formula`.
- **Dataset-JSON v1.1** (``datasetjson`` → ``<name>.json``; ``ndjson`` → ``<name>.ndjson``, the
  metadata on the first line and one row per line): dataset and column names in upper case,
  ``itemGroupOID`` ``IG.<NAME>`` and ``itemOID`` ``IT.<NAME>.<VAR>`` as in define.xml, dates and
  datetimes as ISO 8601 text with ``targetDataType`` ``integer`` (SAS numeric dates), floats as
  ``double``, missing values as ``null``, the creation time from ``created``; keys (``keySequence``)
  from the dataset's metadata (:mod:`trialkit.metadata`).
- **define.xml** (Define-XML 2.1) is written by :func:`write_output_set` when it is given the
  study (:class:`trialkit.metadata.StudyInfo`); see :mod:`trialkit.define`.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import math
import os
import re
import secrets
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trialkit.errors import TrialkitError
from trialkit.metadata import DatasetMeta, StudyInfo
from trialkit.outputs import MARKER

__all__ = [
    "DEFAULT_CREATED",
    "FORMATS",
    "Dataset",
    "ExportError",
    "check_dta",
    "check_sav",
    "check_xpt",
    "column_types",
    "make_dataset",
    "neutralise_formula",
    "remove_leftovers",
    "write_codebook",
    "write_dataset",
    "write_output_set",
]

#: The formats :func:`write_dataset` knows, each written to ``<name>.<extension>``.
FORMATS = ("parquet", "csv", "xpt", "sav", "dta", "datasetjson", "ndjson")
#: The file extension of each format (the format's name unless listed).
EXTENSIONS = {"datasetjson": "json"}
#: The Define-XML file of an output set.
DEFINE_FILE = "define.xml"
#: The Dataset-JSON version written.
DATASET_JSON_VERSION = "1.1.0"
#: The timestamp stamped into file headers when no ``created`` is given (keeps rebuilds identical).
DEFAULT_CREATED = dt.datetime(2000, 1, 1, 0, 0, 0)
#: Rows per Parquet row group: fixed so the bytes do not depend on a library default.
PARQUET_ROW_GROUP_SIZE = 65_536
#: Text starting with one of these is read as a formula by spreadsheets (OWASP CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

_TYPES = ("string", "integer", "float", "boolean", "date", "datetime")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_XPT_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,7}")
_STATA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")
_STATA_RESERVED = frozenset(
    "_all _b byte _coef _cons double float if in int long _n _N _pi _pred _rc _se _skip str "
    "strL using with".split()
)
_SPSS_NAME = re.compile(r"[A-Za-z@][A-Za-z0-9_.@#$]*")
_SPSS_RESERVED = frozenset("ALL AND BY EQ GE GT LE LT NE NOT OR TO WITH".split())
_STATA_STR_MAX_BYTES = 2045
_PREVIEW = 5  # rows named per violation before "and N more"


class ExportError(TrialkitError):
    """A dataset cannot be written in a format without losing something; lists every violation."""


@dataclass(frozen=True)
class Dataset:
    """A frame with the metadata that travels with it into every format."""

    frame: pd.DataFrame
    labels: Mapping[str, str] = field(default_factory=dict)
    value_labels: Mapping[str, Mapping[Any, str]] = field(default_factory=dict)
    label: str = ""
    types: Mapping[str, str] = field(default_factory=dict)
    metadata: DatasetMeta | None = None
    # The writers' typed frames (see _typed), computed once per dataset and representation.
    _typed_frames: dict[Any, pd.DataFrame] = field(default_factory=dict, repr=False, compare=False)


def extension(fmt: str) -> str:
    """The file extension of a format (``datasetjson`` → ``json``)."""
    return EXTENSIONS.get(fmt, fmt)


def make_dataset(
    frame: pd.DataFrame,
    labels: Mapping[str, str] | None = None,
    value_labels: Mapping[str, Mapping[Any, str]] | None = None,
    dataset_label: str | None = None,
    types: Mapping[str, str] | None = None,
    metadata: DatasetMeta | None = None,
) -> Dataset:
    """A :class:`Dataset`, taking labels, value labels, types and metadata (origins, derivations,
    keys, parameters: :class:`trialkit.metadata.DatasetMeta`) from ``frame.attrs`` when not given.

    >>> ds = make_dataset(pd.DataFrame({"AGE": [3]}), {"AGE": "Age (years)"})
    >>> ds.labels["AGE"], ds.types["AGE"]
    ('Age (years)', 'integer')
    """
    attrs = frame.attrs
    labels = dict(labels if labels is not None else attrs.get("labels", {}))
    value_labels = dict(value_labels if value_labels is not None else attrs.get("value_labels", {}))
    label = dataset_label if dataset_label is not None else (attrs.get("label") or attrs.get("dataset_label", ""))
    pinned = dict(types if types is not None else attrs.get("types", {}))
    problems = [
        f"labels name column {c!r}, which is not in the frame" for c in labels if c not in frame
    ]
    problems += [
        f"value labels name column {c!r}, which is not in the frame"
        for c in value_labels
        if c not in frame
    ]
    problems += [
        f"type {t!r} of column {c!r} is not one of {', '.join(_TYPES)}"
        for c, t in pinned.items()
        if t not in _TYPES
    ]
    if any(not isinstance(c, str) for c in frame.columns):
        problems.append("column names must be text")
    if problems:
        raise ExportError("Cannot export: " + "; ".join(problems))
    meta = metadata if metadata is not None else attrs.get("metadata")
    if isinstance(meta, DatasetMeta):
        meta = meta.restricted(frame.columns)
    else:
        meta = None
    if frame.attrs:
        # Everything the attrs said is now in the Dataset; without them, pandas no longer deep-copies
        # the metadata (codelists, derivations) on every column operation of the writers.
        frame = frame.copy(deep=False)
        frame.attrs = {}
    return Dataset(frame, labels, value_labels, label or "", column_types(frame, pinned), meta)


def column_types(frame: pd.DataFrame, pinned: Mapping[str, str] | None = None) -> dict[str, str]:
    """The trialkit type of each column: string, integer, float, boolean, date or datetime.

    A datetime column whose every value is at midnight is a ``date`` (trialkit holds dates as
    ``datetime64``); pin ``{"COL": "datetime"}`` to keep such a column a datetime.

    >>> column_types(pd.DataFrame({"D": pd.to_datetime(["2024-01-02"]), "X": [1.5]}))
    {'D': 'date', 'X': 'float'}
    """
    pinned = pinned or {}
    return {str(col): pinned.get(col) or _infer_type(frame[col]) for col in frame.columns}


def _infer_type(series: pd.Series) -> str:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        values = series.dropna()
        return "date" if (values == values.dt.normalize()).all() else "datetime"
    values = series.dropna()
    if len(values) and all(
        isinstance(v, dt.date) and not isinstance(v, dt.datetime) for v in values
    ):
        return "date"
    if len(values) and all(isinstance(v, dt.datetime) for v in values):
        return "datetime"
    return "string"


def neutralise_formula(text: str) -> str:
    """``text`` made safe to open in a spreadsheet: a leading ``= + - @``, tab or CR gets a ``'``.

    Only text is neutralised; write numbers as numbers so that ``-1.5`` stays a number.

    >>> neutralise_formula('=HYPERLINK("x")'), neutralise_formula("-3 mg"), neutralise_formula("ok")
    ('\\'=HYPERLINK("x")', "'-3 mg", 'ok')
    """
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


# --------------------------------------------------------------------------------------------
# Normalised column values
# --------------------------------------------------------------------------------------------


def _as_text(series: pd.Series) -> pd.Series:
    """Text values as an object Series of ``str`` or None."""
    if isinstance(series.dtype, pd.StringDtype):
        # Every value is already a str: convert in one vectorised step (a per-value loop costs
        # ~4 s per million rows and column when pooling a diary).
        values = series.to_numpy(dtype=object, na_value=None)
        return pd.Series(values, index=series.index, dtype=object)
    return pd.Series(
        [None if _missing(v) else str(v) for v in series], index=series.index, dtype=object
    )


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, str | bytes) and bool(pd.isna(value)))


def _as_dates(series: pd.Series) -> pd.Series:
    """Dates as an object Series of ``datetime.date`` or None (what pyreadstat writes as dates)."""
    stamps = pd.to_datetime(series, errors="raise")
    # ``.dt.date`` boxes in compiled code (a per-value ``.date()`` loop was ~6 s per million rows).
    dates = pd.Series(stamps.dt.date.to_numpy(dtype=object), index=series.index, dtype=object)
    return dates.where(stamps.notna().to_numpy(), None)


def _as_datetimes(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, errors="raise").astype("datetime64[us]")


def _typed(ds: Dataset, *, arrow: bool = False) -> pd.DataFrame:
    """The frame with each column in the one representation the writers expect for its type.

    ``arrow=True`` (Parquet) keeps what pyarrow converts itself without Python objects: text in a
    pandas string dtype as it is, and naive datetime64 dates normalised to midnight (pyarrow casts
    them to ``date32``); the values written are the same. Computed once per dataset (the checks and
    every writer of an output set share it); callers must not modify the frame.
    """
    key = (arrow, id(ds.frame), tuple(ds.types.items()))
    if key not in ds._typed_frames:
        ds._typed_frames.clear()
        ds._typed_frames[key] = _compute_typed(ds, arrow=arrow)
    return ds._typed_frames[key]


def _compute_typed(ds: Dataset, *, arrow: bool = False) -> pd.DataFrame:
    out = {}
    for col, kind in ds.types.items():
        series = ds.frame[col].reset_index(drop=True)
        if arrow and kind == "string" and isinstance(series.dtype, pd.StringDtype):
            out[col] = series
        elif arrow and kind == "date" and isinstance(series.dtype, np.dtype) and series.dtype.kind == "M":
            out[col] = series.dt.normalize()
        elif kind == "string":
            out[col] = _as_text(series)
        elif kind == "integer":
            out[col] = series.astype("Int64")
        elif kind == "float":
            out[col] = series.astype("float64")
        elif kind == "boolean":
            out[col] = series.astype("boolean")
        elif kind == "date":
            out[col] = _as_dates(series)
        else:
            out[col] = _as_datetimes(series)
    return pd.DataFrame(out, columns=list(ds.types))


def _for_readstat(frame: pd.DataFrame, types: Mapping[str, str]) -> pd.DataFrame:
    """pyreadstat wants floats for numbers (NaN for missing), 0/1 for booleans, '' for missing text."""
    out = frame.copy()
    for col, kind in types.items():
        if kind in ("integer", "boolean"):
            out[col] = frame[col].astype("Float64").astype("float64")
        elif kind == "string":
            out[col] = frame[col].astype(object).where(frame[col].notna(), None)
        elif kind in ("date", "datetime") and frame[col].isna().all():
            # A date column with no value at all would reach pyreadstat as text with a date format,
            # which SAS and pyreadstat refuse to read: write it numeric (all missing) instead.
            out[col] = pd.Series(float("nan"), index=frame.index, dtype="float64")
    return out


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def _nbytes(text: str) -> int:
    return len(text.encode("utf-8"))


def _rows(mask: pd.Series) -> str:
    rows = [int(i) + 1 for i in np.flatnonzero(mask.to_numpy())]
    shown = ", ".join(str(r) for r in rows[:_PREVIEW])
    return (
        f"row {shown}"
        if len(rows) == 1
        else f"rows {shown}" + (f" and {len(rows) - _PREVIEW} more" if len(rows) > _PREVIEW else "")
    )


def check_xpt(ds: Dataset, name: str, *, ascii_only: bool = False) -> list[str]:
    """Every reason ``ds`` cannot be SAS transport v5 without truncation (empty when it can)."""
    problems: list[str] = []
    member = name.upper()
    if not _XPT_NAME.fullmatch(member):
        problems.append(
            f"dataset name {name!r}: XPT v5 needs 1-8 characters A-Z, 0-9, _ not starting with a digit"
        )
    label = ds.label
    if _nbytes(label) > 40:
        problems.append(f"dataset {name!r} label is {_nbytes(label)} bytes; XPT v5 allows 40")
    if ascii_only and not label.isascii():
        problems.append(f"dataset {name!r} label has non-ASCII characters")
    typed = _typed(ds)
    for col, kind in ds.types.items():
        if not _XPT_NAME.fullmatch(col):
            problems.append(
                f"variable {col!r}: XPT v5 names are 1-8 characters A-Z, 0-9, _ (upper case), not starting with a digit"
            )
        text = ds.labels.get(col, "")
        if _nbytes(text) > 40:
            problems.append(
                f"variable {col!r}: label is {len(text)} characters, {_nbytes(text)} bytes in UTF-8; XPT v5 allows 40 bytes"
            )
        if ascii_only and not text.isascii():
            problems.append(f"variable {col!r}: label has non-ASCII characters")
        if kind == "string":
            values = typed[col]
            too_long = None
            if _max_bytes(values) > 200:  # only then per row, to name the rows
                sizes = values.map(lambda v: 0 if v is None else _nbytes(v))
                too_long = sizes > 200
            if too_long is not None and too_long.any():
                problems.append(
                    f"variable {col!r}: values up to {int(sizes.max())} bytes in UTF-8 ({_rows(too_long)}); XPT v5 allows 200"
                )
            if ascii_only:
                non_ascii = values.map(lambda v: v is not None and not v.isascii())
                if non_ascii.any():
                    problems.append(f"variable {col!r}: non-ASCII text ({_rows(non_ascii)})")
    return problems


def _stata_codes(ds: Dataset) -> dict[str, tuple[str, dict[float, str]]]:
    """Numeric twins for Stata: text column → (twin name, {code: label})."""
    twins = {}
    for col, labels in ds.value_labels.items():
        if ds.types[col] == "string":
            twins[col] = (
                f"{col}N",
                {float(i): str(v) for i, v in enumerate(labels.values(), start=1)},
            )
    return twins


def _numeric_value_labels(
    col: str, kind: str, labels: Mapping[Any, str], problems: list[str], *, integers: bool
) -> dict[float, str]:
    out: dict[float, str] = {}
    for code, text in labels.items():
        try:
            number = float(code)
        except (TypeError, ValueError):
            problems.append(f"variable {col!r} ({kind}): value label code {code!r} is not a number")
            continue
        if integers and not (math.isfinite(number) and number.is_integer()):
            problems.append(
                f"variable {col!r}: Stata value labels need whole-number codes, got {code!r}"
            )
            continue
        out[number] = str(text)
    return out


def check_dta(ds: Dataset, name: str) -> list[str]:
    """Every reason ``ds`` cannot be a Stata 14 (format 118) file without loss."""
    problems: list[str] = []
    if len(ds.label) > 80:
        problems.append(f"dataset {name!r} label is {len(ds.label)} characters; Stata allows 80")
    twins = _stata_codes(ds)
    typed = _typed(ds)
    for col, kind in ds.types.items():
        if not _STATA_NAME.fullmatch(col) or col in _STATA_RESERVED:
            problems.append(
                f"variable {col!r}: Stata names are 1-32 characters A-Z, a-z, 0-9, _ not starting with a digit, and not reserved"
            )
        text = ds.labels.get(col, "")
        if len(text) > 80:
            problems.append(f"variable {col!r}: label is {len(text)} characters; Stata allows 80")
        if kind == "string":
            longest = _max_bytes(typed[col])
            if longest > _STATA_STR_MAX_BYTES:
                problems.append(
                    f"variable {col!r}: values up to {longest} bytes; Stata str allows {_STATA_STR_MAX_BYTES}"
                )
        labels = ds.value_labels.get(col)
        if labels is None:
            continue
        if col in twins:
            twin = twins[col][0]
            if twin in ds.frame.columns:
                problems.append(
                    f"variable {col!r}: its numeric twin {twin!r} for Stata value labels already exists"
                )
            if len(twin) > 32:
                problems.append(
                    f"variable {col!r}: twin name {twin!r} is longer than 32 characters"
                )
        elif kind in ("integer", "float", "boolean"):
            _numeric_value_labels(col, kind, labels, problems, integers=True)
        else:
            problems.append(f"variable {col!r}: value labels on a {kind} column")
        long_texts = [t for t in labels.values() if _nbytes(str(t)) > 32000]
        if long_texts:
            problems.append(f"variable {col!r}: a value label is longer than 32000 bytes")
    return problems


def check_sav(ds: Dataset, name: str) -> list[str]:
    """Every reason ``ds`` cannot be an SPSS system file without truncation."""
    problems: list[str] = []
    if _nbytes(ds.label) > 64:
        problems.append(f"dataset {name!r} label is {_nbytes(ds.label)} bytes; SPSS allows 64")
    for col, kind in ds.types.items():
        if (
            not _SPSS_NAME.fullmatch(col)
            or col.endswith(".")
            or _nbytes(col) > 64
            or col.upper() in _SPSS_RESERVED
        ):
            problems.append(
                f"variable {col!r}: SPSS names are up to 64 bytes, start with a letter, hold letters, digits, _ . @ # $, and are not reserved words"
            )
        text = ds.labels.get(col, "")
        if _nbytes(text) > 255:
            problems.append(f"variable {col!r}: label is {_nbytes(text)} bytes; SPSS allows 255")
        labels = ds.value_labels.get(col)
        if labels is None:
            continue
        if kind in ("integer", "float", "boolean"):
            _numeric_value_labels(col, kind, labels, problems, integers=False)
        elif kind != "string":
            problems.append(f"variable {col!r}: value labels on a {kind} column")
        for text_label in labels.values():
            if _nbytes(str(text_label)) > 120:
                problems.append(
                    f"variable {col!r}: value label {str(text_label)[:20]!r}… is {_nbytes(str(text_label))} bytes; SPSS allows 120"
                )
    return problems


def _raise_if(problems: list[str], fmt: str, name: str) -> None:
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ExportError(
            f"Cannot write dataset {name!r} as {fmt} without losing information ({len(problems)} problem(s)):\n{lines}\nRename, shorten or recode these, or leave out the {fmt} format."
        )


# --------------------------------------------------------------------------------------------
# Atomic files and fixed timestamps
# --------------------------------------------------------------------------------------------


@contextmanager
def _atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target``; on success it is fsynced and moved onto ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _write_bytes(target: Path, data: bytes) -> None:
    with _atomic_path(target) as tmp:
        tmp.write_bytes(data)


def _patch(data: bytearray, offset: int, pattern: str, value: bytes, what: str) -> None:
    found = bytes(data[offset : offset + len(value)])
    if len(found) != len(value) or not re.fullmatch(pattern.encode(), found):
        raise ExportError(
            f"Cannot fix the {what} timestamp: expected one at byte {offset}, found {found!r}. The pyreadstat version may have changed the layout; pin pyreadstat or update trialkit.export."
        )
    data[offset : offset + len(value)] = value


def _fix_xpt(data: bytearray, created: dt.datetime) -> None:
    """SAS TS-140: the library header's 2nd and 3rd records start (created) and end (modified)
    with ``ddMMMyy:hh:mm:ss``; the member descriptor records do the same (one member per file)."""
    stamp = f"{created:%d}{_MONTHS[created.month - 1]}{created:%y:%H:%M:%S}".encode("ascii")
    pattern = r"\d\d[A-Z]{3}\d\d:\d\d:\d\d:\d\d"
    if (
        not data.startswith(b"HEADER RECORD*******LIBRARY HEADER RECORD!!!!!!!")
        or data[240:288] != b"HEADER RECORD*******MEMBER  HEADER RECORD!!!!!!!"
    ):
        raise ExportError(
            "Cannot fix the XPT timestamp: the file does not start with the SAS transport v5 library and member headers."
        )
    for offset in (144, 160, 464, 480):
        _patch(data, offset, pattern, stamp, "XPT")


def _fix_sav(data: bytearray, created: dt.datetime) -> None:
    """SPSS system file header: creation date ``dd mmm yy`` at byte 92, time ``hh:mm:ss`` at 101."""
    if data[:4] not in (b"$FL2", b"$FL3"):
        raise ExportError(
            "Cannot fix the SAV timestamp: the file does not start with an SPSS system-file header."
        )
    day = f"{created:%d} {_MONTHS[created.month - 1].title()} {created:%y}".encode("ascii")
    _patch(data, 92, r"[ \d]\d [A-Z][a-z]{2} \d\d", day, "SAV date")
    _patch(data, 101, r"\d\d:\d\d:\d\d", f"{created:%H:%M:%S}".encode("ascii"), "SAV time")


def _fix_dta(data: bytearray, created: dt.datetime) -> None:
    """Stata 118 header: ``<label>`` (2-byte length + text) then ``<timestamp>`` (1-byte length 17 +
    ``dd Mon yyyy hh:mm``)."""
    start = data.find(b"</N><label>", 0, 200)
    if not data.startswith(b"<stata_dta><header><release>118</release><byteorder>") or start < 0:
        raise ExportError("Cannot fix the DTA timestamp: the file is not a Stata 118 file.")
    order = "little" if data[52:55] == b"LSF" else "big"
    at = start + len(b"</N><label>")
    label_len = int.from_bytes(data[at : at + 2], order)
    at += 2 + label_len
    if data[at : at + len(b"</label><timestamp>")] != b"</label><timestamp>":
        raise ExportError("Cannot fix the DTA timestamp: no <timestamp> after the dataset label.")
    at += len(b"</label><timestamp>")
    stamp = f"{created.day:02d} {_MONTHS[created.month - 1].title()} {created:%Y %H:%M}".encode(
        "ascii"
    )
    _patch(data, at, r"\x11[ \d]\d [A-Z][a-z]{2} \d{4} \d\d:\d\d", b"\x11" + stamp, "DTA")


def _readstat_write(
    target: Path,
    writer: Callable[[Path], None],
    fix: Callable[[bytearray, dt.datetime], None],
    created: dt.datetime,
) -> None:
    with _atomic_path(target) as tmp:
        writer(tmp)
        data = bytearray(tmp.read_bytes())
        fix(data, created)
        tmp.write_bytes(bytes(data))


# --------------------------------------------------------------------------------------------
# Writers, one per format
# --------------------------------------------------------------------------------------------


def _json_code(code: Any) -> Any:
    if isinstance(code, np.generic):
        code = code.item()
    return code if isinstance(code, str | int | float | bool) else str(code)


def _metadata(ds: Dataset, name: str) -> dict[str, Any]:
    """The trialkit metadata stored with a dataset (Parquet schema, codebooks)."""
    return {
        "dataset": name,
        "label": ds.label,
        "columns": [
            {
                "name": col,
                "label": ds.labels.get(col, ""),
                "type": kind,
                "value_labels": [
                    [_json_code(c), str(t)] for c, t in ds.value_labels.get(col, {}).items()
                ],
            }
            for col, kind in ds.types.items()
        ],
    }


def _write_parquet(ds: Dataset, name: str, target: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow_types = {
        "string": pa.string(),
        "integer": pa.int64(),
        "float": pa.float64(),
        "boolean": pa.bool_(),
        "date": pa.date32(),
        "datetime": pa.timestamp("us"),
    }
    fields = [
        pa.field(col, arrow_types[kind], nullable=True, metadata={"label": ds.labels.get(col, "")})
        for col, kind in ds.types.items()
    ]
    schema = pa.schema(fields)
    table = pa.Table.from_pandas(_typed(ds, arrow=True), schema=schema, preserve_index=False)
    # The pandas metadata (dtypes restored on reading) is that of the object-typed frame, as
    # before the fast path: taken from the same conversion of zero rows.
    empty = Dataset(ds.frame.iloc[:0], ds.labels, ds.value_labels, ds.label, ds.types)
    meta = dict(pa.Table.from_pandas(_typed(empty), schema=schema, preserve_index=False).schema.metadata or {})
    meta[b"trialkit"] = json.dumps(_metadata(ds, name), sort_keys=True, ensure_ascii=False).encode(
        "utf-8"
    )
    table = table.replace_schema_metadata(meta)
    with _atomic_path(target) as tmp:
        pq.write_table(
            table,
            tmp,
            compression="zstd",
            row_group_size=PARQUET_ROW_GROUP_SIZE,
            use_dictionary=True,
            write_statistics=True,
        )


def _csv_cell(value: Any, kind: str) -> str:
    if _missing(value):
        return ""
    if kind == "string":
        return neutralise_formula(str(value))
    if kind == "integer":
        return str(int(value))
    if kind == "float":
        return np.format_float_positional(float(value), trim="-") if math.isfinite(value) else ""
    if kind == "boolean":
        return "true" if bool(value) else "false"
    if kind == "date":
        return value.isoformat()
    return pd.Timestamp(value).isoformat()


def _write_csv_rows(target: Path, header: list[str], rows: Iterable[list[str]]) -> None:
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\r\n")
    out.writerow([neutralise_formula(h) for h in header])
    out.writerows(rows)
    _write_bytes(target, buffer.getvalue().encode("utf-8"))


def _codebook_rows(ds: Dataset) -> list[list[str]]:
    return [
        [
            col,
            ds.labels.get(col, ""),
            kind,
            json.dumps(
                {str(c): str(t) for c, t in ds.value_labels.get(col, {}).items()},
                ensure_ascii=False,
            )
            if col in ds.value_labels
            else "",
            *_origin(ds, col),
        ]
        for col, kind in ds.types.items()
    ]


def _csv_column(series: pd.Series, kind: str) -> list[str]:
    """One typed column as CSV cells, exactly as :func:`_csv_cell` writes each value (column by
    column, numbers through a table of their distinct values: a row loop cost ~1 s per 100,000)."""
    values = series.to_numpy(dtype=object, na_value=None) if kind != "date" else series.to_numpy(dtype=object)
    if kind == "string":
        return ["" if v is None else ("'" + v if v.startswith(FORMULA_PREFIXES) else v)
                if isinstance(v, str) else _csv_cell(v, kind) for v in values]
    if kind in ("float", "integer"):
        seen: dict[Any, str] = {}
        out = []
        for v in values:
            if v is None or v != v:  # NA / NaN
                out.append("")
                continue
            if v == 0:  # 0.0 and -0.0 are one key but two texts
                out.append(_csv_cell(v, kind))
                continue
            text = seen.get(v)
            if text is None:
                text = seen[v] = _csv_cell(v, kind)
            out.append(text)
        return out
    if kind == "date":  # datetime.date or None (see _as_dates)
        return ["" if v is None else v.isoformat() if isinstance(v, dt.date) else _csv_cell(v, kind) for v in values]
    if kind == "boolean":
        return ["" if v is None else "true" if v is True else "false" if v is False else _csv_cell(v, kind)
                for v in values]
    return [_csv_cell(v, kind) for v in values]


def _write_csv(ds: Dataset, name: str, target: Path, codebook: Path) -> None:
    typed = _typed(ds)
    columns = [_csv_column(typed[col], kind) for col, kind in ds.types.items()]
    rows = zip(*columns, strict=True) if columns else ([] for _ in range(len(typed)))
    _write_csv_rows(target, list(ds.types), rows)
    book = [[neutralise_formula(cell) for cell in row] for row in _codebook_rows(ds)]
    _write_csv_rows(codebook, ["column", "label", "type", "value_labels", "origin", "derivation"], book)


def _write_xpt(
    ds: Dataset, name: str, target: Path, created: dt.datetime, ascii_only: bool
) -> None:
    import pyreadstat

    _raise_if(check_xpt(ds, name, ascii_only=ascii_only), "SAS transport v5 (xpt)", name)
    formats = {
        c: "DATE9" if k == "date" else "DATETIME20"
        for c, k in ds.types.items()
        if k in ("date", "datetime")
    }
    frame = _for_readstat(_typed(ds), ds.types)

    def write(path: Path) -> None:
        pyreadstat.write_xport(
            frame,
            os.fspath(path),
            file_label=ds.label,
            column_labels={c: ds.labels.get(c, "") for c in frame.columns},
            table_name=name.upper(),
            file_format_version=5,
            variable_format=formats,
        )

    _readstat_write(target, write, _fix_xpt, created)


def _write_sav(ds: Dataset, name: str, target: Path, created: dt.datetime) -> None:
    import pyreadstat

    problems = check_sav(ds, name)
    _raise_if(problems, "SPSS (sav)", name)
    value_labels: dict[str, dict[Any, str]] = {}
    for col, labels in ds.value_labels.items():
        if ds.types[col] == "string":
            value_labels[col] = {str(c): str(t) for c, t in labels.items()}
        else:
            value_labels[col] = _numeric_value_labels(
                col, ds.types[col], labels, problems, integers=False
            )
    formats = {
        c: {"date": "DATE11", "datetime": "DATETIME20", "integer": "F8.0", "boolean": "F1.0"}[k]
        for c, k in ds.types.items()
        if k in ("date", "datetime", "integer", "boolean")
    }
    frame = _for_readstat(_typed(ds), ds.types)

    def write(path: Path) -> None:
        pyreadstat.write_sav(
            frame,
            os.fspath(path),
            file_label=ds.label,
            column_labels={c: ds.labels.get(c, "") for c in frame.columns},
            variable_value_labels=value_labels or None,
            variable_format=formats,
        )

    _readstat_write(target, write, _fix_sav, created)


def _write_dta(ds: Dataset, name: str, target: Path, created: dt.datetime) -> None:
    import pyreadstat

    problems = check_dta(ds, name)
    _raise_if(problems, "Stata (dta)", name)
    typed = _typed(ds)
    frame = _for_readstat(typed, ds.types)
    column_labels = {c: ds.labels.get(c, "") for c in frame.columns}
    value_labels: dict[str, dict[float, str]] = {}
    twins = _stata_codes(ds)
    for col, labels in ds.value_labels.items():
        if col in twins:
            twin, coded = twins[col]
            lookup = {str(code): number for code, number in zip(labels, coded, strict=True)}
            position = frame.columns.get_loc(col) + 1
            frame.insert(
                position,
                twin,
                typed[col].map(lookup).astype("float64").to_numpy(),  # NaN where missing or unlabelled
            )
            column_labels[twin] = f"{ds.labels.get(col, col)} (N)"[:80]
            value_labels[twin] = coded
        else:
            value_labels[col] = _numeric_value_labels(
                col, ds.types[col], labels, problems, integers=True
            )

    def write(path: Path) -> None:
        pyreadstat.write_dta(
            frame,
            os.fspath(path),
            file_label=ds.label,
            column_labels=column_labels,
            version=14,
            variable_value_labels=value_labels or None,
        )

    _readstat_write(target, write, _fix_dta, created)


# --------------------------------------------------------------------------------------------
# Dataset-JSON v1.1
# --------------------------------------------------------------------------------------------

_JSON_TYPES = {"string": "string", "integer": "integer", "float": "double", "boolean": "boolean",
               "date": "date", "datetime": "datetime"}
_DISPLAY_FORMATS = {"date": "DATE9.", "datetime": "DATETIME20."}


def item_group_oid(name: str) -> str:
    """The OID of a dataset in define.xml and Dataset-JSON (``IG.<NAME>``)."""
    return f"IG.{name.upper()}"


def item_oid(name: str, column: str) -> str:
    """The OID of a variable in define.xml and Dataset-JSON (``IT.<NAME>.<VAR>``)."""
    return f"IT.{name.upper()}.{column}"


def text_length(values: pd.Series) -> int:
    """The longest value of a text column in UTF-8 bytes (at least 1)."""
    return max(1, _max_bytes(values))


def _max_bytes(values: pd.Series) -> int:
    """The longest text of a typed text column (str or None) in UTF-8 bytes; 0 when none, each
    distinct value measured once."""
    distinct = pd.unique(values.to_numpy(dtype=object))  # hashed in compiled code, not a Python set
    return max((_nbytes(v) for v in distinct if v is not None), default=0)


def _default_study() -> StudyInfo:
    return StudyInfo(oid="trialkit", name="trialkit")


def dataset_json_metadata(ds: Dataset, name: str, study: StudyInfo | None, created: dt.datetime,
                          typed: pd.DataFrame | None = None) -> dict[str, Any]:
    """The Dataset-JSON v1.1 top-level object of ``ds`` without ``rows``."""
    from trialkit import __version__

    study = study or _default_study()
    typed = _typed(ds) if typed is None else typed
    keys = list(ds.metadata.keys) if ds.metadata is not None else []
    columns = []
    for col, kind in ds.types.items():
        column: dict[str, Any] = {"itemOID": item_oid(name, col), "name": col, "label": ds.labels.get(col, ""),
                                  "dataType": _JSON_TYPES[kind]}
        if kind in ("date", "datetime"):
            column["targetDataType"] = "integer"
            column["displayFormat"] = _DISPLAY_FORMATS[kind]
        if kind == "string":
            column["length"] = text_length(typed[col])
        if col in keys:
            column["keySequence"] = keys.index(col) + 1
        columns.append(column)
    return {
        "datasetJSONCreationDateTime": created.strftime("%Y-%m-%dT%H:%M:%S"),
        "datasetJSONVersion": DATASET_JSON_VERSION,
        "fileOID": f"{study.oid}.{name.upper()}",
        "originator": study.originator,
        "sourceSystem": {"name": study.source_system, "version": study.source_version or __version__},
        "studyOID": study.oid,
        "metaDataVersionOID": study.mdv_oid,
        "metaDataRef": "define.xml",
        "itemGroupOID": item_group_oid(name),
        "records": len(ds.frame),
        "name": name.upper(),
        "label": ds.label,
        "columns": columns,
    }


def _json_value(value: Any, kind: str) -> Any:
    if _missing(value):
        return None
    if kind == "string":
        return str(value)
    if kind == "integer":
        return int(value)
    if kind == "float":
        number = float(value)
        return number if math.isfinite(number) else None
    if kind == "boolean":
        return bool(value)
    if kind == "date":
        return value.isoformat()
    return pd.Timestamp(value).strftime("%Y-%m-%dT%H:%M:%S")


def _json_column(series: pd.Series, kind: str) -> list[str]:
    """Every value of one typed column as JSON text, exactly as :func:`_dumps` writes
    :func:`_json_value` of it (column by column: a per-cell call was ~9 s per million rows and
    ten columns). Numbers are written by ``repr`` as :mod:`json` does; text by json's own escaper."""
    missing = series.isna().to_numpy()
    values = series.tolist()
    if kind == "string":
        return ["null" if m else _encode_text(str(v)) for v, m in zip(values, missing, strict=True)]
    if kind == "integer":
        return ["null" if m else int.__repr__(int(v)) for v, m in zip(values, missing, strict=True)]
    if kind == "float":
        return ["null" if m or not math.isfinite(v) else float.__repr__(float(v))
                for v, m in zip(values, missing, strict=True)]
    if kind == "boolean":
        return ["null" if m else ("true" if v else "false") for v, m in zip(values, missing, strict=True)]
    if kind == "date":
        return ["null" if m else _encode_text(v.isoformat()) for v, m in zip(values, missing, strict=True)]
    return ["null" if m else _dumps(_json_value(v, kind)) for v, m in zip(values, missing, strict=True)]


def _json_texts(ds: Dataset, typed: pd.DataFrame) -> Iterator[str]:
    """Each row as its JSON array text: ``_dumps`` of the row's :func:`_json_value` list."""
    columns = [_json_column(typed[col], kind) for col, kind in ds.types.items()]
    if not columns:
        yield from ("[]" for _ in range(len(typed)))
        return
    for cells in zip(*columns, strict=True):
        yield "[" + ",".join(cells) + "]"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


#: json's own string escaper, as ``json.dumps(..., ensure_ascii=False)`` uses it.
_encode_text = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _write_datasetjson(ds: Dataset, name: str, target: Path, study: StudyInfo | None, created: dt.datetime,
                       *, ndjson: bool) -> None:
    typed = _typed(ds)
    meta = dataset_json_metadata(ds, name, study, created, typed)
    with _atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as handle:
        if ndjson:
            handle.write(_dumps(meta) + "\n")
            for text in _json_texts(ds, typed):
                handle.write(text + "\n")
            return
        head = _dumps(meta)
        handle.write(head[:-1] + ',"rows":[')
        for number, text in enumerate(_json_texts(ds, typed)):
            handle.write(("," if number else "") + text)
        handle.write("]}\n")


def write_dataset(
    frame: pd.DataFrame,
    directory: str | os.PathLike[str],
    name: str,
    formats: Iterable[str],
    *,
    labels: Mapping[str, str] | None = None,
    value_labels: Mapping[str, Mapping[Any, str]] | None = None,
    dataset_label: str | None = None,
    types: Mapping[str, str] | None = None,
    created: dt.datetime | None = None,
    xpt_ascii_only: bool = False,
    study: StudyInfo | None = None,
) -> dict[str, Path]:
    """Write ``frame`` as ``DIRECTORY/<name>.<format>`` for each format; returns format → path.

    ``formats`` are from :data:`FORMATS`; ``csv`` also writes ``<name>.codebook.csv`` (key
    ``csv_codebook``). Every format is checked before any file is written, so a dataset that one
    format cannot hold raises :class:`ExportError` (listing every problem) and writes nothing.
    ``created`` is the timestamp stamped into XPT, SAV and DTA headers and Dataset-JSON (default
    :data:`DEFAULT_CREATED`), so identical inputs give identical bytes; ``study`` names the study in
    Dataset-JSON (``studyOID``, ``metaDataVersionOID``).
    """
    ds = make_dataset(frame, labels, value_labels, dataset_label, types)
    return _write_ds(
        ds, Path(directory), name, _formats(formats), created or DEFAULT_CREATED, xpt_ascii_only, study
    )


def _formats(formats: Iterable[str]) -> list[str]:
    wanted = [f.strip().lower() for f in ([formats] if isinstance(formats, str) else formats)]
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown:
        raise ExportError(
            f"Unknown export format(s) {', '.join(map(repr, unknown))}; choose from {', '.join(FORMATS)}."
        )
    return list(dict.fromkeys(wanted))


def _write_ds(
    ds: Dataset,
    directory: Path,
    name: str,
    formats: list[str],
    created: dt.datetime,
    ascii_only: bool,
    study: StudyInfo | None = None,
) -> dict[str, Path]:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ExportError(f"Dataset name {name!r} cannot be a file name.")
    checks = {
        "xpt": lambda: check_xpt(ds, name, ascii_only=ascii_only),
        "sav": lambda: check_sav(ds, name),
        "dta": lambda: check_dta(ds, name),
    }
    problems = [f"{fmt}: {p}" for fmt in formats if fmt in checks for p in checks[fmt]()]
    _raise_if(problems, "/".join(f for f in formats if f in checks), name)
    paths: dict[str, Path] = {}
    for fmt in formats:
        target = directory / f"{name}.{extension(fmt)}"
        if fmt in ("datasetjson", "ndjson"):
            _write_datasetjson(ds, name, target, study, created, ndjson=fmt == "ndjson")
        elif fmt == "parquet":
            _write_parquet(ds, name, target)
        elif fmt == "csv":
            paths["csv_codebook"] = directory / f"{name}.codebook.csv"
            _write_csv(ds, name, target, paths["csv_codebook"])
        elif fmt == "xpt":
            _write_xpt(ds, name, target, created, ascii_only)
        elif fmt == "sav":
            _write_sav(ds, name, target, created)
        else:
            _write_dta(ds, name, target, created)
        paths[fmt] = target
    return paths


# --------------------------------------------------------------------------------------------
# Codebooks
# --------------------------------------------------------------------------------------------

DatasetInput = Dataset | pd.DataFrame | tuple


def _as_dataset(value: DatasetInput) -> Dataset:
    if isinstance(value, Dataset):
        return value
    if isinstance(value, pd.DataFrame):
        return make_dataset(value)
    return make_dataset(*value)


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _origin(ds: Dataset, col: str) -> tuple[str, str]:
    """(origin, derivation or source) of a column from the dataset's metadata ('' when unknown)."""
    variable = ds.metadata.variable(col) if ds.metadata is not None else None
    if variable is None:
        return "", ""
    return variable.origin, variable.derivation or variable.source or ""


def _codebook_md(datasets: Mapping[str, Dataset]) -> str:
    lines = ["# Codebook", ""]
    for name, ds in datasets.items():
        lines.append(f"## {name}" + (f": {_md_cell(ds.label)}" if ds.label else ""))
        lines += ["", f"{len(ds.frame)} rows, {len(ds.types)} columns."]
        meta = ds.metadata
        if meta is not None:
            if meta.structure:
                lines[-1] += f" {_md_cell(meta.structure)}" + (f"; keys {', '.join(meta.keys)}." if meta.keys else ".")
            if meta.description:
                lines += ["", _md_cell(meta.description)]
        lines += ["", "| Column | Label | Type | Value labels | Origin | Derivation |", "|---|---|---|---|---|---|"]
        for col, kind in ds.types.items():
            codes = "; ".join(
                f"`{_md_cell(str(c))}` = {_md_cell(str(t))}"
                for c, t in ds.value_labels.get(col, {}).items()
            )
            origin, how = _origin(ds, col)
            lines.append(
                f"| {_md_cell(col)} | {_md_cell(ds.labels.get(col, ''))} | {kind} | {codes} | {origin} | {_md_cell(how)} |"
            )
        if meta is not None and meta.parameters:
            present = set(ds.frame[meta.parameter_variable].dropna()) if meta.parameter_variable in ds.frame else set()
            lines += ["", f"Parameters ({meta.parameter_variable}):", "",
                      "| PARAMCD | PARAM | PARAMN | Unit | Derivation | Records |", "|---|---|---|---|---|---|"]
            counts = ds.frame[meta.parameter_variable].value_counts() if present else {}
            for param in meta.parameters:
                lines.append(
                    f"| {_md_cell(param.paramcd)} | {_md_cell(param.param)} | {param.paramn} | "
                    f"{_md_cell(param.unit or '')} | {_md_cell(param.derivation)} | {int(counts.get(param.paramcd, 0))} |"
                )
        lines.append("")
    return "\n".join(lines)


def _codebook_xlsx(datasets: Mapping[str, Dataset], created: dt.datetime) -> bytes:
    from openpyxl import Workbook

    def cell(value: Any) -> Any:
        return neutralise_formula(value) if isinstance(value, str) else value

    book = Workbook()
    sheet = book.active
    sheet.title = "Datasets"
    sheet.append(["dataset", "label", "rows", "columns", "structure", "keys", "description"])
    for name, ds in datasets.items():
        meta = ds.metadata
        sheet.append([cell(name), cell(ds.label), len(ds.frame), len(ds.types),
                      cell(meta.structure if meta else ""), cell(", ".join(meta.keys) if meta else ""),
                      cell(meta.description if meta else "")])
    variables = book.create_sheet("Variables")
    variables.append(["dataset", "column", "label", "type", "origin", "derivation"])
    codes = book.create_sheet("Value labels")
    codes.append(["dataset", "column", "code", "label"])
    parameters = book.create_sheet("Parameters")
    parameters.append(["dataset", "PARAMCD", "PARAM", "PARAMN", "unit", "derivation"])
    for name, ds in datasets.items():
        for col, kind in ds.types.items():
            origin, how = _origin(ds, col)
            variables.append([cell(name), cell(col), cell(ds.labels.get(col, "")), kind, origin, cell(how)])
            for code, text in ds.value_labels.get(col, {}).items():
                codes.append([cell(name), cell(col), cell(_json_code(code)), cell(str(text))])
        for param in ds.metadata.parameters if ds.metadata is not None else ():
            parameters.append([cell(name), cell(param.paramcd), cell(param.param), param.paramn,
                               cell(param.unit or ""), cell(param.derivation)])
    for ws in book.worksheets:
        ws.freeze_panes = "A2"
    book.properties.creator = "trialkit"
    book.properties.created = created
    raw = io.BytesIO()
    book.save(raw)
    return _normalise_zip(raw.getvalue(), created)


def _normalise_zip(data: bytes, created: dt.datetime) -> bytes:
    """Rewrite a zip with fixed entry times and a fixed ``dcterms:modified`` (openpyxl stamps now)."""
    stamp = created.strftime("%Y-%m-%dT%H:%M:%SZ").encode("ascii")
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = re.sub(
                    rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(<)",
                    rb"\g<1>" + stamp + rb"\g<2>",
                    content,
                )
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            target.writestr(fixed, content)
    return out.getvalue()


def write_codebook(
    datasets: Mapping[str, DatasetInput],
    path_xlsx: str | os.PathLike[str] | None,
    path_md: str | os.PathLike[str] | None,
    *,
    created: dt.datetime | None = None,
) -> None:
    """Write one codebook covering ``datasets`` as xlsx and/or Markdown (a path of None skips it).

    Each value of ``datasets`` is a :class:`Dataset`, a frame (metadata from ``frame.attrs``) or a
    tuple ``(frame, labels, value_labels[, dataset_label])``. Text cells are neutralised against
    formula injection; the xlsx carries ``created`` as its document dates (default
    :data:`DEFAULT_CREATED`), so rebuilding gives the same bytes.
    """
    resolved = {name: _as_dataset(value) for name, value in datasets.items()}
    if path_xlsx is not None:
        _write_bytes(Path(path_xlsx), _codebook_xlsx(resolved, created or DEFAULT_CREATED))
    if path_md is not None:
        _write_bytes(Path(path_md), _codebook_md(resolved).encode("utf-8"))


# --------------------------------------------------------------------------------------------
# Output sets
# --------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some platforms cannot open a directory; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


#: The marker file in every output folder trialkit writes (see :mod:`trialkit.outputs`).
OUTPUT_MARKER = MARKER
_STAGED = re.compile(r"\.(tmp|old)-(?:(\d+)-)?[0-9a-z_]+$")


def _pid_alive(pid: int) -> bool:
    """Whether a process with this id is running (a staging folder of a running pool is not a leftover)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _staged(directory: Path) -> list[tuple[Path, str, int | None]]:
    """The ``DIR.tmp-*`` and ``DIR.old-*`` folders beside DIR: (path, kind, pid that made it)."""
    found = []
    if not directory.parent.is_dir():
        return found
    for path in directory.parent.iterdir():
        if not path.name.startswith(directory.name + ".") or not path.is_dir() or path.is_symlink():
            continue
        match = _STAGED.fullmatch(path.name[len(directory.name):])
        if match:
            found.append((path, match.group(1), int(match.group(2)) if match.group(2) else None))
    return found


def _recover(directory: Path) -> None:
    """Bring back the previous set if a run died between its two renames (DIR gone, DIR.old-* left)."""
    if directory.exists():
        return
    olds = sorted((p for p, kind, pid in _staged(directory) if kind == "old" and (pid is None or not _pid_alive(pid))),
                  key=lambda p: p.stat().st_mtime)
    # Newest complete set first: a set whose removal was itself interrupted is half deleted, may
    # still hold its manifest, and has the newest mtime (deleting files touches it).
    for old in reversed(olds):
        if _is_complete_set(old):
            os.rename(old, directory)
            return


def remove_leftovers(directory: str | os.PathLike[str]) -> list[Path]:
    """Remove what killed runs of :func:`write_output_set` left beside DIR; returns what was removed.

    First DIR is brought back from a complete ``DIR.old-*`` if a run died between its two renames;
    then every ``DIR.tmp-*`` staging folder and ``DIR.old-*`` previous set whose run is no longer
    alive is deleted (an unblinded run's staging folder holds the arm: it must not stay).
    """
    directory = Path(directory)
    _recover(directory)
    removed = []
    for path, _, pid in _staged(directory):
        if pid is not None and _pid_alive(pid):
            continue  # a run in progress beside us
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _is_complete_set(directory: Path) -> bool:
    """Whether every file ``manifest.json`` lists is present with its recorded size."""
    try:
        files = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))["files"]
        return all((directory / name).stat().st_size == entry["size"] for name, entry in files.items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def write_output_set(
    datasets: Mapping[str, DatasetInput],
    directory: str | os.PathLike[str],
    formats: Iterable[str],
    *,
    created: dt.datetime | None = None,
    extra: Mapping[str, Any] | None = None,
    xpt_ascii_only: bool = False,
    kind: str = "output set",
    study: StudyInfo | None = None,
) -> dict[str, Any]:
    """Write every dataset in every format, the codebooks, ``define.xml`` (with ``study``) and
    ``manifest.json``, replacing DIR whole.

    Files go to a fresh ``DIR.tmp-XXXX`` beside DIR; when all are written, DIR is renamed to
    ``DIR.old-XXXX``, the staging directory to DIR, and the old one removed. A failure or interrupt
    while writing leaves DIR as it was (the staging directory is removed). Between the two renames
    DIR briefly does not exist; if a run dies exactly there, the next call renames ``DIR.old-XXXX``
    back before it starts.

    The manifest (sorted keys) lists each file with its sha256 and size, each dataset with its
    label, rows and columns, and ``formats``; ``created`` appears only when passed, and ``extra``
    (inputs, versions) is merged in. Every set holds the marker file ``.trialkit-output`` (listed in
    the manifest like the others), which tells :mod:`trialkit.outputs` that trialkit made the folder
    and may replace it; ``kind`` is written into it. Leftovers of killed runs beside DIR are removed
    first (:func:`remove_leftovers`). With ``study`` (:class:`trialkit.metadata.StudyInfo`) the set
    also holds ``define.xml`` (Define-XML 2.1, :mod:`trialkit.define`) describing every dataset,
    whose OIDs the Dataset-JSON files use. Returns the manifest.
    """
    resolved = {name: _as_dataset(value) for name, value in datasets.items()}
    wanted = _formats(formats)
    stamp = created or DEFAULT_CREATED
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(directory)
    # Check everything before writing anything: one error listing every problem in every dataset.
    problems = []
    for name, ds in resolved.items():
        for fmt, check in (
            ("xpt", lambda d=ds, n=name: check_xpt(d, n, ascii_only=xpt_ascii_only)),
            ("sav", lambda d=ds, n=name: check_sav(d, n)),
            ("dta", lambda d=ds, n=name: check_dta(d, n)),
        ):
            if fmt in wanted:
                problems += [f"{name} ({fmt}): {p}" for p in check()]
    if problems:
        raise ExportError(
            "Cannot write the output set without losing information:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )

    staging = Path(tempfile.mkdtemp(prefix=f"{directory.name}.tmp-{os.getpid()}-", dir=directory.parent))
    old: Path | None = None
    try:
        _write_bytes(staging / OUTPUT_MARKER,
                     (json.dumps({"kind": kind, "written_by": "trialkit"}, sort_keys=True) + "\n").encode())
        for name, ds in resolved.items():
            _write_ds(ds, staging, name, wanted, stamp, xpt_ascii_only, study)
        write_codebook(resolved, staging / "codebook.xlsx", staging / "codebook.md", created=stamp)
        if study is not None:
            from trialkit.define import define_xml

            _write_bytes(staging / DEFINE_FILE, define_xml(resolved, study, created=stamp, formats=wanted))
        files = {
            path.name: {"sha256": _sha256(path), "size": path.stat().st_size}
            for path in sorted(staging.iterdir())
            if path.is_file()
        }
        manifest: dict[str, Any] = dict(extra or {})
        manifest.update(
            {
                "datasets": {
                    name: {"label": ds.label, "rows": len(ds.frame), "columns": list(ds.types)}
                    for name, ds in resolved.items()
                },
                "files": files,
                "formats": wanted,
            }
        )
        if created is not None:
            manifest["created"] = created.isoformat()
        text = json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
        _write_bytes(staging / "manifest.json", text.encode("utf-8"))
        _fsync_dir(staging)
        if directory.exists():
            old = directory.with_name(f"{directory.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
            os.rename(directory, old)
        os.rename(staging, directory)
        _fsync_dir(directory.parent)
    except BaseException:
        if old is not None and not directory.exists():
            os.rename(old, directory)  # the second rename failed: put the previous set back
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return manifest
