"""Synchro's own files (state database, Rapport) on a disk that is full: a real tmpfs.

Before, opening the state database there said "Base d'état illisible ... Restaurez-la depuis
une sauvegarde, ou renommez-la : la prochaine synchronisation repartira de zéro" — advice
that throws away a sound state (every row then compared as a conflict) when the only
trouble is a full disk. Now the error is of kind disk and says to free some room.

The App on such a disk (its real engine thread): a run or a start whose Rapport cannot be
written ended the thread for good; now the service says why, emails the owner, and runs
again once room is made.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import errno
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pair_helpers import app_pair
from smtp_server import smtp_server
from test_app import logging_set_up, run_site, wait_for  # noqa: F401 (autouse)
from test_error_kinds import email_settings
from test_faults_lost_transaction import small_disk

from synchro.app import App
from synchro.config.store import load_config, save_config
from synchro.engine.events import StateChanged
from synchro.errors import ErrorKind, StateError, disk_advice
from synchro.platform.paths import NodePaths
from synchro.reports import ReportStore, State, error_in
from synchro.reports.records import INTERRUPTED
from synchro.state import StateDB


def fill(disk: Path) -> Path:
    """Fill ``disk`` to its last byte. Written until the disk refuses (halving the piece),
    not the free space read first: the program still running writes its log there
    meanwhile, and the filler's own write then met « No space left » (seen once in CI)."""
    filler = disk / "filler"
    piece = max(1, shutil.disk_usage(disk).free)
    with open(filler, "wb", buffering=0) as out:
        while piece:
            try:
                out.write(bytes(piece))
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                piece //= 2
    return filler


@contextmanager
def running(
    hq_paths: NodePaths, site_paths: NodePaths, before_start: Callable[[], object] = list
) -> Iterator[tuple[App, App, list[object]]]:
    """The Siège's and the Serveur's App, their engine threads started (``before_start``
    runs once both are built); the Serveur's events."""
    events: list[object] = []
    hq = App(load_config(hq_paths.config_file), hq_paths)
    site = App(load_config(site_paths.config_file), site_paths, listeners=(events.append,))
    before_start()
    hq.start()
    site.start()
    try:
        yield hq, site, events
    finally:
        site.close()
        hq.close()


def last_failure(events: list[object]) -> str:
    """The message of the last ``failed`` state the Serveur's App said (waited for)."""

    def failed() -> list[StateChanged]:
        return [e for e in events if isinstance(e, StateChanged) and e.state == "failed"]

    wait_for(lambda: bool(failed()), timeout=60)
    return failed()[-1].message


def test_state_and_rapport_on_a_full_disk_say_disk_not_damaged(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "1m") as disk:
        filler = fill(disk)
        for open_it in (StateDB, lambda path: ReportStore(path).latest()):
            with pytest.raises(StateError) as err:
                open_it(disk / "file.db")  # (the Rapport opens at its first use)
            text = str(err.value)
            assert err.value.kind is ErrorKind.DISK, text
            assert disk_advice() in text and "Restaurez" not in text and "illisible" not in text
        assert ReportStore(disk / "file.db").unavailable is not None
        filler.unlink()
        StateDB(disk / "StateDB.db").close()  # room made: the same file opens
        with ReportStore(disk / "ReportStore.db") as reports:
            assert reports.unavailable is None and reports.latest() == []


def test_a_state_write_on_a_full_disk_is_said_and_the_state_usable_after(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "2m") as disk:
        state = StateDB(disk / "state.db")
        try:
            filler = fill(disk)
            with pytest.raises(StateError) as err, state.transaction():
                state.set_meta("big", "x" * 200_000)
            assert err.value.kind is ErrorKind.DISK and disk_advice() in str(err.value)
            filler.unlink()
            with state.transaction():
                state.set_meta("big", "y")
            assert state.get_meta("big") == "y"
        finally:
            state.close()


def test_a_run_that_cannot_write_its_rapport_leaves_the_service_running(tmp_path: Path) -> None:
    """The Serveur's disk is full: the run cannot even open its Rapport row. That error
    ended the engine thread ("Le moteur de synchronisation s'est arrêté"): no MANUELLE, no
    scheduled run until the program was restarted, and no email. Now the status says why
    (kind disk's advice), the owner gets the report email all the same, and once room is
    made MANUELLE works again."""
    with small_disk(tmp_path / "site", "32m") as disk, smtp_server() as (inbox, smtp_port):
        hq_paths, site_paths = app_pair(tmp_path)
        config = load_config(site_paths.config_file)
        email = email_settings(smtp_port)
        config = dataclasses.replace(config, send_email=True, email=email)
        save_config(config, site_paths.config_file)
        with running(hq_paths, site_paths) as (hq, site, events):
            hq.run_now()
            site.run_now()
            wait_for(lambda: bool(site.reports.latest()), timeout=60)
            wait_for(lambda: site.reports.latest()[0].state is State.OK, timeout=60)
            wait_for(lambda: len(inbox.messages) == 1)
            filler = fill(disk)
            events.clear()
            site.run_now()
            said = last_failure(events)
            assert disk_advice() in said, said
            wait_for(lambda: len(inbox.messages) == 2)  # a row the Rapport could not take
            message = inbox.messages[1].message
            assert "3615" in message["Subject"] and "Echec" in message["Subject"]
            assert "libérez de la place" in message.get_body(("plain",)).get_content()
            filler.unlink()
            hq.run_now()
            site.run_now()
            wait_for(lambda: len(site.reports.latest()) == 2, timeout=60)
            wait_for(lambda: site.reports.latest()[0].state is State.OK, timeout=60)


