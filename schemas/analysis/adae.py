"""ADAE — ANK-SJIA-01's adverse-event analysis dataset (an admiral-template style program).

One row per AE, sorted by USUBJID, ASTDT, AETERM; the treatment-emergent flag from the generic
:func:`trialkit.derive.derive_teae` with this protocol's definition.
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

    TRTEMFL = "Y" when onset is on or after the first dose (else blank, ADaM convention); ASTDY the
    study day of onset; ADURN = end − start + 1 days (blank while ongoing); the other columns as
    collected.
    """
    frames = apply_data_cut(forms, data_cut)
    ae, ex = frames["AE"], frames["EX"]
    first = derivations.derive_first_dose(ex) if len(ex) else pd.DataFrame(columns=["SUBJID", "TRTSDT", "TRTEDT", "D1"])
    adae = derive.derive_teae(ae, first, start="AESTDAT", end="AEENDAT")
    adae["STUDYID"] = study.id
    adae["USUBJID"] = usubjid(study, adae["SUBJID"])
    adae["ASTDT"] = adae["AESTDAT"]
    adae["AENDT"] = adae["AEENDAT"]
    adae["AETOXGR"] = pd.array(pd.to_numeric(adae["AETOXGR"], errors="coerce"), dtype="Int64")
    adae = adae[list(LABELS["ADAE"])].sort_values(["USUBJID", "ASTDT", "AETERM"], kind="stable")
    return label(adae.reset_index(drop=True), "ADAE")
