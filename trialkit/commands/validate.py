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
from trialkit.findings import Severity

FORMATS = ["text", "json", "jsonl", "csv", "xlsx"]
GROUP_AT = 5  # findings of one kind (severity, code, form, variable, file) from this many on: one text line
ROWS_SHOWN = 5  # rows (or subjects) a grouped line names
_ABSENT = "form(s) not uploaded:"  # the reason of a rule skipped because its forms were not uploaded
CSV_COLUMNS = [
    "query_id", "severity", "category", "code", "site", "subject", "form", "visit", "variable",
    "value", "message", "expected", "file", "sheet", "row", "check", "reference", "deviation_class",
]
# The first line of an earlier output, by which -o recognises a file it may replace.
OUTPUT_HEADERS = {
    "csv": ",".join(CSV_COLUMNS),
    "text": re.compile(r" · (site \S+|all sites)( · data cut \S+( \([^)]*\))?)? · \d+ file\(s\)$"),
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
              help="Data cut-off date (default: the workspace's study-wide cut, else the latest full date in the "
              "upload).")
@click.option("--form", "form_code", default=None, metavar="CODE",
              help="Read every table as this form (e.g. a CSV or dataset named otherwise).")
@click.option("--min-severity", type=click.Choice(["info", "warning", "error"]), default="warning",
              show_default=True, help="Text output: list findings at or above this severity (the counts and "
              "the other formats hold every finding).")
@click.option("-v", "--verbose", is_flag=True,
              help="Text output: list each check skipped because its forms were not in the upload.")
