"""The site upload workbook: structure, validations, version stamp, committed copy, CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from trialkit.cli import cli
from trialkit.templates import (
    CODE_ROW,
    ENTRY_ROWS,
    ERROR_MAX,
    ERROR_TITLE_MAX,
    FIRST_ENTRY_ROW,
    HINT_ROW,
    LABEL_ROW,
    PRINT_ENTRY_ROWS,
    PROMPT_MAX,
    PROMPT_TITLE_MAX,
    TITLE_ROW,
    UPRIGHT_WIDTH,
    codelist_defined_name,
    entry_rows,
    template_contents,
    write_template,
)

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "templates" / "ANK-SJIA-01_upload_template.xlsx"
REGENERATE = "trialkit template -o templates/ANK-SJIA-01_upload_template.xlsx"


@pytest.fixture(scope="module")
def generic(study, tmp_path_factory) -> Path:
    return write_template(study, tmp_path_factory.mktemp("tpl") / "t.xlsx")


@pytest.fixture(scope="module")
def site04(study, tmp_path_factory) -> Path:
    return write_template(study, tmp_path_factory.mktemp("tpl04") / "t04.xlsx", site="04")


@pytest.fixture(scope="module")
def wb(generic):
    book = load_workbook(generic)
    yield book
    book.close()


def test_committed_template_is_current(generic):
    assert COMMITTED.is_file(), f"{COMMITTED} is missing; generate it with `{REGENERATE}`"
    fresh, committed = template_contents(generic), template_contents(COMMITTED)
    for key in fresh:
        assert committed[key] == fresh[key], (
            f"templates/ differs from the study definition ({key}); regenerate with `{REGENERATE}`"
        )


def test_output_is_deterministic(study, generic, tmp_path):
    again = write_template(study, tmp_path / "again.xlsx")
    assert again.read_bytes() == generic.read_bytes()


def test_sheets_in_order_with_hidden_helpers(study, wb):
    assert wb.sheetnames == ["Instructions", *study.forms, "_codelists", "_trialkit"]
    states = {ws.title: ws.sheet_state for ws in wb.worksheets}
    assert states["_codelists"] == "hidden" and states["_trialkit"] == "hidden"
    assert all(states[code] == "visible" for code in study.forms)
    assert wb.active.title == "Instructions"


def test_every_form_sheet_has_its_site_variables_in_order(study, wb):
    for form in study.forms.values():
        ws = wb[form.code]
        header = [c.value for c in ws[CODE_ROW]]
        assert header == [v.name for v in form.site_variables], form.code
        assert not any(v.derived for v in form.site_variables)
        assert ws.freeze_panes == f"A{FIRST_ENTRY_ROW}"
        assert ws.protection.sheet is True and not ws.protection.password
        for col, var in enumerate(form.site_variables, start=1):
            cell = ws.cell(row=CODE_ROW, column=col)
            assert cell.font.bold and cell.protection.locked
            assert cell.comment is not None and var.label in cell.comment.text
            assert "Type: " in cell.comment.text
            if var.rule_text:
                assert var.rule_text in cell.comment.text
            for row in (TITLE_ROW, LABEL_ROW, HINT_ROW):
                assert ws.cell(row=row, column=col).protection.locked
            dim = ws.column_dimensions[get_column_letter(col)]
            assert dim.protection.locked is False, f"{form.code}.{var.name} entry area is locked"
            assert dim.width and dim.width >= UPRIGHT_WIDTH


def test_title_label_and_hint_rows_say_what_a_site_needs(study, wb):
    vs = wb["VS"]
    assert vs.cell(row=TITLE_ROW, column=1).value == "VS — Vital signs: one row per subject and visit"
    labels = {vs.cell(row=CODE_ROW, column=c).value: vs.cell(row=LABEL_ROW, column=c).value
              for c in range(1, vs.max_column + 1)}
    hints = {vs.cell(row=CODE_ROW, column=c).value: vs.cell(row=HINT_ROW, column=c).value
             for c in range(1, vs.max_column + 1)}
    assert labels["WEIGHT"] == "Weight" and labels["VSDAT"] == "Visit date"
    assert hints["WEIGHT"] == "number 8–200 kg"  # the unit and the range, printed
    assert hints["WEIGHTU"] == "kg, lb"  # a short list: its codes
    assert hints["VSDAT"] == "required\ndate YYYY-MM-DD"
    assert hints["VISIT"] == f"required\nlist: {len(study.codelists['VISIT'].codes)} codes"
    assert wb["DM"].cell(row=HINT_ROW, column=4).value == "required\npartial date: YYYY-MM"
    assert wb["PT"].cell(row=HINT_ROW, column=5).value.startswith("conditional (see note)")
    for row in (LABEL_ROW, HINT_ROW):
        assert vs.cell(row=row, column=1).alignment.wrap_text
        assert vs.row_dimensions[row].height >= 12  # a height of their own: LibreOffice does not grow them


def test_print_setup_one_page_wide_with_the_header_block_repeated(study, wb):
    for form in study.forms.values():
        ws = wb[form.code]
        last = get_column_letter(len(form.site_variables))
        assert ws.page_setup.orientation == "landscape", form.code
        assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToWidth == 1
        assert ws.page_setup.fitToHeight == 1  # the print area (header block and 20 rows) on one page
        assert ws.print_title_rows == f"${TITLE_ROW}:${HINT_ROW}"
        assert ws.print_area == f"'{form.code}'!$A$1:${last}${FIRST_ENTRY_ROW + PRINT_ENTRY_ROWS - 1}"
    instructions = wb["Instructions"]
    assert instructions.page_setup.fitToWidth == 1 and instructions.print_area.startswith("'Instructions'!$A$1:$C$")


def test_wide_forms_turn_short_columns_upright(study, wb):
    chaq = wb["CHAQ"]
    columns = [c.value for c in chaq[CODE_ROW]]
    item = columns.index("DRESS1") + 1
    assert chaq.cell(row=LABEL_ROW, column=item).alignment.text_rotation == 90
    assert chaq.column_dimensions[get_column_letter(item)].width == UPRIGHT_WIDTH
    subject = columns.index("SUBJID") + 1  # a long value keeps its width and its label lies flat
    assert chaq.cell(row=LABEL_ROW, column=subject).alignment.text_rotation in (0, None)
    dm = wb["DM"]  # a narrow form keeps every label flat
    assert all(dm.cell(row=LABEL_ROW, column=c).alignment.text_rotation in (0, None) for c in range(1, 6))


def _validations(ws):
    by_column = {}
    for dv in ws.data_validations.dataValidation:
        for rng in dv.sqref.ranges:
            by_column[rng.min_col] = (dv, rng)
    return by_column


def test_codelist_dropdowns_reference_named_ranges_that_hold_the_codes(study, wb):
    names = wb.defined_names
    codelist_sheet = wb["_codelists"]
    seen = 0
    for form in study.forms.values():
        ws = wb[form.code]
        dvs = _validations(ws)
        for col, var in enumerate(form.site_variables, start=1):
            if not var.codelist:
                continue
            seen += 1
            dv, rng = dvs[col]
            assert dv.type == "list"
            assert dv.formula1 == codelist_defined_name(var.codelist)  # no leading "="
            assert rng.min_row == FIRST_ENTRY_ROW
            assert rng.max_row == FIRST_ENTRY_ROW + entry_rows(study, form) - 1
            assert dv.errorStyle == "warning" and dv.showErrorMessage
            assert "ND" in dv.prompt
            defined = names[dv.formula1]
            ((sheet, ref),) = list(defined.destinations)
            assert sheet == "_codelists"
            values = [c.value for row in codelist_sheet[ref.replace("$", "")] for c in row]
            assert values == study.codelists[var.codelist].codes, var.codelist
    assert seen > 60  # every yn variable has the YN list, plus the codelists


@pytest.mark.parametrize(
    ("form", "name", "kind", "operator", "formula1", "formula2"),
    [
        ("VS", "WEIGHT", "decimal", "between", "8", "200"),
        ("VS", "TEMP", "decimal", "between", "34", "43"),
        ("VS", "SYSBP", "whole", "between", "50", "220"),
        ("CORE", "PHGA", "decimal", "between", "0", "10"),
        ("CHAQ", "DRESS1", "whole", "between", "0", "3"),
        ("AE", "AETOXGR", "whole", "between", "1", "5"),
        ("EX", "EXMISS", "whole", "greaterThanOrEqual", "0", None),
        ("EX", "EXDOSE", "decimal", "between", "0", "200"),
        ("DM", "ICDAT", "date", "between", "1", "73050"),  # 1900-01-01 .. 2099-12-31: birth dates fit
        ("LB", "LBDAT", "date", "between", "1", "73050"),
        ("DM", "BRTHYM", "textLength", "between", "4", "10"),
    ],
)
def test_typed_validations(wb, study, form, name, kind, operator, formula1, formula2):
    ws = wb[form]
    col = [v.name for v in study.forms[form].site_variables].index(name) + 1
    dv, rng = _validations(ws)[col]
    assert (dv.type, dv.operator, dv.formula1, dv.formula2) == (kind, operator, formula1, formula2)
    assert dv.errorStyle == "warning"
    letter = get_column_letter(col)
    if kind == "date":
        assert ws.column_dimensions[letter].number_format == "yyyy-mm-dd"
    if kind == "textLength":
        assert ws.column_dimensions[letter].number_format == "@"


def test_every_typed_variable_is_validated_and_ids_are_text(study, wb):
    for form in study.forms.values():
        ws = wb[form.code]
        dvs = _validations(ws)
        for col, var in enumerate(form.site_variables, start=1):
            fmt = ws.column_dimensions[get_column_letter(col)].number_format
            if var.type in ("char", "yn", "pdate"):
                assert fmt == "@", f"{form.code}.{var.name}"
            if var.codelist or var.type in ("int", "num", "date", "pdate"):
                assert col in dvs, f"{form.code}.{var.name} has no validation"
                expected = {"int": "whole", "num": "decimal", "date": "date"}.get(var.type)
                if var.codelist:
                    expected = "list"
                if expected:
                    assert dvs[col][0].type == expected, f"{form.code}.{var.name}"


def test_validation_messages_fit_excel_limits(wb):
    for ws in wb.worksheets:
        for dv in ws.data_validations.dataValidation:
            assert len(dv.promptTitle or "") <= PROMPT_TITLE_MAX
            assert len(dv.prompt or "") <= PROMPT_MAX
            assert len(dv.errorTitle or "") <= ERROR_TITLE_MAX
            assert len(dv.error or "") <= ERROR_MAX


def test_entry_area_sizes(study):
    assert entry_rows(study, study.forms["DM"]) == ENTRY_ROWS
    for code in ("FEVER", "LB", "JA"):
        assert entry_rows(study, study.forms[code]) >= 2000


def test_version_stamp(study, wb, generic):
    ws = wb["_trialkit"]
    assert (ws["A1"].value, ws["B1"].value) == ("key", "value")
    assert ws["A2"].value == "version" and ws["B2"].value == study.version_stamp
    rows = {r[0]: r[1] for r in ws.iter_rows(min_row=2, values_only=True)}
    assert rows["study_id"] == "ANK-SJIA-01"
    assert rows["protocol_version"] == study.protocol_version
    assert rows["schema_hash"] == study.schema_hash
    assert rows["site"] in ("", None)
    assert rows["generated_by"].startswith("trialkit ")
    assert wb.defined_names["TRIALKIT_VERSION"].attr_text.endswith("!$B$2")
    assert wb.properties.subject == study.version_stamp


def test_version_stamp_readable_with_calamine(study, generic):
    python_calamine = pytest.importorskip("python_calamine")
    rows = python_calamine.CalamineWorkbook.from_path(generic).get_sheet_by_name("_trialkit").to_python()
    assert rows[0][:2] == ["key", "value"]
    assert rows[1][1] == study.version_stamp


def test_instructions(study, wb):
    text = "\n".join(
        str(v) for row in wb["Instructions"].iter_rows(values_only=True) for v in row if v is not None
    )
    for code, meaning in study.missing_codes.items():
        assert code in text and meaning in text
    assert "YYYY-MM-DD" in text and "YYYY-MM" in text
    assert study.contact in text
    assert study.version_stamp in text
    for form in study.forms.values():
        assert form.label in text


def test_site_template_is_stamped_with_its_site_and_written_in_its_language(study, site04):
    book = load_workbook(site04)
    try:
        for form in study.forms.values():
            ws = book[form.code]
            assert ws.cell(row=CODE_ROW, column=1).value == "SITEID"
            assert ws.max_row == HINT_ROW, "no pre-filled rows: the importer fills a blank SITEID"
            assert ws.cell(row=HINT_ROW, column=1).value == "Pflichtfeld\nleer = Zentrum 04"
        assert book["DM"].cell(row=TITLE_ROW, column=1).value == "DM — Demografie: eine Zeile pro Teilnehmer"
        assert book["DM"].cell(row=LABEL_ROW, column=3).value == "Datum der Einwilligung"
        text = "\n".join(
            str(v) for row in book["Instructions"].iter_rows(values_only=True) for v in row if v
        )
        assert "DD.MM.YYYY" in text and "Komma (12,5)" in text and "Berlin" in text
        assert "SITEID darf leer bleiben" in text and "Nicht durchgeführt" in text
        assert study.texts("de").contact() in text
        assert book["_trialkit"]["B2"].value == study.version_stamp
        stamp = {r[0]: r[1] for r in book["_trialkit"].iter_rows(values_only=True)}
        assert (stamp["site"], stamp["language"], stamp["layout"]) == ("04", "de", "2")
        codes = [c.value for c in book["VS"][CODE_ROW]]
        assert codes == [v.name for v in study.forms["VS"].site_variables]  # codes stay English
    finally:
        book.close()


def test_language_can_be_chosen_and_falls_back_to_english(study, tmp_path):
    book = load_workbook(write_template(study, tmp_path / "t.xlsx", site="04", language="en"))
    assert book["DM"].cell(row=LABEL_ROW, column=3).value == "Informed consent date"
    book.close()
    from dataclasses import replace

    from trialkit.study.translations import Translations

    bare = replace(study, translations=Translations())  # a study without translations
    book = load_workbook(write_template(bare, tmp_path / "t2.xlsx", site="01"))
    assert book["DM"].cell(row=LABEL_ROW, column=3).value == "Informed consent date"  # English labels
    assert book["DM"].cell(row=HINT_ROW, column=3).value == "obbligatorio\ndata YYYY-MM-DD"  # engine: Italian
    book.close()


def test_unknown_site_raises(study, tmp_path):
    with pytest.raises(KeyError, match="01"):
        write_template(study, tmp_path / "x.xlsx", site="99")


# ------------------------------------------------------------------------------------------------
# CLI


def test_cli_template_default_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["template"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ANK-SJIA-01_upload_template.xlsx").is_file()
    assert result.stderr == "Wrote ANK-SJIA-01_upload_template.xlsx\n"
    assert result.stdout == ""


def test_cli_template_site_and_output(tmp_path, monkeypatch):
    runner = CliRunner()
    target = tmp_path / "site4.xlsx"
    result = runner.invoke(cli, ["template", "--site", "4", "-o", str(target), "-q"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    book = load_workbook(target)
    assert {r[0]: r[1] for r in book["_trialkit"].iter_rows(values_only=True)}["site"] == "04"
    book.close()
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["template", "--site", "08"])
    assert result.exit_code == 0
    assert (tmp_path / "ANK-SJIA-01_upload_template_site08.xlsx").is_file()


def test_cli_template_language(tmp_path):
    target = tmp_path / "berlin_en.xlsx"
    result = CliRunner().invoke(cli, ["template", "--site", "04", "--language", "en", "-o", str(target), "-q"])
    assert result.exit_code == 0, result.output
    book = load_workbook(target)
    assert book["DM"].cell(row=TITLE_ROW, column=1).value == "DM — Demographics: one row per subject"
    assert {r[0]: r[1] for r in book["_trialkit"].iter_rows(values_only=True)}["language"] == "en"
    book.close()
    wrong = CliRunner().invoke(cli, ["template", "--language", "pt", "-o", str(tmp_path / "x.xlsx")])
    assert wrong.exit_code == 2 and "'pt' is not one of" in wrong.stderr


def test_cli_template_unknown_site_is_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["template", "--site", "99", "-o", str(tmp_path / "x.xlsx")])
    assert result.exit_code == 2
    assert "99" in result.stderr and "01" in result.stderr and "08" in result.stderr
    assert not (tmp_path / "x.xlsx").exists()


def test_cli_template_unwritable_path_exits_3(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(cli, ["template", "-o", str(blocker / "t.xlsx")])
    assert result.exit_code == 3
    assert "cannot write" in result.stderr
