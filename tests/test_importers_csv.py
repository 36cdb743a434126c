"""Delimited text that pandas used to read silently wrong: every column stays where it is.

Defect-named files generated here: a trailing delimiter on data rows (pandas made the extra leading
field an index and shifted every column left, losing SUBJID), a non-empty extra field, ``#`` comment
lines above the header, a NUL byte inside the text, blank header cells.
"""

from __future__ import annotations

from trialkit.findings import Severity
from trialkit.importers.reader import import_files, read_file


def _codes(findings, code):
    return [f for f in findings if f.code == code]


def test_trailing_delimiter_keeps_every_column_in_place(tmp_path):
    path = tmp_path / "trailing-delimiter.csv"
    path.write_bytes(b"SUBJID,SEX,AGE\n01-001,F,34,\n01-002,M,40\n")
    read = read_file(path)
    (table,) = read.tables
    assert table.columns == ["SUBJID", "SEX", "AGE"]
    assert table.values["SUBJID"].tolist() == ["01-001", "01-002"]
    assert table.values["SEX"].tolist() == ["F", "M"]
    assert table.values["AGE"].tolist() == ["34", "40"]
    assert table.values.index.tolist() == [2, 3]
    assert read.findings == []  # an empty trailing field is dropped quietly


def test_trailing_delimiter_on_every_row_of_a_form(tmp_path, study):
    path = tmp_path / "dm.csv"
    path.write_bytes(b"SITEID,SUBJID,ICDAT,BRTHYM,SEX\n01,01-001,2024-01-02,2012-05,F,\n"
                     b"01,01-002,2024-01-03,2011-07,M,\n")
    result = import_files([path], study, site="01")
    dm = result.forms["DM"].data
    assert dm["SUBJID"].tolist() == ["01-001", "01-002"]
    assert dm["SEX"].tolist() == ["F", "M"]
    assert [f.code for f in result.report.findings if f.severity != Severity.INFO] == []


def test_non_empty_extra_field_is_a_finding_naming_the_line(tmp_path):
    path = tmp_path / "extra-field.csv"
    path.write_bytes(b"SUBJID,SEX,AGE\n01-001,F,34\n01-002,M,40,left over\n")
    read = read_file(path)
    (table,) = read.tables
    assert table.values["AGE"].tolist() == ["34", "40"]
    assert table.values["SUBJID"].tolist() == ["01-001", "01-002"]
    (finding,) = _codes(read.findings, "IMP-CSV-EXTRA-FIELD")
    assert finding.severity == Severity.ERROR and finding.row == 3
    assert "line 3" in finding.message and "4 fields" in finding.message and "3" in finding.message


def test_comment_lines_above_the_header_are_skipped(tmp_path):
    path = tmp_path / "comment-lines.csv"
    path.write_bytes(b"# exported 2024-03-01\n# site 01\nSUBJID,SEX\n01-001,F\n01-002,M\n")
    read = read_file(path)
    (table,) = read.tables
    assert table.columns == ["SUBJID", "SEX"]
    assert table.values["SUBJID"].tolist() == ["01-001", "01-002"]
    assert table.values.index.tolist() == [4, 5]  # the line numbers the site sees
    (note,) = _codes(read.findings, "IMP-HEADER-OFFSET")
    assert note.severity == Severity.INFO and "2" in note.message and "line 3" in note.message


def test_nul_byte_names_its_line(tmp_path):
    path = tmp_path / "nul-byte.csv"
    path.write_bytes(b"SUBJID,SEX\n01-001,F\n01-0\x0002,M\n01-003,F\n")
    read = read_file(path)
    assert read.format == "csv"
    (finding,) = _codes(read.findings, "IMP-CSV-NUL")
    assert finding.severity == Severity.ERROR and finding.row == 3 and "line 3" in finding.message


def test_nul_byte_deep_in_a_long_csv_names_its_line(tmp_path):
    lines = [b"SUBJID,SEX"] + [b"01-%03d,F" % (i % 1000) for i in range(2000)]
    lines[1500] = b"01-500,\x00F"
    path = tmp_path / "nul-byte-late.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    (finding,) = _codes(read_file(path).findings, "IMP-CSV-NUL")
    assert finding.row == 1501 and "line 1501" in finding.message


def test_blank_header_cells_are_named_by_their_column_letter(tmp_path):
    header = ["SUBJID", ""] + [f"V{i}" for i in range(3, 27)] + [""]  # columns A, B, ..., Z, AA
    path = tmp_path / "blank-headers.csv"
    path.write_text(",".join(header) + "\n" + ",".join(str(i) for i in range(27)) + "\n")
    (table,) = read_file(path).tables
    assert table.columns[0] == "SUBJID" and table.columns[1] == "B" and table.columns[26] == "AA"
    assert table.values["AA"].tolist() == ["26"]


def test_blank_header_cell_is_named_in_the_unknown_column_warning(tmp_path, study):
    path = tmp_path / "dm.csv"
    path.write_bytes(b"SITEID,SUBJID,ICDAT,BRTHYM,SEX,\n01,01-001,2024-01-02,2012-05,F,note\n")
    result = import_files([path], study, site="01")
    (unknown,) = _codes(result.report.findings, "IMP-COLUMN-UNKNOWN")
    assert "column F" in unknown.message and "no header" in unknown.message
