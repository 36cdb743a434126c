"""``trialkit inspect FILE...``: what a file holds before it is validated.

Detected format, encoding, sheets or dataset, rows, columns with labels and types, the form each
table maps to, and the file-level findings (``file`` and ``structure`` categories and Excel error
cells). Exit 0 when every file was read, 1 when a file has an error finding of category ``file``
or an Excel error cell, 2 on usage errors, 3 when the run could not complete.
"""

from __future__ import annotations

import json
import sys

import click

from trialkit.commands.options import load, mapping_option, mappings_for, study_option

INSPECT_SCHEMA_VERSION = "1.0"


def _file_level(finding) -> bool:
    return finding.category.value in ("file", "structure") or finding.code == "IMP-EXCEL-ERROR"


def inspect_dict(result) -> dict:
    """The stable JSON form of an inspection: files with their tables, and file-level findings."""
    findings = [f for f in result.report.findings if _file_level(f)]
    return {
        "schema_version": INSPECT_SCHEMA_VERSION,
        "study": result.report.study_id,
        "files": result.files,
        "findings": [f.to_dict() for f in findings],
        "counts": result.report.counts(),
    }


def _render_text(result, out) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=out, force_terminal=out.isatty() if hasattr(out, "isatty") else False,
                      width=120 if not getattr(out, "isatty", lambda: False)() else None)
    by_file: dict[str, list] = {}
    for finding in result.report.findings:
        if _file_level(finding):
            by_file.setdefault(finding.file or "", []).append(finding)
    for facts in result.files:
        console.print(f"[bold]{facts['path']}[/bold]: format {facts['format']}"
                      + (f", encoding {facts['encoding']}" if facts.get("encoding") else "")
                      + (f", {facts['date_system']} date system" if facts.get("date_system") == 1904 else ""))
        for table in facts["tables"]:
            flags = f" ({table['visibility']})" if table["hidden"] else ""
            role = f" [{table['role']}]" if table.get("role") else ""
            console.print(f"  {table['kind']} {table['name']!r}{flags}{role}: {table['rows']} rows × "
                          f"{table['n_columns']} columns → form {table['form'] or '-'}")
            if table["columns"]:
                grid = Table(show_header=True, box=None, pad_edge=False)
                grid.add_column("column")
                grid.add_column("label")
                grid.add_column("type")
                for column in table["columns"][:60]:
                    grid.add_row(str(column["name"]), str(column["label"] or ""), str(column["type"] or ""))
                if len(table["columns"]) > 60:
                    grid.add_row(f"... {len(table['columns']) - 60} more", "", "")
                console.print(grid)
        for finding in by_file.get(facts["path"], []):
            where = f" [{finding.sheet}" + (f" row {finding.row}" if finding.row else "") + "]" if finding.sheet else ""
            console.print(f"  {finding.severity.value.upper()} {finding.code}{where}: {finding.message}",
                          markup=False, highlight=False)
        console.print()


@click.command("inspect")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Output format.")
@click.option("--site", default=None, help="Site id (how dates and decimals were typed), e.g. 01.")
@click.option("--form", "form_code", default=None, help="Form code for a SAS/SPSS/Stata/CSV file, e.g. LB.")
@mapping_option
@study_option
def command(files, fmt, site, form_code, mapping, study_path):
    """Show what FILE holds: format, encoding, sheets or dataset, columns, forms, file problems."""
    from trialkit.cli import EXIT_FINDINGS, EXIT_OK
    from trialkit.importers.reader import import_files

    study = load(study_path)
    try:
        if site is not None:
            study.site(site)
        if form_code is not None:
            study.form(form_code)
    except KeyError as exc:
        raise click.UsageError(str(exc.args[0])) from exc
    specs = mappings_for(study, mapping)
    result = import_files(list(files), study, site=site, form=form_code, mapping=mapping, mappings=specs)
    if fmt == "json":
        click.echo(json.dumps(inspect_dict(result), indent=2, ensure_ascii=False, default=str))
    else:
        _render_text(result, sys.stdout)
    failing = any(f.severity.value == "error" and (f.category.value == "file" or f.code == "IMP-EXCEL-ERROR")
                  for f in result.report.findings)
    sys.exit(EXIT_FINDINGS if failing else EXIT_OK)
