"""``trialkit deviations``: the deviation log — every protocol deviation ever detected, with its status;
``deviations confirm|dismiss ID... --reason TEXT``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from trialkit.commands.options import load_with_workspace, quiet_option, study_option
from trialkit.commands.workspace_options import (
    decision_options,
    decision_workspace,
    site_id,
    workspace_option,
)

STATUSES = ["open", "confirmed", "resolved", "dismissed", "all"]


@click.group(name="deviations", invoke_without_command=True)
@click.option("--site", default=None, metavar="SS", help="Only this site's deviations.")
@click.option("--status", "statuses", type=click.Choice(STATUSES), multiple=True,
              help="Which statuses (repeat for several; default all).")
@click.option("--code", default=None, metavar="CODE", help="Only this deviation code (e.g. PD-12).")
@click.option("-f", "--format", "output_format", type=click.Choice(["text", "json", "csv", "xlsx"]),
              default="text", show_default=True, help="Output format (xlsx needs -o).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, metavar="PATH",
              help="Write the log to PATH instead of stdout.")
@workspace_option
@study_option
@quiet_option
@click.pass_context
def command(ctx: click.Context, site: str | None, statuses: tuple[str, ...], code: str | None,
            output_format: str, output: str | None, workspace: str | None, study_path: str | None,
            quiet: bool) -> None:
    """The deviation log: every protocol deviation ever detected; confirm or dismiss.

    \b
    Each deviation (its id is the query id of its finding) with code, class (major/minor),
    subject, form, visit, message and evidence, the first and last submission that showed it,
    and its status: open (detected), confirmed (by the data manager: a fact of the trial; it stays
    confirmed whatever later uploads say, and a confirmed major deviation takes the subject out of
    the per-protocol population), resolved (corrected data no longer shows it) or dismissed (by
    the data manager: not a deviation). Deviations of rejected and held uploads are logged too.

    \b
      trialkit deviations --site 06 --status open
      trialkit deviations -f xlsx -o deviation_log.xlsx
      trialkit deviations confirm Q-1A2B3C4D5E --reason "SAE reported late; site retrained"
      trialkit deviations dismiss Q-5E4D3C2B1A --reason "visit rescheduled by amendment"

    Exit code 0, 2 usage error (e.g. -f xlsx without -o, an -o that would destroy a file).
    """
    if ctx.invoked_subcommand is not None:
        return
    from trialkit.deviationlog import render_csv, render_text, write_xlsx
    from trialkit.ledger import open_workspace

    if output_format == "xlsx" and not output:
        raise click.UsageError("-f xlsx writes a workbook: give its path with -o PATH.xlsx")
    ws = open_workspace(workspace)
    if output:
        from trialkit.deviationlog import LOG_COLUMNS
        from trialkit.outputs import check_output_file

        header: Any = ",".join(LOG_COLUMNS) if output_format == "csv" else None
        check_output_file(output, kind=output_format, workspace=ws.path, header=header)
    if site is not None:
        ws, study = load_with_workspace(workspace, study_path, None)
        site = site_id(study, site)
    entries = ws.deviation_log(site=site, status=list(statuses) or None)
    if code is not None:
        entries = [e for e in entries if e["code"] == code.strip()]
    if output_format == "xlsx":
        write_xlsx(entries, Path(output), study_id=ws.study_id)
    else:
        if output_format == "json":
            text = json.dumps(entries, indent=2, ensure_ascii=False) + "\n"
        elif output_format == "csv":
            text = render_csv(entries)
        else:
            text = "\n".join(render_text(entries)) + "\n"
        if output:
            Path(output).write_text(text, encoding="utf-8")
        else:
            click.echo(text, nl=False)
    if not quiet:
        by = {s: sum(1 for e in entries if e["status"] == s) for s in STATUSES[:-1]}
        click.echo(f"{len(entries)} deviation(s): " + ", ".join(f"{n} {s}" for s, n in by.items())
                   + (f"; wrote {output}" if output else ""), err=True)


def _decision_command(action: str) -> click.Command:
    status = {"confirm": "confirmed", "dismiss": "dismissed"}[action]

    @click.command(name=action)
    @decision_options("ID...", "deviations")
    def decide(ids: tuple[str, ...], reason: str, site: str | None, output_format: str,
               operator: str | None, workspace: str | None, study_path: str | None, quiet: bool) -> None:
        ws, site = decision_workspace(workspace, study_path, operator, site)
        result = ws.set_deviation_status(list(ids), status, reason, operator=operator, site=site)
        if output_format == "json":
            click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        else:
            closed = {pair for pair in result.queries_closed}
            for where, ident in result.changed:
                click.echo(f"{ident} (site {where}): {status}" + ("; its query closed" if (where, ident) in closed else ""))
            for ident, why in result.refused:
                click.echo(f"refused {ident}: {why}")
        if not quiet:
            click.echo(f"{len(result.changed)} deviation(s) {status}, {len(result.refused)} refused", err=True)
        raise SystemExit(1 if result.refused else 0)

    decide.help = (
        f"{action.capitalize()} deviations of the log, with a reason kept in the audit log.\n\n"
        + ("A confirmed deviation stays confirmed whatever later uploads say; a confirmed major deviation "
           "takes the subject out of the per-protocol population (PPROTFL = N). " if action == "confirm" else
           "A dismissed deviation is not counted; it opens again only when the data behind it change. ")
        + "The deviation's open or answered query is closed with the same reason.\n\n"
        "Exit code 0 when every ID was " + status + ", 1 when one was refused (unknown, of another site, "
        "already " + status + "; the others are done), 2 usage error (no --reason)."
    )
    return decide


command.add_command(_decision_command("confirm"))
command.add_command(_decision_command("dismiss"))
