"""The rule engine: data checks and protocol deviations that a schema should not hold.

A *rule* is a function in the study definition (``checks.py``, ``deviations.py``) decorated with
:func:`rule`, which gives it an id, a title, a severity, a category, a protocol reference, the forms it
reads and a message template. The function receives a :class:`RuleContext` and returns the offending
rows as a DataFrame (empty when the rule passes). Recognised columns of the returned frame:

==================  ==============================================================================
``SUBJID``          the subject (required)
``_form``           the form whose record the finding points at (default: the rule's first form)
``_index``          that record's index in the form's frame, for file/sheet/row and the typed value
``VISIT``           the visit, when there is one
``_variable``       the variable the site must look at
``_value``          the offending value (else the typed value of ``_variable`` is used)
``_severity``       overrides the rule's severity for this row (e.g. a deviation that is major at one visit)
``_class``          overrides the deviation class (``major`` / ``minor``)
``_keys``           values that identify the problem for the stable query id (default: SUBJID,
                    VISIT, variable and the record's form keys)
any other column    evidence: shown in the message (``{COLUMN}`` in the template) and kept in
                    ``Finding.evidence``
==================  ==============================================================================

:func:`run_rules` runs every rule, records each one's outcome as a :class:`~trialkit.findings.CheckRun`
(passed, failed with a count, skipped with the reason — a form it needs was not uploaded, or the rule
raised :class:`RuleCannotRun` — or error, in words, with the exception text kept in
``CheckRun.detail``) and goes on after a failure.
"""

from __future__ import annotations

import datetime as dt
import numbers
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from trialkit.findings import Category, CheckRun, Finding, Severity, Status, query_id
from trialkit.numformat import format_number

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from trialkit.importers.base import FormData
    from trialkit.study import Study

RESERVED = {"SUBJID", "_form", "_index", "VISIT", "_variable", "_value", "_severity", "_class", "_keys"}


class RuleCannotRun(Exception):
    """Raised by a rule when the data does not let it run; the message says why in words a data
    manager reads (``raise RuleCannotRun("no informed-consent date (ICDAT) in DM")``). The rule is
    recorded as skipped with "<id> could not run: <message>"."""


@dataclass(frozen=True)
class Rule:
    """A data check or protocol-deviation rule (see the module docstring)."""

    id: str
    title: str
    severity: Severity
    category: Category
    reference: str
    forms: tuple[str, ...]
    message: str
    func: Callable[[RuleContext], pd.DataFrame] = field(repr=False)
    optional_forms: tuple[str, ...] = ()
    deviation_class: str | None = None

    def __call__(self, context: RuleContext) -> pd.DataFrame:
        return self.func(context)


def rule(
    id: str,
    title: str,
    *,
    severity: str | Severity,
    category: str | Category,
    reference: str,
    forms: Iterable[str],
    message: str,
    optional_forms: Iterable[str] = (),
    deviation_class: str | None = None,
) -> Callable[[Callable[[RuleContext], pd.DataFrame]], Rule]:
    """Declare a rule. ``forms`` must all be uploaded for it to run (else it is skipped);
    ``optional_forms`` are used when present.

    Example::

        @rule("DC-AESER", "Serious AE without a seriousness criterion", severity="error",
              category="record", reference="Synopsis: AE form", forms=["AE"],
              message="AESER = Y but no seriousness criterion is Y")
        def aeser_without_criterion(ctx):
            ae = ctx.form("AE")
            return ae[ae.AESER.eq("Y") & ...]
    """

    def decorate(func: Callable[[RuleContext], pd.DataFrame]) -> Rule:
        return Rule(
            id=id,
            title=title,
            severity=Severity(severity),
            category=Category(category),
            reference=reference,
            forms=tuple(forms),
            message=message,
            func=func,
            optional_forms=tuple(optional_forms),
            deviation_class=deviation_class,
        )

    return decorate


