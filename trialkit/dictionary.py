"""The data dictionary: every form, variable, codelist and visit of a study as tables.

:func:`build_dictionary` turns a :class:`~trialkit.study.Study` into four tables (lists of
row dicts) — ``forms``, ``variables``, ``codelists``, ``visits`` — and :func:`write_dictionary`
renders them as an Excel workbook, CSV, JSON or a Markdown document. Output is deterministic:
the same study gives the same text (and, for xlsx, the same bytes with the same openpyxl).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import IO, Any

from trialkit import __version__
from trialkit.study import Study

FORMATS = ("xlsx", "csv", "json", "md")
TABLES = ("forms", "variables", "codelists", "visits", "mappings")
SHEET_OF_TABLE = {"forms": "Forms", "variables": "Variables", "codelists": "Codelists", "visits": "Visits",
                  "mappings": "Mappings"}

VARIABLE_COLUMNS = (
    "form", "order", "name", "label", "type", "unit", "unit_var", "codelist", "min", "max",
    "decimals", "required", "required_if", "rule", "derived", "description",
)


def build_dictionary(study: Study) -> dict[str, list[dict[str, Any]]]:
    """The study's data dictionary as five tables of row dicts (``mappings``: what each of the study's
    mapping specs reads into each variable).

    Example::

        >>> from trialkit.study import load_study
        >>> tables = build_dictionary(load_study())
        >>> tables["forms"][0]["code"], tables["variables"][2]["name"]
        ('DM', 'ICDAT')
    """
    forms = [
        {
            "code": form.code,
            "label": form.label,
            "structure": form.structure,
            "keys": " + ".join(form.keys),
            "n_variables": len(form.variables),
        }
        for form in study.forms.values()
    ]
    variables = []
    for form in study.forms.values():
        for order, var in enumerate(form.variables, start=1):
            variables.append(
                {
                    "form": form.code,
                    "order": order,
                    "name": var.name,
                    "label": var.label,
                    "type": var.type,
                    "unit": var.unit,
                    "unit_var": var.unit_var,
                    "codelist": var.codelist,
                    "min": var.min,
                    "max": var.max,
                    "decimals": var.decimals,
                    "required": var.required,
                    "required_if": var.required_if,
                    "rule": var.rule_text,
                    "derived": var.derived,
                    "description": var.description,
                }
            )
    codelists = [
        {"codelist": name, "code": code, "decode": decode}
        for name, codelist in study.codelists.items()
        for code, decode in codelist.values
    ]
    visits = [
        {
            "num": visit.num,
            "code": visit.code,
            "label": visit.label,
            "anchor": visit.anchor,
            "target_day": visit.target_day,
            "window_lo": visit.window_lo,
            "window_hi": visit.window_hi,
            "scheduled": visit.scheduled,
        }
        for visit in study.visits.values()
    ]
    mappings = [row for spec in study.mappings.values() for row in spec.rows()]
    return {"forms": forms, "variables": variables, "codelists": codelists, "visits": visits, "mappings": mappings}


def dictionary_document(study: Study) -> dict[str, Any]:
    """The JSON document: the study header (id, version, schema hash) and the four tables."""
    return {
        "study": {
            "id": study.id,
            "title": study.title,
            "protocol_version": study.protocol_version,
            "schema_hash": study.schema_hash,
            "version_stamp": study.version_stamp,
        },
        **build_dictionary(study),
    }


def render_dictionary(study: Study, fmt: str) -> str:
    """The dictionary as text: ``json``, ``md``, or ``csv`` (the Variables table)."""
    if fmt == "json":
        return json.dumps(dictionary_document(study), indent=2, ensure_ascii=False) + "\n"
    if fmt == "md":
        return _markdown(study)
    if fmt == "csv":
        return _csv_text(build_dictionary(study)["variables"])
    raise ValueError(f"cannot render format {fmt!r} as text; use json, md or csv")


def write_dictionary(study: Study, fmt: str, out: str | Path | IO[str]) -> Path | None:
    """Write the dictionary in ``fmt`` (``xlsx``, ``csv``, ``json`` or ``md``) to ``out``.

    ``out`` is a file path, or a text stream for ``csv``/``json``/``md``. For ``csv``, a path that
    is an existing folder (or has no suffix) receives ``forms.csv``, ``variables.csv``,
    ``codelists.csv`` and ``visits.csv``; a file path or a stream receives the Variables table.
    Returns the path written (the folder for a CSV set), or None for a stream.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown dictionary format {fmt!r}; use one of {', '.join(FORMATS)}")
    if not isinstance(out, str | Path):
        if fmt == "xlsx":
            raise ValueError("the xlsx dictionary needs a file path, not a stream")
        out.write(render_dictionary(study, fmt))
        return None
    path = Path(out)
    if fmt == "xlsx":
        _write_xlsx(study, path)
        return path
    if fmt == "csv" and (path.is_dir() or not path.suffix):
        path.mkdir(parents=True, exist_ok=True)
        for name, rows in build_dictionary(study).items():
            (path / f"{name}.csv").write_text(_csv_text(rows), encoding="utf-8", newline="")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_dictionary(study, fmt), encoding="utf-8", newline="")
    return path


