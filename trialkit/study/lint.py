"""``trialkit study check``: every problem of a study definition at once, with the fix.

:func:`check_study` loads the definition (the typed ``study.toml``, forms, rules, the protocol
plug-in) and then looks for what loading alone does not catch: plug-ins that do not import or break
their contract, scheduled forms without a visit variable, rule ids that clash with engine codes, a
subject-number pattern that cannot tell the site. Each :class:`Problem` is an ``error`` (the study
cannot be used as it is) or a ``note`` (works, but probably not what was meant).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trialkit.study.paths import StudyDefinitionError, resolve_study_path


@dataclass(frozen=True)
class Problem:
    """One problem of a study definition."""

    level: str  # error | note
    message: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready."""
        return asdict(self)


def check_study(path: str | os.PathLike[str] | None = None) -> tuple[Any, list[Problem]]:
    """Load and lint the study at ``path`` (default: ``$TRIALKIT_STUDY`` or the bundled study).

    Returns ``(study or None, problems)``; the study is None when it does not load.
    """
    from trialkit.study.loader import load_study

    try:
        folder = resolve_study_path(path)
        study = load_study(folder)
    except StudyDefinitionError as exc:
        return None, [Problem("error", p) for p in exc.problems]
    return study, _lint(study)


def _lint(study: Any) -> list[Problem]:
    from trialkit.codes import CATALOGUE

    problems: list[Problem] = []
    toml = Path(study.path) / "study.toml"
    for code in study.schedule:
        form = study.forms[code]
        if "VISIT" not in form.variable_names:
            problems.append(Problem("error", f"{toml}: [schedule] {code}: form {code} has no VISIT variable, "
                                             "so its records cannot be placed at the scheduled visits"))
        elif form.variable("VISIT").codelist != "VISIT":
            problems.append(Problem("note", f"{study.path}: {code}.VISIT does not use the VISIT codelist "
                                            "(generated from [[visits]]); typed visits are then not checked"))
    for rule in study.rules:
        if rule.id in CATALOGUE:
            problems.append(Problem("error", f"{study.path}: rule id {rule.id} is an engine finding code "
                                             "(trialkit codes); give the rule another id"))
    has_site = any("SITEID" in f.variable_names for f in study.forms.values())
    pattern = study.subject_id_pattern
    if pattern is None and any("SUBJID" in f.variable_names for f in study.forms.values()):
        problems.append(Problem("note", f"{toml}: [study] has no subject_id_pattern: subject numbers are not "
                                        "checked (e.g. subject_id_pattern = '^(?P<site>\\d{2})-\\d{3}$')"))
    elif pattern is not None and has_site and "(?P<site>" not in pattern:
        problems.append(Problem("note", f"{toml}: subject_id_pattern has no named group 'site': trialkit cannot "
                                        "tell a subject's site from its number"))
    if study.params.get("protocol") and not study.has_plugin("protocol"):
        problems.append(Problem("note", f"{toml}: [protocol] is not validated: declare [plugins] protocol = "
                                        "\"protocol.py\" with validate(section)"))
    if not study.arms:
        problems.append(Problem("note", f"{toml}: no [[arms]]: `trialkit pool --unblind` needs the study's arms"))
    for name in ("analysis", "demo", "report"):
        if not study.has_plugin(name):
            continue
        try:
            module = study.plugin(name)
        except StudyDefinitionError as exc:
            problems.append(Problem("error", str(exc)))
            continue
        wanted = {"analysis": "derive_datasets", "demo": "run_demo", "report": "sections"}[name]
        if not callable(getattr(module, wanted, None)):
            problems.append(Problem("error", f"{study.path}: the {name} plug-in defines no {wanted}()"))
            continue
        if name == "analysis":
            problems.extend(_try_analysis(study))
    return problems


def _try_analysis(study: Any) -> list[Problem]:
    """The analysis plug-in must run on a study with no data yet (an empty pool)."""
    from trialkit.study.plugins import derive_datasets

    try:
        derive_datasets(study, {})
    except Exception as exc:
        return [Problem("error", f"{study.path}: the analysis plug-in fails on a study with no data yet: "
                                 f"{type(exc).__name__}: {exc}")]
    return []
