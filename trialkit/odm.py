"""The study in CDISC ODM 1.3.2: its OIDs and its forms as a MetaDataVersion.

Commercial EDC systems (OpenClinica, Medidata Rave, REDCap and others) exchange CDISC ODM. Every
object of the study has an OID, derived from its code unless ``[odm]`` in ``study.toml`` declares
another one (:class:`~trialkit.study.definition.OdmDef`):

==================  =====================  ==========================================
object              derived OID            declared in
==================  =====================  ==========================================
study               the study id           ``[odm] study_oid``
MetaDataVersion     ``MDV.<version>``      ``[odm] metadata_version_oid``
visit (event)       ``SE.<VISIT>``         ``[odm.events] VISIT = "..."``
form                ``F.<FORM>``           ``[odm.forms] FORM = "..."``
item group          ``IG.<FORM>``          ``[odm.item_groups] FORM = "..."``
variable (item)     ``IT.<FORM>.<VAR>``    ``[odm.items] "FORM.VAR" = "..."``
codelist            ``CL.<NAME>``          (derived only)
==================  =====================  ==========================================

:func:`metadata_xml` writes the study's forms as an ODM 1.3.2 ``MetaDataVersion`` (events per visit,
a form per CRF form with one item group, an item per variable a site types with its type, length,
range checks and codelist, the form's keys as key sequences), valid against the ODM 1.3.2 schema.
SUBJID is the ODM ``SubjectKey`` and a visit form's VISIT the ``StudyEventOID``, so neither is an item.
:mod:`trialkit.importers.odm` reads ClinicalData back through the same OIDs.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from trialkit import __version__

NAMESPACE = "http://www.cdisc.org/ns/odm/v1.3"
_DATATYPE = {"char": "text", "yn": "text", "int": "integer", "num": "float", "date": "date", "pdate": "partialDate"}


@dataclass
class Oids:
    """Every OID of a study, and the reverse look-ups a reader needs."""

    study: str
    metadata_version: str
    events: dict[str, str]
    forms: dict[str, str]
    item_groups: dict[str, str]
    items: dict[tuple[str, str], str]
    codelists: dict[str, str]
    by_oid: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_oid = {}
        for visit, oid in self.events.items():
            self.by_oid.setdefault(("event", oid), visit)
        for form, oid in self.forms.items():
            self.by_oid.setdefault(("form", oid), form)
        for form, oid in self.item_groups.items():
            self.by_oid.setdefault(("group", oid), form)
        for key, oid in self.items.items():
            self.by_oid.setdefault(("item", oid), key)

    def visit(self, oid: str) -> str | None:
        """The visit code of a StudyEventOID."""
        return self.by_oid.get(("event", oid))

    def form_of_group(self, group_oid: str, form_oid: str | None = None) -> str | None:
        """The form of an ItemGroupOID (or, failing that, of its FormOID)."""
        return self.by_oid.get(("group", group_oid)) or (self.by_oid.get(("form", form_oid)) if form_oid else None)

    def item(self, oid: str, form: str) -> str | None:
        """The variable of ``form`` an ItemOID names (``IT.AE.AETERM``; a declared OID too)."""
        found = self.by_oid.get(("item", oid))
        return found[1] if found is not None and found[0] == form else None


def subject_key_variables(form: Any, study: Any) -> set[str]:
    """Variables that are not items: SUBJID (the SubjectKey) and a visit form's VISIT (the event)."""
    out = {"SUBJID"}
    if study.visits and "VISIT" in form.variable_names and form.variable("VISIT").codelist == "VISIT":
        out.add("VISIT")
    return out


