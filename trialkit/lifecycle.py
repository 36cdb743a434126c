"""Query states and the deviation log: what a submission, a site's answer or the data manager does to them.

**Queries** (one per site and query id; the id is stable across re-uploads, :func:`trialkit.findings.query_id`):

==========  =====================================================================================
state       how a query gets there
==========  =====================================================================================
open        a submission shows the finding for the first time; or it comes back after it was
            resolved; or it comes back with other data after it was closed; or the data manager
            reopens it (``reopen``, with a reason)
answered    the site's answer was read back from its query workbook (``queries --answers``)
closed      the data manager closed it, with a reason (``close``, or ``DM_ACTION = close`` in the
            answered workbook); confirming or dismissing a deviation closes its query too
resolved    a later submission that could have shown it again (it holds the query's form, no file
            or structure error stopped that form, and the check that raised it ran) no longer does
==========  =====================================================================================

A closed query stays closed when a later upload shows *the same* finding again (same code, subject,
form, visit, variable, value, message and evidence: :func:`fingerprint`) — the data manager has
decided about exactly that. When the finding comes back with other data (the value or the dates
behind it changed), the query is open again ("reopened by data"). A resolved query that comes back
is open again. Only open and answered queries are resolved by data.

**The deviation log** (one entry per site and deviation id — the deviation finding's query id):
every protocol deviation ever detected, in any submission (rejected and held ones too), with its
code, class, subject, message and evidence, first and last submission that showed it, and its status:

==========  =====================================================================================
status      how an entry gets there
==========  =====================================================================================
open        detected; or detected again after it was resolved; or detected again with other data
            after it was dismissed
confirmed   the data manager confirmed it (``deviations confirm``, with a reason). A confirmed
            deviation stays confirmed whatever later uploads say: it is a fact of the trial
resolved    a later submission that could have shown it again no longer does (corrected data)
dismissed   the data manager dismissed it (``deviations dismiss``, with a reason): not a deviation
==========  =====================================================================================

Every function here works inside the ledger's transaction (a :class:`sqlite3.Connection` with rows
as :class:`sqlite3.Row`) and returns what changed; :mod:`trialkit.ledger` writes the audit lines,
whose ``query_states`` and ``deviation_states`` (``{state: [[site, id], ...]}``) let
:mod:`trialkit.verify` replay every state. Nothing here prints.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trialkit.findings import Category, Finding, Report, Severity

OPEN, ANSWERED, CLOSED, RESOLVED = "open", "answered", "closed", "resolved"
QUERY_STATES = (OPEN, ANSWERED, CLOSED, RESOLVED)
ACTIVE_QUERY_STATES = (OPEN, ANSWERED)  # what a site or the data manager still has to act on
CONFIRMED, DISMISSED = "confirmed", "dismissed"
DEVIATION_STATES = (OPEN, CONFIRMED, RESOLVED, DISMISSED)

# Errors of these categories mean part of the data was never read or validated, so a finding that
# is absent from such a submission may only be absent because nobody looked: it is not resolved.
BLOCKING_CATEGORIES = (Category.FILE, Category.STRUCTURE)
QUERY_ID_PATTERN = re.compile(r"^Q-[0-9A-F]{10}$")
MAX_REASON_CHARS = 2000

QUERIES_TABLE = """
CREATE TABLE queries (
    site TEXT NOT NULL,
    query_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'answered', 'closed', 'resolved')),
    first_submission INTEGER NOT NULL REFERENCES submissions(id),
    last_seen_submission INTEGER NOT NULL REFERENCES submissions(id),
    resolved_submission INTEGER REFERENCES submissions(id),
    opened_at TEXT NOT NULL,
    resolved_at TEXT,
    severity TEXT NOT NULL,
    code TEXT NOT NULL,
    category TEXT,
    subject TEXT,
    form TEXT,
    visit TEXT,
    variable TEXT,
    value TEXT,
    message TEXT NOT NULL,
    finding_json TEXT NOT NULL,
    response TEXT,
    responded_by TEXT,
    response_date TEXT,
    response_recorded_at TEXT,
    response_recorded_by TEXT,
    site_comment TEXT,
    status_at TEXT,
    status_by TEXT,
    status_reason TEXT,
    PRIMARY KEY (site, query_id)
);
CREATE INDEX queries_by_id ON queries(query_id);
"""

DEVIATIONS_TABLE = """
CREATE TABLE deviations (
    site TEXT NOT NULL,
    deviation_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'confirmed', 'resolved', 'dismissed')),
    code TEXT NOT NULL,
    class TEXT,
    severity TEXT NOT NULL,
    subject TEXT,
    form TEXT,
    visit TEXT,
    variable TEXT,
    value TEXT,
    message TEXT NOT NULL,
    finding_json TEXT NOT NULL,
    first_submission INTEGER NOT NULL REFERENCES submissions(id),
    last_seen_submission INTEGER NOT NULL REFERENCES submissions(id),
    resolved_submission INTEGER REFERENCES submissions(id),
    first_seen_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    status_at TEXT,
    status_by TEXT,
    status_reason TEXT,
    PRIMARY KEY (site, deviation_id)
);
CREATE INDEX deviations_by_id ON deviations(deviation_id);
"""

# The columns a schema-2 queries table already had (copied as they are by the migration).
V2_QUERY_COLUMNS = (
    "site", "query_id", "status", "first_submission", "last_seen_submission", "resolved_submission",
    "opened_at", "resolved_at", "severity", "code", "category", "subject", "form", "visit", "variable",
    "value", "message", "finding_json", "response", "responded_by", "response_date", "response_recorded_at",
    "response_recorded_by",
)

# What of a finding decides whether it is "the same" when it comes back (not where it is in a file).
_FINGERPRINT_FIELDS = ("code", "severity", "subject", "form", "visit", "variable", "value", "message", "evidence")


# ------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class QueryChanges:
    """What one submission (or a data-cut review) did to the site's queries (lists of query ids).

    ``kept_closed``: closed queries whose unchanged finding came back (they stay closed);
    ``reopened``: resolved queries that came back, and closed ones that came back with other data.
    """

    new: tuple[str, ...] = ()
    still_open: tuple[str, ...] = ()
    resolved: tuple[str, ...] = ()
    reopened: tuple[str, ...] = ()
    tracked: bool = True  # False when a file/structure error stopped resolution
    kept_closed: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Counts and ids, JSON-ready."""
        return {
            "new": list(self.new),
            "still_open": list(self.still_open),
            "resolved": list(self.resolved),
            "reopened": list(self.reopened),
            "kept_closed": list(self.kept_closed),
            "resolution_checked": self.tracked,
        }

    def states(self, site: str) -> dict[str, list[list[str]]]:
        """The state changes as the audit log records them: ``{state: [[site, id], ...]}``."""
        return _states({OPEN: [*self.new, *self.reopened], RESOLVED: list(self.resolved)}, site)


