"""Only regular files are read as uploads: never a symbolic link, folder, device, FIFO or socket.

An upload path comes from outside. A symbolic link named ``site02.xlsx`` may point at
``/etc/shadow``; a FIFO blocks the reader for ever; a device never ends. :func:`not_regular` says
why a path is not a regular file (from ``os.lstat``, so a link is judged itself, never followed),
and :func:`open_regular` opens one without following a link (``O_NOFOLLOW``) and without blocking
on a FIFO (``O_NONBLOCK``), then checks again on the open handle, so a file swapped for a link
between the check and the open is refused too.

Example::

    >>> not_regular("/dev/null")
    'is a character device, not a regular file'
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

NOT_REGULAR_CODE = "IMP-FILE-NOT-REGULAR"

_KINDS = (
    (stat.S_ISLNK, "is a symbolic link"),
    (stat.S_ISDIR, "is a folder"),
    (stat.S_ISFIFO, "is a FIFO (named pipe)"),
    (stat.S_ISCHR, "is a character device"),
    (stat.S_ISBLK, "is a block device"),
    (stat.S_ISSOCK, "is a socket"),
)


def _kind(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    for test, text in _KINDS:
        if test(mode):
            return f"{text}, not a regular file"
    return "is not a regular file"


def not_regular(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` is not a regular file (None when it is one, or when it does not exist: the
    caller's own open reports that)."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    return _kind(mode)


def refusal_message(path: str | os.PathLike[str], reason: str) -> str:
    """The message of a refused upload: what it is and what to send instead."""
    return (f"{path}: {reason}; trialkit reads only regular files — send the data file itself "
            "(not a link, folder, device or pipe)")


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a regular file for reading without following a link or blocking on a FIFO.

    Raises :class:`OSError` (``errno`` ``ELOOP``/``EINVAL``) naming why when it is not one.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    descriptor = os.open(Path(path), flags)
    try:
        reason = _kind(os.fstat(descriptor).st_mode)
        if reason is not None:
            raise OSError(22, reason, str(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise
