"""Helpers shared by ANK-SJIA-01's analysis programs: the forms they read, the metadata of every
dataset they write (labels, origins, derivations, codelists), lookups.

The programs (``adsl.py``, ``adeff.py``, ``adae.py``, ``adlb.py``, ``adtte.py``) are this study's own
code: they read the forms by this trial's variable names and build the datasets from the generic
primitives of :mod:`trialkit.derive` and this folder's :mod:`.derivations`. What each variable is —
its label, origin and derivation — is declared once here (:data:`VARIABLES`) and attached to the
frame (:func:`label`) as a :class:`trialkit.metadata.DatasetMeta`, from which the pool writes
define.xml, the codebook and the value labels of SAS, SPSS and Stata files.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from trialkit.metadata import DatasetMeta, ParameterMeta, VariableMeta, attach

#: Dataset labels (at most 40 bytes: SAS transport).
DATASET_LABELS = {
    "ADSL": "Subject-Level Analysis Dataset",
    "ADEFF": "Efficacy Analysis Dataset",
    "ADAE": "Adverse Events Analysis Dataset",
    "ADLB": "Laboratory Analysis Dataset",
    "ADTTE": "Time-to-Event Analysis Dataset",
}

#: ADaM class, structure and keys of each dataset.
DATASET_INFO: dict[str, dict[str, Any]] = {
    "ADSL": {"adam_class": "SUBJECT LEVEL ANALYSIS DATASET", "structure": "One record per subject",
             "keys": ("STUDYID", "USUBJID")},
    "ADEFF": {"adam_class": "BASIC DATA STRUCTURE",
              "structure": "One record per subject, parameter and analysis visit",
              "keys": ("STUDYID", "USUBJID", "PARAMCD", "AVISITN", "DTYPE")},
    "ADAE": {"adam_class": "OCCURRENCE DATA STRUCTURE", "subclass": "ADVERSE EVENT",
             "structure": "One record per adverse event", "keys": ("STUDYID", "USUBJID", "ASTDT", "AETERM")},
    "ADLB": {"adam_class": "BASIC DATA STRUCTURE",
             "structure": "One record per subject, parameter, analysis visit and sample date",
             "keys": ("STUDYID", "USUBJID", "PARAMCD", "AVISITN", "ADT")},
    "ADTTE": {"adam_class": "BASIC DATA STRUCTURE", "subclass": "TIME-TO-EVENT",
              "structure": "One record per subject and parameter", "keys": ("STUDYID", "USUBJID", "PARAMCD")},
}

_ID = {
    "STUDYID": ("Study Identifier", "Assigned", "The study id of the study definition."),
    "USUBJID": ("Unique Subject Identifier", "Derived", "STUDYID-SUBJID."),
    "SUBJID": ("Subject Identifier for the Study", "Predecessor", "DM.SUBJID (or RAND/EX when DM is missing)."),
    "SITEID": ("Study Site Identifier", "Predecessor", "DM.SITEID; else the site part of SUBJID."),
}
_FROM_ADSL = "Predecessor"

#: name → (label, origin, derivation, codelist key). Codelist keys are resolved per study by
#: :func:`codelists` (``"YN"``, ``"SEX"``, ``"AGEGR"``, ``"VISITN"``, ``"PARAMCD:<dataset>"``, ...).
VARIABLES: dict[str, dict[str, tuple[str, str, str | None, str | None]]] = {
    "ADSL": {
        **{k: (*v, None) for k, v in _ID.items()},
        "AGE": ("Age at Day 1 (years)", "Derived", "Whole years from BRTHYM (birth on the 15th of the month) to TRTSDT; without a dose, to RANDDT.", None),
        "AGEU": ("Age Units", "Assigned", "YEARS.", None),
        "AGEGR1": ("Age Group at Day 1 (PEDI <18, ADULT 18+)", "Derived", "ADULT when AGE >= 18 (protocol.age_groups), else PEDI; without an age, the randomisation stratum.", "AGEGR"),
        "SEX": ("Sex", "Predecessor", "DM.SEX.", "SEX"),
        "WEIGHTBL": ("Weight at Day 1 (kg)", "Derived", "The latest VS.WEIGHT (kg) on or before TRTSDT.", None),
        "DURDIS": ("Disease Duration at Day 1 (years)", "Derived", "(TRTSDT - MH.ONSETYM on the 15th) / 365.25, 2 decimals.", None),
        "AMYLFL": ("Renal Amyloidosis Flag", "Predecessor", "MH.AMYLOID: the UPCR population of amendment 1.", "YN"),
        "RANDNO": ("Randomization Number", "Predecessor", "RAND.RANDNO.", None),
        "RANDDT": ("Date of Randomization", "Predecessor", "RAND.RANDDAT.", None),
        "STRATAR": ("Stratum as Randomized", "Predecessor", "RAND.STRATUM (the age group the site randomised by).", "AGEGR"),
        "ITTFL": ("Intent-To-Treat Population Flag", "Derived", "Y when randomised (RAND.RANDNO present), else N.", "YN"),
        "FASFL": ("Full Analysis Set Population Flag", "Derived", "Y when randomised and given at least one dose (TRTSDT present), else N.", "YN"),
        "RANDFL": ("Randomized Population Flag", "Derived", "Y when randomised (RAND.RANDNO present), else N.", "YN"),
        "SAFFL": ("Safety Population Flag (any dose)", "Derived", "Y when at least one dose > 0 was given (TRTSDT present), else N.", "YN"),
        "PPROTFL": ("Per-Protocol Population Flag", "Derived", "N when not randomised, not dosed, or with a major protocol deviation confirmed in the deviation log (with no log status: any major deviation recorded); else Y. Empty when no deviations are given.", "YN"),
        "TAPERFL": ("Steroid Taper Population Flag (GC at D1)", "Derived", "Amendment 1: Y when the prednisone-equivalent dose on TRTSDT is above 0 (or cannot be computed for an active glucocorticoid course), N when it is 0; empty without a dose.", "YN"),
        "NSAIDFL": ("NSAID at Day 1 Flag", "Derived", "Y when an NSAID course (protocol.drug_classes.nsaids) is active on TRTSDT (partial start to the 1st of the month, partial end to the last day, CMONGO = Y to the data cut), else N; empty without a dose.", "YN"),
        "TRTSDT": ("Date of First Exposure to Treatment", "Derived", "The earliest EX.EXSTDAT of a period with EXDOSE > 0.", None),
        "TRTEDT": ("Date of Last Exposure to Treatment", "Derived", "The latest EX.EXENDAT when every period with EXDOSE > 0 has ended by the data cut; empty while a period is open (TRTONGFL = Y). Never the start of the last period.", None),
        "TRTONGFL": ("Treatment Ongoing at Data Cut Flag", "Derived", "Y when a dosing period has no EXENDAT or ends after the data cut, else N.", "YN"),
        "TRTDURD": ("Duration of Treatment Exposure (days)", "Derived", "TRTEDT - TRTSDT + 1; while ongoing DCUTDT - TRTSDT + 1.", None),
        "DCUTDT": ("Data Cutoff Date", "Assigned", "The data cut of the pool; when none is stated, the latest date in the pooled forms.", None),
        "PARTACFL": ("Completed Part A Flag", "Derived", "Y when DS says Part B or COMPLETED, or (no DS) a record of the primary visit (W4) exists for a dosed subject; else N.", "YN"),
        "PARTBCFL": ("Completed Part B Flag", "Derived", "Y when DS.DSDECOD = COMPLETED, else N.", "YN"),
        "DSDECOD": ("Standardized Disposition Term", "Predecessor", "DS.DSDECOD (the latest record).", "DSDECOD"),
        "DSSTDT": ("Disposition Date", "Predecessor", "DS.DSSTDAT.", None),
        "RESPW4": ("Primary Response at W4 (adapted ACR30)", "Derived", "ADEFF AVALC of PARAMCD = AACRP30 at the primary visit, an undetermined or missing response imputed as N (ADEFF DTYPE = NRI).", "YN"),
        "RESPW4IM": ("Primary Response Imputed (NRI) Flag", "Derived", "Y when RESPW4 is a non-responder imputation, else N.", "YN"),
        "ARM": ("Description of Planned Arm (unblinded)", "Assigned", "The arm of RANDNO in the unblinded randomization list (only in an unblinded pool).", "ARM"),
        "TRT01P": ("Planned Treatment for Period 01", "Assigned", "Part A: the arm of RANDNO in the unblinded randomization list.", "ARM"),
        "TRT01PN": ("Planned Treatment for Period 01 (N)", "Derived", "The position of TRT01P in the study's [[arms]] (1, 2, ...).", "ARMN"),
        "TRT01A": ("Actual Treatment for Period 01", "Derived", "TRT01P for a subject given at least one dose (SAFFL = Y); empty otherwise.", "ARM"),
        "TRT01AN": ("Actual Treatment for Period 01 (N)", "Derived", "The position of TRT01A in the study's [[arms]].", "ARMN"),
        "TRT02P": ("Planned Treatment for Period 02", "Protocol", "Part B (open label): the open-label arm of protocol.parts.B for a subject who completed Part A (PARTACFL = Y).", "ARM"),
        "TRT02PN": ("Planned Treatment for Period 02 (N)", "Derived", "The position of TRT02P in the study's [[arms]].", "ARMN"),
        "TRT02A": ("Actual Treatment for Period 02", "Derived", "TRT02P for a subject dosed after the last day of Part A; empty otherwise.", "ARM"),
        "TRT02AN": ("Actual Treatment for Period 02 (N)", "Derived", "The position of TRT02A in the study's [[arms]].", "ARMN"),
    },
    "ADEFF": {
        **{k: (*v, None) for k, v in _ID.items()},
        "AGEGR1": ("Age Group at Day 1", _FROM_ADSL, "ADSL.AGEGR1.", "AGEGR"),
        "PARAMCD": ("Parameter Code", "Assigned", "The parameter code (value-level metadata).", "PARAMCD"),
        "PARAM": ("Parameter", "Assigned", "The parameter with its unit.", None),
        "PARAMN": ("Parameter (N)", "Assigned", "The parameter's number.", None),
        "AVISIT": ("Analysis Visit", "Derived", "The nominal CRF visit of the record the value comes from (unscheduled visits excluded).", None),
        "AVISITN": ("Analysis Visit (N)", "Derived", "The visit number of AVISIT (study.toml [[visits]]).", "VISITN"),
        "ADT": ("Analysis Date", "Derived", "The date of the record the value comes from (CORE.CSDAT, CHAQ.QSDAT, LB.LBDAT, VS.VSDAT).", None),
        "ADY": ("Analysis Relative Day", "Derived", "ADT - TRTSDT + 1 when ADT >= TRTSDT, else ADT - TRTSDT (no day 0).", None),
        "AVAL": ("Analysis Value", "Derived", "Per parameter (value-level metadata); responses 1 = met, 0 = not met.", None),
        "AVALC": ("Analysis Value (C)", "Derived", "Per parameter: Y/N for responses and flags, the EULAR category; empty for numeric parameters. An undetermined result has no record.", "AVALC"),
        "DTYPE": ("Derivation Type", "Assigned", "NRI on the record that imputes an undetermined or missing primary response as a non-responder.", "DTYPE"),
        "ABLFL": ("Baseline Record Flag", "Derived", "Y on the D1 record with a value (numeric parameters).", "YN"),
        "BASE": ("Baseline Value (Day 1)", "Derived", "AVAL of the baseline (ABLFL = Y) record, on D1 and later records.", None),
        "CHG": ("Change from Baseline", "Derived", "AVAL - BASE in exact decimals, only after baseline.", None),
        "PCHG": ("Percent Change from Baseline", "Derived", "100 * (AVAL - BASE) / BASE, exact, rounded half-up to 2 decimals, only after baseline; empty when BASE = 0.", None),
        "CRIT1": ("Analysis Criterion 1", "Assigned", "EULAR good or moderate response (EULAR records).", None),
        "CRIT1FL": ("Criterion 1 Evaluation Result Flag", "Derived", "Y when AVALC is GOOD or MODERATE, N when NONE.", "YN"),
    },
    "ADAE": {
        **{k: (*v, None) for k, v in _ID.items()},
        "AGEGR1": ("Age Group at Day 1", _FROM_ADSL, "ADSL.AGEGR1.", "AGEGR"),
        "AETERM": ("Reported Term for the Adverse Event", "Predecessor", "AE.AETERM.", None),
        "ASTDT": ("Analysis Start Date", "Derived", "AE.AESTDAT; a partial date is imputed to the 1st of its month (1 January for a year alone), or to TRTSDT when that falls in the same month (year), never to a later day.", None),
        "ASTDTF": ("Analysis Start Date Imputation Flag", "Derived", "D when the day was imputed, M when month and day were; empty for a full date.", "DTF"),
        "AENDT": ("Analysis End Date", "Predecessor", "AE.AEENDAT.", None),
        "ASTDY": ("Analysis Start Relative Day", "Derived", "ASTDT - TRTSDT + 1 when ASTDT >= TRTSDT, else ASTDT - TRTSDT.", None),
        "ADURN": ("Analysis Duration (days)", "Derived", "AENDT - ASTDT + 1; empty while ongoing.", None),
        "TRTEMFL": ("Treatment Emergent Analysis Flag", "Derived", "Amendment 1: Y when ASTDT >= TRTSDT and, when TRTEDT exists, ASTDT <= TRTEDT + 28 days; a subject still dosing at the data cut (TRTONGFL = Y) has no TRTEDT, so any AE from TRTSDT counts. Empty otherwise.", "YN"),
        "APERIOD": ("Period", "Derived", "1 (Part A) when ASTDY <= the last day of Part A or the subject was never dosed after it; 2 (Part B) otherwise; empty before the first dose.", "APERIOD"),
        "AESER": ("Serious Event", "Predecessor", "AE.AESER.", "YN"),
        "AETOXGR": ("Standard Toxicity Grade (CTCAE v5.0)", "Predecessor", "AE.AETOXGR.", None),
        "AEREL": ("Causality", "Predecessor", "AE.AEREL.", "AEREL"),
        "AEACN": ("Action Taken with Study Treatment", "Predecessor", "AE.AEACN.", "AEACN"),
        "AEOUT": ("Outcome of Adverse Event", "Predecessor", "AE.AEOUT.", "AEOUT"),
        "AESI": ("Adverse Event of Special Interest", "Predecessor", "AE.AESI.", "AESI"),
        "AESIFL": ("Adverse Event of Special Interest Flag", "Derived", "Y when AESI is given and not NONE, N otherwise.", "YN"),
        "AESIISR": ("AESI: Injection-Site Reaction", "Derived", "Y when AESI = INJECTION SITE REACTION, else N.", "YN"),
        "AESISCR": ("AESI: Severe Cutaneous Reaction", "Derived", "Y when AESI = SEVERE CUTANEOUS REACTION, else N.", "YN"),
        "AESIINF": ("AESI: Serious Infection", "Derived", "Y when AESI = SERIOUS INFECTION, else N.", "YN"),
        "AESIMAS": ("AESI: Macrophage Activation Syndrome", "Derived", "Y when AESI = MAS, else N.", "YN"),
        "AESINEU": ("AESI: Neutropenia", "Derived", "Y when AESI = NEUTROPENIA, else N.", "YN"),
        "AESIHEP": ("AESI: Hepatic", "Derived", "Y when AESI = HEPATIC, else N.", "YN"),
        "TRTA": ("Actual Treatment", "Derived", "ADSL.TRT01A in period 1, ADSL.TRT02A in period 2 (only in an unblinded pool).", "ARM"),
        "TRTAN": ("Actual Treatment (N)", "Derived", "The position of TRTA in the study's [[arms]].", "ARMN"),
    },
    "ADLB": {
        **{k: (*v, None) for k, v in _ID.items()},
        "AGEGR1": ("Age Group at Day 1", _FROM_ADSL, "ADSL.AGEGR1.", "AGEGR"),
        "AMYLFL": ("Renal Amyloidosis Flag", _FROM_ADSL, "ADSL.AMYLFL: the UPCR endpoint is PARAMCD = UPCR and AMYLFL = Y.", "YN"),
        "PARAMCD": ("Parameter Code", "Predecessor", "LB.LBTESTCD.", "PARAMCD"),
        "PARAM": ("Parameter", "Assigned", "The test with its standard unit.", None),
        "PARAMN": ("Parameter (N)", "Assigned", "The test's position in the LBTESTCD codelist.", None),
        "AVISIT": ("Analysis Visit", "Predecessor", "LB.VISIT.", None),
        "AVISITN": ("Analysis Visit (N)", "Derived", "The visit number of AVISIT (study.toml [[visits]]).", "VISITN"),
        "ADT": ("Analysis Date", "Predecessor", "LB.LBDAT.", None),
        "ADY": ("Analysis Relative Day", "Derived", "ADT - TRTSDT + 1 when ADT >= TRTSDT, else ADT - TRTSDT (no day 0).", None),
        "AVAL": ("Analysis Value (standard unit)", "Predecessor", "LB.LBSTRESN: the result in the test's standard unit (a limit typed as <1 is the limit).", None),
        "ANRLO": ("Analysis Normal Range Lower Limit", "Predecessor", "LB.LBSTNRLO.", None),
        "ANRHI": ("Analysis Normal Range Upper Limit", "Predecessor", "LB.LBSTNRHI.", None),
        "ANRIND": ("Analysis Reference Range Indicator", "Derived", "LOW when AVAL < ANRLO, HIGH when AVAL > ANRHI, NORMAL otherwise (exact comparison).", "ANRIND"),
        "ABLFL": ("Baseline Record Flag", "Derived", "Y on the D1 record with a value.", "YN"),
        "BASE": ("Baseline Value (Day 1)", "Derived", "AVAL of the baseline record, on D1 and later records.", None),
        "BNRIND": ("Baseline Reference Range Indicator", "Derived", "ANRIND of the baseline record.", "ANRIND"),
        "CHG": ("Change from Baseline", "Derived", "AVAL - BASE in exact decimals, only after baseline.", None),
        "PCHG": ("Percent Change from Baseline", "Derived", "100 * (AVAL - BASE) / BASE, exact, rounded half-up to 2 decimals, only after baseline.", None),
        "NEUTRFL": ("Neutropenia AESI Flag (ANC < 1.0)", "Derived", "ANC records: Y when AVAL < 1.0 x 10^9/L (protocol.lab_limits.anc_neutropenia), else N; empty for other tests.", "YN"),
        "HEPATFL": ("Hepatic AESI Flag (ALT/AST > 3xULN)", "Derived", "ALT and AST records: Y when AVAL > 3 x ANRHI of that sample (protocol.lab_limits.hepatic_uln_multiple), else N; empty for other tests or without ANRHI.", "YN"),
    },
    "ADTTE": {
        **{k: (*v, None) for k, v in _ID.items()},
        "AGEGR1": ("Age Group at Day 1", _FROM_ADSL, "ADSL.AGEGR1.", "AGEGR"),
        "PARAMCD": ("Parameter Code", "Assigned", "TTDISC (all reasons) or TTDISCEF (efficacy reasons).", "PARAMCD"),
        "PARAM": ("Parameter", "Assigned", "The parameter with its unit.", None),
        "PARAMN": ("Parameter (N)", "Assigned", "The parameter's number.", None),
        "STARTDT": ("Time-to-Event Origin Date", _FROM_ADSL, "ADSL.TRTSDT.", None),
        "ADT": ("Analysis Date", "Derived", "The event date (DS.DSSTDAT of a discontinuation) or the censoring date (DSSTDAT of a completion or of another reason; else the last visit on or before the data cut).", None),
        "AVAL": ("Analysis Value (days)", "Derived", "ADT - STARTDT + 1 (protocol.analysis.tte_days_inclusive).", None),
        "CNSR": ("Censor", "Derived", "0 = event (discontinuation), 1 = censored.", "CNSR"),
        "EVNTDESC": ("Event or Censoring Description", "Derived", "DISCONTINUATION: <DSDECOD> for an event; for a censoring: COMPLETED, DISCONTINUATION FOR ANOTHER REASON: <DSDECOD>, or ON STUDY AT DATA CUT.", None),
        "CNSDTDSC": ("Censor Date Description", "Derived", "The source of a censoring date: DISPOSITION DATE or LAST VISIT ON OR BEFORE THE DATA CUT.", None),
    },
}

#: Variable labels per dataset (the first element of :data:`VARIABLES`).
LABELS: dict[str, dict[str, str]] = {name: {v: spec[0] for v, spec in table.items()} for name, table in VARIABLES.items()}

FORM_COLUMNS: dict[str, tuple[str, ...]] = {
    "DM": ("SITEID", "SUBJID", "ICDAT", "BRTHYM", "SEX"),
    "MH": ("SITEID", "SUBJID", "ONSETYM", "AMYLOID"),
    "RAND": ("SITEID", "SUBJID", "RANDNO", "RANDDAT", "STRATUM"),
    "VS": ("SITEID", "SUBJID", "VISIT", "VSDAT", "WEIGHT", "TEMP"),
    "CORE": ("SITEID", "SUBJID", "VISIT", "CSDAT", "PHGA", "PAGA", "PTGH", "JADONE", "FEVER",
             "RASH", "LYMPH", "HEPSPL", "SEROS"),
    "JA": ("SITEID", "SUBJID", "VISIT", "JADAT", "JOINT", "SWOLLEN", "TENDER", "LOM"),
    "CHAQ": ("SITEID", "SUBJID", "VISIT", "QSDAT"),
    "FEVER": ("SITEID", "SUBJID", "FVDAT", "FVTEMP"),
    "LB": ("SITEID", "SUBJID", "VISIT", "LBDAT", "LBTESTCD", "LBSTRESN", "LBSTNRLO", "LBSTNRHI"),
    "EX": ("SITEID", "SUBJID", "EXSTDAT", "EXENDAT", "EXDOSE", "EXMISS"),
    "CM": ("SITEID", "SUBJID", "CMTRT", "CMDOSE", "CMDOSU", "CMFRQ", "CMROUTE", "CMSTDAT",
           "CMENDAT", "CMONGO"),
    "AE": ("SITEID", "SUBJID", "AETERM", "AESTDAT", "AEENDAT", "AEONGO", "AETOXGR", "AESER",
           "AEREL", "AEACN", "AEOUT", "AESI"),
    "DS": ("SITEID", "SUBJID", "DSDECOD", "DSSTDAT", "DSPART"),
}
DATE_COLUMNS = {"ICDAT", "RANDDAT", "VSDAT", "CSDAT", "JADAT", "QSDAT", "FVDAT", "LBDAT",
                "EXSTDAT", "EXENDAT", "AEENDAT", "DSSTDAT"}
#: Date columns that may hold a partial date as typed (kept as text, imputed by the programs).
PARTIAL_DATE_COLUMNS = {"AESTDAT"}


def form_frame(forms: Mapping[str, Any], code: str) -> pd.DataFrame:
    """The typed frame of a form (a FormData or a DataFrame); an empty typed frame when absent."""
    value = forms.get(code)
    frame = getattr(value, "data", value)
    if frame is None:
        frame = pd.DataFrame()
    frame = frame.copy()
    for column in FORM_COLUMNS.get(code, ()):
        if column not in frame.columns:
            frame[column] = pd.Series(
                pd.NaT if column in DATE_COLUMNS else None,
                index=frame.index,
                dtype="datetime64[ns]" if column in DATE_COLUMNS else object,
            )
    for column in DATE_COLUMNS & set(frame.columns):
        frame[column] = pd.to_datetime(frame[column], errors="coerce")
    return frame


def _first_dates(frame: pd.DataFrame) -> pd.Series | None:
    """The record date a data cut applies to: the first date column (a partial start date imputed)."""
    for column in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[column]):
            return frame[column]
        if column in PARTIAL_DATE_COLUMNS:
            from trialkit import derive

            return derive.impute_partial_date(frame[column].astype(object), "start")["DT"]
    return None


def apply_data_cut(forms: Mapping[str, Any], data_cut: Any) -> dict[str, pd.DataFrame]:
    """Each form's frame; with a data cut, records whose first date column is after it are dropped."""
    frames = {code: form_frame(forms, code) for code in set(forms) | set(FORM_COLUMNS)}
    if data_cut is None:
        return frames
    cut = pd.Timestamp(data_cut)
    for code, frame in frames.items():
        dates = _first_dates(frame)
        if dates is not None and code not in ("DM", "MH"):
            frames[code] = frame[~(dates > cut).fillna(False).to_numpy()]
    return frames


