"""Benchmark: CLI start-up — ``trialkit --help`` vs ``python -c "import click"``.

Run from the repository root::

    /work/venv/bin/python benchmarks/bench_startup.py [--quick] [--repeat 10]

Each command runs as a fresh subprocess of this interpreter (``python -m trialkit --help`` and
``python -c "import click"``), alternating, ``--repeat`` times each (``--quick``: 5); the best time
of each is kept, since start-up noise only ever adds. Prints both times, the ratio (target ≤ 2×),
and the peak RSS of each child. When the target is missed, it lists the slowest top-level imports
of ``trialkit --help`` from ``python -X importtime`` so the cause can be named.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

TARGET = 2.0
TRIALKIT = [sys.executable, "-m", "trialkit", "--help"]
CLICK = [sys.executable, "-c", "import click"]


def run_once(argv: list[str]) -> tuple[float, float]:
    """Wall time (s) of one run of ``argv``, from start to exit, and its peak RSS (MB)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(process.pid, 0)  # this child's own resource usage
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed with exit code {process.returncode}")
    return seconds, usage.ru_maxrss / 1024


def best_of(repeat: int) -> dict[str, dict[str, float]]:
    times: dict[str, list[float]] = {"trialkit": [], "click": []}
    for _ in range(repeat):
        for name, argv in (("click", CLICK), ("trialkit", TRIALKIT)):
            times[name].append(run_once(argv)[0])
    return {name: {"best": min(values), "median": sorted(values)[len(values) // 2]} for name, values in times.items()}


def slowest_imports(limit: int = 12) -> list[tuple[float, str]]:
    """The top-level packages ``trialkit --help`` imports, by cumulative import time (ms)."""
    done = subprocess.run([sys.executable, "-X", "importtime", *TRIALKIT[1:]], capture_output=True, text=True)
    found: list[tuple[float, str]] = []
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\s*)(\S+)", line)
        if match and len(match.group(2)) <= 1:  # top level: imported by trialkit/cli itself
            found.append((int(match.group(1)) / 1000, match.group(3)))
    return sorted(found, reverse=True)[:limit]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="best of 5 instead of 10")
    parser.add_argument("--repeat", type=int, default=None)
    args = parser.parse_args()
    repeat = args.repeat or (5 if args.quick else 10)
    run_once(TRIALKIT)  # warm the file cache (and any .pyc) so neither side pays for it
    run_once(CLICK)
    result = best_of(repeat)
    click_mb = run_once(CLICK)[1]
    trialkit_mb = run_once(TRIALKIT)[1]
    ours, base = result["trialkit"]["best"], result["click"]["best"]
    ratio = ours / base
    print(f"{'command':<34} {'best of ' + str(repeat):>10} {'median':>8} {'peak RSS':>10}")
    click_name = 'python -c "import click"'
    print(f"{click_name:<34} {base * 1000:>8.0f} ms {result['click']['median'] * 1000:>5.0f} ms"
          f" {click_mb:>7.0f} MB")
    print(f"{'trialkit --help':<34} {ours * 1000:>8.0f} ms {result['trialkit']['median'] * 1000:>5.0f} ms"
          f" {trialkit_mb:>7.0f} MB")
    print(f"ratio: {ratio:.2f}x (target <= {TARGET:g}x)")
    if ratio > TARGET:
        print("target missed; slowest top-level imports of `trialkit --help` (python -X importtime):")
        for ms, name in slowest_imports():
            print(f"  {ms:8.1f} ms  {name}")
    print("RESULT " + json.dumps({"stage": "CLI start-up (trialkit --help)", "trialkit": ours, "baseline": base,
                                  "ratio": ratio, "target": TARGET, "trialkit_peak_mb": trialkit_mb,
                                  "baseline_peak_mb": click_mb}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
