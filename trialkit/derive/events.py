"""Events: the treatment-emergent flag, study day of onset and duration of adverse events."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from trialkit.derive.dates import as_dates, compute_study_day
from trialkit.derive.util import anchors, subject_lookup

__all__ = ["derive_teae"]


def derive_teae(
    ae: pd.DataFrame,
    first_last: pd.DataFrame,
    *,
    start: str,
    end: str | None = None,
    days_after_last_dose: int | None = None,
    data_cut: Any = None,
    by: str = "SUBJID",
) -> pd.DataFrame:
    """Treatment-emergent flag ``TRTEMFL``, study day of onset ``ASTDY`` and duration ``ADURN``.

    ``TRTEMFL`` = "Y" when the event starts on or after the first dose (D1 of ``first_last``) and —
    with ``days_after_last_dose`` — no later than that many days after the last dose (TRTEDT). A
    subject still dosing has no last dose yet: any event from the first dose counts. Still dosing
    means ``first_last["ONGOING"]`` is true (an open dosing period, :func:`derive_first_dose`) or,
    with ``data_cut``, the last dose is on or after the data cut. Otherwise NA (ADaM record-level
    flag; also NA for a subject never dosed). ``ASTDY`` = study day of the start; ``ADURN`` = end −
    start + 1 days (Int64; NA while ongoing or without an end).

    >>> fl = pd.DataFrame({"SUBJID": ["S1"], "D1": pd.to_datetime(["2024-01-10"]),
    ...     "TRTEDT": pd.to_datetime(["2024-02-10"]), "ONGOING": [False]})
    >>> ae = pd.DataFrame({"SUBJID": ["S1"] * 3,
    ...     "ONSET": pd.to_datetime(["2024-01-09", "2024-01-10", "2024-03-15"]),
    ...     "STOP": pd.to_datetime(["2024-01-09", None, "2024-03-16"])})
    >>> derive_teae(ae, fl, start="ONSET", end="STOP", days_after_last_dose=28)[["TRTEMFL", "ASTDY", "ADURN"]].values.tolist()
    [[<NA>, -1, 1], ['Y', 1, <NA>], [<NA>, 66, 2]]
    """
    dates = anchors(first_last)
    out = ae.copy()
    onset = as_dates(ae[start])
    stop = as_dates(ae[end]) if end is not None and end in ae else pd.Series(pd.NaT, index=ae.index)
    d1 = as_dates(subject_lookup(ae, dates, "D1", by=by))
    emergent = (onset >= d1).fillna(False).to_numpy(dtype=bool).copy()
    if days_after_last_dose is not None:
        last = as_dates(subject_lookup(ae, dates, "TRTEDT", by=by))
        if "ONGOING" in dates.columns:
            ongoing = subject_lookup(ae, dates, "ONGOING", by=by).astype("boolean").fillna(False).to_numpy(dtype=bool).copy()
        else:
            ongoing = np.zeros(len(ae), dtype=bool)
        if data_cut is not None:
            ongoing |= (last >= pd.Timestamp(data_cut)).fillna(False).to_numpy(dtype=bool)
        limit = last + pd.Timedelta(days=days_after_last_dose)
        within = (onset <= limit).fillna(False).to_numpy(dtype=bool)
        emergent &= ongoing | within
    flag = pd.Series(np.where(emergent, "Y", None), index=out.index, dtype=object)
    out["TRTEMFL"] = flag.where(flag.notna(), pd.NA)
    out["ASTDY"] = compute_study_day(onset, d1)
    out["ADURN"] = ((stop - onset).dt.days + 1).astype("Int64")
    return out
