"""The defects of issue 16 and the endpoints it adds, each on a literal case that triggers it and one
that does not: TRTEDT of a subject still dosing, BDS-clean ADEFF (no empty records, no CHG before
baseline, no ''), the TEAE window with partial start dates, NSAID discontinuation, MAS at a visit,
UPCR in amyloidosis, the laboratory AESI, time to discontinuation, the populations and the
treatment variables of an unblinded pool.

The base study is the three-subject one of ``test_adam.py`` (D1 = 2024-03-01, W4 = 2024-03-29).
"""

from __future__ import annotations

import pandas as pd
import pytest

from . import test_adam
from .test_adam import D1, S1, S2, S3, W4, _core, _lab, adam, frame, ts

forms = test_adam.forms  # the three-subject study (a module-scope fixture)

CUT = "2024-06-30"
RANDLIST = pd.DataFrame({"RANDNO": ["R001", "R002", "R003"], "ARM": ["ANAKINRA", "PLACEBO", "ANAKINRA"]})


def derived(study, forms, **kwargs):
    return adam.derive_datasets(study, forms, **kwargs)


def with_rows(forms, code, rows, *, as_typed=False):
    """``forms`` with ``rows`` added to form ``code`` (``as_typed``: partial dates stay text)."""
    changed = dict(forms)
    added = pd.DataFrame(rows) if as_typed else frame(rows)
    changed[code] = pd.concat([forms[code].astype(object) if as_typed else forms[code], added], ignore_index=True)
    return changed


def row(data: pd.DataFrame, **where):
    mask = pd.Series(True, index=data.index)
    for column, value in where.items():
        mask &= data[column].eq(value)
    chosen = data[mask]
    assert len(chosen) == 1, (where, len(chosen))
    return chosen.iloc[0]


# ------------------------------------------------------------------------------------------------
# ADSL: exposure


def test_trtedt_is_empty_while_a_course_is_open_and_exposure_runs_to_the_data_cut(study, forms):
    ongoing = dict(forms)
    # 01-001 has a second course, still open; 07-002's only course ends after the data cut.
    ex = forms["EX"].copy()
    ex.loc[ex["SUBJID"] == S2, "EXENDAT"] = ts("2024-08-31")
    ongoing["EX"] = pd.concat([ex, frame([{"SITEID": "01", "SUBJID": S1, "EXSTDAT": "2024-07-01", "EXENDAT": None,
                                           "EXDOSE": 50.0, "KITNO": "K9", "EXMISS": 0}])], ignore_index=True)
    adsl = derived(study, ongoing, data_cut="2024-07-31")["ADSL"].set_index("SUBJID")
    # Never the start of the open course (2024-07-01).
    assert pd.isna(adsl.loc[S1, "TRTEDT"]) and adsl.loc[S1, "TRTONGFL"] == "Y"
    # Exposure to the data cut: 2024-03-01 .. 2024-07-31 = 153 days.
    assert adsl.loc[S1, "TRTDURD"] == 153
    # A course ending after the cut was still open at the cut.
    assert pd.isna(adsl.loc[S2, "TRTEDT"]) and adsl.loc[S2, "TRTONGFL"] == "Y"
    # The subject whose course ended (2024-03-20): TRTEDT and its own duration.
    assert adsl.loc[S3, "TRTEDT"] == ts("2024-03-20") and adsl.loc[S3, "TRTONGFL"] == "N"
    assert adsl.loc[S3, "TRTDURD"] == 20
    assert adsl.loc[S1, "DCUTDT"] == ts("2024-07-31")


def test_without_a_data_cut_the_latest_date_is_the_cut(study, forms):
    adsl = derived(study, forms)["ADSL"]
    assert set(adsl["DCUTDT"]) == {ts("2024-06-30")}  # the latest EXENDAT of the forms


# ------------------------------------------------------------------------------------------------
# ADSL: randomisation and populations


