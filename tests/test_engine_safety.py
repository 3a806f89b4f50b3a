"""Safety of the engine on real SQLite files: exactly once, damaged packages refused whole,
crash (SIGKILL) in the middle of an apply, refused rows quarantined, ARRET, the
modification-date pre-filter and keys that need the spooled capture.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from backends import Backend
from engine_helpers import Db, make_node, state_counts

from synchro.config.model import ConflictPolicy, TableRule
from synchro.engine.node import Node
from synchro.errors import ApplyError, Cancelled, PackageError, StateError
from synchro.i18n import render

ITEMS = (
    "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER, "
    "price DECIMAL(10,2))"
)


def sqlite_db(path: Path, *statements: str) -> str:
    conn = sqlite3.connect(path)
    for sql in statements:
        conn.execute(sql)
    conn.commit()
    conn.close()
    return str(path)


def run_sql(connection: str, sql: str, rows: list[tuple[object, ...]] | None = None) -> None:
    conn = sqlite3.connect(connection)
    with conn:
        if rows is None:
            conn.executescript(sql)
        else:
            conn.executemany(sql, rows)
    conn.close()


def item_rows(start: int, stop: int) -> list[tuple[object, ...]]:
    return [(i, f"article {i} é", i % 7, f"{i % 1000}.{i % 100:02d}") for i in range(start, stop)]


@pytest.fixture
def pair(tmp_path: Path) -> tuple[str, str]:
    """Two SQLite files with the same ``items`` table: a source and a receiver."""
    return (sqlite_db(tmp_path / "a.db", ITEMS), sqlite_db(tmp_path / "b.db", ITEMS))


def checks(connection: str) -> dict[str, tuple[int, str]]:
    with Db(connection) as db:
        return db.checksums()


# -- exactly once --------------------------------------------------------------------------


def test_same_package_twice_changes_nothing(tmp_path: Path, pair: tuple[str, str]) -> None:
    a, b = pair
    run_sql(a, "INSERT INTO items VALUES (?, ?, ?, ?)", item_rows(1, 50))
    with make_node(tmp_path, "A", a) as site, make_node(tmp_path, "B", b, hq=True) as hq:
        path = site.export().path
        assert hq.import_package(path).status == "applied"
        before, counts = checks(b), state_counts(hq)
        run_sql(b, "UPDATE items SET qty = 1000 WHERE id = 3")  # a local change since
        before = checks(b)
        copy = tmp_path / "copie.pkg"
        copy.write_bytes(path.read_bytes())
        for again in (path, copy):
            result = hq.import_package(again)
            assert result.status == "duplicate"
            assert result.stats.rows == 0
        assert checks(b) == before
        assert state_counts(hq) == counts

        # The same at a site receiving a Siège package twice.
        assert hq.export().manifest.rows == 1
        published, _manifest = hq.publish("A", tmp_path / "out")
        assert site.import_package(published).status == "applied"
        site_before = checks(a)
        assert site.import_package(published).status == "duplicate"
        assert checks(a) == site_before
        assert checks(a) == checks(b)


# -- damaged packages ------------------------------------------------------------------------


def small_package(tmp_path: Path, a: str, *, key: bytes | None = None) -> tuple[Path, bytes]:
    run_sql(a, "INSERT INTO items VALUES (?, ?, ?, ?)", item_rows(1, 6))
    run_sql(a, "DELETE FROM items WHERE id = 5")
    with make_node(tmp_path, "A", a) as site:
        site.key = key
        path = site.export().path
    return path, path.read_bytes()


def assert_refused_whole(hq: Node, b: str, damaged: Path, before: object) -> None:
    with pytest.raises(PackageError) as info:
        hq.import_package(damaged)
    assert str(damaged) in str(info.value)
    assert checks(b) == before


def test_package_cut_at_every_byte_is_refused_whole(tmp_path: Path, pair: tuple[str, str]) -> None:
    a, b = pair
    path, data = small_package(tmp_path, a)
    run_sql(b, "INSERT INTO items VALUES (?, ?, ?, ?)", item_rows(100, 103))
    before = checks(b)
    cut = tmp_path / "coupe.pkg"
    with make_node(tmp_path, "B", b, hq=True) as hq:
        counts = state_counts(hq)
        for size in range(len(data)):
            cut.write_bytes(data[:size])
            with pytest.raises(PackageError):
                hq.import_package(cut)
        assert checks(b) == before
        assert state_counts(hq) == counts
        assert hq.import_package(path).status == "applied"
        assert checks(b)["items"][0] == 3 + 4


def test_flipped_byte_anywhere_is_refused(tmp_path: Path, pair: tuple[str, str]) -> None:
    a, b = pair
    _path, data = small_package(tmp_path, a)
    before = checks(b)
    damaged = tmp_path / "abime.pkg"
    accepted: list[int] = []
    with make_node(tmp_path, "B", b, hq=True) as hq:
        for pos in range(len(data)):
            flipped = bytearray(data)
            flipped[pos] ^= 0x01
            damaged.write_bytes(bytes(flipped))
            try:
                hq.import_package(damaged)
            except PackageError:
                continue
            accepted.append(pos)
        assert accepted == [], f"bytes {accepted} of {len(data)} could be flipped unnoticed"
        assert checks(b) == before
        assert state_counts(hq)["applied"] == 0


def test_encrypted_package_cut_or_wrong_key_is_refused(
    tmp_path: Path, pair: tuple[str, str]
) -> None:
    a, b = pair
    key = bytes(range(32))
    path, data = small_package(tmp_path, a, key=key)
    before = checks(b)
    cut = tmp_path / "coupe.pkg"
    with make_node(tmp_path, "B", b, hq=True) as hq:
        hq.key = bytes(32)
        assert_refused_whole(hq, b, path, before)
        hq.key = key
        for size in range(0, len(data), 7):
            cut.write_bytes(data[:size])
            assert_refused_whole(hq, b, cut, before)
        assert hq.import_package(path).status == "applied"


# -- crash in the middle of an apply ----------------------------------------------------------

CHILD = """
import sys
from pathlib import Path
from synchro.config.model import Config, ConflictPolicy, DatabaseSettings, Role, TableRule
from synchro.engine.nodes import build_node

