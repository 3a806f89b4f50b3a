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
WAITING_S = 3.0  # A's run is blocked on the lock by then (its capture needs the table)


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


def site_server_locked(world: ServerWorld, how: sh.How, mode: str = "sync") -> sh.Stopped:
    """A's run waits for another program's lock on its server's ``clients``; SIGTERM."""
    world.mutate(2)
    hq = world.siege("serve")
    with table_locked(world, "A"):
        site = sh.site_run(world, mode)
        time.sleep(WAITING_S)
        if site.popen.poll() is not None:
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
