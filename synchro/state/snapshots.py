"""Snapshots: per synchronised table, the hash of each row as last exchanged (key → hash).

Snapshot keys are stored as plain SQLite values (``snap_value``) so that SQLite orders them
exactly as Python orders the normalised key tuples read from the user's database. The
capture's scratch tables (deletes found, rows read unordered) live here too: temporary
tables of the writer connection.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from synchro.db.base import Key, Table
from synchro.state.store import Store
from synchro.values import Kind, canonical, json_text_encoder, normalise

# Key kinds whose snap_value ordering in SQLite equals the database's ordering.
ORDERED_KEY_KINDS = frozenset({"int", "text", "bool", "date", "datetime", "time"})


def snap_value(kind: Kind, value: Any) -> Any:
    """A key value as stored in the snapshot: int and text kept, the rest as canonical text.
    That of the value's normal form: a value as a driver returns it (``"12"`` or ``True``
    in an int key) gets the same as the normalised one."""
    value = normalise(kind, value)
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "text" and isinstance(value, str):
        return value
    if kind == "bool":
        return 1 if value else 0
    return canonical(kind, value).decode("utf-8", "surrogatepass")


def key_json(key: Sequence[Any]) -> str:
    """A key's values as compact JSON text (``json.dumps(list(key), ensure_ascii=False,
    separators=(",", ":"))``): how the change log, conflicts and quarantine name a key."""
    return _KEY_TEXT(list(key))


# Stateless; the C encoder made once (hot path of the Siège's apply and of capture).
_KEY_TEXT = json_text_encoder(compact=True)


def _columns(nkeys: int) -> str:
    return ", ".join(f"k{i}" for i in range(nkeys))


class Snapshots(Store):
    """The ``snap_<n>`` tables and the capture's temporary tables."""

    def snapshot_table(self, table: Table) -> str:
        """The name of the snapshot table of ``table``, created on first use.

        If the table's key changed since the snapshot was made, the snapshot is rebuilt
        empty (every row will be sent again: safe, never lossy).
        """
        wanted = json.dumps(list(table.key))
        row = self.conn.execute(
            "SELECT snap, key_json FROM tables WHERE name = ?", (table.name,)
        ).fetchone()
        if row and row[1] == wanted:
            return str(row[0])
        if row:
            self.conn.execute(f'DROP TABLE IF EXISTS "{row[0]}"')
            snap = str(row[0])
            self.conn.execute("UPDATE tables SET key_json = ? WHERE name = ?", (wanted, table.name))
        else:
            count = self.conn.execute("SELECT COUNT(*) FROM tables").fetchone()[0]
            snap = f"snap_{count + 1}"
            self.conn.execute(
                "INSERT INTO tables(name, snap, key_json) VALUES (?, ?, ?)",
                (table.name, snap, wanted),
            )
        cols = _columns(len(table.key))
        self.conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{snap}"({cols}, h BLOB NOT NULL, '
            f"PRIMARY KEY({cols})) WITHOUT ROWID"
        )
        return snap

    def snapshot_hashes(self, snap: str, nkeys: int, keys: Sequence[Key]) -> dict[Key, bytes]:
        """Hashes of these snapshot keys (already in snap_value form)."""
        found: dict[Key, bytes] = {}
        if not keys:
            return found
        cols = _columns(nkeys)
        per = max(1, 900 // (nkeys + 1))
        for start in range(0, len(keys), per):
            chunk = keys[start : start + per]
            if nkeys == 1:
                marks = ", ".join("?" for _ in chunk)
                sql = f'SELECT k0, h FROM "{snap}" WHERE k0 IN ({marks})'
                params: list[Any] = [k[0] for k in chunk]
            else:
                one = "(" + " AND ".join(f"k{i} = ?" for i in range(nkeys)) + ")"
                sql = f'SELECT {cols}, h FROM "{snap}" WHERE ' + " OR ".join([one] * len(chunk))
                params = [v for k in chunk for v in k]
            for row in self.conn.execute(sql, params):
                found[tuple(row[:nkeys])] = row[nkeys]
        return found

    @staticmethod
    def snapshot_in_order(
        reader: sqlite3.Connection, snap: str, nkeys: int, *, hashes: bool
    ) -> sqlite3.Cursor:
        """The snapshot's rows in key order, read on ``reader`` (a ``reader()`` view):
        ``(k0.., h)`` with ``hashes``, else the keys only."""
        cols = _columns(nkeys)
        shown = f"{cols}, h" if hashes else cols
        return reader.execute(f'SELECT {shown} FROM "{snap}" ORDER BY {cols}')

    def put_snapshot(self, snap: str, nkeys: int, rows: Sequence[tuple[Any, ...]]) -> None:
        """Set (key..., hash) rows."""
        if rows:
            marks = ", ".join("?" for _ in range(nkeys + 1))
            self.conn.executemany(f'INSERT OR REPLACE INTO "{snap}" VALUES ({marks})', rows)

    def drop_snapshot(self, snap: str, nkeys: int, keys: Sequence[Key]) -> None:
        if keys:
            where = " AND ".join(f"k{i} = ?" for i in range(nkeys))
            self.conn.executemany(f'DELETE FROM "{snap}" WHERE {where}', keys)

    def note_mentioned(self, snap: str, nkeys: int, keys: Sequence[Key]) -> None:
        """Keep these keys of ``snap`` as mentioned (a temporary table of this connection,
        until ``forget_unmentioned``)."""
        cols = _columns(nkeys)
        self.conn.execute(
            f'CREATE TEMP TABLE IF NOT EXISTS "seen_{snap}"({cols}, PRIMARY KEY({cols})) '
            "WITHOUT ROWID"
        )
        marks = ", ".join("?" for _ in range(nkeys))
        self.conn.executemany(f'INSERT OR IGNORE INTO temp."seen_{snap}" VALUES ({marks})', keys)

    def forget_unmentioned(self, snap: str, nkeys: int) -> int:
        """Drop the entries of ``snap`` whose key ``note_mentioned`` was not given; how
        many (``engine.take_back``)."""
        self.note_mentioned(snap, nkeys, [])
        cols = _columns(nkeys)
        gone = self.conn.execute(
            f'DELETE FROM "{snap}" WHERE ({cols}) NOT IN (SELECT {cols} FROM temp."seen_{snap}")'
        ).rowcount
        self.conn.execute(f'DROP TABLE temp."seen_{snap}"')
        return int(gone)

    def snapshot_sum(self, snap: str) -> tuple[int, int]:
        """(entries, sum of their hashes as big-endian integers): the « Contrôle » sum of
        the rows as this node last exchanged them (``engine.checksum.agreed_sums``)."""
        count = total = 0
        from_bytes = int.from_bytes
        for (digest,) in self.conn.execute(f'SELECT h FROM "{snap}"'):
            total += from_bytes(digest, "big")
            count += 1
        return count, total

    def snapshot_count(self, snap: str) -> int:
        return int(self.conn.execute(f'SELECT COUNT(*) FROM "{snap}"').fetchone()[0])

    # -- the capture's deletes, written at its end (children first) -----------------------

    def start_capture_deletes(self) -> None:
        """An empty list of the deletes a capture finds (a temporary table)."""
        self.conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS capture_deletes(ord INTEGER, key_json TEXT)"
        )
        self.clear_capture_deletes()

    def add_capture_deletes(self, rows: Sequence[tuple[int, str]]) -> None:
        """Keep deletes found: (the table's position in the capture, key JSON)."""
        self.conn.executemany("INSERT INTO temp.capture_deletes VALUES (?, ?)", rows)

    def capture_deletes(self, order: int) -> sqlite3.Cursor:
        """The key JSON (one-column rows) of the deletes kept for table ``order``, in the
        order they were found."""
        return self.conn.execute(
            "SELECT key_json FROM temp.capture_deletes WHERE ord = ? ORDER BY rowid", (order,)
        )

    def clear_capture_deletes(self) -> None:
        self.conn.execute("DELETE FROM temp.capture_deletes")

    # -- the spool: a table read in no useful order, sorted by snapshot key ----------------

    def start_spool(self, nkeys: int, name: str = "spool") -> None:
        """An empty spool of (snapshot key..., row JSON) rows (a temporary table; ``name``
        one of the engine's, for several at once); a key given twice is kept once."""
        cols = _columns(nkeys)
        self.drop_spool(name)
        self.conn.execute(
            f'CREATE TEMP TABLE "{name}"({cols}, row_json TEXT, PRIMARY KEY({cols})) WITHOUT ROWID'
        )

    def add_to_spool(
        self, nkeys: int, rows: Sequence[tuple[Any, ...]], name: str = "spool"
    ) -> None:
        marks = ", ".join("?" for _ in range(nkeys + 1))
        self.conn.executemany(f'INSERT OR REPLACE INTO temp."{name}" VALUES ({marks})', rows)

    def spooled_rows(self, nkeys: int, name: str = "spool") -> sqlite3.Cursor:
        """The spool's row JSON (one-column rows) in snapshot key order."""
        cols = _columns(nkeys)
        return self.conn.execute(f'SELECT row_json FROM temp."{name}" ORDER BY {cols}')

    def drop_spool(self, name: str = "spool") -> None:
        self.conn.execute(f'DROP TABLE IF EXISTS temp."{name}"')
