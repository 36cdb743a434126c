"""Tests of trialkit.adam: ADSL, ADEFF and ADAE for a small literal study worked out by hand.

Three subjects, D1 = 2024-03-01 (first dose), W4 = 2024-03-29 (study day 29):

- 01-001, PEDI (born 2014-05 → 9 years), responder at W4;
- 07-002, ADULT (born 2000-01 → 24 years), judged by DAS28-ESR / EULAR;
- 01-003, PEDI, stopped in Part A: no W4 data → primary response imputed as non-responder.
"""

from __future__ import annotations

import pandas as pd
import pytest

from trialkit.study import load_study

adam = load_study().plugin("analysis")  # the bundled study's analysis programs (ADSL, ADEFF, ADAE)

S1, S2, S3 = "01-001", "07-002", "01-003"
D1, W4 = "2024-03-01", "2024-03-29"


def ts(value: str) -> pd.Timestamp:
    return pd.Timestamp(value)


def frame(rows: list[dict]) -> pd.DataFrame:
    out = pd.DataFrame(rows)
    for column in out.columns:
        if column.endswith("DAT"):
            out[column] = pd.to_datetime(out[column])
    return out


def site(subject: str) -> str:
    return subject[:2]


def _chaq(subject: str, visit: str, date: str, score: int, version: str = "CHAQ") -> dict:
    row = {"SITEID": site(subject), "SUBJID": subject, "VISIT": visit, "QSDAT": date, "QSVER": version}
    for prefix, n in [("DRESS", 4), ("ARISE", 2), ("EAT", 3), ("WALK", 2), ("HYG", 5), ("REACH", 4), ("GRIP", 5), ("ACT", 5)]:
        for i in range(1, n + 1):
            row[f"{prefix}{i}"] = score
        row[f"{prefix}AH"] = "N"
    return row


def _core(subject: str, visit: str, date: str, phga: float, paga: float, ptgh=None) -> dict:
    return {"SITEID": site(subject), "SUBJID": subject, "VISIT": visit, "CSDAT": date, "PHGA": phga,
            "PAGA": paga, "PTGH": ptgh, "JADONE": "Y", "FEVER": "N", "RASH": "N", "LYMPH": "N",
            "HEPSPL": "N", "SEROS": "N"}


def _joint(subject: str, visit: str, date: str, joint: str, swollen: str, tender: str, lom: str) -> dict:
    return {"SITEID": site(subject), "SUBJID": subject, "VISIT": visit, "JADAT": date, "JOINT": joint,
            "SWOLLEN": swollen, "TENDER": tender, "LOM": lom}


def _lab(subject: str, visit: str, date: str, test: str, value: float, uln: float) -> dict:
    return {"SITEID": site(subject), "SUBJID": subject, "VISIT": visit, "LBDAT": date, "LBTESTCD": test,
            "LBSTRESN": value, "LBSTNRHI": uln}


def _diary(subject: str, first: str, days: int, temp: float) -> list[dict]:
    return [
        {"SITEID": site(subject), "SUBJID": subject, "FVDAT": ts(first) + pd.Timedelta(days=k), "FVTEMP": temp}
        for k in range(days)
    ]


