"""ADSL — ANK-SJIA-01's subject-level analysis dataset (an admiral-template style program).

One row per subject (DM, RAND and EX subjects), sorted by USUBJID, built from the generic primitives
of :mod:`trialkit.derive` and this study's :mod:`.derivations`. The arm is never shown unless the
unblinded randomization list (``RANDNO`` → ``ARM``) is passed. Every variable's derivation is
declared in :data:`.common.VARIABLES` (and so in define.xml and the codebook).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from trialkit import derive

from . import derivations
from .common import (
    apply_data_cut,
    arm_numbers,
    effective_data_cut,
    label,
    lookup,
    primary_visit,
    usubjid,
    yn_flags,
)

#: The primary efficacy parameter (ADEFF PARAMCD) behind RESPW4.
PRIMARY_PARAM = "AACRP30"
#: Columns that exist only in an unblinded ADSL.
ARM_COLUMNS = ("ARM", "TRT01P", "TRT01PN", "TRT01A", "TRT01AN", "TRT02P", "TRT02PN", "TRT02A", "TRT02AN")


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

    The derivation of every column is in :data:`.common.VARIABLES`; in short:

    - AGE at D1 (first dose) from BRTHYM, birth on the 15th; no dose → at RANDDAT. AGEGR1 = ADULT
      when AGE ≥ ``protocol.age_groups.adult_age_years``; STRATAR = the stratum as randomised.
    - TRTSDT/TRTEDT per DERIVATIONS: TRTEDT empty while a course is open at the data cut, with
      TRTONGFL = Y and TRTDURD running to the data cut (DCUTDT; when no cut is given, the latest
      date of the forms).
    - ITTFL = RANDFL = randomised; FASFL = randomised and dosed; SAFFL = dosed; PPROTFL = N with a
      major deviation in ``deviations`` — only those the deviation log has *confirmed* when it has
      a ``status`` column (issue 14's log), every recorded major one otherwise.
    - TRT01P/TRT01A (Part A, randomised) and TRT02P/TRT02A (Part B, open label) with their numbers
      only when ``randlist`` (RANDNO → ARM) is given.
    """
    frames = apply_data_cut(forms, data_cut)
    cut = effective_data_cut(frames, data_cut)
    adsl = adsl_core(study, frames, deviations, data_cut=cut)
    if adeff is None:
        from .adeff import build_adeff

        adeff = build_adeff(study, frames, adsl, data_cut=cut)
    primary = adeff[(adeff["PARAMCD"] == PRIMARY_PARAM) & (adeff["AVISIT"] == primary_visit(study))]
    primary = primary.drop_duplicates("SUBJID").set_index("SUBJID")
    adsl["RESPW4"] = lookup(adsl["SUBJID"], primary["AVALC"]).astype(object)
    imputed = primary["DTYPE"].astype(object).eq("NRI")
    adsl["RESPW4IM"] = lookup(adsl["SUBJID"], imputed.map({True: "Y", False: "N"})).astype(object)
    if randlist is not None:
        add_treatments(study, adsl, frames, randlist)
    adsl = adsl.reset_index(drop=True)
    return label(adsl, "ADSL", study)


def add_treatments(study: Any, adsl: pd.DataFrame, frames: Mapping[str, pd.DataFrame], randlist: pd.DataFrame) -> None:
    """ARM, TRT01P/TRT01A (Part A) and TRT02P/TRT02A (Part B) with their numbers, in place."""
    arms = randlist.drop_duplicates("RANDNO").set_index("RANDNO")["ARM"]
    rand = frames["RAND"].drop_duplicates("SUBJID").set_index("SUBJID")["RANDNO"]
    numbers = arm_numbers(study)
    planned = lookup(adsl["SUBJID"], rand).map(arms).astype(object)
    planned = planned.where(planned.notna(), None)
    dosed = adsl["SAFFL"].eq("Y")
    actual = planned.where(dosed, None)
    part_a = study.protocol.part_a
    part_b = next((p for code, p in study.protocol.parts.items() if code != "A" and p.open_label_arm), None)
    adsl["ARM"] = planned
    adsl["TRT01P"] = planned
    adsl["TRT01PN"] = pd.array(planned.map(numbers), dtype="Int64")
    adsl["TRT01A"] = actual
    adsl["TRT01AN"] = pd.array(actual.map(numbers), dtype="Int64")
    if part_b is not None:
        entered = adsl["PARTACFL"].eq("Y") & planned.notna()
        # Dosed in Part B: still dosing beyond Part A's last day, or the last dose after it.
        last_day = adsl["TRTDURD"].astype("Float64")
        beyond = (last_day > part_a.last_day).fillna(False).astype(bool)
        open_label = pd.Series(np.where(entered, part_b.open_label_arm, None), index=adsl.index, dtype=object)
        adsl["TRT02P"] = open_label
        adsl["TRT02PN"] = pd.array(open_label.map(numbers), dtype="Int64")
        taken = open_label.where(beyond, None)
        adsl["TRT02A"] = taken
        adsl["TRT02AN"] = pd.array(taken.map(numbers), dtype="Int64")


def _major_subjects(deviations: pd.DataFrame) -> set[str]:
    """Subjects with a major deviation; with a ``status`` column (the deviation log), only confirmed ones."""
    rows = deviations
    if "status" in rows.columns:
        rows = rows[rows["status"].astype("string").str.strip().str.lower().eq("confirmed").fillna(False).to_numpy()]
    for column in ("class", "_class", "deviation_class", "CLASS", "DVCLASS"):
        if column in rows.columns:
            major = rows[column].astype("string").str.strip().str.lower().eq("major")
            return set(rows.loc[major.fillna(False).to_numpy(), "SUBJID"])
    raise ValueError(
        "deviations: no class column (class, _class, deviation_class, CLASS or DVCLASS) saying "
        "major/minor; pass the deviations with their class"
    )


