"""A PostgreSQL database restored and taken back: its sequences past its own rows again.

A dump restores each sequence (``serial``, ``GENERATED … AS IDENTITY``) where the backup
left it; the take-back (*Reprendre les données du groupe*) then brings back the rows the
shop made since, with their keys. PostgreSQL does not move a sequence past a value
written (MariaDB, SQLite, SQL Server and Access move their counters): before, the shop's
next sale took the key of a row it had made since the backup, « duplicate key value »,
once for every such row. Now the take-back moves each sequence past the highest value of
the node's own rows that came back — not past the others' rows, whose keys come from their
own sequences (here a range of their own). The engine on PostgreSQL through psqlODBC; the
rows and sequences read and written through the test's own connection.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from backends import Backend
from engine_helpers import make_node
from rounds_helpers import sql

from synchro.db.base import MARK_TABLE
from synchro.engine.marks import Restored
from synchro.engine.node import Node

TABLES = {
    # a key from a serial, an invoice number from another (not the key), and a key the
    # server always makes
    "ventes": "id SERIAL PRIMARY KEY, facture SERIAL NOT NULL UNIQUE, txt VARCHAR(100)",
    "tickets": "id INT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, txt VARCHAR(100)",
}
SEQUENCES = {
    "ventes": ("ventes_id_seq", "ventes_facture_seq"),
    "tickets": ("tickets_id_seq",),
}


def _sell(db: Backend, text: str) -> None:
    """The shop's own sale: keys and invoice number from the server's sequences."""
    db.execute("INSERT INTO ventes (txt) VALUES (?)", (text,))
    db.execute("INSERT INTO tickets (txt) VALUES (?)", (text,))


def _dump(db: Backend) -> dict[str, Any]:
    """Rows, mark and sequences, as ``pg_dump`` holds them."""
    return {
        "rows": {t: db.query(f"SELECT * FROM {t} ORDER BY id") for t in TABLES},
        "mark": db.query(f"SELECT poste, numero FROM {MARK_TABLE}"),
        "sequences": {
            s: db.query(f"SELECT last_value, is_called FROM {s}")[0]
            for names in SEQUENCES.values()
            for s in names
        },
    }


def _restore(db: Backend, saved: dict[str, Any]) -> None:
    for table, rows in saved["rows"].items():
        db.execute(f"DELETE FROM {table}")
        overriding = " OVERRIDING SYSTEM VALUE" if table == "tickets" else ""
        for row in rows:
            marks = ", ".join("?" * len(row))
            db.execute(f"INSERT INTO {table}{overriding} VALUES ({marks})", tuple(row))
    db.execute(f"DELETE FROM {MARK_TABLE}")
    for row in saved["mark"]:
        db.execute(f"INSERT INTO {MARK_TABLE} (poste, numero) VALUES (?, ?)", tuple(row))
    for name, (value, called) in saved["sequences"].items():
        called = str(called).lower() in ("1", "true", "t")  # (psqlODBC: '0' or '1')
        db.execute("SELECT setval(?, ?, ?)", (name, int(value), called))


def _shop(make_backend: Callable[[str], Backend]) -> Backend:
    """A node's database on PostgreSQL, its keys from its sequences."""
    db = make_backend("postgresql")
    for table, columns in TABLES.items():
        db.execute(f"CREATE TABLE {table} ({columns})")
    return db


def _other(path: Path, first: int, text: str) -> None:
    """The other node's database on SQLite, its sales in a range of its own (``first``)."""
    sql(
        path,
        "CREATE TABLE ventes (id INTEGER PRIMARY KEY, facture INTEGER NOT NULL UNIQUE, txt TEXT);"
        "CREATE TABLE tickets (id INTEGER PRIMARY KEY, txt TEXT);"
        f"INSERT INTO ventes VALUES ({first}, {first}, '{text}'), ({first + 1}, {first + 1}, 'b');"
        f"INSERT INTO tickets VALUES ({first}, '{text}');",
    )


def _restored_and_taken_back(
    hq: Node, site: Node, site_db: Backend, out: Path, after_the_backup: Callable[[], None]
) -> Callable[[], None]:
    """A round, the site's backup, ``after_the_backup`` and a round, the backup restored
    and taken back (*Reprendre les données du groupe*) over two rounds; the round."""

    def exchange() -> None:
        assert hq.import_package(site.export().path).status == "applied"
        hq.export()  # the Siège's own sales
        back = site.import_package(hq.publish("S1", out).path)
        assert back.status == "applied" and back.stats.quarantined == 0, back

    exchange()
    saved = _dump(site_db)
    after_the_backup()
    exchange()
    _restore(site_db, saved)
    with pytest.raises(Restored):
        site.export()
    site.take_back()
    exchange()
    exchange()
    return exchange


