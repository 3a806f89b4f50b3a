"""Rows of packages left in the quarantine, tried again at the start of every run.

A row the database refused, or stored differently than sent, stays in the state's
quarantine with the version that was sent. ``retry_quarantined`` runs at the start of
``Node.export`` (a Serveur's run and the Siège's round both export first), before capture:

- the user changed the row since (its hash differs from the snapshot's, which holds the
  row as the apply read it): the user's newer change wins — capture sends it; the entry
  is dropped and said in the run's details. A row set aside *unread* (another program
  kept it locked, likely changing it) and changed here meanwhile is a conflict no one
  decided: the table's rule decides it as the apply would have, and the loser is logged;
- the row already holds the sent version: settled (the snapshot takes the sent hash);
- else the sent version is written again (upsert, or delete) and read back: stored exactly
  → the entry leaves the quarantine, the snapshot takes the sent hash, and at the Siège a
  change it had not logged (a refused row) is logged for the others with its origin;
  refused or stored differently again → the entry stays, with the new reason. At the
  Siège an upsert refused for want of a deleted parent brings the parent back first, as
  the apply does (``engine.revive``: a row still referred to is kept).

Upserts go parents first, deletes children first (``tables`` is in dependency order). A
refused entry waits for the others and goes again while any goes in, then in two steps
(``engine.two_steps``: rows that refer to each other, swapped unique values), as at the
apply. The
database commits first, then the state: a crash in between leaves the entry, and the next
retry finds the row changed and lets capture send it (the sent value, harmless).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from synchro.capture.source import snapshot_key
from synchro.config.model import TableRule
from synchro.db.base import Adapter, Key, Row, Table
from synchro.engine.conflict_rule import incoming_wins
from synchro.engine.lock_waits import LockWaits, read_locked
from synchro.engine.policy import ApplyPolicy
from synchro.engine.referred import Probe, referring, still_referred
from synchro.engine.revive import Reviver
from synchro.engine.self_parents import cycles, finish_waiting, parents_first
from synchro.engine.verify import Verifier, Written
from synchro.errors import DatabaseError, Say, Worded
from synchro.state import StateDB
from synchro.values import from_json, row_normaliser

BATCH = 500


@dataclass
class RetryOutcome:
    """What a retry did, entry by entry (``{"tbl", "key_json", "package", "error"...}``)."""

    fixed: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[dict[str, Any]] = field(default_factory=list)  # the user's change wins

    def notes(self) -> list[dict[str, Any]]:
        """One line per settled entry, for the run's details (``retried``)."""
        return [{**_brief(e), "outcome": "applied"} for e in self.fixed] + [
            {**_brief(e), "outcome": "local-change-wins"} for e in self.dropped
        ]


@dataclass
class _Entry:
    data: dict[str, Any]
    op: str
    key: Key
    skey: tuple[Any, ...]
    row: Row | None  # the sent row (upserts)
    digest: bytes | None = None
    current: Row | None = None

    @property
    def local(self) -> Row | None:  # (``two_steps.Held``)
        return self.current


def retry_quarantined(
    adapter: Adapter,
    state: StateDB,
    tables: Sequence[Table],
    *,
    policy: ApplyPolicy,
    local: str = "",
    rule: Callable[[str], TableRule] = TableRule,
) -> RetryOutcome:
    """Try every package row of the quarantine again (see the module's text). ``local``:
    this node's code (the Siège's, for the parents it brings back); ``rule``: a table's
    rule (``DatabaseConfig.rule``), for a conflict the apply could not decide."""
    outcome = RetryOutcome()
    entries = state.pending()
    if entries:
        by_name = {t.name: t for t in tables}
        groups: dict[str, list[dict[str, Any]]] = {}
        for entry in entries:
            if entry["tbl"] in by_name:
                groups.setdefault(entry["tbl"], []).append(entry)
            else:  # the table is no longer synchronised: left as it is
                outcome.failed.append(entry)
        ordered = [t for t in tables if t.name in groups]
        reviver = Reviver(adapter, state, by_name) if policy.revives_referenced else None
        with state.transaction(), adapter.atomic():
            retriers = [
                _TableRetry(adapter, state, t, groups[t.name], policy, (reviver, local), rule)
                for t in ordered
            ]
            # Refused rows wait for the others, then go again, parents first, and in two
            # steps (rows that refer to each other, swapped unique values), as at the apply.
            cycle = cycles(tables)
            for retrier in retriers:
                retrier.probes = referring(by_name, retrier.table)
            for op, order in (("U", retriers), ("D", retriers[::-1])):
                for retrier in order:
                    retrier.last = False
                    retrier.run(op, outcome)
                finish_waiting([r for r in retriers if r.waiting], cycle)
    state.retry_notes = outcome.notes()
    return outcome


