"""REDCap record exports read back through the study's REDCap project (:mod:`trialkit.redcap`).

A REDCap export is one CSV for every instrument: a row per record and event (and per instance of a
repeating instrument), ``redcap_event_name``, ``redcap_repeat_instrument`` and
``redcap_repeat_instance``, each form's fields and its ``<instrument>_complete`` status; a checkbox
field is one column per choice (``aescrit___1``). It comes *raw* (field names as the header, choice
codes and 1/0 as values) or *with labels* (field labels as the header, choice labels, ``Yes``/``No``,
``Checked``/``Unchecked``). :func:`plan_redcap` recognises both and reads each instrument's rows as
its form:

- the rows of a repeating instrument are those naming it in ``redcap_repeat_instrument``; the rows of
  another instrument are those without one, on an event the instrument is on, that hold a value of it;
- SUBJID is the record id, SITEID the record's site field (on the first event's row, given to every
  row of the record), VISIT the event; dropdown codes and labels, yes/no and checkboxes become the CRF
  codes (a checkbox field with no box ticked is unanswered: its variables stay empty);
- a header of labels is matched to the project's fields in the dictionary's order, so two fields with
  the same label (``Start date`` of PT, CM and AE) are still told apart;
- rows on an event or naming an instrument the project does not have are one ``MAP-REDCAP-EVENT``
  finding per name; columns the project does not have are ``MAP-COLUMN-UNMAPPED``.

Every value keeps its lineage: the CSV line and the export's own column name.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from trialkit.findings import Category, Finding, Severity
from trialkit.importers.detect import RawTable
from trialkit.importers.header import header_key
from trialkit.importers.mapping import Foreign, apply_spec
from trialkit.study.mappings import MappingSpec, SpecFile, VariableRule

EVENT, INSTRUMENT, INSTANCE, GROUP = ("redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance",
                                      "redcap_data_access_group")
LABELS = {EVENT: "Event Name", INSTRUMENT: "Repeat Instrument", INSTANCE: "Repeat Instance",
          GROUP: "Data Access Group"}
META = (EVENT, INSTRUMENT, INSTANCE, GROUP, "redcap_survey_identifier")
CHECKED = {"1": "Y", "0": "N", "checked": "Y", "unchecked": "N"}
YESNO = {"1": "Y", "0": "N", "yes": "Y", "no": "N"}


def _base(name: str) -> str:
    """A header without the ``.1`` the reader gives a repeated name."""
    return re.sub(r"\.\d+$", "", str(name))


def _expected(project: Any, labels: bool) -> list[tuple[str, str, str | None]]:
    """The columns of an export of the whole project, in order: ``(header, role, field or None)``;
    role is ``meta``, ``field``, ``box:<raw>`` or ``complete:<instrument>``."""
    from trialkit.redcap import RECORD_ID

    out: list[tuple[str, str, str | None]] = []
    record = next(f for f in project.fields if f.name == RECORD_ID)
    out.append((record.label if labels else RECORD_ID, "field", RECORD_ID))
    for meta in (EVENT, INSTRUMENT, INSTANCE, GROUP):
        out.append((LABELS[meta] if labels else meta, "meta", meta))
    for instrument in project.instruments:
        for one in project.fields_of(instrument.form):
            if one.name == RECORD_ID:
                continue
            if one.field_type == "checkbox":
                for choice in one.choices:
                    header = f"{one.label} (choice={choice.label})" if labels else f"{one.name}___{choice.raw}"
                    out.append((header, f"box:{choice.raw}", one.name))
            else:
                out.append((one.label if labels else one.name, "field", one.name))
        out.append(("Complete?" if labels else f"{instrument.name}_complete", f"complete:{instrument.name}", None))
    return out


def _align(columns: list[str], expected: list[tuple[str, str, str | None]]) -> dict[str, tuple[str, str | None]]:
    """Each column of the file matched to the next expected column with the same header (in order)."""
    found: dict[str, tuple[str, str | None]] = {}
    position = 0
    for column in columns:
        key = header_key(_base(column))
        for at in range(position, len(expected)):
            if header_key(expected[at][0]) == key:
                found[column] = (expected[at][1], expected[at][2])
                position = at + 1
                break
    return found


def recognise(table: RawTable, project: Any) -> tuple[bool, dict[str, tuple[str, str | None]]] | None:
    """``(labels, column -> (role, field))`` when the table is an export of the project, else None."""
    from trialkit.redcap import RECORD_ID

    keys = {header_key(_base(c)) for c in table.columns}
    record = next(f for f in project.fields if f.name == RECORD_ID)
    for labels in (False, True):
        first = RECORD_ID if not labels else record.label
        if header_key(first) not in keys:
            continue
        marks = [LABELS[m] if labels else m for m in (EVENT, INSTRUMENT, INSTANCE)]
        completes = ["Complete?"] if labels else [f"{i.name}_complete" for i in project.instruments]
        if not any(header_key(m) in keys for m in [*marks, *completes]):
            continue
        aligned = _align(list(table.columns), _expected(project, labels))
        if sum(1 for role, _ in aligned.values() if role == "field") >= 2:
            return labels, aligned
    return None


def plan_redcap(table: RawTable, study: Any, *, path: str) -> Any:
    """The plan of a REDCap export of the study's project, or None when the table is not one."""
    from trialkit.importers.exports import TablePlan
    from trialkit.importers.normalise import to_text
    from trialkit.redcap import RECORD_ID, SITE_FIELD, build_project

    keys = {header_key(_base(c)) for c in table.columns}
    marks = {header_key(m) for m in (*META, *LABELS.values(), "Complete?")}
    if not keys & marks and not any(k.endswith("complete") for k in keys):
        return None  # no REDCap column: not an export (checked before the project is built)
    project = build_project(study)
    found = recognise(table, project)
    if found is None:
        return None
    labels, aligned = found
    name = Path(path).name
    what = f"{name} (REDCap export{' with labels' if labels else ''})"
    column_of: dict[tuple[str, str], str] = {}  # (role, field) -> column
    for column, (role, field) in aligned.items():
        column_of.setdefault((role, field or ""), column)
    values = table.values.copy()
    text = {c: to_text(values[c]).str.strip() for c in values.columns}
    blank = pd.Series("", index=values.index, dtype="str")
    event = text.get(column_of.get(("meta", EVENT), ""), blank)
    repeat = text.get(column_of.get(("meta", INSTRUMENT), ""), blank)
    record = text[column_of[("field", RECORD_ID)]]
    plan = TablePlan(kind="redcap", label=f"REDCap export{' with labels' if labels else ''} of {study.id}'s "
                     "project", table=table)

    # The record's site: its site field wherever it is filled, for every row of the record.
    foreign: dict[str, Foreign] = {}
    site_column = column_of.get(("field", SITE_FIELD))
    if site_column is not None:
        filled = text[site_column] != ""
        first = pd.DataFrame({"record": record[filled], "row": values.index[filled.to_numpy()]}) \
            .drop_duplicates("record").set_index("record")["row"]
        rows = record.map(first)
        values[site_column] = rows.map(lambda r: values.at[r, site_column] if pd.notna(r) else None)
        foreign[site_column] = Foreign(file=path, sheet=table.name, rows=rows, column=site_column)

    # Checkboxes: with no box ticked the question is unanswered.
    for field in (f for f in project.fields if f.field_type == "checkbox"):
        boxes = [column_of[(f"box:{c.raw}", field.name)] for c in field.choices if (f"box:{c.raw}", field.name) in column_of]
        if not boxes:
            continue
        ticked = pd.concat([text[b].str.casefold().map(CHECKED).eq("Y") for b in boxes], axis=1).any(axis=1)
        for box in boxes:
            values[box] = values[box].where(ticked, "")

    events = {e.unique_name.casefold(): e for e in project.events}
    for e in project.events:
        events.setdefault(e.name.casefold(), e)
        events.setdefault(f"{e.name} (arm 1: arm 1)".casefold(), e)
        events.setdefault(e.label.casefold(), e)
    instruments = {}
    for instrument in project.instruments:
        for key in (instrument.name, instrument.name.title(), instrument.label, instrument.form):
            instruments.setdefault(key.casefold(), instrument)
    unknown_events = event[(event != "") & ~event.str.casefold().isin(list(events))] if project.longitudinal else blank[:0]
    unknown_repeats = repeat[(repeat != "") & ~repeat.str.casefold().isin(list(instruments))]
    for kind, series in (("event", unknown_events), ("repeating instrument", unknown_repeats)):
        for value in pd.unique(series):
            hit = series == value
            plan.findings.append(Finding(
                code="MAP-REDCAP-EVENT", severity=Severity.ERROR, category=Category.STRUCTURE, file=path,
                sheet=table.name, value=str(value), row=int(series.index[hit.to_numpy()][0]),
                evidence={"rows": int(hit.sum())},
                message=f"{what}: {int(hit.sum())} row(s) name the {kind} {value!r}, which {study.id}'s REDCap "
                        "project does not have; they are not imported: export from the project built with "
                        "`trialkit redcap dictionary`"))
    forms_read = []
    for instrument in project.instruments:
        fields = [f for f in project.fields_of(instrument.form) if f.name not in (RECORD_ID, SITE_FIELD)]
        own = [column_of[(role, f.name)] for f in fields for role in (["field"] if f.field_type != "checkbox" else
               [f"box:{c.raw}" for c in f.choices]) if (role, f.name) in column_of]
        if instrument.repeating:
            rows = repeat.str.casefold().map(lambda v, i=instrument: instruments.get(v) is i).astype(bool)
        else:
            rows = repeat == ""
            if project.longitudinal:
                on = {e.casefold() for e in instrument.events}
                rows &= event.str.casefold().map(lambda v, on=on: events[v].unique_name in on if v in events
                                                 else False).astype(bool)
            rows &= pd.concat([text[c] != "" for c in own], axis=1).any(axis=1) if own else False
        if not rows.any():
            continue
        part = RawTable(name=table.name, kind=table.kind, columns=list(table.columns),
                        values=values.loc[rows.to_numpy()], labels=table.labels, types=table.types,
                        header_row=table.header_row, errors=[e for e in table.errors if e[1] in own])
        spec = _spec(study, project, instrument, fields, column_of, labels, events)
        keep = {*own, column_of[("field", RECORD_ID)], *([site_column] if site_column else [])}
        if ("meta", EVENT) in column_of and instrument.visit_form:
            keep.add(column_of[("meta", EVENT)])
        ignore = [c for c in table.columns if c not in keep]
        applied = apply_spec(part, spec, study, file=path, foreign={k: v for k, v in foreign.items() if k in keep},
                             ignore=ignore, what=f"{what}, instrument {instrument.name}", report_values=False)
        plan.outputs.append(applied)
        plan.findings.extend(applied.findings)
        forms_read.append(f"{instrument.name} ({len(part.values)})")
        for column, variable in applied.reads.items():
            plan.read_into.setdefault(column, f"{instrument.form}.{variable}")
    known = set(aligned)
    read = {c for a in plan.outputs for c in a.used}
    plan.unread = [c for c in table.columns if c not in read]
    for column in table.columns:
        if column in known:
            continue
        count = int((text[column] != "").sum())
        if count:
            plan.findings.append(Finding(
                code="MAP-COLUMN-UNMAPPED", severity=Severity.WARNING, category=Category.STRUCTURE, file=path,
                sheet=table.name, value=column, evidence={"values": count},
                row=int(values.index[(text[column] != "").to_numpy()][0]),
                message=f"{what}: column {column!r} is not a field of {study.id}'s REDCap project: its {count} "
                        "value(s) are not imported; export from the project built with `trialkit redcap "
                        "dictionary`"))
    plan.findings.insert(0, Finding(
        code="MAP-REDCAP", severity=Severity.INFO, category=Category.STRUCTURE, file=path, sheet=table.name,
        message=f"{what}: {table.rows} row(s) read through {study.id}'s REDCap project: "
                + (", ".join(forms_read) or "no instrument holds a value")
                + "; choice codes, yes/no and checkboxes read as the CRF's codes (each cell in the change log)"))
    plan.mapping = "redcap"
    return plan


