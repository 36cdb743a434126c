"""The command line as a whole: --help, --version, start-up cost, documentation of every command."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from trialkit import __version__
from trialkit.cli import COMMANDS, cli

README = Path(__file__).resolve().parents[1] / "README.md"


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"trialkit, version {__version__}"


def test_help_lists_every_command_with_its_description():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name, (_, description) in COMMANDS.items():
        assert re.search(rf"^\s+{name}\s+{re.escape(description[:30])}", result.output, re.M), name


def test_help_does_not_import_pandas():
    code = (
        "import sys\n"
        "from trialkit.cli import cli\n"
        "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('pandas', 'pandera', 'numpy', 'pyarrow', 'openpyxl', 'pydantic') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


def test_every_command_module_matches_its_table_entry():
    for name, (module_name, description) in COMMANDS.items():
        module = importlib.import_module(f"trialkit.commands.{module_name}")
        command = module.command
        assert isinstance(command, click.Command)
        assert command.name == name
        assert command.help, f"{name} has no --help text"
        assert command.get_short_help_str(200).rstrip(".") == description.rstrip("."), name


def test_every_command_is_documented_in_the_readme():
    text = README.read_text(encoding="utf-8")
    for name in COMMANDS:
        assert f"trialkit {name}" in text, f"README does not document `trialkit {name}`"


def test_python_dash_m_trialkit():
    out = subprocess.run([sys.executable, "-m", "trialkit", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"trialkit, version {__version__}"


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(cli, ["frobnicate"])
    assert result.exit_code == 2


def test_installed_console_script_works_from_any_directory(tmp_path):
    """After `pip install .` (CI installs non-editable), the bundled study is found from anywhere."""
    import json
    import os
    import shutil

    script = shutil.which("trialkit", path=str(Path(sys.executable).parent)) or shutil.which("trialkit")
    if script is None:
        import pytest

        pytest.skip("the trialkit console script is not installed (pip install .)")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TRIALKIT_STUDY")}
    subprocess.run([script, "template", "-o", "t.xlsx", "-q"], cwd=tmp_path, env=env, check=True,
                   capture_output=True, timeout=120)
    from openpyxl import load_workbook

    book = load_workbook(tmp_path / "t.xlsx")
    assert book.sheetnames[1:16] == ["DM", "MH", "PT", "IE", "RAND", "VS", "CORE", "JA", "CHAQ", "FEVER",
                                     "LB", "EX", "CM", "AE", "DS"]
    out = subprocess.run([script, "dictionary", "-f", "json"], cwd=tmp_path, env=env, check=True,
                         capture_output=True, text=True, timeout=120).stdout
    assert len(json.loads(out)["forms"]) == 15
    # The bundled study's plug-in folders (analysis/, demo/) are installed and load.
    checked = subprocess.run([script, "study", "check", "-f", "json"], cwd=tmp_path, env=env, check=True,
                             capture_output=True, text=True, timeout=120).stdout
    assert json.loads(checked)["problems"] == []
