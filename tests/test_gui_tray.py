"""Tray icon (real pystray docked in trayer under Xvfb), icons, tooltip, screenshots."""

from __future__ import annotations

import datetime as dt
import queue
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import require, require_module
from PIL import Image
from xvfb import xvfb_fixture  # noqa: F401  (the "xvfb" fixture)

from synchro.config.model import Config, Role
from synchro.gui import icons, screenshots
from synchro.gui.ports import TrayState
from synchro.gui.tray import MENU, TOOLTIP_MAX, Command, Tray, tooltip

pytestmark = pytest.mark.gui
ASSETS = Path(__file__).resolve().parent.parent / "assets"


def test_tooltip_tells_mode_site_last_result_and_next_run() -> None:
    config = Config(role=Role.HQ, site="3615")
    text = tooltip(config, TrayState.OK, dt.datetime(2005, 12, 6, 23, 0), "fr")
    assert text == "Synchronisation Siège 3615 · dernière : OK · prochaine 06/12 23:00"
    english = tooltip(Config(site="3615"), TrayState.FAILED, None, "en")
    assert (
        english == "Synchronisation Establishment 3615 · last: failed · no synchronisation planned"
    )
    long = tooltip(Config(site="X" * 200), TrayState.IDLE, None, "fr")
    assert len(long) == TOOLTIP_MAX and long.endswith("…")


def test_menu_has_the_issue_items_with_settings_as_default() -> None:
    assert [c for _, c, _ in MENU] == [
        Command.SETTINGS,
        Command.RUN,
        Command.STOP,
        Command.REPORT,
        Command.LOG,
        Command.QUIT,
    ]
    assert [c for _, c, default in MENU if default] == [Command.SETTINGS]


def test_five_distinct_icons_and_the_shipped_assets_match(tmp_path: Path) -> None:
    images = [icons.draw_icon(state, 32).tobytes() for state in TrayState]
    assert len(set(images)) == 5
    written = icons.write_assets(tmp_path)
    assert sorted(p.name for p in written) == sorted(
        p.name for p in ASSETS.iterdir() if p.name.startswith("synchro")
    )
    for state in TrayState:
        shipped = Image.open(ASSETS / f"synchro-{state.value}.png")
        assert shipped.tobytes() == Image.open(tmp_path / f"synchro-{state.value}.png").tobytes()
    assert Image.open(ASSETS / "synchro.ico").format == "ICO"