@dataclass(frozen=True)
class DeviationChanges:
    """What one submission (or a data-cut review) did to the site's deviation log."""

    new: tuple[str, ...] = ()
    seen: tuple[str, ...] = ()
    resolved: tuple[str, ...] = ()
    reopened: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Ids, JSON-ready."""
        return {"new": list(self.new), "seen_again": list(self.seen), "resolved": list(self.resolved),
                "reopened": list(self.reopened)}

    def states(self, site: str) -> dict[str, list[list[str]]]:
        """The status changes as the audit log records them: ``{status: [[site, id], ...]}``."""
        return _states({OPEN: [*self.new, *self.reopened], RESOLVED: list(self.resolved)}, site)


@dataclass(frozen=True)
class Transition:
    """What a data-manager action (close, reopen, confirm, dismiss) did.

    ``changed`` lists ``(site, id)`` that moved to the new state; ``refused`` ``(id as given,
    why)``; ``queries_closed`` the queries closed with confirmed or dismissed deviations.
    """

    action: str
    state: str
    reason: str
    changed: tuple[tuple[str, str], ...] = ()
    refused: tuple[tuple[str, str], ...] = ()
    queries_closed: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "action": self.action,
            "state": self.state,
            "reason": self.reason,
            "changed": [{"site": s, "id": i} for s, i in self.changed],
            "refused": [{"id": i, "reason": r} for i, r in self.refused],
            "queries_closed": [{"site": s, "id": i} for s, i in self.queries_closed],
        }


def _states(changes: Mapping[str, Sequence[str]], site: str) -> dict[str, list[list[str]]]:
    return {state: [[site, i] for i in ids] for state, ids in changes.items() if ids}


def merge_states(*parts: Mapping[str, Sequence[Sequence[str]]]) -> dict[str, list[list[str]]]:
    """Several ``{state: [[site, id]]}`` in order: a later change of the same id wins."""
    final: dict[tuple[str, str], str] = {}
    for part in parts:
        for state, pairs in part.items():
            for site, ident in pairs:
                final.pop((site, ident), None)
                final[(site, ident)] = state
    out: dict[str, list[list[str]]] = {}
    for (site, ident), state in final.items():
        out.setdefault(state, []).append([site, ident])
    return out


# ------------------------------------------------------------------------------------------------
# Findings


def fingerprint(finding: Finding | Mapping[str, Any]) -> str:
    """What makes a finding "the same" when it comes back: its code, severity, subject, form, visit,
    variable, value, message and evidence — not the file, sheet or row it sits in now."""
    data = finding.to_dict() if isinstance(finding, Finding) else dict(finding)
    content = {name: data.get(name) for name in _FINGERPRINT_FIELDS}
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def query_findings(report: Report) -> dict[str, Finding]:
    """The report's queries: errors and warnings with a query id, first finding per id."""
    found: dict[str, Finding] = {}
    for finding in report.findings:
        if finding.severity == Severity.INFO or not finding.query_id:
            continue
        found.setdefault(finding.query_id, finding)
    return found


