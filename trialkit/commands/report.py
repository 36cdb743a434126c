"""``trialkit report``: the HTML data-quality report, one self-contained file that works offline."""

from __future__ import annotations

import click

from trialkit.commands.options import load_with_workspace, quiet_option, study_option
from trialkit.commands.workspace_options import site_id, workspace_option


@click.command(name="report")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="report.html", show_default=True,
              metavar="FILE.html", help="Where to write the report.")
@click.option("--site", default=None, metavar="SS",
              help="Only this site: its submissions, queries, deviations and subjects (to send to the site).")
@click.option("--pooled", "pooled_dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Pooled datasets to chart (default: WORKSPACE/pooled; without them the current "
              "submissions are re-imported).")
@workspace_option
@study_option
@quiet_option
def command(output: str, site: str | None, pooled_dir: str | None, workspace: str | None,
            study_path: str | None, quiet: bool) -> None:
    """Write the HTML data-quality report (self-contained, works offline).

    Study overview, per-site status and open queries, protocol deviations by code and site,
    enrollment over time, missing data by form and visit, and the study's own sections (e.g. its
    primary endpoint, blinded). Charts are inline SVG; the file makes no network request. Every
    number names the command that reproduces it. With --site, the report holds only that site's
    data. Prints the path of the file written. -o may not be inside the workspace or name an
    existing file trialkit did not write as a report (exit code 2).
    """
    from trialkit.outputs import check_length, check_output_file
    from trialkit.report import write_report

    ws, study = load_with_workspace(workspace, study_path)
    if site is not None:
        site = site_id(study, site)
    check_output_file(output, kind="html", workspace=ws.path)
    if pooled_dir is not None:
        check_length(pooled_dir, "--pooled")
    path = write_report(ws, study, output, site=site, pooled_dir=pooled_dir)
    click.echo(str(path))
    if not quiet:
        scope = f"site {site}" if site else "all sites"
        click.echo(f"wrote the data-quality report for {scope}; open it in a browser (no network needed)", err=True)
