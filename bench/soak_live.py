"""A seeded random campaign: a node killed -9 at a random moment while every shop writes.

    .venv/bin/python bench/soak_live.py --seeds 1-100 [--workers 2] [--minutes M]
        [--layout sqlite|pg-maria|maria-pg] [--lives "serve.A=3.28, ..."] [--dir DIR] [--keep]

Each seed runs the group of the fault suite (``tests/fault_helpers.py``: Siège, A and B as
real ``python -m synchro`` processes over FTPS on loopback, SQLite files) through round 2
while, at every node, the shop's program writes into the same database (``live_writer``,
a process per node, its changes drawn from the seed). ``random.Random(seed)`` draws the
Siège's mode (``sync``/``serve``), the victim (SIEGE, A or B) and a delay over [0, 1.2 x]
the victim's measured life in such a round, after which its process is SIGKILLed by PID
and started again at once. The writers stop when the round is over; then a quiet round
(a second one when the first still finds work). Checked (``tests/live_helpers.py``): every
node holds every committed write of every shop once and the group's changes, the hot
clients are the same everywhere and no shop's last write to one was lost silently, the
quiet round ends OK everywhere, nothing is left « En cours... » — after the quiet round,
or after a second one (counted: a Siège killed in ``serve`` mode leaves its round for the
next MANUELLE to take over, which then ends at once, the sites' new deliveries answered
one by one as they come, so one establishment may get another's only a round later).
One line per seed, then a summary; exit code 1 on any problem.

``--layout pg-maria``: the Siège's database on PostgreSQL and A's on MariaDB (B's an
SQLite file), reached through their real ODBC drivers (``tests/fault_servers.py``: each
seed's world clones the template's databases, dropped with it); the shops write there
through pyodbc. ``maria-pg``: the two swapped.

``--kinds kill,session`` (a server layout): a seed of kind ``session`` pulls the cable
between a node and its database server instead: the victim is drawn among the nodes on
a server, then 1-3 moments over [0, 1.2 x] its life; at each (or, when the victim holds no
connection then, as soon as it makes one), the server ends every session the victim's
process holds on its database (``server_dbs.end_sessions_of``, its
sockets matched by port: the shop's own sessions go on), whatever it is doing — a
statement running, a transaction open, idle between two. The process lives on: it must
find the lost connection, make a new one and finish or redo its work. With ``kill``
alone the draws are those of the campaigns before. ``--only MODE:VICTIM`` (``serve:SIEGE``)
kills that process only, at the moments the seeds draw.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import fault_helpers as fh
from fault_helpers import NODES, SITES, World
from fault_servers import ServerWorld, build_server_template, drop_template
from live_helpers import Writers, check_rows
from server_dbs import end_sessions_of, holds_session

MODES = ("sync", "serve")
KINDS = ("kill", "session")
LATE = 1.2
CONNECTS_WITHIN_S = 5.0  # a "session" cut waits this long past its last moment for one
LAYOUTS: dict[str, dict[str, str]] = {
    "sqlite": {},
    "pg-maria": {"SIEGE": "postgresql", "A": "mariadb", "B": "sqlite"},
    "maria-pg": {"SIEGE": "mariadb", "A": "postgresql", "B": "sqlite"},
}


def copy(template: Path, root: Path) -> World:
    """A seed's own world: the template's folders (and its server databases, cloned)."""
    if (template / "servers.json").exists():
        return ServerWorld.copy(template, root)
    return World.copy(template, root)


@dataclasses.dataclass
class Seed:
    seed: int
    mode: str
    victim: str
    delay: float
    kind: str = "kill"
    cuts: list[float] = dataclasses.field(default_factory=list)  # "session": its moments
    ended: int = 0  # "session": sessions the server ended
    landed: bool = False
    quiet: int = 0  # quiet rounds it took to converge
    problems: list[str] = dataclasses.field(default_factory=list)
    first: list[str] = dataclasses.field(default_factory=list)  # the 1st quiet round's, if not
    seconds: float = 0.0


def draw(
    seed: int,
    lives: dict[str, float],
    kinds: tuple[str, ...],
    on_servers: list[str],
    only: tuple[str, str] | None = None,
) -> Seed:
    """The seed's fault; with ``kinds`` ("kill",) the draws of the campaigns before;
    ``only`` (mode, victim): kills of that process only, at the moment the seed draws."""
    rng = random.Random(seed)
    mode = rng.choice(MODES)
    victim = rng.choice(NODES)
    if only is not None:
        mode, victim = only
    drawn = Seed(seed, mode, victim, rng.uniform(0, LATE) * lives[f"{mode}.{victim}"])
    if kinds == ("kill",) or rng.choice(kinds) == "kill":
        return drawn
    victim = rng.choice(on_servers)
    life = lives[f"{mode}.{victim}"]
    cuts = sorted(rng.uniform(0, LATE) * life for _ in range(rng.randint(1, 3)))
    return Seed(seed, mode, victim, cuts[0], kind="session", cuts=cuts)


def pull_cables(world: World, s: Seed, proc: fh.Proc, started: float) -> None:
    """At each of ``s.cuts`` (seconds from ``started``), or as soon as ``proc`` holds a
    connection to its database's server again after it (a node connects only while it
    reads or writes), the server ends every session ``proc`` holds there; counted in
    ``s.ended``."""
    assert isinstance(world, ServerWorld)
    db = world.servers[s.victim]
    give_up = started + s.cuts[-1] + CONNECTS_WITHIN_S
    for moment in s.cuts:
        time.sleep(max(0.0, started + moment - time.monotonic()))
        while (
            proc.popen.poll() is None
            and not holds_session(db, proc.popen.pid)
            and time.monotonic() < give_up
        ):
            time.sleep(0.005)
        if proc.popen.poll() is not None or time.monotonic() >= give_up:
            break
        s.ended += end_sessions_of(db, proc.popen.pid)
    s.landed = s.ended > 0


def round_with_writers(
    world: World, mode: str, seed: int, kill: Seed | None = None
) -> tuple[Writers, dict[str, float]]:
    """Round 2 while the shops write; ``kill``: its victim SIGKILLed after its delay and
    started again. The writers stopped; how long each node's first process lived."""
    world.mutate(2)
    writers = Writers(world, seed)
    lives: dict[str, float] = {}
    try:
        writers.wait_started()
        started = time.monotonic()
        procs = {"SIEGE": world.siege(mode)}
        for site in SITES:
            procs[site] = world.start(site, "sync")
        if kill is not None and kill.kind == "session":
            pull_cables(world, kill, procs[kill.victim], started)
        elif kill is not None:
            time.sleep(kill.delay)
            kill.landed = fh.sigkill(procs[kill.victim].popen)
            if kill.landed:
                procs[kill.victim] = (
                    world.siege(mode, open_round=False)
                    if kill.victim == "SIEGE"
                    else world.start(kill.victim, "sync")
                )
        for site in SITES:
            procs[site].wait()
            lives[site] = time.monotonic() - started
        if mode == "sync":
            procs["SIEGE"].wait()
            lives["SIEGE"] = time.monotonic() - started
        else:
            lives["SIEGE"] = time.monotonic() - started  # a service: until the sites end
            world.stop(procs["SIEGE"])
        writers.stop()
    finally:
        writers.kill()
    return writers, lives


