"""Property test: a Siège and two establishments on SQLite files converge.

Hypothesis draws, for several rounds, random inserts, updates and deletes at every node
(some at the establishments after they exported, so the Siège's package meets local
changes), how many packages each establishment makes, the order in which they reach the
Siège, which are delivered twice, which arrive a round late, and which establishment is
offline for a round (its Siège package is lost; it catches up later). The engine must answer
``applied`` / ``duplicate`` / ``waiting`` / ``stale`` exactly as the model says; after
quiet rounds every node holds the same tables (per-table checksums), and no conflict is
logged twice for the same (package, table, key). Run for the three conflict policies.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import checksums, make_node
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synchro.config.model import ConflictPolicy, TableRule
from synchro.engine.node import Node

# Many small files are written and fsynced per example: a RAM folder keeps it quick.
RAM_DIR = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
SITES = ("S1", "S2")
CODES = ("HQ", *SITES)
SCHEMA = (
    "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, owner TEXT, changed DATETIME)",
    "CREATE TABLE c (a TEXT NOT NULL, b INTEGER NOT NULL, v INTEGER, PRIMARY KEY (a, b))",
)
TEXTS = ["", "é", "😀", "x" * 30, "Zoé"]
DATES = ["2025-01-01 10:00:00", "2025-01-01 10:00:01", "2025-03-01 00:00:00"]

# One operation: ("t", id, None | (v, owner, changed)) or ("c", (a, b), None | v).
t_op = st.tuples(
    st.just("t"),
    st.integers(1, 6),
    st.none() | st.tuples(st.sampled_from(TEXTS), st.sampled_from(CODES), st.sampled_from(DATES)),
)
c_op = st.tuples(
    st.just("c"),
    st.tuples(st.sampled_from(["a", "é"]), st.integers(1, 2)),
    st.none() | st.integers(-3, 3),
)
ops = st.lists(t_op | c_op, max_size=5)


def rules_for(policy: ConflictPolicy) -> list[TableRule]:
    if policy is ConflictPolicy.LATEST_WINS:
        return [TableRule("t", policy, modified_column="changed"), TableRule("c", policy)]
    if policy is ConflictPolicy.ORIGIN_OWNS:
        return [TableRule("t", policy, owner_column="owner"), TableRule("c", policy)]
    return [TableRule("t", policy), TableRule("c", policy)]


def run_ops(path: Path, operations: list[tuple[Any, ...]]) -> None:
    conn = sqlite3.connect(path)
    with conn:
        for table, key, value in operations:
            if table == "t" and value is None:
                conn.execute("DELETE FROM t WHERE id = ?", (key,))
            elif table == "t":
                conn.execute("INSERT OR REPLACE INTO t VALUES (?, ?, ?, ?)", (key, *value))
            elif value is None:
                conn.execute("DELETE FROM c WHERE a = ? AND b = ?", key)
            else:
                conn.execute("INSERT OR REPLACE INTO c VALUES (?, ?, ?)", (*key, value))
    conn.close()


@dataclass
class Group:
    """Three nodes and the model of what the Siège has applied."""

    folder: Path
    nodes: dict[str, Node]
    applied: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SITES, 0))
    exported: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SITES, 0))
    seen: list[tuple[str, str]] = field(default_factory=list)  # (package, status) at the Siège

    def db(self, code: str) -> Path:
        return self.folder / f"{code}.db"

    @property
    def hq(self) -> Node:
        return self.nodes["HQ"]

    def export(self, site: str) -> tuple[str, int, Path]:
        result = self.nodes[site].export()
        self.exported[site] = result.manifest.sequence
        return site, result.manifest.sequence, result.path

    def deliver(self, packages: list[tuple[str, int, Path]]) -> None:
        """Offer packages to the Siège in this order; a ``waiting`` one is offered again
        after each package applied, as a real Siège does when the missing one arrives."""
        waiting: list[tuple[str, int, Path]] = []
        for package in packages:
            self._offer(package, waiting)
            progressed = True
            while progressed:
                progressed = False
                for held in sorted(waiting, key=lambda p: p[1]):
                    if held[1] == self.applied[held[0]] + 1:
                        waiting.remove(held)
                        self._offer(held, waiting)
                        progressed = True
        assert waiting == [], f"never applied: {waiting}"

    def _offer(self, package: tuple[str, int, Path], waiting: list[tuple[str, int, Path]]) -> None:
        site, sequence, path = package
        expected = self.applied[site]
        result = self.hq.import_package(path)
        if sequence <= expected:
            assert result.status == "duplicate", (package, result)
        elif sequence == expected + 1:
            assert result.status == "applied", (package, result)
            self.applied[site] = sequence
        else:
            assert result.status == "waiting", (package, result)
            if package not in waiting:
                waiting.append(package)
        self.seen.append((f"{site}#{sequence}", result.status))

    def publish(self, site: str, twice: bool) -> None:
        path, _manifest = self.hq.publish(site, self.folder / "out")
        node = self.nodes[site]
        result = node.import_package(path)
        if self.applied[site] < self.exported[site]:
            assert result.status == "stale", result
            return
        assert result.status == "applied", (result.status, result.message)
        if twice:
            assert node.import_package(path).status == "duplicate"

    def checksums(self) -> dict[str, Any]:
        return {code: checksums(str(self.db(code))) for code in CODES}

    def conflicts_once(self) -> None:
        for code, node in self.nodes.items():
            idents = [(c["package"], c["tbl"], c["key_json"]) for c in node.state.conflicts()]
            assert len(idents) == len(set(idents)), (code, idents)
            assert all(c["winner"] != c["loser"] for c in node.state.conflicts())


@contextmanager
def group(policy: ConflictPolicy) -> Iterator[Group]:
    folder = Path(tempfile.mkdtemp(prefix="synchro-prop-", dir=RAM_DIR))
    nodes: dict[str, Node] = {}
    try:
        for code in CODES:
            db = folder / f"{code}.db"
            conn = sqlite3.connect(db)
            for sql in SCHEMA:
                conn.execute(sql)
            conn.commit()
            conn.close()
            nodes[code] = make_node(folder, code, str(db), hq=code == "HQ", rules=rules_for(policy))
        yield Group(folder, nodes)
    finally:
        for node in nodes.values():
            node.close()
        shutil.rmtree(folder, ignore_errors=True)


def one_round(g: Group, data: st.DataObject, carried: list[tuple[str, int, Path]]) -> list[Any]:
    """One round with random changes and deliveries; returns the packages held back.

    An offline site changes its data but sends nothing, and the package the Siège made
    for it is lost: it catches up in a later round."""
    packages = list(carried)
    offline = data.draw(st.sets(st.sampled_from(SITES), max_size=1), label="site offline")
    for code in CODES:
        run_ops(g.db(code), data.draw(ops, label=f"{code} changes"))
    for site in SITES:
        if site in offline:
            continue
        packages.append(g.export(site))
        if data.draw(st.booleans(), label=f"{site} makes a second package"):
            run_ops(g.db(site), data.draw(ops, label=f"{site} more changes"))
            packages.append(g.export(site))
    g.hq.export()
    order = data.draw(st.permutations(packages), label="arrival order")
    late = data.draw(st.sets(st.sampled_from(SITES)), label="sites whose last package is late")
    held = [p for p in order if p[0] in late and p[1] == g.exported[p[0]] and p not in carried]
    arriving = [p for p in order if p not in held]
    twice = (
        data.draw(st.lists(st.sampled_from(arriving), max_size=2), label="delivered twice")
        if arriving
        else []
    )
    g.deliver(arriving + twice)
    for site in SITES:
        if site in offline:
            g.hq.publish(site, g.folder / "lost")
            continue
        run_ops(g.db(site), data.draw(ops, label=f"{site} changes while HQ publishes"))
        g.publish(site, twice=data.draw(st.booleans(), label=f"{site} receives twice"))
    return held


def quiet_round(g: Group, carried: list[tuple[str, int, Path]]) -> None:
    packages = [*carried, *(g.export(site) for site in SITES)]
    g.hq.export()
    g.deliver(sorted(packages, key=lambda p: (p[0], p[1])))
    for site in SITES:
        g.publish(site, twice=False)


@pytest.mark.parametrize("policy", list(ConflictPolicy))
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_three_nodes_converge(policy: ConflictPolicy, data: st.DataObject) -> None:
    with group(policy) as g:
        carried: list[tuple[str, int, Path]] = []
        for _ in range(data.draw(st.integers(1, 3), label="rounds")):
            carried = one_round(g, data, carried)
        quiet_round(g, carried)
        quiet_round(g, [])
        sums = g.checksums()
        assert sums["S1"] == sums["HQ"], g.seen
        assert sums["S2"] == sums["HQ"], g.seen
        g.conflicts_once()
        # Stable: one more quiet round moves nothing at all.
        quiet_round(g, [])
        assert g.checksums() == sums
