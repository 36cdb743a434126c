"""REDCap: the CRF as a data dictionary REDCap imports, and record exports read back through it."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from tests import redcap_data, site_data
from trialkit.cli import cli
from trialkit.importers.reader import import_files
from trialkit.validate import validate


@pytest.fixture(scope="module")
def project_files(tmp_path_factory):
    """The dictionary, events, instrument-event mapping and repeating instruments, written by the CLI."""
    folder = tmp_path_factory.mktemp("redcap")
    paths = {name: folder / f"{name}.csv" for name in ("dictionary", "events", "mapping", "repeating")}
    result = CliRunner().invoke(cli, ["redcap", "dictionary", "-o", str(paths["dictionary"]), "--events",
                                      str(paths["events"]), "--instrument-events", str(paths["mapping"]),
                                      "--repeating", str(paths["repeating"])])
    assert result.exit_code == 0, result.output
    return paths


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_the_dictionary_has_redcaps_18_columns_as_in_real_redcap_dictionaries(project_files, corpus):
    with open(corpus / "redcapr__validation-types-1__dictionary.csv", newline="", encoding="utf-8") as handle:
        real_header = next(csv.reader(handle))
    with open(project_files["dictionary"], newline="", encoding="utf-8") as handle:
        ours = next(csv.reader(handle))
    assert ours == real_header and len(ours) == 18
    real = _rows(corpus / "redcapr__validation-types-1__dictionary.csv")
    fields = _rows(project_files["dictionary"])
    assert {f["Field Type"] for f in fields} <= {f["Field Type"] for f in real}
    assert {f["Text Validation Type OR Show Slider Number"] for f in fields} <= \
        {f["Text Validation Type OR Show Slider Number"] for f in real}
    # pandas (another reader) sees 18 columns and one row per field
    frame = pd.read_csv(project_files["dictionary"], dtype=str, keep_default_na=False)
    assert frame.shape == (len(fields), 18)


def test_fields_follow_redcaps_rules(project_files, study):
    fields = _rows(project_files["dictionary"])
    names = [f["Variable / Field Name"] for f in fields]
    assert names[0] == "subjid" and fields[0]["Form Name"] == "dm" and names[1] == "siteid"
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", n) for n in names)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", f["Form Name"]) for f in fields)
    by_name = {f["Variable / Field Name"]: f for f in fields}
    sex = by_name["sex"]
    assert (sex["Field Type"], sex["Choices, Calculations, OR Slider Labels"], sex["Required Field?"]) == \
        ("dropdown", "1, Male | 2, Female", "y")
    weight = by_name["weight"]
    assert (weight["Text Validation Type OR Show Slider Number"], weight["Text Validation Min"],
            weight["Text Validation Max"], weight["Field Note"]) == ("number", "8", "200", "kg")
    assert by_name["sysbp"]["Text Validation Type OR Show Slider Number"] == "integer"
    assert by_name["icdat"]["Text Validation Type OR Show Slider Number"] == "date_ymd"
    assert by_name["brthym"]["Field Note"] == "YYYY-MM" and by_name["aeser"]["Field Type"] == "yesno"
    # conditional requirements as branching logic where REDCap can express them
    assert by_name["aeendat"]["Branching Logic (Show field only if...)"] == "[aeongo] <> '1'"
    assert by_name["aerptdat"]["Branching Logic (Show field only if...)"] == "[aeser] = '1'"
    assert by_name["lborres"]["Branching Logic (Show field only if...)"] == "[lbstat] <> '1'"
    assert by_name["lborres"]["Text Validation Type OR Show Slider Number"] == ""  # "<1" must stay typable
    assert "required for CRP, ESR, AST, ALT" in by_name["lbnrlo"]["Field Note"]
    # the six seriousness criteria are one checkbox field
    crit = by_name["aescrit"]
    assert crit["Field Type"] == "checkbox" and crit["Choices, Calculations, OR Slider Labels"].startswith(
        "1, Serious: results in death | 2, Serious: life-threatening")
    assert "aesdth" not in by_name
    # fields shared by two forms are prefixed; derived variables are left out
    assert {"core_rash", "mh_rash", "rand_kitno", "ex_kitno"} <= set(names) and "lbstresn" not in names
    assert "visit" not in names and "vs_visit" not in names  # the visit is the event


def test_events_and_instruments(project_files, study):
    events = _rows(project_files["events"])
    assert [e["unique_event_name"] for e in events][:3] == ["scr_arm_1", "d1_arm_1", "w1_arm_1"]
    w8 = next(e for e in events if e["event_name"] == "W8")
    assert (w8["day_offset"], w8["offset_min"], w8["offset_max"]) == ("57", "7", "7")
    mapping = {(m["unique_event_name"], m["form"]) for m in _rows(project_files["mapping"])}
    assert ("w4_arm_1", "core") in mapping and ("w1_arm_1", "core") not in mapping  # CORE is not at W1
    assert ("scr_arm_1", "dm") in mapping and ("w4_arm_1", "dm") not in mapping
    repeating = {(r["event_name"], r["form_name"]) for r in _rows(project_files["repeating"])}
    assert ("scr_arm_1", "ae") in repeating and ("w4_arm_1", "lb") in repeating and ("w4_arm_1", "vs") not in repeating


def _records():
    records = site_data.subjects("01", [1, 2])
    for row in records["AE"]:  # a checkbox says N for every box not ticked
        if row.get("AESER") == "Y":
            for name in ("AESDTH", "AESLIFE", "AESHOSP", "AESDISAB", "AESCONG", "AESMIE"):
                row[name] = row.get(name) or "N"
    return records


@pytest.mark.parametrize("labels", [False, True], ids=["raw", "labels"])
def test_record_export_round_trip(project_files, study, tmp_path, labels):
    records = _records()
    export = tmp_path / "redcap_export.csv"
    export.write_text(redcap_data.build_export(project_files["dictionary"], project_files["mapping"],
                                               project_files["repeating"], records, study, labels=labels))
    imported = import_files([export], study, site="01")
    report = validate(study, imported, site="01")
    assert [f for f in report.findings if f.severity.value != "info"] == []
    recognised = next(f for f in report.findings if f.code == "MAP-REDCAP")
    assert ("with labels" in recognised.message) == labels
    reference = import_files([site_data.workbook(study, tmp_path / "same.xlsx", records)], study, site="01")
    assert set(imported.forms) == {code for code, form_data in reference.forms.items() if len(form_data)}
    for code in imported.forms:
        form_data = reference.forms[code]
        keys = list(study.forms[code].keys)
        ours = imported.forms[code].data.sort_values(keys).reset_index(drop=True)
        theirs = form_data.data.sort_values(keys).reset_index(drop=True)
        pd.testing.assert_frame_equal(ours, theirs, check_dtype=True, obj=code)
    # lineage: the CSV line and the export's own column
    vs = imported.forms["VS"]
    assert vs.lineage["FILE"].iloc[0] == str(export) and vs.lineage["ROW"].iloc[0] == 2


def test_a_value_finding_names_the_line_and_field_of_the_export(project_files, study, tmp_path):
    records = _records()
    records["VS"][1]["WEIGHT"] = 500
    export = tmp_path / "export.csv"
    export.write_text(redcap_data.build_export(project_files["dictionary"], project_files["mapping"],
                                               project_files["repeating"], records, study))
    report = validate(study, import_files([export], study, site="01"), site="01")
    (error,) = [f for f in report.findings if f.code == "RANGE"]
    line = next(i for i, text in enumerate(export.read_text().splitlines(), start=1) if ",500," in text)
    assert (error.code, error.variable, error.row) == ("RANGE", "WEIGHT", line)
    assert error.evidence["source"]["column"] == "weight"


def test_unknown_events_and_columns_are_one_finding_each(project_files, study, tmp_path):
    text = redcap_data.build_export(project_files["dictionary"], project_files["mapping"],
                                    project_files["repeating"], _records(), study)
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    frame.loc[frame["redcap_event_name"] == "w4_arm_1", "redcap_event_name"] = "week_4_arm_1"
    frame["my_notes"] = "seen"
    path = tmp_path / "export.csv"
    frame.to_csv(path, index=False)
    report = validate(study, import_files([path], study, site="01"), site="01")
    events = [f for f in report.findings if f.code == "MAP-REDCAP-EVENT"]
    assert [(f.value, f.evidence["rows"]) for f in events] == [("week_4_arm_1", int((frame["redcap_event_name"]
                                                                                   == "week_4_arm_1").sum()))]
    unmapped = [f for f in report.findings if f.code == "MAP-COLUMN-UNMAPPED"]
    assert [(f.value, f.evidence["values"]) for f in unmapped] == [("my_notes", len(frame))]


def test_json_and_the_output_guard(tmp_path, corpus):
    result = CliRunner().invoke(cli, ["redcap", "dictionary", "-f", "json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["record_id"] == "subjid" and data["fields"][0]["name"] == "subjid"
    assert {i["name"] for i in data["instruments"] if i["repeating"]} >= {"ae", "cm", "lb", "ja"}
    out = tmp_path / "dictionary.csv"
    assert CliRunner().invoke(cli, ["redcap", "dictionary", "-o", str(out)]).exit_code == 0
    assert CliRunner().invoke(cli, ["redcap", "dictionary", "-o", str(out)]).exit_code == 0  # its own: replaced
    theirs = tmp_path / "theirs.csv"
    theirs.write_bytes((corpus / "redcapr__validation-types-1__dictionary.csv").read_bytes())
    refused = CliRunner().invoke(cli, ["redcap", "dictionary", "-o", str(theirs)])
    assert refused.exit_code == 2 and theirs.read_bytes() == (corpus / "redcapr__validation-types-1__dictionary.csv").read_bytes()


def test_a_real_redcap_dictionary_is_not_a_record_export(corpus, study):
    imported = import_files([corpus / "redcapr__validation-types-1__dictionary.csv"], study)
    assert imported.forms == {} and not [f for f in imported.report.findings if f.code.startswith("MAP-")]
