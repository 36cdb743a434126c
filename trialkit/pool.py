"""Pooling: one analysis-ready dataset of all sites, from the ledger's accepted data.

:func:`pool` takes every site's current data form by form (or the data of a named freeze) — a site's
forms may come from different submissions — and re-imports each submission from the read-only
archive, so that what is pooled is exactly what was validated. It is all or nothing:

1. the workspace is verified first (:func:`trialkit.verify.verify`: archive hashes, the audit
   chain, every pointer and freeze against the audit log); any problem refuses the pool;
2. every re-import must come back without an error finding and with exactly the records recorded
   when the submission was accepted (row count, record keys and content hashes): otherwise the pool
   stops naming site, submission, form and file;
3. with ``randlist`` (unblinding), the list must match the randomisations record for record and
   name only the study's arms (:func:`check_randomisation`);

and only then are the forms stacked, their missing-value reasons gathered into the ``reasons``
dataset (:mod:`trialkit.reasons`), the study's analysis datasets derived (its ``analysis``
plug-in, :mod:`trialkit.study.plugins`; a study without one pools its forms only) and everything
written with :func:`trialkit.export.write_output_set`, with ``define.xml`` (:mod:`trialkit.define`): atomically (an interrupted pool leaves the
previous output complete; the leftovers of a killed run are removed by the next one),
deterministically (the same inputs give byte-identical files) and with a ``manifest.json`` naming
every input per site and form (submission, rows, files, sha256, the protocol version it was
validated against), the trialkit and study versions (with every protocol version of the pooled
submissions) and each output's sha256.

Blinding: sites never upload the arm. It enters only through ``randlist`` (the unblinded
randomization list, ``RANDNO`` → ``ARM``), whose output must lie outside the workspace (so that no
staged or finished file with an arm is ever inside it), and the request is recorded in the audit log
with the operator; without it no output holds an arm.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from trialkit import __version__
from trialkit.errors import TrialkitError, UsageError
from trialkit.findings import Category, Severity
from trialkit.importers.base import FormData
from trialkit.study import Study

DEFAULT_FORMATS = ("parquet", "csv")
RANDOMISATION_VARIABLE = "RANDNO"
SUBJECT_VARIABLE = "SUBJID"
_SHOWN = 10  # mismatches named in a message before "and N more"


class PoolRefused(TrialkitError):
    """The pool cannot be built faithfully (integrity problem, re-import differs): nothing written."""


# ------------------------------------------------------------------------------------------------
# The randomisation list


def read_randlist(path: str | Path, arms: Iterable[str], *, study_id: str = "the study") -> pd.DataFrame:
    """Read the unblinded randomization list: a CSV with columns ``RANDNO`` and ``ARM``.

    ``ARM`` must be one of ``arms`` (the study's arm codes, ``[[arms]]`` in study.toml,
    :attr:`Study.arm_codes`) and every ``RANDNO`` listed once; UsageError names what is wrong.
    """
    path = Path(path)
    arms = [str(a).strip().upper() for a in arms]
    if not arms:
        raise UsageError(f"{study_id} declares no arms ([[arms]] with code and label in study.toml); "
                         "the randomization list cannot be checked, so it is not used")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the randomization list ({exc}); give a CSV with RANDNO,ARM") from exc
    frame.columns = [str(c).strip().upper() for c in frame.columns]
    if not {"RANDNO", "ARM"} <= set(frame.columns):
        raise UsageError(f"{path}: the randomization list needs columns RANDNO and ARM (found {', '.join(frame.columns)})")
    frame = frame[["RANDNO", "ARM"]].apply(lambda col: col.str.strip())
    frame["ARM"] = frame["ARM"].str.upper()
    bad = sorted(set(frame["ARM"]) - set(arms))
    if bad:
        raise UsageError(f"{path}: {', '.join(bad)} is not an arm of {study_id} (arms: {', '.join(arms)})")
    duplicated = sorted(set(frame["RANDNO"][frame["RANDNO"].duplicated()]))
    if duplicated:
        raise UsageError(f"{path}: RANDNO listed more than once: {', '.join(duplicated[:_SHOWN])}")
    return frame


def check_randomisation(randlist: pd.DataFrame, forms: Mapping[str, pd.DataFrame], study: Study) -> list[str]:
    """Every way the list and the randomisations disagree (empty when they match exactly).

    The randomisations are the records with a ``RANDNO`` in any form that has that variable. Each
    randomised subject must get exactly one arm (one randomisation number, listed), and each list
    entry must be some subject's randomisation.
    """
    frames = [frame for code, frame in forms.items()
              if RANDOMISATION_VARIABLE in frame.columns and SUBJECT_VARIABLE in frame.columns]
    if not frames:
        return [f"no form holds {RANDOMISATION_VARIABLE}: no subject is randomised in the pooled data"]
    rand = pd.concat([f[[SUBJECT_VARIABLE, RANDOMISATION_VARIABLE]] for f in frames], ignore_index=True)
    rand = rand.dropna(subset=[RANDOMISATION_VARIABLE]).astype(str)
    rand = rand[rand[RANDOMISATION_VARIABLE].str.strip() != ""].drop_duplicates()
    listed = set(randlist["RANDNO"])
    problems: list[str] = []
    several = rand.groupby(SUBJECT_VARIABLE)[RANDOMISATION_VARIABLE].agg(lambda s: sorted(set(s)))
    for subject, numbers in several.items():
        if len(numbers) > 1:
            problems.append(f"{subject} has {len(numbers)} randomisation numbers ({', '.join(numbers)})")
    missing = [f"{s} ({n}) has no arm in the list" for s, n in
               rand[~rand[RANDOMISATION_VARIABLE].isin(listed)].sort_values(SUBJECT_VARIABLE).itertuples(index=False)]
    unmatched = [f"{n} matches no randomisation" for n in sorted(listed - set(rand[RANDOMISATION_VARIABLE]))]
    for group in (missing, unmatched):
        problems.extend(group[:_SHOWN])
        if len(group) > _SHOWN:
            problems.append(f"and {len(group) - _SHOWN} more like it")
    return problems


# ------------------------------------------------------------------------------------------------
# Labels


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


def study_info(study: Study) -> Any:
    """What define.xml and Dataset-JSON say about the study (:class:`trialkit.metadata.StudyInfo`)."""
    from trialkit.metadata import StudyInfo

    return StudyInfo(oid=study.id, name=study.id, description=study.title,
                     protocol_name=f"{study.id} protocol version {study.protocol_version}",
                     metadata_version=str(study.protocol_version), source_version=__version__)


# ------------------------------------------------------------------------------------------------
# Re-importing the current data


def import_submission(workspace: Any, submission: Any, study: Study) -> dict[str, FormData]:
    """Re-import one archived submission (its files under their original names): its forms.

    Lineage names the archived upload (``submission N: NAME``), not the scratch copy; see
    :meth:`trialkit.ledger.Workspace.reimport` for the whole result with its findings.
    """
    return dict(workspace.reimport(submission, study).forms)


def _file_names(form_data: FormData) -> list[str]:
    """The upload files a form's records came from (lineage ``submission N: NAME`` → ``NAME``)."""
    names = {str(f).split(": ", 1)[1] if ": " in str(f) else Path(str(f)).name
             for f in form_data.lineage["FILE"].dropna().unique()}
    return sorted(names)


