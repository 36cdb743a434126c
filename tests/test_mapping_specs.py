"""Mapping specs: validated at load, applied at import with lineage to the site's own cells."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from trialkit.cli import cli
from trialkit.importers.reader import import_files
from trialkit.study import StudyDefinitionError, bundled_study_path, load_study
from trialkit.study.mappings import check_spec, read_spec
from trialkit.validate import validate

# A hospital EDC's vital signs export (site 08, Cincinnati): one row per measurement, US dates, its
# own visit names and test codes, a row the export marks as deleted, and a date and time apart.
VITALS_CSV = """PATIENT;VISITNAME;VISITDATE;VISITTIME;TESTCODE;RESULT;UNIT;STATUS
08-001;Baseline;03/05/2024;09:30;WT;70.2;kg;FINAL
08-001;Baseline;03/05/2024;09:30;HT;172;cm;FINAL
08-001;Baseline;03/05/2024;09:30;PULSE;72;beats/min;FINAL
08-001;Baseline;03/05/2024;09:30;BODYTEMP;98.6;F;FINAL
08-001;Week 4;04/02/2024;10:05;WT;71.0;kg;FINAL
08-001;Week 4;04/02/2024;10:05;PULSE;250;beats/min;FINAL
08-001;Week 4;04/02/2024;10:05;WT;99;kg;DELETED
"""

VITALS_SPEC = """\
title = "Cincinnati hospital EDC: vital signs, one row per measurement"
form = "VS"
ignore = ["VISITTIME"]

[recognise]
columns = ["PATIENT", "VISITNAME", "TESTCODE", "RESULT"]

[filter]
STATUS = ["FINAL"]

[pivot]
test = "TESTCODE"
value = "RESULT"
unit = "UNIT"
tests = { WT = "WEIGHT", HT = "HEIGHT", BODYTEMP = "TEMP", PULSE = { variable = "HR", units = ["beats/min"] } }

