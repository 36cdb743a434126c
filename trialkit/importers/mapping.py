"""Apply a mapping spec: a site system's export table becomes a table of one form, with lineage.

:func:`apply_spec` takes a raw table (a sheet, dataset or CSV as read) and a
:class:`~trialkit.study.mappings.MappingSpec` and returns an :class:`Applied`: a form-shaped
:class:`~trialkit.importers.detect.RawTable` (columns are CRF variables, the index is the row of the
site's file each record starts on) that the normaliser then reads like any upload, plus

- ``originals`` — the site's own text of every cell the mapping changed (a recoded value, a date
  read with a pattern, a pivoted value), so ``FormData.raw`` keeps the value as the site's file has
  it and the privacy checks look at what was sent;
- ``changes`` — one row per changed cell (``map:recode``, ``map:iso8601``, ``map:date``,
  ``map:constant``, ``map:join``, ``map:time``, ``map:status``), added to ``FormData.changes``;
- ``sources`` — a :class:`CellSources`: for every (record, variable) the file, row and original
  column (or ODM XML path) the value came from; :func:`relocate` moves findings there, so a query
  about a pivoted WEIGHT names the row of the weight in the site's long file and its column;
- findings, one per column and never one per row: columns the spec does not map
  (``MAP-COLUMN-UNMAPPED``), rows a filter left out (``MAP-FILTERED``), tests a pivot does not know
  (``MAP-PIVOT-TEST``), two values for one cell (``MAP-PIVOT-DUPLICATE``, ``MAP-PIVOT-CONFLICT``),
  a unit the variable does not take (``MAP-UNIT``), and one info finding per variable and rule
  (``MAP-VALUE``).

A column named like a CRF variable (or its label) that the spec does not mention is read as that
variable, as in a template; a spec lists only what differs. Nothing here raises for bad data.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from trialkit.findings import Category, Finding, Severity
from trialkit.importers.base import CHANGE_COLUMNS
from trialkit.importers.detect import RawTable
from trialkit.importers.header import header_key
from trialkit.study.mappings import ISO8601, MappingSpec, pivot_by

SOURCE_KEY = "source"  # the evidence key a relocated finding carries

_ISO = re.compile(
    r"^(?P<y>\d{4}|-)(?:-(?P<m>\d{2}|-)(?:-(?P<d>\d{2}|-))?)?"
    r"(?:T(?P<H>\d{2}|-)(?::(?P<M>\d{2}|-)(?::(?P<S>\d{2})(?:[.,]\d+)?)?)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?$")


# ------------------------------------------------------------------------------------------------
# Where each value came from


@dataclass
class CellSources:
    """Where every cell of a mapped table came from.

    ``records`` are the record rows (the lineage ``ROW`` of each record, the row its first source
    row has in the file); ``cells[variable]`` gives, per record, the source row, the source column
    (an ODM item: its XML path in ``paths``), and the file and sheet when they are not the
    record's own (a SUPP-- value comes from its own file).
    """

    file: str
    sheet: str
    mapping: str
    records: np.ndarray
    cells: dict[str, dict[str, Any]] = field(default_factory=dict)
    form: str | None = None
    _position: dict[int, int] | None = field(default=None, repr=False)

    def add(self, variable: str, rows: Any, columns: Any, *, file: str | None = None,
            sheet: str | None = None, paths: Any = None) -> None:
        """Record the source of one variable: ``rows``/``columns``/``paths`` per record (or one value)."""
        self.cells[variable] = {"rows": rows, "columns": columns, "file": file, "sheet": sheet, "paths": paths}

    def locate(self, row: int, variable: str | None) -> dict[str, Any] | None:
        """The source of the cell ``variable`` of the record on ``row``, or None when not known."""
        if variable is None or variable not in self.cells:
            return None
        if self._position is None:
            self._position = {int(r): i for i, r in enumerate(self.records)}
        position = self._position.get(int(row))
        if position is None:
            return None
        cell = self.cells[variable]

        def at(value: Any) -> Any:
            if isinstance(value, np.ndarray | pd.Series | list):
                item = value.iloc[position] if isinstance(value, pd.Series) else value[position]
                return None if item is None or (isinstance(item, float) and item != item) else item
            return value

        source_row = at(cell["rows"])
        return {"file": cell["file"] or self.file, "sheet": cell["sheet"] or self.sheet,
                "row": int(source_row) if source_row is not None else int(row),
                "column": at(cell["columns"]), "path": at(cell["paths"]), "mapping": self.mapping}

    def renamed(self, files: Mapping[str, str]) -> CellSources:
        """The same sources with file names replaced (a re-import names the archived upload)."""
        copy = CellSources(file=files.get(self.file, self.file), sheet=self.sheet, mapping=self.mapping,
                           records=self.records, form=self.form)
        for variable, cell in self.cells.items():
            copy.cells[variable] = {**cell, "file": files.get(cell["file"], cell["file"]) if cell["file"] else None}
        return copy


def relocate(findings: list[Finding], sources: Iterable[CellSources]) -> list[Finding]:
    """Findings on mapped cells moved to the site's own file: the source row, sheet and file, the
    original column (or ODM path) in ``evidence["source"]`` and named in the message. Idempotent."""
    table = {(s.file, s.sheet, s.form): s for s in sources}
    if not table:
        return findings
    for finding in findings:
        if finding.row is None or (finding.evidence or {}).get(SOURCE_KEY):
            continue
        source = table.get((finding.file, finding.sheet, finding.form))
        if source is None:
            continue
        where = source.locate(finding.row, finding.variable)
        if where is None:
            continue
        column = where["column"]
        finding.evidence = {**(finding.evidence or {}), SOURCE_KEY: {k: v for k, v in where.items() if v is not None}}
        if where["row"] != finding.row:
            finding.message = finding.message.replace(f"(row {finding.row})", f"(row {where['row']})")
        finding.row = where["row"]
        finding.file = where["file"]
        finding.sheet = where["sheet"]
        if where.get("path"):
            finding.message += f" (in the file: {where['path']})"
        elif column and column != finding.variable:
            finding.message += f" (the site's column {column})"
    return findings


# ------------------------------------------------------------------------------------------------
# Dates and times as sites' systems write them


def iso_parts(text: str) -> tuple[str, str] | None:
    """``(date, time)`` of an ISO 8601 date or date-time as CDISC writes them, or None.

    The date keeps its known leading parts (``2003-12``, ``2003``; ``2003---15`` has no month, so
    only the year is known); the time is ``hh:mm`` or ``hh:mm:ss`` ("" when none).

    >>> iso_parts("2003-12-15T13:14"), iso_parts("2003-12"), iso_parts("15/12/2003")
    (('2003-12-15', '13:14'), ('2003-12', ''), None)
    """
    match = _ISO.match(text.strip())
    if match is None or match.group("y") == "-":
        return None
    parts = [match.group("y")]
    for key in ("m", "d"):
        value = match.group(key)
        if value is None or value == "-":
            break
        parts.append(value)
    time = []
    for key in ("H", "M", "S"):
        value = match.group(key)
        if value is None or value == "-":
            break
        time.append(value)
    return "-".join(parts), ":".join(time) if len(time) >= 2 else ""


def _pattern_precision(pattern: str) -> int:
    directives = set(re.findall(r"%(.)", pattern))
    if directives & {"d", "j"}:
        return 3
    if directives & {"m", "b", "B"}:
        return 2
    return 1


def _date_value(value: Any, rule: str | None, part: str | None) -> str | None:
    """The date (or, with part = time, the time) of one source value as ISO text, or None when the
    value is not one (it is then left as typed, and the normaliser reports it)."""
    if isinstance(value, dt.datetime | pd.Timestamp):
        if pd.isna(value):
            return None
        return value.strftime("%H:%M:%S") if part == "time" else value.strftime("%Y-%m-%d")
    if isinstance(value, dt.date):
        return None if part == "time" else value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S") if part == "time" else None
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if rule and rule != ISO8601:
        try:
            parsed = dt.datetime.strptime(text, rule)
        except ValueError:
            return None
        if part == "time":
            return parsed.strftime("%H:%M")
        return parsed.strftime(("%Y", "%Y-%m", "%Y-%m-%d")[_pattern_precision(rule) - 1])
    found = iso_parts(text)
    if found is None:
        return None
    return found[1] if part == "time" else found[0]


# ------------------------------------------------------------------------------------------------
# Applying a spec


@dataclass
class Foreign:
    """A column merged into a table from another file (SDTM SUPP-- qualifiers): per record of the
    table, the row of that file the value came from."""

    file: str
    sheet: str
    rows: pd.Series  # index: the table's rows; values: the source rows
    column: str  # how the source names it, e.g. "QVAL (QNAM = AESI)"


@dataclass
class Applied:
    """A spec applied to one table: the form-shaped table and everything the reader needs with it."""

    form: str
    mapping: str
    table: RawTable | None
    originals: dict[str, pd.Series] = field(default_factory=dict)
    changes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["record", *CHANGE_COLUMNS[1:]]))
    sources: CellSources | None = None
    used: set[str] = field(default_factory=set)
    reads: dict[str, str] = field(default_factory=dict)  # source column -> the variable it is read into
    absent: dict[str, list[str]] = field(default_factory=dict)  # variable -> the source columns it lacks
    findings: list[Finding] = field(default_factory=list)


def _text(values: pd.Series) -> pd.Series:
    from trialkit.importers.normalise import to_text

    return to_text(values).str.strip()


def _finding(code: str, severity: Severity, message: str, *, file: str, sheet: str, form: str,
             category: Category = Category.STRUCTURE, **kw: Any) -> Finding:
    return Finding(code=code, severity=severity, category=category, message=message, file=file, sheet=sheet,
                   form=form, **kw)


class _Columns:
    """Source columns looked up by name ignoring case, spaces and punctuation."""

    def __init__(self, table: RawTable) -> None:
        self.table = table
        self.by_key: dict[str, str] = {}
        for column in table.columns:
            self.by_key.setdefault(header_key(column), column)

    def get(self, name: str) -> str | None:
        if name in self.table.values.columns:
            return name
        return self.by_key.get(header_key(name))


def apply_spec(table: RawTable, mapping: MappingSpec, study: Any, *, file: str,
               foreign: Mapping[str, Foreign] | None = None, cell_rows: Mapping[str, pd.Series] | None = None,
               cell_paths: Mapping[str, pd.Series] | None = None, ignore: Iterable[str] = (),
               what: str | None = None, report_values: bool = True) -> Applied:
    """Read ``table`` through ``mapping`` into a table of the spec's form (see the module docstring).

    ``foreign`` names columns merged from another file; ``cell_rows``/``cell_paths`` give, per
    column, the line and XML path of each cell when a row of the table is not one line of the file
    (ODM); ``ignore`` adds columns that are not reported as unmapped (SDTM identifiers); ``what``
    describes the table in messages (default: ``table NAME``); ``report_values=False`` leaves out the
    ``MAP-VALUE`` findings (a REDCap or ODM export's codes are its format, not a site's choice; the
    change log still has every cell).
    """
    form = study.forms[mapping.form]
    spec = mapping.spec
    sheet = table.name
    where = {"file": file, "sheet": sheet, "form": form.code}
    what = what or f"table {table.name!r}"
    foreign = dict(foreign or {})
    cell_rows = dict(cell_rows or {})
    cell_paths = dict(cell_paths or {})
    out = Applied(form=form.code, mapping=mapping.name, table=None)
    columns = _Columns(table)
    values = table.values
    used: set[str] = set()

    # -- filter -----------------------------------------------------------------------------------
    keep = pd.Series(True, index=values.index)
    for name, allowed in spec.filter.items():
        column = columns.get(name)
        if column is None:
            out.findings.append(_finding(
                "MAP-SOURCE-MISSING", Severity.WARNING, f"{what}: mapping {mapping.name} keeps only rows whose "
                f"{name} is {', '.join(allowed)}, but the file has no column {name}; every row is read: check "
                "that the file holds only such rows, or export the column", variable=name, **where))
            continue
        used.add(column)
        text = _text(values[column]).str.casefold()
        keep &= text.isin([a.strip().casefold() for a in allowed])
    if not keep.all():
        dropped = values.index[~keep.to_numpy()]
        if len(dropped) and spec.filter:
            seen = sorted({str(v) for name in spec.filter if columns.get(name)
                           for v in _text(values.loc[dropped, columns.get(name)]).unique()})[:8]
            out.findings.append(_finding(
                "MAP-FILTERED", Severity.INFO, f"{what}: {len(dropped)} row(s) left out by the filter of "
                f"mapping {mapping.name} ({'; '.join(f'{k} in {v}' for k, v in spec.filter.items())}); their "
                f"values: {', '.join(seen) or 'empty'}", row=int(dropped[0]), evidence={"rows": len(dropped)},
                **where))
        values = values.loc[keep.to_numpy()]

    # -- pivot (long to wide) or one record per row ------------------------------------------------
    from trialkit.importers.normalise import unit_key

    pivot_values: dict[str, pd.Series] = {}  # variable -> value per record
    pivot_rows: dict[str, pd.Series] = {}  # variable -> source row per record
    pivot_columns: dict[str, str] = {}
    display: dict[str, str] = {}  # variable -> how to name its source column in messages
    originals: dict[str, pd.Series] = {}
    changes: list[pd.DataFrame] = []
    source_rows: dict[str, pd.Series] = {}  # column -> per record, the row its value came from (pivot)
    pivot_conflicts: dict[str, tuple[int, int]] = {}
    if spec.pivot is not None:
        pivot = spec.pivot
        needed = {"test": pivot.test, "value": pivot.value}
        by = pivot_by(mapping, form)
        found = {role: columns.get(name) for role, name in needed.items()}
        found_by = [columns.get(name) for name in by]
        lacking = [name for role, name in needed.items() if found[role] is None]
        lacking += [name for name, got in zip(by, found_by, strict=True) if got is None]
        if lacking:
            out.findings.append(_finding(
                "MAP-SOURCE-MISSING", Severity.ERROR, f"{what}: mapping {mapping.name} reads one row per test "
                f"and needs the column(s) {', '.join(lacking)}, which the file does not have; nothing of it is "
                "imported: export them or correct the spec's [pivot]", **where))
            out.used = used
            return out
        test_col, value_col = found["test"], found["value"]
        unit_col = columns.get(pivot.unit) if pivot.unit else None
        status_col = columns.get(pivot.status) if pivot.status else None
        used.update(c for c in (test_col, value_col, unit_col, status_col, *found_by) if c)
        key = pd.Series([""] * len(values), index=values.index, dtype="object")
        for column in found_by:
            key = key + "\x1f" + _text(values[column]).astype("object")
        codes, _ = pd.factorize(key)
        rows = values.index.to_numpy()
        records = pd.Series(rows, index=values.index).groupby(codes).transform("min")
        record_index = pd.Index(pd.unique(records.to_numpy()), dtype="int64")
        tests = _text(values[test_col])
        test_key = tests.str.casefold()
        rules = pivot.test_rules()
        known_keys = {code.strip().casefold(): code for code in rules}
        unknown = test_key[~test_key.isin(list(known_keys)) & (test_key != "")]
        for code in pd.unique(unknown):
            hit = test_key == code
            out.findings.append(_finding(
                "MAP-PIVOT-TEST", Severity.WARNING, f"{what}: {pivot.test} = {tests[hit].iloc[0]!r} is not a test "
                f"mapping {mapping.name} reads: its {int(hit.sum())} value(s) are not imported; add it to "
                "[pivot.tests] if the form collects it", value=str(tests[hit].iloc[0]), variable=pivot.test,
                row=int(values.index[hit.to_numpy()][0]), evidence={"values": int(hit.sum())}, **where))
        missing_map = {k.strip().casefold(): v for k, v in pivot.missing.items()}
        for key_text, code in known_keys.items():
            test = rules[code]
            variable = form.variable(test.variable)
            sel = (test_key == key_text).to_numpy()
            column = columns.get(test.value) if test.value else value_col
            if test.value and column is None:
                out.findings.append(_finding(
                    "MAP-SOURCE-MISSING", Severity.ERROR, f"{what}: mapping {mapping.name} reads {test.variable} "
                    f"from column {test.value}, which the file does not have", variable=test.variable, **where))
                continue
            used.add(column)
            part = values.loc[sel]
            if part.empty:
                continue
            record_of = records[sel]
            duplicated = record_of.duplicated(keep="first")
            if duplicated.any():
                first_dup = int(part.index[duplicated.to_numpy()][0])
                out.findings.append(_finding(
                    "MAP-PIVOT-DUPLICATE", Severity.ERROR, f"{what}: {int(duplicated.sum())} record(s) have "
                    f"{pivot.test} = {code!r} more than once; only the first value is read into {test.variable}: "
                    "keep one row per test and record", variable=test.variable, row=first_dup,
                    evidence={"records": int(duplicated.sum())}, **where))
            part = part.loc[~duplicated.to_numpy()]
            record_of = record_of[~duplicated.to_numpy()]
            cells = part[column].set_axis(record_of.to_numpy())
            texts = _text(part[column]).set_axis(record_of.to_numpy())
            if status_col is not None and missing_map:
                status = _text(part[status_col]).str.casefold().map(missing_map).set_axis(record_of.to_numpy())
                not_done = status.notna() & (texts == "")
                if not_done.any():
                    cells = cells.astype("object").where(~not_done, status)
                    status_text = _text(part[status_col]).set_axis(record_of.to_numpy())
                    changes.append(_change_rows(record_of.to_numpy()[not_done.to_numpy()], test.variable,
                                                status_text[not_done], status[not_done], "map:status"))
                    originals[test.variable] = status_text.where(not_done)
            pivot_values[test.variable] = cells
            pivot_rows[test.variable] = pd.Series(part.index.to_numpy(), index=record_of.to_numpy())
            pivot_columns[test.variable] = column
            display[test.variable] = f"{column} where {test_col} = {tests[sel].iloc[0]}"
            if unit_col is None:
                continue
            units = _text(part[unit_col]).set_axis(record_of.to_numpy())
            if variable.unit_var:
                pivot_values[variable.unit_var] = units
                pivot_rows[variable.unit_var] = pivot_rows[test.variable]
                pivot_columns[variable.unit_var] = unit_col
                display[variable.unit_var] = f"{unit_col} where {test_col} = {tests[sel].iloc[0]}"
            else:
                accepted = {unit_key(u) for u in [*test.units, *([variable.unit] if variable.unit else [])]}
                odd = (units != "") & ~units.map(unit_key).isin(accepted)
                if accepted and odd.any():
                    first = units[odd].index[0]
                    out.findings.append(_finding(
                        "MAP-UNIT", Severity.ERROR, f"{what}: {int(odd.sum())} {test.variable} value(s) are in "
                        f"{units[odd].iloc[0]!r}, not in {variable.unit or ', '.join(test.units)}; they are read "
                        f"as numbers in {variable.unit or test.units[0]}: convert them, or list the unit in "
                        f"[pivot.tests] if it is the same", variable=test.variable, value=str(units[odd].iloc[0]),
                        expected=variable.unit or ", ".join(test.units),
                        row=int(pivot_rows[test.variable].loc[first]), category=Category.CODELIST,
                        evidence={"values": int(odd.sum())}, **where))
        # Every other column: the record's first non-empty value, and one finding per column whose
        # rows disagree within a record (the record is the group's first row).
        wide: dict[str, pd.Series] = {}
        dated = {c: r for r in spec.variables.values() if r.column is not None and (r.date or r.part)
                 for c in (columns.get(n) for n in r.columns) if c}
        for column in values.columns:
            if column in (test_col, value_col, unit_col, status_col):
                continue
            text = _text(values[column])
            compared = text
            if column in dated:  # rows of one record may differ in the time of day only
                rule = dated[column]
                converted = _map_distinct(values[column], _date_value, rule.date or ISO8601, rule.part)
                compared = converted.where(converted.notna(), text)
            filled = (text != "").to_numpy()
            frame = pd.DataFrame({"record": records.to_numpy(), "row": values.index.to_numpy(),
                                  "text": compared.to_numpy()})[filled]
            first = frame.drop_duplicates("record")
            wide[column] = values[column].loc[first["row"].to_numpy()].set_axis(first["record"].to_numpy())
            source_rows[column] = pd.Series(first["row"].to_numpy(), index=first["record"].to_numpy())
            spread = frame.groupby("record")["text"].nunique()
            if (spread > 1).any() and column not in found_by:
                pivot_conflicts[column] = (int((spread > 1).sum()), int(spread[spread > 1].index[0]))
        work = pd.DataFrame({c: wide[c].reindex(record_index) if c in wide else None
                             for c in values.columns if c not in (test_col, value_col, unit_col, status_col)},
                            index=record_index)
        source_rows = {c: s.reindex(record_index) for c, s in source_rows.items()}
    else:
        work = values

    # -- variables ----------------------------------------------------------------------------------
    data: dict[str, pd.Series] = {}
    where_rows: dict[str, Any] = {}
    where_columns: dict[str, Any] = {}
    where_files: dict[str, tuple[str | None, str | None]] = {}
    explicit = {c for rule in spec.variables.values() for c in (columns.get(n) for n in rule.columns) if c}
    taken: set[str] = set()  # columns read as a variable of the same name

    def rows_of(column: str) -> Any:
        if column in foreign:
            return foreign[column].rows.reindex(work.index).to_numpy()
        if column in cell_rows:
            return cell_rows[column].reindex(work.index).to_numpy()
        if column in source_rows:
            return source_rows[column].to_numpy()
        return None

    def log(variable: str, changed: pd.Series, original: pd.Series, value: pd.Series, rule: str) -> None:
        if not changed.any():
            return
        changes.append(_change_rows(work.index.to_numpy()[changed.to_numpy()], variable, original[changed],
                                    value[changed], rule))
        previous = originals.get(variable)
        kept = original.where(changed)
        originals[variable] = kept if previous is None else previous.where(previous.notna(), kept)

    for var in form.site_variables:
        name = var.name
        rule = spec.variables.get(name)
        if name in pivot_values:
            data[name] = pivot_values[name].reindex(work.index)
            where_rows[name] = pivot_rows[name].reindex(work.index).to_numpy()
            where_columns[name] = pivot_columns[name]
            continue
        if rule is None:
            # A column named like the variable (or its label) needs no rule.
            column = columns.get(name) or columns.get(var.label)
            if column is None or column in taken or column in explicit:
                continue
            taken.add(column)
            if pivot_conflicts.get(column):
                count, record = pivot_conflicts[column]
                out.findings.append(_conflict(what, mapping.name, column, name, count, record, where))
            data[name] = work[column]
            used.add(column)
            where_rows[name] = rows_of(column)
            where_columns[name] = column
            _foreign_place(foreign, column, name, where_files, display)
            continue
        if rule.constant is not None:
            value = pd.Series(rule.constant, index=work.index, dtype="object")
            data[name] = value
            where_columns[name] = None
            display[name] = ""  # no column of the site's file
            log(name, pd.Series(True, index=work.index), pd.Series("", index=work.index), value, "map:constant")
            continue
        if rule.join is not None:
            date_col, time_col = columns.get(rule.join.date), columns.get(rule.join.time)
            if date_col is None:
                out.absent[name] = [rule.join.date]
                continue
            used.update(c for c in (date_col, time_col) if c)
            dates = _map_distinct(work[date_col], _date_value, ISO8601, "date")
            times = _map_distinct(work[time_col], _time_value) if time_col \
                else pd.Series(None, index=work.index, dtype="object")
            joined = dates.where(times.isna() | (times == ""), dates + "T" + times.fillna(""))
            original = _text(work[date_col]) + (" " + _text(work[time_col]) if time_col else "")
            value = joined.where(dates.notna(), original)
            data[name] = value
            where_rows[name] = rows_of(date_col)
            where_columns[name] = date_col
            if time_col:
                display[name] = f"{date_col} + {time_col}"
            log(name, dates.notna() & (value != original), original, value, "map:join")
            continue
        sources = [c for c in (columns.get(n) for n in rule.columns) if c is not None]
        if not sources:
            out.absent[name] = rule.columns
            continue
        used.update(sources)
        value = work[sources[0]].astype("object")
        chosen = pd.Series(sources[0], index=work.index, dtype="object")
        for column in sources:
            if pivot_conflicts.get(column):
                count, record = pivot_conflicts[column]
                out.findings.append(_conflict(what, mapping.name, column, name, count, record, where))
        for column in sources[1:]:
            empty = _text(value.reindex(work.index)) == ""
            value = value.where(~empty, work[column])
            chosen = chosen.where(~empty, column)
        original = _text(value)
        if rule.date is not None or rule.part is not None:
            converted = _map_distinct(value, _date_value, rule.date or ISO8601, rule.part)
            changed = converted.notna() & (converted != original)
            kind = "map:time" if rule.part == "time" else (
                "map:iso8601" if (rule.date or ISO8601) == ISO8601 else f"map:date:{rule.date}")
            log(name, changed, original, converted, kind)
            value = value.where(converted.isna(), converted)
        if rule.recode or rule.otherwise is not None or rule.default is not None:
            lookup = {k.strip().casefold(): v for k, v in rule.recode.items()}
            current = _text(value)
            recoded = current.str.casefold().map(lookup)
            if rule.otherwise is not None:
                recoded = recoded.where(recoded.notna() | (current == ""), rule.otherwise)
            changed = recoded.notna() & (recoded != current)
            log(name, changed, original, recoded, "map:recode")
            value = value.where(recoded.isna(), recoded)
            if rule.default is not None:
                empty = current == ""
                log(name, empty, original, pd.Series(rule.default, index=work.index), "map:default")
                value = value.where(~empty, rule.default)
        data[name] = value
        if len(sources) == 1:
            where_rows[name] = rows_of(sources[0])
            where_columns[name] = sources[0]
            _foreign_place(foreign, sources[0], name, where_files, display)
        else:
            where_columns[name] = chosen.to_numpy()
            where_rows[name] = None

    # -- what is not read ---------------------------------------------------------------------------
    skip = {header_key(c) for c in [*spec.ignore, *ignore]}
    for column in table.columns:
        if column in used or header_key(column) in skip:
            continue
        text = _text(table.values[column])
        count = int((text != "").sum())
        if not count:
            continue
        label = ""
        if table.labels and table.columns.index(column) < len(table.labels):
            label = table.labels[table.columns.index(column)] or ""
        first = int(table.values.index[(text != "").to_numpy()][0])
        origin = foreign.get(column)
        out.findings.append(Finding(
            code="MAP-COLUMN-UNMAPPED", severity=Severity.WARNING, category=Category.STRUCTURE,
            message=f"{what}: column {column!r}" + (f" ({label})" if label and label != column else "")
            + f" is not read by mapping {mapping.name}: its {count} value(s) are not imported; map it to a "
            f"variable of {form.code} in the spec, or list it under ignore if the study does not collect it",
            value=column, file=origin.file if origin else file, sheet=origin.sheet if origin else sheet,
            form=form.code, row=first if origin is None else None, evidence={"values": count}))

    # -- the form-shaped table ------------------------------------------------------------------------
    names = [v.name for v in form.site_variables if v.name in data]
    frame = pd.DataFrame({name: data[name].reindex(work.index).to_numpy() for name in names},
                         index=pd.Index(work.index.to_numpy(), dtype="int64"), dtype="object")
    mapped = RawTable(name=table.name, kind=table.kind, columns=names, values=frame,
                      labels=[None] * len(names), types=[""] * len(names), header_row=table.header_row)
    records = frame.index.to_numpy()
    sources = CellSources(file=file, sheet=sheet, mapping=mapping.name, records=records, form=form.code)
    for name in names:
        rows = where_rows.get(name)
        column = where_columns.get(name)
        paths = cell_paths.get(column) if isinstance(column, str) else None
        other_file, other_sheet = where_files.get(name, (None, None))
        sources.add(name, rows, display.get(name, column), file=other_file, sheet=other_sheet,
                    paths=None if paths is None else paths.reindex(work.index).to_numpy())
    mapped.errors = _moved_errors(table, records, names, where_rows, where_columns, foreign)
    out.table = mapped
    out.originals = {k: v for k, v in originals.items() if k in names}
    out.changes = pd.concat(changes, ignore_index=True) if changes else out.changes
    out.sources = sources
    out.used = used
    for name in names:
        column = where_columns.get(name)
        if column is None:
            continue
        for one in ([column] if isinstance(column, str) else pd.unique(np.asarray(column, dtype=object))):
            if isinstance(one, str) and one in table.columns:
                out.reads.setdefault(one, name)
    if report_values:
        out.findings.extend(_value_findings(out.changes, mapping.name, where))
    return out


def _time_value(value: Any) -> str | None:
    """The time of a date-time, or a time typed alone (``9:30`` → ``09:30``), as text."""
    if isinstance(value, str) and re.fullmatch(r"\s*\d{1,2}:\d{2}(:\d{2})?\s*", value):
        hours, rest = value.strip().split(":", 1)
        return f"{int(hours):02d}:{rest}"
    return _date_value(value, ISO8601, "time")


def _map_distinct(values: pd.Series, func: Any, *args: Any) -> pd.Series:
    """``func(value, *args)`` for each distinct value (uploads repeat dates), broadcast to the cells."""
    codes, uniques = pd.factorize(values.astype("object"), use_na_sentinel=True)
    done = np.array([func(v, *args) for v in np.asarray(uniques, dtype=object)] + [None], dtype=object)
    return pd.Series(done[codes], index=values.index, dtype="object")


def _foreign_place(foreign: Mapping[str, Foreign], column: str, variable: str,
                   out: dict[str, tuple[str | None, str | None]], names: dict[str, Any]) -> None:
    if column in foreign:
        out[variable] = (foreign[column].file, foreign[column].sheet)
        names[variable] = foreign[column].column


def _conflict(what: str, mapping: str, column: str, variable: str, count: int, record: int,
              where: dict[str, Any]) -> Finding:
    return _finding("MAP-PIVOT-CONFLICT", Severity.ERROR, f"{what}: column {column!r} differs between the "
                    f"rows of {count} record(s) (one row per test, one record per {variable} value expected the "
                    f"same); the first row's value is read into {variable}: make them agree",
                    variable=variable, row=record, evidence={"records": count}, **where)


def _change_rows(records: Any, variable: str, original: pd.Series, value: pd.Series, rule: str) -> pd.DataFrame:
    return pd.DataFrame({"record": np.asarray(records, dtype="int64"), "variable": variable,
                         "original": original.astype(str).to_numpy(), "value": value.astype(str).to_numpy(),
                         "rule": rule})


def _moved_errors(table: RawTable, records: np.ndarray, names: list[str], rows: Mapping[str, Any],
                  columns: Mapping[str, Any], foreign: Mapping[str, Foreign]) -> list[tuple[int, str, str, str]]:
    """Excel error cells of the source, moved to the record and variable that read them."""
    if not table.errors:
        return []
    cell: dict[tuple[int, str], tuple[int, str]] = {}
    for name in names:
        column = columns.get(name)
        if not isinstance(column, str) or column in foreign:
            continue
        source_rows = rows.get(name)
        for position, record in enumerate(records):
            row = record if source_rows is None else source_rows[position]
            if row is not None and not (isinstance(row, float) and row != row):
                cell.setdefault((int(row), column), (int(record), name))
    moved = []
    for row, column, ref, text in table.errors:
        target = cell.get((int(row), column))
        if target is not None:
            moved.append((target[0], target[1], ref, text))
    return moved


def _value_findings(changes: pd.DataFrame, mapping: str, where: dict[str, Any]) -> list[Finding]:
    """One info finding per (variable, rule) of the mapping's changes, with the count and an example."""
    out: list[Finding] = []
    if not len(changes):
        return out
    words = {"map:recode": "recoded", "map:iso8601": "read as ISO 8601 dates", "map:constant": "set to a constant",
             "map:join": "joined from a date and a time", "map:time": "read as the time of a date-time",
             "map:status": "set to a missing-value code from the test status",
             "map:default": "set where the source is empty"}
    for (variable, rule), group in changes.groupby(["variable", "rule"], sort=False):
        first = group.iloc[0]
        what = words.get(rule, f"read with the date pattern {rule.removeprefix('map:date:')}")
        example = (f"{first['value']!r}" if rule == "map:constant"
                   else f"{first['original']!r} → {first['value']!r}")
        out.append(Finding(
            code="MAP-VALUE", severity=Severity.INFO, category=Category.NORMALISATION,
            message=f"{variable}: {len(group)} value(s) {what} by mapping {mapping}, e.g. {example}",
            variable=str(variable), value=str(first["original"]), row=int(first["record"]), check=str(rule),
            evidence={"rule": rule, "count": len(group), "mapping": mapping}, **where))
    return out


