"""A table emptied by mistake: the deletes are held, not sent group-wide.

Real Siège (its FTPS server and round service in the App's thread), real Serveur runs,
real SQLite files. Before, a shop whose rows vanished (a purge gone wrong, a table
emptied) sent, at the next automatic run, a delete for every row — its own and the ones
the others had sent it — and every establishment applied them. Now an automatic run whose
capture would delete ≥ ``HOLD_ROWS`` rows and more than ``HOLD_SHARE`` of a table sends
nothing and says why; a synchronisation a person starts (MANUELLE, ``synchro sync``) sends
them. (A restored backup is seen by its mark first: ``test_restore.py``.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import pytest
from pair_helpers import app_pair
from rounds_helpers import group, sql
from rounds_helpers import rows as rows_of
from test_app import logging_set_up, wait_for  # noqa: F401 (autouse)

from synchro.app import App
from synchro.capture.mass_deletes import HOLD_ROWS, HOLD_SHARE, too_many
from synchro.config.store import load_config
from synchro.engine.events import Status
from synchro.engine.nodes import open_node
from synchro.errors import ErrorKind
from synchro.platform.paths import NodePaths
from synchro.report_summary import cause_lines
from synchro.reports import RunRecord, State


def rows(db: Path) -> int:
    return len(rows_of(db, "articles"))


def add_articles(db: Path, first: int, count: int) -> None:
    values = ", ".join(f"({i}, 'article {i}', '{i % 97}.50')" for i in range(first, first + count))
    sql(db, f"INSERT INTO articles VALUES {values};")


def said(event: object, key: str) -> bool:
    return isinstance(event, Status) and event.key == key


def automatic_run(paths: NodePaths) -> RunRecord:
    """The run *Heure de départ* starts (no person's word)."""
    app = App(load_config(paths.config_file), paths, poll_s=0.1)
    try:
        with open_node(app.config, paths, app.now) as node:
            return app.run_site(node)
    finally:
        app.close()


def manual_run(paths: NodePaths, *, take_back: bool = False, send: bool = False) -> RunRecord:
    """MANUELLE through the App's engine thread (a person's word), after the last run;
    ``take_back`` / ``send``: what the person chose after a restore."""
    site = App(load_config(paths.config_file), paths, poll_s=0.1)
    site.start()
    try:
        last = site.reports.latest()[0].id
        site.run_now(take_back=take_back, send=send)
        wait_for(lambda: site.reports.latest()[0].id != last, timeout=30)
        wait_for(lambda: site.reports.latest()[0].state is not State.RUNNING, timeout=60)
        return site.reports.latest()[0]
    finally:
        site.close()


@contextmanager
def siege(paths: NodePaths, events: list[object] | None = None) -> Iterator[App]:
    listeners = () if events is None else (events.append,)
    hq = App(load_config(paths.config_file), paths, listeners=listeners)
    hq.start()
    try:
        yield hq
    finally:
        hq.close()


class Pair(NamedTuple):
    """A running Siège and its establishment (``in_step``)."""

    hq: App
    site: NodePaths
    site_db: Path
    hq_db: Path


@contextmanager
def in_step(
    root: Path, *, site_rows: int = 600, hq_rows: int = 0, events: list[object] | None = None
) -> Iterator[Pair]:
    """A running Siège (``siege``) and its establishment 3615 after one round that carried
    ``site_rows`` articles made at the site and ``hq_rows`` at the Siège (ids from 1000)."""
    hq_paths, site_paths = app_pair(root)
    site_db, hq_db = root / "site" / "data.db", root / "hq" / "data.db"
    if site_rows:
        add_articles(site_db, 1000, site_rows)
    if hq_rows:
        add_articles(hq_db, 1000, hq_rows)
    with siege(hq_paths, events) as hq:
        hq.run_now()
        assert automatic_run(site_paths).state is State.OK
        yield Pair(hq, site_paths, site_db, hq_db)


def test_the_rule_holds_many_deletes_and_lets_a_day_of_work_through() -> None:
    assert not too_many(HOLD_ROWS - 1, HOLD_ROWS)  # a small table emptied: a day's work
    assert not too_many(int(10_000 * HOLD_SHARE), 10_000)
    assert too_many(int(10_000 * HOLD_SHARE) + 1, 10_000)
    assert too_many(HOLD_ROWS, HOLD_ROWS)


def test_rows_vanished_by_mistake_send_no_deletes_until_a_person_says_so(tmp_path: Path) -> None:
    with in_step(tmp_path) as (hq, site_paths, site_db, hq_db):
        add_articles(hq_db, 5000, 400)  # the group goes on: 400 new articles at the Siège
        hq.run_now()
        assert automatic_run(site_paths).state is State.OK
        assert rows(site_db) == rows(hq_db) == 1002
        sql(site_db, "DELETE FROM articles WHERE id BETWEEN 1000 AND 1049;")  # 50: travel
        hq.run_now()
        assert automatic_run(site_paths).state is State.OK
        assert rows(hq_db) == 952
        sql(site_db, "DELETE FROM articles WHERE id >= 5000;")  # a purge gone wrong
        for _ in range(2):  # every automatic run holds, the snapshot is kept
            held = automatic_run(site_paths)
            assert held.state is State.FAILED
            assert "Suppressions retenues" in held.error and "MANUELLE" in held.error
            assert "table articles : 400 lignes sur 952 (42 %)" in held.error, held.error
            assert held.details["error_kind"] == ErrorKind.DELETES
            assert held.rows_sent == 0
            assert rows(hq_db) == 952  # nothing of it reached the group
        fr, en = " ".join(cause_lines(held, "fr")), " ".join(cause_lines(held, "en"))
        assert "table vidée par erreur" in fr and "MANUELLE" in fr, fr
        assert "their deletes were not sent" in en, en
        # a person decides they are wanted: MANUELLE sends them
        manual = manual_run(site_paths)
    assert manual.state is State.OK, manual.error
    assert rows(hq_db) == rows(site_db) == 552


def test_a_siege_emptied_by_mistake_fails_its_scheduled_round_and_sends_at_manuelle(
    tmp_path: Path,
) -> None:
    """The Siège's own database: a scheduled round's close holds (Echec, nothing published),
    a MANUELLE round sends."""
    events: list[object] = []
    with in_step(tmp_path, site_rows=0, hq_rows=500, events=events) as (
        hq,
        site_paths,
        site_db,
        hq_db,
    ):
        assert rows(site_db) == 502
        sql(hq_db, "DELETE FROM articles WHERE id >= 1000;")
        hq.commands.put("scheduled")  # *Heure de départ*
        wait_for(lambda: hq.reports.latest(kinds=("round",))[0].state is State.RUNNING)
        scheduled = hq.reports.latest(kinds=("round",))[0]
        assert automatic_run(site_paths).state is State.FAILED  # nothing published
        wait_for(lambda: hq.reports.get(scheduled.id).state is State.FAILED, timeout=60)
        error = hq.reports.get(scheduled.id).error
        assert "Suppressions retenues" in error and "table articles : 500 lignes" in error
        assert rows(site_db) == 502
        # outside a round the delivery left in /in waits: said as it is, not « erreur interne »
        wait_for(lambda: any(said(e, "engine.hq.trouble") for e in events), timeout=30)
        text = next(e.message for e in events if said(e, "engine.hq.trouble"))
        assert "Suppressions retenues" in text and not any(
            said(e, "engine.hq.error") for e in events
        )
        hq.run_now()  # MANUELLE at the Siège
        wait_for(lambda: hq.reports.latest(kinds=("round",))[0].id != scheduled.id)
        assert automatic_run(site_paths).state is State.OK
    assert rows(site_db) == rows(hq_db) == 2


def test_a_capture_held_keeps_its_snapshot(tmp_path: Path) -> None:
    """Nothing of a held capture is kept: the package is not written, the snapshot not
    changed, so the next capture finds the same deletes."""
    _hq_paths, site_paths = app_pair(tmp_path)
    site_db = tmp_path / "site" / "data.db"
    add_articles(site_db, 1000, 400)
    config = load_config(site_paths.config_file)
    with open_node(config, site_paths, dt.datetime.now) as node:
        first = node.export()
        sql(site_db, "DELETE FROM articles WHERE id >= 1200;")
        outbox = sorted((site_paths.packages_dir / "outbox").glob("*"))
        for _ in range(2):
            with pytest.raises(Exception, match="Suppressions retenues"):
                node.export()
        assert sorted((site_paths.packages_dir / "outbox").glob("*")) == outbox
        confirmed = node.export(deletes_confirmed=True)
    assert confirmed.capture.counts["articles"].deletes == 200
    assert confirmed.manifest.sequence == first.manifest.sequence + 1


def test_a_siege_holding_deletes_between_rounds_waits_and_does_not_publish_again(
    tmp_path: Path,
) -> None:
    """Outside a round a delivery makes the Siège capture its own changes first: held, the
    delivery waits (said, tried again a minute later). A held capture cut no publication
    short, so nothing is published again at every try (it was: one package per
    establishment a minute, for as long as nobody decided)."""
    clock = [dt.datetime(2026, 12, 1, 23, 0)]
    with group(tmp_path, ["3615"], run_service=False, now=lambda: clock[0]) as g:
        values = ", ".join(f"({i}, 'article {i}', '1.00')" for i in range(100, 400))
        sql(g.hq.db, f"INSERT INTO articles VALUES {values};")
        g.service.step("open")
        g.deliver("3615")
        g.service.step()
        g.answer("3615")
        g.service.step()
        assert g.reports.latest(kinds=("round",))[0].state is State.OK
        sql(g.hq.db, "DELETE FROM articles WHERE id >= 100;")
        published = sorted((g.root / "ftp" / "3615" / "out").glob("*.pkg"))
        g.deliver("3615")  # a site early or late: processed at once, outside a round
        for _ in range(3):
            g.service.step()
            assert g.service.paused_until is not None  # held: tried again a minute later
            clock[0] += dt.timedelta(minutes=1, seconds=1)
        assert sorted((g.root / "ftp" / "3615" / "out").glob("*.pkg")) == published
        assert len(list((g.root / "ftp" / "3615" / "in").glob("*.pkg"))) == 1  # it waits
        g.service.step("open")  # MANUELLE: the round's close sends the deletes
        g.service.step()
        g.answer("3615")
        g.service.step()
        assert g.reports.latest(kinds=("round",))[0].state is State.OK
        assert rows_of(g.sites["3615"].db, "articles") == rows_of(g.hq.db, "articles")
