"""Synthetic site uploads with several subjects, as workbooks or SAS transport files (test helper)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pandas as pd

from trialkit.export import write_dataset

from .test_deviations import clean_subject
from .upload_builder import write_upload

Records = dict[str, list[dict[str, Any]]]


def subjects(site: str, numbers: list[int], *, weight: float = 30, forms: list[str] | None = None) -> Records:
    """The clean subject of the deviation tests as subjects ``SS-00n`` of ``site``, merged form by form.

    Every subject has its own randomization and kit numbers; ``weight`` is typed at every visit;
    ``forms`` keeps only those forms.
    """
    merged: Records = {}
    for number in numbers:
        records = copy.deepcopy(clean_subject())
        subject = f"{site}-{number:03d}"
        records["RAND"][0].update(RANDNO=f"R{site}{number:02d}", KITNO=f"K{site}{number:02d}")
        for row in records["VS"]:
            row["WEIGHT"] = weight
        for code, rows in records.items():
            for row in rows:
                row.update(SITEID=site, SUBJID=subject)
            merged.setdefault(code, []).extend(rows)
    if forms is not None:
        merged = {code: rows for code, rows in merged.items() if code in forms}
    return merged


def workbook(study: Any, path: Path, records: Records) -> Path:
    """A filled upload workbook holding ``records`` (one sheet per form)."""
    return write_upload(study, path, records)


def xpt(study: Any, folder: Path, code: str, rows: list[dict[str, Any]]) -> Path:
    """One form's records as a SAS transport v5 file ``code.xpt`` (as a site's SAS exports it)."""
    folder.mkdir(parents=True, exist_ok=True)
    variables = study.form(code).site_variables
    columns: dict[str, pd.Series] = {}
    types: dict[str, str] = {}
    for var in variables:
        values = [row.get(var.name) for row in rows]
        if var.type == "date" and any(v is not None for v in values) and all(
                v is None or not isinstance(v, str) for v in values):
            columns[var.name] = pd.to_datetime(pd.Series(values, dtype=object))
            types[var.name] = "date"
        elif var.type == "num":
            columns[var.name] = pd.Series([float("nan") if v is None else float(v) for v in values])
            types[var.name] = "float"
        elif var.type == "int":
            columns[var.name] = pd.Series(values, dtype="Int64")
            types[var.name] = "integer"
        else:
            columns[var.name] = pd.Series(["" if v is None else str(v) for v in values], dtype=object)
            types[var.name] = "string"
    frame = pd.DataFrame(columns)
    written = write_dataset(frame, folder, code.lower(), ["xpt"],
                            labels={v.name: v.export_label for v in variables}, types=types,
                            dataset_label=study.form(code).export_label)
    return written["xpt"]


def truncate_on_record_boundary(path: Path, target: Path, fraction: float = 0.5) -> Path:
    """A copy of ``path`` cut to ``fraction`` of its size on an 80-byte boundary (an XPT record)."""
    data = path.read_bytes()
    cut = int(len(data) * fraction) // 80 * 80
    target.write_bytes(data[:cut])
    return target
