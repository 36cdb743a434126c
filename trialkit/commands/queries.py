"""``trialkit queries``: list the ledger's queries with their age; write or read back query workbooks."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from trialkit.commands.options import load_with_workspace, quiet_option, study_option
from trialkit.commands.workspace_options import operator_option, site_id, workspace_option

# Columns of the listing (text and csv); json carries every field of the ledger.
LIST_COLUMNS = ["query_id", "site", "status", "age_days", "severity", "code", "subject", "form", "visit",
                "variable", "value", "message", "response"]


@click.command(name="queries")
@click.option("--site", default=None, metavar="SS", help="Only this site's queries.")
@click.option("--status", type=click.Choice(["open", "resolved", "all"]), default=None,
              help="Which queries: default all for the listing, open for the -o workbooks.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, metavar="FILE.xlsx",
              help="Write a query workbook for the site to answer; without --site, one workbook per "
              "site (FILE_siteSS.xlsx), since a site sees only its own queries.")
@click.option("-f", "--format", "output_format", type=click.Choice(["text", "json", "csv"]), default="text",
              show_default=True, help="Listing format on stdout.")
@click.option("--answers", type=click.Path(exists=True, dir_okay=False), default=None, metavar="FILE.xlsx",
              help="Read the answers a site typed into its query workbook and store them with the queries.")
@operator_option
@workspace_option
@study_option
@quiet_option
def command(site: str | None, status: str | None, output: str | None, output_format: str, answers: str | None,
            operator: str | None, workspace: str | None, study_path: str | None, quiet: bool) -> None:
    """List open and resolved queries with their age; read back a site's answers.

    With --answers, the answers in a filled query workbook (SITE_RESPONSE, RESPONDED_BY,
    RESPONSE_DATE) are stored with their queries; a row whose query id is unknown or belongs to
    another site is refused (exit code 1). With -o, the open queries (or those of --status) are
    written as query workbooks, one per site: a site sees only its own queries. An existing
    workbook is replaced only when trialkit wrote it, never inside the workspace (exit code 2).
    """
    from trialkit.ledger import open_workspace

    ws = open_workspace(workspace)
    study = None
    if site is not None or output is not None:
        ws, study = load_with_workspace(workspace, study_path, operator)
    if site is not None:
        site = site_id(study, site)

    if answers is not None:
        result = ws.record_answers(answers, operator, site=site)
        if output_format == "json":
            click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        else:
            click.echo(f"site {result.site}: {len(result.stored)} answer(s) stored, "
                       f"{len(result.refused)} refused, {result.blank} row(s) without an answer")
            for query, reason in result.refused:
                click.echo(f"refused {query}: {reason}")
        raise SystemExit(1 if result.refused else 0)

    rows = ws.queries(site=site, status=status or "all")
    if output is not None:
        from trialkit.outputs import check_location

        check_location(output, workspace=ws.path)
        to_send = status or "open"
        book_rows = ws.queries(site=site, status=to_send)
        for written in write_workbooks(ws, book_rows, Path(output), site=site, status=to_send, study=study):
            if not quiet:
                click.echo(f"Wrote {written}", err=True)
    if output_format == "json":
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    elif output_format == "csv":
        click.echo(render_csv(rows), nl=False)
    elif output is None or not quiet:
        for line in render_text(rows):
            click.echo(line)
    if not quiet:
        opened = sum(1 for r in rows if r["status"] == "open")
        click.echo(f"{len(rows)} quer{'y' if len(rows) == 1 else 'ies'} ({opened} open)", err=True)


# -- rendering ------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def render_text(rows: list[dict[str, Any]]) -> list[str]:
    """A fixed-width table of the queries."""
    if not rows:
        return ["No queries."]
    columns = ["query_id", "site", "status", "age_days", "severity", "subject", "form", "visit", "variable",
               "value"]
    titles = {"query_id": "QUERY ID", "age_days": "AGE"}
    widths = {c: max(len(titles.get(c, c.upper())), *(len(_text(r[c])) for r in rows)) for c in columns}
    widths["value"] = min(widths["value"], 20)
    header = "  ".join(titles.get(c, c.upper()).ljust(widths[c]) for c in columns) + "  MESSAGE"
    lines = [header]
    for row in rows:
        cells = [_text(row[c])[: widths[c]].ljust(widths[c]) for c in columns]
        lines.append("  ".join(cells) + "  " + _text(row["message"]))
    return lines


def _neutralise(value: Any) -> Any:
    """Keep a spreadsheet from running a value typed by a site as a formula (``-2+3`` included; only
    a plain negative number such as ``-3.5`` passes); a bare CR becomes a quoted line feed."""
    if not isinstance(value, str):
        return value
    if value[:1] in ("=", "+", "@", "\t", "\r", "-") and not _is_number(value):
        value = "'" + value
    return value.replace("\r\n", "\n").replace("\r", "\n")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def render_csv(rows: list[dict[str, Any]]) -> str:
    """The queries as CSV (formula-like text neutralised)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(LIST_COLUMNS)
    for row in rows:
        writer.writerow([_neutralise(_text(row[c])) for c in LIST_COLUMNS])
    return buffer.getvalue()


# -- query workbooks ------------------------------------------------------------------------------


def workbook_paths(output: Path, sites: Iterable[str], site: str | None) -> dict[str, Path]:
    """One workbook path per site: ``output`` itself for a single --site, else ``stem_siteSS``."""
    if site is not None:
        return {site: output}
    return {s: output.with_name(f"{output.stem}_site{s}{output.suffix or '.xlsx'}") for s in sorted(sites)}


def write_workbooks(ws: Any, rows: list[dict[str, Any]], output: Path, *, site: str | None, status: str,
                    study: Any) -> list[Path]:
    """Write each site's query workbook; returns the files written."""
    from trialkit.errors import TrialkitError
    from trialkit.outputs import check_output_file
    from trialkit.querybook import write_query_workbook

    sites = {r["site"] for r in rows} if site is None else {site}
    written = []
    paths = workbook_paths(output, sites, site)
    for path in paths.values():  # every workbook checked before any is written
        check_output_file(path, kind="xlsx", workspace=ws.path)
    for one_site, path in paths.items():
        try:
            write_query_workbook(ws.queries_report(one_site, status), path, site=one_site, study=study)
        except OSError as exc:
            raise TrialkitError(f"{path}: cannot write the workbook ({exc.strerror or exc}); choose another -o") from exc
        written.append(path)
    return written
