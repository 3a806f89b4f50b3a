"""A database put back to an older copy (a restored backup) is seen and held, not sent.

Before, a shop that restored last week's backup sent, at its next automatic run, a delete
for every row made since — its own and those the others had sent it — and its rows'
old values as updates; every establishment applied them. ``capture.mass_deletes`` held
only a loss of ≥ 100 rows and > 20 % of a table. Now every node keeps a number in its
database (``synchro_repere``) and in its state (``engine.marks``); a database behind its
state holds every automatic run whatever the size of the loss, and a person's MANUELLE
sends the restored copy as the group's reference.

Real Siège and Serveur (the App, its FTPS server and round thread) on real SQLite files,
backed up and restored with SQLite's own backup API; the engine on every back end
(PostgreSQL and MariaDB through their ODBC drivers), restored as a dump would be.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from backends import Backend
from engine_helpers import Db, make_node
from pair_helpers import synchro
from rounds_helpers import backup, sql
from rounds_helpers import rows as rows_of
from test_app import logging_set_up, wait_for  # noqa: F401 (autouse)
from test_mass_deletes import add_articles, automatic_run, in_step, manual_run, rows

from synchro.capture.mass_deletes import too_many
from synchro.db.base import MARK_TABLE
from synchro.engine.marks import Restored
from synchro.errors import ErrorKind, SynchroError
from synchro.report_summary import cause_lines
from synchro.reports import State


def price(db: Path, ident: int) -> str:
    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("SELECT prix FROM articles WHERE id = ?", (ident,)).fetchone()[0])
    finally:
        conn.close()


def test_a_small_restore_is_held_until_a_person_sends_it(tmp_path: Path) -> None:
    """A backup two rounds old: 30 rows received and 10 made since, 5 changed — far under
    the mass-delete rule — are neither deleted nor put back anywhere by an automatic run,
    nor by a MANUELLE clicked before anyone saw the held run (it would be a person's word
    for mass deletes, not for this): only by Envoyer, chosen in MANUELLE's question."""
    with in_step(tmp_path) as (hq, site_paths, site_db, hq_db):
        saved = tmp_path / "backup.db"
        backup(site_db, saved)  # the shop's nightly backup
        add_articles(hq_db, 5000, 30)  # the group goes on
        add_articles(site_db, 2000, 10)
        sql(site_db, "UPDATE articles SET prix = '99.99' WHERE id BETWEEN 1000 AND 1004;")
        hq.run_now()
        assert automatic_run(site_paths).state is State.OK
        assert rows(site_db) == rows(hq_db) == 642 and price(hq_db, 1000) == "99.99"
        assert not too_many(40, 642)  # the rule of mass deletes would have let it through
        backup(saved, site_db)  # the disk died; the shop restores its backup
        for run in (manual_run, automatic_run, automatic_run):  # each one holds
            held = run(site_paths)
            assert held.state is State.FAILED
            assert "Base restaurée, rien n'a été envoyé" in held.error, held.error
            assert f"({MARK_TABLE}) est 2 au lieu de 4" in held.error, held.error
            assert "« Reprendre les données du groupe »" in held.error
            assert held.details["error_kind"] == ErrorKind.RESTORED
            assert held.rows_sent == 0
            assert rows(hq_db) == 642 and price(hq_db, 1000) == "99.99"
        fr, en = " ".join(cause_lines(held, "fr")), " ".join(cause_lines(held, "en"))
        assert "sauvegarde restaurée" in fr and "MANUELLE" in fr, fr
        assert "restored backup" in en and "MANUELLE" in en, en
        # a person decides the restored copy is the reference: Envoyer sends it
        manual = manual_run(site_paths, send=True)
        assert manual.state is State.OK, manual.error
        assert rows(hq_db) == rows(site_db) == 602 and price(hq_db, 1000) != "99.99"
        hq.run_now()
        assert automatic_run(site_paths).state is State.OK  # not held again


def dump(backend: Backend) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """The user's table and the mark table, as a logical dump would hold them."""
    return (
        backend.query("SELECT id, txt FROM t ORDER BY id"),
        backend.query(f"SELECT poste, numero FROM {MARK_TABLE}"),
    )


