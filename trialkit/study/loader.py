"""Loading a study folder into a :class:`~trialkit.study.model.Study`.

The folder is imported as a private package (``_trialkit_study_<id>_<hash>``), so the study's files
can import each other with relative imports (``from .protocol import ...``) and two versions of one
study (an amendment beside the original) never share modules. The engine never imports a study by
its name: the folder comes from the caller, ``$TRIALKIT_STUDY``, a workspace binding or the bundled
default.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

from trialkit.study.definition import StudyDefinition, read_definition
from trialkit.study.mappings import MAPPINGS_FOLDER, load_mappings
from trialkit.study.model import Arm, Form, Site, Study, Variable, Visit
from trialkit.study.paths import STUDY_FILE, StudyDefinitionError, resolve_study_path
from trialkit.study.translations import read_translations

#: Files and folders that are not part of a study definition (left out of its hash and copies).
IGNORED = ("__pycache__", ".pytest_cache", ".ruff_cache", ".git", ".DS_Store")


def definition_files(folder: Path) -> list[Path]:
    """The files of a study definition, sorted (caches, hidden files and compiled Python left out)."""
    found = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part in IGNORED or part.startswith(".") for part in relative.parts):
            continue
        if path.is_file() and path.suffix not in (".pyc", ".pyo"):
            found.append(path)
    return found


def definition_hash(folder: str | os.PathLike[str]) -> str:
    """sha256 over every file of the definition folder (relative path and bytes), hex."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in definition_files(folder):
        digest.update(path.relative_to(folder).as_posix().encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


_CACHE: dict[tuple[Path, str], Study] = {}


def load_study(path: str | os.PathLike[str] | None = None) -> Study:
    """Load (and check) a study definition; results are cached per folder and content.

    Example::

        >>> study = load_study("path/to/study")  # doctest: +SKIP
        >>> study.id, list(study.forms)  # doctest: +SKIP
        ('MY-STUDY', ['ENROL', 'OBS'])
    """
    folder = resolve_study_path(path)
    digest = definition_hash(folder)
    key = (folder, digest)
    if key not in _CACHE:
        _CACHE[key] = _load(folder, digest)
    return _CACHE[key]


def _load(folder: Path, digest: str) -> Study:
    definition = read_definition(folder / STUDY_FILE)
    typed = definition.typed
    package = _import_package(folder, typed.study.id, digest)
    protocol = _validate_protocol(folder, definition, package)

    forms_file = folder / typed.plugins.forms
    module = _import_part(package, forms_file)
    models = getattr(module, "FORMS", None)
    if not models:
        raise StudyDefinitionError(f"{forms_file}: defines no FORMS list of pandera models")
    forms: dict[str, Form] = {}
    for model in models:
        form = _form_from_model(forms_file, model, definition)
        if form.code in forms:
            raise StudyDefinitionError(f"{forms_file}: duplicate form {form.code}")
        forms[form.code] = form
    for code in typed.schedule:
        if code not in forms:
            raise StudyDefinitionError(f"{definition.path}: [schedule] names form {code}, which {forms_file.name} "
                                       f"does not define (forms: {', '.join(forms)})")

    # Rules may be split over several files (``rules = ["checks.py", "deviations.py"]``); each lists
    # its rules in RULES. Rule ids must be unique across all of them.
    rules: tuple[Any, ...] = ()
    rule_files = typed.plugins.rules or (["rules.py"] if (folder / "rules.py").is_file() else [])
    for name in rule_files:
        rules_file = folder / name
        if not rules_file.is_file():
            raise StudyDefinitionError(f"{rules_file}: listed in [plugins] rules but missing")
        rules_module = _import_part(package, rules_file)
        rules += tuple(getattr(rules_module, "RULES", ()))
        _check_rules(rules_file, rules, forms)

    mappings = load_mappings(folder / MAPPINGS_FOLDER, forms, definition.codelists, typed.missing_codes)
    problems = exchange_problems(definition, forms, mappings)
    if problems:
        raise StudyDefinitionError("\n".join(problems), problems)
    sites = {
        s.id: Site(id=s.id, city=s.city, country=s.country, date_order=s.date_order, date_sep=s.date_sep,
                   decimal_mark=s.decimal_mark, units=tuple(s.units), language=s.language,
                   mappings=tuple(s.mappings))
        for s in typed.sites
    }
    visits = {
        v.code: Visit(num=v.num, code=v.code, label=v.label, anchor=v.anchor, target_day=v.target_day,
                      window_lo=v.window_lo, window_hi=v.window_hi, scheduled=v.scheduled, primary=v.primary)
        for v in typed.visits
    }
    arms = {a.code: Arm(code=a.code, label=a.label) for a in typed.arms}
    translations = read_translations(folder, forms, definition.codelists, typed.missing_codes)
    return Study(
        id=typed.study.id,
        title=typed.study.title or typed.study.id,
        protocol_version=typed.study.protocol_version,
        path=folder,
        forms=forms,
        codelists=definition.codelists,
        sites=sites,
        visits=visits,
        params=MappingProxyType(dict(definition.raw)),
        rules=rules,
        arms=arms,
        definition=definition,
        protocol=protocol,
        package=package,
        definition_hash=digest,
        translations=translations,
        mappings=mappings,
    )


def _import_package(folder: Path, study_id: str, digest: str) -> str:
    """Import the study folder as a private package; returns its module name."""
    safe = "".join(ch if ch.isalnum() else "_" for ch in study_id)
    name = f"_trialkit_study_{safe}_{digest[:12]}"
    if name in sys.modules:
        return name
    init = folder / "__init__.py"
    if init.is_file():
        spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(folder)])
    else:
        spec = importlib.util.spec_from_loader(name, loader=None, is_package=True)
    if spec is None:
        raise StudyDefinitionError(f"{folder}: cannot be imported as a study package")
    module = importlib.util.module_from_spec(spec)
    if not init.is_file():
        module.__path__ = [str(folder)]
    sys.modules[name] = module
    try:
        if spec.loader is not None:
            spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise StudyDefinitionError(f"{init}: failed to load: {type(exc).__name__}: {exc}") from exc
    return name


