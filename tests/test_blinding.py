"""Blinding and site isolation of every output trialkit writes.

One workspace (module scope): sites 01 and 07 each have an accepted upload (subjects 01-001 and
07-001) and a later rejected one whose errors opened queries; the data have been pooled once
**unblinded** (randomization list R0101 → ANAKINRA, R0701 → PLACEBO), so the arm has been inside
trialkit's reach before every blinded output below is made.

Blinding: no blinded output holds an arm column (ARM, ARMCD, ACTARM, TRT01P, ...) or the arm value
PLACEBO — pooled datasets in every format with their codebooks and manifest, the query workbooks,
``validate -f json/csv/xlsx``, ``log -f json`` and the HTML report (even when it is pointed at the
unblinded pool). ANAKINRA is also a drug code of the PT and CM codelists, so it may appear
legitimately; PLACEBO may not. The search reads what a person or a program would read: every cell,
column name, label, value label and metadata string, and the decompressed XML of xlsx files — a raw
byte search would miss text inside compressed Parquet or xlsx. Positive controls prove the search
finds the arm where it must be: in the unblinded pool's ADSL (ARM, TRT01P/TRT01A ...), ADAE (TRTA)
and the define.xml that describes them, and only there.

Isolation: a per-site output (``queries --site 01 -o``, ``validate --site 01 -f xlsx`` of a file that
also holds a record of site 07, ``report --site 01``) contains no other site's subject id or
randomization number anywhere; the all-sites listing does contain them (positive control).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pyreadstat
import pytest
from click.testing import CliRunner
from python_calamine import CalamineWorkbook

from trialkit.cli import cli
from trialkit.ledger import open_workspace

from .test_deviations import clean_subject
from .upload_builder import write_upload

FORMATS = "parquet,csv,xpt,sav,dta,datasetjson,ndjson"
DATA_CUT = "2024-04-12"
ARM_COLUMN = re.compile(r"^(ARM|ARMCD|ARMN|ACTARM|ACTARMCD|TRT\d\d[PA]N?|TRTP|TRTA|TRTPN|TRTAN)$", re.IGNORECASE)
ARM_VALUE = "PLACEBO"
SUBJECTS = {"01": "01-001", "07": "07-001"}
RANDNOS = {"01": "R0101", "07": "R0701"}


def invoke(*args: str, expect: int | tuple[int, ...] = 0):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    expected = (expect,) if isinstance(expect, int) else expect
    assert result.exit_code in expected, (args, result.output)
    return result


def upload(study, folder: Path, site: str, *, bad: bool = False, extra_site: str | None = None) -> Path:
    """Site ``site``'s clean subject; ``bad`` puts impossible weights in (errors → queries);
    ``extra_site`` adds one vital-signs record of that other site's subject."""
    records = copy.deepcopy(clean_subject())
    records["RAND"][0]["RANDNO"] = RANDNOS[site]
    for form_rows in records.values():
        for row in form_rows:
            row.update(SITEID=site, SUBJID=SUBJECTS[site])
    if bad:
        for row in records["VS"]:
            row["WEIGHT"] = 900
    if extra_site is not None:
        stranger = dict(records["VS"][0], SITEID=extra_site, SUBJID=SUBJECTS[extra_site])
        records["VS"].append(stranger)
    name = f"site{site}{'-bad' if bad else ''}{f'-with{extra_site}' if extra_site else ''}.xlsx"
    return write_upload(study, folder / name, records)


# ------------------------------------------------------------------------------------------------
# Reading everything a file says


def _xlsx_texts(path: Path) -> Iterator[str]:
    book = CalamineWorkbook.from_path(str(path))  # every sheet, hidden ones too; rich text joined
    for name in book.sheet_names:
        yield f"sheet:{name}"
        for row in book.get_sheet_by_name(name).to_python(skip_empty_area=False):
            yield from (str(v) for v in row if v not in (None, ""))
    with zipfile.ZipFile(path) as archive:  # hidden sheets, names, comments, properties
        for name in archive.namelist():
            yield archive.read(name).decode("utf-8", errors="replace")


