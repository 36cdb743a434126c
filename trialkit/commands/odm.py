"""``trialkit odm metadata``: the study's forms as a CDISC ODM 1.3.2 MetaDataVersion."""

from __future__ import annotations

import json
from pathlib import Path

import click

from trialkit.commands.options import load, quiet_option, study_option


@click.group(name="odm")
def command() -> None:
    """CDISC ODM 1.3.2: the study's forms as a MetaDataVersion (odm metadata), its OIDs.

    ODM ClinicalData that a site's EDC exports with these OIDs is read by validate and submit like
    any upload.
    """


@command.command(name="metadata")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, metavar="FILE.xml",
              help="Write the ODM document here (default: stdout).")
@study_option
@quiet_option
def metadata_command(output: str | None, study_path: str | None, quiet: bool) -> None:
    """Write the study's forms as an ODM 1.3.2 MetaDataVersion (valid against the ODM 1.3.2 schema).

    Events per visit, a form and an item group per CRF form, an item per variable a site types with
    its data type, length, range checks and codelist. An existing file is replaced only when trialkit
    wrote it.
    """
    from trialkit.odm import metadata_xml
    from trialkit.outputs import check_output_file

    study = load(study_path)
    if output:
        check_output_file(output, kind="xml")
    text = metadata_xml(study)
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)
    if not quiet and output:
        click.echo(f"odm metadata: {len(study.forms)} form(s), {len(study.visits)} event(s); wrote {output}",
                   err=True)


@command.command(name="oids")
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Output format.")
@study_option
def oids_command(fmt: str, study_path: str | None) -> None:
    """List the study's ODM OIDs (declared in [odm] of study.toml, or derived from the codes)."""
    from trialkit.odm import study_oids

    study = load(study_path)
    oids = study_oids(study)
    data = {"study": oids.study, "metadata_version": oids.metadata_version, "events": oids.events,
            "forms": oids.forms, "item_groups": oids.item_groups,
            "items": {f"{form}.{name}": oid for (form, name), oid in oids.items.items()}}
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    click.echo(f"study {oids.study}, MetaDataVersion {oids.metadata_version}")
    for kind in ("events", "forms", "item_groups", "items"):
        for key, oid in data[kind].items():
            click.echo(f"{kind[:-1]:<10} {key:<16} {oid}")
