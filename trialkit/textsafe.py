"""User text shown safely: control characters escaped, so a name can never forge a line of output.

File names, notes, operators, labels and values come from outside. Shown raw, a newline in an
upload's file name would start a new line of ``trialkit log`` that looks like a real audit line, and
an escape sequence would recolour or erase the terminal. :func:`printable` shows every control,
format and line-separator character as a visible escape (``\\n``, ``\\x1b``, ``\\u2028``) and leaves
all other text — accents, CJK, emoji — as it is.

    >>> printable("site01.xlsx\\n  999  forged")
    'site01.xlsx\\\\n  999  forged'
"""

from __future__ import annotations

import unicodedata

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(value: object) -> str:
    """``value`` as text with control, format and separator characters escaped (None → "")."""
    if value is None:
        return ""
    text = str(value)
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char.isprintable() or char == " ":
            out.append(char)
        elif char in _NAMED:
            out.append(_NAMED[char])
        elif unicodedata.category(char) in ("Zs",):
            out.append(char)
        else:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)
