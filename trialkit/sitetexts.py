"""What the site reads above its data: sheet titles, variable labels, hints and notes, in its language.

One source for the upload template (:mod:`trialkit.templates`), which writes these texts, and for
the importer, which must recognise them in an upload — in any language the study speaks — as the
template's header block and not as records (:func:`header_block_keys`).

- :func:`sheet_title` — ``DM — Demographics: one row per subject``;
- :func:`hint` — the short line(s) under a label: required or conditional, the type with range and
  unit, the codes of a short list (``M, F``) or how many codes a long one has;
- :func:`note` — the full note on a variable code (label, type, unit, rules, codes with their
  decodes, description, missing-value codes).

Codes, variable names and values are never translated.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from trialkit.i18n import LANGUAGES, text
from trialkit.importers.header import header_key
from trialkit.numformat import format_number

#: A codelist is spelled out in the hint when it has at most this many codes and they are short.
HINT_CODES_MAX = 6
HINT_CODES_CHARS = 32


def number_text(value: float | int | None) -> str:
    """A bound as a person writes it: ``8``, ``34.5``, ``0.25`` (no ``.0``, no exponent)."""
    return "" if value is None else format_number(value)


def sheet_title(study: Any, form: Any, language: str | None) -> str:
    """The title row of a form's sheet: code, label and what one record is."""
    texts = study.texts(language)
    structure = texts.form_structure(form)
    return f"{form.code} — {texts.form_label(form)}" + (f": {structure}" if structure else "")


def type_text(var: Any, language: str | None) -> str:
    """The variable's type in words, with range, unit and decimals (``number 8–200 kg``)."""
    if var.type == "date":
        return text("hint.date", language)
    if var.type == "pdate":
        return text("hint.pdate", language, formats=", ".join(var.pdate_formats or ("YYYY", "YYYY-MM", "YYYY-MM-DD")))
    if var.type in ("int", "num"):
        words = [text("hint.int" if var.type == "int" else "hint.num", language)]
        if var.min is not None and var.max is not None:
            words.append(f"{number_text(var.min)}–{number_text(var.max)}")
        elif var.min is not None:
            words.append(f"≥ {number_text(var.min)}")
        elif var.max is not None:
            words.append(f"≤ {number_text(var.max)}")
        if var.unit:
            words.append(var.unit)
        result = " ".join(words)
        if var.decimals is not None:
            result += ", " + text("hint.decimals", language, n=var.decimals)
        return result
    return text("hint.text", language)


def values_text(study: Any, var: Any, language: str | None) -> str | None:
    """The allowed codes of a variable with a list: the codes themselves when few, else how many."""
    if not var.codelist or var.codelist not in study.codelists:
        return None
    codes = study.codelists[var.codelist].codes
    joined = ", ".join(codes)
    if len(codes) <= HINT_CODES_MAX and len(joined) <= HINT_CODES_CHARS:
        return joined
    return text("hint.list", language, n=len(codes))


def hint(study: Any, var: Any, language: str | None, site: Any = None) -> str:
    """The hint under a variable's label, one item per line (required, type or codes, unit)."""
    lines = []
    if var.required:
        lines.append(text("hint.required", language))
    elif var.required_if:
        lines.append(text("hint.conditional", language))
    if site is not None and var.name == "SITEID":
        lines.append(text("hint.siteid_blank", language, site=site.id))
    else:
        codes = values_text(study, var, language)
        lines.append(codes if codes is not None else type_text(var, language))
    return "\n".join(lines)


def note(study: Any, form: Any, var: Any, language: str | None) -> str:
    """The note on a variable code: label, type, unit, rules, codes, description, missing codes."""
    texts = study.texts(language)
    lines = [f"{var.name}: {texts.label(form, var)}", f"{text('note.type', language)}: {type_text(var, language)}"]
    if var.unit:
        unit = f"{text('note.unit', language)}: {var.unit}"
        if var.unit_var:
            unit += " " + text("note.unit_var", language, var=var.unit_var)
        lines.append(unit)
    if var.rule_text:
        lines.append(f"{text('note.rules', language)}: {var.rule_text}")
    if var.codelist and var.codelist in study.codelists:
        values = study.codelists[var.codelist].values
        if len(values) <= 12:
            decoded = []
            for code, _ in values:
                decode = texts.decode(var.codelist, code)
                decoded.append(f"{code} = {decode}" if decode != code else code)
            lines.append(f"{text('note.codes', language)}: " + "; ".join(decoded))
        else:
            lines.append(f"{text('note.codes', language)}: {text('hint.list', language, n=len(values))}")
    if var.description:
        lines.append(var.description)
    lines.append(f"{text('note.missing', language)}: " + ", ".join(study.missing_codes))
    return "\n".join(lines)


def study_languages(study: Any) -> list[str]:
    """English, the languages of the study's sites and those it has translations for."""
    wanted = {"en", *(s.language for s in study.sites.values())}
    translations = getattr(study, "translations", None)
    if translations is not None:
        wanted.update(translations.languages)
    return [lang for lang in LANGUAGES if lang in wanted]


_BLOCK_KEYS: dict[tuple[str, str, str], tuple[dict[str, set[str]], set[str]]] = {}


def header_block_keys(study: Any, form: Any) -> tuple[dict[str, set[str]], set[str]]:
    """What the template writes above a form's records, as :func:`header_key` keys, in every language:
    per variable name its labels and hints, and the sheet titles (cached per study version and form).

    An importer uses it to tell the template's label and hint rows (and its title row) from records.
    """
    key = (str(getattr(study, "path", "")), getattr(study, "definition_hash", "") or str(id(study)), form.code)
    if key not in _BLOCK_KEYS:
        _BLOCK_KEYS[key] = _header_block_keys(study, form)
    return _BLOCK_KEYS[key]


def _header_block_keys(study: Any, form: Any) -> tuple[dict[str, set[str]], set[str]]:
    per_variable: dict[str, set[str]] = {}
    titles: set[str] = set()
    sites: Iterable[Any] = [None, *study.sites.values()]
    for language in study_languages(study):
        texts = study.texts(language)
        titles.add(header_key(sheet_title(study, form, language)))
        for var in form.site_variables:
            keys = per_variable.setdefault(var.name, set())
            keys.add(header_key(texts.label(form, var)))
            for site in sites if var.name == "SITEID" else [None]:
                keys.add(header_key(hint(study, var, language, site)))
    for keys in per_variable.values():
        keys.discard("")
    titles.discard("")
    return per_variable, titles
