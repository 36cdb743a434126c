"""``trialkit log``: the ledger's submissions per site and the audit trail."""

from __future__ import annotations

import json
from typing import Any

import click

from trialkit.commands.options import load_with_workspace, study_option
from trialkit.commands.workspace_options import site_id, workspace_option


@click.command(name="log")
@click.option("--site", default=None, metavar="SS", help="Only this site's submissions and audit lines.")
@click.option("-f", "--format", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text, or JSON {\"submissions\": [...], \"audit\": [...]}.")
@workspace_option
@study_option
def command(site: str | None, output_format: str, workspace: str | None, study_path: str | None) -> None:
    """Show submissions per site and the audit trail.

    Each submission with its time, operator, status, counts of findings and files; a submission
    that is the site's current data is marked with * (with + when only some of its forms are
    current, which are named). Then every audit line, oldest first. Names and notes are shown with
    control characters escaped (\n); -f json gives them exactly as recorded.
    """
    from trialkit.ledger import open_workspace

    ws = open_workspace(workspace)
    if site is not None:
        ws, study = load_with_workspace(workspace, study_path)
        site = site_id(study, site)
    submissions = ws.log(site)
    audit = ws.audit(site)
    if output_format == "json":
        click.echo(json.dumps({"submissions": submissions, "audit": audit}, indent=2, ensure_ascii=False))
        return
    for line in render_text(submissions, audit):
        click.echo(line)


def render_text(submissions: list[dict[str, Any]], audit: list[dict[str, Any]]) -> list[str]:
    """The log as lines of text: submissions grouped by site, then the audit trail.

    Every text that came from a person (file names, operators, notes) is shown with its control
    characters escaped (:func:`trialkit.textsafe.printable`), so a newline in a file name cannot
    start a line that looks like an audit line. A submission that is the site's current data for
    some of its forms only is marked ``+`` and names them.
    """
    from trialkit.textsafe import printable

    lines: list[str] = []
    sites = sorted({s["site"] for s in submissions})
    if not sites:
        lines.append("No submissions.")
    for site in sites:
        lines.append(f"Site {printable(site)}")
        for sub in (s for s in submissions if s["site"] == site):
            counts = sub["counts"]
            current = sub.get("current_forms") or []
            whole = sub["current"] and set(current) >= set(sub.get("forms") or {})
            mark = "*" if whole else "+" if sub["current"] else " "
            names = ", ".join(printable(f["original_name"]) for f in sub["files"])
            lines.append(
                f" {mark} #{sub['id']:<4} {sub['submitted_at']}  {sub['status']:<22} "
                f"E{counts['error']} W{counts['warning']} I{counts['info']}  {printable(sub['operator'])}  {names}"
                + (f"  — {printable(sub['note'])}" if sub["note"] else "")
                + (f"  [current for {', '.join(current)}]" if sub["current"] and not whole else "")
            )
    lines.append("")
    lines.append("Audit trail")
    for entry in audit:
        where = f" site {printable(entry['site'])}" if entry["site"] else ""
        which = f" submission {entry['submission_id']}" if entry["submission_id"] else ""
        detail = entry.get("detail") or {}
        why = f" — {printable(detail['reason'])}" if isinstance(detail, dict) and detail.get("reason") else ""
        lines.append(f"  {entry['seq']:>4}  {printable(entry['at'])}  {printable(entry['operator'])}  "
                     f"{printable(entry['action'])}{where}{which}{why}")
    return lines
