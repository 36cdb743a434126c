"""Analysis datasets ADSL, ADEFF and ADAE from validated forms (CDISC ADaM in spirit and naming).

The documented entry point is :func:`derive_datasets`::

    from trialkit.adam import derive_datasets
    datasets = derive_datasets(study, {code: form.data for code, form in result.forms.items()})
    datasets["ADSL"], datasets["ADEFF"], datasets["ADAE"]

Each dataset is also available on its own (:func:`derive_adsl`, :func:`derive_adeff`,
:func:`derive_adae`). Every column is labelled: ``frame.attrs["labels"]`` and :data:`LABELS`.
The arm is never shown unless the unblinded randomization list (``RANDNO`` → ``ARM``) is passed.

The datasets are built from the primitives of :mod:`trialkit.derive`; every clinical formula and
threshold is :mod:`trialkit.scores`. Choices the protocol leaves open are listed in each function's
docstring.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from trialkit import derive, scores

__all__ = ["LABELS", "PARAMS", "derive_adae", "derive_adeff", "derive_adsl", "derive_datasets"]

#: Visits at which steroid-taper success is assessed (synopsis, secondary endpoints).
TAPER_VISITS = ("W24", "W52")
ACR_LEVELS = (30, 50, 70, 90, 100)
ADAPTED_LEVELS = (30, 50, 70, 90)
LAB_TESTS = ("ESR", "CRP", "HGB", "PLAT", "FERRITIN")

#: PARAMCD → PARAM (ADEFF), in the order rows are listed within a visit before sorting.
PARAMS: dict[str, str] = {
    "PHGA": "Physician global assessment of disease activity (0-10)",
    "PAGA": "Parent/patient global assessment of well-being (0-10)",
    "CHAQ": "CHAQ/HAQ disability index (0-3)",
    "AJC71": "Active joint count, 71 joints",
    "AJC27": "Active joint count, 27 joints",
    "LOMC": "Joints with limited range of motion, 71 joints",
    "ESR": "Erythrocyte sedimentation rate (mm/h)",
    "CRP": "C-reactive protein (mg/L)",
    "JADAS10": "JADAS-10",
    "JADAS27": "JADAS-27",
    "JADAS71": "JADAS-71",
    "CJADAS10": "Clinical JADAS-10",
    "SJADAS10": "Systemic JADAS-10",
    "DAS28ESR": "DAS28-ESR",
    "DAS28CRP": "DAS28-CRP",
    "EULAR": "EULAR response on DAS28-ESR",
    **{f"ACRP{level}": f"ACR Pedi {level} response" for level in ACR_LEVELS},
    **{f"AACRP{level}": f"Adapted ACR Pedi {level} response" for level in ADAPTED_LEVELS},
    "FEVFREE": "Fever-free on days V-7..V-1",
    "PREDMGKG": "Prednisone-equivalent dose (mg/kg/day)",
    "TAPER": "Corticosteroid taper success",
    "CID": "Clinical inactive disease",
}
NUMERIC_PARAMS = (
    "PHGA", "PAGA", "CHAQ", "AJC71", "AJC27", "LOMC", "ESR", "CRP", "JADAS10", "JADAS27",
    "JADAS71", "CJADAS10", "SJADAS10", "DAS28ESR", "DAS28CRP", "PREDMGKG",
)
PRIMARY_PARAM = "AACRP30"

LABELS: dict[str, dict[str, str]] = {
    "ADSL": {
        "STUDYID": "Study Identifier",
        "USUBJID": "Unique Subject Identifier",
        "SUBJID": "Subject Identifier for the Study",
        "SITEID": "Study Site Identifier",
        "AGE": "Age at Day 1 (years)",
        "AGEU": "Age Units",
        "AGEGR1": "Age Group at Day 1 (PEDI <18, ADULT 18+)",
        "SEX": "Sex",
        "WEIGHTBL": "Weight at Day 1 (kg)",
        "DURDIS": "Disease Duration at Day 1 (years)",
        "RANDFL": "Randomized Population Flag",
        "SAFFL": "Safety Population Flag (any dose)",
        "PPROTFL": "Per-Protocol Population Flag",
        "TRTSDT": "Date of First Exposure to Treatment",
        "TRTEDT": "Date of Last Exposure to Treatment",
        "PARTACFL": "Completed Part A Flag",
        "PARTBCFL": "Completed Part B Flag",
        "DSDECOD": "Standardized Disposition Term",
        "DSSTDT": "Disposition Date",
        "RESPW4": "Primary Response at W4 (adapted ACR30)",
        "RESPW4IM": "Primary Response Imputed (NRI) Flag",
        "ARM": "Description of Planned Arm (unblinded)",
    },
    "ADEFF": {
        "STUDYID": "Study Identifier",
        "USUBJID": "Unique Subject Identifier",
        "SUBJID": "Subject Identifier for the Study",
        "SITEID": "Study Site Identifier",
        "AGEGR1": "Age Group at Day 1",
        "PARAMCD": "Parameter Code",
        "PARAM": "Parameter",
        "AVISIT": "Analysis Visit",
        "AVISITN": "Analysis Visit (N)",
        "ADT": "Analysis Date",
        "ADY": "Analysis Relative Day",
        "AVAL": "Analysis Value",
        "AVALC": "Analysis Value (C)",
        "ABLFL": "Baseline Record Flag",
        "BASE": "Baseline Value (Day 1)",
        "CHG": "Change from Baseline",
        "PCHG": "Percent Change from Baseline",
        "CRIT1": "Analysis Criterion 1",
        "CRIT1FL": "Criterion 1 Evaluation Result Flag",
        "AVALCNRI": "Analysis Value (C), NRI Imputed",
        "NRIFL": "Non-responder Imputation Flag",
    },
    "ADAE": {
        "STUDYID": "Study Identifier",
        "USUBJID": "Unique Subject Identifier",
        "SUBJID": "Subject Identifier for the Study",
        "SITEID": "Study Site Identifier",
        "AETERM": "Reported Term for the Adverse Event",
        "ASTDT": "Analysis Start Date",
        "AENDT": "Analysis End Date",
        "ASTDY": "Analysis Start Relative Day",
        "ADURN": "Analysis Duration (days)",
        "TRTEMFL": "Treatment Emergent Analysis Flag",
        "AESI": "Adverse Event of Special Interest",
        "AESER": "Serious Event",
        "AETOXGR": "Standard Toxicity Grade (CTCAE v5.0)",
        "AEREL": "Causality",
        "AEOUT": "Outcome of Adverse Event",
    },
}

_FORM_COLUMNS: dict[str, tuple[str, ...]] = {
    "DM": ("SITEID", "SUBJID", "ICDAT", "BRTHYM", "SEX"),
    "MH": ("SITEID", "SUBJID", "ONSETYM"),
    "RAND": ("SITEID", "SUBJID", "RANDNO", "RANDDAT", "STRATUM"),
    "VS": ("SITEID", "SUBJID", "VISIT", "VSDAT", "WEIGHT", "TEMP"),
    "CORE": ("SITEID", "SUBJID", "VISIT", "CSDAT", "PHGA", "PAGA", "PTGH", "JADONE", "FEVER",
             "RASH", "LYMPH", "HEPSPL", "SEROS"),
    "JA": ("SITEID", "SUBJID", "VISIT", "JADAT", "JOINT", "SWOLLEN", "TENDER", "LOM"),
    "CHAQ": ("SITEID", "SUBJID", "VISIT", "QSDAT"),
    "FEVER": ("SITEID", "SUBJID", "FVDAT", "FVTEMP"),
    "LB": ("SITEID", "SUBJID", "VISIT", "LBDAT", "LBTESTCD", "LBSTRESN", "LBSTNRHI"),
    "EX": ("SITEID", "SUBJID", "EXSTDAT", "EXENDAT", "EXDOSE", "EXMISS"),
    "CM": ("SITEID", "SUBJID", "CMTRT", "CMDOSE", "CMDOSU", "CMFRQ", "CMROUTE", "CMSTDAT",
           "CMENDAT", "CMONGO"),
    "AE": ("SITEID", "SUBJID", "AETERM", "AESTDAT", "AEENDAT", "AEONGO", "AETOXGR", "AESER",
           "AEREL", "AEOUT", "AESI"),
    "DS": ("SITEID", "SUBJID", "DSDECOD", "DSSTDAT", "DSPART"),
}
_DATE_COLUMNS = {"ICDAT", "RANDDAT", "VSDAT", "CSDAT", "JADAT", "QSDAT", "FVDAT", "LBDAT",
                 "EXSTDAT", "EXENDAT", "AESTDAT", "AEENDAT", "DSSTDAT"}


# ------------------------------------------------------------------------------------------------
# Helpers


def _form(forms: Mapping[str, Any], code: str) -> pd.DataFrame:
    """The typed frame of a form (a FormData or a DataFrame); an empty typed frame when absent."""
    value = forms.get(code)
    frame = getattr(value, "data", value)
    if frame is None:
        frame = pd.DataFrame()
    frame = frame.copy()
    for column in _FORM_COLUMNS.get(code, ()):
        if column not in frame.columns:
            frame[column] = pd.Series(
                pd.NaT if column in _DATE_COLUMNS else None,
                index=frame.index,
                dtype="datetime64[ns]" if column in _DATE_COLUMNS else object,
            )
    for column in _DATE_COLUMNS & set(frame.columns):
        frame[column] = pd.to_datetime(frame[column], errors="coerce")
    return frame


def _apply_data_cut(forms: Mapping[str, Any], data_cut: Any) -> dict[str, pd.DataFrame]:
    """Each form's frame; with a data cut, records whose first date column is after it are dropped."""
    frames = {code: _form(forms, code) for code in set(forms) | set(_FORM_COLUMNS)}
    if data_cut is None:
        return frames
    cut = pd.Timestamp(data_cut)
    for code, frame in frames.items():
        dates = [c for c in frame.columns if pd.api.types.is_datetime64_any_dtype(frame[c])]
        if dates and code not in ("DM", "MH"):
            frames[code] = frame[~(frame[dates[0]] > cut).fillna(False).to_numpy()]
    return frames


