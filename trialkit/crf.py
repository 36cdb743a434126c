"""Building blocks for writing a study's case report forms as pandera models.

A study definition's ``forms.py`` declares each form as a :class:`pandera.pandas.DataFrameModel`
whose fields are made with :func:`var`. ``var`` turns the CRF vocabulary of a protocol (label, type,
unit, codelist, range, decimals, required or conditionally required) into a pandera ``Field`` — the
checks pandera runs — plus field metadata that the engine reads back for templates, the data
dictionary, importers and findings. The CRF types are:

========  =====================================  ==========================
type      meaning                                pandas dtype after import
========  =====================================  ==========================
char      text                                   ``str``
int       whole number                           ``Int64`` (nullable)
num       decimal number                         ``float64``
date      full date                              ``datetime64``
pdate     partial date YYYY, YYYY-MM, YYYY-MM-DD  ``str``
yn        ``Y`` / ``N``                          ``str``
========  =====================================  ==========================

Importers convert every value to these dtypes themselves (reporting what they could not convert),
so pandera never coerces.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from trialkit.study.definition import Codelist, StudyDefinition, read_definition

CRF_TYPES = ("char", "int", "num", "date", "pdate", "yn")

# Series annotations for each CRF type, used in forms.py as ``NAME: Num = var(...)``.
Char = Series[str]
Int = Series[pd.Int64Dtype]
Num = Series[float]
Date = Series[pa.DateTime]
PDate = Series[str]
YN = Series[str]

ANNOTATION_OF_TYPE = {"char": Char, "int": Int, "num": Num, "date": Date, "pdate": PDate, "yn": YN}

PDATE_PATTERNS = {
    "YYYY": r"\d{4}",
    "YYYY-MM": r"\d{4}-(0[1-9]|1[0-2])",
    "YYYY-MM-DD": r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])",
}


def max_decimals(values: pd.Series, *, places: int) -> pd.Series:
    """True where a number has at most ``places`` decimals (checked on the decimal text)."""
    scaled = values.astype(float) * (10**places)
    return (scaled - scaled.round()).abs() < 1e-6


def decimals_check(places: int) -> pa.Check:
    """The pandera check of ``var(..., decimals=places)``, named ``max_decimals``.

    :func:`with_crf_checks` adds it to a form's schema. It is not registered as a ``Check`` method
    (pandera's extension registry imports its data-generation strategies, and with them
    ``hypothesis`` where it is installed: about 0.15 s on every command that loads a study).
    """
    return pa.Check(partial(max_decimals, places=places), name="max_decimals",  # a partial pickles
                    statistics={"places": places}, error=f"max_decimals(places={places})")


def with_crf_checks(schema: pa.DataFrameSchema) -> pa.DataFrameSchema:
    """``schema`` (a form model's) with the checks that ``var`` keeps in its metadata: decimals."""
    updates = {}
    for name, column in schema.columns.items():
        places = (column.metadata or {}).get("decimals")
        if places is not None:
            updates[name] = {"checks": [*column.checks, decimals_check(places)]}
    return schema.update_columns(updates) if updates else schema


def read_codelists(toml_path: str | Path) -> dict[str, Codelist]:
    """The codelists of a study's ``study.toml``: the ``[codelists.*]`` tables and the ``SITEID`` and
    ``VISIT`` lists generated from the site and visit tables (see :mod:`trialkit.study.definition`)."""
    return read_definition(toml_path).codelists


def read_study_definition(toml_path: str | Path) -> StudyDefinition:
    """The validated ``study.toml`` a ``forms.py`` is written against (codelists, subject id pattern)."""
    return read_definition(toml_path)


def var(
    label: str,
    type: str,
    *,
    required: bool = False,
    required_if: str | None = None,
    unit: str | None = None,
    unit_var: str | None = None,
    codelist: Codelist | None = None,
    min: float | int | None = None,
    max: float | int | None = None,
    decimals: int | None = None,
    pdate_formats: Iterable[str] = ("YYYY", "YYYY-MM", "YYYY-MM-DD"),
    unique: bool = False,
    derived: bool = False,
    short_label: str | None = None,
    description: str | None = None,
    censored: bool = False,
    censor_var: str | None = None,
    birth: bool = False,
) -> Any:
    """A CRF variable as a pandera ``Field``.

    ``label`` becomes the field's title; the rest is both a pandera check and metadata:

    - ``required``: the value must be present whenever the record exists (a typed missing-value
      code such as ND counts as present: the validator knows the reason).
    - ``required_if``: a human description of a conditional requirement; the condition itself is a
      ``@pa.dataframe_check`` on the model named ``required:VAR``.
    - ``codelist``: allowed codes (``isin``); ``min``/``max``: inclusive range after unit
      conversion; ``decimals``: at most that many decimals; ``pdate_formats``: allowed shapes of a
      partial date.
    - ``short_label``: the label in SAS transport files (at most 40 bytes, ASCII); required when
      ``label`` is longer, so no export ever truncates a label silently.
    - ``derived``: filled by trialkit on import (e.g. a lab result in the standard unit), never
      typed by a site, so it is left out of upload templates.
    - ``censored``: a number that may be typed as a limit (``<1``, ``< 0.5``, ``>500``, ``≤0.3``,
      ``>=2``): the value is the limit and the operator (``<``, ``<=``, ``>``, ``>=``) goes to the
      derived text variable ``censor_var`` of the same form.
    - ``birth``: part of a date of birth. Such a variable may hold a year and month at most; a value
      with a day is a direct identifier and refuses the upload (:mod:`trialkit.privacy`).

    Example::

        SEX: Char = var("Sex", "char", required=True, codelist=CL["SEX"])
    """
    if type not in CRF_TYPES:
        raise ValueError(f"unknown CRF type {type!r} for variable {label!r}; use one of {CRF_TYPES}")
    checks: dict[str, Any] = {}
    if codelist is not None:
        checks["isin"] = codelist.codes
    if type == "yn":
        checks["isin"] = ["Y", "N"]
    if min is not None:
        checks["ge"] = min
    if max is not None:
        checks["le"] = max
    # decimals: a check added to the form's schema by with_crf_checks (see decimals_check)
    formats = tuple(pdate_formats)
    if type == "pdate":
        pattern = "|".join(PDATE_PATTERNS[f] for f in formats)
        checks["str_matches"] = f"^(?:{pattern})$"
    metadata = {
        "type": type,
        "required": required,
        "required_if": required_if,
        "unit": unit,
        "unit_var": unit_var,
        "codelist": codelist.name if codelist is not None else ("YN" if type == "yn" else None),
        "min": min,
        "max": max,
        "decimals": decimals,
        "pdate_formats": list(formats) if type == "pdate" else None,
        "derived": derived,
        "short_label": short_label,
        "censored": censored,
        "censor_var": censor_var,
        "birth": birth,
    }
    return pa.Field(
        nullable=not required,
        title=label,
        description=description,
        metadata=metadata,
        unique=unique,
        **checks,
    )


def require(frame: pd.DataFrame, variable: str, when: pd.Series) -> pd.Series:
    """Row mask for a conditional requirement: ``variable`` must be present where ``when`` holds.

    Used in a form's ``@pa.dataframe_check(name="required:VAR")``; missing conditions count as
    false so that an unknown condition never raises a requirement on its own.
    """
    condition = when.fillna(False).astype(bool)
    return frame[variable].notna() | ~condition


def keys_unique(frame: pd.DataFrame, keys: Iterable[str], repeatable_visit: str | None = None) -> pd.Series:
    """Row mask: True where the record's key values are not shared with another record.

    Records with a missing key value are left to the required checks. ``repeatable_visit`` names a
    visit code (unscheduled visits) that may occur more than once per subject.
    """
    keys = [k for k in keys if k in frame.columns]
    dup = frame.duplicated(subset=keys, keep=False) & frame[keys].notna().all(axis=1)
    if repeatable_visit is not None and "VISIT" in frame.columns:
        dup &= frame["VISIT"].ne(repeatable_visit).fillna(True)
    return ~dup
