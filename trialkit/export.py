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
import itertools
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
    # The writers' typed frames (see _typed) and each column's distinct values (see _distinct),
    # computed once per dataset while one set is written (write_output_set empties them after).
    _typed_frames: dict[Any, pd.DataFrame] = field(default_factory=dict, repr=False, compare=False)
    _columns: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)
    # Date columns of naive datetime64 known to hold midnights only (their type was inferred so).
    _midnight: frozenset[str] = field(default=frozenset(), repr=False, compare=False)


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
    types = column_types(frame, pinned)
    # An inferred date column of datetime64 holds midnights only: _typed need not look again.
    midnight = frozenset(c for c, kind in types.items() if kind == "date" and not pinned.get(c)
                         and isinstance(frame[c].dtype, np.dtype) and frame[c].dtype.kind == "M")
    return Dataset(frame, labels, value_labels, label or "", types, meta, _midnight=midnight)


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
    if isinstance(dtype, np.dtype) and dtype.kind == "M":
        return "date" if _at_midnight(series.to_numpy()) else "datetime"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        values = series.dropna()
        return "date" if (values == values.dt.normalize()).all() else "datetime"
    if isinstance(dtype, pd.StringDtype):  # text only: never a date
        return "string"
    values = series.dropna()
    if len(values) and all(
        isinstance(v, dt.date) and not isinstance(v, dt.datetime) for v in values
    ):
        return "date"
    if len(values) and all(isinstance(v, dt.datetime) for v in values):
        return "datetime"
    return "string"


