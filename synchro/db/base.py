"""The small interface every database adapter implements.

An adapter hides one driver (stdlib ``sqlite3`` or ``pyodbc``) and one SQL dialect. The
engine only ever talks to this interface. Values cross it as plain Python values of the
column's *kind* (see ``synchro.values``): the adapter normalises what its driver returns
and converts what it binds.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Any

from synchro.errors import Say
from synchro.values import Kind

# The one table Synchro keeps in the user's database: the number of its last
# synchronisation, by node (``engine.marks``: a database restored from an older backup
# is seen). Never a table of the user's, never synchronised.
MARK_TABLE = "synchro_repere"


def own_table(name: str) -> bool:
    """Whether ``name`` is Synchro's own table (``MARK_TABLE``), left out of discovery."""
    return name.casefold() == MARK_TABLE


Row = tuple[Any, ...]
Key = tuple[Any, ...]


@dataclass(frozen=True)
class Column:
    """One column. The fields after ``nullable`` say what the column can hold (filled by
    discovery, see ``synchro.db.details``; ``None`` = no limit known). They take no part in
    equality: two columns are the same column whatever their sizes."""

    name: str
    kind: Kind
    type_name: str = ""  # the declared type as the database reports it
    nullable: bool = True
    length: int | None = field(default=None, compare=False)  # text: characters; blob: bytes
    precision: int | None = field(default=None, compare=False)  # decimal: digits in all
    scale: int | None = field(default=None, compare=False)  # decimal: digits after the point
    width: int | None = field(default=None, compare=False)  # int/float: bytes (2, 4, 8...)
    unsigned: bool = field(default=False, compare=False)  # int: no negative values
    fraction: int | None = field(default=None, compare=False)  # time: digits of seconds kept
    years: tuple[int, int] | None = field(default=None, compare=False)  # first, last year
    zone: bool | None = field(default=None, compare=False)  # time zone kept (None: either)
    charset: str = field(default="", compare=False)  # text: "" = all of Unicode
    enforced: bool = field(default=True, compare=False)  # False: sizes only declared (SQLite)
    # PostgreSQL GENERATED ALWAYS AS IDENTITY: written only with OVERRIDING SYSTEM VALUE
    identity_always: bool = field(default=False, compare=False)
    # PostgreSQL: the sequence feeding the column (serial, identity), which a written value
    # does not move (MariaDB, SQLite, SQL Server and Access move theirs past it)
    sequence: str = field(default="", compare=False)


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    # SQLite ``DEFERRABLE INITIALLY DEFERRED`` (Django's): checked only at the commit,
    # so the adapter checks it at each write (``generic.SqlAdapter``)
    deferred: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class Table:
    """A table as discovered: columns in database order, key, foreign keys."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    key_source: str = ""  # "primary", "unique", "config" or "" when there is none
    foreign_keys: tuple[ForeignKey, ...] = field(default=())
    # Why the driver cannot carry this table's statements, as words of the locales (None
    # when it can): ``select_tables`` refuses to synchronise it, naming the table and column.
    unusable: Say | None = field(default=None, compare=False)
    # The columns of each unique index (a room's code, its guest): ``engine.two_steps``
    uniques: tuple[tuple[str, ...], ...] = field(default=(), compare=False)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def kinds(self) -> tuple[Kind, ...]:
        return tuple(c.kind for c in self.columns)

    @property
    def key_positions(self) -> tuple[int, ...]:
        names = self.column_names
        return tuple(names.index(k) for k in self.key)

    @property
    def key_kinds(self) -> tuple[Kind, ...]:
        kinds = {c.name: c.kind for c in self.columns}
        return tuple(kinds[k] for k in self.key)

    def with_key(self, key: Sequence[str], source: str) -> Table:
        return replace(self, key=tuple(key), key_source=source)


class Adapter(abc.ABC):
    """One open connection to the user's database.

    ``dialect`` is one of ``sqlite``, ``postgresql``, ``mysql``, ``mssql``, ``access``.
    Writes happen only inside ``with adapter.atomic():`` (one transaction); a
    ``savepoint()`` inside it undoes only its own block when that block raises.
    Errors of the driver come out as ``synchro.errors.DatabaseError``.
    """

    dialect: str = ""
    description: str = ""  # "SQLite 3.40.1 (fichier /x/y.db)" — for status and reports
    described: Say | None = None  # ``description`` as words of the locales, where given
    # the program stops: a wait for another program's lock ends (``db.lock_wait``; SQLite)
    stopping: Callable[[], bool] | None = None

    @property
    def where(self) -> str | list[Say]:
        """The database, as a value of an error's words: said in the UI language."""
        return [self.described] if self.described is not None else self.description

    @abc.abstractmethod
    def tables(self) -> list[Table]:
        """Every user table with columns, key (primary, else unique index) and foreign keys."""

    @abc.abstractmethod
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
        """Stream the rows (all columns, or ``columns``), normalised to their kinds.

        ``ordered``: by key, ascending, in the order Python's tuple comparison gives for
        the normalised key values (binary collation for text). ``modified_column`` /
        ``modified_since``: only rows whose column is >= the bound. ``raw``: the values
        may come as the driver returns them, not normalised (for a reader that only
        hashes them: a value's canonical form is that of its normal form).
        Memory stays flat: rows are fetched in batches.
        """

    def arrow_ready(self) -> bool:
        """Whether ``arrow_batches`` may read this database (checked before anything that
        costs: a table's row count)."""
        return False

    def arrow_batches(self, table: Table, *, ordered: bool) -> Iterator[Any] | None:
        """The table's committed rows as Arrow record batches, every value exactly as this
        adapter's driver returns it before normalising (``synchro.db.columnar``); None when
        they cannot be read so (the caller then uses ``scan``)."""
        return None

    @abc.abstractmethod
    def fetch(self, table: Table, keys: Sequence[Key], *, lock: bool = False) -> list[Row]:
        """The current rows (all columns) for these keys; missing keys are simply absent.
        ``lock`` (inside a transaction): the rows stay locked until it ends, so what is
        decided from them (a conflict, a write over them) cannot be overtaken by another
        program's write committed in between (``Dialect.locking``)."""

    def read_back(self, table: Table, keys: Sequence[Key], *, raw: bool = False) -> list[Row]:
        """The rows the database holds for these keys, read for verification after a write.

        An adapter whose driver may convert values on the way (ODBC text through wide
        characters) reads them here by another path (the stored bytes, e.g. ``HEX()``), so
        a driver cannot read its own damage back as "equal". ``raw``: the values may come
        as the driver returns them, not normalised (as ``scan``). Default: ``fetch``.
        """
        return self.fetch(table, keys)

    @abc.abstractmethod
    def insert(self, table: Table, rows: Sequence[Row]) -> None:
        """Insert new rows (all columns); fails when a key already exists, including one
        the database's collation only finds equal."""

    @abc.abstractmethod
    def upsert(self, table: Table, rows: Sequence[Row]) -> None:
        """Insert or replace whole rows (all columns) with multi-row statements."""

    @abc.abstractmethod
    def delete(self, table: Table, keys: Sequence[Key]) -> None:
        """Delete the rows with these keys; missing ones are ignored."""

    @abc.abstractmethod
    def count(self, table: Table) -> int: ...

    def move_sequences_past(self, table: Table, highest: Mapping[str, int]) -> None:
        """Each sequence feeding a column of ``table`` (``Column.sequence``) made to give
        next a value above ``highest[column]``, when it would give one at or below it.
        Default: nothing (the server moves its own counter past a value written)."""
        return None

    def gave_up_waiting(self, error: Exception) -> bool:
        """Whether ``error`` is a statement that gave up waiting for a lock another program
        holds (``odbc.LOCK_WAIT_S``, SQLite's busy timeout): no row's fault. Default: no."""
        return False

    def lost_connection(self, error: Exception) -> bool:
        """Whether ``error`` says the connection to the database server was lost (a server
        restarted, a cut network); the adapter has a new one for what follows. Default: no
        (an embedded file has no connection to lose)."""
        return False

    @abc.abstractmethod
    def read_mark(self, code: str) -> int | None:
        """The number node ``code`` last wrote into ``MARK_TABLE`` (None: no such row or
        table). Safe inside a transaction: it never makes a statement fail."""

    @abc.abstractmethod
    def write_mark(self, code: str, number: int) -> bool:
        """Write ``number`` as node ``code``'s mark (in the open transaction, else in one
        of its own). The table is created only outside a transaction (DDL would end it on
        MariaDB): False when it is missing inside one."""

    @abc.abstractmethod
    def atomic(self) -> AbstractContextManager[None]:
        """One transaction: commit on normal exit, roll back on exception."""

    @abc.abstractmethod
    def savepoint(self) -> AbstractContextManager[None]:
        """Inside ``atomic``: undo only this block if it raises (the exception propagates)."""

    @property
    def undoes_blocks(self) -> bool:
        """Whether ``savepoint`` undoes its block alone (not MS Access)."""
        return True

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Adapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