def test_randomisation_variables_and_populations(study, forms):
    changed = dict(forms)
    # 01-003 randomised PEDI but never dosed; an extra subject 01-004 dosed without randomisation.
    changed["EX"] = pd.concat([forms["EX"][forms["EX"]["SUBJID"] != S3],
                               frame([{"SITEID": "01", "SUBJID": "01-004", "EXSTDAT": D1, "EXENDAT": "2024-03-10",
                                       "EXDOSE": 40.0, "KITNO": "K4", "EXMISS": 0}])], ignore_index=True)
    adsl = derived(study, changed)["ADSL"].set_index("SUBJID")
    assert adsl.loc[S2, "RANDNO"] == "R002" and adsl.loc[S2, "RANDDT"] == ts(D1)
    assert adsl.loc[S2, "STRATAR"] == "ADULT" and adsl.loc[S2, "AGEGR1"] == "ADULT"
    assert adsl.loc[[S1, S3, "01-004"], "ITTFL"].tolist() == ["Y", "Y", "N"]
    assert adsl.loc[[S1, S3, "01-004"], "FASFL"].tolist() == ["Y", "N", "N"]
    assert adsl.loc[[S1, S3, "01-004"], "SAFFL"].tolist() == ["Y", "N", "Y"]


def test_pprotfl_counts_only_confirmed_major_deviations_of_the_log(study, forms):
    log = pd.DataFrame({"SUBJID": [S1, S2, S3], "CODE": ["PD-05", "PD-09", "PD-06"],
                        "class": ["major", "major", "minor"], "status": ["confirmed", "open", "confirmed"]})
    adsl = derived(study, forms, deviations=log)["ADSL"].set_index("SUBJID")
    # Only 01-001's major deviation is confirmed; 07-002's is still open; 01-003's is minor.
    assert adsl.loc[[S1, S2, S3], "PPROTFL"].tolist() == ["N", "Y", "Y"]
    # Recorded deviations without a status (before the log existed): every major one counts.
    recorded = log.drop(columns="status")
    adsl = derived(study, forms, deviations=recorded)["ADSL"].set_index("SUBJID")
    assert adsl.loc[[S1, S2, S3], "PPROTFL"].tolist() == ["N", "N", "Y"]


def test_treatment_variables_only_when_unblinded(study, forms):
    blinded = derived(study, forms)
    for name, data in blinded.items():
        assert not {"ARM", "TRT01P", "TRT01PN", "TRT01A", "TRT01AN", "TRT02P", "TRTA", "TRTAN"} & set(data.columns), name
    unblinded = derived(study, forms, randlist=RANDLIST)
    adsl = unblinded["ADSL"].set_index("SUBJID")
    assert adsl.loc[[S1, S2, S3], "TRT01P"].tolist() == ["ANAKINRA", "PLACEBO", "ANAKINRA"]
    # Numbers in the order of the study's [[arms]]: ANAKINRA 1, PLACEBO 2.
    assert adsl.loc[[S1, S2, S3], "TRT01PN"].tolist() == [1, 2, 1]
    assert adsl.loc[[S1, S2, S3], "TRT01AN"].tolist() == [1, 2, 1]
    # Part B is open-label anakinra for those who completed Part A and were dosed after day 29.
    assert adsl.loc[S2, "TRT02A"] == "ANAKINRA" and pd.isna(adsl.loc[S3, "TRT02P"])
    assert unblinded["ADSL"].attrs["value_labels"]["TRT01PN"] == {1: "Anakinra plus methotrexate",
                                                                  2: "Placebo plus methotrexate"}


# ------------------------------------------------------------------------------------------------
# ADEFF: BDS


def test_adeff_has_no_empty_records_and_no_empty_text(study, forms):
    # A CORE record at W1 (no core set at that visit in this protocol) with nothing in it but the date.
    extra = _core(S1, "W1", "2024-03-08", None, None)
    adeff = derived(study, with_rows(forms, "CORE", [extra]))["ADEFF"]
    assert (adeff["AVAL"].notna() | adeff["AVALC"].notna()).all()
    for column in ("AVALC", "ABLFL", "CRIT1FL", "DTYPE"):
        assert not adeff[column].eq("").any(), column
    assert set(adeff["ABLFL"].dropna()) == {"Y"}
    assert set(adeff["CRIT1FL"].dropna()) <= {"Y", "N"}
    # The responses are derived only at the core-set visits after D1: nothing at W1.
    at_w1 = adeff[adeff["AVISIT"] == "W1"]
    assert not at_w1["PARAMCD"].str.match(r"A?ACRP").any()


