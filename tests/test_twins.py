"""Two machines sending as one establishment (a server copied, both left running): the one
whose package the Siège did not take keeps it, holds, and sends it again once a person
says so (``engine.twins``). Before, it saw its number acknowledged and dropped its
package: its rows never travelled and its snapshot said them sent.

Real SQLite files; the engine's nodes, then the real Siège (App, FTPS server, round) and
real establishment runs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
from engine_helpers import make_node
from rounds_helpers import rows, sql
from test_app import logging_set_up, wait_for  # noqa: F401 (autouse)
from test_mass_deletes import add_articles, automatic_run, in_step, manual_run

from synchro.app import App
from synchro.config.model import Role
from synchro.config.store import load_config, save_config
from synchro.engine.marks import StateBehind
from synchro.engine.twins import TWIN, SentByAnother
from synchro.errors import ErrorKind, PackageError
from synchro.mail.message import build_report_message
from synchro.platform.paths import NodePaths, paths_beside
from synchro.report_summary import cause_lines
from synchro.reports import State

ITEMS = "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"


def add(db: Path, *ids: int) -> None:
    sql(db, "".join(f"INSERT INTO items VALUES ({i}, 'article {i} — ü');" for i in ids))


def copy_node(tmp_path: Path, site_db: Path) -> Path:
    """The site's machine copied: its database and Synchro's state, beside the first."""
    copy = tmp_path / "copie"
    copy.mkdir()
    shutil.copy2(site_db, copy / site_db.name)
    shutil.copytree(tmp_path / "node-S1", copy / "node-S1")
    return copy / site_db.name


def nodes_in_step(tmp_path: Path, *first: int) -> tuple[Path, Path]:
    """S1 and the Siège (``items``), S1 holding items ``first``, after one exchange."""
    site_db, hq_db = tmp_path / "s1.db", tmp_path / "hq.db"
    for db in (site_db, hq_db):
        sql(db, ITEMS)
    add(site_db, *first)
    with (
        make_node(tmp_path, "S1", str(site_db)) as site,
        make_node(tmp_path, "HQ", str(hq_db), hq=True) as hq,
    ):
        assert hq.import_package(site.export().path).status == "applied"
        assert site.import_package(hq.publish("S1", tmp_path / "out").path).status == "applied"
    return site_db, hq_db


class Held(NamedTuple):
    site_db: Path
    copy_db: Path
    hq_db: Path
    refused: Path  # the copy's package n° 2, the Siège took the other machine's


def held_copy(tmp_path: Path) -> Held:
    """S1 in step with the Siège, then copied; both machines make package n° 2, the Siège
    takes the first's and refuses the copy's, then answers S1: the copy holds."""
    site_db, hq_db = nodes_in_step(tmp_path, 1, 2, 3)
    out = tmp_path / "out"
    copy_db = copy_node(tmp_path, site_db)
    add(site_db, 10)
    add(copy_db, 20)
    add(hq_db, 30)  # the group goes on meanwhile
    with (
        make_node(tmp_path, "S1", str(site_db)) as first,
        make_node(copy_db.parent, "S1", str(copy_db)) as second,
        make_node(tmp_path, "HQ", str(hq_db), hq=True) as hq,
    ):
        mine, theirs = first.export(), second.export()
        assert mine.manifest.sequence == theirs.manifest.sequence == 2
        assert hq.import_package(mine.path).status == "applied"
        with pytest.raises(PackageError, match="une autre machine envoie sous le code S1"):
            hq.import_package(theirs.path)
        hq.export()
        answer = hq.publish("S1", out).path
        assert first.import_package(answer).status == "applied"
        assert first.state.outbox() == []  # its own: acknowledged, dropped
        with pytest.raises(SentByAnother, match="le siège a intégré sous le n° 2") as held:
            second.import_package(answer)
        assert held.value.kind is ErrorKind.TWIN
        assert [s.sequence for s in second.state.outbox()] == [2]  # kept, not dropped
        assert theirs.path.exists()
        assert 30 not in [r[0] for r in rows(copy_db, "items")]  # nothing applied
        with pytest.raises(SentByAnother):  # and nothing more sent, at every run
            second.export()
        with pytest.raises(SentByAnother):
            second.import_package(answer)
    return Held(site_db, copy_db, hq_db, theirs.path)


def sent_again(tmp_path: Path, held: Held) -> None:
    """The copy's way out done (``take_back``): its package under n° 3 applied by the
    Siège, its request for everything answered; both databases end the same."""
    with (
        make_node(held.copy_db.parent, "S1", str(held.copy_db)) as second,
        make_node(tmp_path, "HQ", str(held.hq_db), hq=True) as hq,
    ):
        again = second.state.outbox()
        assert [s.sequence for s in again] == [3]  # after the Siège's n° 2 of S1
        assert hq.import_package(again[0].path).status == "applied"
        asking = second.export()  # asks the Siège for the group's data
        assert asking.manifest.sequence == 4 and asking.manifest.meta.get("take_back")
        assert hq.import_package(asking.path).status == "applied"
        hq.export()
        assert second.import_package(hq.publish("S1", tmp_path / "out").path).status == "applied"
        assert second.state.outbox() == []
        assert second.export().manifest.rows == 0
    assert [r[0] for r in rows(held.hq_db, "items")] == [1, 2, 3, 10, 20, 30]
    assert rows(held.copy_db, "items") == rows(held.hq_db, "items")  # the other's 10 too


def test_the_package_the_siege_did_not_take_is_kept_held_and_sent_again(tmp_path: Path) -> None:
    held = held_copy(tmp_path)
    with make_node(held.copy_db.parent, "S1", str(held.copy_db)) as second:
        second.take_back()  # MANUELLE's Envoyer or Reprendre, the other machine stopped
    assert not held.refused.exists()
    sent_again(tmp_path, held)


def test_the_other_machine_going_on_keeps_the_copy_held_then_numbered_after_it(
    tmp_path: Path,
) -> None:
    """The other machine is not stopped at once: its packages n° 3 and 4 are applied while
    the copy holds. The copy, whose state made only n° 2, is not taken for a post put back
    (« Poste restauré »: its kept package would have been dropped); it still holds, and
    its package goes again after the Siège's n° 4."""
    held = held_copy(tmp_path)
    out = tmp_path / "out"
    with (
        make_node(tmp_path, "S1", str(held.site_db)) as first,
        make_node(held.copy_db.parent, "S1", str(held.copy_db)) as second,
        make_node(tmp_path, "HQ", str(held.hq_db), hq=True) as hq,
    ):
        for row in (11, 12):
            add(held.site_db, row)
            assert hq.import_package(first.export().path).status == "applied"
        hq.export()
        answer = hq.publish("S1", out).path
        assert first.import_package(answer).status == "applied"
        with pytest.raises(SentByAnother, match="sous le n° 2 un autre paquet"):
            second.import_package(answer)
        assert [s.sequence for s in second.state.outbox()] == [2]
        assert second.state.get_meta(TWIN) == "4"  # the Siège's newest of S1, to go after
        second.take_back()
        again = second.state.outbox()
        assert [s.sequence for s in again] == [5]
        assert hq.import_package(again[0].path).status == "applied"
        assert hq.import_package(second.export().path).status == "applied"  # everything, please
        hq.export()
        assert second.import_package(hq.publish("S1", out).path).status == "applied"
    assert [r[0] for r in rows(held.hq_db, "items")] == [1, 2, 3, 10, 11, 12, 20, 30]
    assert rows(held.copy_db, "items") == rows(held.hq_db, "items")


