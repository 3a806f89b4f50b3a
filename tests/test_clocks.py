"""An establishment whose clock and the Siège's differ is told so (``engine.clocks``): the
rule « la plus récente gagne » compares the dates written in the establishments, and a
shop two hours slow lost its conflicts without a word. Real Siège (App, FTPS server,
round) and real establishment runs whose clock is set ahead or behind.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from test_app import logging_set_up, wait_for  # noqa: F401 (autouse)
from test_mass_deletes import add_articles, in_step

from synchro.app import App
from synchro.config.model import Role
from synchro.config.store import load_config
from synchro.engine.clocks import TOLERANCE_S, ahead_by
from synchro.engine.nodes import open_node
from synchro.mail.message import build_report_message
from synchro.platform.paths import NodePaths
from synchro.report_summary import detail_lines, span
from synchro.reports import RunRecord, State


def run_at(paths: NodePaths, clock: Callable[[], dt.datetime]) -> RunRecord:
    app = App(load_config(paths.config_file), paths, now=clock, poll_s=0.1)
    try:
        with open_node(app.config, paths, app.now) as node:
            return app.run_site(node)
    finally:
        app.close()


def test_the_rule_and_its_words() -> None:
    siege = dt.datetime(2026, 12, 6, 8, 0, tzinfo=dt.UTC)
    assert ahead_by(siege + dt.timedelta(seconds=TOLERANCE_S), siege) is None
    assert ahead_by(siege - dt.timedelta(seconds=TOLERANCE_S + 1), siege) == -TOLERANCE_S - 1
    naive = (siege + dt.timedelta(hours=3)).astimezone().replace(tzinfo=None)  # local time
    assert ahead_by(naive, siege) == 3 * 3600
    assert span(2 * 3600 + 13 * 60 + 40, "fr") == "2 h 13 min"
    assert span(-(3 * 86400 + 4 * 3600 + 5 * 60), "fr") == "3 j 4 h"
    assert span(3 * 86400, "en") == "3 d"
    assert span(150, "en") == "2 min"


@pytest.mark.parametrize(
    ("shift", "fr", "en"),
    [
        (dt.timedelta(hours=3), "en avance de 3 h sur le siège", "3 h ahead of the HQ"),
        (
            -dt.timedelta(hours=2, minutes=13, seconds=30),
            "en retard de 2 h 13 min sur le siège",
            "2 h 13 min behind the HQ",
        ),
    ],
)
def test_a_clock_apart_from_the_siege_s_is_said(
    shift: dt.timedelta, fr: str, en: str, tmp_path: Path
) -> None:
    with in_step(tmp_path, site_rows=0) as (hq, site_paths, site_db, _hq_db):
        add_articles(site_db, 2000, 2)  # a package to send: the Siège's server dates it
        hq.run_now()
        record = run_at(site_paths, lambda: dt.datetime.now() + shift)
        assert record.state is State.OK, record.error
        ahead = record.details["clock"]
        assert abs(ahead - shift.total_seconds()) <= 5, ahead
        assert fr in "\n".join(detail_lines(record.details, record.error, "fr"))
        assert en in "\n".join(detail_lines(record.details, record.error, "en"))
        for lang, words in (("fr", fr), ("en", en)):
            mail = build_report_message(
                [record], site="3615", role=Role.SITE, lang=lang, now=dt.datetime.now()
            )
            assert words in mail.text, mail.text
        # The Siège is told too (the establishment's ack carries it): its round's row of
        # the establishment and its email name the establishment whose clock is apart.
        wait_for(lambda: hq.reports.latest(kinds=("round",))[0].state is not State.RUNNING)
        rows = hq.reports.for_round(hq.reports.latest(kinds=("round",))[0].id)
        (member,) = [r for r in rows if r.kind == "site-in-round"]
        assert abs(member.details["clock"] - shift.total_seconds()) <= 5, member.details
        for lang, words in (("fr", fr), ("en", en)):
            mail = build_report_message(
                rows, site="SIEGE", role=Role.HQ, lang=lang, now=dt.datetime.now()
            )
            assert "3615" in mail.text and words in mail.text, mail.text
        hq.run_now()
        right = run_at(site_paths, dt.datetime.now)
        assert right.state is State.OK and "clock" not in right.details
        wait_for(lambda: hq.reports.latest(kinds=("round",))[0].state is not State.RUNNING)
        rows = hq.reports.for_round(hq.reports.latest(kinds=("round",))[0].id)
        assert all("clock" not in r.details for r in rows)