@dataclass
class RuleContext:
    """What a rule sees: the study, the typed form frames, the data cut and today's date.

    ``forms[code]`` is the form's typed data frame (``FormData.data``); its index is the record
    index to return in ``_index``.
    """

    study: Study
    forms: Mapping[str, pd.DataFrame]
    data_cut: dt.date | None = None
    today: dt.date = field(default_factory=dt.date.today)
    site: str | None = None
    cache: dict[str, Any] = field(default_factory=dict)

    def form(self, code: str) -> pd.DataFrame:
        """The typed frame of a form; an empty frame with the form's columns when not uploaded."""
        if code in self.forms:
            return self.forms[code]
        import pandas as pd

        return pd.DataFrame(columns=self.study.form(code).variable_names)

    def has(self, code: str) -> bool:
        """True when the form was uploaded (even with zero records)."""
        return code in self.forms

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """Compute a value once per run and share it between rules (e.g. first-dose dates)."""
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    def rows(self, code: str, **equal: Any) -> pd.Index:
        """The index labels of form ``code``'s records whose columns equal the given values, in the
        frame's order: ``ctx.rows("EXAM", SUBJID=subject, VISIT="V2")`` selects what
        ``exam[(exam.SUBJID == subject) & exam.VISIT.eq("V2")]`` does (a missing value equals
        nothing), from a grouping of the form by those columns made once per run and shared by every
        rule — a per-subject loop then costs a dictionary look-up, not a scan of the form.

        >>> import pandas as pd
        >>> from types import SimpleNamespace
        >>> ctx = RuleContext(study=SimpleNamespace(), forms={"EXAM": pd.DataFrame(
        ...     {"SUBJID": ["01-001", "01-002", "01-001", None], "VISIT": ["V1", "V1", "V2", "V2"]})})
        >>> list(ctx.rows("EXAM", SUBJID="01-001")), list(ctx.rows("EXAM", SUBJID="01-001", VISIT="V2"))
        ([0, 2], [2])
        >>> list(ctx.rows("EXAM", SUBJID="01-003")), list(ctx.rows("EXAM", SUBJID=None))
        ([], [])
        """
        columns = tuple(sorted(equal))
        if not columns:
            raise TypeError("rows() needs at least one column=value")
        frame = self.form(code)
        groups = self.memo(f"rules:rows:{code}:{','.join(columns)}", lambda: _groups(frame, columns))
        value = tuple(equal[c] for c in columns)
        try:
            positions = groups.get(value if len(columns) > 1 else value[0])
        except TypeError:  # an unhashable value equals no cell
            positions = None
        return frame.index[positions] if positions is not None else frame.index[:0]


def _groups(frame: pd.DataFrame, columns: tuple[str, ...]) -> dict[Any, Any]:
    """``{value (a tuple for several columns): row positions}`` of the rows with no missing key."""
    if frame.empty:
        return {}
    keys = list(columns) if len(columns) > 1 else columns[0]
    return frame.groupby(keys, sort=False, dropna=True, observed=True).indices


def run_rules(
    study: Study,
    forms: Mapping[str, FormData],
    *,
    data_cut: dt.date | None = None,
    today: dt.date | None = None,
    site: str | None = None,
    rules: Iterable[Rule] | None = None,
) -> tuple[list[Finding], list[CheckRun]]:
    """Run every rule of the study on imported forms; return findings and one CheckRun per rule."""
    context = RuleContext(
        study=study,
        forms={code: fd.data for code, fd in forms.items()},
        data_cut=data_cut,
        today=today or dt.date.today(),
        site=site,
    )
    findings: list[Finding] = []
    runs: list[CheckRun] = []
    for current in rules if rules is not None else study.rules:
        base = dict(
            id=current.id,
            title=current.title,
            forms=list(current.forms),
            severity=current.severity.value,
            category=current.category.value,
            reference=current.reference,
        )
        missing = [code for code in current.forms if code not in forms]
        if missing:
            runs.append(
                CheckRun(**base, status=Status.SKIPPED, reason=f"form(s) not uploaded: {', '.join(missing)}")
            )
            continue
        try:
            offending = current(context)
            produced = list(_to_findings(current, offending, forms, study))
        except RuleCannotRun as exc:  # the data does not allow the rule: say why, in words
            runs.append(CheckRun(**base, status=Status.SKIPPED, reason=f"{current.id} could not run: {exc}"))
            continue
        except Exception as exc:  # a broken rule must not stop the run, nor look like a pass
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            runs.append(CheckRun(**base, status=Status.ERROR, detail=detail, reason=(
                f"{current.id} could not run: the rule failed on this data, so the problems it looks for "
                "are not listed (the other checks ran); send the upload to the trialkit team")))
            continue
        findings.extend(produced)
        status = Status.FAILED if produced else Status.PASSED
        runs.append(CheckRun(**base, status=status, count=len(produced)))
    return findings, runs


