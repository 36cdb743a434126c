"""The submissions ledger and the raw-upload archive: one workspace folder, no server.

A workspace is a folder holding:

``trialkit-workspace.toml``
    what the workspace is for (study id) and when it was created.
``ledger.sqlite``
    the ledger (SQLite, WAL journal, foreign keys on): every submission with its files, status and
    full findings; what each submission held, form by form (rows, subjects, every record's key and
    content hash: :mod:`trialkit.records`); which submission is each site's current data for each
    form; the queries with their state (open, answered, closed, resolved), history and the sites'
    answers; the deviation log (every protocol deviation ever detected, open, confirmed, resolved or
    dismissed: :mod:`trialkit.lifecycle`); and an append-only audit log
    (SQLite triggers abort any UPDATE or DELETE of it, and each line carries a hash chained to the
    line before, so that an edit made around the triggers is found by :mod:`trialkit.verify`).
``archive/sha256/ab/abcdef….ext``
    every raw upload, byte for byte, named by its sha256 and written read-only (files 0444, folders
    0555).

:meth:`Workspace.submit` records one site upload in a single ``BEGIN IMMEDIATE`` transaction: a
crash leaves the last complete state. Archive files are written (atomically) before the transaction
commits; an archive file whose transaction never committed is harmless, because the ledger is the
only thing that refers to it.

**Per-form currency.** A site's current data is kept per form: an accepted submission becomes the
site's current data only for the forms it holds (a site that sends only its adverse events keeps
its demographics, labs and everything else). Pool and freeze assemble each site's data form by form.

Statuses, decided in this order:

- ``rejected``: a submission with any error, or one in which no form of the study was recognised
  (``LEDGER-NO-FORM``) — whatever flags are given;
- ``held``: warnings that were not acknowledged (``accept_warnings``), or records it would remove
  from the site's current data (``LEDGER-REMOVED-RECORDS``: a row, a subject or a visit of a form it
  holds is missing) that were not accepted (``accept_removals``). A held submission is recorded, its
  queries tracked, but it is not the site's current data; re-submitting the same files with the
  missing flag accepts it;
- ``accepted`` when clean, ``accepted-with-warnings`` when warnings or removals were acknowledged.

Protocol deviations (category ``deviation``) do not decide the status: correct data that shows a
deviation is accepted, and the deviation stays a query for the site and enters the deviation log
(see :func:`blocking_counts`). An upload none of whose records is the site's (``SITE-MISMATCH``) is
refused before anything is archived (:class:`SiteMismatch`). The study-wide data cut is an audit line
(``data-cut``: :meth:`Workspace.set_data_cut`).
An upload with privacy findings (direct identifiers) is refused before anything is archived
(:class:`PrivacyRefused`); only an audit line records that it came. Only regular files are taken:
a symbolic link, a folder, a device or a FIFO is refused before anything is archived.

Nothing in this module prints or imports click: it raises :class:`~trialkit.errors.TrialkitError`
for "could not run" and :class:`~trialkit.errors.UsageError` for a wrong call (unknown site, ...).
"""

from __future__ import annotations

import dataclasses
import getpass
import hashlib
import json
import os
import re
import sqlite3
import tempfile
import tomllib
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from trialkit import lifecycle
from trialkit.errors import TrialkitError, UsageError
from trialkit.findings import Category, Finding, Report, Severity
from trialkit.i18n import all_texts
from trialkit.lifecycle import (
    DEVIATIONS_TABLE,
    QUERIES_TABLE,
    DeviationChanges,
    QueryChanges,
    Transition,
)
from trialkit.records import SubmissionRecords
from trialkit.safefiles import not_regular, open_regular, refusal_message

ENV_WORKSPACE = "TRIALKIT_WORKSPACE"
WORKSPACE_FILE = "trialkit-workspace.toml"
LEDGER_FILE = "ledger.sqlite"
ARCHIVE_DIR = "archive"
LEDGER_SCHEMA_VERSION = 3

ACCEPTED = "accepted"
ACCEPTED_WITH_WARNINGS = "accepted-with-warnings"
HELD = "held"
REJECTED = "rejected"
CURRENT_STATUSES = (ACCEPTED, ACCEPTED_WITH_WARNINGS)

# A site id or extension typed by a user must never become a path outside the workspace.
_SITE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
_EXT_PATTERN = re.compile(r"^[a-z0-9]{1,12}$")
_SHA_PATTERN = re.compile(r"^[0-9a-f]{64}$")

_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);

CREATE TABLE submissions (
    id INTEGER PRIMARY KEY,
    site TEXT NOT NULL,
    submitted_at TEXT NOT NULL,
    operator TEXT NOT NULL,
    note TEXT,
    status TEXT NOT NULL
        CHECK (status IN ('accepted', 'accepted-with-warnings', 'held', 'rejected')),
    study_id TEXT,
    study_version TEXT,
    schema_hash TEXT,
    template_stamp TEXT,
    trialkit_version TEXT,
    data_cut TEXT,
    n_error INTEGER NOT NULL,
    n_warning INTEGER NOT NULL,
    n_info INTEGER NOT NULL,
    content_key TEXT NOT NULL,
    report_json TEXT NOT NULL,
    superseded_by INTEGER REFERENCES submissions(id),
    acknowledged_by TEXT,
    acknowledged_at TEXT
);
CREATE INDEX submissions_by_content ON submissions(site, content_key);

CREATE TABLE submission_files (
    submission_id INTEGER NOT NULL REFERENCES submissions(id),
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    original_name TEXT NOT NULL,
    format TEXT,
    archive_path TEXT NOT NULL,
    PRIMARY KEY (submission_id, sha256)
);

CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    operator TEXT NOT NULL,
    action TEXT NOT NULL,
    site TEXT,
    submission_id INTEGER REFERENCES submissions(id),
    detail TEXT NOT NULL,
    chain TEXT
);

-- The audit log is append-only: nothing edits or deletes it.
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: audit rows cannot be updated'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: audit rows cannot be deleted'); END;

-- What was received is never rewritten: only status, supersession and acknowledgement change.
CREATE TRIGGER submissions_no_delete BEFORE DELETE ON submissions
BEGIN SELECT RAISE(ABORT, 'submissions cannot be deleted'); END;
CREATE TRIGGER submissions_received_fixed BEFORE UPDATE OF
    id, site, submitted_at, operator, note, study_id, study_version, schema_hash, template_stamp,
    trialkit_version, data_cut, n_error, n_warning, n_info, content_key, report_json
ON submissions
BEGIN SELECT RAISE(ABORT, 'what a submission received cannot be changed'); END;
CREATE TRIGGER submission_files_no_update BEFORE UPDATE ON submission_files
BEGIN SELECT RAISE(ABORT, 'submission files cannot be changed'); END;
CREATE TRIGGER submission_files_no_delete BEFORE DELETE ON submission_files
BEGIN SELECT RAISE(ABORT, 'submission files cannot be deleted'); END;
"""

# Added by ledger schema 2 (also run by the migration of a schema-1 ledger).
_SCHEMA_2 = """
-- What each submission held, form by form; n_rows is NULL for a submission recorded by schema 1.
CREATE TABLE submission_forms (
    submission_id INTEGER NOT NULL REFERENCES submissions(id),
    form TEXT NOT NULL,
    n_rows INTEGER,
    n_subjects INTEGER,
    key_variables TEXT NOT NULL,
    PRIMARY KEY (submission_id, form)
) WITHOUT ROWID;

CREATE TABLE submission_records (
    submission_id INTEGER NOT NULL,
    form TEXT NOT NULL,
    record_key TEXT NOT NULL,
    position INTEGER NOT NULL,
    subject TEXT,
    content_hash TEXT NOT NULL,
    PRIMARY KEY (submission_id, form, record_key),
    FOREIGN KEY (submission_id, form) REFERENCES submission_forms(submission_id, form)
) WITHOUT ROWID;

-- The site's current data, form by form.
CREATE TABLE current_forms (
    site TEXT NOT NULL,
    form TEXT NOT NULL,
    submission_id INTEGER NOT NULL REFERENCES submissions(id),
    since TEXT NOT NULL,
    PRIMARY KEY (site, form)
);

CREATE TRIGGER submission_forms_no_update BEFORE UPDATE ON submission_forms
BEGIN SELECT RAISE(ABORT, 'what a submission held cannot be changed'); END;
CREATE TRIGGER submission_forms_no_delete BEFORE DELETE ON submission_forms
BEGIN SELECT RAISE(ABORT, 'what a submission held cannot be deleted'); END;
CREATE TRIGGER submission_records_no_update BEFORE UPDATE ON submission_records
BEGIN SELECT RAISE(ABORT, 'what a submission held cannot be changed'); END;
CREATE TRIGGER submission_records_no_delete BEFORE DELETE ON submission_records
BEGIN SELECT RAISE(ABORT, 'what a submission held cannot be deleted'); END;
"""

# Added by ledger schema 3: query states (open, answered, closed, resolved) and the deviation log. The
# queries table of schemas 1 and 2 is rebuilt by the migration (see :mod:`trialkit.lifecycle`).
_SCHEMA_3 = QUERIES_TABLE + DEVIATIONS_TABLE

# The hash before the first audit line of the chain (see :func:`chain_hash`).
AUDIT_GENESIS = "0" * 64

NO_FORM = "LEDGER-NO-FORM"
REMOVED_RECORDS = "LEDGER-REMOVED-RECORDS"
VALIDATE_NO_FORM = "NO-FORM"  # trialkit.validate: the validation already says no form was recognised
SITE_MISMATCH = "SITE-MISMATCH"  # trialkit.diagnose: no record of the upload is the named site's
WRONG_SITE = "WRONG-SITE"  # trialkit.validate: a record of another site
KEYS_SHOWN = 10  # record keys named in a removal finding before "and N more"
MAX_LABEL_CHARS = 100  # freeze labels (they become folder names: pooled-LABEL)


# ------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class SubmissionFile:
    """One raw file of a submission, as archived."""

    sha256: str
    size: int
    original_name: str
    format: str | None
    archive_path: str  # relative to the workspace folder


@dataclass(frozen=True)
class Submission:
    """One recorded submission (a row of the ledger), as :meth:`Workspace.submit` returns it.

    ``duplicate`` is True when the files had already been submitted for this site: nothing new was
    recorded and this is the earlier submission. ``action`` says what the call did:
    ``recorded``, ``duplicate-ignored``, ``warnings-accepted`` or ``removals-accepted`` (a held
    submission made current). ``forms`` is what it held (``{form: {"rows", "subjects"}}``; rows are
    None for a submission recorded by ledger schema 1), ``current_forms`` the forms for which it is
    the site's current data now, and ``changes`` (set by :meth:`Workspace.submit`) what it changes
    against the site's current data: ``{form: {"added", "removed", "changed", "unchanged",
    "against"}}``.
    """

    id: int
    site: str
    submitted_at: str
    operator: str
    note: str | None
    status: str
    study_id: str | None
    study_version: str | None
    schema_hash: str | None
    template_stamp: str | None
    trialkit_version: str | None
    data_cut: str | None
    counts: dict[str, int]
    files: tuple[SubmissionFile, ...]
    superseded_by: int | None = None
    acknowledged_by: str | None = None
    acknowledged_at: str | None = None
    is_current: bool = False
    duplicate: bool = False
    action: str = "recorded"
    queries: QueryChanges = field(default_factory=QueryChanges)
    deviations: DeviationChanges = field(default_factory=DeviationChanges)
    report_json: str = field(default="", repr=False)
    forms: dict[str, dict[str, int | None]] = field(default_factory=dict)
    current_forms: tuple[str, ...] = ()
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def removals(self) -> list[Finding]:
        """The ``LEDGER-REMOVED-RECORDS`` findings recorded with the submission."""
        return [f for f in self.report.findings if f.code == REMOVED_RECORDS]

    @property
    def report(self) -> Report:
        """The full report of findings recorded with the submission."""
        return Report.from_dict(json.loads(self.report_json))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (without the full report)."""
        return {
            "id": self.id,
            "site": self.site,
            "submitted_at": self.submitted_at,
            "operator": self.operator,
            "note": self.note,
            "status": self.status,
            "current": self.is_current,
            "study_id": self.study_id,
            "study_version": self.study_version,
            "schema_hash": self.schema_hash,
            "template_stamp": self.template_stamp,
            "trialkit_version": self.trialkit_version,
            "data_cut": self.data_cut,
            "counts": dict(self.counts),
            "files": [f.__dict__.copy() for f in self.files],
            "superseded_by": self.superseded_by,
            "acknowledged_by": self.acknowledged_by,
            "acknowledged_at": self.acknowledged_at,
            "forms": {form: dict(counts) for form, counts in self.forms.items()},
            "current_forms": list(self.current_forms),
        }


