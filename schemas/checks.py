"""ANK-SJIA-01 data checks (categories ``record`` and ``cross-form``), ids DC-01 ... DC-17 (DC-17 from
Amendment 1).

Each rule is a function decorated with :func:`trialkit.rules.rule`; ``RULES`` lists them. A rule
returns one row per problem pointing at the cell the site must fix (``_form``, ``_index``,
``_variable``), with the evidence the message names as upper-case columns. Every rule works on whole
columns (merges, ``groupby``); none loops over records.

What the schema already holds (types, ranges, codelists, required, keys — including
``required:LBORRESU``, a lab result without its unit) is not repeated here.

Decisions where the issue was silent:

- DC-13 (MAS pattern without an MAS adverse event) is an **error**: an unreported event of special
  interest is a safety-reporting gap the site must answer. An AE with ``AESI = MAS`` counts when it
  covers the sample date give or take 14 days (start − 14 d ≤ sample ≤ end + 14 d; no end date =
  ongoing).
- DC-08 (after the data cut) and DC-09 (in the future, after today) do not both fire on one date:
  a date after today is reported as in the future only. A partial date counts from its first
  possible day (``2030`` → 2030-01-01).
- DC-07 (visits out of sequence) compares the dates of VS, CORE and LB by visit number
  (unscheduled visits excluded). For each conflicting pair it blames the record in more conflicts
  (the later visit on a tie), so one mistyped date gives one finding.
- DC-14 compares weights exactly (as integers of micrograms), so 30 → 36 kg (exactly 20 %) passes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from trialkit.rules import RuleContext, rule

ERROR = "error"
WARNING = "warning"

COLUMNS = ["SUBJID", "VISIT", "_form", "_index", "_variable"]
SERIOUS_CRITERIA = ["AESDTH", "AESLIFE", "AESHOSP", "AESDISAB", "AESCONG", "AESMIE"]
MAS_TESTS = {"FERRITIN": "ferritin", "PLAT": "platelets", "AST": "ast", "TRIG": "triglycerides",
             "FIBRINO": "fibrinogen"}
MAS_AE_MARGIN = pd.Timedelta(days=14)
SEQUENCE_DATES = {"VS": "VSDAT", "CORE": "CSDAT", "LB": "LBDAT"}


# ------------------------------------------------------------------------------------------------
# Helpers


def _empty(*evidence: str) -> pd.DataFrame:
    return pd.DataFrame(columns=[*COLUMNS, *evidence])


def _point(rows: pd.DataFrame, form: str, variable: str | Iterable[str], **evidence: Any) -> pd.DataFrame:
    """Offending rows of ``form`` (indexed by record index) pointing at ``variable``.

    ``evidence`` values are column names of ``rows`` (text), arrays/Series, or numbers.
    """
    out = pd.DataFrame(
        {
            "SUBJID": rows["SUBJID"].to_numpy(dtype=object),
            "VISIT": rows["VISIT"].to_numpy(dtype=object) if "VISIT" in rows.columns else None,
            "_form": form,
            "_index": rows.index.to_numpy(),
            "_variable": variable if isinstance(variable, str) else np.asarray(list(variable), dtype=object),
        },
        index=pd.RangeIndex(len(rows)),
    )
    for name, value in evidence.items():
        if isinstance(value, str) and value in rows.columns:
            out[name] = rows[value].to_numpy(dtype=object)
        elif isinstance(value, pd.Series):
            out[name] = value.to_numpy(dtype=object)
        else:
            out[name] = value
    return out


def _dates(series: pd.Series) -> pd.Series:
    """A full-date column as datetime64 (an empty untyped column too)."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return series
    return pd.to_datetime(series, errors="coerce")


