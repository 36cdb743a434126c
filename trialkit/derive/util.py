"""Small helpers shared by the derivations (not part of the public primitives)."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from trialkit.derive.dates import as_dates


def subject_lookup(frame: pd.DataFrame, lookup: pd.DataFrame, column: str, *, by: str = "SUBJID") -> pd.Series:
    """``lookup[column]`` for each row of ``frame``, matched on ``by`` (one row per subject)."""
    table = lookup.drop_duplicates(by).set_index(by)[column]
    keys = frame[by]
    # reindex, not map: map on an empty frame casts datetimes to float and fails.
    return pd.Series(table.reindex(keys.to_numpy()).to_numpy(), index=keys.index, dtype=table.dtype)


def is_y(values: pd.Series) -> pd.Series:
    """True where a Y/N column is ``Y`` (missing is False)."""
    return values.astype("string").str.strip().str.upper().eq("Y").fillna(False).astype(bool)


def bool_series(values: Iterable[bool | None], index: pd.Index) -> pd.Series:
    """A pandas ``boolean`` Series (True/False/NA) from Python values."""
    return pd.Series(list(values), index=index, dtype="boolean")


def anchors(first_last: pd.DataFrame) -> pd.DataFrame:
    """``first_last`` with D1 (falling back to TRTSDT) and TRTEDT as datetime columns."""
    out = first_last.copy()
    if "D1" not in out.columns:
        out["D1"] = out["TRTSDT"]
    if "TRTEDT" not in out.columns:
        out["TRTEDT"] = pd.NaT
    out["D1"] = as_dates(out["D1"])
    out["TRTEDT"] = as_dates(out["TRTEDT"])
    return out
