"""Findings and reports: the one currency of results in trialkit.

Every stage — importing, validating, rules, deviations — returns :class:`Finding` objects, never
raises them. A finding says *where* (site, subject, form, visit, variable, value as typed, file,
sheet, the row number the site sees), *what* (code, severity, category, a message with what was
expected and what was found) and *why* (the check or protocol reference).

A :class:`Report` gathers the findings of one run with the status of every check that ran
(:class:`CheckRun`: passed, failed with a count, skipped with the reason, or error with the exception
text — so a check that did not run never looks like a pass), the input files with sha256 and size,
and the trialkit and study versions. ``Report.to_dict()`` is the versioned JSON form
(``REPORT_SCHEMA_VERSION``); ``trialkit validate -f json`` prints exactly that.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

REPORT_SCHEMA_VERSION = "1.0"


class Severity(StrEnum):
    """How serious a finding is. Ordered: error > warning > info."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """2 for error, 1 for warning, 0 for info."""
        return {"error": 2, "warning": 1, "info": 0}[self.value]


class Category(StrEnum):
    """What kind of problem a finding is about."""

    FILE = "file"  # the file cannot be read, or is not what it claims
    STRUCTURE = "structure"  # sheets, headers, columns, template version
    NORMALISATION = "normalisation"  # a value was converted (dates, units, decimals, synonyms)
    TYPE = "type"
    RANGE = "range"
    CODELIST = "codelist"
    REQUIRED = "required"
    KEY = "key"  # duplicate keys
    RECORD = "record"  # impossible combinations within a record
    CROSS_FORM = "cross-form"
    DEVIATION = "deviation"  # protocol deviation PD-nn
    PRIVACY = "privacy"
    LEDGER = "ledger"  # what an upload would do to the site's current data (no form, records removed)


class Status(StrEnum):
    """Outcome of one check or rule in a run."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    ERROR = "error"


