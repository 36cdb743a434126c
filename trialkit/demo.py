"""Running a synthetic study end to end: the machinery behind ``trialkit demo``.

A study brings its own synthetic-data generator as its ``demo`` plug-in (see
:mod:`trialkit.study.plugins`): it builds the uploads its sites would send (:class:`Upload`) and the
answer key of the problems it planted (:class:`Problem`), then calls :func:`run_pipeline`, which does
what a data manager does with them and knows no trial:

``uploads/siteSS/``
    every upload written the way sites send them (:func:`write_xlsx`: the site's own template,
    typed in its date order, decimal mark and separator; :func:`write_csv`: ``;``-separated text
    with decimal commas; :func:`write_xpt`: SAS transport files, one per form);
``workspace/``
    a workspace bound to the study: every upload imported, validated (with the demo's fixed data cut
    and "today", so the result never depends on the day it runs) and recorded in the ledger; held
    submissions acknowledged; the pooled datasets in ``workspace/pooled``;
the data manager's loop
    the study's :class:`DataManagerLoop`: a site's answers typed into its query workbook
    (``answers/``), read back and the queries closed by the data manager in the same workbook;
    deviations confirmed; the deviation log exported (``deviation_log.xlsx``);
``queries/``, ``report.html``
    one query workbook per site (the queries still open), and the data-quality report;
``answer_key.json``, ``demo.json``
    the planted problems, and what the demo did (seed, data cut, uploads and their submissions).

An earlier demo in the folder is replaced; any other non-empty folder is refused.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trialkit.errors import UsageError

MARKER = "demo.json"
ANSWER_KEY = "answer_key.json"
DEVIATION_LOG = "deviation_log.xlsx"
ANSWERS_DIR = "answers"  # the query workbooks the sites answered (and the data manager closed)

Row = dict[str, Any]
Records = dict[str, list[Row]]  # form code -> records of one site
Progress = Callable[[str, int, int], None]


# ------------------------------------------------------------------------------------------------
# Results


@dataclass
class DemoResult:
    """What a demo wrote and what the ledger recorded."""

    directory: Path
    workspace: Path
    uploads: Path
    answer_key: Path
    pooled: Path
    report: Path | None
    submissions: list[dict[str, Any]] = field(default_factory=list)  # one per upload, in order
    statuses: dict[str, str] = field(default_factory=dict)  # site -> status of its current data
    counts: dict[str, int] = field(default_factory=dict)  # sites, subjects, uploads, problems, ...
    seconds: float = 0.0
    report_note: str | None = None
    study: str = ""
    loop: dict[str, Any] = field(default_factory=dict)  # what the data manager's loop did (run_loop)


@dataclass
class Upload:
    """One upload a site sends: its records, how it is typed, and what the data manager does.

    ``kind`` is ``xlsx`` (the site's template), ``csv`` or ``xpt``; ``yes_no`` maps Y/N to the words
    the site types in the forms of ``yes_no_forms`` (e.g. ``{"Y": "Sì", "N": "No"}``).
    """

    site: str
    name: str  # e.g. site03_v1
    records: Records
    kind: str  # xlsx, csv, xpt
    note: str
    accept_warnings: bool = False  # acknowledged at once (a re-upload answering known queries)
    acknowledge_if_held: bool = True  # held: the data manager then acknowledges the warnings
    files: list[Path] = field(default_factory=list)
    yes_no: dict[str, str] = field(default_factory=dict)
    yes_no_forms: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pick:
    """One query or deviation of the ledger, chosen by site, code and subject (and form)."""

    site: str
    code: str
    subject: str | None = None
    form: str | None = None

    def matches(self, entry: Mapping[str, Any]) -> bool:
        """Whether a query or deviation log entry (a ledger row as a dict) is this one."""
        return (entry.get("site") == self.site and entry.get("code") == self.code
                and (self.subject is None or entry.get("subject") == self.subject)
                and (self.form is None or entry.get("form") == self.form))


@dataclass(frozen=True)
class Answer:
    """A site's answer typed into its query workbook, and the data manager's close of that query."""

    query: Pick
    response: str  # SITE_RESPONSE (e.g. "confirmed as is")
    comment: str  # SITE_COMMENT
    responded_by: str
    response_date: dt.date
    close_reason: str  # DM_REASON, with DM_ACTION = close


@dataclass(frozen=True)
class Decision:
    """The data manager confirms (or dismisses) a deviation of the log, with a reason."""

    deviation: Pick
    reason: str
    status: str = "confirmed"


@dataclass
class DataManagerLoop:
    """What the data manager does once the uploads are in — the study's demo chooses the queries:
    sites answer in their query workbooks (read back, then closed by the data manager in the same
    workbook), deviations are confirmed or dismissed, and ``resolved`` names deviations the demo
    expects corrected data to have resolved. The deviation log is exported either way."""

    answers: list[Answer] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    resolved: list[Pick] = field(default_factory=list)


@dataclass
class Problem:
    """One planted problem of the answer key."""

    site: str
    subject: str
    code: str
    form: str | None
    variable: str | None
    note: str
    severity: str
    uploads: list[str]
    resolved_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (keys as in the answer key)."""
        return dict(self.__dict__)


# ------------------------------------------------------------------------------------------------
# Writing uploads the way sites send them


def site_date(when: dt.date, site: Any) -> str:
    """A date as the site types it (its date order and separator)."""
    parts = {"D": f"{when.day:02d}", "M": f"{when.month:02d}", "Y": f"{when.year:04d}"}
    return site.date_sep.join(parts[p] for p in site.date_order)


def decimal_text(value: float, mark: str) -> Any:
    """A number as the site types it: whole numbers as int, decimals with the site's mark."""
    if float(value).is_integer():
        return int(value)
    text = repr(float(value))
    return text.replace(".", ",") if mark == "," else float(value)


def typed_cell(var: Any, value: Any, site: Any, *, form: str, yes_no: Mapping[str, str] | None = None,
               yes_no_forms: tuple[str, ...] = ()) -> Any:
    """A value as the site types it into its template.

    Full dates in the site's order; a ``YYYY-MM-DD`` partial date likewise, a ``YYYY-MM`` one as
    ``MM/YYYY`` at a day-first site; numbers with the site's decimal mark; Y/N as the site's words
    in ``yes_no_forms``.
    """
    if value is None:
        return None
    kind = var.type
    if kind == "date":
        return site_date(value, site)
    if kind == "pdate":
        if len(value) == 10:
            return site_date(dt.date.fromisoformat(value), site)
        if len(value) == 7 and site.date_order == "DMY":
            return f"{value[5:7]}{site.date_sep}{value[:4]}"
        return value
    if kind == "num":
        return decimal_text(value, site.decimal_mark)
    if kind == "int":
        return value if isinstance(value, str) else int(value)
    if kind == "yn" and yes_no and form in yes_no_forms:
        return yes_no.get(value, value)
    return str(value)


def write_xlsx(study: Any, site_id: str, records: Records, path: Path, *, yes_no: Mapping[str, str] | None = None,
               yes_no_forms: tuple[str, ...] = ()) -> Path:
    """The site's own upload template (``trialkit template --site SS``), filled the site's way."""
    from trialkit.templates import FIRST_ENTRY_ROW, build_template, save_deterministic

    site = study.site(site_id)
    book = build_template(study, site)
    for code, rows in records.items():
        form = study.form(code)
        sheet = book[code]
        variables = form.site_variables
        for r, row in enumerate(rows, start=FIRST_ENTRY_ROW):
            for c, var in enumerate(variables, start=1):
                value = typed_cell(var, row.get(var.name), site, form=code, yes_no=yes_no, yes_no_forms=yes_no_forms)
                if value is not None:
                    sheet.cell(row=r, column=c, value=value)
    save_deterministic(book, path)
    return path


def write_csv(study: Any, site_id: str, records: Records, folder: Path) -> list[Path]:
    """One ``;``-separated UTF-8 file per form, dates and decimals the site's way (an EDC export)."""
    site = study.site(site_id)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for code, rows in records.items():
        if not rows:
            continue
        variables = study.form(code).site_variables
        path = folder / f"{code.lower()}.csv"
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle, delimiter=";", lineterminator="\r\n")
            writer.writerow([v.name for v in variables])
            for row in rows:
                cells = []
                for var in variables:
                    value = row.get(var.name)
                    if value is None:
                        cells.append("")
                    elif var.type == "date":
                        cells.append(site_date(value, site))
                    elif var.type == "num":
                        cells.append(str(decimal_text(value, ",")))
                    else:
                        cells.append(str(value))
                writer.writerow(cells)
        paths.append(path)
    return paths


