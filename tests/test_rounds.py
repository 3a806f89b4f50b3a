"""Rounds over real FTPS on loopback: a Siège and its establishments end to end."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from backends import Backend
from rounds_helpers import Group, group, rows, sql, stepped

from synchro.config.model import Role
from synchro.engine.events import Event, Progress
from synchro.engine.hq_acks import NO_ACK
from synchro.errors import TransportError
from synchro.mail.message import build_report_message
from synchro.report_summary import detail_lines
from synchro.reports import State, error_in

T0 = dt.datetime(2026, 12, 5, 8, 0)


def seed(g: Group) -> None:
    sql(g.hq.db, "INSERT INTO articles VALUES (1, 'Café', '18.90'), (2, 'Thé', '7.50');")
    for n, code in enumerate(g.sites):
        sql(
            g.sites[code].db,
            f"INSERT INTO articles VALUES ({10 + n}, 'local {code}', '1.00');"
            f"INSERT INTO ventes VALUES ('{code}', 1, {10 + n}, 2);",
        )


def test_full_round_converges_and_reports(tmp_path: Path) -> None:
    with group(tmp_path, ["3615", "3616", "3617"]) as g:
        seed(g)
        g.open_round()
        results = g.run_all()
        assert {c: r.state for c, r in results.items()} == dict.fromkeys(g.sites, State.OK)
        assert all(r.rows_sent == 2 and r.rows_received == 6 for r in results.values())
        assert g.converged()
        round_row = g.round_ended()
        assert round_row.state is State.OK
        members = g.reports.for_round(round_row.id)
        assert sorted(r.site for r in members if r.kind == "site-in-round") == sorted(g.sites)
        assert all(r.state is State.OK for r in members)
        # a second round with nothing new is quiet: nothing sent, nothing received
        g.open_round()
        again = g.run_all()
        assert all(
            r.state is State.OK and r.rows_sent == 0 and r.rows_received == 0
            for r in again.values()
        )


def test_site_late_by_one_round_catches_up(tmp_path: Path) -> None:
    with group(tmp_path, ["3615", "3616"], servers=1) as g:
        seed(g)
        g.open_round()
        assert g.run("3615").state is State.OK  # 3616 is offline this round
        sql(g.hq.db, "UPDATE articles SET prix = '19.90' WHERE id = 1")
        sql(g.sites["3615"].db, "INSERT INTO ventes VALUES ('3615', 2, 1, 5)")
        g.open_round()
        assert g.run("3615").state is State.OK
        g.open_round()
        assert g.run("3616").state is State.OK  # one run brings everything it missed
        g.open_round()
        assert g.run("3615").state is State.OK  # and 3615 gets what 3616 had
        assert g.converged()
        assert (1, "Café", 19.9) in rows(g.sites["3616"].db, "articles")


def test_missing_site_is_echec_when_reception_time_runs_out(tmp_path: Path) -> None:
    clock = [dt.datetime(2026, 11, 29, 23, 0)]
    with stepped(tmp_path, ["3615", "3616"], clock) as g:
        seed(g)
        g.service.step("open")
        g.deliver("3615")  # 3616 never comes
        g.service.step()
        assert g.service.round is not None  # 1 of 2: still waiting
        clock[0] += dt.timedelta(hours=2)
        g.service.step("raz")  # RAZ: the 4 hours start again from now
        clock[0] += dt.timedelta(hours=3)
        g.service.step()
        assert g.service.round is not None
        clock[0] += dt.timedelta(hours=1, seconds=1)
        g.service.step()
        assert g.service.round is None
        assert g.service.closing is not None  # 3615 is served once it acknowledges
        g.answer("3615")
        g.service.step()
        assert g.service.closing is None
        rid = next(r.id for r in g.reports.latest() if r.kind == "round")
        by_site = {r.site: r for r in g.reports.for_round(rid)}
        assert by_site["3615"].state is State.OK
        assert by_site["3616"].state is State.FAILED
        assert by_site["3616"].error == "aucune donnée reçue"
        assert g.reports.get(rid).state is State.FAILED
        assert "3616" in g.reports.get(rid).error


def test_hq_unreachable_for_first_attempts_then_up(tmp_path: Path) -> None:
    with group(tmp_path, ["3615"]) as g:
        seed(g)
        g.open_round()
        port = g.server.port
        g.server.stop()
        waits: list[float] = []

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            if len(waits) == 2:  # the Siège comes back after two failed attempts
                g.server.requested_port = port
                g.server.start()

        record = g.run("3615", attempts=5, delay_s=600, sleep=sleep)
        assert record.state is State.OK, record.error
        assert waits[:2] == [600, 600]
        assert g.converged()


def test_attempts_exhausted_is_echec_and_nothing_lost(tmp_path: Path) -> None:
    with group(tmp_path, ["3615"]) as g:
        seed(g)
        record = g.run("3615", attempts=3, sleep=lambda s: None, connect=g.client("3615", port=1))
        assert record.state is State.FAILED
        assert "127.0.0.1:1" in record.error
        # the package waits in the outbox; the next run delivers it
        g.open_round()
        assert g.run("3615").state is State.OK
        assert g.converged()


def test_wrong_password_fails_at_once_with_reason(tmp_path: Path) -> None:
    with group(tmp_path, ["3615"]) as g:
        attempts: list[float] = []
        record = g.run(
            "3615",
            attempts=5,
            sleep=attempts.append,
            connect=g.client("3615", secret="wrong-secret-0123456789"),
        )
        assert record.state is State.FAILED
        assert attempts == []  # bad credentials cannot get better by retrying
        assert "wrong-secret" not in record.error


def test_arreter_mid_run_then_next_run_completes(tmp_path: Path) -> None:
    with group(tmp_path, ["3615"]) as g:
        seed(g)
        cancel = threading.Event()

        def emit(event: Event) -> None:
            if isinstance(event, Progress) and event.phase == "send":
                cancel.set()  # ARRETER while sending

        record = g.run("3615", cancel=cancel, emit=emit)
        assert record.state is State.STOPPED
        assert rows(g.hq.db, "ventes") == []  # nothing half-applied at the Siège
        g.open_round()
        assert g.run("3615").state is State.OK
        assert g.converged()


def test_connection_cut_mid_upload_resumes_without_duplicate(tmp_path: Path) -> None:
    from ftp_proxy import LISTEN, FTPProxy, free_port_range

    ports = free_port_range(4)
    with group(tmp_path, ["3615"], passive_ports=ports) as g:
        values = ",".join(
            f"({i}, 'article {i} ' || hex(randomblob(40)), '1.00')" for i in range(100, 3100)
        )
        sql(g.sites["3615"].db, f"INSERT INTO articles VALUES {values}")
        with FTPProxy(g.server.port, ports) as proxy:
            proxy.cut_next_data_after(20_000)
            g.open_round()
            record = g.run("3615", connect=g.client("3615", host=LISTEN))
            cut = list(proxy.data_bytes)
        assert record.state is State.OK, record.error
        assert len(rows(g.hq.db, "articles")) == 3000
        applied = g.hq_node.state.conn.execute(
            "SELECT COUNT(*) FROM applied WHERE origin = '3615'"
        ).fetchone()[0]
        assert applied == 1
        assert cut and cut[0] <= 20_000  # the first upload really was cut


def test_site_cannot_touch_another_sites_folder(tmp_path: Path) -> None:
    with group(tmp_path, ["3615", "3616"]) as g:
        (tmp_path / "ftp" / "3616" / "out").mkdir(parents=True, exist_ok=True)
        (tmp_path / "ftp" / "3616" / "out" / "SIEGE-3616-00000001.pkg").write_bytes(b"x")
        with g.client("3615")() as client, pytest.raises(TransportError):
            client.download("../../3616/out/SIEGE-3616-00000001.pkg", tmp_path / "stolen")
        assert not (tmp_path / "stolen").exists()


ODBC_SCHEMA = [
    "CREATE TABLE articles(id INTEGER PRIMARY KEY, nom VARCHAR(100) NOT NULL, prix DECIMAL(10,2))",
    "CREATE TABLE ventes(site VARCHAR(10) NOT NULL, num INTEGER NOT NULL, "
    "article_id INTEGER NOT NULL REFERENCES articles(id), qte INTEGER NOT NULL, "
    "PRIMARY KEY(site, num))",
]


def test_round_with_postgresql_and_mariadb_sites(
    tmp_path: Path, make_backend: Callable[[str], Backend]
) -> None:
    pg, maria = make_backend("postgresql"), make_backend("mariadb")
    for backend in (pg, maria):
        for statement in ODBC_SCHEMA:
            backend.execute(statement)
    pg.execute("INSERT INTO articles VALUES (10, 'Thé vert 🍵', 7.50)")
    pg.execute("INSERT INTO ventes VALUES ('3615', 1, 10, 2)")
    maria.execute("INSERT INTO articles VALUES (20, 'Crème brûlée', 4.20)")
    maria.execute("INSERT INTO ventes VALUES ('3616', 1, 20, 1)")
    connections = {"3615": pg.connection, "3616": maria.connection}
    with group(tmp_path, ["3615", "3616"], connections=connections) as g:
        sql(g.hq.db, "INSERT INTO articles VALUES (1, 'Café', '18.90');")
        g.open_round()
        results = g.run_all()
        assert all(r.state is State.OK for r in results.values()), results
        pg.execute("UPDATE articles SET prix = 8.10 WHERE id = 10")
        maria.execute("DELETE FROM ventes WHERE site = '3616' AND num = 1")
        g.open_round()
        results = g.run_all()
        assert all(r.state is State.OK for r in results.values()), results
        g.open_round()
        g.run_all()
        assert g.converged(), g.checksums()
    assert sorted(pg.query("SELECT id FROM articles")) == [(1,), (10,), (20,)]
    assert maria.query("SELECT COUNT(*) FROM ventes") == [(1,)]


def test_reinstalled_site_with_a_new_state_loses_nothing(tmp_path: Path) -> None:
    """A lost state database restarts the site's sequence: the Siège must not take its new
    packages for ones already applied, and must send it everything again."""
    with group(tmp_path, ["3615", "3616"]) as g:
        seed(g)
        g.open_round()
        assert all(r.state is State.OK for r in g.run_all().values())
        site = g.sites["3615"]
        for path in site.folder.glob("state.db*"):
            path.unlink()
        sql(
            site.db,
            "INSERT INTO ventes VALUES ('3615', 2, 1, 9); DELETE FROM articles WHERE id = 11;",
        )  # a row it had received, lost with the reinstall
        sql(g.sites["3616"].db, "INSERT INTO ventes VALUES ('3616', 2, 1, 4)")
        g.open_round()
        assert all(r.state is State.OK for r in g.run_all().values())
        g.open_round()
        assert all(r.state is State.OK for r in g.run_all().values())
        assert ("3615", 2, 1, 9) in rows(g.hq.db, "ventes")
        assert ("3616", 2, 1, 4) in rows(site.db, "ventes")
        assert g.converged(), g.checksums()


def test_siege_with_a_lost_state_takes_every_site_back(tmp_path: Path) -> None:
    with group(tmp_path, ["3615", "3616"]) as g:
        seed(g)
        for _ in range(2):
            g.open_round()
            assert all(r.state is State.OK for r in g.run_all().values())
        g.close()
        for path in g.hq.folder.glob("state.db*"):
            path.unlink()
    sql(tmp_path / "3616" / "3616.db", "INSERT INTO ventes VALUES ('3616', 7, 1, 1)")
    with group(tmp_path / "again", ["3615", "3616"]) as g2:
        for code in ("SIEGE", "3615", "3616"):  # the same databases and site states
            member = g2.hq if code == "SIEGE" else g2.sites[code]
            member.db = tmp_path / code / f"{code}.db"
            if code != "SIEGE":
                member.folder = tmp_path / code
        g2.hq_node.close()
        g2.hq_node = g2.hq.node()
        g2.service.node = g2.hq_node
        g2.open_round()
        results = g2.run_all()
        assert all(r.state is State.OK for r in results.values()), results
        assert ("3616", 7, 1, 1) in rows(g2.hq.db, "ventes")
        g2.open_round()
        g2.run_all()
        assert g2.converged(), g2.checksums()


def test_a_waiting_site_keeps_one_session_for_all_its_polls(tmp_path: Path) -> None:
    """A site that waits for the others polls on the session it keeps: no new TLS
    handshake and login at the Siège per poll (issue 15: 7–8 logins per site in a round of
    200). Counted as the sessions the site opens while it polls every 0.05 s."""
    import time

    with group(tmp_path, ["3615", "3616"]) as g:
        seed(g)
        g.open_round()
        made: list[object] = []
        base = g.client("3615")

        def connect() -> object:
            client = base()
            made.append(client)
            return client

        done: dict[str, object] = {}
        early = threading.Thread(target=lambda: done.update(r=g.run("3615", connect=connect)))
        early.start()
        time.sleep(2.0)  # 3615 has sent and waits: the round waits for 3616 (dozens of polls)
        while_waiting = len(made)
        assert g.run("3616").state is State.OK
        early.join(60)
        record = done["r"]
        assert getattr(record, "state", None) is State.OK
        assert while_waiting <= 2  # its upload, then one session for every poll
        assert len(made) <= 4  # and the download and the ack


def test_a_table_without_a_key_is_named_in_every_report_and_email(tmp_path: Path) -> None:
    """Such a table is not synchronised (``select_tables``): the Siège's round row and the
    establishment's run row say so, and so do their emails and the Rapport's detail."""
    with group(tmp_path, ["3615"]) as g:
        seed(g)
        sql(g.hq.db, "CREATE TABLE journal (ligne TEXT); INSERT INTO journal VALUES ('x');")
        sql(g.sites["3615"].db, "CREATE TABLE brouillon (ligne TEXT);")
        g.open_round()
        site = g.run_all()["3615"]
        assert site.state is State.OK and site.details["keyless"] == ["brouillon"]
        round_row = g.round_ended()
        assert round_row.details["keyless"] == ["journal"]
        for record, code, role, table in (
            (site, "3615", Role.SITE, "brouillon"),
            (round_row, "SIEGE", Role.HQ, "journal"),
        ):
            records = [record, *g.reports.for_round(record.id)] if role is Role.HQ else [record]
            for lang, words in (("fr", "Tables non synchronisées"), ("en", "not synchronised")):
                mail = build_report_message(records, site=code, role=role, lang=lang, now=T0)
                assert f"{words} (" in mail.text and table in mail.text, mail.text
            assert any(table in line for line in detail_lines(record.details, "", "fr"))


def test_a_clock_put_back_does_not_keep_the_round_open(tmp_path: Path) -> None:
    """A round opened while the date was a year ahead, the date then corrected: the round
    still closes *Temps maximum de réception* later by the corrected clock (it waited a
    year), and a pause after an error lasts its minute, not a year."""
    clock = [dt.datetime(2027, 11, 29, 23, 0)]
    with stepped(tmp_path, ["3615", "3616"], clock) as g:
        seed(g)
        g.service.step("open")
        g.deliver("3615")  # 3616 never comes
        g.service.step()
        assert g.service.round is not None
        clock[0] = dt.datetime(2026, 11, 29, 23, 30)  # the date corrected
        g.service.step()
        assert g.service.round is not None
        assert g.service.round.deadline == dt.datetime(2026, 11, 30, 3, 30)
        clock[0] += dt.timedelta(hours=4, seconds=1)
        g.service.step()
        assert g.service.round is None
        g.service.paused_until = clock[0] + dt.timedelta(days=365)  # set under the old date
        g.service.step()
        assert g.service.paused_until == clock[0] + dt.timedelta(minutes=1)


def test_a_clock_put_back_does_not_keep_a_closed_round_waiting_for_acks(tmp_path: Path) -> None:
    """Both establishments delivered while the date was a year ahead; the date is then
    corrected before their acks come: the round still ends ``ack_wait`` later by the
    corrected clock, not a year later."""
    clock = [dt.datetime(2027, 11, 29, 23, 0)]
    with stepped(tmp_path, ["3615", "3616"], clock) as g:
        seed(g)
        g.all_deliver()
        assert g.service.round is None and g.service.closing is not None
        clock[0] = dt.datetime(2026, 11, 29, 23, 5)  # the date corrected
        g.service.step()
        assert g.service.closing is not None
        clock[0] += g.service.settings.ack_wait + dt.timedelta(seconds=1)
        g.service.step()
        assert g.service.closing is None
        rid = next(r.id for r in g.reports.latest() if r.kind == "round")
        members = [r for r in g.reports.for_round(rid) if r.kind == "site-in-round"]
        assert [r.error for r in members] == [NO_ACK, NO_ACK]


def test_a_copied_server_sending_as_the_same_establishment_is_said_at_the_siege(
    tmp_path: Path,
) -> None:
    """3615's server copied to a new machine (database and Synchro's state), both left
    running: the copy's package, under a number the Siège already applied from the other,
    is set aside with a row saying so (it used to be archived as a copy sent again, its
    rows lost without a word)."""
    clock = [dt.datetime(2026, 11, 29, 23, 0)]
    with stepped(tmp_path, ["3615", "3616"], clock) as g:
        seed(g)
        g.all_deliver()
        for code in g.sites:
            g.answer(code)
        member = g.sites["3615"]
        copy = dataclasses.replace(member, folder=tmp_path / "copie")
        shutil.copytree(member.folder, copy.folder)
        copy = dataclasses.replace(copy, db=copy.folder / member.db.name)
        sql(member.db, "INSERT INTO ventes VALUES ('3615', 2, 10, 1)")
        sql(copy.db, "INSERT INTO ventes VALUES ('3615', 3, 10, 1)")
        g.all_deliver()  # the round closes, applies and publishes
        with copy.node() as node, g.client("3615")() as client:
            node.export()
            for _seq, path in node.state.outbox():
                client.upload(path, path.name)
        g.service.step()
        said = [r for r in g.reports.latest() if r.site == "3615" and "code 3615" in r.error]
        assert said and "une autre machine envoie sous le code 3615" in said[0].error
        row = said[0]
        assert row.details["error_kind"] == "copy"  # its own Cause and À faire, fr and en
        assert "another machine sends under code 3615" in error_in(row, "en")
        for lang, words in (("fr", "un serveur copié"), ("en", "a server was copied")):
            mail = build_report_message([row], site="3615", role=Role.HQ, lang=lang, now=T0)
            assert words in mail.text, mail.text
        assert ("3615", 3) not in [r[:2] for r in rows(g.hq.db, "ventes")]


def test_a_round_waits_for_the_establishments_declared_not_more(tmp_path: Path) -> None:
    """« Nombre de serveurs » above the establishments declared (3 for 2): the round closes
    when both have delivered, not after *Temps maximum de réception* (every establishment
    used to wait that long for its package, every night), and says what it waits for."""
    clock = [dt.datetime(2026, 11, 29, 23, 0)]
    four_hours = dt.timedelta(hours=4)
    with group(
        tmp_path,
        ["3615", "3616"],
        servers=3,
        run_service=False,
        now=lambda: clock[0],
        max_reception=four_hours,
    ) as g:
        events: list[Event] = []
        g.service.emit = events.append
        seed(g)
        g.service.step("open")
        g.deliver("3615")
        g.service.step()
        assert g.service.round is not None  # 1 of the 2 declared: still waiting
        g.deliver("3616")
        g.service.step()
        assert g.service.round is None  # both came: closed at once (the clock never moved)
    opened = [e for e in events if getattr(e, "key", "") == "engine.round.open_declared"]
    assert len(opened) == 1
    assert opened[0].message == (
        "Ouverture du tour : attente de 2 serveur(s), les établissements déclarés "
        "(Nombre de serveurs : 3)."
    )


def test_a_siege_without_establishments_closes_its_round_at_once(tmp_path: Path) -> None:
    """Before its first ``synchro site add`` a Siège's round waited 4 hours for nobody."""
    clock = [dt.datetime(2026, 11, 29, 23, 0)]
    four_hours = dt.timedelta(hours=4)
    with group(
        tmp_path, [], servers=1, run_service=False, now=lambda: clock[0], max_reception=four_hours
    ) as g:
        events: list[Event] = []
        g.service.emit = events.append
        g.service.step("open")
        g.service.step()
        assert g.service.round is None and g.service.closing is None
    said = [getattr(e, "key", "") for e in events]
    assert "engine.round.open_none" in said and "engine.round.open" not in said
