"""Verify a workspace: the archive, the audit chain, and the current data against the audit log.

The ledger's triggers stop an UPDATE or DELETE of what was received and of the audit log, but
anyone who can write ``ledger.sqlite`` can ``DROP TRIGGER``, and anyone who can write the archive
folder can replace a file. :func:`verify` finds what such an edit leaves behind:

``VERIFY-ARCHIVE-MISSING`` / ``VERIFY-ARCHIVE-CHANGED``
    an archived upload is gone, or its sha256 or size is not what the ledger recorded;
``VERIFY-ARCHIVE-UNRECORDED`` (a warning)
    an archived upload that no submission records: a submit killed between archiving the file and
    recording it, or a ledger restored from an older backup, which has lost the submissions received
    since (their files are still in the archive);
``VERIFY-ARCHIVE-WRITABLE``
    an archive file has a write permission (archive files are 0444). A writable archive *folder*
    (they are 0555) is only a warning: a submit killed while it adds a file leaves its folder
    writable, and the next submit makes it read-only again;
``VERIFY-AUDIT-GAP`` / ``VERIFY-AUDIT-CHAIN``
    the audit lines are not numbered 1..N, or a line's chain hash (sha256 of the line before's hash
    and this line's content) does not match: a line was edited, deleted or moved;
``VERIFY-STATUS``
    a submission's status is not the one the audit log gave it (submitted, then accepted);
``VERIFY-POINTER``
    a current-data pointer (site, form) names another submission than the audit log made current,
    or one that is not accepted;
``VERIFY-FREEZE``
    a freeze names other data than the audit log had made current when it was recorded, or a
    submission that was not accepted;
``VERIFY-QUERY`` / ``VERIFY-DEVIATION``
    a query's state (open, answered, closed, resolved) or a deviation log entry's status (open,
    confirmed, resolved, dismissed) is not the one its audited transitions gave it — each
    ``submitted``, ``answers-recorded``, ``queries-closed``, ``queries-reopened``,
    ``deviations-confirmed``, ``deviations-dismissed`` and ``data-cut-review`` line records the
    states it set (``query_states``, ``deviation_states``), and a migrated ledger's
    ``ledger-migrated`` line the states it started from — or an entry has no audit line at all;
``VERIFY-LEDGER``
    SQLite's own integrity or foreign-key check fails;
``VERIFY-STUDY``
    the study definitions the workspace was bound to (the ``workspace-created`` line and every
    ``study-amended`` line, :mod:`trialkit.study.binding`) do not follow one another (an amendment
    of a definition that was not the bound one), or the workspace's copy of one of them
    (``studies/<hash>``) no longer has its recorded hash. A missing copy is only a warning
    (``VERIFY-STUDY-COPY-MISSING``): commands load the definition from its original folder and keep
    the copy again.

What it cannot see: lines cut from the *end* of the audit log leave a valid chain (they are caught
only when a submission, pointer or freeze refers to them), and someone who rewrites the whole chain
with the algorithm below is not caught — keep backups of the workspace elsewhere.

Example::

    >>> result = verify(open_workspace("ws"))  # doctest: +SKIP
    >>> result.ok, [p.code for p in result.problems]  # doctest: +SKIP
    (True, [])
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trialkit.ledger import ARCHIVE_DIR, AUDIT_GENESIS, CURRENT_STATUSES, Workspace, chain_hash
from trialkit.lifecycle import Replay

VERIFY_SCHEMA_VERSION = "1.0"
# Audit actions that set a submission's status, and those that make it current for forms.
_STATUS_ACTIONS = ("submitted", "warnings-accepted", "removals-accepted")


@dataclass(frozen=True)
class Problem:
    """One thing that does not verify: a code, what and where, and what to do."""

    code: str
    message: str
    path: str | None = None
    site: str | None = None
    form: str | None = None
    submission: int | None = None
    seq: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return dict(self.__dict__)


@dataclass
class VerifyResult:
    """Everything :func:`verify` checked and the problems it found (``ok`` when there are none)."""

    workspace: str
    checked: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems

    def add(self, code: str, message: str, **where: Any) -> None:
        """Record one problem."""
        self.problems.append(Problem(code, message, **where))

    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON form (``trialkit verify -f json``)."""
        return {"schema_version": VERIFY_SCHEMA_VERSION, "workspace": self.workspace, "ok": self.ok,
                "checked": dict(self.checked), "problems": [p.to_dict() for p in self.problems],
                "warnings": [p.to_dict() for p in self.warnings]}


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def verify(workspace: Workspace) -> VerifyResult:
    """Check the archive, the audit chain, the statuses, pointers and freezes (see the module)."""
    result = VerifyResult(str(workspace.path))
    with workspace._connect() as connection:  # one read snapshot of the whole ledger
        connection.execute("BEGIN")
        try:
            integrity = connection.execute("PRAGMA integrity_check").fetchone()[0]
            if integrity != "ok":
                result.add("VERIFY-LEDGER", f"{workspace.ledger_path}: SQLite integrity check: {integrity}",
                           path=str(workspace.ledger_path))
            for row in connection.execute("PRAGMA foreign_key_check").fetchall():
                result.add("VERIFY-LEDGER", f"{workspace.ledger_path}: table {row[0]} row {row[1]} refers to a "
                           f"missing row of {row[2]}", path=str(workspace.ledger_path))
            files = connection.execute(
                "SELECT DISTINCT sha256, size, archive_path FROM submission_files ORDER BY archive_path").fetchall()
            audit = connection.execute("SELECT * FROM audit ORDER BY seq").fetchall()
            statuses = {r["id"]: (r["site"], r["status"]) for r in connection.execute(
                "SELECT id, site, status FROM submissions")}
            pointers = {(r["site"], r["form"]): int(r["submission_id"]) for r in connection.execute(
                "SELECT site, form, submission_id FROM current_forms")}
            held_forms = {}
            for r in connection.execute("SELECT submission_id, form FROM submission_forms"):
                held_forms.setdefault(int(r["submission_id"]), set()).add(r["form"])
            queries = {(r[0], r[1]): r[2] for r in connection.execute("SELECT site, query_id, status FROM queries")}
            deviations = {(r[0], r[1]): r[2] for r in connection.execute(
                "SELECT site, deviation_id, status FROM deviations")}
        finally:
            connection.execute("ROLLBACK")
    _check_archive(workspace, files, result)
    _check_chain(audit, result)
    _check_history(audit, statuses, pointers, held_forms, result, queries, deviations)
    _check_study(workspace, audit, result)
    return result


