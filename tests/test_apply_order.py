"""Rows of a package that need a row after them: a code another row gives up.

A package holds a table's rows in key order. A hotel renames room 2 from « X » to « Z »
and gives « X » to a new room 1: the new room comes first, while room 2 still holds
« X », so every back end refused it (unique). Before, it was set aside: the run not OK,
the room a day late. Now a refused row waits until the package moves on to another
table and goes again while any goes in (``apply._TableApplier.finish``); two rooms that
swap their guests (unique, but may be empty) go in two steps. Real databases
through their drivers; the rows read back through the test's own connections.
"""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from backends import Backend
from engine_helpers import siege_and_site
from pair_helpers import cli_export, cli_site_and_siege, set_aside, synchro

KINDS = ["postgresql", "mariadb", "sqlite"]
CODES = [  # a room's code, once in the hotel
    "CREATE TABLE chambres (id INT PRIMARY KEY, code VARCHAR(10) NOT NULL UNIQUE,"
    " nom VARCHAR(40) NOT NULL)"
]
GUESTS = [  # a guest per room at most, or none
    "CREATE TABLE chambres (id INT PRIMARY KEY, nom VARCHAR(40) NOT NULL,"
    " client VARCHAR(40) UNIQUE)"
]
SWAP = [  # two guests swap rooms, through a moment without one
    "UPDATE chambres SET client = NULL WHERE id = 1",
    "UPDATE chambres SET client = 'Zoé « 漢字 »' WHERE id = 2",
    "UPDATE chambres SET client = 'Ана' WHERE id = 1",
]
TWO_GUESTS = "INSERT INTO chambres VALUES (1, 'Mer', 'Zoé « 漢字 »'), (2, 'Jardin', 'Ана')"


SWAP_CODES = [  # two rooms swap their codes, through a third one
    "UPDATE chambres SET code = 'T' WHERE id = 1",
    "UPDATE chambres SET code = 'X' WHERE id = 2",
    "UPDATE chambres SET code = 'Z' WHERE id = 1",
]


def _same(a: Backend, b: Backend, table: str = "chambres") -> bool:
    return set(a.query(f"SELECT * FROM {table}")) == set(b.query(f"SELECT * FROM {table}"))


@pytest.mark.parametrize("kind", KINDS)
def test_a_code_given_up_by_one_room_goes_to_a_new_room_in_the_same_package(
    tmp_path: Path, make_backend: Callable[[str], Backend], kind: str
) -> None:
    hq_db, site_db = make_backend(kind), make_backend(kind)
    with siege_and_site(tmp_path, hq_db, site_db, CODES) as (hq, site, send):
        hq_db.execute("INSERT INTO chambres VALUES (2, 'X', 'Suite « Ωμέγα » 漢字')")
        assert send().stats.upserts == 1
        hq_db.execute("UPDATE chambres SET code = 'Z' WHERE id = 2")
        hq_db.execute("INSERT INTO chambres VALUES (1, 'X', 'Nouvelle 🛏')")
        answer = send()
        assert site.state.quarantined() == [], site.state.quarantined()
        assert answer.stats.upserts == 2 and answer.stats.quarantined == 0, answer
        assert _same(hq_db, site_db)
        sent = site.export()
        assert sent.capture.rows == 0
        hq.import_package(sent.path)

        # Two rooms swap their codes (the hotel's program went through a third one): no
        # order of the two writes goes in, and a code cannot be empty. Before, both were
        # set aside at every run. Now they go in two steps through stand-in codes.
        for statement in SWAP_CODES:
            hq_db.execute(statement)
        swap = send()
        assert site.state.quarantined() == [], site.state.quarantined()
        assert swap.stats.quarantined == 0 and swap.stats.upserts == 2, swap
        assert sorted(site_db.query("SELECT id, code FROM chambres")) == [(1, "Z"), (2, "X")]
        assert _same(hq_db, site_db)
        assert site.export().capture.rows == 0  # the stand-ins were never a change of its own


MENU = [  # a dish's place on its menu: once per menu, never empty
    "CREATE TABLE plats (id INT PRIMARY KEY, carte INT NOT NULL, place SMALLINT NOT NULL,"
    " nom VARCHAR(40) NOT NULL, UNIQUE (carte, place))"
]