def effective_data_cut(frames: Mapping[str, pd.DataFrame], data_cut: Any) -> pd.Timestamp | None:
    """The data cut: the one given, else the latest date the forms contain (synopsis "Visits")."""
    if data_cut is not None and not (not isinstance(data_cut, str) and pd.isna(data_cut)):
        return pd.Timestamp(data_cut)
    latest = None
    for frame in frames.values():
        for column in frame.columns:
            if pd.api.types.is_datetime64_any_dtype(frame[column]) and frame[column].notna().any():
                value = frame[column].max()
                latest = value if latest is None or value > latest else latest
    return None if latest is None else pd.Timestamp(latest).normalize()


def codelists(study: Any, dataset: str, parameters: tuple[ParameterMeta, ...] = ()) -> dict[str, dict[Any, str]]:
    """The codelists the variable table names, for this study."""

    def study_list(name: str) -> dict[Any, str]:
        codelist = study.codelists.get(name)
        return {code: decode for code, decode in codelist.values} if codelist else {}

    arms = list(study.arms.values())
    avalc = {"Y": "Yes", "N": "No", "GOOD": "EULAR good response", "MODERATE": "EULAR moderate response",
             "NONE": "EULAR no response"}
    return {
        "YN": {"Y": "Yes", "N": "No"},
        "SEX": study_list("SEX"),
        "AGEGR": study_list("STRATUM"),
        "DSDECOD": study_list("DSDECOD"),
        "AEREL": study_list("AEREL"),
        "AEACN": study_list("AEACN"),
        "AEOUT": study_list("AEOUT"),
        "AESI": study_list("AESI"),
        "VISITN": {visit.num: visit.label for visit in sorted(study.visits.values(), key=lambda v: v.num)},
        "PARAMCD": {p.paramcd: p.param for p in parameters},
        "AVALC": avalc,
        "DTYPE": {"NRI": "Non-responder imputation"},
        "DTF": {"D": "Day imputed", "M": "Month and day imputed"},
        "ANRIND": {"LOW": "Below the lower limit", "NORMAL": "Within the normal range", "HIGH": "Above the upper limit"},
        "CNSR": {0: "Event", 1: "Censored"},
        "APERIOD": {1: "Part A", 2: "Part B"},
        "ARM": {arm.code: arm.label for arm in arms},
        "ARMN": {number: arm.label for number, arm in enumerate(arms, start=1)},
    }


