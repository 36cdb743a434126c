"""The HTML data-quality report: one self-contained file that works offline.

:func:`write_report` (and :func:`build_report_html`, which returns the text) gathers what a data
manager looks at first — which sites are clean, where the deviations are, what is still open — from
the workspace's ledger and the pooled datasets, and renders it as one HTML file:

- a study overview (study, protocol version, sites, subjects randomized, data cuts, trialkit version);
- the status of every site (last and current submission, open queries by severity, oldest query);
- protocol deviations by code and site (a table and an SVG bar chart, major and minor);
- enrollment over time (randomizations per month and cumulative, SVG);
- completeness of the primary endpoint at W4 (due, assessable, imputed as non-responder);
- a missing-data heat map by form and visit (share of the expected records present, SVG);
- the primary response rate by age group, **blinded**: pooled across arms — the arm column is never
  read, even from an unblinded pool;
- the open queries, oldest first.

Every number carries the command that reproduces it (a ``title`` tooltip and a ``<code>`` line under
each section). The file makes no network request at all: inline CSS, one small inline script for
sortable tables, charts as inline SVG, and a Content-Security-Policy that forbids loading anything
(the inline style and scripts are allowed by their sha256). Every value is escaped with
:func:`html.escape`, so text typed by a site (an AE term, a file name) is shown, never interpreted.
The same inputs and ``today`` give the same bytes.

With ``site``, the report is that site's only: its submissions, queries, deviations and subjects, and
no other site's ids (a site sees only its own data and its own queries).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from trialkit import __version__
from trialkit.errors import TrialkitError, UsageError
from trialkit.findings import Category
from trialkit.textsafe import printable

__all__ = ["AnalysisData", "build_report_html", "load_analysis_data", "write_report"]

# Columns read from the pooled ADSL. The arm (ARM, ACTARM, TRT01P, ...) is deliberately not among
# them: the report is blinded, so an unblinded pool's arm is never even read.
ADSL_COLUMNS = ("SITEID", "SUBJID", "AGEGR1", "RANDFL", "SAFFL", "TRTSDT", "TRTEDT", "DSDECOD", "DSSTDT",
                "RESPW4", "RESPW4IM")
# Form columns the report needs (besides SITEID, SUBJID).
FORM_COLUMNS: dict[str, tuple[str, ...]] = {
    "RAND": ("RANDDAT",),
    "CORE": ("VISIT", "JADONE"),
    "JA": ("VISIT",),
    "CHAQ": ("VISIT",),
    "VS": ("VISIT",),
    "LB": ("VISIT",),
    "FEVER": ("FVDAT",),
}
_BLINDED_OUT = ("ARM", "ACTARM", "TRT01P", "TRT01A", "TRTP", "TRTA")

MAJOR, MINOR = "major", "minor"
STATUS_SYMBOL = {"accepted": "✓", "accepted-with-warnings": "✓", "held": "!", "rejected": "✗"}


def _e(value: Any) -> str:
    """Escape any value for HTML text or a quoted attribute (None shows as empty)."""
    return html.escape("" if value is None else str(value), quote=True)


# ------------------------------------------------------------------------------------------------
# Gathering the data


@dataclass
class AnalysisData:
    """The subject-level data the report's charts use, already restricted to the report's sites.

    ``adsl`` holds :data:`ADSL_COLUMNS` only; ``forms`` the columns of :data:`FORM_COLUMNS` (with
    SITEID and SUBJID) by form code; ``data_cuts`` the data cut of each site's data; ``source``
    says where it came from, ``inputs`` which submission of each site, ``command`` how to rebuild it.
    """

    adsl: pd.DataFrame
    forms: dict[str, pd.DataFrame]
    data_cuts: dict[str, date]
    source: str
    inputs: dict[str, int]
    command: str
    unblinded_pool: bool = False
    notes: list[str] = field(default_factory=list)


def _as_date(value: Any) -> date | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    try:
        return pd.Timestamp(value).date()
    except (ValueError, TypeError):
        return None


def _read_pooled(folder: Path, name: str, columns: tuple[str, ...]) -> pd.DataFrame | None:
    """Only ``columns`` (those present) of a pooled dataset, from parquet or else CSV; None if absent."""
    parquet, csv = folder / f"{name}.parquet", folder / f"{name}.csv"
    try:
        if parquet.is_file():
            import pyarrow.parquet as pq

            present = [c for c in columns if c in pq.read_schema(parquet).names]
            frame = pd.read_parquet(parquet, columns=present)
        elif csv.is_file():
            frame = pd.read_csv(csv, dtype=str, keep_default_na=False, na_values=[""],
                                usecols=lambda column: column in columns)
        else:
            return None
    except (OSError, ValueError) as exc:
        raise TrialkitError(f"{folder / name}: cannot read the pooled dataset ({exc}); run `trialkit pool` again") from exc
    for column in columns:
        if column not in frame.columns:
            frame[column] = None
    return frame[list(columns)]


def _typed(adsl: pd.DataFrame) -> pd.DataFrame:
    adsl = adsl[[c for c in ADSL_COLUMNS if c in adsl.columns]].copy()
    for column in ADSL_COLUMNS:
        if column not in adsl.columns:
            adsl[column] = None
    for column in ("TRTSDT", "TRTEDT", "DSSTDT"):
        adsl[column] = pd.to_datetime(adsl[column], errors="coerce")
    for column in ("SITEID", "SUBJID", "AGEGR1", "RANDFL", "SAFFL", "DSDECOD", "RESPW4", "RESPW4IM"):
        adsl[column] = adsl[column].astype(object).where(adsl[column].notna(), None)
    return adsl[list(ADSL_COLUMNS)].sort_values("SUBJID", kind="stable").reset_index(drop=True)


def _only_sites(frame: pd.DataFrame, sites: set[str]) -> pd.DataFrame:
    return frame[frame["SITEID"].astype(str).isin(sites).to_numpy()].reset_index(drop=True)


def load_analysis_data(workspace: Any, study: Any, *, site: str | None = None,
                       pooled_dir: str | os.PathLike[str] | None = None,
                       today: date | None = None) -> AnalysisData:
    """The subject-level data of the report: the pooled datasets in ``pooled_dir`` (default
    ``WORKSPACE/pooled``) when they exist, else the current accepted submissions re-imported from
    the archive and derived in memory (blinded). With ``site``, only that site's rows are kept."""
    from trialkit.ledger import open_workspace

    ws = workspace if hasattr(workspace, "current_submissions") else open_workspace(workspace)
    today = today or datetime.now(UTC).date()
    current = ws.current_submissions()
    wanted = {site} if site else None
    folder = Path(pooled_dir) if pooled_dir is not None else ws.path / "pooled"
    manifest_path = folder / "manifest.json"
    notes: list[str] = []

    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise TrialkitError(f"{manifest_path}: cannot be read ({exc}); run `trialkit pool` again") from exc
        from trialkit.pool import manifest_forms

        pooled_forms = manifest_forms(manifest)
        inputs = {site: max(forms.values()) for site, forms in pooled_forms.items()}
        adsl = _read_pooled(folder, "adsl", ADSL_COLUMNS)
        if adsl is None:
            raise TrialkitError(f"{folder}: has a manifest.json but no adsl.parquet or adsl.csv; run `trialkit pool` again")
        forms = {}
        for code, columns in FORM_COLUMNS.items():
            frame = _read_pooled(folder, code.lower(), ("SITEID", "SUBJID", *columns))
            forms[code] = frame if frame is not None else pd.DataFrame(columns=["SITEID", "SUBJID", *columns])
        source = "pooled datasets" + (f" (freeze {manifest['freeze']})" if manifest.get("freeze") else "")
        command = "trialkit pool"
        unblinded = bool(manifest.get("unblinded"))
        considered = {s: f for s, f in pooled_forms.items() if wanted is None or s in wanted}
        now = {s: f for s, f in ws.current_forms().items() if wanted is None or s in wanted}

        def _ids(pointers: dict[str, dict[str, int]]) -> str:
            return ", ".join(f"site {s} " + "+".join(f"#{i}" for i in sorted(set(f.values())))
                             for s, f in sorted(pointers.items())) or "none"

        if considered != now and not manifest.get("freeze"):
            notes.append(
                f"The pooled datasets are older than the ledger (pooled: {_ids(considered)}; current: "
                f"{_ids(now)}). Run `trialkit pool` to bring the charts up to date."
            )
        cuts = {}
        for pooled_site, submission_id in inputs.items():
            try:
                cuts[pooled_site] = _as_date(ws.submission(submission_id).data_cut)
            except TrialkitError:  # pooled from another workspace: fall back to today below
                if wanted is None or pooled_site in wanted:
                    notes.append(f"Site {pooled_site}: pooled submission #{submission_id} is not in this ledger.")
    else:
        from trialkit.adam import derive_datasets
        from trialkit.pool import assemble, major_deviations, stack_forms

        chosen = {s: sub for s, sub in current.items() if wanted is None or s in wanted}
        inputs = {s: sub.id for s, sub in chosen.items()}
        pointers = {s: f for s, f in ws.current_forms().items() if s in chosen}
        per_site, used = assemble(ws, study, pointers)
        stacked = stack_forms(per_site)
        derived = derive_datasets(study, stacked, deviations=major_deviations(used, pointers)) if stacked else {}
        adsl = derived.get("ADSL", pd.DataFrame(columns=list(ADSL_COLUMNS)))
        forms = {}
        for code, columns in FORM_COLUMNS.items():
            frame = stacked.get(code, pd.DataFrame())
            for column in ("SITEID", "SUBJID", *columns):
                if column not in frame.columns:
                    frame[column] = None
            forms[code] = frame[["SITEID", "SUBJID", *columns]].copy()
        source = "current accepted submissions (no pooled datasets found; re-imported from the archive)"
        command = "trialkit pool"
        unblinded = False
        cuts = {s: _as_date(sub.data_cut) for s, sub in chosen.items()}
        if not chosen:
            notes.append("No site has accepted data yet: the charts below are empty.")

    adsl = _typed(adsl)
    if wanted is not None:
        adsl = _only_sites(adsl, wanted)
        forms = {code: _only_sites(frame, wanted) for code, frame in forms.items()}
        inputs = {s: i for s, i in inputs.items() if s in wanted}
        cuts = {s: c for s, c in cuts.items() if s in wanted}
    data_cuts = {s: (c or today) for s, c in cuts.items()}
    for s in sorted(set(adsl["SITEID"].dropna().astype(str)) - set(data_cuts)):
        data_cuts[s] = today
    return AnalysisData(adsl=adsl, forms=forms, data_cuts=dict(sorted(data_cuts.items())), source=source,
                        inputs=dict(sorted(inputs.items())), command=command, unblinded_pool=unblinded,
                        notes=notes)


