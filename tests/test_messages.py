"""Messages a data manager reads: a rule that cannot run says why in words, an absent column is one finding.

Generated uploads: DM without any informed-consent date (PD-03 used to fail with "Cannot cast
DatetimeArray to dtype float64"), every form with records whose dates are all empty, a VS sheet
without its VSDAT column (one finding with the row count, not one per row).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from openpyxl import Workbook

from tests.upload_builder import write_upload
from trialkit.findings import Category, Severity, Status
from trialkit.importers.reader import import_files
from trialkit.rules import RuleCannotRun, rule, run_rules
from trialkit.validate import validate

DM = {"SITEID": "01", "SUBJID": "01-001", "ICDAT": None, "BRTHYM": "2012-04", "SEX": "F"}
VS = {"SITEID": "01", "SUBJID": "01-001", "VISIT": "SCR", "VSDAT": dt.date(2024, 1, 2), "WEIGHT": 30,
      "WEIGHTU": "kg"}


def _check(report, check_id):
    (run,) = [c for c in report.checks if c.id == check_id]
    return run


def test_pd03_without_any_consent_date_says_so_in_words(tmp_path, study):
    path = write_upload(study, tmp_path / "no-consent-date.xlsx", {"DM": [DM], "VS": [VS]})
    report = validate(study, import_files([path], study, site="01"), site="01")
    run = _check(report, "PD-03")
    assert run.status == Status.SKIPPED
    assert run.reason == "PD-03 could not run: no informed-consent date (ICDAT) in DM"
    assert [c.id for c in report.checks if c.status == Status.ERROR] == []
    assert any(f.code == "REQUIRED" and f.variable == "ICDAT" for f in report.findings)


def test_pd03_runs_for_the_subjects_that_have_a_consent_date(tmp_path, study):
    dm = [dict(DM, ICDAT=dt.date(2024, 1, 5)), dict(DM, SUBJID="01-002")]
    vs = [VS, dict(VS, SUBJID="01-002")]
    path = write_upload(study, tmp_path / "one-consent-date.xlsx", {"DM": dm, "VS": vs})
    report = validate(study, import_files([path], study, site="01"), site="01")
    assert _check(report, "PD-03").status == Status.FAILED
    assert [(f.subject, f.variable) for f in report.findings if f.code == "PD-03"] == [("01-001", "VSDAT")]


def test_every_rule_runs_or_says_why_on_records_without_dates(tmp_path, study):
    records = {}
    for code, form in study.forms.items():
        row = {"SITEID": "01", "SUBJID": "01-001"}
        if "VISIT" in form.variable_names:
            row["VISIT"] = "W4"
        records[code] = [row]
    path = write_upload(study, tmp_path / "records-without-dates.xlsx", records)
    report = validate(study, import_files([path], study, site="01"), site="01")
    errors = [(c.id, c.reason) for c in report.checks if c.status == Status.ERROR]
    assert errors == []
    for run in report.checks:
        if run.status == Status.SKIPPED and run.reason and "could not run" in run.reason:
            assert run.reason.startswith(f"{run.id} could not run: ")


def _rule(func, rule_id="XX-01"):
    return rule(rule_id, "A rule for the test", severity="error", category="record", reference="test",
                forms=["DM"], message="m")(func)


def test_a_rule_that_fails_unexpectedly_is_an_error_in_words_with_the_detail_kept(study):
    def broken(ctx):
        raise TypeError("Cannot cast DatetimeArray to dtype float64")

    dm = pd.DataFrame({"SUBJID": ["01-001"]})
    from trialkit.importers.base import FormData

    forms = {"DM": FormData("DM", dm, dm, dm, pd.DataFrame({"FILE": ["f"], "SHEET": ["s"], "ROW": [2]}))}
    _, runs = run_rules(study, forms, rules=[_rule(broken)])
    (run,) = runs
    assert run.status == Status.ERROR
    assert run.reason.startswith("XX-01 could not run: ")
    assert "Cannot cast" not in run.reason and "TypeError" not in run.reason
    assert "Cannot cast DatetimeArray" in run.detail


def test_a_rule_that_cannot_run_is_skipped_with_its_reason(study):
    def needs_dates(ctx):
        raise RuleCannotRun("the diary holds no dates")

    dm = pd.DataFrame({"SUBJID": ["01-001"]})
    from trialkit.importers.base import FormData

    forms = {"DM": FormData("DM", dm, dm, dm, pd.DataFrame({"FILE": ["f"], "SHEET": ["s"], "ROW": [2]}))}
    _, runs = run_rules(study, forms, rules=[_rule(needs_dates)])
    assert (runs[0].status, runs[0].reason) == (Status.SKIPPED, "XX-01 could not run: the diary holds no dates")


def test_an_absent_required_column_is_one_finding_with_the_row_count(tmp_path, study):
    book = Workbook()
    sheet = book.active
    sheet.title = "VS"
    sheet.append(["SITEID", "SUBJID", "VISIT", "WEIGHT", "WEIGHTU"])  # no VSDAT
    for i in range(50):
        sheet.append(["01", f"01-{i + 1:03d}", "SCR", 30 + i % 10, "kg"])
    book.save(tmp_path / "vs-without-vsdat.xlsx")
    report = validate(study, import_files([tmp_path / "vs-without-vsdat.xlsx"], study, site="01"), site="01")
    about = [f for f in report.findings if f.variable == "VSDAT"]
    assert [(f.code, f.severity) for f in about] == [("IMP-COLUMN-MISSING", Severity.ERROR)]
    (missing,) = about
    assert missing.category == Category.STRUCTURE and missing.evidence == {"rows": 50}
    assert "50 row(s)" in missing.message and "VSDAT" in missing.message


def test_an_absent_conditionally_required_column_is_one_finding(tmp_path, study):
    book = Workbook()
    sheet = book.active
    sheet.title = "LB"
    sheet.append(["SITEID", "SUBJID", "VISIT", "LBDAT", "LBTESTCD", "LBORRESU", "LBNRLO", "LBNRHI", "LBSTAT"])
    for i in range(5):
        sheet.append(["01", f"01-{i + 1:03d}", "SCR", "2024-01-02", "CRP", "mg/L", 0, 5, ""])
    book.save(tmp_path / "lb-without-lborres.xlsx")
    report = validate(study, import_files([tmp_path / "lb-without-lborres.xlsx"], study, site="01"), site="01")
    about = [(f.code, f.evidence) for f in report.findings if f.variable == "LBORRES"]
    assert about == [("IMP-COLUMN-MISSING", {"rows": 5})]
