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
        "heavy = [m for m in ('pandas', 'pandera', 'numpy', 'pyarrow', 'openpyxl') if m in sys.modules]\n"
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
