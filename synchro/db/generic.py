"""What the stdlib sqlite3 and the pyodbc adapters share: batching, streaming, transactions.

``SqlAdapter`` implements the ``Adapter`` operations once over a DB-API connection and a
``Dialect``; a subclass supplies the driver hooks (``_binder``, ``_translate``, ``_begin``,
``_commit``, ``_rollback``) and discovery (``tables``). Its parts: ``sql_core`` (hooks,
binding, transactions), ``sql_reads`` (scans and fetches), this module (writes).

Rows given to ``upsert`` in one call must not repeat a key (PostgreSQL refuses a statement
that would update the same row twice). A scan holds its cursor open while the caller
iterates; other statements on the same adapter may run meanwhile.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from synchro.db.base import MARK_TABLE, Key, Row, Table
from synchro.db.deferred import deferred_children, deferred_parents
from synchro.db.doing import act
from synchro.db.sql_core import chunks
from synchro.db.sql_reads import SqlReads
from synchro.errors import Say


class SqlAdapter(SqlReads):
    """An ``Adapter`` over one DB-API connection, writing SQL through ``self.sql``."""

    def _in_batches(
        self,
        table: Table,
        names: Sequence[str],
        rows: Sequence[Sequence[Any]],
        size: int,
        statement: Callable[[int], str],
        doing: Say,
    ) -> None:
        """Run ``statement(n)`` on ``rows`` bound ``n`` at a time (``n`` ≤ ``size``)."""
        for part in chunks(rows, size):
            self._run(statement(len(part)), self._bind_rows(table, names, part), doing).close()

    def insert(self, table: Table, rows: Sequence[Row]) -> None:
        size = self.sql.batch_rows(len(table.columns)) if self.sql.multi_row else 1
        statement = functools.partial(self.sql.insert, table)
        doing = act("write", table.name)
        self._in_batches(table, table.column_names, rows, size, statement, doing)
        deferred_parents(self, table, rows)

    def upsert(self, table: Table, rows: Sequence[Row]) -> None:
        self._need_key(table)
        doing = act("write", table.name)
        if not self.sql.multi_row or table.key_source not in ("primary", "unique"):
            for row in rows:  # no native upsert, or no unique constraint for it to use
                self._update_or_insert(table, row, doing)
            deferred_parents(self, table, rows)
            return
        size = self.sql.batch_rows(len(table.columns))
        statement = functools.partial(self.sql.upsert, table)
        self._in_batches(table, table.column_names, rows, size, statement, doing)
        deferred_parents(self, table, rows)

    def move_sequences_past(self, table: Table, highest: Mapping[str, int]) -> None:
        for column in table.columns:
            value = highest.get(column.name)
            sql = self.sql.move_sequence_past() if column.sequence else None
            if value is not None and sql is not None:
                doing = act("sequence", table.name)
                self._run(sql, [value, column.sequence, value], doing).close()

    def _update_or_insert(self, table: Table, row: Row, doing: Say) -> None:
        bound = self._bind_rows(table, table.column_names, [row])
        cursor = self._run(self.sql.update(table), self.sql.update_params(table, bound), doing)
        changed = cursor.rowcount
        cursor.close()
        if changed == 0 and not self._exists(table, bound):
            # MariaDB counts changed rows, not matched ones: 0 may mean "same values".
            self._run(self.sql.insert(table, 1), bound, doing).close()

    def _exists(self, table: Table, bound: Sequence[Any]) -> bool:
        key = [bound[i] for i in table.key_positions]
        sql = f"SELECT COUNT(*) FROM {self.sql.quote(table.name)} WHERE "
        sql += self.sql.keys_condition(table.key, 1)
        cursor = self._run(sql, key, act("read", table.name))
        try:
            return int(cursor.fetchone()[0]) > 0
        finally:
            cursor.close()

    def delete(self, table: Table, keys: Sequence[Key]) -> None:
        self._need_key(table)
        size = self.sql.batch_rows(len(table.key))
        doing = act("delete", table.name)
        for part in chunks(keys, size):
            params, arrays = self._key_params(table, part)
            self._run(self.sql.delete(table, len(part), arrays), params, doing).close()
        deferred_children(self, table, keys, self._deferred_referrers())

    _referrers: tuple[Table, ...] | None = None

    def _deferred_referrers(self) -> tuple[Table, ...]:
        """The tables with a foreign key checked at the commit (SQLite; read once)."""
        if self._referrers is None:
            self._referrers = tuple(self._read_deferred())
        return self._referrers

    def _read_deferred(self) -> list[Table]:
        """Read ``_deferred_referrers`` from the catalog (none but on SQLite)."""
        return []

    # -- the mark of the last synchronisation (``engine.marks``) ----------------------

    @abc.abstractmethod
    def _has_mark_table(self) -> bool:
        """Whether ``MARK_TABLE`` exists (a catalog read: never a failing statement)."""

    def read_mark(self, code: str) -> int | None:
        if not self._has_mark_table():
            return None
        sql = f"SELECT numero FROM {self.sql.quote(MARK_TABLE)} WHERE poste = ?"
        cursor = self._run(sql, [code], act("mark_read"))
        try:
            numbers = [int(row[0]) for row in cursor.fetchall()]
        finally:
            cursor.close()
        return max(numbers, default=None)

    def write_mark(self, code: str, number: int) -> bool:
        table = self.sql.quote(MARK_TABLE)
        doing = act("mark_write")
        if not self._has_mark_table():
            if self._depth:
                return False
            self._run(
                f"CREATE TABLE {table} (poste VARCHAR(40) NOT NULL PRIMARY KEY, "
                "numero INTEGER NOT NULL)",
                [],
                doing,
            ).close()
        with self.atomic():  # a savepoint inside the caller's transaction
            self._run(f"DELETE FROM {table} WHERE poste = ?", [code], doing).close()
            insert = f"INSERT INTO {table} (poste, numero) VALUES (?, ?)"
            self._run(insert, [code, number], doing).close()
        return True