def _xpt_kind(kinds: dict[str, str], variables: list[Any], name: str, frame: Any) -> str:
    kind = kinds.get(next(v.type for v in variables if v.name == name), "string")
    return "float" if kind == "date" and frame[name].dtype.kind == "f" else kind


def write_xpt(study: Any, records: Records, folder: Path) -> list[Path]:
    """One SAS transport (XPT v5) file per form, named by the form (``dm.xpt`` …), as SAS exports."""
    import pandas as pd

    from trialkit.export import write_dataset

    folder.mkdir(parents=True, exist_ok=True)
    kinds = {"date": "date", "num": "float", "int": "integer"}
    paths = []
    for code, rows in records.items():
        if not rows:
            continue
        variables = study.form(code).site_variables
        columns = {}
        for var in variables:
            values = [row.get(var.name) for row in rows]
            if var.type == "date" and all(v is None for v in values):
                # an all-empty date column is written as numeric: readstat cannot read back a
                # DATE9-formatted column that holds no date
                columns[var.name] = pd.Series([float("nan")] * len(values))
            elif var.type == "date":
                columns[var.name] = pd.to_datetime(pd.Series(values, dtype=object))
            elif var.type == "num":
                columns[var.name] = pd.Series([float("nan") if v is None else float(v) for v in values])
            elif var.type == "int":
                columns[var.name] = pd.Series(values, dtype="Int64")
            else:
                columns[var.name] = pd.Series(values, dtype=object)
        frame = pd.DataFrame(columns)
        written = write_dataset(frame, folder, code.lower(), ["xpt"],
                                labels={v.name: v.export_label for v in variables},
                                types={name: _xpt_kind(kinds, variables, name, frame) for name in frame.columns},
                                dataset_label=study.form(code).export_label)
        paths.append(written["xpt"])
    return paths


