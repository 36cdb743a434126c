"""The typed study definition: the generic sections of ``study.toml``, validated at load.

:func:`read_definition` parses ``study.toml`` and validates every generic section with pydantic —
``[study]``, ``[[amendments]]``, ``[plugins]``, ``[[sites]]``, ``[[visits]]``, ``[[arms]]``,
``[schedule]``, ``[missing_codes]``, ``[units.*]``, ``[lab_units.*]``, ``[codelists.*]``,
``[templates]``, ``[odm]`` and ``[redcap]``. A key the engine does not know is refused with the file, the key and the fix (a
did-you-mean, or where the key belongs), so a typo never silently becomes a default.

``[protocol]`` is the study's own section (dose, washouts, drug classes, thresholds …): the engine
does not read it. The study's ``protocol`` plug-in validates it (see :mod:`trialkit.study.plugins`).

One source per fact: the ``SITEID`` and ``VISIT`` codelists are generated from the site and visit
tables (a declared ``[codelists.SITEID]`` or ``[codelists.VISIT]`` is refused).
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from trialkit.i18n import DEFAULT_LANGUAGE, LANGUAGES
from trialkit.study.paths import STUDY_FILE, StudyDefinitionError

SITE_CODELIST = "SITEID"
VISIT_CODELIST = "VISIT"
GENERATED_CODELISTS = (SITE_CODELIST, VISIT_CODELIST)
#: A site id must be a plain id: it becomes part of file and folder names.
SITE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"


@dataclass(frozen=True)
class Codelist:
    """A controlled list of codes: ``values`` is ``[(code, decode), ...]``; ``synonyms`` maps what
    sites type (case-folded, trimmed) to a code."""

    name: str
    label: str
    values: tuple[tuple[str, str], ...]
    synonyms: Mapping[str, str] = field(default_factory=dict)

    @property
    def codes(self) -> list[str]:
        """The codes, in their defined order."""
        return [code for code, _ in self.values]

    def decode(self, code: str) -> str | None:
        """The decode of ``code``, or None when it is not in the list."""
        return dict(self.values).get(code)


# ------------------------------------------------------------------------------------------------
# The sections


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _exact_number(value: Any) -> str:
    text = str(value).strip()
    try:
        Fraction(text)
    except (ValueError, ZeroDivisionError) as exc:
        raise ValueError(f"{value!r} is not a number (write it as text, e.g. \"0.45359237\" or \"5/9\")") from exc
    return text


class StudySection(_Section):
    """``[study]``: what the trial is and how its subjects are numbered."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    title: str = ""
    protocol_version: str = Field(min_length=1)
    sponsor: str = ""
    contact: str = ""
    #: A regular expression every SUBJID must match in full; a named group ``site`` (e.g.
    #: ``^(?P<site>\d{2})-\d{3}$``) says which part is the site id.
    subject_id_pattern: str | None = None
    #: How the subject number is written, in words, for messages (e.g. ``SS-NNN, e.g. 03-012``).
    subject_id_hint: str = ""

    @field_validator("subject_id_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression ({exc})") from exc
        return value


class Amendment(_Section):
    """``[[amendments]]``: one protocol version and when it took effect."""

    version: str
    effective: date | None = None
    summary: str = ""


class Plugins(_Section):
    """``[plugins]``: the study's own code, as files or folders inside the study folder."""

    forms: str = "forms.py"
    rules: list[str] = []
    protocol: str | None = None
    analysis: str | None = None
    demo: str | None = None
    report: str | None = None

    @model_validator(mode="after")
    def _inside(self) -> Plugins:
        for name in (self.forms, *self.rules, self.protocol, self.analysis, self.demo, self.report):
            if name is None:
                continue
            parts = Path(name).parts
            if not parts or Path(name).is_absolute() or ".." in parts or len(parts) != 1:
                raise ValueError(f"{name!r}: a plug-in is a file or folder directly inside the study folder")
        return self


class SiteDef(_Section):
    """``[[sites]]``: a site and how it types dates, decimals and units."""

    id: str = Field(pattern=SITE_ID_PATTERN)
    city: str
    country: str
    date_order: Literal["DMY", "MDY", "YMD"]
    date_sep: str = Field(default="/", max_length=1)
    decimal_mark: Literal[",", "."]
    units: list[str] = ["SI"]
    #: The language of the site's workbooks (template and query workbook): one of
    #: :data:`trialkit.i18n.LANGUAGES`; the study's ``translations/`` folder gives its words.
    language: str = DEFAULT_LANGUAGE
    #: Mapping specs (``mappings/NAME.toml``) that read this site's own exports, tried in order
    #: for a table that matches no form by name (see :mod:`trialkit.study.mappings`).
    mappings: list[str] = []

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        if value not in LANGUAGES:
            close = difflib.get_close_matches(value, LANGUAGES, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"unknown language; {hint}use one of {', '.join(LANGUAGES)}")
        return value


