"""Pooling: one analysis-ready dataset of all sites, from the ledger's accepted submissions.

:func:`pool` takes the current accepted submission of every site (or the submissions of a named
freeze), re-imports each one from the read-only archive — so what is pooled is exactly what was
validated — stacks the forms across sites, derives the study's analysis datasets (its ``analysis``
plug-in, :mod:`trialkit.study.plugins`; a study without one pools its forms only) and writes everything with :func:`trialkit.export.write_output_set`: atomically (an interrupted pool
leaves the previous output complete), deterministically (the same inputs give byte-identical files)
and with a ``manifest.json`` naming every input (site, submission, file, sha256, the protocol version
it was validated against), the trialkit and study versions and each output's sha256.

Blinding: sites never upload the arm. It enters only through ``randlist`` (the unblinded
randomization list, ``RANDNO`` → ``ARM``), and the request is recorded in the audit log with the
operator; without it no output holds an arm.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from trialkit import __version__
from trialkit.errors import TrialkitError, UsageError
from trialkit.findings import Category
from trialkit.importers.base import FormData
from trialkit.study import Study

DEFAULT_FORMATS = ("parquet", "csv")


def read_randlist(path: str | Path, arms: Iterable[str]) -> pd.DataFrame:
    """Read the unblinded randomization list: a CSV with columns ``RANDNO`` and ``ARM`` (one of ``arms``)."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the randomization list ({exc}); give a CSV with RANDNO,ARM") from exc
    frame.columns = [str(c).strip().upper() for c in frame.columns]
    if not {"RANDNO", "ARM"} <= set(frame.columns):
        raise UsageError(f"{path}: the randomization list needs columns RANDNO and ARM (found {', '.join(frame.columns)})")
    frame = frame[["RANDNO", "ARM"]].apply(lambda col: col.str.strip())
    frame["ARM"] = frame["ARM"].str.upper()
    arms = [str(a).upper() for a in arms]
    if not arms:
        raise UsageError(f"{path}: the study declares no arms ([[arms]] in study.toml); add them to unblind")
    bad = sorted(set(frame["ARM"]) - set(arms))
    if bad:
        raise UsageError(f"{path}: ARM must be {' or '.join(arms)}; found {', '.join(bad)}")
    duplicated = frame["RANDNO"][frame["RANDNO"].duplicated()].tolist()
    if duplicated:
        raise UsageError(f"{path}: RANDNO listed more than once: {', '.join(duplicated[:10])}")
    return frame


def form_labels(study: Study, code: str, columns: Iterable[str]) -> dict[str, str]:
    """Variable labels of a form's columns (from the study definition; the 40-byte export labels)."""
    form = study.form(code)
    names = set(form.variable_names)
    return {c: form.variable(c).export_label for c in columns if c in names}


def form_value_labels(study: Study, code: str, columns: Iterable[str]) -> dict[str, dict[str, str]]:
    """Value labels (codelist decodes) of a form's coded columns."""
    form = study.form(code)
    result: dict[str, dict[str, str]] = {}
    for column in columns:
        if column not in form.variable_names:
            continue
        variable = form.variable(column)
        if variable.codelist and variable.codelist in study.codelists:
            codes = study.codelists[variable.codelist].values
            if any(code != decode for code, decode in codes):
                result[column] = {code: decode for code, decode in codes}
    return result


def import_submission(workspace: Any, submission: Any, study: Study) -> dict[str, FormData]:
    """Re-import one archived submission (its files under their original names)."""
    from trialkit.importers.reader import import_files

    with tempfile.TemporaryDirectory(prefix="trialkit-pool-") as scratch:
        paths = []
        for index, item in enumerate(submission.files):
            source = workspace.archive_path(item.sha256)
            name = Path(item.original_name).name or f"file{index}"
            folder = Path(scratch) / str(index)
            folder.mkdir()
            target = folder / name
            shutil.copyfile(source, target)
            paths.append(target)
        result = import_files(paths, study, site=submission.site)
        # Lineage names the archived upload, not the scratch copy.
        originals = {str(p): f"submission {submission.id}: {p.name}" for p in paths}
        for form_data in result.forms.values():
            form_data.lineage["FILE"] = form_data.lineage["FILE"].map(lambda f: originals.get(str(f), f))
        return dict(result.forms)


