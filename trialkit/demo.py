"""The demo study: a seeded synthetic ANK-SJIA-01 trial, sent the way sites send data, run end to end.

:func:`run_demo` writes, into one folder:

``uploads/siteSS/``
    what each of the 8 sites sent: filled upload templates typed in the site's own conventions
    (text dates in the site's order and separator, decimal commas as text, US units at site 08),
    one site (07, London) as SAS transport files (``dm.xpt`` …, one per form), one site (05,
    Utrecht) as ``;``-separated CSV files with decimal commas (``dm.csv`` …), and the corrected
    re-uploads.
``workspace/``
    a trialkit workspace: every upload imported, validated (with the demo's fixed data cut and
    "today", so the result never depends on the day it runs) and recorded in the ledger; the pooled
    datasets in ``workspace/pooled`` (parquet, csv, xpt).
``report.html``
    the data-quality report (:func:`trialkit.report.write_report`).
``answer_key.json``
    every planted problem: a list of ``{site, subject, code, form, variable, note, severity,
    uploads, resolved_by}``. ``uploads`` names the uploads whose validation reports it,
    ``resolved_by`` the corrected upload in which it is gone (None when it stays).
``demo.json``
    what the demo did: seed, data cut, uploads with their submission ids and statuses.

The data are synthetic. 8 sites × 15 subjects; day 1 staggered over about a year; each subject's
year of visits (inside their windows) up to the data cut; children and adults (birth as year and
month only); weights that grow with age and an anakinra dose re-set into the protocol window when
the weight moves it; methotrexate stable, prednisone tapered from week 4 in responders; responders
and non-responders; dropouts with a DS record and no later visit.

**Planted problems and the ledger.** Every data check DC-01 … DC-16 and every deviation PD-01 …
PD-13 is planted at least once, in a named site, subject and record. A submission with a data error
is rejected; protocol deviations do not decide a submission's status (they are facts about how the
trial was run, tracked as queries), and data-check warnings hold a submission until acknowledged:

- data errors and some major deviations are planted as the typing mistakes they usually are (a
  date typed in the wrong month, a lost decimal comma, a dropdown slip) in the first uploads of
  sites 03, 05 and 08, which are rejected; each site then sends a corrected re-upload (the site
  answered its queries), which is accepted, and those queries are resolved;
- warning-level problems (minor deviations, DC-14, DC-15) stay in the data: submissions with
  data-check warnings are held and the data manager acknowledges them (``accept_warnings``); site 02
  is clean and accepted at once;
- site 06 later sends records it had entered late, with two genuine major deviations (a prohibited
  JAK inhibitor, an SAE reported late): that submission is accepted — the data are right — and the
  deviations stay open queries that take those subjects out of the per-protocol population.

Info-level findings (recorded normalisations: site date order, decimal commas, unit conversions,
synonyms, missing-value codes) are part of reading real uploads and are not in the answer key; any
warning or error that is not in the key is a defect of the demo or of a rule.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import inspect
import json
import math
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trialkit.errors import UsageError

DEFAULT_SEED = 20261125
DATA_CUT = dt.date(2025, 9, 30)
TODAY = dt.date(2025, 10, 15)  # "today" for validation: fixed, so the demo never depends on the day
ENROLMENT_START = dt.date(2024, 3, 4)
ENROLMENT_DAYS = 330
SITE_STAGGER_DAYS = 14
SUBJECTS_PER_SITE = 15
SITES = ("01", "02", "03", "04", "05", "06", "07", "08")
OPERATOR = "demo.datamanager"
POOL_FORMATS = ("parquet", "csv", "xpt")
MARKER = "demo.json"
ANSWER_KEY = "answer_key.json"
FIRST_SUBMISSION = dt.datetime(2025, 10, 1, 9, 0, tzinfo=dt.UTC)

CSV_SITE = "05"
XPT_SITE = "07"
LB_TESTS = ("ESR", "CRP", "HGB", "WBC", "ANC", "PLAT", "FERRITIN", "AST", "ALT", "TRIG", "FIBRINO", "CREAT")
CHAQ_DOMAINS = (("DRESS", 4), ("ARISE", 2), ("EAT", 3), ("WALK", 2), ("HYG", 5), ("REACH", 4),
                ("GRIP", 5), ("ACT", 5))
AID_FLAGS = ("DRESSAH", "ARISEAH", "EATAH", "WALKAH", "HYGAH", "REACHAH", "GRIPAH", "ACTAH")
CORE_VISITS = ("SCR", "D1", "W2", "W4", "W8", "W12", "W24", "W36", "W52")
# Planned study day of each scheduled visit and the jitter the demo uses (inside every window).
VISIT_PLAN = {"D1": (1, 0), "W1": (8, 1), "W2": (15, 1), "W4": (29, 2), "W8": (57, 3), "W12": (85, 5),
              "W24": (169, 8), "W36": (253, 8), "W52": (365, 8)}
# Joints sJIA tends to hit first (the rest of the 71 follow in a random order).
COMMON_JOINTS = ("KNEE_L", "KNEE_R", "WRI_L", "WRI_R", "ANK_L", "ANK_R", "ELB_L", "ELB_R", "HIP_L",
                 "HIP_R", "MCP2_L", "MCP2_R", "PIPH2_L", "PIPH2_R", "CSPINE", "SHO_L", "SHO_R")
TNF = ("ETANERCEPT", "ADALIMUMAB", "INFLIXIMAB", "GOLIMUMAB")
DMARDS = ("LEFLUNOMIDE", "SULFASALAZINE", "CICLOSPORIN")
LB_PER_CENT = 0.45359237  # kg per lb (study.toml)

Row = dict[str, Any]
Records = dict[str, list[Row]]  # form code -> records of one site


# ------------------------------------------------------------------------------------------------
# Results


@dataclass
class DemoResult:
    """What :func:`run_demo` wrote and what the ledger recorded."""

    directory: Path
    workspace: Path
    uploads: Path
    answer_key: Path
    pooled: Path
    report: Path | None
    submissions: list[dict[str, Any]] = field(default_factory=list)  # one per upload, in order
    statuses: dict[str, str] = field(default_factory=dict)  # site -> status of its current data
    counts: dict[str, int] = field(default_factory=dict)  # sites, subjects, uploads, problems, ...
    seconds: float = 0.0
    report_note: str | None = None


@dataclass
class Upload:
    """One upload a site sends: its records, how it is typed, and what the data manager does."""

    site: str
    name: str  # e.g. site03_v1
    records: Records
    kind: str  # xlsx, csv, xpt
    note: str
    accept_warnings: bool = False  # acknowledged at once (a re-upload answering known queries)
    acknowledge_if_held: bool = True  # held: the data manager then acknowledges the warnings
    files: list[Path] = field(default_factory=list)


@dataclass
class Problem:
    """One planted problem of the answer key."""

    site: str
    subject: str
    code: str
    form: str | None
    variable: str | None
    note: str
    severity: str
    uploads: list[str]
    resolved_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (keys as in the answer key)."""
        return dict(self.__dict__)


# ------------------------------------------------------------------------------------------------
# Dates and numbers


def date_of_day(d1: dt.date, study_day: int) -> dt.date:
    """Calendar date of a study day (no day 0)."""
    return d1 + dt.timedelta(days=study_day - 1 if study_day > 0 else study_day)


def age_at(birth: tuple[int, int], when: dt.date) -> int:
    """Whole years at ``when``, birth on the 15th of its month (DERIVATIONS "Dates")."""
    year, month = birth
    return when.year - year - ((when.month, when.day) < (month, 15))


def _r1(value: float) -> float:
    return round(value + 1e-9, 1)


def _step(value: float, step: float) -> float:
    return round(round(value / step) * step, 4)


# ------------------------------------------------------------------------------------------------
# The generator


