"""What the report reads: the pooled forms and analysis datasets, or the current submissions re-derived.

:func:`load_report_data` reads only the columns the report needs — the subject, site and visit of
every form, and what the study's report plug-in asks for (its ``READS``) — from the pooled datasets
in ``WORKSPACE/pooled`` when they exist, else from the current accepted submissions re-imported from
the archive (the study's analysis datasets are then derived in memory, blinded). An arm column is
never read, even from an unblinded pool: the report is blinded.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from trialkit.errors import TrialkitError

#: Columns that hold a treatment assignment: never read, even when a study's plug-in asks.
BLINDED_OUT = ("ARM", "ARMCD", "ACTARM", "ACTARMCD", "TRT01P", "TRT01A", "TRTP", "TRTA")
#: The columns of :attr:`ReportData.subjects`.
SUBJECT_COLUMNS = ("SITEID", "SUBJID", "ENRLDT", "FIRSTDT", "LASTDT", "ENDDT", "ENDED")


@dataclass
class ReportData:
    """The data behind the report's charts, already restricted to the report's sites.

    ``forms`` holds, per form code, SITEID, SUBJID, VISIT (when the form has one) and the columns the
    study's report plug-in reads; ``datasets`` the analysis-dataset columns it reads (by upper-case
    name); ``subjects`` one row per subject (:data:`SUBJECT_COLUMNS`, from the plug-in's
    ``subjects()`` or estimated from the forms); ``data_cuts`` the data cut of each site; ``source``
    says where the data came from, ``inputs`` which submission of each site, ``command`` how to
    rebuild it.
    """

    forms: dict[str, pd.DataFrame]
    datasets: dict[str, pd.DataFrame]
    data_cuts: dict[str, date]
    source: str
    inputs: dict[str, int]
    command: str
    unblinded_pool: bool = False
    notes: list[str] = field(default_factory=list)
    subjects: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(SUBJECT_COLUMNS)))
    subjects_note: str = "the first date recorded for the subject"

    def dataset(self, name: str) -> pd.DataFrame:
        """An analysis dataset the plug-in asked for (an empty frame when the study produced none)."""
        return self.datasets.get(name.upper(), pd.DataFrame())

    def form(self, code: str) -> pd.DataFrame:
        """A form's columns (an empty frame when nothing was uploaded)."""
        return self.forms.get(code.upper(), pd.DataFrame(columns=["SITEID", "SUBJID"]))