def _first_day(series: pd.Series) -> pd.Series:
    """A partial date (``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD``) as its first possible day."""
    text = series.astype("str").where(series.notna(), "")
    lengths = text.str.len()
    full = text.where(lengths.ne(4), text + "-01-01")
    full = full.where(lengths.ne(7), text + "-01")
    full = full.where(lengths.isin([4, 7, 10]), "")
    return pd.to_datetime(full, format="%Y-%m-%d", errors="coerce")


def _pdate_before(end: pd.Series, start: pd.Series) -> pd.Series:
    """``end < start`` for partial dates, compared at the precision both have."""
    end_text = end.astype("str").where(end.notna(), "")
    start_text = start.astype("str").where(start.notna(), "")
    shape = r"\d{4}(-\d{2}(-\d{2})?)?"
    valid = end_text.str.fullmatch(shape).fillna(False) & start_text.str.fullmatch(shape).fillna(False)
    common = np.minimum(end_text.str.len(), start_text.str.len())
    result = pd.Series(False, index=end.index)
    for width in (4, 7, 10):
        at = valid & common.eq(width)
        if at.any():
            result |= at & (end_text.str.slice(0, width) < start_text.str.slice(0, width))
    return result


def _uploaded(ctx: RuleContext) -> list[str]:
    """Codes of the uploaded forms, in study order."""
    return [code for code in ctx.study.forms if ctx.has(code)]


def _date_variables(ctx: RuleContext, code: str) -> list[tuple[str, str]]:
    """(name, type) of the full and partial date variables of a form."""
    return [(v.name, v.type) for v in ctx.study.form(code).variables if v.type in ("date", "pdate")]


def _as_date(frame: pd.DataFrame, name: str, kind: str) -> pd.Series:
    return _dates(frame[name]) if kind == "date" else _first_day(frame[name])


def _concat(parts: list[pd.DataFrame], *evidence: str) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return _empty(*evidence)
    return pd.concat(parts, ignore_index=True)


# ------------------------------------------------------------------------------------------------
# DC-01, DC-02: subjects


@rule(
    "DC-01", "Subject missing from demographics", severity=ERROR, category="cross-form",
    reference="Synopsis: Case report forms (DM, one row per subject)", forms=["DM"],
    optional_forms=["MH", "PT", "IE", "RAND", "VS", "CORE", "JA", "CHAQ", "FEVER", "LB", "EX", "CM",
                    "AE", "DS"],
    message="Subject {SUBJID} has {RECORDS} {FORM} record(s) but no DM record: add the subject's "
            "demographics or correct SUBJID",
)
def subject_not_in_dm(ctx: RuleContext) -> pd.DataFrame:
    """One finding per subject and form whose subject has no DM record (at its first record)."""
    known = set(ctx.form("DM")["SUBJID"].dropna())
    parts = []
    for code in _uploaded(ctx):
        if code == "DM":
            continue
        frame = ctx.form(code)
        orphans = frame[frame["SUBJID"].notna() & ~frame["SUBJID"].isin(known)]
        if orphans.empty:
            continue
        first = orphans[~orphans["SUBJID"].duplicated()]
        counts = orphans.groupby("SUBJID").size()
        part = _point(first, code, "SUBJID", FORM=np.full(len(first), code, dtype=object),
                      RECORDS=first["SUBJID"].map(counts).astype(int))
        part["VISIT"] = None
        part["_keys"] = [[subject] for subject in first["SUBJID"]]
        parts.append(part)
    return _concat(parts, "FORM", "RECORDS")


