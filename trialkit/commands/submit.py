"""``trialkit submit``: import, validate and record a site's upload in the ledger."""

from __future__ import annotations

import json
from datetime import datetime

import click

from trialkit.commands.options import load_with_workspace, quiet_option, study_option
from trialkit.commands.workspace_options import operator_option, site_id, workspace_option

EXIT_BY_STATUS = {"accepted": 0, "accepted-with-warnings": 0, "held": 1, "rejected": 1}


@click.command(name="submit")
@click.argument("files", metavar="FILE...", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False))
@click.option("--site", required=True, metavar="SS", help="The site whose upload this is.")
@click.option("--note", default=None, metavar="TEXT", help="A note kept with the submission.")
@operator_option
@click.option("--accept-warnings", is_flag=True,
              help="Acknowledge the warnings: a submission with warnings (and no errors) becomes the "
              "site's current data. Without it such a submission is held.")
@click.option("--data-cut", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Data cut-off date YYYY-MM-DD (default: the latest full date in the upload).")
@click.option("-f", "--format", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Result on stdout: a short text or the submission as JSON.")
@workspace_option
@study_option
@quiet_option
def command(files: tuple[str, ...], site: str, note: str | None, operator: str | None,
            accept_warnings: bool, data_cut: datetime | None, output_format: str,
            workspace: str | None, study_path: str | None, quiet: bool) -> None:
    """Import, validate and record a site's upload in the ledger.

    Every FILE is archived unchanged. Errors make the submission rejected; warnings hold it until
    they are acknowledged with --accept-warnings; a clean or acknowledged submission becomes the
    site's current data. Protocol deviations are queries for the site but do not block acceptance.
    An upload holding direct identifiers is refused before anything is archived. The site's queries are updated: new, still open or resolved. The same
    files submitted again are recognised and nothing is recorded.

    Exit code 0 accepted, 1 rejected or held, 2 usage error, 3 could not complete.
    """
    from trialkit.commands.validate import finding_line
    from trialkit.importers.reader import import_files
    from trialkit.ledger import PrivacyRefused
    from trialkit.validate import validate

    ws, study = load_with_workspace(workspace, study_path, operator)
    site = site_id(study, site)
    imported = import_files(list(files), study, site=site)
    report = validate(study, imported, site=site, data_cut=data_cut.date() if data_cut else None)
    stamps = sorted({str(f["stamp"]) for f in imported.files if f.get("stamp")})
    try:
        submission = ws.submit(list(files), site, report, operator=operator, note=note,
                               accept_warnings=accept_warnings, study=study,
                               template_stamp="; ".join(stamps) or None)
    except PrivacyRefused as refused:
        for finding in report.findings:
            if finding.category.value == "privacy":
                click.echo(finding_line(finding))
        click.echo(f"Error: {refused}", err=True)
        raise SystemExit(1) from None

    changes = submission.queries
    if output_format == "json":
        data = submission.to_dict()
        data.update(duplicate=submission.duplicate, action=submission.action, queries=changes.to_dict())
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        counts = submission.counts
        click.echo(f"submission {submission.id}: site {site}, {submission.status}"
                   + (" (duplicate: already submitted, nothing recorded)" if submission.duplicate else ""))
        click.echo(f"findings: {counts['error']} error(s), {counts['warning']} warning(s), "
                   f"{counts['info']} info")
        if submission.action == "recorded":
            click.echo(f"queries: {len(changes.new)} new, {len(changes.still_open)} still open, "
                       f"{len(changes.resolved)} resolved, {len(changes.reopened)} reopened")
    if not quiet:
        click.echo(_summary(submission, ws.current_submissions().get(site)), err=True)
    raise SystemExit(EXIT_BY_STATUS[submission.status])


def _summary(submission, current) -> str:
    site = submission.site
    if submission.duplicate:
        return (f"These files were already submitted for site {site} as submission {submission.id} "
                f"({submission.status}); nothing was recorded.")
    if submission.action == "warnings-accepted":
        return (f"Warnings of held submission {submission.id} acknowledged; it is now site {site}'s "
                "current data.")
    if submission.status in ("accepted", "accepted-with-warnings"):
        return f"Submission {submission.id} recorded and is now site {site}'s current data."
    now = f"submission {current.id}" if current is not None else "none"
    if submission.status == "held":
        return (f"Submission {submission.id} is held: {submission.counts['warning']} warning(s) not "
                f"acknowledged (site {site}'s current data stays {now}). Review them, then submit the "
                "same files again with --accept-warnings, or send the site its queries.")
    return (f"Submission {submission.id} rejected: {submission.counts['error']} error(s) (site {site}'s "
            f"current data stays {now}). Send the site its queries: "
            f"trialkit queries --site {site} -o queries_site{site}.xlsx")