@mapping_option
@study_option
@quiet_option
def command(files: tuple[str, ...], site: str | None, output_format: str, output: str | None,
            fail_on: str, max_findings: int | None, data_cut: datetime | None, form_code: str | None,
            min_severity: str, verbose: bool, mapping: str | None, study_path: str | None, quiet: bool) -> None:
    """Validate site uploads: data checks, protocol deviations, query workbook.

    Checks every value against the form definitions (type, range, codelist, required, unique keys),
    then runs the study's data checks (DC-nn) and protocol deviations (PD-nn) across all forms of the
    FILEs. Every finding names the file, sheet, row and variable, what was found and what is allowed.

    \b
    Formats: text (summary, then the findings at or above --min-severity with their query ids;
    many findings of one kind on one line with the count and the first rows), json (the report),
    jsonl (one finding per line), csv (one row per finding), xlsx (the site's query workbook; needs
    -o). Every format but text holds every finding. An existing -o file is replaced only when it is
    an earlier output of this kind (a site's upload is refused).
    Data cut: --data-cut, else the workspace's study-wide cut (trialkit cut) when run in a
    workspace, else the latest full date in the upload.
    Records that are all another site's are one error (did you mean --site 03?); a file typed in
    another site's conventions (decimal comma, date order) one diagnosis with the count.
    Exit codes: 0 clean, 1 findings at or above --fail-on (or no form of the study recognised in
    any file, whatever --fail-on says), 2 usage error, 3 could not complete.
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
    from trialkit.validate import NO_FORM, truncate, validate

    cut, cut_source = (data_cut.date(), "--data-cut") if data_cut else (workspace_cut(), "study-wide: trialkit cut")
    try:
        imported = import_files(list(files), study, site=site, form=form_code, mapping=mapping, mappings=specs)
        full = validate(study, imported, site=site, data_cut=cut)
        # Nothing recognised is never clean, whatever --fail-on says.
        failing = full.fails_at(fail_on) or not imported.forms or any(f.code == NO_FORM for f in full.findings)
        report = truncate(full, max_findings)
        _emit(report, output_format, output, site, study, min_severity=min_severity, verbose=verbose,
              cut_source=cut_source if cut else ("latest date in the upload" if full.data_cut else None))
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


def workspace_cut():  # -> date | None
    """The study-wide data cut of the workspace this command runs in (``$TRIALKIT_WORKSPACE``, or the
    current folder or a parent), or None (no workspace, or no cut set)."""
    from trialkit.errors import TrialkitError
    from trialkit.ledger import open_workspace

    try:
        return open_workspace(None).data_cut_date()
    except TrialkitError:
        return None


def _emit(report, output_format: str, output: str | None, site: str | None, study, *, min_severity: str = "info",
          verbose: bool = False, cut_source: str | None = None) -> None:
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
        text = render_text(report, min_severity=min_severity, verbose=verbose, cut_source=cut_source)
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


def finding_line(finding, *, show_file: bool = False) -> str:
    """``row 12 · VS · 01-003 · WEEK2 · WEIGHT: WEIGHT = 300 is outside 8–200 kg [RANGE] Q-1A2B3C4D5E``
    (with ``show_file``, the file name first: for a report of several files)."""
    parts = []
    name = Path(finding.file).name if finding.file else None
    if show_file and name and name not in finding.message:
        parts.append(name)
    if finding.row is not None:
        parts.append(f"row {finding.row}")
    elif name and not show_file and name not in finding.message:
        parts.append(name)
    parts.extend(p for p in (finding.form, finding.subject, finding.visit, finding.variable) if p)
    where = " · ".join(parts)
    query = f" {finding.query_id}" if finding.query_id and finding.severity.value != "info" else ""
    return f"{finding.severity.value:<7} {where}{': ' if where else ''}{finding.message} [{finding.code}]{query}"


def _group_key(finding) -> tuple:
    return (finding.severity.value, finding.code, finding.form, finding.variable, finding.file)


def group_line(findings: list, *, show_file: bool = False) -> str:
    """One line for many findings of one kind (same severity, code, form, variable and file): the
    count, the first rows (or subjects), and the first finding as the example."""
    first = findings[0]
    parts = []
    if show_file and first.file:
        parts.append(Path(first.file).name)
    parts.extend(p for p in (first.form, first.variable) if p)
    where = " · ".join(parts)
    rows = [f.row for f in findings if f.row is not None]
    if rows:
        shown = ", ".join(str(r) for r in rows[:ROWS_SHOWN]) + (" …" if len(rows) > ROWS_SHOWN else "")
        places = f"rows {shown}"
    else:
        subjects = list(dict.fromkeys(f.subject for f in findings if f.subject))
        places = ("subjects " + ", ".join(subjects[:ROWS_SHOWN]) + (" …" if len(subjects) > ROWS_SHOWN else "")
                  if subjects else "")
    example = " · ".join(p for p in (f"row {first.row}" if first.row is not None else None, first.subject,
                                     first.visit) if p)
    query = f", {first.query_id}" if first.query_id and first.severity.value != "info" else ""
    return (f"{first.severity.value:<7} {where}{': ' if where else ''}{len(findings)} × [{first.code}]"
            + (f" in {places}" if places else "") + f"; first ({example}{query}): {first.message} "
            f"— every one in -f csv, json or xlsx")


def _findings_lines(findings: list, *, show_file: bool) -> list[str]:
    """One line per finding, or one per kind when a kind has :data:`GROUP_AT` findings or more."""
    groups: dict[tuple, list] = {}
    for finding in findings:
        groups.setdefault(_group_key(finding), []).append(finding)
    lines, done = [], set()
    for finding in findings:
        key = _group_key(finding)
        members = groups[key]
        if len(members) < GROUP_AT:
            lines.append(finding_line(finding, show_file=show_file))
        elif key not in done:
            done.add(key)
            lines.append(group_line(members, show_file=show_file))
    return lines


def _not_run_lines(report, verbose: bool) -> list[str]:
    """Checks that did not run: the ones skipped only because their forms were not uploaded are one
    line (each with ``verbose``); skipped for another reason, and errors, one line each."""
    not_run = [c for c in report.checks if c.status.value in ("skipped", "error")]
    if not not_run:
        return []
    absent = [c for c in not_run if c.status.value == "skipped" and (c.reason or "").startswith(_ABSENT)]
    others = [c for c in not_run if c not in absent]
    lines = ["Checks not run:"]
    if absent and not verbose:
        forms = sorted({f.strip() for c in absent for f in (c.reason or "")[len(_ABSENT):].split(",") if f.strip()})
        lines.append(f"  {len(absent)} skipped because their forms were not in the upload ({', '.join(forms)}); "
                     "-v lists them")
    else:
        lines.extend(f"  {c.id} {c.status.value}: {c.reason}" for c in absent)
    same: dict[tuple[str, str], list] = {}
    for check in others:
        same.setdefault((check.status.value, check.reason or ""), []).append(check)
    for (status, reason), checks in same.items():
        if len(checks) >= 3 and not verbose:
            lines.append(f"  {len(checks)} {status}: {reason} ({checks[0].id} … {checks[-1].id}; -v lists them)")
        else:
            lines.extend(f"  {c.id} {c.status.value}: {c.reason}" for c in checks)
    return lines


def render_text(report, *, min_severity: str = "info", verbose: bool = False, cut_source: str | None = None) -> str:
    """The readable summary: counts by severity, category and form, the checks that did not run,
    then the findings at or above ``min_severity`` (many of one kind grouped on one line)."""
    counts = report.counts()
    cut = ""
    if report.data_cut:
        cut = f" · data cut {report.data_cut}" + (f" ({cut_source})" if cut_source else "")
    lines = [
        f"{report.study_id} {report.study_version or ''}".strip()
        + (f" · site {report.site}" if report.site else " · all sites")
        + cut
        + f" · {len(report.inputs)} file(s)",
        f"Findings: {counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} info"
        + (f" (and {report.truncated} more left out by --max-findings)" if report.truncated else ""),
        f"By category: {_by(report, 'category')}",
        f"By form: {_by(report, 'form')}",
    ]
    lines.extend(_not_run_lines(report, verbose))
    threshold = Severity(min_severity).rank
    shown = [f for f in report.findings if f.severity.rank >= threshold]
    if shown:
        lines.append("")
        lines.extend(_findings_lines(shown, show_file=len(report.inputs) > 1))
    hidden = len(report.findings) - len(shown)
    if hidden:
        lines.append(f"{hidden} finding(s) below {min_severity} not shown (--min-severity info shows them)")
    return "\n".join(lines) + "\n"
