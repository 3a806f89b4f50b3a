"""The engine end to end on the four real back ends, and across back ends.

Each scenario runs on two fresh databases of one kind (stdlib sqlite3, SQLite through
``SQLite3`` ODBC, PostgreSQL through ``PostgreSQL Unicode``, MariaDB through ``MariaDB
Unicode``): a site exports, the Siège imports, tables compare equal by per-table
checksums, then updates and deletes (children and their parent) go both ways, nothing
is ever echoed back, and the key-less table is reported with its reason.
Creating a PostgreSQL database costs about a second, so each back end gets one long
scenario rather than many small tests.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from backends import Backend, create_sample_schema
from engine_helpers import CHILDREN, KINDS_ROWS, Db, fill_sample, make_node, value_problems

from synchro.config.model import TableRule
from synchro.engine.node import Node

SYNCED = ["cfgkey", "child", "deckey", "guarded", "kinds", "pair", "parent", "textkey", "uniq"]
RULES = [TableRule("cfgkey", key=("code",))]  # no key in the database: named in the config
SAME = [n for n in SYNCED if n != "guarded"]  # guarded: the receiver refuses a row


def add_extra_tables(backend: Backend, *, guarded: bool) -> None:
    """``deckey``: a DECIMAL key (spooled capture); ``guarded``: a CHECK on the receiver;
    ``cfgkey``: no key in the database, one named in the configuration."""
    check = " CHECK (v >= 0)" if guarded else ""
    engine = " ENGINE=InnoDB" if backend.dialect == "mysql" else ""
    backend.execute(
        f"CREATE TABLE deckey (k DECIMAL(10,2) NOT NULL PRIMARY KEY, v VARCHAR(20)){engine}"
    )
    backend.execute(
        f"CREATE TABLE guarded (id INTEGER NOT NULL PRIMARY KEY, v INTEGER{check}){engine}"
    )
    backend.execute(f"CREATE TABLE cfgkey (code VARCHAR(20) NOT NULL, v INTEGER){engine}")


def prepare(db: Backend, *, guarded: bool) -> None:
    create_sample_schema(db)
    add_extra_tables(db, guarded=guarded)


def export_rows(node: Node) -> int:
    """Rows the node's next export holds (a site only looks: a real export would take a
    sequence the Siège then waits for)."""
    if node.config.is_hq:
        return node.export().manifest.rows
    return sum(sum(c.values()) for c in node.pending_changes().values())


def check_first_copy(a: Db, b: Db, site: Node, hq: Node) -> None:
    tables, skipped, _ = site.tables()
    assert [t.name for t in tables if t.name in ("parent", "child")] == ["parent", "child"]
    assert sorted(t.name for t in tables) == SYNCED
    assert {t.name: t.key_source for t in tables}["cfgkey"] == "config"
    assert [s.table for s in skipped] == ["nokey"]
    assert "clé" in skipped[0].reason

    exported = site.export()
    counts = exported.capture.counts
    assert counts["kinds"].inserts == len(KINDS_ROWS)
    assert counts["child"].inserts == len(CHILDREN)
    assert "nokey" not in counts
    result = hq.import_package(exported.path)
    assert result.status == "applied"
    assert result.stats.quarantined == 1
    [refused] = hq.state.quarantined()
    assert refused["tbl"] == "guarded" and refused["key_json"] == "[2]"
    assert refused["error"]

    assert b.checksums(SAME) == a.checksums(SAME)
    kinds = {int(r[0]): r for r in b.rows("kinds")}
    assert value_problems(b.tables["kinds"], kinds, KINDS_ROWS) == []
    assert b.rows("guarded") == [(1, 5), (3, 7)]
    assert b.checksums(["nokey"])["nokey"][0] == 0
    assert export_rows(hq) == 0, "rows applied from the site must not be echoed back"
    assert export_rows(site) == 0


def change_site(a: Backend, db: Db) -> None:
    """Updates (to and from NULL), deletes of a parent with its children, new rows."""
    kinds = list(KINDS_ROWS)
    kinds[0] = (
        *kinds[0][:2],
        Decimal("-99.99"),
        "modifié é 😀",
        *kinds[0][4:8],
        b"\xfe",
        *kinds[0][9:],
    )
    kinds[1] = (2, *[None] * 11)
    when = dt.datetime(2020, 1, 1, 1, 1, 1)
    kinds[2] = (3, 7, Decimal("3.10"), "plus NULL", when.date(), when, False, "n", b"\x00", 2.5,
                dt.time(1, 2, 3), None)  # fmt: skip
    db.write("kinds", kinds[:3])
    a.execute("DELETE FROM kinds WHERE id = ?", [4])
    a.execute("DELETE FROM child WHERE parent_id = ?", [1])
    a.execute("DELETE FROM parent WHERE id = ?", [1])
    a.execute("UPDATE pair SET qty = ? WHERE site = ? AND num = ?", [99, "A", 2])
    a.execute("DELETE FROM pair WHERE site = ? AND num = ?", ["B", 1])
    a.execute("INSERT INTO pair (site, num, qty) VALUES (?, ?, ?)", ["C", 1, None])
    a.execute("UPDATE textkey SET v = ? WHERE code = ?", [1000, "Zoé"])
    a.execute("DELETE FROM textkey WHERE code = ?", ["😀"])
    a.execute("UPDATE uniq SET v = ? WHERE code = ?", [5, "U2"])
    db.write("deckey", [(Decimal("2.50"), "deux et demi modifié")])
    db.delete("deckey", [(Decimal("-3.25"),)])
    a.execute("DELETE FROM guarded WHERE id = ?", [3])
    a.execute("UPDATE cfgkey SET v = ? WHERE code = ?", [30, "Zoé"])
    a.execute("DELETE FROM cfgkey WHERE code = ?", ["c1"])
    a.execute("INSERT INTO cfgkey (code, v) VALUES (?, ?)", ["c4", None])


def change_hq(b: Backend) -> None:
    b.execute("INSERT INTO parent (id, name) VALUES (?, ?)", [50, "créé au siège"])
    b.execute("INSERT INTO child (id, parent_id, label) VALUES (?, ?, ?)", [500, 50, "siège"])
    b.execute("UPDATE child SET label = ? WHERE id = ?", ["changé au siège", 3])
    b.execute("DELETE FROM child WHERE parent_id = ?", [2])
    b.execute("DELETE FROM parent WHERE id = ?", [2])
    b.execute("DELETE FROM uniq WHERE code = ?", ["U1"])


DECIMAL_KEYS = [
    (Decimal("1.50"), "un et demi"),
    (Decimal("-3.25"), "moins"),
    (Decimal("10"), "dix"),
    (Decimal("2.50"), "deux et demi"),
]


def test_round_trip_on_one_back_end(
    backend: Backend, make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    a, b = backend, make_backend(backend.name)
    prepare(a, guarded=False)
    prepare(b, guarded=True)
    with (
        Db(a.connection) as da,
        Db(b.connection) as db,
        make_node(tmp_path, "A", a.connection, rules=RULES) as site,
        make_node(tmp_path, "B", b.connection, hq=True, rules=RULES) as hq,
    ):
        fill_sample(da)
        for code, v in (("c1", 1), ("c2", 2), ("Zoé", 3)):
            a.execute("INSERT INTO cfgkey (code, v) VALUES (?, ?)", [code, v])
        da.write("deckey", DECIMAL_KEYS)
        da.write("guarded", [(1, 5), (2, -1), (3, 7)])
        a.execute("INSERT INTO nokey (v, n) VALUES (?, ?)", ["pas de clé", 1])
        check_first_copy(da, db, site, hq)

        # Site → Siège: updates and deletes round-trip exactly.
        change_site(a, da)
        exported = site.export()
        assert exported.capture.counts["parent"].deletes == 1
        assert exported.capture.counts["child"].deletes == 2
        assert hq.import_package(exported.path).status == "applied"
        assert db.checksums(SAME) == da.checksums(SAME)
        assert db.rows("guarded") == [(1, 5)]
        assert export_rows(hq) == 0

        # Siège → site through publish: its own changes, none of the site's echoed.
        change_hq(b)
        assert export_rows(hq) == 8
        result = site.import_package(hq.publish("A", tmp_path / "out")[0])
        assert result.status == "applied", result.message
        assert (result.stats.upserts, result.stats.deletes) == (3, 5)
        assert da.checksums(SAME) == db.checksums(SAME)
        assert export_rows(site) == 0
        assert export_rows(hq) == 0
        assert site.status().outbox == []  # the Siège acknowledged every site package


def test_chain_sqlite_postgresql_mariadb_converges(
    make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    """Site 1 on an SQLite file, Siège on PostgreSQL, site 2 on MariaDB."""
    s1, hq_db, s2 = make_backend("sqlite"), make_backend("postgresql"), make_backend("mariadb")
    for backend in (s1, hq_db, s2):
        create_sample_schema(backend)
    names = ["child", "kinds", "pair", "parent", "textkey", "uniq"]

    with (
        Db(s1.connection) as d1,
        Db(hq_db.connection) as dhq,
        Db(s2.connection) as d2,
        make_node(tmp_path, "S1", s1.connection) as n1,
        make_node(tmp_path, "HQ", hq_db.connection, hq=True) as hq,
        make_node(tmp_path, "S2", s2.connection) as n2,
    ):
        fill_sample(d1)

        def round_trip() -> None:
            p1, p2 = n1.export().path, n2.export().path
            hq.export()
            assert hq.import_package(p1).status == "applied"
            assert hq.import_package(p2).status == "applied"
            for node, code in ((n1, "S1"), (n2, "S2")):
                result = node.import_package(hq.publish(code, tmp_path / "out")[0])
                assert result.status == "applied", result.message

        round_trip()
        expected = d1.checksums(names)
        assert dhq.checksums(names) == expected
        assert d2.checksums(names) == expected

        s2.execute("UPDATE kinds SET label = ?, flag = ? WHERE id = ?", ["depuis MariaDB ü", 0, 1])
        s2.execute("DELETE FROM child WHERE parent_id = ?", [3])
        s2.execute("DELETE FROM parent WHERE id = ?", [3])
        hq_db.execute("UPDATE pair SET qty = ? WHERE site = ? AND num = ?", [7, "Zoé", 1])
        s1.execute("INSERT INTO textkey (code, v) VALUES (?, ?)", ["nouveau ß", 1])
        round_trip()
        expected = dhq.checksums(names)
        assert expected["parent"][0] == 4
        assert d1.checksums(names) == expected
        assert d2.checksums(names) == expected
        for node in (n1, hq, n2):
            assert export_rows(node) == 0


def test_text_keys_distinct_elsewhere_are_not_merged_on_mariadb(
    make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    a, b = make_backend("sqlite"), make_backend("mariadb")
    for backend in (a, b):
        create_sample_schema(backend)
    keys = [("abc", 1), ("ABC", 2), ("a", 3), ("a ", 4), ("e", 5), ("é", 6)]
    with (
        Db(a.connection) as da,
        Db(b.connection) as db,
        make_node(tmp_path, "A", a.connection) as site,
        make_node(tmp_path, "B", b.connection, hq=True) as hq,
    ):
        da.write("textkey", keys)
        result = hq.import_package(site.export().path)
        kept = db.rows("textkey")
        refused = {q["key_json"] for q in hq.state.quarantined()}
        assert len(kept) + len(refused) == len(keys)
        assert set(kept) <= set(keys), "a row must never take another row's values"
        assert result.stats.upserts == len(kept)
        assert export_rows(hq) == 0


FLOATS = [1 / 3, 0.1 + 0.2, 123456789.12345679, 1e-300, 2.0**60 + 2048]


def test_floats_arrive_exactly_and_are_not_echoed(
    request: pytest.FixtureRequest,
    backend: Backend,
    make_backend: Callable[[str], Backend],
    tmp_path: Path,
) -> None:
    """17 significant digits through every back end; a rounded read-back would also come
    back as an update at the next export (an echo that spreads the rounded value)."""
    source = make_backend("sqlite")
    for each in (source, backend):
        create_sample_schema(each)
    rows = [(i, *[None] * 8, value, None, None) for i, value in enumerate(FLOATS)]
    with (
        Db(source.connection) as da,
        Db(backend.connection) as db,
        make_node(tmp_path, "A", source.connection) as site,
        make_node(tmp_path, "B", backend.connection, hq=True) as hq,
    ):
        da.write("kinds", rows)
        assert hq.import_package(site.export().path).status == "applied"
        assert [repr(r[9]) for r in db.rows("kinds")] == [repr(v) for v in FLOATS]
        assert export_rows(hq) == 0
