"""SDTM-shaped uploads: recognised as SDTM domains, read through the study's SDTM map, with lineage."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from click.testing import CliRunner

from tests import sdtm_data
from trialkit.cli import cli
from trialkit.importers.mapping import iso_parts
from trialkit.importers.reader import import_files
from trialkit.importers.sdtm import subject_of
from trialkit.validate import validate


def _run(study, paths, site="01"):
    imported = import_files(paths, study, site=site)
    return imported, validate(study, imported, site=site)


def _codes(report, severity=None):
    return [f.code for f in report.findings if severity is None or f.severity.value == severity]


def test_correct_sdtm_set_maps_to_forms_with_no_error(tmp_path, study):
    imported, report = _run(study, sdtm_data.write_sdtm(tmp_path))
    assert _codes(report, "error") == []
    assert not [f for f in report.findings if f.category.value == "structure" and f.severity.value != "info"]
    assert set(imported.forms) == {"DM", "AE", "VS", "LB"}
    announced = sorted(f.message.split(": ", 1)[1] for f in report.findings if f.code == "MAP-SDTM")
    assert "SDTM domain VS (24 records), read as form VS through mapping sdtm_vs" in announced
    assert any(m.startswith("SDTM SUPPAE (4 records): the qualifiers AEAWDAT, AERPTDAT, AESI") for m in announced)

    dm = imported.forms["DM"].data
    assert list(dm["SUBJID"]) == ["01-001", "01-002"]
    assert list(dm["ICDAT"]) == [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-03")]
    assert list(dm["BRTHYM"]) == ["2012-05", "2010-11"]

    ae = imported.forms["AE"].data
    assert list(ae["SITEID"]) == ["01", "01"] and list(ae["SUBJID"]) == ["01-001", "01-002"]  # from DM / USUBJID
    assert list(ae["AEOUT"]) == ["RECOVERED", "NOT RECOVERED"]
    assert list(ae["AEONGO"]) == ["N", "Y"]
    assert list(ae["AESI"]) == ["NONE", "SERIOUS INFECTION"]  # SUPPAE, matched by AESEQ
    assert ae["AERPTDAT"].iloc[1] == pd.Timestamp("2024-02-04") and pd.isna(ae["AERPTDAT"].iloc[0])
    assert list(ae["AETOXGR"]) == [1, 3]

    vs = imported.forms["VS"]  # long (one row per test) to wide (one row per visit)
    assert len(vs) == 4
    assert list(vs.data["VISIT"]) == ["SCR", "W4", "SCR", "W4"]
    assert list(vs.data["WEIGHT"]) == [30.5] * 4 and list(vs.data["WEIGHTU"]) == ["kg"] * 4
    assert list(vs.data["HR"]) == [88] * 4 and list(vs.data["TEMPU"]) == ["C"] * 4
    assert list(vs.data["VSDAT"]) == [pd.Timestamp("2024-01-05"), pd.Timestamp("2024-02-08")] * 2
    assert list(vs.lineage["ROW"]) == [1, 7, 13, 19]  # each record's first row in the long file

    lb = imported.forms["LB"].data
    assert list(lb["LBTESTCD"]) == ["CRP", "ANC", "HGB", "ALT"]
    assert lb["LBSTAT"].iloc[2] == "ND" and pd.isna(lb["LBORRES"].iloc[2])
    assert lb["LBORRES"].iloc[3] == 5 and lb["LBCENS"].iloc[3] == "<"
    assert list(lb["LBDAT"].dt.date) == [dt.date(2024, 1, 5)] * 4


def test_the_raw_frame_keeps_the_sites_own_text_and_the_changes_are_logged(tmp_path, study):
    imported, _ = _run(study, sdtm_data.write_sdtm(tmp_path))
    ae = imported.forms["AE"]
    assert list(ae.raw["AEOUT"]) == ["RECOVERED/RESOLVED", "NOT RECOVERED/NOT RESOLVED"]
    assert ae.raw["AESTDAT"].iloc[1] == "2024-02-03T10:00"
    log = ae.changes
    recoded = log[(log["variable"] == "AEOUT") & (log["rule"] == "map:recode")]
    assert list(recoded["original"]) == ["RECOVERED/RESOLVED", "NOT RECOVERED/NOT RESOLVED"]
    assert list(recoded["value"]) == ["RECOVERED", "NOT RECOVERED"]


def test_a_value_finding_points_at_the_row_and_column_of_the_long_file(tmp_path, study):
    frame = sdtm_data.vs()
    frame.loc[(frame["USUBJID"] == sdtm_data.usubjid("01-002")) & (frame["VISIT"] == "WEEK 4")
              & (frame["VSTESTCD"] == "HEIGHT"), "VSORRES"] = "300"
    paths = sdtm_data.write_sdtm(tmp_path, {"dm": sdtm_data.dm(), "vs": frame})
    _, report = _run(study, paths)
    (error,) = [f for f in report.findings if f.severity.value == "error"]
    assert (error.code, error.variable, error.subject) == ("RANGE", "HEIGHT", "01-002")
    assert error.row == 20  # the HEIGHT row of 01-002 at WEEK 4 (records 19-24), not the record's first row
    assert error.evidence["source"]["column"] == "VSORRES where VSTESTCD = HEIGHT"
    assert "the site's column VSORRES where VSTESTCD = HEIGHT" in error.message


def test_a_supp_value_finding_points_at_the_supp_file(tmp_path, study):
    supp = sdtm_data.suppae()
    supp.loc[3, "QVAL"] = "ALIEN ABDUCTION"
    paths = sdtm_data.write_sdtm(tmp_path, {"dm": sdtm_data.dm(), "ae": sdtm_data.ae(), "suppae": supp})
    _, report = _run(study, paths)
    (error,) = [f for f in report.findings if f.severity.value == "error"]
    assert (error.code, error.variable, error.value) == ("CODELIST", "AESI", "ALIEN ABDUCTION")
    assert error.file.endswith("suppae.xpt") and error.row == 4
    assert "QVAL (QNAM = AESI) of SUPPAE" in error.message


def test_another_studys_export_is_one_finding_not_thousands(tmp_path, study):
    frame = sdtm_data.ae()
    frame["STUDYID"] = "CDISCPILOT01"
    imported, report = _run(study, sdtm_data.write_sdtm(tmp_path, {"ae": frame}))
    assert _codes(report, "error") == ["MAP-SDTM-STUDY"]
    assert imported.forms == {}
    assert imported.files[0]["tables"][0]["role"] == "SDTM domain AE of study CDISCPILOT01"


def test_an_unmapped_column_is_one_finding_per_column(tmp_path, study):
    frame = sdtm_data.vs()
    frame["VSNOTE"] = "checked"
    _, report = _run(study, sdtm_data.write_sdtm(tmp_path, {"dm": sdtm_data.dm(), "vs": frame}))
    unmapped = [f for f in report.findings if f.code == "MAP-COLUMN-UNMAPPED"]
    assert [(f.value, f.evidence["values"], f.severity.value) for f in unmapped] == [("VSNOTE", 24, "warning")]


def test_unknown_test_duplicates_and_conflicts_are_one_finding_each(tmp_path, study):
    frame = sdtm_data.vs()
    extra = frame[frame["VSTESTCD"] == "WEIGHT"].assign(VSTESTCD="BMI", VSORRES="15.6", VSORRESU="kg/m2")
    again = frame[frame["VSTESTCD"] == "TEMP"].assign(VSORRES="37.9")
    frame = pd.concat([frame, extra, again], ignore_index=True)
    frame.loc[frame["VSTESTCD"] == "HEIGHT", "VSDTC"] = "2023-12-01"  # another day than the other tests
    _, report = _run(study, sdtm_data.write_sdtm(tmp_path, {"dm": sdtm_data.dm(), "vs": frame}))
    by_code = {f.code: f for f in report.findings if f.code.startswith("MAP-PIVOT")}
    assert set(by_code) == {"MAP-PIVOT-TEST", "MAP-PIVOT-DUPLICATE", "MAP-PIVOT-CONFLICT"}
    assert by_code["MAP-PIVOT-TEST"].value == "BMI" and by_code["MAP-PIVOT-TEST"].evidence["values"] == 4
    assert by_code["MAP-PIVOT-DUPLICATE"].variable == "TEMP" and by_code["MAP-PIVOT-DUPLICATE"].evidence["records"] == 4
    assert by_code["MAP-PIVOT-CONFLICT"].variable == "VSDAT" and by_code["MAP-PIVOT-CONFLICT"].evidence["records"] == 4
    assert len([f for f in report.findings if f.code.startswith("MAP-PIVOT")]) == 3


def test_a_full_birth_date_in_brthdtc_is_refused_and_year_month_is_not(tmp_path, study):
    frame = sdtm_data.dm()
    _, clean = _run(study, sdtm_data.write_sdtm(tmp_path, {"dm": frame}))
    assert not [f for f in clean.findings if f.category.value == "privacy"]
    frame["BRTHDTC"] = ["2012-05-17", "2010-11"]
    (tmp_path / "full").mkdir()
    _, refused = _run(study, sdtm_data.write_sdtm(tmp_path / "full", {"dm": frame}))
    privacy = [f for f in refused.findings if f.category.value == "privacy"]
    assert [(f.code, f.variable, f.value, f.row) for f in privacy] == [("PRIVACY-BIRTH-DATE", "BRTHYM", "2012-05-**", 1)]
    assert "2012-05-17" not in refused.to_json()
    assert "the site's column BRTHDTC" in privacy[0].message


def test_a_domain_the_study_does_not_map_and_a_supp_without_parent(tmp_path, study):
    sc = pd.DataFrame({"STUDYID": [sdtm_data.STUDY], "DOMAIN": ["SC"], "USUBJID": [sdtm_data.usubjid("01-001")],
                       "SCTESTCD": ["EDULEVEL"], "SCORRES": ["PRIMARY"]})
    imported, report = _run(study, sdtm_data.write_sdtm(tmp_path, {"sc": sc, "suppae": sdtm_data.suppae()}))
    codes = _codes(report)
    assert "MAP-SDTM-DOMAIN" in codes and "MAP-SUPP-UNMATCHED" in codes
    assert imported.forms == {}


def test_supp_records_without_a_parent_record_are_counted(tmp_path, study):
    supp = sdtm_data.suppae()
    supp.loc[0, "IDVARVAL"] = "9"  # no AESEQ 9
    _, report = _run(study, sdtm_data.write_sdtm(tmp_path, {"dm": sdtm_data.dm(), "ae": sdtm_data.ae(), "suppae": supp}))
    (lost,) = [f for f in report.findings if f.code == "MAP-SUPP-UNMATCHED"]
    assert (lost.value, lost.evidence["records"], lost.row) == ("AESI", 1, 1)


def test_sdtm_as_csv_reads_the_same(tmp_path, study):
    imported, report = _run(study, sdtm_data.write_sdtm(tmp_path, fmt="csv"))
    assert _codes(report, "error") == []
    assert len(imported.forms["VS"]) == 4


def test_iso_dates_and_subject_numbers():
    assert iso_parts("2003-12-15T13:14:17") == ("2003-12-15", "13:14:17")
    assert iso_parts("2003---15") == ("2003", "")
    assert iso_parts("2003") == ("2003", "") and iso_parts("--12-15") is None and iso_parts("15.12.2003") is None
    assert subject_of("ANK-SJIA-01-03-012", "ANK-SJIA-01", r"^(?P<site>\d{2})-\d{3}$") == "03-012"
    assert subject_of("ANK-SJIA-01-701-03-012", "ANK-SJIA-01", r"^(?P<site>\d{2})-\d{3}$") == "03-012"


def test_inspect_names_the_sdtm_domain(tmp_path, study):
    paths = sdtm_data.write_sdtm(tmp_path, {"vs": sdtm_data.vs()})
    result = CliRunner().invoke(cli, ["inspect", str(paths[0])])
    assert result.exit_code == 0, result.output
    assert "[SDTM domain VS]" in result.output and "→ form VS" in result.output


def test_sdtm_submission_is_accepted_and_pools_from_the_archive(tmp_path, study):
    from trialkit.ledger import init_workspace
    from trialkit.records import submission_records

    ws = init_workspace(tmp_path / "ws")
    paths = sdtm_data.write_sdtm(tmp_path)
    imported, report = _run(study, paths)
    submission = ws.submit(paths, "01", report, records=submission_records(imported.forms, study),
                           accept_warnings=True, study=study)
    assert submission.status in ("accepted", "accepted-with-warnings")
    again = ws.reimport(submission.id, study)
    for code in ("DM", "AE", "VS", "LB"):
        assert again.forms[code].data.equals(imported.forms[code].data), code


@pytest.mark.parametrize("name", ["cdisc-pilot__sdtm__dm.xpt", "phuse-scripts__TDF_SDTM_v1.0__suppds.xpt",
                                  "phuse-scripts__FDA__dm.sas7bdat"])
def test_real_sdtm_exports_of_other_studies_are_named_as_such(corpus, study, name):
    imported, report = _run(study, [corpus / name], site=None)
    refused = [f for f in report.findings if f.code == "MAP-SDTM-STUDY"]
    assert len(refused) == 1 and imported.forms == {}
    assert "not ANK-SJIA-01" in refused[0].message
    assert len([f for f in report.findings if f.severity.value == "error" and f.category.value != "privacy"]) == 1


def test_an_identifier_in_a_supp_qualifier_is_refused(tmp_path, study):
    supp = sdtm_data.suppdm()
    supp.loc[0, ["QNAM", "QLABEL", "QVAL"]] = ["INITIALS", "Patient initials", "J.S."]
    _, report = _run(study, sdtm_data.write_sdtm(tmp_path, {"dm": sdtm_data.dm(), "suppdm": supp}))
    privacy = [f for f in report.findings if f.category.value == "privacy"]
    assert [(f.code, f.variable) for f in privacy] == [("PRIVACY-COLUMN", "INITIALS")]


# ------------------------------------------------------------------------------------------------
# ADaM analysis datasets sent as an upload


def _adam_files(tmp_path):
    import pyreadstat

    adsl = pd.DataFrame({"STUDYID": ["X"], "USUBJID": ["X-01-001"], "SUBJID": ["01-001"], "TRT01P": ["Placebo"],
                         "SAFFL": ["Y"], "AGE": [12.0]})
    adtte = pd.DataFrame({"STUDYID": ["X"], "USUBJID": ["X-01-001"], "PARAMCD": ["TTFLARE"], "AVAL": [30.0],
                          "CNSR": [1.0]})
    pyreadstat.write_xport(adsl, str(tmp_path / "adsl.xpt"), table_name="ADSL", file_format_version=5)
    pyreadstat.write_xport(adtte, str(tmp_path / "adtte.xpt"), table_name="ADTTE", file_format_version=5)
    return [tmp_path / "adsl.xpt", tmp_path / "adtte.xpt"]


def test_adam_datasets_sent_as_an_upload_are_named_as_such(tmp_path, study):
    _, report = _run(study, _adam_files(tmp_path))
    unmatched = [f for f in report.findings if f.code == "IMP-NO-FORM"]
    assert sorted((f.evidence or {}).get("adam", [])[0] for f in unmatched) == ["PARAMCD", "TRT01P"]
    assert all("looks like a CDISC ADaM analysis dataset" in f.message and "pass --form" not in f.message
               for f in unmatched)
    (no_form,) = [f for f in report.findings if f.code == "NO-FORM"]
    assert "ADaM analysis datasets" in no_form.message and "send the site's CRF data" in no_form.message
    assert "pass --form" not in no_form.message


def test_a_dataset_that_is_no_form_and_no_adam_keeps_the_form_name_advice(tmp_path, study):
    import pyreadstat

    frame = pd.DataFrame({"USUBJID": ["X-01-001"], "AVAL": [1.0], "WEIGHT": [30.0]})  # one ADaM-like name only
    pyreadstat.write_xport(frame, str(tmp_path / "misc.xpt"), table_name="MISC", file_format_version=5)
    _, report = _run(study, [tmp_path / "misc.xpt"])
    (unmatched,) = [f for f in report.findings if f.code == "IMP-NO-FORM"]
    assert "matches no form" in unmatched.message and "pass --form" in unmatched.message
    assert not (unmatched.evidence or {}).get("adam")
    (no_form,) = [f for f in report.findings if f.code == "NO-FORM"]
    assert "pass --form CODE" in no_form.message
