"""BPX-201's own parameters, validated with a plain dataclass (no pydantic needed)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Protocol:
    target_sbp_mmhg: Decimal
    max_dose_mg: int


def validate(section: Mapping[str, Any]) -> Protocol:
    known = {f.name for f in fields(Protocol)}
    unknown = sorted(set(section) - known)
    missing = sorted(known - set(section))
    if unknown or missing:
        raise ValueError(f"unknown key(s) {', '.join(unknown) or '-'}; missing key(s) {', '.join(missing) or '-'}")
    return Protocol(target_sbp_mmhg=Decimal(str(section["target_sbp_mmhg"])), max_dose_mg=int(section["max_dose_mg"]))
