"""Validation: pandera form checks and the study's rules → one :class:`~trialkit.findings.Report`.

:func:`validate_form` runs a form's pandera schema lazily on the imported, already typed records
(:class:`~trialkit.importers.base.FormData`) and turns pandera's ``failure_cases`` table into
findings — one per record, variable and check — with the row the site sees, the value as the site
typed it, what was found and what is allowed. The conversion works on whole columns (joins and
``take`` on the failure table) and builds the ``Finding`` objects in one comprehension, so a million
records with ten thousand bad cells cost about as much again as pandera itself.

:func:`validate` runs a whole upload: the importer's findings, the form checks of every form, then
every rule of the study (:func:`trialkit.rules.run_rules`), restricted to one site when asked.

Example::

    >>> from trialkit.study import load_study
    >>> from trialkit.importers.base import ImportResult
    >>> report = validate(load_study(), ImportResult())
    >>> report.counts(), report.findings[0].code  # nothing recognised: nothing can look clean
    ({'error': 1, 'warning': 0, 'info': 0}, 'NO-FORM')
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from trialkit.diagnose import SITE_CONVENTIONS, convention_findings, site_mismatch
from trialkit.errors import UsageError
from trialkit.findings import (
    Category,
    CheckRun,
    Finding,
    Report,
    Severity,
    Status,
    query_id,
)

if TYPE_CHECKING:  # pragma: no cover
    from trialkit.importers.base import FormData, ImportResult
    from trialkit.study import Form, Study, Variable

# Finding codes of the form checks.
REQUIRED = "REQUIRED"
CODELIST = "CODELIST"
RANGE = "RANGE"
DECIMALS = "DECIMALS"
FORMAT = "FORMAT"
TYPE = "TYPE"
DUPLICATE_KEY = "DUPLICATE-KEY"
DUPLICATE_VALUE = "DUPLICATE-VALUE"
STRUCTURE = "STRUCTURE"
WRONG_SITE = "WRONG-SITE"
NO_FORM = "NO-FORM"

_CODELIST_SHOWN = 12  # codes listed in a message before "…"


@dataclass(frozen=True)
class _CheckKind:
    """What a pandera check means for a finding."""

    code: str
    category: Category


_KINDS: dict[str, _CheckKind] = {
    "not_nullable": _CheckKind(REQUIRED, Category.REQUIRED),
    "required": _CheckKind(REQUIRED, Category.REQUIRED),
    "isin": _CheckKind(CODELIST, Category.CODELIST),
    "greater_than_or_equal_to": _CheckKind(RANGE, Category.RANGE),
    "less_than_or_equal_to": _CheckKind(RANGE, Category.RANGE),
    "greater_than": _CheckKind(RANGE, Category.RANGE),
    "less_than": _CheckKind(RANGE, Category.RANGE),
    "in_range": _CheckKind(RANGE, Category.RANGE),
    "max_decimals": _CheckKind(DECIMALS, Category.RANGE),
    "str_matches": _CheckKind(FORMAT, Category.TYPE),
    "subject_id_format": _CheckKind(FORMAT, Category.TYPE),
    "dtype": _CheckKind(TYPE, Category.TYPE),
    "unique_keys": _CheckKind(DUPLICATE_KEY, Category.KEY),
    "field_uniqueness": _CheckKind(DUPLICATE_VALUE, Category.KEY),
    "column_in_dataframe": _CheckKind(STRUCTURE, Category.STRUCTURE),
    "column_in_schema": _CheckKind(STRUCTURE, Category.STRUCTURE),
}

# pandera reports a check inherited from a base model under its method name (``_subjid_format``)
# rather than the ``name=`` it was declared with; map those back.
_ALIASES = {"subjid_format": "subject_id_format"}

_SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


def canonical_check(name: str) -> str:
    """The check's family: ``less_than_or_equal_to(200)`` → ``less_than_or_equal_to``,
    ``required:PTENDAT`` → ``required``, ``_unique_keys`` → ``unique_keys``."""
    base = str(name).split("(", 1)[0].split(":", 1)[0].lstrip("_")
    return _ALIASES.get(base, base)


# ------------------------------------------------------------------------------------------------
# Form checks


def validate_form(study: Study, form_data: FormData) -> tuple[list[Finding], list[CheckRun]]:
    """Run a form's pandera schema on imported records; return findings and the form's CheckRun.

    One finding per (record, variable, check); a dataframe-level check gives one finding per record.
    A missing-value code typed in a required cell, and a typed value the importer could not convert
    (already reported by the importer), raise no ``REQUIRED`` finding.

    Example::

        >>> from trialkit.study import load_study
        >>> from trialkit.importers.base import FormData
        >>> empty = pd.DataFrame(columns=load_study().form("DM").variable_names)
        >>> validate_form(load_study(), FormData("DM", empty, empty, empty, empty))[1][0].status.value
        'passed'
    """
    form = study.form(form_data.form)
    check_id = f"schema:{form.code}"
    run = dict(
        id=check_id,
        title=f"Form checks of {form.code} ({form.label}): type, range, codelist, required, keys",
        forms=[form.code],
        severity=Severity.ERROR.value,
        category="schema",
        reference=_reference(form),
    )
    try:
        findings, errors = _form_findings(form, form_data, study)
    except Exception as exc:  # the run goes on; the form's checks are recorded as not run
        reason = (f"the form checks of {form.code} could not run: they failed on this data, so its type, range, "
                  "codelist and required problems are not listed (the other checks ran); send the upload to "
                  "the trialkit team")
        return [], [CheckRun(**run, status=Status.ERROR, reason=reason, detail=f"{type(exc).__name__}: {exc}")]
    if errors:
        status, reason = Status.ERROR, "; ".join(errors)
    else:
        status, reason = (Status.FAILED if findings else Status.PASSED), None
    return findings, [CheckRun(**run, status=status, count=len(findings), reason=reason)]


def _reference(form: Form) -> str:
    return f"Synopsis: {form.code} form"


def _aligned(frame: pd.DataFrame, index: pd.Index) -> pd.DataFrame:
    """``frame`` in the order of ``index`` (the frames of a FormData share an index)."""
    if frame.index.equals(index):
        return frame
    return frame.reindex(index)


def _form_findings(form: Form, form_data: FormData, study: Study) -> tuple[list[Finding], list[str]]:
    data = form_data.data
    count = len(data)
    schema = form.schema
    missing = [name for name in schema.columns if name not in data.columns]
    if missing:  # the importer reports missing columns; check what is there
        schema = schema.remove_columns(missing)
    # Validate on positions 0..n-1: failure_cases' ``index`` then indexes every frame with ``take``.
    positional = data.set_axis(pd.RangeIndex(count), axis=0)
    try:
        schema.validate(positional, lazy=True)
        return [], []
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    except pa.errors.SchemaError as exc:  # pragma: no cover - lazy mode collects everything
        return [], [str(exc)]

    raw = _aligned(form_data.raw, data.index)
    reasons = _aligned(form_data.reasons, data.index)
    lineage = _aligned(form_data.lineage, data.index)

    hits, errors = _resolve_cases(form, schema, cases)
    if hits.empty:
        return [], errors
    hits = _drop_answered(hits, data, raw, reasons)
    hits = _drop_absent(hits, form_data)
    if hits.empty:
        return [], errors
    return _build_findings(form, hits, data, raw, lineage, study), errors


def _resolve_cases(form: Form, schema: Any, cases: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """One row per (position, variable, check family) from pandera's failure table.

    Columns of the result: ``pos``, ``variable``, ``check`` (pandera's name), ``family``,
    ``failure_case``. Failures without a record (check errors, missing columns) come back as text.
    """
    errors: list[str] = []
    cases = cases.reset_index(drop=True)
    has_index = cases["index"].notna()
    for _, row in cases[~has_index].drop_duplicates(["column", "check"]).iterrows():
        family = canonical_check(str(row["check"]))
        if family == "column_in_dataframe":
            continue  # the importer reports missing columns
        errors.append(f"{row['column']}: {row['check']}: {row['failure_case']}")
    cases = cases[has_index]
    if cases.empty:
        return pd.DataFrame(columns=["pos", "variable", "check", "family", "failure_case"]), errors

    frame_level = cases["schema_context"].eq("DataFrameSchema")
    parts = []

    column_cases = cases[~frame_level]
    if len(column_cases):
        names = _column_check_names(schema, column_cases)
        parts.append(
            pd.DataFrame(
                {
                    "pos": column_cases["index"].to_numpy(dtype=np.int64),
                    "variable": column_cases["column"].to_numpy(dtype=object),
                    "check": names,
                    "failure_case": column_cases["failure_case"].to_numpy(dtype=object),
                }
            )
        )

    wide = cases[frame_level]
    if len(wide):
        # A failed dataframe check lists every column of the record: keep one row per record.
        wide = wide.drop_duplicates(["check_number", "index"])
        numbers = wide["check_number"].astype(int).to_numpy()
        check_names = np.array([schema.checks[n].name for n in range(len(schema.checks))], dtype=object)
        names = check_names[numbers]
        variables = np.array([_wide_variable(form, name) for name in check_names], dtype=object)[numbers]
        parts.append(
            pd.DataFrame(
                {
                    "pos": wide["index"].to_numpy(dtype=np.int64),
                    "variable": variables,
                    "check": names,
                    "failure_case": None,
                }
            )
        )
    hits = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    families = {name: canonical_check(name) for name in pd.unique(hits["check"])}
    hits["family"] = hits["check"].map(families)
    # A wide check can fail both per column and per record for the same cell: one finding each.
    hits = hits.drop_duplicates(["pos", "variable", "family"])
    return hits, errors


def _column_check_names(schema: Any, cases: pd.DataFrame) -> np.ndarray:
    """The declared name of each column-level failure (``not_nullable``, ``isin``, ...)."""
    check_text = cases["check"].to_numpy(dtype=object)
    out = check_text.copy()
    numbered = cases["check_number"].notna().to_numpy()
    if numbered.any():
        lookup: dict[tuple[str, int], str] = {}
        for column, number in zip(
            cases["column"].to_numpy()[numbered],
            cases["check_number"].to_numpy()[numbered],
            strict=True,
        ):
            key = (column, int(number))
            if key not in lookup:
                checks = schema.columns[column].checks if column in schema.columns else []
                lookup[key] = checks[key[1]].name if key[1] < len(checks) else str(number)
        out[numbered] = [
            lookup[(c, int(n))]
            for c, n in zip(
                cases["column"].to_numpy()[numbered],
                cases["check_number"].to_numpy()[numbered],
                strict=True,
            )
        ]
    return out


def _wide_variable(form: Form, check_name: str) -> str | None:
    family = canonical_check(check_name)
    if family == "required" and ":" in check_name:
        return check_name.split(":", 1)[1]
    if family == "unique_keys":
        return ", ".join(form.keys)
    return None


def _is_required(family: pd.Series) -> pd.Series:
    return family.isin(["not_nullable", "required"])


def _drop_answered(
    hits: pd.DataFrame, data: pd.DataFrame, raw: pd.DataFrame, reasons: pd.DataFrame
) -> pd.DataFrame:
    """Drop required-failures of cells the site answered with a missing-value code, or typed a value
    the importer could not convert (the importer already reported it)."""
    required = _is_required(hits["family"])
    if not required.any():
        return hits
    keep = np.ones(len(hits), dtype=bool)
    req_rows = np.flatnonzero(required.to_numpy())
    variables = hits["variable"].to_numpy(dtype=object)[req_rows]
    positions = hits["pos"].to_numpy()[req_rows]
    for variable in pd.unique(variables):
        if variable is None or variable not in data.columns:
            continue
        mine = variables == variable
        pos = positions[mine]
        answered = np.zeros(len(pos), dtype=bool)
        if variable in reasons.columns:
            answered |= reasons[variable].iloc[pos].notna().to_numpy()
        if variable in raw.columns:
            typed = raw[variable].iloc[pos]
            answered |= (typed.notna() & typed.astype(str).str.strip().ne("")).to_numpy()
        keep[req_rows[mine][answered]] = False
    return hits[keep]


def _drop_absent(hits: pd.DataFrame, form_data: FormData) -> pd.DataFrame:
    """Drop required-failures of records whose file had no column for the variable: the importer
    reported the column once (``IMP-COLUMN-MISSING`` with the row count), not once per row."""
    if not form_data.absent or hits.empty:
        return hits
    keep = np.ones(len(hits), dtype=bool)
    required = _is_required(hits["family"]).to_numpy()
    variables = hits["variable"].to_numpy(dtype=object)
    positions = hits["pos"].to_numpy()
    for variable, mask in form_data.absent.items():
        mine = required & (variables == variable)
        if mine.any():
            keep[mine] = ~mask[positions[mine]]
    return hits[keep]


def _column_text(values: Iterable[Any]) -> list[str | None]:
    return [_text(v) for v in values]


def _text(value: Any) -> str | None:
    """A stored value as text for messages and ids (None when missing)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float):
        if value != value:
            return None
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, pd.Timestamp | dt.datetime):
        if value.hour == value.minute == value.second == 0:
            return value.strftime("%Y-%m-%d")
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return _text(value.item())
    return str(value)


