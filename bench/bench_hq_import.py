"""The same package imported as Siège and as Serveur, each in a fresh process (issue 13:
the Siège's import at most 1.2× a Serveur's, CPU).

    .venv/bin/python bench/bench_hq_import.py --dir /tmp/hq --rows 200000 prepare
    .venv/bin/python bench/bench_hq_import.py --dir /tmp/hq import siege
    .venv/bin/python bench/bench_hq_import.py --dir /tmp/hq import serveur
    .venv/bin/python bench/bench_hq_import.py --dir /tmp/hq pairs 6

``prepare`` makes ``bench_sync.py``'s ``ventes`` table of N rows and exports it once as a
package (node A, a Serveur). ``import ROLE`` is one whole process: a fresh user database
(the schema only) and a fresh state database in a folder of its own, the package imported
(verified, applied, read back, snapshot and, at the Siège, its change log), then the
table's checksum (what an establishment computes for its acknowledgement), the folder
removed. Pair the two commands with any whole-process timer (A B A B …, ratio pair by
pair: the machine's speed drifts), or ``pairs N``: N pairs run here in turn, each child's
CPU time from the kernel (``os.wait4``), start-up included, and the Siège / Serveur ratio
per pair, its median and range. Nothing is asserted on time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_sync  # (the table, its rows and the nodes of the sync bench)


def prepare(work: Path, rows: int) -> None:
    """A's database of ``rows`` rows, exported once; the package's path in ``last.pkg``."""
    work.mkdir(parents=True, exist_ok=True)
    for name in ("a.db", "b.db"):
        (work / name).unlink(missing_ok=True)
    shutil.rmtree(work / "a.state", ignore_errors=True)
    shutil.rmtree(work / "a-packages", ignore_errors=True)
    bench_sync.phase_generate(work, rows)
    result = bench_sync.phase_export(work, rows)
    print(f"package of {result['rows']} rows, {result['package_bytes']} bytes")


def import_as(work: Path, role: str, checksum: bool) -> None:
    """One import of the prepared package into a fresh database and state of ``role``."""
    path = Path((work / "last.pkg").read_text())
    fresh = Path(tempfile.mkdtemp(prefix=f"{role}-", dir=work))
    try:
        conn = sqlite3.connect(fresh / "n.db")
        conn.execute(bench_sync.SCHEMA)
        conn.close()
        with bench_sync._node(fresh, "n", role) as node:
            result = node.import_package(path)
            if result.status != "applied":
                raise SystemExit(f"import: {result.status} {result.message}")
            if checksum:
                node.checksums()
    finally:
        shutil.rmtree(fresh, ignore_errors=True)


def _cpu_of(cmd: list[str]) -> float:
    """CPU seconds (user + sys) of one child process, start-up included."""
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=str(root))
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed")
    return usage.ru_utime + usage.ru_stime


def pairs(work: Path, count: int, checksum: bool) -> None:
    """``count`` pairs (after one warm-up pair), Siège then Serveur, the ratio per pair."""
    base = [sys.executable, __file__, "--dir", str(work)]
    if not checksum:
        base.append("--no-checksum")
    ratios: list[float] = []
    for n in range(count + 1):
        siege = _cpu_of([*base, "import", "siege"])
        serveur = _cpu_of([*base, "import", "serveur"])
        if n == 0:
            continue
        ratios.append(siege / serveur)
        load = os.getloadavg()[0]
        print(f"pair {n}: Siège {siege:.2f} s, Serveur {serveur:.2f} s, ", end="")
        print(f"ratio {siege / serveur:.3f} (load {load:.1f}, {time.strftime('%H:%M:%S')})")
    med = statistics.median(ratios)
    print(f"Siège / Serveur CPU: median {med:.3f} ({min(ratios):.3f}-{max(ratios):.3f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True, help="work folder (kept)")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--no-checksum", action="store_true", help="the import alone")
    parser.add_argument("what", choices=["prepare", "import", "pairs"])
    parser.add_argument("arg", nargs="?", help="import: siege|serveur; pairs: how many")
    args = parser.parse_args()
    if args.what == "prepare":
        prepare(args.dir, args.rows)
    elif args.what == "import":
        if args.arg not in ("siege", "serveur"):
            parser.error("import siege|serveur")
        import_as(args.dir, args.arg, not args.no_checksum)
    else:
        pairs(args.dir, int(args.arg or 6), not args.no_checksum)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
