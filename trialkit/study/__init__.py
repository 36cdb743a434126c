"""Study definitions: what one trial is, loaded from a folder.

A study definition is a folder with:

- ``study.toml`` — the study (id, protocol version, subject numbering, contact), its sites with their
  date and decimal conventions, visits with target day and window, arms, the schedule of
  assessments, missing-value codes, units, codelists, the plug-ins below, and ``[protocol]``: the
  trial's own parameters, which only the study's own code reads (:mod:`trialkit.study.definition`);
- ``forms.py`` — one pandera ``DataFrameModel`` per case report form (see :mod:`trialkit.crf`),
  listed in ``FORMS``;
- rule files (``[plugins] rules``) — data checks and protocol-deviation rules (see
  :mod:`trialkit.rules`), each listing its rules in ``RULES``;
- optional plug-ins (:mod:`trialkit.study.plugins`): ``protocol`` (validates ``[protocol]``),
  ``analysis`` (the analysis datasets), ``demo`` (a synthetic study) and ``report`` (the trial's
  report sections).

The engine never imports a study by name: :func:`load_study` loads it from a path given by the
caller, the ``TRIALKIT_STUDY`` environment variable, or the bundled default. A definition with a
mistake raises :class:`StudyDefinitionError` naming the file, the key and the fix. A workspace binds
its study (:mod:`trialkit.study.binding`).

Heavy parts load on first use, so ``import trialkit.study`` stays cheap for ``trialkit --help``.
"""

from __future__ import annotations

import importlib
from typing import Any

from trialkit.study.paths import (
    ENV_STUDY,
    STUDY_FILE,
    StudyDefinitionError,
    bundled_study_path,
    resolve_study_path,
    study_folder,
)

_LAZY = {
    "Arm": "trialkit.study.model",
    "Form": "trialkit.study.model",
    "Site": "trialkit.study.model",
    "Study": "trialkit.study.model",
    "Variable": "trialkit.study.model",
    "Visit": "trialkit.study.model",
    "exact": "trialkit.study.model",
    "Codelist": "trialkit.study.definition",
    "read_definition": "trialkit.study.definition",
    "load_study": "trialkit.study.loader",
    "definition_hash": "trialkit.study.loader",
}

__all__ = [
    "ENV_STUDY",
    "STUDY_FILE",
    "StudyDefinitionError",
    "bundled_study_path",
    "resolve_study_path",
    "study_folder",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'trialkit.study' has no attribute {name!r}")
