"""A full round on loopback with the windows open: real Siège App, real site App behind the
real ``AppBackend``, real windows under Xvfb. MANUELLE in the General window starts the run;
the Rapport shows Etat ``En cours...`` then ``OK``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from gui_fake import FakeTray, click, only, settle
from xvfb import xvfb_fixture  # noqa: F401  (the "xvfb" fixture)

from synchro.app import App, certificate_files
from synchro.config.model import Config, HQSettings, Role, SiteAccount, SiteSettings
from synchro.config.passwords import hash_password
from synchro.config.store import load_config, save_config
from synchro.gui.shell import GuiShell
from synchro.gui.windows import general as g
from synchro.gui.windows import rapport as r
from synchro.gui.windows.general import GeneralController
from synchro.gui.windows.rapport import RapportController
from synchro.gui_backend import AppBackend
from synchro.log import setup_logging, shutdown_logging
from synchro.platform.autostart import XdgAutostart
from synchro.platform.paths import NodePaths, paths_beside
from synchro.transport.tls import ensure_certificate

pytestmark = pytest.mark.gui
SECRET = "secret-3615-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def node(root: Path, name: str, config: Config, rows: str) -> NodePaths:
    paths = paths_beside(root / name / "synchro.toml").ensure()
    db = root / name / "data.db"
    conn = sqlite3.connect(db)
    conn.executescript("CREATE TABLE articles(id INTEGER PRIMARY KEY, nom TEXT NOT NULL);" + rows)
    conn.close()
    database = dataclasses.replace(config.database, connection=str(db))
    save_config(dataclasses.replace(config, database=database), paths.config_file)
    return paths


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[NodePaths, NodePaths]]:
    setup_logging(tmp_path / "logs", console=False)
    port = free_port()
    hq_paths = paths_beside(tmp_path / "hq" / "synchro.toml").ensure()
    fingerprint = ensure_certificate(*certificate_files(hq_paths), "SIEGE")
    hq = Config(
        role=Role.HQ,
        site="SIEGE",
        hq=HQSettings(
            servers=1,
            listen_address="127.0.0.1",
            port=port,
            max_reception=dt.timedelta(seconds=30),
            sites=(SiteAccount("3615", hash_password(SECRET)),),
        ),
    )
    site = Config(
        role=Role.SITE,
        site="3615",
        last_sync=dt.datetime(2026, 1, 1),
        site_settings=SiteSettings(
            attempts=3,
            retry_delay=dt.timedelta(seconds=1),
            hq_address="127.0.0.1",
            hq_port=port,
            secret=SECRET,
            certificate_fingerprint=fingerprint,
            auto_sync=False,
            timeout_s=10,
        ),
    )
    yield (
        node(tmp_path, "hq", hq, "INSERT INTO articles VALUES (1, 'Café');"),
        node(tmp_path, "site", site, "INSERT INTO articles VALUES (2, 'Thé');"),
    )
    shutdown_logging()


def test_manuelle_runs_a_real_round_and_the_rapport_goes_from_en_cours_to_ok(
    xvfb: str,
    pair: tuple[NodePaths, NodePaths],
    tmp_path: Path,
) -> None:
    hq_paths, site_paths = pair
    hq = App(load_config(hq_paths.config_file), hq_paths)
    hq.start()
    backend = AppBackend(site_paths, autostart=XdgAutostart(tmp_path / "autostart"))
    shell = GuiShell(backend, tray=FakeTray())
    try:
        hq.run_now()  # the Siège opens its round
        shell.start()
        shell.open_rapport()
        shell.open_general()
        settle(shell)
        table = only(shell, RapportController).window[r.TABLE]
        assert table.Values == []
        click(shell, only(shell, GeneralController).window, g.MANUAL)
        seen: list[str] = []
        for _ in range(1200):  # read with timeouts until the run ends (bounded: ~30 s)
            shell.step(25)
            states = [row[3] for row in table.Values]
            if states and (not seen or seen[-1] != states[0]):
                seen.append(states[0])
            if seen and seen[-1] in ("OK", "Echec", "Arrêt"):
                break
        assert seen[0] == "En cours..." and seen[-1] == "OK", seen
        assert shell.tray.shown[-1][0].value == "ok"  # type: ignore[attr-defined]
        status = only(shell, GeneralController).window[g.STATUS].get()
        assert "Synchronisation manuelle demandée." in status
    finally:
        shell.quit()
        backend.close()
        hq.close()
    conn = sqlite3.connect(tmp_path / "site" / "data.db")
    try:
        assert conn.execute("SELECT nom FROM articles ORDER BY id").fetchall() == [
            ("Café",),
            ("Thé",),
        ]
    finally:
        conn.close()
