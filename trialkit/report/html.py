"""The HTML data-quality report: one self-contained file that works offline.

:func:`write_report` (and :func:`build_report_html`, which returns the text) gathers what a data
manager looks at first — which sites are clean, where the deviations are, what is still open — from
the workspace's ledger and the pooled datasets, and renders it as one HTML file. The engine's
sections know no trial:

- a study overview (study, protocol version, sites, subjects, data cuts, trialkit version);
- the status of every site (last and current submission, open queries by severity, oldest query);
- protocol deviations by code and site (a table and an SVG bar chart, major and minor);
- enrollment over time (subjects per month and cumulative, SVG);
- a missing-data heat map by form and visit (share of the expected records present, SVG);
- the study's own sections, from its ``report`` plug-in (e.g. a primary endpoint's completeness
  and a blinded response rate; see :mod:`trialkit.study.plugins`);
- the open queries, oldest first.

Every number carries the command that reproduces it (a ``title`` tooltip and a ``<code>`` line under
each section). The file makes no network request at all: inline CSS, one small inline script for
sortable tables, charts as inline SVG, and a Content-Security-Policy that forbids loading anything
(the inline style and scripts are allowed by their sha256). Every value is escaped with
:func:`html.escape`, so text typed by a site (an AE term, a file name) is shown, never interpreted.
The report is blinded: no arm column is ever read (:data:`trialkit.report.data.BLINDED_OUT`). The
same inputs and ``today`` give the same bytes.

With ``site``, the report is that site's only: its submissions, queries, deviations and subjects, and
no other site's ids (a site sees only its own data and its own queries).
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from trialkit import __version__
from trialkit.errors import TrialkitError, UsageError
from trialkit.findings import Category
from trialkit.report.data import ReportData, load_report_data
from trialkit.report.markup import (
    CSP,
    CSS,
    ERROR_HOOK,
    SORT_SCRIPT,
    cmd,
    num_cell,
    site_label,
    status_badge,
    when,
)
from trialkit.report.markup import e as _e
from trialkit.report.metrics import (
    MAJOR,
    MINOR,
    compute_deviation_statuses,
    compute_deviations,
    compute_enrollment,
    compute_missing_grid,
    compute_site_status,
)
from trialkit.report.svg import svg_deviation_bars, svg_enrollment, svg_heatmap
from trialkit.textsafe import printable

__all__ = ["ReportContext", "Section", "build_report_html", "write_report"]

_num, _cmd, _status, _site_label, _when = num_cell, cmd, status_badge, site_label, when


@dataclass(frozen=True)
class Section:
    """One section of the report: its anchor id, its label in the navigation and its HTML."""

    id: str
    nav: str
    html: str


@dataclass(frozen=True)
class ReportContext:
    """What a study's report sections receive: the study, the report's data, the sites shown, the
    single site of a site report (else None), the report's date and the workspace (its ledger)."""

    study: Any
    data: ReportData
    sites: list[str]
    site: str | None
    today: date
    workspace: Any


