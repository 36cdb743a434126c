"""ANK-SJIA-01 protocol deviations PD-01 ... PD-14 (synopsis, "Protocol deviations"; PD-14 from Amendment 1).

Each rule is a function decorated with :func:`trialkit.rules.rule`; ``RULES`` lists them in code
order. A rule returns one row per deviation, pointing at the record the site must look at
(``_form``, ``_index``, ``_variable``) and carrying the evidence — the dates, values and the window or
limit that was broken — as upper-case columns that the message template names.

Class and severity: a **major** deviation is reported with severity ``error``, a **minor** one with
``warning``. PD-06 (minor, major when the dosing period is in Part A) and PD-07 (minor, major for W4)
set ``_class`` and ``_severity`` per row.

Conventions shared by every rule (the synopsis leaves these open; each is stated where it is used):

- **Day 1** is the first dose (``derivations.derive_first_dose``); a subject with no study drug
  record falls back to the randomization date, since randomization happens at the D1 visit.
- **Data cut**: the date the data manager gives, else the latest date the upload contains (synopsis,
  Visits). A visit counts as due only when its window has closed by the data cut.
- **Part A** is study days 1..29 (``[protocol.parts]`` in study.toml).
- **Partial dates** are imputed the DERIVATIONS way (start: first of the month, end: last day of the
  month, ``trialkit.derive.impute_partial_date``), never edited.
- Thresholds are compared exactly (``decimal.Decimal``), never on floats.

The generic primitives come from :mod:`trialkit.derive`; this trial's own derivations (dose window,
prednisone equivalent, CHAQ index, fever-free status) from this folder's ``analysis/derivations.py``,
which the analysis programs use too. A rule that raises is recorded as an error, never as a pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from trialkit import derive
from trialkit.rules import RuleCannotRun, RuleContext, rule
from trialkit.scores import to_decimal

from .analysis import derivations

MAJOR = "error"  # severity of a major deviation
MINOR = "warning"  # severity of a minor deviation
CATEGORY = "deviation"

# CRF dates that show a study procedure took place (PD-03): form -> date variable.
PROCEDURE_DATES = {
    "VS": "VSDAT",
    "CORE": "CSDAT",
    "JA": "JADAT",
    "CHAQ": "QSDAT",
    "LB": "LBDAT",
    "RAND": "RANDDAT",
    "EX": "EXSTDAT",
}
# PT reasons that mean the drug *failed* (IN04, IN05): inefficacy or intolerance; an adverse event
# is a form of intolerance. OTHER (and an ongoing course) is not a failure.
FAILURE_REASONS = ("INEFFICACY", "INTOLERANCE", "ADVERSE EVENT")
# CHAQ domains and their items (DERIVATIONS, CHAQ / HAQ disability index).
CHAQ_DOMAINS = {
    "dressing": ("DRESS", 4, "DRESSAH"),
    "arising": ("ARISE", 2, "ARISEAH"),
    "eating": ("EAT", 3, "EATAH"),
    "walking": ("WALK", 2, "WALKAH"),
    "hygiene": ("HYG", 5, "HYGAH"),
    "reach": ("REACH", 4, "REACHAH"),
    "grip": ("GRIP", 5, "GRIPAH"),
    "activities": ("ACT", 5, "ACTAH"),
}


# ------------------------------------------------------------------------------------------------
# Shared helpers


def _findings(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """The rule's result frame from row dicts (an empty frame with SUBJID when there are none)."""
    rows = list(rows)
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=["SUBJID"])


def _dates(frame: pd.DataFrame, column: str) -> pd.Series:
    """A date column as datetime64 (a form that was not uploaded has an untyped empty column)."""
    return pd.to_datetime(frame[column], errors="coerce")


def _iso(value: Any) -> str | None:
    """A date as ``YYYY-MM-DD`` for the evidence (None when missing)."""
    return None if value is None or pd.isna(value) else pd.Timestamp(value).date().isoformat()


def _missing(value: Any) -> bool:
    try:
        return value is None or bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _text(value: Any) -> str:
    return "" if _missing(value) else str(value)


def _data_cut(ctx: RuleContext) -> pd.Timestamp | None:
    """The data cut: as stated, else the latest date the upload contains (synopsis, Visits)."""

    def compute() -> pd.Timestamp | None:
        if ctx.data_cut is not None:
            return pd.Timestamp(ctx.data_cut)
        latest = None
        for frame in ctx.forms.values():
            for column in frame.columns:
                if pd.api.types.is_datetime64_any_dtype(frame[column]) and frame[column].notna().any():
                    value = frame[column].max()
                    latest = value if latest is None or value > latest else latest
        return None if latest is None else pd.Timestamp(latest)

    return ctx.memo("deviations:data_cut", compute)


def _first_dose(ctx: RuleContext) -> pd.DataFrame:
    """``derive_first_dose`` of the EX form, indexed by SUBJID (TRTSDT, TRTEDT, D1)."""

    def compute() -> pd.DataFrame:
        ex = ctx.form("EX")
        if not ctx.has("EX") or ex.empty:
            return pd.DataFrame(columns=["TRTSDT", "TRTEDT", "D1"], index=pd.Index([], name="SUBJID"))
        first = derivations.derive_first_dose(ex)
        if "SUBJID" in first.columns:
            first = first.set_index("SUBJID")
        return first

    return ctx.memo("deviations:first_dose", compute)


def _day1(ctx: RuleContext) -> dict[str, pd.Timestamp]:
    """Day 1 per subject: the first dose, else (no study drug record) the randomization date."""

    def compute() -> dict[str, pd.Timestamp]:
        day1: dict[str, pd.Timestamp] = {}
        if ctx.has("RAND"):
            rand = ctx.form("RAND")
            for subject, date in zip(rand["SUBJID"], _dates(rand, "RANDDAT"), strict=True):
                if not _missing(date) and not _missing(subject):
                    day1.setdefault(subject, pd.Timestamp(date))
        for subject, date in _first_dose(ctx)["D1"].items():
            if not _missing(date):
                day1[subject] = pd.Timestamp(date)
        return day1

    return ctx.memo("deviations:day1", compute)


def _study_day(date: pd.Timestamp, day1: pd.Timestamp) -> int:
    """Study day of a date (no day 0), as in DERIVATIONS "Dates"."""
    delta = (pd.Timestamp(date) - pd.Timestamp(day1)).days
    return delta + 1 if delta >= 0 else delta


def _date_of_day(day1: pd.Timestamp, study_day: int) -> pd.Timestamp:
    """The calendar date of a study day (inverse of :func:`_study_day`)."""
    return pd.Timestamp(day1) + pd.Timedelta(days=study_day - 1 if study_day > 0 else study_day)


def _part_a(ctx: RuleContext) -> tuple[int, int]:
    """First and last study day of Part A (study.toml ``[parts]``)."""
    part = ctx.study.protocol.part_a
    return part.first_day, part.last_day


