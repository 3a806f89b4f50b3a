"""The state database's page size: 16 KB for a new one (the Siège's change log written with
a quarter of the page writes, bench/README.md), an existing one kept as it is and answering
the same.

The page size is the file's layout, not its schema: a state database made before (4 KB
pages, SQLite's default) is opened as it is, written and read on, and every answer of its
change log is the one a new state database gives for the same changes.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

from test_changelog_compact import _answers, _random_log

from synchro.state import StateDB
from synchro.state.store import PAGE_SIZE


def _page_size(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        conn.close()


def _old_state(path: Path) -> None:
    """A state database as the program made it before: SQLite's default pages, WAL."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA page_size=4096")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT INTO meta VALUES ('schema_version', '3'), ('instance', 'old')")
    conn.commit()
    conn.close()


def test_a_new_state_database_has_the_bigger_pages(tmp_path: Path) -> None:
    state = StateDB(tmp_path / "state.db")
    try:
        assert state.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert state.conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE == 16384
        with state.reader() as conn:
            assert conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE
    finally:
        state.close()
    assert _page_size(tmp_path / "state.db") == PAGE_SIZE


def test_an_old_state_database_keeps_its_pages_and_answers_the_same(tmp_path: Path) -> None:
    rng = random.Random(7)
    entries = _random_log(rng, 150)
    _old_state(tmp_path / "old.db")
    old, new = StateDB(tmp_path / "old.db"), StateDB(tmp_path / "new.db")
    try:
        assert old.instance == "old"  # opened as it was, not made anew
        for state in (old, new):
            with state.transaction():
                state.log_changes(entries[:100])
        # closed and opened again between two writes, as between two runs
        old.close()
        old = StateDB(tmp_path / "old.db")
        for state in (old, new):
            with state.transaction():
                state.log_changes(entries[100:])
        assert old.conn.execute("PRAGMA page_size").fetchone()[0] == 4096
        assert _answers(old) == _answers(new)
        with old.transaction():
            old.compact()
        with new.transaction():
            new.compact()
        assert _answers(old) == _answers(new)
    finally:
        old.close()
        new.close()
    assert _page_size(tmp_path / "old.db") == 4096
    assert _page_size(tmp_path / "new.db") == PAGE_SIZE
