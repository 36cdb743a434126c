"""``trialkit submit``: import, validate and record a site's upload in the ledger."""

from __future__ import annotations

import json
from datetime import datetime

import click

from trialkit.commands.options import (
    load_with_workspace,
    mapping_option,
    mappings_for,
    quiet_option,
    study_option,
)
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
@click.option("--accept-removals", is_flag=True,
              help="Accept that the upload removes records (rows, subjects, visits) from the site's "
              "current data of the forms it holds; recorded with the operator. Without it such a "
              "submission is held.")
@click.option("--data-cut", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Data cut-off date YYYY-MM-DD (default: the workspace's study-wide cut, `trialkit cut`; "
              "else the latest full date in the upload).")
@click.option("-f", "--format", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Result on stdout: a short text or the submission as JSON.")
@mapping_option
@workspace_option
@study_option
@quiet_option
def command(files: tuple[str, ...], site: str, note: str | None, operator: str | None,
            accept_warnings: bool, accept_removals: bool, data_cut: datetime | None, output_format: str,
            mapping: str | None, workspace: str | None, study_path: str | None, quiet: bool) -> None:
    """Import, validate and record a site's upload in the ledger.

    Every FILE is archived unchanged, and the submission gets one status:

    \b
    rejected  any error that is not a protocol deviation, or no form of the study
              recognised: it never becomes the site's data; send the site its queries.
    held      warnings not acknowledged (--accept-warnings), or records it would remove
              from the site's current data (--accept-removals): submit the same files
              again with the flag to accept it.
    accepted  (or accepted-with-warnings, when acknowledged) the site's current data for
              the forms it holds; the site's other forms stay as they are.

    Protocol deviations never block: they are facts about how the trial was run, not mistakes in
    the upload, so correct data that shows a deviation is accepted; each deviation enters the
    deviation log (trialkit deviations) and is a query for the site. The output says which rule
    decided the status. An upload holding direct identifiers, records of another site, or given as
    a link, folder, device or pipe is refused before anything is archived (all records of another
    site: "did you mean --site 03?", exit code 2). The data cut is --data-cut, else the study-wide
    cut (trialkit cut), else the latest full date in the upload. The site's queries are updated
    (new, still open, resolved, reopened) and the last line sums up what the upload changes. The
    same files submitted again are recognised and nothing is recorded.

    Exit code 0 accepted, 1 rejected or held, 2 usage error, 3 could not complete.
    """
    from trialkit.commands.validate import finding_line
    from trialkit.importers.reader import import_files
    from trialkit.ledger import PrivacyRefused, SiteMismatch
    from trialkit.records import submission_records
    from trialkit.safefiles import not_regular, refusal_message
    from trialkit.validate import validate

    for path in files:  # before anything is read: a link to /etc/shadow is not an upload
        reason = not_regular(path)
        if reason is not None:
            raise click.UsageError(refusal_message(path, reason))
    ws, study = load_with_workspace(workspace, study_path, operator)
    site = site_id(study, site)
    specs = mappings_for(study, mapping, ws)
    imported = import_files(list(files), study, site=site, mapping=mapping, mappings=specs)
    study_cut = None if data_cut else ws.data_cut_date()
    cut = data_cut.date() if data_cut else study_cut
    report = validate(study, imported, site=site, data_cut=cut)
    cut_source = "--data-cut" if data_cut else ("study-wide: trialkit cut" if study_cut else "latest date in the upload")
    stamps = sorted({str(f["stamp"]) for f in imported.files if f.get("stamp")})
    try:
        submission = ws.submit(list(files), site, report, records=submission_records(imported.forms, study),
                               operator=operator, note=note, accept_warnings=accept_warnings,
                               accept_removals=accept_removals, study=study,
                               template_stamp="; ".join(stamps) or None)
    except SiteMismatch as refused:
        for finding in report.findings:
            if finding.code == "SITE-MISMATCH":
                click.echo(finding_line(finding))
        raise click.UsageError(str(refused)) from None
    except PrivacyRefused as refused:
        for finding in report.findings:
            if finding.category.value == "privacy":
                click.echo(finding_line(finding))
        click.echo(f"Error: {refused}", err=True)
        raise SystemExit(1) from None

    changes = submission.queries
    why = status_reason(submission)
    if output_format == "json":
        data = submission.to_dict()
        data.update(duplicate=submission.duplicate, action=submission.action, queries=changes.to_dict(),
                    deviations=submission.deviations.to_dict(), changes=submission.changes, status_reason=why,
                    data_cut_source=cut_source if submission.data_cut else None)
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        counts = submission.counts
        click.echo(f"submission {submission.id}: site {site}, {submission.status}"
                   + (" (duplicate: already submitted, nothing recorded)" if submission.duplicate else ""))
        click.echo(f"why: {why}")
        click.echo(f"findings: {counts['error']} error(s), {counts['warning']} warning(s), "
                   f"{counts['info']} info"
                   + (f"; data cut {submission.data_cut} ({cut_source})" if submission.data_cut else ""))
        if submission.action == "recorded":
            click.echo(f"queries: {len(changes.new)} new, {len(changes.still_open)} still open, "
                       f"{len(changes.resolved)} resolved, {len(changes.reopened)} reopened"
                       + (f", {len(changes.kept_closed)} closed (seen again unchanged)" if changes.kept_closed else ""))
            dev = submission.deviations
            if dev.new or dev.seen or dev.resolved or dev.reopened:
                click.echo(f"deviations: {len(dev.new)} new, {len(dev.seen)} seen again, {len(dev.resolved)} "
                           f"resolved, {len(dev.reopened)} detected again (trialkit deviations --site {site})")
            click.echo(changes_line(submission.changes))
        for finding in submission.removals if submission.status == "held" else ():
            click.echo(finding_line(finding))
    if not quiet:
        click.echo(_summary(submission, ws.current_forms(site).get(site, {})), err=True)
    raise SystemExit(EXIT_BY_STATUS[submission.status])


def status_reason(submission) -> str:
    """Which status rule decided the submission's status, in words (the counts that decided it)."""
    from trialkit.ledger import blocking_counts

    report = submission.report
    blocking = blocking_counts(report)
    deviations = [f for f in report.findings if f.category.value == "deviation" and f.severity.value != "info"]
    no_form = any(f.code in ("NO-FORM", "LEDGER-NO-FORM") for f in report.findings)
    removals = submission.removals
    aside = (f"; its {len(deviations)} protocol deviation(s) do not block (facts of the trial, not mistakes in the "
             "upload: they go to the deviation log and the queries)" if deviations else "")
    if submission.status == "rejected":
        if no_form:
            return "rejected: no form of the study was recognised, so nothing can become the site's data"
        codes = sorted({f.code for f in report.findings if f.severity.value == "error"
                        and f.category.value != "deviation"})
        return (f"rejected: {blocking['error']} error(s) that are not protocol deviations "
                f"({', '.join(codes[:6])}{' …' if len(codes) > 6 else ''}) block acceptance{aside}")
    if submission.status == "held":
        reasons = []
        if blocking["warning"]:
            reasons.append(f"{blocking['warning']} warning(s) not acknowledged (--accept-warnings)")
        if removals:
            reasons.append("records it would remove from the site's current data (--accept-removals)")
        return "held: " + "; ".join(reasons) + aside
    if submission.status == "accepted-with-warnings":
        what = []
        if blocking["warning"]:
            what.append(f"{blocking['warning']} warning(s)")
        if removals:
            what.append("removed records")
        return (f"accepted with {' and '.join(what) or 'warnings'} acknowledged by {submission.acknowledged_by}"
                + aside)
    return "accepted: no error or warning that blocks" + aside


def changes_line(changes: dict) -> str:
    """``changes: DM 1 added, 0 removed, 0 changed; VS ...`` — what an upload changes per form."""
    if not changes:
        return "changes: none (no form recognised)"
    parts = []
    for form, change in sorted(changes.items()):
        if change.get("removed") is None:
            parts.append(f"{form} not compared (current data recorded without record keys)")
        else:
            parts.append(f"{form} {change['added']} added, {change['removed']} removed, {change['changed']} changed")
    return "changes: " + "; ".join(parts)


def _summary(submission, current: dict) -> str:
    site = submission.site
    removals = submission.removals
    if submission.duplicate:
        hint = ""
        if submission.status == "held":
            hint = " It is still held: re-submit the same files with " + _flags_needed(submission) + " to accept it."
        return (f"These files were already submitted for site {site} as submission {submission.id} "
                f"({submission.status}); nothing was recorded.{hint}")
    if submission.action in ("warnings-accepted", "removals-accepted"):
        what = "removals and warnings" if removals else "warnings"
        return (f"The {what} of held submission {submission.id} were accepted; it is now site {site}'s "
                f"current data for {', '.join(submission.current_forms)}.")
    if submission.status in ("accepted", "accepted-with-warnings"):
        return (f"Submission {submission.id} recorded and is now site {site}'s current data for "
                f"{', '.join(submission.current_forms)}.")
    now = _current_text(current)
    if submission.status == "held":
        reasons = []
        warnings = _holding_warnings(submission)
        if warnings:
            reasons.append(f"{warnings} warning(s) not acknowledged")
        if removals:
            reasons.append("it removes records from the site's current data of "
                           + ", ".join(f"{f.form} ({f.value})" for f in removals))
        return (f"Submission {submission.id} is held: {'; '.join(reasons)} (site {site}'s current data "
                f"stays {now}). Review them, then submit the same files again with "
                f"{_flags_needed(submission)}, or send the site its queries.")
    return (f"Submission {submission.id} rejected: {_blocking_errors(submission)} blocking error(s) (site {site}'s "
            f"current data stays {now}). Send the site its queries: "
            f"trialkit queries --site {site} -o queries_site{site}.xlsx")


def _flags_needed(submission) -> str:
    removals = submission.removals
    flags = []
    if _holding_warnings(submission):
        flags.append("--accept-warnings")
    if removals:
        flags.append("--accept-removals")
    return " ".join(flags) or "--accept-warnings"


def _blocking_errors(submission) -> int:
    from trialkit.ledger import blocking_counts

    return blocking_counts(submission.report)["error"] or submission.counts["error"]


def _holding_warnings(submission) -> int:
    from trialkit.ledger import blocking_counts

    return blocking_counts(submission.report)["warning"]


def _current_text(current: dict) -> str:
    if not current:
        return "none"
    ids = sorted(set(current.values()))
    return ", ".join(f"submission {i}" for i in ids)