class _Defaulting(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    try:
        if value != value:  # NaN / NaT
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "isoformat") and hasattr(value, "hour"):  # pandas Timestamp
        return value.date().isoformat() if value.hour == value.minute == value.second == 0 else value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _message_text(value: Any) -> str:
    """A value as a message shows it: a computed number rounded as a person writes it (``30.2``, see
    :func:`trialkit.numformat.format_number`), a missing one as ``missing``; the evidence keeps it exact."""
    text = _text(value)
    if text is None:
        return "missing"
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return format_number(value)
    return text


def _to_findings(
    current: Rule, offending: pd.DataFrame | None, forms: Mapping[str, FormData], study: Study
) -> Iterable[Finding]:
    if offending is None or len(offending) == 0:
        return
    if "SUBJID" not in offending.columns:
        raise ValueError(f"rule {current.id} returned rows without a SUBJID column")
    for _, row in offending.iterrows():
        values = {k: row[k] for k in offending.columns}
        form_code = _text(values.get("_form")) or current.forms[0]
        index = values.get("_index")
        variable = _text(values.get("_variable"))
        location: dict[str, Any] = {}
        typed_value = None
        form_data = forms.get(form_code)
        has_index = index is not None and _text(index) is not None
        if form_data is not None and has_index and index in form_data.lineage.index:
            location = form_data.location(index)
            if variable and variable in form_data.raw.columns:
                typed_value = form_data.raw.at[index, variable]
        value = _text(values.get("_value")) if "_value" in values else None
        if value is None and typed_value not in (None, ""):
            value = str(typed_value)
        evidence = {k: _text(v) for k, v in values.items() if k not in RESERVED}
        fill = _Defaulting({k: _message_text(v) for k, v in values.items()})
        fill.setdefault("VARIABLE", variable or "")
        fill.setdefault("VALUE", value or "missing")
        message = current.message.format_map(fill)
        severity = _text(values.get("_severity")) or current.severity.value
        subject = _text(values.get("SUBJID"))
        visit = _text(values.get("VISIT"))
        keys = values.get("_keys")
        if keys is None or (isinstance(keys, float) and keys != keys):
            keys = [visit]
            if form_data is not None and has_index and index in form_data.data.index:
                form = study.forms.get(form_code)
                if form is not None:
                    keys = [_text(form_data.data.at[index, k]) for k in form.keys]
        elif isinstance(keys, str):
            keys = [keys]
        site = study.subject_site(subject)
        if form_data is not None and has_index and "SITEID" in form_data.data.columns:
            site = _text(form_data.data.at[index, "SITEID"]) or site
        yield Finding(
            code=current.id,
            severity=Severity(severity),
            category=current.category,
            message=message,
            site=site,
            subject=subject,
            form=form_code,
            visit=visit,
            variable=variable,
            value=value,
            check=current.title,
            reference=current.reference,
            deviation_class=_text(values.get("_class")) or current.deviation_class,
            evidence=evidence or None,
            query_id=query_id(current.id, subject, form_code, list(keys), variable),
            **location,
        )
