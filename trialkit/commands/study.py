"""``trialkit study new`` and ``trialkit study check``: start a new trial, lint a definition."""

from __future__ import annotations

import json

import click

from trialkit.commands.options import chosen_study_path, quiet_option


@click.group(name="study")
def command() -> None:
    """Start or check a study definition: study new DIR, study check [DIR].

    A study definition is a folder: study.toml (sites, visits, arms, schedule, codelists, plug-ins
    and the trial's own [protocol] parameters), forms.py, the rule files, and optional plug-ins
    (analysis programs, demo, report sections).
    """


@command.command(name="new")
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False))
@click.option("--from", "source", type=click.Path(file_okay=True, dir_okay=True), default=None, metavar="PATH",
              help="Copy this study definition (default: the bundled study).")
@click.option("--blank", is_flag=True,
              help="Write a minimal study instead: two forms, two visits, one site, one data check.")
@click.option("--id", "study_id", default=None, metavar="ID", help="The new study's id (written into study.toml).")
@quiet_option
def new(directory: str, source: str | None, blank: bool, study_id: str | None, quiet: bool) -> None:
    """Start a new trial in DIR: a copy of a study definition, or a minimal blank one.

    DIR must be new or empty. The result loads and runs the whole pipeline as it stands (template,
    validate, init, submit, pool, report); edit it into the new trial and run `trialkit study check DIR`.
    """
    from trialkit.study.scaffold import new_study

    folder = new_study(directory, source=source, blank=blank, study_id=study_id)
    click.echo(str(folder))
    if not quiet:
        kind = "a minimal blank study" if blank else f"a copy of {source or 'the bundled study'}"
        click.echo(f"Wrote {kind} to {folder}; check it with: trialkit study check {folder}", err=True)


@command.command(name="check")
@click.argument("directory", metavar="[DIR]", required=False, type=click.Path(file_okay=True, dir_okay=True))
@click.option("-f", "--format", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text (one line per problem) or JSON {study, problems}.")
@quiet_option
def check(directory: str | None, output_format: str, quiet: bool) -> None:
    """Lint a study definition: every problem at once, each with the file and the fix.

    DIR defaults to --study / TRIALKIT_STUDY, else the bundled study. Errors (the study cannot be
    used as it is) exit 1; notes (works, but probably not what was meant) are listed and exit 0.
    """
    from trialkit.study.lint import check_study

    study, problems = check_study(directory or chosen_study_path(None))
    errors = [p for p in problems if p.level == "error"]
    if output_format == "json":
        click.echo(json.dumps({
            "study": None if study is None else {"id": study.id, "protocol_version": study.protocol_version,
                                                 "path": str(study.path), "forms": list(study.forms),
                                                 "rules": len(study.rules)},
            "problems": [p.to_dict() for p in problems],
        }, indent=2, ensure_ascii=False))
    else:
        for problem in problems:
            click.echo(f"{problem.level:<6} {problem.message}")
        if not quiet:
            if study is None:
                click.echo(f"study check: the definition does not load ({len(errors)} error(s))", err=True)
            else:
                click.echo(f"study check: {study.id} {study.protocol_version} ({study.path}): {len(study.forms)} "
                           f"forms, {len(study.rules)} rules; {len(errors)} error(s), "
                           f"{len(problems) - len(errors)} note(s)", err=True)
    raise SystemExit(1 if errors else 0)