def restore(backend: Backend, saved: tuple[list[tuple[object, ...]], ...]) -> None:
    table, marks = saved
    backend.execute("DELETE FROM t")
    for row in table:
        backend.execute("INSERT INTO t (id, txt) VALUES (?, ?)", row)
    backend.execute(f"DELETE FROM {MARK_TABLE}")
    for row in marks:
        backend.execute(f"INSERT INTO {MARK_TABLE} (poste, numero) VALUES (?, ?)", row)


def test_every_back_end_holds_a_restored_database(backend: Backend, tmp_path: Path) -> None:
    """The mark is written, read and left out of the tables on every back end; a dump
    restored holds the capture, a person's word sends, and then it is in step again."""
    backend.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, txt VARCHAR(100))")
    for i in range(1, 21):
        backend.execute("INSERT INTO t (id, txt) VALUES (?, ?)", (i, f"ligne {i}"))
    with make_node(tmp_path, "S1", backend.connection) as node:
        assert node.export().manifest.rows == 20
        assert [t.name for t in node.tables().synced] == ["t"]  # the mark is not a table
        saved = dump(backend)
        assert saved[1] == [("S1", 1)]
        backend.execute("DELETE FROM t WHERE id <= 3")
        backend.execute("UPDATE t SET txt = 'changée' WHERE id = 10")
        assert node.export().manifest.rows == 4
        restore(backend, saved)
        before = node.state.get_int("mark")
        for _ in range(2):
            with pytest.raises(Restored, match="est 1 au lieu de 2"):
                node.export()
        assert node.state.get_int("mark") == before  # nothing kept of the held runs
        with pytest.raises(Restored):
            node.export(deletes_confirmed=True)  # MANUELLE's word for mass deletes only
        sent = node.export(restore_confirmed=True)  # Envoyer
        assert sent.capture.counts["t"].inserts == 3 and sent.capture.counts["t"].updates == 1
        backend.execute("UPDATE t SET txt = 'après' WHERE id = 11")
        assert node.export().manifest.rows == 1  # in step again
        backend.execute(f"DROP TABLE {MARK_TABLE}")  # a copy older than the mark itself
        with pytest.raises(Restored, match="n'a plus de repère"):
            node.export()
    with Db(backend.connection) as db:
        assert sorted(db.tables) == ["t"]


@pytest.mark.parametrize("hq_ddl", ["t (id", "T (ID"], ids=["same-names", "names-in-capitals"])
def test_every_back_end_takes_the_group_s_data_back(
    backend: Backend, tmp_path: Path, hq_ddl: str
) -> None:
    """An establishment on each back end (the Siège on SQLite), restored from a dump: the
    take-back sends nothing of the dump, gets back its rows the dump lost, its rows changed
    since at their group version, and then sends the row made since the restore. Also
    when the Siège spells the table and its key otherwise (``names.same_names``)."""
    hq_db = tmp_path / "hq.db"
    sql(hq_db, f"CREATE TABLE {hq_ddl} INTEGER PRIMARY KEY, txt VARCHAR(100));")
    backend.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, txt VARCHAR(100))")
    for i in range(1, 11):
        backend.execute("INSERT INTO t (id, txt) VALUES (?, ?)", (i, f"ligne {i} — 日本"))
    out = tmp_path / "out"

    def exchange(site: Any, hq: Any) -> int:
        """The site's package to the Siège, the Siège's answer applied; rows it sent."""
        made = site.export()
        assert hq.import_package(made.path).status == "applied"
        assert site.import_package(hq.publish("S1", out).path).status == "applied"
        return int(made.manifest.rows)

    with (
        make_node(tmp_path, "HQ", str(hq_db), hq=True) as hq,
        make_node(tmp_path, "S1", backend.connection) as site,
    ):
        assert exchange(site, hq) == 10
        saved = dump(backend)
        backend.execute("INSERT INTO t (id, txt) VALUES (11, 'onze')")
        backend.execute("UPDATE t SET txt = 'changée' WHERE id = 2")
        assert exchange(site, hq) == 2
        group = rows_of(hq_db, "t")
        restore(backend, saved)
        backend.execute("INSERT INTO t (id, txt) VALUES (12, 'après la restauration')")
        with pytest.raises(Restored):
            site.export()
        site.take_back()
        assert exchange(site, hq) == 0  # nothing of the dump
        assert site.state.get_meta("unsent") == "1"
        assert exchange(site, hq) == 1  # the row made since the restore
    with Db(backend.connection) as db:
        stored = [(int(r[0]), str(r[1])) for r in db.rows("t")]
    assert stored == rows_of(hq_db, "t") == sorted([*group, (12, "après la restauration")])