def study_oids(study: Any) -> Oids:
    """The study's OIDs: declared in ``[odm]``, else derived from the codes (module docstring)."""
    declared = study.definition.typed.odm if study.definition is not None else None
    events = {code: (declared.events.get(code) if declared else None) or f"SE.{code}" for code in study.visits}
    forms = {code: (declared.forms.get(code) if declared else None) or f"F.{code}" for code in study.forms}
    groups = {code: (declared.item_groups.get(code) if declared else None) or f"IG.{code}" for code in study.forms}
    items = {}
    for form in study.forms.values():
        for variable in form.site_variables:
            key = f"{form.code}.{variable.name}"
            items[(form.code, variable.name)] = (declared.items.get(key) if declared else None) or f"IT.{key}"
    codelists = {name: f"CL.{name}" for name in study.codelists}
    codelists["YN"] = codelists.get("YN", "CL.YN")
    return Oids(study=(declared.study_oid if declared else None) or study.id,
                metadata_version=(declared.metadata_version_oid if declared else None)
                or f"MDV.{study.protocol_version}",
                events=events, forms=forms, item_groups=groups, items=items, codelists=codelists)


def event_forms(study: Any) -> dict[str, list[str]]:
    """visit -> the forms collected at it: a visit form at its scheduled visits (and at unscheduled
    ones), any other form at the first visit."""
    visits = list(study.visits.values())
    out: dict[str, list[str]] = {v.code: [] for v in visits}
    if not visits:
        return out
    for form in study.forms.values():
        if "VISIT" in subject_key_variables(form, study):
            planned = study.schedule.get(form.code, [v.code for v in visits if v.scheduled])
            for visit in visits:
                if visit.code in planned or not visit.scheduled:
                    out[visit.code].append(form.code)
        else:
            out[visits[0].code].append(form.code)
    return out


def _repeating(form: Any, study: Any) -> bool:
    return bool([k for k in form.keys if k not in subject_key_variables(form, study)])


def _length(variable: Any, study: Any) -> int | None:
    if variable.type in ("yn",):
        return 1
    if variable.type == "char":
        if variable.codelist and variable.codelist in study.codelists:
            return max(1, *(len(c) for c in study.codelists[variable.codelist].codes))
        return 200
    if variable.type == "int":
        return 10
    if variable.type == "num":
        return 12
    return None


