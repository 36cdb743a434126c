"""Mapping specs: how a site system's own export becomes the study's forms, declared in TOML.

A study folder (and, optionally, a workspace) keeps a ``mappings/`` folder with one spec per site
system or export kind (``mappings/site08_vitals.toml`` is the spec ``site08_vitals``). A spec names
the form it fills and says, per CRF variable, where the value comes from::

    title = "Hospital EDC at site 08: vital signs, one row per measurement"
    form = "VS"
    ignore = ["ROWID"]                      # columns deliberately not imported (no finding)

    [recognise]                             # pick this spec when a table has all these columns
    columns = ["PATIENT", "VISITNAME", "TESTCODE", "RESULT"]

    [filter]                                # keep only rows whose column holds one of these values
    STATUS = ["FINAL"]

    [pivot]                                 # long to wide: one row per test -> one column per variable
    test = "TESTCODE"
    value = "RESULT"
    unit = "UNIT"                           # goes to the variable's unit variable (WEIGHTU ...)
    status = "STAT"                         # with [pivot.missing]: "NOT DONE" -> ND
    by = ["PATIENT", "VISITNAME"]           # default: the source columns of the form's keys
    missing = { "NOT DONE" = "ND" }
    tests = { WT = "WEIGHT", PULSE = { variable = "HR", units = ["beats/min"] } }

    [variables]
    SITEID = { constant = "08" }
    SUBJID = { column = "PATIENT" }
    VISIT = { column = "VISITNAME", recode = { "Baseline" = "D1" } }
    VSDAT = { column = "VISITDATE", date = "%m/%d/%Y" }

Per variable exactly one source: ``column`` (a name, or a list: the first that holds a value),
``constant`` or ``join`` (a date column and a time column into ``YYYY-MM-DDTHH:MM``). With a column:
``recode`` (source value -> CRF value, compared ignoring case and surrounding spaces), ``otherwise``
(the value for any other non-empty value), ``default`` (the value where the source is empty),
``date`` (``iso8601`` — ISO 8601
dates and date-times, partial dates kept as given — or a ``strftime`` pattern such as ``%d.%m.%Y``)
and ``part`` (``date`` or ``time`` of a date-time: a split).

Specs are validated when the study loads (:func:`load_mappings`): unknown keys are refused with a
did-you-mean, every target must be a variable of the form that a site types (not a derived one),
constants and recoded values of a codelist variable must be codes of its codelist (or a
missing-value code), and a date rule needs a date variable. Applying a spec is
:mod:`trialkit.importers.mapping`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trialkit.study.paths import StudyDefinitionError

MAPPINGS_FOLDER = "mappings"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ISO8601 = "iso8601"
_DIRECTIVES = set("aAbBdHImMpSyYjf%")


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JoinRule(_Part):
    """``join = { date = "VSDATE", time = "VSTIME" }``: a date and a time column into one text value."""

    date: str
    time: str


class VariableRule(_Part):
    """Where one CRF variable's value comes from (see the module docstring)."""

    column: str | list[str] | None = None
    constant: str | None = None
    join: JoinRule | None = None
    recode: dict[str, str] = {}
    otherwise: str | None = None
    default: str | None = None
    date: str | None = None
    part: Literal["date", "time"] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> VariableRule:
        sources = [name for name in ("column", "constant", "join") if getattr(self, name) not in (None, [])]
        if len(sources) != 1:
            raise ValueError("give exactly one of column, constant or join"
                             + (f" (found {', '.join(sources)})" if sources else ""))
        if self.column is None and (self.recode or self.otherwise is not None or self.default is not None
                                    or self.part or self.date):
            raise ValueError("recode, otherwise, default, date and part apply to a column")
        if self.date is not None and self.date != ISO8601:
            problem = date_pattern_problem(self.date)
            if problem:
                raise ValueError(problem)
        return self

    @property
    def columns(self) -> list[str]:
        """The source columns (several: the first that holds a value wins), [] for a constant."""
        if self.column is None:
            return [self.join.date, self.join.time] if self.join else []
        return [self.column] if isinstance(self.column, str) else list(self.column)


