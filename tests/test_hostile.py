"""Hostile uploads: each is refused quickly with ONE ``file`` error naming the limit, never an exception.

Every hostile file is generated here in ``tmp_path`` (defect-named): entity bombs and external
entities in xlsx parts and SpreadsheetML, zip bombs (honest and with a lying directory), absurd
``<dimension>`` claims, a 10 MB cell, a CSV with a 50 MB line. Each import must finish well within a
generous time bound and without the process's peak memory growing by hundreds of MB.
"""

from __future__ import annotations

import io
import resource
import time
import zipfile
import zlib
from pathlib import Path

import pytest
from openpyxl import Workbook

from trialkit.errors import UsageError
from trialkit.findings import Category, Severity
from trialkit.importers.limits import (
    Limits,
    TextRuns,
    dimension_claim,
    longest_line,
    longest_line_in_file,
)
from trialkit.importers.reader import import_files, read_file

MiB = 1024 * 1024
SECONDS = 5.0  # generous: the measured times are tens of milliseconds (docs/limits.md)
RSS_GROWTH_MB = 300

BOMB_DTD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    + "]>\n"
)
XXE_DTD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
           '<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n')


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _template_bytes(rows: list[list[object]] | None = None) -> dict[str, bytes]:
    """The parts of a small, valid DM workbook written by openpyxl."""
    book = Workbook()
    sheet = book.active
    sheet.title = "DM"
    for row in rows or [["SITEID", "SUBJID", "ICDAT", "BRTHYM", "SEX"], ["01", "01-001", "2024-01-02", "2012-04", "F"]]:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def _write_zip(path: Path, parts: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return path


def _refused_once(path: Path, study, code: str, limit: str, **kw) -> object:
    """Import ``path``; assert one file error naming ``limit``, bounded time and memory; return it."""
    before = _peak_mb()
    start = time.perf_counter()
    result = import_files([path], study, **kw)
    elapsed = time.perf_counter() - start
    growth = _peak_mb() - before
    errors = [f for f in result.report.findings if f.severity == Severity.ERROR]
    assert [f.code for f in errors] == [code], [f.message for f in errors]
    finding = errors[0]
    assert finding.category == Category.FILE
    assert finding.file == str(path)
    assert limit in finding.message and finding.check == limit
    assert finding.evidence["limit"] == limit and finding.evidence["measured"] is not None
    assert result.forms == {}
    assert elapsed < SECONDS, f"{path.name}: {elapsed:.2f} s"
    assert growth < RSS_GROWTH_MB, f"{path.name}: peak RSS grew {growth:.0f} MB"
    return finding


# -- xlsx: entities ---------------------------------------------------------------------------------


def test_billion_laughs_in_workbook_xml(tmp_path, study):
    parts = _template_bytes()
    body = parts["xl/workbook.xml"].split(b"?>", 1)[-1]
    parts["xl/workbook.xml"] = BOMB_DTD.encode() + body.replace(b"<sheets>", b"<sheets>&lol9;", 1)
    path = _write_zip(tmp_path / "billion-laughs-workbook.xlsx", parts)
    finding = _refused_once(path, study, "IMP-XML-DOCTYPE", "TRIALKIT_MAX_ENTITY_DECLARATIONS")
    assert "xl/workbook.xml" in finding.message and "ENTITY" in finding.message


def test_billion_laughs_in_sheet_part(tmp_path, study):
    parts = _template_bytes()
    body = parts["xl/worksheets/sheet1.xml"].split(b"?>", 1)[-1]
    parts["xl/worksheets/sheet1.xml"] = BOMB_DTD.encode() + body
    path = _write_zip(tmp_path / "billion-laughs-sheet.xlsx", parts)
    finding = _refused_once(path, study, "IMP-XML-DOCTYPE", "TRIALKIT_MAX_ENTITY_DECLARATIONS")
    assert "xl/worksheets/sheet1.xml" in finding.message


def test_external_entity_in_shared_strings(tmp_path, study):
    parts = _template_bytes()
    name = next(n for n in parts if n.lower().endswith("sharedstrings.xml")) if any(
        n.lower().endswith("sharedstrings.xml") for n in parts) else "xl/worksheets/sheet1.xml"
    body = parts[name].split(b"?>", 1)[-1]
    parts[name] = XXE_DTD.encode() + body
    path = _write_zip(tmp_path / "external-entity.xlsx", parts)
    finding = _refused_once(path, study, "IMP-XML-DOCTYPE", "TRIALKIT_MAX_ENTITY_DECLARATIONS")
    assert "/etc/passwd" not in (finding.value or "")


def test_doctype_after_long_comment_prolog_is_refused(tmp_path, study):
    parts = _template_bytes()
    body = parts["xl/workbook.xml"].split(b"?>", 1)[-1]
    parts["xl/workbook.xml"] = b"<?xml version='1.0'?><!--" + b"x" * (200 * 1024) + b"-->" + XXE_DTD.encode().split(
        b"?>", 1)[1] + body
    path = _write_zip(tmp_path / "doctype-after-long-comment.xlsx", parts)
    _refused_once(path, study, "IMP-XML-DOCTYPE", "TRIALKIT_MAX_ENTITY_DECLARATIONS")


# -- xlsx: zip bombs -----------------------------------------------------------------------------


def _zeros_deflate(megabytes: int) -> tuple[bytes, int]:
    """A raw deflate stream of ``megabytes`` MiB of zeros built from one repeated, self-contained
    segment (fast to make), and its CRC-32."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = compressor.compress(b"0" * MiB) + compressor.flush(zlib.Z_FULL_FLUSH)
    stream = segment * megabytes + b"\x03\x00"  # final empty fixed-Huffman block
    crc = 0
    block = b"0" * MiB
    for _ in range(megabytes):
        crc = zlib.crc32(block, crc)
    return stream, crc


def _handmade_zip(path: Path, parts: dict[str, bytes], name: str, deflated: bytes, crc: int, size: int) -> Path:
    import struct

    entries = []
    out = io.BytesIO()
    members = [(k, zlib.compress(v)[2:-4], zlib.crc32(v), len(v)) for k, v in parts.items() if k != name]
    members.append((name, deflated, crc, size))
    for member, payload, member_crc, member_size in members:
        offset = out.tell()
        encoded = member.encode()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, member_crc, len(payload),
                              member_size & 0xFFFFFFFF, len(encoded), 0))
        out.write(encoded)
        out.write(payload)
        entries.append((encoded, member_crc, len(payload), member_size, offset))
    directory = out.tell()
    for encoded, member_crc, compressed, member_size, offset in entries:
        out.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, member_crc, compressed,
                              member_size & 0xFFFFFFFF, len(encoded), 0, 0, 0, 0, 0, offset))
        out.write(encoded)
    end = out.tell()
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), end - directory,
                          directory, 0))
    path.write_bytes(out.getvalue())
    return path


@pytest.fixture(scope="module")
def zeros_300mb():
    return _zeros_deflate(300)


def test_zip_bomb_compression_ratio(tmp_path, study, zeros_300mb):
    deflated, crc = zeros_300mb
    parts = _template_bytes()
    path = _handmade_zip(tmp_path / "zip-bomb-300mb.xlsx", parts, "xl/worksheets/sheet1.xml", deflated, crc,
                         300 * MiB)
    assert path.stat().st_size < 1 * MiB
    finding = _refused_once(path, study, "IMP-LIMIT-COMPRESSION", "TRIALKIT_MAX_COMPRESSION_RATIO")
    assert "xl/worksheets/sheet1.xml" in finding.message


def test_zip_bomb_total_uncompressed(tmp_path, study, zeros_300mb):
    deflated, crc = zeros_300mb
    parts = _template_bytes()
    path = _handmade_zip(tmp_path / "zip-bomb-total.xlsx", parts, "xl/worksheets/sheet1.xml", deflated, crc,
                         300 * MiB)
    finding = _refused_once(path, study, "IMP-LIMIT-UNCOMPRESSED", "TRIALKIT_MAX_UNCOMPRESSED_BYTES",
                            limits=Limits(max_uncompressed_bytes=100 * MiB))
    assert finding.evidence["measured"] > 300 * MiB


def test_zip_bomb_with_lying_directory_stops_at_the_claimed_size(tmp_path, study, zeros_300mb):
    """The directory claims 100 KB; the member inflates to 300 MB. Nothing inflates past the claim."""
    deflated, crc = zeros_300mb
    parts = _template_bytes()
    path = _handmade_zip(tmp_path / "zip-bomb-lying-directory.xlsx", parts, "xl/worksheets/sheet1.xml",
                         deflated, crc, 100_000)
    before = _peak_mb()
    start = time.perf_counter()
    result = import_files([path], study)
    assert time.perf_counter() - start < SECONDS
    assert _peak_mb() - before < RSS_GROWTH_MB
    errors = [f for f in result.report.findings if f.severity == Severity.ERROR]
    assert len(errors) == 1 and errors[0].category == Category.FILE
    assert result.forms == {}


# -- xlsx: shapes and strings ----------------------------------------------------------------------


def _with_dimension(ref: str) -> dict[str, bytes]:
    parts = _template_bytes()
    sheet = parts["xl/worksheets/sheet1.xml"]
    start = sheet.index(b"<dimension")
    end = sheet.index(b">", start) + 1
    parts["xl/worksheets/sheet1.xml"] = sheet[:start] + f'<dimension ref="{ref}"/>'.encode() + sheet[end:]
    return parts


def test_absurd_dimension_claim(tmp_path, study):
    path = _write_zip(tmp_path / "dimension-A1-XFD1048576.xlsx", _with_dimension("A1:XFD1048576"))
    finding = _refused_once(path, study, "IMP-LIMIT-CELLS", "TRIALKIT_MAX_CELLS")
    assert "A1:XFD1048576" in finding.message


def test_million_column_dimension_claim(tmp_path, study):
    path = _write_zip(tmp_path / "dimension-million-columns.xlsx", _with_dimension("A1:BDWGN2"))
    finding = _refused_once(path, study, "IMP-LIMIT-COLUMNS", "TRIALKIT_MAX_COLUMNS")
    assert finding.evidence["measured"] == 1_000_000


def test_dimension_claim_parsing():
    assert dimension_claim(b'<dimension ref="A1:E2"/>') == (2, 5, "A1:E2")
    assert dimension_claim(b'<x:dimension ref="B3"/>') == (1, 1, "B3")
    assert dimension_claim(b"<sheetData/>") is None


def _sheet_with_cells(rows: list[list[str]], shared: bool) -> dict[str, bytes]:
    """The template's parts with sheet1 replaced by ``rows`` of text cells (inline or shared strings)."""
    from xml.sax.saxutils import escape

    from openpyxl.utils import get_column_letter

    parts = _template_bytes()
    strings: list[str] = []
    cells = []
    for r, row in enumerate(rows, start=1):
        out = []
        for c, value in enumerate(row, start=1):
            ref = f"{get_column_letter(c)}{r}"
            if shared:
                strings.append(value)
                out.append(f'<c r="{ref}" t="s"><v>{len(strings) - 1}</v></c>')
            else:
                out.append(f'<c r="{ref}" t="inlineStr"><is><t>{escape(value)}</t></is></c>')
        cells.append(f'<row r="{r}">{"".join(out)}</row>')
    ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    parts["xl/worksheets/sheet1.xml"] = (f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{ns}">'
                                         f'<sheetData>{"".join(cells)}</sheetData></worksheet>').encode()
    if shared:
        items = "".join(f"<si><t>{escape(v)}</t></si>" for v in strings)
        parts["xl/sharedStrings.xml"] = (f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{ns}" '
                                         f'count="{len(strings)}" uniqueCount="{len(strings)}">{items}</sst>').encode()
        parts["[Content_Types].xml"] = parts["[Content_Types].xml"].replace(
            b"</Types>", b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
            b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>')
        parts["xl/_rels/workbook.xml.rels"] = parts["xl/_rels/workbook.xml.rels"].replace(
            b"</Relationships>", b'<Relationship Id="rIdSST" Type="http://schemas.openxmlformats.org/'
            b'officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>')
    return parts


def _incompressible_text(length: int) -> str:
    """Text that does not compress (so the zip ratio check does not fire first)."""
    import base64
    import random

    return base64.b64encode(random.Random(8).randbytes(length))[:length].decode()


@pytest.mark.parametrize("shared", [False, True], ids=["inline-string", "shared-string"])
def test_ten_megabyte_string_cell(tmp_path, study, shared):
    rows = [["SITEID", "SUBJID", "ICDAT", "BRTHYM", "SEX"], ["01", "01-001", "2024-01-02", "2012-04", "F"],
            ["01", "01-002", "2024-01-02", "2012-04", _incompressible_text(10 * MiB)]]
    path = _write_zip(tmp_path / "ten-megabyte-cell.xlsx", _sheet_with_cells(rows, shared))
    finding = _refused_once(path, study, "IMP-LIMIT-STRING", "TRIALKIT_MAX_STRING_LENGTH")
    assert "DM!E3" in finding.message and finding.evidence["measured"] == 10 * MiB


def test_cell_at_the_string_limit_is_accepted(tmp_path, study):
    rows = [["SITEID", "SUBJID", "ICDAT", "BRTHYM", "SEX"], ["01", "01-001", "2024-01-02", "2012-04", "F" * 32_767]]
    path = _write_zip(tmp_path / "cell-at-limit.xlsx", _sheet_with_cells(rows, shared=True))
    result = import_files([path], study)
    assert not [f for f in result.report.findings if f.code == "IMP-LIMIT-STRING"]


def test_text_runs_across_blocks():
    runs = TextRuns()
    for block in (b"<a>" + b"x" * 10, b"y" * 10, b"z</a><b>12</b>"):
        runs.feed(block)
    assert runs.longest == len("a>" + "x" * 10 + "y" * 10 + "z")
    assert longest_line(b"ab\ncdef\n\ng") == 4


def test_longest_line_in_file_across_blocks(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_bytes(b"ab\n" + b"x" * 10 + b"\n\n" + b"y" * 7)
    assert longest_line_in_file(path, block_size=4) == (10, 3)


# -- SpreadsheetML and CSV -----------------------------------------------------------------------------


SPREADSHEETML = """<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet"
 xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet"><Worksheet ss:Name="DM"><Table>
<Row><Cell><Data ss:Type="String">SITEID</Data></Cell><Cell><Data ss:Type="String">SUBJID</Data></Cell></Row>
<Row><Cell><Data ss:Type="String">{value}</Data></Cell><Cell><Data ss:Type="String">01-001</Data></Cell></Row>
</Table></Worksheet></Workbook>"""


def test_spreadsheetml_with_doctype(tmp_path, study):
    path = tmp_path / "spreadsheetml-doctype.xls"
    path.write_text('<?xml version="1.0"?>\n<?mso-application progid="Excel.Sheet"?>\n'
                    + BOMB_DTD.split("\n", 1)[1] + SPREADSHEETML.format(value="&lol9;"))
    assert read_file(path).format == "spreadsheetml"
    _refused_once(path, study, "IMP-XML-DOCTYPE", "TRIALKIT_MAX_ENTITY_DECLARATIONS")


def test_spreadsheetml_with_external_entity(tmp_path, study):
    path = tmp_path / "spreadsheetml-external-entity.xls"
    path.write_text(XXE_DTD + SPREADSHEETML.format(value="&xxe;"))
    _refused_once(path, study, "IMP-XML-DOCTYPE", "TRIALKIT_MAX_ENTITY_DECLARATIONS")


def test_spreadsheetml_huge_string(tmp_path, study):
    path = tmp_path / "spreadsheetml-huge-string.xls"
    path.write_text(SPREADSHEETML.format(value="y" * 40_000))
    finding = _refused_once(path, study, "IMP-LIMIT-STRING", "TRIALKIT_MAX_STRING_LENGTH")
    assert "DM!A2" in finding.message


def test_csv_with_a_50mb_line(tmp_path, study):
    path = tmp_path / "dm-fifty-megabyte-line.csv"
    with open(path, "wb") as out:
        out.write(b"SITEID,SUBJID,ICDAT,BRTHYM,SEX\n01,01-001,2024-01-02,2012-04,")
        out.write(b"F" * (50 * MiB))
        out.write(b"\n")
    finding = _refused_once(path, study, "IMP-LIMIT-LINE", "TRIALKIT_MAX_LINE_BYTES")
    assert finding.evidence["measured"] > 50 * MiB


def test_csv_long_cell_names_the_cell(tmp_path, study):
    path = tmp_path / "dm-long-cell.csv"
    path.write_text("SITEID,SUBJID,ICDAT,BRTHYM,SEX\n01,01-001,2024-01-02,2012-04,F\n"
                    "01,01-002,2024-01-02,2012-04," + "F" * 40_000 + "\n")
    finding = _refused_once(path, study, "IMP-LIMIT-STRING", "TRIALKIT_MAX_STRING_LENGTH")
    assert "E3" in finding.message and "line 3" in finding.message


def test_any_file_over_the_size_limit(tmp_path, study):
    path = tmp_path / "dm.csv"
    path.write_text("SITEID,SUBJID\n01,01-001\n")
    _refused_once(path, study, "IMP-LIMIT-FILE-SIZE", "TRIALKIT_MAX_FILE_BYTES", limits=Limits(max_file_bytes=10))


# -- limits are configurable -----------------------------------------------------------------------------


def test_limits_from_environment(monkeypatch, tmp_path, study):
    monkeypatch.setenv("TRIALKIT_MAX_FILE_BYTES", "1k")
    monkeypatch.setenv("TRIALKIT_MAX_COMPRESSION_RATIO", "50.5")
    monkeypatch.setenv("TRIALKIT_MAX_ROWS", "1_000")
    limits = Limits.from_env()
    assert (limits.max_file_bytes, limits.max_compression_ratio, limits.max_rows) == (1024, 50.5, 1000)
    assert limits.max_columns == 16_384
    path = tmp_path / "dm.csv"
    path.write_text("SITEID,SUBJID\n" + "01,01-001\n" * 200)
    _refused_once(path, study, "IMP-LIMIT-FILE-SIZE", "TRIALKIT_MAX_FILE_BYTES")  # default = from_env


def test_environment_limit_lowered_refuses_a_normal_file(monkeypatch, tmp_path, study):
    monkeypatch.setenv("TRIALKIT_MAX_STRING_LENGTH", "3")
    path = _write_zip(tmp_path / "dm.xlsx", _template_bytes())
    _refused_once(path, study, "IMP-LIMIT-STRING", "TRIALKIT_MAX_STRING_LENGTH")


def test_bad_environment_value_is_a_usage_error(monkeypatch):
    monkeypatch.setenv("TRIALKIT_MAX_CELLS", "lots")
    with pytest.raises(UsageError, match="TRIALKIT_MAX_CELLS"):
        Limits.from_env()


def test_a_normal_workbook_passes_every_check(tmp_path, study):
    path = _write_zip(tmp_path / "dm.xlsx", _template_bytes())
    result = import_files([path], study)
    assert not [f for f in result.report.findings if f.category == Category.FILE]
    assert len(result.forms["DM"]) == 1