@rule(
    "DC-02", "Subject number does not start with the site", severity=ERROR, category="record",
    reference="Synopsis: Sites (SUBJID = SS-NNN, prefix equal to SITEID)", forms=[],
    optional_forms=["DM", "MH", "PT", "IE", "RAND", "VS", "CORE", "JA", "CHAQ", "FEVER", "LB", "EX",
                    "CM", "AE", "DS"],
    message="SUBJID {SUBJID} does not start with the site number {SITEID}: the subject number is "
            "SS-NNN with SS equal to SITEID",
)
def subject_prefix_not_site(ctx: RuleContext) -> pd.DataFrame:
    """Records whose SUBJID prefix differs from SITEID (a malformed SUBJID is the schema's)."""
    parts = []
    for code in _uploaded(ctx):
        frame = ctx.form(code)
        subjid = frame["SUBJID"].astype("str")
        # The site part of a well-formed SUBJID is the named group "site" of the study's pattern.
        prefix = subjid.str.extract(ctx.study.subject_id_pattern)["site"]
        wellformed = prefix.notna() & frame["SUBJID"].notna()
        site = frame["SITEID"]
        bad = wellformed & site.notna() & prefix.ne(site.astype("str"))
        if bad.any():
            parts.append(_point(frame[bad], code, "SUBJID", SITEID="SITEID"))
    return _concat(parts, "SITEID")


# ------------------------------------------------------------------------------------------------
# DC-03 ... DC-06: end before start


def _end_before_start(form: str, start: str, end: str, partial: bool) -> Callable[[RuleContext], pd.DataFrame]:
    def check(ctx: RuleContext) -> pd.DataFrame:
        frame = ctx.form(form)
        if partial:
            bad = _pdate_before(frame[end], frame[start])
        else:
            bad = (_dates(frame[end]) < _dates(frame[start])).fillna(False)
        return _point(frame[bad], form, end, START=start, END=end)

    check.__name__ = f"{form.lower()}_end_before_start"
    check.__doc__ = f"{form} records whose {end} is before {start}."
    return check


def _end_rule(rule_id: str, form: str, start: str, end: str, partial: bool) -> Any:
    precision = " (partial dates compared at the precision both have)" if partial else ""
    return rule(
        rule_id, f"{form}: end date before start date", severity=ERROR, category="record",
        reference=f"Synopsis: Case report forms ({form})", forms=[form],
        message=f"{end} {{END}} is before {start} {{START}}{precision}: correct one of the dates",
    )(_end_before_start(form, start, end, partial))


AE_END = _end_rule("DC-03", "AE", "AESTDAT", "AEENDAT", partial=False)
CM_END = _end_rule("DC-04", "CM", "CMSTDAT", "CMENDAT", partial=True)
EX_END = _end_rule("DC-05", "EX", "EXSTDAT", "EXENDAT", partial=False)
PT_END = _end_rule("DC-06", "PT", "PTSTDAT", "PTENDAT", partial=True)


# ------------------------------------------------------------------------------------------------
# DC-07 ... DC-09: visit order and dates after the data cut or today


