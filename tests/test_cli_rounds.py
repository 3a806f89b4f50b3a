"""The headless CLI end to end, in real processes: init, site add, sync, serve, report, demo."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from pair_helpers import cli_pair, popen, synchro
from smtp_server import smtp_server

from synchro.transport.token import parse_token


def table(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT * FROM articles ORDER BY id").fetchall()
    finally:
        conn.close()


@pytest.fixture()
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """A Siège and one Serveur set up with the CLI only, as an administrator would."""
    hq, site, token = cli_pair(tmp_path)
    secret = parse_token(token).secret
    assert len(secret) >= 20
    for folder in (hq, site):
        for path in folder.rglob("*.toml"):
            assert secret not in path.read_text(encoding="utf-8")
    return hq, site


def test_sync_at_siege_and_serveur_in_two_processes(pair: tuple[Path, Path]) -> None:
    hq, site = pair
    # --linger 600: the Siège must stop because the establishment has its package (an
    # unconditional linger would outlast communicate()'s timeout and fail the test)
    siege = popen("--config", "synchro.toml", "sync", "--linger", "600", cwd=hq)
    try:
        magasin = synchro("--config", "synchro.toml", "sync", cwd=site, timeout=90)
        out, err = siege.communicate(timeout=90)
    finally:
        if siege.poll() is None:
            siege.kill()
    assert magasin.returncode == 0, magasin.stderr + magasin.stdout
    assert siege.returncode == 0, err + out
    assert table(hq / "hq.db") == table(site / "m.db")
    assert len(table(hq / "hq.db")) == 2
    report = synchro("--config", "synchro.toml", "report", "--json", cwd=site)
    rows = json.loads(report.stdout)
    assert rows[0]["state"] == "OK" and rows[0]["site"] == "3615"
    status = synchro("--config", "synchro.toml", "status", cwd=site)
    assert status.returncode == 0 and "ADMIN" in status.stdout  # default password flagged


def test_serve_answers_raz_and_stop_then_stops_on_sigterm(pair: tuple[Path, Path]) -> None:
    hq, _site = pair
    serve = popen("--config", "synchro.toml", "serve", cwd=hq)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            reply = synchro("--config", "synchro.toml", "raz", cwd=hq)
            if reply.returncode == 0:
                break
            time.sleep(0.3)
        assert reply.returncode == 0, reply.stderr
        second = synchro("--config", "synchro.toml", "serve", cwd=hq, timeout=30)
        assert second.returncode == 1 and "déjà lancé" in second.stderr
        assert synchro("--config", "synchro.toml", "stop", cwd=hq).returncode == 0
        serve.terminate()
        _out, err = serve.communicate(timeout=30)
    finally:
        if serve.poll() is None:
            serve.kill()
    assert serve.returncode == 0, err
    assert "Démarrage en mode siège." in err
    after = synchro("--config", "synchro.toml", "raz", cwd=hq)
    assert after.returncode == 1 and "pas lancé" in after.stderr


def test_serve_stopped_during_its_start_up_stops_cleanly(pair: tuple[Path, Path]) -> None:
    """A SIGTERM that comes while ``serve`` is starting (its lock just taken, the FTP server
    not up yet) is honoured once started: a clean stop, the lock released, not a kill."""
    hq, _site = pair
    lock = hq / "data" / "synchro.lock"
    assert not lock.exists()
    serve = popen("--config", "synchro.toml", "serve", cwd=hq)
    try:
        deadline = time.monotonic() + 30
        while not lock.exists() and time.monotonic() < deadline:
            time.sleep(0.001)
        serve.send_signal(signal.SIGTERM)
        _out, err = serve.communicate(timeout=30)
    finally:
        if serve.poll() is None:
            serve.kill()
    assert serve.returncode == 0, err
    assert "Synchro arrêté proprement." in err
    after = synchro("--config", "synchro.toml", "raz", cwd=hq)
    assert after.returncode == 1 and "pas lancé" in after.stderr


def test_serve_stopped_while_a_row_waits_for_its_ack_leaves_no_row_en_cours(
    pair: tuple[Path, Path],
) -> None:
    """The establishment dies after applying, before its ack; ``serve`` is then stopped
    cleanly: the row waiting for that ack ends (Echec, no ack) with the program instead of
    staying « En cours... » until the next start."""
    hq, site = pair
    serve = popen("--config", "synchro.toml", "serve", cwd=hq)
    try:
        magasin = popen(
            "--config", "synchro.toml", "sync", cwd=site, env={"SYNCHRO_KILL_AT": "site.applied"}
        )
        magasin.communicate(timeout=90)
        assert magasin.returncode == -signal.SIGKILL
        serve.send_signal(signal.SIGTERM)
        _out, err = serve.communicate(timeout=60)
    finally:
        for process in (serve,):
            if process.poll() is None:
                process.kill()
    assert serve.returncode == 0, err
    rows = json.loads(synchro("--config", "synchro.toml", "report", "--json", cwd=hq).stdout)
    assert rows and not [r for r in rows if r["state"] == "En cours..."], rows
    waiting = [r for r in rows if r["kind"] == "site-in-round"]
    assert waiting and waiting[0]["state"] == "Echec"
    assert "accusé de réception non reçu" in str(waiting[0]["error"])


def test_test_connection_names_the_failure(pair: tuple[Path, Path]) -> None:
    _hq, site = pair
    done = synchro("--config", "synchro.toml", "test-connection", cwd=site)
    assert done.returncode == 1
    assert "refused" in done.stderr


def test_demo_passes_and_mails_its_reports(tmp_path: Path) -> None:
    with smtp_server() as (inbox, port):
        done = synchro(
            "demo",
            "--dir",
            str(tmp_path / "demo"),
            "--smtp",
            f"127.0.0.1:{port}",
            cwd=tmp_path,
            timeout=120,
        )
        deadline = time.monotonic() + 20
        while len(inbox.messages) < 6 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Les trois bases sont identiques" in done.stdout
    assert "identique partout" in done.stdout
    # two rounds: the Siège's two round reports and each shop's two run reports
    subjects = sorted(m.message["Subject"] for m in inbox.messages)
    assert len(subjects) == 6, subjects
    assert sum("SIEGE" in s for s in subjects) == 2
    assert all("OK" in s for s in subjects)
    assert all(m.rcpt_tos == ["gerant@example.invalid"] for m in inbox.messages)