class Generator:
    """A seeded generator of one site's clean records (``random.Random``; no global state)."""

    def __init__(self, study: Any, seed: int) -> None:
        self.study = study
        self.seed = seed
        self.meta: dict[str, dict[str, Any]] = {}  # SUBJID -> facts the plants need
        self.joints = list(study.param("joints", "all"))

    def rng(self, *parts: Any) -> random.Random:
        """A random stream for one purpose (seed and purpose), independent of generation order."""
        return random.Random(f"{self.seed}|" + "|".join(str(p) for p in parts))

    # -- a site ----------------------------------------------------------------------------------

    def site_records(self, site: str, overrides: dict[int, dict[str, Any]]) -> Records:
        """Every form's records of one site, clean."""
        rng = self.rng("site", site)
        index = SITES.index(site)
        start = ENROLMENT_START + dt.timedelta(days=index * SITE_STAGGER_DAYS)
        offsets = sorted(rng.sample(range(ENROLMENT_DAYS), SUBJECTS_PER_SITE))
        records: Records = {code: [] for code in self.study.forms}
        dropouts = set(rng.sample(range(6, SUBJECTS_PER_SITE + 1), 2))
        for number, offset in enumerate(offsets, start=1):
            d1 = start + dt.timedelta(days=offset)
            spec = dict(overrides.get(number, {}))
            if number in dropouts and number not in overrides:
                spec["dropout"] = True
            for code, rows in self.subject_records(site, number, d1, spec).items():
                records[code].extend(rows)
        return records

    # -- a subject -------------------------------------------------------------------------------

    def subject_records(self, site: str, number: int, d1: dt.date, spec: dict[str, Any]) -> Records:
        """One subject's records (see the module docstring for what is modelled)."""
        rng = self.rng("subject", site, number)
        subjid = f"{site}-{number:03d}"
        base = {"SITEID": site, "SUBJID": subjid}
        out: Records = {code: [] for code in self.study.forms}

        def add(code: str, **values: Any) -> Row:
            row = {**base, **values}
            out[code].append(row)
            return row

        # who
        adult = spec.get("adult", rng.random() < 0.25)
        age = spec.get("age") or (rng.randint(18, 42) if adult else rng.randint(3, 16))
        adult = age >= 18
        months = rng.randint(0, 11)
        birth_month = date_of_day(d1, 1) - dt.timedelta(days=int(age * 365.25 + months * 30.4 + 20))
        birth = (birth_month.year, birth_month.month)
        while age_at(birth, d1) > age:
            birth = (birth[0], birth[1] + 1) if birth[1] < 12 else (birth[0] + 1, 1)
        while age_at(birth, d1) < age:
            birth = (birth[0], birth[1] - 1) if birth[1] > 1 else (birth[0] - 1, 12)
        age = age_at(birth, d1)
        stratum = spec.get("stratum", "ADULT" if age >= 18 else "PEDI")
        sex = "F" if rng.random() < 0.55 else "M"
        responder = spec.get("responder", rng.random() < 0.65)
        us = site == "08" and rng.random() < 0.5  # lb, in, °F on this subject's records
        crp_mgdl = site == "08" and rng.random() < 0.5

        # schedule (study days), cut at the data cut and at a dropout
        days = {"SCR": spec.get("scr_day", rng.randint(-24, -10))}
        for code, (target, jitter) in VISIT_PLAN.items():
            days[code] = target + (rng.randint(-jitter, jitter) if jitter else 0)
        days.update(spec.get("days", {}))
        order = ["SCR", *VISIT_PLAN]
        dropout_at = None
        if spec.get("dropout"):
            dropout_at = rng.choice(["W8", "W12", "W24", "W36"])
        visits: dict[str, dt.date] = {}
        for code in order:
            when = date_of_day(d1, days[code])
            if when > DATA_CUT:
                break
            visits[code] = when
            if code == dropout_at:
                break
        if dropout_at not in visits:
            dropout_at = None
        last_visit = list(visits)[-1]
        treatment_over = dropout_at is not None or "W52" in visits
        last_dose = visits[last_visit] if treatment_over else None
        if last_dose is not None and dropout_at is None:
            fu = last_dose + dt.timedelta(days=28 + rng.randint(-3, 3))
            if fu <= DATA_CUT:
                visits["FU"] = fu
        end_of_data = max(visits.values())

        # growth: weight and height at each visit, never decreasing (in the unit typed)
        if adult:
            weight0, height0 = rng.uniform(52, 82), rng.uniform(155, 185)
            gain, grow = rng.uniform(0, 1.5), 0.0
        else:
            weight0 = max(11.0, 2.1 * age + 8 + rng.uniform(-3, 6))
            height0 = min(178.0, 6.2 * age + 80 + rng.uniform(-6, 6))
            gain, grow = rng.uniform(1.5, 4.5), rng.uniform(3, 6)
        weight0 = spec.get("weight", weight0)
        weights: dict[str, float] = {}  # as typed
        heights: dict[str, float] = {}
        weight_read: dict[str, float] = {}  # as trialkit reads it (kg)
        previous_w = previous_h = 0.0
        for code, when in visits.items():
            years = (when - d1).days / 365.25
            kg = weight0 + gain * max(years, 0) + rng.uniform(-0.2, 0.2)
            cm = height0 + grow * max(years, 0)
            w = _r1(kg / LB_PER_CENT) if us else _r1(kg)
            h = _r1(cm / 2.54) if us else _r1(cm)
            previous_w, previous_h = max(previous_w, w), max(previous_h, h)
            weights[code], heights[code] = previous_w, previous_h
            weight_read[code] = round(previous_w * LB_PER_CENT, 9) if us else previous_w

        # disease activity: 1 at baseline, falling in responders
        def activity(code: str) -> float:
            day = days.get(code, 400)
            if day <= 1:
                return 1.0
            if responder:
                return max(0.05, 0.9 * math.exp(-day / 12) + rng.uniform(0.0, 0.12))
            return min(1.15, 0.85 + rng.uniform(-0.1, 0.25))

        level = {code: activity(code) for code in visits}

        # DM, MH
        icdat = visits["SCR"] - dt.timedelta(days=rng.randint(0, 6))
        add("DM", ICDAT=icdat, BRTHYM=f"{birth[0]:04d}-{birth[1]:02d}", SEX=sex)
        onset_age = rng.uniform(1.2, min(15.5, age - 0.8)) if age > 3 else rng.uniform(1.0, age - 1.2)
        onset = birth_month + dt.timedelta(days=int(onset_age * 365.25))
        onset = min(onset, d1 - dt.timedelta(days=400))
        mh = dict(ONSETYM=f"{onset.year:04d}-{onset.month:02d}", FEVER2W="Y", ARTHR="Y",
                  RASH="Y" if rng.random() < 0.8 else "N", LYMPH=rng.choice("YN"), HEPSPL=rng.choice("YN"),
                  SEROS="Y" if rng.random() < 0.2 else "N", EXPSO="N", EXB27="N", EXB27FR="N", EXRF="N",
                  AMYLOID="Y" if adult and rng.random() < 0.2 else "N")
        if rng.random() < 0.15:
            mas = d1 - dt.timedelta(days=rng.randint(250, 700))
            mh["MASLDAT"] = f"{mas.year:04d}-{mas.month:02d}"
        add("MH", **mh)

        # PT: methotrexate (ongoing), a failed conventional DMARD, a failed TNF inhibitor
        def month_text(when: dt.date) -> str:
            return f"{when.year:04d}-{when.month:02d}"

        span = (d1 - onset).days
        mtx_start = onset + dt.timedelta(days=int(span * rng.uniform(0.05, 0.2)))
        add("PT", PTTRT="METHOTREXATE", PTSTDAT=month_text(mtx_start), PTONGO="Y")
        dmard_start = onset + dt.timedelta(days=int(span * rng.uniform(0.2, 0.35)))
        dmard_end = dmard_start + dt.timedelta(days=int(span * rng.uniform(0.1, 0.2)))
        add("PT", PTTRT=rng.choice(DMARDS), PTSTDAT=month_text(dmard_start), PTENDAT=month_text(dmard_end),
            PTONGO="N", PTREAS=rng.choice(["INEFFICACY", "INEFFICACY", "INTOLERANCE"]))
        tnf_start = onset + dt.timedelta(days=int(span * rng.uniform(0.4, 0.55)))
        tnf_end = min(tnf_start + dt.timedelta(days=int(span * rng.uniform(0.15, 0.3))),
                      d1 - dt.timedelta(days=130))
        add("PT", PTTRT=rng.choice(TNF), PTSTDAT=month_text(tnf_start), PTENDAT=month_text(tnf_end),
            PTONGO="N", PTREAS=rng.choice(["INEFFICACY", "INEFFICACY", "ADVERSE EVENT"]))
        if rng.random() < 0.3 and tnf_end + dt.timedelta(days=60) < d1 - dt.timedelta(days=250):
            toci = tnf_end + dt.timedelta(days=40)
            add("PT", PTTRT="TOCILIZUMAB", PTSTDAT=month_text(toci),
                PTENDAT=month_text(d1 - dt.timedelta(days=200)), PTONGO="N", PTREAS="INEFFICACY")

        # IE, RAND
        for i in range(1, 8):
            add("IE", IETESTCD=f"IN0{i}", IEORRES="Y")
        for i in range(1, 9):
            add("IE", IETESTCD=f"EX0{i}", IEORRES="N")
        kit_a = f"A{site}{number:03d}"
        add("RAND", RANDNO=f"R{site}{number:03d}", RANDDAT=d1, STRATUM=stratum, KITNO=kit_a)

        # fever diary: daily from day -7 to the W4 visit (at least day 29), then about weekly
        diary_rng = self.rng("diary", site, number)
        fever_days: set[dt.date] = set()
        daily_to = max(29, days["W4"])
        diary_days = [date_of_day(d1, n) for n in range(-7, daily_to + 1) if n != 0]
        day_n = daily_to + 1
        while True:
            day_n += diary_rng.randint(4, 10)
            when = date_of_day(d1, day_n)
            if when > end_of_data:
                break
            diary_days.append(when)
        baseline_fever = diary_rng.random() < 0.6
        for when in diary_days:
            if when > DATA_CUT:
                continue
            n = (when - d1).days + 1 if when >= d1 else (when - d1).days
            if n < 0:
                hot = baseline_fever and diary_rng.random() < 0.35
            elif n <= 3:
                hot = diary_rng.random() < 0.2
            elif responder:
                hot = False
            else:
                hot = diary_rng.random() < 0.12
            if visits.get("W4") and responder is False and 0 < (visits["W4"] - when).days <= 7:
                hot = hot and diary_rng.random() < 0.5
            temp_c = diary_rng.uniform(38.4, 39.8) if hot else diary_rng.uniform(36.2, 37.5)
            if hot:
                fever_days.add(when)
            temp = _r1(temp_c * 9 / 5 + 32) if us else _r1(temp_c)
            add("FEVER", FVDAT=when, FVTEMP=temp, FVTEMPU="F" if us else "C",
                FVROUTE="TYMPANIC" if us else ("AXILLARY" if age < 12 else "ORAL"), FVANTIP="Y" if hot else "N")

        # visits: VS at every visit; CORE, JA, CHAQ at core visits; LB everywhere
        joints = list(COMMON_JOINTS) + [j for j in self.joints if j not in COMMON_JOINTS]
        rng.shuffle(joints)
        joints.sort(key=lambda j: j not in COMMON_JOINTS)
        active0 = rng.randint(3, 12)
        phga0, paga0 = rng.uniform(5.0, 8.5), rng.uniform(4.0, 8.0)
        chaq0 = rng.uniform(0.6, 2.2)
        for code, when in visits.items():
            a = level[code]
            febrile_visit = (when in fever_days or (code == "SCR" and rng.random() < 0.5 * a)
                             or spec.get("mas_visit") == code)
            temp_c = rng.uniform(38.4, 39.0) if febrile_visit else rng.uniform(36.3, 37.3)
            add("VS", VISIT=code, VSDAT=when, WEIGHT=weights[code], WEIGHTU="lb" if us else "kg",
                HEIGHT=heights[code], HEIGHTU="in" if us else "cm",
                TEMP=_r1(temp_c * 9 / 5 + 32) if us else _r1(temp_c), TEMPU="F" if us else "C",
                SYSBP=rng.randint(98, 124) if not adult else rng.randint(108, 132),
                DIABP=rng.randint(56, 78), HR=rng.randint(72, 110) if not adult else rng.randint(60, 88))
            if code in CORE_VISITS:
                phga = min(10.0, _r1(phga0 * a))
                paga = min(10.0, _r1(paga0 * min(1.0, a + rng.uniform(0, 0.1))))
                core = dict(VISIT=code, CSDAT=when, PHGA=phga, PAGA=paga, JADONE="Y",
                            FEVER="Y" if febrile_visit else "N",
                            RASH="Y" if rng.random() < 0.5 * a else "N",
                            LYMPH="Y" if rng.random() < 0.25 * a else "N",
                            HEPSPL="Y" if rng.random() < 0.2 * a else "N",
                            SEROS="Y" if rng.random() < 0.08 * a else "N")
                if stratum == "ADULT":
                    core["PTGH"] = max(0, min(100, round(paga * 10 + rng.uniform(-6, 6))))
                add("CORE", **core)
                for joint in joints[:max(0, round(active0 * a))]:
                    swollen = rng.random() < 0.8
                    add("JA", VISIT=code, JADAT=when, JOINT=joint, SWOLLEN="Y" if swollen else "N",
                        TENDER="Y" if (not swollen or rng.random() < 0.6) else "N",
                        LOM="Y" if (not swollen or rng.random() < 0.4) else "N")
                items: Row = {}
                for prefix, count in CHAQ_DOMAINS:
                    for i in range(1, count + 1):
                        score = chaq0 * a + rng.uniform(-0.6, 0.6)
                        items[f"{prefix}{i}"] = max(0, min(3, round(score)))
                if age < 6 and site != XPT_SITE:
                    items["ACT1"] = "NA"  # "run errands and shop": not applicable to a small child
                aid = {flag: ("Y" if rng.random() < 0.1 * a else "N") for flag in AID_FLAGS}
                add("CHAQ", VISIT=code, QSDAT=when, QSVER="HAQ" if adult else "CHAQ", **items, **aid,
                    PAINVAS=min(10.0, max(0.0, _r1(paga0 * a + rng.uniform(-0.5, 0.5)))))
            for row in self.labs(site, code, when, a, rng, age, crp_mgdl, spec):
                add("LB", **row)

        # EX: dosing periods from day 1; a new period at W4 (open-label kit) and where the weight
        # moves the dose out of its protocol window
        ex_starts: dict[dt.date, str] = {}
        periods: list[Row] = []
        dose = None
        kit_n = 0
        for code, when in visits.items():
            if code in ("SCR", "FU") or (last_dose is not None and when > last_dose):
                continue
            if last_dose is not None and when == last_dose and periods:
                break
            window = self.window(weight_read[code])
            new_kit = code in ("D1", "W4")
            if dose is not None and window[0] <= dose <= window[1] and not new_kit:
                continue
            reason = None
            if dose is None or not (window[0] <= dose <= window[1]):
                dose = 100 if window[0] == 100 else max(window[0], min(window[1], 10 * round(1.5 * weight_read[code] / 10)))
                reason = "WEIGHT CHANGE" if periods else None
            kit_n += 1
            periods.append({"EXSTDAT": when, "EXDOSE": float(dose),
                            "KITNO": kit_a if code == "D1" else f"B{site}{number:03d}-{kit_n}", "EXADJ": reason})
            ex_starts[when] = code
        for i, period in enumerate(periods):
            end = periods[i + 1]["EXSTDAT"] - dt.timedelta(days=1) if i + 1 < len(periods) else last_dose
            planned = ((end or DATA_CUT) - period["EXSTDAT"]).days + 1
            missed = 0 if rng.random() < 0.7 else rng.randint(1, max(1, planned // 15))
            row = add("EX", EXSTDAT=period["EXSTDAT"], EXENDAT=end, EXDOSE=period["EXDOSE"], KITNO=period["KITNO"],
                      EXMISS=missed, EXADJ=period["EXADJ"])
            period["row"] = row

        # CM: methotrexate (stable), folic acid, prednisone tapered from week 4 in responders, NSAID
        bsa = math.sqrt(weight_read["SCR"] * (heights["SCR"] * (2.54 if us else 1)) / 3600)
        mtx_dose = min(25.0, _step(12.5 * bsa, 2.5))
        mtx_route = rng.choice(["SC", "PO"])
        mtx_start = month_text(mtx_start)
        if spec.get("mtx_change_at"):
            change = visits[spec["mtx_change_at"]]
            add("CM", CMTRT="METHOTREXATE", CMDOSE=mtx_dose, CMDOSU="mg", CMFRQ="QW", CMROUTE=mtx_route,
                CMSTDAT=mtx_start, CMENDAT=(change - dt.timedelta(days=1)).isoformat(), CMONGO="N")
            add("CM", CMTRT="METHOTREXATE", CMDOSE=mtx_dose + 2.5, CMDOSU="mg", CMFRQ="QW", CMROUTE=mtx_route,
                CMSTDAT=change.isoformat(), CMONGO="Y")
        else:
            add("CM", CMTRT="METHOTREXATE", CMDOSE=mtx_dose, CMDOSU="mg", CMFRQ="QW", CMROUTE=mtx_route,
                CMSTDAT=mtx_start, CMONGO="Y")
        add("CM", CMTRT="FOLIC ACID", CMDOSE=5.0, CMDOSU="mg", CMFRQ="QW", CMROUTE="PO", CMSTDAT=mtx_start,
            CMONGO="Y")
        on_pred = spec.get("prednisone", rng.random() < 0.7)
        pred_rows: list[Row] = []
        if on_pred:
            dose_mg = spec.get("pred_dose") or min(40.0, max(2.5, _step(weight_read["SCR"] * rng.uniform(0.2, 0.5), 2.5)))
            start = d1 - dt.timedelta(days=rng.randint(60, 200))
            course_start: Any = month_text(start)
            taper_from = visits.get("W4")
            if taper_from is not None and not spec.get("taper_at_w4"):
                taper_from = max(taper_from, date_of_day(d1, 30))
            taper = responder and taper_from is not None
            when = taper_from
            while True:
                if not taper or when is None or when > end_of_data:
                    pred_rows.append(add("CM", CMTRT="PREDNISONE", CMDOSE=dose_mg, CMDOSU="mg", CMFRQ="QD",
                                         CMROUTE="PO", CMSTDAT=course_start, CMONGO="Y"))
                    break
                pred_rows.append(add("CM", CMTRT="PREDNISONE", CMDOSE=dose_mg, CMDOSU="mg", CMFRQ="QD",
                                     CMROUTE="PO", CMSTDAT=course_start, CMENDAT=(when - dt.timedelta(days=1)).isoformat(),
                                     CMONGO="N"))
                dose_mg = _step(dose_mg * 0.7, 2.5) if dose_mg > 2.5 else 0.0
                if dose_mg <= 0:
                    break
                course_start = when.isoformat()
                when = when + dt.timedelta(days=rng.randint(28, 56))
        if rng.random() < 0.4:
            add("CM", CMTRT="NAPROXEN", CMDOSE=250.0 if not adult else 500.0, CMDOSU="mg", CMFRQ="BID",
                CMROUTE="PO", CMSTDAT=month_text(d1 - dt.timedelta(days=rng.randint(40, 300))), CMONGO="Y")
        if spec.get("ibuprofen") or rng.random() < 0.15:
            start = date_of_day(d1, rng.randint(40, 120))
            if start + dt.timedelta(days=5) <= end_of_data:
                add("CM", CMTRT="IBUPROFEN", CMDOSE=200.0 if not adult else 400.0, CMDOSU="mg", CMFRQ="TID",
                    CMROUTE="PO", CMSTDAT=start.isoformat(), CMENDAT=(start + dt.timedelta(days=4)).isoformat(),
                    CMONGO="N")

        # AE
        self.adverse_events(add, rng, d1, visits, end_of_data, dropout_at, spec)
        if spec.get("mas_visit") and spec.get("mas_ae", True):
            when = visits[spec["mas_visit"]]
            add("AE", **mas_ae(when, cut=DATA_CUT))

        # DS
        if dropout_at is not None:
            add("DS", DSDECOD=spec.get("ds", rng.choice(["LACK OF EFFICACY", "WITHDRAWAL BY SUBJECT",
                                                        "LACK OF EFFICACY"])),
                DSSTDAT=visits[dropout_at], DSPART="B")
        elif "FU" in visits:
            add("DS", DSDECOD="COMPLETED", DSSTDAT=visits["FU"], DSPART="B")

        self.meta[subjid] = {
            "site": site, "number": number, "d1": d1, "visits": visits, "days": days, "adult": adult,
            "stratum": stratum, "us": us, "responder": responder, "dropout": dropout_at, "ex_starts": ex_starts,
            "ex": periods, "prednisone": pred_rows, "weights": weight_read, "fever_days": fever_days,
            "end": end_of_data, "treatment_over": treatment_over,
        }
        return out

    def window(self, weight_kg: float) -> tuple[int, int]:
        """The anakinra dose window for a weight as trialkit reads it."""
        from trialkit.scores import anakinra_dose_window

        threshold = self.study.param("dose", "weight_threshold_kg", default="50")
        found = anakinra_dose_window(weight_kg, fixed_dose_from_kg=threshold)
        assert found is not None
        return found

    def labs(self, site: str, visit: str, when: dt.date, a: float, rng: random.Random, age: int,
             crp_mgdl: bool, spec: dict[str, Any]) -> list[Row]:
        """The 12 tests of one sample, in the units the site's laboratory reports."""
        eu = site not in ("07", "08")
        values: dict[str, tuple[float, str, float, float]] = {}
        esr = max(2, round(6 + 62 * a + rng.uniform(-5, 5)))
        values["ESR"] = (esr, "mm/h", 0, 20)
        crp = max(0.3, _r1(0.8 + 85 * a * rng.uniform(0.7, 1.2)))
        values["CRP"] = (round(crp / 10, 2), "mg/dL", 0, 0.5) if crp_mgdl else (crp, "mg/L", 0, 5)
        hgb = _r1(13.2 - 2.6 * a + rng.uniform(-0.5, 0.5))
        values["HGB"] = (round(hgb * 10), "g/L", 115, 155) if site in ("04", "05") else (hgb, "g/dL", 11.5, 15.5)
        cells = "10^3/uL" if site == "08" else ("G/L" if site == "03" else "10^9/L")
        values["WBC"] = (_r1(6.5 + 8 * a + rng.uniform(-1, 1)), cells, 4.5, 13.5)
        values["ANC"] = (_r1(3.6 + 6 * a + rng.uniform(-0.8, 0.8)), cells, 1.5, 8.0)
        values["PLAT"] = (round(270 + 240 * a + rng.uniform(-30, 30)), cells, 150, 450)
        ferritin = min(640, round(45 + 420 * a + rng.uniform(-20, 60)))
        values["FERRITIN"] = (ferritin, "ug/L" if site in ("04", "06") else "ng/mL", 10, 150)
        enzyme = "UI/L" if site == "03" else "U/L"
        values["AST"] = (round(24 + rng.uniform(-8, 10)), enzyme, 0, 40)
        values["ALT"] = (round(19 + rng.uniform(-8, 12)), enzyme, 0, 40)
        trig = 95 + rng.uniform(-30, 40)
        values["TRIG"] = ((round(trig / 88.57, 2), "mmol/L", 0, 1.7) if site in ("01", "04", "05")
                          else (round(trig), "mg/dL", 0, 150))
        fib = 290 + 260 * a + rng.uniform(-30, 30)
        values["FIBRINO"] = (_r1(fib / 100), "g/L", 2.0, 4.0) if eu else (round(fib), "mg/dL", 200, 400)
        creat = 0.35 + min(age, 18) * 0.03 + rng.uniform(-0.05, 0.08)
        values["CREAT"] = (round(creat * 88.42), "umol/L", 27, 88) if eu else (round(creat, 2), "mg/dL", 0.3, 1.0)
        if spec.get("mas_visit") == visit:  # macrophage activation syndrome at this sample
            values["FERRITIN"] = (rng.randint(1800, 4200), values["FERRITIN"][1], 10, 150)
            values["PLAT"] = (rng.randint(95, 160), cells, 150, 450)
            values["AST"] = (rng.randint(70, 140), enzyme, 0, 40)
            values["TRIG"] = ((2.6, "mmol/L", 0, 1.7) if site in ("01", "04", "05") else (240, "mg/dL", 0, 150))
            values["FIBRINO"] = (2.1, "g/L", 2.0, 4.0) if eu else (210, "mg/dL", 200, 400)
        rows = []
        for test in LB_TESTS:
            value, unit, low, high = values[test]
            rows.append(dict(VISIT=visit, LBDAT=when, LBTESTCD=test, LBORRES=value, LBORRESU=unit,
                             LBNRLO=low, LBNRHI=high))
        return rows

    def adverse_events(self, add: Callable[..., Row], rng: random.Random, d1: dt.date,
                       visits: dict[str, dt.date], end: dt.date, dropout_at: str | None,
                       spec: dict[str, Any]) -> None:
        """Injection-site reactions (common), infections, the odd SAE reported in time."""
        seen: set[tuple[str, dt.date]] = set()

        def event(term: str, start: dt.date, length: int, **values: Any) -> None:
            if start > end or (term, start) in seen:
                return
            seen.add((term, start))
            stop = start + dt.timedelta(days=length)
            if stop > DATA_CUT:
                values.update(AEONGO="Y", AEOUT="RECOVERING")
                add("AE", AETERM=term, AESTDAT=start, **values)
                return
            add("AE", AETERM=term, AESTDAT=start, AEENDAT=stop, AEONGO="N", **values)

        if rng.random() < 0.6:
            event("Injection site erythema", date_of_day(d1, rng.randint(2, 20)), rng.randint(2, 6), AETOXGR=1,
                  AESER="N", AEREL="RELATED", AEACN="DOSE NOT CHANGED", AEOUT="RECOVERED",
                  AESI="INJECTION SITE REACTION")
        if rng.random() < 0.25:
            event("Injection site pain", date_of_day(d1, rng.randint(3, 60)), rng.randint(1, 4), AETOXGR=2,
                  AESER="N", AEREL="RELATED", AEACN="DOSE NOT CHANGED", AEOUT="RECOVERED",
                  AESI="INJECTION SITE REACTION")
        span = max(10, (end - d1).days)
        for _ in range(rng.randint(0, 2)):
            term = rng.choice(["Upper respiratory tract infection", "Gastroenteritis", "Otitis media",
                               "Headache", "Nasopharyngitis"])
            event(term, d1 + dt.timedelta(days=rng.randint(5, span)), rng.randint(3, 10), AETOXGR=rng.choice([1, 1, 2]),
                  AESER="N", AEREL="NOT RELATED", AEACN="DOSE NOT CHANGED", AEOUT="RECOVERED", AESI="NONE")
        if rng.random() < 0.06 or spec.get("sae"):
            start = d1 + dt.timedelta(days=rng.randint(20, span))
            aware = start + dt.timedelta(days=rng.randint(0, 1))
            event("Pneumonia", start, rng.randint(6, 12), AETOXGR=3, AESER="Y", AESHOSP="Y",
                  AEREL="NOT RELATED", AEACN="DRUG INTERRUPTED", AEOUT="RECOVERED", AESI="SERIOUS INFECTION",
                  AEAWDAT=aware, AERPTDAT=aware + dt.timedelta(days=rng.randint(0, 1)))


def mas_ae(when: dt.date, *, cut: dt.date = DATA_CUT) -> Row:
    """A macrophage activation syndrome SAE around a sample, reported in time (ongoing at the cut
    when it would end after it)."""
    end = when + dt.timedelta(days=12)
    row = dict(AETERM="Macrophage activation syndrome", AESTDAT=when - dt.timedelta(days=1),
               AEENDAT=end, AEONGO="N", AETOXGR=4, AESER="Y", AESLIFE="Y", AESHOSP="Y",
               AEREL="NOT RELATED", AEACN="DRUG INTERRUPTED", AEOUT="RECOVERED", AESI="MAS",
               AEAWDAT=when, AERPTDAT=when + dt.timedelta(days=1))
    if end > cut:
        row.update(AEENDAT=None, AEONGO="Y", AEOUT="RECOVERING")
    return row


# ------------------------------------------------------------------------------------------------
# Planted problems

# Subjects with a role (site -> number -> generator overrides). They never drop out.
OVERRIDES: dict[str, dict[int, dict[str, Any]]] = {
    "01": {2: {"days": {"W4": 31}}, 4: {"adult": False, "age": 12}},
    "02": {3: {"mas_visit": "W8", "responder": False}},
    "03": {1: {"days": {"W24": 190}}, 3: {},
           2: {"prednisone": True, "pred_dose": 10.0, "days": {"W4": 28}, "taper_at_w4": True, "responder": True},
           4: {"scr_day": -20}, 5: {}, 6: {"adult": True, "age": 31}, 7: {}, 8: {}, 9: {}, 10: {}, 11: {}},
    "04": {3: {"age": 18, "stratum": "PEDI"}, 5: {"mtx_change_at": "W2"}},
    "05": {1: {"ibuprofen": True}, 2: {}, 3: {}, 4: {}, 5: {}, 6: {}, 7: {"age": 8, "adult": False}},
    "06": {2: {}, 3: {}, 4: {"responder": False}, 5: {}},
    "07": {3: {}, 4: {}, 5: {}},
    "08": {3: {}, 4: {"mas_visit": "W12", "mas_ae": False, "responder": False}, 5: {}, 12: {}},
}


def _rows(records: Records, form: str, subject: str, **match: Any) -> list[Row]:
    return [r for r in records[form] if r["SUBJID"] == subject and all(r.get(k) == v for k, v in match.items())]


def _one(records: Records, form: str, subject: str, **match: Any) -> Row:
    found = _rows(records, form, subject, **match)
    if not found:
        raise RuntimeError(f"demo generator: no {form} record of {subject} with {match}")
    return found[0]


def _month_typo(when: dt.date) -> dt.date:
    """The same day one month earlier (the classic slip of a month)."""
    month, year = (when.month - 1, when.year) if when.month > 1 else (12, when.year - 1)
    return when.replace(year=year, month=month, day=min(when.day, 28))


class Planter:
    """Applies the planted problems to the records and writes the answer key."""

    def __init__(self, generator: Generator) -> None:
        self.gen = generator
        self.problems: list[Problem] = []

    def key(self, site: str, subject: str, code: str, form: str | None, variable: str | None, note: str,
            uploads: list[str], resolved_by: str | None = None) -> None:
        rule = next(r for r in self.gen.study.rules if r.id == code)
        severity = rule.severity.value
        self.problems.append(Problem(site, subject, code, form, variable, note, severity, uploads, resolved_by))

    def subject(self, site: str, number: int) -> tuple[str, dict[str, Any]]:
        subjid = f"{site}-{number:03d}"
        return subjid, self.gen.meta[subjid]

    # -- warnings: they stay in the data (applied to every upload of the site) -------------------

    def warnings(self, site: str, records: Records, uploads: list[str]) -> None:
        """Minor deviations and plausibility warnings, planted in the site's data itself."""
        if site == "01":
            subjid, meta = self.subject("01", 2)
            period = next(p for p in meta["ex"] if (p["EXSTDAT"] - meta["d1"]).days + 1 > 29)
            row = period["row"]
            planned = ((row["EXENDAT"] or DATA_CUT) - row["EXSTDAT"]).days + 1
            row["EXMISS"] = math.ceil(planned * 0.3)
            self.key(site, subjid, "PD-06", "EX", "EXMISS", f"{row['EXMISS']} of {planned} daily doses missed in "
                     f"the Part B period from {row['EXSTDAT']} (30 %, limit 20 %): minor", uploads)
            for number in (4, 5, 6, 7, 8):
                subjid, meta = self.subject("01", number)
                last = max(_rows(records, "VS", subjid), key=lambda r: r["VSDAT"])
                if last["VSDAT"] in meta["ex_starts"] or last["VISIT"] in ("D1", "W1", "W2", "W4"):
                    continue
                before = last["WEIGHT"]
                last["WEIGHT"] = _r1(before * 1.25)
                self.key(site, subjid, "DC-14", "VS", "WEIGHT", f"{last['VISIT']} weight typed {last['WEIGHT']} kg "
                         f"after {before} kg measured: a 25 % jump", uploads)
                break
        elif site == "03":
            subjid, meta = self.subject("03", 1)
            self.key(site, subjid, "PD-07", "VS", "VSDAT", f"W24 visit on study day {meta['days']['W24']}, "
                     "outside its window (days 155-183): minor", uploads)
        elif site == "04":
            subjid, meta = self.subject("04", 3)
            self.key(site, subjid, "PD-13", "RAND", "STRATUM", "18 years old at day 1 but randomized in the "
                     "PEDI stratum: minor", uploads)
            subjid, meta = self.subject("04", 5)
            self.key(site, subjid, "PD-11", "CM", "CMDOSE", "methotrexate raised by 2.5 mg/week at the W2 visit, "
                     "inside Part A: minor", uploads)
        elif site == "06":
            for number in (2, 3, 5, 6, 7):
                subjid, meta = self.subject("06", number)
                w8 = meta["visits"].get("W8")
                if w8 is None or w8 in meta["ex_starts"] or meta["dropout"]:
                    continue
                records["VS"].remove(_one(records, "VS", subjid, VISIT="W8"))
                self.key(site, subjid, "PD-07", "VS", "VISIT", "the W8 vital-signs page was never entered: "
                         "scheduled visit missing (minor)", uploads)
                break
        elif site == "07":
            for number in (3, 4, 5, 6, 7):
                subjid, meta = self.subject("07", number)
                core = _rows(records, "CORE", subjid, VISIT="W12", FEVER="N")
                if not core:
                    continue
                when = core[0]["CSDAT"]
                diary = _rows(records, "FEVER", subjid, FVDAT=when)
                if diary:
                    diary[0].update(FVTEMP=38.6, FVANTIP="Y")
                else:
                    records["FEVER"].append({"SITEID": site, "SUBJID": subjid, "FVDAT": when, "FVTEMP": 38.6,
                                             "FVTEMPU": "C", "FVROUTE": "ORAL", "FVANTIP": "Y"})
                self.key(site, subjid, "DC-15", "CORE", "FEVER", f"diary 38.6 °C on the W12 visit day ({when}) "
                         "but CORE FEVER = N", uploads)
                break

    # -- errors: typing mistakes in a first upload, corrected in the re-upload -------------------

    def errors(self, site: str, first: Records, second: Records, uploads: list[str], fixed: str) -> None:
        """Plant error-level problems in ``first``; ``second`` is the corrected re-upload."""
        def key(subject: str, code: str, form: str | None, variable: str | None, note: str) -> None:
            self.key(site, subject, code, form, variable, note, uploads, resolved_by=fixed)

        if site == "03":
            subjid, meta = self.subject("03", 2)
            course = _one(first, "CM", subjid, CMTRT="PREDNISONE", CMSTDAT=meta["visits"]["W4"].isoformat())
            course["CMDOSE"] = 75.0
            key(subjid, "PD-10", "CM", "CMDOSE", "prednisone taper at W4 (study day 28) typed 75 mg instead of "
                "7,5 mg: above the day-1 dose of 10 mg/day inside Part A")
            subjid, meta = self.subject("03", 3)
            _one(first, "IE", subjid, IETESTCD="IN06")["IEORRES"] = "N"
            key(subjid, "PD-01", "IE", "IEORRES", "IN06 (active disease) ticked N for a randomized subject")
            subjid, meta = self.subject("03", 4)
            _one(first, "DM", subjid)["ICDAT"] = meta["visits"]["SCR"] + dt.timedelta(days=3)
            key(subjid, "PD-03", None, None, "ICDAT typed 3 days after the screening visit: every screening "
                "procedure (VS, CORE, JA, CHAQ, LB) is dated before consent")
            subjid, meta = self.subject("03", 5)
            _one(first, "RAND", subjid)["RANDDAT"] = meta["d1"] + dt.timedelta(days=2)
            key(subjid, "PD-04", "EX", "EXSTDAT", "RANDDAT typed 2 days after the first dose")
            subjid, meta = self.subject("03", 6)
            _one(first, "CORE", subjid, VISIT="W8")["PTGH"] = None
            key(subjid, "DC-16", "CORE", "PTGH", "PTGH left empty at W8 for an ADULT subject")
            for number, wrong, codes in ((7, "03-070", ("DC-01",)), (8, "30-008", ("DC-02", "DC-01"))):
                subjid, meta = self.subject("03", number)
                event = self._ae(first, second, site, subjid, meta, "Nasopharyngitis")
                event["SUBJID"] = wrong
                for code in codes:
                    note = (f"AE of {subjid} typed with SUBJID {wrong}"
                            + (": no DM record for that subject" if code == "DC-01" else ": digits swapped, "
                               "the prefix is not the site"))
                    key(wrong, code, "AE", "SUBJID", note)
            subjid, meta = self.subject("03", 9)
            event = self._ae(first, second, site, subjid, meta, "Gastroenteritis")
            event["AEENDAT"] = event["AESTDAT"] - dt.timedelta(days=2)
            key(subjid, "DC-03", "AE", "AEENDAT", "AE end date typed 2 days before its start")
            subjid, meta = self.subject("03", 10)
            good = self._ae(first, second, site, subjid, meta, "Cellulitis", serious=True)
            _one(first, "AE", subjid, AETERM="Cellulitis")["AESHOSP"] = None
            key(subjid, "DC-10", "AE", "AESER", "serious AE without its seriousness criterion (hospitalisation "
                f"not ticked; event of {good['AESTDAT']})")
            subjid, meta = self.subject("03", 11)
            self._ae(first, second, site, subjid, meta, "Otitis media")
            _one(first, "AE", subjid, AETERM="Otitis media", AETOXGR=2)["AETOXGR"] = 5
            key(subjid, "DC-11", "AE", "AEOUT", "grade typed 5 instead of 2 for a recovered otitis media")
        elif site == "05":
            subjid, meta = self.subject("05", 1)
            course = _one(first, "CM", subjid, CMTRT="IBUPROFEN")
            start = dt.date.fromisoformat(course["CMSTDAT"])
            course["CMENDAT"] = _month_typo(start + dt.timedelta(days=4)).isoformat()
            key(subjid, "DC-04", "CM", "CMENDAT", "ibuprofen stop date typed one month early, before its start")
            subjid, meta = self.subject("05", 2)
            period = _one(first, "EX", subjid, EXSTDAT=meta["d1"])
            period["EXENDAT"] = _month_typo(period["EXENDAT"])
            key(subjid, "DC-05", "EX", "EXENDAT", "end of the day-1 dosing period typed one month early, before "
                "its start")
            subjid, meta = self.subject("05", 3)
            course = next(r for r in _rows(first, "PT", subjid) if r["PTTRT"] in DMARDS)
            start = course["PTSTDAT"]
            course["PTENDAT"] = f"{int(start[:4]) - 1}{start[4:]}"
            key(subjid, "DC-06", "PT", "PTENDAT", f"{course['PTTRT']} stop typed {course['PTENDAT']}, a year "
                f"before its start {start}")
            subjid, meta = self.subject("05", 4)
            crp = _one(first, "LB", subjid, VISIT="W8", LBTESTCD="CRP")
            crp["LBDAT"] = meta["visits"]["W4"] - dt.timedelta(days=2)
            key(subjid, "DC-07", "LB", "LBDAT", "W8 CRP sample date typed before the W4 visit")
            subjid, meta = self.subject("05", 5)
            _one(first, "VS", subjid, VISIT="W2")["TEMPU"] = None
            key(subjid, "DC-12", "VS", "TEMPU", "W2 temperature without its unit")
            subjid, meta = self.subject("05", 6)
            course = next(r for r in _rows(first, "PT", subjid) if r["PTTRT"] in TNF)
            stop = meta["d1"] - dt.timedelta(days=20)
            course["PTENDAT"] = f"{stop.year:04d}-{stop.month:02d}"
            key(subjid, "PD-02", "PT", "PTENDAT", f"{course['PTTRT']} stop typed {course['PTENDAT']}: inside its "
                "washout before day 1 while the IE form says EX02 = N")
            subjid, meta = self.subject("05", 7)
            period = _one(first, "EX", subjid, EXSTDAT=meta["d1"])
            low, high = self.gen.window(meta["weights"]["D1"])
            period["EXDOSE"] = 100.0
            key(subjid, "PD-05", "EX", "EXDOSE", f"day-1 dose typed 100 mg for {meta['weights']['D1']} kg "
                f"(window {low}-{high} mg)")
        elif site == "08":
            subjid, meta = self.subject("08", 12)
            event = self._ae(first, second, site, subjid, meta, "Conjunctivitis", start=DATA_CUT - dt.timedelta(days=6))
            event["AEENDAT"] = DATA_CUT + dt.timedelta(days=4)
            for row in _rows(second, "AE", subjid, AETERM="Conjunctivitis"):
                row.update(AEENDAT=None, AEONGO="Y", AEOUT="RECOVERING")
            key(subjid, "DC-08", "AE", "AEENDAT", f"AE end {event['AEENDAT']} typed after the data cut {DATA_CUT}")
            subjid, meta = self.subject("08", 3)
            event = self._ae(first, second, site, subjid, meta, "Rash")
            end = event["AEENDAT"]
            event["AEENDAT"] = end.replace(year=2000 + int(str(end.year)[2:][::-1]))
            key(subjid, "DC-09", "AE", "AEENDAT", f"AE end year typed {event['AEENDAT'].year} for {end.year}")
            subjid, meta = self.subject("08", 4)
            second["AE"].append({"SITEID": site, "SUBJID": subjid, **mas_ae(meta["visits"]["W12"])})
            key(subjid, "DC-13", "LB", "LBORRES", "W12 labs meet the MAS 2016 criteria in a febrile subject; "
                "the MAS adverse event was added in the re-upload")
            subjid, meta = self.subject("08", 5)
            crp = _one(first, "LB", subjid, VISIT="W4", LBTESTCD="CRP")
            crp.update(LBORRES=None, LBORRESU=None, LBNRLO=None, LBNRHI=None, LBSTAT="ND")
            key(subjid, "PD-08", "LB", "LBORRES", "W4 CRP not done (the result came later and is in the re-upload)")

    def late_records(self, site: str, records: Records, uploads: list[str]) -> None:
        """Records a site entered late, with two genuine major deviations (site 06)."""
        subjid, meta = self.subject(site, 4)
        start = meta["visits"]["W24"] + dt.timedelta(days=7)
        records["CM"].append({"SITEID": site, "SUBJID": subjid, "CMTRT": "TOFACITINIB", "CMDOSE": 5.0, "CMDOSU": "mg",
                              "CMFRQ": "BID", "CMROUTE": "PO", "CMSTDAT": start.isoformat(), "CMONGO": "Y"})
        self.key(site, subjid, "PD-09", "CM", "CMTRT", f"tofacitinib (a JAK inhibitor) started {start} by a "
                 "non-responder: prohibited throughout", uploads)
        subjid, meta = self.subject(site, 5)
        start = meta["d1"] + dt.timedelta(days=60)
        records["AE"].append({"SITEID": site, "SUBJID": subjid, "AETERM": "Cellulitis", "AESTDAT": start,
                              "AEENDAT": start + dt.timedelta(days=9), "AEONGO": "N", "AETOXGR": 3, "AESER": "Y",
                              "AESHOSP": "Y", "AEREL": "NOT RELATED", "AEACN": "DRUG INTERRUPTED",
                              "AEOUT": "RECOVERED", "AESI": "SERIOUS INFECTION", "AEAWDAT": start,
                              "AERPTDAT": start + dt.timedelta(days=5)})
        self.key(site, subjid, "PD-12", "AE", "AERPTDAT", "SAE reported to the sponsor 5 days after the site "
                 "became aware", uploads)

    def _ae(self, first: Records, second: Records, site: str, subjid: str, meta: dict[str, Any], term: str,
            *, serious: bool = False, start: dt.date | None = None) -> Row:
        """Add one clean AE to both uploads; return the first upload's copy (to be mistyped)."""
        start = start or meta["d1"] + dt.timedelta(days=45)
        row = {"SITEID": site, "SUBJID": subjid, "AETERM": term, "AESTDAT": start,
               "AEENDAT": start + dt.timedelta(days=5), "AEONGO": "N", "AETOXGR": 3 if serious else 2,
               "AESER": "Y" if serious else "N", "AEREL": "NOT RELATED", "AEACN": "DOSE NOT CHANGED",
               "AEOUT": "RECOVERED", "AESI": "NONE"}
        if serious:
            row.update(AESHOSP="Y", AEACN="DRUG INTERRUPTED", AEAWDAT=start, AERPTDAT=start + dt.timedelta(days=1))
        second["AE"].append(dict(row))
        first["AE"].append(row)
        return row


# ------------------------------------------------------------------------------------------------
# Writing uploads the way sites send them


def _site_date(when: dt.date, site: Any) -> str:
    parts = {"D": f"{when.day:02d}", "M": f"{when.month:02d}", "Y": f"{when.year:04d}"}
    return site.date_sep.join(parts[p] for p in site.date_order)


def _decimal(value: float, mark: str) -> Any:
    if float(value).is_integer():
        return int(value)
    text = repr(float(value))
    return text.replace(".", ",") if mark == "," else float(value)


def _typed_cell(var: Any, value: Any, site: Any, *, form: str) -> Any:
    """A value as the site types it into its template."""
    if value is None:
        return None
    kind = var.type
    if kind == "date":
        return _site_date(value, site)
    if kind == "pdate":
        if len(value) == 10:
            return _site_date(dt.date.fromisoformat(value), site)
        if len(value) == 7 and site.id != "08":
            return f"{value[5:7]}{site.date_sep}{value[:4]}"
        return value
    if kind == "num":
        return _decimal(value, site.decimal_mark)
    if kind == "int":
        return value if isinstance(value, str) else int(value)
    if kind == "yn" and site.id == "01" and form in ("MH", "IE"):
        return {"Y": "Sì", "N": "No"}.get(value, value)
    return str(value)


def write_xlsx(study: Any, site_id: str, records: Records, path: Path) -> Path:
    """The site's own upload template (``trialkit template --site SS``), filled the site's way."""
    from trialkit.templates import build_template, save_deterministic

    site = study.site(site_id)
    book = build_template(study, site)
    for code, rows in records.items():
        form = study.form(code)
        sheet = book[code]
        variables = form.site_variables
        for r, row in enumerate(rows, start=2):
            for c, var in enumerate(variables, start=1):
                value = _typed_cell(var, row.get(var.name), site, form=code)
                if value is not None or var.name == "SITEID":
                    sheet.cell(row=r, column=c, value=value)
        # The site deleted the template's spare rows (their pre-filled SITEID): the file is smaller
        # and faster to read; trialkit reads a template with its spare rows just the same.
        if sheet.max_row > len(rows) + 1:
            sheet.delete_rows(len(rows) + 2, sheet.max_row - len(rows) - 1)
    save_deterministic(book, path)
    return path


def write_csv(study: Any, site_id: str, records: Records, folder: Path) -> list[Path]:
    """One ``;``-separated UTF-8 file per form, dates and decimals the Dutch way (an EDC export)."""
    site = study.site(site_id)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for code, rows in records.items():
        if not rows:
            continue
        variables = study.form(code).site_variables
        path = folder / f"{code.lower()}.csv"
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle, delimiter=";", lineterminator="\r\n")
            writer.writerow([v.name for v in variables])
            for row in rows:
                cells = []
                for var in variables:
                    value = row.get(var.name)
                    if value is None:
                        cells.append("")
                    elif var.type == "date":
                        cells.append(_site_date(value, site))
                    elif var.type == "num":
                        cells.append(str(_decimal(value, ",")))
                    else:
                        cells.append(str(value))
                writer.writerow(cells)
        paths.append(path)
    return paths


def _xpt_kind(kinds: dict[str, str], variables: list[Any], name: str, frame: Any) -> str:
    kind = kinds.get(next(v.type for v in variables if v.name == name), "string")
    return "float" if kind == "date" and frame[name].dtype.kind == "f" else kind


def write_xpt(study: Any, records: Records, folder: Path) -> list[Path]:
    """One SAS transport (XPT v5) file per form, named by the form (``dm.xpt`` …), as SAS exports."""
    import pandas as pd

    from trialkit.export import write_dataset

    folder.mkdir(parents=True, exist_ok=True)
    kinds = {"date": "date", "num": "float", "int": "integer"}
    paths = []
    for code, rows in records.items():
        if not rows:
            continue
        variables = study.form(code).site_variables
        columns = {}
        for var in variables:
            values = [row.get(var.name) for row in rows]
            if var.type == "date" and all(v is None for v in values):
                # an all-empty date column is written as numeric: readstat cannot read back a
                # DATE9-formatted column that holds no date
                columns[var.name] = pd.Series([float("nan")] * len(values))
            elif var.type == "date":
                columns[var.name] = pd.to_datetime(pd.Series(values, dtype=object))
            elif var.type == "num":
                columns[var.name] = pd.Series([float("nan") if v is None else float(v) for v in values])
            elif var.type == "int":
                columns[var.name] = pd.Series(values, dtype="Int64")
            else:
                columns[var.name] = pd.Series(values, dtype=object)
        frame = pd.DataFrame(columns)
        written = write_dataset(frame, folder, code.lower(), ["xpt"],
                                labels={v.name: v.export_label for v in variables},
                                types={name: _xpt_kind(kinds, variables, name, frame) for name in frame.columns},
                                dataset_label=study.form(code).export_label)
        paths.append(written["xpt"])
    return paths


# ------------------------------------------------------------------------------------------------
# The demo


def build_uploads(study: Any, seed: int = DEFAULT_SEED) -> tuple[list[Upload], list[Problem], Generator]:
    """The uploads (records, in the order they are submitted) and the answer key; writes nothing."""
    gen = Generator(study, seed)
    planter = Planter(gen)
    base = {site: gen.site_records(site, OVERRIDES.get(site, {})) for site in SITES}
    kinds = {CSV_SITE: "csv", XPT_SITE: "xpt"}
    first: list[Upload] = []
    later: list[Upload] = []
    for site in SITES:
        kind = kinds.get(site, "xlsx")
        v1, v2 = f"site{site}_v1", f"site{site}_v2"
        if site in ("03", "05", "08"):
            planter.warnings(site, base[site], [v1, v2])
            first_records, second_records = copy.deepcopy(base[site]), copy.deepcopy(base[site])
            planter.errors(site, first_records, second_records, [v1], v2)
            first.append(Upload(site, v1, first_records, kind, "first upload"))
            later.append(Upload(site, v2, second_records, kind, "corrected re-upload, answering the queries of "
                                f"{v1}", accept_warnings=True))
        elif site == "06":
            planter.warnings(site, base[site], [v1, v2])
            second_records = copy.deepcopy(base[site])
            planter.late_records(site, second_records, [v2])
            first.append(Upload(site, v1, base[site], kind, "first upload"))
            later.append(Upload(site, v2, second_records, kind, "update: records entered late at the site"))
        else:
            planter.warnings(site, base[site], [v1])
            first.append(Upload(site, v1, base[site], kind, "first upload"))
    planted = {p.code for p in planter.problems}
    wanted = {r.id for r in study.rules}
    if planted != wanted:  # a plant found no subject to sit on: say so rather than run an incomplete demo
        raise RuntimeError(f"demo seed {seed}: no subject for {', '.join(sorted(wanted - planted))}; "
                           "try another seed")
    return first + later, planter.problems, gen


def _progress(progress: Callable[[str, int, int], None] | None, text: str, done: int, total: int) -> None:
    if progress is not None:
        progress(text, done, total)


def check_demo_folder(directory: Path) -> bool:
    """True when ``directory`` holds an earlier demo (to be replaced); False when it is new or empty.

    Raises :class:`~trialkit.errors.UsageError` for a non-empty folder that is not an earlier demo,
    or a path that is not a folder.
    """
    if not directory.exists():
        return False
    if not directory.is_dir():
        raise UsageError(f"{directory}: exists and is not a folder; choose a new or empty DIR for the demo")
    if not any(directory.iterdir()):
        return False
    if (directory / MARKER).is_file():
        return True
    raise UsageError(f"{directory}: the folder is not empty and holds no earlier trialkit demo ({MARKER}); "
                     "choose a new or empty DIR, e.g. trialkit demo ./trialkit-demo")


def _clear_earlier_demo(directory: Path) -> None:
    from trialkit.ledger import unlock_archive

    unlock_archive(directory / "workspace")  # its archive folders are read-only
    for name in ("workspace", "uploads", "queries"):
        if (directory / name).is_dir():
            shutil.rmtree(directory / name)
    for name in (MARKER, ANSWER_KEY, "report.html"):
        if (directory / name).exists():
            (directory / name).unlink()


def write_uploads(study: Any, uploads: list[Upload], folder: Path) -> None:
    """Write every upload under ``folder/siteSS/`` (a file per upload, or a folder of files)."""
    for upload in uploads:
        upload.files = _write_upload(study, upload, folder)


def _write_upload(study: Any, upload: Upload, folder: Path) -> list[Path]:
    site_folder = folder / f"site{upload.site}"
    site_folder.mkdir(parents=True, exist_ok=True)
    if upload.kind == "xlsx":
        return [write_xlsx(study, upload.site, upload.records, site_folder / f"{upload.name}.xlsx")]
    if upload.kind == "csv":
        return write_csv(study, upload.site, upload.records, site_folder / upload.name)
    return write_xpt(study, upload.records, site_folder / upload.name)


def _write_job(job: tuple[Upload, Path]) -> list[Path]:
    from trialkit.study import load_study

    return _write_upload(load_study(), *job)


def _validate_job(job: tuple[list[Path], str]) -> tuple[Any, list[str], Any]:
    """Import and validate one upload (with the demo's data cut and today): report, stamps and the
    records it holds (what the ledger compares with the site's current data)."""
    from trialkit.importers.reader import import_files
    from trialkit.records import submission_records
    from trialkit.study import load_study
    from trialkit.validate import validate

    files, site = job
    study = load_study()
    imported = import_files(files, study, site=site)
    report = validate(study, imported, site=site, data_cut=DATA_CUT, today=TODAY)
    stamps = sorted({str(f["stamp"]) for f in imported.files if f.get("stamp")})
    return report, stamps, submission_records(imported.forms, study)


def _mapped(function: Callable[[Any], Any], jobs: list[Any], workers: int) -> Any:
    """``map`` over worker processes (two by default: the work is CPU-bound pandas), in order."""
    if workers <= 1 or len(jobs) <= 1:
        yield from map(function, jobs)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method)) as pool:
        yield from pool.map(function, jobs)


