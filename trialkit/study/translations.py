"""The study's own words in the site's language: the ``translations/`` folder of a study.

One TOML file per language, named by its code (``translations/it.toml``; the languages are
:data:`trialkit.i18n.LANGUAGES`). Each file may give::

    [study]
    contact = "..."                     # the contact line of the workbooks
    title = "..."                       # the study title

    [missing_codes]
    ND = "Non eseguito"                 # what a missing-value code means

    [forms.DM]
    label = "Dati demografici"          # the form's label
    structure = "una riga per paziente" # what one record is

    [labels]
    SITEID = "Codice del centro"        # a variable's label in every form that has it
    [labels.MH]
    RASH = "Eruzione evanescente (mai)" # ... or in one form (wins over the line above)

    [codelists.SEX]
    F = "Femmina"                       # the decode of a code (the code itself stays)

Everything is optional: English (the study's own labels in ``forms.py`` and ``study.toml``) is the
fallback per string. Codes, variable names and values are never translated. A key the engine does
not know, a form, variable, codelist, code or missing-value code the study does not have, or a file
named by an unknown language is refused at load with the file, the key and a did-you-mean.

:class:`Texts` is what the workbooks use: the study's words in one language, with the fallback.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from trialkit.i18n import DEFAULT_LANGUAGE, LANGUAGES
from trialkit.study.paths import StudyDefinitionError

TRANSLATIONS_FOLDER = "translations"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StudyText(_Section):
    """``[study]`` of a translation file."""

    title: str | None = None
    contact: str | None = None


class FormText(_Section):
    """``[forms.CODE]`` of a translation file."""

    label: str | None = None
    structure: str | None = None


class TranslationFile(_Section):
    """One ``translations/<language>.toml``."""

    study: StudyText = StudyText()
    missing_codes: dict[str, str] = {}
    forms: dict[str, FormText] = {}
    labels: dict[str, str | dict[str, str]] = {}
    codelists: dict[str, dict[str, str]] = {}


@dataclass(frozen=True)
class Translations:
    """Every translation file of a study, by language (empty when the study has none)."""

    files: Mapping[str, TranslationFile] = field(default_factory=dict)

    @property
    def languages(self) -> list[str]:
        """The languages the study translates into (in :data:`LANGUAGES` order)."""
        return [lang for lang in LANGUAGES if lang in self.files]

    def _file(self, language: str | None) -> TranslationFile | None:
        return self.files.get(language or DEFAULT_LANGUAGE)

    def form_text(self, language: str | None, form: str, key: str) -> str | None:
        """A form's ``label`` or ``structure`` in ``language``, or None."""
        file = self._file(language)
        entry = file.forms.get(form) if file else None
        return getattr(entry, key) if entry is not None else None

    def label(self, language: str | None, form: str, variable: str) -> str | None:
        """A variable's label in ``language`` (the form's own line first), or None."""
        file = self._file(language)
        if file is None:
            return None
        own = file.labels.get(form)
        if isinstance(own, dict) and variable in own:
            return own[variable]
        common = file.labels.get(variable)
        return common if isinstance(common, str) else None

    def missing(self, language: str | None, code: str) -> str | None:
        """What a missing-value code means, in ``language``, or None."""
        file = self._file(language)
        return file.missing_codes.get(code) if file else None

    def study(self, language: str | None, key: str) -> str | None:
        """The study's ``title`` or ``contact`` in ``language``, or None."""
        file = self._file(language)
        return getattr(file.study, key) if file else None

    def decode(self, language: str | None, codelist: str, code: str) -> str | None:
        """A code's decode in ``language``, or None."""
        file = self._file(language)
        return file.codelists.get(codelist, {}).get(code) if file else None


def read_translations(folder: Path, forms: Mapping[str, Any], codelists: Mapping[str, Any],
                      missing_codes: Mapping[str, str]) -> Translations:
    """Read and check ``folder/translations/*.toml`` against the study's forms, codelists and codes.

    Raises :class:`StudyDefinitionError` listing every problem, each naming the file and the key.
    """
    where = folder / TRANSLATIONS_FOLDER
    if not where.is_dir():
        return Translations()
    files: dict[str, TranslationFile] = {}
    problems: list[str] = []
    for path in sorted(where.iterdir()):
        if path.name.startswith(".") or path.is_dir():
            continue
        if path.suffix != ".toml":
            problems.append(f"{path}: not a translation file; the folder {TRANSLATIONS_FOLDER}/ holds one "
                            f"<language>.toml per language ({', '.join(LANGUAGES)})")
            continue
        language = path.stem
        if language not in LANGUAGES:
            close = difflib.get_close_matches(language, LANGUAGES, n=1)
            hint = f"did you mean {close[0]}.toml? " if close else ""
            problems.append(f"{path}: unknown language {language!r}; {hint}name the file by one of "
                            f"{', '.join(LANGUAGES)}")
            continue
        try:
            with open(path, "rb") as handle:
                raw = tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            problems.append(f"{path}: not valid TOML: {exc}")
            continue
        except OSError as exc:
            problems.append(f"{path}: cannot be read ({exc.strerror or exc})")
            continue
        try:
            parsed = TranslationFile.model_validate(raw)
        except ValidationError as exc:
            problems.extend(dict.fromkeys(f"{path}: {_describe(error)}" for error in exc.errors()))
            continue
        problems.extend(f"{path}: {p}" for p in _check(parsed, forms, codelists, missing_codes))
        files[language] = parsed
    if problems:
        raise StudyDefinitionError("\n".join(problems), problems)
    return Translations(files)