def as_date(value: Any) -> date | None:
    """A value as a date (None when missing or unreadable)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    try:
        return pd.Timestamp(value).date()
    except (ValueError, TypeError):
        return None


def _read_pooled(folder: Path, name: str, columns: tuple[str, ...]) -> pd.DataFrame | None:
    """Only ``columns`` (those present) of a pooled dataset, from parquet or else CSV; None if absent."""
    parquet, csv = folder / f"{name}.parquet", folder / f"{name}.csv"
    try:
        if parquet.is_file():
            import pyarrow.parquet as pq

            present = [c for c in columns if c in pq.read_schema(parquet).names]
            frame = pd.read_parquet(parquet, columns=present)
        elif csv.is_file():
            frame = pd.read_csv(csv, dtype=str, keep_default_na=False, na_values=[""],
                                usecols=lambda column: column in columns)
        else:
            return None
    except (OSError, ValueError) as exc:
        raise TrialkitError(f"{folder / name}: cannot read the pooled dataset ({exc}); run `trialkit pool` again") from exc
    for column in columns:
        if column not in frame.columns:
            frame[column] = None
    return frame[list(columns)]


def _plan(study: Any, plugin: Any) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """Columns to read: per form and per analysis dataset."""
    reads = {str(k).upper(): tuple(v) for k, v in (getattr(plugin, "READS", None) or {}).items()}
    estimate = plugin is None or not callable(getattr(plugin, "subjects", None))
    forms: dict[str, tuple[str, ...]] = {}
    for code, form in study.forms.items():
        names = form.variable_names
        columns = [c for c in ("SITEID", "SUBJID", "VISIT") if c in names]
        if estimate:  # the enrolment estimate needs every full date of the form
            columns += [v.name for v in form.variables if v.type == "date"]
        columns += [c for c in reads.get(code, ()) if c in names]
        forms[code] = tuple(dict.fromkeys(c for c in columns if c not in BLINDED_OUT))
    datasets = {name: tuple(c for c in columns if c not in BLINDED_OUT)
                for name, columns in reads.items() if name not in study.forms}
    return forms, datasets


def _typed_form(study: Any, code: str, frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    form = study.forms[code]
    for column in frame.columns:
        if column in form.variable_names and form.variable(column).type == "date":
            frame[column] = pd.to_datetime(frame[column], errors="coerce")
        elif column in ("SITEID", "SUBJID", "VISIT"):
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def _only_sites(frame: pd.DataFrame, sites: set[str]) -> pd.DataFrame:
    if "SITEID" not in frame.columns:
        return frame
    return frame[frame["SITEID"].astype(str).isin(sites).to_numpy()].reset_index(drop=True)


def load_report_data(workspace: Any, study: Any, *, site: str | None = None,
                     pooled_dir: str | os.PathLike[str] | None = None,
                     today: date | None = None) -> ReportData:
    """The report's data: the pooled datasets in ``pooled_dir`` (default ``WORKSPACE/pooled``) when
    they exist, else the current accepted submissions re-imported from the archive and derived in
    memory (blinded). With ``site``, only that site's rows are kept."""
    from trialkit.ledger import open_workspace
    from trialkit.study.plugins import report_plugin

    ws = workspace if hasattr(workspace, "current_submissions") else open_workspace(workspace)
    today = today or datetime.now(UTC).date()
    plugin = report_plugin(study)
    form_columns, dataset_columns = _plan(study, plugin)
    current = ws.current_submissions()
    wanted = {site} if site else None
    folder = Path(pooled_dir) if pooled_dir is not None else ws.path / "pooled"
    manifest_path = folder / "manifest.json"
    notes: list[str] = []
    forms: dict[str, pd.DataFrame] = {}
    datasets: dict[str, pd.DataFrame] = {}

    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise TrialkitError(f"{manifest_path}: cannot be read ({exc}); run `trialkit pool` again") from exc
        from trialkit.pool import manifest_forms

        pooled_forms = manifest_forms(manifest)
        inputs = {site: max(forms.values()) for site, forms in pooled_forms.items()}
        for code, columns in form_columns.items():
            frame = _read_pooled(folder, code.lower(), columns)
            forms[code] = frame if frame is not None else pd.DataFrame(columns=list(columns))
        for name, columns in dataset_columns.items():
            frame = _read_pooled(folder, name.lower(), columns)
            if frame is None:
                raise TrialkitError(f"{folder}: has a manifest.json but no {name.lower()}.parquet or "
                                    f"{name.lower()}.csv; run `trialkit pool` again")
            datasets[name] = frame
        source = "pooled datasets" + (f" (freeze {manifest['freeze']})" if manifest.get("freeze") else "")
        unblinded = bool(manifest.get("unblinded"))
        # Compared form by form: a site's forms may come from different submissions.
        considered = {s: f for s, f in pooled_forms.items() if wanted is None or s in wanted}
        now = {s: f for s, f in ws.current_forms().items() if wanted is None or s in wanted}
        if considered != now and not manifest.get("freeze"):
            notes.append(
                f"The pooled datasets are older than the ledger (pooled: {_pointer_ids(considered)}; current: "
                f"{_pointer_ids(now)}). Run `trialkit pool` to bring the charts up to date."
            )
        cuts = {}
        for pooled_site, submission_id in inputs.items():
            try:
                cuts[pooled_site] = as_date(ws.submission(submission_id).data_cut)
            except TrialkitError:  # pooled from another workspace: fall back to today below
                if wanted is None or pooled_site in wanted:
                    notes.append(f"Site {pooled_site}: pooled submission #{submission_id} is not in this ledger.")
    else:
        from trialkit.deviationlog import log_frame
        from trialkit.pool import assemble, stack_forms
        from trialkit.study.plugins import derive_datasets

        chosen = {s: sub for s, sub in current.items() if wanted is None or s in wanted}
        inputs = {s: sub.id for s, sub in chosen.items()}
        pointers = {s: f for s, f in ws.current_forms().items() if s in chosen}
        per_site, _ = assemble(ws, study, pointers)
        stacked = stack_forms(per_site)
        derived = (derive_datasets(study, stacked, deviations=log_frame(ws.deviation_log()),
                                   data_cut=ws.data_cut_date())
                   if stacked else {})
        for code, columns in form_columns.items():
            frame = stacked.get(code, pd.DataFrame()).copy()
            for column in columns:
                if column not in frame.columns:
                    frame[column] = None
            forms[code] = frame[list(columns)]
        for name, columns in dataset_columns.items():
            frame = derived.get(name, pd.DataFrame()).copy()
            for column in columns:
                if column not in frame.columns:
                    frame[column] = None
            datasets[name] = frame[list(columns)]
        source = "current accepted submissions (no pooled datasets found; re-imported from the archive)"
        unblinded = False
        cuts = {s: as_date(sub.data_cut) for s, sub in chosen.items()}
        if not chosen:
            notes.append("No site has accepted data yet: the charts below are empty.")

    forms = {code: _typed_form(study, code, frame) for code, frame in forms.items()}
    if wanted is not None:
        forms = {code: _only_sites(frame, wanted) for code, frame in forms.items()}
        datasets = {name: _only_sites(frame, wanted) for name, frame in datasets.items()}
        inputs = {s: i for s, i in inputs.items() if s in wanted}
        cuts = {s: c for s, c in cuts.items() if s in wanted}
    data = ReportData(forms=forms, datasets=datasets, data_cuts={}, source=source,
                      inputs=dict(sorted(inputs.items())), command="trialkit pool", unblinded_pool=unblinded,
                      notes=notes)
    data.subjects, data.subjects_note = _subjects(study, plugin, data)
    if wanted is not None:
        data.subjects = _only_sites(data.subjects, wanted)
    data_cuts = {s: (c or today) for s, c in cuts.items()}
    for s in sorted(set(data.subjects["SITEID"].dropna().astype(str)) - set(data_cuts)):
        data_cuts[s] = today
    data.data_cuts = dict(sorted(data_cuts.items()))
    return data


