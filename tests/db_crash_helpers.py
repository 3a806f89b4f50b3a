"""Moments and rounds of ``tests/test_db_server_crash.py``: the database server of a node
crashed at a named step of its run.

A victim node stops itself at a failpoint (``SYNCHRO_STOP_AT``, ``synchro/faults.py``;
``is_stopped`` sees it in ``/proc``); the test does something to its server meanwhile
(``crash_and_restart``, ``in_doubt``: ``own_db_servers``) and lets it go on (SIGCONT).
``round_with_crash`` runs round 2 of a ``ServerWorld`` so, the Siège (PostgreSQL) and A
(MariaDB) each stopped in turn; the checks read each node's rows through its own driver,
its log file and its Rapport rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fault_helpers import Proc, World, expected_after, is_stopped
from fault_servers import ServerWorld
from own_db_servers import OwnServer

from synchro.config.store import load_config, save_config

VICTIMS = ("SIEGE", "A")  # their databases: the private PostgreSQL, the private MariaDB
SERVER_OF = {"SIEGE": "postgresql", "A": "mariadb"}
BULK = 1200  # plain rows more from the sender: a package of several batches to apply
WAIT_S = 60.0  # the longest a condition is awaited (a hang fails the test)


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


def down_two_tries(server: OwnServer, victim: Proc) -> float:
    """The server killed, and still down when the victim makes its apply again a second
    later (``engine.lost``: three tries a second apart): the victim let go, its server
    started again only once its second try failed on it too, before its third. The seconds
    the restart took."""
    log = victim.log.parent / victim.node / "logs" / "synchro.log"
    seen = log.stat().st_size
    server.crash()
    victim.popen.send_signal(signal.SIGCONT)

    def third_try_next() -> bool:
        with open(log, "rb") as f:
            f.seek(seen)
            text = f.read().decode(errors="replace")
        assert victim.popen.poll() is None, f"{victim.node} ended:\n{text[-3000:]}"
        assert "nouvel essai dans" not in text, f"tries given up:\n{text[-3000:]}"
        return "nouvel essai (3 sur 3)" in text

    until(third_try_next, f"{victim.node}'s third try")
    victim.popen.send_signal(signal.SIGSTOP)  # (it sleeps a second before its third)
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


def restart_only(server: OwnServer, victim: Proc) -> float:
    return crash_and_restart(server)


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


def assert_new_connection(out: dict[str, Any]) -> None:
    """Each victim's log says it met the lost session: found ended before its next
    statement, the node went on with a new connection (``OdbcAdapter._still_there``:
    when its connection lay unused more than ``IDLE_CHECK_S``, here while its server
    restarted), or that statement failed and the work was made again."""
    for node in VICTIMS:
        said = out["logs"][node]
        met = ("session fermée par le serveur, nouvelle connexion", "nouvel essai")
        assert any(m in said for m in met), f"{node}: {said}"


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


def reception(world: World, wait: dt.timedelta) -> dt.timedelta:
    """The Siège's *Temps maximum de réception* set to ``wait``; the one it had."""

    path = world.folder("SIEGE") / "synchro.toml"
    config = load_config(path)
    hq = dataclasses.replace(config.hq, max_reception=wait)
    save_config(dataclasses.replace(config, hq=hq), path)
    return config.hq.max_reception
