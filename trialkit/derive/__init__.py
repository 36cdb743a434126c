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
:mod:`~trialkit.derive.exposure` (first/last dose, ongoing treatment, missed doses),
:mod:`~trialkit.derive.measures` (latest value on a date, daily records before a date),
:mod:`~trialkit.derive.visits` (analysis visits and windows), :mod:`~trialkit.derive.events`
(treatment-emergent events), :mod:`~trialkit.derive.bds` (baseline, change, reference range
indicator of parameter-per-row datasets), :mod:`~trialkit.derive.tte` (time-to-event parameters).
"""

from __future__ import annotations

from trialkit.derive.bds import (
    derive_var_ablfl,
    derive_var_anrind,
    derive_var_base,
    derive_var_chg,
    derive_var_pchg,
    drop_empty_records,
)
from trialkit.derive.dates import (
    MID_MONTH_DAY,
    compute_age_at,
    compute_duration_months,
    compute_duration_years,
    compute_study_day,
    date_of_study_day,
    impute_partial_date,
    impute_start_date,
    parse_partial_date,
)
from trialkit.derive.events import derive_teae
from trialkit.derive.exposure import derive_exposure, derive_first_dose, derive_treatment_dates
from trialkit.derive.measures import derive_daily_window, derive_value_on
from trialkit.derive.tte import TTESource, derive_param_tte
from trialkit.derive.util import is_y
from trialkit.derive.visits import UNSCHEDULED, derive_visit_window

__all__ = [
    "MID_MONTH_DAY",
    "UNSCHEDULED",
    "TTESource",
    "compute_age_at",
    "compute_duration_months",
    "compute_duration_years",
    "compute_study_day",
    "date_of_study_day",
    "derive_daily_window",
    "derive_exposure",
    "derive_first_dose",
    "derive_param_tte",
    "derive_teae",
    "derive_treatment_dates",
    "derive_var_ablfl",
    "derive_var_anrind",
    "derive_var_base",
    "derive_var_chg",
    "derive_var_pchg",
    "derive_value_on",
    "derive_visit_window",
    "drop_empty_records",
    "impute_partial_date",
    "impute_start_date",
    "is_y",
    "parse_partial_date",
]
