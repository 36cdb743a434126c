"""ANK-SJIA-01's planted problems and the uploads the demo sites send.

Part of the study's ``demo`` plug-in (see ``__init__.py``). Every data check and every protocol
deviation of the study is planted at least once, in a named site, subject and record, and written to
the answer key (:class:`trialkit.demo.Problem`). A submission with a data error is rejected;
protocol deviations do not decide a submission's status (they are facts about how the trial was run,
tracked as queries), and data-check warnings hold a submission until acknowledged:

- data errors and some major deviations are planted as the typing mistakes they usually are (a
  date typed in the wrong month, a lost decimal comma, a dropdown slip) in the first uploads of
  sites 03, 05 and 08, which are rejected; each site then sends a corrected re-upload (the site
  answered its queries), which is accepted, and those queries are resolved;
- warning-level problems (minor deviations, DC-14, DC-15) stay in the data: submissions with
  data-check warnings are held and the data manager acknowledges them; site 02 is clean and accepted
  at once;
- site 06 later sends records it had entered late, with two genuine major deviations (a prohibited
  JAK inhibitor, an SAE reported late): that submission is accepted — the data are right — and the
  deviations stay open queries that take those subjects out of the per-protocol population.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from typing import Any

from trialkit.demo import Problem, Records, Row, Upload

from .generator import CSV_SITE, DATA_CUT, DMARDS, TNF, XPT_SITE, Generator, _r1, mas_ae

# Sites that type yes/no as words in some forms (Milan ticks "Sì" in MH and IE).
YES_NO_WORDS: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {"01": ({"Y": "Sì", "N": "No"}, ("MH", "IE"))}

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
    "09": {2: {"adult": True, "age": 44, "amyloid": True}, 3: {}},
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
        elif site == "09":  # Amendment 1's new site, with Amendment 1's new checks
            subjid, meta = self.subject("09", 3)
            when = meta["visits"]["W12"]
            for days in (2, 4, 6):
                for row in _rows(records, "FEVER", subjid, FVDAT=when - dt.timedelta(days=days)):
                    records["FEVER"].remove(row)
            self.key(site, subjid, "PD-14", "FEVER", "FVDAT", f"fever diary kept on 4 of the 7 days before the "
                     f"W12 visit ({when}): minor", uploads)
            subjid, meta = self.subject("09", 2)
            records["LB"].remove(_one(records, "LB", subjid, VISIT="W4", LBTESTCD="UPCR"))
            self.key(site, subjid, "DC-17", "LB", "LBTESTCD", "W4 sample without the UPCR a subject with renal "
                     "amyloidosis needs", uploads)

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


def build_uploads(study: Any, seed: int) -> tuple[list[Upload], list[Problem], Generator]:
    """The uploads (records, in the order they are submitted) and the answer key; writes nothing."""
    gen = Generator(study, seed)
    planter = Planter(gen)
    base = {site: gen.site_records(site, OVERRIDES.get(site, {})) for site in gen.sites}
    kinds = {CSV_SITE: "csv", XPT_SITE: "xpt"}
    first: list[Upload] = []
    later: list[Upload] = []
    for site in gen.sites:
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
        raise RuntimeError(f"demo seed {seed}: nothing planted for {', '.join(sorted(wanted - planted))}; plant "
                           "it in demo/plants.py (a new rule), or try another seed (no subject to sit on)")
    uploads = first + later
    for upload in uploads:
        if upload.site in YES_NO_WORDS and upload.kind == "xlsx":
            upload.yes_no, upload.yes_no_forms = YES_NO_WORDS[upload.site]
    return uploads, planter.problems, gen
