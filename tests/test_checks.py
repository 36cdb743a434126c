"""The data checks DC-01 ... DC-17 of schemas/checks.py: one case that triggers each, one that does not."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.test_validate import make_form_data, vs
from trialkit.findings import Status
from trialkit.rules import run_rules

TODAY = dt.date(2025, 6, 1)
CUT = dt.date(2024, 12, 31)


def rule_of(study, rule_id):
    return next(r for r in study.rules if r.id == rule_id)


def run(study, rule_id: str, forms: dict[str, list[dict[str, Any]]], **kwargs: Any):
    """Run one rule on literal forms; return its findings (and assert it ran)."""
    form_data = {code: make_form_data(study, code, records) for code, records in forms.items()}
    findings, runs = run_rules(study, form_data, rules=[rule_of(study, rule_id)],
                               data_cut=kwargs.get("data_cut", CUT), today=kwargs.get("today", TODAY))
    assert runs[0].status in (Status.PASSED, Status.FAILED), runs[0]
    assert runs[0].count == len(findings)
    return findings


def one(findings, **expected):
    assert len(findings) == 1, [f.message for f in findings]
    for key, value in expected.items():
        assert getattr(findings[0], key) == value, (key, getattr(findings[0], key))
    return findings[0]


def dm(subject="01-003", **kw):
    return {"SITEID": subject[:2], "SUBJID": subject, "ICDAT": "2024-01-02", "BRTHYM": "2012-04",
            "SEX": "F", **kw}


def ae(**kw):
    record = {"SITEID": "01", "SUBJID": "01-003", "AETERM": "Rash", "AESTDAT": "2024-03-01",
              "AEENDAT": "2024-03-05", "AEONGO": "N", "AETOXGR": 1, "AESER": "N", "AEOUT": "RECOVERED",
              "AESI": "NONE"}
    record.update(kw)
    return record


def cm(**kw):
    record = {"SITEID": "01", "SUBJID": "01-003", "CMTRT": "NAPROXEN", "CMDOSE": 250, "CMDOSU": "mg",
              "CMFRQ": "BID", "CMROUTE": "PO", "CMSTDAT": "2024-03", "CMENDAT": "2024-04-10",
              "CMONGO": "N"}
    record.update(kw)
    return record


def ex(**kw):
    record = {"SITEID": "01", "SUBJID": "01-003", "EXSTDAT": "2024-02-01", "EXENDAT": "2024-02-28",
              "EXDOSE": 60, "KITNO": "K1", "EXMISS": 0}
    record.update(kw)
    return record


def pt(**kw):
    record = {"SITEID": "01", "SUBJID": "01-003", "PTTRT": "METHOTREXATE", "PTSTDAT": "2021-05",
              "PTENDAT": "2023-01", "PTONGO": "N", "PTREAS": "INEFFICACY"}
    record.update(kw)
    return record


def core(visit="W4", date="2024-03-01", **kw):
    record = {"SITEID": "01", "SUBJID": "01-003", "VISIT": visit, "CSDAT": date, "PHGA": 2.0,
              "PAGA": 3.0, "JADONE": "Y", "FEVER": "N", "RASH": "N", "LYMPH": "N", "HEPSPL": "N",
              "SEROS": "N"}
    record.update(kw)
    return record


def lab(test, value, date="2024-03-01", visit="W4", **kw):
    record = {"SITEID": "01", "SUBJID": "01-003", "VISIT": visit, "LBDAT": date, "LBTESTCD": test,
              "LBORRES": value, "LBORRESU": "x", "LBSTRESN": value}
    record.update(kw)
    return record


def fever(date, temp, **kw):
    record = {"SITEID": "01", "SUBJID": "01-003", "FVDAT": date, "FVTEMP": temp, "FVTEMPU": "C",
              "FVROUTE": "ORAL", "FVANTIP": "N"}
    record.update(kw)
    return record


def rand(stratum="PEDI", **kw):
    return {"SITEID": "01", "SUBJID": "01-003", "RANDNO": "R001", "RANDDAT": "2024-01-20",
            "STRATUM": stratum, "KITNO": "K1", **kw}


def test_every_rule_is_tested(study):
    ids = {r.id for r in study.rules if r.id.startswith("DC-")}
    assert ids == {f"DC-{n:02d}" for n in range(1, 18)}


# DC-01 ------------------------------------------------------------------------------------------


def test_dc01_subject_missing_from_dm(study):
    findings = run(study, "DC-01", {"DM": [dm("01-001")],
                                    "VS": [vs(SUBJID="01-001"), vs(SUBJID="01-003"),
                                           vs(SUBJID="01-003", VISIT="W8")]})
    finding = one(findings, code="DC-01", subject="01-003", form="VS", variable="SUBJID", row=3)
    assert "2 VS record(s)" in finding.message


def test_dc01_passes(study):
    assert run(study, "DC-01", {"DM": [dm("01-003")], "VS": [vs()]}) == []


def test_dc01_skipped_without_dm(study):
    form_data = {"VS": make_form_data(study, "VS", [vs()])}
    _, runs = run_rules(study, form_data, rules=[rule_of(study, "DC-01")])
    assert runs[0].status == Status.SKIPPED


# DC-02 ------------------------------------------------------------------------------------------


def test_dc02_prefix_not_site(study):
    findings = run(study, "DC-02", {"DM": [dm("01-001"), dm("03-002", SITEID="01")]})
    one(findings, code="DC-02", subject="03-002", form="DM", variable="SUBJID", row=3, site="01")


def test_dc02_passes(study):
    assert run(study, "DC-02", {"DM": [dm("01-001"), dm("02-002")]}) == []


# DC-03 ... DC-06 --------------------------------------------------------------------------------


def test_dc03_ae_end_before_start(study):
    findings = run(study, "DC-03", {"AE": [ae(), ae(AETERM="Fever", AEENDAT="2024-02-27")]})
    finding = one(findings, code="DC-03", subject="01-003", variable="AEENDAT", row=3,
                  value="2024-02-27")
    assert "2024-02-27 is before AESTDAT 2024-03-01" in finding.message


def test_dc03_passes(study):
    assert run(study, "DC-03", {"AE": [ae(AEENDAT="2024-03-01")]}) == []


def test_dc04_cm_end_before_start_partial(study):
    findings = run(study, "DC-04", {"CM": [cm(CMSTDAT="2024-03-15", CMENDAT="2024-02")]})
    one(findings, code="DC-04", variable="CMENDAT", row=2, subject="01-003")


def test_dc04_partial_dates_compared_at_common_precision(study):
    # 2024-03 vs 2024-03-15: equal at month precision -> no finding; 2024 vs 2024-05 likewise.
    records = [cm(CMSTDAT="2024-03-15", CMENDAT="2024-03"), cm(CMSTDAT="2024-05", CMENDAT="2024")]
    assert run(study, "DC-04", {"CM": records}) == []


def test_dc05_ex_end_before_start(study):
    one(run(study, "DC-05", {"EX": [ex(EXENDAT="2024-01-31")]}), code="DC-05", variable="EXENDAT", row=2)


def test_dc05_passes(study):
    assert run(study, "DC-05", {"EX": [ex(), ex(EXSTDAT="2024-03-01", EXENDAT=None)]}) == []


def test_dc06_pt_end_before_start(study):
    one(run(study, "DC-06", {"PT": [pt(PTSTDAT="2022", PTENDAT="2021-12")]}), code="DC-06",
        variable="PTENDAT", row=2)


def test_dc06_passes(study):
    assert run(study, "DC-06", {"PT": [pt(), pt(PTTRT="ETANERCEPT", PTSTDAT="2022", PTENDAT="2022-06")]}) == []


# DC-07 ------------------------------------------------------------------------------------------


def test_dc07_visit_out_of_sequence(study):
    records = [vs(VISIT="D1", VSDAT="2024-02-01"), vs(VISIT="W2", VSDAT="2024-02-15"),
               vs(VISIT="W4", VSDAT="2024-01-20"), vs(VISIT="W8", VSDAT="2024-03-28")]
    finding = one(run(study, "DC-07", {"VS": records}), code="DC-07", subject="01-003", visit="W4",
                  variable="VSDAT", row=4, form="VS")
    assert "W2 (2024-02-15" in finding.message


def test_dc07_across_forms_blames_the_one_wrong_date(study):
    forms = {"VS": [vs(VISIT="D1", VSDAT="2024-02-01"), vs(VISIT="W8", VSDAT="2024-03-28")],
             "CORE": [core("W2", "2024-12-15"), core("W4", "2024-03-01")]}
    one(run(study, "DC-07", forms), form="CORE", visit="W2", variable="CSDAT", row=2)


def test_dc07_passes(study):
    records = [vs(VISIT="D1", VSDAT="2024-02-01"), vs(VISIT="UNS", VSDAT="2024-01-01"),
               vs(VISIT="W4", VSDAT="2024-02-29")]
    forms = {"VS": records, "CORE": [core("D1", "2024-02-01"), core("W4", "2024-02-29")]}
    assert run(study, "DC-07", forms) == []


# DC-08, DC-09 -----------------------------------------------------------------------------------


def test_dc08_date_after_data_cut(study):
    findings = run(study, "DC-08", {"VS": [vs(), vs(VISIT="W8", VSDAT="2025-01-15")]})
    finding = one(findings, code="DC-08", variable="VSDAT", row=3, visit="W8", value="2025-01-15")
    assert "after the data cut 2024-12-31" in finding.message


def test_dc08_partial_date_and_passes(study):
    one(run(study, "DC-08", {"CM": [cm(CMENDAT="2025-02")]}), variable="CMENDAT", row=2)
    assert run(study, "DC-08", {"VS": [vs(VSDAT="2024-12-31")], "CM": [cm(CMENDAT="2024")]}) == []


def test_dc09_date_in_future(study):
    findings = run(study, "DC-09", {"AE": [ae(AEENDAT="2030-01-01")]})
    one(findings, code="DC-09", variable="AEENDAT", row=2)
    # in the future is reported once, not also as after the data cut
    assert run(study, "DC-08", {"AE": [ae(AEENDAT="2030-01-01")]}) == []


def test_dc09_passes(study):
    assert run(study, "DC-09", {"AE": [ae(AEENDAT="2025-06-01")]}) == []


# DC-10, DC-11, DC-12 ----------------------------------------------------------------------------


def test_dc10_serious_without_criterion(study):
    findings = run(study, "DC-10", {"AE": [ae(AESER="Y"), ae(AETERM="MAS", AESER="Y", AESHOSP="Y")]})
    one(findings, code="DC-10", variable="AESER", row=2, value="Y")


def test_dc10_passes(study):
    assert run(study, "DC-10", {"AE": [ae(), ae(AETERM="X", AESER="Y", AESLIFE="Y")]}) == []


def test_dc11_grade5_not_fatal(study):
    finding = one(run(study, "DC-11", {"AE": [ae(AETOXGR=5, AEOUT="RECOVERED")]}), code="DC-11",
                  variable="AEOUT", row=2)
    assert "AEOUT = RECOVERED" in finding.message


def test_dc11_passes(study):
    assert run(study, "DC-11", {"AE": [ae(AETOXGR=5, AEOUT="FATAL"), ae(AETERM="X", AETOXGR=4)]}) == []


def test_dc12_value_without_unit(study):
    forms = {"VS": [vs(WEIGHTU=None)], "FEVER": [fever("2024-03-01", 37.0, FVTEMPU=None)],
             "CM": [cm(CMDOSU=None)]}
    findings = run(study, "DC-12", forms)
    assert sorted((f.form, f.variable, f.row) for f in findings) == [
        ("CM", "CMDOSU", 2), ("FEVER", "FVTEMPU", 2), ("VS", "WEIGHTU", 2)]
    assert next(f for f in findings if f.form == "VS").message.startswith("WEIGHT = 30.5 has no unit")


def test_dc12_passes(study):
    forms = {"VS": [vs(TEMP=None, TEMPU=None)], "CM": [cm(CMDOSE=None, CMDOSU=None)],
             "LB": [lab("CRP", 3, LBORRESU=None)]}
    assert run(study, "DC-12", forms) == []


# DC-13 ------------------------------------------------------------------------------------------


def mas_labs(date="2024-03-01", ferritin=2500):
    return [lab("FERRITIN", ferritin, date), lab("PLAT", 150, date), lab("AST", 90, date),
            lab("TRIG", 120, date), lab("FIBRINO", 400, date), lab("CRP", 40, date)]


def test_dc13_mas_pattern_without_ae(study):
    forms = {"LB": mas_labs(), "AE": [ae()], "CORE": [core("W4", "2024-03-01", FEVER="Y")]}
    finding = one(run(study, "DC-13", forms), code="DC-13", subject="01-003", form="LB",
                  variable="LBORRES", row=2, value="2500", visit="W4")
    assert "ferritin 2500 ng/mL" in finding.message


def test_dc13_febrile_by_diary_within_one_day(study):
    forms = {"LB": mas_labs(), "AE": [ae()], "FEVER": [fever("2024-02-29", 38.0)]}
    one(run(study, "DC-13", forms), code="DC-13", row=2)


def test_dc13_passes(study):
    # an MAS adverse event covers the sample
    forms = {"LB": mas_labs(), "AE": [ae(AESI="MAS", AESTDAT="2024-02-28")],
             "CORE": [core("W4", "2024-03-01", FEVER="Y")]}
    assert run(study, "DC-13", forms) == []
    # not febrile (diary 37.9, two days away from 38.5)
    forms = {"LB": mas_labs(), "AE": [ae()],
             "FEVER": [fever("2024-03-01", 37.9), fever("2024-03-03", 38.5)]}
    assert run(study, "DC-13", forms) == []
    # ferritin exactly 684 is not above 684
    forms = {"LB": mas_labs(ferritin=684), "AE": [ae()], "CORE": [core(FEVER="Y")]}
    assert run(study, "DC-13", forms) == []


# DC-14 ------------------------------------------------------------------------------------------


def test_dc14_weight_jump(study):
    records = [vs(VISIT="D1", VSDAT="2024-02-01", WEIGHT=30), vs(VISIT="W4", VSDAT="2024-02-29",
                                                                   WEIGHT=36.5)]
    finding = one(run(study, "DC-14", {"VS": records}), code="DC-14", variable="WEIGHT", row=3,
                  visit="W4", value="36.5")
    assert finding.severity == "warning"


def test_dc14_exactly_20_percent_passes(study):
    records = [vs(VISIT="D1", VSDAT="2024-02-01", WEIGHT=30.5), vs(VISIT="W4", VSDAT="2024-02-29",
                                                                     WEIGHT=36.6)]
    assert run(study, "DC-14", {"VS": records}) == []


# DC-15 ------------------------------------------------------------------------------------------


def test_dc15_diary_fever_on_visit_day(study):
    forms = {"CORE": [core("W2", "2024-02-15"), core("W4", "2024-03-01")],
             "FEVER": [fever("2024-03-01", 38.4), fever("2024-03-02", 39.0)]}
    finding = one(run(study, "DC-15", forms), code="DC-15", form="CORE", variable="FEVER", row=3,
                  visit="W4", value="N")
    assert finding.severity == "warning"


def test_dc15_passes(study):
    forms = {"CORE": [core("W4", "2024-03-01", FEVER="Y"), core("W2", "2024-02-15")],
             "FEVER": [fever("2024-03-01", 38.4), fever("2024-02-15", 37.9)]}
    assert run(study, "DC-15", forms) == []


# DC-16 ------------------------------------------------------------------------------------------


def test_dc16_ptgh_missing_for_adult(study):
    forms = {"RAND": [rand("ADULT")], "CORE": [core("D1", "2024-02-01", PTGH=40), core()]}
    one(run(study, "DC-16", forms), code="DC-16", form="CORE", variable="PTGH", row=3, visit="W4")


def test_dc16_passes(study):
    assert run(study, "DC-16", {"RAND": [rand("PEDI")], "CORE": [core()]}) == []


# DC-17 (Amendment 1: UPCR at every LB visit with renal amyloidosis) ------------------------------


def mh(amyloid: str) -> dict[str, Any]:
    return {"SITEID": "01", "SUBJID": "01-003", "ONSETYM": "2019-06", "FEVER2W": "Y", "ARTHR": "Y", "RASH": "Y",
            "LYMPH": "N", "HEPSPL": "N", "SEROS": "N", "EXPSO": "N", "EXB27": "N", "EXB27FR": "N", "EXRF": "N",
            "AMYLOID": amyloid}


def test_dc17_upcr_missing_with_amyloidosis(study):
    samples = [lab("CRP", 4, visit="W2", date="2024-02-15"), lab("UPCR", 0.6, visit="W2", date="2024-02-15"),
               lab("CRP", 3, visit="W4"), lab("ESR", 20, visit="W4")]
    finding = one(run(study, "DC-17", {"MH": [mh("Y")], "LB": samples}), code="DC-17", form="LB",
                  variable="LBTESTCD", visit="W4", row=4)
    assert finding.severity == "warning" and "UPCR" in finding.message and "2024-03-01" in finding.message
    # A UPCR record answers it (one without a result, or LBSTAT = ND, is the form check's business).
    samples.append(lab("UPCR", "ND", visit="W4", LBSTAT="ND", LBSTRESN=None, LBORRESU=None))
    assert run(study, "DC-17", {"MH": [mh("Y")], "LB": samples}) == []


def test_dc17_passes_without_amyloidosis(study):
    assert run(study, "DC-17", {"MH": [mh("N")], "LB": [lab("CRP", 3)]}) == []

