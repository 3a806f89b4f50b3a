"""The Siège's change log (every change applied, in order, with its origin) and what it
knows of each establishment (``sites``: last acknowledged change-log position, last sequence
applied, last package published to it)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from synchro.state.store import Store

# Read from position ``after`` on (``+tbl``: not through the index by table and key, which
# would visit every change of the table the log ever held before finding none).
OTHERS_AFTER = "SELECT 1 FROM changelog WHERE pos > ? AND +tbl = ? AND origin != ? LIMIT 1"


# Changes appended by ``ChangeLog.log_changes``: ``LOG_ROWS`` at once (500 values: under
# the 999 an older SQLite allows a statement), or one.
LOG_ROWS = 100
LOG_ONE = "INSERT INTO changelog(origin, tbl, op, key_json, row_json) VALUES (?, ?, ?, ?, ?)"
LOG_MANY = LOG_ONE + ", (?, ?, ?, ?, ?)" * (LOG_ROWS - 1)


# The last change per key of a table after a position, if of one op and not of one origin.
COMPACTED_WHOLE = (
    "SELECT c.pos, c.origin, c.key_json, c.row_json FROM changelog c JOIN "
    "(SELECT MAX(pos) AS pos FROM changelog WHERE tbl = ? AND pos > ? "
    "GROUP BY key_json) last ON c.pos = last.pos "
    "WHERE c.op = ? AND c.origin != ? ORDER BY c.pos"
)
COMPACTED_RECENT = (
    "SELECT c.pos, c.origin, c.key_json, c.row_json FROM changelog c "
    "WHERE c.pos > ? AND +c.tbl = ? AND c.op = ? AND c.origin != ? AND NOT EXISTS "
    "(SELECT 1 FROM changelog d WHERE d.tbl = c.tbl AND d.key_json = c.key_json "
    "AND d.pos > c.pos) ORDER BY c.pos"
)


COMPACT_STEP = 500_000  # log positions looked at by one ``ChangeLog.compact``

# The entries of the keys changed in (?, ?] that are neither the key's last change nor its
# last version (the last upsert with its row: what ``deleted_version`` answers once a
# delete follows, now or in a later round) (``ChangeLog.compact``).
COMPACT = """
DELETE FROM changelog WHERE pos IN (
    SELECT pos FROM (
        SELECT c.pos,
            ROW_NUMBER() OVER (PARTITION BY c.tbl, c.key_json ORDER BY c.pos DESC) AS nth,
            c.op = 'U' AND c.row_json IS NOT NULL AND ROW_NUMBER() OVER (
                PARTITION BY c.tbl, c.key_json, c.op = 'U' AND c.row_json IS NOT NULL
                ORDER BY c.pos DESC) = 1 AS last_version
        FROM changelog c
        JOIN (SELECT DISTINCT tbl, key_json FROM changelog WHERE pos > ? AND pos <= ?) t
            ON c.tbl = t.tbl AND c.key_json = t.key_json
    ) WHERE nth > 1 AND NOT last_version
)
"""


def recent_part(last: int, after: int) -> bool:
    """Whether the changes after ``after`` are few enough in a log whose last position is
    ``last`` to be read from there on (``COMPACTED_RECENT``): measured at ~1.3 µs a
    change read that way against ~0.07 µs a change of the whole table grouped by key."""
    return (last - after) * 20 < last


def _last_position(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COALESCE(MAX(pos), 0) FROM changelog").fetchone()[0])


class ChangeLogEntry(NamedTuple):
    """A change to append to the log; ``row_json`` is None for a delete."""

    origin: str
    table: str
    op: str  # "U" (upsert) or "D" (delete)
    key_json: str
    row_json: str | None


class LoggedChange(NamedTuple):
    """A change read back from the log, at its position."""

    pos: int
    origin: str
    key_json: str
    row_json: str | None


class DeletedVersion(NamedTuple):
    """The last version of a row the log saw before its delete, and who deleted it."""

    row_json: str
    deleted_by: str


class SiteState(NamedTuple):
    """What the Siège knows of one establishment."""

    acked_pos: int  # the change-log position the site acknowledged
    applied_seq: int  # the site's last package applied here
    out_seq: int  # the Siège's last package published to the site


class ChangeLog(Store):
    """The ``changelog`` and ``sites`` tables (used at the Siège only)."""

    # (table, after, origin) found with no change of another origin after ``after``, in the
    # write transaction numbered ``_quiet_in`` (see ``newer_versions``).
    _quiet: frozenset[tuple[str, int, str]] = frozenset()
    _quiet_in = -1

    def log_change(self, origin: str, table: str, op: str, key: str, row: str | None) -> None:
        self.log_changes([ChangeLogEntry(origin, table, op, key, row)])

    def log_changes(self, rows: Sequence[ChangeLogEntry]) -> None:
        """Append ``rows`` to the log, at the next positions in their order.

        ``LOG_ROWS`` changes per INSERT (one statement of many rows of values, which
        SQLite inserts in their order, one position after the other, as it did one
        statement per change): the stdlib's ``executemany`` steps and resets a statement
        and binds its values one change at a time, and that was a quarter of the log's
        insert (bench/README.md, « The Siège's change log written 100 changes a statement »).
        The few changes left over go one statement each; two statement texts in all."""
        whole = len(rows) - len(rows) % LOG_ROWS
        for start in range(0, whole, LOG_ROWS):
            values = [v for entry in rows[start : start + LOG_ROWS] for v in entry]
            self.conn.execute(LOG_MANY, values)
        if whole < len(rows):
            self.conn.executemany(LOG_ONE, rows[whole:])
        if self._quiet:  # what this transaction knew quiet may not be any more
            written = {(r.table, r.origin) for r in rows}
            self._quiet = frozenset(
                q for q in self._quiet if not any(t == q[0] and o != q[2] for t, o in written)
            )

    def deleted_version(self, table: str, key: str) -> DeletedVersion | None:
        """When the last change of ``key`` in the log is a delete: the row's last version
        before it and the origin of the delete; else None."""
        last = self.conn.execute(
            "SELECT op, origin FROM changelog WHERE tbl = ? AND key_json = ? "
            "ORDER BY pos DESC LIMIT 1",
            (table, key),
        ).fetchone()
        if last is None or last[0] != "D":
            return None
        row = self.conn.execute(
            "SELECT row_json FROM changelog WHERE tbl = ? AND key_json = ? AND op = 'U' "
            "AND row_json IS NOT NULL ORDER BY pos DESC LIMIT 1",
            (table, key),
        ).fetchone()
        return DeletedVersion(str(row[0]), str(last[1])) if row is not None else None

    def deleted_keys(self, table: str) -> list[str]:
        """The keys of ``table`` the log holds a delete of (``deleted_version`` tells
        whether it is the last word): the reviver's search by another unique column."""
        rows = self.conn.execute(
            "SELECT DISTINCT key_json FROM changelog WHERE tbl = ? AND op = 'D'", (table,)
        )
        return [str(r[0]) for r in rows]

    def last_upsert(self, table: str, key: str) -> str | None:
        """When the last change of ``key`` in the log is an upsert with its row: that row
        (what the Siège last held or sent of it); else None."""
        last = self.conn.execute(
            "SELECT op, row_json FROM changelog WHERE tbl = ? AND key_json = ? "
            "ORDER BY pos DESC LIMIT 1",
            (table, key),
        ).fetchone()
        if last is None or last[0] != "U" or last[1] is None:
            return None
        return str(last[1])

    def last_position(self) -> int:
        return _last_position(self.conn)

    def compact(self) -> int:
        """Drop the changes that a later change of the same key supersedes, for the keys
        changed since the last compaction; returns how many were dropped.

        What a site is sent, and every question the Siège asks the log, is about the last
        change of a key after some position (``compacted_changes``, ``newer_versions``), so
        an entry with a later one of its key is never an answer: without this, the log
        kept every change ever applied, row text included, for ever. A key keeps its last
        version too (its last upsert with a row), which ``deleted_version`` (the reviver's)
        answers once a delete follows; the last entry of the log is never dropped, so
        positions are never reused. Runs in the caller's transaction, over at most
        ``COMPACT_STEP`` positions (the first one after an upgrade is spread over rounds)
        (``tests/test_changelog_compact.py``: every answer the same before and after, at
        every position of random logs)."""
        start = self.get_int("log_compacted_to")
        end = min(self.last_position(), start + COMPACT_STEP)
        if end <= start:
            return 0
        cursor = self.conn.execute(COMPACT, (start, end))
        self.set_meta("log_compacted_to", str(end))
        return int(cursor.rowcount)

    def newer_versions(
        self, table: str, keys: Sequence[str], after: int, origin: str
    ) -> dict[str, str]:
        """For keys whose last change in the log after ``after`` is someone else's: key →
        that origin.

        Only the last entry counts: when ``origin``'s own entry comes after another's (an
        earlier package of it, applied or found equal), the Siège holds ``origin``'s
        version, so a newer change from ``origin`` does not conflict with the older one.

        A site's package is applied in batches of a few hundred keys, each asking this; when
        no other origin changed ``table`` after ``after`` (the usual case: a site in step
        with the Siège), the answer is empty for every batch. That is asked of the database
        once per write transaction (no other connection writes while it lasts) and kept
        until this connection logs a change of ``table`` from another origin.
        """
        if not self._others_after(table, after, origin):
            return {}
        found: dict[str, str] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            sql = (
                "SELECT c.key_json, c.origin FROM changelog c JOIN "
                "(SELECT MAX(pos) AS pos FROM changelog WHERE tbl = ? AND pos > ? "
                f"AND key_json IN ({marks}) GROUP BY key_json) last ON c.pos = last.pos "
                "WHERE c.origin != ?"
            )
            for key, who in self.conn.execute(sql, [table, after, *chunk, origin]):
                found[str(key)] = str(who)
        return found

    def _others_after(self, table: str, after: int, origin: str) -> bool:
        """Whether the log holds a change of ``table`` after ``after`` from another origin
        than ``origin`` (True when unsure)."""
        asked = (table, after, origin)
        if self._quiet_in == self.transactions and asked in self._quiet:
            return False
        found = self.conn.execute(OTHERS_AFTER, (after, table, origin)).fetchone()
        if found is None and self.conn.in_transaction:
            if self._quiet_in != self.transactions:
                self._quiet, self._quiet_in = frozenset(), self.transactions
            self._quiet = self._quiet | {asked}
        return found is not None

    def compacted_changes(
        self, table: str, op: str, after: int, exclude_origin: str
    ) -> Iterator[LoggedChange]:
        """The last version per key of ``table`` after ``after``, if it is ``op`` and not
        from ``exclude_origin``, in log order (read on an isolated view).

        The log keeps every key's last change since the first one, so two ways to read it:
        where the changes after ``after`` are a small part of the log (a Siège in its daily
        rounds), from ``after`` on, each change kept when no later one of its key follows
        (``COMPACTED_RECENT``); where they are most of it (a first round, a site that
        missed many), the table's changes grouped by key (``COMPACTED_WHOLE``): each costs
        what it reads (bench/README.md)."""
        with self.reader() as conn:
            if recent_part(_last_position(conn), after):
                rows = conn.execute(COMPACTED_RECENT, (after, table, op, exclude_origin))
            else:
                rows = conn.execute(COMPACTED_WHOLE, (table, after, op, exclude_origin))
            for row in rows:
                yield LoggedChange(int(row[0]), str(row[1]), str(row[2]), row[3])

    # -- sites ----------------------------------------------------------------------------

    def site(self, code: str) -> SiteState:
        """What the Siège knows of an establishment (zeros for one never met)."""
        row = self.conn.execute(
            "SELECT acked_pos, applied_seq, out_seq FROM sites WHERE site = ?", (code,)
        ).fetchone()
        return SiteState(int(row[0]), int(row[1]), int(row[2])) if row else SiteState(0, 0, 0)

    def set_site(self, code: str, acked_pos: int, applied_seq: int, out_seq: int) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO sites VALUES (?, ?, ?, ?)",
            (code, acked_pos, applied_seq, out_seq),
        )

    def remember_publication(
        self,
        sequence: int,
        sums: dict[str, list[object]],
        site: str,
        applied: int,
        agreed: dict[str, list[object]] | None = None,
    ) -> None:
        """What the Siège's package ``sequence`` to ``site`` said: its checksums then
        (``sums``, in their JSON form), those of its rows as last exchanged (``agreed``)
        and the last package of the site it answered."""
        self.set_meta(f"sums:{sequence}", json.dumps(sums))
        self.set_meta(f"agreed:{sequence}", json.dumps(agreed or {}))
        self.set_meta(f"answered:{sequence}", json.dumps({site: applied}))

    def publication_sums(self, sequence: int) -> Any:
        """The checksums (JSON form) kept with package ``sequence``; None: not kept."""
        text = self.get_meta(f"sums:{sequence}")
        return json.loads(text) if text else None

    def publication_agreed(self, sequence: int) -> Any:
        """The sums of the rows as exchanged (JSON form) kept with package ``sequence``."""
        text = self.get_meta(f"agreed:{sequence}")
        return json.loads(text) if text else None

    def publication_answered(self, sequence: int, site: str) -> int:
        """The last package of ``site`` that package ``sequence`` answered (0: none)."""
        text = self.get_meta(f"answered:{sequence}")
        return int(json.loads(text).get(site, 0)) if text else 0

    def forget_old_publications(self, keep: int) -> None:
        """Drop the ``sums:``, ``agreed:`` and ``answered:<seq>`` meta entries of packages
        more than ``keep`` publications per site older than the oldest a site was offered."""
        oldest, sites = self.conn.execute("SELECT MIN(out_seq), COUNT(*) FROM sites").fetchone()
        if oldest is None:
            return
        self.conn.execute(
            "DELETE FROM meta WHERE (key LIKE 'sums:%' OR key LIKE 'agreed:%' "
            "OR key LIKE 'answered:%') "
            "AND CAST(substr(key, instr(key, ':') + 1) AS INTEGER) < ?",
            (int(oldest) - keep * max(1, int(sites)),),
        )
