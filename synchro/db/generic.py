"""What the stdlib sqlite3 and the pyodbc adapters share: batching, streaming, transactions.

``SqlAdapter`` implements the ``Adapter`` operations once over a DB-API connection and a
``Dialect``; a subclass supplies the driver hooks (``_binder``, ``_translate``, ``_begin``,
``_commit``, ``_rollback``) and discovery (``tables``).

Rows given to ``upsert`` in one call must not repeat a key (PostgreSQL refuses a statement
that would update the same row twice). A scan holds its cursor open while the caller
iterates; other statements on the same adapter may run meanwhile.
"""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
import functools
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from synchro.db.base import Adapter, Column, Key, Row, Table
from synchro.db.binding import Binder, Refused, single_read_back
from synchro.db.dialects import Dialect
from synchro.errors import DatabaseError, SchemaError
from synchro.values import row_normaliser

FETCH_SIZE = 1000


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SqlAdapter(Adapter):
    """An ``Adapter`` over one DB-API connection, writing SQL through ``self.sql``."""

    sql: Dialect
    _conn: Any
    _driver_errors: tuple[type[BaseException], ...] = ()

    def __init__(self) -> None:
        self._depth = 0
        self._savepoints = itertools.count(1)
        self._binders_of: dict[tuple[str, tuple[str, ...]], tuple[Binder | None, ...]] = {}
        # Tables whose column types were read again after a refusal, in this transaction.
        self._reread: set[str] = set()

    # -- driver hooks -----------------------------------------------------------------

    @abc.abstractmethod
    def _binder(self, kind: str) -> Callable[[Any], Any] | None:
        """How this driver wants a value of ``kind`` as a parameter (None: as it is)."""

    def _column_binder(self, table: Table, column: Column) -> Binder | None:
        """How this column gets its values (None: as they are). May raise ``Refused`` for a
        value the column cannot hold exactly. Default: by kind (``_binder``)."""
        return self._binder(column.kind)

    def _forget_types(self) -> None:
        """Drop what was learnt of the columns' types (binders, sizes): called by
        discovery (``tables()``), so a column widened by ``ALTER TABLE`` since is seen
        by the next write on the same connection."""
        self._binders_of.clear()
        self._reread.clear()

    def _forget_table_types(self, name: str) -> None:
        """Drop what was learnt of one table's column types (its binders here)."""
        for cached in [k for k in self._binders_of if k[0] == name]:
            del self._binders_of[cached]

    def _read_types_again(self, table: Table) -> bool:
        """After a refusal: read this table's column types again, once per table and
        transaction (False when already done). A long-lived adapter whose caller does not
        run discovery again (a Node kept open) still sees a column widened since."""
        if table.name in self._reread:
            return False
        self._reread.add(table.name)
        self._forget_table_types(table.name)
        return True

    @abc.abstractmethod
    def _translate(self, exc: BaseException, doing: str) -> DatabaseError:
        """A user-facing ``DatabaseError`` for a driver error while ``doing``."""

    @abc.abstractmethod
    def _begin(self) -> None: ...

    @abc.abstractmethod
    def _commit(self) -> None: ...

    @abc.abstractmethod
    def _rollback(self) -> None: ...

    # -- helpers ----------------------------------------------------------------------

    def _run(self, sql: str, params: Sequence[Any], doing: str) -> Any:
        cursor = self._conn.cursor()
        try:
            cursor.execute(sql, list(params))
        except self._driver_errors as exc:
            cursor.close()
            raise self._translate(exc, doing) from exc
        except (UnicodeError, OverflowError) as exc:  # a value the driver cannot convert
            cursor.close()
            raise DatabaseError(f"{self.description} : {doing} impossible : {exc}") from exc
        return cursor

    def _binders(self, table: Table, names: Sequence[str]) -> tuple[Binder | None, ...]:
        """The binders of these columns, prepared once per table."""
        cache_key = (table.name, tuple(names))
        found = self._binders_of.get(cache_key)
        if found is None:
            columns = {c.name: c for c in table.columns}
            found = tuple(self._column_binder(table, columns[n]) for n in names)
            self._binders_of[cache_key] = found
        return found

    def _refusal(
        self, table: Table, names: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> DatabaseError:
        """The error naming the table, the column and why, for the first refused value."""
        binders = self._binders(table, names)
        for row in rows:
            for name, f, v in zip(names, binders, row, strict=True):
                try:
                    if f is not None and v is not None:
                        f(v)
                except Refused as exc:
                    return DatabaseError(
                        f"{self.description} : table {table.name}, colonne {name} : "
                        f"valeur refusée, {exc}"
                    )
        return DatabaseError(f"{self.description} : table {table.name} : valeur refusée")

    def _bind_rows(
        self, table: Table, names: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> list[Any]:
        """The parameters of ``rows`` (values of the columns ``names``) flattened, each
        converted for the driver (hot path)."""
        binders = self._binders(table, names)
        if not any(binders):
            return [v for row in rows for v in row]
        rows = rows if isinstance(rows, Sequence) else list(rows)
        try:
            return [
                v if f is None or v is None else f(v)
                for row in rows
                for f, v in zip(binders, row, strict=True)
            ]
        except Refused:
            if self._read_types_again(table):
                return self._bind_rows(table, names, rows)
            raise self._refusal(table, names, rows) from None

    def _need_key(self, table: Table) -> None:
        if not table.key:
            raise SchemaError(
                f"{self.description} : la table {table.name} n'a pas de clé ; "
                "indiquez une clé pour cette table dans la configuration."
            )

    # -- reading ----------------------------------------------------------------------

    def scan(
        self,
        table: Table,
        *,
        columns: Sequence[str] | None = None,
        ordered: bool = True,
        modified_column: str | None = None,
        modified_since: Any = None,
    ) -> Iterator[Row]:
        names = tuple(columns) if columns is not None else table.column_names
        wanted = len(names)
        page = self.sql.page_rows if table.key else 0
        sort_here = (
            ordered and bool(table.key) and not self.sql.binary_order and "text" in table.key_kinds
        )
        if sort_here or page:  # the key columns must be read to sort or page on them
            names += tuple(k for k in table.key if k not in names)
        all_kinds = dict(zip(table.column_names, table.kinds, strict=True))
        unknown = [n for n in (*names, modified_column or "") if n and n not in all_kinds]
        if unknown:
            raise SchemaError(
                f"{self.description} : la table {table.name} n'a pas de colonne "
                f"{', '.join(unknown)} ; vérifiez la configuration."
            )
        kinds = [all_kinds[n] for n in names]
        params: list[Any] = []
        if modified_column is not None and modified_since is not None:
            params.append(self._lower_bound(table, modified_column, modified_since))
        else:
            modified_column = None
        doing = f"lecture de la table {table.name}"
        positions = [names.index(k) for k in table.key] if sort_here or page else []
        if page:
            rows = self._pages(table, names, kinds, modified_column, params, positions, page)
        else:
            sql = self.sql.select(table, names, ordered=ordered, modified_column=modified_column)
            rows = self._stream(sql, params, kinds, doing, self.sql.single_columns(table, names))
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
        kinds: Sequence[str],
        modified_column: str | None,
        params: list[Any],
        positions: Sequence[int],
        page: int,
    ) -> Iterator[Row]:
        """Key-ordered pages (keyset pagination) so the driver never holds the whole table."""
        doing = f"lecture de la table {table.name}"
        singles = self.sql.single_columns(table, names)
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
            for row in self._stream(sql, bound, kinds, doing, singles):
                count += 1
                last = tuple(row[i] for i in positions)
                yield row
            if count < page:
                return

    def _stream(
        self,
        sql: str,
        params: Sequence[Any],
        kinds: Sequence[str],
        doing: str,
        singles: Sequence[int] = (),
    ) -> Iterator[Row]:
        """Rows normalised to ``kinds``; the columns at ``singles`` are 4-byte floats, given
        as the shortest text of the stored float (``Dialect.single_columns``)."""
        normalise_row = row_normaliser(kinds)  # rows already of their kinds pass as they are
        if singles:
            plain = normalise_row

            def normalise_row(row: Sequence[Any]) -> Row:
                out = list(plain(row))
                for i in singles:
                    if isinstance(out[i], float):
                        out[i] = single_read_back(out[i])
                return tuple(out)

        cursor = self._run(sql, params, doing)
        try:
            while True:
                try:
                    batch = cursor.fetchmany(FETCH_SIZE)
                except self._driver_errors as exc:
                    raise self._translate(exc, doing) from exc
                except UnicodeDecodeError as exc:  # a driver that cut a character in two
                    raise DatabaseError(
                        f"{self.description} : {doing} impossible : texte mal converti par "
                        f"le pilote ({exc})"
                    ) from exc
                except (ValueError, OverflowError) as exc:  # a value Python cannot hold
                    raise DatabaseError(
                        f"{self.description} : {doing} impossible : une valeur ne peut pas "
                        f"être lue ({exc})"
                    ) from exc
                if not batch:
                    return
                yield from map(normalise_row, batch)
        finally:
            cursor.close()

    def fetch(self, table: Table, keys: Sequence[Key]) -> list[Row]:
        return self._fetch(table, keys, raw_text=False)

    def _fetch(self, table: Table, keys: Sequence[Key], *, raw_text: bool) -> list[Row]:
        """``fetch``; with ``raw_text`` text columns are read as the hex of their UTF-8
        bytes where the dialect can (``Dialect.raw_text``) and decoded here."""
        self._need_key(table)
        out: list[Row] = []
        doing = f"lecture de la table {table.name}"
        hexed = self.sql.hexed_columns(table) if raw_text else ()
        kinds = list(table.kinds)
        for i in hexed:
            kinds[i] = "text"
        for part in chunks(keys, self.sql.batch_rows(len(table.key))):
            params = self._bind_rows(table, table.key, part)
            sql = self.sql.fetch(table, len(part), raw_text=raw_text)
            singles = self.sql.single_columns(table, table.column_names)
            rows = self._stream(sql, params, kinds, doing, singles)
            out.extend(_unhex(rows, hexed, table.kinds) if hexed else rows)
        return out

    def count(self, table: Table) -> int:
        cursor = self._run(self.sql.count(table), [], f"comptage de la table {table.name}")
        try:
            return int(cursor.fetchone()[0])
        finally:
            cursor.close()

    # -- writing ----------------------------------------------------------------------

    def _in_batches(
        self,
        table: Table,
        names: Sequence[str],
        rows: Sequence[Sequence[Any]],
        size: int,
        statement: Callable[[int], str],
        doing: str,
    ) -> None:
        """Run ``statement(n)`` on ``rows`` bound ``n`` at a time (``n`` ≤ ``size``)."""
        for part in chunks(rows, size):
            self._run(statement(len(part)), self._bind_rows(table, names, part), doing).close()

    def insert(self, table: Table, rows: Sequence[Row]) -> None:
        size = self.sql.batch_rows(len(table.columns)) if self.sql.multi_row else 1
        statement = functools.partial(self.sql.insert, table)
        doing = f"écriture dans la table {table.name}"
        self._in_batches(table, table.column_names, rows, size, statement, doing)

    def upsert(self, table: Table, rows: Sequence[Row]) -> None:
        self._need_key(table)
        doing = f"écriture dans la table {table.name}"
        if not self.sql.multi_row or table.key_source not in ("primary", "unique"):
            for row in rows:  # no native upsert, or no unique constraint for it to use
                self._update_or_insert(table, row, doing)
            return
        size = self.sql.batch_rows(len(table.columns))
        statement = functools.partial(self.sql.upsert, table)
        self._in_batches(table, table.column_names, rows, size, statement, doing)

    def _update_or_insert(self, table: Table, row: Row, doing: str) -> None:
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
        cursor = self._run(sql, key, f"lecture de la table {table.name}")
        try:
            return int(cursor.fetchone()[0]) > 0
        finally:
            cursor.close()

    def delete(self, table: Table, keys: Sequence[Key]) -> None:
        self._need_key(table)
        size = self.sql.batch_rows(len(table.key))
        statement = functools.partial(self.sql.delete, table)
        doing = f"suppression dans la table {table.name}"
        self._in_batches(table, table.key, keys, size, statement, doing)

    # -- transactions -----------------------------------------------------------------

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        if self._depth:
            with self.savepoint():
                yield
            return
        self._begin()
        self._depth = 1
        self._reread.clear()
        try:
            yield
        except BaseException:
            self._depth = 0
            self._rollback()
            raise
        self._depth = 0
        try:
            self._commit()
        except BaseException:  # deferred constraint, lost connection: leave no open transaction
            with contextlib.suppress(DatabaseError):
                self._rollback()
            raise

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        if not self._depth:
            with self.atomic():
                yield
            return
        if not self.sql.savepoints:  # MS Access: the block cannot be undone on its own
            yield
            return
        name = f"synchro_sp{next(self._savepoints)}"
        self._run(self.sql.savepoint(name), [], "début d'un point de sauvegarde").close()
        self._depth += 1
        try:
            yield
        except BaseException:
            self._run(self.sql.rollback_to(name), [], "retour au point de sauvegarde").close()
            raise
        finally:
            self._depth -= 1
        release = self.sql.release(name)
        if release:
            self._run(release, [], "fin d'un point de sauvegarde").close()


def _unhex(rows: Iterable[Row], positions: Sequence[int], kinds: Sequence[str]) -> Iterator[Row]:
    """Rows whose columns at ``positions`` hold hex text: decoded as UTF-8 (bytes that are
    not UTF-8 are kept as escapes, so they never equal what was sent), then normalised."""
    from synchro.values import normalise

    for row in rows:
        out = list(row)
        for i in positions:
            value = out[i]
            if isinstance(value, str):
                text = bytes.fromhex(value).decode("utf-8", "surrogateescape")
                out[i] = normalise(kinds[i], text)
        yield tuple(out)
