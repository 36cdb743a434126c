"""The ``trialkit`` command line.

Each command lives in its own module under :mod:`trialkit.commands` and is imported only when it
runs, so ``trialkit --help`` stays fast and never imports pandas. A command parses its options,
calls one library function, renders the result and exits with the code of ``STYLE.md``:

==  ==========================================================
0   clean
1   findings at or above ``--fail-on``
2   usage error (bad option, unknown file, unknown site or form)
3   could not complete (unreadable study definition, I/O error, ...)
==  ==========================================================
"""

from __future__ import annotations

import importlib
import sys

import click

from trialkit import __version__
from trialkit.study.paths import ENV_STUDY

# name -> (module under trialkit.commands, one-line description shown by --help)
COMMANDS: dict[str, tuple[str, str]] = {
    "codes": ("codes", "List every finding code: the engine's catalogue and the study's rules."),
    "cut": ("cut", "Show or set the study-wide data cut (YYYY-MM-DD) that validate and submit use."),
    "demo": ("demo", "Run the whole job on a synthetic study: uploads, ledger, pool, report."),
    "dictionary": ("dictionary", "Write the data dictionary (xlsx, csv, json or md)."),
    "deviations": ("deviations", "The deviation log: every protocol deviation ever detected; confirm or dismiss."),
    "diff": ("diff", "Show the records a site's upload adds, removes and changes, per form."),
    "freeze": ("freeze", "Record a named, immutable snapshot of the current data (e.g. a database lock)."),
    "init": ("init", "Create a workspace: the submissions ledger and the raw-upload archive."),
    "inspect": ("inspect", "Show what FILE holds: format, encoding, sheets or dataset, columns, forms, file problems."),
    "log": ("log", "Show submissions per site and the audit trail."),
    "map": ("map", "Mapping specs for site systems' exports: list, check SPEC, suggest FILE --form CODE."),
    "odm": ("odm", "CDISC ODM 1.3.2: the study's forms as a MetaDataVersion (odm metadata), its OIDs."),
    "pool": ("pool", "Pool every site's current accepted data into analysis datasets."),
    "redcap": ("redcap", "The CRF as a REDCap project: redcap dictionary -o FILE.csv (events, instruments)."),
    "queries": ("queries", "List queries by state, site, code and age; read back answers; close and reopen queries."),
    "report": ("report", "Write the HTML data-quality report (self-contained, works offline)."),
    "study": ("study", "Start or check a study definition: study new DIR, study check [DIR]."),
    "submit": ("submit", "Import, validate and record a site's upload in the ledger."),
    "template": ("template", "Write the site upload workbook (one sheet per form)."),
    "validate": ("validate", "Validate site uploads: data checks, protocol deviations, query workbook."),
    "verify": ("verify", "Check the archive, the audit chain and the current data against the audit log."),
}

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_FAILED = 0, 1, 2, 3


class CouldNotComplete(click.ClickException):
    """Shown as ``Error: ...`` on stderr; exit code 3."""

    exit_code = EXIT_FAILED


class LazyGroup(click.Group):
    """A click group that imports a command's module only when that command is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module = importlib.import_module(f"trialkit.commands.{COMMANDS[cmd_name][0]}")
        return module.command

    def invoke(self, ctx: click.Context) -> object:
        # Map "could not run" exceptions to clean messages and exit codes, in the CLI and in
        # CliRunner alike: never a traceback for a problem the user can fix. Anything unexpected
        # (a bug in trialkit or in a study's own code) is exit 3 with one line; --debug shows the
        # traceback.
        from trialkit.errors import TrialkitError, UsageError

        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit, KeyboardInterrupt):
            raise
        except UsageError as exc:
            raise click.UsageError(str(exc)) from exc
        except TrialkitError as exc:
            if ctx.params.get("debug"):
                _traceback()
            raise CouldNotComplete(str(exc)) from exc
        except BrokenPipeError:
            raise
        except Exception as exc:
            if ctx.params.get("debug"):
                _traceback()
            raise CouldNotComplete(
                f"unexpected error: {type(exc).__name__}: {exc}. This is a bug in trialkit or in the "
                "study's own code; run again with `trialkit --debug ...` for the traceback and report it"
            ) from exc

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # One line per command from the table, without importing any command module.
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _traceback() -> None:
    import traceback

    traceback.print_exc(file=sys.stderr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="trialkit")
@click.option("--study", "study_path", type=click.Path(file_okay=True, dir_okay=True), envvar=ENV_STUDY,
              default=None, metavar="PATH",
              help=f"Study definition folder for every command (also after the command name; env {ENV_STUDY}). "
              "Default: the workspace's bound study, else the bundled study.")
@click.option("--debug", is_flag=True, help="Show the traceback of an unexpected error (exit code 3).")
@click.pass_context
def cli(ctx: click.Context, study_path: str | None, debug: bool) -> None:
    """trialkit — data management for multicenter clinical trials.

    Site upload templates, importers for Excel/SAS/SPSS/Stata/CSV, validation with protocol
    deviations and per-site queries, a submissions ledger and pooled analysis datasets. A trial is
    a study definition folder (trialkit study new DIR); the bundled one is used unless --study,
    TRIALKIT_STUDY or a workspace's bound study names another.
    """
    ctx.ensure_object(dict)
    ctx.obj["study_path"] = study_path
    ctx.obj["debug"] = debug


def main() -> None:
    """Console-script entry point."""
    try:
        cli(prog_name="trialkit")
    except BrokenPipeError:  # e.g. `trialkit dictionary -f csv | head`
        sys.exit(EXIT_OK)