def _spec(study: Any, project: Any, instrument: Any, fields: list[Any], column_of: dict[tuple[str, str], str],
          labels: bool, events: dict[str, Any]) -> MappingSpec:
    """The mapping of one instrument's columns to its form (built from the project, never typed)."""
    from trialkit.redcap import RECORD_ID, SITE_FIELD

    form = study.forms[instrument.form]
    rules: dict[str, VariableRule] = {}
    if ("field", RECORD_ID) in column_of and "SUBJID" in form.variable_names:
        rules["SUBJID"] = VariableRule(column=column_of[("field", RECORD_ID)])
    if ("field", SITE_FIELD) in column_of and "SITEID" in form.variable_names:
        site = next(f for f in project.fields if f.name == SITE_FIELD)
        rules["SITEID"] = VariableRule(column=column_of[("field", SITE_FIELD)], recode=_choices(site, labels))
    if instrument.visit_form and ("meta", EVENT) in column_of:
        rules["VISIT"] = VariableRule(column=column_of[("meta", EVENT)],
                                      recode={key: e.visit for key, e in events.items()})
    for field in fields:
        if field.field_type == "checkbox":
            for choice in field.choices:
                column = column_of.get((f"box:{choice.raw}", field.name))
                if column is not None:
                    rules[choice.value] = VariableRule(column=column, recode=CHECKED)
            continue
        column = column_of.get(("field", field.name))
        if column is None:
            continue
        recode = YESNO if field.field_type == "yesno" else _choices(field, labels)
        rules[field.variables[0]] = VariableRule(column=column, recode=recode)
    spec = SpecFile(title=f"REDCap instrument {instrument.name}", form=form.code, variables=rules)
    return MappingSpec(name=f"redcap:{instrument.name}", path=Path("redcap"), sha256="", spec=spec, origin="engine")


def _choices(field: Any, labels: bool) -> dict[str, str]:
    if field.field_type != "dropdown":
        return {}
    return {(c.label if labels else c.raw): c.value for c in field.choices}
