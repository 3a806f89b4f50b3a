"""Stop states of a node whose database is on a server (``bench/bench_stop.py --servers``,
``tests/test_stop_server_lock.py``).

Built on ``fault_servers.ServerWorld`` (A on MariaDB with the Siège on PostgreSQL, or the
two swapped; B on SQLite) and ``stop_helpers`` (SIGTERM by PID, the time to the end).

- ``table_locked(world, node)``: another program (the test's own connection through the
  real driver) keeps ``node``'s ``clients`` locked: MariaDB ``LOCK TABLES … WRITE``,
  PostgreSQL ``LOCK TABLE … IN ACCESS EXCLUSIVE MODE`` in an open transaction;
- ``SERVER_STATES``: A's run (``sync``, or its ``serve`` asked MANUELLE) waiting for that
  lock, then SIGTERMed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import stop_helpers as sh
from fault_servers import ServerWorld
from server_dbs import connect

LAYOUTS = {
    "mariadb": {"SIEGE": "postgresql", "A": "mariadb", "B": "sqlite"},
    "postgresql": {"SIEGE": "mariadb", "A": "postgresql", "B": "sqlite"},
}
WAITED_S = 1.0  # A's statement has waited that long for the lock when it is SIGTERMed


@contextlib.contextmanager
def table_locked(world: ServerWorld, node: str) -> Iterator[Any]:
    """Another program keeps ``node``'s ``clients`` locked until the block ends."""
    db = world.servers[node]
    conn = connect(db)
    try:
        if db.kind == "mariadb":
            conn.execute("LOCK TABLES clients WRITE")
        else:
            conn.execute("LOCK TABLE clients IN ACCESS EXCLUSIVE MODE")
        yield conn
    finally:
        with contextlib.suppress(Exception):
            if db.kind == "mariadb":
                conn.execute("UNLOCK TABLES")
            conn.rollback()
        conn.close()


def waiting_for_lock(holder: Any, kind: str) -> bool:
    """Whether a session of the holder's database waits for a lock, as the server says
    (PostgreSQL ``pg_locks``, MariaDB's process list), asked on the holder's own
    connection (the one keeping the table locked: in its transaction PostgreSQL's
    ``pg_stat_activity`` would be the snapshot of its first reading)."""
    if kind == "mariadb":
        sql = (
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST"
            " WHERE DB = DATABASE() AND ID <> CONNECTION_ID() AND STATE LIKE '%lock%'"
        )
    else:
        sql = (
            "SELECT COUNT(*) FROM pg_locks JOIN pg_database d ON d.oid = pg_locks.database"
            " WHERE d.datname = current_database() AND NOT pg_locks.granted"
        )
    return int(holder.execute(sql).fetchone()[0]) > 0


def site_server_locked(world: ServerWorld, how: sh.How, mode: str = "sync") -> sh.Stopped:
    """A's run waits for another program's lock on its server's ``clients``; SIGTERM."""
    world.mutate(2)
    hq = world.siege("serve")
    kind = world.servers["A"].kind
    with table_locked(world, "A") as holder:
        site = sh.site_run(world, mode)
        sh.wait_for(lambda: waiting_for_lock(holder, kind), "A waiting for the lock", 60, site)
        time.sleep(WAITED_S)
        if site.popen.poll() is not None or not waiting_for_lock(holder, kind):
            raise AssertionError(f"A did not wait for the lock: {site.output()[-2000:]}")
        out = sh.sigterm(site, how.limit)
    sh.sigterm(hq)
    return out


def site_sync_server_locked(world: ServerWorld, how: sh.How) -> sh.Stopped:
    return site_server_locked(world, how, "sync")


def site_serve_server_locked(world: ServerWorld, how: sh.How) -> sh.Stopped:
    return site_server_locked(world, how, "serve")


SERVER_STATES: dict[str, Callable[[ServerWorld, sh.How], sh.Stopped]] = {
    f.__name__: f for f in (site_sync_server_locked, site_serve_server_locked)
}
