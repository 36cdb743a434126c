"""The site workbooks as a site prints them: converted with LibreOffice to PDF, page by page.

The upload template prints one page per form sheet (plus the instructions) with the labels in the
site's language as visible text; the query workbook of three queries prints on at most two pages
(its summary on one); LibreOffice keeps the validations, names, notes and protection when it
re-saves the template.

Skipped when ``libreoffice`` is not installed (``apt-get install libreoffice-calc``); the text checks
need ``pdftotext`` (poppler-utils) and are skipped without it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from openpyxl import load_workbook

from trialkit.findings import Finding, Report
from trialkit.querybook import write_query_workbook
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


PDFTOTEXT = shutil.which("pdftotext")
needs_pdftotext = pytest.mark.skipif(PDFTOTEXT is None, reason="pdftotext (poppler-utils) is not on PATH")


def _pages(pdf: Path) -> int:
    return len(re.findall(rb"/Type\s*/Page(?!s)", pdf.read_bytes()))


def _page_texts(pdf: Path) -> list[str]:
    """The text of every page (pdftotext separates pages with a form feed)."""
    text = subprocess.run([PDFTOTEXT, "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    return text.split("\f")[:_pages(pdf)]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return write_template(load_study(), tmp_path_factory.mktemp("lo") / "template.xlsx")


SITES = {"01": "it", "03": "fr", "04": "de", "05": "nl", "06": "es", "09": "en"}


@pytest.fixture(scope="module")
def site_pdfs(tmp_path_factory) -> dict[str, Path]:
    """The templates of a site of each language, as LibreOffice prints them (one conversion run)."""
    folder = tmp_path_factory.mktemp("sites")
    books = [write_template(load_study(), folder / f"site{site}.xlsx", site=site) for site in SITES]
    outdir = folder / "pdf"
    completed = subprocess.run(
        [LIBREOFFICE, f"-env:UserInstallation=file://{outdir / 'lo-profile'}", "--headless", "--convert-to", "pdf",
         "--outdir", str(outdir), *map(str, books)], capture_output=True, text=True, timeout=600, check=False)
    pdfs = {site: outdir / f"site{site}.pdf" for site in SITES}
    assert completed.returncode == 0 and all(p.is_file() for p in pdfs.values()), completed.stderr
    return pdfs


@pytest.fixture(scope="module")
def milan_pdf(site_pdfs) -> Path:
    """Site 01's template (Milan, Italian), as LibreOffice prints it."""
    return site_pdfs["01"]


def test_template_converts_to_pdf(template, tmp_path):
    pdf = _convert(template, "pdf", tmp_path / "pdf")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    assert len(data) > 20_000, "the PDF is suspiciously small"
    # One page for each form sheet and at most two for the instructions (it printed 830 pages when
    # SITEID was pre-filled down 3,000 rows without a print area).
    pages = _pages(pdf)
    assert 1 + len(load_study().forms) <= pages <= 2 + len(load_study().forms), f"{pages} pages"
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
        assert dm["A2"].comment is not None and dm["A2"].value == "SITEID"
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


def test_milan_template_prints_one_page_per_form_in_italian(milan_pdf):
    study = load_study()
    pages = _pages(milan_pdf)
    assert pages <= len(study.forms) + 2, f"the Milan template prints {pages} pages"
    if PDFTOTEXT is None:
        pytest.skip("pdftotext is not on PATH: page contents not checked")
    texts = _page_texts(milan_pdf)
    # Each form sheet is exactly one page: its footer (study · sheet name) is on one page only.
    for code in study.forms:
        on = [i for i, text in enumerate(texts) if re.search(rf"ANK-SJIA-01 · {code}\b", text)]
        assert len(on) == 1, f"sheet {code} prints on pages {on}"
    instructions = [i for i, text in enumerate(texts) if "ANK-SJIA-01 · Instructions" in text]
    assert 1 <= len(instructions) <= 2
    dm = next(t for t in texts if "ANK-SJIA-01 · DM" in t)
    # The title, the codes, the Italian labels and the hints are visible text on the printed page.
    for words in ("DM — Dati demografici: una riga per soggetto", "ICDAT", "BRTHYM", "Data del consenso",
                  "Anno e mese", "Sesso", "obbligatorio", "data YYYY-MM-DD", "vuoto = centro 01"):
        assert words in dm, words
    vs = next(t for t in texts if "ANK-SJIA-01 · VS" in t)
    for words in ("Parametri vitali", "Peso", "numero 8–200", "Frequenza"):
        assert words in vs, words
    assert "Come compilare" in "".join(texts[i] for i in instructions)


