"""The study's CRF as a REDCap project: data dictionary, events, instrument-event mapping.

Academic sites often run REDCap. :func:`build_project` turns a study into the REDCap design that
``trialkit redcap dictionary`` writes and that :mod:`trialkit.importers.redcap` reads record exports
back through — one derivation, so an export of the project always maps back to the forms:

- one **instrument** per form (its code in lower case), the **record id** ``subjid`` (SUBJID) first in
  the first instrument, ``siteid`` once (a record's site), VISIT as the **event** (one per visit:
  ``<visit code>_arm_1``) when the study has visits;
- a **field** per variable the site types (derived ones are left out) named in lower case, prefixed
  with the form (``core_rash``) where two forms share a name; codelists as dropdowns with choices
  ``1, Decode | 2, Decode`` (the CRF codes in order), Y/N as ``yesno``, dates as ``date_ymd``,
  whole numbers as ``integer`` and numbers as ``number`` with the CRF's min and max (a number that may
  be typed as a limit, ``<1``, stays text), partial dates as text with their formats in the note;
- ``required`` as REDCap's required flag, and a conditional requirement ``required unless X = V`` /
  ``required if X = V`` as branching logic (``[x] <> '1'``) with the flag; other conditions are named
  in the field note (REDCap cannot express them);
- Y/N variables declared together in ``[redcap.checkboxes.NAME]`` as one checkbox field;
- forms that hold several records per subject (or per visit) as **repeating instruments**; forms
  without a visit on the first event.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import asdict, dataclass, field
from typing import Any

#: The 18 columns of a REDCap data dictionary, as REDCap itself names them.
DICTIONARY_COLUMNS = (
    "Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label",
    "Choices, Calculations, OR Slider Labels", "Field Note", "Text Validation Type OR Show Slider Number",
    "Text Validation Min", "Text Validation Max", "Identifier?", "Branching Logic (Show field only if...)",
    "Required Field?", "Custom Alignment", "Question Number (surveys only)", "Matrix Group Name",
    "Matrix Ranking?", "Field Annotation",
)
EVENT_COLUMNS = ("event_name", "arm_num", "day_offset", "offset_min", "offset_max", "unique_event_name",
                 "custom_event_label")
MAPPING_COLUMNS = ("arm_num", "unique_event_name", "form")
REPEATING_COLUMNS = ("event_name", "form_name", "custom_form_label")
RECORD_ID = "subjid"
SITE_FIELD = "siteid"
ARM = 1
_UNLESS = re.compile(r"\bunless\s+([A-Z][A-Z0-9]*)\s*=\s*([A-Za-z0-9_]+)\b")
_WHEN = re.compile(r"\b(?:if|when)\b[^=]*?\b([A-Z][A-Z0-9]*)\s*=\s*([A-Za-z0-9_]+)\b")


@dataclass
class Choice:
    """One choice of a dropdown or checkbox: REDCap's raw code, its label, and the CRF value."""

    raw: str
    label: str
    value: str  # the CRF code (dropdown), or the variable a box stands for (checkbox)


@dataclass
class Field:
    """One REDCap field and the CRF variable(s) it holds."""

    name: str
    form: str  # the CRF form code
    instrument: str
    field_type: str  # text, dropdown, yesno, checkbox
    label: str
    variables: list[str]
    choices: list[Choice] = field(default_factory=list)
    validation: str = ""
    minimum: str = ""
    maximum: str = ""
    required: bool = False
    branching: str = ""
    note: str = ""
    section: str = ""
    annotation: str = ""

    def row(self) -> list[str]:
        """The field as a data dictionary row (the 18 columns)."""
        choices = " | ".join(f"{c.raw}, {c.label}" for c in self.choices)
        return [self.name, self.instrument, self.section, self.field_type, self.label, choices, self.note,
                self.validation, self.minimum, self.maximum, "", self.branching, "y" if self.required else "", "",
                "", "", "", self.annotation]


@dataclass
class Event:
    """One REDCap event: a visit of the study."""

    visit: str
    name: str
    unique_name: str
    label: str
    day_offset: int
    offset_min: int
    offset_max: int


@dataclass
class Instrument:
    """One REDCap instrument: a CRF form, the events it is on and whether it repeats."""

    name: str
    form: str
    label: str
    repeating: bool
    events: list[str]  # unique event names (empty: a project without events)
    visit_form: bool  # the form's VISIT comes from the event


