"""``StateDB``: the node's own state database (stdlib sqlite3, WAL), its schema and upgrades.

It holds what a node must remember between runs, separate from the user's database:

- ``snap_<n>``: per synchronised table, the hash of each row as last exchanged (key → hash):
  ``synchro.state.snapshots``;
- ``applied``: every package applied, by (origin, sequence) — exactly once; ``outbox``:
  packages this node made and the Siège has not acknowledged yet; ``intent``: the package
  being applied right now (crash recovery): ``synchro.state.packages``;
- ``conflicts`` / ``quarantine``: losing versions, and rows not applied exactly (refused by
  the database, stored differently than sent, or set aside at capture), for the report and
  the retry at the next run: ``synchro.state.quarantine``;
- at the Siège: ``changelog`` (every change applied, in order, with its origin) and
  ``sites`` (per establishment: last acknowledged change-log position, last sequence
  applied): ``synchro.state.changelog``;
- ``meta``: small named values (sequences, positions, the watermark): ``synchro.state.store``.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

from synchro.errors import DISK_SAY, ErrorKind, StateError, kind_of
from synchro.state.changelog import ChangeLog
from synchro.state.packages import Packages
from synchro.state.quarantine import HELD, Quarantine
from synchro.state.snapshots import Snapshots

SCHEMA_VERSION = 3

# Quarantine columns added by schema 2 (ALTERed into older state databases).
_QUARANTINE_V2 = (
    ("kind", "TEXT NOT NULL DEFAULT 'refused'"),  # refused | mismatch | held | locked
    ("op", "TEXT"),  # U or D: what the package asked for
    ("origin", "TEXT"),  # who made the change (the Siège logs it with this origin)
    ("columns_json", "TEXT"),  # mismatch: [{"column", "sent", "stored"}...]
    ("stored_json", "TEXT"),  # mismatch: the row as the database holds it
    ("tries", "INTEGER NOT NULL DEFAULT 0"),  # retries at later runs that failed again
    ("error_say", "TEXT"),  # the error's words as a key of the locales, JSON (when given)
    ("unread", "INTEGER NOT NULL DEFAULT 0"),  # set aside before the row here was read
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tables(name TEXT PRIMARY KEY, snap TEXT NOT NULL UNIQUE,
    key_json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS applied(origin TEXT NOT NULL, sequence INTEGER NOT NULL,
    kind TEXT NOT NULL, applied_at TEXT NOT NULL, rows INTEGER NOT NULL, digest TEXT,
    PRIMARY KEY(origin, sequence));
CREATE TABLE IF NOT EXISTS outbox(sequence INTEGER PRIMARY KEY, path TEXT NOT NULL,
    created TEXT NOT NULL, rows INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS intent(id INTEGER PRIMARY KEY CHECK (id = 1), origin TEXT NOT NULL,
    sequence INTEGER NOT NULL, path TEXT NOT NULL, started TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS conflicts(id INTEGER PRIMARY KEY, at TEXT NOT NULL,
    package TEXT NOT NULL, tbl TEXT NOT NULL, key_json TEXT NOT NULL, policy TEXT NOT NULL,
    winner TEXT NOT NULL, loser TEXT NOT NULL, winner_json TEXT, loser_json TEXT,
    UNIQUE(package, tbl, key_json));
CREATE TABLE IF NOT EXISTS quarantine(id INTEGER PRIMARY KEY, at TEXT NOT NULL,
    package TEXT NOT NULL, tbl TEXT NOT NULL, key_json TEXT NOT NULL, row_json TEXT,
    error TEXT NOT NULL, UNIQUE(package, tbl, key_json));
CREATE INDEX IF NOT EXISTS quarantine_key ON quarantine(tbl, key_json);
CREATE TABLE IF NOT EXISTS changelog(pos INTEGER PRIMARY KEY, origin TEXT NOT NULL,
    tbl TEXT NOT NULL, op TEXT NOT NULL, key_json TEXT NOT NULL, row_json TEXT);
CREATE INDEX IF NOT EXISTS changelog_key ON changelog(tbl, key_json, pos);
CREATE TABLE IF NOT EXISTS sites(site TEXT PRIMARY KEY, acked_pos INTEGER NOT NULL DEFAULT 0,
    applied_seq INTEGER NOT NULL DEFAULT 0, out_seq INTEGER NOT NULL DEFAULT 0);
"""


class StateDB(Snapshots, Packages, Quarantine, ChangeLog):
    """One node's state. ``conn`` is the writer; ``reader()`` gives an isolated read view."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # What the last retry of quarantined rows settled (engine.retry), for the run's
        # report: kept in memory only, replaced at every retry.
        self.retry_notes: list[dict[str, Any]] = []
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = self._connect()
            self.conn.executescript(_SCHEMA)
            version = self.get_meta("schema_version")
            if version is None or int(version) <= SCHEMA_VERSION:
                self._migrate()
            if version is None:
                self.set_meta("schema_version", str(SCHEMA_VERSION))
                # A new state (first start, or reinstalled): peers must not take our
                # sequence numbers for ones they already applied.
                self.set_meta("instance", uuid.uuid4().hex)
            elif int(version) > SCHEMA_VERSION:
                newer = {"path": str(path), "version": version}
                raise StateError(say=("engine.state.newer", newer))
            elif int(version) < SCHEMA_VERSION:
                self.set_meta("schema_version", str(SCHEMA_VERSION))
        except sqlite3.DatabaseError as exc:
            said = {"path": str(path), "detail": str(exc)}
            if kind_of(exc) is ErrorKind.DISK:  # full, read-only: nothing is damaged
                disk = {**said, "advice": [DISK_SAY]}
                raise StateError(say=("engine.state.disk_open", disk)) from exc
            raise StateError(say=("engine.state.unreadable", said)) from exc

    def _migrate(self) -> None:
        """Add what newer schemas have to an older state database (columns only: no data
        is rewritten, except marking the rows set aside at capture as such)."""
        have = {str(r[1]) for r in self.conn.execute("PRAGMA table_info(quarantine)")}
        missing = [(name, decl) for name, decl in _QUARANTINE_V2 if name not in have]
        for name, decl in missing:
            self.conn.execute(f"ALTER TABLE quarantine ADD COLUMN {name} {decl}")
        if missing:
            self.conn.execute("UPDATE quarantine SET kind = 'held' WHERE package = ?", (HELD,))
        applied = {str(r[1]) for r in self.conn.execute("PRAGMA table_info(applied)")}
        if "digest" not in applied:  # schema 3: the SHA-256 of each package applied
            self.conn.execute("ALTER TABLE applied ADD COLUMN digest TEXT")