def _pointer_ids(pointers: dict[str, dict[str, int]]) -> str:
    """``site 01 #3+#5, site 02 #4``: the submissions a site's data come from, for a note."""
    return ", ".join(f"site {s} " + "+".join(f"#{i}" for i in sorted(set(f.values())))
                     for s, f in sorted(pointers.items())) or "none"


def _subjects(study: Any, plugin: Any, data: ReportData) -> tuple[pd.DataFrame, str]:
    """One row per subject: the plug-in's ``subjects()``, else estimated from the forms."""
    function = getattr(plugin, "subjects", None) if plugin is not None else None
    if callable(function):
        frame = function(data, study)
        note = str(frame.attrs.get("ENRLDT", "the enrolment date the study defines"))
    else:
        frame = _estimate_subjects(data)
        note = "the first date recorded for the subject"
    frame = frame.copy()
    for column in SUBJECT_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    for column in ("ENRLDT", "FIRSTDT", "LASTDT", "ENDDT"):
        frame[column] = pd.to_datetime(frame[column], errors="coerce")
    for column in ("SITEID", "SUBJID", "ENDED"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    frame = frame[list(SUBJECT_COLUMNS)].drop_duplicates("SUBJID")
    return frame.sort_values("SUBJID", kind="stable").reset_index(drop=True), note


def _estimate_subjects(data: ReportData) -> pd.DataFrame:
    """Subjects from the forms alone: site, and the first full date recorded for each (ENRLDT)."""
    parts = []
    for frame in data.forms.values():
        if "SUBJID" not in frame.columns or not len(frame):
            continue
        dates = [c for c in frame.columns if pd.api.types.is_datetime64_any_dtype(frame[c])]
        part = pd.DataFrame({
            "SUBJID": frame["SUBJID"].astype(object),
            "SITEID": frame["SITEID"].astype(object) if "SITEID" in frame.columns else None,
            "ENRLDT": frame[dates].min(axis=1) if dates else pd.NaT,
        })
        parts.append(part.dropna(subset=["SUBJID"]))
    if not parts:
        return pd.DataFrame(columns=["SITEID", "SUBJID", "ENRLDT"])
    stacked = pd.concat(parts, ignore_index=True)
    stacked["SUBJID"] = stacked["SUBJID"].astype(str)
    grouped = stacked.groupby("SUBJID", sort=True)
    return pd.DataFrame({"SITEID": grouped["SITEID"].first(), "ENRLDT": grouped["ENRLDT"].min()}).reset_index()