class _TableRetry:
    def __init__(
        self,
        adapter: Adapter,
        state: StateDB,
        table: Table,
        entries: list[dict[str, Any]],
        policy: ApplyPolicy,
        reviving: tuple[Reviver | None, str] = (None, ""),
        rule: Callable[[str], TableRule] = TableRule,
    ) -> None:
        self.adapter, self.state, self.table, self.policy = adapter, state, table, policy
        self.reviver, self.local = reviving
        self.rule = rule
        self.probes: list[Probe] = []  # the tables referring to it
        self.last = True  # False: a refused row waits (``waiting``) for the others
        self.waiting: list[_Entry] = []
        self.outcome = RetryOutcome()  # the run's (``run``)
        self.snap = state.snapshot_table(table)
        self.nkeys = len(table.key)
        self.verifier = Verifier(table)
        self.hash_row = self.verifier.hash_row
        self.waits = LockWaits(adapter)  # rows another program keeps locked
        normalise = row_normaliser(table.kinds)
        row_skey = snapshot_key(table.key_kinds, table.key_positions)
        key_skey = snapshot_key(table.key_kinds, range(self.nkeys))
        self.entries: list[_Entry] = []
        self.unreadable: list[dict[str, Any]] = []  # the table's columns changed since
        for data in entries:
            op = data.get("op") or ("U" if data.get("row_json") else "D")
            try:
                if op == "U":
                    values = json.loads(data["row_json"])
                    row = normalise(
                        [from_json(k, v) for k, v in zip(table.kinds, values, strict=True)]
                    )
                    key = tuple(row[p] for p in table.key_positions)
                    entry = _Entry(data, op, key, row_skey(row), row, self.hash_row(row))
                else:
                    values = json.loads(data.get("row_json") or data["key_json"])
                    kinds = table.key_kinds
                    key = tuple(from_json(k, v) for k, v in zip(kinds, values, strict=True))
                    entry = _Entry(data, op, key, key_skey(key), None)
            except (ValueError, TypeError, KeyError, IndexError) as exc:
                self.unreadable.append(data)
                state.retried(data["id"], _unreadable(data, exc))
                continue
            self.entries.append(entry)

    def run(self, op: str, outcome: RetryOutcome) -> None:
        """Retry the entries of one operation; a database error on the table leaves them
        in the quarantine with that error (it never stops the run's export)."""
        self.outcome = outcome
        if op == "U":
            outcome.failed.extend(self.unreadable)
        self._retry([e for e in self.entries if e.op == op], outcome)

    @property
    def deferred(self) -> list[tuple[_Entry, bool]]:  # (``two_steps.Waiting``)
        return [(e, e.op == "D") for e in self.waiting]

    def again(self, last: bool) -> bool:
        """The entries that waited, once more, parents first; whether any went in."""
        pending, self.waiting, self.last = self.waiting, [], last
        for op in ("U", "D"):
            entries = [e for e in pending if e.op == op]
            self._retry(parents_first(self.table, entries, op == "D"), self.outcome)
        return len(self.waiting) < len(pending)

    def unreferred(self, entries: list[_Entry]) -> list[_Entry]:
        if not self.probes:
            return entries
        referred = still_referred(self.adapter, self.probes, entries)
        return [e for e in entries if tuple(e.key) not in referred]

    def settle_written(self, entries: list[_Entry], delete: bool) -> None:
        """Entries written for it (``two_steps``): read back and settled."""
        gone = {id(e) for e in entries}
        self.waiting = [e for e in self.waiting if id(e) not in gone]
        self._check(entries, self.outcome)

    def _retry(self, todo: list[_Entry], outcome: RetryOutcome) -> None:
        for start in range(0, len(todo), BATCH):
            batch = todo[start : start + BATCH]
            try:
                with self.adapter.savepoint():
                    self._batch(batch, outcome)
            except DatabaseError as exc:
                settled = outcome.failed + outcome.fixed + outcome.dropped
                for e in batch:
                    if e.data not in settled:
                        self.state.retried(e.data["id"], exc)
                        outcome.failed.append(e.data)

    def _batch(self, entries: list[_Entry], outcome: RetryOutcome) -> None:
        table, state = self.table, self.state
        row_skey = self.verifier.row_skey
        found, aside = read_locked(self.adapter, table, [e.key for e in entries], self.waits)
        for index, error in aside:  # another program keeps it locked: the next run
            state.retried(entries[index].data["id"], error, locked=True)
            outcome.failed.append(entries[index].data)
        if aside:
            kept = {index for index, _error in aside}
            entries = [e for index, e in enumerate(entries) if index not in kept]
        current = {row_skey(r): r for r in found}
        snaps = state.snapshot_hashes(self.snap, self.nkeys, [e.skey for e in entries])
        written: list[_Entry] = []
        for e in entries:
            e.current = current.get(e.skey)
            now = self.hash_row(e.current) if e.current is not None else None
            if now == e.digest:  # already as sent (fixed by hand, or by a later package)
                self._applied(e, outcome)
            elif now != snaps.get(e.skey) and not self._won(e, now):
                state.drop_quarantine(table.name, e.data["key_json"])  # capture sends theirs
                outcome.dropped.append(e.data)
            elif self.waits.locked is not None:  # not waited for again: the next run
                state.retried(e.data["id"], self.waits.locked, locked=True, unread=False)
                outcome.failed.append(e.data)
            elif self._write(e, outcome):
                written.append(e)
        self._check(written, outcome)

    def _check(self, written: list[_Entry], outcome: RetryOutcome) -> None:
        """The entries written read back: settled when stored exactly."""
        state = self.state
        checked = [Written(e.skey, e.key, e.row, e.digest) for e in written]
        bad = self.verifier.check(self.adapter, checked)
        for e in written:
            mismatch = bad.get(e.skey)
            if mismatch is None:
                self._applied(e, outcome)
                continue
            stored = mismatch.stored
            state.retried(
                e.data["id"],
                mismatch,
                columns=json.dumps(mismatch.columns, ensure_ascii=False),
                stored=_row_json(self.verifier, stored),
                unread=False,
            )
            self._snapshot(e.skey, self.hash_row(stored) if stored is not None else None)
            outcome.failed.append(e.data)

    def _won(self, e: _Entry, now: bytes | None) -> bool:
        """The row here changed since the last exchange. Set aside after the apply read it
        (the usual case): an edit made since, the user's newer change, which wins (False).
        Set aside unread (another program kept it locked, likely changing it): a conflict
        no one decided, which the table's rule decides now as the apply would have,
        logging the loser; True when the sent version wins (the row here, the loser, then
        keeps its hash in the snapshot: it does not travel while the winner waits)."""
        if not e.data.get("unread"):
            return False
        data, rule = e.data, self.rule(self.table.name)
        origin = _origin(data)
        incoming = (e.row, origin)
        won = incoming_wins(rule, self.table, self.policy, incoming, (e.current, self.local))
        sent = data.get("row_json") if e.op == "U" else None
        here = _row_json(self.verifier, e.current)
        winner, loser = (origin, self.local) if won else (self.local, origin)
        rows = (sent, here) if won else (here, sent)
        key = data["key_json"]
        policy = rule.conflict.value
        self.state.log_conflict(data["package"], self.table.name, key, policy, winner, loser, *rows)
        if won:
            self._snapshot(e.skey, now)
        return won

    def _write(self, e: _Entry, outcome: RetryOutcome) -> bool:
        """Write the sent version again; False (entry updated) when the database refuses,
        or when rows of another table still refer to a row to delete (``engine.referred``)."""
        referred = e.row is None and self.probes
        child = still_referred(self.adapter, self.probes, [e]) if referred else {}
        if child and not self.last:
            self.waiting.append(e)  # (a row of a table in its cycle, to delete later?)
            return False
        if child:
            why = DatabaseError(
                say=("engine.apply.referred", {"table": next(iter(child.values()))})
            )
            self.state.retried(e.data["id"], why, locked=False, unread=False)
            outcome.failed.append(e.data)
            return False
        try:
            with self.adapter.savepoint():
                if e.row is None:
                    self.adapter.delete(self.table, [e.key])
                elif e.current is None:
                    self.adapter.insert(self.table, [e.row])
                else:
                    self.adapter.upsert(self.table, [e.row])
        except DatabaseError as exc:
            locked = self.waits.gave_up(exc)  # (no row's fault: no rule to try)
            if not locked and not self.last:
                self.waiting.append(e)
                return False
            if not locked and self._revived(e):
                return True
            self.state.retried(e.data["id"], exc, locked=locked, unread=False)
            outcome.failed.append(e.data)
            return False
        self.waits.passed()
        return True

    def _revived(self, e: _Entry) -> bool:
        """Siège: the refused upsert written after bringing back the deleted parents it
        refers to (recorded as the apply records them); False when that does not help."""
        if self.reviver is None or e.row is None:
            return False
        try:
            with self.adapter.savepoint():
                revived = self.reviver.parents_of(
                    self.table, e.row, local=self.local, origin=_origin(e.data)
                )
                if not revived:
                    return False
                if e.current is None:
                    self.adapter.insert(self.table, [e.row])
                else:
                    self.adapter.upsert(self.table, [e.row])
        except DatabaseError:
            return False
        self.reviver.record(
            revived, local=self.local, package=e.data["package"], kept_by=_origin(e.data)
        )
        return True

    def _applied(self, e: _Entry, outcome: RetryOutcome) -> None:
        state, data = self.state, e.data
        self._snapshot(e.skey, e.digest)
        state.drop_quarantine(self.table.name, data["key_json"])
        if (
            self.policy.logs_changes and data.get("kind") != "mismatch"
        ):  # a mismatch was logged already
            row_json = data.get("row_json") if e.op == "U" else None
            state.log_change(_origin(data), self.table.name, e.op, data["key_json"], row_json)
        outcome.fixed.append(data)

    def _snapshot(self, skey: tuple[Any, ...], digest: bytes | None) -> None:
        if digest is None:
            self.state.drop_snapshot(self.snap, self.nkeys, [skey])
        else:
            self.state.put_snapshot(self.snap, self.nkeys, [(*skey, digest)])


def _row_json(verifier: Verifier, row: Row | None) -> str | None:
    if row is None:
        return None
    return json.dumps(verifier.json_values(row), ensure_ascii=False)


def _origin(entry: dict[str, Any]) -> str:
    """Who made the change an entry holds (older entries: the package's sender)."""
    return str(entry.get("origin") or entry["package"].split("#")[0])


def _brief(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: entry.get(k) for k in ("tbl", "key_json", "package", "kind", "error")}


def _unreadable(entry: dict[str, Any], exc: Exception) -> Worded:
    """A quarantined row that cannot be read back to try again: its error (in its own
    words where it kept them), then why (the library's words)."""
    error: list[Say] | str = str(entry["error"])
    said = entry.get("error_say")
    if isinstance(said, str):
        try:
            words = json.loads(said)
        except ValueError:
            words = None
        if isinstance(words, list) and len(words) == 2:
            error = [(str(words[0]), dict(words[1]))]
    return Worded(say=("engine.retry.unreadable", {"error": error, "detail": str(exc)}))