def _at_midnight(values: np.ndarray) -> bool:
    """Whether every value of a naive datetime64 array (NaT aside) is at midnight: a whole number of
    days since 1970-01-01 (the same as ``values == values.normalize()``, without a second array)."""
    unit, count = np.datetime_data(values.dtype)
    if unit in ("Y", "M", "W", "D"):
        return True
    per_day = int(np.timedelta64(1, "D") // np.timedelta64(count, unit))
    ticks = values.view(np.int64)
    return bool(((ticks % per_day == 0) | np.isnat(values)).all())


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
            out[col] = series if col in ds._midnight or _at_midnight(series.to_numpy()) else series.dt.normalize()
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
    # Without copying the columns (copy-on-write: the frame of the dataset stays as it is).
    return pd.DataFrame(out, columns=list(ds.types), copy=False)


@dataclass(frozen=True)
class _Distinct:
    """A typed column as its distinct values and, for each row, the index of its value (-1 where
    the value is missing: None, NA, NaT, and for floats NaN and ±inf, which no format holds).

    Every writer formats each distinct value once and takes the texts by ``codes`` (a loop over
    the rows in Python cost seconds per million rows and column)."""

    codes: np.ndarray
    values: list[Any]  # as iterating the typed column yields them: str, int, float, bool, date, Timestamp

    def table(self, entries: Iterable[Any], missing: Any, dtype: Any = object) -> np.ndarray:
        """``entries`` (one per distinct value) followed by ``missing``: indexed by ``codes``."""
        out = np.empty(len(self.values) + 1, dtype=dtype)
        out[:-1] = list(entries) if dtype is object else np.asarray(list(entries), dtype=dtype)
        out[-1] = missing
        return out

    def lookup(self, entries: Iterable[Any], missing: Any, dtype: Any = object) -> np.ndarray:
        """``entries[i]`` (one per distinct value) for each row, ``missing`` where missing."""
        return self.table(entries, missing, dtype)[self.codes]

    def rows(self, entries: Iterable[Any], missing: Any) -> Iterator[list[Any]]:
        """:meth:`lookup` as lists of :data:`_CHUNK_ROWS` rows (the whole column never is one)."""
        table = self.table(entries, missing)
        for start in range(0, len(self.codes), _CHUNK_ROWS):
            yield table[self.codes[start:start + _CHUNK_ROWS]].tolist()


def _compute_distinct(series: pd.Series, kind: str) -> _Distinct:
    """The distinct values of one typed column (see :func:`_typed`, either representation)."""
    if kind == "float":
        numbers = series.to_numpy(dtype="float64")
        # Keyed by the bits, so that 0.0 and -0.0 (equal, but written differently) stay apart.
        codes, bits = pd.factorize(numbers.view(np.int64))
        codes[~np.isfinite(numbers)] = -1
        return _Distinct(_small(codes), bits.view(np.float64).tolist())
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    if kind == "date" and isinstance(uniques, pd.DatetimeIndex):
        values = list(uniques.date)  # as _as_dates boxes them (the arrow representation keeps datetime64)
    else:
        values = list(uniques)
    return _Distinct(_small(np.asarray(codes)), values)


def _small(codes: np.ndarray) -> np.ndarray:
    """Codes as int32 (half the memory of a pooled column's codes, kept while a set is written)."""
    return codes.astype(np.int32) if len(codes) and codes.max() < 2**31 - 1 else codes


def _distinct(ds: Dataset, col: str) -> _Distinct:
    """The distinct values of a column of ``ds``, computed once (checks and writers share them)."""
    key = ("distinct", id(ds.frame), col, ds.types[col])
    if key not in ds._columns:
        ds._columns[key] = _compute_distinct(_typed(ds, arrow=True)[col], ds.types[col])
    return ds._columns[key]


def _text_sizes(ds: Dataset, col: str) -> np.ndarray:
    """The UTF-8 size in bytes of each distinct value of a text column of ``ds``."""
    key = ("sizes", id(ds.frame), col)
    if key not in ds._columns:
        ds._columns[key] = np.array([_nbytes(v) for v in _distinct(ds, col).values], dtype=np.int64)
    return ds._columns[key]


def _longest(ds: Dataset, col: str) -> int:
    """The longest value of a text column of ``ds`` in UTF-8 bytes (0 when it has none)."""
    sizes = _text_sizes(ds, col)
    return int(sizes.max()) if len(sizes) else 0


#: Days from each format's date origin to 1970-01-01, as pyreadstat counts them (SPSS counts seconds).
_DATE_OFFSET_DAYS = {"xpt": 3653.0, "dta": 3653.0, "sav": 141428.0}
_EPOCH = dt.date(1970, 1, 1)


def _readstat_frame(ds: Dataset, fmt: str) -> pd.DataFrame:
    """The frame pyreadstat writes: floats for numbers (NaN for missing), 0/1 for booleans, text as
    ``str`` or None, datetimes as datetime64[us], and dates already as the number pyreadstat
    would compute from a ``datetime.date`` (days since the format's origin; seconds for SPSS),
    with the same floating-point operations: the date column is then a plain number column
    carrying the same date format, and the file's bytes are the same. Columns with no value at all
    of a date or datetime type are numeric (all missing): SAS and pyreadstat refuse to read a date
    column written as text."""
    typed = _typed(ds, arrow=True)
    out: dict[str, Any] = {}
    for col, kind in ds.types.items():
        series = typed[col]
        if kind in ("integer", "boolean", "float"):
            out[col] = series.to_numpy(dtype="float64", na_value=np.nan)
        elif kind == "string":
            # object dtype, explicitly: pandas would store str as Arrow text, which pyreadstat iterates slowly
            out[col] = pd.Series(_distinct(ds, col).lookup(_distinct(ds, col).values, None), dtype=object, copy=False)
        elif kind == "date":
            distinct = _distinct(ds, col)
            numbers = np.array([(day - _EPOCH).days for day in distinct.values], dtype="float64")
            numbers += _DATE_OFFSET_DAYS[fmt]
            if fmt == "sav":
                numbers *= 86400.0
            out[col] = distinct.lookup(numbers, np.nan, dtype="float64")
        elif series.notna().any():
            out[col] = series
        else:
            out[col] = np.full(len(series), np.nan)
    return pd.DataFrame(out, columns=list(ds.types))


def _dta_date_formats(ds: Dataset) -> dict[str, str]:
    """``%td`` for the date columns that hold a value (pyreadstat's own format for dates; a column
    with no value at all is written numeric without it, see :func:`_readstat_frame`)."""
    return {col: "%td" for col, kind in ds.types.items()
            if kind == "date" and (_distinct(ds, col).codes >= 0).any()}


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def _nbytes(text: str) -> int:
    return len(text.encode("utf-8"))


def _rows(mask: np.ndarray) -> str:
    rows = [int(i) + 1 for i in np.flatnonzero(mask)]
    shown = ", ".join(str(r) for r in rows[:_PREVIEW])
    return (
        f"row {shown}"
        if len(rows) == 1
        else f"rows {shown}" + (f" and {len(rows) - _PREVIEW} more" if len(rows) > _PREVIEW else "")
    )


def check_finite(ds: Dataset) -> list[str]:
    """Problems of a dataset in every format: an infinite number, which no format holds (CSV and
    Dataset-JSON would write it as a blank, Stata refuses it), so it is never written silently."""
    problems = []
    for col, kind in ds.types.items():
        if kind != "float":
            continue
        numbers = pd.to_numeric(ds.frame[col], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        infinite = np.isinf(numbers)
        if infinite.any():
            problems.append(f"variable {col!r}: infinite values ({_rows(infinite)}); no output format holds "
                            "them: correct the derivation that divides by zero, or make them missing")
    return problems


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
            # Measured on the distinct values, then taken to the rows only to name them.
            distinct, sizes = _distinct(ds, col), _text_sizes(ds, col)
            longest = _longest(ds, col)
            if longest > 200:
                too_long = distinct.lookup(sizes > 200, False, dtype=bool)
                problems.append(
                    f"variable {col!r}: values up to {longest} bytes in UTF-8 ({_rows(too_long)}); XPT v5 allows 200"
                )
            if ascii_only:
                non_ascii = distinct.lookup([not v.isascii() for v in distinct.values], False, dtype=bool)
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
    for col, kind in ds.types.items():
        if not _STATA_NAME.fullmatch(col) or col in _STATA_RESERVED:
            problems.append(
                f"variable {col!r}: Stata names are 1-32 characters A-Z, a-z, 0-9, _ not starting with a digit, and not reserved"
            )
        text = ds.labels.get(col, "")
        if len(text) > 80:
            problems.append(f"variable {col!r}: label is {len(text)} characters; Stata allows 80")
        if kind == "string":
            longest = _longest(ds, col)
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


class _HashingFile:
    """A binary file that hashes (sha256) what is written to it, for the manifest."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.digest.update(data)
        self.handle.write(data)


@contextmanager
def _atomic_file(target: Path, digests: dict[str, str] | None) -> Iterator[_HashingFile]:
    """A new file written through :func:`_atomic_path`; its sha256 goes to ``digests[target.name]``
    (so that the manifest need not read it again)."""
    with _atomic_path(target) as tmp, open(tmp, "wb") as handle:
        out = _HashingFile(handle)
        yield out
    if digests is not None:
        digests[target.name] = out.digest.hexdigest()


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


#: The bytes of a pyreadstat file that hold every timestamp fixed (all lie in its first 600).
_HEADER_BYTES = 1 << 16


def _readstat_write(
    target: Path,
    writer: Callable[[Path], None],
    fix: Callable[[bytearray, dt.datetime], None],
    created: dt.datetime,
    digests: dict[str, str] | None = None,
) -> None:
    """Write with pyreadstat, fix the header's timestamps in place and hash the file in one pass."""
    with _atomic_path(target) as tmp:
        writer(tmp)
        with open(tmp, "r+b") as handle:
            head = bytearray(handle.read(_HEADER_BYTES))
            written = bytes(head)
            fix(head, created)
            if len(head) != len(written):
                raise ExportError(f"Cannot fix the timestamps of {target.name}: the header changed size.")
            if head != written:
                handle.seek(0)
                handle.write(head)
                handle.seek(len(head))
            digest = hashlib.sha256(head)
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    if digests is not None:
        digests[target.name] = digest.hexdigest()


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


#: Rows encoded and written at a time (bounds the memory of the text of a large dataset).
_CHUNK_ROWS = 100_000


def _write_csv_rows(target: Path, header: list[str], rows: Iterable[Iterable[str]],
                    digests: dict[str, str] | None = None) -> None:
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\r\n")
    out.writerow([neutralise_formula(h) for h in header])
    rows = iter(rows)
    with _atomic_file(target, digests) as handle:
        while True:
            out.writerows(itertools.islice(rows, _CHUNK_ROWS))
            text = buffer.getvalue()
            if not text:
                break
            handle.write(text.encode("utf-8"))
            buffer.seek(0)
            buffer.truncate()


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


def _csv_texts(distinct: _Distinct, kind: str) -> list[str]:
    """The CSV cell of each distinct value, exactly as :func:`_csv_cell` writes it."""
    values = distinct.values
    if kind == "string":
        return ["'" + v if v.startswith(FORMULA_PREFIXES) else v for v in map(str, values)]
    if kind == "integer":
        return [str(int(v)) for v in values]
    if kind == "float":
        return [np.format_float_positional(v, trim="-") if math.isfinite(v) else "" for v in values]
    return [_csv_cell(v, kind) for v in values]


def _csv_column(series: pd.Series, kind: str) -> list[str]:
    """One typed column as CSV cells, exactly as :func:`_csv_cell` writes each value (each distinct
    value formatted once)."""
    distinct = _compute_distinct(series, kind)
    return distinct.lookup(_csv_texts(distinct, kind), "").tolist()


def _write_csv(ds: Dataset, name: str, target: Path, codebook: Path, digests: dict[str, str] | None = None) -> None:
    chunks = [_distinct(ds, col).rows(_csv_texts(_distinct(ds, col), kind), "") for col, kind in ds.types.items()]
    rows = (itertools.chain.from_iterable(zip(*columns, strict=True) for columns in zip(*chunks, strict=True))
            if chunks else ([] for _ in range(len(ds.frame))))
    _write_csv_rows(target, list(ds.types), rows, digests)
    book = [[neutralise_formula(cell) for cell in row] for row in _codebook_rows(ds)]
    _write_csv_rows(codebook, ["column", "label", "type", "value_labels", "origin", "derivation"], book, digests)


def _write_xpt(
    ds: Dataset, name: str, target: Path, created: dt.datetime, ascii_only: bool,
    digests: dict[str, str] | None = None,
) -> None:
    import pyreadstat

    _raise_if(check_xpt(ds, name, ascii_only=ascii_only), "SAS transport v5 (xpt)", name)
    formats = {
        c: "DATE9" if k == "date" else "DATETIME20"
        for c, k in ds.types.items()
        if k in ("date", "datetime")
    }
    frame = _readstat_frame(ds, "xpt")

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

    _readstat_write(target, write, _fix_xpt, created, digests)


def _write_sav(ds: Dataset, name: str, target: Path, created: dt.datetime,
               digests: dict[str, str] | None = None) -> None:
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
    frame = _readstat_frame(ds, "sav")

    def write(path: Path) -> None:
        pyreadstat.write_sav(
            frame,
            os.fspath(path),
            file_label=ds.label,
            column_labels={c: ds.labels.get(c, "") for c in frame.columns},
            variable_value_labels=value_labels or None,
            variable_format=formats,
        )

    _readstat_write(target, write, _fix_sav, created, digests)


def _write_dta(ds: Dataset, name: str, target: Path, created: dt.datetime,
               digests: dict[str, str] | None = None) -> None:
    import pyreadstat

    problems = check_dta(ds, name)
    _raise_if(problems, "Stata (dta)", name)
    frame = _readstat_frame(ds, "dta")
    column_labels = {c: ds.labels.get(c, "") for c in frame.columns}
    value_labels: dict[str, dict[float, str]] = {}
    twins = _stata_codes(ds)
    for col, labels in ds.value_labels.items():
        if col in twins:
            twin, coded = twins[col]
            lookup = {str(code): number for code, number in zip(labels, coded, strict=True)}
            distinct = _distinct(ds, col)
            numbers = [lookup.get(value, np.nan) for value in distinct.values]
            position = frame.columns.get_loc(col) + 1
            # NaN where missing or unlabelled
            frame.insert(position, twin, distinct.lookup(numbers, np.nan, dtype="float64"))
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
            variable_format=_dta_date_formats(ds) or None,
        )

    _readstat_write(target, write, _fix_dta, created, digests)


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
    keys = list(ds.metadata.keys) if ds.metadata is not None else []
    columns = []
    for col, kind in ds.types.items():
        column: dict[str, Any] = {"itemOID": item_oid(name, col), "name": col, "label": ds.labels.get(col, ""),
                                  "dataType": _JSON_TYPES[kind]}
        if kind in ("date", "datetime"):
            column["targetDataType"] = "integer"
            column["displayFormat"] = _DISPLAY_FORMATS[kind]
        if kind == "string":
            column["length"] = max(1, _longest(ds, col)) if typed is None else text_length(typed[col])
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


def _json_cells(distinct: _Distinct, kind: str) -> list[str]:
    """The JSON text of each distinct value, exactly as :func:`_dumps` writes :func:`_json_value` of
    it: numbers by ``repr`` as :mod:`json` does, text by json's own escaper."""
    values = distinct.values
    if kind == "string":
        return [_encode_text(str(v)) for v in values]
    if kind == "integer":
        return [int.__repr__(int(v)) for v in values]
    if kind == "float":
        return [float.__repr__(v) if math.isfinite(v) else "null" for v in values]
    if kind == "boolean":
        return ["true" if v else "false" for v in values]
    if kind == "date":
        return [_encode_text(v.isoformat()) for v in values]
    return [_dumps(_json_value(v, kind)) for v in values]


def _json_column(series: pd.Series, kind: str) -> list[str]:
    """Every value of one typed column as JSON text (each distinct value encoded once)."""
    distinct = _compute_distinct(series, kind)
    return distinct.lookup(_json_cells(distinct, kind), "null").tolist()


def _json_texts(ds: Dataset, typed: pd.DataFrame | None = None) -> Iterator[str]:
    """Each row as its JSON array text: ``_dumps`` of the row's :func:`_json_value` list."""
    if typed is None:
        chunks = [_distinct(ds, col).rows(_json_cells(_distinct(ds, col), kind), "null")
                  for col, kind in ds.types.items()]
    else:
        chunks = [iter([_json_column(typed[col], kind)]) for col, kind in ds.types.items()]
    if not chunks:
        yield from ("[]" for _ in range(len(ds.frame) if typed is None else len(typed)))
        return
    for columns in zip(*chunks, strict=True):
        for cells in zip(*columns, strict=True):
            yield "[" + ",".join(cells) + "]"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


#: json's own string escaper, as ``json.dumps(..., ensure_ascii=False)`` uses it.
_encode_text = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _write_datasetjson(ds: Dataset, name: str, target: Path, study: StudyInfo | None, created: dt.datetime,
                       *, ndjson: bool, digests: dict[str, str] | None = None) -> None:
    meta = dataset_json_metadata(ds, name, study, created)
    rows = _json_texts(ds)
    with _atomic_file(target, digests) as handle:
        head = _dumps(meta)
        handle.write((head + "\n" if ndjson else head[:-1] + ',"rows":[').encode("utf-8"))
        first = True
        while chunk := list(itertools.islice(rows, _CHUNK_ROWS)):
            if ndjson:
                text = "\n".join(chunk) + "\n"
            else:
                text = ("" if first else ",") + ",".join(chunk)
            handle.write(text.encode("utf-8"))
            first = False
        if not ndjson:
            handle.write(b"]}\n")


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
    digests: dict[str, str] | None = None,
) -> dict[str, Path]:
    """Write one dataset in each format; the sha256 of each file written is put in ``digests``."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ExportError(f"Dataset name {name!r} cannot be a file name.")
    infinite = check_finite(ds)
    if infinite:
        raise ExportError(f"Cannot write dataset {name!r} without losing information: " + "; ".join(infinite))
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
            _write_datasetjson(ds, name, target, study, created, ndjson=fmt == "ndjson", digests=digests)
        elif fmt == "parquet":
            _write_parquet(ds, name, target)
        elif fmt == "csv":
            paths["csv_codebook"] = directory / f"{name}.codebook.csv"
            _write_csv(ds, name, target, paths["csv_codebook"], digests)
        elif fmt == "xpt":
            _write_xpt(ds, name, target, created, ascii_only, digests)
        elif fmt == "sav":
            _write_sav(ds, name, target, created, digests)
        else:
            _write_dta(ds, name, target, created, digests)
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
    try:
        return _write_set(resolved, Path(directory), _formats(formats), created, extra, xpt_ascii_only, kind, study)
    finally:
        for ds in resolved.values():  # what the checks and writers shared is not kept with the dataset
            ds._typed_frames.clear()
            ds._columns.clear()


def _write_set(resolved: Mapping[str, Dataset], directory: Path, wanted: list[str], created: dt.datetime | None,
               extra: Mapping[str, Any] | None, xpt_ascii_only: bool, kind: str,
               study: StudyInfo | None) -> dict[str, Any]:
    stamp = created or DEFAULT_CREATED
    directory.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(directory)
    # Check everything before writing anything: one error listing every problem in every dataset.
    problems = []
    for name, ds in resolved.items():
        problems += [f"{name}: {p}" for p in check_finite(ds)]
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
    digests: dict[str, str] = {}  # sha256 of the files hashed as they were written
    try:
        _write_bytes(staging / OUTPUT_MARKER,
                     (json.dumps({"kind": kind, "written_by": "trialkit"}, sort_keys=True) + "\n").encode())
        for name, ds in resolved.items():
            _write_ds(ds, staging, name, wanted, stamp, xpt_ascii_only, study, digests=digests)
        write_codebook(resolved, staging / "codebook.xlsx", staging / "codebook.md", created=stamp)
        if study is not None:
            from trialkit.define import define_xml

            _write_bytes(staging / DEFINE_FILE, define_xml(resolved, study, created=stamp, formats=wanted))
        files = {
            path.name: {"sha256": digests.get(path.name) or _sha256(path), "size": path.stat().st_size}
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
