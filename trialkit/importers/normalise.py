"""Turn one raw table (a sheet or dataset) into :class:`~trialkit.importers.base.FormData` for a form.

Every normalisation is recorded, never destructive: the value as typed stays in ``raw``, each
changed cell gets a row in ``changes`` (rule names below) and each (file, sheet, variable, rule)
gets ONE info finding with the count and an example. A value that cannot be converted is NA in
``data`` with one ``type`` error finding giving the value as typed and what was expected.

======================  ====================================================================
rule                    what happened
======================  ====================================================================
``trim``                surrounding spaces removed
``synonym``             a codelist synonym replaced by its code (``Male`` → ``M``)
``missing-code``        ``ND``/``NK``/``NA`` typed instead of a value: NA + reason
``decimal-comma``       ``12,5`` → 12.5 (sites whose decimal mark is a comma)
``date:DMY`` …          a date typed in the site's order (``03/02/2024`` → 2024-02-03)
``excel-serial-1900``   a number in a date column read as an Excel serial (1900 or 1904 system)
``datetime-to-date``    a date with a time of day: the date kept
``pdate-pad``           ``2019-3`` → ``2019-03``; ``pdate:MM/YYYY`` for ``03/2019``
``excel-date``          a partial-date column holding an Excel date cell
``unit:lb->kg`` …       a measurement converted to the standard unit (value and unit kept)
``unit-alias``          a unit typed as a variant of its code (``KG`` → ``kg``)
``siteid-from-template`` a blank SITEID filled in with the site a site template was made for
======================  ====================================================================

Uploads repeat values heavily (codes, visits, scores, dates), so each column is factorised once
(per distinct value and site) and every rule runs on the distinct values only; values, the text as
typed, reasons, the ``changes`` log and the per-rule findings are broadcast back to the cells with
the codes (see :class:`_Distinct`). No rule runs Python per cell.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd

from trialkit.findings import Category, Finding, Severity
from trialkit.importers.base import CHANGE_COLUMNS, LINEAGE_COLUMNS, FormData
from trialkit.importers.detect import RawTable, error_cell
from trialkit.importers.header import header_key
from trialkit.privacy import column_finding, is_free_text, scan_values

EXCEL_EPOCH = {1900: pd.Timestamp("1899-12-30"), 1904: pd.Timestamp("1904-01-01")}
_SUPERSCRIPTS = str.maketrans({"⁰": "0", "¹": "1", "²": "2", "³": "3", "⁴": "4", "⁵": "5", "⁶": "6",
                               "⁷": "7", "⁸": "8", "⁹": "9", "µ": "u", "μ": "u", "×": "x"})
_SUP_RUN = re.compile(r"(?<=10)([⁰¹²³⁴⁵⁶⁷⁸⁹]+)")
_DATE_TEXT = re.compile(r"^(\d{1,4})([./-])(\d{1,2})\2(\d{1,4})$")
DATE_RANGE = "1678-01-01 to 2261-12-31"  # what a nanosecond timestamp holds
EXPECTED = {"int": "a whole number", "num": "a number", "date": "a date", "pdate": "a partial date "
            "(YYYY, YYYY-MM or YYYY-MM-DD)", "char": "text", "yn": "Y or N"}


def unit_key(text: str) -> str:
    """A unit compared ignoring case, spaces, µ/μ vs u and superscripts (``10⁹/L`` → ``10^9/l``)."""
    text = _SUP_RUN.sub(lambda m: "^" + m.group(1), str(text))
    return text.translate(_SUPERSCRIPTS).replace(" ", "").casefold()


@dataclass
class Context:
    """Where a table came from and how its site types values."""

    file: str
    sha256: str
    sheet: str
    date_system: int = 1900
    site: str | None = None
    #: The site of a site template (its stamp): a blank SITEID is filled in with it.
    template_site: str | None = None
    findings: list[Finding] = field(default_factory=list)
    changes: list[pd.DataFrame] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)  # identifiers found → their masks


def match_columns(columns: list[str], form: Any) -> tuple[dict[str, str], list[Finding], list[str]]:
    """Map table columns to form variables by name or label; returns (column→variable, notes, unknown)."""
    by_name = {header_key(v.name): v.name for v in form.variables}
    by_label = {header_key(v.label): v.name for v in form.variables}
    mapping: dict[str, str] = {}
    notes: list[Finding] = []
    unknown: list[str] = []
    taken: set[str] = set()
    for column in columns:
        key = header_key(column)
        name = by_name.get(key) or by_label.get(key)
        if name is None:
            unknown.append(column)
            continue
        if name in taken:
            notes.append(_structure("IMP-COLUMN-DUPLICATE", Severity.ERROR, f"column {column!r} is a second "
                                    f"column for {name}; only the first is read: remove the duplicate",
                                    variable=name))
            continue
        taken.add(name)
        mapping[column] = name
        if key not in by_name:
            notes.append(_structure("IMP-HEADER-LABEL", Severity.INFO, f"column {column!r} matched to {name} "
                                    "by its label", variable=name))
        elif column != name:
            notes.append(_structure("IMP-HEADER-NAME", Severity.INFO, f"column {column!r} matched to {name} "
                                    "ignoring case, spaces and punctuation", variable=name))
    return mapping, notes, unknown


def _prefilled_rows(table: RawTable, mapping: dict[str, str], columns: dict[str, _Codes]) -> np.ndarray | None:
    """Rows that hold nothing but a pre-filled SITEID, or nothing at all (a mask), or None.

    A site's template (``trialkit template --site SS``) pre-fills SITEID down the entry area; those
    rows are the empty part of the form, not records — nor is an empty row inside the table (or one
    holding only formatting). A row with any other value — or an Excel error cell — is kept. Blank
    is ``None`` or text of spaces only, judged once per distinct value.
    """
    if table.values.empty:
        return None
    others = [column for column, name in mapping.items() if name != "SITEID"]
    if not others:
        return None
    empty = np.ones(len(table.values), dtype=bool)
    for column in others:
        codes = columns[column]
        uniques = table.values[column].iloc[codes.first].to_numpy()
        blank = np.array([v is None or (isinstance(v, str) and not v.strip()) for v in uniques], dtype=bool)
        na = codes.na_code
        if na is not None:
            blank[na] = False
        cell_blank = blank[codes.codes]
        if na is not None and table.values[column].dtype == object:
            positions = np.flatnonzero(codes.codes == na)
            cell_blank[positions] = [v is None for v in table.values[column].to_numpy()[positions]]
        empty &= cell_blank
        if not empty.any():
            return None
    error_rows = {row for row, *_ in table.errors}
    if error_rows:
        empty &= ~table.values.index.isin(list(error_rows))
    return empty if empty.any() else None


def _structure(code: str, severity: Severity, message: str, **kw: Any) -> Finding:
    return Finding(code=code, severity=severity, category=Category.STRUCTURE, message=message, **kw)


def normalise_table(table: RawTable, form: Any, study: Any, ctx: Context) -> FormData:
    """Build the form's FormData from one raw table; findings are appended to ``ctx.findings``."""
    mapping, notes, unknown = match_columns(table.columns, form)
    where = {"file": ctx.file, "sheet": ctx.sheet, "form": form.code}
    for note in notes:
        note.file, note.sheet, note.form = ctx.file, ctx.sheet, form.code
        ctx.findings.append(note)
    for column in unknown:
        if column in table.blank_columns:
            message = (f"column {column} has no header (its header cell is blank); its values are not imported: "
                       "type the variable name in the header cell, or delete the column's values")
        else:
            message = (f"column {column!r} is not a variable of form {form.code}; its values are not imported: "
                       "rename it to a variable name or remove it")
        ctx.findings.append(_structure("IMP-COLUMN-UNKNOWN", Severity.WARNING, message, value=column, **where))
    present = set(mapping.values())
    for var in form.variables:
        if var.name in present and var.derived:
            ctx.findings.append(_structure("IMP-COLUMN-DERIVED", Severity.WARNING, f"column {var.name} is "
                                           "derived by trialkit; the uploaded values are ignored",
                                           variable=var.name, **where))
    absent_columns = [var for var in form.variables if var.name not in present and not var.derived]
    used = {column: _Codes.of(table.values[column]) for column in mapping}
    dropped = _prefilled_rows(table, mapping, used)
    keep = None if dropped is None else np.flatnonzero(~dropped)
    if keep is not None:
        used = {column: codes.subset(keep) for column, codes in used.items()}
    n = len(table.values) if keep is None else len(keep)
    index = pd.RangeIndex(n)
    for var in absent_columns:
        # ONE finding for the column, with the number of records it leaves without a value.
        severity = Severity.ERROR if var.required else Severity.WARNING
        ctx.findings.append(_structure(
            "IMP-COLUMN-MISSING", severity, f"form {form.code} needs column {var.name} ({var.label}); it is "
            f"missing, so none of the {n} row(s) of sheet {ctx.sheet!r} has it: add the column and fill it "
            "(use the current template)", variable=var.name, expected=var.name, evidence={"rows": n}, **where))
    rows = np.asarray(table.values.index, dtype="int64")
    if keep is not None:
        rows = rows[keep]
    lineage = pd.DataFrame({"FILE": ctx.file, "SHA256": ctx.sha256, "SHEET": ctx.sheet, "ROW": rows},
                           index=index, columns=LINEAGE_COLUMNS)
    source = {mapping_var: column for column, mapping_var in mapping.items()}
    error_cells: dict[str, list[tuple[int, str, str]]] = {}
    for row, column, ref, text in table.errors:
        if column in mapping and not _is_derived(form, mapping[column]):
            error_cells.setdefault(mapping[column], []).append((row, ref, text))
    missing_masks = table.value_labels.get("__missing__", {}) if table.value_labels else {}

    data: dict[str, pd.Series] = {}
    raw: dict[str, pd.Series] = {}
    reasons: dict[str, pd.Series] = {}
    empty_text = pd.Series("", index=index, dtype="str")
    no_reason = pd.Series(pd.NA, index=index, dtype="object")
    # SITEID first: the site decides how dates and decimals were typed.
    order = sorted(form.variables, key=lambda v: v.name != "SITEID")
    sites = pd.Series(ctx.site, index=index, dtype="object")
    site_codes = _Codes.of(sites)
    subjects = None
    censored: dict[str, pd.Series] = {}  # censor variables, filled from their censored variables
    for var in order:
        if var.derived or var.name not in source:
            data[var.name] = _empty_typed(var.type, n)
            raw[var.name] = empty_text
            reasons[var.name] = no_reason
            continue
        column = table.values[source[var.name]]
        cells = used[source[var.name]].by_site(site_codes)
        positions = cells.first if keep is None else keep[cells.first]
        native = column.iloc[positions].reset_index(drop=True)
        distinct = _Distinct(cells.codes, sites.iloc[cells.first].reset_index(drop=True))
        censor: dict[str, pd.Series] = {}
        clean = _clean_column(var, native, study, distinct.sites) if FAST_PATH else None
        if clean is not None:
            # Every distinct value converts (nothing to refuse). A code of its codelist, a number or a
            # date cannot be an identifier; a text column without codelist is scanned as in the full path.
            text_raw_u, value_u, logged = clean
            reason_u = pd.Series(pd.NA, index=native.index, dtype="object")
            if logged:
                for rule, mask in logged:
                    distinct.record(var.name, pd.Series(mask), text_raw_u, value_u, rule)
                distinct.flush(ctx, rows, sites, subjects, form.code)
            if var.type == "char" and not var.codelist and not is_free_text(var):
                _identifiers(var, text_raw_u, value_u, reason_u, study, distinct.codes, rows, ctx, form.code)
        else:
            text_raw_u = to_text(native)
            value_u, reason_u = _convert(var, native, text_raw_u, study, ctx, distinct.sites, table, distinct, form,
                                         censor)
            distinct.flush(ctx, rows, sites, subjects, form.code)
            if not is_free_text(var):  # free text is checked cell by cell at validation
                _identifiers(var, text_raw_u, value_u, reason_u, study, distinct.codes, rows, ctx, form.code)
        if var.censored and var.censor_var:
            operators = censor.get("operators")
            censored[var.censor_var] = (distinct.cells(operators.astype("str"), index) if operators is not None
                                        else _empty_typed("char", n))
        text_raw = distinct.cells(text_raw_u, index)
        value = distinct.cells(value_u, index)
        reason = distinct.cells(reason_u, index) if reason_u.notna().any() else no_reason
        for row, ref, text in error_cells.get(var.name, []):
            pos = int(np.searchsorted(rows, row))
            if pos < n and rows[pos] == row:
                text_raw.iat[pos] = text
                value.iat[pos] = pd.NA if var.type in ("char", "pdate", "yn", "int") else value.iat[pos]
                if var.type in ("num", "date"):
                    value.iat[pos] = np.nan if var.type == "num" else pd.NaT
            problem, what, remedy = error_cell(text)
            ctx.findings.append(Finding(
                code=problem, severity=Severity.ERROR, category=Category.TYPE,
                message=f"cell {ref} ({var.name}) {what}; {remedy} (or ND/NK/NA)", variable=var.name, value=text,
                expected=EXPECTED[var.type],
                row=row, site=_at(sites, pos), subject=_at(subjects, pos), **where))
        if var.name in missing_masks:
            mask = missing_masks[var.name]
            if keep is not None and len(mask) == len(table.values):
                mask = mask.iloc[keep]
            mask = mask.set_axis(index)
            if mask.any():
                value = value.mask(mask)
                first = int(np.argmax(mask.to_numpy()))
                ctx.findings.append(Finding(
                    code="IMP-USER-MISSING", severity=Severity.WARNING, category=Category.NORMALISATION,
                    message=f"{var.name}: {int(mask.sum())} value(s) are user-defined or special missing "
                            f"values in the dataset (e.g. {text_raw.iat[first]!r}); read as missing, "
                            "kept as typed in raw", variable=var.name, value=text_raw.iat[first],
                    row=int(rows[first]), **where))
        data[var.name] = value
        raw[var.name] = text_raw
        reasons[var.name] = reason
        if var.name == "SITEID":
            if ctx.template_site is not None:
                value = data[var.name] = _siteid_from_template(value, reason, text_raw, ctx, rows, form.code)
            sites = _site_series(value, ctx.site, study)
            site_codes = _Codes.of(sites)
        if var.name == "SUBJID":
            subjects = value
    data.update(censored)
    _convert_units(form, study, data, raw, ctx, sites, rows, subjects)
    if form.code == "LB" or {"LBORRES", "LBORRESU", "LBTESTCD", "LBSTRESN"} <= set(data):
        _derive_lab(study, data, raw, ctx, rows, subjects, sites, form.code)
    names = form.variable_names
    # Columns are fresh arrays (or shared read-only fillers under copy-on-write): no second copy.
    frame = pd.DataFrame({name: data[name] for name in names}, index=index, copy=False)
    raw_frame = pd.DataFrame({name: raw[name] for name in names}, index=index, copy=False)
    reason_frame = pd.DataFrame({name: reasons[name] for name in names}, index=index, copy=False)
    changes = [c for c in ctx.changes if len(c)]
    change_frame = pd.concat(changes, ignore_index=True) if changes else pd.DataFrame(columns=CHANGE_COLUMNS)
    ctx.changes = []
    return FormData(form=form.code, data=frame, raw=raw_frame, reasons=reason_frame, lineage=lineage,
                    changes=change_frame, absent={var.name: np.ones(n, dtype=bool) for var in absent_columns})


