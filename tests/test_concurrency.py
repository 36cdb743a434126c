"""Several ``trialkit submit`` processes at once, through the CLI: all recorded, none lost.

``tests/test_ledger.py`` already drives :meth:`Workspace.submit` from four processes with literal
reports; this test goes through the whole command (import, validation, archive, ledger) in six
subprocesses started together: four sites with their own uploads, and two processes sending the
same bytes for site 05 at the same moment — exactly one of them is recorded, the other is told it
is a duplicate of that submission.
"""

from __future__ import annotations

import json
import subprocess

from trialkit.ledger import open_workspace

from .test_crash import DATA_CUT, assert_ledger_sound, cli, cli_env, run_cli, site_upload

DISTINCT_SITES = ["01", "02", "03", "04"]
TWICE_SITE = "05"


def test_six_processes_submitting_at_once_are_all_recorded(tmp_path, study):
    ws = tmp_path / "ws"
    run_cli("init", str(ws), "-q")
    uploads = [(site, site_upload(study, tmp_path, site)) for site in DISTINCT_SITES]
    same_bytes = site_upload(study, tmp_path, TWICE_SITE)
    uploads += [(TWICE_SITE, same_bytes), (TWICE_SITE, same_bytes)]
    processes = [
        subprocess.Popen(
            cli("submit", str(path), "--site", site, "--workspace", str(ws), "--accept-warnings",
                "--data-cut", DATA_CUT, "--operator", f"dm-{index}", "-f", "json", "-q"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
        )
        for index, (site, path) in enumerate(uploads)
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        results.append(json.loads(out))

    # Every distinct upload recorded once, as its site's current data.
    sound = assert_ledger_sound(ws)
    assert len(sound["submissions"]) == 5
    by_site = {r["site"]: r for r in results[:4]}
    assert sorted(by_site) == DISTINCT_SITES
    assert all(r["action"] == "recorded" and r["current"] for r in by_site.values())
    # The same bytes twice at once: one recorded, the other recognised as its duplicate.
    first, second = results[4:]
    assert sorted([first["action"], second["action"]]) == ["duplicate-ignored", "recorded"]
    assert first["id"] == second["id"]
    assert [first["duplicate"], second["duplicate"]].count(True) == 1
    assert sorted(sound["current"]) == [*DISTINCT_SITES, TWICE_SITE]
    assert sound["current"][TWICE_SITE] == first["id"]
    assert len({r["id"] for r in results}) == 5

    ws_open = open_workspace(ws)
    log = ws_open.log()
    assert sorted(s["site"] for s in log) == sorted([*DISTINCT_SITES, TWICE_SITE])
    recorded_by = {s["site"]: s["operator"] for s in log}
    assert [recorded_by[site] for site in DISTINCT_SITES] == ["dm-0", "dm-1", "dm-2", "dm-3"]
    winner = recorded_by[TWICE_SITE]
    assert winner in ("dm-4", "dm-5")
    audit = ws_open.audit()
    # workspace-created + five submitted + one duplicate-ignored, seq 1..7 without a gap.
    assert [a["seq"] for a in audit] == list(range(1, 8))
    assert sorted(a["action"] for a in audit) == sorted(
        ["workspace-created", *["submitted"] * 5, "duplicate-ignored"])
    duplicate = next(a for a in audit if a["action"] == "duplicate-ignored")
    assert (duplicate["site"], duplicate["submission_id"]) == (TWICE_SITE, first["id"])
    assert duplicate["operator"] == ({"dm-4", "dm-5"} - {winner}).pop()
    # One archived copy of the twice-sent bytes, no temporary file left beside it.
    archived = [p for p in (ws / "archive" / "sha256").rglob("*") if p.is_file()]
    assert len(archived) == 5
    assert not [p for p in archived if p.name.startswith(".incoming")]