def _check_archive(workspace: Workspace, files: list[Any], result: VerifyResult) -> None:
    for row in files:
        path = workspace.path / row["archive_path"]
        shown = row["archive_path"]
        try:
            digest, size = _sha256(path)
        except OSError:
            result.add("VERIFY-ARCHIVE-MISSING", f"{shown}: the archived upload (sha256 {row['sha256']}) is "
                       "missing; restore it from backup", path=shown)
            continue
        if digest != row["sha256"] or size != row["size"]:
            result.add("VERIFY-ARCHIVE-CHANGED", f"{shown}: the archived upload was changed: sha256 {digest} "
                       f"({size} bytes), recorded {row['sha256']} ({row['size']} bytes); restore it from backup",
                       path=shown)
    result.checked["archive_files"] = len(files)
    root = workspace.path / ARCHIVE_DIR
    recorded = {str(row["archive_path"]) for row in files}
    for path in sorted((root / "sha256").glob("*/*")):
        shown = path.relative_to(workspace.path).as_posix()
        if path.is_file() and shown not in recorded:
            # An upload in the archive that no submission records: a submit killed between archiving
            # and recording leaves one (submitting the file again records it) — or the ledger was
            # restored from an older backup, and the submissions received since are gone from it.
            result.warnings.append(Problem(
                "VERIFY-ARCHIVE-UNRECORDED", f"{shown}: an archived upload that no submission in the ledger "
                "records. Either a submit was interrupted (submit the file again) or ledger.sqlite was "
                "restored from an older backup and has lost the submissions received since (restore the "
                "ledger that goes with this archive)", path=shown))
    for folder, names, filenames in os.walk(root):
        for name in [None, *filenames]:
            path = Path(folder) if name is None else Path(folder) / name
            mode = stat.S_IMODE(path.lstat().st_mode)
            if not mode & 0o222:
                continue
            shown = str(path.relative_to(workspace.path))
            if name is None:
                result.warnings.append(Problem(
                    "VERIFY-ARCHIVE-FOLDER-WRITABLE", f"{shown}: the archive folder is writable (mode {mode:o}; "
                    "archive folders are 0555); an interrupted submit leaves this, and the next submit makes it "
                    "read-only again", path=shown))
            else:
                result.add("VERIFY-ARCHIVE-WRITABLE", f"{shown}: the archived file is writable (mode {mode:o}; "
                           "archived files are 0444): someone changed its permissions; check it against its "
                           "sha256 and chmod it back", path=shown)
        names.sort()