def _imputed(values: pd.Series, kind: str) -> pd.Series:
    """Partial dates imputed (``kind`` = ``start`` or ``end``) as datetime64, aligned to ``values``."""
    if len(values) == 0:
        return pd.Series([], index=values.index, dtype="datetime64[us]")
    result = derive.impute_partial_date(values, kind)
    series = result["DT"] if isinstance(result, pd.DataFrame) else result
    return pd.to_datetime(pd.Series(list(series), index=values.index), errors="coerce")


def _discontinued(ctx: RuleContext) -> dict[str, pd.Timestamp]:
    """Disposition date per subject (DS), when the DS form was uploaded."""
    if not ctx.has("DS"):
        return {}
    ds = ctx.form("DS")
    out: dict[str, pd.Timestamp] = {}
    for subject, date in zip(ds["SUBJID"], _dates(ds, "DSSTDAT"), strict=True):
        if not _missing(date):
            out[subject] = min(out.get(subject, pd.Timestamp(date)), pd.Timestamp(date))
    return out


def _decode(ctx: RuleContext, codelist: str, code: str) -> str:
    found = ctx.study.codelists.get(codelist)
    return (found.decode(code) if found is not None else None) or code


# ------------------------------------------------------------------------------------------------
# PD-01


@rule(
    "PD-01",
    "Randomized although not eligible on the IE form",
    severity=MAJOR,
    category=CATEGORY,
    reference="Synopsis, Protocol deviations PD-01; Population and eligibility IN01-IN07, EX01-EX08",
    forms=["IE", "RAND"],
    message=(
        "randomized on {RANDDAT} although {IETESTCD} ({CRITERION}) is {IEORRES} on the IE form: "
        "{MEANING}; a randomized subject must meet every inclusion and no exclusion criterion"
    ),
    deviation_class="major",
)
def pd01_randomized_not_eligible(ctx: RuleContext) -> pd.DataFrame:
    """One finding per IE criterion that makes a randomized subject ineligible (IN = N, EX = Y).

    A missing IE answer is a required-field finding, not a deviation.
    """
    ie, rand = ctx.form("IE"), ctx.form("RAND")
    randdat = _dates(rand, "RANDDAT").groupby(rand["SUBJID"]).min()
    code = ie["IETESTCD"].fillna("").astype(str)
    answer = ie["IEORRES"]
    not_met = code.str.startswith("IN") & answer.eq("N")
    present = code.str.startswith("EX") & answer.eq("Y")
    hits = ie[(not_met | present) & ie["SUBJID"].isin(randdat.index)]
    return _findings(
        {
            "SUBJID": row.SUBJID,
            "_form": "IE",
            "_index": index,
            "_variable": "IEORRES",
            "IETESTCD": row.IETESTCD,
            "IEORRES": row.IEORRES,
            "CRITERION": _decode(ctx, "IETESTCD", row.IETESTCD),
            "MEANING": "inclusion criterion not met"
            if str(row.IETESTCD).startswith("IN")
            else "exclusion criterion present",
            "RANDDAT": _iso(randdat.get(row.SUBJID)),
        }
        for index, row in hits.iterrows()
    )


# ------------------------------------------------------------------------------------------------
# PD-02


def _ie_answers(ie: pd.DataFrame) -> dict[tuple[str, str], tuple[Any, str | None]]:
    """(SUBJID, IETESTCD) -> (IE record index, IEORRES)."""
    return {
        (row.SUBJID, row.IETESTCD): (index, None if _missing(row.IEORRES) else row.IEORRES)
        for index, row in ie.iterrows()
    }


@rule(
    "PD-02",
    "IE form says eligible but the data say otherwise",
    severity=MAJOR,
    category=CATEGORY,
    reference=(
        "Synopsis, Protocol deviations PD-02; Population and eligibility IN02-IN05, EX01, EX02; "
        "DERIVATIONS Dates"
    ),
    forms=["IE", "DM", "MH", "PT"],
    optional_forms=["EX", "RAND"],
    message="the IE form records {IETESTCD} as {IEORRES} but {FOUND} ({LIMIT})",
    deviation_class="major",
)
def pd02_eligibility_contradicted(ctx: RuleContext) -> pd.DataFrame:
    """Eligibility the IE form affirms (IN = Y, EX = N, or not answered) that the data contradict.

    Checked for every subject with a day 1 (dosed or randomized). A criterion the IE form already
    records as failed is PD-01, not PD-02.

    - IN02: age at day 1 < 2 years (``compute_age_at``, birth on the 15th) — on DM ``BRTHYM``.
    - IN03: disease duration at day 1 < 6 complete months (``compute_duration_months``, onset on the
      15th) — on MH ``ONSETYM``.
    - IN04 / IN05: no PT course of a conventional DMARD (methotrexate included) / a TNF inhibitor
      stopped for INEFFICACY, INTOLERANCE or ADVERSE EVENT (an adverse event counts as intolerance;
      an ongoing course or OTHER is not a failure) — on the IE record of the criterion.
    - EX01: any IL-1 blocker in PT — on that PT record's ``PTTRT``.
    - EX02: a biologic with a washout (``[washout_weeks]``) ongoing at day 1, or stopped fewer than
      7 × weeks days before day 1. A partial stop date takes its *latest* possible day (end of the
      month or year), so the deviation is reported only when certain — on ``PTENDAT``.
    """
    day1 = _day1(ctx)
    answers = _ie_answers(ctx.form("IE"))
    rows: list[dict[str, Any]] = []

    def affirmed(subject: str, code: str) -> tuple[bool, Any, str]:
        index, answer = answers.get((subject, code), (None, None))
        expected = "Y" if code.startswith("IN") else "N"
        return answer in (expected, None), index, answer or "not answered"

    def add(subject: str, code: str, form: str, index: Any, variable: str, found: str, limit: str,
            **evidence: Any) -> None:
        ok, ie_index, answer = affirmed(subject, code)
        if not ok:
            return
        if form == "IE":
            index = ie_index
        rows.append({"SUBJID": subject, "_form": form, "_index": index, "_variable": variable,
                     "IETESTCD": code, "IEORRES": answer, "FOUND": found, "LIMIT": limit,
                     "D1": _iso(day1[subject]), **evidence})

    # IN02: age at day 1
    dm = ctx.form("DM")
    dm = dm[dm["SUBJID"].isin(day1)]
    if len(dm):
        on = dm["SUBJID"].map(day1)
        ages = derive.compute_age_at(dm["BRTHYM"], on)
        for (index, row), age in zip(dm.iterrows(), ages, strict=True):
            if not _missing(age) and int(age) < 2:
                add(row.SUBJID, "IN02", "DM", index, "BRTHYM",
                    f"age at day 1 ({_iso(day1[row.SUBJID])}) is {int(age)} years from BRTHYM {row.BRTHYM}",
                    "IN02 needs age >= 2 years at day 1", AGE=int(age), BRTHYM=row.BRTHYM)

    # IN03: disease duration at day 1
    mh = ctx.form("MH")
    mh = mh[mh["SUBJID"].isin(day1)]
    if len(mh):
        on = mh["SUBJID"].map(day1)
        months = derive.compute_duration_months(mh["ONSETYM"], on)
        for (index, row), duration in zip(mh.iterrows(), months, strict=True):
            if not _missing(duration) and int(duration) < 6:
                add(row.SUBJID, "IN03", "MH", index, "ONSETYM",
                    f"disease duration at day 1 ({_iso(day1[row.SUBJID])}) is {int(duration)} complete "
                    f"months from ONSETYM {row.ONSETYM} (onset taken on the 15th)",
                    "IN03 needs a disease duration >= 6 months at day 1",
                    MONTHS=int(duration), ONSETYM=row.ONSETYM)

    # IN04, IN05, EX01, EX02: prior therapy
    pt = ctx.form("PT")
    classes = ctx.study.protocol.drug_classes
    dmards = set(classes.conventional_dmards) | set(classes.methotrexate)
    tnf = set(classes.tnf_inhibitors)
    il1 = set(classes.il1_blockers)
    washout = dict(ctx.study.protocol.washout_weeks)
    failed = pt[pt["PTREAS"].isin(FAILURE_REASONS)]
    in_forms = set(dm["SUBJID"].dropna()) | set(mh["SUBJID"].dropna())
    failed_on = {code: set(failed.loc[failed["PTTRT"].isin(drugs).fillna(False).astype(bool), "SUBJID"].dropna())
                 for code, drugs in (("IN04", dmards), ("IN05", tnf))}
    for subject in sorted(day1):
        if subject not in in_forms:
            continue  # not a subject of this upload's DM/MH: the cross-form checks report that
        for code, label in (("IN04", "conventional DMARD (methotrexate included)"), ("IN05", "TNF inhibitor")):
            if subject not in failed_on[code]:
                add(subject, code, "IE", None, "IEORRES",
                    f"PT has no {label} stopped for {', '.join(FAILURE_REASONS)}",
                    f"{code} needs failure (inefficacy or intolerance) of >= 1 {label}")
    mine = pt[pt["SUBJID"].isin(day1)]
    for index, row in mine[mine["PTTRT"].isin(il1)].iterrows():
        add(row.SUBJID, "EX01", "PT", index, "PTTRT", f"PT records {row.PTTRT} from {_text(row.PTSTDAT)}",
            "EX01: no earlier IL-1 blockade (anakinra, canakinumab, rilonacept)", PTTRT=row.PTTRT)
    biologics = mine[mine["PTTRT"].isin(washout)]
    if len(biologics):
        latest_end = _imputed(biologics["PTENDAT"], "end")
        for (index, row), end in zip(biologics.iterrows(), latest_end, strict=True):
            weeks = washout[row.PTTRT]
            start = day1[row.SUBJID]
            if row.PTONGO == "Y":
                found, days = f"{row.PTTRT} was ongoing at day 1 ({_iso(start)})", None
            elif _missing(end):
                continue
            elif (start - end).days < 7 * weeks:
                days = (start - end).days
                found = (f"{row.PTTRT} stopped {_text(row.PTENDAT)} (latest possible {_iso(end)}), "
                         f"{days} days before day 1 ({_iso(start)})")
            else:
                continue
            add(row.SUBJID, "EX02", "PT", index, "PTENDAT" if row.PTONGO != "Y" else "PTONGO", found,
                f"EX02: washout of {weeks} weeks ({7 * weeks} days) before day 1",
                PTTRT=row.PTTRT, WASHOUT=f"{weeks} weeks", DAYS=days)
    return _findings(rows)


