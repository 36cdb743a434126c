"""Helpers shared by ANK-SJIA-01's analysis programs: the forms they read, labels, lookups.

The programs (``adsl.py``, ``adeff.py``, ``adae.py``) are this study's own code: they read the forms
by this trial's variable names and build the datasets from the generic primitives of
:mod:`trialkit.derive` and this folder's :mod:`.derivations`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

#: Dataset labels (at most 40 bytes: SAS transport).
DATASET_LABELS = {
    "ADSL": "Subject-Level Analysis Dataset",
    "ADEFF": "Efficacy Analysis Dataset",
    "ADAE": "Adverse Events Analysis Dataset",
}

#: Variable labels per dataset.
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
        "TAPERFL": "Steroid Taper Population Flag (GC at D1)",
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

FORM_COLUMNS: dict[str, tuple[str, ...]] = {
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
DATE_COLUMNS = {"ICDAT", "RANDDAT", "VSDAT", "CSDAT", "JADAT", "QSDAT", "FVDAT", "LBDAT",
                 "EXSTDAT", "EXENDAT", "AESTDAT", "AEENDAT", "DSSTDAT"}


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


def apply_data_cut(forms: Mapping[str, Any], data_cut: Any) -> dict[str, pd.DataFrame]:
    """Each form's frame; with a data cut, records whose first date column is after it are dropped."""
    frames = {code: form_frame(forms, code) for code in set(forms) | set(FORM_COLUMNS)}
    if data_cut is None:
        return frames
    cut = pd.Timestamp(data_cut)
    for code, frame in frames.items():
        dates = [c for c in frame.columns if pd.api.types.is_datetime64_any_dtype(frame[c])]
        if dates and code not in ("DM", "MH"):
            frames[code] = frame[~(frame[dates[0]] > cut).fillna(False).to_numpy()]
    return frames


def label(frame: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Attach the variable labels and the dataset label (``frame.attrs``), in place; returns ``frame``."""
    labels = LABELS[dataset]
    frame.attrs["labels"] = {column: labels.get(column, column) for column in frame.columns}
    frame.attrs["dataset_label"] = DATASET_LABELS[dataset]
    return frame


def usubjid(study: Any, subjid: pd.Series) -> pd.Series:
    """USUBJID = STUDYID-SUBJID."""
    # SUBJID is SS-NNN (site, subject number), so STUDYID-SUBJID is study-site-subject.
    return f"{study.id}-" + subjid.astype(str)


def yn(value: bool | None) -> str:
    """A three-valued result as AVALC: "Y", "N", or "" when undetermined."""
    return "" if value is None else ("Y" if value else "N")


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


# ------------------------------------------------------------------------------------------------
# ADSL