def _describe(error: Mapping[str, Any]) -> str:
    loc = [str(p) for p in error.get("loc", ())]
    if error.get("type") == "extra_forbidden" and loc:
        key = loc[-1]
        if len(loc) == 1:
            allowed = list(TranslationFile.model_fields)
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean [{close[0]}]?" if close else f"allowed: {', '.join(f'[{a}]' for a in allowed)}"
            return f"unknown section [{key}]; {hint}"
        model = {"study": StudyText, "forms": FormText}.get(loc[0])
        allowed = list(model.model_fields) if model else []
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"allowed: {', '.join(allowed)}"
        return f"[{'.'.join(loc[:-1])}]: unknown key '{key}'; {hint}"
    # A union's branches (``str``, ``dict[str,str]``) are pydantic's, not keys of the file.
    loc = [p for p in loc if p != "str" and not p.startswith("dict[")]
    place = f"[{'.'.join(loc)}]" if loc else "the file"
    return f"{place}: not text; write text in quotes, e.g. KEY = \"...\""


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f"; did you mean {close[0]}?" if close else ""


def _check(file: TranslationFile, forms: Mapping[str, Any], codelists: Mapping[str, Any],
           missing_codes: Mapping[str, str]) -> list[str]:
    """What a translation file names that the study does not have."""
    problems = []
    form_codes = list(forms)
    all_variables = sorted({v.name for form in forms.values() for v in form.variables})
    for code in file.missing_codes:
        if code not in missing_codes:
            problems.append(f"[missing_codes] {code}: not a missing-value code of the study "
                            f"({', '.join(missing_codes) or 'none'}){_suggest(code, list(missing_codes))}")
    for code in file.forms:
        if code not in forms:
            problems.append(f"[forms.{code}]: not a form of the study ({', '.join(form_codes)})"
                            f"{_suggest(code, form_codes)}")
    for key, value in file.labels.items():
        if isinstance(value, str):
            if key not in all_variables:
                problems.append(f"[labels] {key}: not a variable of any form{_suggest(key, all_variables)}")
            continue
        if key not in forms:
            problems.append(f"[labels.{key}]: not a form of the study ({', '.join(form_codes)})"
                            f"{_suggest(key, form_codes)}")
            continue
        names = forms[key].variable_names
        for variable in value:
            if variable not in names:
                problems.append(f"[labels.{key}] {variable}: not a variable of form {key}"
                                f"{_suggest(variable, names)}")
    for name, decodes in file.codelists.items():
        if name not in codelists:
            problems.append(f"[codelists.{name}]: not a codelist of the study{_suggest(name, list(codelists))}")
            continue
        codes = codelists[name].codes
        for code in decodes:
            if code not in codes:
                problems.append(f"[codelists.{name}] {code}: not a code of the list{_suggest(code, codes)}")
    return problems


class Texts:
    """The study's words in one language, English (the study's own) where a string is not translated.

    Example::

        >>> texts = Texts(study, "it")  # doctest: +SKIP
        >>> texts.form_label(study.forms["DM"])  # doctest: +SKIP
        'Dati demografici'
    """

    def __init__(self, study: Any, language: str | None) -> None:
        self.study = study
        self.language = language if language in LANGUAGES else DEFAULT_LANGUAGE
        self._translations: Translations = getattr(study, "translations", None) or Translations()

    def form_label(self, form: Any) -> str:
        """The form's label."""
        return self._translations.form_text(self.language, form.code, "label") or form.label

    def form_structure(self, form: Any) -> str:
        """What one record of the form is."""
        return self._translations.form_text(self.language, form.code, "structure") or form.structure

    def label(self, form: Any, variable: Any) -> str:
        """A variable's label in the form."""
        return self._translations.label(self.language, form.code, variable.name) or variable.label

    def missing(self, code: str) -> str:
        """What a missing-value code means."""
        return self._translations.missing(self.language, code) or self.study.missing_codes.get(code, code)

    def contact(self) -> str:
        """The contact line."""
        return self._translations.study(self.language, "contact") or self.study.contact

    def title(self) -> str:
        """The study title."""
        return self._translations.study(self.language, "title") or self.study.title

    def decode(self, codelist: str, code: str) -> str:
        """A code's decode (the code itself when the list has none)."""
        found = self._translations.decode(self.language, codelist, code)
        if found:
            return found
        listed = self.study.codelists.get(codelist)
        return (listed.decode(code) if listed is not None else None) or code