# ------------------------------------------------------------------------------------------------
# PD-03


@rule(
    "PD-03",
    "Study procedure before informed consent",
    severity=MAJOR,
    category=CATEGORY,
    reference="Synopsis, Protocol deviations PD-03; DM ICDAT",
    forms=["DM"],
    optional_forms=list(PROCEDURE_DATES),
    message="{PROCEDURE} on {PROCDAT} is {DAYS} day(s) before informed consent ({ICDAT})",
    deviation_class="major",
)
def pd03_before_consent(ctx: RuleContext) -> pd.DataFrame:
    """Every visit (VS, CORE, JA, CHAQ), sample (LB), randomization and dosing period start dated
    before ``ICDAT``. One finding per visit record — JA and LB once per subject, visit and date, not
    once per joint or test. (The fever diary is not a site procedure and is not checked.)
    """
    dm = ctx.form("DM")
    consent = _dates(dm, "ICDAT").groupby(dm["SUBJID"]).min().dropna()
    if consent.empty:  # the REQUIRED check names each empty ICDAT; there is nothing to compare with
        raise RuleCannotRun("no informed-consent date (ICDAT) in DM")
    rows = []
    for form, column in PROCEDURE_DATES.items():
        if not ctx.has(form):
            continue
        frame = ctx.form(form)
        dates = _dates(frame, column)
        icdat = frame["SUBJID"].map(consent)
        early = frame[dates.lt(icdat).fillna(False).astype(bool)]
        if form in ("JA", "LB"):
            early = early.loc[~early.duplicated(["SUBJID", "VISIT", column])]
        for index, row in early.iterrows():
            rows.append({
                "SUBJID": row.SUBJID,
                "_form": form,
                "_index": index,
                "_variable": column,
                "VISIT": row.get("VISIT"),
                "PROCEDURE": f"{form} {row.get('VISIT')}" if "VISIT" in frame.columns else form,
                "PROCDAT": _iso(dates[index]),
                "ICDAT": _iso(consent[row.SUBJID]),
                "DAYS": (consent[row.SUBJID] - dates[index]).days,
            })
    return _findings(rows)


# ------------------------------------------------------------------------------------------------
# PD-04


@rule(
    "PD-04",
    "Study drug before randomization or without randomization",
    severity=MAJOR,
    category=CATEGORY,
    reference="Synopsis, Protocol deviations PD-04; RAND, EX",
    forms=["EX", "RAND"],
    message="study drug from {EXSTDAT}: {PROBLEM}",
    deviation_class="major",
)
def pd04_drug_before_randomization(ctx: RuleContext) -> pd.DataFrame:
    """EX periods with drug given (EXDOSE > 0, or dose not recorded) that start before RANDDAT, or
    belong to a subject with no RAND record. One finding per EX record.
    """
    ex, rand = ctx.form("EX"), ctx.form("RAND")
    randdat = _dates(rand, "RANDDAT").groupby(rand["SUBJID"]).min()
    given = ex["EXDOSE"].isna() | ex["EXDOSE"].gt(0)
    start = _dates(ex, "EXSTDAT")
    rows = []
    for index, row in ex[given.fillna(True).astype(bool)].iterrows():
        if row.SUBJID not in randdat.index:
            problem, variable = "the subject was never randomized (no RAND record)", "SUBJID"
        elif not _missing(start[index]) and not _missing(randdat[row.SUBJID]) and start[index] < randdat[row.SUBJID]:
            days = (randdat[row.SUBJID] - start[index]).days
            problem, variable = f"{days} day(s) before randomization on {_iso(randdat[row.SUBJID])}", "EXSTDAT"
        else:
            continue
        rows.append({"SUBJID": row.SUBJID, "_form": "EX", "_index": index, "_variable": variable,
                     "EXSTDAT": _iso(start[index]), "RANDDAT": _iso(randdat.get(row.SUBJID)),
                     "PROBLEM": problem})
    return _findings(rows)


