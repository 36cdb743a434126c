"""Numbers as a person writes them in a message: ``30.2 %``, not ``30.182926829268293 %``.

A rule's message is filled with the values of the offending record (``{PCTMISSED}``): a value as
recorded (36.6, 0.0045) is shown as recorded, while a computed one — a ratio, a percentage, a mean
with many digits — is rounded the way a person would write it. The exact value stays in the
finding's evidence.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

#: A value with more decimals than this (in its shortest form) was computed, not recorded: rounded.
RECORDED_DECIMALS = 4


def format_number(value: Any, decimals: int | None = None) -> str:
    """``value`` as text for a message.

    Whole numbers lose their ``.0``; with ``decimals`` the value is rounded to that many places
    (trailing zeros kept, as a table shows them). Otherwise a value of at most
    :data:`RECORDED_DECIMALS` decimals is shown as it is, and a longer one is rounded: one decimal
    from 10 up, two from 1 up, two significant digits below 1.

    >>> format_number(30.182926829268293)
    '30.2'
    >>> format_number(2.3333333333333335), format_number(0.012345678), format_number(36.6)
    ('2.33', '0.012', '36.6')
    >>> format_number(20.0), format_number(7), format_number(12.25, decimals=1)
    ('20', '7', '12.2')
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        return str(value)
    number = float(value)
    if math.isnan(number) or math.isinf(number):
        return str(value)
    if decimals is not None:
        return f"{number:.{decimals}f}"
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    shortest = Decimal(repr(number))
    if -shortest.as_tuple().exponent <= RECORDED_DECIMALS:
        return format(shortest.normalize(), "f")
    magnitude = abs(number)
    if magnitude >= 10:
        places = 1
    elif magnitude >= 1:
        places = 2
    else:
        places = max(2, 1 - math.floor(math.log10(magnitude)))
    text = f"{number:.{places}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
