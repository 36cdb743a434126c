"""ANK-SJIA-01's own derivations, built on the generic primitives of :mod:`trialkit.derive`.

What is this trial's (the 71-joint count and its subsets, the CHAQ disability index, the anakinra
dose window, the prednisone-equivalent dose, fever-free status from the diary) lives here, with the
trial's variable names; every clinical formula and threshold goes through :mod:`trialkit.scores` in
exact arithmetic. The analysis programs (``adsl.py``, ``adeff.py``, ``adae.py``), the deviation
rules and the demo share these functions.

Every function takes the study's typed parameters (``protocol`` = ``study.protocol``, see
``protocol.py``) where the protocol fixes a number.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd

from trialkit import derive, scores
from trialkit.derive.dates import as_dates, parse_partial_date
from trialkit.derive.util import bool_series, is_y
from trialkit.study import exact

__all__ = [
    "CHAQ_DOMAIN_COLUMNS",
    "STEROID_ROUTES",
    "derive_chaq_di",
    "derive_dose_window",
    "derive_fever_free",
    "derive_first_dose",
    "derive_joint_counts",
    "derive_mas",
    "derive_nsaid_active",
    "derive_prednisone_equivalent",
    "derive_treatment_dates",
    "derive_weight_on",
]

#: Routes counted in the prednisone-equivalent dose (DERIVATIONS "Corticosteroids").
STEROID_ROUTES = ("PO", "IV", "IM")
UNSCHEDULED_VISIT = "UNS"


def derive_first_dose(ex: pd.DataFrame) -> pd.DataFrame:
    """First and last dose of study drug from EX (:func:`trialkit.derive.derive_first_dose`)."""
    return derive.derive_first_dose(ex, start="EXSTDAT", end="EXENDAT", dose="EXDOSE")


def derive_treatment_dates(ex: pd.DataFrame, data_cut: Any = None) -> pd.DataFrame:
    """TRTSDT, TRTEDT (empty while a course is open at the data cut), TRTONGFL and TRTDURD from EX
    (:func:`trialkit.derive.derive_treatment_dates`; DERIVATIONS "First and last dose")."""
    return derive.derive_treatment_dates(ex, start="EXSTDAT", end="EXENDAT", dose="EXDOSE", data_cut=data_cut)


def derive_weight_on(vs: pd.DataFrame, frame: pd.DataFrame, date_col: str, *, out: str = "WEIGHT") -> pd.DataFrame:
    """The weight (kg) of the latest VS visit on or before ``frame[date_col]`` (NaN when none).

    >>> vs = pd.DataFrame({"SUBJID": ["01-001"] * 2, "VSDAT": pd.to_datetime(["2024-01-01", "2024-02-01"]),
    ...     "WEIGHT": [30.0, 32.0]})
    >>> ex = pd.DataFrame({"SUBJID": ["01-001"] * 2, "EXSTDAT": pd.to_datetime(["2024-01-15", "2024-02-01"])})
    >>> derive_weight_on(vs, ex, "EXSTDAT")["WEIGHT"].tolist()
    [30.0, 32.0]
    """
    return derive.derive_value_on(vs, frame, date_col=date_col, measured_on="VSDAT", value="WEIGHT", out=out)


def _exact_or_none(value: Any) -> Fraction | None:
    number = scores.to_decimal(value)
    return None if number is None else Fraction(number)


def derive_dose_window(ex: pd.DataFrame, vs: pd.DataFrame, *, protocol: Any) -> pd.DataFrame:
    """Per EX record: ``WEIGHT``, the protocol dose window ``DOSELO``–``DOSEHI`` and ``INWINDOW``.

    The weight is the latest on or before ``EXSTDAT``; the window is
    :func:`trialkit.scores.anakinra_dose_window` (fixed dose from ``protocol.dose.weight_threshold_kg``);
    ``INWINDOW`` = DOSELO ≤ EXDOSE ≤ DOSEHI compared exactly (boolean; NA when the weight or dose is
    missing). A zero-dose period is compared like any other: whether an interruption is a deviation
    is the caller's decision.
    """
    threshold = protocol.dose.weight_threshold_kg
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
    out["INWINDOW"] = bool_series(inside, out.index)
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
    protocol: Any,
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
    """
    factors = {str(k).upper(): exact(v) for k, v in protocol.prednisone_factors.items()}
    steroids = {str(d).upper() for d in protocol.drug_classes.glucocorticoids}
    frequency = {str(k).upper(): v for k, v in protocol.frequency_per_day.items()}
    allowed_routes = {r.upper() for r in routes}

    treatment = cm["CMTRT"].astype("string").str.strip().str.upper()
    route = cm["CMROUTE"].astype("string").str.strip().str.upper()
    keep = (treatment.isin(steroids) & route.isin(allowed_routes)).fillna(False).astype(bool)
    courses = cm[keep.to_numpy()].copy()
    courses["XTRT"] = treatment[keep.to_numpy()]
    courses["XSTART"] = derive.impute_partial_date(courses["CMSTDAT"], "start")["DT"]
    courses["XEND"] = derive.impute_partial_date(courses["CMENDAT"], "end")["DT"] if len(courses) else []
    courses["XONGO"] = is_y(courses["CMONGO"]) if "CMONGO" in courses else False
    start_parts = [parse_partial_date(v) for v in courses["CMSTDAT"]]
    courses["XFULLST"] = [p is not None and p[2] is not None for p in start_parts]

    out = derive_weight_on(vs, dates, "DATE", out="WEIGHT")
    # each subject's courses as plain rows, once (not a frame selection and itertuples per date)
    by_subject = {subject: list(group.itertuples(index=False)) for subject, group in courses.groupby("SUBJID")}
    mg_values: list[float] = []
    mgkg_values: list[float] = []
    for subject, day, weight in zip(out["SUBJID"], as_dates(out["DATE"]), out["WEIGHT"], strict=True):
        if pd.isna(day):
            mg_values.append(np.nan)
            mgkg_values.append(np.nan)
            continue
        total: Fraction | None = Fraction(0)
        weight_exact = _exact_or_none(weight)
        for row in by_subject.get(subject, ()):
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


