"""ADTTE — ANK-SJIA-01's time-to-event analysis dataset (BDS time-to-event; admiral-template style).

Two parameters (DERIVATIONS "Time to discontinuation"), from the first dose (ADSL TRTSDT):

- ``TTDISC``: an event when DS.DSDECOD is not COMPLETED (at DSSTDAT); censored at DSSTDAT for
  COMPLETED, or — still on study — at the last visit on or before the data cut;
- ``TTDISCEF``: only the efficacy reasons (``protocol.analysis.efficacy_discontinuation``) are
  events; every other discontinuation is censored at its date.

Built with the generic :func:`trialkit.derive.derive_param_tte`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from trialkit import derive
from trialkit.derive import TTESource
from trialkit.metadata import ParameterMeta

from .common import VARIABLES, add_subject_columns, apply_data_cut, effective_data_cut, label

PARAMETERS = {
    "TTDISC": ParameterMeta(
        paramcd="TTDISC", param="Time to discontinuation, all reasons (days)", paramn=1, unit="days",
        derivation="From TRTSDT to DS.DSSTDAT when DSDECOD is not COMPLETED (event); censored at DSSTDAT for "
                   "COMPLETED, or at the last visit on or before the data cut while on study. AVAL = ADT - STARTDT + 1.",
        datatype="integer"),
    "TTDISCEF": ParameterMeta(
        paramcd="TTDISCEF", param="Time to discontinuation for lack of efficacy (days)", paramn=2, unit="days",
        derivation="As TTDISC, but only LACK OF EFFICACY and ADVERSE EVENT AND LACK OF EFFICACY are events; other "
                   "discontinuations are censored at their DSSTDAT.",
        datatype="integer"),
}
#: The visit forms whose dates make the last visit of a subject still on study.
VISIT_DATES = {"VS": "VSDAT", "CORE": "CSDAT", "CHAQ": "QSDAT", "LB": "LBDAT"}
LAST_VISIT = "LAST VISIT ON OR BEFORE THE DATA CUT"
DISPOSITION = "DISPOSITION DATE"


def last_visit_dates(frames: Mapping[str, pd.DataFrame], data_cut: Any) -> pd.DataFrame:
    """``SUBJID``, ``LASTVDT``: the latest visit date (VS, CORE, CHAQ, LB) on or before the data cut."""
    parts = []
    for code, column in VISIT_DATES.items():
        frame = frames.get(code)
        if frame is None or frame.empty:
            continue
        parts.append(pd.DataFrame({"SUBJID": frame["SUBJID"].to_numpy(),
                                   "LASTVDT": pd.to_datetime(frame[column], errors="coerce").to_numpy()}))
    if not parts:
        return pd.DataFrame({"SUBJID": pd.Series(dtype=object), "LASTVDT": pd.Series(dtype="datetime64[ns]")})
    dates = pd.concat(parts, ignore_index=True).dropna()
    if data_cut is not None:
        dates = dates[dates["LASTVDT"] <= pd.Timestamp(data_cut)]
    return dates.groupby("SUBJID", as_index=False)["LASTVDT"].max()


def derive_adtte(study: Any, forms: Mapping[str, Any], *, data_cut: Any = None,
                 adsl: pd.DataFrame | None = None) -> pd.DataFrame:
    """Time-to-event analysis dataset: TTDISC and TTDISCEF for every dosed subject (TRTSDT present),
    sorted USUBJID, PARAMN (see the module docstring)."""
    frames = apply_data_cut(forms, data_cut)
    cut = effective_data_cut(frames, data_cut)
    if adsl is None:
        from .adsl import adsl_core

        adsl = adsl_core(study, frames, None, data_cut=cut)
    analysis = study.protocol.analysis
    ds = frames["DS"].sort_values("DSSTDAT", kind="stable").drop_duplicates("SUBJID", keep="last")
    ds = ds[ds["DSSTDAT"].notna().to_numpy()]
    decod = ds["DSDECOD"].astype("string").str.strip().str.upper()
    completed = ds[decod.eq(analysis.completed_disposition).fillna(False).to_numpy()]
    stopped = ds[decod.ne(analysis.completed_disposition).fillna(False).to_numpy()]
    efficacy = decod.isin([r.upper() for r in analysis.efficacy_discontinuation]).fillna(False).to_numpy()
    stopped_efficacy = ds[efficacy]
    stopped_other = stopped[~stopped["SUBJID"].isin(set(stopped_efficacy["SUBJID"])).to_numpy()]
    on_study = last_visit_dates(frames, cut)
    on_study = on_study[~on_study["SUBJID"].isin(set(ds["SUBJID"])).to_numpy()]
    start = adsl[["SUBJID", "TRTSDT"]]

    completion = TTESource(completed, "DSSTDAT", "COMPLETED", censor=1, date_description=DISPOSITION)
    still_on = TTESource(on_study, "LASTVDT", "ON STUDY AT DATA CUT", censor=1, date_description=LAST_VISIT)
    # A subject on study with no visit after the first dose is censored on day 1.
    day_one = TTESource(start.assign(DAY1=start["TRTSDT"]), "DAY1", "ON STUDY AT DATA CUT", censor=1,
                        date_description="FIRST DOSE DATE")
    parts = [
        derive.derive_param_tte(
            start, start="TRTSDT", paramcd="TTDISC", param=PARAMETERS["TTDISC"].param,
            events=[TTESource(stopped, "DSSTDAT", "DISCONTINUATION: ", description_from="DSDECOD")],
            censors=[completion, still_on, day_one], inclusive=analysis.tte_days_inclusive),
        derive.derive_param_tte(
            start, start="TRTSDT", paramcd="TTDISCEF", param=PARAMETERS["TTDISCEF"].param,
            events=[TTESource(stopped_efficacy, "DSSTDAT", "DISCONTINUATION: ", description_from="DSDECOD")],
            censors=[completion,
                     TTESource(stopped_other, "DSSTDAT", "DISCONTINUATION FOR ANOTHER REASON: ", censor=1,
                               date_description=DISPOSITION, description_from="DSDECOD"),
                     still_on, day_one],
            inclusive=analysis.tte_days_inclusive),
    ]
    adtte = pd.concat(parts, ignore_index=True)
    add_subject_columns(adtte, study, adsl)
    adtte["PARAMN"] = pd.array(adtte["PARAMCD"].map({c: p.paramn for c, p in PARAMETERS.items()}), dtype="Int64")
    for column in ("EVNTDESC", "CNSDTDSC"):
        adtte[column] = adtte[column].astype(object).where(adtte[column].notna(), None)
    adtte = adtte.sort_values(["USUBJID", "PARAMN"], kind="stable")[list(VARIABLES["ADTTE"])]
    return label(adtte.reset_index(drop=True), "ADTTE", study, tuple(PARAMETERS.values()))
