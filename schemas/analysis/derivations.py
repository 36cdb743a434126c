"""Primitive derivations from validated forms (admiral style).

One derivation per function, named verb-first: ``compute_*`` works on columns (Series in, Series
out), ``derive_*`` takes a frame and returns a new frame (the input is never modified). The frames
are the typed ``FormData.data`` frames of :mod:`trialkit.importers.base` (``str`` for char, pdate
and yn; ``Int64`` for int; float for num; ``datetime64`` for date).

The engine never imports a study by name: whatever the protocol fixes (visit windows, joint sets,
prednisone factors, frequency multipliers) comes from the ``study`` argument
(:func:`trialkit.study.load_study`). Every clinical formula and every threshold comparison goes
through :mod:`trialkit.scores`, in exact decimal arithmetic; floats appear only in outputs.

Conventions:

- Study day: d − D1 + 1 when d ≥ D1, else d − D1 (no day 0).
- ``first_last`` frames are what :func:`derive_first_dose` returns: ``SUBJID``, ``TRTSDT``,
  ``TRTEDT``, ``D1``.
- Yes/no results are pandas ``boolean`` (True/False/NA): NA means undetermined. Record-level ADaM
  flags (``TRTEMFL``) are ``"Y"`` or NA.

The analysis datasets built from these primitives are in :mod:`trialkit.adam`.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from fractions import Fraction
from typing import Any, Literal

import numpy as np
import pandas as pd

from trialkit import scores
from trialkit.study import exact

__all__ = [
    "compute_age_at",
    "compute_duration_months",
    "compute_duration_years",
    "compute_study_day",
    "derive_chaq_di",
    "derive_dose_window",
    "derive_exposure",
    "derive_fever_free",
    "derive_first_dose",
    "derive_joint_counts",
    "derive_prednisone_equivalent",
    "derive_teae",
    "derive_visit_window",
    "derive_weight_on",
    "impute_partial_date",
]

#: Day of the month taken for a ``YYYY-MM`` birth or onset (protocol decision, DERIVATIONS "Dates").
MID_MONTH_DAY = 15
#: Routes counted in the prednisone-equivalent dose (DERIVATIONS "Corticosteroids").
STEROID_ROUTES = ("PO", "IV", "IM")
UNSCHEDULED = "UNSCHEDULED"

_PDATE = re.compile(r"^\s*(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?\s*$")
_DATE_DTYPE = "datetime64[ns]"


# ------------------------------------------------------------------------------------------------
# Helpers


def _dates(values: Any) -> pd.Series | pd.Timestamp:
    """A Series (or scalar) of dates as ``datetime64[ns]`` (NaT when missing)."""
    if isinstance(values, pd.Series):
        return pd.to_datetime(values, errors="coerce").astype(_DATE_DTYPE)
    return pd.Timestamp(values) if not pd.isna(values) else pd.NaT


def _is_y(values: pd.Series) -> pd.Series:
    """True where a yn column is ``Y`` (missing is False)."""
    return values.astype("string").str.strip().str.upper().eq("Y").fillna(False).astype(bool)


def _subject_map(frame: pd.DataFrame, lookup: pd.DataFrame, column: str) -> pd.Series:
    """``lookup[column]`` for each row of ``frame``, matched on SUBJID (one row per subject)."""
    table = lookup.drop_duplicates("SUBJID").set_index("SUBJID")[column]
    keys = frame["SUBJID"]
    # reindex, not map: map on an empty frame casts datetimes to float and fails.
    return pd.Series(table.reindex(keys.to_numpy()).to_numpy(), index=keys.index, dtype=table.dtype)


def _first_dose_dates(first_last: pd.DataFrame) -> pd.DataFrame:
    """``first_last`` with D1 (falling back to TRTSDT) and TRTEDT as datetime columns."""
    out = first_last.copy()
    if "D1" not in out.columns:
        out["D1"] = out["TRTSDT"]
    if "TRTEDT" not in out.columns:
        out["TRTEDT"] = pd.NaT
    out["D1"] = _dates(out["D1"])
    out["TRTEDT"] = _dates(out["TRTEDT"])
    return out


def _exact_or_none(value: Any) -> Fraction | None:
    number = scores.to_decimal(value)
    return None if number is None else Fraction(number)


def _bool_series(values: Iterable[bool | None], index: pd.Index) -> pd.Series:
    return pd.Series(list(values), index=index, dtype="boolean")


# ------------------------------------------------------------------------------------------------
# Dates


def compute_study_day(dates: pd.Series, d1: pd.Series | pd.Timestamp) -> pd.Series:
    """Study day of each date against day 1: d − D1 + 1 when d ≥ D1, else d − D1 (no day 0).

    ``d1`` is a Series aligned with ``dates`` or one ``Timestamp``. NA when either is missing.

    >>> days = pd.to_datetime(pd.Series(["2024-03-09", "2024-03-10", "2024-03-11", None]))
    >>> compute_study_day(days, pd.Timestamp("2024-03-10")).tolist()
    [-1, 1, 2, <NA>]
    """
    delta = (_dates(dates) - _dates(d1)).dt.days
    day = delta.where(delta < 0, delta + 1)
    return day.astype("Int64")


def derive_first_dose(ex: pd.DataFrame) -> pd.DataFrame:
    """First and last dose per subject from EX: ``SUBJID``, ``TRTSDT``, ``TRTEDT``, ``D1``.

    Only dosing periods with ``EXDOSE`` > 0 count. TRTSDT = earliest ``EXSTDAT``; TRTEDT = latest
    ``EXENDAT``, an open period (no ``EXENDAT``) counting by its ``EXSTDAT``; D1 = TRTSDT. A subject
    in EX with no positive dose has NaT for all three. One row per subject, sorted by SUBJID.

    >>> ex = pd.DataFrame({"SUBJID": ["01-001", "01-001"],
    ...     "EXSTDAT": pd.to_datetime(["2024-01-10", "2024-02-01"]),
    ...     "EXENDAT": pd.to_datetime(["2024-01-31", None]), "EXDOSE": [40.0, 50.0]})
    >>> fd = derive_first_dose(ex)
    >>> fd["TRTSDT"].dt.strftime("%Y-%m-%d").tolist(), fd["TRTEDT"].dt.strftime("%Y-%m-%d").tolist()
    (['2024-01-10'], ['2024-02-01'])
    """
    frame = ex[["SUBJID"]].copy()
    frame["START"] = _dates(ex["EXSTDAT"])
    frame["END"] = _dates(ex["EXENDAT"]).fillna(frame["START"])
    dosed = frame[pd.to_numeric(ex["EXDOSE"], errors="coerce").gt(0).fillna(False).to_numpy()]
    grouped = dosed.groupby("SUBJID", sort=True)
    subjects = pd.Index(sorted(ex["SUBJID"].dropna().unique()), name="SUBJID")
    out = pd.DataFrame(index=subjects)
    out["TRTSDT"] = grouped["START"].min().reindex(subjects).astype(_DATE_DTYPE)
    out["TRTEDT"] = grouped["END"].max().reindex(subjects).astype(_DATE_DTYPE)
    out["D1"] = out["TRTSDT"]
    return out.reset_index()


def _parse_pdate(value: Any) -> tuple[int, int | None, int | None] | None:
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


def _mid_month(values: pd.Series, *, allow_full: bool) -> pd.Series:
    """``YYYY-MM`` as the 15th of that month (NaT when unparseable or only a year)."""
    out = []
    for value in values:
        parts = _parse_pdate(value)
        if parts is None or parts[1] is None:
            out.append(pd.NaT)
        elif parts[2] is not None and allow_full:
            out.append(pd.Timestamp(parts[0], parts[1], parts[2]))
        else:
            out.append(pd.Timestamp(parts[0], parts[1], MID_MONTH_DAY))
    return pd.Series(out, index=values.index, dtype=_DATE_DTYPE)


def compute_age_at(brthym: pd.Series, on: pd.Series | pd.Timestamp) -> pd.Series:
    """Age in whole years on a date, birth taken on the 15th of the ``YYYY-MM`` month.

    Protocol decision (DERIVATIONS "Dates"). A ``YYYY-MM-DD`` value is also read as the 15th (the
    form allows year and month only); anything unparseable, or a missing date, gives NA.

    >>> born = pd.Series(["2010-03", "2010-03", "bad"])
    >>> compute_age_at(born, pd.Series(pd.to_datetime(["2024-03-14", "2024-03-15", "2024-03-15"]))).tolist()
    [13, 14, <NA>]
    """
    birth = _mid_month(brthym, allow_full=False)
    when = _dates(on)
    if not isinstance(when, pd.Series):
        when = pd.Series(when, index=brthym.index, dtype=_DATE_DTYPE)
    years = when.dt.year - birth.dt.year
    before_birthday = (when.dt.month < birth.dt.month) | (
        (when.dt.month == birth.dt.month) & (when.dt.day < birth.dt.day)
    )
    age = years - before_birthday.astype(int)
    return age.where(birth.notna() & when.notna()).astype("Int64")


def _onset_and_date(onsetym: pd.Series, on: pd.Series | pd.Timestamp) -> tuple[pd.Series, pd.Series]:
    onset = _mid_month(onsetym, allow_full=True)
    when = _dates(on)
    if not isinstance(when, pd.Series):
        when = pd.Series(when, index=onsetym.index, dtype=_DATE_DTYPE)
    return onset, when


def compute_duration_years(onsetym: pd.Series, on: pd.Series | pd.Timestamp) -> pd.Series:
    """Disease duration in years at a date: (date − onset) in days / 365.25 (float, unrounded).

    Onset is the 15th of the ``ONSETYM`` month (protocol decision); a full ``YYYY-MM-DD`` onset is
    used as typed; a year alone, or an unparseable value, gives NaN. See
    :func:`compute_duration_months` for whole months (eligibility IN03, ≥ 6 months).

    >>> compute_duration_years(pd.Series(["2020-03"]), pd.Timestamp("2024-03-15")).round(3).tolist()
    [4.0]
    """
    onset, when = _onset_and_date(onsetym, on)
    return ((when - onset).dt.days / 365.25).astype(float)


def compute_duration_months(onsetym: pd.Series, on: pd.Series | pd.Timestamp) -> pd.Series:
    """Disease duration in complete months at a date, onset on the 15th (Int64; NA when unknown).

    >>> compute_duration_months(pd.Series(["2023-09", "2023-09"]),
    ...     pd.Series(pd.to_datetime(["2024-03-14", "2024-03-15"]))).tolist()
    [5, 6]
    """
    onset, when = _onset_and_date(onsetym, on)
    months = (when.dt.year - onset.dt.year) * 12 + (when.dt.month - onset.dt.month)
    months = months - (when.dt.day < onset.dt.day).astype(int)
    return months.where(onset.notna() & when.notna()).astype("Int64")


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
        parts = _parse_pdate(value)
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
            "DT": pd.Series(dates, index=values.index, dtype=_DATE_DTYPE),
            "DTF": pd.Series(flags, index=values.index, dtype=object),
        }
    )


# ------------------------------------------------------------------------------------------------
# Weight and dose


def derive_weight_on(
    vs: pd.DataFrame, frame: pd.DataFrame, date_col: str, *, out: str = "WEIGHT"
) -> pd.DataFrame:
    """Add the weight (kg) measured at the latest VS visit on or before ``frame[date_col]``.

    Matched per SUBJID (``merge_asof``, backward, exact date allowed); VS records without a weight
    are skipped; NaN when there is none. The returned frame keeps ``frame``'s index and order.

    >>> vs = pd.DataFrame({"SUBJID": ["01-001"] * 2, "VSDAT": pd.to_datetime(["2024-01-01", "2024-02-01"]),
    ...     "WEIGHT": [30.0, 32.0]})
    >>> ex = pd.DataFrame({"SUBJID": ["01-001"] * 2, "EXSTDAT": pd.to_datetime(["2024-01-15", "2024-02-01"])})
    >>> derive_weight_on(vs, ex, "EXSTDAT")["WEIGHT"].tolist()
    [30.0, 32.0]
    """
    result = frame.copy()
    left = pd.DataFrame(
        {
            "_ROW": np.arange(len(frame)),
            "SUBJID": frame["SUBJID"].astype(object).to_numpy(),
            "_DATE": _dates(frame[date_col]).to_numpy(),
        }
    ).dropna(subset=["_DATE", "SUBJID"])
    right = pd.DataFrame(
        {
            "SUBJID": vs["SUBJID"].astype(object).to_numpy(),
            "_VSDATE": _dates(vs["VSDAT"]).to_numpy(),
            "_W": pd.to_numeric(vs["WEIGHT"], errors="coerce").astype(float).to_numpy(),
        }
    ).dropna()
    values = np.full(len(frame), np.nan)
    if len(left) and len(right):
        merged = pd.merge_asof(
            left.sort_values("_DATE"),
            right.sort_values("_VSDATE"),
            left_on="_DATE",
            right_on="_VSDATE",
            by="SUBJID",
            direction="backward",
            allow_exact_matches=True,
        )
        values[merged["_ROW"].to_numpy()] = merged["_W"].to_numpy(dtype=float)
    result[out] = values
    return result


def derive_dose_window(ex: pd.DataFrame, vs: pd.DataFrame, *, study: Any) -> pd.DataFrame:
    """Per EX record: ``WEIGHT``, the protocol dose window ``DOSELO``–``DOSEHI`` and ``INWINDOW``.

    The weight is the latest on or before ``EXSTDAT``; the window is
    :func:`trialkit.scores.anakinra_dose_window` (fixed dose from the study's
    ``dose.weight_threshold_kg``); ``INWINDOW`` = DOSELO ≤ EXDOSE ≤ DOSEHI compared exactly
    (boolean; NA when the weight or dose is missing). A zero-dose period is compared like any other:
    whether an interruption is a deviation is the caller's decision.

    >>> from trialkit.study import load_study
    >>> ex = pd.DataFrame({"SUBJID": ["01-001"], "EXSTDAT": pd.to_datetime(["2024-01-10"]), "EXDOSE": [100.0]})
    >>> vs = pd.DataFrame({"SUBJID": ["01-001"], "VSDAT": pd.to_datetime(["2024-01-10"]), "WEIGHT": [49.0]})
    >>> derive_dose_window(ex, vs, study=load_study())[["DOSELO", "DOSEHI", "INWINDOW"]].to_dict("records")
    [{'DOSELO': 40, 'DOSEHI': 100, 'INWINDOW': True}]
    """
    threshold = study.param("dose", "weight_threshold_kg", default="50")
    out = derive_weight_on(vs, ex, "EXSTDAT", out="WEIGHT")
    lows: list[Any] = []
    highs: list[Any] = []
    inside: list[bool | None] = []
    for weight, dose in zip(out["WEIGHT"], out["EXDOSE"], strict=True):
        window = scores.anakinra_dose_window(weight, fixed_dose_from_kg=threshold)
        given = _exact_or_none(dose)
        if window is None:
            lows.append(pd.NA)
            highs.append(pd.NA)
            inside.append(None)
            continue
        lows.append(window[0])
        highs.append(window[1])
        inside.append(None if given is None else window[0] <= given <= window[1])
    out["DOSELO"] = pd.array(lows, dtype="Int64")
    out["DOSEHI"] = pd.array(highs, dtype="Int64")
    out["INWINDOW"] = _bool_series(inside, out.index)
    return out


def _frequency_multiplier(code: Any, table: dict[str, Any]) -> Fraction | str | None:
    if code is None or (not isinstance(code, str) and pd.isna(code)):
        return None
    value = table.get(str(code).strip().upper())
    if value is None:
        return None
    if str(value).strip().lower() == "once":
        return "once"
    return exact(value)


def derive_prednisone_equivalent(
    cm: pd.DataFrame,
    vs: pd.DataFrame,
    dates: pd.DataFrame,
    *,
    study: Any,
    routes: Iterable[str] = STEROID_ROUTES,
) -> pd.DataFrame:
    """Daily prednisone-equivalent dose on given dates: ``PREDMG`` (mg/day) and ``PREDMGKG``.

    ``dates`` has ``SUBJID`` and ``DATE``; the output is ``dates`` with ``WEIGHT`` (latest on or
    before DATE), ``PREDMG`` and ``PREDMGKG`` added. PREDMG = Σ over glucocorticoid CM courses
    (``drug_classes.glucocorticoids``, routes PO/IV/IM) active on DATE of CMDOSE (mg, or mg/kg ×
    weight) × the ``frequency_per_day`` multiplier (QW = 1/7 …; ONCE counts only on its full start
    date) × the ``prednisone_factors`` factor, summed in exact fractions. A course is active when
    start (first of its period) ≤ DATE ≤ end (last of its period), or it is ongoing / has no end.
    No active course → 0. An active course whose dose cannot be computed (missing dose, frequency
    or needed weight; unit mg/m2) makes the day NaN — undetermined, never silently 0.
    PREDMGKG = PREDMG ÷ weight (NaN without a weight).

    >>> from trialkit.study import load_study
    >>> cm = pd.DataFrame({"SUBJID": ["01-001"], "CMTRT": ["PREDNISONE"], "CMDOSE": [10.0],
    ...     "CMDOSU": ["mg"], "CMFRQ": ["BID"], "CMROUTE": ["PO"], "CMSTDAT": ["2024-01"],
    ...     "CMENDAT": [None], "CMONGO": ["Y"]})
    >>> vs = pd.DataFrame({"SUBJID": ["01-001"], "VSDAT": pd.to_datetime(["2024-01-05"]), "WEIGHT": [40.0]})
    >>> dates = pd.DataFrame({"SUBJID": ["01-001"], "DATE": pd.to_datetime(["2024-01-10"])})
    >>> derive_prednisone_equivalent(cm, vs, dates, study=load_study())[["PREDMG", "PREDMGKG"]].iloc[0].tolist()
    [20.0, 0.5]
    """
    factors = {str(k).upper(): exact(v) for k, v in (study.param("prednisone_factors") or {}).items()}
    steroids = {
        str(d).upper() for d in (study.param("drug_classes", "glucocorticoids") or factors.keys())
    }
    frequency = {str(k).upper(): v for k, v in (study.param("frequency_per_day") or {}).items()}
    allowed_routes = {r.upper() for r in routes}

    treatment = cm["CMTRT"].astype("string").str.strip().str.upper()
    route = cm["CMROUTE"].astype("string").str.strip().str.upper()
    keep = (treatment.isin(steroids) & route.isin(allowed_routes)).fillna(False).astype(bool)
    courses = cm[keep.to_numpy()].copy()
    courses["XTRT"] = treatment[keep.to_numpy()]
    courses["XSTART"] = impute_partial_date(courses["CMSTDAT"], "start")["DT"]
    courses["XEND"] = impute_partial_date(courses["CMENDAT"], "end")["DT"] if len(courses) else []
    courses["XONGO"] = _is_y(courses["CMONGO"]) if "CMONGO" in courses else False
    start_parts = [_parse_pdate(v) for v in courses["CMSTDAT"]]
    courses["XFULLST"] = [p is not None and p[2] is not None for p in start_parts]

    out = derive_weight_on(vs, dates, "DATE", out="WEIGHT")
    by_subject = {subject: group for subject, group in courses.groupby("SUBJID")}
    mg_values: list[float] = []
    mgkg_values: list[float] = []
    for subject, day, weight in zip(out["SUBJID"], _dates(out["DATE"]), out["WEIGHT"], strict=True):
        if pd.isna(day):
            mg_values.append(np.nan)
            mgkg_values.append(np.nan)
            continue
        total: Fraction | None = Fraction(0)
        weight_exact = _exact_or_none(weight)
        for row in by_subject.get(subject, courses.iloc[0:0]).itertuples(index=False):
            start, end = row.XSTART, row.XEND
            if pd.isna(start) or start > day:
                continue
            if not (row.XONGO or pd.isna(end) or day <= end):
                continue
            multiplier = _frequency_multiplier(row.CMFRQ, frequency)
            if multiplier == "once":
                if not (row.XFULLST and start == day):
                    continue
                multiplier = Fraction(1)
            dose = _exact_or_none(row.CMDOSE)
            unit = str(row.CMDOSU).strip().lower() if isinstance(row.CMDOSU, str) else None
            if unit == "mg/kg" and dose is not None:
                dose = None if weight_exact is None else dose * weight_exact
            elif unit != "mg":
                dose = None
            if dose is None or multiplier is None or total is None:
                total = None
                continue
            total += dose * multiplier * factors.get(row.XTRT, Fraction(1))
        mg_values.append(np.nan if total is None else float(total))
        if total is None or weight_exact is None or weight_exact == 0:
            mgkg_values.append(np.nan)
        else:
            mgkg_values.append(float(total / weight_exact))
    out["PREDMG"] = mg_values
    out["PREDMGKG"] = mgkg_values
    return out


# ------------------------------------------------------------------------------------------------
# Visits


def _scheduled_visits(study: Any) -> list[Any]:
    return sorted(
        (v for v in study.visits.values() if v.scheduled and v.window_lo is not None),
        key=lambda v: v.num,
    )


def derive_visit_window(
    frame: pd.DataFrame, date_col: str, first_last: pd.DataFrame, *, study: Any
) -> pd.DataFrame:
    """Add ``ADY``, the analysis visit ``AVISIT``/``AVISITN`` and, when ``VISIT`` is present,
    the named visit's window ``WINDOWLO``/``WINDOWHI``/``TARGET`` (study days) and ``INWIN``.

    AVISIT is the scheduled visit whose window contains the day. Visits anchored on the first dose
    use the study day; FU (``last_dose`` anchor) uses days after the last dose (TRTEDT) and wins on
    a date after the last dose (decision: off treatment, the follow-up window governs); otherwise
    ``UNSCHEDULED``. For a last-dose visit, WINDOWLO/HI/TARGET are converted to study days (TRTEDT's
    study day + offset). INWIN is boolean; NA when the day, the anchor or the window is unknown
    (e.g. an ``UNS`` visit).

    >>> from trialkit.study import load_study
    >>> fl = pd.DataFrame({"SUBJID": ["01-001"], "D1": pd.to_datetime(["2024-01-01"]),
    ...     "TRTEDT": pd.to_datetime(["2024-12-30"])})
    >>> cs = pd.DataFrame({"SUBJID": ["01-001"], "VISIT": ["W4"], "CSDAT": pd.to_datetime(["2024-02-03"])})
    >>> derive_visit_window(cs, "CSDAT", fl, study=load_study())[["ADY", "AVISIT", "WINDOWHI", "INWIN"]].to_dict("records")
    [{'ADY': 34, 'AVISIT': 'UNSCHEDULED', 'WINDOWHI': 32, 'INWIN': False}]
    """
    anchors = _first_dose_dates(first_last)
    out = frame.copy()
    when = _dates(frame[date_col])
    d1 = _dates(_subject_map(frame, anchors, "D1"))
    last = _dates(_subject_map(frame, anchors, "TRTEDT"))
    ady = compute_study_day(when, d1)
    after_last = (when - last).dt.days  # days after the last dose (0 = the last-dose day)
    last_study_day = compute_study_day(last, d1)
    out["ADY"] = ady

    visits = _scheduled_visits(study)
    names: list[Any] = []
    numbers: list[Any] = []
    for day, post, off_treatment in zip(
        ady, after_last, (when > last).fillna(False), strict=True
    ):
        chosen = None
        if pd.notna(post) and off_treatment:
            chosen = next(
                (v for v in visits if v.anchor == "last_dose" and v.window_lo <= post <= v.window_hi),
                None,
            )
        if chosen is None and pd.notna(day):
            chosen = next(
                (v for v in visits if v.anchor == "first_dose" and v.window_lo <= day <= v.window_hi),
                None,
            )
        if chosen is None and pd.notna(post):
            chosen = next(
                (v for v in visits if v.anchor == "last_dose" and v.window_lo <= post <= v.window_hi),
                None,
            )
        names.append(chosen.code if chosen else (UNSCHEDULED if pd.notna(day) else pd.NA))
        numbers.append(chosen.num if chosen else pd.NA)
    out["AVISIT"] = pd.Series(names, index=out.index, dtype=object)
    out["AVISITN"] = pd.array(numbers, dtype="Int64")

    if "VISIT" in frame.columns:
        lows: list[Any] = []
        highs: list[Any] = []
        targets: list[Any] = []
        for code, base in zip(frame["VISIT"], last_study_day, strict=True):
            visit = study.visits.get(code) if isinstance(code, str) else None
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


# ------------------------------------------------------------------------------------------------
# Fever diary


def _visit_date_column(visits: pd.DataFrame, date_col: str | None) -> str:
    if date_col is not None:
        return date_col
    candidates = [c for c in visits.columns if pd.api.types.is_datetime64_any_dtype(visits[c])]
    if len(candidates) != 1:
        raise ValueError(
            f"visits: cannot tell the visit date among datetime columns {candidates}; "
            "pass date_col="
        )
    return candidates[0]


def derive_fever_free(
    fever: pd.DataFrame,
    visits: pd.DataFrame,
    *,
    threshold_c: Any = "38.0",
    min_days: int = 6,
    date_col: str | None = None,
    window_days: int = 7,
    places: int = 6,
) -> pd.DataFrame:
    """Fever-free status before each visit from the FEVER diary (DERIVATIONS "Adapted ACR Pedi").

    For each row of ``visits`` (SUBJID, VISIT and the visit date — ``date_col``, or the one
    datetime column): ``NDIARY`` = days of V−7..V−1 with a recorded ``FVTEMP``; ``MAXTEMP`` = the
    highest of them (NaN when none); ``FEVFREE`` = :func:`trialkit.scores.fever_free`: False when any
    recorded temperature ≥ ``threshold_c``; True when ≥ ``min_days`` days are recorded, all below;
    else NA. FVTEMP is already in °C; it is rounded half-up to ``places`` decimals before the exact
    comparison, so float noise from the °F conversion (37.99999999999999) cannot cross 38.0.

    >>> diary = pd.DataFrame({"SUBJID": ["01-001"] * 6,
    ...     "FVDAT": pd.date_range("2024-01-02", periods=6), "FVTEMP": [37.0] * 6})
    >>> visits = pd.DataFrame({"SUBJID": ["01-001"], "VISIT": ["W4"], "CSDAT": pd.to_datetime(["2024-01-09"])})
    >>> derive_fever_free(diary, visits)[["NDIARY", "FEVFREE"]].to_dict("records")
    [{'NDIARY': 6, 'FEVFREE': True}]
    """
    column = _visit_date_column(visits, date_col)
    diary = pd.DataFrame(
        {
            "SUBJID": fever["SUBJID"].astype(object).to_numpy(),
            "DAY": _dates(fever["FVDAT"]).to_numpy(),
            "T": pd.to_numeric(fever["FVTEMP"], errors="coerce").astype(float).to_numpy(),
        }
    ).dropna()
    # One value per day: the highest recorded (the form allows one row per day; be safe).
    daily = diary.groupby(["SUBJID", "DAY"])["T"].max()
    per_subject = {
        subject: series.droplevel(0) for subject, series in daily.groupby(level="SUBJID")
    }
    out = visits.copy()
    counts: list[Any] = []
    maxima: list[float] = []
    status: list[bool | None] = []
    for subject, visit_day in zip(visits["SUBJID"], _dates(visits[column]), strict=True):
        if pd.isna(visit_day):
            counts.append(pd.NA)
            maxima.append(np.nan)
            status.append(None)
            continue
        days = [visit_day - pd.Timedelta(days=k) for k in range(window_days, 0, -1)]
        series = per_subject.get(subject)
        temps = [
            None if series is None or day not in series.index else scores.round_half_up(series[day], places)
            for day in days
        ]
        recorded = [t for t in temps if t is not None]
        counts.append(len(recorded))
        maxima.append(float(max(recorded)) if recorded else np.nan)
        status.append(
            scores.fever_free(
                temps, window_days=window_days, min_recorded_days=min_days, fever_c=str(threshold_c)
            )
        )
    out["NDIARY"] = pd.array(counts, dtype="Int64")
    out["MAXTEMP"] = maxima
    out["FEVFREE"] = _bool_series(status, out.index)
    return out


# ------------------------------------------------------------------------------------------------
# Joints and CHAQ


def _visit_key(visit: pd.Series, date: pd.Series) -> pd.Series:
    """VISIT, or ``UNS|date`` for unscheduled visits (which may repeat)."""
    key = visit.astype(object)
    unscheduled = visit.astype("string").eq("UNS").fillna(False).to_numpy()
    dated = _dates(date).dt.strftime("%Y-%m-%d").astype(object)
    key = key.where(~unscheduled, "UNS|" + dated.fillna(""))
    return key


def derive_joint_counts(ja: pd.DataFrame, core: pd.DataFrame, *, study: Any) -> pd.DataFrame:
    """Joint counts per CORE record: ``AJC71``, ``AJC27``, ``LOMC``, ``TJC28``, ``SJC28``.

    From the abnormal joints listed in JA at the same SUBJID and VISIT (UNS visits also by date:
    JADAT = CSDAT). Active joint = SWOLLEN = Y or (LOM = Y and TENDER = Y); AJC71 / AJC27 among the
    study's ``joints.all`` / ``joints.jadas27``; LOMC = LOM = Y among all; TJC28 / SJC28 = TENDER /
    SWOLLEN = Y among ``joints.das28``. All NA (never zero) when ``JADONE`` is not Y. Returns the
    CORE frame with the five Int64 columns added.

    >>> from trialkit.study import load_study
    >>> core = pd.DataFrame({"SUBJID": ["01-001"], "VISIT": ["D1"], "CSDAT": pd.to_datetime(["2024-01-01"]),
    ...     "JADONE": ["Y"]})
    >>> ja = pd.DataFrame({"SUBJID": ["01-001"], "VISIT": ["D1"], "JADAT": pd.to_datetime(["2024-01-01"]),
    ...     "JOINT": ["KNEE_L"], "SWOLLEN": ["Y"], "TENDER": ["Y"], "LOM": ["N"]})
    >>> derive_joint_counts(ja, core, study=load_study())[["AJC71", "AJC27", "LOMC", "TJC28", "SJC28"]].iloc[0].tolist()
    [1, 1, 0, 1, 1]
    """
    all_joints = set(study.param("joints", "all") or ())
    jadas27 = set(study.param("joints", "jadas27") or ())
    das28 = set(study.param("joints", "das28") or ())

    joints = pd.DataFrame(
        {
            "SUBJID": ja["SUBJID"].astype(object).to_numpy(),
            "_KEY": _visit_key(ja["VISIT"], ja["JADAT"]).to_numpy(),
            "JOINT": ja["JOINT"].astype(object).to_numpy(),
            "SW": _is_y(ja["SWOLLEN"]).to_numpy(),
            "TE": _is_y(ja["TENDER"]).to_numpy(),
            "LO": _is_y(ja["LOM"]).to_numpy(),
        }
    ).drop_duplicates(["SUBJID", "_KEY", "JOINT"])
    joints["ACTIVE"] = joints["SW"] | (joints["LO"] & joints["TE"])
    joints["IN71"] = joints["JOINT"].isin(all_joints)
    joints["IN27"] = joints["JOINT"].isin(jadas27)
    joints["IN28"] = joints["JOINT"].isin(das28)
    joints["AJC71"] = joints["ACTIVE"] & joints["IN71"]
    joints["AJC27"] = joints["ACTIVE"] & joints["IN27"]
    joints["LOMC"] = joints["LO"] & joints["IN71"]
    joints["TJC28"] = joints["TE"] & joints["IN28"]
    joints["SJC28"] = joints["SW"] & joints["IN28"]
    names = ["AJC71", "AJC27", "LOMC", "TJC28", "SJC28"]
    totals = joints.groupby(["SUBJID", "_KEY"])[names].sum()

    out = core.copy()
    keys = pd.MultiIndex.from_arrays(
        [core["SUBJID"].astype(object).to_numpy(), _visit_key(core["VISIT"], core["CSDAT"]).to_numpy()]
    )
    done = _is_y(core["JADONE"]).to_numpy()
    for name in names:
        counts = totals[name].reindex(keys).fillna(0).to_numpy() if len(totals) else np.zeros(len(core))
        out[name] = pd.array(np.where(done, counts, np.nan), dtype="Float64").astype("Int64")
    return out


#: Output column of each CHAQ domain score (≤ 8 characters).
CHAQ_DOMAIN_COLUMNS = {
    domain: spec.items[0].rstrip("0123456789") + "SC" for domain, spec in scores.CHAQ_DOMAINS.items()
}


def derive_chaq_di(chaq: pd.DataFrame) -> pd.DataFrame:
    """CHAQ/HAQ disability index per record: 8 domain scores, ``CHAQNDOM`` and ``CHAQDI``.

    Domain score (``DRESSSC`` … ``ACTSC``, Int64) = :func:`trialkit.scores.chaq_domain_score` (the
    highest answered item, at least 2 with the aid-or-help flag). ``CHAQDI`` =
    :func:`trialkit.scores.chaq_di` (mean of answered domains when ≥ 6 of 8 answered), rounded to 3
    decimals, as float (NaN otherwise). ``CHAQNDOM`` = number of answered domains.

    >>> row = {f"{p}{i}": 1 for p, n in [("DRESS", 4), ("ARISE", 2), ("EAT", 3), ("WALK", 2),
    ...        ("HYG", 5), ("REACH", 4)] for i in range(1, n + 1)}
    >>> derive_chaq_di(pd.DataFrame([row]))[["CHAQNDOM", "CHAQDI"]].to_dict("records")
    [{'CHAQNDOM': 6, 'CHAQDI': 1.0}]
    """
    out = chaq.copy()
    domain_values: dict[str, list[Any]] = {d: [] for d in scores.CHAQ_DOMAINS}
    di_values: list[float] = []
    answered: list[int] = []
    for _, row in chaq.iterrows():
        domain_scores: dict[str, int | None] = {}
        for domain, spec in scores.CHAQ_DOMAINS.items():
            items = [row.get(item) for item in spec.items]
            aid = row.get(spec.aid_flag)
            aid = aid if isinstance(aid, str) and aid.strip().upper() in ("Y", "N") else None
            score = scores.chaq_domain_score(items, aid_or_help=aid)
            domain_scores[domain] = score
            domain_values[domain].append(pd.NA if score is None else score)
        di = scores.chaq_di(domain_scores)
        di_values.append(np.nan if di is None else float(di))
        answered.append(sum(s is not None for s in domain_scores.values()))
    for domain, column in CHAQ_DOMAIN_COLUMNS.items():
        out[column] = pd.array(domain_values[domain], dtype="Int64")
    out["CHAQNDOM"] = pd.array(answered, dtype="Int64")
    out["CHAQDI"] = di_values
    return out


# ------------------------------------------------------------------------------------------------
# Exposure and adverse events


def derive_exposure(
    ex: pd.DataFrame,
    *,
    limit_pct: Any = "20",
    part_a_last_day: int = 29,
    data_cut: Any = None,
) -> pd.DataFrame:
    """Exposure per EX dosing period: ``PLANNED``, ``MISSED``, ``PCTMISSED``, ``OVERLIMIT``, ``PART``.

    PLANNED = EXENDAT − EXSTDAT + 1 days (an open period ends at ``data_cut`` when given, else NA);
    MISSED = EXMISS; PCTMISSED = 100·MISSED/PLANNED (float); OVERLIMIT = MISSED/PLANNED >
    ``limit_pct`` % compared exactly (boolean; NA when unknown); PART = "A" when the period starts
    on or before study day ``part_a_last_day`` (29), else "B" (D1 from :func:`derive_first_dose`).

    >>> ex = pd.DataFrame({"SUBJID": ["01-001"] * 2,
    ...     "EXSTDAT": pd.to_datetime(["2024-01-01", "2024-01-31"]),
    ...     "EXENDAT": pd.to_datetime(["2024-01-30", "2024-03-10"]), "EXDOSE": [50.0, 50.0],
    ...     "EXMISS": pd.array([6, 9], dtype="Int64")})
    >>> derive_exposure(ex)[["PLANNED", "OVERLIMIT", "PART"]].values.tolist()
    [[30, False, 'A'], [40, True, 'B']]
    """
    out = ex.copy()
    start = _dates(ex["EXSTDAT"])
    end = _dates(ex["EXENDAT"])
    if data_cut is not None:
        end = end.fillna(pd.Timestamp(data_cut))
    planned = ((end - start).dt.days + 1).astype("Int64")
    missed = pd.to_numeric(ex["EXMISS"], errors="coerce").astype("Int64")
    out["PLANNED"] = planned
    out["MISSED"] = missed
    limit = exact(limit_pct)
    pct: list[float] = []
    over: list[bool | None] = []
    for days, miss in zip(planned, missed, strict=True):
        if pd.isna(days) or pd.isna(miss) or int(days) <= 0:
            pct.append(np.nan)
            over.append(None)
            continue
        ratio = Fraction(int(miss) * 100, int(days))
        pct.append(float(ratio))
        over.append(ratio > limit)
    out["PCTMISSED"] = pct
    out["OVERLIMIT"] = _bool_series(over, out.index)
    first = derive_first_dose(ex)
    day = compute_study_day(start, _dates(_subject_map(ex, first, "D1")))
    part = np.where(day.isna(), None, np.where(day.fillna(0) <= part_a_last_day, "A", "B"))
    out["PART"] = pd.Series(part, index=out.index, dtype=object)
    return out


def derive_teae(ae: pd.DataFrame, first_last: pd.DataFrame) -> pd.DataFrame:
    """Treatment-emergent flag, study day of onset and duration per AE.

    ``TRTEMFL`` = "Y" when AESTDAT ≥ first dose (D1), else NA (ADaM record-level flag; also NA for a
    subject never dosed); ``ASTDY`` = study day of AESTDAT; ``ADURN`` = AEENDAT − AESTDAT + 1 days
    (Int64; NA while ongoing or without an end).

    >>> fl = pd.DataFrame({"SUBJID": ["01-001"], "D1": pd.to_datetime(["2024-01-10"])})
    >>> ae = pd.DataFrame({"SUBJID": ["01-001"] * 2, "AESTDAT": pd.to_datetime(["2024-01-09", "2024-01-10"]),
    ...     "AEENDAT": pd.to_datetime(["2024-01-09", None])})
    >>> derive_teae(ae, fl)[["TRTEMFL", "ASTDY", "ADURN"]].values.tolist()
    [[<NA>, -1, 1], ['Y', 1, <NA>]]
    """
    anchors = _first_dose_dates(first_last)
    out = ae.copy()
    start = _dates(ae["AESTDAT"])
    end = _dates(ae["AEENDAT"]) if "AEENDAT" in ae else pd.Series(pd.NaT, index=ae.index)
    d1 = _dates(_subject_map(ae, anchors, "D1"))
    emergent = (start >= d1).fillna(False).to_numpy()
    out["TRTEMFL"] = pd.Series(np.where(emergent, "Y", None), index=out.index, dtype=object)
    out["TRTEMFL"] = out["TRTEMFL"].where(out["TRTEMFL"].notna(), pd.NA)
    out["ASTDY"] = compute_study_day(start, d1)
    out["ADURN"] = ((end - start).dt.days + 1).astype("Int64")
    return out
