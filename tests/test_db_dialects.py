"""SQL text of every dialect, as strings: SQL Server and MS Access cannot run here."""

from __future__ import annotations

import pytest

from synchro.db.base import Column, Table
from synchro.db.column_kinds import odbc_kind, sqlite_kind
from synchro.db.dialects import Dialect, detect_dialect

PAIR = Table(
    "ventes",
    (Column("site", "text"), Column("num", "int"), Column("qte", "int")),
    ("site", "num"),
    "primary",
)
ONE = Table("t", (Column("id", "int"), Column("v", "text")), ("id",), "primary")
KEYS_ONLY = Table("k", (Column("a", "int"), Column("b", "int")), ("a", "b"), "primary")


@pytest.mark.parametrize(
    ("dbms", "family"),
    [
        ("SQLite", "sqlite"),
        ("PostgreSQL", "postgresql"),
        ("MariaDB", "mysql"),
        ("MySQL", "mysql"),
        ("Microsoft SQL Server", "mssql"),
        ("ACCESS", "access"),
        ("Informix", ""),
    ],
)
def test_detect(dbms: str, family: str) -> None:
    assert detect_dialect(dbms) == family


def test_quote() -> None:
    assert Dialect("mssql", "[").quote("a]b") == "[a]]b]"
    assert Dialect("mssql", '"').quote('a"b') == '"a""b"'
    assert Dialect("access", "`").quote("Prix HT") == "`Prix HT`"
    assert Dialect("sqlite", " ").quote("x") == "[x]"


def test_batch_rows_respects_parameter_limit() -> None:
    assert Dialect("sqlite").batch_rows(10) == 99
    assert Dialect("sqlite").batch_rows(1) == 500
    assert Dialect("mssql").batch_rows(7) == 285
    assert Dialect("postgresql").batch_rows(300) == 218
    assert Dialect("mysql").batch_rows(100000) == 1
    for name in ("sqlite", "mssql", "postgresql", "mysql", "access"):
        d = Dialect(name)
        assert d.batch_rows(13) * 13 <= d.max_params


def test_upsert_sqlite_postgresql() -> None:
    sql = Dialect("postgresql").upsert(PAIR, 2)
    assert sql == (
        'INSERT INTO "ventes" ("site", "num", "qte") VALUES (?, ?, ?), (?, ?, ?)'
        ' ON CONFLICT ("site", "num") DO UPDATE SET "qte" = excluded."qte"'
    )
    assert Dialect("sqlite").upsert(KEYS_ONLY, 1).endswith('ON CONFLICT ("a", "b") DO NOTHING')


def test_upsert_mysql() -> None:
    sql = Dialect("mysql", "`").upsert(ONE, 2)
    assert sql == (
        "INSERT INTO `t` (`id`, `v`) VALUES (?, ?), (?, ?)"
        " ON DUPLICATE KEY UPDATE `v` = VALUES(`v`)"
    )


def test_merge_mssql() -> None:
    sql = Dialect("mssql", '"').upsert(PAIR, 2)
    assert sql == (
        'MERGE INTO "ventes" WITH (HOLDLOCK) AS t USING (VALUES (?, ?, ?), (?, ?, ?))'
        ' AS s ("site", "num", "qte") ON t."site" = s."site" AND t."num" = s."num"'
        ' WHEN MATCHED THEN UPDATE SET t."qte" = s."qte"'
        ' WHEN NOT MATCHED THEN INSERT ("site", "num", "qte")'
        ' VALUES (s."site", s."num", s."qte");'
    )
    assert "WHEN MATCHED" not in Dialect("mssql").upsert(KEYS_ONLY, 1)


def test_access_update_then_insert() -> None:
    access = Dialect("access", "`")
    assert not access.multi_row and not access.savepoints and not access.binary_order
    with pytest.raises(ValueError):
        access.upsert(ONE, 1)
    assert access.update(PAIR) == "UPDATE `ventes` SET `qte` = ? WHERE `site` = ? AND `num` = ?"
    assert access.update_params(PAIR, ["a", 1, 5]) == [5, "a", 1]
    assert access.insert(PAIR) == "INSERT INTO `ventes` (`site`, `num`, `qte`) VALUES (?, ?, ?)"


