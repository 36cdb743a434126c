"""Outputs never destroy inputs: the one check every command's ``-o`` goes through.

An output folder of ``trialkit pool`` replaces its target whole, and every other command overwrites
the file it is given. Before anything is written, :func:`check_output_folder` and
:func:`check_output_file` refuse (:class:`OutputRefused`, a usage error: exit code 2) a target that
would destroy something trialkit keeps or did not make:

- the workspace folder, its ledger (``ledger.sqlite`` and its journal files), its settings file or
  anything in its raw-upload archive, and a folder that contains a workspace;
- anything else inside a workspace, except trialkit's own output folders directly in it (such as
  ``pooled/`` or ``pooled-LABEL/``): no stray file goes into the workspace;
- an existing folder trialkit did not create: every output folder trialkit writes holds the marker
  file ``.trialkit-output`` (an empty folder may be used too: there is nothing in it to lose);
- an existing file of another kind, or one trialkit did not write (a site's workbook named as the
  report or a template, a CSV upload named as a findings CSV): HTML reports carry
  ``<meta name="generator" content="trialkit ...">``, workbooks have ``trialkit`` as their creator,
  CSV and text outputs start with the header line trialkit writes; a folder, device, FIFO or link
  to one of the above is refused too;
- a name or path too long for the file system (each name ≤ 255 bytes, the whole ≤ 4096).

The workspaces protected are the one the command works on, ``$TRIALKIT_WORKSPACE``, and any found
at or above the target (or, for an output folder trialkit made, inside it).

Example::

    >>> check_output_file("ws/ledger.sqlite", kind="html", workspace="ws")  # doctest: +SKIP
    Traceback (most recent call last):
    trialkit.outputs.OutputRefused: ws/ledger.sqlite: is the ledger of the workspace ...
"""

from __future__ import annotations

import json
import os
import re
import stat
import zipfile
from collections.abc import Iterable
from pathlib import Path

from trialkit.errors import UsageError

MARKER = ".trialkit-output"
NAME_MAX_BYTES = 255
PATH_MAX_BYTES = 4096
FILE_KINDS = ("html", "xlsx", "json", "jsonl", "csv", "md", "text", "xml", "toml")

_WORKSPACE_FILE = "trialkit-workspace.toml"  # the same names as trialkit.ledger, without importing it
_LEDGER_FILE = "ledger.sqlite"
_ARCHIVE_DIR = "archive"
_ENV_WORKSPACE = "TRIALKIT_WORKSPACE"
_SCAN_LIMIT = 20_000  # entries of an output folder looked through for a workspace inside it


class OutputRefused(UsageError):
    """The output path would destroy an input or something trialkit did not make (exit code 2)."""


# ------------------------------------------------------------------------------------------------
# Paths and workspaces


def too_long(path: str | os.PathLike[str], what: str = "-o") -> str | None:
    """Why a path cannot exist on the file system (a name over 255 bytes, a path over 4096), or None."""
    given = Path(path).expanduser()
    absolute = given if given.is_absolute() else Path.cwd() / given
    for part in absolute.parts:
        size = len(os.fsencode(part))
        if size > NAME_MAX_BYTES:
            return (f"{_short(part)}: this name is too long ({size} bytes; a file or folder name holds at "
                    f"most {NAME_MAX_BYTES}); choose a shorter {what}")
    size = len(os.fsencode(str(absolute)))
    if size > PATH_MAX_BYTES:
        return (f"{_short(str(absolute))}: the path is too long ({size} bytes; at most {PATH_MAX_BYTES}); "
                f"choose a shorter {what}")
    return None


def check_length(path: str | os.PathLike[str], what: str) -> None:
    """UsageError (exit code 2) when ``path`` cannot exist (see :func:`too_long`), before any use."""
    reason = too_long(path, what)
    if reason is not None:
        raise UsageError(reason)


