"""A full round on loopback with the windows open: real Siège App, real site App behind the
real ``AppBackend``, real windows under Xvfb. MANUELLE in the General window starts the run;
the Rapport shows Etat ``En cours...`` then ``OK``."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from gui_fake import FakeTray, click, only, settle, wait_for
from pair_helpers import app_pair
from test_app import run_site
from test_disk_full import fill
from test_faults_lost_transaction import small_disk
from xvfb import xvfb_fixture  # noqa: F401  (the "xvfb" fixture)

from synchro.app import App
from synchro.config.store import load_config
from synchro.errors import disk_advice
from synchro.gui.shell import GuiShell
from synchro.gui.windows import general_layout as g
from synchro.gui.windows import rapport as r
from synchro.gui.windows.general import GeneralController
from synchro.gui.windows.rapport import RapportController
from synchro.gui_backend import AppBackend
from synchro.log import setup_logging, shutdown_logging
from synchro.platform.autostart import XdgAutostart
from synchro.platform.paths import NodePaths
from synchro.reports import State

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


def test_the_tray_starts_on_a_full_disk_and_manuelle_works_once_room_is_made(
    xvfb: str, tmp_path: Path
) -> None:
    """The program started while its disk was full: the Rapport could not open, and the
    backend's constructor raised, so no tray, no window, nothing said. Now the tray starts,
    the status says to free some room, the Rapport button says the same, and once room is
    made MANUELLE runs and the Rapport shows OK."""
    setup_logging(tmp_path / "logs", console=False)
    with small_disk(tmp_path / "site", "32m") as disk:
        hq_paths, site_paths = app_pair(tmp_path)
        assert run_site(site_paths) is State.FAILED  # (no Siège yet: Rapport and state exist)
        filler = fill(disk)
        backend = AppBackend(site_paths, autostart=XdgAutostart(tmp_path / "autostart"))
        shell = GuiShell(backend, tray=FakeTray())
        hq = App(load_config(hq_paths.config_file), hq_paths)
        try:
            shell.start()
            shell.open_general()
            wait_for(shell, lambda: any(disk_advice() in line for line in shell.status_lines()))
            shell.open_rapport()
            settle(shell)
            assert not [c for c in shell.controllers if isinstance(c, RapportController)]
            filler.unlink()
            hq.start()
            hq.run_now()
            shell.open_rapport()
            click(shell, only(shell, GeneralController).window, g.MANUAL)
            table = only(shell, RapportController).window[r.TABLE]
            wait_for(shell, lambda: bool(table.Values) and table.Values[0][3] == "OK", 1200)
        finally:
            shell.quit()
            backend.close()
            hq.close()
            shutdown_logging()