class VisitDef(_Section):
    """``[[visits]]``: a visit with its target day and window (study days, day 1 = the anchor)."""

    num: int
    code: str = Field(pattern=r"^[A-Za-z0-9_]+$")
    label: str
    #: The short decode shown in the VISIT codelist (default: the label).
    decode: str | None = None
    anchor: Literal["first_dose", "last_dose", "none"] = "first_dose"
    target_day: int | None = None
    window_lo: int | None = None
    window_hi: int | None = None
    scheduled: bool = True
    primary: bool = False
    #: What sites type for this visit besides its code and decode (e.g. ``["day 1", "day1"]``).
    synonyms: list[str] = []

    @model_validator(mode="after")
    def _window(self) -> VisitDef:
        if self.anchor == "none":
            return self
        if self.window_lo is not None and self.window_hi is not None and self.window_lo > self.window_hi:
            raise ValueError(f"visit {self.code}: window_lo {self.window_lo} is after window_hi {self.window_hi}")
        if self.target_day is not None and self.window_lo is not None and self.window_hi is not None \
                and not self.window_lo <= self.target_day <= self.window_hi:
            raise ValueError(f"visit {self.code}: target_day {self.target_day} is outside its window "
                             f"{self.window_lo}..{self.window_hi}")
        return self


class ArmDef(_Section):
    """``[[arms]]``: a treatment arm, as the unblinded randomization list names it."""

    code: str = Field(pattern=r"^[A-Za-z0-9_ +-]+$")
    label: str


class CodelistDef(_Section):
    """``[codelists.NAME]``: ``values`` (code, decode pairs) or ``codes`` (decode = code)."""

    label: str = ""
    values: list[tuple[str, str]] = []
    codes: list[str] = []
    synonyms: dict[str, list[str]] = {}

    @model_validator(mode="after")
    def _one_list(self) -> CodelistDef:
        if bool(self.values) == bool(self.codes):
            raise ValueError("give either values = [[code, decode], ...] or codes = [...], not both or neither")
        known = {str(c) for c, _ in self.values} | set(self.codes)
        unknown = sorted(set(self.synonyms) - known)
        if unknown:
            raise ValueError(f"synonyms for codes that are not in the list: {', '.join(unknown)}")
        return self