def _check_forms(workspace: Any, study: Study, sub: Any, uses: list[tuple[str, str]],
                 forms: Mapping[str, FormData]) -> str | None:
    """Why a submission's re-imported ``forms`` are not what was accepted (None when they are): a
    form it was accepted with is missing, or its row count or a record (key and content hash)
    differs from what the ledger recorded at acceptance."""
    from trialkit.records import form_records, key_label

    for site, form in uses:
        if form not in forms:
            return (f"site {site}, submission {sub.id}, form {form} "
                    f"({', '.join(f.original_name for f in sub.files)}): the re-import from the archive "
                    f"holds no {form} although it was accepted with it (the study definition changed?); "
                    "the previous pooled output is unchanged")
        form_data = forms[form]
        files = ", ".join(_file_names(form_data)) or "its files"
        accepted = sub.forms.get(form, {}).get("rows")
        if accepted is not None and accepted != len(form_data):
            return (f"site {site}, submission {sub.id}, form {form} ({files}): {len(form_data)} rows "
                    f"re-imported, {accepted} accepted; the previous pooled output is unchanged")
        recorded = workspace.form_records(sub.id, form)
        if recorded is not None:
            again = form_records(form_data, study.forms[form].keys).by_key()
            differ = [k for k, (digest, _) in recorded.items() if again.get(k, (None,))[0] != digest]
            differ += [k for k in again if k not in recorded]
            if differ:
                return (f"site {site}, submission {sub.id}, form {form} ({files}): {len(differ)} record(s) "
                        f"re-imported differ from what was accepted (first {key_label(differ[0])}); the "
                        "study definition or the importer changed since. The previous pooled output is "
                        "unchanged")
    return None


