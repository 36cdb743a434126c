"""Pure clinical formulas of paediatric and adult rheumatology trials: the public scores API.

Every formula of ``shared/protocol/DERIVATIONS.md`` that turns a handful of values into a score,
a response or a flag lives here, one function each, with no I/O and no pandas: the derivation code
applies these functions row by row, and external reviewers can check them by hand.

Exact-arithmetic policy
-----------------------
Clinical values are typed as decimals (a VAS with one decimal, CHAQ in eighths), and binary floating
point misclassifies exact boundaries: PhGA 7.0 -> 4.9 is exactly -30 % but computes as
-29.999999999999993 % in floats. Therefore:

* Every input is converted from its *text*: ``Decimal(str(x))`` for ints, floats and strings (so the
  float ``4.9`` means exactly 4.9); ``Decimal`` and ``Fraction`` are taken as they are.
* Every comparison against a threshold is made on exact rationals (``fractions.Fraction``), never on
  floats.
* ``None``, NaN, pandas ``NA``/``NaT`` (anything where ``x != x``) and the empty string are *missing*.
  Any other text that is not a number (``"ND"``, ``"4,9"``) raises ``ValueError``: turning a site's
  missing-value code into a missing value is the caller's decision, not a silent one made here.
* DAS28 needs square roots and logarithms; they are computed in ``decimal`` at 28 significant digits
  (``Decimal.sqrt``/``Decimal.ln`` are correctly rounded) and then rounded.
* Reported scores are ``decimal.Decimal`` rounded half-up (away from zero on a tie): DAS28 and the
  JADAS family to 2 decimals, CHAQ/HAQ DI to 3.
* ``None`` as a result means *undetermined*. Where a rule is three-valued (responses, MAS, acute
  phase), a definite answer is returned whenever the missing values cannot change it.

Choices marked "(protocol decision)" in DERIVATIONS.md are keyword-only parameters whose default is
the protocol's choice, so that a statistical analysis plan can change them.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation, localcontext
from fractions import Fraction
from types import MappingProxyType
from typing import Literal, NamedTuple

__all__ = [
    "ACR_PEDI_LEVELS",
    "ACR_PEDI_VARIABLES",
    "CHAQ_DOMAINS",
    "ChaqDomain",
    "acr_pedi",
    "acr_pedi_components",
    "acute_phase_ok",
    "adapted_acr_pedi",
    "anakinra_dose_window",
    "chaq_di",
    "chaq_domain_score",
    "clinical_inactive_disease",
    "das28_category",
    "das28_crp",
    "das28_esr",
    "eular_response",
    "fahrenheit_to_celsius",
    "fever_free",
    "fever_points",
    "jadas",
    "mas_2016",
    "msms",
    "percent_change",
    "round_half_up",
    "sjadas10",
    "taper_success",
    "to_decimal",
]

#: Significant digits for the inexact steps (sqrt, ln, non-terminating division).
PRECISION = 28

Number = Decimal | Fraction | int | float | str
"""What the functions accept as a number: also numeric strings; None/NaN mean missing."""

Flag = bool | str | int | None
"""A yes/no input: True/False, "Y"/"N" (any case), 1/0; None/NaN/"" mean missing."""


# --------------------------------------------------------------------------------------------
# Conversion helpers
# --------------------------------------------------------------------------------------------


def _is_missing(value: object) -> bool:
    """True for None, the empty string and anything not equal to itself (NaN, NaT, pandas NA)."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    try:
        return bool(value != value)
    except TypeError:
        # pandas.NA: `NA != NA` is NA, whose truth value raises TypeError.
        return True


def _is_boolean(value: object) -> bool:
    # numpy.bool_ is not a subclass of bool; recognise it by its dtype without importing numpy.
    return isinstance(value, bool) or getattr(getattr(value, "dtype", None), "kind", "") == "b"


#: Exact values of the floats seen so far: datasets repeat the same few values many times over.
_FLOAT_EXACT: dict[float, Fraction] = {}
_FLOAT_EXACT_SIZE = 1 << 16


def _exact(value: object, name: str = "value") -> Fraction | None:
    """The exact rational value of ``value`` (from its text), or None when it is missing."""
    if value is None:
        return None
    kind = type(value)
    if kind is float or isinstance(value, float):  # numpy.float64 is a float, with the same shortest text
        value = float(value)  # type: ignore[arg-type]
        number = _FLOAT_EXACT.get(value)  # the common case, remembered (0.0 and -0.0 are both exactly 0)
        if number is not None:
            return number
        if value != value:
            return None
        number = _exact_slow(value, name)
        if len(_FLOAT_EXACT) < _FLOAT_EXACT_SIZE:
            _FLOAT_EXACT[value] = number  # type: ignore[index]
        return number
    if kind is int:
        return Fraction(value)  # type: ignore[arg-type]
    if kind is Fraction:
        return value  # type: ignore[return-value]
    if getattr(getattr(value, "dtype", None), "kind", "") in ("i", "u"):  # a numpy integer
        return Fraction(int(value))  # type: ignore[call-overload]
    return _exact_slow(value, name)


def _exact_slow(value: object, name: str) -> Fraction | None:
    if _is_missing(value):
        return None
    if _is_boolean(value):
        raise TypeError(f"{name}: expected a number, got the boolean {value!r}")
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, Decimal):
        number = value
    else:
        # str() of a float is its shortest round-trip text, so 4.9 becomes exactly 4.9.
        text = str(value).strip()
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValueError(
                f"{name}: {value!r} is not a number; pass None for a missing value"
            ) from None
    if number.is_nan():
        return None
    if not number.is_finite():
        raise ValueError(f"{name}: {value!r} is not a finite number")
    return Fraction(number)


def _non_negative(value: object, name: str) -> Fraction | None:
    number = _exact(value, name)
    if number is not None and number < 0:
        raise ValueError(f"{name}: {value!r} is negative; it must be 0 or more")
    return number


