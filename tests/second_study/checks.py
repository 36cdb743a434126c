"""BPX-201 rules: one data check and one protocol deviation."""

from __future__ import annotations

import pandas as pd

from trialkit import derive
from trialkit.rules import RuleContext, rule


@rule("BP-01", "Diastolic pressure not below systolic", severity="error", category="record",
      reference="BPX-201 protocol, section 7", forms=["VITALS"],
      message="{VISIT}: DIABP {DIABP} is not below SYSBP {SYSBP}; check both values")
def diastolic_not_below_systolic(ctx: RuleContext) -> pd.DataFrame:
    vitals = ctx.form("VITALS")
    bad = vitals[(vitals["DIABP"] >= vitals["SYSBP"]).fillna(False)]
    return bad.assign(_form="VITALS", _index=bad.index, _variable="DIABP")[
        ["SUBJID", "VISIT", "_form", "_index", "_variable", "DIABP", "SYSBP"]]


@rule("BP-DV1", "Visit outside its window", severity="warning", category="deviation",
      reference="BPX-201 protocol, section 6", forms=["VITALS", "DOSING"], deviation_class="minor",
      message="{VISIT} on study day {ADY}, outside days {WINDOWLO} to {WINDOWHI}")
def visit_outside_window(ctx: RuleContext) -> pd.DataFrame:
    first = derive.derive_first_dose(ctx.form("DOSING"), start="DOSESTDT", end="DOSEENDT", dose="DOSEMG")
    vitals = derive.derive_visit_window(ctx.form("VITALS"), "VSDATE", first, visits=ctx.study.visits)
    outside = vitals[vitals["INWIN"].eq(False).fillna(False).astype(bool)]
    return outside.assign(_form="VITALS", _index=outside.index, _variable="VSDATE")[
        ["SUBJID", "VISIT", "_form", "_index", "_variable", "ADY", "WINDOWLO", "WINDOWHI"]]


RULES = [diastolic_not_below_systolic, visit_outside_window]
