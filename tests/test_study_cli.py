"""`trialkit study new` and `trialkit study check`, and the one catch-all for unexpected errors."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from trialkit.cli import COMMANDS, cli
from trialkit.demo import write_xlsx
from trialkit.study import load_study

from .test_second_study import SECOND


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_blank_study_runs_the_whole_pipeline(tmp_path):
    folder = tmp_path / "newtrial"
    result = invoke("study", "new", str(folder), "--blank", "--id", "NT-1", "-q")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(folder.resolve())
    study = load_study(folder)
    assert (study.id, list(study.forms), list(study.visits), list(study.sites)) == (
        "NT-1", ["ENROL", "OBS"], ["BASE", "FOLLOWUP"], ["01"])
    check = invoke("study", "check", str(folder), "-f", "json")
    assert check.exit_code == 0 and [p for p in json.loads(check.stdout)["problems"] if p["level"] == "error"] == []

    day1 = dt.date(2025, 3, 3)
    rows = {"ENROL": [{"SITEID": "01", "SUBJID": "01-001", "ENRDAT": day1, "SEX": "F"}],
            "OBS": [{"SITEID": "01", "SUBJID": "01-001", "VISIT": "BASE", "OBSDAT": day1, "WEIGHT": 61.5},
                    {"SITEID": "01", "SUBJID": "01-001", "VISIT": "FOLLOWUP", "OBSDAT": day1 + dt.timedelta(days=28),
                     "WEIGHT": 60.0}]}
    upload = write_xlsx(study, "01", rows, tmp_path / "upload.xlsx")
    ws = tmp_path / "ws"
    steps = [
        ("--study", str(folder), "template", "-o", str(tmp_path / "t.xlsx"), "-q"),
        ("--study", str(folder), "validate", str(upload), "--site", "1", "-q"),
        ("--study", str(folder), "init", str(ws), "-q"),
        ("submit", str(upload), "--site", "01", "--workspace", str(ws), "-q"),
        ("pool", "--workspace", str(ws), "-q"),
        ("report", "--workspace", str(ws), "-o", str(tmp_path / "r.html"), "-q"),
    ]
    for step in steps:
        result = invoke(*step)
        assert result.exit_code == 0, (step, result.output)
    # No analysis programs: the pool holds the forms (and the engine's missing-value reasons) only.
    assert sorted(p.name for p in (ws / "pooled").glob("*.parquet")) == ["enrol.parquet", "obs.parquet",
                                                                        "reasons.parquet"]
    assert (ws / "pooled" / "define.xml").is_file()
    assert "NT-1 — data-quality report" in (tmp_path / "r.html").read_text(encoding="utf-8")
    unblind = tmp_path / "arms.csv"
    unblind.write_text("RANDNO,ARM\nR1,A\n")
    result = invoke("pool", "--workspace", str(ws), "--unblind", str(unblind), "-o", str(tmp_path / "u"))
    assert result.exit_code == 2 and "declares no arms" in result.output


def test_new_copies_the_bundled_study_or_another(tmp_path, study):
    copy = tmp_path / "copy"
    assert invoke("study", "new", str(copy), "--id", "ANK-NEXT", "-q").exit_code == 0
    copied = load_study(copy)
    assert copied.id == "ANK-NEXT" and list(copied.forms) == list(study.forms)
    assert (copy / "analysis" / "adsl.py").is_file() and not list(copy.rglob("__pycache__"))
    other = tmp_path / "other"
    assert invoke("study", "new", str(other), "--from", str(SECOND), "-q").exit_code == 0
    assert load_study(other).id == "BPX-201"


def test_new_refuses_a_used_folder_and_bad_options(tmp_path):
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    result = invoke("study", "new", str(used), "--blank")
    assert result.exit_code == 2 and "not an empty folder" in result.output
    assert (used / "notes.txt").read_text() == "mine"
    result = invoke("study", "new", str(tmp_path / "x"), "--blank", "--from", str(SECOND))
    assert result.exit_code == 2 and "cannot be combined" in result.output


def test_check_lists_every_problem_and_exits_1(tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(SECOND, folder, ignore=shutil.ignore_patterns("__pycache__"))
    toml = folder / "study.toml"
    text = toml.read_text(encoding="utf-8")
    toml.write_text(text.replace('city = "Oslo"', 'cty = "Oslo"').replace('protocol_version = "2.0"',
                                                                        'protocol_versoin = "2.0"'), encoding="utf-8")
    result = invoke("study", "check", str(folder))
    assert result.exit_code == 1
    assert "unknown key 'cty'; did you mean 'city'?" in result.stdout
    assert "unknown key 'protocol_versoin'; did you mean 'protocol_version'?" in result.stdout
    assert "does not load" in result.stderr


def test_check_finds_a_broken_plugin(tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(SECOND, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "analysis" / "__init__.py").write_text("def derive_datasets(study, forms, **kw):\n    return 1 / 0\n")
    result = invoke("study", "check", str(folder), "-f", "json")
    assert result.exit_code == 1
    assert any("analysis plug-in fails on a study with no data yet: ZeroDivisionError" in p["message"]
               for p in json.loads(result.stdout)["problems"])


def test_unexpected_errors_are_exit_3_with_a_short_message(tmp_path):
    folder = tmp_path / "buggy"
    shutil.copytree(SECOND, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "analysis" / "__init__.py").write_text("def derive_datasets(study, forms, **kw):\n    return 1 / 0\n")
    study = load_study(folder)
    upload = write_xlsx(study, "101", {"ENROL": [{"SITEID": "101", "SUBJID": "101-0001", "ENRDAT": dt.date(2025, 1, 2),
                                                  "AGEYRS": 40, "SEX": "F", "RANDNO": "R1"}]}, tmp_path / "u.xlsx")
    ws = tmp_path / "ws"
    invoke("--study", str(folder), "init", str(ws), "-q")
    invoke("submit", str(upload), "--site", "101", "--workspace", str(ws), "-q")
    result = invoke("pool", "--workspace", str(ws), "-q")
    assert result.exit_code == 3
    assert "unexpected error: ZeroDivisionError: division by zero" in result.output
    assert "Traceback" not in result.output
    debug = invoke("--debug", "pool", "--workspace", str(ws), "-q")
    assert debug.exit_code == 3 and "Traceback (most recent call last)" in debug.stderr


def test_study_and_codes_commands_are_registered():
    assert "study" in COMMANDS and "codes" in COMMANDS
    result = invoke("study", "--help")
    assert result.exit_code == 0 and "new" in result.stdout and "check" in result.stdout


def test_study_check_of_the_bundled_study_is_clean(study):
    result = invoke("study", "check", "-f", "json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["study"]["id"] == study.id and report["problems"] == []


def test_copied_definition_has_the_same_hash_wherever_it_lies(tmp_path, study):
    target = tmp_path / "elsewhere"
    shutil.copytree(study.path, target, ignore=shutil.ignore_patterns("__pycache__"))
    assert load_study(target).definition_hash == study.definition_hash
    (target / "notes.md").write_text("a change")
    assert load_study(target).definition_hash != study.definition_hash
    assert Path(study.path).name in ("schemas", "_bundled_study")
