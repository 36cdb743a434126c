"""Read SAS (sas7bdat, XPT v5/v8), SPSS (sav/zsav/por) and Stata (dta) datasets with pyreadstat.

pyreadstat is used, not pandas: pandas keeps deleted sas7bdat rows, silently drops rows of some XPT
files and cannot read XPT v8 (``LIBRARIES.md``). Known failures become findings:

- XPT carries no encoding; pyreadstat assumes UTF-8. A ``UnicodeDecodeError`` is retried with
  Windows-1252 and an info finding says so.
- "unsupported character set" (Mac and some East Asian encodings in sas7bdat) → a ``file`` error.
- Out-of-range dates (``OverflowError``: one value past the year 9999 refuses the whole file) → read
  again without date conversion and each date cell converted here (:func:`convert_dates`); a cell
  outside 1678-2261 becomes the text of its date, one finding on its cell, the others stay dates.
- A sibling ``.sas7bcat`` (same stem) is applied as the format catalogue.
- SPSS user-defined missing values and SAS special missing values (``.A``-``.Z``) are read
  (``user_missing=True``) and marked in :attr:`RawTable.value_labels` under ``"__missing__"`` so the
  normaliser can keep them as typed and report them, never as numbers.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trialkit.findings import Severity
from trialkit.importers.detect import FileRead, RawTable

MAX_DATASET_BYTES = 2 * 1024 * 1024 * 1024


def sibling_catalog(path: Path) -> Path | None:
    """The ``.sas7bcat`` beside a ``.sas7bdat`` with the same stem (any case), if there is one."""
    for candidate in path.parent.glob("*"):
        if candidate.suffix.lower() == ".sas7bcat" and candidate.stem.lower() == path.stem.lower():
            return candidate
    return None


def read_dataset(path: str | Path, fmt: str, *, catalog: Path | None = None) -> FileRead:
    """Read one dataset into a single :class:`RawTable` (record numbers 1..n as index)."""
    import pyreadstat

    path = Path(path)
    result = FileRead(path=str(path), format=fmt)
    if path.stat().st_size > MAX_DATASET_BYTES:
        result.fail("IMP-FILE-TOO-LARGE", f"{path}: larger than trialkit accepts; split the dataset")
        return result
    kwargs: dict[str, Any] = {}
    if fmt == "sas7bdat":
        reader = pyreadstat.read_sas7bdat
        kwargs["user_missing"] = True
        catalog = catalog or sibling_catalog(path)
        if catalog is not None:
            kwargs["catalog_file"] = str(catalog)
            result.extra["catalog"] = str(catalog)
            result.fail("IMP-SAS-CATALOG", f"{path}: value formats applied from the catalogue {catalog.name}",
                        severity=Severity.INFO)
    elif fmt in ("xpt5", "xpt8"):
        reader = pyreadstat.read_xport
    elif fmt in ("sav", "zsav"):
        reader = pyreadstat.read_sav
        kwargs["user_missing"] = True
    elif fmt == "por":
        reader = pyreadstat.read_por
    elif fmt == "dta":
        reader = pyreadstat.read_dta
        kwargs["user_missing"] = True
    elif fmt == "sas7bcat":
        return _read_catalog(path, result)
    else:  # pragma: no cover - the caller only passes dataset formats
        raise ValueError(fmt)

    frame, meta = None, None
    attempts = 0
    while frame is None and attempts < 4:
        attempts += 1
        try:
            frame, meta = reader(str(path), **kwargs)
        except UnicodeDecodeError as exc:
            if "encoding" in kwargs:
                result.fail("IMP-FILE-ENCODING", f"{path}: text cannot be decoded as {kwargs['encoding']} "
                            f"({exc.reason} at byte {exc.start}); export the dataset as UTF-8 and upload again")
                return result
            kwargs["encoding"] = "cp1252"
            result.fail("IMP-ENCODING-CP1252", f"{path}: text is not UTF-8 ({exc.reason} at byte "
                        f"{exc.start}); read as Windows-1252 (cp1252)", severity=Severity.INFO)
        except OverflowError:
            # One date beyond what Python holds makes pyreadstat refuse the whole file: read the
            # numbers and convert each date cell here (out-of-range cells become text findings).
            if kwargs.get("disable_datetime_conversion"):
                break
            kwargs["disable_datetime_conversion"] = True
        except Exception as exc:
            message = str(exc)
            if "unsupported character set" in message.lower():
                result.fail("IMP-FILE-CHARSET", f"{path}: the dataset uses a character set the SAS reader "
                            "does not support (for example a Mac or East Asian encoding such as MACARABIC, "
                            "CP942 or CP1381); re-save it in SAS with ENCODING=UTF8, or export it as XPT or "
                            "CSV, and upload again")
            else:
                result.fail("IMP-FILE-CORRUPT", f"{path}: not a readable {_NAMES.get(fmt, fmt)} file "
                            f"({type(exc).__name__}: {message}); the file is truncated, damaged or uses "
                            "features the reader does not support: export it again and upload the new file")
            return result
    if frame is None or meta is None:
        result.fail("IMP-FILE-CORRUPT", f"{path}: could not be read; export it again and upload the new file")
        return result

    result.encoding = kwargs.get("encoding") or getattr(meta, "file_encoding", None) or (
        "utf-8" if fmt in ("xpt5", "xpt8") else None)
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    bad_dates: list[tuple[int, str, str]] = []
    if kwargs.get("disable_datetime_conversion"):
        bad_dates = convert_dates(frame, getattr(meta, "original_variable_types", {}) or {}, _FAMILY[fmt])
    labels = [(meta.column_names_to_labels or {}).get(c) for c in columns]
    formats = getattr(meta, "original_variable_types", {}) or {}
    types = [_type_of(frame[c], formats.get(c)) for c in columns]
    table = RawTable(name=str(meta.table_name or path.stem), kind="dataset", columns=columns, values=frame,
                     labels=labels, types=types)
    table.value_labels = {c: dict(v) for c, v in (getattr(meta, "variable_value_labels", {}) or {}).items()}
    table.value_labels["__missing__"] = _user_missing(frame, meta)  # type: ignore[assignment]
    table.value_labels["__formats__"] = dict(formats)  # type: ignore[assignment]
    table.bad_dates = bad_dates
    result.tables.append(table)
    return result


_FAMILY = {"sas7bdat": "sas", "xpt5": "sas", "xpt8": "sas", "sav": "spss", "zsav": "spss", "por": "spss",
           "dta": "stata"}
# Date, datetime and time display formats, as pyreadstat recognises them (its _readstat_parser).
_SAS = {"date": {"WEEKDATE", "MMDDYY", "DDMMYY", "YYMMDD", "DATE", "DDMMYYB", "DDMMYYC", "DDMMYYD", "DDMMYYN",
                 "DDMMYYP", "DDMMYYS", "MMDDYYB", "MMDDYYC", "MMDDYYD", "MMDDYYN", "MMDDYYP", "MMDDYYS", "WEEKDATX",
                 "DTDATE", "IS8601DA", "E8601DA", "B8601DA", "YYMMDDB", "YYMMDDD", "YYMMDDN", "YYMMDDP", "YYMMDDS"},
        "datetime": {"DATETIME", "E8601DT", "DATEAMPM", "MDYAMPM", "IS8601DT", "B8601DT", "B8601DN"},
        "time": {"TIME", "HHMM", "TOD", "TIMEAMPM", "IS8601TM", "E8601TM", "B8601TM"}}
_SPSS = {"date": {"DATE", "ADATE", "EDATE", "JDATE", "SDATE"}, "datetime": {"DATETIME", "YMDHMS"},
         "time": {"TIME", "DTIME"}}
_STATA = {"date": {"%td", "%d", "%tdD_m_Y", "%tdCCYY-NN-DD"}, "datetime": {"%tC", "%tc"},
          "time": {"%tcHH:MM:SS", "%tcHH:MM"}}
_FORMAT_NAME = re.compile(r"^([A-Z][A-Z0-9]+[A-Z])(\d+)?(?:\.\d*)?$")
_ORIGIN = {"sas": dt.datetime(1960, 1, 1), "stata": dt.datetime(1960, 1, 1), "spss": dt.datetime(1582, 10, 14)}
# Seconds per stored unit, by family and kind (SAS: days / seconds; SPSS: seconds; Stata: days / ms).
_UNIT = {("sas", "date"): 86400.0, ("sas", "datetime"): 1.0, ("sas", "time"): 1.0,
         ("spss", "date"): 1.0, ("spss", "datetime"): 1.0, ("spss", "time"): 1.0,
         ("stata", "date"): 86400.0, ("stata", "datetime"): 0.001, ("stata", "time"): 0.001}
_FIRST, _LAST = pd.Timestamp("1678-01-01"), pd.Timestamp("2261-12-31 23:59:59")


def date_kind(family: str, fmt: str | None) -> str | None:
    """``date``, ``datetime``, ``time`` or None for a variable's display format in a file family."""
    if not fmt:
        return None
    if family == "stata":
        return next((kind for kind, names in _STATA.items() if fmt in names), None)
    match = _FORMAT_NAME.match(fmt.upper())
    if not match:
        return None
    table = _SAS if family == "sas" else _SPSS
    return next((kind for kind, names in table.items() if match.group(1) in names), None)


