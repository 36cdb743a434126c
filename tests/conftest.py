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
