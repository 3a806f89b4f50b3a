"""How long a real ``synchro serve`` / ``synchro sync`` takes to end after its SIGTERM.

    .venv/bin/python bench/bench_stop.py [--only NAME,...] [--big ROWS] [--dir DIR]

Each state runs in its own copy of the fault suite's group (``tests/fault_helpers.py``:
a Siège and two establishments set up with the CLI, real processes, FTPS on loopback, real
SQLite files), is brought into that state, then SIGTERMed by PID; a process not ended
5 s later has its stacks dumped (py-spy, printed after the table). A service manager
(Windows' service stop, systemd) kills a service 5-20 s after asking. One line per state:
seconds from the signal to the end, the exit code, and whether it said it stopped.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import fault_helpers as fh
import stop_helpers as sh
from rounds_helpers import sql

State = Callable[[fh.World, int], sh.Stopped]


def siege_serve_idle(world: fh.World, big: int) -> sh.Stopped:
    proc = world.siege("serve", open_round=False)
    sh.listening_control(world, proc)
    return sh.sigterm(proc)


def site_serve_idle(world: fh.World, big: int) -> sh.Stopped:
    proc = world.start("A", "serve")
    sh.listening_control(world, proc)
    return sh.sigterm(proc)


def siege_serve_round_waiting(world: fh.World, big: int) -> sh.Stopped:
    proc = world.siege("serve")  # a round opened (MANUELLE), no site comes
    time.sleep(1)
    return sh.sigterm(proc)


def siege_sync_waiting(world: fh.World, big: int) -> sh.Stopped:
    proc = world.siege("sync")
    time.sleep(1)
    return sh.sigterm(proc)


def site_sync_waiting_package(world: fh.World, big: int) -> sh.Stopped:
    """A delivered; the Siège waits for B, A for the Siège's package."""
    world.mutate(2)
    hq = world.siege("serve")
    site = world.start("A", "sync")
    inbox = world.folder("SIEGE") / "data" / "ftp" / "A" / "in"
    sh.wait_for(lambda: any(inbox.glob("A-*.pkg")), "A's package at the Siège", 60, site)
    time.sleep(1)
    out = sh.sigterm(site)
    sh.sigterm(hq)
    return out


def _stalled(world: fh.World, at: int, victim: str) -> sh.Stopped:
    """A's upload (``at`` bytes in) or download stalled in the proxy; SIGTERM ``victim``."""
    world.mutate(2)
    proxy = sh.stalling(world)
    try:
        hq = world.siege("serve")
        outbox = world.folder("SIEGE") / "data" / "ftp" / "A" / "out"
        before = set(outbox.glob("*.pkg"))  # offered since the round before
        if at < 0:  # the download: B delivers too, the round closes, then A's download stalls
            b = world.start("B", "sync")
        site = world.start("A", "sync")
        if at < 0:
            new = lambda: bool(set(outbox.glob("*.pkg")) - before)  # noqa: E731
            sh.wait_for(new, "the Siège's package for A", 60, hq)
            proxy.stall_at = -at
        else:
            proxy.stall_at = at
        sh.wait_for(proxy.stalled.is_set, "a stalled transfer", 60, site)
        time.sleep(1)
        out = sh.sigterm(site if victim == "A" else hq)
        sh.sigterm(hq if victim == "A" else site)
        if at < 0:
            b.wait()
        return out
    finally:
        proxy.stop()


def site_sync_upload_stalled(world: fh.World, big: int) -> sh.Stopped:
    return _stalled(world, 100_000, "A")


def siege_serve_upload_stalled(world: fh.World, big: int) -> sh.Stopped:
    return _stalled(world, 100_000, "SIEGE")


def site_sync_download_stalled(world: fh.World, big: int) -> sh.Stopped:
    return _stalled(world, -50_000, "A")


def siege_serve_download_stalled(world: fh.World, big: int) -> sh.Stopped:
    return _stalled(world, -50_000, "SIEGE")


def site_sync_big_apply(world: fh.World, big: int) -> sh.Stopped:
    """A applies a big package of the Siège's."""
    world.mutate(2)
    sql(world.db("SIEGE"), sh.big_rows("SIEGE", big))
    hq = world.siege("serve")
    b = world.start("B", "sync")
    site = world.start("A", "sync")
    inbox = world.folder("A") / "data" / "packages" / "inbox"
    sh.wait_for(lambda: any(inbox.glob("SIEGE-A-*.pkg")), "A's download done", 120, site)
    time.sleep(2)  # into the apply (~30 s for 200,000 rows here)
    out = sh.sigterm(site)
    b.wait()
    sh.sigterm(hq)
    return out