def convert_dates(frame: pd.DataFrame, formats: dict[str, str], family: str) -> list[tuple[int, str, str]]:
    """Convert the date, datetime and time columns of a frame read without date conversion, in place.

    Each cell is converted on its own: a value within 1678-2261 becomes a ``date``/``datetime``/``time``
    as pyreadstat would give; one outside becomes the text of that date (``199107-04-26``) — the
    normaliser reports it on its cell — and is listed in the result as ``(record, column, text)``.
    """
    bad: list[tuple[int, str, str]] = []
    origin = pd.Timestamp(_ORIGIN[family])
    for column in frame.columns:
        kind = date_kind(family, formats.get(column))
        if kind is None or not pd.api.types.is_numeric_dtype(frame[column]):
            continue
        numbers = frame[column].to_numpy(dtype=float)
        seconds = numbers * _UNIT[(family, kind)]
        present = np.isfinite(seconds)
        out = np.full(len(numbers), None, dtype=object)
        if kind == "time":
            day = np.mod(seconds[present], 86400.0)
            out[present] = [(dt.datetime.min + dt.timedelta(seconds=float(s))).time() for s in day]
            frame[column] = out
            continue
        bounded = present & (np.abs(seconds) < 9e15)
        offset = (_FIRST - origin).total_seconds(), (_LAST - origin).total_seconds()
        inside = bounded & (seconds >= offset[0]) & (seconds <= offset[1])
        if inside.any():
            stamps = origin + pd.to_timedelta(np.round(seconds[inside] * 1e6).astype("int64"), unit="us")
            out[inside] = list(stamps.date) if kind == "date" else list(stamps.to_pydatetime())
        far = np.flatnonzero(present & ~inside)
        for position in far:
            if bounded[position]:
                moment = np.datetime64(origin.to_datetime64(), "s") + np.timedelta64(int(round(seconds[position])), "s")
                text = str(moment) if kind == "datetime" else str(moment.astype("datetime64[D]"))
            else:
                text = repr(float(numbers[position]))
            out[position] = text
            bad.append((int(frame.index[position]), str(column), text))
        frame[column] = out
    return bad


