"""Where a study definition lives: the ``--study`` path, ``$TRIALKIT_STUDY`` or the bundled study.

Kept free of heavy imports: the command line reads :data:`ENV_STUDY` while building ``--help``.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from trialkit.errors import TrialkitError

ENV_STUDY = "TRIALKIT_STUDY"
STUDY_FILE = "study.toml"


class StudyDefinitionError(TrialkitError):
    """A study definition that cannot be used; the message names the file and the problem.

    ``problems`` lists every problem found (one line each) when several were found at once, so that
    ``trialkit study check`` can show them all.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems) if problems else [message]


def bundled_study_path() -> Path:
    """The folder of the bundled study definition.

    Installed, it is the package data ``trialkit/_bundled_study``; in a source checkout it is
    ``schemas/`` beside the ``trialkit`` package.
    """
    package_dir = Path(__file__).resolve().parent.parent
    installed = package_dir / "_bundled_study"
    if (installed / STUDY_FILE).is_file():
        return installed
    checkout = package_dir.parent / "schemas"
    if (checkout / STUDY_FILE).is_file():
        return checkout
    spec = importlib.util.find_spec("trialkit._bundled_study")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            if (Path(location) / STUDY_FILE).is_file():
                return Path(location)
    raise StudyDefinitionError(
        "the bundled study definition is missing from this installation; reinstall trialkit "
        f"or pass --study PATH (or set {ENV_STUDY})"
    )


def study_folder(path: str | os.PathLike[str]) -> Path:
    """The study folder named by ``path`` (a folder holding study.toml, or the study.toml itself)."""
    folder = Path(path).expanduser()
    if folder.is_file() and folder.name == STUDY_FILE:
        folder = folder.parent
    if not (folder / STUDY_FILE).is_file():
        raise StudyDefinitionError(
            f"{folder}: not a study definition (no {STUDY_FILE} there); point --study or "
            f"{ENV_STUDY} at a folder holding {STUDY_FILE} and forms.py"
        )
    return folder.resolve()


def resolve_study_path(path: str | os.PathLike[str] | None = None) -> Path:
    """Where to load the study from: ``path``, else ``$TRIALKIT_STUDY``, else the bundled one."""
    chosen = path or os.environ.get(ENV_STUDY) or None
    if chosen is None:
        return bundled_study_path()
    return study_folder(chosen)
