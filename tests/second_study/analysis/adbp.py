"""ADBP: systolic pressure at baseline and month 3, the change, and blood-pressure control."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trialkit import derive

LABELS = {
    "STUDYID": "Study Identifier",
    "USUBJID": "Unique Subject Identifier",
    "SUBJID": "Subject Identifier for the Study",
    "SITEID": "Study Site Identifier",
    "AGE": "Age (years)",
    "TRTSDT": "Date of First Dose",
    "BASESBP": "Systolic BP at Baseline (mmHg)",
    "M3SBP": "Systolic BP at Month 3 (mmHg)",
    "CHGSBP": "Change in Systolic BP at Month 3",
    "CONTROL": "BP Controlled at Month 3 (Y/N)",
    "ARM": "Planned Arm (unblinded)",
}


def _frame(forms, code, columns):
    value = forms.get(code)
    frame = getattr(value, "data", value)
    if frame is None:
        frame = pd.DataFrame(columns=columns)
    return frame


def derive_adbp(study, forms, *, randlist=None):
    enrol = _frame(forms, "ENROL", ["SITEID", "SUBJID", "ENRDAT", "AGEYRS", "SEX", "RANDNO"])
    vitals = _frame(forms, "VITALS", ["SITEID", "SUBJID", "VISIT", "VSDATE", "SYSBP", "DIABP"])
    dosing = _frame(forms, "DOSING", ["SITEID", "SUBJID", "DOSESTDT", "DOSEENDT", "DOSEMG"])
    out = pd.DataFrame({"SUBJID": sorted(enrol["SUBJID"].dropna().unique())})
    out.insert(0, "STUDYID", study.id)
    out.insert(1, "USUBJID", study.id + "-" + out["SUBJID"].astype(str))
    info = enrol.drop_duplicates("SUBJID").set_index("SUBJID")
    out["SITEID"] = out["SUBJID"].map(info["SITEID"])
    out["AGE"] = pd.array(out["SUBJID"].map(info["AGEYRS"]), dtype="Int64")
    first = derive.derive_first_dose(dosing, start="DOSESTDT", end="DOSEENDT", dose="DOSEMG") if len(dosing) \
        else pd.DataFrame(columns=["SUBJID", "TRTSDT"])
    out["TRTSDT"] = pd.to_datetime(out["SUBJID"].map(first.set_index("SUBJID")["TRTSDT"]), errors="coerce")
    by_visit = vitals.pivot_table(index="SUBJID", columns="VISIT", values="SYSBP", aggfunc="first") \
        if len(vitals) else pd.DataFrame()
    for column, visit in (("BASESBP", "BASELINE"), ("M3SBP", "MONTH3")):
        out[column] = out["SUBJID"].map(by_visit[visit]).astype(float) if visit in by_visit else np.nan
    out["CHGSBP"] = out["M3SBP"] - out["BASESBP"]
    target = float(study.protocol.target_sbp_mmhg)
    out["CONTROL"] = np.where(out["M3SBP"].isna(), None, np.where(out["M3SBP"] < target, "Y", "N"))
    if randlist is not None:
        arms = randlist.drop_duplicates("RANDNO").set_index("RANDNO")["ARM"]
        out["ARM"] = out["SUBJID"].map(info["RANDNO"]).map(arms)
    out.attrs["labels"] = {c: LABELS[c] for c in out.columns}
    out.attrs["dataset_label"] = "Blood Pressure Analysis Dataset"
    return out
