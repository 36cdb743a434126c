"""A synthetic SDTM export of the bundled study, as a site's system writes it (test helper).

Two subjects of site 01: DM with SUPPDM, AE with SUPPAE (awareness and reporting dates, the event
of special interest), VS one row per test (long), LB. Every value is correct for the study, so the
set maps to the forms with no error. ``write_sdtm`` writes SAS transport v5 files (or CSV).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

STUDY = "ANK-SJIA-01"
SUBJECTS = ("01-001", "01-002")


def usubjid(subject: str) -> str:
    """The USUBJID of a subject number: STUDYID-SUBJID."""
    return f"{STUDY}-{subject}"


def dm() -> pd.DataFrame:
    return pd.DataFrame({
        "STUDYID": [STUDY] * 2, "DOMAIN": ["DM"] * 2, "USUBJID": [usubjid(s) for s in SUBJECTS],
        "SUBJID": list(SUBJECTS), "RFSTDTC": ["2024-01-10", "2024-01-12"],
        "RFICDTC": ["2024-01-02", "2024-01-03T09:30"], "SITEID": ["01", "01"], "BRTHDTC": ["2012-05", "2010-11"],
        "AGE": [11.0, 13.0], "AGEU": ["YEARS"] * 2, "SEX": ["F", "M"], "RACE": ["WHITE", "ASIAN"],
        "ARMCD": ["", ""], "ARM": ["", ""], "COUNTRY": ["ITA"] * 2, "DMDTC": ["2024-01-02", "2024-01-03"],
    })


def suppdm() -> pd.DataFrame:
    return pd.DataFrame({
        "STUDYID": [STUDY], "RDOMAIN": ["DM"], "USUBJID": [usubjid("01-001")], "IDVAR": [""], "IDVARVAL": [""],
        "QNAM": ["RACEOTH"], "QLABEL": ["Race, other"], "QVAL": ["MIXED"], "QORIG": ["CRF"], "QEVAL": [""],
    })


def ae() -> pd.DataFrame:
    flags = {name: ["N", "N"] for name in ("AESDTH", "AESLIFE", "AESDISAB", "AESCONG", "AESMIE")}
    return pd.DataFrame({
        "STUDYID": [STUDY] * 2, "DOMAIN": ["AE"] * 2, "USUBJID": [usubjid(s) for s in SUBJECTS],
        "AESEQ": [1.0, 1.0], "AETERM": ["Headache", "Pneumonia"], "AEDECOD": ["Headache", "Pneumonia"],
        "AEBODSYS": ["Nervous system disorders", "Infections and infestations"],
        "AESTDTC": ["2024-02-01", "2024-02-03T10:00"], "AEENDTC": ["2024-02-03", ""],
        "AEENRTPT": ["", "ONGOING"], "AESER": ["N", "Y"], "AETOXGR": ["1", "3"], "AESHOSP": ["N", "Y"], **flags,
        "AEREL": ["NOT RELATED", "RELATED"], "AEACN": ["DOSE NOT CHANGED", "DRUG INTERRUPTED"],
        "AEOUT": ["RECOVERED/RESOLVED", "NOT RECOVERED/NOT RESOLVED"],
        "AESTDY": [23.0, 23.0],
    })


def suppae() -> pd.DataFrame:
    return pd.DataFrame({
        "STUDYID": [STUDY] * 4, "RDOMAIN": ["AE"] * 4,
        "USUBJID": [usubjid("01-001"), usubjid("01-002"), usubjid("01-002"), usubjid("01-002")],
        "IDVAR": ["AESEQ"] * 4, "IDVARVAL": ["1"] * 4, "QNAM": ["AESI", "AEAWDAT", "AERPTDAT", "AESI"],
        "QLABEL": ["Event of special interest", "Date site aware", "Date reported", "Event of special interest"],
        "QVAL": ["NONE", "2024-02-03", "2024-02-04", "SERIOUS INFECTION"], "QORIG": ["CRF"] * 4, "QEVAL": [""] * 4,
    })


VITALS = (("WEIGHT", "Weight", "30.5", "kg"), ("HEIGHT", "Height", "140", "cm"), ("TEMP", "Temperature", "36.8", "C"),
          ("SYSBP", "Systolic Blood Pressure", "110", "mmHg"), ("DIABP", "Diastolic Blood Pressure", "70", "mmHg"),
          ("PULSE", "Pulse Rate", "88", "beats/min"))


def vs() -> pd.DataFrame:
    """One row per test: 2 subjects x 2 visits x 6 tests; the time of day differs between tests."""
    rows = []
    for subject in SUBJECTS:
        for number, visit, date in ((0.0, "SCREENING", "2024-01-05"), (4.0, "WEEK 4", "2024-02-08")):
            for minute, (code, test, value, unit) in enumerate(VITALS):
                rows.append({"STUDYID": STUDY, "DOMAIN": "VS", "USUBJID": usubjid(subject),
                             "VSSEQ": float(len(rows) + 1), "VSTESTCD": code, "VSTEST": test, "VSORRES": value,
                             "VSORRESU": unit, "VSSTRESC": value, "VSSTAT": "", "VISITNUM": number, "VISIT": visit,
                             "VSDTC": f"{date}T10:{minute:02d}"})
    return pd.DataFrame(rows)


def lb() -> pd.DataFrame:
    return pd.DataFrame({
        "STUDYID": [STUDY] * 4, "DOMAIN": ["LB"] * 4, "USUBJID": [usubjid("01-001")] * 4,
        "LBSEQ": [1.0, 2.0, 3.0, 4.0], "LBTESTCD": ["CRP", "NEUT", "HGB", "ALT"],
        "LBTEST": ["C Reactive Protein", "Neutrophils", "Hemoglobin", "Alanine Aminotransferase"],
        "LBORRES": ["12", "3.1", "", "<5"], "LBORRESU": ["mg/L", "10^9/L", "", "U/L"],
        "LBORNRLO": ["0", "1.5", "", "0"], "LBORNRHI": ["5", "8", "", "40"],
        "LBSTAT": ["", "", "NOT DONE", ""], "VISITNUM": [0.0] * 4, "VISIT": ["SCREENING"] * 4,
        "LBDTC": ["2024-01-05T08:15"] * 4,
    })


DOMAINS = {"dm": dm, "suppdm": suppdm, "ae": ae, "suppae": suppae, "vs": vs, "lb": lb}


def write_sdtm(folder: Path, frames: dict[str, pd.DataFrame] | None = None, *, fmt: str = "xpt") -> list[Path]:
    """Write the datasets (default: the whole correct set) as XPT v5 (or CSV); returns the paths."""
    import pyreadstat

    frames = frames if frames is not None else {name: make() for name, make in DOMAINS.items()}
    paths = []
    for name, frame in frames.items():
        path = folder / f"{name}.{fmt}"
        if fmt == "xpt":
            pyreadstat.write_xport(frame, str(path), table_name=name.upper(), file_format_version=5)
        else:
            frame.to_csv(path, index=False)
        paths.append(path)
    return paths
