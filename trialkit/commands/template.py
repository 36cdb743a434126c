"""``trialkit template``: write the site upload workbook."""

from __future__ import annotations

from pathlib import Path

import click

from trialkit.commands.options import load, quiet_option, study_option


@click.command(name="template")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Workbook to write (default: STUDY_upload_template.xlsx, or ..._siteSS.xlsx with --site, "
    "in the current directory).",
)
@click.option("--site", default=None, metavar="SS",
              help="Pre-fill SITEID with this site and state its date, decimal and unit conventions.")
@study_option
@quiet_option
def command(output: str | None, site: str | None, study_path: str | None, quiet: bool) -> None:
    """Write the site upload workbook (one sheet per form).

    Instructions, one sheet per form with dropdowns and validation, and the version stamp an
    importer reads back. --site pre-fills SITEID and states that site's conventions. An existing
    workbook is replaced only when trialkit wrote it (a site's filled upload is refused, exit 2).
    """
    from trialkit.errors import TrialkitError
    from trialkit.templates import write_template

    study = load(study_path)
    if site is not None:
        try:
            site = study.site(site).id
        except KeyError:
            raise click.UsageError(
                f"unknown site {site!r}; {study.id} has sites {', '.join(study.sites)}",
            ) from None
    if output is None:
        suffix = f"_site{site}" if site else ""
        output = f"{study.id}_upload_template{suffix}.xlsx"
    from trialkit.outputs import check_output_file

    check_output_file(output, kind="xlsx")
    try:
        written = write_template(study, Path(output), site=site)
    except OSError as exc:
        raise TrialkitError(
            f"{output}: cannot write the workbook ({exc.strerror or exc}); choose another -o path"
        ) from exc
    if not quiet:
        click.echo(f"Wrote {written}", err=True)
