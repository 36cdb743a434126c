"""``trialkit redcap dictionary``: the CRF as a REDCap project a site can import."""

from __future__ import annotations

import json
from pathlib import Path

import click

from trialkit.commands.options import load, quiet_option, study_option


@click.group(name="redcap")
def command() -> None:
    """The CRF as a REDCap project: redcap dictionary -o FILE.csv (events, instruments).

    Sites that run REDCap import the data dictionary (and, for a longitudinal project, the events,
    the instrument-event mapping and the repeating instruments); their record exports — raw or with
    labels — are then read back by validate and submit without a mapping spec.
    """


@command.command(name="dictionary")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, metavar="FILE.csv",
              help="The data dictionary (REDCap: Project Setup > Data Dictionary > upload); default: stdout.")
@click.option("--events", "events_path", type=click.Path(dir_okay=False), default=None, metavar="FILE.csv",
              help="Also write the events (one per visit) as REDCap's event import CSV.")
@click.option("--instrument-events", "mapping_path", type=click.Path(dir_okay=False), default=None,
              metavar="FILE.csv", help="Also write the instrument-event mapping (which forms at which visit).")
@click.option("--repeating", "repeating_path", type=click.Path(dir_okay=False), default=None, metavar="FILE.csv",
              help="Also write the repeating instruments (forms with several records per subject or visit).")
@click.option("-f", "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True,
              help="csv: the dictionary as REDCap imports it; json: the whole project design.")
@study_option
@quiet_option
def dictionary_command(output: str | None, events_path: str | None, mapping_path: str | None,
                       repeating_path: str | None, fmt: str, study_path: str | None, quiet: bool) -> None:
    """Write the CRF as a REDCap data dictionary (and its events and instrument mapping).

    One instrument per form, the record id subjid first, a field per variable a site types: codelists
    as dropdowns (choices 1, Decode | 2, Decode), Y/N as yesno, dates as date_ymd, whole numbers and
    numbers with the CRF's min and max, required flags, conditional requirements as branching logic
    where REDCap can express them. An existing file is replaced only when trialkit wrote it.
    """
    from trialkit.outputs import check_output_file
    from trialkit.redcap import (
        DICTIONARY_COLUMNS,
        EVENT_COLUMNS,
        MAPPING_COLUMNS,
        REPEATING_COLUMNS,
        build_project,
        dictionary_csv,
        events_csv,
        instrument_events_csv,
        repeating_csv,
    )

    study = load(study_path)
    project = build_project(study)
    outputs = []
    if fmt == "json":
        text = json.dumps(project.to_dict(), indent=2, ensure_ascii=False) + "\n"
        outputs.append((output, text, "json", None))
    else:
        outputs.append((output, dictionary_csv(project), "csv", ",".join(_csv_header(DICTIONARY_COLUMNS))))
    for path, render, columns in ((events_path, events_csv, EVENT_COLUMNS), (mapping_path, instrument_events_csv,
                                  MAPPING_COLUMNS), (repeating_path, repeating_csv, REPEATING_COLUMNS)):
        if path:
            outputs.append((path, render(project), "csv", ",".join(columns)))
    for path, _, kind, header in outputs:
        if path:
            check_output_file(path, kind=kind, header=header)
    for path, text, _, _ in outputs:
        if path:
            Path(path).write_text(text, encoding="utf-8", newline="")
        else:
            click.echo(text, nl=False)
    if not quiet:
        written = [p for p, *_ in outputs if p]
        click.echo(f"redcap dictionary: {len(project.fields)} field(s) in {len(project.instruments)} instrument(s), "
                   f"{len(project.events)} event(s)" + (f"; wrote {', '.join(written)}" if written else ""), err=True)


def _csv_header(columns: tuple[str, ...]) -> list[str]:
    return [f'"{c}"' if "," in c else c for c in columns]
