"""``trialkit diff``: what a site's upload changes, record by record and cell by cell."""

from __future__ import annotations

import json
from pathlib import Path

import click

from trialkit.commands.options import load_with_workspace, quiet_option, study_option
from trialkit.commands.workspace_options import site_id, workspace_option


@click.command(name="diff")
@click.option("--site", required=True, metavar="SS", help="The site whose data to compare.")
@click.argument("submissions", metavar="[SUB_A SUB_B]", nargs=-1, type=int)
@click.option("-f", "--format", "output_format", type=click.Choice(["text", "json", "csv", "xlsx"]),
              default="text", show_default=True, help="Output format (xlsx needs -o).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, metavar="PATH",
              help="Write the output to PATH instead of stdout.")
@workspace_option
@study_option
@quiet_option
def command(site: str, submissions: tuple[int, ...], output_format: str, output: str | None,
            workspace: str | None, study_path: str | None, quiet: bool) -> None:
    """Show the records a site's upload adds, removes and changes, per form.

    Without SUB_A SUB_B: the site's current data (form by form) against its latest submission —
    what that upload changes, or would change if it is held. With two submission ids: the first
    against the second. Records are matched by their form's keys; for a changed record every
    changed cell is shown with its old and new value.

    \b
    Formats: text, json (counts and one entry per change), csv (one row per added or removed record
    and per changed cell), xlsx (sheets Summary and Changes; needs -o).
    Exit codes: 0 compared, 2 usage error (unknown submission, another site's), 3 could not complete.
    """
    from trialkit.diff import diff_site, render_csv, render_text, write_xlsx
    from trialkit.outputs import check_output_file

    if len(submissions) not in (0, 2):
        raise click.UsageError("give two submission ids (SUB_A SUB_B), or none to compare the site's current "
                               "data with its latest submission")
    if output_format == "xlsx" and not output:
        raise click.UsageError("-f xlsx writes a workbook: give its path with -o PATH.xlsx")
    ws, study = load_with_workspace(workspace, study_path)
    site = site_id(study, site)
    if output:
        check_output_file(output, kind=output_format, workspace=ws.path, header=",".join(
            ("form", "change", "key", "subject", "variable", "old", "new")))
    a, b = submissions if submissions else (None, None)
    result = diff_site(ws, study, site, a, b)
    if output_format == "xlsx":
        write_xlsx(result, Path(output))
    else:
        text = {"json": lambda: json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n",
                "csv": lambda: render_csv(result), "text": lambda: render_text(result)}[output_format]()
        if output:
            Path(output).write_text(text, encoding="utf-8")
        else:
            click.echo(text, nl=False)
    if not quiet:
        click.echo(f"diff site {site}: {result.summary()}", err=True)
