"""ANK-SJIA-01's sections of the data-quality report: the study's ``report`` plug-in.

The engine (:mod:`trialkit.report`) writes the generic sections — overview, site status, protocol
deviations, enrollment, missing data by form and visit, open queries — and calls this module for
what only this trial knows (see :mod:`trialkit.study.plugins` for the contract):

- :data:`READS`: the pooled columns these sections read (never the arm: the report is blinded);
- :func:`subjects`: who is enrolled (randomization date), day 1 (first dose), last dose and
  disposition, from ADSL and RAND — the engine's enrolment and missing-data sections use it;
- :func:`overview`: the randomized and dosed counts for the overview tiles;
- :func:`present_records`: JA lists abnormal joints only, so a JA visit counts as present when
  CORE says the joint examination was done;
- :func:`sections`: completeness of the primary endpoint at W4, the blinded primary response rate
  by age group, and the completeness of the daily fever diary.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import pandas as pd

from trialkit.report import ReportContext, Section, cmd, e, num_cell, study_date
from trialkit.report.svg import svg_rate_bars, svg_stacked_sites

#: Pooled columns the sections read, by dataset or form (the engine never reads an arm column).
READS = {
    "ADSL": ("SITEID", "SUBJID", "AGEGR1", "RANDFL", "SAFFL", "TRTSDT", "TRTEDT", "DSDECOD", "DSSTDT",
             "RESPW4", "RESPW4IM"),
    "RAND": ("RANDDAT",),
    "CORE": ("JADONE",),
    "FEVER": ("FVDAT",),
    "VS": ("VSDAT",),
}
AGE_GROUPS = ("PEDI", "ADULT")
PRESENCE_NOTE = "JA counts as present when the joint examination was done (CORE JADONE = Y)."


def _adsl(data: Any) -> pd.DataFrame:
    adsl = data.dataset("ADSL").copy()
    for column in READS["ADSL"]:
        if column not in adsl.columns:
            adsl[column] = None
    for column in ("TRTSDT", "TRTEDT", "DSSTDT"):
        adsl[column] = pd.to_datetime(adsl[column], errors="coerce")
    for column in ("SITEID", "SUBJID", "AGEGR1", "RANDFL", "SAFFL", "DSDECOD", "RESPW4", "RESPW4IM"):
        adsl[column] = adsl[column].astype(object).where(adsl[column].notna(), None)
    return adsl[list(READS["ADSL"])].sort_values("SUBJID", kind="stable").reset_index(drop=True)


def subjects(data: Any, study: Any) -> pd.DataFrame:
    """One row per ADSL subject: ENRLDT = first RANDDAT (else the first dose); FIRSTDT = day 1 of a
    randomized subject; LASTDT = last dose; ENDDT/ENDED from the disposition."""
    adsl = _adsl(data)
    rand = data.form("RAND")
    enrolled = pd.Series(dtype="datetime64[ns]")
    if len(rand) and "RANDDAT" in rand.columns:
        first = rand.assign(RANDDAT=pd.to_datetime(rand["RANDDAT"], errors="coerce")).dropna(subset=["RANDDAT"])
        enrolled = first.sort_values("RANDDAT").drop_duplicates("SUBJID").set_index("SUBJID")["RANDDAT"]
    randomized = adsl["RANDFL"].eq("Y").to_numpy()
    frame = pd.DataFrame({
        "SITEID": adsl["SITEID"],
        "SUBJID": adsl["SUBJID"],
        "ENRLDT": adsl["SUBJID"].map(enrolled).fillna(adsl["TRTSDT"]) if len(enrolled) else adsl["TRTSDT"],
        "FIRSTDT": adsl["TRTSDT"].where(randomized),
        "LASTDT": adsl["TRTEDT"],
        "ENDDT": adsl["DSSTDT"],
        "ENDED": adsl["DSDECOD"].map(lambda v: None if v is None else "Y"),
    })
    frame.attrs["ENRLDT"] = "RANDDAT" if len(enrolled) else "TRTSDT"
    return frame


def overview(context: ReportContext) -> list[tuple[Any, str, str]]:
    """The overview tiles: subjects randomized (RANDFL) and dosed (SAFFL)."""
    adsl = _adsl(context.data)
    command = context.data.command
    return [
        (int(adsl["RANDFL"].eq("Y").sum()), "subjects randomized", f"{command} → adsl: RANDFL = Y"),
        (int(adsl["SAFFL"].eq("Y").sum()), "subjects dosed", f"{command} → adsl: SAFFL = Y"),
    ]


def present_records(data: Any, study: Any) -> dict[str, set[tuple[str, str]]]:
    """JA (abnormal joints only) is present at a visit where CORE says the examination was done."""
    core = data.form("CORE")
    if not len(core) or "JADONE" not in core.columns:
        return {}
    done = core[core["JADONE"].astype(str).eq("Y").to_numpy()]
    return {"JA": {(str(s), str(v)) for s, v in zip(done["SUBJID"], done["VISIT"], strict=True)}}


# ------------------------------------------------------------------------------------------------
# The numbers


def compute_primary_completeness(data: Any, study: Any) -> list[dict[str, Any]]:
    """Per site: randomized subjects, W4 due by the site's data cut, assessable, imputed (NRI)."""
    visit = next(v for v in study.visits.values() if v.primary)
    rows = []
    adsl = _adsl(data)
    adsl = adsl[adsl["RANDFL"].eq("Y").to_numpy()]
    for site in sorted(set(adsl["SITEID"].dropna().astype(str)) | set(data.data_cuts)):
        part = adsl[adsl["SITEID"].astype(str).eq(site).to_numpy()]
        cut = pd.Timestamp(data.data_cuts.get(site) or date.today())
        due = [row for row in part.itertuples(index=False)
               if pd.notna(row.TRTSDT) and study_date(row.TRTSDT, visit.window_hi) <= cut]
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
    for group in (*AGE_GROUPS, None):
        chosen = [r for r in due if group is None or r.AGEGR1 == group]
        result.append({
            "group": group or "All",
            "n": len(chosen),
            "responders": sum(1 for r in chosen if r.RESPW4 == "Y"),
            "imputed": sum(1 for r in chosen if r.RESPW4IM == "Y"),
        })
    return result