def write_upload(study: Any, upload: Upload, folder: Path) -> list[Path]:
    """Write one upload under ``folder/siteSS/`` (a file, or a folder of files); returns its files."""
    site_folder = folder / f"site{upload.site}"
    site_folder.mkdir(parents=True, exist_ok=True)
    if upload.kind == "xlsx":
        return [write_xlsx(study, upload.site, upload.records, site_folder / f"{upload.name}.xlsx",
                           yes_no=upload.yes_no, yes_no_forms=upload.yes_no_forms)]
    if upload.kind == "csv":
        return write_csv(study, upload.site, upload.records, site_folder / upload.name)
    return write_xpt(study, upload.records, site_folder / upload.name)


# ------------------------------------------------------------------------------------------------
# The demo folder


def check_demo_folder(directory: Path) -> bool:
    """True when ``directory`` holds an earlier demo (to be replaced); False when it is new or empty.

    Raises :class:`~trialkit.errors.UsageError` for a non-empty folder that is not an earlier demo,
    or a path that is not a folder.
    """
    if not directory.exists():
        return False
    if not directory.is_dir():
        raise UsageError(f"{directory}: exists and is not a folder; choose a new or empty DIR for the demo")
    if not any(directory.iterdir()):
        return False
    if (directory / MARKER).is_file():
        return True
    raise UsageError(f"{directory}: the folder is not empty and holds no earlier trialkit demo ({MARKER}); "
                     "choose a new or empty DIR, e.g. trialkit demo ./trialkit-demo")


def _clear_earlier_demo(directory: Path) -> None:
    from trialkit.ledger import unlock_archive

    unlock_archive(directory / "workspace")  # its archive folders are read-only
    for name in ("workspace", "uploads", "queries", ANSWERS_DIR):
        if (directory / name).is_dir():
            shutil.rmtree(directory / name)
    for name in (MARKER, ANSWER_KEY, "report.html", DEVIATION_LOG):
        if (directory / name).exists():
            (directory / name).unlink()


