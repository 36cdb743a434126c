"""The loaded study: forms, variables, sites, visits, arms and the study's plug-ins, typed.

:class:`Study` is what every stage of the engine receives. It is built by
:func:`trialkit.study.load_study` from a study folder; nothing here knows a particular trial.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

from trialkit.study.definition import SITE_CODELIST, Codelist, StudyDefinition
from trialkit.study.paths import StudyDefinitionError
from trialkit.study.translations import Texts, Translations


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
        """The pandera ``DataFrameSchema`` of the form, with the checks ``var`` keeps in metadata."""
        from trialkit.crf import with_crf_checks

        return with_crf_checks(self.model.to_schema())


@dataclass(frozen=True)
class Site:
    """A site and how it types dates, decimals and units."""

    id: str
    city: str
    country: str
    date_order: str  # "DMY", "MDY" or "YMD"
    date_sep: str
    decimal_mark: str
    units: tuple[str, ...] = ("SI",)
    language: str = "en"  # the language of the site's workbooks (trialkit.i18n.LANGUAGES)
    mappings: tuple[str, ...] = ()  # mapping specs that read this site's own exports, in order

    @property
    def date_format_hint(self) -> str:
        """The date pattern a person at this site types, e.g. ``DD/MM/YYYY``."""
        parts = {"DMY": ["DD", "MM", "YYYY"], "MDY": ["MM", "DD", "YYYY"],
                 "YMD": ["YYYY", "MM", "DD"]}[self.date_order]
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
class Arm:
    """A treatment arm (the code the unblinded randomization list uses, and its label)."""

    code: str
    label: str


@dataclass(frozen=True)
class Study:
    """A loaded study definition.

    ``protocol`` is whatever the study's ``protocol`` plug-in made of the ``[protocol]`` section (its
    own typed parameters; the engine never reads it), or that section as a read-only mapping when the
    study has no such plug-in. ``package`` is the private module name the study folder was imported
    under; :meth:`plugin` imports a declared plug-in from it.
    """

    id: str
    title: str
    protocol_version: str
    path: Path
    forms: dict[str, Form]
    codelists: dict[str, Codelist]
    sites: dict[str, Site]
    visits: dict[str, Visit]
    params: Mapping[str, Any] = field(repr=False)
    rules: tuple[Any, ...] = ()
    arms: dict[str, Arm] = field(default_factory=dict)
    definition: StudyDefinition | None = field(default=None, repr=False, compare=False)
    protocol: Any = field(default=None, repr=False, compare=False)
    package: str | None = field(default=None, repr=False, compare=False)
    definition_hash: str = ""
    translations: Translations = field(default_factory=Translations, repr=False, compare=False)
    #: The study's mapping specs (``mappings/*.toml``) by name (:mod:`trialkit.study.mappings`).
    mappings: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    # -- generic facts ---------------------------------------------------------------------------

    @property
    def missing_codes(self) -> dict[str, str]:
        """Missing-value codes (e.g. ND, NK, NA) and their meaning."""
        return dict(self.params.get("missing_codes", {}))

    @property
    def contact(self) -> str:
        """The contact line printed on templates and query workbooks."""
        return str(self.params.get("study", {}).get("contact", ""))

    @property
    def schedule(self) -> dict[str, list[str]]:
        """Which forms are collected at which visits (``[schedule]``: form code -> visit codes)."""
        return {form: list(visits) for form, visits in self.params.get("schedule", {}).items()}

    @property
    def amendments(self) -> list[dict[str, Any]]:
        """The protocol versions the definition records (``[[amendments]]``), oldest first."""
        return [dict(a) for a in self.params.get("amendments", [])]

    @property
    def subject_id_pattern(self) -> str | None:
        """The regular expression every SUBJID matches in full (None: not checked)."""
        return self.params.get("study", {}).get("subject_id_pattern")

    @property
    def subject_id_hint(self) -> str:
        """How a subject number is written, for messages (falls back to the pattern)."""
        study = self.params.get("study", {})
        return str(study.get("subject_id_hint") or study.get("subject_id_pattern") or "")

    def subject_site(self, subject: str | None) -> str | None:
        """The site part of a subject number (the pattern's ``site`` group), or None."""
        pattern = self.subject_id_pattern
        if not subject or not pattern:
            return None
        match = re.fullmatch(pattern, str(subject))
        if match is None or "site" not in match.re.groupindex:
            return None
        return match.group("site")

    @property
    def arm_codes(self) -> list[str]:
        """The arm codes, in definition order."""
        return list(self.arms)

    def units_of(self, variable: str) -> Mapping[str, Any] | None:
        """``[units.VARIABLE]`` as a mapping (standard unit, unit variable, alternatives), or None."""
        return self.params.get("units", {}).get(variable)

    def lab_units_of(self, test: str) -> Mapping[str, Any] | None:
        """``[lab_units.TEST]`` as a mapping (standard unit, alternatives, aliases), or None."""
        return self.params.get("lab_units", {}).get(test)

    def param(self, *path: str) -> Any:
        """A generic section of study.toml by its path (e.g. ``param("units", "WEIGHT")``); None when
        absent. There are no defaults: a study's own parameters live in ``[protocol]`` and are read
        through :attr:`protocol`."""
        node: Any = self.params
        for part in path:
            if not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        return node

    # -- the upload's shape and its stamp --------------------------------------------------------

    @cached_property
    def schema_hash(self) -> str:
        """A short hash of what shapes an upload: forms, variables, keys and codelist codes.

        The site list (the ``SITEID`` codelist), decodes, windows and the protocol version are left
        out: adding a site or amending a visit window must not make every issued template outdated.
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
            "codelists": {name: cl.codes for name, cl in self.codelists.items() if name != SITE_CODELIST},
        }
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def version_stamp(self) -> str:
        """``study id | protocol version | schema hash`` — the stamp written into templates.

        Only the study id and the schema hash decide whether a template is current
        (:meth:`stamp_status`); the protocol version is there for people.
        """
        return f"{self.id}|{self.protocol_version}|{self.schema_hash}"

    def stamp_status(self, stamp: str) -> str:
        """``current``, ``other-study`` or ``outdated`` for a stamp read from a workbook.

        A stamp of any protocol version is current when its study id and schema hash are this
        study's: a template issued under an earlier protocol version whose forms did not change
        stays valid.
        """
        parts = str(stamp).split("|")
        if parts[0] != self.id:
            return "other-study"
        return "current" if parts[-1] == self.schema_hash else "outdated"

    # -- the site's language --------------------------------------------------------------------

    def language_of(self, site: str | None) -> str:
        """The language of a site's workbooks (English for no site or an unknown one)."""
        found = self.sites.get(site) if site is not None else None
        return found.language if found is not None else "en"

    def texts(self, language: str | None) -> Texts:
        """The study's words (form and variable labels, missing-value meanings, contact) in
        ``language``, English where the study's ``translations/`` folder has no translation."""
        return Texts(self, language)

    # -- lookups ---------------------------------------------------------------------------------

    def form(self, code: str) -> Form:
        """The form with this code (case-insensitive); KeyError names the known forms."""
        key = code.strip().upper()
        if key not in self.forms:
            raise KeyError(f"unknown form {code!r}; this study has {', '.join(self.forms)}")
        return self.forms[key]

    def site(self, site_id: str) -> Site:
        """The site with this id; KeyError names the known sites.

        A site id typed without its leading zeros (``1``) is the unique declared site whose id is
        that number with leading zeros (``01`` or ``001``); when none or several are, it is unknown.
        """
        key = str(site_id).strip()
        if key in self.sites:
            return self.sites[key]
        if key.isdigit():
            matches = [s for s in self.sites if s.isdigit() and s.lstrip("0") == key.lstrip("0")]
            if len(matches) == 1:
                return self.sites[matches[0]]
        raise KeyError(f"unknown site {site_id!r}; {self.id} has sites {', '.join(self.sites)}")

    def arm(self, code: str) -> Arm:
        """The arm with this code (case-insensitive); KeyError names the known arms."""
        key = str(code).strip().upper()
        for arm in self.arms.values():
            if arm.code.upper() == key:
                return arm
        raise KeyError(f"unknown arm {code!r}; {self.id} has arms {', '.join(self.arms) or '(none declared)'}")

    # -- plug-ins --------------------------------------------------------------------------------

    def has_plugin(self, name: str) -> bool:
        """True when study.toml declares the plug-in ``name`` (analysis, demo, report, protocol)."""
        return bool(self.params.get("plugins", {}).get(name))

    def plugin(self, name: str) -> ModuleType | None:
        """The study's plug-in module ``name`` (imported on first use), or None when not declared.

        Raises :class:`StudyDefinitionError` naming the file when the plug-in cannot be imported.
        """
        declared = self.params.get("plugins", {}).get(name)
        if not declared or self.package is None:
            return None
        module = Path(declared).name.removesuffix(".py")
        target = self.path / declared
        if not target.exists():
            raise StudyDefinitionError(f"{target}: declared as the {name} plug-in in study.toml but missing")
        try:
            return importlib.import_module(f"{self.package}.{module}")
        except StudyDefinitionError:
            raise
        except Exception as exc:
            raise StudyDefinitionError(
                f"{target}: the {name} plug-in failed to load: {type(exc).__name__}: {exc}"
            ) from exc


def exact(value: Any) -> Fraction:
    """A protocol number (written as text in study.toml, e.g. ``"5/9"`` or ``"88.57"``) as a Fraction."""
    return Fraction(str(value))
