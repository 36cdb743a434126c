"""Sizes are checked before a reader allocates: a stray far cell is one ``file`` finding, in bounded memory.

Every hostile file is generated here, tiny on disk: an xlsx with one cell at XFD1048576 (without a
``<dimension>``, and with one that lies), a cell at XFD5000, a cell whose reference lies about its
row; SpreadsheetML files whose ``ss:Index`` / ``ss:MergeAcross`` claim 400,000,000 rows or columns;
an ods that repeats one filled cell over 16,384 columns and a million rows; an xlsb with a cell in
column XFD of row 1,000,000. They are imported in ONE run together with a good upload, in a child
process whose address space is capped (so a regression fails fast instead of swapping): each gives
one refusal, the good file is still read, and the peak resident memory stays under 1 GB.

A sheet's extent just under the cell limit is read: ``test_a_far_cell_under_the_limit_is_read``.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

from openpyxl import Workbook

from tests.workbook_files import write_ods, write_xlsb

PEAK_MB = 1024
DM_HEAD = ["SITEID", "SUBJID", "ICDAT", "BRTHYM", "SEX"]
DM_ROW = ["01", "01-001", "2024-01-02", "2012-05", "F"]


def _dm_parts() -> dict[str, bytes]:
    book = Workbook()
    sheet = book.active
    sheet.title = "DM"
    sheet.append(DM_HEAD)
    sheet.append(DM_ROW)
    buffer = io.BytesIO()
    book.save(buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def _xlsx_with(path: Path, extra_rows: str, dimension: str | None) -> Path:
    """The good DM workbook with ``extra_rows`` appended to its sheet data; ``dimension`` replaces the
    ``<dimension>`` element (None: removed)."""
    parts = _dm_parts()
    sheet = parts["xl/worksheets/sheet1.xml"].decode()
    start = sheet.index("<dimension")
    end = sheet.index("/>", start) + 2
    sheet = sheet[:start] + (f'<dimension ref="{dimension}"/>' if dimension else "") + sheet[end:]
    sheet = sheet.replace("</sheetData>", extra_rows + "</sheetData>")
    parts["xl/worksheets/sheet1.xml"] = sheet.encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return path


def _cell(ref: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>x</t></is></c>'


SSML = ('<?xml version="1.0"?>\n<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet" '
        'xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet"><Worksheet ss:Name="DM"><Table>{}</Table>'
        "</Worksheet></Workbook>")


def _hostile_files(folder: Path) -> dict[str, Path]:
    files = {
        "xfd1048576-no-dimension.xlsx": _xlsx_with(folder / "xfd1048576-no-dimension.xlsx",
                                                   f'<row r="1048576">{_cell("XFD1048576")}</row>', None),
        "xfd1048576-lying-dimension.xlsx": _xlsx_with(folder / "xfd1048576-lying-dimension.xlsx",
                                                      f'<row r="1048576">{_cell("XFD1048576")}</row>', "A1:E2"),
        "xfd5000.xlsx": _xlsx_with(folder / "xfd5000.xlsx", f'<row r="5000">{_cell("XFD5000")}</row>', "A1:E2"),
        "cell-beyond-its-row.xlsx": _xlsx_with(folder / "cell-beyond-its-row.xlsx",
                                               f'<row r="3">{_cell("Z4000000")}</row>', "A1:E3"),
        # 52 x 900,000 = 46.8 million cells: over the limit, which keeps a read under 1 GB
        "az900000.xlsx": _xlsx_with(folder / "az900000.xlsx", f'<row r="900000">{_cell("AZ900000")}</row>', None),
    }
    for name, table in {
        "ssml-row-index.xls": '<Row ss:Index="400000000"><Cell><Data ss:Type="String">x</Data></Cell></Row>',
        "ssml-cell-index.xls": '<Row><Cell ss:Index="400000000"><Data ss:Type="String">x</Data></Cell></Row>',
        "ssml-merge-across.xls": '<Row><Cell ss:MergeAcross="400000000"><Data ss:Type="String">x</Data></Cell></Row>',
    }.items():
        path = folder / name
        path.write_text(SSML.format(table))
        assert path.stat().st_size < 500
        files[name] = path
    files["ods-repeated-cell.ods"] = write_ods(folder / "ods-repeated-cell.ods", {"DM": [DM_HEAD, DM_ROW]}, extra_rows={
        "DM": '<table:table-row table:number-rows-repeated="1000000"><table:table-cell '
              'table:number-columns-repeated="16384" office:value-type="float" office:value="1"/></table:table-row>'})
    files["xlsb-far-cell.xlsb"] = write_xlsb(folder / "xlsb-far-cell.xlsb", {"DM": [DM_HEAD, DM_ROW, [None] * 16383 + [1.0]]},
                                             row_numbers={"DM": [0, 1, 999_999]})
    return files


CHILD = textwrap.dedent("""
    import json, resource, sys
    limit = 3 << 30  # a regression fails with MemoryError or an abort, not by swapping
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from trialkit.importers.reader import import_files
    from trialkit.study import load_study
    study = load_study()
    result = import_files(sys.argv[1:], study, site="01")
    by_file = {}
    for finding in result.report.findings:
        if finding.severity == "error":
            by_file.setdefault(finding.file, []).append([finding.code, finding.category.value, finding.message])
    # VmHWM is this process's own peak (ru_maxrss would start from the parent's peak at the fork).
    status = open("/proc/self/status").read()
    peak_kb = int(status.split("VmHWM:")[1].split()[0]) if "VmHWM:" in status else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"errors": by_file, "forms": {k: len(v.data) for k, v in result.forms.items()},
                      "peak_mb": peak_kb / 1024}))
""")


def test_far_cells_are_refused_before_allocation_and_the_run_goes_on(tmp_path):
    files = _hostile_files(tmp_path)
    good = tmp_path / "good-dm.xlsx"
    book = Workbook()
    book.active.title = "DM"
    book.active.append(DM_HEAD)
    book.active.append(DM_ROW)
    book.save(good)
    paths = [str(p) for p in files.values()] + [str(good)]
    done = subprocess.run([sys.executable, "-c", CHILD, *paths], capture_output=True, text=True, timeout=600,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    for name, path in files.items():
        errors = report["errors"].get(str(path), [])
        assert len(errors) == 1, (name, errors)
        code, category, message = errors[0]
        assert code.startswith("IMP-LIMIT-") and category == "file", (name, code, message)
        assert "TRIALKIT_MAX_" in message
    assert str(good) not in report["errors"]
    assert report["forms"] == {"DM": 1}  # the good file's one record, nothing from the hostile ones
    assert report["peak_mb"] < PEAK_MB, report["peak_mb"]


def test_a_far_cell_under_the_limit_is_read(tmp_path, study):
    from trialkit.importers.reader import import_files

    path = _xlsx_with(tmp_path / "far-but-small.xlsx", f'<row r="90000">{_cell("AX90000")}</row>', None)
    result = import_files([path], study, site="01")
    assert result.forms["DM"].data["SUBJID"].tolist()[0] == "01-001"
    assert not [f for f in result.report.findings if f.code.startswith("IMP-LIMIT")]
