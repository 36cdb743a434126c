"""Tests of the bundled study's own derivations (schemas/analysis/derivations.py).

The 71-joint counts, the CHAQ disability index, the anakinra dose window, the prednisone-equivalent
dose and fever-free status are this trial's; they are built on trialkit.derive and tested here on
small literal frames worked out by hand from shared/protocol/DERIVATIONS.md.
"""

from __future__ import annotations

import doctest
import math

import pandas as pd
import pytest

from trialkit.study import load_study

derivations = load_study().plugin("analysis").derivations
NA = pd.NA


def d(*values: str | None) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values)))


def test_doctests() -> None:
    result = doctest.testmod(derivations, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


# ------------------------------------------------------------------------------------------------
# Weight and dose


def test_weight_on_latest_visit_on_or_before() -> None:
    vs = pd.DataFrame(
        {
            "SUBJID": ["01-001", "01-001", "01-001", "01-002"],
            "VSDAT": d("2024-01-01", "2024-02-01", "2024-02-15", "2024-01-01"),
            "WEIGHT": [30.0, 32.0, float("nan"), 60.0],
        }
    )
    frame = pd.DataFrame(
        {
            "SUBJID": ["01-001", "01-001", "01-001", "01-001", "01-002"],
            "DATE": d("2024-02-20", "2023-12-31", "2024-02-01", None, "2024-06-01").to_numpy(),
        },
        index=[10, 11, 12, 13, 14],
    )
    got = derivations.derive_weight_on(vs, frame, "DATE", out="WT")
    # 02-20: the 02-15 visit has no weight → 02-01's 32; before any visit → NaN; same day → 32.
    assert got.index.tolist() == [10, 11, 12, 13, 14]
    assert got["WT"].tolist()[:1] == [32.0]
    assert math.isnan(got["WT"].iloc[1])
    assert got["WT"].iloc[2] == 32.0
    assert math.isnan(got["WT"].iloc[3])
    assert got["WT"].iloc[4] == 60.0


def test_dose_window_at_49_50_51_kg(study) -> None:
    # 49 kg: [10·⌊4.9⌋, min(100, 10·⌈9.8⌉)] = [40, 100]; 50 kg (≥ 50): [100, 100]; 51 kg: [100, 100].
    # 25.5 kg: [10·⌊2.55⌋, 10·⌈5.1⌉] = [20, 60].
    subjects = ["01-001", "01-002", "01-003", "01-004", "01-005"]
    vs = pd.DataFrame(
        {
            "SUBJID": subjects,
            "VSDAT": d(*["2024-01-01"] * 5),
            "WEIGHT": [49.0, 50.0, 51.0, 25.5, 49.0],
        }
    )
    ex = pd.DataFrame(
        {
            "SUBJID": subjects + ["01-006"],
            "EXSTDAT": d(*["2024-01-01"] * 6),
            "EXDOSE": [100.0, 90.0, 100.0, 60.0, 30.0, 50.0],
        }
    )
    got = derivations.derive_dose_window(ex, vs, protocol=study.protocol)
    assert got["WEIGHT"].tolist()[:5] == [49.0, 50.0, 51.0, 25.5, 49.0]
    assert got["DOSELO"].tolist() == [40, 100, 100, 20, 40, NA]
    assert got["DOSEHI"].tolist() == [100, 100, 100, 60, 100, NA]
    # 100 in [40,100]; 90 < 100 at 50 kg; 100 at 51 kg; 60 = upper bound; 30 < 40; no weight → NA.
    assert got["INWINDOW"].tolist() == [True, False, True, True, False, NA]


def test_prednisone_equivalent_bid_qw_mgkg_once(study) -> None:
    cm = pd.DataFrame(
        {
            "SUBJID": ["01-001"] * 6,
            "CMTRT": ["PREDNISONE", "METHYLPREDNISOLONE", "PREDNISOLONE", "DEXAMETHASONE", "PREDNISONE", "NAPROXEN"],
            "CMDOSE": [10.0, 28.0, 0.5, 10.0, 40.0, 250.0],
            "CMDOSU": ["mg", "mg", "mg/kg", "mg", "mg", "mg"],
            "CMFRQ": ["BID", "QW", "QD", "ONCE", "QD", "BID"],
            "CMROUTE": ["PO", "PO", "PO", "IV", "IA", "PO"],
            "CMSTDAT": ["2024-01-05", "2024-01", "2024-01-15", "2024-01-20", "2024-01-01", "2024-01-01"],
            "CMENDAT": ["2024-01", None, None, "2024-01-20", None, None],
            "CMONGO": ["N", "Y", "Y", "N", "Y", "Y"],
        }
    )
    vs = pd.DataFrame(
        {"SUBJID": ["01-001"] * 2, "VSDAT": d("2024-01-01", "2024-02-01"), "WEIGHT": [40.0, 50.0]}
    )
    dates = pd.DataFrame(
        {"SUBJID": ["01-001"] * 5, "DATE": d("2024-01-10", "2024-01-20", "2024-01-31", "2024-02-01", "2024-01-01")}
    )
    got = derivations.derive_prednisone_equivalent(cm, vs, dates, protocol=study.protocol)
    # Prednisone 10 mg BID = 20 mg/day (01-05 .. end "2024-01" → 01-31); methylprednisolone 28 mg QW
    # = 4 mg/day × 1.25 = 5 (from "2024-01" → 01-01, ongoing); prednisolone 0.5 mg/kg QD × 40 kg = 20
    # (from 01-15); dexamethasone 10 mg ONCE IV × 6.67 = 66.7 on 01-20 only; IA and NSAID excluded.
    # 01-10: 20 + 5 = 25 → 25/40 = 0.625 mg/kg/day
    # 01-20: 20 + 5 + 20 + 66.7 = 111.7 → 111.7/40 = 2.7925
    # 01-31: 20 + 5 + 20 = 45 (end "2024-01" imputed to 01-31, inclusive) → 1.125
    # 02-01: weight 50 kg that day; 5 + 0.5·50 = 30 → 0.6
    # 01-01: methylprednisolone only: 5 → 0.125
    assert got["PREDMG"].tolist() == pytest.approx([25.0, 111.7, 45.0, 30.0, 5.0])
    assert got["PREDMGKG"].tolist() == pytest.approx([0.625, 2.7925, 1.125, 0.6, 0.125])


def test_prednisone_equivalent_undetermined_and_zero(study) -> None:
    cm = pd.DataFrame(
        {
            "SUBJID": ["01-001"],
            "CMTRT": ["PREDNISONE"],
            "CMDOSE": [0.5],
            "CMDOSU": ["mg/kg"],
            "CMFRQ": ["QD"],
            "CMROUTE": ["PO"],
            "CMSTDAT": ["2024-01-01"],
            "CMENDAT": [None],
            "CMONGO": ["Y"],
        }
    )
    vs = pd.DataFrame({"SUBJID": ["01-002"], "VSDAT": d("2024-01-01"), "WEIGHT": [40.0]})
    dates = pd.DataFrame({"SUBJID": ["01-001", "01-002"], "DATE": d("2024-01-10", "2024-01-10")})
    got = derivations.derive_prednisone_equivalent(cm, vs, dates, protocol=study.protocol)
    # 01-001: mg/kg dose without any weight → undetermined (NaN), never 0.
    assert math.isnan(got["PREDMG"].iloc[0])
    # 01-002: no steroid at all → 0 mg/day, 0 mg/kg/day.
    assert got["PREDMG"].iloc[1] == 0.0 and got["PREDMGKG"].iloc[1] == 0.0


# ------------------------------------------------------------------------------------------------
# Fever diary


def _diary(subject: str, days: list[str], temps: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"SUBJID": [subject] * len(days), "FVDAT": d(*days), "FVTEMP": temps})