def _readstat_texts(path: Path) -> Iterator[str]:
    reader = {".xpt": pyreadstat.read_xport, ".sav": pyreadstat.read_sav, ".dta": pyreadstat.read_dta}[path.suffix]
    try:
        frame, meta = reader(path)
    except pyreadstat._readstat_parser.PyreadstatError:
        # An all-missing date column is currently written to XPT as text with a DATE9 format, which
        # pyreadstat refuses to read back (reported to the lead). The metadata still reads, and the
        # raw bytes below hold every value, so the search stays complete.
        frame, meta = reader(path, metadataonly=True)
    yield from frame.columns
    yield meta.file_label or ""
    yield from (str(v) for v in meta.column_names_to_labels.values())
    for labels in meta.variable_value_labels.values():
        yield from (f"{k}={v}" for k, v in labels.items())
    for column in frame.columns:
        yield from frame[column].dropna().astype(str).unique()
    yield path.read_bytes().decode("latin-1")  # these formats are not compressed


def _parquet_texts(path: Path) -> Iterator[str]:
    table = pq.read_table(path)
    yield from table.schema.names
    for key, value in (table.schema.metadata or {}).items():
        yield key.decode("utf-8", errors="replace") + value.decode("utf-8", errors="replace")
    for schema_field in table.schema:
        for value in (schema_field.metadata or {}).values():
            yield value.decode("utf-8", errors="replace")
    for column in table.columns:  # the distinct texts of each text column (numbers and dates hold none)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type) \
                or pa.types.is_dictionary(column.type):
            yield from (str(v) for v in pc.unique(column).to_pylist() if v is not None)


_TEXTS: dict[str, list[str]] = {}


def texts(path: Path) -> list[str]:
    """Every piece of text a reader of ``path`` can see (read once per distinct content: an upload
    and its archived copy are the same bytes)."""
    key = f"{path.suffix}:{hashlib.sha256(path.read_bytes()).hexdigest()}"
    if key not in _TEXTS:
        _TEXTS[key] = _texts(path)
    return _TEXTS[key]


def _texts(path: Path) -> list[str]:
    if path.suffix == ".xlsx":
        return list(_xlsx_texts(path))
    if path.suffix in (".xpt", ".sav", ".dta"):
        return list(_readstat_texts(path))
    if path.suffix == ".parquet":
        return list(_parquet_texts(path))
    return [path.read_text(encoding="utf-8")]


def columns(path: Path) -> list[str]:
    """The column names of a dataset file (empty for a non-dataset file)."""
    if path.suffix == ".parquet":
        return pq.read_schema(path).names
    if path.suffix in (".xpt", ".sav", ".dta"):
        reader = {".xpt": pyreadstat.read_xport, ".sav": pyreadstat.read_sav, ".dta": pyreadstat.read_dta}
        return list(reader[path.suffix](path, metadataonly=True)[1].column_names)
    if path.suffix == ".csv" and not path.name.endswith(".codebook.csv"):
        return path.read_text(encoding="utf-8").splitlines()[0].split(",")
    return []


def arm_findings(path: Path) -> list[str]:
    """Why ``path`` is not blinded: arm columns and texts holding PLACEBO (empty when it is)."""
    found = [f"column {c}" for c in columns(path) if ARM_COLUMN.match(c)]
    found += [f"text {t[:80]!r}" for t in texts(path) if ARM_VALUE in t]
    return found


def other_site_ids(path: Path, site: str) -> list[str]:
    """Subject ids and randomization numbers of sites other than ``site`` found in ``path``."""
    others = [v for s, v in SUBJECTS.items() if s != site] + [v for s, v in RANDNOS.items() if s != site]
    pattern = re.compile(r"\b(?!" + re.escape(site) + r"-)\d\d-\d{3}\b")
    found = []
    for text in texts(path):
        found += [o for o in others if o in text]
        found += [m.group(0) for m in pattern.finditer(text)]
    return sorted(set(found))


# ------------------------------------------------------------------------------------------------
# The workspace


