"""Fuzzing the importers: whatever bytes or cells arrive, ``import_files`` returns an ImportResult.

Property: for mutated corpus files, mutated generated xlsx/csv uploads, xlsb and ods files whose
sheet part is damaged inside an intact zip, and random cell values written into a template sheet, :func:`~trialkit.importers.reader.import_files` never raises; the
outcome is forms, findings or both. Bounded: ~50-80 examples per property, no deadline, a few
seconds each. The corpus is read in place from ``../shared/corpus`` (skipped when absent).
"""

from __future__ import annotations

import datetime as dt
import io
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from tests.workbook_files import Err, write_ods, write_xlsb
from trialkit.importers.base import ImportResult
from trialkit.importers.reader import import_files
from trialkit.study import load_study

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
SMALL = 512 * 1024
CORPUS_FILES = sorted(p for p in CORPUS.glob("*") if p.is_file() and p.stat().st_size <= SMALL
                      and p.suffix.lower() in (".xlsx", ".xls", ".csv", ".xpt", ".sas7bdat", ".sav", ".dta",
                                               ".zsav")) if CORPUS.is_dir() else []
STUDY = load_study()
FUZZ = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                database=None)


def _import(data: bytes, name: str) -> ImportResult:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        result = import_files([path], STUDY, site="01")
    assert isinstance(result, ImportResult)
    assert result.forms or result.report.findings or result.files
    return result


mutations = st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8)


def _mutate(data: bytes, changes: list[tuple[float, int]], cut: float | None) -> bytes:
    buffer = bytearray(data)
    for where, byte in changes:
        if buffer:
            buffer[int(where * len(buffer))] = byte
    if cut is not None:
        buffer = buffer[: int(cut * len(buffer))]
    return bytes(buffer)


@pytest.mark.skipif(not CORPUS_FILES, reason=f"shared corpus not found at {CORPUS}")
@FUZZ
@given(index=st.integers(0, 10_000), changes=mutations, cut=st.none() | st.floats(0, 1))
def test_mutated_corpus_files(index, changes, cut):
    source = CORPUS_FILES[index % len(CORPUS_FILES)]
    _import(_mutate(source.read_bytes(), changes, cut), source.name)


def _upload_xlsx(values: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "AE"
    sheet.append(["SITEID", "SUBJID", "AETERM", "AESTDAT", "AEENDAT", "AEONGO", "AESER", "AETOXGR"])
    for row in values:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


BASE_XLSX = _upload_xlsx([["01", "01-001", "Rash", dt.datetime(2024, 2, 1), dt.datetime(2024, 2, 3), "N", "N", 1]])
BASE_CSV = (b"SITEID,SUBJID,AETERM,AESTDAT,AEENDAT,AEONGO,AESER,AETOXGR\n"
            b"01,01-001,Rash,2024-02-01,2024-02-03,N,N,1\n")


@FUZZ
@given(changes=mutations, cut=st.none() | st.floats(0, 1), as_csv=st.booleans())
def test_mutated_generated_uploads(changes, cut, as_csv):
    data = BASE_CSV if as_csv else BASE_XLSX
    _import(_mutate(data, changes, cut), "ae.csv" if as_csv else "site01.xlsx")


cell_values = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=20),
    st.integers(-10**12, 10**12),
    st.floats(allow_nan=True, allow_infinity=False),
    st.dates(min_value=dt.date(1900, 3, 1), max_value=dt.date(9999, 12, 31)).map(
        lambda d: dt.datetime(d.year, d.month, d.day)),
    st.booleans(),
    st.none(),
    st.sampled_from(["=1+1", "ND", "NK", "NA", "#N/A", "2024-13-45", "31/02/2024", "1e309", "-0", " ", "\t"]),
)


def _storable(value: object) -> object:
    """openpyxl refuses control characters in text; the CSV test below sends them raw."""
    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub("", value)
    return value


@FUZZ
@given(rows=st.lists(st.lists(cell_values, min_size=8, max_size=8), min_size=1, max_size=6))
def test_random_cells_in_a_template_sheet(rows):
    result = _import(_upload_xlsx([[_storable(v) for v in row] for row in rows]), "site01.xlsx")
    if "AE" in result.forms:
        assert len(result.forms["AE"]) <= len(rows)


@FUZZ
@given(rows=st.lists(st.lists(st.text(max_size=30), min_size=8, max_size=8), min_size=1, max_size=6),
       delimiter=st.sampled_from([",", ";", "\t", "|"]))
def test_random_cells_in_a_csv(rows, delimiter):
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(["SITEID", "SUBJID", "AETERM", "AESTDAT", "AEENDAT", "AEONGO", "AESER", "AETOXGR"])
    writer.writerows(rows)
    _import(buffer.getvalue().encode("utf-8", "surrogatepass"), "ae.csv")


def _parts_of(writer, suffix: str) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as folder:
        path = writer(Path(folder) / f"base{suffix}")
        with zipfile.ZipFile(path) as archive:
            return {info.filename: archive.read(info) for info in archive.infolist()}


_AE_ROWS = [["SITEID", "SUBJID", "AETERM", "AESTDAT", "AEENDAT", "AEONGO", "AESER", "AETOXGR"],
            ["01", "01-001", "Rash", "2024-02-01", "2024-02-03", "N", "N", 1.0],
            ["01", "01-002", Err("#N/A"), "2024-02-01", "2024-02-03", "N", "N", 2.0]]
BASE_PARTS = {
    "xlsb": (_parts_of(lambda p: write_xlsb(p, {"AE": _AE_ROWS}), ".xlsb"), "xl/worksheets/sheet1.bin"),
    "ods": (_parts_of(lambda p: write_ods(p, {"AE": _AE_ROWS}), ".ods"), "content.xml"),
}


@FUZZ
@given(changes=mutations, cut=st.none() | st.floats(0, 1), kind=st.sampled_from(sorted(BASE_PARTS)))
def test_mutated_sheet_parts_of_xlsb_and_ods(changes, cut, kind):
    """The sheet part itself is damaged inside an intact zip: the streaming scans and calamine meet it."""
    parts, sheet_part = BASE_PARTS[kind]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, _mutate(data, changes, cut) if name == sheet_part else data,
                             compress_type=zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED)
    _import(buffer.getvalue(), f"ae.{kind}")