@dataclass
class Finding:
    """One problem (or one recorded normalisation) at one place.

    ``row`` is the row number the site sees in its file (the spreadsheet row, counting the header
    row; for SAS/SPSS/Stata/CSV the 1-based record number plus the header line where there is one).
    ``value`` is the value as the site typed it. ``query_id`` is stable across re-uploads (see
    :func:`query_id`).
    """

    code: str
    severity: Severity
    category: Category
    message: str
    site: str | None = None
    subject: str | None = None
    form: str | None = None
    visit: str | None = None
    variable: str | None = None
    value: str | None = None
    expected: str | None = None
    file: str | None = None
    sheet: str | None = None
    row: int | None = None
    check: str | None = None
    reference: str | None = None
    deviation_class: str | None = None  # "major" / "minor" for protocol deviations
    evidence: dict[str, Any] | None = None
    query_id: str | None = None

    def __post_init__(self) -> None:
        self.severity = Severity(self.severity)
        self.category = Category(self.category)
        if self.value is not None and not isinstance(self.value, str):
            self.value = str(self.value)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (enums as their values, None kept)."""
        data = asdict(self)
        data["severity"] = self.severity.value
        data["category"] = self.category.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        """Inverse of :meth:`to_dict` (unknown keys are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def query_id(
    code: str,
    subject: str | None,
    form: str | None,
    keys: Iterable[Any] = (),
    variable: str | None = None,
) -> str:
    """A stable query id: the same problem in a re-upload gets the same id.

    Built from the rule/check code, subject, form, the record's key values and the variable — never
    from row numbers or file names, which change between uploads.

    >>> query_id("RANGE", "01-001", "VS", ["01-001", "WEEK2"], "WEIGHT") == query_id(
    ...     "RANGE", "01-001", "VS", ["01-001", "WEEK2"], "WEIGHT")
    True
    """
    text = "\x1f".join(
        [code or "", subject or "", form or "", *[_key_text(k) for k in keys], variable or ""]
    )
    return "Q-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:10].upper()


def _key_text(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        try:
            return value.isoformat()[:10] if getattr(value, "hour", 0) == 0 else value.isoformat()
        except Exception:  # pragma: no cover - NaT and friends
            return str(value)
    if isinstance(value, float) and value != value:
        return ""
    return str(value)


@dataclass
class CheckRun:
    """The outcome of one check or rule in a run."""

    id: str
    title: str
    status: Status
    count: int = 0
    reason: str | None = None
    forms: list[str] = field(default_factory=list)
    severity: str | None = None
    category: str | None = None
    reference: str | None = None
    detail: str | None = None  # for the trialkit team: what failed inside a check that could not run

    def __post_init__(self) -> None:
        self.status = Status(self.status)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data = asdict(self)
        data["status"] = self.status.value
        return data


_CHECK_FIELDS = {f.name for f in fields(CheckRun)}


@dataclass
class InputFile:
    """A file that went into a run, identified by content."""

    path: str
    sha256: str
    size: int
    format: str | None = None

    @classmethod
    def from_path(cls, path: str | Path, format: str | None = None) -> InputFile:
        """Hash a file (streaming, so large files do not load into memory).

        Only a regular file is read: a link, FIFO or device raises :class:`OSError` (never followed,
        never blocks)."""
        from trialkit.safefiles import open_regular

        digest = hashlib.sha256()
        size = 0
        with open_regular(path) as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
        return cls(path=str(path), sha256=digest.hexdigest(), size=size, format=format)


@dataclass
class Report:
    """All findings of one run, the status of every check, and what went in."""

    findings: list[Finding] = field(default_factory=list)
    checks: list[CheckRun] = field(default_factory=list)
    inputs: list[InputFile] = field(default_factory=list)
    trialkit_version: str = ""
    study_id: str | None = None
    study_version: str | None = None
    schema_hash: str | None = None
    site: str | None = None
    data_cut: str | None = None
    truncated: int = 0  # findings left out by --max-findings

    def __post_init__(self) -> None:
        if not self.trialkit_version:
            from trialkit import __version__

            self.trialkit_version = __version__

    # -- building -------------------------------------------------------------------------------

    def add(self, finding: Finding) -> None:
        """Append one finding."""
        self.findings.append(finding)

    def extend(self, findings: Iterable[Finding]) -> None:
        """Append many findings."""
        self.findings.extend(findings)

    def record_check(self, check: CheckRun) -> None:
        """Record the outcome of one check or rule."""
        self.checks.append(check)

    def merge(self, other: Report) -> None:
        """Take over another report's findings, checks and inputs."""
        self.findings.extend(other.findings)
        self.checks.extend(other.checks)
        known = {i.sha256 + i.path for i in self.inputs}
        self.inputs.extend(i for i in other.inputs if i.sha256 + i.path not in known)

    # -- reading --------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Number of findings by severity (every severity present, zero included)."""
        counter = Counter(f.severity.value for f in self.findings)
        return {s.value: counter.get(s.value, 0) for s in Severity}

    def counts_by(self, attribute: str) -> dict[str, int]:
        """Number of findings by any attribute (``category``, ``form``, ``code`` ...)."""
        counter: Counter[str] = Counter()
        for finding in self.findings:
            value = getattr(finding, attribute)
            counter[str(getattr(value, "value", value)) if value is not None else "-"] += 1
        return dict(sorted(counter.items()))

    def worst(self) -> Severity | None:
        """The highest severity among the findings, or None when there are none."""
        if not self.findings:
            return None
        return max((f.severity for f in self.findings), key=lambda s: s.rank)

    def fails_at(self, level: str) -> bool:
        """True when a finding is at or above ``level`` (``error``/``warning``; ``never`` → False)."""
        if level == "never":
            return False
        threshold = Severity(level).rank
        return any(f.severity.rank >= threshold for f in self.findings)

    def for_site(self, site: str) -> Report:
        """A copy holding only one site's findings (and the run's checks and inputs)."""
        copy = Report(**{f.name: getattr(self, f.name) for f in fields(self)})
        copy.findings = [f for f in self.findings if f.site == site]
        return copy

    # -- JSON -----------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON form of the report."""
        return {
            "schema_version": REPORT_SCHEMA_VERSION,
            "trialkit_version": self.trialkit_version,
            "study": {
                "id": self.study_id,
                "protocol_version": self.study_version,
                "schema_hash": self.schema_hash,
            },
            "site": self.site,
            "data_cut": self.data_cut,
            "inputs": [asdict(i) for i in self.inputs],
            "counts": self.counts(),
            "checks": [c.to_dict() for c in self.checks],
            "findings": [f.to_dict() for f in self.findings],
            "truncated": self.truncated,
        }

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, default=str)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """Read a report back from its JSON form (refuses an unknown major schema version)."""
        version = str(data.get("schema_version", ""))
        if version.split(".")[0] != REPORT_SCHEMA_VERSION.split(".")[0]:
            raise ValueError(
                f"report schema version {version!r} is not supported (this trialkit writes "
                f"{REPORT_SCHEMA_VERSION})"
            )
        study = data.get("study") or {}
        return cls(
            findings=[Finding.from_dict(f) for f in data.get("findings", [])],
            checks=[CheckRun(**{k: v for k, v in c.items() if k in _CHECK_FIELDS}) for c in data.get("checks", [])],
            inputs=[InputFile(**i) for i in data.get("inputs", [])],
            trialkit_version=data.get("trialkit_version", ""),
            study_id=study.get("id"),
            study_version=study.get("protocol_version"),
            schema_hash=study.get("schema_hash"),
            site=data.get("site"),
            data_cut=data.get("data_cut"),
            truncated=int(data.get("truncated", 0)),
        )
