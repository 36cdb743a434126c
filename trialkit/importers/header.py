"""Find a table's header row by content, and name its columns as the site sees them.

Sites put notes above a table: an export title, "printed by ...", a date, ``#`` comments. The header
is therefore found by content, not taken to be the first non-empty row:

1. When the study's variable names and labels are known (``known``, compared with
   :func:`header_key`), the header is the row among the first :data:`DEPTH` non-empty rows where
   most cells name a variable — provided it names at least two (or all of its cells name one).
2. Otherwise the header is the first row that *looks like* one with the table under it: only text,
   at least two cells (unless the table is one column wide), more than half as wide as the widest
   row, and wider than every note row above it.
3. When neither applies, the first non-empty row is the header (the old rule).

Blank header cells are named by their column letter as in Excel (``B``, ``AA``), repeated names get
a suffix (``VISIT.1``); :func:`header_names` also says which names came from blank cells.

Example::

    >>> rows = [["Export of 2024-03-01"], [], ["SUBJID", "SEX"], ["01-001", "F"]]
    >>> find_header(rows, known={"subjid", "sex"})
    2
    >>> header_names(["SUBJID", "", "SEX"])
    (['SUBJID', 'B', 'SEX'], {'B'})
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from trialkit.findings import Category, Finding, Severity
from trialkit.importers.limits import column_letters

DEPTH = 30  # non-empty rows looked at when searching for the header


def header_key(text: Any) -> str:
    """A header compared ignoring case, spaces and punctuation (``'Visit date'`` → ``visitdate``)."""
    return re.sub(r"[\W_]+", "", str(text).casefold())


# The identifiers of an SDTM dataset (and of a SUPP-- one): a header row of a site's SDTM export.
SDTM_HEADERS = ("STUDYID", "DOMAIN", "USUBJID", "RDOMAIN", "IDVAR", "IDVARVAL", "QNAM", "QVAL")


def known_headers(study: Any) -> frozenset[str]:
    """The header keys of every variable name and label of the study's forms, of the columns its
    mapping specs read, and of the SDTM identifiers (a long export's test names and labels, which
    may equal variable names, must not make a data row look like the header)."""
    keys: set[str] = {header_key(name) for name in SDTM_HEADERS}
    for form in study.forms.values():
        for variable in form.variables:
            keys.add(header_key(variable.name))
            keys.add(header_key(variable.label))
    for spec in (getattr(study, "mappings", None) or {}).values():
        keys.update(header_key(column) for column in spec.source_columns())
    keys.discard("")
    return frozenset(keys)


def is_blank(value: Any) -> bool:
    """An empty cell: None, "" or text of spaces only."""
    return value is None or (isinstance(value, str) and not value.strip())


def cell_text(value: Any) -> str:
    """A header cell as text (``2.0`` → ``2``, dates in ISO)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return "" if value is None else str(value)


def header_names(header: Sequence[Any]) -> tuple[list[str], set[str]]:
    """Header cells as unique text names, and the names given to blank cells (their column letters)."""
    names: list[str] = []
    blank: set[str] = set()
    seen: dict[str, int] = {}
    for i, value in enumerate(header):
        text = cell_text(value).strip()
        empty = not text
        if empty:
            text = column_letters(i)
        if text in seen:
            seen[text] += 1
            text = f"{text}.{seen[text]}"
        else:
            seen[text] = 0
        if empty:
            blank.add(text)
        names.append(text)
    return names, blank


def find_header(rows: Sequence[Sequence[Any]], known: Iterable[str] | None = None,
                forced: Iterable[int] = ()) -> int | None:
    """Position in ``rows`` of the header row (see the module docstring), None when all are empty.

    ``forced`` are positions that count as non-empty whatever their cells (rows with error cells).
    """
    forced = set(forced)
    candidates: list[tuple[int, list[Any]]] = []
    for pos, row in enumerate(rows):
        filled = [v for v in row if not is_blank(v)]
        if filled or pos in forced:
            candidates.append((pos, filled))
            if len(candidates) >= DEPTH:
                break
    if not candidates:
        return None
    first = candidates[0][0]
    if known:
        known = known if isinstance(known, (set, frozenset)) else set(known)
        best_pos, best_score = first, -1
        first_score = 0
        for pos, filled in candidates:
            keys = {header_key(v) for v in filled if isinstance(v, str)}
            score = len(keys & known)
            if pos == first:
                first_score = score
            if score > best_score:
                best_pos, best_score = pos, score
        fully_known = best_score >= 1 and best_score == len(
            [v for v in dict(candidates)[best_pos] if isinstance(v, str)])
        if best_score > first_score and (best_score >= 2 or fully_known):
            return best_pos
        if first_score:
            return first
    widest = max(len(filled) for _, filled in candidates)
    above = 0  # the widest row skipped so far
    for pos, filled in candidates:
        count = len(filled)
        looks = (count >= min(2, widest) and 2 * count > widest and count > above
                 and all(isinstance(v, str) for v in filled))
        if looks:
            return pos
        above = max(above, count)
        if 2 * count > widest:  # a wide row that is no header: the table starts here
            break
    return first


def offset_finding(path: str, sheet: str | None, header_row: int, notes: int, unit: str = "row") -> Finding:
    """The info finding that says the header is below ``notes`` note rows, which were not read."""
    where = f"sheet {sheet!r}: " if unit == "row" and sheet else ""
    return Finding(
        code="IMP-HEADER-OFFSET", severity=Severity.INFO, category=Category.STRUCTURE, file=str(path),
        sheet=sheet, row=header_row, value=str(notes),
        message=f"{path}: {where}the header is on {unit} {header_row}; the {notes} {unit}(s) of notes or "
                "comments above it were not read as data",
        evidence={"header_row": header_row, "skipped": notes})