state, packages, connection, package, where = sys.argv[1:6]
rules = tuple(
    TableRule(name, ConflictPolicy.LATEST_WINS, modified_column=column)
    for name, column in (arg.split(":") for arg in sys.argv[6:])
)
settings = DatabaseSettings(connection=connection, tables=rules)
config = Config(role=Role.HQ, site="B", database=settings)
node = build_node(config, Path(state), Path(packages), connection=connection)
if where == "after-commit":  # a real SIGKILL right after the database commit
    import os, signal
    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
    node.state.mark_applied = die

def progress(table, rows):
    print(f"{table} {rows}", flush=True)

node.import_package(Path(package), progress=progress)
print("done", flush=True)
"""


POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def killed_import(node_dir: Path, b: str, package: Path, where: str, *latest: str) -> list[str]:
    """Import ``package`` at B (the Siège) in a child process and SIGKILL it (by PID)
    mid-apply or right after the database commit. ``latest``: "table:column" rules."""
    home = node_dir / "node-B"
    args = [str(home / "state.db"), str(home / "packages"), b, str(package), where, *latest]
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, *args], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        first = child.stdout.readline()
        if where == "mid-apply":
            assert first.startswith("items "), first
            os.kill(child.pid, signal.SIGKILL)
        rest = child.stdout.read()
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    return [first, *rest.splitlines()]


def crash_and_recover(tmp_path: Path, a: str, b: str, big: int, where: str) -> list[Path]:
    """A (SQLite) sends 1,000 rows to the Siège B, then ``big`` more with updates and
    deletes; B's import of that is killed; B must hold what it held before (mid-apply),
    recover it exactly once and end equal to A. Returns the two packages."""
    run_sql(a, "INSERT INTO items VALUES (?, ?, ?, ?)", item_rows(1, 1001))
    with make_node(tmp_path, "A", a) as site:
        first = site.export().path
        with make_node(tmp_path, "B", b, hq=True) as hq:
            assert hq.import_package(first).status == "applied"
        run_sql(a, "INSERT INTO items VALUES (?, ?, ?, ?)", item_rows(1001, 1001 + big))
        run_sql(a, "UPDATE items SET qty = -qty, name = name || ' modifié' WHERE id % 3 = 0")
        run_sql(a, "DELETE FROM items WHERE id % 10 = 1 AND id < 1001")
        second = site.export().path
    before = checks(b)

    killed_import(tmp_path, b, second, where)

    with make_node(tmp_path, "B", b, hq=True) as hq:
        if where == "mid-apply":
            assert checks(b) == before, "a killed apply must leave no partial rows"
        assert hq.state.intent() is not None
        assert hq.recover() == "A#2"
        assert hq.state.intent() is None
        assert hq.import_package(second).status == "duplicate"
        applied = hq.state.conn.execute("SELECT COUNT(*) FROM applied WHERE origin = 'A'")
        assert applied.fetchone()[0] == 2
        assert hq.state.conflicts() == [] and hq.state.quarantined() == []
        assert hq.export().manifest.rows == 0  # snapshot consistent: nothing to echo
    assert checks(b) == checks(a)
    return [first, second]


@POSIX_ONLY
@pytest.mark.parametrize(
    "where", [pytest.param("mid-apply", marks=pytest.mark.slow), "after-commit"]
)
def test_crash_during_apply_leaves_database_as_before(
    tmp_path: Path, pair: tuple[str, str], where: str
) -> None:
    a, b = pair
    # The apply runs at about 5,000 rows/s at the Siège: 8,000 rows take over a second, and
    # the kill lands within a millisecond of the first batch's progress line.
    packages = crash_and_recover(tmp_path, a, b, 8_000 if where == "mid-apply" else 2_000, where)
    clean = sqlite_db(tmp_path / "clean.db", ITEMS)
    with make_node(tmp_path / "clean", "C", clean, hq=True) as other:
        for path in packages:
            assert other.import_package(path).status == "applied"
    assert checks(b) == checks(clean)


@POSIX_ONLY
@pytest.mark.slow
@pytest.mark.parametrize("server", ["postgresql", "mariadb"])
def test_crash_mid_apply_on_a_database_server(
    tmp_path: Path, make_backend: Callable[[str], Backend], server: str
) -> None:
    """The killed client's open transaction is rolled back by the server itself."""
    receiver = make_backend(server)
    receiver.execute(ITEMS)
    a = sqlite_db(tmp_path / "a.db", ITEMS)
    crash_and_recover(tmp_path, a, receiver.connection, 3_000, "mid-apply")


