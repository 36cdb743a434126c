"""Options shared by several commands, as decorators."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from trialkit.study import ENV_STUDY


def study_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--study PATH``: the study definition folder (default: bundled ANK-SJIA-01)."""
    return click.option(
        "--study",
        "study_path",
        type=click.Path(file_okay=True, dir_okay=True),
        envvar=ENV_STUDY,
        default=None,
        help=f"Study definition folder (default: the bundled ANK-SJIA-01; env {ENV_STUDY}).",
    )(func)


def quiet_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``-q/--quiet``: no progress or summary on stderr."""
    return click.option("-q", "--quiet", is_flag=True, help="No progress or summary on stderr.")(func)


def load(study_path: str | None):  # -> Study (kept untyped to avoid importing at module level)
    """Load the study named by ``--study`` (or the default), for use inside a command."""
    from trialkit.study import load_study

    return load_study(study_path)
