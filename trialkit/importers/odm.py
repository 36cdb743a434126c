"""CDISC ODM 1.3 ClinicalData as an upload: parsed safely, mapped by the study's OIDs, with XML lineage.

:func:`read_odm` reads ``ODM/ClinicalData/SubjectData/StudyEventData/FormData/ItemGroupData/ItemData``
into one raw table per ItemGroupOID: a row per ItemGroupData (its keys as columns ``SubjectKey``,
``LocationOID``, ``StudyEventOID``, ``FormOID``, the repeat keys, ``TransactionType``), a column per
ItemOID (``Value``, or the text of a typed ``ItemDataString`` …; ``IsNull="Yes"`` is empty). A row is
the line its ItemGroupData starts on (its number among the file's ItemGroupData when the XML is on one
line), and each cell keeps the line of its ItemData.

Uploads come from outside: the file is parsed with :mod:`defusedxml` (no DTD, no entity, no external
reference: a DOCTYPE is refused before parsing, ``IMP-XML-DOCTYPE``), streamed (SAX, nothing but the
values is kept), and refused with one ``file`` finding past the upload limits — more ItemGroupData
than ``TRIALKIT_MAX_ROWS``, more ItemData than ``TRIALKIT_MAX_CELLS``, a value longer than
``TRIALKIT_MAX_STRING_LENGTH``, more distinct ItemOIDs than ``TRIALKIT_MAX_COLUMNS`` or elements nested
deeper than any ODM file goes.

:func:`plan_odm` maps each table to the form its ItemGroupOID (or FormOID) names
(:func:`trialkit.odm.study_oids`: declared in ``[odm]`` or derived, ``IG.AE``, ``IT.AE.AETERM``):
SUBJID is the SubjectKey, VISIT the StudyEventOID, SITEID the item if there is one, else the
SiteRef's LocationOID, else the site part of the subject number. Unknown OIDs are one
``MAP-ODM-OID`` finding each; ClinicalData of another StudyOID is refused (``MAP-ODM-STUDY``).
Every value's lineage is its XML path (``…/ItemGroupData[@ItemGroupOID='IG.VS']/ItemData[@ItemOID=
'IT.VS.WEIGHT']``) and line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.sax import SAXParseException
from xml.sax.handler import ContentHandler

import pandas as pd
from defusedxml import DefusedXmlException
from defusedxml import sax as safe_sax

from trialkit.findings import Category, Finding, Severity
from trialkit.importers.detect import FileRead, RawTable
from trialkit.importers.header import header_key
from trialkit.importers.limits import Limits, file_size_finding, limit_finding, xml_prolog_problem

KEYS = ("StudyOID", "MetaDataVersionOID", "SubjectKey", "LocationOID", "StudyEventOID", "StudyEventRepeatKey",
        "FormOID", "FormRepeatKey", "ItemGroupOID", "ItemGroupRepeatKey", "TransactionType")
MAX_DEPTH = 64


class _Refused(Exception):
    """A limit was passed while parsing: (code, limit name, measured, what)."""


def _local(name: str) -> str:
    return name.rsplit(":", 1)[-1]


class _Handler(ContentHandler):
    """Collects ItemGroupData rows (streamed; only keys and values are kept)."""

    def __init__(self, limits: Limits) -> None:
        super().__init__()
        self.limits = limits
        self.locator: Any = None
        self.depth = 0
        self.keys: dict[str, str] = {}
        self.row: dict[str, Any] | None = None
        self.rows: list[dict[str, Any]] = []
        self.cells = 0
        self.items: set[str] = set()
        self.typed: tuple[str, int] | None = None  # an ItemDataString & co: (ItemOID, line)
        self.text: list[str] = []
        self.clinical = False

    def setDocumentLocator(self, locator: Any) -> None:  # noqa: N802 - the SAX API
        self.locator = locator

    def _line(self) -> int:
        return int(self.locator.getLineNumber()) if self.locator is not None else 0

    def startElement(self, name: str, attrs: Any) -> None:  # noqa: N802 - the SAX API
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Refused("IMP-LIMIT-CELLS", "max_cells", self.depth, f"elements are nested {self.depth} deep")
        tag = _local(name)
        get = attrs.get
        if tag == "ClinicalData":
            self.clinical = True
            self.keys = {"StudyOID": get("StudyOID", ""), "MetaDataVersionOID": get("MetaDataVersionOID", "")}
        elif tag == "SubjectData":
            self.keys = {k: v for k, v in self.keys.items() if k in ("StudyOID", "MetaDataVersionOID")}
            self.keys.update(SubjectKey=get("SubjectKey", ""), LocationOID="")
        elif tag == "SiteRef":
            self.keys["LocationOID"] = get("LocationOID", "")
        elif tag == "StudyEventData":
            self.keys.update(StudyEventOID=get("StudyEventOID", ""), StudyEventRepeatKey=get("StudyEventRepeatKey", ""))
        elif tag == "FormData":
            self.keys.update(FormOID=get("FormOID", ""), FormRepeatKey=get("FormRepeatKey", ""))
        elif tag == "ItemGroupData":
            if len(self.rows) >= self.limits.max_rows:
                raise _Refused("IMP-LIMIT-ROWS", "max_rows", len(self.rows) + 1, "the file holds more ItemGroupData")
            self.row = {**self.keys, "ItemGroupOID": get("ItemGroupOID", ""),
                        "ItemGroupRepeatKey": get("ItemGroupRepeatKey", ""),
                        "TransactionType": get("TransactionType", ""), "\x00line": self._line(), "\x00items": {}}
        elif tag.startswith("ItemData") and self.row is not None:
            self.cells += 1
            if self.cells > self.limits.max_cells:
                raise _Refused("IMP-LIMIT-CELLS", "max_cells", self.cells, "the file holds more ItemData")
            oid = get("ItemOID", "")
            self.items.add(oid)
            if len(self.items) > self.limits.max_columns:
                raise _Refused("IMP-LIMIT-COLUMNS", "max_columns", len(self.items), "the file names more ItemOIDs")
            if tag == "ItemData":
                value = "" if get("IsNull", "") == "Yes" else get("Value", "")
                self._keep(oid, value, self._line())
            else:
                self.typed = (oid, self._line())
                self.text = []

    def characters(self, content: str) -> None:
        if self.typed is not None:
            self.text.append(content)
            if sum(len(t) for t in self.text) > self.limits.max_string_length:
                raise _Refused("IMP-LIMIT-STRING", "max_string_length", sum(len(t) for t in self.text),
                               f"ItemData {self.typed[0]!r} holds more characters")

    def _keep(self, oid: str, value: str, line: int) -> None:
        if len(value) > self.limits.max_string_length:
            raise _Refused("IMP-LIMIT-STRING", "max_string_length", len(value),
                           f"ItemData {oid!r} (line {line}) holds {len(value):,} characters")
        assert self.row is not None
        self.row["\x00items"].setdefault(oid, (value, line))

    def endElement(self, name: str) -> None:  # noqa: N802 - the SAX API
        self.depth -= 1
        tag = _local(name)
        if tag.startswith("ItemData") and tag != "ItemData" and self.typed is not None:
            self._keep(self.typed[0], "".join(self.text).strip(), self.typed[1])
            self.typed = None
        elif tag == "ItemGroupData" and self.row is not None:
            self.rows.append(self.row)
            self.row = None


def read_odm(path: str | Path, *, limits: Limits | None = None, version: str = "1.3") -> FileRead:
    """Read an ODM file's ClinicalData into one raw table per ItemGroupOID (see the module docstring)."""
    limits = limits or Limits.from_env()
    path = Path(path)
    result = FileRead(path=str(path), format="odm", encoding="utf-8", extra={"odm_version": version})
    too_large = file_size_finding(path, limits)
    if too_large is not None:
        result.findings.append(too_large)
        return result
    if version != "1.3":
        result.fail("IMP-FILE-FORMAT", f"{path}: CDISC ODM {version}, which trialkit does not read; export the "
                    "clinical data as ODM 1.3.2")
        return result
    with open(path, "rb") as handle:
        head = handle.read(limits.xml_head_bytes)
        complete = not handle.read(1)
    problem = xml_prolog_problem(head, limits, complete=complete)
    if problem:
        result.findings.append(limit_finding(path, "IMP-XML-DOCTYPE", limits, "max_entity_declarations",
                                             problem.split(" (")[0], problem, "ODM files never declare "
                                             "entities: export the file again from the site's system."))
        return result
    handler = _Handler(limits)
    try:
        safe_sax.parse(str(path), handler, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        result.findings.append(limit_finding(path, "IMP-XML-DOCTYPE", limits, "max_entity_declarations",
                                             type(exc).__name__, f"the XML declares a DTD or entities ({exc})",
                                             "ODM files never declare entities: export the file again."))
        return result
    except _Refused as exc:
        code, limit, measured, what = exc.args
        result.findings.append(limit_finding(path, code, limits, limit, measured, what,
                                             "Split the export (e.g. by site or by form)."))
        return result
    except SAXParseException as exc:
        result.fail("IMP-ODM-XML", f"{path}: not well-formed XML (line {exc.getLineNumber()}: {exc.getMessage()}); "
                    "export the ODM file again from the site's system", row=exc.getLineNumber())
        return result
    if not handler.clinical:
        result.fail("IMP-ODM-XML", f"{path}: an ODM file without ClinicalData (study metadata only?); export the "
                    "clinical data", severity=Severity.WARNING)
        return result
    lines = [r["\x00line"] for r in handler.rows]
    by_line = len(set(lines)) == len(lines) and all(lines)
    result.extra["rows_are"] = "lines" if by_line else "ItemGroupData numbers"
    groups: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for number, row in enumerate(handler.rows, start=1):
        groups.setdefault(row["ItemGroupOID"] or "(no ItemGroupOID)", []).append((row["\x00line"] if by_line
                                                                                  else number, row))
    for group, rows in groups.items():
        items = list(dict.fromkeys(oid for _, row in rows for oid in row["\x00items"]))
        index = pd.Index([r for r, _ in rows], dtype="int64")
        data = {key: [row.get(key, "") for _, row in rows] for key in KEYS}
        cells = {}
        for oid in items:
            data[oid] = [row["\x00items"].get(oid, ("", None))[0] for _, row in rows]
            if by_line:
                cells[oid] = pd.Series([row["\x00items"].get(oid, (None, None))[1] for _, row in rows], index=index,
                                       dtype="object")
        frame = pd.DataFrame(data, index=index, dtype="object")
        columns = [*KEYS, *items]
        table = RawTable(name=group, kind="dataset", columns=columns, values=frame[columns],
                         labels=[None] * len(columns), types=["text"] * len(columns))
        table.cells = cells
        result.tables.append(table)
    return result


def _path(row: pd.Series, item: str | None) -> str:
    """The XML path of an ItemGroupData (and of one of its ItemData)."""
    def step(tag: str, *keys: str) -> str:
        found = [f"@{k}='{row[k]}'" for k in keys if row.get(k)]
        return tag + (f"[{' and '.join(found)}]" if found else "")

    parts = ["/ODM", step("ClinicalData", "StudyOID"), step("SubjectData", "SubjectKey"),
             step("StudyEventData", "StudyEventOID", "StudyEventRepeatKey"), step("FormData", "FormOID", "FormRepeatKey"),
             step("ItemGroupData", "ItemGroupOID", "ItemGroupRepeatKey")]
    if item is not None:
        parts.append(f"ItemData[@ItemOID='{item}']")
    return "/".join(parts)


def plan_odm(read: FileRead, study: Any, *, path: str) -> dict[int, Any]:
    """The plan of each table of an ODM file (see the module docstring)."""
    from trialkit.importers.exports import TablePlan
    from trialkit.importers.mapping import Foreign, apply_spec
    from trialkit.odm import study_oids, subject_key_variables
    from trialkit.study.mappings import MappingSpec, SpecFile, VariableRule

    oids = study_oids(study)
    name = Path(path).name
    plans: dict[int, Any] = {}
    lines = read.extra.get("rows_are") == "lines"
    unit = "line" if lines else "ItemGroupData"
    studies = {str(v) for t in read.tables for v in t.values["StudyOID"].unique() if str(v)}
    foreign_study = sorted(s for s in studies if header_key(s) != header_key(oids.study))
    forms_read: list[str] = []
    for position, table in enumerate(read.tables):
        values = table.values
        if foreign_study:
            plan = TablePlan(kind="refused", label=f"ODM ClinicalData of study {foreign_study[0]}",
                             unread=list(table.columns), table=table)
            if not plans:
                plan.findings.append(Finding(
                    code="MAP-ODM-STUDY", severity=Severity.ERROR, category=Category.STRUCTURE, file=path,
                    value=foreign_study[0], expected=oids.study,
                    message=f"{name}: ODM ClinicalData of study {', '.join(foreign_study)}, not {oids.study}; nothing "
                            f"of it is imported: send this study's export, or declare its OID as [odm] study_oid"))
            plans[position] = plan
            continue
        form_oids = [str(v) for v in values["FormOID"].unique() if str(v)]
        code = oids.form_of_group(table.name, form_oids[0] if len(form_oids) == 1 else None)
        if code is None:
            plan = TablePlan(kind="refused", label=f"ODM item group {table.name} (not in {study.id})",
                             unread=list(table.columns), table=table)
            plan.findings.append(Finding(
                code="MAP-ODM-OID", severity=Severity.WARNING, category=Category.STRUCTURE, file=path,
                sheet=table.name, value=table.name, row=int(values.index[0]), evidence={"records": table.rows},
                message=f"{name}: ItemGroupOID {table.name!r} (FormOID {', '.join(form_oids) or '-'}) is no item "
                        f"group of {study.id}; its {table.rows} record(s) are not imported: declare it in [odm] of "
                        "study.toml or export with the study's OIDs (trialkit odm metadata)"))
            plans[position] = plan
            continue
        form = study.forms[code]
        plan = TablePlan(kind="odm", label=f"ODM item group {table.name} -> form {code}", table=table)
        removed = values["TransactionType"].astype(str).str.casefold() == "remove"
        if removed.any():
            plan.findings.append(Finding(
                code="MAP-ODM-REMOVE", severity=Severity.WARNING, category=Category.STRUCTURE, file=path,
                sheet=table.name, row=int(values.index[removed.to_numpy()][0]), evidence={"records": int(removed.sum())},
                message=f"{name}: {int(removed.sum())} ItemGroupData of {table.name} are transactions that remove "
                        "data (TransactionType=\"Remove\"); trialkit reads snapshots, so they are not imported: "
                        "send a snapshot export (FileType=\"Snapshot\") of the site's current data"))
            table = RawTable(name=table.name, kind=table.kind, columns=table.columns, values=values[~removed.to_numpy()],
                             labels=table.labels, types=table.types, cells=table.cells)
            values = table.values
        rules: dict[str, VariableRule] = {}
        ignore = [k for k in KEYS]
        skip = subject_key_variables(form, study)
        # ODM leaves out an item that has no value: the form's other items are empty, not missing columns.
        absent = [oids.items[(code, v.name)] for v in form.site_variables
                  if v.name not in skip and oids.items[(code, v.name)] not in table.columns]
        if absent:
            values = values.assign(**{oid: "" for oid in absent})
            table = RawTable(name=table.name, kind=table.kind, columns=[*table.columns, *absent], values=values,
                             labels=[*table.labels, *[None] * len(absent)], types=[*table.types, *["text"] * len(absent)],
                             cells=table.cells)
        names = set(form.variable_names)
        for column in table.columns[len(KEYS):]:
            variable = oids.item(column, code)
            if variable is None or variable in skip:
                count = int((values[column].astype(str) != "").sum())
                plan.findings.append(Finding(
                    code="MAP-ODM-OID", severity=Severity.WARNING, category=Category.STRUCTURE, file=path,
                    sheet=table.name, value=column, evidence={"values": count},
                    message=f"{name}: ItemOID {column!r} is no item of form {code} ({table.name}); its {count} "
                            "value(s) are not imported: declare it in [odm.items] of study.toml or export with the "
                            "study's OIDs"))
                ignore.append(column)
                continue
            rules[variable] = VariableRule(column=column)
        rules["SUBJID"] = VariableRule(column="SubjectKey")
        if "VISIT" in skip:
            rules["VISIT"] = VariableRule(column="StudyEventOID", recode={oid: v for v, oid in oids.events.items()})
            unknown = sorted({str(v) for v in values["StudyEventOID"].unique() if str(v) and oids.visit(str(v)) is None})
            for oid in unknown:
                hit = values["StudyEventOID"] == oid
                plan.findings.append(Finding(
                    code="MAP-ODM-OID", severity=Severity.WARNING, category=Category.STRUCTURE, file=path,
                    sheet=table.name, value=oid, row=int(values.index[hit.to_numpy()][0]),
                    evidence={"records": int(hit.sum())},
                    message=f"{name}: StudyEventOID {oid!r} is no visit of {study.id}; VISIT of its {int(hit.sum())} "
                            "record(s) stays the OID (a codelist error): declare it in [odm.events]"))
        foreign: dict[str, Foreign] = {}
        if "SITEID" in names and "SITEID" not in rules:
            if (values["LocationOID"].astype(str) != "").any():
                rules["SITEID"] = VariableRule(column="LocationOID")
            else:
                table = _site_from_subject(table, study)
                rules["SITEID"] = VariableRule(column="SITEID (from SubjectKey)")
                foreign["SITEID (from SubjectKey)"] = Foreign(file=path, sheet=table.name,
                                                              rows=pd.Series(table.values.index, index=table.values.index),
                                                              column="SubjectKey (the site part of the subject number)")
        spec = MappingSpec(name=f"odm:{table.name}", path=Path("odm"), sha256="", origin="engine",
                           spec=SpecFile(title=f"ODM item group {table.name}", form=code, variables=rules))
        paths = {column: pd.Series([_path(row, column if column not in KEYS else None)
                                    for _, row in table.values.iterrows()], index=table.values.index)
                 for column in table.columns if column not in ignore or column in ("SubjectKey", "StudyEventOID",
                                                                                   "LocationOID")}
        if lines:
            paths = {c: p + table.cells.get(c, pd.Series(dtype="object")).reindex(p.index).map(
                lambda n: f", line {int(n)}" if pd.notna(n) else "").where(lambda s: s.notna(), "")
                for c, p in paths.items()}
        applied = apply_spec(table, spec, study, file=path, foreign=foreign, cell_rows=table.cells,
                             cell_paths=paths, ignore=ignore, what=f"{name} (ODM {table.name})", report_values=False)
        plan.outputs.append(applied)
        plan.findings.extend(applied.findings)
        plan.mapping = "odm"
        plan.unread = [c for c in table.columns if c not in applied.used and c not in KEYS]
        for column, variable in applied.reads.items():
            plan.read_into.setdefault(column, f"{code}.{variable}")
        forms_read.append(f"{table.name} -> {code} ({len(values)} records)")
        plans[position] = plan
    if plans and not foreign_study:
        first = min(plans)
        plans[first].findings.insert(0, Finding(
            code="MAP-ODM", severity=Severity.INFO, category=Category.STRUCTURE, file=path,
            message=f"{name}: CDISC ODM ClinicalData read by the study's OIDs ({unit} numbers as rows): "
                    + (", ".join(forms_read) or "no item group of the study")))
    return plans


def _site_from_subject(table: RawTable, study: Any) -> RawTable:
    values = table.values.copy()
    values["SITEID (from SubjectKey)"] = values["SubjectKey"].map(lambda s: study.subject_site(str(s)) or "")
    return RawTable(name=table.name, kind=table.kind, columns=[*table.columns, "SITEID (from SubjectKey)"],
                    values=values, labels=[*table.labels, None], types=[*table.types, "text"], cells=table.cells)