# ------------------------------------------------------------------------------------------------
# Computing the tables


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


def compute_deviations(workspace: Any, sites: list[str]) -> dict[tuple[str, str], Counter[str]]:
    """Open deviation queries counted by (code, site) and class (``major``/``minor``)."""
    counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for site in sites:
        for finding in workspace.queries_report(site, "open").findings:
            if finding.category == Category.DEVIATION:
                klass = finding.deviation_class or (MAJOR if finding.severity.value == "error" else MINOR)
                counts[(finding.code, site)][klass] += 1
    return counts


def compute_enrollment(data: AnalysisData) -> tuple[str, list[tuple[str, int, int]]]:
    """Randomizations per calendar month and cumulative: (date variable used, [(YYYY-MM, n, cum)])."""
    rand = data.forms.get("RAND")
    dates = pd.Series(dtype="datetime64[ns]")
    variable = "RANDDAT"
    if rand is not None and len(rand):
        first = rand.assign(RANDDAT=pd.to_datetime(rand["RANDDAT"], errors="coerce"))
        dates = first.dropna(subset=["RANDDAT"]).sort_values("RANDDAT").drop_duplicates("SUBJID")["RANDDAT"]
    if not len(dates):
        variable = "TRTSDT"
        dates = data.adsl["TRTSDT"].dropna()
    if not len(dates):
        return variable, []
    months = dates.dt.to_period("M")
    counts = months.value_counts()
    result, cumulative = [], 0
    for period in pd.period_range(months.min(), months.max(), freq="M"):
        n = int(counts.get(period, 0))
        cumulative += n
        result.append((str(period), n, cumulative))
    return variable, result


def _study_date(d1: pd.Timestamp, study_day: int) -> pd.Timestamp:
    """Calendar date of a study day (no day 0)."""
    return d1 + pd.Timedelta(days=study_day - 1 if study_day > 0 else study_day)


def compute_primary_completeness(data: AnalysisData, study: Any) -> list[dict[str, Any]]:
    """Per site: randomized subjects, W4 due by the site's data cut, assessable, imputed (NRI)."""
    visit = next((v for v in study.visits.values() if v.primary), None)
    close_day = visit.window_hi if visit is not None and visit.window_hi is not None else 32
    rows = []
    adsl = data.adsl[data.adsl["RANDFL"].eq("Y").to_numpy()]
    for site in sorted(set(adsl["SITEID"].dropna().astype(str)) | set(data.data_cuts)):
        part = adsl[adsl["SITEID"].astype(str).eq(site).to_numpy()]
        cut = pd.Timestamp(data.data_cuts.get(site) or date.today())
        due = [row for row in part.itertuples(index=False)
               if pd.notna(row.TRTSDT) and _study_date(row.TRTSDT, close_day) <= cut]
        imputed = sum(1 for row in due if row.RESPW4IM == "Y")
        rows.append({
            "site": site, "randomized": len(part), "due": len(due), "assessable": len(due) - imputed,
            "imputed": imputed, "not_due": len(part) - len(due),
            "responders": sum(1 for row in due if row.RESPW4 == "Y"),
            "due_rows": due,
        })
    return rows