@dataclass(frozen=True)
class AnswersResult:
    """What :meth:`Workspace.record_answers` did with a filled query workbook.

    ``stored``: answers stored (new or changed); ``unchanged``: answers already stored as typed;
    ``answered`` / ``closed`` / ``reopened``: the queries that moved to that state.
    """

    site: str
    stored: tuple[str, ...]
    refused: tuple[tuple[str, str], ...]  # (query id as typed, reason)
    blank: int  # rows with nothing typed
    unchanged: int = 0
    answered: tuple[str, ...] = ()
    closed: tuple[str, ...] = ()
    reopened: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "site": self.site,
            "stored": list(self.stored),
            "unchanged": self.unchanged,
            "answered": list(self.answered),
            "closed": list(self.closed),
            "reopened": list(self.reopened),
            "refused": [{"query_id": q, "reason": r} for q, r in self.refused],
            "blank": self.blank,
        }


# ------------------------------------------------------------------------------------------------
# Finding and creating a workspace


def _utc_text(moment: datetime | None = None) -> str:
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def default_operator() -> str:
    """The OS user name (``getpass.getuser``), or ``unknown`` when the system cannot tell."""
    try:
        return getpass.getuser() or "unknown"
    except Exception:  # no user name in the environment or password database
        return "unknown"


def _is_workspace(folder: Path) -> bool:
    return (folder / WORKSPACE_FILE).is_file() or (folder / LEDGER_FILE).is_file()


