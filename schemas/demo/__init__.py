"""ANK-SJIA-01's demo: a seeded synthetic trial, sent the way sites send data — the ``demo`` plug-in.

:func:`run_demo` generates every site of the study's site table (``generator.py``), plants a known
set of problems with their answer key (``plants.py``) and hands the uploads to the engine's
:func:`trialkit.demo.run_pipeline`, which writes them the way the sites send them (filled templates
in each site's date order and decimal mark, US units where a site uses them, site 07 as SAS transport
files, site 05 as ``;``-separated CSV, corrected re-uploads), submits them to a workspace bound to
the study, pools, writes the report and the query workbooks. Info-level findings (recorded
normalisations) are part of reading real uploads and are not in the answer key; any warning or error
that is not in the key is a defect of the demo or of a rule.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from trialkit.demo import DemoResult, Progress, run_pipeline

from .generator import DATA_CUT
from .plants import build_uploads

DEFAULT_SEED = 20261125
TODAY = dt.date(2025, 10, 15)  # "today" for validation: fixed, so the demo never depends on the day
FIRST_SUBMISSION = dt.datetime(2025, 10, 1, 9, 0, tzinfo=dt.UTC)
OPERATOR = "demo.datamanager"
POOL_FORMATS = ("parquet", "csv", "xpt")

__all__ = ["DATA_CUT", "DEFAULT_SEED", "TODAY", "build_uploads", "run_demo"]


def run_demo(folder: str | Path, *, study: Any, seed: int | None = None, progress: Progress | None = None,
             workers: int | None = None) -> DemoResult:
    """Generate the demo study into ``folder`` and run it through the whole pipeline.

    Example::

        >>> result = run_demo(tmp_path / "demo", study=load_study())  # doctest: +SKIP
        >>> result.statuses["02"]  # doctest: +SKIP
        'accepted'
    """
    seed = DEFAULT_SEED if seed is None else seed
    if progress is not None:
        progress("generating the study", 0, 1)
    uploads, problems, generator = build_uploads(study, seed)
    return run_pipeline(study, folder, uploads, problems, seed=seed, data_cut=DATA_CUT, today=TODAY,
                        first_submission=FIRST_SUBMISSION, operator=OPERATOR, pool_formats=POOL_FORMATS,
                        subjects=len(generator.meta), progress=progress, workers=workers)
