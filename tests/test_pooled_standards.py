"""A pooled output set a statistician can submit: define.xml (Define-XML 2.1) and Dataset-JSON v1.1
valid against their published schemas, item OIDs that match, missing-value reasons recoverable in
every format, and labels and value labels of the analysis datasets read back by pyreadstat and R
haven.

One workspace (module scope): sites 01 and 07, one clean subject each, with three cells typed as
missing-value codes at site 01 (CHAQ ACT1 = NA, VS HEIGHT = NK, VS SYSBP = ND), pooled once in
every format.
"""

from __future__ import annotations

import copy
import csv
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import odmlib
import pandas as pd
import pyarrow.parquet as pq
import pyreadstat
import pytest
import xmlschema
from click.testing import CliRunner

from trialkit.cli import cli

from .test_deviations import clean_subject
from .upload_builder import write_upload

DATA = Path(__file__).resolve().parent / "data" / "dataset-json-1.1"
DEFINE_XSD = Path(odmlib.__file__).parent / "schemas" / "define" / "2.1" / "define2-1-0.xsd"
FORMATS = "parquet,csv,xpt,sav,dta,datasetjson,ndjson"
NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3", "def": "http://www.cdisc.org/ns/def/v2.1"}
ANALYSIS = ("adsl", "adeff", "adae", "adlb", "adtte")
#: The cells planted as missing-value codes: (form, visit, variable, code).
PLANTED = {("CHAQ", "SCR", "ACT1", "NA"), ("VS", "SCR", "HEIGHT", "NK"), ("VS", "D1", "SYSBP", "ND")}


def invoke(*args: str, expect: int = 0):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == expect, (args, result.output)
    return result


@pytest.fixture(scope="module")
def pooled(tmp_path_factory, study) -> Path:
    root = tmp_path_factory.mktemp("standards")
    ws = root / "ws"
    invoke("init", str(ws))
    for site, subject, rand in (("01", "01-001", "R001"), ("07", "07-001", "R002")):
        records = copy.deepcopy(clean_subject())
        records["RAND"][0]["RANDNO"] = rand
        if site == "01":
            for form, visit, variable, code in PLANTED:
                row = next(r for r in records[form] if r["VISIT"] == visit)
                row[variable] = code
        path = write_upload(study, root / f"site{site}.xlsx", records, site=site, subject=subject)
        invoke("submit", str(path), "--site", site, "--workspace", str(ws), "--accept-warnings",
               "--data-cut", "2024-04-12", "-q")
    invoke("pool", "--workspace", str(ws), "-o", str(root / "pooled"), "-f", FORMATS, "-q")
    return root / "pooled"


def _define(pooled: Path) -> ET.Element:
    return ET.parse(pooled / "define.xml").getroot()


# ------------------------------------------------------------------------------------------------
# define.xml


@pytest.fixture(scope="module")
def define_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(DEFINE_XSD))


def test_define_xml_is_valid_define_21(pooled, define_schema):
    errors = [str(e).splitlines()[0] for e in define_schema.iter_errors(str(pooled / "define.xml"))]
    assert errors == []
    root = _define(pooled)
    version = root.find("odm:Study/odm:MetaDataVersion", NS)
    assert version.get(f"{{{NS['def']}}}DefineVersion") == "2.1.0"
    assert root.find("odm:Study/odm:GlobalVariables/odm:StudyName", NS).text == "ANK-SJIA-01"


def test_the_schema_check_catches_a_broken_define(pooled, define_schema, tmp_path):
    # Positive control: the same file without a dataset's required def:Structure is refused.
    text = (pooled / "define.xml").read_text(encoding="utf-8")
    broken = tmp_path / "define.xml"
    broken.write_text(text.replace('def:Structure="One record per subject"', "", 1), encoding="utf-8")
    assert text != broken.read_text(encoding="utf-8")
    assert not define_schema.is_valid(str(broken))


