"""Where a node keeps its files: --config, portable mode, the user's folders."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from synchro.errors import PlatformError
from synchro.platform import paths
from synchro.platform.paths import NodePaths, asset_path, resolve_paths


@pytest.fixture
def user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point platformdirs (XDG on Linux) into tmp_path; never frozen unless a test says so."""
    home = tmp_path / "home"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    monkeypatch.delattr(sys, "frozen", raising=False)
    return home


def all_paths(p: NodePaths) -> list[Path]:
    return [p.config_file, p.secrets_file, p.data_dir, p.packages_dir, p.log_dir, p.ftp_root]


def test_config_argument_keeps_everything_beside_the_file(tmp_path: Path, user_dirs: Path) -> None:
    p = resolve_paths(str(tmp_path / "node" / "synchro.toml"))
    node = tmp_path / "node"
    assert p.mode == "config"
    assert p.config_file == node / "synchro.toml"
    assert p.secrets_file == node / "secrets.json"
    assert p.data_dir == node / "data"
    assert p.state_db == node / "data" / "state.db"
    assert p.reports_db == node / "data" / "reports.db"
    assert p.log_dir == node / "logs"
    for path in [*all_paths(p), p.lock_file]:
        assert path.is_relative_to(node)
    assert not node.exists()  # resolving creates nothing


def test_two_nodes_in_one_folder_share_nothing(tmp_path: Path, user_dirs: Path) -> None:
    hq = resolve_paths(str(tmp_path / "hq.toml"))
    site = resolve_paths(str(tmp_path / "site.toml"))
    assert hq.secrets_file == tmp_path / "hq.secrets.json"
    assert hq.data_dir == tmp_path / "hq-data"
    shared = set(all_paths(hq)) & set(all_paths(site))
    assert not shared
    assert hq.lock_file != site.lock_file


def test_relative_config_argument_becomes_absolute(
    tmp_path: Path, user_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    p = resolve_paths("synchro.toml")
    assert p.config_file == tmp_path / "synchro.toml"
    assert p.config_file.is_absolute()


def test_default_uses_the_users_folders(user_dirs: Path) -> None:
    p = resolve_paths(None)
    assert p.mode == "user"
    if sys.platform.startswith("linux"):
        assert p.config_file == user_dirs / "cfg" / "Synchro" / "synchro.toml"
        assert p.secrets_file == user_dirs / "cfg" / "Synchro" / "secrets.json"
        assert p.data_dir == user_dirs / "data" / "Synchro"
        assert p.log_dir.is_relative_to(user_dirs / "state" / "Synchro")
    assert not user_dirs.exists()


def test_portable_mode_beside_the_frozen_executable(
    tmp_path: Path, user_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stick = tmp_path / "stick"
    stick.mkdir()
    exe = stick / "Synchro.exe"
    exe.write_bytes(b"")
    monkeypatch.setattr(sys, "executable", str(exe))
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert resolve_paths(None).mode == "user"  # no synchro.toml beside it yet
    (stick / "synchro.toml").write_text("", encoding="utf-8")
    p = resolve_paths(None)
    assert p.mode == "portable"
    assert p.config_file == stick / "synchro.toml"
    assert p.data_dir == stick / "data"
    # --config still wins over portable mode
    assert resolve_paths(str(tmp_path / "other" / "synchro.toml")).mode == "config"


def test_not_frozen_ignores_a_file_beside_python(
    tmp_path: Path, user_dirs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "synchro.toml").write_text("", encoding="utf-8")
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python3"))
    assert resolve_paths(None).mode == "user"


def test_ensure_creates_the_folders(tmp_path: Path, user_dirs: Path) -> None:
    p = resolve_paths(str(tmp_path / "n" / "synchro.toml")).ensure()
    for folder in (p.data_dir, p.packages_dir, p.log_dir, p.ftp_root):
        assert folder.is_dir()
    assert not p.config_file.exists()
    p.ensure()  # twice is fine


def test_ensure_reports_the_folder_it_could_not_create(tmp_path: Path, user_dirs: Path) -> None:
    (tmp_path / "file").write_text("x", encoding="utf-8")
    p = resolve_paths(str(tmp_path / "file" / "synchro.toml"))
    with pytest.raises(PlatformError, match="file"):
        p.ensure()


def test_asset_path_from_source_and_from_a_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(sys, "frozen", raising=False)
    assert asset_path("synchro.ico").is_file()
    with pytest.raises(PlatformError, match=r"nope\.png"):
        asset_path("nope.png")
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "synchro.ico").write_bytes(b"ico")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert paths.assets_dir() == tmp_path / "assets"
    assert asset_path("synchro.ico") == tmp_path / "assets" / "synchro.ico"