def deviation_findings(report: Report) -> dict[str, Finding]:
    """The report's protocol deviations (category ``deviation``) with a query id, first per id."""
    found: dict[str, Finding] = {}
    for finding in report.findings:
        if finding.category == Category.DEVIATION and finding.query_id:
            found.setdefault(finding.query_id, finding)
    return found


@dataclass(frozen=True)
class _Judge:
    """Whether a submission could have shown an absent finding again (so that its absence resolves it)."""

    blocked: frozenset[str | None]
    not_run: frozenset[str]
    forms: frozenset[str] | None

    @property
    def tracked(self) -> bool:
        return None not in self.blocked and (self.forms is None or bool(self.forms))

    def could_show(self, form: str | None, code: str) -> bool:
        if not self.tracked or form in self.blocked:
            return False
        if self.forms is not None and form is not None and form not in self.forms:
            return False  # the upload does not hold that form: the finding cannot be judged
        return code not in self.not_run and f"schema:{form}" not in self.not_run  # the check ran


def _judge(report: Report, forms: Iterable[str] | None) -> _Judge:
    blocked = frozenset(f.form for f in report.findings
                        if f.severity == Severity.ERROR and f.category in BLOCKING_CATEGORIES)
    not_run = frozenset(c.id for c in report.checks if c.status.value in ("skipped", "error"))
    return _Judge(blocked, not_run, None if forms is None else frozenset(forms))


def _details(finding: Finding) -> tuple[Any, ...]:
    return (finding.severity.value, finding.code, finding.category.value, finding.subject, finding.form,
            finding.visit, finding.variable, finding.value, finding.message,
            json.dumps(finding.to_dict(), ensure_ascii=False, default=str))


def _stored_fingerprint(finding_json: str) -> str | None:
    try:
        return fingerprint(json.loads(finding_json))
    except (TypeError, ValueError):
        return None


# ------------------------------------------------------------------------------------------------
# Tracking from a submission