#: Text columns whose codelist is not attached as value labels: a Stata numeric twin (``<name>N``)
#: would clash with an existing numeric column of the same meaning, which carries the labels.
NO_VALUE_LABELS = {"TRT01P", "TRT01A", "TRT02P", "TRT02A", "TRTA", "ARM"}


def dataset_metadata(study: Any, dataset: str, parameters: tuple[ParameterMeta, ...] = ()) -> DatasetMeta:
    """The :class:`~trialkit.metadata.DatasetMeta` of one of this study's analysis datasets."""
    lists = codelists(study, dataset, parameters)
    variables = []
    for name, (text, origin, derivation, codelist) in VARIABLES[dataset].items():
        source = None
        if origin == "Predecessor" and derivation:
            source = derivation.split(" ")[0].rstrip(".:")
        variables.append(VariableMeta(
            name=name, label=text, origin=origin, derivation=derivation, source=source,
            codelist=lists[codelist] if codelist else None, codelist_name=codelist,
            value_labels=name not in NO_VALUE_LABELS,
        ))
    info = DATASET_INFO[dataset]
    return DatasetMeta(
        name=dataset, label=DATASET_LABELS[dataset], structure=info["structure"], keys=tuple(info["keys"]),
        variables=tuple(variables), parameters=parameters, adam_class=info["adam_class"],
        subclass=info.get("subclass"), purpose="Analysis",
        parameter_values=("AVAL", "AVALC") if dataset == "ADEFF" else ("AVAL",),
    )


