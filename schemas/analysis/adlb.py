"""ADLB — ANK-SJIA-01's laboratory analysis dataset (BDS; an admiral-template style program).

One row per subject, test (PARAMCD = LBTESTCD), analysis visit and sample date with a result in the
test's standard unit; the reference range, its indicator, baseline and change, and the laboratory
events of special interest of the synopsis (neutropenia; hepatic). UPCR (amendment 1) is a parameter
like the others; its endpoint is the records with AMYLFL = Y.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from trialkit import derive, scores
from trialkit.metadata import ParameterMeta

from .common import (
    VARIABLES,
    add_subject_columns,
    apply_data_cut,
    baseline_visit,
    effective_data_cut,
    label,
    lookup,
)

NEUTROPENIA_TEST = "ANC"
HEPATIC_TESTS = ("ALT", "AST")


def parameters(study: Any) -> dict[str, ParameterMeta]:
    """The ADLB parameters: one per LBTESTCD code, PARAM = decode (standard unit)."""
    codelist = study.codelists.get("LBTESTCD")
    out: dict[str, ParameterMeta] = {}
    for number, (code, decode) in enumerate(codelist.values if codelist else (), start=1):
        unit = (study.lab_units_of(code) or {}).get("standard")
        out[code] = ParameterMeta(
            paramcd=code, param=f"{decode} ({unit})" if unit else decode, paramn=number, unit=unit,
            derivation=f"LB.LBSTRESN of {code}: the result converted to {unit or 'its standard unit'}.",
            origin="Predecessor",
        )
    return out


def derive_adlb(study: Any, forms: Mapping[str, Any], *, data_cut: Any = None,
                adsl: pd.DataFrame | None = None) -> pd.DataFrame:
    """Laboratory analysis dataset, sorted USUBJID, PARAMN, AVISITN, ADT.

    - Rows: LB records with a result in the standard unit (LBSTRESN); a test not done (LBSTAT = ND)
      has no result and no row (its reason is in the pooled reasons dataset). Unscheduled samples
      are kept (AVISIT UNS), so the worst value of a subject is in the dataset.
    - ANRLO/ANRHI = the sample's normal range in the standard unit; ANRIND LOW/NORMAL/HIGH.
    - Baseline = the D1 sample (ABLFL = Y; the earliest when several); BASE/BNRIND on D1 and later
      scheduled records; CHG (exact) and PCHG (2 decimals) only after D1.
    - NEUTRFL on ANC records: AVAL < ``protocol.lab_limits.anc_neutropenia``; HEPATFL on ALT/AST
      records: AVAL > ``protocol.lab_limits.hepatic_uln_multiple`` × ANRHI of that sample — both
      compared exactly; empty on other tests.
    """
    frames = apply_data_cut(forms, data_cut)
    cut = effective_data_cut(frames, data_cut)
    if adsl is None:
        from .adsl import adsl_core

        adsl = adsl_core(study, frames, None, data_cut=cut)
    params = parameters(study)
    lb = frames["LB"]
    values = pd.to_numeric(lb["LBSTRESN"], errors="coerce")
    keep = values.notna().to_numpy() & lb["LBTESTCD"].isin(params).fillna(False).to_numpy() \
        & lb["SUBJID"].isin(set(adsl["SUBJID"])).to_numpy()
    records = lb[keep]
    numbers = {code: v.num for code, v in study.visits.items()}
    adlb = pd.DataFrame({
        "SUBJID": records["SUBJID"].astype(object).to_numpy(),
        "PARAMCD": records["LBTESTCD"].astype(object).to_numpy(),
        "AVISIT": records["VISIT"].astype(object).to_numpy(),
        "ADT": pd.to_datetime(records["LBDAT"], errors="coerce").to_numpy(),
        "AVAL": pd.to_numeric(records["LBSTRESN"], errors="coerce").astype(float).to_numpy(),
        "ANRLO": pd.to_numeric(records["LBSTNRLO"], errors="coerce").astype(float).to_numpy(),
        "ANRHI": pd.to_numeric(records["LBSTNRHI"], errors="coerce").astype(float).to_numpy(),
    })
    adlb["AVISITN"] = pd.array(adlb["AVISIT"].map(numbers), dtype="Int64")
    add_subject_columns(adlb, study, adsl, ("AGEGR1", "AMYLFL"))
    adlb["PARAM"] = adlb["PARAMCD"].map({c: p.param for c, p in params.items()})
    adlb["PARAMN"] = pd.array(adlb["PARAMCD"].map({c: p.paramn for c, p in params.items()}), dtype="Int64")
    adlb["ADY"] = derive.compute_study_day(adlb["ADT"], lookup(adlb["SUBJID"], adsl.set_index("SUBJID")["TRTSDT"]))
    adlb = derive.derive_var_anrind(adlb)

    base_visit = baseline_visit(study)
    base_num = numbers.get(base_visit, 1)
    scheduled = {c for c, v in study.visits.items() if v.scheduled and v.anchor != "none"}
    visit = adlb["AVISITN"].astype("Float64")
    is_scheduled = adlb["AVISIT"].isin(scheduled).to_numpy()
    on_or_after = pd.Series((visit >= base_num).fillna(False).to_numpy(dtype=bool) & is_scheduled, index=adlb.index)
    after = pd.Series((visit > base_num).fillna(False).to_numpy(dtype=bool) & is_scheduled, index=adlb.index)
    keys = ["SUBJID", "PARAMCD"]
    adlb = derive.derive_var_ablfl(adlb, by=keys, is_baseline=adlb["AVISIT"].eq(base_visit), order=["ADT"])
    adlb = derive.derive_var_base(adlb, by=keys, where=on_or_after)
    adlb = derive.derive_var_base(adlb, by=keys, source="ANRIND", out="BNRIND", where=on_or_after)
    adlb = derive.derive_var_chg(adlb, where=after)
    adlb = derive.derive_var_pchg(adlb, where=after)

    limits = study.protocol.lab_limits
    neutropenia = scores.to_decimal(limits.anc_neutropenia)
    multiple = scores.to_decimal(limits.hepatic_uln_multiple)
    neutro: list[str | None] = []
    hepatic: list[str | None] = []
    for code, aval, uln in zip(adlb["PARAMCD"], adlb["AVAL"], adlb["ANRHI"], strict=True):
        neutro.append(("Y" if scores.to_decimal(aval) < neutropenia else "N") if code == NEUTROPENIA_TEST else None)
        if code in HEPATIC_TESTS and not pd.isna(uln):
            hepatic.append("Y" if scores.to_decimal(aval) > multiple * scores.to_decimal(uln) else "N")
        else:
            hepatic.append(None)
    adlb["NEUTRFL"] = pd.Series(neutro, index=adlb.index, dtype=object)
    adlb["HEPATFL"] = pd.Series(hepatic, index=adlb.index, dtype=object)
    for column in ("ABLFL", "ANRIND", "BNRIND", "AMYLFL", "AGEGR1"):
        adlb[column] = adlb[column].astype(object).where(adlb[column].notna(), None)
    adlb = adlb.sort_values(["USUBJID", "PARAMN", "AVISITN", "ADT"], kind="stable")[list(VARIABLES["ADLB"])]
    return label(adlb.reset_index(drop=True), "ADLB", study, tuple(params.values()))


__all__ = ["derive_adlb", "parameters"]