# ------------------------------------------------------------------------------------------------
# PD-05


@rule(
    "PD-05",
    "Daily dose outside the protocol range for the weight",
    severity=MAJOR,
    category=CATEGORY,
    reference="Synopsis, Protocol deviations PD-05; Treatment (anakinra); DERIVATIONS Anakinra dose window",
    forms=["EX", "VS"],
    message=(
        "daily dose {EXDOSE} mg from {EXSTDAT} is outside {DOSELO}-{DOSEHI} mg, the protocol range "
        "for {WEIGHT} kg (latest weight on or before the period start)"
    ),
    deviation_class="major",
)
def pd05_dose_outside_window(ctx: RuleContext) -> pd.DataFrame:
    """EX periods whose EXDOSE lies outside the window for the weight at the latest visit on or
    before the period start (``derive_dose_window``). A period with no weight cannot be judged and is
    not reported here.
    """
    ex = ctx.form("EX")
    window = derivations.derive_dose_window(ex, ctx.form("VS"), protocol=ctx.study.protocol)
    window = window.reindex(ex.index) if not window.index.equals(ex.index) else window
    outside = window["INWINDOW"].eq(False).fillna(False).astype(bool)
    rows = []
    for index in ex.index[outside.to_numpy()]:
        record = ex.loc[index]
        rows.append({
            "SUBJID": record["SUBJID"], "_form": "EX", "_index": index, "_variable": "EXDOSE",
            "EXSTDAT": _iso(record["EXSTDAT"]), "EXDOSE": record["EXDOSE"],
            "WEIGHT": window.at[index, "WEIGHT"], "DOSELO": window.at[index, "DOSELO"],
            "DOSEHI": window.at[index, "DOSEHI"],
        })
    return _findings(rows)


# ------------------------------------------------------------------------------------------------
# PD-06


@rule(
    "PD-06",
    "More than 20 % of planned doses missed in a dosing period",
    severity=MINOR,
    category=CATEGORY,
    reference="Synopsis, Protocol deviations PD-06; Treatment (missed doses)",
    forms=["EX"],
    message=(
        "{MISSED} of {PLANNED} planned daily doses missed ({PCTMISSED} %) in the period from "
        "{EXSTDAT} ({PART}); the limit is {LIMIT} %"
    ),
    deviation_class="minor",
)
def pd06_missed_doses(ctx: RuleContext) -> pd.DataFrame:
    """EX periods over the missed-dose limit (``derive_exposure``: EXMISS / planned days > 20 %,
    exactly; exactly 20 % is within the limit): minor, major when the period starts in Part A. An
    open period counts its planned days up to the data cut.
    """
    ex = ctx.form("EX")
    limit = ctx.study.protocol.dose.missed_dose_limit_pct
    exposure = derive.derive_exposure(
        ex, _first_dose(ctx).reset_index(), start="EXSTDAT", end="EXENDAT", missed="EXMISS",
        limit_pct=limit, data_cut=_data_cut(ctx),
    )
    part_a_last = _part_a(ctx)[1]
    rows = []
    over = exposure["OVERLIMIT"].eq(True).fillna(False).astype(bool)
    for index in ex.index[over.to_numpy()]:
        day = exposure.at[index, "ASTDY"]
        part = "" if _missing(day) else ("A" if int(day) <= part_a_last else "B")
        in_a = part == "A"
        rows.append({
            "SUBJID": ex.at[index, "SUBJID"], "_form": "EX", "_index": index, "_variable": "EXMISS",
            "_class": "major" if in_a else "minor", "_severity": MAJOR if in_a else MINOR,
            "EXSTDAT": _iso(ex.at[index, "EXSTDAT"]), "PLANNED": exposure.at[index, "PLANNED"],
            "MISSED": exposure.at[index, "MISSED"], "PCTMISSED": exposure.at[index, "PCTMISSED"],
            "PART": f"Part {part}" if part else "part unknown",
            "LIMIT": limit,
        })
    return _findings(rows)


# ------------------------------------------------------------------------------------------------
# PD-07


def _treatment_over(ctx: RuleContext) -> set[str]:
    """Subjects whose every EX period has an end date (treatment stopped: the FU visit is due)."""
    ex = ctx.form("EX")
    open_periods = ex.loc[ex["EXENDAT"].isna(), "SUBJID"]
    return set(ex["SUBJID"].dropna()) - set(open_periods)


@rule(
    "PD-07",
    "Visit outside its window, or scheduled visit missing",
    severity=MINOR,
    category=CATEGORY,
    reference="Synopsis, Protocol deviations PD-07; Visits (schedule and windows); DERIVATIONS Dates",
    forms=["VS", "EX"],
    optional_forms=["DS"],
    message="{VISIT} {PROBLEM}",
    deviation_class="minor",
)
def pd07_visit_window(ctx: RuleContext) -> pd.DataFrame:
    """Scheduled visits (VS) outside their window, and scheduled VS visits missing.

    Minor; major for W4. Windows are study days (day 1 = first dose); FU is last dose + 28 ± 7 days
    and is judged only once every EX period has an end date. A visit is *missing* when the subject
    (dosed) has no VS record of it, its window closed on or before the data cut, and the subject had
    not left the study (DS) before the window closed. Unscheduled visits are never checked.
    """
    first = _first_dose(ctx)
    day1 = {s: d for s, d in first["D1"].items() if not _missing(d)}
    last_dose = first["TRTEDT"]
    over = _treatment_over(ctx)
    cut = _data_cut(ctx)
    left = _discontinued(ctx)
    primary = {v.code for v in ctx.study.visits.values() if v.primary}
    vs = ctx.form("VS")
    vs = vs[vs["SUBJID"].isin(day1)]
    rows: list[dict[str, Any]] = []

    def severity(visit: str) -> dict[str, str]:
        major = visit in primary
        return {"_class": "major" if major else "minor", "_severity": MAJOR if major else MINOR}

    windows = derive.derive_visit_window(vs, "VSDAT", first.reset_index(), visits=ctx.study.visits)
    for index, row in windows.iterrows():
        visit = ctx.study.visits.get(row.VISIT) if isinstance(row.VISIT, str) else None
        if visit is None or not visit.scheduled or _missing(row.INWIN) or bool(row.INWIN):
            continue
        if visit.anchor == "last_dose" and row.SUBJID not in over:
            continue
        start = day1[row.SUBJID]
        low, high = _date_of_day(start, int(row.WINDOWLO)), _date_of_day(start, int(row.WINDOWHI))
        rows.append({
            "SUBJID": row.SUBJID, "_form": "VS", "_index": index, "_variable": "VSDAT",
            "VISIT": row.VISIT, **severity(row.VISIT),
            "PROBLEM": (f"on {_iso(row.VSDAT)} (study day {int(row.ADY)}) is outside its window: days "
                        f"{int(row.WINDOWLO)} to {int(row.WINDOWHI)}, {_iso(low)} to {_iso(high)}"),
            "VSDAT": _iso(row.VSDAT), "ADY": int(row.ADY), "WINDOWLO": int(row.WINDOWLO),
            "WINDOWHI": int(row.WINDOWHI), "WINDOWFROM": _iso(low), "WINDOWTO": _iso(high),
        })

    expected = ctx.study.schedule["VS"]
    seen = set(zip(vs["SUBJID"], vs["VISIT"], strict=True))
    for subject in sorted(day1):
        for code in expected:
            visit = ctx.study.visits.get(code)
            if visit is None or not visit.scheduled or (subject, code) in seen or visit.window_hi is None:
                continue
            if visit.anchor == "last_dose":
                if subject not in over or _missing(last_dose.get(subject)):
                    continue
                low = pd.Timestamp(last_dose[subject]) + pd.Timedelta(days=visit.window_lo)
                high = pd.Timestamp(last_dose[subject]) + pd.Timedelta(days=visit.window_hi)
            else:
                low = _date_of_day(day1[subject], visit.window_lo)
                high = _date_of_day(day1[subject], visit.window_hi)
            if cut is None or high > cut:
                continue  # window still open at the data cut: not due yet
            if subject in left and left[subject] < high:
                continue  # left the study before the window closed
            rows.append({
                "SUBJID": subject, "_form": "VS", "_variable": "VISIT", "VISIT": code, **severity(code),
                "_keys": [code],
                "PROBLEM": (f"is missing: its window {_iso(low)} to {_iso(high)} closed before the data "
                            f"cut ({_iso(cut)}) while the subject was on study"),
                "WINDOWFROM": _iso(low), "WINDOWTO": _iso(high), "DATACUT": _iso(cut),
            })
    return _findings(rows)


