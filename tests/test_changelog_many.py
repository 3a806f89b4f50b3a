"""The Siège's change log written ``LOG_ROWS`` changes per statement: the same log as one
change at a time.

``ChangeLog.log_changes`` appends a batch with INSERTs of many rows of values (and the few
left over one by one). Every change must get the position it got one statement per change:
the next one, in the batch's order, across calls and after a compaction; every answer of
the log (what a site is sent, the conflict look-up, the reviver's versions) must be the
same, at every position.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest
from test_changelog_compact import _answers, _random_log

from synchro.state import ChangeLogEntry, StateDB
from synchro.state.changelog import LOG_ONE, LOG_ROWS


def _rows(state: StateDB) -> list[tuple[object, ...]]:
    return state.conn.execute(
        "SELECT pos, origin, tbl, op, key_json, row_json FROM changelog ORDER BY pos"
    ).fetchall()


def _one_at_a_time(path: Path, batches: list[list[ChangeLogEntry]]) -> StateDB:
    """The log as it was written before: one statement per change."""
    state = StateDB(path)
    for batch in batches:
        with state.transaction():
            for entry in batch:
                state.conn.execute(LOG_ONE, entry)
    return state


def _by_batches(path: Path, batches: list[list[ChangeLogEntry]]) -> StateDB:
    """The log as ``log_changes`` writes it: one call, one transaction, per batch."""
    state = StateDB(path)
    for batch in batches:
        with state.transaction():
            state.log_changes(batch)
    return state


@pytest.mark.parametrize("seed", range(6))
def test_batches_give_the_positions_and_answers_of_one_change_at_a_time(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    sizes = [0, 1, LOG_ROWS - 1, LOG_ROWS, LOG_ROWS + 1, 2 * LOG_ROWS, rng.randrange(1, 450)]
    rng.shuffle(sizes)
    entries = _random_log(rng, sum(sizes))
    batches, start = [], 0
    for size in sizes:
        batches.append(entries[start : start + size])
        start += size
    many = _by_batches(tmp_path / "many.db", batches)
    one = _one_at_a_time(tmp_path / "one.db", batches)
    try:
        assert _rows(many) == _rows(one)
        assert [r[1:] for r in _rows(many)] == [tuple(e) for e in entries]
        assert [r[0] for r in _rows(many)] == list(range(1, len(entries) + 1))
        for state in (many, one):  # after a compaction, still the next positions
            with state.transaction():
                state.compact()
                state.log_changes(entries[: LOG_ROWS + 3])
        assert _rows(many) == _rows(one)  # the same log: every answer the same
    finally:
        many.close()
        one.close()


def test_every_answer_the_same_at_every_position(tmp_path: Path) -> None:
    """The log's answers themselves (``_answers``: each query at each position)."""
    rng = random.Random(11)
    entries = _random_log(rng, LOG_ROWS + 21)
    batches = [entries[:3], entries[3:]]
    many = _by_batches(tmp_path / "many.db", batches)
    one = _one_at_a_time(tmp_path / "one.db", batches)
    try:
        assert _answers(many) == _answers(one)
        for state in (many, one):
            with state.transaction():
                state.compact()
        assert _answers(many) == _answers(one)
    finally:
        many.close()
        one.close()


def test_awkward_texts_and_a_delete_travel_as_they_are(tmp_path: Path) -> None:
    """Quotes, NUL, a lone surrogate's neighbours, long texts, no row: bound as values."""
    texts = ["'", '"', "a\x00b", "é—ヘ", "x" * 5000, "?", "), (", ""]
    entries = [
        ChangeLogEntry(f"O{i % 3}'", f"t{i % 2}", "UD"[i % 2], f'["{texts[i % 8]}",{i}]', None)
        if i % 2
        else ChangeLogEntry("A", "t0", "U", f"[{i}]", texts[i % 8])
        for i in range(3 * LOG_ROWS + 7)
    ]
    state = StateDB(tmp_path / "state.db")
    try:
        with state.transaction():
            state.log_changes(entries)
        assert [r[1:] for r in _rows(state)] == [tuple(e) for e in entries]
    finally:
        state.close()


def test_a_refused_batch_leaves_nothing(tmp_path: Path) -> None:
    """A change the table refuses (no key text) fails the whole call's transaction."""
    state = StateDB(tmp_path / "state.db")
    good = [ChangeLogEntry("A", "t", "U", f"[{i}]", "[1]") for i in range(LOG_ROWS)]
    bad = ChangeLogEntry("A", "t", "U", None, "[1]")  # type: ignore[arg-type]
    try:
        with pytest.raises(sqlite3.IntegrityError), state.conn:
            state.conn.execute("BEGIN")
            state.log_changes([*good[:50], bad, *good[50:]])
        assert _rows(state) == []
    finally:
        state.close()
