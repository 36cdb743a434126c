"""BPX-201 case report forms: enrolment, vital signs and dosing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pandera.pandas as pa

from trialkit.crf import Char, Date, Int, Num, keys_unique, read_study_definition, var

DEFINITION = read_study_definition(Path(__file__).with_name("study.toml"))
CL = DEFINITION.codelists
SUBJECT_ID = DEFINITION.typed.study.subject_id_pattern


class Record(pa.DataFrameModel):
    SITEID: Char = var("Site", "char", required=True, codelist=CL["SITEID"])
    SUBJID: Char = var("Subject number", "char", required=True, description=DEFINITION.typed.study.subject_id_hint)

    @pa.check("SUBJID", name="subject_id_format")
    def _subjid_format(cls, subjid: pd.Series) -> pd.Series:
        return subjid.str.fullmatch(SUBJECT_ID).fillna(True).astype(bool)

    @pa.dataframe_check(name="unique_keys")
    def _unique_keys(cls, df: pd.DataFrame) -> pd.Series:
        return keys_unique(df, cls.get_metadata()[cls.__name__]["dataframe"]["keys"])

    class Config:
        strict = False
        coerce = False


class ENROL(Record):
    ENRDAT: Date = var("Enrolment date", "date", required=True)
    AGEYRS: Int = var("Age", "int", unit="years", required=True, min=18, max=90)
    SEX: Char = var("Sex", "char", required=True, codelist=CL["SEX"])
    RANDNO: Char = var("Randomisation number", "char", required=True)

    class Config:
        metadata = {"form": "ENROL", "label": "Enrolment", "structure": "one row per subject",
                    "keys": ["SUBJID"]}


class VITALS(Record):
    VISIT: Char = var("Visit", "char", required=True, codelist=CL["VISIT"])
    VSDATE: Date = var("Measurement date", "date", required=True)
    SYSBP: Num = var("Systolic blood pressure", "num", unit="mmHg", required=True, min=60, max=260, decimals=0)
    DIABP: Num = var("Diastolic blood pressure", "num", unit="mmHg", required=True, min=30, max=160, decimals=0)

    class Config:
        metadata = {"form": "VITALS", "label": "Blood pressure", "structure": "one row per subject and visit",
                    "keys": ["SUBJID", "VISIT"]}


class DOSING(Record):
    DOSESTDT: Date = var("Dosing start", "date", required=True)
    DOSEENDT: Date = var("Dosing end", "date")
    DOSEMG: Num = var("Daily dose", "num", unit="mg", required=True, min=0, max=40, decimals=1)

    class Config:
        metadata = {"form": "DOSING", "label": "Study drug", "structure": "one row per dosing period",
                    "keys": ["SUBJID", "DOSESTDT"]}


FORMS = [ENROL, VITALS, DOSING]