def _key_texts(data: pd.DataFrame, columns: Iterable[str], positions: np.ndarray) -> list[list[str | None]]:
    """Per position, the record's key values as text (dates as YYYY-MM-DD)."""
    per_column = []
    for column in columns:
        if column not in data.columns:
            per_column.append([None] * len(positions))
            continue
        series = data[column].take(positions)
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            text = series.dt.strftime("%Y-%m-%d").astype(object)
            per_column.append([None if pd.isna(t) else t for t in text])
        elif pd.api.types.is_string_dtype(series.dtype) or series.dtype == object:
            per_column.append([None if pd.isna(t) else str(t) for t in series.to_numpy(dtype=object)])
        else:
            per_column.append(_column_text(series.to_numpy(dtype=object)))
    return [list(values) for values in zip(*per_column, strict=True)] if per_column else [
        [] for _ in positions
    ]


def _build_findings(
    form: Form, hits: pd.DataFrame, data: pd.DataFrame, raw: pd.DataFrame, lineage: pd.DataFrame, study: Study
) -> list[Finding]:
    hits = hits.sort_values(["pos", "variable", "family"], kind="stable").reset_index(drop=True)
    pos = hits["pos"].to_numpy()
    n = len(hits)
    variables = hits["variable"].to_numpy(dtype=object)
    families = hits["family"].to_numpy(dtype=object)

    # Where: lineage and the record's identifiers, by position.
    def take(frame: pd.DataFrame, column: str) -> np.ndarray:
        if column not in frame.columns:
            return np.full(n, None, dtype=object)
        return frame[column].iloc[pos].to_numpy(dtype=object)

    files = take(lineage, "FILE")
    sheets = take(lineage, "SHEET")
    rows_seen = take(lineage, "ROW")
    subjects = take(data, "SUBJID")
    site_ids = take(data, "SITEID")
    visits = take(data, "VISIT")

    # The value as typed (per variable column) and as stored.
    typed = np.full(n, None, dtype=object)
    stored = np.full(n, None, dtype=object)
    for variable in pd.unique(variables):
        if variable is None:
            continue
        mine = variables == variable
        if variable in raw.columns:
            typed[mine] = raw[variable].iloc[pos[mine]].to_numpy(dtype=object)
        if variable in data.columns:
            stored[mine] = data[variable].iloc[pos[mine]].to_numpy(dtype=object)
    typed = np.array([None if (t is None or t != t or str(t) == "") else str(t) for t in typed], dtype=object)

    # What: message, expected, code and category per (variable, family) group.
    texts: dict[tuple[Any, str], tuple[str, str | None, _CheckKind]] = {}
    checks = hits["check"].to_numpy(dtype=object)
    for variable, family, check in zip(variables, families, checks, strict=True):
        key = (variable, family)
        if key not in texts:
            texts[key] = _describe(form, variable, family, str(check), study.subject_id_hint)

    # Duplicated keys or values: name the other rows that share them.
    duplicates = _duplicate_notes(form, hits, data, rows_seen)

    key_values = _key_texts(data, form.keys, pos)
    stored_text = _column_text(stored)
    findings = []
    for i in range(n):
        variable, family = variables[i], families[i]
        template, expected, kind = texts[(variable, family)]
        value_text = stored_text[i] if stored_text[i] is not None else typed[i]
        if family in ("unique_keys", "field_uniqueness"):
            message = duplicates.get(i, template)
            shown = duplicates.get(("value", i))
        else:
            message = template.format(value=value_text)
            shown = typed[i]
        subject = _text(subjects[i])
        site = _text(site_ids[i]) or study.subject_site(subject)
        findings.append(
            Finding(
                code=kind.code,
                severity=Severity.ERROR,
                category=kind.category,
                message=message,
                site=site,
                subject=subject,
                form=form.code,
                visit=_text(visits[i]),
                variable=variable,
                value=shown,
                expected=expected,
                file=_text(files[i]),
                sheet=_text(sheets[i]),
                row=int(rows_seen[i]) if rows_seen[i] is not None and rows_seen[i] == rows_seen[i] else None,
                check=families[i] if str(checks[i]).startswith("_") else str(checks[i]),
                reference=_reference(form),
                query_id=query_id(kind.code, subject, form.code, key_values[i], variable),
            )
        )
    return findings


