"""Blinding holds under mistakes: where an unblinded pool may go, and what its list must say.

Issue 11 found ``pool --unblind`` without ``-o`` writing ARM into the workspace's blinded ``pooled/``
folder; a killed unblinded pool leaving ``pooled.tmp-*/adsl.parquet`` with ARM for ever; and a
randomisation list whose numbers match nobody giving ARM empty for everyone, exit 0. Each mistake is
now refused with exit 2 naming it, before anything is written or recorded (the killed pool is in
``tests/test_crash.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from trialkit.cli import cli
from trialkit.ledger import open_workspace
from trialkit.pool import check_randomisation, read_randlist

from .site_data import subjects, workbook

CUT = "2024-04-12"


def run(*args: str, expect: int | None = None):
    result = CliRunner().invoke(cli, list(args))
    if expect is not None:
        assert result.exit_code == expect, (args, result.output, result.exception)
    return result


@pytest.fixture(scope="module")
def trial(tmp_path_factory, study):
    """Site 01 with subjects 01-001 (R0101) and 01-002 (R0102), pooled blinded in ws/pooled."""
    root = tmp_path_factory.mktemp("unblinding")
    ws = root / "ws"
    run("init", str(ws), "-q", expect=0)
    upload = workbook(study, root / "site01.xlsx", subjects("01", [1, 2]))
    run("submit", str(upload), "--site", "01", "--workspace", str(ws), "--accept-warnings", "--data-cut", CUT,
        "-q", expect=0)
    run("pool", "--workspace", str(ws), "-q", expect=0)
    return root


def randlist(folder: Path, text: str) -> Path:
    path = folder / f"randlist-{abs(hash(text))}.csv"
    path.write_text(text)
    return path


def unblinds(trial: Path) -> int:
    return sum(1 for e in open_workspace(trial / "ws").audit() if e["action"] == "unblind")


def refused(trial: Path, *args: str, says: str) -> None:
    before = unblinds(trial)
    pooled = {p.name: p.read_bytes() for p in (trial / "ws" / "pooled").iterdir()}
    result = run("pool", "--workspace", str(trial / "ws"), "-q", *args)
    assert result.exit_code == 2, result.output
    assert says in result.stderr, result.stderr
    assert unblinds(trial) == before
    assert {p.name: p.read_bytes() for p in (trial / "ws" / "pooled").iterdir()} == pooled


GOOD = "RANDNO,ARM\nR0101,ANAKINRA\nR0102,PLACEBO\n"


def test_unblinding_without_an_output_folder_outside_the_workspace_is_refused(trial):
    good = randlist(trial, GOOD)
    refused(trial, "--unblind", str(good), says="-o")
    refused(trial, "--unblind", str(good), "-o", str(trial / "ws" / "pooled"), says="outside the workspace")
    refused(trial, "--unblind", str(good), "-o", str(trial / "ws" / "unblinded"), says="outside the workspace")


@pytest.mark.parametrize(("text", "says"), [
    ("RANDNO,ARM\nR9901,ANAKINRA\nR9902,PLACEBO\n", "01-001 (R0101)"),
    ("RANDNO,ARM\nR0101,ANAKINRA\n", "01-002 (R0102) has no arm"),
    ("RANDNO,ARM\nR0101,ANAKINRA\nR0102,PLACEBO\nR0103,PLACEBO\n", "R0103 matches no randomisation"),
    ("RANDNO,ARM\nR0101,ANAKINRA\nR0102,ACTIVE\n", "ACTIVE is not an arm of ANK-SJIA-01"),
    ("RANDNO,ARM\nR0101,ANAKINRA\nR0101,PLACEBO\nR0102,PLACEBO\n", "more than once: R0101"),
    ("RANDNO;ARM\nR0101;ANAKINRA\n", "needs columns RANDNO and ARM"),
])
def test_a_randomisation_list_that_does_not_match_is_refused_before_anything_is_written(trial, text, says):
    out = trial / "unblinded-bad"
    refused(trial, "--unblind", str(randlist(trial, text)), "-o", str(out), says=says)
    assert not out.exists()
    assert not list(trial.glob("unblinded-bad.tmp-*"))


def test_a_matching_list_unblinds_outside_the_workspace(trial):
    out = trial / "unblinded"
    run("pool", "--workspace", str(trial / "ws"), "--unblind", str(randlist(trial, GOOD)), "-o", str(out), "-q",
        expect=0)
    adsl = pd.read_parquet(out / "adsl.parquet")
    assert dict(zip(adsl["SUBJID"], adsl["ARM"], strict=True)) == {"01-001": "ANAKINRA", "01-002": "PLACEBO"}
    assert json.loads((out / "manifest.json").read_text())["unblinded"] is True


def test_a_pool_removes_the_leftovers_of_its_own_killed_runs(trial):
    out = trial / "again"
    staged = trial / "again.tmp-dead1234"
    staged.mkdir()
    (staged / "adsl.parquet").write_bytes(b"ARM left by a killed run")
    old = trial / "again.old-dead5678"
    old.mkdir()
    (old / "manifest.json").write_text("{}")
    theirs = trial / "again.tmp-notes.txt"  # not a folder trialkit stages: left alone
    theirs.write_text("mine")
    run("pool", "--workspace", str(trial / "ws"), "-o", str(out), "-q", expect=0)
    assert not staged.exists() and not old.exists() and theirs.read_text() == "mine"


def test_the_arms_come_from_the_study_definition(study, fake_study, tmp_path):
    assert {code: arm.label for code, arm in study.arms.items()} == {
        "ANAKINRA": "Anakinra plus methotrexate", "PLACEBO": "Placebo plus methotrexate"}
    assert fake_study.arms == {}
    frame = read_randlist(randlist(tmp_path, GOOD), study.arm_codes, study_id=study.id)
    rand = pd.DataFrame({"SUBJID": ["01-001", "01-002"], "RANDNO": ["R0101", "R0102"]})
    assert check_randomisation(frame, {"RAND": rand}, study) == []
    with pytest.raises(Exception, match="FAKE-01 declares no arms"):
        read_randlist(randlist(tmp_path, GOOD), fake_study.arm_codes, study_id=fake_study.id)
    with pytest.raises(Exception, match="ACTIVE is not an arm of ANK-SJIA-01"):
        read_randlist(randlist(tmp_path, "RANDNO,ARM\nR0101,active\n"), study.arm_codes, study_id=study.id)
