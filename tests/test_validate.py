"""Form checks (pandera → findings), the rule engine's outcomes, and whole-upload validation.

Inputs are literal :class:`FormData` built by :func:`make_form_data`, so these tests do not depend on
the importers; the end-to-end tests at the bottom go through ``import_files`` when it is available.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pytest

from trialkit.findings import Category, Status
from trialkit.importers.base import FormData, ImportResult
from trialkit.rules import rule, run_rules
from trialkit.validate import validate, validate_form

MISSING_CODES = ("ND", "NK", "NA")


def make_form_data(
    study: Any,
    code: str,
    records: list[dict[str, Any]],
    file: str = "upload.xlsx",
    sheet: str | None = None,
    first_row: int = 2,
) -> FormData:
    """Literal FormData the way the importers build it.

    ``records`` hold the values as the site typed them (text or Python numbers/dates); each is
    converted to the variable's CRF type. A missing-value code (ND/NK/NA) becomes NA with the code in
    ``reasons``; a value that does not convert becomes NA with the text kept in ``raw``.
    """
    form = study.form(code)
    names = form.variable_names
    index = pd.RangeIndex(len(records))
    data: dict[str, list[Any]] = {name: [] for name in names}
    raw: dict[str, list[str]] = {name: [] for name in names}
    reasons: dict[str, list[Any]] = {name: [] for name in names}
    types = {v.name: v.type for v in form.variables}
    for record in records:
        unknown = set(record) - set(names)
        assert not unknown, f"{code} has no {unknown}"
        for name in names:
            typed = record.get(name)
            text = "" if typed is None else str(typed)
            raw[name].append(text)
            if text in MISSING_CODES:
                reasons[name].append(text)
                data[name].append(None)
                continue
            reasons[name].append(None)
            data[name].append(_convert(typed, types[name]))
    frame = pd.DataFrame(index=index)
    for name in names:
        kind = types[name]
        values = data[name]
        if kind == "int":
            frame[name] = pd.array(values, dtype="Int64")
        elif kind == "num":
            frame[name] = pd.Series(values, index=index, dtype="float64")
        elif kind == "date":
            frame[name] = pd.to_datetime(pd.Series(values, index=index, dtype=object))
        else:
            frame[name] = pd.Series(values, index=index, dtype="str")
    raw_frame = pd.DataFrame(raw, index=index, dtype="str")
    reasons_frame = pd.DataFrame(reasons, index=index, dtype="str")
    lineage = pd.DataFrame(
        {
            "FILE": [file] * len(records),
            "SHA256": ["0" * 64] * len(records),
            "SHEET": [sheet or code] * len(records),
            "ROW": list(range(first_row, first_row + len(records))),
        },
        index=index,
    )
    return FormData(code, frame, raw_frame, reasons_frame, lineage)


def _convert(value: Any, kind: str) -> Any:
    if value is None or value == "":
        return None
    try:
        if kind == "int":
            return int(str(value))
        if kind == "num":
            return float(str(value).replace(",", "."))
        if kind == "date":
            if isinstance(value, dt.date):
                return pd.Timestamp(value)
            return pd.Timestamp(dt.date.fromisoformat(str(value)))
    except ValueError:
        return None
    return str(value)


def vs(**overrides: Any) -> dict[str, Any]:
    record = {
        "SITEID": "01", "SUBJID": "01-003", "VISIT": "W4", "VSDAT": "2024-03-01",
        "WEIGHT": 30.5, "WEIGHTU": "kg", "HEIGHT": 140, "HEIGHTU": "cm", "TEMP": 36.8, "TEMPU": "C",
        "SYSBP": 110, "DIABP": 70, "HR": 90,
    }
    record.update(overrides)
    return record


def pt(**overrides: Any) -> dict[str, Any]:
    record = {
        "SITEID": "01", "SUBJID": "01-003", "PTTRT": "METHOTREXATE", "PTSTDAT": "2021-05",
        "PTENDAT": "2023-01", "PTONGO": "N", "PTREAS": "INEFFICACY",
    }
    record.update(overrides)
    return record


def only(findings, **expected):
    assert len(findings) == 1, [f.message for f in findings]
    finding = findings[0]
    for key, value in expected.items():
        assert getattr(finding, key) == value, (key, getattr(finding, key), finding)
    return finding


# ------------------------------------------------------------------------------------------------
# validate_form


def test_valid_record_gives_no_finding_and_a_passed_check(study):
    findings, runs = validate_form(study, make_form_data(study, "VS", [vs()]))
    assert findings == []
    assert [(r.id, r.status, r.count) for r in runs] == [("schema:VS", Status.PASSED, 0)]


def test_range_failure(study):
    records = [vs(SUBJID="01-001"), vs(SUBJID="01-002"), vs(SUBJID="01-003", WEIGHT=300)]
    findings, runs = validate_form(study, make_form_data(study, "VS", records, first_row=3))
    finding = only(findings, code="RANGE", variable="WEIGHT", row=5, value="300", subject="01-003",
                   visit="W4", site="01", form="VS", file="upload.xlsx", sheet="VS",
                   category=Category.RANGE, expected="8–200 kg", reference="Synopsis: VS form")
    assert finding.message.startswith("WEIGHT = 300 is outside 8–200 kg")
    assert finding.check == "less_than_or_equal_to"
    assert (runs[0].status, runs[0].count) == (Status.FAILED, 1)


def test_value_is_as_typed(study):
    form_data = make_form_data(study, "VS", [vs(WEIGHT="300,0")])
    finding = only(validate_form(study, form_data)[0], code="RANGE")
    assert finding.value == "300,0"
    assert "WEIGHT = 300 " in finding.message


def test_codelist_failure(study):
    dm = {"SITEID": "01", "SUBJID": "01-003", "ICDAT": "2024-01-02", "BRTHYM": "2012-04", "SEX": "X"}
    finding = only(validate_form(study, make_form_data(study, "DM", [dm]))[0],
                   code="CODELIST", variable="SEX", value="X", row=2, category=Category.CODELIST)
    assert finding.message == "SEX = 'X' is not in codelist SEX (M, F)"


def test_decimals_failure(study):
    core = {"SITEID": "01", "SUBJID": "01-003", "VISIT": "W4", "CSDAT": "2024-03-01", "PHGA": 3.25,
            "JADONE": "Y", "FEVER": "N", "RASH": "N", "LYMPH": "N", "HEPSPL": "N", "SEROS": "N"}
    only(validate_form(study, make_form_data(study, "CORE", [core]))[0],
         code="DECIMALS", variable="PHGA", value="3.25", category=Category.RANGE)


def test_partial_date_format_failure(study):
    dm = {"SITEID": "01", "SUBJID": "01-003", "ICDAT": "2024-01-02", "BRTHYM": "2012-13", "SEX": "F"}
    finding = only(validate_form(study, make_form_data(study, "DM", [dm]))[0],
                   code="FORMAT", variable="BRTHYM", value="2012-13", category=Category.TYPE)
    assert "YYYY-MM" in finding.message


def test_subject_id_format(study):
    only(validate_form(study, make_form_data(study, "VS", [vs(SUBJID="1-3")]))[0],
         code="FORMAT", variable="SUBJID", value="1-3", check="subject_id_format")


def test_required_failure(study):
    finding = only(validate_form(study, make_form_data(study, "VS", [vs(VSDAT=None)]))[0],
                   code="REQUIRED", variable="VSDAT", value=None, category=Category.REQUIRED)
    assert "VSDAT is required" in finding.message


def test_conditional_requirement_is_one_finding_per_record(study):
    records = [pt(PTENDAT=None), pt(PTTRT="ETANERCEPT", PTENDAT=None, PTREAS=None)]
    findings, _ = validate_form(study, make_form_data(study, "PT", records))
    got = sorted((f.row, f.variable, f.code) for f in findings)
    assert got == [(2, "PTENDAT", "REQUIRED"), (3, "PTENDAT", "REQUIRED"), (3, "PTREAS", "REQUIRED")]
    message = next(f.message for f in findings if f.row == 2)
    assert message.startswith("PTENDAT is required unless PTONGO = Y")


def test_missing_value_code_in_required_cell_is_no_finding(study):
    findings, _ = validate_form(study, make_form_data(study, "VS", [vs(VSDAT="ND")]))
    assert findings == []
    findings, _ = validate_form(study, make_form_data(study, "PT", [pt(PTENDAT="NK")]))
    assert findings == []


def test_unconvertible_value_is_not_reported_again_as_required(study):
    findings, _ = validate_form(study, make_form_data(study, "VS", [vs(VSDAT="31/02/2024")]))
    assert findings == []


def test_duplicate_key_gives_one_finding_per_record(study):
    records = [vs(), vs(SUBJID="01-004"), vs(WEIGHT=31)]
    findings, _ = validate_form(study, make_form_data(study, "VS", records, first_row=10))
    assert sorted((f.code, f.row, f.variable) for f in findings) == [
        ("DUPLICATE-KEY", 10, "SUBJID, VISIT"),
        ("DUPLICATE-KEY", 12, "SUBJID, VISIT"),
    ]
    by_row = {f.row: f for f in findings}
    assert "row 12" in by_row[10].message and "row 10" in by_row[12].message
    assert by_row[10].category == Category.KEY
    assert by_row[10].value == "01-003 | W4"


def test_several_failures_in_one_record_do_not_hide_each_other(study):
    record = vs(WEIGHT=300, WEIGHTU="g", TEMP=50, SYSBP=10)
    findings, _ = validate_form(study, make_form_data(study, "VS", [record]))
    assert sorted((f.variable, f.code) for f in findings) == [
        ("SYSBP", "RANGE"), ("TEMP", "RANGE"), ("WEIGHT", "RANGE"), ("WEIGHTU", "CODELIST"),
    ]


def test_query_id_is_stable_when_rows_move(study):
    first = validate_form(study, make_form_data(study, "VS", [vs(WEIGHT=300)], first_row=2))[0]
    moved = validate_form(
        study, make_form_data(study, "VS", [vs(SUBJID="01-001"), vs(WEIGHT=300)], file="new.xlsx",
                              first_row=7)
    )[0]
    assert first[0].row == 2 and moved[0].row == 8
    assert first[0].query_id == moved[0].query_id
    other = validate_form(study, make_form_data(study, "VS", [vs(WEIGHT=300, VISIT="W8")]))[0]
    assert other[0].query_id != first[0].query_id


def test_record_index_not_positions(study):
    form_data = make_form_data(study, "VS", [vs(SUBJID="01-001"), vs(WEIGHT=300)])
    for frame in (form_data.data, form_data.raw, form_data.reasons, form_data.lineage):
        frame.index = pd.Index([40, 17])
    only(validate_form(study, form_data)[0], code="RANGE", row=3, value="300")


# ------------------------------------------------------------------------------------------------
# The rule engine's outcomes


def test_a_rule_that_raises_is_recorded_and_the_run_goes_on(study):
    @rule("T-BROKEN", "Broken", severity="error", category="record", reference="test", forms=["VS"],
          message="never")
    def broken(ctx):
        raise RuntimeError("boom")

    @rule("T-HEAVY", "Heavy", severity="warning", category="record", reference="test", forms=["VS"],
          message="{SUBJID} weighs {WEIGHT}")
    def heavy(ctx):
        frame = ctx.form("VS")
        hit = frame[frame.WEIGHT > 30]
        return hit.assign(_form="VS", _index=hit.index, _variable="WEIGHT")[
            ["SUBJID", "VISIT", "WEIGHT", "_form", "_index", "_variable"]]

    forms = {"VS": make_form_data(study, "VS", [vs(WEIGHT=31)])}
    findings, runs = run_rules(study, forms, rules=[broken, heavy])
    assert [(r.id, r.status) for r in runs] == [("T-BROKEN", Status.ERROR), ("T-HEAVY", Status.FAILED)]
    assert runs[0].reason.startswith("T-BROKEN could not run: ") and "boom" not in runs[0].reason
    assert "RuntimeError: boom" in runs[0].detail  # kept for the trialkit team
    only(findings, code="T-HEAVY", row=2, variable="WEIGHT", value="31", message="01-003 weighs 31")


def test_a_rule_whose_form_is_missing_is_skipped_with_the_reason(study):
    @rule("T-AE", "Needs AE", severity="error", category="record", reference="test", forms=["AE"],
          message="x")
    def needs_ae(ctx):
        raise AssertionError("must not run")

    findings, runs = run_rules(study, {"VS": make_form_data(study, "VS", [vs()])}, rules=[needs_ae])
    assert findings == []
    assert runs[0].status == Status.SKIPPED and "AE" in runs[0].reason


# ------------------------------------------------------------------------------------------------
# validate()


def _result(*form_datas: FormData) -> ImportResult:
    return ImportResult(forms={fd.form: fd for fd in form_datas})


def test_validate_report(study):
    result = _result(make_form_data(study, "VS", [vs(WEIGHT=300), vs(VISIT="W8", VSDAT="2024-04-02")]))
    report = validate(study, result, today=dt.date(2025, 1, 1))
    assert report.study_id == study.id and report.schema_hash == study.schema_hash
    assert report.data_cut == "2024-04-02"  # latest date in the upload
    assert [c.id for c in report.checks][0] == "schema:VS"
    assert {c.id for c in report.checks} >= {r.id for r in study.rules}
    range_findings = [f for f in report.findings if f.code == "RANGE"]
    assert len(range_findings) == 1


def test_validate_data_cut_given(study):
    result = _result(make_form_data(study, "VS", [vs()]))
    report = validate(study, result, data_cut=dt.date(2024, 2, 1), today=dt.date(2025, 1, 1))
    assert report.data_cut == "2024-02-01"
    assert any(f.variable == "VSDAT" and f.severity == "error" for f in report.findings)


def test_validate_site_hides_other_sites_records(study):
    records = [vs(), vs(SITEID="03", SUBJID="03-001", WEIGHT=300)]
    report = validate(study, _result(make_form_data(study, "VS", records)), site="1",
                      today=dt.date(2025, 1, 1))
    assert report.site == "01"
    wrong = only([f for f in report.findings if f.code == "WRONG-SITE"], row=3, site="01")
    assert "record belongs to site 03, not 01" in wrong.message
    assert all(f.subject != "03-001" for f in report.findings)
    assert not any(f.code == "RANGE" for f in report.findings)


def test_validate_unknown_site_is_a_usage_error(study):
    from trialkit.errors import UsageError

    with pytest.raises(UsageError):
        validate(study, _result(), site="42")


def test_validate_sorts_and_truncates(study):
    records = [vs(SUBJID="01-009", WEIGHT=300), vs(SUBJID="01-001", TEMP=50, SYSBP=5)]
    report = validate(study, _result(make_form_data(study, "VS", records)), today=dt.date(2025, 1, 1))
    keys = [(f.severity.rank, f.subject, f.row, f.variable) for f in report.findings]
    assert keys == sorted(keys, key=lambda k: (-k[0], k[1] or "", k[2] or 0, k[3] or ""))
    total = len(report.findings)
    cut = validate(study, _result(make_form_data(study, "VS", records)), max_findings=2,
                   today=dt.date(2025, 1, 1))
    assert len(cut.findings) == 2 and cut.truncated == total - 2
    assert [f.query_id for f in cut.findings] == [f.query_id for f in report.findings[:2]]


# ------------------------------------------------------------------------------------------------
# End to end through the importers


def test_end_to_end_through_import_files(study, tmp_path):
    from openpyxl import Workbook

    from trialkit.importers.reader import import_files

    header = ["SITEID", "SUBJID", "VISIT", "VSDAT", "WEIGHT", "WEIGHTU", "HEIGHT", "HEIGHTU", "TEMP",
              "TEMPU", "SYSBP", "DIABP", "HR"]
    rows = [
        ["01", "01-003", "D1", "01/02/2024", "30,5", "kg", "140", "cm", "36,8", "C", 110, 70, 90],
        ["01", "01-003", "W4", "01/03/2024", "300", "kg", "140", "cm", "36,8", "C", 110, 70, 90],
        ["01", "01-003", "W8", "ND", "31", "kg", "140", "cm", "36,8", "C", 110, 70, 90],
    ]
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "VS"
    for row in [header, *rows]:
        sheet.append(row)
    path = tmp_path / "site01.xlsx"
    workbook.save(path)

    report = validate(study, import_files([path], study, site="01"), site="01",
                      today=dt.date(2025, 1, 1))
    schema = [f for f in report.findings if f.check and f.code in ("RANGE", "REQUIRED")]
    only(schema, code="RANGE", row=3, value="300", variable="WEIGHT", sheet="VS", site="01",
         file=str(path))
    assert report.data_cut == "2024-03-01"
    assert report.inputs and report.inputs[0].path == str(path)