def _count(value: object, name: str) -> Fraction | None:
    number = _non_negative(value, name)
    if number is not None and number.denominator != 1:
        raise ValueError(f"{name}: {value!r} is not a whole number of joints/points")
    return number


def _flag(value: object, name: str) -> bool | None:
    """A yes/no value as bool; None when missing."""
    if _is_missing(value):
        return None
    if _is_boolean(value):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().upper()
        if text in ("Y", "N"):
            return text == "Y"
    elif isinstance(value, numbers.Integral) and int(value) in (0, 1):
        return bool(int(value))
    raise ValueError(f"{name}: {value!r} is not a yes/no value (True/False, 'Y'/'N')")


def _to_decimal_exact(number: Fraction) -> Decimal:
    """A Fraction as Decimal: exact when it terminates within PRECISION digits."""
    if number.denominator == 1:
        return Decimal(number.numerator)
    with localcontext() as ctx:
        ctx.prec = PRECISION
        return Decimal(number.numerator) / Decimal(number.denominator)


def _all(*values: bool | None) -> bool | None:
    """Three-valued AND: False if any is False, else None if any is None, else True."""
    if any(value is False for value in values):
        return False
    if any(value is None for value in values):
        return None
    return True


def _any(*values: bool | None) -> bool | None:
    """Three-valued OR: True if any is True, else None if any is None, else False."""
    if any(value is True for value in values):
        return True
    if any(value is None for value in values):
        return None
    return False


def _gt(a: Fraction | None, b: Fraction | None) -> bool | None:
    return None if a is None or b is None else a > b


def _le(a: Fraction | None, b: Fraction | None) -> bool | None:
    return None if a is None or b is None else a <= b


def _ge(a: Fraction | None, b: Fraction | None) -> bool | None:
    return None if a is None or b is None else a >= b


def _lt(a: Fraction | None, b: Fraction | None) -> bool | None:
    return None if a is None or b is None else a < b


def _threshold(value: object, name: str) -> Fraction:
    number = _exact(value, name)
    if number is None:
        raise ValueError(f"{name}: a threshold cannot be missing")
    return number


def to_decimal(x: object) -> Decimal | None:
    """``x`` as an exact ``Decimal`` built from its text; None when missing.

    Floats are read through ``str()`` (their shortest text), so ``4.9`` is exactly 4.9. A
    ``Fraction`` is converted exactly when its decimal expansion terminates within 28 significant
    digits, else rounded to 28 digits. Text that is not a number raises ``ValueError``.

    >>> to_decimal(4.9)
    Decimal('4.9')
    >>> to_decimal(" 7.0 ")
    Decimal('7.0')
    >>> to_decimal(Fraction(3, 8))
    Decimal('0.375')
    >>> to_decimal(float("nan")) is None, to_decimal(None) is None
    (True, True)
    """
    if isinstance(x, Decimal) and x.is_finite():
        return x
    number = _exact(x, "x")
    if number is None:
        return None
    if isinstance(x, int) or isinstance(x, Fraction):
        return _to_decimal_exact(number)
    return Decimal(str(x).strip())


def round_half_up(x: object, places: int) -> Decimal | None:
    """``x`` rounded to ``places`` decimals, ties away from zero (the clinical convention).

    Rounding is done on the exact value, so ``2.675`` gives ``2.68`` (a float would give 2.67).

    >>> round_half_up("2.675", 2)
    Decimal('2.68')
    >>> round_half_up(Fraction(2, 3), 3)
    Decimal('0.667')
    >>> round_half_up("-1.005", 2)
    Decimal('-1.01')
    >>> round_half_up(3, 2)
    Decimal('3.00')
    """
    key = (type(x), x, places)
    try:
        return _ROUNDED[key]
    except (KeyError, TypeError):  # not seen yet, or not hashable
        pass
    number = _exact(x, "x")
    if number is None:
        return None
    scaled = math.floor(abs(number) * 10**places + Fraction(1, 2))
    if number < 0:
        scaled = -scaled
    with localcontext() as ctx:
        ctx.prec = max(PRECISION, len(str(abs(scaled))) + 1)
        rounded = Decimal(scaled).scaleb(-places)
    if len(_ROUNDED) < _FLOAT_EXACT_SIZE and key[0] in (float, int, Fraction, Decimal):
        _ROUNDED[key] = rounded
    return rounded


#: ``round_half_up`` results by (type, value, places): the type keeps ``True`` apart from ``1``.
_ROUNDED: dict[tuple[type, object, int], Decimal] = {}


def percent_change(b: object, f: object, *, places: int | None = None) -> Decimal | None:
    """Percent change from baseline ``b`` to follow-up ``f``: 100·(f − b)/b.

    None when either value is missing or ``b`` is 0 (undefined; the ACR Pedi rule treats a zero
    baseline separately). Exact when the result terminates, else 28 significant digits; with
    ``places`` it is rounded half-up. Threshold decisions in this module never use this rounded
    value: they compare the exact fraction.

    >>> percent_change("7.0", "4.9")
    Decimal('-30')
    >>> percent_change(10, 13)
    Decimal('30')
    >>> percent_change(3, 4, places=1)
    Decimal('33.3')
    >>> percent_change(0, 1) is None
    True
    """
    change = _percent_change(_exact(b, "b"), _exact(f, "f"))
    if change is None:
        return None
    if places is not None:
        return round_half_up(change, places)
    return _to_decimal_exact(change)


def _percent_change(b: Fraction | None, f: Fraction | None) -> Fraction | None:
    if b is None or f is None or b == 0:
        return None
    return 100 * (f - b) / b


def fahrenheit_to_celsius(t: object) -> Decimal | None:
    """Degrees Fahrenheit to Celsius: (F − 32)·5/9; None when missing.

    Exact when the result terminates (100.4 °F is exactly 38 °C); otherwise 28 significant
    digits, which can never land on the other side of a threshold with few decimals.

    >>> fahrenheit_to_celsius("100.4")
    Decimal('38')
    >>> fahrenheit_to_celsius(99.5)
    Decimal('37.5')
    """
    fahrenheit = _exact(t, "t")
    if fahrenheit is None:
        return None
    return _to_decimal_exact((fahrenheit - 32) * Fraction(5, 9))


