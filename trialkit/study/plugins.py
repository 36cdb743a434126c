"""The plug-in points a study folder declares in ``[plugins]``, and how the engine calls them.

A study plugs its own code into the engine by naming files or folders of its study folder in
study.toml; the engine imports them from the study's private package (so relative imports inside a
plug-in work) and never by a trial's name. Every plug-in is optional: a study without it still runs
everything generic.

``forms`` (required, default ``forms.py``)
    ``FORMS``: the case report forms as pandera models (:mod:`trialkit.crf`).
``rules`` (list)
    files whose ``RULES`` list the data checks and protocol-deviation rules (:mod:`trialkit.rules`).
``protocol``
    ``validate(section: Mapping) -> Any`` — validates the study's own ``[protocol]`` section at load
    and returns the typed parameters, kept as ``study.protocol`` (raise ``ValueError`` or a pydantic
    ``ValidationError``; the engine reports it with the file and the keys).
``analysis``
    ``derive_datasets(study, forms, *, randlist=None, deviations=None, data_cut=None)
    -> {name: DataFrame}`` — the study's analysis datasets from the pooled, typed forms (form code ->
    frame). ``randlist`` is the unblinded randomization list (``RANDNO``, ``ARM``; only with
    ``trialkit pool --unblind``), ``deviations`` the deviation log (:func:`trialkit.deviationlog.log_frame`:
    ``SUBJID``, ``SITEID``, ``CODE``, ``class``, ``status`` …; only ``confirmed`` ones are established:
    the per-protocol population excludes subjects with a confirmed major deviation), ``data_cut`` the
    study-wide data cut (None when none is set). Each frame carries its variable labels in
    ``frame.attrs["labels"]`` and its dataset label in ``frame.attrs["dataset_label"]``; optionally its
    :class:`trialkit.metadata.DatasetMeta` in ``frame.attrs["metadata"]`` (origins, derivations,
    codelists, keys, parameters: what define.xml, Dataset-JSON, the codebook and the SAV/DTA value
    labels are made of — set it with :func:`trialkit.metadata.attach`). Names are upper case, at most 8
    characters. A study without it pools its forms only.
``demo``
    ``run_demo(folder, *, study, seed=None, progress=None, workers=None) -> trialkit.demo.DemoResult``
    — writes a synthetic study into ``folder`` and runs it through the pipeline (``trialkit demo``,
    usually with :func:`trialkit.demo.run_pipeline`, whose ``loop`` — a
    :class:`trialkit.demo.DataManagerLoop` — names the queries answered and closed and the
    deviations confirmed); ``DEFAULT_SEED`` is its default seed. Without it, ``trialkit demo`` exits 2 saying so.
``report``
    ``sections(context: trialkit.report.ReportContext) -> list[trialkit.report.Section]`` — the
    trial's own sections of the data-quality report, placed after the generic ones. Optional in
    it: ``READS = {dataset: (columns, ...)}`` (what the sections read from the pooled datasets; an
    arm column is never read) and ``subjects(context) -> DataFrame`` (one row per subject with
    ``SITEID``, ``SUBJID`` and any of ``ENRLDT`` enrolment date, ``FIRSTDT`` day 1, ``LASTDT`` last
    dose, ``ENDDT`` end of participation, ``ENDED`` Y/N), which the generic enrolment and
    missing-data sections use instead of their form-only estimates.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from trialkit.errors import UsageError
from trialkit.study.paths import StudyDefinitionError

PLUGINS = ("forms", "rules", "protocol", "analysis", "demo", "report")
_DATASET_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,7}$")


def _function(study: Any, plugin: str, name: str) -> tuple[ModuleType, Any] | None:
    module = study.plugin(plugin)
    if module is None:
        return None
    function = getattr(module, name, None)
    if not callable(function):
        declared = study.params.get("plugins", {}).get(plugin)
        raise StudyDefinitionError(
            f"{Path(study.path) / str(declared)}: the {plugin} plug-in defines no {name}(); see "
            "trialkit.study.plugins for the contract"
        )
    return module, function


def derive_datasets(
    study: Any,
    forms: Mapping[str, Any],
    *,
    randlist: Any = None,
    deviations: Any = None,
    data_cut: Any = None,
) -> dict[str, Any]:
    """The study's analysis datasets (its ``analysis`` plug-in), or ``{}`` when it has none.

    Raises :class:`StudyDefinitionError` when the plug-in breaks its contract (not a mapping of
    upper-case names of at most 8 characters to data frames).

    >>> from trialkit.study import load_study
    >>> sorted(derive_datasets(load_study(), {}))
    ['ADAE', 'ADEFF', 'ADLB', 'ADSL', 'ADTTE']
    """
    found = _function(study, "analysis", "derive_datasets")
    if found is None:
        if randlist is not None:
            raise UsageError(
                f"{study.id} has no analysis programs ([plugins] analysis in study.toml), so there is no "
                "dataset to carry the arm; pool without --unblind"
            )
        return {}
    _, function = found
    result = function(study, forms, randlist=randlist, deviations=deviations, data_cut=data_cut)
    import pandas as pd

    if not isinstance(result, Mapping):
        raise StudyDefinitionError(f"{study.path}: the analysis plug-in returned {type(result).__name__}, "
                                   "not {name: DataFrame}")
    for name, frame in result.items():
        if not isinstance(name, str) or not _DATASET_NAME.match(name):
            raise StudyDefinitionError(f"{study.path}: analysis dataset name {name!r} is not upper case with at "
                                       "most 8 characters (SAS transport)")
        if not isinstance(frame, pd.DataFrame):
            raise StudyDefinitionError(f"{study.path}: analysis dataset {name} is {type(frame).__name__}, "
                                       "not a DataFrame")
    return dict(result)


def demo_runner(study: Any) -> tuple[Any, int | None]:
    """``(run_demo, DEFAULT_SEED)`` of the study's demo plug-in; UsageError when it has none."""
    found = _function(study, "demo", "run_demo")
    if found is None:
        raise UsageError(
            f"{study.id} has no demo ([plugins] demo in {Path(study.path) / 'study.toml'}); "
            "`trialkit demo` needs a study that brings a synthetic-data generator"
        )
    module, function = found
    seed = getattr(module, "DEFAULT_SEED", None)
    return function, seed


def report_plugin(study: Any) -> ModuleType | None:
    """The study's report plug-in module (its trial sections), or None."""
    found = _function(study, "report", "sections")
    return None if found is None else found[0]