def track_queries(connection: sqlite3.Connection, site: str, submission_id: int, report: Report, at: str,
                  operator: str, forms: Iterable[str] | None = None, *, resolve: bool = True) -> QueryChanges:
    """Open, keep, reopen or resolve the site's queries from one validated submission (see the module).

    ``forms`` is what the submission holds (None: any form); ``resolve=False`` (a data-cut review of
    data already received) only opens and keeps, never resolves.
    """
    seen = query_findings(report)
    judge = _judge(report, forms)
    existing = {r["query_id"]: r for r in connection.execute(
        "SELECT query_id, status, form, code, finding_json FROM queries WHERE site = ?", (site,))}
    new: list[str] = []
    still_open: list[str] = []
    reopened: list[str] = []
    kept_closed: list[str] = []
    for qid, finding in seen.items():
        details = _details(finding)
        before = existing.get(qid)
        if before is None:
            connection.execute(
                "INSERT INTO queries (site, query_id, status, first_submission, last_seen_submission, "
                "opened_at, severity, code, category, subject, form, visit, variable, value, message, "
                "finding_json) VALUES (?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (site, qid, submission_id, submission_id, at, *details),
            )
            new.append(qid)
            continue
        status = before["status"]
        if status == CLOSED and _stored_fingerprint(before["finding_json"]) == fingerprint(finding):
            connection.execute("UPDATE queries SET last_seen_submission = ? WHERE site = ? AND query_id = ?",
                               (submission_id, site, qid))
            kept_closed.append(qid)
            continue
        if status in ACTIVE_QUERY_STATES:
            connection.execute(
                "UPDATE queries SET last_seen_submission = ?, severity = ?, code = ?, category = ?, subject = ?, "
                "form = ?, visit = ?, variable = ?, value = ?, message = ?, finding_json = ? "
                "WHERE site = ? AND query_id = ?",
                (submission_id, *details, site, qid),
            )
            still_open.append(qid)
            continue
        # resolved, or closed with other data: open again
        why = (f"came back in submission {submission_id}" if status == RESOLVED
               else f"came back with other data in submission {submission_id}")
        connection.execute(
            "UPDATE queries SET status = 'open', last_seen_submission = ?, resolved_submission = NULL, "
            "resolved_at = NULL, status_at = ?, status_by = ?, status_reason = ?, severity = ?, code = ?, "
            "category = ?, subject = ?, form = ?, visit = ?, variable = ?, value = ?, message = ?, "
            "finding_json = ? WHERE site = ? AND query_id = ?",
            (submission_id, at, operator, why, *details, site, qid),
        )
        reopened.append(qid)
    resolved: list[str] = []
    if resolve and judge.tracked:
        for qid, before in existing.items():
            if before["status"] not in ACTIVE_QUERY_STATES or qid in seen:
                continue
            if not judge.could_show(before["form"], before["code"]):
                continue
            connection.execute(
                "UPDATE queries SET status = 'resolved', resolved_at = ?, resolved_submission = ?, status_at = ?, "
                "status_by = ?, status_reason = ? WHERE site = ? AND query_id = ?",
                (at, submission_id, at, operator, f"not shown again by submission {submission_id}", site, qid),
            )
            resolved.append(qid)
    return QueryChanges(tuple(new), tuple(still_open), tuple(sorted(resolved)), tuple(reopened),
                        judge.tracked and resolve, tuple(kept_closed))


def track_deviations(connection: sqlite3.Connection, site: str, submission_id: int, report: Report, at: str,
                     operator: str, forms: Iterable[str] | None = None, *,
                     resolve: bool = True) -> DeviationChanges:
    """Add, keep, reopen or resolve the site's deviation log entries from one validated submission."""
    seen = deviation_findings(report)
    judge = _judge(report, forms)
    existing = {r["deviation_id"]: r for r in connection.execute(
        "SELECT deviation_id, status, form, code, finding_json FROM deviations WHERE site = ?", (site,))}
    new: list[str] = []
    again: list[str] = []
    reopened: list[str] = []
    for ident, finding in seen.items():
        before = existing.get(ident)
        details = (finding.code, finding.deviation_class, finding.severity.value, finding.subject, finding.form,
                   finding.visit, finding.variable, finding.value, finding.message,
                   json.dumps(finding.to_dict(), ensure_ascii=False, default=str))
        if before is None:
            connection.execute(
                "INSERT INTO deviations (site, deviation_id, status, code, class, severity, subject, form, visit, "
                "variable, value, message, finding_json, first_submission, last_seen_submission, first_seen_at, "
                "last_seen_at) VALUES (?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (site, ident, *details, submission_id, submission_id, at, at),
            )
            new.append(ident)
            continue
        status = before["status"]
        same = _stored_fingerprint(before["finding_json"]) == fingerprint(finding)
        if status == CONFIRMED or (status == DISMISSED and same):
            # what the data manager decided about stays as it was decided
            connection.execute(
                "UPDATE deviations SET last_seen_submission = ?, last_seen_at = ? WHERE site = ? AND deviation_id = ?",
                (submission_id, at, site, ident))
            again.append(ident)
            continue
        if status == OPEN:
            connection.execute(
                "UPDATE deviations SET code = ?, class = ?, severity = ?, subject = ?, form = ?, visit = ?, "
                "variable = ?, value = ?, message = ?, finding_json = ?, last_seen_submission = ?, last_seen_at = ? "
                "WHERE site = ? AND deviation_id = ?",
                (*details, submission_id, at, site, ident))
            again.append(ident)
            continue
        why = (f"detected again in submission {submission_id}" if status == RESOLVED
               else f"detected again with other data in submission {submission_id}")
        connection.execute(
            "UPDATE deviations SET status = 'open', code = ?, class = ?, severity = ?, subject = ?, form = ?, "
            "visit = ?, variable = ?, value = ?, message = ?, finding_json = ?, last_seen_submission = ?, "
            "last_seen_at = ?, resolved_submission = NULL, status_at = ?, status_by = ?, status_reason = ? "
            "WHERE site = ? AND deviation_id = ?",
            (*details, submission_id, at, at, operator, why, site, ident))
        reopened.append(ident)
    resolved: list[str] = []
    if resolve and judge.tracked:
        for ident, before in existing.items():
            if before["status"] != OPEN or ident in seen or not judge.could_show(before["form"], before["code"]):
                continue
            connection.execute(
                "UPDATE deviations SET status = 'resolved', resolved_submission = ?, status_at = ?, status_by = ?, "
                "status_reason = ? WHERE site = ? AND deviation_id = ?",
                (submission_id, at, operator, f"not shown again by submission {submission_id} (corrected data)",
                 site, ident))
            resolved.append(ident)
    return DeviationChanges(tuple(new), tuple(again), tuple(sorted(resolved)), tuple(reopened))