# ------------------------------------------------------------------------------------------------
# PD-08


def _w4_date(ctx: RuleContext, subject: str, visit: str) -> pd.Timestamp | None:
    """The date of a subject's visit: CORE, else VS, CHAQ or LB (None when no form has it)."""
    for form, column in (("CORE", "CSDAT"), ("VS", "VSDAT"), ("CHAQ", "QSDAT"), ("LB", "LBDAT")):
        if not ctx.has(form):
            continue
        frame = ctx.form(form)
        every = ctx.memo(f"deviations:dates:{form}:{column}", lambda frame=frame, column=column: _dates(frame, column))
        dates = every.loc[ctx.rows(form, SUBJID=subject, VISIT=visit)].dropna()
        if len(dates):
            return pd.Timestamp(dates.min())
    return None


@rule(
    "PD-08",
    "Primary endpoint not assessable at W4",
    severity=MAJOR,
    category=CATEGORY,
    reference=(
        "Synopsis, Protocol deviations PD-08; Endpoints (primary); DERIVATIONS Adapted ACR Pedi, "
        "CHAQ / HAQ disability index"
    ),
    forms=["CORE", "CHAQ", "LB", "FEVER", "EX"],
    optional_forms=["VS", "DS"],
    message="primary endpoint not assessable at {VISIT} ({VISITDAT}): {MISSING}",
    deviation_class="major",
)
def pd08_primary_not_assessable(ctx: RuleContext) -> pd.DataFrame:
    """For each dosed subject whose W4 window closed by the data cut and who had not left the study
    (DS) before it closed: one finding per missing W4 component — CORE record, PHGA, PAGA, joint
    examination (JADONE = Y), a CHAQ disability index (>= 6 of 8 domains answered), ESR, CRP — and
    one when fewer than 6 of the 7 diary days before the W4 visit (days V-7..V-1) are recorded. With
    no W4 visit date at all, the diary is judged against the target day (29).
    """
    visit = next((v for v in ctx.study.visits.values() if v.primary), ctx.study.visits["W4"])
    first = _first_dose(ctx)
    day1 = {s: d for s, d in first["D1"].items() if not _missing(d)}
    cut = _data_cut(ctx)
    left = _discontinued(ctx)
    core, chaq, lb = ctx.form("CORE"), ctx.form("CHAQ"), ctx.form("LB")
    due: list[tuple[str, pd.Timestamp | None, pd.Timestamp]] = []
    for subject in sorted(day1):
        closes = _date_of_day(day1[subject], visit.window_hi)
        if cut is None or closes > cut or (subject in left and left[subject] < closes):
            continue
        when = _w4_date(ctx, subject, visit.code)
        due.append((subject, when, when if when is not None else _date_of_day(day1[subject], visit.target_day)))
    if not due:
        return _findings([])
    # one pass over the diary for every subject due (the diary is the largest form)
    fever = ctx.form("FEVER")
    anchors = pd.DataFrame({"SUBJID": [d[0] for d in due], "VISIT": visit.code,
                            "VDATE": pd.to_datetime([d[2] for d in due])})
    diary = derivations.derive_fever_free(fever[fever["SUBJID"].isin(anchors["SUBJID"])], anchors,
                                          protocol=ctx.study.protocol, date_col="VDATE")
    min_days = ctx.study.protocol.diary.min_recorded_days
    window_days = ctx.study.protocol.diary.days_before_visit
    rows: list[dict[str, Any]] = []
    chaq_di: pd.DataFrame | None = None
    for position, (subject, when, anchor) in enumerate(due):
        base = {"SUBJID": subject, "VISIT": visit.code,
                "VISITDAT": _iso(when) if when is not None else "no visit date"}

        def add(missing: str, form: str, index: Any = None, variable: str | None = None,
                base: dict[str, Any] = base) -> None:
            rows.append({**base, "_form": form, "_index": index, "_variable": variable,
                         "_keys": [visit.code, missing.split(" ")[0]], "MISSING": missing})

        record = ctx.rows("CORE", SUBJID=subject, VISIT=visit.code)
        if record.empty:
            add("CORE core-set record missing (PHGA, PAGA, joint examination)", "CORE")
        else:
            index = record[0]
            for variable in ("PHGA", "PAGA"):
                if _missing(core.at[index, variable]):
                    add(f"{variable} missing", "CORE", index, variable)
            if core.at[index, "JADONE"] != "Y":
                add("JADONE: joint examination not done", "CORE", index, "JADONE")
        record = ctx.rows("CHAQ", SUBJID=subject, VISIT=visit.code)
        if record.empty:
            add("CHAQ questionnaire missing", "CHAQ")
        else:
            index = record[0]
            if chaq_di is None:  # every visit record of the form scored in one pass, when first needed
                chaq_di = derivations.derive_chaq_di(chaq[chaq["VISIT"].eq(visit.code)])
            di = chaq_di
            if _missing(di.at[index, "CHAQDI"]):
                add(f"CHAQ disability index: {int(di.at[index, 'CHAQNDOM'])} of 8 domains answered "
                    "(at least 6 needed)", "CHAQ", index, None)
        for test in ("ESR", "CRP"):
            record = ctx.rows("LB", SUBJID=subject, VISIT=visit.code, LBTESTCD=test)
            if record.empty:
                add(f"{test} missing (no LB record)", "LB", None, "LBTESTCD")
            elif lb.loc[record, "LBORRES"].isna().all() and lb.loc[record, "LBSTRESN"].isna().all():
                add(f"{test} missing (no result)", "LB", record[0], "LBORRES")
        recorded = diary["NDIARY"].iloc[position]
        recorded = 0 if _missing(recorded) else int(recorded)
        if recorded < min_days:
            low, high = anchor - pd.Timedelta(days=window_days), anchor - pd.Timedelta(days=1)
            add(f"FEVER diary: {recorded} of {window_days} days recorded from {_iso(low)} to {_iso(high)} "
                f"(at least {min_days} needed)", "FEVER", None, "FVDAT")
    return _findings(rows)


