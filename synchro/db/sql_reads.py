"""Reading through ``SqlAdapter``: key-ordered scans, pages, fetch by keys, counts.

Rows come out normalised to their columns' kinds (``synchro.values.row_normaliser``). A
scan holds its cursor open while the caller iterates; other statements on the same adapter
may run meanwhile.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from synchro.db.base import Key, Row, Table
from synchro.db.doing import act, failed
from synchro.db.sql_core import FETCH_SIZE, SqlCore, chunks
from synchro.errors import DatabaseError, Say, SchemaError
from synchro.values import Kind, normalise, row_normaliser


class SqlReads(SqlCore):
    """The reading operations of ``Adapter`` over ``SqlCore``."""

    def scan(
        self,
        table: Table,
        *,
        columns: Sequence[str] | None = None,
        ordered: bool = True,
        modified_column: str | None = None,
        modified_since: Any = None,
        raw: bool = False,
    ) -> Iterator[Row]:
        names = tuple(columns) if columns is not None else table.column_names
        wanted = len(names)
        page = self.sql.page_rows if table.key else 0
        text_key = Kind.TEXT in table.key_kinds
        sort_here = ordered and bool(table.key) and not self.sql.binary_order and text_key
        if sort_here or page:  # the key columns must be read to sort or page on them
            names += tuple(k for k in table.key if k not in names)
        all_kinds = dict(zip(table.column_names, table.kinds, strict=True))
        unknown = [n for n in (*names, modified_column or "") if n and n not in all_kinds]
        if unknown:
            said = {"where": self.where, "table": table.name, "columns": ", ".join(unknown)}
            raise SchemaError(say=("engine.err.no_column", said))
        kinds = [all_kinds[n] for n in names]
        params: list[Any] = []
        if modified_column is not None and modified_since is not None:
            params.append(self._lower_bound(table, modified_column, modified_since))
        else:
            modified_column = None
        doing = act("read", table.name)
        positions = [names.index(k) for k in table.key] if sort_here or page else []
        if page:
            rows = self._pages(table, names, kinds, modified_column, params, positions, page)
        else:
            sql = self.sql.select(table, names, ordered=ordered, modified_column=modified_column)
            # (raw rows only here: pages and sorting bind and compare normalised keys)
            fixes = self.sql.read_fixes(table, names)
            rows = self._stream(sql, params, kinds, doing, fixes, raw=raw and not sort_here)
        if sort_here:
            # No binary collation in SQL (MS Access): sort here, memory grows with the table.
            rows = iter(sorted(rows, key=lambda r: tuple(r[i] for i in positions)))
        for row in rows:
            yield row[:wanted]

    def _lower_bound(self, table: Table, name: str, value: Any) -> Any:
        """The bound of a modification-date filter, bound as the column's values are. A
        bound the column would refuse is widened, never narrowed: fractions dropped (the
        filter then lets a little more through), a naive time taken as local time for a
        column with time zone."""
        tries = [value]
        if isinstance(value, dt.datetime):
            tries.append(value.replace(microsecond=0))
            if value.tzinfo is None:
                tries.append(value.replace(microsecond=0).astimezone())
        for bound in tries[:-1]:
            try:
                return self._bind_rows(table, [name], [[bound]])[0]
            except DatabaseError:
                continue
        return self._bind_rows(table, [name], [[tries[-1]]])[0]

    def _pages(
        self,
        table: Table,
        names: tuple[str, ...],
        kinds: Sequence[Kind],
        modified_column: str | None,
        params: list[Any],
        positions: Sequence[int],
        page: int,
    ) -> Iterator[Row]:
        """Key-ordered pages (keyset pagination) so the driver never holds the whole table."""
        doing = act("read", table.name)
        fixes = self.sql.read_fixes(table, names)
        last: Row | None = None
        while True:
            sql = self.sql.select(
                table,
                names,
                ordered=True,
                modified_column=modified_column,
                after_key=last is not None,
                limit=page,
            )
            bound = list(params)
            if last is not None:
                after = self.sql.after_key_params(last)
                names_after = self.sql.after_key_params(table.key)
                bound += self._bind_rows(table, [str(n) for n in names_after], [after])
            count = 0
            for row in self._stream(sql, bound, kinds, doing, fixes):
                count += 1
                last = tuple(row[i] for i in positions)
                yield row
            if count < page:
                return

    def _stream(
        self,
        sql: str,
        params: Sequence[Any],
        kinds: Sequence[Kind],
        doing: Say,
        fixes: Mapping[int, Callable[[Any], Any]] | None = None,
        *,
        raw: bool = False,
    ) -> Iterator[Row]:
        """Rows normalised to ``kinds`` (``raw``: as the driver returns them), the values at
        the positions of ``fixes`` first given to their function (``Dialect.read_fixes``)."""
        normalise_row = row_normaliser(kinds) if not raw else tuple
        plain = normalise_row
        every = set(fixes.values()) if fixes and len(fixes) == len(kinds) else set()
        if len(every) == 1:  # one fix for every column (SQLite ODBC): in one C loop
            (fix,) = every

            def normalise_row(row: Sequence[Any]) -> Row:
                return plain(tuple(map(fix, row)))

        elif fixes:

            def normalise_row(row: Sequence[Any]) -> Row:
                out = list(row)
                for i, fix in fixes.items():
                    if out[i] is not None:
                        out[i] = fix(out[i])
                return plain(out)

        cursor = self._run(sql, params, doing)
        try:
            while True:
                try:
                    batch = cursor.fetchmany(FETCH_SIZE)
                except self._driver_errors as exc:
                    raise self._translate(exc, doing) from exc
                except UnicodeDecodeError as exc:  # a driver that cut a character in two
                    hint: Say = ("engine.db.hint.text", {})
                    raise failed(self.where, doing, exc, hint) from exc
                except (ValueError, OverflowError) as exc:  # a value Python cannot hold
                    hint = ("engine.db.hint.value", {})
                    raise failed(self.where, doing, exc, hint) from exc
                if not batch:
                    return
                yield from map(normalise_row, batch)
        finally:
            self._close(cursor)

    def fetch(self, table: Table, keys: Sequence[Key], *, lock: bool = False) -> list[Row]:
        return self._fetch(table, keys, raw_text=False, lock=lock)

    def read_back(self, table: Table, keys: Sequence[Key], *, raw: bool = False) -> list[Row]:
        return self._fetch(table, keys, raw_text=False, raw=raw)

    def _fetch(
        self,
        table: Table,
        keys: Sequence[Key],
        *,
        raw_text: bool,
        raw: bool = False,
        lock: bool = False,
    ) -> list[Row]:
        """``fetch``; with ``raw_text`` text columns are read as the hex of their UTF-8
        bytes where the dialect can (``Dialect.raw_text``) and decoded here; ``raw``: the
        values as the driver returns them (see ``scan``)."""
        self._need_key(table)
        out: list[Row] = []
        doing = act("read", table.name)
        hexed = self.sql.hexed_columns(table) if raw_text else ()
        kinds = list(table.kinds)
        for i in hexed:
            kinds[i] = Kind.TEXT
        for part in chunks(keys, self.sql.batch_rows(len(table.key))):
            params, arrays = self._key_params(table, part)
            sql = self.sql.fetch(table, len(part), raw_text=raw_text, arrays=arrays, lock=lock)
            fixes = self.sql.read_fixes(table, table.column_names, raw_text=raw_text)
            rows = self._stream(sql, params, kinds, doing, fixes, raw=raw)
            out.extend(_unhex(rows, hexed, table.kinds) if hexed else rows)
        return out

    def count(self, table: Table) -> int:
        cursor = self._run(self.sql.count(table), [], act("count", table.name))
        try:
            return int(cursor.fetchone()[0])
        finally:
            cursor.close()


def _unhex(rows: Iterable[Row], positions: Sequence[int], kinds: Sequence[Kind]) -> Iterator[Row]:
    """Rows whose columns at ``positions`` hold hex text: decoded as UTF-8 (bytes that are
    not UTF-8 are kept as escapes, so they never equal what was sent), then normalised."""
    for row in rows:
        out = list(row)
        for i in positions:
            value = out[i]
            if isinstance(value, str):
                text = bytes.fromhex(value).decode("utf-8", "surrogateescape")
                out[i] = normalise(kinds[i], text)
        yield tuple(out)