@pytest.fixture(scope="module")
def forms() -> dict[str, pd.DataFrame]:
    ja = [
        # 01-001 D1: 4 swollen joints + WRI_L with LOM and tenderness → AJC71 5; LOM: WRI_L, HIP_L → 2.
        *(_joint(S1, "D1", D1, j, "Y", "N", "N") for j in ("KNEE_L", "KNEE_R", "ANK_L", "ANK_R")),
        _joint(S1, "D1", D1, "WRI_L", "N", "Y", "Y"),
        _joint(S1, "D1", D1, "HIP_L", "N", "N", "Y"),
        # 01-001 W4: KNEE_L swollen → AJC71 1, LOMC 0.
        _joint(S1, "W4", W4, "KNEE_L", "Y", "N", "N"),
        # 07-002 D1: wrists and knees swollen and tender → TJC28 4, SJC28 4; W4 nothing.
        *(_joint(S2, "D1", D1, j, "Y", "Y", "N") for j in ("WRI_L", "WRI_R", "KNEE_L", "KNEE_R")),
        # 01-003 D1: 3 swollen knees/ankles.
        *(_joint(S3, "D1", D1, j, "Y", "N", "N") for j in ("KNEE_L", "KNEE_R", "ANK_L")),
    ]
    return {
        "DM": frame([
            {"SITEID": "01", "SUBJID": S1, "ICDAT": "2024-02-01", "BRTHYM": "2014-05", "SEX": "F"},
            {"SITEID": "07", "SUBJID": S2, "ICDAT": "2024-02-01", "BRTHYM": "2000-01", "SEX": "M"},
            {"SITEID": "01", "SUBJID": S3, "ICDAT": "2024-02-01", "BRTHYM": "2016-03", "SEX": "M"},
        ]),
        "MH": frame([
            {"SITEID": "01", "SUBJID": S1, "ONSETYM": "2020-03"},
            {"SITEID": "07", "SUBJID": S2, "ONSETYM": "2010-06"},
            {"SITEID": "01", "SUBJID": S3, "ONSETYM": "2022-01"},
        ]),
        "RAND": frame([
            {"SITEID": site(s), "SUBJID": s, "RANDNO": f"R00{i}", "RANDDAT": D1, "STRATUM": g, "KITNO": f"K{i}"}
            for i, (s, g) in enumerate([(S1, "PEDI"), (S2, "ADULT"), (S3, "PEDI")], start=1)
        ]),
        "VS": frame([
            {"SITEID": "01", "SUBJID": S1, "VISIT": "D1", "VSDAT": D1, "WEIGHT": 30.0, "TEMP": 36.8},
            {"SITEID": "01", "SUBJID": S1, "VISIT": "W4", "VSDAT": W4, "WEIGHT": 30.0, "TEMP": 36.8},
            {"SITEID": "07", "SUBJID": S2, "VISIT": "D1", "VSDAT": D1, "WEIGHT": 70.0, "TEMP": 36.8},
            {"SITEID": "07", "SUBJID": S2, "VISIT": "W4", "VSDAT": W4, "WEIGHT": 70.0, "TEMP": 36.8},
            {"SITEID": "01", "SUBJID": S3, "VISIT": "D1", "VSDAT": D1, "WEIGHT": 25.0, "TEMP": 36.8},
        ]),
        "CORE": frame([
            _core(S1, "D1", D1, 7.0, 6.0),
            _core(S1, "W4", W4, 4.9, 3.0),
            _core(S2, "D1", D1, 6.0, 5.0, 60),
            _core(S2, "W4", W4, 2.0, 2.0, 20),
            _core(S3, "D1", D1, 5.0, 5.0),
        ]),
        "JA": frame(ja),
        "CHAQ": frame([
            _chaq(S1, "D1", D1, 1), _chaq(S1, "W4", W4, 0),
            _chaq(S2, "D1", D1, 1, "HAQ"), _chaq(S2, "W4", W4, 0, "HAQ"),
            _chaq(S3, "D1", D1, 2),
        ]),
        "FEVER": frame([
            *_diary(S1, "2024-03-22", 7, 37.0),  # W4 − 7 .. W4 − 1, 7 days, afebrile
            *_diary(S2, "2024-03-23", 6, 36.9),  # 6 of 7 days, afebrile
            *_diary(S3, "2024-02-23", 7, 38.5),  # only before D1
        ]),
        "LB": frame([
            _lab(S1, "D1", D1, "ESR", 40.0, 20.0), _lab(S1, "W4", W4, "ESR", 18.0, 20.0),
            _lab(S1, "D1", D1, "CRP", 50.0, 5.0), _lab(S1, "W4", W4, "CRP", 4.0, 5.0),
            _lab(S2, "D1", D1, "ESR", 49.0, 15.0), _lab(S2, "W4", W4, "ESR", 9.0, 15.0),
            _lab(S2, "D1", D1, "CRP", 30.0, 5.0), _lab(S2, "W4", W4, "CRP", 3.0, 5.0),
            _lab(S3, "D1", D1, "ESR", 60.0, 20.0), _lab(S3, "D1", D1, "CRP", 80.0, 5.0),
        ]),
        "EX": frame([
            {"SITEID": "01", "SUBJID": S1, "EXSTDAT": D1, "EXENDAT": "2024-06-30", "EXDOSE": 40.0, "KITNO": "K1", "EXMISS": 0},
            {"SITEID": "07", "SUBJID": S2, "EXSTDAT": D1, "EXENDAT": "2024-06-30", "EXDOSE": 100.0, "KITNO": "K2", "EXMISS": 0},
            {"SITEID": "01", "SUBJID": S3, "EXSTDAT": D1, "EXENDAT": "2024-03-20", "EXDOSE": 40.0, "KITNO": "K3", "EXMISS": 0},
        ]),
        "CM": frame([
            {"SITEID": "01", "SUBJID": S1, "CMTRT": "PREDNISONE", "CMDOSE": 15.0, "CMDOSU": "mg", "CMFRQ": "QD",
             "CMROUTE": "PO", "CMSTDAT": "2024-01", "CMENDAT": None, "CMONGO": "Y"},
        ]),
        "AE": frame([
            {"SITEID": "01", "SUBJID": S1, "AETERM": "Injection site erythema", "AESTDAT": D1, "AEENDAT": "2024-03-03",
             "AEONGO": "N", "AETOXGR": 1, "AESER": "N", "AEREL": "RELATED", "AEOUT": "RECOVERED",
             "AESI": "INJECTION SITE REACTION"},
            {"SITEID": "07", "SUBJID": S2, "AETERM": "Headache", "AESTDAT": "2024-02-25", "AEENDAT": "2024-02-26",
             "AEONGO": "N", "AETOXGR": 1, "AESER": "N", "AEREL": "NOT RELATED", "AEOUT": "RECOVERED", "AESI": "NONE"},
        ]),
        "DS": frame([
            {"SITEID": "01", "SUBJID": S3, "DSDECOD": "ADVERSE EVENT", "DSSTDAT": "2024-03-20", "DSPART": "A"},
        ]),
    }