def compute_response_by_age(completeness: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Primary response (NRI) among subjects with W4 due, by age group and overall, pooled across arms."""
    due = [row for site in completeness for row in site["due_rows"]]
    result = []
    for group in ("PEDI", "ADULT", None):
        chosen = [r for r in due if group is None or r.AGEGR1 == group]
        result.append({
            "group": group or "All",
            "n": len(chosen),
            "responders": sum(1 for r in chosen if r.RESPW4 == "Y"),
            "imputed": sum(1 for r in chosen if r.RESPW4IM == "Y"),
        })
    return result


def compute_missing_grid(data: AnalysisData, study: Any) -> tuple[list[str], list[str], dict[tuple[str, str], tuple[int, int]]]:
    """Present and expected records per (form, visit), for the forms of ``study.param("assessments")``.

    A visit is expected from a randomized, dosed subject when its window (from the first dose, or
    from the last dose for the follow-up visit) has closed by the site's data cut, and the subject had
    not left the study before the window opened. JA holds only abnormal joints, so a JA visit counts
    as present when CORE says the joint examination was done (JADONE = Y) or a JA row exists.
    """
    assessments = study.param("assessments", default={}) or {}
    forms = [code for code, visits in assessments.items() if isinstance(visits, list) and code in study.forms]
    visit_order = [v.code for v in sorted(study.visits.values(), key=lambda v: v.num)]
    visits = [v for v in visit_order if any(v in assessments[f] for f in forms)]
    present_keys: dict[str, set[tuple[str, str]]] = {}
    for code in forms:
        frame = data.forms.get(code)
        keys: set[tuple[str, str]] = set()
        if frame is not None and len(frame):
            keys = {(str(s), str(v)) for s, v in zip(frame["SUBJID"], frame["VISIT"], strict=True) if pd.notna(v)}
        present_keys[code] = keys
    if "JA" in present_keys and "CORE" in data.forms and len(data.forms["CORE"]):
        core = data.forms["CORE"]
        done = core[core["JADONE"].astype(str).eq("Y").to_numpy()]
        present_keys["JA"] |= {(str(s), str(v)) for s, v in zip(done["SUBJID"], done["VISIT"], strict=True)}

    expected: dict[str, set[str]] = defaultdict(set)  # visit -> subjects
    adsl = data.adsl[data.adsl["RANDFL"].eq("Y").to_numpy() & data.adsl["TRTSDT"].notna().to_numpy()]
    for row in adsl.itertuples(index=False):
        cut = pd.Timestamp(data.data_cuts.get(str(row.SITEID)) or date.today())
        left = row.DSSTDT if pd.notna(row.DSSTDT) else None
        for code in visits:
            visit = study.visits[code]
            if visit.window_hi is None or visit.window_lo is None:
                continue
            if visit.anchor == "first_dose":
                opens, closes = _study_date(row.TRTSDT, visit.window_lo), _study_date(row.TRTSDT, visit.window_hi)
            elif visit.anchor == "last_dose":
                if pd.isna(row.TRTEDT) or row.DSDECOD is None:
                    continue  # still on treatment: no follow-up visit yet
                opens = row.TRTEDT + pd.Timedelta(days=visit.window_lo)
                closes = row.TRTEDT + pd.Timedelta(days=visit.window_hi)
                left = None  # the follow-up visit comes after the end of participation by design
            else:
                continue
            if closes <= cut and (left is None or left >= opens):
                expected[code].add(str(row.SUBJID))
    grid: dict[tuple[str, str], tuple[int, int]] = {}
    for code in forms:
        for visit in visits:
            if visit not in assessments[code]:
                continue
            subjects = expected.get(visit, set())
            present = sum(1 for s in subjects if (s, visit) in present_keys[code])
            grid[(code, visit)] = (present, len(subjects))
    return forms, visits, grid


def compute_diary(data: AnalysisData, study: Any) -> tuple[int, int]:
    """Fever-diary days recorded and expected (days of ``assessments.fever_diary_days`` due by the cut)."""
    window = study.param("assessments", "fever_diary_days", default=None)
    fever = data.forms.get("FEVER")
    if not window or fever is None:
        return 0, 0
    first, last = int(window[0]), int(window[1])
    recorded_days: dict[str, set[date]] = defaultdict(set)
    for subject, day_value in zip(fever["SUBJID"], pd.to_datetime(fever["FVDAT"], errors="coerce"), strict=True):
        if pd.notna(day_value):
            recorded_days[str(subject)].add(day_value.date())
    expected = recorded = 0
    adsl = data.adsl[data.adsl["RANDFL"].eq("Y").to_numpy() & data.adsl["TRTSDT"].notna().to_numpy()]
    for row in adsl.itertuples(index=False):
        cut = data.data_cuts.get(str(row.SITEID)) or date.today()
        for study_day in range(first, last + 1):
            if study_day == 0:
                continue
            when = _study_date(row.TRTSDT, study_day).date()
            if when <= cut:
                expected += 1
                recorded += when in recorded_days[str(row.SUBJID)]
    return recorded, expected


# ------------------------------------------------------------------------------------------------
# SVG charts (plain inline SVG: no script, no external font or image)

COLOURS = {
    MAJOR: "#b3261e", MINOR: "#e8a33d", "bar": "#3867a8", "line": "#1b3a66", "ok": "#2e7d32",
    "imputed": "#b3261e", "axis": "#555", "grid": "#ddd",
}


def _svg_open(width: int, height: int, label: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-label="{_e(label)}"><title>{_e(label)}</title>')


def _hatch(pattern_id: str, colour: str) -> str:
    return (f'<defs><pattern id="{pattern_id}" patternUnits="userSpaceOnUse" width="6" height="6" '
            f'patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/>'
            f'<rect width="3" height="6" fill="{colour}"/></pattern></defs>')


def svg_deviation_bars(rows: list[tuple[str, int, int]], command: str) -> str:
    """Horizontal stacked bars: one per deviation code, major (solid) and minor (striped)."""
    bar_h, gap, left, right, top = 18, 6, 64, 80, 34
    width = 640
    height = top + len(rows) * (bar_h + gap) + 10
    peak = max((major + minor for _, major, minor in rows), default=0) or 1
    scale = (width - left - right) / peak
    parts = [_svg_open(width, height, "Open protocol deviations by code: major and minor"),
             _hatch("hatch-minor", COLOURS[MINOR]),
             f'<rect x="{left}" y="6" width="14" height="12" fill="{COLOURS[MAJOR]}"/>'
             f'<text x="{left + 20}" y="16">major (solid)</text>'
             f'<rect x="{left + 130}" y="6" width="14" height="12" fill="url(#hatch-minor)" stroke="{COLOURS[MINOR]}"/>'
             f'<text x="{left + 150}" y="16">minor (striped)</text>']
    for index, (code, major, minor) in enumerate(rows):
        y = top + index * (bar_h + gap)
        parts.append(f'<g><title>{_e(code)}: {major} major, {minor} minor — {_e(command)}</title>')
        parts.append(f'<text x="{left - 8}" y="{y + 13}" text-anchor="end">{_e(code)}</text>')
        x = left
        if major:
            parts.append(f'<rect x="{x}" y="{y}" width="{major * scale:.1f}" height="{bar_h}" fill="{COLOURS[MAJOR]}"/>')
            x += major * scale
        if minor:
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{minor * scale:.1f}" height="{bar_h}" '
                         f'fill="url(#hatch-minor)" stroke="{COLOURS[MINOR]}"/>')
            x += minor * scale
        text = f"{major + minor}" + (f" ({major} major)" if major and minor else "")
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 13}">{_e(text)}</text></g>')
    parts.append(f'<line x1="{left}" y1="{top - 4}" x2="{left}" y2="{height - 8}" stroke="{COLOURS["axis"]}"/>')
    parts.append("</svg>")
    return "".join(parts)


def svg_enrollment(months: list[tuple[str, int, int]], variable: str) -> str:
    """Monthly bars (new subjects) and a cumulative line, on one axis (subjects)."""
    width, height, left, right, top, bottom = 760, 280, 48, 20, 30, 54
    plot_w, plot_h = width - left - right, height - top - bottom
    total = max((cum for _, _, cum in months), default=0) or 1
    tick_step = next(m * 10 ** e for e in range(0, 7) for m in (1, 2, 5) if m * 10 ** e * 5 >= total)
    peak = -(-total // tick_step) * tick_step  # the axis ends on a round tick above the total
    step = plot_w / max(len(months), 1)
    bar_w = max(min(step * 0.7, 40), 2)
    parts = [_svg_open(width, height, f"Subjects randomized per month (bars) and cumulative (line), by {variable}")]
    ticks = list(range(0, peak + 1, tick_step))
    for tick in ticks:
        y = top + plot_h - tick / peak * plot_h
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="{COLOURS["grid"]}"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>')
    points = []
    label_every = max(1, len(months) // 12 + (1 if len(months) % 12 else 0)) if len(months) > 12 else 1
    for index, (month, n, cum) in enumerate(months):
        centre = left + step * index + step / 2
        bar_h = n / peak * plot_h
        parts.append(f'<g><title>{_e(month)}: {n} randomized, {cum} in total</title>'
                     f'<rect x="{centre - bar_w / 2:.1f}" y="{top + plot_h - bar_h:.1f}" width="{bar_w:.1f}" '
                     f'height="{bar_h:.1f}" fill="{COLOURS["bar"]}"/>')
        if n:
            parts.append(f'<text x="{centre:.1f}" y="{top + plot_h - bar_h - 4:.1f}" text-anchor="middle" '
                         f'class="small">{n}</text>')
        parts.append("</g>")
        if index % label_every == 0:
            parts.append(f'<text x="{centre:.1f}" y="{top + plot_h + 16}" text-anchor="middle" class="small">{_e(month)}</text>')
        points.append((centre, top + plot_h - cum / peak * plot_h))
    if points:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{COLOURS["line"]}" stroke-width="2.5"/>')
        for x, y in points:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{COLOURS["line"]}"/>')
        last_x, last_y = points[-1]
        parts.append(f'<text x="{last_x - 4:.1f}" y="{max(last_y - 8, 12):.1f}" text-anchor="end">cumulative {months[-1][2]}</text>')
    legend_y = height - 12
    parts.append(f'<rect x="{left}" y="{legend_y - 10}" width="14" height="10" fill="{COLOURS["bar"]}"/>'
                 f'<text x="{left + 20}" y="{legend_y}">randomized in the month (bars)</text>'
                 f'<line x1="{left + 250}" y1="{legend_y - 5}" x2="{left + 274}" y2="{legend_y - 5}" '
                 f'stroke="{COLOURS["line"]}" stroke-width="2.5"/>'
                 f'<text x="{left + 280}" y="{legend_y}">cumulative (line)</text>')
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="{COLOURS["axis"]}"/>')
    parts.append("</svg>")
    return "".join(parts)


def svg_stacked_sites(rows: list[dict[str, Any]]) -> str:
    """Per site: W4 due subjects split into assessable (solid) and imputed non-responders (striped)."""
    bar_h, gap, left, right, top = 18, 6, 64, 150, 34
    width = 640
    height = top + len(rows) * (bar_h + gap) + 10
    peak = max((r["due"] for r in rows), default=0) or 1
    scale = (width - left - right) / peak
    parts = [_svg_open(width, height, "Primary endpoint at W4: assessable and imputed subjects by site"),
             _hatch("hatch-imputed", COLOURS["imputed"]),
             f'<rect x="{left}" y="6" width="14" height="12" fill="{COLOURS["ok"]}"/>'
             f'<text x="{left + 20}" y="16">assessable (solid)</text>'
             f'<rect x="{left + 150}" y="6" width="14" height="12" fill="url(#hatch-imputed)" stroke="{COLOURS["imputed"]}"/>'
             f'<text x="{left + 170}" y="16">imputed non-responder (striped)</text>']
    for index, row in enumerate(rows):
        y = top + index * (bar_h + gap)
        label = "All sites" if row["site"] == "ALL" else f"Site {row['site']}"
        parts.append(f'<g><title>{_e(label)}: {row["assessable"]} assessable, {row["imputed"]} imputed of '
                     f'{row["due"]} due</title>')
        parts.append(f'<text x="{left - 8}" y="{y + 13}" text-anchor="end">{_e(label)}</text>')
        x = left
        if row["assessable"]:
            parts.append(f'<rect x="{x}" y="{y}" width="{row["assessable"] * scale:.1f}" height="{bar_h}" fill="{COLOURS["ok"]}"/>')
            x += row["assessable"] * scale
        if row["imputed"]:
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{row["imputed"] * scale:.1f}" height="{bar_h}" '
                         f'fill="url(#hatch-imputed)" stroke="{COLOURS["imputed"]}"/>')
            x += row["imputed"] * scale
        share = f"{row['assessable'] / row['due']:.0%}" if row["due"] else "none due"
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 13}">{row["assessable"]}/{row["due"]} ({_e(share)})</text></g>')
    parts.append("</svg>")
    return "".join(parts)


_HEAT_BINS = ((1.0, "#1e7b34", "#fff"), (0.9, "#8cc98f", "#000"), (0.75, "#f3e27a", "#000"),
              (0.5, "#f2a65a", "#000"), (0.0, "#d9534f", "#fff"))


def _heat_colour(share: float) -> tuple[str, str]:
    for threshold, fill, ink in _HEAT_BINS:
        if share >= threshold - 1e-9:
            return fill, ink
    return _HEAT_BINS[-1][1], _HEAT_BINS[-1][2]


def svg_heatmap(forms: list[str], visits: list[str], grid: dict[tuple[str, str], tuple[int, int]]) -> str:
    """A form × visit grid: each cell the share of expected records present, as colour and as text."""
    cell_w, cell_h, left, top = 58, 32, 70, 28
    width = left + cell_w * len(visits) + 10
    height = top + cell_h * len(forms) + 48
    parts = [_svg_open(width, height, "Share of expected records present, by form and visit")]
    for column, visit in enumerate(visits):
        parts.append(f'<text x="{left + column * cell_w + cell_w / 2:.1f}" y="{top - 8}" text-anchor="middle">{_e(visit)}</text>')
    for row_index, form in enumerate(forms):
        y = top + row_index * cell_h
        parts.append(f'<text x="{left - 8}" y="{y + cell_h / 2 + 5:.1f}" text-anchor="end">{_e(form)}</text>')
        for column, visit in enumerate(visits):
            x = left + column * cell_w
            if (form, visit) not in grid:
                parts.append(f'<rect x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" fill="#fff" stroke="#eee"/>')
                continue
            present, expected = grid[(form, visit)]
            if not expected:
                parts.append(f'<g><title>{_e(form)} {_e(visit)}: not yet due for any subject</title>'
                             f'<rect x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" fill="#eeeeee"/>'
                             f'<text x="{x + cell_w / 2 - 1:.1f}" y="{y + cell_h / 2 + 4:.1f}" text-anchor="middle" '
                             f'class="small" fill="#666">n/d</text></g>')
                continue
            share = present / expected
            fill, ink = _heat_colour(share)
            parts.append(f'<g><title>{_e(form)} {_e(visit)}: {present} of {expected} expected records present</title>'
                         f'<rect x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" fill="{fill}"/>'
                         f'<text x="{x + cell_w / 2 - 1:.1f}" y="{y + cell_h / 2 + 4:.1f}" text-anchor="middle" '
                         f'fill="{ink}">{share:.0%}</text></g>')
    legend_y = top + cell_h * len(forms) + 18
    x = left
    for label, (_, fill, _ink) in zip(("100%", "90–99%", "75–89%", "50–74%", "<50%"), _HEAT_BINS, strict=True):
        parts.append(f'<rect x="{x}" y="{legend_y}" width="14" height="12" fill="{fill}"/>'
                     f'<text x="{x + 18}" y="{legend_y + 11}" class="small">{label}</text>')
        x += 78
    parts.append(f'<rect x="{x}" y="{legend_y}" width="14" height="12" fill="#eeeeee"/>'
                 f'<text x="{x + 18}" y="{legend_y + 11}" class="small">n/d = not yet due</text>')
    parts.append("</svg>")
    return "".join(parts)


def svg_response(rows: list[dict[str, Any]]) -> str:
    """Horizontal bars: primary response rate (NRI) per age group and overall, 0–100 %."""
    bar_h, gap, left, right, top = 22, 10, 70, 190, 12
    width = 640
    height = top + len(rows) * (bar_h + gap) + 24
    plot_w = width - left - right
    parts = [_svg_open(width, height, "Primary response rate at W4 by age group, pooled across treatment groups")]
    for tick in (0, 25, 50, 75, 100):
        x = left + plot_w * tick / 100
        parts.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 20}" stroke="{COLOURS["grid"]}"/>'
                     f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle" class="small">{tick}%</text>')
    for index, row in enumerate(rows):
        y = top + index * (bar_h + gap)
        rate = row["responders"] / row["n"] if row["n"] else 0.0
        text = f"{rate:.0%} ({row['responders']}/{row['n']})" if row["n"] else "no subject with W4 due"
        parts.append(f'<g><title>{_e(row["group"])}: {_e(text)}</title>'
                     f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{_e(row["group"])}</text>'
                     f'<rect x="{left}" y="{y}" width="{plot_w * rate:.1f}" height="{bar_h}" fill="{COLOURS["bar"]}"/>'
                     f'<text x="{left + plot_w * rate + 6:.1f}" y="{y + 15}">{_e(text)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


# ------------------------------------------------------------------------------------------------
# HTML

CSS = """
:root { --ink: #1d232b; --muted: #56606b; --line: #d5dae0; --head: #f1f4f7; --accent: #1b3a66; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); margin: 0; background: #fafbfc; }
header { background: var(--accent); color: #fff; padding: 18px 32px 14px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 0; opacity: .92; }
main { max-width: 1200px; margin: 0 auto; padding: 8px 32px 40px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 14px 20px 12px;
          margin: 16px 0; }
h2 { font-size: 19px; margin: 2px 0 8px; color: var(--accent); }
p.lead { margin: 0 0 10px; color: var(--muted); }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px; margin: 6px 0 10px; }
.tile { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; background: var(--head); }
.tile .n { font-size: 24px; font-weight: 700; display: block; }
.tile .l { color: var(--muted); font-size: 13px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 8px; font-size: 14px; }
caption { text-align: left; font-weight: 600; padding: 4px 0; color: var(--ink); }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--head); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tfoot td { font-weight: 600; background: #f7f8fa; }
th button { all: inherit; cursor: pointer; border: 0; padding: 0; }
th button::after { content: " \\2195"; color: #99a; font-size: 11px; }
th[aria-sort="ascending"] button::after { content: " \\25B2"; color: var(--ink); }
th[aria-sort="descending"] button::after { content: " \\25BC"; color: var(--ink); }
.status { font-weight: 600; }
.status-accepted, .status-accepted-with-warnings { color: #1e6b2f; }
.status-held { color: #8a5a00; }
.status-rejected { color: #b3261e; }
.status-none { color: var(--muted); }
.sev-error { color: #b3261e; font-weight: 600; }
.sev-warning { color: #8a5a00; font-weight: 600; }
.zero { color: #9aa3ad; }
code, .cmd { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
p.cmd { background: #f3f5f8; border-left: 3px solid var(--accent); padding: 4px 10px; margin: 8px 0 2px; }
p.cmd::before { content: "Reproduce: "; font-family: system-ui, sans-serif; color: var(--muted); }
.note { background: #fff6e0; border: 1px solid #e8c76b; padding: 8px 12px; border-radius: 6px; }
svg.chart { max-width: 100%; height: auto; font-size: 13px; font-family: system-ui, sans-serif; fill: var(--ink); }
svg .small { font-size: 11px; }
details summary { cursor: pointer; color: var(--accent); }
footer { color: var(--muted); font-size: 13px; text-align: center; margin: 16px 0; }
td.msg { max-width: 480px; }
tbody th, .nowrap { white-space: nowrap; }
#site-status { font-size: 13px; }
#site-status th, #site-status td { padding: 4px 6px; }
.files { color: var(--muted); font-size: 12px; overflow-wrap: anywhere; }
td.upload { min-width: 150px; }
.scroll { overflow-x: auto; }
@media print { section { break-inside: avoid; } }
""".strip()

# Runs first: any script error becomes a visible marker in the DOM (a headless test reads it).
ERROR_HOOK = (
    "window.onerror=function(message){var root=document.documentElement;"
    "root.setAttribute('data-js-error',String(message));"
    "var note=document.createElement('p');note.id='js-error';note.textContent='Script error: '+message;"
    "(document.body||root).appendChild(note);};"
)

# Sortable tables: a button in each header cell sorts the body rows by that column (numbers by
# value, text alphabetically; a cell's data-sort overrides its text). Marks each table as ready.
SORT_SCRIPT = """
(function () {
  function key(cell) {
    var raw = cell.getAttribute('data-sort');
    if (raw === null) { raw = cell.textContent.trim(); }
    var number = Number(raw.replace(/[%,]/g, ''));
    return raw !== '' && !isNaN(number) ? [0, number] : [1, raw.toLowerCase()];
  }
  function compare(a, b) {
    if (a[0] !== b[0]) { return a[0] - b[0]; }
    return a[1] < b[1] ? -1 : (a[1] > b[1] ? 1 : 0);
  }
  function sortBy(table, index, th) {
    var ascending = th.getAttribute('aria-sort') !== 'ascending';
    Array.prototype.forEach.call(th.parentNode.cells, function (cell) { cell.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
    Array.prototype.forEach.call(table.tBodies, function (body) {
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (r1, r2) {
        var order = compare(key(r1.cells[index]), key(r2.cells[index]));
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  }
  var tables = document.querySelectorAll('table.sortable');
  Array.prototype.forEach.call(tables, function (table) {
    if (!table.tHead || !table.tHead.rows.length) { return; }
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
      var button = document.createElement('button');
      button.type = 'button';
      while (th.firstChild) { button.appendChild(th.firstChild); }
      th.appendChild(button);
      button.addEventListener('click', function () { sortBy(table, index, th); });
    });
    table.setAttribute('data-sortable', 'ready');
  });
  document.documentElement.setAttribute('data-report-js', 'ready');
})();
""".strip()


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


CSP = (
    "default-src 'none'; img-src data:; "
    f"style-src {_csp_hash(CSS)}; script-src {_csp_hash(ERROR_HOOK)} {_csp_hash(SORT_SCRIPT)}; "
    "base-uri 'none'; form-action 'none'"
)


def _num(value: Any, command: str, *, zero_muted: bool = True) -> str:
    """A number cell with the command that reproduces it as its tooltip."""
    if value is None:
        return f'<td class="num" data-sort="-1" title="{_e(command)}">–</td>'
    muted = ' zero' if zero_muted and value == 0 else ""
    return f'<td class="num{muted}" title="{_e(command)}">{_e(value)}</td>'


def _cmd(*commands: str) -> str:
    return "".join(f'<p class="cmd"><code>{_e(c)}</code></p>' for c in commands)


def _status(status: str | None) -> str:
    if not status:
        return '<span class="status status-none">— no submission</span>'
    return f'<span class="status status-{_e(status)}">{_e(STATUS_SYMBOL.get(status, ""))} {_e(status)}</span>'


def _site_label(study: Any, site: str) -> str:
    info = study.sites.get(site)
    return f"{site} {info.city} ({info.country})" if info is not None else site


def _when(timestamp: str | None) -> str:
    """A ledger UTC timestamp shown as ``YYYY-MM-DD HH:MM`` UTC."""
    if not timestamp:
        return ""
    return timestamp.replace("T", " ")[:16] + " UTC"


def _section_overview(study: Any, site: str | None, sites: list[str], data: AnalysisData,
                      statuses: list[dict[str, Any]], today: date) -> str:
    adsl = data.adsl
    randomized = int(adsl["RANDFL"].eq("Y").sum())
    dosed = int(adsl["SAFFL"].eq("Y").sum())
    with_data = sum(1 for s in statuses if s["current_id"] is not None)
    open_total = sum(s["open_total"] for s in statuses)
    cuts = sorted({c.isoformat() for c in data.data_cuts.values()})
    site_flag = f" --site {site}" if site else ""
    tiles = [
        (f"{with_data} / {len(sites)}", "sites with accepted data", f"trialkit log{site_flag}"),
        (randomized, "subjects randomized", f"{data.command} → adsl: RANDFL = Y"),
        (dosed, "subjects dosed", f"{data.command} → adsl: SAFFL = Y"),
        (open_total, "open queries", f"trialkit queries{site_flag} --status open"),
    ]
    tile_html = "".join(
        f'<div class="tile" title="{_e(command)}"><span class="n">{_e(n)}</span><span class="l">{_e(label)}</span></div>'
        for n, label, command in tiles
    )
    rows = [
        ("Study", f"{study.id} — {study.title}"),
        ("Protocol version", f"{study.protocol_version} (schema {study.schema_hash[:12]})"),
        ("Sites", ", ".join(_site_label(study, s) for s in sites)),
        ("Data cut(s)", ", ".join(cuts) or "none yet"),
        ("Charts built from", data.source + (
            " — submissions " + ", ".join(f"site {s} #{i}" for s, i in data.inputs.items()) if data.inputs else "")),
        ("Generated", f"{today.isoformat()} with trialkit {__version__}"),
    ]
    table = "".join(f'<tr><th scope="row">{_e(k)}</th><td>{_e(v)}</td></tr>' for k, v in rows)
    notes = list(data.notes)
    if data.unblinded_pool:
        notes.append("The pooled datasets were built unblinded; this report reads none of the treatment "
                     "assignment and stays blinded.")
    note_html = "".join(f'<p class="note">{_e(n)}</p>' for n in notes)
    return (
        '<section id="overview" aria-labelledby="h-overview"><h2 id="h-overview">Study overview</h2>'
        f'<div class="grid">{tile_html}</div>{note_html}'
        f'<table class="overview"><caption>What this report covers</caption><tbody>{table}</tbody></table>'
        + _cmd(f"trialkit log{site_flag}", "trialkit pool") + "</section>"
    )


def _section_sites(study: Any, statuses: list[dict[str, Any]], today: date) -> str:
    body = []
    for row in statuses:
        site = row["site"]
        log_cmd = f"trialkit log --site {site}"
        query_cmd = f"trialkit queries --site {site} --status open"
        last = row["last"]
        if last is not None:
            names = [printable(f["original_name"]) for f in last["files"]]
            files = ", ".join(names[:2]) + (f" + {len(names) - 2} more" if len(names) > 2 else "")
            breakdown = ", ".join(f"{n} {s}" for s, n in sorted(row["by_status"].items()))
            last_cells = (
                f'<td class="upload" data-sort="{last["id"]}" title="{_e(_when(last["submitted_at"]))} — {_e(log_cmd)}">'
                f'<span class="nowrap">#{last["id"]} · {_e(last["submitted_at"][:10])}</span><br>'
                f'<span class="files" title="{_e(", ".join(names))}">{_e(files)}</span></td>'
                f'<td data-sort="{_e(last["status"])}">{_status(last["status"])}</td>'
            )
        else:
            breakdown = ""
            last_cells = '<td data-sort="0">—</td><td data-sort="~">' + _status(None) + "</td>"
        current = (f'<td class="nowrap" data-sort="{row["current_id"]}" title="{_e(_when(row["current_at"]))} — {_e(log_cmd)}">'
                   f'#{row["current_id"]} · {_e((row["current_at"] or "")[:10])}</td>'
                   if row["current_id"] else '<td data-sort="0" class="zero">none yet</td>')
        body.append(
            f'<tr><th scope="row" data-sort="{_e(site)}">{_e(_site_label(study, site))}</th>'
            f'<td class="num" data-sort="{row["n_submissions"]}" title="{_e(breakdown or "none")} — {_e(log_cmd)}">'
            f'{row["n_submissions"]}</td>'
            + last_cells + current
            + f'<td class="nowrap">{_e(row["data_cut"] or "")}</td>'
            + _num(row["open_error"], query_cmd) + _num(row["open_warning"], query_cmd)
            + _num(row["open_total"], query_cmd)
            + _num(row["oldest_days"], query_cmd, zero_muted=False)
            + "</tr>"
        )
    oldest = max((r["oldest_days"] for r in statuses if r["oldest_days"] is not None), default="–")
    totals = (
        '<tfoot><tr><td>All shown sites</td>'
        f'<td class="num">{sum(r["n_submissions"] for r in statuses)}</td><td></td><td></td><td></td><td></td>'
        f'<td class="num">{sum(r["open_error"] for r in statuses)}</td>'
        f'<td class="num">{sum(r["open_warning"] for r in statuses)}</td>'
        f'<td class="num">{sum(r["open_total"] for r in statuses)}</td>'
        f'<td class="num">{_e(oldest)}</td>'
        "</tr></tfoot>"
    )
    head = ('<thead><tr><th scope="col">Site</th><th scope="col" class="num">Uploads</th>'
            '<th scope="col">Last upload (files)</th><th scope="col">Last status</th>'
            '<th scope="col">Current data</th><th scope="col">Data cut</th>'
            '<th scope="col" class="num">Open errors</th><th scope="col" class="num">Open warnings</th>'
            '<th scope="col" class="num">Open total</th><th scope="col" class="num">Oldest open (days)</th></tr></thead>')
    example = statuses[0]["site"] if statuses else "SS"
    return (
        '<section id="sites" aria-labelledby="h-sites"><h2 id="h-sites">Site status</h2>'
        '<p class="lead">Each site\'s last upload and whether it was accepted, held (warnings not yet '
        "acknowledged) or rejected (errors); the current data is the site's latest accepted submission, the "
        f"one that is pooled. Query ages are in days up to {_e(today.isoformat())}.</p>"
        f'<div class="scroll"><table class="sortable" id="site-status"><caption>Uploads and open queries per site'
        f'</caption>{head}<tbody>{"".join(body)}</tbody>{totals}</table></div>'
        + _cmd(f"trialkit log --site {example}", f"trialkit queries --site {example} --status open")
        + "</section>"
    )


def _section_deviations(study: Any, sites: list[str], counts: dict[tuple[str, str], Counter[str]]) -> str:
    titles = {r.id: r.title for r in study.rules if str(r.id).startswith("PD-")}
    codes = sorted(set(titles) | {code for code, _ in counts})
    site_flag = f" --site {sites[0]}" if len(sites) == 1 else ""
    command = f"trialkit queries{site_flag} --status open"
    head = ('<thead><tr><th scope="col">Code</th><th scope="col">Deviation</th>'
            + "".join(f'<th scope="col" class="num">Site {_e(s)}</th>' for s in sites)
            + '<th scope="col" class="num">Major</th><th scope="col" class="num">Minor</th>'
            '<th scope="col" class="num">Total</th></tr></thead>')
    body, bars = [], []
    site_totals: dict[str, Counter[str]] = defaultdict(Counter)
    for code in codes:
        major = sum(counts.get((code, s), Counter())[MAJOR] for s in sites)
        minor = sum(counts.get((code, s), Counter())[MINOR] for s in sites)
        cells = []
        for s in sites:
            found = counts.get((code, s), Counter())
            site_totals[s].update(found)
            total = found[MAJOR] + found[MINOR]
            detail = f"{found[MAJOR]} major, {found[MINOR]} minor"
            text = str(total) if not (found[MAJOR] and found[MINOR]) else f"{total} ({found[MAJOR]} major)"
            klass = "num zero" if total == 0 else ("num sev-error" if found[MAJOR] else "num sev-warning")
            cells.append(f'<td class="{klass}" data-sort="{total}" title="{_e(detail)} — '
                         f'{_e(f"trialkit queries --site {s} --status open")}">{_e(text)}</td>')
        body.append(f'<tr><th scope="row">{_e(code)}</th><td>{_e(titles.get(code, ""))}</td>{"".join(cells)}'
                    + _num(major, command) + _num(minor, command) + _num(major + minor, command) + "</tr>")
        bars.append((code, major, minor))
    foot = ('<tfoot><tr><td>All</td><td>major / minor</td>'
            + "".join(f'<td class="num">{site_totals[s][MAJOR]} / {site_totals[s][MINOR]}</td>' for s in sites)
            + f'<td class="num">{sum(b[1] for b in bars)}</td><td class="num">{sum(b[2] for b in bars)}</td>'
            f'<td class="num">{sum(b[1] + b[2] for b in bars)}</td></tr></tfoot>')
    return (
        '<section id="deviations" aria-labelledby="h-deviations"><h2 id="h-deviations">Protocol deviations</h2>'
        '<p class="lead">Open deviation queries (PD-01 … PD-13) by code and site, from the latest submission '
        "of each site whatever its status. A major deviation (red, solid) takes the subject out of the "
        "per-protocol population; a minor one is amber and striped.</p>"
        + (svg_deviation_bars([b for b in bars if b[1] or b[2]], command) if any(b[1] or b[2] for b in bars)
           else '<p>No open protocol deviation.</p>')
        + f'<table class="sortable" id="deviation-matrix"><caption>Open protocol deviations by code and site</caption>'
        f'{head}<tbody>{"".join(body)}</tbody>{foot}</table>'
        + _cmd(command + " -f csv") + "</section>"
    )


def _section_enrollment(data: AnalysisData) -> str:
    variable, months = compute_enrollment(data)
    command = f"{data.command} → {'rand' if variable == 'RANDDAT' else 'adsl'}: {variable} by month"
    if not months:
        chart = '<p class="note">No randomization or first-dose date yet.</p>'
        table = ""
    else:
        chart = svg_enrollment(months, variable)
        rows = "".join(f'<tr><td>{_e(m)}</td>{_num(n, command, zero_muted=True)}{_num(c, command, zero_muted=False)}</tr>'
                       for m, n, c in months)
        table = ('<details><summary>Enrollment by month as a table</summary>'
                 '<table class="sortable" id="enrollment"><caption>Subjects randomized per month</caption>'
                 '<thead><tr><th scope="col">Month</th><th scope="col" class="num">Randomized</th>'
                 f'<th scope="col" class="num">Cumulative</th></tr></thead><tbody>{rows}</tbody></table></details>')
    return (
        '<section id="enrollment-over-time" aria-labelledby="h-enrollment"><h2 id="h-enrollment">Enrollment over time</h2>'
        f'<p class="lead">Subjects by month of {_e(variable)} ({_e(data.source)}).</p>'
        + chart + table + _cmd(command) + "</section>"
    )


def _section_primary(study: Any, completeness: list[dict[str, Any]], data: AnalysisData) -> str:
    visit = next((v for v in study.visits.values() if v.primary), None)
    code = visit.code if visit is not None else "W4"
    close = visit.window_hi if visit is not None and visit.window_hi is not None else 32
    command = f"{data.command} → adsl: RESPW4IM (Y = imputed) for subjects whose {code} window closed by the data cut"
    body = []
    for row in completeness:
        share = f"{row['assessable'] / row['due']:.0%}" if row["due"] else "–"
        body.append(
            f'<tr><th scope="row">Site {_e(row["site"])}</th>'
            + _num(row["randomized"], command, zero_muted=False) + _num(row["due"], command, zero_muted=False)
            + _num(row["assessable"], command, zero_muted=False) + _num(row["imputed"], command)
            + _num(row["not_due"], command)
            + f'<td class="num" data-sort="{row["assessable"] / row["due"] if row["due"] else -1:.4f}">{_e(share)}</td></tr>'
        )
    total = {k: sum(r[k] for r in completeness) for k in ("randomized", "due", "assessable", "imputed", "not_due")}
    share = f"{total['assessable'] / total['due']:.0%}" if total["due"] else "–"
    foot = ("<tfoot><tr><td>All shown sites</td>"
            + "".join(f'<td class="num">{total[k]}</td>' for k in ("randomized", "due", "assessable", "imputed", "not_due"))
            + f'<td class="num">{share}</td></tr></tfoot>')
    chart_rows = [*completeness, {"site": "ALL", **total}] if len(completeness) > 1 else completeness
    return (
        '<section id="primary" aria-labelledby="h-primary"><h2 id="h-primary">Primary endpoint completeness at '
        f'{_e(code)}</h2><p class="lead">Randomized subjects whose {_e(code)} window (study day {close}) has closed '
        "by their site's data cut: assessable, or not assessable and counted as non-responders (imputed).</p>"
        + svg_stacked_sites(chart_rows)
        + '<table class="sortable" id="primary-completeness"><caption>Primary endpoint at '
        f'{_e(code)}: due, assessable, imputed</caption><thead><tr><th scope="col">Site</th>'
        '<th scope="col" class="num">Randomized</th><th scope="col" class="num">Due</th>'
        '<th scope="col" class="num">Assessable</th><th scope="col" class="num">Imputed (NRI)</th>'
        '<th scope="col" class="num">Not yet due</th><th scope="col" class="num">Assessable %</th></tr></thead>'
        f'<tbody>{"".join(body)}</tbody>{foot}</table>' + _cmd(command) + "</section>"
    )


def _section_missing(study: Any, data: AnalysisData) -> str:
    forms, visits, grid = compute_missing_grid(data, study)
    recorded, expected = compute_diary(data, study)
    command = f"{data.command} → {', '.join(f.lower() for f in forms)}: records per SUBJID and VISIT"
    diary = ""
    if expected:
        diary = (f'<p title="{_e(data.command)} → fever: FVDAT">Fever diary (study days '
                 f'{_e(" to ".join(str(d) for d in study.param("assessments", "fever_diary_days")))}): '
                 f"<strong>{recorded}</strong> of {expected} expected diary days recorded "
                 f"({recorded / expected:.0%}).</p>")
    return (
        '<section id="missing" aria-labelledby="h-missing"><h2 id="h-missing">Missing data by form and visit</h2>'
        '<p class="lead">Share of the expected records that are present. A record is expected when the '
        "protocol schedules the form at the visit, the visit window has closed by the site's data cut "
        "and the subject was still on study. JA counts as present when the joint examination was done.</p>"
        + (svg_heatmap(forms, visits, grid) if forms and visits else '<p class="note">No scheduled assessments.</p>')
        + diary + _cmd(command) + "</section>"
    )


def _section_response(completeness: list[dict[str, Any]], data: AnalysisData) -> str:
    rows = compute_response_by_age(completeness)
    command = f"{data.command} → adsl: RESPW4 by AGEGR1 (subjects with W4 due)"
    body = "".join(
        f'<tr><th scope="row">{_e(r["group"])}</th>' + _num(r["n"], command, zero_muted=False)
        + _num(r["responders"], command, zero_muted=False) + _num(r["imputed"], command)
        + f'<td class="num" data-sort="{r["responders"] / r["n"] if r["n"] else -1:.4f}">'
        + (f'{r["responders"] / r["n"]:.0%}' if r["n"] else "–") + "</td></tr>"
        for r in rows
    )
    return (
        '<section id="response" aria-labelledby="h-response"><h2 id="h-response">Primary response rate by age group '
        "(blinded)</h2><p class=\"lead\">Adapted ACR Pedi 30 (PEDI) or EULAR good/moderate (ADULT) response at "
        "W4 with non-responder imputation, <strong>pooled across treatment groups</strong>: the report never "
        "reads the treatment assignment.</p>"
        + svg_response(rows)
        + '<table class="sortable" id="response-by-age"><caption>Primary response at W4 by age group, blinded'
        '</caption><thead><tr><th scope="col">Age group</th><th scope="col" class="num">W4 due</th>'
        '<th scope="col" class="num">Responders</th><th scope="col" class="num">Imputed non-responders</th>'
        f'<th scope="col" class="num">Response rate</th></tr></thead><tbody>{body}</tbody></table>'
        + _cmd(command) + "</section>"
    )


def _section_queries(workspace: Any, sites: list[str], today: date, limit: int | None) -> str:
    rows = [q for s in sites for q in workspace.queries(site=s, status="open", today=today)]
    rows.sort(key=lambda q: (-q["age_days"], q["site"], q["query_id"]))
    shown = rows if limit is None else rows[:limit]
    body = "".join(
        f'<tr><td><code>{_e(q["query_id"])}</code></td><td>{_e(q["site"])}</td>'
        + _num(q["age_days"], f"trialkit queries --site {q['site']} --status open", zero_muted=False)
        + f'<td class="sev-{_e(q["severity"])}">{_e(q["severity"])}</td><td>{_e(q["code"])}</td>'
        f'<td>{_e(q["subject"])}</td><td>{_e(q["form"])}</td><td>{_e(q["visit"])}</td>'
        f'<td>{_e(q["variable"])}</td><td>{_e(q["value"])}</td><td class="msg">{_e(q["message"])}</td></tr>'
        for q in shown
    )
    more = (f'<p>{len(shown)} of {len(rows)} open queries shown (the oldest). The site reports '
            "(<code>trialkit report --site SS</code>) list them all.</p>") if len(shown) < len(rows) else ""
    site_flag = f" --site {sites[0]}" if len(sites) == 1 else ""
    if not rows:
        table = '<p>No open query.</p>'
    else:
        table = ('<table class="sortable" id="open-queries"><caption>Open queries, oldest first</caption><thead><tr>'
                 '<th scope="col">Query</th><th scope="col">Site</th><th scope="col" class="num">Age (days)</th>'
                 '<th scope="col">Severity</th><th scope="col">Code</th><th scope="col">Subject</th>'
                 '<th scope="col">Form</th><th scope="col">Visit</th><th scope="col">Variable</th>'
                 f'<th scope="col">Value</th><th scope="col">Message</th></tr></thead><tbody>{body}</tbody></table>')
    return (
        '<section id="queries" aria-labelledby="h-queries"><h2 id="h-queries">Open queries</h2>'
        + table + more
        + _cmd(f"trialkit queries{site_flag} --status open", f"trialkit queries{site_flag} -o queries.xlsx")
        + "</section>"
    )


def build_report_html(workspace: Any, study: Any, *, site: str | None = None,
                      pooled_dir: str | os.PathLike[str] | None = None, today: date | None = None,
                      query_limit: int | None = 50) -> str:
    """The report as one HTML document (see the module docstring). ``workspace`` is a
    :class:`~trialkit.ledger.Workspace` or its folder; ``today`` (UTC today by default) dates the
    report and ages the queries. A site report lists all of its open queries."""
    from trialkit.ledger import open_workspace

    ws = workspace if hasattr(workspace, "current_submissions") else open_workspace(workspace)
    today = today or datetime.now(UTC).date()
    if site is not None:
        try:
            site = study.site(site).id
        except KeyError as exc:
            raise UsageError(str(exc.args[0]) if exc.args else f"unknown site {site!r}") from None
        sites = [site]
    else:
        sites = sorted(set(study.sites) | {s["site"] for s in ws.log()})
    data = load_analysis_data(ws, study, site=site, pooled_dir=pooled_dir, today=today)
    statuses = compute_site_status(ws, sites, today)
    deviations = compute_deviations(ws, sites)
    completeness = compute_primary_completeness(data, study)
    scope = f"site {_site_label(study, site)}" if site else "all sites"
    title = f"{study.id} data-quality report — {scope} — {today.isoformat()}"
    sections = [
        _section_overview(study, site, sites, data, statuses, today),
        _section_sites(study, statuses, today),
        _section_deviations(study, sites, deviations),
        _section_enrollment(data),
        _section_primary(study, completeness, data),
        _section_response(completeness, data),
        _section_missing(study, data),
        _section_queries(ws, sites, today, None if site else query_limit),
    ]
    nav = " · ".join(f'<a href="#{anchor}">{_e(label)}</a>' for anchor, label in (
        ("overview", "Overview"), ("sites", "Sites"), ("deviations", "Deviations"),
        ("enrollment-over-time", "Enrollment"), ("primary", "W4 completeness"), ("response", "Response"),
        ("missing", "Missing data"), ("queries", "Open queries")))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f'<meta name="generator" content="trialkit {_e(__version__)}">'
        '<link rel="icon" href="data:,">'
        f"<title>{_e(title)}</title>"
        f"<script>{ERROR_HOOK}</script>"
        f"<style>{CSS}</style></head>\n<body>"
        f'<header><h1>{_e(study.id)} — data-quality report</h1>'
        f'<p>{_e(scope.capitalize())} · generated {_e(today.isoformat())} · trialkit {_e(__version__)} · '
        "blinded: no treatment assignment is shown</p></header>\n"
        f'<main><nav aria-label="Sections"><p>{nav}</p></nav>\n'
        + "\n".join(sections)
        + "</main>\n"
        '<footer>Every number has a tooltip naming the command that reproduces it. This file is self-contained '
        "and makes no network request.</footer>"
        f"<script>{SORT_SCRIPT}</script></body></html>\n"
    )


def write_report(workspace: Any, study: Any, path: str | os.PathLike[str], *, site: str | None = None,
                 pooled_dir: str | os.PathLike[str] | None = None, today: date | None = None) -> Path:
    """Write the report (:func:`build_report_html`) to ``path`` atomically; returns the path.

    Example::

        >>> from trialkit.ledger import open_workspace  # doctest: +SKIP
        >>> write_report(open_workspace("ws"), load_study(), "report.html", site="03")  # doctest: +SKIP
        PosixPath('report.html')
    """
    target = Path(path)
    text = build_report_html(workspace, study, site=site, pooled_dir=pooled_dir, today=today)
    temp = target.with_name(f".{target.name}.incoming")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, target)
    except OSError as exc:
        if temp.exists():
            temp.unlink()
        raise TrialkitError(f"{target}: cannot write the report ({exc.strerror or exc}); choose another -o") from exc
    return target