def stack_forms(per_site: Mapping[str, Mapping[str, FormData]]) -> dict[str, pd.DataFrame]:
    """Stack each form's typed data across sites (site order), index 0..n-1."""
    by_form: dict[str, list[pd.DataFrame]] = {}
    for site in sorted(per_site):
        for code, form_data in per_site[site].items():
            by_form.setdefault(code, []).append(form_data.data)
    return {code: pd.concat(frames, ignore_index=True) for code, frames in by_form.items()}


def major_deviations(submissions: Mapping[str, Any]) -> pd.DataFrame:
    """Subjects with protocol deviations, from the recorded reports: ``SUBJID``, ``CODE``, ``class``."""
    rows = []
    for submission in submissions.values():
        for finding in submission.report.findings:
            if finding.category == Category.DEVIATION and finding.subject:
                rows.append({"SUBJID": finding.subject, "CODE": finding.code, "class": finding.deviation_class})
    return pd.DataFrame(rows, columns=["SUBJID", "CODE", "class"])


def pool(
    workspace: Any,
    study: Study,
    out_dir: str | Path,
    *,
    formats: Iterable[str] = DEFAULT_FORMATS,
    randlist: str | Path | None = None,
    freeze: str | None = None,
    operator: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Build and write the pooled forms and analysis datasets; returns the manifest.

    The unblinding (``randlist``) and the pool itself are recorded in the workspace's audit log.
    ``progress(step, done, total)`` is called as the work goes on (the CLI shows a bar).
    """
    submissions = workspace.frozen_submissions(freeze) if freeze else workspace.current_submissions()
    if not submissions:
        raise TrialkitError(
            f"{workspace.path}: no site has accepted data to pool yet; submit uploads first (trialkit submit)"
        )
    arms = read_randlist(randlist, study.arm_codes) if randlist else None
    total = len(submissions) + 2
    per_site = {}
    for done, (site, sub) in enumerate(submissions.items()):
        if progress:
            progress(f"re-importing site {site} (submission {sub.id})", done, total)
        per_site[site] = import_submission(workspace, sub, study)
    forms = stack_forms(per_site)
    if progress:
        progress("deriving the analysis datasets", total - 2, total)

    from trialkit.export import make_dataset, write_output_set
    from trialkit.study.plugins import derive_datasets

    analysis = derive_datasets(study, forms, randlist=arms, deviations=major_deviations(submissions))
    datasets: dict[str, Any] = {}
    for code in study.forms:
        if code in forms:
            frame = forms[code]
            datasets[code.lower()] = make_dataset(
                frame,
                labels=form_labels(study, code, frame.columns),
                value_labels=form_value_labels(study, code, frame.columns),
                dataset_label=study.form(code).export_label,
            )
    for name, frame in analysis.items():
        datasets[name.lower()] = make_dataset(frame, dataset_label=frame.attrs.get("dataset_label") or name)

    inputs = [
        {
            "site": site,
            "submission": sub.id,
            "status": sub.status,
            "submitted_at": sub.submitted_at,
            "protocol_version": sub.study_version,
            "files": [{"name": f.original_name, "sha256": f.sha256, "size": f.size} for f in sub.files],
        }
        for site, sub in sorted(submissions.items())
    ]
    extra = {
        "trialkit_version": __version__,
        "study": {"id": study.id, "protocol_version": study.protocol_version, "schema_hash": study.schema_hash,
                  "definition_hash": study.definition_hash,
                  # every protocol version the pooled submissions were validated against
                  "protocol_versions": sorted({str(sub.study_version) for sub in submissions.values()
                                               if sub.study_version})},
        "inputs": inputs,
        "freeze": freeze,
        "unblinded": arms is not None,
    }
    if arms is not None:
        workspace.record_event(
            "unblind", operator=operator, detail={"randlist": str(randlist), "subjects": int(len(arms)), "out": str(out_dir)}
        )
    if progress:
        progress(f"writing {', '.join(formats)}", total - 1, total)
    manifest = write_output_set(datasets, out_dir, formats, extra=extra)
    if progress:
        progress("done", total, total)
    workspace.record_event(
        "pool",
        operator=operator,
        detail={"out": str(out_dir), "freeze": freeze, "unblinded": arms is not None,
                "submissions": {site: sub.id for site, sub in submissions.items()}},
    )
    return manifest