def test_no_change_from_baseline_before_baseline(study, forms):
    adeff = derived(study, with_rows(forms, "CORE", [_core(S1, "SCR", "2024-02-20", 8.0, 7.0)]))["ADEFF"]
    scr = row(adeff, SUBJID=S1, PARAMCD="PHGA", AVISIT="SCR")
    assert scr["AVAL"] == 8.0
    assert pd.isna(scr["BASE"]) and pd.isna(scr["CHG"]) and pd.isna(scr["PCHG"]) and pd.isna(scr["ABLFL"])
    base = row(adeff, SUBJID=S1, PARAMCD="PHGA", AVISIT="D1")
    assert base["ABLFL"] == "Y" and base["BASE"] == 7.0 and pd.isna(base["CHG"])
    assert row(adeff, SUBJID=S1, PARAMCD="PHGA", AVISIT="W4")["CHG"] == pytest.approx(-2.1)


# ------------------------------------------------------------------------------------------------
# ADAE


def _ae(subject, term, start, aesi="NONE"):
    return {"SITEID": subject[:2], "SUBJID": subject, "AETERM": term, "AESTDAT": start, "AEENDAT": None,
            "AEONGO": "Y", "AETOXGR": 1, "AESER": "N", "AEREL": "NOT RELATED", "AEOUT": "RECOVERING", "AESI": aesi}


def test_partial_start_dates_are_imputed_never_later_than_allowed(study, forms):
    changed = dict(forms)
    ae = pd.DataFrame([_ae(S1, "Rash", "2024-03"), _ae(S1, "Cough", "2024-02"), _ae(S1, "Fever", "2024"),
                       _ae(S1, "Otitis", "2024-04-02")])
    changed["AE"] = ae  # AESTDAT as typed: partial dates are text
    adae = adam.derive_adae(study, changed).set_index("AETERM")
    # The first dose (2024-03-01) falls in March 2024: the March AE is imputed to it, not later.
    assert adae.loc["Rash", "ASTDT"] == ts("2024-03-01") and adae.loc["Rash", "ASTDTF"] == "D"
    assert adae.loc["Rash", "TRTEMFL"] == "Y"
    # February is before the first dose's month: the 1st, not emergent.
    assert adae.loc["Cough", "ASTDT"] == ts("2024-02-01") and pd.isna(adae.loc["Cough", "TRTEMFL"])
    # A year alone, the first dose in that year: the first dose date, flag M.
    assert adae.loc["Fever", "ASTDT"] == ts("2024-03-01") and adae.loc["Fever", "ASTDTF"] == "M"
    assert pd.isna(adae.loc["Otitis", "ASTDTF"]) and adae.loc["Otitis", "ASTDT"] == ts("2024-04-02")


def test_teae_window_follows_trtedt_and_the_ongoing_flag(study, forms):
    changed = dict(forms)
    changed["AE"] = frame([_ae(S3, "Day 28", "2024-04-17"), _ae(S3, "Day 29", "2024-04-18"),
                           _ae(S1, "Late", "2024-09-01")])
    adae = derived(study, changed, data_cut="2024-09-30")["ADAE"].set_index("AETERM")
    # 01-003's last dose 2024-03-20: + 28 days = 2024-04-17 is emergent, the day after is not.
    assert adae.loc["Day 28", "TRTEMFL"] == "Y" and pd.isna(adae.loc["Day 29", "TRTEMFL"])
    # 01-001's course ended 2024-06-30: an AE on 09-01 is long after.
    assert pd.isna(adae.loc["Late", "TRTEMFL"])
    # Still dosing at the cut (open course): no TRTEDT, any AE from the first dose is emergent.
    changed["EX"] = forms["EX"].assign(EXENDAT=[pd.NaT, forms["EX"]["EXENDAT"][1], forms["EX"]["EXENDAT"][2]])
    adae = derived(study, changed, data_cut="2024-09-30")["ADAE"].set_index("AETERM")
    assert adae.loc["Late", "TRTEMFL"] == "Y"