def siege_serve_big_apply(world: fh.World, big: int) -> sh.Stopped:
    """The Siège applies a big package of A's at its round's close."""
    world.mutate(2)
    sql(world.db("A"), sh.big_rows("A", big))
    hq = world.siege("serve")
    sites = [world.start(s, "sync") for s in fh.SITES]
    for site in sites:
        sh.wait_for(lambda p=site: _says(p, "envoyées"), f"{site.node} delivered", 180, site)
    time.sleep(2)  # the round closes, the Siège applies A's package
    out = sh.sigterm(hq)
    for s in sites:
        sh.sigterm(s)
    return out


def site_sync_db_locked(world: fh.World, big: int) -> sh.Stopped:
    """Another program holds A's database locked while A's run needs it."""
    world.mutate(2)
    hq = world.siege("serve")
    with sh.hold_lock(world.db("A")):
        site = world.start("A", "sync")
        time.sleep(3)
        out = sh.sigterm(site)
    sh.sigterm(hq)
    return out


def site_sync_state_locked(world: fh.World, big: int) -> sh.Stopped:
    """Another program holds A's state database locked."""
    world.mutate(2)
    hq = world.siege("serve")
    with sh.hold_lock(world.folder("A") / "data" / "state.db"):
        site = world.start("A", "sync")
        time.sleep(3)
        out = sh.sigterm(site)
    sh.sigterm(hq)
    return out


def siege_serve_db_locked(world: fh.World, big: int) -> sh.Stopped:
    """Another program holds the Siège's database locked when its round closes."""
    world.mutate(2)
    hq = world.siege("serve")
    with sh.hold_lock(world.db("SIEGE")):
        sites = [world.start(s, "sync") for s in fh.SITES]
        inbox = world.folder("SIEGE") / "data" / "ftp" / "B" / "in"
        sh.wait_for(lambda: any(inbox.glob("B-*.pkg")), "B's package at the Siège", 60, hq)
        time.sleep(2)
        out = sh.sigterm(hq)
    for s in sites:
        sh.sigterm(s)
    return out


def siege_serve_after_round(world: fh.World, big: int) -> sh.Stopped:
    """The round ended OK, every site done: the harness's stop (kill2n 1017)."""
    world.mutate(2)
    hq = world.siege("serve")
    for proc in [world.start(s, "sync") for s in fh.SITES]:
        proc.wait()
    return sh.sigterm(hq)


def _says(proc: fh.Proc, words: str) -> bool:
    return words in proc.output()


STATES: dict[str, State] = {
    f.__name__: f
    for f in (
        siege_serve_idle,
        site_serve_idle,
        siege_serve_round_waiting,
        siege_sync_waiting,
        site_sync_waiting_package,
        site_sync_upload_stalled,
        siege_serve_upload_stalled,
        site_sync_download_stalled,
        siege_serve_download_stalled,
        site_sync_big_apply,
        siege_serve_big_apply,
        site_sync_db_locked,
        site_sync_state_locked,
        siege_serve_db_locked,
        siege_serve_after_round,
    )
}
STOPPED_WORDS = ("arrêté proprement", "Arrêt")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="", help="states, comma-separated")
    parser.add_argument("--big", type=int, default=200_000, help="rows of the big apply")
    parser.add_argument("--dir", help="working folder (default: a temporary one, removed)")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n] or list(STATES)
    base = Path(args.dir or tempfile.mkdtemp(prefix="bench-stop-"))
    template = fh.build_template(base / "template")
    results: dict[str, sh.Stopped | str] = {}
    for name in names:
        with fh.World.copy(template, base / name) as world:
            try:
                results[name] = STATES[name](world, args.big)
            except Exception as exc:  # the state was not reached: said in the table
                results[name] = f"{type(exc).__name__}: {str(exc)[:200]}"
        print(line(name, results[name]), flush=True)
    print("\n| state | s to exit | exit code | said stopped |\n|---|---|---|---|")
    for name, result in results.items():
        print(line(name, result, table=True))
    for name, result in results.items():
        if isinstance(result, sh.Stopped) and result.stacks:
            print(f"\n--- {name}: stacks {sh.STUCK_AFTER_S:.0f} s after SIGTERM\n{result.stacks}")
    if not args.dir:
        shutil.rmtree(base, ignore_errors=True)
    return 0


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
