"""Shared fixtures: the bundled study, the fake study and the shared corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from trialkit.study import load_study

TESTS = Path(__file__).resolve().parent
FAKE_STUDY = TESTS / "fake_study"
SHARED = TESTS.parents[1] / "shared"
CORPUS = SHARED / "corpus"


@pytest.fixture(scope="session")
def study():
    """The bundled ANK-SJIA-01 study definition."""
    return load_study()


@pytest.fixture(scope="session")
def fake_study():
    """A two-form fake study that proves the engine is generic."""
    return load_study(FAKE_STUDY)


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared corpus of real third-party files (skips when absent)."""
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS}; these tests need ../shared/corpus")
    return CORPUS


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """One `trialkit demo` run shared by every test that looks at the demo (it takes about a minute).

    Returns ``(folder, CliRunner result)``; tests must not modify the folder.
    """
    from click.testing import CliRunner

    from trialkit.cli import cli

    folder = tmp_path_factory.mktemp("demo") / "trialkit-demo"
    result = CliRunner().invoke(cli, ["demo", str(folder), "-q"], catch_exceptions=False)
    return folder, result