def label(frame: pd.DataFrame, dataset: str, study: Any = None,
          parameters: tuple[ParameterMeta, ...] = ()) -> pd.DataFrame:
    """Attach the metadata (labels, dataset label, value labels, derivations) to ``frame``, in place."""
    if study is None:
        frame.attrs["labels"] = {column: LABELS[dataset].get(column, column) for column in frame.columns}
        frame.attrs["dataset_label"] = DATASET_LABELS[dataset]
        return frame
    return attach(frame, dataset_metadata(study, dataset, parameters))


def usubjid(study: Any, subjid: pd.Series) -> pd.Series:
    """USUBJID = STUDYID-SUBJID."""
    # SUBJID is SS-NNN (site, subject number), so STUDYID-SUBJID is study-site-subject.
    return f"{study.id}-" + subjid.astype(str)


def yn(value: bool | None) -> str | None:
    """A three-valued result as AVALC: "Y", "N", or None when undetermined (never "")."""
    return None if value is None else ("Y" if value else "N")


def yn_flags(mask: Any, index: pd.Index | None = None) -> pd.Series:
    """A boolean mask as a Y/N text column (missing → None)."""
    series = pd.Series(mask, index=index) if not isinstance(mask, pd.Series) else mask
    values = series.astype("boolean")
    out = np.where(values.isna(), None, np.where(values.fillna(False), "Y", "N"))
    return pd.Series(out, index=series.index, dtype=object)


