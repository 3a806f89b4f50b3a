"""A download is not a delivery: an establishment killed in the middle of a round, started
again, ends OK and every node holds the same rows — real ``synchro sync`` processes over
FTPS on loopback, killed by PID (SIGKILL) as a power cut would."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pair_helpers import cli_group, popen, synchro

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX"),
]


def ids(db: Path) -> list[int]:
    conn = sqlite3.connect(db)
    try:
        return [r[0] for r in conn.execute("SELECT id FROM articles ORDER BY id")]
    finally:
        conn.close()


def add_row(db: Path, row_id: int) -> None:
    conn = sqlite3.connect(db)
    try:
        conn.execute("INSERT INTO articles VALUES (?, ?, '1.00')", (row_id, f"article {row_id}"))
        conn.commit()
    finally:
        conn.close()


def finish(process: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, out + err


def sync(folder: Path, *extra: str, kill_at: str = "") -> subprocess.Popen[str]:
    env = {"SYNCHRO_KILL_AT": kill_at} if kill_at else None
    return popen("--config", "synchro.toml", "sync", *extra, cwd=folder, env=env)


def last_report(folder: Path, kind: str = "run") -> dict[str, object]:
    done = synchro("--config", "synchro.toml", "report", "--json", cwd=folder)
    rows: list[dict[str, object]] = json.loads(done.stdout)
    return next(r for r in rows if r["kind"] == kind)


def wait_for_delivery(site: subprocess.Popen[str], delivered: Path) -> None:
    """Until the site's package lies complete in the Siège's /in (bounded: a liveness
    check, not a timing); the site must still be running meanwhile."""
    deadline = time.monotonic() + 60
    while not delivered.exists():
        assert site.poll() is None, finish(site)[1]
        assert time.monotonic() < deadline, f"no {delivered.name} after 60 s"
        time.sleep(0.02)


def test_site_killed_after_its_upload_is_ok_once_started_again(tmp_path: Path) -> None:
    hq, sites = cli_group(tmp_path, ["A", "B"], attempts=4, retry_delay="00:00:05")
    a_db, b_db, hq_db = sites["A"] / "m.db", sites["B"] / "m.db", hq / "hq.db"
    siege = sync(hq, "--linger", "30")
    runs = [sync(sites["A"]), sync(sites["B"])]
    assert [finish(p)[0] for p in runs] == [0, 0]
    assert finish(siege)[0] == 0
    add_row(a_db, 2)
    add_row(b_db, 3)

    siege = sync(hq, "--linger", "30")
    killed = sync(sites["A"])
    wait_for_delivery(killed, hq / "data" / "ftp" / "A" / "in" / "A-00000002.pkg")
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(30)
    b = sync(sites["B"])
    assert finish(b)[0] == 0
    code, said = finish(sync(sites["A"]))
    assert code == 0, said
    code, said = finish(siege)
    assert code == 0, said  # the round is OK: both establishments acknowledged
    assert ids(hq_db) == ids(a_db) == ids(b_db) == [1, 2, 3]
    assert last_report(sites["A"])["state"] == "OK"
    round_row = last_report(hq, "round")
    assert round_row["state"] == "OK"
    assert round_row["details"]["controle"] == "identiques"  # type: ignore[index]
    # A's second run re-sent package 2 (never acknowledged), it made no package 3
    archive = hq / "data" / "packages" / "archive" / "A"
    assert sorted(p.name for p in archive.glob("*.pkg")) == ["A-00000001.pkg", "A-00000002.pkg"]


@pytest.mark.parametrize(
    "point",
    [
        "site.downloaded",  # the Siège's package is in the inbox, not applied
        "site.applied",  # applied, the ack not written
        "site.ack.written",  # the ack written, not sent
    ],
)
def test_site_killed_between_download_and_ack_finishes_on_its_next_start(
    tmp_path: Path, point: str
) -> None:
    hq, sites = cli_group(tmp_path, ["A"], attempts=4, retry_delay="00:00:02")
    add_row(sites["A"] / "m.db", 2)
    siege = sync(hq, "--linger", "60")
    code, said = finish(sync(sites["A"], kill_at=point))
    assert code == -signal.SIGKILL, said
    code, said = finish(sync(sites["A"]))
    assert code == 0, said
    kept = "reçues lors d'une synchronisation interrompue" in said  # applied from the inbox
    assert kept == (point == "site.downloaded"), said
    code, said = finish(siege)
    assert code == 0, said  # the Siège waited for the ack, not for the download
    assert ids(hq / "hq.db") == ids(sites["A"] / "m.db") == [1, 2]
    runs = json.loads(
        synchro("--config", "synchro.toml", "report", "--json", cwd=sites["A"]).stdout
    )
    assert [r["state"] for r in runs] == ["OK", "Echec"]
    assert "interrompu" in runs[1]["error"]
    # the second run applied the kept package first, then made its own delivery (empty:
    # every run delivers, so that a Siège round counts it) — each applied once
    applied = hq / "data" / "packages" / "archive" / "A"
    assert sorted(p.name for p in applied.glob("*.pkg")) == ["A-00000001.pkg", "A-00000002.pkg"]


def test_siege_killed_before_publishing_serves_the_package_sent_again(tmp_path: Path) -> None:
    """The Siège's ``sync`` dies after applying A's package, before its answer is published.
    Started again, its new round counts A's copy of that package (A was never answered):
    the round closes at once, A gets its answer and both end OK."""
    hq, sites = cli_group(tmp_path, ["A"], attempts=4, retry_delay="00:00:02")
    add_row(sites["A"] / "m.db", 2)
    siege = sync(hq, "--linger", "60", kill_at="hq.publish.before")
    waiting = sync(sites["A"])
    code, said = finish(siege)
    assert code == -signal.SIGKILL, said
    os.kill(waiting.pid, signal.SIGKILL)  # (or it would fail after its attempts)
    finish(waiting)
    assert ids(hq / "hq.db") == [1, 2]  # applied before the Siège died
    siege = sync(hq, "--linger", "60")
    code, said = finish(sync(sites["A"]))
    assert code == 0, said
    code, said = finish(siege)
    assert code == 0, said
    assert "aucune donnée" not in said
    assert ids(sites["A"] / "m.db") == [1, 2]


def test_siege_sync_waits_for_the_ack_not_the_download(tmp_path: Path) -> None:
    """A dies right after downloading its answer and is not started again: the Siège's
    ``sync`` does not take the download for a delivery; after --linger it ends Echec, A's
    row saying no ack came, and the answer stays offered for A's next run."""
    hq, sites = cli_group(tmp_path, ["A"], attempts=4, retry_delay="00:00:02")
    siege = sync(hq, "--linger", "3")
    code, said = finish(sync(sites["A"], kill_at="site.downloaded"))
    assert code == -signal.SIGKILL, said
    code, said = finish(siege)
    assert code == 1, said
    report = synchro("--config", "synchro.toml", "report", "--json", cwd=hq)
    row = next(r for r in json.loads(report.stdout) if r["kind"] == "site-in-round")
    assert row["site"] == "A" and row["state"] == "Echec"
    assert "accusé de réception non reçu" in row["error"]
    assert list((hq / "data" / "ftp" / "A" / "out").glob("SIEGE-A-*.pkg"))


