"""``trialkit validate FILE...``: data checks, protocol deviations and the site's query workbook.

Imports the files (several files of one site validate together, so cross-form rules see every form),
runs the form checks and the study's rules (:func:`trialkit.validate.validate`) and renders the
report: ``text`` (a summary, then one line per finding), ``json`` (exactly the library's report),
``jsonl`` (one finding per line), ``csv`` (one row per finding) or ``xlsx`` (the query workbook,
needs ``-o``). Exit codes: 0 nothing at or above ``--fail-on``; 1 findings at or above it; 2 usage
error; 3 could not complete.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from datetime import datetime
from pathlib import Path

import click

from trialkit.commands.options import load, mapping_option, mappings_for, quiet_option, study_option

FORMATS = ["text", "json", "jsonl", "csv", "xlsx"]
CSV_COLUMNS = [
    "query_id", "severity", "category", "code", "site", "subject", "form", "visit", "variable",
    "value", "message", "expected", "file", "sheet", "row", "check", "reference", "deviation_class",
]
# The first line of an earlier output, by which -o recognises a file it may replace.
OUTPUT_HEADERS = {
    "csv": ",".join(CSV_COLUMNS),
    "text": re.compile(r" · (site \S+|all sites)( · data cut \S+)? · \d+ file\(s\)$"),
}


@click.command(name="validate")
@click.argument("files", metavar="FILE...", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False))
@click.option("--site", default=None, metavar="SS",
              help="The site whose upload this is: records of another site become errors and are "
              "left out; the workbook holds only this site's queries.")
@click.option("-f", "--format", "output_format", type=click.Choice(FORMATS), default="text",
              show_default=True, help="Output format (xlsx needs -o).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, metavar="PATH",
              help="Write the output to PATH instead of stdout.")
@click.option("--fail-on", type=click.Choice(["error", "warning", "never"]), default="error",
              show_default=True, help="Exit 1 when a finding is at or above this severity.")
@click.option("--max-findings", type=click.IntRange(min=0), default=None, metavar="N",
              help="Keep the first N findings (errors first); the report says how many were left out.")
@click.option("--data-cut", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              metavar="YYYY-MM-DD",
              help="Data cut-off date (default: the latest full date in the upload).")
@click.option("--form", "form_code", default=None, metavar="CODE",
              help="Read every table as this form (e.g. a CSV or dataset named otherwise).")
@mapping_option
@study_option
@quiet_option
def command(files: tuple[str, ...], site: str | None, output_format: str, output: str | None,
            fail_on: str, max_findings: int | None, data_cut: datetime | None, form_code: str | None,
            mapping: str | None, study_path: str | None, quiet: bool) -> None:
    """Validate site uploads: data checks, protocol deviations, query workbook.

    Checks every value against the form definitions (type, range, codelist, required, unique keys),
    then runs the study's data checks (DC-nn) and protocol deviations (PD-nn) across all forms of the
    FILEs. Every finding names the file, sheet, row and variable, what was found and what is allowed.

    \b
    Formats: text (summary and one line per finding), json (the report), jsonl (one finding per
    line), csv (one row per finding), xlsx (the site's query workbook; needs -o). An existing -o
    file is replaced only when it is an earlier output of this kind (a site's upload is refused).
    Exit codes: 0 clean, 1 findings at or above --fail-on, 2 usage error, 3 could not complete.
    """
    from trialkit.cli import CouldNotComplete

    if output_format == "xlsx" and not output:
        raise click.UsageError("-f xlsx writes a workbook: give its path with -o PATH.xlsx")
    if output:
        from trialkit.outputs import check_output_file

        check_output_file(output, kind=output_format, header=OUTPUT_HEADERS.get(output_format))
    study = load(study_path)
    if site is not None:
        try:
            site = study.site(site).id
        except KeyError as exc:
            raise click.BadParameter(str(exc.args[0]), param_hint="--site") from exc
    if form_code is not None:
        try:
            form_code = study.form(form_code).code
        except KeyError as exc:
            raise click.BadParameter(str(exc.args[0]), param_hint="--form") from exc
    specs = mappings_for(study, mapping)

    from trialkit.errors import TrialkitError
    from trialkit.importers.reader import import_files
    from trialkit.validate import truncate, validate

    try:
        imported = import_files(list(files), study, site=site, form=form_code, mapping=mapping, mappings=specs)
        full = validate(study, imported, site=site, data_cut=data_cut.date() if data_cut else None)
        failing = full.fails_at(fail_on)
        report = truncate(full, max_findings)
        _emit(report, output_format, output, site, study)
    except (click.ClickException, TrialkitError):
        raise
    except OSError as exc:
        raise CouldNotComplete(f"{exc.filename or output or ''}: {exc.strerror or exc}") from exc
    except Exception as exc:  # never a traceback for a run that could not complete
        raise CouldNotComplete(f"validation could not complete: {type(exc).__name__}: {exc}") from exc

    if not quiet:
        click.echo(summary_line(full, len(files)), err=True)
    sys.exit(1 if failing else 0)


def summary_line(report, n_files: int) -> str:
    """The one-line summary written to stderr."""
    counts = report.counts()
    where = f"site {report.site}" if report.site else "all sites"
    cut = f", data cut {report.data_cut}" if report.data_cut else ""
    return (f"validate: {n_files} file(s), {where}{cut}: {counts['error']} error(s), "
            f"{counts['warning']} warning(s), {counts['info']} info")


def _emit(report, output_format: str, output: str | None, site: str | None, study) -> None:
    if output_format == "xlsx":
        from trialkit.querybook import write_query_workbook

        write_query_workbook(report, Path(output), site=site, study=study)
        return
    if output_format == "json":
        text = report.to_json() + "\n"
    elif output_format == "jsonl":
        text = "".join(json.dumps(f.to_dict(), ensure_ascii=False, default=str) + "\n"
                       for f in report.findings)
    elif output_format == "csv":
        text = render_csv(report)
    else:
        text = render_text(report)
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


def render_csv(report) -> str:
    """One row per finding; text that a spreadsheet would run as a formula is neutralised."""
    from trialkit.querybook import safe_text

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for finding in report.findings:
        data = finding.to_dict()
        writer.writerow([safe_text("" if data[c] is None else data[c]) for c in CSV_COLUMNS])
    return buffer.getvalue()


def _by(report, attribute: str) -> str:
    counts = report.counts_by(attribute)
    return ", ".join(f"{name} {count}" for name, count in counts.items()) or "none"


def finding_line(finding) -> str:
    """``row 12 · VS · 01-003 · WEEK2 · WEIGHT: WEIGHT = 300 is outside 8–200 kg [RANGE]``."""
    parts = []
    if finding.row is not None:
        parts.append(f"row {finding.row}")
    elif finding.file and Path(finding.file).name not in finding.message:
        parts.append(Path(finding.file).name)
    parts.extend(p for p in (finding.form, finding.subject, finding.visit, finding.variable) if p)
    where = " · ".join(parts)
    return f"{finding.severity.value:<7} {where}{': ' if where else ''}{finding.message} [{finding.code}]"


def render_text(report) -> str:
    """The readable summary: counts by severity, category and form, then the findings."""
    counts = report.counts()
    lines = [
        f"{report.study_id} {report.study_version or ''}".strip()
        + (f" · site {report.site}" if report.site else " · all sites")
        + (f" · data cut {report.data_cut}" if report.data_cut else "")
        + f" · {len(report.inputs)} file(s)",
        f"Findings: {counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info"
        + (f" (and {report.truncated} more left out by --max-findings)" if report.truncated else ""),
        f"By category: {_by(report, 'category')}",
        f"By form: {_by(report, 'form')}",
    ]
    not_run = [c for c in report.checks if c.status.value in ("skipped", "error")]
    if not_run:
        lines.append("Checks not run:")
        lines.extend(f"  {c.id} {c.status.value}: {c.reason}" for c in not_run)
    if report.findings:
        lines.append("")
        lines.extend(finding_line(f) for f in report.findings)
    return "\n".join(lines) + "\n"