def num(value: Any) -> float:
    """A value as float (NaN when missing)."""
    return np.nan if value is None or (not isinstance(value, str) and pd.isna(value)) else float(value)


def baseline_visit(study: Any) -> str:
    """The baseline visit: the first-dose visit with target day 1 (D1)."""
    for visit in study.visits.values():
        if visit.anchor == "first_dose" and visit.target_day == 1:
            return visit.code
    return "D1"


def primary_visit(study: Any) -> str:
    """The primary-endpoint visit (``primary = true`` in the visit table)."""
    for visit in study.visits.values():
        if visit.primary:
            return visit.code
    return "W4"


def lookup(keys: pd.Series, table: pd.Series) -> pd.Series:
    """``table[key]`` for each key (NA when absent), keeping ``keys``' index and ``table``'s dtype."""
    table = table[~table.index.duplicated()]
    return pd.Series(table.reindex(keys.to_numpy()).to_numpy(), index=keys.index, dtype=table.dtype)


def first_by(frame: pd.DataFrame, keys: list[str], order: str) -> pd.DataFrame:
    """The first record per ``keys`` in ``order``."""
    return frame.sort_values(order, kind="stable").drop_duplicates(keys, keep="first")


def add_subject_columns(frame: pd.DataFrame, study: Any, adsl: pd.DataFrame,
                        columns: tuple[str, ...] = ("AGEGR1",)) -> pd.DataFrame:
    """STUDYID, USUBJID, SITEID and the given ADSL columns for each row of ``frame`` (by SUBJID)."""
    info = adsl.set_index("SUBJID")
    frame["STUDYID"] = study.id
    frame["USUBJID"] = usubjid(study, frame["SUBJID"]) if len(frame) else pd.Series(dtype=object)
    site = lookup(frame["SUBJID"], info["SITEID"]).astype(object)
    frame["SITEID"] = site.where(site.notna(), frame["SUBJID"].map(study.subject_site))
    for column in columns:
        frame[column] = lookup(frame["SUBJID"], info[column]).astype(object)
    return frame


def arm_numbers(study: Any) -> dict[str, int]:
    """Arm code → its position in the study's ``[[arms]]`` (1, 2, ...)."""
    return {code: number for number, code in enumerate(study.arms, start=1)}