def _check_chain(audit: list[Any], result: VerifyResult) -> None:
    result.checked["audit_lines"] = len(audit)
    previous = AUDIT_GENESIS
    broken = False
    for expected, line in enumerate(audit, start=1):
        if line["seq"] != expected and not any(p.code == "VERIFY-AUDIT-GAP" for p in result.problems):
            result.add("VERIFY-AUDIT-GAP", f"audit line {expected} is missing (the next is {line['seq']}): a line "
                       "was deleted", seq=expected)
        if not broken and line["chain"] != chain_hash(previous, line):
            broken = True
            result.add("VERIFY-AUDIT-CHAIN", f"audit line {line['seq']} ({line['action']}) does not match its "
                       "chain hash: it, or a line before it, was edited, deleted or moved; every later line is "
                       "unverified", seq=int(line["seq"]))
        previous = line["chain"] or ""


def _detail(line: Any) -> dict[str, Any]:
    try:
        value = json.loads(line["detail"])
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _check_history(audit: list[Any], statuses: dict[int, tuple[str, str]], pointers: dict[tuple[str, str], int],
                   held_forms: dict[int, set[str]], result: VerifyResult,
                   queries: dict[tuple[str, str], str] | None = None,
                   deviations: dict[tuple[str, str], str] | None = None) -> None:
    """Replay the audit log: statuses, pointers, freezes, query states and the deviation log must be
    what it says happened."""
    queries = queries if queries is not None else {}
    deviations = deviations if deviations is not None else {}
    said_status: dict[int, str] = {}
    replayed: dict[tuple[str, str], int] = {}
    states = Replay()
    freezes = 0
    for line in audit:
        detail = _detail(line)
        action, site, submission = line["action"], line["site"], line["submission_id"]
        states.apply(detail)
        if action == "ledger-migrated":
            if "current_forms" in detail:  # schema 1 → 2: the pointers the migration set
                replayed = {(s, f): int(i) for s, forms in (detail.get("current_forms") or {}).items()
                            for f, i in forms.items()}
            continue
        if action in _STATUS_ACTIONS and submission is not None and detail.get("status"):
            said_status[int(submission)] = detail["status"]
        if action in _STATUS_ACTIONS and submission is not None and detail.get("became_current"):
            forms = detail.get("current_forms")
            if forms is None:  # written by ledger schema 1: the submission became the site's data whole
                forms = sorted(held_forms.get(int(submission), ()))
                replayed = {k: v for k, v in replayed.items() if k[0] != site}
            for form in forms:
                replayed[(site, form)] = int(submission)
        if action == "freeze":
            freezes += 1
            _check_freeze(line, detail, replayed, said_status, held_forms, result)
    for submission_id, (site, status) in sorted(statuses.items()):
        said = said_status.get(submission_id)
        if said is None:
            result.add("VERIFY-STATUS", f"submission {submission_id} (site {site}) has no 'submitted' line in the "
                       "audit log", submission=submission_id, site=site)
        elif said != status:
            result.add("VERIFY-STATUS", f"submission {submission_id} (site {site}) is {status} in the ledger, but "
                       f"the audit log made it {said}", submission=submission_id, site=site)
    for (site, form), submission_id in sorted(pointers.items()):
        status = statuses.get(submission_id, (None, "missing"))[1]
        expected = replayed.get((site, form))
        if status not in CURRENT_STATUSES or statuses.get(submission_id, (None,))[0] != site:
            result.add("VERIFY-POINTER", f"site {site} form {form}: the current data points to submission "
                       f"{submission_id}, which is {status}"
                       + (" (or of another site)" if status in CURRENT_STATUSES else "")
                       + (f"; the audit log made submission {expected} current" if expected else ""),
                       site=site, form=form, submission=submission_id)
        elif expected != submission_id:
            result.add("VERIFY-POINTER", f"site {site} form {form}: the current data points to submission "
                       f"{submission_id}, but the audit log made "
                       + (f"submission {expected}" if expected else "none") + " current",
                       site=site, form=form, submission=submission_id)
    for (site, form), submission_id in sorted(replayed.items()):
        if (site, form) not in pointers:
            result.add("VERIFY-POINTER", f"site {site} form {form}: the audit log made submission {submission_id} "
                       "current, but the ledger has no current data for it", site=site, form=form,
                       submission=submission_id)
    result.checked["submissions"] = len(statuses)
    result.checked["pointers"] = len(pointers)
    result.checked["freezes"] = freezes
    _check_states("VERIFY-QUERY", "query", queries, states.queries, result)
    _check_states("VERIFY-DEVIATION", "deviation", deviations, states.deviations, result)
    result.checked["queries"] = len(queries)
    result.checked["deviations"] = len(deviations)


