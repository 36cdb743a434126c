"""Charts of the data-quality report as plain inline SVG: no script, no external font or image.

Each function returns one ``<svg>`` element as text, with a ``<title>`` and ``aria-label`` naming
what it shows; every value is escaped. Study report sections (the ``report`` plug-in) use them too.
"""

from __future__ import annotations

from typing import Any

from trialkit.report.markup import e as _e

MAJOR, MINOR = "major", "minor"

COLOURS = {
    MAJOR: "#b3261e", MINOR: "#e8a33d", "bar": "#3867a8", "line": "#1b3a66", "ok": "#2e7d32",
    "imputed": "#b3261e", "axis": "#555", "grid": "#ddd",
}


def svg_open(width: int, height: int, label: str) -> str:
    """The opening ``<svg>`` tag with its title and accessible label."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-label="{_e(label)}"><title>{_e(label)}</title>')


def hatch(pattern_id: str, colour: str) -> str:
    """A striped fill pattern (for the second part of a stacked bar)."""
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
    parts = [svg_open(width, height, "Open protocol deviations by code: major and minor"),
             hatch("hatch-minor", COLOURS[MINOR]),
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
    """Monthly bars (new subjects) and a cumulative line, on one axis (subjects); ``variable`` names the date."""
    width, height, left, right, top, bottom = 760, 280, 48, 20, 30, 54
    plot_w, plot_h = width - left - right, height - top - bottom
    total = max((cum for _, _, cum in months), default=0) or 1
    tick_step = next(m * 10 ** e for e in range(0, 7) for m in (1, 2, 5) if m * 10 ** e * 5 >= total)
    peak = -(-total // tick_step) * tick_step  # the axis ends on a round tick above the total
    step = plot_w / max(len(months), 1)
    bar_w = max(min(step * 0.7, 40), 2)
    parts = [svg_open(width, height, f"Subjects enrolled per month (bars) and cumulative (line), by {variable}")]
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
        parts.append(f'<g><title>{_e(month)}: {n} enrolled, {cum} in total</title>'
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
                 f'<text x="{left + 20}" y="{legend_y}">enrolled in the month (bars)</text>'
                 f'<line x1="{left + 250}" y1="{legend_y - 5}" x2="{left + 274}" y2="{legend_y - 5}" '
                 f'stroke="{COLOURS["line"]}" stroke-width="2.5"/>'
                 f'<text x="{left + 280}" y="{legend_y}">cumulative (line)</text>')
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="{COLOURS["axis"]}"/>')
    parts.append("</svg>")
    return "".join(parts)


def svg_stacked_sites(rows: list[dict[str, Any]], *, title: str, solid: str = "assessable",
                      striped: str = "imputed", solid_label: str = "assessable (solid)",
                      striped_label: str = "imputed (striped)") -> str:
    """Per row (``site``; ``ALL`` for all sites): ``due`` split into ``solid`` (green) and ``striped`` (red)."""
    bar_h, gap, left, right, top = 18, 6, 64, 150, 34
    width = 640
    height = top + len(rows) * (bar_h + gap) + 10
    peak = max((r["due"] for r in rows), default=0) or 1
    scale = (width - left - right) / peak
    parts = [svg_open(width, height, title),
             hatch("hatch-imputed", COLOURS["imputed"]),
             f'<rect x="{left}" y="6" width="14" height="12" fill="{COLOURS["ok"]}"/>'
             f'<text x="{left + 20}" y="16">{_e(solid_label)}</text>'
             f'<rect x="{left + 150}" y="6" width="14" height="12" fill="url(#hatch-imputed)" stroke="{COLOURS["imputed"]}"/>'
             f'<text x="{left + 170}" y="16">{_e(striped_label)}</text>']
    for index, row in enumerate(rows):
        y = top + index * (bar_h + gap)
        label = "All sites" if row["site"] == "ALL" else f"Site {row['site']}"
        parts.append(f'<g><title>{_e(label)}: {row[solid]} {_e(solid)}, {row[striped]} {_e(striped)} of '
                     f'{row["due"]} due</title>')
        parts.append(f'<text x="{left - 8}" y="{y + 13}" text-anchor="end">{_e(label)}</text>')
        x = left
        if row[solid]:
            parts.append(f'<rect x="{x}" y="{y}" width="{row[solid] * scale:.1f}" height="{bar_h}" fill="{COLOURS["ok"]}"/>')
            x += row[solid] * scale
        if row[striped]:
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{row[striped] * scale:.1f}" height="{bar_h}" '
                         f'fill="url(#hatch-imputed)" stroke="{COLOURS["imputed"]}"/>')
            x += row[striped] * scale
        share = f"{row[solid] / row['due']:.0%}" if row["due"] else "none due"
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 13}">{row[solid]}/{row["due"]} ({_e(share)})</text></g>')
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
    parts = [svg_open(width, height, "Share of expected records present, by form and visit")]
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


def svg_rate_bars(rows: list[dict[str, Any]], *, title: str, empty: str = "none") -> str:
    """Horizontal bars: a rate (``responders`` of ``n``) per ``group``, 0–100 %."""
    bar_h, gap, left, right, top = 22, 10, 70, 190, 12
    width = 640
    height = top + len(rows) * (bar_h + gap) + 24
    plot_w = width - left - right
    parts = [svg_open(width, height, title)]
    for tick in (0, 25, 50, 75, 100):
        x = left + plot_w * tick / 100
        parts.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - 20}" stroke="{COLOURS["grid"]}"/>'
                     f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle" class="small">{tick}%</text>')
    for index, row in enumerate(rows):
        y = top + index * (bar_h + gap)
        rate = row["responders"] / row["n"] if row["n"] else 0.0
        text = f"{rate:.0%} ({row['responders']}/{row['n']})" if row["n"] else empty
        parts.append(f'<g><title>{_e(row["group"])}: {_e(text)}</title>'
                     f'<text x="{left - 8}" y="{y + 15}" text-anchor="end">{_e(row["group"])}</text>'
                     f'<rect x="{left}" y="{y}" width="{plot_w * rate:.1f}" height="{bar_h}" fill="{COLOURS["bar"]}"/>'
                     f'<text x="{left + plot_w * rate + 6:.1f}" y="{y + 15}">{_e(text)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)
