"""Every form's pandera schema: a valid literal record passes, and a record breaking each kind of
rule the form declares (type, range, decimals, partial-date shape, codelist, required, conditional
requirement, unique keys) is rejected with the right column or check named.

Cases are generated from the Variable metadata, so a new variable with a range, codelist or
requirement is covered without editing this file; a few hand-written literal cases pin the
generator down.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pandera.pandas as pa
import pytest

from trialkit.study import Form, Variable, load_study

STUDY = load_study()
FORMS = list(STUDY.forms.values())

DTYPE_OF_TYPE = {
    "char": "str",
    "pdate": "str",
    "yn": "str",
    "int": "Int64",
    "num": "float64",
    "date": "datetime64[us]",
}
PDATE_EXAMPLES = {"YYYY": "2019", "YYYY-MM": "2019-04", "YYYY-MM-DD": "2019-04-17"}

# Values that make a full record coherent where the generic choice (first code, "Y") would not.
BASE_OVERRIDES: dict[str, dict[str, Any]] = {
    "LB": {"LBSTAT": None, "LBTESTCD": "CRP", "LBORRESU": "mg/L"},
    "PT": {"PTONGO": "N"},
    "AE": {"AEONGO": "N"},
}

# Each conditional requirement (dataframe check "required:VAR"): values that raise the
# requirement (trigger) and values that do not (relief); VAR itself is blanked in both.
CONDITIONAL_CASES: dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any]]] = {
    ("PT", "required:PTENDAT"): ({"PTONGO": "N"}, {"PTONGO": "Y"}),
    ("PT", "required:PTREAS"): ({"PTONGO": "N"}, {"PTONGO": "Y"}),
    ("LB", "required:LBORRES"): ({"LBSTAT": None}, {"LBSTAT": "ND", "LBORRESU": None,
                                                    "LBNRLO": None, "LBNRHI": None}),
    ("LB", "required:LBORRESU"): ({}, {"LBORRES": None, "LBSTAT": "ND"}),
    ("LB", "required:LBNRLO"): ({"LBTESTCD": "CRP"}, {"LBTESTCD": "HGB"}),
    ("LB", "required:LBNRHI"): ({"LBTESTCD": "ESR"}, {"LBTESTCD": "HGB"}),
    ("AE", "required:AEENDAT"): ({"AEONGO": "N"}, {"AEONGO": "Y"}),
    ("AE", "required:AEAWDAT"): ({"AESER": "Y"}, {"AESER": "N"}),
    ("AE", "required:AERPTDAT"): ({"AESER": "Y"}, {"AESER": "N"}),
}


def valid_value(var: Variable) -> Any:
    """A value that satisfies every rule the variable declares."""
    if var.derived:
        return None
    if var.name == "SUBJID":
        return "01-001"
    if var.codelist:
        return STUDY.codelists[var.codelist].codes[0]
    if var.type == "pdate":
        return PDATE_EXAMPLES[(var.pdate_formats or ("YYYY-MM-DD",))[-1]]
    if var.type == "date":
        return pd.Timestamp("2024-03-05")
    if var.type in ("int", "num"):
        value = var.min if var.min is not None else 1
        if var.max is not None and value > var.max:
            value = var.max
        return int(value) if var.type == "int" else float(value)
    return f"{var.name}-1"


def frame(form: Form, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A literal frame typed as the importer types it (one column per variable, CRF dtypes)."""
    return pd.DataFrame(
        {
            v.name: pd.Series([row.get(v.name) for row in rows], dtype=DTYPE_OF_TYPE[v.type])
            for v in form.variables
        }
    )


def valid_record(form: Form) -> dict[str, Any]:
    record = {v.name: valid_value(v) for v in form.variables}
    record.update(BASE_OVERRIDES.get(form.code, {}))
    return record


def failures(form: Form, df: pd.DataFrame) -> pd.DataFrame:
    """The failure cases of a lazy validation (empty when the frame is valid)."""
    try:
        form.schema.validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        return exc.failure_cases
    return pd.DataFrame(columns=["column", "check"])


def assert_rejected(form: Form, df: pd.DataFrame, column: str | None, check_prefix: str) -> None:
    cases = failures(form, df)
    checks = cases["check"].astype(str)
    hit = checks.str.startswith(check_prefix)
    if column is not None:
        hit &= cases["column"].astype(str).eq(column)
    assert hit.any(), (
        f"{form.code}: expected a failure {check_prefix!r} on {column}, got\n"
        f"{cases[['column', 'check', 'failure_case']].to_string()}"
    )


