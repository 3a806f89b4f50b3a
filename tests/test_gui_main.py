"""The tray program's entry: one instance per configuration, "show" from a second start."""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from gui_fake import FakeBackend, FakeTray, kinds, settle
from xvfb import xvfb_fixture  # noqa: F401  (the "xvfb" fixture)

from synchro.errors import SynchroError
from synchro.gui import control_handler
from synchro.gui.ports import ShowRequested
from synchro.gui.shell import GuiShell
from synchro.platform.paths import paths_beside
from synchro.platform.single_instance import control_file_for

pytestmark = pytest.mark.gui


class AppStub:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def control(self, cmd: str, args: Any) -> dict[str, Any]:
        self.asked.append(cmd)
        return {"running": False}


class Holder:
    def __init__(self) -> None:
        self.events: queue.Queue[Any] = queue.Queue()
        self.synchro: AppStub | None = None


def test_control_channel_show_and_commands() -> None:
    holder = Holder()
    handle = control_handler(holder)
    assert handle("show", {}) == {"shown": True}
    assert holder.events.get_nowait() == ShowRequested()
    with pytest.raises(SynchroError, match="assistant"):
        handle("sync", {})
    holder.synchro = AppStub()
    assert handle("sync", {}) == {"running": False}
    assert holder.synchro.asked == ["sync"]


def test_show_requested_opens_the_password_prompt(xvfb: str, tmp_path: Path) -> None:
    backend = FakeBackend(tmp_path)
    shell = GuiShell(backend, tray=FakeTray(), opener=lambda p: None)
    shell.start()
    try:
        backend.events.put(ShowRequested())
        settle(shell)
        assert kinds(shell) == ["LoginController"]
        backend.events.put(ShowRequested())  # already open: brought to front, not doubled
        settle(shell)
        assert kinds(shell) == ["LoginController"]
    finally:
        shell.quit()


def test_a_second_start_asks_the_first_to_show_itself_and_exits(xvfb: str, tmp_path: Path) -> None:
    config = tmp_path / "node" / "synchro.toml"
    env = {**os.environ, "DISPLAY": xvfb, "LC_ALL": "fr_FR.UTF-8"}
    command = [sys.executable, "-m", "synchro", "--config", str(config)]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        control = control_file_for(paths_beside(config).lock_file)
        for _ in range(600):  # until the first holds the lock and listens (bounded: 30 s)
            if control.exists() or first.poll() is not None:
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                first.wait(timeout=0.05)
        assert control.exists(), first.stdout.read() if first.poll() is not None else "no lock"
        log_file = config.parent / "logs" / "synchro.log"
        second = subprocess.run(command, env=env, capture_output=True, timeout=60)
        assert second.returncode == 0, second.stderr
        assert first.poll() is None  # the first one still runs (its wizard is open)
        assert "already runs" in log_file.read_text(encoding="utf-8")
    finally:
        first.terminate()
        first.wait(timeout=10)


def test_a_fatal_error_is_said_in_the_language_of_the_settings_else_the_system_s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What stops the program at start is said in the settings' language; when the
    settings are what cannot be read, in the system's (the wizard's rule)."""
    from synchro.config.model import Config, Role
    from synchro.config.store import language_of as _language
    from synchro.config.store import save_config

    config_file = tmp_path / "synchro.json"
    save_config(Config(role=Role.SITE, site="3615", language="en"), config_file)
    assert _language(config_file) == "en"
    from synchro.config.secrets import default_secrets_path

    secrets = default_secrets_path(config_file)
    secrets.write_text("pas des secrets", encoding="utf-8")  # the settings still say English
    monkeypatch.setenv("LANG", "fr_FR.UTF-8")
    assert _language(config_file) == "en"
    secrets.unlink()
    config_file.write_text("{ pas du json", encoding="utf-8")
    monkeypatch.setenv("LANG", "en_GB.UTF-8")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    monkeypatch.delenv("LANGUAGE", raising=False)
    assert _language(config_file) == "en"
    monkeypatch.setenv("LANG", "fr_FR.UTF-8")
    assert _language(config_file) == "fr"
