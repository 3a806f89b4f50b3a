"""Types and tables of each server's own, sent as the server keeps them.

PostgreSQL's enums, domains, intervals, addresses, arrays, XML, bit strings, money, ranges
and points; MariaDB's ENUM, SET, YEAR, BIT(n), MEDIUMINT UNSIGNED, INET6, UUID and TINYTEXT
— real multilingual values, and NULL — to a database of the same server, and to SQLite as
text; numbers and times at their limits between PostgreSQL and MariaDB; PostgreSQL's
partitioned and inherited tables. Stored as sent, read back through the test's own
connections, or refused naming the table and column. Before: a MariaDB INET6 set every
row holding an address aside at the capture; PostgreSQL's MONEY travelled as a double (a
value past 15 digits altered, stored elsewhere without a word); an inet host address was
set aside as stored otherwise; a TIME of 24:00:00 made its table unreadable; partitions
sent every row twice; a child table's rows travelled as its parent's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from backends import Backend
from engine_helpers import make_node

from synchro.engine.node_results import ImportResult
from synchro.errors import DatabaseError

PG_TYPES = [
    "CREATE TYPE humeur AS ENUM ('gai', 'triste', 'très « content » 😀')",
    "CREATE DOMAIN courriel AS TEXT CHECK (VALUE LIKE '%@%')",
    "CREATE TABLE t (id INT PRIMARY KEY, h humeur, d interval, ip inet, arr int[], x xml,"
    " c courriel, bits bit(8), m money, r tstzrange, pt point)",
]
PG_ROWS = [
    "INSERT INTO t VALUES (1, 'très « content » 😀', '1 year 2 mons 3 days 04:05:06.789',"
    " '192.168.0.1/24', '{1,2,NULL}', '<a>漢字 é</a>', 'zoé@exemple.fr', B'10101010', 12.34,"
    " '[2020-01-01,2040-01-01)', '(1.5,-2)')",
    "INSERT INTO t VALUES (2, 'gai', '-178000000 years', '::1', '{}', '<b/>', 'a@b', B'00000000',"
    " -92233720368547758.08, 'empty', '(0,0)')",
    "INSERT INTO t VALUES (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
]
MARIA_TYPES = [
    "CREATE TABLE t (id INT PRIMARY KEY, e ENUM('gai', 'triste', 'très « content » 😀'),"
    " s SET('a', 'b', 'ç'), y YEAR, b BIT(8), mi MEDIUMINT UNSIGNED, ip INET6, u UUID,"
    " tt TINYTEXT) CHARACTER SET utf8mb4",
]
MARIA_ROWS = [
    "INSERT INTO t VALUES (1, 'très « content » 😀', 'a,ç', 1901, b'10101010', 16777215,"
    " '2001:db8::ff00:42:8329', '123e4567-e89b-12d3-a456-426614174000', 'Zoé 漢字 😀')",
    "INSERT INTO t VALUES (2, 'gai', '', 2155, b'00000000', 0, '::ffff:192.168.0.1',"
    " '00000000-0000-0000-0000-000000000000', '')",
    "INSERT INTO t VALUES (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
]
SELECT = {"postgresql": "SELECT id, h, d, ip, arr, x, c, bits, CAST(m AS numeric), r, pt FROM t"}
SERVERS = {"postgresql": (PG_TYPES, PG_ROWS), "mariadb": (MARIA_TYPES, MARIA_ROWS)}


def _send(
    tmp_path: Path, source: Backend, dest: Backend, rows: list[str]
) -> tuple[ImportResult, dict[int, str]]:
    """``rows`` written at a site on ``source``, its package imported at a Siège on
    ``dest``: the import, and the rows the Siège set aside (id → why)."""
    for statement in rows:
        source.execute(statement)
    site = make_node(tmp_path, "A", source.connection)
    hq = make_node(tmp_path, "SIEGE", dest.connection, hq=True)
    try:
        made = site.export()
        assert made.capture.held == 0, site.state.quarantined()
        result = hq.import_package(made.path)
        refused = {int(q["key_json"][1:-1]): q["error"] for q in hq.state.quarantined()}
    finally:
        site.close()
        hq.close()
    return result, refused


def _as_text(value: Any) -> Any:
    """A value as SQLite's TEXT column holds what the server's text form is."""
    if isinstance(value, bytes):
        return value
    if value is None or isinstance(value, str):
        return value
    return str(value)


@pytest.mark.parametrize("to", ["same", "sqlite"])
@pytest.mark.parametrize("server", SERVERS)
def test_a_server_s_own_types_travel_as_it_keeps_them(
    tmp_path: Path, make_backend: Callable[[str], Backend], server: str, to: str
) -> None:
    types, rows = SERVERS[server]
    source = make_backend(server)
    dest = make_backend(server if to == "same" else "sqlite")
    for statement in types:
        source.execute(statement)
    if to == "same":
        for statement in types:
            dest.execute(statement)
    else:
        names = [r[0] for r in source.query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 't'"
            + (" AND table_schema = DATABASE()" if server == "mariadb" else
               " AND table_schema = current_schema()")
            + " ORDER BY ordinal_position")]  # fmt: skip
        kinds = {"id": "INTEGER PRIMARY KEY", "b": "BLOB"}
        columns = ", ".join(f"{n} {kinds.get(n, 'TEXT')}" for n in names)
        dest.execute(f"CREATE TABLE t ({columns})")
    result, refused = _send(tmp_path, source, dest, rows)
    assert not refused, refused
    assert result.status == "applied" and result.stats.upserts == 3, result
    # The test reads PostgreSQL's money as numeric: its driver hands a double.
    select = SELECT.get(server, "SELECT * FROM t")
    sent = {r[0]: tuple(r) for r in source.query(select)}
    stored = {r[0]: tuple(r) for r in dest.query(select if to == "same" else "SELECT * FROM t")}
    if to == "sqlite":
        sent = {k: tuple(_as_text(v) if i else v for i, v in enumerate(r)) for k, r in sent.items()}
        stored = {k: tuple(_as_text(v) if i else v for i, v in enumerate(r))
                  for k, r in stored.items()}  # fmt: skip
    assert stored == sent and len(stored) == 3
    if server == "postgresql":  # money at its limit, not a double's 17 digits
        assert _as_text(stored[2][8]) == "-92233720368547758.08", stored[2]


LIMITS = {
    "postgresql": (
        "CREATE TABLE t (id INT PRIMARY KEY, n NUMERIC, tm TIME, tz TIMETZ, big BIGINT)",
        [
            "INSERT INTO t VALUES (1, 123456789012345678901234567890.123456789,"
            " '23:59:59.999999', '10:00:00.5+02', -9223372036854775808)",
            "INSERT INTO t VALUES (2, 'NaN', '00:00:00', '00:00:00-12:30', 9223372036854775807)",
            "INSERT INTO t VALUES (3, 0.000000000000000000000000000001, '24:00:00', NULL, 0)",
        ],
        "SELECT id, CAST(n AS text), CAST(tm AS text), CAST(tz AS text), big FROM t",
    ),
    "mariadb": (
        "CREATE TABLE t (id INT PRIMARY KEY, n DECIMAL(65,30), tm TIME(6), tz VARCHAR(40),"
        " big BIGINT UNSIGNED)",
        [
            "INSERT INTO t VALUES (1, 12345678901234567890123456789012345.12345678901234567890"
            "1234567891, '-838:59:59', '10:00:00.5+02', 18446744073709551615)",
            "INSERT INTO t VALUES (2, -0.000000000000000000000000000001, '100:00:00.5',"
            " '00:00:00-12:30', 0)",
            "INSERT INTO t VALUES (3, 0, '24:00:00', NULL, 0)",
        ],
        "SELECT id, CAST(n AS CHAR), CAST(tm AS CHAR), tz, big FROM t",
    ),
}
# The rows a destination of another server holds, the others set aside naming why.
HELD_ELSEWHERE = {("postgresql", "mariadb"): {3}, ("mariadb", "postgresql"): {3}}


@pytest.mark.parametrize(
    ("server", "dest_server"),
    [("postgresql", "postgresql"), ("mariadb", "mariadb"), *HELD_ELSEWHERE],
    ids=lambda s: str(s),
)
def test_numbers_and_times_at_their_limits(
    tmp_path: Path, make_backend: Callable[[str], Backend], server: str, dest_server: str
) -> None:
    """Unconstrained numerics, NaN, DECIMAL(65,30), 64-bit limits, PostgreSQL's TIME
    ``24:00:00`` (before: the whole table unreadable, « hour must be in 0..23 ») and
    MariaDB's TIME outside one day, to the same server (every row exact) and to the other
    (a value it cannot hold set aside naming its column or in the server's words; a TIME
    ``24:00:00`` stored as sent, not set aside for the zeros of a TIME(6))."""
    source, dest = make_backend(server), make_backend(dest_server)
    ddl, rows, select = LIMITS[server]
    source.execute(ddl)
    dest.execute(LIMITS[dest_server][0])
    result, refused = _send(tmp_path, source, dest, rows)
    expected = HELD_ELSEWHERE.get((server, dest_server), {1, 2, 3})
    assert set(refused) == {1, 2, 3} - expected, refused
    assert all("colonne" in e or "ERROR" in e or "(1264)" in e for e in refused.values())
    assert result.stats.upserts == len(expected)
    sent = {r[0]: tuple(r) for r in source.query(select)}
    stored = {r[0]: tuple(r) for r in dest.query(LIMITS[dest_server][2])}
    if server == dest_server:
        assert stored == sent
    else:
        assert stored[3][2] in ("24:00:00", "24:00:00.000000"), stored[3]


def test_a_partitioned_table_travels_once_whatever_each_node_s_partitions(
    tmp_path: Path, make_backend: Callable[[str], Backend]
) -> None:
    """PostgreSQL lists a partitioned table and each of its partitions as tables: before,
    every row was sent twice (through the table and its partition), and a Siège whose
    partitions differ refused the package (« Table ventes_2025 du paquet absente »)."""
    site_db, hq_db = make_backend("postgresql"), make_backend("postgresql")
    for db, bounds in ((site_db, ((2025, 2026), (2026, 2027))), (hq_db, ((2000, 2100),))):
        db.execute(
            "CREATE TABLE ventes (id INT NOT NULL, annee INT NOT NULL, txt TEXT,"
            " PRIMARY KEY (id, annee)) PARTITION BY RANGE (annee)"
        )
        for low, high in bounds:
            db.execute(
                f"CREATE TABLE ventes_{low} PARTITION OF ventes FOR VALUES FROM ({low}) TO ({high})"
            )
    site_db.execute("INSERT INTO ventes VALUES (1, 2025, 'Zoé 😀'), (2, 2026, '漢字')")
    site = make_node(tmp_path, "A", site_db.connection)
    hq = make_node(tmp_path, "SIEGE", hq_db.connection, hq=True)
    try:
        made = site.export()
        result = hq.import_package(made.path)
        assert result.stats.upserts == 2 and result.stats.quarantined == 0, result
        assert made.manifest.rows == 2
        assert [t.name for t in site.tables().synced] == ["ventes"]
        site_db.execute("DELETE FROM ventes WHERE id = 1")
        assert hq.import_package(site.export().path).stats.deletes == 1
    finally:
        site.close()
        hq.close()
    assert hq_db.query("SELECT id, annee, txt FROM ventes_2000") == [(2, 2026, "漢字")]


def test_a_table_others_inherit_from_is_refused_up_front_naming_them(
    tmp_path: Path, make_backend: Callable[[str], Backend]
) -> None:
    """PostgreSQL's inheritance (not partitioning): a read of the parent returns the
    children's rows as its own, a delete of it deletes theirs. Before, a child's row
    travelled as a row of the parent table and was stored there at every receiver."""
    db = make_backend("postgresql")
    db.execute("CREATE TABLE personnes (id INT PRIMARY KEY, nom TEXT)")
    db.execute("CREATE TABLE salaries (poste TEXT, PRIMARY KEY (id)) INHERITS (personnes)")
    db.execute("INSERT INTO salaries VALUES (7, 'Zoé', 'caisse')")
    with make_node(tmp_path, "A", db.connection) as node:
        with pytest.raises(DatabaseError) as caught:
            node.export()
        text = str(caught.value)
        assert "table personnes" in text and "en héritent (salaries)" in text, text
    with make_node(tmp_path, "B", db.connection, exclude=["personnes"]) as node:
        made = node.export()
        assert made.manifest.rows == 1 and made.capture.counts["salaries"].inserts == 1


@pytest.mark.parametrize("kind", ["sqlite", "sqlite-odbc"])
def test_a_full_text_index_is_left_to_each_node(
    tmp_path: Path, make_backend: Callable[[str], Backend], kind: str
) -> None:
    """SQLite's FTS5 keeps its index in tables of its own (``docs_data``, ``docs_idx``,
    ``docs_content``…). Before, those were synchronised: a site's index pages written over
    the Siège's, whose own document then could not be found and whose index failed its
    check. Now they are left out; the virtual table, keyless, is named as such."""
    site_db, hq_db = make_backend(kind), make_backend(kind)
    for db, text in ((site_db, "Café noir du site 漢字"), (hq_db, "Thé vert du siège")):
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, nom TEXT)")
        db.execute("CREATE VIRTUAL TABLE docs USING fts5(titre, corps)")
        db.execute("INSERT INTO docs VALUES (?, ?)", ("fiche", text))
    site_db.execute("INSERT INTO t VALUES (1, 'Zoé')")
    site = make_node(tmp_path, "A", site_db.connection)
    hq = make_node(tmp_path, "SIEGE", hq_db.connection, hq=True)
    try:
        result = hq.import_package(site.export().path)
        assert result.stats.upserts == 1 and result.stats.quarantined == 0, result
        assert [t.name for t in site.tables().synced] == ["t"]
        assert site.keyless_tables() == ["docs"]
    finally:
        site.close()
        hq.close()
    hq_db.execute("INSERT INTO docs(docs) VALUES ('integrity-check')")
    assert hq_db.query("SELECT corps FROM docs WHERE docs MATCH 'vert'") == [("Thé vert du siège",)]
    assert hq_db.query("SELECT nom FROM t") == [("Zoé",)]
