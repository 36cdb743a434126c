"""ANK-SJIA-01 case report forms as pandera models (synopsis, "Case report forms").

One ``DataFrameModel`` per form, its fields in CRF order. Every field is made with
:func:`trialkit.crf.var`, which carries the label, type, unit, codelist, range, decimals and
requirement both as pandera checks and as metadata. A form's ``Config.metadata`` names its code,
label, record structure and keys; ``FORMS`` lists the forms in CRF order.

Conditional requirements ("required unless ...") are dataframe checks named ``required:VAR``; key
uniqueness is the dataframe check ``unique_keys``. Cross-form logic, plausibility and protocol
deviations are rules (``checks.py``, ``deviations.py``), not schema checks.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pandera.pandas as pa

from trialkit.crf import (
    YN,
    Char,
    Date,
    Int,
    Num,
    PDate,
    keys_unique,
    read_study_definition,
    require,
    var,
)

DEFINITION = read_study_definition(Path(__file__).with_name("study.toml"))
CL = DEFINITION.codelists  # SITEID and VISIT are generated from the site and visit tables
SUBJECT_ID = DEFINITION.typed.study.subject_id_pattern
SUBJECT_HINT = DEFINITION.typed.study.subject_id_hint

LAB_RANGE_REQUIRED = ["CRP", "ESR", "AST", "ALT"]


class Record(pa.DataFrameModel):
    """Variables every form carries."""

    SITEID: Char = var("Site identifier", "char", required=True, codelist=CL["SITEID"])
    SUBJID: Char = var(
        "Subject identifier (SS-NNN)",
        "char",
        required=True,
        description=f"{SUBJECT_HINT}; the site part equals SITEID.",
    )

    @pa.check("SUBJID", name="subject_id_format")
    def _subjid_format(cls, subjid: pd.Series) -> pd.Series:
        return subjid.str.fullmatch(SUBJECT_ID).fillna(True).astype(bool)

    @pa.dataframe_check(name="unique_keys")
    def _unique_keys(cls, df: pd.DataFrame) -> pd.Series:
        meta = cls.get_metadata()[cls.__name__]["dataframe"]
        return keys_unique(df, meta["keys"], repeatable_visit="UNS")

    class Config:
        strict = False
        coerce = False


class DM(Record):
    """Demographics — one row per subject."""

    ICDAT: Date = var("Informed consent date", "date", required=True)
    BRTHYM: PDate = var(
        "Birth year and month", "pdate", required=True, pdate_formats=("YYYY-MM",), birth=True,
        description="Year and month only (YYYY-MM): a full birth date identifies a person.",
    )
    SEX: Char = var("Sex", "char", required=True, codelist=CL["SEX"])

    class Config:
        metadata = {"form": "DM", "label": "Demographics", "structure": "one row per subject",
                    "keys": ["SUBJID"]}


class MH(Record):
    """sJIA history and ILAR classification — one row per subject."""

    ONSETYM: PDate = var("sJIA onset year and month", "pdate", required=True)
    FEVER2W: YN = var("Quotidian fever >= 2 weeks documented", "yn", required=True)
    ARTHR: YN = var("Arthritis >= 1 joint for >= 6 weeks", "yn", required=True)
    RASH: YN = var("Evanescent rash (ever)", "yn", required=True)
    LYMPH: YN = var("Generalised lymphadenopathy (ever)", "yn", required=True)
    HEPSPL: YN = var("Hepato- or splenomegaly (ever)", "yn", required=True)
    SEROS: YN = var("Serositis (ever)", "yn", required=True)
    EXPSO: YN = var("Psoriasis in patient or first-degree relative", "yn", short_label="Psoriasis in patient or 1st-degree rel.", required=True)
    EXB27: YN = var("HLA-B27-positive male, arthritis after 6th birthday", "yn", short_label="HLA-B27+ male, arthritis after age 6", required=True)
    EXB27FR: YN = var("HLA-B27-associated disease in a first-degree relative", "yn", short_label="HLA-B27 disease in 1st-degree relative", required=True)
    EXRF: YN = var("IgM rheumatoid factor positive twice >= 3 months apart", "yn", short_label="IgM RF positive twice >= 3 months apart", required=True)
    AMYLOID: YN = var("Renal amyloidosis", "yn", required=True)
    MASLDAT: PDate = var("Date of the latest MAS episode", "pdate")

    class Config:
        metadata = {"form": "MH", "label": "sJIA history and ILAR classification",
                    "structure": "one row per subject", "keys": ["SUBJID"]}


class PT(Record):
    """Prior therapy — one row per drug course before day 1."""

    PTTRT: Char = var("Drug", "char", required=True, codelist=CL["PTTRT"])
    PTSTDAT: PDate = var("Start date", "pdate", required=True)
    PTENDAT: PDate = var("Stop date", "pdate", required_if="required unless PTONGO = Y")
    PTONGO: YN = var("Ongoing at day 1", "yn", required=True)
    PTREAS: Char = var("Reason stopped", "char", codelist=CL["PTREAS"],
                       required_if="required when stopped (PTONGO = N)")

    @pa.dataframe_check(name="required:PTENDAT")
    def _ptendat(cls, df: pd.DataFrame) -> pd.Series:
        return require(df, "PTENDAT", df["PTONGO"].ne("Y"))

    @pa.dataframe_check(name="required:PTREAS")
    def _ptreas(cls, df: pd.DataFrame) -> pd.Series:
        return require(df, "PTREAS", df["PTONGO"].eq("N"))

    class Config:
        metadata = {"form": "PT", "label": "Prior therapy",
                    "structure": "one row per drug course before day 1",
                    "keys": ["SUBJID", "PTTRT", "PTSTDAT"]}


class IE(Record):
    """Eligibility — one row per criterion per subject."""

    IETESTCD: Char = var("Eligibility criterion", "char", required=True, codelist=CL["IETESTCD"])
    IEORRES: YN = var("Criterion met / present", "yn", required=True,
                      description="Y = the inclusion criterion is met, or the exclusion criterion is present.")

    class Config:
        metadata = {"form": "IE", "label": "Eligibility", "structure": "one row per criterion per subject",
                    "keys": ["SUBJID", "IETESTCD"]}


class RAND(Record):
    """Randomization — one row per subject."""

    RANDNO: Char = var("Randomization number", "char", required=True, unique=True)
    RANDDAT: Date = var("Randomization date", "date", required=True)
    STRATUM: Char = var("Randomization stratum", "char", required=True, codelist=CL["STRATUM"])
    KITNO: Char = var("Kit number", "char", required=True)

    class Config:
        metadata = {"form": "RAND", "label": "Randomization", "structure": "one row per subject",
                    "keys": ["SUBJID"]}


class VS(Record):
    """Vital signs — one row per subject and visit."""

    VISIT: Char = var("Visit", "char", required=True, codelist=CL["VISIT"])
    VSDAT: Date = var("Visit date", "date", required=True)
    WEIGHT: Num = var("Weight", "num", unit="kg", unit_var="WEIGHTU", min=8, max=200)
    WEIGHTU: Char = var("Weight unit", "char", codelist=CL["WEIGHTU"])
    HEIGHT: Num = var("Height", "num", unit="cm", unit_var="HEIGHTU", min=70, max=210)
    HEIGHTU: Char = var("Height unit", "char", codelist=CL["HEIGHTU"])
    TEMP: Num = var("Body temperature", "num", unit="C", unit_var="TEMPU", min=34.0, max=43.0)
    TEMPU: Char = var("Body temperature unit", "char", codelist=CL["TEMPU"])
    SYSBP: Int = var("Systolic blood pressure", "int", unit="mmHg", min=50, max=220)
    DIABP: Int = var("Diastolic blood pressure", "int", unit="mmHg", min=30, max=140)
    HR: Int = var("Heart rate", "int", unit="/min", min=30, max=220)

    class Config:
        metadata = {"form": "VS", "label": "Vital signs", "structure": "one row per subject and visit",
                    "keys": ["SUBJID", "VISIT"]}


class CORE(Record):
    """Core set and systemic features — one row per subject and assessment visit."""

    VISIT: Char = var("Visit", "char", required=True, codelist=CL["VISIT"])
    CSDAT: Date = var("Assessment date", "date", required=True)
    PHGA: Num = var("Physician global assessment of disease activity (0-10 VAS)", "num", short_label="Physician global assessment (0-10)",
                    min=0, max=10, decimals=1)
    PAGA: Num = var("Parent/patient global assessment of well-being (0-10 VAS)", "num", short_label="Parent/patient global assessment (0-10)",
                    min=0, max=10, decimals=1)
    PTGH: Int = var("Patient global health (0-100 mm; adults, for DAS28)", "int", short_label="Patient global health (0-100 mm)", unit="mm",
                    min=0, max=100, required_if="required for ADULT subjects (a rule checks it)")
    JADONE: YN = var("Joint examination done (abnormal joints recorded in JA)", "yn", short_label="Joint examination done", required=True)
    FEVER: YN = var("Fever at the visit", "yn", required=True)
    RASH: YN = var("Evanescent rash at the visit", "yn", required=True)
    LYMPH: YN = var("Generalised lymphadenopathy at the visit", "yn", required=True)
    HEPSPL: YN = var("Hepato- or splenomegaly at the visit", "yn", required=True)
    SEROS: YN = var("Serositis at the visit", "yn", required=True)

    class Config:
        metadata = {"form": "CORE", "label": "Core set and systemic features",
                    "structure": "one row per subject and assessment visit",
                    "keys": ["SUBJID", "VISIT"]}


class JA(Record):
    """Joint assessment — one row per abnormal joint per visit."""

    VISIT: Char = var("Visit", "char", required=True, codelist=CL["VISIT"])
    JADAT: Date = var("Joint assessment date", "date", required=True)
    JOINT: Char = var("Joint (71-joint count code)", "char", required=True, codelist=CL["JOINT"])
    SWOLLEN: YN = var("Swollen", "yn", required=True)
    TENDER: YN = var("Tender or painful on motion", "yn", required=True)
    LOM: YN = var("Limited range of motion", "yn", required=True)

    class Config:
        metadata = {"form": "JA", "label": "Joint assessment",
                    "structure": "one row per abnormal joint per visit (a joint not listed was normal)",
                    "keys": ["SUBJID", "VISIT", "JOINT"]}


def _chaq_item(label: str, short_label: str | None = None) -> object:
    return var(label, "int", min=0, max=3, short_label=short_label,
               description="0 without difficulty, 1 some, 2 much, 3 unable; NA = not applicable")


class CHAQ(Record):
    """Childhood (or adult) Health Assessment Questionnaire — one row per subject and visit."""

    VISIT: Char = var("Visit", "char", required=True, codelist=CL["VISIT"])
    QSDAT: Date = var("Questionnaire date", "date", required=True)
    QSVER: Char = var("Questionnaire version", "char", required=True, codelist=CL["QSVER"])
    DRESS1: Int = _chaq_item("Dressing: dress yourself, including shoelaces and buttons",
                        "Dressing: dress yourself")
    DRESS2: Int = _chaq_item("Dressing: shampoo your hair")
    DRESS3: Int = _chaq_item("Dressing: remove socks")
    DRESS4: Int = _chaq_item("Dressing: cut fingernails")
    ARISE1: Int = _chaq_item("Arising: stand up from a low chair or floor",
                        "Arising: stand up from low chair/floor")
    ARISE2: Int = _chaq_item("Arising: get in and out of bed or crib")
    EAT1: Int = _chaq_item("Eating: cut your own meat")
    EAT2: Int = _chaq_item("Eating: lift a cup or glass to mouth")
    EAT3: Int = _chaq_item("Eating: open a new cereal box")
    WALK1: Int = _chaq_item("Walking: walk outdoors on flat ground")
    WALK2: Int = _chaq_item("Walking: climb up five steps")
    HYG1: Int = _chaq_item("Hygiene: wash and dry entire body")
    HYG2: Int = _chaq_item("Hygiene: take a tub bath")
    HYG3: Int = _chaq_item("Hygiene: get on and off the toilet or potty chair",
                        "Hygiene: get on and off the toilet")
    HYG4: Int = _chaq_item("Hygiene: brush teeth")
    HYG5: Int = _chaq_item("Hygiene: comb or brush hair")
    REACH1: Int = _chaq_item("Reach: reach and get down a heavy object above the head",
                        "Reach: heavy object above the head")
    REACH2: Int = _chaq_item("Reach: bend down to pick up clothing from the floor",
                        "Reach: pick up clothing from the floor")
    REACH3: Int = _chaq_item("Reach: pull on a sweater over the head")
    REACH4: Int = _chaq_item("Reach: turn neck to look back over shoulder",
                        "Reach: look back over shoulder")
    GRIP1: Int = _chaq_item("Grip: write or scribble with a pen or pencil",
                        "Grip: write or scribble with a pen")
    GRIP2: Int = _chaq_item("Grip: open car doors")
    GRIP3: Int = _chaq_item("Grip: open jars which have been previously opened",
                        "Grip: open previously opened jars")
    GRIP4: Int = _chaq_item("Grip: turn faucets on and off")
    GRIP5: Int = _chaq_item("Grip: push open a door by turning a door knob",
                        "Grip: open a door by turning the knob")
    ACT1: Int = _chaq_item("Activities: run errands and shop")
    ACT2: Int = _chaq_item("Activities: get in and out of a car or toy car or school bus",
                        "Activities: get in and out of a car")
    ACT3: Int = _chaq_item("Activities: ride a bike or tricycle")
    ACT4: Int = _chaq_item("Activities: do household chores")
    ACT5: Int = _chaq_item("Activities: run and play")
    DRESSAH: YN = var("Dressing: aid or help used", "yn")
    ARISEAH: YN = var("Arising: aid or help used", "yn")
    EATAH: YN = var("Eating: aid or help used", "yn")
    WALKAH: YN = var("Walking: aid or help used", "yn")
    HYGAH: YN = var("Hygiene: aid or help used", "yn")
    REACHAH: YN = var("Reach: aid or help used", "yn")
    GRIPAH: YN = var("Grip: aid or help used", "yn")
    ACTAH: YN = var("Activities: aid or help used", "yn")
    PAINVAS: Num = var("Pain (0-10 VAS)", "num", min=0, max=10, decimals=1)

    class Config:
        metadata = {"form": "CHAQ", "label": "Childhood (or adult) Health Assessment Questionnaire",
                    "short_label": "CHAQ/HAQ questionnaire",
                    "structure": "one row per subject and assessment visit",
                    "keys": ["SUBJID", "VISIT"]}


class FEVER(Record):
    """Daily temperature diary — one row per subject and day."""

    FVDAT: Date = var("Diary date", "date", required=True)
    FVTEMP: Num = var("Highest temperature of the day", "num", unit="C", unit_var="FVTEMPU",
                      min=34.0, max=43.0)
    FVTEMPU: Char = var("Temperature unit", "char", codelist=CL["TEMPU"])
    FVROUTE: Char = var("Temperature route", "char", codelist=CL["FVROUTE"])
    FVANTIP: YN = var("Antipyretic taken", "yn")

    class Config:
        metadata = {"form": "FEVER", "label": "Daily temperature diary",
                    "structure": "one row per subject and day", "keys": ["SUBJID", "FVDAT"]}


class LB(Record):
    """Laboratory — one row per subject, visit and test.

    ``LBORRES``/``LBORRESU``/``LBNRLO``/``LBNRHI`` are kept exactly as reported; the importer adds
    the result and range in the test's standard unit (``LBSTRESN``, ``LBSTRESU``, ``LBSTNRLO``,
    ``LBSTNRHI``), as SDTM does. A result typed as a limit (``<1``) is the limit in ``LBORRES`` with
    its operator in ``LBCENS``.
    """

    VISIT: Char = var("Visit", "char", required=True, codelist=CL["VISIT"])
    LBDAT: Date = var("Sample date", "date", required=True)
    LBTESTCD: Char = var("Test", "char", required=True, codelist=CL["LBTESTCD"])
    LBORRES: Num = var("Result as reported", "num", required_if="required unless LBSTAT = ND",
                       censored=True, censor_var="LBCENS",
                       description="A result below or above what the laboratory measures may be typed as "
                                   "the limit: <1, < 0.5, >500, <=0.3, >=2 (the operator is kept in LBCENS).")
    LBORRESU: Char = var("Unit as reported", "char", required_if="required with a result")
    LBNRLO: Num = var("Normal range lower limit, as reported", "num",
                      required_if="required for CRP, ESR, AST, ALT")
    LBNRHI: Num = var("Normal range upper limit, as reported", "num",
                      required_if="required for CRP, ESR, AST, ALT")
    LBSTAT: Char = var("Test status (ND = not done)", "char", codelist=CL["LBSTAT"])
    LBSTRESN: Num = var("Result in standard unit", "num", derived=True)
    LBSTRESU: Char = var("Standard unit", "char", derived=True)
    LBSTNRLO: Num = var("Normal range lower limit in standard unit", "num", short_label="Normal range lower limit, std unit", derived=True)
    LBSTNRHI: Num = var("Normal range upper limit in standard unit", "num", short_label="Normal range upper limit, std unit", derived=True)
    LBCENS: Char = var("Result censoring (<, <=, >, >=)", "char", derived=True,
                       description="The operator of a result typed as a limit (<1: LBCENS = '<', LBORRES = 1); "
                                   "empty for a measured value.")

    @pa.dataframe_check(name="required:LBORRES")
    def _lborres(cls, df: pd.DataFrame) -> pd.Series:
        return require(df, "LBORRES", df["LBSTAT"].ne("ND"))

    @pa.dataframe_check(name="required:LBORRESU")
    def _lborresu(cls, df: pd.DataFrame) -> pd.Series:
        return require(df, "LBORRESU", df["LBORRES"].notna())

    @pa.dataframe_check(name="required:LBNRLO")
    def _lbnrlo(cls, df: pd.DataFrame) -> pd.Series:
        return require(df, "LBNRLO", df["LBTESTCD"].isin(LAB_RANGE_REQUIRED) & df["LBORRES"].notna())

    @pa.dataframe_check(name="required:LBNRHI")
    def _lbnrhi(cls, df: pd.DataFrame) -> pd.Series:
        return require(df, "LBNRHI", df["LBTESTCD"].isin(LAB_RANGE_REQUIRED) & df["LBORRES"].notna())

    class Config:
        metadata = {"form": "LB", "label": "Laboratory",
                    "structure": "one row per subject, visit and test",
                    "keys": ["SUBJID", "VISIT", "LBTESTCD"]}


class EX(Record):
    """Study drug — one row per dosing period at a constant daily dose."""

    EXSTDAT: Date = var("Dosing period start date", "date", required=True)
    EXENDAT: Date = var("Dosing period end date", "date",
                        required_if="required unless the period is ongoing (the subject's last period)")
    EXDOSE: Num = var("Daily dose", "num", required=True, unit="mg/day", min=0, max=200)
    KITNO: Char = var("Kit number", "char", required=True)
    EXMISS: Int = var("Number of missed daily doses in the period", "int", short_label="Missed daily doses in the period", required=True, min=0)
    EXADJ: Char = var("Reason the dose changed", "char", codelist=CL["EXADJ"])

    class Config:
        metadata = {"form": "EX", "label": "Study drug",
                    "structure": "one row per dosing period at a constant daily dose",
                    "keys": ["SUBJID", "EXSTDAT"]}


class CM(Record):
    """Concomitant medication — one row per drug course on or after day -28."""

    CMTRT: Char = var("Medication", "char", required=True, codelist=CL["CMTRT"])
    CMDOSE: Num = var("Dose per administration", "num", min=0, unit_var="CMDOSU")
    CMDOSU: Char = var("Dose unit", "char", codelist=CL["CMDOSU"])
    CMFRQ: Char = var("Frequency", "char", codelist=CL["CMFRQ"])
    CMROUTE: Char = var("Route", "char", codelist=CL["CMROUTE"])
    CMSTDAT: PDate = var("Start date", "pdate", required=True)
    CMENDAT: PDate = var("End date", "pdate")
    CMONGO: YN = var("Ongoing", "yn")

    class Config:
        metadata = {"form": "CM", "label": "Concomitant medication",
                    "structure": "one row per drug course on or after day -28",
                    "keys": ["SUBJID", "CMTRT", "CMSTDAT"]}


class AE(Record):
    """Adverse events — one row per event."""

    AETERM: Char = var("Reported term", "char", required=True)
    AESTDAT: Date = var("Start date", "date", required=True)
    AEENDAT: Date = var("End date", "date", required_if="required unless AEONGO = Y")
    AEONGO: YN = var("Ongoing", "yn", required=True)
    AETOXGR: Int = var("CTCAE v5.0 grade", "int", min=1, max=5)
    AESER: YN = var("Serious", "yn", required=True)
    AESDTH: YN = var("Serious: results in death", "yn")
    AESLIFE: YN = var("Serious: life-threatening", "yn")
    AESHOSP: YN = var("Serious: requires or prolongs hospitalisation", "yn", short_label="Serious: hospitalisation")
    AESDISAB: YN = var("Serious: persistent or significant disability", "yn", short_label="Serious: disability")
    AESCONG: YN = var("Serious: congenital anomaly", "yn")
    AESMIE: YN = var("Serious: other medically important event", "yn")
    AEREL: Char = var("Related to study drug", "char", codelist=CL["AEREL"])
    AEACN: Char = var("Action taken with study drug", "char", codelist=CL["AEACN"])
    AEOUT: Char = var("Outcome", "char", codelist=CL["AEOUT"])
    AESI: Char = var("Event of special interest", "char", codelist=CL["AESI"])
    AEAWDAT: Date = var("Date the site became aware", "date", required_if="required if AESER = Y")
    AERPTDAT: Date = var("Date reported to the sponsor", "date", required_if="required if AESER = Y")

    @pa.dataframe_check(name="required:AEENDAT")
    def _aeendat(cls, df: pd.DataFrame) -> pd.Series:
        return require(df, "AEENDAT", df["AEONGO"].ne("Y"))

    @pa.dataframe_check(name="required:AEAWDAT")
    def _aeawdat(cls, df: pd.DataFrame) -> pd.Series:
        return require(df, "AEAWDAT", df["AESER"].eq("Y"))

    @pa.dataframe_check(name="required:AERPTDAT")
    def _aerptdat(cls, df: pd.DataFrame) -> pd.Series:
        return require(df, "AERPTDAT", df["AESER"].eq("Y"))

    class Config:
        metadata = {"form": "AE", "label": "Adverse events", "structure": "one row per event",
                    "keys": ["SUBJID", "AETERM", "AESTDAT"]}


class DS(Record):
    """Disposition — one row per subject at the end of participation."""

    DSDECOD: Char = var("Disposition", "char", required=True, codelist=CL["DSDECOD"])
    DSSTDAT: Date = var("Disposition date", "date", required=True)
    DSPART: Char = var("Study part at disposition", "char", required=True, codelist=CL["DSPART"])

    class Config:
        metadata = {"form": "DS", "label": "Disposition",
                    "structure": "one row per subject at the end of participation",
                    "keys": ["SUBJID"]}


FORMS = [DM, MH, PT, IE, RAND, VS, CORE, JA, CHAQ, FEVER, LB, EX, CM, AE, DS]