class PivotTest(_Part):
    """One test of a long table: the CRF variable it fills, optionally from another value column,
    and the units accepted for a variable that has no unit variable."""

    variable: str
    value: str | None = None
    units: list[str] = []


class PivotRule(_Part):
    """``[pivot]``: one row per test becomes one column per variable (see the module docstring)."""

    test: str
    value: str
    unit: str | None = None
    status: str | None = None
    by: list[str] = []
    missing: dict[str, str] = {}
    tests: dict[str, str | PivotTest] = Field(min_length=1)

    def test_rules(self) -> dict[str, PivotTest]:
        """Every test code with its rule (a bare variable name made a :class:`PivotTest`)."""
        return {code: PivotTest(variable=rule) if isinstance(rule, str) else rule for code, rule in self.tests.items()}


class Recognise(_Part):
    """``[recognise]``: the spec reads a table that has all these columns."""

    columns: list[str] = Field(min_length=1)


class SpecFile(_Part):
    """The content of one mapping spec file."""

    title: str = ""
    description: str = ""
    form: str
    #: The SDTM domain this spec reads (the study's SDTM map: STUDYID/DOMAIN/USUBJID files).
    sdtm_domain: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    recognise: Recognise | None = None
    ignore: list[str] = []
    filter: dict[str, list[str]] = {}
    pivot: PivotRule | None = None
    variables: dict[str, VariableRule] = {}


@dataclass(frozen=True)
class MappingSpec:
    """A loaded, validated mapping spec: its name (the file stem), file, sha256 and content."""

    name: str
    path: Path
    sha256: str
    spec: SpecFile
    origin: str = "study"  # "study" (the study folder) or "workspace"

    @property
    def form(self) -> str:
        """The form the spec fills."""
        return self.spec.form

    @property
    def title(self) -> str:
        """The spec's title (its name when it has none)."""
        return self.spec.title or self.name

    @property
    def sdtm_domain(self) -> str | None:
        """The SDTM domain the spec reads, when it is part of the study's SDTM map."""
        return self.spec.sdtm_domain

    def source_columns(self) -> set[str]:
        """Every source column the spec names (variables, pivot, filter, ignore)."""
        names: set[str] = set(self.spec.ignore) | set(self.spec.filter)
        for rule in self.spec.variables.values():
            names.update(rule.columns)
        pivot = self.spec.pivot
        if pivot is not None:
            names.update(n for n in (pivot.test, pivot.value, pivot.unit, pivot.status) if n)
            names.update(pivot.by)
            names.update(t.value for t in pivot.test_rules().values() if t.value)
        return names

    def rows(self) -> list[dict[str, str]]:
        """One row per target variable: what fills it (for the data dictionary and ``map check``)."""
        out = []
        for variable, rule in self.spec.variables.items():
            if rule.constant is not None:
                source, how = "", f"constant {rule.constant!r}"
            elif rule.join is not None:
                source, how = f"{rule.join.date} + {rule.join.time}", "join date and time"
            else:
                source = " or ".join(rule.columns)
                parts = []
                if rule.recode:
                    parts.append("recode " + ", ".join(f"{k} -> {v}" for k, v in rule.recode.items()))
                if rule.otherwise is not None:
                    parts.append(f"otherwise {rule.otherwise!r}")
                if rule.default is not None:
                    parts.append(f"empty -> {rule.default!r}")
                if rule.date:
                    parts.append(f"date {rule.date}")
                if rule.part:
                    parts.append(f"{rule.part} part")
                how = "; ".join(parts) or "rename"
            out.append({"mapping": self.name, "form": self.form, "variable": variable, "source": source,
                        "rule": how})
        pivot = self.spec.pivot
        if pivot is not None:
            for code, test in pivot.test_rules().items():
                how = f"pivot: {pivot.test} = {code!r}"
                if test.units:
                    how += f"; units {', '.join(test.units)}"
                out.append({"mapping": self.name, "form": self.form, "variable": test.variable,
                            "source": test.value or pivot.value, "rule": how})
        return out


