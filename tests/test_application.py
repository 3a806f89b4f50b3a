"""synchro.application: the API the CLI, the demo and the tray backend use.

A real Siège and Serveur on loopback (``app_pair``: the Siège enrolled 3615 and 3615
joined with its token), driven only through ``Synchro``."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pair_helpers import app_pair, free_port

from synchro.application import (
    Event,
    StateChanged,
    Synchro,
    node_checksums,
    odbc_drivers,
    test_connection,
)
from synchro.config.store import load_config
from synchro.errors import ConnectionTestError
from synchro.log import setup_logging, shutdown_logging
from synchro.platform.paths import NodePaths
from synchro.reports import State


@pytest.fixture(autouse=True)
def logging_set_up(tmp_path: Path) -> Iterator[None]:
    setup_logging(tmp_path / "logs", console=False)  # the App masks secrets in its log
    yield
    shutdown_logging()


@pytest.fixture()
def pair(tmp_path: Path) -> tuple[NodePaths, NodePaths]:
    return app_pair(tmp_path)


def open_node(paths: NodePaths, seen: list[Event] | None = None) -> Synchro:
    listeners = (seen.append,) if seen is not None else ()
    return Synchro.open(load_config(paths.config_file), paths, listeners=listeners, poll_s=0.2)


def test_a_serveur_syncs_once_against_the_serving_siege(pair: tuple[NodePaths, NodePaths]) -> None:
    hq_paths, site_paths = pair
    siege = open_node(hq_paths)
    siege.serve()
    try:
        siege.run_now()
        site = open_node(site_paths)
        try:
            record = site.sync_once()
            assert record.state is State.OK, record.error
            assert site.report(5)[0].id == record.id
        finally:
            site.close()
        hq_sums, _conflicts = node_checksums(siege.config, hq_paths)
        site_sums, _ = node_checksums(load_config(site_paths.config_file), site_paths)
        assert hq_sums == site_sums and hq_sums["articles"][0] == 2
    finally:
        siege.close()


def test_the_siege_syncs_once_and_lingers_for_the_ack(pair: tuple[NodePaths, NodePaths]) -> None:
    """``synchro sync`` at the Siège: a round now, closed when 3615 delivered, then the
    linger ends as soon as 3615 acknowledged (not after the whole 60 s)."""
    hq_paths, site_paths = pair
    siege = open_node(hq_paths)
    records = []
    worker = threading.Thread(target=lambda: records.append(siege.sync_once(linger_s=60)))
    worker.start()
    site = open_node(site_paths)
    try:
        assert site.sync_once().state is State.OK
        worker.join(60)
        assert not worker.is_alive()
        assert records[0].state is State.OK, records[0].error
        assert records[0].kind == "round"
    finally:
        site.close()
        siege.interrupt()
        worker.join(10)
        siege.close()


def test_interrupt_ends_the_siege_round_as_stopped(pair: tuple[NodePaths, NodePaths]) -> None:
    hq_paths, _site_paths = pair
    seen: list[Event] = []
    siege = open_node(hq_paths, seen)
    records = []
    worker = threading.Thread(target=lambda: records.append(siege.sync_once(linger_s=60)))
    worker.start()
    try:
        for _ in range(200):  # the round is open once the state says "running"
            if any(isinstance(e, StateChanged) and e.state == "running" for e in list(seen)):
                break
            threading.Event().wait(0.05)
        siege.interrupt()
        worker.join(30)
        assert not worker.is_alive()
        assert records[0].state is State.STOPPED
    finally:
        siege.close()


def test_subscribers_get_events_until_they_unsubscribe(pair: tuple[NodePaths, NodePaths]) -> None:
    _hq_paths, site_paths = pair
    site = open_node(site_paths)
    got: list[Event] = []
    try:
        unsubscribe = site.subscribe(got.append)
        site.app.emit(StateChanged("idle"))
        unsubscribe()
        unsubscribe()  # twice is harmless
        site.app.emit(StateChanged("running"))
    finally:
        site.close()
    assert got == [StateChanged("idle")]


def test_connection_test_names_what_failed(pair: tuple[NodePaths, NodePaths]) -> None:
    _hq_paths, site_paths = pair
    config = load_config(site_paths.config_file)
    with pytest.raises(ConnectionTestError) as bad:
        test_connection(config, site_paths, "siege:port")
    assert bad.value.code == "dns"
    with pytest.raises(ConnectionTestError) as refused:  # the settings' address: nobody there
        test_connection(config, site_paths)
    assert refused.value.code == "refused"
    with pytest.raises(ConnectionTestError) as refused:
        test_connection(config, site_paths, f"127.0.0.1:{free_port()}", check_schemas=True)
    assert refused.value.code == "refused"


@pytest.mark.parametrize(
    ("lang", "words"),
    [("fr", "Connexion au siège 127.0.0.1:"), ("en", "Connected to the Siège 127.0.0.1:")],
)
def test_connection_test_answers_in_the_ui_language(
    pair: tuple[NodePaths, NodePaths], lang: str, words: str
) -> None:
    """Test against the serving Siège: the line in the UI's language, FTPS with the pinned
    certificate; with the schema check, the same line followed by what the check found."""
    hq_paths, site_paths = pair
    siege = open_node(hq_paths)
    siege.serve()
    try:
        config = dataclasses.replace(load_config(site_paths.config_file), language=lang)
        address = f"127.0.0.1:{config.site_settings.hq_port}"
        tested = test_connection(config, site_paths, address)
        assert tested.ok and tested.text.startswith(words), tested
        assert ("certificate verified" if lang == "en" else "certificat vérifié") in tested.text
        checked = test_connection(config, site_paths, address, check_schemas=True)
        assert checked.text.startswith(tested.text.split(";")[0])
        assert len(checked.text.splitlines()) > 1
    finally:
        siege.close()


def test_odbc_drivers_is_a_list() -> None:
    assert all(isinstance(name, str) for name in odbc_drivers())


def test_a_failed_run_says_its_end_in_the_ui_language(pair: tuple[NodePaths, NodePaths]) -> None:
    """A Serveur whose Siège does not answer: the run's last status line and its failed
    state carry the Rapport row's error, said in English from its words (it used to be the
    French text inside an English line)."""
    from synchro.engine.events import Status
    from synchro.reports import error_in

    _hq_paths, site_paths = pair
    config = load_config(site_paths.config_file)
    quick = dataclasses.replace(config.site_settings, attempts=1, hq_port=free_port())
    seen: list[Event] = []
    site = Synchro.open(
        dataclasses.replace(config, site_settings=quick),
        site_paths,
        listeners=(seen.append,),
        poll_s=0.2,
    )
    try:
        record = site.sync_once()
    finally:
        site.close()
    assert record.state is State.FAILED
    english = error_in(record, "en")
    assert english and english != record.error  # the refusal's words, not the French
    end = [e for e in seen if isinstance(e, Status) and e.key == "engine.run.end_error"]
    assert len(end) == 1
    assert end[0].message == f"Fin de la synchronisation : Echec ({record.error})"
    assert end[0].text("en") == f"Synchronisation finished: Failed ({english})"
    failed = [e for e in seen if isinstance(e, StateChanged) and e.state == "failed"]
    assert failed and failed[-1].message == record.error
    assert failed[-1].text_in("en") == english
