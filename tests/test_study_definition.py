"""The typed study definition: unknown keys refused with the fix, one source per fact, no engine
defaults, site ids not padded, and a template stamp that depends on the forms only."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from trialkit.study import StudyDefinitionError, load_study, read_definition

TESTS = Path(__file__).resolve().parent
FAKE = TESTS / "fake_study"
SECOND = TESTS / "second_study"


def copy_with(tmp_path: Path, source: Path, old: str, new: str, file: str = "study.toml") -> Path:
    target = tmp_path / source.name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    path = target / file
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return target


def problems_of(folder: Path) -> list[str]:
    with pytest.raises(StudyDefinitionError) as caught:
        load_study(folder)
    return caught.value.problems


def test_unknown_key_names_file_key_and_fix(tmp_path):
    folder = copy_with(tmp_path, FAKE, 'city = "Nowhere"', 'citty = "Nowhere"')
    problems = problems_of(folder)
    assert any(re.search(r"study\.toml: \[\[sites\]\] #1 \(A1\): unknown key 'citty'; did you mean 'city'\?", p)
               for p in problems), problems
    # and the missing city is reported too, all at once
    assert any("'city' is missing" in p for p in problems), problems


def test_unknown_section_points_at_protocol(tmp_path):
    folder = copy_with(tmp_path, FAKE, "[missing_codes]", "[dose]\nfixed_mg = 100\n\n[missing_codes]")
    problems = problems_of(folder)
    assert any("unknown section [dose]" in p and "[protocol]" in p for p in problems), problems


def test_a_typo_in_a_section_name_gets_a_did_you_mean(tmp_path):
    folder = copy_with(tmp_path, FAKE, "[missing_codes]", "[missing_code]")
    assert any("unknown section [missing_code]; did you mean [missing_codes]?" in p for p in problems_of(folder))


def test_old_keys_say_where_they_moved(tmp_path):
    folder = copy_with(tmp_path, FAKE, 'title = "A two-form fake study for engine tests"',
                       'title = "A two-form fake study for engine tests"\nforms_module = "forms.py"')
    assert any("unknown key 'forms_module'; it moved to [plugins] forms" in p for p in problems_of(folder))


def test_generated_codelists_cannot_be_declared(tmp_path):
    folder = copy_with(tmp_path, FAKE, "[codelists.COLOUR]",
                       '[codelists.SITEID]\nvalues = [["A1", "Nowhere"]]\n\n[codelists.COLOUR]')
    assert any("[codelists.SITEID] is generated from [[sites]]" in p for p in problems_of(folder))


def test_bad_values_are_named(tmp_path):
    folder = copy_with(tmp_path, FAKE, 'date_order = "YMD"', 'date_order = "YDM"')
    assert any("[[sites]] #1 (A1) date_order" in p and "'YDM'" in p for p in problems_of(folder))
    folder = copy_with(tmp_path / "b", FAKE, "window_hi = 1", "window_hi = 0")
    assert any("window_lo 1 is after window_hi 0" in p for p in problems_of(folder))


def test_the_study_validates_its_own_protocol_section(tmp_path, study):
    # A typo in [protocol] fails at load, naming the key, through the study's own protocol plug-in.
    folder = copy_with(tmp_path, study.path, "fixed_dose_mg = 100", "fixed_dose_mgg = 100")
    problems = problems_of(folder)
    assert any("[protocol] dose.fixed_dose_mgg: unknown key" in p and "protocol.py" in p for p in problems), problems
    assert any("[protocol] dose.fixed_dose_mg: is missing" in p for p in problems), problems


def test_no_engine_defaults_for_trial_parameters(tmp_path, study):
    # Removing a trial parameter is an error, never a silent default.
    folder = copy_with(tmp_path, study.path, "adult_age_years = 18\n", "")
    assert any("age_groups.adult_age_years: is missing" in p for p in problems_of(folder))


def test_site_and_visit_codelists_come_from_the_tables(study):
    assert study.codelists["SITEID"].values == tuple((s.id, s.city) for s in study.sites.values())
    assert study.codelists["SITEID"].synonyms["1"] == "01"
    visits = study.codelists["VISIT"]
    assert visits.codes == list(study.visits)
    assert visits.decode("W4") == "Week 4" and visits.synonyms["day 1"] == "D1"
    assert "SITEID" not in read_definition(study.path).typed.codelists


def test_site_ids_are_not_padded_by_the_engine(study):
    second = load_study(SECOND)
    assert study.site("1").id == "01" and study.site("01").id == "01"
    assert second.site("101").id == "101"
    with pytest.raises(KeyError, match="unknown site '1'"):
        second.site("1")
    assert study.site("9").id == "09"
    with pytest.raises(KeyError, match="unknown site '10'"):
        study.site("10")


def test_subject_pattern_is_read_everywhere(study):
    second = load_study(SECOND)
    assert study.subject_site("03-012") == "03" and study.subject_site("3-12") is None
    assert second.subject_site("102-0007") == "102" and second.subject_site("10-007") is None
    assert study.forms["DM"].model.to_schema().columns["SUBJID"].description.startswith("SS-NNN")


def test_the_stamp_depends_on_the_forms_not_the_sites_or_the_version(tmp_path, study):
    more_sites = copy_with(tmp_path, study.path, "[[sites]]\n",
                           '[[sites]]\nid = "99"\ncity = "Elsewhere"\ncountry = "ZZ"\ndate_order = "DMY"\n'
                           'decimal_mark = ","\n\n[[sites]]\n')
    amended = load_study(more_sites)
    assert "99" in amended.sites and amended.codelists["SITEID"].decode("99") == "Elsewhere"
    assert amended.schema_hash == study.schema_hash
    older = copy_with(tmp_path / "v", study.path, f'protocol_version = "{study.protocol_version}"',
                      'protocol_version = "0.9"')
    assert load_study(older).schema_hash == study.schema_hash
    assert study.stamp_status(f"{study.id}|0.9|{study.schema_hash}") == "current"
    assert study.stamp_status(f"{study.id}|{study.protocol_version}|0123456789ab") == "outdated"
    assert study.stamp_status(f"OTHER|{study.protocol_version}|{study.schema_hash}") == "other-study"


def test_a_study_folder_imports_as_a_package(study):
    # forms.py, checks.py, deviations.py and the plug-ins are modules of one private package, so the
    # study's files import each other with relative imports; the name is never the trial's.
    package = study.package
    assert package.startswith("_trialkit_study_ANK_SJIA_01_")
    assert study.plugin("analysis").__name__ == f"{package}.analysis"
    assert study.plugin("report").__name__ == f"{package}.report"
    assert load_study(SECOND).plugin("report") is None
