"""Query states and the deviation log in the ledger: every transition, the audit log, verify, migration.

Literal reports (no importer or validator), so each state change is spelled out: open → answered →
closed, resolved by data, reopened (by data or by the data manager), a closed query that comes back
unchanged or with other data; deviations open → confirmed / resolved / dismissed, a confirmed one
surviving a corrected re-upload.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime

import openpyxl
import pytest

from trialkit.errors import UsageError
from trialkit.findings import Finding
from trialkit.ledger import LEDGER_FILE, init_workspace, open_workspace
from trialkit.verify import verify

from .test_ledger import DAY1, DAY8, DAY15, finding, report, submit, upload

DAY22 = datetime(2025, 3, 22, 9, 0, tzinfo=UTC)


def deviation(qid: str, *, subject: str = "01-001", klass: str = "major", value: str = "5",
              form: str = "VS", site: str = "01") -> Finding:
    return Finding(code="PD-12", severity="error" if klass == "major" else "warning", category="deviation",
                   message=f"SAE reported {value} days late", site=site, subject=subject, form=form,
                   variable="AERPTDAT", value=value, deviation_class=klass, query_id=qid,
                   evidence={"DAYS": value})


@pytest.fixture
def ws(tmp_path):
    return init_workspace(tmp_path / "ws", study_id="ANK-SJIA-01")


@pytest.fixture
def files(tmp_path):
    folder = tmp_path / "uploads"
    folder.mkdir()
    return folder


def states(ws, site="01") -> dict[str, str]:
    return {q["query_id"]: q["status"] for q in ws.queries(site=site)}


def log_states(ws, site="01") -> dict[str, str]:
    return {d["deviation_id"]: d["status"] for d in ws.deviation_log(site=site)}


def answers_book(path, rows, header=("QUERY_ID", "SITE_RESPONSE", "SITE_COMMENT", "RESPONDED_BY", "RESPONSE_DATE",
                                      "DM_ACTION", "DM_REASON"), label_row=None):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Queries"
    sheet.append(list(header))
    if label_row is not None:
        sheet.append(label_row)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


# -- queries ----------------------------------------------------------------------------------------


def test_open_answered_closed_through_the_workbook(ws, files, tmp_path):
    submit(ws, [upload(files, "1.csv", "1\n")], "01", report(finding("Q-A"), finding("Q-B")), now=DAY1)
    assert states(ws) == {"Q-A": "open", "Q-B": "open"}
    book = answers_book(tmp_path / "a.xlsx", [
        ["Q-A", "confirmed as is", "weighed again", "Dr Rossi", datetime(2025, 3, 5), None, None],
        ["Q-B", None, None, None, None, None, None],
    ])
    first = ws.record_answers(book, "dm.anna", now=DAY8)
    assert (first.stored, first.answered, first.blank) == (("Q-A",), ("Q-A",), 1)
    assert states(ws) == {"Q-A": "answered", "Q-B": "open"}
    query = {q["query_id"]: q for q in ws.queries()}["Q-A"]
    assert (query["response"], query["site_comment"], query["status_by"]) == ("confirmed as is", "weighed again",
                                                                              "dm.anna")
    # The data manager reviews and closes it in the same workbook; the unchanged answer is not stored again.
    reviewed = answers_book(tmp_path / "r.xlsx", [
        ["Q-A", "confirmed as is", "weighed again", "Dr Rossi", datetime(2025, 3, 5), "close", "source verified"],
        ["Q-B", None, None, None, None, "close", None],  # an action needs a reason
        ["Q-A2", None, None, None, None, "archive", "x"],  # unknown id
    ])
    second = ws.record_answers(reviewed, "dm.anna", site="01", now=DAY15)
    assert (second.stored, second.unchanged, second.closed) == ((), 1, ("Q-A",))
    assert second.refused == (("Q-B", "DM_ACTION close needs a DM_REASON"), ("Q-A2", "unknown query id"))
    assert states(ws) == {"Q-A": "closed", "Q-B": "open"}
    closed = {q["query_id"]: q for q in ws.queries()}["Q-A"]
    assert (closed["status_reason"], closed["status_at"], closed["age_days"]) == (
        "source verified", "2025-03-15T09:00:00Z", 14)
    line = ws.audit()[-1]
    assert line["action"] == "answers-recorded" and line["detail"]["query_states"] == {"closed": [["01", "Q-A"]]}


def test_an_unknown_dm_action_is_refused(ws, files, tmp_path):
    submit(ws, [upload(files, "1.csv", "1\n")], "01", report(finding("Q-A")), now=DAY1)
    book = answers_book(tmp_path / "a.xlsx", [["Q-A", None, None, None, None, "archive", "done"]])
    result = ws.record_answers(book, "dm", site="01")
    assert result.refused == (("Q-A", "DM_ACTION 'archive' is not close or reopen"),)
    assert states(ws) == {"Q-A": "open"}


def test_a_translated_label_row_under_the_header_is_skipped(ws, files, tmp_path):
    submit(ws, [upload(files, "1.csv", "1\n")], "01", report(finding("Q-0123456789")), now=DAY1)
    book = answers_book(tmp_path / "a.xlsx", [["Q-0123456789", "confermato", None, "Dr Rossi", "2025-03-05", None,
                                               None]],
                        label_row=["ID della query", "Risposta del centro", "Commento", "Risposta di",
                                   "Data della risposta", "Azione DM", "Motivo DM"])
    result = ws.record_answers(book, "dm", site="01")
    assert (result.stored, result.refused) == (("Q-0123456789",), ())


def test_close_and_reopen_by_the_data_manager(ws, files):
    submit(ws, [upload(files, "1.csv", "1\n")], "01", report(finding("Q-A"), finding("Q-B")), now=DAY1)
    with pytest.raises(UsageError, match="needs a reason"):
        ws.close_queries(["Q-A"], "  ")
    closed = ws.close_queries(["q-a", "Q-NONE"], "confirmed with the site", operator="dm.anna", now=DAY8)
    assert closed.changed == (("01", "Q-A"),)
    assert closed.refused == (("Q-NONE", "no query Q-NONE in this workspace"),)
    again = ws.close_queries(["Q-A"], "twice")
    assert again.refused == (("Q-A", "the query is closed; only open or answered queries can be closed"),)
    assert ws.reopen_queries(["Q-B"], "x").refused == (
        ("Q-B", "the query is open; only closed or resolved queries can be reopened"),)
    reopened = ws.reopen_queries(["Q-A"], "the monitor found a second record", operator="dm.bo", now=DAY15)
    assert reopened.changed == (("01", "Q-A"),)
    assert states(ws) == {"Q-A": "open", "Q-B": "open"}
    actions = [(a["action"], a["operator"], a["detail"].get("reason")) for a in ws.audit()[-2:]]
    assert actions == [("queries-closed", "dm.anna", "confirmed with the site"),
                       ("queries-reopened", "dm.bo", "the monitor found a second record")]


def test_the_same_query_id_at_two_sites_needs_the_site(ws, files):
    submit(ws, [upload(files, "1.csv", "1\n")], "01", report(finding("Q-A")), now=DAY1)
    submit(ws, [upload(files, "2.csv", "2\n")], "02", report(finding("Q-A", site="02"), site="02"), now=DAY1)
    assert ws.close_queries(["Q-A"], "x").refused == (
        ("Q-A", "sites 01, 02 each have a query Q-A; name the site with --site"),)
    assert ws.close_queries(["Q-A"], "x", site="02").changed == (("02", "Q-A"),)
    assert ws.close_queries(["Q-A"], "x", site="03").refused == (("Q-A", "the query belongs to site 01, 02, not 03"),)


def test_a_closed_query_stays_closed_unless_the_data_changed(ws, files):
    submit(ws, [upload(files, "1.csv", "1\n")], "01", report(finding("Q-A")), now=DAY1)
    ws.close_queries(["Q-A"], "weight confirmed at source")
    same = submit(ws, [upload(files, "2.csv", "2\n")], "01", report(finding("Q-A")), now=DAY8)
    assert same.queries.kept_closed == ("Q-A",) and same.queries.reopened == ()
    assert states(ws) == {"Q-A": "closed"}
    changed = finding("Q-A")
    changed.value = "950"  # the site typed another wrong weight: the decision was about 900
    other = submit(ws, [upload(files, "3.csv", "3\n")], "01", report(changed), now=DAY15)
    assert other.queries.reopened == ("Q-A",)
    query = ws.queries()[0]
    assert (query["status"], query["value"], query["status_reason"]) == (
        "open", "950", f"came back with other data in submission {other.id}")
    # and a closed query whose finding vanishes stays closed (the decision stands)
    ws.close_queries(["Q-A"], "accepted")
    gone = submit(ws, [upload(files, "4.csv", "4\n")], "01", report(), now=DAY22)
    assert gone.queries.resolved == () and states(ws) == {"Q-A": "closed"}


def test_answered_and_resolved_by_data_then_back(ws, files, tmp_path):
    submit(ws, [upload(files, "1.csv", "1\n")], "01", report(finding("Q-A")), now=DAY1)
    ws.record_answers(answers_book(tmp_path / "a.xlsx", [["Q-A", "corrected in a new upload", None, "X",
                                                          "2025-03-02", None, None]]), "dm", site="01")
    assert states(ws) == {"Q-A": "answered"}
    fixed = submit(ws, [upload(files, "2.csv", "2\n")], "01", report(), now=DAY8)
    assert fixed.queries.resolved == ("Q-A",) and states(ws) == {"Q-A": "resolved"}
    back = submit(ws, [upload(files, "3.csv", "3\n")], "01", report(finding("Q-A")), now=DAY15)
    assert back.queries.reopened == ("Q-A",) and states(ws) == {"Q-A": "open"}
    ws.close_queries(["Q-A"], "x")
    assert ws.reopen_queries(["Q-A"], "y").changed == (("01", "Q-A"),)


def test_queries_filter_by_state_code_and_age(ws, files):
    other = finding("Q-C")
    other.code = "DC-14"
    submit(ws, [upload(files, "1.csv", "1\n")], "01", report(finding("Q-A"), finding("Q-B")), now=DAY1)
    submit(ws, [upload(files, "2.csv", "2\n")], "01", report(finding("Q-A"), finding("Q-B"), other), now=DAY15)
    ws.close_queries(["Q-B"], "x", now=DAY15)
    today = date(2025, 3, 20)
    assert [q["query_id"] for q in ws.queries(status=["open", "closed"], today=today)] == ["Q-B", "Q-A", "Q-C"]
    assert [q["query_id"] for q in ws.queries(code="DC-14", today=today)] == ["Q-C"]
    assert [(q["query_id"], q["age_days"]) for q in ws.queries(older_than=10, today=today)] == [
        ("Q-B", 14), ("Q-A", 19)]
    with pytest.raises(UsageError, match="query state 'shut'"):
        ws.queries(status="shut")


# -- the deviation log --------------------------------------------------------------------------------


def test_deviations_are_logged_resolved_by_corrected_data_and_confirmed_ones_survive(ws, files):
    first = submit(ws, [upload(files, "1.csv", "1\n")], "01",
                   report(deviation("Q-D1"), deviation("Q-D2", subject="01-002", klass="minor")), now=DAY1)
    assert first.deviations.new == ("Q-D1", "Q-D2")
    assert log_states(ws) == {"Q-D1": "open", "Q-D2": "open"}
    confirmed = ws.set_deviation_status(["Q-D1"], "confirmed", "SAE reported late; site retrained",
                                        operator="dm.anna", now=DAY8)
    assert confirmed.changed == (("01", "Q-D1"),) and confirmed.queries_closed == (("01", "Q-D1"),)
    assert states(ws)["Q-D1"] == "closed"
    # A corrected re-upload: neither deviation is shown any more.
    corrected = submit(ws, [upload(files, "2.csv", "2\n")], "01", report(), now=DAY15)
    assert corrected.deviations.resolved == ("Q-D2",)
    assert log_states(ws) == {"Q-D1": "confirmed", "Q-D2": "resolved"}
    entry = {d["deviation_id"]: d for d in ws.deviation_log()}["Q-D1"]
    assert (entry["first_submission"], entry["last_seen_submission"], entry["status_by"], entry["class"],
            entry["evidence"]) == (first.id, first.id, "dm.anna", "major", {"DAYS": "5"})
    # The resolved one is detected again; the confirmed one stays confirmed when it is shown again.
    again = submit(ws, [upload(files, "3.csv", "3\n")], "01",
                   report(deviation("Q-D1"), deviation("Q-D2", subject="01-002", klass="minor")), now=DAY22)
    assert again.deviations.reopened == ("Q-D2",) and again.deviations.seen == ("Q-D1",)
    assert log_states(ws) == {"Q-D1": "confirmed", "Q-D2": "open"}
    assert {d["deviation_id"]: d["last_seen_submission"] for d in ws.deviation_log()}["Q-D1"] == again.id
    assert [d["deviation_id"] for d in ws.deviation_log(status="confirmed")] == ["Q-D1"]


def test_a_dismissed_deviation_opens_again_only_with_other_data(ws, files):
    submit(ws, [upload(files, "1.csv", "1\n")], "01", report(deviation("Q-D1")), now=DAY1)
    result = ws.set_deviation_status(["Q-D1", "Q-D9"], "dismissed", "rescheduled by the amendment", now=DAY8)
    assert result.changed == (("01", "Q-D1"),) and result.refused == (("Q-D9", "no deviation Q-D9 in this workspace"),)
    assert ws.set_deviation_status(["Q-D1"], "dismissed", "again").refused == (
        ("Q-D1", "the deviation is already dismissed"),)
    submit(ws, [upload(files, "2.csv", "2\n")], "01", report(deviation("Q-D1")), now=DAY15)
    assert log_states(ws) == {"Q-D1": "dismissed"}
    submit(ws, [upload(files, "3.csv", "3\n")], "01", report(deviation("Q-D1", value="9")), now=DAY22)
    assert log_states(ws) == {"Q-D1": "open"}
    with pytest.raises(UsageError, match="needs a reason"):
        ws.set_deviation_status(["Q-D1"], "confirmed", "")


def test_the_log_as_of_a_freeze(ws, files):
    submit(ws, [upload(files, "1.csv", "1\n")], "01", report(deviation("Q-D1")), now=DAY1)
    ws.freeze("lock-1")
    ws.set_deviation_status(["Q-D1"], "confirmed", "fact")
    submit(ws, [upload(files, "2.csv", "2\n")], "01", report(deviation("Q-D1"), deviation("Q-D2", subject="01-002")),
           now=DAY8)
    then = ws.deviation_log(as_of=ws.freeze_seq("lock-1"))
    assert [(d["deviation_id"], d["status"]) for d in then] == [("Q-D1", "open")]
    assert [(d["deviation_id"], d["status"]) for d in ws.deviation_log()] == [("Q-D1", "confirmed"),
                                                                              ("Q-D2", "open")]


# -- the study-wide data cut ----------------------------------------------------------------------------


def test_data_cut_is_set_cleared_and_audited(ws):
    assert ws.data_cut() is None
    ws.set_data_cut(date(2025, 6, 30), operator="dm.anna", reason="interim analysis")
    seq = ws.audit()[-1]["seq"]
    ws.set_data_cut(date(2025, 9, 30), operator="dm.anna")
    assert ws.data_cut_date() == date(2025, 9, 30)
    assert ws.data_cut_date(as_of=seq) == date(2025, 6, 30)
    cleared = ws.set_data_cut(None)
    assert (cleared["date"], cleared["previous"]) == (None, "2025-09-30") and ws.data_cut() is None
    assert [(a["action"], a["detail"]["cut"]) for a in ws.audit()[-3:]] == [
        ("data-cut", "2025-06-30"), ("data-cut", "2025-09-30"), ("data-cut", None)]


# -- verify ---------------------------------------------------------------------------------------------


def test_verify_replays_every_state_and_finds_an_edit(ws, files, tmp_path):
    submit(ws, [upload(files, "1.csv", "1\n")], "01", report(finding("Q-A"), finding("Q-B"), deviation("Q-D1")),
           now=DAY1)
    ws.record_answers(answers_book(tmp_path / "a.xlsx", [["Q-A", "confirmed as is", None, "X", "2025-03-02",
                                                          "close", "fine"]]), "dm", site="01")
    ws.set_deviation_status(["Q-D1"], "confirmed", "fact")
    submit(ws, [upload(files, "2.csv", "2\n")], "01", report(), now=DAY8)
    result = verify(ws)
    assert result.ok, result.problems
    assert (result.checked["queries"], result.checked["deviations"]) == (3, 1)
    assert states(ws) == {"Q-A": "closed", "Q-B": "resolved", "Q-D1": "closed"}
    with sqlite3.connect(ws.path / LEDGER_FILE) as connection:
        connection.execute("UPDATE queries SET status = 'open' WHERE query_id = 'Q-B'")
        connection.execute("UPDATE deviations SET status = 'dismissed' WHERE deviation_id = 'Q-D1'")
        connection.execute("INSERT INTO queries (site, query_id, status, first_submission, last_seen_submission, "
                           "opened_at, severity, code, message, finding_json) VALUES ('01', 'Q-FAKE', 'open', 1, 1, "
                           "'2025-03-01', 'error', 'RANGE', 'x', '{}')")
    problems = [(p.code, p.message) for p in verify(ws).problems]
    assert ("VERIFY-QUERY", "site 01 query Q-B is open in the ledger, but the audit log made it resolved; restore "
            "the ledger from backup") in problems
    assert ("VERIFY-DEVIATION", "site 01 deviation Q-D1 is dismissed in the ledger, but the audit log made it "
            "confirmed; restore the ledger from backup") in problems
    assert any(code == "VERIFY-QUERY" and "Q-FAKE" in message and "no audit line opened it" in message
               for code, message in problems)


# -- migration from ledger schema 2 --------------------------------------------------------------------


V2_QUERIES = """
CREATE TABLE queries (
    site TEXT NOT NULL, query_id TEXT NOT NULL, status TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
    first_submission INTEGER NOT NULL REFERENCES submissions(id),
    last_seen_submission INTEGER NOT NULL REFERENCES submissions(id),
    resolved_submission INTEGER REFERENCES submissions(id), opened_at TEXT NOT NULL, resolved_at TEXT,
    severity TEXT NOT NULL, code TEXT NOT NULL, category TEXT, subject TEXT, form TEXT, visit TEXT, variable TEXT,
    value TEXT, message TEXT NOT NULL, finding_json TEXT NOT NULL, response TEXT, responded_by TEXT,
    response_date TEXT, response_recorded_at TEXT, response_recorded_by TEXT, PRIMARY KEY (site, query_id))