@rule(
    "DC-07", "Visits out of sequence", severity=ERROR, category="cross-form",
    reference="Synopsis: Visits (VISITNUM order)", forms=[], optional_forms=["VS", "CORE", "LB"],
    message="{VISIT} ({FORMDATE}) is dated before the earlier visit {OTHERVISIT} ({OTHERDATE}, "
            "{OTHERFORM}): correct the date or the visit",
)
def visits_out_of_sequence(ctx: RuleContext) -> pd.DataFrame:
    """A later visit (by VISITNUM) dated before an earlier one of the same subject."""
    numbers = {code: visit.num for code, visit in ctx.study.visits.items() if visit.scheduled}
    parts = []
    for code, variable in SEQUENCE_DATES.items():
        if not ctx.has(code):
            continue
        frame = ctx.form(code)
        part = pd.DataFrame(
            {
                "SUBJID": frame["SUBJID"].to_numpy(dtype=object),
                "VISIT": frame["VISIT"].to_numpy(dtype=object),
                "DATE": _dates(frame[variable]).to_numpy(),
                "_form": code,
                "_index": frame.index.to_numpy(),
                "_variable": variable,
            }
        )
        parts.append(part)
    evidence = ("FORMDATE", "OTHERVISIT", "OTHERDATE", "OTHERFORM")
    if not parts:
        return _empty(*evidence)
    visits = pd.concat(parts, ignore_index=True)
    visits["NUM"] = visits["VISIT"].map(numbers)
    visits = visits.dropna(subset=["SUBJID", "NUM", "DATE"])
    visits = visits.drop_duplicates(["SUBJID", "NUM", "DATE"]).reset_index(drop=True)
    visits["ID"] = visits.index
    pairs = visits.merge(visits, on="SUBJID", suffixes=("_A", "_B"))
    pairs = pairs[(pairs["NUM_A"] < pairs["NUM_B"]) & (pairs["DATE_A"] > pairs["DATE_B"])]
    if pairs.empty:
        return _empty(*evidence)
    conflicts = pd.concat([pairs["ID_A"], pairs["ID_B"]]).value_counts()
    blame_a = pairs["ID_A"].map(conflicts) > pairs["ID_B"].map(conflicts)
    pairs = pairs.assign(
        BLAMED=np.where(blame_a, pairs["ID_A"], pairs["ID_B"]),
        OTHER=np.where(blame_a, pairs["ID_B"], pairs["ID_A"]),
        GAP=(pairs["NUM_B"] - pairs["NUM_A"]),
    )
    # name the nearest conflicting visit
    pairs = pairs.sort_values(["BLAMED", "GAP", "OTHER"]).drop_duplicates("BLAMED")
    blamed = visits.loc[pairs["BLAMED"].to_numpy()].reset_index(drop=True)
    other = visits.loc[pairs["OTHER"].to_numpy()].reset_index(drop=True)
    out = blamed[["SUBJID", "VISIT", "_form", "_index", "_variable"]].copy()
    out["FORMDATE"] = blamed["DATE"].to_numpy()
    out["OTHERVISIT"] = other["VISIT"].to_numpy()
    out["OTHERDATE"] = other["DATE"].to_numpy()
    out["OTHERFORM"] = other["_form"].to_numpy()
    return out


def _dates_after(ctx: RuleContext, limit: pd.Timestamp, ceiling: pd.Timestamp | None) -> pd.DataFrame:
    """Every date cell after ``limit`` (and on or before ``ceiling`` when given)."""
    parts = []
    for code in _uploaded(ctx):
        frame = ctx.form(code)
        for name, kind in _date_variables(ctx, code):
            when = _as_date(frame, name, kind)
            bad = when > limit
            if ceiling is not None:
                bad &= when <= ceiling
            bad = bad.fillna(False)
            if bad.any():
                parts.append(_point(frame[bad], code, name, DATE=frame.loc[bad, name]))
    return _concat(parts, "DATE")


@rule(
    "DC-08", "Date after the data cut", severity=ERROR, category="record",
    reference="Synopsis: Visits (data cut: dates after it are errors)", forms=[],
    optional_forms=["DM", "MH", "PT", "RAND", "VS", "CORE", "JA", "CHAQ", "FEVER", "LB", "EX", "CM",
                    "AE", "DS"],
    message="{VARIABLE} = {DATE} is after the data cut {CUT}: correct the date, or upload it with a "
            "later data cut",
)
def date_after_data_cut(ctx: RuleContext) -> pd.DataFrame:
    """Dates after the data cut (those after today are DC-09's)."""
    if ctx.data_cut is None:
        return _empty("DATE", "CUT")
    out = _dates_after(ctx, pd.Timestamp(ctx.data_cut), pd.Timestamp(ctx.today))
    out["CUT"] = pd.Timestamp(ctx.data_cut)
    return out


@rule(
    "DC-09", "Date in the future", severity=ERROR, category="record",
    reference="Synopsis: Visits (dates after the data cut are errors)", forms=[],
    optional_forms=["DM", "MH", "PT", "RAND", "VS", "CORE", "JA", "CHAQ", "FEVER", "LB", "EX", "CM",
                    "AE", "DS"],
    message="{VARIABLE} = {DATE} is in the future (today is {TODAY}): correct the date",
)
def date_in_future(ctx: RuleContext) -> pd.DataFrame:
    """Dates after today."""
    out = _dates_after(ctx, pd.Timestamp(ctx.today), None)
    out["TODAY"] = pd.Timestamp(ctx.today)
    return out


