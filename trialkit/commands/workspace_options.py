"""Options shared by the ledger commands (``init``, ``submit``, ``queries``, ``log``), as decorators."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

ENV_WORKSPACE = "TRIALKIT_WORKSPACE"  # same as trialkit.ledger.ENV_WORKSPACE, without importing it


def workspace_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--workspace DIR``: the workspace folder (default: ``$TRIALKIT_WORKSPACE``, else the
    current folder or the nearest parent holding a workspace)."""
    return click.option(
        "--workspace",
        "workspace",
        type=click.Path(file_okay=False, dir_okay=True),
        envvar=ENV_WORKSPACE,
        default=None,
        help=f"Workspace folder (default: env {ENV_WORKSPACE}, else the current folder or a parent "
        "holding trialkit-workspace.toml).",
    )(func)


def operator_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--operator NAME``: who is acting, recorded in the ledger (default: the OS user)."""
    return click.option(
        "--operator",
        default=None,
        metavar="NAME",
        help="Who is acting, recorded in the ledger and audit log (default: the OS user name).",
    )(func)


def site_id(study: Any, site: str) -> str:
    """The study's id for a ``--site`` value (``1`` → ``01``); a click usage error when unknown."""
    try:
        return str(study.site(site).id)
    except KeyError as exc:
        raise click.UsageError(str(exc.args[0]) if exc.args else f"unknown site {site!r}") from None


def decision_options(metavar: str, noun: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options of a data manager's decision on ledger items (``queries close/reopen``,
    ``deviations confirm/dismiss``): the ids (``ids``), ``--reason`` (required), ``--site``, ``-f
    text|json``, ``--operator``, ``--workspace``, ``--study`` and ``-q``."""
    from trialkit.commands.options import quiet_option, study_option

    def apply(func: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed((
            click.argument("ids", metavar=metavar, nargs=-1, required=True),
            click.option("--reason", required=True, metavar="TEXT", help="Why (kept in the audit log); required."),
            click.option("--site", default=None, metavar="SS",
                         help=f"The site of the {noun} (needed only when two sites have the same id)."),
            click.option("-f", "--format", "output_format", type=click.Choice(["text", "json"]), default="text",
                         show_default=True, help="Result on stdout."),
            operator_option, workspace_option, study_option, quiet_option,
        )):
            func = option(func)
        return func

    return apply


def decision_workspace(workspace: str | None, study_path: str | None, operator: str | None,
                       site: str | None) -> tuple[Any, str | None]:
    """The workspace of a decision and the study's id of ``--site`` (the study is loaded only then)."""
    from trialkit.commands.options import load_with_workspace
    from trialkit.ledger import open_workspace

    if site is None:
        return open_workspace(workspace), None
    ws, study = load_with_workspace(workspace, study_path, operator)
    return ws, site_id(study, site)