def _progress(progress: Progress | None, text: str, done: int, total: int) -> None:
    if progress is not None:
        progress(text, done, total)


def _write_job(job: tuple[str, Upload, Path]) -> list[Path]:
    from trialkit.study import load_study

    study_path, upload, folder = job
    return write_upload(load_study(study_path), upload, folder)


def _validate_job(job: tuple[str, list[Path], str, dt.date, dt.date]) -> tuple[Any, list[str], Any]:
    """Import and validate one upload (with the demo's data cut and today): report, stamps and the
    records it holds (what the ledger compares with the site's current data)."""
    from trialkit.importers.reader import import_files
    from trialkit.records import submission_records
    from trialkit.study import load_study
    from trialkit.validate import validate

    study_path, files, site, data_cut, today = job
    study = load_study(study_path)
    imported = import_files(files, study, site=site)
    report = validate(study, imported, site=site, data_cut=data_cut, today=today)
    stamps = sorted({str(f["stamp"]) for f in imported.files if f.get("stamp")})
    return report, stamps, submission_records(imported.forms, study)


def _mapped(function: Callable[[Any], Any], jobs: list[Any], workers: int) -> Any:
    """``map`` over worker processes (the work is CPU-bound pandas), in order."""
    if workers <= 1 or len(jobs) <= 1:
        yield from map(function, jobs)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method)) as pool:
        yield from pool.map(function, jobs)