def _import_part(package: str, path: Path) -> ModuleType:
    """Import one file of the study package (``forms.py`` → ``<package>.forms``)."""
    if not path.is_file():
        raise StudyDefinitionError(f"{path}: missing; a study definition needs it")
    name = f"{package}.{path.stem}"
    try:
        return importlib.import_module(name)
    except StudyDefinitionError:
        raise
    except KeyError as exc:
        sys.modules.pop(name, None)
        raise StudyDefinitionError(
            f"{path}: refers to an unknown name {exc}; is it a codelist missing from {STUDY_FILE}?"
        ) from exc
    except Exception as exc:
        sys.modules.pop(name, None)
        raise StudyDefinitionError(f"{path}: failed to load: {type(exc).__name__}: {exc}") from exc


def _validate_protocol(folder: Path, definition: StudyDefinition, package: str) -> Any:
    """The study's typed ``[protocol]``: its protocol plug-in's ``validate(section)``, else read-only raw."""
    section = definition.typed.protocol
    declared = definition.typed.plugins.protocol
    if not declared:
        return MappingProxyType(dict(section))
    path = folder / declared
    module = _import_part(package, path)
    validate = getattr(module, "validate", None)
    if not callable(validate):
        raise StudyDefinitionError(f"{path}: the protocol plug-in must define validate(section) -> parameters")
    try:
        return validate(section)
    except StudyDefinitionError:
        raise
    except Exception as exc:  # the study's own validation (pydantic, ValueError, ...)
        problems = _protocol_problems(exc)
        lines = [f"{definition.path}: [protocol] {p} (checked by {path.name})" for p in problems]
        raise StudyDefinitionError("\n".join(lines), lines) from None


