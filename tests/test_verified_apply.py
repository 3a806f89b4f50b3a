"""Stored = sent, verified (issue 11, points 2 and 3).

Every mismatch here comes from a real database behaviour, never a fake: an SQLite trigger
that rewrites a value after the insert or ignores a delete, a MariaDB column that truncates
in a non-strict SQL mode, a MariaDB TIMESTAMP that refuses a 1950 date. The receiver reads
back what it wrote, quarantines what differs (with the column, sent and stored values),
does not send the stored value back out, tries again at the next run, and the run is
``Echec`` while a row is not applied exactly.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from engine_helpers import db, make_node

from synchro.engine.node import Node

SCHEMA = "CREATE TABLE t (id INTEGER PRIMARY KEY, nom TEXT NOT NULL, n INTEGER)"
UPPER = (  # a trigger that rewrites 'beta' after every write
    "CREATE TRIGGER upper_beta AFTER INSERT ON t WHEN new.nom = 'beta' "
    "BEGIN UPDATE t SET nom = 'BETA' WHERE id = new.id; END;"
    "CREATE TRIGGER upper_beta2 AFTER UPDATE ON t WHEN new.nom = 'beta' "
    "BEGIN UPDATE t SET nom = 'BETA' WHERE id = new.id; END;"
)
NO_UPPER = "DROP TRIGGER upper_beta; DROP TRIGGER upper_beta2;"
TOO_LONG = (
    "CREATE TRIGGER too_long BEFORE INSERT ON t WHEN length(new.nom) > 5 "
    "BEGIN SELECT RAISE(ABORT, 'nom trop long'); END"
)
KEEP = "CREATE TRIGGER keep BEFORE DELETE ON t BEGIN SELECT RAISE(IGNORE); END"


def script(path: Path, sql: str) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.executescript(sql)
    finally:
        conn.close()


def dbs(tmp_path: Path, *names: str) -> list[Path]:
    paths = [tmp_path / f"{n}.db" for n in names]
    for path in paths:
        db(path, SCHEMA)
    return paths


def hq_to(hq: Node, site: Node, tmp_path: Path) -> Any:
    """The Siège publishes to ``site``, which applies it: the ImportResult."""
    path, _manifest = hq.publish(site.code, tmp_path / f"out-{site.code}")
    return site.import_package(path)


def changelog(hq: Node, key: str) -> list[tuple[str, str, str | None]]:
    rows = hq.state.conn.execute(
        "SELECT origin, op, row_json FROM changelog WHERE tbl = 't' AND key_json = ? ORDER BY pos",
        (key,),
    )
    return [(str(o), str(op), r) for o, op, r in rows]


def test_a_value_rewritten_by_a_trigger_is_quarantined_not_echoed_and_retried(
    tmp_path: Path,
) -> None:
    h, b = dbs(tmp_path, "h", "b")
    db(h, "INSERT INTO t VALUES (1, 'alpha', 1), (2, 'beta', 2)")
    script(b, UPPER)
    with (
        make_node(tmp_path, "SIEGE", str(h), hq=True) as hq,
        make_node(tmp_path, "B", str(b)) as site,
    ):
        hq.export()
        result = hq_to(hq, site, tmp_path)
        stats = result.stats
        assert (stats.upserts, stats.quarantined, stats.mismatched) == (1, 1, 1)
        assert db(b, "SELECT * FROM t ORDER BY id") == [(1, "alpha", 1), (2, "BETA", 2)]
        [entry] = site.state.pending()
        assert (entry["tbl"], entry["key_json"], entry["kind"], entry["op"]) == (
            "t",
            "[2]",
            "mismatch",
            "U",
        )
        assert entry["origin"] == "SIEGE"
        assert json.loads(entry["columns_json"]) == [
            {"column": "nom", "sent": "beta", "stored": "BETA"}
        ]
        assert json.loads(entry["row_json"]) == [2, "beta", 2]
        assert json.loads(entry["stored_json"]) == [2, "BETA", 2]
        assert "nom" in entry["error"] and '"beta"' in entry["error"] and '"BETA"' in entry["error"]

        # The stored value is not a local change: nothing goes out; the retry fails again.
        again = site.export()
        assert again.manifest.rows == 0
        assert [q["key_json"] for q in again.capture.unapplied] == ["[2]"]
        assert again.capture.retried == []
        [entry] = site.state.pending()
        assert entry["tries"] == 1

        # The cause is fixed: the next run applies the sent value, exactly, and says so.
        script(b, NO_UPPER)
        fixed = site.export()
        assert fixed.manifest.rows == 0
        assert fixed.capture.unapplied == []
        assert [(r["key_json"], r["outcome"]) for r in fixed.capture.retried] == [
            ("[2]", "applied")
        ]
        assert db(b, "SELECT * FROM t ORDER BY id") == db(h, "SELECT * FROM t ORDER BY id")
        assert site.state.pending() == []
        assert site.export().manifest.rows == 0


def test_the_users_own_edit_of_a_divergent_row_goes_out(tmp_path: Path) -> None:
    h, b = dbs(tmp_path, "h", "b")
    db(h, "INSERT INTO t VALUES (2, 'beta', 2)")
    script(b, UPPER)
    with (
        make_node(tmp_path, "SIEGE", str(h), hq=True) as hq,
        make_node(tmp_path, "B", str(b)) as site,
    ):
        hq.export()
        assert hq_to(hq, site, tmp_path).stats.mismatched == 1
        db(b, "UPDATE t SET nom = 'gamma' WHERE id = 2")
        out = site.export()
        assert out.manifest.rows == 1  # the user's version wins and travels
        assert [(r["key_json"], r["outcome"]) for r in out.capture.retried] == [
            ("[2]", "local-change-wins")
        ]
        assert out.capture.unapplied == []
        assert site.state.pending() == []
        assert hq.import_package(out.path).status == "applied"
        assert db(h, "SELECT * FROM t") == [(2, "gamma", 2)]


def test_at_the_siege_the_change_log_keeps_the_sent_value(tmp_path: Path) -> None:
    a, h, c = dbs(tmp_path, "a", "h", "c")
    db(a, "INSERT INTO t VALUES (2, 'beta', 2)")
    script(h, UPPER)
    with (
        make_node(tmp_path, "A", str(a)) as site_a,
        make_node(tmp_path, "SIEGE", str(h), hq=True) as hq,
        make_node(tmp_path, "C", str(c)) as site_c,
    ):
        result = hq.import_package(site_a.export().path)
        assert (result.stats.quarantined, result.stats.mismatched) == (1, 1)
        assert db(h, "SELECT nom FROM t") == [("BETA",)]
        assert changelog(hq, "[2]") == [("A", "U", '[2, "beta", 2]')]
        assert hq.export().manifest.rows == 0  # the Siège does not echo its stored value
        hq_to(hq, site_c, tmp_path)
        assert db(c, "SELECT * FROM t") == [(2, "beta", 2)]  # the true value reached C
        script(h, NO_UPPER)
        fixed = hq.export()
        assert fixed.manifest.rows == 0 and fixed.capture.unapplied == []
        assert db(h, "SELECT * FROM t") == [(2, "beta", 2)]
        assert len(changelog(hq, "[2]")) == 1  # already logged with the sent value


def test_a_refused_row_at_the_siege_is_logged_with_its_origin_once_retried(
    tmp_path: Path,
) -> None:
    a, h, c = dbs(tmp_path, "a", "h", "c")
    db(a, "INSERT INTO t VALUES (1, 'court', 1), (2, 'bien trop long', 2)")
    db(h, TOO_LONG)
    with (
        make_node(tmp_path, "A", str(a)) as site_a,
        make_node(tmp_path, "SIEGE", str(h), hq=True) as hq,
        make_node(tmp_path, "C", str(c)) as site_c,
    ):
        result = hq.import_package(site_a.export().path)
        assert (result.stats.upserts, result.stats.quarantined, result.stats.mismatched) == (
            1,
            1,
            0,
        )
        [entry] = hq.state.pending()
        assert (entry["kind"], entry["origin"]) == ("refused", "A")
        assert "nom trop long" in entry["error"]
        assert changelog(hq, "[2]") == []  # not applied here: not offered to the others
        assert hq.export().capture.unapplied != []  # still refused
        db(h, "DROP TRIGGER too_long")
        assert hq.export().capture.unapplied == []
        assert changelog(hq, "[2]") == [("A", "U", '[2, "bien trop long", 2]')]
        hq_to(hq, site_c, tmp_path)
        assert db(c, "SELECT * FROM t ORDER BY id") == db(a, "SELECT * FROM t ORDER BY id")


def test_a_delete_the_database_ignores_is_quarantined_and_retried(tmp_path: Path) -> None:
    h, b = dbs(tmp_path, "h", "b")
    db(h, "INSERT INTO t VALUES (1, 'alpha', 1), (2, 'beta', 2)")
    with (
        make_node(tmp_path, "SIEGE", str(h), hq=True) as hq,
        make_node(tmp_path, "B", str(b)) as site,
    ):
        hq.export()
        hq_to(hq, site, tmp_path)
        db(b, KEEP)
        db(h, "DELETE FROM t WHERE id = 1")
        hq.export()
        result = hq_to(hq, site, tmp_path)
        assert (result.stats.deletes, result.stats.quarantined, result.stats.mismatched) == (
            0,
            1,
            1,
        )
        [entry] = site.state.pending()
        assert (entry["op"], entry["key_json"]) == ("D", "[1]")
        assert "toujours présente" in entry["error"]
        assert site.export().manifest.rows == 0  # the kept row is not sent back as an insert
        db(b, "DROP TRIGGER keep")
        fixed = site.export()
        assert fixed.manifest.rows == 0 and fixed.capture.unapplied == []
        assert db(b, "SELECT id FROM t") == [(2,)]


def test_a_quarantined_row_that_no_longer_fits_the_table_never_stops_the_export(
    tmp_path: Path,
) -> None:
    h, b = dbs(tmp_path, "h", "b")
    db(h, "INSERT INTO t VALUES (2, 'beta', 2)")
    script(b, UPPER)
    with make_node(tmp_path, "SIEGE", str(h), hq=True) as hq:
        hq.export()
        with make_node(tmp_path, "B", str(b)) as site:
            assert hq_to(hq, site, tmp_path).stats.mismatched == 1
    db(b, "ALTER TABLE t ADD COLUMN extra TEXT")  # the sent row has one value too few now
    with make_node(tmp_path, "B", str(b)) as site:
        out = site.export()  # (every row's hash changed with the new column: all go out)
        [entry] = out.capture.unapplied
        assert "nouvel essai impossible" in entry["error"]


def test_an_older_state_database_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old-state.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO meta VALUES ('schema_version', '1'), ('instance', 'x');"
        "CREATE TABLE quarantine(id INTEGER PRIMARY KEY, at TEXT NOT NULL,"
        " package TEXT NOT NULL, tbl TEXT NOT NULL, key_json TEXT NOT NULL, row_json TEXT,"
        " error TEXT NOT NULL, UNIQUE(package, tbl, key_json));"
        "INSERT INTO quarantine VALUES (1, 'x', 'export', 't', '[1]', NULL, 'e'),"
        " (2, 'x', 'A#1', 't', '[2]', '[2, \"b\", 2]', 'refusée');"
    )
    conn.commit()
    conn.close()
    from synchro.state import SCHEMA_VERSION, StateDB

    state = StateDB(path)
    try:
        assert state.get_meta("schema_version") == str(SCHEMA_VERSION)
        kinds = {q["package"]: q["kind"] for q in state.quarantined()}
        assert kinds == {"export": "held", "A#1": "refused"}
        assert [q["key_json"] for q in state.pending()] == ["[2]"]
    finally:
        state.close()


# -- the run's state: Rapport, tray, round -------------------------------------------------


def closed_rounds(g: Any) -> list[Any]:
    """The Siège's round rows once the last one is final (its close may end just after the
    site's run: the site downloads the package before the round's row is written)."""
    import time

    from synchro.reports import State

    for _ in range(400):
        rounds = g.reports.latest(10, kinds=("round",))
        if rounds and rounds[0].state is not State.RUNNING:
            return list(rounds)
        time.sleep(0.05)
    raise AssertionError("the round never closed")


def test_a_site_run_with_a_row_stored_differently_is_echec_until_fixed(tmp_path: Path) -> None:
    from rounds_helpers import group

    from synchro.engine.events import StateChanged
    from synchro.reports import State

    with group(tmp_path, ["3615"], schema=SCHEMA + ";") as g:
        db(g.hq.db, "INSERT INTO t VALUES (1, 'alpha', 1), (2, 'beta', 2)")
        script(g.sites["3615"].db, UPPER)
        events: list[object] = []
        g.open_round()
        record = g.run("3615", emit=events.append)
        assert record.state is State.FAILED
        assert record.quarantined == 1
        assert record.details["not_applied"] == {"applied": 1, "sent": 0}
        [row] = record.details["quarantined"]
        assert (row["tbl"], row["key_json"], row["kind"]) == ("t", "[2]", "mismatch")
        assert json.loads(row["columns_json"]) == [
            {"column": "nom", "sent": "beta", "stored": "BETA"}
        ]
        tray = [e for e in events if isinstance(e, StateChanged)]
        assert tray[-1].state == "failed" and tray[-1].message == record.error, record.error
        assert record.error.startswith("1 ligne non appliquée — voir le rapport")
        assert db(g.sites["3615"].db, "SELECT * FROM t WHERE id = 1") == [(1, "alpha", 1)]

        script(g.sites["3615"].db, NO_UPPER)
        g.open_round()
        again = g.run("3615")
        assert (again.state, again.error, again.quarantined) == (State.OK, "", 0)
        assert [(r["key_json"], r["outcome"]) for r in again.details["retried"]] == [
            ("[2]", "applied")
        ]
        assert db(g.sites["3615"].db, "SELECT * FROM t ORDER BY id") == db(
            g.hq.db, "SELECT * FROM t ORDER BY id"
        )


def test_a_row_stored_differently_at_the_siege_fails_the_site_and_the_round(
    tmp_path: Path,
) -> None:
    from rounds_helpers import group

    from synchro.reports import State

    with group(tmp_path, ["3615"], schema=SCHEMA + ";") as g:
        db(g.sites["3615"].db, "INSERT INTO t VALUES (1, 'alpha', 1), (2, 'beta', 2)")
        script(g.hq.db, UPPER)
        g.open_round()
        g.run("3615")
        rounds = closed_rounds(g)
        members = g.reports.for_round(rounds[0].id)
        site_row = next(r for r in members if r.kind == "site-in-round")
        assert site_row.state is State.FAILED
        assert site_row.details["not_applied"] == {"applied": 1, "sent": 0}
        assert rounds[0].state is State.FAILED and "3615" in rounds[0].error


NO_SIEGE = (  # the Serveur's database refuses the Siège's version of row 2
    "CREATE TRIGGER no_siege BEFORE UPDATE ON t WHEN new.nom = 'siege' "
    "BEGIN SELECT RAISE(ABORT, 'refusé ici'); END"
)


def conflict_refused(tmp_path: Path) -> tuple[Path, Path, Node, Node]:
    """Row 2 changed at B ('local') and at the Siège ('siege') in the same period: B's
    apply gives the Siège's version the win (``hq-wins``, 'local' logged as the loser),
    and B's database refuses to store it."""
    h, b = dbs(tmp_path, "h", "b")
    db(h, "INSERT INTO t VALUES (2, 'alpha', 1)")
    hq = make_node(tmp_path, "SIEGE", str(h), hq=True)
    site = make_node(tmp_path, "B", str(b))
    hq.export()
    hq_to(hq, site, tmp_path)
    db(b, "UPDATE t SET nom = 'local' WHERE id = 2")
    db(h, "UPDATE t SET nom = 'siege' WHERE id = 2")
    hq.export()
    script(b, NO_SIEGE)
    result = hq_to(hq, site, tmp_path)
    assert (result.stats.conflicts, result.stats.quarantined) == (1, 1)
    [conflict] = site.state.conflicts()
    assert (conflict["winner"], conflict["loser"]) == ("SIEGE", "B")
    return h, b, hq, site


