"""What every importer returns: typed form data with lineage, the values as typed, and findings.

The contract between importers and everything after them (validation, rules, derivations, pooling):

- :class:`FormData` holds one form's records from one or more files. Its frames share one index
  (a unique integer per record, *not* the row number):

  ``data``     the CRF columns of the form, in form order, typed per :mod:`trialkit.crf`
               (``str``, ``Int64``, ``float64``, ``datetime64``); a missing or unreadable value is NA.
  ``raw``      the same columns holding the value exactly as the site typed it (text; "" when empty).
  ``reasons``  the same columns holding a missing-value code (``ND``/``NK``/``NA``) where the site
               typed one instead of a value, else NA.
  ``lineage``  where each record came from: ``FILE`` (path), ``SHA256``, ``SHEET`` (sheet or dataset
               name), ``ROW`` (the row number the site sees: the spreadsheet row counting the header;
               for a dataset the 1-based record number).
  ``changes``  the normalisation log, one row per changed cell: ``index`` (record), ``variable``,
               ``original`` (as typed), ``value`` (as stored), ``rule`` (e.g. ``date:DMY``,
               ``decimal-comma``, ``unit:mg/dL->mg/L``, ``synonym``, ``trim``).
  ``absent``   variable → boolean array over the records: True where the record's file had no
               column for the variable (the importer reports the column once; validation does not
               repeat "required" for each of its rows).

- :class:`ImportResult` gathers the forms of a run (same form from several files concatenated) and
  a :class:`~trialkit.findings.Report` with the file-level and cell-level findings and the input
  files (sha256, size, format).

Nothing here is ever written back to the raw upload.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from trialkit.findings import Report

LINEAGE_COLUMNS = ["FILE", "SHA256", "SHEET", "ROW"]
CHANGE_COLUMNS = ["index", "variable", "original", "value", "rule"]


@dataclass
class FormData:
    """One form's imported records (see the module docstring for the frames)."""

    form: str
    data: pd.DataFrame
    raw: pd.DataFrame
    reasons: pd.DataFrame
    lineage: pd.DataFrame
    changes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CHANGE_COLUMNS))
    absent: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.data)

    def location(self, index: Any) -> dict[str, Any]:
        """File, sheet and row of one record, for a finding."""
        row = self.lineage.loc[index]
        return {"file": row["FILE"], "sheet": row["SHEET"], "row": int(row["ROW"])}

    @classmethod
    def concat(cls, parts: list[FormData]) -> FormData:
        """Stack several files' records of one form, renumbering the index 0..n-1."""
        if len(parts) == 1:
            return parts[0]
        offsets = []
        start = 0
        for part in parts:
            offsets.append(start)
            start += len(part.data)

        def stack(attr: str) -> pd.DataFrame:
            frames = []
            for offset, part in zip(offsets, parts, strict=True):
                frame = getattr(part, attr).copy()
                frame.index = pd.RangeIndex(offset, offset + len(part.data))
                frames.append(frame)
            return pd.concat(frames)

        changes = []
        for offset, part in zip(offsets, parts, strict=True):
            log = part.changes.copy()
            if len(log):
                positions = part.data.index.get_indexer(log["index"])
                log["index"] = positions + offset
            changes.append(log)
        absent = {name: np.concatenate([part.absent.get(name, np.zeros(len(part.data), dtype=bool))
                                        for part in parts])
                  for name in {n for part in parts for n in part.absent}}
        return cls(
            form=parts[0].form,
            data=stack("data"),
            raw=stack("raw"),
            reasons=stack("reasons"),
            lineage=stack("lineage"),
            changes=pd.concat(changes, ignore_index=True) if changes else pd.DataFrame(columns=CHANGE_COLUMNS),
            absent=absent,
        )


@dataclass
class ImportResult:
    """Everything imported in one run: forms by code, and the report of findings and inputs."""

    forms: dict[str, FormData] = field(default_factory=dict)
    report: Report = field(default_factory=Report)
    files: list[dict[str, Any]] = field(default_factory=list)  # per-file facts for `inspect`
    # Where each cell of a table read through a mapping came from (site export, SDTM, REDCap, ODM):
    # :class:`trialkit.importers.mapping.CellSources`, one per mapped table.
    sources: list[Any] = field(default_factory=list)
    # Direct identifiers found while importing → their masks: never shown, and masked wherever
    # another finding quotes them (kept out of every report and output).
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
