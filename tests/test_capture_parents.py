"""A row whose parent arrived while the capture read is sent with it, next time.

The capture reads ``clients`` then ``commandes`` (parents first). Between the two, the
shop's program commits a new client and its first order (another connection, as the
shop's own program): the order is read, its client was not. Before, the order went alone
and every receiver refused it (its parent missing: quarantined there, the round an
Echec). Now it is held back — out of the package and of the snapshot — and the next
capture sends both; the receiver applies both, nothing refused. A row whose parent is
nowhere (SQLite does not enforce foreign keys unless asked) still goes as it did.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from backends import Backend
from engine_helpers import make_node

from synchro import faults
from synchro.config import TableRule
from synchro.package import open_package

JULY = dt.datetime(2026, 7, 1)
DDL = (
    "CREATE TABLE clients (id INTEGER PRIMARY KEY, nom VARCHAR(40) NOT NULL)",
    "CREATE TABLE commandes (id INTEGER PRIMARY KEY, client_id INTEGER NOT NULL"
    " REFERENCES clients (id), etat VARCHAR(20))",
)


def sent(node: Any, path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of a package by table (upserts)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for change in open_package(path, node.keys()).changes():
        out.setdefault(change.table, []).append(tuple(change.values))
    return out


def shop_and_siege(make_backend: Callable[[str], Backend], name: str) -> tuple[Backend, Backend]:
    """A shop's database on ``name`` holding client 1 and its order, the Siège's on SQLite,
    both with ``DDL``."""
    shop, hq_db = make_backend(name), make_backend("sqlite")
    for backend in (shop, hq_db):
        for statement in DDL:
            backend.execute(statement + (" ENGINE=InnoDB" if backend.name == "mariadb" else ""))
    shop.execute("INSERT INTO clients VALUES (1, 'Zoé')")
    shop.execute("INSERT INTO commandes VALUES (1, 1, 'neuve')")
    return shop, hq_db


def sale_during_capture(
    monkeypatch: pytest.MonkeyPatch, shop: Backend, *statements: str
) -> list[str]:
    """From now on, when a capture reaches its second table (``clients`` read, not yet
    ``commandes``), the shop's program runs ``statements`` (a sale). The tables begun,
    for the test to see that the capture got there."""
    real_point = faults.point
    tables_read: list[str] = []

    def point(point_name: str, *args: Any, **kwargs: Any) -> None:
        if point_name == "capture.table":
            tables_read.append(point_name)
            if len(tables_read) == 2:
                for statement in statements:
                    shop.execute(statement)
        real_point(point_name, *args, **kwargs)

    monkeypatch.setattr(faults, "point", point)
    return tables_read


@pytest.mark.parametrize("name", ["sqlite", "postgresql", "mariadb"])
def test_an_order_whose_client_arrived_during_the_capture_waits_for_it(
    name: str,
    make_backend: Callable[[str], Backend],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop, hq_db = shop_and_siege(make_backend, name)
    tables_read = sale_during_capture(
        monkeypatch,
        shop,
        "INSERT INTO clients VALUES (2, '新しい客 😀')",
        "INSERT INTO commandes VALUES (2, 2, 'neuve')",
    )
    with (
        make_node(tmp_path, "A", shop.connection) as site,
        make_node(tmp_path, "HQ", hq_db.connection, hq=True) as hq,
    ):
        first = site.export()
        assert len(tables_read) >= 2, "the capture never reached the second table"
        assert sent(site, first.path) == {
            "clients": [(1, "Zoé")],
            "commandes": [(1, 1, "neuve")],  # order 2 held back: its client is not here
        }
        assert first.capture.counts["commandes"].held_back == 1
        applied = hq.import_package(first.path)
        assert applied.status == "applied" and applied.stats.quarantined == 0
        second = site.export()
        assert sent(site, second.path) == {
            "clients": [(2, "新しい客 😀")],
            "commandes": [(2, 2, "neuve")],
        }
        applied = hq.import_package(second.path)
        assert applied.status == "applied" and applied.stats.quarantined == 0
        assert hq_db.query("SELECT id, client_id FROM commandes ORDER BY id") == [(1, 1), (2, 2)]
        assert site.export().manifest.rows == 0


@pytest.mark.parametrize("name", ["sqlite", "postgresql", "mariadb"])
def test_a_sale_made_and_cancelled_during_the_capture_is_not_sent(
    name: str,
    make_backend: Callable[[str], Backend],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sale of the first test, cancelled right after the orders were read (the order,
    then its new client, deleted): the order's client is nowhere now, and neither is the
    order. Before, it went alone, as an order whose client does not exist would: every
    receiver refused it (quarantined, its round « Echec », ``soak_live`` seed 7087), and
    the next capture sent its delete. Now it is held back, and nothing of it travels."""
    from synchro.capture.parents import ParentCheck

    shop, hq_db = shop_and_siege(make_backend, name)
    real_parent_now = ParentCheck.parent_now
    tables_read = sale_during_capture(
        monkeypatch,
        shop,
        "INSERT INTO clients VALUES (2, 'Ωμέγα ✓')",
        "INSERT INTO commandes VALUES (2, 2, 'neuve')",
    )

    def parent_now(check: ParentCheck, row: Any) -> bool:  # the orders read: cancelled
        shop.execute("DELETE FROM commandes WHERE id = 2")
        shop.execute("DELETE FROM clients WHERE id = 2")
        return real_parent_now(check, row)

    monkeypatch.setattr(ParentCheck, "parent_now", parent_now)
    with (
        make_node(tmp_path, "A", shop.connection) as site,
        make_node(tmp_path, "HQ", hq_db.connection, hq=True) as hq,
    ):
        first = site.export()
        assert len(tables_read) >= 2, "the capture never reached the second table"
        assert sent(site, first.path) == {"clients": [(1, "Zoé")], "commandes": [(1, 1, "neuve")]}
        applied = hq.import_package(first.path)
        assert applied.status == "applied" and applied.stats.quarantined == 0
        assert site.export().manifest.rows == 0


