"""trialkit — data management for multicenter clinical trials.

The package is the generic engine; a trial (forms, codelists, protocol parameters, rules, analysis
programs, demo and report sections) is a *study definition* loaded from a folder (see
:mod:`trialkit.study`). Importing ``trialkit`` is cheap: heavy modules (pandas, pandera) load only
when a stage needs them.

For notebooks, the main entry points are available at the top level (imported on first use)::

    import trialkit
    study = trialkit.load_study()                       # the bundled study definition
    datasets = trialkit.derive_datasets(study, forms)   # the study's analysis datasets from typed forms
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

# name -> module that defines it; resolved lazily so `import trialkit` stays fast.
_LAZY = {
    "load_study": "trialkit.study",
    "derive_datasets": "trialkit.study.plugins",
    "import_files": "trialkit.importers.reader",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    if name == "scores":
        import importlib

        return importlib.import_module("trialkit.scores")
    raise AttributeError(f"module 'trialkit' has no attribute {name!r}")
