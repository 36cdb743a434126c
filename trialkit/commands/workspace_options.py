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
