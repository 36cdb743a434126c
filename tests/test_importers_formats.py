"""Formats sites send besides xlsx and CSV: SPSS portable, Excel binary (xlsb), LibreOffice (ods), and
the old .xls generations (Excel 5.0/95 BIFF5, Excel 4.0 BIFF4).

The files are generated here: ``.por`` with pyreadstat, xlsb/ods/BIFF5 with the writers of
:mod:`tests.workbook_files` (no library writes them), an ods also with LibreOffice when installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest
from openpyxl import Workbook

from tests.workbook_files import Err, biff5_stream, write_cfb, write_ods, write_xlsb
from trialkit.findings import Severity
from trialkit.importers import excel
from trialkit.importers.reader import import_files, read_file
from trialkit.importers.sheetscan import ScanError

DM_HEAD = ["SITEID", "SUBJID", "ICDAT", "BRTHYM", "SEX"]
DM_ROWS = [DM_HEAD,
           ["01", "01-001", Err("#N/A"), "2012-05", "F"],
           ["01", "01-002", Err("#DIV/0!", formula=True), "2011-07", "M"],
           ["01", "01-003", "2024-01-02", "2011-07", "M"]]


def _codes(findings, code):
    return [f for f in findings if f.code == code]


def _errors(result):
    return sorted((f.row, f.variable, f.value) for f in _codes(result.report.findings, "IMP-EXCEL-ERROR"))


def test_spss_portable_is_read_as_a_dataset(tmp_path, study):
    frame = pd.DataFrame({"SITEID": ["01", "01"], "SUBJID": ["01-001", "01-002"], "BRTHYM": ["2012-05", "2011-07"],
                          "SEX": ["F", "M"], "AGE": [11.0, 12.0]})
    path = tmp_path / "dm.por"
    pyreadstat.write_por(frame, str(path))
    read = read_file(path)
    assert read.format == "por"
    (table,) = read.tables
    assert table.columns == ["SITEID", "SUBJID", "BRTHYM", "SEX", "AGE"] and table.rows == 2
    result = import_files([path], study, site="01")
    assert result.files[0]["tables"][0]["form"] == "DM"
    assert result.forms["DM"].data["SUBJID"].tolist() == ["01-001", "01-002"]


def test_xlsb_is_reported_as_xlsb_and_its_error_cells_are_found(tmp_path, study):
    path = write_xlsb(tmp_path / "site01.xlsb", {"DM": DM_ROWS, "Notes": [["kept aside"]]}, hidden={"Notes"})
    result = import_files([path], study, site="01")
    assert result.files[0]["format"] == "xlsb"
    dm = result.forms["DM"]
    assert dm.data["SUBJID"].tolist() == ["01-001", "01-002", "01-003"]
    assert dm.raw["ICDAT"].tolist() == ["#N/A", "#DIV/0!", "2024-01-02"]
    assert _errors(result) == [(2, "ICDAT", "#N/A"), (3, "ICDAT", "#DIV/0!")]
    assert [f.sheet for f in _codes(result.report.findings, "IMP-SHEET-HIDDEN")] == ["Notes"]


def test_xlsb_named_xlsx_is_read_by_its_content(tmp_path, study):
    path = write_xlsb(tmp_path / "site01.xlsx", {"DM": DM_ROWS})
    result = import_files([path], study, site="01")
    assert result.files[0]["format"] == "xlsb"
    assert result.forms["DM"].data["SUBJID"].tolist() == ["01-001", "01-002", "01-003"]
    assert len(_errors(result)) == 2


def test_xlsb_that_cannot_be_scanned_is_refused(tmp_path, study, monkeypatch):
    """Unscanned, a sheet's size is unknown (and calamine allocates it whole): the file is not read."""
    def broken(*args, **kwargs):
        raise ScanError("a cell record is too short")

    monkeypatch.setattr(excel, "scan_xlsb_sheet", broken)
    path = write_xlsb(tmp_path / "site01.xlsb", {"DM": DM_ROWS})
    result = import_files([path], study, site="01")
    (error,) = _codes(result.report.findings, "IMP-ERRORS-UNVERIFIED")
    assert error.severity == Severity.ERROR and error.file == str(path)
    assert "a cell record is too short" in error.message and "save it as .xlsx" in error.message
    assert result.forms == {}