@needs_pdftotext
def test_query_workbook_of_three_queries_prints_on_two_pages(tmp_path):
    study = load_study()
    local = "/home/dm/trialkit-demo/uploads/site01/site01_v2.xlsx"
    report = Report(study_id=study.id, study_version="1.1", schema_hash=study.schema_hash, data_cut="2024-04-12",
                    findings=[
        Finding(code="RANGE", severity="error", category="range", site="01", subject="01-003", form="VS",
                visit="W4", variable="WEIGHT", value="300", message="WEIGHT = 300 is outside 8–200 kg",
                file=local, sheet="VS", row=12, query_id="Q-1A2B3C4D5E"),
        Finding(code="PD-06", severity="warning", category="deviation", site="01", subject="01-004", form="EX",
                variable="EXMISS", value="25", file=local, sheet="EX", row=7, query_id="Q-2A2B3C4D5E",
                message="25 of 82 planned daily doses missed (30.5 %) in the period from 2024-02-01 (Part B); "
                        "the limit is 20 %"),
        Finding(code="DC-12", severity="error", category="cross-form", site="01", subject="01-001", form="AE",
                variable="AERPTDAT", value="2024-03-26", file=local, sheet="AE", row=4, query_id="Q-3A2B3C4D5E",
                message="serious AE Pneumonia reported to the sponsor on 2024-03-26, 3 days after the site "
                        "became aware (2024-03-23); the limit is 1 day"),
    ])
    book = write_query_workbook(report, tmp_path / "queries_site01.xlsx", site="01", study=study)
    pdf = _convert(book, "pdf", tmp_path / "pdf")
    assert _pages(pdf) <= 2, f"{_pages(pdf)} pages for 3 queries"
    texts = _page_texts(pdf)
    summary = next(t for t in texts if "Summary" in t)
    # The summary prints on one page, its labels beside their values, nothing left as None.
    assert re.search(r"Versione del protocollo\s+1\.1", summary)
    assert re.search(r"Data di cut-off\s+2024-04-12", summary)
    assert "None" not in summary
    queries = next(t for t in texts if "Queries" in t and "Q-1A2B3C4D5E" in t)
    for words in ("Query del centro 01", "Cosa verificare", "Risposta del centro", "Q-3A2B3C4D5E",
                  "30.5 %", "site01_v2.xlsx"):
        assert words in queries, words
    assert "/home/dm" not in "".join(texts)


@needs_pdftotext
@pytest.mark.parametrize("site", list(SITES))
def test_every_language_prints_one_page_per_form_sheet(site_pdfs, site):
    study = load_study()
    texts = _page_texts(site_pdfs[site])
    assert len(texts) <= len(study.forms) + 2, f"site {site}: {len(texts)} pages"
    for code in study.forms:
        on = [i for i, text in enumerate(texts) if re.search(rf"ANK-SJIA-01 · {code}\b", text)]
        assert len(on) == 1, f"site {site} ({SITES[site]}): sheet {code} prints on pages {on}"
    dm = next(t for t in texts if "ANK-SJIA-01 · DM" in t)
    label = study.texts(SITES[site]).label(study.forms["DM"], study.forms["DM"].variable("SEX"))
    assert label in dm  # the label in the site's language is printed text
