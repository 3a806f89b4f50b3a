"""The Rapport store: a real sqlite file, times injected."""

from __future__ import annotations

import csv
import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from synchro.errors import StateError
from synchro.reports import (
    INTERRUPTED,
    ReportStore,
    State,
    format_date,
    state_label,
    unapplied_text,
)

T0 = dt.datetime(2005, 12, 6, 9, 20, 7)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ReportStore]:
    with ReportStore(tmp_path / "rapport.db") as s:
        yield s


def test_format_date_is_the_manuals() -> None:
    assert format_date(dt.datetime(2005, 12, 6, 15, 15, 11)) == "06/12/2005 15:15:11"
    assert format_date(None) == ""


def test_states_are_the_manuals_words_and_translated_for_english() -> None:
    assert [s.value for s in State] == ["En cours...", "OK", "Arrêt", "Echec"]
    assert state_label(State.STOPPED, "fr") == "Arrêt"
    assert state_label(State.STOPPED, "en") == "Stopped"
    assert state_label("Echec", "en") == "Failed"


def test_start_update_finish(store: ReportStore) -> None:
    run = store.start("3615", "run", now=T0)
    rec = store.get(run)
    assert rec.state is State.RUNNING and rec.ended is None and rec.started == T0
    assert rec.kind == "run" and rec.round_id is None and rec.details == {}

    store.update(run, rows_sent=120, bytes_sent=4096)
    assert store.get(run).rows_sent == 120
    assert store.get(run).state is State.RUNNING

    end = T0 + dt.timedelta(minutes=1, seconds=21)
    done = store.finish(
        run,
        State.OK,
        now=end,
        rows_received=7,
        conflicts=1,
        details={"conflicts": [{"table": "ventes", "key": [1], "winner": "HQ", "loser": "3615"}]},
    )
    assert done == store.get(run)
    assert done.state is State.OK and done.ended == end
    assert (done.rows_sent, done.rows_received, done.bytes_sent, done.conflicts) == (
        120,
        7,
        4096,
        1,
    )
    assert done.details["conflicts"][0]["winner"] == "HQ"

    store.merge_details(run, {"email": {"status": "sent"}})
    again = store.get(run)
    assert again.details["email"] == {"status": "sent"}
    assert "conflicts" in again.details and again.state is State.OK


def test_unknown_counter_and_kind_are_refused(store: ReportStore) -> None:
    run = store.start("3615", "run", now=T0)
    with pytest.raises(ValueError):
        store.update(run, rows=1)
    with pytest.raises(ValueError):
        store.start("3615", "daily", now=T0)
    with pytest.raises(KeyError):
        store.get(run + 100)


def test_latest_is_newest_first_and_limited(store: ReportStore) -> None:
    ids = [store.start("3615", "run", now=T0 + dt.timedelta(days=i)) for i in range(5)]
    # an older row created last still sorts by its Début
    old = store.start("3616", "run", now=T0 - dt.timedelta(days=1))
    assert [r.id for r in store.latest()] == [*reversed(ids), old]
    assert [r.id for r in store.latest(limit=2)] == [ids[4], ids[3]]


def test_round_rows(store: ReportStore) -> None:
    round_id = store.start("0001", "round", now=T0)
    b = store.start("3616", "site-in-round", round_id=round_id, now=T0)
    a = store.start("3615", "site-in-round", round_id=round_id, now=T0)
    other = store.start("3615", "run", now=T0)
    rows = store.for_round(round_id)
    assert [r.id for r in rows] == [round_id, a, b]
    assert all(r.round_id == round_id for r in rows[1:])
    assert other not in [r.id for r in rows]
    assert [r.id for r in store.latest(kinds=("round",))] == [round_id]
    assert {r.id for r in store.latest(kinds=("run", "site-in-round"))} == {a, b, other}


def test_close_interrupted_after_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "rapport.db"
    crashed = ReportStore(path)
    done = crashed.start("3615", "run", now=T0)
    crashed.finish(done, State.OK, now=T0 + dt.timedelta(minutes=1))
    cut = crashed.start("3615", "run", now=T0 + dt.timedelta(hours=1))
    crashed.close()  # the process "dies" with a row En cours...

    later = T0 + dt.timedelta(hours=5)
    with ReportStore(path) as store:
        closed = store.close_interrupted(later)
        assert [r.id for r in closed] == [cut]
        assert closed[0].state is State.FAILED
        assert closed[0].error == INTERRUPTED
        assert closed[0].ended == later
        assert store.get(done).state is State.OK
        assert store.close_interrupted(later) == []


