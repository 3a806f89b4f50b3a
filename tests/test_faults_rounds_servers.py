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
from fault_helpers import Job, Outcome, Proc, World, print_table, run_all, scenario
from fault_servers import ServerWorld, build_server_template, drop_template
from server_dbs import require_servers

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


def name_of(layout: str, mode: str, victim: str, kill: str) -> str:
    return f"{layout}-{mode}-{victim}-{kill}"


NAMES = [name_of(*k) for k in KILLS]


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
        for layout in sorted({k[0] for k in KILLS if name_of(*k) in selected}):
            templates[layout] = build_server_template(root / layout, LAYOUTS[layout])
        chosen = {
            name_of(*k): kill_job(templates[k[0]], *k[1:], name=name_of(*k))
            for k in KILLS
            if name_of(*k) in selected
        }
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
