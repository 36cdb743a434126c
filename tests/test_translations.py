"""The site's language: the engine's catalogue (trialkit/i18n.py), the study's translations/ folder
(validated at load, with the file and key of every mistake), English as the fallback per string."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from openpyxl import load_workbook

from trialkit.i18n import CATALOGUE, LANGUAGES, text
from trialkit.numformat import format_number
from trialkit.study import StudyDefinitionError, load_study
from trialkit.templates import HINT_ROW, LABEL_ROW, TITLE_ROW, write_template

TESTS = Path(__file__).resolve().parent
FAKE = TESTS / "fake_study"

ITALIAN = """
[study]
contact = "Scrivere al data management."

[missing_codes]
ND = "Non eseguito"

[forms.PET]
label = "Animali"
structure = "una riga per animale"

[labels]
PETID = "Codice dell'animale"

[labels.MEAL]
GRAMS = "Cibo mangiato"

[codelists.COLOUR]
R = "Rosso"
"""


def fake_with(tmp_path: Path, files: dict[str, str], language: str | None = "it") -> Path:
    """The fake study with ``files`` in its translations/ folder and its one site speaking ``language``."""
    target = tmp_path / "fake"
    shutil.copytree(FAKE, target, ignore=shutil.ignore_patterns("__pycache__"))
    if language is not None:
        toml = target / "study.toml"
        toml.write_text(toml.read_text(encoding="utf-8").replace(
            'decimal_mark = "."', f'decimal_mark = "."\nlanguage = "{language}"', 1), encoding="utf-8")
    folder = target / "translations"
    folder.mkdir()
    for name, content in files.items():
        (folder / name).write_text(content, encoding="utf-8")
    return target


def problems_of(folder: Path) -> list[str]:
    with pytest.raises(StudyDefinitionError) as caught:
        load_study(folder)
    return caught.value.problems


# -- the engine's catalogue -----------------------------------------------------------------------


def test_every_engine_text_is_in_every_language_with_the_same_placeholders():
    for key, entry in CATALOGUE.items():
        assert set(entry) == set(LANGUAGES), key
        fields = {lang: sorted(re.findall(r"{(\w+)}", value)) for lang, value in entry.items()}
        assert len({tuple(f) for f in fields.values()}) == 1, (key, fields)
        assert all(value.strip() for value in entry.values()), key
        # Translations are real: no language but English (and the shared symbols) repeats the English.
        english = entry["en"]
        copies = [lang for lang, value in entry.items() if lang != "en" and value == english]
        if len(english) > 12:  # a short word may be the same in several languages ("Codes", "Contact")
            assert len(copies) < 2, (key, copies)


def test_engine_text_falls_back_to_english():
    assert text("tpl.h.dates", "nl") == "Datums"
    assert text("hint.list", "es", n=4) == "lista: 4 códigos"
    assert text("hint.list", "pt", n=4) == "list: 4 codes"
    assert text("hint.list", None, n=4) == "list: 4 codes"


# -- the study's translations ----------------------------------------------------------------------


def test_the_bundled_study_speaks_each_sites_language(study):
    languages = {site.id: site.language for site in study.sites.values()}
    assert languages == {"01": "it", "02": "it", "03": "fr", "04": "de", "05": "nl", "06": "es", "07": "en",
                         "08": "en", "09": "en"}
    assert study.translations.languages == ["it", "fr", "de", "nl", "es"]
    for language in study.translations.languages:
        texts = study.texts(language)
        for form in study.forms.values():  # every label a site sees is translated
            assert texts.form_label(form) != form.label or form.code == "CHAQ", (language, form.code)
            for var in form.site_variables:
                assert study.translations.label(language, form.code, var.name), (language, form.code, var.name)
    dm = study.forms["DM"]
    assert study.texts("fr").label(dm, dm.variable("ICDAT")) == "Date du consentement éclairé"
    mh, core = study.forms["MH"], study.forms["CORE"]  # one name, two labels: per form
    assert study.texts("de").label(mh, mh.variable("RASH")) == "Flüchtiges Exanthem (jemals)"
    assert study.texts("de").label(core, core.variable("RASH")) == "Flüchtiges Exanthem bei der Visite"
    assert study.texts("es").decode("YN", "Y") == "Sí" and study.texts("es").decode("JOINT", "KNEE_L") == "KNEE_L"
    assert study.texts("en").label(dm, dm.variable("ICDAT")) == "Informed consent date"


def test_a_study_translates_its_own_words_and_english_fills_the_gaps(tmp_path):
    study = load_study(fake_with(tmp_path, {"it.toml": ITALIAN}))
    texts = study.texts("it")
    pet, meal = study.forms["PET"], study.forms["MEAL"]
    assert (texts.form_label(pet), texts.form_structure(pet)) == ("Animali", "una riga per animale")
    assert texts.form_label(meal) == "Meals"  # not translated: English
    assert texts.label(pet, pet.variable("PETID")) == "Codice dell'animale"
    assert texts.label(meal, meal.variable("PETID")) == "Codice dell'animale"  # [labels] is for every form
    assert texts.label(meal, meal.variable("GRAMS")) == "Cibo mangiato"
    assert texts.label(meal, meal.variable("MEALDAT")) == "Meal date"
    assert (texts.decode("COLOUR", "R"), texts.decode("COLOUR", "G")) == ("Rosso", "Green")
    assert texts.missing("ND") == "Non eseguito" and texts.contact() == "Scrivere al data management."
    book = load_workbook(write_template(study, tmp_path / "t.xlsx", site="A1"))
    sheet = book["PET"]
    assert sheet.cell(row=TITLE_ROW, column=1).value == "PET — Animali: una riga per animale"
    assert sheet.cell(row=LABEL_ROW, column=1).value == "Codice dell'animale"
    assert sheet.cell(row=HINT_ROW, column=1).value == "obbligatorio\ntesto"
    assert "Rosso" in sheet.cell(row=2, column=2).comment.text
    assert book["MEAL"].cell(row=HINT_ROW, column=3).value == "numero 0–500 g, max. 1 decimali"


@pytest.mark.parametrize(("files", "expected"), [
    ({"itt.toml": ITALIAN}, r"translations/itt\.toml: unknown language 'itt'; did you mean it\.toml\?"),
    ({"it.toml": ITALIAN.replace("PETID = ", "PETIDD = ")},
     r"translations/it\.toml: \[labels\] PETIDD: not a variable of any form; did you mean PETID\?"),
    ({"it.toml": ITALIAN.replace("GRAMS = ", "GRAMZ = ")},
     r"translations/it\.toml: \[labels\.MEAL\] GRAMZ: not a variable of form MEAL; did you mean GRAMS\?"),
    ({"it.toml": ITALIAN.replace("[forms.PET]", "[forms.PETS]")},
     r"translations/it\.toml: \[forms\.PETS\]: not a form of the study \(PET, MEAL\); did you mean PET\?"),
    ({"it.toml": ITALIAN.replace("label = \"Animali\"", "lable = \"Animali\"")},
     r"translations/it\.toml: \[forms\.PET\]: unknown key 'lable'; did you mean 'label'\?"),
    ({"it.toml": ITALIAN.replace("[missing_codes]", "[missing_code]")},
     r"translations/it\.toml: unknown section \[missing_code\]; did you mean \[missing_codes\]\?"),
    ({"it.toml": ITALIAN.replace('R = "Rosso"', 'B = "Blu"')},
     r"translations/it\.toml: \[codelists\.COLOUR\] B: not a code of the list"),
    ({"it.toml": ITALIAN.replace('ND = "Non eseguito"', 'NK = "Non noto"')},
     r"translations/it\.toml: \[missing_codes\] NK: not a missing-value code of the study \(ND\)"),
    ({"it.toml": ITALIAN.replace('PETID = "Codice dell\'animale"', "PETID = 5")},
     r"translations/it\.toml: \[labels\.PETID\]: .*write text in quotes"),
    ({"it.toml": "[forms.PET\nlabel = 1"}, r"translations/it\.toml: not valid TOML"),
    ({"it.txt": "x"}, r"translations/it\.txt: not a translation file"),
])
def test_a_mistake_in_a_translation_file_names_the_file_and_the_key(tmp_path, files, expected):
    problems = problems_of(fake_with(tmp_path, files))
    assert any(re.search(expected, p) for p in problems), problems


def test_an_unknown_site_language_is_refused_with_the_fix(tmp_path):
    problems = problems_of(fake_with(tmp_path, {}, language="itt"))
    assert any(re.search(r"study\.toml: \[\[sites\]\] #1 \(A1\) language: unknown language; did you mean 'it'\? "
                         r"use one of en, it, fr, de, nl, es \(found 'itt'\)", p) for p in problems), problems


def test_translations_in_study_toml_are_pointed_to_the_folder(tmp_path):
    folder = fake_with(tmp_path, {})
    toml = folder / "study.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + '\n[translations.it]\nPETID = "x"\n', encoding="utf-8")
    assert any("translations live in the study folder's translations/ folder" in p for p in problems_of(folder))


def test_a_study_without_languages_stays_english(fake_study, tmp_path):
    assert fake_study.sites["A1"].language == "en" and fake_study.translations.languages == []
    sheet = load_workbook(write_template(fake_study, tmp_path / "t.xlsx", site="A1"))["PET"]
    assert sheet.cell(row=LABEL_ROW, column=1).value == "Pet identifier"


# -- numbers in messages ---------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    (30.182926829268293, "30.2"), (27.27272727272727, "27.3"), (2.3333333333333335, "2.33"),
    (0.012345678, "0.012"), (0.00012345678, "0.00012"), (36.6, "36.6"), (0.0045, "0.0045"), (20.0, "20"),
    (7, "7"), (-12.3456789, "-12.3"), (1234567.891234, "1234567.9"), (float("nan"), "nan"),
])
def test_computed_numbers_are_written_as_a_person_writes_them(value, expected):
    assert format_number(value) == expected


def test_rounding_keeps_the_first_digits():
    for value in (30.182926829268293, 2.3333333333333335, 0.012345678, 1234567.891234):
        assert abs(float(format_number(value)) - value) <= abs(value) * 0.05  # two significant digits at least