# ------------------------------------------------------------------------------------------------
# The data manager's actions


def check_reason(reason: str | None, action: str) -> str:
    """The reason as given (stripped); ValueError when it is empty or too long."""
    text = (reason or "").strip()
    if not text:
        raise ValueError(f"{action} needs a reason (--reason TEXT): it is kept in the audit log")
    if len(text) > MAX_REASON_CHARS:
        raise ValueError(f"the reason has {len(text)} characters; use at most {MAX_REASON_CHARS}")
    return text


def normalise_id(text: str) -> str:
    """A query or deviation id as typed (``q-1a2b…`` → ``Q-1A2B…``)."""
    return str(text).strip().upper()


def resolve_ids(connection: sqlite3.Connection, table: str, ids: Iterable[str],
                site: str | None) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``(site, id)`` of each id in ``table`` (queries or deviations), and the refused ``(id, why)``:
    unknown, of another site than ``site``, or of several sites when ``site`` is not given."""
    column = "query_id" if table == "queries" else "deviation_id"
    found: list[tuple[str, str]] = []
    refused: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for typed in ids:
        ident = normalise_id(typed)
        sites = sorted(r[0] for r in connection.execute(f"SELECT site FROM {table} WHERE {column} = ?", (ident,)))
        what = "query" if table == "queries" else "deviation"
        if not sites:
            refused.append((typed, f"no {what} {ident} in this workspace"))
        elif site is not None and site not in sites:
            refused.append((typed, f"the {what} belongs to site {', '.join(sites)}, not {site}"))
        elif site is None and len(sites) > 1:
            refused.append((typed, f"sites {', '.join(sites)} each have a {what} {ident}; name the site with --site"))
        else:
            key = (site or sites[0], ident)
            if key not in seen:
                seen.add(key)
                found.append(key)
    return found, refused


def close_queries(connection: sqlite3.Connection, ids: Iterable[str], reason: str, operator: str, at: str,
                  site: str | None = None) -> Transition:
    """Close open or answered queries (data manager, with a reason). A closed one is refused
    ("already closed"), and so is a resolved one (the data already resolved it)."""
    return _move_queries(connection, ids, CLOSED, reason, operator, at, site)


def reopen_queries(connection: sqlite3.Connection, ids: Iterable[str], reason: str, operator: str, at: str,
                   site: str | None = None) -> Transition:
    """Reopen closed or resolved queries (data manager, with a reason); they are open again."""
    return _move_queries(connection, ids, OPEN, reason, operator, at, site)


def _move_queries(connection: sqlite3.Connection, ids: Iterable[str], state: str, reason: str, operator: str,
                  at: str, site: str | None) -> Transition:
    action = "close" if state == CLOSED else "reopen"
    reason = check_reason(reason, action)
    found, refused = resolve_ids(connection, "queries", ids, site)
    allowed = ACTIVE_QUERY_STATES if state == CLOSED else (CLOSED, RESOLVED)
    changed: list[tuple[str, str]] = []
    for where, ident in found:
        status = connection.execute("SELECT status FROM queries WHERE site = ? AND query_id = ?",
                                    (where, ident)).fetchone()[0]
        if status not in allowed:
            refused.append((ident, f"the query is {status}; only {' or '.join(allowed)} queries can be "
                                   f"{'closed' if state == CLOSED else 'reopened'}"))
            continue
        _set_query_state(connection, where, ident, state, reason, operator, at)
        changed.append((where, ident))
    return Transition(action, state, reason, tuple(changed), tuple(refused))


def _set_query_state(connection: sqlite3.Connection, site: str, ident: str, state: str, reason: str,
                     operator: str, at: str) -> None:
    extra = ", resolved_submission = NULL, resolved_at = NULL" if state == OPEN else ""
    connection.execute(
        f"UPDATE queries SET status = ?, status_at = ?, status_by = ?, status_reason = ?{extra} "
        "WHERE site = ? AND query_id = ?", (state, at, operator, reason, site, ident))


def mark_answered(connection: sqlite3.Connection, site: str, ident: str, operator: str, at: str) -> bool:
    """An open query whose answer was stored becomes answered (True); other states stay as they are."""
    status = connection.execute("SELECT status FROM queries WHERE site = ? AND query_id = ?",
                                (site, ident)).fetchone()
    if status is None or status[0] != OPEN:
        return False
    _set_query_state(connection, site, ident, ANSWERED, "the site's answer was read back", operator, at)
    return True


def set_deviation_status(connection: sqlite3.Connection, ids: Iterable[str], status: str, reason: str,
                         operator: str, at: str, site: str | None = None) -> Transition:
    """Confirm or dismiss deviations (data manager, with a reason); their open or answered queries
    are closed with the same reason. A deviation already in that status is refused."""
    if status not in (CONFIRMED, DISMISSED):
        raise ValueError(f"a deviation is confirmed or dismissed, not {status!r}")
    action = "confirm" if status == CONFIRMED else "dismiss"
    reason = check_reason(reason, action)
    found, refused = resolve_ids(connection, "deviations", ids, site)
    changed: list[tuple[str, str]] = []
    closed: list[tuple[str, str]] = []
    for where, ident in found:
        before = connection.execute("SELECT status FROM deviations WHERE site = ? AND deviation_id = ?",
                                    (where, ident)).fetchone()[0]
        if before == status:
            refused.append((ident, f"the deviation is already {status}"))
            continue
        connection.execute(
            "UPDATE deviations SET status = ?, status_at = ?, status_by = ?, status_reason = ? "
            "WHERE site = ? AND deviation_id = ?", (status, at, operator, reason, where, ident))
        changed.append((where, ident))
        query = connection.execute("SELECT status FROM queries WHERE site = ? AND query_id = ?",
                                   (where, ident)).fetchone()
        if query is not None and query[0] in ACTIVE_QUERY_STATES:
            _set_query_state(connection, where, ident, CLOSED, f"deviation {status}: {reason}", operator, at)
            closed.append((where, ident))
    return Transition(action, status, reason, tuple(changed), tuple(refused), tuple(closed))


# ------------------------------------------------------------------------------------------------
# Snapshots (the base that verify replays a migrated ledger from)


def snapshot(connection: sqlite3.Connection, table: str) -> dict[str, dict[str, str]]:
    """``{site: {id: state}}`` of the queries or the deviation log."""
    column = "query_id" if table == "queries" else "deviation_id"
    result: dict[str, dict[str, str]] = {}
    for row in connection.execute(f"SELECT site, {column}, status FROM {table} ORDER BY site, {column}"):
        result.setdefault(row[0], {})[row[1]] = row[2]
    return result


@dataclass
class Replay:
    """States replayed from the audit log (see :mod:`trialkit.verify`)."""

    queries: dict[tuple[str, str], str] = field(default_factory=dict)
    deviations: dict[tuple[str, str], str] = field(default_factory=dict)

    def apply(self, detail: Mapping[str, Any]) -> None:
        """Take one audit line's ``query_states``/``deviation_states`` and migration snapshots."""
        for key, target in (("queries", self.queries), ("deviations", self.deviations)):
            base = detail.get(f"{key}_snapshot")
            if isinstance(base, dict):
                target.clear()
                target.update({(s, i): state for s, ids in base.items() for i, state in ids.items()})
        for key, target in (("query_states", self.queries), ("deviation_states", self.deviations)):
            changes = detail.get(key)
            if isinstance(changes, dict):
                for state, pairs in changes.items():
                    for pair in pairs or ():
                        if isinstance(pair, list | tuple) and len(pair) == 2:
                            target[(str(pair[0]), str(pair[1]))] = state
