"""Dataset metadata that travels with a dataset into every output: what each variable is, where it
comes from and how it is derived — the source of define.xml, Dataset-JSON column metadata, the
codebook and the value labels of SAS, SPSS and Stata files.

A study's analysis programs declare it (the engine knows no trial): each dataset they return carries
a :class:`DatasetMeta` in ``frame.attrs["metadata"]`` (see :func:`attach`), with a
:class:`VariableMeta` per column and, for a parameter-per-row (BDS) dataset, a
:class:`ParameterMeta` per ``PARAMCD``. The pooled forms get theirs from the study definition
(:func:`form_metadata`). Nothing here knows a trial.

Origins are the Define-XML 2.1 origin types: ``Collected`` (as the site typed it), ``Derived``
(computed; ``derivation`` says how), ``Assigned`` (set by the sponsor or the program, e.g. a
constant), ``Predecessor`` (copied from another dataset; ``source`` names it, e.g. ``ADSL.AGE``),
``Protocol``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

__all__ = [
    "ORIGINS",
    "DatasetMeta",
    "ParameterMeta",
    "StudyInfo",
    "VariableMeta",
    "attach",
    "form_metadata",
    "metadata_of",
]

ORIGINS = ("Collected", "Derived", "Assigned", "Predecessor", "Protocol", "Not Available", "Other")


@dataclass(frozen=True)
class VariableMeta:
    """One variable: label, origin, derivation and its codelist (code → decode)."""

    name: str
    label: str
    origin: str = "Derived"
    derivation: str | None = None
    source: str | None = None
    codelist: Mapping[Any, str] | None = None
    codelist_name: str | None = None
    #: Whether the codelist is attached as value labels in SAV/DTA (a text column with labels gets a
    #: numeric twin in Stata; set False where that twin would clash with an existing column).
    value_labels: bool = True

    def __post_init__(self) -> None:
        if self.origin not in ORIGINS:
            raise ValueError(f"{self.name}: origin {self.origin!r} is not one of {', '.join(ORIGINS)}")


@dataclass(frozen=True)
class ParameterMeta:
    """One parameter (``PARAMCD``) of a BDS dataset: its name with unit, how it is derived, and the
    type and codelist of its analysis value."""

    paramcd: str
    param: str
    paramn: int
    unit: str | None = None
    derivation: str = ""
    origin: str = "Derived"
    #: The type of AVAL for this parameter: ``float``, ``integer``; ``text`` when only AVALC holds it.
    datatype: str = "float"
    #: Codes of AVALC (code → decode) for a categorical parameter.
    avalc: Mapping[str, str] | None = None


@dataclass(frozen=True)
class DatasetMeta:
    """One dataset: label, ADaM class (or None for collected data), structure, keys, variables and
    parameters, and a description for the codebook."""

    name: str
    label: str
    structure: str
    keys: tuple[str, ...] = ()
    variables: tuple[VariableMeta, ...] = ()
    parameters: tuple[ParameterMeta, ...] = ()
    adam_class: str | None = None
    subclass: str | None = None
    purpose: str = "Analysis"
    description: str = ""
    #: The variable whose values select a parameter's value-level metadata (BDS: PARAMCD).
    parameter_variable: str = "PARAMCD"
    #: Variables described per parameter in define.xml's value-level metadata (BDS: AVAL, AVALC).
    parameter_values: tuple[str, ...] = ("AVAL",)

    def variable(self, name: str) -> VariableMeta | None:
        """The metadata of variable ``name`` (None when not declared)."""
        return next((v for v in self.variables if v.name == name), None)

    def restricted(self, columns: Iterable[str]) -> DatasetMeta:
        """This metadata limited to ``columns`` in their order (a dataset built without some
        optional variables, e.g. a blinded one without the arm)."""
        names = list(columns)
        known = {v.name: v for v in self.variables}
        return replace(self, variables=tuple(known[n] for n in names if n in known),
                       keys=tuple(k for k in self.keys if k in names))


@dataclass(frozen=True)
class StudyInfo:
    """What define.xml and Dataset-JSON say about the study and the file set."""

    oid: str
    name: str
    description: str = ""
    protocol_name: str = ""
    metadata_version: str = "1"
    originator: str = "trialkit"
    source_system: str = "trialkit"
    source_version: str = ""
    context: str = "Other"
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def mdv_oid(self) -> str:
        """The MetaDataVersion OID (``MDV.<study>.<version>``)."""
        return f"MDV.{self.oid}.{self.metadata_version}"


def attach(frame: pd.DataFrame, meta: DatasetMeta) -> pd.DataFrame:
    """Attach ``meta`` to ``frame`` in place (restricted to its columns) and set the attributes the
    exporters read: ``labels``, ``dataset_label``, ``value_labels`` and ``metadata``. Every column
    must be declared; returns ``frame``."""
    missing = [c for c in frame.columns if meta.variable(c) is None]
    if missing:
        raise ValueError(f"{meta.name}: no metadata for column(s) {', '.join(map(str, missing))}")
    meta = meta.restricted(frame.columns)
    frame.attrs["labels"] = {v.name: v.label for v in meta.variables}
    frame.attrs["dataset_label"] = meta.label
    frame.attrs["value_labels"] = {
        v.name: dict(v.codelist) for v in meta.variables if v.codelist and v.value_labels
    }
    frame.attrs["metadata"] = meta
    return frame


def metadata_of(frame: pd.DataFrame) -> DatasetMeta | None:
    """The :class:`DatasetMeta` attached to ``frame`` (None when there is none)."""
    meta = frame.attrs.get("metadata")
    return meta if isinstance(meta, DatasetMeta) else None


def form_metadata(study: Any, code: str, columns: Iterable[str]) -> DatasetMeta:
    """Metadata of a pooled form from the study definition: every variable ``Collected`` (or
    ``Derived`` when the form marks it derived, e.g. a result converted to the standard unit), with
    its codelist; the form's keys and structure."""
    form = study.form(code)
    names = set(form.variable_names)
    variables = []
    for column in columns:
        if column not in names:
            variables.append(VariableMeta(column, column, origin="Other"))
            continue
        variable = form.variable(column)
        codelist = None
        if variable.codelist and variable.codelist in study.codelists:
            codes = study.codelists[variable.codelist].values
            codelist = {c: d for c, d in codes}
        description = variable.description or None
        variables.append(VariableMeta(
            column, variable.export_label, origin="Derived" if variable.derived else "Collected",
            derivation=description if variable.derived else None, codelist=codelist,
            codelist_name=variable.codelist, value_labels=False,
        ))
    return DatasetMeta(
        name=code, label=form.export_label, structure=form.structure, keys=tuple(form.keys),
        variables=tuple(variables), purpose="Tabulation",
        description=f"The pooled {form.label} form of every site, as validated.",
    )