def test_a_crafted_xlsb_whose_sheet_is_damaged_is_refused_without_killing_the_process(tmp_path):
    """Found by fuzzing: eight bytes changed in a sheet part made its row header too short for the
    scan, and calamine then asked for 20 PB and aborted the process. Run in a child process, so that
    a regression fails this test instead of killing the test run."""
    import io
    import random
    import zipfile

    from tests.test_fuzz import BASE_PARTS, _mutate

    rnd = random.Random(288)  # the mutation the fuzzing found, made again from the generated workbook
    kind = rnd.choice(sorted(BASE_PARTS))
    parts, sheet_part = BASE_PARTS[kind]
    changes = [(rnd.random(), rnd.randrange(256)) for _ in range(rnd.randint(1, 8))]
    cut = None if rnd.random() < 0.5 else rnd.random()
    assert kind == "xlsb"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, _mutate(data, changes, cut) if name == sheet_part else data,
                             compress_type=zipfile.ZIP_DEFLATED)
    path = tmp_path / "site01.xlsb"
    path.write_bytes(buffer.getvalue())
    done = subprocess.run([sys.executable, "-m", "trialkit", "validate", str(path), "-f", "json"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr[-2000:]
    codes = [f["code"] for f in json.loads(done.stdout)["findings"]]
    assert "IMP-ERRORS-UNVERIFIED" in codes


def _damaged_ods(tmp_path, damage) -> Path:
    import io
    import zipfile

    source = write_ods(tmp_path / "whole.ods", {"AE": [["SITEID", "SUBJID"], ["01", "01-001"]]})
    buffer = io.BytesIO()
    with zipfile.ZipFile(source) as whole, zipfile.ZipFile(buffer, "w") as damaged:
        for info in whole.infolist():
            data = whole.read(info)
            if info.filename == "content.xml":
                data = damage(data)
            damaged.writestr(info.filename, data, compress_type=zipfile.ZIP_STORED if info.filename == "mimetype"
                             else zipfile.ZIP_DEFLATED)
    path = tmp_path / "site01.ods"
    path.write_bytes(buffer.getvalue())
    return path


@pytest.mark.parametrize("damage, why", [
    # content.xml cut right after a table's column declaration (791 bytes in all)
    (lambda data: data[:data.index(b">", data.index(b"<table:table-column")) + 1], "cut short"),
    # a table closed by a misspelt tag
    (lambda data: data.replace(b"</table:table>", b"</tyble:table>"), "not well-formed XML (mismatched tag"),
])
def test_a_damaged_ods_is_refused_without_hanging(tmp_path, damage, why):
    """Found by fuzzing: both made calamine's ods reader loop for ever. The scan refuses a document
    that is cut short or not well-formed; the check runs in a child process with a timeout, so that a
    regression fails instead of hanging the test run."""
    path = _damaged_ods(tmp_path, damage)
    done = subprocess.run([sys.executable, "-m", "trialkit", "validate", str(path), "-f", "json"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr[-2000:]
    (refusal,) = [f for f in json.loads(done.stdout)["findings"] if f["code"] == "IMP-ERRORS-UNVERIFIED"]
    assert why in refusal["message"]


def test_ods_is_read_with_its_error_cells(tmp_path, study):
    path = write_ods(tmp_path / "site01.ods", {"DM": DM_ROWS})
    result = import_files([path], study, site="01")
    assert result.files[0]["format"] == "ods"
    dm = result.forms["DM"]
    assert dm.data["SUBJID"].tolist() == ["01-001", "01-002", "01-003"]  # the repeated empty rows are none
    assert _errors(result) == [(2, "ICDAT", "#N/A"), (3, "ICDAT", "#DIV/0!")]


def test_ods_named_xls_is_read_by_its_content(tmp_path, study):
    path = write_ods(tmp_path / "site01.xls", {"DM": DM_ROWS})
    result = import_files([path], study, site="01")
    assert result.files[0]["format"] == "ods" and len(result.forms["DM"].data) == 3


@pytest.mark.skipif(shutil.which("libreoffice") is None and shutil.which("soffice") is None,
                    reason="LibreOffice is not installed")
@pytest.mark.parametrize("fmt", ["ods", "xls"])
def test_ods_and_xls_saved_by_libreoffice_keep_their_formula_errors(tmp_path, study, fmt):
    book = Workbook()
    sheet = book.active
    sheet.title = "DM"
    sheet.append(DM_HEAD)
    sheet.append(["01", "01-001", "=1/0", "2012-05", "F"])
    sheet.append(["01", "01-002", "=NA()", "2011-07", "M"])
    source = tmp_path / "site01.xlsx"
    book.save(source)
    office = shutil.which("libreoffice") or shutil.which("soffice")
    subprocess.run([office, "--headless", "--convert-to", fmt, "--outdir", str(tmp_path / "out"), str(source)],
                   check=True, capture_output=True, timeout=180)
    result = import_files([tmp_path / "out" / f"site01.{fmt}"], study, site="01")
    assert _errors(result) == [(2, "ICDAT", "#DIV/0!"), (3, "ICDAT", "#N/A")]


def test_excel_95_workbook_is_read(tmp_path, study):
    rows = [DM_HEAD, ["01", "01-001", "2024-01-02", "2012-05", "F"], ["01", "01-002", "2024-01-03", "2011-07", "M"]]
    path = write_cfb(tmp_path / "site01.xls", "Book", biff5_stream("DM", rows))
    result = import_files([path], study, site="01")
    assert result.files[0]["format"] == "xls" and result.files[0]["biff"] == "BIFF5"
    assert result.forms["DM"].data["SUBJID"].tolist() == ["01-001", "01-002"]


def test_damaged_excel_95_workbook_has_one_consistent_message(tmp_path):
    data = bytearray(biff5_stream("DM", [DM_HEAD, ["01", "01-001", "2024-01-02", "2012-05", "F"]]))
    data[2:4] = b"\xff\xff"  # the first record claims more bytes than the stream holds
    path = write_cfb(tmp_path / "damaged.xls", "Book", bytes(data))
    read = read_file(path)
    assert read.format == "xls"
    (finding,) = [f for f in read.findings if f.severity == Severity.ERROR]
    assert finding.code == "IMP-XLS-OLD" and "Excel 5.0/95" in finding.message and ".xlsx" in finding.message


def test_excel_4_worksheet_gets_a_message_that_does_not_contradict_itself(tmp_path):
    path = tmp_path / "site01.xls"
    # BOF (BIFF4 worksheet), a LABEL-less DIMENSIONS and EOF: an Excel 4.0 file
    path.write_bytes(b"\x09\x04\x06\x00\x00\x00\x10\x00\x00\x00" + b"\x00\x02\x0a\x00" + b"\x00" * 10
                     + b"\x0a\x00\x00\x00")
    read = read_file(path)
    assert read.format == "xls"
    (finding,) = read.findings
    assert finding.code == "IMP-XLS-OLD" and "Excel 4.0" in finding.message and ".xlsx" in finding.message
    assert "not a format trialkit reads" not in finding.message