def test_a_restored_siege_takes_its_rows_back_from_its_change_log(tmp_path: Path) -> None:
    """The Siège's database restored: an apply of an establishment's package into it (the
    Siège applies before it captures) leaves its mark behind, so its capture still holds.
    *Reprendre les données du groupe*: the last version of every row of its change log
    comes back — its own rows and the sites' made since the backup — with nothing logged
    again (so nothing published), and a row made since the restore travels."""
    site_db, hq_db = tmp_path / "site.db", tmp_path / "hq.db"
    for db in (site_db, hq_db):
        sql(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, txt TEXT);")
    sql(hq_db, "INSERT INTO t VALUES (1, 'siège'), (3, 'à changer');")
    with make_node(tmp_path, "HQ", str(hq_db), hq=True) as hq:
        hq.export()
        saved = tmp_path / "hq-backup.db"
        backup(hq_db, saved)
        sql(hq_db, "INSERT INTO t VALUES (2, 'après la sauvegarde');")
        sql(hq_db, "UPDATE t SET txt = 'changée' WHERE id = 3;")
        hq.export()
        with make_node(tmp_path, "S1", str(site_db)) as site:
            sql(site_db, "INSERT INTO t VALUES (100, 'du site');")
            assert hq.import_package(site.export().path).status == "applied"
        group = rows_of(hq_db, "t")
        backup(saved, hq_db)
        sql(hq_db, "INSERT INTO t VALUES (4, 'faite après la restauration');")
        with make_node(tmp_path, "S1", str(site_db)) as site:
            sql(site_db, "INSERT INTO t VALUES (101, 'livrée après la restauration');")
            assert hq.import_package(site.export().path).status == "applied"
        group.append((101, "livrée après la restauration"))
        with pytest.raises(Restored):
            hq.export()
        logged = hq.state.last_position()
        stats = hq.take_back()
        assert stats.upserts == 3 and stats.quarantined == 0  # 2, 3 and 100 back
        assert hq.state.last_position() == logged  # nothing logged again
        assert rows_of(hq_db, "t") == sorted([*group, (4, "faite après la restauration")])
        made = hq.export()  # in step: only the row made after the restore travels
    assert made.manifest.rows == 1


def test_a_database_without_the_right_to_create_the_mark_is_synchronised_unmarked(
    make_backend: Callable[[str], Backend], tmp_path: Path
) -> None:
    """PostgreSQL 15 gives no right to create tables in ``public`` to a role that does not
    own it: the node synchronises as before, without the mark (a warning says so)."""
    backend = make_backend("postgresql")
    role = f"synchro_sans_droit_{dt.datetime.now():%H%M%S%f}"
    backend.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, txt VARCHAR(100))")
    backend.execute("INSERT INTO t (id, txt) VALUES (1, 'une')")
    backend.execute(f"CREATE ROLE {role} LOGIN")
    backend.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON t TO {role}")
    backend.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    connection = backend.connection.replace("UID=postgres", f"UID={role}")
    try:
        with make_node(tmp_path, "S1", connection) as node:
            assert node.export().manifest.rows == 1
            backend.execute("INSERT INTO t (id, txt) VALUES (2, 'deux')")
            assert node.export().manifest.rows == 1
            assert node.state.get_int("mark") == 0
        assert backend.query(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", (MARK_TABLE,)
        ) == [(0,)]
    finally:
        backend.execute(f"REASSIGN OWNED BY {role} TO postgres")
        backend.execute(f"DROP OWNED BY {role}")
        backend.execute(f"DROP ROLE {role}")


