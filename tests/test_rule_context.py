"""RuleContext.rows: the shared per-key index that rules use instead of scanning a form per subject."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from trialkit.rules import RuleContext


def _context(frame: pd.DataFrame) -> RuleContext:
    return RuleContext(study=SimpleNamespace(), forms={"LB": frame})


def _mask_rows(frame: pd.DataFrame, **equal: object) -> list:
    mask = pd.Series(True, index=frame.index)
    for column, value in equal.items():
        mask &= frame[column].eq(value).fillna(False).astype(bool)
    return list(frame.index[mask])


@pytest.fixture
def lab() -> pd.DataFrame:
    frame = pd.DataFrame({
        "SUBJID": pd.array(["01-001", "01-002", "01-001", None, "01-001", "01-002"], dtype="str"),
        "VISIT": pd.array(["D1", "D1", "W4", "W4", "W4", None], dtype="str"),
        "LBTESTCD": pd.array(["ESR", "CRP", "ESR", "ESR", "CRP", "ESR"], dtype="str"),
        "LBSTRESN": [10.0, np.nan, 12.5, 3.0, np.nan, 7.0],
    })
    frame.index = [10, 11, 12, 13, 14, 15]  # labels, not positions, are returned
    return frame


def test_rows_select_what_the_boolean_mask_selects(lab):
    ctx = _context(lab)
    for subject in ["01-001", "01-002", "01-003", None]:
        for visit in ["D1", "W4", "W8", None]:
            for test in ["ESR", "CRP"]:
                got = list(ctx.rows("LB", SUBJID=subject, VISIT=visit, LBTESTCD=test))
                assert got == _mask_rows(lab, SUBJID=subject, VISIT=visit, LBTESTCD=test)
        assert list(ctx.rows("LB", SUBJID=subject)) == _mask_rows(lab, SUBJID=subject)
    assert list(ctx.rows("LB", SUBJID="01-001", VISIT="W4")) == [12, 14]
    assert list(ctx.rows("LB", LBSTRESN=12.5)) == [12]  # a number column, looked up by value


def test_rows_share_one_grouping_per_form_and_columns(lab):
    ctx = _context(lab)
    ctx.rows("LB", SUBJID="01-001", VISIT="W4")
    ctx.rows("LB", VISIT="D1", SUBJID="01-002")  # the same columns in another order
    ctx.rows("LB", SUBJID="01-002")
    assert sorted(k for k in ctx.cache if k.startswith("rules:rows:")) == [
        "rules:rows:LB:SUBJID", "rules:rows:LB:SUBJID,VISIT"]


def test_rows_of_a_form_not_uploaded_or_empty_are_empty(lab):
    ctx = RuleContext(study=SimpleNamespace(form=lambda code: SimpleNamespace(variable_names=["SUBJID"])),
                      forms={"LB": lab.iloc[:0]})
    assert list(ctx.rows("LB", SUBJID="01-001")) == []
    assert list(ctx.rows("VS", SUBJID="01-001")) == []
    with pytest.raises(TypeError):
        ctx.rows("LB")