def _section_overview(study: Any, site: str | None, sites: list[str], data: ReportData,
                      statuses: list[dict[str, Any]], today: date, extra_tiles: list[tuple[Any, str, str]]) -> str:
    with_data = sum(1 for s in statuses if s["current_id"] is not None)
    open_total = sum(s["open_total"] for s in statuses)
    cuts = sorted({c.isoformat() for c in data.data_cuts.values()})
    site_flag = f" --site {site}" if site else ""
    tiles = [(f"{with_data} / {len(sites)}", "sites with accepted data", f"trialkit log{site_flag}")]
    tiles += extra_tiles or [(len(data.subjects), "subjects with data", f"{data.command} → all forms: SUBJID")]
    tiles.append((open_total, "open queries", f"trialkit queries{site_flag} --status open"))
    tile_html = "".join(
        f'<div class="tile" title="{_e(command)}"><span class="n">{_e(n)}</span><span class="l">{_e(label)}</span></div>'
        for n, label, command in tiles
    )
    versions = sorted({str(sub.study_version) for sub in statuses_current(statuses) if sub})
    rows = [
        ("Study", f"{study.id} — {study.title}"),
        ("Protocol version", f"{study.protocol_version} (schema {study.schema_hash[:12]})"
                             + (f"; submissions validated against {', '.join(versions)}" if versions else "")),
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


def _section_deviations(study: Any, sites: list[str], counts: dict[tuple[str, str], Counter[str]],
                        statuses: tuple[dict[str, Counter[str]], dict[str, Counter[str]]]) -> str:
    titles = {r.id: r.title for r in study.rules if r.category == Category.DEVIATION}
    codes = sorted(set(titles) | {code for code, _ in counts})
    site_flag = f" --site {sites[0]}" if len(sites) == 1 else ""
    command = f"trialkit deviations{site_flag} --status open --status confirmed"
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
        f'<p class="lead">The deviation log{_e(_code_range(codes))}: every deviation detected in any upload, by code '
        "and site. Counted here are those that stand — open (detected, not yet decided) and confirmed by the data "
        "manager; a confirmed major deviation (red, solid) takes the subject out of the per-protocol population; "
        "a minor one is amber and striped. Deviations that corrected data resolved or the data manager dismissed "
        "stay in the log (the table by status below).</p>"
        + (svg_deviation_bars([b for b in bars if b[1] or b[2]], command) if any(b[1] or b[2] for b in bars)
           else '<p>No open or confirmed protocol deviation.</p>')
        + '<table class="sortable" id="deviation-matrix"><caption>Open and confirmed protocol deviations by code and '
        f'site</caption>{head}<tbody>{"".join(body)}</tbody>{foot}</table>'
        + _deviation_statuses(statuses, site_flag)
        + _cmd(command + " -f csv", f"trialkit deviations{site_flag} -f xlsx -o deviation_log.xlsx") + "</section>"
    )


def _deviation_statuses(statuses: tuple[dict[str, Counter[str]], dict[str, Counter[str]]], site_flag: str) -> str:
    """Two small tables: the log by code and by site, per status."""
    by_code, by_site = statuses
    names = ("open", "confirmed", "resolved", "dismissed")
    head = "".join(f'<th scope="col" class="num">{_e(n)}</th>' for n in names) + '<th scope="col" class="num">Total</th>'
    tables = []
    for key, caption, rows in (("deviation-status-by-code", "The deviation log by code and status", by_code),
                               ("deviation-status-by-site", "The deviation log by site and status", by_site)):
        body = []
        for name, found in rows.items():
            label = f"Site {name}" if key.endswith("site") else name
            where = f" --site {name}" if key.endswith("site") else site_flag
            cells = "".join(_num(found.get(n, 0), f"trialkit deviations{where} --status {n}") for n in names)
            body.append(f'<tr><th scope="row">{_e(label)}</th>{cells}'
                        + _num(sum(found.values()), f"trialkit deviations{where}") + "</tr>")
        first = "Code" if key.endswith("code") else "Site"
        tables.append(f'<table class="sortable" id="{key}"><caption>{_e(caption)}</caption><thead><tr>'
                      f'<th scope="col">{first}</th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>')
    return "".join(tables)


def _code_range(codes: list[str]) -> str:
    """`` (PD-01 … PD-13)`` for a sorted list of codes; empty when there are none."""
    if not codes:
        return ""
    return f" ({codes[0]})" if len(codes) == 1 else f" ({codes[0]} … {codes[-1]})"


