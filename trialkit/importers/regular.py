"""Refuse an upload that is not a regular file before anything opens it (see :mod:`trialkit.safefiles`)."""

from __future__ import annotations

from pathlib import Path

from trialkit.importers.detect import FileRead
from trialkit.safefiles import NOT_REGULAR_CODE, not_regular, refusal_message


def regular_file_refusal(path: Path) -> FileRead | None:
    """A :class:`FileRead` with one ``file`` error when ``path`` is a link, folder, device, FIFO or
    socket (nothing is opened or followed); None for a regular file (or one that does not exist)."""
    reason = not_regular(path)
    if reason is None:
        return None
    result = FileRead(path=str(path), format="not-regular")
    result.fail(NOT_REGULAR_CODE, refusal_message(path, reason))
    return result