def _duplicate_notes(
    form: Form, hits: pd.DataFrame, data: pd.DataFrame, rows_seen: np.ndarray
) -> dict[Any, str]:
    """Messages for duplicate keys/values: the other rows that share the same key."""
    notes: dict[Any, str] = {}
    families = hits["family"].to_numpy(dtype=object)
    for family in ("unique_keys", "field_uniqueness"):
        mine = np.flatnonzero(families == family)
        if not len(mine):
            continue
        for variable in pd.unique(hits["variable"].to_numpy(dtype=object)[mine]):
            sel = mine[hits["variable"].to_numpy(dtype=object)[mine] == variable]
            columns = list(form.keys) if family == "unique_keys" else [variable]
            columns = [c for c in columns if c in data.columns]
            pos = hits["pos"].to_numpy()[sel]
            keys = [tuple(k) for k in _key_texts(data, columns, pos)]
            groups: dict[tuple, list[int]] = {}
            for i, key in zip(sel, keys, strict=True):
                groups.setdefault(key, []).append(i)
            for key, members in groups.items():
                shown = ", ".join(f"{c} = {v}" for c, v in zip(columns, key, strict=True))
                for i in members:
                    others = sorted(
                        {int(rows_seen[j]) for j in members if j != i and rows_seen[j] is not None}
                    )
                    where = (
                        f"row{'s' if len(others) > 1 else ''} {', '.join(map(str, others))}"
                        if others
                        else "another record"
                    )
                    if family == "unique_keys":
                        notes[i] = (
                            f"{shown} appears more than once ({form.structure or 'one record per key'}): "
                            f"also in {where}; keep one record and correct or delete the other"
                        )
                    else:
                        notes[i] = f"{shown} must be unique but is also used in {where}"
                    notes[("value", i)] = " | ".join(str(v) for v in key)
    return notes


