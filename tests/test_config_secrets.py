"""The secrets file: beside the settings, mode 0600, atomic, never in the TOML."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from synchro.config import atomic
from synchro.config.secrets import SecretStore, default_secrets_path
from synchro.errors import ConfigError


def test_secrets_path_beside_the_settings(tmp_path: Path) -> None:
    assert default_secrets_path(tmp_path / "synchro.toml") == tmp_path / "secrets.json"
    assert default_secrets_path(tmp_path / "hq.toml") == tmp_path / "hq.secrets.json"


def test_set_get_delete(tmp_path: Path) -> None:
    store = SecretStore(tmp_path / "secrets.json")
    assert store.get("group_key") == ""
    assert store.names() == []
    store.set("group_key", "k1")
    store.set("email.password", 'p é " \\')
    assert store.get("group_key") == "k1"
    assert SecretStore(tmp_path / "secrets.json").get("email.password") == 'p é " \\'
    store.delete("group_key")
    assert store.names() == ["email.password"]
    store.set("email.password", "")
    assert store.names() == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_file_mode_is_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        store = SecretStore(tmp_path / "secrets.json")
        store.set("group_key", "k")
        store.set("email.password", "p")  # a rewrite keeps the mode
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SecretStore(tmp_path / "secrets.json")
    store.set("group_key", "old")
    before = (tmp_path / "secrets.json").read_bytes()

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", broken_fsync)
    with pytest.raises(Exception, match="secrets"):
        store.set("group_key", "new")
    monkeypatch.undo()
    assert (tmp_path / "secrets.json").read_bytes() == before
    assert not (tmp_path / "secrets.json.tmp").exists()
    assert store.get("group_key") == "old"


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"a": 1}'])
def test_damaged_file_is_a_config_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "secrets.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        SecretStore(path).read_all()
    assert info.value.source == str(path)
    assert info.value.problems[0].field == "secrets"