def test_a_conflicts_loser_does_not_travel_while_the_winner_is_set_aside(
    tmp_path: Path,
) -> None:
    """The version that lost a conflict stays where it is while the winner waits in the
    quarantine: it is not taken for the user's change, sent to the Siège and on to every
    site — against the rule and the conflict log — and the winner is tried again until it
    is stored. Before, B's next run sent 'local' out and dropped the Siège's version."""
    h, b, hq, site = conflict_refused(tmp_path)
    with hq, site:
        out = site.export()
        assert out.manifest.rows == 0  # the loser does not travel
        assert [e["key_json"] for e in out.capture.unapplied] == ["[2]"]
        assert out.capture.retried == []
        script(b, "DROP TRIGGER no_siege")
        fixed = site.export()
        assert fixed.manifest.rows == 0
        assert [(r["key_json"], r["outcome"]) for r in fixed.capture.retried] == [
            ("[2]", "applied")
        ]
        assert site.state.pending() == []
    assert db(b, "SELECT * FROM t") == db(h, "SELECT * FROM t") == [(2, "siege", 1)]


def test_the_users_edit_after_the_winner_was_set_aside_goes_out(tmp_path: Path) -> None:
    """An edit the user makes after the conflict was decided is a newer change: it wins
    and travels (as any edit made after a version was applied), the set-aside version is
    dropped and the run says so."""
    h, b, hq, site = conflict_refused(tmp_path)
    with hq, site:
        db(b, "UPDATE t SET nom = 'corrigé' WHERE id = 2")
        out = site.export()
        assert out.manifest.rows == 1
        assert [(r["key_json"], r["outcome"]) for r in out.capture.retried] == [
            ("[2]", "local-change-wins")
        ]
        assert site.state.pending() == []
        assert hq.import_package(out.path).status == "applied"
    assert db(b, "SELECT * FROM t") == db(h, "SELECT * FROM t") == [(2, "corrigé", 1)]