# ------------------------------------------------------------------------------------------------
# DC-10 ... DC-12: impossible combinations within a record


@rule(
    "DC-10", "Serious adverse event without a seriousness criterion", severity=ERROR,
    category="record", reference="Synopsis: Case report forms (AE: at least one criterion Y when "
    "AESER = Y)", forms=["AE"],
    message="AESER = Y but no seriousness criterion (AESDTH, AESLIFE, AESHOSP, AESDISAB, AESCONG, "
            "AESMIE) is Y: tick the criterion that applies, or correct AESER",
)
def serious_without_criterion(ctx: RuleContext) -> pd.DataFrame:
    """AE records with AESER = Y and no criterion Y."""
    ae = ctx.form("AE")
    any_criterion = ae.reindex(columns=SERIOUS_CRITERIA).eq("Y").any(axis=1)
    bad = ae["AESER"].eq("Y").fillna(False) & ~any_criterion
    return _point(ae[bad], "AE", "AESER", AETERM="AETERM")


@rule(
    "DC-11", "Grade 5 adverse event with an outcome other than fatal", severity=ERROR,
    category="record", reference="Synopsis: Safety (CTCAE v5.0: grade 5 is death)", forms=["AE"],
    message="AETOXGR = 5 (death) but AEOUT = {AEOUT}: the outcome of a grade 5 event is FATAL; "
            "correct AEOUT or the grade",
)
def grade5_not_fatal(ctx: RuleContext) -> pd.DataFrame:
    """AE records of grade 5 whose outcome is not FATAL (missing included)."""
    ae = ctx.form("AE")
    grade = pd.to_numeric(ae["AETOXGR"], errors="coerce")
    bad = grade.eq(5).fillna(False) & ~ae["AEOUT"].eq("FATAL").fillna(False)
    return _point(ae[bad], "AE", "AEOUT", AEOUT="AEOUT", AETERM="AETERM")


@rule(
    "DC-12", "Value without its unit", severity=ERROR, category="record",
    reference="Synopsis: Case report forms (VS, FEVER, CM units)", forms=[],
    optional_forms=["VS", "FEVER", "CM"],
    message="{MEASURE} = {MEASUREVAL} has no unit: enter {VARIABLE}",
)
def value_without_unit(ctx: RuleContext) -> pd.DataFrame:
    """A measured value whose unit variable (``unit_var`` of the CRF) is empty.

    Laboratory results are left to the schema (``required:LBORRESU``).
    """
    parts = []
    for code in _uploaded(ctx):
        if code == "LB":
            continue
        frame = ctx.form(code)
        for variable in ctx.study.form(code).variables:
            unit_var = variable.unit_var
            if not unit_var or unit_var not in frame.columns:
                continue
            bad = frame[variable.name].notna() & frame[unit_var].isna()
            if bad.any():
                rows = frame[bad]
                parts.append(_point(rows, code, unit_var,
                                    MEASURE=np.full(len(rows), variable.name, dtype=object),
                                    MEASUREVAL=variable.name))
    return _concat(parts, "MEASURE", "MEASUREVAL")


# ------------------------------------------------------------------------------------------------
# DC-13: MAS pattern without an MAS adverse event


def _fever_threshold(ctx: RuleContext) -> float:
    return float(ctx.study.protocol.diary.fever_c)


