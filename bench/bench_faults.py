"""The fault-injection suite's scenarios, tabulated (issue 12, point 5).

    .venv/bin/python bench/bench_faults.py [--only TEXT] [--no-cuts] [--dir DIR] [--keep]

Runs every kill point of ``tests/fault_helpers.kill_points()`` (a Siège and two
establishments, real ``python -m synchro`` processes on loopback over FTPS, one process
SIGKILLed at a failpoint in round 2 and started again) and every cut of
``tests/test_faults_cut.py`` (A's upload or download cut through a loopback relay), then
prints one line per scenario and the summary the issue asks for: kill points tried, cuts
tried, rows lost, rows duplicated (extra), nodes identical after recovery, worst recovery
time. "Recovery" is from the kill to the end of that round's processes (restart included);
a scenario that needed the next round says so. Exit code 0 only when every scenario passed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fault_helpers import (
    Outcome,
    World,
    build_template,
    cut_scenario,
    kill_points,
    proxied,
    scenario,
)

CUTS = {  # the same cuts as tests/test_faults_cut.py: (bytes, times) for upload, download
    "upload-100k": ((100_000, 1), None),
    "upload-400k": ((400_000, 1), None),
    "download-30k": (None, (30_000, 1)),
    "download-120k": (None, (120_000, 1)),
    "both": ((250_000, 1), (60_000, 1)),
    "upload-3x": ((150_000, 3), None),
    "download-3x": (None, (40_000, 3)),
    "upload-12x": ((50_000, 12), None),
    "download-12x": (None, (15_000, 12)),
}


def run_kill(template: Path, root: Path, mode: str, victim: str, point: str) -> Outcome:
    with World.copy(template, root) as world:
        return scenario(world, template, mode, victim, point, name=f"kill {mode}/{victim}/{point}")


def run_cut(template: Path, root: Path, mode: str, name: str) -> Outcome:
    upload, download = CUTS[name]
    with World.copy(template, root) as world:
        proxy = proxied(world)
        try:
            return cut_scenario(
                world,
                template,
                mode,
                proxy,
                upload=upload,
                download=download,
                name=f"cut {mode}/{name}",
            )
        finally:
            proxy.stop()


def summary(kills: list[Outcome], cuts: list[Outcome]) -> str:
    every = kills + cuts
    identical = sum(1 for o in every if o.recovered_in)
    same_round = sum(1 for o in every if o.recovered_in == 1)
    worst = max((o.recovery_s for o in every), default=0.0)
    rows = [
        ("kill points tried", f"{len(kills)} ({sum(o.killed for o in kills)} reached)"),
        ("cuts tried", str(len(cuts))),
        ("rows lost", str(sum(o.lost for o in every))),
        ("rows duplicated (extra)", str(sum(o.extra for o in every))),
        (
            "nodes identical after recovery",
            f"{identical}/{len(every)} scenarios ({same_round} in the same round)",
        ),
        ("scenarios with no problem", f"{sum(1 for o in every if not o.problems())}/{len(every)}"),
        ("worst recovery time", f"{worst:.1f} s"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"| {k:<{width}} | {v} |" for k, v in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="", help="only the scenarios whose name contains this")
    parser.add_argument("--no-cuts", action="store_true", help="kill points only")
    parser.add_argument("--dir", help="working folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    args = parser.parse_args()
    base = Path(args.dir or tempfile.mkdtemp(prefix="bench-faults-"))
    base.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    template = build_template(base / "template")
    kills: list[Outcome] = []
    cuts: list[Outcome] = []
    n = 0
    try:
        for mode, victim, point in kill_points():
            if args.only not in f"kill {mode}/{victim}/{point}":
                continue
            n += 1
            kills.append(run_kill(template, base / f"s{n:03d}", mode, victim, point))
            report(kills[-1])
        for mode in ("sync", "serve"):
            for name in CUTS if not args.no_cuts else ():
                if args.only not in f"cut {mode}/{name}":
                    continue
                n += 1
                cuts.append(run_cut(template, base / f"s{n:03d}", mode, name))
                report(cuts[-1])
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print()
    print(summary(kills, cuts))
    print(f"\n(total {time.monotonic() - started:.0f} s)")
    return 0 if all(not o.problems() for o in kills + cuts) else 1


def report(o: Outcome) -> None:
    problems = o.problems()
    state = "ok" if not problems else "FAIL: " + problems[0].splitlines()[0][:90]
    rec = {1: "same round", 2: "next round", 0: "never"}[o.recovered_in]
    print(f"{o.name:58} {rec:10} {o.recovery_s:6.1f} s  {state}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
