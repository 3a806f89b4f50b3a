"""What the ODBC catalog and ``information_schema`` say of a table's columns, unique
indexes and foreign keys, read through the adapter's own query and catalog functions
(``odbc_discovery.OdbcDiscovery``): the shapes of their rows, per family."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from synchro.db.base import ForeignKey
from synchro.db.details import mysql_details, postgresql_details

Query = Callable[[str, tuple[Any, ...]], list[Any]]
Catalog = Callable[..., list[Any]]


def column_details(dialect: str, query: Query, name: str) -> dict[str, dict[str, Any]]:
    """What each column can hold (``synchro.db.details``), from ``information_schema``.

    MariaDB/MySQL: also the full column type (``tinyint(1)``, key ``column_type``): the
    driver drops the width. Both: whether the server computes the column itself (key
    ``computed``: ``AS (expr) VIRTUAL/PERSISTENT``, ``GENERATED ALWAYS AS (expr) STORED``),
    and PostgreSQL's ``GENERATED ALWAYS AS IDENTITY`` (``identity_always``) and the sequence
    feeding a column (``sequence``: serial, identity). Other
    families: nothing more than the ODBC catalog says.
    """
    if dialect == "mysql":
        rows = query(
            "SELECT COLUMN_NAME, COLUMN_TYPE, CHARACTER_SET_NAME, EXTRA"
            " FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
            (name,),
        )
        return {
            str(r[0]): {
                **mysql_details(str(r[1]), r[2]),
                "column_type": str(r[1]),
                "computed": _mysql_computed(str(r[3] or "")),
            }
            for r in rows
        }
    if dialect == "postgresql":
        rows = query(
            "SELECT column_name, data_type, character_maximum_length, numeric_precision,"
            " numeric_scale, datetime_precision,"
            " (SELECT pg_encoding_to_char(encoding) FROM pg_database"
            "  WHERE datname = current_database()), is_generated, identity_generation,"
            " pg_get_serial_sequence(format('%I.%I', table_schema, table_name), column_name)"
            " FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ?",
            (name,),
        )
        return {
            str(r[0]): {
                **postgresql_details(str(r[1]), r[2], r[3], r[4], r[5], str(r[6] or "")),
                "computed": str(r[7] or "").upper() == "ALWAYS",
                "identity_always": str(r[8] or "").upper() == "ALWAYS",
                "sequence": str(r[9] or ""),
            }
            for r in rows
        }
    return {}


def _mysql_computed(extra: str) -> bool:
    """``EXTRA`` of a column the server computes (``VIRTUAL GENERATED``, ``STORED
    GENERATED``; MySQL 8's ``DEFAULT_GENERATED`` is only a default, written as any)."""
    return any(f"{how} GENERATED" in extra.upper() for how in ("VIRTUAL", "STORED", "PERSISTENT"))


def unique_indexes(
    catalog: Catalog, name: str, where: dict[str, Any]
) -> dict[str, tuple[str, ...]]:
    """Unique indexes by name, columns in index order (``statistics``)."""
    found: dict[str, list[tuple[int, str]]] = {}
    for r in catalog("statistics", table=name, unique=True, **where):
        # TABLE_NAME, NON_UNIQUE, INDEX_NAME, TYPE, ORDINAL_POSITION, COLUMN_NAME
        if r[2] != name or r[3] or r[5] is None or r[6] == 0 or r[8] is None:
            continue
        found.setdefault(str(r[5]), []).append((int(r[7]), str(r[8])))
    return {index: tuple(c for _o, c in sorted(cols)) for index, cols in found.items()}


def foreign_keys(
    dialect: str, query: Query, catalog: Catalog, name: str, where: dict[str, Any]
) -> tuple[ForeignKey, ...]:
    """The table's foreign keys. MariaDB/MySQL from ``information_schema``: its driver's
    catalog (as ODBC's ``SQLForeignKeys`` says) lists only those to a primary key, not
    those to another unique column (a customer's code), which the table order, the
    cascade check (``engine.referred``) and the two-step writes must know."""
    if dialect == "mysql":
        rows = query(
            "SELECT CONSTRAINT_NAME, REFERENCED_TABLE_NAME, ORDINAL_POSITION, COLUMN_NAME,"
            " REFERENCED_COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?"
            " AND REFERENCED_TABLE_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME IS NOT NULL",
            (name,),
        )
        named = [(str(r[0]), str(r[1]), int(r[2]), str(r[3]), str(r[4])) for r in rows]
    else:
        fk_where = {f"foreign{k.capitalize()}": v for k, v in where.items()}
        named = [
            (str(r[11] or ""), str(r[2]), int(r[8]), str(r[7]), str(r[3]))
            for r in catalog("foreignKeys", foreignTable=name, **fk_where)
            if r[6] == name
        ]
    groups: dict[tuple[str, str], list[tuple[str, str, int, str, str]]] = {}
    for member in named:
        groups.setdefault((member[0], member[1]), []).append(member)
    keys = []
    for (_fk_name, ref_table), members in sorted(groups.items()):
        members.sort(key=lambda m: m[2])
        cols = tuple(m[3] for m in members)
        ref_cols = tuple(m[4] for m in members)
        keys.append(ForeignKey(cols, ref_table, ref_cols))
    return tuple(keys)
