"""The Rapport's store: a stdlib sqlite3 file in WAL mode (see the package's docstring).

The engine thread writes, the GUI thread reads: one connection shared behind a lock
(``check_same_thread=False``), every call is one short transaction. Times are always given
by the caller (``now=``) so tests control the clock.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from synchro.errors import DISK_SAY, ErrorKind, StateError, error_details, error_text, kind_of
from synchro.reports.records import (
    COUNTERS,
    INTERRUPTED,
    KINDS,
    Outcome,
    RunRecord,
    State,
    not_applied,
    write_csv,
)

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    site TEXT NOT NULL,
    kind TEXT NOT NULL,
    round_id INTEGER,
    started TEXT NOT NULL,
    ended TEXT,
    state TEXT NOT NULL,
    rows_sent INTEGER NOT NULL DEFAULT 0,
    rows_received INTEGER NOT NULL DEFAULT 0,
    bytes_sent INTEGER NOT NULL DEFAULT 0,
    bytes_received INTEGER NOT NULL DEFAULT 0,
    conflicts INTEGER NOT NULL DEFAULT 0,
    quarantined INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started);
CREATE INDEX IF NOT EXISTS runs_round ON runs (round_id);
CREATE TABLE IF NOT EXISTS mail_log (
    site TEXT NOT NULL,
    category TEXT NOT NULL,
    sent TEXT NOT NULL,
    PRIMARY KEY (site, category)
);
"""


def _json(details: Mapping[str, Any]) -> str:
    return json.dumps(details, ensure_ascii=False, default=str)


def _check_counters(counters: Mapping[str, int]) -> None:
    unknown = set(counters) - set(COUNTERS)
    if unknown:
        raise ValueError(f"unknown report counters: {sorted(unknown)}")


def _record(row: sqlite3.Row) -> RunRecord:
    ended = row["ended"]
    return RunRecord(
        id=row["id"],
        site=row["site"],
        kind=row["kind"],
        round_id=row["round_id"],
        started=dt.datetime.fromisoformat(row["started"]),
        ended=dt.datetime.fromisoformat(ended) if ended else None,
        state=State(row["state"]),
        error=row["error"],
        details=json.loads(row["details"]),
        **{name: row[name] for name in COUNTERS},
    )


