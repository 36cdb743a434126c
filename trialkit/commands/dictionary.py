"""``trialkit dictionary``: write the data dictionary."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from trialkit.commands.options import load, quiet_option, study_option


@click.command(name="dictionary")
@click.option("-f", "--format", "fmt", type=click.Choice(["xlsx", "csv", "json", "md"]),
              default="xlsx", show_default=True, help="Output format.")
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    default=None,
    help="File (or, for csv, a folder: forms.csv, variables.csv, codelists.csv, visits.csv) to "
    "write; '-' or none writes json/md/csv to stdout. xlsx defaults to STUDY_dictionary.xlsx.",
)
@study_option
@quiet_option
def command(fmt: str, output: str | None, study_path: str | None, quiet: bool) -> None:
    """Write the data dictionary (xlsx, csv, json or md).

    Tables of forms, variables, codelists and visits. json, md and csv go to stdout unless -o is
    given; xlsx is written to -o (default STUDY_dictionary.xlsx).
    """
    from trialkit.dictionary import write_dictionary
    from trialkit.errors import TrialkitError

    study = load(study_path)
    if fmt == "xlsx" and output in (None, "-"):
        output = f"{study.id}_dictionary.xlsx"
    if output in (None, "-"):
        write_dictionary(study, fmt, sys.stdout)
        return
    try:
        written = write_dictionary(study, fmt, Path(output))
    except OSError as exc:
        raise TrialkitError(
            f"{output}: cannot write the dictionary ({exc.strerror or exc}); choose another -o path"
        ) from exc
    if not quiet:
        click.echo(f"Wrote {written}", err=True)
