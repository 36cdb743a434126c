"""``trialkit freeze``: a named, immutable snapshot of every site's current submission."""

from __future__ import annotations

import click

from trialkit.commands.workspace_options import operator_option, workspace_option


@click.command(name="freeze")
@click.option("--label", required=True, metavar="NAME", help="Name of the snapshot, e.g. primary-lock.")
@operator_option
@workspace_option
def command(label: str, operator: str | None, workspace: str | None) -> None:
    """Record a named, immutable snapshot of the current data (e.g. a database lock).

    Later submissions do not change what `trialkit pool --freeze NAME` rebuilds. The snapshot is an
    audit-log line, so nothing can edit or delete it.
    """
    from trialkit.ledger import open_workspace

    snapshot = open_workspace(workspace).freeze(label, operator=operator)
    for site, submission in snapshot["submissions"].items():
        click.echo(f"site {site}: submission #{submission}")
    click.echo(f"froze {len(snapshot['submissions'])} site(s) as {snapshot['label']!r} at {snapshot['at']}", err=True)