[variables]
SITEID = { constant = "08" }
SUBJID = { column = "PATIENT" }
VISIT = { column = "VISITNAME", recode = { Baseline = "D1", "Week 4" = "W4" } }
VSDAT = { column = "VISITDATE", date = "%m/%d/%Y" }
"""


@pytest.fixture()
def site_study(tmp_path):
    """A copy of the bundled study whose site 08 keeps the vital-signs spec."""
    folder = tmp_path / "study"
    shutil.copytree(bundled_study_path(), folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "mappings" / "site08_vitals.toml").write_text(VITALS_SPEC, encoding="utf-8")
    return folder


def _vitals(tmp_path: Path, text: str = VITALS_CSV) -> Path:
    path = tmp_path / "vitals_export.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_recognised_spec_reads_a_long_export_as_the_wide_form(site_study, tmp_path):
    study = load_study(site_study)
    imported = import_files([_vitals(tmp_path)], study, site="08")
    report = validate(study, imported, site="08")
    vs = imported.forms["VS"]
    assert list(vs.data["VISIT"]) == ["D1", "W4"]
    assert list(vs.data["VSDAT"]) == [pd.Timestamp("2024-03-05"), pd.Timestamp("2024-04-02")]
    assert list(vs.data["WEIGHT"]) == [70.2, 71.0]  # the DELETED row is filtered, not read as a second WT
    assert vs.data["TEMP"].iloc[0] == 37.0 and vs.data["TEMPU"].iloc[0] == "C"  # 98.6 F converted as usual
    assert list(vs.data["SITEID"]) == ["08", "08"]
    assert list(vs.lineage["ROW"]) == [2, 6]  # the CSV line each record starts on
    assert vs.raw["VSDAT"].iloc[0] == "03/05/2024" and vs.raw["VISIT"].iloc[0] == "Baseline"
    codes = {f.code for f in report.findings}
    assert {"MAP-SPEC", "MAP-FILTERED", "MAP-VALUE"} <= codes
    spec = next(f for f in report.findings if f.code == "MAP-SPEC")
    assert spec.evidence["chosen"] == "recognised" and spec.value == "site08_vitals"
    # HR 250 is out of range: the finding names the row and column of the long file
    (high,) = [f for f in report.findings if f.code == "RANGE"]
    assert (high.variable, high.row) == ("HR", 7)
    assert high.evidence["source"]["column"] == "RESULT where TESTCODE = PULSE"
    assert not [f for f in report.findings if f.severity.value == "error" and f.code != "RANGE"]


def test_the_sites_default_reads_an_export_without_recognise(site_study, tmp_path):
    text = (site_study / "mappings" / "site08_vitals.toml").read_text().replace(
        '[recognise]\ncolumns = ["PATIENT", "VISITNAME", "TESTCODE", "RESULT"]\n', "")
    (site_study / "mappings" / "site08_vitals.toml").write_text(text)
    toml = (site_study / "study.toml").read_text()
    toml = toml.replace('id = "08"\ncity = "Cincinnati"', 'id = "08"\ncity = "Cincinnati"\nmappings = ["site08_vitals"]')
    (site_study / "study.toml").write_text(toml)
    study = load_study(site_study)
    assert study.sites["08"].mappings == ("site08_vitals",)
    path = _vitals(tmp_path)
    at_08 = import_files([path], study, site="08")
    assert len(at_08.forms["VS"]) == 2
    assert next(f for f in at_08.report.findings if f.code == "MAP-SPEC").evidence["chosen"] == "the site's default"
    at_01 = import_files([path], study, site="01")  # not site 01's system: no form recognised
    assert at_01.forms == {}


def test_explicit_mapping_on_the_command_line(site_study, tmp_path):
    path = _vitals(tmp_path)
    result = CliRunner().invoke(cli, ["--study", str(site_study), "validate", str(path), "--site", "08",
                                      "--mapping", "site08_vitals", "-f", "json"])
    assert result.exit_code == 1  # the HR range error
    data = json.loads(result.stdout)
    spec = next(f for f in data["findings"] if f["code"] == "MAP-SPEC")
    assert spec["evidence"]["chosen"] == "--mapping"
    unknown = CliRunner().invoke(cli, ["--study", str(site_study), "validate", str(path), "--mapping", "nope"])
    assert unknown.exit_code == 2 and "no mapping 'nope'" in unknown.output


def test_workspace_mappings_are_used_and_reimported(tmp_path):
    from trialkit.ledger import init_workspace

    study = load_study()
    ws = init_workspace(tmp_path / "ws", study.id)
    (ws.path / "mappings").mkdir()
    (ws.path / "mappings" / "site08_vitals.toml").write_text(VITALS_SPEC.replace("[recognise]\ncolumns = "
                                                             '["PATIENT", "VISITNAME", "TESTCODE", "RESULT"]\n', ""))
    text = VITALS_CSV.replace(";250;", ";80;")
    path = _vitals(tmp_path, text)
    runner = CliRunner()
    result = runner.invoke(cli, ["submit", str(path), "--site", "08", "--workspace", str(ws.path), "--mapping",
                                 "site08_vitals", "--accept-warnings", "-f", "json"])
    assert result.exit_code == 0, result.output
    submission = json.loads(result.stdout)
    again = ws.reimport(submission["id"], study)  # read through the same spec, by the recorded finding
    assert list(again.forms["VS"].data["WEIGHT"]) == [70.2, 71.0]
    assert again.forms["VS"].lineage["FILE"].iloc[0] == f"submission {submission['id']}: vitals_export.csv"
    listed = runner.invoke(cli, ["map", "list", "-f", "json"], env={"TRIALKIT_WORKSPACE": str(ws.path)})
    names = {m["name"]: m["origin"] for m in json.loads(listed.stdout)["mappings"]}
    assert names["site08_vitals"] == "workspace" and names["sdtm_vs"] == "study"


def test_join_and_split_of_date_and_time(tmp_path):
    study = load_study()
    spec = tmp_path / "ae_export.toml"
    spec.write_text('form = "AE"\n[variables]\nAESTDAT = { column = "ONSET", part = "date" }\n'
                    'AEENDAT = { column = "END_DATE", date = "%d.%m.%Y" }\n'
                    'AETERM = { column = "EVENT" }\n', encoding="utf-8")
    mapping, problems = read_spec(spec)
    assert problems == [] and check_spec(mapping, study.forms, study.codelists, study.missing_codes) == []
    csv_path = tmp_path / "ae.csv"
    csv_path.write_text("SITEID,SUBJID,EVENT,ONSET,END_DATE,AEONGO,AESER\n"
                        "01,01-001,Headache,2024-02-01T08:30,03.02.2024,N,N\n", encoding="utf-8")
    imported = import_files([csv_path], study, site="01", mapping="ae_export", mappings={"ae_export": mapping})
    ae = imported.forms["AE"].data
    assert ae["AESTDAT"].iloc[0] == pd.Timestamp("2024-02-01") and ae["AEENDAT"].iloc[0] == pd.Timestamp("2024-02-03")
    rules = set(imported.forms["AE"].changes["rule"])
    assert {"map:iso8601", "map:date:%d.%m.%Y"} <= rules


@pytest.mark.parametrize("text, message", [
    ('form = "VS"\n[variables]\nWEIGTH = { column = "W" }\n', "'WEIGTH' is not a variable of form VS; did you mean 'WEIGHT'?"),
    ('form = "VS"\ntittle = "x"\n[variables]\nWEIGHT = { column = "W" }\n', "unknown key 'tittle'; did you mean 'title'?"),
    ('form = "VS"\n[variables]\nWEIGHT = { colum = "W" }\n', "unknown key 'colum'; did you mean 'column'?"),
    ('form = "VX"\n[variables]\nWEIGHT = { column = "W" }\n', "form 'VX' is not a form of the study (forms: DM, MH"),
    ('form = "VS"\n[variables]\nWEIGHTU = { constant = "stone" }\n', "'stone' is not a code of WEIGHTU"),
    ('form = "VS"\n[variables]\nVISIT = { column = "V", recode = { Baseline = "DAY99" } }\n', "'DAY99' is not a code of VISIT"),
    ('form = "VS"\n[variables]\nWEIGHT = { column = "W", constant = "1" }\n', "give exactly one of column, constant or join"),
    ('form = "VS"\n[variables]\nWEIGHT = { column = "W", date = "%d.%m" }\n', "has no year"),
    ('form = "VS"\n[variables]\nWEIGHT = { column = "W", date = "iso8601" }\n', "'date' reads dates, but WEIGHT is a num"),
    ('form = "LB"\n[variables]\nLBSTRESN = { column = "X" }\n', "LBSTRESN is derived by trialkit"),
    ('form = "DM"\n[variables]\nBRTHYM = { column = ["BRTHYM", "BRTHDTC"] }\n', "part of a date of birth: read it from one"),
    ('form = "VS"\n[pivot]\ntest = "T"\nvalue = "V"\ntests = { PULSE = "HR" }\n', "[pivot] needs 'by'"),
    ('form = "VS"\n[pivot]\ntest = "T"\nvalue = "V"\nby = ["P"]\ntests = { WT = "WEIGHT", KG = "WEIGHT" }\n',
     "a second test for WEIGHT"),
])
def test_spec_validation_errors_name_the_file_key_and_fix(tmp_path, text, message):
    study = load_study()
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    mapping, problems = read_spec(path)
    if mapping is not None:
        problems = check_spec(mapping, study.forms, study.codelists, study.missing_codes)
    assert any(message in p for p in problems), problems
    assert all(p.startswith(str(path)) for p in problems)
    result = CliRunner().invoke(cli, ["map", "check", str(path)])
    assert result.exit_code == 1 and message in result.output


def test_a_broken_spec_in_the_study_folder_stops_the_study_from_loading(site_study):
    (site_study / "mappings" / "typo.toml").write_text('form = "VS"\n[variables]\nWEIGTH = { column = "W" }\n')
    with pytest.raises(StudyDefinitionError, match="typo.toml.*WEIGTH"):
        load_study(site_study)
    result = CliRunner().invoke(cli, ["study", "check", str(site_study)])
    assert result.exit_code == 1 and "did you mean 'WEIGHT'" in result.output


@pytest.mark.parametrize("old, new, message", [
    ('city = "Milan"', 'city = "Milan"\nmappings = ["nothere"]', "mapping 'nothere' is not a spec"),
    ("[redcap.checkboxes.aescrit]", "[redcap.checkboxes.aescrit]\nfrom = 'AE'", "unknown key 'from'"),
    ('variables = ["AESDTH", "AESLIFE"', 'variables = ["AETERM", "AESLIFE"', "'AETERM' is not a Y/N variable"),
    ("# ===", "[odm]\nstudy_oid = 'S'\n[odm.items]\n'AE.NOPE' = 'I1'\n# ===", "'AE.NOPE' is not FORM.VARIABLE"),
    ("# ===", "[odm]\nstudy_iod = 'S'\n# ===", "unknown key 'study_iod'"),
])
def test_study_toml_sections_of_this_issue_catch_typos(tmp_path, old, new, message):
    folder = tmp_path / "study"
    shutil.copytree(bundled_study_path(), folder, ignore=shutil.ignore_patterns("__pycache__"))
    toml = (folder / "study.toml").read_text()
    assert old in toml
    (folder / "study.toml").write_text(toml.replace(old, new, 1))
    with pytest.raises(StudyDefinitionError) as caught:
        load_study(folder)
    assert message in str(caught.value)


def test_map_suggest_proposes_a_spec_that_checks_and_reads(tmp_path, study):
    path = _vitals(tmp_path)
    out = tmp_path / "site08.toml"
    result = CliRunner().invoke(cli, ["map", "suggest", str(path), "--form", "VS", "--site", "08", "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert '[pivot]\ntest = "TESTCODE"\nvalue = "RESULT"\nunit = "UNIT"' in text
    assert '"HT" = "HEIGHT"' in text and '"WT" = "WEIGHT"' in text
    # 03/05/2024 reads both ways: the site's order (MDY at 08) is chosen, and the comment says so
    assert 'VSDAT = { column = "VISITDATE", date = "%m/%d/%Y" }  # the dates read as %d/%m/%Y or %m/%d/%Y' in text
    assert 'SUBJID = { column = "PATIENT" }' in text and 'SITEID = { constant = "08" }' in text
    assert 'VISIT = { column = "VISITNAME" }  # values with no code found: Baseline' in text
    assert "# not read (map them or leave them out): PULSE" in text
    checked = CliRunner().invoke(cli, ["map", "check", str(out)])
    assert checked.exit_code == 0, checked.output
    # -o refuses a file trialkit did not write, and replaces its own suggestion
    again = CliRunner().invoke(cli, ["map", "suggest", str(path), "--form", "VS", "-o", str(out)])
    assert again.exit_code == 0
    refused = CliRunner().invoke(cli, ["map", "suggest", str(path), "--form", "VS", "-o", str(path)])
    assert refused.exit_code == 2


def test_map_check_lists_what_fills_each_variable(study):
    path = bundled_study_path() / "mappings" / "sdtm_ae.toml"
    result = CliRunner().invoke(cli, ["map", "check", str(path), "-f", "json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    (spec,) = data["specs"]
    assert spec["problems"] == [] and spec["form"] == "AE"
    assert {"mapping": "sdtm_ae", "form": "AE", "variable": "AESTDAT", "source": "AESTDTC",
            "rule": "date iso8601"} in spec["rules"]


def test_the_readme_worked_example_reads_as_it_says(tmp_path):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### When a site sends its own system's export", 1)[1].split("\n### ", 1)[0]
    export = section.split("```\n", 2)[1].split("```", 1)[0]
    spec = section.split("```toml\n", 1)[1].split("```", 1)[0]
    folder = tmp_path / "study"
    shutil.copytree(bundled_study_path(), folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "mappings" / "site08_vitals.toml").write_text(spec, encoding="utf-8")
    study = load_study(folder)
    path = tmp_path / "vitals.csv"
    path.write_text(export, encoding="utf-8")
    imported = import_files([path], study, site="08")
    vs = imported.forms["VS"].data
    assert list(vs["VISIT"]) == ["D1", "W4"] and list(vs["WEIGHT"].fillna(-1)) == [70.2, -1]
    assert vs["TEMP"].iloc[0] == 37.0 and vs["HR"].iloc[1] == 72
    assert list(vs["VSDAT"]) == [pd.Timestamp("2024-03-05"), pd.Timestamp("2024-04-02")]
