"""Missing-value reasons of the pooled forms: every ``ND``/``NK``/``NA`` a site typed, as a long dataset.

A value typed as a missing-value code is missing in the typed form (a number cannot hold "not
done"), and the importer keeps the code in :attr:`trialkit.importers.base.FormData.reasons`. So that
a reason survives every output format — Parquet, CSV, SAS transport, SPSS, Stata, Dataset-JSON —
the pool writes it as its own dataset beside the forms (:data:`DATASET`), one row per coded cell,
keyed like the form record it belongs to:

======== ==========================================================================
SITEID   the site
SUBJID   the subject
FORM     the form code
VISIT    the record's visit (empty for a form without visits)
RECKEY   the record's other key values, ``VAR=value`` joined by ``; `` (e.g. ``LBTESTCD=ESR``)
VARIABLE the variable the site left without a value
REASON   the code the site typed (value labels: the study's ``[missing_codes]``)
REASONDC what the code means (``Not done``), so that a reader that takes the text ``NA`` for a
         missing value (pandas and R read CSV that way by default) still sees the reason
======== ==========================================================================

Join it to a form on SITEID, SUBJID, VISIT and the key values to put a reason beside a blank.
Nothing here knows a trial: the form keys and the missing codes come from the study definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from trialkit.metadata import DatasetMeta, VariableMeta, attach

__all__ = ["COLUMNS", "DATASET", "missing_reasons"]

#: The name of the reasons dataset in a pooled output set (file ``reasons.<format>``).
DATASET = "reasons"
COLUMNS = ("SITEID", "SUBJID", "FORM", "VISIT", "RECKEY", "VARIABLE", "REASON", "REASONDC")
_SITE, _SUBJECT, _VISIT = "SITEID", "SUBJID", "VISIT"


def _text(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d") if value == value.normalize() else value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def metadata(study: Any) -> DatasetMeta:
    """The :class:`~trialkit.metadata.DatasetMeta` of the reasons dataset for ``study``."""
    forms = {code: form.label for code, form in study.forms.items()}
    codes = dict(study.missing_codes)
    variables = (
        VariableMeta("SITEID", "Study Site Identifier", "Collected"),
        VariableMeta("SUBJID", "Subject Identifier for the Study", "Collected"),
        VariableMeta("FORM", "Form of the record", "Assigned", "The form the record belongs to.",
                     codelist=forms, codelist_name="FORM"),
        VariableMeta("VISIT", "Visit of the record", "Collected", source="VISIT"),
        VariableMeta("RECKEY", "Other key values of the record", "Derived",
                     "The record's key variables other than SUBJID and VISIT, as VAR=value joined by '; '."),
        VariableMeta("VARIABLE", "Variable given as a missing-value code", "Assigned",
                     "The name of the variable whose cell held the code."),
        VariableMeta("REASON", "Missing-value reason as typed", "Collected",
                     codelist=codes, codelist_name="MISSING_CODES"),
        VariableMeta("REASONDC", "Missing-value reason (decode)", "Derived",
                     "The meaning of REASON in the study's [missing_codes] (e.g. ND = Not done)."),
    )
    return DatasetMeta(
        name="REASONS", label="Missing-Value Reasons (ND/NK/NA)",
        structure="One record per form cell typed as a missing-value code",
        keys=("SITEID", "SUBJID", "FORM", "VISIT", "RECKEY", "VARIABLE"), variables=variables,
        purpose="Tabulation",
        description=("Every cell a site typed as a missing-value code (" + ", ".join(f"{c} = {t}" for c, t in codes.items())
                     + ") instead of a value; the form holds a blank there. Join on SITEID, SUBJID, VISIT and the "
                     "key values in RECKEY to put the reason beside the blank."),
    )


def missing_reasons(per_site: Mapping[str, Mapping[str, Any]], study: Any) -> pd.DataFrame:
    """The reasons dataset of pooled forms (``{site: {form code: FormData}}``), with its metadata.

    Sorted by SITEID, SUBJID, FORM (in the study's form order), VISIT, RECKEY and VARIABLE.
    """
    order = {code: number for number, code in enumerate(study.forms)}
    rows: list[tuple] = []
    for site in sorted(per_site):
        for code, form_data in per_site[site].items():
            reasons = getattr(form_data, "reasons", None)
            if reasons is None or reasons.empty:
                continue
            coded = reasons.stack(future_stack=True).dropna() if len(reasons.columns) else pd.Series(dtype=object)
            if coded.empty:
                continue
            data = form_data.data
            keys = [k for k in (study.forms[code].keys if code in study.forms else ()) if k not in (_SUBJECT, _VISIT)]
            for (index, variable), reason in coded.items():
                record = data.loc[index]
                rows.append((
                    _text(record.get(_SITE)) or site,
                    _text(record.get(_SUBJECT)),
                    code,
                    _text(record.get(_VISIT)) if _VISIT in data.columns else "",
                    "; ".join(f"{k}={_text(record.get(k))}" for k in keys if k != variable),
                    str(variable),
                    str(reason),
                    str(study.missing_codes.get(str(reason), "")),
                ))
    frame = pd.DataFrame(rows, columns=list(COLUMNS), dtype=object)
    frame["_ORDER"] = frame["FORM"].map(order).fillna(len(order))
    frame = frame.sort_values(["SITEID", "SUBJID", "_ORDER", "VISIT", "RECKEY", "VARIABLE"], kind="stable")
    frame = frame.drop(columns="_ORDER").reset_index(drop=True)
    for column in COLUMNS:
        frame[column] = frame[column].astype(object).where(frame[column].ne(""), None)
    return attach(frame, metadata(study))
