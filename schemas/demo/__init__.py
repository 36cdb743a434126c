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

from trialkit.demo import (
    Answer,
    DataManagerLoop,
    Decision,
    DemoResult,
    Pick,
    Problem,
    Progress,
    run_pipeline,
)

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
                        subjects=len(generator.meta), progress=progress, workers=workers,
                        loop=data_manager_loop(problems))


def data_manager_loop(problems: list[Problem]) -> DataManagerLoop:
    """A day in the data manager's loop, on planted problems of the answer key:

    - Milan answers its DC-14 query (a 25 % weight jump) in its query workbook — "confirmed as is",
      re-measured — and the data manager closes it in the same workbook;
    - the SAE site 06 reported to the sponsor 5 days late (PD-12, major) is a fact of the trial: the
      data manager confirms it, which closes its query and takes the subject out of the
      per-protocol population;
    - site 03's PD-01 was a typing slip that its corrected re-upload resolved: it stays in the
      deviation log, resolved.
    """

    def planted(site: str, code: str) -> Problem:
        return next(p for p in problems if p.site == site and p.code == code)

    weight, late, slip = planted("01", "DC-14"), planted("06", "PD-12"), planted("03", "PD-01")
    return DataManagerLoop(
        answers=[Answer(
            Pick("01", "DC-14", weight.subject), response="confirmed as is",
            comment="weighed again on the calibrated clinic scale: the value is right (the child grew)",
            responded_by="Milan study nurse", response_date=TODAY - dt.timedelta(days=2),
            close_reason="confirmed at source by the site (SITE_COMMENT); no change needed")],
        decisions=[Decision(
            Pick("06", "PD-12", late.subject),
            reason="SAE reported to the sponsor 5 days after the site became aware; confirmed with the site, "
                   "which was retrained on SAE reporting")],
        resolved=[Pick("03", "PD-01", slip.subject)],
    )