def test_a_package_the_siege_applied_as_it_is_is_not_sent_again(tmp_path: Path) -> None:
    """The machine copied while its package n° 2 waited in the outbox: the Siège applied
    that very file from the first machine, then its n° 3, which renamed item 10. The copy
    holds for its own n° 3; its n° 2 is acknowledged (same bytes) and dropped, not sent
    again after the first machine's n° 3 — where it would have put the old name back at
    the Siège, and so in every establishment."""
    site_db, hq_db = nodes_in_step(tmp_path, 1)
    out = tmp_path / "out"
    with make_node(tmp_path, "S1", str(site_db)) as site:
        add(site_db, 10)
        assert site.export().manifest.sequence == 2  # waits in the outbox
    copy_db = copy_node(tmp_path, site_db)
    sql(site_db, "UPDATE items SET name = 'renamed' WHERE id = 10;")
    add(copy_db, 20)
    with (
        make_node(tmp_path, "S1", str(site_db)) as first,
        make_node(copy_db.parent, "S1", str(copy_db)) as second,
        make_node(tmp_path, "HQ", str(hq_db), hq=True) as hq,
    ):
        renamed = first.export()
        assert renamed.manifest.sequence == 3
        for entry in first.state.outbox():
            assert hq.import_package(entry.path).status == "applied"
        theirs = second.export()
        assert theirs.manifest.sequence == 3
        with pytest.raises(PackageError, match="une autre machine envoie sous le code S1"):
            hq.import_package(theirs.path)
        hq.export()
        answer = hq.publish("S1", out).path
        with pytest.raises(SentByAnother, match="sous le n° 3 un autre paquet"):
            second.import_package(answer)
        assert [s.sequence for s in second.state.outbox()] == [3]  # n° 2: the Siège's
        second.take_back()
        again = second.state.outbox()
        assert [s.sequence for s in again] == [4]
        for entry in again:
            assert hq.import_package(entry.path).status == "applied"
        assert hq.import_package(second.export().path).status == "applied"
        hq.export()
        assert second.import_package(hq.publish("S1", out).path).status == "applied"
    assert rows(hq_db, "items") == [(1, "article 1 — ü"), (10, "renamed"), (20, "article 20 — ü")]
    assert rows(copy_db, "items") == rows(hq_db, "items")


