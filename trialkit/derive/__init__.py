"""Generic derivation primitives (admiral style): dataset in, dataset out, columns as arguments.

One derivation per function, named verb-first: ``compute_*`` works on columns (Series in, Series
out), ``derive_*`` takes a frame and returns a new frame (the input is never modified). Every column
a primitive reads is an argument (``start="DOSESTDT"``), so the same primitive serves any study; the
study's own analysis programs (its ``analysis`` plug-in) call them with its variable names and
decide what is protocol. Nothing here knows a trial, a form or an endpoint.

Conventions:

- Study day: d − D1 + 1 when d ≥ D1, else d − D1 (no day 0).
- ``first_last`` frames are what :func:`derive_first_dose` returns: the subject key, ``TRTSDT``,
  ``TRTEDT``, ``D1`` and ``ONGOING``.
- Yes/no results are pandas ``boolean`` (True/False/NA): NA means undetermined. Record-level ADaM
  flags (``TRTEMFL``) are ``"Y"`` or NA.

Modules: :mod:`~trialkit.derive.dates` (study day, age, durations, partial dates),
:mod:`~trialkit.derive.exposure` (first/last dose, missed doses), :mod:`~trialkit.derive.measures`
(latest value on a date, daily records before a date), :mod:`~trialkit.derive.visits` (analysis
visits and windows), :mod:`~trialkit.derive.events` (treatment-emergent events).
"""

from __future__ import annotations

from trialkit.derive.dates import (
    MID_MONTH_DAY,
    compute_age_at,
    compute_duration_months,
    compute_duration_years,
    compute_study_day,
    date_of_study_day,
    impute_partial_date,
    parse_partial_date,
)
from trialkit.derive.events import derive_teae
from trialkit.derive.exposure import derive_exposure, derive_first_dose
from trialkit.derive.measures import derive_daily_window, derive_value_on
from trialkit.derive.util import is_y
from trialkit.derive.visits import UNSCHEDULED, derive_visit_window

__all__ = [
    "MID_MONTH_DAY",
    "UNSCHEDULED",
    "compute_age_at",
    "compute_duration_months",
    "compute_duration_years",
    "compute_study_day",
    "date_of_study_day",
    "derive_daily_window",
    "derive_exposure",
    "derive_first_dose",
    "derive_teae",
    "derive_value_on",
    "derive_visit_window",
    "impute_partial_date",
    "is_y",
    "parse_partial_date",
]