@pytest.fixture(scope="module")
def datasets(study, forms):
    deviations = pd.DataFrame({"SUBJID": [S3, S1], "class": ["major", "minor"]})
    return adam.derive_datasets(study, forms, deviations=deviations)


def value(adeff: pd.DataFrame, subject: str, paramcd: str, visit: str, column: str = "AVAL"):
    rows = adeff[(adeff["SUBJID"] == subject) & (adeff["PARAMCD"] == paramcd) & (adeff["AVISIT"] == visit)]
    assert len(rows) == 1, (subject, paramcd, visit, len(rows))
    return rows.iloc[0][column]


# ------------------------------------------------------------------------------------------------
# ADSL


def test_adsl_rows_and_values(datasets) -> None:
    adsl = datasets["ADSL"].set_index("SUBJID")
    assert list(datasets["ADSL"]["USUBJID"]) == ["ANK-SJIA-01-01-001", "ANK-SJIA-01-01-003", "ANK-SJIA-01-07-002"]
    # Age at D1 2024-03-01, birth on the 15th: 2014-05-15 → 9; 2000-01-15 → 24; 2016-03-15 → 7.
    assert adsl["AGE"].tolist() == [9, 7, 24]
    assert adsl["AGEGR1"].tolist() == ["PEDI", "PEDI", "ADULT"]
    assert adsl.loc[S1, "SITEID"] == "01" and adsl.loc[S2, "SITEID"] == "07"
    assert adsl.loc[S1, "WEIGHTBL"] == 30.0
    # Onset 2020-03-15 → D1 2024-03-01: 1461 − 14 = 1447 days / 365.25 = 3.9617 → 3.96.
    assert adsl.loc[S1, "DURDIS"] == pytest.approx(3.96)
    assert adsl["RANDFL"].tolist() == ["Y", "Y", "Y"]
    assert adsl["SAFFL"].tolist() == ["Y", "Y", "Y"]
    # 01-003 has a major deviation; 01-001 only a minor one.
    assert adsl["PPROTFL"].tolist() == ["Y", "N", "Y"]
    assert adsl.loc[S3, "TRTSDT"] == ts(D1) and adsl.loc[S3, "TRTEDT"] == ts("2024-03-20")
    # 01-003 left in Part A (DS); the others reached W4 and are ongoing.
    assert adsl["PARTACFL"].tolist() == ["Y", "N", "Y"]
    assert adsl["PARTBCFL"].tolist() == ["N", "N", "N"]
    assert adsl.loc[S3, "DSDECOD"] == "ADVERSE EVENT" and adsl.loc[S3, "DSSTDT"] == ts("2024-03-20")
    assert pd.isna(adsl.loc[S1, "DSDECOD"])
    # Primary: 01-001 and 07-002 respond; 01-003 undetermined → non-responder, imputed.
    assert adsl["RESPW4"].tolist() == ["Y", "N", "Y"]
    assert adsl["RESPW4IM"].tolist() == ["N", "Y", "N"]


