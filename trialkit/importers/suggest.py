"""Propose a mapping spec from a site system's export: ``trialkit map suggest FILE --form VS``.

:func:`suggest_spec` looks at one table of the file and the form, and writes a spec the data manager
edits and keeps (``mappings/NAME.toml``). It proposes, per variable of the form, the column that
holds it — by name, by label (the CRF's and the dataset's own), by a close name (``AESTDTC`` for
``AESTDAT``) and by values (a column whose values are the codelist's codes, synonyms or decodes; a
column of dates) — with

- ``date = "iso8601"`` or the one date pattern every value of the column parses with (``%d.%m.%Y``,
  ``%m/%d/%Y``, ``%d%b%Y`` …);
- ``recode`` for the values of a codelist column that are not the CRF's codes, with the closest code
  as a guess (a value with no guess is listed in a comment to fill in);
- a ``[pivot]`` when one column names tests that are the form's variables (a long table: one row per
  test), with the value column, the unit column and each test's variable;
- ``[recognise]`` on the columns it reads, and ``ignore`` listing the columns it does not read, so
  that the data manager sees what is left.

Nothing is decided silently: every guess is a line of TOML or a comment in the file, which ``trialkit
map check`` validates.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from trialkit.importers.detect import RawTable
from trialkit.importers.header import header_key
from trialkit.importers.mapping import iso_parts

HEADER = "# Mapping spec suggested by trialkit"
DATE_PATTERNS = ("%d.%m.%Y", "%d/%m/%Y", "%m/%d/%Y", "%d-%m-%Y", "%Y/%m/%d", "%Y%m%d", "%d%b%Y", "%d-%b-%Y",
                 "%d %b %Y", "%d.%m.%y", "%d/%m/%y", "%m/%d/%y")


@dataclass
class Suggestion:
    """A proposed spec: its TOML text and what it found, for messages and tests."""

    text: str
    form: str
    columns: dict[str, str] = field(default_factory=dict)  # variable -> source column
    pivot: dict[str, str] = field(default_factory=dict)  # test value -> variable
    unread: list[str] = field(default_factory=list)


def _texts(values: pd.Series) -> pd.Series:
    from trialkit.importers.normalise import to_text

    return to_text(values).str.strip()


def _toml(value: Any) -> str:
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _order_of(pattern: str) -> str | None:
    """``DMY``/``MDY``/``YMD`` of a date pattern."""
    letters = "".join(c for c in re.findall(r"%(.)", pattern) if c in "dmbYy").replace("b", "m").replace("y", "Y")
    return {"dmY": "DMY", "mdY": "MDY", "Ymd": "YMD"}.get(letters)


def _date_rules(values: pd.Series) -> list[str]:
    """Every reading of a column's dates: ``iso8601`` or each pattern all its values parse with."""
    rule = _date_rule(values)
    if rule in (None, "iso8601"):
        return [rule] if rule else []
    present = [v.strip() for v in values if isinstance(v, str) and v.strip()][:500]
    found = []
    for pattern in DATE_PATTERNS:
        try:
            for value in present:
                dt.datetime.strptime(value, pattern)
        except ValueError:
            continue
        found.append(pattern)
    return found


def _date_rule(values: pd.Series) -> str | None:
    """``iso8601``, the one pattern all values parse with, or None when they are not dates."""
    present = [v for v in values if isinstance(v, str) and v.strip()][:500]
    natives = [v for v in values if isinstance(v, (dt.date, dt.datetime, pd.Timestamp))]
    if natives and not present:
        return "iso8601"
    if not present:
        return None
    if all(iso_parts(v) is not None for v in present):
        return "iso8601"
    for pattern in DATE_PATTERNS:
        try:
            for value in present:
                dt.datetime.strptime(value.strip(), pattern)
        except ValueError:
            continue
        return pattern
    return None


def _codes(variable: Any, study: Any) -> tuple[list[str], dict[str, str]]:
    """The codes of a variable and what maps to them (codes, decodes, synonyms, case-folded)."""
    from trialkit.study.mappings import allowed_codes

    codes = allowed_codes(variable, study.codelists)
    lookup = {c.casefold(): c for c in codes}
    if variable.codelist and variable.codelist in study.codelists:
        lookup.update(study.codelists[variable.codelist].synonyms)
    if variable.type == "yn" and "YN" in study.codelists:
        lookup.update(study.codelists["YN"].synonyms)
    return codes, lookup


def _guess(value: str, codes: list[str], decodes: dict[str, str]) -> str | None:
    """The code a typed value most likely means (by the codes and their decodes), or None."""
    folded = value.casefold()
    candidates = {c.casefold(): c for c in codes}
    candidates.update({d.casefold(): c for c, d in decodes.items()})
    for key, code in candidates.items():  # a code or decode inside the value: "RECOVERED/RESOLVED"
        if key and (folded.startswith(key) or key.startswith(folded)) and len(key) >= 3:
            return code
    close = difflib.get_close_matches(folded, list(candidates), n=1, cutoff=0.75)
    return candidates[close[0]] if close else None


