"""The catalogue of finding codes: complete, documented, and what `trialkit codes` prints."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from click.testing import CliRunner

from trialkit.cli import cli
from trialkit.codes import CATALOGUE, catalogue, render_markdown

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "trialkit"
# Upper-case text with hyphens that is not a finding code (formats, encodings, placeholders).
NOT_CODES = {"YYYY-MM-DD", "YYYY-MM", "UTF-8", "UTF-16", "ISO-8859-1", "SS-NNN", "MM-DD", "DD-MM",
             "NEW-STUDY"}  # the default id of `trialkit study new --blank`
CODE_SHAPE = re.compile(r"^[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+$")


def _module_constants(tree: ast.AST) -> dict[str, str]:
    constants = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id.isupper():
                    constants[target.id] = node.value.value
    return constants


def emitted_codes() -> dict[str, set[str]]:
    """Code literals in the engine: every hyphenated upper-case string (IMP-…, PRIVACY-…, …) and every
    value given to a ``code=`` keyword, as a literal or a module constant; by file."""
    found: dict[str, set[str]] = {}
    for path in sorted(ENGINE.rglob("*.py")):
        if path.name == "codes.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = _module_constants(tree)
        codes: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and CODE_SHAPE.match(node.value):
                if node.value not in NOT_CODES:
                    codes.add(node.value)
            if isinstance(node, ast.keyword) and node.arg == "code":
                if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                    codes.add(node.value.value)
                elif isinstance(node.value, ast.Name) and node.value.id in constants:
                    codes.add(constants[node.value.id])
        # the form checks' codes are module constants of validate.py, used through a table
        if path.name == "validate.py":
            codes |= {value for name, value in constants.items() if name.isupper() and value.isupper()}
        if codes:
            found[str(path.relative_to(ROOT))] = codes
    return found


def test_every_code_the_engine_emits_is_in_the_catalogue():
    missing = {file: sorted(c for c in codes if c not in CATALOGUE) for file, codes in emitted_codes().items()}
    assert {file: codes for file, codes in missing.items() if codes} == {}


def test_the_scan_finds_codes():
    found = set().union(*emitted_codes().values())
    assert {"IMP-TEMPLATE-OUTDATED", "PRIVACY-COLUMN", "WRONG-SITE", "RANGE", "DUPLICATE-KEY"} <= found


def test_every_catalogue_entry_is_complete():
    for code in CATALOGUE.values():
        assert code.title and code.description and code.remedy, code.code
        assert code.severity in ("error", "warning", "info", "varies"), code.code
        assert CODE_SHAPE.match(code.code) or code.code.isupper(), code.code


def test_committed_codes_doc_is_current(study):
    committed = (ROOT / "docs" / "codes.md").read_text(encoding="utf-8")
    assert committed == render_markdown(study), "regenerate with `trialkit codes -f md -o docs/codes.md`"


def test_study_rules_do_not_reuse_engine_codes(study, fake_study):
    for one in (study, fake_study):
        assert not {r.id for r in one.rules} & set(CATALOGUE)


def test_cli_json_is_the_library_catalogue(study):
    result = CliRunner().invoke(cli, ["codes", "-f", "json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data == catalogue(study)
    assert data["study"]["id"] == "ANK-SJIA-01"
    by_code = {c["code"]: c for c in data["study"]["codes"]}
    assert by_code["PD-01"]["deviation_class"] == "major" and by_code["DC-01"]["severity"] == "error"


def test_cli_text_lists_engine_and_study_codes(fake_study):
    result = CliRunner().invoke(cli, ["codes", "--study", str(fake_study.path)])
    assert result.exit_code == 0
    assert "IMP-TEMPLATE-OUTDATED" in result.stdout and "FK-01" in result.stdout and "FAKE-01" in result.stdout
    assert "PD-01" not in result.stdout
