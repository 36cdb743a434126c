"""Exports keep labels, value labels, types and dates; XPT v5 limits are checked; sets are atomic."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pyreadstat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trialkit import export
from trialkit.errors import TrialkitError
from trialkit.export import (
    ExportError,
    make_dataset,
    neutralise_formula,
    write_codebook,
    write_dataset,
    write_output_set,
)

LABELS = {
    "USUBJID": "Unique subject identifier",
    "AGE": "Age (years)",
    "WEIGHT": "Weight (kg)",
    "RANDDT": "Date of randomisation",
    "VISITDTM": "Date/time of visit",
    "SEX": "Sex",
    "COMMENT": "Investigator comment",
}
VALUE_LABELS = {"SEX": {"M": "Male", "F": "Female"}}
ALL_FORMATS = ["parquet", "csv", "xpt", "sav", "dta"]


def adsl() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "USUBJID": ["01-001", "01-002", "02-001"],
            "AGE": pd.array([7, None, 12], dtype="Int64"),
            "WEIGHT": [21.5, -1.5, np.nan],
            "RANDDT": pd.to_datetime(["2024-01-15", "2024-02-29", None]),
            "VISITDTM": pd.to_datetime(["2024-01-15 09:30:00", None, "2024-03-01 14:05:10"]),
            "SEX": ["M", "F", "M"],
            "COMMENT": ['=HYPERLINK("x")', "-3 mg given", "fine"],
        }
    )


def test_neutralise_formula_prefixes_only_formula_starts() -> None:
    assert neutralise_formula("=1+1") == "'=1+1"
    assert neutralise_formula("+1") == "'+1"
    assert neutralise_formula("-1") == "'-1"
    assert neutralise_formula("@SUM(A1)") == "'@SUM(A1)"
    assert neutralise_formula("\tx") == "'\tx"
    assert neutralise_formula("\rx") == "'\rx"
    assert neutralise_formula("a=b") == "a=b"
    assert neutralise_formula("") == ""


def test_types_inferred_dates_at_midnight_are_dates() -> None:
    ds = make_dataset(adsl(), LABELS, VALUE_LABELS)
    assert ds.types == {
        "USUBJID": "string",
        "AGE": "integer",
        "WEIGHT": "float",
        "RANDDT": "date",
        "VISITDTM": "datetime",
        "SEX": "string",
        "COMMENT": "string",
    }


def test_labels_taken_from_attrs(tmp_path: Path) -> None:
    frame = adsl()
    frame.attrs["labels"] = LABELS
    frame.attrs["value_labels"] = VALUE_LABELS
    write_dataset(frame, tmp_path, "adsl", ["sav"])
    _, meta = pyreadstat.read_sav(tmp_path / "adsl.sav")
    assert meta.column_names_to_labels == LABELS
    assert meta.variable_value_labels == VALUE_LABELS


@pytest.fixture()
def written(tmp_path: Path) -> dict[str, Path]:
    return write_dataset(
        adsl(),
        tmp_path,
        "adsl",
        ALL_FORMATS,
        labels=LABELS,
        value_labels=VALUE_LABELS,
        dataset_label="Subject level",
    )


def _expected_dates() -> list:
    return [dt.date(2024, 1, 15), dt.date(2024, 2, 29), None]


def _check_common(frame: pd.DataFrame) -> None:
    assert frame["USUBJID"].tolist() == ["01-001", "01-002", "02-001"]
    assert (
        frame["AGE"].tolist()[0] == 7
        and np.isnan(frame["AGE"].tolist()[1])
        and frame["AGE"].tolist()[2] == 12
    )
    assert frame["WEIGHT"].tolist()[:2] == [21.5, -1.5] and np.isnan(frame["WEIGHT"].tolist()[2])
    dates = [None if pd.isna(v) else v for v in frame["RANDDT"]]
    assert dates == _expected_dates()
    assert all(type(v) is dt.date for v in dates if v is not None)
    stamps = frame["VISITDTM"].tolist()
    assert stamps[0] == pd.Timestamp("2024-01-15 09:30:00") and pd.isna(stamps[1])
    assert stamps[2] == pd.Timestamp("2024-03-01 14:05:10")
    assert frame["SEX"].tolist() == ["M", "F", "M"]
    assert frame["COMMENT"].tolist() == ['=HYPERLINK("x")', "-3 mg given", "fine"]


def test_xpt_round_trip(written: dict[str, Path]) -> None:
    frame, meta = pyreadstat.read_xport(written["xpt"])
    _check_common(frame)
    assert meta.column_names_to_labels == LABELS
    assert meta.table_name == "ADSL"
    assert meta.file_label == "Subject level"
    assert meta.original_variable_types["RANDDT"] == "DATE9"
    assert meta.original_variable_types["VISITDTM"] == "DATETIME20"
    assert written["xpt"].read_bytes()[:80].startswith(b"HEADER RECORD*******LIBRARY HEADER RECORD")
    assert b"01JAN00:00:00:00" in written["xpt"].read_bytes()[:500]


def test_sav_round_trip(written: dict[str, Path]) -> None:
    frame, meta = pyreadstat.read_sav(written["sav"])
    _check_common(frame)
    assert meta.column_names_to_labels == LABELS
    assert meta.variable_value_labels == {"SEX": {"M": "Male", "F": "Female"}}
    assert meta.original_variable_types["RANDDT"].startswith("DATE")


def test_dta_round_trip_with_numeric_twin(written: dict[str, Path]) -> None:
    frame, meta = pyreadstat.read_dta(written["dta"])
    _check_common(frame)
    assert list(frame.columns) == [
        "USUBJID",
        "AGE",
        "WEIGHT",
        "RANDDT",
        "VISITDTM",
        "SEX",
        "SEXN",
        "COMMENT",
    ]
    assert frame["SEXN"].tolist() == [1.0, 2.0, 1.0]
    assert meta.variable_value_labels == {"SEXN": {1: "Male", 2: "Female"}}
    assert meta.column_names_to_labels == {**LABELS, "SEXN": "Sex (N)"}
    assert meta.original_variable_types["RANDDT"] == "%td"
    assert meta.original_variable_types["VISITDTM"] == "%tc"


def test_parquet_round_trip(written: dict[str, Path]) -> None:
    table = pq.read_table(written["parquet"])
    assert str(table.schema.field("RANDDT").type) == "date32[day]"
    assert str(table.schema.field("VISITDTM").type) == "timestamp[us]"
    assert str(table.schema.field("AGE").type) == "int64"
    for col, label in LABELS.items():
        assert table.schema.field(col).metadata == {b"label": label.encode()}
    meta = json.loads(table.schema.metadata[b"trialkit"])
    assert meta["label"] == "Subject level"
    sex = next(c for c in meta["columns"] if c["name"] == "SEX")
    assert sex == {
        "name": "SEX",
        "label": "Sex",
        "type": "string",
        "value_labels": [["M", "Male"], ["F", "Female"]],
    }
    frame = table.to_pandas()
    expected = adsl()
    expected["RANDDT"] = pd.Series(_expected_dates(), dtype=object)
    expected["VISITDTM"] = expected["VISITDTM"].astype("datetime64[us]")
    frame["USUBJID"] = frame["USUBJID"].astype(object)
    assert frame["RANDDT"].tolist() == _expected_dates()
    pd.testing.assert_frame_equal(
        frame.drop(columns="RANDDT"), expected.drop(columns="RANDDT"), check_dtype=False
    )
    assert frame["AGE"].dtype == "Int64"


def test_parquet_rewrite_is_byte_identical(tmp_path: Path) -> None:
    a = write_dataset(adsl(), tmp_path / "a", "adsl", ["parquet"], labels=LABELS)["parquet"]
    b = write_dataset(adsl(), tmp_path / "b", "adsl", ["parquet"], labels=LABELS)["parquet"]
    assert a.read_bytes() == b.read_bytes()


def test_csv_neutralised_iso_dates_and_codebook(written: dict[str, Path]) -> None:
    with open(written["csv"], newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == list(LABELS)
    assert rows[1] == [
        "01-001",
        "7",
        "21.5",
        "2024-01-15",
        "2024-01-15T09:30:00",
        "M",
        '\'=HYPERLINK("x")',
    ]
    assert rows[2] == ["01-002", "", "-1.5", "2024-02-29", "", "F", "'-3 mg given"]
    assert rows[3] == ["02-001", "12", "", "", "2024-03-01T14:05:10", "M", "fine"]
    assert written["csv_codebook"].name == "adsl.codebook.csv"
    with open(written["csv_codebook"], newline="", encoding="utf-8") as handle:
        book = list(csv.DictReader(handle))
    assert [r["column"] for r in book] == list(LABELS)
    assert [r["label"] for r in book] == list(LABELS.values())
    assert book[3]["type"] == "date"
    assert json.loads(book[5]["value_labels"]) == {"M": "Male", "F": "Female"}


def _violation(frame: pd.DataFrame, labels: dict[str, str], name: str = "dm") -> str:
    with pytest.raises(ExportError) as caught:
        write_dataset(frame, "/nonexistent/never-written", name, ["xpt"], labels=labels)
    return str(caught.value)


def test_xpt_name_longer_than_8_raises() -> None:
    message = _violation(pd.DataFrame({"LONGNAME9": ["a"]}), {"LONGNAME9": "x"})
    assert "'LONGNAME9'" in message and "1-8 characters" in message


def test_xpt_lower_case_name_raises() -> None:
    assert "'age'" in _violation(pd.DataFrame({"age": [1]}), {"age": "Age"})


def test_xpt_label_41_bytes_raises() -> None:
    message = _violation(pd.DataFrame({"AGE": [1]}), {"AGE": "x" * 41})
    assert "'AGE'" in message and "41 bytes" in message


def test_xpt_label_40_chars_but_41_bytes_raises() -> None:
    label = "Poids mesuré" + "x" * 28
    assert len(label) == 40
    message = _violation(pd.DataFrame({"WEIGHT": [1.0]}), {"WEIGHT": label})
    assert "'WEIGHT'" in message and "40 characters, 41 bytes" in message


def test_xpt_label_40_ascii_chars_is_accepted(tmp_path: Path) -> None:
    path = write_dataset(
        pd.DataFrame({"AGE": [1]}), tmp_path, "dm", ["xpt"], labels={"AGE": "y" * 40}
    )["xpt"]
    assert pyreadstat.read_xport(path)[1].column_names_to_labels == {"AGE": "y" * 40}


def test_xpt_value_201_bytes_raises() -> None:
    message = _violation(pd.DataFrame({"TERM": ["ok", "z" * 201]}), {"TERM": "Term"})
    assert "'TERM'" in message and "201 bytes" in message and "row 2" in message


def test_xpt_value_200_bytes_non_ascii_over_limit_raises() -> None:
    message = _violation(pd.DataFrame({"TERM": ["é" * 100 + "a"]}), {"TERM": "Term"})
    assert "'TERM'" in message and "201 bytes" in message


def test_xpt_non_ascii_refused_when_ascii_only() -> None:
    with pytest.raises(ExportError, match="'TERM': non-ASCII text"):
        write_dataset(
            pd.DataFrame({"TERM": ["café"]}), "/nonexistent", "dm", ["xpt"], xpt_ascii_only=True
        )


@pytest.mark.parametrize("fmt", ["csv", "parquet", "datasetjson", "dta"])
def test_an_infinite_number_is_refused_in_every_format(tmp_path: Path, fmt: str) -> None:
    """CSV and Dataset-JSON would write ±inf as a blank and Stata refuses it: never silently."""
    frame = pd.DataFrame({"SUBJID": ["01-001", "01-002", "01-003"], "PCHG": [12.5, float("inf"), -float("inf")]})
    with pytest.raises(ExportError, match=r"'PCHG': infinite values \(rows 2, 3\); no output format holds"):
        write_dataset(frame, tmp_path / "out", "adeff", [fmt])
    assert not (tmp_path / "out").exists()
    finite = frame.assign(PCHG=[12.5, None, -3.0])
    write_dataset(finite, tmp_path / "ok", "adeff", [fmt])
    assert (tmp_path / "ok").is_dir()


def test_xpt_every_violation_listed_and_nothing_written(tmp_path: Path) -> None:
    frame = pd.DataFrame({"LONGNAME9": ["a"], "AGE": [1], "TERM": ["z" * 201]})
    with pytest.raises(ExportError) as caught:
        write_dataset(frame, tmp_path, "dm", ["csv", "xpt"], labels={"AGE": "x" * 41})
    message = str(caught.value)
    assert "'LONGNAME9'" in message and "'AGE'" in message and "'TERM'" in message
    assert "3 problem(s)" in message
    assert isinstance(caught.value, TrialkitError)
    assert list(tmp_path.iterdir()) == []


def test_dataset_name_too_long_for_xpt_raises() -> None:
    assert "dataset name 'adverse_events'" in _violation(
        pd.DataFrame({"A": [1]}), {}, name="adverse_events"
    )


def test_stata_label_over_80_chars_raises(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="'AGE': label is 81 characters; Stata allows 80"):
        write_dataset(pd.DataFrame({"AGE": [1]}), tmp_path, "dm", ["dta"], labels={"AGE": "a" * 81})


def test_stata_fractional_value_label_code_raises(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="whole-number codes"):
        write_dataset(
            pd.DataFrame({"DOSE": [0.5]}),
            tmp_path,
            "dm",
            ["dta"],
            value_labels={"DOSE": {0.5: "half"}},
        )


def test_numeric_value_labels_in_sav_and_dta(tmp_path: Path) -> None:
    frame = pd.DataFrame({"AEYN": pd.array([1, 0, None], dtype="Int64")})
    paths = write_dataset(
        frame,
        tmp_path,
        "ae",
        ["sav", "dta"],
        labels={"AEYN": "Any AE"},
        value_labels={"AEYN": {1: "Yes", 0: "No"}},
    )
    assert pyreadstat.read_sav(paths["sav"])[1].variable_value_labels == {
        "AEYN": {1.0: "Yes", 0.0: "No"}
    }
    assert pyreadstat.read_dta(paths["dta"])[1].variable_value_labels == {
        "AEYN": {0: "No", 1: "Yes"}
    }


def test_unknown_format_raises(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="Unknown export format"):
        write_dataset(adsl(), tmp_path, "adsl", ["xlsx"])


def test_codebook_xlsx_and_md(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    write_codebook(
        {"adsl": (adsl(), LABELS, VALUE_LABELS)}, tmp_path / "cb.xlsx", tmp_path / "cb.md"
    )
    book = load_workbook(tmp_path / "cb.xlsx")
    variables = list(book["Variables"].values)
    assert variables[0] == ("dataset", "column", "label", "type", "origin", "derivation")
    assert ("adsl", "RANDDT", "Date of randomisation", "date", None, None) in variables
    assert list(book["Value labels"].values)[1:] == [
        ("adsl", "SEX", "M", "Male"),
        ("adsl", "SEX", "F", "Female"),
    ]
    text = (tmp_path / "cb.md").read_text(encoding="utf-8")
    assert "| SEX | Sex | string | `M` = Male; `F` = Female |" in text


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _set() -> dict:
    ae = pd.DataFrame(
        {"USUBJID": ["01-001"], "AETERM": ["Headache"], "AESTDT": pd.to_datetime(["2024-02-01"])}
    )
    return {
        "adsl": (adsl(), LABELS, VALUE_LABELS, "Subject level"),
        "adae": (ae, {"USUBJID": "Subject", "AETERM": "Reported term", "AESTDT": "Start date"}, {}),
    }


def test_output_set_twice_is_byte_identical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = write_output_set(_set(), tmp_path / "a", ALL_FORMATS)
    hashes_a = {p.name: _sha(p) for p in (tmp_path / "a").iterdir()}
    # A later wall clock must not change a byte of the codebook: openpyxl stamps "now" into its
    # document properties and zipfile into every entry. (pyreadstat's C clock cannot be moved from
    # Python: test_only_documented_timestamp_bytes_are_rewritten covers it.)
    import time

    import openpyxl.writer.excel

    class LaterDatetime(dt.datetime):
        @classmethod
        def now(cls, tz=None):  # noqa: ANN001, ANN206 - mirrors datetime.now
            return dt.datetime(2031, 5, 6, 7, 8, 9)

    later = type("LaterModule", (), {"datetime": LaterDatetime, "timezone": dt.timezone})
    monkeypatch.setattr(openpyxl.writer.excel, "datetime", later)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 86_400 * 400)
    second = write_output_set(_set(), tmp_path / "b", ALL_FORMATS)
    hashes_b = {p.name: _sha(p) for p in (tmp_path / "b").iterdir()}
    assert first == second
    assert hashes_a == hashes_b
    assert set(first["files"]) == {
        *(f"{n}.{f}" for n in ("adsl", "adae") for f in ALL_FORMATS),
        "adsl.codebook.csv",
        "adae.codebook.csv",
        "codebook.xlsx",
        "codebook.md",
        ".trialkit-output",  # the marker: trialkit made this folder and may replace it
    }
    for name, entry in first["files"].items():
        assert entry == {"sha256": hashes_a[name], "size": (tmp_path / "a" / name).stat().st_size}
    manifest_text = (tmp_path / "a" / "manifest.json").read_text()
    assert json.loads(manifest_text) == first
    assert "created" not in first
    # and every file still reads after its timestamp was fixed
    for ext, reader in (
        ("xpt", pyreadstat.read_xport),
        ("sav", pyreadstat.read_sav),
        ("dta", pyreadstat.read_dta),
    ):
        assert len(reader(tmp_path / "a" / f"adae.{ext}")[0]) == 1


@pytest.mark.parametrize(
    ("fmt", "fix", "ranges"),
    [
        ("xpt", "_fix_xpt", [(144, 176), (464, 496)]),  # library + member created/modified
        ("sav", "_fix_sav", [(92, 109)]),  # creation date and time
        ("dta", None, None),  # <timestamp> follows the variable-length label: located below
    ],
)
def test_only_documented_timestamp_bytes_are_rewritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, fix: str | None, ranges: list | None
) -> None:
    fixed = write_dataset(
        adsl(),
        tmp_path / "fixed",
        "adsl",
        [fmt],
        labels=LABELS,
        value_labels=VALUE_LABELS,
        dataset_label="Subject level",
    )[fmt].read_bytes()
    for name in ("_fix_xpt", "_fix_sav", "_fix_dta"):
        monkeypatch.setattr(export, name, lambda data, created: None)
    raw = write_dataset(
        adsl(),
        tmp_path / "raw",
        "adsl",
        [fmt],
        labels=LABELS,
        value_labels=VALUE_LABELS,
        dataset_label="Subject level",
    )[fmt].read_bytes()
    assert len(raw) == len(fixed)
    if ranges is None:
        at = raw.index(b"</label><timestamp>") + len(b"</label><timestamp>")
        assert raw[at] == 17
        ranges = [(at + 1, at + 18)]
    changed = [i for i, (a, b) in enumerate(zip(raw, fixed, strict=True)) if a != b]
    assert changed, "pyreadstat's own timestamp should differ from the fixed one"
    assert all(any(lo <= i < hi for lo, hi in ranges) for i in changed)


def test_created_changes_header_timestamps(tmp_path: Path) -> None:
    created = dt.datetime(2025, 3, 7, 8, 9, 10)
    manifest = write_output_set(_set(), tmp_path / "out", ["xpt", "sav", "dta"], created=created)
    assert manifest["created"] == "2025-03-07T08:09:10"
    assert b"07MAR25:08:09:10" in (tmp_path / "out" / "adsl.xpt").read_bytes()[:500]
    assert b"07 Mar 2508:09:10" in (tmp_path / "out" / "adsl.sav").read_bytes()[:200]
    assert b"07 Mar 2025 08:09" in (tmp_path / "out" / "adsl.dta").read_bytes()[:200]


def test_failure_mid_write_leaves_previous_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "pooled"
    write_output_set(_set(), out, ALL_FORMATS)
    before = {p.name: _sha(p) for p in out.iterdir()}
    real = export._write_ds
    calls = []

    def failing(*args, **kwargs):
        calls.append(args[2])
        if len(calls) > 1:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(export, "_write_ds", failing)
    changed = _set()
    changed["adsl"][0].loc[0, "AGE"] = 99
    with pytest.raises(RuntimeError, match="disk full"):
        write_output_set(changed, out, ALL_FORMATS)
    assert calls == ["adsl", "adae"]
    assert {p.name: _sha(p) for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pooled"]


def test_new_set_replaces_old_whole(tmp_path: Path) -> None:
    out = tmp_path / "pooled"
    write_output_set(_set(), out, ALL_FORMATS)
    only_adae = {"adae": _set()["adae"]}
    manifest = write_output_set(only_adae, out, ["csv"])
    assert sorted(p.name for p in out.iterdir()) == sorted([*manifest["files"], "manifest.json"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pooled"]


def test_interrupted_between_renames_is_recovered(tmp_path: Path) -> None:
    out = tmp_path / "pooled"
    write_output_set(_set(), out, ["csv"])
    out.rename(tmp_path / "pooled.old-deadbeef")
    write_output_set(_set(), out, ["csv"])
    assert (out / "manifest.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pooled"]


def _haven_available() -> bool:
    if not shutil.which("Rscript"):
        return False
    probe = subprocess.run(["Rscript", "-e", "library(haven)"], capture_output=True, timeout=120)
    return probe.returncode == 0


@pytest.mark.skipif(
    not _haven_available(), reason="R with haven not installed; .ci/run installs r-cran-haven"
)
def test_haven_reads_xpt_sav_dta(written: dict[str, Path]) -> None:
    script = r"""
    library(haven)
    args <- commandArgs(trailingOnly = TRUE)
    show <- function(kind, d) {
      for (v in names(d)) {
        lab <- attr(d[[v]], "label"); if (is.null(lab)) lab <- ""
        cls <- paste(class(d[[v]]), collapse = "/")
        vl <- attr(d[[v]], "labels")
        vls <- if (is.null(vl)) "" else paste(paste0(vl, "=", names(vl)), collapse = ";")
        first <- as.character(d[[v]][1])
        cat(kind, v, lab, cls, vls, first, sep = "\t"); cat("\n")
      }
    }
    show("xpt", read_xpt(args[1]))
    show("sav", read_sav(args[2]))
    show("dta", read_dta(args[3]))
    """
    result = subprocess.run(
        ["Rscript", "-e", script, str(written["xpt"]), str(written["sav"]), str(written["dta"])],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = {(r[0], r[1]): r[2:] for r in (line.split("\t") for line in result.stdout.splitlines())}
    for kind in ("xpt", "sav", "dta"):
        for col, label in LABELS.items():
            assert rows[(kind, col)][0] == label, (kind, col)
        assert "Date" in rows[(kind, "RANDDT")][1], kind
        assert rows[(kind, "RANDDT")][3] == "2024-01-15"
        assert "POSIXct" in rows[(kind, "VISITDTM")][1], kind
    assert rows[("sav", "SEX")][2] == "M=Male;F=Female"
    assert rows[("dta", "SEXN")][2] == "1=Male;2=Female"
    assert rows[("dta", "SEXN")][0] == "Sex (N)"


def test_an_all_missing_date_column_stays_a_readable_date_in_every_stat_format(tmp_path):
    frame = pd.DataFrame({"USUBJID": ["S-1", "S-2"], "DSSTDT": pd.Series([pd.NaT, pd.NaT], dtype="datetime64[ns]")})
    written = write_dataset(frame, tmp_path, "adsl", ["xpt", "sav", "dta"],
                            labels={"USUBJID": "Subject", "DSSTDT": "Disposition date"},
                            types={"DSSTDT": "date"})
    for fmt, reader in (("xpt", pyreadstat.read_xport), ("sav", pyreadstat.read_sav), ("dta", pyreadstat.read_dta)):
        back, meta = reader(written[fmt])
        assert back["DSSTDT"].isna().all() and list(back["USUBJID"]) == ["S-1", "S-2"], fmt
        assert meta.column_names_to_labels["DSSTDT"] == "Disposition date", fmt



def every_type_dataset(texts: list[str | None]):
    """A five-row dataset with a column of every export type: missing values, non-finite floats,
    negative zero, an integer beyond 2**53, dates and date-times; ``texts`` fills the text column."""
    from trialkit.export import make_dataset

    frame = pd.DataFrame({
        "TEXT": pd.array(texts, dtype="string"),
        "INT": pd.array([1, None, -7, 2**53 + 1, 0], dtype="Int64"),
        "NUM": [0.1, float("nan"), float("inf"), -0.0, 1e-7],
        "FLAG": pd.array([True, False, None, True, False], dtype="boolean"),
        "DAY": [dt.date(2024, 2, 29), None, dt.date(1900, 1, 1), dt.date(2025, 12, 31), None],
        "STAMP": pd.to_datetime(["2024-01-02 03:04:05", None, "2024-12-31 23:59:59", None, "1999-01-01 00:00:00"]),
    })
    return make_dataset(frame, types={"TEXT": "string", "INT": "integer", "NUM": "float", "FLAG": "boolean",
                                      "DAY": "date", "STAMP": "datetime"})


def test_dataset_json_rows_encode_every_type_exactly_as_json_dumps_of_each_value():
    """The column-by-column encoder writes what ``json.dumps`` writes of each cell's JSON value:
    escapes, non-ASCII text, missing values, non-finite floats, negative zero, large integers, dates."""
    from trialkit.export import _json_texts, _json_value, _typed

    ds = every_type_dataset(['a "quoted" \\ back', "ünïcödé — 漢字", "tab\there\nline", None, "\x01ctl"])
    typed = _typed(ds)
    kinds = list(ds.types.values())
    expected = [json.dumps([_json_value(v, k) for v, k in zip(row, kinds, strict=True)], ensure_ascii=False,
                           separators=(",", ":"), allow_nan=False) for row in typed.itertuples(index=False)]
    assert list(_json_texts(ds, typed)) == expected
    assert list(_json_texts(ds)) == expected  # the writer's own path (its typed columns, cached)
    assert expected[0] == ('["a \\"quoted\\" \\\\ back",1,0.1,true,"2024-02-29","2024-01-02T03:04:05"]')
    assert expected[1] == '["ünïcödé — 漢字",null,null,false,null,null]'
    assert expected[2].split(",")[2] == "null"  # inf is no JSON number
    assert json.loads(expected[3])[1] == 2**53 + 1 and expected[3].split(",")[2] == "-0.0"


def test_csv_columns_write_every_type_exactly_as_each_cell_would():
    from trialkit.export import _csv_cell, _csv_column, _typed

    typed = _typed(ds := every_type_dataset(["=1+1", "plain", None, "-x", "@y"]))
    for col, kind in ds.types.items():
        assert _csv_column(typed[col], kind) == [_csv_cell(v, kind) for v in typed[col]], col
    assert _csv_column(typed["FLAG"], "boolean") == ["true", "false", "", "true", "false"]
    assert _csv_column(typed["DAY"], "date") == ["2024-02-29", "", "1900-01-01", "2025-12-31", ""]
    assert _csv_column(typed["TEXT"], "string")[0] == "'=1+1"


# The writers format each distinct value of a column once and take the texts by row; these laws
# hold them to the per-cell reference (_csv_cell, _json_value) on any column of each type.
_CELLS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_TEXTS = st.lists(st.one_of(st.none(), st.sampled_from(["=1", "+", "-2", "@x", "\t", "\r", "", "a", "é"]),
                            st.text(max_size=6)), max_size=25)
_FLOATS = st.lists(st.one_of(st.none(), st.floats(), st.sampled_from([0.0, -0.0, 1e-7, 1e22, 2.5e-300])),
                   max_size=25)
_INTS = st.lists(st.one_of(st.none(), st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1)), max_size=25)
_STAMPS = st.lists(st.one_of(st.none(), st.datetimes(min_value=dt.datetime(1678, 1, 1),
                                                     max_value=dt.datetime(2261, 12, 31))), max_size=25)


def _assert_cells_match(frame: pd.DataFrame, types: dict[str, str]) -> None:
    from trialkit.export import _csv_cell, _csv_column, _dumps, _json_column, _json_value, _typed

    ds = make_dataset(frame, types=types)
    for arrow in (False, True):  # both representations the writers see
        typed = _typed(ds, arrow=arrow)
        for col, kind in types.items():
            cells = list(_typed(ds)[col])
            assert _csv_column(typed[col], kind) == [_csv_cell(v, kind) for v in cells], (col, arrow)
            assert _json_column(typed[col], kind) == [_dumps(_json_value(v, kind)) for v in cells], (col, arrow)


@_CELLS
@given(texts=_TEXTS)
def test_text_cells_are_each_cells_own_text(texts: list) -> None:
    _assert_cells_match(pd.DataFrame({"ARROW": pd.array(texts, dtype="str"), "PLAIN": pd.Series(texts, dtype=object)}),
                        {"ARROW": "string", "PLAIN": "string"})


@_CELLS
@given(numbers=_FLOATS, integers=_INTS)
def test_number_cells_are_each_cells_own_text(numbers: list, integers: list) -> None:
    _assert_cells_match(pd.DataFrame({"NUM": pd.Series([np.nan if v is None else v for v in numbers],
                                                       dtype="float64")}), {"NUM": "float"})
    _assert_cells_match(pd.DataFrame({"INT": pd.array(integers, dtype="Int64"),
                                      "FLAG": pd.array([None if v is None else v % 2 == 0 for v in integers],
                                                       dtype="boolean")}), {"INT": "integer", "FLAG": "boolean"})


@_CELLS
@given(stamps=_STAMPS)
def test_date_and_datetime_cells_are_each_cells_own_text(stamps: list) -> None:
    times = pd.Series(pd.to_datetime(stamps), dtype="datetime64[ns]")
    days = pd.Series([None if v is None else v.date() for v in stamps], dtype=object)
    _assert_cells_match(pd.DataFrame({"STAMP": times, "DAY": times, "OBJDAY": days}),
                        {"STAMP": "datetime", "DAY": "date", "OBJDAY": "date"})


@pytest.mark.parametrize("fmt", ["csv", "datasetjson", "ndjson"])
def test_text_formats_are_the_same_bytes_whatever_the_chunk_of_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    fmt: str) -> None:
    """CSV and Dataset-JSON are encoded and hashed a chunk of rows at a time: the chunk's size
    changes no byte, and the manifest's sha256 is that of the file on disk."""
    one = write_output_set(_set(), tmp_path / "whole", [fmt])
    monkeypatch.setattr(export, "_CHUNK_ROWS", 2)  # adsl has 3 rows: chunks of 2 and 1
    two = write_output_set(_set(), tmp_path / "chunked", [fmt])
    assert one == two
    for name, entry in two["files"].items():
        assert entry["sha256"] == _sha(tmp_path / "chunked" / name), name
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "chunked" / name).read_bytes()
    if fmt == "datasetjson":
        assert len(json.loads((tmp_path / "chunked" / "adsl.json").read_text(encoding="utf-8"))["rows"]) == 3


