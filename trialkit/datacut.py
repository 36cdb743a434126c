"""The study-wide data cut: one date for every site, and the sites whose data stop before it.

Without a study-wide cut each upload is judged against the latest full date it holds, so a site that
stops sending data silently gets an earlier cut and its overdue visits are never flagged.
``trialkit cut DATE`` records one cut for the whole study in the workspace (an audit line,
``data-cut``, read back by :meth:`trialkit.ledger.Workspace.data_cut`); ``validate`` (run in a
workspace) and ``submit`` use it unless ``--data-cut`` is given, and the inferred per-upload cut
stays the fallback when none is set.

Setting a cut also reviews the sites whose current data stop before it (:func:`review`): each such
site's current data — form by form, re-imported from the archive as ``pool`` does — is validated
again against the new cut, so the study's visit rules flag the visits that fell due meanwhile.
What the review finds opens queries and enters the deviation log like a submission would, but it
resolves nothing: only a new upload from the site can show that a problem is gone. The review is
audited (``data-cut-review``) per site, attributed to the site's latest current submission.

Nothing here prints; ``progress(step, done, total)`` reports the work.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trialkit.errors import TrialkitError, UsageError


@dataclass(frozen=True)
class SiteReview:
    """The review of one site's current data against the cut."""

    site: str
    data_until: str | None  # the cut its current data was validated with (the latest date it held)
    forms: tuple[str, ...] = ()
    new_queries: tuple[str, ...] = ()
    reopened: tuple[str, ...] = ()
    new_deviations: tuple[str, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    skipped: str | None = None  # why the site could not be reviewed

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"site": self.site, "data_until": self.data_until, "forms": list(self.forms),
                "new_queries": list(self.new_queries), "reopened": list(self.reopened),
                "new_deviations": list(self.new_deviations), "counts": dict(self.counts), "skipped": self.skipped}


def check_cut(cut: dt.date, today: dt.date | None = None) -> dt.date:
    """A data cut may not be after today (UsageError): data cannot have been collected yet."""
    today = today or dt.date.today()
    if cut > today:
        raise UsageError(f"data cut {cut.isoformat()} is after today ({today.isoformat()}); a data cut is a date "
                         "up to which data were collected")
    return cut


def sites_to_review(workspace: Any, cut: dt.date) -> dict[str, str | None]:
    """``{site: the cut its current data were validated with}`` for every site whose current data
    stop before ``cut`` (or hold no date at all)."""
    pointers = workspace.current_forms()
    result: dict[str, str | None] = {}
    for site, forms in sorted(pointers.items()):
        cuts = [workspace.submission(i).data_cut for i in sorted(set(forms.values()))]
        known = [c for c in cuts if c]
        latest = max(known) if known else None
        if latest is None or dt.date.fromisoformat(latest[:10]) < cut:
            result[site] = latest
    return result


def review(workspace: Any, study: Any, cut: dt.date, *, operator: str | None = None,
           today: dt.date | None = None, sites: list[str] | None = None,
           progress: Callable[[str, int, int], None] | None = None) -> list[SiteReview]:
    """Validate again, against ``cut``, the current data of every site whose data stop before it
    (or of ``sites``), and record what that finds (see the module). Returns one review per site."""
    from trialkit.findings import Report
    from trialkit.importers.base import ImportResult
    from trialkit.validate import validate

    due = sites_to_review(workspace, cut)
    if sites is not None:
        due = {s: due.get(s) for s in sites if s in workspace.current_forms()}
    pointers = workspace.current_forms()
    reviews: list[SiteReview] = []
    for done, (site, until) in enumerate(sorted(due.items())):
        if progress:
            progress(f"reviewing site {site} against the data cut {cut.isoformat()}", done, len(due))
        forms: dict[str, Any] = {}
        findings = []
        problem = None
        for submission_id in sorted(set(pointers[site].values())):
            wanted = {f for f, i in pointers[site].items() if i == submission_id}
            try:
                imported = workspace.reimport(submission_id, study)
            except (TrialkitError, OSError) as exc:
                problem = f"submission {submission_id} could not be re-imported from the archive ({exc})"
                break
            for code in sorted(wanted):
                if code in imported.forms:
                    forms[code] = imported.forms[code]
            findings.extend(f for f in imported.report.findings if f.form is None or f.form in wanted)
        if problem is not None or not forms:
            reviews.append(SiteReview(site, until, skipped=problem or "no form of its current data could be read"))
            continue
        result = ImportResult(forms=forms, report=Report(findings=findings))
        report = validate(study, result, site=site, data_cut=cut, today=today)
        queries, deviations = workspace.record_review(site, report, sorted(forms), cut=cut, operator=operator)
        reviews.append(SiteReview(site, until, tuple(sorted(forms)), queries.new, queries.reopened, deviations.new,
                                  report.counts()))
    if progress:
        progress("done", len(due), len(due))
    return reviews
