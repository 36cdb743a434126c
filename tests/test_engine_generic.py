"""The engine knows no trial: no form, visit, site, arm or endpoint name of the bundled study in trialkit/.

``trialkit/scores.py`` is the library of rheumatology formulas (ACR Pedi, JADAS, the anakinra dose
window are formula names there, not the trial's wiring), so it is left out.
"""

from __future__ import annotations

import re
from pathlib import Path

from trialkit.study import load_study

ENGINE = Path(__file__).resolve().parents[1] / "trialkit"
ALLOWED_FILES = {"scores.py"}


def trial_words() -> set[str]:
    """Names that belong to the bundled study: its id, forms, visits, arms, sites' cities, endpoints."""
    study = load_study()
    words = {study.id, *study.arms, *(s.city for s in study.sites.values()), "RESPW4", "AGEGR1", "PEDI",
             "JADAS", "BRTHYM", "STRATUM"}
    words |= {code for code in study.visits if code not in ("D1",)}  # D1 is the generic "day 1" column
    words |= {code for code in study.forms if len(code) > 2}  # two-letter codes (DM, AE …) are CDISC words
    return words


def test_the_engine_names_nothing_of_the_bundled_study():
    words = trial_words()
    pattern = re.compile(r"\b(" + "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)) + r")\b")
    found = {}
    for path in sorted(ENGINE.rglob("*.py")):
        if path.name in ALLOWED_FILES:
            continue
        hits = sorted({m.group(1) for m in pattern.finditer(path.read_text(encoding="utf-8"))})
        if hits:
            found[str(path.relative_to(ENGINE))] = hits
    assert found == {}