def _identifiers(var: Any, text: pd.Series, value: pd.Series, reason: pd.Series, study: Any, codes: np.ndarray,
                 rows: np.ndarray, ctx: Context, form: str) -> None:
    """A privacy error for a CRF column holding a direct identifier where its type allows none: any
    value of SUBJID-like text, or a value that is not what the variable takes (a codelist code, a
    number, a date). Judged on the distinct values; one finding for the column."""
    filled = text.str.strip().ne("") & reason.isna()
    if var.type == "char" and not var.codelist:
        suspicious = filled
    elif var.type == "char":
        suspicious = filled & ~value.isin(study.codelists[var.codelist].codes)
    else:
        suspicious = filled & value.isna()
    if not suspicious.any():
        return
    hits = scan_values(text[suspicious], crf=True)
    if hits is None:
        return
    in_hits = np.isin(codes, hits.positions)
    ctx.findings.append(column_finding(hits, column=var.name, row=int(rows[int(np.argmax(in_hits))]),
                                       cells=int(in_hits.sum()), file=ctx.file, sheet=ctx.sheet, form=form,
                                       in_form=True))
    ctx.secrets.update(dict(hits.secrets))


def _is_derived(form: Any, name: str) -> bool:
    return form.variable(name).derived


def _at(series: pd.Series | None, pos: int) -> str | None:
    if series is None or pos >= len(series):
        return None
    value = series.iat[pos]
    return None if value is None or value is pd.NA or (isinstance(value, float) and value != value) else str(value)