# --------------------------------------------------------------------------------------------
# DAS28 and EULAR response (adults)
# --------------------------------------------------------------------------------------------

_DAS28_REMISSION_BELOW = Fraction("2.6")
_DAS28_LOW_BELOW = Fraction("3.2")
_DAS28_MODERATE_UP_TO = Fraction("5.1")


def _das28(
    tjc28: object,
    sjc28: object,
    lab: Fraction | None,
    gh: object,
    lab_term: Callable[[Decimal], Decimal],
    *,
    with_gh: tuple[Decimal, Decimal],
    without_gh: tuple[Decimal, Decimal],
    places: int | None,
) -> Decimal | None:
    tender = _count(tjc28, "tjc28")
    swollen = _count(sjc28, "sjc28")
    global_health = _non_negative(gh, "gh")
    if tender is None or swollen is None or lab is None:
        return None
    with localcontext() as ctx:
        ctx.prec = PRECISION
        core = (
            Decimal("0.56") * _to_decimal_exact(tender).sqrt()
            + Decimal("0.28") * _to_decimal_exact(swollen).sqrt()
            + lab_term(_to_decimal_exact(lab))
        )
        if global_health is None:
            factor, constant = without_gh
            raw = core * factor + constant
        else:
            gh_coefficient, constant = with_gh
            raw = core + gh_coefficient * _to_decimal_exact(global_health) + constant
    return raw if places is None else round_half_up(raw, places)


def das28_esr(
    tjc28: object,
    sjc28: object,
    esr: object,
    gh: object = None,
    *,
    esr_zero_as: Number = 1,
    places: int | None = 2,
) -> Decimal | None:
    """DAS28 with ESR (Prevoo 1995; das-score.nl), rounded half-up to 2 decimals.

    DAS28-ESR = 0.56·√TJC28 + 0.28·√SJC28 + 0.70·ln(ESR) + 0.014·GH; without GH (``gh`` None or
    missing) the three-variable form DAS28-ESR(3) = (0.56·√TJC28 + 0.28·√SJC28 + 0.70·ln(ESR))·1.08
    + 0.16. GH is the patient's global health, 0–100 mm (``PTGH``).

    An ESR of exactly 0 is taken as ``esr_zero_as`` = 1 mm/h (protocol decision: ln 0 is
    undefined). Computed at 28 significant digits; ``places=None`` returns the unrounded value.
    A missing joint count or ESR gives None. Negative inputs raise ``ValueError``.

    >>> das28_esr(4, 5, 7, 50)
    Decimal('3.81')
    >>> das28_esr(0, 0, 0, 0)   # ESR 0 taken as 1: ln 1 = 0
    Decimal('0.00')
    >>> das28_esr(4, 5, 7)      # DAS28-ESR(3)
    Decimal('3.52')
    """
    rate = _non_negative(esr, "esr")
    if rate == 0:
        rate = _threshold(esr_zero_as, "esr_zero_as")
    return _das28(
        tjc28,
        sjc28,
        rate,
        gh,
        lambda value: Decimal("0.70") * value.ln(),
        with_gh=(Decimal("0.014"), Decimal(0)),
        without_gh=(Decimal("1.08"), Decimal("0.16")),
        places=places,
    )


def das28_crp(
    tjc28: object,
    sjc28: object,
    crp: object,
    gh: object = None,
    *,
    places: int | None = 2,
) -> Decimal | None:
    """DAS28 with CRP in mg/L (Prevoo 1995; das-score.nl), rounded half-up to 2 decimals.

    DAS28-CRP = 0.56·√TJC28 + 0.28·√SJC28 + 0.36·ln(CRP + 1) + 0.014·GH + 0.96; without GH the
    three-variable form DAS28-CRP(3) = (0.56·√TJC28 + 0.28·√SJC28 + 0.36·ln(CRP + 1))·1.10 + 1.15.
    Computed at 28 significant digits; ``places=None`` returns the unrounded value. A missing joint
    count or CRP gives None. Negative inputs raise ``ValueError``.

    >>> das28_crp(4, 5, 7, 50)
    Decimal('4.15')
    >>> das28_crp(4, 5, 7)      # DAS28-CRP(3)
    Decimal('3.89')
    """
    level = _non_negative(crp, "crp")
    return _das28(
        tjc28,
        sjc28,
        None if level is None else level + 1,
        gh,
        lambda value: Decimal("0.36") * value.ln(),
        with_gh=(Decimal("0.014"), Decimal("0.96")),
        without_gh=(Decimal("1.10"), Decimal("1.15")),
        places=places,
    )


def das28_category(das28: object) -> Literal["remission", "low", "moderate", "high"] | None:
    """DAS28 disease activity (Prevoo 1995; EULAR): the value is compared exactly as given.

    remission < 2.6; low 2.6 to < 3.2; moderate 3.2 to ≤ 5.1; high > 5.1. None when missing.

    >>> [das28_category(x) for x in ("2.59", "2.6", "3.2", "5.1", "5.11")]
    ['remission', 'low', 'moderate', 'moderate', 'high']
    """
    score = _exact(das28, "das28")
    if score is None:
        return None
    if score < _DAS28_REMISSION_BELOW:
        return "remission"
    if score < _DAS28_LOW_BELOW:
        return "low"
    if score <= _DAS28_MODERATE_UP_TO:
        return "moderate"
    return "high"


