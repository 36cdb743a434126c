"""A disposable cache of re-imported submissions, so that a pool re-imports only what changed.

:func:`trialkit.pool.pool` re-imports every pooled submission from the read-only archive. The
forms of one re-import depend only on the archived files, the study definition, the workspace's
mapping specs, the import limits and trialkit itself, so they are kept in ``WORKSPACE/cache/reimport/KEY/`` where
``KEY`` is the sha256 of exactly those inputs (:func:`entry_key`): the submission (id, site, every
file's original name and sha256), the study's definition hash, the workspace's mapping specs, the
``--mapping`` each file was read through, the import limits in effect (``TRIALKIT_MAX_*``) and
the trialkit version with a hash of its source.

The cache is an optimisation only, never a source of truth:

- an entry is verified before use: ``entry.json`` carries the sha256 of every frame file and
  ``entry.sha256`` the sha256 of ``entry.json``; a missing, unreadable, mismatching or otherwise
  odd entry is ignored (removed when possible) and the submission re-imported from the archive;
- the pool checks a cached form exactly like a fresh re-import (row count, and every record's key
  and content hash against what the ledger recorded at acceptance); a cached form that fails is
  dropped and re-imported, so a forged entry can at worst cost time;
- only re-imports that passed those checks are stored;
- deleting ``cache/`` (or any entry) gives the same pooled output, and ``trialkit verify`` never
  reads it.

An entry holds, per form, the frames pooling reads (``data``, ``raw``, ``reasons``, ``lineage``)
as Arrow IPC files and the ``absent`` masks; the normalisation log (``changes``) is not kept (a cached
:class:`~trialkit.importers.base.FormData` has an empty one).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trialkit import __version__
from trialkit.importers.base import CHANGE_COLUMNS, FormData
from trialkit.importers.limits import Limits

CACHE_DIR = "cache"
REIMPORT_DIR = "reimport"
FORMAT = 2  # of an entry; part of the key (2: Arrow IPC files instead of Parquet)
FRAMES = ("data", "raw", "reasons", "lineage")
ENTRY = "entry.json"
ENTRY_HASH = "entry.sha256"


def cache_root(workspace_path: str | os.PathLike[str]) -> Path:
    """The folder of re-import cache entries of a workspace."""
    return Path(workspace_path) / CACHE_DIR / REIMPORT_DIR


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _mappings_digest(workspace_path: Path) -> str:
    """sha256 over the workspace's own mapping specs (relative path and bytes); the study's are in
    its definition hash."""
    from trialkit.study.mappings import MAPPINGS_FOLDER

    digest = hashlib.sha256()
    folder = workspace_path / MAPPINGS_FOLDER
    if folder.is_dir():
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(path.relative_to(folder).as_posix().encode("utf-8") + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


_ENGINE: list[str] = []


def engine_digest() -> str:
    """sha256 over trialkit's own source (relative path and bytes of every ``.py`` of the package),
    once per process: an edited importer invalidates the cache even without a version bump."""
    if not _ENGINE:
        package = Path(__file__).resolve().parent
        digest = hashlib.sha256()
        for path in sorted(package.rglob("*.py")):
            relative = path.relative_to(package).as_posix()
            if relative.startswith("_bundled_study/"):
                continue  # the study is keyed by its own definition hash
            digest.update(relative.encode("utf-8") + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        _ENGINE.append(digest.hexdigest())
    return _ENGINE[0]


def entry_key(workspace_path: str | os.PathLike[str], submission: Any, study: Any,
              file_mappings: Mapping[str, str]) -> str:
    """The cache key of one submission's re-import (see the module docstring)."""
    inputs = {
        "format": FORMAT,
        "trialkit": [__version__, engine_digest()],
        "study": [study.id, str(study.protocol_version), study.definition_hash, study.schema_hash],
        "submission": int(submission.id),
        "site": str(submission.site),
        "files": [[Path(f.original_name).name, f.sha256] for f in submission.files],
        "workspace_mappings": _mappings_digest(Path(workspace_path)),
        "file_mappings": sorted(file_mappings.items()),
        # the import limits in effect (TRIALKIT_MAX_*): a tighter limit must refuse a re-import again
        "limits": dataclasses.asdict(Limits.from_env()),
    }
    return _sha256(json.dumps(inputs, sort_keys=True, ensure_ascii=False).encode("utf-8"))


_MISSING = {"NA": pd.NA, "None": None, "nan": float("nan")}


def _missing_kind(value: Any) -> str | None:
    if value is None:
        return "None"
    if value is pd.NA:
        return "NA"
    if isinstance(value, float) and value != value:
        return "nan"
    return None


def _object_columns(frame: pd.DataFrame) -> dict[str, str] | None:
    """The object columns of ``frame`` and the one missing value each holds (``NA``, ``None`` or
    ``nan``); None when a column holds anything but text and one kind of missing value (Arrow
    would not give it back as it is)."""
    found = {}
    for column in frame.columns:
        if frame[column].dtype != object:
            continue
        kinds = set()
        for value in frame[column]:
            if isinstance(value, str):
                continue
            kind = _missing_kind(value)
            if kind is None:
                return None
            kinds.add(kind)
        if len(kinds) > 1:
            return None
        found[str(column)] = kinds.pop() if kinds else "NA"
    return found


