"""A stop while the database server hangs in the middle of a statement.

A's database is on a PostgreSQL server of the test's own (``own_db_servers``); while A's
``sync`` writes the Siège's package into it, every process of the server is SIGSTOPped (a
server that hangs: it takes bytes, answers none, and reads no cancel either), then A gets
SIGTERM. The statement cannot be cut (``StatementWatch``'s SQLCancel reaches a server that
does not read it), and ``sync`` waited for ever: measured, still running 60 s after the
SIGTERM. Now it waits ``stop_signals.GIVE_UP_S`` (20 s) for the run, then ends as a kill
would, saying so (exit code 3, « Arrêt »); its next start, the server back, takes the run
up again: the Rapport says the stopped run was interrupted, the import is made again
from its intent record, and A holds every row once.

Real processes (``python -m synchro``), FTPS on loopback, the server's real processes
stopped by PID.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import stop_helpers as sh
from fault_helpers import NODES, Proc, World, expected_after, scenario
from fault_servers import ServerWorld, build_server_template, drop_template
from own_db_servers import OwnServer, own_server
from test_faults_rounds_servers import when_applying

from synchro.platform.stop_signals import GIVE_UP_S

pytestmark = [pytest.mark.skipif(sys.platform == "win32", reason="SIGSTOP is POSIX")]
ROWS = 20_000  # the Siège's package: A's apply lasts long enough to be caught in it


@pytest.fixture(scope="module")
def server() -> Iterator[OwnServer]:
    with own_server("postgresql") as own:
        yield own


def _template(server: OwnServer, folder: Path, on_server: str) -> Iterator[Path]:
    """The group once, node ``on_server``'s database on the server, the others on SQLite."""
    root = folder / "template"
    layout = {node: "postgresql" if node == on_server else "sqlite" for node in NODES}
    build_server_template(root, layout, ports={"postgresql": server.port})
    try:
        yield root
    finally:
        drop_template(root)


@pytest.fixture(scope="module")
def template(server: OwnServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from _template(server, tmp_path_factory.mktemp("hangs"), "A")


@pytest.fixture(scope="module")
def siege_template(server: OwnServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from _template(server, tmp_path_factory.mktemp("hangs-siege"), "SIEGE")


def test_a_service_stop_while_the_database_server_hangs_ends_and_the_next_start_takes_it_up(
    server: OwnServer, siege_template: Path, tmp_path: Path
) -> None:
    stops: list[sh.Stopped] = []

    def hang_then_stop(world: World, procs: dict[str, Proc]) -> None:
        hq = procs["SIEGE"]
        assert when_applying(world.folder("SIEGE") / "data" / "state.db", hq), hq.output()[-3000:]
        time.sleep(0.3)  # inside a statement of the apply
        server.pause()
        try:
            stops.append(sh.sigterm(hq, GIVE_UP_S + 40))  # (a bound on a hang, not a figure)
        finally:
            server.resume()

    with ServerWorld.copy(siege_template, tmp_path / "world") as world:
        world.bulk[("A", 2)] = ROWS
        out = scenario(world, siege_template, "serve", "SIEGE", trigger=hang_then_stop)
        (stopped,) = stops
        assert stopped.code == 3, (stopped.seconds, stopped.output[-3000:], stopped.stacks)
        assert "Arrêt sans attendre la fin du travail en cours" in stopped.output
        assert out.restarted_ok and out.others_ok, out.notes
        assert (out.lost, out.extra, out.differ) == (0, 0, []), out.notes
        assert out.interrupted_closed and not out.left_running, out.notes


def test_a_stop_while_the_database_server_hangs_ends_and_the_next_run_takes_it_up(
    server: OwnServer, template: Path, tmp_path: Path
) -> None:
    with ServerWorld.copy(template, tmp_path / "world") as world:
        world.bulk[("SIEGE", 2)] = ROWS
        world.mutate(2)
        expected = expected_after(world, template, 2)
        hq = world.siege("serve")
        b = world.start("B", "sync")
        a = world.start("A", "sync")
        assert when_applying(world.folder("A") / "data" / "state.db", a), a.output()[-3000:]
        time.sleep(0.3)  # inside a statement of the apply
        server.pause()
        try:
            stopped = sh.sigterm(a, GIVE_UP_S + 40)  # (a bound on a hang, not a figure)
        finally:
            server.resume()
        assert stopped.code == 3, (stopped.seconds, stopped.output[-3000:], stopped.stacks)
        assert "Arrêt sans attendre la fin du travail en cours" in stopped.output
        again = world.start("A", "sync")
        assert again.wait() == 0, again.output()[-3000:]
        assert b.wait() == 0, b.output()[-3000:]
        world.stop(hq)
        assert world.differences(expected) == (0, 0, [])
        *_, (_i, _k, state_stopped, error), (_j, _l, state_next, _e) = world.report("A")
        assert (state_stopped, state_next) == ("Echec", "OK"), world.report("A")
        assert "interrompu" in error, error
