"""CDISC ODM ClinicalData (stub)."""

from __future__ import annotations

from typing import Any


def plan_odm(read: Any, study: Any, *, path: str) -> dict[int, Any]:
    """The plans of an ODM file's tables."""
    return {}