def test_no_arm_without_randlist_and_arm_with_it(study, forms, datasets) -> None:
    assert "ARM" not in datasets["ADSL"].columns
    randlist = pd.DataFrame({"RANDNO": ["R001", "R002", "R003"], "ARM": ["ANAKINRA", "PLACEBO", "ANAKINRA"]})
    unblinded = adam.derive_datasets(study, forms, randlist=randlist)["ADSL"].set_index("SUBJID")
    assert unblinded.loc[[S1, S2, S3], "ARM"].tolist() == ["ANAKINRA", "PLACEBO", "ANAKINRA"]
    # Without deviations the per-protocol flag cannot be decided.
    assert unblinded["PPROTFL"].isna().all()


# ------------------------------------------------------------------------------------------------
# ADEFF


def test_adeff_jadas10_base_chg_pchg(datasets) -> None:
    adeff = datasets["ADEFF"]
    # D1: 7.0 + 6.0 + min(5, 10) + (40 − 20)/10 = 20.00; W4: 4.9 + 3.0 + 1 + 0 (ESR 18 < 20) = 8.90.
    assert value(adeff, S1, "JADAS10", "D1") == 20.0
    assert value(adeff, S1, "JADAS10", "D1", "ABLFL") == "Y"
    assert value(adeff, S1, "JADAS10", "W4") == pytest.approx(8.9)
    assert value(adeff, S1, "JADAS10", "W4", "BASE") == 20.0
    # CHG = 8.90 − 20.00 = −11.10; PCHG = 100 · −11.1 / 20 = −55.50.
    assert value(adeff, S1, "JADAS10", "W4", "CHG") == pytest.approx(-11.1)
    assert value(adeff, S1, "JADAS10", "W4", "PCHG") == pytest.approx(-55.5)
    assert value(adeff, S1, "JADAS10", "W4", "ADY") == 29
    # cJADAS-10 at D1: 7 + 6 + 5 = 18.
    assert value(adeff, S1, "CJADAS10", "D1") == 18.0
    # PHGA 7.0 → 4.9 is exactly −30 %.
    assert value(adeff, S1, "PHGA", "W4", "PCHG") == -30.0
    assert value(adeff, S1, "AJC71", "D1") == 5 and value(adeff, S1, "LOMC", "D1") == 2
    assert value(adeff, S1, "CHAQ", "W4", "CHG") == -1.0
    # Prednisone 15 mg/day / 30 kg = 0.5 mg/kg/day.
    assert value(adeff, S1, "PREDMGKG", "D1") == 0.5