def _protocol_problems(exc: Exception) -> list[str]:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            found = []
            for error in errors():
                loc = ".".join(str(p) for p in error.get("loc", ()))
                message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
                if error.get("type") == "extra_forbidden":
                    message = "unknown key; check its spelling against the study's protocol parameters"
                elif error.get("type") == "missing":
                    message = "is missing; add it"
                found.append(f"{loc}: {message}" if loc else message)
            if found:
                return found
        except Exception:  # not pydantic after all
            pass
    return [f"{type(exc).__name__}: {exc}"]


def _form_from_model(path: Path, model: Any, definition: StudyDefinition) -> Form:
    codelists = definition.codelists
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


def exchange_problems(definition: StudyDefinition, forms: Mapping[str, Form],
                      mappings: Mapping[str, Any]) -> list[str]:
    """Cross-references of ``[[sites]] mappings``, ``[odm]`` and ``[redcap]`` to the forms, visits and
    mapping specs; one line per problem (empty: all resolve)."""
    typed = definition.typed
    where = definition.path
    problems: list[str] = []
    for site in typed.sites:
        for name in site.mappings:
            if name not in mappings:
                problems.append(f"{where}: [[sites]] {site.id}: mapping {name!r} is not a spec of "
                                f"{MAPPINGS_FOLDER}/ (specs: {', '.join(mappings) or 'none'})")
    visits = {v.code for v in typed.visits}
    odm = typed.odm
    for code in odm.events:
        if code not in visits:
            problems.append(f"{where}: [odm.events] {code!r} is not a visit code")
    for table in ("forms", "item_groups"):
        for code in getattr(odm, table):
            if code not in forms:
                problems.append(f"{where}: [odm.{table}] {code!r} is not a form")
    for key in odm.items:
        form, _, name = key.partition(".")
        if form not in forms or name not in forms[form].variable_names:
            problems.append(f"{where}: [odm.items] {key!r} is not FORM.VARIABLE of the study")
    declared = [*odm.events.values(), *odm.forms.values(), *odm.item_groups.values(), *odm.items.values()]
    doubled = sorted({oid for oid in declared if declared.count(oid) > 1})
    if doubled:
        problems.append(f"{where}: [odm] OID(s) declared twice: {', '.join(doubled)}")
    for name, box in typed.redcap.checkboxes.items():
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,25}", name):
            problems.append(f"{where}: [redcap.checkboxes.{name}]: a REDCap field name is lower case letters, "
                            "digits and '_', starting with a letter (at most 26 characters)")
        if box.form not in forms:
            problems.append(f"{where}: [redcap.checkboxes.{name}] form {box.form!r} is not a form")
            continue
        names = forms[box.form].variable_names
        for variable in box.variables:
            if variable not in names or forms[box.form].variable(variable).type != "yn":
                problems.append(f"{where}: [redcap.checkboxes.{name}] {variable!r} is not a Y/N variable of "
                                f"form {box.form}")
    used = [(box.form, v) for box in typed.redcap.checkboxes.values() for v in box.variables]
    twice = sorted({f"{f}.{v}" for f, v in used if used.count((f, v)) > 1})
    if twice:
        problems.append(f"{where}: [redcap.checkboxes] variable(s) in two checkbox fields: {', '.join(twice)}")
    return problems


def _check_rules(path: Path, rules: tuple[Any, ...], forms: Mapping[str, Form]) -> None:
    seen: set[str] = set()
    for rule in rules:
        rule_id = getattr(rule, "id", None)
        if not rule_id:
            raise StudyDefinitionError(f"{path}: RULES holds {rule!r}, which is not a trialkit rule")
        if rule_id in seen:
            raise StudyDefinitionError(f"{path}: duplicate rule id {rule_id}")
        seen.add(rule_id)
        for code in (*getattr(rule, "forms", ()), *getattr(rule, "optional_forms", ())):
            if code not in forms:
                raise StudyDefinitionError(f"{path}: rule {rule_id} reads unknown form {code}")