def _describe(form: Form, variable: str | None, family: str, check: str,
              subject_hint: str = "") -> tuple[str, str | None, _CheckKind]:
    """(message template with ``{value}``, expected, kind) for one variable and check family."""
    kind = _KINDS.get(family, _CheckKind(family.upper().replace("_", "-"), Category.RECORD))
    safe_check = _literal(check)
    meta: Variable | None = None
    if variable is not None:
        try:
            meta = form.variable(variable)
        except KeyError:
            meta = None
    name = variable or form.code
    if family == "not_nullable":
        return (f"{name} is required but empty: enter the value, or ND/NK/NA with the reason",
                "a value", kind)
    if family == "required":
        rule = (meta.required_if if meta is not None and meta.required_if else "required")
        return (f"{name} is {rule}, but empty: enter the value, or ND/NK/NA with the reason",
                rule, kind)
    if family == "isin":
        codelist = meta.codelist if meta is not None and meta.codelist else None
        codes = _allowed_codes(form, variable, check)
        shown = ", ".join(codes[:_CODELIST_SHOWN]) + (", …" if len(codes) > _CODELIST_SHOWN else "")
        label = f"codelist {codelist} ({shown})" if codelist else f"the allowed values ({shown})"
        return (f"{name} = '{{value}}' is not in {label}", f"one of {', '.join(codes)}", kind)
    if family in ("greater_than_or_equal_to", "less_than_or_equal_to", "greater_than", "less_than",
                  "in_range"):
        lo = _fmt(meta.min) if meta is not None and meta.min is not None else None
        hi = _fmt(meta.max) if meta is not None and meta.max is not None else None
        unit = f" {meta.unit}" if meta is not None and meta.unit else ""
        if lo is not None and hi is not None:
            allowed = f"{lo}–{hi}{unit}"
            return (f"{name} = {{value}} is outside {allowed}", allowed, kind)
        if lo is not None:
            return (f"{name} = {{value}} is below the minimum {lo}{unit}", f"≥ {lo}{unit}", kind)
        if hi is not None:
            return (f"{name} = {{value}} is above the maximum {hi}{unit}", f"≤ {hi}{unit}", kind)
        return (f"{name} = {{value}} fails {safe_check}", check, kind)
    if family == "max_decimals":
        places = meta.decimals if meta is not None and meta.decimals is not None else "?"
        return (f"{name} = {{value}} has more than {places} decimal(s)", f"at most {places} decimal(s)", kind)
    if family == "str_matches":
        if meta is not None and meta.pdate_formats:
            formats = ", ".join(meta.pdate_formats)
            return (f"{name} = '{{value}}' is not a date of the form {formats}", formats, kind)
        return (f"{name} = '{{value}}' does not match {safe_check}", check, kind)
    if family == "subject_id_format":
        hint = _literal(subject_hint or "the study's subject number")
        return (f"{name} = '{{value}}' is not a subject number of the form {hint}", subject_hint or None, kind)
    if family == "dtype":
        expected = meta.type if meta is not None else check
        return (f"{name} has the wrong type: {safe_check} expected", expected, kind)
    if family in ("unique_keys", "field_uniqueness"):
        return (f"{name} is duplicated", "unique", kind)
    return (f"{name} = {{value}} fails the check {safe_check}", check, kind)