@pytest.mark.parametrize("kind", [*KINDS, "sqlite-odbc"])
def test_dishes_that_swap_their_places_on_the_menu_go_in_two_steps(
    tmp_path: Path, make_backend: Callable[[str], Backend], kind: str
) -> None:
    """Three dishes move round their places on a menu (a unique pair of numbers that
    cannot be empty), as a restaurant reorders its menu every week. Step 1 gives each a
    stand-in place from the far end of a SMALLINT, then each goes whole; a dish of
    another menu keeps its place."""
    hq_db, site_db = make_backend(kind), make_backend(kind)
    with siege_and_site(tmp_path, hq_db, site_db, MENU) as (_hq, site, send):
        hq_db.execute(
            "INSERT INTO plats VALUES (1, 7, 1, 'Soupe'), (2, 7, 2, 'Tajine « 羊 »'),"
            " (3, 7, 3, 'Crème brûlée'), (4, 8, 1, 'Café')"
        )
        assert send().stats.upserts == 4
        for statement in (
            "UPDATE plats SET place = 0 WHERE id = 1",
            "UPDATE plats SET place = 1 WHERE id = 3",
            "UPDATE plats SET place = 3 WHERE id = 2",
            "UPDATE plats SET place = 2 WHERE id = 1",
        ):
            hq_db.execute(statement)
        moved = send()
        assert site.state.quarantined() == [], site.state.quarantined()
        assert moved.stats.upserts == 3 and moved.stats.quarantined == 0, moved
        assert _same(hq_db, site_db, "plats")
        assert sorted(site_db.query("SELECT id, place FROM plats")) == [
            (1, 2),
            (2, 3),
            (3, 1),
            (4, 1),
        ]
        assert site.export().capture.rows == 0


@pytest.mark.parametrize("kind", [*KINDS, "sqlite-odbc"])
def test_two_rooms_that_swap_their_guests_go_in_two_steps(
    tmp_path: Path, make_backend: Callable[[str], Backend], kind: str
) -> None:
    """A guest per room at most (a unique column that can be empty): two guests swap
    rooms. Whichever room goes first, the other still holds its new guest: before, both
    were set aside at every run. Now they go in two steps, as the hotel's program made
    them (``engine.two_steps``): the guests emptied, then each room whole."""
    hq_db, site_db = make_backend(kind), make_backend(kind)
    with siege_and_site(tmp_path, hq_db, site_db, GUESTS) as (_hq, site, send):
        hq_db.execute(TWO_GUESTS)
        hq_db.execute("INSERT INTO chambres VALUES (3, 'Cour', NULL), (4, 'Toit', NULL)")
        assert send().stats.upserts == 4
        for statement in SWAP:
            hq_db.execute(statement)
        swap = send()
        assert site.state.quarantined() == [], site.state.quarantined()
        assert swap.stats.upserts == 2 and swap.stats.quarantined == 0, swap
        assert _same(hq_db, site_db)
        sent = site.export()
        assert sent.capture.rows == 0  # the emptied guests were never a change of its own


@pytest.mark.parametrize("kind", KINDS)
def test_a_swap_set_aside_goes_in_at_the_retry_once_the_refusal_is_lifted(
    tmp_path: Path, make_backend: Callable[[str], Backend], kind: str
) -> None:
    """The swap of two guests came with names the receiver refused (a rule of its own):
    both rooms set aside. Once the rule is lifted, the retry at the start of the next
    run tried each room alone, and each was refused, the other still holding its guest,
    at every run. The retry now lets refused rows wait and go in two steps too."""
    hq_db, site_db = make_backend(kind), make_backend(kind)
    rule, lift = _REFUSE_NAME[kind == "sqlite"]
    with siege_and_site(tmp_path, hq_db, site_db, GUESTS) as (_hq, site, send):
        site_db.execute(rule)
        hq_db.execute(TWO_GUESTS)
        assert send().stats.upserts == 2
        for statement in SWAP:
            hq_db.execute(statement)
        hq_db.execute("UPDATE chambres SET nom = 'refusée, Mer' WHERE id = 1")
        hq_db.execute("UPDATE chambres SET nom = 'refusé, Jardin' WHERE id = 2")
        assert send().stats.quarantined == 2
        site_db.execute(lift)
        sent = site.export()  # the retry first
        assert site.state.quarantined() == [], site.state.quarantined()
        assert len(sent.capture.retried) == 2 and sent.capture.rows == 0
        assert _same(hq_db, site_db)


_REFUSE_NAME = {  # a rule of the receiver's that refuses a name, and its lifting
    True: (
        "CREATE TRIGGER non_refus BEFORE UPDATE ON chambres WHEN NEW.nom LIKE 'refus%'"
        " BEGIN SELECT RAISE(ABORT, 'refusé'); END",
        "DROP TRIGGER non_refus",
    ),
    False: (
        "ALTER TABLE chambres ADD CONSTRAINT non_refus CHECK (nom NOT LIKE 'refus%')",
        "ALTER TABLE chambres DROP CONSTRAINT non_refus",
    ),
}