@POSIX_ONLY
def test_crash_after_commit_keeps_the_conflict_log(tmp_path: Path) -> None:
    """The incoming row wins a conflict; the apply is killed after the database commit:
    the losing version must still be logged, once (it is gone from the database)."""
    schema = "CREATE TABLE notes (id INTEGER PRIMARY KEY, v TEXT, changed DATETIME)"
    a = sqlite_db(tmp_path / "a.db", schema)
    b = sqlite_db(tmp_path / "b.db", schema)
    run_sql(a, "INSERT INTO notes VALUES (1, 'un', '2025-01-01 00:00:00')")
    rules = [TableRule("notes", ConflictPolicy.LATEST_WINS, modified_column="changed")]
    with make_node(tmp_path, "A", a, rules=rules) as site:
        with make_node(tmp_path, "B", b, hq=True, rules=rules) as hq:
            assert hq.import_package(site.export().path).status == "applied"
        run_sql(b, "UPDATE notes SET v = 'siège', changed = '2025-01-02 00:00:00'")
        run_sql(a, "UPDATE notes SET v = 'site', changed = '2025-01-03 00:00:00'")
        newer = site.export().path
    killed_import(tmp_path, b, newer, "after-commit", "notes:changed")
    with make_node(tmp_path, "B", b, hq=True, rules=rules) as hq:
        assert hq.recover() == "A#2"
        [conflict] = hq.state.conflicts()
        assert (conflict["package"], conflict["winner"], conflict["loser"]) == ("A#2", "A", "B")
        assert "siège" in conflict["loser_json"]
        assert list(tmp_path.rglob("*.conflicts-*")) == []  # the side file is gone
        assert hq.import_package(newer).status == "duplicate"
        assert len(hq.state.conflicts()) == 1


# -- rows the database refuses ---------------------------------------------------------------


