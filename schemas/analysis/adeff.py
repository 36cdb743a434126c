"""ADEFF — ANK-SJIA-01's efficacy analysis dataset (an admiral-template style program).

One row per subject, visit and parameter (:data:`PARAMS`), built from the generic primitives of
:mod:`trialkit.derive`, this study's :mod:`.derivations` and the formulas of :mod:`trialkit.scores`.
Choices the protocol leaves open are listed in :func:`derive_adeff`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from trialkit import derive, scores

from . import derivations
from .adsl import PRIMARY_PARAM, adsl_core
from .common import (
    LABELS,
    apply_data_cut,
    baseline_visit,
    first_by,
    label,
    lookup,
    num,
    primary_visit,
    yn,
)

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
    - PREDMGKG on the visit date; TAPER at ``protocol.analysis.taper_visits`` (W24/W52) with s = the
      D1 dose (mg/kg/day), response held = AACRP30 at that visit. Amendment 1: taper success is
      assessed only in subjects taking a glucocorticoid at D1 (ADSL TAPERFL = Y); the others get no
      TAPER row — not applicable, never "not met". A subject on a glucocorticoid whose D1 dose
      cannot be computed gets TAPER undetermined ("").
    """
    frames = apply_data_cut(forms, data_cut)
    if adsl is None:
        adsl = adsl_core(study, frames, None)
    return build_adeff(study, frames, adsl)


def _lab_wide(lb: pd.DataFrame) -> pd.DataFrame:
    """One row per (SUBJID, VISIT): value, ULN and date of each test in LAB_TESTS."""
    tests = lb[lb["LBTESTCD"].isin(LAB_TESTS).fillna(False).to_numpy()].copy()
    tests["LBSTRESN"] = pd.to_numeric(tests["LBSTRESN"], errors="coerce")
    tests = tests[tests["LBSTRESN"].notna().to_numpy()]
    tests = first_by(tests, ["SUBJID", "VISIT", "LBTESTCD"], "LBDAT")
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
    primary = primary_visit(study)
    eligible = adsl.loc[(adsl["RANDFL"].eq("Y") | adsl["SAFFL"].eq("Y")).to_numpy(), "SUBJID"]
    keys |= {(s, primary) for s in eligible}
    keys = {(s, v) for s, v in keys if s in set(adsl["SUBJID"])}
    table = pd.DataFrame(sorted(keys), columns=["SUBJID", "VISIT"])
    table["AVISITN"] = table["VISIT"].map({c: v.num for c, v in study.visits.items()}).astype("Int64")

    core1 = first_by(core[core["VISIT"].isin(usable).fillna(False).to_numpy()], ["SUBJID", "VISIT"], "CSDAT")
    if len(core1):
        core1 = derivations.derive_joint_counts(frames["JA"], core1, protocol=study.protocol)
    else:
        for name in ("AJC71", "AJC27", "LOMC", "TJC28", "SJC28"):
            core1[name] = pd.Series(dtype="Int64")
    core_cols = ["CSDAT", "PHGA", "PAGA", "PTGH", "JADONE", "FEVER", "RASH", "LYMPH", "HEPSPL",
                 "SEROS", "AJC71", "AJC27", "LOMC", "TJC28", "SJC28"]
    table = table.merge(core1[["SUBJID", "VISIT", *core_cols]], on=["SUBJID", "VISIT"], how="left")

    chaq1 = first_by(chaq[chaq["VISIT"].isin(usable).fillna(False).to_numpy()], ["SUBJID", "VISIT"], "QSDAT")
    chaq1 = derivations.derive_chaq_di(chaq1) if len(chaq1) else chaq1.assign(CHAQDI=pd.Series(dtype=float))
    table = table.merge(chaq1[["SUBJID", "VISIT", "QSDAT", "CHAQDI"]], on=["SUBJID", "VISIT"], how="left")

    labs = _lab_wide(lb).reset_index()
    table = table.merge(labs, on=["SUBJID", "VISIT"], how="left")
    vs1 = first_by(vs[vs["VISIT"].isin(usable).fillna(False).to_numpy()], ["SUBJID", "VISIT"], "VSDAT")
    table = table.merge(vs1[["SUBJID", "VISIT", "VSDAT", "TEMP"]], on=["SUBJID", "VISIT"], how="left")

    visit_date = table["CSDAT"]
    for column in ("QSDAT", "ESRDT", "CRPDT", "VSDAT"):
        visit_date = visit_date.fillna(pd.to_datetime(table[column], errors="coerce"))
    table["VDATE"] = pd.to_datetime(visit_date, errors="coerce")

    fever = derivations.derive_fever_free(frames["FEVER"], table[["SUBJID", "VISIT", "VDATE"]],
                                          protocol=study.protocol, date_col="VDATE")
    table["FEVFREE"] = fever["FEVFREE"].to_numpy()
    table["MAXTEMP"] = fever["MAXTEMP"].to_numpy()
    steroid = derivations.derive_prednisone_equivalent(
        frames["CM"], vs, table[["SUBJID"]].assign(DATE=table["VDATE"]), protocol=study.protocol
    )
    table["PREDMGKG"] = steroid["PREDMGKG"].to_numpy()
    table["TAPERFL"] = lookup(table["SUBJID"], adsl.set_index("SUBJID")["TAPERFL"])
    agegr = adsl.set_index("SUBJID")["AGEGR1"]
    d1 = adsl.set_index("SUBJID")["TRTSDT"]
    table["AGEGR1"] = lookup(table["SUBJID"], agegr)
    table["D1"] = pd.to_datetime(lookup(table["SUBJID"], d1), errors="coerce")
    return table


