"""Exposure: first and last dose per subject, and missed doses per dosing period.

The dosing form's columns are arguments (``start=``, ``end=``, ``dose=``, ``missed=``): nothing here
knows a form.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd

from trialkit.derive.dates import DATE_DTYPE, as_dates, compute_study_day
from trialkit.derive.util import bool_series, subject_lookup

__all__ = ["derive_exposure", "derive_first_dose", "derive_treatment_dates"]


def derive_first_dose(ex: pd.DataFrame, *, start: str, end: str, dose: str, by: str = "SUBJID") -> pd.DataFrame:
    """First and last dose per subject: ``by``, ``TRTSDT``, ``TRTEDT``, ``D1`` and ``ONGOING``.

    Only dosing periods with ``dose`` > 0 count. TRTSDT = earliest ``start``; TRTEDT = latest
    ``end``, an open period (no ``end``) counting by its start; D1 = TRTSDT; ONGOING (boolean) =
    the subject has an open positive-dose period (still dosing, as far as the dosing form tells). A
    subject in ``ex`` with no positive dose has NaT for the dates and ONGOING False. One row per
    subject, sorted.

    >>> ex = pd.DataFrame({"SUBJID": ["S1", "S1"],
    ...     "START": pd.to_datetime(["2024-01-10", "2024-02-01"]),
    ...     "END": pd.to_datetime(["2024-01-31", None]), "DOSE": [40.0, 50.0]})
    >>> fd = derive_first_dose(ex, start="START", end="END", dose="DOSE")
    >>> fd["TRTSDT"].dt.strftime("%Y-%m-%d").tolist(), fd["TRTEDT"].dt.strftime("%Y-%m-%d").tolist(), fd["ONGOING"].tolist()
    (['2024-01-10'], ['2024-02-01'], [True])
    """
    frame = ex[[by]].copy()
    frame["_START"] = as_dates(ex[start])
    frame["_OPEN"] = as_dates(ex[end]).isna()
    frame["_END"] = as_dates(ex[end]).fillna(frame["_START"])
    dosed = frame[pd.to_numeric(ex[dose], errors="coerce").gt(0).fillna(False).to_numpy()]
    grouped = dosed.groupby(by, sort=True)
    subjects = pd.Index(sorted(ex[by].dropna().unique()), name=by)
    out = pd.DataFrame(index=subjects)
    out["TRTSDT"] = grouped["_START"].min().reindex(subjects).astype(DATE_DTYPE)
    out["TRTEDT"] = grouped["_END"].max().reindex(subjects).astype(DATE_DTYPE)
    out["D1"] = out["TRTSDT"]
    out["ONGOING"] = grouped["_OPEN"].any().reindex(subjects).fillna(False).astype(bool)
    return out.reset_index()


def derive_exposure(
    ex: pd.DataFrame,
    first_last: pd.DataFrame,
    *,
    start: str,
    end: str,
    missed: str,
    limit_pct: Any,
    data_cut: Any = None,
    by: str = "SUBJID",
) -> pd.DataFrame:
    """Per dosing period: ``PLANNED``, ``MISSED``, ``PCTMISSED``, ``OVERLIMIT`` and ``ASTDY``.

    PLANNED = end − start + 1 days (an open period ends at ``data_cut`` when given, else NA);
    MISSED = the ``missed`` column; PCTMISSED = 100·MISSED/PLANNED (float); OVERLIMIT =
    MISSED/PLANNED > ``limit_pct`` % compared exactly (boolean; NA when unknown); ASTDY = study day
    of the period's start against D1 of ``first_last`` (:func:`derive_first_dose`).

    >>> ex = pd.DataFrame({"SUBJID": ["S1"] * 2, "START": pd.to_datetime(["2024-01-01", "2024-01-31"]),
    ...     "END": pd.to_datetime(["2024-01-30", "2024-03-10"]), "DOSE": [50.0, 50.0],
    ...     "MISS": pd.array([6, 9], dtype="Int64")})
    >>> fl = derive_first_dose(ex, start="START", end="END", dose="DOSE")
    >>> derive_exposure(ex, fl, start="START", end="END", missed="MISS", limit_pct="20")[["PLANNED", "OVERLIMIT", "ASTDY"]].values.tolist()
    [[30, False, 1], [40, True, 31]]
    """
    out = ex.copy()
    begin = as_dates(ex[start])
    finish = as_dates(ex[end])
    if data_cut is not None:
        finish = finish.fillna(pd.Timestamp(data_cut))
    planned = ((finish - begin).dt.days + 1).astype("Int64")
    missing = pd.to_numeric(ex[missed], errors="coerce").astype("Int64")
    out["PLANNED"] = planned
    out["MISSED"] = missing
    limit = Fraction(str(limit_pct))
    pct: list[float] = []
    over: list[bool | None] = []
    for days, miss in zip(planned, missing, strict=True):
        if pd.isna(days) or pd.isna(miss) or int(days) <= 0:
            pct.append(np.nan)
            over.append(None)
            continue
        ratio = Fraction(int(miss) * 100, int(days))
        pct.append(float(ratio))
        over.append(ratio > limit)
    out["PCTMISSED"] = pct
    out["OVERLIMIT"] = bool_series(over, out.index)
    out["ASTDY"] = compute_study_day(begin, as_dates(subject_lookup(ex, first_last, "D1", by=by)))
    return out


def derive_treatment_dates(
    ex: pd.DataFrame,
    *,
    start: str,
    end: str,
    dose: str,
    data_cut: Any = None,
    by: str = "SUBJID",
) -> pd.DataFrame:
    """First and last dose as an analysis dataset states them, with the ongoing flag and duration.

    Only periods with ``dose`` > 0 count. A period is *open* when it has no ``end`` or — with
    ``data_cut`` — ends after the cut (it was still running then). Per subject:

    - ``TRTSDT`` = the earliest ``start``;
    - ``TRTEDT`` = the latest ``end`` when every period has ended, else NaT (never the start of the
      last period: an open period has no last dose yet);
    - ``TRTONGFL`` = ``"Y"`` when a period is open, ``"N"`` otherwise (NA without a dose);
    - ``TRTDURD`` = days from TRTSDT to TRTEDT, or to ``data_cut`` while ongoing, both counted
      (Int64; NA while ongoing without a data cut).

    >>> ex = pd.DataFrame({"SUBJID": ["S1", "S1", "S2"],
    ...     "START": pd.to_datetime(["2024-01-10", "2024-02-01", "2024-01-15"]),
    ...     "END": pd.to_datetime(["2024-01-31", None, "2024-03-14"]), "DOSE": [40.0, 50.0, 100.0]})
    >>> out = derive_treatment_dates(ex, start="START", end="END", dose="DOSE", data_cut="2024-06-30")
    >>> out[["SUBJID", "TRTONGFL", "TRTDURD"]].values.tolist(), out["TRTEDT"].isna().tolist()
    ([['S1', 'Y', 173], ['S2', 'N', 60]], [True, False])
    """
    cut = None if data_cut is None or (not isinstance(data_cut, str) and pd.isna(data_cut)) else pd.Timestamp(data_cut)
    frame = ex[[by]].copy()
    frame["_START"] = as_dates(ex[start])
    finish = as_dates(ex[end])
    frame["_OPEN"] = finish.isna() | ((finish > cut) if cut is not None else False)
    frame["_END"] = finish
    dosed = frame[pd.to_numeric(ex[dose], errors="coerce").gt(0).fillna(False).to_numpy()]
    grouped = dosed.groupby(by, sort=True)
    subjects = pd.Index(sorted(ex[by].dropna().unique()), name=by)
    out = pd.DataFrame(index=subjects)
    out["TRTSDT"] = grouped["_START"].min().reindex(subjects).astype(DATE_DTYPE)
    ongoing = grouped["_OPEN"].any().reindex(subjects)
    last = grouped["_END"].max().reindex(subjects).astype(DATE_DTYPE)
    out["TRTEDT"] = last.where(~ongoing.fillna(False).astype(bool))
    flag = np.where(ongoing.isna(), None, np.where(ongoing.fillna(False).astype(bool), "Y", "N"))
    out["TRTONGFL"] = pd.Series(flag, index=subjects, dtype=object)
    stop = out["TRTEDT"]
    if cut is not None:
        stop = stop.where(out["TRTONGFL"].ne("Y"), cut)
    out["TRTDURD"] = ((stop - out["TRTSDT"]).dt.days + 1).astype("Int64")
    return out.reset_index()