def date_pattern_problem(pattern: str) -> str | None:
    """Why a ``strftime`` date pattern cannot read dates, or None (``%d.%m.%Y`` is fine)."""
    directives = re.findall(r"%(.)", pattern)
    if not directives:
        return f"date {pattern!r} is neither 'iso8601' nor a pattern such as '%d.%m.%Y'"
    unknown = sorted({d for d in directives if d not in _DIRECTIVES})
    if unknown:
        return f"date {pattern!r}: unknown directive(s) {', '.join('%' + d for d in unknown)}"
    if not {"Y", "y"} & set(directives):
        return f"date {pattern!r} has no year (%Y)"
    try:
        dt.datetime(2024, 3, 5, 10, 30).strftime(pattern)
    except ValueError as exc:  # pragma: no cover - strftime accepts nearly anything
        return f"date {pattern!r}: {exc}"
    return None


# ------------------------------------------------------------------------------------------------
# Loading


def spec_files(folder: Path) -> list[Path]:
    """The ``*.toml`` spec files of a mappings folder, sorted (none when it does not exist)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".toml"
                  and not p.name.startswith("."))


def read_spec(path: Path, *, origin: str = "study") -> tuple[MappingSpec | None, list[str]]:
    """Read one spec file: ``(spec, [])`` or ``(None, problems)`` (shape only; see :func:`check_spec`)."""
    name = path.stem
    if not NAME_PATTERN.match(name):
        return None, [f"{path}: a mapping's file name is its name: letters, digits, '_', '-' and '.' only"]
    try:
        data = path.read_bytes()
        raw = tomllib.loads(data.decode("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return None, [f"{path}: cannot be read ({exc})"]
    except tomllib.TOMLDecodeError as exc:
        return None, [f"{path}: not valid TOML: {exc}"]
    try:
        spec = SpecFile.model_validate(raw)
    except ValidationError as exc:
        return None, [f"{path}: {_describe(error)}" for error in exc.errors()]
    return MappingSpec(name=name, path=path, sha256=hashlib.sha256(data).hexdigest(), spec=spec,
                       origin=origin), []


def check_spec(mapping: MappingSpec, forms: Mapping[str, Any], codelists: Mapping[str, Any],
               missing_codes: Iterable[str]) -> list[str]:
    """What is wrong with a spec against the study's forms, one line each (empty: usable)."""
    spec = mapping.spec
    where = str(mapping.path)
    if spec.form not in forms:
        close = difflib.get_close_matches(spec.form, list(forms), n=1)
        return [f"{where}: form {spec.form!r} is not a form of the study"
                + (f"; did you mean {close[0]!r}?" if close else f" (forms: {', '.join(forms)})")]
    form = forms[spec.form]
    by_name = {v.name: v for v in form.variables}
    codes = {str(c).upper() for c in missing_codes}
    problems: list[str] = []

    def target(name: str, place: str) -> Any:
        variable = by_name.get(name)
        if variable is None:
            close = difflib.get_close_matches(name, list(by_name), n=1)
            problems.append(f"{where}: {place}: {name!r} is not a variable of form {form.code}"
                            + (f"; did you mean {close[0]!r}?" if close else ""))
            return None
        if variable.derived:
            problems.append(f"{where}: {place}: {name} is derived by trialkit on import; remove it from the spec")
            return None
        return variable

    def value_ok(variable: Any, value: str, place: str) -> None:
        allowed = _allowed_values(variable, codelists)
        if allowed is None or str(value).strip().upper() in codes:
            return
        if str(value).strip().casefold() not in allowed:
            shown = ", ".join(sorted(allowed_codes(variable, codelists))[:12])
            problems.append(f"{where}: {place}: {value!r} is not a code of {variable.name} ({shown}, or a "
                            f"missing-value code {', '.join(sorted(codes))})")

    pivoted: set[str] = set()
    if spec.pivot is not None:
        for code, test in spec.pivot.test_rules().items():
            variable = target(test.variable, f"[pivot.tests] {code!r}")
            if variable is None:
                continue
            if test.variable in pivoted:
                problems.append(f"{where}: [pivot.tests] {code!r}: a second test for {test.variable}")
            pivoted.add(test.variable)
            if test.units and variable.unit_var:
                problems.append(f"{where}: [pivot.tests] {code!r}: {test.variable} has the unit variable "
                                f"{variable.unit_var}, which receives the unit; remove 'units'")
        for source, value in spec.pivot.missing.items():
            if str(value).upper() not in codes:
                problems.append(f"{where}: [pivot.missing] {source!r} = {value!r}: not a missing-value code "
                                f"({', '.join(sorted(codes))})")
        if not spec.pivot.by and not _default_by(spec, form):
            problems.append(f"{where}: [pivot] needs 'by' (the columns that identify one record) or column "
                            f"rules for the keys of {form.code} ({', '.join(form.keys)})")
    for name, rule in spec.variables.items():
        place = f"[variables.{name}]"
        variable = target(name, place)
        if variable is None:
            continue
        if name in pivoted:
            problems.append(f"{where}: {place}: {name} is also filled by [pivot.tests]; keep one")
        if rule.constant is not None:
            value_ok(variable, rule.constant, f"{place} constant")
        for source, value in rule.recode.items():
            value_ok(variable, value, f"{place} recode {source!r}")
        for key in ("otherwise", "default"):
            if getattr(rule, key) is not None:
                value_ok(variable, getattr(rule, key), f"{place} {key}")
        if variable.birth and len(rule.columns) > 1:
            problems.append(f"{where}: {place}: {name} is part of a date of birth: read it from one column, so "
                            "that every value sent is checked for a full date")
        if rule.date and variable.type not in ("date", "pdate"):
            problems.append(f"{where}: {place}: 'date' reads dates, but {name} is a {variable.type} variable")
        if rule.part == "time" and variable.type != "char":
            problems.append(f"{where}: {place}: part = 'time' gives text, but {name} is a {variable.type} variable")
        if rule.join is not None and variable.type != "char":
            problems.append(f"{where}: {place}: join gives date-time text, but {name} is a {variable.type} "
                            "variable (use column with part = 'date')")
    if not spec.variables and spec.pivot is None:
        problems.append(f"{where}: the spec maps nothing; add [variables] (or a [pivot])")
    return problems


