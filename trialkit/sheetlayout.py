"""Printing and wrapping in the workbooks trialkit writes for sites (templates, query workbooks).

openpyxl writes no row heights of its own, and LibreOffice does not grow a row for wrapped text that
openpyxl wrote: every wrapped row gets a height computed here from its text and column width
(:func:`wrapped_lines`, :func:`line_height`). :func:`print_setup` gives a sheet the print set-up a
site needs: landscape, one page wide, the header rows repeated, a print area over the rows in use.
"""

from __future__ import annotations

import textwrap
from typing import Any


def wrapped_lines(text: str, width: float, size: float = 11) -> int:
    """Lines ``text`` takes when wrapped in a column ``width`` wide at font ``size`` (a safe estimate:
    a character is taken as wide as a digit, the widest common glyph)."""
    chars = max(3, int(width * 11 / size) - 1)
    return sum(max(1, len(textwrap.wrap(part, chars, break_long_words=True, break_on_hyphens=False)))
               for part in str(text).split("\n"))


def line_height(size: float) -> float:
    """The height in points of one line of text at font ``size`` (with the line spacing)."""
    return round(size * 1.4, 1)


def print_setup(ws: Any, *, last_column: str, last_row: int, title_rows: str | None = None,
                fit_height: int = 0, footer: str = "") -> None:
    """Landscape, one page wide (``fit_height`` pages tall, 0 = as many as needed), a print area of
    ``A1:{last_column}{last_row}``, ``title_rows`` repeated on every page, page numbers in the footer."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = fit_height
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_area = f"A1:{last_column}{last_row}"
    if title_rows:
        ws.print_title_rows = title_rows
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top = ws.page_margins.bottom = 0.55
    ws.page_margins.header = ws.page_margins.footer = 0.25
    ws.oddFooter.left.text = footer.replace("&", "&&") + (" · &A" if footer else "&A")
    ws.oddFooter.left.size = 8
    ws.oddFooter.right.text = "&P / &N"
    ws.oddFooter.right.size = 8