def test_keys_condition() -> None:
    assert Dialect("sqlite").delete(ONE, 3) == 'DELETE FROM "t" WHERE "id" IN (?, ?, ?)'
    assert Dialect("postgresql").keys_condition(PAIR.key, 2) == (
        '("site", "num") IN ((?, ?), (?, ?))'
    )
    assert Dialect("mssql").keys_condition(PAIR.key, 2) == (
        '("site" = ? AND "num" = ?) OR ("site" = ? AND "num" = ?)'
    )
    assert Dialect("access", "`").fetch(PAIR, 1) == (
        "SELECT `site`, `num`, `qte` FROM `ventes` WHERE (`site` = ? AND `num` = ?)"
    )


def test_ordered_select_uses_binary_collation_on_text_keys() -> None:
    def order(name: str) -> str:
        return Dialect(name).select(PAIR, ["qte"], ordered=True).split(" ORDER BY ")[1]

    assert order("postgresql") == '"site" COLLATE "C", "num"'
    assert order("mysql") == 'CAST(CONVERT("site" USING utf8mb4) AS BINARY), "num"'
    assert order("mssql") == '"site" COLLATE Latin1_General_BIN2, "num"'
    assert order("sqlite") == '"site" COLLATE BINARY, "num"'
    sql = Dialect("sqlite").select(ONE, ["id"], ordered=False, modified_column="v")
    assert sql == 'SELECT "id" FROM "t" WHERE "v" >= ?'


def test_sqlite_odbc_reads_every_column_as_tagged_text() -> None:
    """The SQLite ODBC driver changes values not of their column's declared type, reads
    REAL with 15 digits and types an expression by its first row: such a dialect selects
    every column as text tagged with the storage class, REAL through printf('%!.20g'), in
    scans and fetches (text read as hex stays so), ordering untouched, and ``read_fixes``
    turns that text back into the value stdlib ``sqlite3`` gives (``test_db_sqlite.py``
    proves it on the real driver)."""
    table = Table(
        "m", (Column("id", "int"), Column("x", "float"), Column("s", "text")), ("id",), "primary"
    )
    tagged = Dialect("sqlite", '"', tagged_values=True)
    i, x, s = (
        f"CASE typeof({c}) WHEN 'real' THEN 'r' || printf('%!.20g', {c}) WHEN 'integer' THEN "
        f"'i' || {c} WHEN 'text' THEN 't' || {c} WHEN 'blob' THEN 'b' || hex({c}) END"
        for c in ('"id"', '"x"', '"s"')
    )
    assert tagged.select(table, ["id", "x"], ordered=True) == (
        f'SELECT {i}, {x} FROM "m" ORDER BY "id"'
    )
    assert tagged.fetch(table, 1) == f'SELECT {i}, {x}, {s} FROM "m" WHERE "id" IN (?)'
    hexed = 'CASE WHEN "s" IS NULL THEN NULL ELSE hex(CAST("s" AS BLOB)) END'
    assert tagged.fetch(table, 1, raw_text=True) == (
        f'SELECT {i}, {x}, {hexed} FROM "m" WHERE "id" IN (?)'
    )
    assert Dialect("sqlite").fetch(table, 1) == 'SELECT "id", "x", "s" FROM "m" WHERE "id" IN (?)'
    assert Dialect("sqlite").read_fixes(table, ["id", "x", "s"]) == {}
    assert sorted(tagged.read_fixes(table, ["s", "id", "x"])) == [0, 1, 2]
    assert sorted(tagged.read_fixes(table, ["s", "id", "x"], raw_text=True)) == [1, 2]
    untag = tagged.read_fixes(table, ["x"])[0]
    assert untag("r0.30000000000000004441") == 0.30000000000000004
    assert untag("r-Inf") == float("-inf")
    assert untag("i9007199254740993") == 9007199254740993
    assert untag("tr1.5") == "r1.5" and untag("t") == ""
    assert untag("b00FF") == b"\x00\xff"