def eular_response(
    baseline_das28: object, followup_das28: object
) -> Literal["good", "moderate", "none"] | None:
    """EULAR response (van Gestel 1996, on DAS28 after Prevoo 1995).

    Both values are first rounded half-up to 2 decimals; Δ = baseline − follow-up:

    ==================  ========  ===============  ========
    follow-up DAS28     Δ > 1.2   0.6 < Δ ≤ 1.2    Δ ≤ 0.6
    ==================  ========  ===============  ========
    ≤ 3.2               good      moderate         none
    > 3.2 and ≤ 5.1     moderate  moderate         none
    > 5.1               moderate  none             none
    ==================  ========  ===============  ========

    Either value missing gives None.

    >>> eular_response("4.40", "3.20")   # Δ exactly 1.20 (1.2000000000000002 in floats)
    'moderate'
    >>> eular_response(5.21, 1.8)
    'good'
    >>> eular_response(7.46, 6.19)
    'moderate'
    """
    baseline = _exact(round_half_up(baseline_das28, 2), "baseline_das28")
    followup = _exact(round_half_up(followup_das28, 2), "followup_das28")
    if baseline is None or followup is None:
        return None
    delta = baseline - followup
    large = delta > Fraction("1.2")
    medium = Fraction("0.6") < delta <= Fraction("1.2")
    if followup <= _DAS28_LOW_BELOW:
        return "good" if large else "moderate" if medium else "none"
    if followup <= _DAS28_MODERATE_UP_TO:
        return "moderate" if (large or medium) else "none"
    return "moderate" if large else "none"


# --------------------------------------------------------------------------------------------
# JADAS family and the systemic manifestation score
# --------------------------------------------------------------------------------------------


def _esr_component(esr: Fraction) -> Fraction:
    return (min(max(esr, Fraction(20)), Fraction(120)) - 20) / 10


def jadas(
    phga: object,
    paga: object,
    active_joints: object,
    esr: object = None,
    cap: object = None,
) -> Decimal | None:
    """Juvenile Arthritis Disease Activity Score (Consolaro 2009), 2 decimals.

    JADAS = PhGA + PaGA + min(active joints, cap) + ESR component, where the ESR component is
    (clamp(ESR, 20, 120) − 20)/10 (0 to 10). With ``active_joints`` = AJC71 / AJC27 this is JADAS-71
    / JADAS-27; ``cap=10`` gives JADAS-10.

    ``esr=None`` (the literal default) gives the *clinical* JADAS (cJADAS, no ESR term). Any other
    missing marker for ESR (NaN, pandas NA, "") means an ESR was wanted but is missing, and the
    result is None. Any other missing input also gives None. Negative inputs raise ``ValueError``.

    >>> jadas("2.5", "3.0", 12, 35, cap=10)    # 2.5 + 3.0 + 10 + (35 − 20)/10
    Decimal('17.00')
    >>> jadas("2.5", "3.0", 12, cap=10)        # cJADAS-10
    Decimal('15.50')
    >>> jadas(1, 1, 0, 10)                     # ESR below 20 contributes 0
    Decimal('2.00')
    """
    physician = _non_negative(phga, "phga")
    parent = _non_negative(paga, "paga")
    joints = _count(active_joints, "active_joints")
    joint_cap = _count(cap, "cap")
    if physician is None or parent is None or joints is None:
        return None
    if joint_cap is not None:
        joints = min(joints, joint_cap)
    total = physician + parent + joints
    if esr is not None:
        rate = _non_negative(esr, "esr")
        if rate is None:
            return None
        total += _esr_component(rate)
    return round_half_up(total, 2)


def fever_points(t: object) -> int | None:
    """mSMS fever points from the highest temperature T in °C (Tibaldi 2020).

    T ≤ 37.5: 0; 37.5 < T ≤ 38: 1; 38 < T ≤ 39: 2; 39 < T ≤ 40: 3; T > 40: 4. None when missing.

    >>> [fever_points(t) for t in ("37.5", "37.6", "38.0", "39.0", "40.0", "40.1")]
    [0, 1, 1, 2, 3, 4]
    """
    temperature = _exact(t, "t")
    if temperature is None:
        return None
    for points, upper in enumerate(("37.5", "38", "39", "40")):
        if temperature <= Fraction(upper):
            return points
    return 4


def msms(
    max_temp_c: object,
    rash: Flag,
    lymph: Flag,
    hepspl: Flag,
    serositis: Flag,
    hgb_g_dl: object,
    platelets: object,
    ferritin: object,
) -> int | None:
    """Modified systemic manifestation score, mSMS 0–10 (Tibaldi 2020; Rosina 2024).

    mSMS = fever points of the highest temperature (see :func:`fever_points`, 0–4) + 1 each for
    evanescent rash, generalised lymphadenopathy, hepato- and/or splenomegaly, serositis
    (True/False or "Y"/"N") + 1 for haemoglobin < 9 g/dL + 1 for platelets > 600 × 10⁹/L or ferritin
    > 500 ng/mL.

    Missing values: the score is None (undetermined) whenever a missing input could change it —
    a missing component is never counted as 0. The one exception is the platelets-or-ferritin
    point, which is decided by either value alone when that value exceeds its threshold. Which
    temperature to pass (the highest diary temperature in V−7..V−1, else the visit ``TEMP``:
    protocol decision) is the caller's choice.

    >>> msms("39.2", "Y", "N", "N", "N", "8.5", "450", "1200")   # 3 + 1 + 1 + 1
    6
    >>> msms("36.8", "N", "N", "N", "N", "12", "700", None)      # platelets alone decide
    1
    >>> msms("36.8", "N", "N", "N", "N", None, "300", "100") is None
    True
    """
    components: list[int | None] = [fever_points(max_temp_c)]
    for name, value in (
        ("rash", rash),
        ("lymph", lymph),
        ("hepspl", hepspl),
        ("serositis", serositis),
    ):
        present = _flag(value, name)
        components.append(None if present is None else int(present))
    anaemia = _lt(_non_negative(hgb_g_dl, "hgb_g_dl"), Fraction(9))
    components.append(None if anaemia is None else int(anaemia))
    thrombocytosis_or_hyperferritinaemia = _any(
        _gt(_non_negative(platelets, "platelets"), Fraction(600)),
        _gt(_non_negative(ferritin, "ferritin"), Fraction(500)),
    )
    components.append(
        None
        if thrombocytosis_or_hyperferritinaemia is None
        else int(thrombocytosis_or_hyperferritinaemia)
    )
    if any(component is None for component in components):
        return None
    return sum(component for component in components if component is not None)