def init_workspace(path: str | os.PathLike[str], study_id: str | None = None, *,
                   binding: dict[str, Any] | None = None, operator: str | None = None) -> Workspace:
    """Create a workspace in ``path`` (created if missing): the ledger and the archive folder.

    ``study_id`` is recorded; later submissions for another study are refused. ``binding`` (what
    :func:`trialkit.study.binding.binding_record` says about the study definition: version, hash,
    path) is recorded in the workspace file and in the ``workspace-created`` audit line. A folder
    that already holds a workspace is refused (a ledger is never re-initialised).

    Example::

        >>> ws = init_workspace(tmp_path / "ws", study_id="MY-STUDY")  # doctest: +SKIP
        >>> ws.log()  # doctest: +SKIP
        []
    """
    from trialkit.outputs import check_length

    check_length(path, "DIR")
    folder = Path(path).expanduser()
    if _is_workspace(folder):
        raise UsageError(f"{folder}: already a trialkit workspace; use it, or choose another DIR")
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder}: exists and is not a folder; choose another DIR")
    try:
        (folder / ARCHIVE_DIR / "sha256").mkdir(parents=True, exist_ok=True)
        created = _utc_text()
        _write_atomic(folder / WORKSPACE_FILE, _workspace_toml(study_id, created, binding).encode("utf-8"), 0o644)
        connection = sqlite3.connect(folder / LEDGER_FILE, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("BEGIN IMMEDIATE")
            for statement in _statements(_SCHEMA + _SCHEMA_2 + _SCHEMA_3):
                connection.execute(statement)
            connection.execute("INSERT INTO schema_version (version) VALUES (?)", (LEDGER_SCHEMA_VERSION,))
            _audit(connection, created, operator or default_operator(), "workspace-created", None, None,
                   {"study_id": study_id, **({"binding": binding} if binding else {})})
            connection.execute("COMMIT")
        finally:
            connection.close()
        _make_read_only(folder / ARCHIVE_DIR)
    except OSError as exc:
        raise TrialkitError(f"{folder}: cannot create the workspace ({exc.strerror or exc})") from exc
    return Workspace(folder.resolve())


def _statements(script: str) -> list[str]:
    """Split a SQL script into statements (``executescript`` would commit mid-transaction)."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        if line.strip().startswith("--"):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    return statements


def _workspace_toml(study_id: str | None, created: str, binding: dict[str, Any] | None = None) -> str:
    # json.dumps gives a valid TOML basic string for any text.
    lines = [
        "# A trialkit workspace: the submissions ledger (ledger.sqlite) and the raw-upload archive.",
        "[workspace]",
        f"format = {LEDGER_SCHEMA_VERSION}",
        f"created = {json.dumps(created)}",
    ]
    if study_id:
        lines.append(f"study_id = {json.dumps(study_id, ensure_ascii=False)}")
    if binding:
        # The study definition at creation; later amendments are in the audit log (study-amended).
        lines.append("")
        lines.append("[study]")
        lines.extend(f"{key} = {json.dumps(str(value), ensure_ascii=False)}" for key, value in binding.items())
    return "\n".join(lines) + "\n"


def find_workspace(path: str | os.PathLike[str] | None = None) -> Path:
    """The workspace folder: ``path``, else ``$TRIALKIT_WORKSPACE``, else the current folder or a
    parent of it holding ``trialkit-workspace.toml`` or ``ledger.sqlite``."""
    chosen = path or os.environ.get(ENV_WORKSPACE) or None
    if chosen is not None:
        from trialkit.outputs import check_length

        check_length(chosen, "--workspace" if path else f"${ENV_WORKSPACE}")
        folder = Path(chosen).expanduser()
        if _is_workspace(folder):
            return folder
        source = "--workspace" if path else f"${ENV_WORKSPACE}"
        raise TrialkitError(
            f"{folder} (from {source}) is not a trialkit workspace (no {WORKSPACE_FILE} or "
            f"{LEDGER_FILE} there); create one with `trialkit init DIR`"
        )
    start = Path.cwd()
    for folder in (start, *start.parents):
        if _is_workspace(folder):
            return folder
    raise TrialkitError(
        f"no trialkit workspace found in {start} or any folder above it, and neither --workspace "
        f"nor ${ENV_WORKSPACE} is set; create one with `trialkit init DIR` or point --workspace at it"
    )


def open_workspace(path: str | os.PathLike[str] | None = None) -> Workspace:
    """Open an existing workspace (see :func:`find_workspace` for where it is looked for)."""
    return Workspace(find_workspace(path))


# ------------------------------------------------------------------------------------------------
# The workspace


class PrivacyRefused(TrialkitError):
    """An upload that holds direct identifiers (or records of another site): refused before anything
    is archived or recorded."""


class SiteMismatch(UsageError):
    """An upload none of whose records is the named site's (``SITE-MISMATCH``): most likely a wrong
    ``--site``; refused before anything is archived or recorded."""


class Workspace:
    """An open workspace. Each call opens its own short SQLite connection, so a Workspace is cheap
    and safe to use from several processes at once (writers queue on ``BEGIN IMMEDIATE``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.ledger_path = self.path / LEDGER_FILE
        if not self.ledger_path.is_file():
            raise TrialkitError(
                f"{self.path}: the workspace has no {LEDGER_FILE}; it is damaged or was not created "
                "with `trialkit init DIR`"
            )
        self.settings = self._read_settings()
        try:
            with self._connect() as connection:
                row = connection.execute("SELECT max(version) FROM schema_version").fetchone()
        except sqlite3.Error as exc:
            raise TrialkitError(
                f"{self.ledger_path}: not a trialkit ledger ({exc}); restore it from backup"
            ) from exc
        if row is not None and row[0] in (1, 2):
            try:
                self._migrate(int(row[0]))
            except (sqlite3.Error, OSError) as exc:
                raise TrialkitError(
                    f"{self.ledger_path}: this ledger was written by an earlier trialkit and could not be "
                    f"brought to ledger schema {LEDGER_SCHEMA_VERSION} ({exc}); nothing was changed. Open it "
                    "once with write access to the workspace, or use the trialkit version that created it"
                ) from exc
        elif row is None or row[0] != LEDGER_SCHEMA_VERSION:
            raise TrialkitError(
                f"{self.ledger_path}: ledger schema version {row[0] if row else None} is not "
                f"{LEDGER_SCHEMA_VERSION}; use the trialkit version that created this workspace"
            )

    def _migrate(self, version: int) -> None:
        """Bring a schema-1 or schema-2 ledger to schema 3, in one audited transaction.

        From schema 1 (one current submission per site) to 2 (one per site and form): the forms of
        every schema-1 submission are those its recorded report ran form checks on (``schema:FORM``);
        their row counts and record keys were never recorded (NULL: pool then checks re-imports for
        errors only, and a removal check re-imports that submission from the archive). Every audit
        line gets its chain hash, and the archive folders become read-only.

        From schema 2 to 3 (:func:`_upgrade_to_3`): the queries table takes the states answered and
        closed (an open query with a stored answer becomes answered), and the deviation log is built
        by replaying every recorded submission's report in order — so deviations that later uploads
        resolved are in it, resolved. The ``ledger-migrated`` line records the states of every query
        and deviation, the base from which ``trialkit verify`` replays later changes.
        """
        with self._transaction() as connection:
            found = connection.execute("SELECT max(version) FROM schema_version").fetchone()[0]
            if found != version:  # another process migrated it while this one waited for the lock
                return
            detail: dict[str, Any] = {"from": version, "to": LEDGER_SCHEMA_VERSION}
            notes = []
            if version == 1:
                detail["current_forms"] = _upgrade_1_to_2(connection)
                notes.append("current data kept per form; the forms of each earlier submission come from its "
                             "recorded report (record keys and row counts were not recorded before)")
            _upgrade_to_3(connection)
            notes.append("query states open, answered, closed and resolved (an open query with a stored answer "
                         "is answered); the deviation log rebuilt from every recorded submission")
            detail["note"] = "; ".join(notes)
            detail["queries_snapshot"] = lifecycle.snapshot(connection, "queries")
            detail["deviations_snapshot"] = lifecycle.snapshot(connection, "deviations")
            connection.execute("UPDATE schema_version SET version = ?", (LEDGER_SCHEMA_VERSION,))
            _audit(connection, _utc_text(), default_operator(), "ledger-migrated", None, None, detail)
        _make_read_only(self.path / ARCHIVE_DIR)

    def __repr__(self) -> str:
        return f"Workspace({str(self.path)!r})"

    @property
    def study_id(self) -> str | None:
        """The study this workspace is for (None when created without one)."""
        value = self.settings.get("study_id")
        return str(value) if value else None

    def _read_settings(self) -> dict[str, Any]:
        toml_path = self.path / WORKSPACE_FILE
        if not toml_path.is_file():
            return {}
        try:
            with open(toml_path, "rb") as handle:
                return dict(tomllib.load(handle).get("workspace", {}))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise TrialkitError(f"{toml_path}: cannot be read ({exc})") from exc

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            uri = self.ledger_path.resolve().as_uri() + "?mode=rw"
            connection = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=60)
        except sqlite3.Error as exc:
            raise TrialkitError(f"{self.ledger_path}: cannot open the ledger ({exc})") from exc
        try:
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA busy_timeout=60000")
            # FULL: a committed submission survives a power cut, as an audit trail must.
            connection.execute("PRAGMA synchronous=FULL")
            yield connection
        finally:
            connection.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as connection:
            try:
                connection.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise TrialkitError(
                    f"{self.ledger_path}: the ledger is busy or locked ({exc}); try again"
                ) from exc
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    # -- sites ----------------------------------------------------------------------------------

    def check_site(self, site: str, study: Any = None) -> str:
        """The site id to use for ``site``: refused (UsageError) unless it is a plain id and, when a
        study is given, one of its sites (``"1"`` → ``"01"`` via ``study.site``)."""
        text = str(site).strip()
        if study is not None:
            try:
                text = study.site(text).id
            except KeyError as exc:
                raise UsageError(str(exc.args[0]) if exc.args else f"unknown site {site!r}") from None
        if not _SITE_PATTERN.match(text):
            raise UsageError(
                f"site {site!r} is not a site id (letters, digits, '-' and '_' only); "
                "give the site id from the study definition"
            )
        return text

    # -- archive --------------------------------------------------------------------------------

    def archive_path(self, sha256: str) -> Path:
        """Where the raw file with this sha256 is archived (TrialkitError when it is not)."""
        digest = str(sha256).lower()
        if not _SHA_PATTERN.match(digest):
            raise UsageError(f"{sha256!r} is not a sha256 (64 hexadecimal digits)")
        folder = self.path / ARCHIVE_DIR / "sha256" / digest[:2]
        if folder.is_dir():
            for candidate in sorted(folder.iterdir()):
                if candidate.name == digest or candidate.name.startswith(digest + "."):
                    return candidate
        raise TrialkitError(f"no archived file with sha256 {digest} in {self.path / ARCHIVE_DIR}")

    def _archive(self, source: Path, digest: str) -> Path:
        """Copy ``source`` into the archive under its sha256, read-only, atomically.

        Archive folders are read-only (0555) like the files (0444): a folder is made writable only
        while a new file goes in, under an exclusive lock on the archive so that two submitting
        processes never race on a folder's mode.
        """
        try:
            return self.archive_path(digest)
        except TrialkitError:
            pass
        root = self.path / ARCHIVE_DIR
        with _archive_lock(root):
            try:
                return self.archive_path(digest)  # another process archived it while we waited
            except TrialkitError:
                pass
            sha_root = root / "sha256"
            _heal_folders(root)  # a submit killed inside _writable left a folder writable
            folder = sha_root / digest[:2]
            if not folder.is_dir():
                with _writable(sha_root):
                    folder.mkdir(mode=0o755, exist_ok=True)
                os.chmod(folder, 0o555)
            target = folder / (digest + _safe_extension(source.name))
            check = hashlib.sha256()
            with _writable(folder):
                handle, temp_name = tempfile.mkstemp(prefix=".incoming-", dir=folder)
                try:
                    with os.fdopen(handle, "wb") as out, open_regular(source) as src:
                        for block in iter(lambda: src.read(1 << 20), b""):
                            check.update(block)
                            out.write(block)
                        out.flush()
                        os.fsync(out.fileno())
                    if check.hexdigest() != digest:
                        raise TrialkitError(
                            f"{source}: the file changed while it was being submitted (sha256 differs); "
                            "submit it again once nothing is writing to it"
                        )
                    os.chmod(temp_name, 0o444)
                    os.replace(temp_name, target)
                except BaseException:
                    if os.path.exists(temp_name):
                        os.unlink(temp_name)
                    raise
            _fsync_folder(folder)
        return target

    # -- submitting -----------------------------------------------------------------------------

    def submit(
        self,
        paths: Sequence[str | os.PathLike[str]],
        site: str,
        report: Report,
        *,
        records: SubmissionRecords | None = None,
        operator: str | None = None,
        note: str | None = None,
        accept_warnings: bool = False,
        accept_removals: bool = False,
        now: datetime | None = None,
        study: Any = None,
        template_stamp: str | None = None,
    ) -> Submission:
        """Record one upload of ``site``: its raw files, the validation ``report`` and its status.

        ``records`` is what the upload holds, form by form (:func:`trialkit.records.submission_records`
        of the import that ``report`` validated); when it is not given and ``study`` is, the files
        are imported again to learn it; with neither, no form is known and the submission is
        rejected (``LEDGER-NO-FORM``). Files are archived unchanged. The status follows the module
        docstring: the removal check compares each form the upload holds with the site's current
        data for that form and adds one ``LEDGER-REMOVED-RECORDS`` finding per form that would lose
        records. An accepted submission becomes the site's current data for the forms it holds.
        The site's queries are updated from the report's error and warning findings (a query of a
        form the upload does not hold stays as it is). The same set of files (by sha256) submitted
        again for the same site records nothing and returns the earlier submission with
        ``duplicate=True`` — except that a ``held`` submission re-submitted with the flags its hold
        needs (``accept_warnings``, ``accept_removals``) is made current (``action`` is then
        ``warnings-accepted`` or ``removals-accepted``).
        """
        site = self.check_site(site, study)
        if not paths:
            raise UsageError("no files to submit; name at least one FILE")
        if self.study_id and report.study_id and report.study_id != self.study_id:
            raise UsageError(
                f"this workspace is for study {self.study_id}, the report is for {report.study_id}; "
                "use the workspace of that study (--workspace)"
            )
        operator = (operator or "").strip() or default_operator()
        at = _utc_text(now)

        files = self._hash_inputs(paths, report)
        privacy = [f for f in report.findings if f.category == Category.PRIVACY]
        if privacy:
            # Direct identifiers never reach the ledger or the archive: nothing is stored but an
            # audit line with the file hashes, sizes and the kinds of problem — no values, and no
            # file name (a name like "ROSSI Mario 2012-05-17.xlsx" is itself an identifier).
            with self._transaction() as connection:
                _audit(connection, at, operator, "refused-privacy", site, None, {
                    "files": [{"sha256": f["sha256"], "size": f["size"]} for f in files],
                    "codes": sorted({f.code for f in privacy}),
                    "findings": len(privacy),
                })
            if {f.code for f in privacy} == {WRONG_SITE}:
                others = sorted({str(f.evidence.get("other")) for f in privacy if f.evidence} - {"None"})
                raise PrivacyRefused(
                    f"upload refused for site {site}: {len(privacy)} record(s) belong to another site"
                    + (f" ({', '.join(others)})" if others else "") + " — a site's archive holds only its own "
                    "data, so nothing was archived or recorded except an audit line. Remove those records "
                    "from the upload (or send them with the right --site) and submit it again."
                )
            raise PrivacyRefused(
                f"upload refused for site {site}: {len(privacy)} privacy finding(s) "
                f"({', '.join(sorted({f.code for f in privacy}))}) — it looks like it holds direct "
                "identifiers; nothing was archived or recorded except an audit line. Remove the "
                "identifying columns or values and send the upload again."
            )
        mismatch = next((f for f in report.findings if f.code == SITE_MISMATCH), None)
        if mismatch is not None:
            # Not this site's data at all: most likely a wrong --site. Nothing is archived under it.
            with self._transaction() as connection:
                _audit(connection, at, operator, "refused-wrong-site", site, None, {
                    "files": [{"sha256": f["sha256"], "size": f["size"]} for f in files],
                    "sites": (mismatch.evidence or {}).get("sites"),
                })
            raise SiteMismatch(f"upload refused for site {site}: {mismatch.message}; nothing was archived or "
                               "recorded except an audit line")
        if records is None and study is not None:
            from trialkit.records import records_of_files

            records = records_of_files([f["path"] for f in files], study, site)
        records = records if records is not None else SubmissionRecords()
        archived = [
            SubmissionFile(
                sha256=f["sha256"], size=f["size"], original_name=f["name"], format=f["format"],
                archive_path=self._archive(f["path"], f["sha256"]).relative_to(self.path).as_posix(),
            )
            for f in files
        ]
        content_key = hashlib.sha256("\n".join(sorted(f.sha256 for f in archived)).encode()).hexdigest()

        with self._transaction() as connection:
            earlier = connection.execute(
                "SELECT * FROM submissions WHERE site = ? AND content_key = ? ORDER BY id LIMIT 1",
                (site, content_key),
            ).fetchone()
            if earlier is not None:
                if earlier["status"] == HELD and _hold_lifted(earlier, accept_warnings, accept_removals):
                    return self._accept_held(connection, earlier, operator, at, accept_removals)
                _audit(connection, at, operator, "duplicate-ignored", site, earlier["id"], {
                    "files": [{"name": f.original_name, "sha256": f.sha256} for f in archived],
                    "earlier_status": earlier["status"],
                })
                return _replace(self._submission(connection, earlier), duplicate=True,
                                action="duplicate-ignored")

            changes, ledger_findings = self._compare_with_current(connection, site, records, study)
            recorded = Report.from_dict(report.to_dict())
            recorded.extend(ledger_findings)
            if not records and not any(f.code == VALIDATE_NO_FORM for f in recorded.findings):
                recorded.add(Finding(
                    code=NO_FORM, severity=Severity.ERROR, category=Category.LEDGER, site=site,
                    message=f"no form of the study was recognised in {', '.join(f.original_name for f in archived)}: "
                            "nothing in it can become the site's data, so it is rejected whatever is "
                            "acknowledged; name the sheets or files by their form (e.g. DM, VS) or send "
                            "the site's upload workbook",
                ))
            counts = recorded.counts()
            blocking = blocking_counts(recorded)
            removals = [f for f in ledger_findings if f.code == REMOVED_RECORDS]
            if blocking["error"]:
                status = REJECTED
            elif (blocking["warning"] and not accept_warnings) or (removals and not accept_removals):
                status = HELD
            elif blocking["warning"] or removals:
                status = ACCEPTED_WITH_WARNINGS
            else:
                status = ACCEPTED
            acknowledged = status == ACCEPTED_WITH_WARNINGS

            cursor = connection.execute(
                "INSERT INTO submissions (site, submitted_at, operator, note, status, study_id, "
                "study_version, schema_hash, template_stamp, trialkit_version, data_cut, n_error, "
                "n_warning, n_info, content_key, report_json, acknowledged_by, acknowledged_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (site, at, operator, note, status, report.study_id, report.study_version,
                 report.schema_hash, template_stamp, report.trialkit_version, report.data_cut,
                 counts["error"], counts["warning"], counts["info"], content_key, recorded.to_json(None),
                 operator if acknowledged else None, at if acknowledged else None),
            )
            submission_id = int(cursor.lastrowid)
            connection.executemany(
                "INSERT INTO submission_files (submission_id, sha256, size, original_name, format, "
                "archive_path) VALUES (?, ?, ?, ?, ?, ?)",
                [(submission_id, f.sha256, f.size, f.original_name, f.format, f.archive_path)
                 for f in archived],
            )
            _insert_records(connection, submission_id, records)
            queries = lifecycle.track_queries(connection, site, submission_id, recorded, at, operator,
                                              set(records.forms))
            deviations = lifecycle.track_deviations(connection, site, submission_id, recorded, at, operator,
                                                    set(records.forms))
            replaced: dict[str, int] = {}
            became = status in CURRENT_STATUSES
            if became:
                replaced = _make_current(connection, site, submission_id, sorted(records.forms), at)
            _audit(connection, at, operator, "submitted", site, submission_id, {
                "status": status,
                "note": note,
                "files": [{"name": f.original_name, "sha256": f.sha256, "size": f.size} for f in archived],
                "counts": counts,
                "forms": {code: form.rows for code, form in sorted(records.forms.items())},
                "became_current": became,
                "current_forms": sorted(records.forms) if became else [],
                "supersedes": replaced,
                "changes": {code: {k: v for k, v in change.items() if k != "removed_keys"}
                            for code, change in changes.items()},
                "removals": {f.form: (f.evidence or {}).get("removed") for f in removals},
                "removals_accepted": bool(removals) and became,
                "warnings_accepted": bool(blocking["warning"]) and became,
                "queries": {k: len(v) if isinstance(v, list) else v for k, v in queries.to_dict().items()},
                "deviations": {k: len(v) for k, v in deviations.to_dict().items()},
                "query_states": queries.states(site),
                "deviation_states": deviations.states(site),
            })
            row = connection.execute("SELECT * FROM submissions WHERE id = ?", (submission_id,)).fetchone()
            return _replace(self._submission(connection, row), queries=queries, deviations=deviations,
                            changes=changes)

    def _compare_with_current(self, connection: sqlite3.Connection, site: str, records: SubmissionRecords,
                              study: Any) -> tuple[dict[str, dict[str, Any]], list[Finding]]:
        """What the upload changes against the site's current data, per form it holds, and one
        ``LEDGER-REMOVED-RECORDS`` finding per form whose current records it does not all hold."""
        changes: dict[str, dict[str, Any]] = {}
        findings: list[Finding] = []
        for code, new in sorted(records.forms.items()):
            pointer = connection.execute(
                "SELECT submission_id FROM current_forms WHERE site = ? AND form = ?", (site, code)
            ).fetchone()
            if pointer is None:
                changes[code] = {"added": new.rows, "removed": 0, "changed": 0, "unchanged": 0, "against": None}
                continue
            against = int(pointer[0])
            old = self._records_of(connection, against, code, study)
            if old is None:
                findings.append(Finding(
                    code=REMOVED_RECORDS, severity=Severity.WARNING, category=Category.LEDGER, site=site,
                    form=code, evidence={"against": against, "removed": None},
                    message=f"{code}: the site's current data (submission {against}) was recorded by an "
                            "older trialkit without record keys and could not be re-read to compare; "
                            "check the upload is complete before accepting it with --accept-removals",
                ))
                changes[code] = {"added": None, "removed": None, "changed": None, "unchanged": None,
                                 "against": against}
                continue
            new_map = new.by_key()
            removed = [k for k in old if k not in new_map]
            added = [k for k in new_map if k not in old]
            changed = [k for k in new_map if k in old and old[k][0] != new_map[k][0]]
            changes[code] = {"added": len(added), "removed": len(removed), "changed": len(changed),
                             "unchanged": len(new_map) - len(added) - len(changed), "against": against}
            if removed:
                findings.append(_removal_finding(site, code, against, removed, old, new))
        return changes, findings

    def _records_of(self, connection: sqlite3.Connection, submission_id: int, form: str,
                    study: Any) -> dict[str, tuple[str, str | None]] | None:
        """``{key: (hash, subject)}`` of a submission's form, from the ledger; a submission recorded
        by ledger schema 1 is re-imported from the archive (None when that cannot be done)."""
        known = connection.execute(
            "SELECT n_rows FROM submission_forms WHERE submission_id = ? AND form = ?", (submission_id, form)
        ).fetchone()
        if known is not None and known[0] is not None:
            return {
                r[0]: (r[1], r[2]) for r in connection.execute(
                    "SELECT record_key, content_hash, subject FROM submission_records "
                    "WHERE submission_id = ? AND form = ? ORDER BY position", (submission_id, form))
            }
        if study is None:
            return None
        from trialkit.records import submission_records

        try:
            imported = self.reimport(submission_id, study, connection=connection)
        except TrialkitError:
            return None
        summary = submission_records(imported.forms, study).forms.get(form)
        return summary.by_key() if summary is not None else {}

    def reimport(self, submission_id: Any, study: Any, *, connection: sqlite3.Connection | None = None) -> Any:
        """Import one archived submission (an id, or a :class:`Submission`) again: its files under
        their original names — only ever as bare names, in a scratch folder — with the site's
        conventions; returns the :class:`~trialkit.importers.base.ImportResult`. Lineage and
        findings name the archived upload (``submission N: NAME``), not the scratch copy."""
        import shutil

        from trialkit.importers.reader import import_files

        if not isinstance(submission_id, int):  # a submission itself (anything with id, site, files)
            sub = submission_id
        elif connection is None:
            sub = self.submission(submission_id)
        else:
            row = connection.execute("SELECT * FROM submissions WHERE id = ?", (submission_id,)).fetchone()
            if row is None:
                raise TrialkitError(f"{self.ledger_path}: no submission {submission_id}")
            sub = self._submission(connection, row)
        with tempfile.TemporaryDirectory(prefix="trialkit-reimport-") as scratch:
            paths = []
            for index, item in enumerate(sub.files):
                source = self.archive_path(item.sha256)
                name = Path(item.original_name).name or f"file{index}"
                folder = Path(scratch) / str(index)
                folder.mkdir()
                target = folder / name
                shutil.copyfile(source, target)
                paths.append(target)
            result = import_files(paths, study, site=sub.site, **self._mappings_of(sub, study))
        originals = {str(p): f"submission {sub.id}: {p.name}" for p in paths}
        result.sources[:] = [source.renamed(originals) for source in result.sources]
        for form_data in result.forms.values():
            form_data.lineage["FILE"] = form_data.lineage["FILE"].map(lambda f: originals.get(str(f), f))
        for finding in result.report.findings:
            if finding.file is not None:
                finding.file = originals.get(str(finding.file), finding.file)
        return result

    def _mappings_of(self, sub: Any, study: Any) -> dict[str, Any]:
        """How a submission was read: the study's and this workspace's mapping specs, and the spec
        each file was read through with ``--mapping`` (its ``MAP-SPEC`` findings)."""
        from trialkit.study.mappings import available_mappings

        return {"mappings": available_mappings(study, self.path), "file_mappings": self.file_mappings(sub)}

    def file_mappings(self, sub: Any) -> dict[str, str]:
        """The mapping spec each file of a submission was read through with ``--mapping`` (file
        sha256 → spec name, from its ``MAP-SPEC`` findings)."""
        chosen = {}
        try:
            recorded = sub.report.findings
        except (AttributeError, ValueError, TypeError):  # a submission without a recorded report
            recorded = []
        for finding in recorded:
            evidence = finding.evidence or {}
            if finding.code == "MAP-SPEC" and evidence.get("chosen") == "--mapping":
                chosen[str(evidence.get("file_sha256"))] = str(evidence.get("mapping"))
        return chosen

    def _hash_inputs(self, paths: Sequence[str | os.PathLike[str]], report: Report) -> list[dict[str, Any]]:
        known = {}
        for item in report.inputs:
            try:
                known[str(Path(item.path).resolve())] = item
            except OSError:  # pragma: no cover - unresolvable path in an old report
                continue
        files: list[dict[str, Any]] = []
        seen: set[str] = set()
        for raw in paths:
            path = Path(raw)
            reason = not_regular(path)
            if reason is not None:  # before anything is read or archived
                raise UsageError(refusal_message(path, reason))
            if not path.is_file():
                raise UsageError(f"{path}: no such file; check the FILE arguments")
            digest, size = _hash_file(path)
            recorded = known.get(str(path.resolve()))
            if recorded is not None and recorded.sha256 != digest:
                raise TrialkitError(
                    f"{path}: changed since it was validated (sha256 differs); submit it again"
                )
            if digest in seen:  # the same bytes named twice: one file
                continue
            seen.add(digest)
            files.append({
                "path": path, "sha256": digest, "size": size, "name": path.name,
                "format": recorded.format if recorded is not None else None,
            })
        return files

    def _accept_held(self, connection: sqlite3.Connection, held: sqlite3.Row, operator: str,
                     at: str, accept_removals: bool) -> Submission:
        latest = connection.execute(
            "SELECT max(id) FROM submissions WHERE site = ?", (held["site"],)
        ).fetchone()[0]
        if latest != held["id"]:
            raise UsageError(
                f"these files are held submission {held['id']}, but site {held['site']} has sent "
                f"newer data since (submission {latest}); submit the newer files instead"
            )
        connection.execute(
            "UPDATE submissions SET status = ?, acknowledged_by = ?, acknowledged_at = ? WHERE id = ?",
            (ACCEPTED_WITH_WARNINGS, operator, at, held["id"]),
        )
        forms = [r[0] for r in connection.execute(
            "SELECT form FROM submission_forms WHERE submission_id = ? ORDER BY form", (held["id"],))]
        replaced = _make_current(connection, held["site"], held["id"], forms, at)
        removals = _held_removals(held)
        action = "removals-accepted" if removals else "warnings-accepted"
        _audit(connection, at, operator, action, held["site"], held["id"], {
            "status": ACCEPTED_WITH_WARNINGS, "previous_status": HELD,
            "warnings": blocking_counts(Report.from_dict(json.loads(held["report_json"])))["warning"],
            "removals": removals, "removals_accepted": bool(removals),
            "became_current": True, "current_forms": forms, "supersedes": replaced,
        })
        row = connection.execute("SELECT * FROM submissions WHERE id = ?", (held["id"],)).fetchone()
        return _replace(self._submission(connection, row), action=action,
                        queries=QueryChanges(tracked=False))

    # -- reading the ledger ---------------------------------------------------------------------

    def _submission(self, connection: sqlite3.Connection, row: sqlite3.Row) -> Submission:
        files = tuple(
            SubmissionFile(r["sha256"], r["size"], r["original_name"], r["format"], r["archive_path"])
            for r in connection.execute(
                "SELECT * FROM submission_files WHERE submission_id = ? ORDER BY rowid", (row["id"],)
            )
        )
        current = tuple(r[0] for r in connection.execute(
            "SELECT form FROM current_forms WHERE site = ? AND submission_id = ? ORDER BY form",
            (row["site"], row["id"])))
        forms = {
            r["form"]: {"rows": r["n_rows"], "subjects": r["n_subjects"]}
            for r in connection.execute(
                "SELECT form, n_rows, n_subjects FROM submission_forms WHERE submission_id = ? ORDER BY form",
                (row["id"],))
        }
        return Submission(
            id=row["id"], site=row["site"], submitted_at=row["submitted_at"],
            operator=row["operator"], note=row["note"], status=row["status"],
            study_id=row["study_id"], study_version=row["study_version"],
            schema_hash=row["schema_hash"], template_stamp=row["template_stamp"],
            trialkit_version=row["trialkit_version"], data_cut=row["data_cut"],
            counts={"error": row["n_error"], "warning": row["n_warning"], "info": row["n_info"]},
            files=files, superseded_by=row["superseded_by"],
            acknowledged_by=row["acknowledged_by"], acknowledged_at=row["acknowledged_at"],
            is_current=bool(current), report_json=row["report_json"], forms=forms, current_forms=current,
        )

    def submission(self, submission_id: int) -> Submission:
        """One submission by id (TrialkitError when there is none)."""
        with self._connect() as connection:
            row = connection.execute("SELECT * FROM submissions WHERE id = ?", (submission_id,)).fetchone()
            if row is None:
                raise TrialkitError(f"{self.ledger_path}: no submission {submission_id}")
            return self._submission(connection, row)

    def current_forms(self, site: str | None = None) -> dict[str, dict[str, int]]:
        """The site's current data, form by form: ``{site: {form: submission id}}`` (sorted)."""
        sql = "SELECT site, form, submission_id FROM current_forms"
        args: tuple[Any, ...] = ()
        if site is not None:
            sql += " WHERE site = ?"
            args = (self.check_site(site),)
        result: dict[str, dict[str, int]] = {}
        with self._connect() as connection:
            for row in connection.execute(sql + " ORDER BY site, form", args):
                result.setdefault(row["site"], {})[row["form"]] = int(row["submission_id"])
        return result

    def current_submissions(self) -> dict[str, Submission]:
        """Each site's latest submission that is current data for at least one form, by site id.

        With per-form currency a site's data may come from several submissions; :meth:`current_forms`
        says which submission each form comes from.
        """
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT s.* FROM submissions s WHERE s.id IN ("
                "SELECT max(submission_id) FROM current_forms GROUP BY site) ORDER BY s.site"
            ).fetchall()
            return {row["site"]: self._submission(connection, row) for row in rows}

    def form_records(self, submission_id: int, form: str) -> dict[str, tuple[str, str | None]] | None:
        """``{record key: (content hash, subject)}`` of one form of a submission, in upload order
        (None when the ledger has no record keys for it: recorded by ledger schema 1)."""
        with self._connect() as connection:
            return self._records_of(connection, submission_id, form, None)

    def log(self, site: str | None = None) -> list[dict[str, Any]]:
        """Every submission (oldest first), optionally of one site, with status and files."""
        with self._connect() as connection:
            if site is None:
                rows = connection.execute("SELECT * FROM submissions ORDER BY id").fetchall()
            else:
                site = self.check_site(site)
                rows = connection.execute(
                    "SELECT * FROM submissions WHERE site = ? ORDER BY id", (site,)
                ).fetchall()
            return [self._submission(connection, row).to_dict() for row in rows]

    def audit(self, site: str | None = None) -> list[dict[str, Any]]:
        """The audit trail, oldest first (``detail`` decoded from JSON)."""
        with self._connect() as connection:
            if site is None:
                rows = connection.execute("SELECT * FROM audit ORDER BY seq").fetchall()
            else:
                rows = connection.execute(
                    "SELECT * FROM audit WHERE site = ? ORDER BY seq", (self.check_site(site),)
                ).fetchall()
        return [
            {
                "seq": r["seq"], "at": r["at"], "operator": r["operator"], "action": r["action"],
                "site": r["site"], "submission_id": r["submission_id"], "detail": json.loads(r["detail"]),
            }
            for r in rows
        ]

    def record_event(self, action: str, *, operator: str | None = None, site: str | None = None,
                     detail: dict[str, Any] | None = None) -> int:
        """Append one line to the audit trail (e.g. ``pool``, ``unblind``, ``freeze``); returns its seq."""
        with self._transaction() as connection:
            _audit(connection, _utc_text(), operator or default_operator(), action, site, None, detail or {})
            return int(connection.execute("SELECT max(seq) FROM audit").fetchone()[0])

    def freeze(self, label: str, *, operator: str | None = None) -> dict[str, Any]:
        """Record a named, immutable snapshot of every site's current data, form by form.

        The snapshot is an audit line (``freeze``), so nothing can change or delete it; a label can be
        used once. Returns ``{"label", "forms": {site: {form: id}}, "submissions": {site: latest id},
        "at"}``. Nothing is recorded when the label is refused.
        """
        label = check_label(label)
        with self._transaction() as connection:
            for row in connection.execute("SELECT detail FROM audit WHERE action = 'freeze'"):
                if json.loads(row["detail"]).get("label") == label:
                    raise UsageError(f"a freeze called {label!r} already exists; choose another label")
            rows = connection.execute(
                "SELECT site, form, submission_id FROM current_forms ORDER BY site, form"
            ).fetchall()
            if not rows:
                raise UsageError("nothing to freeze: no site has accepted data yet (trialkit submit)")
            forms: dict[str, dict[str, int]] = {}
            for r in rows:
                forms.setdefault(r["site"], {})[r["form"]] = int(r["submission_id"])
            snapshot = {site: max(pointers.values()) for site, pointers in forms.items()}
            at = _utc_text()
            _audit(connection, at, operator or default_operator(), "freeze", None, None,
                   {"label": label, "submissions": snapshot, "forms": forms})
        return {"label": label, "submissions": snapshot, "forms": forms, "at": at}

    def frozen_forms(self, label: str) -> dict[str, dict[str, int]]:
        """The data of the freeze called ``label``: ``{site: {form: submission id}}``.

        A freeze recorded by ledger schema 1 named one submission per site: all its forms."""
        label = check_label(label)
        freezes = [e for e in self.audit() if e["action"] == "freeze"]
        for entry in freezes:
            if entry["detail"].get("label") != label:
                continue
            if "forms" in entry["detail"]:
                return {site: {form: int(i) for form, i in pointers.items()}
                        for site, pointers in sorted(entry["detail"]["forms"].items())}
            result = {}
            for site, submission_id in sorted(entry["detail"]["submissions"].items()):
                result[site] = dict.fromkeys(self.submission(int(submission_id)).forms, int(submission_id))
            return result
        known = [e["detail"].get("label") for e in freezes]
        raise UsageError(f"no freeze called {label!r}; known: {', '.join(known) or 'none'}")

    def frozen_submissions(self, label: str) -> dict[str, Submission]:
        """The latest submission of each site in the freeze called ``label`` (see :meth:`frozen_forms`)."""
        return {site: self.submission(max(pointers.values())) for site, pointers in self.frozen_forms(label).items()}

    # -- queries --------------------------------------------------------------------------------

    def _query_rows(self, site: str | None, status: Any, code: str | None = None) -> list[sqlite3.Row]:
        states = _states_asked(status, lifecycle.QUERY_STATES, "query state")
        sql = f"SELECT * FROM queries WHERE status IN ({', '.join('?' * len(states))})"
        args: list[Any] = list(states)
        if site is not None:
            sql += " AND site = ?"
            args.append(self.check_site(site))
        if code is not None:
            sql += " AND code = ?"
            args.append(str(code).strip())
        sql += " ORDER BY site, status, opened_at, subject, form, visit, variable, query_id"
        with self._connect() as connection:
            return connection.execute(sql, args).fetchall()

    def queries(self, site: str | None = None, status: Any = None, today: date | None = None, *,
                code: str | None = None, older_than: int | None = None) -> list[dict[str, Any]]:
        """The queries, each with ``age_days``: days from when it was opened until ``today`` (UTC today
        by default), or until it was resolved or closed.

        ``status``: one state (``open``, ``answered``, ``closed``, ``resolved``), several, or
        ``all``/None; ``code``: one finding code; ``older_than``: only queries older than that many
        days.
        """
        today = today or datetime.now(UTC).date()
        result = []
        for row in self._query_rows(site, status, code):
            item = {key: row[key] for key in row.keys() if key != "finding_json"}
            opened = date.fromisoformat(row["opened_at"][:10])
            ended = row["resolved_at"] if row["status"] == lifecycle.RESOLVED else (
                row["status_at"] if row["status"] == lifecycle.CLOSED else None)
            end = date.fromisoformat(ended[:10]) if ended else today
            item["age_days"] = max((end - opened).days, 0)
            if older_than is not None and item["age_days"] <= older_than:
                continue
            result.append(item)
        return result

    def queries_report(self, site: str | None = None, status: Any = "open") -> Report:
        """The queries as a :class:`Report` of their latest findings (for a query workbook)."""
        report = Report(study_id=self.study_id, site=site)
        latest = self._latest_submission(site)
        if latest is not None:
            # The workbook's summary states what the queries were last checked against: the site's
            # latest submission (the latest of any site for all sites).
            report.study_id = latest["study_id"] or report.study_id
            report.study_version = latest["study_version"]
            report.schema_hash = latest["schema_hash"]
            report.data_cut = latest["data_cut"]
            report.trialkit_version = latest["trialkit_version"] or report.trialkit_version
        for row in self._query_rows(site, status):
            finding = Finding.from_dict(json.loads(row["finding_json"]))
            finding.site = row["site"]
            finding.query_id = row["query_id"]
            report.add(finding)
        return report

    def close_queries(self, ids: Sequence[str], reason: str, *, operator: str | None = None,
                      site: str | None = None, now: datetime | None = None) -> Transition:
        """Close open or answered queries with a reason (data manager); audited (``queries-closed``).

        Each id that is unknown, of another site, or not open or answered is refused (with the reason
        in :attr:`Transition.refused`) and the others are closed. Raises UsageError without a reason.
        """
        return self._move_queries("close", ids, reason, operator=operator, site=site, now=now)

    def reopen_queries(self, ids: Sequence[str], reason: str, *, operator: str | None = None,
                       site: str | None = None, now: datetime | None = None) -> Transition:
        """Reopen closed or resolved queries with a reason (data manager); audited (``queries-reopened``)."""
        return self._move_queries("reopen", ids, reason, operator=operator, site=site, now=now)

    def _move_queries(self, action: str, ids: Sequence[str], reason: str, *, operator: str | None,
                      site: str | None, now: datetime | None) -> Transition:
        if not ids:
            raise UsageError(f"name at least one QUERY_ID to {action}")
        site = self.check_site(site) if site is not None else None
        operator = (operator or "").strip() or default_operator()
        at = _utc_text(now)
        move = lifecycle.close_queries if action == "close" else lifecycle.reopen_queries
        with self._transaction() as connection:
            try:
                result = move(connection, ids, reason, operator, at, site)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            if result.changed:
                _audit(connection, at, operator, "queries-closed" if action == "close" else "queries-reopened",
                       site, None, {
                           "reason": result.reason, "refused": [list(r) for r in result.refused],
                           "query_states": {result.state: [list(c) for c in result.changed]},
                       })
        return result

    def _latest_submission(self, site: str | None) -> sqlite3.Row | None:
        """The latest submission of ``site`` (of any site when None), whatever its status: the last
        validation, which the open queries were last checked against."""
        sql = "SELECT study_id, study_version, schema_hash, data_cut, trialkit_version FROM submissions"
        args: tuple[Any, ...] = ()
        if site is not None:
            sql += " WHERE site = ?"
            args = (self.check_site(site),)
        with self._connect() as connection:
            return connection.execute(sql + " ORDER BY id DESC LIMIT 1", args).fetchone()

    def record_answers(self, xlsx_path: str | os.PathLike[str], operator: str | None = None,
                       *, site: str | None = None, now: datetime | None = None) -> AnswersResult:
        """Store the answers a site typed into its query workbook (sheet ``Queries``), and apply the
        data manager's decisions typed into it.

        Rows are matched by query id; ``SITE_RESPONSE``, ``SITE_COMMENT``, ``RESPONDED_BY`` and
        ``RESPONSE_DATE`` are stored with the query, and an open query whose answer is stored becomes
        ``answered``. ``DM_ACTION`` (``close`` or ``reopen``) with a ``DM_REASON`` closes or reopens
        the query, as ``trialkit queries close|reopen`` does. The workbook is one site's (``site``,
        else the site most of its known query ids belong to): a row whose query id is unknown or
        belongs to another site is refused, never stored, and so is an action without a reason or
        one the query's state does not allow. Rows with nothing typed are skipped; an answer that is
        already stored is not stored again. The outcome is written to the audit log.
        """
        path = Path(xlsx_path)
        rows = _read_answer_rows(path)
        operator = (operator or "").strip() or default_operator()
        at = _utc_text(now)
        with self._transaction() as connection:
            owners: dict[str, set[str]] = {}
            for typed in {r["query_id"] for r in rows}:
                owners[typed] = {
                    r[0] for r in connection.execute("SELECT site FROM queries WHERE query_id = ?",
                                                     (lifecycle.normalise_id(typed),))
                }
            if site is not None:
                site = self.check_site(site)
            else:
                votes = Counter(s for r in rows for s in owners[r["query_id"]] if len(owners[r["query_id"]]) == 1)
                ranked = votes.most_common(2)
                if not ranked:
                    raise UsageError(
                        f"{path}: none of its query ids is in this ledger; is it a query workbook "
                        "from this workspace?"
                    )
                if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
                    raise UsageError(
                        f"{path}: holds queries of several sites ({ranked[0][0]}, {ranked[1][0]}); "
                        "name the site whose answers these are with --site"
                    )
                site = ranked[0][0]
            stored: list[str] = []
            unchanged: list[str] = []
            refused: list[tuple[str, str]] = []
            states: list[dict[str, list[list[str]]]] = []
            blank = 0
            for row in rows:
                typed = row["query_id"]
                qid = lifecycle.normalise_id(typed)
                answer = [row[name] for name in _ANSWER_FIELDS]
                action = (row["dm_action"] or "").strip().lower()
                if not any(answer) and not action:
                    blank += 1
                    continue
                if site not in owners[typed]:
                    reason = (f"belongs to site {', '.join(sorted(owners[typed]))}, not {site}"
                              if owners[typed] else "unknown query id")
                    refused.append((typed, reason))
                    continue
                if any(answer):
                    before = connection.execute(
                        f"SELECT {', '.join(_ANSWER_FIELDS)} FROM queries WHERE site = ? AND query_id = ?",
                        (site, qid)).fetchone()
                    if list(before) == answer:
                        unchanged.append(qid)
                    else:
                        connection.execute(
                            "UPDATE queries SET response = ?, site_comment = ?, responded_by = ?, response_date = ?, "
                            "response_recorded_at = ?, response_recorded_by = ? WHERE site = ? AND query_id = ?",
                            (*answer, at, operator, site, qid),
                        )
                        stored.append(qid)
                        if lifecycle.mark_answered(connection, site, qid, operator, at):
                            states.append({lifecycle.ANSWERED: [[site, qid]]})
                if action:
                    verb = _DM_ACTIONS.get(action)
                    if verb is None:
                        refused.append((typed, f"DM_ACTION {row['dm_action']!r} is not close or reopen"))
                        continue
                    move = lifecycle.close_queries if verb == "close" else lifecycle.reopen_queries
                    try:
                        done = move(connection, [qid], row["dm_reason"] or "", operator, at, site)
                    except ValueError:
                        refused.append((typed, f"DM_ACTION {verb} needs a DM_REASON"))
                        continue
                    refused.extend((typed, why) for _, why in done.refused)
                    if done.changed:
                        states.append({done.state: [list(c) for c in done.changed]})
            merged = lifecycle.merge_states(*states)
            _audit(connection, at, operator, "answers-recorded", site, None, {
                "file": path.name, "sha256": _hash_file(path)[0], "stored": stored, "unchanged": len(unchanged),
                "refused": [{"query_id": q, "reason": r} for q, r in refused], "blank": blank,
                "query_states": merged,
            })
        by_state = {state: tuple(qid for _, qid in pairs) for state, pairs in merged.items()}
        return AnswersResult(site=site, stored=tuple(stored), refused=tuple(refused), blank=blank,
                             unchanged=len(unchanged), answered=by_state.get(lifecycle.ANSWERED, ()),
                             closed=by_state.get(lifecycle.CLOSED, ()), reopened=by_state.get(lifecycle.OPEN, ()))

    # -- the deviation log ----------------------------------------------------------------------

    def deviation_log(self, site: str | None = None, status: Any = None, *,
                      as_of: int | None = None) -> list[dict[str, Any]]:
        """Every protocol deviation ever detected (see :mod:`trialkit.lifecycle`), oldest first per
        site: id, code, class, subject, form, visit, variable, value, message, evidence, first and
        last submission that showed it (with their times), status and who set it, when and why.

        ``as_of`` (an audit line's seq, e.g. a freeze's) gives the log as it stood then: the entries
        detected by then, each in the status the audit log had given it (replayed, as ``verify``
        does; a ledger migrated after that line starts from the migration's snapshot).
        """
        states = _states_asked(status, lifecycle.DEVIATION_STATES, "deviation status")
        sql = "SELECT * FROM deviations"
        args: list[Any] = []
        if site is not None:
            sql += " WHERE site = ?"
            args.append(self.check_site(site))
        sql += " ORDER BY site, first_submission, subject, code, form, visit, deviation_id"
        with self._connect() as connection:
            rows = connection.execute(sql, args).fetchall()
            then = self._replayed_deviations(connection, as_of) if as_of is not None else None
        result = []
        for row in rows:
            item = {key: row[key] for key in row.keys() if key != "finding_json"}
            if then is not None:
                if (row["site"], row["deviation_id"]) not in then:
                    continue
                item["status"] = then[(row["site"], row["deviation_id"])]
            if item["status"] not in states:
                continue
            finding = json.loads(row["finding_json"])
            item["evidence"] = finding.get("evidence")
            item["reference"] = finding.get("reference")
            result.append(item)
        return result

    @staticmethod
    def _replayed_deviations(connection: sqlite3.Connection, as_of: int) -> dict[tuple[str, str], str]:
        replay = lifecycle.Replay()
        lines = connection.execute("SELECT seq, detail FROM audit ORDER BY seq").fetchall()
        for line in lines:
            detail = json.loads(line["detail"])
            if line["seq"] <= as_of:
                replay.apply(detail)
            elif replay.deviations:
                break
            elif "deviations_snapshot" in detail:
                replay.apply(detail)  # the ledger was migrated after that line: its snapshot is the best known
                break
        return replay.deviations

    def freeze_seq(self, label: str) -> int:
        """The audit seq of the freeze called ``label`` (UsageError when there is none)."""
        label = check_label(label)
        for entry in self.audit():
            if entry["action"] == "freeze" and entry["detail"].get("label") == label:
                return int(entry["seq"])
        raise UsageError(f"no freeze called {label!r}")

    def set_deviation_status(self, ids: Sequence[str], status: str, reason: str, *, operator: str | None = None,
                             site: str | None = None, now: datetime | None = None) -> Transition:
        """Confirm (``confirmed``) or dismiss (``dismissed``) deviations with a reason; their open or
        answered queries are closed with it. Audited (``deviations-confirmed``/``-dismissed``)."""
        if not ids:
            raise UsageError("name at least one deviation ID")
        site = self.check_site(site) if site is not None else None
        operator = (operator or "").strip() or default_operator()
        at = _utc_text(now)
        with self._transaction() as connection:
            try:
                result = lifecycle.set_deviation_status(connection, ids, status, reason, operator, at, site)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            if result.changed:
                _audit(connection, at, operator, f"deviations-{status}", site, None, {
                    "reason": result.reason, "refused": [list(r) for r in result.refused],
                    "deviation_states": {status: [list(c) for c in result.changed]},
                    "query_states": ({lifecycle.CLOSED: [list(c) for c in result.queries_closed]}
                                     if result.queries_closed else {}),
                })
        return result

    # -- the study-wide data cut ----------------------------------------------------------------

    def data_cut(self, *, as_of: int | None = None) -> dict[str, Any] | None:
        """The study-wide data cut set with :meth:`set_data_cut`: ``{"date", "at", "operator", "seq"}``,
        or None when none is set (each upload then takes the latest date it holds). ``as_of`` (an
        audit seq): the cut as it was then."""
        with self._connect() as connection:
            row = connection.execute(
                "SELECT seq, at, operator, detail FROM audit WHERE action = ? AND seq <= ? ORDER BY seq DESC LIMIT 1",
                (DATA_CUT_ACTION, as_of if as_of is not None else 2**62)).fetchone()
        if row is None:
            return None
        cut = json.loads(row["detail"]).get("cut")
        if not cut:
            return None
        return {"date": cut, "at": row["at"], "operator": row["operator"], "seq": int(row["seq"])}

    def data_cut_date(self, *, as_of: int | None = None) -> date | None:
        """The study-wide data cut as a date (None when none is set)."""
        cut = self.data_cut(as_of=as_of)
        return date.fromisoformat(cut["date"]) if cut else None

    def set_data_cut(self, cut: date | None, *, operator: str | None = None, now: datetime | None = None,
                     reason: str | None = None) -> dict[str, Any]:
        """Set (or, with None, clear) the study-wide data cut; audited (``data-cut``). Returns the
        new setting as :meth:`data_cut` gives it (``{"date": None, ...}`` when cleared)."""
        operator = (operator or "").strip() or default_operator()
        at = _utc_text(now)
        with self._transaction() as connection:
            previous = connection.execute(
                "SELECT detail FROM audit WHERE action = ? ORDER BY seq DESC LIMIT 1", (DATA_CUT_ACTION,)).fetchone()
            before = json.loads(previous["detail"]).get("cut") if previous is not None else None
            seq = _audit(connection, at, operator, DATA_CUT_ACTION, None, None, {
                "cut": cut.isoformat() if cut else None, "previous": before,
                **({"reason": reason.strip()} if reason and reason.strip() else {}),
            })
        return {"date": cut.isoformat() if cut else None, "previous": before, "at": at, "operator": operator,
                "seq": seq}

    def record_review(self, site: str, report: Report, forms: Sequence[str], *, cut: date,
                      operator: str | None = None, now: datetime | None = None) -> tuple[QueryChanges, DeviationChanges]:
        """Track the queries and deviations of a re-check of the site's current data against the
        study-wide data cut (:func:`trialkit.datacut.review`): new findings open queries and enter
        the deviation log; nothing is resolved (only a new upload resolves). Attributed to the
        site's latest current submission; audited (``data-cut-review``)."""
        site = self.check_site(site)
        operator = (operator or "").strip() or default_operator()
        at = _utc_text(now)
        with self._transaction() as connection:
            latest = connection.execute("SELECT max(submission_id) FROM current_forms WHERE site = ?",
                                        (site,)).fetchone()[0]
            if latest is None:
                raise UsageError(f"site {site} has no current data to review")
            queries = lifecycle.track_queries(connection, site, int(latest), report, at, operator, forms,
                                              resolve=False)
            deviations = lifecycle.track_deviations(connection, site, int(latest), report, at, operator, forms,
                                                    resolve=False)
            _audit(connection, at, operator, "data-cut-review", site, int(latest), {
                "cut": cut.isoformat(), "forms": sorted(forms), "counts": report.counts(),
                "queries": {k: len(v) if isinstance(v, list) else v for k, v in queries.to_dict().items()},
                "deviations": {k: len(v) for k, v in deviations.to_dict().items()},
                "query_states": queries.states(site), "deviation_states": deviations.states(site),
            })
        return queries, deviations

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` result (``"ok"`` when the ledger is sound)."""
        with self._connect() as connection:
            return str(connection.execute("PRAGMA integrity_check").fetchone()[0])


# ------------------------------------------------------------------------------------------------
# Helpers


def _states_asked(status: Any, known: Sequence[str], what: str) -> tuple[str, ...]:
    """The states a filter asks for: None/``all`` → every one; a name or several names."""
    if status is None or status == "all":
        return tuple(known)
    asked = (status,) if isinstance(status, str) else tuple(status)
    if "all" in asked or not asked:
        return tuple(known)
    unknown = [s for s in asked if s not in known]
    if unknown:
        raise UsageError(f"{what} {unknown[0]!r} is not one of {', '.join(known)}, all")
    return tuple(dict.fromkeys(asked))


def check_label(label: str) -> str:
    """A freeze label as given, if it can name a snapshot and its folder (``pooled-LABEL``): letters,
    digits, ``-``, ``_`` and ``.``, at most :data:`MAX_LABEL_CHARS` characters (UsageError else)."""
    text = str(label).strip()
    if len(text) > MAX_LABEL_CHARS:
        raise UsageError(f"freeze label of {len(text)} characters: use at most {MAX_LABEL_CHARS} (it also "
                         "names the folder pooled-LABEL)")
    if not text or text.startswith(".") or not all(ch.isascii() and (ch.isalnum() or ch in "-_.") for ch in text):
        raise UsageError(f"freeze label {text!r}: use letters, digits, '-', '_' or '.' (not first)")
    return text


def blocking_counts(report: Report) -> dict[str, int]:
    """Errors and warnings that decide a submission's status.

    Protocol deviations are facts about how the trial was run, not mistakes in the upload: correct
    data showing a deviation must still be accepted (the deviation is tracked as a query for the
    site to confirm, and pooled so that it takes the subject out of the per-protocol population).
    Every other error rejects; every other warning holds until acknowledged.

    Records an upload would remove (``LEDGER-REMOVED-RECORDS``) are not counted here either: they
    hold a submission until accepted with ``accept_removals``, which ``accept_warnings`` does not do.
    """
    counts = {"error": 0, "warning": 0}
    for finding in report.findings:
        if finding.category == Category.DEVIATION or finding.code == REMOVED_RECORDS:
            continue
        if finding.severity.value in counts:
            counts[finding.severity.value] += 1
    return counts


def _held_removals(held: sqlite3.Row) -> dict[str, Any]:
    """``{form: records removed}`` of a held submission's removal findings."""
    report = json.loads(held["report_json"])
    return {f.get("form"): (f.get("evidence") or {}).get("removed")
            for f in report.get("findings", []) if f.get("code") == REMOVED_RECORDS}


def _hold_lifted(held: sqlite3.Row, accept_warnings: bool, accept_removals: bool) -> bool:
    """Whether the flags given now acknowledge everything that holds this submission."""
    warnings = blocking_counts(Report.from_dict(json.loads(held["report_json"])))["warning"]
    removals = _held_removals(held)
    if not (accept_warnings or accept_removals):
        return False
    return (accept_warnings or not warnings) and (accept_removals or not removals)


def _removal_finding(site: str, form: str, against: int, removed: list[str],
                     old: dict[str, tuple[str, str | None]], new: Any) -> Finding:
    """One ``LEDGER-REMOVED-RECORDS`` finding: the form, the count, the first keys, lost subjects."""
    from trialkit.records import key_label

    kept_subjects = set(new.subject_ids)
    old_subjects = {subject for _, subject in old.values() if subject}
    lost_subjects = sorted(old_subjects - kept_subjects)
    shown = ", ".join(key_label(k) for k in removed[:KEYS_SHOWN])
    more = f" and {len(removed) - KEYS_SHOWN} more" if len(removed) > KEYS_SHOWN else ""
    subjects = (f"; {len(lost_subjects)} subject(s) would disappear from {form} entirely "
                f"({', '.join(lost_subjects[:KEYS_SHOWN])}{' …' if len(lost_subjects) > KEYS_SHOWN else ''})"
                if lost_subjects else "")
    return Finding(
        code=REMOVED_RECORDS, severity=Severity.WARNING, category=Category.LEDGER, site=site, form=form,
        value=str(len(removed)), expected=f"the {len(old)} record(s) of the site's current {form} data",
        evidence={"against": against, "removed": len(removed), "current_rows": len(old),
                  "new_rows": new.rows, "keys": removed[:100], "subjects": lost_subjects[:100]},
        message=f"{form}: {len(removed)} of the {len(old)} record(s) of the site's current data "
                f"(submission {against}) are not in this upload ({new.rows} record(s)): "
                f"{shown}{more}{subjects}. A truncated or partial file looks like this. If the site "
                "really deleted them, accept with --accept-removals; otherwise ask the site for the "
                "complete file",
    )


def _insert_records(connection: sqlite3.Connection, submission_id: int, records: SubmissionRecords) -> None:
    """Store what a submission holds: per form rows, subjects and every record's key and hash."""
    for code, form in sorted(records.forms.items()):
        connection.execute(
            "INSERT INTO submission_forms (submission_id, form, n_rows, n_subjects, key_variables) "
            "VALUES (?, ?, ?, ?, ?)",
            (submission_id, code, form.rows, len(form.subject_ids), json.dumps(list(form.key_variables))),
        )
        connection.executemany(
            "INSERT INTO submission_records (submission_id, form, record_key, position, subject, content_hash) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(submission_id, code, key, position, subject, digest)
             for position, (key, digest, subject) in enumerate(zip(form.keys, form.hashes, form.subjects,
                                                                   strict=True))],
        )


def _upgrade_1_to_2(connection: sqlite3.Connection) -> dict[str, dict[str, int]]:
    """Schema 1 → 2 inside the migration's transaction: per-form currency and the audit chain;
    returns the current-data pointers ``{site: {form: submission id}}``."""
    for statement in _statements(_SCHEMA_2):
        connection.execute(statement)
    for row in connection.execute("SELECT id, report_json FROM submissions ORDER BY id").fetchall():
        for form in _report_forms(row["report_json"]):
            connection.execute(
                "INSERT INTO submission_forms (submission_id, form, n_rows, n_subjects, key_variables) "
                "VALUES (?, ?, NULL, NULL, '[]')", (row["id"], form))
    pointers: dict[str, dict[str, int]] = {}
    for row in connection.execute("SELECT site, submission_id, since FROM current ORDER BY site").fetchall():
        forms = [r[0] for r in connection.execute(
            "SELECT form FROM submission_forms WHERE submission_id = ? ORDER BY form", (row["submission_id"],))]
        for form in forms:
            connection.execute(
                "INSERT INTO current_forms (site, form, submission_id, since) VALUES (?, ?, ?, ?)",
                (row["site"], form, row["submission_id"], row["since"]))
        pointers[row["site"]] = dict.fromkeys(forms, int(row["submission_id"]))
    connection.execute("DROP TABLE current")
    # The chain hashes are written once, here, around the append-only triggers.
    connection.execute("ALTER TABLE audit ADD COLUMN chain TEXT")
    connection.execute("DROP TRIGGER audit_no_update")
    previous = AUDIT_GENESIS
    for line in connection.execute("SELECT * FROM audit ORDER BY seq").fetchall():
        previous = chain_hash(previous, line)
        connection.execute("UPDATE audit SET chain = ? WHERE seq = ?", (previous, line["seq"]))
    connection.execute(
        "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, "
        "'the audit log is append-only: audit rows cannot be updated'); END")
    return pointers


def _upgrade_to_3(connection: sqlite3.Connection) -> None:
    """Schema 2 → 3 inside the migration's transaction: the queries table rebuilt with the states
    answered and closed, and the deviation log replayed from every recorded submission."""
    connection.execute("DROP INDEX IF EXISTS queries_by_id")
    connection.execute("ALTER TABLE queries RENAME TO queries_v2")
    for statement in _statements(_SCHEMA_3):
        connection.execute(statement)
    columns = ", ".join(lifecycle.V2_QUERY_COLUMNS)
    connection.execute(f"INSERT INTO queries ({columns}) SELECT {columns} FROM queries_v2")
    connection.execute("DROP TABLE queries_v2")
    # What schema 2 stored as "an answer to an open query" is the state answered now.
    connection.execute(
        "UPDATE queries SET status = 'answered', status_at = response_recorded_at, status_by = response_recorded_by, "
        "status_reason = 'the site''s answer was read back' WHERE status = 'open' AND response IS NOT NULL")
    for row in connection.execute("SELECT id, site, submitted_at, operator, report_json FROM submissions "
                                  "ORDER BY id").fetchall():
        try:
            report = Report.from_dict(json.loads(row["report_json"]))
        except (TypeError, ValueError):  # pragma: no cover - every recorded report is readable
            continue
        forms = {r[0] for r in connection.execute("SELECT form FROM submission_forms WHERE submission_id = ?",
                                                  (row["id"],))}
        lifecycle.track_deviations(connection, row["site"], int(row["id"]), report, row["submitted_at"],
                                   row["operator"], forms)


def _replace(submission: Submission, **changes: Any) -> Submission:
    return dataclasses.replace(submission, **changes)


def chain_hash(previous: str, line: Any) -> str:
    """The chain hash of one audit line: sha256 of the previous line's chain hash and this line's
    content (seq, time, operator, action, site, submission, detail). Editing, deleting or reordering
    a line changes every hash from there on."""
    content = json.dumps(
        [line["seq"], line["at"], line["operator"], line["action"], line["site"], line["submission_id"],
         line["detail"]],
        ensure_ascii=False, separators=(",", ":"),
    )
    return hashlib.sha256(f"{previous}\n{content}".encode()).hexdigest()


def _audit(connection: sqlite3.Connection, at: str, operator: str, action: str, site: str | None,
           submission_id: int | None, detail: dict[str, Any]) -> int:
    """Append one audit line with its chain hash (inside the caller's transaction); returns its seq."""
    last = connection.execute("SELECT seq, chain FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq = (last[0] + 1) if last is not None else 1
    previous = (last[1] or AUDIT_GENESIS) if last is not None else AUDIT_GENESIS
    line = {"seq": seq, "at": at, "operator": operator, "action": action, "site": site,
            "submission_id": submission_id,
            "detail": json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)}
    connection.execute(
        "INSERT INTO audit (seq, at, operator, action, site, submission_id, detail, chain) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, at, operator, action, site, submission_id, line["detail"], chain_hash(previous, line)),
    )
    return seq


def _make_current(connection: sqlite3.Connection, site: str, submission_id: int, forms: Sequence[str],
                  at: str) -> dict[str, int]:
    """Make a submission the site's current data for ``forms``; returns ``{form: submission it
    replaces}``. A replaced submission that is no longer current for any form is superseded."""
    replaced: dict[str, int] = {}
    for form in forms:
        previous = connection.execute(
            "SELECT submission_id FROM current_forms WHERE site = ? AND form = ?", (site, form)
        ).fetchone()
        if previous is not None and previous[0] != submission_id:
            replaced[form] = int(previous[0])
        connection.execute(
            "INSERT INTO current_forms (site, form, submission_id, since) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(site, form) DO UPDATE SET submission_id = excluded.submission_id, "
            "since = excluded.since",
            (site, form, submission_id, at),
        )
    for old in sorted(set(replaced.values())):
        still = connection.execute("SELECT 1 FROM current_forms WHERE submission_id = ?", (old,)).fetchone()
        if still is None:
            connection.execute("UPDATE submissions SET superseded_by = ? WHERE id = ?", (submission_id, old))
    return replaced


def _report_forms(report_json: str) -> list[str]:
    """The forms a recorded report ran form checks on (``schema:FORM``): what a submission held."""
    try:
        checks = json.loads(report_json).get("checks", [])
    except (ValueError, AttributeError):
        return []
    return sorted({str(c["id"])[len("schema:"):] for c in checks
                   if isinstance(c, dict) and str(c.get("id", "")).startswith("schema:")})


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    try:
        with open_regular(path) as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
    except OSError as exc:
        raise TrialkitError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    return digest.hexdigest(), size


@contextmanager
def _archive_lock(root: Path) -> Iterator[None]:
    """An exclusive lock on the archive folder (``flock`` on its handle; nothing where unsupported)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: folders there are not made read-only either
        yield
        return
    descriptor = os.open(root, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


@contextmanager
def _writable(folder: Path) -> Iterator[None]:
    """Make a read-only archive folder writable for the owner while a file goes in, then 0555."""
    os.chmod(folder, 0o755)
    try:
        yield
    finally:
        os.chmod(folder, 0o555)


def _heal_folders(root: Path) -> None:
    """Make the archive's folders read-only again (at most 258 folders; called under the lock)."""
    for folder in (root, root / "sha256", *((root / "sha256").iterdir() if (root / "sha256").is_dir() else ())):
        try:
            if folder.is_dir() and os.stat(folder).st_mode & 0o222:
                os.chmod(folder, 0o555)
        except OSError:  # pragma: no cover - not ours to change
            continue


def unlock_archive(workspace: str | os.PathLike[str]) -> None:
    """Make a workspace's read-only archive writable again, so that the whole workspace can be
    deleted (the demo replaces its earlier workspace this way; a person would ``chmod -R u+w``)."""
    root = Path(workspace) / ARCHIVE_DIR
    if not root.is_dir():
        return
    for folder, _, names in os.walk(root):
        os.chmod(folder, 0o755)
        for name in names:
            os.chmod(os.path.join(folder, name), 0o644)


def _make_read_only(root: Path) -> None:
    """Archive files 0444 and folders 0555 (deepest first, so nothing is locked out half way)."""
    if not root.is_dir():
        return
    for folder, _, names in os.walk(root, topdown=False):
        for name in names:
            try:
                os.chmod(os.path.join(folder, name), 0o444)
            except OSError:  # pragma: no cover - not ours to change
                pass
        try:
            os.chmod(folder, 0o555)
        except OSError:  # pragma: no cover
            pass


def _safe_extension(name: str) -> str:
    """The file's extension if it is plain (``.xlsx``, ``.sas7bdat``), lower case; else none."""
    suffix = Path(name).suffix.lower().lstrip(".")
    return "." + suffix if _EXT_PATTERN.match(suffix) else ""


def _write_atomic(target: Path, data: bytes, mode: int) -> None:
    handle, temp_name = tempfile.mkstemp(prefix=".incoming-", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp_name, mode)
        os.replace(temp_name, target)
    except BaseException:
        if os.path.exists(temp_name):
            os.unlink(temp_name)
        raise


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(descriptor)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(descriptor)


_ID_HEADERS = {"query id", "queryid", "query", "qid", "query no", "query number"}
_ANSWER_HEADERS = {
    "response": {"site response", "response", "site answer", "answer"},
    "site_comment": {"site comment", "comment"},
    "responded_by": {"responded by", "answered by"},
    "response_date": {"response date", "date of response", "answer date"},
    "dm_action": {"dm action", "data manager action", "action"},
    "dm_reason": {"dm reason", "data manager reason", "reason"},
}
# The answer columns in the order the queries table keeps them (SITE_RESPONSE, SITE_COMMENT, ...).
_ANSWER_FIELDS = ("response", "site_comment", "responded_by", "response_date")
_DM_ACTIONS = {"close": "close", "closed": "close", "reopen": "reopen", "re-open": "reopen", "reopened": "reopen"}
DATA_CUT_ACTION = "data-cut"


def _header_key(value: Any) -> str:
    return re.sub(r"[\s_]+", " ", str(value or "")).strip().lower()


def _cell_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat() if (value.hour, value.minute, value.second) == (0, 0, 0) \
            else value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _read_answer_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a filled query workbook's ``Queries`` sheet that carry a query id."""
    from python_calamine import CalamineWorkbook

    try:
        workbook = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises its own error types for unreadable files
        raise TrialkitError(f"{path}: cannot be read as a workbook ({exc}); is it the query workbook?") from exc
    names = workbook.sheet_names
    sheet_name = next((n for n in names if n.strip().lower() == "queries"), None)
    if sheet_name is None:
        raise TrialkitError(
            f"{path}: has no 'Queries' sheet (sheets: {', '.join(names)}); send the site's filled "
            "query workbook"
        )
    table = workbook.get_sheet_by_name(sheet_name).to_python(skip_empty_area=False)
    # The header is row 1 in trialkit's workbooks; look a few rows down in case a title was added.
    header_index, id_col, keys = -1, None, []
    while id_col is None and header_index < min(len(table), 10) - 1:
        header_index += 1
        keys = [_header_key(h) for h in table[header_index]]
        id_col = next((i for i, k in enumerate(keys) if k in _ID_HEADERS), None)
    if id_col is None:
        raise TrialkitError(
            f"{path}: the Queries sheet has no 'query id' column in its first rows; send the "
            "query workbook as trialkit wrote it"
        )
    columns = {
        field_name: next((i for i, k in enumerate(keys) if k in accepted), None)
        for field_name, accepted in _ANSWER_HEADERS.items()
    }
    if columns["response"] is None and columns["dm_action"] is None:
        raise TrialkitError(f"{path}: the Queries sheet has no SITE_RESPONSE (nor DM_ACTION) column")
    rows: list[dict[str, Any]] = []
    labels = {_header_key(label) for label in all_texts("qb.c.QUERY_ID")}
    for number, values in enumerate(table[header_index + 1:]):
        qid = _cell_text(values[id_col]) if id_col < len(values) else None
        if not qid:
            continue
        if number == 0 and _header_key(qid) in labels:
            continue  # the workbook's label row (the column names in the site's language), not a query
        row: dict[str, Any] = {"query_id": qid}
        for field_name, index in columns.items():
            row[field_name] = _cell_text(values[index]) if index is not None and index < len(values) else None
        if number == 0 and _is_label_row(qid, values, columns.get("response_date")):
            continue  # a translated label row under the header (CONTRACTS: the query workbook's layout)
        rows.append(row)
    return rows


def _is_label_row(qid: str, values: Sequence[Any], date_col: int | None) -> bool:
    """The row right under the header holds column labels, not a query: its QUERY_ID cell is not a
    query id (``Q-`` and 10 hexadecimal digits) and its RESPONSE_DATE cell, when there is one, holds
    text that is no date (a label such as "Response date")."""
    if lifecycle.QUERY_ID_PATTERN.match(qid.strip().upper()):
        return False
    if date_col is None or date_col >= len(values):
        return True
    cell = values[date_col]
    if cell is None or isinstance(cell, date | datetime | int | float) or not str(cell).strip():
        return False
    return not re.match(r"^\s*\d{1,4}[./-]\d{1,2}[./-]\d{1,4}", str(cell))

