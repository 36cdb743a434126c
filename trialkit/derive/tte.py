"""Time-to-event parameters (the ADaM ADTTE structure), after admiral's ``derive_param_tte``.

A parameter is built from a start date per subject, event sources and censoring sources. Each
source is a frame with the subject key and a date column, and says how its records are described
(``EVNTDESC``) and — for censoring — where the censoring date comes from (``CNSDTDSC``). Per
subject the **earliest** event is taken; without an event, the **latest** censoring date. Columns
and descriptions are arguments: nothing here knows a form or a reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from trialkit.derive.dates import DATE_DTYPE, as_dates

__all__ = ["TTESource", "derive_param_tte"]


@dataclass(frozen=True)
class TTESource:
    """One source of events or censoring times.

    ``data`` has the subject key and ``date``; ``description`` is the EVNTDESC text, or — with
    ``description_from`` — a prefix put before that column's value (``"DISCONTINUATION: "`` +
    DSDECOD). ``censor`` is CNSR: 0 for an event, 1 (or more) for a censoring; ``date_description``
    the CNSDTDSC of a censoring (ignored for events).
    """

    data: pd.DataFrame
    date: str
    description: str
    censor: int = 0
    date_description: str | None = None
    description_from: str | None = None


def _candidates(source: TTESource, by: str) -> pd.DataFrame:
    frame = source.data
    if frame is None or frame.empty or source.date not in frame.columns:
        return pd.DataFrame(columns=[by, "ADT", "CNSR", "EVNTDESC", "CNSDTDSC"])
    out = pd.DataFrame({by: frame[by].astype(object).to_numpy(), "ADT": as_dates(frame[source.date]).to_numpy()})
    if source.description_from:
        values = frame[source.description_from].astype("string").fillna("").to_numpy()
        out["EVNTDESC"] = [f"{source.description}{v}" for v in values]
    else:
        out["EVNTDESC"] = source.description
    out["CNSR"] = int(source.censor)
    out["CNSDTDSC"] = source.date_description if source.censor else None
    return out.dropna(subset=["ADT", by])


def derive_param_tte(
    subjects: pd.DataFrame,
    *,
    start: str,
    events: Sequence[TTESource],
    censors: Sequence[TTESource],
    paramcd: str,
    param: str,
    by: str = "SUBJID",
    inclusive: bool = True,
) -> pd.DataFrame:
    """One time-to-event record per subject with a ``start`` date and an event or censoring.

    Returns ``by``, ``PARAMCD``, ``PARAM``, ``STARTDT``, ``ADT``, ``AVAL`` (days from STARTDT to ADT,
    counting both days when ``inclusive``, the study-day convention), ``CNSR`` (0 = event),
    ``EVNTDESC`` and ``CNSDTDSC``. The event is the earliest event date on or after the start; a
    subject without one is censored at the latest censoring date on or after the start. A subject
    with neither gets no record (give a censoring source on the start date to keep everyone).

    >>> adsl = pd.DataFrame({"SUBJID": ["S1", "S2"], "TRTSDT": pd.to_datetime(["2024-01-01", "2024-01-01"])})
    >>> stop = TTESource(pd.DataFrame({"SUBJID": ["S1"], "DT": pd.to_datetime(["2024-01-31"])}), "DT", "STOPPED")
    >>> last = TTESource(pd.DataFrame({"SUBJID": ["S1", "S2"], "DT": pd.to_datetime(["2024-02-01", "2024-03-01"])}),
    ...     "DT", "ON STUDY", censor=1, date_description="LAST VISIT")
    >>> derive_param_tte(adsl, start="TRTSDT", events=[stop], censors=[last], paramcd="TTSTOP",
    ...     param="Time to stop (days)")[["SUBJID", "AVAL", "CNSR", "EVNTDESC"]].values.tolist()
    [['S1', 31, 0, 'STOPPED'], ['S2', 61, 1, 'ON STUDY']]
    """
    columns = [by, "PARAMCD", "PARAM", "STARTDT", "ADT", "AVAL", "CNSR", "EVNTDESC", "CNSDTDSC"]
    base = pd.DataFrame({by: subjects[by].astype(object).to_numpy(), "STARTDT": as_dates(subjects[start]).to_numpy()})
    base = base.dropna().drop_duplicates(by)
    starts = base.set_index(by)["STARTDT"]

    def pick(sources: Sequence[TTESource], earliest: bool) -> pd.DataFrame:
        frames = [_candidates(s, by) for s in sources]
        frames = [f for f in frames if not f.empty]
        if not frames:
            return pd.DataFrame(columns=[by, "ADT", "CNSR", "EVNTDESC", "CNSDTDSC"])
        found = pd.concat(frames, ignore_index=True)
        found = found[found[by].isin(starts.index)]
        found = found[(as_dates(found["ADT"]) >= as_dates(found[by].map(starts))).to_numpy()]
        # Stable sort keeps the sources' order for ties: the first source given wins.
        found = found.sort_values("ADT", kind="stable", ascending=earliest)
        return found.drop_duplicates(by, keep="first")

    chosen_events = pick(events, earliest=True)
    chosen_censors = pick(censors, earliest=False)
    chosen_censors = chosen_censors[~chosen_censors[by].isin(set(chosen_events[by]))]
    chosen = pd.concat([f for f in (chosen_events, chosen_censors) if not f.empty] or [chosen_events],
                       ignore_index=True)
    if chosen.empty:
        return pd.DataFrame({c: pd.Series(dtype=DATE_DTYPE if c in ("STARTDT", "ADT") else object) for c in columns})
    chosen["STARTDT"] = chosen[by].map(starts).astype(DATE_DTYPE)
    chosen["ADT"] = as_dates(chosen["ADT"])
    chosen["AVAL"] = ((chosen["ADT"] - chosen["STARTDT"]).dt.days + (1 if inclusive else 0)).astype("Int64")
    chosen["CNSR"] = chosen["CNSR"].astype("Int64")
    chosen["PARAMCD"] = paramcd
    chosen["PARAM"] = param
    chosen["CNSDTDSC"] = chosen["CNSDTDSC"].astype(object).where(chosen["CNSDTDSC"].notna(), None)
    return chosen[columns].sort_values(by, kind="stable").reset_index(drop=True)
