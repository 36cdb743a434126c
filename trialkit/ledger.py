"""The submissions ledger and the raw-upload archive: one workspace folder, no server.

A workspace is a folder holding:

``trialkit-workspace.toml``
    what the workspace is for (study id) and when it was created.
``ledger.sqlite``
    the ledger (SQLite, WAL journal, foreign keys on): every submission with its files, status and
    full findings; the site's current accepted submission; the queries with their history and the
    sites' answers; and an append-only audit log (SQLite triggers abort any UPDATE or DELETE of it).
``archive/sha256/ab/abcdef….ext``
    every raw upload, byte for byte, named by its sha256 and written read-only.

:meth:`Workspace.submit` records one site upload in a single ``BEGIN IMMEDIATE`` transaction: a
crash leaves the last complete state. Archive files are written (atomically) before the transaction
commits; an archive file whose transaction never committed is harmless, because the ledger is the
only thing that refers to it.

Statuses: a submission with any error is ``rejected``; one with warnings that were not acknowledged
is ``held`` (recorded, its queries tracked, but not the site's current data — re-submit the same
files with ``accept_warnings=True``); a clean one is ``accepted`` and one whose warnings were
acknowledged is ``accepted-with-warnings``. Both accepted statuses make it the site's current data.
Protocol deviations (category ``deviation``) do not decide the status: correct data that shows a
deviation is accepted, and the deviation stays a query for the site (see :func:`blocking_counts`).
An upload with privacy findings (direct identifiers) is refused before anything is archived
(:class:`PrivacyRefused`); only an audit line records that it came.

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

from trialkit.errors import TrialkitError, UsageError
from trialkit.findings import Category, Finding, Report, Severity

ENV_WORKSPACE = "TRIALKIT_WORKSPACE"
WORKSPACE_FILE = "trialkit-workspace.toml"
LEDGER_FILE = "ledger.sqlite"
ARCHIVE_DIR = "archive"
LEDGER_SCHEMA_VERSION = 1

ACCEPTED = "accepted"
ACCEPTED_WITH_WARNINGS = "accepted-with-warnings"
HELD = "held"
REJECTED = "rejected"
CURRENT_STATUSES = (ACCEPTED, ACCEPTED_WITH_WARNINGS)

# A site id or extension typed by a user must never become a path outside the workspace.
_SITE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
_EXT_PATTERN = re.compile(r"^[a-z0-9]{1,12}$")
_SHA_PATTERN = re.compile(r"^[0-9a-f]{64}$")

# Errors of these categories mean part of the data was never read or validated, so a query that is
# absent from such a submission may only be absent because nobody looked: it is not resolved.
_BLOCKING_CATEGORIES = (Category.FILE, Category.STRUCTURE)

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

CREATE TABLE current (
    site TEXT PRIMARY KEY,
    submission_id INTEGER NOT NULL REFERENCES submissions(id),
    since TEXT NOT NULL
);

CREATE TABLE queries (
    site TEXT NOT NULL,
    query_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
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
    PRIMARY KEY (site, query_id)
);
CREATE INDEX queries_by_id ON queries(query_id);

CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    operator TEXT NOT NULL,
    action TEXT NOT NULL,
    site TEXT,
    submission_id INTEGER REFERENCES submissions(id),
    detail TEXT NOT NULL
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
class QueryChanges:
    """What one submission did to the site's queries (lists of query ids)."""

    new: tuple[str, ...] = ()
    still_open: tuple[str, ...] = ()
    resolved: tuple[str, ...] = ()
    reopened: tuple[str, ...] = ()
    tracked: bool = True  # False when a file/structure error stopped resolution

    def to_dict(self) -> dict[str, Any]:
        """Counts and ids, JSON-ready."""
        return {
            "new": list(self.new),
            "still_open": list(self.still_open),
            "resolved": list(self.resolved),
            "reopened": list(self.reopened),
            "resolution_checked": self.tracked,
        }


