"""The node's own state database (stdlib sqlite3, WAL).

It holds what a node must remember between runs, separate from the user's database:

- ``snap_<n>``: per synchronised table, the hash of each row as last exchanged (key → hash);
- ``applied``: every package applied, by (origin, sequence) — exactly once;
- ``outbox``: packages this node made and the Siège has not acknowledged yet;
- ``intent``: the package being applied right now (crash recovery);
- ``conflicts`` / ``quarantine``: losing versions, and rows not applied exactly (refused by
  the database, stored differently than sent, or set aside at capture), for the report and
  the retry at the next run;
- at the Siège: ``changelog`` (every change applied, in order, with its origin) and
  ``sites`` (per establishment: last acknowledged change-log position, last sequence applied).

Snapshot keys are stored as plain SQLite values (``snap_value``) so that SQLite orders them
exactly as Python orders the normalised key tuples read from the user's database.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from synchro.config.atomic import atomic_write
from synchro.db.base import Key, Table
from synchro.errors import StateError
from synchro.values import canonical

SCHEMA_VERSION = 2
HELD = "export"  # the quarantine's package name for rows set aside at capture

# Quarantine columns added by schema 2 (ALTERed into older state databases).
_QUARANTINE_V2 = (
    ("kind", "TEXT NOT NULL DEFAULT 'refused'"),  # refused | mismatch | held
    ("op", "TEXT"),  # U or D: what the package asked for
    ("origin", "TEXT"),  # who made the change (the Siège logs it with this origin)
    ("columns_json", "TEXT"),  # mismatch: [{"column", "sent", "stored"}...]
    ("stored_json", "TEXT"),  # mismatch: the row as the database holds it
    ("tries", "INTEGER NOT NULL DEFAULT 0"),  # retries at later runs that failed again
)

# Key kinds whose snap_value ordering in SQLite equals the database's ordering.
ORDERED_KEY_KINDS = frozenset({"int", "text", "bool", "date", "datetime", "time"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tables(name TEXT PRIMARY KEY, snap TEXT NOT NULL UNIQUE,
    key_json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS applied(origin TEXT NOT NULL, sequence INTEGER NOT NULL,
    kind TEXT NOT NULL, applied_at TEXT NOT NULL, rows INTEGER NOT NULL,
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


def snap_value(kind: str, value: Any) -> Any:
    """A key value as stored in the snapshot: int and text kept, the rest as canonical text."""
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "text" and isinstance(value, str):
        return value
    if kind == "bool":
        return 1 if value else 0
    return canonical(kind, value).decode("utf-8", "surrogatepass")


def key_json(key: Sequence[Any]) -> str:
    return _KEY_ENCODER.encode(list(key))


# Stateless; json.dumps would build one per call when given options (hot path of apply).
_KEY_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


def _now() -> str:
    return dt.datetime.now().isoformat(" ", "seconds")


class StateDB:
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
                raise StateError(
                    f"La base d'état {path} vient d'une version plus récente de Synchro "
                    f"(schéma {version}) : mettez Synchro à jour."
                )
            elif int(version) < SCHEMA_VERSION:
                self.set_meta("schema_version", str(SCHEMA_VERSION))
        except sqlite3.DatabaseError as exc:
            raise StateError(
                f"Base d'état illisible {path} : {exc}. Restaurez-la depuis une sauvegarde, "
                "ou renommez-la : la prochaine synchronisation repartira de zéro en comparant "
                "toutes les lignes avec le siège (les différences seront traitées comme des "
                "conflits et gardées dans le journal des conflits)."
            ) from exc

    def _migrate(self) -> None:
        """Add what newer schemas have to an older state database (columns only: no data
        is rewritten, except marking the rows set aside at capture as such)."""
        have = {str(r[1]) for r in self.conn.execute("PRAGMA table_info(quarantine)")}
        missing = [(name, decl) for name, decl in _QUARANTINE_V2 if name not in have]
        for name, decl in missing:
            self.conn.execute(f"ALTER TABLE quarantine ADD COLUMN {name} {decl}")
        if missing:
            self.conn.execute("UPDATE quarantine SET kind = 'held' WHERE package = ?", (HELD,))

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def close(self) -> None:
        self.conn.close()

    # -- transactions -------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on the writer connection (nested use is not allowed)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @contextmanager
    def reader(self) -> Iterator[sqlite3.Connection]:
        """A second connection reading the last committed state (WAL isolation)."""
        conn = self._connect()
        try:
            conn.execute("BEGIN")
            yield conn
        finally:
            conn.close()

    # -- meta ---------------------------------------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    @property
    def instance(self) -> str:
        """This state's identity: a new one after a reinstall or a lost state database."""
        return self.get_meta("instance") or ""

    def get_int(self, key: str, default: int = 0) -> int:
        value = self.get_meta(key)
        return int(value) if value is not None else default

    # -- snapshots ----------------------------------------------------------------------

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
        cols = ", ".join(f"k{i}" for i in range(len(table.key)))
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
        cols = ", ".join(f"k{i}" for i in range(nkeys))
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

    def put_snapshot(self, snap: str, nkeys: int, rows: Sequence[tuple[Any, ...]]) -> None:
        """Set (key..., hash) rows."""
        if rows:
            marks = ", ".join("?" for _ in range(nkeys + 1))
            self.conn.executemany(f'INSERT OR REPLACE INTO "{snap}" VALUES ({marks})', rows)

    def drop_snapshot(self, snap: str, nkeys: int, keys: Sequence[Key]) -> None:
        if keys:
            where = " AND ".join(f"k{i} = ?" for i in range(nkeys))
            self.conn.executemany(f'DELETE FROM "{snap}" WHERE {where}', keys)

    def snapshot_count(self, snap: str) -> int:
        return int(self.conn.execute(f'SELECT COUNT(*) FROM "{snap}"').fetchone()[0])

    # -- packages -----------------------------------------------------------------------

    def is_applied(self, origin: str, sequence: int) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM applied WHERE origin = ? AND sequence = ?", (origin, sequence)
        ).fetchone()
        return row is not None

    def mark_applied(self, origin: str, sequence: int, kind: str, rows: int) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO applied VALUES (?, ?, ?, ?, ?)",
            (origin, sequence, kind, _now(), rows),
        )

    def next_sequence(self) -> int:
        """The next package sequence of this node (never reused)."""
        value = self.get_int("next_sequence", 1)
        self.set_meta("next_sequence", str(value + 1))
        return value

    def add_outbox(self, sequence: int, path: Path, rows: int) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO outbox VALUES (?, ?, ?, ?)", (sequence, str(path), _now(), rows)
        )

    def outbox(self) -> list[tuple[int, Path]]:
        rows = self.conn.execute("SELECT sequence, path FROM outbox ORDER BY sequence")
        return [(int(s), Path(p)) for s, p in rows]

    def ack_outbox(self, up_to: int) -> list[Path]:
        """Forget packages the Siège acknowledged; returns their files (to delete)."""
        rows = self.conn.execute("SELECT path FROM outbox WHERE sequence <= ?", (up_to,))
        paths = [Path(r[0]) for r in rows]
        self.conn.execute("DELETE FROM outbox WHERE sequence <= ?", (up_to,))
        return paths

    # -- intent (crash recovery of an apply) ---------------------------------------------

    def set_intent(self, origin: str, sequence: int, path: Path) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO intent VALUES (1, ?, ?, ?, ?)",
            (origin, sequence, str(path), _now()),
        )

    def intent(self) -> tuple[str, int, Path] | None:
        row = self.conn.execute("SELECT origin, sequence, path FROM intent").fetchone()
        return (str(row[0]), int(row[1]), Path(row[2])) if row else None

    def clear_intent(self) -> None:
        self.conn.execute("DELETE FROM intent")

    # -- conflicts and quarantine ---------------------------------------------------------

    def log_conflict(
        self,
        package: str,
        table: str,
        key: str,
        policy: str,
        winner: str,
        loser: str,
        winner_row: str | None,
        loser_row: str | None,
    ) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO conflicts(at, package, tbl, key_json, policy, winner, loser, "
            "winner_json, loser_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (_now(), package, table, key, policy, winner, loser, winner_row, loser_row),
        )

    def log_quarantine(
        self,
        package: str,
        table: str,
        key: str,
        row: str | None,
        error: str,
        *,
        kind: str = "refused",
        op: str | None = None,
        origin: str | None = None,
        columns: str | None = None,
        stored: str | None = None,
    ) -> None:
        """Record a row not applied exactly. ``row`` is the sent version (JSON values; for
        a delete, the key's values); ``columns`` / ``stored`` describe a mismatch.

        A package row replaces any earlier package entry of the same key: only the latest
        version sent is retried.
        """
        if package != HELD:
            self.drop_quarantine(table, key)
        self.conn.execute(
            "INSERT OR REPLACE INTO quarantine(at, package, tbl, key_json, row_json, error, "
            "kind, op, origin, columns_json, stored_json) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (_now(), package, table, key, row, error, kind, op, origin, columns, stored),
        )

    def drop_quarantine(self, table: str, key: str) -> int:
        """Forget the package entries (not the rows set aside at capture) of one key."""
        cur = self.conn.execute(
            "DELETE FROM quarantine WHERE tbl = ? AND key_json = ? AND package != ?",
            (table, key, HELD),
        )
        return cur.rowcount

    def retried(
        self, id: int, error: str, *, columns: str | None = None, stored: str | None = None
    ) -> None:
        """A retry of a quarantined row failed again: its new reason."""
        self.conn.execute(
            "UPDATE quarantine SET at = ?, error = ?, columns_json = ?, stored_json = ?, "
            "kind = ?, tries = tries + 1 WHERE id = ?",
            (_now(), error, columns, stored, "mismatch" if columns else "refused", id),
        )

    def pending_keys(self, table: str) -> set[str]:
        """Keys of ``table`` with a package row in the quarantine (usually none)."""
        rows = self.conn.execute(
            "SELECT key_json FROM quarantine WHERE tbl = ? AND package != ?", (table, HELD)
        )
        return {str(r[0]) for r in rows}

    def pending(self) -> list[dict[str, Any]]:
        """Package rows in the quarantine (refused or stored differently), oldest first."""
        cur = self.conn.execute("SELECT * FROM quarantine WHERE package != ? ORDER BY id", (HELD,))
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur]

    def held_keys(self, package: str, table: str) -> set[str]:
        rows = self.conn.execute(
            "SELECT key_json FROM quarantine WHERE package = ? AND tbl = ?", (package, table)
        )
        return {str(r[0]) for r in rows}

    def release_held(self, package: str, table: str, key: str) -> None:
        self.conn.execute(
            "DELETE FROM quarantine WHERE package = ? AND tbl = ? AND key_json = ?",
            (package, table, key),
        )

    def _journal(self, package: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in package)
        return self.path.with_name(f"{self.path.name}.conflicts-{safe}.json")

    def keep_conflicts(self, package: str) -> None:
        """Write the conflicts logged for ``package`` in the open transaction to a durable
        side file, just before the user's database commits.

        The state transaction commits after the database: a crash in between would lose
        the losing versions, and re-applying cannot find them again (the rows already are
        the winners). ``replay_conflicts`` puts them back; entries are unique per
        (package, table, key), so nothing is ever logged twice.
        """
        entries = self.conflicts(package)
        if entries:
            data = json.dumps(entries, ensure_ascii=False).encode("utf-8")
            atomic_write(self._journal(package), data)

    def replay_conflicts(self, package: str) -> None:
        """Log again the conflicts an interrupted apply of ``package`` had kept."""
        path = self._journal(package)
        if not path.exists():
            return
        for e in json.loads(path.read_text(encoding="utf-8")):
            self.log_conflict(
                e["package"], e["tbl"], e["key_json"], e["policy"], e["winner"], e["loser"],
                e["winner_json"], e["loser_json"],
            )  # fmt: skip

    def drop_conflicts_journal(self, package: str) -> None:
        self._journal(package).unlink(missing_ok=True)

    def conflicts(self, package: str | None = None) -> list[dict[str, Any]]:
        return self._dicts("conflicts", package)

    def quarantined(self, package: str | None = None) -> list[dict[str, Any]]:
        return self._dicts("quarantine", package)

    def _dicts(self, name: str, package: str | None) -> list[dict[str, Any]]:
        sql = f"SELECT * FROM {name}" + (" WHERE package = ?" if package else "") + " ORDER BY id"
        cur = self.conn.execute(sql, (package,) if package else ())
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur]

    # -- Siège: change log and sites -----------------------------------------------------

    def log_change(self, origin: str, table: str, op: str, key: str, row: str | None) -> None:
        self.conn.execute(
            "INSERT INTO changelog(origin, tbl, op, key_json, row_json) VALUES (?, ?, ?, ?, ?)",
            (origin, table, op, key, row),
        )

    def log_changes(self, rows: Sequence[tuple[str, str, str, str, str | None]]) -> None:
        self.conn.executemany(
            "INSERT INTO changelog(origin, tbl, op, key_json, row_json) VALUES (?, ?, ?, ?, ?)",
            rows,
        )

    def deleted_version(self, table: str, key: str) -> tuple[str, str] | None:
        """When the last change of ``key`` in the log is a delete: (the row's last version
        before it, the origin of the delete); else None."""
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
        return (str(row[0]), str(last[1])) if row is not None else None

    def last_position(self) -> int:
        return int(self.conn.execute("SELECT COALESCE(MAX(pos), 0) FROM changelog").fetchone()[0])

    def newer_versions(
        self, table: str, keys: Sequence[str], after: int, origin: str
    ) -> dict[str, str]:
        """For keys whose last change in the log after ``after`` is someone else's: key →
        that origin.

        Only the last entry counts: when ``origin``'s own entry comes after another's (an
        earlier package of it, applied or found equal), the Siège holds ``origin``'s
        version, so a newer change from ``origin`` does not conflict with the older one.
        """
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

    def site(self, code: str) -> tuple[int, int, int]:
        """(acked_pos, applied_seq, out_seq) of an establishment."""
        row = self.conn.execute(
            "SELECT acked_pos, applied_seq, out_seq FROM sites WHERE site = ?", (code,)
        ).fetchone()
        return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)

    def set_site(self, code: str, acked_pos: int, applied_seq: int, out_seq: int) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO sites VALUES (?, ?, ?, ?)",
            (code, acked_pos, applied_seq, out_seq),
        )

    def compacted_changes(
        self, table: str, op: str, after: int, exclude_origin: str
    ) -> Iterator[tuple[int, str, str, str | None]]:
        """The last version per key of ``table`` after ``after``, if it is ``op`` and not
        from ``exclude_origin``: (pos, origin, key_json, row_json), in log order."""
        sql = (
            "SELECT c.pos, c.origin, c.key_json, c.row_json FROM changelog c JOIN "
            "(SELECT MAX(pos) AS pos FROM changelog WHERE tbl = ? AND pos > ? "
            "GROUP BY key_json) last ON c.pos = last.pos "
            "WHERE c.op = ? AND c.origin != ? ORDER BY c.pos"
        )
        with self.reader() as conn:
            for row in conn.execute(sql, (table, after, op, exclude_origin)):
                yield int(row[0]), str(row[1]), str(row[2]), row[3]
