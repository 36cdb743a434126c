"""``trialkit verify``: the archive, the audit chain and the current data agree with the audit log."""

from __future__ import annotations

import json

import click

from trialkit.commands.options import quiet_option
from trialkit.commands.workspace_options import workspace_option


@click.command(name="verify")
@click.option("-f", "--format", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text, or the result as JSON.")
@workspace_option
@quiet_option
def command(output_format: str, workspace: str | None, quiet: bool) -> None:
    """Check the archive, the audit chain and the current data against the audit log.

    Finds what was changed in the workspace behind trialkit's back. Recomputes the sha256 of every
    archived upload and checks the archive is read-only; checks the hash chain over the audit log
    (an edited, deleted or reordered line breaks it); replays the audit log to check every
    submission's status, every current-data pointer (site and form) and every freeze; and checks
    that the study definitions the workspace was bound to (created, amended) follow one another and
    that its copies of them are unchanged. `trialkit pool` runs the same checks first and refuses on
    any problem.

    Exit codes: 0 intact, 1 problems (each named), 2 usage error, 3 could not complete.
    """
    from trialkit.ledger import open_workspace
    from trialkit.textsafe import printable
    from trialkit.verify import verify

    ws = open_workspace(workspace)
    result = verify(ws)
    if output_format == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        checked = result.checked
        click.echo(f"{ws.path}: {checked.get('archive_files', 0)} archived file(s), "
                   f"{checked.get('audit_lines', 0)} audit line(s), {checked.get('pointers', 0)} current-data "
                   f"pointer(s), {checked.get('freezes', 0)} freeze(s), {checked.get('queries', 0)} query state(s), "
                   f"{checked.get('deviations', 0)} deviation status(es), {checked.get('study_definitions', 0)} study "
                   "definition(s) checked")
        for problem in result.problems:
            click.echo(f"{problem.code}: {printable(problem.message)}")
        for warning in result.warnings:
            click.echo(f"warning {warning.code}: {printable(warning.message)}")
        click.echo("intact" if result.ok else f"{len(result.problems)} problem(s)")
    if not quiet and not result.ok:
        click.echo("The workspace does not verify: restore the ledger or the archive from a backup; "
                   "`trialkit pool` refuses until it verifies.", err=True)
    raise SystemExit(0 if result.ok else 1)