class Conversion(_Section):
    """An alternative unit: standard = (value - subtract) * multiply / divide."""

    unit: str
    multiply: str | None = None
    divide: str | None = None
    subtract: str | None = None
    systems: list[str] = []

    @field_validator("multiply", "divide", "subtract", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        return None if value is None else _exact_number(value)


class UnitDef(_Section):
    """``[units.VAR]``: a measured variable's standard unit, its unit variable and alternatives."""

    unit_var: str
    standard: str
    alternatives: list[Conversion] = []
    aliases: dict[str, list[str]] = {}


class LabUnitDef(_Section):
    """``[lab_units.TEST]``: a laboratory test's standard unit and accepted alternatives."""

    standard: str
    alternatives: list[Conversion] = []
    aliases: dict[str, list[str]] = {}


class OdmDef(_Section):
    """``[odm]``: the OIDs of the study in CDISC ODM 1.3.2 (exchange with other EDC systems).

    Without it every OID is derived from the codes: ``SE.<VISIT>``, ``F.<FORM>``, ``IG.<FORM>``,
    ``IT.<FORM>.<VAR>``, ``CL.<CODELIST>``. A declared OID replaces the derived one (keys: visit
    codes, form codes, ``FORM.VAR``), e.g. to read another system's ClinicalData.
    """

    study_oid: str | None = None
    metadata_version_oid: str | None = None
    events: dict[str, str] = {}
    forms: dict[str, str] = {}
    item_groups: dict[str, str] = {}
    items: dict[str, str] = {}


class RedcapCheckbox(_Section):
    """``[redcap.checkboxes.NAME]``: Y/N variables of one form shown as one REDCap checkbox field."""

    form: str
    label: str
    variables: list[str] = Field(min_length=2)


class RedcapDef(_Section):
    """``[redcap]``: how the CRF looks as a REDCap project (``trialkit redcap dictionary``)."""

    checkboxes: dict[str, RedcapCheckbox] = {}


class TemplatesDef(_Section):
    """``[templates]``: options of the upload workbooks."""

    entry_rows: dict[str, int] = {}


class Definition(_Section):
    """The whole ``study.toml`` (``protocol`` is the study's own, validated by its plug-in)."""

    study: StudySection
    amendments: list[Amendment] = []
    plugins: Plugins = Plugins()
    sites: list[SiteDef] = Field(min_length=1)
    visits: list[VisitDef] = []
    arms: list[ArmDef] = []
    #: Which forms are collected at which visits (form code -> visit codes).
    schedule: dict[str, list[str]] = {}
    missing_codes: dict[str, str] = {}
    units: dict[str, UnitDef] = {}
    lab_units: dict[str, LabUnitDef] = {}
    codelists: dict[str, CodelistDef] = {}
    templates: TemplatesDef = TemplatesDef()
    odm: OdmDef = OdmDef()
    redcap: RedcapDef = RedcapDef()
    protocol: dict[str, Any] = {}

    @model_validator(mode="after")
    def _consistent(self) -> Definition:
        problems = []
        for kind, ids in (("site", [s.id for s in self.sites]), ("visit code", [v.code for v in self.visits]),
                          ("visit num", [str(v.num) for v in self.visits]), ("arm", [a.code for a in self.arms])):
            duplicated = sorted({i for i in ids if ids.count(i) > 1})
            if duplicated:
                problems.append(f"duplicate {kind} {', '.join(duplicated)}")
        if sum(v.primary for v in self.visits) > 1:
            problems.append("more than one visit has primary = true")
        visits = {v.code for v in self.visits}
        for form, codes in self.schedule.items():
            unknown = [c for c in codes if c not in visits]
            if unknown:
                problems.append(f"[schedule] {form}: unknown visit(s) {', '.join(unknown)}")
        for name in GENERATED_CODELISTS:
            if name in self.codelists:
                source = "[[sites]]" if name == SITE_CODELIST else "[[visits]]"
                problems.append(f"[codelists.{name}] is generated from {source}; remove it (one source per fact)")
        if problems:
            raise ValueError("; ".join(problems))
        return self


# ------------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class StudyDefinition:
    """A read ``study.toml``: the typed sections, the raw mapping and the codelists (generated ones too)."""

    path: Path
    raw: Mapping[str, Any]
    typed: Definition
    codelists: dict[str, Codelist]


# Where keys of older or mistaken definitions belong, for the error message.
_MOVED = {
    ("study", "forms_module"): "it moved to [plugins] forms = \"forms.py\"",
    ("study", "rules_module"): "it moved to [plugins] rules = [\"rules.py\"]",
    ("study", "rules_modules"): "it moved to [plugins] rules = [...]",
    ("assessments",): "the schedule of assessments is [schedule] FORM = [\"VISIT\", ...]",
    ("translations",): "translations live in the study folder's translations/ folder, one file per "
                       "language (translations/it.toml with [forms.CODE], [labels] ...)",
}
_TRIAL_HINT = ("trial-specific parameters belong under [protocol] (e.g. [protocol.{key}]), which the study's "
               "own protocol plug-in validates")

_CACHE: dict[tuple[str, int, int], StudyDefinition] = {}


def read_definition(path: str | os.PathLike[str]) -> StudyDefinition:
    """Read and validate ``study.toml`` (a file, or the folder holding it); cached per file version.

    Raises :class:`StudyDefinitionError` listing every problem, each with the file, the key and the fix.
    """
    toml_path = Path(path)
    if toml_path.is_dir():
        toml_path = toml_path / STUDY_FILE
    try:
        stat = toml_path.stat()
    except OSError as exc:
        raise StudyDefinitionError(f"{toml_path}: cannot be read ({exc.strerror or exc})") from exc
    key = (str(toml_path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key in _CACHE:
        return _CACHE[key]
    try:
        with open(toml_path, "rb") as handle:
            raw = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise StudyDefinitionError(f"{toml_path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise StudyDefinitionError(f"{toml_path}: cannot be read ({exc.strerror or exc})") from exc
    try:
        typed = Definition.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{toml_path}: {_describe(error, raw)}" for error in exc.errors()]
        raise StudyDefinitionError("\n".join(problems), problems) from None
    definition = StudyDefinition(path=toml_path, raw=raw, typed=typed, codelists=build_codelists(typed))
    _CACHE[key] = definition
    return definition


def _where(loc: tuple[Any, ...], raw: Mapping[str, Any]) -> str:
    """``[[sites]] #3 (id '03')`` / ``[study]`` / ``[codelists.SEX]`` for an error location."""
    if not loc:
        return "the file"
    head = str(loc[0])
    if head in ("sites", "visits", "arms", "amendments") and len(loc) > 1 and isinstance(loc[1], int):
        entry = raw.get(head, [])[loc[1]] if isinstance(raw.get(head), list) and loc[1] < len(raw[head]) else {}
        name = entry.get("id") or entry.get("code") or entry.get("version") if isinstance(entry, dict) else None
        where = f"[[{head}]] #{loc[1] + 1}" + (f" ({name})" if name else "")
        rest = loc[2:]
    elif head in ("codelists", "units", "lab_units") and len(loc) > 1:
        where = f"[{head}.{loc[1]}]"
        rest = loc[2:]
    else:
        where = f"[{head}]"
        rest = loc[1:]
    return where + ("" if not rest else " " + ".".join(str(p) for p in rest))


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed where ``loc`` points (for a did-you-mean)."""
    model: Any = Definition
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        fields = getattr(model, "model_fields", {})
        if part not in fields:
            return []
        annotation = fields[part].annotation
        args = getattr(annotation, "__args__", ())
        candidates = [annotation, *args, *(getattr(a, "__args__", ()) for a in args)]
        flat = []
        for candidate in candidates:
            flat.extend(candidate if isinstance(candidate, tuple) else (candidate,))
        model = next((c for c in flat if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return []
    return list(getattr(model, "model_fields", {})) if model is not None else []


def _describe(error: Mapping[str, Any], raw: Mapping[str, Any]) -> str:
    loc = tuple(error.get("loc", ()))
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        key = str(loc[-1])
        place = _where(loc[:-1], raw) if len(loc) > 1 else "top level"
        moved = _MOVED.get(tuple(str(p) for p in loc if not isinstance(p, int)))
        if moved:
            return f"{place}: unknown key '{key}'; {moved}"
        if len(loc) == 1:
            close = difflib.get_close_matches(key, list(Definition.model_fields), n=1)
            hint = f"did you mean [{close[0]}]?" if close else _TRIAL_HINT.format(key=key)
            return f"unknown section [{key}]; {hint}"
        close = difflib.get_close_matches(key, _allowed_keys(loc), n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"allowed: {', '.join(_allowed_keys(loc))}"
        return f"{place}: unknown key '{key}'; {hint}"
    if kind == "missing":
        return f"{_where(loc[:-1], raw) if len(loc) > 1 else 'top level'}: '{loc[-1]}' is missing; add it"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    value = error.get("input")
    shown = "" if isinstance(value, dict | list) or value is None else f" (found {value!r})"
    return f"{_where(loc, raw)}: {message}{shown}"


def build_codelists(definition: Definition) -> dict[str, Codelist]:
    """The declared codelists and the generated ``SITEID`` and ``VISIT`` lists.

    Synonyms: each code and decode (case-folded) maps to its code, plus the declared synonyms. A site
    id with leading zeros is also found without them (``1`` for ``01``) when no other site id reads
    the same.
    """
    result: dict[str, Codelist] = {}
    for name, spec in definition.codelists.items():
        values = tuple((str(c), str(d)) for c, d in spec.values) or tuple((c, c) for c in spec.codes)
        result[name] = _codelist(name, spec.label or name, values, spec.synonyms)
    site_values = tuple((s.id, s.city) for s in definition.sites)
    stripped: dict[str, list[str]] = {}
    for site in definition.sites:
        if site.id.isdigit() and site.id != site.id.lstrip("0"):
            stripped.setdefault(site.id.lstrip("0") or "0", []).append(site.id)
    ids = {s.id for s in definition.sites}
    site_synonyms = {ids_[0]: [short] for short, ids_ in stripped.items() if len(ids_) == 1 and short not in ids}
    result[SITE_CODELIST] = _codelist(SITE_CODELIST, "Site", site_values, site_synonyms)
    if definition.visits:
        visit_values = tuple((v.code, v.decode or v.label) for v in definition.visits)
        visit_synonyms = {v.code: list(v.synonyms) for v in definition.visits if v.synonyms}
        result[VISIT_CODELIST] = _codelist(VISIT_CODELIST, "Visit", visit_values, visit_synonyms)
    return result


def _codelist(name: str, label: str, values: tuple[tuple[str, str], ...],
              declared: Mapping[str, list[str]]) -> Codelist:
    synonyms: dict[str, str] = {}
    for code, typed in declared.items():
        for text in typed:
            synonyms[str(text).strip().casefold()] = str(code)
    for code, decode in values:
        synonyms.setdefault(code.casefold(), code)
        synonyms.setdefault(decode.strip().casefold(), code)
    return Codelist(name, label, values, synonyms)