def _value(row: Any, name: str) -> Any:
    value = getattr(row, name)
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else value


def build_adeff(study: Any, frames: Mapping[str, pd.DataFrame], adsl: pd.DataFrame) -> pd.DataFrame:
    """ADEFF from data-cut form frames and the ADSL core (see :func:`derive_adeff`)."""
    table = _visit_table(study, frames, adsl)
    base_visit = baseline_visit(study)
    baseline_num = study.visits[base_visit].num if base_visit in study.visits else 1
    primary = primary_visit(study)
    taper_visits = set(study.protocol.analysis.taper_visits)
    base_rows = {row.SUBJID: row for row in table[table["VISIT"] == base_visit].itertuples(index=False)}

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
                "AVAL": num(aval), "AVALC": avalc,
            }
            if crit is not None:
                record["CRIT1"], record["CRIT1FL"] = crit
            if nri is not None:
                record["AVALCNRI"] = "Y" if avalc == "Y" else "N"
                record["NRIFL"] = "Y" if avalc == "" else "N"
            records.append(record)

        def response(paramcd: str, result: bool | None, nri: bool | None = None) -> None:
            add(paramcd, None if result is None else int(result), yn(result), nri=nri)

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
                add("EULAR", None, eular or "", crit=("EULAR good or moderate response", yn(good_moderate)))
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
        if row.VISIT in taper_visits and base is not None and row.TAPERFL == "Y":
            held = adapted.get(30)
            response("TAPER", scores.taper_success(_value(base, "PREDMGKG"), _value(row, "PREDMGKG"),
                                                   response_held=held))
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
    adeff["USUBJID"] = lookup(adeff["SUBJID"], info["USUBJID"])
    adeff["SITEID"] = lookup(adeff["SUBJID"], info["SITEID"])
    adeff["AGEGR1"] = lookup(adeff["SUBJID"], info["AGEGR1"])
    adeff["PARAM"] = adeff["PARAMCD"].map(PARAMS)
    adeff["ADY"] = derive.compute_study_day(adeff["ADT"], lookup(adeff["SUBJID"], info["TRTSDT"]))
    _add_change(adeff, base_visit)
    adeff = adeff[columns].sort_values(["USUBJID", "AVISITN", "PARAMCD"], kind="stable")
    return label(adeff.reset_index(drop=True), "ADEFF")


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