def test_an_order_whose_client_is_nowhere_goes_as_before(
    make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    """SQLite enforces foreign keys only when asked: the shop's program may leave an
    order whose client does not exist. It is not held back for ever: it goes, and the
    receiver that enforces them says it refuses it."""
    shop = make_backend("sqlite")
    for statement in DDL:
        shop.execute(statement)
    shop.execute("PRAGMA foreign_keys = OFF")
    shop.execute("INSERT INTO commandes VALUES (7, 99, 'orpheline')")
    with make_node(tmp_path, "A", shop.connection) as site:
        made = site.export()
        assert sent(site, made.path) == {"commandes": [(7, 99, "orpheline")]}
        assert made.capture.counts["commandes"].held_back == 0


@pytest.mark.parametrize("name", ["sqlite", "postgresql"])
def test_the_capture_limited_to_modified_rows_holds_the_order_back_too(
    name: str,
    make_backend: Callable[[str], Backend],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run after the first reads only the rows modified since the watermark (the
    tables' « colonne de modification »): the order whose client arrived between the two
    reads is held back there as well, and the next run — even limited to modified rows
    again — sends both."""
    shop, hq_db = make_backend(name), make_backend("sqlite")
    ddl = (
        "CREATE TABLE clients (id INTEGER PRIMARY KEY, nom VARCHAR(40) NOT NULL, maj TIMESTAMP)",
        "CREATE TABLE commandes (id INTEGER PRIMARY KEY, client_id INTEGER NOT NULL"
        " REFERENCES clients (id), etat VARCHAR(20), maj TIMESTAMP)",
    )
    for backend in (shop, hq_db):
        for statement in ddl:
            backend.execute(statement)
    shop.execute("INSERT INTO clients VALUES (1, 'Zoé', '2026-01-01 00:00:00')")
    shop.execute("INSERT INTO commandes VALUES (1, 1, 'neuve', '2026-01-01 00:00:00')")
    rules = [TableRule(t, modified_column="maj") for t in ("clients", "commandes")]
    since = dt.datetime(2026, 6, 1)
    with (
        make_node(tmp_path, "A", shop.connection, rules=rules) as site,
        make_node(tmp_path, "HQ", hq_db.connection, hq=True) as hq,
    ):
        assert hq.import_package(site.export().path).status == "applied"  # the first run
        shop.execute(
            "UPDATE commandes SET etat = 'payée', maj = '2026-07-01 00:00:00' WHERE id = 1"
        )
        tables_read = sale_during_capture(
            monkeypatch,
            shop,
            "INSERT INTO clients VALUES (2, 'Ωμέγα ✓', '2026-07-01 00:00:00')",
            "INSERT INTO commandes VALUES (2, 2, 'neuve', '2026-07-01 00:00:00')",
        )
        first = site.export(since=since)
        assert len(tables_read) >= 2, "the capture never reached the second table"
        assert sent(site, first.path) == {"commandes": [(1, 1, "payée", JULY)]}
        assert first.capture.counts["commandes"].held_back == 1
        applied = hq.import_package(first.path)
        assert applied.status == "applied" and applied.stats.quarantined == 0
        second = site.export(since=since)
        assert sent(site, second.path) == {
            "clients": [(2, "Ωμέγα ✓", JULY)],
            "commandes": [(2, 2, "neuve", JULY)],
        }
        applied = hq.import_package(second.path)
        assert applied.status == "applied" and applied.stats.quarantined == 0
        assert hq_db.query("SELECT id, client_id, etat FROM commandes ORDER BY id") == [
            (1, 1, "payée"),
            (2, 2, "neuve"),
        ]
