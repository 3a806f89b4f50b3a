"""Dernière synchronisation lives in the state database; the config file is the user's.

A real run (the CLI's ``sync`` in two processes, and the App) leaves every config file byte
for byte as it was; an installation whose config still holds the watermark the program
wrote there takes it into the state once, and a date the user sets wins."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pair_helpers import app_pair, cli_pair, popen, synchro
from rounds_helpers import rows, sql

from synchro.app import App
from synchro.config.model import TableRule
from synchro.config.store import load_config, save_config
from synchro.engine.ack import PENDING
from synchro.engine.nodes import open_node
from synchro.engine.watermark import (
    FROM_CONFIG,
    WATERMARK,
    advance_watermark,
    capture_bound,
    current_watermark,
    full_read_tables,
)
from synchro.log import setup_logging, shutdown_logging
from synchro.mail import MailPolicy
from synchro.platform.paths import NodePaths, paths_beside
from synchro.report_summary import controle_text
from synchro.reports import ReportStore, State
from synchro.state import StateDB

JAN = dt.datetime(2026, 1, 1)
NOV = dt.datetime(2026, 11, 29, 23, 0, 5)


@pytest.fixture(autouse=True)
def logging_set_up(tmp_path: Path) -> Iterator[None]:
    setup_logging(tmp_path / "logs", console=False)
    yield
    shutdown_logging()


def stored(state_db: Path) -> tuple[str | None, str | None]:
    state = StateDB(state_db)
    try:
        return state.get_meta(WATERMARK), state.get_meta(FROM_CONFIG)
    finally:
        state.close()


def test_the_rule_taken_once_then_moving_then_set_by_the_user(tmp_path: Path) -> None:
    state = StateDB(tmp_path / "state.db")
    try:
        assert current_watermark(state, None) is None  # nothing anywhere: full scan
        assert current_watermark(state, JAN) == JAN  # an old config's value is taken...
        advance_watermark(state, NOV)
        assert current_watermark(state, JAN) == NOV  # ...once: the same value again is old
        later = dt.datetime(2026, 12, 24)
        assert current_watermark(state, later) == later  # a date the user set wins
        advance_watermark(state, NOV + dt.timedelta(days=30))
        assert current_watermark(state, later) == NOV + dt.timedelta(days=30)
        assert current_watermark(state, None) is None  # the user emptied the field
    finally:
        state.close()


def test_the_capture_bound_is_a_full_read_when_the_clock_went_back() -> None:
    overlap = dt.timedelta(minutes=10)
    assert capture_bound(None, NOV, overlap) is None
    assert capture_bound(NOV, NOV + dt.timedelta(days=1), overlap) == NOV - overlap
    assert capture_bound(NOV, NOV, overlap) == NOV - overlap
    # winter time: the last run at 02:30 summer time, this one at 02:10 winter time
    summer = dt.datetime(2026, 10, 25, 2, 30)
    assert capture_bound(summer, summer - dt.timedelta(minutes=20), overlap) is None


def run_site(paths: NodePaths, clock: dt.datetime) -> tuple[State, dt.datetime | None]:
    app = App(
        load_config(paths.config_file),
        paths,
        now=lambda: clock,
        poll_s=0.1,
        mail_policy=MailPolicy(attempts=1, retry_delay_s=0),
    )
    try:
        with open_node(app.config, paths, app.now) as node:
            return app.run_site(node).state, app.config.last_sync
    finally:
        app.close()


def test_an_old_config_migrates_and_runs_never_rewrite_it(tmp_path: Path) -> None:
    hq_paths, site_paths = app_pair(tmp_path)  # the Serveur's config holds last_sync = JAN
    before = site_paths.config_file.read_bytes()
    assert stored(site_paths.state_db) == (None, None)
    assert run_site(site_paths, NOV)[0] is State.FAILED  # the Siège is not running yet
    assert stored(site_paths.state_db) == (JAN.isoformat(), JAN.isoformat())  # migrated
    hq = App(load_config(hq_paths.config_file), hq_paths)
    hq.start()
    try:
        hq.run_now()
        state, shown = run_site(site_paths, NOV)
        assert state is State.OK
        assert shown == NOV  # what the General window shows as Dernière synchronisation
    finally:
        hq.close()
    assert site_paths.config_file.read_bytes() == before
    assert stored(site_paths.state_db) == (NOV.isoformat(), JAN.isoformat())
    # next start: the config's old date is not taken again
    assert run_site(site_paths, NOV + dt.timedelta(days=1))[1] == NOV


def test_valider_sets_the_date_and_the_next_run_starts_from_it(tmp_path: Path) -> None:
    _hq, site_paths = app_pair(tmp_path)
    app = App(load_config(site_paths.config_file), site_paths)
    try:
        chosen = dt.datetime(2025, 6, 1, 8, 30)
        app.save_config(dataclasses.replace(app.config, last_sync=chosen))  # VALIDER
        assert load_config(site_paths.config_file).last_sync == chosen  # the user's save
        with open_node(app.config, site_paths, app.now) as node:
            assert app._watermark(node) == chosen
    finally:
        app.close()
    assert stored(site_paths.state_db) == (chosen.isoformat(), chosen.isoformat())


def test_cli_sync_in_two_processes_leaves_both_config_files_byte_identical(
    tmp_path: Path,
) -> None:
    hq, site, _token = cli_pair(tmp_path)
    configs = {path: path.read_bytes() for path in (hq / "synchro.toml", site / "synchro.toml")}
    siege = popen("--config", "synchro.toml", "sync", "--linger", "600", cwd=hq)
    try:
        magasin = synchro("--config", "synchro.toml", "sync", cwd=site, timeout=90)
        out, err = siege.communicate(timeout=90)
    finally:
        if siege.poll() is None:
            siege.kill()
    assert magasin.returncode == 0, magasin.stderr + magasin.stdout
    assert siege.returncode == 0, err + out
    for path, content in configs.items():
        assert path.read_bytes() == content, path
    for folder in (hq, site):
        watermark, _taken = stored(paths_beside(folder / "synchro.toml").state_db)
        assert watermark, folder  # Dernière synchronisation moved, in the state


def test_a_date_saved_at_the_siege_is_taken_before_a_round_moves_it(tmp_path: Path) -> None:
    hq_paths, site_paths = app_pair(tmp_path)
    chosen = dt.datetime(2025, 6, 1, 8, 30)
    hq = App(load_config(hq_paths.config_file), hq_paths)
    hq.start()
    try:
        hq.save_config(dataclasses.replace(hq.config, last_sync=chosen))  # VALIDER
        saved = hq_paths.config_file.read_bytes()
        hq.run_now()
        assert run_site(site_paths, NOV)[0] is State.OK
        deadline = time.monotonic() + 30
        while stored(hq_paths.state_db)[0] in (None, chosen.isoformat()):
            assert time.monotonic() < deadline, "the round did not close"
            time.sleep(0.05)
    finally:
        hq.close()
    watermark, taken = stored(hq_paths.state_db)
    assert taken == chosen.isoformat()  # so the next start does not take it again
    assert watermark is not None and dt.datetime.fromisoformat(watermark) > chosen
    assert hq_paths.config_file.read_bytes() == saved


def test_a_clock_put_back_does_not_hide_changes_from_the_modification_date_filter(
    tmp_path: Path,
) -> None:
    """A table read through its modification-date column: a run made while the date was
    a year ahead (the watermark then a year ahead), the date corrected, a row written with
    the corrected date: the next run sends it (a full read), where the filter « modified
    since the watermark » would have skipped every change for a year, saying OK."""
    hq_paths, site_paths = app_pair(tmp_path)
    dbs = journal_pair(hq_paths, site_paths)
    hq = App(load_config(hq_paths.config_file), hq_paths)
    hq.start()
    try:
        sql(dbs[1], "INSERT INTO journal VALUES (1, 'avant', '2027-11-29 22:00:00')")
        hq.run_now()
        assert run_site(site_paths, dt.datetime(2027, 11, 29, 23, 0))[0] is State.OK
        sql(dbs[1], "INSERT INTO journal VALUES (2, 'après', '2026-11-30 22:00:00')")
        hq.run_now()
        state, _shown = run_site(site_paths, dt.datetime(2026, 11, 30, 23, 0))
        assert state is State.OK, last_error(site_paths)  # (« Contrôle » said the loss)
        assert [r[0] for r in rows(dbs[0], "journal")] == [1, 2]
    finally:
        hq.close()


def test_a_change_the_date_filter_missed_travels_at_the_next_run(tmp_path: Path) -> None:
    """A row written with a date an hour before the last run (the database server's clock
    behind this machine's, beyond the 10 minutes' overlap): the filtered capture misses it
    and the « Contrôle » says the table differs by a change not sent yet (what the two
    nodes exchanged still agrees: no failure); the next run reads that table whole and
    sends it, and the run after reads through the filter again."""
    hq_paths, site_paths = app_pair(tmp_path)
    dbs = journal_pair(hq_paths, site_paths)
    hq = App(load_config(hq_paths.config_file), hq_paths)
    hq.start()
    try:
        hq.run_now()
        assert run_site(site_paths, NOV)[0] is State.OK
        sql(dbs[1], "INSERT INTO journal VALUES (1, 'en retard', '2026-11-29 22:00:00')")
        hq.run_now()
        assert run_site(site_paths, NOV + dt.timedelta(days=1))[0] is State.OK
        with ReportStore(site_paths.reports_db) as reports:
            said = reports.latest(1)[0].details["controle"]
        assert said == PENDING + "journal"
        assert controle_text(said, "en").startswith("identical but for recent changes")
        assert rows(dbs[0], "journal") == []
        hq.run_now()
        state, _shown = run_site(site_paths, NOV + dt.timedelta(days=1, minutes=5))
        assert state is State.OK, last_error(site_paths)
        assert [r[0] for r in rows(dbs[0], "journal")] == [1]
        site_state = StateDB(site_paths.state_db)
        try:
            assert full_read_tables(site_state) == set()  # the filter again from now on
        finally:
            site_state.close()
    finally:
        hq.close()


def journal_pair(hq_paths: NodePaths, site_paths: NodePaths) -> list[Path]:
    """Both databases get ``journal`` (id, texte, maj); the establishment reads it through
    its modification date ``maj``. The two database paths, Siège first."""
    dbs = [Path(load_config(p.config_file).database.connection) for p in (hq_paths, site_paths)]
    for db in dbs:
        sql(db, "CREATE TABLE journal(id INTEGER PRIMARY KEY, texte TEXT, maj DATETIME)")
    config = load_config(site_paths.config_file)
    rules = (TableRule("journal", modified_column="maj"),)
    database = dataclasses.replace(config.database, tables=rules)
    save_config(dataclasses.replace(config, database=database), site_paths.config_file)
    return dbs


def last_error(paths: NodePaths) -> str:
    """The newest Rapport row's error at ``paths``."""
    with ReportStore(paths.reports_db) as reports:
        return reports.latest(1)[0].error
