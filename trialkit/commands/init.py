"""``trialkit init``: create a workspace (the submissions ledger and the raw-upload archive)."""

from __future__ import annotations

import click

from trialkit.commands.options import load, quiet_option, study_option
from trialkit.commands.workspace_options import operator_option


@click.command(name="init")
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False, dir_okay=True))
@study_option
@operator_option
@quiet_option
def command(directory: str, study_path: str | None, operator: str | None, quiet: bool) -> None:
    """Create a workspace: the submissions ledger and the raw-upload archive.

    DIR is created if missing. The workspace binds its study: it records the study (id, protocol
    version, a hash of the definition folder, its path) and keeps a copy of the definition, and every
    later command uses it without --study. A --study of another study is refused; the same study with
    a changed definition (an amendment) is accepted and recorded in the audit log. Later commands find
    the workspace with --workspace, the TRIALKIT_WORKSPACE variable, or from the current folder.
    """
    from trialkit.study.binding import init_bound_workspace

    study = load(study_path, from_workspace=False)
    workspace = init_bound_workspace(directory, study, operator=operator)
    click.echo(str(workspace.path))
    if not quiet:
        click.echo(
            f"Created a {study.id} workspace (protocol version {study.protocol_version}) in {workspace.path}; "
            f"set TRIALKIT_WORKSPACE={workspace.path} or pass --workspace to use it from elsewhere",
            err=True,
        )