def adsl_core(study: Any, frames: Mapping[str, pd.DataFrame], deviations: pd.DataFrame | None,
              *, data_cut: Any = None) -> pd.DataFrame:
    """ADSL without the response columns (what ADEFF needs: age group, first dose, populations)."""
    dm, mh, rand, ex, vs, ds = (frames[c] for c in ("DM", "MH", "RAND", "EX", "VS", "DS"))
    cut = effective_data_cut(frames, data_cut)
    subjects = sorted(
        set(dm["SUBJID"].dropna()) | set(rand["SUBJID"].dropna()) | set(ex["SUBJID"].dropna())
    )
    adsl = pd.DataFrame({"SUBJID": pd.Series(subjects, dtype=object)})
    adsl.insert(0, "STUDYID", study.id)
    adsl.insert(1, "USUBJID", usubjid(study, adsl["SUBJID"]))
    dm1 = dm.drop_duplicates("SUBJID").set_index("SUBJID")
    site = lookup(adsl["SUBJID"], dm1["SITEID"]).astype(object)
    adsl["SITEID"] = site.where(site.notna(), adsl["SUBJID"].map(study.subject_site))

    if len(ex):
        treatment = derivations.derive_treatment_dates(ex, data_cut=cut).set_index("SUBJID")
    else:
        treatment = pd.DataFrame(columns=["TRTSDT", "TRTEDT", "TRTONGFL", "TRTDURD"],
                                 index=pd.Index([], name="SUBJID"))
    rand1 = rand.sort_values("RANDDAT").drop_duplicates("SUBJID").set_index("SUBJID")
    d1 = pd.to_datetime(lookup(adsl["SUBJID"], treatment["TRTSDT"]), errors="coerce")
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
    amyloid = lookup(adsl["SUBJID"], mh1["AMYLOID"]).astype("string").str.strip().str.upper()
    adsl["AMYLFL"] = pd.Series(np.where(amyloid.isin(["Y", "N"]).fillna(False), amyloid.astype(object), None),
                               dtype=object)
    randno = lookup(adsl["SUBJID"], rand1["RANDNO"]).astype(object)
    adsl["RANDNO"] = randno.where(randno.notna(), None)
    adsl["RANDDT"] = pd.to_datetime(lookup(adsl["SUBJID"], rand1["RANDDAT"]), errors="coerce").to_numpy()
    adsl["STRATAR"] = stratum.where(stratum.notna(), None)
    randomized = randno.notna()
    dosed = d1.notna()
    adsl["ITTFL"] = np.where(randomized, "Y", "N")
    adsl["FASFL"] = np.where(randomized & dosed, "Y", "N")
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
    day1 = pd.DataFrame({"SUBJID": adsl["SUBJID"], "DATE": d1.to_numpy()})
    steroid = derivations.derive_prednisone_equivalent(frames["CM"], vs, day1, protocol=study.protocol)
    on_steroid = np.where(steroid["PREDMG"].eq(0).to_numpy(), "N", "Y")
    adsl["TAPERFL"] = pd.Series(np.where(d1.isna().to_numpy(), None, on_steroid), dtype=object)
    nsaid = derivations.derive_nsaid_active(frames["CM"], day1.assign(FROM=day1["DATE"], TO=day1["DATE"]),
                                            protocol=study.protocol, data_cut=cut)
    adsl["NSAIDFL"] = yn_flags(nsaid["NSAIDACT"].to_numpy(), adsl.index)
    adsl["TRTSDT"] = d1.to_numpy()
    adsl["TRTEDT"] = pd.to_datetime(lookup(adsl["SUBJID"], treatment["TRTEDT"]), errors="coerce").to_numpy()
    ongoing = lookup(adsl["SUBJID"], treatment["TRTONGFL"]).astype(object)
    adsl["TRTONGFL"] = ongoing.where(ongoing.notna(), None)
    adsl["TRTDURD"] = pd.array(pd.to_numeric(lookup(adsl["SUBJID"], treatment["TRTDURD"]), errors="coerce"),
                               dtype="Int64")
    adsl["DCUTDT"] = pd.Series(cut if cut is not None else pd.NaT, index=adsl.index, dtype="datetime64[ns]")

    ds1 = ds.sort_values("DSSTDAT").drop_duplicates("SUBJID", keep="last").set_index("SUBJID")
    decod = lookup(adsl["SUBJID"], ds1["DSDECOD"]).astype(object)
    part = lookup(adsl["SUBJID"], ds1["DSPART"]).astype(object)
    primary = primary_visit(study)
    seen_primary = set()
    for code in ("CORE", "VS", "CHAQ", "LB"):
        frame = frames[code]
        seen_primary |= set(frame.loc[frame["VISIT"].astype("string").eq(primary).fillna(False).to_numpy(), "SUBJID"])
    completed = decod.eq(study.protocol.analysis.completed_disposition)
    has_ds = decod.notna()
    adsl["PARTACFL"] = np.where(
        completed | part.eq("B") | (~has_ds & adsl["SUBJID"].isin(seen_primary) & dosed), "Y", "N"
    )
    adsl["PARTBCFL"] = np.where(completed, "Y", "N")
    adsl["DSDECOD"] = decod.where(decod.notna(), None)
    adsl["DSSTDT"] = pd.to_datetime(lookup(adsl["SUBJID"], ds1["DSSTDAT"]), errors="coerce").to_numpy()
    return adsl.sort_values("USUBJID", kind="stable").reset_index(drop=True)