def _febrile_samples(ctx: RuleContext, samples: pd.DataFrame) -> pd.Series:
    """Per sample (SUBJID, VISIT, LBDAT): CORE FEVER = Y at the visit, or a diary temperature
    ≥ 38.0 °C within one day of the sample."""
    febrile = pd.Series(False, index=samples.index)
    if ctx.has("CORE"):
        core = ctx.form("CORE")
        fever_y = core[core["FEVER"].eq("Y").fillna(False)]
        at_visit = samples.reset_index().merge(
            fever_y[["SUBJID", "VISIT", "CSDAT"]], on="SUBJID", how="inner"
        )
        same = (at_visit["VISIT_x"].eq(at_visit["VISIT_y"]) & at_visit["VISIT_x"].ne("UNS")) | (
            _dates(at_visit["CSDAT"]).eq(at_visit["LBDAT"])
        )
        febrile.loc[at_visit.loc[same.fillna(False), "index"].unique()] = True
    if ctx.has("FEVER"):
        diary = ctx.form("FEVER")
        hot = diary[(diary["FVTEMP"].astype(float).round(6) >= _fever_threshold(ctx)).fillna(False)]
        near = samples.reset_index().merge(hot[["SUBJID", "FVDAT"]], on="SUBJID", how="inner")
        close = (_dates(near["FVDAT"]) - near["LBDAT"]).abs() <= pd.Timedelta(days=1)
        febrile.loc[near.loc[close.fillna(False), "index"].unique()] = True
    return febrile


@rule(
    "DC-13", "MAS pattern in the labs without an MAS adverse event", severity=ERROR,
    category="cross-form", reference="DERIVATIONS: Macrophage activation syndrome (Ravelli 2016); "
    "Synopsis: Safety (AESI MAS)", forms=["LB", "AE"], optional_forms=["CORE", "FEVER"],
    message="The sample of {LBDAT} meets the MAS 2016 criteria in a febrile subject (ferritin "
            "{FERRITIN} ng/mL; platelets {PLAT} x10^9/L, AST {AST} U/L, triglycerides {TRIG} mg/dL, "
            "fibrinogen {FIBRINO} mg/dL) but no adverse event with AESI = MAS covers it: report the "
            "MAS adverse event or explain",
)
def mas_without_ae(ctx: RuleContext) -> pd.DataFrame:
    """Samples classified as MAS (``trialkit.scores.mas_2016``, standard units) with no AE coded MAS."""
    from trialkit.scores import mas_2016

    evidence = ("LBDAT", *MAS_TESTS)
    lb = ctx.form("LB")
    lb = lb[lb["LBTESTCD"].isin(list(MAS_TESTS)) & lb["SUBJID"].notna() & lb["LBDAT"].notna()]
    if lb.empty:
        return _empty(*evidence)
    lb = lb.assign(LBDAT=_dates(lb["LBDAT"]), LBSTRESN=pd.to_numeric(lb["LBSTRESN"], errors="coerce"))
    values = lb.pivot_table(index=["SUBJID", "LBDAT"], columns="LBTESTCD", values="LBSTRESN",
                            aggfunc="first").reindex(columns=list(MAS_TESTS))
    ferritin = lb[lb["LBTESTCD"].eq("FERRITIN")]
    ferritin = ferritin[~ferritin.duplicated(["SUBJID", "LBDAT"])]
    samples = (
        ferritin.reset_index(names="_index")[["_index", "SUBJID", "VISIT", "LBDAT"]]
        .merge(values.reset_index(), on=["SUBJID", "LBDAT"], how="left")
    )
    samples = samples[samples["FERRITIN"] > float(684)]  # pre-filter; mas_2016 decides exactly
    if samples.empty:
        return _empty(*evidence)
    samples = samples.reset_index(drop=True)
    febrile = _febrile_samples(ctx, samples[["SUBJID", "VISIT", "LBDAT"]])
    classified = [
        mas_2016(bool(f), row.FERRITIN, row.PLAT, row.AST, row.TRIG, row.FIBRINO) is True
        for f, row in zip(febrile, samples.itertuples(index=False), strict=True)
    ]
    samples = samples[classified]
    if samples.empty:
        return _empty(*evidence)
    ae = ctx.form("AE")
    mas_ae = ae[ae["AESI"].eq("MAS").fillna(False)][["SUBJID", "AESTDAT", "AEENDAT"]]
    covered = samples.reset_index().merge(mas_ae, on="SUBJID", how="inner")
    start = _dates(covered["AESTDAT"]) - MAS_AE_MARGIN
    end = _dates(covered["AEENDAT"]) + MAS_AE_MARGIN
    inside = (start.isna() | (covered["LBDAT"] >= start)) & (end.isna() | (covered["LBDAT"] <= end))
    samples = samples[~samples.index.isin(covered.loc[inside, "index"])]
    out = samples.rename(columns={"_index": "_orig"}).copy()
    out["_index"] = out.pop("_orig")
    out["_form"] = "LB"
    out["_variable"] = "LBORRES"
    out["_keys"] = [["MAS", date.date().isoformat()] for date in out["LBDAT"]]
    return out.reset_index(drop=True)


