"""A whole round survives ``kill -9`` when the nodes' databases are on PostgreSQL and
MariaDB (rules 3 and 4: kill anywhere, every back end, both directions).

``test_faults_kill.py`` proves whole rounds with SQLite files only, and
``test_faults_kill_servers.py`` kills imports into the servers without a round. Here a
Siège and two establishments run as real ``python -m synchro`` processes over FTPS on
loopback (``fault_helpers.scenario``), their databases reached through the real ODBC
drivers (``fault_servers``): the Siège on PostgreSQL, A on MariaDB and B on SQLite
(layout ``pg-maria``), and the two servers swapped (``maria-pg``). The rows changed carry
multilingual text beyond the BMP.

In each scenario one process dies by SIGKILL during round 2 — at a named failpoint
(``SYNCHRO_KILL_AT``) or by PID from the test at a moment drawn from a fixed seed once it
applies a package into its server database — and is started again at once. Then, as in
``test_faults_kill.py``: every node holds exactly the expected rows, read through its own
driver (nothing lost, nothing extra, nothing applied twice), within that round or the
next; the killed run's row is closed « interrompu »; nothing is left « En cours... »; the
restarted process and the others end OK.

Two more scenarios pull the cable between a node and its database server: the server
ends the session of the Siège (PostgreSQL) or of A (MariaDB) while it writes a package
(``server_dbs.end_writing_sessions``); the apply is undone whole and made again, and the
round ends OK everywhere with the expected rows.

The scenarios run together, two at a time (``outcomes``); each test checks its own.
"""

from __future__ import annotations

import dataclasses
import random
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_helpers import (
    NODES,
    SITES,
    Job,
    Outcome,
    Proc,
    World,
    expected_after,
    print_table,
    run_all,
    scenario,
)
from fault_servers import ServerWorld, build_server_template, drop_template
from server_dbs import end_writing_sessions, require_servers

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX"),
]
WORKERS = 2  # the machine's two cores are shared: two groups of processes at once
LAYOUTS = {
    "pg-maria": {"SIEGE": "postgresql", "A": "mariadb", "B": "sqlite"},
    "maria-pg": {"SIEGE": "mariadb", "A": "postgresql", "B": "sqlite"},
}
# (layout, Siège mode, victim, kill): a failpoint, or ``pid:SEED``, a kill by PID at a
# moment drawn from SEED (``PID_WINDOWS``)
KILLS = (
    ("pg-maria", "sync", "A", "site.uploaded"),  # delivered, the Siège's answer not yet
    ("pg-maria", "sync", "A", "apply.batch:2"),  # the Siège's answer half written
    ("pg-maria", "sync", "A", "node.apply.db_committed"),  # MariaDB committed, state not
    ("pg-maria", "sync", "A", "site.applied"),  # applied, not acknowledged
    ("pg-maria", "sync", "A", "pid:3"),
    ("pg-maria", "sync", "SIEGE", "apply.batch:2"),  # a delivery half written, uncommitted
    ("pg-maria", "sync", "SIEGE", "node.publish.linked"),  # the answers published
    ("pg-maria", "sync", "SIEGE", "pid:5"),
    ("pg-maria", "serve", "SIEGE", "node.apply.db_committed"),  # PostgreSQL committed
    ("pg-maria", "serve", "SIEGE", "pid:7"),
    ("maria-pg", "sync", "SIEGE", "apply.batch:2"),
    ("maria-pg", "sync", "A", "node.apply.db_committed"),  # PostgreSQL committed, state not
)
# When a kill by PID lands: the Siège, a moment after it began applying a delivery into
# its database (its ``sync`` lingers for the downloads, a ``serve`` lives until stopped: it
# is alive whatever the draw); A, a moment after its delivery reached the Siège (it then
# waits at least 1 s before it first asks for the Siège's answer: alive too).
PID_WINDOWS = {"SIEGE": (0.0, 0.3), "A": (0.0, 0.8)}


@dataclasses.dataclass
class ServerOutcome(Outcome):
    """``Outcome`` that also counts the victim's rows closed « interrompu »: none means the
    kill left no run open, and the check that open runs get closed proved nothing."""

    interrupted_rows: int = 0

    def problems(self) -> list[str]:
        out = super().problems()
        if self.killed and not self.interrupted_rows:
            out.append("no row of the killed process says « interrompu »")
        return out


# (layout, victim, rows): the victim's database session ended by the server while it
# writes a package, the sender adding ``rows`` plain rows so that the apply lasts long
# enough to be seen writing (InnoDB shows a transaction only after 0.1 s).
CUTS = (("pg-maria", "SIEGE", 3000), ("pg-maria", "A", 20000))


def name_of(layout: str, mode: str, victim: str, kill: str) -> str:
    return f"{layout}-{mode}-{victim}-{kill}"


def cut_name(layout: str, victim: str, rows: int) -> str:
    return f"{layout}-sync-{victim}-session-cut"


NAMES = [name_of(*k) for k in KILLS] + [cut_name(*c) for c in CUTS]