@pytest.mark.parametrize("kind", [*KINDS, "sqlite-odbc"])
def test_a_night_cancelled_and_booked_again_in_the_same_round(
    tmp_path: Path, make_backend: Callable[[str], Backend], kind: str
) -> None:
    """A room once a night (unique room and day): a booking cancelled and the night
    booked again for another guest, in the same round. A package carries its deletes
    after every table's rows, so the new booking came while the cancelled one still held
    the night: set aside at every back end, the run not OK. Now refused rows wait for the
    end of the package, after the deletes."""
    nights = [
        "CREATE TABLE nuits (id INT PRIMARY KEY, chambre INT NOT NULL, jour DATE NOT NULL,"
        " client VARCHAR(40) NOT NULL, UNIQUE (chambre, jour))",
        "CREATE TABLE paiements (id INT PRIMARY KEY, montant INT NOT NULL)",
    ]
    hq_db, site_db = make_backend(kind), make_backend(kind)
    with siege_and_site(tmp_path, hq_db, site_db, nights) as (_hq, site, send):
        hq_db.execute("INSERT INTO nuits VALUES (5, 101, '2026-12-24', 'Zoé « 漢字 »')")
        assert send().stats.upserts == 1
        hq_db.execute("DELETE FROM nuits WHERE id = 5")
        hq_db.execute("INSERT INTO nuits VALUES (9, 101, '2026-12-24', 'Ана 🎄')")
        hq_db.execute("INSERT INTO paiements VALUES (1, 120)")  # (a table after it)
        again = send()
        assert site.state.quarantined() == [], site.state.quarantined()
        assert (again.stats.upserts, again.stats.deletes, again.stats.quarantined) == (2, 1, 0)
        held = [(int(r[0]), str(r[1])) for r in site_db.query("SELECT id, client FROM nuits")]
        assert held == [(9, "Ана 🎄")]


def test_refused_rows_beyond_what_a_table_keeps_waiting_are_set_aside_at_once(
    tmp_path: Path, make_backend: Callable[[str], Backend], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A receiver that refuses a whole table (a rule of its own) would keep every row of
    it in memory until the end of the package: a table keeps at most ``WAIT_AT_MOST``
    waiting, the others are set aside at once. None is lost, each is reported, and a
    room whose code another gives up still goes in (it waited)."""
    from synchro.engine import apply

    monkeypatch.setattr(apply, "WAIT_AT_MOST", 3)
    hq_db, site_db = make_backend("sqlite"), make_backend("sqlite")
    with siege_and_site(tmp_path, hq_db, site_db, CODES) as (_hq, site, send):
        site_db.execute(
            "CREATE TRIGGER non_refus BEFORE INSERT ON chambres WHEN NEW.nom LIKE 'refus%'"
            " BEGIN SELECT RAISE(ABORT, 'refusé'); END"
        )
        hq_db.execute("INSERT INTO chambres VALUES (50, 'X', 'Suite')")
        send()
        hq_db.execute("UPDATE chambres SET code = 'Z' WHERE id = 50")
        hq_db.execute("INSERT INTO chambres VALUES (1, 'X', 'Nouvelle')")
        for i in range(2, 10):
            hq_db.execute("INSERT INTO chambres VALUES (?, ?, ?)", (i, f"R{i}", f"refusée {i}"))
        answer = send()
        assert answer.stats.quarantined == 8 and answer.stats.upserts == 2, answer
        aside = site.state.quarantined()
        # In the order they were set aside: those beyond the three waiting (rooms 1, 2
        # and 3) at once, then 2 and 3 at the end of the package.
        by_time = [int(q["key_json"].strip("[]")) for q in sorted(aside, key=lambda q: q["id"])]
        assert by_time == [4, 5, 6, 7, 8, 9, 2, 3]
        assert all("refusé" in q["error"] for q in aside)
        assert sorted(site_db.query("SELECT id, code FROM chambres")) == [(1, "X"), (50, "Z")]


def test_an_import_killed_while_the_stand_in_codes_are_in_leaves_none_of_them(
    tmp_path: Path, make_backend: Callable[[str], Backend]
) -> None:
    """``synchro import`` at a Siège on PostgreSQL, SIGKILLed (``SYNCHRO_KILL_AT``) when
    two rooms that swap codes hold their stand-in codes (``two_steps``, step 1): the
    rooms keep their old codes, no stand-in stays; run again, the codes swapped, nothing
    set aside; a third time, nothing applied twice."""
    hq_db = make_backend("postgresql")
    hq_db.execute(CODES[0])
    site, hq = tmp_path / "site.toml", tmp_path / "siege.toml"
    with sqlite3.connect(site.with_suffix(".db")) as db:
        db.execute(CODES[0])
        db.execute("INSERT INTO chambres VALUES (1, 'X', 'Mer « 海 »'), (2, 'Z', 'Jardin')")
    db.close()
    cli_site_and_siege(tmp_path, site, hq, hq_db.connection)
    for number, statements in enumerate(([], SWAP_CODES)):
        with sqlite3.connect(site.with_suffix(".db")) as db:
            for statement in statements:
                db.execute(statement)
        db.close()
        cli_export(site, tmp_path / f"envoi{number}.pkg")
    first = synchro("--config", str(hq), "import", str(tmp_path / "envoi0.pkg"), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    swap = str(tmp_path / "envoi1.pkg")
    killed = synchro("--config", str(hq), "import", swap, cwd=tmp_path,
                     env={"SYNCHRO_KILL_AT": "apply.two_steps"})  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert sorted(hq_db.query("SELECT id, code FROM chambres")) == [(1, "X"), (2, "Z")]
    for _time in range(2):
        again = synchro("--config", str(hq), "import", swap, cwd=tmp_path)
        assert again.returncode == 0, again.stdout + again.stderr
        assert sorted(hq_db.query("SELECT id, code FROM chambres")) == [(1, "Z"), (2, "X")]
    assert set_aside(hq) == []
