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


class progress_bar:  # noqa: N801 - used as a context manager, like open()
    """A rich progress bar on stderr for long work, only when stderr is a terminal and not ``-q``.

    ``with progress_bar("pooling", quiet) as report:`` gives ``report(step, done, total)`` or None,
    which library functions accept as their ``progress`` callback (the library never prints).
    """

    def __init__(self, title: str, quiet: bool = False) -> None:
        import sys

        self.title = title
        self.active = not quiet and sys.stderr.isatty()
        self._bar = None

    def __enter__(self):
        if not self.active:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        # No refresh thread: some work forks worker processes, which must not happen while another
        # thread holds the console's lock.
        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                             console=Console(stderr=True), transient=True, auto_refresh=False)
        self._bar.__enter__()
        task = self._bar.add_task(self.title, total=1)

        def report(step: str, done: int, total: int) -> None:
            self._bar.update(task, description=step, completed=done, total=total)
            self._bar.refresh()

        return report

    def __exit__(self, *exc_info):
        if self._bar is not None:
            self._bar.__exit__(*exc_info)
        return False
