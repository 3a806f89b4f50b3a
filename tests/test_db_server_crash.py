"""The database SERVER killed -9 and started again under whole rounds (rule « kill -9
anywhere, pull the cable anywhere », the database tier's power cut).

``test_faults_rounds_servers.py`` ends a node's database *session*; here the server
process itself dies: a private PostgreSQL and a private MariaDB (``own_db_servers``; the
shared servers of the suite are never touched) are SIGKILLed whole and started again on
the same data (their crash recovery), under a group of real ``python -m synchro``
processes over FTPS on loopback (``fault_helpers``, ``fault_servers``): the Siège's
database on the private PostgreSQL, A's on the private MariaDB, B's an SQLite file; the
rows multilingual (``fault_servers.RICH``).

The moment is found, not slept for: the victim node stops itself at a named failpoint
(``SYNCHRO_STOP_AT``, ``synchro/faults.py``), the test crashes its server there and
lets it go on (SIGCONT). The scenarios:

- ``apply``: the server killed while the node writes a received package (its second
  batch), started again before the node goes on; ``down for two tries``: started again
  only once the node's second try met it down (connection refused), before its third;
- ``doubt``: the node's COMMIT sent to a server that hangs (SIGSTOP), the server then
  killed: the COMMIT's fate unknown to the node; ``committed``: killed just after the
  COMMIT, before the node records it in its state;
- ``capture``: killed while the node reads its tables for its own package (between two
  tables: the next one is read on a new connection);
- ``down``: the server down when a run starts, for longer than its retries: the run ends
  « Echec » saying the database cannot be reached (kind ``database``), and the next
  round, the server back, converges;
- ``serve``: a Siège ``serve`` whose server is killed and started again between two
  rounds: the second round works without ``serve`` started again.

Each ends with every node holding exactly the expected rows (nothing lost, nothing twice).
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from db_crash_helpers import (
    SERVER_OF,
    VICTIMS,
    assert_applied_twice_said,
    assert_converged,
    assert_made_again,
    assert_new_connection,
    attempts_of,
    crash_and_restart,
    down_two_tries,
    in_doubt,
    reception,
    restart_only,
    round_with_crash,
    rows_of,
)
from fault_helpers import SITES, World, expected_after, expected_rounds
from fault_servers import ServerWorld, build_server_template, drop_template
from own_db_servers import OwnServer, own_server
from server_dbs import create_database, drop_database, run_sql

from synchro.db import open_database
from synchro.errors import DatabaseError, ErrorKind

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif(sys.platform != "linux", reason="SIGSTOP, /proc and ss: Linux"),
]
LAYOUTS = {
    "pg-maria": {"SIEGE": "postgresql", "A": "mariadb", "B": "sqlite"},
    "maria-pg": {"SIEGE": "mariadb", "A": "postgresql", "B": "sqlite"},
}


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, OwnServer]]:
    """A private PostgreSQL and MariaDB for the module, stopped by PID at its end."""
    with own_server("postgresql") as pg, own_server("mariadb") as maria:
        yield {"postgresql": pg, "mariadb": maria}


@pytest.fixture(scope="module")
def templates(
    servers: dict[str, OwnServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Path]]:
    """The group after a first round, per layout, made when a test first asks for it."""
    made: dict[str, Path] = {}
    try:
        yield made
    finally:
        up(servers)
        for root in made.values():
            drop_template(root)


def template_of(
    layout: str,
    templates: dict[str, Path],
    servers: dict[str, OwnServer],
    factory: pytest.TempPathFactory,
) -> Path:
    """The template of ``layout`` (``LAYOUTS``), made the first time it is asked for."""
    if layout not in templates:
        ports = {kind: s.port for kind, s in servers.items()}
        root = factory.mktemp("dbcrash") / layout
        templates[layout] = build_server_template(root, LAYOUTS[layout], ports=ports)
    return templates[layout]


@pytest.fixture(scope="module")
def template(
    templates: dict[str, Path],
    servers: dict[str, OwnServer],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    return template_of("pg-maria", templates, servers, tmp_path_factory)


def up(servers: dict[str, OwnServer]) -> None:
    """Every server running (a test that failed may have left one down): dropping a
    database on a server down would skip the test (``require``), hiding its failure."""
    for server in servers.values():
        if not server.running:
            server.start()
        server.resume()  # (one left paused by a failed ``in_doubt``)


@pytest.fixture
def world(template: Path, servers: dict[str, OwnServer], tmp_path: Path) -> Iterator[ServerWorld]:
    up(servers)
    world = ServerWorld.copy(template, tmp_path / "w")
    try:
        yield world
    finally:
        up(servers)
        world.close()


# -- the scenarios ----------------------------------------------------------------------------


def test_server_killed_while_a_package_is_applied(
    world: ServerWorld, template: Path, servers: dict[str, OwnServer]
) -> None:
    out = round_with_crash(world, template, servers, "apply.batch:2", restart_only)
    assert_converged(out)
    assert_made_again(out)
    assert_applied_twice_said(world)


def test_server_down_for_two_of_the_applys_three_tries(
    world: ServerWorld, template: Path, servers: dict[str, OwnServer]
) -> None:
    """The server not back yet when the apply is made again: the try that meets it down
    (the connection refused at its begin) is one of the three, not the end of them."""
    out = round_with_crash(world, template, servers, "apply.batch:2", down_two_tries)
    assert_converged(out)
    assert_made_again(out)
    tries = {node: attempts_of(world, node) for node in VICTIMS}
    assert tries == {"SIEGE": 3, "A": 3}, tries


def test_server_killed_with_the_commit_in_doubt(
    world: ServerWorld, template: Path, servers: dict[str, OwnServer]
) -> None:
    out = round_with_crash(world, template, servers, "node.apply.before_db_commit", in_doubt)
    assert_converged(out)
    assert_made_again(out)
    assert_applied_twice_said(world)


def test_server_killed_just_after_the_commit(
    world: ServerWorld, template: Path, servers: dict[str, OwnServer]
) -> None:
    out = round_with_crash(world, template, servers, "node.apply.db_committed", restart_only)
    assert_converged(out)


def test_server_killed_while_the_node_captures(
    world: ServerWorld, template: Path, servers: dict[str, OwnServer]
) -> None:
    out = round_with_crash(world, template, servers, "capture.table", restart_only)
    assert_converged(out)
    # between two tables: the next table is read on a new connection (nothing was lost:
    # every table is read in a statement of its own, and the server lost nothing committed)
    assert_new_connection(out)


@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_an_adapter_whose_server_is_down_says_so_and_works_once_it_is_back(
    servers: dict[str, OwnServer], kind: str
) -> None:
    """The adapter's connection lost with its server: each use while the server is down
    fails with a DatabaseError that says the server cannot be reached (before: pyodbc's raw
    « Attempt to use a closed connection », an « erreur interne »); once it is back the
    same adapter works again."""
    server = servers[kind]
    up(servers)
    db = create_database(kind, server.port)
    try:
        run_sql(
            db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\nINSERT INTO t VALUES (1, 'a');"
        )
        adapter = open_database(db.connection)
        try:
            table = next(t for t in adapter.tables() if t.name == "t")
            assert adapter.count(table) == 1
            server.crash()
            errors = []
            for _ in range(3):  # the loss met, then the server still down: read, write
                with pytest.raises(DatabaseError) as info:
                    if len(errors) < 2:
                        adapter.count(table)
                    else:
                        with adapter.atomic():
                            adapter.count(table)
                errors.append(info.value)
            assert all(e.kind is ErrorKind.DATABASE for e in errors), errors
            assert all("injoignable" in str(e) for e in errors[1:]), [str(e) for e in errors]
            server.start()
            assert adapter.count(table) == 1
            with adapter.atomic():
                assert adapter.count(table) == 1
        finally:
            adapter.close()
    finally:
        up(servers)
        drop_database(db)


def assert_database_failure(world: World, node: str, code: int) -> None:
    """``node``'s last run ended « Echec » (exit 1) saying its database cannot be reached,
    as an error of kind ``database``, not an « erreur interne »."""
    rows = [r for r in rows_of(world, node) if node != "SIEGE" or r[1] == "round"]
    assert code == 1 and rows, rows
    _i, _kind, state, error, kind = rows[-1]
    assert state == "Echec" and kind == "database", rows[-1]
    assert "injoignable" in error and "erreur interne" not in error, error


@pytest.mark.parametrize("victim", [pytest.param(v, id=f"{v}-{k}") for v, k in SERVER_OF.items()])
def test_server_down_when_a_run_starts_then_back(
    world: ServerWorld, template: Path, servers: dict[str, OwnServer], victim: str
) -> None:
    """The victim's server down for the whole of its run (longer than the run's tries):
    the run ends « Echec » saying so; once the server is back, the next round converges."""
    world.mutate(2)
    expected = expected_after(world, template, 2)
    server = servers[world.servers[victim].kind]
    server.crash()
    if victim == "SIEGE":  # alone, it waits for deliveries the whole *Temps maximum*
        usual = reception(world, dt.timedelta(seconds=2))
    args = ("sync", "--linger", "0") if victim == "SIEGE" else ("sync",)
    proc = world.start(victim, *args)
    code = proc.wait()
    assert_database_failure(world, victim, code)
    if victim == "SIEGE":  # said when the round opened, not only at its close
        said = proc.output()
        early = "La base de données du siège est injoignable pour l'instant"
        assert early in said and said.index(early) < said.index("Fin du tour"), said[-3000:]
    assert not server.running  # (down all along: nothing started it meanwhile)
    server.start()
    if victim == "SIEGE":
        reception(world, usual)
    codes = world.round("sync")
    assert codes == {"SIEGE": 0, "A": 0, "B": 0}, [p.output()[-2000:] for p in world.procs]
    assert world.differences(expected) == (0, 0, [])


@pytest.fixture
def serve_world(
    request: pytest.FixtureRequest,
    templates: dict[str, Path],
    servers: dict[str, OwnServer],
    tmp_path_factory: pytest.TempPathFactory,
    tmp_path: Path,
) -> Iterator[tuple[ServerWorld, Path]]:
    template = template_of(request.param, templates, servers, tmp_path_factory)
    up(servers)
    world = ServerWorld.copy(template, tmp_path / "w")
    try:
        yield world, template
    finally:
        up(servers)
        world.close()


@pytest.mark.parametrize("serve_world", ["pg-maria", "maria-pg"], indirect=True)
def test_a_serving_siege_whose_server_restarted_between_two_rounds(
    serve_world: tuple[ServerWorld, Path], servers: dict[str, OwnServer]
) -> None:
    """A Siège ``serve`` keeps its connection from round to round: its server killed and
    started again between two rounds, the next round works without ``serve`` started
    again."""
    world, template = serve_world
    serve = world.siege("serve")
    for round_no in (2, 3):
        if round_no == 3:
            crash_and_restart(servers[world.servers["SIEGE"].kind])
            world.open_round(serve)
        world.mutate(round_no)
        sites = [world.start(s, "sync") for s in SITES]
        codes = {p.node: p.wait() for p in sites}
        assert codes == {"A": 0, "B": 0}, [p.output()[-2000:] for p in sites]
        assert serve.popen.poll() is None, serve.output()[-3000:]
    assert world.stop(serve) == 0, serve.output()[-3000:]
    assert world.differences(expected_rounds(world, template, range(2, 4))) == (0, 0, [])
    rounds = [r for r in rows_of(world, "SIEGE") if r[1] == "round"]
    assert [r[2] for r in rounds[-2:]] == ["OK", "OK"], rounds