def test_refused_rows_are_quarantined_and_the_rest_applied(tmp_path: Path) -> None:
    """The receiver has a CHECK, a NOT NULL and a foreign key the sender does not have."""
    a = sqlite_db(
        tmp_path / "a.db", ITEMS, "CREATE TABLE lines (id INTEGER PRIMARY KEY, item INTEGER)"
    )
    b = sqlite_db(
        tmp_path / "b.db",
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "qty INTEGER NOT NULL CHECK (qty >= 0), price DECIMAL(10,2))",
        "CREATE TABLE lines (id INTEGER PRIMARY KEY, item INTEGER REFERENCES items (id))",
    )
    rows = item_rows(1, 21)
    rows[4] = (5, "négatif", -1, "1.00")
    rows[9] = (10, "sans quantité", None, "2.00")
    run_sql(a, "INSERT INTO items VALUES (?, ?, ?, ?)", rows)
    run_sql(a, "INSERT INTO lines VALUES (?, ?)", [(1, 1), (2, 99), (3, 3)])
    with make_node(tmp_path, "A", a) as site, make_node(tmp_path, "B", b, hq=True) as hq:
        result = hq.import_package(site.export().path)
        assert result.status == "applied"
        assert (result.stats.upserts, result.stats.quarantined) == (18 + 2, 3)
        refused = hq.state.quarantined()
        assert [(q["tbl"], q["key_json"]) for q in refused] == [
            ("items", "[5]"), ("items", "[10]"), ("lines", "[2]")
        ]  # fmt: skip
        assert all(q["error"] and q["row_json"] for q in refused)
        with Db(b) as db:
            assert [r[0] for r in db.rows("items")] == [i for i in range(1, 21) if i not in (5, 10)]
            assert db.rows("lines") == [(1, 1), (3, 3)]
        assert hq.export().manifest.rows == 0  # refused rows are not deleted back at the site

        # Fixed at the source, the rows come again and are applied.
        run_sql(a, "UPDATE items SET qty = 0 WHERE id IN (5, 10)")
        run_sql(a, "UPDATE lines SET item = 10 WHERE id = 2")
        result = hq.import_package(site.export().path)
        assert (result.stats.upserts, result.stats.quarantined) == (3, 0)
        assert checks(a) == checks(b)


# -- ARRETER ---------------------------------------------------------------------------------


def test_cancel_during_import_applies_nothing(tmp_path: Path, pair: tuple[str, str]) -> None:
    a, b = pair
    run_sql(a, "INSERT INTO items VALUES (?, ?, ?, ?)", item_rows(1, 1501))
    stop = threading.Event()
    seen: list[int] = []

    def progress(table: str, rows: int) -> None:
        seen.append(rows)
        stop.set()  # ARRETER pressed while the first batch was being applied

    with make_node(tmp_path, "A", a) as site, make_node(tmp_path, "B", b, hq=True) as hq:
        path = site.export().path
        with pytest.raises(Cancelled):
            hq.import_package(path, cancel=stop, progress=progress)
        assert seen == [500]
        assert checks(b)["items"][0] == 0
        assert hq.state.intent() is None
        assert not hq.state.is_applied("A", 1)
        assert hq.import_package(path).status == "applied"
        assert checks(b) == checks(a)


def test_cancel_during_export_keeps_nothing(tmp_path: Path, pair: tuple[str, str]) -> None:
    a, _b = pair
    run_sql(a, "INSERT INTO items VALUES (?, ?, ?, ?)", item_rows(1, 5001))
    stop = threading.Event()
    with make_node(tmp_path, "A", a) as site:
        with pytest.raises(Cancelled):
            site.export(cancel=stop, progress=lambda table, rows: stop.set())
        assert site.state.outbox() == []
        assert list((tmp_path / "node-A" / "packages").rglob("*.pkg*")) == []
        assert site.pending_changes()["items"]["inserts"] == 5000
        exported = site.export()
        assert exported.manifest.sequence == 1, "a cancelled export must not use a sequence"
        assert exported.capture.counts["items"].inserts == 5000


# -- modification-date pre-filter -------------------------------------------------------------


