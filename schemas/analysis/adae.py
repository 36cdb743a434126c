"""ADAE — ANK-SJIA-01's adverse-event analysis dataset (an admiral-template style program).

One row per AE, sorted by USUBJID, ASTDT, AETERM; the treatment-emergent flag from the generic
:func:`trialkit.derive.derive_teae` with this protocol's definition (Amendment 1: up to 28 days after
the last dose).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from trialkit import derive

from . import derivations
from .common import LABELS, apply_data_cut, label, usubjid


def derive_adae(study: Any, forms: Mapping[str, Any], *, data_cut: Any = None) -> pd.DataFrame:
    """Adverse-event analysis dataset: one row per AE, sorted by USUBJID, ASTDT, AETERM.

    TRTEMFL = "Y" when onset is on or after the first dose and no later than
    ``protocol.analysis.teae_days_after_last_dose`` (28) days after the last dose (Amendment 1); a
    subject still dosing — an open EX period and no disposition record — has no last dose yet, so any
    AE from the first dose counts; else blank (ADaM convention). ASTDY the study day of onset; ADURN =
    end − start + 1 days (blank while ongoing); the other columns as collected.
    """
    frames = apply_data_cut(forms, data_cut)
    ae, ex, ds = frames["AE"], frames["EX"], frames["DS"]
    if len(ex):
        first = derivations.derive_first_dose(ex)
        # Still dosing: an open dosing period, and the subject has not left the study.
        first["ONGOING"] = first["ONGOING"] & ~first["SUBJID"].isin(set(ds["SUBJID"].dropna()))
    else:
        first = pd.DataFrame(columns=["SUBJID", "TRTSDT", "TRTEDT", "D1", "ONGOING"])
    adae = derive.derive_teae(ae, first, start="AESTDAT", end="AEENDAT",
                              days_after_last_dose=study.protocol.analysis.teae_days_after_last_dose,
                              data_cut=data_cut)
    adae["STUDYID"] = study.id
    adae["USUBJID"] = usubjid(study, adae["SUBJID"])
    adae["ASTDT"] = adae["AESTDAT"]
    adae["AENDT"] = adae["AEENDAT"]
    adae["AETOXGR"] = pd.array(pd.to_numeric(adae["AETOXGR"], errors="coerce"), dtype="Int64")
    adae = adae[list(LABELS["ADAE"])].sort_values(["USUBJID", "ASTDT", "AETERM"], kind="stable")
    return label(adae.reset_index(drop=True), "ADAE")