# ------------------------------------------------------------------------------------------------
# DC-14 ... DC-16: plausibility across visits and forms


@rule(
    "DC-14", "Weight changed more than 20 % between consecutive visits", severity=WARNING,
    category="record", reference="Synopsis: Treatment (dose by weight); study.toml "
    "lab_limits.weight_change_warning_pct", forms=["VS"],
    message="WEIGHT {WEIGHT} kg at {VISIT} differs by more than {LIMIT} % from {PREVWT} kg at "
            "{PREVVIS} ({PREVDAT}): check the weight and its unit",
)
def weight_jump(ctx: RuleContext) -> pd.DataFrame:
    """Consecutive VS visits (by date) whose weights differ by more than the limit, exactly."""
    limit = int(ctx.study.protocol.lab_limits.weight_change_warning_pct)
    vs = ctx.form("VS")
    vs = vs[vs["WEIGHT"].notna() & vs["VSDAT"].notna() & vs["SUBJID"].notna()]
    if vs.empty:
        return _empty("WEIGHT", "LIMIT", "PREVWT", "PREVVIS", "PREVDAT")
    vs = vs.assign(VSDAT=_dates(vs["VSDAT"]), WEIGHT=vs["WEIGHT"].astype(float))
    vs = vs.sort_values(["SUBJID", "VSDAT"], kind="stable")
    grouped = vs.groupby("SUBJID", sort=False)
    previous = pd.DataFrame({"PREVWT": grouped["WEIGHT"].shift(), "PREVVIS": grouped["VISIT"].shift(),
                             "PREVDAT": grouped["VSDAT"].shift()})
    micro_now = (vs["WEIGHT"] * 1_000_000).round().astype("Int64")
    micro_before = (previous["PREVWT"] * 1_000_000).round().astype("Int64")
    bad = ((micro_now - micro_before).abs() * 100 > micro_before * limit).fillna(False)
    rows = vs[bad].join(previous[bad])
    return _point(rows, "VS", "WEIGHT", WEIGHT="WEIGHT", LIMIT=limit, PREVWT="PREVWT",
                  PREVVIS="PREVVIS", PREVDAT="PREVDAT")


@rule(
    "DC-15", "Diary fever on a visit day recorded as no fever at the visit", severity=WARNING,
    category="cross-form", reference="Synopsis: Case report forms (CORE FEVER, FEVER diary)",
    forms=["CORE", "FEVER"],
    message="The diary records {FVTEMP} °C on {FVDAT}, the day of the {VISIT} visit, but FEVER = N at "
            "that visit: check the diary or the visit",
)
def diary_fever_not_at_visit(ctx: RuleContext) -> pd.DataFrame:
    """CORE visits with FEVER = N on a day the diary shows ≥ 38.0 °C (converted to °C on import)."""
    core = ctx.form("CORE")
    diary = ctx.form("FEVER")
    hot = diary[(diary["FVTEMP"].astype(float).round(6) >= _fever_threshold(ctx)).fillna(False)]
    no_fever = core[core["FEVER"].eq("N").fillna(False)]
    if hot.empty or no_fever.empty:
        return _empty("FVTEMP", "FVDAT")
    visits = no_fever.reset_index(names="_core").assign(DAY=lambda f: _dates(f["CSDAT"]))
    days = hot[["SUBJID", "FVDAT", "FVTEMP"]].assign(DAY=lambda f: _dates(f["FVDAT"]))
    both = visits.merge(days, on=["SUBJID", "DAY"], how="inner").drop_duplicates("_core")
    return _point(both.set_index("_core"), "CORE", "FEVER", FVTEMP="FVTEMP", FVDAT="FVDAT")