def test_adeff_acr_pedi_and_adapted(datasets) -> None:
    adeff = datasets["ADEFF"]
    # 01-001 W4 vs D1: PhGA −30 %, PaGA −50 %, CHAQ 1 → 0 −100 %, AJC71 5 → 1 −80 %, LOMC 2 → 0
    # −100 %, ESR 40 → 18 −55 %; nothing worsened.
    # 30: 6 improved → Y; 50: 5 (not PhGA) → Y; 70: CHAQ, AJC, LOM = 3 → Y; 90: CHAQ, LOM = 2 → N.
    assert [value(adeff, S1, f"ACRP{n}", "W4", "AVALC") for n in (30, 50, 70, 90, 100)] == ["Y", "Y", "Y", "N", "N"]
    assert value(adeff, S1, "ACRP30", "W4") == 1.0
    # Adapted: fever-free (7 diary days < 38), CRP 4 ≤ 5 and ESR 18 ≤ 20 → same as ACR Pedi.
    assert value(adeff, S1, "FEVFREE", "W4", "AVALC") == "Y"
    assert value(adeff, S1, "AACRP30", "W4", "AVALC") == "Y"
    assert value(adeff, S1, "AACRP90", "W4", "AVALC") == "N"
    assert pd.isna(value(adeff, S1, "AACRP30", "W4", "DTYPE"))
    # 01-003: no W4 data → undetermined: no observed record, only the non-responder imputation.
    assert value(adeff, S3, "AACRP30", "W4", "AVALC") == "N"
    assert value(adeff, S3, "AACRP30", "W4") == 0.0
    assert value(adeff, S3, "AACRP30", "W4", "DTYPE") == "NRI"
    assert adeff[(adeff["SUBJID"] == S3) & (adeff["PARAMCD"] == "ACRP30")].empty
    # No response parameters at baseline.
    assert adeff[(adeff["AVISIT"] == "D1") & adeff["PARAMCD"].str.startswith("ACRP")].empty


def test_adeff_das28_and_eular_for_the_adult(datasets) -> None:
    adeff = datasets["ADEFF"]
    # D1: 0.56·√4 + 0.28·√4 + 0.70·ln 49 + 0.014·60 = 1.12 + 0.56 + 2.7243 + 0.84 = 5.2443 → 5.24
    # W4: 0 + 0 + 0.70·ln 9 + 0.014·20 = 1.5381 + 0.28 = 1.8181 → 1.82
    assert value(adeff, S2, "DAS28ESR", "D1") == pytest.approx(5.24)
    assert value(adeff, S2, "DAS28ESR", "W4") == pytest.approx(1.82)
    assert value(adeff, S2, "DAS28ESR", "W4", "CHG") == pytest.approx(-3.42)
    # Δ = 5.24 − 1.82 = 3.42 > 1.2 and follow-up ≤ 3.2 → good.
    assert value(adeff, S2, "EULAR", "W4", "AVALC") == "GOOD"
    assert value(adeff, S2, "EULAR", "W4") == 2.0
    assert value(adeff, S2, "EULAR", "W4", "CRIT1FL") == "Y"
    # Adapted response for the adult: EULAR good + fever-free (6 days) + CRP 3 ≤ 5 + ESR 9 ≤ 15.
    assert value(adeff, S2, "AACRP30", "W4", "AVALC") == "Y"
    # PEDI subjects have no DAS28/EULAR rows.
    assert adeff[(adeff["SUBJID"] == S1) & adeff["PARAMCD"].isin(["DAS28ESR", "EULAR"])].empty


def test_adeff_row_order(datasets) -> None:
    adeff = datasets["ADEFF"]
    # Sorted by the BDS keys: subject, parameter (in PARAMN order), visit.
    keys = adeff[["USUBJID", "PARAMN", "AVISITN"]]
    assert keys.equals(keys.sort_values(["USUBJID", "PARAMN", "AVISITN"]).reset_index(drop=True))
    assert not adeff.duplicated(["USUBJID", "AVISIT", "PARAMCD", "DTYPE"]).any()
    assert adeff.groupby("PARAMCD")["PARAMN"].nunique().eq(1).all()


# ------------------------------------------------------------------------------------------------
# ADAE