@dataclass
class Project:
    """A study as a REDCap project (see the module docstring)."""

    study_id: str
    fields: list[Field]
    instruments: list[Instrument]
    events: list[Event]

    @property
    def longitudinal(self) -> bool:
        """True when the project has events (the study has visits)."""
        return bool(self.events)

    def instrument(self, name: str) -> Instrument:
        """The instrument called ``name``."""
        return next(i for i in self.instruments if i.name == name)

    def fields_of(self, form: str) -> list[Field]:
        """The fields of one form's instrument (the record id and site field belong to the first)."""
        return [f for f in self.fields if f.form == form]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: fields, instruments, events."""
        return {"study": self.study_id, "record_id": RECORD_ID, "fields": [asdict(f) for f in self.fields],
                "instruments": [asdict(i) for i in self.instruments], "events": [asdict(e) for e in self.events]}


def _number(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


def field_names(study: Any) -> dict[tuple[str, str], str]:
    """(form, variable) -> REDCap field name: the name in lower case, with the form as a prefix where
    another form has a variable of the same name (SITEID, SUBJID and VISIT are the record's own)."""
    counts: dict[str, int] = {}
    for form in study.forms.values():
        for variable in form.site_variables:
            counts[variable.name] = counts.get(variable.name, 0) + 1
    names = {}
    for form in study.forms.values():
        for variable in form.site_variables:
            if variable.name == "SUBJID":
                names[(form.code, variable.name)] = RECORD_ID
            elif variable.name == "SITEID":
                names[(form.code, variable.name)] = SITE_FIELD
            elif counts[variable.name] > 1:
                names[(form.code, variable.name)] = f"{form.code}_{variable.name}".lower()
            else:
                names[(form.code, variable.name)] = variable.name.lower()
    return names


def event_name(visit: str) -> str:
    """The unique event name of a visit: ``V2`` -> ``v2_arm_1``."""
    return re.sub(r"[^a-z0-9_]", "_", visit.lower()) + f"_arm_{ARM}"


def _raw_code(study: Any, form: Any, name: str, value: str) -> str | None:
    """REDCap's raw code of a CRF value of variable ``name`` (yesno 1/0, a dropdown's number)."""
    if name not in form.variable_names:
        return None
    variable = form.variable(name)
    if variable.type == "yn":
        return {"Y": "1", "N": "0"}.get(value.upper())
    if variable.codelist and variable.codelist in study.codelists:
        codes = study.codelists[variable.codelist].codes
        return str(codes.index(value) + 1) if value in codes else None
    return None


def _branching(study: Any, form: Any, names: dict[tuple[str, str], str], condition: str | None) -> str:
    """REDCap branching logic for ``required unless X = V`` / ``required if X = V``, else ""."""
    if not condition:
        return ""
    for pattern, operator in ((_UNLESS, "<>"), (_WHEN, "=")):
        match = pattern.search(condition)
        if match is None:
            continue
        other, value = match.group(1), match.group(2)
        raw = _raw_code(study, form, other, value)
        if raw is None or (form.code, other) not in names:
            return ""
        return f"[{names[(form.code, other)]}] {operator} '{raw}'"
    return ""


def build_project(study: Any) -> Project:
    """The study as a REDCap project (see the module docstring)."""
    names = field_names(study)
    boxes = {}
    for box_name, box in study.definition.typed.redcap.checkboxes.items() if study.definition else ():
        for variable in box.variables:
            boxes[(box.form, variable)] = (box_name, box)
    visits = [v for v in study.visits.values()]
    events = [Event(visit=v.code, name=v.code, unique_name=event_name(v.code), label=v.label,
                    day_offset=v.target_day or 0,
                    offset_min=(v.target_day - v.window_lo) if None not in (v.target_day, v.window_lo) else 0,
                    offset_max=(v.window_hi - v.target_day) if None not in (v.target_day, v.window_hi) else 0)
              for v in visits]
    longitudinal = bool(events)
    schedule = study.schedule
    fields: list[Field] = []
    instruments: list[Instrument] = []
    first = True
    for form in study.forms.values():
        instrument = form.code.lower()
        visit_form = longitudinal and "VISIT" in form.variable_names and form.variable("VISIT").codelist == "VISIT"
        keys = [k for k in form.keys if k not in ("SUBJID", "VISIT" if visit_form else "")]
        if visit_form:
            planned = schedule.get(form.code, [v.code for v in visits if v.scheduled])
            on = [event_name(v.code) for v in visits if v.code in planned or not v.scheduled]
        else:
            on = [events[0].unique_name] if events else []
        instruments.append(Instrument(name=instrument, form=form.code, label=form.label, repeating=bool(keys),
                                      events=on, visit_form=visit_form))
        section = form.label
        done_boxes: set[str] = set()
        for variable in form.site_variables:
            name = names[(form.code, variable.name)]
            if variable.name in ("SUBJID", "SITEID") and not first:
                continue  # the record's own: the record id and the site field of the first instrument
            if variable.name == "VISIT" and visit_form:
                continue
            if (form.code, variable.name) in boxes:
                box_name, box = boxes[(form.code, variable.name)]
                if box_name in done_boxes:
                    continue
                done_boxes.add(box_name)
                choices = [Choice(raw=str(i), label=form.variable(v).label, value=v)
                           for i, v in enumerate(box.variables, start=1)]
                fields.append(Field(name=box_name, form=form.code, instrument=instrument, field_type="checkbox",
                                    label=box.label, variables=list(box.variables), choices=choices,
                                    section=section, annotation=f"CRF {form.code}." + "/".join(box.variables)))
                section = ""
                continue
            fields.append(_field(study, form, variable, name, instrument, section, names))
            section = ""
        if first:
            # the record id first, then the site
            ordered = sorted(fields, key=lambda f: (f.name != RECORD_ID, f.name != SITE_FIELD))
            ordered[0].section, ordered[1].section = form.label, ""
            fields = ordered
        first = False
    return Project(study_id=study.id, fields=fields, instruments=instruments, events=events)


def _field(study: Any, form: Any, variable: Any, name: str, instrument: str, section: str,
           names: dict[tuple[str, str], str]) -> Field:
    note = []
    kind, validation, minimum, maximum = "text", "", "", ""
    choices: list[Choice] = []
    if variable.type == "yn":
        kind = "yesno"
    elif variable.codelist and variable.codelist in study.codelists:
        kind = "dropdown"
        codelist = study.codelists[variable.codelist]
        choices = [Choice(raw=str(i), label=decode.replace("|", "/"), value=code)
                   for i, (code, decode) in enumerate(codelist.values, start=1)]
    elif variable.type == "date":
        validation = "date_ymd"
    elif variable.type in ("int", "num") and not variable.censored:
        validation = "integer" if variable.type == "int" else "number"
        minimum, maximum = _number(variable.min), _number(variable.max)
    elif variable.type == "pdate":
        note.append(", ".join(variable.pdate_formats or ("YYYY", "YYYY-MM", "YYYY-MM-DD")))
    if variable.censored:
        note.append("a number, or a limit such as <1 or >500")
    if variable.unit:
        note.append(variable.unit)
    branching = _branching(study, form, names, variable.required_if)
    if variable.required_if and not branching:
        note.append(variable.required_if)
    return Field(name=name, form=form.code, instrument=instrument, field_type=kind, label=variable.label,
                 variables=[variable.name], choices=choices, validation=validation, minimum=minimum, maximum=maximum,
                 required=variable.required or bool(branching), branching=branching, note="; ".join(note),
                 section=section, annotation=f"CRF {form.code}.{variable.name}")


def _csv(columns: tuple[str, ...], rows: list[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue()


def dictionary_csv(project: Project) -> str:
    """The REDCap data dictionary (the 18 columns, one row per field, the record id first)."""
    return _csv(DICTIONARY_COLUMNS, [f.row() for f in project.fields])


def events_csv(project: Project) -> str:
    """The events (REDCap's event import: name, arm, day offset and window, unique name, label)."""
    return _csv(EVENT_COLUMNS, [[e.name, ARM, e.day_offset, e.offset_min, e.offset_max, e.unique_name, e.label]
                                for e in project.events])


def instrument_events_csv(project: Project) -> str:
    """The instrument-event mapping (REDCap's import: arm, unique event name, instrument)."""
    rows = [[ARM, event, i.name] for e in project.events for i in project.instruments
            for event in [e.unique_name] if event in i.events]
    return _csv(MAPPING_COLUMNS, rows)


def repeating_csv(project: Project) -> str:
    """The repeating instruments (REDCap's import: event, instrument, custom label)."""
    rows = [[event, i.name, ""] for i in project.instruments if i.repeating for event in (i.events or [""])]
    return _csv(REPEATING_COLUMNS, rows)
