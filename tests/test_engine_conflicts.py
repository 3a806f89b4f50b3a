"""Conflicts between a Siège and two establishments, step by step, on SQLite files.

Each test is a small story the property test (``test_engine_property``) found or could
find; written out so that a failure names the exact step.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import checksums, make_node

from synchro.config.model import ConflictPolicy, TableRule
from synchro.engine.node import Node

SCHEMA = "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, owner TEXT, changed DATETIME)"


@dataclass
class Trio:
    folder: Path
    hq: Node
    s1: Node
    s2: Node

    def sql(self, code: str, statement: str, params: tuple[Any, ...] = ()) -> None:
        conn = sqlite3.connect(self.folder / f"{code}.db")
        with conn:
            conn.execute(statement, params)
        conn.close()

    def rows(self, code: str) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.folder / f"{code}.db")
        try:
            return conn.execute("SELECT * FROM t ORDER BY id").fetchall()
        finally:
            conn.close()

    def publish_to(self, node: Node) -> str:
        path, _manifest = self.hq.publish(node.code, self.folder / "out")
        return node.import_package(path).status

    def converged(self) -> bool:
        sums = [checksums(str(self.folder / f"{c}.db")) for c in ("HQ", "S1", "S2")]
        return sums[0] == sums[1] == sums[2]


@pytest.fixture(params=list(ConflictPolicy))
def trio(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Trio]:
    policy: ConflictPolicy = request.param
    rule = TableRule(
        "t",
        policy,
        modified_column="changed" if policy is ConflictPolicy.LATEST_WINS else "",
        owner_column="owner" if policy is ConflictPolicy.ORIGIN_OWNS else "",
    )
    nodes = []
    for code in ("HQ", "S1", "S2"):
        db = tmp_path / f"{code}.db"
        conn = sqlite3.connect(db)
        conn.execute(SCHEMA)
        conn.close()
        nodes.append(make_node(tmp_path, code, str(db), hq=code == "HQ", rules=[rule]))
    yield Trio(tmp_path, *nodes)
    for node in nodes:
        node.close()


def test_delete_after_a_late_identical_insert_is_not_a_conflict(trio: Trio) -> None:
    """S1 and S2 insert the same row; S1's package is late and S1 then deletes the row.

    At the Siège S1's insert is ``unchanged`` (S2's equal row came first) and logged as
    S1's; S1's delete, based on the same old position, must not be taken for a conflict
    with S2's insert (S1 had agreed with it since): the row is deleted everywhere.
    """
    row = (1, "b", "HQ", "2025-01-01 10:00:00")
    trio.sql("S1", "INSERT INTO t VALUES (?, ?, ?, ?)", row)
    trio.sql("S2", "INSERT INTO t VALUES (?, ?, ?, ?)", row)
    late = trio.s1.export().path
    s2_first = trio.s2.export().path
    assert trio.hq.import_package(s2_first).status == "applied"
    assert trio.publish_to(trio.s1) == "stale"  # the Siège has not seen S1's package yet
    trio.sql("S1", "DELETE FROM t WHERE id = 1")
    delete = trio.s1.export().path
    for path in (late, delete):
        assert trio.hq.import_package(path).status == "applied"
    assert trio.hq.state.conflicts() == []
    assert trio.publish_to(trio.s1) == "applied"
    assert trio.publish_to(trio.s2) == "applied"
    assert trio.rows("HQ") == trio.rows("S1") == trio.rows("S2") == []
