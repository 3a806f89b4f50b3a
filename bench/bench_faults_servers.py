"""Every kill point of the fault suite, with the nodes' databases on PostgreSQL and MariaDB.

    .venv/bin/python bench/bench_faults_servers.py [--layout pg-maria|maria-pg]
        [--only TEXT] [--workers 2] [--dir DIR]

Runs ``fault_helpers.kill_points()`` (61 scenarios: A and the Siège, ``sync`` and
``serve``, SIGKILLed at each named failpoint in round 2 and started again) on the worlds
of ``tests/fault_servers.py``: layout ``pg-maria`` puts the Siège on PostgreSQL and A on
MariaDB, ``maria-pg`` the other way round; B stays on SQLite. Prints one line per scenario
and the summary of ``bench_faults.py``. ``tests/test_faults_rounds_servers.py`` keeps a
dozen of these in the suite; this is the whole list, run by hand (about 3 minutes a layout
with 2 workers). Every database it makes is dropped at the end. Exit code 0 only when
every scenario passed.

Figures (6 Dec, 2 shared cores, 2 workers): 61/61 kill points reached on each layout,
0 rows lost, 0 extra, 61/61 identical after recovery (60 within the same round: the
``serve`` Siège killed at ``hq.round.opened`` catches up at the next round), 183 s a layout.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fault_helpers import Job, Outcome, kill_name, kill_points, line, run_all, scenario, summary
from fault_servers import ServerWorld, build_server_template, drop_template

LAYOUTS = {
    "pg-maria": {"SIEGE": "postgresql", "A": "mariadb", "B": "sqlite"},
    "maria-pg": {"SIEGE": "mariadb", "A": "postgresql", "B": "sqlite"},
}


def kill_job(template: Path, mode: str, victim: str, point: str) -> Job:
    def job(folder: Path) -> Outcome:
        with ServerWorld.copy(template, folder) as world:
            name = kill_name(mode, victim, point)
            return scenario(world, template, mode, victim, point, name=name)

    return job


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default="pg-maria")
    parser.add_argument("--only", default="", help="only the scenarios whose name contains this")
    parser.add_argument("--workers", type=int, default=2, help="scenarios at once (default 2)")
    parser.add_argument("--dir", help="working folder (default: a temporary one, removed)")
    args = parser.parse_args()
    base = Path(args.dir or tempfile.mkdtemp(prefix="bench-faults-servers-"))
    base.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    template = build_server_template(base / "template", LAYOUTS[args.layout])
    try:
        jobs = {
            kill_name(*k): kill_job(template, *k)
            for k in kill_points()
            if args.only in kill_name(*k)
        }
        outcomes = run_all(jobs, base / "runs", args.workers)
    finally:
        drop_template(template)
    for outcome in outcomes.values():
        print(line(outcome))
        for problem in outcome.problems():
            print("    " + problem.replace("\n", "\n    ")[:3000])
    print(summary(list(outcomes.values()), []))
    print(f"{args.layout}: {len(outcomes)} scenarios in {time.monotonic() - started:.0f} s")
    if not args.dir:
        shutil.rmtree(base, ignore_errors=True)
    return 0 if all(not o.problems() for o in outcomes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
