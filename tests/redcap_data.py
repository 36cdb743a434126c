"""Build a REDCap record export the way REDCap writes one, from the data dictionary trialkit exported
(test helper).

Only the dictionary CSV, the instrument-event mapping CSV and the repeating-instruments CSV are read
(as REDCap would import them); the rows follow REDCap's export rules: one row per record and event
holding the non-repeating instruments of that event, one row per instance of a repeating instrument
(``redcap_repeat_instrument``, ``redcap_repeat_instance``), checkbox choices as ``field___code`` columns,
``<instrument>_complete`` after each instrument's fields; *raw* (field names, codes, 1/0) or *with
labels* (field labels, choice labels, Yes/No, Checked/Unchecked, ``Complete?``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _choices(text: str) -> list[tuple[str, str]]:
    return [tuple(part.strip().split(", ", 1)) for part in text.split(" | ")] if text else []


def build_export(dictionary: Path, instrument_events: Path, repeating: Path, records: dict[str, list[dict]],
                 study: Any, *, labels: bool = False) -> str:
    """The CSV text of an export of ``records`` (form code -> CRF records with VISIT for visit forms)."""
    fields = read_csv(dictionary)
    mapping = read_csv(instrument_events)
    repeats = {(r["event_name"], r["form_name"]) for r in read_csv(repeating)}
    events = list(dict.fromkeys(r["unique_event_name"] for r in mapping))
    on_event = {e: [r["form"] for r in mapping if r["unique_event_name"] == e] for e in events}
    instruments = list(dict.fromkeys(f["Form Name"] for f in fields))
    record_id = fields[0]["Variable / Field Name"]
    by_instrument = {i: [f for f in fields if f["Form Name"] == i] for i in instruments}

    header: list[str] = [fields[0]["Field Label"] if labels else record_id]
    header += ["Event Name", "Repeat Instrument", "Repeat Instance"] if labels else \
        ["redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance"]
    columns: list[tuple[str, str, str | None]] = []  # (instrument, field, choice raw code)
    for instrument in instruments:
        for one in by_instrument[instrument]:
            if one["Variable / Field Name"] == record_id:
                continue
            if one["Field Type"] == "checkbox":
                for raw, label in _choices(one["Choices, Calculations, OR Slider Labels"]):
                    header.append(f"{one['Field Label']} (choice={label})" if labels
                                  else f"{one['Variable / Field Name']}___{raw}")
                    columns.append((instrument, one["Variable / Field Name"], raw))
            else:
                header.append(one["Field Label"] if labels else one["Variable / Field Name"])
                columns.append((instrument, one["Variable / Field Name"], None))
        header.append("Complete?" if labels else f"{instrument}_complete")
        columns.append((instrument, "\x00complete", None))
    info = {f["Variable / Field Name"]: f for f in fields}

    def variable_of(field: dict[str, str]) -> list[str]:
        return field["Field Annotation"].removeprefix("CRF ").split(".", 1)[1].split("/")

    def value(field: dict[str, str], record: dict, raw_code: str | None) -> str:
        names = variable_of(field)
        if field["Field Type"] == "checkbox":
            variable = names[int(raw_code) - 1]
            ticked = record.get(variable) == "Y"
            return ("Checked" if ticked else "Unchecked") if labels else ("1" if ticked else "0")
        item = record.get(names[0])
        if item is None or item == "":
            return ""
        if field["Field Type"] == "yesno":
            return {"Y": "Yes", "N": "No"}[item] if labels else {"Y": "1", "N": "0"}[item]
        if field["Field Type"] == "dropdown":
            form = study.forms[field["Field Annotation"].removeprefix("CRF ").split(".", 1)[0]]
            codelist = study.codelists[form.variable(names[0]).codelist]
            decode = dict(codelist.values)[item]
            raw = {label: code for code, label in _choices(field["Choices, Calculations, OR Slider Labels"])}[decode]
            return decode if labels else raw
        if isinstance(item, dt.date):
            return item.isoformat()
        return str(item)

    def row(subject: str, event: str, instrument: str | None, instance: str, data: dict[str, dict]) -> list[str]:
        out = [subject, event, instrument or "", instance]
        for owner, name, raw_code in columns:
            record = data.get(owner)
            if record is None:
                out.append("")
            elif name == "\x00complete":
                out.append("Complete" if labels else "2")
            else:
                out.append(value(info[name], record, raw_code))
        return out

    subjects = list(dict.fromkeys(r["SUBJID"] for rows in records.values() for r in rows))
    lines = []
    visit_of = {e: e.rsplit("_arm_", 1)[0].upper() for e in events}
    for subject in subjects:
        for event in events:
            plain: dict[str, dict] = {}
            repeated: list[tuple[str, dict]] = []
            for instrument in on_event[event]:
                form = instrument.upper()
                rows = [r for r in records.get(form, []) if r["SUBJID"] == subject
                        and ("VISIT" not in r or r["VISIT"] == visit_of[event])]
                if form in ("SITEID",):
                    continue
                if not rows:
                    continue
                if (event, instrument) in repeats:
                    repeated.extend((instrument, r) for r in rows)
                else:
                    plain[instrument] = rows[0]
            label_event = f"{visit_of[event]} (Arm 1: Arm 1)" if labels else event
            if plain:
                lines.append(row(subject, label_event, None, "", plain))
            counts: dict[str, int] = {}
            for instrument, record in repeated:
                counts[instrument] = counts.get(instrument, 0) + 1
                shown = instrument.title() if labels else instrument
                lines.append(row(subject, label_event, shown, str(counts[instrument]), {instrument: record}))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(lines)
    return buffer.getvalue()
