"""SDTM-shaped uploads: recognise a domain, merge SUPP-- qualifiers back, know the standard columns.

A site whose system exports SDTM sends datasets (XPT, sas7bdat, CSV) with ``STUDYID``, ``DOMAIN``
and ``USUBJID``. :func:`domain_of` says which domain a table is (``SUPPAE`` for a supplemental
qualifiers dataset: ``RDOMAIN``, ``QNAM``, ``QVAL``), :func:`merge_supp` turns a SUPP-- dataset's
records into columns of its parent (one column per ``QNAM``, matched on ``USUBJID`` and
``IDVAR``/``IDVARVAL``; each value keeps its row in the SUPP file as lineage), and
:func:`standard_columns` lists the identifier and timing columns of a domain that carry no CRF value
(``STUDYID``, ``AESEQ``, ``VISITNUM``, ``AESTDY`` …), which are not reported as unmapped.

Which form a domain becomes is the study's SDTM map: its mapping specs with ``sdtm_domain``
(:mod:`trialkit.study.mappings`); the bundled study keeps them in ``schemas/mappings/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from trialkit.findings import Category, Finding, Severity
from trialkit.importers.detect import RawTable
from trialkit.importers.header import header_key
from trialkit.importers.mapping import Foreign

IDENTIFIERS = ("STUDYID", "USUBJID")
# Identifier and timing variables of the SDTM model that never hold a CRF value.
_STANDARD = {"STUDYID", "DOMAIN", "USUBJID", "RDOMAIN", "IDVAR", "IDVARVAL", "QORIG", "QEVAL", "VISITNUM",
             "VISITDY", "EPOCH", "TAETORD", "POOLID", "SPDEVID"}
_SUFFIXES = ("SEQ", "GRPID", "REFID", "SPID", "LNKID", "LNKGRP", "DY", "STDY", "ENDY", "TPTNUM", "TPTREF",
             "BLFL", "LOBXFL", "DRVFL", "EVAL", "EVALID", "ACPTFL", "RFTDTC", "ELTM", "STRF", "ENRF",
             "STRTPT", "ENRTPT", "STTPT", "ENTPT", "TPT")


@dataclass
class Domain:
    """What an SDTM table is: its domain (``AE``), or a supplemental dataset of one (``SUPPAE``)."""

    name: str
    parent: str | None = None  # for SUPP--: the domain its qualifiers belong to

    @property
    def is_supp(self) -> bool:
        """True for a supplemental qualifiers dataset."""
        return self.parent is not None


def _column(table: RawTable, name: str) -> str | None:
    for column in table.columns:
        if header_key(column) == header_key(name):
            return column
    return None


def _first(table: RawTable, column: str) -> str:
    from trialkit.importers.normalise import to_text

    text = to_text(table.values[column]).str.strip()
    filled = text[text != ""]
    return str(filled.iloc[0]).upper() if len(filled) else ""


def domain_of(table: RawTable) -> Domain | None:
    """The SDTM domain of a table with ``STUDYID`` and ``USUBJID`` (and ``DOMAIN``, or ``RDOMAIN``
    with ``QNAM``/``QVAL`` for SUPP--), else None. An empty DOMAIN falls back to the dataset name."""
    if any(_column(table, name) is None for name in IDENTIFIERS):
        return None
    domain = _column(table, "DOMAIN")
    if domain is not None:
        name = _first(table, domain) or table.name.upper()
        return Domain(name=name) if name.isalnum() and len(name) <= 8 else None
    rdomain = _column(table, "RDOMAIN")
    if rdomain is not None and _column(table, "QNAM") and _column(table, "QVAL"):
        parent = _first(table, rdomain)
        return Domain(name=f"SUPP{parent}", parent=parent) if parent.isalnum() else None
    return None


#: Variables of the CDISC ADaM model that CRF data and SDTM domains never carry: parameters and
#: analysis values (BDS), censoring (time-to-event), treatment and population flags (ADSL), analysis
#: timing and record flags.
ADAM_VARIABLES = ("PARAMCD", "PARAM", "AVAL", "AVALC", "BASE", "CHG", "PCHG", "CNSR", "TRT01P", "TRT01A", "TRTP",
                  "TRTA", "SAFFL", "ITTFL", "FASFL", "PPROTFL", "EFFFL", "ANL01FL", "ABLFL", "AVISIT", "AVISITN",
                  "ADT", "ADY", "ASTDT", "AENDT", "DTYPE", "TRTEMFL")


def adam_evidence(table: RawTable) -> list[str]:
    """The ADaM variables of a table that looks like a CDISC analysis dataset (ADSL, ADAE, a BDS or
    time-to-event dataset): ``USUBJID``, no SDTM ``DOMAIN``, and at least two variables only the
    ADaM model has (:data:`ADAM_VARIABLES`); else ``[]``. Such a file is derived data, not what a
    site sends."""
    if _column(table, "USUBJID") is None or _column(table, "DOMAIN") is not None:
        return []
    found = [name for name in ADAM_VARIABLES if _column(table, name) is not None]
    return found if len(found) >= 2 else []


def study_ids(table: RawTable) -> list[str]:
    """The distinct STUDYID values of a table, as typed."""
    from trialkit.importers.normalise import to_text

    column = _column(table, "STUDYID")
    if column is None:
        return []
    text = to_text(table.values[column]).str.strip()
    return [str(v) for v in pd.unique(text[text != ""])]


def standard_columns(domain: str, columns: list[str]) -> set[str]:
    """The columns of ``columns`` that are SDTM identifiers or timing variables of ``domain``."""
    prefix = domain.upper()[:2]
    found = set()
    for column in columns:
        upper = column.upper()
        if upper in _STANDARD or (upper.startswith(prefix) and upper[len(prefix):] in _SUFFIXES):
            found.add(column)
    return found


def merge_supp(parent: RawTable, supp: RawTable, *, parent_file: str, supp_file: str
               ) -> tuple[RawTable, dict[str, Foreign], list[Finding], set[str]]:
    """``parent`` with one column per QNAM of ``supp``; returns (table, merged columns, findings,
    the QNAMs merged). A SUPP record that matches no parent record (or a second value for the same
    record and QNAM) is one warning per QNAM with the count, never silently dropped."""
    from trialkit.importers.normalise import to_text

    def text(table: RawTable, name: str) -> pd.Series:
        column = _column(table, name)
        if column is None:
            return pd.Series("", index=table.values.index, dtype="str")
        return to_text(table.values[column]).str.strip()

    subject = text(parent, "USUBJID")
    s_subject, idvar, idvarval = text(supp, "USUBJID"), text(supp, "IDVAR"), text(supp, "IDVARVAL")
    qnam, qval, qlabel = text(supp, "QNAM"), supp.values[_column(supp, "QVAL")], text(supp, "QLABEL")
    target = pd.Series(pd.NA, index=supp.values.index, dtype="object")  # the parent row of each SUPP row
    for variable in pd.unique(idvar):
        rows = idvar == variable
        if variable == "":
            key_parent = subject
            key_supp = s_subject[rows]
        else:
            column = _column(parent, variable)
            if column is None:
                continue
            key_parent = subject + "\x1f" + to_text(parent.values[column]).str.strip()
            key_supp = s_subject[rows] + "\x1f" + idvarval[rows]
        first_row = pd.Series(parent.values.index.to_numpy(), index=key_parent.to_numpy())
        first_row = first_row[~first_row.index.duplicated(keep="first")]
        target[rows] = key_supp.map(first_row).to_numpy()  # a subject-level one: the subject's first record
    values = parent.values.copy()
    columns = list(parent.columns)
    labels = list(parent.labels or [None] * len(columns))
    types = list(parent.types or [""] * len(columns))
    foreign: dict[str, Foreign] = {}
    findings: list[Finding] = []
    merged: set[str] = set()
    for name in pd.unique(qnam):
        if not name:
            continue
        rows = (qnam == name).to_numpy()
        matched = target[rows].notna()
        part = pd.DataFrame({"parent": target[rows], "row": supp.values.index[rows],
                             "value": qval[rows]})[matched.to_numpy()]
        doubled = part["parent"].duplicated(keep="first")
        part = part[~doubled.to_numpy()]
        lost = int((~matched).sum()) + int(doubled.sum())
        column = name if name not in values.columns else f"{name}.SUPP"
        idvars = {v for v in idvar[rows] if v}
        if idvars and not any(_column(parent, v) for v in idvars):
            lost = int(rows.sum())
            part = part.iloc[0:0]
        if lost:
            first = int(supp.values.index[rows][0])
            findings.append(Finding(
                code="MAP-SUPP-UNMATCHED", severity=Severity.WARNING, category=Category.STRUCTURE,
                message=f"{supp.name}: {lost} record(s) of QNAM {name} match no {parent.name} record in the upload "
                        f"(by USUBJID{' and ' + '/'.join(sorted(idvars)) if idvars else ''}) or repeat one; their "
                        "values are not imported: send the parent domain with its supplemental qualifiers",
                value=name, file=supp_file, sheet=supp.name, row=first, evidence={"records": lost}))
        if part.empty:
            continue
        merged.add(name)
        series = pd.Series(None, index=values.index, dtype="object")
        series.loc[part["parent"].to_numpy()] = part["value"].to_numpy()
        if (qnam[rows] != "").any() and idvar[rows].eq("").all():
            # subject level: every record of the subject gets the value
            by_subject = pd.Series(part["value"].to_numpy(), index=subject.loc[part["parent"].to_numpy()].to_numpy())
            rows_by_subject = pd.Series(part["row"].to_numpy(), index=by_subject.index)
            series = subject.map(by_subject[~by_subject.index.duplicated()]).astype("object")
            source = subject.map(rows_by_subject[~rows_by_subject.index.duplicated()])
        else:
            source = pd.Series(pd.NA, index=values.index, dtype="object")
            source.loc[part["parent"].to_numpy()] = part["row"].to_numpy()
        values[column] = series.where(series.notna(), None)
        columns.append(column)
        label = qlabel[rows].iloc[0] if rows.any() else ""
        labels.append(label or None)
        types.append("text")
        foreign[column] = Foreign(file=supp_file, sheet=supp.name, rows=source,
                                  column=f"QVAL (QNAM = {name}) of {supp.name}")
    table = RawTable(name=parent.name, kind=parent.kind, columns=columns, values=values, labels=labels, types=types,
                     header_row=parent.header_row, errors=list(parent.errors), value_labels=parent.value_labels,
                     blank_columns=set(parent.blank_columns), notes=list(parent.notes),
                     bad_dates=list(parent.bad_dates), comments=list(parent.comments))
    return table, foreign, findings, merged


def subject_of(usubjid: str, study_id: str, pattern: str | None) -> str:
    """The study's subject number in a USUBJID: the USUBJID without its STUDYID prefix, or the part
    after a separator that matches the study's subject-number pattern.

    >>> subject_of("MY-01-03-012", "MY-01", r"^\\d{2}-\\d{3}$"), subject_of("MY01-0007", "MY01", None)
    ('03-012', '0007')
    """
    import re

    text = usubjid.strip()
    if study_id and text.upper().startswith(study_id.upper()):
        text = text[len(study_id):].lstrip("-/_.")
    if pattern:
        if re.fullmatch(pattern, text):
            return text
        for position, char in enumerate(text):
            if char in "-/_." and re.fullmatch(pattern, text[position + 1:]):
                return text[position + 1:]
    return text


def complete_identifiers(table: RawTable, study: Any, *, file: str, subjects: dict[str, tuple[str, str, str, int]]
                         ) -> tuple[RawTable, dict[str, Foreign]]:
    """Add SUBJID (from USUBJID) and SITEID (from DM in the same upload, else from the subject
    number) to a domain that has neither, as SDTM keeps them in DM only. ``subjects`` maps a USUBJID
    to ``(SITEID, DM file, DM sheet, DM row)``. The added cells point at the columns they came from."""
    from trialkit.importers.normalise import to_text

    usubjid_column = _column(table, "USUBJID")
    if usubjid_column is None:
        return table, {}
    usubjid = to_text(table.values[usubjid_column]).str.strip()
    values = table.values.copy()
    columns, labels = list(table.columns), list(table.labels or [None] * len(table.columns))
    types = list(table.types or [""] * len(table.columns))
    foreign: dict[str, Foreign] = {}
    rows = pd.Series(table.values.index.to_numpy(), index=table.values.index)
    study_id = _study_id_of(table)
    ids = {u: subject_of(u, study_id, study.subject_id_pattern) for u in pd.unique(usubjid)}
    if _column(table, "SUBJID") is None:
        values["SUBJID"] = usubjid.map(ids).to_numpy()
        columns.append("SUBJID")
        labels.append("Subject identifier (from USUBJID)")
        types.append("text")
        foreign["SUBJID"] = Foreign(file=file, sheet=table.name, rows=rows, column=usubjid_column)
    if _column(table, "SITEID") is None:
        from_dm = usubjid.map({u: s[0] for u, s in subjects.items()})
        from_number = usubjid.map({u: study.subject_site(i) for u, i in ids.items()})
        values["SITEID"] = from_dm.where(from_dm.notna(), from_number).to_numpy()
        columns.append("SITEID")
        labels.append("Site identifier (from DM or the subject number)")
        types.append("text")
        dm = dict(subjects)
        in_dm = usubjid.isin(list(dm)).to_numpy()
        if in_dm.all() and dm:
            files = {s[1] for s in dm.values()}
            sheets = {s[2] for s in dm.values()}
            if len(files) == 1 and len(sheets) == 1:
                foreign["SITEID"] = Foreign(file=files.pop(), sheet=sheets.pop(),
                                            rows=usubjid.map({u: s[3] for u, s in dm.items()}),
                                            column="SITEID (of DM)")
        if "SITEID" not in foreign:
            foreign["SITEID"] = Foreign(file=file, sheet=table.name, rows=rows, column=f"{usubjid_column} "
                                        "(the site part of the subject number)")
    table = RawTable(name=table.name, kind=table.kind, columns=columns, values=values, labels=labels, types=types,
                     header_row=table.header_row, errors=list(table.errors), value_labels=table.value_labels,
                     blank_columns=set(table.blank_columns), notes=list(table.notes),
                     bad_dates=list(table.bad_dates), comments=list(table.comments))
    return table, foreign


def _study_id_of(table: RawTable) -> str:
    ids = study_ids(table)
    return ids[0] if ids else ""


def dm_subjects(table: RawTable, *, file: str) -> dict[str, tuple[str, str, str, int]]:
    """USUBJID -> (SITEID, file, sheet, row) of an SDTM DM table."""
    from trialkit.importers.normalise import to_text

    usubjid, siteid = _column(table, "USUBJID"), _column(table, "SITEID")
    if usubjid is None or siteid is None:
        return {}
    subjects = to_text(table.values[usubjid]).str.strip()
    sites = to_text(table.values[siteid]).str.strip()
    out: dict[str, tuple[str, str, str, int]] = {}
    for row, subject, site in zip(table.values.index, subjects, sites, strict=True):
        if subject and site and subject not in out:
            out[subject] = (site, file, table.name, int(row))
    return out