def _check_states(code: str, what: str, ledger: dict[tuple[str, str], str], replayed: dict[tuple[str, str], str],
                  result: VerifyResult) -> None:
    """Every query (or deviation log entry) is in the state its audited transitions gave it."""
    for (site, ident), state in sorted(ledger.items()):
        said = replayed.get((site, ident))
        if said is None:
            result.add(code, f"site {site} {what} {ident} is {state} in the ledger, but no audit line opened it: it "
                       "was added behind trialkit's back; restore the ledger from backup", site=site)
        elif said != state:
            result.add(code, f"site {site} {what} {ident} is {state} in the ledger, but the audit log made it "
                       f"{said}; restore the ledger from backup", site=site)
    for (site, ident), state in sorted(replayed.items()):
        if (site, ident) not in ledger:
            result.add(code, f"site {site} {what} {ident}: the audit log made it {state}, but the ledger has no "
                       "such entry (deleted); restore the ledger from backup", site=site)


def _check_study(workspace: Workspace, audit: list[Any], result: VerifyResult) -> None:
    """The study bindings of the audit log follow one another, and each kept copy has its hash."""
    from trialkit.study.binding import AMENDED, CREATED
    from trialkit.study.loader import definition_hash

    bound: dict[str, Any] | None = None
    definitions: dict[str, dict[str, Any]] = {}
    for line in audit:
        if line["action"] not in (CREATED, AMENDED):
            continue
        detail = _detail(line)
        new = detail.get("binding") if line["action"] == CREATED else detail.get("new")
        if line["action"] == AMENDED:
            old = detail.get("old") or {}
            if bound is not None and old.get("definition_hash") != bound.get("definition_hash"):
                result.add("VERIFY-STUDY", f"audit line {line['seq']} (study-amended) amends definition "
                           f"{str(old.get('definition_hash'))[:16]}, but the workspace was bound to "
                           f"{str(bound.get('definition_hash'))[:16]}: the history of study definitions is "
                           "inconsistent; restore the ledger from backup", seq=int(line["seq"]))
        if isinstance(new, dict) and new.get("definition_hash"):
            bound = new
            definitions.setdefault(str(new["definition_hash"]), new)
    for digest, binding in definitions.items():
        if not binding.get("copy"):
            continue
        copy = workspace.path / str(binding["copy"])
        shown = str(binding["copy"])
        if not (copy / "study.toml").is_file():
            result.warnings.append(Problem(
                "VERIFY-STUDY-COPY-MISSING", f"{shown}: the workspace's copy of the {binding.get('study_id')} "
                f"{binding.get('protocol_version')} definition is missing; the next command that loads it from "
                f"{binding.get('path')} keeps it again", path=shown))
            continue
        found = definition_hash(copy)
        if found != digest:
            result.add("VERIFY-STUDY", f"{shown}: the workspace's copy of the {binding.get('study_id')} "
                       f"{binding.get('protocol_version')} definition was changed (definition {found[:16]}, "
                       f"recorded {digest[:16]}); restore it from backup or from the study folder", path=shown)
    result.checked["study_definitions"] = len(definitions)


def _check_freeze(line: Any, detail: dict[str, Any], replayed: dict[tuple[str, str], int],
                  said_status: dict[int, str], held_forms: dict[int, set[str]], result: VerifyResult) -> None:
    label = detail.get("label")
    if "forms" in detail:
        frozen = {(s, f): int(i) for s, forms in detail["forms"].items() for f, i in forms.items()}
    else:  # a schema-1 freeze named one submission per site
        frozen = {(s, f): int(i) for s, i in (detail.get("submissions") or {}).items()
                  for f in held_forms.get(int(i), ())}
    for (site, form), submission_id in sorted(frozen.items()):
        if said_status.get(submission_id) not in CURRENT_STATUSES:
            result.add("VERIFY-FREEZE", f"freeze {label!r}: site {site} form {form} names submission {submission_id}, "
                       "which the audit log had not accepted", seq=int(line["seq"]), site=site, form=form,
                       submission=submission_id)
    if frozen != {k: v for k, v in replayed.items() if "forms" in detail or k[0] in {s for s, _ in frozen}}:
        differ = sorted(set(frozen.items()) ^ set(replayed.items()))
        site, form = differ[0][0] if differ else (None, None)
        result.add("VERIFY-FREEZE", f"freeze {label!r} (audit line {line['seq']}) does not hold the data the audit "
                   f"log had made current then (first difference: site {site} form {form})",
                   seq=int(line["seq"]), site=site, form=form)
