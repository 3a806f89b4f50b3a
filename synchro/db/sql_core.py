"""The part of ``SqlAdapter`` every operation uses: driver hooks, binding, transactions.

``SqlCore`` holds what reading (``sql_reads.SqlReads``) and writing (``generic.SqlAdapter``)
share over one DB-API connection and a ``Dialect``: the hooks a driver supplies
(``_binder``, ``_translate``, ``_begin``, ``_commit``, ``_rollback``), running a statement,
binding parameters (with the refusal naming the column), and nested transactions.
"""

from __future__ import annotations

import abc
import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from synchro.db.base import Adapter, Column, Table
from synchro.db.binding import Binder, Binders, Flattener, Refused, row_flattener
from synchro.db.dialects import Dialect
from synchro.db.doing import act, failed
from synchro.db.pg_keys import array_params
from synchro.errors import CommitInDoubt, DatabaseError, Say, SchemaError, TransactionLost
from synchro.values import Kind

FETCH_SIZE = 1000


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SqlCore(Adapter):
    """An ``Adapter`` over one DB-API connection, writing SQL through ``self.sql``."""

    sql: Dialect
    _conn: Any
    _driver_errors: tuple[type[BaseException], ...] = ()

    def __init__(self) -> None:
        self._depth = 0
        self._savepoints = itertools.count(1)
        # per (table, columns): the columns' binders, and the rows' flattener made of them
        self._binders_of: dict[tuple[str, tuple[str, ...]], tuple[Binders, Flattener]] = {}
        # Tables whose column types were read again after a refusal, in this transaction.
        self._reread: set[str] = set()
        # The error after which the database ended the open transaction itself: until that
        # transaction is over, no statement runs (it would run outside of it, committed).
        self._lost: DatabaseError | None = None

    # -- driver hooks -----------------------------------------------------------------

    @abc.abstractmethod
    def _binder(self, kind: Kind) -> Callable[[Any], Any] | None:
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
    def _translate(self, exc: BaseException, doing: Say) -> DatabaseError:
        """A user-facing ``DatabaseError`` for a driver error while ``doing``."""

    def _ends_transaction(self, error: DatabaseError) -> bool:
        """Whether the database ended (or must end) the whole open transaction on ``error``,
        which is then no row's fault: a full disk, a deadlock, a lost connection. Default:
        only when the savepoint it happened in cannot be rolled back to."""
        return False

    def _after_lost(self) -> None:
        """After a transaction the database ended itself was rolled back: make the
        connection sound again where the driver needs it (default: nothing)."""

    def _in_transaction(self) -> bool:
        """Whether the transaction begun is still open, where the driver can tell."""
        return True

    @abc.abstractmethod
    def _begin(self) -> None: ...

    @abc.abstractmethod
    def _commit(self) -> None: ...

    @abc.abstractmethod
    def _rollback(self) -> None: ...

    # -- helpers ----------------------------------------------------------------------

    def _run(self, sql: str, params: Sequence[Any], doing: Say) -> Any:
        if self._lost is not None:
            raise self._lost_error()
        try:
            cursor = self._conn.cursor()
        except self._driver_errors as exc:  # (raw, it was an « erreur interne »)
            raise self._translate(exc, doing) from exc
        try:
            self._execute(cursor, sql, list(params))
        except self._driver_errors as exc:
            cursor.close()
            raise self._translate(exc, doing) from exc
        except (UnicodeError, OverflowError) as exc:  # a value the driver cannot convert
            cursor.close()
            raise failed(self.where, doing, exc) from exc
        return cursor

    def _execute(self, cursor: Any, sql: str, params: list[Any]) -> None:
        cursor.execute(sql, params)

    def _close(self, cursor: Any) -> None:
        """Close ``cursor``; one whose connection is gone (a new one made after the server
        ended it, ``_translate``) has nothing left to close, and its error would hide the
        one that says so."""
        with contextlib.suppress(*self._driver_errors):
            cursor.close()

    def _binders(self, table: Table, names: Sequence[str]) -> Binders:
        """The binders of these columns, prepared once per table."""
        return self._prepared(table, names)[0]

    def _prepared(self, table: Table, names: Sequence[str]) -> tuple[Binders, Flattener]:
        cache_key = (table.name, tuple(names))
        found = self._binders_of.get(cache_key)
        if found is None:
            columns = {c.name: c for c in table.columns}
            binders = tuple(self._column_binder(table, columns[n]) for n in names)
            found = binders, row_flattener(binders)
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
                    said = {"where": self.where, "table": table.name, "column": name}
                    why = {**said, "why": [exc.say]}
                    return DatabaseError(say=("engine.db.refused_value", why))
        said = {"where": self.where, "table": table.name}
        return DatabaseError(say=("engine.db.refused_row", said))

    def _bind_rows(
        self, table: Table, names: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> list[Any]:
        """The parameters of ``rows`` (values of the columns ``names``) flattened, each
        converted for the driver (hot path)."""
        flatten = self._prepared(table, names)[1]
        rows = rows if isinstance(rows, Sequence) else list(rows)
        try:
            return flatten(rows)
        except Refused:
            if self._read_types_again(table):
                return self._bind_rows(table, names, rows)
            raise self._refusal(table, names, rows) from None

    def _key_params(
        self, table: Table, keys: Sequence[Sequence[Any]]
    ) -> tuple[list[Any], tuple[str, ...] | None]:
        """The parameters of a batch of ``keys`` and, when they go as arrays (PostgreSQL:
        ``db.pg_keys``), the arrays' types the statement casts them to."""
        types = self.sql.key_array_types(table)
        if types is not None:
            params = array_params(table, keys)
            if params is not None:
                return params, types
        return self._bind_rows(table, table.key, keys), None

    def _need_key(self, table: Table) -> None:
        if not table.key:
            said = {"where": self.where, "table": table.name}
            raise SchemaError(say=("engine.err.no_key", said))

    # -- transactions -----------------------------------------------------------------

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """One transaction: everything in it is kept, or nothing (also when the database
        ended it itself and the block went on: ``TransactionLost``)."""
        if self._depth:
            with self.savepoint():
                yield
            return
        self._begin()
        self._depth = 1
        self._reread.clear()
        self._lost = None
        try:
            yield
        except BaseException as exc:
            self._depth = 0
            lost, self._lost = self._lost, None
            if lost is None and isinstance(exc, DatabaseError) and self._ends_transaction(exc):
                lost = exc  # outside any savepoint: a lost connection, a deadlock...
            if lost is None:
                self._undo()
                raise
            with contextlib.suppress(DatabaseError):  # the connection may be gone with it
                self._rollback()
            self._after_lost()
            if not isinstance(exc, TransactionLost):
                raise self._lost_error(lost)  # noqa: B904 (caused by ``lost``, said there)
            raise
        self._depth = 0
        lost, self._lost = self._lost, None
        if lost is not None:  # the block set the error aside: it must not be committed
            with contextlib.suppress(DatabaseError):
                self._rollback()
            self._after_lost()
            raise self._lost_error(lost)
        try:
            self._commit()
        except BaseException as exc:  # deferred constraint, lost connection: leave no open
            with contextlib.suppress(DatabaseError):  # transaction
                self._undo()
            if isinstance(exc, DatabaseError) and self.lost_connection(exc):
                said = {"where": self.where, "error": [exc.say] if exc.say else str(exc)}
                raise CommitInDoubt(say=("engine.err.commit_in_doubt", said)) from exc
            raise

    def _undo(self) -> None:
        """Roll back after the block's own error (which then stands). A rollback that
        fails because the connection is gone leaves nothing either: the server drops what
        was not committed; a new connection is made for what follows (before, the
        rollback's « Server has gone away » hid the block's error and the adapter kept
        its dead connection: the next import « début de la transaction impossible »)."""
        try:
            self._rollback()
        except DatabaseError as gone:
            if not self._ends_transaction(gone):
                raise
            self._after_lost()

    @property
    def undoes_blocks(self) -> bool:
        return self.sql.savepoints

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        """A block undone alone when it fails (a refused row), inside ``atomic``. When the
        database ended the whole transaction instead, the block's error becomes a
        ``TransactionLost``, and so does every statement until ``atomic`` is over."""
        if not self._depth:
            with self.atomic():
                yield
            return
        if not self.sql.savepoints:  # MS Access: the block cannot be undone on its own
            yield
            return
        name = f"synchro_sp{next(self._savepoints)}"
        self._bracket(self.sql.savepoint(name), act("savepoint"))
        self._depth += 1
        try:
            yield
        except DatabaseError as exc:
            if self._lost is None and self._ends_transaction(exc):
                self._lost = exc
            if self._lost is None:
                try:
                    back = self.sql.rollback_to(name)
                    self._run(back, [], act("rollback_to")).close()
                except DatabaseError:
                    self._lost = exc  # no savepoint left: the transaction is gone
            if self._lost is not None:
                raise self._lost_error()  # noqa: B904 (caused by the lost one, said there)
            raise
        except BaseException:
            if self._lost is None:
                self._run(self.sql.rollback_to(name), [], act("rollback_to")).close()
            raise
        finally:
            self._depth -= 1
        release = self.sql.release(name)
        if release:
            self._bracket(release, act("release"))

    def _bracket(self, sql: str, doing: Say) -> None:
        """Begin or release a savepoint. Its failure is no row's fault: the database has
        ended the transaction (SQLite's full disk on RELEASE, seen through its ODBC
        driver); and in SQLite a savepoint begun once the transaction has ended begins a
        new transaction of its own, which its RELEASE commits."""
        if not self._in_transaction():
            self._lost = failed(self.where, doing, [("engine.db.hint.ended", {})])
        try:
            self._run(sql, [], doing).close()
        except DatabaseError as exc:
            self._lost = exc
            raise self._lost_error() from exc

    def _lost_error(self, lost: DatabaseError | None = None) -> TransactionLost:
        """The ``TransactionLost`` of ``lost`` (default: the open transaction's), caused by
        it (its kind follows: ``DISK`` for a full disk)."""
        error = lost or self._lost
        detail: list[Say] | str = str(error)
        if error is not None and error.say is not None:
            detail = [error.say]
        said = {"where": self.where, "error": detail}
        found = TransactionLost(say=("engine.err.transaction_lost", said))
        found.__cause__ = error
        return found