# ------------------------------------------------------------------------------------------------
# Generated cases


def _variables(predicate) -> list:
    return [
        pytest.param(form, var, id=f"{form.code}.{var.name}")
        for form in FORMS
        for var in form.variables
        if predicate(var)
    ]


@pytest.mark.parametrize("form", FORMS, ids=[f.code for f in FORMS])
def test_valid_record_passes(form):
    df = frame(form, [valid_record(form)])
    cases = failures(form, df)
    assert cases.empty, cases.to_string()


@pytest.mark.parametrize(("form", "var"), _variables(lambda v: not v.derived))
def test_wrong_type_is_rejected(form, var):
    record = valid_record(form)
    df = frame(form, [record])
    # A site's text where a number or date belongs; a number where text belongs.
    df[var.name] = pd.Series([12] if var.type in ("char", "pdate", "yn") else ["abc"],
                             dtype="int64" if var.type in ("char", "pdate", "yn") else "str")
    assert_rejected(form, df, var.name, "dtype(")


@pytest.mark.parametrize(("form", "var"), _variables(lambda v: v.min is not None))
def test_below_minimum_is_rejected(form, var):
    record = valid_record(form)
    record[var.name] = var.min - 1
    assert_rejected(form, frame(form, [record]), var.name, "greater_than_or_equal_to(")


@pytest.mark.parametrize(("form", "var"), _variables(lambda v: v.max is not None))
def test_above_maximum_is_rejected(form, var):
    record = valid_record(form)
    record[var.name] = var.max + 1
    assert_rejected(form, frame(form, [record]), var.name, "less_than_or_equal_to(")


@pytest.mark.parametrize(("form", "var"), _variables(lambda v: v.decimals is not None))
def test_too_many_decimals_is_rejected(form, var):
    record = valid_record(form)
    record[var.name] = (var.min or 0) + 10 ** -(var.decimals + 1) * 3
    assert_rejected(form, frame(form, [record]), var.name, "max_decimals")


@pytest.mark.parametrize(("form", "var"), _variables(lambda v: v.type == "pdate"))
def test_badly_shaped_partial_date_is_rejected(form, var):
    record = valid_record(form)
    record[var.name] = "17/04/2019"
    assert_rejected(form, frame(form, [record]), var.name, "str_matches(")


@pytest.mark.parametrize(("form", "var"), _variables(lambda v: v.codelist is not None))
def test_code_outside_codelist_is_rejected(form, var):
    record = valid_record(form)
    record[var.name] = "NOT-A-CODE"
    assert_rejected(form, frame(form, [record]), var.name, "isin(")


@pytest.mark.parametrize(("form", "var"), _variables(lambda v: v.required))
def test_missing_required_value_is_rejected(form, var):
    record = valid_record(form)
    record[var.name] = None
    assert_rejected(form, frame(form, [record]), var.name, "not_nullable")


@pytest.mark.parametrize(("form", "var"), _variables(lambda v: not v.required))
def test_optional_value_may_be_missing(form, var):
    record = valid_record(form)
    record[var.name] = None
    cases = failures(form, frame(form, [record]))
    nullable = cases[cases["check"].astype(str).eq("not_nullable")]
    assert nullable.empty, nullable.to_string()


def _conditional_checks() -> list:
    return [
        pytest.param(form, check.name, id=f"{form.code}.{check.name}")
        for form in FORMS
        for check in form.schema.checks
        if str(check.name).startswith("required:")
    ]


def test_every_conditional_requirement_has_cases():
    declared = {(p.values[0].code, p.values[1]) for p in _conditional_checks()}
    assert declared == set(CONDITIONAL_CASES), "add trigger/relief cases to CONDITIONAL_CASES"


@pytest.mark.parametrize(("form", "check_name"), _conditional_checks())
def test_conditional_requirement(form, check_name):
    target = check_name.split(":", 1)[1]
    trigger, relief = CONDITIONAL_CASES[(form.code, check_name)]
    record = {**valid_record(form), **trigger, target: None}
    cases = failures(form, frame(form, [record]))
    assert cases["check"].astype(str).eq(check_name).any(), cases.to_string()
    record = {**valid_record(form), **relief, target: None}
    cases = failures(form, frame(form, [record]))
    assert not cases["check"].astype(str).eq(check_name).any(), cases.to_string()