def _allowed_codes(form: Form, variable: str | None, check: str) -> list[str]:
    if variable is not None and variable in form.schema.columns:
        for candidate in form.schema.columns[variable].checks:
            if candidate.name == "isin":
                return [str(c) for c in candidate.statistics.get("allowed_values", [])]
    found = re.findall(r"'([^']*)'", check)
    return found


def _fmt(number: float | int) -> str:
    return f"{number:g}"


def _literal(text: str) -> str:
    """Text safe inside a ``str.format`` template."""
    return text.replace("{", "{{").replace("}", "}}")


# ------------------------------------------------------------------------------------------------
# A whole upload


def validate(
    study: Study,
    import_result: ImportResult,
    *,
    site: str | None = None,
    data_cut: dt.date | None = None,
    today: dt.date | None = None,
    max_findings: int | None = None,
) -> Report:
    """Validate an import: importer findings, form checks of every form, then the study's rules.

    ``site`` restricts the run to one site: a record of another site in the upload becomes one
    error ("record belongs to site 03, not 01") and its data are left out of every other finding;
    when *no* record is the site's, one ``SITE-MISMATCH`` error says whose they are ("did you mean
    --site 03?") and nothing else is validated. Cells that another site's conventions explain
    (decimal comma, date order) become one ``SITE-CONVENTIONS`` finding (:mod:`trialkit.diagnose`);
    with dates read in the wrong order no rule runs (each is recorded as skipped, saying why).
    No form of the study recognised at all is a ``NO-FORM`` error, and no rule runs.
    ``data_cut`` defaults to the latest full date in the upload (synopsis, "Visits"). Findings are
    sorted by severity, form, subject, row and variable; ``max_findings`` keeps the first N and
    records how many were left out in ``Report.truncated``.

    Raises :class:`~trialkit.errors.UsageError` for a site the study does not have.
    """
    from trialkit.rules import run_rules

    if site is not None:
        try:
            site = study.site(site).id
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from exc
    order = {code: i for i, code in enumerate(study.forms)}
    forms = dict(sorted(import_result.forms.items(), key=lambda item: order.get(item[0], len(order))))

    findings: list[Finding] = []
    checks: list[CheckRun] = list(import_result.report.checks)
    imported = list(import_result.report.findings)
    mismatch = None

    if site is not None:
        forms, foreign = _split_site(study, forms, site)
        imported, moved = _foreign_findings(imported, site)
        imported = [f if f.site is not None else replace(f, site=site) for f in imported]
        own = sum(int(fd.data["SITEID"].astype(object).eq(site).sum()) for fd in forms.values()
                  if "SITEID" in fd.data.columns)
        others = foreign or [{"other": f.site, "form": f.form} for f in moved]
        mismatch = site_mismatch(site, others, own,
                                 [Path(i.path).name for i in import_result.report.inputs])
        if mismatch is None:
            findings.extend(_wrong_site_findings(foreign, moved, site))
        else:
            # The records are another site's: say so once, and validate nothing of them.
            findings.append(mismatch)
            imported = [f for f in imported if f.category in (Category.FILE, Category.STRUCTURE)
                        and f.severity != Severity.INFO]
            forms = {}
    imported = convention_findings(study, imported)
    findings.extend(imported)
    # Dates read in the wrong order are wrong dates, not missing ones: rules on them would list
    # consequences of the diagnosis (visits out of window, doses before consent), so none runs.
    misread = next((f for f in imported if f.code == SITE_CONVENTIONS and str(f.expected).startswith("date order")),
                   None)

    for form_data in forms.values():
        if form_data.form not in study.forms:
            continue
        form_findings, runs = validate_form(study, form_data)
        findings.extend(form_findings)
        checks.extend(runs)

    cut = data_cut or _latest_date(forms)
    if forms and misread is None:
        rule_findings, rule_runs = run_rules(study, forms, data_cut=cut, today=today, site=site)
    else:  # nothing to check: a rule must not look as if it passed
        why = (f"no record of site {site} in the upload" if mismatch is not None
               else "the upload's dates look typed in another site's date order (SITE-CONVENTIONS): the rules run "
                    "once the dates are right" if misread is not None
               else "no form of the study was recognised in the upload")
        rule_findings = []
        rule_runs = [CheckRun(id=r.id, title=r.title, status=Status.SKIPPED, reason=why, forms=list(r.forms),
                              severity=r.severity.value, category=r.category.value, reference=r.reference)
                     for r in study.rules]
        # An import error (an unreadable file, another study's export) already says why.
        explained = any(f.severity == Severity.ERROR for f in imported)
        if mismatch is None and misread is None and not explained:
            names = ", ".join(Path(i.path).name for i in import_result.report.inputs) or "the upload"
            unmatched = [f for f in imported if f.code == "IMP-NO-FORM"]
            if unmatched and all((f.evidence or {}).get("adam") for f in unmatched):
                remedy = ("it holds CDISC ADaM analysis datasets, which trialkit pool derives from the sites' "
                          "forms: send the site's CRF data instead (the upload workbook, or its system's export "
                          "of the forms)")
            else:
                remedy = ("name the sheets or files by their form (e.g. DM, VS), pass --form CODE, or send the "
                          "study's upload workbook (trialkit inspect FILE shows what was read)")
            findings.append(Finding(
                code=NO_FORM, severity=Severity.ERROR, category=Category.STRUCTURE, site=site,
                message=f"no form of the study was recognised in {names}: nothing was validated; {remedy}",
            ))
    rule_findings = _drop_rule_answered(rule_findings, forms)
    if site is not None:
        for finding in rule_findings:
            if finding.site is None and finding.file is not None:
                finding.site = site  # a record without SITEID in this site's own upload
    findings.extend(rule_findings)
    checks.extend(rule_runs)

    # Direct identifiers: privacy errors (so the ledger rejects the upload), and the identifier
    # masked in every finding that quotes it.
    from trialkit.privacy import identifier_findings, mask_identifiers

    privacy = identifier_findings(study, import_result)
    if site is not None:
        privacy = [replace(f, site=site) for f in privacy]
    # A column refused for its header is one finding: the importer's finding on its values goes.
    flagged = {(f.file, f.sheet, f.variable) for f in privacy if f.code == "PRIVACY-COLUMN"}
    findings = [f for f in findings if not (f.category == Category.PRIVACY and f.evidence and "column" in f.evidence
                                            and (f.file, f.sheet, f.evidence["column"]) in flagged)]
    findings = mask_identifiers(findings + privacy, privacy, secrets=getattr(import_result, "secrets", None))
    if getattr(import_result, "sources", None):  # a mapped cell's finding points at the site's own file
        from trialkit.importers.mapping import relocate

        relocate(findings, import_result.sources)

    findings.sort(key=_sort_key)
    report = Report(
        findings=findings,
        checks=checks,
        inputs=list(import_result.report.inputs),
        study_id=study.id,
        study_version=study.protocol_version,
        schema_hash=study.schema_hash,
        site=site,
        data_cut=cut.isoformat() if cut is not None else None,
    )
    return truncate(report, max_findings)