def _default_by(spec: SpecFile, form: Any) -> list[str]:
    """The source columns of the form's key variables (for a pivot without ``by``)."""
    pivoted = {t.variable for t in spec.pivot.test_rules().values()} if spec.pivot else set()
    columns: list[str] = []
    for key in form.keys:
        rule = spec.variables.get(key)
        if key in pivoted or rule is None or rule.column is None:
            continue
        columns.extend(rule.columns)
    return columns


def pivot_by(mapping: MappingSpec, form: Any) -> list[str]:
    """The source columns that identify one wide record of a pivot (``by``, or the keys' columns)."""
    assert mapping.spec.pivot is not None
    return list(mapping.spec.pivot.by) or _default_by(mapping.spec, form)


def allowed_codes(variable: Any, codelists: Mapping[str, Any]) -> list[str]:
    """The codes a variable takes (Y/N for yn, its codelist's codes), [] when any value goes."""
    if variable.type == "yn":
        return ["Y", "N"]
    if variable.codelist and variable.codelist in codelists:
        return list(codelists[variable.codelist].codes)
    return []


def _allowed_values(variable: Any, codelists: Mapping[str, Any]) -> set[str] | None:
    """Case-folded codes and synonyms a constant or recode may give, or None (any value)."""
    if variable.type == "yn" and not variable.codelist:
        return {"y", "n"}
    if variable.codelist and variable.codelist in codelists:
        codelist = codelists[variable.codelist]
        return {c.casefold() for c in codelist.codes} | set(codelist.synonyms)
    return None


