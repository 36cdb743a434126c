"""What one upload changes against another, record by record and cell by cell.

:func:`diff_site` compares two sets of a site's data, form by form:

- ``a`` — a submission, or by default the site's current data (per form, which may come from
  several submissions);
- ``b`` — a submission, by default the site's latest one (typically the upload just held or
  rejected: what would it change?).

Records are matched by key (the form's key variables plus the occurrence number, as the ledger
recorded them at submit: :mod:`trialkit.records`). The counts of added, removed, changed and
unchanged records come from the ledger alone; the old and new value of every changed cell come from
re-importing the two submissions from the archive. With the site's current data as ``a``, only the
forms ``b`` holds are compared (the others would not change).

Example::

    >>> result = diff_site(open_workspace("ws"), load_study(), "01")  # doctest: +SKIP
    >>> result.forms["VS"]  # doctest: +SKIP
    {'added': 5, 'removed': 0, 'changed': 1, 'unchanged': 4}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trialkit.errors import TrialkitError, UsageError

DIFF_SCHEMA_VERSION = "1.0"
COLUMNS = ("form", "change", "key", "subject", "variable", "old", "new")


@dataclass
class Diff:
    """The comparison of two sets of one site's data (see the module docstring)."""

    site: str
    a: dict[str, Any]
    b: dict[str, Any]
    forms: dict[str, dict[str, int]] = field(default_factory=dict)
    changes: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON form (``trialkit diff -f json``)."""
        from trialkit import __version__

        return {"schema_version": DIFF_SCHEMA_VERSION, "trialkit_version": __version__, "site": self.site,
                "a": self.a, "b": self.b, "forms": self.forms, "changes": self.changes}

    def summary(self) -> str:
        """``DM 1 added, 0 removed, 1 changed; ...`` (``no differences`` when there are none)."""
        parts = [f"{form} {c['added']} added, {c['removed']} removed, {c['changed']} changed"
                 for form, c in self.forms.items() if c["added"] or c["removed"] or c["changed"]]
        return "; ".join(parts) or "no differences"


def _latest(workspace: Any, site: str) -> int:
    log = workspace.log(site)
    if not log:
        raise UsageError(f"site {site} has no submission yet; nothing to compare")
    return int(log[-1]["id"])


def _submission(workspace: Any, site: str, submission_id: int) -> Any:
    try:
        sub = workspace.submission(int(submission_id))
    except TrialkitError:
        raise UsageError(f"no submission {submission_id} in {workspace.path}; see `trialkit log --site {site}`") from None
    if sub.site != site:
        raise UsageError(f"submission {submission_id} is of site {sub.site}, not {site}; compare submissions of "
                         "one site")
    return sub


def _records(workspace: Any, study: Any, submission_id: int, form: str,
             cache: dict[int, Any]) -> dict[str, tuple[str, str | None]]:
    recorded = workspace.form_records(submission_id, form)
    if recorded is not None:
        return recorded
    summary = _summary_of(workspace, study, submission_id, cache).forms.get(form)
    return summary.by_key() if summary is not None else {}


def _imported(workspace: Any, study: Any, submission_id: int, cache: dict[int, Any]) -> Any:
    if submission_id not in cache:
        cache[submission_id] = workspace.reimport(submission_id, study)
    return cache[submission_id]


def _summary_of(workspace: Any, study: Any, submission_id: int, cache: dict[int, Any]) -> Any:
    from trialkit.records import submission_records

    return submission_records(_imported(workspace, study, submission_id, cache).forms, study)


def _cells(workspace: Any, study: Any, submission_id: int, form: str, cache: dict[int, Any]) -> dict[str, dict[str, Any]]:
    """``{key: {variable: canonical text}}`` of one form of a re-imported submission."""
    from trialkit.records import column_texts, form_records

    result = _imported(workspace, study, submission_id, cache)
    if form not in result.forms:
        return {}
    form_data = result.forms[form]
    keys = form_records(form_data, study.forms[form].keys).keys
    columns = list(form_data.data.columns)
    texts = {c: column_texts(form_data.data[c]) for c in columns}
    return {key: {c: texts[c][row] for c in columns} for row, key in enumerate(keys)}


def diff_site(workspace: Any, study: Any, site: str, a: int | None = None, b: int | None = None) -> Diff:
    """Compare ``a`` (default: the site's current data) with ``b`` (default: its latest submission)."""
    from trialkit.records import key_label

    site = workspace.check_site(site, study)
    b_sub = _submission(workspace, site, b if b is not None else _latest(workspace, site))
    if a is not None:
        a_sub = _submission(workspace, site, a)
        forms = sorted(set(a_sub.forms) | set(b_sub.forms))
        a_forms = dict.fromkeys(a_sub.forms, a_sub.id)
        a_info: dict[str, Any] = {"submission": a_sub.id, "status": a_sub.status, "forms": a_forms}
    else:
        current = workspace.current_forms(site).get(site, {})
        forms = sorted(b_sub.forms)
        a_forms = {f: current[f] for f in forms if f in current}
        a_info = {"submission": None, "current_data": True, "forms": a_forms}
    b_info = {"submission": b_sub.id, "status": b_sub.status, "forms": dict.fromkeys(b_sub.forms, b_sub.id)}
    result = Diff(site=site, a=a_info, b=b_info)
    cache: dict[int, Any] = {}
    for form in forms:
        old = _records(workspace, study, a_forms[form], form, cache) if form in a_forms else {}
        new = _records(workspace, study, b_sub.id, form, cache) if form in b_sub.forms else {}
        added = [k for k in new if k not in old]
        removed = [k for k in old if k not in new]
        changed = [k for k in new if k in old and old[k][0] != new[k][0]]
        result.forms[form] = {"added": len(added), "removed": len(removed), "changed": len(changed),
                              "unchanged": len(new) - len(added) - len(changed)}
        for key in removed:
            result.changes.append(_row(form, "removed", key_label(key), old[key][1]))
        for key in added:
            result.changes.append(_row(form, "added", key_label(key), new[key][1]))
        if changed:
            before = _cells(workspace, study, a_forms[form], form, cache)
            after = _cells(workspace, study, b_sub.id, form, cache)
            for key in changed:
                old_cells, new_cells = before.get(key, {}), after.get(key, {})
                for variable in [v for v in study.forms[form].variable_names if v in old_cells or v in new_cells]:
                    if old_cells.get(variable) != new_cells.get(variable):
                        result.changes.append(_row(form, "changed", key_label(key), new[key][1], variable,
                                                   old_cells.get(variable), new_cells.get(variable)))
    return result


def _row(form: str, change: str, key: str, subject: str | None, variable: str | None = None,
         old: str | None = None, new: str | None = None) -> dict[str, Any]:
    return dict(zip(COLUMNS, (form, change, key, subject, variable, old, new), strict=True))


# ------------------------------------------------------------------------------------------------
# Rendering


def render_text(diff: Diff) -> str:
    """The comparison for a person: counts per form, then one line per record or changed cell."""
    from trialkit.textsafe import printable

    if diff.a.get("current_data"):
        ids = sorted(set(diff.a["forms"].values()))
        left = "the site's current data" + (f" (submission {', '.join(f'#{i}' for i in ids)})" if ids else " (none)")
    else:
        left = f"submission #{diff.a['submission']} ({diff.a['status']})"
    lines = [f"site {diff.site}: {left} → submission #{diff.b['submission']} ({diff.b['status']})"]
    for form, counts in diff.forms.items():
        lines.append(f"{form}: {counts['added']} added, {counts['removed']} removed, {counts['changed']} changed, "
                     f"{counts['unchanged']} unchanged")
    if diff.changes:
        lines.append("")
    for row in diff.changes:
        line = f"{row['change']:<8} {row['form']}  {printable(row['key'])}"
        if row["change"] == "changed":
            line += (f"  {row['variable']}: {'∅' if row['old'] is None else printable(row['old'])} → "
                     f"{'∅' if row['new'] is None else printable(row['new'])}")
        lines.append(line)
    return "\n".join(lines) + "\n"


def render_csv(diff: Diff) -> str:
    """One row per added or removed record and per changed cell (formula-like text neutralised)."""
    import csv
    import io

    from trialkit.export import neutralise_formula

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in diff.changes:
        writer.writerow([neutralise_formula("" if row[c] is None else str(row[c])) for c in COLUMNS])
    return buffer.getvalue()


def write_xlsx(diff: Diff, path: Any) -> None:
    """A workbook: ``Summary`` (counts per form) and ``Changes`` (one row per record or cell)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    from trialkit.export import neutralise_formula

    book = Workbook()
    book.properties.creator = "trialkit"
    summary = book.active
    summary.title = "Summary"
    summary.append(["SITE", diff.site])
    summary.append(["A", render_text(diff).splitlines()[0]])
    summary.append([])
    summary.append(["FORM", "ADDED", "REMOVED", "CHANGED", "UNCHANGED"])
    for form, counts in diff.forms.items():
        summary.append([form, counts["added"], counts["removed"], counts["changed"], counts["unchanged"]])
    changes = book.create_sheet("Changes")
    changes.append([c.upper() for c in COLUMNS])
    for cell in changes[1]:
        cell.font = Font(bold=True)
    for row in diff.changes:
        changes.append([None if row[c] is None else neutralise_formula(str(row[c])) for c in COLUMNS])
    changes.freeze_panes = "A2"
    book.save(path)
