"""The Siège's change log compacted: every answer it gives is the same before and after.

``ChangeLog.compact`` drops the changes a later change of their key supersedes. What a site
is sent (``compacted_changes``), the conflict look-up (``newer_versions``), the reviver's
last version of a deleted row (``deleted_version``, and ``last_upsert`` for a row deleted
at the Siège since its last capture) and the log's last position must not
move, at any position, whether the log is compacted once or round after round.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synchro.state import ChangeLogEntry, StateDB

TABLES = "tu"
KEYS = [f"[{k}]" for k in range(8)]


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateDB]:
    db = StateDB(tmp_path / "state.db")
    yield db
    db.close()


def _random_log(rng: random.Random, n: int) -> list[ChangeLogEntry]:
    entries = []
    for i in range(n):
        op = rng.choice("UUUD")
        row = None if op == "D" or rng.random() < 0.1 else f'[{i}, "v{i}"]'
        entries.append(
            ChangeLogEntry(rng.choice("ABC"), rng.choice(TABLES), op, rng.choice(KEYS), row)
        )
    return entries


def _answers(state: StateDB) -> dict[Any, Any]:
    last = state.last_position()
    out: dict[Any, Any] = {"last": last}
    for after in range(last + 1):
        for table, op, exclude in itertools.product(TABLES, "UD", ("", "A")):
            out[after, table, op, exclude] = list(
                state.compacted_changes(table, op, after, exclude)
            )
        for table, origin in itertools.product(TABLES, "ABC"):
            out[after, table, origin] = state.newer_versions(table, KEYS, after, origin)
    for table, key in itertools.product(TABLES, KEYS):
        out[table, key] = state.deleted_version(table, key)
        out[table, key, "upsert"] = state.last_upsert(table, key)
    return out


def _kept(entries: list[ChangeLogEntry]) -> int:
    """How many entries a compacted log holds, worked out here from the entries alone."""
    kept = 0
    for table, key in itertools.product(TABLES, KEYS):
        mine = [e for e in entries if (e.table, e.key_json) == (table, key)]
        if not mine:
            continue
        versions = [e for e in mine if e.op == "U" and e.row_json is not None]
        kept += 1 if not versions or versions[-1] is mine[-1] else 2
    return kept


def _count(state: StateDB) -> int:
    return int(state.conn.execute("SELECT COUNT(*) FROM changelog").fetchone()[0])


@pytest.mark.parametrize("seed", range(12))
def test_compaction_changes_no_answer_of_the_log(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    entries = _random_log(rng, rng.randrange(40, 120))
    cuts = sorted(rng.sample(range(1, len(entries)), 2))
    whole = StateDB(tmp_path / "whole.db")  # never compacted
    rounds = StateDB(tmp_path / "rounds.db")  # compacted after each of three parts
    try:
        with whole.transaction():
            whole.log_changes(entries)
        dropped = 0
        for part in (entries[: cuts[0]], entries[cuts[0] : cuts[1]], entries[cuts[1] :]):
            with rounds.transaction():
                rounds.log_changes(part)
            with rounds.transaction():
                dropped += rounds.compact()
        assert _count(rounds) == _kept(entries) == len(entries) - dropped
        assert dropped > 0
        expected = _answers(whole)
        assert _answers(rounds) == expected
        with whole.transaction():  # the same log compacted at once
            assert whole.compact() == dropped
        assert _answers(whole) == expected
    finally:
        whole.close()
        rounds.close()


def test_compaction_keeps_the_positions_and_goes_on_from_where_it_stopped(
    state: StateDB,
) -> None:
    with state.transaction():
        state.log_changes([ChangeLogEntry("A", "t", "U", "[1]", f"[{i}]") for i in range(5)])
        assert state.compact() == 4
        assert state.compact() == 0  # nothing new since
    with state.transaction():
        state.log_changes([ChangeLogEntry("B", "t", "U", "[1]", "[9]")])
        assert state.compact() == 1
    assert state.last_position() == 6
    with state.transaction():  # a new change takes the next position, never an old one
        state.log_changes([ChangeLogEntry("B", "t", "U", "[2]", "[2]")])
    assert [c.pos for c in state.compacted_changes("t", "U", 0, "")] == [6, 7]


def test_a_long_log_is_compacted_a_step_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first compaction after an upgrade meets the whole history: it goes a step of
    positions per round, each step leaving every answer as it was."""
    monkeypatch.setattr("synchro.state.changelog.COMPACT_STEP", 7)
    entries = _random_log(random.Random(99), 60)
    whole, steps = StateDB(tmp_path / "whole.db"), StateDB(tmp_path / "steps.db")
    try:
        for db in (whole, steps):
            with db.transaction():
                db.log_changes(entries)
        expected = _answers(whole)
        calls = 0
        while steps.get_int("log_compacted_to") < steps.last_position():
            with steps.transaction():
                steps.compact()
            calls += 1
            assert _answers(steps) == expected
        assert calls == 9  # 60 positions, 7 at a time
        assert _count(steps) == _kept(entries)
    finally:
        whole.close()
        steps.close()