def sjadas10(
    phga: object, paga: object, active_joints: object, esr: object, msms: object
) -> Decimal | None:
    """Systemic JADAS-10 (Tibaldi 2020; Rosina 2024): JADAS-10 + mSMS, 0–50, 2 decimals.

    JADAS-10 = PhGA + PaGA + min(active joints, 10) + (clamp(ESR, 20, 120) − 20)/10; ``msms`` is the
    score from :func:`msms`. Here ESR is required: any missing input (ESR included) gives None.

    >>> sjadas10("4.0", "5.5", 3, 48, 6)   # 4.0 + 5.5 + 3 + 2.8 + 6
    Decimal('21.30')
    >>> sjadas10("4.0", "5.5", 3, None, 6) is None
    True
    """
    systemic = _count(msms, "msms")
    if systemic is None or _exact(esr, "esr") is None:
        return None
    base = jadas(phga, paga, active_joints, esr, cap=10)
    if base is None:
        return None
    return round_half_up(Fraction(base) + systemic, 2)


# --------------------------------------------------------------------------------------------
# CHAQ / HAQ disability index
# --------------------------------------------------------------------------------------------


class ChaqDomain(NamedTuple):
    """The CRF variables of one CHAQ domain: its items and its aid-or-help flag."""

    items: tuple[str, ...]
    aid_flag: str


#: CHAQ domain → item variable names and aid-or-help flag name, in the questionnaire's order.
CHAQ_DOMAINS: Mapping[str, ChaqDomain] = MappingProxyType(
    {
        domain: ChaqDomain(tuple(f"{prefix}{i}" for i in range(1, n + 1)), f"{prefix}AH")
        for domain, prefix, n in (
            ("dressing", "DRESS", 4),
            ("arising", "ARISE", 2),
            ("eating", "EAT", 3),
            ("walking", "WALK", 2),
            ("hygiene", "HYG", 5),
            ("reach", "REACH", 4),
            ("grip", "GRIP", 5),
            ("activities", "ACT", 5),
        )
    }
)

_CHAQ_AID_FLOOR = 2


def _chaq_score(value: object, name: str) -> int | None:
    if isinstance(value, str) and value.strip().upper() == "NA":
        return None  # the CHAQ codelist's "not answered / not applicable"
    score = _exact(value, name)
    if score is None:
        return None
    if score.denominator != 1 or not 0 <= score <= 3:
        raise ValueError(f"{name}: {value!r} is not a CHAQ score 0, 1, 2 or 3")
    return int(score)


def chaq_domain_score(items: Iterable[object], aid_or_help: Flag = False) -> int | None:
    """One CHAQ/HAQ domain score (Singh 1994, after Fries 1980).

    The highest answered item (0–3); ``"NA"``, None or NaN items are unanswered, and a domain with
    no answered item is unanswered (None). An answered domain whose aid-or-help flag is set
    (True or "Y") scores at least 2; the flag on an unanswered domain has no effect.

    >>> chaq_domain_score([0, 1, "NA", None], aid_or_help="N")
    1
    >>> chaq_domain_score([0, 1], aid_or_help="Y")
    2
    >>> chaq_domain_score(["NA", None], aid_or_help=True) is None
    True
    """
    answered = [
        score
        for position, item in enumerate(items, start=1)
        if (score := _chaq_score(item, f"item {position}")) is not None
    ]
    if not answered:
        return None
    score = max(answered)
    if _flag(aid_or_help, "aid_or_help"):
        score = max(score, _CHAQ_AID_FLOOR)
    return score


def _aid_domains(aid_or_help: Iterable[str] | Mapping[str, Flag] | str) -> set[str]:
    if isinstance(aid_or_help, str):
        names = {aid_or_help}
    elif isinstance(aid_or_help, Mapping):
        names = {name for name, flag in aid_or_help.items() if _flag(flag, str(name))}
    else:
        names = set(aid_or_help)
    unknown = sorted(map(str, names - set(CHAQ_DOMAINS)))
    if unknown:
        raise ValueError(
            f"aid_or_help: unknown CHAQ domain(s) {', '.join(unknown)}; "
            f"expected {', '.join(CHAQ_DOMAINS)}"
        )
    return names


def chaq_di(
    domain_scores: Mapping[str, int | None],
    aid_or_help: Iterable[str] = (),
    *,
    min_domains: int = 6,
) -> Decimal | None:
    """CHAQ (or HAQ) disability index (Singh 1994, after Fries 1980), 3 decimals.

    ``domain_scores`` maps domain names (dressing arising eating walking hygiene reach grip
    activities) to the domain score 0–3, or None / absent when unanswered (see
    :func:`chaq_domain_score` to get a domain score from its items). A domain named in
    ``aid_or_help`` (a collection of names, or a mapping name → flag) scores at least 2 when it is
    answered. DI = mean of the answered domain scores when at least ``min_domains`` = 6 of the 8 are
    answered (protocol decision), else None. Unknown domain names raise ``ValueError``.

    >>> chaq_di({"dressing": 1, "arising": 0, "eating": 0, "walking": 1,
    ...          "hygiene": 2, "reach": 0, "grip": 1, "activities": None})
    Decimal('0.714')
    >>> chaq_di({"dressing": 1, "arising": 0, "eating": 0, "walking": 1,
    ...          "hygiene": 2, "reach": 0}, aid_or_help=["walking"])    # walking 1 -> 2
    Decimal('0.833')
    """
    unknown = sorted(map(str, set(domain_scores) - set(CHAQ_DOMAINS)))
    if unknown:
        raise ValueError(
            f"domain_scores: unknown CHAQ domain(s) {', '.join(unknown)}; "
            f"expected {', '.join(CHAQ_DOMAINS)}"
        )
    aided = _aid_domains(aid_or_help)
    answered: list[int] = []
    for domain in CHAQ_DOMAINS:
        score = _chaq_score(domain_scores.get(domain), domain)
        if score is None:
            continue
        answered.append(max(score, _CHAQ_AID_FLOOR) if domain in aided else score)
    if len(answered) < min_domains:
        return None
    return round_half_up(Fraction(sum(answered), len(answered)), 3)


