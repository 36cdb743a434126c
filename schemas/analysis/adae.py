"""ADAE — ANK-SJIA-01's adverse-event analysis dataset (an admiral-template style program).

One row per AE, sorted by USUBJID, ASTDT, AETERM; the treatment-emergent flag from the generic
:func:`trialkit.derive.derive_teae` with this protocol's definition (Amendment 1: up to 28 days after
the last dose; for a subject still dosing at the data cut, any AE from the first dose).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from trialkit import derive

from .common import (
    add_subject_columns,
    apply_data_cut,
    arm_numbers,
    effective_data_cut,
    label,
    lookup,
    yn_flags,
)

#: AESI category flags: column → the AESI code it flags.
AESI_FLAGS = {
    "AESIISR": "INJECTION SITE REACTION",
    "AESISCR": "SEVERE CUTANEOUS REACTION",
    "AESIINF": "SERIOUS INFECTION",
    "AESIMAS": "MAS",
    "AESINEU": "NEUTROPENIA",
    "AESIHEP": "HEPATIC",
}
NO_AESI = "NONE"


def derive_adae(study: Any, forms: Mapping[str, Any], *, data_cut: Any = None,
                adsl: pd.DataFrame | None = None) -> pd.DataFrame:
    """Adverse-event analysis dataset: one row per AE, sorted by USUBJID, ASTDT, AETERM.

    - ASTDT = AESTDAT; a partial start date (text ``YYYY-MM`` or ``YYYY``) is imputed to the 1st of
      its month (1 January), or to TRTSDT when that falls in the same month (year) — never to a
      later day — with ASTDTF (:func:`trialkit.derive.impute_start_date`).
    - TRTEMFL = "Y" when ASTDT ≥ TRTSDT and, when TRTEDT exists, ASTDT ≤ TRTEDT +
      ``protocol.analysis.teae_days_after_last_dose`` (28) days; a subject still dosing at the
      data cut (ADSL TRTONGFL = Y) has no TRTEDT, so any AE from the first dose counts; else empty
      (ADaM convention).
    - APERIOD 1 (Part A) or 2 (Part B: ASTDY after Part A's last day for a subject dosed in Part B).
    - AESIFL and one Y/N flag per AESI category (:data:`AESI_FLAGS`).
    - TRTA/TRTAN (the actual treatment of the period) only in an unblinded ADSL (with TRT01A).
    """
    frames = apply_data_cut(forms, data_cut)
    cut = effective_data_cut(frames, data_cut)
    if adsl is None:
        from .adsl import adsl_core

        adsl = adsl_core(study, frames, None, data_cut=cut)
    ae = frames["AE"].copy()
    info = adsl.set_index("SUBJID")
    first = pd.DataFrame({
        "SUBJID": adsl["SUBJID"], "D1": adsl["TRTSDT"], "TRTEDT": adsl["TRTEDT"],
        "ONGOING": adsl["TRTONGFL"].eq("Y").to_numpy(),
    })
    trtsdt = pd.to_datetime(lookup(ae["SUBJID"], info["TRTSDT"]), errors="coerce")
    imputed = derive.impute_start_date(ae["AESTDAT"].astype(object), trtsdt)
    ae["ASTDT"] = imputed["DT"]
    ae["ASTDTF"] = imputed["DTF"]
    adae = derive.derive_teae(ae, first, start="ASTDT", end="AEENDAT",
                              days_after_last_dose=study.protocol.analysis.teae_days_after_last_dose)
    adae["AENDT"] = adae["AEENDAT"]
    add_subject_columns(adae, study, adsl)
    adae["AETOXGR"] = pd.array(pd.to_numeric(adae["AETOXGR"], errors="coerce"), dtype="Int64")
    part_a_last = study.protocol.part_a.last_day
    in_b = lookup(adae["SUBJID"], info["TRTDURD"]).astype("Float64") > part_a_last
    day = adae["ASTDY"].astype("Float64")
    period = np.where(day.isna() | (day < 1).fillna(False), None,
                      np.where(((day > part_a_last) & in_b).fillna(False), 2, 1))
    adae["APERIOD"] = pd.array(period, dtype="Int64")
    aesi = adae["AESI"].astype("string").str.strip().str.upper()
    adae["AESIFL"] = yn_flags(aesi.notna() & aesi.ne(NO_AESI), adae.index).fillna("N")
    for column, code in AESI_FLAGS.items():
        adae[column] = yn_flags(aesi.eq(code).fillna(False), adae.index)
    for column in ("TRTEMFL", "ASTDTF", "AESER", "AEREL", "AEACN", "AEOUT", "AESI", "AETERM"):
        adae[column] = adae[column].astype(object).where(adae[column].notna(), None)
    columns = [c for c in _columns() if c not in ("TRTA", "TRTAN")]
    if "TRT01A" in adsl.columns:
        numbers = arm_numbers(study)
        first_arm = lookup(adae["SUBJID"], info["TRT01A"]).astype(object)
        second = lookup(adae["SUBJID"], info["TRT02A"]).astype(object) if "TRT02A" in info else first_arm
        arm = np.where(adae["APERIOD"].eq(2).fillna(False), second, np.where(adae["APERIOD"].eq(1).fillna(False),
                                                                             first_arm, None))
        adae["TRTA"] = pd.Series(arm, index=adae.index, dtype=object).where(pd.notna(arm), None)
        adae["TRTAN"] = pd.array(adae["TRTA"].map(numbers), dtype="Int64")
        columns += ["TRTA", "TRTAN"]
    adae = adae[columns].sort_values(["USUBJID", "ASTDT", "AETERM"], kind="stable")
    return label(adae.reset_index(drop=True), "ADAE", study)


def _columns() -> list[str]:
    from .common import VARIABLES

    return list(VARIABLES["ADAE"])
