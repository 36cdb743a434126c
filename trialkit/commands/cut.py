"""``trialkit cut [DATE]``: show or set the study-wide data cut (audited)."""

from __future__ import annotations

import json
from datetime import datetime

import click

from trialkit.commands.options import load_with_workspace, progress_bar, quiet_option, study_option
from trialkit.commands.workspace_options import operator_option, workspace_option


@click.command(name="cut")
@click.argument("date", metavar="[DATE]", required=False, type=click.DateTime(formats=["%Y-%m-%d"]))
@click.option("--clear", is_flag=True, help="Remove the study-wide cut: each upload is judged against the latest "
              "date it holds again.")
@click.option("--review/--no-review", default=True, show_default=True,
              help="After setting the cut, validate again the current data of every site whose data stop before "
              "it, so that its overdue visits are flagged (new queries; nothing is resolved).")
@click.option("--reason", default=None, metavar="TEXT", help="A note kept with the cut in the audit log.")
@click.option("-f", "--format", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Result on stdout.")
@operator_option
@workspace_option
@study_option
@quiet_option
def command(date: datetime | None, clear: bool, review: bool, reason: str | None, output_format: str,
            operator: str | None, workspace: str | None, study_path: str | None, quiet: bool) -> None:
    """Show or set the study-wide data cut (YYYY-MM-DD) that validate and submit use.

    \b
    Without DATE: the current cut, who set it and when. With DATE: one cut for every site,
    recorded in the audit log; `validate` (in the workspace) and `submit` judge every upload
    against it unless --data-cut is given, so dates after it are errors and visits whose window
    closed before it are due. Then every site whose current data stop before the cut is reviewed
    (--no-review to skip): its current data are validated again against the cut, and what that
    finds (overdue visits, deviations) opens queries — a site that stopped sending data is no
    longer judged by its own last date. With --clear, each upload is judged against the latest
    full date it holds again.

    \b
      trialkit cut                       # the current cut
      trialkit cut 2025-09-30            # set it; review the sites behind it
      trialkit cut --clear

    Exit code 0, 2 usage error (a date after today, DATE with --clear), 3 could not complete.
    """
    from trialkit.ledger import open_workspace

    if clear and date is not None:
        raise click.UsageError("give DATE or --clear, not both")
    ws = open_workspace(workspace)
    if date is None and not clear:
        current = ws.data_cut()
        if output_format == "json":
            click.echo(json.dumps({"data_cut": current}, indent=2, ensure_ascii=False))
        elif current is None:
            click.echo("no study-wide data cut: each upload is judged against the latest full date it holds "
                       "(set one with `trialkit cut DATE`)")
        else:
            click.echo(f"data cut {current['date']} (set by {current['operator']} at {current['at']})")
        return
    if clear:
        setting = ws.set_data_cut(None, operator=operator, reason=reason)
        if output_format == "json":
            click.echo(json.dumps({"data_cut": None, "previous": setting["previous"], "reviews": []}, indent=2))
        else:
            click.echo(f"no study-wide data cut (was {setting['previous'] or 'none'})")
        return
    from trialkit.datacut import check_cut
    from trialkit.datacut import review as review_sites

    cut = check_cut(date.date())
    ws, study = load_with_workspace(workspace, study_path, operator)
    setting = ws.set_data_cut(cut, operator=operator, reason=reason)
    reviews = []
    if review:
        with progress_bar("reviewing sites against the data cut", quiet) as report:
            reviews = review_sites(ws, study, cut, operator=operator, progress=report)
    if output_format == "json":
        click.echo(json.dumps({"data_cut": ws.data_cut(), "previous": setting["previous"],
                               "reviews": [r.to_dict() for r in reviews]}, indent=2, ensure_ascii=False))
    else:
        click.echo(f"data cut {cut.isoformat()} (was {setting['previous'] or 'none'})")
        for item in reviews:
            if item.skipped:
                click.echo(f"site {item.site}: not reviewed: {item.skipped}")
                continue
            click.echo(f"site {item.site}: data until {item.data_until or 'no date'}; reviewed against the cut: "
                       f"{len(item.new_queries)} new quer{'y' if len(item.new_queries) == 1 else 'ies'}, "
                       f"{len(item.reopened)} reopened, {len(item.new_deviations)} new deviation(s)")
    if not quiet and review:
        click.echo(f"{len(reviews)} site(s) with data stopping before the cut reviewed"
                   + ("; see `trialkit queries --status open`" if any(r.new_queries for r in reviews) else ""),
                   err=True)
