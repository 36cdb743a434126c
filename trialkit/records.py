"""What a submission holds, record by record: every form's records by key, with a content hash.

When a submission is recorded, the ledger keeps for each form it holds the number of rows, the
subjects, and for every record its key — the form's declared key variables (``SUBJID``, ``VISIT`` …)
plus an occurrence number, because keys legitimately repeat (two unscheduled visits of one subject)
— and a hash of the record's content. That is what lets trialkit tell, without re-reading any file,
which records an upload would remove from the site's current data, what pool must find again when it
re-imports the archive, and which records a later upload added, removed or changed
(:mod:`trialkit.diff`).

Keys and hashes are built from the typed values the importer returns (a date typed ``03/04/2024`` at
one site and ``2024-04-03`` at another is the same date), so re-typing a value the same way is no
change. The content hash is the first 32 hexadecimal digits (128 bits) of the sha256 of the record's
variables and values, missing-value codes (``ND``/``NK``/``NA``) included.

Example::

    >>> import pandas as pd
    >>> from trialkit.importers.base import FormData
    >>> data = pd.DataFrame({"SUBJID": ["01-001", "01-001"], "VISIT": ["V2", "V2"], "HR": [80, 82]})
    >>> form = FormData("VS", data, data.astype(str), data.map(lambda v: pd.NA), data)
    >>> records = form_records(form, ("SUBJID", "VISIT"))
    >>> records.keys
    ('["01-001","V2",1]', '["01-001","V2",2]')
    >>> key_label(records.keys[1])
    '01-001 · V2 · #2'
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

HASH_CHARS = 32
SUBJECT_VARIABLE = "SUBJID"


@dataclass(frozen=True)
class FormRecords:
    """One form's records in one submission: keys (JSON text, upload order), hashes and subjects."""

    form: str
    key_variables: tuple[str, ...]
    keys: tuple[str, ...]
    hashes: tuple[str, ...]
    subjects: tuple[str | None, ...]

    @property
    def rows(self) -> int:
        """Number of records."""
        return len(self.keys)

    @property
    def subject_ids(self) -> list[str]:
        """The distinct subjects, sorted."""
        return sorted({s for s in self.subjects if s})

    def by_key(self) -> dict[str, tuple[str, str | None]]:
        """``{key: (hash, subject)}``."""
        return {k: (h, s) for k, h, s in zip(self.keys, self.hashes, self.subjects, strict=True)}


@dataclass(frozen=True)
class SubmissionRecords:
    """The records of every form a submission holds (empty when no form was recognised)."""

    forms: dict[str, FormRecords] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.forms)


def cell_text(value: Any) -> str | None:
    """A typed value as canonical text (None when missing): dates ISO, numbers as Python prints them.

    >>> cell_text(30.5), cell_text(dt.datetime(2024, 4, 3)), cell_text(float("nan"))
    ('30.5', '2024-04-03', None)
    """
    import numpy as np
    import pandas as pd

    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    elif isinstance(value, np.generic):
        value = value.item()
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime):
        if (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0):
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def column_texts(series: Any) -> list[str | None]:
    """Canonical text of every value of a column (each distinct value converted once)."""
    import pandas as pd

    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    texts = [cell_text(u) for u in uniques]
    return [texts[c] if c >= 0 else None for c in codes]


def form_records(form_data: Any, key_variables: Sequence[str]) -> FormRecords:
    """Keys, content hashes and subjects of one form's imported records (``FormData``)."""
    data = form_data.data
    reasons = getattr(form_data, "reasons", None)
    columns = sorted(str(c) for c in data.columns)
    texts = {c: column_texts(data[c]) for c in columns}
    reason_texts = {}
    if reasons is not None:
        for column in columns:
            if column in reasons.columns:
                values = column_texts(reasons[column])
                if any(v is not None for v in values):
                    reason_texts[column] = values
    present_keys = [k for k in key_variables if k in texts]
    subject_column = SUBJECT_VARIABLE if SUBJECT_VARIABLE in texts else (present_keys[0] if present_keys else None)
    n = len(data)
    seen: dict[tuple[str | None, ...], int] = {}
    keys: list[str] = []
    for key_values in (zip(*(texts[k] for k in present_keys), strict=True) if present_keys else [()] * n):
        occurrence = seen.get(key_values, 0) + 1
        seen[key_values] = occurrence
        keys.append(json.dumps([*key_values, occurrence], ensure_ascii=False, separators=(",", ":")))
    # Each record's content: "VAR\x1fvalue" of every filled variable, or "VAR\x1f\x00REASON" when the
    # value is missing for a reason, in variable order, joined by \x1e; built column by column.
    parts_by_column = []
    for column in columns:
        prefix = f"{column}\x1f"
        reasons_of = reason_texts.get(column)
        if reasons_of is None:
            parts_by_column.append([None if v is None else prefix + v for v in texts[column]])
        else:
            parts_by_column.append([prefix + v if v is not None else (None if r is None else f"{prefix}\x00{r}")
                                    for v, r in zip(texts[column], reasons_of, strict=True)])
    rows = zip(*parts_by_column, strict=True) if parts_by_column else [()] * n
    hashes = [hashlib.sha256("\x1e".join([p for p in row if p is not None]).encode("utf-8")).hexdigest()[:HASH_CHARS]
              for row in rows]
    subjects = list(texts[subject_column]) if subject_column else [None] * n
    return FormRecords(form=str(form_data.form), key_variables=tuple(present_keys), keys=tuple(keys),
                       hashes=tuple(hashes), subjects=tuple(subjects))


def submission_records(forms: Mapping[str, Any], study: Any) -> SubmissionRecords:
    """The records of every imported form (``{code: FormData}``), keyed by the study's form keys.

    Forms the study does not define are left out (they cannot be current data of any site).
    """
    result: dict[str, FormRecords] = {}
    for code, form_data in forms.items():
        if code not in study.forms:
            continue
        result[code] = form_records(form_data, study.forms[code].keys)
    return SubmissionRecords(result)


def records_of_files(paths: Iterable[Any], study: Any, site: str | None) -> SubmissionRecords:
    """Import files and summarise their records (what :meth:`Workspace.submit` does when it is not
    given the records of an import it did not see)."""
    from trialkit.importers.reader import import_files

    return submission_records(import_files(list(paths), study, site=site).forms, study)


def key_values(key: str) -> list[Any]:
    """The values of a record key (the last one is the occurrence number)."""
    return list(json.loads(key))


def key_label(key: str) -> str:
    """A record key as a person reads it: ``01-001 · V2`` (``· #2`` for a repeated key)."""
    values = key_values(key)
    *parts, occurrence = values
    shown = [("∅" if p is None else str(p)) for p in parts]
    if occurrence != 1:
        shown.append(f"#{occurrence}")
    return " · ".join(shown) or f"record {occurrence}"