def test_define_describes_every_dataset_variable_codelist_and_method(pooled):
    root = _define(pooled)
    version = root.find("odm:Study/odm:MetaDataVersion", NS)
    groups = {g.get("Name"): g for g in version.findall("odm:ItemGroupDef", NS)}
    manifest = json.loads((pooled / "manifest.json").read_text())
    assert set(groups) == {name.upper() for name in manifest["datasets"]}
    assert {"ADSL", "ADEFF", "ADAE", "ADLB", "ADTTE", "REASONS", "DM", "LB"} <= set(groups)
    classes = {name: g.find("def:Class", NS).get("Name") for name, g in groups.items() if g.find("def:Class", NS) is not None}
    assert classes == {"ADSL": "SUBJECT LEVEL ANALYSIS DATASET", "ADEFF": "BASIC DATA STRUCTURE",
                       "ADAE": "OCCURRENCE DATA STRUCTURE", "ADLB": "BASIC DATA STRUCTURE",
                       "ADTTE": "BASIC DATA STRUCTURE"}
    assert groups["DM"].get("Purpose") == "Tabulation" and groups["ADSL"].get("Purpose") == "Analysis"
    assert groups["DM"].get(f"{{{NS['def']}}}IsNonStandard") == "Yes"
    items = {i.get("OID"): i for i in version.findall("odm:ItemDef", NS)}
    for name, group in groups.items():
        columns = manifest["datasets"][name.lower()]["columns"]
        refs = [r.get("ItemOID") for r in group.findall("odm:ItemRef", NS)]
        assert refs == [f"IT.{name}.{c}" for c in columns], name
        assert all(ref in items for ref in refs), name
    # Keys, origins, methods.
    adsl_refs = {r.get("ItemOID"): r for r in groups["ADSL"].findall("odm:ItemRef", NS)}
    assert adsl_refs["IT.ADSL.USUBJID"].get("KeySequence") == "2"
    methods = {m.get("OID"): m for m in version.findall("odm:MethodDef", NS)}
    trtedt = methods[adsl_refs["IT.ADSL.TRTEDT"].get("MethodOID")]
    assert "empty while a period is open" in "".join(trtedt.itertext())
    assert items["IT.ADSL.TRTEDT"].find("def:Origin", NS).get("Type") == "Derived"
    assert items["IT.ADSL.TRTEDT"].get(f"{{{NS['def']}}}DisplayFormat") == "DATE9."
    assert items["IT.DM.SEX"].find("def:Origin", NS).get("Type") == "Collected"
    sex = items["IT.ADSL.SEX"]
    assert sex.find("def:Origin", NS).get("Type") == "Predecessor"
    codelists = {c.get("OID"): c for c in version.findall("odm:CodeList", NS)}
    decoded = {i.get("CodedValue"): "".join(i.itertext()).strip()
               for i in codelists[sex.find("odm:CodeListRef", NS).get("CodeListOID")].findall("odm:CodeListItem", NS)}
    assert decoded == {"M": "Male", "F": "Female"}


@pytest.mark.parametrize("dataset", ["ADEFF", "ADLB"])
def test_define_has_value_level_metadata_for_every_parameter(pooled, dataset):
    version = _define(pooled).find("odm:Study/odm:MetaDataVersion", NS)
    data = pq.read_table(pooled / f"{dataset.lower()}.parquet").to_pandas()
    value_list = next(v for v in version.findall("def:ValueListDef", NS) if v.get("OID") == f"VL.{dataset}.AVAL")
    wheres = {w.get("OID"): w for w in version.findall("def:WhereClauseDef", NS)}
    items = {i.get("OID"): i for i in version.findall("odm:ItemDef", NS)}
    described = set()
    for ref in value_list.findall("odm:ItemRef", NS):
        clause = wheres[ref.find("def:WhereClauseRef", NS).get("WhereClauseOID")]
        check = clause.find("odm:RangeCheck", NS)
        assert check.get(f"{{{NS['def']}}}ItemOID") == f"IT.{dataset}.PARAMCD" and check.get("Comparator") == "EQ"
        paramcd = check.find("odm:CheckValue", NS).text
        described.add(paramcd)
        item = items[ref.get("ItemOID")]
        assert item.get("Name") == "AVAL" and "".join(item.find("odm:Description", NS).itertext()).strip()
    assert described == set(data["PARAMCD"])
    assert items[f"IT.{dataset}.AVAL"].find("def:ValueListRef", NS).get("ValueListOID") == f"VL.{dataset}.AVAL"
    if dataset == "ADLB":
        crp = items["IT.ADLB.AVAL.CRP"]
        assert "".join(crp.find("odm:Description", NS).itertext()).strip() == "C-reactive protein (mg/L)"