@dataclass(frozen=True)
class Submission:
    """One recorded submission (a row of the ledger), as :meth:`Workspace.submit` returns it.

    ``duplicate`` is True when the files had already been submitted for this site: nothing new was
    recorded and this is the earlier submission. ``action`` says what the call did:
    ``recorded``, ``duplicate-ignored`` or ``warnings-accepted`` (a held submission made current).
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
    report_json: str = field(default="", repr=False)

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
        }


@dataclass(frozen=True)
class AnswersResult:
    """What :meth:`Workspace.record_answers` did with a filled query workbook."""

    site: str
    stored: tuple[str, ...]
    refused: tuple[tuple[str, str], ...]  # (query id as typed, reason)
    blank: int  # rows with no answer typed

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "site": self.site,
            "stored": list(self.stored),
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


def init_workspace(path: str | os.PathLike[str], study_id: str | None = None) -> Workspace:
    """Create a workspace in ``path`` (created if missing): the ledger and the archive folder.

    ``study_id`` is recorded; later submissions for another study are refused. A folder that
    already holds a workspace is refused (a ledger is never re-initialised).

    Example::

        >>> ws = init_workspace(tmp_path / "ws", study_id="ANK-SJIA-01")  # doctest: +SKIP
        >>> ws.log()  # doctest: +SKIP
        []
    """
    folder = Path(path).expanduser()
    if _is_workspace(folder):
        raise UsageError(f"{folder}: already a trialkit workspace; use it, or choose another DIR")
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder}: exists and is not a folder; choose another DIR")
    try:
        (folder / ARCHIVE_DIR / "sha256").mkdir(parents=True, exist_ok=True)
        created = _utc_text()
        _write_atomic(folder / WORKSPACE_FILE, _workspace_toml(study_id, created).encode("utf-8"), 0o644)
        connection = sqlite3.connect(folder / LEDGER_FILE, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("BEGIN IMMEDIATE")
            for statement in _statements(_SCHEMA):
                connection.execute(statement)
            connection.execute("INSERT INTO schema_version (version) VALUES (?)", (LEDGER_SCHEMA_VERSION,))
            connection.execute(
                "INSERT INTO audit (at, operator, action, site, submission_id, detail) "
                "VALUES (?, ?, 'workspace-created', NULL, NULL, ?)",
                (created, default_operator(), json.dumps({"study_id": study_id})),
            )
            connection.execute("COMMIT")
        finally:
            connection.close()
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


def _workspace_toml(study_id: str | None, created: str) -> str:
    # json.dumps gives a valid TOML basic string for any text.
    lines = [
        "# A trialkit workspace: the submissions ledger (ledger.sqlite) and the raw-upload archive.",
        "[workspace]",
        f"format = {LEDGER_SCHEMA_VERSION}",
        f"created = {json.dumps(created)}",
    ]
    if study_id:
        lines.append(f"study_id = {json.dumps(study_id, ensure_ascii=False)}")
    return "\n".join(lines) + "\n"


def find_workspace(path: str | os.PathLike[str] | None = None) -> Path:
    """The workspace folder: ``path``, else ``$TRIALKIT_WORKSPACE``, else the current folder or a
    parent of it holding ``trialkit-workspace.toml`` or ``ledger.sqlite``."""
    chosen = path or os.environ.get(ENV_WORKSPACE) or None
    if chosen is not None:
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
    """An upload that holds direct identifiers: refused before anything is archived or recorded."""


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
        if row is None or row[0] != LEDGER_SCHEMA_VERSION:
            raise TrialkitError(
                f"{self.ledger_path}: ledger schema version {row[0] if row else None} is not "
                f"{LEDGER_SCHEMA_VERSION}; use the trialkit version that created this workspace"
            )

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
        """Copy ``source`` into the archive under its sha256, read-only, atomically."""
        try:
            return self.archive_path(digest)
        except TrialkitError:
            pass
        folder = self.path / ARCHIVE_DIR / "sha256" / digest[:2]
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / (digest + _safe_extension(source.name))
        check = hashlib.sha256()
        handle, temp_name = tempfile.mkstemp(prefix=".incoming-", dir=folder)
        try:
            with os.fdopen(handle, "wb") as out, open(source, "rb") as src:
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
        operator: str | None = None,
        note: str | None = None,
        accept_warnings: bool = False,
        now: datetime | None = None,
        study: Any = None,
        template_stamp: str | None = None,
    ) -> Submission:
        """Record one upload of ``site``: its raw files, the validation ``report`` and its status.

        Files are archived unchanged. The status follows the report (see the module docstring);
        an accepted submission becomes the site's current data and supersedes the previous one.
        The site's queries are updated from the report's error and warning findings. The same set
        of files (by sha256) submitted again for the same site records nothing and returns the
        earlier submission with ``duplicate=True`` — except that a ``held`` submission re-submitted
        with ``accept_warnings`` is made current (``action == "warnings-accepted"``).
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
            raise PrivacyRefused(
                f"upload refused for site {site}: {len(privacy)} privacy finding(s) "
                f"({', '.join(sorted({f.code for f in privacy}))}) — it looks like it holds direct "
                "identifiers; nothing was archived or recorded except an audit line. Remove the "
                "identifying columns or values and send the upload again."
            )
        archived = [
            SubmissionFile(
                sha256=f["sha256"], size=f["size"], original_name=f["name"], format=f["format"],
                archive_path=self._archive(f["path"], f["sha256"]).relative_to(self.path).as_posix(),
            )
            for f in files
        ]
        content_key = hashlib.sha256("\n".join(sorted(f.sha256 for f in archived)).encode()).hexdigest()
        counts = report.counts()
        blocking = blocking_counts(report)
        if blocking["error"]:
            status = REJECTED
        elif blocking["warning"]:
            status = ACCEPTED_WITH_WARNINGS if accept_warnings else HELD
        else:
            status = ACCEPTED

        with self._transaction() as connection:
            earlier = connection.execute(
                "SELECT * FROM submissions WHERE site = ? AND content_key = ? ORDER BY id LIMIT 1",
                (site, content_key),
            ).fetchone()
            if earlier is not None:
                if earlier["status"] == HELD and accept_warnings:
                    return self._accept_held(connection, earlier, operator, at)
                _audit(connection, at, operator, "duplicate-ignored", site, earlier["id"], {
                    "files": [{"name": f.original_name, "sha256": f.sha256} for f in archived],
                    "earlier_status": earlier["status"],
                })
                return _replace(self._submission(connection, earlier), duplicate=True,
                                action="duplicate-ignored")

            cursor = connection.execute(
                "INSERT INTO submissions (site, submitted_at, operator, note, status, study_id, "
                "study_version, schema_hash, template_stamp, trialkit_version, data_cut, n_error, "
                "n_warning, n_info, content_key, report_json) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (site, at, operator, note, status, report.study_id, report.study_version,
                 report.schema_hash, template_stamp, report.trialkit_version, report.data_cut,
                 counts["error"], counts["warning"], counts["info"], content_key, report.to_json(None)),
            )
            submission_id = int(cursor.lastrowid)
            connection.executemany(
                "INSERT INTO submission_files (submission_id, sha256, size, original_name, format, "
                "archive_path) VALUES (?, ?, ?, ?, ?, ?)",
                [(submission_id, f.sha256, f.size, f.original_name, f.format, f.archive_path)
                 for f in archived],
            )
            changes = _track_queries(connection, site, submission_id, report, at)
            supersedes = None
            if status in CURRENT_STATUSES:
                supersedes = _make_current(connection, site, submission_id, at)
            _audit(connection, at, operator, "submitted", site, submission_id, {
                "status": status,
                "note": note,
                "files": [{"name": f.original_name, "sha256": f.sha256, "size": f.size} for f in archived],
                "counts": counts,
                "became_current": status in CURRENT_STATUSES,
                "supersedes": supersedes,
                "queries": {k: len(v) if isinstance(v, list) else v for k, v in changes.to_dict().items()},
            })
            row = connection.execute("SELECT * FROM submissions WHERE id = ?", (submission_id,)).fetchone()
            return _replace(self._submission(connection, row), queries=changes)

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
                     at: str) -> Submission:
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
        supersedes = _make_current(connection, held["site"], held["id"], at)
        _audit(connection, at, operator, "warnings-accepted", held["site"], held["id"], {
            "status": ACCEPTED_WITH_WARNINGS, "previous_status": HELD,
            "warnings": held["n_warning"], "became_current": True, "supersedes": supersedes,
        })
        row = connection.execute("SELECT * FROM submissions WHERE id = ?", (held["id"],)).fetchone()
        return _replace(self._submission(connection, row), action="warnings-accepted",
                        queries=QueryChanges(tracked=False))

    # -- reading the ledger ---------------------------------------------------------------------

    def _submission(self, connection: sqlite3.Connection, row: sqlite3.Row) -> Submission:
        files = tuple(
            SubmissionFile(r["sha256"], r["size"], r["original_name"], r["format"], r["archive_path"])
            for r in connection.execute(
                "SELECT * FROM submission_files WHERE submission_id = ? ORDER BY rowid", (row["id"],)
            )
        )
        current = connection.execute(
            "SELECT 1 FROM current WHERE site = ? AND submission_id = ?", (row["site"], row["id"])
        ).fetchone()
        return Submission(
            id=row["id"], site=row["site"], submitted_at=row["submitted_at"],
            operator=row["operator"], note=row["note"], status=row["status"],
            study_id=row["study_id"], study_version=row["study_version"],
            schema_hash=row["schema_hash"], template_stamp=row["template_stamp"],
            trialkit_version=row["trialkit_version"], data_cut=row["data_cut"],
            counts={"error": row["n_error"], "warning": row["n_warning"], "info": row["n_info"]},
            files=files, superseded_by=row["superseded_by"],
            acknowledged_by=row["acknowledged_by"], acknowledged_at=row["acknowledged_at"],
            is_current=current is not None, report_json=row["report_json"],
        )

    def submission(self, submission_id: int) -> Submission:
        """One submission by id (TrialkitError when there is none)."""
        with self._connect() as connection:
            row = connection.execute("SELECT * FROM submissions WHERE id = ?", (submission_id,)).fetchone()
            if row is None:
                raise TrialkitError(f"{self.ledger_path}: no submission {submission_id}")
            return self._submission(connection, row)

    def current_submissions(self) -> dict[str, Submission]:
        """Each site's current accepted submission, by site id (sorted)."""
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT s.* FROM current c JOIN submissions s ON s.id = c.submission_id ORDER BY c.site"
            ).fetchall()
            return {row["site"]: self._submission(connection, row) for row in rows}

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
        """Record a named, immutable snapshot of every site's current submission.

        The snapshot is an audit line (``freeze``), so nothing can change or delete it; a label can be
        used once. Returns ``{"label", "submissions": {site: id}, "at"}``.
        """
        label = label.strip()
        if not label or not all(ch.isalnum() or ch in "-_." for ch in label):
            raise UsageError(f"freeze label {label!r}: use letters, digits, '-', '_' or '.'")
        with self._transaction() as connection:
            for row in connection.execute("SELECT detail FROM audit WHERE action = 'freeze'"):
                if json.loads(row["detail"]).get("label") == label:
                    raise UsageError(f"a freeze called {label!r} already exists; choose another label")
            rows = connection.execute(
                "SELECT site, submission_id FROM current ORDER BY site"
            ).fetchall()
            if not rows:
                raise UsageError("nothing to freeze: no site has accepted data yet (trialkit submit)")
            snapshot = {r["site"]: int(r["submission_id"]) for r in rows}
            at = _utc_text()
            _audit(connection, at, operator or default_operator(), "freeze", None, None,
                   {"label": label, "submissions": snapshot})
        return {"label": label, "submissions": snapshot, "at": at}

    def frozen_submissions(self, label: str) -> dict[str, Submission]:
        """The submissions of the freeze called ``label``, by site."""
        for entry in self.audit():
            if entry["action"] == "freeze" and entry["detail"].get("label") == label:
                return {site: self.submission(int(sid)) for site, sid in entry["detail"]["submissions"].items()}
        known = [e["detail"].get("label") for e in self.audit() if e["action"] == "freeze"]
        raise UsageError(f"no freeze called {label!r}; known: {', '.join(known) or 'none'}")

    # -- queries --------------------------------------------------------------------------------

    def _query_rows(self, site: str | None, status: str | None) -> list[sqlite3.Row]:
        if status in (None, "all"):
            statuses: tuple[str, ...] = ("open", "resolved")
        elif status in ("open", "resolved"):
            statuses = (status,)
        else:
            raise UsageError(f"query status {status!r} is not one of open, resolved, all")
        sql = "SELECT * FROM queries WHERE status IN (?, ?)"
        args: list[Any] = [statuses[0], statuses[-1]]
        if site is not None:
            sql += " AND site = ?"
            args.append(self.check_site(site))
        sql += " ORDER BY site, status, opened_at, subject, form, visit, variable, query_id"
        with self._connect() as connection:
            return connection.execute(sql, args).fetchall()

    def queries(self, site: str | None = None, status: str | None = None,
                today: date | None = None) -> list[dict[str, Any]]:
        """The queries (``status``: open, resolved or all/None), each with ``age_days``: days open
        until ``today`` (UTC today by default), or until it was resolved."""
        today = today or datetime.now(UTC).date()
        result = []
        for row in self._query_rows(site, status):
            item = {key: row[key] for key in row.keys() if key != "finding_json"}
            opened = date.fromisoformat(row["opened_at"][:10])
            end = date.fromisoformat(row["resolved_at"][:10]) if row["resolved_at"] else today
            item["age_days"] = max((end - opened).days, 0)
            result.append(item)
        return result

    def queries_report(self, site: str | None = None, status: str | None = "open") -> Report:
        """The queries as a :class:`Report` of their latest findings (for a query workbook)."""
        report = Report(study_id=self.study_id, site=site)
        for row in self._query_rows(site, status):
            finding = Finding.from_dict(json.loads(row["finding_json"]))
            finding.site = row["site"]
            finding.query_id = row["query_id"]
            report.add(finding)
        return report

    def record_answers(self, xlsx_path: str | os.PathLike[str], operator: str | None = None,
                       *, site: str | None = None, now: datetime | None = None) -> AnswersResult:
        """Store the answers a site typed into its query workbook (sheet ``Queries``).

        Rows are matched by query id; ``SITE_RESPONSE``, ``RESPONDED_BY`` and ``RESPONSE_DATE`` are
        stored with the query. The workbook is one site's (``site``, else the site most of its known
        query ids belong to): a row whose query id is unknown or belongs to another site is refused,
        never stored. Rows without an answer are skipped. The outcome is written to the audit log.
        """
        path = Path(xlsx_path)
        rows = _read_answer_rows(path)
        operator = (operator or "").strip() or default_operator()
        at = _utc_text(now)
        with self._transaction() as connection:
            owners: dict[str, set[str]] = {}
            for qid in {r["query_id"] for r in rows}:
                owners[qid] = {
                    r[0] for r in connection.execute("SELECT site FROM queries WHERE query_id = ?", (qid,))
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
            refused: list[tuple[str, str]] = []
            blank = 0
            for row in rows:
                qid = row["query_id"]
                if not (row["response"] or row["responded_by"] or row["response_date"]):
                    blank += 1
                    continue
                if site not in owners[qid]:
                    reason = (f"belongs to site {', '.join(sorted(owners[qid]))}, not {site}"
                              if owners[qid] else "unknown query id")
                    refused.append((qid, reason))
                    continue
                connection.execute(
                    "UPDATE queries SET response = ?, responded_by = ?, response_date = ?, "
                    "response_recorded_at = ?, response_recorded_by = ? WHERE site = ? AND query_id = ?",
                    (row["response"], row["responded_by"], row["response_date"], at, operator, site, qid),
                )
                stored.append(qid)
            _audit(connection, at, operator, "answers-recorded", site, None, {
                "file": path.name, "sha256": _hash_file(path)[0], "stored": stored,
                "refused": [{"query_id": q, "reason": r} for q, r in refused], "blank": blank,
            })
        return AnswersResult(site=site, stored=tuple(stored), refused=tuple(refused), blank=blank)

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` result (``"ok"`` when the ledger is sound)."""
        with self._connect() as connection:
            return str(connection.execute("PRAGMA integrity_check").fetchone()[0])


# ------------------------------------------------------------------------------------------------
# Helpers


def blocking_counts(report: Report) -> dict[str, int]:
    """Errors and warnings that decide a submission's status.

    Protocol deviations are facts about how the trial was run, not mistakes in the upload: correct
    data showing a deviation must still be accepted (the deviation is tracked as a query for the
    site to confirm, and pooled so that it takes the subject out of the per-protocol population).
    Every other error rejects; every other warning holds until acknowledged.
    """
    counts = {"error": 0, "warning": 0}
    for finding in report.findings:
        if finding.category != Category.DEVIATION and finding.severity.value in counts:
            counts[finding.severity.value] += 1
    return counts


def _replace(submission: Submission, **changes: Any) -> Submission:
    return dataclasses.replace(submission, **changes)


def _audit(connection: sqlite3.Connection, at: str, operator: str, action: str, site: str | None,
           submission_id: int | None, detail: dict[str, Any]) -> None:
    connection.execute(
        "INSERT INTO audit (at, operator, action, site, submission_id, detail) VALUES (?, ?, ?, ?, ?, ?)",
        (at, operator, action, site, submission_id,
         json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)),
    )


def _make_current(connection: sqlite3.Connection, site: str, submission_id: int, at: str) -> int | None:
    """Make a submission the site's current data; returns the submission it supersedes."""
    previous = connection.execute("SELECT submission_id FROM current WHERE site = ?", (site,)).fetchone()
    if previous is not None:
        connection.execute(
            "UPDATE submissions SET superseded_by = ? WHERE id = ?", (submission_id, previous[0])
        )
    connection.execute(
        "INSERT INTO current (site, submission_id, since) VALUES (?, ?, ?) "
        "ON CONFLICT(site) DO UPDATE SET submission_id = excluded.submission_id, since = excluded.since",
        (site, submission_id, at),
    )
    return previous[0] if previous is not None else None


def _query_findings(report: Report) -> dict[str, Finding]:
    """The report's queries: errors and warnings with a query id, first finding per id."""
    found: dict[str, Finding] = {}
    for finding in report.findings:
        if finding.severity == Severity.INFO or not finding.query_id:
            continue
        found.setdefault(finding.query_id, finding)
    return found


def _track_queries(connection: sqlite3.Connection, site: str, submission_id: int, report: Report,
                   at: str) -> QueryChanges:
    """Open, keep open, reopen or resolve the site's queries from one validated submission."""
    seen = _query_findings(report)
    blocked = {
        f.form for f in report.findings
        if f.severity == Severity.ERROR and f.category in _BLOCKING_CATEGORIES
    }
    existing = {
        r["query_id"]: r
        for r in connection.execute("SELECT query_id, status, form FROM queries WHERE site = ?", (site,))
    }
    new: list[str] = []
    still_open: list[str] = []
    reopened: list[str] = []
    for qid, finding in seen.items():
        details = (
            finding.severity.value, finding.code, finding.category.value, finding.subject,
            finding.form, finding.visit, finding.variable, finding.value, finding.message,
            json.dumps(finding.to_dict(), ensure_ascii=False, default=str),
        )
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
        connection.execute(
            "UPDATE queries SET status = 'open', last_seen_submission = ?, resolved_submission = NULL, "
            "resolved_at = NULL, severity = ?, code = ?, category = ?, subject = ?, form = ?, "
            "visit = ?, variable = ?, value = ?, message = ?, finding_json = ? "
            "WHERE site = ? AND query_id = ?",
            (submission_id, *details, site, qid),
        )
        (still_open if before["status"] == "open" else reopened).append(qid)
    resolved: list[str] = []
    tracked = None not in blocked
    if tracked:
        for qid, before in existing.items():
            if before["status"] == "open" and qid not in seen and before["form"] not in blocked:
                connection.execute(
                    "UPDATE queries SET status = 'resolved', resolved_at = ?, resolved_submission = ? "
                    "WHERE site = ? AND query_id = ?",
                    (at, submission_id, site, qid),
                )
                resolved.append(qid)
    return QueryChanges(tuple(new), tuple(still_open), tuple(sorted(resolved)), tuple(reopened), tracked)


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
    except OSError as exc:
        raise TrialkitError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    return digest.hexdigest(), size


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
    "responded_by": {"responded by", "answered by"},
    "response_date": {"response date", "date of response", "answer date"},
}


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
    if columns["response"] is None:
        raise TrialkitError(f"{path}: the Queries sheet has no SITE_RESPONSE column")
    rows: list[dict[str, Any]] = []
    for values in table[header_index + 1:]:
        qid = _cell_text(values[id_col]) if id_col < len(values) else None
        if not qid:
            continue
        row: dict[str, Any] = {"query_id": qid}
        for field_name, index in columns.items():
            row[field_name] = _cell_text(values[index]) if index is not None and index < len(values) else None
        rows.append(row)
    return rows

