"""The normaliser's one-pass path for columns that need no pandas work gives exactly what the full
conversion gives: the same typed frames, raw text, reasons, changes log and findings.

Each case imports the same file twice, with ``normalise.FAST_PATH`` off and on, and compares
everything the import returns.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from trialkit.importers import normalise
from trialkit.importers.reader import import_files


def _imported(paths: list[Path], study, site: str | None, fast: bool):
    saved = normalise.FAST_PATH
    normalise.FAST_PATH = fast
    try:
        return import_files([str(p) for p in paths], study, site=site)
    finally:
        normalise.FAST_PATH = saved


def _same_import(paths: list[Path], study, site: str | None) -> int:
    """Assert both paths give the same import; return how many columns the fast path took."""
    taken = []
    real = normalise._clean_column

    def counting(*args, **kwargs):
        result = real(*args, **kwargs)
        taken.append(result is not None)
        return result

    full = _imported(paths, study, site, fast=False)
    normalise._clean_column = counting
    try:
        fast = _imported(paths, study, site, fast=True)
    finally:
        normalise._clean_column = real
    assert list(fast.forms) == list(full.forms)
    for code, ours in fast.forms.items():
        theirs = full.forms[code]
        for part in ("data", "raw", "reasons", "lineage", "changes"):
            pd.testing.assert_frame_equal(getattr(ours, part), getattr(theirs, part), check_exact=True,
                                          obj=f"{code}.{part}")
        assert ours.absent.keys() == theirs.absent.keys()
    assert [f.to_dict() for f in fast.report.findings] == [f.to_dict() for f in full.report.findings]
    assert fast.secrets == full.secrets
    return sum(taken)


def test_demo_uploads_give_the_same_import_on_both_paths(demo_run, study):
    folder, outcome = demo_run
    assert outcome.exit_code == 0
    uploads = folder / "uploads"
    cases = [  # a comma site typing day/month dates; a month/day site read without --site; CSV
        ([uploads / "site01" / "site01_v1.xlsx"], "01"),
        ([uploads / "site08" / "site08_v2.xlsx"], None),
        (sorted((uploads / "site05" / "site05_v2").iterdir()), "05"),
    ]
    taken = [_same_import(paths, study, site) for paths, site in cases]
    assert all(taken), f"the fast path took no column in some upload: {taken}"


# ------------------------------------------------------------------------------------------------
# Generated sheets: typed cells of every kind the reader gives, clean and not


_CHAR = ["", "M", "F", " M", "m", "ND", "nd", "X", "Male", "01-001", 1.0, True]
_YN = ["", "Y", "N", "y", "Sì", "No", "Yes", " N", "NA", "UNK", 0.0]
_NUM = ["", 12.5, 12, 0.0, -0.0, 1e300, float("inf"), 2.0**60, 5, True, "12,5", "12.5", "-,5", "1,", " 3,2", "1e400", "7", ".5", "12.",
        "ND", "<1", "1,5e3", "٣,٥", dt.date(2024, 1, 1)]
_INT = ["", 120, 120.0, 120.5, 2**60, "12,0", "ND", "abc", False, -3.0, "120", "1e20", "12.5", "-4"]
_DATE = ["", "2024-03-17", "2024-3-17", "17/03/2024", "03/17/2024", "31/02/2024", "2024/03/17", "17.03.2024",
         "17-03-24", "1500-01-01", "2300-01-01", "2024-03-17T10:00", dt.date(2024, 3, 17),
         dt.datetime(2024, 3, 17), dt.datetime(2024, 3, 17, 9, 30), dt.date(1600, 1, 1), 45368.0, 45368.5,
         "ND", " 2024-03-17", "٢٠٢٤-٠٣-١٧"]
_PDATE = ["", "2020", "2020-03", "2020-03-17", "03/2020", "3/2020", "13/2020", "2020-3", "17/03/2020",
          "03/17/2020", "31/02/2020", "NK", dt.date(2020, 3, 1), "1500", "2020-13"]
_SITES = ["01", "08", "09"]


def _sheet(path: Path, rows: list[dict]) -> Path:
    book = Workbook()
    sheet = book.active
    sheet.title = "VS"
    columns = ["SITEID", "SUBJID", "VISIT", "VSDAT", "WEIGHT", "WEIGHTU", "SYSBP"]
    sheet.append(columns)
    for row in rows:
        sheet.append([row.get(c) for c in columns])
    mh = book.create_sheet("MH")
    mh.append(["SITEID", "SUBJID", "FEVER2W", "ONSETYM", "MASLDAT"])
    for row in rows:
        mh.append([row["SITEID"], row["SUBJID"], row["YN"], row["PDATE"], row["PDATE2"]])
    dm = book.create_sheet("DM")
    dm.append(["SITEID", "SUBJID", "SEX", "BRTHYM"])
    for row in rows:
        dm.append([row["SITEID"], row["SUBJID"], row["SEX"], row["PDATE"]])
    book.save(path)
    return path


def _cell(value):
    return None if value == "" else value


rows_strategy = st.lists(st.fixed_dictionaries({
    "SITEID": st.sampled_from(_SITES + ["", "99"]),
    "SEX": st.sampled_from(_CHAR),
    "VSDAT": st.sampled_from(_DATE),
    "WEIGHT": st.sampled_from(_NUM),
    "SYSBP": st.sampled_from(_INT),
    "YN": st.sampled_from(_YN),
    "PDATE": st.sampled_from(_PDATE),
    "PDATE2": st.sampled_from(_PDATE),
}), min_size=1, max_size=12)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows_strategy, site=st.sampled_from(_SITES + [None]), clean_only=st.booleans())
def test_generated_sheets_give_the_same_import_on_both_paths(tmp_path_factory, study, rows, site, clean_only):
    if clean_only:  # also exercise the fast path itself, not only its refusals
        rows = [{**r, "SEX": "F", "WEIGHT": 12.5, "SYSBP": 120, "YN": "N", "PDATE": "2020-03", "PDATE2": "",
                 "VSDAT": "2024-03-17"} for r in rows]
    for number, row in enumerate(rows, start=1):
        row["SUBJID"] = f"{row['SITEID'] or '01'}-{number:03d}"
        row["VISIT"] = "SCR"
        row["WEIGHTU"] = "kg"
    cells = [{k: _cell(v) for k, v in row.items()} for row in rows]
    path = _sheet(tmp_path_factory.mktemp("fast") / "upload.xlsx", cells)
    taken = _same_import([path], study, site)
    if clean_only and site is not None:
        assert taken, "a clean sheet went through the full conversion"


def test_site_conventions_take_the_fast_path(tmp_path, study):
    """Decimal commas, day/month dates, synonyms and MM/YYYY from a comma site convert in one pass."""
    rows = [{"SITEID": "01", "SUBJID": "01-001", "VISIT": "SCR", "VSDAT": "17/03/2024", "WEIGHT": "53,7",
             "WEIGHTU": "kg", "SYSBP": 110.0, "YN": "Sì", "PDATE": "03/2020", "PDATE2": "17/03/2020",
             "SEX": "F"}]
    path = _sheet(tmp_path / "it.xlsx", rows)
    seen = {}
    real = normalise._clean_column

    def spy(var, native, study_, sites):
        result = real(var, native, study_, sites)
        seen[var.name] = None if result is None else [rule for rule, _ in result[2]]
        return result

    normalise._clean_column = spy
    try:
        result = import_files([str(path)], study, site="01")
    finally:
        normalise._clean_column = real
    assert seen["VSDAT"] == ["date:DMY"] and seen["WEIGHT"] == ["decimal-comma"]
    assert seen["FEVER2W"] == ["synonym"] and seen["ONSETYM"] == ["pdate:MM/YYYY"]
    assert seen["MASLDAT"] == ["date:DMY"] and seen["SEX"] == [] and seen["SYSBP"] == []
    vs = result.forms["VS"].data
    assert vs.at[0, "VSDAT"] == pd.Timestamp("2024-03-17") and vs.at[0, "WEIGHT"] == 53.7
    assert vs.at[0, "SYSBP"] == 110
    mh = result.forms["MH"].data
    assert (mh.at[0, "FEVER2W"], mh.at[0, "ONSETYM"], mh.at[0, "MASLDAT"]) == ("Y", "2020-03", "2020-03-17")
    assert np.isnan(result.forms["VS"].data.at[0, "HEIGHT"])
    rules = sorted(result.forms["VS"].changes["rule"])
    assert rules == ["date:DMY", "decimal-comma"]


def test_a_value_typed_as_a_missing_code_takes_the_full_path(tmp_path, study, monkeypatch):
    """A study may define a numeric missing-value code ("99"): a number typed as it is a code, which
    only the full conversion records (reason, change log), so the fast path declines that column."""
    import dataclasses

    params = {**study.params, "missing_codes": {**study.missing_codes, "99": "Not done (site code)"}}
    coded = dataclasses.replace(study, params=params)
    rows = [{"SITEID": "07", "SUBJID": "07-001", "VISIT": "SCR", "VSDAT": "2024-03-17", "WEIGHT": 99.0,
             "WEIGHTU": "kg", "SYSBP": 110.0, "YN": "N", "PDATE": "2020-03", "PDATE2": "", "SEX": "F"}]
    path = _sheet(tmp_path / "coded.xlsx", rows)
    seen = {}
    real = normalise._clean_column

    def spy(var, native, study_, sites):
        result = real(var, native, study_, sites)
        seen[var.name] = result is not None
        return result

    monkeypatch.setattr(normalise, "_clean_column", spy)
    assert _same_import([path], coded, "07")
    assert seen["WEIGHT"] is False and seen["SYSBP"] is True
    monkeypatch.setattr(normalise, "_clean_column", real)
    result = import_files([str(path)], coded, site="07")
    assert np.isnan(result.forms["VS"].data.at[0, "WEIGHT"])
    assert result.forms["VS"].reasons.at[0, "WEIGHT"] == "99"