@rule(
    "DC-16", "PTGH missing for an adult subject", severity=ERROR, category="record",
    reference="Synopsis: Case report forms (CORE: PTGH required for ADULT)", forms=["RAND", "CORE"],
    message="PTGH is required for ADULT subjects (DAS28) but is empty at {VISIT}: enter it, or "
            "ND/NK with the reason",
)
def ptgh_missing_for_adult(ctx: RuleContext) -> pd.DataFrame:
    """CORE records of subjects randomized in the ADULT stratum without PTGH."""
    rand = ctx.form("RAND")
    adults = set(rand.loc[rand["STRATUM"].eq("ADULT").fillna(False), "SUBJID"].dropna())
    core = ctx.form("CORE")
    bad = core["SUBJID"].isin(adults) & core["PTGH"].isna()
    return _point(core[bad], "CORE", "PTGH")


@rule(
    "DC-17", "UPCR missing at a laboratory visit of a subject with renal amyloidosis", severity=WARNING,
    category="cross-form",
    reference="Amendment 1 (protocol version 1.1), item 6: UPCR at every LB visit with MH AMYLOID = Y",
    forms=["LB", "MH"],
    message="{VISIT} ({LBDAT}): no urine protein/creatinine ratio (UPCR) for a subject with renal "
            "amyloidosis (MH AMYLOID = Y): add the UPCR result, or LBSTAT = ND with the reason",
)
def upcr_missing_with_amyloidosis(ctx: RuleContext) -> pd.DataFrame:
    """Per LB visit of a subject with AMYLOID = Y: no UPCR record. (A UPCR record without a result and
    without LBSTAT = ND is the form check ``required:LBORRES``'s, not this rule's.) Points at the
    visit's first LB record (the sample the UPCR belongs to)."""
    mh, lb = ctx.form("MH"), ctx.form("LB")
    amyloid = set(mh.loc[mh["AMYLOID"].eq("Y").fillna(False).to_numpy(), "SUBJID"].dropna())
    samples = lb[lb["SUBJID"].isin(amyloid).to_numpy() & lb["VISIT"].notna().to_numpy()]
    if samples.empty:
        return _empty("LBDAT")
    upcr = samples[samples["LBTESTCD"].eq("UPCR").fillna(False).to_numpy()]
    done = set(zip(upcr["SUBJID"], upcr["VISIT"], strict=True))
    first = samples.sort_values("LBDAT", kind="stable").drop_duplicates(["SUBJID", "VISIT"])
    missing = first[[(s, v) not in done for s, v in zip(first["SUBJID"], first["VISIT"], strict=True)]]
    out = _point(missing, "LB", "LBTESTCD", LBDAT=_dates(missing["LBDAT"]).dt.strftime("%Y-%m-%d"))
    out["_keys"] = [[visit, "UPCR"] for visit in missing["VISIT"]]
    return out


RULES = [
    subject_not_in_dm,
    subject_prefix_not_site,
    AE_END,
    CM_END,
    EX_END,
    PT_END,
    visits_out_of_sequence,
    date_after_data_cut,
    date_in_future,
    serious_without_criterion,
    grade5_not_fatal,
    value_without_unit,
    mas_without_ae,
    weight_jump,
    diary_fever_not_at_visit,
    ptgh_missing_for_adult,
    upcr_missing_with_amyloidosis,
]
