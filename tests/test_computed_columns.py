"""Columns the database computes itself, and keys it makes itself.

A column ``AS (expr) VIRTUAL/PERSISTENT`` (MariaDB) or ``GENERATED ALWAYS AS (expr) STORED``
(PostgreSQL, SQLite) cannot be written: before, MariaDB and PostgreSQL refused every row of
such a table (« The value specified for generated column 'total' … has been ignored »,
« cannot insert a non-DEFAULT value into column "id" »), set aside at every run, forever.
A computed column is no data of its own: never read, sent or written, each node computes it
(as SQLite's ``table_info`` always left it out). PostgreSQL's ``GENERATED ALWAYS AS
IDENTITY`` key is written with ``OVERRIDING SYSTEM VALUE``: a row keeps the key it was made
with. A key through a computed column is refused up front, naming the table and column.
The rows are read back through the test's own connections.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from backends import Backend
from engine_helpers import make_node

from synchro.errors import DatabaseError


def _ddl(dialect: str, first_id: int) -> str:
    """``ventes``: a key the server makes (starting at ``first_id``: each node its range),
    two computed columns, one of them the text of others."""
    if dialect == "postgresql":
        return (
            "CREATE TABLE ventes (id INT GENERATED ALWAYS AS IDENTITY"
            f" (START WITH {first_id}) PRIMARY KEY, article TEXT NOT NULL,"
            " qte INT NOT NULL, prix NUMERIC(10,2) NOT NULL,"
            " total NUMERIC(12,2) GENERATED ALWAYS AS (qte * prix) STORED,"
            " libelle TEXT GENERATED ALWAYS AS (article || ' ×' || qte) STORED)"
        )
    if dialect == "mysql":
        return (
            "CREATE TABLE ventes (id INT AUTO_INCREMENT PRIMARY KEY, article VARCHAR(80) NOT NULL,"
            " qte INT NOT NULL, prix DECIMAL(10,2) NOT NULL,"
            " total DECIMAL(12,2) AS (qte * prix) PERSISTENT,"
            " libelle VARCHAR(100) AS (CONCAT(article, ' ×', qte)) VIRTUAL)"
            f" AUTO_INCREMENT={first_id} CHARACTER SET utf8mb4"
        )
    return (
        "CREATE TABLE ventes (id INTEGER PRIMARY KEY, article TEXT NOT NULL,"
        " qte INT NOT NULL, prix NUMERIC(10,2) NOT NULL,"
        " total NUMERIC(12,2) GENERATED ALWAYS AS (qte * prix) STORED,"
        " libelle TEXT GENERATED ALWAYS AS (article || ' ×' || qte) VIRTUAL)"
    )


def _sell(db: Backend, first_id: int, article: str, qte: int, prix: str) -> None:
    """The shop's own insert: the key the server makes (SQLite: the shop's range)."""
    if db.dialect == "sqlite":
        (n,) = db.query("SELECT count(*) FROM ventes WHERE id >= ?", (first_id,))[0]
        db.execute(
            "INSERT INTO ventes (id, article, qte, prix) VALUES (?, ?, ?, ?)",
            (first_id + int(n), article, qte, prix),
        )
        return
    db.execute("INSERT INTO ventes (article, qte, prix) VALUES (?, ?, ?)", (article, qte, prix))


def _rows(db: Backend) -> set[tuple[Any, ...]]:
    return {
        (int(i), a, int(q), Decimal(str(p)).quantize(Decimal("0.01")),
         Decimal(str(t)).quantize(Decimal("0.01")), lib)
        for i, a, q, p, t, lib in db.query(
            "SELECT id, article, qte, prix, total, libelle FROM ventes"
        )
    }  # fmt: skip


PAIRS = [
    ("postgresql", "postgresql"),
    ("mariadb", "mariadb"),
    ("sqlite", "sqlite"),
    ("postgresql", "mariadb"),
    ("mariadb", "sqlite"),
]


@pytest.mark.parametrize(("site_kind", "hq_kind"), PAIRS, ids=["-".join(p) for p in PAIRS])
def test_a_table_with_computed_columns_and_a_key_the_server_makes_travels_both_ways(
    tmp_path: Path, make_backend: Callable[[str], Backend], site_kind: str, hq_kind: str
) -> None:
    site_db, hq_db = make_backend(site_kind), make_backend(hq_kind)
    site_db.execute(_ddl(site_db.dialect, 1))
    hq_db.execute(_ddl(hq_db.dialect, 1000))
    _sell(site_db, 1, "Café « noir » ☕", 2, "3.50")
    _sell(site_db, 1, "漢字かな", 5, "99999999.99")
    site = make_node(tmp_path, "A", site_db.connection)
    hq = make_node(tmp_path, "SIEGE", hq_db.connection, hq=True)
    try:
        result = hq.import_package(site.export().path)
        assert result.status == "applied" and result.stats.upserts == 2, result
        assert result.stats.quarantined == 0 and hq.state.quarantined() == []
        assert [c.name for c in site.tables().synced[0].columns] == ["id", "article", "qte", "prix"]
        assert _rows(hq_db) == _rows(site_db) and len(_rows(hq_db)) == 2
        assert (
            2,
            "漢字かな",
            5,
            Decimal("99999999.99"),
            Decimal("499999999.95"),
            "漢字かな ×5",
        ) in (_rows(hq_db))

        # The shop changes a quantity at the site; the Siège's shop sells too.
        site_db.execute("UPDATE ventes SET qte = 7 WHERE id = 1")
        assert hq.import_package(site.export().path).stats.upserts == 1
        _sell(hq_db, 1000, "Ana", 3, "0.01")
        hq.export()
        package, _ = hq.publish("A", tmp_path / "out")
        back = site.import_package(package)
        assert back.status == "applied" and back.stats.quarantined == 0, back
        assert site.state.quarantined() == []
        held = _rows(site_db)
        assert held == _rows(hq_db) and len(held) == 3
        assert (1, "Café « noir » ☕", 7, Decimal("3.50"), Decimal("24.50"),
                "Café « noir » ☕ ×7") in held  # fmt: skip
        assert (1000, "Ana", 3, Decimal("0.01"), Decimal("0.03"), "Ana ×3") in held
    finally:
        site.close()
        hq.close()


def test_a_key_through_a_computed_column_is_refused_naming_the_table_and_column(
    tmp_path: Path, make_backend: Callable[[str], Backend]
) -> None:
    db = make_backend("postgresql")
    db.execute(
        "CREATE TABLE articles (rayon VARCHAR(10) NOT NULL, num INT NOT NULL, code VARCHAR(30)"
        " GENERATED ALWAYS AS (rayon || '-' || num::text) STORED PRIMARY KEY)"
    )
    db.execute("INSERT INTO articles (rayon, num) VALUES (?, ?)", ("FR", 1))
    node = make_node(tmp_path, "A", db.connection)
    try:
        with pytest.raises(DatabaseError) as caught:
            node.export()
        text = str(caught.value)
        assert "table articles" in text and "colonne code, que la base calcule" in text, text
    finally:
        node.close()


def test_a_unique_index_on_a_computed_column_is_no_key(
    tmp_path: Path, make_backend: Callable[[str], Backend]
) -> None:
    """A table whose only key would be a unique index on a computed column is left out,
    named as keyless in every report (before: keyed by it, every row refused)."""
    db = make_backend("postgresql")
    db.execute(
        "CREATE TABLE articles (rayon VARCHAR(10) NOT NULL, num INT NOT NULL, code VARCHAR(30)"
        " GENERATED ALWAYS AS (rayon || '-' || num::text) STORED NOT NULL UNIQUE)"
    )
    node = make_node(tmp_path, "A", db.connection)
    try:
        assert node.tables().synced == [] and node.keyless_tables() == ["articles"]
    finally:
        node.close()