def _section_enrollment(data: ReportData) -> str:
    months = compute_enrollment(data)
    variable = data.subjects_note
    command = f"{data.command} → subjects by month of {variable}"
    if not months:
        chart = '<p class="note">No enrolment date yet.</p>'
        table = ""
    else:
        chart = svg_enrollment(months, variable)
        rows = "".join(f'<tr><td>{_e(m)}</td>{_num(n, command, zero_muted=True)}{_num(c, command, zero_muted=False)}</tr>'
                       for m, n, c in months)
        table = ('<details><summary>Enrollment by month as a table</summary>'
                 '<table class="sortable" id="enrollment"><caption>Subjects enrolled per month</caption>'
                 '<thead><tr><th scope="col">Month</th><th scope="col" class="num">Enrolled</th>'
                 f'<th scope="col" class="num">Cumulative</th></tr></thead><tbody>{rows}</tbody></table></details>')
    return (
        '<section id="enrollment-over-time" aria-labelledby="h-enrollment"><h2 id="h-enrollment">Enrollment over time</h2>'
        f'<p class="lead">Subjects by month of {_e(variable)} ({_e(data.source)}).</p>'
        + chart + table + _cmd(command) + "</section>"
    )


def _section_missing(study: Any, data: ReportData, plugin: Any) -> str:
    present = plugin.present_records(data, study) if callable(getattr(plugin, "present_records", None)) else None
    forms, visits, grid = compute_missing_grid(data, study, present)
    command = f"{data.command} → {', '.join(f.lower() for f in forms)}: records per SUBJID and VISIT"
    if data.subjects["FIRSTDT"].notna().any():
        rule = ("the protocol schedules the form at the visit, the visit window has closed by the site's data "
                "cut and the subject was still on study")
    else:
        rule = ("the study schedules the form at the visit and the subject has records at that visit or "
                "a later one")
    return (
        '<section id="missing" aria-labelledby="h-missing"><h2 id="h-missing">Missing data by form and visit</h2>'
        f'<p class="lead">Share of the expected records that are present. A record is expected when {_e(rule)}.'
        + (f" {_e(plugin.PRESENCE_NOTE)}" if getattr(plugin, "PRESENCE_NOTE", None) else "") + "</p>"
        + (svg_heatmap(forms, visits, grid) if forms and visits else '<p class="note">No scheduled assessments.</p>')
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


def statuses_current(statuses: list[dict[str, Any]]) -> list[Any]:
    """The current submissions behind the site-status rows (``None`` where a site has none)."""
    return [row.get("current") for row in statuses]


def build_report_html(workspace: Any, study: Any, *, site: str | None = None,
                      pooled_dir: str | os.PathLike[str] | None = None, today: date | None = None,
                      query_limit: int | None = 50) -> str:
    """The report as one HTML document (see the module docstring). ``workspace`` is a
    :class:`~trialkit.ledger.Workspace` or its folder; ``today`` (UTC today by default) dates the
    report and ages the queries. A site report lists all of its open queries."""
    from trialkit.ledger import open_workspace
    from trialkit.study.plugins import report_plugin

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
    plugin = report_plugin(study)
    data = load_report_data(ws, study, site=site, pooled_dir=pooled_dir, today=today)
    statuses = compute_site_status(ws, sites, today)
    current = ws.current_submissions()
    for row in statuses:
        row["current"] = current.get(row["site"])
    deviations = compute_deviations(ws, sites)
    deviation_statuses = compute_deviation_statuses(ws, sites)
    context = ReportContext(study=study, data=data, sites=sites, site=site, today=today, workspace=ws)
    tiles = list(plugin.overview(context)) if callable(getattr(plugin, "overview", None)) else []
    trial = list(plugin.sections(context)) if plugin is not None else []
    scope = f"site {_site_label(study, site)}" if site else "all sites"
    title = f"{study.id} data-quality report — {scope} — {today.isoformat()}"
    sections = [
        Section("overview", "Overview", _section_overview(study, site, sites, data, statuses, today, tiles)),
        Section("sites", "Sites", _section_sites(study, statuses, today)),
        Section("deviations", "Deviations", _section_deviations(study, sites, deviations, deviation_statuses)),
        Section("enrollment-over-time", "Enrollment", _section_enrollment(data)),
        *trial,
        Section("missing", "Missing data", _section_missing(study, data, plugin)),
        Section("queries", "Open queries", _section_queries(ws, sites, today, None if site else query_limit)),
    ]
    nav = " · ".join(f'<a href="#{_e(s.id)}">{_e(s.nav)}</a>' for s in sections)
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
        + "\n".join(s.html for s in sections)
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
