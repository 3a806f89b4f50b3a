"""SQL text that writes, per database family: insert, update, upsert (SQL Server's MERGE),
savepoints; and what every statement needs (capacities, quoted names). ``Dialect``
(``db.dialects``) adds the reads on top. Pure functions of names and counts."""

from __future__ import annotations

import re
from collections.abc import Sequence

from synchro.db.base import Table

MAX_BATCH_ROWS = 500

# Families with multi-row VALUES, a native upsert, savepoints and a binary collation.
# Anything else (MS Access, an unknown ODBC source) gets the cautious row-at-a-time path.
FULL = ("sqlite", "postgresql", "mysql", "mssql")


class WriteSql:
    """The writing half of a family's ``Dialect``."""

    name: str
    quote_char: str

    # -- capacities -------------------------------------------------------------------

    @property
    def max_params(self) -> int:
        # SQL Server refuses 2100 parameters or more; old SQLite builds stop at 999.
        limits = {"sqlite": 999, "postgresql": 65535, "mysql": 65535, "mssql": 2000}
        return limits.get(self.name, 200)

    @property
    def multi_row(self) -> bool:
        """Multi-row ``VALUES`` and a native upsert (MS Access has neither)."""
        return self.name in FULL

    @property
    def row_values(self) -> bool:
        """``(a, b) IN ((?, ?), ...)`` is understood and uses the key's index.

        SQLite understands it but scans the whole table: it gets OR-ed ANDs instead.
        """
        return self.name in ("postgresql", "mysql")

    @property
    def binary_order(self) -> bool:
        """Text keys can be ordered by code point in SQL (else the adapter sorts)."""
        return self.name in FULL

    @property
    def savepoints(self) -> bool:
        return self.name in FULL

    def batch_rows(self, ncols: int) -> int:
        """Rows per statement so that rows × columns stays under the parameter limit."""
        return max(1, min(MAX_BATCH_ROWS, self.max_params // max(1, ncols)))

    # -- names ------------------------------------------------------------------------

    def quote(self, name: str) -> str:
        q = self.quote_char.strip()
        if q in ("", "["):
            return "[" + name.replace("]", "]]") + "]"
        return q + name.replace(q, q + q) + q

    def _cols(self, names: Sequence[str]) -> str:
        return ", ".join(self.quote(n) for n in names)

    # -- writing ----------------------------------------------------------------------

    def insert(self, table: Table, nrows: int = 1) -> str:
        one = "(" + ", ".join("?" * len(table.columns)) + ")"
        values = ", ".join([one] * nrows)
        cols = self._cols(table.column_names)
        # The key a row was made with elsewhere, kept even where the server makes it.
        overriding = self.name == "postgresql" and any(c.identity_always for c in table.columns)
        values = "OVERRIDING SYSTEM VALUE VALUES " + values if overriding else "VALUES " + values
        return f"INSERT INTO {self.quote(table.name)} ({cols}) {values}"

    def update(self, table: Table) -> str:
        """Update one row by key; parameters: non-key values then key values."""
        others = [c for c in table.column_names if c not in table.key]
        sets = ", ".join(f"{self.quote(c)} = ?" for c in others or table.key[:1])
        where = " AND ".join(f"{self.quote(k)} = ?" for k in table.key)
        return f"UPDATE {self.quote(table.name)} SET {sets} WHERE {where}"

    def update_params(self, table: Table, row: Sequence[object]) -> list[object]:
        """The parameters of ``update`` for a whole row (columns in table order)."""
        names = table.column_names
        others = [i for i, c in enumerate(names) if c not in table.key] or [table.key_positions[0]]
        return [row[i] for i in others] + [row[i] for i in table.key_positions]

    def move_sequence_past(self) -> str | None:
        """Set a sequence (parameters: a value, its name, the value) to that value when
        its next would not be above it: its last lower, or never called and its start
        not above (a sequence numbering a range from its start is not moved down to keys
        written by hand below it). A descending one is left. None where the server moves
        its own."""
        if self.name != "postgresql":
            return None
        return (
            "SELECT setval(CAST(s.seqrelid AS regclass), ?) FROM pg_sequence s"
            " WHERE s.seqrelid = CAST(? AS regclass) AND s.seqincrement > 0"
            " AND ? > COALESCE(pg_sequence_last_value(s.seqrelid), s.seqstart - 1)"
        )

    def upsert(self, table: Table, nrows: int) -> str:
        """Insert ``nrows`` whole rows, replacing those whose key exists (not for access)."""
        if self.name == "mssql":
            return self._merge(table, nrows)
        if not self.multi_row:
            raise ValueError(f"{self.name}: no upsert, use update() then insert() per row")
        others = [c for c in table.column_names if c not in table.key]
        insert = self.insert(table, nrows)
        if self.name == "mysql":
            sets = ", ".join(
                f"{self.quote(c)} = VALUES({self.quote(c)})" for c in others or table.key[:1]
            )
            return f"{insert} ON DUPLICATE KEY UPDATE {sets}"
        target = f"ON CONFLICT ({self._cols(table.key)})"
        if not others:
            return f"{insert} {target} DO NOTHING"
        sets = ", ".join(f"{self.quote(c)} = excluded.{self.quote(c)}" for c in others)
        return f"{insert} {target} DO UPDATE SET {sets}"

    def _merge(self, table: Table, nrows: int) -> str:
        cols = table.column_names
        others = [c for c in cols if c not in table.key]
        one = "(" + ", ".join("?" * len(cols)) + ")"
        on = " AND ".join(f"t.{self.quote(k)} = s.{self.quote(k)}" for k in table.key)
        sql = (
            f"MERGE INTO {self.quote(table.name)} WITH (HOLDLOCK) AS t"
            f" USING (VALUES {', '.join([one] * nrows)}) AS s ({self._cols(cols)}) ON {on}"
        )
        if others:
            sets = ", ".join(f"t.{self.quote(c)} = s.{self.quote(c)}" for c in others)
            sql += f" WHEN MATCHED THEN UPDATE SET {sets}"
        values = ", ".join(f"s.{self.quote(c)}" for c in cols)
        return sql + f" WHEN NOT MATCHED THEN INSERT ({self._cols(cols)}) VALUES ({values});"

    # -- transactions -----------------------------------------------------------------

    def savepoint(self, name: str) -> str:
        _check_name(name)
        return f"SAVE TRANSACTION {name}" if self.name == "mssql" else f"SAVEPOINT {name}"

    def rollback_to(self, name: str) -> str:
        _check_name(name)
        if self.name == "mssql":
            return f"ROLLBACK TRANSACTION {name}"
        return f"ROLLBACK TO SAVEPOINT {name}"

    def release(self, name: str) -> str | None:
        """The statement that forgets a savepoint (None: SQL Server has none)."""
        _check_name(name)
        return None if self.name == "mssql" else f"RELEASE SAVEPOINT {name}"


def _check_name(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"invalid savepoint name {name!r}")
