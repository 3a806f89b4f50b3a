"""Issue 13 spike: what each data-plane package costs the one-file build.

Usage: ``.venv/bin/python bench/spike_footprint.py [--runs 5]``

For each candidate distribution that is installed: its size on disk (the files its
``RECORD`` lists, as installed in site-packages) and the cold import time of its module in a
fresh interpreter (``-c "import X"``; CPU = user + system of the child from ``os.wait4``,
wall around it; median of ``--runs``), beside ``-c pass`` and the engine's own imports.
Missing packages are named with the pip line that installs them; the exit code is 0.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# (distribution, module imported, what it brings)
CANDIDATES = [
    ("pyarrow", "pyarrow", "Arrow arrays, IPC + zstd, compute"),
    ("polars", "polars", "polars front end"),
    ("polars-runtime-32", "polars", "polars engine (native library)"),
    ("polars-hash", "polars_hash", "stable hashes for polars (xxh3-128)"),
    ("adbc-driver-manager", "adbc_driver_manager.dbapi", "ADBC DB-API"),
    ("adbc-driver-sqlite", "adbc_driver_sqlite.dbapi", "ADBC SQLite driver (own SQLite)"),
    ("arrow-odbc", "arrow_odbc", "Arrow batches over ODBC"),
    ("xxhash", "xxhash", "xxh3-128 per row"),
    ("msgspec", "msgspec", "msgpack/JSON codec"),
    ("zstandard", "zstandard", "zstd for the per-row package"),
]


def dist_size(name: str) -> int | None:
    try:
        files = md.distribution(name).files or []
    except md.PackageNotFoundError:
        return None
    total = 0
    for f in files:
        path = Path(str(f.locate()))
        if path.is_file():
            total += path.stat().st_size
    return total


def cold(code: str, runs: int) -> tuple[float, float]:
    """Median (CPU s, wall s) of a fresh interpreter running ``code``."""
    cpus, walls = [], []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", code])
        _pid, _status, usage = os.wait4(proc.pid, 0)
        walls.append(time.perf_counter() - start)
        cpus.append(usage.ru_utime + usage.ru_stime)
    return statistics.median(cpus), statistics.median(walls)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    base_cpu, base_wall = cold("pass", args.runs)
    print(f"python -c pass: {base_cpu:.3f} CPU s, {base_wall:.3f} s wall (median of {args.runs})")
    cpu, wall = cold("import synchro.engine.node", args.runs)
    print(f"import synchro.engine.node: {cpu:.3f} CPU s, {wall:.3f} s wall")
    print("\n| distribution | on disk MB | module | cold import CPU s | wall s | what |")
    print("|---|---|---|---|---|---|")
    missing = []
    for dist, module, what in CANDIDATES:
        size = dist_size(dist)
        if size is None:
            missing.append(dist)
            continue
        cpu, wall = cold(f"import {module}", args.runs)
        print(f"| {dist} | {size / 1e6:.1f} | {module} | {cpu:.3f} | {wall:.3f} | {what} |")
    both = "import pyarrow, polars, polars_hash, adbc_driver_sqlite.dbapi"
    if not missing or set(missing) <= {"arrow-odbc", "xxhash", "msgspec", "zstandard"}:
        cpu, wall = cold(both, args.runs)
        print(f"\ncolumnar plane together ({both}): {cpu:.3f} CPU s, {wall:.3f} s wall")
    if missing:
        print(f"not installed: {', '.join(missing)} (pip install {' '.join(missing)}, spike only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
