"""Study definitions: what one trial is, loaded from a folder.

A study definition is a folder with:

- ``study.toml`` — protocol parameters as data: study id and protocol version, sites with their date
  and decimal conventions, visits with target day and window, dosing, washouts, prohibited drugs,
  prednisone factors, joints, units and conversion factors, missing-value codes, codelists;
- ``forms.py`` — one pandera ``DataFrameModel`` per case report form (see :mod:`trialkit.crf`),
  listed in ``FORMS``;
- ``rules.py`` (optional) — data checks and protocol-deviation rules (see :mod:`trialkit.rules`),
  listed in ``RULES``.

The engine never imports a study by name: :func:`load_study` loads it from a path given by the
caller, the ``TRIALKIT_STUDY`` environment variable, or the bundled ANK-SJIA-01 definition. A
definition with a mistake raises :class:`StudyDefinitionError` naming the file and the problem.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import tomllib
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

from trialkit.errors import TrialkitError

ENV_STUDY = "TRIALKIT_STUDY"
STUDY_FILE = "study.toml"


class StudyDefinitionError(TrialkitError):
    """A study definition that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Variable:
    """One CRF variable, as declared in a form's pandera model."""

    name: str
    label: str
    type: str
    required: bool = False
    required_if: str | None = None
    unit: str | None = None
    unit_var: str | None = None
    codelist: str | None = None
    min: float | None = None
    max: float | None = None
    decimals: int | None = None
    pdate_formats: tuple[str, ...] | None = None
    derived: bool = False
    description: str | None = None
    short_label: str | None = None
    censored: bool = False  # a limit (<1, >500) is accepted; the operator goes to censor_var
    censor_var: str | None = None
    birth: bool = False  # part of a date of birth: never more than year and month

    @property
    def export_label(self) -> str:
        """The label for datasets with a 40-byte label limit (SAS transport): ``short_label`` or ``label``."""
        return self.short_label or self.label

    @property
    def rule_text(self) -> str:
        """The variable's rules in one line, as a data dictionary prints them."""
        parts = []
        if self.required:
            parts.append("required")
        if self.required_if:
            parts.append(self.required_if)
        if self.min is not None or self.max is not None:
            unit = f" {self.unit}" if self.unit else ""
            parts.append(f"range {_fmt(self.min)}–{_fmt(self.max)}{unit}")
        if self.decimals is not None:
            parts.append(f"at most {self.decimals} decimal(s)")
        if self.codelist:
            parts.append(f"codelist {self.codelist}")
        if self.pdate_formats:
            parts.append("formats " + ", ".join(self.pdate_formats))
        if self.censored:
            parts.append(f"a limit such as <1 or >500 is accepted (the operator <, <=, >, >= in {self.censor_var})")
        if self.birth:
            parts.append("part of the date of birth: year and month only, a day refuses the upload")
        if self.derived:
            parts.append("derived by trialkit on import")
        return "; ".join(parts)


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:g}"


@dataclass(frozen=True)
class Form:
    """One case report form: its code, label, record structure, keys and variables."""

    code: str
    label: str
    structure: str
    keys: tuple[str, ...]
    variables: tuple[Variable, ...]
    model: Any = field(repr=False, compare=False)
    short_label: str | None = None

    @property
    def export_label(self) -> str:
        """The dataset label within SAS transport's 40 bytes."""
        return self.short_label or self.label

    @property
    def variable_names(self) -> list[str]:
        """Variable names in CRF order."""
        return [v.name for v in self.variables]

    @property
    def site_variables(self) -> list[Variable]:
        """Variables a site types (everything but the ones trialkit derives)."""
        return [v for v in self.variables if not v.derived]

    def variable(self, name: str) -> Variable:
        """The variable called ``name`` (KeyError if the form has none)."""
        for var in self.variables:
            if var.name == name:
                return var
        raise KeyError(f"form {self.code} has no variable {name}")

    @cached_property
    def schema(self) -> Any:
        """The pandera ``DataFrameSchema`` of the form."""
        return self.model.to_schema()


@dataclass(frozen=True)
class Site:
    """A site and how it types dates, decimals and units."""

    id: str
    city: str
    country: str
    date_order: str  # "DMY" or "MDY"
    date_sep: str
    decimal_mark: str
    units: tuple[str, ...] = ("SI",)

    @property
    def date_format_hint(self) -> str:
        """The date pattern a person at this site types, e.g. ``DD/MM/YYYY``."""
        parts = ["DD", "MM", "YYYY"] if self.date_order == "DMY" else ["MM", "DD", "YYYY"]
        return self.date_sep.join(parts)


