"""The study definition: every form and variable of the synopsis, protocol parameters as data,
loading from a path, and clear errors for broken definitions."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from trialkit.study import StudyDefinitionError, load_study, resolve_study_path

from .conftest import FAKE_STUDY

CHAQ_ITEMS = (
    [f"DRESS{i}" for i in range(1, 5)] + ["ARISE1", "ARISE2"] + [f"EAT{i}" for i in range(1, 4)]
    + ["WALK1", "WALK2"] + [f"HYG{i}" for i in range(1, 6)] + [f"REACH{i}" for i in range(1, 5)]
    + [f"GRIP{i}" for i in range(1, 6)] + [f"ACT{i}" for i in range(1, 6)]
)
# Every variable of every form in SYNOPSIS.md, in CRF order (SITEID and SUBJID first on all forms).
SYNOPSIS_VARIABLES = {
    "DM": ["ICDAT", "BRTHYM", "SEX"],
    "MH": ["ONSETYM", "FEVER2W", "ARTHR", "RASH", "LYMPH", "HEPSPL", "SEROS", "EXPSO", "EXB27",
           "EXB27FR", "EXRF", "AMYLOID", "MASLDAT"],
    "PT": ["PTTRT", "PTSTDAT", "PTENDAT", "PTONGO", "PTREAS"],
    "IE": ["IETESTCD", "IEORRES"],
    "RAND": ["RANDNO", "RANDDAT", "STRATUM", "KITNO"],
    "VS": ["VISIT", "VSDAT", "WEIGHT", "WEIGHTU", "HEIGHT", "HEIGHTU", "TEMP", "TEMPU", "SYSBP",
           "DIABP", "HR"],
    "CORE": ["VISIT", "CSDAT", "PHGA", "PAGA", "PTGH", "JADONE", "FEVER", "RASH", "LYMPH", "HEPSPL",
             "SEROS"],
    "JA": ["VISIT", "JADAT", "JOINT", "SWOLLEN", "TENDER", "LOM"],
    "CHAQ": ["VISIT", "QSDAT", "QSVER", *CHAQ_ITEMS, "DRESSAH", "ARISEAH", "EATAH", "WALKAH",
             "HYGAH", "REACHAH", "GRIPAH", "ACTAH", "PAINVAS"],
    "FEVER": ["FVDAT", "FVTEMP", "FVTEMPU", "FVROUTE", "FVANTIP"],
    "LB": ["VISIT", "LBDAT", "LBTESTCD", "LBORRES", "LBORRESU", "LBNRLO", "LBNRHI", "LBSTAT"],
    "EX": ["EXSTDAT", "EXENDAT", "EXDOSE", "KITNO", "EXMISS", "EXADJ"],
    "CM": ["CMTRT", "CMDOSE", "CMDOSU", "CMFRQ", "CMROUTE", "CMSTDAT", "CMENDAT", "CMONGO"],
    "AE": ["AETERM", "AESTDAT", "AEENDAT", "AEONGO", "AETOXGR", "AESER", "AESDTH", "AESLIFE",
           "AESHOSP", "AESDISAB", "AESCONG", "AESMIE", "AEREL", "AEACN", "AEOUT", "AESI", "AEAWDAT",
           "AERPTDAT"],
    "DS": ["DSDECOD", "DSSTDAT", "DSPART"],
}


def test_bundled_study_has_the_15_forms_in_synopsis_order(study):
    assert study.id == "ANK-SJIA-01"
    assert list(study.forms) == list(SYNOPSIS_VARIABLES)


@pytest.mark.parametrize("code", list(SYNOPSIS_VARIABLES))
def test_every_synopsis_variable_in_order(study, code):
    form = study.forms[code]
    assert [v.name for v in form.site_variables] == ["SITEID", "SUBJID", *SYNOPSIS_VARIABLES[code]]
    for variable in form.variables:
        assert variable.label and variable.label != variable.name
        assert len(variable.name) <= 8 and variable.name.isupper()


def test_form_keys(study):
    assert study.forms["VS"].keys == ("SUBJID", "VISIT")
    assert study.forms["JA"].keys == ("SUBJID", "VISIT", "JOINT")
    assert study.forms["FEVER"].keys == ("SUBJID", "FVDAT")
    assert study.forms["DM"].keys == ("SUBJID",)


def test_variable_metadata_carries_the_crf_rules(study):
    weight = study.forms["VS"].variable("WEIGHT")
    assert (weight.type, weight.unit, weight.min, weight.max, weight.unit_var) == ("num", "kg", 8, 200, "WEIGHTU")
    phga = study.forms["CORE"].variable("PHGA")
    assert (phga.min, phga.max, phga.decimals) == (0, 10, 1)
    sex = study.forms["DM"].variable("SEX")
    assert sex.required and sex.codelist == "SEX"
    assert study.codelists["SEX"].codes == ["M", "F"]
    assert study.forms["DM"].variable("BRTHYM").pdate_formats == ("YYYY-MM",)
    assert "PTONGO" in study.forms["PT"].variable("PTENDAT").required_if
    assert study.forms["LB"].variable("LBSTRESN").derived


def test_protocol_parameters_live_as_data(study):
    milan, berlin, cincinnati = study.site("01"), study.site("04"), study.site("08")
    assert (milan.date_order, milan.decimal_mark, milan.country) == ("DMY", ",", "IT")
    assert berlin.date_format_hint == "DD.MM.YYYY"
    assert cincinnati.date_format_hint == "MM/DD/YYYY" and "US" in cincinnati.units
    assert len(study.sites) == 9  # Amendment 1 added 09 Toronto
    w4 = study.visits["W4"]
    assert (w4.num, w4.target_day, w4.window_lo, w4.window_hi, w4.primary) == (4, 29, 26, 32, True)
    assert study.visits["FU"].anchor == "last_dose"
    joints = study.protocol.joints
    assert (len(joints.all), len(joints.jadas27), len(joints.das28)) == (71, 27, 28)
    assert set(joints.jadas27) <= set(joints.all) and set(joints.das28) <= set(joints.all)
    assert len(set(joints.all)) == 71
    assert study.protocol.washout_weeks["RITUXIMAB"] == 26
    assert study.protocol.prednisone_factors["DEXAMETHASONE"] == "6.67"
    assert study.param("lab_units", "CRP", "alternatives")[0] == {"unit": "mg/dL", "multiply": "10"}
    assert study.protocol.dose.fixed_dose_mg == 100
    assert study.missing_codes == {"ND": "Not done", "NK": "Not known", "NA": "Not applicable"}
    assert study.codelists["JOINT"].codes == list(joints.all)


def test_version_stamp_changes_with_the_forms(study, fake_study):
    assert study.version_stamp == f"ANK-SJIA-01|1.1|{study.schema_hash}"
    assert len(study.schema_hash) == 12
    assert fake_study.schema_hash != study.schema_hash


def test_fake_study_proves_the_engine_is_generic(fake_study):
    import pandas as pd

    from trialkit.importers.base import FormData
    from trialkit.rules import run_rules

    assert list(fake_study.forms) == ["PET", "MEAL"]
    assert fake_study.site("A1").date_order == "YMD"
    meals = pd.DataFrame(
        {"PETID": pd.Series(["P1", "P9"], dtype="str"),
         "MEALDAT": pd.to_datetime(["2024-01-01", "2024-01-02"]), "GRAMS": [10.5, 20.0]}
    )
    pets = pd.DataFrame({"PETID": pd.Series(["P1"], dtype="str"), "COLOUR": pd.Series(["R"], dtype="str")})

    def wrap(code, frame):
        lineage = pd.DataFrame({"FILE": "f.csv", "SHA256": "0", "SHEET": code, "ROW": range(2, 2 + len(frame))})
        return FormData(code, frame, frame.astype(str), frame.map(lambda _: None), lineage)

    findings, runs = run_rules(fake_study, {"MEAL": wrap("MEAL", meals), "PET": wrap("PET", pets)})
    assert [(f.code, f.subject, f.row) for f in findings] == [("FK-01", "P9", 3)]
    assert runs[0].status == "failed" and runs[0].count == 1
    fake_study.forms["MEAL"].schema.validate(meals)


def test_study_from_environment(monkeypatch):
    monkeypatch.setenv("TRIALKIT_STUDY", str(FAKE_STUDY))
    assert resolve_study_path() == FAKE_STUDY.resolve()
    assert load_study().id == "FAKE-01"


def _broken_copy(tmp_path: Path, old: str, new: str, file: str = "forms.py") -> Path:
    target = tmp_path / "study"
    shutil.copytree(FAKE_STUDY, target)
    path = target / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return target


def test_duplicate_form_is_refused(tmp_path):
    folder = _broken_copy(tmp_path, "FORMS = [PET, MEAL]", "FORMS = [PET, MEAL, PET]")
    with pytest.raises(StudyDefinitionError, match=r"forms\.py: duplicate form PET"):
        load_study(folder)


def test_unknown_codelist_is_refused(tmp_path):
    folder = _broken_copy(tmp_path, 'CL["COLOUR"]', 'CL["COLOR"]')
    with pytest.raises(StudyDefinitionError, match=r"forms\.py: .*unknown name 'COLOR'"):
        load_study(folder)


def test_key_that_is_not_a_column_is_refused(tmp_path):
    folder = _broken_copy(tmp_path, '"keys": ["PETID"]}', '"keys": ["PETNO"]}')
    with pytest.raises(StudyDefinitionError, match=r"forms\.py: form PET has key 'PETNO', which is not one of its columns"):
        load_study(folder)


def test_bad_toml_and_missing_folder_are_named(tmp_path):
    folder = _broken_copy(tmp_path, 'id = "FAKE-01"', 'id = "FAKE-01', file="study.toml")
    with pytest.raises(StudyDefinitionError, match=r"study\.toml: not valid TOML"):
        load_study(folder)
    with pytest.raises(StudyDefinitionError, match="not a study definition"):
        load_study(tmp_path / "nowhere")


def test_duplicate_rule_id_is_refused(tmp_path):
    folder = _broken_copy(tmp_path, "RULES = [meal_without_pet]", "RULES = [meal_without_pet, meal_without_pet]", file="rules.py")
    with pytest.raises(StudyDefinitionError, match=r"rules\.py: duplicate rule id FK-01"):
        load_study(folder)