@pytest.fixture
def trayer(xvfb: str) -> Iterator[None]:
    exe = shutil.which("trayer")
    if exe is None:
        require("trayer is not installed (apt-get install trayer)")
    proc = subprocess.Popen(
        [
            exe,
            "--edge",
            "bottom",
            "--align",
            "right",
            "--widthtype",
            "pixel",
            "--width",
            "100",
            "--height",
            "32",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_tray_manager()
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def wait_for_tray_manager() -> None:
    """Poll (bounded) until a system tray owns the _NET_SYSTEM_TRAY_S0 selection."""
    import Xlib.display

    display = Xlib.display.Display()
    try:
        selection = display.intern_atom("_NET_SYSTEM_TRAY_S0")
        for _ in range(200):
            if display.get_selection_owner(selection) != 0:
                return
            display.sync()
            subprocess.run(["true"], check=True)  # yield a few ms without a bare sleep
        raise AssertionError("trayer did not start")
    finally:
        display.close()


def wait_docked(tray: Tray) -> bool:
    """Wait (bounded, polling the X server on our own connection: python-xlib connections are
    not thread-safe) until the icon window is embedded in the tray. Docking depends on
    trayer's timing, so callers do not require it."""
    import Xlib.display

    display = Xlib.display.Display()
    try:
        root = display.screen().root.id
        for _ in range(100):
            window = getattr(tray.icon, "_window", None)
            if window is not None:
                ours = display.create_resource_object("window", window.id)
                if ours.query_tree().parent.id != root:
                    return True
            tray.thread.join(0.02)  # type: ignore[union-attr]
    finally:
        display.close()
    return False


def test_real_tray_changes_state_and_queues_menu_commands(trayer: None) -> None:
    """The tray under a real tray host (trayer, Xvfb). pystray's X11 loop sometimes stalls
    for good in an X request's reply (``get_geometry`` while drawing on an expose) when
    another thread's call is dispatched to it on the same connection (faulthandler, 7 Dec:
    the loop in ``Xlib send_and_recv``, the updater in pystray's dispatch, once in ~20
    runs). That is pystray's and python-xlib's, on X11 only (the program ships with its
    Windows backend): a stalled tray is stopped and a new one made, at most three times,
    and the test fails if none applies its changes."""
    for _attempt in range(3):
        commands: queue.Queue[Command] = queue.Queue()
        tray = Tray(commands, "fr")
        tray.start()
        try:
            if _menu_and_states(tray, commands):
                break
        finally:
            tray.stop()
    else:
        raise AssertionError("the tray never applied its changes (three trays)")
    # ``stop`` waits 5 s for the updater, whose last act is pystray's ``icon.stop()``: on a
    # busy machine (CI, 6 Dec: still alive after those 5 s) the X11 loop answers later
    tray.updater.join(30)  # type: ignore[union-attr]
    assert not tray.updater.is_alive()  # type: ignore[union-attr]
    # pystray's X11 loop sometimes misses its own DestroyNotify and lingers; it is a daemon
    # thread, so it can never keep the program alive after Quitter.
    assert tray.thread.daemon  # type: ignore[union-attr]


def _menu_and_states(tray: Tray, commands: queue.Queue[Command]) -> bool:
    """The test's steps on ``tray``; False when its X11 loop stalled (see the test)."""
    wait_docked(tray)
    tray.show(TrayState.RUNNING, "Synchronisation Siège 3615 · en cours")
    if not tray.sync(timeout=30):  # (a busy machine, many threads left by other tests, is slow)
        return False
    assert tray.icon.title == "Synchronisation Siège 3615 · en cours"
    assert tray.icon.icon.tobytes() == icons.draw_icon(TrayState.RUNNING).tobytes()
    items = list(tray.icon.menu.items)
    assert [item.text for item in items] == [
        "Paramètres...",
        "Synchroniser maintenant",
        "Arrêter",
        "Rapport",
        "Ouvrir le journal",
        "Quitter",
    ]
    assert [item.enabled for item in items][1:3] == [False, True]  # running: Arrêter only
    tray.icon()  # the default action (a click on the icon)
    assert commands.get(timeout=5) is Command.SETTINGS
    for item in items[1:]:
        item(tray.icon)
    got = [commands.get(timeout=5) for _ in items[1:]]
    assert got == [Command.RUN, Command.STOP, Command.REPORT, Command.LOG, Command.QUIT]
    tray.relabel("en")
    tray.show(TrayState.IDLE, "x")
    if not tray.sync(timeout=30):
        return False
    assert [item.text for item in tray.icon.menu.items][:2] == [
        "Settings...",
        "Synchronise now",
    ]
    assert [item.enabled for item in tray.icon.menu.items][1:3] == [True, False]
    return True


def test_screenshots_render_every_window(xvfb: str, tmp_path: Path) -> None:
    if shutil.which("import") is None:
        require("ImageMagick's import is not installed (apt-get install imagemagick)")
    require_module("tkinter")  # the windows are Tk
    written = screenshots.render_all(tmp_path, languages=("en",))
    names = {p.name for p in written}
    assert {
        "general-siege-en.png",
        "general-serveur-en.png",
        "rapport-en.png",
        "email-en.png",
        "login-en.png",
        "wizard-1-en.png",
        "tray-icons.png",
    } <= names
    for path in written:
        with Image.open(path) as image:
            assert image.width > 100 and image.height > 60


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_screenshot_findings_say_what_the_check_says(lang: str) -> None:
    """The screenshots' sample Test result is built from the words only (a front end does not
    import the engine): it must read exactly as the check's own ``Finding.text``."""
    from synchro.engine.preflight import HERE, Finding

    for table, column, code, values in screenshots.FINDINGS:
        expected = Finding(table, column, code, HERE, dict(values)).text(lang)
        assert screenshots.finding_line(table, column, code, values, lang) == expected