@dataclass(frozen=True)
class Visit:
    """A scheduled (or unscheduled) visit with its target day and window, in study days."""

    num: int
    code: str
    label: str
    anchor: str  # first_dose | last_dose | none
    target_day: int | None = None
    window_lo: int | None = None
    window_hi: int | None = None
    scheduled: bool = True
    primary: bool = False


@dataclass(frozen=True)
class Study:
    """A loaded study definition."""

    id: str
    title: str
    protocol_version: str
    path: Path
    forms: dict[str, Form]
    codelists: dict[str, Any]
    sites: dict[str, Site]
    visits: dict[str, Visit]
    params: dict[str, Any] = field(repr=False)
    rules: tuple[Any, ...] = ()

    @property
    def arms(self) -> dict[str, str]:
        """The treatment arms, code → label (``[[arms]]`` in study.toml; empty when none are defined)."""
        return {str(arm["code"]).strip().upper(): str(arm.get("label", arm["code"]))
                for arm in self.params.get("arms", []) if isinstance(arm, dict) and arm.get("code")}

    @property
    def missing_codes(self) -> dict[str, str]:
        """Missing-value codes (ND, NK, NA) and their meaning."""
        return dict(self.params.get("missing_codes", {}))

    @property
    def contact(self) -> str:
        """The contact line printed on templates and query workbooks."""
        return str(self.params["study"].get("contact", ""))

    @cached_property
    def schema_hash(self) -> str:
        """A short hash of everything that shapes an upload: forms, variables, codelists, keys.

        Templates carry it; an importer compares it to tell an outdated template from a current one.
        """
        payload = {
            "forms": [
                {
                    "code": f.code,
                    "keys": list(f.keys),
                    "variables": [
                        [v.name, v.type, v.required, v.codelist, v.min, v.max, v.decimals, v.derived]
                        for v in f.variables
                    ],
                }
                for f in self.forms.values()
            ],
            "codelists": {name: [list(x) for x in cl.values] for name, cl in self.codelists.items()},
        }
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def version_stamp(self) -> str:
        """``study id | protocol version | schema hash`` — the stamp written into templates."""
        return f"{self.id}|{self.protocol_version}|{self.schema_hash}"

    def form(self, code: str) -> Form:
        """The form with this code (case-insensitive); KeyError names the known forms."""
        key = code.strip().upper()
        if key not in self.forms:
            raise KeyError(f"unknown form {code!r}; this study has {', '.join(self.forms)}")
        return self.forms[key]

    def site(self, site_id: str) -> Site:
        """The site with this id; KeyError names the known sites."""
        key = str(site_id).strip()
        if key.isdigit():
            key = key.zfill(2)
        if key not in self.sites:
            raise KeyError(f"unknown site {site_id!r}; this study has sites {', '.join(self.sites)}")
        return self.sites[key]

    def param(self, *path: str, default: Any = None) -> Any:
        """A protocol parameter by its path in study.toml, e.g. ``param("dose", "fixed_dose_mg")``."""
        node: Any = self.params
        for part in path:
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node


def exact(value: Any) -> Fraction:
    """A protocol number (written as text in study.toml, e.g. ``"5/9"`` or ``"88.57"``) as a Fraction."""
    return Fraction(str(value))


# ------------------------------------------------------------------------------------------------
# Loading


def bundled_study_path() -> Path:
    """The folder of the bundled ANK-SJIA-01 definition.

    Installed, it is the package data ``trialkit/_bundled_study``; in a source checkout it is
    ``schemas/`` beside the ``trialkit`` package.
    """
    package_dir = Path(__file__).resolve().parent
    installed = package_dir / "_bundled_study"
    if (installed / STUDY_FILE).is_file():
        return installed
    checkout = package_dir.parent / "schemas"
    if (checkout / STUDY_FILE).is_file():
        return checkout
    spec = importlib.util.find_spec("trialkit._bundled_study")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            if (Path(location) / STUDY_FILE).is_file():
                return Path(location)
    raise StudyDefinitionError(
        "the bundled study definition is missing from this installation; reinstall trialkit "
        f"or pass --study PATH (or set {ENV_STUDY})"
    )


def resolve_study_path(path: str | os.PathLike[str] | None = None) -> Path:
    """Where to load the study from: ``path``, else ``$TRIALKIT_STUDY``, else the bundled one."""
    chosen = path or os.environ.get(ENV_STUDY) or None
    if chosen is None:
        return bundled_study_path()
    folder = Path(chosen).expanduser()
    if folder.is_file() and folder.name == STUDY_FILE:
        folder = folder.parent
    if not (folder / STUDY_FILE).is_file():
        raise StudyDefinitionError(
            f"{folder}: not a study definition (no {STUDY_FILE} there); point --study or "
            f"{ENV_STUDY} at a folder holding {STUDY_FILE} and forms.py"
        )
    return folder.resolve()