def derive_fever_free(
    fever: pd.DataFrame,
    visits: pd.DataFrame,
    *,
    protocol: Any,
    date_col: str,
    places: int = 6,
) -> pd.DataFrame:
    """Fever-free status before each visit from the FEVER diary (DERIVATIONS "Adapted ACR Pedi").

    For each row of ``visits`` (SUBJID and the visit date ``date_col``): ``NDIARY`` = days of
    V−7..V−1 (``protocol.diary.days_before_visit``) with a recorded ``FVTEMP``; ``MAXTEMP`` = the
    highest of them (NaN when none); ``FEVFREE`` = :func:`trialkit.scores.fever_free`: False when any
    recorded temperature ≥ ``protocol.diary.fever_c``; True when at least ``min_recorded_days`` days
    are recorded, all below; else NA. FVTEMP is already in °C; it is rounded half-up to ``places``
    decimals before the exact comparison, so float noise from the °F conversion
    (37.99999999999999) cannot cross 38.0.
    """
    diary = protocol.diary
    window = derive.derive_daily_window(
        fever, visits, day_col="FVDAT", value="FVTEMP", anchor_date=date_col, days=diary.days_before_visit,
        count_out="NDIARY", max_out="_MAX", values_out="_TEMPS",
    )
    maxima: list[float] = []
    status: list[bool | None] = []
    for temps in window["_TEMPS"]:
        if temps is None:
            maxima.append(np.nan)
            status.append(None)
            continue
        rounded = [None if t is None else scores.round_half_up(t, places) for t in temps]
        recorded = [t for t in rounded if t is not None]
        maxima.append(float(max(recorded)) if recorded else np.nan)
        status.append(scores.fever_free(rounded, window_days=diary.days_before_visit,
                                        min_recorded_days=diary.min_recorded_days, fever_c=diary.fever_c))
    out = window.drop(columns=["_MAX", "_TEMPS"])
    out["MAXTEMP"] = maxima
    out["FEVFREE"] = bool_series(status, out.index)
    return out


def _visit_key(visit: pd.Series, date: pd.Series) -> pd.Series:
    """VISIT, or ``UNS|date`` for unscheduled visits (which may repeat)."""
    key = visit.astype(object)
    unscheduled = visit.astype("string").eq(UNSCHEDULED_VISIT).fillna(False).to_numpy()
    dated = as_dates(date).dt.strftime("%Y-%m-%d").astype(object)
    return key.where(~unscheduled, "UNS|" + dated.fillna(""))


