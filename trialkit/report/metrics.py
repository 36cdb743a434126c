"""The numbers of the generic report sections, computed from the ledger and :class:`ReportData`.

Each ``compute_*`` takes plain data and returns plain rows, so it can be tested with a literal table.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

import pandas as pd

from trialkit.report.data import ReportData

MAJOR, MINOR = "major", "minor"


def study_date(d1: pd.Timestamp, study_day: int) -> pd.Timestamp:
    """Calendar date of a study day (no day 0)."""
    return d1 + pd.Timedelta(days=study_day - 1 if study_day > 0 else study_day)


def compute_site_status(workspace: Any, sites: list[str], today: date) -> list[dict[str, Any]]:
    """One row per site: submissions by status, last and current submission, open queries."""
    current = workspace.current_submissions()
    rows = []
    for site in sites:
        log = workspace.log(site)
        queries = workspace.queries(site=site, status="open", today=today)
        last = log[-1] if log else None
        now = current.get(site)
        rows.append({
            "site": site,
            "n_submissions": len(log),
            "by_status": Counter(s["status"] for s in log),
            "last": last,
            "current_id": now.id if now else None,
            "current_at": now.submitted_at if now else None,
            "data_cut": now.data_cut if now else None,
            "open_error": sum(1 for q in queries if q["severity"] == "error"),
            "open_warning": sum(1 for q in queries if q["severity"] == "warning"),
            "open_total": len(queries),
            "oldest_days": max((q["age_days"] for q in queries), default=None),
        })
    return rows


STANDING = ("open", "confirmed")  # deviations of the log that stand: detected and not resolved or dismissed


def compute_deviations(workspace: Any, sites: list[str]) -> dict[tuple[str, str], Counter[str]]:
    """The deviations of the log that stand (open or confirmed) counted by (code, site) and class
    (``major``/``minor``)."""
    counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for site in sites:
        for entry in workspace.deviation_log(site=site, status=STANDING):
            klass = entry["class"] or (MAJOR if entry["severity"] == "error" else MINOR)
            counts[(entry["code"], site)][klass] += 1
    return counts


def compute_deviation_statuses(workspace: Any, sites: list[str]) -> tuple[dict[str, Counter[str]],
                                                                           dict[str, Counter[str]]]:
    """Every deviation of the log counted by status: ``({code: Counter(status)}, {site: Counter(status)})``."""
    by_code: dict[str, Counter[str]] = defaultdict(Counter)
    by_site: dict[str, Counter[str]] = {site: Counter() for site in sites}
    for site in sites:
        for entry in workspace.deviation_log(site=site):
            by_code[entry["code"]][entry["status"]] += 1
            by_site[site][entry["status"]] += 1
    return dict(sorted(by_code.items())), by_site


def compute_enrollment(data: ReportData) -> list[tuple[str, int, int]]:
    """Subjects by calendar month of their enrolment date (``subjects.ENRLDT``): [(YYYY-MM, n, cumulative)]."""
    dates = data.subjects["ENRLDT"].dropna()
    if not len(dates):
        return []
    months = pd.to_datetime(dates).dt.to_period("M")
    counts = months.value_counts()
    result, cumulative = [], 0
    for period in pd.period_range(months.min(), months.max(), freq="M"):
        n = int(counts.get(period, 0))
        cumulative += n
        result.append((str(period), n, cumulative))
    return result


def compute_missing_grid(
    data: ReportData, study: Any, extra_present: Mapping[str, Iterable[tuple[str, str]]] | None = None,
) -> tuple[list[str], list[str], dict[tuple[str, str], tuple[int, int]]]:
    """Present and expected records per (form, visit), for the forms of the study's ``[schedule]``.

    With day 1 known per subject (``subjects.FIRSTDT``), a visit is expected when its window (from
    day 1, or from the last dose for a visit anchored on it) has closed by the site's data cut and
    the subject had not left the study (``ENDDT``) before the window opened. Without it, a subject is
    expected at every scheduled visit up to the latest visit at which it has any record (so the grid
    shows intermittent gaps). ``extra_present`` adds (SUBJID, VISIT) pairs the study counts as
    present for a form (e.g. a form that lists only abnormal findings).
    """
    schedule = study.schedule
    forms = [code for code in schedule if code in study.forms]
    visit_order = [v.code for v in sorted(study.visits.values(), key=lambda v: v.num)]
    visits = [v for v in visit_order if any(v in schedule[f] for f in forms)]
    present_keys: dict[str, set[tuple[str, str]]] = {}
    for code in forms:
        frame = data.forms.get(code)
        keys: set[tuple[str, str]] = set()
        if frame is not None and len(frame) and "VISIT" in frame.columns:
            keys = {(str(s), str(v)) for s, v in zip(frame["SUBJID"], frame["VISIT"], strict=True) if pd.notna(v)}
        present_keys[code] = keys | {(str(s), str(v)) for s, v in (extra_present or {}).get(code, ())}

    expected: dict[str, set[str]] = defaultdict(set)  # visit -> subjects
    subjects = data.subjects
    anchored = subjects[subjects["FIRSTDT"].notna().to_numpy()]
    if len(anchored):
        for row in anchored.itertuples(index=False):
            cut = pd.Timestamp(data.data_cuts.get(str(row.SITEID)) or date.today())
            left = row.ENDDT if pd.notna(row.ENDDT) else None
            for code in visits:
                visit = study.visits[code]
                if visit.window_hi is None or visit.window_lo is None:
                    continue
                if visit.anchor == "first_dose":
                    opens, closes = study_date(row.FIRSTDT, visit.window_lo), study_date(row.FIRSTDT, visit.window_hi)
                elif visit.anchor == "last_dose":
                    if pd.isna(row.LASTDT) or row.ENDED not in ("Y", True):
                        continue  # still on treatment: no follow-up visit yet
                    opens = row.LASTDT + pd.Timedelta(days=visit.window_lo)
                    closes = row.LASTDT + pd.Timedelta(days=visit.window_hi)
                    left = None  # the follow-up visit comes after the end of participation by design
                else:
                    continue
                if closes <= cut and (left is None or left >= opens):
                    expected[code].add(str(row.SUBJID))
    else:
        number = {code: study.visits[code].num for code in visits}
        reached: dict[str, int] = {}
        for keys in present_keys.values():
            for subject, visit in keys:
                if visit in number:
                    reached[subject] = max(reached.get(subject, number[visit]), number[visit])
        for subject, latest in reached.items():
            for code in visits:
                if study.visits[code].scheduled and number[code] <= latest:
                    expected[code].add(subject)
    grid: dict[tuple[str, str], tuple[int, int]] = {}
    for code in forms:
        for visit in visits:
            if visit not in schedule[code]:
                continue
            subjects_due = expected.get(visit, set())
            present = sum(1 for s in subjects_due if (s, visit) in present_keys[code])
            grid[(code, visit)] = (present, len(subjects_due))
    return forms, visits, grid
