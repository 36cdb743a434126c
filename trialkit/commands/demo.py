"""``trialkit demo``: the study's synthetic trial, run end to end, and where to look."""

from __future__ import annotations

from pathlib import Path

import click

from trialkit.commands.options import load, progress_bar, quiet_option, study_option

DEFAULT_DIR = "./trialkit-demo"


@click.command(name="demo")
@click.argument("directory", metavar="[DIR]", required=False, default=DEFAULT_DIR,
                type=click.Path(file_okay=False))
@click.option("--seed", type=int, default=None, metavar="N",
              help="Seed of the synthetic study (default: the study's own); the same seed gives the same uploads.")
@study_option
@quiet_option
def command(directory: str, seed: int | None, study_path: str | None, quiet: bool) -> None:
    """Run the whole job on a synthetic study: uploads, ledger, pool, report.

    The study's demo (the bundled study's: its sites' uploads in each site's conventions — filled
    templates, SAS transport, CSV, a corrected re-upload — with a known set of planted problems)
    is submitted to a new workspace in DIR (default ./trialkit-demo); the accepted data are pooled,
    the HTML report and one query workbook per site written, and where to look is printed. An
    earlier demo in DIR is replaced; any other non-empty DIR is refused (exit code 2), and so is a
    study that brings no demo.
    """
    from trialkit.demo import MARKER, check_demo_folder
    from trialkit.errors import UsageError
    from trialkit.outputs import check_output_folder
    from trialkit.study.plugins import demo_runner

    study = load(study_path, from_workspace=False)
    run_demo, default_seed = demo_runner(study)
    folder = Path(directory)
    check_output_folder(folder, purpose="demo folder", in_workspace=False, own_marker=MARKER)
    try:
        check_demo_folder(folder)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from exc
    with progress_bar("trialkit demo", quiet, lines=True) as report:
        result = run_demo(folder, study=study, seed=seed if seed is not None else default_seed, progress=report)

    here = result.directory
    ws = result.workspace
    click.echo(f"Demo study {study.id} {study.protocol_version} in {here} ({result.counts['subjects']} subjects, "
               f"{result.counts['sites']} sites, {result.counts['submissions']} uploads, "
               f"{result.seconds:.0f} s)")
    click.echo("")
    if result.report is not None:
        click.echo(f"  report            {result.report}")
    else:
        click.echo(f"  report            not written: {result.report_note}")
    click.echo(f"  pooled datasets   {result.pooled}  (parquet, csv, xpt; manifest.json)")
    click.echo(f"  query workbooks   {here / 'queries'}  (one per site: queries_siteSS.xlsx)")
    click.echo(f"  answer key        {result.answer_key}  ({result.counts['problems']} planted problems, "
               f"{result.counts['codes']} codes)")
    click.echo(f"  site uploads      {result.uploads}")
    click.echo(f"  workspace         {ws}")
    loop = result.loop or {}
    if loop.get("deviation_log"):
        click.echo(f"  deviation log     {here / loop['deviation_log']}")
    click.echo("")
    click.echo("Site status: " + ", ".join(f"{site} {status}" for site, status in sorted(result.statuses.items())))
    if loop:
        click.echo("")
        click.echo("The data manager's loop:")
        for item in loop.get("answered_and_closed", []):
            click.echo(f"  query {item['query_id']} ({item['code']}, site {item['site']}): answered by the site in "
                       f"{item['workbooks'][1]}, closed by the data manager")
        for item in loop.get("decided", []):
            click.echo(f"  deviation {item['deviation_id']} ({item['code']}, site {item['site']}, {item['subject']}): "
                       f"{item['status']}" + ("; its query closed" if item.get("query_closed") else ""))
        for item in loop.get("resolved_by_data", []):
            click.echo(f"  deviation {item['deviation_id']} ({item['code']}, site {item['site']}, {item['subject']}): "
                       f"{item['status']} by submission {item['resolved_by_submission']} (corrected data)")
    click.echo("")
    example = sorted(result.statuses)[0] if result.statuses else "SS"
    click.echo("Next, try:")
    click.echo(f"  trialkit log --workspace {ws}")
    click.echo(f"  trialkit queries --workspace {ws} --status open")
    click.echo(f"  trialkit deviations --workspace {ws}")
    click.echo(f"  trialkit queries --workspace {ws} --site {example} -o queries_site{example}.xlsx")
    click.echo(f"  trialkit pool --workspace {ws} -o pooled")