def compute_diary(data: Any, study: Any) -> tuple[int, int]:
    """Fever-diary days recorded and expected by the site's data cut: every day of
    ``protocol.diary.daily_days`` and (Amendment 1) the days V-7..V-1 before each visit of
    ``before_visits`` that took place (a dated VS record)."""
    diary = study.protocol.diary
    first, last = diary.daily_days
    vs = data.form("VS")
    visit_dates: dict[str, list[date]] = defaultdict(list)
    if len(vs) and "VSDAT" in vs.columns:
        chosen = vs[vs["VISIT"].isin(diary.before_visits).to_numpy()]
        for subject, when in zip(chosen["SUBJID"], pd.to_datetime(chosen["VSDAT"], errors="coerce"), strict=True):
            if pd.notna(when):
                visit_dates[str(subject)].append(when.date())
    fever = data.form("FEVER")
    recorded_days: dict[str, set[date]] = defaultdict(set)
    if len(fever) and "FVDAT" in fever.columns:
        for subject, day_value in zip(fever["SUBJID"], pd.to_datetime(fever["FVDAT"], errors="coerce"), strict=True):
            if pd.notna(day_value):
                recorded_days[str(subject)].add(day_value.date())
    expected = recorded = 0
    adsl = _adsl(data)
    adsl = adsl[adsl["RANDFL"].eq("Y").to_numpy() & adsl["TRTSDT"].notna().to_numpy()]
    for row in adsl.itertuples(index=False):
        cut = data.data_cuts.get(str(row.SITEID)) or date.today()
        due = {study_date(row.TRTSDT, day).date() for day in range(first, last + 1) if day != 0}
        for visit_day in visit_dates.get(str(row.SUBJID), []):
            if visit_day <= cut:
                due |= {visit_day - timedelta(days=k) for k in range(1, diary.days_before_visit + 1)}
        for when in due:
            if when <= cut:
                expected += 1
                recorded += when in recorded_days[str(row.SUBJID)]
    return recorded, expected


# ------------------------------------------------------------------------------------------------
# The sections


def sections(context: ReportContext) -> list[Section]:
    """The trial's sections, in page order."""
    completeness = compute_primary_completeness(context.data, context.study)
    return [
        Section("primary", "W4 completeness", _section_primary(context.study, completeness, context.data)),
        Section("response", "Response", _section_response(completeness, context.data)),
        Section("diary", "Fever diary", _section_diary(context.study, context.data)),
    ]


