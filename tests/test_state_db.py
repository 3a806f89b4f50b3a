"""The state database's own methods (synchro/state/): every SQL statement on it is one of
them, and what crosses a module boundary is a named tuple."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from synchro.db.base import Column, Table
from synchro.state import ChangeLogEntry, Intent, Outgoing, SiteState, StateDB
from synchro.state.changelog import (
    COMPACTED_RECENT,
    COMPACTED_WHOLE,
    OTHERS_AFTER,
    recent_part,
)


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateDB]:
    db = StateDB(tmp_path / "state.db")
    yield db
    db.close()


def test_packages_intent_and_outbox_are_named(state: StateDB, tmp_path: Path) -> None:
    with state.transaction():
        state.set_intent("A", 3, tmp_path / "A-3.pkg")
        state.add_outbox(1, tmp_path / "o1.pkg", 5)
        state.add_outbox(2, tmp_path / "o2.pkg", 0)
        state.mark_applied("A", 1, "site", 5)
        state.mark_applied("B", 1, "site", 5)
    assert state.intent() == Intent("A", 3, tmp_path / "A-3.pkg")
    assert state.outbox() == [Outgoing(1, tmp_path / "o1.pkg"), Outgoing(2, tmp_path / "o2.pkg")]
    assert state.outbox()[0].sequence == 1
    with state.transaction():
        state.forget_applied("A")
    assert not state.is_applied("A", 1) and state.is_applied("B", 1)


def test_sites_and_change_log(state: StateDB) -> None:
    assert state.site("X") == SiteState(0, 0, 0)
    with state.transaction():
        state.set_site("X", 4, 2, 7)
        state.log_changes(
            [
                ChangeLogEntry("X", "t", "U", "[1]", '[1,"a"]'),
                ChangeLogEntry("Y", "t", "D", "[1]", None),
            ]
        )
    site = state.site("X")
    assert (site.acked_pos, site.applied_seq, site.out_seq) == (4, 2, 7)
    deleted = state.deleted_version("t", "[1]")
    assert deleted is not None and deleted.deleted_by == "Y" and deleted.row_json == '[1,"a"]'
    changes = list(state.compacted_changes("t", "D", 0, ""))
    assert [(c.pos, c.origin, c.key_json, c.row_json) for c in changes] == [(2, "Y", "[1]", None)]


def test_newer_versions_see_every_change_of_another_origin(state: StateDB, tmp_path: Path) -> None:
    """The Siège asks, batch after batch of a site's package, which keys another origin
    changed since the site's last exchange; the "none at all" answer it keeps inside a
    transaction must give way to a change logged since, by this connection or (in a later
    transaction) by another one."""
    mine = ChangeLogEntry("A", "t", "U", "[1]", '[1,"a"]')
    with state.transaction():
        state.log_changes([ChangeLogEntry("B", "t", "U", "[9]", '[9,"b"]')])  # pos 1
    with state.transaction():
        assert state.newer_versions("t", ["[1]", "[2]"], 1, "A") == {}
        state.log_changes([mine])  # A's own change: still nothing newer from another
        assert state.newer_versions("t", ["[1]", "[2]"], 1, "A") == {}
        state.log_changes([ChangeLogEntry("B", "u", "U", "[2]", "[2]")])  # another table
        assert state.newer_versions("t", ["[1]", "[2]"], 1, "A") == {}
        state.log_changes([ChangeLogEntry("S", "t", "U", "[2]", '[2,"s"]')])
        assert state.newer_versions("t", ["[1]", "[2]"], 1, "A") == {"[2]": "S"}
        assert state.newer_versions("t", ["[9]"], 0, "A") == {"[9]": "B"}
    with state.transaction():
        assert state.newer_versions("t", ["[3]"], 4, "A") == {}
    other = StateDB(tmp_path / "state.db")  # a second connection to the same state
    try:
        with other.transaction():
            other.log_changes([ChangeLogEntry("C", "t", "U", "[3]", '[3,"c"]')])
    finally:
        other.close()
    with state.transaction():
        assert state.newer_versions("t", ["[3]"], 4, "A") == {"[3]": "C"}
    assert state.newer_versions("t", ["[1]", "[3]"], 4, "A") == {"[3]": "C"}  # no transaction


def test_the_look_up_of_other_origins_reads_only_the_recent_log(state: StateDB) -> None:
    """The log is never emptied: the "another origin since?" look-up must read the changes
    after the position asked (a range of ``pos``), not every change of the table."""
    plan = state.conn.execute("EXPLAIN QUERY PLAN " + OTHERS_AFTER, (0, "t", "A")).fetchall()
    steps = " ".join(str(row[-1]) for row in plan)
    assert "INTEGER PRIMARY KEY (rowid>?)" in steps and "changelog_key" not in steps, steps


def test_both_ways_of_reading_the_compacted_log_agree(state: StateDB) -> None:
    """``compacted_changes`` reads the recent log from a position on, or the whole table's
    log grouped by key, depending on how much follows the position: both must give the same
    changes in the same order, for every position, op and excluded origin, on a log where
    keys come back, are deleted and re-inserted by several origins in two tables."""
    rng = random.Random(15)
    entries = []
    for _ in range(400):
        table, key = rng.choice("tu"), rng.randrange(25)
        op = rng.choice("UUUD")
        entries.append(
            ChangeLogEntry(rng.choice("ABC"), table, op, f"[{key}]", None if op == "D" else "[0]")
        )
    with state.transaction():
        state.log_changes(entries)
    conn, last = state.conn, state.last_position()
    compared = 0
    for after in range(0, last + 1, 7):
        for table, op, exclude in itertools.product("tu", "UD", ("", "A")):
            recent = conn.execute(COMPACTED_RECENT, (after, table, op, exclude)).fetchall()
            whole = conn.execute(COMPACTED_WHOLE, (table, after, op, exclude)).fetchall()
            assert recent == whole, (after, table, op, exclude)
            got = [tuple(c) for c in state.compacted_changes(table, op, after, exclude)]
            assert got == whole
            compared += len(whole)
    assert compared > 1000  # the log gave plenty to compare
    assert recent_part(last, last - 10) and not recent_part(last, 0)
    plan = conn.execute("EXPLAIN QUERY PLAN " + COMPACTED_RECENT, (0, "t", "U", "")).fetchall()
    assert "INTEGER PRIMARY KEY (rowid>?)" in " ".join(str(row[-1]) for row in plan)


def test_old_publications_are_forgotten(state: StateDB) -> None:
    with state.transaction():
        state.set_site("X", 0, 0, 50)
        for seq in (5, 29, 30, 49):
            state.set_meta(f"sums:{seq}", "{}")
            state.set_meta(f"answered:{seq}", "{}")
        state.forget_old_publications(keep=20)
    kept = [s for s in (5, 29, 30, 49) if state.get_meta(f"sums:{s}") is not None]
    assert kept == [30, 49]
    assert state.get_meta("answered:29") is None


def test_dry_run_rolls_back(state: StateDB) -> None:
    with state.dry_run():
        state.set_meta("k", "v")
    assert state.get_meta("k") is None


def test_capture_scratch_tables(state: StateDB) -> None:
    table = Table("t", (Column("id", "int"), Column("v", "text")), ("id",))
    snap = state.snapshot_table(table)
    with state.transaction():
        state.put_snapshot(snap, 1, [(2, b"h2"), (1, b"h1")])
        state.start_capture_deletes()
        state.add_capture_deletes([(0, "[2]"), (1, "[9]"), (0, "[1]")])
        assert [r[0] for r in state.capture_deletes(0)] == ["[2]", "[1]"]
        state.clear_capture_deletes()
        assert list(state.capture_deletes(0)) == []
        state.start_spool(1)
        state.add_to_spool(1, [(3, "c"), (1, "a"), (2, "b")])
        assert [r[0] for r in state.spooled_rows(1)] == ["a", "b", "c"]
        state.drop_spool()
    with state.reader() as reader:
        rows = list(state.snapshot_in_order(reader, snap, 1, hashes=True))
        keys = list(state.snapshot_in_order(reader, snap, 1, hashes=False))
    assert rows == [(1, b"h1"), (2, b"h2")] and keys == [(1,), (2,)]


def test_a_state_commit_is_on_the_disk_before_it_returns(tmp_path: Path) -> None:
    """A power cut cannot take back a state commit (``synchronous=FULL``): each commit
    syncs the WAL (seen by ``strace`` on a real process). With ``NORMAL`` a commit only
    wrote it, and a power cut could lose the mark of a package applied after the user's
    database had kept its rows."""
    import shutil
    import subprocess
    import sys

    from conftest import require

    if shutil.which("strace") is None:
        require("strace is needed to see the state's syncs")
    child = (
        "import sys\n"
        "from pathlib import Path\nfrom synchro.state import StateDB\n"
        "state = StateDB(Path(sys.argv[1]))\n"
        "for n in range(5):\n"
        "    with state.transaction():\n"
        "        state.set_meta('n', str(n))\n"
        "state.close()\n"
    )
    db = tmp_path / "state.db"
    StateDB(db).close()  # created (and its WAL checkpointed away) before the count
    done = subprocess.run(
        [
            "strace",
            "-f",
            "-y",
            "-e",
            "trace=fsync,fdatasync",
            "-o",
            str(tmp_path / "trace"),
            sys.executable,
            "-c",
            child,
            str(db),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    syncs = [
        line for line in (tmp_path / "trace").read_text().splitlines() if "state.db-wal>" in line
    ]
    assert len(syncs) >= 5, syncs  # one a commit at least (NORMAL: none before close)


def test_a_failed_state_write_not_of_the_disk_is_a_fault_of_the_program(state: StateDB) -> None:
    """A state write the database refuses for another reason than its disk (a broken rule:
    a bug) is a ``StateError`` of kind internal, the transaction rolled back, the state
    usable after; not the disk's advice."""
    from synchro.errors import ErrorKind, StateError, disk_advice

    with pytest.raises(StateError) as err, state.transaction() as conn:
        conn.execute("INSERT INTO meta(key, value) VALUES ('k', 'un')")
        conn.execute("INSERT INTO meta(key, value) VALUES ('k', 'deux')")
    assert err.value.kind is ErrorKind.INTERNAL and disk_advice() not in str(err.value)
    assert state.get_meta("k") is None
    with state.transaction():
        state.set_meta("k", "trois")
    assert state.get_meta("k") == "trois"
