"""The data dictionary: tables, formats, the committed Markdown copy and the CLI."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from trialkit.cli import cli
from trialkit.dictionary import (
    build_dictionary,
    dictionary_document,
    render_dictionary,
    write_dictionary,
)

REPO = Path(__file__).resolve().parents[1]
COMMITTED_MD = REPO / "docs" / "data-dictionary.md"
REGENERATE = "trialkit dictionary -f md -o docs/data-dictionary.md"


def test_tables(study):
    tables = build_dictionary(study)
    assert list(tables) == ["forms", "variables", "codelists", "visits", "mappings"]
    assert [f["code"] for f in tables["forms"]] == list(study.forms)
    vs = next(f for f in tables["forms"] if f["code"] == "VS")
    assert vs["keys"] == "SUBJID + VISIT" and vs["n_variables"] == len(study.forms["VS"].variables)
    weight = next(v for v in tables["variables"] if (v["form"], v["name"]) == ("VS", "WEIGHT"))
    assert (weight["type"], weight["unit"], weight["min"], weight["max"]) == ("num", "kg", 8, 200)
    assert weight["unit_var"] == "WEIGHTU" and weight["required"] is False
    assert "range 8–200 kg" in weight["rule"]
    ptendat = next(v for v in tables["variables"] if (v["form"], v["name"]) == ("PT", "PTENDAT"))
    assert ptendat["required_if"] == "required unless PTONGO = Y"
    lbstresn = next(v for v in tables["variables"] if v["name"] == "LBSTRESN")
    assert lbstresn["derived"] is True
    assert {"codelist": "SEX", "code": "F", "decode": "Female"} in tables["codelists"]
    w4 = next(v for v in tables["visits"] if v["code"] == "W4")
    assert (w4["num"], w4["target_day"], w4["window_lo"], w4["window_hi"]) == (4, 29, 26, 32)


def test_json_has_every_form_and_variable(study):
    doc = json.loads(render_dictionary(study, "json"))
    assert doc["study"]["id"] == "ANK-SJIA-01"
    assert doc["study"]["schema_hash"] == study.schema_hash
    assert doc["study"]["protocol_version"] == study.protocol_version
    assert len(doc["forms"]) == 15
    for form in study.forms.values():
        names = [v["name"] for v in doc["variables"] if v["form"] == form.code]
        assert names == form.variable_names, form.code
        assert [v["order"] for v in doc["variables"] if v["form"] == form.code] == list(
            range(1, len(names) + 1)
        )
    assert doc == json.loads(json.dumps(dictionary_document(study)))


def test_committed_markdown_is_current(study):
    assert COMMITTED_MD.is_file(), f"{COMMITTED_MD} is missing; generate it with `{REGENERATE}`"
    fresh = io.StringIO()
    write_dictionary(study, "md", fresh)
    assert COMMITTED_MD.read_text(encoding="utf-8") == fresh.getvalue(), (
        f"docs/data-dictionary.md is stale; regenerate it with `{REGENERATE}`"
    )


def test_markdown_content(study):
    text = render_dictionary(study, "md")
    assert text.startswith("# Data dictionary — ANK-SJIA-01\n")
    for form in study.forms.values():
        assert f"## {form.code} — {form.label}" in text
    assert "| 5 | `SEX` | Sex | char |  | SEX | required; codelist SEX |  |" in text
    assert "### SEX — Sex" in text and "## Visits" in text
    # The version stamp's pipes must not break tables (it is outside tables, in backticks).
    assert f"`{study.version_stamp}`" in text


def test_output_is_deterministic(study, tmp_path):
    a = write_dictionary(study, "xlsx", tmp_path / "a.xlsx")
    b = write_dictionary(study, "xlsx", tmp_path / "b.xlsx")
    assert a.read_bytes() == b.read_bytes()
    assert render_dictionary(study, "md") == render_dictionary(study, "md")


def test_xlsx(study, tmp_path):
    path = write_dictionary(study, "xlsx", tmp_path / "dict.xlsx")
    wb = load_workbook(path)
    assert wb.sheetnames == ["Forms", "Variables", "Codelists", "Visits", "Mappings"]
    ws = wb["Variables"]
    header = [c.value for c in ws[1]]
    assert header[:3] == ["form", "order", "name"]
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref.startswith("A1:")
    assert ws["A1"].font.bold
    n_variables = sum(len(f.variables) for f in study.forms.values())
    assert ws.max_row == n_variables + 1
    assert wb["Forms"].max_row == 16
    wb.close()


def test_csv_stream_and_folder(study, tmp_path):
    rows = list(csv.DictReader(io.StringIO(render_dictionary(study, "csv"))))
    assert len(rows) == sum(len(f.variables) for f in study.forms.values())
    assert rows[0]["form"] == "DM" and rows[0]["name"] == "SITEID" and rows[0]["required"] == "Y"
    out = write_dictionary(study, "csv", tmp_path / "dict")
    assert sorted(p.name for p in out.iterdir()) == [
        "codelists.csv", "forms.csv", "mappings.csv", "variables.csv", "visits.csv"
    ]
    with open(out / "forms.csv", newline="", encoding="utf-8") as handle:
        forms = list(csv.DictReader(handle))
    assert [f["code"] for f in forms] == list(study.forms)
    with open(out / "mappings.csv", newline="", encoding="utf-8") as handle:
        mappings = list(csv.DictReader(handle))
    assert {"mapping": "sdtm_ae", "form": "AE", "variable": "AESTDAT", "source": "AESTDTC",
            "rule": "date iso8601"} in mappings
    assert {"mapping": "sdtm_vs", "form": "VS", "variable": "HR", "source": "VSORRES",
            "rule": "pivot: VSTESTCD = 'PULSE'; units beats/min, bpm"} in mappings


def test_unknown_format(study, tmp_path):
    with pytest.raises(ValueError, match="xlsx, csv, json, md"):
        write_dictionary(study, "pdf", tmp_path / "x.pdf")


# ------------------------------------------------------------------------------------------------
# CLI


def test_cli_json_equals_library(study):
    result = CliRunner().invoke(cli, ["dictionary", "-f", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads(json.dumps(dictionary_document(study)))
    assert result.stderr == ""


def test_cli_md_and_csv_to_stdout(study):
    runner = CliRunner()
    md = runner.invoke(cli, ["dictionary", "-f", "md"])
    assert md.exit_code == 0 and md.stdout == render_dictionary(study, "md")
    out = runner.invoke(cli, ["dictionary", "-f", "csv"])
    assert out.exit_code == 0 and out.stdout == render_dictionary(study, "csv")


def test_cli_xlsx_default_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["dictionary", "-f", "xlsx"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ANK-SJIA-01_dictionary.xlsx").is_file()
    assert result.stdout == "" and "ANK-SJIA-01_dictionary.xlsx" in result.stderr


def test_cli_files(tmp_path):
    runner = CliRunner()
    for fmt, name in (("md", "d.md"), ("json", "d.json"), ("xlsx", "d.xlsx"), ("csv", "csvdir")):
        result = runner.invoke(cli, ["dictionary", "-f", fmt, "-o", str(tmp_path / name), "-q"])
        assert result.exit_code == 0, (fmt, result.output)
        assert result.stdout == "" and result.stderr == ""
        assert (tmp_path / name).exists()
    assert (tmp_path / "csvdir" / "variables.csv").is_file()


def test_cli_bad_format_is_usage_error():
    result = CliRunner().invoke(cli, ["dictionary", "-f", "pdf"])
    assert result.exit_code == 2
