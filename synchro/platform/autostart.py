"""« Démarrage avec Windows »: start Synchro (minimised, in the tray) when the user logs in.

One small interface, :class:`Autostart` (``is_enabled`` / ``enable(command)`` / ``disable``),
two implementations:

- :class:`WindowsAutostart`: the value ``Synchro`` of
  ``HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run`` holds the quoted path of the
  executable followed by its arguments (``"C:\\...\\synchro.exe" --minimized``). Task Manager's
  "Disable" does not touch that value: it writes a binary value of the same name under
  ``...\\Explorer\\StartupApproved\\Run`` whose first byte is odd (``03``) when disabled and even
  (``02``) when enabled. ``is_enabled`` reads both so the checkbox tells the truth; ``enable``
  removes a Task Manager "disabled" mark (the user just asked for the opposite).
  Registry access goes through the tiny :class:`Registry` protocol: :class:`WinRegistry` wraps
  ``winreg`` (imported lazily, only on Windows), tests use a dict-backed fake.
- :class:`XdgAutostart`: ``$XDG_CONFIG_HOME/autostart/synchro.desktop`` (default
  ``~/.config``), disabled when it says ``Hidden=true`` or ``X-GNOME-Autostart-enabled=false``.

The Run key only fires at an interactive logon. A server that must work after an unattended
reboot runs ``synchro serve`` as a service instead (see :mod:`synchro.platform.service`).
"""

from __future__ import annotations

import configparser
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from synchro.errors import PlatformError, Say
from synchro.i18n import tr

APP_NAME = "Synchro"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
APPROVED_KEY = r"Software\Microsoft\Windows\CurrentVersion\Explorer\StartupApproved\Run"
MINIMIZED_FLAG = "--minimized"


class Autostart(Protocol):
    """Start Synchro with the user's session, or not."""

    def is_enabled(self) -> bool: ...

    def enable(self, command: Sequence[str]) -> None: ...

    def disable(self) -> None: ...


def default_command(extra: Sequence[str] = ()) -> list[str]:
    """The command that starts this Synchro minimised: the frozen exe, or ``python -m synchro``.

    From the console companion ``synchro-cli.exe`` it is the windowed ``synchro.exe`` beside
    it: the tray program must not open a console window at every logon.
    """
    if getattr(sys, "frozen", False):
        exe = Path(sys.executable)
        windowed = exe.with_name("synchro.exe")
        if exe.name.lower() == "synchro-cli.exe" and windowed.is_file():
            exe = windowed
        return [str(exe), *extra, MINIMIZED_FLAG]
    return [sys.executable, "-m", "synchro", *extra, MINIMIZED_FLAG]


# --------------------------------------------------------------------------- Windows


class Registry(Protocol):
    """The few registry operations autostart needs, on keys under ``HKEY_CURRENT_USER``."""

    def get(self, key: str, name: str) -> str | bytes | None:
        """The value's data, or None when the key or the value does not exist."""
        ...

    def set_string(self, key: str, name: str, value: str) -> None:
        """Writes a ``REG_SZ`` value, creating the key if needed."""
        ...

    def delete(self, key: str, name: str) -> None:
        """Deletes the value; nothing happens when it does not exist."""
        ...


def _winreg() -> Any:
    """The ``winreg`` module, imported on first use (typed Any: its stubs are Windows-only)."""
    return importlib.import_module("winreg")


class WinRegistry:
    """:class:`Registry` over ``winreg`` (Windows only; the import happens on first use)."""

    def get(self, key: str, name: str) -> str | bytes | None:
        winreg = _winreg()
        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, key) as handle:
                data, _kind = winreg.QueryValueEx(handle, name)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise PlatformError(say=_registry("read", key, name, exc)) from exc
        return data if isinstance(data, str | bytes) else str(data)

    def set_string(self, key: str, name: str, value: str) -> None:
        winreg = _winreg()
        try:
            with winreg.CreateKeyEx(winreg.HKEY_CURRENT_USER, key, 0, winreg.KEY_SET_VALUE) as h:
                winreg.SetValueEx(h, name, 0, winreg.REG_SZ, value)
        except OSError as exc:
            raise PlatformError(say=_registry("write", key, name, exc)) from exc

    def delete(self, key: str, name: str) -> None:
        winreg = _winreg()
        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, key, 0, winreg.KEY_SET_VALUE) as h:
                winreg.DeleteValue(h, name)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise PlatformError(say=_registry("delete", key, name, exc)) from exc


def _registry(what: str, key: str, name: str, exc: OSError) -> Say:
    """The words of a failed registry ``what`` (read, write, delete) of ``key\\name``."""
    return (f"app.err.registry.{what}", {"where": f"{key}\\{name}", "detail": str(exc)})


def windows_command_line(command: Sequence[str]) -> str:
    """The Run value: the executable always in double quotes, arguments quoted when needed."""
    if not command:
        raise PlatformError(say=("app.err.autostart.empty", {}))
    exe, *args = command
    parts = [f'"{exe}"']
    for arg in args:
        needs_quotes = not arg or any(c in arg for c in ' \t"')
        parts.append('"' + arg.replace('"', '\\"') + '"' if needs_quotes else arg)
    return " ".join(parts)


