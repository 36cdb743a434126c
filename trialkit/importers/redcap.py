"""REDCap record exports read back through the study's REDCap project (stub)."""

from __future__ import annotations

from typing import Any


def plan_redcap(table: Any, study: Any, *, path: str) -> Any:
    """The plan of a REDCap export table, or None."""
    return None