def load_mappings(folder: Path, forms: Mapping[str, Any], codelists: Mapping[str, Any],
                  missing_codes: Iterable[str], *, origin: str = "study") -> dict[str, MappingSpec]:
    """Every spec of a ``mappings/`` folder, validated; raises :class:`StudyDefinitionError` listing
    every problem of every file (with the file, the key and the fix)."""
    found: dict[str, MappingSpec] = {}
    problems: list[str] = []
    missing_codes = list(missing_codes)
    for path in spec_files(folder):
        mapping, shape = read_spec(path, origin=origin)
        problems.extend(shape)
        if mapping is None:
            continue
        checked = check_spec(mapping, forms, codelists, missing_codes)
        problems.extend(checked)
        if not checked:
            found[mapping.name] = mapping
    by_domain: dict[str, list[str]] = {}
    for mapping in found.values():
        if mapping.sdtm_domain:
            by_domain.setdefault(mapping.sdtm_domain, []).append(mapping.name)
    for domain, names in sorted(by_domain.items()):
        if len(names) > 1:
            problems.append(f"{folder}: SDTM domain {domain} is read by several specs ({', '.join(names)}); "
                            "keep one")
    if problems:
        raise StudyDefinitionError("\n".join(problems), problems)
    return found


def merge_mappings(study_specs: Mapping[str, MappingSpec], extra: Mapping[str, MappingSpec]) -> dict[str, MappingSpec]:
    """The study's specs and a workspace's; a name in both is refused (one source per name)."""
    clash = sorted(set(study_specs) & set(extra))
    if clash:
        lines = [f"{extra[name].path}: mapping {name!r} is also defined by the study ({study_specs[name].path}); "
                 "rename one of them" for name in clash]
        raise StudyDefinitionError("\n".join(lines), lines)
    return {**study_specs, **extra}


def _describe(error: Mapping[str, Any]) -> str:
    loc = tuple(error.get("loc", ()))
    where = _where(loc[:-1]) if error.get("type") in ("extra_forbidden", "missing") else _where(loc)
    if error.get("type") == "extra_forbidden":
        key = str(loc[-1])
        allowed = _allowed_keys(loc[:-1])
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"allowed: {', '.join(allowed)}"
        return f"{where}: unknown key '{key}'; {hint}"
    if error.get("type") == "missing":
        return f"{where}: '{loc[-1]}' is missing; add it"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    value = error.get("input")
    shown = "" if isinstance(value, dict | list) or value is None else f" (found {value!r})"
    return f"{where}: {message}{shown}"


def _where(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if not isinstance(p, int)]
    # pydantic names the member of a union it tried (``str``, ``PivotTest``): not a key of the file
    parts = [p for p in parts if p not in ("str", "list[str]", "PivotTest", "function-after[_one_source()]")]
    if not parts:
        return "top level"
    if parts[0] in ("variables", "filter") and len(parts) > 1:
        return f"[{parts[0]}.{parts[1]}]" + ("" if len(parts) == 2 else " " + ".".join(parts[2:]))
    if parts[0] == "pivot" and len(parts) > 2 and parts[1] in ("tests", "missing"):
        return f"[pivot.{parts[1]}] {parts[2]!r}" + ("" if len(parts) == 3 else " " + ".".join(parts[3:]))
    return f"[{parts[0]}]" + ("" if len(parts) == 1 else " " + ".".join(parts[1:]))


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    parts = [str(p) for p in loc if not isinstance(p, int)]
    parts = [p for p in parts if p not in ("str", "list[str]", "function-after[_one_source()]")]
    if not parts:
        return list(SpecFile.model_fields)
    if parts[0] == "variables":
        return list(JoinRule.model_fields) if parts[-1] == "join" else list(VariableRule.model_fields)
    if parts[0] == "pivot":
        return list(PivotTest.model_fields) if "tests" in parts or "PivotTest" in parts else list(PivotRule.model_fields)
    if parts[0] == "recognise":
        return list(Recognise.model_fields)
    return list(SpecFile.model_fields)


def available_mappings(study: Any, workspace: str | Path | None = None) -> dict[str, MappingSpec]:
    """The study's specs and, when ``workspace`` is given, those of its ``mappings/`` folder (validated
    against the study like the study's own; a name in both is refused)."""
    if workspace is None:
        return dict(study.mappings)
    folder = Path(workspace) / MAPPINGS_FOLDER
    extra = load_mappings(folder, study.forms, study.codelists, study.missing_codes, origin="workspace")
    return merge_mappings(study.mappings, extra)
