"""Define-XML 2.1 for an output set: what each dataset and variable is, where it comes from and how
it is derived — generated from the datasets' metadata (:mod:`trialkit.metadata`), which the study
definition (forms) and the study's analysis programs (derivations) declare.

:func:`define_xml` returns the document; :func:`trialkit.export.write_output_set` writes it as
``define.xml`` beside the datasets. It holds:

- ``def:Standards`` (ADaMIG for the analysis datasets; the pooled forms and the reasons dataset are
  marked ``def:IsNonStandard``), one ``ItemGroupDef`` per dataset (its label, ``def:Structure``,
  ``def:Class`` for ADaM datasets, ``Purpose`` Analysis or Tabulation, a ``def:leaf`` naming its
  file, the keys as ``KeySequence``), one ``ItemDef`` per variable (type, length, display format
  for dates, ``def:Origin`` with the predecessor, a ``CodeListRef``), the ``CodeList`` of every
  coded variable, a ``MethodDef`` per derivation with its description;
- value-level metadata for parameter-per-row datasets: a ``def:ValueListDef`` on ``AVAL`` (and
  ``AVALC``) with one ``ItemDef`` per parameter and a ``def:WhereClauseDef`` selecting its
  ``PARAMCD``, with the parameter's type, unit and derivation.

OIDs: ``IG.<DATASET>``, ``IT.<DATASET>.<VAR>`` (and ``IT.<DATASET>.<VAR>.<PARAMCD>``),
``CL.<DATASET>.<VAR>``, ``MT.<DATASET>.<VAR>``, ``VL.<DATASET>.<VAR>``,
``WC.<DATASET>.<PARAMVAR>.<PARAMCD>`` — the same item OIDs Dataset-JSON uses. Dates are numeric
(``DataType integer`` with ``def:DisplayFormat DATE9.``), as in the SAS transport files and as
Dataset-JSON's ``targetDataType``. The output is deterministic (``created`` is the creation time).
Nothing here knows a trial.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from trialkit.metadata import DatasetMeta, ParameterMeta, StudyInfo, VariableMeta

__all__ = ["ADAM_STANDARD", "NAMESPACES", "define_xml"]

ODM = "http://www.cdisc.org/ns/odm/v1.3"
DEF = "http://www.cdisc.org/ns/def/v2.1"
XLINK = "http://www.w3.org/1999/xlink"
XML = "http://www.w3.org/XML/1998/namespace"
NAMESPACES = {"": ODM, "def": DEF, "xlink": XLINK}
DEFINE_VERSION = "2.1.0"
#: The ADaM implementation guide the analysis datasets follow.
ADAM_STANDARD = {"OID": "STD.ADAMIG.1.3", "Name": "ADaMIG", "Type": "IG", "Version": "1.3", "Status": "Final"}
_SAS_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,7}")
_DATA_TYPES = {"string": "text", "integer": "integer", "float": "float", "boolean": "boolean",
               "date": "integer", "datetime": "integer"}
_DISPLAY = {"date": "DATE9.", "datetime": "DATETIME20."}
_SOURCES = {"Collected": "Investigator", "Derived": "Sponsor", "Assigned": "Sponsor", "Protocol": "Sponsor"}
#: The file a dataset's def:leaf points to, by preference among the formats written.
_LEAF_FORMATS = ("xpt", "datasetjson", "ndjson", "parquet", "sav", "dta", "csv")


def _q(namespace: str, tag: str) -> str:
    return f"{{{namespace}}}{tag}"


def _el(parent: ET.Element, tag: str, attrib: Mapping[str, Any] | None = None, ns: str = ODM) -> ET.Element:
    clean = {k: str(v) for k, v in (attrib or {}).items() if v is not None and v != ""}
    return ET.SubElement(parent, _q(ns, tag), clean)


def _description(parent: ET.Element, text: str, tag: str = "Description") -> None:
    holder = _el(parent, tag)
    translated = _el(holder, "TranslatedText", {_q(XML, "lang"): "en"})
    translated.text = text


def _d(attr: str) -> str:
    return _q(DEF, attr)


def _length(series: pd.Series, kind: str) -> tuple[int | None, int | None]:
    """(Length, SignificantDigits) of a column from its values (each distinct value looked at once)."""
    if kind not in ("string", "integer", "boolean", "float"):
        return 8, None  # dates and datetimes: no values needed
    present = series.dropna()
    if present.dtype == object:
        values = pd.unique(present.to_numpy(dtype=object))
    else:  # distinct values in the column's own type: no Python object per row (seconds per million)
        values = pd.unique(present.array)
    if kind == "string":
        return max([1, *(len(str(v).encode("utf-8")) for v in values)]), None
    if kind in ("integer", "boolean"):
        return max([1, *(len(str(abs(int(v)))) for v in values)]), None
    if kind == "float":
        digits, decimals = 1, 0
        for value in values:
            number = float(value)
            if not math.isfinite(number):
                continue
            text = repr(abs(number))
            if "e" in text:
                text = f"{abs(number):.10f}".rstrip("0")
            whole, _, fraction = text.partition(".")
            fraction = fraction.rstrip("0")
            digits = max(digits, len(whole.lstrip("0") or "0") + len(fraction))
            decimals = max(decimals, len(fraction))
        return digits, decimals
    return 8, None


def _codelist_type(codes: Iterable[Any]) -> str:
    values = list(codes)
    if values and all(isinstance(c, int | bool) or (isinstance(c, float) and c.is_integer()) for c in values):
        return "integer"
    if values and all(isinstance(c, int | float) for c in values):
        return "float"
    return "text"


def _code_text(code: Any) -> str:
    if isinstance(code, float) and code.is_integer():
        return str(int(code))
    return str(code)


class _Builder:
    """Collects the MetaDataVersion's parts in the order the schema requires."""

    def __init__(self) -> None:
        self.value_lists: list[ET.Element] = []
        self.where_clauses: list[ET.Element] = []
        self.item_groups: list[ET.Element] = []
        self.items: list[ET.Element] = []
        self.codelists: list[ET.Element] = []
        self.methods: list[ET.Element] = []
        self.comments: list[ET.Element] = []
        self._codelist_by_content: dict[tuple, str] = {}

    def codelist(self, oid: str, name: str, codes: Mapping[Any, str], kind: str) -> str:
        """The OID of a codelist with these codes (an identical list is shared)."""
        datatype = _codelist_type(codes) if kind != "string" else "text"
        content = (datatype, tuple((_code_text(c), str(t)) for c, t in codes.items()))
        if content in self._codelist_by_content:
            return self._codelist_by_content[content]
        element = ET.Element(_q(ODM, "CodeList"), {"OID": oid, "Name": name, "DataType": datatype})
        for order, (code, decode) in enumerate(content[1], start=1):
            item = _el(element, "CodeListItem", {"CodedValue": code, "OrderNumber": order})
            _description(item, decode, "Decode")
        self.codelists.append(element)
        self._codelist_by_content[content] = oid
        return oid

    def method(self, oid: str, name: str, text: str) -> str:
        element = ET.Element(_q(ODM, "MethodDef"), {"OID": oid, "Name": name, "Type": "Computation"})
        _description(element, text)
        self.methods.append(element)
        return oid