def _text(value: Any) -> str:
    return escape(str(value))


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def metadata_xml(study: Any, *, created: dt.datetime | None = None) -> str:
    """The study's forms as an ODM 1.3.2 document with one MetaDataVersion (see the module docstring).

    ``created`` sets ``CreationDateTime`` (default: now, UTC); the same study and time give the same text.
    """
    oids = study_oids(study)
    created = created or dt.datetime.now(dt.UTC).replace(microsecond=0)
    stamp = created.isoformat()
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<ODM xmlns="{NAMESPACE}" ODMVersion="1.3.2" FileType="Snapshot" '
             f'FileOID={quoteattr("ODM." + study.id + "." + study.protocol_version)} '
             f'CreationDateTime="{stamp}" Originator="trialkit" SourceSystem="trialkit" '
             f'SourceSystemVersion={quoteattr(__version__)}>',
             f'  <Study OID={quoteattr(oids.study)}>',
             "    <GlobalVariables>",
             f"      <StudyName>{_text(study.id)}</StudyName>",
             f"      <StudyDescription>{_text(study.title)}</StudyDescription>",
             f"      <ProtocolName>{_text(study.id)} protocol {_text(study.protocol_version)}</ProtocolName>",
             "    </GlobalVariables>",
             f'    <MetaDataVersion OID={quoteattr(oids.metadata_version)} '
             f'Name={quoteattr(f"{study.id} protocol {study.protocol_version}")}>']
    collected = event_forms(study)
    if study.visits:
        lines.append("      <Protocol>")
        for order, visit in enumerate(study.visits.values(), start=1):
            lines.append(f'        <StudyEventRef StudyEventOID={quoteattr(oids.events[visit.code])} '
                         f'OrderNumber="{order}" Mandatory="{"Yes" if visit.scheduled else "No"}"/>')
        lines.append("      </Protocol>")
        for visit in study.visits.values():
            kind = "Scheduled" if visit.scheduled else "Unscheduled"
            lines.append(f'      <StudyEventDef OID={quoteattr(oids.events[visit.code])} Name={quoteattr(visit.label)} '
                         f'Repeating="{"No" if visit.scheduled else "Yes"}" Type="{kind}">')
            for order, code in enumerate(collected[visit.code], start=1):
                lines.append(f'        <FormRef FormOID={quoteattr(oids.forms[code])} OrderNumber="{order}" '
                             'Mandatory="No"/>')
            lines.append("      </StudyEventDef>")
    for form in study.forms.values():
        lines.append(f'      <FormDef OID={quoteattr(oids.forms[form.code])} Name={quoteattr(form.label)} Repeating="No">')
        lines.append(f'        <ItemGroupRef ItemGroupOID={quoteattr(oids.item_groups[form.code])} Mandatory="Yes"/>')
        lines.append("      </FormDef>")
    for form in study.forms.values():
        skip = subject_key_variables(form, study)
        sas = f" SASDatasetName={quoteattr(form.code)}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,7}", form.code) else ""
        lines.append(f'      <ItemGroupDef OID={quoteattr(oids.item_groups[form.code])} Name={quoteattr(form.label)} '
                     f'Repeating="{"Yes" if _repeating(form, study) else "No"}"{sas}>')
        order = 0
        for variable in form.site_variables:
            if variable.name in skip:
                continue
            order += 1
            key = ""
            if variable.name in form.keys:
                key = f' KeySequence="{[k for k in form.keys if k not in skip].index(variable.name) + 1}"'
            lines.append(f'        <ItemRef ItemOID={quoteattr(oids.items[(form.code, variable.name)])} '
                         f'OrderNumber="{order}" Mandatory="{"Yes" if variable.required else "No"}"{key}/>')
        lines.append("      </ItemGroupDef>")
    used_codelists: list[str] = []
    for form in study.forms.values():
        skip = subject_key_variables(form, study)
        for variable in form.site_variables:
            if variable.name in skip:
                continue
            attrs = [f'OID={quoteattr(oids.items[(form.code, variable.name)])}', f"Name={quoteattr(variable.name)}",
                     f'DataType="{_DATATYPE[variable.type]}"']
            length = _length(variable, study)
            if length is not None:
                attrs.append(f'Length="{length}"')
            if variable.type == "num" and variable.decimals is not None:
                attrs.append(f'SignificantDigits="{variable.decimals}"')
            attrs.append(f"SASFieldName={quoteattr(variable.name)}")
            lines.append(f"      <ItemDef {' '.join(attrs)}>")
            if variable.description:
                lines.append(f'        <Description><TranslatedText xml:lang="en">{_text(variable.description)}'
                             "</TranslatedText></Description>")
            lines.append(f'        <Question><TranslatedText xml:lang="en">{_text(variable.label)}</TranslatedText>'
                         "</Question>")
            if variable.type in ("int", "num") and not variable.censored:
                for comparator, limit in (("GE", variable.min), ("LE", variable.max)):
                    if limit is not None:
                        lines.append(f'        <RangeCheck Comparator="{comparator}" SoftHard="Hard">'
                                     f"<CheckValue>{_number(limit)}</CheckValue></RangeCheck>")
            codelist = variable.codelist or ("YN" if variable.type == "yn" else None)
            if codelist:
                lines.append(f"        <CodeListRef CodeListOID={quoteattr(oids.codelists[codelist])}/>")
                if codelist not in used_codelists:
                    used_codelists.append(codelist)
            lines.append("      </ItemDef>")
    for name in used_codelists:
        values = study.codelists[name].values if name in study.codelists else (("Y", "Yes"), ("N", "No"))
        label = study.codelists[name].label if name in study.codelists else "Yes / No"
        lines.append(f'      <CodeList OID={quoteattr(oids.codelists[name])} Name={quoteattr(label)} DataType="text">')
        for code, decode in values:
            lines.append(f"        <CodeListItem CodedValue={quoteattr(code)}><Decode><TranslatedText "
                         f'xml:lang="en">{_text(decode)}</TranslatedText></Decode></CodeListItem>')
        lines.append("      </CodeList>")
    lines += ["    </MetaDataVersion>", "  </Study>", "</ODM>"]
    return "\n".join(lines) + "\n"