def derive_joint_counts(ja: pd.DataFrame, core: pd.DataFrame, *, protocol: Any) -> pd.DataFrame:
    """Joint counts per CORE record: ``AJC71``, ``AJC27``, ``LOMC``, ``TJC28``, ``SJC28``.

    From the abnormal joints listed in JA at the same SUBJID and VISIT (UNS visits also by date:
    JADAT = CSDAT). Active joint = SWOLLEN = Y or (LOM = Y and TENDER = Y); AJC71 / AJC27 among the
    71 joints / ``protocol.joints.jadas27``; LOMC = LOM = Y among all; TJC28 / SJC28 = TENDER /
    SWOLLEN = Y among ``protocol.joints.das28``. All NA (never zero) when ``JADONE`` is not Y.
    Returns the CORE frame with the five Int64 columns added.
    """
    all_joints = set(protocol.joints.all)
    jadas27 = set(protocol.joints.jadas27)
    das28 = set(protocol.joints.das28)

    joints = pd.DataFrame(
        {
            "SUBJID": ja["SUBJID"].astype(object).to_numpy(),
            "_KEY": _visit_key(ja["VISIT"], ja["JADAT"]).to_numpy(),
            "JOINT": ja["JOINT"].astype(object).to_numpy(),
            "SW": is_y(ja["SWOLLEN"]).to_numpy(),
            "TE": is_y(ja["TENDER"]).to_numpy(),
            "LO": is_y(ja["LOM"]).to_numpy(),
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
    done = is_y(core["JADONE"]).to_numpy()
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


def derive_nsaid_active(
    cm: pd.DataFrame,
    periods: pd.DataFrame,
    *,
    protocol: Any,
    data_cut: Any = None,
    start: str = "FROM",
    end: str = "TO",
) -> pd.DataFrame:
    """Whether an NSAID course is active on any day of each period: ``NSAIDACT`` (boolean).

    ``periods`` has ``SUBJID`` and the first and last day (``start``, ``end``; one day: both the
    same). NSAID courses are CM records whose CMTRT is in ``protocol.drug_classes.nsaids``; a course
    runs from CMSTDAT (a partial date from the 1st of its month, or 1 January) to CMENDAT (a partial
    date to the last day of its month, or 31 December); an open course (``CMONGO = Y``, or no end)
    runs to ``data_cut`` (without one: indefinitely). A course without a readable start is not
    placed. NA when the period has no date.

    >>> cm = pd.DataFrame({"SUBJID": ["S1", "S1"], "CMTRT": ["NAPROXEN", "PREDNISONE"],
    ...     "CMSTDAT": ["2024-01", "2024-01-01"], "CMENDAT": ["2024-03", None], "CMONGO": ["N", "Y"]})
    >>> periods = pd.DataFrame({"SUBJID": ["S1", "S1"], "FROM": pd.to_datetime(["2024-03-25", "2024-04-01"]),
    ...     "TO": pd.to_datetime(["2024-04-01", "2024-04-08"])})
    >>> from types import SimpleNamespace
    >>> protocol = SimpleNamespace(drug_classes=SimpleNamespace(nsaids=["NAPROXEN"]))
    >>> derive_nsaid_active(cm, periods, protocol=protocol)["NSAIDACT"].tolist()
    [True, False]
    """
    nsaids = {str(d).upper() for d in protocol.drug_classes.nsaids}
    treatment = cm["CMTRT"].astype("string").str.strip().str.upper()
    courses = cm[treatment.isin(nsaids).fillna(False).to_numpy()].copy()
    courses["XSTART"] = derive.impute_partial_date(courses["CMSTDAT"].astype(object), "start")["DT"]
    courses["XEND"] = derive.impute_partial_date(courses["CMENDAT"].astype(object), "end")["DT"]
    cut = None if data_cut is None else pd.Timestamp(data_cut)
    open_course = is_y(courses["CMONGO"]) | courses["XEND"].isna()
    if cut is not None:
        courses["XEND"] = courses["XEND"].where(~open_course, cut)
    else:
        courses["XEND"] = courses["XEND"].where(~open_course, pd.Timestamp.max.normalize())
    courses = courses[courses["XSTART"].notna().to_numpy()]
    by_subject = {subject: list(zip(group["XSTART"], group["XEND"], strict=True))
                  for subject, group in courses.groupby("SUBJID")}
    active: list[bool | None] = []
    for subject, first, last in zip(periods["SUBJID"], as_dates(periods[start]), as_dates(periods[end]), strict=True):
        if pd.isna(first) or pd.isna(last):
            active.append(None)
            continue
        active.append(any(s <= last and e >= first for s, e in by_subject.get(subject, [])))
    out = periods.copy()
    out["NSAIDACT"] = bool_series(active, out.index)
    return out


#: The laboratory tests of the MAS 2016 classification, by their role in :func:`trialkit.scores.mas_2016`.
MAS_TESTS = {"ferritin": "FERRITIN", "platelets": "PLAT", "ast": "AST", "triglycerides": "TRIG",
             "fibrinogen": "FIBRINO"}


def derive_mas(
    lb: pd.DataFrame,
    core: pd.DataFrame,
    fever: pd.DataFrame,
    *,
    protocol: Any,
    visits: Iterable[str],
) -> pd.DataFrame:
    """MAS at a visit (DERIVATIONS "Exposure, safety and other secondary endpoints"): one row per
    subject and visit of ``visits`` with a ferritin, platelet, AST, triglyceride or fibrinogen result.

    Columns ``SUBJID``, ``VISIT``, ``LBDAT`` (the sample date: the ferritin's, else the visit's
    earliest MAS sample), ``FEBRILE`` and ``MAS`` (boolean; NA when undetermined). Only results of
    the sample date count ("all from the same sample date"). Febrile: CORE ``FEVER = Y`` at the
    visit, or a diary temperature ≥ ``protocol.diary.fever_c`` within
    ``protocol.analysis.febrile_window_days`` days of the sample → true; CORE ``FEVER = N``, or
    every day of that window recorded below the threshold → false; otherwise unknown. MAS =
    :func:`trialkit.scores.mas_2016` (undetermined when a needed result is missing).
    """
    window = protocol.analysis.febrile_window_days
    threshold = scores.to_decimal(protocol.diary.fever_c)
    wanted = set(visits)
    tests = lb[lb["LBTESTCD"].isin(MAS_TESTS.values()).fillna(False).to_numpy()
               & lb["VISIT"].isin(wanted).fillna(False).to_numpy()].copy()
    tests["LBSTRESN"] = pd.to_numeric(tests["LBSTRESN"], errors="coerce")
    tests = tests[tests["LBSTRESN"].notna().to_numpy() & tests["LBDAT"].notna().to_numpy()]
    columns = ["SUBJID", "VISIT", "LBDAT", "FEBRILE", "MAS"]
    if tests.empty:
        return pd.DataFrame({c: pd.Series(dtype="boolean" if c in ("FEBRILE", "MAS") else object) for c in columns})
    core_fever = {(s, v): f for s, v, f in zip(core["SUBJID"], core["VISIT"], core["FEVER"], strict=True)}
    diary = pd.DataFrame({"SUBJID": fever["SUBJID"].to_numpy(), "DAY": as_dates(fever["FVDAT"]).to_numpy(),
                          "T": pd.to_numeric(fever["FVTEMP"], errors="coerce").to_numpy()}).dropna()
    diary_by_subject = {s: g.groupby("DAY")["T"].max().to_dict() for s, g in diary.groupby("SUBJID")}
    # One pass over plain values, grouped by (subject, visit) in sorted order with the rows of a
    # group in their order (as groupby gives them); a pandas selection per group cost ~10 ms each.
    groups: dict[tuple[Any, Any], list[int]] = {}
    subjects, visit_codes = list(tests["SUBJID"]), list(tests["VISIT"])
    codes, sample_dates = list(tests["LBTESTCD"]), list(tests["LBDAT"])
    results = tests["LBSTRESN"].to_numpy()
    for row, (subject, visit) in enumerate(zip(subjects, visit_codes, strict=True)):
        if not pd.isna(subject):
            groups.setdefault((subject, visit), []).append(row)
    rows = []
    for (subject, visit), members in sorted(groups.items(), key=lambda item: item[0]):
        ferritin = [r for r in members if codes[r] == MAS_TESTS["ferritin"]]
        sample = min(sample_dates[r] for r in (ferritin or members))
        same = [r for r in members if sample_dates[r] == sample]
        values = {role: next((results[r] for r in same if codes[r] == code), None)
                  for role, code in MAS_TESTS.items()}
        flag = core_fever.get((subject, visit))
        flag = str(flag).strip().upper() if isinstance(flag, str) else None
        days = [sample + pd.Timedelta(days=k) for k in range(-window, window + 1)]
        temps = diary_by_subject.get(subject)
        recorded = [] if temps is None else [temps[d] for d in days if d in temps]
        hot = any(scores.round_half_up(t, 6) >= threshold for t in recorded)
        if flag == "Y" or hot:
            febrile: bool | None = True
        elif flag == "N" or len(recorded) == len(days):
            febrile = False
        else:
            febrile = None
        rows.append({"SUBJID": subject, "VISIT": visit, "LBDAT": sample, "FEBRILE": febrile,
                     "MAS": scores.mas_2016(febrile, **values)})
    out = pd.DataFrame(rows, columns=columns)
    out["FEBRILE"] = out["FEBRILE"].astype("boolean")
    out["MAS"] = out["MAS"].astype("boolean")
    return out
