"""Tests of the protocol-deviation catalogue PD-01 ... PD-14 (schemas/deviations.py; PD-14 from Amendment 1).

Every test starts from one clean, complete literal subject (``clean_subject``: all forms, day 1 =
2024-03-04, data cut = day 40) that yields no deviation at all, changes one thing, and runs one rule
through ``trialkit.rules.run_rules``. Each rule has a case that triggers it and a near-identical one
that does not; boundary cases carry their arithmetic in a comment.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pandas as pd
import pytest

from trialkit.importers.base import FormData
from trialkit.rules import run_rules
from trialkit.study import load_study

STUDY = load_study()
CATALOGUE = {r.id: r for r in STUDY.rules if r.id.startswith("PD-")}
SUBJECT = "01-001"
D1 = dt.date(2024, 3, 4)
MISSING_CODES = ("ND", "NK", "NA")


def day(n: int) -> dt.date:
    """The calendar date of study day ``n`` (no day 0)."""
    return D1 + dt.timedelta(days=n - 1 if n > 0 else n)


CUT = day(40)  # 2024-04-12


# ------------------------------------------------------------------------------------------------
# Building typed form data from literal records


def make_forms(study: Any, records: dict[str, list[dict[str, Any]]]) -> dict[str, FormData]:
    """FormData per form from literal records, typed as an importer types them.

    A variable left out of a record is missing; a missing-value code (ND/NK/NA) typed in a
    non-text variable is NA in ``data`` and kept in ``reasons``. Lineage: FILE "upload.xlsx",
    SHEET = the form code, ROW = 2 + position (row 1 is the header).
    """
    forms: dict[str, FormData] = {}
    for code, rows in records.items():
        form = study.form(code)
        index = pd.RangeIndex(len(rows))
        data, raw, reasons = {}, {}, {}
        for variable in form.variables:
            typed_text = variable.type in ("char", "pdate", "yn")
            values, reason = [], []
            for row in rows:
                value = row.get(variable.name)
                if not typed_text and isinstance(value, str) and value in MISSING_CODES:
                    reason.append(value)
                    value = None
                else:
                    reason.append(None)
                values.append(value)
            if variable.type == "date":
                column = pd.Series(pd.to_datetime(pd.Series(values, dtype=object)), index=index)
            elif variable.type == "int":
                column = pd.Series(pd.array(values, dtype="Int64"), index=index)
            elif variable.type == "num":
                column = pd.Series([float("nan") if v is None else float(v) for v in values],
                                   index=index, dtype=float)
            else:
                column = pd.Series(values, index=index, dtype="str")
            data[variable.name] = column
            raw[variable.name] = pd.Series(
                ["" if row.get(variable.name) is None else str(row.get(variable.name)) for row in rows],
                index=index, dtype=object)
            reasons[variable.name] = pd.Series(reason, index=index, dtype=object)
        lineage = pd.DataFrame(
            {"FILE": ["upload.xlsx"] * len(rows), "SHA256": [""] * len(rows),
             "SHEET": [code] * len(rows), "ROW": [2 + i for i in range(len(rows))]},
            index=index,
        )
        forms[code] = FormData(form=code, data=pd.DataFrame(data, index=index),
                               raw=pd.DataFrame(raw, index=index),
                               reasons=pd.DataFrame(reasons, index=index), lineage=lineage)
    return forms


def rec(**values: Any) -> dict[str, Any]:
    """One record of the clean subject (site 01)."""
    return {"SITEID": "01", "SUBJID": SUBJECT, **values}


CHAQ_ITEMS = [f"{prefix}{i}" for prefix, n in
              [("DRESS", 4), ("ARISE", 2), ("EAT", 3), ("WALK", 2), ("HYG", 5), ("REACH", 4),
               ("GRIP", 5), ("ACT", 5)] for i in range(1, n + 1)]
AID_FLAGS = ["DRESSAH", "ARISEAH", "EATAH", "WALKAH", "HYGAH", "REACHAH", "GRIPAH", "ACTAH"]
VISIT_DAYS = {"SCR": -21, "D1": 1, "W1": 8, "W2": 15, "W4": 29}
CORE_VISITS = ["SCR", "D1", "W2", "W4"]


def clean_subject() -> dict[str, list[dict[str, Any]]]:
    """A complete subject with no deviation: PEDI, 11 years old, 30 kg, 40 mg/day (window 30-60)."""
    lab = []
    for visit, vday in VISIT_DAYS.items():
        lab.append(rec(VISIT=visit, LBDAT=day(vday), LBTESTCD="ESR", LBORRES=30, LBORRESU="mm/h",
                       LBNRLO=0, LBNRHI=20, LBSTRESN=30, LBSTRESU="mm/h", LBSTNRLO=0, LBSTNRHI=20))
        lab.append(rec(VISIT=visit, LBDAT=day(vday), LBTESTCD="CRP", LBORRES=15, LBORRESU="mg/L",
                       LBNRLO=0, LBNRHI=5, LBSTRESN=15, LBSTRESU="mg/L", LBSTNRLO=0, LBSTNRHI=5))
    return {
        "DM": [rec(ICDAT=day(-30), BRTHYM="2012-05", SEX="F")],
        "MH": [rec(ONSETYM="2019-06", FEVER2W="Y", ARTHR="Y", RASH="Y", LYMPH="N", HEPSPL="N",
                   SEROS="N", EXPSO="N", EXB27="N", EXB27FR="N", EXRF="N", AMYLOID="N")],
        "PT": [
            rec(PTTRT="LEFLUNOMIDE", PTSTDAT="2020-01", PTENDAT="2020-12", PTONGO="N", PTREAS="INEFFICACY"),
            rec(PTTRT="METHOTREXATE", PTSTDAT="2021-01", PTONGO="Y"),
            rec(PTTRT="ETANERCEPT", PTSTDAT="2021-02", PTENDAT="2023-06", PTONGO="N", PTREAS="INEFFICACY"),
        ],
        "IE": [rec(IETESTCD=f"IN0{i}", IEORRES="Y") for i in range(1, 8)]
        + [rec(IETESTCD=f"EX0{i}", IEORRES="N") for i in range(1, 9)],
        "RAND": [rec(RANDNO="R001", RANDDAT=D1, STRATUM="PEDI", KITNO="K001")],
        "VS": [rec(VISIT=visit, VSDAT=day(vday), WEIGHT=30, WEIGHTU="kg", HEIGHT=140, HEIGHTU="cm",
                   TEMP=36.8, TEMPU="C", SYSBP=105, DIABP=65, HR=88)
               for visit, vday in VISIT_DAYS.items()],
        "CORE": [rec(VISIT=visit, CSDAT=day(VISIT_DAYS[visit]), PHGA=5.0, PAGA=4.0, JADONE="Y",
                     FEVER="N", RASH="N", LYMPH="N", HEPSPL="N", SEROS="N") for visit in CORE_VISITS],
        "JA": [rec(VISIT="D1", JADAT=D1, JOINT="KNEE_L", SWOLLEN="Y", TENDER="Y", LOM="N")],
        "CHAQ": [rec(VISIT=visit, QSDAT=day(VISIT_DAYS[visit]), QSVER="CHAQ", PAINVAS=3.0,
                     **dict.fromkeys(CHAQ_ITEMS, 1), **dict.fromkeys(AID_FLAGS, "N"))
                 for visit in CORE_VISITS],
        "FEVER": [rec(FVDAT=day(n), FVTEMP=36.9, FVTEMPU="C", FVROUTE="AXILLARY", FVANTIP="N")
                  for n in range(-7, 30) if n != 0],
        "LB": lab,
        "EX": [
            rec(EXSTDAT=day(1), EXENDAT=day(29), EXDOSE=40, KITNO="K001", EXMISS=0),
            rec(EXSTDAT=day(30), EXDOSE=40, KITNO="K002", EXMISS=0),
        ],
        "CM": [
            rec(CMTRT="METHOTREXATE", CMDOSE=15, CMDOSU="mg", CMFRQ="QW", CMROUTE="PO",
                CMSTDAT="2021-01", CMONGO="Y"),
            rec(CMTRT="PREDNISONE", CMDOSE=10, CMDOSU="mg", CMFRQ="QD", CMROUTE="PO",
                CMSTDAT="2023-11", CMONGO="Y"),
            rec(CMTRT="FOLIC ACID", CMDOSE=5, CMDOSU="mg", CMFRQ="QW", CMROUTE="PO",
                CMSTDAT="2021-01", CMONGO="Y"),
        ],
        "AE": [
            rec(AETERM="Injection site erythema", AESTDAT=day(5), AEENDAT=day(7), AEONGO="N",
                AETOXGR=1, AESER="N", AEREL="RELATED", AEACN="DOSE NOT CHANGED", AEOUT="RECOVERED",
                AESI="INJECTION SITE REACTION"),
            rec(AETERM="Pneumonia", AESTDAT=day(20), AEENDAT=day(27), AEONGO="N", AETOXGR=3,
                AESER="Y", AESHOSP="Y", AEREL="NOT RELATED", AEACN="DRUG INTERRUPTED",
                AEOUT="RECOVERED", AESI="SERIOUS INFECTION", AEAWDAT=day(20), AERPTDAT=day(21)),
        ],
        "DS": [],
    }


def run(code: str, records: dict[str, list[dict[str, Any]]], data_cut: dt.date | None = CUT):
    """Run one deviation rule; assert it ran (no skip, no error); return its findings."""
    findings, runs = run_rules(STUDY, make_forms(STUDY, records), data_cut=data_cut,
                               rules=[CATALOGUE[code]])
    assert [r.status.value for r in runs] in (["passed"], ["failed"]), runs[0].reason
    return findings


def only(findings: list) -> Any:
    assert len(findings) == 1, [f.message for f in findings]
    return findings[0]


def assert_finding(finding: Any, code: str, variable: str | None, form: str, row: int | None,
                   deviation_class: str) -> None:
    assert finding.code == code
    assert finding.subject == SUBJECT
    assert finding.variable == variable
    assert finding.form == form
    assert finding.row == row
    assert finding.deviation_class == deviation_class
    assert finding.severity.value == ("error" if deviation_class == "major" else "warning")
    assert finding.category.value == "deviation"
    if row is not None:
        assert (finding.file, finding.sheet) == ("upload.xlsx", form)


def replace(rows: list[dict[str, Any]], match: dict[str, Any], **changes: Any) -> None:
    """Change every record matching ``match`` in place (assert that one matched)."""
    hit = [r for r in rows if all(r.get(k) == v for k, v in match.items())]
    assert hit, match
    for r in hit:
        r.update(changes)


@pytest.fixture
def subject() -> dict[str, list[dict[str, Any]]]:
    return copy.deepcopy(clean_subject())


# ------------------------------------------------------------------------------------------------
# The whole catalogue on the clean subject


def test_catalogue_is_complete():
    assert sorted(CATALOGUE) == [f"PD-{n:02d}" for n in range(1, 15)]
    for rule in CATALOGUE.values():
        assert rule.deviation_class in ("major", "minor")
        assert rule.severity.value == ("error" if rule.deviation_class == "major" else "warning")
        assert rule.reference.startswith((f"Synopsis, Protocol deviations {rule.id}", "Amendment 1"))


def test_clean_subject_has_no_deviation(subject):
    findings, runs = run_rules(STUDY, make_forms(STUDY, subject), data_cut=CUT,
                               rules=list(CATALOGUE.values()))
    assert [f.message for f in findings] == []
    assert {r.id: r.status.value for r in runs} == dict.fromkeys(CATALOGUE, "passed")


def test_clean_subject_without_a_stated_data_cut(subject):
    # the data cut defaults to the latest date in the upload (day 30, the open EX period start)
    findings, runs = run_rules(STUDY, make_forms(STUDY, subject), rules=list(CATALOGUE.values()))
    assert [f.message for f in findings] == []
    assert all(r.status.value == "passed" for r in runs)


# ------------------------------------------------------------------------------------------------
# PD-01


def test_pd01_exclusion_present_in_randomized_subject(subject):
    replace(subject["IE"], {"IETESTCD": "EX04"}, IEORRES="Y")  # 11th IE record -> row 12
    finding = only(run("PD-01", subject))
    assert_finding(finding, "PD-01", "IEORRES", "IE", 12, "major")
    assert finding.evidence["IETESTCD"] == "EX04"
    assert finding.evidence["RANDDAT"] == "2024-03-04"
    assert finding.value == "Y"
    assert "exclusion criterion present" in finding.message


def test_pd01_inclusion_not_met(subject):
    replace(subject["IE"], {"IETESTCD": "IN06"}, IEORRES="N")
    finding = only(run("PD-01", subject))
    assert_finding(finding, "PD-01", "IEORRES", "IE", 7, "major")
    assert "inclusion criterion not met" in finding.message


def test_pd01_not_reported_for_a_subject_never_randomized(subject):
    replace(subject["IE"], {"IETESTCD": "EX04"}, IEORRES="Y")
    subject["RAND"] = []
    assert run("PD-01", subject) == []


def test_pd01_clean(subject):
    assert run("PD-01", subject) == []


# ------------------------------------------------------------------------------------------------
# PD-02


def test_pd02_age_under_2_at_day1(subject):
    # born 2022-03 -> 2022-03-15; on 2024-03-04 the second birthday is 11 days away: age 1
    subject["DM"][0]["BRTHYM"] = "2022-03"
    finding = only(run("PD-02", subject))
    assert_finding(finding, "PD-02", "BRTHYM", "DM", 2, "major")
    assert finding.evidence["IETESTCD"] == "IN02"
    assert finding.evidence["AGE"] == "1"


def test_pd02_age_exactly_2_at_day1(subject):
    subject["DM"][0]["BRTHYM"] = "2022-02"  # 2022-02-15 -> 2 years on 2024-03-04
    assert run("PD-02", subject) == []


def test_pd02_not_reported_when_ie_already_says_not_met(subject):
    subject["DM"][0]["BRTHYM"] = "2022-03"
    replace(subject["IE"], {"IETESTCD": "IN02"}, IEORRES="N")  # PD-01's business
    assert run("PD-02", subject) == []


def test_pd02_disease_duration_under_6_months(subject):
    # onset 2023-09-15 -> 2024-03-04 is 5 complete months
    subject["MH"][0]["ONSETYM"] = "2023-09"
    finding = only(run("PD-02", subject))
    assert_finding(finding, "PD-02", "ONSETYM", "MH", 2, "major")
    assert finding.evidence["MONTHS"] == "5"
    subject["MH"][0]["ONSETYM"] = "2023-08"  # 2023-08-15 -> 6 complete months
    assert run("PD-02", subject) == []


def test_pd02_no_failed_tnf_inhibitor(subject):
    replace(subject["PT"], {"PTTRT": "ETANERCEPT"}, PTREAS="OTHER")
    finding = only(run("PD-02", subject))
    assert_finding(finding, "PD-02", "IEORRES", "IE", 6, "major")  # IN05 is the 5th IE record
    assert finding.evidence["IETESTCD"] == "IN05"
    replace(subject["PT"], {"PTTRT": "ETANERCEPT"}, PTREAS="ADVERSE EVENT")  # = intolerance
    assert run("PD-02", subject) == []


def test_pd02_no_failed_dmard(subject):
    replace(subject["PT"], {"PTTRT": "LEFLUNOMIDE"}, PTREAS="OTHER")  # MTX is ongoing: not failed
    finding = only(run("PD-02", subject))
    assert finding.evidence["IETESTCD"] == "IN04"
    assert finding.row == 5


def test_pd02_il1_blocker_in_prior_therapy(subject):
    subject["PT"].append(rec(PTTRT="ANAKINRA", PTSTDAT="2019-01", PTENDAT="2019-03", PTONGO="N",
                             PTREAS="OTHER"))
    finding = only(run("PD-02", subject))
    assert_finding(finding, "PD-02", "PTTRT", "PT", 5, "major")
    assert finding.evidence["IETESTCD"] == "EX01"


def test_pd02_biologic_inside_washout(subject):
    # etanercept stopped "2024-02": latest possible 2024-02-29, 4 days before day 1 (< 28)
    replace(subject["PT"], {"PTTRT": "ETANERCEPT"}, PTENDAT="2024-02")
    finding = only(run("PD-02", subject))
    assert_finding(finding, "PD-02", "PTENDAT", "PT", 4, "major")
    assert finding.evidence["IETESTCD"] == "EX02"
    assert finding.evidence["DAYS"] == "4"
    assert finding.evidence["WASHOUT"] == "4 weeks"


def test_pd02_biologic_washout_respected(subject):
    # "2024-01": latest possible 2024-01-31, 33 days before day 1 (>= 28): no deviation
    replace(subject["PT"], {"PTTRT": "ETANERCEPT"}, PTENDAT="2024-01")
    assert run("PD-02", subject) == []


def test_pd02_clean(subject):
    assert run("PD-02", subject) == []


# ------------------------------------------------------------------------------------------------
# PD-03


def test_pd03_procedures_before_consent(subject):
    subject["DM"][0]["ICDAT"] = day(-20)  # screening was on day -21
    findings = run("PD-03", subject)
    assert {(f.form, f.variable, f.row, f.visit) for f in findings} == {
        ("VS", "VSDAT", 2, "SCR"), ("CORE", "CSDAT", 2, "SCR"), ("CHAQ", "QSDAT", 2, "SCR"),
        ("LB", "LBDAT", 2, "SCR"),  # one finding per sample, not per test
    }
    for finding in findings:
        assert finding.deviation_class == "major" and finding.subject == SUBJECT
        assert finding.evidence["ICDAT"] == "2024-02-13"
        assert finding.evidence["PROCDAT"] == "2024-02-12"
        assert finding.evidence["DAYS"] == "1"


def test_pd03_randomization_before_consent(subject):
    subject["DM"][0]["ICDAT"] = day(-40)
    subject["RAND"][0]["RANDDAT"] = day(-41)
    finding = only(run("PD-03", subject))
    assert_finding(finding, "PD-03", "RANDDAT", "RAND", 2, "major")


def test_pd03_consent_on_the_screening_day(subject):
    subject["DM"][0]["ICDAT"] = day(-21)
    assert run("PD-03", subject) == []


# ------------------------------------------------------------------------------------------------
# PD-04


def test_pd04_drug_before_randomization(subject):
    subject["RAND"][0]["RANDDAT"] = day(2)
    finding = only(run("PD-04", subject))
    assert_finding(finding, "PD-04", "EXSTDAT", "EX", 2, "major")
    assert finding.evidence["EXSTDAT"] == "2024-03-04"
    assert finding.evidence["RANDDAT"] == "2024-03-05"


def test_pd04_drug_without_randomization(subject):
    subject["RAND"] = []
    findings = run("PD-04", subject)
    assert [(f.row, f.variable) for f in findings] == [(2, "SUBJID"), (3, "SUBJID")]
    assert all("never randomized" in f.message for f in findings)


def test_pd04_clean(subject):
    assert run("PD-04", subject) == []


# ------------------------------------------------------------------------------------------------
# PD-05


def _weight_and_dose(subject: dict, weight: float, dose: float) -> None:
    for row in subject["VS"]:
        row["WEIGHT"] = weight
    for row in subject["EX"]:
        row["EXDOSE"] = dose


@pytest.mark.parametrize(
    ("weight", "dose"),
    [(50, 100),  # exactly 50 kg takes the fixed 100 mg
     (49, 100),  # 49 kg: [10*floor(4.9), min(100, 10*ceil(9.8))] = [40, 100]
     (49, 40)],
)
def test_pd05_dose_within_window(subject, weight, dose):
    _weight_and_dose(subject, weight, dose)
    assert run("PD-05", subject) == []


def test_pd05_dose_below_window(subject):
    _weight_and_dose(subject, 49, 30)  # window 40-100 mg
    findings = run("PD-05", subject)
    assert len(findings) == 2  # both dosing periods
    finding = findings[0]
    assert_finding(finding, "PD-05", "EXDOSE", "EX", 2, "major")
    assert finding.evidence["WEIGHT"] == "49"
    assert (finding.evidence["DOSELO"], finding.evidence["DOSEHI"]) == ("40", "100")
    assert finding.evidence["EXDOSE"] == "30"
    assert "40-100 mg" in finding.message


def test_pd05_weight_from_the_latest_visit_before_the_period(subject):
    # W4 (day 29) weight drops to 20 kg: window 20-40; the period from day 30 takes it, 40 mg fits;
    # 50 mg would not
    replace(subject["VS"], {"VISIT": "W4"}, WEIGHT=20)
    assert run("PD-05", subject) == []
    subject["EX"][1]["EXDOSE"] = 50
    finding = only(run("PD-05", subject))
    assert finding.row == 3
    assert finding.evidence["WEIGHT"] == "20"
    assert finding.evidence["DOSEHI"] == "40"


# ------------------------------------------------------------------------------------------------
# PD-06


def _three_periods(subject: dict, missed_first: int) -> None:
    subject["EX"] = [
        rec(EXSTDAT=day(1), EXENDAT=day(20), EXDOSE=40, KITNO="K001", EXMISS=missed_first),
        rec(EXSTDAT=day(21), EXENDAT=day(29), EXDOSE=40, KITNO="K002", EXMISS=0),
        rec(EXSTDAT=day(30), EXDOSE=40, KITNO="K003", EXMISS=0),
    ]


def test_pd06_exactly_20_percent_is_within_the_limit(subject):
    _three_periods(subject, 4)  # 4 of 20 planned = 20 %
    assert run("PD-06", subject) == []


def test_pd06_above_20_percent_in_part_a_is_major(subject):
    _three_periods(subject, 5)  # 5 of 20 = 25 %
    finding = only(run("PD-06", subject))
    assert_finding(finding, "PD-06", "EXMISS", "EX", 2, "major")
    assert finding.evidence["PLANNED"] == "20"
    assert finding.evidence["MISSED"] == "5"
    assert finding.evidence["PCTMISSED"] == "25"
    assert finding.evidence["PART"] == "Part A"


def test_pd06_above_20_percent_in_part_b_is_minor(subject):
    # the open period from day 30 runs to the data cut (day 40): 11 planned, 3 missed = 27 %
    subject["EX"][1]["EXMISS"] = 3
    finding = only(run("PD-06", subject))
    assert_finding(finding, "PD-06", "EXMISS", "EX", 3, "minor")
    assert finding.evidence["PLANNED"] == "11"
    assert finding.evidence["PART"] == "Part B"
    # The message rounds as a person writes (27.3 %); the evidence keeps the exact ratio.
    assert "3 of 11 planned daily doses missed (27.3 %)" in finding.message
    assert finding.evidence["PCTMISSED"].startswith("27.2727")


# ------------------------------------------------------------------------------------------------
# PD-07


def test_pd07_w4_on_day_32_is_in_window(subject):
    replace(subject["VS"], {"VISIT": "W4"}, VSDAT=day(32))  # 29 + 3
    assert run("PD-07", subject) == []


def test_pd07_w4_on_day_33_is_major(subject):
    replace(subject["VS"], {"VISIT": "W4"}, VSDAT=day(33))
    finding = only(run("PD-07", subject))
    assert_finding(finding, "PD-07", "VSDAT", "VS", 6, "major")
    assert finding.visit == "W4"
    assert finding.evidence["ADY"] == "33"
    assert (finding.evidence["WINDOWLO"], finding.evidence["WINDOWHI"]) == ("26", "32")
    assert finding.evidence["WINDOWTO"] == "2024-04-04"


def test_pd07_w1_outside_window_is_minor(subject):
    replace(subject["VS"], {"VISIT": "W1"}, VSDAT=day(11))  # 8 + 2 = 10
    finding = only(run("PD-07", subject))
    assert_finding(finding, "PD-07", "VSDAT", "VS", 4, "minor")


def test_pd07_missing_scheduled_visit(subject):
    subject["VS"] = [r for r in subject["VS"] if r["VISIT"] != "W2"]
    finding = only(run("PD-07", subject))
    assert_finding(finding, "PD-07", "VISIT", "VS", None, "minor")
    assert finding.visit == "W2"
    assert finding.evidence["WINDOWTO"] == day(17).isoformat()
    assert "missing" in finding.message


def test_pd07_visit_not_due_before_its_window_closes(subject):
    subject["VS"] = [r for r in subject["VS"] if r["VISIT"] != "W4"]
    # W4 window closes on day 32 (2024-04-04): a data cut on day 31 does not make it due...
    assert run("PD-07", subject, data_cut=day(31)) == []
    # ... nor does leaving the study before it closes
    subject["DS"] = [rec(DSDECOD="WITHDRAWAL BY SUBJECT", DSSTDAT=day(25), DSPART="A")]
    assert run("PD-07", subject) == []
    subject["DS"] = []
    finding = only(run("PD-07", subject))
    assert finding.deviation_class == "major" and finding.visit == "W4"


def test_pd07_follow_up_after_the_last_dose(subject):
    # treatment stops on day 35; FU due on last dose + 21..35 = days 56..70
    subject["EX"][1]["EXENDAT"] = day(35)
    subject["VS"].append(rec(VISIT="FU", VSDAT=day(35 + 28), WEIGHT=30, WEIGHTU="kg"))
    subject["VS"].append(rec(VISIT="W8", VSDAT=day(57), WEIGHT=30, WEIGHTU="kg"))
    assert run("PD-07", subject, data_cut=day(75)) == []
    subject["VS"][-2]["VSDAT"] = day(35 + 36)  # 36 days after the last dose
    finding = only(run("PD-07", subject, data_cut=day(75)))
    assert finding.visit == "FU" and finding.deviation_class == "minor"


# ------------------------------------------------------------------------------------------------
# PD-08


def test_pd08_esr_missing_at_w4(subject):
    subject["LB"] = [r for r in subject["LB"] if not (r["VISIT"] == "W4" and r["LBTESTCD"] == "ESR")]
    finding = only(run("PD-08", subject))
    assert_finding(finding, "PD-08", "LBTESTCD", "LB", None, "major")
    assert finding.visit == "W4"
    assert finding.evidence["MISSING"].startswith("ESR missing")


def test_pd08_phga_missing(subject):
    replace(subject["CORE"], {"VISIT": "W4"}, PHGA="ND")
    finding = only(run("PD-08", subject))
    assert_finding(finding, "PD-08", "PHGA", "CORE", 5, "major")


def test_pd08_chaq_not_enough_domains(subject):
    # 3 domains unanswered (arising, eating, walking): 5 of 8 < 6
    na_items = {item: "NA" for item in CHAQ_ITEMS if item.startswith(("ARISE", "EAT", "WALK"))}
    replace(subject["CHAQ"], {"VISIT": "W4"}, **na_items)
    finding = only(run("PD-08", subject))
    assert_finding(finding, "PD-08", None, "CHAQ", 5, "major")
    assert "5 of 8 domains" in finding.message
    # two unanswered domains leave 6 of 8: the DI exists
    replace(subject["CHAQ"], {"VISIT": "W4"}, WALK1=1, WALK2=1)
    assert run("PD-08", subject) == []


def test_pd08_fever_diary_days(subject):
    # W4 on day 29: the diary window is days 22..28; remove one day -> 6 of 7 is enough
    subject["FEVER"] = [r for r in subject["FEVER"] if r["FVDAT"] != day(22)]
    assert run("PD-08", subject) == []
    subject["FEVER"] = [r for r in subject["FEVER"] if r["FVDAT"] != day(23)]
    finding = only(run("PD-08", subject))
    assert_finding(finding, "PD-08", "FVDAT", "FEVER", None, "major")
    assert "5 of 7 days" in finding.message


def test_pd08_not_for_a_subject_who_left_before_w4(subject):
    subject["LB"] = [r for r in subject["LB"] if r["VISIT"] != "W4"]
    subject["DS"] = [rec(DSDECOD="ADVERSE EVENT", DSSTDAT=day(25), DSPART="A")]
    assert run("PD-08", subject) == []


def test_pd08_clean(subject):
    assert run("PD-08", subject) == []


# ------------------------------------------------------------------------------------------------
# PD-09


def test_pd09_other_biologic_during_the_study(subject):
    subject["CM"].append(rec(CMTRT="ETANERCEPT", CMDOSE=25, CMDOSU="mg", CMFRQ="QW", CMROUTE="SC",
                             CMSTDAT=day(35).isoformat(), CMONGO="Y"))
    finding = only(run("PD-09", subject))
    assert_finding(finding, "PD-09", "CMTRT", "CM", 5, "major")
    assert finding.evidence["CMTRT"] == "ETANERCEPT"
    assert finding.evidence["CMENDAT"] == "ongoing"


def test_pd09_biologic_stopped_before_day1_is_not_pd09(subject):
    subject["CM"].append(rec(CMTRT="ETANERCEPT", CMDOSE=25, CMDOSU="mg", CMFRQ="QW", CMROUTE="SC",
                             CMSTDAT="2024-02-01", CMENDAT="2024-02-20", CMONGO="N"))
    assert run("PD-09", subject) == []


def test_pd09_iv_corticosteroid_in_part_a(subject):
    subject["CM"].append(rec(CMTRT="METHYLPREDNISOLONE", CMDOSE=500, CMDOSU="mg", CMFRQ="ONCE",
                             CMROUTE="IV", CMSTDAT=day(10).isoformat(), CMENDAT=day(10).isoformat(),
                             CMONGO="N"))
    finding = only(run("PD-09", subject))
    assert_finding(finding, "PD-09", "CMROUTE", "CM", 5, "major")
    assert "Part A" in finding.message
    subject["CM"][-1].update(CMSTDAT=day(30).isoformat(), CMENDAT=day(30).isoformat())  # Part B
    assert run("PD-09", subject) == []


def test_pd09_ciclosporin_needs_a_mas_adverse_event(subject):
    subject["CM"].append(rec(CMTRT="CICLOSPORIN", CMDOSE=50, CMDOSU="mg", CMFRQ="BID", CMROUTE="PO",
                             CMSTDAT=day(10).isoformat(), CMENDAT=day(20).isoformat(), CMONGO="N"))
    finding = only(run("PD-09", subject))
    assert_finding(finding, "PD-09", "CMTRT", "CM", 5, "major")
    assert "MAS" in finding.message
    subject["AE"].append(rec(AETERM="Macrophage activation syndrome", AESTDAT=day(9), AEENDAT=day(18),
                             AEONGO="N", AETOXGR=4, AESER="Y", AESLIFE="Y", AESI="MAS",
                             AEAWDAT=day(9), AERPTDAT=day(9)))
    assert run("PD-09", subject) == []


# ------------------------------------------------------------------------------------------------
# PD-10


def test_pd10_prednisone_increase_in_part_a(subject):
    # day 1: 10 mg/day / 30 kg = 0.333; from day 10 another 5 mg/day: 15 / 30 = 0.5
    subject["CM"].append(rec(CMTRT="PREDNISOLONE", CMDOSE=5, CMDOSU="mg", CMFRQ="QD", CMROUTE="PO",
                             CMSTDAT=day(10).isoformat(), CMONGO="Y"))
    finding = only(run("PD-10", subject))
    assert_finding(finding, "PD-10", "CMDOSE", "CM", 5, "major")
    assert finding.evidence["DATE"] == day(10).isoformat()
    assert finding.evidence["PREDMGKG"] == "0.500"
    assert finding.evidence["D1MGKG"] == "0.333"


def test_pd10_increase_after_part_a_is_allowed(subject):
    subject["CM"].append(rec(CMTRT="PREDNISOLONE", CMDOSE=5, CMDOSU="mg", CMFRQ="QD", CMROUTE="PO",
                             CMSTDAT=day(30).isoformat(), CMONGO="Y"))
    assert run("PD-10", subject) == []


def test_pd10_weight_loss_raises_the_dose_per_kg(subject):
    replace(subject["VS"], {"VISIT": "W2"}, WEIGHT=25)  # 10 / 25 = 0.4 > 0.333 on day 15
    finding = only(run("PD-10", subject))
    assert_finding(finding, "PD-10", "VSDAT", "VS", 5, "major")
    assert finding.evidence["PREDMGKG"] == "0.400"


# ------------------------------------------------------------------------------------------------
# PD-11


def test_pd11_methotrexate_stopped_in_part_a(subject):
    replace(subject["CM"], {"CMTRT": "METHOTREXATE"}, CMENDAT=day(10).isoformat(), CMONGO="N")
    finding = only(run("PD-11", subject))
    assert_finding(finding, "PD-11", "CMENDAT", "CM", 2, "minor")
    assert finding.evidence["DAY"] == "10"
    assert "stopped" in finding.message


def test_pd11_methotrexate_dose_changed_in_part_a(subject):
    replace(subject["CM"], {"CMTRT": "METHOTREXATE"}, CMENDAT=day(10).isoformat(), CMONGO="N")
    subject["CM"].append(rec(CMTRT="METHOTREXATE", CMDOSE=20, CMDOSU="mg", CMFRQ="QW", CMROUTE="PO",
                             CMSTDAT=day(11).isoformat(), CMONGO="Y"))
    finding = only(run("PD-11", subject))
    assert_finding(finding, "PD-11", "CMDOSE", "CM", 5, "minor")
    assert "from 15 mg QW to 20 mg QW" in finding.message


def test_pd11_same_dose_recorded_again_is_no_change(subject):
    replace(subject["CM"], {"CMTRT": "METHOTREXATE"}, CMENDAT=day(10).isoformat(), CMONGO="N")
    subject["CM"].append(rec(CMTRT="METHOTREXATE", CMDOSE=15, CMDOSU="mg", CMFRQ="QW", CMROUTE="SC",
                             CMSTDAT=day(11).isoformat(), CMONGO="Y"))
    assert run("PD-11", subject) == []


def test_pd11_stopped_at_the_end_of_part_a_is_allowed(subject):
    replace(subject["CM"], {"CMTRT": "METHOTREXATE"}, CMENDAT=day(29).isoformat(), CMONGO="N")
    assert run("PD-11", subject) == []


# ------------------------------------------------------------------------------------------------
# PD-12


def test_pd12_sae_reported_after_2_days(subject):
    replace(subject["AE"], {"AETERM": "Pneumonia"}, AERPTDAT=day(22))  # aware day 20
    finding = only(run("PD-12", subject))
    assert_finding(finding, "PD-12", "AERPTDAT", "AE", 3, "major")
    assert finding.evidence["DAYS"] == "2"
    assert finding.evidence["AEAWDAT"] == day(20).isoformat()


def test_pd12_sae_reported_after_exactly_1_day(subject):
    assert subject["AE"][1]["AERPTDAT"] - subject["AE"][1]["AEAWDAT"] == dt.timedelta(days=1)
    assert run("PD-12", subject) == []


def test_pd12_non_serious_event_is_not_checked(subject):
    replace(subject["AE"], {"AETERM": "Pneumonia"}, AESER="N", AERPTDAT=day(30))
    assert run("PD-12", subject) == []


# ------------------------------------------------------------------------------------------------
# PD-13


def test_pd13_stratum_does_not_match_age(subject):
    subject["RAND"][0]["STRATUM"] = "ADULT"  # 11 years old
    finding = only(run("PD-13", subject))
    assert_finding(finding, "PD-13", "STRATUM", "RAND", 2, "minor")
    assert finding.evidence["AGE"] == "11"
    assert finding.evidence["EXPECTED"] == "PEDI"


def test_pd13_eighteenth_birthday_boundary(subject):
    # born 2006-03 -> 2006-03-15: 17 on 2024-03-04 -> PEDI; born 2006-02 -> 18 -> ADULT
    subject["DM"][0]["BRTHYM"] = "2006-03"
    assert run("PD-13", subject) == []
    subject["DM"][0]["BRTHYM"] = "2006-02"
    finding = only(run("PD-13", subject))
    assert finding.evidence["EXPECTED"] == "ADULT"
    assert finding.evidence["AGE"] == "18"
    subject["RAND"][0]["STRATUM"] = "ADULT"
    assert run("PD-13", subject) == []


# ------------------------------------------------------------------------------------------------
# Amendment 1 (protocol version 1.1): the W8 window and PD-14


def with_w8(subject: dict[str, list[dict[str, Any]]], visit_day: int = 57) -> None:
    """Add a W8 visit (VS and CORE) on ``visit_day`` and the daily diary on the 7 days before it."""
    subject["VS"].append(rec(VISIT="W8", VSDAT=day(visit_day), WEIGHT=30, WEIGHTU="kg"))
    subject["CORE"].append(rec(VISIT="W8", CSDAT=day(visit_day), PHGA=3.0, PAGA=3.0, JADONE="Y", FEVER="N",
                               RASH="N", LYMPH="N", HEPSPL="N", SEROS="N"))
    subject["FEVER"] += [rec(FVDAT=day(n), FVTEMP=36.8, FVTEMPU="C", FVROUTE="AXILLARY", FVANTIP="N")
                         for n in range(visit_day - 7, visit_day)]


def test_w8_window_is_plus_minus_7_days(subject):
    # Version 1.0 had 52..62; Amendment 1 widens it to 57 ± 7 = 50..64.
    assert (STUDY.visits["W8"].window_lo, STUDY.visits["W8"].window_hi) == (50, 64)
    with_w8(subject, 64)
    assert run("PD-07", subject, data_cut=day(70)) == []
    replace(subject["VS"], {"VISIT": "W8"}, VSDAT=day(65))
    finding = only(run("PD-07", subject, data_cut=day(70)))
    assert finding.visit == "W8" and finding.deviation_class == "minor"
    assert (finding.evidence["WINDOWLO"], finding.evidence["WINDOWHI"]) == ("50", "64")


def test_pd14_diary_before_w8_complete(subject):
    with_w8(subject)
    assert run("PD-14", subject, data_cut=day(70)) == []
    # 6 of the 7 days are enough.
    subject["FEVER"] = [r for r in subject["FEVER"] if r["FVDAT"] != day(52)]
    assert run("PD-14", subject, data_cut=day(70)) == []


def test_pd14_diary_missing_before_w8_is_minor(subject):
    with_w8(subject)
    subject["FEVER"] = [r for r in subject["FEVER"] if r["FVDAT"] not in (day(51), day(53))]
    finding = only(run("PD-14", subject, data_cut=day(70)))
    assert_finding(finding, "PD-14", "FVDAT", "FEVER", None, "minor")
    assert finding.visit == "W8"
    assert finding.evidence["RECORDED"] == "5" and finding.evidence["FROM"] == day(50).isoformat()
    assert finding.evidence["TO"] == day(56).isoformat()
    assert "5 of 7 diary days recorded" in finding.message


def test_pd14_only_for_visits_that_took_place(subject):
    # No W8 visit yet (the clean subject ends at W4), and a W8 after the data cut: nothing is due.
    assert run("PD-14", subject, data_cut=day(70)) == []
    with_w8(subject)
    subject["FEVER"] = [r for r in subject["FEVER"] if r["FVDAT"] < day(50)]
    assert run("PD-14", subject, data_cut=day(56)) == []
    assert only(run("PD-14", subject, data_cut=day(70))).evidence["RECORDED"] == "0"
    # W4 is before the amendment's visits: its diary is PD-08's business, not PD-14's.
    subject["VS"] = [r for r in subject["VS"] if r["VISIT"] != "W8"]
    subject["CORE"] = [r for r in subject["CORE"] if r["VISIT"] != "W8"]
    assert run("PD-14", subject, data_cut=day(70)) == []

