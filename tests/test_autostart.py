"""Démarrage avec Windows: Run key through a fake registry; XDG autostart for real in tmp dirs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from synchro.errors import PlatformError, text_in
from synchro.platform.autostart import (
    APPROVED_KEY,
    RUN_KEY,
    UnsupportedAutostart,
    WindowsAutostart,
    WinRegistry,
    XdgAutostart,
    autostart_action,
    autostart_for_platform,
    default_command,
    desktop_exec,
    windows_command_line,
    xdg_autostart_dir,
)


class FakeRegistry:
    """Dict-backed HKCU: {(key, name): data}."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], str | bytes] = {}

    def get(self, key: str, name: str) -> str | bytes | None:
        return self.values.get((key, name))

    def set_string(self, key: str, name: str, value: str) -> None:
        self.values[(key, name)] = value

    def delete(self, key: str, name: str) -> None:
        self.values.pop((key, name), None)


EXE = r"C:\Program Files\Synchro\synchro.exe"

# ----------------------------------------------------------------- Windows (fake registry)


def test_windows_enable_writes_quoted_path_and_minimized() -> None:
    reg = FakeRegistry()
    auto = WindowsAutostart(reg)
    assert not auto.is_enabled()
    auto.enable([EXE, "--minimized"])
    assert reg.values[(RUN_KEY, "Synchro")] == f'"{EXE}" --minimized'
    assert auto.is_enabled()
    auto.disable()
    assert not auto.is_enabled()
    assert reg.values == {}
    auto.disable()  # twice is fine


def test_windows_honours_task_manager_disable() -> None:
    reg = FakeRegistry()
    auto = WindowsAutostart(reg)
    auto.enable([EXE, "--minimized"])
    disabled = bytes([3, 0, 0, 0]) + bytes.fromhex("a0b1c2d3e4f5d901")  # 03 + FILETIME
    reg.values[(APPROVED_KEY, "Synchro")] = disabled
    assert not auto.is_enabled()
    reg.values[(APPROVED_KEY, "Synchro")] = bytes([2]) + bytes(11)
    assert auto.is_enabled()
    reg.values[(APPROVED_KEY, "Synchro")] = disabled
    auto.enable([EXE, "--minimized"])  # ticking the box again clears Task Manager's mark
    assert auto.is_enabled()
    assert (APPROVED_KEY, "Synchro") not in reg.values


def test_windows_other_values_untouched_and_empty_value_is_off() -> None:
    reg = FakeRegistry()
    reg.values[(RUN_KEY, "OneDrive")] = '"C:\\od.exe" /background'
    auto = WindowsAutostart(reg)
    reg.values[(RUN_KEY, "Synchro")] = "  "
    assert not auto.is_enabled()
    auto.enable([EXE])
    auto.disable()
    assert reg.values == {(RUN_KEY, "OneDrive"): '"C:\\od.exe" /background'}


def test_windows_command_line_quoting() -> None:
    assert windows_command_line([EXE, "--minimized"]) == f'"{EXE}" --minimized'
    assert (
        windows_command_line([EXE, "--config", r"C:\My Data\synchro.toml", "--minimized"])
        == f'"{EXE}" --config "C:\\My Data\\synchro.toml" --minimized'
    )
    assert windows_command_line(["a.exe", ""]) == '"a.exe" ""'
    with pytest.raises(PlatformError):
        windows_command_line([])


def test_real_winreg_only_on_windows() -> None:
    if sys.platform == "win32":  # pragma: no cover - exercised under Wine by the Windows build
        pytest.skip("covered by the Windows build test")
    with pytest.raises(ModuleNotFoundError):
        WinRegistry().get(RUN_KEY, "Synchro")


def test_platform_choice() -> None:
    assert isinstance(autostart_for_platform("win32"), WindowsAutostart)
    assert isinstance(autostart_for_platform("linux"), XdgAutostart)
    other = autostart_for_platform("darwin")
    assert isinstance(other, UnsupportedAutostart) and not other.is_enabled()
    with pytest.raises(PlatformError):
        other.enable(["x"])


