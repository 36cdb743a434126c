"""The data-quality report: data → metrics → SVG/HTML, with the trial's sections from the study.

- :mod:`~trialkit.report.data` — what the report reads (pooled datasets or the current submissions);
- :mod:`~trialkit.report.metrics` — the numbers of the generic sections;
- :mod:`~trialkit.report.svg` and :mod:`~trialkit.report.markup` — charts and HTML building blocks,
  which a study's report plug-in uses for its own sections;
- :mod:`~trialkit.report.html` — the sections and the page (:func:`build_report_html`,
  :func:`write_report`).
"""

from __future__ import annotations

from trialkit.report.data import BLINDED_OUT, ReportData, load_report_data
from trialkit.report.html import ReportContext, Section, build_report_html, write_report
from trialkit.report.markup import cmd, e, num_cell
from trialkit.report.metrics import study_date

__all__ = [
    "BLINDED_OUT",
    "ReportContext",
    "ReportData",
    "Section",
    "build_report_html",
    "cmd",
    "e",
    "load_report_data",
    "num_cell",
    "study_date",
    "write_report",
]