def machine_put_back(tmp_path: Path, *first: int) -> tuple[Path, Path]:
    """S1 in step with the Siège holding items ``first``, its machine imaged; its packages
    n° 2 and 3 (items 10 and 11) applied by the Siège; then the machine put back to the
    image. Returns the site's and the Siège's databases."""
    site_db, hq_db = nodes_in_step(tmp_path, *first)
    image = tmp_path / "image"
    shutil.copytree(tmp_path / "node-S1", image / "node-S1")
    shutil.copy2(site_db, image / "s1.db")
    with (
        make_node(tmp_path, "S1", str(site_db)) as site,
        make_node(tmp_path, "HQ", str(hq_db), hq=True) as hq,
    ):
        for row in (10, 11):  # sent and applied, then lost with the machine
            add(site_db, row)
            assert hq.import_package(site.export().path).status == "applied"
    shutil.rmtree(tmp_path / "node-S1")
    shutil.copytree(image / "node-S1", tmp_path / "node-S1")
    shutil.copy2(image / "s1.db", site_db)
    return site_db, hq_db


def put_back_held(tmp_path: Path) -> tuple[Path, Path]:
    """The machine put back (its database and state from an image) after the Siège applied
    its n° 2 and 3: its next package, n° 2 again, is refused; the Siège's answer finds the
    state behind (« Poste restauré »). From then on it exports nothing (a package numbered
    4 now would reach the Siège before its kept n° 2, whose older versions would then win
    there). Since the restore item 1 was renamed and item 3 deleted (the kept package holds
    an update and a delete). Returns the site's and the Siège's databases."""
    site_db, hq_db = machine_put_back(tmp_path, 1, 2, 3)
    out = tmp_path / "out"
    sql(site_db, "UPDATE items SET name = 'since' WHERE id = 1; DELETE FROM items WHERE id = 3;")
    with (
        make_node(tmp_path, "S1", str(site_db)) as site,
        make_node(tmp_path, "HQ", str(hq_db), hq=True) as hq,
    ):
        kept = site.export()
        assert kept.manifest.sequence == 2
        with pytest.raises(PackageError):
            hq.import_package(kept.path)
        hq.export()
        answer = hq.publish("S1", out).path
        with pytest.raises(StateBehind):
            site.import_package(answer)
        sql(site_db, "UPDATE items SET name = 'later' WHERE id = 2;")
        with pytest.raises(StateBehind):  # held: nothing numbered before the kept one
            site.export()
        assert [s.sequence for s in site.state.outbox()] == [2]
    return site_db, hq_db


def put_back_sent_again(tmp_path: Path, site_db: Path, hq_db: Path) -> None:
    """After the way out: the kept package is n° 4 (after the Siège's n° 3), the rows
    changed since the hold are captured after it with the request for everything; the
    Siège applies both; both databases end with every change, none adopted away."""
    out = tmp_path / "out"
    with (
        make_node(tmp_path, "S1", str(site_db)) as site,
        make_node(tmp_path, "HQ", str(hq_db), hq=True) as hq,
    ):
        assert [s.sequence for s in site.state.outbox()] == [4]
        asking = site.export()
        assert asking.manifest.sequence == 5 and asking.manifest.meta.get("take_back")
        for entry in site.state.outbox():
            assert hq.import_package(entry.path).status == "applied"
        hq.export()
        assert site.import_package(hq.publish("S1", out).path).status == "applied"
        assert site.export().manifest.rows == 0
    expected = [(1, "since"), (2, "later"), (10, "article 10 — ü"), (11, "article 11 — ü")]
    assert rows(hq_db, "items") == expected
    assert rows(site_db, "items") == expected