_CACHE: dict[Path, Study] = {}


def load_study(path: str | os.PathLike[str] | None = None) -> Study:
    """Load (and check) a study definition; results are cached per folder.

    Example::

        >>> study = load_study()
        >>> study.id, len(study.forms)
        ('ANK-SJIA-01', 15)
    """
    folder = resolve_study_path(path)
    if folder in _CACHE:
        return _CACHE[folder]
    study = _load(folder)
    _CACHE[folder] = study
    return study


def _load(folder: Path) -> Study:
    toml_path = folder / STUDY_FILE
    try:
        with open(toml_path, "rb") as handle:
            params = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise StudyDefinitionError(f"{toml_path}: not valid TOML: {exc}") from exc
    header = params.get("study")
    if not isinstance(header, dict) or not header.get("id"):
        raise StudyDefinitionError(f"{toml_path}: the [study] table with an 'id' is missing")

    from trialkit.crf import codelists_from_toml

    codelists = codelists_from_toml(params)
    sites = _load_sites(toml_path, params)
    visits = _load_visits(toml_path, params)

    forms_file = folder / header.get("forms_module", "forms.py")
    module = _import_file(forms_file, header["id"], "forms")
    models = getattr(module, "FORMS", None)
    if not models:
        raise StudyDefinitionError(f"{forms_file}: defines no FORMS list of pandera models")
    forms: dict[str, Form] = {}
    for model in models:
        form = _form_from_model(forms_file, model, codelists)
        if form.code in forms:
            raise StudyDefinitionError(f"{forms_file}: duplicate form {form.code}")
        forms[form.code] = form

    # Rules may be split over several files (``rules_modules = ["checks.py", "deviations.py"]``);
    # each lists its rules in RULES. Rule ids must be unique across all of them.
    rules: tuple[Any, ...] = ()
    rule_files = header.get("rules_modules") or [header.get("rules_module", "rules.py")]
    for index, name in enumerate(rule_files):
        rules_file = folder / name
        if not rules_file.is_file():
            if "rules_modules" in header:
                raise StudyDefinitionError(f"{rules_file}: listed in rules_modules but missing")
            continue
        rules_module = _import_file(rules_file, header["id"], f"rules{index}")
        rules += tuple(getattr(rules_module, "RULES", ()))
        _check_rules(rules_file, rules, forms)

    return Study(
        id=str(header["id"]),
        title=str(header.get("title", header["id"])),
        protocol_version=str(header.get("protocol_version", "")),
        path=folder,
        forms=forms,
        codelists=codelists,
        sites=sites,
        visits=visits,
        params=params,
        rules=rules,
    )


def _import_file(path: Path, study_id: str, part: str) -> ModuleType:
    """Import one file of a study definition under a private module name."""
    if not path.is_file():
        raise StudyDefinitionError(f"{path}: missing; a study definition needs it")
    safe = "".join(ch if ch.isalnum() else "_" for ch in study_id)
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    name = f"_trialkit_study_{safe}_{digest}_{part}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise StudyDefinitionError(f"{path}: cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except KeyError as exc:
        del sys.modules[name]
        raise StudyDefinitionError(
            f"{path}: refers to an unknown name {exc}; is it a codelist missing from {STUDY_FILE}?"
        ) from exc
    except Exception as exc:
        del sys.modules[name]
        raise StudyDefinitionError(f"{path}: failed to load: {type(exc).__name__}: {exc}") from exc
    return module