def test_a_restored_site_takes_the_group_s_data_back(tmp_path: Path) -> None:
    """*Reprendre les données du groupe*: nothing of the restored copy's difference is sent,
    and the Siège sends everything again, this establishment's own rows included — those
    the restore took away come back, the rows changed since get their group version."""
    with in_step(tmp_path) as (hq, site_paths, site_db, hq_db):
        saved = tmp_path / "backup.db"
        backup(site_db, saved)
        add_articles(hq_db, 5000, 30)
        add_articles(site_db, 2000, 10)  # its own rows, sent, then lost by the restore
        sql(site_db, "UPDATE articles SET prix = '99.99' WHERE id BETWEEN 1000 AND 1004;")
        hq.run_now()
        assert automatic_run(site_paths).state is State.OK
        group = rows_of(hq_db, "articles")
        backup(saved, site_db)
        assert automatic_run(site_paths).state is State.FAILED  # held
        add_articles(site_db, 3000, 3)  # the shop sells on, until someone takes it back
        hq.run_now()
        taken = manual_run(site_paths, take_back=True)
        assert taken.state is State.OK, taken.error
        # nothing of the restored copy was sent: only the rows sold since the restore
        assert taken.rows_sent == 3
        sold = rows_of(site_db, "articles")
        assert set(group) < set(sold) and len(sold) == len(group) + 3  # all back, and more
        assert rows_of(hq_db, "articles") == sold  # the group lost nothing, got the sales
        hq.run_now()
        again = automatic_run(site_paths)
        assert again.state is State.OK and again.rows_sent == 0 and again.rows_received == 0


TAKE_BACK_CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from engine_helpers import make_node
with make_node(Path(sys.argv[2]), sys.argv[4], sys.argv[3], hq=sys.argv[4] == "HQ") as node:
    node.take_back()
"""


@pytest.mark.parametrize(
    ("code", "point"),
    [
        ("S1", "node.take_back.adopted"),  # the snapshot is the copy, the mark not raised
        ("HQ", "node.take_back.adopted"),
        ("HQ", "apply.batch"),  # the Siège's log being applied, nothing committed
    ],
)
def test_a_take_back_killed_holds_then_finishes(code: str, point: str, tmp_path: Path) -> None:
    """``kill -9`` of a real process taking the group's data back, before its mark is
    raised: the database is still behind, so an automatic export holds (nothing of the
    restored copy sent); the take-back made again ends in step."""
    db = tmp_path / "data.db"
    sql(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, txt TEXT);")
    sql(db, "INSERT INTO t VALUES (1, 'une'), (2, 'deux'), (3, 'trois');")
    saved = tmp_path / "backup.db"
    with make_node(tmp_path, code, str(db), hq=code == "HQ") as node:
        node.export()
        backup(db, saved)
        sql(db, "INSERT INTO t VALUES (4, 'quatre'); DELETE FROM t WHERE id = 1;")
        node.export()
        after = rows_of(db, "t")
    backup(saved, db)
    env = {**os.environ, "SYNCHRO_KILL_AT": point}
    tests = str(Path(__file__).resolve().parent)
    child = subprocess.run(
        [sys.executable, "-c", TAKE_BACK_CHILD, tests, str(tmp_path), str(db), code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    with make_node(tmp_path, code, str(db), hq=code == "HQ") as node:
        with pytest.raises(Restored):
            node.export()
        node.take_back()
        made = node.export()
    assert made.manifest.rows == 0
    if code == "HQ":  # its own log gave its rows back
        assert rows_of(db, "t") == after
    else:  # its package asks the Siège for everything
        assert made.manifest.meta["take_back"] is True


def test_the_siege_counts_only_the_acknowledgement_of_the_package_of_everything(
    tmp_path: Path,
) -> None:
    """While a site takes the group's data back, an older acknowledgement in flight does not
    move its position (it would skip what the restore took away)."""
    db = tmp_path / "hq.db"
    sql(db, "CREATE TABLE t (id INTEGER PRIMARY KEY);")
    with make_node(tmp_path, "HQ", str(db), hq=True) as hq:
        state = hq.state
        with state.transaction():
            state.set_meta("take_back:S1", "0")  # asked, not yet published
            assert hq.acked_after("S1", 0, 6, 100) == 0
            state.set_meta("take_back:S1", "7")  # package 7 carried everything
            assert hq.acked_after("S1", 0, 6, 100) == 0  # an older one
            assert hq.acked_after("S1", 0, 7, 120) == 120
            assert state.get_meta("take_back:S1") is None
            assert hq.acked_after("S1", 120, 8, 110) == 120  # as before: never backwards


@pytest.mark.parametrize(("word", "left"), [("", None), ("--reprendre", 7), ("--envoyer", 2)])
def test_synchro_sync_after_a_restore(word: str, left: int | None, tmp_path: Path) -> None:
    """The headless front end, a real process: ``synchro sync`` alone holds (exit 1, the
    Siège untouched); ``--reprendre`` takes the 5 rows back; ``--envoyer`` makes the
    restored copy the group's (its 5 rows deleted at the Siège)."""
    with in_step(tmp_path, site_rows=0) as (hq, site_paths, site_db, hq_db):
        backup(site_db, tmp_path / "backup.db")
        add_articles(site_db, 2000, 5)
        hq.run_now()
        assert automatic_run(site_paths).state is State.OK
        backup(tmp_path / "backup.db", site_db)
        assert automatic_run(site_paths).state is State.FAILED  # held
        hq.run_now()
        asked = [word] if word else []
        done = synchro("--config", "synchro.toml", "sync", *asked, cwd=tmp_path / "site")
        if left is None:
            assert done.returncode == 1 and "Base restaurée" in done.stdout + done.stderr
            assert rows(hq_db) == 7
            return
        assert done.returncode == 0, done.stderr + done.stdout
    assert rows_of(site_db, "articles") == rows_of(hq_db, "articles") and rows(site_db) == left


