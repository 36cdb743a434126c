"""ANK-SJIA-01's synthetic generator: one site's clean records, seeded.

Part of the study's ``demo`` plug-in (see ``__init__.py``). 15 subjects per site; day 1 staggered
over about a year; each subject's year of visits (inside their windows, from the visit table) up to
the data cut; children and adults (birth as year and month only); weights that grow with age and an
anakinra dose re-set into the protocol window when the weight moves it; methotrexate stable,
prednisone tapered from week 4 in responders; responders and non-responders; dropouts with a DS
record and no later visit. Everything comes from ``random.Random`` streams named by seed and
purpose, so one seed always gives the same study.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable
from typing import Any

from trialkit.demo import Records, Row

DATA_CUT = dt.date(2025, 9, 30)
ENROLMENT_START = dt.date(2024, 3, 4)
ENROLMENT_DAYS = 330
SITE_STAGGER_DAYS = 14
SUBJECTS_PER_SITE = 15
CSV_SITE = "05"
XPT_SITE = "07"
LB_TESTS = ("ESR", "CRP", "HGB", "WBC", "ANC", "PLAT", "FERRITIN", "AST", "ALT", "TRIG", "FIBRINO", "CREAT")
CHAQ_DOMAINS = (("DRESS", 4), ("ARISE", 2), ("EAT", 3), ("WALK", 2), ("HYG", 5), ("REACH", 4),
                ("GRIP", 5), ("ACT", 5))
AID_FLAGS = ("DRESSAH", "ARISEAH", "EATAH", "WALKAH", "HYGAH", "REACHAH", "GRIPAH", "ACTAH")
# How far (days) the demo moves each visit from its target day; never beyond the visit's window.
VISIT_JITTER = {"W1": 1, "W2": 1, "W4": 2, "W8": 3, "W12": 5, "W24": 8, "W36": 8, "W52": 8}
# Joints sJIA tends to hit first (the rest of the 71 follow in a random order).
COMMON_JOINTS = ("KNEE_L", "KNEE_R", "WRI_L", "WRI_R", "ANK_L", "ANK_R", "ELB_L", "ELB_R", "HIP_L",
                 "HIP_R", "MCP2_L", "MCP2_R", "PIPH2_L", "PIPH2_R", "CSPINE", "SHO_L", "SHO_R")
TNF = ("ETANERCEPT", "ADALIMUMAB", "INFLIXIMAB", "GOLIMUMAB")
DMARDS = ("LEFLUNOMIDE", "SULFASALAZINE", "CICLOSPORIN")
LB_PER_CENT = 0.45359237  # kg per lb (study.toml)
# How the demo sites' laboratories report (a site not listed reports in the standard units).
HGB_G_PER_L = ("04", "05")
CELLS_G_PER_L = ("03",)
FERRITIN_UG_PER_L = ("04", "06")
ENZYMES_UI = ("03",)
TRIG_MMOL = ("01", "04", "05")


def visit_plan(study: Any) -> dict[str, tuple[int, int]]:
    """Target study day and jitter of each scheduled visit from day 1 on (the jitter kept inside
    the visit's window)."""
    plan = {}
    for visit in sorted(study.visits.values(), key=lambda v: v.num):
        if not visit.scheduled or visit.anchor != "first_dose" or visit.target_day is None or visit.target_day < 1:
            continue
        room = min(visit.target_day - visit.window_lo, visit.window_hi - visit.target_day)
        plan[visit.code] = (visit.target_day, max(0, min(VISIT_JITTER.get(visit.code, 0), room)))
    return plan



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


class Generator:
    """A seeded generator of one site's clean records (``random.Random``; no global state)."""

    def __init__(self, study: Any, seed: int) -> None:
        self.study = study
        self.seed = seed
        self.meta: dict[str, dict[str, Any]] = {}  # SUBJID -> facts the plants need
        self.joints = list(study.protocol.joints.all)
        self.sites = tuple(study.sites)
        self.plan = visit_plan(study)
        self.core_visits = tuple(study.schedule["CORE"])

    def rng(self, *parts: Any) -> random.Random:
        """A random stream for one purpose (seed and purpose), independent of generation order."""
        return random.Random(f"{self.seed}|" + "|".join(str(p) for p in parts))

    # -- a site ----------------------------------------------------------------------------------

    def site_records(self, site: str, overrides: dict[int, dict[str, Any]]) -> Records:
        """Every form's records of one site, clean."""
        rng = self.rng("site", site)
        index = self.sites.index(site)
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
        us_site = "US" in self.study.site(site).units
        us = us_site and rng.random() < 0.5  # lb, in, °F on this subject's records
        crp_mgdl = us_site and rng.random() < 0.5

        # schedule (study days), cut at the data cut and at a dropout
        days = {"SCR": spec.get("scr_day", rng.randint(-24, -10))}
        for code, (target, jitter) in self.plan.items():
            days[code] = target + (rng.randint(-jitter, jitter) if jitter else 0)
        days.update(spec.get("days", {}))
        order = ["SCR", *self.plan]
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
        if spec.get("amyloid"):
            mh["AMYLOID"] = "Y"
        amyloid = mh["AMYLOID"] == "Y"
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

        # fever diary: daily from day -7 to the W4 visit (at least day 29), then about weekly, and
        # (Amendment 1) on the 7 days before each visit from W8 to W52
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
        before = self.study.protocol.diary.days_before_visit
        for code in self.study.protocol.diary.before_visits:
            if code in visits:
                diary_days += [visits[code] - dt.timedelta(days=k) for k in range(before, 0, -1)]
        diary_days = sorted(set(diary_days))
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
            if code in self.core_visits:
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
            for row in self.labs(site, code, when, a, rng, age, crp_mgdl, spec, amyloid=amyloid):
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

        threshold = self.study.protocol.dose.weight_threshold_kg
        found = anakinra_dose_window(weight_kg, fixed_dose_from_kg=threshold)
        assert found is not None
        return found

    def labs(self, site: str, visit: str, when: dt.date, a: float, rng: random.Random, age: int,
             crp_mgdl: bool, spec: dict[str, Any], *, amyloid: bool = False) -> list[Row]:
        """The 12 tests of one sample, in the units the site's laboratory reports; with renal
        amyloidosis also the urine protein/creatinine ratio (Amendment 1)."""
        country = self.study.site(site).country
        us = "US" in self.study.site(site).units
        eu = country not in ("GB", "US")
        values: dict[str, tuple[float, str, float, float]] = {}
        esr = max(2, round(6 + 62 * a + rng.uniform(-5, 5)))
        values["ESR"] = (esr, "mm/h", 0, 20)
        crp = max(0.3, _r1(0.8 + 85 * a * rng.uniform(0.7, 1.2)))
        values["CRP"] = (round(crp / 10, 2), "mg/dL", 0, 0.5) if crp_mgdl else (crp, "mg/L", 0, 5)
        hgb = _r1(13.2 - 2.6 * a + rng.uniform(-0.5, 0.5))
        values["HGB"] = (round(hgb * 10), "g/L", 115, 155) if site in HGB_G_PER_L else (hgb, "g/dL", 11.5, 15.5)
        cells = "10^3/uL" if us else ("G/L" if site in CELLS_G_PER_L else "10^9/L")
        values["WBC"] = (_r1(6.5 + 8 * a + rng.uniform(-1, 1)), cells, 4.5, 13.5)
        values["ANC"] = (_r1(3.6 + 6 * a + rng.uniform(-0.8, 0.8)), cells, 1.5, 8.0)
        values["PLAT"] = (round(270 + 240 * a + rng.uniform(-30, 30)), cells, 150, 450)
        ferritin = min(640, round(45 + 420 * a + rng.uniform(-20, 60)))
        values["FERRITIN"] = (ferritin, "ug/L" if site in FERRITIN_UG_PER_L else "ng/mL", 10, 150)
        enzyme = "UI/L" if site in ENZYMES_UI else "U/L"
        values["AST"] = (round(24 + rng.uniform(-8, 10)), enzyme, 0, 40)
        values["ALT"] = (round(19 + rng.uniform(-8, 12)), enzyme, 0, 40)
        trig = 95 + rng.uniform(-30, 40)
        values["TRIG"] = ((round(trig / 88.57, 2), "mmol/L", 0, 1.7) if site in TRIG_MMOL
                          else (round(trig), "mg/dL", 0, 150))
        fib = 290 + 260 * a + rng.uniform(-30, 30)
        values["FIBRINO"] = (_r1(fib / 100), "g/L", 2.0, 4.0) if eu else (round(fib), "mg/dL", 200, 400)
        creat = 0.35 + min(age, 18) * 0.03 + rng.uniform(-0.05, 0.08)
        values["CREAT"] = (round(creat * 88.42), "umol/L", 27, 88) if eu else (round(creat, 2), "mg/dL", 0.3, 1.0)
        if spec.get("mas_visit") == visit:  # macrophage activation syndrome at this sample
            values["FERRITIN"] = (rng.randint(1800, 4200), values["FERRITIN"][1], 10, 150)
            values["PLAT"] = (rng.randint(95, 160), cells, 150, 450)
            values["AST"] = (rng.randint(70, 140), enzyme, 0, 40)
            values["TRIG"] = ((2.6, "mmol/L", 0, 1.7) if site in TRIG_MMOL else (240, "mg/dL", 0, 150))
            values["FIBRINO"] = (2.1, "g/L", 2.0, 4.0) if eu else (210, "mg/dL", 200, 400)
        tests = LB_TESTS
        if amyloid:
            upcr = round(0.4 + 1.6 * a + rng.uniform(0, 0.3), 2)
            values["UPCR"] = (round(upcr * 113.1), "mg/mmol", 0, 23) if eu else (upcr, "mg/mg", 0, 0.2)
            tests = (*LB_TESTS, "UPCR")
        rows = []
        for test in tests:
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