def test_a_whole_machine_put_back_sends_nothing_new_until_its_kept_packages_go_again(
    tmp_path: Path,
) -> None:
    site_db, hq_db = put_back_held(tmp_path)
    with make_node(tmp_path, "S1", str(site_db)) as site:
        site.take_back()  # *Reprendre les données du groupe*
    put_back_sent_again(tmp_path, site_db, hq_db)


def test_kept_packages_go_again_as_the_rows_are_now_not_as_they_were(tmp_path: Path) -> None:
    """The machine put back, then the Siège out of reach for a while: the shop renamed an
    item three times, one package a run. The first two reused numbers the Siège had (n° 2,
    3: refused); the third, n° 4, was the Siège's next and was applied. Sent again as they
    were, after it, the two kept packages took the item back to its second name at the
    Siège, then everywhere; sent again as the rows are now, it keeps its last name."""
    site_db, hq_db = machine_put_back(tmp_path, 1)
    out = tmp_path / "out"
    with (
        make_node(tmp_path, "S1", str(site_db)) as site,
        make_node(tmp_path, "HQ", str(hq_db), hq=True) as hq,
    ):
        for name in ("first", "second", "third"):
            sql(site_db, f"UPDATE items SET name = '{name}' WHERE id = 1;")
            made = site.export()
            if made.manifest.sequence < 4:
                with pytest.raises(PackageError):
                    hq.import_package(made.path)
            else:
                assert hq.import_package(made.path).status == "applied"
        assert rows(hq_db, "items")[0] == (1, "third")
        hq.export()
        with pytest.raises(SentByAnother):  # its n° 2 and 3 are not the Siège's
            site.import_package(hq.publish("S1", out).path)
        assert [s.sequence for s in site.state.outbox()] == [2, 3]
        site.take_back()
        again = site.state.outbox()
        assert [s.sequence for s in again] == [5]
        for entry in again:
            assert hq.import_package(entry.path).status == "applied"
        assert hq.import_package(site.export().path).status == "applied"  # everything
        hq.export()
        assert site.import_package(hq.publish("S1", out).path).status == "applied"
    expected = [(1, "third"), (10, "article 10 — ü"), (11, "article 11 — ü")]
    assert rows(hq_db, "items") == expected
    assert rows(site_db, "items") == expected


SEND_AGAIN_CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from engine_helpers import make_node
with make_node(Path(sys.argv[2]), "S1", sys.argv[3]) as node:
    node.take_back()
