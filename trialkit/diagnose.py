"""Findings that diagnose before they list: one finding for one cause, however many rows it touches.

A data manager who names the wrong site, or a site that types its file in another site's
conventions, would otherwise get thousands of findings with the same cause. These functions find
the cause and say it once, with the count and the first cells; the validator
(:func:`trialkit.validate.validate`) calls them.

``SITE-MISMATCH`` (:func:`site_mismatch`)
    no record of the upload is the site named with ``--site`` and some are another site's: "every
    record is site 03; did you mean --site 03?". It replaces the per-record ``WRONG-SITE`` errors
    (which stay for an upload that mixes a few records of another site into the site's own), and
    nothing else of the upload is validated: the data are someone else's.
``SITE-CONVENTIONS`` (:func:`convention_findings`)
    at least :data:`MIN_CELLS` numbers typed with a decimal comma at a site whose decimal mark is a
    point, or dates that cannot be read in the site's date order but all read in another: the file
    was typed in another site's conventions. One finding per site and kind replaces those cells'
    ``IMP-TYPE`` errors; it names the count, the first cells (also in its evidence) and, for dates,
    how many other dates were read in the site's order and may be wrong.

Example::

    >>> from trialkit.findings import Finding
    >>> cells = [Finding("IMP-TYPE", "error", "type", f"WEIGHT: '{n},5' is not a number", site="07", form="VS",
    ...                  variable="WEIGHT", value=f"{n},5", expected="a number", row=n) for n in range(2, 6)]
    >>> class Site:  # the study's site table, as far as this needs it
    ...     def __init__(self, mark, order): self.decimal_mark, self.date_order, self.city = mark, order, "X"
    >>> class Study:
    ...     sites = {"07": Site(".", "DMY"), "03": Site(",", "DMY")}
    >>> [f.code for f in convention_findings(Study(), cells)]
    ['SITE-CONVENTIONS']
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from trialkit.findings import Category, Finding, Severity, query_id

SITE_MISMATCH = "SITE-MISMATCH"
SITE_CONVENTIONS = "SITE-CONVENTIONS"
MIN_CELLS = 3  # fewer cells with the same cause are typing slips, listed one by one
SHOWN = 5  # cells named in a diagnosis's message
KEPT = 50  # cells kept in its evidence

_DECIMAL_COMMA = re.compile(r"^\s*[+-]?\d*,\d+\s*$")
_DATE_PARTS = re.compile(r"^\s*(\d{1,2})[./-](\d{1,2})[./-](\d{4})\s*$")
_ORDER_WORDS = {"DMY": "day first", "MDY": "month first", "YMD": "year first"}
_NUMBER_KINDS = ("a number", "a whole number")


def site_mismatch(site: str, foreign: Sequence[Mapping[str, Any]], own_records: int,
                  files: Iterable[str] = ()) -> Finding | None:
    """One ``SITE-MISMATCH`` error when ``own_records`` is 0 and ``foreign`` (the records of other
    sites: dicts with ``other``, ``form``) is not empty; None otherwise."""
    if own_records or not foreign:
        return None
    by_site = Counter(str(entry.get("other")) for entry in foreign)
    forms = sorted({str(entry.get("form")) for entry in foreign if entry.get("form")})
    likely, count = by_site.most_common(1)[0]
    if len(by_site) == 1:
        what = f"every record is site {likely} ({count} record(s) in {', '.join(forms)})"
    else:
        what = (f"no record is site {site}: "
                + ", ".join(f"{n} are site {other}" for other, n in by_site.most_common()))
    names = ", ".join(sorted({str(f) for f in files}))
    return Finding(
        code=SITE_MISMATCH, severity=Severity.ERROR, category=Category.STRUCTURE, site=site,
        variable="SITEID", value=likely, expected=site,
        message=f"{what}; did you mean --site {likely}? Nothing of the upload was validated as site {site}'s data",
        file=names or None, check="site", reference="Synopsis: Blinding and privacy",
        evidence={"sites": dict(by_site), "forms": forms, "records": sum(by_site.values())},
        query_id=query_id(SITE_MISMATCH, None, None, [site, *sorted(by_site)], "SITEID"),
    )


def convention_findings(study: Any, findings: Sequence[Finding]) -> list[Finding]:
    """``findings`` with the ``IMP-TYPE`` errors that another site's conventions explain replaced by
    one ``SITE-CONVENTIONS`` finding per site and kind (see the module)."""
    commas: dict[str, list[Finding]] = {}
    dates: dict[str, list[tuple[Finding, str]]] = {}
    for finding in findings:
        if finding.code != "IMP-TYPE" or finding.value is None or finding.site not in study.sites:
            continue
        site = study.sites[finding.site]
        if finding.expected in _NUMBER_KINDS and site.decimal_mark == "." and _DECIMAL_COMMA.match(finding.value):
            commas.setdefault(finding.site, []).append(finding)
        elif finding.expected == "a date":
            order = _other_order(finding.value, site.date_order)
            if order is not None:
                dates.setdefault(finding.site, []).append((finding, order))
    replaced: set[int] = set()
    added: list[Finding] = []
    for site_id, cells in commas.items():
        if len(cells) < MIN_CELLS:
            continue
        replaced.update(id(f) for f in cells)
        others = sorted(s for s, v in study.sites.items() if v.decimal_mark == ",")
        added.append(_diagnosis(
            study, site_id, cells, kind="decimal comma",
            message=(f"{len(cells)} numbers are typed with a decimal comma ({_shown(cells)}), but site {site_id} "
                     f"({study.sites[site_id].city}) types a decimal point: the file looks typed in another site's "
                     "conventions. Check --site"
                     + (f" (sites that type a decimal comma: {', '.join(others)})" if others else "")
                     + ", or ask the site to send the numbers with a decimal point")))
    for site_id, pairs in dates.items():
        orders = Counter(order for _, order in pairs)
        order, _ = orders.most_common(1)[0]
        cells = [f for f, o in pairs if o == order]
        if len(cells) < MIN_CELLS:
            continue
        replaced.update(id(f) for f in cells)
        own = study.sites[site_id].date_order
        read = _dates_read(findings, site_id, own)
        others = sorted(s for s, v in study.sites.items() if v.date_order == order)
        added.append(_diagnosis(
            study, site_id, cells, kind=f"date order {order}",
            message=(f"{len(cells)} dates cannot be read {_ORDER_WORDS[own]} as site {site_id} "
                     f"({study.sites[site_id].city}) types them, but read {_ORDER_WORDS[order]} ({_shown(cells)}): "
                     "the file looks typed in another site's conventions"
                     + (f"; the {read} other date(s) were read {_ORDER_WORDS[own]} and may be wrong" if read else "")
                     + ". Check --site"
                     + (f" (sites that type {_ORDER_WORDS[order]}: {', '.join(others)})" if others else "")
                     + f", or ask the site to type dates {_ORDER_WORDS[own]} or as YYYY-MM-DD")))
    if not added:
        return list(findings)
    return [f for f in findings if id(f) not in replaced] + added


def _other_order(text: str, own: str) -> str | None:
    """The date order (DMY, MDY) in which a date that fails in ``own`` reads; None when none does."""
    match = _DATE_PARTS.match(text)
    if match is None:
        return None
    first, second, year = (int(g) for g in match.groups())
    for order, (day, month) in (("DMY", (first, second)), ("MDY", (second, first))):
        if order == own:
            continue
        try:
            dt.date(year, month, day)
        except ValueError:
            continue
        return order
    return None


def _dates_read(findings: Sequence[Finding], site: str, order: str) -> int:
    """How many dates the importer read in the site's ``order`` (its ``date:ORDER`` info findings)."""
    total = 0
    for finding in findings:
        if finding.code == "IMP-NORMALISED" and finding.check == f"date:{order}" and finding.site in (site, None):
            total += int((finding.evidence or {}).get("count") or 0)
    return total


def _shown(cells: Sequence[Finding]) -> str:
    parts = [f"'{f.value}' in {' '.join(p for p in (f.form, f.variable) if p)}"
             + (f" row {f.row}" if f.row is not None else "") for f in cells[:SHOWN]]
    return ", ".join(parts) + (", …" if len(cells) > SHOWN else "")


def _diagnosis(study: Any, site: str, cells: Sequence[Finding], *, kind: str, message: str) -> Finding:
    first = cells[0]
    files = sorted({str(f.file) for f in cells if f.file})
    return Finding(
        code=SITE_CONVENTIONS, severity=Severity.ERROR, category=Category.TYPE, site=site, message=message,
        value=str(len(cells)), expected=kind, file=files[0] if len(files) == 1 else None,
        form=first.form if len({f.form for f in cells}) == 1 else None,
        check="site conventions", reference=f"Site table: site {site}'s date order and decimal mark",
        evidence={"kind": kind, "count": len(cells), "files": files,
                  "cells": [{"file": f.file, "sheet": f.sheet, "row": f.row, "form": f.form, "variable": f.variable,
                             "value": f.value} for f in cells[:KEPT]]},
        query_id=query_id(SITE_CONVENTIONS, None, None, [site, kind], None),
    )
