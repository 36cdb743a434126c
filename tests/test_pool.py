"""Pooling from the ledger: submit two sites, re-submit, pool, rebuild identically, freeze, unblind."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pyreadstat
import pytest
from click.testing import CliRunner

from trialkit.cli import cli
from trialkit.ledger import open_workspace

from .test_deviations import clean_subject
from .upload_builder import write_upload


def _tree_hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _invoke(*args: str):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


@pytest.fixture()
def workspace(tmp_path, study):
    ws = tmp_path / "ws"
    assert _invoke("init", str(ws)).exit_code == 0
    for site, subject, rand in (("01", "01-001", "R001"), ("07", "07-001", "R002")):
        records = copy.deepcopy(clean_subject())
        records["RAND"][0]["RANDNO"] = rand
        path = write_upload(study, tmp_path / f"site{site}.xlsx", records, site=site, subject=subject)
        result = _invoke("submit", str(path), "--site", site, "--workspace", str(ws),
                         "--accept-warnings", "--data-cut", "2024-04-12", "-q")
        assert result.exit_code == 0, result.output
    return ws


def test_pool_writes_labelled_datasets_and_a_manifest(workspace, tmp_path):
    out = tmp_path / "pooled"
    result = _invoke("pool", "--workspace", str(workspace), "-o", str(out), "-f", "parquet,csv,xpt,sav,dta", "-q")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(i["site"], len(i["files"])) for i in manifest["inputs"]] == [("01", 1), ("07", 1)]
    assert manifest["unblinded"] is False and manifest["study"]["id"] == "ANK-SJIA-01"
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == entry["sha256"]
    adsl = pq.read_table(out / "adsl.parquet").to_pandas()
    assert sorted(adsl["SUBJID"]) == ["01-001", "07-001"]
    assert "ARM" not in adsl.columns
    dm, meta = pyreadstat.read_sav(out / "dm.sav")
    assert meta.column_names_to_labels["ICDAT"] == "Informed consent date"
    assert meta.variable_value_labels["SEX"] == {"M": "Male", "F": "Female"}
    vs, _ = pyreadstat.read_xport(out / "vs.xpt")
    assert len(vs) == 2 * 5 and set(vs["SITEID"]) == {"01", "07"}
    # Blinded: no dataset has an arm column, and no file holds the arm value PLACEBO (ANAKINRA is
    # also a prior-therapy drug code, so it legitimately appears in PT/CM value labels).
    for path in out.iterdir():
        assert b"PLACEBO" not in path.read_bytes(), path.name
        if path.suffix == ".parquet":
            columns = pq.read_schema(path).names
            assert not [c for c in columns if c.startswith(("ARM", "TRT0", "ACTARM"))], path.name


def test_pool_twice_is_byte_identical(workspace, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    formats = "parquet,csv,xpt,sav,dta,datasetjson,ndjson"
    for out in (first, second):
        assert _invoke("pool", "--workspace", str(workspace), "-o", str(out), "-f", formats, "-q").exit_code == 0
    hashes = _tree_hashes(first)
    assert {"define.xml", "adsl.json", "adsl.ndjson", "reasons.json"} <= set(hashes)
    assert hashes == _tree_hashes(second)


def test_unblinding_adds_the_arm_and_is_audited(workspace, tmp_path):
    randlist = tmp_path / "randlist.csv"
    randlist.write_text("RANDNO,ARM\nR001,ANAKINRA\nR002,PLACEBO\n")
    out = tmp_path / "unblinded"
    result = _invoke("pool", "--workspace", str(workspace), "-o", str(out), "--unblind", str(randlist),
                     "--operator", "unblinded.statistician", "-q")
    assert result.exit_code == 0, result.output
    adsl = pd.read_parquet(out / "adsl.parquet")
    assert dict(zip(adsl["SUBJID"], adsl["ARM"], strict=True)) == {"01-001": "ANAKINRA", "07-001": "PLACEBO"}
    events = [e for e in open_workspace(workspace).audit() if e["action"] == "unblind"]
    assert len(events) == 1 and events[0]["operator"] == "unblinded.statistician"


def test_freeze_keeps_what_pool_rebuilds(workspace, tmp_path, study):
    assert _invoke("freeze", "--label", "primary-lock", "--workspace", str(workspace)).exit_code == 0
    assert _invoke("freeze", "--label", "primary-lock", "--workspace", str(workspace)).exit_code == 2
    frozen = tmp_path / "frozen-before"
    assert _invoke("pool", "--workspace", str(workspace), "--freeze", "primary-lock", "-o", str(frozen), "-q").exit_code == 0
    # Site 07 sends corrected data afterwards: the current pool changes, the frozen one does not.
    records = copy.deepcopy(clean_subject())
    records["RAND"][0]["RANDNO"] = "R002"
    records["DM"][0]["SEX"] = "M"
    path = write_upload(study, tmp_path / "site07-v2.xlsx", records, site="07", subject="07-001")
    assert _invoke("submit", str(path), "--site", "07", "--workspace", str(workspace), "--accept-warnings",
                   "--data-cut", "2024-04-12", "-q").exit_code == 0
    again = tmp_path / "frozen-after"
    assert _invoke("pool", "--workspace", str(workspace), "--freeze", "primary-lock", "-o", str(again), "-q").exit_code == 0
    assert _tree_hashes(frozen) == _tree_hashes(again)
    current = tmp_path / "current"
    assert _invoke("pool", "--workspace", str(workspace), "-o", str(current), "-q").exit_code == 0
    dm = pd.read_parquet(current / "dm.parquet")
    assert dict(zip(dm["SUBJID"], dm["SEX"], strict=True)) == {"01-001": "F", "07-001": "M"}


def test_unknown_freeze_and_bad_formats_are_usage_errors(workspace):
    assert _invoke("pool", "--workspace", str(workspace), "--freeze", "nope").exit_code == 2
    assert _invoke("pool", "--workspace", str(workspace), "-f", "parquet,xls").exit_code == 2


def test_pool_with_nothing_accepted_says_so(tmp_path):
    ws = tmp_path / "empty"
    assert _invoke("init", str(ws)).exit_code == 0
    result = CliRunner().invoke(cli, ["pool", "--workspace", str(ws)])
    assert result.exit_code == 3
    assert "no site has accepted data" in result.output
