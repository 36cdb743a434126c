"""Measurements against dates: the latest value on or before a date, and a window of daily records.

Column names are arguments; nothing here knows a form.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from trialkit.derive.dates import as_dates

__all__ = ["derive_daily_window", "derive_value_on"]


def derive_value_on(
    measurements: pd.DataFrame,
    frame: pd.DataFrame,
    *,
    date_col: str,
    measured_on: str,
    value: str,
    out: str | None = None,
    by: str = "SUBJID",
) -> pd.DataFrame:
    """Add the ``value`` measured at the latest date on or before ``frame[date_col]`` (per ``by``).

    ``measured_on`` is the date column of ``measurements``. Measurements without a value are skipped;
    NaN when there is none. The returned frame keeps ``frame``'s index and order; the new column is
    ``out`` (default: ``value``).

    >>> vs = pd.DataFrame({"SUBJID": ["S1"] * 2, "VDATE": pd.to_datetime(["2024-01-01", "2024-02-01"]),
    ...     "KG": [30.0, 32.0]})
    >>> doses = pd.DataFrame({"SUBJID": ["S1"] * 2, "GIVEN": pd.to_datetime(["2024-01-15", "2024-02-01"])})
    >>> derive_value_on(vs, doses, date_col="GIVEN", measured_on="VDATE", value="KG")["KG"].tolist()
    [30.0, 32.0]
    """
    result = frame.copy()
    left = pd.DataFrame(
        {
            "_ROW": np.arange(len(frame)),
            by: frame[by].astype(object).to_numpy(),
            "_DATE": as_dates(frame[date_col]).to_numpy(),
        }
    ).dropna(subset=["_DATE", by])
    right = pd.DataFrame(
        {
            by: measurements[by].astype(object).to_numpy(),
            "_MDATE": as_dates(measurements[measured_on]).to_numpy(),
            "_V": pd.to_numeric(measurements[value], errors="coerce").astype(float).to_numpy(),
        }
    ).dropna()
    values = np.full(len(frame), np.nan)
    if len(left) and len(right):
        merged = pd.merge_asof(
            left.sort_values("_DATE"),
            right.sort_values("_MDATE"),
            left_on="_DATE",
            right_on="_MDATE",
            by=by,
            direction="backward",
            allow_exact_matches=True,
        )
        values[merged["_ROW"].to_numpy()] = merged["_V"].to_numpy(dtype=float)
    result[out or value] = values
    return result


def derive_daily_window(
    daily: pd.DataFrame,
    anchors: pd.DataFrame,
    *,
    day_col: str,
    value: str,
    anchor_date: str,
    days: int,
    by: str = "SUBJID",
    count_out: str = "NDAYS",
    max_out: str = "MAXVALUE",
    values_out: str | None = None,
) -> pd.DataFrame:
    """Summarise daily records over the ``days`` days before each anchor date (days A−n..A−1).

    For each row of ``anchors`` (``by`` and ``anchor_date``): ``count_out`` = days of the window with
    a recorded ``value``; ``max_out`` = the highest of them (NaN when none); with ``values_out``, the
    list of the day values in date order (None for a day without a record). Several records on one
    day count as one day with their highest value.

    >>> diary = pd.DataFrame({"SUBJID": ["S1"] * 3, "DAY": pd.to_datetime(["2024-01-06", "2024-01-07", "2024-01-08"]),
    ...     "T": [37.0, 38.5, 36.9]})
    >>> visits = pd.DataFrame({"SUBJID": ["S1"], "VDATE": pd.to_datetime(["2024-01-08"])})
    >>> derive_daily_window(diary, visits, day_col="DAY", value="T", anchor_date="VDATE", days=3,
    ...     values_out="TEMPS")[["NDAYS", "MAXVALUE", "TEMPS"]].to_dict("records")
    [{'NDAYS': 2, 'MAXVALUE': 38.5, 'TEMPS': [None, 37.0, 38.5]}]
    """
    records = pd.DataFrame(
        {
            by: daily[by].astype(object).to_numpy(),
            "DAY": as_dates(daily[day_col]).to_numpy(),
            "V": pd.to_numeric(daily[value], errors="coerce").astype(float).to_numpy(),
        }
    ).dropna()
    per_day = records.groupby([by, "DAY"])["V"].max()
    per_subject = {subject: series.droplevel(0) for subject, series in per_day.groupby(level=by)}
    out = anchors.copy()
    counts: list[Any] = []
    maxima: list[float] = []
    lists: list[list[float | None] | None] = []
    for subject, anchor in zip(anchors[by], as_dates(anchors[anchor_date]), strict=True):
        if pd.isna(anchor):
            counts.append(pd.NA)
            maxima.append(np.nan)
            lists.append(None)
            continue
        window = [anchor - pd.Timedelta(days=k) for k in range(days, 0, -1)]
        series = per_subject.get(subject)
        found = [None if series is None or day not in series.index else float(series[day]) for day in window]
        recorded = [v for v in found if v is not None]
        counts.append(len(recorded))
        maxima.append(max(recorded) if recorded else np.nan)
        lists.append(found)
    out[count_out] = pd.array(counts, dtype="Int64")
    out[max_out] = maxima
    if values_out:
        out[values_out] = pd.Series(lists, index=out.index, dtype=object)
    return out
