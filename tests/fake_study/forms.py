"""Two forms of the fake study."""

from pathlib import Path

import pandera.pandas as pa

from trialkit.crf import Char, Date, Num, read_codelists, var

CL = read_codelists(Path(__file__).with_name("study.toml"))


class PET(pa.DataFrameModel):
    PETID: Char = var("Pet identifier", "char", required=True)
    COLOUR: Char = var("Colour", "char", required=True, codelist=CL["COLOUR"])

    class Config:
        metadata = {"form": "PET", "label": "Pets", "structure": "one row per pet", "keys": ["PETID"]}


class MEAL(pa.DataFrameModel):
    PETID: Char = var("Pet identifier", "char", required=True)
    MEALDAT: Date = var("Meal date", "date", required=True)
    GRAMS: Num = var("Food eaten", "num", unit="g", min=0, max=500, decimals=1)

    class Config:
        metadata = {"form": "MEAL", "label": "Meals", "structure": "one row per meal",
                    "keys": ["PETID", "MEALDAT"]}


FORMS = [PET, MEAL]