def _name_score(column: str, label: str | None, variable: Any) -> float:
    """How well a column's name (and dataset label) names a variable: 1 exact ... 0 unrelated."""
    name, var, var_label = header_key(column), header_key(variable.name), header_key(variable.label)
    col_label = header_key(label or "")
    if name == var:
        return 1.0
    if name == var_label or (col_label and col_label in (var_label, var)):
        return 0.95
    if len(var) >= 4 and len(name) >= 4 and (name.startswith(var) or var.startswith(name)):
        return 0.85  # VISITNAME for VISIT
    stem = re.sub(r"(dat|dtc|dt|date|ym)$", "", var)
    if len(stem) >= 4 and re.sub(r"(dat|dtc|dt|date|ym)$", "", name) == stem and variable.type in ("date", "pdate"):
        return 0.9  # AESTDTC for AESTDAT
    scores = [difflib.SequenceMatcher(None, name, var).ratio() * 0.8]
    if col_label:
        scores.append(difflib.SequenceMatcher(None, col_label, var_label).ratio() * 0.85)
    scores.append(difflib.SequenceMatcher(None, name, var_label).ratio() * 0.8)
    return max(scores)


def _value_score(values: pd.Series, variable: Any, study: Any) -> float:
    """How well a column's values fit a variable: the share of values that are its codes or dates."""
    texts = _texts(values)
    present = texts[texts != ""]
    if present.empty:
        return 0.0
    distinct = pd.unique(present)[:200]
    if variable.name == "SUBJID" and study.subject_id_pattern:
        return sum(1 for v in distinct if re.fullmatch(study.subject_id_pattern, v)) / len(distinct)
    codes, lookup = _codes(variable, study)
    if codes:
        return sum(1 for v in distinct if v.casefold() in lookup) / len(distinct)
    if variable.type in ("date", "pdate"):
        return 0.7 if _date_rule(values) else 0.0
    if variable.type in ("int", "num"):
        numeric = pd.to_numeric(present.str.replace(",", ".", regex=False), errors="coerce").notna().mean()
        return 0.5 * float(numeric)
    return 0.0


def _abbreviates(short: str, long: str) -> bool:
    """``WT`` abbreviates ``WEIGHT``: same first letter, the letters in order, at least two."""
    if len(short) < 2 or not long or short[0] != long[0] or len(short) >= len(long):
        return False
    position = 0
    for char in short:
        position = long.find(char, position)
        if position < 0:
            return False
        position += 1
    return True


def _test_variable(value: str, measured: list[Any]) -> str | None:
    """The numeric variable a test code or name stands for: by name or label, a prefix of either
    (``BODYTEMP`` for "Body temperature"), an abbreviation (``WT``, ``HT``) or a close label."""
    key = header_key(value)
    if not key:
        return None
    for test in (lambda n, lab: key in (n, lab),
                 lambda n, lab: len(key) >= 4 and (n.startswith(key) or lab.startswith(key)),
                 lambda n, lab: _abbreviates(key, n),
                 lambda n, lab: _abbreviates(key, lab)):
        hits = [v.name for v in measured if test(header_key(v.name), header_key(v.label))]
        if len(hits) == 1:
            return hits[0]
    close = difflib.get_close_matches(key, [header_key(v.label) for v in measured], n=1, cutoff=0.8)
    return next((v.name for v in measured if close and header_key(v.label) == close[0]), None)


def _find_pivot(table: RawTable, form: Any) -> tuple[str, dict[str, str]] | None:
    """A column whose values name at least two of the form's numeric variables: (column, value -> var)."""
    measured = [v for v in form.site_variables if v.type in ("int", "num")]
    best: tuple[str, dict[str, str]] | None = None
    for column in table.columns:
        distinct = [v for v in pd.unique(_texts(table.values[column])) if v][:100]
        if not 2 <= len(distinct) <= 60:
            continue
        tests: dict[str, str] = {}
        for value in distinct:
            hit = _test_variable(value, measured)
            if hit is not None and hit not in tests.values():
                tests[value] = hit
        if len(tests) >= 2 and (best is None or len(tests) > len(best[1])):
            best = (column, tests)
    return best