@pytest.fixture(scope="module")
def trial(tmp_path_factory, study) -> Path:
    root = tmp_path_factory.mktemp("blinding")
    ws = root / "ws"
    invoke("init", str(ws), "-q")
    for site in SUBJECTS:
        invoke("submit", str(upload(study, root, site)), "--site", site, "--workspace", str(ws),
               "--accept-warnings", "--data-cut", DATA_CUT, "-q")
        invoke("submit", str(upload(study, root, site, bad=True)), "--site", site, "--workspace", str(ws),
               "--data-cut", DATA_CUT, "-q", expect=1)
    randlist = root / "randlist.csv"
    randlist.write_text(f"RANDNO,ARM\n{RANDNOS['01']},ANAKINRA\n{RANDNOS['07']},PLACEBO\n")
    invoke("pool", "--workspace", str(ws), "-o", str(root / "unblinded"), "-f", FORMATS,
           "--unblind", str(randlist), "--operator", "unblinded.statistician", "-q")
    invoke("pool", "--workspace", str(ws), "-o", str(root / "pooled"), "-f", FORMATS, "-q")
    return root


def test_the_workspace_has_queries_of_both_sites(trial):
    sites = {q["site"] for q in open_workspace(trial / "ws").queries(status="open")}
    assert sites == {"01", "07"}


# ------------------------------------------------------------------------------------------------
# Blinding


def test_blinded_pool_holds_no_arm_in_any_format(trial):
    out = trial / "pooled"
    files = sorted(p for p in out.iterdir() if p.is_file())
    suffixes = {p.suffix for p in files}
    assert {".parquet", ".csv", ".xpt", ".sav", ".dta", ".xlsx", ".md", ".json", ".ndjson", ".xml"} <= suffixes
    assert len([p for p in files if p.name.startswith("adsl.")]) == 8  # 7 formats + csv codebook
    assert {p.name: arm_findings(p) for p in files if arm_findings(p)} == {}
    assert json.loads((out / "manifest.json").read_text())["unblinded"] is False


def test_unblinded_pool_has_the_arm_in_adsl_and_adae_only_and_records_the_operator(trial):
    out = trial / "unblinded"
    for fmt in ("parquet", "csv", "xpt", "sav", "dta"):
        adsl = out / f"adsl.{fmt}"
        assert {"ARM", "TRT01P", "TRT01PN", "TRT01A", "TRT01AN"} <= set(columns(adsl)), adsl.name
        assert any(ARM_VALUE in t for t in texts(adsl)), adsl.name  # the search sees the arm
        assert {"TRTA", "TRTAN"} <= set(columns(out / f"adae.{fmt}")), fmt
    assert ARM_VALUE in (out / "adsl.json").read_text(encoding="utf-8")
    # define.xml describes the treatment variables with their codelist (the study's arms).
    assert 'OID="IT.ADSL.TRT01P"' in (out / "define.xml").read_text(encoding="utf-8")
    for path in sorted(out.iterdir()):
        if path.name.startswith(("adsl.", "adae.")) or path.name == "define.xml":
            continue
        if path.name.startswith("codebook."):  # describes ADSL's ARM column, never its values
            assert not [t for t in texts(path) if ARM_VALUE in t], path.name
            if path.suffix == ".xlsx":
                book = openpyxl.load_workbook(path)
                rows = [r for r in book["Variables"].iter_rows(min_row=2, values_only=True) if ARM_COLUMN.match(str(r[1]))]
                assert rows and {r[0] for r in rows} == {"adsl", "adae"}
            continue
        assert arm_findings(path) == [], path.name
    assert json.loads((out / "manifest.json").read_text())["unblinded"] is True
    events = [e for e in open_workspace(trial / "ws").audit() if e["action"] == "unblind"]
    assert len(events) == 1
    assert events[0]["operator"] == "unblinded.statistician"
    assert events[0]["detail"]["out"] == str(out)


def test_query_workbooks_hold_no_arm(trial):
    base = trial / "books" / "queries.xlsx"
    base.parent.mkdir(exist_ok=True)
    invoke("queries", "--workspace", str(trial / "ws"), "-o", str(base), "-q")
    books = sorted(base.parent.glob("queries*.xlsx"))
    assert len(books) == 2
    assert {b.name: arm_findings(b) for b in books} == {b.name: [] for b in books}