# ------------------------------------------------------------------------------------------------
# Hand-written literal cases


def test_dm_literal_record():
    form = STUDY.forms["DM"]
    good = pd.DataFrame(
        {
            "SITEID": pd.Series(["03"], dtype="str"),
            "SUBJID": pd.Series(["03-012"], dtype="str"),
            "ICDAT": pd.Series([pd.Timestamp("2024-02-01")]),
            "BRTHYM": pd.Series(["2012-06"], dtype="str"),
            "SEX": pd.Series(["F"], dtype="str"),
        }
    )
    assert failures(form, good).empty
    bad = good.assign(SEX=pd.Series(["X"], dtype="str"))
    cases = failures(form, bad)
    assert cases[["column", "check", "failure_case"]].values.tolist() == [
        ["SEX", "isin(['M', 'F'])", "X"]
    ]
    full_birth_date = good.assign(BRTHYM=pd.Series(["2012-06-15"], dtype="str"))
    assert_rejected(form, full_birth_date, "BRTHYM", "str_matches(")
    bad_subjid = good.assign(SUBJID=pd.Series(["3-12"], dtype="str"))
    assert_rejected(form, bad_subjid, "SUBJID", "subject_id_format")


def test_vs_weight_300_is_out_of_range():
    form = STUDY.forms["VS"]
    record = {**valid_record(form), "WEIGHT": 300.0}
    cases = failures(form, frame(form, [record]))
    assert cases[["column", "check", "failure_case"]].values.tolist() == [
        ["WEIGHT", "less_than_or_equal_to(200)", 300.0]
    ]


def test_vs_text_weight_is_a_type_failure():
    form = STUDY.forms["VS"]
    df = frame(form, [valid_record(form)]).assign(WEIGHT=pd.Series(["12,5"], dtype="str"))
    assert_rejected(form, df, "WEIGHT", "dtype('float64')")


def test_pt_stopped_without_stop_date():
    form = STUDY.forms["PT"]
    df = pd.DataFrame(
        {
            "SITEID": pd.Series(["01"], dtype="str"),
            "SUBJID": pd.Series(["01-001"], dtype="str"),
            "PTTRT": pd.Series(["ETANERCEPT"], dtype="str"),
            "PTSTDAT": pd.Series(["2020-03"], dtype="str"),
            "PTENDAT": pd.Series([None], dtype="str"),
            "PTONGO": pd.Series(["N"], dtype="str"),
            "PTREAS": pd.Series(["INEFFICACY"], dtype="str"),
        }
    )
    cases = failures(form, df)
    assert set(cases["check"]) == {"required:PTENDAT"}
    ongoing = df.assign(PTONGO=pd.Series(["Y"], dtype="str"), PTREAS=pd.Series([None], dtype="str"))
    assert failures(form, ongoing).empty


def test_lab_not_done_needs_no_result():
    form = STUDY.forms["LB"]
    record = {**valid_record(form), "LBSTAT": "ND", "LBORRES": None, "LBORRESU": None,
              "LBNRLO": None, "LBNRHI": None}
    assert failures(form, frame(form, [record])).empty


# ------------------------------------------------------------------------------------------------
# Keys


def _unique_key_failures(cases: pd.DataFrame) -> pd.DataFrame:
    return cases[cases["check"].astype(str).str.contains("unique_keys")]


def test_duplicate_visit_keys_are_rejected():
    form = STUDY.forms["VS"]
    record = {**valid_record(form), "VISIT": "W4"}
    cases = failures(form, frame(form, [record, record]))
    assert not _unique_key_failures(cases).empty, cases.to_string()
    other = {**record, "VISIT": "W8"}
    assert failures(form, frame(form, [record, other])).empty


def test_unscheduled_visits_may_repeat():
    form = STUDY.forms["VS"]
    record = {**valid_record(form), "VISIT": "UNS"}
    assert failures(form, frame(form, [record, record])).empty


def test_duplicate_randomization_number_is_rejected():
    form = STUDY.forms["RAND"]
    first = valid_record(form)
    second = {**first, "SUBJID": "01-002"}
    assert_rejected(form, frame(form, [first, second]), "RANDNO", "field_uniqueness")