def truncate(report: Report, max_findings: int | None) -> Report:
    """Keep the first ``max_findings`` findings (in report order); count the rest in ``truncated``.

    Returns ``report`` itself when nothing is left out, else a copy.
    """
    if max_findings is None or max_findings < 0 or len(report.findings) <= max_findings:
        return report
    copy = replace(report, findings=report.findings[:max_findings])
    copy.truncated = report.truncated + len(report.findings) - max_findings
    return copy


def _sort_key(finding: Finding) -> tuple:
    return (
        _SEVERITY_ORDER.get(finding.severity, 9),
        finding.form or "",
        finding.subject or "",
        finding.row if finding.row is not None else -1,
        finding.variable or "",
        finding.code,
        finding.file or "",
        finding.sheet or "",
        finding.message,
    )


def _subset(form_data: FormData, mask: np.ndarray) -> FormData:
    from trialkit.importers.base import FormData as _FormData

    index = form_data.data.index[mask]
    changes = form_data.changes
    if len(changes) and "index" in changes.columns:
        changes = changes[changes["index"].isin(index)]
    return _FormData(
        form=form_data.form,
        data=form_data.data.loc[index],
        raw=_aligned(form_data.raw, form_data.data.index).loc[index],
        reasons=_aligned(form_data.reasons, form_data.data.index).loc[index],
        lineage=_aligned(form_data.lineage, form_data.data.index).loc[index],
        changes=changes,
        absent={name: flags[mask] for name, flags in form_data.absent.items()},
    )


