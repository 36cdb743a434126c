"""BPX-201's analysis program: ADBP, one row per subject (its analysis plug-in)."""

from __future__ import annotations

from .adbp import derive_adbp


def derive_datasets(study, forms, *, randlist=None, deviations=None, data_cut=None):
    """{"ADBP": ...}: the only analysis dataset of this study."""
    return {"ADBP": derive_adbp(study, forms, randlist=randlist)}