_NAMES = {"sas7bdat": "SAS dataset (sas7bdat)", "xpt5": "SAS transport (XPT v5)", "xpt8": "SAS transport (XPT v8)",
          "sav": "SPSS (sav)", "zsav": "SPSS (zsav)", "por": "SPSS portable (por)", "dta": "Stata (dta)"}


def _read_catalog(path: Path, result: FileRead) -> FileRead:
    import pyreadstat

    try:
        _, meta = pyreadstat.read_sas7bcat(str(path))
    except Exception as exc:
        result.fail("IMP-FILE-CORRUPT", f"{path}: not a readable SAS format catalogue ({exc})")
        return result
    result.extra["formats"] = sorted(meta.value_labels or {})
    result.fail("IMP-SAS-CATALOG-ONLY", f"{path}: a SAS format catalogue ({len(result.extra['formats'])} "
                "format(s)), not data; it is applied to the sas7bdat of the same name",
                severity=Severity.INFO)
    return result


def _type_of(column: pd.Series, fmt: str | None) -> str:
    if pd.api.types.is_datetime64_any_dtype(column):
        return "datetime"
    if pd.api.types.is_numeric_dtype(column):
        return "number"
    inferred = pd.api.types.infer_dtype(column, skipna=True)
    return {"string": "text", "date": "date", "time": "time", "datetime": "datetime",
            "empty": "text" if not fmt or not fmt[:1].isdigit() else "number"}.get(inferred, "mixed")


def _user_missing(frame: pd.DataFrame, meta: Any) -> dict[str, pd.Series]:
    """Cells that hold a user-defined (SPSS) or special (SAS/Stata ``.A``-``.Z``) missing value."""
    masks: dict[str, pd.Series] = {}
    ranges = getattr(meta, "missing_ranges", {}) or {}
    user_values = getattr(meta, "missing_user_values", {}) or {}
    kinds = getattr(meta, "readstat_variable_types", {}) or {}
    for column in frame.columns:
        series = frame[column]
        mask = pd.Series(False, index=frame.index)
        for bounds in ranges.get(column, []):
            lo, hi = bounds.get("lo"), bounds.get("hi")
            if isinstance(lo, (int, float)) and isinstance(hi, (int, float)):
                numbers = pd.to_numeric(series, errors="coerce")
                mask |= numbers.between(lo, hi).fillna(False)
            else:
                mask |= series.isin([lo, hi])
        if column in user_values or (kinds.get(column) == "double" and series.dtype == object):
            mask |= series.map(lambda v: isinstance(v, str))
        if mask.any():
            masks[column] = mask
    return masks
