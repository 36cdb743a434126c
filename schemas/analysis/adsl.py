"""ADSL — ANK-SJIA-01's subject-level analysis dataset (an admiral-template style program).

One row per subject (DM, RAND and EX subjects), sorted by USUBJID, built from the generic primitives
of :mod:`trialkit.derive` and this study's :mod:`.derivations`. The arm is never shown unless the
unblinded randomization list (``RANDNO`` → ``ARM``) is passed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from trialkit import derive

from . import derivations
from .common import apply_data_cut, label, lookup, primary_visit, usubjid

#: The primary efficacy parameter (ADEFF PARAMCD) behind RESPW4.
PRIMARY_PARAM = "AACRP30"


def derive_adsl(
    study: Any,
    forms: Mapping[str, Any],
    *,
    randlist: pd.DataFrame | None = None,
    deviations: pd.DataFrame | None = None,
    data_cut: Any = None,
    adeff: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Subject-level analysis dataset: one row per subject (DM, RAND and EX subjects), by USUBJID.

    - AGE at D1 (first dose) from BRTHYM, birth on the 15th; no dose → at RANDDAT. AGEGR1 = ADULT
      when AGE ≥ ``protocol.age_groups.adult_age_years``, PEDI below; a subject with no age takes the RAND stratum.
    - WEIGHTBL = latest weight on or before D1; DURDIS = years from onset (15th) to D1.
    - RANDFL = has a RANDNO; SAFFL = any dose > 0; PPROTFL = "N" with a major deviation in
      ``deviations`` (columns SUBJID and a class column: ``class``/``_class``/``deviation_class``/
      ``DVCLASS``), or when not randomized or not dosed; NA when ``deviations`` is not given.
    - PARTACFL = "Y" when DS says Part B or COMPLETED, or (no DS) a primary-visit (W4) record
      exists; PARTBCFL = "Y" when DS says COMPLETED.
    - TAPERFL = "Y" when the subject takes a glucocorticoid at D1 (the steroid-taper population of
      Amendment 1), "N" when not, empty without a first dose.
    - RESPW4 / RESPW4IM: the primary parameter (AACRP30) at the primary visit with undetermined
      imputed as non-responder, and the imputation flag (from ``adeff``, derived when not given).
    - ARM only when ``randlist`` (RANDNO → ARM) is given.
    """
    frames = apply_data_cut(forms, data_cut)
    adsl = adsl_core(study, frames, deviations)
    if adeff is None:
        from .adeff import build_adeff

        adeff = build_adeff(study, frames, adsl)
    primary = adeff[(adeff["PARAMCD"] == PRIMARY_PARAM) & (adeff["AVISIT"] == primary_visit(study))]
    primary = primary.drop_duplicates("SUBJID").set_index("SUBJID")
    adsl["RESPW4"] = lookup(adsl["SUBJID"], primary["AVALCNRI"]).astype(object)
    adsl["RESPW4IM"] = lookup(adsl["SUBJID"], primary["NRIFL"]).astype(object)
    if randlist is not None:
        arms = randlist.drop_duplicates("RANDNO").set_index("RANDNO")["ARM"]
        rand = frames["RAND"].drop_duplicates("SUBJID").set_index("SUBJID")["RANDNO"]
        adsl["ARM"] = lookup(adsl["SUBJID"], rand).map(arms).astype(object)
    return label(adsl.reset_index(drop=True), "ADSL")


def _major_subjects(deviations: pd.DataFrame) -> set[str]:
    for column in ("class", "_class", "deviation_class", "CLASS", "DVCLASS"):
        if column in deviations.columns:
            major = deviations[column].astype("string").str.strip().str.lower().eq("major")
            return set(deviations.loc[major.fillna(False).to_numpy(), "SUBJID"])
    raise ValueError(
        "deviations: no class column (class, _class, deviation_class, CLASS or DVCLASS) saying "
        "major/minor; pass the deviations with their class"
    )


