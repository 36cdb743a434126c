"""trialkit — data management for multicenter clinical trials.

The package is the generic engine; the trial itself (forms, codelists, protocol parameters and
deviation rules) is a *study definition* loaded from a folder (see :mod:`trialkit.study`). Importing
``trialkit`` is cheap: heavy modules (pandas, pandera) load only when a stage needs them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