def suggest_spec(table: RawTable, form: Any, study: Any, *, title: str = "", source: str = "",
                 site: str | None = None) -> Suggestion:
    """A proposed spec reading ``table`` as ``form`` (see the module docstring); ``site`` (its date
    order, its id as SITEID) settles ambiguous dates and a missing site column."""
    labels = dict(zip(table.columns, table.labels or [None] * len(table.columns), strict=False))
    used: set[str] = set()
    lines_pivot: list[str] = []
    pivot: dict[str, str] = {}
    pivoted: set[str] = set()
    found = _find_pivot(table, form)
    if found is not None:
        test_column, pivot = found
        used.add(test_column)
        rest = [c for c in table.columns if c != test_column]
        numeric = {c: pd.to_numeric(_texts(table.values[c]).str.replace(",", ".", regex=False),
                                    errors="coerce").notna().mean() for c in rest}
        value_column = max(rest, key=lambda c: (numeric[c], "res" in c.casefold() or "val" in c.casefold()))
        used.add(value_column)
        units = {header_key(u) for v in form.variables for u in ([v.unit] if v.unit else [])}
        for spec in (study.param("units") or {}).values():
            units |= {header_key(spec.get("standard", ""))} | {header_key(a["unit"]) for a in spec.get("alternatives", [])}
        unit_column = None
        for column in rest:
            if column in used:
                continue
            distinct = [header_key(v) for v in pd.unique(_texts(table.values[column])) if v]
            if distinct and (sum(d in units for d in distinct) / len(distinct) >= 0.5 or "unit" in column.casefold()):
                unit_column = column
                break
        if unit_column:
            used.add(unit_column)
        pivoted = set(pivot.values())
        lines_pivot = ["", "[pivot]", f"test = {_toml(test_column)}", f"value = {_toml(value_column)}"]
        if unit_column:
            lines_pivot.append(f"unit = {_toml(unit_column)}")
        lines_pivot += ["", "[pivot.tests]"]
        lines_pivot += [f"{_toml(test)} = {_toml(variable)}" for test, variable in pivot.items()]
        others = [v for v in pd.unique(_texts(table.values[test_column])) if v and v not in pivot]
        if others:
            lines_pivot.append(f"# not read (map them or leave them out): {', '.join(others[:20])}")
    columns: dict[str, str] = {}
    rules: list[str] = []
    constants: list[str] = []
    for variable in form.site_variables:
        if variable.name in pivoted:
            continue
        if any(variable.name == form.variable(v).unit_var for v in pivoted):
            continue  # the pivot's unit column fills it
        candidates = []
        for column in table.columns:
            if column in used:
                continue
            named = _name_score(column, labels.get(column), variable)
            fits = _value_score(table.values[column], variable, study)
            candidates.append((max(named + 0.1 * fits, 0.75 * fits), column))
        score, column = max(candidates, default=(0.0, ""))
        if score < 0.6:
            if variable.name == "SITEID" and site is not None:
                constants.append(f"SITEID = {{ constant = {_toml(site)} }}")
                columns["SITEID"] = ""
            elif variable.required:
                constants.append(f"# {variable.name} ({variable.label}): no column found; give "
                                 f"{variable.name} = {{ column = \"...\" }} or {{ constant = \"...\" }}")
            continue
        used.add(column)
        columns[variable.name] = column
        parts = [f"column = {_toml(column)}"]
        values = table.values[column]
        comment = ""
        if variable.type in ("date", "pdate"):
            rules_found = _date_rules(values)
            order = study.sites[site].date_order if site in study.sites else None
            preferred = [r for r in rules_found if order and _order_of(r) == order] or rules_found
            if preferred:
                parts.append(f"date = {_toml(preferred[0])}")
            if len(rules_found) > 1:
                comment = f"  # the dates read as {' or '.join(rules_found)}: check which"
        codes, lookup = _codes(variable, study)
        if codes:
            decodes = dict(study.codelists[variable.codelist].values) if variable.codelist in study.codelists else \
                {"Y": "Yes", "N": "No"}
            recode = {}
            unknown = []
            for value in [v for v in pd.unique(_texts(values)) if v][:60]:
                if value.casefold() in lookup or value.upper() in study.missing_codes:
                    continue
                guess = _guess(value, codes, decodes)
                if guess is None:
                    unknown.append(value)
                else:
                    recode[value] = guess
            if recode:
                parts.append("recode = { " + ", ".join(f"{_toml(k)} = {_toml(v)}" for k, v in recode.items()) + " }")
            if unknown:
                comment = f"  # values with no code found: {', '.join(unknown[:10])} ({', '.join(codes[:12])})"
        rules.append(f"{variable.name} = {{ {', '.join(parts)} }}{comment}")
    unread = [c for c in table.columns if c not in used]
    recognise = [c for c in table.columns if c in used][:6]
    head = [HEADER + (f" from {source}" if source else "") + ": check every line, then keep it as",
            "# mappings/NAME.toml of the study (or of the workspace) and run `trialkit map check`.",
            f"title = {_toml(title or f'{form.label} from ' + (source or table.name))}",
            f"form = {_toml(form.code)}",
            "# Columns the spec does not read (listed so that nothing is left out unseen):",
            "ignore = [" + ", ".join(_toml(c) for c in unread) + "]", "",
            "[recognise]", "columns = [" + ", ".join(_toml(c) for c in recognise) + "]"]
    body = ["", "[variables]", *rules, *constants]
    text = "\n".join(head + lines_pivot + body) + "\n"
    return Suggestion(text=text, form=form.code, columns=columns, pivot=pivot, unread=unread)


def pick_table(tables: Iterable[RawTable], name: str | None) -> RawTable | None:
    """The table to suggest from: the one named (sheet or dataset), else the first with rows."""
    tables = list(tables)
    if name is not None:
        return next((t for t in tables if t.name.casefold() == name.casefold()), None)
    return next((t for t in tables if t.rows and t.sheet_type == "worksheet" and not t.name.startswith("_")), None)