# ------------------------------------------------------------------------------------------------
# After the normaliser


def finish(form_data: Any, applied: Applied, findings: list[Finding], study: Any) -> None:
    """Put the mapping's side into the form data the normaliser built from ``applied.table``: the
    site's own text in ``raw``, the mapping's changes first in ``changes``; and say, for a variable
    whose source column the file lacks, which column that is (instead of "use the current template")."""
    rows = form_data.lineage["ROW"].to_numpy()
    position = pd.Series(np.arange(len(rows)), index=rows)
    for variable, original in applied.originals.items():
        if variable not in form_data.raw.columns:
            continue
        present = original.dropna()
        present = present[present.index.isin(position.index)]
        if present.empty:
            continue
        raw = form_data.raw[variable].astype("object").copy()
        raw.iloc[position.loc[present.index].to_numpy()] = present.to_numpy()
        form_data.raw[variable] = raw.astype("str")
    if len(applied.changes):
        log = applied.changes[applied.changes["record"].isin(position.index)]
        moved = pd.DataFrame({"index": form_data.data.index.to_numpy()[position.loc[log["record"]].to_numpy()],
                              "variable": log["variable"].to_numpy(), "original": log["original"].to_numpy(),
                              "value": log["value"].to_numpy(), "rule": log["rule"].to_numpy()})
        form_data.changes = pd.concat([moved, form_data.changes], ignore_index=True) if len(form_data.changes) \
            else moved
    form = study.forms[applied.form]
    for finding in findings:
        if finding.code != "IMP-COLUMN-MISSING" or finding.form != applied.form or finding.variable is None:
            continue
        variable = form.variable(finding.variable)
        lacking = applied.absent.get(finding.variable)
        if lacking:
            finding.message = (f"form {applied.form} needs {variable.name} ({variable.label}); mapping "
                               f"{applied.mapping} reads it from column {' or '.join(lacking)}, which the file does "
                               f"not have, so none of its {len(form_data)} record(s) has it: export that column")
        else:
            finding.message = (f"form {applied.form} needs {variable.name} ({variable.label}); mapping "
                               f"{applied.mapping} does not fill it and the file has no column of that name, so "
                               f"none of its {len(form_data)} record(s) has it: add it to the spec's [variables]")
