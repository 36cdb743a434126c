"""Censored lab results (``<1``, ``< 0.5``, ``>500``, ``≤0.3``, ``>=2``) are results, not "not a number".

A variable declared ``var(..., censored=True, censor_var=...)`` (LBORRES in the bundled study) keeps
the value as typed in ``raw``, the limit as its number and the censoring operator in the derived
variable (LBCENS); the result in the standard unit is derived from the limit. Generated uploads.
"""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from openpyxl import Workbook

from trialkit.importers.reader import import_files
from trialkit.study import StudyDefinitionError, load_study
from trialkit.validate import validate

from .conftest import FAKE_STUDY

LB_HEAD = ["SITEID", "SUBJID", "VISIT", "LBDAT", "LBTESTCD", "LBORRES", "LBORRESU", "LBNRLO", "LBNRHI", "LBSTAT"]
TYPED = ["<1", "< 0.5", ">500", "≤0.3", ">=2", "<= 4", "5.2", "abc", "＜0.1"]


def _lb_upload(path, results, site="07", tests=None):
    book = Workbook()
    sheet = book.active
    sheet.title = "LB"
    sheet.append(LB_HEAD)
    for i, result in enumerate(results):
        test = (tests or ["CRP"] * len(results))[i]
        sheet.append([site, f"{site}-{i + 1:03d}", "SCR", "2024-02-03", test, result, "mg/L", 0, 5, ""])
    book.save(path)
    return path


def test_censored_results_keep_the_limit_and_the_operator(tmp_path, study):
    result = import_files([_lb_upload(tmp_path / "censored-lab.xlsx", TYPED)], study, site="07")
    lb = result.forms["LB"]
    assert lb.raw["LBORRES"].tolist() == TYPED  # as typed
    values = lb.data["LBORRES"].tolist()
    assert values[:7] == [1.0, 0.5, 500.0, 0.3, 2.0, 4.0, 5.2] and pd.isna(values[7]) and values[8] == 0.1
    cens = lb.data["LBCENS"].tolist()
    assert cens[:6] == ["<", "<", ">", "<=", ">=", "<="] and cens[8] == "<"
    assert pd.isna(cens[6]) and pd.isna(cens[7])
    assert lb.data["LBSTRESN"].tolist()[:3] == [1.0, 0.5, 500.0]
    bad = [(f.code, f.row, f.value) for f in result.report.findings if f.severity == "error"]
    assert bad == [("IMP-TYPE", 9, "abc")]
    log = lb.changes[lb.changes["rule"] == "censored"]
    assert log["original"].tolist()[:2] == ["<1", "< 0.5"] and log["value"].tolist()[:2] == ["1.0", "0.5"]


def test_censored_results_validate_without_type_errors(tmp_path, study):
    path = _lb_upload(tmp_path / "censored-lab.xlsx", ["<1", ">500", "3.5"])
    report = validate(study, import_files([path], study, site="07"), site="07")
    assert [f.code for f in report.findings if f.severity == "error"] == []


def test_censored_with_a_decimal_comma_at_a_comma_site(tmp_path, study):
    lb = import_files([_lb_upload(tmp_path / "censored-comma.xlsx", ["<0,5"], site="01")], study,
                      site="01").forms["LB"]
    assert lb.data.loc[0, "LBORRES"] == 0.5 and lb.data.loc[0, "LBCENS"] == "<"


def test_a_variable_that_is_not_censored_still_refuses_a_limit(tmp_path, study):
    book = Workbook()
    sheet = book.active
    sheet.title = "VS"
    sheet.append(["SITEID", "SUBJID", "VISIT", "VSDAT", "WEIGHT", "WEIGHTU"])
    sheet.append(["07", "07-001", "SCR", "2024-02-03", "<30", "kg"])
    book.save(tmp_path / "vs.xlsx")
    result = import_files([tmp_path / "vs.xlsx"], study, site="07")
    assert [(f.code, f.variable, f.value) for f in result.report.findings if f.code == "IMP-TYPE"] == [
        ("IMP-TYPE", "WEIGHT", "<30")]


def test_dictionary_documents_the_censoring(study):
    lb = study.form("LB")
    assert lb.variable("LBORRES").censor_var == "LBCENS"
    cens = lb.variable("LBCENS")
    assert cens.derived and cens.type == "char" and len(cens.name) <= 8
    assert "LBCENS" in lb.variable("LBORRES").rule_text and "<" in lb.variable("LBORRES").rule_text


def test_a_censor_variable_that_is_not_a_derived_text_variable_is_refused(tmp_path):
    target = tmp_path / "study"
    shutil.copytree(FAKE_STUDY, target)
    forms = target / "forms.py"
    text = forms.read_text()
    line = next(ln for ln in text.splitlines() if '"num"' in ln)
    forms.write_text(text.replace(line, line.replace('"num"', '"num", censored=True, censor_var="NOPE"'), 1))
    with pytest.raises(StudyDefinitionError, match=r"censor_var 'NOPE'"):
        load_study(target)