def adsl_core(study: Any, frames: Mapping[str, pd.DataFrame], deviations: pd.DataFrame | None) -> pd.DataFrame:
    """ADSL without the response columns (what ADEFF needs: age group, first dose, populations)."""
    dm, mh, rand, ex, vs, ds = (frames[c] for c in ("DM", "MH", "RAND", "EX", "VS", "DS"))
    subjects = sorted(
        set(dm["SUBJID"].dropna()) | set(rand["SUBJID"].dropna()) | set(ex["SUBJID"].dropna())
    )
    adsl = pd.DataFrame({"SUBJID": pd.Series(subjects, dtype=object)})
    adsl.insert(0, "STUDYID", study.id)
    adsl.insert(1, "USUBJID", usubjid(study, adsl["SUBJID"]))
    dm1 = dm.drop_duplicates("SUBJID").set_index("SUBJID")
    site = lookup(adsl["SUBJID"], dm1["SITEID"]).astype(object)
    adsl["SITEID"] = site.where(site.notna(), adsl["SUBJID"].map(study.subject_site))

    first = derivations.derive_first_dose(ex) if len(ex) else pd.DataFrame(columns=["SUBJID", "TRTSDT", "TRTEDT", "D1"])
    first = first.set_index("SUBJID")
    rand1 = rand.sort_values("RANDDAT").drop_duplicates("SUBJID").set_index("SUBJID")
    d1 = pd.to_datetime(lookup(adsl["SUBJID"], first["D1"]), errors="coerce")
    age_date = d1.fillna(pd.to_datetime(lookup(adsl["SUBJID"], rand1["RANDDAT"]), errors="coerce"))
    adsl["AGE"] = derive.compute_age_at(lookup(adsl["SUBJID"], dm1["BRTHYM"]).astype(object), age_date)
    adsl["AGEU"] = "YEARS"
    adult = study.protocol.age_groups.adult_age_years
    group = np.where(adsl["AGE"].isna(), None, np.where(adsl["AGE"].fillna(0) >= adult, "ADULT", "PEDI"))
    stratum = lookup(adsl["SUBJID"], rand1["STRATUM"]).astype(object)
    adsl["AGEGR1"] = pd.Series(group, dtype=object).where(pd.Series(group).notna(), stratum)
    adsl["SEX"] = lookup(adsl["SUBJID"], dm1["SEX"]).astype(object)
    weights = derivations.derive_weight_on(vs, pd.DataFrame({"SUBJID": adsl["SUBJID"], "D1": d1}), "D1")
    adsl["WEIGHTBL"] = weights["WEIGHT"].to_numpy()
    mh1 = mh.drop_duplicates("SUBJID").set_index("SUBJID")
    adsl["DURDIS"] = derive.compute_duration_years(
        lookup(adsl["SUBJID"], mh1["ONSETYM"]).astype(object), d1
    ).round(2)
    randomized = lookup(adsl["SUBJID"], rand1["RANDNO"]).notna()
    dosed = d1.notna()
    adsl["RANDFL"] = np.where(randomized, "Y", "N")
    adsl["SAFFL"] = np.where(dosed, "Y", "N")
    if deviations is None:
        adsl["PPROTFL"] = pd.Series([None] * len(adsl), dtype=object)
    else:
        major = _major_subjects(deviations)
        ok = randomized & dosed & ~adsl["SUBJID"].isin(major)
        adsl["PPROTFL"] = np.where(ok, "Y", "N")
    # Amendment 1: the steroid-taper population takes a glucocorticoid at D1 — a prednisone-equivalent
    # dose above 0, or an active course whose dose cannot be computed (undetermined, not 0).
    steroid = derivations.derive_prednisone_equivalent(
        frames["CM"], vs, pd.DataFrame({"SUBJID": adsl["SUBJID"], "DATE": d1.to_numpy()}), protocol=study.protocol
    )
    on_steroid = np.where(steroid["PREDMG"].eq(0).to_numpy(), "N", "Y")
    adsl["TAPERFL"] = pd.Series(np.where(d1.isna().to_numpy(), None, on_steroid), dtype=object)
    adsl["TRTSDT"] = d1.to_numpy()
    adsl["TRTEDT"] = pd.to_datetime(lookup(adsl["SUBJID"], first["TRTEDT"]), errors="coerce").to_numpy()

    ds1 = ds.sort_values("DSSTDAT").drop_duplicates("SUBJID", keep="last").set_index("SUBJID")
    decod = lookup(adsl["SUBJID"], ds1["DSDECOD"]).astype(object)
    part = lookup(adsl["SUBJID"], ds1["DSPART"]).astype(object)
    primary = primary_visit(study)
    seen_primary = set()
    for code in ("CORE", "VS", "CHAQ", "LB"):
        frame = frames[code]
        seen_primary |= set(frame.loc[frame["VISIT"].astype("string").eq(primary).fillna(False).to_numpy(), "SUBJID"])
    completed = decod.eq("COMPLETED")
    has_ds = decod.notna()
    adsl["PARTACFL"] = np.where(
        completed | part.eq("B") | (~has_ds & adsl["SUBJID"].isin(seen_primary) & dosed), "Y", "N"
    )
    adsl["PARTBCFL"] = np.where(completed, "Y", "N")
    adsl["DSDECOD"] = decod
    adsl["DSSTDT"] = pd.to_datetime(lookup(adsl["SUBJID"], ds1["DSSTDAT"]), errors="coerce").to_numpy()
    return adsl.sort_values("USUBJID", kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------------------------------------