def _origin(item: ET.Element, variable: VariableMeta | None) -> None:
    if variable is None:
        return
    attrib = {"Type": variable.origin, "Source": _SOURCES.get(variable.origin)}
    origin = _el(item, "Origin", attrib, ns=DEF)
    if variable.origin == "Predecessor" and (variable.source or variable.derivation):
        _description(origin, variable.source or variable.derivation or "")


def _item_def(builder: _Builder, oid: str, name: str, label: str, kind: str, series: pd.Series | None,
              codelist: str | None = None, variable: VariableMeta | None = None,
              value_list: str | None = None) -> None:
    length, digits = _length(series if series is not None else pd.Series(dtype=object), kind)
    attrib: dict[str, Any] = {"OID": oid, "Name": name, "DataType": _DATA_TYPES[kind]}
    if kind in ("string", "integer", "float"):
        attrib["Length"] = length
    if kind == "float" and digits is not None:
        attrib["SignificantDigits"] = digits
    if _SAS_NAME.fullmatch(name):
        attrib["SASFieldName"] = name
    if kind in _DISPLAY:
        attrib[_d("DisplayFormat")] = _DISPLAY[kind]
    element = ET.Element(_q(ODM, "ItemDef"), {k: str(v) for k, v in attrib.items()})
    _description(element, label or name)
    if codelist:
        _el(element, "CodeListRef", {"CodeListOID": codelist})
    _origin(element, variable)
    if value_list:
        _el(element, "ValueListRef", {"ValueListOID": value_list}, ns=DEF)
    builder.items.append(element)