def _split_site(
    study: Study, forms: Mapping[str, FormData], site: str
) -> tuple[dict[str, FormData], list[dict[str, Any]]]:
    """Keep the site's records; describe the others (form, file, sheet, row, their site)."""
    kept: dict[str, FormData] = {}
    foreign: list[dict[str, Any]] = []
    for code, form_data in forms.items():
        data = form_data.data
        if "SITEID" not in data.columns or not len(data):
            kept[code] = form_data
            continue
        site_ids = data["SITEID"].astype(object)
        other = (site_ids.notna() & site_ids.ne(site)).to_numpy(dtype=bool)
        if not other.any():
            kept[code] = form_data
            continue
        lineage = _aligned(form_data.lineage, data.index)
        for index in data.index[other]:
            foreign.append(
                {
                    "form": code,
                    "file": _text(lineage.at[index, "FILE"]) if "FILE" in lineage.columns else None,
                    "sheet": _text(lineage.at[index, "SHEET"]) if "SHEET" in lineage.columns else None,
                    "row": int(lineage.at[index, "ROW"]) if "ROW" in lineage.columns else None,
                    "other": _text(data.at[index, "SITEID"]),
                    "keys": [_text(data.at[index, k]) for k in study.form(code).keys if k in data.columns],
                }
            )
        kept[code] = _subset(form_data, ~other)
    return kept, foreign