def test_modified_column_prefilter_captures_updates_and_deletes(tmp_path: Path) -> None:
    schema = "CREATE TABLE notes (id INTEGER PRIMARY KEY, v TEXT, changed DATETIME)"
    a = sqlite_db(tmp_path / "a.db", schema)
    b = sqlite_db(tmp_path / "b.db", schema)
    old, new = "2025-01-01 10:00:00", "2025-06-01 10:00:00"
    run_sql(a, "INSERT INTO notes VALUES (?, ?, ?)", [(i, f"v{i}", old) for i in range(1, 6)])
    rules = [TableRule(name="notes", modified_column="changed")]
    since = dt.datetime(2025, 5, 1)
    with (
        make_node(tmp_path, "A", a, rules=rules) as site,
        make_node(tmp_path, "B", b, hq=True, rules=rules) as hq,
    ):
        assert hq.import_package(site.export().path).status == "applied"
        run_sql(
            a,
            f"UPDATE notes SET v = 'deux', changed = '{new}' WHERE id = 2;"
            "UPDATE notes SET v = 'trois sans date' WHERE id = 3;"
            "DELETE FROM notes WHERE id = 4;"
            f"INSERT INTO notes VALUES (6, 'six', '{new}');",
        )
        exported = site.export(since=since)
        count = exported.capture.counts["notes"]
        assert (count.inserts, count.updates, count.deletes) == (1, 1, 1)
        assert count.scanned == 2  # only rows modified since the bound were read
        assert hq.import_package(exported.path).status == "applied"
        with Db(b) as db:
            assert [(r[0], r[1]) for r in db.rows("notes")] == [
                (1, "v1"), (2, "deux"), (3, "v3"), (5, "v5"), (6, "six")
            ]  # fmt: skip
        # Without the bound the snapshot still finds the update that kept its old date.
        exported = site.export()
        assert exported.capture.counts["notes"].updates == 1
        assert hq.import_package(exported.path).status == "applied"
        assert checks(a) == checks(b)


# -- keys that SQLite and the database may order differently ---------------------------------


def test_decimal_and_float_keys_round_trip_through_the_spool(tmp_path: Path) -> None:
    schema = (
        "CREATE TABLE dk (k DECIMAL(10,3) PRIMARY KEY, v TEXT)",
        "CREATE TABLE fk (k REAL PRIMARY KEY, v TEXT)",
    )
    a = sqlite_db(tmp_path / "a.db", *schema)
    b = sqlite_db(tmp_path / "b.db", *schema)
    decimals = [Decimal(x) for x in ("10", "9.5", "-1.25", "2", "100.125", "0.001")]
    floats = [0.1, 1e20, -2.5, 3.0, 2.0**-30, 12345.678]
    with Db(a) as db:
        db.write("dk", [(k, f"d{k}") for k in decimals])
        db.write("fk", [(k, f"f{k!r}") for k in floats])
    with make_node(tmp_path, "A", a) as site, make_node(tmp_path, "B", b, hq=True) as hq:
        exported = site.export()
        assert exported.capture.counts["dk"].inserts == 6
        assert exported.capture.counts["fk"].inserts == 6
        assert hq.import_package(exported.path).status == "applied"
        assert checks(a) == checks(b)
        with Db(a) as db:
            db.write("dk", [(Decimal("9.5"), "changé")])
            db.delete("dk", [(Decimal("-1.25"),)])
            db.write("fk", [(0.1, "changé"), (7.75, "nouveau")])
            db.delete("fk", [(1e20,)])
        exported = site.export()
        counts = exported.capture.counts
        assert (counts["dk"].updates, counts["dk"].deletes) == (1, 1)
        assert (counts["fk"].inserts, counts["fk"].updates, counts["fk"].deletes) == (1, 1, 1)
        assert hq.import_package(exported.path).status == "applied"
        assert checks(a) == checks(b)
        with Db(b) as db:
            assert sorted(r[0] for r in db.rows("fk")) == sorted([0.1, -2.5, 3.0, 2.0**-30,
                                                                 12345.678, 7.75])  # fmt: skip
        assert hq.export().manifest.rows == 0


# -- order of arrival -------------------------------------------------------------------------


def test_first_packages_of_a_site_out_of_order_wait(tmp_path: Path, pair: tuple[str, str]) -> None:
    """The Siège's first contact with a site is its package 2 (package 1 is late): 2 must
    wait for 1, and both are applied, in order."""
    a, b = pair
    run_sql(a, "INSERT INTO items VALUES (?, ?, ?, ?)", item_rows(1, 4))
    with make_node(tmp_path, "A", a) as site, make_node(tmp_path, "B", b, hq=True) as hq:
        first = site.export().path
        run_sql(a, "UPDATE items SET qty = 100 WHERE id = 2")
        second = site.export().path
        assert hq.import_package(second).status == "waiting"
        assert hq.import_package(first).status == "applied"
        assert hq.import_package(second).status == "applied"
        assert hq.import_package(first).status == "duplicate"
        assert checks(a) == checks(b)


