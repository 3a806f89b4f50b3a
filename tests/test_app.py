"""The App composition root: watermark, VALIDER during a run, crash recovery, schedule, email."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pair_helpers import app_pair, free_port
from smtp_server import smtp_server
from test_error_kinds import email_settings

from synchro.app import App
from synchro.config.store import load_config, save_config
from synchro.engine.events import StateChanged
from synchro.engine.nodes import open_node
from synchro.engine.watermark import WATERMARK
from synchro.errors import SynchroError
from synchro.log import setup_logging, shutdown_logging
from synchro.mail import MailPolicy
from synchro.platform.paths import NodePaths
from synchro.reports import ReportStore, State
from synchro.state import StateDB


@pytest.fixture(autouse=True)
def logging_set_up(tmp_path: Path) -> Iterator[None]:
    setup_logging(tmp_path / "logs", console=False)
    yield
    shutdown_logging()


@pytest.fixture()
def pair(tmp_path: Path) -> tuple[NodePaths, NodePaths]:
    return app_pair(tmp_path)


def run_site(paths: NodePaths, clock: Callable[[], dt.datetime] = dt.datetime.now) -> State:
    app = App(
        load_config(paths.config_file),
        paths,
        now=clock,
        poll_s=0.1,
        mail_policy=MailPolicy(attempts=2, retry_delay_s=0.1),
    )
    try:
        with open_node(app.config, paths, app.now) as node:
            return app.run_site(node).state
    finally:
        app.close()


def watermark(paths: NodePaths) -> str | None:
    state = StateDB(paths.state_db)
    try:
        return state.get_meta(WATERMARK)
    finally:
        state.close()


def wait_for(predicate: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_watermark_advances_only_when_the_run_is_ok(pair: tuple[NodePaths, NodePaths]) -> None:
    hq_paths, site_paths = pair
    started = dt.datetime(2026, 11, 29, 23, 0, 5)
    assert run_site(site_paths, lambda: started) is State.FAILED  # the Siège is not running
    assert watermark(site_paths) == dt.datetime(2026, 1, 1).isoformat()  # taken from the config
    hq = App(load_config(hq_paths.config_file), hq_paths)
    hq.start()
    try:
        hq.run_now()
        assert run_site(site_paths, lambda: started) is State.OK
    finally:
        hq.close()
    assert watermark(site_paths) == started.isoformat()  # in the state: the file is the user's
    assert load_config(site_paths.config_file).last_sync == dt.datetime(2026, 1, 1)


def test_valider_is_refused_during_a_run_and_restarts_the_ftp_server(
    pair: tuple[NodePaths, NodePaths],
) -> None:
    hq_paths, _site = pair
    app = App(load_config(hq_paths.config_file), hq_paths)
    app.start()
    try:
        assert app.server is not None
        old_server = app.server
        app.emit(StateChanged("running"))
        changed = dataclasses.replace(app.config, start_time=dt.time(22, 30))
        with pytest.raises(SynchroError, match="en cours"):
            app.save_config(changed)
        assert load_config(hq_paths.config_file).start_time == dt.time(23, 0)
        app.emit(StateChanged("ok"))
        app.save_config(changed)
        assert load_config(hq_paths.config_file).start_time == dt.time(22, 30)
        assert app.server is not None and app.server is not old_server
        assert app.next_run() is not None and app.next_run().time() == dt.time(22, 30)
    finally:
        app.close()


def test_a_run_cut_by_a_crash_is_closed_as_echec_at_start(
    pair: tuple[NodePaths, NodePaths],
) -> None:
    _hq, site_paths = pair
    with ReportStore(site_paths.reports_db) as store:
        rid = store.start("3615", "run", now=dt.datetime(2026, 11, 28, 23, 0))
    app = App(load_config(site_paths.config_file), site_paths)
    try:
        record = app.reports.get(rid)
        assert record.state is State.FAILED
        assert "interrompu" in record.error
    finally:
        app.close()


def test_round_opens_by_itself_at_heure_de_depart(pair: tuple[NodePaths, NodePaths]) -> None:
    hq_paths, _site = pair
    clock = [dt.datetime(2026, 11, 29, 22, 59, 0)]
    app = App(load_config(hq_paths.config_file), hq_paths, now=lambda: clock[0])
    app.start()
    try:
        time.sleep(0.3)
        assert not [r for r in app.reports.latest() if r.kind == "round"]
        clock[0] = dt.datetime(2026, 11, 29, 23, 0, 1)
        # the round's row is written just before the round is said open (StateChanged)
        wait_for(lambda: any(r.kind == "round" for r in app.reports.latest()))
        wait_for(app.is_running, timeout=2)
    finally:
        app.close()


def test_report_email_after_a_run_and_ok_stays_ok_when_mail_is_down(
    pair: tuple[NodePaths, NodePaths], tmp_path: Path
) -> None:
    hq_paths, site_paths = pair
    site = load_config(site_paths.config_file)
    with smtp_server() as (inbox, smtp_port):
        email = email_settings(smtp_port)
        save_config(dataclasses.replace(site, send_email=True, email=email), site_paths.config_file)
        hq = App(load_config(hq_paths.config_file), hq_paths)
        hq.start()
        try:
            hq.run_now()
            assert run_site(site_paths) is State.OK
            wait_for(lambda: len(inbox.messages) == 1)
            message = inbox.messages[0].message
            assert inbox.messages[0].rcpt_tos == ["chef@example.com"]
            assert "3615" in message["Subject"] and "OK" in message["Subject"]
            # now the mail server is down: the run is still OK, the failure is in the report
            email = dataclasses.replace(email, port=free_port())
            save_config(
                dataclasses.replace(load_config(site_paths.config_file), email=email),
                site_paths.config_file,
            )
            hq.run_now()
            assert run_site(site_paths) is State.OK
        finally:
            hq.close()
    with ReportStore(site_paths.reports_db) as store:
        last = store.latest(1)[0]
    assert last.state is State.OK
    assert "email" in last.details and last.details["email"]["status"] == "failed"


def test_a_damaged_state_is_reported_and_the_next_manuelle_tries_again(
    pair: tuple[NodePaths, NodePaths],
) -> None:
    """The engine cannot open its state: the tray, the status bar and the Rapport say why
    (no thread dying with a traceback); once the file is put right, MANUELLE just works."""
    hq_paths, site_paths = pair
    with open_node(load_config(site_paths.config_file), site_paths, dt.datetime.now):
        pass
    good = site_paths.state_db.read_bytes()
    site_paths.state_db.write_bytes(b"damaged " * 512)
    events: list[object] = []
    hq = App(load_config(hq_paths.config_file), hq_paths)
    site = App(load_config(site_paths.config_file), site_paths, listeners=(events.append,))
    hq.start()
    site.start()
    try:
        # The event comes after the row is final (a listener reading the Rapport on it sees
        # the Echec): wait for the event, then the row is there; never the other way round.
        wait_for(lambda: any(isinstance(e, StateChanged) and e.state == "failed" for e in events))
        failed = site.reports.latest()[0]
        assert failed.state is State.FAILED
        assert "Base d'état illisible" in failed.error and "renommez-la" in failed.error
        site_paths.state_db.write_bytes(good)
        hq.run_now()
        site.run_now()
        wait_for(lambda: site.reports.latest()[0].state is State.OK, timeout=60)
    finally:
        site.close()
        hq.close()


def made_runs(reports_db: Path, kind: str, first: dt.datetime, count: int) -> None:
    """``count`` finished rows of ``kind``, a day apart from ``first``."""
    with ReportStore(reports_db) as reports:
        for day in range(count):
            when = first + dt.timedelta(days=day)
            reports.finish(reports.start("S1", kind, now=when), State.OK, now=when)


def test_history_older_than_keep_days_is_forgotten_after_a_run(
    pair: tuple[NodePaths, NodePaths],
) -> None:
    """After a run, Rapport rows and conflicts older than ``retention.KEEP_DAYS`` are gone
    (they grew for ever); newer ones and the quarantine stay. A clock put forward thirty
    years drops nothing more (it used to drop everything at its first run)."""
    from synchro.engine.retention import KEEP_DAYS, KEEP_RUNS

    _hq_paths, site_paths = pair
    long_ago = dt.datetime(2025, 1, 2, 23, 0)
    assert run_site(site_paths, lambda: long_ago) is State.FAILED  # no Siège: a row all the same
    state = StateDB(site_paths.state_db)
    try:
        with state.transaction():
            for package in ("HQ#1", "HQ#2"):
                state.log_conflict(package, "t", "[1]", "hq-wins", "HQ", "S1", '["a"]', '["b"]')
            state.log_quarantine("HQ#1", "t", "[2]", '["c"]', "refusée")
            state.conn.execute(
                "UPDATE conflicts SET at = ? WHERE package = 'HQ#1'",
                (long_ago.isoformat(" ", "seconds"),),
            )
            state.conn.execute(
                "UPDATE quarantine SET at = ?", (long_ago.isoformat(" ", "seconds"),)
            )
    finally:
        state.close()
    later = long_ago + dt.timedelta(days=KEEP_DAYS + KEEP_RUNS)
    made_runs(site_paths.reports_db, "run", later - dt.timedelta(days=KEEP_RUNS), KEEP_RUNS)
    assert run_site(site_paths, lambda: later) is State.FAILED
    with ReportStore(site_paths.reports_db) as reports:
        kept = [r.started for r in reports.latest(1000)]
    assert len(kept) == KEEP_RUNS + 1 and long_ago not in kept
    state = StateDB(site_paths.state_db)
    try:
        assert [c["package"] for c in state.conflicts()] == ["HQ#2"]
        assert [q["key_json"] for q in state.quarantined()] == ["[2]"]
    finally:
        state.close()
    ahead = later.replace(year=later.year + 30)
    assert run_site(site_paths, lambda: ahead) is State.FAILED
    with ReportStore(site_paths.reports_db) as reports:
        assert [r.started for r in reports.latest(1000)] == [ahead, *kept]
    state = StateDB(site_paths.state_db)
    try:
        assert [c["package"] for c in state.conflicts()] == ["HQ#2"]  # (logged today)
    finally:
        state.close()


def test_the_siege_forgets_history_older_than_keep_days_when_a_round_closes(
    pair: tuple[NodePaths, NodePaths],
) -> None:
    """The same at the Siège, once a round has closed."""
    from synchro.engine.retention import KEEP_DAYS, KEEP_RUNS

    hq_paths, site_paths = pair
    now = dt.datetime.now()
    long_ago = now - dt.timedelta(days=KEEP_DAYS + KEEP_RUNS + 30)
    made_runs(hq_paths.reports_db, "round", now - dt.timedelta(days=KEEP_RUNS), KEEP_RUNS)
    with ReportStore(hq_paths.reports_db) as reports:
        old = reports.start("S1", "site-in-round", now=long_ago)
        reports.finish(old, State.OK, now=long_ago)
    state = StateDB(hq_paths.state_db)
    try:
        with state.transaction():
            state.log_conflict("S1#1", "t", "[1]", "hq-wins", "HQ", "S1", '["a"]', '["b"]')
            state.conn.execute("UPDATE conflicts SET at = ?", (long_ago.isoformat(" "),))
    finally:
        state.close()
    hq = App(load_config(hq_paths.config_file), hq_paths)
    hq.start()
    try:
        hq.run_now()
        assert run_site(site_paths) is State.OK
        wait_for(
            lambda: any(r.kind == "round" and r.state is State.OK for r in hq.reports.latest())
        )
        wait_for(lambda: old not in [r.id for r in hq.reports.latest()])
    finally:
        hq.close()
    state = StateDB(hq_paths.state_db)
    try:
        assert state.conflicts() == []
    finally:
        state.close()


def test_history_that_cannot_be_forgotten_leaves_the_run_as_it_ended(tmp_path: Path) -> None:
    """A store that cannot be written (here a closed state database) is said in the log;
    the other store is still pruned and nothing is raised to the run that just ended."""
    from synchro.engine.retention import KEEP_DAYS, KEEP_RUNS, forget_old

    now = dt.datetime(2027, 6, 1, 12, 0)
    old = now - dt.timedelta(days=KEEP_DAYS + KEEP_RUNS + 1)  # (KEEP_DAYS before the first)
    made_runs(tmp_path / "reports.db", "run", old, 1)
    made_runs(tmp_path / "reports.db", "run", now - dt.timedelta(days=KEEP_RUNS), KEEP_RUNS)
    with ReportStore(tmp_path / "reports.db") as reports:
        state = StateDB(tmp_path / "state.db")
        state.close()
        assert forget_old(reports, state, now) == (1, 0)
        assert len(reports.latest(1000)) == KEEP_RUNS
