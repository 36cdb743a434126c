"""Regenerate ``docs/template_page.png`` and ``docs/query_workbook_page.png``: the site workbooks printed.

Usage (from the repository root, with trialkit installed and LibreOffice and poppler-utils on PATH)::

    python docs/make_workbook_pngs.py                # writes the two PNGs (and keeps nothing else)
    python docs/make_workbook_pngs.py --keep DIR     # also keeps the workbooks and PDFs in DIR

The pictures are what a site coordinator in Milan holds: the VS sheet of site 01's upload template
and the Queries sheet of a query workbook of three synthetic queries, both in Italian, each converted
to PDF by LibreOffice (``--headless --convert-to pdf``, as a site prints them) and rendered by
``pdftoppm``. No data of any person is involved: the queries are made up here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DPI = "110"


def _tool(name: str, *alternatives: str) -> str:
    for candidate in (name, *alternatives):
        found = shutil.which(candidate)
        if found:
            return found
    raise SystemExit(f"{name} is not on PATH; install it to regenerate the pictures")


def _to_pdf(workbook: Path, folder: Path) -> Path:
    office = _tool("libreoffice", "soffice")
    profile = folder / "lo-profile"
    subprocess.run([office, f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to", "pdf",
                    "--outdir", str(folder), str(workbook)], check=True, capture_output=True, timeout=300)
    return folder / f"{workbook.stem}.pdf"


def _page_with(pdf: Path, words: str) -> int:
    """The first page (1-based) whose text holds ``words``."""
    text = subprocess.run([_tool("pdftotext"), "-layout", str(pdf), "-"], check=True, capture_output=True,
                          text=True).stdout
    for number, page in enumerate(text.split("\f"), start=1):
        if words in page:
            return number
    raise SystemExit(f"{pdf.name}: no page shows {words!r}")


def _png(pdf: Path, page: int, target: Path) -> None:
    stem = target.with_suffix("")
    subprocess.run([_tool("pdftoppm"), "-r", DPI, "-png", "-singlefile", "-f", str(page), "-l", str(page),
                    str(pdf), str(stem)], check=True, capture_output=True)
    print(f"Wrote {target.relative_to(ROOT)} (page {page} of {pdf.name})")


def _queries(study) -> object:
    from trialkit.findings import Finding, Report

    upload = "/home/dm/trialkit-demo/uploads/site01/site01_2024-04.xlsx"  # a data manager's path: not shown
    return Report(study_id=study.id, study_version=study.protocol_version, schema_hash=study.schema_hash,
                  site="01", data_cut="2024-04-12", findings=[
        Finding(code="RANGE", severity="error", category="range", site="01", subject="01-003", form="VS",
                visit="W4", variable="WEIGHT", value="300", file=upload, sheet="VS", row=12,
                reference="Synopsis: VS form", query_id="Q-5D41402ABC",
                message="WEIGHT = 300 is outside 8–200 kg; correct the value in the file"),
        Finding(code="PD-06", severity="warning", category="deviation", site="01", subject="01-004", form="EX",
                variable="EXMISS", value="25", file=upload, sheet="EX", row=7, deviation_class="minor",
                reference="Synopsis, Protocol deviations PD-06; Treatment (missed doses)", query_id="Q-7E2B1C9F40",
                message="25 of 82 planned daily doses missed (30.5 %) in the period from 2024-02-01 (Part B); "
                        "the limit is 20 %"),
        Finding(code="PD-12", severity="error", category="deviation", site="01", subject="01-001", form="AE",
                variable="AERPTDAT", value="2024-03-26", file=upload, sheet="AE", row=4, deviation_class="major",
                reference="Synopsis, Protocol deviations PD-12; Safety reporting", query_id="Q-9A0C33E1D2",
                message="serious AE Pneumonia reported to the sponsor on 2024-03-26, 3 days after the site "
                        "became aware (2024-03-23); the limit is 1 day"),
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, default=None, help="keep the workbooks and PDFs in this folder")
    args = parser.parse_args()

    from trialkit.querybook import write_query_workbook
    from trialkit.study import load_study
    from trialkit.templates import write_template

    study = load_study()
    with tempfile.TemporaryDirectory(prefix="trialkit-pngs-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        template = write_template(study, folder / "ANK-SJIA-01_upload_template_site01.xlsx", site="01")
        pdf = _to_pdf(template, folder)
        _png(pdf, _page_with(pdf, f"{study.id} · VS"), ROOT / "docs" / "template_page.png")
        generated = dt.datetime(2024, 4, 15, 9, 30, tzinfo=dt.UTC)
        book = write_query_workbook(_queries(study), folder / "queries_site01.xlsx", site="01", study=study,
                                    generated_at=generated)
        pdf = _to_pdf(book, folder)
        _png(pdf, _page_with(pdf, "Q-5D41402ABC"), ROOT / "docs" / "query_workbook_page.png")


if __name__ == "__main__":
    main()
