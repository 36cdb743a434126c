"""ANK-SJIA-01's own parameters: the ``[protocol]`` section of study.toml, typed and validated.

The trialkit engine never reads ``[protocol]``: it hands the section to :func:`validate` (this folder's
``protocol`` plug-in) when it loads the study, and keeps what it returns as ``study.protocol``. The
study's checks, deviations, analysis programs, demo and report read their parameters from there.
Every key is required and an unknown key is refused, so a typo fails at load instead of silently
becoming a default. Numbers that take part in exact comparisons are text (``"38.0"``, ``"5/9"``);
read them with :func:`trialkit.study.exact`.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from trialkit.study import read_definition


def _number(value: Any) -> str:
    text = str(value).strip()
    if text.lower() == "once":
        return "once"
    try:
        Fraction(text)
    except (ValueError, ZeroDivisionError) as exc:
        raise ValueError(f"{value!r} is not a number") from exc
    return text


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Part(_Params):
    """A part of the study as study days."""

    first_day: int
    last_day: int
    label: str
    #: The arm whose treatment every subject receives in this part (open label), if any.
    open_label_arm: str | None = None


class AgeGroups(_Params):
    """Age groups at day 1: PEDI below ``adult_age_years``, ADULT at or above."""

    adult_age_years: int


class Diary(_Params):
    """The daily fever diary."""

    daily_days: tuple[int, int]
    fever_c: str
    days_before_visit: int
    min_recorded_days: int
    #: Amendment 1: visits before which the diary is kept on the days V-7..V-1 (PD-14).
    before_visits: list[str]

    _fever = field_validator("fever_c", mode="before")(_number)


class Dose(_Params):
    """Anakinra dosing (DERIVATIONS "Anakinra dose window")."""

    weight_threshold_kg: str
    fixed_dose_mg: int
    min_mg_per_kg: str
    max_mg_per_kg: str
    syringe_step_mg: int
    max_daily_mg: int
    missed_dose_limit_pct: str

    _numbers = field_validator("weight_threshold_kg", "min_mg_per_kg", "max_mg_per_kg", "missed_dose_limit_pct",
                               mode="before")(_number)


class DrugClasses(_Params):
    """Drug classes the rules and derivations name."""

    il1_blockers: list[str]
    tnf_inhibitors: list[str]
    conventional_dmards: list[str]
    glucocorticoids: list[str]
    nsaids: list[str]
    methotrexate: list[str]


class Prohibited(_Params):
    """Prohibited medication (PD-09)."""

    throughout: list[str]
    part_a_routes: list[str]
    part_a_drugs: list[str]
    part_a_drug_exception_aesi: str


class Joints(_Params):
    """The 71-joint count (the JOINT codelist) and its subsets."""

    all: tuple[str, ...]
    jadas27: tuple[str, ...]
    das28: tuple[str, ...]

    @model_validator(mode="after")
    def _subsets(self) -> Joints:
        for name in ("jadas27", "das28"):
            unknown = sorted(set(getattr(self, name)) - set(self.all))
            if unknown:
                raise ValueError(f"joints.{name}: not in the JOINT codelist: {', '.join(unknown)}")
        return self


class LabLimits(_Params):
    """Laboratory limits the rules use."""

    anc_exclusion_min: str
    anc_neutropenia: str
    hepatic_uln_multiple: str
    weight_change_warning_pct: str

    _numbers = field_validator("*", mode="before")(_number)


class Analysis(_Params):
    """Parameters of the analysis programs."""

    taper_visits: list[str]
    #: Amendment 1: treatment-emergent up to this many days after the last dose.
    teae_days_after_last_dose: int
    #: Visits at which the ACR Pedi responses are derived (core-set visits after D1).
    response_visits: list[str]
    #: NSAID discontinuation: assessed at these visits, looking at the days V - window..V.
    nsaid_visits: list[str]
    nsaid_window_days: int
    #: MAS at a visit: a diary temperature this many days either side of the sample makes it febrile.
    febrile_window_days: int
    #: Time to discontinuation: the disposition that is not a discontinuation, and the efficacy reasons.
    completed_disposition: str
    efficacy_discontinuation: list[str]
    #: Time-to-event days count both the start and the event day (AVAL = ADT - STARTDT + 1).
    tte_days_inclusive: bool


class Protocol(_Params):
    """The whole ``[protocol]`` section."""

    parts: dict[str, Part]
    age_groups: AgeGroups
    diary: Diary
    dose: Dose
    washout_weeks: dict[str, int]
    drug_classes: DrugClasses
    prohibited: Prohibited
    prednisone_factors: dict[str, str]
    frequency_per_day: dict[str, str]
    joints: Joints
    lab_limits: LabLimits
    analysis: Analysis

    _factors = field_validator("prednisone_factors", "frequency_per_day", mode="before")(
        lambda value: {str(k): _number(v) for k, v in dict(value).items()}
    )

    @model_validator(mode="after")
    def _parts(self) -> Protocol:
        if "A" not in self.parts:
            raise ValueError("parts: Part A (the double-blind part) is missing")
        return self

    @property
    def part_a(self) -> Part:
        """Part A (double-blind): study days ``first_day``..``last_day``."""
        return self.parts["A"]


def validate(section: Mapping[str, Any]) -> Protocol:
    """The typed parameters of ``[protocol]`` (raises pydantic's ValidationError naming each key).

    The 71 joints are the JOINT codelist of study.toml (one source per fact); ``[protocol.joints]``
    holds only the subsets.
    """
    data = dict(section)
    joints = dict(data.get("joints") or {})
    if "all" in joints:
        raise ValueError("joints.all: the 71 joints are the JOINT codelist; remove joints.all")
    codelists = read_definition(Path(__file__).with_name("study.toml")).codelists
    joints["all"] = tuple(codelists["JOINT"].codes) if "JOINT" in codelists else ()
    data["joints"] = joints
    protocol = Protocol.model_validate(data)
    visits = set(codelists["VISIT"].codes) if "VISIT" in codelists else set()
    for name, chosen in (("diary.before_visits", protocol.diary.before_visits),
                         ("analysis.taper_visits", protocol.analysis.taper_visits),
                         ("analysis.response_visits", protocol.analysis.response_visits),
                         ("analysis.nsaid_visits", protocol.analysis.nsaid_visits)):
        unknown = sorted(set(chosen) - visits)
        if unknown:
            raise ValueError(f"{name}: not visits of [[visits]]: {', '.join(unknown)}")
    arms = {arm.code for arm in read_definition(Path(__file__).with_name("study.toml")).typed.arms}
    for code, part in protocol.parts.items():
        if part.open_label_arm is not None and part.open_label_arm not in arms:
            raise ValueError(f"parts.{code}.open_label_arm: {part.open_label_arm!r} is not an arm of [[arms]] "
                             f"({', '.join(sorted(arms))})")
    return protocol