def when_applying(state: Path, proc: Proc, timeout: float = 60) -> bool:
    """Wait until the node of ``state`` (its state database) records the intent of an
    import, i.e. writes a package's rows into its database; False if ``proc`` ended or
    the time ran out first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.popen.poll() is None:
        conn = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5)
        try:
            if conn.execute("SELECT count(*) FROM intent").fetchone()[0]:
                return True
        except sqlite3.OperationalError:  # busy, or the schema not there yet
            pass
        finally:
            conn.close()
        time.sleep(0.005)
    return False


def delivered(world: World, proc: Proc, timeout: float = 60) -> bool:
    """Wait until A's package of this round reached the Siège (in its inbox, or already
    archived once applied); False if ``proc`` ended or the time ran out first."""
    data = world.folder("SIEGE") / "data"
    places = (data / "ftp" / "A" / "in", data / "packages" / "archive" / "A")
    before = {p for place in places for p in place.glob("A-*.pkg")}
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.popen.poll() is None:
        if {p for place in places for p in place.glob("A-*.pkg")} - before:
            return True
        time.sleep(0.005)
    return False


def kill_job(template: Path, mode: str, victim: str, kill: str, name: str) -> Job:
    def job(folder: Path) -> Outcome:
        with ServerWorld.copy(template, folder) as world:
            out = ServerOutcome(
                **dataclasses.asdict(killed(world, template, mode, victim, kill, name))
            )
            report = world.report(victim)
            out.interrupted_rows = sum(1 for *_r, e in report if "interrompu" in (e or ""))
            return out

    return job


def killed(
    world: ServerWorld, template: Path, mode: str, victim: str, kill: str, name: str
) -> Outcome:
    """``scenario()`` with ``victim`` killed at the failpoint ``kill`` or, for ``pid:SEED``,
    by PID at a moment drawn from SEED."""
    if not kill.startswith("pid:"):
        return scenario(world, template, mode, victim, kill, name=name)
    delay = random.Random(int(kill[4:])).uniform(*PID_WINDOWS[victim])
    seen: list[str] = []

    def trigger(world: World, procs: dict[str, Proc]) -> None:
        victim_proc = procs[victim]
        if victim == "SIEGE":
            state = world.folder(victim) / "data" / "state.db"
            ready, event = when_applying(state, victim_proc), "its apply began"
        else:
            ready, event = delivered(world, victim_proc), "its delivery arrived"
        if ready:
            time.sleep(delay)
            victim_proc.popen.kill()
            seen.append(f"killed by PID {delay:.3f} s after {event}")

    out = scenario(world, template, mode, victim, trigger=trigger, name=name)
    out.notes += seen or ["the moment to kill never came"]
    return out


def session_cut_job(template: Path, victim: str, rows: int, name: str) -> Job:
    """The victim's database session ended by its server (a server restart, a cut
    network) while it applies a package: the apply is undone whole and made again on a new
    connection (``engine.lost``); every process ends OK in that round, with the expected
    rows everywhere. ``killed`` says the cut happened."""

    def job(folder: Path) -> Outcome:
        out = Outcome(name, restarted_ok=True)
        with ServerWorld.copy(template, folder) as world:
            world.bulk[("A" if victim == "SIEGE" else "SIEGE", 2)] = rows
            world.mutate(2)
            expected = expected_after(world, template, 2)
            procs = {"SIEGE": world.siege("sync")}
            procs.update({s: world.start(s, "sync") for s in SITES})
            started = time.monotonic()
            running = procs[victim].popen.poll
            # the cut lands in the apply (its intent recorded), not by chance in the
            # victim's capture just before (that one: tests/test_export_lost_connection.py)
            when_applying(world.folder(victim) / "data" / "state.db", procs[victim])
            out.killed = end_writing_sessions(world.servers[victim], lambda: running() is None) > 0
            if not out.killed:
                out.notes.append(f"no session of {victim} was seen writing")
            codes = {n: p.wait() for n, p in procs.items()}
            out.recovery_s = time.monotonic() - started
            out.others_ok = all(c == 0 for c in codes.values())
            for n, c in codes.items():
                if c != 0:
                    out.notes.append(f"{n} ended {c}:\n{procs[n].output()[-1500:]}")
            out.lost, out.extra, out.differ = world.differences(expected)
            out.recovered_in = 0 if out.differ else 1
            out.left_running = [f"{n}#{i}" for n in NODES for i, _k in world.running_rows(n)]
        return out

    return job


@pytest.fixture(scope="module")
def outcomes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Outcome]]:
    """The outcome of every scenario selected in this session, run together; the
    templates' databases (and each world's) are dropped afterwards."""
    selected = {
        item.callspec.params["name"]
        for item in request.session.items
        if item.module is sys.modules[__name__] and hasattr(item, "callspec")
    }
    require_servers()
    root = tmp_path_factory.mktemp("srvkill")
    templates: dict[str, Path] = {}
    try:
        wanted = {k[0] for k in KILLS if name_of(*k) in selected}
        wanted |= {c[0] for c in CUTS if cut_name(*c) in selected}
        for layout in sorted(wanted):
            templates[layout] = build_server_template(root / layout, LAYOUTS[layout])
        chosen = {
            name_of(*k): kill_job(templates[k[0]], *k[1:], name=name_of(*k))
            for k in KILLS
            if name_of(*k) in selected
        }
        chosen.update(
            {
                cut_name(*c): session_cut_job(templates[c[0]], *c[1:], name=cut_name(*c))
                for c in CUTS
                if cut_name(*c) in selected
            }
        )
        result = run_all(chosen, root / "runs", WORKERS)
        yield result
        print_table(request, result, "kills")
    finally:
        for template in templates.values():
            drop_template(template)


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in NAMES])
def test_killed_process_on_server_databases_restarts_and_the_group_converges(
    outcomes: dict[str, Outcome], name: str
) -> None:
    problems = outcomes[name].problems()
    assert not problems, "\n".join(problems)