def test_siege_killed_while_a_site_waits_takes_its_delivery_over(tmp_path: Path) -> None:
    """The Siège's ``sync`` is killed by PID while A, having delivered, waits for B. Started
    again, its round takes over A's package left in /in (the round it came for was cut by
    the crash): B's delivery closes it and A, still waiting, ends OK."""
    hq, sites = cli_group(tmp_path, ["A", "B"], attempts=20, retry_delay="00:00:01")
    add_row(sites["A"] / "m.db", 2)
    siege = sync(hq, "--linger", "60")
    waiting = sync(sites["A"])
    wait_for_delivery(waiting, hq / "data" / "ftp" / "A" / "in" / "A-00000001.pkg")
    os.kill(siege.pid, signal.SIGKILL)
    finish(siege)
    siege = sync(hq, "--linger", "60")
    code, said = finish(sync(sites["B"]))
    assert code == 0, said
    code, said = finish(waiting)
    assert code == 0, said
    code, said = finish(siege)
    assert code == 0, said
    assert ids(hq / "hq.db") == ids(sites["A"] / "m.db") == ids(sites["B"] / "m.db") == [1, 2]


def test_siege_killed_after_applying_everything_is_taken_over_by_its_rerun(
    tmp_path: Path,
) -> None:
    """The Siège's ``sync`` dies after it applied A's and B's packages, before answering.
    Its re-run's round takes the interrupted one over: A and B, waiting, count as delivered
    (they send nothing again), get their answer and ack it; the new round ends OK with their
    rows saying which round they were taken over from, the interrupted one « interrompu »."""
    hq, sites = cli_group(tmp_path, ["A", "B"], attempts=30, retry_delay="00:00:01")
    add_row(sites["A"] / "m.db", 2)
    add_row(sites["B"] / "m.db", 3)
    siege = sync(hq, "--linger", "60", kill_at="hq.publish.before")
    waiting = [sync(sites["A"]), sync(sites["B"])]
    code, said = finish(siege)
    assert code == -signal.SIGKILL, said
    siege = sync(hq, "--linger", "60")
    for process in waiting:
        code, said = finish(process)
        assert code == 0, said
    code, said = finish(siege)
    assert code == 0, said
    assert "Reprise du tour" in said
    for folder in (hq, sites["A"], sites["B"]):
        assert ids(folder / ("hq.db" if folder == hq else "m.db")) == [1, 2, 3]
    done = synchro("--config", "synchro.toml", "report", "--json", cwd=hq)
    report: list[dict[str, object]] = json.loads(done.stdout)
    rounds = [r for r in report if r["kind"] == "round"]
    new, old = rounds[0], rounds[1]
    assert new["state"] == "OK" and old["state"] == "Echec"
    assert "interrompu" in str(old["error"])
    taken = [r for r in report if r["kind"] == "site-in-round" and r["round_id"] == new["id"]]
    assert sorted(str(r["site"]) for r in taken) == ["A", "B"]
    assert all(r["state"] == "OK" for r in taken)
    assert all(dict(r["details"])["repris"] == old["id"] for r in taken)  # type: ignore[call-overload]
