"""How long a real ``synchro serve`` / ``synchro sync`` takes to end after its SIGTERM.

    .venv/bin/python bench/bench_stop.py [--only NAME,...] [--big ROWS] [--dir DIR]
    .venv/bin/python bench/bench_stop.py --servers [--dir DIR]

Each state runs in its own copy of the fault suite's group (``tests/fault_helpers.py``:
a Siège and two establishments set up with the CLI, real processes, FTPS on loopback, real
SQLite files), is brought into that state, then SIGTERMed by PID; a process not ended
5 s later has its stacks dumped (py-spy, printed after the table). A service manager
(Windows' service stop, systemd) kills a service 5-20 s after asking. One line per state:
seconds from the signal to the end, the exit code, and whether it said it stopped.

``--servers``: the states of ``tests/stop_server_helpers.py`` instead, A's database on
MariaDB then on PostgreSQL (``fault_servers``), another program keeping a table locked.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import fault_helpers as fh
import stop_helpers as sh

STOPPED_WORDS = ("arrêté proprement", "Arrêt")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="", help="states, comma-separated")
    parser.add_argument("--big", type=int, default=200_000, help="rows of the big apply")
    parser.add_argument("--dir", help="working folder (default: a temporary one, removed)")
    parser.add_argument("--servers", action="store_true", help="A's database on a server")
    args = parser.parse_args()
    base = Path(args.dir or tempfile.mkdtemp(prefix="bench-stop-"))
    results = servers(base) if args.servers else sqlite_states(base, args)
    print("\n| state | s to exit | exit code | said stopped |\n|---|---|---|---|")
    for name, result in results.items():
        print(line(name, result, table=True))
    for name, result in results.items():
        if isinstance(result, sh.Stopped) and result.stacks:
            print(f"\n--- {name}: stacks {sh.STUCK_AFTER_S:.0f} s after SIGTERM\n{result.stacks}")
    if not args.dir:
        shutil.rmtree(base, ignore_errors=True)
    return 0


def sqlite_states(base: Path, args: argparse.Namespace) -> dict[str, sh.Stopped | str]:
    names = [n for n in args.only.split(",") if n] or list(sh.STATES)
    template = fh.build_template(base / "template")
    results: dict[str, sh.Stopped | str] = {}
    for name in names:
        with fh.World.copy(template, base / name) as world:
            results[name] = reached(lambda w=world, n=name: sh.STATES[n](w, sh.How(big=args.big)))
        print(line(name, results[name]), flush=True)
    return results


def servers(base: Path) -> dict[str, sh.Stopped | str]:
    from fault_servers import ServerWorld, build_server_template, drop_template
    from stop_server_helpers import LAYOUTS, SERVER_STATES

    results: dict[str, sh.Stopped | str] = {}
    for kind, layout in LAYOUTS.items():
        template = build_server_template(base / f"template-{kind}", layout)
        try:
            for state, run in SERVER_STATES.items():
                name = f"{state} ({kind})"
                world = ServerWorld.copy(template, base / f"{state}-{kind}")
                try:
                    results[name] = reached(lambda w=world, r=run: r(w, sh.How()))
                finally:
                    world.close()
                print(line(name, results[name]), flush=True)
        finally:
            drop_template(template)
    return results


def reached(state: Callable[[], sh.Stopped]) -> sh.Stopped | str:
    try:
        return state()
    except Exception as exc:  # the state was not reached: said in the table
        return f"{type(exc).__name__}: {str(exc)[:200]}"


def line(name: str, result: sh.Stopped | str, table: bool = False) -> str:
    if isinstance(result, str):
        return f"| {name} | not reached: {result.splitlines()[0]} | | |" if table else result
    said = any(w in result.output[-3000:] for w in STOPPED_WORDS)
    code = "still running (killed)" if result.code is None else str(result.code)
    if table:
        return f"| {name} | {result.seconds:.1f} | {code} | {'yes' if said else 'no'} |"
    return f"{name:32} {result.seconds:6.1f} s  exit {code}  said stopped: {said}"


if __name__ == "__main__":
    sys.exit(main())