def _reimported_forms(workspace: Any, study: Study, sub: Any, uses: list[tuple[str, str]], *,
                      cache: bool) -> tuple[dict[str, FormData], bool]:
    """One submission's checked forms, and whether they came from the re-import cache.

    A cache entry (:mod:`trialkit.reimportcache`) is used only when it verifies and passes the same
    checks as a fresh re-import; otherwise it is dropped and the submission re-imported from the
    archive (whose checked forms are then stored for the next pool).
    """
    from trialkit import reimportcache

    key = None
    if cache:
        key = reimportcache.entry_key(workspace.path, sub, study, workspace.file_mappings(sub))
        cached = reimportcache.load(workspace.path, key)
        if cached is not None:
            if _check_forms(workspace, study, sub, uses, cached) is None:
                return cached, True
            reimportcache.discard(workspace.path, key)
    result = workspace.reimport(sub, study)
    errors = [f for f in result.report.findings
              if f.severity == Severity.ERROR and f.category != Category.DEVIATION]
    if errors:
        first = errors[0]
        where = Path(str(first.file)).name if first.file else "its files"
        where = where.split(": ", 1)[-1]
        raise PoolRefused(
            f"site {sub.site}, submission {sub.id}, form {first.form or '-'} ({where}): the re-import "
            f"from the archive has {len(errors)} error(s), first {first.code}: {first.message}. The "
            "previous pooled output is unchanged; fix the cause (a limit, a changed study definition, "
            "a damaged archive file) and pool again"
        )
    forms = dict(result.forms)
    problem = _check_forms(workspace, study, sub, uses, forms)
    if problem:
        raise PoolRefused(problem)
    if key is not None:
        reimportcache.store(workspace.path, key, forms)
    return forms, False


def assemble(workspace: Any, study: Study, pointers: Mapping[str, Mapping[str, int]], *,
             progress: Callable[[str, int, int], None] | None = None,
             total: int | None = None, cache: bool = False) -> tuple[dict[str, dict[str, FormData]], dict[int, Any]]:
    """Each site's data form by form (``pointers``: ``{site: {form: submission id}}``), re-imported
    from the archive and checked against what was accepted; returns ``(per_site, submissions)``.

    Raises :class:`PoolRefused` naming site, submission, form and file when a re-import has an
    error finding, lacks a form, or differs from the records recorded at acceptance. With
    ``cache``, a submission's checked forms come from the workspace's re-import cache when it holds
    a verified entry that passes the same checks (:mod:`trialkit.reimportcache`).
    """
    wanted: dict[int, list[tuple[str, str]]] = {}
    for site, forms in sorted(pointers.items()):
        for form, submission_id in sorted(forms.items()):
            wanted.setdefault(int(submission_id), []).append((site, form))
    per_site: dict[str, dict[str, FormData]] = {}
    submissions: dict[int, Any] = {}
    for done, (submission_id, uses) in enumerate(sorted(wanted.items())):
        sub = workspace.submission(submission_id)
        submissions[submission_id] = sub
        if progress:
            progress(f"re-importing site {sub.site} (submission {sub.id})", done, total or len(wanted))
        forms, _ = _reimported_forms(workspace, study, sub, uses, cache=cache)
        for site, form in uses:
            per_site.setdefault(site, {})[form] = forms[form]
    return per_site, submissions


