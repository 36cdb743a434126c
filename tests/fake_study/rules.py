"""One rule of the fake study."""

from trialkit.rules import rule


@rule("FK-01", "Meal for an unknown pet", severity="error", category="cross-form",
      reference="fake protocol", forms=["MEAL", "PET"], message="pet {PETID} has no PET record")
def meal_without_pet(ctx):
    meals, pets = ctx.form("MEAL"), ctx.form("PET")
    bad = meals[~meals["PETID"].isin(pets["PETID"])]
    return bad.assign(SUBJID=bad["PETID"], _form="MEAL", _index=bad.index, _variable="PETID")


RULES = [meal_without_pet]