def test_aesi_flags_period_and_actual_treatment(study, forms):
    changed = dict(forms)
    changed["AE"] = frame([_ae(S2, "Neutropenia", "2024-03-10", "NEUTROPENIA"),
                           _ae(S2, "Site reaction", "2024-05-10", "INJECTION SITE REACTION"),
                           _ae(S2, "Headache", "2024-02-25")])
    adae = derived(study, changed, randlist=RANDLIST)["ADAE"].set_index("AETERM")
    assert adae.loc["Neutropenia", ["AESIFL", "AESINEU", "AESIISR"]].tolist() == ["Y", "Y", "N"]
    assert adae.loc["Headache", ["AESIFL", "AESINEU"]].tolist() == ["N", "N"]
    # 07-002 was randomised to placebo: Part A events are on placebo, Part B on open-label anakinra.
    assert adae.loc["Neutropenia", "APERIOD"] == 1 and adae.loc["Neutropenia", "TRTA"] == "PLACEBO"
    assert adae.loc["Site reaction", "APERIOD"] == 2 and adae.loc["Site reaction", "TRTA"] == "ANAKINRA"
    assert adae.loc["Site reaction", "TRTAN"] == 1
    assert pd.isna(adae.loc["Headache", "APERIOD"]) and pd.isna(adae.loc["Headache", "TRTA"])


# ------------------------------------------------------------------------------------------------
# New endpoints


def _cm(subject, drug, start, end, ongoing="N"):
    return {"SITEID": subject[:2], "SUBJID": subject, "CMTRT": drug, "CMDOSE": 250.0, "CMDOSU": "mg", "CMFRQ": "BID",
            "CMROUTE": "PO", "CMSTDAT": start, "CMENDAT": end, "CMONGO": ongoing}


def _visit(subject, visit, date):
    return _core(subject, visit, date, 3.0, 3.0, 30 if subject == S2 else None)


def test_nsaid_discontinuation(study, forms):
    # W12 = 2024-05-23 for both. 01-001 stopped naproxen at the end of April 2024 (partial end date:
    # the 30th) → discontinued at W12. 07-002 takes ibuprofen ongoing → not discontinued. 01-003 has
    # no NSAID at D1 → no record.
    changed = with_rows(forms, "CM", [_cm(S1, "NAPROXEN", "2023-06", "2024-04"),
                                      _cm(S2, "IBUPROFEN", "2024-01-10", None, "Y"),
                                      _cm(S3, "NAPROXEN", "2024-03-05", None, "Y")], as_typed=True)
    changed = with_rows(changed, "CORE", [_visit(S1, "W12", "2024-05-23"), _visit(S2, "W12", "2024-05-23"),
                                          _visit(S3, "W12", "2024-05-23")])
    data = derived(study, changed)
    adsl = data["ADSL"].set_index("SUBJID")
    assert adsl.loc[[S1, S2, S3], "NSAIDFL"].tolist() == ["Y", "Y", "N"]
    nsaid = data["ADEFF"][data["ADEFF"]["PARAMCD"] == "NSAIDDC"].set_index("SUBJID")
    assert nsaid.loc[S1, "AVALC"] == "Y" and nsaid.loc[S1, "AVAL"] == 1.0 and nsaid.loc[S1, "AVISIT"] == "W12"
    assert nsaid.loc[S2, "AVALC"] == "N"
    assert S3 not in nsaid.index
    # A course that ends within V-7..V (on 2024-05-20) is still active in the window: not met.
    late = with_rows(forms, "CM", [_cm(S1, "NAPROXEN", "2023-06", "2024-05-20")], as_typed=True)
    late = with_rows(late, "CORE", [_visit(S1, "W12", "2024-05-23")])
    adeff = derived(study, late)["ADEFF"]
    assert row(adeff, SUBJID=S1, PARAMCD="NSAIDDC")["AVALC"] == "N"


def _mas_labs(subject, visit, date, ferritin, plat, ast, trig=None, fib=None):
    values = {"FERRITIN": ferritin, "PLAT": plat, "AST": ast, "TRIG": trig, "FIBRINO": fib}
    return [_lab(subject, visit, date, test, value, None) for test, value in values.items() if value is not None]


