"""``trialkit map``: the mapping specs that read site systems' own exports.

``map list`` shows the study's specs (and the workspace's), ``map check SPEC...`` validates spec
files against the study (exit 1 with every problem and its fix), ``map suggest FILE --form VS``
proposes a spec from an export for the data manager to edit and keep in ``mappings/``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from trialkit.commands.options import load, mappings_for, quiet_option, study_option


@click.group(name="map")
def command() -> None:
    """Mapping specs for site systems' exports: list, check SPEC, suggest FILE --form CODE.

    A spec (mappings/NAME.toml in the study folder, or in the workspace) reads a site system's own
    export as a form: column renames, recodes, date formats, long-to-wide pivots, constants, a split
    or join of a date and a time. SDTM, REDCap and ODM exports are recognised without one.
    """


@command.command(name="list")
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Output format.")
@study_option
def list_command(fmt: str, study_path: str | None) -> None:
    """List the study's (and the workspace's) mapping specs and what each fills."""
    study = load(study_path)
    specs = mappings_for(study, None)
    rows = [{"name": s.name, "origin": s.origin, "form": s.form, "sdtm_domain": s.sdtm_domain,
             "recognise": list(s.spec.recognise.columns) if s.spec.recognise else [], "title": s.title,
             "path": str(s.path), "sites": [site.id for site in study.sites.values() if s.name in site.mappings]}
            for s in specs.values()]
    if fmt == "json":
        click.echo(json.dumps({"study": study.id, "mappings": rows}, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo(f"{study.id}: no mapping specs (mappings/*.toml)")
    for row in rows:
        extra = [f"SDTM {row['sdtm_domain']}" if row["sdtm_domain"] else "",
                 f"sites {', '.join(row['sites'])}" if row["sites"] else "",
                 f"recognises {', '.join(row['recognise'])}" if row["recognise"] else ""]
        click.echo(f"{row['name']:<20} -> {row['form']:<6} {row['title']}"
                   + "".join(f" [{e}]" for e in extra if e) + ("" if row["origin"] == "study" else " (workspace)"))


@command.command(name="check")
@click.argument("specs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Output format.")
@study_option
def check_command(specs: tuple[str, ...], fmt: str, study_path: str | None) -> None:
    """Check mapping spec files against the study: exit 1 with each problem and its fix.

    A valid spec is listed with what fills each variable it reads.
    """
    from trialkit.study.mappings import check_spec, read_spec

    study = load(study_path)
    results = []
    for path in specs:
        mapping, problems = read_spec(Path(path))
        if mapping is not None:
            problems = check_spec(mapping, study.forms, study.codelists, study.missing_codes)
        results.append({"path": path, "name": Path(path).stem, "form": mapping.form if mapping else None,
                        "problems": problems, "rules": mapping.rows() if mapping and not problems else []})
    failing = any(r["problems"] for r in results)
    if fmt == "json":
        click.echo(json.dumps({"study": study.id, "specs": results}, indent=2, ensure_ascii=False))
    else:
        for result in results:
            if result["problems"]:
                click.echo(f"{result['path']}: {len(result['problems'])} problem(s)")
                for problem in result["problems"]:
                    click.echo(f"  error: {problem}")
                continue
            click.echo(f"{result['path']}: ok, reads form {result['form']}")
            for rule in result["rules"]:
                click.echo(f"  {rule['variable']:<9} <- {rule['source'] or '-':<24} {rule['rule']}")
    sys.exit(1 if failing else 0)


@command.command(name="suggest")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--form", "form_code", required=True, metavar="CODE", help="The form the export holds, e.g. VS.")
@click.option("--sheet", default=None, metavar="NAME", help="The sheet or dataset to read (default: the first "
              "with rows).")
@click.option("--site", default=None, metavar="SS", help="The site whose export it is: its date order settles "
              "ambiguous dates, its id fills SITEID when the export has no site column.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, metavar="SPEC.toml",
              help="Write the spec to this file (default: stdout); then edit it and keep it in mappings/.")
@study_option
@quiet_option
def suggest_command(file: str, form_code: str, sheet: str | None, site: str | None, output: str | None,
                    study_path: str | None, quiet: bool) -> None:
    """Propose a mapping spec reading FILE as form CODE, to edit and keep in mappings/.

    Columns are matched to variables by name, label, a close name and their values (codes, dates);
    recodes, date patterns and a long-to-wide pivot are proposed where the values need them. Every
    guess is a line of the spec or a comment; check the result with `trialkit map check`.
    """
    from trialkit.importers.reader import read_file
    from trialkit.importers.suggest import pick_table, suggest_spec

    study = load(study_path)
    try:
        form = study.form(form_code)
    except KeyError as exc:
        raise click.BadParameter(str(exc.args[0]), param_hint="--form") from exc
    if site is not None:
        try:
            site = study.site(site).id
        except KeyError as exc:
            raise click.BadParameter(str(exc.args[0]), param_hint="--site") from exc
    if output:
        from trialkit.outputs import check_output_file

        check_output_file(output, kind="toml")
    read = read_file(file)
    errors = [f for f in read.findings if f.severity.value == "error"]
    table = pick_table(read.tables, sheet)
    if table is None:
        reason = "; ".join(f.message for f in errors) or (f"no sheet or dataset {sheet!r}" if sheet else "no table")
        raise click.UsageError(f"{file}: nothing to suggest from ({reason})")
    suggestion = suggest_spec(table, form, study, source=Path(file).name, site=site)
    if output:
        Path(output).write_text(suggestion.text, encoding="utf-8")
    else:
        click.echo(suggestion.text, nl=False)
    if not quiet:
        click.echo(f"map suggest: {len(suggestion.columns)} variable(s) found"
                   + (f", a pivot of {len(suggestion.pivot)} test(s)" if suggestion.pivot else "")
                   + f", {len(suggestion.unread)} column(s) not read" + (f"; wrote {output}" if output else ""),
                   err=True)