def test_adae(datasets) -> None:
    adae = datasets["ADAE"].set_index("SUBJID")
    # Onset on D1 itself is treatment-emergent (day 1, 3 days long); before D1 it is not (day −5).
    assert adae.loc[S1, "TRTEMFL"] == "Y"
    assert adae.loc[S1, "ASTDY"] == 1 and adae.loc[S1, "ADURN"] == 3
    assert pd.isna(adae.loc[S2, "TRTEMFL"])
    assert adae.loc[S2, "ASTDY"] == -5
    assert adae.loc[S1, "AESI"] == "INJECTION SITE REACTION"
    assert list(datasets["ADAE"].columns[:2]) == ["STUDYID", "USUBJID"]


# ------------------------------------------------------------------------------------------------
# Labels


def test_every_column_has_a_label(datasets) -> None:
    for name, dataset in datasets.items():
        labels = dataset.attrs["labels"]
        for column in dataset.columns:
            assert labels.get(column), (name, column)
            assert adam.LABELS[name].get(column), (name, column)


def test_entry_point_on_no_data(study) -> None:
    empty = adam.derive_datasets(study, {})
    assert [len(empty[name]) for name in ("ADSL", "ADEFF", "ADAE")] == [0, 0, 0]


# ------------------------------------------------------------------------------------------------
# Amendment 1 (protocol version 1.1)


def test_teae_until_28_days_after_the_last_dose(study, forms) -> None:
    # 01-003 stopped on 2024-03-20 (DS): an AE on 04-17 (last dose + 28) is emergent, one on 04-18 is
    # not. 01-001's EX period ends 06-30 and it has no DS: an AE long after that still is not.
    # A subject still dosing (open EX period, no DS) has no last dose: any AE from day 1 counts.
    changed = dict(forms)
    extra = [{"SITEID": "01", "SUBJID": S3, "AETERM": term, "AESTDAT": when, "AEENDAT": None, "AEONGO": "Y",
              "AETOXGR": 1, "AESER": "N", "AEREL": "NOT RELATED", "AEOUT": "RECOVERING", "AESI": "NONE"}
             for term, when in (("Cough", "2024-04-17"), ("Fatigue", "2024-04-18"))]
    extra.append({"SITEID": "01", "SUBJID": S1, "AETERM": "Otitis", "AESTDAT": "2024-09-01", "AEENDAT": None,
                  "AEONGO": "Y", "AETOXGR": 1, "AESER": "N", "AEREL": "NOT RELATED", "AEOUT": "RECOVERING",
                  "AESI": "NONE"})
    changed["AE"] = pd.concat([forms["AE"], frame(extra)], ignore_index=True)
    flags = adam.derive_adae(study, changed).set_index("AETERM")["TRTEMFL"]
    assert flags["Cough"] == "Y" and pd.isna(flags["Fatigue"]) and pd.isna(flags["Otitis"])
    still = dict(changed)
    still["EX"] = forms["EX"].assign(EXENDAT=[pd.NaT, forms["EX"]["EXENDAT"][1], forms["EX"]["EXENDAT"][2]])
    assert adam.derive_adae(study, still).set_index("AETERM")["TRTEMFL"]["Otitis"] == "Y"


def test_taper_only_with_a_glucocorticoid_at_d1(study, forms, datasets) -> None:
    # Only 01-001 takes prednisone at D1 (15 mg/day): the taper population. The others are not
    # applicable: TAPERFL = N and no TAPER record (never "not met").
    adsl = datasets["ADSL"].set_index("SUBJID")
    assert adsl["TAPERFL"].to_dict() == {S1: "Y", S3: "N", S2: "N"}
    later = dict(forms)
    later["CORE"] = pd.concat([forms["CORE"], frame([_core(S1, "W24", "2024-08-15", 1.0, 1.0),
                                                     _core(S2, "W24", "2024-08-15", 1.0, 1.0, 10)])],
                              ignore_index=True)
    adeff = adam.derive_datasets(study, later)["ADEFF"]
    taper = adeff[adeff["PARAMCD"] == "TAPER"]
    assert list(taper["SUBJID"]) == [S1] and list(taper["AVISIT"]) == ["W24"]