def test_a_restored_siege_holds_its_round_and_takes_its_rows_back(tmp_path: Path) -> None:
    """The Siège's database restored: the scheduled round fails and publishes nothing; its
    *Reprendre les données du groupe* (MANUELLE's question, the App's ``take-back``)
    brings back from its change log its rows and the establishment's made since the
    backup, and the next round is OK with everyone identical."""
    with in_step(tmp_path, site_rows=0, hq_rows=50) as (hq, site_paths, site_db, hq_db):
        backup(hq_db, tmp_path / "backup.db")
        add_articles(hq_db, 2000, 7)
        add_articles(site_db, 3000, 4)
        hq.run_now()
        assert automatic_run(site_paths).state is State.OK
        group = rows_of(site_db, "articles")
        assert rows_of(hq_db, "articles") == group and len(group) == 63
        backup(tmp_path / "backup.db", hq_db)
        hq.commands.put("scheduled")  # *Heure de départ*
        wait_for(lambda: hq.reports.latest(kinds=("round",))[0].state is State.RUNNING)
        scheduled = hq.reports.latest(kinds=("round",))[0]
        assert automatic_run(site_paths).state is State.FAILED  # nothing published
        wait_for(lambda: hq.reports.get(scheduled.id).state is State.FAILED, timeout=60)
        held = hq.reports.get(scheduled.id)
        assert held.details["error_kind"] == ErrorKind.RESTORED, held.error
        assert rows_of(site_db, "articles") == group  # the site lost nothing
        hq.run_now(take_back=True)
        wait_for(lambda: hq.reports.latest(kinds=("round",))[0].id != scheduled.id)
        assert automatic_run(site_paths).state is State.OK
        wait_for(lambda: hq.reports.latest(kinds=("round",))[0].state is State.OK, timeout=60)
    assert rows_of(hq_db, "articles") == rows_of(site_db, "articles") == group


def test_a_whole_machine_put_back_takes_the_group_s_data_back(tmp_path: Path) -> None:
    """The establishment's whole machine restored (its database *and* Synchro's state, an
    image or a virtual machine put back): the marks agree, but the Siège has applied
    packages this state never made. Before, every run failed « il manque des changements
    du siège » for ever and the rows made since never left the shop. Now the run says the
    post was put back (kind restored, every run until decided); *Reprendre les données du
    groupe* brings back what it had sent since, and sends what it made since."""
    image = tmp_path / "image"
    with in_step(tmp_path, site_rows=0) as (hq, site_paths, site_db, hq_db):
        shutil.copytree(tmp_path / "site", image)  # the machine's image
        for first in (2000, 3000):  # sent, then lost with the machine
            add_articles(site_db, first, 5)
            hq.run_now()
            assert automatic_run(site_paths).state is State.OK
        group = rows_of(hq_db, "articles")
        shutil.rmtree(tmp_path / "site")
        shutil.copytree(image, tmp_path / "site")  # the machine put back
        add_articles(site_db, 4000, 2)  # sold since
        for _ in range(2):
            hq.run_now()
            held = automatic_run(site_paths)
            assert held.state is State.FAILED and held.details["error_kind"] == ErrorKind.RESTORED
            assert "Poste restauré" in held.error, held.error
        hq.run_now()
        taken = manual_run(site_paths, take_back=True)
        assert taken.state is State.OK, taken.error
        assert rows_of(site_db, "articles") == rows_of(hq_db, "articles")
        assert set(group) < set(rows_of(hq_db, "articles"))  # nothing lost, the sales in
        assert {r[0] for r in rows_of(hq_db, "articles")} >= {4000, 4001}
        hq.run_now()
        assert automatic_run(site_paths).state is State.OK