def test_fever_free_5_6_7_days_and_38(study) -> None:
    # Visit 2024-01-15: window V−7..V−1 = 01-08 .. 01-14.
    week = [f"2024-01-{day:02d}" for day in range(8, 15)]
    diary = pd.concat(
        [
            _diary("01-005", week[:5], [37.0] * 5),  # 5 days, all < 38 → undetermined
            _diary("01-006", week[:6], [37.0] * 6),  # 6 days → fever-free
            _diary("01-007", week + ["2024-01-15"], [37.9] * 7 + [39.5]),  # 7 days; V itself ignored
            _diary("01-008", week[:6], [37.0] * 5 + [38.0]),  # 38.0 is fever (≥ 38.0)
            _diary("01-009", week[:2], [36.5, 38.2]),  # fever seen however few days
            _diary("01-010", week[:6], [37.0] * 5 + [37.99999999999999]),  # °F float noise → 38.0
            _diary("01-011", ["2024-01-07"] + week[:5], [37.0] * 6),  # 01-07 outside the window
        ],
        ignore_index=True,
    )
    subjects = [f"01-0{n:02d}" for n in range(5, 12)]
    visits = pd.DataFrame({"SUBJID": subjects, "VISIT": ["W4"] * 7, "VSDAT": d(*["2024-01-15"] * 7)})
    got = derivations.derive_fever_free(diary, visits, protocol=study.protocol, date_col="VSDAT")
    assert got["NDIARY"].tolist() == [5, 6, 7, 6, 2, 6, 5]
    assert got["FEVFREE"].tolist() == [NA, True, True, False, False, False, NA]
    assert got["MAXTEMP"].tolist()[:5] == [37.0, 37.0, 37.9, 38.0, 38.2]