def _label(frame: pd.DataFrame, dataset: str) -> pd.DataFrame:
    labels = LABELS[dataset]
    frame.attrs["labels"] = {column: labels.get(column, column) for column in frame.columns}
    return frame


def _usubjid(study: Any, subjid: pd.Series) -> pd.Series:
    # SUBJID is SS-NNN (site, subject number), so STUDYID-SUBJID is study-site-subject.
    return f"{study.id}-" + subjid.astype(str)


def _yn(value: bool | None) -> str:
    """A three-valued result as AVALC: "Y", "N", or "" when undetermined."""
    return "" if value is None else ("Y" if value else "N")


def _num(value: Any) -> float:
    return np.nan if value is None or (not isinstance(value, str) and pd.isna(value)) else float(value)


def _baseline_visit(study: Any) -> str:
    """The baseline visit: the first-dose visit with target day 1 (D1)."""
    for visit in study.visits.values():
        if visit.anchor == "first_dose" and visit.target_day == 1:
            return visit.code
    return "D1"


def _primary_visit(study: Any) -> str:
    for visit in study.visits.values():
        if visit.primary:
            return visit.code
    return "W4"


def _lookup(keys: pd.Series, table: pd.Series) -> pd.Series:
    """``table[key]`` for each key (NA when absent), keeping ``keys``' index and ``table``'s dtype."""
    table = table[~table.index.duplicated()]
    return pd.Series(table.reindex(keys.to_numpy()).to_numpy(), index=keys.index, dtype=table.dtype)