@pytest.mark.parametrize("fmt", ["xpt", "sav", "dta"])
def test_dates_handed_to_pyreadstat_as_numbers_are_the_bytes_of_its_own_date_conversion(tmp_path: Path,
                                                                                        fmt: str) -> None:
    """trialkit gives pyreadstat each date as the number pyreadstat itself computes from a
    ``datetime.date`` (days since the format's origin; seconds for SPSS), with the same format:
    the file is byte for byte the one pyreadstat writes from the dates (after the timestamp fix)."""
    days = [dt.date(2024, 2, 29), None, dt.date(1900, 1, 1), dt.date(1960, 1, 1), dt.date(1582, 10, 15)]
    ids = ["a", "b", "c", "d", "e"]
    ours = write_dataset(pd.DataFrame({"ID": ids, "DAY": days}), tmp_path, "adsl", [fmt],
                         types={"DAY": "date"})[fmt].read_bytes()
    own = pd.DataFrame({"ID": pd.Series(ids, dtype=object), "DAY": pd.Series(days, dtype=object)})
    path = str(tmp_path / f"own.{fmt}")
    labels = {"ID": "", "DAY": ""}
    if fmt == "xpt":
        pyreadstat.write_xport(own, path, file_label="", column_labels=labels, table_name="ADSL",
                               file_format_version=5, variable_format={"DAY": "DATE9"})
    elif fmt == "sav":
        pyreadstat.write_sav(own, path, file_label="", column_labels=labels, variable_format={"DAY": "DATE11"})
    else:
        pyreadstat.write_dta(own, path, file_label="", column_labels=labels, version=14)
    data = bytearray(Path(path).read_bytes())
    {"xpt": export._fix_xpt, "sav": export._fix_sav, "dta": export._fix_dta}[fmt](data, export.DEFAULT_CREATED)
    assert bytes(data) == ours
