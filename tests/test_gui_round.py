"""A full round on loopback with the windows open: real Siège App, real site App behind the
real ``AppBackend``, real windows under Xvfb. MANUELLE in the General window starts the run;
the Rapport shows Etat ``En cours...`` then ``OK``."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from gui_fake import FakeTray, click, only, settle
from pair_helpers import app_pair
from xvfb import xvfb_fixture  # noqa: F401  (the "xvfb" fixture)

from synchro.app import App
from synchro.config.store import load_config
from synchro.gui.shell import GuiShell
from synchro.gui.windows import general_layout as g
from synchro.gui.windows import rapport as r
from synchro.gui.windows.general import GeneralController
from synchro.gui.windows.rapport import RapportController
from synchro.gui_backend import AppBackend
from synchro.log import setup_logging, shutdown_logging
from synchro.platform.autostart import XdgAutostart
from synchro.platform.paths import NodePaths

pytestmark = pytest.mark.gui


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[NodePaths, NodePaths]]:
    setup_logging(tmp_path / "logs", console=False)
    yield app_pair(tmp_path)
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
