"""Write CDISC ODM 1.3.2 ClinicalData from CRF records, as an EDC system exports it (test helper).

OIDs are the study's (``trialkit.odm.study_oids``): a SubjectData per subject with its SiteRef, a
StudyEventData per visit (visit forms; other forms at the first visit), a FormData and an
ItemGroupData per record (with ItemGroupRepeatKey for forms of several records), an ItemData per
value. ``one_line=True`` writes the whole document on one line, as many systems do.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from xml.sax.saxutils import quoteattr


def clinical_data(study: Any, records: dict[str, list[dict]], *, study_oid: str | None = None,
                  one_line: bool = False, extra_items: dict[str, str] | None = None) -> str:
    from trialkit.odm import study_oids, subject_key_variables

    oids = study_oids(study)
    first_visit = next(iter(study.visits))
    subjects = list(dict.fromkeys(r["SUBJID"] for rows in records.values() for r in rows))
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3" ODMVersion="1.3.2" FileType="Snapshot" '
             'FileOID="TEST" CreationDateTime="2024-05-01T10:00:00">',
             f'<ClinicalData StudyOID={quoteattr(study_oid or oids.study)} MetaDataVersionOID="{oids.metadata_version}">']
    for subject in subjects:
        site = next(r["SITEID"] for rows in records.values() for r in rows if r["SUBJID"] == subject)
        lines.append(f"<SubjectData SubjectKey={quoteattr(subject)}>")
        lines.append(f"<SiteRef LocationOID={quoteattr(site)}/>")
        by_event: dict[str, list[tuple[str, dict]]] = {}
        for code, rows in records.items():
            form = study.forms[code]
            visit_form = "VISIT" in subject_key_variables(form, study)
            for row in rows:
                if row["SUBJID"] == subject:
                    by_event.setdefault(row["VISIT"] if visit_form else first_visit, []).append((code, row))
        for visit in study.visits:
            if visit not in by_event:
                continue
            lines.append(f'<StudyEventData StudyEventOID="{oids.events[visit]}">')
            counts: dict[str, int] = {}
            for code, row in by_event[visit]:
                form = study.forms[code]
                skip = subject_key_variables(form, study)
                counts[code] = counts.get(code, 0) + 1
                lines.append(f'<FormData FormOID="{oids.forms[code]}">')
                lines.append(f'<ItemGroupData ItemGroupOID="{oids.item_groups[code]}" '
                             f'ItemGroupRepeatKey="{counts[code]}">')
                for variable in form.site_variables:
                    if variable.name in skip or row.get(variable.name) in (None, ""):
                        continue
                    value = row[variable.name]
                    if isinstance(value, dt.date):
                        value = value.isoformat()
                    elif isinstance(value, float) and value.is_integer() and variable.type == "int":
                        value = int(value)
                    lines.append(f'<ItemData ItemOID="{oids.items[(code, variable.name)]}" Value={quoteattr(str(value))}/>')
                for oid, value in (extra_items or {}).items():
                    if oid.startswith(f"IT.{code}."):
                        lines.append(f'<ItemData ItemOID="{oid}" Value={quoteattr(value)}/>')
                lines.append("</ItemGroupData>")
                lines.append("</FormData>")
            lines.append("</StudyEventData>")
        lines.append("</SubjectData>")
    lines += ["</ClinicalData>", "</ODM>"]
    return ("" if one_line else "\n").join(lines) + "\n"
