"""The data manager's loop through the command line: queries close/reopen, the deviation log, the
study-wide data cut, and findings that diagnose (wrong site, another site's conventions, no form).

Real imports and validation of the bundled study's uploads (tests/site_data.py builds them); exit
codes and ``-f json`` through CliRunner.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from trialkit.cli import cli
from trialkit.importers.reader import import_files
from trialkit.ledger import ENV_WORKSPACE, open_workspace
from trialkit.validate import validate

from .site_data import subjects, workbook


def run(*args: str, expect: int | None = 0):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if expect is not None:
        assert result.exit_code == expect, (args, result.output, result.exception)
    return result


@pytest.fixture
def ws(tmp_path, monkeypatch):
    """A workspace of the bundled study, found through the environment."""
    monkeypatch.delenv(ENV_WORKSPACE, raising=False)
    run("init", tmp_path / "ws", "-q")
    monkeypatch.setenv(ENV_WORKSPACE, str(tmp_path / "ws"))
    return tmp_path / "ws"


def late_sae(site: str = "01", days: int = 5) -> dict:
    """Subject 1 of ``site`` with its serious AE reported ``days`` after the site became aware (PD-12)."""
    records = subjects(site, [1])
    sae = next(r for r in records["AE"] if r["AESER"] == "Y")
    sae["AERPTDAT"] = sae["AEAWDAT"] + dt.timedelta(days=days)
    return records


# -- the loop: a deviation confirmed, a query answered and closed, one resolved by data ----------------


def test_a_deviation_confirmed_survives_a_corrected_re_upload_and_sets_pprotfl(ws, tmp_path, study):
    first = run("submit", "--accept-warnings", workbook(study, tmp_path / "v1.xlsx", late_sae()), "--site", "01", "--data-cut",
                "2024-04-12", "-f", "json")
    sub = json.loads(first.stdout)
    assert sub["status"] == "accepted-with-warnings"  # deviations never block (the warning: no template stamp)
    assert "protocol deviation(s) do not block" in sub["status_reason"]
    log = json.loads(run("deviations", "-f", "json", "-q").stdout)
    assert [(d["code"], d["status"], d["class"], d["subject"]) for d in log] == [("PD-12", "open", "major", "01-001")]
    ident = log[0]["deviation_id"]
    confirmed = run("deviations", "confirm", ident, "--reason", "reported late; site retrained", "-f", "json",
                    "--operator", "dm.anna")
    assert json.loads(confirmed.stdout)["queries_closed"] == [{"site": "01", "id": ident}]
    # The site corrects the report date: the deviation disappears from the data, but stays confirmed.
    second = run("submit", "--accept-warnings", workbook(study, tmp_path / "v2.xlsx", subjects("01", [1])), "--site", "01",
                 "--data-cut", "2024-04-12", "-f", "json")
    assert json.loads(second.stdout)["deviations"]["resolved"] == []
    log = json.loads(run("deviations", "-f", "json", "-q").stdout)
    assert [(d["deviation_id"], d["status"], d["status_by"]) for d in log] == [(ident, "confirmed", "dm.anna")]
    # The per-protocol flag comes from the confirmed major deviation.
    run("pool", "-o", tmp_path / "pooled", "-q")
    import pandas as pd

    adsl = pd.read_parquet(tmp_path / "pooled" / "adsl.parquet")
    assert adsl.set_index("SUBJID").loc["01-001", "PPROTFL"] == "N"
    manifest = json.loads((tmp_path / "pooled" / "manifest.json").read_text())
    assert manifest["deviation_log"]["confirmed_major"] == ["01-001"]
    assert run("verify").stdout.rstrip().endswith("intact")


def test_an_open_major_deviation_does_not_take_the_subject_out(ws, tmp_path, study):
    run("submit", "--accept-warnings", workbook(study, tmp_path / "v1.xlsx", late_sae()), "--site", "01", "--data-cut", "2024-04-12")
    run("pool", "-o", tmp_path / "pooled", "-q")
    import pandas as pd

    adsl = pd.read_parquet(tmp_path / "pooled" / "adsl.parquet")
    assert adsl.set_index("SUBJID").loc["01-001", "PPROTFL"] == "Y"  # open: not yet a fact


def test_a_deviation_resolved_by_corrected_data_stays_in_the_log(ws, tmp_path, study):
    run("submit", "--accept-warnings", workbook(study, tmp_path / "v1.xlsx", late_sae()), "--site", "01", "--data-cut", "2024-04-12")
    fixed = run("submit", "--accept-warnings", workbook(study, tmp_path / "v2.xlsx", subjects("01", [1])), "--site", "01", "--data-cut",
                "2024-04-12", "-f", "json")
    assert len(json.loads(fixed.stdout)["deviations"]["resolved"]) == 1
    text = run("deviations", "--status", "resolved").stdout
    assert "resolved  PD-12 major 01-001 · AE" in text and "By status: open 0, confirmed 0, resolved 1" in text
    assert run("deviations", "--status", "open", "-f", "json", "-q").stdout.strip() == "[]"


def test_deviation_log_exports_read_back(ws, tmp_path, study):
    run("submit", "--accept-warnings", workbook(study, tmp_path / "v1.xlsx", late_sae()), "--site", "01", "--data-cut", "2024-04-12")
    table = list(csv.DictReader(io.StringIO(run("deviations", "-f", "csv", "-q").stdout)))
    assert [(r["code"], r["status"], r["site"]) for r in table] == [("PD-12", "open", "01")]
    assert json.loads(table[0]["evidence"])["AERPTDAT"] == "2024-03-28"  # aware 2024-03-23, + 5 days
    out = tmp_path / "log.xlsx"
    run("deviations", "-f", "xlsx", "-o", out, "-q")
    book = load_workbook(out)
    rows = list(book["Deviations"].iter_rows(values_only=True))
    assert rows[0][:6] == ("deviation_id", "site", "code", "class", "severity", "status")
    assert rows[1][2:6] == ("PD-12", "major", "error", "open")
    assert list(book["By code"].iter_rows(values_only=True)) == [
        ("code", "open", "confirmed", "resolved", "dismissed", "total"), ("PD-12", 1, 0, 0, 0, 1)]
    run("deviations", "-f", "xlsx", "-o", out, "-q")  # its own earlier output may be replaced
    assert run("deviations", "-f", "xlsx", expect=2).exit_code == 2  # xlsx needs -o
    foreign = tmp_path / "notes.csv"
    foreign.write_text("mine\n")
    assert run("deviations", "-f", "csv", "-o", foreign, expect=2).exit_code == 2
    assert foreign.read_text() == "mine\n"


def test_queries_close_and_reopen_through_the_cli(ws, tmp_path, study):
    records = subjects("01", [1])
    records["VS"][2]["WEIGHT"] = 300  # out of range: an error query
    run("submit", "--accept-warnings", workbook(study, tmp_path / "v1.xlsx", records), "--site", "01", "--data-cut", "2024-04-12",
        expect=1)
    queries = json.loads(run("queries", "--status", "open", "--code", "RANGE", "-f", "json", "-q").stdout)
    assert len(queries) == 1 and queries[0]["variable"] == "WEIGHT"
    qid = queries[0]["query_id"]
    assert run("queries", "close", qid, expect=2).exit_code == 2  # --reason is required
    closed = run("queries", "close", qid, "Q-0000000000", "--reason", "site re-weighed: 30 kg, new upload coming",
                 "-f", "json", expect=1)
    data = json.loads(closed.stdout)
    assert data["changed"] == [{"site": "01", "id": qid}] and data["refused"][0]["id"] == "Q-0000000000"
    assert run("queries", "--status", "closed", "-f", "json", "-q").stdout.count(qid) == 1
    text = run("queries", "reopen", qid, "--reason", "the weight is still 300 in the EDC").stdout
    assert text == f"{qid} (site 01): open\n"
    listed = json.loads(run("queries", "--status", "open", "--older-than", "0", "-f", "json", "-q").stdout)
    assert listed == []  # opened today: not older than 0 days
    assert [a["action"] for a in open_workspace(ws).audit()[-2:]] == ["queries-closed", "queries-reopened"]


# -- the study-wide data cut -----------------------------------------------------------------------------


def test_cut_shows_sets_and_clears(ws):
    assert json.loads(run("cut", "-f", "json").stdout) == {"data_cut": None}
    assert "no study-wide data cut" in run("cut").stdout
    assert run("cut", "2999-01-01", expect=2).exit_code == 2  # after today
    assert run("cut", "2024-06-30", "--clear", expect=2).exit_code == 2
    data = json.loads(run("cut", "2024-06-30", "-f", "json", "--operator", "dm.anna").stdout)
    assert data["data_cut"]["date"] == "2024-06-30" and data["data_cut"]["operator"] == "dm.anna"
    assert data["previous"] is None and data["reviews"] == []
    assert run("cut").stdout.startswith("data cut 2024-06-30 (set by dm.anna at ")
    assert run("cut", "--clear").stdout == "no study-wide data cut (was 2024-06-30)\n"


def test_submit_and_validate_use_the_study_wide_cut(ws, tmp_path, study):
    upload = workbook(study, tmp_path / "v1.xlsx", subjects("01", [1]))
    run("cut", "2024-06-30", "-q")
    text = run("validate", upload, "--site", "01", expect=0).stdout
    assert "data cut 2024-06-30 (study-wide: trialkit cut)" in text.splitlines()[0]
    report = json.loads(run("validate", upload, "--site", "01", "-f", "json", "-q").stdout)
    library = validate(study, import_files([upload], study, site="01"), site="01", data_cut=dt.date(2024, 6, 30))
    assert report["data_cut"] == "2024-06-30" and len(report["findings"]) == len(library.findings)
    # The visits whose windows closed by the cut are due: W8 and W12 are missing.
    missing = sorted(f["visit"] for f in report["findings"] if f["code"] == "PD-07")
    assert missing == ["W12", "W8"]
    overridden = json.loads(run("validate", upload, "--site", "01", "--data-cut", "2024-04-12", "-f", "json",
                                "-q").stdout)
    assert overridden["data_cut"] == "2024-04-12" and not [f for f in overridden["findings"] if f["code"] == "PD-07"]
    sub = json.loads(run("submit", "--accept-warnings", upload, "--site", "01", "-f", "json").stdout)
    assert sub["data_cut"] == "2024-06-30" and sub["data_cut_source"] == "study-wide: trialkit cut"


def test_a_site_whose_data_stop_before_the_cut_gets_its_overdue_visits_flagged(ws, tmp_path, study):
    run("submit", "--accept-warnings", workbook(study, tmp_path / "v1.xlsx", subjects("01", [1])), "--site", "01")  # data to 2024-04-01
    run("submit", "--accept-warnings", workbook(study, tmp_path / "v2.xlsx", subjects("02", [1])), "--site", "02")
    assert json.loads(run("queries", "-f", "json", "-q").stdout) == []
    result = json.loads(run("cut", "2024-06-30", "-f", "json").stdout)
    reviews = {r["site"]: r for r in result["reviews"]}
    assert sorted(reviews) == ["01", "02"] and reviews["01"]["data_until"] == "2024-04-02"
    assert len(reviews["01"]["new_queries"]) == 2 and len(reviews["01"]["new_deviations"]) == 2
    queries = json.loads(run("queries", "--site", "01", "-f", "json", "-q").stdout)
    assert sorted((q["code"], q["visit"], q["status"]) for q in queries) == [
        ("PD-07", "W12", "open"), ("PD-07", "W8", "open")]
    audit = open_workspace(ws).audit()
    assert [a["action"] for a in audit[-3:]] == ["data-cut", "data-cut-review", "data-cut-review"]
    assert run("verify").stdout.rstrip().endswith("intact")
    # A second review finds nothing new, and resolves nothing.
    again = json.loads(run("cut", "2024-06-30", "-f", "json").stdout)
    assert all(r["new_queries"] == [] for r in again["reviews"])
    assert len(json.loads(run("queries", "--status", "open", "-f", "json", "-q").stdout)) == 4


# -- findings that diagnose --------------------------------------------------------------------------------


def test_another_sites_file_is_one_error_not_a_privacy_refusal(ws, tmp_path, study):
    upload = workbook(study, tmp_path / "site03.xlsx", subjects("03", [1, 2]))
    report = json.loads(run("validate", upload, "--site", "01", "-f", "json", "-q", expect=1).stdout)
    errors = [f for f in report["findings"] if f["severity"] == "error"]
    assert [f["code"] for f in errors] == ["SITE-MISMATCH"]
    assert errors[0]["message"].startswith("every record is site 03 (")
    assert "did you mean --site 03?" in errors[0]["message"]
    assert {c["status"] for c in report["checks"] if c["id"].startswith(("DC-", "PD-"))} == {"skipped"}
    submitted = run("submit", "--accept-warnings", upload, "--site", "01", expect=2)
    assert "did you mean --site 03?" in submitted.output and "identifiers" not in submitted.output
    assert open_workspace(ws).log() == []
    assert not any((ws / "archive" / "sha256").iterdir())  # nothing archived
    assert open_workspace(ws).audit()[-1]["action"] == "refused-wrong-site"


def test_a_few_records_of_another_site_stay_one_error_each(ws, tmp_path, study):
    records = subjects("01", [1])
    records["AE"].append(dict(records["AE"][0], SITEID="03", SUBJID="03-001"))
    report = validate(study, import_files([workbook(study, tmp_path / "mixed.xlsx", records)], study, site="01"),
                      site="01")
    assert [f.code for f in report.findings if f.severity.value == "error"] == ["WRONG-SITE"]
    refused = run("submit", "--accept-warnings", tmp_path / "mixed.xlsx", "--site", "01", expect=1)
    assert "belong to another site (03)" in refused.output and "identifiers" not in refused.output


def test_a_file_typed_with_decimal_commas_at_a_decimal_point_site_is_one_diagnosis(tmp_path, study):
    records = subjects("07", [1, 2])
    for row in records["VS"]:
        row["WEIGHT"], row["TEMP"] = "30,5", "36,8"
    upload = workbook(study, tmp_path / "site07.xlsx", records)
    report = json.loads(run("validate", upload, "--site", "07", "-f", "json", "-q", expect=1).stdout)
    codes = [f["code"] for f in report["findings"] if f["severity"] == "error"]
    assert codes == ["SITE-CONVENTIONS"]  # not 20 IMP-TYPE errors
    diagnosis = next(f for f in report["findings"] if f["code"] == "SITE-CONVENTIONS")
    assert diagnosis["message"].startswith("20 numbers are typed with a decimal comma ('30,5' in VS WEIGHT row 2")
    assert "site 07 (London) types a decimal point" in diagnosis["message"]
    assert diagnosis["evidence"]["count"] == 20 and len(diagnosis["evidence"]["cells"]) == 20
    # Two commas are typing slips: listed one by one.
    records = subjects("07", [1])
    records["VS"][0]["WEIGHT"] = "30,5"
    slips = validate(study, import_files([workbook(study, tmp_path / "slip.xlsx", records)], study, site="07"),
                     site="07")
    assert [f.code for f in slips.findings if f.severity.value == "error"] == ["IMP-TYPE"]


def test_a_file_typed_day_first_at_a_month_first_site_is_one_diagnosis_and_no_rule_runs(tmp_path, study):
    records = subjects("08", [1, 2])
    for rows in records.values():
        for row in rows:
            for key, value in list(row.items()):
                if isinstance(value, dt.date):
                    row[key] = value.strftime("%d/%m/%Y")
    upload = workbook(study, tmp_path / "site08.xlsx", records)
    report = validate(study, import_files([upload], study, site="08"), site="08")
    errors = [f for f in report.findings if f.severity.value == "error"]
    assert [f.code for f in errors] == ["SITE-CONVENTIONS"]
    assert "cannot be read month first as site 08 (Cincinnati) types them, but read day first" in errors[0].message
    assert "were read month first and may be wrong" in errors[0].message
    assert {c.status.value for c in report.checks if c.id.startswith(("DC-", "PD-"))} == {"skipped"}


def test_validate_of_a_file_with_no_form_exits_1_whatever_fail_on_says(tmp_path):
    hello = tmp_path / "hello.txt"
    hello.write_text("hello world\n")
    result = run("validate", hello, "--site", "01", "--fail-on", "never", "-f", "json", "-q", expect=1)
    report = json.loads(result.stdout)
    assert [f["code"] for f in report["findings"] if f["severity"] == "error"] == ["NO-FORM"]
    assert not [c for c in report["checks"] if c["status"] == "passed"]
    text = run("validate", hello, "--site", "01", expect=1).stdout
    assert "31 skipped: no form of the study was recognised in the upload (DC-01 … PD-14; -v lists them)" in text


def test_an_unreadable_file_is_its_own_reason_and_still_exits_1_whatever_fail_on_says(tmp_path):
    broken = tmp_path / "site01.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a workbook")
    result = run("validate", broken, "--site", "01", "--fail-on", "never", "-f", "json", "-q", expect=1)
    errors = [f for f in json.loads(result.stdout)["findings"] if f["severity"] == "error"]
    assert errors and "NO-FORM" not in [f["code"] for f in errors]  # the file error already says why
    assert all(f["category"] == "file" for f in errors)


def test_text_output_groups_repeats_shows_query_ids_and_filters(tmp_path, study):
    records = subjects("01", [1, 2])
    for row in records["VS"]:
        row["WEIGHT"] = 300  # 10 out-of-range weights
    records["VS"][0]["TEMP"] = "36,8"  # Milan's decimal comma: a recorded normalisation (info)
    upload = workbook(study, tmp_path / "site01.xlsx", records)
    other = workbook(study, tmp_path / "site01-ae.xlsx", {"AE": subjects("01", [1])["AE"]})
    text = run("validate", upload, other, "--site", "01", expect=1).stdout
    lines = text.splitlines()
    grouped = [line for line in lines if "[RANGE]" in line]
    assert len(grouped) == 1
    assert grouped[0].startswith("error   site01.xlsx · VS · WEIGHT: 10 × [RANGE] in rows 2, 3, 4, 5, 6 …; first (row 2")
    assert "every one in -f csv, json or xlsx" in grouped[0]
    table = list(csv.DictReader(io.StringIO(run("validate", upload, other, "--site", "01", "-f", "csv",
                                                expect=1).stdout)))
    assert sum(1 for r in table if r["code"] == "RANGE") == 10  # every finding in csv
    assert any(line.startswith("info ") for line in lines) is False
    assert any(line.endswith("not shown (--min-severity info shows them)") for line in lines)
    verbose = run("validate", other, "--site", "01", "--min-severity", "info", "-v", expect=None).stdout
    assert "skipped because their forms were not in the upload" not in verbose
    assert "  PD-07 skipped: form(s) not uploaded: VS, EX" in verbose
    short = run("validate", other, "--site", "01", expect=None).stdout
    assert "skipped because their forms were not in the upload" in short
    errors_only = run("validate", upload, "--site", "01", "--min-severity", "error", expect=1).stdout
    assert "warning " not in errors_only
    single = run("validate", upload, "--site", "01", "--data-cut", "2024-04-12", expect=1).stdout
    assert single.count("site01.xlsx ·") == 0  # one file: no file column
    one = next(line for line in single.splitlines() if "[RANGE]" in line)
    assert "Q-" in one


def test_submit_states_the_rule_that_decided(ws, tmp_path, study):
    records = subjects("01", [1])
    records["VS"][2]["WEIGHT"] = 300
    rejected = run("submit", "--accept-warnings", workbook(study, tmp_path / "v1.xlsx", records), "--site", "01", "--data-cut",
                   "2024-04-12", expect=1)
    assert "why: rejected: 1 error(s) that are not protocol deviations (RANGE) block acceptance" in rejected.stdout
    accepted = run("submit", "--accept-warnings", workbook(study, tmp_path / "v2.xlsx", late_sae()), "--site", "01", "--data-cut",
                   "2024-04-12")
    assert ("why: accepted with 1 warning(s) acknowledged by " in accepted.stdout
            and "its 1 protocol deviation(s) do not block" in accepted.stdout)
    assert "deviations: 1 new, 0 seen again, 0 resolved" in accepted.stdout
    help_text = run("submit", "--accept-warnings", "--help").stdout
    assert "Protocol deviations never block" in help_text and "held" in help_text


def test_answers_and_decisions_round_trip_through_the_query_workbook(ws, tmp_path, study):
    records = subjects("01", [1])
    records["VS"][2]["WEIGHT"] = 300
    run("submit", "--accept-warnings", workbook(study, tmp_path / "v1.xlsx", records), "--site", "01", "--data-cut", "2024-04-12",
        expect=1)
    book = tmp_path / "q01.xlsx"
    run("queries", "--site", "01", "-o", book, "-q")
    from trialkit.demo import fill_workbook

    qid = json.loads(run("queries", "-f", "json", "-q").stdout)[0]["query_id"]
    answered = fill_workbook(book, tmp_path / "q01_answered.xlsx", {qid: {
        "SITE_RESPONSE": "corrected in a new upload", "SITE_COMMENT": "30 kg", "RESPONDED_BY": "nurse",
        "RESPONSE_DATE": dt.datetime(2024, 4, 20)}})
    result = json.loads(run("queries", "--answers", answered, "-f", "json").stdout)
    assert result["answered"] == [qid]
    reviewed = fill_workbook(answered, tmp_path / "q01_reviewed.xlsx", {qid: {"DM_ACTION": "close",
                                                                               "DM_REASON": "correction verified"}})
    result = json.loads(run("queries", "--answers", reviewed, "-f", "json").stdout)
    assert result["closed"] == [qid] and result["unchanged"] == 1
    query = json.loads(run("queries", "-f", "json", "-q").stdout)[0]
    assert (query["status"], query["site_comment"], query["status_reason"]) == ("closed", "30 kg",
                                                                                "correction verified")
    assert Path(reviewed).is_file()