def run_pipeline(
    study: Any,
    directory: str | Path,
    uploads: list[Upload],
    problems: list[Problem],
    *,
    seed: int,
    data_cut: dt.date,
    today: dt.date,
    first_submission: dt.datetime,
    operator: str = "demo.datamanager",
    pool_formats: tuple[str, ...] = ("parquet", "csv", "xpt"),
    subjects: int = 0,
    progress: Progress | None = None,
    workers: int | None = None,
    loop: DataManagerLoop | None = None,
) -> DemoResult:
    """Write ``uploads``, submit them in order to a new workspace, run the data manager's ``loop``,
    pool, write query workbooks, the deviation log and the report; see the module docstring. The
    study-wide data cut is ``data_cut``; submissions are timed two hours apart from
    ``first_submission``, the loop happens on ``today``.

    ``progress(step, done, total)`` is called as the work goes on. Uploads are written and validated
    in ``workers`` processes (default: 2, or 1 on a one-core machine); they are always submitted to
    the ledger one by one, in order.
    """
    from trialkit.ledger import HELD
    from trialkit.pool import pool
    from trialkit.querybook import write_query_workbook
    from trialkit.report import write_report
    from trialkit.study.binding import init_bound_workspace

    began = time.perf_counter()
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    directory = Path(directory).expanduser()
    if check_demo_folder(directory):
        _clear_earlier_demo(directory)
    directory.mkdir(parents=True, exist_ok=True)
    study_path = str(study.path)

    # one step per upload written, per upload validated and submitted, then the loop, the pool, the
    # query workbooks and the report (the pool reports its own steps within its one)
    total = 2 * len(uploads) + 5
    _progress(progress, "writing the site uploads", 0, total)
    upload_dir = directory / "uploads"
    jobs = [(study_path, upload, upload_dir) for upload in uploads]
    for step, (upload, files) in enumerate(zip(uploads, _mapped(_write_job, jobs, workers), strict=True), start=1):
        upload.files = files
        _progress(progress, f"site {upload.site}: {upload.name} written", step, total)

    workspace_dir = directory / "workspace"
    ws = init_bound_workspace(workspace_dir, study, operator=operator)
    ws.set_data_cut(data_cut, operator=operator, now=first_submission - dt.timedelta(hours=1),
                    reason="the demo's data cut, for every site")
    submitted: list[dict[str, Any]] = []
    checks = [(study_path, upload.files, upload.site, data_cut, today) for upload in uploads]
    _progress(progress, "importing and validating the uploads", len(uploads), total)
    for step, (upload, (report, stamps, records)) in enumerate(zip(uploads, _mapped(_validate_job, checks, workers),
                                                                   strict=True)):
        _progress(progress, f"site {upload.site}: {upload.name} validated, submitting", len(uploads) + step + 1, total)
        now = first_submission + dt.timedelta(hours=2 * step)
        submission = ws.submit(upload.files, upload.site, report, records=records, operator=operator,
                               note=upload.note, accept_warnings=upload.accept_warnings, now=now, study=study,
                               template_stamp="; ".join(stamps) or None)
        entry = {"upload": upload.name, "site": upload.site, "kind": upload.kind, "submission": submission.id,
                 "status": submission.status, "counts": dict(submission.counts),
                 "files": [p.relative_to(directory).as_posix() for p in upload.files]}
        if submission.status == HELD and upload.acknowledge_if_held:
            acknowledged = ws.submit(upload.files, upload.site, report, records=records, operator=operator,
                                     accept_warnings=True, now=now + dt.timedelta(hours=1), study=study)
            entry["status"] = acknowledged.status
            entry["acknowledged"] = True
        submitted.append(entry)

    queries_dir = directory / "queries"
    generated = dt.datetime.combine(today, dt.time(12, 0), tzinfo=dt.UTC)
    _progress(progress, "the data manager's loop: answers, closes, deviation decisions", total - 4, total)
    done_loop = run_loop(ws, study, loop or DataManagerLoop(), directory, operator=operator, now=generated)

    _progress(progress, "pooling the accepted data", total - 3, total)
    pooled = workspace_dir / "pooled"

    def pool_step(step: str, done: int, steps: int) -> None:
        _progress(progress, f"pool: {step}", total - 3, total)

    pool(ws, study, pooled, formats=pool_formats, operator=operator, progress=pool_step if progress else None)

    _progress(progress, "writing the query workbooks", total - 2, total)
    sites = sorted({u.site for u in uploads})
    for site in sites:
        write_query_workbook(ws.queries_report(site, "open"), queries_dir / f"queries_site{site}.xlsx", site=site,
                             study=study, generated_at=generated)

    _progress(progress, "writing the report", total - 1, total)
    report_path = write_report(ws, study, directory / "report.html", pooled_dir=pooled, today=today)

    key_path = directory / ANSWER_KEY
    key_path.write_text(json.dumps([p.to_dict() for p in problems], indent=2, ensure_ascii=False) + "\n",
                        encoding="utf-8")
    statuses = {site: sub.status for site, sub in ws.current_submissions().items()}
    counts = {
        "sites": len(sites),
        "subjects": subjects,
        "uploads": len(uploads),
        "submissions": len(submitted),
        "problems": len(problems),
        "codes": len({p.code for p in problems}),
    }
    seconds = time.perf_counter() - began
    (directory / MARKER).write_text(json.dumps({
        "study": study.id, "protocol_version": study.protocol_version, "seed": seed,
        "data_cut": data_cut.isoformat(), "today": today.isoformat(),
        "submissions": submitted, "counts": counts, "loop": done_loop,
        "info_findings": "recorded normalisations (severity info) are expected and not in the answer key",
    }, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    _progress(progress, "done", total, total)
    return DemoResult(directory=directory, workspace=workspace_dir, uploads=upload_dir, answer_key=key_path,
                      pooled=pooled, report=report_path, submissions=submitted, statuses=statuses, counts=counts,
                      seconds=seconds, study=study.id, loop=done_loop)


# ------------------------------------------------------------------------------------------------
# The data manager's loop


def _pick(entries: list[dict[str, Any]], pick: Pick, what: str) -> dict[str, Any]:
    chosen = [e for e in entries if pick.matches(e)]
    if not chosen:
        raise RuntimeError(f"the demo's loop names a {what} the ledger does not have: {pick}; the study's demo "
                           "and its planted problems disagree")
    return chosen[0]


def fill_workbook(path: Path, target: Path, values: Mapping[str, Mapping[str, Any]]) -> Path:
    """A copy of a query workbook with cells typed into it, as a site (or the data manager) types
    them: ``values`` maps a query id to ``{column code: value}`` (``SITE_RESPONSE``, ``DM_ACTION`` …).
    The columns are found by their codes in the header row, wherever the layout puts them."""
    from openpyxl import load_workbook

    book = load_workbook(path)
    sheet = book["Queries"]
    header_row, columns = None, {}
    for row in sheet.iter_rows(min_row=1, max_row=10):
        names = {str(c.value).strip(): c.column for c in row if c.value is not None}
        if "QUERY_ID" in names:
            header_row, columns = row[0].row, names
            break
    if header_row is None:
        raise RuntimeError(f"{path}: no QUERY_ID header in the Queries sheet")
    for row in sheet.iter_rows(min_row=header_row + 1):
        qid = row[columns["QUERY_ID"] - 1].value
        for column, value in values.get(str(qid), {}).items():
            sheet.cell(row[0].row, columns[column]).value = value
    target.parent.mkdir(parents=True, exist_ok=True)
    book.save(target)
    return target


def run_loop(ws: Any, study: Any, loop: DataManagerLoop, directory: Path, *, operator: str,
             now: dt.datetime) -> dict[str, Any]:
    """Do what ``loop`` says (see :class:`DataManagerLoop`) and export the deviation log; returns
    what was done, for ``demo.json``: the queries answered and closed (with their workbooks), the
    deviations confirmed or dismissed, those resolved by data, and the log's path."""
    from trialkit.deviationlog import write_xlsx
    from trialkit.querybook import write_query_workbook

    done: dict[str, Any] = {"answered_and_closed": [], "decided": [], "resolved_by_data": [],
                            "deviation_log": DEVIATION_LOG}
    answers_dir = directory / ANSWERS_DIR
    by_site: dict[str, list[Answer]] = {}
    for answer in loop.answers:
        by_site.setdefault(answer.query.site, []).append(answer)
    for site, answers in sorted(by_site.items()):
        queries = ws.queries(site=site, status="open")
        chosen = {a: _pick(queries, a.query, "query")["query_id"] for a in answers}
        sent = write_query_workbook(ws.queries_report(site, "open"), answers_dir / f"queries_site{site}.xlsx",
                                    site=site, study=study, generated_at=now)
        # The site types its answers, the data manager reads them back ...
        answered = fill_workbook(sent, answers_dir / f"queries_site{site}_answered.xlsx", {
            qid: {"SITE_RESPONSE": a.response, "SITE_COMMENT": a.comment, "RESPONDED_BY": a.responded_by,
                  "RESPONSE_DATE": dt.datetime.combine(a.response_date, dt.time())}
            for a, qid in chosen.items()})
        first = ws.record_answers(answered, operator, site=site, now=now + dt.timedelta(hours=1))
        # ... reviews them, and closes the queries in the same workbook.
        reviewed = fill_workbook(answered, answers_dir / f"queries_site{site}_reviewed.xlsx", {
            qid: {"DM_ACTION": "close", "DM_REASON": a.close_reason} for a, qid in chosen.items()})
        second = ws.record_answers(reviewed, operator, site=site, now=now + dt.timedelta(hours=2))
        if first.refused or second.refused:
            raise RuntimeError(f"site {site}: the demo's answers were refused: {first.refused or second.refused}")
        for answer, qid in chosen.items():
            done["answered_and_closed"].append({
                "site": site, "query_id": qid, "code": answer.query.code, "subject": answer.query.subject,
                "answered": qid in first.answered, "closed": qid in second.closed,
                "workbooks": [p.relative_to(directory).as_posix() for p in (sent, answered, reviewed)]})
    log = ws.deviation_log()
    for decision in loop.decisions:
        ident = _pick(log, decision.deviation, "deviation")["deviation_id"]
        result = ws.set_deviation_status([ident], decision.status, decision.reason, operator=operator,
                                         site=decision.deviation.site, now=now + dt.timedelta(hours=3))
        done["decided"].append({"site": decision.deviation.site, "deviation_id": ident, "status": decision.status,
                                "code": decision.deviation.code, "subject": decision.deviation.subject,
                                "query_closed": bool(result.queries_closed)})
    log = ws.deviation_log()
    for pick in loop.resolved:
        entry = _pick(log, pick, "deviation")
        done["resolved_by_data"].append({"site": pick.site, "deviation_id": entry["deviation_id"], "code": pick.code,
                                         "subject": pick.subject, "status": entry["status"],
                                         "resolved_by_submission": entry["resolved_submission"]})
    write_xlsx(log, directory / DEVIATION_LOG, study_id=study.id, generated_at=now + dt.timedelta(hours=4))
    return done