# ------------------------------------------------------------------------------------------------
# PD-09


def _course_dates(cm: pd.DataFrame) -> pd.DataFrame:
    """CM courses with START (imputed first of the period) and END (last of the period; open =
    ongoing or no end date, taken as far in the future)."""
    out = pd.DataFrame(index=cm.index)
    out["START"] = _imputed(cm["CMSTDAT"], "start")
    end = _imputed(cm["CMENDAT"], "end")
    ongoing = cm["CMONGO"].eq("Y").fillna(False).astype(bool) if "CMONGO" in cm else False
    out["END"] = end.where(~ongoing & end.notna(), pd.Timestamp.max.normalize())
    out["OPEN"] = ongoing | end.isna()
    return out


def _ae_intervals(ctx: RuleContext, aesi: str) -> dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]]:
    """AEs of special interest ``aesi`` per subject as (start, end) — open-ended when ongoing."""
    if not ctx.has("AE"):
        return {}
    ae = ctx.form("AE")
    ae = ae[ae["AESI"].eq(aesi).fillna(False).astype(bool)]
    out: dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]] = {}
    for start, end, subject in zip(_dates(ae, "AESTDAT"), _dates(ae, "AEENDAT"), ae["SUBJID"], strict=True):
        if _missing(start):
            continue
        out.setdefault(subject, []).append((start, pd.Timestamp.max.normalize() if _missing(end) else end))
    return out


@rule(
    "PD-09",
    "Prohibited medication",
    severity=MAJOR,
    category=CATEGORY,
    reference="Synopsis, Protocol deviations PD-09; Treatment (prohibited medication)",
    forms=["CM", "EX"],
    optional_forms=["AE", "RAND"],
    message="{CMTRT} ({ROUTE}) {CMSTDAT} to {CMENDAT}: {RULE}",
    deviation_class="major",
)
def pd09_prohibited_medication(ctx: RuleContext) -> pd.DataFrame:
    """CM courses that overlap a period where they are prohibited (partial dates imputed: start on
    the first, end on the last day of the period; ongoing or no end = still taken).

    - throughout (day 1 onward): ``[prohibited] throughout`` — other biologics, JAK inhibitors,
      thalidomide (courses ending before day 1 are washout, PD-02 / EX02);
    - Part A (days 1..29): glucocorticoids by an IA, IM or IV route; ciclosporin, unless the
      subject has an AE with AESI = MAS whose dates overlap the ciclosporin course.
    """
    cm = ctx.form("CM")
    day1 = _day1(ctx)
    cm = cm[cm["SUBJID"].isin(day1)]
    if cm.empty:
        return _findings([])
    courses = _course_dates(cm)
    first_a, last_a = _part_a(ctx)
    prohibited = ctx.study.protocol.prohibited
    throughout = set(prohibited.throughout)
    routes = set(prohibited.part_a_routes)
    steroids = set(ctx.study.protocol.drug_classes.glucocorticoids)
    part_a_drugs = set(prohibited.part_a_drugs)
    exception = prohibited.part_a_drug_exception_aesi
    treated = _ae_intervals(ctx, exception)
    rows = []
    for index, row in cm.iterrows():
        start, end = courses.at[index, "START"], courses.at[index, "END"]
        if _missing(start):
            continue
        d1 = day1[row.SUBJID]
        a_from, a_to = _date_of_day(d1, first_a), _date_of_day(d1, last_a)
        in_part_a = start <= a_to and end >= a_from
        rule_text, variable = None, "CMTRT"
        if row.CMTRT in throughout and end >= d1:
            rule_text = f"prohibited throughout the study (on or after day 1, {_iso(d1)})"
        elif row.CMTRT in steroids and row.CMROUTE in routes and in_part_a:
            rule_text = (f"{row.CMROUTE} corticosteroids are prohibited in Part A "
                         f"({_iso(a_from)} to {_iso(a_to)})")
            variable = "CMROUTE"
        elif row.CMTRT in part_a_drugs and in_part_a:
            overlapping = [(s, e) for s, e in treated.get(row.SUBJID, []) if s <= end and e >= start]
            if overlapping:
                continue
            rule_text = (f"prohibited in Part A ({_iso(a_from)} to {_iso(a_to)}) except to treat {exception} "
                         f"reported as an adverse event, and no AE with AESI = {exception} overlaps it")
        if rule_text is None:
            continue
        rows.append({
            "SUBJID": row.SUBJID, "_form": "CM", "_index": index, "_variable": variable,
            "CMTRT": row.CMTRT, "ROUTE": _text(row.CMROUTE) or "route not recorded",
            "CMSTDAT": _text(row.CMSTDAT),
            "CMENDAT": "ongoing" if courses.at[index, "OPEN"] else _text(row.CMENDAT),
            "RULE": rule_text,
        })
    return _findings(rows)


# ------------------------------------------------------------------------------------------------
# PD-10


def _round(value: Any, places: int = 3) -> str:
    from trialkit.scores import round_half_up

    number = round_half_up(value, places)
    return "missing" if number is None else str(number)


