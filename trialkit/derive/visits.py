"""Visits: the analysis visit of a date and the window of a named visit, from the study's visit table.

The visit table is the study's (:attr:`trialkit.study.Study.visits`); the frame's date column and
visit column are arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from trialkit.derive.dates import as_dates, compute_study_day
from trialkit.derive.util import anchors, subject_lookup

__all__ = ["UNSCHEDULED", "derive_visit_window"]

#: AVISIT of a date outside every scheduled visit's window.
UNSCHEDULED = "UNSCHEDULED"


def _scheduled(visits: Mapping[str, Any]) -> list[Any]:
    return sorted((v for v in visits.values() if v.scheduled and v.window_lo is not None), key=lambda v: v.num)


def derive_visit_window(
    frame: pd.DataFrame,
    date_col: str,
    first_last: pd.DataFrame,
    *,
    visits: Mapping[str, Any],
    visit_col: str | None = "VISIT",
    by: str = "SUBJID",
) -> pd.DataFrame:
    """Add ``ADY``, the analysis visit ``AVISIT``/``AVISITN`` and, when ``visit_col`` is present,
    the named visit's window ``WINDOWLO``/``WINDOWHI``/``TARGET`` (study days) and ``INWIN``.

    AVISIT is the scheduled visit whose window contains the day. Visits anchored on the first dose
    use the study day; a visit anchored on the last dose uses days after the last dose (TRTEDT of
    ``first_last``) and wins on a date after the last dose (off treatment, the follow-up window
    governs); otherwise :data:`UNSCHEDULED`. For a last-dose visit, WINDOWLO/HI/TARGET are converted
    to study days (TRTEDT's study day + offset). INWIN is boolean; NA when the day, the anchor or
    the window is unknown (e.g. an unscheduled visit).

    >>> from trialkit.study.model import Visit
    >>> plan = {"BASE": Visit(1, "BASE", "Baseline", "first_dose", 1, 1, 1),
    ...         "WEEK2": Visit(2, "WEEK2", "Week 2", "first_dose", 15, 13, 17)}
    >>> fl = pd.DataFrame({"SUBJID": ["S1"], "D1": pd.to_datetime(["2024-01-01"]),
    ...     "TRTEDT": pd.to_datetime(["2024-12-30"])})
    >>> seen = pd.DataFrame({"SUBJID": ["S1"], "VISIT": ["WEEK2"], "SEENDAT": pd.to_datetime(["2024-01-20"])})
    >>> derive_visit_window(seen, "SEENDAT", fl, visits=plan)[["ADY", "AVISIT", "WINDOWHI", "INWIN"]].to_dict("records")
    [{'ADY': 20, 'AVISIT': 'UNSCHEDULED', 'WINDOWHI': 17, 'INWIN': False}]
    """
    dates = anchors(first_last)
    out = frame.copy()
    when = as_dates(frame[date_col])
    d1 = as_dates(subject_lookup(frame, dates, "D1", by=by))
    last = as_dates(subject_lookup(frame, dates, "TRTEDT", by=by))
    ady = compute_study_day(when, d1)
    after_last = (when - last).dt.days  # days after the last dose (0 = the last-dose day)
    last_study_day = compute_study_day(last, d1)
    out["ADY"] = ady

    plan = _scheduled(visits)
    names: list[Any] = []
    numbers: list[Any] = []
    for day, post, off_treatment in zip(ady, after_last, (when > last).fillna(False), strict=True):
        chosen = None
        if pd.notna(post) and off_treatment:
            chosen = next((v for v in plan if v.anchor == "last_dose" and v.window_lo <= post <= v.window_hi), None)
        if chosen is None and pd.notna(day):
            chosen = next((v for v in plan if v.anchor == "first_dose" and v.window_lo <= day <= v.window_hi), None)
        if chosen is None and pd.notna(post):
            chosen = next((v for v in plan if v.anchor == "last_dose" and v.window_lo <= post <= v.window_hi), None)
        names.append(chosen.code if chosen else (UNSCHEDULED if pd.notna(day) else pd.NA))
        numbers.append(chosen.num if chosen else pd.NA)
    out["AVISIT"] = pd.Series(names, index=out.index, dtype=object)
    out["AVISITN"] = pd.array(numbers, dtype="Int64")

    if visit_col and visit_col in frame.columns:
        lows: list[Any] = []
        highs: list[Any] = []
        targets: list[Any] = []
        for code, base in zip(frame[visit_col], last_study_day, strict=True):
            visit = visits.get(code) if isinstance(code, str) else None
            if visit is None or visit.window_lo is None or visit.anchor == "none":
                lows.append(pd.NA)
                highs.append(pd.NA)
                targets.append(pd.NA)
            elif visit.anchor == "last_dose":
                if pd.isna(base):
                    lows.append(pd.NA)
                    highs.append(pd.NA)
                    targets.append(pd.NA)
                else:
                    lows.append(int(base) + visit.window_lo)
                    highs.append(int(base) + visit.window_hi)
                    targets.append(int(base) + visit.target_day)
            else:
                lows.append(visit.window_lo)
                highs.append(visit.window_hi)
                targets.append(visit.target_day)
        out["WINDOWLO"] = pd.array(lows, dtype="Int64")
        out["WINDOWHI"] = pd.array(highs, dtype="Int64")
        out["TARGET"] = pd.array(targets, dtype="Int64")
        inside = (out["ADY"] >= out["WINDOWLO"]) & (out["ADY"] <= out["WINDOWHI"])
        out["INWIN"] = inside.astype("boolean")
    return out
