"""The re-import cache of pool: the same output with it, without it and after it is deleted; a
damaged or forged entry is never trusted; verify does not read it; a new submission re-imports
only its own site."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pytest
from click.testing import CliRunner

from trialkit.cli import cli
from trialkit.ledger import Workspace, open_workspace
from trialkit.pool import pool
from trialkit.reimportcache import ENTRY, ENTRY_HASH, cache_root

from .test_deviations import clean_subject
from .upload_builder import write_upload

FORMATS = "parquet,csv,xpt"


def _invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _submit(study, tmp_path: Path, ws: Path, site: str, subject: str, rand: str, name: str, *, weight=None) -> None:
    records = copy.deepcopy(clean_subject())
    records["RAND"][0]["RANDNO"] = rand
    if weight is not None:
        records["VS"][0]["WEIGHT"] = weight
    path = write_upload(study, tmp_path / name, records, site=site, subject=subject)
    result = _invoke("submit", str(path), "--site", site, "--workspace", str(ws), "--accept-warnings",
                     "--data-cut", "2024-04-12", "-q")
    assert result.exit_code == 0, result.output


@pytest.fixture()
def workspace(tmp_path, study) -> Path:
    ws = tmp_path / "ws"
    assert _invoke("init", str(ws)).exit_code == 0
    _submit(study, tmp_path, ws, "01", "01-001", "R001", "site01.xlsx")
    _submit(study, tmp_path, ws, "07", "07-001", "R002", "site07.xlsx")
    return ws


def _pool(ws: Path, out: Path, *extra: str) -> dict[str, str]:
    result = _invoke("pool", "--workspace", str(ws), "-o", str(out), "-f", FORMATS, "-q", *extra)
    assert result.exit_code == 0, result.output
    return _tree(out)


def _count_reimports(monkeypatch) -> list[int]:
    calls: list[int] = []
    original = Workspace.reimport

    def counting(self, submission_id, study, **kwargs):
        calls.append(int(getattr(submission_id, "id", submission_id)))
        return original(self, submission_id, study, **kwargs)

    monkeypatch.setattr(Workspace, "reimport", counting)
    return calls


def test_the_output_is_the_same_with_and_without_the_cache(workspace, tmp_path, study, monkeypatch):
    without = _pool(workspace, tmp_path / "a", "--no-cache")
    assert not cache_root(workspace).exists()  # --no-cache neither reads nor writes it
    first = _pool(workspace, tmp_path / "b")
    entries = sorted(p.name for p in cache_root(workspace).iterdir())
    assert len(entries) == 2  # one per pooled submission
    calls = _count_reimports(monkeypatch)
    pool(open_workspace(workspace), study, tmp_path / "c", formats=FORMATS.split(","))
    assert calls == []  # every submission came from the cache
    assert without == first == _tree(tmp_path / "c")


def test_deleting_the_cache_gives_the_same_output(workspace, tmp_path):
    first = _pool(workspace, tmp_path / "a")
    shutil.rmtree(workspace / "cache")
    assert _pool(workspace, tmp_path / "b") == first
    assert len(list(cache_root(workspace).iterdir())) == 2  # rebuilt


def _entry_files(ws: Path) -> list[Path]:
    return sorted(cache_root(ws).iterdir())


def test_a_damaged_entry_is_ignored_and_rebuilt(workspace, tmp_path, study, monkeypatch):
    first = _pool(workspace, tmp_path / "a")
    entry = _entry_files(workspace)[0]
    frame_file = sorted(entry.glob("*-data.arrow"))[0]
    data = bytearray(frame_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    frame_file.write_bytes(bytes(data))
    (_entry_files(workspace)[1] / ENTRY_HASH).write_text("0" * 64 + "\n")  # a second, unreadable one
    calls = _count_reimports(monkeypatch)
    pool(open_workspace(workspace), study, tmp_path / "b", formats=FORMATS.split(","))
    assert len(calls) == 2  # both re-imported from the archive
    assert _tree(tmp_path / "b") == first
    for folder in _entry_files(workspace):  # and stored again, verifying
        text = (folder / ENTRY).read_bytes()
        assert (folder / ENTRY_HASH).read_text().strip() == hashlib.sha256(text).hexdigest()


def test_a_forged_entry_with_matching_hashes_is_not_trusted(workspace, tmp_path, study, monkeypatch):
    """Someone changes a value in a cached form and writes hashes that match: the records no longer
    match what the ledger accepted, so the entry is dropped and the archive re-imported."""
    first = _pool(workspace, tmp_path / "a")
    forged = 0
    for folder in _entry_files(workspace):
        entry = json.loads((folder / ENTRY).read_text())
        for described in entry["forms"].values():
            item = described["frames"]["data"]
            path = folder / item["file"]
            table = ipc.open_file(path).read_all()
            if "WEIGHT" not in table.column_names or table.num_rows == 0:
                continue
            frame = table.to_pandas()
            frame["WEIGHT"] = frame["WEIGHT"] + 1.0
            forged_table = pa.Table.from_pandas(frame, preserve_index=True)
            with ipc.new_file(path, forged_table.schema) as writer:
                writer.write_table(forged_table)
            item["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
            forged += 1
        text = json.dumps(entry).encode("utf-8")
        (folder / ENTRY).write_bytes(text)
        (folder / ENTRY_HASH).write_text(hashlib.sha256(text).hexdigest() + "\n")
    assert forged == 2
    calls = _count_reimports(monkeypatch)
    pool(open_workspace(workspace), study, tmp_path / "b", formats=FORMATS.split(","))
    assert len(calls) == 2
    assert _tree(tmp_path / "b") == first


def test_verify_does_not_read_the_cache(workspace, tmp_path):
    _pool(workspace, tmp_path / "a")
    for folder in _entry_files(workspace):
        (folder / ENTRY).write_text("not json")
    result = _invoke("verify", "--workspace", str(workspace), "-f", "json")
    assert result.exit_code == 0, result.output
    shutil.rmtree(workspace / "cache")
    assert _invoke("verify", "--workspace", str(workspace), "-f", "json").exit_code == 0


def test_a_new_submission_re_imports_only_its_site(workspace, tmp_path, study, monkeypatch):
    _pool(workspace, tmp_path / "a")
    _submit(study, tmp_path, workspace, "07", "07-001", "R002", "site07_v2.xlsx", weight=31.5)
    calls = _count_reimports(monkeypatch)
    pool(open_workspace(workspace), study, tmp_path / "b", formats=FORMATS.split(","))
    ws = open_workspace(workspace)
    assert calls == [ws.current_submissions()["07"].id]
    monkeypatch.undo()
    assert _pool(workspace, tmp_path / "c", "--no-cache") == _tree(tmp_path / "b")
