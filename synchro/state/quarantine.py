"""Conflicts and quarantine: losing versions, and rows not applied exactly (refused by the
database, stored differently than sent, or set aside at capture), for the report and the
retry at the next run."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from synchro.config.atomic import atomic_write
from synchro.errors import PackageError
from synchro.state.store import Store, now_text

HELD = "export"  # the quarantine's package name for rows set aside at capture


def _words(error: object) -> tuple[str, str | None]:
    """An entry's error: its French text, and the words it gave as a key of the locales
    (``SynchroError.say``, a package's reason alone, a read-back's ``Mismatch.say``: JSON)
    so the report says it in the UI's language."""
    if isinstance(error, PackageError) and error.reason_say is not None:  # (the reason)
        return error.reason, json.dumps(list(error.reason_say), ensure_ascii=False, default=str)
    said = getattr(error, "say", None)
    if isinstance(said, tuple) and len(said) == 2:
        return str(error), json.dumps(list(said), ensure_ascii=False, default=str)
    return str(error), None


class Quarantine(Store):
    """The ``conflicts`` and ``quarantine`` tables, and the conflicts' side journal."""

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
            (now_text(), package, table, key, policy, winner, loser, winner_row, loser_row),
        )

    def log_quarantine(
        self,
        package: str,
        table: str,
        key: str,
        row: str | None,
        error: object,
        *,
        kind: str = "refused",
        op: str | None = None,
        origin: str | None = None,
        columns: str | None = None,
        stored: str | None = None,
        unread: bool = False,
    ) -> None:
        """Record a row not applied exactly. ``row`` is the sent version (JSON values; for
        a delete, the key's values); ``columns`` / ``stored`` describe a mismatch;
        ``unread``: set aside before the row here was read (another program kept it
        locked), so no conflict with it was decided (the retry asks the table's rule).

        A package row replaces any earlier package entry of the same key: only the latest
        version sent is retried.
        """
        if package != HELD:
            self.drop_quarantine(table, key)
        text, said = _words(error)
        self.conn.execute(
            "INSERT OR REPLACE INTO quarantine(at, package, tbl, key_json, row_json, error, "
            "error_say, kind, op, origin, columns_json, stored_json, unread) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                *(now_text(), package, table, key, row, text, said, kind, op, origin),
                *(columns, stored, int(unread)),
            ),
        )

    def drop_quarantine(self, table: str, key: str) -> int:
        """Forget the package entries (not the rows set aside at capture) of one key."""
        cur = self.conn.execute(
            "DELETE FROM quarantine WHERE tbl = ? AND key_json = ? AND package != ?",
            (table, key, HELD),
        )
        return cur.rowcount

    def retried(
        self,
        id: int,
        error: object,
        *,
        columns: str | None = None,
        stored: str | None = None,
        locked: bool = False,
        unread: bool | None = None,
    ) -> None:
        """A retry of a quarantined row failed again: its new reason (``locked``: it waited
        for a lock another program holds). ``unread``: False once the retry read the row
        here (None: as it was)."""
        kind = "mismatch" if columns else "locked" if locked else "refused"
        text, said = _words(error)
        self.conn.execute(
            "UPDATE quarantine SET at = ?, error = ?, error_say = ?, columns_json = ?, "
            "stored_json = ?, kind = ?, unread = COALESCE(?, unread), tries = tries + 1 "
            "WHERE id = ?",
            (now_text(), text, said, columns, stored, kind, unread, id),
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

    def forget_conflicts_before(self, before: dt.datetime) -> int:
        """Drop the conflicts logged before ``before`` (``retention``); how many. Quarantined
        rows are work still to do: never dropped here."""
        with self.transaction():
            cursor = self.conn.execute(
                "DELETE FROM conflicts WHERE at < ?", (before.isoformat(" ", "seconds"),)
            )
            return cursor.rowcount

    def lost_to_deletes(self, table: str, loser: str) -> list[tuple[str, str, str]]:
        """The versions of rows of ``table`` that ``loser`` sent and a delete beat (the
        conflict log), newest first: (key, row, who deleted it)."""
        rows = self.conn.execute(
            "SELECT key_json, loser_json, winner FROM conflicts WHERE tbl = ? AND loser = ?"
            " AND winner_json IS NULL AND loser_json IS NOT NULL ORDER BY id DESC",
            (table, loser),
        )
        return [(str(k), str(r), str(w)) for k, r, w in rows]

    def conflicts(self, package: str | None = None) -> list[dict[str, Any]]:
        return self._dicts("conflicts", package)

    def quarantined(self, package: str | None = None) -> list[dict[str, Any]]:
        return self._dicts("quarantine", package)

    def _dicts(self, name: str, package: str | None) -> list[dict[str, Any]]:
        sql = f"SELECT * FROM {name}" + (" WHERE package = ?" if package else "") + " ORDER BY id"
        cur = self.conn.execute(sql, (package,) if package else ())
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur]
