"""Cells whose value a reader would silently lose: Excel errors in an xls (calamine reads them as
blanks in every format) and formulas never calculated in an xlsx written by a program.

The xls files are written here (:func:`tests.workbook_files.biff8_stream`, :func:`~tests.workbook_files.write_cfb`);
one more is saved by LibreOffice when it is installed (in ``test_importers_formats``).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook

# a DM sheet with an error cell and a failed formula
from tests.test_importers_formats import DM_HEAD, DM_ROWS
from tests.workbook_files import Err, biff5_stream, biff8_stream, write_cfb, write_xlsb
from trialkit.findings import Severity
from trialkit.importers import excel
from trialkit.importers.reader import import_files, read_file
from trialkit.importers.sheetscan import ScanError, XlsEncrypted, scan_xls


def _cells(result, code):
    return sorted((f.sheet, f.row, f.variable, f.value) for f in result.report.findings if f.code == code)


def test_xls_error_cells_are_findings_not_blanks(tmp_path, study):
    path = write_cfb(tmp_path / "site01.xls", "Workbook", biff8_stream({"DM": DM_ROWS}))
    result = import_files([path], study, site="01")
    assert result.files[0]["format"] == "xls"
    assert _cells(result, "IMP-EXCEL-ERROR") == [("DM", 2, "ICDAT", "#N/A"), ("DM", 3, "ICDAT", "#DIV/0!")]
    finding = next(f for f in result.report.findings if f.code == "IMP-EXCEL-ERROR")
    assert finding.severity == Severity.ERROR and "cell C2 (ICDAT) holds the Excel error #N/A" in finding.message
    dm = result.forms["DM"]
    assert dm.raw["ICDAT"].tolist()[:2] == ["#N/A", "#DIV/0!"]  # kept as typed, never a blank
    assert dm.data["ICDAT"].isna().tolist() == [True, True, False]


def test_xls_error_cells_of_every_sheet_and_of_an_excel_95_workbook(tmp_path, study):
    notes = [["NOTE", "TOTAL"], ["x", Err("#REF!", formula=True)]]
    path = write_cfb(tmp_path / "site01.xls", "Workbook", biff8_stream({"Notes": notes, "DM": DM_ROWS}))
    result = import_files([path], study, site="01")
    assert ("Notes", 2, "TOTAL", "#REF!") in _cells(result, "IMP-EXCEL-ERROR")
    assert len(_cells(result, "IMP-EXCEL-ERROR")) == 3
    # Excel 5.0/95: the same records in a Book stream
    stream = bytearray(biff5_stream("DM", [DM_HEAD, ["01", "01-001", "2024-01-02", "2012-05", "F"]]))
    boolerr = b"\x05\x02\x08\x00" + (1).to_bytes(2, "little") + (2).to_bytes(2, "little") + b"\x0f\x00\x2a\x01"
    end = bytes(stream).rindex(b"\x0a\x00\x00\x00")  # the worksheet's EOF: the error cell goes before it
    old = write_cfb(tmp_path / "site95.xls", "Book", bytes(stream[:end]) + boolerr + bytes(stream[end:]))
    result = import_files([old], study, site="01")
    assert result.files[0]["biff"] == "BIFF5"
    assert _cells(result, "IMP-EXCEL-ERROR") == [("DM", 2, "ICDAT", "#N/A")]


def test_xls_scan_reads_the_date_system_and_skips_embedded_charts():
    stream = biff8_stream({"DM": DM_ROWS, "Empty": [["A"]]}, date1904=True, chart_in="DM")
    scan = scan_xls(stream)
    assert scan.date_system == 1904
    assert [(name, [e[2:] for e in found.errors]) for name, found in scan.sheets] == [
        ("DM", [("C2", "#N/A"), ("C3", "#DIV/0!")]), ("Empty", [])]
    assert scan_xls(biff8_stream({"DM": DM_ROWS})).date_system == 1900


def test_encrypted_xls_is_refused_as_password_protected(tmp_path):
    stream = biff8_stream({"DM": DM_ROWS}, encrypted=True)
    with pytest.raises(XlsEncrypted):
        scan_xls(stream)
    read = read_file(write_cfb(tmp_path / "locked.xls", "Workbook", stream))
    (finding,) = read.findings
    assert finding.code == "IMP-FILE-PASSWORD" and "remove the password" in finding.message and not read.tables


@pytest.mark.parametrize("damage", ["record past the end", "sheet past the end", "no EOF"])
def test_damaged_xls_stream_is_refused_with_a_remedy(tmp_path, damage):
    stream = bytearray(biff8_stream({"DM": DM_ROWS}))
    if damage == "record past the end":
        first_cell = bytes(stream).index(b"\x05\x02\x08\x00")  # the BOOLERR record
        stream[first_cell + 2:first_cell + 4] = b"\xff\x7f"
    elif damage == "sheet past the end":
        at = bytes(stream).index(b"\x85\x00")  # BOUNDSHEET: its offset
        stream[at + 4:at + 8] = (10**6).to_bytes(4, "little")
    else:
        stream = stream[:-4]  # the worksheet's EOF
    with pytest.raises(ScanError):
        scan_xls(bytes(stream))
    read = read_file(write_cfb(tmp_path / "damaged.xls", "Workbook", bytes(stream)))
    (finding,) = [f for f in read.findings if f.severity == Severity.ERROR]
    assert finding.code == "IMP-ERRORS-UNVERIFIED" and "save it as .xlsx" in finding.message
    assert str(tmp_path / "damaged.xls") in finding.message and not read.tables


def test_xls_that_is_no_compound_file_inside_is_refused(tmp_path):
    path = tmp_path / "broken.xls"
    good = write_cfb(tmp_path / "good.xls", "Workbook", biff8_stream({"DM": DM_ROWS})).read_bytes()
    path.write_bytes(good[:512] + b"\xff" * 512 + good[1024:])  # the FAT sector overwritten
    read = read_file(path)
    (finding,) = read.findings
    assert finding.code == "IMP-ERRORS-UNVERIFIED" and "xls) workbook is damaged" in finding.message
    assert not read.tables


def _validate_in_child(path: Path) -> list[str]:
    """``trialkit validate`` in a child process (a crafted file that made calamine claim all memory
    aborted the process): the finding codes, exit 1 expected."""
    done = subprocess.run([sys.executable, "-m", "trialkit", "validate", str(path), "--site", "01", "-f", "json"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr[-2000:]
    return [f["code"] for f in json.loads(done.stdout)["findings"] if f["severity"] == "error"]


def test_xls_dimensions_or_far_cells_that_would_exhaust_memory_are_refused_first(tmp_path):
    stream = bytearray(biff8_stream({"DM": DM_ROWS}))
    dimensions = bytes(stream).index(b"\x00\x02\x0e\x00") + 4  # the DM sheet's DIMENSIONS data
    # first row 64000 after the last (found by fuzzing: calamine reserved 858 GB and aborted)
    stream[dimensions:dimensions + 4] = (64000).to_bytes(4, "little")
    assert _validate_in_child(write_cfb(tmp_path / "lying.xls", "Workbook", bytes(stream))) == [
        "IMP-ERRORS-UNVERIFIED"]
    stream = bytearray(biff8_stream({"DM": DM_ROWS}))
    stream[dimensions + 4:dimensions + 8] = (60000).to_bytes(4, "little")  # claims 60,000 rows ...
    stream[dimensions + 10:dimensions + 12] = (60000).to_bytes(2, "little")  # ... x 60,000 columns
    assert _validate_in_child(write_cfb(tmp_path / "claims.xls", "Workbook", bytes(stream))) == ["IMP-LIMIT-COLUMNS"]
    far = [*DM_ROWS, ["01", "01-004", "2024-01-02", "2011-07", "M"]]
    stream = bytearray(biff8_stream({"DM": far}))
    last = bytes(stream).rindex(b"\x04\x02")  # the last LABEL record: put it in column 60,000 of row 5
    stream[last + 6:last + 8] = (60000).to_bytes(2, "little")
    read = read_file(write_cfb(tmp_path / "far.xls", "Workbook", bytes(stream)))
    (finding,) = read.findings
    assert finding.code == "IMP-LIMIT-COLUMNS" and "sheet 'DM' has a cell in column" in finding.message


def test_an_xls_without_error_cells_reads_as_before(tmp_path, study):
    rows = [DM_HEAD, ["01", "01-001", "2024-01-02", "2012-05", "F"]]
    result = import_files([write_cfb(tmp_path / "site01.xls", "Workbook", biff8_stream({"DM": rows}))], study,
                          site="01")
    assert not [f for f in result.report.findings if f.severity == Severity.ERROR]
    assert result.forms["DM"].data["SUBJID"].tolist() == ["01-001"]


# ------------------------------------------------------------------------------------------------
# formulas never calculated (xlsx)


def _program_written(path: Path, formulas: dict[str, str]) -> Path:
    """A DM sheet written by openpyxl (which stores formulas without their results)."""
    book = Workbook()
    sheet = book.active
    sheet.title = "DM"
    sheet.append(DM_HEAD)
    sheet.append(["01", "01-001", "2024-01-02", "2012-05", "F"])
    sheet.append(["01", "01-002", "2024-01-03", "2011-07", "M"])
    for ref, formula in formulas.items():
        sheet[ref] = formula
    book.save(path)
    return path


def test_formula_without_result_is_a_finding_not_a_blank(tmp_path, study):
    path = _program_written(tmp_path / "site01.xlsx", {"C3": "=TODAY()", "E2": '=IF(1,"F","M")'})
    result = import_files([path], study, site="01")
    found = [f for f in result.report.findings if f.code == "IMP-FORMULA-UNCALCULATED"]
    assert sorted((f.row, f.variable, f.value) for f in found) == [(2, "SEX", '=IF(1,"F","M")'),
                                                                   (3, "ICDAT", "=TODAY()")]
    message = next(f.message for f in found if f.variable == "ICDAT")
    assert message.startswith("cell C3 (ICDAT) holds a formula =TODAY() whose result was never calculated")
    assert "save it and upload it again" in message
    assert all(f.severity == Severity.ERROR for f in found)
    assert result.forms["DM"].raw["ICDAT"].tolist() == ["2024-01-02", "=TODAY()"]


def test_formulas_with_their_results_are_read_as_values(tmp_path, study):
    path = _program_written(tmp_path / "site01.xlsx", {"C3": "=TODAY()"})
    # What Excel stores after calculating: the result next to the formula (a date serial here), and
    # for a formula whose text result is empty, t="str" with an empty value.
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    sheet = parts["xl/worksheets/sheet1.xml"]
    assert b"<f>TODAY()</f><v />" in sheet
    sheet = sheet.replace(b"<f>TODAY()</f><v />", b"<f>TODAY()</f><v>45294</v>")
    sheet = sheet.replace(b'<c r="E3" t="inlineStr"><is><t>M</t></is></c>',
                          b'<c r="E3" t="str"><f>""</f><v></v></c>')
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in parts.items():
            target.writestr(name, sheet if name == "xl/worksheets/sheet1.xml" else data)
    path.write_bytes(buffer.getvalue())
    result = import_files([path], study, site="01")
    assert not [f for f in result.report.findings if f.code in ("IMP-FORMULA-UNCALCULATED", "IMP-EXCEL-ERROR")]
    assert str(result.forms["DM"].data["ICDAT"].iloc[1].date()) == "2024-01-03"


def test_uncalculated_cells_in_the_scan_itself():
    data = (b'<row r="3"><c r="C3"><f>NA()</f></c><c r="D3"><f>1+1</f><v>2</v></c>'
            b'<c r="E3" s="1"><f t="shared" si="0"/></c><c r="G3"/><c r="H3"><f>A1&amp;"x"</f><v /></c>'
            b'<x:c r="I3"><x:f>SUM(A1)</x:f></x:c><c r="K3" t="str"><f>""</f><v></v></c>'
            b'<c r="L3" t="str"><f>X</f></c></row>')
    assert excel._uncalculated(data) == [(3, 2, "C3", "=NA()"), (3, 4, "E3", "="), (3, 7, "H3", '=A1&"x"'),
                                         (3, 8, "I3", "=SUM(A1)"), (3, 11, "L3", "=X")]


# ------------------------------------------------------------------------------------------------
# hostile: tag starts without their ">" (quadratic scans), error cells by the million


def _xlsx_with_sheet_tail(path: Path, tail: bytes) -> Path:
    """A program-written DM workbook whose sheet XML gets ``tail`` before ``</sheetData>``."""
    source = _program_written(path.with_suffix(".base.xlsx"), {})
    with zipfile.ZipFile(source) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            if name == "xl/worksheets/sheet1.xml":
                data = data.replace(b"</sheetData>", b'<row r="9">' + tail + b"</row></sheetData>")
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize("head", [b'<c r="B9" t="e"><v>#N/A</v></c>', b'<c r="A9"><f>1+1</f></c>', b""])
def test_tag_starts_without_their_end_do_not_hang_the_scan(tmp_path, head):
    import random

    rnd = random.Random(7)
    filler = b"".join(b"<c " + bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(4))
                      for _ in range(300_000))  # 2 MB, compresses too little to be a zip bomb
    path = _xlsx_with_sheet_tail(tmp_path / "crafted.xlsx", head + filler)
    # before: each tag start made the error-cell (or formula, or far-cell) pattern scan to the part's
    # end — hours for this 1 MB file; now about a second, and calamine refuses the broken XML
    assert _validate_in_child(path) == ["IMP-SHEET-UNREADABLE"]


def test_error_cells_by_the_million_are_refused_before_reading(tmp_path, monkeypatch):
    from tests.workbook_files import write_ods

    cell = ('<table:table-cell table:number-columns-repeated="100" office:value-type="error" '
            'calcext:value-type="error"><text:p>#N/A</text:p></table:table-cell>')
    rows = "".join(f'<table:table-row table:number-rows-repeated="100">{cell}</table:table-row>' for _ in range(900))
    ods = write_ods(tmp_path / "errors.ods", {"DM": [DM_HEAD, ["01", "01-001", "", "", ""]]}, extra_rows={"DM": rows})
    assert ods.stat().st_size < 4000  # 9,000,000 error cells: 81 s and 6 GB before
    (finding,) = read_file(ods).findings
    assert finding.code == "IMP-LIMIT-ERROR-CELLS" and "more than 10,000 Excel error cells" in finding.message
    assert "TRIALKIT_MAX_ERROR_CELLS" in finding.message and "Fix the formulas" in finding.message
    # the same limit in the other formats, set low
    monkeypatch.setenv("TRIALKIT_MAX_ERROR_CELLS", "1")
    xls = write_cfb(tmp_path / "site01.xls", "Workbook", biff8_stream({"DM": DM_ROWS}))
    xlsx = _program_written(tmp_path / "site01.xlsx", {"C2": "=NA()", "C3": "=1/0"})
    xlsb = write_xlsb(tmp_path / "site01.xlsb", {"DM": DM_ROWS})
    for path in (xls, xlsx, xlsb):
        (finding,) = read_file(path).findings
        assert finding.code == "IMP-LIMIT-ERROR-CELLS", path.name
        assert "sheet 'DM' holds more than 1 Excel error cells" in finding.message, finding.message
    monkeypatch.setenv("TRIALKIT_MAX_ERROR_CELLS", "2")
    assert [f.code for f in read_file(xls).findings] == []