def test_a_restored_site_on_postgresql_sells_again_after_taking_its_rows_back(
    tmp_path: Path, make_backend: Callable[[str], Backend]
) -> None:
    site_db = _shop(make_backend)
    hq_path = tmp_path / "hq.db"
    _other(hq_path, 1000, "siège")
    out = tmp_path / "out"
    for i in range(1, 6):
        _sell(site_db, f"vente {i} — 日本")

    with (
        make_node(tmp_path, "HQ", str(hq_path), hq=True) as hq,
        make_node(tmp_path, "S1", site_db.connection) as site,
    ):

        def after_the_backup() -> None:
            for i in range(6, 9):
                _sell(site_db, f"vente {i} après la sauvegarde")

        exchange = _restored_and_taken_back(hq, site, site_db, out, after_the_backup)
        assert site_db.query("SELECT max(id) FROM ventes WHERE id < 1000") == [(8,)]

        # The shop sells again: the next keys and invoice number follow its own rows,
        # neither taking one of them nor jumping into the Siège's range.
        _sell(site_db, "vente 9")
        assert site_db.query("SELECT id, facture FROM ventes WHERE txt = 'vente 9'") == [(9, 9)]
        assert site_db.query("SELECT id FROM tickets WHERE txt = 'vente 9'") == [(9,)]
        exchange()
    siege = {int(r[0]) for r in site_db.query("SELECT id FROM ventes")}
    assert siege == set(range(1, 10)) | {1000, 1001}


def test_a_restored_siege_on_postgresql_sells_again_after_taking_its_rows_back(
    tmp_path: Path, make_backend: Callable[[str], Backend]
) -> None:
    """The Siège's rebuild from its change log: the same, its own rows from its log."""
    hq_db = _shop(make_backend)
    site_path = tmp_path / "site.db"
    _other(site_path, 2000, "site")
    for i in range(1, 4):
        _sell(hq_db, f"siège {i}")
    with make_node(tmp_path, "HQ", hq_db.connection, hq=True) as hq:
        hq.export()
        saved = _dump(hq_db)
        for i in range(4, 7):
            _sell(hq_db, f"siège {i} après la sauvegarde")
        hq.export()
        with make_node(tmp_path, "S1", str(site_path)) as site:
            assert hq.import_package(site.export().path).status == "applied"
        _restore(hq_db, saved)
        with pytest.raises(Restored):
            hq.export()
        stats = hq.take_back()
        assert stats.quarantined == 0
        _sell(hq_db, "siège 7")
        assert hq_db.query("SELECT id, facture FROM ventes WHERE txt = 'siège 7'") == [(7, 7)]
        assert hq_db.query("SELECT id FROM tickets WHERE txt = 'siège 7'") == [(7,)]
        assert {int(r[0]) for r in hq_db.query("SELECT id FROM ventes")} == {
            *range(1, 8),
            2000,
            2001,
        }


def test_a_sequence_never_called_keeps_its_start_after_the_take_back(
    tmp_path: Path, make_backend: Callable[[str], Backend]
) -> None:
    """A shop whose sales are numbered from 500 (its range), never called yet, and two
    older sales typed in by hand below it. The take-back moved the sequence to the
    highest own key (2), below its start: the next sale took 3, in another range. A
    sequence never called is now moved only when its start is not above that key (the
    tickets' start, 1, is: the next ticket follows the typed ones)."""
    site_db = _shop(make_backend)
    for name in SEQUENCES["ventes"]:
        site_db.execute(f"ALTER SEQUENCE {name} START WITH 500 RESTART")
    for i in (1, 2):
        site_db.execute("INSERT INTO ventes VALUES (?, ?, ?)", (i, i, f"saisie {i} — Ωμέγα"))
        site_db.execute("INSERT INTO tickets OVERRIDING SYSTEM VALUE VALUES (?, ?)", (i, "✓"))
    hq_path = tmp_path / "hq.db"
    _other(hq_path, 1000, "siège")
    with (
        make_node(tmp_path, "HQ", str(hq_path), hq=True) as hq,
        make_node(tmp_path, "S1", site_db.connection) as site,
    ):
        _restored_and_taken_back(hq, site, site_db, tmp_path / "out", lambda: None)
    _sell(site_db, "vente")
    assert site_db.query("SELECT id, facture FROM ventes WHERE txt = 'vente'") == [(500, 500)]
    assert site_db.query("SELECT id FROM tickets WHERE txt = 'vente'") == [(3,)]
