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
from trialkit.metadata import ParameterMeta

from . import derivations
from .adsl import PRIMARY_PARAM, adsl_core
from .common import (
    LABELS,
    add_subject_columns,
    apply_data_cut,
    baseline_visit,
    effective_data_cut,
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
EULAR_CODES = {"good": ("GOOD", 2), "moderate": ("MODERATE", 1), "none": ("NONE", 0)}

_CORE = "CORE visit record of the subject"
_RESPONSE = "AVAL 1 and AVALC Y when met, 0 and N when not; no record when undetermined"


def _p(paramcd: str, param: str, unit: str | None, derivation: str, datatype: str = "float",
       avalc: dict[str, str] | None = None, origin: str = "Derived") -> tuple:
    return paramcd, param, unit, derivation, datatype, avalc, origin


_YN = {"Y": "Yes", "N": "No"}
_PARAM_TABLE = [
    _p("PHGA", "Physician global assessment of disease activity (0-10 VAS)", "0-10",
       "CORE.PHGA of the visit.", origin="Predecessor"),
    _p("PAGA", "Parent/patient global assessment of well-being (0-10 VAS)", "0-10",
       "CORE.PAGA of the visit.", origin="Predecessor"),
    _p("CHAQ", "CHAQ/HAQ disability index (0-3)", "0-3",
       "Mean of the answered domain scores (highest answered item, at least 2 with the aid-or-help flag) when at least 6 of 8 domains are answered; 3 decimals (DERIVATIONS CHAQ/HAQ)."),
    _p("AJC71", "Active joint count, 71 joints (joints)", "joints",
       "JA joints swollen, or with limited motion and tender, among the 71; missing (never 0) when JADONE is not Y.", "integer"),
    _p("AJC27", "Active joint count, JADAS-27 joints (joints)", "joints",
       "As AJC71, among the 27 joints of protocol.joints.jadas27.", "integer"),
    _p("LOMC", "Joints with limited range of motion, 71 joints (joints)", "joints",
       "JA joints with LOM = Y among the 71.", "integer"),
    _p("ESR", "Erythrocyte sedimentation rate (mm/h)", "mm/h", "LB.LBSTRESN of ESR at the visit.", origin="Predecessor"),
    _p("CRP", "C-reactive protein (mg/L)", "mg/L", "LB.LBSTRESN of CRP at the visit.", origin="Predecessor"),
    _p("JADAS10", "JADAS-10 (0-40)", "0-40", "PHGA + PAGA + min(AJC71, 10) + (clamp(ESR, 20, 120) - 20)/10."),
    _p("JADAS27", "JADAS-27 (0-57)", "0-57", "PHGA + PAGA + AJC27 + (clamp(ESR, 20, 120) - 20)/10."),
    _p("JADAS71", "JADAS-71 (0-101)", "0-101", "PHGA + PAGA + AJC71 + (clamp(ESR, 20, 120) - 20)/10."),
    _p("CJADAS10", "Clinical JADAS-10 (0-30)", "0-30", "PHGA + PAGA + min(AJC71, 10)."),
    _p("SJADAS10", "Systemic JADAS-10 (0-50)", "0-50",
       "JADAS-10 + mSMS (fever from the highest diary temperature of V-7..V-1, else VS.TEMP; rash, lymphadenopathy, hepato/splenomegaly, serositis; Hb < 9 g/dL; platelets > 600 or ferritin > 500)."),
    _p("DAS28ESR", "DAS28-ESR (adults)", None,
       "0.56*sqrt(TJC28) + 0.28*sqrt(SJC28) + 0.70*ln(ESR) + 0.014*PTGH (3-variable form without PTGH), 2 decimals; ADULT subjects only."),
    _p("DAS28CRP", "DAS28-CRP (adults)", None,
       "0.56*sqrt(TJC28) + 0.28*sqrt(SJC28) + 0.36*ln(CRP + 1) + 0.014*PTGH + 0.96, 2 decimals; ADULT subjects only."),
    _p("EULAR", "EULAR response on DAS28-ESR (adults)", None,
       "EULAR response from DAS28-ESR (2 decimals) at the visit against D1: AVALC GOOD/MODERATE/NONE, AVAL 2/1/0; ADULT subjects, response visits only.",
       "integer", {"GOOD": "Good response", "MODERATE": "Moderate response", "NONE": "No response"}),
    *(_p(f"ACRP{level}", f"ACR Pedi {level} response", None,
         f"Giannini 1997 against D1 (at least 3 of 6 core-set variables improved by >= {level}%, at most 1 worsened by > 30%; missing values decide only when they cannot change the result); response visits only. {_RESPONSE}.",
         "integer", _YN) for level in ACR_LEVELS),
    *(_p(f"AACRP{level}", f"Adapted ACR Pedi {level} response" + (" (primary at W4)" if level == 30 else ""), None,
         f"ACR Pedi {level} (ADULT: EULAR good or moderate) and fever-free on V-7..V-1 and CRP and ESR each <= ULN or <= 50% of D1, in three-valued logic (not met when any part is not met); response visits only. {_RESPONSE}. At the primary visit an undetermined or missing response gets a DTYPE = NRI record with AVALC N.",
         "integer", _YN) for level in ADAPTED_LEVELS),
    _p("FEVFREE", "Fever-free on days V-7..V-1", None,
       f"At least 6 of the 7 diary days V-7..V-1 recorded and every recorded FVTEMP < 38.0 C (N when any is >= 38.0). {_RESPONSE}.",
       "integer", _YN),
    _p("PREDMGKG", "Prednisone-equivalent dose (mg/kg/day)", "mg/kg/day",
       "Sum over glucocorticoid CM courses (PO, IV, IM) active on the visit date of the daily dose x prednisone factor, divided by the latest weight."),
    _p("TAPER", "Corticosteroid taper success", None,
       f"At the taper visits against D1 (s, e in mg/kg/day): s > 0.8 and e <= 0.5, or 0.5 <= s <= 0.8 and s - e >= 0.3, or e <= 0.2, each while AACRP30 holds; only for subjects with a glucocorticoid at D1 (ADSL.TAPERFL = Y, amendment 1). {_RESPONSE}.",
       "integer", _YN),
    _p("CID", "Clinical inactive disease (Wallace 2011)", None,
       f"AJC71 = 0, CORE FEVER, RASH, SEROS, HEPSPL, LYMPH all N, ESR and CRP <= ULN, PHGA = 0. {_RESPONSE}.",
       "integer", _YN),
    _p("NSAIDDC", "NSAID discontinuation (no NSAID on days V-7..V)", None,
       f"Subjects with an NSAID course active at D1 (ADSL.NSAIDFL = Y), at protocol.analysis.nsaid_visits: met when no NSAID course is active on any day V-7..V (open courses to the data cut, partial end dates to the month's last day). {_RESPONSE}.",
       "integer", _YN),
    _p("MAS", "Macrophage activation syndrome at the visit (Ravelli 2016)", None,
       f"Febrile (CORE FEVER = Y or a diary temperature >= 38.0 C within 1 day of the sample) and ferritin > 684 ng/mL and at least 2 of platelets <= 181, AST > 48, triglycerides > 156, fibrinogen <= 360, all of the visit's sample date; at every scheduled laboratory visit. {_RESPONSE}.",
       "integer", _YN),
]
#: The ADEFF parameters (PARAMCD → ParameterMeta), in PARAMN order.
PARAMETERS: dict[str, ParameterMeta] = {
    code: ParameterMeta(paramcd=code, param=param, paramn=number, unit=unit, derivation=derivation,
                        datatype=datatype, avalc=avalc, origin=origin)
    for number, (code, param, unit, derivation, datatype, avalc, origin) in enumerate(_PARAM_TABLE, start=1)
}
#: PARAMCD → PARAM.
PARAMS: dict[str, str] = {code: meta.param for code, meta in PARAMETERS.items()}
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
    """Efficacy analysis dataset (BDS): one row per subject, parameter (:data:`PARAMETERS`) and
    analysis visit where the parameter is collected or derived, sorted USUBJID, PARAMCD, AVISITN.

    Every row has AVAL or AVALC: a parameter that is not collected at a visit, and a response that
    cannot be determined, have no row. Decisions where the protocol is silent:

    - AVISIT is the nominal CRF visit (CORE, CHAQ, LB ESR/CRP records; UNS excluded); the window
      check is PD-07's business.
    - ADT is the date of the record a value comes from (CSDAT for CORE values and composites,
      QSDAT / LBDAT / VSDAT when CORE is missing); ADY its study day.
    - Baseline = the D1 record (ABLFL = "Y"); BASE on D1 and later records; CHG (exact) and PCHG
      (2 decimals) only after D1; numeric parameters only.
    - Responses (ACRP*, AACRP*, FEVFREE, TAPER, CID, NSAIDDC, MAS): AVAL 1/0, AVALC "Y"/"N".
      ACRP/AACRP/EULAR only at ``protocol.analysis.response_visits`` (the core-set visits after
      D1). The adapted response uses ACR Pedi for PEDI and EULAR good/moderate (DAS28-ESR) for
      ADULT; DAS28/EULAR only for ADULT. EULAR: AVALC GOOD/MODERATE/NONE (AVAL 2/1/0), CRIT1FL =
      good or moderate.
    - The primary parameter (AACRP30) at the primary visit: every randomised or dosed subject
      without a determined response gets a record with DTYPE = "NRI", AVAL 0, AVALC "N" (the
      non-responder imputation of the synopsis).
    - FEVFREE uses the diary V−7..V−1 before the visit date; sJADAS-10 fever T = diary maximum
      there, else the VS TEMP of the visit.
    - PREDMGKG on the visit date; TAPER at ``protocol.analysis.taper_visits`` (W24/W52) with s = the
      D1 dose (mg/kg/day), response held = AACRP30 at that visit, only for ADSL TAPERFL = Y
      (amendment 1: not applicable otherwise, never "not met").
    - NSAIDDC at ``protocol.analysis.nsaid_visits`` for ADSL NSAIDFL = Y; MAS at every scheduled
      visit with MAS laboratory results (:func:`.derivations.derive_mas`).
    """
    frames = apply_data_cut(forms, data_cut)
    cut = effective_data_cut(frames, data_cut)
    if adsl is None:
        adsl = adsl_core(study, frames, None, data_cut=cut)
    return build_adeff(study, frames, adsl, data_cut=cut)


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
    table["NSAIDFL"] = lookup(table["SUBJID"], adsl.set_index("SUBJID")["NSAIDFL"])
    agegr = adsl.set_index("SUBJID")["AGEGR1"]
    d1 = adsl.set_index("SUBJID")["TRTSDT"]
    table["AGEGR1"] = lookup(table["SUBJID"], agegr)
    table["D1"] = pd.to_datetime(lookup(table["SUBJID"], d1), errors="coerce")
    return table


def _value(row: Any, name: str) -> Any:
    value = getattr(row, name)
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else value


def build_adeff(study: Any, frames: Mapping[str, pd.DataFrame], adsl: pd.DataFrame, *,
                data_cut: Any = None) -> pd.DataFrame:
    """ADEFF from data-cut form frames and the ADSL core (see :func:`derive_adeff`)."""
    table = _visit_table(study, frames, adsl)
    base_visit = baseline_visit(study)
    baseline_num = study.visits[base_visit].num if base_visit in study.visits else 1
    analysis = study.protocol.analysis
    taper_visits = set(analysis.taper_visits)
    response_visits = set(analysis.response_visits)
    nsaid_visits = set(analysis.nsaid_visits)
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
        responses_here = row.VISIT in response_visits
        core_date = row.CSDAT if pd.notna(row.CSDAT) else row.VDATE

        def add(paramcd: str, aval: Any = None, avalc: Any = None, adt: Any = core_date,
                crit: tuple[str, str | None] | None = None, _row: Any = row) -> None:
            record = {
                "SUBJID": _row.SUBJID, "PARAMCD": paramcd, "AVISIT": _row.VISIT,
                "AVISITN": _row.AVISITN, "ADT": adt if pd.notna(adt) else _row.VDATE,
                "AVAL": num(aval), "AVALC": avalc,
            }
            if crit is not None:
                record["CRIT1"], record["CRIT1FL"] = crit
            records.append(record)

        def response(paramcd: str, result: bool | None) -> None:
            add(paramcd, None if result is None else int(result), yn(result))

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
            if responses_here:
                eular = scores.eular_response(das28(base, "ESR"), das28(row, "ESR"))
                if eular is not None:
                    code, number = EULAR_CODES[eular]
                    add("EULAR", number, code,
                        crit=("EULAR good or moderate response", yn(eular in ("good", "moderate"))))
        adapted: dict[int, bool | None] = {}
        if responses_here:
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
                    response(f"AACRP{level}", adapted[level])
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

    records += _nsaid_records(study, frames, table, nsaid_visits, data_cut)
    records += _mas_records(study, frames, adsl)
    adeff = pd.DataFrame.from_records(records)
    if adeff.empty:
        adeff = pd.DataFrame(columns=["SUBJID", "PARAMCD", "AVISIT", "AVISITN", "ADT", "AVAL", "AVALC"])
    for column in ("CRIT1", "CRIT1FL", "DTYPE"):
        if column not in adeff.columns:
            adeff[column] = None
    adeff["AVAL"] = adeff["AVAL"].astype(float)
    adeff = derive.drop_empty_records(adeff)
    adeff = pd.concat([adeff, _nri_records(study, adeff, adsl)], ignore_index=True)
    adeff["ADT"] = pd.to_datetime(adeff["ADT"], errors="coerce")
    adeff["AVISITN"] = pd.array(adeff["AVISITN"], dtype="Int64")
    adeff["AVAL"] = adeff["AVAL"].astype(float)
    for column in ("AVALC", "CRIT1", "CRIT1FL", "DTYPE"):
        adeff[column] = adeff[column].astype(object).where(adeff[column].notna(), None)
    add_subject_columns(adeff, study, adsl)
    adeff["PARAM"] = adeff["PARAMCD"].map(PARAMS)
    adeff["PARAMN"] = pd.array(adeff["PARAMCD"].map({c: m.paramn for c, m in PARAMETERS.items()}), dtype="Int64")
    adeff["ADY"] = derive.compute_study_day(adeff["ADT"], lookup(adeff["SUBJID"], adsl.set_index("SUBJID")["TRTSDT"]))
    _add_change(adeff, base_visit, baseline_num)
    columns = list(LABELS["ADEFF"])
    adeff["_DT"] = adeff["DTYPE"].notna()
    adeff = adeff.sort_values(["USUBJID", "PARAMN", "AVISITN", "_DT"], kind="stable")[columns]
    return label(adeff.reset_index(drop=True), "ADEFF", study, tuple(PARAMETERS.values()))


def _nsaid_records(study: Any, frames: Mapping[str, pd.DataFrame], table: pd.DataFrame, visits: set[str],
                   data_cut: Any) -> list[dict[str, Any]]:
    """NSAIDDC at the NSAID visits of subjects with an NSAID at D1 (ADSL NSAIDFL = Y)."""
    chosen = table[table["VISIT"].isin(visits).to_numpy() & table["NSAIDFL"].eq("Y").fillna(False).to_numpy()
                   & table["VDATE"].notna().to_numpy()]
    if chosen.empty:
        return []
    days = study.protocol.analysis.nsaid_window_days
    periods = pd.DataFrame({"SUBJID": chosen["SUBJID"].to_numpy(),
                            "FROM": (chosen["VDATE"] - pd.Timedelta(days=days)).to_numpy(),
                            "TO": chosen["VDATE"].to_numpy()})
    active = derivations.derive_nsaid_active(frames["CM"], periods, protocol=study.protocol, data_cut=data_cut)
    records = []
    for row, on_nsaid in zip(chosen.itertuples(index=False), active["NSAIDACT"], strict=True):
        met = None if pd.isna(on_nsaid) else not bool(on_nsaid)
        records.append({"SUBJID": row.SUBJID, "PARAMCD": "NSAIDDC", "AVISIT": row.VISIT, "AVISITN": row.AVISITN,
                        "ADT": row.VDATE, "AVAL": num(None if met is None else int(met)), "AVALC": yn(met)})
    return records


def _mas_records(study: Any, frames: Mapping[str, pd.DataFrame], adsl: pd.DataFrame) -> list[dict[str, Any]]:
    """MAS at every scheduled laboratory visit (:func:`.derivations.derive_mas`)."""
    visits = {code for code, v in study.visits.items() if v.scheduled and v.anchor != "none"}
    mas = derivations.derive_mas(frames["LB"], frames["CORE"], frames["FEVER"], protocol=study.protocol,
                                 visits=visits)
    mas = mas[mas["SUBJID"].isin(set(adsl["SUBJID"])).to_numpy()]
    numbers = {code: v.num for code, v in study.visits.items()}
    records = []
    for row in mas.itertuples(index=False):
        met = None if pd.isna(row.MAS) else bool(row.MAS)
        records.append({"SUBJID": row.SUBJID, "PARAMCD": "MAS", "AVISIT": row.VISIT,
                        "AVISITN": numbers.get(row.VISIT), "ADT": row.LBDAT,
                        "AVAL": num(None if met is None else int(met)), "AVALC": yn(met)})
    return records


def _nri_records(study: Any, adeff: pd.DataFrame, adsl: pd.DataFrame) -> pd.DataFrame:
    """Non-responder imputation of the primary endpoint: a DTYPE = NRI record (AVAL 0, AVALC N) at
    the primary visit for every randomised or dosed subject without a determined primary response."""
    primary = primary_visit(study)
    done = set(adeff.loc[(adeff["PARAMCD"] == PRIMARY_PARAM).to_numpy() & (adeff["AVISIT"] == primary).to_numpy(),
                         "SUBJID"])
    eligible = adsl.loc[(adsl["RANDFL"].eq("Y") | adsl["SAFFL"].eq("Y")).to_numpy(), "SUBJID"]
    missing = [s for s in eligible if s not in done]
    number = study.visits[primary].num if primary in study.visits else None
    return pd.DataFrame({
        "SUBJID": pd.Series(missing, dtype=object), "PARAMCD": PRIMARY_PARAM, "AVISIT": primary,
        "AVISITN": number, "ADT": pd.NaT, "AVAL": 0.0, "AVALC": "N", "DTYPE": "NRI",
        "CRIT1": None, "CRIT1FL": None,
    })


def _add_change(adeff: pd.DataFrame, baseline_visit: str, baseline_num: int) -> None:
    """ABLFL, BASE (D1 and later), CHG (exact) and PCHG (2 decimals, after D1) for the numeric
    parameters, in place (:mod:`trialkit.derive.bds`)."""
    numeric = adeff["PARAMCD"].isin(NUMERIC_PARAMS).to_numpy()
    visit = adeff["AVISITN"].astype("Float64")
    on_or_after = (visit >= baseline_num).fillna(False).to_numpy(dtype=bool) & numeric
    after = (visit > baseline_num).fillna(False).to_numpy(dtype=bool) & numeric
    keys = ["SUBJID", "PARAMCD"]
    is_base = pd.Series((adeff["AVISIT"] == baseline_visit).to_numpy() & numeric, index=adeff.index)
    out = derive.derive_var_ablfl(adeff, by=keys, is_baseline=is_base, order=["ADT"])
    out = derive.derive_var_base(out, by=keys, where=pd.Series(on_or_after, index=adeff.index))
    out = derive.derive_var_chg(out, where=pd.Series(after, index=adeff.index))
    out = derive.derive_var_pchg(out, where=pd.Series(after, index=adeff.index))
    for column in ("ABLFL", "BASE", "CHG", "PCHG"):
        adeff[column] = out[column]
    adeff["ABLFL"] = adeff["ABLFL"].astype(object).where(adeff["ABLFL"].notna(), None)