class WindowsAutostart:
    """Autostart through the HKCU Run key, honouring Task Manager's StartupApproved state."""

    def __init__(self, registry: Registry, name: str = APP_NAME) -> None:
        self.registry = registry
        self.name = name

    def command_line(self) -> str | None:
        """The command registered in the Run key, or None."""
        value = self.registry.get(RUN_KEY, self.name)
        return value if isinstance(value, str) and value.strip() else None

    def disabled_in_task_manager(self) -> bool:
        approved = self.registry.get(APPROVED_KEY, self.name)
        # 02 00 00 .. = enabled, 03 00 00 .. + FILETIME = disabled (06/07 seen too: odd = off).
        return isinstance(approved, bytes) and len(approved) > 0 and approved[0] % 2 == 1

    def is_enabled(self) -> bool:
        return self.command_line() is not None and not self.disabled_in_task_manager()

    def enable(self, command: Sequence[str]) -> None:
        self.registry.set_string(RUN_KEY, self.name, windows_command_line(command))
        if self.disabled_in_task_manager():
            self.registry.delete(APPROVED_KEY, self.name)

    def disable(self) -> None:
        self.registry.delete(RUN_KEY, self.name)
        self.registry.delete(APPROVED_KEY, self.name)


# --------------------------------------------------------------------------- Linux (XDG)

_DESKTOP_SECTION = "Desktop Entry"


def xdg_autostart_dir() -> Path:
    """``$XDG_CONFIG_HOME/autostart`` (only an absolute XDG_CONFIG_HOME counts), else ~/.config."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"
    return root / "autostart"


def desktop_exec(command: Sequence[str]) -> str:
    """The ``Exec=`` value for ``command`` (quoting of the Desktop Entry specification)."""
    if not command:
        raise PlatformError(say=("app.err.autostart.empty", {}))
    parts = []
    for arg in command:
        if arg and not any(c in arg for c in " \t\n\"'\\><~|&;$*?#()`="):
            quoted = arg
        else:
            inner = "".join("\\" + c if c in '"`$\\' else c for c in arg)
            quoted = f'"{inner}"'
        parts.append(quoted.replace("%", "%%"))
    # The key file format unescapes backslashes once more before the Exec rules apply.
    return " ".join(parts).replace("\\", "\\\\")


class XdgAutostart:
    """Autostart through an XDG ``.desktop`` file (GNOME, KDE, Xfce, LXQt...)."""

    def __init__(self, directory: Path | None = None, name: str = APP_NAME) -> None:
        self.directory = directory if directory is not None else xdg_autostart_dir()
        self.name = name

    @property
    def path(self) -> Path:
        return self.directory / f"{self.name.lower()}.desktop"

    def _read(self) -> configparser.SectionProxy | None:
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        try:
            text = self.path.read_text(encoding="utf-8")
            parser.read_string(text)
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, configparser.Error) as exc:
            said = {"path": str(self.path), "detail": str(exc)}
            raise PlatformError(say=("app.err.autostart.unreadable", said)) from exc
        return parser[_DESKTOP_SECTION] if parser.has_section(_DESKTOP_SECTION) else None

    def is_enabled(self) -> bool:
        entry = self._read()
        if entry is None or not entry.get("Exec", "").strip():
            return False
        if entry.get("Hidden", "false").strip().lower() == "true":
            return False
        return entry.get("X-GNOME-Autostart-enabled", "true").strip().lower() != "false"

    def enable(self, command: Sequence[str]) -> None:
        lines = [
            f"[{_DESKTOP_SECTION}]",
            "Type=Application",
            f"Name={self.name}",
            "Comment=Synchronisation quotidienne des bases de données",
            f"Exec={desktop_exec(command)}",
            "Terminal=false",
            "X-GNOME-Autostart-enabled=true",
            "",
        ]
        tmp = self.path.with_suffix(".desktop.tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp.write_text("\n".join(lines), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            said = {"path": str(self.path), "detail": exc.strerror or str(exc)}
            raise PlatformError(say=("app.err.autostart.unwritable", said)) from exc

    def disable(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            said = {"path": str(self.path), "detail": exc.strerror or str(exc)}
            raise PlatformError(say=("app.err.autostart.undeletable", said)) from exc


class UnsupportedAutostart:
    """Platforms without an implementation (macOS): never enabled, enabling says so."""

    def is_enabled(self) -> bool:
        return False

    def enable(self, command: Sequence[str]) -> None:
        raise PlatformError(say=("app.err.autostart.unsupported", {"platform": sys.platform}))

    def disable(self) -> None:
        return None


def autostart_for_platform(platform: str | None = None) -> Autostart:
    """The autostart of this operating system (``platform`` defaults to ``sys.platform``)."""
    platform = platform or sys.platform
    if platform == "win32":
        return WindowsAutostart(WinRegistry())
    if platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return XdgAutostart()
    return UnsupportedAutostart()


def autostart_action(
    action: str,
    *,
    config: str | None = None,
    autostart: Autostart | None = None,
    lang: str = "fr",
) -> str:
    """``synchro autostart on|off|status``: does it and returns the line to print (in
    ``lang``).

    ``on`` registers this program (``--config`` kept as an absolute path) with ``--minimized``.
    """
    auto = autostart if autostart is not None else autostart_for_platform()
    if action == "on":
        extra = ["--config", str(Path(config).absolute())] if config else []
        auto.enable(default_command(extra))
    elif action == "off":
        auto.disable()
    elif action != "status":
        raise PlatformError(say=("platform.autostart.unknown_action", {"action": repr(action)}))
    state = tr("platform.autostart.on" if auto.is_enabled() else "platform.autostart.off", lang)
    return tr("platform.autostart.state", lang, state=state)
