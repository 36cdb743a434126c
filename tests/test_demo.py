"""The demo study: every planted problem is reported with its code, nothing else is, and it pools.

The demo runs once for the module, through the command line (``trialkit demo DIR``); every other
test reads what it left: ``answer_key.json``, ``demo.json`` and the workspace ledger.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from trialkit.cli import cli
from trialkit.demo import ANSWER_KEY, MARKER, check_demo_folder, write_upload
from trialkit.ledger import open_workspace
from trialkit.study import load_study

# The demo is the bundled study's demo plug-in; it generates every site of the site table.
BUNDLED = load_study()
build_uploads = BUNDLED.plugin("demo").build_uploads
SITES = tuple(BUNDLED.sites)
ALL_CODES = sorted(rule.id for rule in BUNDLED.rules)


def write_uploads(study, uploads, folder):
    for upload in uploads:
        upload.files = write_upload(study, upload, folder)


@pytest.fixture(scope="module")
def demo(demo_run) -> dict[str, Any]:
    folder, result = demo_run
    manifest = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    return {
        "folder": folder,
        "result": result,
        "key": json.loads((folder / ANSWER_KEY).read_text(encoding="utf-8")),
        "submissions": manifest["submissions"],
        "workspace": open_workspace(folder / "workspace"),
    }


def _matches(finding: Any, entry: dict[str, Any]) -> bool:
    return (
        finding.code == entry["code"]
        and finding.site == entry["site"]
        and finding.subject == entry["subject"]
        and (entry.get("form") is None or finding.form == entry["form"])
        and (entry.get("variable") is None or finding.variable == entry["variable"])
    )


def _reports(demo: dict[str, Any]) -> dict[str, Any]:
    """The recorded report of each upload, from the ledger."""
    ws = demo["workspace"]
    return {s["upload"]: ws.submission(s["submission"]).report for s in demo["submissions"]}


def test_the_command_prints_where_to_look(demo):
    result = demo["result"]
    assert result.exit_code == 0, result.output
    folder = demo["folder"]
    assert str(folder / "report.html") in result.output or "report            not written" in result.output
    assert str(folder / "workspace" / "pooled") in result.output
    assert str(folder / ANSWER_KEY) in result.output
    assert f"trialkit log --workspace {folder / 'workspace'}" in result.output
    assert f"trialkit queries --workspace {folder / 'workspace'}" in result.output
    assert sorted(p.name for p in (folder / "queries").iterdir()) == [f"queries_site{s}.xlsx" for s in SITES]


def test_the_command_says_what_it_does_step_by_step_on_stderr(demo):
    """stderr is not a terminal here: one plain line per step (never silent for long), none on stdout."""
    lines = demo["result"].stderr.splitlines()
    steps = [line.split(": ", 1)[1].rsplit(" (", 1)[0] for line in lines if line.startswith("trialkit demo: ")]
    assert len(steps) == len(lines)
    uploads = [s["upload"] for s in demo["submissions"]]
    for upload in uploads:
        assert any(step.endswith(f"{upload} written") for step in steps), upload
        assert any(step.endswith(f"{upload} validated, submitting") for step in steps), upload
    assert [s for s in steps if s.startswith("pool: re-importing site")]
    assert any(s.startswith("pool: writing") for s in steps)
    assert steps[-2:] == ["writing the report", "done"]
    assert "trialkit demo:" not in demo["result"].stdout


def test_every_planted_problem_is_reported_with_its_code(demo):
    reports = _reports(demo)
    missing = []
    for entry in demo["key"]:
        assert entry["uploads"], entry
        for upload in entry["uploads"]:
            if not any(_matches(f, entry) for f in reports[upload].findings):
                missing.append((upload, entry["code"], entry["subject"], entry["form"], entry["variable"]))
    assert missing == []


def test_no_other_warning_or_error_appears(demo):
    # Info findings (recorded normalisations: dates in the site's order, decimal commas, units,
    # synonyms, missing-value codes) are expected and not part of the key.
    reports = _reports(demo)
    extra = []
    for upload, report in reports.items():
        planted = [e for e in demo["key"] if upload in e["uploads"]]
        for finding in report.findings:
            if finding.severity.value == "info":
                continue
            if not any(_matches(finding, e) for e in planted):
                extra.append((upload, finding.code, finding.severity.value, finding.subject, finding.form,
                               finding.variable, finding.message))
    assert extra == []


def test_every_check_and_deviation_is_planted(demo):
    assert sorted({e["code"] for e in demo["key"]}) == ALL_CODES
    for entry in demo["key"]:
        assert entry["note"] and entry["site"] in SITES and entry["severity"] in ("error", "warning")


def test_errors_are_rejected_warnings_acknowledged_and_corrections_accepted(demo):
    status = {s["upload"]: s["status"] for s in demo["submissions"]}
    assert status["site02_v1"] == "accepted"
    for site in ("03", "05", "08"):
        assert status[f"site{site}_v1"] == "rejected"
        assert status[f"site{site}_v2"] in ("accepted", "accepted-with-warnings")
    for site in ("01", "04", "06", "07"):
        assert status[f"site{site}_v1"] in ("accepted", "accepted-with-warnings")
    # Genuine major deviations in correct data do not block: the late records are accepted.
    assert status["site06_v2"] == "accepted"
    current = demo["workspace"].current_submissions()
    assert sorted(current) == list(SITES)
    by_upload = {s["upload"]: s["submission"] for s in demo["submissions"]}
    assert current["06"].id == by_upload["site06_v2"]
    # every data error of the key sits in a rejected upload; what a re-upload corrected is resolved
    for entry in demo["key"]:
        if entry["severity"] == "error" and not entry["code"].startswith("PD-"):
            assert all(status[u] == "rejected" for u in entry["uploads"]), entry
        if entry["resolved_by"]:
            assert status[entry["resolved_by"]] != "rejected"
            assert entry["resolved_by"] not in entry["uploads"]


def test_the_pool_holds_every_site_and_no_arm(demo):
    pooled = demo["folder"] / "workspace" / "pooled"
    adsl = pd.read_parquet(pooled / "adsl.parquet")
    assert adsl["SUBJID"].is_unique
    assert len(SITES) * 15 - 10 <= len(adsl) <= len(SITES) * 15  # 15 subjects per site
    assert sorted(adsl["SITEID"].unique()) == list(SITES)
    assert not [c for c in adsl.columns if c.startswith(("ARM", "TRT0", "ACTARM"))]
    for name in ("dm.parquet", "dm.csv", "dm.xpt", "manifest.json"):
        assert (pooled / name).is_file(), name


def test_the_generator_is_reproducible(demo, study, tmp_path):
    same, _, _ = build_uploads(study, 20261125)
    again, _, _ = build_uploads(study, 20261125)
    other, _, _ = build_uploads(study, 7)

    def text(uploads: list[Any]) -> str:
        return json.dumps([(u.name, u.records) for u in uploads], default=str, sort_keys=True)

    assert text(same) == text(again)
    assert text(same) != text(other)
    # the same upload written again is byte for byte what the demo sent (xlsx, csv and xpt)
    chosen = [u for u in same if u.name in ("site02_v1", "site05_v1", "site07_v1")]
    write_uploads(study, chosen, tmp_path)
    for upload in chosen:
        for path in upload.files:
            sent = demo["folder"] / "uploads" / path.relative_to(tmp_path)
            assert path.read_bytes() == sent.read_bytes(), path.name


def test_a_foreign_folder_is_refused(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.docx").write_text("not a demo")
    result = CliRunner().invoke(cli, ["demo", str(folder)])
    assert result.exit_code == 2
    assert "not empty" in result.output and "thesis.docx" not in result.output
    assert (folder / "thesis.docx").read_text() == "not a demo"


def test_an_earlier_demo_may_be_replaced(demo):
    assert check_demo_folder(demo["folder"]) is True
    assert check_demo_folder(Path(demo["folder"]) / "does-not-exist") is False


def test_the_data_managers_loop(demo):
    """One query answered and closed, one deviation confirmed, one resolved by data, the log exported."""
    folder, ws = demo["folder"], demo["workspace"]
    loop = json.loads((folder / MARKER).read_text(encoding="utf-8"))["loop"]
    [answered] = loop["answered_and_closed"]
    assert (answered["site"], answered["code"], answered["answered"], answered["closed"]) == ("01", "DC-14", True, True)
    query = {q["query_id"]: q for q in ws.queries(site="01")}[answered["query_id"]]
    assert (query["status"], query["response"], query["status_by"]) == ("closed", "confirmed as is",
                                                                          "demo.datamanager")
    for path in answered["workbooks"]:
        assert (folder / path).is_file(), path
    [decided] = loop["decided"]
    assert (decided["site"], decided["code"], decided["status"], decided["query_closed"]) == (
        "06", "PD-12", "confirmed", True)
    [resolved] = loop["resolved_by_data"]
    by_upload = {s["upload"]: s["submission"] for s in demo["submissions"]}
    assert (resolved["code"], resolved["status"], resolved["resolved_by_submission"]) == (
        "PD-01", "resolved", by_upload["site03_v2"])
    log = {d["deviation_id"]: d for d in ws.deviation_log()}
    assert log[decided["deviation_id"]]["status"] == "confirmed"
    assert log[resolved["deviation_id"]]["status"] == "resolved"
    # every deviation of the answer key is in the log, whatever later uploads said
    planted = {(e["site"], e["subject"], e["code"]) for e in demo["key"] if e["code"].startswith("PD-")}
    assert planted <= {(d["site"], d["subject"], d["code"]) for d in log.values()}
    from python_calamine import CalamineWorkbook

    rows = CalamineWorkbook.from_path(str(folder / loop["deviation_log"])).get_sheet_by_name("Deviations").to_python()
    assert len(rows) == len(log) + 1 and rows[0][0] == "deviation_id"
    adsl = pd.read_parquet(folder / "workspace" / "pooled" / "adsl.parquet").set_index("SUBJID")
    assert adsl.loc[decided["subject"], "PPROTFL"] == "N"
    assert ws.data_cut()["date"] == json.loads((folder / MARKER).read_text())["data_cut"]
    from trialkit.verify import verify

    assert verify(ws).ok
    output = demo["result"].output
    assert f"deviation {decided['deviation_id']} (PD-12, site 06, {decided['subject']}): confirmed; its query closed" \
        in output
    assert str(folder / "deviation_log.xlsx") in output