@rule(
    "PD-10",
    "Prednisone-equivalent dose above the day-1 dose during Part A",
    severity=MAJOR,
    category=CATEGORY,
    reference="Synopsis, Protocol deviations PD-10; Treatment (corticosteroids); DERIVATIONS Corticosteroids",
    forms=["CM", "VS", "EX"],
    message=(
        "prednisone-equivalent dose on {DATE} (study day {DAY}) is {PREDMGKG} mg/kg/day ({PREDMG} mg/day), "
        "above the day-1 dose of {D1MGKG} mg/kg/day ({D1DATE}); no increase is allowed in Part A"
    ),
    deviation_class="major",
)
def pd10_steroid_increase(ctx: RuleContext) -> pd.DataFrame:
    """The daily prednisone-equivalent (mg/kg/day, ``derive_prednisone_equivalent``) on day 1
    against each glucocorticoid CM start date and each VS date in days 2..29. One finding per
    subject, at the first date above the day-1 dose (compared exactly), pointing at the CM course
    that started that day (else the VS record of that date). Undetermined doses are not judged.
    """
    cm, vs = ctx.form("CM"), ctx.form("VS")
    first = _first_dose(ctx)
    day1 = {s: d for s, d in first["D1"].items() if not _missing(d)}
    steroids = set(ctx.study.protocol.drug_classes.glucocorticoids)
    first_a, last_a = _part_a(ctx)
    courses = cm[cm["CMTRT"].isin(steroids).fillna(False).astype(bool) & cm["SUBJID"].isin(day1)]
    starts = _imputed(courses["CMSTDAT"], "start")
    vs = vs[vs["SUBJID"].isin(day1)]
    vs_dates = _dates(vs, "VSDAT")
    candidates: list[tuple[str, pd.Timestamp, str, Any]] = []
    for subject, d1 in day1.items():
        candidates.append((subject, d1, "D1", None))
    for index, subject in courses["SUBJID"].items():
        candidates.append((subject, starts[index], "CM", index))
    for index, subject in vs["SUBJID"].items():
        candidates.append((subject, vs_dates[index], "VS", index))
    table = pd.DataFrame(candidates, columns=["SUBJID", "DATE", "SOURCE", "INDEX"]).dropna(subset=["DATE"])
    table["DAY"] = [_study_day(date, day1[s]) for s, date in zip(table["SUBJID"], table["DATE"], strict=True)]
    table = table[(table["SOURCE"] == "D1") | table["DAY"].between(max(first_a, 1) + 1, last_a)]
    table = table.reset_index(drop=True)
    doses = derivations.derive_prednisone_equivalent(cm, ctx.form("VS"), table[["SUBJID", "DATE"]],
                                                     protocol=ctx.study.protocol)
    table["PREDMG"] = doses["PREDMG"].to_numpy()
    table["PREDMGKG"] = doses["PREDMGKG"].to_numpy()
    rows = []
    for subject, group in table.groupby("SUBJID", sort=True):
        baseline = group[group["SOURCE"] == "D1"]
        start = to_decimal(baseline["PREDMGKG"].iloc[0]) if len(baseline) else None
        if start is None:
            continue
        later = group[group["SOURCE"] != "D1"].sort_values(["DATE", "SOURCE"])
        for _, row in later.iterrows():
            value = to_decimal(row.PREDMGKG)
            if value is None or value <= start:
                continue
            form, index, variable = ("CM", row.INDEX, "CMDOSE") if row.SOURCE == "CM" else ("VS", row.INDEX, "VSDAT")
            if row.SOURCE == "VS":
                same_day = later[(later["SOURCE"] == "CM") & (later["DATE"] == row.DATE)]
                if len(same_day):
                    form, index, variable = "CM", same_day["INDEX"].iloc[0], "CMDOSE"
            rows.append({
                "SUBJID": subject, "_form": form, "_index": int(index), "_variable": variable,
                "_keys": ["Part A"],
                "DATE": _iso(row.DATE), "DAY": int(row.DAY), "PREDMG": _round(row.PREDMG),
                "PREDMGKG": _round(row.PREDMGKG), "D1MGKG": _round(baseline["PREDMGKG"].iloc[0]),
                "D1DATE": _iso(day1[subject]),
            })
            break
    return _findings(rows)


# ------------------------------------------------------------------------------------------------
# PD-11


def _amount(value: Any) -> str:
    """A dose as exact decimal text without trailing zeros (15.0 -> "15")."""
    amount = None if _missing(value) else to_decimal(value)
    return "" if amount is None else format(amount.normalize(), "f")


def _dose_key(row: Any) -> tuple[str, str, str]:
    """What makes a methotrexate dose: amount, unit and frequency (not the route)."""
    return (_amount(row.CMDOSE), _text(row.CMDOSU), _text(row.CMFRQ))


def _dose_text(row: Any) -> str:
    return " ".join(p for p in (_amount(row.CMDOSE) or "dose not recorded", _text(row.CMDOSU),
                                _text(row.CMFRQ)) if p)


@rule(
    "PD-11",
    "Methotrexate stopped or its dose changed during Part A",
    severity=MINOR,
    category=CATEGORY,
    reference="Synopsis, Protocol deviations PD-11; Treatment (methotrexate continues unchanged)",
    forms=["CM", "EX"],
    optional_forms=["RAND"],
    message="methotrexate {CHANGE} on {DATE} (study day {DAY}); it must continue unchanged through Part A",
    deviation_class="minor",
)
def pd11_methotrexate_changed(ctx: RuleContext) -> pd.DataFrame:
    """Methotrexate CM courses, per subject in start order:

    - a course ending in days 1..28 with no next course starting on or before the day after it:
      *stopped* (on ``CMENDAT``);
    - a course starting in days 2..29 (Part A after day 1) whose dose, unit or frequency differs
      from the course before it, or with no course before it: *dose changed* / *started* (on
      ``CMDOSE``). A new record with the same dose is not a change.
    """
    cm = ctx.form("CM")
    day1 = _day1(ctx)
    mtx = set(ctx.study.protocol.drug_classes.methotrexate)
    cm = cm[cm["CMTRT"].isin(mtx).fillna(False).astype(bool) & cm["SUBJID"].isin(day1)]
    if cm.empty:
        return _findings([])
    courses = _course_dates(cm).join(cm)
    first_a, last_a = _part_a(ctx)
    rows = []
    for subject, group in courses.dropna(subset=["START"]).groupby("SUBJID", sort=True):
        group = group.sort_values("START")
        d1 = day1[subject]
        records = list(group.itertuples())
        for position, course in enumerate(records):
            previous = records[position - 1] if position else None
            following = records[position + 1] if position + 1 < len(records) else None
            start_day = _study_day(course.START, d1)
            if first_a + 1 <= start_day <= last_a and (previous is None or _dose_key(previous) != _dose_key(course)):
                change = (f"started at {_dose_text(course)}" if previous is None
                          else f"dose changed from {_dose_text(previous)} to {_dose_text(course)}")
                rows.append({"SUBJID": subject, "_form": "CM", "_index": course.Index, "_variable": "CMDOSE",
                             "CHANGE": change, "DATE": _iso(course.START), "DAY": start_day,
                             "CMSTDAT": _text(course.CMSTDAT)})
            if course.OPEN:
                continue
            end_day = _study_day(course.END, d1)
            continued = following is not None and following.START <= course.END + pd.Timedelta(days=1)
            if first_a <= end_day <= last_a - 1 and not continued:
                rows.append({"SUBJID": subject, "_form": "CM", "_index": course.Index, "_variable": "CMENDAT",
                             "CHANGE": f"stopped (course of {_dose_text(course)})", "DATE": _iso(course.END),
                             "DAY": end_day, "CMENDAT": _text(course.CMENDAT)})
    return _findings(rows)


# ------------------------------------------------------------------------------------------------
# PD-12


