"""`synchro autostart on|off|status` (the real XDG entry) and `synchro service` (dry run)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def synchro(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp / "xdg")}
    return subprocess.run(
        [sys.executable, "-m", "synchro", "--config", str(tmp / "s.toml"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_autostart_on_status_off(tmp_path: Path) -> None:
    assert (
        synchro(tmp_path, "init", "--role", "serveur", "--site", "3615", "--db", "x.db").returncode
        == 0
    )
    entry = tmp_path / "xdg" / "autostart" / "synchro.desktop"
    on = synchro(tmp_path, "autostart", "on")
    assert on.returncode == 0, on.stderr
    text = entry.read_text(encoding="utf-8")
    assert "--minimized" in text and str(tmp_path / "s.toml") in text
    assert "start_with_windows = true" in (tmp_path / "s.toml").read_text(encoding="utf-8")
    status = synchro(tmp_path, "autostart", "status")
    assert "activé" in status.stdout
    off = synchro(tmp_path, "autostart", "off")
    assert off.returncode == 0 and not entry.exists()
    assert "désactivé" in synchro(tmp_path, "autostart", "status").stdout
    assert "start_with_windows = false" in (tmp_path / "s.toml").read_text(encoding="utf-8")


def test_service_install_dry_run_changes_nothing(tmp_path: Path) -> None:
    assert (
        synchro(tmp_path, "init", "--role", "siege", "--site", "SIEGE", "--db", "x.db").returncode
        == 0
    )
    done = synchro(tmp_path, "service", "install", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "systemctl enable" in done.stdout and ".service" in done.stdout