@pytest.mark.parametrize(
    ("lost", "kind", "way"),
    [
        (2, ErrorKind.RESTORED, "take_back"),  # « Poste restauré »: the Siège applied more
        (2, ErrorKind.RESTORED, "send"),  # than it made; Reprendre or Envoyer, the same
        (1, ErrorKind.TWIN, "send"),  # as many as it made since: another package under
        (1, ErrorKind.TWIN, "take_back"),  # its number (two machines?); the same way out
    ],
)
def test_a_whole_machine_put_back_keeps_the_rows_changed_since(
    lost: int, kind: ErrorKind, way: str, tmp_path: Path
) -> None:
    """The whole machine put back (image), then the shop works on before anyone sees the
    held run: it changes rows the group has, and makes new ones. Its state and database
    agree, so those changes are told from the image's old values (its snapshot), and
    taking the group's data back keeps them: they reach the Siège and stay here. Before,
    the way out adopted the database and gave every row changed since the group's version
    (the shop's changes lost). What the machine had sent before it was put back comes
    back from the Siège, its own rows included."""
    image = tmp_path / "image"
    with in_step(tmp_path, site_rows=5) as (hq, site_paths, site_db, hq_db):
        shutil.copytree(tmp_path / "site", image)  # the machine's image
        add_articles(site_db, 2000, 3)  # sent, then lost with the machine
        sql(site_db, "UPDATE articles SET prix = '11.11' WHERE id = 1000;")
        for number in range(lost):
            add_articles(site_db, 2100 + number, 1)
            hq.run_now()
            assert automatic_run(site_paths).state is State.OK
        add_articles(hq_db, 5000, 2)  # the group goes on
        shutil.rmtree(tmp_path / "site")
        shutil.copytree(image, tmp_path / "site")  # the machine put back
        sql(site_db, "UPDATE articles SET prix = '22.22' WHERE id = 1001;")  # since
        add_articles(site_db, 4000, 2)
        hq.run_now()
        held = automatic_run(site_paths)
        assert held.state is State.FAILED and held.details["error_kind"] == kind, held.error
        sql(site_db, "UPDATE articles SET prix = '33.33' WHERE id = 1002;")  # held, sells on
        hq.run_now()
        held = automatic_run(site_paths)  # held again: nothing new sent while it holds
        assert held.state is State.FAILED and held.details["error_kind"] == kind, held.error
        assert held.rows_sent == 0
        hq.run_now()
        taken = manual_run(site_paths, **{way: True})
        assert taken.state is State.OK, taken.error
        for db in (site_db, hq_db):
            assert price(db, 1000) == "11.11"  # sent before, came back
            assert price(db, 1001) == "22.22"  # changed since: kept, and sent
            assert price(db, 1002) == "33.33"
        ids = {r[0] for r in rows_of(hq_db, "articles")}
        assert {2000, 2001, 2002, 2100, 4000, 4001, 5000, 5001} <= ids
        assert rows_of(site_db, "articles") == rows_of(hq_db, "articles")
        hq.run_now()
        again = automatic_run(site_paths)
        assert again.state is State.OK and again.rows_sent == 0 and again.rows_received == 0


@pytest.mark.parametrize("code", ["S1", "HQ"])
def test_a_database_in_step_is_not_taken_back(code: str, tmp_path: Path) -> None:
    """Nothing was restored: taking the group's data back would only replace this node's
    changes since the last exchange with the group's versions. Refused, nothing changed."""
    db = tmp_path / "data.db"
    sql(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, txt TEXT); INSERT INTO t VALUES (1, 'a');")
    with make_node(tmp_path, code, str(db), hq=code == "HQ") as node:
        node.export()
        sql(db, "UPDATE t SET txt = 'corrigée' WHERE id = 1;")
        with pytest.raises(SynchroError, match="n'a pas été restaurée") as refused:
            node.take_back()
        assert refused.value.kind is ErrorKind.CONFIG
        assert node.export().capture.counts["t"].updates == 1  # the change still travels