def test_different_columns_refuse_the_package_whole(tmp_path: Path) -> None:
    """``items`` (applied first) matches; ``notes`` lacks a column: nothing is kept."""
    a = sqlite_db(
        tmp_path / "a.db", ITEMS, "CREATE TABLE notes (id INTEGER PRIMARY KEY, v TEXT, extra TEXT)"
    )
    b = sqlite_db(tmp_path / "b.db", ITEMS, "CREATE TABLE notes (id INTEGER PRIMARY KEY, v TEXT)")
    run_sql(a, "INSERT INTO items VALUES (?, ?, ?, ?)", item_rows(1, 5))
    run_sql(a, "INSERT INTO notes VALUES (1, 'une note', 'en plus')")
    with make_node(tmp_path, "A", a) as site, make_node(tmp_path, "B", b, hq=True) as hq:
        path = site.export().path
        with pytest.raises(ApplyError, match="extra") as refused:
            hq.import_package(path)
        assert "absentes du paquet : - ; inconnues ici : ['extra']" in str(refused.value)
        assert refused.value.say is not None  # and the English UI's words:
        assert "missing from the package: -; unknown here: ['extra']" in render(
            refused.value.say, "en"
        )
        assert all(count == 0 for count, _digest in checks(b).values())
        assert hq.state.intent() is None and not hq.state.is_applied("A", 1)
        run_sql(b, "ALTER TABLE notes ADD COLUMN extra TEXT")
        hq.tables(refresh=True)
        assert hq.import_package(path).status == "applied"
        assert checks(a) == checks(b)


def test_prefilter_on_a_table_with_a_decimal_key(tmp_path: Path) -> None:
    """The key-only scan that finds deletes must go through the spool like the full scan
    (the database orders 9.5 before 10, the snapshot's text keys the other way)."""
    schema = "CREATE TABLE prix (k DECIMAL(10,2) PRIMARY KEY, v TEXT, changed DATETIME)"
    a = sqlite_db(tmp_path / "a.db", schema)
    b = sqlite_db(tmp_path / "b.db", schema)
    old = dt.datetime(2025, 1, 1)
    with Db(a) as db:
        db.write("prix", [(Decimal(k), f"v{k}", old) for k in ("10", "9.5", "-1.25", "2")])
    rules = [TableRule(name="prix", modified_column="changed")]
    with (
        make_node(tmp_path, "A", a, rules=rules) as site,
        make_node(tmp_path, "B", b, hq=True, rules=rules) as hq,
    ):
        assert hq.import_package(site.export().path).status == "applied"
        with Db(a) as db:
            db.write("prix", [(Decimal("9.5"), "changé", dt.datetime(2025, 6, 1))])
            db.delete("prix", [(Decimal("2"),)])
        exported = site.export(since=dt.datetime(2025, 5, 1))
        count = exported.capture.counts["prix"]
        assert (count.updates, count.deletes) == (1, 1)
        assert hq.import_package(exported.path).status == "applied"
        assert checks(a) == checks(b)


def test_a_damaged_state_database_is_named_with_what_to_do(tmp_path: Path) -> None:
    """A state file damaged on disk: a clear error naming it and the way out, and the way
    out works (renamed aside, the next export compares every row again)."""
    db = tmp_path / "base.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    conn.execute("INSERT INTO t VALUES (1, 'a')")
    conn.commit()
    conn.close()
    with make_node(tmp_path, "S1", str(db)) as node:
        assert node.export().manifest.rows == 1
        state = node.state.path
    with open(state, "r+b") as f:
        f.write(b"not a database at all, damaged")
    with pytest.raises(StateError) as caught:
        make_node(tmp_path, "S1", str(db))
    assert str(state) in str(caught.value)
    assert "Restaurez-la depuis une sauvegarde, ou renommez-la" in str(caught.value)
    for leftover in state.parent.glob(state.name + "*"):
        leftover.rename(leftover.with_name(leftover.name + ".abîmé"))
    with make_node(tmp_path, "S1", str(db)) as node:
        assert node.export().manifest.rows == 1  # every row offered again: nothing lost