def _parameter_type(parameter: ParameterMeta, variable: str) -> str:
    if variable == "AVALC":
        return "string"
    return {"integer": "integer", "float": "float", "text": "string"}.get(parameter.datatype, "float")


def _value_level(builder: _Builder, ds: Any, name: str, meta: DatasetMeta) -> dict[str, str]:
    """The value-level metadata of a parameter-per-row dataset: {variable: ValueListDef OID}."""
    frame = ds.frame
    selector = meta.parameter_variable
    if not meta.parameters or selector not in frame.columns:
        return {}
    present = set(frame[selector].dropna().astype(str))
    parameters = [p for p in sorted(meta.parameters, key=lambda p: p.paramn) if p.paramcd in present]
    if not parameters:
        return {}
    upper = name.upper()
    selector_oid = f"IT.{upper}.{selector}"
    lists: dict[str, str] = {}
    wheres: set[str] = set()
    for variable in meta.parameter_values:
        if variable not in frame.columns:
            continue
        chosen = [p for p in parameters if variable != "AVALC" or p.avalc]
        if not chosen:
            continue
        oid = f"VL.{upper}.{variable}"
        value_list = ET.Element(_d("ValueListDef"), {"OID": oid})
        for order, parameter in enumerate(chosen, start=1):
            where = f"WC.{upper}.{selector}.{parameter.paramcd}"
            item_oid = f"IT.{upper}.{variable}.{parameter.paramcd}"
            method = None
            if parameter.origin == "Derived" and parameter.derivation:
                method = builder.method(f"MT.{upper}.{variable}.{parameter.paramcd}",
                                        f"Algorithm for {upper}.{variable} where {selector} = {parameter.paramcd}",
                                        parameter.derivation)
            ref = _el(value_list, "ItemRef", {"ItemOID": item_oid, "OrderNumber": order, "Mandatory": "No",
                                              "MethodOID": method})
            _el(ref, "WhereClauseRef", {"WhereClauseOID": where}, ns=DEF)
            if where not in wheres:
                wheres.add(where)
                clause = ET.Element(_d("WhereClauseDef"), {"OID": where})
                check = _el(clause, "RangeCheck", {"Comparator": "EQ", "SoftHard": "Soft", _d("ItemOID"): selector_oid})
                _el(check, "CheckValue").text = parameter.paramcd
                builder.where_clauses.append(clause)
            rows = frame[frame[selector].astype(str) == parameter.paramcd]
            kind = _parameter_type(parameter, variable)
            codelist = None
            if variable == "AVALC" and parameter.avalc:
                codelist = builder.codelist(f"CL.{upper}.{variable}.{parameter.paramcd}",
                                            f"{parameter.paramcd} results", parameter.avalc, "string")
            label = parameter.param + (f" [{parameter.unit}]" if parameter.unit and parameter.unit not in parameter.param else "")
            variable_meta = VariableMeta(variable, label, origin=parameter.origin,
                                         source=parameter.derivation if parameter.origin == "Predecessor" else None)
            series = rows[variable] if variable in rows else None
            _item_def(builder, item_oid, variable, label, kind, series, codelist, variable_meta)
        builder.value_lists.append(value_list)
        lists[variable] = oid
    return lists


def _leaf_file(name: str, formats: Iterable[str]) -> str:
    from trialkit.export import extension

    chosen = [f for f in _LEAF_FORMATS if f in set(formats)]
    fmt = chosen[0] if chosen else "xpt"
    return f"{name}.{extension(fmt)}"