def test_mas_at_a_visit(study, forms):
    # W1 (no CORE at W1): 01-001 febrile by the diary the day before the sample (38.6 °C) with
    # ferritin 2500, platelets 150, AST 90 → MAS. 07-002: the same labs, afebrile CORE at W2 → not MAS.
    # 01-003 febrile, ferritin 2500 and only platelets 150 known → undetermined: no record.
    changed = with_rows(forms, "LB", [*_mas_labs(S1, "W1", "2024-03-08", 2500, 150, 90),
                                      *_mas_labs(S2, "W2", "2024-03-15", 2500, 150, 90),
                                      *_mas_labs(S3, "W1", "2024-03-08", 2500, 150, None)])
    changed = with_rows(changed, "FEVER", [{"SITEID": "01", "SUBJID": S1, "FVDAT": "2024-03-07", "FVTEMP": 38.6},
                                           {"SITEID": "01", "SUBJID": S3, "FVDAT": "2024-03-08", "FVTEMP": 39.0}])
    changed = with_rows(changed, "CORE", [_core(S2, "W2", "2024-03-15", 2.0, 2.0, 20)])
    adeff = derived(study, changed)["ADEFF"]
    mas = adeff[adeff["PARAMCD"] == "MAS"]
    assert row(mas, SUBJID=S1, AVISIT="W1")["AVALC"] == "Y"
    assert row(mas, SUBJID=S1, AVISIT="W1")["ADT"] == ts("2024-03-08")
    assert row(mas, SUBJID=S2, AVISIT="W2")["AVALC"] == "N"
    assert mas[mas["SUBJID"] == S3].empty
    # Ferritin at the threshold (684, not > 684) is never MAS, whatever is missing.
    low = with_rows(forms, "LB", _mas_labs(S3, "W1", "2024-03-08", 684, None, None))
    low = with_rows(low, "FEVER", [{"SITEID": "01", "SUBJID": S3, "FVDAT": "2024-03-08", "FVTEMP": 39.0}])
    assert row(derived(study, low)["ADEFF"], SUBJID=S3, PARAMCD="MAS")["AVALC"] == "N"


def test_upcr_in_amyloidosis_with_change_from_d1(study, forms):
    changed = dict(forms)
    changed["MH"] = forms["MH"].assign(AMYLOID=["Y", "N", "N"])
    changed = with_rows(changed, "LB", [_lab(S1, "D1", D1, "UPCR", 2.0, None), _lab(S1, "W4", W4, "UPCR", 0.5, None),
                                        _lab(S2, "D1", D1, "UPCR", 0.1, None)])
    data = derived(study, changed)
    assert data["ADSL"].set_index("SUBJID").loc[[S1, S2], "AMYLFL"].tolist() == ["Y", "N"]
    adlb = data["ADLB"]
    w4 = row(adlb, SUBJID=S1, PARAMCD="UPCR", AVISIT="W4")
    assert w4["PARAM"] == "Urine protein/creatinine ratio (mg/mg)"
    assert w4["AMYLFL"] == "Y" and w4["BASE"] == 2.0 and w4["CHG"] == -1.5 and w4["PCHG"] == -75.0
    endpoint = adlb[(adlb["PARAMCD"] == "UPCR") & (adlb["AMYLFL"] == "Y")]
    assert set(endpoint["SUBJID"]) == {S1}


def test_laboratory_aesi_at_their_exact_thresholds(study, forms):
    labs = [
        {**_lab(S1, "W1", "2024-03-08", "ANC", 0.9, None)},
        {**_lab(S2, "W1", "2024-03-08", "ANC", 1.0, None)},
        {**_lab(S1, "W2", "2024-03-15", "ALT", 120.01, 40.0)},
        {**_lab(S2, "W2", "2024-03-15", "ALT", 120.0, 40.0)},
        {**_lab(S2, "W2", "2024-03-15", "AST", 150.0, None)},
    ]
    adlb = derived(study, with_rows(forms, "LB", labs))["ADLB"]
    assert row(adlb, SUBJID=S1, PARAMCD="ANC")["NEUTRFL"] == "Y"
    assert row(adlb, SUBJID=S2, PARAMCD="ANC")["NEUTRFL"] == "N"  # 1.0 is not < 1.0
    assert row(adlb, SUBJID=S1, PARAMCD="ALT")["HEPATFL"] == "Y"
    assert row(adlb, SUBJID=S2, PARAMCD="ALT")["HEPATFL"] == "N"  # 120 is not > 3 × 40
    assert pd.isna(row(adlb, SUBJID=S2, PARAMCD="AST")["HEPATFL"])  # no ULN: not decided
    assert pd.isna(row(adlb, SUBJID=S1, PARAMCD="ANC")["HEPATFL"])
    assert row(adlb, SUBJID=S1, PARAMCD="ALT")["ANRIND"] == "HIGH"


