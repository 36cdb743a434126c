"""Basic Data Structure (BDS) variables: baseline flag and value, change, percent change, reference
range indicator — columns as arguments, exact decimal arithmetic.

These are admiral's ``derive_var_ablfl`` / ``derive_var_base`` / ``derive_var_chg`` /
``derive_var_pchg`` / ``derive_var_anrind`` for any parameter-per-row dataset: the caller says which
rows are the baseline and which are post-baseline (a study's analysis program knows its baseline
visit); nothing here knows a visit or a parameter.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from trialkit import scores

__all__ = [
    "derive_var_ablfl",
    "derive_var_anrind",
    "derive_var_base",
    "derive_var_chg",
    "derive_var_pchg",
    "drop_empty_records",
]


def _mask(frame: pd.DataFrame, where: pd.Series | None) -> np.ndarray:
    if where is None:
        return np.ones(len(frame), dtype=bool)
    return pd.Series(where, index=frame.index).astype("boolean").fillna(False).to_numpy(dtype=bool)


def drop_empty_records(frame: pd.DataFrame, values: Sequence[str] = ("AVAL", "AVALC")) -> pd.DataFrame:
    """The rows where at least one of ``values`` holds a value (BDS: no record without a result).

    Text cells that are empty or blank count as no value.

    >>> bds = pd.DataFrame({"AVAL": [1.0, None, None], "AVALC": [None, "Y", ""]})
    >>> len(drop_empty_records(bds))
    2
    """
    present = np.zeros(len(frame), dtype=bool)
    for column in values:
        series = frame[column]
        filled = series.notna().to_numpy(dtype=bool).copy()
        if series.dtype == object or isinstance(series.dtype, pd.StringDtype):
            filled &= series.astype("string").str.strip().ne("").fillna(False).to_numpy(dtype=bool)
        present |= filled
    return frame[present]


def derive_var_ablfl(
    frame: pd.DataFrame,
    *,
    by: Sequence[str],
    is_baseline: pd.Series,
    value: str = "AVAL",
    order: Sequence[str] = (),
    out: str = "ABLFL",
) -> pd.DataFrame:
    """The baseline record flag: ``"Y"`` on the first row per ``by`` (in ``order``) among the rows
    where ``is_baseline`` holds and ``value`` is not missing; NA elsewhere (an ADaM record flag).

    >>> bds = pd.DataFrame({"USUBJID": ["S1"] * 3, "PARAMCD": ["P"] * 3, "VISIT": ["PRE", "BASE", "WEEK2"],
    ...     "AVAL": [1.0, 2.0, 3.0]})
    >>> derive_var_ablfl(bds, by=["USUBJID", "PARAMCD"], is_baseline=bds["VISIT"].eq("BASE"))["ABLFL"].tolist()
    [<NA>, 'Y', <NA>]
    """
    result = frame.copy()
    candidate = _mask(frame, is_baseline) & frame[value].notna().to_numpy(dtype=bool)
    chosen = frame[candidate]
    if order:
        chosen = chosen.sort_values(list(order), kind="stable")
    first = chosen.drop_duplicates(list(by), keep="first").index
    flag = pd.Series(pd.NA, index=frame.index, dtype=object)
    flag[first] = "Y"
    result[out] = flag
    return result


def derive_var_base(
    frame: pd.DataFrame,
    *,
    by: Sequence[str],
    source: str = "AVAL",
    out: str = "BASE",
    flag: str = "ABLFL",
    where: pd.Series | None = None,
) -> pd.DataFrame:
    """``out`` = ``source`` of the baseline record (``flag`` = Y) of the same ``by`` group, on the
    rows selected by ``where`` (default: every row); missing elsewhere.

    >>> bds = pd.DataFrame({"USUBJID": ["S1"] * 3, "PARAMCD": ["P"] * 3, "AVAL": [1.0, 2.0, 3.0],
    ...     "ABLFL": [None, "Y", None]})
    >>> derive_var_base(bds, by=["USUBJID", "PARAMCD"], where=pd.Series([False, True, True]))["BASE"].tolist()
    [nan, 2.0, 2.0]
    """
    result = frame.copy()
    base_rows = frame[frame[flag].astype("string").eq("Y").fillna(False).to_numpy(dtype=bool)]
    table = base_rows.drop_duplicates(list(by)).set_index(list(by))[source]
    keys = pd.MultiIndex.from_frame(frame[list(by)]) if len(by) > 1 else pd.Index(frame[by[0]])
    values = pd.Series(table.reindex(keys).to_numpy(), index=frame.index, dtype=table.dtype)
    keep = _mask(frame, where)
    if pd.api.types.is_numeric_dtype(values.dtype):
        result[out] = values.where(keep).astype(float)
    else:
        result[out] = values.astype(object).where(keep, None)
    return result


def derive_var_chg(frame: pd.DataFrame, *, where: pd.Series | None = None, value: str = "AVAL",
                   base: str = "BASE", out: str = "CHG") -> pd.DataFrame:
    """``out`` = ``value`` − ``base`` in exact decimal arithmetic, on the rows ``where`` selects
    (post-baseline records); NaN elsewhere or when either is missing.

    >>> bds = pd.DataFrame({"AVAL": [4.9, 4.9], "BASE": [7.0, 7.0]})
    >>> derive_var_chg(bds, where=pd.Series([False, True]))["CHG"].tolist()
    [nan, -2.1]
    """
    result = frame.copy()
    keep = _mask(frame, where)
    changes = []
    for selected, aval, b in zip(keep, frame[value], frame[base], strict=True):
        if not selected or pd.isna(aval) or pd.isna(b):
            changes.append(np.nan)
        else:
            changes.append(float(scores.to_decimal(aval) - scores.to_decimal(b)))
    result[out] = changes
    return result


def derive_var_pchg(frame: pd.DataFrame, *, where: pd.Series | None = None, value: str = "AVAL",
                    base: str = "BASE", out: str = "PCHG", places: int = 2) -> pd.DataFrame:
    """``out`` = 100 · (``value`` − ``base``) / ``base``, exact, rounded half-up to ``places``, on the
    rows ``where`` selects; NaN elsewhere, when either is missing, or when the base is 0.

    >>> bds = pd.DataFrame({"AVAL": [4.9, 1.0], "BASE": [7.0, 0.0]})
    >>> derive_var_pchg(bds)["PCHG"].tolist()
    [-30.0, nan]
    """
    result = frame.copy()
    keep = _mask(frame, where)
    percents = []
    for selected, aval, b in zip(keep, frame[value], frame[base], strict=True):
        percent = None if not selected or pd.isna(aval) or pd.isna(b) else scores.percent_change(b, aval, places=places)
        percents.append(np.nan if percent is None else float(percent))
    result[out] = percents
    return result


def derive_var_anrind(frame: pd.DataFrame, *, value: str = "AVAL", low: str = "ANRLO", high: str = "ANRHI",
                      out: str = "ANRIND") -> pd.DataFrame:
    """Reference range indicator: ``LOW`` (below ``low``), ``HIGH`` (above ``high``), ``NORMAL``
    (within, limits included), compared exactly; NA when the value or the limit it needs is missing.

    >>> labs = pd.DataFrame({"AVAL": [0.9, 1.5, 12.0, 3.0], "ANRLO": [1.0, 1.0, 1.0, None],
    ...     "ANRHI": [10.0, 10.0, 10.0, None]})
    >>> derive_var_anrind(labs)["ANRIND"].tolist()
    ['LOW', 'NORMAL', 'HIGH', <NA>]
    """
    result = frame.copy()
    indicators: list[object] = []
    for aval, lo, hi in zip(frame[value], frame[low], frame[high], strict=True):
        if pd.isna(aval):
            indicators.append(pd.NA)
            continue
        number = scores.to_decimal(aval)
        if not pd.isna(lo) and number < scores.to_decimal(lo):
            indicators.append("LOW")
        elif not pd.isna(hi) and number > scores.to_decimal(hi):
            indicators.append("HIGH")
        elif pd.isna(lo) and pd.isna(hi):
            indicators.append(pd.NA)
        else:
            indicators.append("NORMAL")
    result[out] = pd.Series(indicators, index=frame.index, dtype=object)
    return result