def _section_primary(study: Any, completeness: list[dict[str, Any]], data: Any) -> str:
    visit = next(v for v in study.visits.values() if v.primary)
    code, close = visit.code, visit.window_hi
    command = f"{data.command} → adsl: RESPW4IM (Y = imputed) for subjects whose {code} window closed by the data cut"
    body = []
    for row in completeness:
        share = f"{row['assessable'] / row['due']:.0%}" if row["due"] else "–"
        body.append(
            f'<tr><th scope="row">Site {e(row["site"])}</th>'
            + num_cell(row["randomized"], command, zero_muted=False) + num_cell(row["due"], command, zero_muted=False)
            + num_cell(row["assessable"], command, zero_muted=False) + num_cell(row["imputed"], command)
            + num_cell(row["not_due"], command)
            + f'<td class="num" data-sort="{row["assessable"] / row["due"] if row["due"] else -1:.4f}">{e(share)}</td></tr>'
        )
    keys = ("randomized", "due", "assessable", "imputed", "not_due")
    total = {k: sum(r[k] for r in completeness) for k in keys}
    share = f"{total['assessable'] / total['due']:.0%}" if total["due"] else "–"
    foot = ("<tfoot><tr><td>All shown sites</td>"
            + "".join(f'<td class="num">{total[k]}</td>' for k in keys)
            + f'<td class="num">{share}</td></tr></tfoot>')
    chart_rows = [*completeness, {"site": "ALL", **total}] if len(completeness) > 1 else completeness
    chart = svg_stacked_sites(chart_rows, title=f"Primary endpoint at {code}: assessable and imputed subjects by site",
                              solid_label="assessable (solid)", striped_label="imputed non-responder (striped)")
    return (
        '<section id="primary" aria-labelledby="h-primary"><h2 id="h-primary">Primary endpoint completeness at '
        f'{e(code)}</h2><p class="lead">Randomized subjects whose {e(code)} window (study day {close}) has closed '
        "by their site's data cut: assessable, or not assessable and counted as non-responders (imputed).</p>"
        + chart
        + '<table class="sortable" id="primary-completeness"><caption>Primary endpoint at '
        f'{e(code)}: due, assessable, imputed</caption><thead><tr><th scope="col">Site</th>'
        '<th scope="col" class="num">Randomized</th><th scope="col" class="num">Due</th>'
        '<th scope="col" class="num">Assessable</th><th scope="col" class="num">Imputed (NRI)</th>'
        '<th scope="col" class="num">Not yet due</th><th scope="col" class="num">Assessable %</th></tr></thead>'
        f'<tbody>{"".join(body)}</tbody>{foot}</table>' + cmd(command) + "</section>"
    )


def _section_response(completeness: list[dict[str, Any]], data: Any) -> str:
    rows = compute_response_by_age(completeness)
    command = f"{data.command} → adsl: RESPW4 by AGEGR1 (subjects with W4 due)"
    body = "".join(
        f'<tr><th scope="row">{e(r["group"])}</th>' + num_cell(r["n"], command, zero_muted=False)
        + num_cell(r["responders"], command, zero_muted=False) + num_cell(r["imputed"], command)
        + f'<td class="num" data-sort="{r["responders"] / r["n"] if r["n"] else -1:.4f}">'
        + (f'{r["responders"] / r["n"]:.0%}' if r["n"] else "–") + "</td></tr>"
        for r in rows
    )
    chart = svg_rate_bars(rows, title="Primary response rate at W4 by age group, pooled across treatment groups",
                          empty="no subject with W4 due")
    return (
        '<section id="response" aria-labelledby="h-response"><h2 id="h-response">Primary response rate by age group '
        "(blinded)</h2><p class=\"lead\">Adapted ACR Pedi 30 (PEDI) or EULAR good/moderate (ADULT) response at "
        "W4 with non-responder imputation, <strong>pooled across treatment groups</strong>: the report never "
        "reads the treatment assignment.</p>"
        + chart
        + '<table class="sortable" id="response-by-age"><caption>Primary response at W4 by age group, blinded'
        '</caption><thead><tr><th scope="col">Age group</th><th scope="col" class="num">W4 due</th>'
        '<th scope="col" class="num">Responders</th><th scope="col" class="num">Imputed non-responders</th>'
        f'<th scope="col" class="num">Response rate</th></tr></thead><tbody>{body}</tbody></table>'
        + cmd(command) + "</section>"
    )


def _section_diary(study: Any, data: Any) -> str:
    recorded, expected = compute_diary(data, study)
    diary = study.protocol.diary
    first, last = diary.daily_days
    before = f"{diary.before_visits[0]} to {diary.before_visits[-1]}" if diary.before_visits else ""
    extra = f" and the {diary.days_before_visit} days before each visit {before}" if before else ""
    command = f"{data.command} → fever: FVDAT per subject, study days {first} to {last}{extra}"
    if expected:
        text = (f'<p title="{e(command)}">Fever diary (study days {e(first)} to {e(last)}{e(extra)}): '
                f"<strong>{recorded}</strong> of {expected} expected diary days recorded "
                f"({recorded / expected:.0%}).</p>")
    else:
        text = '<p class="note">No diary day is due yet.</p>'
    return (
        '<section id="diary" aria-labelledby="h-diary"><h2 id="h-diary">Fever diary</h2>'
        '<p class="lead">The daily fever diary of randomized, dosed subjects, on the days the protocol '
        "requires it that have passed by the site's data cut.</p>"
        + text + cmd(command) + "</section>"
    )
