"""Helpers shared by the engine tests: nodes, per-table checksums, typed sample data.

Nothing here fakes a database: every helper goes through ``synchro.db.open_database`` on
a real back end (stdlib SQLite files, SQLite ODBC, PostgreSQL, MariaDB on loopback).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from synchro.config.model import Config, ConflictPolicy, DatabaseSettings, Role, TableRule
from synchro.db import open_database
from synchro.db.base import Row, Table
from synchro.engine.node import Node
from synchro.engine.node_results import ImportResult
from synchro.engine.nodes import build_node
from synchro.values import canonical, row_hash

Checksums = dict[str, tuple[int, str]]


def make_config(
    site: str,
    connection: str,
    *,
    hq: bool = False,
    rules: Sequence[TableRule] = (),
    exclude: Sequence[str] = (),
) -> Config:
    return Config(
        role=Role.HQ if hq else Role.SITE,
        site=site,
        database=DatabaseSettings(
            connection=connection, tables=tuple(rules), exclude=tuple(exclude)
        ),
    )


def make_node(
    folder: Path,
    site: str,
    connection: str,
    *,
    hq: bool = False,
    rules: Sequence[TableRule] = (),
    exclude: Sequence[str] = (),
) -> Node:
    """A node whose state and packages live in ``folder/<site>``."""
    config = make_config(site, connection, hq=hq, rules=rules, exclude=exclude)
    home = folder / f"node-{site}"
    return build_node(config, home / "state.db", home / "packages", connection=connection)


@contextmanager
def group_of(
    make_backend: Callable[[str], Any],
    folder: Path,
    layout: Sequence[str],
    ddl: Callable[[str], Sequence[str]],
    rules: Sequence[TableRule] = (),
) -> Iterator[tuple[dict[str, Any], dict[str, Node]]]:
    """A Siège ``HQ`` and establishments ``S1``… on the back ends ``layout`` names (the
    Siège's first), each with ``ddl(dialect)`` run: their databases (``Backend``) and
    nodes by code, all closed (and the databases dropped) at the end."""
    codes = ["HQ", *(f"S{i}" for i in range(1, len(layout)))]
    dbs: dict[str, Any] = {}
    nodes: dict[str, Node] = {}
    try:
        for code, name in zip(codes, layout, strict=True):
            dbs[code] = make_backend(name)
            for sql in ddl(dbs[code].dialect):
                dbs[code].execute(sql)
            connection = dbs[code].connection
            nodes[code] = make_node(folder, code, connection, hq=code == "HQ", rules=rules)
        yield dbs, nodes
    finally:
        for node in nodes.values():
            node.close()
        for db in dbs.values():
            db.close()


def group_round(
    nodes: dict[str, Node],
    out: Path,
    meanwhile: Callable[[str], None] = lambda _site: None,
    sites: Sequence[str] | None = None,
) -> int:
    """One exchange of a group whose Siège is ``nodes["HQ"]``: each establishment's
    package applied at the Siège (``sites``, in that order: all by default; one left out
    is offline this time), the Siège's capture, then its package to each one
    (``meanwhile(site)`` first: what that site's users do while the Siège works). Every
    package must be applied. Returns how many rows the establishments sent."""
    if sites is None:
        sites = [code for code in nodes if code != "HQ"]
    sent = 0
    for site in sites:
        exported = nodes[site].export()
        sent += exported.manifest.rows
        result = nodes["HQ"].import_package(exported.path)
        assert result.status == "applied", (site, result.message)
    nodes["HQ"].export()
    for site in sites:
        meanwhile(site)
        path, _manifest = nodes["HQ"].publish(site, out)
        result = nodes[site].import_package(path)
        assert result.status == "applied", (site, result.message)
    return sent


@contextmanager
def siege_and_site(
    folder: Path, hq_db: Any, site_db: Any, ddl: Sequence[str] = (), exclude: Sequence[str] = ()
) -> Iterator[tuple[Node, Node, Callable[[], ImportResult]]]:
    """A Siège and establishment A on two databases (each ``Backend``-like, ``ddl`` run in
    both first; ``exclude``: tables both leave out), and ``send``: the Siège's changes
    exported and applied at A."""
    for db in (hq_db, site_db):
        for statement in ddl:
            db.execute(statement)
    with (
        make_node(folder, "SIEGE", hq_db.connection, hq=True, exclude=exclude) as hq,
        make_node(folder, "A", site_db.connection, exclude=exclude) as site,
    ):

        def send() -> ImportResult:
            hq.export()
            return site.import_package(hq.publish("A", folder / "out").path)

        yield hq, site, send


def policy_rules(
    names: Iterable[str], policy: ConflictPolicy, *, modified: str = "", owner: str = ""
) -> list[TableRule]:
    return [
        TableRule(name=n, conflict=policy, modified_column=modified, owner_column=owner)
        for n in names
    ]


class Db:
    """One open adapter on a test database, with its tables discovered once (discovery
    costs about half a second on MariaDB through ODBC)."""

    def __init__(self, connection: str) -> None:
        self.connection = connection
        self.adapter = open_database(connection)
        self.tables = {t.name: t for t in self.adapter.tables()}

    def close(self) -> None:
        self.adapter.close()

    def __enter__(self) -> Db:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def rows(self, name: str) -> list[Row]:
        """Every row of a keyed table, in key order, normalised to the column kinds."""
        return list(self.adapter.scan(self.tables[name], ordered=True))

    def write(self, name: str, rows: Sequence[Row]) -> None:
        """Insert/replace typed rows (binds Decimal, dates, blobs on every back end)."""
        with self.adapter.atomic():
            self.adapter.upsert(self.tables[name], rows)

    def delete(self, name: str, keys: Sequence[tuple[Any, ...]]) -> None:
        with self.adapter.atomic():
            self.adapter.delete(self.tables[name], keys)

    def checksums(self, names: Iterable[str] | None = None) -> Checksums:
        """Per table: (row count, SHA-256 of the ``row_hash`` of every row in key order).

        Tables without a key are ordered by the hashes themselves. ``names`` limits the
        tables (default: every table that has a key).
        """
        found = self.tables
        wanted = (
            sorted(names) if names is not None else sorted(n for n, t in found.items() if t.key)
        )
        result: Checksums = {}
        for name in wanted:
            table = found[name]
            scan = self.adapter.scan(table, ordered=bool(table.key))
            hashes = [row_hash(table.kinds, r) for r in scan]
            if not table.key:
                hashes.sort()
            digest = hashlib.sha256()
            for h in hashes:
                digest.update(h)
            result[name] = (len(hashes), digest.hexdigest())
        return result


def checksums(connection: str, names: Iterable[str] | None = None) -> Checksums:
    with Db(connection) as db:
        return db.checksums(names)


def same_values(kinds: Sequence[str], a: Row, b: Row) -> bool:
    """Equal as the engine sees values (``values.canonical``: microseconds and offsets
    kept, an aware datetime as its UTC instant, decimals without trailing zeros)."""
    return [canonical(k, v) for k, v in zip(kinds, a, strict=True)] == [
        canonical(k, v) for k, v in zip(kinds, b, strict=True)
    ]


# -- sample data for the tables of ``backends.create_sample_schema`` --------------------

TEXT = "Zoé à l'hôtel 😀 — «ok» \"guillemets\" ; 'apostrophe' \\ fin"

KINDS_ROWS: list[Row] = [
    # id, i, amount, label, day, at, flag, note, data, ratio, t, changed
    (
        1,
        -42,
        Decimal("1234567890.12"),
        TEXT,
        dt.date(2024, 2, 29),
        dt.datetime(2024, 12, 31, 23, 59, 58),
        True,
        "Ça va ?",
        b"\x00\x01\xffblob",
        1.5,
        dt.time(13, 45, 7),
        dt.datetime(2025, 1, 1, 0, 0, 0),
    ),
    (
        2,
        2**31 - 1,
        Decimal("-0.01"),
        "ligne 1\nligne 2\ttab",
        dt.date(1999, 12, 31),
        dt.datetime(2000, 1, 1, 0, 0, 1),
        False,
        "",
        bytes(range(256)),
        -2.25e10,
        dt.time(0, 0, 0),
        dt.datetime(2025, 1, 2, 8, 30, 0),
    ),
    (3, None, None, None, None, None, None, None, None, None, None, None),
    (
        4,
        0,
        Decimal("0.00"),
        "😀😀 emoji ✓ Ω",
        dt.date(2038, 1, 19),
        dt.datetime(2038, 1, 19, 3, 14, 7),
        True,
        "x" * 50,
        b"",
        0.1,
        dt.time(23, 59, 59),
        dt.datetime(2025, 1, 3, 12, 0, 0),
    ),
]
PARENTS: list[Row] = [(i, f"Parent {i} é") for i in range(1, 6)]
CHILDREN: list[Row] = [
    (i, 1 + i % 5, None if i % 4 == 0 else f"enfant {i} 😀") for i in range(1, 13)
]
PAIRS: list[Row] = [("A", 1, 10), ("A", 2, None), ("B", 1, 30), ("Zoé", 1, 40), ("Zoé", 2, -5)]
TEXT_KEYS = ["abc", "Zoé", "Émile", "10", "9", "a b", "ab", "z", "Ω", "😀", "_x", "-1"]


def fill_sample(db: Db) -> None:
    """Every kind, composite keys, parent/child rows, text keys, a unique-key table."""
    db.write("parent", PARENTS)
    db.write("child", CHILDREN)
    db.write("pair", PAIRS)
    db.write("kinds", KINDS_ROWS)
    db.write("textkey", [(k, n) for n, k in enumerate(TEXT_KEYS)])
    db.write("uniq", [("U1", 1), ("U2", None)])


def value_problems(table: Table, got: dict[int, Row], expected: Sequence[Row]) -> list[str]:
    """Differences between the expected rows and what a database holds (canonical form)."""
    problems: list[str] = []
    for row in expected:
        have = got.get(int(row[0]))
        if have is None:
            problems.append(f"row {row[0]} missing")
        elif not same_values(table.kinds, row, have):
            problems.append(f"row {row[0]}: expected {row!r}, got {have!r}")
    return problems


def state_counts(node: Node) -> dict[str, int]:
    """Row counts of the node's state tables (to show that nothing was recorded)."""
    conn = node.state.conn
    names = ["applied", "outbox", "intent", "conflicts", "quarantine", "changelog"]
    return {n: int(conn.execute(f"SELECT COUNT(*) FROM {n}").fetchone()[0]) for n in names}


def now_seconds() -> dt.datetime:
    return dt.datetime.now().replace(microsecond=0)


def db(path: Path, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """One statement on an SQLite file, committed; its rows."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            return conn.execute(statement, params).fetchall()
    finally:
        conn.close()


def spy_tables(monkeypatch: Any, owner: Any, name: str) -> list[str]:
    """``owner.name`` (a function taking a Table first) replaced by one that records the
    name of each table it is called with, and calls it."""
    used: list[str] = []
    real = getattr(owner, name)

    def spy(table: Any, *args: Any, **kwargs: Any) -> Any:
        used.append(table.name)
        return real(table, *args, **kwargs)

    monkeypatch.setattr(owner, name, spy)
    return used


def columnar_from_one_row(monkeypatch: Any) -> list[str]:
    """The capture's columnar scan taken from one row on; the names of the tables it
    scans."""
    from synchro.capture import full_scan
    from synchro.db import columnar

    monkeypatch.setattr(columnar, "COLUMNAR_FROM", 1)
    return spy_tables(monkeypatch, full_scan, "_columnar")