def run_seed(s: Seed, template: Path, root: Path) -> Seed:
    began = time.monotonic()
    try:
        with copy(template, root) as world:
            writers, _lives = round_with_writers(world, s.mode, s.seed, s)
            for quiet in (1, 2):  # converged after the next round, or the one after
                codes = world.round(s.mode)
                s.quiet = quiet
                problems = [] if all(c == 0 for c in codes.values()) else [f"codes {codes}"]
                try:
                    check_rows(world, template, writers)
                except AssertionError as exc:
                    problems.append(str(exc)[:500])
                if not problems:
                    break
                if quiet == 1:
                    s.first = problems
            s.problems += problems
            left = [f"{n}#{i}" for n in NODES for i, _k in world.running_rows(n)]
            if left:
                s.problems.append(f"left « En cours... »: {left}")
    except Exception as exc:  # a harness failure is a problem to read, not a crash
        s.problems.append(f"{type(exc).__name__}: {str(exc)[:500]}")
    s.seconds = time.monotonic() - began
    return s


def calibrate(template: Path, root: Path, workers: int) -> dict[str, float]:
    """Each node's median life in an uninterrupted round with writers, per mode."""
    found: dict[str, list[float]] = {}

    def one(mode: str, index: int) -> dict[str, float]:
        with copy(template, root / f"cal-{mode}-{index}") as world:
            return round_with_writers(world, mode, 10_000 + index)[1]

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        jobs = [(m, pool.submit(one, m, i)) for m in MODES for i in range(workers)]
        for mode, job in jobs:
            for node, life in job.result().items():
                found.setdefault(f"{mode}.{node}", []).append(life)
    return {k: statistics.median(v) for k, v in found.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1-20")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--minutes", type=float, default=0)
    parser.add_argument("--dir", default="")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--layout", choices=sorted(LAYOUTS), default="sqlite")
    parser.add_argument("--lives", default="", help="a run's 'lives:' line (replay a seed)")
    parser.add_argument("--kinds", default="kill", help="kill,session (session: a server layout)")
    parser.add_argument("--only", default="", help="MODE:VICTIM, e.g. serve:SIEGE (kills only)")
    args = parser.parse_args()
    low, _, high = args.seeds.partition("-")
    seeds = range(int(low), int(high or low) + 1)
    base = Path(args.dir or tempfile.mkdtemp(prefix="soak-live-"))
    base.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + args.minutes * 60 if args.minutes else float("inf")
    template = base / "template"
    layout = LAYOUTS[args.layout]
    kinds = tuple(args.kinds.split(","))
    on_servers = [n for n, kind in layout.items() if kind != "sqlite"]
    if not set(kinds) <= set(KINDS) or ("session" in kinds and not on_servers):
        parser.error(f"--kinds: among {KINDS}; session needs a server layout")
    only: tuple[str, str] | None = None
    if args.only:
        mode, _, victim = args.only.partition(":")
        only = (mode, victim)
    if only is not None and (kinds != ("kill",) or only[0] not in MODES or only[1] not in NODES):
        parser.error(f"--only: MODE:VICTIM among {MODES} and {NODES}, with --kinds kill")
    try:
        shutil.rmtree(template, ignore_errors=True)  # (a run stopped before)
        if layout:
            build_server_template(template, layout)
        else:
            fh.build_template(template)
        lives = (
            {k: float(v) for k, v in (x.split("=") for x in args.lives.split(", "))}
            if args.lives
            else calibrate(template, base, args.workers)
        )
        print("lives: " + ", ".join(f"{k}={v:.2f}" for k, v in sorted(lives.items())))
        done: list[Seed] = []
        with concurrent.futures.ThreadPoolExecutor(args.workers) as pool:
            jobs = [
                pool.submit(
                    lambda s: (
                        run_seed(s, template, base / f"seed-{s.seed}")
                        if time.monotonic() < deadline
                        else s
                    ),
                    draw(n, lives, kinds, on_servers, only),
                )
                for n in seeds
            ]
            for job in concurrent.futures.as_completed(jobs):
                s = job.result()
                if not s.seconds:
                    continue
                done.append(s)
                state = "PROBLEM " + " | ".join(s.problems) if s.problems else "ok"
                if s.quiet == 2 and not s.problems:  # what the first quiet round left
                    state += " (after one: " + " | ".join(p[:300] for p in s.first) + ")"
                if s.kind == "session":
                    fault = f"{s.ended} session(s) ended at " + ",".join(f"{c:.2f}" for c in s.cuts)
                else:
                    fault = f"at {s.delay:5.2f}s {'killed' if s.landed else 'ended '}"
                print(
                    f"seed {s.seed:5d} {s.mode:5s} {s.victim:5s} {fault} {s.seconds:5.1f}s "
                    f"quiet rounds {s.quiet} {state}",
                    flush=True,
                )
                if not args.keep and not s.problems and s.quiet == 1:  # (the rest to read)
                    shutil.rmtree(base / f"seed-{s.seed}", ignore_errors=True)
    finally:
        if layout and (template / "servers.json").exists():
            drop_template(template)
        if not args.keep and not args.dir:
            shutil.rmtree(base, ignore_errors=True)
    bad = [s for s in done if s.problems]
    killed = sum(s.landed for s in done if s.kind == "kill")
    cut = sum(s.landed for s in done if s.kind == "session")
    second = sum(s.quiet == 2 for s in done if not s.problems)
    print(
        f"{len(done)} seeds, {killed} kills landed, {cut} with sessions ended, {second} "
        f"converged only after a second quiet round, {len(bad)} with a problem"
        + (f": {[s.seed for s in bad]}" if bad else "")
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
