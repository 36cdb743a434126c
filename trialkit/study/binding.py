"""A workspace binds its study: which definition its submissions were validated against.

``trialkit init`` records the study in the workspace (id, protocol version, the sha256 of the
definition folder and where it was loaded from) and keeps a content-addressed copy of the definition
under ``WORKSPACE/studies/<hash>/``, so the workspace stays usable and reproducible when the original
folder moves. Every later command without ``--study`` uses the bound study; a ``--study`` of another
study id is refused; the same study with a changed definition (a protocol amendment) is accepted:
its copy is kept beside the earlier ones and the change is recorded in the audit log (action
``study-amended``, with the old and new version and hash), after which it is the bound study.

The binding lives in the ledger's append-only audit log (the ``workspace-created`` line and any
``study-amended`` lines), so the history of definitions can never be edited.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Any

from trialkit.errors import TrialkitError, UsageError
from trialkit.study.paths import ENV_STUDY, StudyDefinitionError

STUDIES_DIR = "studies"
CREATED, AMENDED = "workspace-created", "study-amended"


def copy_folder(workspace_path: str | os.PathLike[str], definition_hash: str) -> Path:
    """Where the workspace keeps the copy of the definition with this hash."""
    return Path(workspace_path) / STUDIES_DIR / definition_hash[:16]


def binding_record(study: Any) -> dict[str, Any]:
    """What the workspace records about a study definition."""
    return {
        "study_id": study.id,
        "protocol_version": study.protocol_version,
        "definition_hash": study.definition_hash,
        "path": str(study.path),
        "copy": f"{STUDIES_DIR}/{study.definition_hash[:16]}",
    }


def store_copy(workspace_path: str | os.PathLike[str], study: Any) -> Path:
    """Copy the study's definition into the workspace (content-addressed, files read-only); idempotent."""
    from trialkit.study.loader import definition_files

    target = copy_folder(workspace_path, study.definition_hash)
    if (target / "study.toml").is_file():
        return target
    partial = target.with_name(target.name + ".incoming")
    if partial.exists():
        _make_writable(partial)
        shutil.rmtree(partial)
    source = Path(study.path)
    try:
        for path in definition_files(source):
            destination = partial / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
            destination.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        os.replace(partial, target)
    except OSError as exc:
        if (target / "study.toml").is_file():  # another process stored the same definition meanwhile
            _make_writable(partial)
            shutil.rmtree(partial, ignore_errors=True)
            return target
        raise TrialkitError(f"{target}: cannot keep a copy of the study definition in the workspace "
                            f"({exc.strerror or exc}); check that the workspace folder is writable") from exc
    return target


def _make_writable(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            path.chmod(stat.S_IRUSR | stat.S_IWUSR)


def init_bound_workspace(path: str | os.PathLike[str], study: Any, *, operator: str | None = None) -> Any:
    """Create a workspace bound to ``study`` (see the module docstring); returns the Workspace."""
    from trialkit.ledger import init_workspace

    workspace = init_workspace(path, study_id=study.id, binding=binding_record(study), operator=operator)
    store_copy(workspace.path, study)
    return workspace


def current_binding(workspace: Any) -> dict[str, Any] | None:
    """The study definition the workspace is bound to now (None for a workspace that records none)."""
    latest = None
    for entry in workspace.audit():
        detail = entry.get("detail") or {}
        if entry["action"] == CREATED and detail.get("binding"):
            latest = detail["binding"]
        elif entry["action"] == AMENDED and detail.get("new"):
            latest = detail["new"]
    return latest


def history(workspace: Any) -> list[dict[str, Any]]:
    """Every definition the workspace was bound to, oldest first."""
    found = []
    for entry in workspace.audit():
        detail = entry.get("detail") or {}
        if entry["action"] == CREATED and detail.get("binding"):
            found.append({"at": entry["at"], **detail["binding"]})
        elif entry["action"] == AMENDED and detail.get("new"):
            found.append({"at": entry["at"], **detail["new"]})
    return found


def _load_bound(workspace: Any, binding: dict[str, Any]) -> Any:
    from trialkit.study.loader import definition_hash, load_study

    wanted = binding["definition_hash"]
    copy = Path(workspace.path) / binding["copy"] if binding.get("copy") else None
    original = Path(binding.get("path") or ".")
    for folder in (copy, original):
        if folder is not None and (folder / "study.toml").is_file() and definition_hash(folder) == wanted:
            study = load_study(folder)
            if folder == original and copy is not None:
                store_copy(workspace.path, study)  # the copy went missing: keep it again
            return study
    raise StudyDefinitionError(
        f"{workspace.path}: the workspace is bound to {binding['study_id']} {binding['protocol_version']} "
        f"(definition {wanted[:16]}), but neither its copy ({binding.get('copy')}) nor {original} holds that "
        f"definition any more; pass --study PATH (or set {ENV_STUDY}) to the study folder"
    )


def resolve_study(workspace: Any, study_path: str | os.PathLike[str] | None, *,
                  operator: str | None = None) -> Any:
    """The study for a command on ``workspace``: the bound one, or ``study_path`` when given.

    ``study_path`` of another study id → :class:`UsageError`; the same study with a changed
    definition → accepted, copied into the workspace and recorded as ``study-amended``. A workspace
    that records no binding (created before workspaces bound their study) uses ``study_path`` or the
    default study, which must have the workspace's study id.
    """
    from trialkit.study.loader import load_study

    binding = current_binding(workspace)
    if study_path is None and binding is not None:
        return _load_bound(workspace, binding)
    study = load_study(study_path)
    bound_id = (binding or {}).get("study_id") or workspace.study_id
    if bound_id and study.id != bound_id:
        raise UsageError(
            f"the workspace {workspace.path} is for study {bound_id}, not {study.id}; pass the matching "
            "--study or another --workspace"
        )
    if binding is not None and study.definition_hash != binding["definition_hash"]:
        store_copy(workspace.path, study)
        new = binding_record(study)
        workspace.record_event(AMENDED, operator=operator, detail={
            "old": binding, "new": new,
            "summary": (f"{study.id} definition changed: protocol version {binding['protocol_version']} → "
                        f"{study.protocol_version}, definition {binding['definition_hash'][:16]} → "
                        f"{study.definition_hash[:16]}"),
        })
    return study