# ------------------------------------------------------------------------------------------------
# Renderers


def _csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _plain(v) for k, v in row.items()})
    return buffer.getvalue()


def _plain(value: Any) -> Any:
    """A cell value for CSV/xlsx/Markdown: None as empty, booleans as Y/N, whole floats as ints."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _md_cell(value: Any) -> str:
    text = str(_plain(value))
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _md_table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in rows]
    return lines


def _markdown(study: Study) -> str:
    tables = build_dictionary(study)
    out = [
        f"# Data dictionary — {study.id}",
        "",
        f"{study.title}",
        "",
        f"- Protocol version: {study.protocol_version}",
        f"- Schema hash: `{study.schema_hash}`",
        f"- Template version stamp: `{study.version_stamp}`",
        "",
        "Generated from the study definition by `trialkit dictionary -f md -o docs/data-dictionary.md`;"
        " do not edit by hand.",
        "",
        "Types: `char` text, `int` whole number, `num` decimal number, `date` full date, `pdate` "
        "partial date (YYYY, YYYY-MM or YYYY-MM-DD), `yn` Y/N. Missing-value codes a site may type "
        "in any field: " + ", ".join(f"`{c}` ({m})" for c, m in study.missing_codes.items()) + ".",
        "",
        "## Forms",
        "",
    ]
    out += _md_table(
        ["Form", "Label", "One record is", "Keys", "Variables"],
        [[f["code"], f["label"], f["structure"], f["keys"], f["n_variables"]] for f in tables["forms"]],
    )
    for form in study.forms.values():
        out += ["", f"## {form.code} — {form.label}", "",
                f"Record: {form.structure}. Keys: {', '.join(form.keys)}.", ""]
        rows = [
            [
                v["order"], f"`{v['name']}`", v["label"], v["type"],
                v["unit"] or "", v["codelist"] or "", v["rule"], v["description"] or "",
            ]
            for v in tables["variables"]
            if v["form"] == form.code
        ]
        out += _md_table(["#", "Variable", "Label", "Type", "Unit", "Codelist", "Rules", "Notes"], rows)
    out += ["", "## Codelists"]
    for name, codelist in study.codelists.items():
        out += ["", f"### {name} — {codelist.label}", ""]
        out += _md_table(["Code", "Decode"], [[f"`{c}`", d] for c, d in codelist.values])
    out += ["", "## Visits", ""]
    out += _md_table(
        ["Num", "Visit", "Label", "Anchor", "Target day", "Window from", "Window to", "Scheduled"],
        [
            [v["num"], v["code"], v["label"], v["anchor"], v["target_day"], v["window_lo"],
             v["window_hi"], v["scheduled"]]
            for v in tables["visits"]
        ],
    )
    if study.mappings:
        out += ["", "## Mappings", "",
                "How a site system's own export is read (mapping specs in `mappings/`; SDTM domains through the "
                "specs that name one). A column named like a variable needs no rule."]
        for spec in study.mappings.values():
            domain = f" (SDTM {spec.sdtm_domain})" if spec.sdtm_domain else ""
            out += ["", f"### {spec.name} — {spec.title}{domain}", "", f"Reads form {spec.form}.", ""]
            out += _md_table(["Variable", "Source", "Rule"],
                             [[f"`{r['variable']}`", r["source"], r["rule"]] for r in spec.rows()])
    return "\n".join(out) + "\n"


def _write_xlsx(study: Study, path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    from trialkit.templates import FIXED_TIMESTAMP, save_deterministic

    tables = build_dictionary(study)
    wb = Workbook()
    wb.remove(wb.active)
    header_font = Font(bold=True)
    header_fill = PatternFill("solid", fgColor="FFDDEBF7")
    for table in TABLES:
        ws = wb.create_sheet(SHEET_OF_TABLE[table])
        rows = tables[table]
        columns = list(rows[0]) if rows else []
        ws.append(columns)
        for row in rows:
            ws.append([_plain(row[c]) if row[c] is not None else None for c in columns])
        for col, name in enumerate(columns, start=1):
            cell = ws.cell(row=1, column=col)
            cell.font = header_font
            cell.fill = header_fill
            widest = max([len(name), *(len(str(_plain(r[name]))) for r in rows)]) + 2
            ws.column_dimensions[get_column_letter(col)].width = min(60, max(8, widest))
            if widest > 60:
                for (c,) in ws.iter_rows(min_row=2, min_col=col, max_col=col):
                    c.alignment = Alignment(wrap_text=True, vertical="top")
        ws.freeze_panes = "A2"
        if columns:
            ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(rows) + 1}"
    props = wb.properties
    props.title = f"{study.id} data dictionary"
    props.subject = study.version_stamp
    props.creator = f"trialkit {__version__}"
    props.created = FIXED_TIMESTAMP
    props.modified = FIXED_TIMESTAMP
    save_deterministic(wb, path)