# --------------------------------------------------------------------------------------------
# ACR Pediatric response and the adapted ACR Pedi (primary endpoint)
# --------------------------------------------------------------------------------------------

#: Core-set keys of :func:`acr_pedi`: PhGA, PaGA, CHAQ DI, AJC71, LOM count, ESR.
ACR_PEDI_VARIABLES = ("phga", "paga", "chaq", "ajc", "lom", "esr")
ACR_PEDI_LEVELS = (30, 50, 70, 90, 100)
_ACR_MIN_IMPROVED = 3
_ACR_MAX_WORSENED = 1

Status = Literal["improved", "worsened", "unchanged", "missing"]
BaselineZero = Literal["worsened", "unchanged", "missing"]


def _check_core_set(values: Mapping[str, object], name: str) -> None:
    unknown = sorted(map(str, set(values) - set(ACR_PEDI_VARIABLES)))
    if unknown:
        raise ValueError(
            f"{name}: unknown core-set key(s) {', '.join(unknown)}; "
            f"expected {', '.join(ACR_PEDI_VARIABLES)}"
        )


def acr_pedi_components(
    baseline: Mapping[str, object],
    followup: Mapping[str, object],
    level: int = 30,
    *,
    worsen_pct: Number = 30,
    baseline_zero: BaselineZero = "worsened",
) -> dict[str, Status]:
    """Status of each ACR Pedi core-set variable at ``level`` (Giannini 1997).

    Percent change p = 100·(f − b)/b, exact. Improved: p ≤ −level. Worsened: p > +``worsen_pct``
    (strict), at every level (protocol decision, default 30). Baseline 0 (protocol decision): f = 0
    is unchanged; f > 0 is ``baseline_zero`` = "worsened" (or "unchanged", or "missing"). A key that
    is absent or missing in either mapping is "missing".

    >>> acr_pedi_components({"phga": "7.0", "esr": 10}, {"phga": "4.9", "esr": 13})["phga"]
    'improved'
    >>> acr_pedi_components({"esr": 0, "lom": 0}, {"esr": 1, "lom": 0})["esr"]
    'worsened'
    """
    _check_core_set(baseline, "baseline")
    _check_core_set(followup, "followup")
    if level not in ACR_PEDI_LEVELS:
        raise ValueError(f"level: {level!r} is not one of {ACR_PEDI_LEVELS}")
    if baseline_zero not in ("worsened", "unchanged", "missing"):
        raise ValueError(f"baseline_zero: {baseline_zero!r} is not worsened/unchanged/missing")
    worsen = _threshold(worsen_pct, "worsen_pct")
    statuses: dict[str, Status] = {}
    for key in ACR_PEDI_VARIABLES:
        b = _non_negative(baseline.get(key), f"baseline[{key!r}]")
        f = _non_negative(followup.get(key), f"followup[{key!r}]")
        if b is None or f is None:
            statuses[key] = "missing"
        elif b == 0:
            statuses[key] = "unchanged" if f == 0 else baseline_zero
        else:
            change = 100 * (f - b) / b
            if change <= -level:
                statuses[key] = "improved"
            elif change > worsen:
                statuses[key] = "worsened"
            else:
                statuses[key] = "unchanged"
    return statuses


def acr_pedi(
    baseline: Mapping[str, object],
    followup: Mapping[str, object],
    level: int = 30,
    *,
    worsen_pct: Number = 30,
    baseline_zero: BaselineZero = "worsened",
) -> bool | None:
    """ACR Pediatric 30/50/70/90/100 response (Giannini 1997).

    Keys of ``baseline``/``followup``: phga, paga, chaq, ajc (AJC71), lom (LOMC), esr; an absent
    key or a missing value is missing. Each variable is improved / worsened / unchanged as in
    :func:`acr_pedi_components` (worsened: > +30 % at every level, protocol decision; baseline 0,
    protocol decision). Responder at ``level``: ≥ 3 improved and ≤ 1 worsened.

    Missing variables (protocol decision): True when improved ≥ 3 and worsened + missing ≤ 1;
    False when improved + missing < 3 or worsened ≥ 2; otherwise None (undetermined).

    >>> b = {"phga": "7.0", "paga": 6, "chaq": "1.5", "ajc": 10, "lom": 8, "esr": 40}
    >>> f = {"phga": "4.9", "paga": 4, "chaq": "1.0", "ajc": 9, "lom": 8, "esr": 52}
    >>> acr_pedi(b, f)          # improved: phga (−30 %), paga, chaq; worsened: esr (+30 %, not more)
    True
    >>> acr_pedi(b, f, level=50)
    False
    >>> acr_pedi(b, {**f, "chaq": None, "esr": None}) is None
    True
    """
    statuses = acr_pedi_components(
        baseline, followup, level, worsen_pct=worsen_pct, baseline_zero=baseline_zero
    )
    improved = sum(status == "improved" for status in statuses.values())
    worsened = sum(status == "worsened" for status in statuses.values())
    missing = sum(status == "missing" for status in statuses.values())
    if improved >= _ACR_MIN_IMPROVED and worsened + missing <= _ACR_MAX_WORSENED:
        return True
    if improved + missing < _ACR_MIN_IMPROVED or worsened > _ACR_MAX_WORSENED:
        return False
    return None