def run_demo(directory: str | Path, *, seed: int = DEFAULT_SEED,
             progress: Callable[[str, int, int], None] | None = None, workers: int | None = None) -> DemoResult:
    """Generate the demo study, submit every upload, pool, report; see the module docstring.

    ``progress(step, done, total)`` is called as the work goes on. Uploads are written and
    validated in ``workers`` processes (default: 2, or 1 on a one-core machine); they are always
    submitted to the ledger one by one, in order. An earlier demo in ``directory`` is replaced; any
    other non-empty folder is refused (:class:`~trialkit.errors.UsageError`).

    Example::

        >>> result = run_demo(tmp_path / "demo")  # doctest: +SKIP
        >>> result.statuses["02"]  # doctest: +SKIP
        'accepted'
    """
    import os

    from trialkit.ledger import HELD, init_workspace
    from trialkit.pool import pool
    from trialkit.querybook import write_query_workbook
    from trialkit.study import load_study

    began = time.perf_counter()
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    directory = Path(directory).expanduser()
    if check_demo_folder(directory):
        _clear_earlier_demo(directory)
    directory.mkdir(parents=True, exist_ok=True)
    study = load_study()

    _progress(progress, "generating the study", 0, 1)
    uploads, problems, gen = build_uploads(study, seed)
    total = len(uploads) + 4
    _progress(progress, "writing the site uploads", 1, total)
    upload_dir = directory / "uploads"
    for upload, files in zip(uploads, _mapped(_write_job, [(u, upload_dir) for u in uploads], workers),
                             strict=True):
        upload.files = files

    workspace_dir = directory / "workspace"
    ws = init_workspace(workspace_dir, study_id=study.id)
    submitted: list[dict[str, Any]] = []
    jobs = [(upload.files, upload.site) for upload in uploads]
    _progress(progress, "importing and validating the uploads", 2, total)
    for step, (upload, (report, stamps, records)) in enumerate(zip(uploads, _mapped(_validate_job, jobs, workers),
                                                                   strict=True)):
        _progress(progress, f"site {upload.site}: {upload.name} validated and submitted", 2 + step, total)
        now = FIRST_SUBMISSION + dt.timedelta(hours=2 * step)
        submission = ws.submit(upload.files, upload.site, report, records=records, operator=OPERATOR,
                               note=upload.note, accept_warnings=upload.accept_warnings, now=now, study=study,
                               template_stamp="; ".join(stamps) or None)
        entry = {"upload": upload.name, "site": upload.site, "kind": upload.kind, "submission": submission.id,
                 "status": submission.status, "counts": dict(submission.counts),
                 "files": [p.relative_to(directory).as_posix() for p in upload.files]}
        if submission.status == HELD and upload.acknowledge_if_held:
            acknowledged = ws.submit(upload.files, upload.site, report, records=records, operator=OPERATOR,
                                     accept_warnings=True, now=now + dt.timedelta(hours=1), study=study)
            entry["status"] = acknowledged.status
            entry["acknowledged"] = True
        submitted.append(entry)

    _progress(progress, "pooling the accepted data", total - 2, total)
    pooled = workspace_dir / "pooled"
    pool(ws, study, pooled, formats=POOL_FORMATS, operator=OPERATOR)

    queries_dir = directory / "queries"
    generated = dt.datetime.combine(TODAY, dt.time(12, 0), tzinfo=dt.UTC)
    for site in SITES:
        write_query_workbook(ws.queries_report(site, "open"), queries_dir / f"queries_site{site}.xlsx", site=site,
                             study=study, generated_at=generated)

    _progress(progress, "writing the report", total - 1, total)
    report_path, report_note = _write_report(ws, study, directory / "report.html", pooled)

    key_path = directory / ANSWER_KEY
    key_path.write_text(json.dumps([p.to_dict() for p in problems], indent=2, ensure_ascii=False) + "\n",
                        encoding="utf-8")
    statuses = {site: sub.status for site, sub in ws.current_submissions().items()}
    counts = {
        "sites": len(SITES),
        "subjects": len(gen.meta),
        "uploads": len(uploads),
        "submissions": len(submitted),
        "problems": len(problems),
        "codes": len({p.code for p in problems}),
    }
    seconds = time.perf_counter() - began
    (directory / MARKER).write_text(json.dumps({
        "study": study.id, "seed": seed, "data_cut": DATA_CUT.isoformat(), "today": TODAY.isoformat(),
        "submissions": submitted, "counts": counts,
        "info_findings": "recorded normalisations (severity info) are expected and not in the answer key",
    }, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    _progress(progress, "done", total, total)
    return DemoResult(directory=directory, workspace=workspace_dir, uploads=upload_dir, answer_key=key_path,
                      pooled=pooled, report=report_path, submissions=submitted, statuses=statuses, counts=counts,
                      seconds=seconds, report_note=report_note)


def _write_report(ws: Any, study: Any, path: Path, pooled: Path) -> tuple[Path | None, str | None]:
    """The HTML report when :mod:`trialkit.report` is installed (it is written alongside this module)."""
    try:
        from trialkit.report import write_report
    except ImportError as exc:  # the report module is not there yet: say so, keep the demo usable
        return None, f"the HTML report is not available ({exc})"
    kwargs: dict[str, Any] = {"pooled_dir": pooled}
    if "today" in inspect.signature(write_report).parameters:
        kwargs["today"] = TODAY
    return write_report(ws, study, path, **kwargs), None