@pytest.mark.parametrize("fmt", ["json", "csv", "xlsx"])
def test_validation_outputs_hold_no_arm(trial, fmt):
    out = trial / f"validate.{fmt}"
    invoke("validate", str(trial / "site07-bad.xlsx"), "--site", "07", "-f", fmt, "-o", str(out),
           "--data-cut", DATA_CUT, "-q", expect=1)
    assert out.stat().st_size > 0
    assert arm_findings(out) == []


def test_log_holds_no_arm_after_an_unblinding(trial):
    result = invoke("log", "--workspace", str(trial / "ws"), "-f", "json")
    data = json.loads(result.output)
    assert "unblind" in [a["action"] for a in data["audit"]]
    assert ARM_VALUE not in result.output
    assert "ANAKINRA" not in result.output.upper()  # no drug is named in the ledger's own records


def test_html_report_holds_no_arm_even_from_an_unblinded_pool(trial):
    for pooled in ("pooled", "unblinded"):
        out = trial / f"report-{pooled}.html"
        invoke("report", "--workspace", str(trial / "ws"), "--pooled", str(trial / pooled), "-o", str(out), "-q")
        text = out.read_text(encoding="utf-8")
        assert ARM_VALUE not in text, pooled
        assert not re.search(r"\b(ARM|ARMCD|ACTARM|TRT01[PA])\b", text), pooled


# ------------------------------------------------------------------------------------------------
# Isolation


def test_all_sites_listing_names_both_sites_subjects(trial):
    """Positive control for the isolation tests: the search finds site 07 where it belongs."""
    out = trial / "all-queries.json"
    out.write_text(invoke("queries", "--workspace", str(trial / "ws"), "-f", "json").output, encoding="utf-8")
    assert other_site_ids(out, "01") == ["07-001"]


def test_site_query_workbook_holds_only_that_sites_subjects(trial):
    folder = trial / "site-books"
    folder.mkdir(exist_ok=True)
    invoke("queries", "--workspace", str(trial / "ws"), "--site", "01", "-o", str(folder / "q01.xlsx"), "-q")
    assert other_site_ids(folder / "q01.xlsx", "01") == []
    assert any(SUBJECTS["01"] in t for t in texts(folder / "q01.xlsx"))
    invoke("queries", "--workspace", str(trial / "ws"), "-o", str(folder / "queries.xlsx"), "-q")
    for site in SUBJECTS:
        book = folder / f"queries_site{site}.xlsx"
        assert other_site_ids(book, site) == [], book.name


def test_site_validation_workbook_leaves_out_another_sites_record(trial, study):
    mixed = upload(study, trial, "01", bad=True, extra_site="07")
    out = trial / "validate-site01.xlsx"
    invoke("validate", str(mixed), "--site", "01", "-f", "xlsx", "-o", str(out), "--data-cut", DATA_CUT, "-q",
           expect=1)
    assert any(SUBJECTS["01"] in t for t in texts(out))  # site 01's own queries are there
    assert other_site_ids(out, "01") == []


def test_site_report_holds_only_that_sites_subjects(trial):
    out = trial / "report-site01.html"
    invoke("report", "--workspace", str(trial / "ws"), "--site", "01", "--pooled", str(trial / "pooled"),
           "-o", str(out), "-q")
    assert SUBJECTS["01"] in out.read_text(encoding="utf-8")
    assert other_site_ids(out, "01") == []


# ------------------------------------------------------------------------------------------------
# The demo (runs the whole synthetic study: about a minute)


def test_demo_outputs_hold_no_arm(demo_run):
    folder, _ = demo_run
    outputs = [p for p in sorted(folder.rglob("*")) if p.is_file()
               and p.suffix in (".parquet", ".csv", ".xpt", ".sav", ".dta", ".xlsx", ".md", ".json", ".html")]
    assert any(p.suffix == ".html" for p in outputs) and any(p.name == "adsl.parquet" for p in outputs)
    assert {str(p.relative_to(folder)): arm_findings(p) for p in outputs if arm_findings(p)} == {}
