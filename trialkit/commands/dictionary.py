"""``trialkit dictionary``: write the data dictionary."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from trialkit.commands.options import load, quiet_option, study_option

# The first line of the Variables table as CSV: how an earlier dictionary CSV is recognised.
CSV_HEADER = re.compile(r"^form,order,name,label,")


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
    given; xlsx is written to -o (default STUDY_dictionary.xlsx). An existing file or folder is
    replaced only when trialkit wrote it (exit code 2 otherwise).
    """
    from trialkit.dictionary import write_dictionary
    from trialkit.errors import TrialkitError

    study = load(study_path)
    if fmt == "xlsx" and output in (None, "-"):
        output = f"{study.id}_dictionary.xlsx"
    if output in (None, "-"):
        write_dictionary(study, fmt, sys.stdout)
        return
    from trialkit.outputs import (
        check_length,
        check_output_file,
        check_output_folder,
        mark_output_folder,
    )

    check_length(output, "-o")
    folder = fmt == "csv" and (Path(output).is_dir() or not Path(output).suffix)
    if folder:
        check_output_folder(output, purpose="dictionary folder")
    else:
        check_output_file(output, kind=fmt, header=CSV_HEADER if fmt == "csv" else None)
    try:
        written = write_dictionary(study, fmt, Path(output))
        if folder:
            mark_output_folder(output, "data dictionary (csv)")
    except OSError as exc:
        raise TrialkitError(
            f"{output}: cannot write the dictionary ({exc.strerror or exc}); choose another -o path"
        ) from exc
    if not quiet:
        click.echo(f"Wrote {written}", err=True)
