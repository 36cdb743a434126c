"""CDISC ODM 1.3.2: the study's MetaDataVersion is schema-valid; ClinicalData is read safely, with XML lineage."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from tests import odm_data, site_data
from trialkit.cli import cli
from trialkit.importers.limits import Limits
from trialkit.importers.reader import import_files, read_file
from trialkit.odm import metadata_xml, study_oids
from trialkit.study import bundled_study_path, load_study
from trialkit.validate import validate


def _schema():
    xmlschema = pytest.importorskip("xmlschema", reason="xmlschema comes with the test extra")
    odmlib = pytest.importorskip("odmlib", reason="odmlib (the ODM 1.3.2 schema) comes with the test extra")
    xsd = Path(odmlib.__file__).parent / "schemas" / "odm" / "1.3.2" / "ODM1-3-2.xsd"
    if not xsd.is_file():
        pytest.skip(f"odmlib has no ODM 1.3.2 schema at {xsd}")
    return xmlschema.XMLSchema(str(xsd))


def test_metadata_is_valid_against_the_odm_132_schema(tmp_path, study):
    schema = _schema()
    out = tmp_path / "study.xml"
    result = CliRunner().invoke(cli, ["odm", "metadata", "-o", str(out)])
    assert result.exit_code == 0, result.output
    errors = list(schema.iter_errors(str(out)))
    assert errors == []
    text = out.read_text()
    assert '<ItemDef OID="IT.VS.WEIGHT" Name="WEIGHT" DataType="float" Length="12"' in text
    assert '<RangeCheck Comparator="LE" SoftHard="Hard"><CheckValue>200</CheckValue></RangeCheck>' in text
    assert '<ItemDef OID="IT.DM.BRTHYM" Name="BRTHYM" DataType="partialDate"' in text
    assert '<ItemGroupDef OID="IG.AE" Name="Adverse events" Repeating="Yes"' in text
    assert 'ItemOID="IT.AE.AESTDAT" OrderNumber="3" Mandatory="Yes" KeySequence="2"' in text
    assert '<CodeListItem CodedValue="M"><Decode><TranslatedText xml:lang="en">Male</TranslatedText>' in text
    # a schema violation is caught by the same check (the test can fail)
    broken = text.replace('DataType="float"', 'DataType="decimal"', 1)
    assert list(schema.iter_errors(broken))
    # another study's metadata is valid too, and -o replaces only what trialkit wrote
    again = CliRunner().invoke(cli, ["odm", "metadata", "-o", str(out)])
    assert again.exit_code == 0
    foreign = tmp_path / "theirs.xml"
    foreign.write_text('<?xml version="1.0"?><ODM/>')
    assert CliRunner().invoke(cli, ["odm", "metadata", "-o", str(foreign)]).exit_code == 2


def test_metadata_of_the_second_study_is_valid(study):
    schema = _schema()
    other = load_study(Path(__file__).parent / "second_study")
    created = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert list(schema.iter_errors(metadata_xml(other, created=created))) == []
    assert metadata_xml(study, created=created) == metadata_xml(study, created=created)


def _odm(tmp_path: Path, study, records=None, name="clinical.xml", **kw) -> Path:
    path = tmp_path / name
    path.write_text(odm_data.clinical_data(study, records or site_data.subjects("01", [1, 2]), **kw), encoding="utf-8")
    return path


@pytest.mark.parametrize("one_line", [False, True], ids=["lines", "one-line"])
def test_clinical_data_reads_like_the_same_records_in_a_workbook(tmp_path, study, one_line):
    records = site_data.subjects("01", [1, 2])
    path = _odm(tmp_path, study, records, one_line=one_line)
    imported = import_files([path], study, site="01")
    report = validate(study, imported, site="01")
    assert [f for f in report.findings if f.severity.value != "info"] == []
    assert next(f for f in report.findings if f.code == "MAP-ODM")
    reference = import_files([site_data.workbook(study, tmp_path / "same.xlsx", records)], study, site="01")
    assert set(imported.forms) == {c for c, f in reference.forms.items() if len(f)}
    for code in imported.forms:
        keys = list(study.forms[code].keys)
        ours = imported.forms[code].data.sort_values(keys).reset_index(drop=True)
        theirs = reference.forms[code].data.sort_values(keys).reset_index(drop=True)
        pd.testing.assert_frame_equal(ours, theirs, obj=code)
    assert imported.files[0]["format"] == "odm"


def test_a_finding_names_the_xml_path_and_line(tmp_path, study):
    records = site_data.subjects("01", [1])
    records["VS"][0]["WEIGHT"] = 500
    path = _odm(tmp_path, study, records)
    report = validate(study, import_files([path], study, site="01"), site="01")
    (error,) = [f for f in report.findings if f.severity.value == "error"]
    line = next(i for i, text in enumerate(path.read_text().splitlines(), start=1) if 'Value="500"' in text)
    assert (error.code, error.variable, error.row) == ("RANGE", "WEIGHT", line)
    source = error.evidence["source"]["path"]
    assert source.startswith("/ODM/ClinicalData[@StudyOID='ANK-SJIA-01']/SubjectData[@SubjectKey='01-001']/")
    assert f"ItemData[@ItemOID='IT.VS.WEIGHT'], line {line}" in source and source in error.message


def test_another_study_unknown_oids_and_removals(tmp_path, study):
    foreign = validate(study, import_files([_odm(tmp_path, study, study_oid="OTHER-STUDY")], study, site="01"), site="01")
    assert [f.code for f in foreign.findings if f.severity.value == "error"] == ["MAP-ODM-STUDY"]
    text = odm_data.clinical_data(study, site_data.subjects("01", [1]), extra_items={"IT.VS.BMI": "15.2"})
    text = text.replace('ItemGroupOID="IG.FEVER"', 'ItemGroupOID="IG.DIARY"').replace('"F.FEVER"', '"F.DIARY"')
    text = text.replace('<ItemGroupData ItemGroupOID="IG.CM" ItemGroupRepeatKey="1">',
                        '<ItemGroupData ItemGroupOID="IG.CM" ItemGroupRepeatKey="1" TransactionType="Remove">')
    path = tmp_path / "odd.xml"
    path.write_text(text)
    imported = import_files([path], study, site="01")
    findings = {(f.code, f.value) for f in imported.report.findings if f.code.startswith("MAP-ODM")}
    assert ("MAP-ODM-OID", "IT.VS.BMI") in findings and ("MAP-ODM-OID", "IG.DIARY") in findings
    assert any(f.code == "MAP-ODM-REMOVE" for f in imported.report.findings)
    assert len(imported.forms["CM"]) == 2  # 3 records, the removed one not read
    assert "FEVER" not in imported.forms


def test_declared_oids_read_another_systems_export(tmp_path):
    folder = tmp_path / "study"
    shutil.copytree(bundled_study_path(), folder, ignore=shutil.ignore_patterns("__pycache__"))
    toml = (folder / "study.toml").read_text()
    toml = toml.replace("# ===", '[odm]\nstudy_oid = "S_ANK01"\n[odm.item_groups]\nDM = "IG_DEMOG"\n'
                        '[odm.items]\n"DM.SEX" = "I_DM_SEX"\n# ===', 1)
    (folder / "study.toml").write_text(toml)
    study = load_study(folder)
    oids = study_oids(study)
    assert (oids.study, oids.item_groups["DM"], oids.items[("DM", "SEX")]) == ("S_ANK01", "IG_DEMOG", "I_DM_SEX")
    records = {"DM": site_data.subjects("01", [1])["DM"]}
    imported = import_files([_odm(tmp_path, study, records)], study, site="01")
    assert list(imported.forms["DM"].data["SEX"]) == [records["DM"][0]["SEX"]]
    oids_cli = CliRunner().invoke(cli, ["--study", str(folder), "odm", "oids", "-f", "json"])
    assert json.loads(oids_cli.stdout)["items"]["DM.SEX"] == "I_DM_SEX"


BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3"><ClinicalData StudyOID="ANK-SJIA-01">
<SubjectData SubjectKey="&lol3;"/></ClinicalData></ODM>
"""
EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE ODM [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3"><ClinicalData StudyOID="ANK-SJIA-01">
<SubjectData SubjectKey="&secret;"/></ClinicalData></ODM>
"""


@pytest.mark.parametrize("text", [BOMB, EXTERNAL], ids=["entity-bomb", "external-entity"])
def test_hostile_odm_is_refused_as_a_file_finding(tmp_path, study, text):
    path = tmp_path / "hostile.xml"
    path.write_text(text)
    started = time.perf_counter()
    read = read_file(path)
    assert time.perf_counter() - started < 5
    (finding,) = read.findings
    assert (finding.code, finding.category.value, finding.severity.value) == ("IMP-XML-DOCTYPE", "file", "error")
    assert read.format == "odm" and not read.tables
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    assert result.exit_code == 1 and "IMP-XML-DOCTYPE" in result.output and "root:" not in result.output


def test_huge_and_broken_odm_are_refused(tmp_path, study):
    path = _odm(tmp_path, study)
    small = Limits(max_rows=50)
    read = read_file(path, limits=small)
    assert [f.code for f in read.findings] == ["IMP-LIMIT-ROWS"] and not read.tables
    long_value = _odm(tmp_path, study, name="long.xml", extra_items={"IT.DM.X": "x" * 40_000})
    assert [f.code for f in read_file(long_value).findings] == ["IMP-LIMIT-STRING"]
    broken = tmp_path / "broken.xml"
    broken.write_text(path.read_text()[:2000])
    (finding,) = read_file(broken).findings
    assert finding.code == "IMP-ODM-XML" and finding.row is not None and "not well-formed" in finding.message


def test_an_odm_upload_submits_and_pools_from_the_archive(tmp_path, study):
    from trialkit.ledger import init_workspace
    from trialkit.records import submission_records

    ws = init_workspace(tmp_path / "ws", study.id)
    path = _odm(tmp_path, study)
    imported = import_files([path], study, site="01")
    report = validate(study, imported, site="01")
    submission = ws.submit([path], "01", report, records=submission_records(imported.forms, study), study=study)
    assert submission.status == "accepted"
    again = ws.reimport(submission.id, study)
    assert again.forms["VS"].data.equals(imported.forms["VS"].data)