# ------------------------------------------------------------------------------------------------
# Joints and CHAQ


def test_joint_counts(study) -> None:
    core = pd.DataFrame(
        {
            "SUBJID": ["01-001"] * 3 + ["01-002"],
            "VISIT": ["D1", "W2", "W4", "D1"],
            "CSDAT": d("2024-01-01", "2024-01-15", "2024-01-29", "2024-01-01"),
            "JADONE": ["Y", "Y", "N", None],
        }
    )
    ja = pd.DataFrame(
        {
            "SUBJID": ["01-001"] * 6 + ["01-002"],
            "VISIT": ["D1"] * 5 + ["W4", "D1"],
            "JADAT": d(*["2024-01-01"] * 5 + ["2024-01-29", "2024-01-01"]),
            "JOINT": ["KNEE_L", "WRI_R", "MTP1_L", "SHO_L", "TMJ_L", "KNEE_R", "KNEE_R"],
            "SWOLLEN": ["Y", "N", "N", "N", "Y", "Y", "Y"],
            "TENDER": ["N", "Y", "N", "Y", "N", "N", "N"],
            "LOM": ["N", "Y", "Y", "N", "N", "N", "N"],
        }
    )
    got = derivations.derive_joint_counts(ja, core, protocol=study.protocol)
    # D1 active: KNEE_L (swollen), WRI_R (LOM + tender), TMJ_L (swollen) → AJC71 = 3; MTP1_L (LOM
    # only) and SHO_L (tender only) are not active. JADAS-27 set holds KNEE and WRI, not TMJ → 2.
    # LOM: WRI_R, MTP1_L → 2. DAS28 set: tender WRI_R, SHO_L → 2; swollen KNEE_L → 1 (TMJ not in it).
    # W2: examined, no abnormal joint → zeros. W4: JADONE = N → all NA despite a JA row.
    # 01-002: JADONE missing → NA.
    assert got["AJC71"].tolist() == [3, 0, NA, NA]
    assert got["AJC27"].tolist() == [2, 0, NA, NA]
    assert got["LOMC"].tolist() == [2, 0, NA, NA]
    assert got["TJC28"].tolist() == [2, 0, NA, NA]
    assert got["SJC28"].tolist() == [1, 0, NA, NA]


def _chaq_row(**items: object) -> dict[str, object]:
    row: dict[str, object] = {"SUBJID": "01-001"}
    for prefix, n in [("DRESS", 4), ("ARISE", 2), ("EAT", 3), ("WALK", 2), ("HYG", 5), ("REACH", 4), ("GRIP", 5), ("ACT", 5)]:
        for i in range(1, n + 1):
            row[f"{prefix}{i}"] = NA
        row[f"{prefix}AH"] = "N"
    row.update(items)
    return row


def test_chaq_di_with_6_answered_domains() -> None:
    six = _chaq_row(DRESS1=1, DRESS2=0, ARISE1=0, EAT1=2, WALK1=0, WALK2=1, WALKAH="Y", HYG3=0, REACH2=1)
    five = _chaq_row(DRESS1=1, ARISE1=0, EAT1=2, WALK1=0, HYG3=0)
    frame = pd.DataFrame([six, five])
    for column in frame.columns:
        if column[-1].isdigit():
            frame[column] = frame[column].astype("Int64")
    got = derivations.derive_chaq_di(frame)
    # Record 1: dressing 1, arising 0, eating 2, walking max(1) raised to 2 by the aid flag,
    # hygiene 0, reach 1; grip and activities unanswered → 6 domains: (1+0+2+2+0+1)/6 = 1.000.
    assert got.loc[0, ["DRESSSC", "ARISESC", "EATSC", "WALKSC", "HYGSC", "REACHSC"]].tolist() == [1, 0, 2, 2, 0, 1]
    assert pd.isna(got.loc[0, "GRIPSC"]) and pd.isna(got.loc[0, "ACTSC"])
    assert got["CHAQNDOM"].tolist() == [6, 5]
    assert got.loc[0, "CHAQDI"] == 1.0
    # Record 2: only 5 domains answered → missing.
    assert math.isnan(got.loc[1, "CHAQDI"])


def test_chaq_di_rounds_to_3() -> None:
    row = _chaq_row(DRESS1=1, ARISE1=0, EAT1=0, WALK1=1, HYG1=2, REACH1=0)
    frame = pd.DataFrame([row])
    # (1+0+0+1+2+0)/6 = 0.6666… → 0.667
    assert derivations.derive_chaq_di(frame)["CHAQDI"].tolist() == [0.667]
