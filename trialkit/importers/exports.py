"""Which tables of an upload are a site system's own export, and through which mapping they are read.

:func:`plan_run` looks at every table of every file of one run (SUPP-- datasets need their parent
domain from another file) and decides, per table, in this order:

1. ``--mapping NAME`` (or, on a re-import, the mapping the submission was read with): that spec;
2. a CDISC ODM file: its ClinicalData through the study's OIDs (:mod:`trialkit.importers.odm`);
3. an SDTM dataset (``STUDYID``, ``DOMAIN``, ``USUBJID``): reported as "SDTM domain X" and read
   through the study's SDTM map (its specs with ``sdtm_domain``), SUPP-- merged back as columns;
   an SDTM export of another study is refused with one finding, not thousands;
4. a REDCap record export of the study's REDCap project (:mod:`trialkit.importers.redcap`);
5. a spec whose ``[recognise]`` columns the table has (the site's own specs first);
6. a table named by a form (the upload template, ``vs.csv``): read as that form, no mapping;
7. the site's default: the first of its ``[[sites]] mappings`` without ``[recognise]``.

A table with a plan is read through :func:`~trialkit.importers.mapping.apply_spec`; everything
else takes the ordinary path of :mod:`trialkit.importers.reader`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trialkit.findings import Category, Finding, Severity
from trialkit.importers.detect import FileRead, RawTable
from trialkit.importers.header import header_key
from trialkit.importers.mapping import Applied, Foreign, apply_spec
from trialkit.study.mappings import MappingSpec

TEMPLATE_SHEETS = {"_trialkit", "_codelists", "instructions"}


@dataclass
class TablePlan:
    """How one source table is read: its mapped outputs (one per form), findings and facts."""

    kind: str  # spec | sdtm | supp | redcap | odm | refused
    label: str
    outputs: list[Applied] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)  # source columns not read into any form
    read_into: dict[str, str] = field(default_factory=dict)  # source column -> FORM.VARIABLE
    mapping: str | None = None
    table: RawTable | None = None  # the table as read (SDTM: with its SUPP-- columns merged)
    chosen: str | None = None  # for a spec: "--mapping", "recognised" or "the site's default"

    def info(self) -> dict[str, Any]:
        """Facts for ``inspect`` and the privacy header check."""
        forms = list(dict.fromkeys(a.form for a in self.outputs if a.table is not None))
        return {"role": self.label, "mapping": self.mapping, "forms": forms,
                "form": ", ".join(forms) or None}


@dataclass
class RunPlan:
    """The plan of every table that a mapping reads, by (file, position of the table in the file)."""

    tables: dict[tuple[str, int], TablePlan] = field(default_factory=dict)

    def get(self, path: str | Path, position: int) -> TablePlan | None:
        """The plan of the table at ``position`` of ``path``, or None (the ordinary path)."""
        return self.tables.get((str(path), position))


def _data_tables(read: FileRead) -> list[tuple[int, RawTable]]:
    from trialkit.importers.detect import WORKBOOK_FORMATS

    workbook = read.format in WORKBOOK_FORMATS
    return [(i, t) for i, t in enumerate(read.tables)
            if t.sheet_type == "worksheet" and not (workbook and t.name.casefold() in TEMPLATE_SHEETS)]


def _has_columns(table: RawTable, names: list[str]) -> bool:
    keys = {header_key(c) for c in table.columns}
    return all(header_key(n) in keys for n in names)


def _reads_any(table: RawTable, spec: MappingSpec) -> bool:
    keys = {header_key(c) for c in table.columns}
    named = {c for rule in spec.spec.variables.values() for c in rule.columns}
    if spec.spec.pivot is not None:
        named |= {spec.spec.pivot.test, spec.spec.pivot.value}
    return any(header_key(c) in keys for c in named)


def _apply(plan: TablePlan, table: RawTable, spec: MappingSpec, study: Any, path: str, **kw: Any) -> TablePlan:
    applied = apply_spec(table, spec, study, file=path, **kw)
    plan.outputs.append(applied)
    plan.findings.extend(applied.findings)
    plan.mapping = spec.name
    plan.table = table
    read = {c for a in plan.outputs for c in a.used}
    plan.unread = [c for c in table.columns if c not in read]
    for column, name in applied.reads.items():
        plan.read_into.setdefault(column, f"{applied.form}.{name}")
    return plan


def plan_run(reads: list[tuple[Path, FileRead]], study: Any, *, site: str | None,
             mappings: Mapping[str, MappingSpec] | None = None, explicit: Mapping[str, str] | None = None,
             matches_form: Callable[[RawTable, Path, FileRead], bool] | None = None) -> RunPlan:
    """Decide how each table of the run is read (see the module docstring).

    ``explicit`` maps a file path to the mapping chosen for it (``--mapping``); ``matches_form`` says
    whether a table is named by a form (the reader's own rule).
    """
    mappings = dict(study.mappings if mappings is None else mappings)
    explicit = dict(explicit or {})
    run = RunPlan()
    site_specs = [mappings[n] for n in (study.sites[site].mappings if site in study.sites else ()) if n in mappings]
    sdtm: list[tuple[Path, int, RawTable, Any]] = []
    for path, read in reads:
        key = str(path)
        if read.format == "odm":
            from trialkit.importers.odm import plan_odm

            for position, plan in plan_odm(read, study, path=key).items():
                run.tables[(key, position)] = plan
            continue
        for position, table in _data_tables(read):
            chosen = explicit.get(key)
            if chosen is not None:
                spec = mappings[chosen]
                plan = TablePlan(kind="spec", label=f"read through mapping {spec.name} (--mapping)",
                                 chosen="--mapping")
                run.tables[(key, position)] = _apply(plan, table, spec, study, key,
                                                     what=f"{Path(key).name}: {table.name!r}")
                continue
            from trialkit.importers.sdtm import domain_of

            domain = domain_of(table)
            if domain is not None:
                sdtm.append((path, position, table, domain))
                continue
            from trialkit.importers.redcap import plan_redcap

            redcap = plan_redcap(table, study, path=key)
            if redcap is not None:
                run.tables[(key, position)] = redcap
                continue
            plan = _recognised(table, study, key, site_specs, mappings, matches_form, path, read)
            if plan is not None:
                run.tables[(key, position)] = plan
    if sdtm:
        _plan_sdtm(sdtm, study, mappings, run)
    return run


def _recognised(table: RawTable, study: Any, key: str, site_specs: list[MappingSpec],
                mappings: Mapping[str, MappingSpec], matches_form: Any, path: Path, read: FileRead) -> TablePlan | None:
    what = f"{path.name}: {table.name!r}"
    candidates = [s for s in site_specs if s.spec.recognise and _has_columns(table, s.spec.recognise.columns)]
    if not candidates:
        candidates = [s for s in mappings.values() if not s.sdtm_domain and s.spec.recognise
                      and _has_columns(table, s.spec.recognise.columns)]
    if len(candidates) > 1:
        names = ", ".join(s.name for s in candidates)
        plan = TablePlan(kind="refused", label="recognised by several mappings", unread=list(table.columns),
                         table=table)
        plan.findings.append(Finding(
            code="MAP-AMBIGUOUS", severity=Severity.ERROR, category=Category.STRUCTURE, file=key, sheet=table.name,
            message=f"{what}: the mappings {names} all recognise this table; nothing of it is imported: choose one "
                    "with --mapping NAME, or make their [recognise] columns tell the exports apart"))
        return plan
    if candidates:
        spec = candidates[0]
        plan = TablePlan(kind="spec", label=f"recognised by mapping {spec.name}", chosen="recognised")
        return _apply(plan, table, spec, study, key, what=what)
    if matches_form is not None and matches_form(table, path, read):
        return None
    # The site's default reads a table that has at least one column its rules name (a "Notes" sheet
    # of the site's workbook is not its export).
    defaults = [s for s in site_specs if s.spec.recognise is None and _reads_any(table, s)]
    if defaults:
        spec = defaults[0]
        plan = TablePlan(kind="spec", label=f"read through mapping {spec.name} (the site's default)",
                         chosen="the site's default")
        return _apply(plan, table, spec, study, key, what=what)
    return None


def _plan_sdtm(found: list[tuple[Path, int, RawTable, Any]], study: Any, mappings: Mapping[str, MappingSpec],
               run: RunPlan) -> None:
    from trialkit.importers.sdtm import (
        complete_identifiers,
        dm_subjects,
        merge_supp,
        standard_columns,
        study_ids,
    )

    by_domain = {s.sdtm_domain: s for s in mappings.values() if s.sdtm_domain}
    ours = header_key(study.id)
    parents = {d.name: (p, i, t) for p, i, t, d in found if not d.is_supp}
    merged: dict[tuple[str, int], tuple[RawTable, dict[str, Foreign], list[Finding]]] = {}
    for path, position, table, domain in found:
        key = str(path)
        others = [s for s in study_ids(table) if header_key(s) != ours]
        if others:
            plan = TablePlan(kind="refused", label=f"SDTM {'supplemental qualifiers' if domain.is_supp else 'domain'} "
                             f"{domain.name} of study {others[0]}", unread=list(table.columns), table=table)
            plan.findings.append(Finding(
                code="MAP-SDTM-STUDY", severity=Severity.ERROR, category=Category.STRUCTURE, file=key,
                sheet=table.name, value=others[0], expected=study.id,
                message=f"{path.name}: an SDTM export (domain {domain.name}, {table.rows} records) of study "
                        f"{', '.join(others)}, not {study.id}; nothing of it is imported: send this study's export "
                        "(or, if it is this study under another code, read it with --mapping NAME)"))
            run.tables[(key, position)] = plan
            continue
        if not domain.is_supp:
            continue
        parent = parents.get(domain.parent or "")
        if parent is None:
            plan = TablePlan(kind="supp", label=f"SDTM supplemental qualifiers of {domain.parent}",
                             unread=list(table.columns), table=table)
            plan.findings.append(Finding(
                code="MAP-SUPP-UNMATCHED", severity=Severity.WARNING, category=Category.STRUCTURE, file=key,
                sheet=table.name, value=domain.name, evidence={"records": table.rows},
                message=f"{path.name}: SDTM {domain.name} qualifies domain {domain.parent}, which is not in this "
                        f"upload; its {table.rows} record(s) are not imported: send {domain.parent} with it"))
            run.tables[(key, position)] = plan
            continue
        parent_path, parent_position, _ = parent
        base = merged.get((str(parent_path), parent_position))
        current = base[0] if base else parent[2]
        foreign = base[1] if base else {}
        notes = base[2] if base else []
        table_out, more, findings, qnams = merge_supp(current, table, parent_file=str(parent_path), supp_file=key)
        merged[(str(parent_path), parent_position)] = (table_out, {**foreign, **more}, [*notes, *findings])
        plan = TablePlan(kind="supp", label=f"SDTM supplemental qualifiers of {domain.parent}, merged into "
                         f"{parent[2].name} ({', '.join(sorted(qnams)) or 'nothing'})", table=table,
                         unread=[])
        plan.findings.append(Finding(
            code="MAP-SDTM", severity=Severity.INFO, category=Category.STRUCTURE, file=key, sheet=table.name,
            value=domain.name, message=f"{path.name}: SDTM {domain.name} ({table.rows} records): the qualifiers "
            f"{', '.join(sorted(qnams)) or '(none matched)'} are read as columns of {domain.parent}"))
        run.tables[(key, position)] = plan
    subjects: dict[str, tuple[str, str, str, int]] = {}
    for path, position, table, domain in found:
        if domain.name == "DM" and (str(path), position) not in run.tables:
            subjects.update(dm_subjects(table, file=str(path)))
    for path, position, table, domain in found:
        key = str(path)
        if domain.is_supp or (key, position) in run.tables:
            continue
        table_in, foreign, notes = merged.get((key, position), (table, {}, []))
        table_in, identifiers = complete_identifiers(table_in, study, file=key, subjects=subjects)
        foreign = {**foreign, **identifiers}
        spec = by_domain.get(domain.name)
        if spec is None:
            plan = TablePlan(kind="refused", label=f"SDTM domain {domain.name} (not collected by {study.id})",
                             unread=list(table.columns), table=table_in, findings=list(notes))
            plan.findings.append(Finding(
                code="MAP-SDTM-DOMAIN", severity=Severity.WARNING, category=Category.STRUCTURE, file=key,
                sheet=table.name, value=domain.name, evidence={"records": table.rows},
                message=f"{path.name}: SDTM domain {domain.name} ({table.rows} records) is not collected by "
                        f"{study.id} (its SDTM map reads {', '.join(sorted(by_domain)) or 'no domain'}); nothing "
                        "of it is imported"))
            run.tables[(key, position)] = plan
            continue
        plan = TablePlan(kind="sdtm", label=f"SDTM domain {domain.name}", findings=list(notes))
        plan.findings.append(Finding(
            code="MAP-SDTM", severity=Severity.INFO, category=Category.STRUCTURE, file=key, sheet=table.name,
            value=domain.name, form=spec.form,
            message=f"{path.name}: SDTM domain {domain.name} ({table.rows} records), read as form {spec.form} "
                    f"through mapping {spec.name}"))
        ignore = standard_columns(domain.name, table_in.columns)
        run.tables[(key, position)] = _apply(plan, table_in, spec, study, key, foreign=foreign, ignore=ignore,
                                             what=f"{path.name} (SDTM {domain.name})")