def _empty_typed(kind: str, n: int) -> pd.Series:
    if kind == "int":
        return pd.Series(pd.arrays.IntegerArray(np.zeros(n, dtype="int64"), np.ones(n, dtype=bool)))
    if kind == "num":
        return pd.Series(np.full(n, np.nan))
    if kind == "date":
        return pd.Series(pd.NaT, index=pd.RangeIndex(n), dtype="datetime64[ns]")
    return pd.Series(np.nan, index=pd.RangeIndex(n), dtype="str")


def _siteid_from_template(value: pd.Series, reason: pd.Series, text_raw: pd.Series, ctx: Context,
                          rows: np.ndarray, form: str) -> pd.Series:
    """SITEID with its blank cells (nothing typed: no value, no missing-value code) filled in with the
    template's site; each filled cell is a ``siteid-from-template`` change (the raw value stays blank)."""
    blank = (value.isna() & reason.isna() & text_raw.str.strip().eq("")).to_numpy()
    if not blank.any():
        return value
    positions = np.flatnonzero(blank)
    site = str(ctx.template_site)
    _log_change(ctx, "SITEID", rows, positions, np.full(len(positions), "", dtype=object),
                np.full(len(positions), site, dtype=object), "siteid-from-template", form)
    return value.where(~blank, site)


def _site_series(siteid: pd.Series, default: str | None, study: Any) -> pd.Series:
    known = set(study.sites)
    site = siteid.astype("object").where(siteid.isin(known), None)
    if default is not None:
        site = site.where(site.notna(), default)
    return site


# ------------------------------------------------------------------------------------------------
# Cells to text


def to_text(series: pd.Series) -> pd.Series:
    """Every cell as the text the site sees: numbers without a spurious ``.0``, dates in ISO.

    Uploads repeat values heavily (codes, visits, scores), so cells are factorised and only the
    distinct values are formatted in Python; the result is broadcast back with the codes.
    """
    if pd.api.types.is_string_dtype(series) and series.dtype != object:
        return series.fillna("").astype("str")
    if pd.api.types.is_datetime64_any_dtype(series):
        return _datetimes_text(series)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    formatted = np.array([_cell_text(v) for v in np.asarray(uniques, dtype=object)] + [""], dtype=object)
    return pd.Series(formatted[codes], index=series.index, dtype="str")


def _cell_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        if value != value:
            return ""
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, np.floating):
        return _cell_text(float(value))
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    return _other_text(value)


def _datetimes_text(series: pd.Series) -> pd.Series:
    has_time = (series.dropna() != series.dropna().dt.normalize()).any()
    text = series.dt.strftime("%Y-%m-%dT%H:%M:%S" if has_time else "%Y-%m-%d")
    return text.fillna("").astype("str")


