"""``trialkit pool``: the pooled forms and analysis datasets of all sites, with a manifest."""

from __future__ import annotations

import click

from trialkit.commands.options import load_with_workspace, progress_bar, quiet_option, study_option
from trialkit.commands.workspace_options import operator_option, workspace_option

FORMAT_CHOICES = ("parquet", "csv", "xpt", "sav", "dta", "datasetjson", "ndjson")


def _formats(value: str) -> list[str]:
    chosen = [part.strip().lower() for part in value.split(",") if part.strip()]
    unknown = [f for f in chosen if f not in FORMAT_CHOICES]
    if unknown or not chosen:
        raise click.BadParameter(
            f"unknown format(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(FORMAT_CHOICES)}",
            param_hint="-f/--formats",
        )
    return chosen


@click.command(name="pool")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder (default: WORKSPACE/pooled, or WORKSPACE/pooled-LABEL with --freeze).")
@click.option("-f", "--formats", default="parquet,csv", show_default=True,
              help="Comma-separated: parquet, csv, xpt, sav, dta, datasetjson (CDISC Dataset-JSON v1.1, .json), "
              "ndjson (Dataset-JSON as NDJSON).")
@click.option("--unblind", "randlist", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The unblinded randomization list (CSV with RANDNO,ARM): adds ARM to ADSL; recorded in the "
              "audit log. Needs -o outside the workspace; the list must match the randomised subjects "
              "one to one and name only the study's arms.")
@click.option("--freeze", "freeze_label", default=None, metavar="LABEL",
              help="Rebuild the snapshot recorded by `trialkit freeze --label LABEL` instead of the current data.")
@click.option("--no-cache", "no_cache", is_flag=True, default=False,
              help="Re-import every submission from the archive, neither reading nor writing the workspace's "
              "re-import cache (WORKSPACE/cache; the output is the same either way).")
@operator_option
@workspace_option
@study_option
@quiet_option
def command(out_dir, formats, randlist, freeze_label, no_cache, operator, workspace, study_path, quiet) -> None:
    """Pool every site's current accepted data into analysis datasets.

    Verifies the workspace first (as `trialkit verify`), then re-imports each site's current data,
    form by form, from the archive: any error, or any record other than those accepted, stops the
    pool (exit code 3) naming site, submission, form and file, and the previous output stays
    complete. Then stacks the forms, gathers every ND/NK/NA a site typed into the reasons dataset,
    derives the study's analysis datasets (its analysis programs; a study without them pools its
    forms only), and writes them atomically with codebooks, define.xml (Define-XML 2.1) and a
    manifest.json naming every input (per site and form: submission, rows, files, sha256, protocol
    version) and every output's sha256. Rebuilding from the same inputs gives byte-identical files.
    A submission pooled before is read from the workspace's re-import cache (WORKSPACE/cache, keyed
    by its files' sha256, the study definition, the import limits and the trialkit version) when its entry verifies
    and matches the accepted records; the cache is disposable and never changes the output.
    Without --unblind no output holds the arm; with it, ARM must be one of the study's arms. -o may
    not be the workspace, its ledger or archive, a folder holding the workspace, or an existing
    folder trialkit did not create (exit code 2).

    Exit code 0 written, 2 usage error (refused -o, randomization list), 3 could not complete.
    """
    from pathlib import Path

    from trialkit.ledger import check_label
    from trialkit.outputs import check_output_folder
    from trialkit.pool import check_unblinded_output, pool

    chosen = _formats(formats)
    if freeze_label is not None:
        freeze_label = check_label(freeze_label)
    ws, study = load_with_workspace(workspace, study_path, operator)
    target = Path(out_dir) if out_dir else ws.path / (f"pooled-{freeze_label}" if freeze_label else "pooled")
    if randlist:
        check_unblinded_output(ws, target)
    check_output_folder(target, workspace=ws.path, purpose="pooled output set")
    with progress_bar("trialkit pool", quiet) as report:
        manifest = pool(ws, study, target, formats=chosen, randlist=randlist, freeze=freeze_label,
                        operator=operator, progress=report, cache=not no_cache)
    by_site: dict[str, list[str]] = {}
    for entry in manifest.get("inputs", []):
        by_site.setdefault(entry["site"], []).append(f"#{entry['submission']}")
    sites = ", ".join(f"{site}{'+'.join(ids)}" for site, ids in by_site.items())
    click.echo(str(target))
    if not quiet:
        n_files = len(manifest.get("files", {}))
        click.echo(f"pooled {sites} into {target} ({n_files} files, manifest.json)"
                   + (" — UNBLINDED" if randlist else ""), err=True)