def test_default_command_is_minimized(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_command(["--config", "c.toml"]) == [
        sys.executable,
        "-m",
        "synchro",
        "--config",
        "c.toml",
        "--minimized",
    ]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert default_command() == [sys.executable, "--minimized"]


def test_default_command_from_console_companion_is_the_windowed_exe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    cli = tmp_path / "synchro-cli.exe"
    cli.write_bytes(b"MZ")
    monkeypatch.setattr(sys, "executable", str(cli))
    assert default_command() == [str(cli), "--minimized"]  # no synchro.exe beside it
    (tmp_path / "synchro.exe").write_bytes(b"MZ")
    assert default_command() == [str(tmp_path / "synchro.exe"), "--minimized"]


# ----------------------------------------------------------------- Linux (real files)


def _parse_exec(value: str) -> list[str]:
    """Desktop Entry spec, backwards: string unescape, then Exec quoting, then %% -> %."""
    text = value.replace("\\\\", "\\")
    args: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == " ":
            i += 1
            continue
        arg = ""
        if text[i] == '"':
            i += 1
            while text[i] != '"':
                if text[i] == "\\" and text[i + 1] in '"`$\\':
                    i += 1
                arg += text[i]
                i += 1
            i += 1
        else:
            while i < len(text) and text[i] != " ":
                arg += text[i]
                i += 1
        args.append(arg.replace("%%", "%"))
    return args


def _read_key(path: Path, key: str) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(key + "="):
            return line.split("=", 1)[1]
    raise AssertionError(f"{key} not in {path}")


def test_xdg_enable_disable_for_real(tmp_path: Path) -> None:
    auto = XdgAutostart(tmp_path / "autostart")
    assert not auto.is_enabled()
    command = ["/opt/my synchro/synchro", "--config", '/data/a$b`c"d\\e%f.toml', "--minimized"]
    auto.enable(command)
    assert auto.path == tmp_path / "autostart" / "synchro.desktop"
    assert auto.is_enabled()
    text = auto.path.read_text(encoding="utf-8")
    assert text.startswith("[Desktop Entry]\nType=Application\nName=Synchro\n")
    assert _parse_exec(_read_key(auto.path, "Exec")) == command
    auto.disable()
    assert not auto.path.exists() and not auto.is_enabled()
    auto.disable()


@pytest.mark.parametrize(
    "line", ["Hidden=true", "X-GNOME-Autostart-enabled=false", "Hidden = True"]
)
def test_xdg_disabled_by_desktop(tmp_path: Path, line: str) -> None:
    auto = XdgAutostart(tmp_path)
    auto.enable(["/usr/bin/synchro", "--minimized"])
    with auto.path.open("a", encoding="utf-8") as f:
        f.write(line + "\n")
    assert not auto.is_enabled()
    auto.enable(["/usr/bin/synchro", "--minimized"])  # rewriting turns it back on
    assert auto.is_enabled()


def test_xdg_broken_or_foreign_file(tmp_path: Path) -> None:
    auto = XdgAutostart(tmp_path)
    auto.path.write_text("[Other]\nExec=x\n", encoding="utf-8")
    assert not auto.is_enabled()
    auto.path.write_text("not an ini file at all\n", encoding="utf-8")
    with pytest.raises(PlatformError, match=r"synchro\.desktop"):
        auto.is_enabled()


def test_xdg_dir_respects_xdg_config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert xdg_autostart_dir() == tmp_path / "cfg" / "autostart"
    auto = XdgAutostart()
    auto.enable(["/usr/bin/synchro"])
    assert (tmp_path / "cfg" / "autostart" / "synchro.desktop").is_file()
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert xdg_autostart_dir() == tmp_path / "home" / ".config" / "autostart"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert xdg_autostart_dir() == tmp_path / "home" / ".config" / "autostart"


def test_xdg_unwritable_dir_is_platform_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(PlatformError):
        XdgAutostart(blocker / "autostart").enable(["/usr/bin/synchro"])


def test_desktop_exec_plain_args_unquoted() -> None:
    assert desktop_exec(["/usr/bin/synchro", "--minimized"]) == "/usr/bin/synchro --minimized"
    with pytest.raises(PlatformError):
        desktop_exec([])


def test_autostart_action(tmp_path: Path) -> None:
    reg = FakeRegistry()
    auto = WindowsAutostart(reg)
    assert autostart_action("status", autostart=auto) == "Démarrage automatique : désactivé"
    config = tmp_path / "site.toml"
    assert autostart_action("on", config=str(config), autostart=auto).endswith(": activé")
    value = reg.values[(RUN_KEY, "Synchro")]
    assert isinstance(value, str)
    assert value.startswith(f'"{sys.executable}" -m synchro --config ')
    assert value.endswith(" --minimized") and str(config) in value
    assert autostart_action("off", autostart=auto).endswith(": désactivé")
    assert autostart_action("status", autostart=auto, lang="en") == "Start with the system: off"
    assert autostart_action("on", autostart=auto, lang="en") == "Start with the system: on"
    with pytest.raises(PlatformError, match="inconnue") as unknown:
        autostart_action("maybe", autostart=auto)
    assert text_in(unknown.value, "en") == "Unknown action 'maybe' (expected: on, off, status)"


def test_xdg_failure_is_said_in_the_ui_language(tmp_path: Path) -> None:
    """A real failure: where the autostart folder should be there is a file."""
    blocked = tmp_path / "autostart"
    blocked.write_text("un fichier, pas un dossier")
    with pytest.raises(PlatformError) as failed:
        XdgAutostart(blocked).enable(["/usr/bin/synchro", "--minimized"])
    assert "Impossible d'écrire" in str(failed.value)
    english = text_in(failed.value, "en")
    assert english.startswith(f"Cannot write {blocked / 'synchro.desktop'}: "), english