def test_export_csv_opens_back_in_excel_form(store: ReportStore, tmp_path: Path) -> None:
    ok = store.start("3615", "run", now=dt.datetime(2005, 12, 6, 9, 25, 44))
    store.finish(ok, State.OK, now=dt.datetime(2005, 12, 6, 10, 18, 27), rows_sent=12)
    bad = store.start("3615", "run", now=dt.datetime(2005, 12, 5, 23, 0, 0))
    store.finish(
        bad,
        State.FAILED,
        now=dt.datetime(2005, 12, 6, 3, 2, 14),
        error="Siège injoignable; réessayé 10 fois",
    )
    out = tmp_path / "rapport.csv"
    assert store.export_csv(out, "fr") == 2
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with open(out, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    assert rows[0] == [
        "Etablissement",
        "Début",
        "Fin",
        "Etat",
        "lignes envoyées",
        "reçues",
        "conflits",
        "quarantaine",
        "erreur",
    ]
    assert rows[1] == [
        "3615",
        "06/12/2005 09:25:44",
        "06/12/2005 10:18:27",
        "OK",
        "12",
        "0",
        "0",
        "0",
        "",
    ]
    assert rows[2][3] == "Echec"
    assert rows[2][8] == "Siège injoignable; réessayé 10 fois"

    en = tmp_path / "report.csv"
    store.export_csv(en, "en")
    with open(en, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    assert rows[0][0] == "Establishment" and rows[2][3] == "Failed"


def test_mail_log(store: ReportStore) -> None:
    assert store.last_mail("3615", "failure") is None
    store.record_mail("3615", "failure", T0)
    store.record_mail("3615", "failure", T0 + dt.timedelta(days=1))
    assert store.last_mail("3615", "failure") == T0 + dt.timedelta(days=1)
    assert store.last_mail("3616", "failure") is None


def test_engine_writes_while_gui_reads(store: ReportStore) -> None:
    """Two threads on one store: no 'objects created in a thread' error, no lost write."""
    run = store.start("3615", "run", now=T0)
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(200):
                store.latest()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    for n in range(200):
        store.update(run, rows_sent=n)
    thread.join()
    assert errors == []
    assert store.get(run).rows_sent == 199


def test_reopening_keeps_rows(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "rapport.db"
    with ReportStore(path) as store:
        store.start("3615", "run", now=T0)
    with ReportStore(path) as store:
        assert len(store.latest()) == 1


def test_a_failed_write_leaves_the_store_usable(store: ReportStore) -> None:
    with pytest.raises(KeyError):
        store.finish(999, State.OK, now=T0)
    run = store.start("3615", "run", now=T0)
    assert store.finish(run, State.OK, now=T0).state is State.OK


def test_a_damaged_file_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "rapport.db"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StateError, match="rapport"):
        ReportStore(path)


def test_an_ok_run_with_rows_not_applied_is_stored_as_echec(store: ReportStore) -> None:
    t0 = dt.datetime(2026, 12, 4, 10, 0, 0)
    rid = store.start("3615", "run", now=t0)
    applied = [{"package": "SIEGE#3", "tbl": "t", "key_json": "[2]", "error": "x"}] * 12
    record = store.finish(rid, State.OK, now=t0, quarantined=12, details={"quarantined": applied})
    assert record.state is State.FAILED
    assert record.error == "12 lignes non appliquées — voir le rapport"
    assert record.details["error_kind"] == "not-applied"
    assert record.details["not_applied"] == {"applied": 12, "sent": 0}
    assert unapplied_text(record.details["not_applied"], "en") == (
        "12 rows not applied — see the report"
    )


def test_rows_set_aside_at_capture_are_not_sent_and_a_counter_set_before_counts(
    store: ReportStore,
) -> None:
    t0 = dt.datetime(2026, 12, 4, 10, 0, 0)
    rid = store.start("SIEGE", "round", now=t0)
    held = [{"package": "export", "tbl": "t", "key_json": "[1]", "error": "x"}]
    store.merge_details(rid, {"quarantined": held})
    store.update(rid, quarantined=3)  # the counter comes from an earlier update
    record = store.finish(rid, State.OK, now=t0)
    assert record.state is State.FAILED
    assert record.error == "2 lignes non appliquées, 1 ligne non envoyée — voir le rapport"
    assert unapplied_text({"sent": 1}, "en") == "1 row not sent — see the report"


def test_a_row_failed_for_another_reason_says_the_rows_first(store: ReportStore) -> None:
    t0 = dt.datetime(2026, 12, 4, 10, 0, 0)
    rid = store.start("3615", "run", now=t0)
    record = store.finish(rid, State.FAILED, now=t0, error="siège injoignable", quarantined=1)
    assert (record.state, record.error) == (
        State.FAILED,
        "1 ligne non appliquée — voir le rapport ; siège injoignable",
    )
    assert record.details["not_applied"] == {"applied": 1, "sent": 0}
    assert "error_kind" not in record.details
    rid = store.start("3615", "run", now=t0)
    stopped = store.finish(rid, State.STOPPED, now=t0, quarantined=1)
    assert stopped.state is State.STOPPED
    rid = store.start("3615", "run", now=t0)
    assert store.finish(rid, State.OK, now=t0, quarantined=0).state is State.OK