def stack_forms(per_site: Mapping[str, Mapping[str, FormData]]) -> dict[str, pd.DataFrame]:
    """Stack each form's typed data across sites (site order), index 0..n-1."""
    by_form: dict[str, list[pd.DataFrame]] = {}
    for site in sorted(per_site):
        for code, form_data in per_site[site].items():
            by_form.setdefault(code, []).append(form_data.data)
    return {code: pd.concat(frames, ignore_index=True) for code, frames in by_form.items()}


# ------------------------------------------------------------------------------------------------
# The pool


def check_unblinded_output(workspace: Any, out_dir: str | Path) -> None:
    """An unblinded pool must be written outside the workspace (UsageError otherwise), so that neither
    its staging folder nor a killed run's leftovers ever put an arm inside the workspace."""
    target = Path(out_dir).resolve()
    home = Path(workspace.path).resolve()
    if target == home or home in target.parents:
        raise UsageError(
            f"--unblind writes the arm: its output {target} must be outside the workspace {home} (whose "
            "pooled/ folders are blinded); give -o a folder outside it, e.g. -o ../unblinded"
        )


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
    cache: bool = True,
) -> dict[str, Any]:
    """Build and write the pooled forms and analysis datasets; returns the manifest.

    See the module docstring for the checks that come first. With ``cache`` (the default) a
    submission re-imported by an earlier pool is read from the workspace's re-import cache when its
    entry verifies (:mod:`trialkit.reimportcache`; the output is the same without it). The unblinding (``randlist``) and the
    pool itself are recorded in the workspace's audit log. ``progress(step, done, total)`` is called
    as the work goes on (the CLI shows a bar).
    """
    from trialkit.export import remove_leftovers
    from trialkit.verify import verify

    out_dir = Path(out_dir)
    if randlist is not None:
        check_unblinded_output(workspace, out_dir)
    arms = read_randlist(randlist, study.arm_codes, study_id=study.id) if randlist else None
    pointers = workspace.frozen_forms(freeze) if freeze else workspace.current_forms()
    if not pointers:
        raise TrialkitError(
            f"{workspace.path}: no site has accepted data to pool yet; submit uploads first (trialkit submit)"
        )
    checked = verify(workspace)
    if checked.problems:
        raise PoolRefused(
            f"{workspace.path}: the workspace does not verify, so nothing is pooled (the previous output is "
            "unchanged):\n" + "\n".join(f"  - {p.code}: {p.message}" for p in checked.problems)
            + "\nRun `trialkit verify` for the full list; restore the ledger or archive from backup."
        )
    remove_leftovers(out_dir)
    n_submissions = len({i for forms in pointers.values() for i in forms.values()})
    total = n_submissions + 2
    per_site, submissions = assemble(workspace, study, pointers, progress=progress, total=total, cache=cache)
    forms = stack_forms(per_site)
    if arms is not None:
        mismatches = check_randomisation(arms, forms, study)
        if mismatches:
            raise UsageError(
                f"{randlist}: the randomization list does not match the randomised subjects, so nothing "
                "is unblinded or written:\n" + "\n".join(f"  - {m}" for m in mismatches)
            )
    if progress:
        progress("deriving the analysis datasets", total - 2, total)

    from trialkit.deviationlog import log_frame
    from trialkit.export import make_dataset, write_output_set
    from trialkit.metadata import form_metadata
    from trialkit.reasons import DATASET as REASONS
    from trialkit.reasons import missing_reasons
    from trialkit.study.plugins import derive_datasets

    as_of = workspace.freeze_seq(freeze) if freeze else None
    log = workspace.deviation_log(as_of=as_of)
    data_cut = workspace.data_cut_date(as_of=as_of)
    analysis = derive_datasets(study, forms, randlist=arms, deviations=log_frame(log), data_cut=data_cut)
    datasets: dict[str, Any] = {}
    for code in study.forms:
        if code in forms:
            frame = forms[code]
            datasets[code.lower()] = make_dataset(
                frame,
                labels=form_labels(study, code, frame.columns),
                value_labels=form_value_labels(study, code, frame.columns),
                dataset_label=study.form(code).export_label,
                metadata=form_metadata(study, code, frame.columns),
            )
    # Every ND/NK/NA a site typed, recoverable in every format (trialkit.reasons).
    datasets[REASONS] = make_dataset(missing_reasons(per_site, study))
    for name, frame in analysis.items():
        if name.lower() in datasets:
            raise TrialkitError(f"{study.id}: the analysis dataset {name} has the name of a pooled dataset; rename it")
        datasets[name.lower()] = make_dataset(frame, dataset_label=frame.attrs.get("dataset_label") or name)

    used: dict[int, list[str]] = {}
    for forms_of_site in pointers.values():
        for form, submission_id in forms_of_site.items():
            used.setdefault(int(submission_id), []).append(form)
    inputs = [
        {
            "site": sub.site,
            "submission": sub.id,
            "status": sub.status,
            "submitted_at": sub.submitted_at,
            "forms": sorted(used[sub.id]),
            "protocol_version": sub.study_version,
            "files": [{"name": f.original_name, "sha256": f.sha256, "size": f.size} for f in sub.files],
        }
        for sub in sorted(submissions.values(), key=lambda s: (s.site, s.id))
    ]
    by_form = {
        site: {
            form: {"submission": int(pointers[site][form]), "rows": len(form_data),
                   "files": _file_names(form_data)}
            for form, form_data in sorted(site_forms.items())
        }
        for site, site_forms in sorted(per_site.items())
    }
    extra = {
        "trialkit_version": __version__,
        "study": {"id": study.id, "protocol_version": study.protocol_version, "schema_hash": study.schema_hash,
                  "definition_hash": study.definition_hash,
                  # every protocol version the pooled submissions were validated against
                  "protocol_versions": sorted({str(sub.study_version) for sub in submissions.values()
                                               if sub.study_version})},
        "inputs": inputs,
        "forms": by_form,
        "freeze": freeze,
        "unblinded": arms is not None,
        # the study-wide cut the analysis datasets were derived with (None: none set)
        "data_cut": data_cut.isoformat() if data_cut else None,
        # the deviation log the per-protocol flag came from (its confirmed major deviations)
        "deviation_log": {
            "entries": len(log),
            "by_status": {s: sum(1 for e in log if e["status"] == s) for s in sorted({e["status"] for e in log})},
            "confirmed_major": sorted({str(e["subject"]) for e in log
                                       if e["status"] == "confirmed" and e["class"] == "major" and e["subject"]}),
        },
    }
    if arms is not None:
        workspace.record_event(
            "unblind", operator=operator, detail={"randlist": str(randlist), "subjects": int(len(arms)), "out": str(out_dir)}
        )
    if progress:
        progress(f"writing {', '.join(formats)}", total - 1, total)
    manifest = write_output_set(datasets, out_dir, formats, extra=extra, study=study_info(study),
                                kind="unblinded pooled output set" if arms is not None else "pooled output set")
    if progress:
        progress("done", total, total)
    workspace.record_event(
        "pool",
        operator=operator,
        detail={"out": str(out_dir), "freeze": freeze, "unblinded": arms is not None,
                "forms": {site: dict(forms) for site, forms in pointers.items()},
                "submissions": {site: max(forms.values()) for site, forms in pointers.items()}},
    )
    return manifest


def manifest_forms(manifest: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """``{site: {form: submission id}}`` of a pooled output's manifest (older manifests named one
    submission per site: all its forms are given as ``*``)."""
    if "forms" in manifest:
        return {site: {form: int(entry["submission"]) for form, entry in forms.items()}
                for site, forms in manifest["forms"].items()}
    return {str(i["site"]): {"*": int(i["submission"])} for i in manifest.get("inputs", [])}