def _checked_path(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``(as given, resolved)``; OutputRefused for a name or path the file system cannot hold."""
    reason = too_long(path)
    if reason is not None:
        raise OutputRefused(reason)
    given = Path(path).expanduser()
    absolute = given if given.is_absolute() else Path.cwd() / given
    try:
        return given, absolute.resolve()
    except (OSError, RuntimeError) as exc:  # a loop of links
        raise OutputRefused(f"{given}: cannot be resolved ({exc}); choose another -o") from exc


def _short(text: str) -> str:
    return text if len(text) <= 80 else text[:40] + "…" + text[-20:]


def _is_workspace(folder: Path) -> bool:
    try:
        return (folder / _WORKSPACE_FILE).is_file() or (folder / _LEDGER_FILE).is_file()
    except OSError:
        return False


def _workspaces(target: Path, workspace: str | os.PathLike[str] | None) -> list[Path]:
    """The workspaces a target must not harm: given, from the environment, and at or above it."""
    found: list[Path] = []
    for candidate in (workspace, os.environ.get(_ENV_WORKSPACE) or None):
        if candidate is not None:
            try:
                found.append(Path(candidate).expanduser().resolve())
            except (OSError, RuntimeError):
                continue
    for folder in (target, *target.parents):
        if _is_workspace(folder):
            found.append(folder)
    unique: list[Path] = []
    for folder in found:
        if folder not in unique and _is_workspace(folder):
            unique.append(folder)
    return unique


def _inside_workspace(given: Path, target: Path, ws: Path, *, folder_output: bool) -> None:
    """Refuse a target at, above or inside workspace ``ws`` (except trialkit's own output folders)."""
    if target == ws:
        raise OutputRefused(f"{given}: is the workspace {ws}; writing there would destroy its ledger and "
                            "raw-upload archive; choose a folder outside it")
    if ws in target.parents or ws == target:
        rel = target.relative_to(ws)
        first = rel.parts[0]
        if first == _ARCHIVE_DIR:
            raise OutputRefused(f"{given}: is in the raw-upload archive of the workspace {ws}; writing there "
                                "would destroy archived uploads; choose a folder outside the workspace")
        if first == _LEDGER_FILE or first.startswith(_LEDGER_FILE + "-"):
            raise OutputRefused(f"{given}: is the ledger of the workspace {ws} (or its journal); writing there "
                                "would destroy the ledger; choose a path outside the workspace")
        if first == _WORKSPACE_FILE:
            raise OutputRefused(f"{given}: is the workspace settings of {ws}; writing there would destroy "
                                "them; choose a path outside the workspace")
        if not folder_output:
            raise OutputRefused(f"{given}: is inside the workspace {ws}, which holds only the ledger, the "
                                "archive and trialkit's output folders; write the file outside the workspace")
        if len(rel.parts) > 1:
            raise OutputRefused(f"{given}: is inside the workspace {ws} below {rel.parts[0]}/; an output folder "
                                "in the workspace must sit directly in it (e.g. pooled-lock); choose one")
    elif target in ws.parents:
        raise OutputRefused(f"{given}: holds the workspace {ws}; replacing it would destroy the ledger and the "
                            "raw-upload archive; choose a folder that does not contain the workspace")


# ------------------------------------------------------------------------------------------------
# Folders


def is_trialkit_folder(folder: Path) -> bool:
    """Whether trialkit made this folder: it holds the marker, or (written before the marker
    existed) exactly the files its ``manifest.json`` lists."""
    if (folder / MARKER).is_file():
        return True
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        listed = set(manifest["files"]) | {"manifest.json"}
        present = {p.name for p in folder.iterdir()}
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return present == listed


def _holds_a_workspace(folder: Path) -> Path | None:
    """A workspace inside ``folder`` (looking through at most :data:`_SCAN_LIMIT` entries)."""
    seen = 0
    for current, dirs, files in os.walk(folder):
        seen += len(dirs) + len(files)
        if _WORKSPACE_FILE in files or _LEDGER_FILE in files:
            return Path(current)
        if seen > _SCAN_LIMIT:
            return None
    return None


def check_output_folder(path: str | os.PathLike[str], *, workspace: str | os.PathLike[str] | None = None,
                        purpose: str = "output folder", in_workspace: bool = True,
                        own_marker: str | None = None) -> Path:
    """The resolved output folder if writing (replacing) it destroys nothing; OutputRefused else.

    ``in_workspace=False`` refuses any folder inside a workspace; ``own_marker`` names another file
    that marks the folder as the command's own (the demo's ``demo.json``), whose content the command
    itself replaces.
    """
    given, target = _checked_path(path)
    for ws in _workspaces(target, workspace):
        _inside_workspace(given, target, ws, folder_output=True)
        if not in_workspace and ws in target.parents:
            raise OutputRefused(f"{given}: is inside the workspace {ws}; the {purpose} must be outside it")
    if os.path.lexists(target):
        mode = os.lstat(target).st_mode
        if not stat.S_ISDIR(mode):
            raise OutputRefused(f"{given}: exists and is not a folder; the {purpose} would destroy it; choose "
                                "a new folder")
        entries = list(target.iterdir())
        if own_marker is not None and (target / own_marker).is_file():
            return target
        if entries:
            inner = _holds_a_workspace(target)
            if inner is not None:
                raise OutputRefused(f"{given}: holds the workspace {inner}; replacing it would destroy the "
                                    "ledger and the raw-upload archive; choose another folder")
            if not is_trialkit_folder(target):
                raise OutputRefused(
                    f"{given}: is a folder trialkit did not create (no {MARKER} marker) and is not empty "
                    f"({len(entries)} item(s)); writing the {purpose} there would destroy them; choose a new "
                    "or empty folder")
    return target


def check_location(path: str | os.PathLike[str], *, workspace: str | os.PathLike[str] | None = None) -> Path:
    """Only the location part of :func:`check_output_file` (length, workspace, archive, ledger): for
    a path from which the files actually written are derived (``q.xlsx`` → ``q_site01.xlsx``)."""
    given, target = _checked_path(path)
    for ws in _workspaces(target, workspace):
        _inside_workspace(given, target, ws, folder_output=False)
    return target


# ------------------------------------------------------------------------------------------------
# Files


def _head(path: Path, size: int = 65536) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(size)


def _text(head: bytes) -> str | None:
    if b"\x00" in head:
        return None
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 4:  # a character cut by the head's end
            return head[:exc.start].decode("utf-8", errors="strict")
        return None


def describe(path: Path) -> str:
    """What an existing file looks like: ``a SQLite database``, ``a workbook``, ``text`` ..."""
    head = _head(path, 8192)
    if head.startswith(b"SQLite format 3\x00"):
        return "a SQLite database"
    if head.startswith(b"PK\x03\x04"):
        return "a workbook" if _zip_has(path, "xl/workbook.xml") else "a zip archive"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "an Office file"
    text = _text(head)
    if text is None:
        return "a binary file"
    stripped = text.lstrip("\ufeff \t\r\n").lower()
    if stripped.startswith(("<!doctype html", "<html")):
        return "an HTML page"
    return "a text file" if stripped else "an empty file"


def _zip_has(path: Path, name: str) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return name in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def _creator(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            core = archive.read("docProps/core.xml").decode("utf-8", errors="replace")
    except (OSError, KeyError, zipfile.BadZipFile):
        return ""
    match = re.search(r"<dc:creator>([^<]*)</dc:creator>", core)
    return match.group(1) if match else ""


def written_by_trialkit(path: Path, kind: str, header: str | re.Pattern[str] | None = None) -> bool:
    """Whether an existing file is trialkit's own output of this kind (so it may be replaced)."""
    if kind == "xlsx":
        return _creator(path).startswith("trialkit")
    head = _head(path)
    text = _text(head)
    if text is None:
        return False
    if not text.strip():
        return True  # an empty file holds nothing to lose
    stripped = text.lstrip("\ufeff")
    first = stripped.splitlines()[0] if stripped else ""
    if kind == "html":
        return '<meta name="generator" content="trialkit' in stripped[:4096]
    if kind in ("json", "jsonl"):
        return stripped.lstrip()[:1] in ("{", "[")
    if kind == "md":
        return stripped.startswith("#")
    if kind == "xml":  # an ODM document trialkit wrote says so on its root element
        return 'Originator="trialkit"' in stripped[:4096]
    if kind == "toml":  # a mapping spec trialkit suggested (until the data manager edits it)
        return stripped.startswith("# Mapping spec suggested by trialkit")
    if header is None:
        return False
    if isinstance(header, re.Pattern):
        return header.search(first) is not None
    return first.rstrip("\r") == header


def check_output_file(path: str | os.PathLike[str], *, kind: str, workspace: str | os.PathLike[str] | None = None,
                      header: str | re.Pattern[str] | None = None) -> Path:
    """The resolved path of an output file if writing it destroys nothing; OutputRefused else.

    ``kind`` is what is written (one of :data:`FILE_KINDS`); ``header`` is the first line of a CSV or
    text output, by which an earlier output of the same command is recognised.
    """
    if kind not in FILE_KINDS:
        raise ValueError(f"unknown output kind {kind!r}; one of {', '.join(FILE_KINDS)}")
    given, target = _checked_path(path)
    for ws in _workspaces(target, workspace):
        _inside_workspace(given, target, ws, folder_output=False)
    if target.parent.is_dir() and (target.parent / MARKER).is_file():
        raise OutputRefused(f"{given}: is inside {target.parent}, an output folder trialkit wrote as a whole; "
                            "writing into it would break that set (its manifest); write the file elsewhere")
    if not os.path.lexists(target):
        return target
    mode = os.stat(target).st_mode
    if stat.S_ISDIR(mode):
        raise OutputRefused(f"{given}: is a folder; writing the {kind} output there would destroy it; give a "
                            "file name")
    if not stat.S_ISREG(mode):
        raise OutputRefused(f"{given}: exists and is not a regular file (a device, FIFO or socket); choose "
                            "another name")
    if not written_by_trialkit(target, kind, header):
        raise OutputRefused(f"{given}: exists and is not a file trialkit wrote as {kind} output "
                            f"({describe(target)}); overwriting it would destroy it; choose another name, or "
                            "move the file away first")
    return target


def check_output_files(paths: Iterable[str | os.PathLike[str]], *, kind: str,
                       workspace: str | os.PathLike[str] | None = None) -> list[Path]:
    """:func:`check_output_file` for several files (e.g. one query workbook per site), all first."""
    return [check_output_file(p, kind=kind, workspace=workspace) for p in paths]


def mark_output_folder(folder: str | os.PathLike[str], kind: str) -> None:
    """Write the marker into a folder trialkit made (for outputs not written by ``write_output_set``)."""
    (Path(folder) / MARKER).write_text(json.dumps({"kind": kind, "written_by": "trialkit"}, sort_keys=True) + "\n",
                                       encoding="utf-8")