def acute_phase_ok(
    baseline: object,
    followup: object,
    uln: object,
    *,
    fraction_of_baseline: Number = Fraction(1, 2),
) -> bool | None:
    """Acute-phase condition of the adapted ACR Pedi (ANAJIS, Quartier 2011), for CRP or ESR.

    True when follow-up ≤ the upper limit of normal ``uln``, or follow-up ≤ 0.5·baseline
    (``fraction_of_baseline``). A three-valued OR of the two conditions:

    ============  =================  =====================  =======
    follow-up     f ≤ uln            f ≤ 0.5·b              result
    ============  =================  =====================  =======
    missing       (any)              (any)                  None
    known         True               (any, even missing)    True
    known         (any, even miss.)  True                   True
    known         False              False                  False
    known         False or missing   missing or False,      None
                                     not both known
    ============  =================  =====================  =======

    >>> acute_phase_ok(baseline=40, followup=12, uln=15)
    True
    >>> acute_phase_ok(baseline=40, followup=20, uln=15)    # exactly half of baseline
    True
    >>> acute_phase_ok(baseline=None, followup=20, uln=15) is None
    True
    >>> acute_phase_ok(baseline=30, followup=20, uln=15)
    False
    """
    f = _non_negative(followup, "followup")
    if f is None:
        return None
    b = _non_negative(baseline, "baseline")
    limit = _non_negative(uln, "uln")
    half = _threshold(fraction_of_baseline, "fraction_of_baseline")
    return _any(_le(f, limit), _le(f, None if b is None else half * b))


def adapted_acr_pedi(acr_pedi: Flag, fever_free: Flag, crp_ok: Flag, esr_ok: Flag) -> bool | None:
    """Adapted ACR Pedi response, the primary endpoint (after ANAJIS, Quartier 2011).

    Three-valued AND of: the ACR Pedi response at the level (for ADULT subjects: EULAR good or
    moderate on DAS28-ESR), fever-free (:func:`fever_free`), and the CRP and ESR acute-phase
    conditions (:func:`acute_phase_ok`). False if any part is False; else None if any part is
    undetermined (None); else True.

    >>> adapted_acr_pedi(True, True, True, True)
    True
    >>> adapted_acr_pedi(True, None, False, True)
    False
    >>> adapted_acr_pedi(True, None, True, True) is None
    True
    """
    return _all(
        _flag(acr_pedi, "acr_pedi"),
        _flag(fever_free, "fever_free"),
        _flag(crp_ok, "crp_ok"),
        _flag(esr_ok, "esr_ok"),
    )


def fever_free(
    daily_max_temps_c: Sequence[object],
    *,
    window_days: int = 7,
    min_recorded_days: int = 6,
    fever_c: Number = 38,
) -> bool | None:
    """Fever-free part of the adapted ACR Pedi (after ANAJIS, Quartier 2011).

    ``daily_max_temps_c`` holds one value per day of the window V−7..V−1 (``window_days`` = 7),
    the highest diary ``FVTEMP`` in °C (convert °F with :func:`fahrenheit_to_celsius`), None for a
    day not recorded. False when any recorded temperature is ≥ ``fever_c`` = 38.0 °C (fever seen,
    however few days are recorded); True when at least ``min_recorded_days`` = 6 days are recorded
    and all are below 38.0; otherwise None (too few days to tell).

    >>> fever_free(["37.2", "36.9", None, "37.9", "37.0", "36.8", "37.1"])
    True
    >>> fever_free(["37.2", "38.0", None, None, None, None, None])
    False
    >>> fever_free(["37.2", "37.0", None, None, "37.0", "36.8", "37.1"]) is None
    True
    """
    if len(daily_max_temps_c) != window_days:
        raise ValueError(
            f"daily_max_temps_c: {len(daily_max_temps_c)} values given; expected one per day "
            f"of the {window_days}-day window (None for a day not recorded)"
        )
    threshold = _threshold(fever_c, "fever_c")
    recorded = [
        temperature
        for day, value in enumerate(daily_max_temps_c, start=1)
        if (temperature := _exact(value, f"day {day}")) is not None
    ]
    if any(temperature >= threshold for temperature in recorded):
        return False
    if len(recorded) >= min_recorded_days:
        return True
    return None


def clinical_inactive_disease(
    ajc: object,
    fever: Flag,
    rash: Flag,
    serositis: Flag,
    hepspl: Flag,
    lymph: Flag,
    esr: object,
    esr_uln: object,
    crp: object,
    crp_uln: object,
    phga: object,
) -> bool | None:
    """Clinical inactive disease (after Wallace 2011, ACR provisional criteria).

    Inactive when all hold: AJC71 = 0; no fever, rash, serositis, hepato/splenomegaly or
    lymphadenopathy (CORE flags "N"); ESR ≤ its ULN and CRP ≤ its ULN; PhGA = 0. Uveitis and
    morning stiffness are not collected in this trial and are not applied (protocol decision).
    Three-valued AND: False as soon as one known criterion fails, None when a criterion is missing
    and none fails.

    >>> clinical_inactive_disease(0, "N", "N", "N", "N", "N", 12, 20, 3, 5, 0)
    True
    >>> clinical_inactive_disease(1, "N", "N", "N", "N", "N", None, 20, 3, 5, 0)
    False
    """
    absent = [
        None if (present := _flag(value, name)) is None else not present
        for name, value in (
            ("fever", fever),
            ("rash", rash),
            ("serositis", serositis),
            ("hepspl", hepspl),
            ("lymph", lymph),
        )
    ]
    joints = _count(ajc, "ajc")
    physician = _non_negative(phga, "phga")
    return _all(
        None if joints is None else joints == 0,
        *absent,
        _le(_non_negative(esr, "esr"), _non_negative(esr_uln, "esr_uln")),
        _le(_non_negative(crp, "crp"), _non_negative(crp_uln, "crp_uln")),
        None if physician is None else physician == 0,
    )


# --------------------------------------------------------------------------------------------
# Macrophage activation syndrome
# --------------------------------------------------------------------------------------------


def mas_2016(
    febrile: Flag,
    ferritin: object,
    platelets: object,
    ast: object,
    triglycerides: object,
    fibrinogen: object,
    *,
    ferritin_above: Number = 684,
    platelets_at_most: Number = 181,
    ast_above: Number = 48,
    triglycerides_above: Number = 156,
    fibrinogen_at_most: Number = 360,
    min_lab_criteria: int = 2,
) -> bool | None:
    """MAS classification in sJIA (Ravelli 2016, EULAR/ACR/PRINTO).

    A febrile subject is classified as MAS when ferritin > 684 ng/mL and at least 2 of:
    platelets ≤ 181 × 10⁹/L, AST > 48 U/L, triglycerides > 156 mg/dL, fibrinogen ≤ 360 mg/dL (all
    from the same sample; inequalities exactly as published). Not febrile → False (not
    classified).

    Missing values: a definite answer whenever the missing values cannot change it (e.g. ferritin
    ≤ 684 → False whatever else is missing; ferritin > 684 and two criteria met → True even with
    the other two missing); otherwise None. ``febrile`` None gives None unless the labs already
    give False.

    >>> mas_2016("Y", ferritin=2500, platelets=150, ast=90, triglycerides=None, fibrinogen=None)
    True
    >>> mas_2016("Y", ferritin=684, platelets=100, ast=100, triglycerides=200, fibrinogen=100)
    False
    >>> mas_2016("N", ferritin=5000, platelets=100, ast=100, triglycerides=200, fibrinogen=100)
    False
    >>> mas_2016("Y", 2500, 150, None, None, 400) is None
    True
    """
    criteria = [
        _le(
            _non_negative(platelets, "platelets"),
            _threshold(platelets_at_most, "platelets_at_most"),
        ),
        _gt(_non_negative(ast, "ast"), _threshold(ast_above, "ast_above")),
        _gt(
            _non_negative(triglycerides, "triglycerides"),
            _threshold(triglycerides_above, "triglycerides_above"),
        ),
        _le(
            _non_negative(fibrinogen, "fibrinogen"),
            _threshold(fibrinogen_at_most, "fibrinogen_at_most"),
        ),
    ]
    met = sum(criterion is True for criterion in criteria)
    unknown = sum(criterion is None for criterion in criteria)
    enough: bool | None
    if met >= min_lab_criteria:
        enough = True
    elif met + unknown < min_lab_criteria:
        enough = False
    else:
        enough = None
    hyperferritinaemia = _gt(
        _non_negative(ferritin, "ferritin"), _threshold(ferritin_above, "ferritin_above")
    )
    return _all(_flag(febrile, "febrile"), hyperferritinaemia, enough)


# --------------------------------------------------------------------------------------------
# Corticosteroid taper and study-drug dose
# --------------------------------------------------------------------------------------------


def taper_success(
    start_mg_kg_day: object, end_mg_kg_day: object, response_held: Flag = True
) -> bool | None:
    """Corticosteroid taper success (after the canakinumab trial NCT00889863).

    With s = prednisone-equivalent mg/kg/day at D1 and e = at the visit, success when the response
    holds (adapted ACR Pedi 30 at the visit; ADULT: its adult form) and any of: s > 0.8 and
    e ≤ 0.5; 0.5 ≤ s ≤ 0.8 and s − e ≥ 0.3; e ≤ 0.2.

    Missing values, three-valued: ``response_held`` False → False; a dose condition met with the
    response held → True even if the other dose is missing (e.g. e ≤ 0.2 needs no s); otherwise a
    missing dose or response gives None (undetermined; the caller decides any imputation).
    Negative doses raise ``ValueError``. Whether a subject without steroids at D1 belongs to the
    analysis is the caller's decision (s = 0, e = 0 satisfies e ≤ 0.2).

    >>> taper_success("1.0", "0.5")
    True
    >>> taper_success("0.6", "0.3")     # s − e exactly 0.3
    True
    >>> taper_success("0.4", "0.21")
    False
    >>> taper_success("0.4", "0.1", response_held=False)
    False
    """
    s = _non_negative(start_mg_kg_day, "start_mg_kg_day")
    e = _non_negative(end_mg_kg_day, "end_mg_kg_day")
    high_start = _all(_gt(s, Fraction("0.8")), _le(e, Fraction("0.5")))
    mid_start = _all(
        _ge(s, Fraction("0.5")),
        _le(s, Fraction("0.8")),
        None if s is None or e is None else s - e >= Fraction("0.3"),
    )
    low_end = _le(e, Fraction("0.2"))
    return _all(_flag(response_held, "response_held"), _any(high_start, mid_start, low_end))


def anakinra_dose_window(
    weight_kg: object, *, fixed_dose_from_kg: Number = 50
) -> tuple[int, int] | None:
    """Anakinra daily dose window in mg for weight w kg (the sJIA protocol of Pontikaki 2008).

    w ≥ 50 kg → (100, 100): exactly 50 kg takes 100 mg (``fixed_dose_from_kg``, protocol
    decision). w < 50 → (10·⌊w/10⌋, min(100, 10·⌈2w/10⌉)): 1–2 mg/kg/day on a syringe with 10 mg
    steps, computed exactly from the value's text. Missing weight → None; weight ≤ 0 raises
    ``ValueError``. (Below 10 kg the formula's lower bound is 0 mg.)

    >>> anakinra_dose_window(49), anakinra_dose_window(50), anakinra_dose_window("25.5")
    ((40, 100), (100, 100), (20, 60))
    >>> anakinra_dose_window(15)
    (10, 30)
    """
    weight = _exact(weight_kg, "weight_kg")
    if weight is None:
        return None
    if weight <= 0:
        raise ValueError(f"weight_kg: {weight_kg!r} is not a positive weight in kg")
    if weight >= _threshold(fixed_dose_from_kg, "fixed_dose_from_kg"):
        return (100, 100)
    return (10 * math.floor(weight / 10), min(100, 10 * math.ceil(2 * weight / 10)))