def test_keyset_page() -> None:
    sql = Dialect("mysql", "`").select(
        PAIR, ["qte"], ordered=True, modified_column="qte", after_key=True, limit=10
    )
    text = "CAST(CONVERT(`site` USING utf8mb4) AS BINARY)"
    mark = "CAST(CONVERT(? USING utf8mb4) AS BINARY)"
    assert sql == (
        f"SELECT `qte` FROM `ventes` WHERE `qte` >= ? AND (({text} > {mark})"
        f" OR ({text} = {mark} AND `num` > ?)) ORDER BY {text}, `num` LIMIT 10"
    )
    assert Dialect.after_key_params(("a", 1, 2)) == ["a", "a", 1, "a", 1, 2]
    assert Dialect("mysql").page_rows > 0 and Dialect("postgresql").page_rows == 0
    assert (
        Dialect("mssql")
        .select(ONE, ["id"], ordered=True, limit=5)
        .endswith('ORDER BY "id" OFFSET 0 ROWS FETCH NEXT 5 ROWS ONLY')
    )


def test_savepoints() -> None:
    assert Dialect("postgresql").savepoint("sp1") == "SAVEPOINT sp1"
    assert Dialect("mysql").rollback_to("sp1") == "ROLLBACK TO SAVEPOINT sp1"
    assert Dialect("sqlite").release("sp1") == "RELEASE SAVEPOINT sp1"
    assert Dialect("mssql").savepoint("sp1") == "SAVE TRANSACTION sp1"
    assert Dialect("mssql").rollback_to("sp1") == "ROLLBACK TRANSACTION sp1"
    assert Dialect("mssql").release("sp1") is None
    with pytest.raises(ValueError):
        Dialect("sqlite").savepoint("x; DROP TABLE t")


@pytest.mark.parametrize(
    ("declared", "kind"),
    [
        ("INTEGER", "int"),
        ("BIGINT", "int"),
        ("VARCHAR(20)", "text"),
        ("NVARCHAR", "text"),
        ("CLOB", "text"),
        ("BLOB", "blob"),
        ("", "blob"),
        ("REAL", "float"),
        ("DOUBLE PRECISION", "float"),
        ("DECIMAL(12,2)", "decimal"),
        ("NUMERIC", "decimal"),
        ("DATE", "date"),
        ("DATETIME", "datetime"),
        ("TIMESTAMP", "datetime"),
        ("TIME", "time"),
        ("BOOLEAN", "bool"),
    ],
)
def test_sqlite_kind(declared: str, kind: str) -> None:
    assert sqlite_kind(declared) == kind


@pytest.mark.parametrize(
    ("dialect", "type_name", "data_type", "size", "kind"),
    [
        ("mysql", "tinyint(1)", -6, 3, "bool"),
        ("mysql", "tinyint(4)", -6, 3, "int"),
        ("postgresql", "bool", 12, 5, "bool"),
        ("postgresql", "numeric", 2, 12, "decimal"),
        ("postgresql", "bytea", -4, -4, "blob"),
        ("postgresql", "timestamptz", 93, 26, "datetime"),
        ("mssql", "bit", -7, 1, "bool"),
        ("mssql", "money", 3, 19, "decimal"),
        ("mssql", "datetime2", 93, 27, "datetime"),
        ("mssql", "time", -154, 16, "time"),
        ("mssql", "uniqueidentifier", -11, 36, "uuid"),
        ("postgresql", "uuid", -11, 37, "uuid"),
        ("mysql", "UUID", -4, 0, "uuid"),
        ("postgresql", "jsonb", -9, 255, "json"),
        ("postgresql", "json", -9, 255, "json"),
        ("mssql", "varbinary", -3, 100, "blob"),
        ("access", "COUNTER", 4, 10, "int"),
        ("access", "CURRENCY", 2, 19, "decimal"),
        ("access", "BIT", -7, 1, "bool"),
        ("access", "DATETIME", 93, 19, "datetime"),
        ("access", "LONGBINARY", -4, 0, "blob"),
        ("access", "LONGCHAR", -10, 0, "text"),
        ("access", "DOUBLE", 8, 53, "float"),
        ("sqlite", "DECIMAL(12,2)", 12, 2, "decimal"),
    ],
)
def test_odbc_kind(dialect: str, type_name: str, data_type: int, size: int, kind: str) -> None:
    assert odbc_kind(dialect, type_name, data_type, size) == kind