def test_adlb_leaves_out_tests_not_done(study, forms):
    changed = with_rows(forms, "LB", [{**_lab(S1, "W1", "2024-03-08", "HGB", None, None), "LBSTAT": "ND"}])
    adlb = derived(study, changed)["ADLB"]
    assert adlb[adlb["PARAMCD"] == "HGB"].empty
    assert adlb["AVAL"].notna().all()


def test_time_to_discontinuation(study, forms):
    changed = dict(forms)
    changed["DS"] = frame([
        {"SITEID": "01", "SUBJID": S3, "DSDECOD": "ADVERSE EVENT", "DSSTDAT": "2024-03-20", "DSPART": "A"},
        {"SITEID": "07", "SUBJID": S2, "DSDECOD": "LACK OF EFFICACY", "DSSTDAT": "2024-05-01", "DSPART": "B"},
    ])
    adtte = derived(study, changed)["ADTTE"]
    # 01-003: adverse event on day 20 → an event for all reasons, censored for efficacy reasons.
    all_reasons = row(adtte, SUBJID=S3, PARAMCD="TTDISC")
    assert (all_reasons["AVAL"], all_reasons["CNSR"]) == (20, 0)
    assert all_reasons["EVNTDESC"] == "DISCONTINUATION: ADVERSE EVENT" and pd.isna(all_reasons["CNSDTDSC"])
    efficacy = row(adtte, SUBJID=S3, PARAMCD="TTDISCEF")
    assert (efficacy["AVAL"], efficacy["CNSR"], efficacy["CNSDTDSC"]) == (20, 1, "DISPOSITION DATE")
    # 07-002: lack of efficacy on 2024-05-01 (day 62) is an event for both.
    assert row(adtte, SUBJID=S2, PARAMCD="TTDISCEF")[["AVAL", "CNSR"]].tolist() == [62, 0]
    # 01-001 still on study: censored at the last visit on or before the cut (W4, day 29).
    on_study = row(adtte, SUBJID=S1, PARAMCD="TTDISC")
    assert on_study[["AVAL", "CNSR", "ADT"]].tolist() == [29, 1, ts(W4)]
    assert on_study["CNSDTDSC"] == "LAST VISIT ON OR BEFORE THE DATA CUT"
    assert set(adtte["STARTDT"]) == {ts(D1)}
    # A completed subject is censored at its disposition date.
    changed["DS"] = frame([{"SITEID": "01", "SUBJID": S1, "DSDECOD": "COMPLETED", "DSSTDAT": "2025-02-27",
                            "DSPART": "B"}])
    done = row(derived(study, changed)["ADTTE"], SUBJID=S1, PARAMCD="TTDISC")
    assert done[["AVAL", "CNSR", "EVNTDESC"]].tolist() == [364, 1, "COMPLETED"]


# ------------------------------------------------------------------------------------------------
# Metadata


def test_every_dataset_declares_its_variables_parameters_and_labels(study, forms):
    data = derived(study, forms, randlist=RANDLIST)
    assert {name: d.attrs["dataset_label"] for name, d in data.items()} == {
        "ADSL": "Subject-Level Analysis Dataset", "ADEFF": "Efficacy Analysis Dataset",
        "ADAE": "Adverse Events Analysis Dataset", "ADLB": "Laboratory Analysis Dataset",
        "ADTTE": "Time-to-Event Analysis Dataset"}
    for name, dataset in data.items():
        meta = dataset.attrs["metadata"]
        assert [v.name for v in meta.variables] == list(dataset.columns), name
        for variable in meta.variables:
            assert variable.label and len(variable.label.encode()) <= 40, (name, variable.name)
            assert variable.origin != "Derived" or variable.derivation, (name, variable.name)
    adeff = data["ADEFF"].attrs["metadata"]
    assert {p.paramcd for p in adeff.parameters} >= set(data["ADEFF"]["PARAMCD"])
    assert next(p for p in adeff.parameters if p.paramcd == "ESR").unit == "mm/h"
    assert data["ADEFF"].attrs["value_labels"]["PARAMCD"]["ESR"] == "Erythrocyte sedimentation rate (mm/h)"
    assert data["ADSL"].attrs["value_labels"]["SEX"] == {"M": "Male", "F": "Female"}
