"""Dates: study day, age and durations from partial dates, imputation of partial dates.

``compute_*`` functions work on columns (Series in, Series out); :func:`impute_partial_date` returns
a frame of the imputed date and its ADaM ``--DTF`` flag. Nothing here knows a form or a variable.
"""

from __future__ import annotations

import calendar
import re
from typing import Any, Literal

import pandas as pd

__all__ = [
    "compute_age_at",
    "compute_duration_months",
    "compute_duration_years",
    "compute_study_day",
    "date_of_study_day",
    "impute_partial_date",
    "impute_start_date",
]

#: The day of the month taken for a ``YYYY-MM`` date when a whole date is needed (mid-month).
MID_MONTH_DAY = 15

_PDATE = re.compile(r"^\s*(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?\s*$")
DATE_DTYPE = "datetime64[ns]"


def as_dates(values: Any) -> pd.Series | pd.Timestamp:
    """A Series (or scalar) of dates as ``datetime64[ns]`` (NaT when missing or unreadable)."""
    if isinstance(values, pd.Series):
        return pd.to_datetime(values, errors="coerce").astype(DATE_DTYPE)
    return pd.Timestamp(values) if not pd.isna(values) else pd.NaT


def compute_study_day(dates: pd.Series, d1: pd.Series | pd.Timestamp) -> pd.Series:
    """Study day of each date against day 1: d − D1 + 1 when d ≥ D1, else d − D1 (no day 0).

    ``d1`` is a Series aligned with ``dates`` or one ``Timestamp``. NA when either is missing.

    >>> days = pd.to_datetime(pd.Series(["2024-03-09", "2024-03-10", "2024-03-11", None]))
    >>> compute_study_day(days, pd.Timestamp("2024-03-10")).tolist()
    [-1, 1, 2, <NA>]
    """
    delta = (as_dates(dates) - as_dates(d1)).dt.days
    day = delta.where(delta < 0, delta + 1)
    return day.astype("Int64")


def date_of_study_day(d1: pd.Timestamp, study_day: int) -> pd.Timestamp:
    """The calendar date of a study day (the inverse of :func:`compute_study_day`; no day 0).

    >>> date_of_study_day(pd.Timestamp("2024-03-10"), -1).date(), date_of_study_day(pd.Timestamp("2024-03-10"), 29).date()
    (datetime.date(2024, 3, 9), datetime.date(2024, 4, 7))
    """
    return pd.Timestamp(d1) + pd.Timedelta(days=study_day - 1 if study_day > 0 else study_day)