@rule(
    "PD-12",
    "Serious adverse event reported late to the sponsor",
    severity=MAJOR,
    category=CATEGORY,
    reference="Synopsis, Protocol deviations PD-12; Endpoints (safety: SAE within 1 calendar day)",
    forms=["AE"],
    message=(
        "serious AE {AETERM} reported to the sponsor on {AERPTDAT}, {DAYS} days after the site became "
        "aware ({AEAWDAT}); the limit is 1 day"
    ),
    deviation_class="major",
)
def pd12_late_sae_report(ctx: RuleContext) -> pd.DataFrame:
    """AESER = Y with AERPTDAT − AEAWDAT > 1 calendar day (exactly 1 day is in time)."""
    ae = ctx.form("AE")
    aware, reported = _dates(ae, "AEAWDAT"), _dates(ae, "AERPTDAT")
    days = (reported - aware).dt.days
    late = ae[ae["AESER"].eq("Y").fillna(False).astype(bool) & days.gt(1).fillna(False).astype(bool)]
    return _findings(
        {"SUBJID": row.SUBJID, "_form": "AE", "_index": index, "_variable": "AERPTDAT",
         "AETERM": row.AETERM, "AEAWDAT": _iso(aware[index]), "AERPTDAT": _iso(reported[index]),
         "DAYS": int(days[index])}
        for index, row in late.iterrows()
    )


# ------------------------------------------------------------------------------------------------
# PD-13


@rule(
    "PD-13",
    "Randomization stratum does not match the age group at day 1",
    severity=MINOR,
    category=CATEGORY,
    reference="Synopsis, Protocol deviations PD-13; Design (stratification by age group); DERIVATIONS Dates",
    forms=["RAND", "DM"],
    optional_forms=["EX"],
    message=(
        "STRATUM is {STRATUM} but the subject is {AGE} years old at day 1 ({D1}, from BRTHYM {BRTHYM}): "
        "the age group is {EXPECTED} (ADULT from {ADULTAGE} years)"
    ),
    deviation_class="minor",
)
def pd13_stratum_mismatch(ctx: RuleContext) -> pd.DataFrame:
    """RAND STRATUM against the age group at day 1: PEDI under ``adult_age_years`` (18), ADULT at or
    above, age in whole years with birth on the 15th (``compute_age_at``).
    """
    rand, dm = ctx.form("RAND"), ctx.form("DM")
    day1 = _day1(ctx)
    adult = ctx.study.protocol.age_groups.adult_age_years
    birth = dm.dropna(subset=["SUBJID"]).drop_duplicates("SUBJID").set_index("SUBJID")["BRTHYM"]
    rand = rand[rand["SUBJID"].isin(day1) & rand["SUBJID"].isin(birth.index)]
    if rand.empty:
        return _findings([])
    born = rand["SUBJID"].map(birth)
    ages = derive.compute_age_at(born, rand["SUBJID"].map(day1))
    rows = []
    for (index, row), age in zip(rand.iterrows(), ages, strict=True):
        if _missing(age) or _missing(row.STRATUM):
            continue
        expected = "ADULT" if int(age) >= adult else "PEDI"
        if row.STRATUM != expected:
            rows.append({"SUBJID": row.SUBJID, "_form": "RAND", "_index": index, "_variable": "STRATUM",
                         "STRATUM": row.STRATUM, "EXPECTED": expected, "AGE": int(age),
                         "D1": _iso(day1[row.SUBJID]), "BRTHYM": born[index], "ADULTAGE": adult})
    return _findings(rows)


# ------------------------------------------------------------------------------------------------
# PD-14 (Amendment 1)


@rule(
    "PD-14",
    "Fever diary incomplete before a scheduled visit from W8 to W52",
    severity=MINOR,
    category=CATEGORY,
    reference="Amendment 1 (protocol version 1.1), item 3: fever diary before later visits",
    forms=["FEVER", "VS"],
    optional_forms=["CORE", "CHAQ", "LB"],
    message=(
        "{VISIT} on {VISITDAT}: {RECORDED} of {DAYS} diary days recorded from {FROM} to {TO}; at least "
        "{NEEDED} are needed"
    ),
    deviation_class="minor",
)
def pd14_diary_before_visit(ctx: RuleContext) -> pd.DataFrame:
    """For each scheduled visit of ``protocol.diary.before_visits`` (W8 … W52) that took place (a
    dated VS, CORE, CHAQ or LB record of the visit, on or before the data cut): fewer than
    ``min_recorded_days`` (6) of the ``days_before_visit`` (7) days V-7..V-1 recorded in the FEVER
    diary. The visit date is the earliest date recorded for the visit (CORE, else VS, CHAQ, LB).
    """
    diary = ctx.study.protocol.diary
    cut = _data_cut(ctx)
    wanted = list(diary.before_visits)
    found: dict[tuple[str, str], pd.Timestamp] = {}
    # The visit date as _w4_date has it: CORE first, then VS, CHAQ, LB (the earliest date of the form).
    for form, column in (("LB", "LBDAT"), ("CHAQ", "QSDAT"), ("VS", "VSDAT"), ("CORE", "CSDAT")):
        if not ctx.has(form):
            continue
        frame = ctx.form(form)
        chosen = frame[frame["VISIT"].isin(wanted).fillna(False).to_numpy()]
        dates = _dates(chosen, column)
        earliest = dates.groupby([chosen["SUBJID"], chosen["VISIT"]]).min().dropna()
        found.update({key: pd.Timestamp(value) for key, value in earliest.items()})
    anchors = [{"SUBJID": subject, "VISIT": visit, "VDATE": when}
               for (subject, visit), when in sorted(found.items()) if cut is None or when <= cut]
    if not anchors:
        return _findings([])
    frame = pd.DataFrame(anchors)
    fever = ctx.form("FEVER")
    counted = derive.derive_daily_window(fever[fever["SUBJID"].isin(frame["SUBJID"])], frame, day_col="FVDAT",
                                         value="FVTEMP", anchor_date="VDATE", days=diary.days_before_visit)
    rows = []
    for row in counted.itertuples(index=False):
        recorded = 0 if _missing(row.NDAYS) else int(row.NDAYS)
        if recorded >= diary.min_recorded_days:
            continue
        rows.append({
            "SUBJID": row.SUBJID, "VISIT": row.VISIT, "_form": "FEVER", "_index": None, "_variable": "FVDAT",
            "_keys": [row.VISIT, "diary"], "VISITDAT": _iso(row.VDATE), "RECORDED": recorded,
            "DAYS": diary.days_before_visit, "NEEDED": diary.min_recorded_days,
            "FROM": _iso(row.VDATE - pd.Timedelta(days=diary.days_before_visit)),
            "TO": _iso(row.VDATE - pd.Timedelta(days=1)),
        })
    return _findings(rows)


RULES: list = [
    pd01_randomized_not_eligible,
    pd02_eligibility_contradicted,
    pd03_before_consent,
    pd04_drug_before_randomization,
    pd05_dose_outside_window,
    pd06_missed_doses,
    pd07_visit_window,
    pd08_primary_not_assessable,
    pd09_prohibited_medication,
    pd10_steroid_increase,
    pd11_methotrexate_changed,
    pd12_late_sae_report,
    pd13_stratum_mismatch,
    pd14_diary_before_visit,
]
