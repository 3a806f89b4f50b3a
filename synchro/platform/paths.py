"""Where a node keeps its settings, secrets, state, packages and logs.

Three ways to choose, first match wins (``resolve_paths``):

1. ``--config PATH``: the settings file is PATH; everything else goes beside it
   (``data/``, ``logs/``, ``secrets.json``), so tests and several nodes on one machine never
   share state. A file not named ``synchro.toml`` prefixes its folders with its stem
   (``hq.toml`` → ``hq-data/``, ``hq-logs/``, ``hq.secrets.json``).
2. Portable mode: the program is a PyInstaller executable (``sys.frozen``) and a
   ``synchro.toml`` sits beside it: same layout as 1, next to the exe (USB stick installs).
3. The user's folders from platformdirs (``Synchro``, no author folder): on Windows
   ``%LOCALAPPDATA%\\Synchro``; on Linux ``~/.config/Synchro``, ``~/.local/share/Synchro`` and
   ``~/.local/state/Synchro/log``.

Nothing is created at import or by ``resolve_paths``; call ``NodePaths.ensure()``.
``asset_path`` finds bundled files (icons) from a source tree and from a PyInstaller bundle.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import platformdirs

from synchro.config.secrets import default_secrets_path
from synchro.errors import PlatformError

APP_NAME = "Synchro"
CONFIG_NAME = "synchro.toml"


@dataclass(frozen=True)
class NodePaths:
    """Every file and folder of one node. ``mode`` is ``config``, ``portable`` or ``user``."""

    config_file: Path
    secrets_file: Path
    data_dir: Path  # state database, reports database
    packages_dir: Path  # packages being built, sent or received
    log_dir: Path
    ftp_root: Path  # HQ: the FTP tree, one folder per site
    lock_file: Path  # single instance
    mode: str = "user"

    @property
    def state_db(self) -> Path:
        return self.data_dir / "state.db"

    @property
    def reports_db(self) -> Path:
        return self.data_dir / "reports.db"

    def ensure(self) -> NodePaths:
        """Create the folders (not the files). Raises ``PlatformError`` with the folder."""
        folders = (
            self.config_file.parent,
            self.secrets_file.parent,
            self.data_dir,
            self.packages_dir,
            self.log_dir,
            self.ftp_root,
            self.lock_file.parent,
        )
        for folder in folders:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                why = {"folder": str(folder), "detail": str(exc)}
                raise PlatformError(say=("engine.err.folder", why)) from exc
        return self


def resolve_paths(config_arg: str | None) -> NodePaths:
    """The node's paths: ``--config`` first, then portable mode, then the user's folders."""
    if config_arg:
        return paths_beside(Path(config_arg).expanduser().absolute(), mode="config")
    portable = portable_config()
    if portable is not None:
        return paths_beside(portable, mode="portable")
    return user_paths()


def paths_beside(config_file: Path, *, mode: str = "config") -> NodePaths:
    """The self-contained layout: everything in the settings file's folder."""
    folder = config_file.parent
    prefix = "" if config_file.stem == "synchro" else f"{config_file.stem}-"
    data_dir = folder / f"{prefix}data"
    return NodePaths(
        config_file=config_file,
        secrets_file=default_secrets_path(config_file),
        data_dir=data_dir,
        packages_dir=data_dir / "packages",
        log_dir=folder / f"{prefix}logs",
        ftp_root=data_dir / "ftp",
        lock_file=data_dir / "synchro.lock",
        mode=mode,
    )


def portable_config() -> Path | None:
    """``synchro.toml`` beside the frozen executable, if the program is frozen and it exists."""
    if not getattr(sys, "frozen", False):
        return None
    candidate = Path(sys.executable).absolute().parent / CONFIG_NAME
    return candidate if candidate.is_file() else None


def user_paths() -> NodePaths:
    """The per-user folders chosen by platformdirs."""
    config_dir = Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))
    data_dir = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    log_dir = Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))
    config_file = config_dir / CONFIG_NAME
    return NodePaths(
        config_file=config_file,
        secrets_file=default_secrets_path(config_file),
        data_dir=data_dir,
        packages_dir=data_dir / "packages",
        log_dir=log_dir,
        ftp_root=data_dir / "ftp",
        lock_file=data_dir / "synchro.lock",
        mode="user",
    )


def assets_dir() -> Path:
    """``assets/`` of the PyInstaller bundle (``sys._MEIPASS``) or of the source tree."""
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and bundle:
        return Path(bundle) / "assets"
    return Path(__file__).resolve().parents[2] / "assets"


def asset_path(name: str) -> Path:
    """The bundled file ``assets/<name>``; ``PlatformError`` when it is missing."""
    path = assets_dir() / name
    if not path.is_file():
        missing = {"name": repr(name), "folder": str(path.parent)}
        raise PlatformError(say=("engine.err.asset", missing))
    return path


class CertificateFiles(NamedTuple):
    cert: Path  # the Siège's certificate (PEM), whose fingerprint the tokens pin
    key: Path  # its private key (PEM)


def certificate_files(paths: NodePaths) -> CertificateFiles:
    """Where the Siège keeps its TLS certificate and key (one rule, used everywhere)."""
    return CertificateFiles(paths.data_dir / "siege-cert.pem", paths.data_dir / "siege-key.pem")
