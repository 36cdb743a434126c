"""The header block of trialkit's upload template, recognised in an upload: no row of it is a record.

A form sheet of the template (:mod:`trialkit.templates`, layout 2) has a title row above the variable
codes, and a label row and a hint row under them, in the site's language. The codes are the header
(found by :mod:`trialkit.importers.header`); this module tells

- the **label and hint rows** directly under the header: a row whose cells are all text and more
  than half of them are the label or the hint of their column's variable in one of the study's
  languages (:func:`trialkit.sitetexts.header_block_keys`) — so a label fixed since the template was
  issued, or a hint of an older trialkit, does not turn the row into a record;
- the **title row** above it: note rows that are the form's title in one of the study's languages
  (no "notes above the header" finding for them).

A workbook of the version-1.0 layout (codes in row 1, no such rows) has none, and nothing changes.

Example::

    >>> template_block_rows(table, study.forms["DM"], study, mapping)  # doctest: +SKIP
    [3, 4]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trialkit.importers.detect import RawTable
from trialkit.importers.header import header_key, is_blank
from trialkit.sitetexts import header_block_keys

#: At most this many rows under the header can belong to the template's header block.
MAX_BLOCK_ROWS = 3


def template_block_rows(table: RawTable, form: Any, study: Any, mapping: Mapping[str, str]) -> list[int]:
    """The spreadsheet rows directly under the header that are the template's label and hint rows.

    ``mapping`` maps the table's columns to the form's variables
    (:func:`~trialkit.importers.normalise.match_columns`).
    """
    if table.values.empty or table.header_row is None:
        return []
    per_variable, _ = header_block_keys(study, form)
    found: list[int] = []
    for row in table.values.index[:MAX_BLOCK_ROWS]:
        if row != table.header_row + 1 + len(found):
            break
        filled = [(column, value) for column, value in zip(table.columns, table.values.loc[row].tolist(), strict=True)
                  if not is_blank(value)]
        if not filled or not all(isinstance(value, str) for _, value in filled):
            break
        matched = sum(1 for column, value in filled
                      if column in mapping and header_key(value) in per_variable.get(mapping[column], ()))
        if matched == 0 or 2 * matched <= len(filled):
            break
        found.append(int(row))
    return found


def is_template_title(notes: list[tuple[int, list[str]]], form: Any, study: Any) -> bool:
    """True when every note row above the header is the form's title as a template writes it."""
    if not notes:
        return False
    _, titles = header_block_keys(study, form)
    return all(header_key(" ".join(cells)) in titles for _, cells in notes)