def _other_text(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat(timespec="seconds")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


# ------------------------------------------------------------------------------------------------
# Columns that need no conversion

#: Off only in the tests that check the fast path against the full conversion, column by column.
FAST_PATH = True

_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_PDATE_CANON = re.compile(r"[0-9]{4}(?:-(?:0[1-9]|1[0-2])(?:-(?:0[1-9]|[12][0-9]|3[01]))?)?")
_NS_FIRST_YEAR, _NS_LAST_YEAR = 1678, 2261
_EXACT_FLOAT = 2.0**53
_COMMA_NUMBER = re.compile(r"[+-]?[0-9]*,[0-9]+")
_NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SITE_DATE = re.compile(r"([0-9]{1,2})([./-])([0-9]{1,2})\2([0-9]{4})")
_MONTH_YEAR = re.compile(r"([0-9]{1,2})[/.-]([0-9]{4})")


def _known_site(study: Any, site: Any) -> Any:
    """The study's site of this id, or None (no site, NaN, or an id the study does not have)."""
    return study.sites.get(site) if isinstance(site, str) else None


def _site_order_date(text: str, site: Any) -> tuple[dt.date, str] | None:
    """A date typed ``DD/MM/YYYY`` or ``MM/DD/YYYY`` (any of ``/.-``) in its site's day/month order, and
    the rule that logs it; None when the site (or its order) is unknown or the date impossible."""
    match = _SITE_DATE.fullmatch(text)
    order = site.date_order if match is not None and site is not None else None
    if order not in ("DMY", "MDY"):
        return None
    day, month = (match[1], match[3]) if order == "DMY" else (match[3], match[1])
    try:
        return dt.date(int(match[4]), int(month), int(day)), f"date:{order}"
    except ValueError:
        return None


def _clean_column(var: Any, native: pd.Series, study: Any, sites: pd.Series
                  ) -> tuple[pd.Series, pd.Series, list[tuple[str, np.ndarray]]] | None:
    """(text, typed value, logged rules) of a column's distinct values when every one converts by a
    rule that needs no pandas pass, else None, and :func:`_convert` does the full work.

    Uploads are mostly clean or typed in their site's conventions, and the full conversion pays a dozen
    pandas operations per column whatever its size; this is one pass over the distinct values. It
    takes a value already as the variable holds it, and the everyday conventions — a codelist
    synonym, a decimal comma from a comma site, a date in the site's day/month order, a partial date
    typed ``MM/YYYY`` — logging the same rule for each; anything else (whitespace to trim, a
    missing-value code, a censored limit, an Excel date number, a value that fails) takes the full
    path. ``tests/test_normalise_fast.py`` checks that both give the same frames, changes and findings
    on every column of the demo uploads and on generated columns. ``sites``: each distinct value's
    site (None when unknown). The rules come as (rule, mask over the distinct values), in the order
    the full conversion logs them.
    """
    if native.dtype == object:
        values = native.to_numpy()
    elif pd.api.types.is_string_dtype(native.dtype):  # text read as text (CSV): a missing cell is ""
        values = native.fillna("").to_numpy(dtype=object)
    else:
        return None
    site_of = sites.to_numpy()
    missing = study.missing_codes
    kind = var.type
    texts: list[str] = []
    typed: list[Any] = []
    rules: dict[str, list[int]] = {}
    if kind in ("char", "yn"):
        codelist = study.codelists.get(var.codelist) if var.codelist else None
        codes = set(codelist.codes) if codelist is not None else None
        synonyms = codelist.synonyms if codelist is not None else {}
        for i, v in enumerate(values):
            if type(v) is not str:
                return None
            texts.append(v)
            if v == "":
                typed.append(np.nan)
                continue
            if v.strip() != v:
                return None
            if codes is not None:
                mapped = synonyms.get(v.casefold())
                if mapped is not None and mapped != v:
                    rules.setdefault("synonym", []).append(i)
                    v = mapped
                if v not in codes:
                    return None
            typed.append(v)
        value = pd.Series(typed, dtype="object").astype("str")
    elif kind in ("int", "num"):
        if var.censored:
            return None
        commas: list[int] = []
        numeric_text: list[int] = []
        for i, v in enumerate(values):
            if type(v) is str:
                texts.append(v)
                if v == "":
                    typed.append(np.nan)
                    continue
                if _NUMBER_TEXT.fullmatch(v):
                    numeric_text.append(i)
                    typed.append(v)
                    continue
                site = _known_site(study, site_of[i])
                if kind == "int" or not _COMMA_NUMBER.fullmatch(v) or site is None or site.decimal_mark != ",":
                    return None
                commas.append(i)
                typed.append(v.replace(",", "."))
                continue
            if type(v) is float:
                if not (abs(v) < _EXACT_FLOAT) or (kind == "int" and not v.is_integer()):
                    return None
            elif type(v) is int:
                if not abs(v) < _EXACT_FLOAT:
                    return None
            else:
                return None
            texts.append(_cell_text(v))
            typed.append(float(v))
        as_text = sorted(commas + numeric_text)
        if as_text:
            # the same parser as the full conversion, on the numbers typed as text only
            parsed = pd.to_numeric(pd.Series([typed[i] for i in as_text], dtype="object"), errors="coerce")
            parsed = parsed.astype(float).to_numpy()
            if not (np.abs(parsed) < _EXACT_FLOAT).all() or (kind == "int" and (parsed % 1 != 0).any()):
                return None
            for i, number in zip(as_text, parsed, strict=True):
                typed[i] = float(number)
        if commas:
            rules["decimal-comma"] = commas
        number = pd.Series(np.array(typed, dtype="float64"))
        value = number.round().astype("Int64") if kind == "int" else number
    elif kind == "date":
        days: list[Any] = []
        for i, v in enumerate(values):
            if type(v) is str:
                texts.append(v)
                if v == "":
                    days.append(None)
                    continue
                if _ISO_DAY.fullmatch(v):
                    try:
                        when = dt.date(int(v[:4]), int(v[5:7]), int(v[8:10]))
                    except ValueError:
                        return None
                else:
                    parsed = _site_order_date(v, _known_site(study, site_of[i]))
                    if parsed is None:
                        return None
                    when, rule = parsed
                    rules.setdefault(rule, []).append(i)
            elif type(v) is dt.date:
                when = v
                texts.append(v.isoformat())
            elif type(v) is dt.datetime and v.tzinfo is None and v.time() == dt.time(0):
                when = v.date()
                texts.append(when.isoformat())
            else:
                return None
            if not _NS_FIRST_YEAR <= when.year <= _NS_LAST_YEAR:
                return None
            days.append(when)
        stamps = np.array([np.datetime64("NaT") if d is None else np.datetime64(d, "D") for d in days],
                          dtype="datetime64[D]")
        value = pd.Series(stamps.astype("datetime64[ns]"))
    elif kind == "pdate":
        for i, v in enumerate(values):
            if type(v) is not str:
                return None
            texts.append(v)
            if v == "":
                typed.append(np.nan)
                continue
            if _PDATE_CANON.fullmatch(v):
                typed.append(v)
                continue
            match = _MONTH_YEAR.fullmatch(v)
            if match is not None and 1 <= int(match[1]) <= 12:
                typed.append(f"{match[2]}-{int(match[1]):02d}")
                rules.setdefault("pdate:MM/YYYY", []).append(i)
                continue
            parsed = _site_order_date(v, _known_site(study, site_of[i]))
            if parsed is None or not _NS_FIRST_YEAR <= parsed[0].year <= _NS_LAST_YEAR:
                return None
            typed.append(parsed[0].isoformat())
            rules.setdefault(parsed[1], []).append(i)
        # the full conversion logs MM/YYYY before the dates it parses in the site's order
        rules = dict(sorted(rules.items(), key=lambda item: item[0] != "pdate:MM/YYYY"))
        value = pd.Series(typed, dtype="object").astype("str")
    else:
        return None
    if any(text.upper() in missing for text in texts if text):
        return None  # a missing-value code as typed (a study may define "99"): the full path records it
    n = len(values)
    logged = []
    for rule, positions in rules.items():
        mask = np.zeros(n, dtype=bool)
        mask[positions] = True
        logged.append((rule, mask))
    return pd.Series(texts, dtype="str"), value, logged


# ------------------------------------------------------------------------------------------------
# Conversion per CRF type


def _record(ctx: Context, var: str, rows: np.ndarray, mask: pd.Series, original: pd.Series, value: pd.Series,
            rule: str, form: str) -> None:
    """Log changed cells and add one info finding for (file, sheet, variable, rule)."""
    if not mask.any():
        return
    positions = np.flatnonzero(mask.to_numpy())
    originals = original.iloc[positions].astype(str).to_numpy()
    _log_change(ctx, var, rows, positions, originals, _value_texts(value.iloc[positions]), rule, form)


def _value_texts(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.strftime("%Y-%m-%d").to_numpy()
    return values.astype(str).to_numpy()


def _log_change(ctx: Context, var: str, rows: np.ndarray, positions: np.ndarray, originals: np.ndarray,
                values_text: np.ndarray, rule: str, form: str) -> None:
    ctx.changes.append(pd.DataFrame({"index": positions, "variable": var, "original": originals,
                                     "value": values_text, "rule": rule}, columns=CHANGE_COLUMNS))
    count = len(positions)
    example = f"{originals[0]!r} → {values_text[0]!r}"
    ctx.findings.append(Finding(
        code="IMP-NORMALISED", severity=Severity.INFO, category=Category.NORMALISATION,
        message=f"{var}: {count} value(s) normalised by rule {rule}, e.g. {example} (row {int(rows[positions[0]])})",
        variable=var, value=originals[0], file=ctx.file, sheet=ctx.sheet, form=form,
        row=int(rows[positions[0]]), check=rule, evidence={"rule": rule, "count": count}))


# ------------------------------------------------------------------------------------------------
# Distinct values


def _first_positions(codes: np.ndarray) -> np.ndarray:
    """Position of the first cell of each code, for codes 0..k-1 numbered in order of appearance."""
    if not len(codes):
        return np.empty(0, dtype=np.int64)
    seen = np.maximum.accumulate(codes)
    new = np.empty(len(codes), dtype=bool)
    new[0] = True
    np.greater(codes[1:], seen[:-1], out=new[1:])
    return np.flatnonzero(new)


_BOOL_KEY = "\x00bool"


def _bools_collide(values: np.ndarray, codes: np.ndarray, uniques: Any) -> np.ndarray | None:
    """Positions of cells equal to 0 or 1 when True/False and numbers share a code, else None.

    A hash table sees ``True == 1``; a column mixing Excel booleans and numbers must not merge them.
    """
    distinct = np.asarray(uniques, dtype=object)
    try:
        zero_one = np.flatnonzero((distinct == 0) | (distinct == 1))
    except Exception:  # an odd object whose comparison fails: check them all
        zero_one = np.arange(len(distinct))
    if not len(zero_one):
        return None
    if len(zero_one) <= 2:  # the usual case (0 and/or 1): two comparisons beat a set lookup
        hit = codes == zero_one[0]
        if len(zero_one) == 2:
            hit |= codes == zero_one[1]
        positions = np.flatnonzero(hit)
    else:
        positions = np.flatnonzero(np.isin(codes, zero_one))
    kind = pd.api.types.infer_dtype(values[positions], skipna=False)
    return None if kind in ("integer", "floating", "mixed-integer-float", "boolean", "string") else positions


@dataclass
class _Codes:
    """One column factorised: a code per cell (0..k-1, in order of appearance) and each code's first cell.

    NA cells (None, NaN, NaT, pd.NA) share ``na_code``; True/False never share a code with 1/0.
    """

    codes: np.ndarray
    first: np.ndarray
    na_code: int | None = None

    @classmethod
    def of(cls, values: pd.Series) -> _Codes:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        if values.dtype == object and len(uniques):
            array = values.to_numpy()
            positions = _bools_collide(array, codes, uniques)
            if positions is not None:
                keys = array.copy()
                for pos in positions:
                    if isinstance(array[pos], (bool, np.bool_)):
                        keys[pos] = (_BOOL_KEY, bool(array[pos]))
                codes, _ = pd.factorize(keys, use_na_sentinel=True)
        codes = np.asarray(codes, dtype=np.int64)
        na = codes < 0
        na_code = None
        if na.any():
            codes = np.asarray(pd.factorize(codes)[0], dtype=np.int64)
            na_code = int(codes[int(np.argmax(na))])
        return cls(codes, _first_positions(codes), na_code)

    def subset(self, keep: np.ndarray) -> _Codes:
        """The same column restricted to the cells at ``keep``."""
        kept = self.codes[keep]
        codes = np.asarray(pd.factorize(kept)[0], dtype=np.int64)
        na_code = None
        if self.na_code is not None:
            na = kept == self.na_code
            na_code = int(codes[int(np.argmax(na))]) if na.any() else None
        return _Codes(codes, _first_positions(codes), na_code)

    def by_site(self, sites: _Codes) -> _Codes:
        """Codes of distinct (value, site) pairs: dates and decimals depend on the site."""
        n_sites = len(sites.first)
        if n_sites <= 1:
            return self
        codes = np.asarray(pd.factorize(self.codes * n_sites + sites.codes)[0], dtype=np.int64)
        return _Codes(codes, _first_positions(codes))


class _Distinct:
    """The distinct values of one column: conversions log here, :meth:`flush` expands to the cells.

    ``record`` and ``type_errors`` take masks over the distinct values; on flush each becomes the
    cell-level ``changes`` rows, one info finding per rule (count and first example from the
    cells) and one type finding per bad cell — exactly what per-cell processing would give.
    """

    def __init__(self, codes: np.ndarray, sites: pd.Series) -> None:
        self.codes = codes
        self.sites = sites
        self.events: list[tuple[str, Any, np.ndarray, pd.Series, Any, str]] = []

    @staticmethod
    def _mask(mask: pd.Series) -> np.ndarray:
        out = np.zeros(len(mask), dtype=bool)
        out[np.flatnonzero(mask.to_numpy())] = True
        return out

    def record(self, var: str, mask: pd.Series, original: pd.Series, value: pd.Series, rule: str) -> None:
        if mask.any():
            self.events.append(("record", var, self._mask(mask), original, value, rule))

    def type_errors(self, var: Any, mask: pd.Series, text: pd.Series, why: str = "") -> None:
        if mask.any():
            self.events.append(("type", var, self._mask(mask), text, None, why))

    def range_errors(self, var: Any, mask: pd.Series, text: pd.Series) -> None:
        """Dates outside 1678-2261: one ``IMP-DATE-RANGE`` error per cell."""
        if mask.any():
            self.events.append(("range", var, self._mask(mask), text, None, ""))

    def cells(self, distinct: pd.Series, index: pd.Index) -> pd.Series:
        """A per-distinct-value series broadcast to the cells."""
        return pd.Series(distinct.array.take(self.codes), index=index, dtype=distinct.dtype)

    def flush(self, ctx: Context, rows: np.ndarray, sites: pd.Series, subjects: pd.Series | None,
              form: str) -> None:
        for kind, var, mask, original, value, extra in self.events:
            positions = np.flatnonzero(mask[self.codes])
            if not len(positions):
                continue
            of_cell = self.codes[positions]
            if kind == "record":
                chosen = np.flatnonzero(mask)
                originals = np.empty(len(mask), dtype=object)
                originals[chosen] = original.iloc[chosen].astype(str).to_numpy()
                values_text = np.empty(len(mask), dtype=object)
                values_text[chosen] = _value_texts(value.iloc[chosen])
                _log_change(ctx, var, rows, positions, originals[of_cell], values_text[of_cell], extra, form)
                continue
            if kind == "range":
                for pos, code in zip(positions, of_cell, strict=True):
                    typed = original.iat[code]
                    ctx.findings.append(Finding(
                        code="IMP-DATE-RANGE", severity=Severity.ERROR, category=Category.TYPE,
                        message=f"{var.name}: {typed!r} is outside the dates trialkit can hold ({DATE_RANGE})"
                                + (" as an Excel date number" if typed.isdigit() else "")
                                + "; check the year and correct the value in the file",
                        variable=var.name, value=typed, expected=f"a date from {DATE_RANGE}", file=ctx.file,
                        sheet=ctx.sheet, form=form, row=int(rows[pos]), site=_at(sites, pos),
                        subject=_at(subjects, pos)))
                continue
            for pos, code in zip(positions, of_cell, strict=True):
                typed = original.iat[code]
                ctx.findings.append(Finding(
                    code="IMP-TYPE", severity=Severity.ERROR, category=Category.TYPE,
                    message=f"{var.name}: {typed!r} is not {EXPECTED[var.type]}{extra}; correct the value in "
                            "the file", variable=var.name, value=typed, expected=EXPECTED[var.type],
                    file=ctx.file, sheet=ctx.sheet, form=form, row=int(rows[pos]), site=_at(sites, pos),
                    subject=_at(subjects, pos)))
        self.events = []


_CENSOR = re.compile(r"^\s*(<=|>=|=<|=>|≤|≥|<|>|＜|＞)\s*([+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?)\s*$")
_CENSOR_OPERATORS = {"<": "<", "<=": "<=", "=<": "<=", "≤": "<=", "＜": "<", ">": ">", ">=": ">=", "=>": ">=",
                     "≥": ">=", "＞": ">"}


def _convert(var: Any, native: pd.Series, text_raw: pd.Series, study: Any, ctx: Context, sites: pd.Series,
             table: RawTable, log: _Distinct, form: Any,
             censor: dict[str, pd.Series] | None = None) -> tuple[pd.Series, pd.Series]:
    """Typed value and missing-value reason of each distinct (value, site) of one column.

    ``native``, ``text_raw`` and ``sites`` hold one entry per distinct value; changes and type
    errors go to ``log``, which expands them to the cells. For a censored variable, ``censor``
    receives ``operators``: the censoring operator of each distinct value (NA when none).
    """
    censor = {} if censor is None else censor
    index = native.index
    text = text_raw.str.strip()
    trimmed = (text != text_raw)
    log.record(var.name, trimmed, text_raw, text, "trim")
    filled = text != ""
    codelist = study.codelists.get(var.codelist) if var.codelist else None
    missing_codes = list(study.missing_codes)
    upper = text.str.upper()
    is_code = upper.isin(missing_codes) & filled
    if codelist is not None:
        is_code &= ~upper.isin(codelist.codes) & ~text.str.casefold().isin(list(codelist.synonyms))
    reason = upper.where(is_code, None).astype("object")
    reason = reason.where(is_code, pd.NA)
    live = filled & ~is_code
    if is_code.any():
        log.record(var.name, is_code, text, pd.Series("", index=index), "missing-code")

    kind = var.type
    if kind in ("char", "yn"):
        value = text.where(live)
        if codelist is not None:
            mapped = text.str.casefold().map(codelist.synonyms)
            use = live & mapped.notna() & (mapped != text)
            value = value.where(~use, mapped)
            log.record(var.name, use, text, value, "synonym")
        return value.astype("str"), reason

    if kind in ("int", "num"):
        numeric_native = pd.api.types.is_numeric_dtype(native) and not pd.api.types.is_bool_dtype(native)
        if numeric_native:
            number = native.astype(float).where(live)
        else:
            # Number cells (and plain numeric text) convert in one vectorised pass; only the rest
            # (decimal commas, codes, junk) goes through the text rules.
            fast = pd.to_numeric(native.where(live, None), errors="coerce").astype(float) \
                if native.dtype == object else pd.Series(np.nan, index=index)
            number = fast.where(live)
            slow = live & number.isna()
            comma = pd.Series(False, index=index)
            digits = text
            if slow.any() and var.censored:
                # A limit typed as "<1", "> 500", "≤0.3": the number is the limit, the operator
                # goes to the censor variable (see trialkit.crf.var).
                parts = text.where(slow, "").str.extract(_CENSOR)
                limit = slow & parts[0].notna()
                if limit.any():
                    digits = text.where(~limit, parts[1])
                    censor["operators"] = parts[0].map(_CENSOR_OPERATORS).where(limit)
            if slow.any():
                candidate = digits.where(slow, "")
                comma_sites = sites.map({k: v.decimal_mark == "," for k, v in study.sites.items()}).fillna(False)
                comma = slow & comma_sites.astype(bool) & candidate.str.fullmatch(r"[+-]?\d*,\d+")
                if comma.any():
                    candidate = candidate.where(~comma, candidate.str.replace(",", ".", regex=False))
                parsed = pd.to_numeric(candidate.where(slow & candidate.str.fullmatch(
                    r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?"), None), errors="coerce").astype(float)
                number = number.where(~slow, parsed)
            if comma.any():
                log.record(var.name, comma, text, number, "decimal-comma")
            if "operators" in censor:
                log.record(var.name, censor["operators"].notna() & number.notna(), text, number, "censored")
        bad = live & (number.isna() | ~np.isfinite(number.fillna(0)))
        if kind == "int":
            bad |= live & number.notna() & (number % 1 != 0)
            number = number.where(~bad)
            value = number.round().astype("Int64")
        else:
            value = number.where(~bad)
        why = ""
        if bad.any() and not numeric_native:
            unknown_site = sites.isna() & text.str.contains(",", regex=False)
            if (bad & unknown_site).any():
                why = " (a decimal comma is accepted only from a site whose decimal mark is a comma: give --site or SITEID)"
        log.type_errors(var, bad, text, why)
        return value, reason

    if kind == "date":
        value, bad, why = _dates(var, native, text, live, sites, study, ctx, log, table)
        log.type_errors(var, bad, text, why)
        return value, reason

    if kind == "pdate":
        value, bad = _pdates(var, native, text, live, sites, study, log)
        log.type_errors(var, bad, text)
        return value, reason
    raise ValueError(f"unknown CRF type {kind}")  # pragma: no cover


def _site_order(sites: pd.Series, study: Any) -> pd.Series:
    return sites.map({k: v.date_order for k, v in study.sites.items()})


def _text_dates(text: pd.Series, live: pd.Series, sites: pd.Series, study: Any) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Parse ISO and site-order text dates; returns (timestamps, rule per cell, no-site mask).

    Dates repeat, so each distinct (text, site) pair is parsed once and broadcast back.
    """
    key = text.where(live, "").astype("object") + "\x1f" + sites.astype("object").fillna("").astype(str)
    codes, uniques = pd.factorize(key)
    split = pd.Series(uniques, dtype="object").str.split("\x1f", n=1, expand=True)
    u_text = split[0].astype("str")
    u_sites = split[1].where(split[1] != "", None).astype("object")
    u_live = u_text != ""
    parsed, rule, no_site = _text_dates_unique(u_text, u_live, u_sites, study)
    index = text.index
    return (pd.Series(parsed.to_numpy()[codes], index=index, dtype="datetime64[ns]"),
            pd.Series(rule.to_numpy()[codes], index=index, dtype="object"),
            pd.Series(no_site.to_numpy()[codes], index=index).astype(bool))


_NS_MIN, _NS_MAX = pd.Timestamp("1678-01-01"), pd.Timestamp("2261-12-31")


def _parse_iso_dates(text: pd.Series) -> pd.Series:
    """``YYYY-MM-DD`` text as nanosecond timestamps; a date outside 1678–2261 (what such a timestamp
    holds) or an impossible one is NaT, left for the "cannot read as a date" finding."""
    parsed = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    return parsed.where((parsed >= _NS_MIN) & (parsed <= _NS_MAX)).astype("datetime64[ns]")


def _text_dates_unique(text: pd.Series, live: pd.Series, sites: pd.Series, study: Any) -> tuple[pd.Series, pd.Series, pd.Series]:
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    rule = pd.Series(None, index=text.index, dtype="object")
    iso = live & text.str.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?")
    if iso.any():
        parsed = _parse_iso_dates(text[iso].str.slice(0, 10).str.replace(r"-(\d)(?=-|$)", r"-0\1", regex=True))
        out[iso] = parsed
        with_time = iso & (text.str.len() > 10)
        rule[with_time] = "datetime-to-date"
    parts = text.str.extract(_DATE_TEXT)
    typed = live & ~iso & parts[0].notna()
    no_site = pd.Series(False, index=text.index)
    if typed.any():
        orders = _site_order(sites, study)
        ymd = typed & (parts[0].str.len() == 4)
        orders = orders.where(~ymd, "YMD")
        no_site = typed & orders.isna()
        for order in ("DMY", "MDY", "YMD"):
            sel = typed & (orders == order)
            if not sel.any():
                continue
            pos = {"DMY": (3, 2, 0), "MDY": (3, 0, 2), "YMD": (0, 2, 3)}[order]
            year, month, day = (parts.loc[sel, pos[0]], parts.loc[sel, pos[1]], parts.loc[sel, pos[2]])
            ok = year.str.len() == 4
            iso_text = year + "-" + month.str.zfill(2) + "-" + day.str.zfill(2)
            out[sel] = _parse_iso_dates(iso_text.where(ok))
            rule[sel] = f"date:{order}"
    return out, rule, no_site


def _dates(var: Any, native: pd.Series, text: pd.Series, live: pd.Series, sites: pd.Series, study: Any,
           ctx: Context, log: _Distinct, table: RawTable) -> tuple[pd.Series, pd.Series, str]:
    index = native.index
    if pd.api.types.is_datetime64_any_dtype(native):
        value = native.astype("datetime64[ns]")
        timed = live & (value != value.dt.normalize())
        log.record(var.name, timed, text, value.dt.normalize(), "datetime-to-date")
        return value.dt.normalize().where(live), pd.Series(False, index=index), ""
    value = pd.Series(pd.NaT, index=index, dtype="datetime64[ns]")
    kinds = native.map(type) if native.dtype == object else None
    handled = pd.Series(False, index=index)
    if kinds is not None:
        is_date = kinds.isin([dt.date, dt.datetime, pd.Timestamp]) & live
        if is_date.any():
            # Dates outside what a nanosecond timestamp holds (years 1678-2261) are left for the
            # "cannot read as a date" finding below, never allowed to overflow.
            years = native[is_date].map(lambda d: d.year)
            is_date &= pd.Series(years.between(1678, 2261), index=years.index).reindex(index, fill_value=False)
        if is_date.any():
            stamps = pd.to_datetime(native[is_date].map(
                lambda d: d if isinstance(d, dt.datetime) else dt.datetime(d.year, d.month, d.day)),
                errors="coerce")
            value[is_date] = stamps.dt.normalize()
            timed = is_date.copy()
            timed[is_date] = stamps != stamps.dt.normalize()
            log.record(var.name, timed, text, value, "datetime-to-date")
            handled |= is_date
        is_num = kinds.isin([float, int]) & live
        if is_num.any() and table.kind == "sheet":
            serial = native[is_num].astype(float)
            # Serials past 2261-12-31 (what a nanosecond timestamp holds) are left for the
            # out-of-range finding below, never allowed to overflow (and lose the sheet).
            ok = (serial > 0) & (serial <= _SERIAL_LAST[ctx.date_system]) & (serial % 1 == 0)
            epoch = EXCEL_EPOCH[ctx.date_system]
            days = pd.to_timedelta(serial.where(ok), unit="D")
            value[is_num] = (epoch + days).astype("datetime64[ns]")
            rule = f"excel-serial-{ctx.date_system}"
            log.record(var.name, is_num & value.notna(), text, value, rule)
            handled |= is_num & value.notna()
    rest = live & ~handled
    bad = pd.Series(False, index=index)
    why = ""
    if rest.any():
        parsed, rules, no_site = _text_dates(text.where(rest, ""), rest, sites, study)
        value = value.where(~rest, parsed)
        for rule in rules[rest & parsed.notna()].dropna().unique():
            log.record(var.name, rest & parsed.notna() & (rules == rule), text, value, rule)
        bad = rest & value.isna()
        if (bad & no_site).any():
            why = " (a date typed as text needs the site's date order: give --site or fill SITEID)"
    if bad.any():
        far = bad & _out_of_range(native, text, table.kind == "sheet", ctx.date_system)
        if far.any():
            log.range_errors(var, far, text)
            bad &= ~far
    return value, bad, why


_SERIAL_LAST = {1900: 132219, 1904: 130757}  # the Excel date number of 2261-12-31 in each date system
_FAR_TEXT = re.compile(r"^\s*[+-]?(\d{4,})-\d{1,2}-\d{1,2}(?:[ T].*)?$|^\s*\d{1,2}[./-]\d{1,2}[./-](\d{4,})\s*$")


def _out_of_range(native: pd.Series, text: pd.Series, sheet: bool, date_system: int) -> pd.Series:
    """Distinct values that are dates outside 1678-2261: date cells, Excel date numbers (sheets), or
    text dates (also those a dataset reader wrote for days it could not convert, ``199107-04-26``)."""
    parts = text.str.extract(_FAR_TEXT)
    year = pd.to_numeric(parts[0].fillna(parts[1]), errors="coerce")
    far = ((year < 1678) | (year > 2261)).fillna(False).astype(bool)
    if sheet and native.dtype == object:
        numbers = pd.to_numeric(native.where(native.map(type).isin([float, int]), None), errors="coerce")
        far |= ((numbers > _SERIAL_LAST[date_system]) & (numbers % 1 == 0)).fillna(False).astype(bool)
    return far


_PDATE_ISO = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?$")
_PDATE_MY = re.compile(r"^(\d{1,2})[/.-](\d{4})$")


def _pdates(var: Any, native: pd.Series, text: pd.Series, live: pd.Series, sites: pd.Series, study: Any,
            log: _Distinct) -> tuple[pd.Series, pd.Series]:
    index = native.index
    value = pd.Series(np.nan, index=index, dtype="object")
    handled = pd.Series(False, index=index)
    formats = var.pdate_formats or ("YYYY", "YYYY-MM", "YYYY-MM-DD")
    dated = pd.Series(False, index=index)
    if native.dtype == object:
        dated = native.map(lambda v: isinstance(v, dt.date)) & live
    elif pd.api.types.is_datetime64_any_dtype(native):
        dated = live.copy()
    if dated.any():
        stamps = pd.to_datetime(native[dated].map(lambda d: pd.Timestamp(d)))
        if "YYYY-MM-DD" not in formats:
            as_text = stamps.dt.strftime("%Y-%m").where(stamps.dt.day == 1, stamps.dt.strftime("%Y-%m-%d"))
        else:
            as_text = stamps.dt.strftime("%Y-%m-%d")
        value[dated] = as_text
        log.record(var.name, dated, text, value, "excel-date")
        handled |= dated
    rest = live & ~handled
    parts = text.str.extract(_PDATE_ISO)
    iso = rest & parts[0].notna()
    if iso.any():
        canon = parts[0].copy()
        has_m = iso & parts[1].notna()
        canon[has_m] = parts.loc[has_m, 0] + "-" + parts.loc[has_m, 1].str.zfill(2)
        has_d = iso & parts[2].notna()
        canon[has_d] = canon[has_d] + "-" + parts.loc[has_d, 2].str.zfill(2)
        value[iso] = canon[iso]
        log.record(var.name, iso & (canon != text), text, value, "pdate-pad")
    my = text.str.extract(_PDATE_MY)
    month_year = rest & ~iso & my[0].notna()
    if month_year.any():
        value[month_year] = my.loc[month_year, 1] + "-" + my.loc[month_year, 0].str.zfill(2)
        log.record(var.name, month_year, text, value, "pdate:MM/YYYY")
    full = rest & ~iso & ~month_year
    if full.any():
        parsed, rules, _ = _text_dates(text.where(full, ""), full, sites, study)
        got = full & parsed.notna()
        value[got] = parsed[got].dt.strftime("%Y-%m-%d")
        for rule in rules[got].dropna().unique():
            log.record(var.name, got & (rules == rule), text, value, rule)
    checked = value.where(live)
    month_ok = checked.str.fullmatch(r"\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?")
    bad = live & ~month_ok.fillna(False).astype(bool)
    return checked.where(~bad).astype("str"), bad


# ------------------------------------------------------------------------------------------------
# Units


def _factor(alt: dict[str, Any]) -> tuple[float, float, float]:
    """(subtract, multiply, divide) of an alternative unit, from exact protocol text."""
    subtract = float(Fraction(str(alt.get("subtract", "0"))))
    multiply = float(Fraction(str(alt.get("multiply", "1"))))
    divide = float(Fraction(str(alt.get("divide", "1"))))
    return subtract, multiply, divide


def _unit_lookup(spec: dict[str, Any]) -> dict[str, str]:
    lookup = {unit_key(spec["standard"]): spec["standard"]}
    for alt in spec.get("alternatives", []):
        lookup[unit_key(alt["unit"])] = alt["unit"]
    for canonical, aliases in (spec.get("aliases") or {}).items():
        lookup.setdefault(unit_key(canonical), canonical)
        for alias in aliases:
            lookup[unit_key(alias)] = canonical
    return lookup


def _convert_units(form: Any, study: Any, data: dict[str, pd.Series], raw: dict[str, pd.Series], ctx: Context,
                   sites: pd.Series, rows: np.ndarray, subjects: pd.Series | None) -> None:
    for var in form.variables:
        spec = study.param("units", var.name)
        if not spec or var.name not in data:
            continue
        unit_var = spec.get("unit_var") or var.unit_var
        if unit_var not in data:
            continue
        units = data[unit_var]
        values = data[var.name]
        typed = units.notna() & (units != "")
        if not typed.any():
            continue
        lookup = _unit_lookup(spec)
        distinct = {u: lookup.get(unit_key(u)) for u in units[typed].unique()}
        canonical = units.where(typed, None).map(distinct)
        unknown = typed & canonical.isna()
        for pos in np.flatnonzero(unknown.to_numpy()):
            ctx.findings.append(Finding(
                code="IMP-UNIT-UNKNOWN", severity=Severity.ERROR, category=Category.CODELIST,
                message=f"{unit_var}: unit {units.iat[pos]!r} is not known for {var.name}; use "
                        f"{spec['standard']} or " + ", ".join(a["unit"] for a in spec.get("alternatives", [])),
                variable=unit_var, value=units.iat[pos], expected=spec["standard"], file=ctx.file,
                sheet=ctx.sheet, form=form.code, row=int(rows[pos]), site=_at(sites, pos),
                subject=_at(subjects, pos)))
        alias = typed & canonical.notna() & (canonical != units)
        new_units = units.where(~alias, canonical)
        _record(ctx, unit_var, rows, alias, units, new_units, "unit-alias", form.code)
        standard = spec["standard"]
        for alt in spec.get("alternatives", []):
            sel = typed & (canonical == alt["unit"])
            if not sel.any():
                continue
            subtract, multiply, divide = _factor(alt)
            converted = ((values - subtract) * multiply / divide).round(9)
            rule = f"unit:{alt['unit']}->{standard}"
            has_value = sel & values.notna()
            original = raw[var.name].where(~has_value, raw[var.name] + " " + units.astype("object").fillna(""))
            new_values = values.where(~sel, converted)
            _record(ctx, var.name, rows, has_value, original, new_values, rule, form.code)
            values = new_values
            _record(ctx, unit_var, rows, sel, units, pd.Series(standard, index=units.index), rule, form.code)
            new_units = new_units.where(~sel, standard)
            systems = set(alt.get("systems", []))
            if systems:
                allowed = {k: bool(systems & set(v.units)) for k, v in study.sites.items()}
                odd = sel & ~sites.map(allowed).fillna(True).astype(bool)
                if odd.any():
                    pos = int(np.flatnonzero(odd.to_numpy())[0])
                    ctx.findings.append(Finding(
                        code="IMP-UNIT-SITE", severity=Severity.WARNING, category=Category.NORMALISATION,
                        message=f"{var.name}: {int(odd.sum())} value(s) in {alt['unit']}, a unit this site does "
                                f"not use ({'/'.join(sorted(systems))} units); converted to {standard}: check them",
                        variable=var.name, value=units.iat[pos], file=ctx.file, sheet=ctx.sheet,
                        form=form.code, row=int(rows[pos]), site=_at(sites, pos)))
        data[var.name] = values
        data[unit_var] = new_units.astype("str")


def _derive_lab(study: Any, data: dict[str, pd.Series], raw: dict[str, pd.Series], ctx: Context,
                rows: np.ndarray, subjects: pd.Series | None, sites: pd.Series, form: str) -> None:
    """Fill LBSTRESN/LBSTRESU/LBSTNRLO/LBSTNRHI in the test's standard unit."""
    tests = data["LBTESTCD"].astype("object")
    units = data["LBORRESU"].astype("object")
    index = tests.index
    multiply = pd.Series(np.nan, index=index)
    subtract = pd.Series(0.0, index=index)
    standard = pd.Series(None, index=index, dtype="object")
    rule = pd.Series(None, index=index, dtype="object")
    keyed = pd.DataFrame({"t": tests, "u": units.where(units.notna(), None)})
    combos = keyed.dropna().drop_duplicates()
    for test, unit in combos.itertuples(index=False):
        spec = study.param("lab_units", str(test))
        sel = (tests == test) & (units == unit)
        if not spec:
            continue  # an unknown test is the codelist check's finding
        canonical = _unit_lookup(spec).get(unit_key(unit))
        if canonical is None:
            for pos in np.flatnonzero(sel.to_numpy()):
                ctx.findings.append(Finding(
                    code="IMP-UNIT-UNKNOWN", severity=Severity.ERROR, category=Category.CODELIST,
                    message=f"LBORRESU: unit {unit!r} is not known for {test}; use {spec['standard']}"
                            + "".join(f" or {a['unit']}" for a in spec.get("alternatives", [])),
                    variable="LBORRESU", value=str(unit), expected=spec["standard"], file=ctx.file,
                    sheet=ctx.sheet, form=form, row=int(rows[pos]), site=_at(sites, pos),
                    subject=_at(subjects, pos)))
            continue
        standard[sel] = spec["standard"]
        if canonical == spec["standard"]:
            multiply[sel] = 1.0
            continue
        alt = next(a for a in spec.get("alternatives", []) if a["unit"] == canonical)
        sub, mul, div = _factor(alt)
        multiply[sel] = mul / div
        subtract[sel] = sub
        rule[sel] = f"unit:{canonical}->{spec['standard']}"

    def convert(values: pd.Series) -> pd.Series:
        return ((values - subtract) * multiply).round(9)

    data["LBSTRESN"] = convert(data["LBORRES"])
    data["LBSTRESU"] = standard.where(data["LBORRES"].notna() | data["LBNRLO"].notna()
                                      | data["LBNRHI"].notna()).astype("str")
    data["LBSTNRLO"] = convert(data["LBNRLO"])
    data["LBSTNRHI"] = convert(data["LBNRHI"])
    converted = rule.notna() & data["LBORRES"].notna()
    original = raw["LBORRES"] + " " + units.fillna("").astype(str)
    for name in rule[converted].unique():
        _record(ctx, "LBSTRESN", rows, converted & (rule == name), original, data["LBSTRESN"], name, form)
