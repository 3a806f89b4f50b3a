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
  batch), started again before the node goes on;
- ``doubt``: the node's COMMIT sent to a server that hangs (SIGSTOP), the server then
  killed: the COMMIT's fate unknown to the node; ``committed``: killed just after the
  COMMIT, before the node records it in its state;
- ``capture``: killed while the node reads its tables for its own package;
- ``down``: the server down when a run starts, for longer than its retries: the run ends
  « Echec » saying the database cannot be reached (kind ``database``), and the next
  round, the server back, converges;
- ``serve``: a Siège ``serve`` whose server is killed and started again between two
  rounds: the second round works without ``serve`` started again.

Each ends with every node holding exactly the expected rows (nothing lost, nothing twice).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fault_helpers import NODES, SITES, Proc, World, expected_after
from fault_servers import ServerWorld, build_server_template, drop_template
from own_db_servers import OwnServer, own_server
from rounds_helpers import sql
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
BULK = 1200  # plain rows more from the sender: a package of several batches to apply
WAIT_S = 60.0  # the longest a condition is awaited (a hang fails the test)


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


# -- moments ----------------------------------------------------------------------------------


def is_stopped(proc: Proc) -> bool:
    """Whether ``proc`` is stopped now (it stopped itself: ``SYNCHRO_STOP_AT``)."""
    try:
        text = Path(f"/proc/{proc.pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2] == "T"


def until(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, f"never came: {what}"
        time.sleep(0.01)


def start_with_stop(world: World, node: str, stop_at: str, *args: str) -> Proc:
    """``node`` started with ``args`` (the Siège: ``sync`` with its linger), stopping
    itself at ``stop_at``."""
    world.env = {"SYNCHRO_STOP_AT": stop_at}
    try:
        return world.siege("sync") if node == "SIEGE" else world.start(node, *args)
    finally:
        world.env = {}


def crash_and_restart(server: OwnServer) -> float:
    """The server killed -9 whole, then started again; the seconds its restart took."""
    server.crash()
    return server.start()


def in_doubt(server: OwnServer, victim: Proc) -> float:
    """The victim (stopped just before its COMMIT) let go while its server hangs, so that
    the COMMIT reaches the server's socket and no answer comes; then the server killed and
    started again. The seconds its restart took."""
    server.pause()
    victim.popen.send_signal(signal.SIGCONT)
    until(lambda: server.waiting_bytes() > 0, "the COMMIT sent to the hung server")
    victim.popen.send_signal(signal.SIGSTOP)  # it meets the loss once the server is back
    return crash_and_restart(server)


# -- a round ----------------------------------------------------------------------------------


def log_of(world: World, node: str) -> str:
    """``node``'s log file (its warnings: the tries made again)."""
    return (world.folder(node) / "logs" / "synchro.log").read_text(encoding="utf-8")


def rows_of(world: World, node: str) -> list[tuple[int, str, str, str, str]]:
    """``node``'s Rapport rows: id, kind, state, error, error kind."""
    conn = sqlite3.connect(world.reports_db(node))
    try:
        rows = conn.execute("SELECT id, kind, state, error, details FROM runs ORDER BY id")
        return [
            (i, k, s, e or "", json.loads(d or "{}").get("error_kind", ""))
            for i, k, s, e, d in rows.fetchall()
        ]
    finally:
        conn.close()


def round_with_crash(
    world: ServerWorld,
    template: Path,
    servers: dict[str, OwnServer],
    stop_at: str,
    act: Callable[[OwnServer, Proc], float],
) -> dict[str, Any]:
    """Round 2 with each of ``VICTIMS`` (the Siège on PostgreSQL, A on MariaDB) stopped
    at ``stop_at`` in turn and ``act(server, victim)`` done on its server meanwhile, the
    victim let go after it; what happened. One round serves both servers: the Siège
    applies A's delivery before A applies the Siège's answer."""
    for node in VICTIMS:  # the other's package big enough for several batches
        world.bulk[(node, 2)] = BULK
    world.mutate(2)
    expected = expected_after(world, template, 2)
    procs = {"SIEGE": start_with_stop(world, "SIEGE", stop_at)}
    procs["A"] = start_with_stop(world, "A", stop_at, "sync")
    procs["B"] = world.start("B", "sync")
    restart_s: dict[str, float] = {}
    end = time.monotonic() + WAIT_S
    while len(restart_s) < len(VICTIMS):
        for node in VICTIMS:
            proc = procs[node]
            if node in restart_s:
                continue
            assert proc.popen.poll() is None, f"{node} ended before {stop_at}:\n{proc.output()}"
            if is_stopped(proc):
                restart_s[node] = act(servers[world.servers[node].kind], proc)
                proc.popen.send_signal(signal.SIGCONT)
        assert time.monotonic() < end, f"never reached {stop_at}: {set(VICTIMS) - set(restart_s)}"
        time.sleep(0.005)
    codes = {n: p.wait() for n, p in procs.items()}
    print(f"{stop_at}: servers restarted in {restart_s} s")  # (shown with -s: for bench notes)
    return {
        "codes": codes,
        "differ": world.differences(expected),
        "restart_s": restart_s,
        "outputs": {n: p.output()[-3000:] for n, p in procs.items()},
        "logs": {n: log_of(world, n) for n in VICTIMS},
    }


def assert_converged(out: dict[str, Any]) -> None:
    assert out["codes"] == {"SIEGE": 0, "A": 0, "B": 0}, out["outputs"]
    lost, extra, differ = out["differ"]
    assert (lost, extra, differ) == (0, 0, []), out["outputs"]


def assert_made_again(out: dict[str, Any]) -> None:
    """Each victim's log says it made again what the crash ended (``engine.lost``)."""
    for node in VICTIMS:
        assert "nouvel essai" in out["logs"][node], f"{node} did not try again"


def assert_applied_twice_said(world: World) -> None:
    """The Rapport says the crashed apply took two tries: the Siège's row of A's delivery
    and A's run (``details["attempts"]``), both OK once everything was stored."""
    tries = {node: attempts_of(world, node) for node in VICTIMS}
    assert tries == {"SIEGE": 2, "A": 2}, tries


def attempts_of(world: World, node: str) -> int:
    """How many tries the last apply of ``node`` took, as its Rapport says (the Siège:
    the row of A's delivery)."""
    kind, title = ("site-in-round", "A") if node == "SIEGE" else ("run", "A")
    conn = sqlite3.connect(world.reports_db(node))
    try:
        rows = conn.execute(
            "SELECT state, details FROM runs WHERE kind = ? AND site = ? ORDER BY id",
            (kind, title),
        ).fetchall()
    finally:
        conn.close()
    state, details = rows[-1]
    assert state == "OK", rows[-1]
    return int(json.loads(details or "{}").get("attempts", 1))


VICTIMS = ("SIEGE", "A")  # their databases: the private PostgreSQL, the private MariaDB
SERVER_OF = {"SIEGE": "postgresql", "A": "mariadb"}


# -- the scenarios ----------------------------------------------------------------------------


def test_server_killed_while_a_package_is_applied(
    world: ServerWorld, template: Path, servers: dict[str, OwnServer]
) -> None:
    out = round_with_crash(world, template, servers, "apply.batch:2", _restart_only)
    assert_converged(out)
    assert_made_again(out)
    assert_applied_twice_said(world)


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
    out = round_with_crash(world, template, servers, "node.apply.db_committed", _restart_only)
    assert_converged(out)


def test_server_killed_while_the_node_captures(
    world: ServerWorld, template: Path, servers: dict[str, OwnServer]
) -> None:
    out = round_with_crash(world, template, servers, "capture.table", _restart_only)
    assert_converged(out)
    assert_made_again(out)


def _restart_only(server: OwnServer, victim: Proc) -> float:
    return crash_and_restart(server)


def expected_rounds(world: ServerWorld, template: Path, rounds: range) -> dict[str, set[Any]]:
    """The template's tables with every node's changes of ``rounds``, in order."""
    model = world.root / "expected-n.db"
    shutil.copyfile(world.model(template), model)
    for round_no in rounds:
        for node in NODES:
            sql(model, world.mutations(node, round_no))
    from fault_helpers import table_rows

    return table_rows(model)


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
    assert not server.running  # (down all along: nothing started it meanwhile)
    server.start()
    if victim == "SIEGE":
        reception(world, usual)
    codes = world.round("sync")
    assert codes == {"SIEGE": 0, "A": 0, "B": 0}, [p.output()[-2000:] for p in world.procs]
    assert world.differences(expected) == (0, 0, [])


def reception(world: World, wait: dt.timedelta) -> dt.timedelta:
    """The Siège's *Temps maximum de réception* set to ``wait``; the one it had."""
    from synchro.config.store import load_config, save_config

    path = world.folder("SIEGE") / "synchro.toml"
    config = load_config(path)
    hq = dataclasses.replace(config.hq, max_reception=wait)
    save_config(dataclasses.replace(config, hq=hq), path)
    return config.hq.max_reception


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
