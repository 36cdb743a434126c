"""The workspace binds its study: later commands use it, another study is refused, an amendment
(the same study, a changed definition) is accepted and recorded, and each build names its versions."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from trialkit.cli import cli
from trialkit.demo import write_xlsx
from trialkit.ledger import open_workspace
from trialkit.study import load_study
from trialkit.study.binding import current_binding, history

from .test_second_study import SECOND, records


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture()
def second_copy(tmp_path) -> Path:
    target = tmp_path / "bpx"
    shutil.copytree(SECOND, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def amend(folder: Path, version: str) -> None:
    toml = folder / "study.toml"
    text = toml.read_text(encoding="utf-8")
    text = text.replace('protocol_version = "2.0"', f'protocol_version = "{version}"')
    toml.write_text(text.replace("window_lo = 22\nwindow_hi = 36", "window_lo = 20\nwindow_hi = 38"), encoding="utf-8")


def test_init_binds_and_later_commands_use_the_bound_study(tmp_path, second_copy):
    ws = tmp_path / "ws"
    assert invoke("--study", str(second_copy), "init", str(ws), "-q").exit_code == 0
    settings = (ws / "trialkit-workspace.toml").read_text()
    assert 'study_id = "BPX-201"' in settings and 'protocol_version = "2.0"' in settings
    binding = current_binding(open_workspace(ws))
    assert binding["study_id"] == "BPX-201" and binding["definition_hash"] == load_study(second_copy).definition_hash
    # The original folder moves away: the workspace keeps working from its own copy.
    moved = tmp_path / "moved"
    second_copy.rename(moved)
    upload = write_xlsx(load_study(moved), "101", records("101", dt.date(2025, 1, 6)), tmp_path / "u.xlsx")
    result = invoke("submit", str(upload), "--site", "101", "--workspace", str(ws), "-f", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["study_id"] == "BPX-201"


def test_another_study_is_refused(tmp_path, second_copy, fake_study):
    ws = tmp_path / "ws"
    invoke("init", str(ws), "--study", str(second_copy), "-q")
    result = invoke("log", "--workspace", str(ws), "--site", "101", "--study", str(fake_study.path))
    assert result.exit_code == 2
    assert "is for study BPX-201, not FAKE-01" in result.output
    # The environment variable counts as naming the study.
    result = CliRunner().invoke(cli, ["log", "--workspace", str(ws), "--site", "101"],
                                env={"TRIALKIT_STUDY": str(fake_study.path)})
    assert result.exit_code == 2 and "not FAKE-01" in result.output


def test_an_amendment_is_accepted_recorded_and_named_in_the_build(tmp_path, second_copy):
    ws = tmp_path / "ws"
    invoke("--study", str(second_copy), "init", str(ws), "-q")
    study = load_study(second_copy)
    first = write_xlsx(study, "101", records("101", dt.date(2025, 1, 6)), tmp_path / "v1.xlsx")
    assert invoke("submit", str(first), "--site", "101", "--workspace", str(ws), "-q").exit_code == 0
    before = load_study(second_copy).definition_hash

    amend(second_copy, "2.1")  # the same study, a changed definition
    amended = load_study(second_copy)
    assert amended.definition_hash != before and amended.schema_hash == study.schema_hash
    later = write_xlsx(amended, "102", records("102", dt.date(2025, 2, 3)), tmp_path / "v2.xlsx")
    result = invoke("--study", str(second_copy), "submit", str(later), "--site", "102", "--workspace", str(ws),
                    "-f", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["study_version"] == "2.1"

    workspace = open_workspace(ws)
    amendments = [a for a in workspace.audit() if a["action"] == "study-amended"]
    assert len(amendments) == 1
    detail = amendments[0]["detail"]
    assert (detail["old"]["protocol_version"], detail["new"]["protocol_version"]) == ("2.0", "2.1")
    assert (detail["old"]["definition_hash"], detail["new"]["definition_hash"]) == (before, amended.definition_hash)
    assert [h["protocol_version"] for h in history(workspace)] == ["2.0", "2.1"]
    # Both versions are kept in the workspace.
    assert len(list((ws / "studies").iterdir())) == 2

    # From now on the amended definition is the bound one; a pool names both versions it contains.
    assert invoke("pool", "--workspace", str(ws), "-q").exit_code == 0
    manifest = json.loads((ws / "pooled" / "manifest.json").read_text())
    assert manifest["study"]["protocol_version"] == "2.1"
    assert manifest["study"]["protocol_versions"] == ["2.0", "2.1"]
    assert {i["site"]: i["protocol_version"] for i in manifest["inputs"]} == {"101": "2.0", "102": "2.1"}
    # The same definition again records nothing new.
    invoke("--study", str(second_copy), "log", "--workspace", str(ws), "--site", "101")
    assert len([a for a in open_workspace(ws).audit() if a["action"] == "study-amended"]) == 1


def test_a_workspace_whose_definition_vanished_says_what_to_do(tmp_path, second_copy):
    ws = tmp_path / "ws"
    invoke("--study", str(second_copy), "init", str(ws), "-q")
    for path in (ws / "studies").rglob("*"):
        if path.is_file():
            path.chmod(0o644)
    shutil.rmtree(ws / "studies")
    shutil.rmtree(second_copy)
    result = invoke("report", "--workspace", str(ws), "-o", str(tmp_path / "r.html"))
    assert result.exit_code == 3
    assert "bound to BPX-201 2.0" in result.output and "--study PATH" in result.output


def test_group_option_and_command_option(tmp_path, second_copy, fake_study):
    # `trialkit --study PATH CMD` and `trialkit CMD --study PATH`; the one after the command wins.
    before = invoke("--study", str(second_copy), "dictionary", "-f", "json")
    after = invoke("dictionary", "-f", "json", "--study", str(second_copy))
    both = invoke("--study", str(fake_study.path), "dictionary", "-f", "json", "--study", str(second_copy))
    assert json.loads(before.stdout)["study"]["id"] == "BPX-201"
    assert json.loads(after.stdout) == json.loads(before.stdout) == json.loads(both.stdout)


def test_commands_without_a_workspace_option_use_the_bound_study_too(tmp_path, second_copy):
    ws = tmp_path / "ws"
    invoke("--study", str(second_copy), "init", str(ws), "-q")
    # With TRIALKIT_WORKSPACE (or inside the workspace folder), `template` and `dictionary` use BPX-201.
    env = {"TRIALKIT_WORKSPACE": str(ws)}
    result = CliRunner().invoke(cli, ["dictionary", "-f", "json"], env=env)
    assert json.loads(result.stdout)["study"]["id"] == "BPX-201"
    result = CliRunner().invoke(cli, ["template", "-o", str(tmp_path / "t.xlsx"), "-q"], env=env)
    assert result.exit_code == 0
    from openpyxl import load_workbook

    assert load_workbook(tmp_path / "t.xlsx").sheetnames[1:4] == ["ENROL", "VITALS", "DOSING"]
    # Naming a study still wins; without a workspace the bundled study is the default.
    result = CliRunner().invoke(cli, ["dictionary", "-f", "json", "--study", str(load_study().path)], env=env)
    assert json.loads(result.stdout)["study"]["id"] == "ANK-SJIA-01"
    assert json.loads(invoke("dictionary", "-f", "json").stdout)["study"]["id"] == "ANK-SJIA-01"

