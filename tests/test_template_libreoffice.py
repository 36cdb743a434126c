"""The upload workbook opens in LibreOffice: it converts to PDF (no repair, pages with headers) and
LibreOffice keeps the validations, names, notes and protection when it re-saves the workbook.

Skipped when ``libreoffice`` is not installed (``apt-get install libreoffice-calc``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from openpyxl import load_workbook

from trialkit.study import load_study
from trialkit.templates import write_template

LIBREOFFICE = shutil.which("libreoffice") or shutil.which("soffice")
pytestmark = pytest.mark.skipif(
    LIBREOFFICE is None,
    reason="libreoffice is not on PATH; install libreoffice-calc to check the template renders",
)


def _convert(source: Path, fmt: str, outdir: Path) -> Path:
    outdir.mkdir(parents=True, exist_ok=True)
    profile = outdir / "lo-profile"  # a private profile: no clash with a running LibreOffice
    completed = subprocess.run(
        [LIBREOFFICE, f"-env:UserInstallation=file://{profile}", "--headless",
         "--convert-to", fmt, "--outdir", str(outdir), str(source)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    target = outdir / f"{source.stem}.{fmt}"
    assert completed.returncode == 0 and target.is_file(), (
        f"LibreOffice could not convert {source.name} to {fmt}:\n{completed.stdout}\n{completed.stderr}"
    )
    return target


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return write_template(load_study(), tmp_path_factory.mktemp("lo") / "template.xlsx")


def test_template_converts_to_pdf(template, tmp_path):
    pdf = _convert(template, "pdf", tmp_path / "pdf")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    assert len(data) > 20_000, "the PDF is suspiciously small"
    # At least one page for the instructions and one for each form sheet.
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", data))
    assert pages >= 1 + len(load_study().forms), f"only {pages} pages"
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                              check=True).stdout
        assert "site upload workbook" in text
        for name in ("SITEID", "SUBJID", "ICDAT", "WEIGHT", "LBTESTCD", "AESER"):
            assert name in text


def test_libreoffice_keeps_validations_names_and_protection(template, tmp_path):
    resaved = _convert(template, "xlsx", tmp_path / "xlsx")
    wb = load_workbook(resaved)
    try:
        assert wb["_trialkit"]["B2"].value == load_study().version_stamp
        assert "CL_SEX" in wb.defined_names and "TRIALKIT_VERSION" in wb.defined_names
        dm = wb["DM"]
        kinds = sorted((dv.type, dv.formula1) for dv in dm.data_validations.dataValidation)
        assert ("list", "CL_SEX") in kinds and ("list", "CL_SITEID") in kinds
        assert any(kind == "date" for kind, _ in kinds)
        assert dm.protection.sheet
        assert dm["A1"].comment is not None
        assert [ws.sheet_state for ws in wb.worksheets][-2:] == ["hidden", "hidden"]
    finally:
        wb.close()


def test_query_workbook_opens_in_libreoffice_with_only_its_sites_rows(tmp_path):
    """A site's query workbook converts in LibreOffice, and its text (CSV) shows only that site."""
    from trialkit.findings import Category, Finding, Report, Severity
    from trialkit.querybook import write_query_workbook

    report = Report(study_id="ANK-SJIA-01", study_version="1.0", site="01", findings=[
        Finding(code="RANGE", severity=Severity.ERROR, category=Category.RANGE, site=site,
                subject=f"{site}-001", form="VS", visit="W4", variable="WEIGHT", value="300",
                message="WEIGHT = 300 is outside 8-200 kg", file="upload.xlsx", sheet="VS", row=6,
                query_id=f"Q-{site}")
        for site in ("01", "07")
    ])
    book = write_query_workbook(report, tmp_path / "queries_site01.xlsx", site="01")
    pdf = _convert(book, "pdf", tmp_path / "pdf")
    assert pdf.read_bytes().startswith(b"%PDF")
    # Every sheet as CSV (LibreOffice's filter option -1 writes one file per sheet, named by sheet).
    outdir = tmp_path / "csv"
    outdir.mkdir()
    subprocess.run(
        [LIBREOFFICE, f"-env:UserInstallation=file://{outdir / 'lo-profile'}", "--headless", "--convert-to",
         "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1",
         "--outdir", str(outdir), str(book)],
        capture_output=True, text=True, timeout=300, check=True,
    )
    queries = [p for p in outdir.glob("*.csv") if "Queries" in p.name]
    assert queries, sorted(p.name for p in outdir.iterdir())
    csv_text = queries[0].read_text(encoding="utf-8", errors="replace")
    assert "01-001" in csv_text and "07-001" not in csv_text
