"""The shops' own programs writing while a round runs (``live_writer``, one process a
node), and the checks of what every node holds afterwards: ``tests/test_rounds_live_writes.py``
and ``bench/soak_live.py``.

- every node holds exactly the expected rows for everything but the hot clients: the
  group's changes of the round and every write of every shop, as its journal says it
  committed — nothing lost, nothing extra, nothing applied twice (``check_own_rows``);
- the hot clients are the same everywhere, and no shop's last write to one was lost
  silently: it is what every node holds, or the losing version of a conflict kept in a
  node's state, or a later write of another shop replaced it (``check_hot_rows``).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fault_helpers import NODES, TABLES, World, expected_after, sql
from fault_servers import ServerWorld
from live_writer import HOT
from server_dbs import canon_rows

WRITER = Path(__file__).with_name("live_writer.py")
Rows = dict[str, set[tuple[Any, ...]]]


class Writers:
    """One ``live_writer`` process per node, stopped by its stop file and waited for."""

    def __init__(self, world: World, seed: int = 0) -> None:
        """``seed``: draws the writers' changes (each node's its own)."""
        self.world = world
        self.stop_file = world.root / "writers.stop"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        servers = world.servers if isinstance(world, ServerWorld) else {}
        for index, node in enumerate(NODES):
            db = servers.get(node)
            kind, target = (db.kind, db.name) if db else ("sqlite", str(world.db(node)))
            with open(world.root / f"writer-{node}.log", "wb") as errors:
                self.procs[node] = subprocess.Popen(
                    [
                        sys.executable,
                        str(WRITER),
                        node,
                        kind,
                        target,
                        str(self.journal(node)),
                        str(self.stop_file),
                        str(seed * len(NODES) + index),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=errors,
                )

    def journal(self, node: str) -> Path:
        return self.world.root / f"writer-{node}.jsonl"

    def changes(self, node: str) -> list[dict[str, Any]]:
        path = self.journal(node)
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    def wait_started(self) -> None:
        end = time.monotonic() + 30
        while any(len(self.changes(n)) < 5 for n in NODES):
            assert time.monotonic() < end, "a writer does not write"
            for node, proc in self.procs.items():
                assert proc.poll() is None, f"writer {node} died: {self.error(node)}"
            time.sleep(0.05)

    def error(self, node: str) -> str:
        return (self.world.root / f"writer-{node}.log").read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        self.stop_file.touch()
        for node, proc in self.procs.items():
            assert proc.wait(60) == 0, f"writer {node}: {self.error(node)}"

    def kill(self) -> None:
        """Those still running (a failed test), by PID."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def expected_rows(world: World, template: Path, writers: Writers) -> Rows:
    """The group's rows after round 2 and every shop's own writes, but the hot clients."""
    expected_after(world, template, 2)
    model = world.root / "expected.db"
    for node in NODES:  # the shops' own rows, as their journals say they committed them
        sql(model, replay(writers.changes(node)))
    return _rows(model)


def check_own_rows(world: World, expected: Rows) -> None:
    """Every node holds exactly the expected rows but for the hot clients."""
    for node in NODES:
        held = world.rows(node)
        for table in TABLES:
            want = {r for r in expected[table] if not hot(table, r)}
            got = {r for r in held[table] if not hot(table, r)}
            lost, extra = want - got, got - want
            assert not lost and not extra, (node, table, sorted(lost)[:5], sorted(extra)[:5])


def check_hot_rows(world: World, writers: Writers) -> None:
    """The hot clients are the same everywhere, and no shop's last write to one was lost
    silently (see the module docstring)."""
    hot_rows = {n: {r for r in world.rows(n)["clients"] if r[0] in HOT} for n in NODES}
    assert hot_rows["A"] == hot_rows["B"] == hot_rows["SIEGE"]
    final = {r[0]: r[2] for r in hot_rows["SIEGE"]}
    losers = " ".join(loser_texts(world))
    for node in NODES:
        last: dict[int, dict[str, Any]] = {}
        for change in writers.changes(node):
            if change["op"] == "hot":
                last[change["id"]] = change
        for key, change in last.items():
            mark = " ".join(change["note"].split(" ")[:3]) + " "  # « hot A 193 »: unique
            if final[key] == change["note"] or mark in losers:
                continue
            later = [
                c
                for n in NODES
                if n != node
                for c in writers.changes(n)
                if c["op"] == "hot"
                and c["id"] == key
                and c["note"] == final[key]
                and c["at"] > change["at"]
            ]
            assert later, f"{node}'s last write of client {key} lost silently: {change}"


def check_rows(world: World, template: Path, writers: Writers) -> None:
    """``check_own_rows`` against round 2 of ``template`` and the journals, then
    ``check_hot_rows`` (AssertionError saying what differs)."""
    expected = expected_rows(world, template, writers)
    check_own_rows(world, canon_rows(expected) if isinstance(world, ServerWorld) else expected)
    check_hot_rows(world, writers)


def hot(table: str, row: tuple[Any, ...]) -> bool:
    return table == "clients" and row[0] in HOT


def _rows(db: Path) -> Rows:
    conn = sqlite3.connect(db)
    try:
        return {t: set(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in TABLES}
    finally:
        conn.close()


def replay(changes: list[dict[str, Any]]) -> str:
    """The SQL of a shop's journal, its own clients and their orders only (the hot clients
    are checked apart)."""

    def text(value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    lines = []
    for c in changes:
        if c["op"] == "insert":
            lines.append(f"INSERT INTO clients VALUES ({c['id']}, {text(c['nom'])}, 'live');")
            lines.append(f"INSERT INTO commandes VALUES ({c['id']}, {c['id']}, '12.50', 'live');")
        elif c["op"] == "update":
            lines.append(f"UPDATE clients SET nom = {text(c['nom'])} WHERE id = {c['id']};")
        elif c["op"] == "delete":
            lines.append(f"DELETE FROM commandes WHERE client_id = {c['id']};")
            lines.append(f"DELETE FROM clients WHERE id = {c['id']};")
    return "\n".join(lines)


def loser_texts(world: World) -> list[str]:
    """The losing versions of every conflict kept in every node's state."""
    out = []
    for node in NODES:
        for state in world.folder(node).rglob("state.db"):
            conn = sqlite3.connect(state)
            try:
                out += [str(r[0]) for r in conn.execute("SELECT loser_json FROM conflicts")]
            finally:
                conn.close()
    return out