def _foreign_findings(findings: list[Finding], site: str) -> tuple[list[Finding], list[Finding]]:
    """Split the importer's findings into this site's and those about another site's records."""
    own = [f for f in findings if f.site is None or f.site == site]
    other = [f for f in findings if f.site is not None and f.site != site]
    return own, other


def _wrong_site_findings(
    foreign: list[dict[str, Any]], moved: list[Finding], site: str
) -> list[Finding]:
    """One error per record of another site, without that record's data."""
    seen: set[tuple] = set()
    out: list[Finding] = []
    entries = foreign + [
        {"form": f.form, "file": f.file, "sheet": f.sheet, "row": f.row, "other": f.site,
         "keys": [f.subject, f.visit]}
        for f in moved
    ]
    for entry in entries:
        key = (entry["form"], entry["file"], entry["sheet"], entry["row"])
        if key in seen:
            continue
        seen.add(key)
        where = f"row {entry['row']}" if entry["row"] is not None else "a record"
        out.append(
            Finding(
                code=WRONG_SITE,
                severity=Severity.ERROR,
                category=Category.PRIVACY,
                message=(
                    f"{where} of {entry['form'] or 'the upload'}: record belongs to site "
                    f"{entry['other']}, not {site}; remove it from site {site}'s upload"
                ),
                site=site,
                form=entry["form"],
                variable="SITEID",
                expected=site,
                file=entry["file"],
                sheet=entry["sheet"],
                row=entry["row"],
                check="site",
                reference="Synopsis: Blinding and privacy",
                evidence={"other": entry["other"]},
                # the record's keys identify it across re-uploads (hashed: nothing of it is shown)
                query_id=query_id(WRONG_SITE, entry["other"], entry["form"], entry["keys"], "SITEID"),
            )
        )
    return out


def _latest_date(forms: Mapping[str, FormData]) -> dt.date | None:
    """The latest full date in the upload (the default data cut)."""
    latest: pd.Timestamp | None = None
    for form_data in forms.values():
        for column in form_data.data.columns:
            series = form_data.data[column]
            if pd.api.types.is_datetime64_any_dtype(series.dtype):
                top = series.max()
                if pd.notna(top) and (latest is None or top > latest):
                    latest = top
    return latest.date() if latest is not None else None


def _drop_rule_answered(findings: list[Finding], forms: Mapping[str, FormData]) -> list[Finding]:
    """A record/cross-form rule pointing at an empty cell the site answered with ND/NK/NA is not a
    finding: the missing-value code is the site's answer (rules see only typed data)."""
    candidates = [
        f for f in findings
        if f.category in (Category.RECORD, Category.CROSS_FORM) and f.value is None and f.variable
        and f.form in forms and f.row is not None
    ]
    if not candidates:
        return findings
    drop: set[int] = set()
    by_form: dict[str, list[Finding]] = {}
    for finding in candidates:
        by_form.setdefault(finding.form, []).append(finding)  # type: ignore[arg-type]
    for code, items in by_form.items():
        form_data = forms[code]
        lineage = _aligned(form_data.lineage, form_data.data.index)
        reasons = _aligned(form_data.reasons, form_data.data.index)
        where = {
            (_text(f), _text(s), int(r)): i
            for i, f, s, r in zip(lineage.index, lineage["FILE"], lineage["SHEET"], lineage["ROW"], strict=True)
        }
        for finding in items:
            index = where.get((finding.file, finding.sheet, finding.row))
            if index is None or finding.variable not in reasons.columns:
                continue
            if pd.notna(reasons.at[index, finding.variable]):
                drop.add(id(finding))
    return [f for f in findings if id(f) not in drop]
