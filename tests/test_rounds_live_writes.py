"""The shops keep working while the round runs (rules 1 and 3, and what a user expects).

A Siège and two establishments run a whole round as real ``python -m synchro`` processes
over FTPS on loopback while, at every node, the shop's own program (``live_writer``, a
process of its own) writes into the same database: new clients, changes and deletes of
them, and changes of a few « hot » clients that every shop changes. Then the writers stop
and one more round runs, as the next day's would. Checked, through each node's own driver:

- every node holds exactly the expected rows for everything but the hot clients: the
  group's changes of the round and every write of every shop, as its journal says it
  committed — nothing lost, nothing extra, nothing applied twice;
- the hot clients are the same everywhere, and no shop's last write to one was lost
  silently: it is what every node holds, or the losing version of a conflict kept in a
  node's state, or a later write of another shop replaced it;
- both rounds end OK at every node: a change a shop makes while the round runs is sent
  by the next one, it is no damage (before the « Contrôle » compared what the nodes
  exchanged, every node ended « Echec : tables différentes » here).

On PostgreSQL, MariaDB and SQLite (the Siège, A, B), and on SQLite files; and with a node
killed by SIGKILL at a failpoint (its capture, its apply, between its two commits) and
started again while the shops go on writing.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fault_helpers import NODES, SITES, TABLES, World, build_template, expected_after, sql
from fault_servers import ServerWorld, build_server_template, drop_template
from live_writer import HOT
from server_dbs import canon_rows, require_servers

pytestmark = [pytest.mark.faults]
WRITER = Path(__file__).with_name("live_writer.py")
# the Siège on PostgreSQL, A on MariaDB, B on SQLite (as ``test_faults_rounds_servers``)
SERVERS = {"SIEGE": "postgresql", "A": "mariadb", "B": "sqlite"}
Rows = dict[str, set[tuple[Any, ...]]]


class Templates:
    """Each layout's group after a first round (made on first use, under ``root``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.made: dict[str, Path] = {}

    def world(self, layout: str, root: Path) -> World:
        """A copy of ``layout``'s group in ``root``."""
        if layout == "sqlite":
            if layout not in self.made:
                self.made[layout] = build_template(self.root / "sqlite")
            return World.copy(self.made[layout], root)
        require_servers()
        if layout not in self.made:
            self.made[layout] = build_server_template(self.root / "servers", SERVERS)
        return ServerWorld.copy(self.made[layout], root)


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    """The templates of this module's tests; their server databases dropped at the end."""
    made = Templates(tmp_path_factory.mktemp("live"))
    yield made
    if "servers" in made.made:
        drop_template(made.made["servers"])


class Writers:
    """One ``live_writer`` process per node, stopped by its stop file and waited for."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.stop_file = world.root / "writers.stop"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        servers = world.servers if isinstance(world, ServerWorld) else {}
        for seed, node in enumerate(NODES):
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
                        str(seed),
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


@pytest.mark.parametrize("layout", ["sqlite", "servers"])
def test_a_round_while_every_shop_writes(layout: str, templates: Templates, tmp_path: Path) -> None:
    with templates.world(layout, tmp_path / "world") as world:
        world.mutate(2)
        writers = Writers(world)
        try:
            writers.wait_started()
            began = time.time()
            live = world.round("sync")
            ended = time.time()
            writers.stop()
        finally:
            writers.kill()
        during = {n: sum(began <= c["at"] <= ended for c in writers.changes(n)) for n in NODES}
        assert all(during.values()), f"writes during the round: {during}"
        outputs = "\n".join(p.output()[-1500:] for p in world.procs)
        assert live == {"A": 0, "B": 0, "SIEGE": 0}, outputs
        assert "modifications récentes" in world.procs[0].output(), outputs
        quiet = world.round("sync")
        outputs = "\n".join(p.output()[-1500:] for p in world.procs[3:])
        assert quiet == {"A": 0, "B": 0, "SIEGE": 0}, outputs
        same = canon_rows if isinstance(world, ServerWorld) else _same
        expected = expected_rows(world, templates.made[layout], writers)
        check_own_rows(world, same(expected))
        check_hot_rows(world, writers)


# (victim, failpoint): the capture written but not committed, a delivery half written,
# the user's database committed and the state not
KILLS = (
    ("A", "node.export.written"),
    ("SIEGE", "node.export.written"),
    ("A", "apply.batch:2"),
    ("SIEGE", "apply.batch:2"),
    ("A", "node.apply.db_committed"),
)


@pytest.mark.parametrize(("victim", "point"), KILLS)
def test_a_node_killed_while_every_shop_writes(
    victim: str, point: str, templates: Templates, tmp_path: Path
) -> None:
    """As above, and ``victim`` dies by SIGKILL at ``point`` and is started again at once
    while the shops go on writing; the round ends, then a quiet one: every node holds
    every write once, and nothing is left « En cours... »."""
    with templates.world("sqlite", tmp_path / "world") as world:
        world.mutate(2)
        writers = Writers(world)
        try:
            writers.wait_started()
            procs = {"SIEGE": world.siege("sync", kill=point if victim == "SIEGE" else "")}
            for site in SITES:
                procs[site] = world.start(site, "sync", kill=point if victim == site else "")
            assert procs[victim].wait() == -signal.SIGKILL, procs[victim].output()[-2000:]
            procs[victim] = (
                world.siege("sync", open_round=False)
                if victim == "SIEGE"
                else world.start(victim, "sync")
            )
            for proc in procs.values():
                proc.wait()
            writers.stop()
        finally:
            writers.kill()
        for _round in range(2):  # a quiet round; a second when the first found a restart
            quiet = world.round("sync")
            if quiet == {"A": 0, "B": 0, "SIEGE": 0}:
                break
        outputs = "\n".join(p.output()[-1500:] for p in world.procs)
        assert quiet == {"A": 0, "B": 0, "SIEGE": 0}, outputs
        check_own_rows(world, expected_rows(world, templates.made["sqlite"], writers))
        check_hot_rows(world, writers)
        assert not [world.running_rows(n) for n in NODES if world.running_rows(n)]


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


def _same(rows: Rows) -> Rows:
    return rows


def hot(table: str, row: tuple[Any, ...]) -> bool:
    return table == "clients" and row[0] in HOT


def _rows(db: Path) -> Rows:
    conn = sqlite3.connect(db)
    try:
        return {t: set(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in TABLES}
    finally:
        conn.close()


def replay(changes: list[dict[str, Any]]) -> str:
    """The SQL of a shop's journal, its own clients only (the hot ones are checked apart)."""

    def text(value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    lines = []
    for c in changes:
        if c["op"] == "insert":
            lines.append(f"INSERT INTO clients VALUES ({c['id']}, {text(c['nom'])}, 'live');")
        elif c["op"] == "update":
            lines.append(f"UPDATE clients SET nom = {text(c['nom'])} WHERE id = {c['id']};")
        elif c["op"] == "delete":
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
