"""A site, a visit window, a deviation: each is an edit inside a (copied) study folder, nothing else.

No test here touches trialkit/: the copied folder is edited and loaded, and the engine follows.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from trialkit.cli import cli
from trialkit.rules import run_rules
from trialkit.study import load_study

from .test_deviations import CUT, clean_subject, day, make_forms, replace


@pytest.fixture()
def copied(tmp_path, study) -> Path:
    target = tmp_path / "study"
    shutil.copytree(study.path, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def edit(folder: Path, file: str, old: str, new: str) -> None:
    path = folder / file
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_adding_a_site(copied, study, tmp_path):
    edit(copied, "study.toml", "# ---------------------------------------------------------------------------------------------------\n# Visit schedule",
         '[[sites]]\nid = "10"\ncity = "Lisbon"\ncountry = "PT"\ndate_order = "DMY"\ndate_sep = "/"\n'
         'decimal_mark = ","\n\n# ---------------------------------------------------------------------------------------------------\n# Visit schedule')
    amended = load_study(copied)
    assert amended.site("10").city == "Lisbon" and amended.codelists["SITEID"].decode("10") == "Lisbon"
    # Every template issued before stays current: the stamp depends on the forms only.
    assert amended.schema_hash == study.schema_hash
    result = CliRunner().invoke(cli, ["--study", str(copied), "template", "--site", "10", "-o",
                                      str(tmp_path / "lisbon.xlsx"), "-q"])
    assert result.exit_code == 0, result.output
    from openpyxl import load_workbook

    book = load_workbook(tmp_path / "lisbon.xlsx")
    assert {r[0]: r[1] for r in book["_trialkit"].iter_rows(values_only=True)}["site"] == "10"  # fills SITEID
    assert book["DM"].cell(row=4, column=1).value == "required\nblank = site 10"  # no language: English
    assert any("Lisbon" in str(c.value) for row in book["Instructions"].iter_rows() for c in row if c.value)


def test_changing_a_visit_window(copied):
    visit_day = 95  # W12: target 85, window 78..92 → outside; widened to 75..95 → inside
    subject = copy.deepcopy(clean_subject())
    subject["VS"].append({"SITEID": "01", "SUBJID": "01-001", "VISIT": "W12", "VSDAT": day(visit_day),
                          "WEIGHT": 30, "WEIGHTU": "kg"})
    cut = day(100)
    before = load_study(copied)
    rule = next(r for r in before.rules if r.id == "PD-07")
    findings, _ = run_rules(before, make_forms(before, subject), data_cut=cut, rules=[rule])
    assert [(f.code, f.visit) for f in findings if f.visit == "W12"] == [("PD-07", "W12")]

    edit(copied, "study.toml", 'code = "W12"\nlabel = "Week 12"\ndecode = "Week 12"\nanchor = "first_dose"\n'
         'target_day = 85\nwindow_lo = 78\nwindow_hi = 92',
         'code = "W12"\nlabel = "Week 12"\ndecode = "Week 12"\nanchor = "first_dose"\n'
         'target_day = 85\nwindow_lo = 75\nwindow_hi = 95')
    after = load_study(copied)
    assert (after.visits["W12"].window_lo, after.visits["W12"].window_hi) == (75, 95)
    rule = next(r for r in after.rules if r.id == "PD-07")
    findings, _ = run_rules(after, make_forms(after, subject), data_cut=cut, rules=[rule])
    assert [f for f in findings if f.visit == "W12"] == []


NEW_DEVIATION = '''

@rule(
    "PD-15",
    "Weight below 10 kg at day 1",
    severity=MINOR,
    category=CATEGORY,
    reference="Amendment X (a test): minimum weight",
    forms=["VS"],
    message="weight {WEIGHT} kg at D1 is below 10 kg",
    deviation_class="minor",
)
def pd15_light_at_day_1(ctx: RuleContext) -> pd.DataFrame:
    vs = ctx.form("VS")
    light = vs[vs["VISIT"].eq("D1").fillna(False) & vs["WEIGHT"].lt(10).fillna(False)]
    return _findings({"SUBJID": row.SUBJID, "VISIT": "D1", "_form": "VS", "_index": index,
                      "_variable": "WEIGHT", "WEIGHT": row.WEIGHT} for index, row in light.iterrows())


RULES.append(pd15_light_at_day_1)
'''


def test_adding_a_deviation(copied):
    path = copied / "deviations.py"
    path.write_text(path.read_text(encoding="utf-8") + NEW_DEVIATION, encoding="utf-8")
    amended = load_study(copied)
    rule = next(r for r in amended.rules if r.id == "PD-15")
    subject = copy.deepcopy(clean_subject())
    assert run_rules(amended, make_forms(amended, subject), data_cut=CUT, rules=[rule])[0] == []
    replace(subject["VS"], {"VISIT": "D1"}, WEIGHT=9.5)
    findings, _ = run_rules(amended, make_forms(amended, subject), data_cut=CUT, rules=[rule])
    assert [(f.code, f.deviation_class, f.visit, f.value) for f in findings] == [("PD-15", "minor", "D1", "9.5")]
    # The catalogue of codes lists it at once.
    result = CliRunner().invoke(cli, ["codes", "-f", "json", "--study", str(copied)])
    assert "PD-15" in {c["code"] for c in json.loads(result.stdout)["study"]["codes"]}
