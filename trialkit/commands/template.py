"""``trialkit template``: write the site upload workbook."""

from __future__ import annotations

from pathlib import Path

import click

from trialkit.commands.options import load, quiet_option, study_option
from trialkit.i18n import LANGUAGES


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
              help="The site's workbook: stamped with the site (a blank SITEID is filled in on import), in "
              "the site's language, stating its date, decimal and unit conventions.")
@click.option("--language", type=click.Choice(LANGUAGES), default=None,
              help="Write the labels, hints and instructions in this language (default: the site's, else en).")
@study_option
@quiet_option
def command(output: str | None, site: str | None, language: str | None, study_path: str | None,
            quiet: bool) -> None:
    """Write the site upload workbook (one sheet per form).

    Instructions, one sheet per form (a title row, the variable codes, their labels and hints in the
    site's language) with dropdowns, validation and print set-up, and the version stamp an importer
    reads back. --site stamps the workbook with the site and states that site's conventions. An
    existing workbook is replaced only when trialkit wrote it (a site's filled upload is refused,
    exit 2).
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
        written = write_template(study, Path(output), site=site, language=language)
    except OSError as exc:
        raise TrialkitError(
            f"{output}: cannot write the workbook ({exc.strerror or exc}); choose another -o path"
        ) from exc
    if not quiet:
        click.echo(f"Wrote {written}", err=True)
