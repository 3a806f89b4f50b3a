"""Rows of keys a node never exchanged are INSERTed without reading the table first
(``engine.apply``: ``_all_new``, ``_inserted``); the database's own refusal of a second row
of a key tells when a row of that key was made here since. On every back end, real
databases: a row made locally between the capture and the apply is still a conflict the
table's rule decides (logged, never overwritten unsaid nor refused), a configured key
that the database does not enforce still finds the local row, and the batches around it
are applied exactly.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from backends import Backend
from engine_helpers import Db, make_node

from synchro.config.model import TableRule

RULES = [TableRule("cfg", key=("code",))]
ROWS = 600  # two batches of the apply: the first holds the conflicting key, the second not


def make_tables(execute: Callable[[str], object]) -> None:
    execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v VARCHAR(20))")
    execute("CREATE TABLE cfg (code VARCHAR(10), v VARCHAR(20))")  # no key in the database


def siege_db(folder: Path, rows: int) -> Path:
    """The Siège's SQLite file with ``rows`` rows in ``t``."""
    path = folder / "hq.db"
    conn = sqlite3.connect(path)
    make_tables(conn.execute)
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(n, f"siège {n}") for n in range(rows)])
    conn.commit()
    conn.close()
    return path


def test_a_row_made_here_since_the_capture_is_a_conflict_not_overwritten(
    backend: Backend, tmp_path: Path
) -> None:
    hq_db = siege_db(tmp_path, ROWS)
    conn = sqlite3.connect(hq_db)
    with conn:
        conn.executemany("INSERT INTO cfg VALUES (?, ?)", [("k1", "siège"), ("k2", "siège")])
    conn.close()
    make_tables(backend.execute)
    with (
        make_node(tmp_path, "HQ", str(hq_db), hq=True, rules=RULES) as hq,
        make_node(tmp_path, "A", backend.connection, rules=RULES) as site,
    ):
        sent = site.export()  # the site's capture: nothing yet
        assert sent.manifest.rows == 0
        hq.export()
        assert hq.import_package(sent.path).status == "applied"
        path, _manifest = hq.publish("A", tmp_path / "out")
        # made at the site after its capture, before the Siège's answer is applied
        backend.execute("INSERT INTO t (id, v) VALUES (?, ?)", [1, "ici"])
        backend.execute("INSERT INTO cfg (code, v) VALUES (?, ?)", ["k1", "ici"])
        result = site.import_package(path)
        assert result.status == "applied", result.message
        assert result.stats.conflicts == 2
        assert result.stats.quarantined == 0
        conflicts = {(c["tbl"], c["key_json"]): c for c in site.state.conflicts()}
        assert set(conflicts) == {("t", "[1]"), ("cfg", '["k1"]')}
        for conflict in conflicts.values():  # hq-wins: the Siège's version, the site's logged
            assert (conflict["winner"], conflict["loser"]) == ("HQ", "A")
            assert "ici" in (conflict["loser_json"] or "")
        with Db(backend.connection) as db:
            assert db.rows("t") == [(n, f"siège {n}") for n in range(ROWS)]
        assert sorted(backend.query("SELECT code, v FROM cfg")) == [
            ("k1", "siège"),
            ("k2", "siège"),
        ]
        assert site.state.quarantined() == []
        assert site.export().manifest.rows == 0  # nothing to send back: in step


def test_a_row_deleted_here_since_the_capture_is_a_conflict(
    backend: Backend, tmp_path: Path
) -> None:
    """A row both nodes hold, deleted at the site after its capture, while the Siège's
    update of it is on its way: the key is known (snapshot), so it is no new row: the
    rule decides (hq-wins: the Siège's version comes back) and the delete is logged."""
    hq_db = siege_db(tmp_path, 3)
    make_tables(backend.execute)
    with (
        make_node(tmp_path, "HQ", str(hq_db), hq=True, rules=RULES) as hq,
        make_node(tmp_path, "A", backend.connection, rules=RULES) as site,
    ):
        hq.export()
        first = site.export()
        assert hq.import_package(first.path).status == "applied"
        assert site.import_package(hq.publish("A", tmp_path / "out")[0]).status == "applied"
        sql = sqlite3.connect(hq_db)
        with sql:
            sql.execute("UPDATE t SET v = 'corrigée' WHERE id = 1")
        sql.close()
        hq.export()
        assert hq.import_package(site.export().path).status == "applied"
        path, _manifest = hq.publish("A", tmp_path / "out")
        backend.execute("DELETE FROM t WHERE id = ?", [1])  # after the site's capture
        result = site.import_package(path)
        assert result.status == "applied", result.message
        [conflict] = site.state.conflicts()
        assert (conflict["key_json"], conflict["winner"], conflict["loser"]) == ("[1]", "HQ", "A")
        assert conflict["loser_json"] is None  # the losing version is the delete
        with Db(backend.connection) as db:
            assert db.rows("t") == [(0, "siège 0"), (1, "corrigée"), (2, "siège 2")]


def test_a_row_another_site_deleted_is_a_conflict_at_the_siege(
    backend: Backend, tmp_path: Path
) -> None:
    """At the Siège (its database on each back end): S2's delete of a row is applied, then
    S1's update of the same row, made before S1 heard of the delete, arrives. The Siège no
    longer holds the key, but another origin's change of it came after S1's position: a
    conflict the rule decides (hq-wins at the Siège: the version it holds, the delete),
    never the row put back unsaid."""
    make_tables(backend.execute)
    dbs = {}
    for code in ("S1", "S2"):
        dbs[code] = tmp_path / f"{code}.db"
        conn = sqlite3.connect(dbs[code])
        make_tables(conn.execute)
        conn.commit()
        conn.close()
    with (
        make_node(tmp_path, "HQ", backend.connection, hq=True, rules=RULES) as hq,
        make_node(tmp_path, "S1", str(dbs["S1"]), rules=RULES) as s1,
        make_node(tmp_path, "S2", str(dbs["S2"]), rules=RULES) as s2,
    ):
        backend.execute("INSERT INTO t (id, v) VALUES (?, ?)", [1, "départ"])
        hq.export()
        for node in (s1, s2):
            assert hq.import_package(node.export().path).status == "applied"
            path = hq.publish(node.code, tmp_path / "out")[0]
            assert node.import_package(path).status == "applied"
        for code, statement in (("S1", "UPDATE t SET v = 'S1' WHERE id = 1"),
                                ("S2", "DELETE FROM t WHERE id = 1")):  # fmt: skip
            conn = sqlite3.connect(dbs[code])
            with conn:
                conn.execute(statement)
            conn.close()
        s1_package = s1.export().path
        assert hq.import_package(s2.export().path).status == "applied"
        result = hq.import_package(s1_package)
        assert result.status == "applied", result.message
        assert backend.query("SELECT id FROM t") == []
        [conflict] = hq.state.conflicts()
        assert (conflict["key_json"], conflict["winner"], conflict["loser"]) == ("[1]", "S2", "S1")