def _form_from_model(path: Path, model: Any, codelists: dict[str, Any]) -> Form:
    try:
        meta_all = model.get_metadata() or {}
    except Exception as exc:  # pragma: no cover - pandera internals
        raise StudyDefinitionError(f"{path}: {model!r} is not a pandera DataFrameModel") from exc
    meta = meta_all.get(model.__name__, {})
    form_meta = meta.get("dataframe") or {}
    code = form_meta.get("form")
    if not code:
        raise StudyDefinitionError(f"{path}: form model {model.__name__} has no Config.metadata['form']")
    schema = model.to_schema()
    variables = []
    for name, column in schema.columns.items():
        info = column.metadata or {}
        if not info.get("type"):
            raise StudyDefinitionError(
                f"{path}: {code}.{name} is not declared with trialkit.crf.var (no CRF type)"
            )
        if info.get("codelist") and info["codelist"] not in codelists:
            raise StudyDefinitionError(
                f"{path}: {code}.{name} uses unknown codelist {info['codelist']!r}"
            )
        if len(name) > 8 or name != name.upper():
            raise StudyDefinitionError(
                f"{path}: {code}.{name}: variable names must be upper case and at most 8 characters "
                "(SAS transport v5)"
            )
        variables.append(
            Variable(
                name=name,
                label=column.title or name,
                type=info["type"],
                required=bool(info.get("required")),
                required_if=info.get("required_if"),
                unit=info.get("unit"),
                unit_var=info.get("unit_var"),
                codelist=info.get("codelist"),
                min=info.get("min"),
                max=info.get("max"),
                decimals=info.get("decimals"),
                pdate_formats=tuple(info["pdate_formats"]) if info.get("pdate_formats") else None,
                derived=bool(info.get("derived")),
                description=column.description,
                short_label=info.get("short_label"),
                censored=bool(info.get("censored")),
                censor_var=info.get("censor_var"),
                birth=bool(info.get("birth")),
            )
        )
        export_label = variables[-1].export_label
        if len(export_label.encode("utf-8")) > 40 or not export_label.isascii():
            raise StudyDefinitionError(
                f"{path}: {code}.{name}: label {export_label!r} is longer than 40 bytes or not ASCII; "
                "give var(..., short_label=...) of at most 40 ASCII characters for SAS transport files"
            )
    names = {v.name for v in variables}
    by_name = {v.name: v for v in variables}
    for variable in variables:
        if not variable.censored:
            continue
        target = by_name.get(variable.censor_var or "")
        if variable.type not in ("num", "int") or target is None or not target.derived or target.type != "char":
            raise StudyDefinitionError(
                f"{path}: {code}.{variable.name} is censored=True with censor_var {variable.censor_var!r}: a "
                "censored variable must be a number, and censor_var a derived char variable of the same form"
            )
    keys = tuple(form_meta.get("keys") or ())
    if not keys:
        raise StudyDefinitionError(f"{path}: form {code} declares no keys")
    for key in keys:
        if key not in names:
            raise StudyDefinitionError(f"{path}: form {code} has key {key!r}, which is not one of its columns")
    return Form(
        code=str(code),
        label=str(form_meta.get("label", code)),
        structure=str(form_meta.get("structure", "")),
        keys=keys,
        variables=tuple(variables),
        model=model,
        short_label=form_meta.get("short_label"),
    )


def _load_sites(path: Path, params: dict[str, Any]) -> dict[str, Site]:
    sites: dict[str, Site] = {}
    for entry in params.get("sites", []):
        try:
            site = Site(
                id=str(entry["id"]),
                city=str(entry.get("city", "")),
                country=str(entry.get("country", "")),
                date_order=str(entry.get("date_order", "DMY")),
                date_sep=str(entry.get("date_sep", "/")),
                decimal_mark=str(entry.get("decimal_mark", ".")),
                units=tuple(entry.get("units", ["SI"])),
            )
        except KeyError as exc:
            raise StudyDefinitionError(f"{path}: a [[sites]] entry lacks {exc}") from exc
        if site.date_order not in ("DMY", "MDY", "YMD"):
            raise StudyDefinitionError(f"{path}: site {site.id}: date_order must be DMY, MDY or YMD")
        if site.decimal_mark not in (",", "."):
            raise StudyDefinitionError(f"{path}: site {site.id}: decimal_mark must be ',' or '.'")
        if site.id in sites:
            raise StudyDefinitionError(f"{path}: duplicate site {site.id}")
        sites[site.id] = site
    return sites


def _load_visits(path: Path, params: dict[str, Any]) -> dict[str, Visit]:
    visits: dict[str, Visit] = {}
    for entry in params.get("visits", []):
        try:
            visit = Visit(
                num=int(entry["num"]),
                code=str(entry["code"]),
                label=str(entry.get("label", entry["code"])),
                anchor=str(entry.get("anchor", "first_dose")),
                target_day=entry.get("target_day"),
                window_lo=entry.get("window_lo"),
                window_hi=entry.get("window_hi"),
                scheduled=bool(entry.get("scheduled", True)),
                primary=bool(entry.get("primary", False)),
            )
        except KeyError as exc:
            raise StudyDefinitionError(f"{path}: a [[visits]] entry lacks {exc}") from exc
        if visit.code in visits:
            raise StudyDefinitionError(f"{path}: duplicate visit {visit.code}")
        visits[visit.code] = visit
    return visits


def _check_rules(path: Path, rules: tuple[Any, ...], forms: dict[str, Form]) -> None:
    seen: set[str] = set()
    for rule in rules:
        rule_id = getattr(rule, "id", None)
        if not rule_id:
            raise StudyDefinitionError(f"{path}: RULES holds {rule!r}, which is not a trialkit rule")
        if rule_id in seen:
            raise StudyDefinitionError(f"{path}: duplicate rule id {rule_id}")
        seen.add(rule_id)
        for code in getattr(rule, "forms", ()):
            if code not in forms:
                raise StudyDefinitionError(f"{path}: rule {rule_id} reads unknown form {code}")