"""


def killed_on_its_way_out(folder: Path, db: Path, point: str, held: type[Exception]) -> None:
    """``take_back`` of S1 (in ``folder``) run by a real process killed (``kill -9``) at
    ``point``: before its state names the new number it still holds (raising ``held`` at
    export) with its n° 2, and the way out is done again; after, it goes on."""
    tests = str(Path(__file__).resolve().parent)
    child = subprocess.run(
        [sys.executable, "-c", SEND_AGAIN_CHILD, tests, str(folder), str(db)],
        env={**os.environ, "SYNCHRO_KILL_AT": point},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    with make_node(folder, "S1", str(db)) as node:
        if point == "twins.renumbered":
            assert [s.sequence for s in node.state.outbox()] == [2]
            with pytest.raises(held):
                node.export()
            node.take_back()
        else:
            assert node.taking_back()  # type: ignore[attr-defined]


@pytest.mark.parametrize("point", ["twins.renumbered", "twins.recorded"])
def test_a_send_again_killed_holds_or_goes_on(point: str, tmp_path: Path) -> None:
    """``kill -9`` of a real process numbering the kept packages again: before its state
    names them, the copy still holds with its package n° 2 and does it all again; after,
    it goes on from there. Either way nothing is lost or sent twice."""
    held = held_copy(tmp_path)
    killed_on_its_way_out(held.copy_db.parent, held.copy_db, point, SentByAnother)
    sent_again(tmp_path, held)


@pytest.mark.parametrize("point", ["twins.renumbered", "twins.recorded"])
def test_a_put_back_machine_s_way_out_killed_holds_or_goes_on(point: str, tmp_path: Path) -> None:
    """``kill -9`` of a real process sending a whole machine's kept package again: before
    its state names the new number, it still holds (« Poste restauré ») with n° 2 and does
    it all again; after, it goes on. Nothing is lost, adopted away or sent twice."""
    site_db, hq_db = put_back_held(tmp_path)
    killed_on_its_way_out(tmp_path, site_db, point, StateBehind)
    put_back_sent_again(tmp_path, site_db, hq_db)


def copy_site(root: Path, site_paths: NodePaths) -> tuple[NodePaths, Path]:
    """The establishment's machine copied to another folder (database, Synchro's state
    and settings), its settings pointed at its own copy of the database."""
    folder = root / "copie"
    shutil.copytree(site_paths.config_file.parent, folder)
    paths = paths_beside(folder / site_paths.config_file.name)
    config = load_config(paths.config_file)
    db = folder / "data.db"
    save_config(
        dataclasses.replace(
            config, database=dataclasses.replace(config.database, connection=str(db))
        ),
        paths.config_file,
    )
    return paths, db


def copied_after_a_round(
    root: Path, hq: App, site_paths: NodePaths, site_db: Path, rows: int
) -> tuple[NodePaths, Path]:
    """The establishment's machine copied (``copy_site``); both make rows (2000… on the
    first, ``rows`` from 3000 on the copy); the first's run sends its own: the copy's
    package is then a second one under the same number."""
    copy_paths, copy_db = copy_site(root, site_paths)
    add_articles(site_db, 2000, 2)
    add_articles(copy_db, 3000, rows)
    hq.run_now()
    assert automatic_run(site_paths).state is State.OK
    return copy_paths, copy_db


def test_a_copied_server_holds_its_runs_and_manuelle_sends_its_rows(tmp_path: Path) -> None:
    """Through the real Siège and real runs: the copy's run ends Echec, kind twin, its
    package kept, at every automatic run; the Rapport says why and what to do; once the
    other machine is stopped, MANUELLE's Envoyer sends its rows and takes the group's
    back, the other machine's included."""
    with in_step(tmp_path, site_rows=0) as (hq, site_paths, site_db, hq_db):
        copy_paths, copy_db = copied_after_a_round(tmp_path, hq, site_paths, site_db, 2)
        for _ in range(2):
            hq.run_now()
            held = automatic_run(copy_paths)
            assert held.state is State.FAILED, held.error
            assert held.details["error_kind"] == ErrorKind.TWIN, held.error
            assert "Deux machines envoient sous le code 3615" in held.error
            for lang, words in (("fr", "Arrêtez Synchro sur l'autre"), ("en", "Stop Synchro on")):
                assert any(words in line for line in cause_lines(held, lang)), lang
        assert {r[0] for r in rows(hq_db, "articles")} >= {2000, 2001}
        assert not {3000, 3001} & {r[0] for r in rows(hq_db, "articles")}
        # The first machine, whose packages go through, is told another one sends too.
        hq.run_now()
        told = automatic_run(site_paths)
        assert told.state is State.OK, told.error
        assert told.details["copy_seen"]["number"] == 2, told.details
        for lang, words in (
            ("fr", "Une autre machine envoie sous le code de ce poste : le siège a refusé le"),
            ("en", "Another machine sends under this node's code: on "),
        ):
            mail = build_report_message(
                [told], site="3615", role=Role.SITE, lang=lang, now=dt.datetime.now()
            )
            assert words in mail.text and "n° 2" in mail.text, mail.text
        hq.run_now()
        sent = manual_run(copy_paths, send=True)
        assert sent.state is State.OK, sent.error
        wait_for(lambda: {3000, 3001} <= {r[0] for r in rows(hq_db, "articles")}, timeout=30)
        assert rows(copy_db, "articles") == rows(hq_db, "articles")
        assert {2000, 2001, 3000, 3001} <= {r[0] for r in rows(copy_db, "articles")}
        hq.run_now()
        after = automatic_run(copy_paths)  # the Siège still names its refused n° 2: its own
        assert after.state is State.OK and "copy_seen" not in after.details, after.details
