"""``trialkit codes``: every finding code — the engine's catalogue and the study's rules."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from trialkit.commands.options import load, quiet_option, study_option

# The first line of the text listing: how an earlier `trialkit codes -o FILE` is recognised.
TEXT_HEADER = re.compile(r"^CODE +SEVERITY +CATEGORY +TITLE")


@click.command(name="codes")
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json", "md"]), default="text",
              show_default=True, help="text (a table), json (the catalogue as data) or md (docs/codes.md).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Write to FILE instead of stdout.")
@study_option
@quiet_option
def command(fmt: str, output: str | None, study_path: str | None, quiet: bool) -> None:
    """List every finding code: the engine's catalogue and the study's rules.

    Each engine code with its title, severity, category, what it means and what to do; then the
    study's own codes (its data checks and protocol deviations) with their titles, severity and
    protocol reference. -o replaces an existing file only when trialkit wrote it (exit code 2
    otherwise).
    """
    from trialkit.codes import CATALOGUE, catalogue, render_markdown, study_codes
    from trialkit.errors import TrialkitError

    study = load(study_path)
    if fmt == "json":
        text = json.dumps(catalogue(study), indent=2, ensure_ascii=False) + "\n"
    elif fmt == "md":
        text = render_markdown(study)
    else:
        rules = study_codes(study)
        width = max(24, *(len(c) for c in CATALOGUE), *(len(r["code"]) for r in rules))
        lines = [f"{'CODE':<{width}} {'SEVERITY':<8} {'CATEGORY':<14} TITLE"]
        lines += [f"{c.code:<{width}} {c.severity:<8} {c.category:<14} {c.title}" for c in CATALOGUE.values()]
        lines += ["", f"{study.id} {study.protocol_version}: the study's checks and deviations"]
        lines += [f"{r['code']:<{width}} {r['severity']:<8} {r['category']:<14} {r['title']}" for r in rules]
        text = "\n".join(lines) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    from trialkit.outputs import check_length, check_output_file

    check_length(output, "-o")
    check_output_file(output, kind=fmt, header=TEXT_HEADER)
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise TrialkitError(f"{output}: cannot write the codes ({exc.strerror or exc}); choose another -o") from exc
    if not quiet:
        click.echo(f"Wrote {output}", err=True)
