"""``trialkit validate`` through CliRunner: formats, exit codes, --fail-on, --max-findings."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner
from openpyxl import Workbook, load_workbook

from trialkit.cli import cli
from trialkit.importers.reader import import_files
from trialkit.validate import validate

VS_HEADER = ["SITEID", "SUBJID", "VISIT", "VSDAT", "WEIGHT", "WEIGHTU", "HEIGHT", "HEIGHTU", "TEMP",
             "TEMPU", "SYSBP", "DIABP", "HR"]
DM_HEADER = ["SITEID", "SUBJID", "ICDAT", "BRTHYM", "SEX"]


def write_upload(path, sheets):
    """An xlsx with one sheet per form, header in row 1; text cells stay text."""
    workbook = Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
            for cell in sheet[sheet.max_row]:
                if isinstance(cell.value, str):
                    cell.data_type = "s"  # a typed '=...' stays text, as a site would type it
    workbook.save(path)
    return path


def vs_row(subject="01-003", visit="W4", date="2024-03-01", weight="30.5", unit="kg", site="01"):
    return [site, subject, visit, date, weight, unit, "140", "cm", "36.8", "C", 110, 70, 90]


@pytest.fixture()
def clean(tmp_path):
    return write_upload(tmp_path / "clean.xlsx", {
        "DM": [DM_HEADER, ["01", "01-003", "2024-01-02", "2012-04", "F"]],
        "VS": [VS_HEADER, vs_row(visit="D1", date="2024-02-01"), vs_row()],
    })


@pytest.fixture()
def bad(tmp_path):
    return write_upload(tmp_path / "bad.xlsx", {
        "DM": [DM_HEADER, ["01", "01-003", "2024-01-02", "2012-04", "X"]],
        "VS": [VS_HEADER, vs_row(visit="D1", date="2024-02-01"), vs_row(weight="300"),
               vs_row(visit="W8", date="2024-03-28", weight="31", unit='=HYPERLINK("x")'),
               vs_row(site="03", subject="03-001", weight="300")],
    })


def invoke(*args):
    return CliRunner().invoke(cli, ["validate", *map(str, args)], catch_exceptions=False)


def volatile_free(data):
    data = dict(data)
    data.pop("trialkit_version", None)
    return data


def test_json_equals_the_library_report(bad, study):
    result = invoke(bad, "--site", "01", "-f", "json", "-q")
    assert result.exit_code == 1, result.output
    library = validate(study, import_files([bad], study, site="01"), site="01")
    assert volatile_free(json.loads(result.stdout)) == volatile_free(
        json.loads(library.to_json()))
    codes = {f["code"] for f in json.loads(result.stdout)["findings"]}
    assert {"CODELIST", "RANGE", "WRONG-SITE"} <= codes


def test_clean_upload_exits_0(clean):
    result = invoke(clean, "--site", "01")
    assert result.exit_code == 0, result.output
    assert "Findings: 0 error(s)" in result.stdout
    assert "validate: 1 file(s), site 01" in result.stderr


def test_findings_exit_1_and_fail_on_never(bad):
    assert invoke(bad, "--site", "01", "-q").exit_code == 1
    assert invoke(bad, "--site", "01", "-q", "--fail-on", "never").exit_code == 0


def test_fail_on_warning(clean, tmp_path):
    jump = write_upload(tmp_path / "jump.xlsx", {
        "DM": [DM_HEADER, ["01", "01-003", "2024-01-02", "2012-04", "F"]],
        "VS": [VS_HEADER, vs_row(visit="D1", date="2024-02-01"), vs_row(weight="40")],
    })
    assert invoke(jump, "--site", "01", "-q").exit_code == 0
    assert invoke(jump, "--site", "01", "-q", "--fail-on", "warning").exit_code == 1


def test_text_lists_findings(bad):
    result = invoke(bad, "--site", "01", "-q")
    assert "row 3 · VS · 01-003 · W4 · WEIGHT: WEIGHT = 300 is outside 8–200 kg [RANGE]" in result.stdout
    assert "By category:" in result.stdout and "By form:" in result.stdout
    assert result.stderr == ""


def test_usage_errors_exit_2(bad, tmp_path):
    assert invoke(bad, "--site", "42").exit_code == 2
    assert invoke(bad, "-f", "xlsx").exit_code == 2
    assert invoke(bad, "--data-cut", "31/12/2024").exit_code == 2
    assert invoke(tmp_path / "missing.xlsx").exit_code == 2
    assert invoke(bad, "--form", "XX").exit_code == 2


def test_broken_study_exits_3(bad, tmp_path):
    (tmp_path / "study.toml").write_text("[study\n")
    assert invoke(bad, "--study", tmp_path).exit_code == 3


def test_max_findings(bad):
    full = json.loads(invoke(bad, "--site", "01", "-f", "json", "-q").stdout)
    cut = json.loads(invoke(bad, "--site", "01", "-f", "json", "-q", "--max-findings", "2").stdout)
    assert len(cut["findings"]) == 2
    assert cut["truncated"] == len(full["findings"]) - 2
    assert cut["findings"] == full["findings"][:2]
    # exit code still reflects every finding
    assert invoke(bad, "--site", "01", "-q", "--max-findings", "0").exit_code == 1


def test_jsonl_and_csv(bad):
    lines = invoke(bad, "--site", "01", "-f", "jsonl", "-q").stdout.splitlines()
    full = json.loads(invoke(bad, "--site", "01", "-f", "json", "-q").stdout)
    assert [json.loads(line) for line in lines] == full["findings"]
    rows = list(csv.DictReader(io.StringIO(invoke(bad, "--site", "01", "-f", "csv", "-q").stdout)))
    assert len(rows) == len(full["findings"])
    assert all(not (r["value"] or "x").startswith("=") for r in rows)


def test_xlsx_workbook_holds_only_the_site(bad, tmp_path):
    out = tmp_path / "queries.xlsx"
    result = invoke(bad, "--site", "01", "-f", "xlsx", "-o", out, "-q")
    assert result.exit_code == 1 and result.stdout == ""
    table = list(load_workbook(out)["Queries"].iter_rows(values_only=True))
    header = table[1]  # row 1 is the title, row 3 the labels in the site's language (Italian for 01)
    assert table[2][header.index("SUBJECT")] == "Soggetto"
    rows = table[3:]
    assert rows and {r[header.index("SITE")] for r in rows} == {"01"}
    assert all(r[header.index("SUBJECT")] != "03-001" for r in rows)


def test_output_file(bad, tmp_path):
    out = tmp_path / "report.json"
    result = invoke(bad, "--site", "01", "-f", "json", "-o", out, "-q")
    assert result.stdout == ""
    assert json.loads(out.read_text())["site"] == "01"
