"""Options shared by several commands, as decorators."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from trialkit.study.paths import ENV_STUDY


def study_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--study PATH``: the study definition folder (also ``trialkit --study PATH CMD`` and the env
    variable; default: the workspace's bound study, else the bundled study)."""
    return click.option(
        "--study",
        "study_path",
        type=click.Path(file_okay=True, dir_okay=True),
        default=None,
        metavar="PATH",
        help=f"Study definition folder (or `trialkit --study PATH CMD`, env {ENV_STUDY}; default: the "
        "workspace's bound study, else the bundled study).",
    )(func)


def chosen_study_path(study_path: str | None) -> str | None:
    """The study folder the user named: after the command, else before it (or ``$TRIALKIT_STUDY``,
    which the group option reads); None when none was named."""
    if study_path:
        return study_path
    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        if isinstance(ctx.obj, dict) and ctx.obj.get("study_path"):
            return str(ctx.obj["study_path"])
        ctx = ctx.parent
    return None


def quiet_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``-q/--quiet``: no progress or summary on stderr."""
    return click.option("-q", "--quiet", is_flag=True, help="No progress or summary on stderr.")(func)


def load(study_path: str | None, *, from_workspace: bool = True):  # -> Study (untyped: no import at load)
    """The study named by ``--study`` (or ``$TRIALKIT_STUDY``); else, when the command runs in a
    workspace (``$TRIALKIT_WORKSPACE``, or the current folder or a parent), the study it is bound to;
    else the bundled study."""
    from trialkit.study import load_study

    chosen = chosen_study_path(study_path)
    if chosen is None and from_workspace:
        bound = _bound_study()
        if bound is not None:
            return bound
    return load_study(chosen)


def _bound_study():
    """The study of the workspace this command runs in, or None (no workspace, or one without a binding)."""
    from trialkit.errors import TrialkitError
    from trialkit.ledger import open_workspace
    from trialkit.study.binding import current_binding, resolve_study

    try:
        workspace = open_workspace(None)
    except TrialkitError:
        return None
    return resolve_study(workspace, None) if current_binding(workspace) is not None else None


def load_with_workspace(workspace: str | None, study_path: str | None, operator: str | None = None):
    """Open the workspace and the study it uses: the bound study, or the named one (recorded as an
    amendment when its definition changed; refused when it is another study)."""
    from trialkit.ledger import open_workspace
    from trialkit.study.binding import resolve_study

    ws = open_workspace(workspace)
    return ws, resolve_study(ws, chosen_study_path(study_path), operator=operator)


class progress_bar:  # noqa: N801 - used as a context manager, like open()
    """A rich progress bar on stderr for long work, only when stderr is a terminal and not ``-q``.

    ``with progress_bar("pooling", quiet) as report:`` gives ``report(step, done, total)`` or None,
    which library functions accept as their ``progress`` callback (the library never prints).
    With ``lines=True`` a stderr that is not a terminal (a log, CI) gets one plain line per step
    instead (``title: step (done/total, N s)``), so that long work is never silent.
    """

    def __init__(self, title: str, quiet: bool = False, *, lines: bool = False) -> None:
        import sys

        self.title = title
        self.active = not quiet and sys.stderr.isatty()
        self.lines = not quiet and lines and not self.active
        self._bar = None

    def __enter__(self):
        if self.lines:
            import time

            began = time.perf_counter()

            def say(step: str, done: int, total: int) -> None:
                click.echo(f"{self.title}: {step} ({done}/{total}, {time.perf_counter() - began:.0f} s)", err=True)

            return say
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


def mapping_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--mapping NAME``: read every table through this mapping spec (a site system's export)."""
    return click.option(
        "--mapping", "mapping", default=None, metavar="NAME",
        help="Read every table of the FILEs through this mapping spec (mappings/NAME.toml of the study or "
        "the workspace); default: SDTM, REDCap and ODM exports and tables a spec recognises are found by "
        "their content (trialkit map list).",
    )(func)


def mappings_for(study: Any, mapping: str | None, workspace: Any = None) -> dict[str, Any]:
    """The mapping specs a command may use: the study's and its workspace's (the one given, or the
    one the command runs in); ``--mapping NAME`` must be one of them (a usage error otherwise)."""
    from trialkit.study.mappings import available_mappings

    folder = getattr(workspace, "path", workspace)
    if folder is None:
        from trialkit.errors import TrialkitError
        from trialkit.ledger import open_workspace

        try:
            folder = open_workspace(None).path
        except TrialkitError:
            folder = None
    specs = available_mappings(study, folder)
    if mapping is not None and mapping not in specs:
        raise click.BadParameter(f"no mapping {mapping!r}; the study{' and workspace' if folder else ''} "
                                 f"define: {', '.join(sorted(specs)) or 'none'}", param_hint="--mapping")
    return specs
