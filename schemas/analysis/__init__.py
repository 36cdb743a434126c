"""ANK-SJIA-01's analysis programs: the study's ``analysis`` plug-in (ADSL, ADEFF, ADAE).

The engine calls :func:`derive_datasets` when it pools (``trialkit pool``) and when the report needs
the analysis data; see :mod:`trialkit.study.plugins` for the contract. Each dataset has its own
program, in the style of admiral's templates: ``adsl.py``, ``adeff.py``, ``adae.py``; what they share
is in ``common.py``, and this trial's own derivations (joint counts, CHAQ, dose window, prednisone
equivalent, fever-free status) are in ``derivations.py``. Every column is labelled
(``frame.attrs["labels"]``) and each dataset carries its label (``frame.attrs["dataset_label"]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from . import adae, adeff, adsl, common, derivations
from .adae import derive_adae
from .adeff import PARAMS, build_adeff, derive_adeff
from .adsl import adsl_core, derive_adsl
from .common import DATASET_LABELS, LABELS, apply_data_cut

__all__ = [
    "DATASET_LABELS",
    "LABELS",
    "PARAMS",
    "adae",
    "adeff",
    "adsl",
    "common",
    "derivations",
    "derive_adae",
    "derive_adeff",
    "derive_adsl",
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
    """The analysis datasets ``ADSL``, ``ADEFF`` and ``ADAE`` from validated forms.

    ``forms`` maps form codes to typed frames (``FormData.data``; a ``FormData`` is accepted too).
    ``randlist`` (``RANDNO``, ``ARM``) adds the unblinded ``ARM`` to ADSL — without it there is no
    ARM column at all. ``deviations`` (SUBJID and the deviation class) sets PPROTFL. With
    ``data_cut``, records dated after it are left out.
    """
    frames = apply_data_cut(forms, data_cut)
    core = adsl_core(study, frames, deviations)
    efficacy = build_adeff(study, frames, core)
    subjects = derive_adsl(study, frames, randlist=randlist, deviations=deviations, adeff=efficacy)
    events = derive_adae(study, frames, data_cut=data_cut)
    return {"ADSL": subjects, "ADEFF": efficacy, "ADAE": events}