def _dataset(builder: _Builder, name: str, ds: Any, formats: Iterable[str]) -> None:
    meta: DatasetMeta | None = ds.metadata
    upper = name.upper()
    keys = list(meta.keys) if meta is not None else []
    analysis = meta is not None and meta.adam_class is not None
    one_per_subject = meta is not None and (meta.adam_class == "SUBJECT LEVEL ANALYSIS DATASET" or list(meta.keys) == ["SUBJID"])
    comment = None
    if meta is not None and meta.description:
        comment = f"COM.{upper}"
        element = ET.Element(_d("CommentDef"), {"OID": comment})
        _description(element, meta.description)
        builder.comments.append(element)
    attrib = {
        "OID": f"IG.{upper}", "Name": upper, "Repeating": "No" if one_per_subject else "Yes",
        "IsReferenceData": "No", "SASDatasetName": upper if _SAS_NAME.fullmatch(upper) else None,
        "Purpose": (meta.purpose if meta is not None else "Tabulation"),
        _d("Structure"): (meta.structure if meta is not None and meta.structure else "One record per row"),
        _d("StandardOID"): ADAM_STANDARD["OID"] if analysis else None,
        _d("IsNonStandard"): None if analysis else "Yes",
        _d("CommentOID"): comment,
        _d("ArchiveLocationID"): f"LF.{upper}",
    }
    group = ET.Element(_q(ODM, "ItemGroupDef"), {k: str(v) for k, v in attrib.items() if v})
    _description(group, ds.label or upper)
    value_lists = _value_level(builder, ds, name, meta) if meta is not None else {}
    for order, (column, kind) in enumerate(ds.types.items(), start=1):
        variable = meta.variable(column) if meta is not None else None
        item_oid = f"IT.{upper}.{column}"
        method = None
        if variable is not None and variable.origin == "Derived" and variable.derivation:
            method = builder.method(f"MT.{upper}.{column}", f"Algorithm for {upper}.{column}", variable.derivation)
        ref_attrib: dict[str, Any] = {"ItemOID": item_oid, "OrderNumber": order,
                                      "Mandatory": "Yes" if column in keys else "No", "MethodOID": method}
        if column in keys:
            ref_attrib["KeySequence"] = keys.index(column) + 1
        _el(group, "ItemRef", ref_attrib)
        codes = ds.value_labels.get(column) or (variable.codelist if variable is not None else None)
        codelist = None
        if codes:
            codelist = builder.codelist(f"CL.{upper}.{column}", (variable.codelist_name if variable and
                                        variable.codelist_name else column), codes, kind)
        _item_def(builder, item_oid, column, ds.labels.get(column, column), kind, ds.frame[column], codelist,
                  variable, value_lists.get(column))
    if analysis:
        klass = _el(group, "Class", {"Name": meta.adam_class}, ns=DEF)
        if meta.subclass:
            _el(klass, "SubClass", {"Name": meta.subclass}, ns=DEF)
    leaf = _el(group, "leaf", {"ID": f"LF.{upper}", _q(XLINK, "href"): _leaf_file(name, formats)}, ns=DEF)
    _el(leaf, "title", ns=DEF).text = _leaf_file(name, formats)
    builder.item_groups.append(group)


def define_xml(datasets: Mapping[str, Any], study: StudyInfo, *, created: dt.datetime,
               formats: Iterable[str] = ("xpt",)) -> bytes:
    """The Define-XML 2.1 document (UTF-8 bytes) of ``datasets`` (name → :class:`trialkit.export.Dataset`).

    ``formats`` are the formats written beside it: each dataset's ``def:leaf`` names its file in
    the first of xpt, Dataset-JSON, Parquet, SAV, DTA, CSV that was written.
    """
    for prefix, uri in NAMESPACES.items():
        ET.register_namespace(prefix, uri)
    formats = list(formats)
    stamp = created.strftime("%Y-%m-%dT%H:%M:%S")
    from trialkit import __version__

    root = ET.Element(_q(ODM, "ODM"), {
        "FileType": "Snapshot", "FileOID": f"{study.oid}.define", "CreationDateTime": stamp,
        "ODMVersion": "1.3.2", "Originator": study.originator, "SourceSystem": study.source_system,
        "SourceSystemVersion": study.source_version or __version__, _d("Context"): study.context,
    })
    odm_study = _el(root, "Study", {"OID": study.oid})
    variables = _el(odm_study, "GlobalVariables")
    _el(variables, "StudyName").text = study.name
    _el(variables, "StudyDescription").text = study.description or study.name
    _el(variables, "ProtocolName").text = study.protocol_name or study.name
    version = _el(odm_study, "MetaDataVersion", {
        "OID": study.mdv_oid, "Name": f"{study.name} pooled datasets",
        "Description": f"Pooled datasets of {study.name} (protocol {study.metadata_version})",
        _d("DefineVersion"): DEFINE_VERSION,
    })
    builder = _Builder()
    for name, ds in datasets.items():
        _dataset(builder, name, ds, formats)
    standards = _el(version, "Standards", ns=DEF)
    _el(standards, "Standard", ADAM_STANDARD, ns=DEF)
    for element in (*builder.value_lists, *builder.where_clauses, *builder.item_groups, *builder.items,
                    *builder.codelists, *builder.methods, *builder.comments):
        version.append(element)
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n").encode("utf-8")
