"""Shared fixtures: the bundled study, the fake study and the shared corpus."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

try:  # POSIX: lets xdist workers share one demo run
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

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


@dataclass(frozen=True)
class DemoOutcome:
    """What the shared demo command left: its exit code and output (as a CliRunner result has them)."""

    exit_code: int
    output: str  # stdout and stderr as they came
    stdout: str
    stderr: str  # the progress lines (stderr is not a terminal here)


def _build_demo(folder: Path) -> DemoOutcome:
    from click.testing import CliRunner

    from trialkit.cli import cli

    result = CliRunner().invoke(cli, ["demo", str(folder)], catch_exceptions=False)
    return DemoOutcome(exit_code=result.exit_code, output=result.output, stdout=result.stdout,
                       stderr=result.stderr)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """One `trialkit demo` run shared by every test that looks at the demo (the longest fixture).

    Returns ``(folder, outcome)`` (``outcome.exit_code``, ``outcome.output``); tests must not modify
    the folder. Under pytest-xdist the workers share one run: the first builds it in the session's
    common temporary folder under a file lock, the others wait and read it.
    """
    if not os.environ.get("PYTEST_XDIST_WORKER") or fcntl is None:  # one process (or no POSIX locks): build it here
        folder = tmp_path_factory.mktemp("demo") / "trialkit-demo"
        return folder, _build_demo(folder)
    shared = tmp_path_factory.getbasetemp().parent / "shared-demo"
    shared.mkdir(exist_ok=True)
    folder, done = shared / "trialkit-demo", shared / "outcome.json"
    with (shared / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.is_file():
            outcome = _build_demo(folder)
            done.write_text(json.dumps(asdict(outcome)), encoding="utf-8")
    return folder, DemoOutcome(**json.loads(done.read_text(encoding="utf-8")))