class ReportStore:
    """The Rapport file. Safe to share between the engine and GUI threads."""

    def __init__(self, path: str | Path) -> None:
        """Opens the file. On a full disk (kind disk) the store is made all the same and
        opens at its first use once room is made: a program started on a full disk runs,
        says why nothing can be recorded, and records again without a restart. Any other
        trouble (a damaged file, a newer format) is raised here."""
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self.unavailable: StateError | None = None  # why it is not open (a full disk)
        try:
            self._conn = self._open()
        except StateError as exc:
            if exc.__cause__ is None or kind_of(exc.__cause__) is not ErrorKind.DISK:
                raise
            self.unavailable = exc

    def _open(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=10
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > _SCHEMA_VERSION:
                conn.close()
                newer = {"path": str(self.path), "version": version}
                raise StateError(say=("engine.report.newer", newer))
            if version < _SCHEMA_VERSION:  # (an up-to-date file is opened without a write)
                conn.executescript(_SCHEMA)
                conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
            return conn
        except (sqlite3.Error, OSError) as exc:
            if conn is not None:
                conn.close()
            said = {"path": str(self.path), "detail": str(exc)}
            if kind_of(exc) is ErrorKind.DISK:
                disk = {**said, "advice": [DISK_SAY]}
                raise StateError(say=("engine.report.disk", disk)) from exc
            raise StateError(say=("engine.report.locked", said)) from exc

    def _connection(self) -> sqlite3.Connection:
        """The open connection (under ``self._lock``), opened now if a full disk kept it
        closed so far."""
        if self._conn is None:
            self._conn = self._open()
            self.unavailable = None
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> ReportStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One locked write transaction; sqlite errors become StateError. A failed body or
        COMMIT is rolled back, so the connection is always usable afterwards."""
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        with suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                said = {"path": str(self.path), "detail": str(exc)}
                raise StateError(
                    say=("engine.report.unwritable_disk", {**said, "advice": [DISK_SAY]})
                    if kind_of(exc) is ErrorKind.DISK
                    else ("engine.report.unwritable", said)
                ) from exc

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[RunRecord]:
        with self._lock:
            try:
                rows = self._connection().execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                said = {"path": str(self.path), "detail": str(exc)}
                raise StateError(say=("engine.report.unreadable", said)) from exc
        return [_record(row) for row in rows]

    # -- writing (engine thread) ---------------------------------------------------------

    def start(self, site: str, kind: str, *, round_id: int | None = None, now: dt.datetime) -> int:
        """Open a row in state ``En cours...`` and return its id."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        with self._tx() as conn:
            cursor = conn.execute(
                "INSERT INTO runs (site, kind, round_id, started, state) VALUES (?, ?, ?, ?, ?)",
                (site, kind, round_id, now.isoformat(), State.RUNNING.value),
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    def update(self, id: int, **counters: int) -> None:
        """Live progress: set some counters (``rows_sent=1200``...) of a row."""
        _check_counters(counters)
        if not counters:
            return
        assignments = ", ".join(f"{name} = ?" for name in counters)
        with self._tx() as conn:
            conn.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*counters.values(), id))

    def finish(
        self,
        id: int,
        state: State,
        *,
        now: dt.datetime,
        error: str | BaseException = "",
        details: Mapping[str, Any] | None = None,
        **counters: int,
    ) -> RunRecord:
        """Close a row: its final state, end time, error, counters; ``details`` are merged
        into the row's existing details. Returns the row as stored.

        ``error`` is a text, or the exception that ended the row: its text is stored
        (:func:`~synchro.errors.error_text`) and its kind in ``details["error_kind"]``
        (a caller giving a text names its kind there: ``{"error_kind": Outcome.NO_DATA}``).

        The one place of the rule "never OK with a row not applied exactly": an ``OK`` row
        whose ``quarantined`` counter (given here or stored before) is not 0 is stored as
        ``Echec`` with the reason "N lignes non appliquées — voir le rapport" (or "non
        envoyées" for rows set aside at capture) and ``details["error_kind"] =
        "not-applied"``; an ``Echec`` for another reason gets that reason in front of its
        own error; both get ``details["not_applied"] = {"applied": n, "sent": m}``.
        Callers read the final state from the returned row."""
        _check_counters(counters)
        said: dict[str, Any] = {}
        if isinstance(error, BaseException):
            said, error = error_details(error), error_text(error)
        with self._tx() as conn:
            merged = self._details(conn, id)
            merged.update(said)  # its kind, and its words (``records.error_in``)
            merged.update(details or {})
            quarantined = counters.get("quarantined")
            if quarantined is None:
                row = conn.execute("SELECT quarantined FROM runs WHERE id = ?", (id,))
                quarantined = int(row.fetchone()["quarantined"])
            if quarantined > 0 and State(state) in (State.OK, State.FAILED):
                reason = not_applied(quarantined, merged)
                if State(state) is State.OK:  # never OK with a row not applied exactly
                    state, error = State.FAILED, reason
                    merged["error_kind"] = str(Outcome.NOT_APPLIED)
                elif reason not in error:  # the rows first: often the cause of the rest
                    error = f"{reason} ; {error}" if error else reason
            values: dict[str, object] = {
                "state": State(state).value,
                "ended": now.isoformat(),
                "error": error,
                "details": _json(merged),
                **counters,
            }
            assignments = ", ".join(f"{name} = ?" for name in values)
            conn.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*values.values(), id))
        return self.get(id)

    def merge_details(self, id: int, details: Mapping[str, Any]) -> None:
        """Add keys to a row's details without touching its state (e.g. the email status)."""
        with self._tx() as conn:
            merged = self._details(conn, id)
            merged.update(details)
            conn.execute(
                "UPDATE runs SET details = ? WHERE id = ?",
                (_json(merged), id),
            )

    @staticmethod
    def _details(conn: sqlite3.Connection, id: int) -> dict[str, Any]:
        row = conn.execute("SELECT details FROM runs WHERE id = ?", (id,)).fetchone()
        if row is None:
            raise KeyError(f"no report row {id}")
        loaded: dict[str, Any] = json.loads(row["details"])
        return loaded

    def close_interrupted(self, now: dt.datetime, reason: str = INTERRUPTED) -> list[RunRecord]:
        """At start-up: rows still ``En cours...`` were cut by a crash or a power cut; they
        become ``Echec`` with ``reason``. Returns them as they are now stored."""
        with self._tx() as conn:
            ids = [
                row["id"]
                for row in conn.execute(
                    "SELECT id FROM runs WHERE state = ?", (State.RUNNING.value,)
                )
            ]
            for id in ids:
                details = self._details(conn, id)
                details["error_kind"] = str(Outcome.INTERRUPTED)
                conn.execute(
                    "UPDATE runs SET state = ?, ended = ?, error = ?, details = ? WHERE id = ?",
                    (State.FAILED.value, now.isoformat(), reason, _json(details), id),
                )
        return [self.get(id) for id in ids]

    # -- reading (any thread) --------------------------------------------------------

    def get(self, id: int) -> RunRecord:
        found = self._query("SELECT * FROM runs WHERE id = ?", (id,))
        if not found:
            raise KeyError(f"no report row {id}")
        return found[0]

    def latest(self, limit: int = 200, kinds: Sequence[str] | None = None) -> list[RunRecord]:
        """The most recent rows, newest first (by Début, then by creation order); ``kinds``
        keeps only those kinds (e.g. ``("run", "site-in-round")`` for one row per
        establishment)."""
        where = ""
        params: tuple[str, ...] = ()
        if kinds:
            where = f"WHERE kind IN ({', '.join('?' * len(kinds))}) "
            params = tuple(kinds)
        return self._query(
            f"SELECT * FROM runs {where}ORDER BY started DESC, id DESC LIMIT ?", (*params, limit)
        )

    def for_round(self, round_id: int) -> list[RunRecord]:
        """A round's own row first, then its establishments' rows in site order."""
        return self._query(
            "SELECT * FROM runs WHERE id = ? OR round_id = ? ORDER BY (id = ?) DESC, site, id",
            (round_id, round_id, round_id),
        )

    def started_back(self, count: int) -> dt.datetime | None:
        """When this node's ``count``-th last run or round started, counted in the order
        they were made (not by their dates, which a clock put forward makes lie); None
        when it has made fewer."""
        with self._lock:
            row = (
                self._connection()
                .execute(
                    "SELECT started FROM runs WHERE kind IN ('run', 'round') "
                    "ORDER BY id DESC LIMIT 1 OFFSET ?",
                    (count - 1,),
                )
                .fetchone()
            )
        return dt.datetime.fromisoformat(row[0]) if row is not None else None

    def forget_before(self, before: dt.datetime) -> int:
        """Drop the finished rows started before ``before`` (``retention``); how many."""
        with self._tx() as conn:
            cursor = conn.execute(
                "DELETE FROM runs WHERE started < ? AND state <> ?",
                (before.isoformat(), State.RUNNING.value),
            )
            return cursor.rowcount

    # -- mail throttle -----------------------------------------------------------------

    def record_mail(self, site: str, category: str, now: dt.datetime) -> None:
        """Remember that an email of ``category`` (``failure``, ``ok``...) went out for site."""
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO mail_log (site, category, sent) VALUES (?, ?, ?) "
                "ON CONFLICT (site, category) DO UPDATE SET sent = excluded.sent",
                (site, category, now.isoformat()),
            )

    def last_mail(self, site: str, category: str) -> dt.datetime | None:
        with self._lock:
            row = (
                self._connection()
                .execute(
                    "SELECT sent FROM mail_log WHERE site = ? AND category = ?", (site, category)
                )
                .fetchone()
            )
        return dt.datetime.fromisoformat(row["sent"]) if row else None

    # -- export -------------------------------------------------------------------------

    def export_csv(
        self, path: str | Path, lang: str = "fr", records: Sequence[RunRecord] | None = None
    ) -> int:
        """Write the Rapport (all rows, newest first, unless ``records`` are given) as a
        semicolon CSV in UTF-8 with a BOM, so Excel in France opens it as it is.
        Returns the number of rows written."""
        if records is None:
            records = self._query("SELECT * FROM runs ORDER BY started DESC, id DESC")
        write_csv(path, records, lang)
        return len(records)
