"""``trialkit queries``: list the ledger's queries by state, site, code and age; write or read back
query workbooks; close and reopen queries (``queries close|reopen QUERY_ID... --reason TEXT``)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from trialkit.commands.options import load_with_workspace, quiet_option, study_option
from trialkit.commands.workspace_options import (
    decision_options,
    decision_workspace,
    operator_option,
    site_id,
    workspace_option,
)

STATES = ["open", "answered", "closed", "resolved", "all"]
# Columns of the listing (text and csv); json carries every field of the ledger.
LIST_COLUMNS = ["query_id", "site", "status", "age_days", "severity", "code", "subject", "form", "visit",
                "variable", "value", "message", "response", "site_comment", "status_by", "status_reason"]


@click.group(name="queries", invoke_without_command=True)
@click.option("--site", default=None, metavar="SS", help="Only this site's queries.")
@click.option("--status", "statuses", type=click.Choice(STATES), multiple=True,
              help="Which states (repeat for several): default all for the listing, open for the -o workbooks.")
@click.option("--code", default=None, metavar="CODE", help="Only queries of this finding code (e.g. PD-12, RANGE).")
@click.option("--older-than", type=click.IntRange(min=0), default=None, metavar="DAYS",
              help="Only queries older than DAYS days (open since, or until they were resolved or closed).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, metavar="FILE.xlsx",
              help="Write a query workbook for the site to answer; without --site, one workbook per "
              "site (FILE_siteSS.xlsx), since a site sees only its own queries.")
@click.option("-f", "--format", "output_format", type=click.Choice(["text", "json", "csv"]), default="text",
              show_default=True, help="Listing format on stdout.")
@click.option("--answers", type=click.Path(exists=True, dir_okay=False), default=None, metavar="FILE.xlsx",
              help="Read a filled query workbook: store the site's answers (the queries become answered) "
              "and apply the data manager's DM_ACTION (close, reopen) with its DM_REASON.")
@operator_option
@workspace_option
@study_option
@quiet_option
@click.pass_context
def command(ctx: click.Context, site: str | None, statuses: tuple[str, ...], code: str | None,
            older_than: int | None, output: str | None, output_format: str, answers: str | None,
            operator: str | None, workspace: str | None, study_path: str | None, quiet: bool) -> None:
    """List queries by state, site, code and age; read back answers; close and reopen queries.

    \b
    A query is open (a submission showed it), answered (the site's answer was read back), closed
    (by the data manager, with a reason) or resolved (a later upload no longer shows it). A closed
    query stays closed when the same finding comes back; it opens again when the finding comes back
    with other data. Every change is in the audit log with the operator and the time.

    \b
      trialkit queries --status open --older-than 30        # what has waited a month
      trialkit queries --site 01 -o queries_site01.xlsx     # the site's workbook
      trialkit queries --answers queries_site01_answered.xlsx
      trialkit queries close Q-1A2B3C4D5E --reason "confirmed by the site; source verified"
      trialkit queries reopen Q-1A2B3C4D5E --reason "the monitor found a second record"

    With --answers, the answers in a filled query workbook (SITE_RESPONSE, SITE_COMMENT,
    RESPONDED_BY, RESPONSE_DATE) are stored and the queries become answered; a DM_ACTION (close or
    reopen) with a DM_REASON in the same row is applied. A row whose query id is unknown or belongs
    to another site, or an action without a reason, is refused (exit code 1). With -o, the open
    queries (or those of --status) are written as query workbooks, one per site. An existing
    workbook is replaced only when trialkit wrote it, never inside the workspace (exit code 2).
    """
    if ctx.invoked_subcommand is not None:
        return
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
            parts = [f"{len(result.stored)} answer(s) stored"
                     + (f" ({len(result.answered)} now answered)" if result.answered else "")]
            parts += [f"{n} {what}" for n, what in ((result.unchanged, "already stored"),
                                                    (len(result.closed), "closed"),
                                                    (len(result.reopened), "reopened")) if n]
            parts += [f"{len(result.refused)} refused", f"{result.blank} row(s) without an answer"]
            click.echo(f"site {result.site}: " + ", ".join(parts))
            for query, reason in result.refused:
                click.echo(f"refused {query}: {reason}")
        raise SystemExit(1 if result.refused else 0)

    status: Any = list(statuses) or "all"
    rows = ws.queries(site=site, status=status, code=code, older_than=older_than)
    if output is not None:
        from trialkit.outputs import check_location

        check_location(output, workspace=ws.path)
        to_send: Any = list(statuses) or "open"
        book_rows = ws.queries(site=site, status=to_send, code=code, older_than=older_than)
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
        counts = {state: sum(1 for r in rows if r["status"] == state) for state in STATES[:-1]}
        shown = ", ".join(f"{n} {state}" for state, n in counts.items() if n) or "0 open"
        click.echo(f"{len(rows)} quer{'y' if len(rows) == 1 else 'ies'} ({shown})", err=True)


def _transition_command(action: str) -> click.Command:
    verb = {"close": "Close", "reopen": "Reopen"}[action]
    allowed = "open or answered" if action == "close" else "closed or resolved"

    @click.command(name=action)
    @decision_options("QUERY_ID...", "queries")
    def transition(ids: tuple[str, ...], reason: str, site: str | None, output_format: str,
                   operator: str | None, workspace: str | None, study_path: str | None, quiet: bool) -> None:
        ws, site = decision_workspace(workspace, study_path, operator, site)
        move = ws.close_queries if action == "close" else ws.reopen_queries
        result = move(list(ids), reason, operator=operator, site=site)
        if output_format == "json":
            click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        else:
            for where, ident in result.changed:
                click.echo(f"{ident} (site {where}): {result.state}")
            for ident, why in result.refused:
                click.echo(f"refused {ident}: {why}")
        if not quiet:
            click.echo(f"{len(result.changed)} quer{'y' if len(result.changed) == 1 else 'ies'} "
                       f"{'closed' if action == 'close' else 'reopened'}, {len(result.refused)} refused", err=True)
        raise SystemExit(1 if result.refused else 0)

    transition.help = (
        f"{verb} queries (only {allowed} ones), with a reason kept in the audit log.\n\n"
        "Exit code 0 when every QUERY_ID was "
        + ("closed" if action == "close" else "reopened")
        + ", 1 when one was refused (unknown, of another site, or in a state that does not allow it; "
        "the others are done), 2 usage error (no --reason)."
    )
    return transition


command.add_command(_transition_command("close"))
command.add_command(_transition_command("reopen"))


# -- rendering ------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def render_text(rows: list[dict[str, Any]]) -> list[str]:
    """A fixed-width table of the queries."""
    if not rows:
        return ["No queries."]
    columns = ["query_id", "site", "status", "age_days", "severity", "code", "subject", "form", "visit",
               "variable", "value"]
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
        writer.writerow([_neutralise(_text(row.get(c))) for c in LIST_COLUMNS])
    return buffer.getvalue()


# -- query workbooks ------------------------------------------------------------------------------


def workbook_paths(output: Path, sites: Iterable[str], site: str | None) -> dict[str, Path]:
    """One workbook path per site: ``output`` itself for a single --site, else ``stem_siteSS``."""
    if site is not None:
        return {site: output}
    return {s: output.with_name(f"{output.stem}_site{s}{output.suffix or '.xlsx'}") for s in sorted(sites)}


def write_workbooks(ws: Any, rows: list[dict[str, Any]], output: Path, *, site: str | None, status: Any,
                    study: Any) -> list[Path]:
    """Write each site's query workbook (the queries of ``rows``); returns the files written."""
    from trialkit.errors import TrialkitError
    from trialkit.findings import Report
    from trialkit.outputs import check_output_file
    from trialkit.querybook import write_query_workbook

    sites = {r["site"] for r in rows} if site is None else {site}
    wanted = {(r["site"], r["query_id"]) for r in rows}
    written = []
    paths = workbook_paths(output, sites, site)
    for path in paths.values():  # every workbook checked before any is written
        check_output_file(path, kind="xlsx", workspace=ws.path)
    for one_site, path in paths.items():
        full = ws.queries_report(one_site, status)
        report = Report(findings=[f for f in full.findings if (one_site, f.query_id) in wanted],
                        study_id=full.study_id, site=one_site)
        try:
            write_query_workbook(report, path, site=one_site, study=study)
        except OSError as exc:
            raise TrialkitError(f"{path}: cannot write the workbook ({exc.strerror or exc}); choose another -o") from exc
        written.append(path)
    return written
