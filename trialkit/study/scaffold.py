"""Starting a new trial: a copy of an existing study definition, or a minimal blank one.

:func:`new_study` writes a study folder that loads and runs the whole pipeline as it stands: a copy
of the bundled study (or any other, ``source=``), or with ``blank=True`` a minimal definition — two
forms, two visits, one site and one data check — to grow into the new trial.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from trialkit.errors import UsageError
from trialkit.study.paths import STUDY_FILE, StudyDefinitionError, bundled_study_path, study_folder

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

BLANK_TOML = '''# {study_id} — a study definition started with `trialkit study new --blank`.
#
# Generic sections are validated by trialkit at load (an unknown key is refused with a did-you-mean);
# `trialkit study check` lints the folder. The trial's own parameters go under [protocol.*] and are
# read only by this folder's code. See README "Starting a new trial".

[study]
id = "{study_id}"
title = "{study_id}: a new trial"
protocol_version = "0.1"
contact = "Questions about this workbook: contact the {study_id} data management team."
# Every SUBJID matches this in full; the named group "site" is the site id (it must equal SITEID).
subject_id_pattern = '^(?P<site>\\d{{2}})-\\d{{3}}$'
subject_id_hint = "SS-NNN, e.g. 01-001 (the site, a hyphen, three digits)"

[plugins]
forms = "forms.py"
rules = ["checks.py"]
# analysis = "analysis"   # a folder whose derive_datasets(study, forms, ...) returns the analysis datasets
# report = "report.py"    # the trial's own report sections
# demo = "demo"           # a synthetic-data generator for `trialkit demo`

# One site; add one [[sites]] table per site (the SITEID codelist is generated from them).
[[sites]]
id = "01"
city = "First site"
country = "ZZ"
date_order = "DMY"     # DMY, MDY or YMD: how the site types dates as text
date_sep = "/"
decimal_mark = "."     # "," or "."
units = ["SI"]
language = "en"        # its workbooks' language: en, it, fr, de, nl or es (words in translations/<lang>.toml)

# Visits in study days (day 1 = first dose; no day 0). The VISIT codelist is generated from them.
[[visits]]
num = 1
code = "BASE"
label = "Baseline (day 1)"
target_day = 1
window_lo = 1
window_hi = 1

[[visits]]
num = 2
code = "FOLLOWUP"
label = "Follow-up (week 4)"
target_day = 29
window_lo = 22
window_hi = 36

# Treatment arms, as the unblinded randomization list names them:
# [[arms]]
# code = "ACTIVE"
# label = "Active treatment"

# Which forms are collected at which visits.
[schedule]
OBS = ["BASE", "FOLLOWUP"]

[missing_codes]
ND = "Not done"
NK = "Not known"
NA = "Not applicable"

[codelists.SEX]
label = "Sex"
values = [["M", "Male"], ["F", "Female"]]
synonyms = {{ M = ["male"], F = ["female"] }}
'''

BLANK_FORMS = '''"""The case report forms of this study, as pandera models (see trialkit.crf)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pandera.pandas as pa

from trialkit.crf import Char, Date, Num, keys_unique, read_study_definition, var

DEFINITION = read_study_definition(Path(__file__).with_name("study.toml"))
CL = DEFINITION.codelists
SUBJECT_ID = DEFINITION.typed.study.subject_id_pattern


class Record(pa.DataFrameModel):
    """Variables every form carries."""

    SITEID: Char = var("Site identifier", "char", required=True, codelist=CL["SITEID"])
    SUBJID: Char = var("Subject identifier", "char", required=True,
                       description=DEFINITION.typed.study.subject_id_hint)

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
    """Enrolment — one row per subject."""

    ENRDAT: Date = var("Enrolment date", "date", required=True)
    SEX: Char = var("Sex", "char", required=True, codelist=CL["SEX"])

    class Config:
        metadata = {"form": "ENROL", "label": "Enrolment", "structure": "one row per subject",
                    "keys": ["SUBJID"]}


class OBS(Record):
    """Observations — one row per subject and visit."""

    VISIT: Char = var("Visit", "char", required=True, codelist=CL["VISIT"])
    OBSDAT: Date = var("Observation date", "date", required=True)
    WEIGHT: Num = var("Weight", "num", unit="kg", min=1, max=300, decimals=1)

    class Config:
        metadata = {"form": "OBS", "label": "Observations", "structure": "one row per subject and visit",
                    "keys": ["SUBJID", "VISIT"]}


FORMS = [ENROL, OBS]
'''

BLANK_CHECKS = '''"""Data checks of this study (see trialkit.rules): each returns the offending rows."""

from __future__ import annotations

import pandas as pd

from trialkit.rules import RuleContext, rule


@rule("DC-01", "Observation of a subject who is not enrolled", severity="error", category="cross-form",
      reference="Protocol: forms", forms=["OBS", "ENROL"],
      message="Subject {SUBJID} has observations but no ENROL record: add the enrolment or correct SUBJID")
def observation_without_enrolment(ctx: RuleContext) -> pd.DataFrame:
    """OBS records whose subject has no ENROL record."""
    obs = ctx.form("OBS")
    orphans = obs[obs["SUBJID"].notna() & ~obs["SUBJID"].isin(ctx.form("ENROL")["SUBJID"])]
    return orphans.assign(_form="OBS", _index=orphans.index, _variable="SUBJID")[
        ["SUBJID", "VISIT", "_form", "_index", "_variable"]]


RULES = [observation_without_enrolment]
'''


def _check_target(target: Path) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"{target}: exists and is not an empty folder; choose a new DIR for the study")


def new_study(target: str | os.PathLike[str], *, source: str | os.PathLike[str] | None = None,
              blank: bool = False, study_id: str | None = None) -> Path:
    """Write a new study folder at ``target`` (which must not exist or be empty); returns it.

    ``blank``: the minimal definition; else a copy of ``source`` (default: the bundled study), with
    its ``[study] id`` replaced by ``study_id`` when given.
    """
    from trialkit.study.loader import definition_files

    folder = Path(target).expanduser()
    if blank and source is not None:
        raise UsageError("--blank writes a minimal study; it cannot be combined with --from")
    if study_id is not None and not _ID.match(study_id):
        raise UsageError(f"--id {study_id!r}: use letters, digits, '.', '_' and '-' only")
    _check_target(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if blank:
        chosen = study_id or "NEW-STUDY"
        (folder / STUDY_FILE).write_text(BLANK_TOML.format(study_id=chosen), encoding="utf-8")
        (folder / "forms.py").write_text(BLANK_FORMS, encoding="utf-8")
        (folder / "checks.py").write_text(BLANK_CHECKS, encoding="utf-8")
        return folder.resolve()
    origin = study_folder(source) if source is not None else bundled_study_path()
    for path in definition_files(origin):
        destination = folder / path.relative_to(origin)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
    if study_id is not None:
        toml = folder / STUDY_FILE
        text = toml.read_text(encoding="utf-8")
        replaced, count = re.subn(r'(?m)^id\s*=\s*"[^"]*"', f'id = "{study_id}"', text, count=1)
        if count != 1:
            raise StudyDefinitionError(f"{toml}: no `id = \"...\"` line in [study] to replace")
        toml.write_text(replaced, encoding="utf-8")
    return folder.resolve()
