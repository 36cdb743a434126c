"""``trialkit init``: create a workspace (the submissions ledger and the raw-upload archive)."""

from __future__ import annotations

import click

from trialkit.commands.options import load, quiet_option, study_option


@click.command(name="init")
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False, dir_okay=True))
@study_option
@quiet_option
def command(directory: str, study_path: str | None, quiet: bool) -> None:
    """Create a workspace: the submissions ledger and the raw-upload archive.

    DIR is created if missing. The workspace records the study it is for; later commands find it
    with --workspace, the TRIALKIT_WORKSPACE variable, or from the current folder.
    """
    from trialkit.ledger import init_workspace

    study = load(study_path)
    workspace = init_workspace(directory, study_id=study.id)
    click.echo(str(workspace.path))
    if not quiet:
        click.echo(
            f"Created a {study.id} workspace in {workspace.path}; set TRIALKIT_WORKSPACE={workspace.path} "
            "or pass --workspace to use it from elsewhere",
            err=True,
        )
