"""A second, different study runs the whole pipeline: the engine knows no trial.

``tests/second_study`` (BPX-201) is a hypertension trial with other forms (ENROL, VITALS, DOSING),
other visits (SCREEN, BASELINE, MONTH1, MONTH3), three-digit sites (101 Oslo, 102 Montreal), its own
arms (EVENING, MORNING), its own analysis program (ADBP) and no report plug-in. Through the command
line: template → validate → init/submit → pool (forms and ADBP) → report → pool --unblind, and no
output (files or terminal) holds any text of the bundled study.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from trialkit.cli import cli
from trialkit.demo import write_xlsx
from trialkit.study import load_study

SECOND = Path(__file__).resolve().parent / "second_study"
# Text of the bundled study (its id, drug, age groups, endpoints, visits, variables).
BUNDLED_TEXT = re.compile(
    r"ANK-SJIA|\bANK\b|anakinra|\bPEDI\b|\bACR\b|ACR Pedi|\bW4\b|\bSJIA\b|JADAS|RESPW4|AGEGR1|BRTHYM|"
    r"methotrexate|\bPD-0\d\b|\bDC-\d\d\b|Milan|Cincinnati",
    re.IGNORECASE,
)


def invoke(*args: str, outputs: list[str] | None = None):
    result = CliRunner().invoke(cli, list(args))
    if outputs is not None:
        outputs.append(result.output)
    return result


def records(site: str, start: dt.date, *, bad_diastolic: bool = False) -> dict[str, list[dict]]:
    """Two clean subjects of one site (four visits each, one dosing period)."""
    out: dict[str, list[dict]] = {"ENROL": [], "VITALS": [], "DOSING": []}
    for number in (1, 2):
        subject = f"{site}-{number:04d}"
        day1 = start + dt.timedelta(days=7 * number)
        out["ENROL"].append({"SITEID": site, "SUBJID": subject, "ENRDAT": day1 - dt.timedelta(days=14),
                             "AGEYRS": 50 + number, "SEX": "F" if number == 1 else "M", "RANDNO": f"R{site}{number}"})
        for visit, day, sbp in (("SCREEN", -14, 162.0), ("BASELINE", 1, 158.0), ("MONTH1", 29, 149.0),
                                ("MONTH3", 85, 136.0 + number * 6)):
            when = day1 + dt.timedelta(days=day - 1 if day > 0 else day)
            out["VITALS"].append({"SITEID": site, "SUBJID": subject, "VISIT": visit, "VSDATE": when,
                                  "SYSBP": sbp, "DIABP": 92.0})
        out["DOSING"].append({"SITEID": site, "SUBJID": subject, "DOSESTDT": day1, "DOSEMG": 10.0})
    if bad_diastolic:
        out["VITALS"][1]["DIABP"] = 158.0  # subject 1 at BASELINE: not below the systolic 158
    return out


def texts_of(path: Path) -> str:
    """Everything readable in a file: zip members, parquet as CSV with its schema, else the bytes."""
    data = path.read_bytes()
    if data[:2] == b"PK":
        with zipfile.ZipFile(path) as archive:
            return "\n".join(archive.read(name).decode("utf-8", "replace") for name in archive.namelist())
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pd.read_parquet(path).to_csv() + str(pq.read_schema(path))
    return data.decode("latin-1")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("second")
    study = load_study(SECOND)
    outputs: list[str] = []
    uploads = {}
    for site, start in (("101", dt.date(2025, 1, 6)), ("102", dt.date(2025, 2, 3))):
        uploads[site] = write_xlsx(study, site, records(site, start), root / f"site{site}.xlsx")
    bad = write_xlsx(study, "101", records("101", dt.date(2025, 1, 6), bad_diastolic=True), root / "bad.xlsx")
    ws = root / "ws"
    steps = {
        "template": invoke("--study", str(SECOND), "template", "--site", "101", "-o", str(root / "t101.xlsx"),
                           outputs=outputs),
        "template_after": invoke("template", "--study", str(SECOND), "-o", str(root / "t.xlsx"), outputs=outputs),
        "validate": invoke("--study", str(SECOND), "validate", str(uploads["101"]), "--site", "101", "-f", "json",
                           outputs=outputs),
        "validate_bad": invoke("--study", str(SECOND), "validate", str(bad), "--site", "101", outputs=outputs),
        "init": invoke("--study", str(SECOND), "init", str(ws), outputs=outputs),
        # Without --study from here on: the workspace is bound to BPX-201.
        "submit101": invoke("submit", str(uploads["101"]), "--site", "101", "--workspace", str(ws), outputs=outputs),
        "submit102": invoke("submit", str(uploads["102"]), "--site", "102", "--workspace", str(ws), "-f", "json",
                            outputs=outputs),
        "pool": invoke("pool", "--workspace", str(ws), "-f", "parquet,csv,xpt", "-q", outputs=outputs),
        "report": invoke("report", "--workspace", str(ws), "-o", str(root / "report.html"), outputs=outputs),
        "log": invoke("log", "--workspace", str(ws), "-f", "json", outputs=outputs),
        "codes": invoke("--study", str(SECOND), "codes", "-f", "json", outputs=outputs),
        "dictionary": invoke("--study", str(SECOND), "dictionary", "-f", "md", outputs=outputs),
    }
    randlist = root / "randlist.csv"
    randlist.write_text("RANDNO,ARM\nR1011,EVENING\nR1012,MORNING\nR1021,MORNING\nR1022,EVENING\n")
    steps["unblind"] = invoke("pool", "--workspace", str(ws), "--unblind", str(randlist), "-o", str(root / "unblinded"),
                              "-q", outputs=outputs)
    return {"root": root, "ws": ws, "steps": steps, "outputs": outputs, "study": study, "uploads": uploads}


def test_every_step_succeeds(run):
    codes = {name: (r.exit_code, r.output[-400:]) for name, r in run["steps"].items()}
    assert {name: code for name, (code, _) in codes.items()} == {
        "template": 0, "template_after": 0, "validate": 0, "validate_bad": 1, "init": 0, "submit101": 0,
        "submit102": 0, "pool": 0, "report": 0, "log": 0, "codes": 0, "dictionary": 0, "unblind": 0,
    }, codes


def test_validation_uses_the_study_rules_and_three_digit_sites(run):
    report = json.loads(run["steps"]["validate"].stdout)
    assert report["study"]["id"] == "BPX-201" and report["site"] == "101"
    assert {c["id"] for c in report["checks"] if not c["id"].startswith("schema:")} == {"BP-01", "BP-DV1"}
    assert [f for f in report["findings"] if f["severity"] != "info"] == []
    bad = run["steps"]["validate_bad"].output
    assert "[BP-01]" in bad and "DIABP 158 is not below SYSBP 158" in bad


def test_the_workspace_remembers_its_study(run):
    submitted = json.loads(run["steps"]["submit102"].stdout)
    assert submitted["status"] == "accepted" and submitted["study_id"] == "BPX-201"
    assert submitted["study_version"] == "2.0"
    log = json.loads(run["steps"]["log"].stdout)
    created = next(a for a in log["audit"] if a["action"] == "workspace-created")
    assert created["detail"]["binding"]["study_id"] == "BPX-201"
    assert created["detail"]["binding"]["protocol_version"] == "2.0"
    copy = run["ws"] / created["detail"]["binding"]["copy"]
    assert (copy / "study.toml").is_file() and (copy / "analysis" / "adbp.py").is_file()


def test_pool_writes_the_forms_and_the_study_analysis_dataset(run):
    pooled = run["ws"] / "pooled"
    names = sorted(p.name for p in pooled.glob("*.parquet"))
    # The forms, the study's analysis dataset and the engine's missing-value reasons (none here).
    assert names == ["adbp.parquet", "dosing.parquet", "enrol.parquet", "reasons.parquet", "vitals.parquet"]
    assert pd.read_parquet(pooled / "reasons.parquet").empty
    # define.xml describes a study without analysis metadata too (its own labels, no ADaM class).
    assert "IG.ADBP" in (pooled / "define.xml").read_text(encoding="utf-8")
    adbp = pd.read_parquet(pooled / "adbp.parquet").set_index("SUBJID")
    # Month 3 systolic: 136 + 6·n → 142 and 148; baseline 158; target < 140 → neither controlled.
    assert adbp.loc["101-0001", "M3SBP"] == 142.0 and adbp.loc["101-0001", "CHGSBP"] == -16.0
    assert adbp["CONTROL"].tolist() == ["N", "N", "N", "N"]
    assert "ARM" not in adbp.columns
    manifest = json.loads((pooled / "manifest.json").read_text())
    assert manifest["study"]["id"] == "BPX-201" and manifest["study"]["protocol_versions"] == ["2.0"]
    assert {i["site"] for i in manifest["inputs"]} == {"101", "102"}
    assert all(i["protocol_version"] == "2.0" for i in manifest["inputs"])


def test_unblind_uses_the_study_arms(run, tmp_path):
    adbp = pd.read_parquet(run["root"] / "unblinded" / "adbp.parquet").set_index("SUBJID")
    assert adbp["ARM"].to_dict() == {"101-0001": "EVENING", "101-0002": "MORNING", "102-0001": "MORNING",
                                     "102-0002": "EVENING"}
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("RANDNO,ARM\nR1011,PLACEBO\n")
    result = invoke("pool", "--workspace", str(run["ws"]), "--unblind", str(wrong), "-o", str(tmp_path / "out"))
    assert result.exit_code == 2 and "PLACEBO is not an arm of BPX-201 (arms: EVENING, MORNING)" in result.output


def test_the_report_is_generic(run):
    html = (run["root"] / "report.html").read_text(encoding="utf-8")
    assert "BPX-201 — data-quality report" in html
    assert "101 Oslo (NO)" in html and "102 Montreal (CA)" in html
    assert "VITALS" in html and "MONTH3" in html
    # No report plug-in: no trial section, the generic ones only.
    assert 'id="primary"' not in html and 'id="response"' not in html


def test_no_output_holds_text_of_the_bundled_study(run):
    # The scan itself works: it finds the bundled study's text in the bundled study's own template.
    committed = Path(__file__).resolve().parents[1] / "templates" / "ANK-SJIA-01_upload_template.xlsx"
    assert {"ANK-SJIA", "methotrexate"} <= {m.group(0) for m in BUNDLED_TEXT.finditer(texts_of(committed))}
    found = {}
    for path in sorted(run["root"].rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            hits = sorted({m.group(0) for m in BUNDLED_TEXT.finditer(texts_of(path))})
            if hits:
                found[str(path.relative_to(run["root"]))] = hits
    for index, text in enumerate(run["outputs"]):
        hits = sorted({m.group(0) for m in BUNDLED_TEXT.finditer(text)})
        if hits:
            found[f"command output {index}"] = hits
    assert found == {}


def test_sites_are_not_padded(run, tmp_path):
    study = run["study"]
    assert study.site("101").city == "Oslo" and study.site("0101").city == "Oslo"
    result = invoke("--study", str(SECOND), "template", "--site", "1", "-o", str(tmp_path / "t.xlsx"))
    assert result.exit_code == 2 and "unknown site '1'" in result.output and "101, 102" in result.output


def test_another_study_is_refused_by_the_workspace(run):
    result = invoke("submit", str(run["uploads"]["101"]), "--site", "01", "--workspace", str(run["ws"]),
                    "--study", str(load_study().path))
    assert result.exit_code == 2
    assert "is for study BPX-201, not ANK-SJIA-01" in result.output


def test_a_study_without_a_demo_says_so(tmp_path):
    result = invoke("--study", str(SECOND), "demo", str(tmp_path / "demo"))
    assert result.exit_code == 2
    assert "BPX-201 has no demo" in result.output
    assert not (tmp_path / "demo").exists()


def test_study_check_passes(run):
    result = invoke("study", "check", str(SECOND), "-f", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["study"]["forms"] == ["ENROL", "VITALS", "DOSING"]
    assert [p for p in report["problems"] if p["level"] == "error"] == []


def test_codes_list_the_engine_and_the_study_rules(run):
    data = json.loads(run["steps"]["codes"].stdout)
    assert {c["code"] for c in data["study"]["codes"]} == {"BP-01", "BP-DV1"}
    assert any(c["code"] == "IMP-TEMPLATE-OUTDATED" for c in data["engine"])