"""


def as_schema_2(path) -> None:
    """Turn a ledger back into what ledger schema 2 wrote: no deviation log, two query states."""
    with sqlite3.connect(path / LEDGER_FILE) as connection:
        connection.execute("DROP TABLE deviations")
        connection.execute("DROP INDEX queries_by_id")
        connection.execute("ALTER TABLE queries RENAME TO queries_v3")
        connection.execute(V2_QUERIES)
        connection.execute("CREATE INDEX queries_by_id ON queries(query_id)")
        columns = ("site, query_id, status, first_submission, last_seen_submission, resolved_submission, opened_at, "
                   "resolved_at, severity, code, category, subject, form, visit, variable, value, message, "
                   "finding_json, response, responded_by, response_date, response_recorded_at, response_recorded_by")
        selected = columns.replace("status,", "CASE status WHEN 'answered' THEN 'open' ELSE status END,", 1)
        connection.execute(f"INSERT INTO queries ({columns}) SELECT {selected} FROM queries_v3")
        connection.execute("DROP TABLE queries_v3")
        connection.execute("UPDATE schema_version SET version = 2")


def test_a_schema_2_ledger_is_migrated_with_its_deviation_log_rebuilt(ws, files, tmp_path):
    submit(ws, [upload(files, "1.csv", "1\n")], "01",
           report(finding("Q-A"), deviation("Q-D1"), deviation("Q-D2", subject="01-002")), now=DAY1)
    ws.record_answers(answers_book(tmp_path / "a.xlsx", [["Q-A", "typo", None, "X", "2025-03-02", None, None]]),
                      "dm", site="01")
    submit(ws, [upload(files, "2.csv", "2\n")], "01", report(finding("Q-A"), deviation("Q-D1")), now=DAY8)
    as_schema_2(ws.path)
    migrated = open_workspace(ws.path)
    with sqlite3.connect(ws.path / LEDGER_FILE) as connection:
        assert connection.execute("SELECT version FROM schema_version").fetchall() == [(3,)]
    # the stored answer makes the open query answered; the log is replayed from both recorded reports
    assert states(migrated) == {"Q-A": "answered", "Q-D1": "open", "Q-D2": "resolved"}
    assert log_states(migrated) == {"Q-D1": "open", "Q-D2": "resolved"}
    line = migrated.audit()[-1]
    assert (line["action"], line["detail"]["from"], line["detail"]["to"]) == ("ledger-migrated", 2, 3)
    assert line["detail"]["queries_snapshot"] == {"01": {"Q-A": "answered", "Q-D1": "open", "Q-D2": "resolved"}}
    assert line["detail"]["deviations_snapshot"] == {"01": {"Q-D1": "open", "Q-D2": "resolved"}}
    assert verify(migrated).ok, verify(migrated).problems
    assert open_workspace(ws.path).audit()[-1]["seq"] == line["seq"]  # migrated once
    # and the new states work on it
    assert migrated.close_queries(["Q-A"], "fine").changed == (("01", "Q-A"),)
    assert verify(migrated).ok


def test_the_detail_of_a_submission_names_every_state_change(ws, files):
    sub = submit(ws, [upload(files, "1.csv", "1\n")], "01", report(finding("Q-A"), deviation("Q-D1")), now=DAY1)
    detail = ws.audit()[-1]["detail"]
    assert detail["query_states"] == {"open": [["01", "Q-A"], ["01", "Q-D1"]]}
    assert detail["deviation_states"] == {"open": [["01", "Q-D1"]]}
    assert json.loads(json.dumps(sub.deviations.to_dict()))["new"] == ["Q-D1"]