def parse_partial_date(value: Any) -> tuple[int, int | None, int | None] | None:
    """``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` (or a Timestamp) as (year, month, day); None when unreadable."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.year, value.month, value.day
    match = _PDATE.match(str(value))
    if not match:
        return None
    year, month, day = (int(g) if g else None for g in match.groups())
    if month is not None and not 1 <= month <= 12:
        return None
    if day is not None and not 1 <= day <= calendar.monthrange(year, month)[1]:
        return None
    return year, month, day


def _mid_month(values: pd.Series, *, allow_full: bool, day: int = MID_MONTH_DAY) -> pd.Series:
    """``YYYY-MM`` as the given day of that month (NaT when unparseable or only a year)."""
    out = []
    for value in values:
        parts = parse_partial_date(value)
        if parts is None or parts[1] is None:
            out.append(pd.NaT)
        elif parts[2] is not None and allow_full:
            out.append(pd.Timestamp(parts[0], parts[1], parts[2]))
        else:
            out.append(pd.Timestamp(parts[0], parts[1], day))
    return pd.Series(out, index=values.index, dtype=DATE_DTYPE)


def compute_age_at(birth: pd.Series, on: pd.Series | pd.Timestamp, *, birth_day: int = MID_MONTH_DAY) -> pd.Series:
    """Age in whole years on a date, from a year-and-month birth date taken on ``birth_day`` (15th).

    A ``YYYY-MM-DD`` value is also read on ``birth_day`` (a form that collects year and month only
    must not reveal a day); anything unparseable, or a missing date, gives NA.

    >>> born = pd.Series(["2010-03", "2010-03", "bad"])
    >>> compute_age_at(born, pd.Series(pd.to_datetime(["2024-03-14", "2024-03-15", "2024-03-15"]))).tolist()
    [13, 14, <NA>]
    """
    born = _mid_month(birth, allow_full=False, day=birth_day)
    when = as_dates(on)
    if not isinstance(when, pd.Series):
        when = pd.Series(when, index=birth.index, dtype=DATE_DTYPE)
    years = when.dt.year - born.dt.year
    before_birthday = (when.dt.month < born.dt.month) | (
        (when.dt.month == born.dt.month) & (when.dt.day < born.dt.day)
    )
    age = years - before_birthday.astype(int)
    return age.where(born.notna() & when.notna()).astype("Int64")


def _onset_and_date(onset: pd.Series, on: pd.Series | pd.Timestamp, day: int) -> tuple[pd.Series, pd.Series]:
    start = _mid_month(onset, allow_full=True, day=day)
    when = as_dates(on)
    if not isinstance(when, pd.Series):
        when = pd.Series(when, index=onset.index, dtype=DATE_DTYPE)
    return start, when


def compute_duration_years(onset: pd.Series, on: pd.Series | pd.Timestamp, *,
                           onset_day: int = MID_MONTH_DAY) -> pd.Series:
    """Duration in years at a date: (date − onset) in days / 365.25 (float, unrounded).

    A ``YYYY-MM`` onset is taken on ``onset_day`` (15th); a full ``YYYY-MM-DD`` onset is used as
    typed; a year alone, or an unparseable value, gives NaN. See :func:`compute_duration_months`
    for whole months.

    >>> compute_duration_years(pd.Series(["2020-03"]), pd.Timestamp("2024-03-15")).round(3).tolist()
    [4.0]
    """
    start, when = _onset_and_date(onset, on, onset_day)
    return ((when - start).dt.days / 365.25).astype(float)


def compute_duration_months(onset: pd.Series, on: pd.Series | pd.Timestamp, *,
                            onset_day: int = MID_MONTH_DAY) -> pd.Series:
    """Duration in complete months at a date, a ``YYYY-MM`` onset on ``onset_day`` (Int64; NA when unknown).

    >>> compute_duration_months(pd.Series(["2023-09", "2023-09"]),
    ...     pd.Series(pd.to_datetime(["2024-03-14", "2024-03-15"]))).tolist()
    [5, 6]
    """
    start, when = _onset_and_date(onset, on, onset_day)
    months = (when.dt.year - start.dt.year) * 12 + (when.dt.month - start.dt.month)
    months = months - (when.dt.day < start.dt.day).astype(int)
    return months.where(start.notna() & when.notna()).astype("Int64")


def impute_partial_date(values: pd.Series, kind: Literal["start", "end"]) -> pd.DataFrame:
    """Impute partial dates: ``DT`` (datetime) and ``DTF`` (ADaM --DTF flag), same index.

    ``start``: a missing day is the 1st (DTF "D"), a missing month and day 1 January (DTF "M");
    ``end``: the last day of the month ("D"), 31 December ("M"). A full date has DTF None; a
    missing or unparseable value gives NaT and None. The typed value is never edited.

    >>> out = impute_partial_date(pd.Series(["2024-02", "2024", "2024-02-10"]), "end")
    >>> out["DT"].dt.strftime("%Y-%m-%d").tolist(), out["DTF"].tolist()
    (['2024-02-29', '2024-12-31', '2024-02-10'], ['D', 'M', None])
    """
    if kind not in ("start", "end"):
        raise ValueError(f"kind: {kind!r}; expected 'start' or 'end'")
    dates: list[Any] = []
    flags: list[str | None] = []
    for value in values:
        parts = parse_partial_date(value)
        if parts is None:
            dates.append(pd.NaT)
            flags.append(None)
            continue
        year, month, day = parts
        flag = None
        if month is None:
            month, flag = (1 if kind == "start" else 12), "M"
        if day is None:
            day = 1 if kind == "start" else calendar.monthrange(year, month)[1]
            flag = flag or "D"
        dates.append(pd.Timestamp(year, month, day))
        flags.append(flag)
    return pd.DataFrame(
        {
            "DT": pd.Series(dates, index=values.index, dtype=DATE_DTYPE),
            "DTF": pd.Series(flags, index=values.index, dtype=object),
        }
    )


def impute_start_date(values: pd.Series, min_dates: pd.Series | None = None) -> pd.DataFrame:
    """Impute partial start dates, never before a reference date in the same period: ``DT``, ``DTF``.

    As :func:`impute_partial_date` with ``"start"`` (a missing day is the 1st, flag ``D``; a missing
    month 1 January, flag ``M``), except that when ``min_dates`` (aligned with ``values``, e.g. the
    first dose) falls inside the period the partial date stands for — the same month, or the same
    year for a year alone — the imputed date is that reference date: the earliest day that the
    period and the reference allow, never a later one (admiral's ``min_dates``). Full dates are
    kept as typed (DTF None).

    >>> typed = pd.Series(["2024-03", "2024-03", "2024", "2024-03-02"])
    >>> first = pd.Series(pd.to_datetime(["2024-03-10", "2024-02-10", "2024-05-01", "2024-03-10"]))
    >>> out = impute_start_date(typed, first)
    >>> out["DT"].dt.strftime("%Y-%m-%d").tolist(), out["DTF"].tolist()
    (['2024-03-10', '2024-03-01', '2024-05-01', '2024-03-02'], ['D', 'D', 'M', None])
    """
    out = impute_partial_date(values, "start")
    if min_dates is None:
        return out
    reference = as_dates(pd.Series(min_dates.to_numpy(), index=values.index))
    dates = list(out["DT"])
    for position, (value, flag, ref) in enumerate(zip(values, out["DTF"], reference, strict=True)):
        if flag is None or pd.isna(ref):
            continue
        parts = parse_partial_date(value)
        if parts is None:
            continue
        same = ref.year == parts[0] and (parts[1] is None or ref.month == parts[1])
        if same and ref > dates[position]:
            dates[position] = ref
    out["DT"] = pd.Series(dates, index=values.index, dtype=DATE_DTYPE)
    return out
