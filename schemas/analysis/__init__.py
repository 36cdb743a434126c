"""ANK-SJIA-01's analysis programs: the study's ``analysis`` plug-in (ADSL, ADEFF, ADAE, ADLB, ADTTE).

The engine calls :func:`derive_datasets` when it pools (``trialkit pool``) and when the report needs
the analysis data; see :mod:`trialkit.study.plugins` for the contract. Each dataset has its own
program, in the style of admiral's templates: ``adsl.py``, ``adeff.py``, ``adae.py``, ``adlb.py``,
``adtte.py``; what they share is in ``common.py`` (including the metadata of every variable: label,
origin, derivation, codelist), and this trial's own derivations (joint counts, CHAQ, dose window,
prednisone equivalent, fever-free status, NSAIDs, MAS) are in ``derivations.py``. Every frame carries
its :class:`trialkit.metadata.DatasetMeta` (``frame.attrs["metadata"]``), from which the pool writes
the labels, value labels, codebook and define.xml.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from . import adae, adeff, adlb, adsl, adtte, common, derivations
from .adae import derive_adae
from .adeff import PARAMETERS, PARAMS, build_adeff, derive_adeff
from .adlb import derive_adlb
from .adsl import adsl_core, derive_adsl
from .adtte import derive_adtte
from .common import DATASET_LABELS, LABELS, apply_data_cut, effective_data_cut

__all__ = [
    "DATASET_LABELS",
    "LABELS",
    "PARAMETERS",
    "PARAMS",
    "adae",
    "adeff",
    "adlb",
    "adsl",
    "adtte",
    "common",
    "derivations",
    "derive_adae",
    "derive_adeff",
    "derive_adlb",
    "derive_adsl",
    "derive_adtte",
    "derive_datasets",
]


def derive_datasets(
    study: Any,
    forms: Mapping[str, pd.DataFrame],
    *,
    randlist: pd.DataFrame | None = None,
    deviations: pd.DataFrame | None = None,
    data_cut: Any = None,
) -> dict[str, pd.DataFrame]:
    """The analysis datasets ``ADSL``, ``ADEFF``, ``ADAE``, ``ADLB`` and ``ADTTE`` from validated forms.

    ``forms`` maps form codes to typed frames (``FormData.data``; a ``FormData`` is accepted too).
    ``randlist`` (``RANDNO``, ``ARM``) adds the treatment variables (ADSL ARM, TRT01P/TRT01A,
    TRT02P/TRT02A and their numbers; ADAE TRTA/TRTAN) — without it there is no arm column at all.
    ``deviations`` (SUBJID, the deviation class and, from the deviation log, its ``status``) sets
    PPROTFL. With ``data_cut``, records dated after it are left out; without one, the latest date
    of the forms is the data cut (ADSL DCUTDT).
    """
    frames = apply_data_cut(forms, data_cut)
    cut = effective_data_cut(frames, data_cut)
    core = adsl_core(study, frames, deviations, data_cut=cut)
    efficacy = build_adeff(study, frames, core, data_cut=cut)
    subjects = derive_adsl(study, frames, randlist=randlist, deviations=deviations, data_cut=cut, adeff=efficacy)
    events = derive_adae(study, frames, data_cut=cut, adsl=subjects)
    labs = derive_adlb(study, frames, data_cut=cut, adsl=subjects)
    times = derive_adtte(study, frames, data_cut=cut, adsl=subjects)
    return {"ADSL": subjects, "ADEFF": efficacy, "ADAE": events, "ADLB": labs, "ADTTE": times}