def _first(frame: pd.DataFrame, keys: list[str], order: str) -> pd.DataFrame:
    return frame.sort_values(order, kind="stable").drop_duplicates(keys, keep="first")


# ------------------------------------------------------------------------------------------------
# ADSL


def derive_adsl(
    study: Any,
    forms: Mapping[str, Any],
    *,
    randlist: pd.DataFrame | None = None,
    deviations: pd.DataFrame | None = None,
    data_cut: Any = None,
    adeff: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Subject-level analysis dataset: one row per subject (DM, RAND and EX subjects), by USUBJID.

    - AGE at D1 (first dose) from BRTHYM, birth on the 15th; no dose → at RANDDAT. AGEGR1 = ADULT
      when AGE ≥ ``study.adult_age_years``, PEDI below; a subject with no age takes the RAND stratum.
    - WEIGHTBL = latest weight on or before D1; DURDIS = years from onset (15th) to D1.
    - RANDFL = has a RANDNO; SAFFL = any dose > 0; PPROTFL = "N" with a major deviation in
      ``deviations`` (columns SUBJID and a class column: ``class``/``_class``/``deviation_class``/
      ``DVCLASS``), or when not randomized or not dosed; NA when ``deviations`` is not given.
    - PARTACFL = "Y" when DS says Part B or COMPLETED, or (no DS) a primary-visit (W4) record
      exists; PARTBCFL = "Y" when DS says COMPLETED.
    - RESPW4 / RESPW4IM: the primary parameter (AACRP30) at the primary visit with undetermined
      imputed as non-responder, and the imputation flag (from ``adeff``, derived when not given).
    - ARM only when ``randlist`` (RANDNO → ARM) is given.
    """
    frames = _apply_data_cut(forms, data_cut)
    adsl = _adsl_core(study, frames, deviations)
    if adeff is None:
        adeff = _derive_adeff(study, frames, adsl)
    primary = adeff[(adeff["PARAMCD"] == PRIMARY_PARAM) & (adeff["AVISIT"] == _primary_visit(study))]
    primary = primary.drop_duplicates("SUBJID").set_index("SUBJID")
    adsl["RESPW4"] = _lookup(adsl["SUBJID"], primary["AVALCNRI"]).astype(object)
    adsl["RESPW4IM"] = _lookup(adsl["SUBJID"], primary["NRIFL"]).astype(object)
    if randlist is not None:
        arms = randlist.drop_duplicates("RANDNO").set_index("RANDNO")["ARM"]
        rand = frames["RAND"].drop_duplicates("SUBJID").set_index("SUBJID")["RANDNO"]
        adsl["ARM"] = _lookup(adsl["SUBJID"], rand).map(arms).astype(object)
    return _label(adsl.reset_index(drop=True), "ADSL")


def _major_subjects(deviations: pd.DataFrame) -> set[str]:
    for column in ("class", "_class", "deviation_class", "CLASS", "DVCLASS"):
        if column in deviations.columns:
            major = deviations[column].astype("string").str.strip().str.lower().eq("major")
            return set(deviations.loc[major.fillna(False).to_numpy(), "SUBJID"])
    raise ValueError(
        "deviations: no class column (class, _class, deviation_class, CLASS or DVCLASS) saying "
        "major/minor; pass the deviations with their class"
    )


def _adsl_core(study: Any, frames: Mapping[str, pd.DataFrame], deviations: pd.DataFrame | None) -> pd.DataFrame:
    dm, mh, rand, ex, vs, ds = (frames[c] for c in ("DM", "MH", "RAND", "EX", "VS", "DS"))
    subjects = sorted(
        set(dm["SUBJID"].dropna()) | set(rand["SUBJID"].dropna()) | set(ex["SUBJID"].dropna())
    )
    adsl = pd.DataFrame({"SUBJID": pd.Series(subjects, dtype=object)})
    adsl.insert(0, "STUDYID", study.id)
    adsl.insert(1, "USUBJID", _usubjid(study, adsl["SUBJID"]))
    dm1 = dm.drop_duplicates("SUBJID").set_index("SUBJID")
    site = _lookup(adsl["SUBJID"], dm1["SITEID"]).astype(object)
    adsl["SITEID"] = site.where(site.notna(), adsl["SUBJID"].str.split("-").str[0])

    first = derive.derive_first_dose(ex) if len(ex) else pd.DataFrame(columns=["SUBJID", "TRTSDT", "TRTEDT", "D1"])
    first = first.set_index("SUBJID")
    rand1 = rand.sort_values("RANDDAT").drop_duplicates("SUBJID").set_index("SUBJID")
    d1 = pd.to_datetime(_lookup(adsl["SUBJID"], first["D1"]), errors="coerce")
    age_date = d1.fillna(pd.to_datetime(_lookup(adsl["SUBJID"], rand1["RANDDAT"]), errors="coerce"))
    adsl["AGE"] = derive.compute_age_at(_lookup(adsl["SUBJID"], dm1["BRTHYM"]).astype(object), age_date)
    adsl["AGEU"] = "YEARS"
    adult = int(study.param("study", "adult_age_years", default=18))
    group = np.where(adsl["AGE"].isna(), None, np.where(adsl["AGE"].fillna(0) >= adult, "ADULT", "PEDI"))
    stratum = _lookup(adsl["SUBJID"], rand1["STRATUM"]).astype(object)
    adsl["AGEGR1"] = pd.Series(group, dtype=object).where(pd.Series(group).notna(), stratum)
    adsl["SEX"] = _lookup(adsl["SUBJID"], dm1["SEX"]).astype(object)
    weights = derive.derive_weight_on(vs, pd.DataFrame({"SUBJID": adsl["SUBJID"], "D1": d1}), "D1")
    adsl["WEIGHTBL"] = weights["WEIGHT"].to_numpy()
    mh1 = mh.drop_duplicates("SUBJID").set_index("SUBJID")
    adsl["DURDIS"] = derive.compute_duration_years(
        _lookup(adsl["SUBJID"], mh1["ONSETYM"]).astype(object), d1
    ).round(2)
    randomized = _lookup(adsl["SUBJID"], rand1["RANDNO"]).notna()
    dosed = d1.notna()
    adsl["RANDFL"] = np.where(randomized, "Y", "N")
    adsl["SAFFL"] = np.where(dosed, "Y", "N")
    if deviations is None:
        adsl["PPROTFL"] = pd.Series([None] * len(adsl), dtype=object)
    else:
        major = _major_subjects(deviations)
        ok = randomized & dosed & ~adsl["SUBJID"].isin(major)
        adsl["PPROTFL"] = np.where(ok, "Y", "N")
    adsl["TRTSDT"] = d1.to_numpy()
    adsl["TRTEDT"] = pd.to_datetime(_lookup(adsl["SUBJID"], first["TRTEDT"]), errors="coerce").to_numpy()

    ds1 = ds.sort_values("DSSTDAT").drop_duplicates("SUBJID", keep="last").set_index("SUBJID")
    decod = _lookup(adsl["SUBJID"], ds1["DSDECOD"]).astype(object)
    part = _lookup(adsl["SUBJID"], ds1["DSPART"]).astype(object)
    primary = _primary_visit(study)
    seen_primary = set()
    for code in ("CORE", "VS", "CHAQ", "LB"):
        frame = frames[code]
        seen_primary |= set(frame.loc[frame["VISIT"].astype("string").eq(primary).fillna(False).to_numpy(), "SUBJID"])
    completed = decod.eq("COMPLETED")
    has_ds = decod.notna()
    adsl["PARTACFL"] = np.where(
        completed | part.eq("B") | (~has_ds & adsl["SUBJID"].isin(seen_primary) & dosed), "Y", "N"
    )
    adsl["PARTBCFL"] = np.where(completed, "Y", "N")
    adsl["DSDECOD"] = decod
    adsl["DSSTDT"] = pd.to_datetime(_lookup(adsl["SUBJID"], ds1["DSSTDAT"]), errors="coerce").to_numpy()
    return adsl.sort_values("USUBJID", kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------------------------------------
# ADEFF


def derive_adeff(
    study: Any,
    forms: Mapping[str, Any],
    *,
    adsl: pd.DataFrame | None = None,
    data_cut: Any = None,
) -> pd.DataFrame:
    """Efficacy analysis dataset: one row per subject, visit and parameter (:data:`PARAMS`).

    Decisions where the protocol is silent:

    - AVISIT is the nominal CRF visit (CORE, CHAQ, LB ESR/CRP records; UNS excluded); the window
      check is PD-07's business. Every randomized or dosed subject gets the primary visit (W4) even
      without data, so that the primary response can be imputed.
    - ADT is the date of the record a value comes from (CSDAT for CORE values and composites,
      falling back to QSDAT / LBDAT / VSDAT when CORE is missing); ADY its study day.
    - Baseline = the D1 record (ABLFL = "Y"); BASE/CHG/PCHG for numeric parameters; PCHG rounded
      to 2 decimals; CHG exact.
    - Responses (ACRP*, AACRP*, FEVFREE, TAPER, CID): AVAL 1/0, AVALC "Y"/"N", "" when
      undetermined. ACRP/AACRP/EULAR only after D1. ACR Pedi is computed for everyone; the adapted
      response uses ACR Pedi for PEDI and EULAR good/moderate (DAS28-ESR) for ADULT; DAS28/EULAR
      only for ADULT. EULAR: AVALC good/moderate/none, CRIT1FL = good or moderate.
    - AACRP30 (primary) rows also carry AVALCNRI (undetermined → "N") and NRIFL.
    - FEVFREE uses the diary V−7..V−1 before the visit date; sJADAS-10 fever T = diary maximum
      there, else the VS TEMP of the visit.
    - PREDMGKG on the visit date; TAPER at W24/W52 with s = D1 dose, response held = AACRP30 at
      that visit; subjects with no steroid at D1 (s = 0 or missing) get no TAPER row.
    """
    frames = _apply_data_cut(forms, data_cut)
    if adsl is None:
        adsl = _adsl_core(study, frames, None)
    return _derive_adeff(study, frames, adsl)


def _lab_wide(lb: pd.DataFrame) -> pd.DataFrame:
    """One row per (SUBJID, VISIT): value, ULN and date of each test in LAB_TESTS."""
    tests = lb[lb["LBTESTCD"].isin(LAB_TESTS).fillna(False).to_numpy()].copy()
    tests["LBSTRESN"] = pd.to_numeric(tests["LBSTRESN"], errors="coerce")
    tests = tests[tests["LBSTRESN"].notna().to_numpy()]
    tests = _first(tests, ["SUBJID", "VISIT", "LBTESTCD"], "LBDAT")
    wide = pd.DataFrame(index=pd.MultiIndex.from_tuples([], names=["SUBJID", "VISIT"]))
    if len(tests):
        indexed = tests.set_index(["SUBJID", "VISIT", "LBTESTCD"])
        wide = indexed["LBSTRESN"].unstack("LBTESTCD")
        uln = indexed["LBSTNRHI"].unstack("LBTESTCD").add_suffix("HI")
        dates = indexed["LBDAT"].unstack("LBTESTCD").add_suffix("DT")
        wide = wide.join(uln).join(dates)
    for test in LAB_TESTS:
        for suffix in ("", "HI", "DT"):
            if test + suffix not in wide.columns:
                wide[test + suffix] = pd.NaT if suffix == "DT" else np.nan
    return wide


def _visit_table(study: Any, frames: Mapping[str, pd.DataFrame], adsl: pd.DataFrame) -> pd.DataFrame:
    """One row per (SUBJID, VISIT) with everything the parameters need."""
    core, chaq, lb, vs = frames["CORE"], frames["CHAQ"], frames["LB"], frames["VS"]
    usable = {code for code, v in study.visits.items() if v.scheduled and v.anchor != "none"}
    keys = set()
    for frame in (core, chaq, lb[lb["LBTESTCD"].isin(["ESR", "CRP"]).fillna(False).to_numpy()]):
        keys |= {(s, v) for s, v in zip(frame["SUBJID"], frame["VISIT"], strict=True) if v in usable}
    primary = _primary_visit(study)
    eligible = adsl.loc[(adsl["RANDFL"].eq("Y") | adsl["SAFFL"].eq("Y")).to_numpy(), "SUBJID"]
    keys |= {(s, primary) for s in eligible}
    keys = {(s, v) for s, v in keys if s in set(adsl["SUBJID"])}
    table = pd.DataFrame(sorted(keys), columns=["SUBJID", "VISIT"])
    table["AVISITN"] = table["VISIT"].map({c: v.num for c, v in study.visits.items()}).astype("Int64")

    core1 = _first(core[core["VISIT"].isin(usable).fillna(False).to_numpy()], ["SUBJID", "VISIT"], "CSDAT")
    if len(core1):
        core1 = derive.derive_joint_counts(frames["JA"], core1, study=study)
    else:
        for name in ("AJC71", "AJC27", "LOMC", "TJC28", "SJC28"):
            core1[name] = pd.Series(dtype="Int64")
    core_cols = ["CSDAT", "PHGA", "PAGA", "PTGH", "JADONE", "FEVER", "RASH", "LYMPH", "HEPSPL",
                 "SEROS", "AJC71", "AJC27", "LOMC", "TJC28", "SJC28"]
    table = table.merge(core1[["SUBJID", "VISIT", *core_cols]], on=["SUBJID", "VISIT"], how="left")

    chaq1 = _first(chaq[chaq["VISIT"].isin(usable).fillna(False).to_numpy()], ["SUBJID", "VISIT"], "QSDAT")
    chaq1 = derive.derive_chaq_di(chaq1) if len(chaq1) else chaq1.assign(CHAQDI=pd.Series(dtype=float))
    table = table.merge(chaq1[["SUBJID", "VISIT", "QSDAT", "CHAQDI"]], on=["SUBJID", "VISIT"], how="left")

    labs = _lab_wide(lb).reset_index()
    table = table.merge(labs, on=["SUBJID", "VISIT"], how="left")
    vs1 = _first(vs[vs["VISIT"].isin(usable).fillna(False).to_numpy()], ["SUBJID", "VISIT"], "VSDAT")
    table = table.merge(vs1[["SUBJID", "VISIT", "VSDAT", "TEMP"]], on=["SUBJID", "VISIT"], how="left")

    visit_date = table["CSDAT"]
    for column in ("QSDAT", "ESRDT", "CRPDT", "VSDAT"):
        visit_date = visit_date.fillna(pd.to_datetime(table[column], errors="coerce"))
    table["VDATE"] = pd.to_datetime(visit_date, errors="coerce")

    fever = derive.derive_fever_free(frames["FEVER"], table[["SUBJID", "VISIT", "VDATE"]], date_col="VDATE")
    table["FEVFREE"] = fever["FEVFREE"].to_numpy()
    table["MAXTEMP"] = fever["MAXTEMP"].to_numpy()
    steroid = derive.derive_prednisone_equivalent(
        frames["CM"], vs, table[["SUBJID"]].assign(DATE=table["VDATE"]), study=study
    )
    table["PREDMGKG"] = steroid["PREDMGKG"].to_numpy()
    agegr = adsl.set_index("SUBJID")["AGEGR1"]
    d1 = adsl.set_index("SUBJID")["TRTSDT"]
    table["AGEGR1"] = _lookup(table["SUBJID"], agegr)
    table["D1"] = pd.to_datetime(_lookup(table["SUBJID"], d1), errors="coerce")
    return table


def _value(row: Any, name: str) -> Any:
    value = getattr(row, name)
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else value


def _derive_adeff(study: Any, frames: Mapping[str, pd.DataFrame], adsl: pd.DataFrame) -> pd.DataFrame:
    table = _visit_table(study, frames, adsl)
    baseline_visit = _baseline_visit(study)
    baseline_num = study.visits[baseline_visit].num if baseline_visit in study.visits else 1
    primary = _primary_visit(study)
    base_rows = {row.SUBJID: row for row in table[table["VISIT"] == baseline_visit].itertuples(index=False)}

    records: list[dict[str, Any]] = []

    def core_set(row: Any) -> dict[str, Any]:
        return {
            "phga": _value(row, "PHGA"), "paga": _value(row, "PAGA"), "chaq": _value(row, "CHAQDI"),
            "ajc": _value(row, "AJC71"), "lom": _value(row, "LOMC"), "esr": _value(row, "ESR"),
        }

    def das28(row: Any | None, kind: str) -> Decimal | None:
        if row is None:
            return None
        if kind == "ESR":
            return scores.das28_esr(_value(row, "TJC28"), _value(row, "SJC28"), _value(row, "ESR"), gh=_value(row, "PTGH"))
        return scores.das28_crp(_value(row, "TJC28"), _value(row, "SJC28"), _value(row, "CRP"), gh=_value(row, "PTGH"))

    for row in table.itertuples(index=False):
        adult = row.AGEGR1 == "ADULT"
        base = base_rows.get(row.SUBJID)
        post = pd.notna(row.AVISITN) and int(row.AVISITN) > baseline_num
        core_date = row.CSDAT if pd.notna(row.CSDAT) else row.VDATE

        def add(paramcd: str, aval: Any = None, avalc: Any = None, adt: Any = core_date,
                crit: tuple[str, str] | None = None, nri: bool | None = None, _row: Any = row) -> None:
            record = {
                "SUBJID": _row.SUBJID, "PARAMCD": paramcd, "AVISIT": _row.VISIT,
                "AVISITN": _row.AVISITN, "ADT": adt if pd.notna(adt) else _row.VDATE,
                "AVAL": _num(aval), "AVALC": avalc,
            }
            if crit is not None:
                record["CRIT1"], record["CRIT1FL"] = crit
            if nri is not None:
                record["AVALCNRI"] = "Y" if avalc == "Y" else "N"
                record["NRIFL"] = "Y" if avalc == "" else "N"
            records.append(record)

        def response(paramcd: str, result: bool | None, nri: bool | None = None) -> None:
            add(paramcd, None if result is None else int(result), _yn(result), nri=nri)

        values = {
            "PHGA": (_value(row, "PHGA"), row.CSDAT),
            "PAGA": (_value(row, "PAGA"), row.CSDAT),
            "CHAQ": (_value(row, "CHAQDI"), row.QSDAT),
            "AJC71": (_value(row, "AJC71"), row.CSDAT),
            "AJC27": (_value(row, "AJC27"), row.CSDAT),
            "LOMC": (_value(row, "LOMC"), row.CSDAT),
            "ESR": (_value(row, "ESR"), row.ESRDT),
            "CRP": (_value(row, "CRP"), row.CRPDT),
        }
        phga, paga, ajc71, ajc27, esr = (values[k][0] for k in ("PHGA", "PAGA", "AJC71", "AJC27", "ESR"))
        msms = scores.msms(
            _value(row, "MAXTEMP") if _value(row, "MAXTEMP") is not None else _value(row, "TEMP"),
            _value(row, "RASH"), _value(row, "LYMPH"), _value(row, "HEPSPL"), _value(row, "SEROS"),
            _value(row, "HGB"), _value(row, "PLAT"), _value(row, "FERRITIN"),
        )
        values["JADAS10"] = (scores.jadas(phga, paga, ajc71, np.nan if esr is None else esr, cap=10), core_date)
        values["JADAS27"] = (scores.jadas(phga, paga, ajc27, np.nan if esr is None else esr), core_date)
        values["JADAS71"] = (scores.jadas(phga, paga, ajc71, np.nan if esr is None else esr), core_date)
        values["CJADAS10"] = (scores.jadas(phga, paga, ajc71, cap=10), core_date)
        values["SJADAS10"] = (scores.sjadas10(phga, paga, ajc71, esr, msms), core_date)
        for paramcd, (aval, adt) in values.items():
            add(paramcd, aval, adt=adt)
        eular = None
        if adult:
            add("DAS28ESR", das28(row, "ESR"))
            add("DAS28CRP", das28(row, "CRP"))
            if post:
                eular = scores.eular_response(das28(base, "ESR"), das28(row, "ESR"))
                good_moderate = None if eular is None else eular in ("good", "moderate")
                add("EULAR", None, eular or "", crit=("EULAR good or moderate response", _yn(good_moderate)))
        adapted: dict[int, bool | None] = {}
        if post:
            baseline = core_set(base) if base is not None else {}
            followup = core_set(row)
            crp_ok = scores.acute_phase_ok(
                _value(base, "CRP") if base is not None else None, _value(row, "CRP"), _value(row, "CRPHI")
            )
            esr_ok = scores.acute_phase_ok(
                _value(base, "ESR") if base is not None else None, _value(row, "ESR"), _value(row, "ESRHI")
            )
            fever_free = _value(row, "FEVFREE")
            for level in ACR_LEVELS:
                acr = scores.acr_pedi(baseline, followup, level)
                response(f"ACRP{level}", acr)
                if level in ADAPTED_LEVELS:
                    first_part = acr
                    if adult:
                        first_part = None if eular is None else eular in ("good", "moderate")
                    adapted[level] = scores.adapted_acr_pedi(first_part, fever_free, crp_ok, esr_ok)
                    paramcd = f"AACRP{level}"
                    is_primary = paramcd == PRIMARY_PARAM and row.VISIT == primary
                    response(paramcd, adapted[level], nri=True if is_primary else None)
        ff = _value(row, "FEVFREE")
        response("FEVFREE", None if ff is None else bool(ff))
        add("PREDMGKG", _value(row, "PREDMGKG"), adt=row.VDATE)
        if row.VISIT in TAPER_VISITS and base is not None:
            start = _value(base, "PREDMGKG")
            if start is not None and start > 0:
                held = adapted.get(30)
                response("TAPER", scores.taper_success(start, _value(row, "PREDMGKG"), response_held=held))
        response(
            "CID",
            scores.clinical_inactive_disease(
                ajc71, _value(row, "FEVER"), _value(row, "RASH"), _value(row, "SEROS"),
                _value(row, "HEPSPL"), _value(row, "LYMPH"), esr, _value(row, "ESRHI"),
                _value(row, "CRP"), _value(row, "CRPHI"), phga,
            ),
        )

    columns = list(LABELS["ADEFF"])
    adeff = pd.DataFrame.from_records(records)
    if adeff.empty:
        adeff = pd.DataFrame(columns=["SUBJID", "PARAMCD", "AVISIT", "AVISITN", "ADT", "AVAL", "AVALC"])
    for column in ("CRIT1", "CRIT1FL", "AVALCNRI", "NRIFL"):
        if column not in adeff.columns:
            adeff[column] = None
    adeff["ADT"] = pd.to_datetime(adeff["ADT"], errors="coerce")
    adeff["AVISITN"] = pd.array(adeff["AVISITN"], dtype="Int64")
    adeff["AVAL"] = adeff["AVAL"].astype(float)
    info = adsl.set_index("SUBJID")
    adeff["STUDYID"] = study.id
    adeff["USUBJID"] = _lookup(adeff["SUBJID"], info["USUBJID"])
    adeff["SITEID"] = _lookup(adeff["SUBJID"], info["SITEID"])
    adeff["AGEGR1"] = _lookup(adeff["SUBJID"], info["AGEGR1"])
    adeff["PARAM"] = adeff["PARAMCD"].map(PARAMS)
    adeff["ADY"] = derive.compute_study_day(adeff["ADT"], _lookup(adeff["SUBJID"], info["TRTSDT"]))
    _add_change(adeff, baseline_visit)
    adeff = adeff[columns].sort_values(["USUBJID", "AVISITN", "PARAMCD"], kind="stable")
    return _label(adeff.reset_index(drop=True), "ADEFF")


def _add_change(adeff: pd.DataFrame, baseline_visit: str) -> None:
    """ABLFL, BASE, CHG (exact) and PCHG (2 decimals) for the numeric parameters, in place."""
    numeric = adeff["PARAMCD"].isin(NUMERIC_PARAMS)
    is_base = (adeff["AVISIT"] == baseline_visit) & numeric
    adeff["ABLFL"] = np.where(is_base & adeff["AVAL"].notna(), "Y", None)
    base = adeff[is_base].drop_duplicates(["SUBJID", "PARAMCD"]).set_index(["SUBJID", "PARAMCD"])["AVAL"]
    keys = pd.MultiIndex.from_arrays([adeff["SUBJID"], adeff["PARAMCD"]])
    adeff["BASE"] = np.where(numeric, base.reindex(keys).to_numpy(), np.nan).astype(float)
    changes: list[float] = []
    percents: list[float] = []
    for aval, b, is_numeric in zip(adeff["AVAL"], adeff["BASE"], numeric, strict=True):
        if not is_numeric or pd.isna(aval) or pd.isna(b):
            changes.append(np.nan)
            percents.append(np.nan)
            continue
        change = scores.to_decimal(aval) - scores.to_decimal(b)
        changes.append(float(change))
        percent = scores.percent_change(b, aval, places=2)
        percents.append(np.nan if percent is None else float(percent))
    adeff["CHG"] = changes
    adeff["PCHG"] = percents


# ------------------------------------------------------------------------------------------------
# ADAE


def derive_adae(study: Any, forms: Mapping[str, Any], *, data_cut: Any = None) -> pd.DataFrame:
    """Adverse-event analysis dataset: one row per AE, sorted by USUBJID, ASTDT, AETERM.

    TRTEMFL = "Y" when onset is on or after the first dose (else blank, ADaM convention); ASTDY the
    study day of onset; ADURN = end − start + 1 days (blank while ongoing); the other columns as
    collected.
    """
    frames = _apply_data_cut(forms, data_cut)
    ae, ex = frames["AE"], frames["EX"]
    first = derive.derive_first_dose(ex) if len(ex) else pd.DataFrame(columns=["SUBJID", "TRTSDT", "TRTEDT", "D1"])
    adae = derive.derive_teae(ae, first)
    adae["STUDYID"] = study.id
    adae["USUBJID"] = _usubjid(study, adae["SUBJID"])
    adae["ASTDT"] = adae["AESTDAT"]
    adae["AENDT"] = adae["AEENDAT"]
    adae["AETOXGR"] = pd.array(pd.to_numeric(adae["AETOXGR"], errors="coerce"), dtype="Int64")
    adae = adae[list(LABELS["ADAE"])].sort_values(["USUBJID", "ASTDT", "AETERM"], kind="stable")
    return _label(adae.reset_index(drop=True), "ADAE")


# ------------------------------------------------------------------------------------------------
# Entry point


def derive_datasets(
    study: Any,
    forms: Mapping[str, pd.DataFrame],
    *,
    randlist: pd.DataFrame | None = None,
    deviations: pd.DataFrame | None = None,
    data_cut: Any = None,
) -> dict[str, pd.DataFrame]:
    """The analysis datasets ``ADSL``, ``ADEFF`` and ``ADAE`` from validated forms.

    ``forms`` maps form codes to typed frames (``FormData.data``; a ``FormData`` is accepted too).
    ``randlist`` (``RANDNO``, ``ARM``) adds the unblinded ``ARM`` to ADSL — without it there is no
    ARM column at all. ``deviations`` (SUBJID and the deviation class) sets PPROTFL. With
    ``data_cut``, records dated after it are left out.

    >>> from trialkit.study import load_study
    >>> datasets = derive_datasets(load_study(), {})
    >>> sorted(datasets), len(datasets["ADSL"])
    (['ADAE', 'ADEFF', 'ADSL'], 0)
    """
    frames = _apply_data_cut(forms, data_cut)
    core = _adsl_core(study, frames, deviations)
    adeff = _derive_adeff(study, frames, core)
    adsl = derive_adsl(study, frames, randlist=randlist, deviations=deviations, adeff=adeff)
    adae = derive_adae(study, frames)
    return {"ADSL": adsl, "ADEFF": adeff, "ADAE": adae}