def test_a_node_that_cannot_open_on_a_full_disk_is_said_and_opened_once_room_is_made(
    tmp_path: Path,
) -> None:
    """The state cannot open on a full disk, nor can the Rapport take the row saying so:
    the engine died with it. Now it says why and tries again at MANUELLE."""
    with small_disk(tmp_path / "site", "32m") as disk:
        hq_paths, site_paths = app_pair(tmp_path)
        assert run_site(site_paths) is State.FAILED  # (no Siège running: its state exists)
        for made in site_paths.state_db.parent.glob(site_paths.state_db.name + "*"):
            made.unlink()  # a first start: the state is made at opening
        fillers: list[Path] = []  # filled once the Rapport is open (a long uptime)
        with running(hq_paths, site_paths, lambda: fillers.append(fill(disk))) as (
            hq,
            site,
            events,
        ):
            said = last_failure(events)
            assert disk_advice() in said, said
            fillers[0].unlink()
            hq.run_now()
            site.run_now()
            wait_for(lambda: site.reports.latest()[0].state is State.OK, timeout=60)


def test_a_program_started_on_a_full_disk_runs_says_why_and_records_once_room_is_made(
    tmp_path: Path,
) -> None:
    """The disk was full when the program started (the shop's server rebooted after the
    disk filled). Opening the Rapport failed in the App's constructor ("disk I/O error":
    even reading a WAL file needs its shared-memory file), so the program could not start
    at all: no tray, no retry, no run once room was made. Now it starts, the status says
    why, and once room is made MANUELLE runs, and the row an earlier crash left
    « En cours... » is closed as interrupted."""
    with small_disk(tmp_path / "site", "32m") as disk:
        hq_paths, site_paths = app_pair(tmp_path)
        assert run_site(site_paths) is State.FAILED  # (no Siège running: Rapport and state exist)
        with ReportStore(site_paths.reports_db) as reports:
            cut = reports.start("3615", "run", now=dt.datetime(2026, 12, 5, 23, 0))
        filler = fill(disk)
        with pytest.raises(StateError):
            ReportStore(site_paths.reports_db).latest()  # nothing of it can be read now
        with running(hq_paths, site_paths) as (hq, site, events):
            said = last_failure(events)
            assert disk_advice() in said, said
            assert site.reports.unavailable is not None
            filler.unlink()
            hq.run_now()
            site.run_now()
            wait_for(lambda: site.reports.latest()[0].state is State.OK, timeout=60)
            interrupted = site.reports.get(cut)
            assert interrupted.state is State.FAILED and interrupted.error == INTERRUPTED
            assert site.reports.unavailable is None


def test_a_siege_round_its_rapport_cannot_take_is_emailed_and_written_once_room_is_made(
    tmp_path: Path,
) -> None:
    """The Siège's disk fills during a round: the round's row could not be made final, so
    no email went out (the owner learnt nothing) and the row stayed « En cours... », where
    the next start takes it for a round a crash cut. Now the round is emailed as Echec
    with the disk's advice, its row is written once room is made, and rounds go on."""
    with small_disk(tmp_path / "hq", "32m") as disk, smtp_server() as (inbox, smtp_port):
        hq_paths, site_paths = app_pair(tmp_path)
        config = load_config(hq_paths.config_file)
        config = dataclasses.replace(config, send_email=True, email=email_settings(smtp_port))
        save_config(config, hq_paths.config_file)
        with running(hq_paths, site_paths) as (hq, site, _events):
            hq.run_now()
            wait_for(lambda: bool(hq.reports.latest()), timeout=60)
            cut = hq.reports.latest()[0]
            assert cut.kind == "round" and cut.state is State.RUNNING
            filler = fill(disk)
            hq.stop_run()  # ARRETER: the round ends, its row cannot be written
            wait_for(lambda: len(inbox.messages) == 1, timeout=60)
            message = inbox.messages[0].message
            assert "SIEGE" in message["Subject"] and "Echec" in message["Subject"]
            assert "libérez de la place" in message.get_body(("plain",)).get_content()
            assert hq.reports.get(cut.id).state is State.RUNNING  # (nothing written yet)
            filler.unlink()
            wait_for(lambda: hq.reports.get(cut.id).state is State.FAILED, timeout=60)
            assert disk_advice() in hq.reports.get(cut.id).error
            english = error_in(hq.reports.get(cut.id), "en")  # said in the UI's language
            assert disk_advice("en") in english and disk_advice() not in english, english
            hq.run_now()
            site.run_now()
            wait_for(lambda: hq.reports.latest(kinds=("round",))[0].id != cut.id, timeout=60)
            wait_for(lambda: hq.reports.latest(kinds=("round",))[0].state is State.OK, timeout=60)
