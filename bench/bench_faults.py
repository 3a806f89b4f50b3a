"""The fault-injection suite's scenarios, tabulated (issue 12, point 5).

    .venv/bin/python bench/bench_faults.py [--only TEXT] [--workers 1] [--dir DIR] [--keep]

Runs the scenarios of ``tests/test_faults_kill.py`` (a Siège and two establishments, real
``python -m synchro`` processes on loopback over FTPS; one process SIGKILLed at a failpoint
or by PID in round 2, then started again) and of ``tests/test_faults_cut.py`` (A's upload
or download cut through a loopback relay; A behind a 2 Mbit/s namespace link when this
machine allows it), then prints one line per scenario and the summary the issue asks for:
kill points tried, cuts tried, rows lost, rows duplicated (extra), nodes identical after
recovery, worst recovery time. "Recovery" runs from the kill (or the start of a cut round)
to the end of that round's processes, restart included; with ``--workers`` above 1 the
scenarios share the machine and the times grow. Exit code 0 only when every scenario passed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import test_faults_cut
import test_faults_kill
from fault_helpers import build_template, line, netns_problem, run_all, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="", help="only the scenarios whose name contains this")
    parser.add_argument("--workers", type=int, default=1, help="scenarios at once (default 1)")
    parser.add_argument("--dir", help="working folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    args = parser.parse_args()
    base = Path(args.dir or tempfile.mkdtemp(prefix="bench-faults-"))
    base.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        template = build_template(base / "template")
        kill_jobs = test_faults_kill.jobs(template)
        cut_jobs = test_faults_cut.jobs(template, slow=not netns_problem())
        wanted = {**kill_jobs, **cut_jobs}
        chosen = {n: j for n, j in wanted.items() if args.only in n}
        outcomes = run_all(chosen, base / "runs", args.workers)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    kills = [o for n, o in outcomes.items() if n in kill_jobs]
    cuts = [o for n, o in outcomes.items() if n in cut_jobs]
    for o in kills + cuts:
        print(line(o))
    print()
    print(summary(kills, cuts))
    print(f"\n(total {time.monotonic() - started:.0f} s, {args.workers} at a time)")
    return 0 if all(not o.problems() for o in kills + cuts) else 1


if __name__ == "__main__":
    sys.exit(main())