def test_a_second_machine_sending_as_an_establishment_is_said_not_taken_for_a_copy(
    tmp_path: Path,
) -> None:
    """A shop's server copied to a new one (database and Synchro's state), both left
    running: each makes its next package under the same number. The Siège applies the
    first; the other used to be taken for a copy sent again (« déjà appliqué ») and its
    rows stayed home without a word. Now it is refused, naming the code; a real copy sent
    again is still a duplicate."""
    site_db = sqlite_db(tmp_path / "s1.db", ITEMS)
    hq_db = sqlite_db(tmp_path / "hq.db", ITEMS)
    run_sql(site_db, "INSERT INTO items VALUES (?, ?, ?, ?)", item_rows(0, 5))
    with (
        make_node(tmp_path, "S1", site_db) as site,
        make_node(tmp_path, "HQ", hq_db, hq=True) as hq,
    ):
        assert hq.import_package(site.export().path).status == "applied"
    copy = tmp_path / "copie"
    copy.mkdir()
    copy_db = str(copy / "s1.db")
    shutil.copy2(site_db, copy_db)
    shutil.copytree(tmp_path / "node-S1", copy / "node-S1")
    run_sql(site_db, "INSERT INTO items VALUES (?, ?, ?, ?)", item_rows(10, 11))
    run_sql(copy_db, "INSERT INTO items VALUES (?, ?, ?, ?)", item_rows(20, 21))
    with (
        make_node(tmp_path, "S1", site_db) as site,
        make_node(copy, "S1", copy_db) as second,
        make_node(tmp_path, "HQ", hq_db, hq=True) as hq,
    ):
        mine, theirs = site.export(), second.export()
        assert mine.manifest.sequence == theirs.manifest.sequence
        assert hq.import_package(mine.path).status == "applied"
        assert hq.import_package(mine.path).status == "duplicate"  # the same file again
        with pytest.raises(PackageError, match="une autre machine envoie sous le code S1"):
            hq.import_package(theirs.path)
    with Db(hq_db) as db:
        assert [r[0] for r in db.rows("items")] == [0, 1, 2, 3, 4, 10]


def test_a_siege_put_back_that_numbers_its_packages_again_is_said_not_skipped(
    tmp_path: Path,
) -> None:
    """The Siège's machine put back to an image (database and state): its next package to
    an establishment bears a number the establishment already applied, with other rows.
    It used to be skipped as « déjà appliqué » (the Siège's changes since never arrived,
    without a word); now it is refused, saying the Siège was put back."""
    site_db = sqlite_db(tmp_path / "s1.db", ITEMS)
    hq_db = sqlite_db(tmp_path / "hq.db", ITEMS)
    run_sql(hq_db, "INSERT INTO items VALUES (?, ?, ?, ?)", item_rows(0, 3))

    def exchange(change: str, *, deliver: bool = True) -> str:
        run_sql(hq_db, change)
        with (
            make_node(tmp_path, "S1", site_db) as site,
            make_node(tmp_path, "HQ", hq_db, hq=True) as hq,
        ):
            if deliver:  # (the Siège put back waits for packages of S1 it lost)
                assert hq.import_package(site.export().path).status == "applied"
            hq.export()
            path, _manifest = hq.publish("S1", tmp_path / "out")
            return site.import_package(path).status

    assert exchange("UPDATE items SET qty = 1 WHERE id = 0") == "applied"
    image = tmp_path / "image"
    image.mkdir()
    shutil.copy2(hq_db, image / "hq.db")
    shutil.copytree(tmp_path / "node-HQ", image / "node-HQ")
    assert exchange("UPDATE items SET qty = 2 WHERE id = 1") == "applied"
    Path(hq_db).unlink()
    shutil.rmtree(tmp_path / "node-HQ")
    shutil.copy2(image / "hq.db", hq_db)
    shutil.copytree(image / "node-HQ", tmp_path / "node-HQ")
    with pytest.raises(PackageError, match="le siège a été remis à un état antérieur") as site:
        exchange("UPDATE items SET qty = 3 WHERE id = 2", deliver=False)
    # and the Siège itself, given the establishment's next package, says it was put back
    # (it used to wait for ever for « le paquet 2 de S1 », which S1 no longer has)
    with pytest.raises(PackageError, match="n° 2, ce siège ne connaît que le n° 1") as siege:
        exchange("UPDATE items SET qty = 4 WHERE id = 2")
    for raised, words in (
        (site.value, "the HQ numbers again what it had already sent"),
        (siege.value, "S1 saw this HQ apply its packages up to n° 2, this HQ knows only n° 1"),
    ):  # (in the English UI: ``reports.error_in``)
        assert raised.say is not None and words in render(raised.say, "en")
