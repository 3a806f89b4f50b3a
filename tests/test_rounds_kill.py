"""A download is not a delivery: an establishment killed in the middle of a round, started
again, ends OK and every node holds the same rows — real ``synchro sync`` processes over
FTPS on loopback, killed by PID (SIGKILL) as a power cut would."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from pair_helpers import cli_group, popen, synchro


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


def sync(folder: Path, *extra: str) -> subprocess.Popen[str]:
    return popen("--config", "synchro.toml", "sync", *extra, cwd=folder)


def last_report(folder: Path, kind: str = "run") -> dict[str, object]:
    done = synchro("--config", "synchro.toml", "report", "--json", cwd=folder)
    rows: list[dict[str, object]] = json.loads(done.stdout)
    return next(r for r in rows if r["kind"] == kind)


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
    delivered = hq / "data" / "ftp" / "A" / "in" / "A-00000002.pkg"
    deadline = time.monotonic() + 60
    while not delivered.exists():
        assert killed.poll() is None, finish(killed)[1]
        assert time.monotonic() < deadline, "A never delivered its package"
        time.sleep(0.02)
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