def _frame_bytes(frame: pd.DataFrame) -> bytes:
    """A frame as an Arrow IPC file (LZ4): it reads back about twice as fast as Parquet."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    table = pa.Table.from_pandas(frame, preserve_index=True)
    sink = pa.BufferOutputStream()
    with ipc.new_file(sink, table.schema, options=ipc.IpcWriteOptions(compression="lz4")) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _read_frame(data: bytes, objects: Mapping[str, str]) -> pd.DataFrame:
    """A frame read back, its object columns (text) rebuilt with their own missing value."""
    import pyarrow as pa
    import pyarrow.ipc as ipc

    table = ipc.open_file(pa.BufferReader(data)).read_all()
    frame = table.to_pandas()
    for column, kind in objects.items():
        missing = _MISSING[kind]
        values = [missing if v is None else v for v in table.column(column).to_pylist()]
        frame[column] = pd.Series(values, index=frame.index, dtype=object)
    return frame


def _dtypes(frame: pd.DataFrame) -> list[list[str]]:
    return [[str(c), str(t)] for c, t in frame.dtypes.items()] + [["<index>", str(frame.index.dtype)]]


def load(workspace_path: str | os.PathLike[str], key: str) -> dict[str, FormData] | None:
    """The forms of a verified cache entry, or None (no entry, or one that does not verify: it is
    removed, so that the next pool stores a good one)."""
    folder = cache_root(workspace_path) / key
    if not folder.is_dir():
        return None
    try:
        text = (folder / ENTRY).read_bytes()
        if (folder / ENTRY_HASH).read_text(encoding="ascii").strip() != _sha256(text):
            raise ValueError("entry.json does not match its hash")
        entry = json.loads(text)
        if entry.get("key") != key or entry.get("format") != FORMAT:
            raise ValueError("entry of another key or format")
        forms: dict[str, FormData] = {}
        for code, described in entry["forms"].items():
            frames = {}
            for name in FRAMES:
                item = described["frames"][name]
                data = (folder / item["file"]).read_bytes()
                if _sha256(data) != item["sha256"]:
                    raise ValueError(f"{item['file']} does not match its hash")
                frame = _read_frame(data, item["objects"])
                if _dtypes(frame) != item["dtypes"]:
                    raise ValueError(f"{item['file']}: column types differ from those recorded")
                frames[name] = frame
            size = len(frames["data"])
            absent = {}
            for variable, rows in described["absent"].items():
                mask = np.zeros(size, dtype=bool)
                mask[np.asarray(rows, dtype=np.int64)] = True
                absent[variable] = mask
            forms[code] = FormData(form=code, changes=pd.DataFrame(columns=CHANGE_COLUMNS), absent=absent,
                                   **frames)
        return forms
    except Exception:  # noqa: BLE001 - any damage means: not usable; the archive is the truth
        discard(workspace_path, key)
        return None


def store(workspace_path: str | os.PathLike[str], key: str, forms: Mapping[str, FormData]) -> bool:
    """Keep the checked forms of a re-import under ``key`` (atomically); False when they cannot be
    kept faithfully (a frame Arrow does not carry back with the same column types) or the
    workspace cannot be written: the pool then simply re-imports next time."""
    root = cache_root(workspace_path)
    target = root / key
    if target.is_dir():
        return True
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key[:16]}-", dir=root))
    except OSError:
        return False
    try:
        described: dict[str, Any] = {}
        for number, (code, form_data) in enumerate(sorted(forms.items())):
            frames = {}
            for name in FRAMES:
                frame = getattr(form_data, name)
                objects = _object_columns(frame)
                if objects is None:
                    return False
                data = _frame_bytes(frame)
                if _dtypes(_read_frame(data, objects)) != _dtypes(frame):
                    return False
                file = f"{number:03d}-{name}.arrow"
                (staging / file).write_bytes(data)
                frames[name] = {"file": file, "sha256": _sha256(data), "dtypes": _dtypes(frame),
                                "objects": objects}
            described[code] = {
                "frames": frames,
                "absent": {variable: np.flatnonzero(np.asarray(mask, dtype=bool)).tolist()
                           for variable, mask in sorted(form_data.absent.items())},
            }
        text = json.dumps({"key": key, "format": FORMAT, "trialkit": __version__, "forms": described},
                          indent=1, ensure_ascii=False).encode("utf-8")
        (staging / ENTRY).write_bytes(text)
        (staging / ENTRY_HASH).write_text(_sha256(text) + "\n", encoding="ascii")
        try:
            staging.rename(target)
        except OSError:  # another pool stored it meanwhile
            return target.is_dir()
        return True
    except Exception:  # noqa: BLE001 - a cache that cannot be written is no cache, never a failure
        return False
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def discard(workspace_path: str | os.PathLike[str], key: str) -> None:
    """Remove one entry (ignored when it cannot be removed)."""
    shutil.rmtree(cache_root(workspace_path) / key, ignore_errors=True)