# ------------------------------------------------------------------------------------------------
# Dataset-JSON


@pytest.fixture(scope="module")
def dataset_json_validator() -> jsonschema.Validator:
    schema = json.loads((DATA / "dataset.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft201909Validator(schema)


def test_dataset_json_is_valid_and_matches_define(pooled, dataset_json_validator):
    version = _define(pooled).find("odm:Study/odm:MetaDataVersion", NS)
    items = {i.get("OID") for i in version.findall("odm:ItemDef", NS)}
    groups = {g.get("OID") for g in version.findall("odm:ItemGroupDef", NS)}
    manifest = json.loads((pooled / "manifest.json").read_text())
    for name, entry in manifest["datasets"].items():
        data = json.loads((pooled / f"{name}.json").read_text(encoding="utf-8"))
        assert [e.message for e in dataset_json_validator.iter_errors(data)] == [], name
        assert data["datasetJSONVersion"] == "1.1.0" and data["metaDataRef"] == "define.xml"
        assert data["itemGroupOID"] in groups and data["name"] == name.upper()
        assert [c["itemOID"] for c in data["columns"]] == [f"IT.{name.upper()}.{c}" for c in entry["columns"]]
        assert {c["itemOID"] for c in data["columns"]} <= items, name
        assert data["records"] == entry["rows"] == len(data["rows"]), name
        assert all(len(r) == len(data["columns"]) for r in data["rows"]), name


def test_dataset_json_dates_are_iso_text_and_values_typed(pooled):
    data = json.loads((pooled / "adsl.json").read_text(encoding="utf-8"))
    columns = {c["name"]: (i, c) for i, c in enumerate(data["columns"])}
    position, trtsdt = columns["TRTSDT"]
    assert (trtsdt["dataType"], trtsdt["targetDataType"], trtsdt["displayFormat"]) == ("date", "integer", "DATE9.")
    adsl = pq.read_table(pooled / "adsl.parquet").to_pandas()
    assert [r[position] for r in data["rows"]] == [d.isoformat() for d in adsl["TRTSDT"]]
    assert columns["AGE"][1]["dataType"] == "integer"
    assert all(isinstance(r[columns["AGE"][0]], int) for r in data["rows"])
    assert columns["WEIGHTBL"][1]["dataType"] == "double"
    assert [c["name"] for c in data["columns"] if "keySequence" in c] == ["STUDYID", "USUBJID"]
    # A missing value is null, never "" or NaN.
    dsstdt = columns["DSSTDT"][0]
    assert [r[dsstdt] for r in data["rows"]] == [None, None]


def test_ndjson_is_valid_and_holds_the_same_rows(pooled, dataset_json_validator):
    raw = (DATA / "dataset-ndjson-schema.json").read_bytes()
    schema = json.loads(raw.decode("utf-16"))
    metadata_schema = {**schema["$defs"]["DatasetMetadata"], "$defs": schema["$defs"]}
    lines = (pooled / "adeff.ndjson").read_text(encoding="utf-8").splitlines()
    head = json.loads(lines[0])
    assert [e.message for e in jsonschema.Draft201909Validator(metadata_schema).iter_errors(head)] == []
    whole = json.loads((pooled / "adeff.json").read_text(encoding="utf-8"))
    assert "rows" not in head and head == {k: v for k, v in whole.items() if k != "rows"}
    assert [json.loads(line) for line in lines[1:]] == whole["rows"]


# ------------------------------------------------------------------------------------------------
# Missing-value reasons in every format


def _reasons_from(pooled: Path, fmt: str) -> set[tuple[str, str, str, str]]:
    """(FORM, VISIT, VARIABLE, REASON) of site 01's rows, read back by another reader."""
    if fmt == "parquet":
        frame = pq.read_table(pooled / "reasons.parquet").to_pandas()
    elif fmt == "csv":
        frame = pd.read_csv(pooled / "reasons.csv", dtype=str, keep_default_na=False)
    elif fmt == "xpt":
        frame, _ = pyreadstat.read_xport(pooled / "reasons.xpt")
    elif fmt == "sav":
        frame, _ = pyreadstat.read_sav(pooled / "reasons.sav")
    elif fmt == "dta":
        frame, _ = pyreadstat.read_dta(pooled / "reasons.dta")
    else:
        data = json.loads((pooled / "reasons.json").read_text(encoding="utf-8"))
        frame = pd.DataFrame(data["rows"], columns=[c["name"] for c in data["columns"]])
    frame = frame[frame["SITEID"] == "01"]
    return {(r.FORM, r.VISIT, r.VARIABLE, r.REASON) for r in frame.itertuples(index=False)}


@pytest.mark.parametrize("fmt", ["parquet", "csv", "xpt", "sav", "dta", "datasetjson"])
def test_every_reason_survives_every_format(pooled, fmt):
    assert _reasons_from(pooled, fmt) == PLANTED


def test_the_form_holds_a_blank_where_the_reason_is_and_the_reason_joins_back(pooled):
    chaq = pq.read_table(pooled / "chaq.parquet").to_pandas()
    cell = chaq.loc[(chaq["SUBJID"] == "01-001") & (chaq["VISIT"] == "SCR"), "ACT1"]
    assert cell.isna().all() and len(cell) == 1
    reasons = pq.read_table(pooled / "reasons.parquet").to_pandas()
    joined = chaq.merge(reasons[reasons["VARIABLE"] == "ACT1"], on=["SITEID", "SUBJID", "VISIT"])
    assert joined[["SUBJID", "REASON", "REASONDC"]].values.tolist() == [["01-001", "NA", "Not applicable"]]
    # A CSV reader that takes the text NA for missing (pandas' default) still has the decode.
    naive = pd.read_csv(pooled / "reasons.csv", dtype=str)
    assert "Not applicable" in set(naive["REASONDC"])


def test_the_codebook_documents_the_reasons_and_every_parameter(pooled):
    text = (pooled / "codebook.md").read_text(encoding="utf-8")
    assert "## reasons: Missing-Value Reasons (ND/NK/NA)" in text
    assert "Every cell a site typed as a missing-value code (ND = Not done, NK = Not known, NA = Not applicable)" in text
    assert "| REASON | Missing-value reason as typed | string | `ND` = Not done; `NK` = Not known; `NA` = Not applicable |" in text
    for line in ("| ESR | Erythrocyte sedimentation rate (mm/h) | 7 | mm/h |",
                 "| PREDMGKG | Prednisone-equivalent dose (mg/kg/day) | 27 | mg/kg/day |",
                 "| UPCR | Urine protein/creatinine ratio (mg/mg) | 13 | mg/mg |",
                 "| TTDISC | Time to discontinuation, all reasons (days) | 1 | days |"):
        assert line in text, line
    with open(pooled / "adsl.codebook.csv", newline="", encoding="utf-8") as handle:
        book = {r["column"]: r for r in csv.DictReader(handle)}
    assert book["TRTEDT"]["origin"] == "Derived" and "open" in book["TRTEDT"]["derivation"]
    from openpyxl import load_workbook

    sheet = load_workbook(pooled / "codebook.xlsx")["Parameters"]
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert ("adeff", "CRP", "C-reactive protein (mg/L)", 8, "mg/L") in [r[:5] for r in rows]


# ------------------------------------------------------------------------------------------------
# Labels and value labels of the analysis datasets


def test_pyreadstat_reads_labels_and_value_labels_of_the_analysis_datasets(pooled):
    for name in ANALYSIS:
        for fmt, reader in (("sav", pyreadstat.read_sav), ("dta", pyreadstat.read_dta), ("xpt", pyreadstat.read_xport)):
            _, meta = reader(pooled / f"{name}.{fmt}", metadataonly=True)
            assert all(meta.column_names_to_labels[c] for c in meta.column_names), (name, fmt)
            if fmt != "xpt":
                assert meta.file_label.endswith("Analysis Dataset"), (name, fmt)
    _, sav = pyreadstat.read_sav(pooled / "adsl.sav", metadataonly=True)
    assert sav.file_label == "Subject-Level Analysis Dataset"
    assert sav.column_names_to_labels["TRTEDT"] == "Date of Last Exposure to Treatment"
    assert sav.variable_value_labels["SEX"] == {"M": "Male", "F": "Female"}
    assert sav.variable_value_labels["SAFFL"] == {"Y": "Yes", "N": "No"}
    _, dta = pyreadstat.read_dta(pooled / "adeff.dta", metadataonly=True)
    labels = dta.variable_value_labels
    # PARAMCD's Stata twin numbers the parameters in the order of their codelist (ESR is the 7th).
    assert labels["PARAMCDN"][7] == "Erythrocyte sedimentation rate (mm/h)"
    assert labels["AVISITN"][1] == "Day 1 (randomization, first dose)"
    _, dta = pyreadstat.read_dta(pooled / "adtte.dta", metadataonly=True)
    assert dta.variable_value_labels["CNSR"] == {0: "Event", 1: "Censored"}


def _haven_available() -> bool:
    if not shutil.which("Rscript"):
        return False
    probe = subprocess.run(["Rscript", "-e", "library(haven)"], capture_output=True, timeout=120)
    return probe.returncode == 0


@pytest.mark.skipif(not _haven_available(), reason="R with haven not installed; .ci/run installs r-cran-haven")
def test_r_haven_reads_labels_and_value_labels_of_the_analysis_datasets(pooled):
    script = r"""
    library(haven)
    args <- commandArgs(trailingOnly = TRUE)
    for (path in args) {
      d <- if (grepl("sav$", path)) read_sav(path) else if (grepl("dta$", path)) read_dta(path) else read_xpt(path)
      cat("FILE", basename(path), attr(d, "label"), sep = "\t"); cat("\n")
      for (v in names(d)) {
        lab <- attr(d[[v]], "label"); if (is.null(lab)) lab <- ""
        vl <- attr(d[[v]], "labels")
        vls <- if (is.null(vl)) "" else paste(paste0(vl, "=", names(vl)), collapse = ";")
        cat(basename(path), v, lab, vls, sep = "\t"); cat("\n")
      }
      if (grepl("^reasons", basename(path))) {
        for (i in seq_len(nrow(d))) {
          cat("ROW", basename(path), d$SITEID[i], d$FORM[i], d$VISIT[i], d$VARIABLE[i], as.character(d$REASON[i]), sep = "\t")
          cat("\n")
        }
      }
    }
    """
    files = [str(pooled / f"{name}.{fmt}") for name in ANALYSIS for fmt in ("sav", "dta", "xpt")]
    files += [str(pooled / f"reasons.{fmt}") for fmt in ("sav", "dta", "xpt")]
    result = subprocess.run(["Rscript", "-e", script, *files], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    dataset_labels = {r[1]: r[2] for r in lines if r[0] == "FILE"}
    # Every planted reason, read back by haven from each format.
    for fmt in ("sav", "dta", "xpt"):
        rows = {tuple(r[3:7]) for r in lines if r[0] == "ROW" and r[1] == f"reasons.{fmt}" and r[2] == "01"}
        assert rows == PLANTED, fmt
    assert dataset_labels["adsl.sav"] == "Subject-Level Analysis Dataset"
    assert dataset_labels["adlb.dta"] == "Laboratory Analysis Dataset"
    variables = {(r[0], r[1]): (r[2], r[3] if len(r) > 3 else "") for r in lines if r[0] not in ("FILE", "ROW")}
    for name in ANALYSIS:
        for fmt in ("sav", "dta", "xpt"):
            unlabelled = [v for (f, v), (label, _) in variables.items() if f == f"{name}.{fmt}" and not label]
            assert unlabelled == [], (name, fmt)
    assert variables[("adsl.sav", "TRTONGFL")] == ("Treatment Ongoing at Data Cut Flag", "Y=Yes;N=No")
    assert variables[("adsl.dta", "SEXN")][1] == "1=Male;2=Female"
    assert variables[("adtte.sav", "CNSR")][1] == "0=Event;1=Censored"
    assert variables[("adlb.sav", "ANRIND")][1].startswith("LOW=Below the lower limit")
    assert variables[("reasons.sav", "REASON")][1] == "ND=Not done;NK=Not known;NA=Not applicable"


# ------------------------------------------------------------------------------------------------
# The demo study (135 subjects, a year of visits): the defects of issue 16 are gone at scale


def test_the_demo_pool_is_bds_clean_with_open_courses_and_reasons(demo_run):
    folder, _ = demo_run
    pooled = folder / "workspace" / "pooled"
    adsl = pq.read_table(pooled / "adsl.parquet").to_pandas()
    ongoing = adsl[adsl["TRTONGFL"] == "Y"]
    assert len(ongoing) > 0 and ongoing["TRTEDT"].isna().all()
    assert adsl.loc[adsl["TRTONGFL"] == "N", "TRTEDT"].notna().all()
    cut = adsl["DCUTDT"].iloc[0]
    assert (ongoing["TRTDURD"] == [(cut - d).days + 1 for d in ongoing["TRTSDT"]]).all()
    adeff = pq.read_table(pooled / "adeff.parquet").to_pandas()
    assert not (adeff["AVAL"].isna() & adeff["AVALC"].isna()).any()
    assert not adeff[["AVALC", "ABLFL", "CRIT1FL", "DTYPE"]].isin([""]).any().any()
    assert adeff.loc[adeff["AVISITN"] <= 1, ["CHG", "PCHG"]].isna().all().all()
    keys = adeff[["USUBJID", "PARAMN", "AVISITN"]]
    assert keys.equals(keys.sort_values(["USUBJID", "PARAMN", "AVISITN"], kind="stable").reset_index(drop=True))
    # Every randomised or dosed subject has the primary endpoint at W4 (observed or imputed).
    primary = adeff[(adeff["PARAMCD"] == "AACRP30") & (adeff["AVISIT"] == "W4")]
    assert set(primary["SUBJID"]) == set(adsl.loc[(adsl["RANDFL"] == "Y") | (adsl["SAFFL"] == "Y"), "SUBJID"])
    # The CHAQ items a site gave as NA are blanks in the form and rows of the reasons dataset.
    reasons = pq.read_table(pooled / "reasons.parquet").to_pandas()
    chaq = pq.read_table(pooled / "chaq.parquet").to_pandas()
    coded = reasons[(reasons["FORM"] == "CHAQ") & (reasons["REASON"] == "NA")]
    assert len(coded) > 0
    cells = chaq.merge(coded, on=["SITEID", "SUBJID", "VISIT"])
    assert all(pd.isna(row[row["VARIABLE"]]) for _, row in cells.iterrows())
