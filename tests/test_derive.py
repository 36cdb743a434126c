"""Tests of trialkit.derive: each generic primitive on a small literal frame.

The primitives take their columns as arguments; the bundled study's own derivations are tested in
test_study_derivations.py. Expected values are worked out by hand; the arithmetic is in the comments.
"""

from __future__ import annotations

import doctest
import math

import pandas as pd
import pytest

from trialkit import derive

NA = pd.NA


def d(*values: str | None) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values)))


@pytest.mark.parametrize("module", ["dates", "exposure", "measures", "visits", "events"])
def test_doctests(module: str) -> None:
    import importlib

    result = doctest.testmod(importlib.import_module(f"trialkit.derive.{module}"), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


# ------------------------------------------------------------------------------------------------
# Dates


def test_study_day_has_no_day_zero() -> None:
    # D1 = 2024-03-10: 03-08 is 2 days before → −2; 03-09 → −1; 03-10 → 1 (d − D1 + 1); 03-11 → 2.
    dates = d("2024-03-08", "2024-03-09", "2024-03-10", "2024-03-11", None, "2024-03-11")
    d1 = d("2024-03-10", "2024-03-10", "2024-03-10", "2024-03-10", "2024-03-10", None)
    got = derive.compute_study_day(dates, d1)
    assert str(got.dtype) == "Int64"
    assert got.tolist() == [-2, -1, 1, 2, NA, NA]
    assert derive.compute_study_day(d("2024-03-09"), pd.Timestamp("2024-03-10")).tolist() == [-1]


def test_first_dose_skips_zero_dose_and_uses_open_period_start() -> None:
    ex = pd.DataFrame(
        {
            "SUBJID": ["01-001", "01-001", "01-001", "01-002", "01-003"],
            "EXSTDAT": d("2024-01-01", "2024-01-05", "2024-02-01", "2024-03-01", "2024-03-01"),
            "EXENDAT": d("2024-01-04", "2024-01-31", None, "2024-03-31", "2024-03-02"),
            "EXDOSE": [0.0, 50.0, 60.0, 100.0, 0.0],
        }
    )
    got = derive.derive_first_dose(ex, start="EXSTDAT", end="EXENDAT", dose="EXDOSE").set_index("SUBJID")
    # 01-001: the 0-mg period does not count → first 01-05; last period open → its start 02-01.
    assert got.loc["01-001", "TRTSDT"] == pd.Timestamp("2024-01-05")
    assert got.loc["01-001", "TRTEDT"] == pd.Timestamp("2024-02-01")
    assert got.loc["01-001", "D1"] == pd.Timestamp("2024-01-05")
    assert got.loc["01-002", "TRTEDT"] == pd.Timestamp("2024-03-31")
    # 01-003 never had a positive dose.
    assert pd.isna(got.loc["01-003", "TRTSDT"])
    assert list(got.index) == ["01-001", "01-002", "01-003"]
    # Still dosing: 01-001's last period is open.
    assert got["ONGOING"].tolist() == [True, False, False]


def test_age_with_birth_on_the_15th() -> None:
    # Born "2010-03" → 2010-03-15. On 2024-03-14 the 14th birthday is tomorrow → 13; on 03-15 → 14.
    born = pd.Series(["2010-03", "2010-03", "2010-12", "2010", None])
    on = d("2024-03-14", "2024-03-15", "2024-03-15", "2024-03-15", "2024-03-15")
    assert derive.compute_age_at(born, on).tolist() == [13, 14, 13, NA, NA]
    # A scalar date works too.
    assert derive.compute_age_at(pd.Series(["2006-03"]), pd.Timestamp("2024-03-15")).tolist() == [18]


def test_disease_duration_onset_on_the_15th() -> None:
    # Onset "2023-09" → 2023-09-15. 2024-03-14: 5 complete months; 2024-03-15: 6.
    onset = pd.Series(["2023-09", "2023-09", "2020", None])
    on = d("2024-03-14", "2024-03-15", "2024-03-15", "2024-03-15")
    assert derive.compute_duration_months(onset, on).tolist() == [5, 6, NA, NA]
    years = derive.compute_duration_years(onset, on)
    # 2023-09-15 → 2024-03-15 = 15 + 31 + 30 + 31 + 31 + 29 + 15 = 182 days; 182 / 365.25.
    assert years[1] == pytest.approx(182 / 365.25)
    assert math.isnan(years[2]) and math.isnan(years[3])


def test_impute_partial_date_start_and_end() -> None:
    values = pd.Series(["2024-02", "2023", "2024-02-10", None, "garbage", "2024-13"])
    start = derive.impute_partial_date(values, "start")
    end = derive.impute_partial_date(values, "end")
    assert start["DT"].tolist()[:3] == [pd.Timestamp("2024-02-01"), pd.Timestamp("2023-01-01"), pd.Timestamp("2024-02-10")]
    # 2024 is a leap year: February ends on the 29th.
    assert end["DT"].tolist()[:3] == [pd.Timestamp("2024-02-29"), pd.Timestamp("2023-12-31"), pd.Timestamp("2024-02-10")]
    assert start["DTF"].tolist() == ["D", "M", None, None, None, None]
    assert end["DT"].iloc[3:].isna().all()
    # The typed values are untouched.
    assert values.tolist()[0] == "2024-02"
    with pytest.raises(ValueError):
        derive.impute_partial_date(values, "middle")


# ------------------------------------------------------------------------------------------------
# Values on a date


def test_value_on_latest_measurement_on_or_before() -> None:
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
    got = derive.derive_value_on(vs, frame, date_col="DATE", measured_on="VSDAT", value="WEIGHT", out="WT")
    # 02-20: the 02-15 visit has no weight → 02-01's 32; before any visit → NaN; same day → 32.
    assert got.index.tolist() == [10, 11, 12, 13, 14]
    assert got["WT"].tolist()[:1] == [32.0]
    assert math.isnan(got["WT"].iloc[1])
    assert got["WT"].iloc[2] == 32.0
    assert math.isnan(got["WT"].iloc[3])
    assert got["WT"].iloc[4] == 60.0


def test_daily_window_counts_days_before_the_anchor() -> None:
    daily = pd.DataFrame({"SUBJID": ["S1"] * 4, "DAY": d("2024-01-07", "2024-01-08", "2024-01-08", "2024-01-10"),
                          "V": [1.0, 2.0, 5.0, 9.0]})
    anchors = pd.DataFrame({"SUBJID": ["S1", "S1", "S2"], "AT": d("2024-01-10", None, "2024-01-10")})
    got = derive.derive_daily_window(daily, anchors, day_col="DAY", value="V", anchor_date="AT", days=3,
                                     values_out="VALUES")
    # 01-07 .. 01-09 before 01-10: 01-07 (1) and 01-08 (max of 2 and 5) recorded; 01-10 itself not.
    assert got["NDAYS"].tolist() == [2, NA, 0]
    assert got["MAXVALUE"].iloc[0] == 5.0 and math.isnan(got["MAXVALUE"].iloc[2])
    assert got["VALUES"].iloc[0] == [1.0, 5.0, None]


# ------------------------------------------------------------------------------------------------
# Visits


def test_visit_window(study) -> None:
    # The bundled study's visit table, version 1.0 windows (W4 26..32; FU 21..35 after the last dose).
    first_last = pd.DataFrame(
        {"SUBJID": ["01-001"], "TRTSDT": d("2024-01-01"), "TRTEDT": d("2024-06-30"), "D1": d("2024-01-01")}
    )
    frame = pd.DataFrame(
        {
            "SUBJID": ["01-001"] * 6,
            "VISIT": ["SCR", "D1", "W4", "W4", "FU", "UNS"],
            "CSDAT": d("2023-12-20", "2024-01-01", "2024-01-29", "2024-02-02", "2024-07-28", "2024-02-10"),
        }
    )
    got = derive.derive_visit_window(frame, "CSDAT", first_last, visits=study.visits)
    # 2023-12-20 is 12 days before D1 → −12; 01-29 → 28 + 1 = 29; 02-02 → 33 (W4 window 26..32);
    # 07-28 → 209 + 1 = 210 and 28 days after the last dose → FU; 02-10 → 41, in no window.
    assert got["ADY"].tolist() == [-12, 1, 29, 33, 210, 41]
    assert got["AVISIT"].tolist() == ["SCR", "D1", "W4", "UNSCHEDULED", "FU", "UNSCHEDULED"]
    assert got["AVISITN"].tolist() == [0, 1, 4, NA, 10, NA]
    # FU window in study days: last dose 06-30 is day 182 → 182 + 21 .. 182 + 35, target 210.
    assert got["WINDOWLO"].tolist() == [-28, 1, 26, 26, 203, NA]
    assert got["WINDOWHI"].tolist() == [-1, 1, 32, 32, 217, NA]
    assert got["TARGET"].tolist() == [-28, 1, 29, 29, 210, NA]
    assert got["INWIN"].tolist() == [True, True, True, False, True, NA]


# ------------------------------------------------------------------------------------------------
# Exposure and adverse events


def test_exposure_20_pct_vs_20_1_pct() -> None:
    start2 = pd.Timestamp("2024-01-29")
    ex = pd.DataFrame(
        {
            "SUBJID": ["01-001", "01-001", "01-002", "01-002"],
            "EXSTDAT": pd.to_datetime([pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-31"), pd.Timestamp("2024-01-01"), start2]),
            "EXENDAT": pd.to_datetime([pd.Timestamp("2024-01-30"), pd.NaT, pd.Timestamp("2024-01-28"), start2 + pd.Timedelta(days=999)]),
            "EXDOSE": [50.0, 50.0, 100.0, 100.0],
            "EXMISS": pd.array([6, 0, 0, 201], dtype="Int64"),
        }
    )
    first = derive.derive_first_dose(ex, start="EXSTDAT", end="EXENDAT", dose="EXDOSE")
    columns = {"start": "EXSTDAT", "end": "EXENDAT", "missed": "EXMISS", "limit_pct": "20"}
    got = derive.derive_exposure(ex, first, **columns)
    # 01-001 P1: 30 days, 6 missed = 20 % exactly → not over (> 20 % needed); day 1.
    # 01-001 P2: open, no data cut → planned unknown; starts day 31.
    # 01-002 P2: starts 01-29 = day 29; 1000 days, 201 missed = 20.1 % → over.
    assert got["PLANNED"].tolist() == [30, NA, 28, 1000]
    assert got["PCTMISSED"].iloc[0] == 20.0 and got["PCTMISSED"].iloc[3] == pytest.approx(20.1)
    assert got["OVERLIMIT"].tolist() == [False, NA, False, True]
    assert got["ASTDY"].tolist() == [1, 31, 1, 29]
    with_cut = derive.derive_exposure(ex, first, **columns, data_cut="2024-03-01")
    # 01-31 .. 03-01 inclusive = 1 + 29 + 1 = 31 days.
    assert with_cut["PLANNED"].iloc[1] == 31


def test_teae_on_the_day_of_first_dose() -> None:
    first_last = pd.DataFrame({"SUBJID": ["01-001", "01-002"], "TRTSDT": d("2024-01-10", None), "D1": d("2024-01-10", None)})
    ae = pd.DataFrame(
        {
            "SUBJID": ["01-001", "01-001", "01-001", "01-002"],
            "AETERM": ["Headache", "Injection site pain", "Rash", "Cough"],
            "AESTDAT": d("2024-01-09", "2024-01-10", "2024-02-01", "2024-01-10"),
            "AEENDAT": d("2024-01-09", "2024-01-12", None, "2024-01-11"),
        }
    )
    got = derive.derive_teae(ae, first_last, start="AESTDAT", end="AEENDAT")
    # Day before D1 → not emergent, day −1; on D1 itself → emergent, day 1, 01-10..01-12 = 3 days;
    # 02-01 → day 23, ongoing; 01-002 never dosed → not emergent.
    assert got["TRTEMFL"].tolist() == [NA, "Y", "Y", NA]
    assert got["ASTDY"].tolist() == [-1, 1, 23, NA]
    assert got["ADURN"].tolist() == [1, 3, NA, 2]


def test_teae_window_after_the_last_dose_and_still_dosing() -> None:
    # Last dose 2024-03-01; 28 days after it is 03-29. S2 is still dosing (open period).
    first_last = pd.DataFrame({"SUBJID": ["S1", "S2"], "D1": d("2024-01-10", "2024-01-10"),
                               "TRTEDT": d("2024-03-01", "2024-01-10"), "ONGOING": [False, True]})
    ae = pd.DataFrame({"SUBJID": ["S1", "S1", "S1", "S2"],
                       "START": d("2024-03-29", "2024-03-30", "2024-01-09", "2024-06-01")})
    got = derive.derive_teae(ae, first_last, start="START", days_after_last_dose=28)
    # 03-29 = last dose + 28 → emergent; 03-30 → not; before D1 → not; still dosing → any AE from D1.
    assert got["TRTEMFL"].tolist() == ["Y", NA, NA, "Y"]
    # Without the limit every AE from the first dose is emergent.
    unlimited = derive.derive_teae(ae, first_last, start="START")
    assert unlimited["TRTEMFL"].tolist() == ["Y", "Y", NA, "Y"]
    # A data cut on or before the last dose means the subject is still dosing at the cut.
    at_cut = derive.derive_teae(ae, first_last, start="START", days_after_last_dose=28, data_cut="2024-03-01")
    assert at_cut["TRTEMFL"].tolist() == ["Y", "Y", NA, "Y"]
