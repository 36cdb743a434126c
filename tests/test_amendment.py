"""Amendment 1 (protocol version 1.1) is a change of the bundled study folder alone.

Each item has its own tests beside the rule or program it changed: the W8 window and PD-14 in
test_deviations.py, UPCR (DC-17) in test_checks.py, the TEAE definition and the taper population in
test_adam.py. Here: the new site with its own conventions, the versions the definition records, and
templates issued under version 1.0 staying valid.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from trialkit.demo import write_xlsx
from trialkit.importers.reader import import_files
from trialkit.study import load_study
from trialkit.templates import write_template
from trialkit.validate import validate


def version_1_0(tmp_path: Path, study) -> Path:
    """The definition as it was before the amendment, as far as a template is concerned."""
    target = tmp_path / "v1.0"
    shutil.copytree(study.path, target, ignore=shutil.ignore_patterns("__pycache__"))
    toml = target / "study.toml"
    text = toml.read_text(encoding="utf-8").replace('protocol_version = "1.1"', 'protocol_version = "1.0"')
    start = text.index("# Amendment 1: new site 09")
    text = text[:start] + text[text.index("# ---", start):]
    text = text.replace("window_lo = 50   # Amendment 1: +/- 7 days (was 52..62)\nwindow_hi = 64",
                        "window_lo = 52\nwindow_hi = 62")
    toml.write_text(text, encoding="utf-8")
    return target


def test_the_definition_records_its_versions(study):
    assert study.protocol_version == "1.1"
    assert [a["version"] for a in study.amendments] == ["1.0", "1.1"]
    assert study.amendments[1]["effective"] == dt.date(2026, 1, 15)


def test_version_1_0_templates_stay_valid(tmp_path, study):
    old = load_study(version_1_0(tmp_path, study))
    assert (old.protocol_version, "09" in old.sites, old.visits["W8"].window_lo) == ("1.0", False, 52)
    workbook = write_template(old, tmp_path / "issued-under-1.0.xlsx", site="01")
    imported = import_files([workbook], study, site="01")
    assert imported.files[0]["stamp"] == f"ANK-SJIA-01|1.0|{study.schema_hash}"
    codes = {f.code for f in imported.report.findings}
    assert not codes & {"IMP-TEMPLATE-OUTDATED", "IMP-TEMPLATE-STUDY", "IMP-TEMPLATE-STAMP"}
    # A template whose forms differ is still outdated.
    assert study.stamp_status(f"ANK-SJIA-01|1.0|{'0' * 12}") == "outdated"


def test_toronto_types_dates_year_first_with_a_decimal_point(tmp_path, study):
    toronto = study.site("09")
    assert (toronto.city, toronto.country, toronto.date_order, toronto.decimal_mark) == ("Toronto", "CA", "YMD", ".")
    assert toronto.date_format_hint == "YYYY-MM-DD"
    assert study.codelists["SITEID"].decode("09") == "Toronto"
    records = {"DM": [{"SITEID": "09", "SUBJID": "09-001", "ICDAT": dt.date(2026, 3, 5), "BRTHYM": "2014-07",
                       "SEX": "F"}],
               "VS": [{"SITEID": "09", "SUBJID": "09-001", "VISIT": "SCR", "VSDAT": dt.date(2026, 3, 5),
                       "WEIGHT": 31.5, "WEIGHTU": "kg"}]}
    upload = write_xlsx(study, "09", records, tmp_path / "toronto.xlsx")
    imported = import_files([upload], study, site="09")
    dm = imported.forms["DM"]
    assert dm.raw.at[dm.data.index[0], "ICDAT"] == "2026-03-05"  # typed as text, year first
    assert dm.data.at[dm.data.index[0], "ICDAT"] == dt.datetime(2026, 3, 5)
    assert imported.forms["VS"].data["WEIGHT"].tolist() == [31.5]
    report = validate(study, imported, site="09")
    assert [f for f in report.findings if f.category.value in ("type", "range", "codelist", "privacy")] == []
